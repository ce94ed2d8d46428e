"""Input features of the DCASE Task 3 baselines (2020-2025), computed from an STFT.

Every function is pure and vectorized: it takes the complex STFT of a recording (or of a block of its frames) and
returns feature maps in the layout of this pipeline, ``(frames, bins, maps)``. The 2021-2024 baselines store the
same numbers as ``(frames, maps * bins)`` (map-major) and their models read them as ``(maps, frames, bins)``; the
2025 one as ``(maps, frames, bins)``.

What each ``features=`` is (the baselines' settings: 24 kHz, 20 ms hops, a 40 ms periodic Hann window, FFT of 1024,
all ``nfft/2 + 1`` bins, no FFT normalization, as ``librosa.stft``):

* ``logmel_iv`` (FOA, 2022-2024): the log-mel spectrogram of each of the 4 channels (64 bands of
  ``librosa.filters.mel``, ``librosa.power_to_db`` per channel over the whole recording: ``top_db=80`` clips at
  80 dB below the channel's maximum), then the 3 active-intensity maps ``Re(conj(W) * [Y, Z, X]) / E`` with
  ``E = |W|^2 + (|Y|^2 + |Z|^2 + |X|^2) / 3 + 1e-8``, projected on the same mel filterbank: 7 maps x 64 bands.
  The channels keep the file's ACN order (W, Y, Z, X), so the intensity maps are (y, z, x).
  ``logmel_iv2021``: the maps ``Re(conj(W) * [X, Y, Z]) / (1e-8 + (|W|^2 + |Y|^2 + |Z|^2 + |X|^2) / 2)`` (x, y, z);
  ``logmel_iv2020``: ``Re(conj(W) * [X, Y, Z])`` divided by its own norm + 1e-8 (a unit vector per bin). (The 2020
  code stores every feature band-major, ``(frames, bands * maps)``, and its data generator reshapes the
  concatenation to ``(bands, maps)``, which mixes the maps of neighbouring bands: not reproduced; here every
  year's maps are kept apart.)
* ``logmel_gcc`` (MIC, 2020-2024): the 4 log-mel maps, then GCC-PHAT of the 6 channel pairs ``(m, n)``, ``m < n``:
  ``irfft(exp(1j * angle(conj(X_m) X_n)))`` over the ``nfft`` lags, keeping lags ``-32 .. 31`` (as many lags as
  mel bands): 10 maps x 64.
* ``salsa_lite`` (MIC, 2022-2024): the log-power spectrogram of each channel (``power_to_db``, ``amin=1e-10``,
  no ``top_db``) and the normalized inter-channel phase differences ``angle(X_k conj(X_0)) / (2 pi f / c)``
  (metres: for a plane wave, the projection of ``mic_k - mic_0`` on its direction), ``k = 1 .. 3``, ``c = 343`` m/s,
  on the bins ``max(1, floor(50 Hz * nfft / fs)) .. floor(9 kHz * nfft / fs) - 1``: 7 maps x 382 bins at 24 kHz.
  The phase maps are zero from the ``floor(2 kHz * nfft / fs)``-th bin OF THAT RANGE on (the official code indexes
  the cut-off in the range, not in the spectrum: at 24 kHz it keeps bins 2 .. 86, 47-2016 Hz, not 2 .. 84).
* ``logmel_stereo`` (2025): the log-mel spectrogram of both channels, ``power_to_db`` over both channels together
  (the 2025 code calls it once on the stereo array): 2 maps x 64.

The official extractions pad the signal as the installed ``librosa.stft`` does (zeros since librosa 0.10; the
reflection of the signal before) and the 2020-2024 ones add 1e-8 to every sample; here the pipeline's framing pads
with zeros and adds nothing. ``benchmarks/compare_official_baselines.py`` measures what remains.
"""
from __future__ import annotations

import numpy as np

from utils import SELDError

#: Every ``features=`` value; ``magphase`` (the SELDnet paper's magnitude and phase) is computed by
#: :mod:`cls_feature_class` itself.
FEATURES = ('magphase', 'logmel_iv', 'logmel_iv2021', 'logmel_iv2020', 'logmel_gcc', 'salsa_lite', 'logmel_stereo')
#: The intensity-vector variants: features -> (FOA channels of the maps, normalization of intensity_vectors).
IV_VARIANTS = {'logmel_iv': ((1, 2, 3), 'dcase2022'), 'logmel_iv2021': ((3, 1, 2), 'dcase2021'),
               'logmel_iv2020': ((3, 1, 2), 'dcase2020')}
#: The baselines' constants.
NB_MELS = 64
IV_EPS = 1e-8
SOUND_SPEED = 343.0  # m/s, SALSA-Lite's normalization
SALSA_FMIN_DOA, SALSA_FMAX_DOA, SALSA_FMAX_SPECTRA = 50.0, 2000.0, 9000.0  # Hz


def mel_filterbank(*, fs: int, nfft: int, nb_mels: int = NB_MELS) -> np.ndarray:
    """The baselines' mel filterbank: ``librosa.filters.mel(sr=fs, n_fft=nfft, n_mels=nb_mels)`` (Slaney).

    Returns
    -------
    mel_wts : np.ndarray [shape=(nfft/2 + 1, nb_mels)], float32
        Transposed, so that ``power @ mel_wts`` projects spectra of ``nfft/2 + 1`` bins on the bands.
    """
    import librosa  # imported here: the magphase pipeline never needs it

    return np.ascontiguousarray(librosa.filters.mel(sr=fs, n_fft=nfft, n_mels=nb_mels).T.astype(np.float32))


def salsa_bins(*, fs: int, nfft: int) -> tuple[int, int, int]:
    """SALSA-Lite's bin range: ``(lower, upper, cutoff)``; the maps hold bins ``lower .. cutoff - 1`` and the phase
    maps are zero from index ``upper`` of that range on (module docstring).

    Raises
    ------
    SELDError
        No bins left (``fs`` too low for 50 Hz .. 9 kHz at this ``nfft``).
    """
    lower = max(1, int(np.floor(SALSA_FMIN_DOA * nfft / fs)))
    upper = int(np.floor(min(SALSA_FMAX_DOA, fs // 2) * nfft / fs))
    cutoff = min(int(np.floor(SALSA_FMAX_SPECTRA * nfft / fs)), nfft // 2 + 1)
    if cutoff <= lower:
        raise SELDError(f'features=salsa_lite: fs={fs} Hz, nfft={nfft} leave no bin between '
                        f'{SALSA_FMIN_DOA:g} Hz and {SALSA_FMAX_SPECTRA:g} Hz')
    return lower, upper, cutoff


def layout(features: str, *, nb_channels: int, audio_format: str, fs: int, nfft: int) -> tuple[int, list[str]]:
    """The feature maps of ``features`` for a recording of ``nb_channels`` channels.

    Parameters
    ----------
    features : str
        One of :data:`FEATURES` other than ``magphase``.
    nb_channels : int
    audio_format : str
        ``foa``, ``mic``, ``stereo`` or another array's name (the dataset's ``format``).
    fs, nfft : int
        Sample rate (Hz) and FFT size (samples).

    Returns
    -------
    nb_bins : int
        Mel bands, lags or spectrum bins per map.
    maps : list of str
        The name of each map, in order (e.g. ``['mel0', ..., 'iv_y', 'iv_z', 'iv_x']``).

    Raises
    ------
    SELDError
        An unknown ``features``, or one the audio does not fit (``logmel_iv`` needs 4-channel FOA, ``logmel_gcc``
        and ``salsa_lite`` a microphone array of at least 2 channels, ``logmel_stereo`` 2 channels).
    """
    mels = [f'mel{c}' for c in range(nb_channels)]
    if features in IV_VARIANTS:
        if audio_format != 'foa' or nb_channels != 4:
            raise SELDError(f'features={features}: needs FOA with 4 channels (W, Y, Z, X); the data is '
                            f'{audio_format} with {nb_channels}')
        return NB_MELS, mels + ['iv_' + 'wyzx'[k] for k in IV_VARIANTS[features][0]]
    if features in ('logmel_gcc', 'salsa_lite'):
        if audio_format in ('foa', 'stereo') or nb_channels < 2:
            raise SELDError(f'features={features}: needs a microphone array (format=mic) of at least 2 channels; '
                            f'the data is {audio_format} with {nb_channels}')
        if features == 'logmel_gcc':
            pairs = [f'gcc{m}{n}' for m in range(nb_channels) for n in range(m + 1, nb_channels)]
            return NB_MELS, mels + pairs
        lower, _, cutoff = salsa_bins(fs=fs, nfft=nfft)
        return cutoff - lower, [f'logspec{c}' for c in range(nb_channels)] + [
            f'ipd{k}0' for k in range(1, nb_channels)]
    if features == 'logmel_stereo':
        if nb_channels != 2:
            raise SELDError(f'features=logmel_stereo: needs 2 channels (left, right); the data has {nb_channels}')
        return NB_MELS, mels
    raise SELDError(f'features={features}: must be one of {", ".join(FEATURES)}')


def mel_power(spec: np.ndarray, *, mel_wts: np.ndarray) -> np.ndarray:
    """Mel-band power of every channel, ``|X|^2 @ mel_wts``.

    Parameters
    ----------
    spec : np.ndarray [shape=(frames, nfft/2 + 1, channels)], complex
    mel_wts : np.ndarray [shape=(nfft/2 + 1, bands)] (:func:`mel_filterbank`)

    Returns
    -------
    power : np.ndarray [shape=(frames, bands, channels)], float32
    """
    power = (spec.real ** 2 + spec.imag ** 2).transpose(0, 2, 1)  # (frames, channels, bins): a BLAS product
    return np.matmul(power, mel_wts).transpose(0, 2, 1).astype(np.float32, copy=False)


def power_to_db(power: np.ndarray, *, per_channel: bool, top_db: float | None = 80.0,
                amin: float = 1e-10) -> np.ndarray:
    """``librosa.power_to_db(power, ref=1.0, amin=amin, top_db=top_db)``, per channel or over all channels.

    Parameters
    ----------
    power : np.ndarray [shape=(frames, bins, channels)]
        A whole recording's powers: ``top_db`` clips at that far below the maximum.
    per_channel : bool
        True: each channel clipped below its own maximum (2020-2024); False: below the maximum of all (2025).

    Returns
    -------
    db : np.ndarray [shape=(frames, bins, channels)], float32, decibels
    """
    import librosa

    if per_channel:
        return np.stack([librosa.power_to_db(power[..., c], ref=1.0, amin=amin, top_db=top_db)
                         for c in range(power.shape[-1])], axis=-1).astype(np.float32)
    return librosa.power_to_db(power, ref=1.0, amin=amin, top_db=top_db).astype(np.float32)


def intensity_vectors(spec: np.ndarray, *, mel_wts: np.ndarray, norm: str = 'dcase2022',
                      eps: float = IV_EPS) -> np.ndarray:
    """Normalized active-intensity maps of FOA, on the mel bands (module docstring).

    Parameters
    ----------
    spec : np.ndarray [shape=(frames, nfft/2 + 1, 4)], complex
        FOA in ACN order (W, Y, Z, X).
    mel_wts : np.ndarray [shape=(nfft/2 + 1, bands)]
    norm : str
        ``dcase2022`` (2022-2024): ``Re(conj(W) [Y, Z, X]) / (|W|^2 + (|Y|^2 + |Z|^2 + |X|^2) / 3 + eps)``;
        ``dcase2021``: ``Re(conj(W) [X, Y, Z]) / ((|W|^2 + |X|^2 + |Y|^2 + |Z|^2) / 2 + eps)``;
        ``dcase2020``: ``Re(conj(W) [X, Y, Z])`` over its Euclidean norm + eps.

    Returns
    -------
    iv : np.ndarray [shape=(frames, bands, 3)], float32
        Summed with the mel weights. For an SN3D plane wave from the unit direction u = (x, y, z), every bin holds
        ``0.75 (y, z, x)`` (dcase2022), ``u`` (dcase2021, dcase2020).
    """
    order = (1, 2, 3) if norm == 'dcase2022' else (3, 1, 2)
    w, foa = spec[..., :1], spec[..., list(order)]
    inten = w.real * foa.real + w.imag * foa.imag  # Re(conj(W) X_k)
    power = spec.real ** 2 + spec.imag ** 2
    if norm == 'dcase2022':
        denom = eps + power[..., 0] + power[..., 1:].sum(axis=-1) / 3.0
    elif norm == 'dcase2021':
        denom = eps + power.sum(axis=-1) / 2.0
    elif norm == 'dcase2020':
        denom = eps + np.sqrt((inten ** 2).sum(axis=-1))
    else:
        raise SELDError(f'norm={norm!r}: must be dcase2020, dcase2021 or dcase2022')
    return np.matmul((inten / denom[..., None]).transpose(0, 2, 1), mel_wts).transpose(0, 2, 1).astype(np.float32)


def channel_pairs(nb_channels: int) -> np.ndarray:
    """The pairs ``(m, n)``, ``m < n``, in the baselines' order: (0, 1), (0, 2), ..., int [shape=(pairs, 2)]."""
    m, n = np.triu_indices(nb_channels, k=1)
    return np.stack([m, n], axis=1)


def gcc_phat(spec: np.ndarray, *, nb_lags: int = NB_MELS) -> np.ndarray:
    """GCC-PHAT of every channel pair, lags ``-nb_lags/2 .. nb_lags/2 - 1`` samples.

    Parameters
    ----------
    spec : np.ndarray [shape=(frames, nfft/2 + 1, channels)], complex
    nb_lags : int
        Lags kept (even; the baselines: the number of mel bands).

    Returns
    -------
    gcc : np.ndarray [shape=(frames, nb_lags, pairs)], float32
        ``gcc[:, nb_lags // 2 + d, p]`` is the PHAT-weighted cross-correlation of pair ``p = (m, n)``
        (:func:`channel_pairs`) at lag ``d``: it peaks at ``d`` when channel ``n`` is channel ``m`` delayed by
        ``d`` samples. A bin where the cross-spectrum is 0 counts as phase 0 (``np.angle``).
    """
    pairs = channel_pairs(spec.shape[-1])
    cross = np.conj(spec[..., pairs[:, 0]]) * spec[..., pairs[:, 1]]
    cc = np.fft.irfft(np.exp(1j * np.angle(cross)), axis=1)  # (frames, nfft, pairs)
    half = nb_lags // 2
    return np.concatenate([cc[:, -half:], cc[:, :half]], axis=1).astype(np.float32)


def salsa_lite(spec: np.ndarray, *, fs: int, nfft: int) -> np.ndarray:
    """SALSA-Lite: log-power spectra of every channel and normalized phase differences to channel 0.

    Parameters
    ----------
    spec : np.ndarray [shape=(frames, nfft/2 + 1, channels)], complex
    fs, nfft : int

    Returns
    -------
    feat : np.ndarray [shape=(frames, cutoff - lower, 2*channels - 1)], float32
        Bins ``lower .. cutoff - 1`` (:func:`salsa_bins`): ``channels`` maps of ``10 log10(max(|X|^2, 1e-10))`` dB,
        then ``channels - 1`` maps of ``angle(X_k conj(X_0)) * c / (2 pi f)`` in metres (zero from ``upper`` on).
    """
    lower, upper, cutoff = salsa_bins(fs=fs, nfft=nfft)
    band = spec[:, lower:cutoff]
    logspec = power_to_db(band.real ** 2 + band.imag ** 2, per_channel=True, top_db=None)
    freq = np.arange(lower, cutoff)  # bin k is at k fs / nfft Hz; lower >= 1
    wavenumber = 2 * np.pi * fs * freq / (nfft * SOUND_SPEED)  # rad/m, the official delta * k
    ipd = np.angle(band[..., 1:] * np.conj(band[..., :1])) / wavenumber[:, None]
    ipd[:, upper:] = 0.0
    return np.concatenate([logspec, ipd.astype(np.float32)], axis=-1)


def compute(frames: np.ndarray, *, window: np.ndarray, features: str, fs: int, audio_format: str,
            block_frames: int = 128) -> np.ndarray:
    """The features of one whole recording from its frames, ``block_frames`` frames at a time.

    The STFT (all ``nfft/2 + 1`` bins, unnormalized as ``librosa.stft``) and the per-frame features are computed
    block by block; the log of the mel powers, whose ``top_db`` clipping depends on the whole recording's maximum,
    at the end.

    Parameters
    ----------
    frames : np.ndarray [shape=(frames, channels, nfft)], float32
        The recording's frames (a strided view is fine: :func:`cls_feature_class._frames`).
    window : np.ndarray [shape=(nfft,)]
        The analysis window (e.g. a periodic Hann of 2 hops, zero-padded to the middle of ``nfft``).
    features : str
        One of :data:`FEATURES` other than ``magphase``.
    fs : int
        Sample rate, Hz.
    audio_format : str
        As :func:`layout`.

    Returns
    -------
    feat : np.ndarray [shape=(frames, bins, maps)], float32, the maps of :func:`layout`.
    """
    import scipy.fft as scipy_fft  # here, not at the top: parameter.py imports this module for --help

    nb_frames, nb_channels, nfft = frames.shape
    if window.shape != (nfft,):
        raise SELDError(f'window of shape {window.shape}: must be (nfft,) = ({nfft},)')
    nb_bins, maps = layout(features, nb_channels=nb_channels, audio_format=audio_format, fs=fs, nfft=nfft)
    out = np.empty((nb_frames, nb_bins, len(maps)), np.float32)
    mel_wts = None if features == 'salsa_lite' else mel_filterbank(fs=fs, nfft=nfft)
    for i in range(0, nb_frames, block_frames):
        spec = scipy_fft.rfft(frames[i:i + block_frames] * window, axis=-1).transpose(0, 2, 1)
        block = out[i:i + block_frames]
        if features == 'salsa_lite':
            block[...] = salsa_lite(spec, fs=fs, nfft=nfft)
            continue
        block[..., :nb_channels] = mel_power(spec, mel_wts=mel_wts)
        if features in IV_VARIANTS:
            block[..., nb_channels:] = intensity_vectors(spec, mel_wts=mel_wts, norm=IV_VARIANTS[features][1])
        elif features == 'logmel_gcc':
            block[..., nb_channels:] = gcc_phat(spec, nb_lags=nb_bins)
    if features != 'salsa_lite':
        out[..., :nb_channels] = power_to_db(out[..., :nb_channels], per_channel=features != 'logmel_stereo')
    return out

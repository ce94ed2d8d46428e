"""Features, labels and the feature scaler of SELDnet, for every dataset of :mod:`datasets`.

Layout written, one folder per dataset and feature setting (:attr:`FeatureClass.feat_label_dir`)::

    <feat_label_dir>/<name>/
        feat_norm/{stem}.npy   float32 [shape=(frames, nfft/2, 2*channels)] magnitude then phase maps (or the
                               (frames, bins, maps) of another ``features=``: :mod:`dcase_features`),
                               standardized with the train-part scaler (unnormalized = x * scale + mean)
        label/{stem}.npy       float32 [shape=(frames, 4*classes)]: SED, then x, y, z blocks per class, at the
                               model frame rate
        target/{stem}.npy      float32 [shape=(ceil(frames / prod(t_pool_size)),) + target shape]: the target of
                               ``output`` at the output rate (multitrack_labels.output_target), written when
                               ``output`` is not seldnet or ``t_pool_size`` pools time (:attr:`FeatureClass.has_target`)
        info/{stem}.json       the recording's part, fold, samples, rate, duration and frame count
        stats/{stem}.npz       per train file: count, mean and M2 of its features (the scaler merges them)
        scaler.npz             mean, scale [shape=(nfft/2, 2*channels)] fitted on the train part only
        extraction.json        the parameters, classes and parts the features were made with

Two passes (batch_feature_extraction.py), so that the features are written once, already standardized: pass 1
(:meth:`FeatureClass.analyze`) reads every recording, writes its labels and info and, for a train recording, the
statistics of its features without storing them; pass 2 (:meth:`FeatureClass.write_features`), after
:meth:`FeatureClass.fit_scaler`, computes the features again, standardizes them and writes them.

Framing (:class:`Framing`)
--------------------------
* TUT-2018 (the original SELDnet scripts, ``hop_len_s=None``): symmetric Hann window (``np.hanning``) of
  ``nfft`` samples, hop ``nfft/2``, frames starting at sample 0, ``ceil((samples - nfft) / hop)`` frames (5166 for
  30 s at 44.1 kHz and nfft 512).
* By time (``hop_len_s``, e.g. the DCASE baselines' 20 ms): hop ``hop_len_s * fs`` samples, window ``2 * hop``
  (a periodic Hann, zero-padded to the middle of ``nfft``, as ``librosa.stft`` does), ``nfft`` the next power of
  two (unless given), frames centred on ``i * hop`` with zero padding, ``ceil(samples / hop)`` frames: frame ``5k``
  starts label frame ``k`` of 100 ms at 20 ms hops.

Both take the FFT with ``norm='ortho'`` and keep bins ``0 .. nfft/2 - 1`` (the Nyquist bin is dropped).

Features and labels
-------------------
``feat[..., c]`` is ``|S_c|`` and ``feat[..., C + c]`` is ``angle(S_c)``, with the frequency axis intact (the
original stored ``(frames, bins*channels)`` and reshaped, folding pairs of neighbouring bins into the channel axis).
Labels at the model frame rate (:func:`label_frames.desc_to_labels`, :func:`label_frames.instances_to_labels`):
events in seconds (TUT-2018, 2019) are active in the frames of :func:`label_frames.event_frames`; frame metadata
(2020+, 100 ms) maps model frame ``j`` to label frame ``floor(j * label_rate / frame_rate)``. SELDnet has one
output per class, so two instances of one class in the same frame become one target: the instance listed last in
the metadata file (the DCASE 2020 baseline's rule: its label code overwrites earlier rows of the frame); the metric
readers keep every instance.
"""
from __future__ import annotations

import math
import os
import tempfile
from typing import Any, Iterable, Iterator, NamedTuple

import numpy as np
import scipy.fft
import scipy.signal
import soundfile as sf

import datasets
import dcase_features
import label_frames
import multitrack_labels
import utils
from file_checks import REDO, check_wav_complete, is_valid_npy, read_npz, writing
from utils import SELDError

FEATURE_VERSION = 3  # bump when the feature definition changes, so old features are redone


# --------------------------------------------------------------------------------------------------
# Audio
# --------------------------------------------------------------------------------------------------
def read_audio(path: str | os.PathLike, *, nb_channels: int, fs: int | None = None,
               channels: list[int] | None = None, file_fs: int | None = None) -> tuple[np.ndarray, int, list[str]]:
    """Read a recording: the one audio reader of the pipeline (features, labels and inference).

    Parameters
    ----------
    path : str
    nb_channels : int
        Channels the dataset (or model) uses.
    fs : int, optional
        Sample rate wanted, in Hz; a file at another rate is resampled with ``librosa.resample`` (soxr, high
        quality). Default: the file's.
    channels : list of int, optional
        The file's channels to use, in order (e.g. ``[0, 1, 2, 3]`` of a 32-channel recording). Without it the file
        must have exactly ``nb_channels`` channels.
    file_fs : int, optional
        The rate the file must have (a dataset's own rate); another is an error.

    Returns
    -------
    audio : np.ndarray [shape=(samples, nb_channels)], float32
    fs_file : int
        The file's sample rate.
    notes : list of str
        What was changed (resampling, channel selection), one sentence each, naming the file.

    Raises
    ------
    SELDError
        An unreadable file, no samples, a wrong channel count (more channels than ``nb_channels`` without
        ``channels``, fewer, or ``channels`` out of range), NaN / infinite samples, or a rate other than
        ``file_fs``.
    """
    path = os.fspath(path)
    check_wav_complete(path)
    try:
        audio, fs_file = sf.read(path, dtype='float32', always_2d=True)
    except Exception as err:  # libsndfile raises several types for unreadable files
        raise SELDError(f'{path}: cannot read audio ({err})') from err
    if audio.shape[0] == 0:
        raise SELDError(f'{path}: no audio samples')
    if file_fs is not None and fs_file != file_fs:
        raise SELDError(f'{path}: sample rate {fs_file} Hz, but the dataset is at {file_fs} Hz')
    notes, nb_file = [], audio.shape[1]
    check_channels(path, nb_file=nb_file, nb_channels=nb_channels, channels=channels)
    if channels is not None:
        audio = audio[:, list(channels)]
        notes.append(f'{path}: using channels {list(channels)} of {nb_file}')
    finite = np.isfinite(audio)
    if not finite.all():
        raise SELDError(f'{path}: {int((~finite).sum())} NaN or infinite sample(s) (first at sample '
                        f'{int(np.argmin(finite.all(axis=1)))}); audio must be finite')
    if fs is not None and fs_file != fs:
        import librosa  # the right tool for resampling; imported only when needed

        n = int(round(audio.shape[0] * fs / fs_file))  # librosa can return one sample more (ceil of a round-off)
        audio = librosa.util.fix_length(librosa.resample(audio, orig_sr=fs_file, target_sr=fs, axis=0,
                                                         res_type='soxr_hq'), size=n, axis=0).astype(np.float32)
        notes.append(f'{path}: resampled from {fs_file} Hz to {fs} Hz')
    return np.ascontiguousarray(audio), int(fs_file), notes


def check_channels(path: str, *, nb_file: int, nb_channels: int, channels: list[int] | None) -> None:
    """The channel rule of :func:`read_audio`: exactly ``nb_channels`` channels, or ``channels`` naming that many."""
    if channels is not None:
        if any(not 0 <= c < nb_file for c in channels) or len(channels) != nb_channels:
            raise SELDError(f'{path}: channels={list(channels)} must name {nb_channels} of its {nb_file} '
                            f'channels (0 .. {nb_file - 1})')
    elif nb_file != nb_channels:
        raise SELDError(f'{path}: {nb_file} channel(s), expected {nb_channels}'
                        + ('; name the ones to use with channels=0,1,...' if nb_file > nb_channels else ''))


# --------------------------------------------------------------------------------------------------
# Framing and STFT
# --------------------------------------------------------------------------------------------------
class Framing(NamedTuple):
    """How audio is cut into STFT frames (module docstring).

    Attributes
    ----------
    fs : int
        Sample rate, Hz.
    nfft : int
        FFT size, samples.
    hop_len : int
        Hop, samples.
    win_len : int
        Window length, samples (<= nfft).
    centered : bool
        False: the TUT-2018 framing (frames start at sample ``i * hop``, symmetric Hann of ``nfft``); True:
        frames centred on sample ``i * hop`` (periodic Hann of ``win_len``, zero padding).
    """
    fs: int
    nfft: int
    hop_len: int
    win_len: int
    centered: bool

    @property
    def frame_rate(self) -> float:
        """Frames per second, ``fs / hop_len``."""
        return self.fs / self.hop_len

    @property
    def nb_bins(self) -> int:
        return self.nfft // 2

    def nb_frames(self, nb_samples: int) -> int:
        """Frames of a recording of ``nb_samples`` samples."""
        if self.centered:
            return max(1, int(math.ceil(nb_samples / self.hop_len)))
        return nb_frames_for(nb_samples, nfft=self.nfft, hop_len=self.hop_len)

    def window(self) -> np.ndarray:
        """The analysis window, float32 [shape=(nfft,)]."""
        if not self.centered:
            return np.hanning(self.nfft).astype(np.float32)
        win = np.zeros(self.nfft, np.float32)
        lpad = (self.nfft - self.win_len) // 2
        win[lpad:lpad + self.win_len] = scipy.signal.get_window('hann', self.win_len, fftbins=True)
        return win

    def describe(self) -> dict[str, Any]:
        return dict(fs=self.fs, nfft=self.nfft, hop_len=self.hop_len, win_len=self.win_len, centered=self.centered,
                    frame_rate=self.frame_rate, nb_bins=self.nb_bins,
                    window='hann (np.hanning, symmetric), frames from sample 0' if not self.centered
                    else 'hann (periodic, centred in nfft), frames centred on i*hop', fft_norm='ortho')


def framing_for(*, fs: int, nfft: int | None, hop_len_s: float | None) -> Framing:
    """The framing of the parameters ``nfft`` and ``hop_len_s`` at ``fs`` Hz (module docstring).

    Raises
    ------
    SELDError
        ``hop_len_s * fs`` not a whole number of samples (at least 1), or ``nfft`` shorter than the window or, when
        derived from the hop, longer than 65536 samples.
    """
    if hop_len_s is None:
        if nfft is None:
            raise SELDError('nfft=None needs hop_len_s (the framing by time); the TUT-2018 framing needs nfft')
        return Framing(int(fs), int(nfft), int(nfft) // 2, int(nfft), False)
    hop = hop_len_s * fs
    if not hop_len_s > 0 or abs(hop - round(hop)) > 1e-6 * max(1.0, hop):
        raise SELDError(f'hop_len_s={hop_len_s} is {hop:g} samples at fs={fs} Hz: must be a whole number of samples')
    hop = int(round(hop))
    if hop < 1:
        raise SELDError(f'hop_len_s={hop_len_s} is {hop_len_s * fs:g} samples at fs={fs} Hz: must be at least 1 sample')
    win = 2 * hop
    n = 1 << (win - 1).bit_length() if nfft is None else int(nfft)
    if n > 65536:
        raise SELDError(f'hop_len_s={hop_len_s} needs a window of {win} samples at fs={fs} Hz, an FFT of {n}: at most '
                        f'65536 (a hop of at most 32768 samples)')
    if n < win:
        raise SELDError(f'nfft={n} must be at least the window of 2 * hop = {win} samples (hop_len_s={hop_len_s})')
    return Framing(int(fs), n, hop, win, True)


def nb_frames_for(nb_samples: int, *, nfft: int, hop_len: int) -> int:
    """Number of frames the original scripts use: ``ceil((samples - nfft) / hop)``."""
    if hop_len <= 0 or nfft % hop_len:
        raise SELDError(f'hop_len={hop_len} must divide nfft={nfft}')
    if nb_samples < nfft:
        raise SELDError(f'{nb_samples} samples: need at least one window of nfft={nfft}')
    return int(np.ceil((nb_samples - nfft) / hop_len))


def _frames(audio: np.ndarray, framing: Framing, nb_frames: int | None, first: int = 0) -> tuple[np.ndarray, int]:
    """A strided view of frames ``first .. first + nb_frames - 1`` of ``audio`` [shape=(samples, channels)]:
    (frames, channels, nfft), float32. Centred frames read zeros beyond the ends of the audio."""
    audio = np.asarray(audio)
    if audio.ndim != 2:
        raise SELDError(f'audio has shape {audio.shape}: expected (samples, channels)')
    if nb_frames is None:
        nb_frames = framing.nb_frames(audio.shape[0]) - first
    audio = audio.astype(np.float32, copy=False)
    start = first * framing.hop_len - (framing.nfft // 2 if framing.centered else 0)
    stop = start + (nb_frames - 1) * framing.hop_len + framing.nfft
    if framing.centered and (start < 0 or stop > audio.shape[0]):
        seg = np.zeros((stop - start, audio.shape[1]), np.float32)
        lo, hi = max(start, 0), min(stop, audio.shape[0])
        seg[lo - start:hi - start] = audio[lo:hi]
    elif stop > audio.shape[0]:
        raise SELDError(f'{audio.shape[0]} samples is too short for {first + nb_frames} frames (needs {stop})')
    else:
        seg = audio[start:stop]
    return np.lib.stride_tricks.sliding_window_view(seg, framing.nfft, axis=0)[::framing.hop_len], nb_frames


def stft(audio: np.ndarray, *, nfft: int, hop_len: int | None = None, nb_frames: int | None = None,
         framing: Framing | None = None) -> np.ndarray:
    """Short-time Fourier transform, all frames at once.

    Parameters
    ----------
    audio : np.ndarray [shape=(samples, channels)]
    nfft : int
        FFT size (and window length of the TUT-2018 framing).
    hop_len : int, optional
        Hop in samples of the TUT-2018 framing (``nfft/2``; default).
    nb_frames : int, optional
        Frames to compute; default :meth:`Framing.nb_frames`.
    framing : Framing, optional
        Another framing (then ``nfft`` and ``hop_len`` are taken from it).

    Returns
    -------
    spec : np.ndarray [shape=(frames, nfft/2, channels)], complex64
    """
    framing = framing or Framing(0, nfft, hop_len or nfft // 2, nfft, False)
    frames, _ = _frames(audio, framing, nb_frames)
    spec = scipy.fft.rfft(frames * framing.window(), axis=-1, norm='ortho')[..., :framing.nb_bins]
    return spec.astype(np.complex64, copy=False).transpose(0, 2, 1)


def spectrogram_features(spec: np.ndarray) -> np.ndarray:
    """Magnitude and phase maps of every channel.

    Parameters
    ----------
    spec : np.ndarray [shape=(frames, bins, channels)], complex

    Returns
    -------
    feat : np.ndarray [shape=(frames, bins, 2*channels)], float32
        ``feat[..., :channels]`` is the magnitude, ``feat[..., channels:]`` the phase in radians.
    """
    frames, bins, ch = spec.shape
    feat = np.empty((frames, bins, 2 * ch), dtype=np.float32)
    np.abs(spec, out=feat[..., :ch])
    np.arctan2(spec.imag, spec.real, out=feat[..., ch:])  # = np.angle, written in place
    return feat


def _feature_blocks(audio: np.ndarray, framing: Framing, nb_frames: int | None, block_frames: int,
                    first: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """The magnitude and phase maps of ``block_frames`` frames at a time (shared by the two one-pass functions).

    Yields ``(first_frame, maps)`` with ``maps`` float32 [shape=(2*channels, n, nfft/2)], channel-major
    (contiguous ufunc loops): magnitudes, then phases. The same array is reused for every block.
    """
    if block_frames < 1:
        raise SELDError(f'block_frames={block_frames} must be at least 1')
    frames, nb_frames = _frames(audio, framing, nb_frames, first)
    ch, bins, nfft = frames.shape[1], framing.nb_bins, framing.nfft
    win = framing.window()
    windowed = np.empty((ch, block_frames, nfft), np.float32)
    maps = np.empty((2 * ch, block_frames, bins), np.float32)
    for i in range(0, nb_frames, block_frames):
        n = min(nb_frames - i, block_frames)
        np.multiply(frames[i:i + n].transpose(1, 0, 2), win, out=windowed[:, :n])
        spec = scipy.fft.rfft(windowed[:, :n], axis=-1, norm='ortho')[..., :bins]
        np.abs(spec, out=maps[:ch, :n])
        np.arctan2(spec.imag, spec.real, out=maps[ch:, :n])
        yield i, maps[:, :n]


def extract_features(audio: np.ndarray, *, nfft: int | None = None, hop_len: int | None = None,
                     framing: Framing | None = None, nb_frames: int | None = None, first_frame: int = 0,
                     mean: np.ndarray | None = None, scale: np.ndarray | None = None,
                     block_frames: int = 128) -> np.ndarray:
    """Features in one pass: ``spectrogram_features(stft(...))``, optionally standardized, ``block_frames`` at a time.

    The same values bit for bit as the two-step version (and, with ``mean`` and ``scale``, as
    ``(features - mean) / scale`` in float32), computed so that the windowed frames, the spectrum and the maps of a
    block stay in the CPU cache, without full-size temporaries.

    Parameters
    ----------
    audio : np.ndarray [shape=(samples, channels)], float32
    nfft, hop_len : int
        The TUT-2018 framing (window = nfft, hop default nfft/2), or
    framing : Framing
        any framing.
    nb_frames : int, optional
        Frames to compute; default all (:meth:`Framing.nb_frames`) from ``first_frame`` on.
    first_frame : int
        Index of the first frame to compute (frames are those of the whole ``audio``: a long recording can be
        processed a block of frames at a time).
    mean, scale : np.ndarray [shape=(nfft/2, 2*channels)], optional
        Standardize with these (both or neither); they are cast to float32.
    block_frames : int
        Frames per block (128: 2 MB of work for 4 channels and nfft 512).

    Returns
    -------
    feat : np.ndarray [shape=(frames, nfft/2, 2*channels)], float32
        Magnitude maps, then phase maps (radians), as :func:`spectrogram_features`.
    """
    framing = framing or Framing(0, nfft, hop_len or nfft // 2, nfft, False)
    audio = np.asarray(audio)
    n = framing.nb_frames(audio.shape[0]) - first_frame if nb_frames is None else nb_frames
    shape = (n, framing.nb_bins, 2 * audio.shape[1])
    out = np.empty(shape, np.float32)
    if (mean is None) != (scale is None):
        raise SELDError('mean and scale: pass both (to standardize) or neither')
    if mean is not None:  # (maps, 1, bins): broadcasts over a block's frames
        mean, scale = (np.ascontiguousarray(np.asarray(a, np.float32).reshape(shape[1:]).T[:, None, :])
                       for a in (mean, scale))
    for i, maps in _feature_blocks(audio, framing, n, block_frames, first_frame):
        if mean is not None:
            maps -= mean
            maps /= scale
        block = out[i:i + maps.shape[1]]
        for m in range(shape[2]):  # one map at a time: faster than a 3-D transposed copy
            block[:, :, m] = maps[m]
    return out


def audio_feature_stats(audio: np.ndarray, *, nfft: int | None = None, hop_len: int | None = None,
                        framing: Framing | None = None, nb_frames: int | None = None,
                        block_frames: int = 128) -> tuple[int, np.ndarray, np.ndarray]:
    """Statistics of the features of ``audio`` without storing them: :func:`feature_stats` of :func:`extract_features`.

    The float64 statistics of each block (its mean, then the squared deviations from it) are merged with
    Chan et al.'s formula (:func:`merge_stats`); they agree with the two-pass :func:`feature_stats` to ~1e-12.

    Returns
    -------
    count : int
        Frames.
    mean, m2 : np.ndarray [shape=(nfft/2, 2*channels)], float64
        Mean and sum of squared deviations over frames.
    """
    framing = framing or Framing(0, nfft, hop_len or nfft // 2, nfft, False)
    stats, work, ones = [], None, None
    for _, maps in _feature_blocks(audio, framing, nb_frames, block_frames):
        n = maps.shape[1]
        if work is None or work.shape != maps.shape:
            work, ones = np.empty(maps.shape, np.float64), np.ones(n)
        work[...] = maps
        mean = (ones @ work) / n  # (maps, bins): the frame sums as one matrix-vector product
        work -= mean[:, None]
        stats.append((n, mean, np.einsum('mfb,mfb->mb', work, work)))
    n, mean, m2 = merge_stats(stats)
    return n, np.ascontiguousarray(mean.T), np.ascontiguousarray(m2.T)


# --------------------------------------------------------------------------------------------------
# Streaming standard scaler (identical to sklearn's StandardScaler, fitted one file at a time)
# --------------------------------------------------------------------------------------------------
def feature_stats(feat: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Count, mean and sum of squared deviations (M2) over frames, in float64."""
    x = np.asarray(feat)
    mean = x.mean(axis=0, dtype=np.float64)
    m2 = np.zeros_like(mean)
    for i in range(0, x.shape[0], 1024):  # float64 in blocks of frames: no full-size float64 copies
        d = x[i:i + 1024].astype(np.float64) - mean
        m2 += np.einsum('i...,i...->...', d, d)
    return x.shape[0], mean, m2


def merge_stats(stats: Iterable[tuple[int, np.ndarray, np.ndarray]]) -> tuple[int, np.ndarray, np.ndarray]:
    """Merge per-file (count, mean, M2) with Chan et al.'s pairwise formula (numerically stable)."""
    n, mean, m2 = 0, None, None
    for nb, mb, m2b in stats:
        if mean is None:
            n, mean, m2 = nb, mb.copy(), m2b.copy()
            continue
        delta = mb - mean
        tot = n + nb
        mean = mean + delta * (nb / tot)
        m2 = m2 + m2b + delta ** 2 * (n * nb / tot)
        n = tot
    if mean is None:
        raise SELDError('no statistics to merge: the scaler needs at least one train file')
    return n, mean, m2


def scaler_from_stats(n: int, mean: np.ndarray, m2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale as sklearn's StandardScaler: population std, and 1 for constant features.

    A feature counts as constant, as in sklearn (``_is_constant_feature``), when its variance is within the
    rounding error bound of the two-pass variance: ``var <= n*eps*var + (n*mean*eps)**2``.
    """
    var = m2 / n
    eps = np.finfo(np.float64).eps
    constant = var <= n * eps * var + (n * mean * eps) ** 2
    return mean, np.where(constant, 1.0, np.sqrt(var))


# --------------------------------------------------------------------------------------------------
# One dataset's features
# --------------------------------------------------------------------------------------------------
class FeatureClass:
    """Features, labels and the scaler of one dataset (and the part of it the parameters select).

    Parameters
    ----------
    params : dict
        Resolved parameters (:func:`parameter.get_params`): the dataset keys of :class:`datasets.Dataset`,
        ``feat_label_dir``, ``nfft``, ``hop_len_s``, ``fs`` (None: the dataset's) and ``channels``.
    unseen_doa : bool
        The test-only dataset of ``unseen_doa_dir`` (same layout and classes), standardized with the main dataset's
        scaler; its features go beside the main ones (``<feat_label_dir>_unseen_doa``).

    Attributes
    ----------
    dataset : datasets.Dataset
    framing : Framing
    fs, nfft, hop_len, nb_channels, nb_classes : int
    frame_rate : float
        Model frames per second.
    label_rate : float or None
        Frames per second of the dataset's frame metadata.
    classes : list of str
    feat_label_dir : str
        Where this dataset's features go.
    output_layout : multitrack_labels.OutputLayout
        ``output``, ``frames_per_output`` (``prod(t_pool_size)``), ``output_rate``, ``target_shape``.
    has_target : bool
        ``target/`` is written (:func:`multitrack_labels.output_target`): an output other than ``seldnet``, or time
        pooling; otherwise the files are those of SELDnet alone.
    """

    def __init__(self, params: dict[str, Any], *, unseen_doa: bool = False):
        self.params = params
        self.unseen_doa = unseen_doa
        if unseen_doa:  # the test-only dataset of params['unseen_doa_dir'], with the features of the main one
            main = FeatureClass(params)
            params = dict(params, dataset_dir=params['unseen_doa_dir'])
        self.dataset = datasets.Dataset(params, test_only=unseen_doa)
        self.classes = self.dataset.classes
        self.nb_classes = len(self.classes)
        self.nb_channels = self.dataset.nb_channels
        self.fs = int(params.get('fs') or self.dataset.fs)
        self.framing = framing_for(fs=self.fs, nfft=params.get('nfft'), hop_len_s=params.get('hop_len_s'))
        self.nfft, self.hop_len = self.framing.nfft, self.framing.hop_len
        self.frame_rate = self.framing.frame_rate
        self.label_rate = self.dataset.label_rate
        self.channels = params.get('channels')
        d = self.dataset
        self.features = params.get('features', 'magphase')  # the layout of the stored features: (bins, maps)
        self.nb_bins, self.maps = (self.framing.nb_bins, [f'{k}{c}' for k in ('mag', 'phase') for c in range(
            self.nb_channels)]) if self.features == 'magphase' else dcase_features.layout(
            self.features, nb_channels=self.nb_channels, audio_format=d.audio_format, fs=self.fs, nfft=self.nfft)
        self.feat_shape = (self.nb_bins, len(self.maps))
        if d.spec.is_tut:
            name = f'{d.name}_ov{params["overlap"]}_split{d.split}_{params["db"]}db_nfft{self.nfft}'
        else:
            name = f'{d.name}_{d.audio_format}_split{d.split}_hop{self.hop_len}_nfft{self.nfft}'
        if self.fs != d.fs:
            name += f'_fs{self.fs}'
        if self.features != 'magphase':
            name += f'_{self.features}'
        self.output_layout = multitrack_labels.output_layout(
            output=params.get('output', 'seldnet'), t_pool_size=params.get('t_pool_size'),
            frame_rate=self.frame_rate, nb_classes=self.nb_classes, label_rate=self.label_rate)
        self.has_target = self.output_layout.has_target
        if self.output_layout.output == 'multi_accddoa' and d.spec.meta_format == 'dcase2020':
            raise SELDError(f'output=multi_accddoa: dataset {d.name} has no distances in its metadata; use one '
                            f'with distances (starss23 with the DCASE 2024 labels, or events in seconds)')
        # multi_accddoa with azi_only: the 2025 values (x, y, distance, on-screen; multitrack_labels.output_target)
        self.azi_target = bool(params.get('azi_only')) and self.output_layout.output == 'multi_accddoa'
        if self.has_target:  # one folder per target layout, so that two outputs' runs keep their own targets
            name += f'_{self.output_layout.output}_x{self.output_layout.frames_per_output}' + '_azi' * self.azi_target
        self.feat_label_dir = os.path.join(params['feat_label_dir'], name)
        if unseen_doa:
            self.feat_label_dir = main.feat_label_dir + '_unseen_doa'
            if (self.classes, self.nb_channels, self.fs) != (main.classes, main.nb_channels, main.fs):
                raise SELDError(f"unseen_doa_dir={params['dataset_dir']}: its classes, channels and rate "
                                f'{(self.classes, self.nb_channels, self.fs)} must be those of the main dataset '
                                f'{(main.classes, main.nb_channels, main.fs)}')
        self.feat_dir_norm = os.path.join(self.feat_label_dir, 'feat_norm')
        self.label_dir = os.path.join(self.feat_label_dir, 'label')
        self.info_dir = os.path.join(self.feat_label_dir, 'info')
        self.stats_dir = os.path.join(self.feat_label_dir, 'stats')
        self.scaler_file = main.scaler_file if unseen_doa else os.path.join(self.feat_label_dir, 'scaler.npz')
        self.manifest_file = os.path.join(self.feat_label_dir, 'extraction.json')
        self.target_dir = os.path.join(self.feat_label_dir, 'target')

    # ---- files ---------------------------------------------------------------------------------
    def recordings(self) -> list[datasets.Recording]:
        """Every recording of the dataset with its part (:meth:`datasets.Dataset.recordings`)."""
        return self.dataset.recordings()

    def paths(self, stem: str) -> dict[str, str]:
        """The output files of one recording."""
        return dict(label=os.path.join(self.label_dir, stem + '.npy'), info=os.path.join(self.info_dir, stem + '.json'),
                    stats=os.path.join(self.stats_dir, stem + '.npz'), feat=os.path.join(self.feat_dir_norm, stem + '.npy'),
                    target=os.path.join(self.target_dir, stem + '.npy'))  # (written with has_target only)

    def load_audio(self, path: str) -> np.ndarray:
        """A recording at :attr:`fs` with :attr:`nb_channels` channels (:func:`read_audio`); a file at another rate
        than the dataset's is an error (``fs=`` asks for resampling from the dataset's rate)."""
        return read_audio(path, nb_channels=self.nb_channels, fs=self.fs, channels=self.channels,
                          file_fs=self.dataset.fs)[0]

    def config(self) -> dict[str, Any]:
        """What the features and labels depend on; a change invalidates existing ones."""
        layout = '[magnitude x channels, phase x channels]' if self.features == 'magphase' else dict(
            features=self.features, nb_bins=self.nb_bins, maps=self.maps)
        config = dict(feature_version=FEATURE_VERSION, dataset=self.dataset.name, format=self.dataset.audio_format,
                      classes=self.classes, nb_channels=self.nb_channels, channels=self.channels,
                      label_rate=self.label_rate, feature_layout=layout, **self.framing.describe())
        if self.has_target:  # SELDnet without time pooling keeps its manifest as it was
            config['target'] = self.output_layout.describe()
        return config

    def feature_info(self) -> dict[str, Any]:
        """What a model needs to know about the features (saved into every run's params.json)."""
        return dict(classes=self.classes, nb_classes=self.nb_classes, nb_channels=self.nb_channels,
                    label_rate=self.label_rate, feat_label_dir=self.feat_label_dir, dataset=self.dataset.name,
                    format=self.dataset.audio_format, features=self.features, feature_shape=list(self.feat_shape),
                    feature_maps=self.maps, **self.framing.describe(),
                    **(self.output_layout.describe() if self.has_target else {}))

    def compute_features(self, audio: np.ndarray, *, mean: np.ndarray | None = None,
                         scale: np.ndarray | None = None) -> np.ndarray:
        """The features of a whole recording [shape=(frames, bins, maps)], float32, standardized when ``mean`` and
        ``scale`` are given: :func:`extract_features` (``magphase``) or :func:`dcase_features.compute`."""
        if self.features == 'magphase':
            return extract_features(audio, framing=self.framing, mean=mean, scale=scale)
        feat = dcase_features.compute(_frames(audio, self.framing, None)[0], window=self.framing.window(),
                                      features=self.features, fs=self.fs, audio_format=self.dataset.audio_format)
        if mean is not None:
            feat -= mean.astype(np.float32)
            feat /= scale.astype(np.float32)
        return feat

    # ---- pass 1: labels, info and statistics ----------------------------------------------------
    def analyze(self, rec: datasets.Recording) -> None:
        """Read one recording (every check of :func:`read_audio`), write its labels and info and, for a train
        recording, the statistics of its features. The features themselves are computed again, standardized, by
        :meth:`write_features`. The label is written last: its presence marks the recording as analyzed."""
        p = self.paths(rec.stem)
        audio = self.load_audio(rec.wav)
        duration = audio.shape[0] / self.fs
        nb_frames = self.framing.nb_frames(audio.shape[0])
        ref = self.dataset.read_reference(rec, duration_s=duration)
        if isinstance(ref, label_frames.Events):
            label = label_frames.desc_to_labels(ref, nb_classes=self.nb_classes, nb_frames=nb_frames, frame_rate=self.frame_rate)
        else:
            label = label_frames.instances_to_labels(ref, nb_classes=self.nb_classes, nb_frames=nb_frames,
                                        frame_rate=self.frame_rate, label_rate=self.label_rate)
        out = self.output_layout
        target = None if not self.has_target else multitrack_labels.output_target(
            ref, output=out.output, nb_classes=self.nb_classes, nb_frames=out.nb_frames(nb_frames),
            frame_rate=out.output_rate, label_rate=self.label_rate, where=rec.meta, azi_only=self.azi_target)
        if rec.part == 'train':
            n, mean, m2 = audio_feature_stats(audio, framing=self.framing, nb_frames=nb_frames) \
                if self.features == 'magphase' else feature_stats(self.compute_features(audio))
            with writing(p['stats']):
                utils.save_npz(p['stats'], n=n, mean=mean, m2=m2)
        with writing(p['info']):
            utils.write_json(p['info'], dict(stem=rec.stem, part=rec.part, fold=rec.fold,
                                             nb_samples=int(audio.shape[0]), fs=self.fs, duration_s=duration,
                                             nb_frames=nb_frames, wav=rec.wav, meta=rec.meta))
        if target is not None:
            with writing(p['target']):
                utils.save_npy(p['target'], target)
        with writing(p['label']):
            utils.save_npy(p['label'], label)

    def is_analyzed(self, rec: datasets.Recording) -> bool:
        """Label and info (and, for a train recording, statistics) exist, are newer than the wav and metadata, were
        made for the recording's current part, and are complete: the label a ``.npy`` of (frames, 4*classes) float32
        whose size matches its header, the info valid JSON, the statistics a readable archive; with
        :attr:`has_target`, the target a ``.npy`` of its shape. A damaged file is redone."""
        p = self.paths(rec.stem)
        need = ('label', 'info', 'stats') if rec.part == 'train' else ('label', 'info')
        if not all(os.path.exists(p[k]) for k in need):
            return False
        if os.path.getmtime(p['label']) < max(os.path.getmtime(rec.wav), os.path.getmtime(rec.meta)):
            return False
        try:
            info = self.file_info(rec.stem)
            if rec.part == 'train':
                read_npz(p['stats'], ('n', 'mean', 'm2'), what='statistics file')
        except SELDError:
            return False
        out = self.output_layout
        if self.has_target and not is_valid_npy(p['target'], shape=(out.nb_frames(info['nb_frames']),)
                                                + out.target_shape, dtype=np.float32):
            return False  # (written just before the label: as recent as it)
        return info.get('part') == rec.part and is_valid_npy(
            p['label'], shape=(info.get('nb_frames'), 4 * self.nb_classes), dtype=np.float32)

    def file_info(self, stem: str) -> dict[str, Any]:
        """The info of one analyzed recording (part, fold, nb_samples, fs, duration_s, nb_frames, wav, meta)."""
        path = self.paths(stem)['info']
        try:
            info = utils.read_json(path)
        except (UnicodeDecodeError, OSError) as err:
            raise SELDError(f'{path}: not valid JSON ({err}); {REDO}') from err
        if not isinstance(info, dict) or not isinstance(info.get('nb_frames'), int) \
                or not isinstance(info.get('duration_s'), (int, float)):
            raise SELDError(f'{path}: not a recording info file (nb_frames, duration_s missing); {REDO}')
        return info

    def fit_scaler(self) -> tuple[np.ndarray, np.ndarray]:
        """Fit the standard scaler on the train part's statistics and save it as ``scaler.npz``.

        The file is kept if it already holds the same scaler (so the features are not redone), and it is created
        with a hard link, which fails if another process has created it meanwhile: shards that fit the scaler at
        the same time (each from the same statistics) therefore keep the first one's file and its time stamp.
        """
        train = [r.stem for r in self.recordings() if r.part == 'train']
        missing = [s for s in train if not os.path.exists(self.paths(s)['stats'])]
        if missing:
            raise SELDError(f'{self.stats_dir}: no statistics for {missing[:5]}: run the stats stage first')

        def load(s: str) -> tuple[int, np.ndarray, np.ndarray]:
            z = read_npz(self.paths(s)['stats'], ('n', 'mean', 'm2'), what='statistics file')
            return int(z['n']), z['mean'], z['m2']

        n, mean, m2 = merge_stats(load(s) for s in train)
        mean, scale = scaler_from_stats(n, mean, m2)

        def same() -> bool:
            if not os.path.exists(self.scaler_file):
                return False
            try:
                z = read_npz(self.scaler_file, ('mean', 'scale'), what='scaler file')
            except SELDError:  # a damaged scaler: replaced below
                return False
            return z['mean'].shape == mean.shape and np.array_equal(z['mean'], mean) \
                and np.array_equal(z['scale'], scale)

        if not same():
            with writing(self.scaler_file):
                fd, tmp = tempfile.mkstemp(prefix='.scaler.', suffix='.tmp.npz', dir=self.feat_label_dir)
                os.close(fd)
                try:
                    np.savez(tmp, mean=mean, scale=scale, n_samples=np.int64(n))
                    try:
                        os.link(tmp, self.scaler_file)  # atomic create-if-absent
                    except FileExistsError:
                        if not same():  # an older scaler (made from other statistics): replace it
                            os.replace(tmp, self.scaler_file)
                    except OSError:  # a filesystem without hard links
                        os.replace(tmp, self.scaler_file)
                finally:
                    if os.path.exists(tmp):
                        os.remove(tmp)
        return mean, scale

    # ---- pass 2: normalized features ------------------------------------------------------------
    def is_extracted(self, rec: datasets.Recording) -> bool:
        """The normalized features exist, are newer than the scaler and the recording's wav and metadata, and are
        complete: a ``.npy`` of (frames,) + :attr:`feat_shape` float32 whose size matches its header. A damaged file
        is redone."""
        feat = self.paths(rec.stem)['feat']
        if not (os.path.exists(feat) and os.path.exists(self.scaler_file) and os.path.getmtime(feat) >= max(
                os.path.getmtime(self.scaler_file), os.path.getmtime(rec.wav), os.path.getmtime(rec.meta))):
            return False
        try:
            frames = self.file_info(rec.stem)['nb_frames']
        except SELDError:
            return False
        return is_valid_npy(feat, shape=(frames,) + self.feat_shape, dtype=np.float32)

    def write_features(self, rec: datasets.Recording, *, mean: np.ndarray, scale: np.ndarray) -> None:
        """Compute one recording's features, standardize them and write them to ``feat_norm/`` (atomically)."""
        audio = self.load_audio(rec.wav)
        feat = self.compute_features(audio, mean=mean, scale=scale)
        path = self.paths(rec.stem)['feat']
        with writing(path):
            utils.save_npy(path, feat)


def load_scaler(path: str, *, hint: str = REDO) -> tuple[np.ndarray, np.ndarray]:
    """Load ``scaler.npz`` (arrays only, never pickles); ``hint`` (what to do about a bad file) ends its errors.

    Returns
    -------
    mean, scale : np.ndarray [shape=(bins, 2*channels)], float32

    Raises
    ------
    SELDError
        Missing, not an ``.npz`` archive, truncated, without ``mean`` and ``scale`` of one 2-D shape, or with a
        non-finite value or a scale <= 0: naming the file.
    """
    z = read_npz(path, ('mean', 'scale'), what='scaler file', hint=hint)
    mean, scale = z['mean'].astype(np.float32), z['scale'].astype(np.float32)
    if mean.ndim != 2 or scale.shape != mean.shape:
        raise SELDError(f'{path}: not a valid scaler file (mean {mean.shape} and scale {scale.shape} must be one 2-D '
                        f'shape); {hint}')
    if not (scale > 0).all():
        raise SELDError(f'{path}: not a valid scaler file ({int((scale <= 0).sum())} scale value(s) <= 0); {hint}')
    return mean, scale

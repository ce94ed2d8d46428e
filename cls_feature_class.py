"""Features, labels and normalization for SELDnet on the TUT Sound Events 2018 layout.

Layout read (see README.md)::

    <dataset_dir>/wav_ov{ov}_split{split}_{db}db/{train|test}_{i}_desc_{db}_{n}.wav
    <dataset_dir>/desc_ov{ov}_split{split}/{train|test}_{i}_desc_{db}_{n}.csv
    <dataset_dir>/dataset_info.json   (optional; written by synthesize_dataset.py: classes, channels, rate)

Layout written, one folder per dataset/overlap/split/SNR/FFT size::

    <feat_label_dir>/{dataset}_ov{ov}_split{split}_{db}db_nfft{nfft}/
        feat_norm/{stem}.npy   float32 [shape=(frames, nfft/2, 2*channels)] magnitude then phase maps,
                               standardized with the train-split scaler (unnormalized = x * scale + mean)
        label/{stem}.npy       float32 [shape=(frames, 4*classes)]: SED, then x, y, z blocks per class
        stats/{stem}.npz       per train file: count, mean and M2 of its features (the scaler merges them)
        scaler.npz             mean, scale [shape=(nfft/2, 2*channels)] fitted on train files only
        extraction.json        the parameters and classes the features were made with

Two passes, so that the features are written once, already standardized: pass 1 (:meth:`FeatureClass.analyze_all`)
writes the labels and the statistics of every train file's features without storing the features; pass 2
(:meth:`FeatureClass.write_features_all`), after :meth:`FeatureClass.fit_scaler`, computes the features again,
standardizes them and writes them. Computing a train file's STFT twice is cheaper than writing and re-reading
its features (4.2x the size of the wav): see benchmarks/README.md.

Differences from the original scripts, on purpose:

* The original stored the spectrogram as ``(frames, bins*channels)`` and the data generator reshaped
  ``[|S|, angle(S)]`` to ``(frames, bins, 2*channels)``, which folds pairs of neighbouring bins into
  the channel axis (bin b of channel c lands at bin ``(b*C + c) // (2C)``). Here every channel's
  magnitude and phase is its own map: ``feat[..., c]`` is ``|S_c|`` and ``feat[..., C + c]`` is
  ``angle(S_c)``, with the frequency axis intact.
* The STFT is computed with strided views and one FFT call per block of frames, not frame by frame, in one
  pass with the magnitude/phase maps and their standardization (:func:`extract_features`) or their statistics
  (:func:`audio_feature_stats`).
* The DOA target of an event covers the same frames as its SED target (``floor(start*fr)`` to
  ``ceil(end*fr)`` inclusive); the original left the last SED-active frame with a (0, 0, 0) target.
"""
from __future__ import annotations

import functools
import os
import re
import shutil
import tempfile
import threading
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import scipy.fft
import soundfile as sf

import formats
import utils
from utils import SELDError

# Class tables of the real TUT 2018 datasets (used when dataset_info.json is absent).
DCASE2016_CLASSES = ['knock', 'drawer', 'clearthroat', 'phone', 'keysDrop', 'speech', 'keyboard', 'pageturn',
                     'cough', 'doorslam', 'laughter']
REAL_CLASSES = ['1', '3', '4', '5', '6', '7', '8', '9']  # UrbanSound8K class ids of TUT-REAL
DATASET_INFO = 'dataset_info.json'
FEATURE_VERSION = 2  # bump when the feature definition changes, so old features are redone


# --------------------------------------------------------------------------------------------------
# Pure functions: STFT, features, description files, labels
# --------------------------------------------------------------------------------------------------
def nb_frames_for(nb_samples: int, *, nfft: int, hop_len: int) -> int:
    """Number of frames the original scripts use: ``ceil((samples - nfft) / hop)``."""
    if hop_len <= 0 or nfft % hop_len:
        raise SELDError(f'hop_len={hop_len} must divide nfft={nfft}')
    if nb_samples < nfft:
        raise SELDError(f'{nb_samples} samples: need at least one window of nfft={nfft}')
    return int(np.ceil((nb_samples - nfft) / hop_len))


def _check_framing(audio: np.ndarray, *, nfft: int, hop_len: int,
                   nb_frames: int | None) -> tuple[np.ndarray, int, int]:
    """Validate ``audio`` [shape=(samples, channels)] for ``nb_frames`` frames (default: as many as fit).

    Returns the audio as an array, the number of frames and the number of samples they need.
    """
    audio = np.asarray(audio)
    if audio.ndim != 2:
        raise SELDError(f'audio has shape {audio.shape}: expected (samples, channels)')
    if nb_frames is None:
        nb_frames = nb_frames_for(audio.shape[0], nfft=nfft, hop_len=hop_len)
    needed = (nb_frames - 1) * hop_len + nfft
    if audio.shape[0] < needed:
        raise SELDError(f'{audio.shape[0]} samples is too short for {nb_frames} frames (needs {needed})')
    return audio, nb_frames, needed


def stft(audio: np.ndarray, *, nfft: int, hop_len: int, nb_frames: int | None = None) -> np.ndarray:
    """Short-time Fourier transform exactly as the original SELDnet scripts compute it.

    Symmetric Hann window (``np.hanning``) of length ``nfft``, hop ``hop_len``, FFT with
    ``norm='ortho'``, bins ``0 .. nfft/2 - 1`` (the Nyquist bin is dropped), all frames at once.

    Parameters
    ----------
    audio : np.ndarray [shape=(samples, channels)]
    nfft : int
        FFT size and window length in samples.
    hop_len : int
        Hop in samples.
    nb_frames : int, optional
        Frames to compute; default ``ceil((samples - nfft) / hop_len)``.

    Returns
    -------
    spec : np.ndarray [shape=(frames, nfft/2, channels)], complex64
    """
    audio, nb_frames, needed = _check_framing(audio, nfft=nfft, hop_len=hop_len, nb_frames=nb_frames)
    # Channel-major copy: every frame is then contiguous, and scipy's pocketfft works in native float32.
    chans = np.ascontiguousarray(audio[:needed].T, dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(chans, nfft, axis=1)[:, ::hop_len]  # (channels, frames, nfft)
    spec = scipy.fft.rfft(frames * np.hanning(nfft).astype(np.float32), axis=-1, norm='ortho')
    return spec[..., :nfft // 2].astype(np.complex64, copy=False).transpose(1, 2, 0)


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


def _feature_blocks(audio: np.ndarray, *, nfft: int, hop_len: int, nb_frames: int | None,
                    block_frames: int) -> Iterator[tuple[int, np.ndarray]]:
    """The magnitude and phase maps of ``block_frames`` frames at a time (shared by the two one-pass functions).

    Yields ``(first_frame, maps)`` with ``maps`` float32 [shape=(2*channels, n, nfft/2)], channel-major
    (contiguous ufunc loops): magnitudes, then phases. The same array is reused for every block.
    """
    if block_frames < 1:
        raise SELDError(f'block_frames={block_frames} must be at least 1')
    audio, nb_frames, needed = _check_framing(audio, nfft=nfft, hop_len=hop_len, nb_frames=nb_frames)
    ch, bins = audio.shape[1], nfft // 2
    audio = audio.astype(np.float32, copy=False)
    frames = np.lib.stride_tricks.sliding_window_view(audio[:needed], nfft, axis=0)[::hop_len]  # (frames, ch, nfft)
    win = np.hanning(nfft).astype(np.float32)
    windowed = np.empty((ch, block_frames, nfft), np.float32)
    maps = np.empty((2 * ch, block_frames, bins), np.float32)
    for i in range(0, nb_frames, block_frames):
        n = min(nb_frames - i, block_frames)
        np.multiply(frames[i:i + n].transpose(1, 0, 2), win, out=windowed[:, :n])
        spec = scipy.fft.rfft(windowed[:, :n], axis=-1, norm='ortho')[..., :bins]
        np.abs(spec, out=maps[:ch, :n])
        np.arctan2(spec.imag, spec.real, out=maps[ch:, :n])
        yield i, maps[:, :n]


def extract_features(audio: np.ndarray, *, nfft: int, hop_len: int, nb_frames: int | None = None,
                     mean: np.ndarray | None = None, scale: np.ndarray | None = None, block_frames: int = 128,
                     out: np.ndarray | None = None) -> np.ndarray:
    """Features in one pass: ``spectrogram_features(stft(...))``, optionally standardized, ``block_frames`` at a time.

    The same values bit for bit as the two-step version (and, with ``mean`` and ``scale``, as
    ``(features - mean) / scale`` in float32), computed so that the windowed frames, the spectrum and the maps of a
    block stay in the CPU cache, without full-size temporaries (the two-step version makes four 42 MB arrays per
    30 s 4-channel clip).

    Parameters
    ----------
    audio : np.ndarray [shape=(samples, channels)], float32
    nfft, hop_len : int
        FFT size (= window length) and hop in samples.
    nb_frames : int, optional
        Frames to compute; default ``ceil((samples - nfft) / hop_len)``.
    mean, scale : np.ndarray [shape=(nfft/2, 2*channels)], optional
        Standardize with these (both or neither); they are cast to float32.
    block_frames : int
        Frames per block (128: 2 MB of work for 4 channels and nfft 512).
    out : np.ndarray [shape=(frames, nfft/2, 2*channels)], float32, optional
        Where to write the features (a buffer reused across files saves the page faults of a new array).

    Returns
    -------
    feat : np.ndarray [shape=(frames, nfft/2, 2*channels)], float32
        Magnitude maps, then phase maps (radians), as :func:`spectrogram_features`.
    """
    audio, nb_frames, _ = _check_framing(audio, nfft=nfft, hop_len=hop_len, nb_frames=nb_frames)
    shape = (nb_frames, nfft // 2, 2 * audio.shape[1])
    if out is None:
        out = np.empty(shape, np.float32)
    elif out.shape != shape or out.dtype != np.float32:
        raise SELDError(f'out has shape {out.shape} and dtype {out.dtype}: expected {shape} float32')
    if (mean is None) != (scale is None):
        raise SELDError('mean and scale: pass both (to standardize) or neither')
    if mean is not None:  # (maps, 1, bins): broadcasts over a block's frames
        mean, scale = (np.ascontiguousarray(np.asarray(a, np.float32).reshape(shape[1:]).T[:, None, :])
                       for a in (mean, scale))
    for i, maps in _feature_blocks(audio, nfft=nfft, hop_len=hop_len, nb_frames=nb_frames,
                                   block_frames=block_frames):
        if mean is not None:
            maps -= mean
            maps /= scale
        block = out[i:i + maps.shape[1]]
        for m in range(shape[2]):  # one map at a time: faster than a 3-D transposed copy
            block[:, :, m] = maps[m]
    return out


def audio_feature_stats(audio: np.ndarray, *, nfft: int, hop_len: int, nb_frames: int | None = None,
                        block_frames: int = 128) -> tuple[int, np.ndarray, np.ndarray]:
    """Statistics of the features of ``audio`` without storing them: :func:`feature_stats` of :func:`extract_features`.

    The float64 statistics of each block (its mean, then the squared deviations from it) are merged with
    Chan et al.'s formula (:func:`merge_stats`); they agree with the two-pass :func:`feature_stats` to ~1e-12.

    Parameters
    ----------
    audio : np.ndarray [shape=(samples, channels)], float32
    nfft, hop_len, nb_frames, block_frames
        As :func:`extract_features`.

    Returns
    -------
    count : int
        Frames.
    mean, m2 : np.ndarray [shape=(nfft/2, 2*channels)], float64
        Mean and sum of squared deviations over frames.
    """
    stats, work, ones = [], None, None
    for _, maps in _feature_blocks(audio, nfft=nfft, hop_len=hop_len, nb_frames=nb_frames,
                                   block_frames=block_frames):
        n = maps.shape[1]
        if work is None or work.shape != maps.shape:
            work, ones = np.empty(maps.shape, np.float64), np.ones(n)
        work[...] = maps
        mean = (ones @ work) / n  # (maps, bins): the frame sums as one matrix-vector product
        work -= mean[:, None]
        stats.append((n, mean, np.einsum('mfb,mfb->mb', work, work)))
    n, mean, m2 = merge_stats(stats)
    return n, np.ascontiguousarray(mean.T), np.ascontiguousarray(m2.T)


def desc_to_labels(events: formats.Events, *, nb_classes: int, nb_frames: int, frame_rate: float) -> np.ndarray:
    """Frame-wise SED and DOA targets of one file from its events in seconds.

    An event is active in the frames of :func:`formats.event_frames` (``floor(start * frame_rate)`` to
    ``ceil(end * frame_rate)`` inclusive, cut at the last frame). Its DOA target is the unit vector
    ``(cos az cos el, sin az cos el, sin el)``; inactive classes have (0, 0, 0).

    Parameters
    ----------
    events : formats.Events
        As returned by :func:`formats.read_desc_file`.
    nb_classes, nb_frames : int
    frame_rate : float
        Frames per second (``fs / hop_len``).

    Returns
    -------
    label : np.ndarray [shape=(frames, 4*classes)], float32
        ``[:, :C]`` SED activity in {0, 1}; ``[:, C:2C]``, ``[:, 2C:3C]``, ``[:, 3C:]`` x, y, z.
    """
    inst = formats.events_to_instances(events, frame_rate=frame_rate, nb_frames=nb_frames)
    sed, doa = formats.instances_to_matrices(inst, nb_classes=nb_classes, nb_frames=nb_frames)
    return np.concatenate([sed, doa], axis=1).astype(np.float32)


def split_label(label: np.ndarray, *, nb_classes: int, azi_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Split a stored label matrix into the network's targets.

    Parameters
    ----------
    label : np.ndarray [shape=(..., 4*classes)]
    azi_only : bool
        Return (x, y) of the azimuth on the unit circle instead of (x, y, z).

    Returns
    -------
    sed : np.ndarray [shape=(..., classes)]
    doa : np.ndarray [shape=(..., 3*classes)] or [shape=(..., 2*classes)] if ``azi_only``
    """
    C = nb_classes
    sed = label[..., :C]
    if not azi_only:
        return sed, label[..., C:]
    xy = label[..., C:3 * C]
    norm = np.hypot(xy[..., :C], xy[..., C:])
    norm = np.concatenate([norm, norm], axis=-1)
    return sed, np.divide(xy, norm, out=np.zeros_like(xy), where=norm > 0)


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
# Dataset access
# --------------------------------------------------------------------------------------------------
def split_dirs(dataset_dir: str | os.PathLike, *, overlap: int, split: int, db: int) -> tuple[str, str]:
    """The TUT-2018 folders of one overlap / split / SNR: ``(wav_ov{ov}_split{split}_{db}db, desc_ov{ov}_split{split})``
    under ``dataset_dir`` (the layout synthesize_dataset.py writes and :class:`FeatureClass` reads)."""
    return (os.path.join(dataset_dir, f'wav_ov{overlap}_split{split}_{db}db'),
            os.path.join(dataset_dir, f'desc_ov{overlap}_split{split}'))


def no_data_message(dataset_dir: str) -> str:
    return (f'No dataset at {dataset_dir}. Either synthesize one, e.g. '
            f'`python synthesize_dataset.py dataset=ansim dataset_dir={dataset_dir}`, or download the TUT Sound '
            f'Events 2018 zips (ANSIM, RESIM, CANSIM, CRESIM or REAL; https://zenodo.org/communities/dcase) and unzip '
            f'them so that {dataset_dir} holds the wav_ov*_split*_*db/ and desc_ov*_split*/ folders; then pass '
            f'dataset_dir=<that folder>.')


class FeatureClass:
    """Feature and label extraction for one dataset / overlap / split / SNR.

    Parameters
    ----------
    params : dict
        Resolved parameters from :func:`parameter.get_params` (uses ``dataset``, ``dataset_dir``,
        ``feat_label_dir``, ``overlap``, ``split``, ``db``, ``nfft``, ``fs``, ``clip_len_s``).
    """

    def __init__(self, params: dict[str, Any]):
        self.params = params
        self.dataset = params['dataset']
        self.dataset_dir = params['dataset_dir']
        self.fs = int(params['fs'])
        self.nfft = int(params['nfft'])
        self.hop_len = self.nfft // 2
        self.frame_rate = self.fs / self.hop_len
        self.nb_frames_1s = int(self.frame_rate)
        self.clip_len_samples = int(round(params['clip_len_s'] * self.fs))
        self.nb_frames = nb_frames_for(self.clip_len_samples, nfft=self.nfft, hop_len=self.hop_len)
        ov, split, db = params['overlap'], params['split'], params['db']
        self.aud_dir, self.desc_dir = split_dirs(self.dataset_dir, overlap=ov, split=split, db=db)
        self.feat_label_dir = os.path.join(params['feat_label_dir'],
                                           f'{self.dataset}_ov{ov}_split{split}_{db}db_nfft{self.nfft}')
        self.legacy_feat_dir = os.path.join(self.feat_label_dir, 'feat')  # unnormalized features of older versions
        self.feat_dir_norm = os.path.join(self.feat_label_dir, 'feat_norm')
        self.label_dir = os.path.join(self.feat_label_dir, 'label')
        self.stats_dir = os.path.join(self.feat_label_dir, 'stats')
        self.scaler_file = os.path.join(self.feat_label_dir, 'scaler.npz')
        self.manifest_file = os.path.join(self.feat_label_dir, 'extraction.json')
        self.info = self._read_dataset_info()
        self.classes = self._classes()
        self.nb_classes = len(self.classes)
        self.nb_channels = int(self.info.get('nb_channels', params['nb_channels'])) if self.info \
            else int(params['nb_channels'])

    # ---- dataset description -----------------------------------------------------------------
    def _read_dataset_info(self) -> dict[str, Any]:
        path = os.path.join(self.dataset_dir, DATASET_INFO)
        if not os.path.exists(path):
            return {}
        info = utils.read_json(path)
        if not isinstance(info, dict) or not isinstance(info.get('classes'), list) or not info['classes']:
            raise SELDError(f'{path}: must be a JSON object with a non-empty "classes" list')
        if 'fs' in info and int(info['fs']) != self.fs:
            raise SELDError(f'{path}: the dataset is at fs={info["fs"]} Hz but the parameters say fs={self.fs}; '
                            f'pass fs={info["fs"]}')
        return info

    def _classes(self) -> list[str]:
        if self.info:
            return [str(c) for c in self.info['classes']]
        return list(REAL_CLASSES if self.dataset == 'real' else DCASE2016_CLASSES)

    def check_dataset(self) -> None:
        """Raise a SELDError that says how to get data if the folders are missing."""
        if not os.path.isdir(self.dataset_dir):
            raise SELDError(no_data_message(self.dataset_dir))
        for folder in (self.aud_dir, self.desc_dir):
            if not os.path.isdir(folder):
                present = sorted(d for d in os.listdir(self.dataset_dir) if d.startswith(('wav_', 'desc_')))
                raise SELDError(f'{folder}: folder missing (overlap={self.params["overlap"]}, '
                                f'split={self.params["split"]}, db={self.params["db"]}); {self.dataset_dir} holds '
                                f'{present or "no wav_/desc_ folders"}. ' + no_data_message(self.dataset_dir))

    def file_stems(self) -> list[str]:
        """Sorted stems of the description files; every one must have its wav, and vice versa."""
        self.check_dataset()
        descs = {os.path.splitext(f)[0] for f in os.listdir(self.desc_dir) if f.endswith('.csv')}
        wavs = {os.path.splitext(f)[0] for f in os.listdir(self.aud_dir) if f.endswith('.wav')}
        # One desc folder may serve several SNRs: descriptions named for another db have no wav here.
        other_db = re.compile(r'_desc_(\d+)_')
        descs = {d for d in descs if not ((m := other_db.search(d)) and m.group(1) != str(self.params['db'])
                                          and d not in wavs)}
        if descs - wavs:
            raise SELDError(f'{self.aud_dir}: no wav for description(s) {sorted(descs - wavs)[:5]}')
        if wavs - descs:
            raise SELDError(f'{self.desc_dir}: no description for wav(s) {sorted(wavs - descs)[:5]}')
        stems = sorted(descs)
        bad = [s for s in stems if not s.startswith(('train', 'test'))]
        if bad:
            raise SELDError(f'{self.desc_dir}: file names must start with train or test, not {bad[:5]}')
        for part in ('train', 'test'):
            if not any(s.startswith(part) for s in stems):
                raise SELDError(f'{self.desc_dir}: the split has no {part} files')
        return stems

    def load_audio(self, path: str, *, reuse_buffer: bool = False) -> np.ndarray:
        """Read a wav: check rate and channels, keep the first ``nb_channels``, pad/cut to the clip.

        Parameters
        ----------
        path : str
        reuse_buffer : bool
            Read into this thread's reusable buffer (valid until its next call) instead of a new array.

        Returns
        -------
        audio : np.ndarray [shape=(clip_len_samples, nb_channels)], float32 in [-1, 1)
        """
        with self._open_wav(path) as f:
            shape = (self.clip_len_samples, f.channels)
            out = _scratch('audio', shape) if reuse_buffer else np.empty(shape, np.float32)
            # 16-bit PCM (every TUT 2018 wav): read the integers and scale them here, which is 2x faster than
            # libsndfile's own conversion and gives the same floats (x / 32768 is exact in float32).
            pcm16 = f.subtype == 'PCM_16'
            buf = _scratch('audio_pcm16', shape, np.int16) if pcm16 else out
            try:  # reads at most the clip length; a shorter file is padded with zeros
                f.read(dtype='int16' if pcm16 else 'float32', always_2d=True, fill_value=0, out=buf)
            except Exception as err:
                raise SELDError(f'{path}: cannot read audio ({err})') from err
        if pcm16:
            np.multiply(buf, np.float32(1 / 32768), out=out)
        return out[:, :self.nb_channels]

    def _open_wav(self, path: str) -> sf.SoundFile:
        """Open a wav and check its sample rate and channel count."""
        try:
            f = sf.SoundFile(path)
        except Exception as err:  # libsndfile raises several types for corrupt files
            raise SELDError(f'{path}: cannot read audio ({err})') from err
        rate, channels = f.samplerate, f.channels
        if rate != self.fs or channels < self.nb_channels:
            f.close()
            if rate != self.fs:
                raise SELDError(f'{path}: sample rate {rate} Hz, expected fs={self.fs} Hz')
            raise SELDError(f'{path}: {channels} channel(s), dataset {self.dataset!r} needs {self.nb_channels}')
        return f

    # ---- pass 1: labels and statistics ---------------------------------------------------------------
    def _paths(self, stem: str) -> dict[str, str]:
        return dict(wav=os.path.join(self.aud_dir, stem + '.wav'), csv=os.path.join(self.desc_dir, stem + '.csv'),
                    label=os.path.join(self.label_dir, stem + '.npy'),
                    stats=os.path.join(self.stats_dir, stem + '.npz'),
                    feat=os.path.join(self.feat_dir_norm, stem + '.npy'))

    def analyze_file(self, stem: str) -> None:
        """Labels of one file and, for a train file, the statistics of its features (to fit the scaler).

        The features themselves are not kept: :meth:`write_features_file` computes them again, standardized,
        once the scaler is known, so that they are written to disk once. The label is written last: its
        presence marks the file as analyzed. A test file's wav is only checked (rate, channels) here.
        """
        p = self._paths(stem)
        desc = formats.read_desc_file(p['csv'], classes=self.classes, naming='real' if self.dataset == 'real' else 'tut',
                                      max_time_s=self.params['clip_len_s'])
        if stem.startswith('train'):
            audio = self.load_audio(p['wav'], reuse_buffer=True)
            n, mean, m2 = audio_feature_stats(audio, nfft=self.nfft, hop_len=self.hop_len, nb_frames=self.nb_frames)
            utils.save_npz(p['stats'], n=n, mean=mean, m2=m2)
        else:
            self._open_wav(p['wav']).close()
        label = desc_to_labels(desc, nb_classes=self.nb_classes, nb_frames=self.nb_frames,
                               frame_rate=self.frame_rate)
        utils.save_npy(p['label'], label)

    def config(self) -> dict[str, Any]:
        """What the features depend on; a change invalidates existing features."""
        return dict(feature_version=FEATURE_VERSION, dataset=self.dataset, nfft=self.nfft, hop_len=self.hop_len,
                    fs=self.fs, clip_len_samples=self.clip_len_samples, nb_frames=self.nb_frames,
                    nb_channels=self.nb_channels, classes=self.classes,
                    window='hann (np.hanning, symmetric)', fft_norm='ortho',
                    feature_layout='[magnitude x channels, phase x channels]')

    def _source_mtime(self, stem: str) -> float:
        p = self._paths(stem)
        return max(os.path.getmtime(p['wav']), os.path.getmtime(p['csv']))

    def is_analyzed(self, stem: str) -> bool:
        """The label (and, for a train file, the statistics) exist and are newer than the file's wav and csv."""
        p = self._paths(stem)
        if not os.path.exists(p['label']) or (stem.startswith('train') and not os.path.exists(p['stats'])):
            return False
        return os.path.getmtime(p['label']) >= self._source_mtime(stem)

    def analyze_all(self, *, n_jobs: int = 1, stems: list[str] | None = None, progress: bool = True) -> dict:
        """Labels and train-file statistics of every file (skipping those already done with this config).

        Parameters
        ----------
        n_jobs : int
            Threads; -1 = one per core.
        stems : list of str, optional
            Subset of files (e.g. one shard of a multi-machine run); default all.

        Returns
        -------
        summary : dict with ``files``, ``analyzed``, ``skipped``.
        """
        stems = self.file_stems() if stems is None else stems
        cfg = self.config()
        if os.path.exists(self.manifest_file):
            old = utils.read_json(self.manifest_file)
            if old.get('config') != cfg:
                print(f'{self.feat_label_dir}: features were made with other parameters; redoing them')
                for folder in (self.feat_dir_norm, self.label_dir, self.stats_dir):
                    for f in os.listdir(folder) if os.path.isdir(folder) else []:
                        os.remove(os.path.join(folder, f))
                if os.path.exists(self.scaler_file):
                    os.remove(self.scaler_file)
        if os.path.isdir(self.legacy_feat_dir):  # intermediate files of an older version: never read now
            shutil.rmtree(self.legacy_feat_dir)
        for folder in (self.label_dir, self.stats_dir):
            os.makedirs(folder, exist_ok=True)
        utils.write_json(self.manifest_file, dict(config=cfg, dataset_dir=os.path.abspath(self.dataset_dir),
                                                  dataset_info=self.info or None))
        todo = [s for s in stems if not self.is_analyzed(s)]
        _map_files(self.analyze_file, todo, n_jobs=n_jobs, desc='labels+stats', progress=progress)
        return dict(files=len(stems), analyzed=len(todo), skipped=len(stems) - len(todo))

    def fit_scaler(self) -> tuple[np.ndarray, np.ndarray]:
        """Fit the standard scaler on the train files' statistics and save it as ``scaler.npz``.

        The file is kept if it already holds the same scaler (so the features are not redone), and it is created
        with a hard link, which fails if another process has created it meanwhile: shards that fit the scaler at
        the same time (each from the same statistics) therefore keep the first one's file and its time stamp.
        """
        train = [s for s in self.file_stems() if s.startswith('train')]
        missing = [s for s in train if not os.path.exists(self._paths(s)['stats'])]
        if missing:
            raise SELDError(f'{self.stats_dir}: no statistics for {missing[:5]}: run the stats stage first')

        def load(s: str) -> tuple[int, np.ndarray, np.ndarray]:
            with np.load(self._paths(s)['stats'], allow_pickle=False) as z:
                return int(z['n']), z['mean'], z['m2']

        n, mean, m2 = merge_stats(load(s) for s in train)
        mean, scale = scaler_from_stats(n, mean, m2)

        def same() -> bool:
            if not os.path.exists(self.scaler_file):
                return False
            with np.load(self.scaler_file, allow_pickle=False) as z:
                return z['mean'].shape == mean.shape and np.array_equal(z['mean'], mean) \
                    and np.array_equal(z['scale'], scale)

        if not same():
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

    # ---- pass 2: normalized features ----------------------------------------------------------------
    def is_extracted(self, stem: str) -> bool:
        """The normalized features exist and are newer than the scaler and the file's wav and csv."""
        feat = self._paths(stem)['feat']
        return os.path.exists(feat) and os.path.exists(self.scaler_file) and \
            os.path.getmtime(feat) >= max(os.path.getmtime(self.scaler_file), self._source_mtime(stem))

    def write_features_all(self, *, n_jobs: int = 1, stems: list[str] | None = None, progress: bool = True) -> int:
        """Write the standardized features of every file (train and test) with the saved scaler.

        Files whose features are up to date (:meth:`is_extracted`) are skipped. ``n_jobs`` threads compute the
        features (-1: one per core) and one more writes them. ``stems`` as :meth:`analyze_all`. Returns the
        number of files written.
        """
        os.makedirs(self.feat_dir_norm, exist_ok=True)
        todo = [s for s in (self.file_stems() if stems is None else stems) if not self.is_extracted(s)]
        mean, scale = load_scaler(self.scaler_file)
        n_threads = _nb_threads(n_jobs, len(todo))
        with self._feature_writer(nb_buffers=n_threads + 1) as writer:
            _map_files(functools.partial(self.write_features_file, mean=mean, scale=scale, writer=writer), todo,
                       n_jobs=n_threads, desc='features', progress=progress)
        return len(todo)

    def _feature_writer(self, *, nb_buffers: int) -> utils.NpyWriter:
        return utils.NpyWriter((self.nb_frames, self.nfft // 2, 2 * self.nb_channels), np.float32,
                               nb_buffers=nb_buffers, direct=bool(self.params.get('direct_io', True)))

    def write_features_file(self, stem: str, mean: np.ndarray, scale: np.ndarray,
                            writer: utils.NpyWriter | None = None) -> None:
        """Compute one file's features, standardize them and write them to ``feat_norm/`` (atomically).

        The features are computed into a page-aligned buffer that already holds the ``.npy`` header, and written
        with ``O_DIRECT`` where available (parameter ``direct_io``; see :class:`utils.NpyFileBuffer`), by
        ``writer``'s thread while this thread computes the next file (without ``writer``: written here).
        """
        if writer is None:
            with self._feature_writer(nb_buffers=1) as own:
                return self.write_features_file(stem, mean, scale, writer=own)
        p = self._paths(stem)
        audio = self.load_audio(p['wav'], reuse_buffer=True)
        with writer.filling(p['feat']) as out:
            extract_features(audio, nfft=self.nfft, hop_len=self.hop_len, nb_frames=self.nb_frames, mean=mean,
                             scale=scale, out=out)

    def feature_info(self) -> dict[str, Any]:
        """What a model needs to know about the features (saved into every run's params.json)."""
        return dict(classes=self.classes, nb_classes=self.nb_classes, nb_channels=self.nb_channels,
                    nb_bins=self.nfft // 2, frame_rate=self.frame_rate, nb_frames_1s=self.nb_frames_1s,
                    feat_label_dir=self.feat_label_dir)


def _nb_threads(n_jobs: int, nb_files: int) -> int:
    """Threads for ``n_jobs`` (joblib's convention: -1 = all cores, -2 = all but one ...) and ``nb_files`` files."""
    if n_jobs < 0:
        n_jobs = (os.cpu_count() or 1) + 1 + n_jobs
    return max(1, min(n_jobs, nb_files))


_LOCAL = threading.local()  # per-thread reusable buffers (see _map_files)


def _scratch(name: str, shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    """This thread's reusable buffer ``name`` (reallocated only when the shape or dtype changes).

    Reading a wav needs large arrays per file (21 MB of float32 for a 30 s 4-channel clip, and half that of int16
    for 16-bit PCM); a new array per file pays the page faults of fresh memory every time, a reused one does not.
    """
    store = _LOCAL.__dict__.setdefault('store', {})
    buf = store.get(name)
    if buf is None or buf.shape != tuple(shape) or buf.dtype != dtype:
        buf = store[name] = np.empty(shape, dtype)
    return buf


def load_scaler(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Load ``scaler.npz`` (arrays only, never pickles).

    Returns
    -------
    mean, scale : np.ndarray [shape=(bins, 2*channels)], float32
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            return z['mean'].astype(np.float32), z['scale'].astype(np.float32)
    except FileNotFoundError as err:
        raise SELDError(f'{path}: scaler not found; run batch_feature_extraction.py') from err
    except (KeyError, ValueError, OSError) as err:
        raise SELDError(f'{path}: not a valid scaler file ({err})') from err


def _map_files(func: Callable[[str], Any], stems: list[str], *, n_jobs: int, desc: str, progress: bool) -> None:
    """Call ``func(stem)`` for every file, in ``n_jobs`` threads, with a progress bar.

    Threads, not processes: the work per file is in numpy, scipy.fft, libsndfile and the write, which release the
    GIL (two threads extract 1.8-1.9x faster than one; see benchmarks/README.md), and threads start at once,
    whereas worker processes took about a second to start (Python, numpy and scipy imports). Each thread keeps its
    own buffers (:func:`_scratch`). The first error (or Ctrl-C) cancels the files not started, waits for those in
    progress (a fraction of a second; their outputs are atomic) and is raised here. (joblib's threading backend
    is not used: on Ctrl-C it returns while its daemon threads still run native code, and the interpreter then
    aborts at exit.)
    """
    import concurrent.futures

    from tqdm import tqdm

    n_jobs = _nb_threads(n_jobs, len(stems))
    with tqdm(total=len(stems), desc=desc, unit='file', disable=not progress or not stems) as bar:
        if n_jobs <= 1:
            for s in stems:
                func(s)
                bar.update()
            return
        with concurrent.futures.ThreadPoolExecutor(n_jobs, thread_name_prefix='features') as pool:
            futures = [pool.submit(func, s) for s in stems]
            try:
                for f in concurrent.futures.as_completed(futures):
                    f.result()  # re-raises the thread's error here
                    bar.update()
            except BaseException:
                for f in futures:
                    f.cancel()
                raise  # leaving the with-block waits for the files in progress

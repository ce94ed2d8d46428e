"""Features, labels and normalization for SELDnet on the TUT Sound Events 2018 layout.

Layout read (see README.md)::

    <dataset_dir>/wav_ov{ov}_split{split}_{db}db/{train|test}_{i}_desc_{db}_{n}.wav
    <dataset_dir>/desc_ov{ov}_split{split}/{train|test}_{i}_desc_{db}_{n}.csv
    <dataset_dir>/dataset_info.json   (optional; written by synthesize_dataset.py: classes, channels, rate)

Layout written, one folder per dataset/overlap/split/SNR/FFT size::

    <feat_label_dir>/{dataset}_ov{ov}_split{split}_{db}db_nfft{nfft}/
        feat/{stem}.npy        float32 [shape=(frames, nfft/2, 2*channels)] magnitude then phase maps, until
                               normalized (then moved: the features are stored once)
        feat_norm/{stem}.npy   the same, standardized with the train-split scaler (raw = x * scale + mean)
        label/{stem}.npy       float32 [shape=(frames, 4*classes)]: SED, then x, y, z blocks per class
        stats/{stem}.npz       per-file count, mean and M2 of the features (to fit the scaler by merging)
        scaler.npz             mean, scale [shape=(nfft/2, 2*channels)] fitted on train files only
        extraction.json        the parameters and classes the features were made with

Differences from the original scripts, on purpose:

* The original stored the spectrogram as ``(frames, bins*channels)`` and the data generator reshaped
  ``[|S|, angle(S)]`` to ``(frames, bins, 2*channels)``, which folds pairs of neighbouring bins into
  the channel axis (bin b of channel c lands at bin ``(b*C + c) // (2C)``). Here every channel's
  magnitude and phase is its own map: ``feat[..., c]`` is ``|S_c|`` and ``feat[..., C + c]`` is
  ``angle(S_c)``, with the frequency axis intact.
* The STFT is computed with strided views and one FFT call per block of frames, not frame by frame, in one
  pass with the magnitude/phase maps and their statistics (:func:`extract_features`).
* The DOA target of an event covers the same frames as its SED target (``floor(start*fr)`` to
  ``ceil(end*fr)`` inclusive); the original left the last SED-active frame with a (0, 0, 0) target.
"""
from __future__ import annotations

import csv
import functools
import os
import re
from typing import Any, Callable, Iterable

import numpy as np
import scipy.fft
import soundfile as sf

import utils
from utils import SELDError

# Class tables of the real TUT 2018 datasets (used when dataset_info.json is absent).
DCASE2016_CLASSES = ['knock', 'drawer', 'clearthroat', 'phone', 'keysDrop', 'speech', 'keyboard', 'pageturn',
                     'cough', 'doorslam', 'laughter']
REAL_CLASSES = ['1', '3', '4', '5', '6', '7', '8', '9']  # UrbanSound8K class ids of TUT-REAL
DESC_HEADER = ['sound_event_recording', 'start_time', 'end_time', 'ele', 'azi', 'dist']
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


def extract_features(audio: np.ndarray, *, nfft: int, hop_len: int, nb_frames: int | None = None,
                     block_frames: int = 128, out: np.ndarray | None = None
                     ) -> tuple[np.ndarray, tuple[int, np.ndarray, np.ndarray]]:
    """Features and their statistics in one pass: ``spectrogram_features(stft(...))`` and ``feature_stats``.

    The same values bit for bit as the two-step version, computed ``block_frames`` frames at a time so that the
    windowed frames, the spectrum, the magnitude/phase maps and the float64 statistics of a block stay in the
    CPU cache, and without a full-size temporary (the two-step version makes four 40 MB arrays per 30 s clip).
    The statistics of the blocks are merged with Chan et al.'s formula (:func:`merge_stats`).

    Parameters
    ----------
    audio : np.ndarray [shape=(samples, channels)], float32
    nfft, hop_len : int
        FFT size (= window length) and hop in samples.
    nb_frames : int, optional
        Frames to compute; default ``ceil((samples - nfft) / hop_len)``.
    block_frames : int
        Frames per block (128: 2 MB of float64 statistics work for 4 channels and nfft 512).
    out : np.ndarray [shape=(frames, nfft/2, 2*channels)], float32, optional
        Where to write the features (a buffer reused across files saves the page faults of a new array).

    Returns
    -------
    feat : np.ndarray [shape=(frames, nfft/2, 2*channels)], float32
        Magnitude maps, then phase maps (radians), as :func:`spectrogram_features`.
    stats : tuple (count, mean, M2)
        As :func:`feature_stats`: ``mean`` and ``M2`` are float64 [shape=(nfft/2, 2*channels)].
    """
    if block_frames < 1:
        raise SELDError(f'block_frames={block_frames} must be at least 1')
    audio, nb_frames, needed = _check_framing(audio, nfft=nfft, hop_len=hop_len, nb_frames=nb_frames)
    ch, bins = audio.shape[1], nfft // 2
    shape = (nb_frames, bins, 2 * ch)
    if out is None:
        out = np.empty(shape, np.float32)
    elif out.shape != shape or out.dtype != np.float32:
        raise SELDError(f'out has shape {out.shape} and dtype {out.dtype}: expected {shape} float32')
    audio = audio.astype(np.float32, copy=False)
    frames = np.lib.stride_tricks.sliding_window_view(audio[:needed], nfft, axis=0)[::hop_len]  # (frames, ch, nfft)
    win = np.hanning(nfft).astype(np.float32)
    windowed = np.empty((ch, block_frames, nfft), np.float32)
    maps = np.empty((2 * ch, block_frames, bins), np.float32)  # channel-major: contiguous ufunc loops
    stats = []
    for i in range(0, nb_frames, block_frames):
        n = min(nb_frames - i, block_frames)
        np.multiply(frames[i:i + n].transpose(1, 0, 2), win, out=windowed[:, :n])
        spec = scipy.fft.rfft(windowed[:, :n], axis=-1, norm='ortho')[..., :bins]
        np.abs(spec, out=maps[:ch, :n])
        np.arctan2(spec.imag, spec.real, out=maps[ch:, :n])
        out[i:i + n] = maps[:, :n].transpose(1, 2, 0)
        block = maps[:, :n].astype(np.float64)
        mean = block.mean(axis=1)
        block -= mean[:, None]
        stats.append((n, mean, np.einsum('mfb,mfb->mb', block, block)))
    n, mean, m2 = merge_stats(stats)
    return out, (n, np.ascontiguousarray(mean.T), np.ascontiguousarray(m2.T))


def class_of_recording(name: str, *, real: bool) -> str:
    """Class of a description row's recording name.

    ``cough066.wav`` -> ``cough`` (simulated sets: the name without its 3 digits);
    ``100032-3-0-0.wav`` -> ``3`` (REAL: the UrbanSound8K field after the first '-').
    """
    stem = os.path.splitext(name.strip())[0]
    if real:
        parts = stem.split('-')
        return parts[1] if len(parts) > 1 else ''
    m = re.fullmatch(r'(.+?)(\d{3})', stem)
    return m.group(1) if m else ''


def read_desc_file(path: str | os.PathLike, *, classes: list[str], real: bool = False,
                   max_time_s: float | None = None) -> dict[str, np.ndarray]:
    """Read and validate a TUT-2018 description CSV.

    Parameters
    ----------
    path : str
        ``sound_event_recording,start_time,end_time,ele,azi,dist`` with a header line.
    classes : list of str
        Class names in index order.
    real : bool
        Class naming of the REAL dataset (UrbanSound8K ids).
    max_time_s : float, optional
        Clip length; an event starting at or after it is an error.

    Returns
    -------
    desc : dict
        ``class`` int [shape=(events,)], ``start``, ``end`` (s), ``ele``, ``azi`` (degrees),
        ``dist`` (m), float64 [shape=(events,)], and ``recording`` (list of str).

    Raises
    ------
    SELDError
        Naming the file, the line, the value and the rule: wrong header, wrong number of fields,
        a non-number, an unknown class, ``end_time <= start_time``, an angle out of range.
    """
    index = {c: i for i, c in enumerate(classes)}
    rows: list[tuple[int, float, float, float, float, float]] = []
    names: list[str] = []
    try:
        f = open(path, newline='', encoding='utf-8')
    except OSError as err:
        raise SELDError(f'{path}: cannot open description file ({err.strerror})') from err
    with f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:6]] != DESC_HEADER:
            raise SELDError(f'{path}:1: header {header} must be {",".join(DESC_HEADER)}')
        for lineno, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            where = f'{path}:{lineno}'
            if len(row) < 6:
                raise SELDError(f'{where}: {len(row)} fields {row}; a row needs {len(DESC_HEADER)}: '
                                f'{",".join(DESC_HEADER)}')
            cls_name = class_of_recording(row[0], real=real)
            if cls_name not in index:
                raise SELDError(f'{where}: recording {row[0]!r} has class {cls_name!r}, which is not one of '
                                f'the dataset classes {classes}')
            try:
                start, end, ele, azi, dist = (float(v) for v in row[1:6])
            except ValueError as err:
                raise SELDError(f'{where}: {row[1:6]} must be numbers (start_time,end_time,ele,azi,dist)') from err
            if not all(np.isfinite([start, end, ele, azi, dist])):
                raise SELDError(f'{where}: {row[1:6]} must be finite numbers')
            if start < 0:
                raise SELDError(f'{where}: start_time={start} must be >= 0')
            if end <= start:
                raise SELDError(f'{where}: end_time={end} must be after start_time={start}')
            if max_time_s is not None and start >= max_time_s:
                raise SELDError(f'{where}: start_time={start} is beyond the clip length {max_time_s} s')
            if not -90 <= ele <= 90:
                raise SELDError(f'{where}: ele={ele} must be within [-90, 90] degrees')
            if not -360 <= azi <= 360:
                raise SELDError(f'{where}: azi={azi} must be within [-360, 360] degrees')
            rows.append((index[cls_name], start, end, ele, azi, dist))
            names.append(row[0].strip())
    arr = np.array(rows, dtype=np.float64).reshape(-1, 6)
    return dict(cls=arr[:, 0].astype(np.int64), start=arr[:, 1], end=arr[:, 2], ele=arr[:, 3],
                azi=arr[:, 4], dist=arr[:, 5], recording=names)


def desc_to_labels(desc: dict[str, np.ndarray], *, nb_classes: int, nb_frames: int,
                   frame_rate: float) -> np.ndarray:
    """Frame-wise SED and DOA targets of one file.

    An event is active from frame ``floor(start * frame_rate)`` to ``ceil(end * frame_rate)``
    inclusive (cut at the last frame). Its DOA target is the unit vector
    ``(cos az cos el, sin az cos el, sin el)``; inactive classes have (0, 0, 0).

    Parameters
    ----------
    desc : dict
        As returned by :func:`read_desc_file`.
    nb_classes, nb_frames : int
    frame_rate : float
        Frames per second (``fs / hop_len``).

    Returns
    -------
    label : np.ndarray [shape=(frames, 4*classes)], float32
        ``[:, :C]`` SED activity in {0, 1}; ``[:, C:2C]``, ``[:, 2C:3C]``, ``[:, 3C:]`` x, y, z.
    """
    C = nb_classes
    label = np.zeros((nb_frames, 4 * C), dtype=np.float32)
    first = np.floor(desc['start'] * frame_rate).astype(np.int64)
    last = np.minimum(np.ceil(desc['end'] * frame_rate).astype(np.int64), nb_frames - 1)
    xyz = utils.sph2cart(desc['azi'], desc['ele']).astype(np.float32)
    # One slice assignment per event (events are few; frames are never looped over).
    for k in np.flatnonzero(first <= last):
        c = desc['cls'][k]
        sl = slice(first[k], last[k] + 1)
        label[sl, c] = 1.0
        label[sl, [C + c, 2 * C + c, 3 * C + c]] = xyz[k]
    return label


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
        self.aud_dir = os.path.join(self.dataset_dir, f'wav_ov{ov}_split{split}_{db}db')
        self.desc_dir = os.path.join(self.dataset_dir, f'desc_ov{ov}_split{split}')
        self.feat_label_dir = os.path.join(params['feat_label_dir'],
                                           f'{self.dataset}_ov{ov}_split{split}_{db}db_nfft{self.nfft}')
        self.feat_dir = os.path.join(self.feat_label_dir, 'feat')
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
            Read into this process's reusable buffer (valid until the next call) instead of a new array.

        Returns
        -------
        audio : np.ndarray [shape=(clip_len_samples, nb_channels)], float32 in [-1, 1)
        """
        try:
            f = sf.SoundFile(path)
        except Exception as err:  # libsndfile raises several types for corrupt files
            raise SELDError(f'{path}: cannot read audio ({err})') from err
        with f:
            if f.samplerate != self.fs:
                raise SELDError(f'{path}: sample rate {f.samplerate} Hz, expected fs={self.fs} Hz')
            if f.channels < self.nb_channels:
                raise SELDError(f'{path}: {f.channels} channel(s), dataset {self.dataset!r} needs '
                                f'{self.nb_channels}')
            shape = (self.clip_len_samples, f.channels)
            out = _scratch('audio', shape) if reuse_buffer else np.empty(shape, np.float32)
            try:  # reads at most the clip length; a shorter file is padded with zeros
                f.read(dtype='float32', always_2d=True, fill_value=0.0, out=out)
            except Exception as err:
                raise SELDError(f'{path}: cannot read audio ({err})') from err
        return out[:, :self.nb_channels]

    def extract_file(self, stem: str) -> tuple[int, np.ndarray, np.ndarray]:
        """Features, labels and feature statistics of one file, written atomically.

        The features go to ``feat/`` (unnormalized) until :meth:`normalize_file` standardizes them and moves
        them to ``feat_norm/``. Returns the file's (count, mean, M2) statistics.
        """
        desc = read_desc_file(os.path.join(self.desc_dir, stem + '.csv'), classes=self.classes,
                              real=self.dataset == 'real', max_time_s=self.params['clip_len_s'])
        audio = self.load_audio(os.path.join(self.aud_dir, stem + '.wav'), reuse_buffer=True)
        feat, stats = extract_features(audio, nfft=self.nfft, hop_len=self.hop_len, nb_frames=self.nb_frames,
                                       out=_scratch('feat', (self.nb_frames, self.nfft // 2, 2 * self.nb_channels)))
        label = desc_to_labels(desc, nb_classes=self.nb_classes, nb_frames=self.nb_frames,
                               frame_rate=self.frame_rate)
        utils.save_npy(os.path.join(self.label_dir, stem + '.npy'), label)
        utils.save_npz(os.path.join(self.stats_dir, stem + '.npz'), n=stats[0], mean=stats[1], m2=stats[2])
        utils.save_npy(os.path.join(self.feat_dir, stem + '.npy'), feat)  # last: its presence marks "extracted"
        return stats

    # ---- extraction ----------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """What the features depend on; a change invalidates existing features."""
        return dict(feature_version=FEATURE_VERSION, dataset=self.dataset, nfft=self.nfft, hop_len=self.hop_len,
                    fs=self.fs, clip_len_samples=self.clip_len_samples, nb_frames=self.nb_frames,
                    nb_channels=self.nb_channels, classes=self.classes,
                    window='hann (np.hanning, symmetric)', fft_norm='ortho',
                    feature_layout='[magnitude x channels, phase x channels]')

    def _source_mtime(self, stem: str) -> float:
        return max(os.path.getmtime(os.path.join(self.aud_dir, stem + '.wav')),
                   os.path.getmtime(os.path.join(self.desc_dir, stem + '.csv')))

    def is_extracted(self, stem: str) -> bool:
        """Labels, statistics and features (unnormalized in ``feat/`` or normalized in ``feat_norm/``) exist
        and are newer than the file's wav and csv."""
        feat = next((p for p in (os.path.join(self.feat_dir_norm, stem + '.npy'),
                                 os.path.join(self.feat_dir, stem + '.npy')) if os.path.exists(p)), None)
        if feat is None or not all(os.path.exists(p) for p in (os.path.join(self.label_dir, stem + '.npy'),
                                                                os.path.join(self.stats_dir, stem + '.npz'))):
            return False
        return os.path.getmtime(feat) >= self._source_mtime(stem)

    def extract_all(self, *, n_jobs: int = 1, stems: list[str] | None = None, progress: bool = True) -> dict:
        """Extract features and labels of every file (skipping those already done with this config).

        Parameters
        ----------
        n_jobs : int
            Processes (this one and ``n_jobs - 1`` workers); -1 = all cores.
        stems : list of str, optional
            Subset of files (e.g. one shard of a multi-machine run); default all.

        Returns
        -------
        summary : dict with ``files``, ``extracted``, ``skipped``.
        """
        all_stems = self.file_stems()
        stems = all_stems if stems is None else stems
        cfg = self.config()
        if os.path.exists(self.manifest_file):
            old = utils.read_json(self.manifest_file)
            if old.get('config') != cfg:
                print(f'{self.feat_label_dir}: features were made with other parameters; redoing them')
                for folder in (self.feat_dir, self.feat_dir_norm, self.label_dir, self.stats_dir):
                    for f in os.listdir(folder) if os.path.isdir(folder) else []:
                        os.remove(os.path.join(folder, f))
                if os.path.exists(self.scaler_file):
                    os.remove(self.scaler_file)
        for folder in (self.feat_dir, self.label_dir, self.stats_dir):
            os.makedirs(folder, exist_ok=True)
        utils.write_json(self.manifest_file, dict(config=cfg, dataset_dir=os.path.abspath(self.dataset_dir),
                                                  dataset_info=self.info or None))
        todo = [s for s in stems if not self.is_extracted(s)]
        _map_files(self.extract_file, todo, n_jobs=n_jobs, desc='features', progress=progress)
        return dict(files=len(stems), extracted=len(todo), skipped=len(stems) - len(todo))

    def fit_scaler(self) -> tuple[np.ndarray, np.ndarray]:
        """Fit the standard scaler on the train files' statistics and save it as ``scaler.npz``."""
        train = [s for s in self.file_stems() if s.startswith('train')]
        missing = [s for s in train if not os.path.exists(os.path.join(self.stats_dir, s + '.npz'))]
        if missing:
            raise SELDError(f'{self.stats_dir}: no statistics for {missing[:5]}: extract features first')

        def load(s: str) -> tuple[int, np.ndarray, np.ndarray]:
            with np.load(os.path.join(self.stats_dir, s + '.npz'), allow_pickle=False) as z:
                return int(z['n']), z['mean'], z['m2']

        n, mean, m2 = merge_stats(load(s) for s in train)
        mean, scale = scaler_from_stats(n, mean, m2)
        if os.path.exists(self.scaler_file):  # unchanged scaler: keep the file, so normalization is not redone
            with np.load(self.scaler_file, allow_pickle=False) as z:
                if z['mean'].shape == mean.shape and np.array_equal(z['mean'], mean) \
                        and np.array_equal(z['scale'], scale):
                    return mean, scale
        utils.save_npz(self.scaler_file, mean=mean, scale=scale, n_samples=np.int64(n))
        return mean, scale

    def normalize_all(self, *, n_jobs: int = 1, progress: bool = True) -> int:
        """Standardize the features of every file (train and test) with the saved scaler.

        A file is done when its ``feat_norm/`` file is newer than the scaler and its sources. Returns the number
        of files normalized.
        """
        os.makedirs(self.feat_dir_norm, exist_ok=True)
        scaler_mtime = os.path.getmtime(self.scaler_file)
        todo = [s for s in self.file_stems()
                if not os.path.exists(p := os.path.join(self.feat_dir_norm, s + '.npy'))
                or os.path.getmtime(p) < max(scaler_mtime, self._source_mtime(s))]
        mean, scale = load_scaler(self.scaler_file)
        _map_files(functools.partial(self.normalize_file, mean=mean, scale=scale), todo, n_jobs=n_jobs,
                   desc='normalize', progress=progress)
        return len(todo)

    def normalize_file(self, stem: str, mean: np.ndarray, scale: np.ndarray) -> None:
        """Standardize one file's features in place and move them from ``feat/`` to ``feat_norm/``.

        The unnormalized file is renamed to a hidden temporary name in ``feat_norm/``, standardized block by block
        in place (no second copy on disk, no full-size array in memory) and renamed to its final name. If that is
        interrupted, the file is in neither folder and the next run extracts it again. A file whose normalized
        features are out of date (made with an older scaler) is extracted again first.
        """
        raw = os.path.join(self.feat_dir, stem + '.npy')
        if not os.path.exists(raw):
            self.extract_file(stem)
        with utils.atomic_path(os.path.join(self.feat_dir_norm, stem + '.npy')) as tmp:
            os.replace(raw, tmp)
            standardize_npy_inplace(tmp, mean=mean, scale=scale)

    def feature_info(self) -> dict[str, Any]:
        """What a model needs to know about the features (saved into every run's params.json)."""
        return dict(classes=self.classes, nb_classes=self.nb_classes, nb_channels=self.nb_channels,
                    nb_bins=self.nfft // 2, frame_rate=self.frame_rate, nb_frames_1s=self.nb_frames_1s,
                    feat_label_dir=self.feat_label_dir)


def standardize_npy_inplace(path: str, *, mean: np.ndarray, scale: np.ndarray, block_bytes: int = 1 << 22) -> None:
    """Replace the float32 array ``x`` in the ``.npy`` file ``path`` by ``(x - mean) / scale``, in place.

    Reads, standardizes and writes back ``block_bytes`` at a time through one small buffer. The result is the same
    bit for bit as ``((np.load(path) - mean) / scale).astype(np.float32)`` with float32 ``mean`` and ``scale``.

    Parameters
    ----------
    path : str
        A C-order float32 ``.npy`` file [shape=(frames, *mean.shape)].
    mean, scale : np.ndarray, float32
    block_bytes : int
        Size of the read/write buffer.
    """
    mean, scale = np.asarray(mean, np.float32), np.asarray(scale, np.float32)
    fd = os.open(path, os.O_RDWR)
    try:
        with os.fdopen(os.dup(fd), 'rb') as f:
            version = np.lib.format.read_magic(f)
            if version not in ((1, 0), (2, 0)):
                raise SELDError(f'{path}: .npy format version {version} is not supported')
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = reader(f)
            offset = f.tell()
        if dtype != np.float32 or fortran or tuple(shape[1:]) != mean.shape:
            raise SELDError(f'{path}: float32 C-order features of shape (frames, {mean.shape}) expected, found '
                            f'{dtype} {"Fortran" if fortran else "C"}-order {shape}')
        row = int(np.prod(shape[1:])) * 4
        rows = max(1, block_bytes // row)
        buf = np.empty((rows,) + tuple(shape[1:]), np.float32)
        for i in range(0, shape[0], rows):
            n = min(rows, shape[0] - i)
            view = memoryview(buf).cast('B')[:n * row]
            if os.preadv(fd, [view], offset + i * row) != n * row:
                raise SELDError(f'{path}: file is truncated')
            block = buf[:n]
            block -= mean
            block /= scale
            os.pwrite(fd, view, offset + i * row)
    finally:
        os.close(fd)


_SCRATCH: dict[str, np.ndarray] = {}


def _scratch(name: str, shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    """This process's reusable buffer ``name`` (reallocated only when the shape or dtype changes).

    Extraction allocates two large arrays per file (audio and features, ~60 MB for a 30 s 4-channel clip); a new
    array per file pays the page faults of fresh memory every time, a reused one does not.
    """
    buf = _SCRATCH.get(name)
    if buf is None or buf.shape != tuple(shape) or buf.dtype != dtype:
        _SCRATCH.pop(name, None)
        buf = _SCRATCH[name] = np.empty(shape, dtype)
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
    """Call ``func(stem)`` for every file, in ``n_jobs`` processes, with a progress bar.

    The calling process is one of the ``n_jobs``: it works through the list itself while the other ``n_jobs - 1``
    (loky processes, started fresh: safe beside TensorFlow's threads) start, and each worker is fed files once
    it has started (one in progress, one queued). A short run therefore never waits for the workers to start
    (about 1 s for Python, numpy and scipy).
    """
    import concurrent.futures

    from tqdm import tqdm

    if n_jobs < 0:
        n_jobs = max(1, (os.cpu_count() or 1) + 1 + n_jobs)  # joblib's convention: -1 = all cores
    with tqdm(total=len(stems), desc=desc, unit='file', disable=not progress or not stems) as bar:
        if n_jobs <= 1 or len(stems) < 2:
            for s in stems:
                func(s)
                bar.update()
            return
        from joblib.externals.loky.process_executor import ProcessPoolExecutor  # not joblib's shared pool
        pool = ProcessPoolExecutor(n_jobs - 1)
        starting = {pool.submit(_worker_ready) for _ in range(n_jobs - 1)}
        todo, running, ready = iter(stems), set(), 0

        def collect(timeout: float | None) -> None:
            done, _ = concurrent.futures.wait(running, timeout=timeout, return_when=concurrent.futures.FIRST_COMPLETED)
            for f in done:
                running.discard(f)
                f.result()  # re-raises a worker's error here
                bar.update()

        try:
            while True:
                collect(timeout=0)
                for f in [f for f in starting if f.done()]:
                    starting.discard(f)
                    f.result()
                    ready += 1
                # two files per started worker: the next one is queued while it works on one
                while len(running) < 2 * ready and (s := next(todo, None)) is not None:
                    running.add(pool.submit(func, s))
                s = next(todo, None)
                if s is None:
                    break
                func(s)
                bar.update()
            while running:
                collect(timeout=None)
        except BaseException:  # an error or Ctrl-C: stop the workers (their outputs are atomic)
            pool.shutdown(wait=False, kill_workers=True)
            raise
        pool.shutdown(wait=False)  # a worker still starting is not waited for


def _worker_ready() -> int:
    """A no-op task: its completion says that a worker process has started (and imported this module)."""
    return os.getpid()

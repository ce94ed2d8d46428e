"""Synthesize SELD datasets in the exact on-disk format of TUT Sound Events 2018 (ANSIM, RESIM, CANSIM, CRESIM).

The original datasets cannot be downloaded here and their generator was never released, so this script
makes SYNTHETIC look-alikes that the same pipeline reads. It also makes the project's embedded default
dataset (a small ANSIM look-alike synthesized automatically by the feature extractor through
:func:`synthesize`).

Usage::

    python synthesize_dataset.py [key=value ...]
    python synthesize_dataset.py dataset=resim overlap=2 split=3 db=20
    python synthesize_dataset.py dataset=cansim sound_bank=../shared/data/dcase2016_task2_train n_jobs=2

Keys (default): ``dataset`` (ansim) | ``overlap`` (1) | ``split`` (1) | ``db`` (30) | ``nb_train`` (240) |
``nb_test`` (60) | ``clip_len_s`` (30.0) | ``fs`` (44100) | ``seed`` (0) | ``sound_bank`` (builtin) |
``unseen_doa`` (false) | ``grid_res_deg`` (10) | ``dataset_dir`` (data/{dataset}) | ``n_jobs`` (1, -1 = all
cores) | ``progress`` (true). An unknown key is an error (exit status 2) listing the valid ones.

On-disk format
--------------
``<dataset_dir>/wav_ov{ov}_split{split}_{db}db/{part}_{i}_desc_{db}_100.wav``
    16-bit PCM, ``fs`` Hz, exactly ``clip_len_s`` s; 4 channels FOA (ACN W, Y, Z, X, SN3D) for ansim/resim,
    8 omnidirectional microphones for cansim/cresim. ``part`` is train/test, ``i`` = 0, 1, ...; the
    trailing integer ``n`` of the TUT names is always :data:`FILE_N` = 100.
``<dataset_dir>/desc_ov{ov}_split{split}/{part}_{i}_desc_{db}_100.csv``
    Header ``sound_event_recording,start_time,end_time,ele,azi,dist``; one row per event in onset order:
    ``<class><3 digits>.wav``, onset and offset in seconds (6 decimals: exact sample times), elevation and
    azimuth in integer degrees on the grid, distance in metres (0.1 m steps). ``start_time`` is the sample
    at which the event's signal starts at the array centre divided by ``fs``; ``end_time`` =
    ``start_time`` + duration. The scene (events, times, DOAs) does not depend on ``db``: the CSVs of
    30, 20 and 10 dB of one ov/split are identical, only the noise level of the audio differs.
``<dataset_dir>/meta_ov{ov}_split{split}_{db}db/{part}_{i}_desc_{db}_100.json``
    Per-clip side file (not part of the TUT format): the generation config, the anti-clipping gain, the
    signal and noise powers, and for resim/cresim the room (size, array position, RT60, absorption).
``<dataset_dir>/dataset_info.json``
    The contract with the feature extractor::

        {"synthetic": true, "generator": "synthesize_dataset.py", "dataset": "ansim",
         "format": "foa" | "mic", "fs": 44100, "nb_channels": 4 | 8, "clip_len_s": 30.0,
         "classes": [names in class-index order], "sound_bank": "builtin" | "<folder>",
         "file_name_n": 100, "mic_radius_m": 0.05 (mic only),
         "splits": {"ov1_split1_30db": {"overlap": 1, "split": 1, "db": 30, "nb_train": 240,
                    "nb_test": 60, "seed": 0, "unseen_doa": false, "grid_res_deg": 10,
                    "nb_events": {"train": .., "test": ..}, "wav_dir": .., "desc_dir": .., "meta_dir": ..,
                    "command": "python synthesize_dataset.py ..."}}}

    Several ov/split/db of one dataset share a dataset_dir: the ``splits`` entries are merged; a dataset,
    format, fs, channel count, clip length or class list different from the existing file is an error.
``<dataset_dir>/README.txt``
    Says that the data is synthetic, how it was made and the commands that made it.

Scenes
------
``overlap`` tracks of events (track 0 starts 0.1-0.5 s into the clip, the others 0.1-3 s); on a track
each event follows the previous one after a gap of 0.1-0.8 s (track 0) or 0.1-2 s (the others), so at
most ``overlap`` events are active at once and ov1 events follow each other with short gaps. An event
never starts while an event of the same class or at the same DOA is still active. Classes are uniform
over those allowed; each class's events come from the sound bank (:mod:`sound_bank`). DOAs are uniform on
the grid azimuth -180..180-res, elevation -40..40 in ``grid_res_deg`` steps; with ``unseen_doa`` the test
clips use the grid shifted by res/2 (+5 degrees) in azimuth and elevation. Distances are uniform in 1-3 m
(reverberant: also >= 0.5 m from every wall).

Spatialization (azimuth counter-clockwise from +x, elevation up, :func:`utils.sph2cart`)
--------------------------------------------------------------------------------------
* ansim: plane wave at the array centre, FOA gains ``[1, sin az cos el, sin el, cos az cos el]``
  (ACN/SN3D), amplitude 1/r (r in m, unity at 1 m). No propagation delay: the event arrives at its
  ``start_time``.
* cansim: 8 omnidirectional microphones on a horizontal circle of radius 0.05 m, mic m at azimuth 45 m
  degrees, z = 0. Far-field plane wave with amplitude 1/r at the centre; each mic gets the exact
  fractional delay ``-(u . p_m) / c`` (frequency-domain phase shift, c = 343 m/s = pyroomacoustics'
  constant) relative to the centre. A planar array cannot tell elevation +el from -el (the delays depend
  on cos el only); the labels keep the true sign.
* resim / cresim: shoebox rooms 9-11 x 7-9 x 3.5-4.5 m, array at the centre +-1 m (height +-0.25 m), RT60
  uniform in 0.4-1.0 s per clip (recorded in the meta file), frequency-independent uniform absorption, no
  air absorption. The image sources come from pyroomacoustics (``ShoeBox.image_source_model``: positions
  and reflection orders) with ``max_order`` large enough to hold every image within ``c * RT60`` of the
  direct path; the RIR is truncated there (60 dB decay). The absorption is calibrated per room so that
  the measured T30 equals the RT60 (Eyring's formula alone gives longer decays in a shoebox, see
  :class:`ShoeboxModel`). Each image is encoded from
  its own direction and delay with amplitude damping / r: into FOA from the array centre (resim), or per
  microphone from its exact distance (cresim). Delays are quantized to 1/16 sample on an oversampled grid
  and band-limited by ``scipy.signal.resample_poly``; pyroomacoustics' 10 Hz RIR high-pass removes the DC
  build-up of the dense late images. The RIR is shifted so that the direct sound reaches the array centre
  at ``start_time``.

Noise and SNR
-------------
Spatially diffuse, stationary pink-ish noise (power spectrum 1 / (f + 100 Hz)) over the whole clip.
FOA: the second-order statistics of an isotropic field, i.e. independent W, Y, Z, X with variances
1, 1/3, 1/3, 1/3. Array: the exact spherically-isotropic coherence ``sinc(2 f d_ij / c)`` between mics
(generated through the circulant eigen-decomposition of the uniform circular array).
SNR (``db``) = 10 log10(P_event / P_noise), where P_event is the mean power of the noise-free event mixture
(direct sound and reverberation) over the samples inside at least one CSV event interval, and P_noise the
mean power of the noise over the whole clip, both on the omnidirectional reference: the W channel (FOA)
or the average over the 8 mics. Each event is scaled to a peak of 0.25 (-12 dBFS) before spatialization;
if the clip's peak then exceeds 0.99 the whole clip (events and noise together, so the SNR is unchanged)
is scaled down and the gain recorded in the clip's meta file.

Determinism and resume
----------------------
Every clip uses its own generators ``np.random.default_rng([seed, overlap, split, part, i, stream])``
(part 0 = train, 1 = test; stream 0 = scene and sounds, 1 = noise, 2 = room), so same parameters + seed
give byte-identical files for any ``n_jobs``, and splits, parts and clips differ. Files are written
atomically (temporary name, then rename), the meta file last; a clip whose wav, csv and meta exist with
the same config is skipped (resume), any other is rewritten. Clips of the same ov/split/db with an index
beyond ``nb_train`` / ``nb_test`` are deleted. One process per ov/split/db at a time.

Speed (one process of a shared 2-core machine, one 30 s clip, builtin bank; ov1 / ov3): ansim 0.4-1 s,
cansim 1-3 s, resim 1.5-8 s, cresim 5-13 s (the reverberant cost grows with the number of events and
RT60: up to ~600 000 image sources per event at RT60 = 1 s). The original size (240 + 60 clips) takes
~5 min (ansim) to ~1 h (cresim ov3) per split on 2 cores.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import shlex
import time
from pathlib import Path
from typing import Any, Callable

import joblib
import numpy as np
import pyroomacoustics as pra
import scipy.fft
import scipy.signal
import soundfile as sf
from tqdm import tqdm

from datasets import DATASET_INFO, tut_dirs
from formats import DESC_HEADER
from parameter import parse_overrides as parse_key_values
from sound_bank import SoundBank, load_sound_bank
from utils import SELDError, atomic_path, read_json, run_cli, sph2cart, write_json, write_text

GENERATOR_VERSION = 1
FILE_N = 100                                   # the fixed trailing integer of the TUT file names
DATASETS = {'ansim': ('foa', False), 'resim': ('foa', True), 'cansim': ('mic', False), 'cresim': ('mic', True)}
OVERLAPS = (1, 2, 3)
DBS = (30, 20, 10)
SPEED_OF_SOUND = float(pra.constants.get('c'))  # m/s, the same constant as pyroomacoustics (343)
NB_MICS = 8
MIC_RADIUS_M = 0.05
ELE_LIMIT_DEG = 40
DIST_RANGE_M = (1.0, 3.0)
ROOM_DIM_RANGE_M = ((9.0, 11.0), (7.0, 9.0), (3.5, 4.5))
ARRAY_OFFSET_M = (1.0, 1.0, 0.25)              # array = room centre + uniform(-offset, offset)
RT60_RANGE_S = (0.4, 1.0)
WALL_MARGIN_M = 0.5
FIRST_ONSET_S = ((0.1, 0.5), (0.1, 3.0))       # (track 0, other tracks)
GAP_S = ((0.1, 0.8), (0.1, 2.0))               # (track 0, other tracks)
PRE_SAMPLES = 32                               # lead of array / reverberant segments before the onset
OVERSAMPLE = 16                                # image-source delays are quantized to 1 / OVERSAMPLE sample
PEAK_LIMIT = 0.99
NOISE_CORNER_HZ = 100.0

CLI_DEFAULTS: dict[str, Any] = dict(
    dataset='ansim', overlap=1, split=1, db=30, nb_train=240, nb_test=60, clip_len_s=30.0, fs=44100, seed=0,
    sound_bank='builtin', unseen_doa=False, grid_res_deg=10, dataset_dir='data/{dataset}', n_jobs=1, progress=True)


# --------------------------------------------------------------------------------------------------
# Geometry and spatial encoders
# --------------------------------------------------------------------------------------------------
def mic_positions() -> np.ndarray:
    """Positions of the circular array relative to its centre.

    Returns
    -------
    pos : np.ndarray [shape=(8, 3)], metres; mic m at azimuth 45 m degrees, z = 0.
    """
    return sph2cart(45.0 * np.arange(NB_MICS), np.zeros(NB_MICS), MIC_RADIUS_M)


def foa_gains(unit: np.ndarray) -> np.ndarray:
    """ACN/SN3D first-order gains of plane waves.

    Parameters
    ----------
    unit : np.ndarray [shape=(..., 3)]
        Unit vectors (x, y, z) pointing from the array to the sources.

    Returns
    -------
    gains : np.ndarray [shape=(..., 4)]
        ``[1, y, z, x]`` = ``[1, sin az cos el, sin el, cos az cos el]`` (channels W, Y, Z, X).
    """
    unit = np.asarray(unit, dtype=np.float64)
    return np.stack([np.ones(unit.shape[:-1]), unit[..., 1], unit[..., 2], unit[..., 0]], axis=-1)


def doa_grid(*, res_deg: int, shift_deg: float = 0.0) -> np.ndarray:
    """The DOA grid of the TUT datasets.

    Parameters
    ----------
    res_deg : int
        Grid step in degrees (10 in the original).
    shift_deg : float
        Added to azimuth and elevation (res/2 for unseen-DOA test clips).

    Returns
    -------
    grid : np.ndarray [shape=(nb_doas, 2), dtype=int]
        (azimuth, elevation) pairs: azimuth -180..180-res, elevation -40..40.
    """
    azi = np.arange(-180, 180, res_deg) + shift_deg
    ele = np.arange(-ELE_LIMIT_DEG, ELE_LIMIT_DEG + 1, res_deg) + shift_deg
    a, e = np.meshgrid(azi, ele, indexing='ij')
    return np.stack([a.ravel(), e.ravel()], axis=-1).astype(int)


class ShoeboxModel:
    """Image sources of one shoebox room with frequency-independent uniform absorption.

    pyroomacoustics computes the image sources once per room (``ShoeBox.image_source_model`` for a
    reference source 2 m from the array); the images of any other source
    follow by translating each image by the source displacement mirrored with the image's reflection
    parities (exact for a shoebox), so one ISM serves all events of a clip. The reflection order of
    every image gives its damping ``(1 - absorption) ** (order / 2)``.

    The absorption is calibrated (bisection) so that the T30 of the reference source's image-source
    energy response (least-squares slope of the Schroeder decay from -5 to -35 dB, as
    ``pyroomacoustics.experimental.measure_rt60(decay_db=30)`` measures it) equals ``rt60``: in a
    shoebox with uniform absorption the axial and tangential paths reflect less often than the mean, so
    Sabine's or Eyring's formula gives longer decays than asked (the calibrated absorption is 25-35 %
    above Eyring's for 10 x 8 x 4 m rooms).

    Parameters
    ----------
    room_dim : np.ndarray [shape=(3,)]
        Room size in metres.
    array_pos : np.ndarray [shape=(3,)]
        Array centre in metres (room coordinates), at least 2.5 m from the walls along x.
    rt60 : float
        Target reverberation time in seconds; RIRs are truncated ``rt60`` after the direct sound.
    fs : int
        Sample rate in Hz.
    fmt : {'foa', 'mic'}
        FOA (ACN/SN3D at the array centre) or the 8-mic circle of :func:`mic_positions`.

    Attributes
    ----------
    absorption : float
        Calibrated energy absorption coefficient of every wall.
    max_order : int
        Maximum reflection order given to pyroomacoustics.
    nb_images : int
        Image sources kept (within ``c * rt60 + 10 m`` of the array).
    """

    def __init__(self, *, room_dim: np.ndarray, array_pos: np.ndarray, rt60: float, fs: int, fmt: str):
        self.room_dim = np.asarray(room_dim, dtype=np.float64)
        self.array_pos = np.asarray(array_pos, dtype=np.float64)
        self.rt60, self.fs, self.fmt = float(rt60), int(fs), fmt
        centre_side = 1.0 if self.array_pos[0] < self.room_dim[0] / 2 else -1.0
        self.ref_source = self.array_pos + np.array([2.0 * centre_side, 0.0, 0.0])
        r_keep = SPEED_OF_SOUND * self.rt60 + 10.0  # covers every event source (<= 3 m from the array)
        # an image with reflection indices (i, j, k) is at least (|i|-1) L_x, ... away: this order holds the sphere
        self.max_order = int(math.ceil(r_keep * math.sqrt(np.sum(1.0 / self.room_dim ** 2)))) + 3
        # Only the image positions and reflection orders are taken from pyroomacoustics: they depend on neither
        # the wall material (the absorption is calibrated below) nor the microphones (the array centre serves).
        room = pra.ShoeBox(self.room_dim, fs=fs, max_order=self.max_order, air_absorption=False)
        room.add_source(self.ref_source)
        room.add_microphone(self.array_pos)
        room.image_source_model()
        images = room.sources[0].images.T                                           # (K, 3)
        keep = np.linalg.norm(images - self.array_pos, axis=1) <= r_keep
        self.images, self.orders = images[keep], room.sources[0].orders[keep].astype(np.float64)
        self.nb_images = len(self.images)
        # parity: an image coordinate is 2 m L + s (sign +1) or 2 m L - s (sign -1)
        frac = np.mod((self.images - self.ref_source) / (2 * self.room_dim), 1.0)
        self.signs = np.where(np.minimum(frac, 1.0 - frac) < 1e-6, 1.0, -1.0)
        self.absorption = self._calibrate()

    def image_sources(self, source_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image-source positions and reflection orders of a source.

        Parameters
        ----------
        source_pos : np.ndarray [shape=(3,)]
            Metres, inside the room.

        Returns
        -------
        images : np.ndarray [shape=(nb_images, 3)]
        orders : np.ndarray [shape=(nb_images,)]
        """
        return self.images + self.signs * (np.asarray(source_pos, dtype=np.float64) - self.ref_source), self.orders

    def _t30(self, absorption: float, dist: np.ndarray, d_direct: float) -> float:
        """T30 of the image-source energy response as pyroomacoustics.experimental.measure_rt60 takes it:
        least-squares line through the Schroeder decay (1 ms bins) from -5 to -35 dB, extrapolated to 60 dB."""
        delay = (dist - d_direct) / SPEED_OF_SOUND
        ok = delay <= self.rt60
        energy = np.bincount((delay[ok] * 1000.0).astype(np.int64),
                             weights=(1.0 - absorption) ** self.orders[ok] / dist[ok] ** 2)
        edc = np.cumsum(energy[::-1])[::-1]
        edc_db = 10.0 * np.log10(np.maximum(edc / edc[0], 1e-300))
        i5 = int(np.argmax(edc_db <= -5.0))
        i35 = int(np.argmax(edc_db <= edc_db[i5] - 30.0))
        if i35 <= i5 + 1:
            return np.inf
        slope = np.polyfit(np.arange(i5, i35) / 1000.0, edc_db[i5:i35], 1)[0]
        return -60.0 / slope

    def _calibrate(self) -> float:
        dist = np.linalg.norm(self.images - self.array_pos, axis=1)
        d_direct = float(np.linalg.norm(self.ref_source - self.array_pos))
        lo, hi = 1e-3, 0.99                      # T30 decreases with the absorption
        for _ in range(30):
            mid = math.sqrt(lo * hi)
            if self._t30(mid, dist, d_direct) > self.rt60:
                lo = mid
            else:
                hi = mid
        return math.sqrt(lo * hi)

    def rir(self, source_pos: np.ndarray) -> np.ndarray:
        """Room impulse response of a source, encoded for the array.

        Parameters
        ----------
        source_pos : np.ndarray [shape=(3,)]
            Metres, inside the room.

        Returns
        -------
        rir : np.ndarray [shape=(PRE_SAMPLES + ceil(rt60 * fs) + PRE_SAMPLES, 4 or 8)]
            The direct sound reaches the array centre at sample ``PRE_SAMPLES`` with amplitude 1/r (unity at 1 m);
            each image is encoded from its own direction (FOA) or distance to each mic (array) with
            its delay quantized to 1/16 sample and band-limited by ``scipy.signal.resample_poly``.
        """
        images, orders = self.image_sources(source_pos)
        vec = images - self.array_pos
        dist = np.linalg.norm(vec, axis=1)
        d_direct = float(np.linalg.norm(np.asarray(source_pos) - self.array_pos))
        keep = dist <= d_direct + SPEED_OF_SOUND * self.rt60
        vec, dist = vec[keep], dist[keep]
        damping = (1.0 - self.absorption) ** (orders[keep] / 2.0)
        if self.fmt == 'foa':
            gains = (foa_gains(vec / dist[:, None]) * (damping / dist)[:, None]).T              # (4, K)
            delays = np.broadcast_to((dist - d_direct) / SPEED_OF_SOUND, gains.shape)          # (4, K) s
        else:
            rel = mic_positions()                                                              # (8, 3)
            mic_dist = np.sqrt(np.maximum(dist[None, :] ** 2 - 2.0 * (rel @ vec.T)
                                          + np.sum(rel ** 2, axis=1)[:, None], 0.0))         # (8, K)
            gains, delays = damping / mic_dist, (mic_dist - d_direct) / SPEED_OF_SOUND
        nb_ch, pre = len(gains), PRE_SAMPLES
        n_over = (pre + math.ceil(self.rt60 * self.fs) + pre) * OVERSAMPLE
        idx = np.rint(delays * (self.fs * OVERSAMPLE)).astype(np.int64) + pre * OVERSAMPLE     # (C, K)
        ok = (idx >= 0) & (idx < n_over)
        flat = (idx + n_over * np.arange(nb_ch)[:, None])[ok]
        over = np.bincount(flat, weights=gains[ok], minlength=nb_ch * n_over).reshape(nb_ch, n_over)
        rir = scipy.signal.resample_poly(over, 1, OVERSAMPLE, axis=1) * OVERSAMPLE
        # pyroomacoustics' own RIR high-pass (2nd-order Butterworth, 10 Hz): all images have positive
        # frequency-independent gains, so the dense late part would otherwise build up a DC offset
        sos = pra.utilities.design_highpass_filter_sos(self.fs, pra.constants.get('rir_hpf_fc'),
                                                       **pra.constants.get('rir_hpf_kwargs'))
        return scipy.signal.sosfilt(sos, rir, axis=1).T


def plane_wave_array(signal: np.ndarray, *, azi_deg: float, ele_deg: float, fs: int) -> np.ndarray:
    """Far-field plane wave on the circular array with exact fractional delays (phase shift).

    Parameters
    ----------
    signal : np.ndarray [shape=(samples,)]
        The event at the array centre.
    azi_deg, ele_deg : float
        Direction of arrival in degrees.
    fs : int
        Sample rate in Hz.

    Returns
    -------
    audio : np.ndarray [shape=(samples + 2 PRE_SAMPLES, 8)]
        Sample ``PRE_SAMPLES`` is the onset at the array centre (mics nearer the source hear it up to r/c
        earlier).
    """
    pre = PRE_SAMPLES
    unit = sph2cart(azi_deg, ele_deg)
    tau = -(mic_positions() @ unit) / SPEED_OF_SOUND                 # (8,) s, relative to the centre
    n = len(signal) + 2 * pre
    nfft = scipy.fft.next_fast_len(n + 2 * pre, real=True)
    spec = scipy.fft.rfft(np.pad(signal, (pre, 0)), nfft)
    freqs = np.fft.rfftfreq(nfft, 1.0 / fs)
    return scipy.fft.irfft(spec[:, None] * np.exp(-2j * np.pi * freqs[:, None] * tau[None, :]), nfft, axis=0)[:n]


def diffuse_noise(rng: np.random.Generator, *, nb_samples: int, fs: int, fmt: str) -> np.ndarray:
    """Stationary, spatially diffuse noise (see the module docstring).

    Parameters
    ----------
    rng : np.random.Generator
    nb_samples : int
    fs : int
        Hz.
    fmt : {'foa', 'mic'}

    Returns
    -------
    noise : np.ndarray [shape=(nb_samples, 4 or 8)]
        Arbitrary level (the caller scales it to the SNR).
    """
    nb_bins = nb_samples // 2 + 1
    freqs = np.fft.rfftfreq(nb_samples, 1.0 / fs)
    shape = 1.0 / np.sqrt(freqs + NOISE_CORNER_HZ)
    shape[0] = 0.0
    nb_ch = 4 if fmt == 'foa' else NB_MICS
    spec = np.empty((nb_bins, nb_ch), dtype=np.complex128)
    if fmt == 'mic':
        # uniform circular array: the coherence matrix sinc(2 f d_ij / c) is circulant, its eigenvectors
        # are the DFT vectors and its eigenvalues the DFT of its first row
        d0 = np.linalg.norm(mic_positions() - mic_positions()[0], axis=1)       # (8,)
    chunk = 1 << 16
    for a in range(0, nb_bins, chunk):
        b = min(a + chunk, nb_bins)
        white = rng.standard_normal((b - a, nb_ch, 2)) @ np.array([1.0, 1j]) / math.sqrt(2)
        if fmt == 'foa':
            spec[a:b] = white * np.array([1.0, 1 / math.sqrt(3), 1 / math.sqrt(3), 1 / math.sqrt(3)])
        else:
            coh = np.sinc(2.0 * freqs[a:b, None] * d0[None, :] / SPEED_OF_SOUND)
            eig = np.maximum(np.fft.fft(coh, axis=1).real, 0.0)
            spec[a:b] = math.sqrt(NB_MICS) * np.fft.ifft(np.sqrt(eig) * white, axis=1)
        spec[a:b] *= shape[a:b, None]
    return scipy.fft.irfft(spec, nb_samples, axis=0)


def _max_distance(array_pos: np.ndarray, unit: np.ndarray, room_dim: np.ndarray) -> float:
    """Distance from ``array_pos`` along ``unit`` to the room shrunk by WALL_MARGIN_M."""
    lo, hi = WALL_MARGIN_M - array_pos, room_dim - WALL_MARGIN_M - array_pos
    with np.errstate(divide='ignore'):
        t = np.where(unit > 0, hi / unit, np.where(unit < 0, lo / unit, np.inf))
    return float(t.min())


# --------------------------------------------------------------------------------------------------
# One clip
# --------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Event:
    """One sound event of a clip (onset in samples at the array centre)."""

    onset: int
    signal: np.ndarray
    name: str
    class_idx: int
    azi: int
    ele: int
    dist: float

    @property
    def end(self) -> int:
        return self.onset + len(self.signal)


def plan_clip(rng: np.random.Generator, *, bank: SoundBank, part: str, overlap: int, nb_samples: int, fs: int,
              grid: np.ndarray, dist_fn: Callable[[np.random.Generator, int, int], float]) -> list[Event]:
    """Draw the events of one clip (see "Scenes" in the module docstring).

    Parameters
    ----------
    rng : np.random.Generator
        The clip's scene generator.
    bank : SoundBank
    part : {'train', 'test'}
    overlap : int
        Maximum number of simultaneously active events.
    nb_samples : int
        Clip length in samples.
    fs : int
        Hz.
    grid : np.ndarray [shape=(nb_doas, 2)]
        Allowed (azimuth, elevation) pairs in degrees.
    dist_fn : callable
        ``dist_fn(rng, azi, ele)`` -> distance in metres.

    Returns
    -------
    events : list of Event, sorted by onset.
    """
    nb_classes = len(bank.classes)
    min_len = np.array([bank.min_samples(c, part=part, fs=fs) for c in range(nb_classes)])

    def gap(track: int) -> int:
        return int(rng.uniform(*GAP_S[min(track, 1)]) * fs)

    t_next = [int(rng.uniform(*FIRST_ONSET_S[min(k, 1)]) * fs) for k in range(overlap)]
    is_open = [True] * overlap
    events: list[Event] = []
    while any(is_open):
        track = min((k for k in range(overlap) if is_open[k]), key=lambda k: (t_next[k], k))
        t = t_next[track]
        remaining = nb_samples - t
        busy = [e for e in events if e.end > t]          # active now or later: the new event may meet them
        fits = [c for c in range(nb_classes) if min_len[c] <= remaining]
        if not fits:
            is_open[track] = False
            continue
        blocked = {e.class_idx for e in busy}
        allowed = [c for c in fits if c not in blocked]
        if not allowed:                                   # wait until a blocking event has ended
            t_next[track] = min(e.end for e in busy if e.class_idx in fits) + gap(track)
            continue
        cls = allowed[int(rng.integers(len(allowed)))]
        signal, name = bank.draw(cls, part=part, rng=rng, fs=fs, max_samples=remaining, index=len(events))
        signal = signal[:remaining]
        taken = {(e.azi, e.ele) for e in busy}
        free = np.array([(int(a), int(e)) not in taken for a, e in grid])
        azi, ele = (int(v) for v in grid[np.flatnonzero(free)[rng.integers(free.sum())]])
        events.append(Event(onset=t, signal=signal, name=name, class_idx=cls, azi=azi, ele=ele,
                            dist=dist_fn(rng, azi, ele)))
        t_next[track] = t + len(signal) + gap(track)
    return sorted(events, key=lambda e: (e.onset, e.class_idx))


def _draw_room(rng: np.random.Generator) -> dict[str, Any]:
    dim = np.round([rng.uniform(*r) for r in ROOM_DIM_RANGE_M], 2)
    pos = np.round(dim / 2 + rng.uniform(-1, 1, 3) * np.array(ARRAY_OFFSET_M), 3)
    rt60 = round(float(rng.uniform(*RT60_RANGE_S)), 3)
    return {'dim_m': dim.tolist(), 'array_pos_m': pos.tolist(), 'rt60_s': rt60}


def synthesize_clip(*, bank: SoundBank, dataset: str, part: str, index: int, overlap: int, split: int, db: int,
                    clip_len_s: float, fs: int, seed: int, unseen_doa: bool,
                    grid_res_deg: int) -> tuple[np.ndarray, list[Event], dict[str, Any]]:
    """Synthesize one clip in memory.

    Parameters
    ----------
    bank : SoundBank
    dataset : {'ansim', 'resim', 'cansim', 'cresim'}
    part : {'train', 'test'}
    index : int
        Clip index within its part.
    overlap, split, db, clip_len_s, fs, seed, unseen_doa, grid_res_deg
        As in :func:`synthesize`.

    Returns
    -------
    audio : np.ndarray [shape=(round(clip_len_s * fs), 4 or 8)]
        Float in [-0.99, 0.99].
    events : list of Event
    info : dict
        ``gain`` (anti-clipping factor applied to the clip), ``event_power`` and ``noise_power`` (on the
        omnidirectional reference, after the gain), ``nb_events``, and ``room`` (reverberant datasets).
    """
    fmt, reverberant = DATASETS[dataset]
    nb_samples = round(clip_len_s * fs)
    part_code = 0 if part == 'train' else 1
    rngs = [np.random.default_rng([seed, overlap, split, part_code, index, stream]) for stream in range(3)]
    shift = grid_res_deg / 2 if (unseen_doa and part == 'test') else 0.0
    grid = doa_grid(res_deg=grid_res_deg, shift_deg=shift)

    room = _draw_room(rngs[2]) if reverberant else None
    if room is None:
        def dist_fn(rng: np.random.Generator, azi: int, ele: int) -> float:
            return round(float(rng.uniform(*DIST_RANGE_M)), 1)
    else:
        dim, pos = np.array(room['dim_m']), np.array(room['array_pos_m'])
        model = ShoeboxModel(room_dim=dim, array_pos=pos, rt60=room['rt60_s'], fs=fs, fmt=fmt)
        room.update(absorption=model.absorption, max_order=model.max_order, nb_images=model.nb_images)

        def dist_fn(rng: np.random.Generator, azi: int, ele: int) -> float:
            d_max = min(DIST_RANGE_M[1], _max_distance(pos, sph2cart(azi, ele), dim))
            return max(DIST_RANGE_M[0], math.floor(float(rng.uniform(DIST_RANGE_M[0], d_max)) * 10) / 10)

    events = plan_clip(rngs[0], bank=bank, part=part, overlap=overlap, nb_samples=nb_samples, fs=fs, grid=grid,
                       dist_fn=dist_fn)
    if not events:
        raise SELDError(f'clip_len_s={clip_len_s}: too short for any {part} event of sound bank {bank.name!r}')

    nb_ch = 4 if fmt == 'foa' else NB_MICS
    mix = np.zeros((nb_samples, nb_ch))
    for ev in events:
        unit = sph2cart(ev.azi, ev.ele)
        if reverberant:
            rir = model.rir(pos + ev.dist * unit)
            seg, start = scipy.signal.oaconvolve(ev.signal[:, None], rir, axes=0), ev.onset - PRE_SAMPLES
        elif fmt == 'foa':
            seg, start = ev.signal[:, None] * (foa_gains(unit) / ev.dist), ev.onset
        else:
            seg = plane_wave_array(ev.signal, azi_deg=ev.azi, ele_deg=ev.ele, fs=fs) / ev.dist
            start = ev.onset - PRE_SAMPLES
        a, b = max(start, 0), min(start + len(seg), nb_samples)
        mix[a:b] += seg[a - start:b - start]

    active = np.zeros(nb_samples, dtype=bool)
    for ev in events:
        active[ev.onset:ev.end] = True
    noise = diffuse_noise(rngs[1], nb_samples=nb_samples, fs=fs, fmt=fmt)

    def ref_power(x: np.ndarray) -> float:  # omnidirectional reference: W, or the mean over the mics
        return float(np.mean(x[:, 0] ** 2)) if fmt == 'foa' else float(np.mean(x ** 2))

    event_power = ref_power(mix[active])
    noise *= math.sqrt(event_power / 10.0 ** (db / 10.0) / ref_power(noise))
    noise_power = ref_power(noise)
    audio = mix
    audio += noise
    del noise
    peak = float(np.max(np.abs(audio)))
    gain = min(1.0, PEAK_LIMIT / peak)
    audio *= gain
    info = {'gain': gain, 'gain_db': 20 * math.log10(gain), 'event_power': event_power * gain ** 2,
            'noise_power': noise_power * gain ** 2, 'nb_events': len(events), 'room': room}
    return audio, events, info


def _csv_text(events: list[Event], fs: int) -> str:
    rows = [','.join(DESC_HEADER)]
    for ev in events:
        rows.append(f'{ev.name},{ev.onset / fs:.6f},{ev.end / fs:.6f},{ev.ele},{ev.azi},{ev.dist:.1f}')
    return '\n'.join(rows) + '\n'


def _clip_job(task: dict[str, Any]) -> int:
    """Synthesize and write one clip (wav, csv, then meta); return its number of events."""
    audio, events, info = synthesize_clip(**task['clip'])
    pcm = np.clip(np.rint(audio * 32767.0), -32767, 32767).astype(np.int16)
    with atomic_path(task['wav']) as tmp:
        sf.write(tmp, pcm, task['clip']['fs'], subtype='PCM_16', format='WAV')
    write_text(task['csv'], _csv_text(events, task['clip']['fs']))
    write_json(task['meta'], {'config': task['config'], **info})
    return len(events)


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------
def split_key(*, overlap: int, split: int, db: int) -> str:
    """Key of ``dataset_info.json["splits"]``, e.g. ``'ov1_split1_30db'``."""
    return f'ov{overlap}_split{split}_{db}db'


def clip_stem(*, part: str, index: int, db: int) -> str:
    """File stem of a clip, e.g. ``'train_0_desc_30_100'``."""
    return f'{part}_{index}_desc_{db}_{FILE_N}'


def _validate(*, dataset: str, overlap: int, split: int, db: int, nb_train: int, nb_test: int, clip_len_s: float,
              fs: int, seed: int, grid_res_deg: int, unseen_doa: bool, n_jobs: int) -> None:
    if dataset not in DATASETS:
        raise SELDError(f"dataset={dataset!r}: must be one of {', '.join(DATASETS)}")
    if overlap not in OVERLAPS:
        raise SELDError(f"overlap={overlap}: must be one of {', '.join(map(str, OVERLAPS))}")
    if db not in DBS:
        raise SELDError(f"db={db}: must be one of {', '.join(map(str, DBS))}")
    for key, value, low in (('split', split, 1), ('nb_train', nb_train, 0), ('nb_test', nb_test, 0),
                            ('seed', seed, 0), ('fs', fs, 16000)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise SELDError(f'{key}={value!r}: must be an integer >= {low}')
    if nb_train + nb_test < 1:
        raise SELDError(f'nb_train={nb_train}, nb_test={nb_test}: at least one clip is needed')
    if not 1.0 <= clip_len_s <= 3600.0:
        raise SELDError(f'clip_len_s={clip_len_s}: must be between 1 and 3600 seconds')
    if not (isinstance(grid_res_deg, (int, np.integer)) and grid_res_deg >= 1 and 360 % grid_res_deg == 0
            and ELE_LIMIT_DEG % grid_res_deg == 0):
        raise SELDError(f'grid_res_deg={grid_res_deg}: must be a whole number of degrees dividing 360 and '
                        f'{ELE_LIMIT_DEG} (e.g. 10, 5, 20)')
    if unseen_doa and grid_res_deg % 2:
        raise SELDError(f'grid_res_deg={grid_res_deg} with unseen_doa=true: must be even, so that the test DOAs '
                        f'(shifted by half a step) are whole degrees')
    if n_jobs == 0 or not isinstance(n_jobs, (int, np.integer)):
        raise SELDError(f'n_jobs={n_jobs!r}: must be a nonzero integer (-1: all cores)')


def _command(*, dataset_dir: str, dataset: str, overlap: int, split: int, db: int, nb_train: int, nb_test: int,
             clip_len_s: float, fs: int, seed: int, sound_bank: str, unseen_doa: bool, grid_res_deg: int) -> str:
    args = dict(dataset=dataset, overlap=overlap, split=split, db=db, nb_train=nb_train, nb_test=nb_test,
                clip_len_s=clip_len_s, fs=fs, seed=seed, sound_bank=sound_bank,
                unseen_doa=str(unseen_doa).lower(), grid_res_deg=grid_res_deg, dataset_dir=dataset_dir)
    return 'python synthesize_dataset.py ' + ' '.join(shlex.quote(f'{k}={v}') for k, v in args.items())


def _readme(info: dict[str, Any]) -> str:
    lines = [
        'SYNTHETIC DATA - not recorded, not the original TUT Sound Events 2018 datasets.',
        '',
        f"Made by synthesize_dataset.py (generator version {GENERATOR_VERSION}) as a look-alike of the TUT-2018 "
        f"{info['dataset'].upper()} dataset in the same on-disk format: "
        f"{'FOA (ACN W,Y,Z,X; SN3D)' if info['format'] == 'foa' else '8 omni mics on a 5 cm circle'}, "
        f"{info['fs']} Hz, {info['clip_len_s']} s clips, 16-bit PCM.",
        f"Sound events: sound bank {info['sound_bank']!r}; classes in index order: {', '.join(info['classes'])}.",
        'Events are spatialized on a DOA grid (azimuth -180..170, elevation -40..40, step grid_res_deg of each '
        'split in dataset_info.json) at 1-3 m, '
        + ('in simulated shoebox rooms (pyroomacoustics image sources, RT60 0.4-1.0 s per clip, see meta_*/)'
           if info['dataset'] in ('resim', 'cresim') else 'in free field (anechoic)')
        + ', with spatially diffuse noise at the SNR in the folder name.',
        'See the docstring of synthesize_dataset.py for every convention (SNR definition, timing, noise).',
        'desc_*/ hold the labels, wav_*/ the audio, meta_*/ per-clip synthesis details; dataset_info.json '
        'describes the whole folder.',
        '',
        'Commands that made this folder:',
    ]
    lines += [f"  {entry['command']}" for _, entry in sorted(info['splits'].items())]
    return '\n'.join(lines) + '\n'


def synthesize(*, dataset_dir: str | os.PathLike, dataset: str = 'ansim', overlap: int = 1, split: int = 1,
               db: int = 30, nb_train: int = 240, nb_test: int = 60, clip_len_s: float = 30.0, fs: int = 44100,
               seed: int = 0, sound_bank: str | os.PathLike = 'builtin', unseen_doa: bool = False,
               grid_res_deg: int = 10, n_jobs: int = 1, progress: bool = True) -> dict[str, Any]:
    """Synthesize one ov/split/db of a TUT-2018-format SELD dataset (see the module docstring).

    Clips are generated and written one by one (in parallel over clips with joblib), so a split is never
    held in memory; complete clips of an earlier run with the same config are skipped.

    Parameters
    ----------
    dataset_dir : str or path
        Output folder (created); may already hold other ov/split/db of the same dataset.
    dataset : {'ansim', 'resim', 'cansim', 'cresim'}
        Anechoic / reverberant FOA (4 ch), anechoic / reverberant 8-mic circular array.
    overlap : {1, 2, 3}
        Maximum number of simultaneously active events.
    split : int >= 1
        Cross-validation split (part of the folder names and of the random streams).
    db : {30, 20, 10}
        Signal-to-noise ratio in dB (definition in the module docstring).
    nb_train, nb_test : int >= 0
        Number of train and test clips.
    clip_len_s : float
        Clip length in seconds.
    fs : int >= 16000
        Sample rate in Hz.
    seed : int >= 0
        Base seed; with the other parameters it fixes every byte of the output.
    sound_bank : str or path
        ``'builtin'`` or a folder of mono ``<class><3 digits>.wav`` files (:mod:`sound_bank`).
    unseen_doa : bool
        Test clips use DOAs shifted by ``grid_res_deg / 2`` in azimuth and elevation.
    grid_res_deg : int
        DOA grid step in degrees (divides 360 and 40).
    n_jobs : int
        joblib processes (-1: all cores); the output does not depend on it.
    progress : bool
        Show a tqdm progress bar over clips.

    Returns
    -------
    summary : dict
        ``dataset_dir``, ``split_key``, ``wav_dir``, ``desc_dir``, ``meta_dir`` (str), ``nb_clips``,
        ``nb_synthesized``, ``nb_skipped``, ``nb_events`` (int), ``audio_minutes``, ``seconds`` (float).

    Raises
    ------
    SELDError
        A bad parameter or sound bank, or an existing ``dataset_info.json`` that disagrees.
    """
    t0 = time.perf_counter()
    _validate(dataset=dataset, overlap=overlap, split=split, db=db, nb_train=nb_train, nb_test=nb_test,
              clip_len_s=clip_len_s, fs=fs, seed=seed, grid_res_deg=grid_res_deg, unseen_doa=bool(unseen_doa),
              n_jobs=n_jobs)
    clip_len_s, unseen_doa = float(clip_len_s), bool(unseen_doa)
    bank = load_sound_bank(sound_bank, split=split)
    for part, nb in (('train', nb_train), ('test', nb_test)):
        shortest = min(bank.min_samples(c, part=part, fs=fs) for c in range(len(bank.classes)))
        if nb and shortest > round(clip_len_s * fs) - FIRST_ONSET_S[0][1] * fs:
            raise SELDError(f'clip_len_s={clip_len_s}: too short for the shortest {part} event of sound bank '
                            f'{bank.name!r} ({shortest / fs:.2f} s after an onset of up to {FIRST_ONSET_S[0][1]} s)')
    fmt, _ = DATASETS[dataset]
    root = Path(dataset_dir)
    info_path = root / DATASET_INFO
    header = {'synthetic': True, 'generator': 'synthesize_dataset.py', 'dataset': dataset, 'format': fmt, 'fs': fs,
              'nb_channels': 4 if fmt == 'foa' else NB_MICS, 'clip_len_s': clip_len_s,
              'classes': list(bank.classes), 'sound_bank': bank.name, 'file_name_n': FILE_N}
    if fmt == 'mic':
        header['mic_radius_m'] = MIC_RADIUS_M
    old = read_json(info_path) if info_path.exists() else None
    if old is not None:
        for key in ('synthetic', 'dataset', 'format', 'fs', 'nb_channels', 'clip_len_s', 'classes'):
            if old.get(key) != header[key]:
                raise SELDError(f'{info_path}: has {key}={old.get(key)!r} but this run makes {key}={header[key]!r}; '
                                f'use another dataset_dir or delete that folder')

    key = split_key(overlap=overlap, split=split, db=db)
    wav_dir, desc_dir = (Path(d) for d in tut_dirs(root, overlap=overlap, split=split, db=db))
    meta_dir = root / f'meta_{key}'
    for folder in (wav_dir, desc_dir, meta_dir):
        folder.mkdir(parents=True, exist_ok=True)
    _remove_stale(wav_dir, desc_dir, meta_dir, db=db, nb={'train': nb_train, 'test': nb_test})

    tasks, nb_events, nb_skipped = [], {'train': 0, 'test': 0}, 0
    for part, nb in (('train', nb_train), ('test', nb_test)):
        for index in range(nb):
            clip = dict(bank=bank, dataset=dataset, part=part, index=index, overlap=overlap, split=split, db=db,
                        clip_len_s=clip_len_s, fs=fs, seed=seed, unseen_doa=unseen_doa, grid_res_deg=grid_res_deg)
            config = {k: v for k, v in clip.items() if k != 'bank'}
            config.update(version=GENERATOR_VERSION, sound_bank=bank.name, classes=list(bank.classes))
            stem = clip_stem(part=part, index=index, db=db)
            task = dict(clip=clip, config=config, wav=wav_dir / f'{stem}.wav', csv=desc_dir / f'{stem}.csv',
                        meta=meta_dir / f'{stem}.json')
            done = _completed(task)
            if done is None:
                tasks.append(task)
            else:
                nb_events[part] += done
                nb_skipped += 1

    bar = tqdm(total=nb_train + nb_test, initial=nb_skipped, desc=f'{dataset} {key}', unit='clip',
               disable=not progress)
    with bar:
        if n_jobs == 1:
            results = map(_clip_job, tasks)
        else:
            results = joblib.Parallel(n_jobs=n_jobs, return_as='generator')(joblib.delayed(_clip_job)(t) for t in tasks)
        for task, count in zip(tasks, results):
            nb_events[task['clip']['part']] += count
            bar.update(1)

    command = _command(dataset_dir=os.fspath(dataset_dir), dataset=dataset, overlap=overlap, split=split, db=db,
                       nb_train=nb_train, nb_test=nb_test, clip_len_s=clip_len_s, fs=fs, seed=seed,
                       sound_bank=bank.name, unseen_doa=unseen_doa, grid_res_deg=grid_res_deg)
    info = {**(old or {}), **header}
    info['splits'] = dict((old or {}).get('splits', {}))
    info['splits'][key] = {'overlap': overlap, 'split': split, 'db': db, 'nb_train': nb_train, 'nb_test': nb_test,
                           'seed': seed, 'unseen_doa': unseen_doa, 'grid_res_deg': grid_res_deg,
                           'nb_events': nb_events, 'wav_dir': wav_dir.name, 'desc_dir': desc_dir.name,
                           'meta_dir': meta_dir.name, 'command': command}
    write_json(info_path, info)
    write_text(root / 'README.txt', _readme(info))
    return {'dataset_dir': os.fspath(dataset_dir), 'split_key': key, 'wav_dir': os.fspath(wav_dir),
            'desc_dir': os.fspath(desc_dir), 'meta_dir': os.fspath(meta_dir), 'nb_clips': nb_train + nb_test,
            'nb_synthesized': len(tasks), 'nb_skipped': nb_skipped, 'nb_events': sum(nb_events.values()),
            'audio_minutes': (nb_train + nb_test) * clip_len_s / 60.0, 'seconds': time.perf_counter() - t0}


def _completed(task: dict[str, Any]) -> int | None:
    """Number of events of a clip already written with the same config, else None."""
    if not (task['wav'].exists() and task['csv'].exists() and task['meta'].exists()):
        return None
    try:
        meta = read_json(task['meta'])
    except SELDError:
        return None
    return meta.get('nb_events') if meta.get('config') == task['config'] else None


def _remove_stale(wav_dir: Path, desc_dir: Path, meta_dir: Path, *, db: int, nb: dict[str, int]) -> None:
    """Delete clips of this db with an index beyond nb[part] and temporary files of interrupted runs."""
    clip_re = re.compile(rf'^(train|test)_(\d+)_desc_{db}_{FILE_N}\.(wav|csv|json)$')
    tmp_re = re.compile(rf'^\.(train|test)_\d+_desc_{db}_{FILE_N}\.(wav|csv|json)\..*\.tmp\.(wav|csv|json)$')
    for folder in (wav_dir, desc_dir, meta_dir):
        for path in folder.iterdir():
            match = clip_re.match(path.name)
            if tmp_re.match(path.name) or (match and int(match[2]) >= nb[match[1]]):
                path.unlink()


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------
def parse_overrides(argv: list[str]) -> dict[str, Any]:
    """Parse ``key=value`` arguments typed like :data:`CLI_DEFAULTS`; unknown keys are errors."""
    params = dict(CLI_DEFAULTS, **parse_key_values(argv, CLI_DEFAULTS))
    params['dataset_dir'] = params['dataset_dir'].replace('{dataset}', params['dataset'])
    return params


def main(argv: list[str]) -> int:
    """Command-line entry point (see the module docstring)."""
    if any(a in ('-h', '--help') for a in argv):
        print(__doc__)
        return 0
    print(summary_line(synthesize(**parse_overrides(argv))))
    return 0


def summary_line(summary: dict) -> str:
    """The one-line summary of a :func:`synthesize` call."""
    return (f"{summary['split_key']}: {summary['nb_clips']} clips ({summary['nb_skipped']} already complete), "
            f"{summary['nb_events']} events, {summary['audio_minutes']:.1f} min of synthetic audio in "
            f"{summary['seconds']:.1f} s -> {summary['dataset_dir']}")


if __name__ == '__main__':
    run_cli(main)

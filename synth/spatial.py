"""Spatial encoders of the synthesizers: FOA plane waves, microphone arrays, shoebox rooms, diffuse noise.

Shared by :mod:`synth.tut2018` (TUT Sound Events 2018 look-alikes) and :mod:`synth.dcase` (DCASE
2019-2024 development-set look-alikes). Conventions: azimuth counter-clockwise from +x, elevation up
(:func:`utils.sph2cart`); FOA is ACN (W, Y, Z, X) with SN3D gains ``[1, sin az cos el, sin el, cos az cos el]``;
c = 343 m/s (pyroomacoustics' constant).

Arrays
------
* circular (CANSIM/CRESIM look-alikes): 8 omnidirectional mics on a horizontal circle of radius 0.05 m, mic m at
  azimuth 45 m degrees (:func:`mic_positions`).
* tetrahedral (the ``mic`` format of the DCASE sets): 4 omnidirectional mics at the directions
  :data:`datasets.TETRA_MICS_DEG` on a sphere of radius :data:`datasets.TETRA_RADIUS_M` = 0.042 m
  (:func:`tetra_positions`). The real array's capsules sit on a rigid sphere (an Eigenmike em32), whose
  scattering adds frequency-dependent level and phase differences; here the mics are in FREE FIELD, so only the
  propagation delays between the capsules are modelled: a look-alike, not the real array response.

Sources
-------
* static plane waves: FOA gains times the signal; arrays by exact fractional delays ``-(u . p_m) / c``
  (frequency-domain phase shift, :func:`plane_wave_array`).
* moving plane waves (a direction per sample): FOA by per-sample gains; arrays by a per-sample fractional delay,
  windowed-sinc interpolation with :data:`SINC_HALF_WIDTH` taps each side (:func:`plane_wave_array_moving`).
* shoebox rooms (:class:`ShoeboxModel`): image sources from pyroomacoustics, one RIR per source position; a
  moving source gets one RIR per block of its trajectory whose first :data:`EARLY_S` s after the direct sound
  (direct sound and early reflections) come from the block's position and whose later part comes from one
  position (the middle of the trajectory; :meth:`ShoeboxModel.moving_parts`).
"""
from __future__ import annotations

import copy
import functools
import math

import numpy as np
import pyroomacoustics as pra
import scipy.fft
import scipy.signal

from datasets import TETRA_MICS_DEG, TETRA_RADIUS_M
from utils import sph2cart

SPEED_OF_SOUND = float(pra.constants.get('c'))  # m/s, the same constant as pyroomacoustics (343)
NB_MICS = 8                                     # circular array
MIC_RADIUS_M = 0.05
PRE_SAMPLES = 32                               # lead of array / reverberant segments before the onset
OVERSAMPLE = 16                                # image-source delays are quantized to 1 / OVERSAMPLE sample
NOISE_CORNER_HZ = 100.0
SINC_HALF_WIDTH = 32                           # taps each side of the moving-source fractional delay
SINC_KAISER_BETA = 9.0
SINC_TABLE_STEPS = 512                         # fractional delays: taps tabulated per 1/512 sample
EARLY_S = 0.1                                  # moving sources in rooms: the part of each RIR that follows the source


def mic_positions() -> np.ndarray:
    """Positions of the circular array relative to its centre.

    Returns
    -------
    pos : np.ndarray [shape=(8, 3)], metres; mic m at azimuth 45 m degrees, z = 0.
    """
    return sph2cart(45.0 * np.arange(NB_MICS), np.zeros(NB_MICS), MIC_RADIUS_M)


def tetra_positions() -> np.ndarray:
    """Positions of the tetrahedral array of the DCASE sets relative to its centre (free-field look-alike).

    Returns
    -------
    pos : np.ndarray [shape=(4, 3)], metres; mic m at :data:`datasets.TETRA_MICS_DEG` ``[m]`` on radius 0.042 m.
    """
    azi, ele = np.array(TETRA_MICS_DEG, dtype=np.float64).T
    return sph2cart(azi, ele, TETRA_RADIUS_M)


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
        FOA (ACN/SN3D at the array centre) or the microphones ``mics``.
    mics : np.ndarray [shape=(M, 3)], optional
        Mic positions relative to the array centre, metres (``fmt='mic'``); default the 8-mic circle of
        :func:`mic_positions`.

    Attributes
    ----------
    absorption : float
        Calibrated energy absorption coefficient of every wall.
    max_order : int
        Maximum reflection order given to pyroomacoustics.
    nb_images : int
        Image sources kept (within ``c * rt60 + 10 m`` of the array).
    """

    def __init__(self, *, room_dim: np.ndarray, array_pos: np.ndarray, rt60: float, fs: int, fmt: str,
                 mics: np.ndarray | None = None):
        self.room_dim = np.asarray(room_dim, dtype=np.float64)
        self.array_pos = np.asarray(array_pos, dtype=np.float64)
        self.rt60, self.fs, self.fmt = float(rt60), int(fs), fmt
        self.mics = mic_positions() if mics is None else np.asarray(mics, dtype=np.float64)
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

    def with_array(self, *, fmt: str, mics: np.ndarray | None = None) -> 'ShoeboxModel':
        """The same room (images, calibrated absorption) encoded for another array (``fmt``, ``mics`` as in the
        constructor), without computing the image sources again."""
        other = copy.copy(self)
        other.fmt = fmt
        other.mics = mic_positions() if mics is None else np.asarray(mics, dtype=np.float64)
        return other

    def image_sources(self, source_pos: np.ndarray, *,
                      subset: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Image-source positions and reflection orders of a source.

        Parameters
        ----------
        source_pos : np.ndarray [shape=(3,)]
            Metres, inside the room.
        subset : np.ndarray of int, optional
            Only these images (indices into the room's images).

        Returns
        -------
        images : np.ndarray [shape=(nb_images, 3)]
        orders : np.ndarray [shape=(nb_images,)]
        """
        if subset is not None:
            return (self.images[subset] + self.signs[subset] * (np.asarray(source_pos, dtype=np.float64)
                                                                 - self.ref_source), self.orders[subset])
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
        rir : np.ndarray [shape=(PRE_SAMPLES + ceil(rt60 * fs) + PRE_SAMPLES, 4 or M)]
            The direct sound reaches the array centre at sample ``PRE_SAMPLES`` with amplitude 1/r (unity at 1 m);
            each image is encoded from its own direction (FOA) or distance to each mic (array) with
            its delay quantized to 1/16 sample and band-limited by ``scipy.signal.resample_poly``.
        """
        return self._highpass(self._render(source_pos, max_delay_s=self.rt60, length_s=self.rt60))

    def moving_parts(self, positions: np.ndarray, *, late_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """RIRs of a moving source, not high-passed, split in two: for each position the images arriving within
        :data:`EARLY_S` of the direct sound, and one late part (the later images of ``late_pos``) that all positions
        share (all at the same distance from the array, so the direct sound arrives at the same time).
        ``highpass(early[j] + late)`` (the early part zero-padded) is the RIR of position j as :meth:`rir` makes it,
        with the late reverberation of ``late_pos``.

        Parameters
        ----------
        positions : np.ndarray [shape=(J, 3)]
            Metres, inside the room.
        late_pos : np.ndarray [shape=(3,)]

        Returns
        -------
        early : np.ndarray [shape=(J, PRE_SAMPLES + ceil(EARLY_S * fs) + PRE_SAMPLES, 4 or M)]
        late : np.ndarray [shape=(PRE_SAMPLES + ceil(rt60 * fs) + PRE_SAMPLES, 4 or M)]
        """
        early_s = min(EARLY_S, self.rt60)
        positions = np.asarray(positions, dtype=np.float64)
        late = self._render(late_pos, min_delay_s=early_s, max_delay_s=self.rt60, length_s=self.rt60).T
        # an image of a source at p is |p - ref| at most from the reference source's image: only those within
        # reach of the early window for some position are translated per position
        d_direct = float(np.linalg.norm(positions[0] - self.array_pos))
        reach = d_direct + SPEED_OF_SOUND * early_s + np.max(np.linalg.norm(positions - self.ref_source, axis=1))
        near = np.flatnonzero(np.linalg.norm(self.images - self.array_pos, axis=1) <= reach + 1e-6)
        early = np.stack([self._render(pos, max_delay_s=early_s, length_s=early_s, subset=near).T
                          for pos in positions])
        return early, late

    def _render(self, source_pos: np.ndarray, *, max_delay_s: float, length_s: float,
                min_delay_s: float | None = None, subset: np.ndarray | None = None) -> np.ndarray:
        """The images of a source arriving ``(min_delay_s, max_delay_s]`` after the direct sound (of the images
        ``subset`` only, if given), band-limited, not high-passed:
        [shape=(channels, PRE_SAMPLES + ceil(length_s * fs) + PRE_SAMPLES)]."""
        images, orders = self.image_sources(source_pos, subset=subset)
        vec = images - self.array_pos
        dist = np.linalg.norm(vec, axis=1)
        d_direct = float(np.linalg.norm(np.asarray(source_pos) - self.array_pos))
        keep = dist <= d_direct + SPEED_OF_SOUND * max_delay_s
        if min_delay_s is not None:
            keep &= dist > d_direct + SPEED_OF_SOUND * min_delay_s
        vec, dist = vec[keep], dist[keep]
        damping = (1.0 - self.absorption) ** (orders[keep] / 2.0)
        if self.fmt == 'foa':
            gains = (foa_gains(vec / dist[:, None]) * (damping / dist)[:, None]).T              # (4, K)
            delays = np.broadcast_to((dist - d_direct) / SPEED_OF_SOUND, gains.shape)          # (4, K) s
        else:
            rel = self.mics                                                                    # (M, 3)
            mic_dist = np.sqrt(np.maximum(dist[None, :] ** 2 - 2.0 * (rel @ vec.T)
                                          + np.sum(rel ** 2, axis=1)[:, None], 0.0))         # (M, K)
            gains, delays = damping / mic_dist, (mic_dist - d_direct) / SPEED_OF_SOUND
        nb_ch, pre = len(gains), PRE_SAMPLES
        n_over = (pre + math.ceil(length_s * self.fs) + pre) * OVERSAMPLE
        idx = np.rint(delays * (self.fs * OVERSAMPLE)).astype(np.int64) + pre * OVERSAMPLE     # (C, K)
        ok = (idx >= 0) & (idx < n_over)
        flat = (idx + n_over * np.arange(nb_ch)[:, None])[ok]
        over = np.bincount(flat, weights=gains[ok], minlength=nb_ch * n_over).reshape(nb_ch, n_over)
        return scipy.signal.resample_poly(over, 1, OVERSAMPLE, axis=1) * OVERSAMPLE

    def _highpass(self, rir: np.ndarray) -> np.ndarray:
        """[shape=(channels, n)] -> high-passed [shape=(n, channels)] (:meth:`highpass`)."""
        return self.highpass(rir, axis=1).T

    def highpass(self, x: np.ndarray, *, axis: int = 0) -> np.ndarray:
        """pyroomacoustics' own RIR high-pass (2nd-order Butterworth, 10 Hz) along ``axis``, from rest: all images
        have positive frequency-independent gains, so the dense late part would otherwise build up a DC offset."""
        sos = pra.utilities.design_highpass_filter_sos(self.fs, pra.constants.get('rir_hpf_fc'),
                                                       **pra.constants.get('rir_hpf_kwargs'))
        return scipy.signal.sosfilt(sos, x, axis=axis)


def plane_wave_array(signal: np.ndarray, *, azi_deg: float, ele_deg: float, fs: int,
                     mics: np.ndarray | None = None) -> np.ndarray:
    """Far-field plane wave on a microphone array with exact fractional delays (phase shift).

    Parameters
    ----------
    signal : np.ndarray [shape=(samples,)]
        The event at the array centre.
    azi_deg, ele_deg : float
        Direction of arrival in degrees.
    fs : int
        Sample rate in Hz.
    mics : np.ndarray [shape=(M, 3)], optional
        Mic positions relative to the centre, metres; default the circular array (:func:`mic_positions`).

    Returns
    -------
    audio : np.ndarray [shape=(samples + 2 PRE_SAMPLES, M)]
        Sample ``PRE_SAMPLES`` is the onset at the array centre (mics nearer the source hear it up to r/c
        earlier).
    """
    pre = PRE_SAMPLES
    unit = sph2cart(azi_deg, ele_deg)
    tau = -((mic_positions() if mics is None else mics) @ unit) / SPEED_OF_SOUND  # (M,) s, relative to the centre
    n = len(signal) + 2 * pre
    nfft = scipy.fft.next_fast_len(n + 2 * pre, real=True)
    spec = scipy.fft.rfft(np.pad(signal, (pre, 0)), nfft)
    freqs = np.fft.rfftfreq(nfft, 1.0 / fs)
    return scipy.fft.irfft(spec[:, None] * np.exp(-2j * np.pi * freqs[:, None] * tau[None, :]), nfft, axis=0)[:n]


def plane_wave_array_moving(signal: np.ndarray, *, units: np.ndarray, fs: int, mics: np.ndarray) -> np.ndarray:
    """Far-field plane wave on a microphone array from a direction that changes every sample.

    Mic m receives ``signal(t - tau_m(t))`` with ``tau_m(t) = -(u(t) . p_m) / c``, evaluated between samples by
    windowed-sinc interpolation (:data:`SINC_HALF_WIDTH` taps each side, Kaiser window beta
    :data:`SINC_KAISER_BETA`, tabulated every 1/512 sample and interpolated linearly; within -50 dB of the exact
    delay below 0.4 fs, tests/test_synthesize_dcase.py).

    Parameters
    ----------
    signal : np.ndarray [shape=(samples,)]
        The event at the array centre.
    units : np.ndarray [shape=(samples, 3)]
        Direction of arrival of each sample (unit vectors).
    fs : int
        Sample rate in Hz.
    mics : np.ndarray [shape=(M, 3)]
        Mic positions relative to the centre, metres.

    Returns
    -------
    audio : np.ndarray [shape=(samples + 2 PRE_SAMPLES, M)], onset at sample ``PRE_SAMPLES`` as
        :func:`plane_wave_array`.
    """
    pre, n = PRE_SAMPLES, len(signal)
    out = np.zeros((n + 2 * pre, len(mics)))
    taps = np.arange(-SINC_HALF_WIDTH + 1, SINC_HALF_WIDTH + 1)
    table = _sinc_table()
    for a in range(0, n + 2 * pre, 8192):
        k = np.arange(a, min(a + 8192, n + 2 * pre))
        u = units[np.clip(k - pre, 0, n - 1)]                         # direction at the centre time k - pre
        t = (k - pre)[:, None] + (u @ mics.T) / SPEED_OF_SOUND * fs    # (K, M) source sample heard by mic m
        base = np.floor(t).astype(np.int64)
        pos = (t - base) * SINC_TABLE_STEPS                            # fractional part on the table's grid
        row = np.minimum(pos.astype(np.int64), SINC_TABLE_STEPS - 1)
        frac = (pos - row)[..., None]
        w = (1.0 - frac) * table[row] + frac * table[row + 1]          # (K, M, taps) linear between table rows
        idx = base[..., None] + taps
        x = np.where((idx >= 0) & (idx < n), signal[np.clip(idx, 0, n - 1)], 0.0)
        out[k] = np.einsum('kmt,kmt->km', x, w)
    return out


@functools.lru_cache(maxsize=1)
def _sinc_table() -> np.ndarray:
    """Kaiser-windowed sinc taps ``w(f - tap)`` for fractional parts ``f = i / SINC_TABLE_STEPS``, i = 0..STEPS:
    [shape=(SINC_TABLE_STEPS + 1, 2 SINC_HALF_WIDTH)]."""
    taps = np.arange(-SINC_HALF_WIDTH + 1, SINC_HALF_WIDTH + 1)
    d = np.arange(SINC_TABLE_STEPS + 1)[:, None] / SINC_TABLE_STEPS - taps[None, :]
    window = np.i0(SINC_KAISER_BETA * np.sqrt(np.maximum(0.0, 1.0 - (d / SINC_HALF_WIDTH) ** 2)))
    return np.sinc(d) * window / np.i0(SINC_KAISER_BETA)


def diffuse_noise(rng: np.random.Generator, *, nb_samples: int, fs: int, fmt: str,
                  mics: np.ndarray | None = None) -> np.ndarray:
    """Stationary, spatially diffuse noise (power spectrum ``1 / (f + 100 Hz)``).

    FOA: the second-order statistics of an isotropic field, i.e. independent W, Y, Z, X with variances 1, 1/3,
    1/3, 1/3. Arrays: the spherically-isotropic coherence ``sinc(2 f d_ij / c)`` between mics at distance
    ``d_ij`` (the circular array through the circulant eigen-decomposition of its coherence matrix; other arrays
    through the eigen-decomposition of the matrix at each frequency).

    Parameters
    ----------
    rng : np.random.Generator
    nb_samples : int
    fs : int
        Hz.
    fmt : {'foa', 'mic'}
    mics : np.ndarray [shape=(M, 3)], optional
        ``fmt='mic'``: mic positions relative to the centre, metres; default the circular array.

    Returns
    -------
    noise : np.ndarray [shape=(nb_samples, 4 or M)]
        Arbitrary level (the caller scales it to the SNR).
    """
    nb_bins = nb_samples // 2 + 1
    freqs = np.fft.rfftfreq(nb_samples, 1.0 / fs)
    shape = 1.0 / np.sqrt(freqs + NOISE_CORNER_HZ)
    shape[0] = 0.0
    nb_ch = 4 if fmt == 'foa' else NB_MICS if mics is None else len(mics)
    spec = np.empty((nb_bins, nb_ch), dtype=np.complex128)
    if fmt == 'mic' and mics is None:
        # uniform circular array: the coherence matrix sinc(2 f d_ij / c) is circulant, its eigenvectors
        # are the DFT vectors and its eigenvalues the DFT of its first row
        d0 = np.linalg.norm(mic_positions() - mic_positions()[0], axis=1)       # (8,)
    elif fmt == 'mic':
        dist = np.linalg.norm(mics[:, None, :] - mics[None, :, :], axis=-1)     # (M, M)
    chunk = 1 << 16
    for a in range(0, nb_bins, chunk):
        b = min(a + chunk, nb_bins)
        white = rng.standard_normal((b - a, nb_ch, 2)) @ np.array([1.0, 1j]) / math.sqrt(2)
        if fmt == 'foa':
            spec[a:b] = white * np.array([1.0, 1 / math.sqrt(3), 1 / math.sqrt(3), 1 / math.sqrt(3)])
        elif mics is None:
            coh = np.sinc(2.0 * freqs[a:b, None] * d0[None, :] / SPEED_OF_SOUND)
            eig = np.maximum(np.fft.fft(coh, axis=1).real, 0.0)
            spec[a:b] = math.sqrt(NB_MICS) * np.fft.ifft(np.sqrt(eig) * white, axis=1)
        else:
            eig, vec = np.linalg.eigh(np.sinc(2.0 * freqs[a:b, None, None] * dist / SPEED_OF_SOUND))
            spec[a:b] = np.einsum('bij,bj->bi', vec * np.sqrt(np.maximum(eig, 0.0))[:, None, :], white)
        spec[a:b] *= shape[a:b, None]
    return scipy.fft.irfft(spec, nb_samples, axis=0)

"""Scenes of the synthesizers: events on tracks, their directions and distances, rooms, the mix and its noise.

Shared by :mod:`synth.tut2018` (TUT Sound Events 2018 look-alikes) and :mod:`synth.dcase` (DCASE
2019-2024 look-alikes); the spatial encoders are in :mod:`synth.spatial`.

Scenes (:func:`plan_clip`)
--------------------------
``overlap`` tracks of events (track 0 starts 0.1-0.5 s into the clip, the others 0.1-3 s); on a track each event
follows the previous one after a gap of 0.1-0.8 s (track 0) or 0.1-2 s (the others), so at most ``overlap`` events
are active at once. Without ``same_class_prob`` an event never starts while an event of the same class is still
active (TUT-2018, DCASE 2019/2020); with it, same-class overlaps are allowed and, with probability
``same_class_prob``, a new event that meets active events takes the class of one of them. Classes are uniform over
those allowed; each class's events come from the sound bank (:mod:`synth.sound_bank`). Directions come from a picker:
the TUT grid (never the DOA of an active event, static; :func:`grid_doa_picker`) or, for the DCASE look-alikes,
integer degrees at least a separation away from the active events, a share of them moving at a constant
azimuthal speed (:func:`sphere_doa_picker`). Distances are uniform in 1-3 m (rooms: also >= 0.5 m from every wall,
for a moving source along its whole circle).

Mix and noise (:func:`mix_events`, :func:`add_noise`)
------------------------------------------------------
Each event is spatialized (:func:`spatialize`) with amplitude 1/r and added. SNR (``db``) = 10 log10(P_event /
P_noise): P_event is the mean power of the noise-free labelled-event mixture (direct sound and reverberation) over
the samples inside at least one event, P_noise the mean power of the noise over the whole clip, both on the
omnidirectional reference: the W channel (FOA) or the average over the mics. Unlabelled sounds (interferers) are
added after P_event is measured. If the clip's peak then exceeds 0.99 the whole clip is scaled down (the SNR is
unchanged) and the gain recorded.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import numpy as np
import scipy.signal

from formats import DESC_HEADER
from synth.sound_bank import SoundBank
from synth.spatial import PRE_SAMPLES, ShoeboxModel, foa_gains, plane_wave_array, plane_wave_array_moving
from utils import angular_distance_deg, sph2cart

ELE_LIMIT_DEG = 40                             # the TUT grid
DIST_RANGE_M = (1.0, 3.0)
ROOM_DIM_RANGE_M = ((9.0, 11.0), (7.0, 9.0), (3.5, 4.5))
ARRAY_OFFSET_M = (1.0, 1.0, 0.25)              # array = room centre + uniform(-offset, offset)
RT60_RANGE_S = (0.4, 1.0)
WALL_MARGIN_M = 0.5
FIRST_ONSET_S = ((0.1, 0.5), (0.1, 3.0))       # (track 0, other tracks)
GAP_S = ((0.1, 0.8), (0.1, 2.0))               # (track 0, other tracks)
PEAK_LIMIT = 0.99
BLOCK_S = 0.1                                  # moving sources in rooms: one RIR per 100 ms block
MIN_SEPARATION_DEG = 20.0                      # sphere_doa_picker: from the directions of the active events


@dataclasses.dataclass
class Event:
    """One sound event of a clip (onset in samples at the array centre).

    A moving event (``speed_deg_s`` != 0) starts at (``azi``, ``ele``) and turns in azimuth at ``speed_deg_s``
    degrees per second (counter-clockwise if positive) at a constant elevation and distance.
    """

    onset: int
    signal: np.ndarray
    name: str
    class_idx: int
    azi: int
    ele: int
    dist: float
    speed_deg_s: float = 0.0

    @property
    def end(self) -> int:
        return self.onset + len(self.signal)

    def azimuth_at(self, samples: np.ndarray, fs: int) -> np.ndarray:
        """Azimuth in degrees, wrapped to [-180, 180), at clip samples ``samples`` (array centre time)."""
        azi = self.azi + self.speed_deg_s * (np.asarray(samples, dtype=np.float64) - self.onset) / fs
        return np.mod(azi + 180.0, 360.0) - 180.0


#: ``doa_fn(rng, active_events, onset_sample)`` -> (azimuth, elevation, azimuthal speed in deg/s)
DoaPicker = Callable[[np.random.Generator, list, int], tuple[int, int, float]]


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


def grid_doa_picker(grid: np.ndarray) -> DoaPicker:
    """Static directions uniform over the grid points no active event uses."""
    def pick(rng: np.random.Generator, busy: list[Event], onset: int) -> tuple[int, int, float]:
        taken = {(e.azi, e.ele) for e in busy}
        free = np.array([(int(a), int(e)) not in taken for a, e in grid])
        azi, ele = (int(v) for v in grid[np.flatnonzero(free)[rng.integers(free.sum())]])
        return azi, ele, 0.0
    return pick


def sphere_doa_picker(*, ele_limit_deg: int, moving: float, speeds_deg_s: tuple[float, ...],
                      fs: int) -> DoaPicker:
    """Integer-degree directions (azimuth -180..179, elevation within +-``ele_limit_deg``, uniform) at least
    :data:`MIN_SEPARATION_DEG` from where the active events are at the new event's onset (up to 100 draws, then
    the last draw); with probability ``moving`` the event moves at one of ``speeds_deg_s`` (either sense)."""
    def pick(rng: np.random.Generator, busy: list[Event], onset: int) -> tuple[int, int, float]:
        now = [sph2cart(e.azimuth_at(onset, fs), e.ele) for e in busy]
        for _ in range(100):
            azi, ele = int(rng.integers(-180, 180)), int(rng.integers(-ele_limit_deg, ele_limit_deg + 1))
            if all(angular_distance_deg(sph2cart(azi, ele), u) >= MIN_SEPARATION_DEG for u in now):
                break
        speed = 0.0
        if moving > 0 and rng.random() < moving:
            speed = float(speeds_deg_s[int(rng.integers(len(speeds_deg_s)))]) * (1 if rng.random() < 0.5 else -1)
        return azi, ele, speed
    return pick


def plan_clip(rng: np.random.Generator, *, bank: SoundBank, part: str, overlap: int, nb_samples: int, fs: int,
              doa_fn: DoaPicker, dist_fn: Callable[[np.random.Generator, int, int, float], float],
              same_class_prob: float | None = None) -> list[Event]:
    """Draw the events of one clip (module docstring).

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
    doa_fn : callable
        ``doa_fn(rng, active_events, onset)`` -> (azimuth, elevation, azimuthal speed in deg/s)
        (:func:`grid_doa_picker`, :func:`sphere_doa_picker`).
    dist_fn : callable
        ``dist_fn(rng, azi, ele, speed)`` -> distance in metres (:func:`distance_sampler`).
    same_class_prob : float, optional
        None: an event never meets an active event of its class. A number in [0, 1]: same-class overlaps are
        allowed, and forced with this probability when an active event's class fits.

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
        blocked = {e.class_idx for e in busy} if same_class_prob is None else set()
        allowed = [c for c in fits if c not in blocked]
        if not allowed:                                   # wait until a blocking event has ended
            t_next[track] = min(e.end for e in busy if e.class_idx in fits) + gap(track)
            continue
        if same_class_prob:
            again = sorted({e.class_idx for e in busy} & set(fits))
            if again and rng.random() < same_class_prob:
                allowed = again
        cls = allowed[int(rng.integers(len(allowed)))]
        signal, name = bank.draw(cls, part=part, rng=rng, fs=fs, max_samples=remaining, index=len(events))
        signal = signal[:remaining]
        azi, ele, speed = doa_fn(rng, busy, t)
        events.append(Event(onset=t, signal=signal, name=name, class_idx=cls, azi=azi, ele=ele,
                            dist=dist_fn(rng, azi, ele, speed), speed_deg_s=speed))
        t_next[track] = t + len(signal) + gap(track)
    return sorted(events, key=lambda e: (e.onset, e.class_idx))


# --------------------------------------------------------------------------------------------------
# Rooms and distances
# --------------------------------------------------------------------------------------------------
def draw_room(rng: np.random.Generator) -> dict[str, Any]:
    """A shoebox room: ``dim_m`` 9-11 x 7-9 x 3.5-4.5 m, ``array_pos_m`` the centre +-1 m (height +-0.25 m),
    ``rt60_s`` 0.4-1.0 s."""
    dim = np.round([rng.uniform(*r) for r in ROOM_DIM_RANGE_M], 2)
    pos = np.round(dim / 2 + rng.uniform(-1, 1, 3) * np.array(ARRAY_OFFSET_M), 3)
    rt60 = round(float(rng.uniform(*RT60_RANGE_S)), 3)
    return {'dim_m': dim.tolist(), 'array_pos_m': pos.tolist(), 'rt60_s': rt60}


def room_model(room: dict[str, Any], *, fs: int, fmt: str, mics: np.ndarray | None = None) -> ShoeboxModel:
    """The :class:`spatial.ShoeboxModel` of a :func:`draw_room` room; adds its absorption, maximum order and
    number of images to ``room``."""
    model = ShoeboxModel(room_dim=np.array(room['dim_m']), array_pos=np.array(room['array_pos_m']),
                         rt60=room['rt60_s'], fs=fs, fmt=fmt, mics=mics)
    room.update(absorption=model.absorption, max_order=model.max_order, nb_images=model.nb_images)
    return model


def max_distance(array_pos: np.ndarray, unit: np.ndarray, room_dim: np.ndarray) -> float:
    """Distance from ``array_pos`` along ``unit`` to the room shrunk by WALL_MARGIN_M."""
    lo, hi = WALL_MARGIN_M - array_pos, room_dim - WALL_MARGIN_M - array_pos
    with np.errstate(divide='ignore'):
        t = np.where(unit > 0, hi / unit, np.where(unit < 0, lo / unit, np.inf))
    return float(t.min())


def distance_sampler(model: ShoeboxModel | None) -> Callable[[np.random.Generator, int, int, float], float]:
    """``dist_fn`` of :func:`plan_clip`: free field uniform in 1-3 m (0.1 m steps); in a room also at least
    WALL_MARGIN_M from every wall in the source's direction (a moving source: in every azimuth, 5-degree steps,
    at its elevation), floored to 0.1 m."""
    if model is None:
        def dist_fn(rng: np.random.Generator, azi: int, ele: int, speed: float) -> float:
            return round(float(rng.uniform(*DIST_RANGE_M)), 1)
        return dist_fn
    pos, dim = model.array_pos, model.room_dim

    def room_dist_fn(rng: np.random.Generator, azi: int, ele: int, speed: float) -> float:
        azis = np.arange(-180, 180, 5) if speed else [azi]
        d_max = min([DIST_RANGE_M[1]] + [max_distance(pos, sph2cart(a, ele), dim) for a in azis])
        return max(DIST_RANGE_M[0], math.floor(float(rng.uniform(DIST_RANGE_M[0], d_max)) * 10) / 10)
    return room_dist_fn


# --------------------------------------------------------------------------------------------------
# The mix
# --------------------------------------------------------------------------------------------------
def spatialize(ev: Event, *, fs: int, fmt: str, mics: np.ndarray | None = None,
               model: ShoeboxModel | None = None) -> tuple[np.ndarray, int]:
    """The array signals of one event and the clip sample at which they start.

    Static: FOA plane wave, array plane wave (exact delays) or the room's RIR. Moving: per-sample FOA gains or
    array delays (:func:`spatial.plane_wave_array_moving`); in a room, the signal is cut into 100 ms blocks
    (sin^2 windows of 200 ms centred on the middle of each 100 ms of the clip, summing to one) and each block is
    convolved with the RIR of the source's position at the block centre (:meth:`spatial.ShoeboxModel.moving_parts`).

    Returns
    -------
    seg : np.ndarray [shape=(samples, channels)]
    start : int
        Clip sample of ``seg[0]`` (may be negative or run past the clip: the caller cuts).
    """
    unit = sph2cart(ev.azi, ev.ele)
    if not ev.speed_deg_s:
        if model is not None:
            rir = model.rir(model.array_pos + ev.dist * unit)
            return scipy.signal.oaconvolve(ev.signal[:, None], rir, axes=0), ev.onset - PRE_SAMPLES
        if fmt == 'foa':
            return ev.signal[:, None] * (foa_gains(unit) / ev.dist), ev.onset
        return plane_wave_array(ev.signal, azi_deg=ev.azi, ele_deg=ev.ele, fs=fs, mics=mics) / ev.dist, \
            ev.onset - PRE_SAMPLES
    n = len(ev.signal)
    if model is None:
        units = sph2cart(ev.azimuth_at(ev.onset + np.arange(n), fs), ev.ele)
        if fmt == 'foa':
            return ev.signal[:, None] * (foa_gains(units) / ev.dist), ev.onset
        return plane_wave_array_moving(ev.signal, units=units, fs=fs, mics=mics) / ev.dist, ev.onset - PRE_SAMPLES
    block = int(round(BLOCK_S * fs))
    first, last = int(math.floor(ev.onset / block - 1.5)), int(math.ceil(ev.end / block + 0.5))
    blocks = [j for j in range(first, last + 1)
              if min(ev.end, int(math.ceil((j + 1.5) * block))) > max(ev.onset, int(math.ceil((j - 0.5) * block)))]
    centres = np.clip((np.array(blocks) + 0.5) * block, ev.onset, ev.end - 1)
    pos = model.array_pos + ev.dist * sph2cart(ev.azimuth_at(centres, fs), ev.ele)
    late = model.array_pos + ev.dist * sph2cart(ev.azimuth_at((ev.onset + ev.end) / 2, fs), ev.ele)
    early, late = model.moving_parts(pos, late_pos=late)
    # the windows sum to one, so the shared late part convolves the whole signal once; the high-pass is linear
    # and time-invariant, so it filters the sum once
    out = np.zeros((n + 4 * block + len(late), late.shape[1]))
    out[2 * block:2 * block + n + len(late) - 1] = scipy.signal.oaconvolve(ev.signal[:, None], late, axes=0)
    for j, rir in zip(blocks, early):
        a = max(ev.onset, int(math.ceil((j - 0.5) * block)))
        b = min(ev.end, int(math.ceil((j + 1.5) * block)))
        window = np.sin(np.pi * (np.arange(a, b) - (j - 0.5) * block) / (2 * block)) ** 2
        part = scipy.signal.oaconvolve((ev.signal[a - ev.onset:b - ev.onset] * window)[:, None], rir, axes=0)
        off = a - ev.onset + 2 * block
        out[off:off + len(part)] += part
    return model.highpass(out, axis=0), ev.onset - 2 * block - PRE_SAMPLES


def mix_events(events: list[Event], *, nb_samples: int, nb_channels: int, fs: int, fmt: str,
               mics: np.ndarray | None = None, model: ShoeboxModel | None = None) -> np.ndarray:
    """The sum of the spatialized events, cut to the clip: [shape=(nb_samples, nb_channels)]."""
    mix = np.zeros((nb_samples, nb_channels))
    for ev in events:
        seg, start = spatialize(ev, fs=fs, fmt=fmt, mics=mics, model=model)
        a, b = max(start, 0), min(start + len(seg), nb_samples)
        mix[a:b] += seg[a - start:b - start]
    return mix


def active_mask(events: list[Event], nb_samples: int) -> np.ndarray:
    """Samples inside at least one event: [shape=(nb_samples,)], bool."""
    active = np.zeros(nb_samples, dtype=bool)
    for ev in events:
        active[ev.onset:ev.end] = True
    return active


def add_noise(mix: np.ndarray, noise: np.ndarray, *, active: np.ndarray, db: float, fmt: str,
              unlabelled: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, float]]:
    """Add ``noise`` at the SNR ``db`` (module docstring) and ``unlabelled`` sounds to ``mix`` (in place), then
    scale the clip to a peak of at most :data:`PEAK_LIMIT`.

    Returns
    -------
    audio : np.ndarray [shape=mix.shape]
        ``mix`` itself, modified.
    info : dict
        ``gain`` (anti-clipping factor), ``gain_db``, ``event_power`` and ``noise_power`` (on the omnidirectional
        reference, after the gain).
    """
    def ref_power(x: np.ndarray) -> float:  # omnidirectional reference: W, or the mean over the mics
        return float(np.mean(x[:, 0] ** 2)) if fmt == 'foa' else float(np.mean(x ** 2))

    event_power = ref_power(mix[active])
    noise *= math.sqrt(event_power / 10.0 ** (db / 10.0) / ref_power(noise))
    noise_power = ref_power(noise)
    audio = mix
    if unlabelled is not None:
        audio += unlabelled
    audio += noise
    peak = float(np.max(np.abs(audio)))
    gain = min(1.0, PEAK_LIMIT / peak)
    audio *= gain
    return audio, {'gain': gain, 'gain_db': 20 * math.log10(gain), 'event_power': event_power * gain ** 2,
                   'noise_power': noise_power * gain ** 2}


def tut2018_text(events: list[Event], fs: int) -> str:
    """Description file of a clip (``tut2018`` format, one row per event in onset order): recording name, onset
    and offset in seconds (6 decimals: exact sample times), elevation and azimuth, distance (0.1 m)."""
    rows = [','.join(DESC_HEADER)]
    for ev in events:
        rows.append(f'{ev.name},{ev.onset / fs:.6f},{ev.end / fs:.6f},{ev.ele},{ev.azi},{ev.dist:.1f}')
    return '\n'.join(rows) + '\n'

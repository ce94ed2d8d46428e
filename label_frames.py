"""SELD labels in memory: event and instance records, the one label-framing rule, frame-rate conversion and
SELDnet's stored label matrix (SED, then x, y, z blocks per class: :func:`desc_to_labels`, :func:`split_label`).

The records that the file readers of :mod:`formats` return, and the conversions between them, live here, below the
file formats, the features, the datasets and the metrics, so that each of them uses the same records and the same
rule.

The label-framing rule (:func:`event_frames`)
-----------------------------------------------
An event from ``start`` to ``end`` seconds is active in frames ``floor(start * rate)`` to ``ceil(end * rate)``
inclusive, at any frame rate (the original SELDnet rule), with a tolerance of :data:`FRAME_TOL` frames against
the round-off of ``seconds * rate`` (``0.3 * 10`` is 3.0000000000000004). The feature labels and the metric
readers both use it.

Frame-rate conversion (:func:`resample_matrices`)
-------------------------------------------------
Frame ``i`` covers ``[i, i + 1) / rate`` seconds. Down-sampling puts input frame ``i`` into output frame
``floor(i * out_rate / rate)``; a class is active there if active in MORE THAN HALF of its input frames
(``rule='majority'``, the pipeline's choice for model outputs) or in ANY of them (``'any'``); its direction is the
mean of the active input frames' unit vectors, renormalized. Up-sampling copies the input frame that holds the
output frame's start. An instance list goes up by an integer factor with :func:`upsample_instances` (every
instance of a frame repeated; no down-sampling of instance lists).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from utils import sph2cart

#: Frames: a time within this of a frame boundary counts as on it (round-off of seconds * rate).
FRAME_TOL = 1e-3


# ==================================================================================================
# Records
# ==================================================================================================
class Events(NamedTuple):
    """Static events in seconds, one per row of a ``tut2018`` description file.

    Attributes
    ----------
    cls : np.ndarray [shape=(n,)], int64 - class index
    start, end : np.ndarray [shape=(n,)], float64 - seconds
    azi, ele : np.ndarray [shape=(n,)], float64 - degrees
    dist : np.ndarray [shape=(n,)], float64 - metres
    names : list of str - the recording names
    """
    cls: np.ndarray
    start: np.ndarray
    end: np.ndarray
    azi: np.ndarray
    ele: np.ndarray
    dist: np.ndarray
    names: list


class Instances(NamedTuple):
    """A list of DOA instances (one row per active source per frame), e.g. the rows of a DCASE file.

    Attributes
    ----------
    frame : np.ndarray [shape=(n,)], int64 - frame index (at the list's frame rate)
    cls : np.ndarray [shape=(n,)], int64 - class index
    track : np.ndarray [shape=(n,)], int64 - track / source id as written in the file
    vec : np.ndarray [shape=(n, 3) or (n, 2)], float64 - direction (Cartesian, unit for file input)
    dist : np.ndarray [shape=(n,)], float64, or None - source distance where the file has one
    onscreen : np.ndarray [shape=(n,)], int64 in {0, 1}, or None - on-screen flag where the file has one (DCASE 2025)
    """
    frame: np.ndarray
    cls: np.ndarray
    track: np.ndarray
    vec: np.ndarray
    dist: np.ndarray | None = None
    onscreen: np.ndarray | None = None

    @classmethod
    def empty(cls, k: int = 3) -> 'Instances':
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z.copy(), z.copy(), np.zeros((0, k)))


# ==================================================================================================
# Frame-wise matrices <-> DOA vectors
# ==================================================================================================
def as_sed(sed: np.ndarray, name: str = 'sed') -> np.ndarray:
    """A (frames, classes) matrix in {0, 1} as bool; a ValueError names the rule otherwise."""
    arr = np.asarray(sed)
    if arr.ndim != 2:
        raise ValueError(f'{name}: must be 2-D (frames, classes), got shape {arr.shape}')
    if arr.dtype == bool:
        return arr
    if not np.all((arr == 0) | (arr == 1)):
        bad = arr[(arr != 0) & (arr != 1)].ravel()[0]
        raise ValueError(f'{name}: values must be 0 or 1 (threshold probabilities first), found {bad!r}')
    return arr.astype(bool)


def doa_vectors(doa: np.ndarray, *, nb_classes: int) -> np.ndarray:
    """Reshape a block-layout DOA matrix to one vector per frame and class.

    Parameters
    ----------
    doa : np.ndarray [shape=(frames, 3*classes) or (frames, 2*classes)]
        Blocks ``[x_0..x_{C-1}, y_0.., (z_0..)]``.
    nb_classes : int

    Returns
    -------
    vec : np.ndarray [shape=(frames, classes, 3 or 2)], float64
    """
    arr = np.asarray(doa, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] not in (2 * nb_classes, 3 * nb_classes):
        raise ValueError(f'doa: shape {arr.shape} must be (frames, 3*{nb_classes}) or (frames, 2*{nb_classes})')
    if not np.all(np.isfinite(arr)):
        raise ValueError('doa: values must be finite')
    k = arr.shape[1] // nb_classes
    return arr.reshape(arr.shape[0], k, nb_classes).transpose(0, 2, 1)


def vectors_to_doa(vec: np.ndarray) -> np.ndarray:
    """Inverse of :func:`doa_vectors`: [shape=(frames, classes, k)] -> [shape=(frames, k*classes)]."""
    vec = np.asarray(vec, dtype=np.float64)
    return vec.transpose(0, 2, 1).reshape(vec.shape[0], -1)


def unit(vec: np.ndarray) -> np.ndarray:
    """Vectors scaled to unit length along the last axis; zero vectors stay zero."""
    vec = np.asarray(vec, dtype=np.float64)
    norm = np.linalg.norm(vec, axis=-1, keepdims=True)
    return np.divide(vec, norm, out=np.zeros_like(vec), where=norm > 0)


def matrices_to_instances(sed: np.ndarray, doa: np.ndarray) -> Instances:
    """One instance per active (frame, class) of frame-wise matrices.

    Returns
    -------
    inst : Instances, sorted by frame then class, track 0, the matrices' vectors as they are.
    """
    act = as_sed(sed)
    vec = doa_vectors(doa, nb_classes=act.shape[1])
    if vec.shape[0] != act.shape[0]:
        raise ValueError(f'sed has {act.shape[0]} frames but doa has {vec.shape[0]}')
    t, c = np.nonzero(act)
    return Instances(t.astype(np.int64), c.astype(np.int64), np.zeros(t.size, dtype=np.int64), vec[t, c])


def check_instances(inst: Instances, *, nb_frames: int, nb_classes: int, name: str) -> Instances:
    """Instances as int64/float64 arrays of one length, frames in ``[0, nb_frames)``, classes in range."""
    frame = np.asarray(inst.frame, dtype=np.int64)
    cls = np.asarray(inst.cls, dtype=np.int64)
    vec = np.asarray(inst.vec, dtype=np.float64)
    if vec.ndim != 2 or vec.shape[0] != frame.size or vec.shape[1] not in (2, 3) or cls.size != frame.size:
        raise ValueError(f'{name}: frame {frame.shape}, cls {cls.shape} and vec {vec.shape} must describe the '
                         'same rows, with 2-D or 3-D vectors')
    if frame.size and (frame.min() < 0 or frame.max() >= nb_frames):
        raise ValueError(f'{name}: frame indices must be in [0, {nb_frames}), found {frame.min()}..{frame.max()}')
    if cls.size and (cls.min() < 0 or cls.max() >= nb_classes):
        raise ValueError(f'{name}: class indices must be in [0, {nb_classes}), found {cls.min()}..{cls.max()}')
    dist = None if inst.dist is None else np.asarray(inst.dist, dtype=np.float64)
    onscreen = None if inst.onscreen is None else np.asarray(inst.onscreen, dtype=np.int64)
    return Instances(frame, cls, np.asarray(inst.track, dtype=np.int64), vec, dist, onscreen)


def instances_to_matrices(inst: Instances, *, nb_classes: int, nb_frames: int | None = None,
                          same_class: str = 'last') -> tuple[np.ndarray, np.ndarray]:
    """An instance list -> class-wise frame matrices (one DOA per class and frame).

    Parameters
    ----------
    inst : Instances
    nb_classes : int
    nb_frames : int, optional
        Default: last frame + 1.
    same_class : {'last', 'mean'}
        Several instances of one class in one frame (SELDnet has one output per class): ``'last'`` keeps the
        instance that comes last in the list (the file's row order), as the DCASE 2020 baseline's label code does;
        ``'mean'`` takes their mean unit vector, renormalized.

    Returns
    -------
    sed : np.ndarray [shape=(frames, classes)], float32 in {0, 1}
    doa : np.ndarray [shape=(frames, k*classes)], float64, unit vectors, zeros where inactive
    """
    if same_class not in ('last', 'mean'):
        raise ValueError(f"same_class={same_class!r} must be 'last' or 'mean'")
    frame = np.asarray(inst.frame, dtype=np.int64)
    T = int(frame.max(initial=-1)) + 1 if nb_frames is None else int(nb_frames)
    ev = check_instances(inst, nb_frames=max(T, 1), nb_classes=nb_classes, name='instances')
    C, k = int(nb_classes), ev.vec.shape[1]
    flat = ev.frame * C + ev.cls
    act = np.zeros(T * C, dtype=bool)
    act[flat] = True
    u = unit(ev.vec)
    vec = np.zeros((T * C, k))
    if same_class == 'last':
        vec[flat] = u  # numpy assigns repeated indices in order: the last row wins
    else:
        for d in range(k):
            vec[:, d] = np.bincount(flat, u[:, d], minlength=T * C)
        vec = unit(vec)
    return act.reshape(T, C).astype(np.float32), vectors_to_doa(vec.reshape(T, C, k))


# ==================================================================================================
# The label-framing rule
# ==================================================================================================
def event_frames(start_s: np.ndarray, end_s: np.ndarray, *, frame_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """First and last (inclusive) frames of events: ``floor(start * rate)`` to ``ceil(end * rate)``.

    Parameters
    ----------
    start_s, end_s : np.ndarray [shape=(n,)]
        Seconds.
    frame_rate : float
        Frames per second.

    Returns
    -------
    first, last : np.ndarray [shape=(n,)], int64, ``last >= first``
        Times within :data:`FRAME_TOL` frames of a boundary count as on it.
    """
    if not frame_rate > 0:
        raise ValueError(f'frame_rate={frame_rate} must be > 0')
    first = np.floor(np.asarray(start_s, dtype=np.float64) * frame_rate + FRAME_TOL).astype(np.int64)
    last = np.ceil(np.asarray(end_s, dtype=np.float64) * frame_rate - FRAME_TOL).astype(np.int64)
    return first, np.maximum(last, first)


def nb_frames_at(duration_s: float, *, frame_rate: float) -> int:
    """Frames of ``frame_rate`` that a recording of ``duration_s`` seconds starts: ``ceil(duration * rate)``
    (with the tolerance of :func:`event_frames`), at least 1."""
    return max(1, int(math.ceil(duration_s * frame_rate - FRAME_TOL)))


def events_to_instances(events: Events, *, frame_rate: float, nb_frames: int | None = None) -> Instances:
    """Events in seconds -> one instance per frame of each event (:func:`event_frames`), cut at ``nb_frames``.

    The track of an instance is its event's row index in the file.
    """
    first, last = event_frames(events.start, events.end, frame_rate=frame_rate)
    if nb_frames is not None:
        last = np.minimum(last, int(nb_frames) - 1)
    lengths = np.maximum(last - first + 1, 0)
    ev = np.repeat(np.arange(first.size), lengths)
    offset = np.arange(ev.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    frame = np.repeat(first, lengths) + offset
    vec = sph2cart(events.azi, events.ele).reshape(-1, 3)
    return Instances(frame.astype(np.int64), np.asarray(events.cls, dtype=np.int64)[ev], ev.astype(np.int64),
                     vec[ev], np.asarray(events.dist, dtype=np.float64)[ev])


# ==================================================================================================
# Frame-rate conversion
# ==================================================================================================
def resample_matrices(sed: np.ndarray, doa: np.ndarray, *, frame_rate: float, out_frame_rate: float,
                      rule: str = 'majority', nb_frames_out: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Change the frame rate of frame-wise matrices (module docstring).

    Parameters
    ----------
    sed : np.ndarray [shape=(frames, classes)], values in {0, 1}
    doa : np.ndarray [shape=(frames, 3*classes) or (frames, 2*classes)]
    frame_rate, out_frame_rate : float
        Frames per second in and out.
    rule : {'majority', 'any'}
        Down-sampling: a class is active in an output frame if active in more than half of its input frames,
        or in any.
    nb_frames_out : int, optional
        Default ``ceil(frames * out_frame_rate / frame_rate)``.

    Returns
    -------
    sed_out : np.ndarray [shape=(nb_frames_out, classes)], float32 in {0, 1}
    doa_out : np.ndarray [shape=(nb_frames_out, k*classes)], float64 (unit vectors, zeros where inactive)
    """
    if rule not in ('any', 'majority'):
        raise ValueError(f"rule={rule!r} must be 'majority' or 'any'")
    if not (frame_rate > 0 and out_frame_rate > 0):
        raise ValueError(f'frame rates must be > 0, got {frame_rate} and {out_frame_rate}')
    act = as_sed(sed)
    T, C = act.shape
    vec = doa_vectors(doa, nb_classes=C)
    if vec.shape[0] != T:
        raise ValueError(f'sed has {T} frames but doa has {vec.shape[0]}')
    n_out = int(math.ceil(T * out_frame_rate / frame_rate - 1e-9)) if nb_frames_out is None else int(nb_frames_out)
    if out_frame_rate >= frame_rate:
        src = np.floor(np.arange(n_out) * frame_rate / out_frame_rate + 1e-9).astype(np.int64)
        ok = src < T
        sed_out = np.zeros((n_out, C), dtype=bool)
        vec_out = np.zeros((n_out, C, vec.shape[2]))
        sed_out[ok] = act[src[ok]]
        vec_out[ok] = np.where(act[src[ok]][..., None], unit(vec[src[ok]]), 0.0)
    else:
        dst = np.floor(np.arange(T) * out_frame_rate / frame_rate + 1e-9).astype(np.int64)
        ok = dst < n_out
        flat = (dst[ok, None] * C + np.arange(C)).ravel()
        a = act[ok].ravel()
        hits = np.bincount(flat, a, minlength=n_out * C).reshape(n_out, C)
        frames_in = np.bincount(dst[ok], minlength=n_out)[:, None]
        sed_out = hits > 0 if rule == 'any' else 2 * hits > frames_in
        u = unit(vec[ok]).reshape(-1, vec.shape[2]) * a[:, None]
        vsum = np.stack([np.bincount(flat, u[:, d], minlength=n_out * C) for d in range(vec.shape[2])], axis=-1)
        vec_out = unit(vsum.reshape(n_out, C, -1)) * sed_out[..., None]
    return sed_out.astype(np.float32), vectors_to_doa(vec_out)


def upsample_instances(inst: Instances, *, factor: int, nb_frames: int | None = None) -> Instances:
    """An instance list at ``factor`` times its frame rate: frame ``f`` becomes frames ``f*factor .. f*factor +
    factor - 1`` (the up-sampling rule of :func:`resample_matrices`, keeping every instance, track and distance).

    Parameters
    ----------
    inst : Instances
    factor : int
        Integer ratio of the output to the input frame rate, >= 1.
    nb_frames : int, optional
        Frames of the output: instances at or beyond it are dropped.

    Returns
    -------
    inst : Instances, ``factor`` rows per input row (fewer where cut), in the input's row order per frame.
    """
    if int(factor) != factor or factor < 1:
        raise ValueError(f'factor={factor} must be an integer >= 1')
    k = int(factor)
    frame = np.asarray(inst.frame, dtype=np.int64)
    rows = np.repeat(np.arange(frame.size), k)
    new_frame = frame[rows] * k + np.tile(np.arange(k), frame.size)
    order = np.argsort(new_frame, kind='stable')  # frame order, input order within a frame
    rows, new_frame = rows[order], new_frame[order]
    if nb_frames is not None:
        keep = new_frame < int(nb_frames)
        rows, new_frame = rows[keep], new_frame[keep]
    dist = None if inst.dist is None else np.asarray(inst.dist, dtype=np.float64)[rows]
    onscreen = None if inst.onscreen is None else np.asarray(inst.onscreen, dtype=np.int64)[rows]
    return Instances(new_frame, np.asarray(inst.cls, dtype=np.int64)[rows],
                     np.asarray(inst.track, dtype=np.int64)[rows], np.asarray(inst.vec, dtype=np.float64)[rows], dist,
                     onscreen)


def instance_layers(inst: Instances, *, nb_classes: int) -> np.ndarray:
    """The layer of every instance: 0 for the instance of its (frame, class) listed LAST, 1 for the one before it...

    Layer 0 is what :func:`instances_to_matrices` keeps (``same_class='last'``), so a list with one instance per
    class and frame is all layer 0.

    Returns
    -------
    layer : np.ndarray [shape=(n,)], int64
    """
    key = np.asarray(inst.frame, dtype=np.int64) * int(nb_classes) + np.asarray(inst.cls, dtype=np.int64)
    order = np.argsort(key, kind='stable')
    k = key[order]
    new = np.ones(k.size, dtype=bool)
    new[1:] = k[1:] != k[:-1]
    start = np.flatnonzero(new)
    count = np.diff(np.append(start, k.size))
    group = np.cumsum(new) - 1
    pos = np.arange(k.size) - start[group]
    layer = np.empty(k.size, dtype=np.int64)
    layer[order] = count[group] - 1 - pos
    return layer


def resample_instances(inst: Instances, *, nb_classes: int, frame_rate: float, out_frame_rate: float,
                       nb_frames: int, nb_frames_out: int, rule: str = 'majority') -> Instances:
    """An instance list at another frame rate, by the conversion of :func:`resample_matrices`.

    The instances are split into layers (:func:`instance_layers`: layer 0 holds, per frame and class, the instance
    listed last - the class-wise matrices' instance -, layer 1 the one before it ...); each layer is converted as
    class-wise matrices by :func:`resample_matrices` with ``rule``, its distance (where given) as the mean over the
    active input frames (up-sampling: copied). Layer 0 of the result is therefore exactly the conversion of the
    list's class-wise matrices: a prediction and a reference with the same class-wise matrices convert alike.

    Parameters
    ----------
    inst : Instances
        Frames at ``frame_rate``, below ``nb_frames``.
    nb_classes : int
    frame_rate, out_frame_rate : float
    nb_frames, nb_frames_out : int
        Frames in and out.
    rule : {'majority', 'any'}

    Returns
    -------
    inst : Instances at ``out_frame_rate``, sorted by frame and class, layer 0 last in each (frame, class), track =
        the layer, unit vectors, ``dist`` if the input has one.
    """
    C, T, n_out = int(nb_classes), int(nb_frames), int(nb_frames_out)
    ev = check_instances(inst, nb_frames=max(T, 1), nb_classes=C, name='instances')
    k = ev.vec.shape[1]
    layer = instance_layers(ev, nb_classes=C)
    if out_frame_rate < frame_rate:
        dst = np.floor(np.arange(T) * out_frame_rate / frame_rate + 1e-9).astype(np.int64)
    outs = []
    for j in range(int(layer.max(initial=-1)) + 1):
        rows = np.flatnonzero(layer == j)
        sub = Instances(ev.frame[rows], ev.cls[rows], ev.track[rows], ev.vec[rows])
        sed, doa = instances_to_matrices(sub, nb_classes=C, nb_frames=T)
        sed_o, doa_o = resample_matrices(sed, doa, frame_rate=frame_rate, out_frame_rate=out_frame_rate, rule=rule,
                                         nb_frames_out=n_out)
        out = matrices_to_instances(sed_o, doa_o)
        dist = None
        if ev.dist is not None:
            d = np.zeros((T, C))
            d[sub.frame, sub.cls] = ev.dist[rows]
            if out_frame_rate >= frame_rate:
                src = np.floor(np.arange(n_out) * frame_rate / out_frame_rate + 1e-9).astype(np.int64)
                d_o = np.zeros((n_out, C))
                ok = src < T
                d_o[ok] = d[src[ok]]
            else:
                ok = dst < n_out
                flat = (dst[ok, None] * C + np.arange(C)).ravel()
                a = sed[ok].ravel()
                tot = np.bincount(flat, d[ok].ravel() * a, minlength=n_out * C)
                cnt = np.bincount(flat, a, minlength=n_out * C)
                d_o = np.divide(tot, cnt, out=np.zeros_like(tot), where=cnt > 0).reshape(n_out, C)
            dist = d_o[out.frame, out.cls]
        outs.append((out._replace(track=np.full(out.frame.size, j, dtype=np.int64), dist=dist), j))
    if not outs:
        return Instances(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, k)),
                         None if ev.dist is None else np.zeros(0))
    frame = np.concatenate([o.frame for o, _ in outs])
    cls = np.concatenate([o.cls for o, _ in outs])
    lay = np.concatenate([o.track for o, _ in outs])
    order = np.lexsort((-lay, cls, frame))
    dist = None if ev.dist is None else np.concatenate([o.dist for o, _ in outs])[order]
    return Instances(frame[order], cls[order], lay[order], np.concatenate([o.vec for o, _ in outs])[order], dist)

# ==================================================================================================
# The stored label matrix of SELDnet's two heads (cls_feature_class writes it, the generator splits it)
# ==================================================================================================
def desc_to_labels(events: Events, *, nb_classes: int, nb_frames: int, frame_rate: float) -> np.ndarray:
    """Frame-wise SED and DOA targets of one file from its events in seconds.

    An event is active in the frames of :func:`event_frames` (``floor(start * frame_rate)`` to
    ``ceil(end * frame_rate)`` inclusive, cut at the last frame). Its DOA target is the unit vector
    ``(cos az cos el, sin az cos el, sin el)``; inactive classes have (0, 0, 0).

    Parameters
    ----------
    events : Events
        As returned by :func:`formats.read_desc_file`.
    nb_classes, nb_frames : int
    frame_rate : float
        Frames per second (``fs / hop_len``).

    Returns
    -------
    label : np.ndarray [shape=(frames, 4*classes)], float32
        ``[:, :C]`` SED activity in {0, 1}; ``[:, C:2C]``, ``[:, 2C:3C]``, ``[:, 3C:]`` x, y, z.
    """
    inst = events_to_instances(events, frame_rate=frame_rate, nb_frames=nb_frames)
    return instances_to_labels(inst, nb_classes=nb_classes, nb_frames=nb_frames)


def instances_to_labels(inst: Instances, *, nb_classes: int, nb_frames: int,
                        frame_rate: float | None = None, label_rate: float | None = None) -> np.ndarray:
    """Frame-wise targets of one file from instances, at the model frame rate.

    Parameters
    ----------
    inst : Instances
        At ``label_rate`` (frame metadata) or already at the model rate (``label_rate`` None).
    nb_classes, nb_frames : int
        Classes and model frames.
    frame_rate, label_rate : float, optional
        Model frame ``j`` takes label frame ``floor(j * label_rate / frame_rate)``.

    Returns
    -------
    label : np.ndarray [shape=(frames, 4*classes)], float32, as :func:`desc_to_labels`; two instances of one class
        in one frame: the one listed last (the DCASE 2020 baseline's rule: its label
        code overwrites earlier rows of the frame; the metric readers keep every instance).
    """
    if label_rate is None:
        sed, doa = instances_to_matrices(inst, nb_classes=nb_classes, nb_frames=nb_frames)
        return np.concatenate([sed, doa], axis=1).astype(np.float32)
    src = np.floor(np.arange(nb_frames) * label_rate / frame_rate + 1e-9).astype(np.int64)
    n_label = int(src[-1]) + 1 if nb_frames else 0
    keep = np.asarray(inst.frame) < n_label
    sed, doa = instances_to_matrices(
        Instances(*(None if a is None else np.asarray(a)[keep] for a in inst)),
        nb_classes=nb_classes, nb_frames=n_label)
    return np.concatenate([sed, doa], axis=1).astype(np.float32)[src]


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

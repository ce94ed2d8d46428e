"""File formats of SELD labels and predictions, frame-rate conversion and the one label-framing rule.

Everything that reads or writes a label or prediction file lives here, below the features, the datasets and the
metrics, so that each of them uses the same readers and the same rule.

Formats (``fmt``)
-----------------
``tut2018``
    ``sound_event_recording,start_time,end_time,ele,azi,dist`` with that header line: one static event per row,
    times in seconds, angles in degrees, distance in metres. The TUT Sound Events 2018 descriptions and the DCASE
    2019 (TAU Spatial Sound Events 2019) metadata. The class is read from the recording name (:func:`class_of_recording`).
``dcase2019``
    ``frame,class,azi,ele``, headerless, 20 ms frames (50 frames/s): the DCASE 2019 output format.
``dcase2020``
    ``frame,class,track,azi,ele`` (or Cartesian ``frame,class,track,x,y,z``, as the 2021-2023 loaders accept),
    headerless, 100 ms frames: the DCASE 2020-2023 output format and the 2020/2021 metadata.
``dcase2024``
    ``frame,class,source,azi,ele[,dist]`` (or Cartesian ``frame,class,source,x,y,z,dist``), headerless, 100 ms
    frames: the STARSS23 metadata of DCASE 2024 (distance in cm in the metadata) and its output format. Six
    fields are polar with a distance here, whereas :data:`dcase2020` reads six fields as Cartesian: the
    format is never guessed from the number of fields alone.

A DCASE file has no header; a header line (first field not an integer) is skipped. The pipeline writes its
predictions headerless, as the official scoring code expects, with a side file :data:`FORMAT_FILE` in the same
folder that names the format, the frame rate, the classes and every file's length (:func:`write_format_file`).

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

import csv
import io
import math
import os
import re
from typing import Any, Iterable, NamedTuple, Sequence

import numpy as np

from utils import SELDError, cart2sph, read_json, sph2cart, write_json, write_text

DESC_HEADER = ['sound_event_recording', 'start_time', 'end_time', 'ele', 'azi', 'dist']
FORMATS = ('tut2018', 'dcase2019', 'dcase2020', 'dcase2024')
#: Frames per second of each DCASE format's files: 20 ms and 100 ms frames.
FORMAT_FRAME_RATE = {'dcase2019': 50.0, 'dcase2020': 10.0, 'dcase2024': 10.0}
#: Side file of a prediction folder (see :func:`write_format_file`).
FORMAT_FILE = 'format.json'
#: Frames: a time within this of a frame boundary counts as on it (round-off of seconds * rate).
FRAME_TOL = 1e-3
#: Class naming of description files: recording name with 3 digits (TUT simulated sets, ``cough066.wav``), the
#: UrbanSound8K field after the first '-' (TUT REAL, ``100032-3-0-0.wav``), or the class name itself (DCASE 2019).
NAMINGS = ('tut', 'real', 'plain')


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
    """
    frame: np.ndarray
    cls: np.ndarray
    track: np.ndarray
    vec: np.ndarray
    dist: np.ndarray | None = None

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
    return Instances(frame, cls, np.asarray(inst.track, dtype=np.int64), vec, dist)


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
    return Instances(new_frame, np.asarray(inst.cls, dtype=np.int64)[rows],
                     np.asarray(inst.track, dtype=np.int64)[rows], np.asarray(inst.vec, dtype=np.float64)[rows], dist)


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
# Reading
# ==================================================================================================
def class_of_recording(name: str, *, naming: str = 'tut') -> str:
    """Class of a description row's recording name (see :data:`NAMINGS`).

    ``cough066.wav`` -> ``cough`` (``'tut'``: the name without its 3 digits); ``100032-3-0-0.wav`` -> ``3``
    (``'real'``: the UrbanSound8K field after the first '-'); ``cough`` -> ``cough`` (``'plain'``). An
    unparsable name gives ``''``.
    """
    stem = os.path.splitext(name.strip())[0]
    if naming == 'real':
        parts = stem.split('-')
        return parts[1] if len(parts) > 1 else ''
    if naming == 'plain':
        return name.strip()
    if naming != 'tut':
        raise ValueError(f'naming={naming!r} must be one of {NAMINGS}')
    m = re.fullmatch(r'(.+?)(\d{3})', stem)
    return m.group(1) if m else ''


def _open_text(path: str | os.PathLike) -> str:
    try:
        with open(path, newline='', encoding='utf-8') as f:
            return f.read()
    except FileNotFoundError as err:
        raise SELDError(f'{path}: file not found') from err
    except (OSError, UnicodeDecodeError) as err:
        raise SELDError(f'{path}: cannot read ({err})') from err


def _read_rows(path: str | os.PathLike) -> list[tuple[int, list[str]]]:
    """Non-empty CSV rows with their 1-based line numbers, fields stripped."""
    return [(i, [c.strip() for c in row]) for i, row in enumerate(csv.reader(io.StringIO(_open_text(path))), start=1)
            if row and any(c.strip() for c in row)]


def _is_int(text: str) -> bool:
    return re.fullmatch(r'[+-]?\d+', text) is not None


def has_desc_header(path: str | os.PathLike) -> bool:
    """Whether a CSV's first line is the ``tut2018`` header (the file says it is a description file)."""
    rows = _read_rows(path)
    return bool(rows) and rows[0][1][:len(DESC_HEADER)] == DESC_HEADER


def _check_angles(where: str, azi: float, ele: float) -> None:
    if not -90 <= ele <= 90:
        raise SELDError(f'{where}: ele={ele} must be within [-90, 90] degrees')
    if not -360 <= azi <= 360:
        raise SELDError(f'{where}: azi={azi} must be within [-360, 360] degrees')


def read_desc_file(path: str | os.PathLike, *, classes: Sequence[str], naming: str = 'tut',
                   max_time_s: float | None = None) -> Events:
    """Read and validate a ``tut2018`` description file (TUT Sound Events 2018, DCASE 2019 metadata).

    Parameters
    ----------
    path : str
        ``sound_event_recording,start_time,end_time,ele,azi,dist`` with a header line.
    classes : sequence of str
        Class names in index order.
    naming : {'tut', 'real', 'plain'}
        How the class is read from the recording name (:func:`class_of_recording`).
    max_time_s : float, optional
        Length of the recording; an event starting at or after it is an error.

    Returns
    -------
    events : Events

    Raises
    ------
    SELDError
        Naming the file, the line, the value and the rule: wrong header, wrong number of fields, a non-number,
        an unknown class, ``end_time <= start_time``, a start beyond the recording, an angle out of range, a row
        that repeats an earlier one (the same recording, times, angles and distance: an event listed twice).
    """
    index = {c: i for i, c in enumerate(classes)}
    rows: list[tuple[int, float, float, float, float, float]] = []
    names: list[str] = []
    seen: dict[tuple, int] = {}
    lines = _read_rows(path)
    if not lines or lines[0][1][:len(DESC_HEADER)] != DESC_HEADER:
        raise SELDError(f'{path}:1: header {lines[0][1] if lines else None} must be {",".join(DESC_HEADER)}')
    for lineno, row in lines[1:]:
        where = f'{path}:{lineno}'
        if len(row) < len(DESC_HEADER):
            raise SELDError(f'{where}: {len(row)} fields {row}; a row needs {len(DESC_HEADER)}: {",".join(DESC_HEADER)}')
        cls_name = class_of_recording(row[0], naming=naming)
        if cls_name not in index:
            raise SELDError(f'{where}: recording {row[0]!r} has class {cls_name!r}, which is not one of the dataset '
                            f'classes {list(classes)}')
        try:
            start, end, ele, azi, dist = (float(v) for v in row[1:6])
        except ValueError as err:
            raise SELDError(f'{where}: {row[1:6]} must be numbers (start_time,end_time,ele,azi,dist)') from err
        if not all(math.isfinite(v) for v in (start, end, ele, azi, dist)):
            raise SELDError(f'{where}: {row[1:6]} must be finite numbers')
        if start < 0:
            raise SELDError(f'{where}: start_time={start} must be >= 0')
        if end <= start:
            raise SELDError(f'{where}: end_time={end} must be after start_time={start}')
        if max_time_s is not None and start >= max_time_s:
            raise SELDError(f'{where}: start_time={start} is beyond the recording length {max_time_s} s')
        _check_angles(where, azi, ele)
        key = (row[0], start, end, ele, azi, dist)
        if key in seen:
            raise SELDError(f'{where}: {",".join(row[:6])} duplicates line {seen[key]} (an event listed twice)')
        seen[key] = lineno
        rows.append((index[cls_name], start, end, ele, azi, dist))
        names.append(row[0])
    arr = np.array(rows, dtype=np.float64).reshape(-1, 6)
    return Events(cls=arr[:, 0].astype(np.int64), start=arr[:, 1], end=arr[:, 2], azi=arr[:, 4], ele=arr[:, 3],
                  dist=arr[:, 5], names=names)


def desc_class_names(paths: Iterable[str | os.PathLike], *, naming: str = 'tut') -> list[str]:
    """Sorted class names found in ``tut2018`` description files (when no class list is given)."""
    names: set[str] = set()
    for path in paths:
        for lineno, row in _read_rows(path):
            if lineno == 1 and row[:1] == DESC_HEADER[:1]:
                continue
            name = class_of_recording(row[0], naming=naming)
            if not name:
                raise SELDError(f'{path}:{lineno}: recording {row[0]!r} has no class name ({naming} naming)')
            names.add(name)
    return sorted(names)


def read_instances(path: str | os.PathLike, *, fmt: str, nb_classes: int | None = None,
                   classes: Sequence[str] | None = None, frame_rate: float | None = None, naming: str = 'tut',
                   nb_frames: int | None = None, max_track: int | None = None) -> Instances:
    """Read one label or prediction file as an instance list (several instances per class and frame allowed).

    Parameters
    ----------
    path : str
    fmt : {'tut2018', 'dcase2019', 'dcase2020', 'dcase2024'}
        See the module docstring. ``tut2018`` events become one instance per frame of ``frame_rate``
        (:func:`events_to_instances`).
    nb_classes : int
        DCASE formats: class indices must be below it.
    classes : sequence of str
        ``tut2018``: class names in index order.
    frame_rate : float
        ``tut2018`` only: frames per second of the result.
    naming : {'tut', 'real', 'plain'}
        ``tut2018`` only: the class naming of the recordings.
    nb_frames : int, optional
        Frames of the recording at the file's rate (``frame_rate`` for tut2018): a row at or beyond it is an
        error (a DCASE row) or cut (the end of a tut2018 event; a start beyond is an error).
    max_track : int, optional
        DCASE formats: a track / source id above it is an error.

    Returns
    -------
    inst : Instances, frames at the file's rate (tut2018: ``frame_rate``), unit vectors; ``dist`` for
        ``dcase2024`` rows with a distance (as written: cm in STARSS23) and for ``tut2018`` (metres), else None.

    Raises
    ------
    SELDError
        Naming file, line, value and rule for a bad row, an unknown class, a frame beyond the recording, a track
        out of range, a row that repeats an earlier one, or a missing file.
    """
    if fmt == 'tut2018':
        if not classes:
            raise ValueError('classes (names in index order) must be given for the tut2018 format')
        if frame_rate is None or not frame_rate > 0:
            raise ValueError(f'frame_rate={frame_rate} must be given (> 0) for the tut2018 format')
        ev = read_desc_file(path, classes=classes, naming=naming,
                            max_time_s=None if nb_frames is None else nb_frames / frame_rate)
        return events_to_instances(ev, frame_rate=frame_rate, nb_frames=nb_frames)
    if fmt not in FORMATS:
        raise ValueError(f'fmt={fmt!r} must be one of {FORMATS}')
    if nb_classes is None or int(nb_classes) < 1:
        raise ValueError(f'nb_classes={nb_classes} must be given (>= 1) for the {fmt} format')
    layouts = {'dcase2019': {4: 'polar'}, 'dcase2020': {5: 'polar', 6: 'cartesian'},
               'dcase2024': {5: 'polar', 6: 'polar+dist', 7: 'cartesian+dist'}}[fmt]
    names = {'dcase2019': 'frame,class,azi,ele', 'dcase2020': 'frame,class,track,azi,ele or frame,class,track,x,y,z',
             'dcase2024': 'frame,class,source,azi,ele[,dist] or frame,class,source,x,y,z,dist'}[fmt]
    nb_int = 2 if fmt == 'dcase2019' else 3
    frames, clss, tracks, vecs, dists = [], [], [], [], []
    seen: dict[tuple, int] = {}
    for lineno, row in _read_rows(path):
        where = f'{path}:{lineno}'
        if lineno == 1 and not _is_int(row[0]):
            continue  # a header line
        if tuple(row) in seen:
            raise SELDError(f'{where}: {",".join(row)} duplicates line {seen[tuple(row)]} (a row listed twice)')
        seen[tuple(row)] = lineno
        layout = layouts.get(len(row))
        if layout is None:
            raise SELDError(f'{where}: {len(row)} fields {row}; a {fmt} row is {names}')
        for name, text in zip(('frame', 'class', 'track'), row[:nb_int]):
            if not _is_int(text) or int(text) < 0:
                raise SELDError(f'{where}: {name}={text!r} must be an integer >= 0')
        frame, cls = int(row[0]), int(row[1])
        track = int(row[2]) if nb_int == 3 else 0
        if cls >= nb_classes:
            raise SELDError(f'{where}: class={cls} is not a class index in [0, {nb_classes})')
        if nb_frames is not None and frame >= nb_frames:
            raise SELDError(f'{where}: frame={frame} is beyond the recording ({nb_frames} frames)')
        if max_track is not None and track > max_track:
            raise SELDError(f'{where}: track={track} is out of range (at most {max_track})')
        try:
            vals = [float(v) for v in row[nb_int:]]
        except ValueError as err:
            raise SELDError(f'{where}: {row[nb_int:]} must be numbers') from err
        if not all(math.isfinite(v) for v in vals):
            raise SELDError(f'{where}: {row[nb_int:]} must be finite numbers')
        if layout.startswith('polar'):
            _check_angles(where, vals[0], vals[1])
            vec = sph2cart(vals[0], vals[1])
        else:
            vec = np.array(vals[:3])
            if not np.linalg.norm(vec) > 0:
                raise SELDError(f'{where}: x,y,z={vals[:3]} must not be the zero vector')
            vec = vec / np.linalg.norm(vec)
        if layout.endswith('dist'):
            if vals[-1] < 0:
                raise SELDError(f'{where}: dist={vals[-1]} must be >= 0')
            dists.append(vals[-1])
        frames.append(frame), clss.append(cls), tracks.append(track), vecs.append(vec)
    if not frames:
        return Instances.empty()
    dist = np.array(dists, dtype=np.float64) if len(dists) == len(frames) else None
    if dists and dist is None:
        raise SELDError(f'{path}: some rows have a distance and others do not')
    return Instances(np.array(frames, dtype=np.int64), np.array(clss, dtype=np.int64),
                     np.array(tracks, dtype=np.int64), np.array(vecs, dtype=np.float64), dist)


#: Field counts of each DCASE format's rows (see :func:`read_instances`).
FIELD_COUNTS = {'dcase2019': (4,), 'dcase2020': (5, 6), 'dcase2024': (5, 6, 7)}


def infer_dcase_format(path: str | os.PathLike, *, hint: str | None = None) -> str:
    """The DCASE format of a headerless file, from the number of fields of its first row.

    4 fields: ``dcase2019``; 5: ``dcase2020`` (``frame,class,track,azi,ele``, which dcase2024 reads alike);
    7: ``dcase2024`` (Cartesian with a distance). 6 fields are a dcase2020 Cartesian row or a dcase2024 polar row
    with a distance (STARSS23 metadata): ``hint='dcase2024'`` (the prediction format) reads them as dcase2024;
    otherwise an error asks for the format (reading ``azi,ele,dist`` as ``x,y,z`` would be silently wrong). A
    count that fits ``hint`` gives ``hint``.

    Raises
    ------
    SELDError
        A tut2018 description (its header), a row of another field count, or 6 fields without a deciding hint.
    """
    rows = _read_rows(path)
    if rows and rows[0][1][:len(DESC_HEADER)] == DESC_HEADER:
        raise SELDError(f'{path}:1: a tut2018 description (its header), not headerless DCASE metadata')
    data = [(i, r) for i, r in rows if not (i == 1 and not _is_int(r[0]))]
    if not data:  # no event: any format reads it alike
        return hint if hint in FIELD_COUNTS else 'dcase2020'
    lineno, row = data[0]
    n = len(row)
    if n == 6 and hint == 'dcase2024':
        return hint
    if hint in FIELD_COUNTS and n in FIELD_COUNTS[hint] and n != 6:
        return hint
    fits = [f for f, counts in FIELD_COUNTS.items() if n in counts]
    if fits == ['dcase2020', 'dcase2024'] and n == 5:
        return 'dcase2020'
    if len(fits) == 1:
        return fits[0]
    if not fits:
        raise SELDError(f'{path}:{lineno}: {n} fields; DCASE rows have 4 (dcase2019: frame,class,azi,ele), 5 '
                        '(dcase2020: frame,class,track,azi,ele), 6 or 7 (dcase2024 with a distance)')
    raise SELDError(f'{path}:{lineno}: 6 fields are dcase2020 frame,class,track,x,y,z or dcase2024 '
                    'frame,class,source,azi,ele,dist; give the reference format (--ref-format)')


def read_reference(path: str | os.PathLike, *, fmt: str, classes: Sequence[str], naming: str = 'tut',
                   frame_rate: float | None = None, duration_s: float | None = None,
                   max_track: int | None = None) -> Events | Instances:
    """Read one reference (label) file: the one reader of the datasets, the pipeline and the scoring command.

    Parameters
    ----------
    path : str
    fmt : {'tut2018', 'dcase2019', 'dcase2020', 'dcase2024'}
    classes : sequence of str
        Class names in index order.
    naming : {'tut', 'real', 'plain'}
        tut2018 class naming.
    frame_rate : float, optional
        DCASE formats: the file's frame rate (default the format's, :data:`FORMAT_FRAME_RATE`).
    duration_s : float, optional
        The recording's length: an event starting, or a frame row, at or beyond it is an error.
    max_track : int, optional
        DCASE formats: the largest track / source id allowed.

    Returns
    -------
    ref : Events (tut2018: seconds, distances in metres) or Instances at ``frame_rate`` with ``dist`` in METRES:
        ``dcase2024`` metadata (STARSS23) gives distances in cm, divided by 100 here, as the official 2024 scoring
        reads its references (``cm2m=True``).
    """
    if fmt == 'tut2018':
        return read_desc_file(path, classes=classes, naming=naming, max_time_s=duration_s)
    if fmt not in FORMAT_FRAME_RATE:
        raise ValueError(f'fmt={fmt!r} must be one of {FORMATS}')
    rate = FORMAT_FRAME_RATE[fmt] if frame_rate is None else float(frame_rate)
    inst = read_instances(path, fmt=fmt, nb_classes=len(classes), max_track=max_track,
                          nb_frames=None if duration_s is None else nb_frames_at(duration_s, frame_rate=rate))
    if fmt == 'dcase2024' and inst.dist is not None:
        inst = inst._replace(dist=inst.dist / 100.0)
    return inst


def read_csv(path: str | os.PathLike, *, fmt: str, nb_classes: int | None = None,
             classes: Sequence[str] | None = None, nb_frames: int | None = None, frame_rate: float | None = None,
             file_frame_rate: float | None = None, naming: str = 'tut', rule: str = 'majority',
             same_class: str = 'last') -> tuple[np.ndarray, np.ndarray]:
    """Read one label or prediction file as class-wise frame matrices.

    Parameters
    ----------
    path : str
    fmt : {'tut2018', 'dcase2019', 'dcase2020', 'dcase2024'}
    nb_classes : int
        DCASE formats (tut2018: ``len(classes)``).
    classes : sequence of str
        tut2018 class names in index order.
    nb_frames : int, optional
        Frames of the result (default: up to the last row).
    frame_rate : float, optional
        Frame rate of the result. Default: the file's (``FORMAT_FRAME_RATE``); required for tut2018. Another rate
        resamples (:func:`resample_matrices` with ``rule``).
    file_frame_rate : float, optional
        Frame rate of a DCASE file if not the format's standard one.
    naming : str
        tut2018 class naming.
    same_class : {'last', 'mean'}
        Several instances of a class in a frame (:func:`instances_to_matrices`).

    Returns
    -------
    sed : np.ndarray [shape=(frames, classes)], float32 in {0, 1}
    doa : np.ndarray [shape=(frames, 3*classes)], unit vectors, zeros where inactive
    """
    if fmt == 'tut2018':
        inst = read_instances(path, fmt=fmt, classes=classes, frame_rate=frame_rate, naming=naming,
                              nb_frames=nb_frames)
        return instances_to_matrices(inst, nb_classes=len(classes), nb_frames=nb_frames, same_class=same_class)
    inst = read_instances(path, fmt=fmt, nb_classes=nb_classes)
    src_rate = file_frame_rate or FORMAT_FRAME_RATE[fmt]
    resample = frame_rate is not None and not math.isclose(frame_rate, src_rate)
    n_src = nb_frames
    if nb_frames is not None and resample:
        n_src = max(int(inst.frame.max(initial=-1)) + 1, int(math.ceil(nb_frames * src_rate / frame_rate - 1e-9)))
    if n_src is not None and inst.frame.size and inst.frame.max() >= n_src:
        raise SELDError(f'{path}: frame {int(inst.frame.max())} is beyond nb_frames={n_src}')
    sed, doa = instances_to_matrices(inst, nb_classes=nb_classes, nb_frames=n_src, same_class=same_class)
    if resample:
        sed, doa = resample_matrices(sed, doa, frame_rate=src_rate, out_frame_rate=frame_rate, rule=rule,
                                     nb_frames_out=nb_frames)
    return sed, doa


# ==================================================================================================
# Writing
# ==================================================================================================
def _fmt_num(x: float, decimals: int | None) -> str:
    if decimals is None:
        return repr(float(x)) if x != 0 else '0.0'
    return str(int(round(x))) if decimals == 0 else f'{x:.{decimals}f}'


def write_csv(path: str | os.PathLike, sed: np.ndarray, doa: np.ndarray, *, fmt: str, frame_rate: float,
              out_frame_rate: float | None = None, rule: str = 'majority', coords: str = 'polar',
              angle_decimals: int | None = None, classes: Sequence[str] | None = None, naming: str = 'tut',
              dist: np.ndarray | None = None) -> None:
    """Write frame-wise matrices as a label or prediction file (atomically).

    Parameters
    ----------
    path : str
    sed : np.ndarray [shape=(frames, classes)], values in {0, 1}
    doa : np.ndarray [shape=(frames, 3*classes) or (frames, 2*classes)] (2-D: elevation 0)
    fmt : {'tut2018', 'dcase2019', 'dcase2020', 'dcase2024'}
        DCASE formats are written headerless, one row per active (frame, class), sorted by frame then class,
        track 0 (dcase2024: without a distance). tut2018: one event per run of active frames of a class,
        ``start = first / rate``, ``end = last / rate`` (read back to the same frames), DOA = the run's mean
        direction, ``dist`` 0 (unknown), recordings named ``{class}{nnn}.wav`` (REAL: ``{nnn}-{class}-0-0.wav``,
        plain: ``{class}``). A one-frame run gets ``end = (first + 1e-4) / rate`` since the reader needs
        ``end > start``.
    frame_rate : float
        Frames per second of ``sed``/``doa``.
    out_frame_rate : float, optional
        Frame rate of the written frames (default ``frame_rate``), by :func:`resample_matrices` with ``rule``.
    coords : {'polar', 'cartesian'}
        dcase2020 only: ``azi,ele`` or ``x,y,z``.
    angle_decimals : int, optional
        Rounding of written numbers (None: full precision; 0: integers, which the official 2019 loader requires).
    classes : sequence of str
        tut2018 class names.
    naming : str
        tut2018 recording naming.
    dist : np.ndarray [shape=(frames, classes)], optional
        dcase2024 only: distances in metres, written as a sixth column (``frame,class,source,azi,ele,dist``),
        at ``frame_rate`` (``out_frame_rate`` must then be ``frame_rate``).
    """
    if fmt not in FORMATS:
        raise ValueError(f'fmt={fmt!r} must be one of {FORMATS}')
    if dist is not None:
        dist = np.asarray(dist, dtype=np.float64)
        if fmt != 'dcase2024' or dist.shape != np.shape(sed) or (out_frame_rate is not None
                                                                and not math.isclose(out_frame_rate, frame_rate)):
            raise ValueError(f'dist {dist.shape}: only for dcase2024, shaped as sed {np.shape(sed)}, at frame_rate')
        if not np.all(np.isfinite(dist)) or np.any(dist < 0):
            raise ValueError('dist: values must be finite and >= 0')
    if coords not in ('polar', 'cartesian') or (coords == 'cartesian' and fmt != 'dcase2020'):
        raise ValueError(f"coords={coords!r}: 'cartesian' is only for dcase2020; else 'polar'")
    rate = frame_rate if out_frame_rate is None else out_frame_rate
    if not math.isclose(rate, frame_rate):
        sed, doa = resample_matrices(sed, doa, frame_rate=frame_rate, out_frame_rate=rate, rule=rule)
    ev = matrices_to_instances(sed, doa)
    vec = unit(ev.vec)
    if vec.shape[1] == 2:
        vec = np.concatenate([vec, np.zeros((vec.shape[0], 1))], axis=1)
    azi, ele, _ = cart2sph(vec)
    out = io.StringIO()
    if fmt == 'tut2018':
        if classes is None or len(classes) != np.shape(sed)[1]:
            raise ValueError(f'classes must name the {np.shape(sed)[1]} classes for the tut2018 format')
        out.write(','.join(DESC_HEADER) + '\n')
        order = np.lexsort((ev.frame, ev.cls))
        f, c, v = ev.frame[order], ev.cls[order], vec[order]
        new_run = np.ones(f.size, dtype=bool)
        new_run[1:] = (c[1:] != c[:-1]) | (f[1:] != f[:-1] + 1)
        run = np.cumsum(new_run) - 1
        starts = np.flatnonzero(new_run)
        ends = np.append(starts[1:], f.size) - 1
        mean = unit(np.stack([np.bincount(run, v[:, d]) for d in range(3)], axis=-1)) if f.size else np.zeros((0, 3))
        razi, rele, _ = cart2sph(mean)
        for k in np.argsort(f[starts], kind='stable'):
            cname = classes[c[starts[k]]]
            name = {'real': f'{k:03d}-{cname}-0-0.wav', 'plain': cname}.get(naming, f'{cname}{k:03d}.wav')
            end = f[ends[k]] + (1e-4 if ends[k] == starts[k] else 0.0)  # end must exceed start
            out.write(f'{name},{_fmt_num(f[starts[k]] / rate, None)},{_fmt_num(end / rate, None)},'
                      f'{_fmt_num(rele[k], angle_decimals)},{_fmt_num(razi[k], angle_decimals)},0\n')
    else:
        for i in range(ev.frame.size):
            head = f'{ev.frame[i]},{ev.cls[i]}' + (',0' if fmt != 'dcase2019' else '')
            if coords == 'cartesian':
                tail = ','.join(_fmt_num(x, angle_decimals) for x in vec[i])
            else:
                tail = f'{_fmt_num(azi[i], angle_decimals)},{_fmt_num(ele[i], angle_decimals)}'
            if dist is not None:
                tail += ',' + _fmt_num(dist[ev.frame[i], ev.cls[i]], None)
            out.write(f'{head},{tail}\n')
    write_text(path, out.getvalue())


# ==================================================================================================
# The side file of a prediction folder
# ==================================================================================================
def write_format_file(folder: str | os.PathLike, *, fmt: str, frame_rate: float, classes: Sequence[str],
                      files: dict[str, dict[str, float]], **extra: Any) -> str:
    """Write ``<folder>/format.json``: what the prediction files of ``folder`` are (read by the scoring command).

    Parameters
    ----------
    folder : str
    fmt : str
        Format of the prediction files (:data:`FORMATS`).
    frame_rate : float
        Their frame rate, frames per second.
    classes : sequence of str
        Class names in index order.
    files : dict
        ``{stem: {'nb_frames': frames at frame_rate, 'duration_s': seconds}}`` for every file.
    **extra
        Anything else the scoring needs (e.g. the reference format and its frame rate, the metric definitions).

    Returns
    -------
    path : str
    """
    if fmt not in FORMATS:
        raise ValueError(f'fmt={fmt!r} must be one of {FORMATS}')
    path = os.path.join(folder, FORMAT_FILE)
    write_json(path, dict(format=fmt, frame_rate=float(frame_rate), classes=list(classes), files=files, **extra))
    return path


def read_format_file(folder: str | os.PathLike) -> dict[str, Any] | None:
    """``<folder>/format.json`` (:func:`write_format_file`), or None if the folder has none."""
    path = os.path.join(folder, FORMAT_FILE)
    if not os.path.exists(path):
        return None
    info = read_json(path)
    for key in ('format', 'frame_rate', 'classes', 'files'):
        if not isinstance(info, dict) or key not in info:
            raise SELDError(f'{path}: missing "{key}" (written by the pipeline with format, frame_rate, classes, files)')
    if info['format'] not in FORMATS:
        raise SELDError(f'{path}: format={info["format"]!r} must be one of {FORMATS}')
    return info

"""File formats of SELD labels and predictions: reading, writing, the side file of a prediction folder and the
discovery of reference files.

Everything that reads or writes a label or prediction file lives here, below the features, the datasets and the
metrics, so that each of them uses the same readers. The records they return (:class:`label_frames.Events`,
:class:`label_frames.Instances`), the label-framing rule and the frame-rate conversion are in :mod:`label_frames`.

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
``dcase2025``
    ``frame,class,source,azimuth,distance,onscreen`` WITH that header line, 100 ms frames: the DCASE 2025 Stereo
    SELD metadata and output format (DCASE2025_seld_baseline ``utils.py``: ``load_labels``,
    ``write_to_dcase_output_format``). Azimuth only, in degrees (the elevation is 0: the vectors read are
    ``(cos azi, sin azi, 0)``); the distance in cm in both the metadata and the predictions (read as metres here:
    divided by 100); ``onscreen`` 0 or 1. The header decides the format (:func:`infer_dcase_format`).

A DCASE file up to 2024 has no header; a header line (first field not an integer) is skipped. The pipeline writes its
predictions headerless, as the official scoring code expects, with a side file :data:`FORMAT_FILE` in the same
folder that names the format, the frame rate, the classes and every file's length (:func:`write_format_file`).
"""
from __future__ import annotations

import csv
import io
import math
import os
import re
from typing import Any, Iterable, Sequence

import numpy as np

from label_frames import (Events, Instances, events_to_instances, instances_to_matrices, matrices_to_instances,
                     nb_frames_at, resample_matrices, unit)
from utils import SELDError, cart2sph, read_json, sph2cart, write_json, write_text


DESC_HEADER = ['sound_event_recording', 'start_time', 'end_time', 'ele', 'azi', 'dist']
FORMATS = ('tut2018', 'dcase2019', 'dcase2020', 'dcase2024', 'dcase2025')
#: Frames per second of each DCASE format's files: 20 ms and 100 ms frames.
FORMAT_FRAME_RATE = {'dcase2019': 50.0, 'dcase2020': 10.0, 'dcase2024': 10.0, 'dcase2025': 10.0}
#: Header line of a ``dcase2025`` file (its fields).
DCASE2025_HEADER = ['frame', 'class', 'source', 'azimuth', 'distance', 'onscreen']
#: Side file of a prediction folder (see :func:`write_format_file`).
FORMAT_FILE = 'format.json'
#: Class naming of description files: recording name with 3 digits (TUT simulated sets, ``cough066.wav``), the
#: UrbanSound8K field after the first '-' (TUT REAL, ``100032-3-0-0.wav``), or the class name itself (DCASE 2019).
NAMINGS = ('tut', 'real', 'plain')


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
    fmt : {'tut2018', 'dcase2019', 'dcase2020', 'dcase2024', 'dcase2025'}
        See the module docstring. ``tut2018`` events become one instance per frame of ``frame_rate``
        (:func:`label_frames.events_to_instances`).
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
        ``dcase2024`` rows with a distance (as written: cm in STARSS23), for ``tut2018`` (metres) and for
        ``dcase2025`` (its cm divided by 100: metres), else None; ``onscreen`` for ``dcase2025``.

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
    if fmt == 'dcase2025':
        return _read_dcase2025(path, nb_classes=int(nb_classes), nb_frames=nb_frames, max_track=max_track)
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


def _read_dcase2025(path: str | os.PathLike, *, nb_classes: int, nb_frames: int | None,
                    max_track: int | None) -> Instances:
    """A ``dcase2025`` file (module docstring) as instances: vectors ``(cos azi, sin azi, 0)``, ``dist`` in metres
    (the file's cm / 100), ``onscreen``. The checks and messages of :func:`read_instances`."""
    lines = _read_rows(path)
    if not lines or lines[0][1] != DCASE2025_HEADER:
        raise SELDError(f'{path}:1: header {lines[0][1] if lines else None} must be {",".join(DCASE2025_HEADER)} '
                        '(the dcase2025 format)')
    rows, seen = [], {}
    for lineno, row in lines[1:]:
        where = f'{path}:{lineno}'
        if tuple(row) in seen:
            raise SELDError(f'{where}: {",".join(row)} duplicates line {seen[tuple(row)]} (a row listed twice)')
        seen[tuple(row)] = lineno
        if len(row) != len(DCASE2025_HEADER):
            raise SELDError(f'{where}: {len(row)} fields {row}; a dcase2025 row is {",".join(DCASE2025_HEADER)}')
        for name, text in zip(('frame', 'class', 'source'), row[:3]):
            if not _is_int(text) or int(text) < 0:
                raise SELDError(f'{where}: {name}={text!r} must be an integer >= 0')
        frame, cls, track = (int(v) for v in row[:3])
        if cls >= nb_classes:
            raise SELDError(f'{where}: class={cls} is not a class index in [0, {nb_classes})')
        if nb_frames is not None and frame >= nb_frames:
            raise SELDError(f'{where}: frame={frame} is beyond the recording ({nb_frames} frames)')
        if max_track is not None and track > max_track:
            raise SELDError(f'{where}: source={track} is out of range (at most {max_track})')
        try:
            azi, dist = float(row[3]), float(row[4])
        except ValueError as err:
            raise SELDError(f'{where}: azimuth,distance={row[3:5]} must be numbers') from err
        if not (math.isfinite(azi) and math.isfinite(dist)):
            raise SELDError(f'{where}: azimuth,distance={row[3:5]} must be finite numbers')
        _check_angles(where, azi, 0.0)
        if dist < 0:
            raise SELDError(f'{where}: distance={row[4]} must be >= 0 (cm)')
        if row[5] not in ('0', '1'):
            raise SELDError(f'{where}: onscreen={row[5]!r} must be 0 or 1')
        rows.append((frame, cls, track, azi, dist, int(row[5])))
    if not rows:
        return Instances.empty()._replace(dist=np.zeros(0), onscreen=np.zeros(0, dtype=np.int64))
    arr = np.array(rows, dtype=np.float64)
    azi = np.deg2rad(arr[:, 3])
    vec = np.stack([np.cos(azi), np.sin(azi), np.zeros_like(azi)], axis=1)
    return Instances(arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2].astype(np.int64), vec,
                     arr[:, 4] / 100.0, arr[:, 5].astype(np.int64))


def as_dcase2025(inst: Instances) -> Instances:
    """Instances as a ``dcase2025`` file holds them once written (``dcase_outputs.write_instances``) and read back
    (:func:`read_instances`): the azimuth ``atan2(y, x)`` rounded to whole degrees (halves to even), the distance to
    whole cm, on-screen 0 where not given. The 2025 baseline scores its written files, so a run scores these.

    Parameters
    ----------
    inst : Instances, 2-D or 3-D vectors, ``dist`` in metres

    Returns
    -------
    inst : Instances with vectors ``(cos azi, sin azi, 0)``, ``dist`` in metres, ``onscreen``
    """
    vec = np.asarray(inst.vec, dtype=np.float64)
    azi = np.deg2rad(np.round(np.rad2deg(np.arctan2(vec[:, 1], vec[:, 0]))))
    dist = None if inst.dist is None else np.round(np.asarray(inst.dist, dtype=np.float64) * 100) / 100.0
    onscreen = np.zeros(vec.shape[0], np.int64) if inst.onscreen is None else np.asarray(inst.onscreen, np.int64)
    return inst._replace(vec=np.stack([np.cos(azi), np.sin(azi), np.zeros_like(azi)], axis=1), dist=dist,
                         onscreen=onscreen)


#: Field counts of each DCASE format's rows (see :func:`read_instances`).
FIELD_COUNTS = {'dcase2019': (4,), 'dcase2020': (5, 6), 'dcase2024': (5, 6, 7)}


def infer_dcase_format(path: str | os.PathLike, *, hint: str | None = None) -> str:
    """The DCASE format of a headerless file, from the number of fields of its first row.

    4 fields: ``dcase2019``; 5: ``dcase2020`` (``frame,class,track,azi,ele``, which dcase2024 reads alike);
    7: ``dcase2024`` (Cartesian with a distance). 6 fields are a dcase2020 Cartesian row or a dcase2024 polar row
    with a distance (STARSS23 metadata): ``hint='dcase2024'`` (the prediction format) reads them as dcase2024;
    otherwise an error asks for the format (reading ``azi,ele,dist`` as ``x,y,z`` would be silently wrong). A
    count that fits ``hint`` gives ``hint``. A file whose first line is the ``dcase2025`` header is ``dcase2025``.

    Raises
    ------
    SELDError
        A tut2018 description (its header), a row of another field count, or 6 fields without a deciding hint.
    """
    rows = _read_rows(path)
    if rows and rows[0][1][:len(DESC_HEADER)] == DESC_HEADER:
        raise SELDError(f'{path}:1: a tut2018 description (its header), not headerless DCASE metadata')
    if rows and rows[0][1] == DCASE2025_HEADER:
        return 'dcase2025'
    if hint == 'dcase2025':
        raise SELDError(f'{path}:1: no dcase2025 header ({",".join(DCASE2025_HEADER)}), but the prediction format '
                        'is dcase2025; give the reference format (--ref-format)')
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
        reads its references (``cm2m=True``); ``dcase2025`` files are read in metres by :func:`read_instances`.
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
        resamples (:func:`label_frames.resample_matrices` with ``rule``).
    file_frame_rate : float, optional
        Frame rate of a DCASE file if not the format's standard one.
    naming : str
        tut2018 class naming.
    same_class : {'last', 'mean'}
        Several instances of a class in a frame (:func:`label_frames.instances_to_matrices`).

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
# Reference files of a folder
# ==================================================================================================
def find_references(folder: str, stems: Sequence[str]) -> dict[str, str]:
    """The reference file of every stem: ``<stem>.csv`` anywhere below ``folder`` (a DCASE ``metadata_dev/`` holds
    ``dev-train/``, ``dev-test/`` ... sub-folders).

    Raises
    ------
    SELDError
        A missing folder, a stem without reference (named), or a stem found twice (both paths named).
    """
    if not os.path.isdir(folder):
        raise SELDError(f'{folder}: reference folder not found')
    found: dict[str, str] = {}
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            stem, ext = os.path.splitext(name)
            if ext.lower() != '.csv':
                continue
            path = os.path.join(root, name)
            if stem in found:
                raise SELDError(f'{stem}: two reference files, {found[stem]} and {path}; pairing by stem needs one')
            found[stem] = path
    missing = [s for s in stems if s not in found]
    if missing:
        raise SELDError(f'{folder}: no reference file for the predicted {", ".join(missing)} (searched all '
                        'sub-folders for <stem>.csv)')
    return {s: found[s] for s in stems}


def reference_formats(ref_paths: dict[str, str], *, ref_fmt: str | None, hint: str | None) -> dict[str, str]:
    """The format of every reference: tut2018 by its header; a headerless one as ``ref_fmt`` says, else from its
    field count (:func:`formats.infer_dcase_format`, the prediction format deciding 6 fields)."""
    out = {}
    for stem, path in ref_paths.items():
        if has_desc_header(path):
            if ref_fmt not in (None, 'tut2018'):
                raise SELDError(f'{path}: a tut2018 description (its header), but the reference format is {ref_fmt}')
            out[stem] = 'tut2018'
        elif ref_fmt == 'tut2018':
            raise SELDError(f'{path}: no tut2018 header ({",".join(DESC_HEADER)}), but the reference format '
                            'is tut2018')
        else:
            out[stem] = ref_fmt or infer_dcase_format(path, hint=hint)
    dcase = sorted({f for f in out.values() if f != 'tut2018'})
    if len(dcase) > 1 and len({FORMAT_FRAME_RATE[f] for f in dcase}) > 1:
        raise SELDError(f'the references are of formats {", ".join(dcase)} with different frame rates; give '
                        '--ref-format (and --ref-frame-rate)')
    return out


# ==================================================================================================
# Writing
# ==================================================================================================
def _fmt_num(x: float, decimals: int | None) -> str:
    if decimals is None:
        return repr(float(x)) if x != 0 else '0.0'
    return str(int(round(x))) if decimals == 0 else f'{x:.{decimals}f}'


def write_csv(path: str | os.PathLike, sed: np.ndarray, doa: np.ndarray, *, fmt: str, frame_rate: float,
              out_frame_rate: float | None = None, rule: str = 'majority', coords: str = 'polar',
              angle_decimals: int | None = None, dist: np.ndarray | None = None) -> None:
    """Write frame-wise matrices as a label or prediction file (atomically).

    Parameters
    ----------
    path : str
    sed : np.ndarray [shape=(frames, classes)], values in {0, 1}
    doa : np.ndarray [shape=(frames, 3*classes) or (frames, 2*classes)] (2-D: elevation 0)
    fmt : {'dcase2019', 'dcase2020', 'dcase2024'}
        Written headerless, one row per active (frame, class), sorted by frame then class, track 0 (dcase2024:
        with a distance only where ``dist`` is given). The ``tut2018`` description format is read, not written.
    frame_rate : float
        Frames per second of ``sed``/``doa``.
    out_frame_rate : float, optional
        Frame rate of the written frames (default ``frame_rate``), by :func:`label_frames.resample_matrices` with
        ``rule``.
    coords : {'polar', 'cartesian'}
        dcase2020 only: ``azi,ele`` or ``x,y,z``.
    angle_decimals : int, optional
        Rounding of written numbers (None: full precision; 0: integers, which the official 2019 loader requires).
    dist : np.ndarray [shape=(frames, classes)], optional
        dcase2024 only: distances in metres, written as a sixth column (``frame,class,source,azi,ele,dist``),
        at ``frame_rate`` (``out_frame_rate`` must then be ``frame_rate``).
    """
    if fmt not in FORMAT_FRAME_RATE or fmt == 'dcase2025':
        raise ValueError(f'fmt={fmt!r} must be one of dcase2019, dcase2020, dcase2024 (tut2018 is read, not written; '
                         'dcase2025 is written by dcase_outputs.write_instances)')
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
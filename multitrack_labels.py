"""Multi-track targets of the DCASE 2022-2025 baselines (Multi-ACCDOA / Multi-ACCDDOA with ADPIT).

Layout (the baselines' ``get_adpit_labels_for_file`` / ``process_labels_adpit``), per label frame::

    label[frame, track, 0, class]       activity in {0, 1}
    label[frame, track, 1:, class]      the instance's values: x, y, z (2022-2023), x, y, z, distance in metres
                                        (2024), or x, y, distance, on-screen (2025)

with 6 dummy tracks: the instance of a class that is alone in its frame is on track 0 ("A0"); two instances of one
class in a frame are on tracks 1 and 2 ("B0", "B1"); three or more, the first three on tracks 3, 4 and 5 ("C0",
"C1", "C2"; a fourth and later one are dropped). Within a class, instances keep their order in the metadata file.
:func:`losses.adpit_mse` reads this layout.
"""
from __future__ import annotations

import numpy as np

from utils import SELDError

#: Dummy tracks of the layout: A0, B0, B1, C0, C1, C2.
NB_DUMMY_TRACKS = 6


def adpit_labels(frame: np.ndarray, cls: np.ndarray, values: np.ndarray, *, nb_frames: int,
                 nb_classes: int) -> np.ndarray:
    """The multi-track target of one recording.

    Parameters
    ----------
    frame : np.ndarray [shape=(instances,)], int
        Label frame of each instance (one row of the metadata each); rows at ``nb_frames`` or later are dropped.
    cls : np.ndarray [shape=(instances,)], int
        Class index of each instance, ``0 .. nb_classes - 1``.
    values : np.ndarray [shape=(instances, elements)]
        What each instance's track holds after its activity, e.g. the unit vector x, y, z (and a distance in m).
    nb_frames, nb_classes : int

    Returns
    -------
    label : np.ndarray [shape=(nb_frames, 6, 1 + elements, nb_classes)], float32 (module docstring)

    Raises
    ------
    SELDError
        A class out of range, a negative frame, or ``values`` not one row per instance.
    """
    frame, cls = np.asarray(frame, np.int64).ravel(), np.asarray(cls, np.int64).ravel()
    values = np.asarray(values, np.float64)
    if values.ndim != 2 or values.shape[0] != frame.size or cls.size != frame.size:
        raise SELDError(f'adpit_labels: {frame.size} frames, {cls.size} classes and values of shape {values.shape}: '
                        f'must be one row per instance')
    if frame.size and (cls.min() < 0 or cls.max() >= nb_classes or frame.min() < 0):
        raise SELDError(f'adpit_labels: classes must be in 0 .. {nb_classes - 1} and frames >= 0')
    label = np.zeros((nb_frames, NB_DUMMY_TRACKS, 1 + values.shape[1], nb_classes), np.float32)
    keep = frame < nb_frames
    idx = np.flatnonzero(keep)
    order = idx[np.lexsort((idx, cls[idx], frame[idx]))]  # by frame, class, then metadata order
    f, c = frame[order], cls[order]
    n = f.size
    if not n:
        return label
    new = np.r_[True, (f[1:] != f[:-1]) | (c[1:] != c[:-1])]
    group = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    rank = np.arange(n) - starts[group]
    count = np.diff(np.r_[starts, n])[group]
    track = np.where(count == 1, 0, np.where(count == 2, 1 + rank, 3 + rank))
    ok = rank < 3
    f, c, track, rows = f[ok], c[ok], track[ok], order[ok]
    label[f, track, 0, c] = 1.0
    label[f, track, 1:, c] = values[rows]
    return label

"""The targets of the DCASE baselines' outputs: ACCDOA (2021) and the multi-track targets of Multi-ACCDOA /
Multi-ACCDDOA with ADPIT (2022-2025), and SELDnet's at a pooled rate.

Layout (the baselines' ``get_adpit_labels_for_file`` / ``process_labels_adpit``), per label frame::

    label[frame, track, 0, class]       activity in {0, 1}
    label[frame, track, 1:, class]      the instance's values: x, y, z (2022-2023), x, y, z, distance in metres
                                        (2024), or x, y, distance, on-screen (2025)

with 6 dummy tracks: the instance of a class that is alone in its frame is on track 0 ("A0"); two instances of one
class in a frame are on tracks 1 and 2 ("B0", "B1"); three or more, the first three on tracks 3, 4 and 5 ("C0",
"C1", "C2"; a fourth and later one are dropped). Within a class, instances keep their order in the metadata file.
:func:`losses.adpit_mse` reads this layout.

Targets of a recording at the output rate (:func:`output_target`)
-----------------------------------------------------------------
A model with time pooling has one output frame per ``prod(t_pool_size)`` feature frames; its targets are made at
that output rate from the dataset's reference (:meth:`datasets.Dataset.read_reference`), keeping every instance:

* events in seconds (TUT-2018, 2019) are active in the output frames of :func:`label_frames.event_frames` at the
  output rate;
* frame metadata (2020+, 100 ms) needs an output rate that is the label rate or a whole multiple ``m`` of it
  (:func:`label_rate_factor`): output frame ``k`` holds every instance of label frame ``floor(k / m)``
  (:func:`label_frames.upsample_instances`; ``m = 1`` for the baselines' 20 ms frames pooled by 5).

The layouts, per output frame (:func:`target_shape`):

=================  ==========================  =======================================================================
output             shape                       values
=================  ==========================  =======================================================================
``seldnet``        (4 * classes,)              SED, then x, y, z blocks (:func:`label_frames.instances_to_labels`)
``accdoa``         (3 * classes,)              ``activity * (x, y, z)``: the x block, then y, then z (2021)
``multi_accdoa``   (6, 1 + 3, classes)         :func:`adpit_labels` with x, y, z (2022-2023)
``multi_accddoa``  (6, 1 + 4, classes)         :func:`adpit_labels` with x, y, z, distance in metres (2024); with
                                               ``azi_only``: x, y (the unit vector of the azimuth), distance in
                                               metres, on-screen flag (2025: ``process_labels_adpit`` of
                                               DCASE2025_seld_baseline; the flag 0 where the reference has none)
=================  ==========================  =======================================================================

``seldnet`` and ``accdoa`` have one vector per class: two instances of one class in a frame give the one listed
LAST in the metadata file (``label_frames.instances_to_matrices(same_class='last')``). That is what the official
DCASE 2021 code does for ACCDOA: its ``get_labels_for_file`` writes every row of a frame in file order into one
(frame, class) cell, so the last row overwrites the earlier ones, and its data generator multiplies those x, y, z
by the SED activity. The multi-track layouts keep up to 3 instances per class and frame.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

import label_frames
from utils import SELDError

#: Relative tolerance of a whole ratio of frame rates (``fs / hop`` round-off).
RATE_TOL = 1e-6

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


def target_shape(output: str, *, nb_classes: int) -> tuple[int, ...]:
    """The shape of one output frame's target (module docstring): ``(4C,)``, ``(3C,)``, ``(6, 4, C)`` or ``(6, 5, C)``
    for ``seldnet``, ``accdoa``, ``multi_accdoa`` and ``multi_accddoa``."""
    C = int(nb_classes)
    shapes = dict(seldnet=(4 * C,), accdoa=(3 * C,), multi_accdoa=(NB_DUMMY_TRACKS, 4, C),
                  multi_accddoa=(NB_DUMMY_TRACKS, 5, C))
    if output not in shapes:
        raise SELDError(f'output={output!r}: must be one of {", ".join(shapes)}')
    return shapes[output]


class OutputLayout(NamedTuple):
    """A model output's targets: what :class:`cls_feature_class.FeatureClass` writes and the generator reads.

    Attributes
    ----------
    output : str
        ``seldnet``, ``accdoa``, ``multi_accdoa`` or ``multi_accddoa``.
    frames_per_output : int
        ``prod(t_pool_size)`` (1 without time pooling): feature frames per output frame.
    output_rate : float
        Output frames per second: the feature frame rate / ``frames_per_output``.
    target_shape : tuple of int
        One output frame's target (:func:`target_shape`).
    """
    output: str
    frames_per_output: int
    output_rate: float
    target_shape: tuple

    @property
    def has_target(self) -> bool:
        """Targets are written (``target/``): an output other than ``seldnet``, or time pooling. Otherwise SELDnet's
        labels at the feature rate are the targets, and nothing else is written."""
        return self.output != 'seldnet' or self.frames_per_output > 1

    def nb_frames(self, nb_feature_frames: int) -> int:
        """Output frames of ``nb_feature_frames`` feature frames: ``ceil(nb_feature_frames / frames_per_output)``."""
        return -(-int(nb_feature_frames) // self.frames_per_output)

    def describe(self) -> dict:
        """JSON-able description (the extraction manifest, a run's feature info)."""
        return dict(output=self.output, frames_per_output=self.frames_per_output, output_rate=self.output_rate,
                    target_shape=list(self.target_shape))


def output_layout(*, output: str, t_pool_size: list[int] | None, frame_rate: float, nb_classes: int,
                  label_rate: float | None = None) -> OutputLayout:
    """The :class:`OutputLayout` of parameters ``output`` and ``t_pool_size``.

    Raises
    ------
    SELDError
        ``t_pool_size`` not positive integers, an unknown output, or (with targets and frame metadata at
        ``label_rate``) an output rate that is not the label rate or a whole multiple of it.
    """
    t_pool = list(t_pool_size or [])
    if any(isinstance(v, bool) or int(v) != v or v < 1 for v in t_pool):
        raise SELDError(f't_pool_size={t_pool}: must be a list of positive integers')
    p = int(np.prod(t_pool, dtype=np.int64)) if t_pool else 1
    layout = OutputLayout(output, p, float(frame_rate) / p, target_shape(output, nb_classes=nb_classes))
    if layout.has_target and label_rate is not None:
        try:
            label_rate_factor(output_rate=layout.output_rate, label_rate=label_rate)
        except SELDError as err:
            raise SELDError(f't_pool_size={t_pool}: {frame_rate:g} feature frames/s pooled by {p}: {err}') from err
    return layout


def label_rate_factor(*, output_rate: float, label_rate: float) -> int:
    """How many output frames one label frame of frame metadata spans: ``output_rate / label_rate``, a whole number.

    Raises
    ------
    SELDError
        The output rate is not the label rate or a whole multiple of it (within :data:`RATE_TOL`): output frames
        would straddle label frames.
    """
    ratio = float(output_rate) / float(label_rate)
    m = int(round(ratio))
    if m < 1 or abs(ratio - m) > RATE_TOL * ratio:
        raise SELDError(f'output rate {output_rate:g} frames/s: must be the label rate {label_rate:g} frames/s or a '
                        f'whole multiple of it')
    return m


def output_instances(ref: label_frames.Events | label_frames.Instances, *, nb_frames: int, frame_rate: float,
                     label_rate: float | None = None) -> label_frames.Instances:
    """Every instance of a reference at the output rate (module docstring), in metadata order within each frame.

    Parameters
    ----------
    ref : label_frames.Events (seconds) or label_frames.Instances (frames at ``label_rate``)
    nb_frames : int
        Output frames; instances at or beyond it are dropped.
    frame_rate : float
        Output frames per second.
    label_rate : float, optional
        Frames per second of ``ref`` when it is an instance list.

    Returns
    -------
    inst : label_frames.Instances at ``frame_rate``: frame, class, track (the event's row for events), unit vector,
        distance in metres (where the reference has one).
    """
    if isinstance(ref, label_frames.Events):
        return label_frames.events_to_instances(ref, frame_rate=frame_rate, nb_frames=nb_frames)
    if label_rate is None:
        raise SELDError('output_instances: an instance list needs its label_rate')
    m = label_rate_factor(output_rate=frame_rate, label_rate=label_rate)
    return label_frames.upsample_instances(ref, factor=m, nb_frames=nb_frames)


def output_target(ref: label_frames.Events | label_frames.Instances, *, output: str, nb_classes: int,
                  nb_frames: int, frame_rate: float, label_rate: float | None = None,
                  where: str = 'reference', azi_only: bool = False) -> np.ndarray:
    """The target of one recording for ``output`` at the output rate (module docstring).

    Parameters
    ----------
    ref : label_frames.Events or label_frames.Instances
        The recording's reference (:meth:`datasets.Dataset.read_reference`).
    output : {'seldnet', 'accdoa', 'multi_accdoa', 'multi_accddoa'}
    nb_classes, nb_frames : int
        Classes, and output frames (``ceil(feature frames / prod(t_pool_size))``).
    frame_rate : float
        Output frames per second.
    label_rate : float, optional
        Frames per second of an instance-list reference.
    where : str
        What to name in errors (the metadata file).
    azi_only : bool
        ``multi_accddoa``: the 2025 values x, y, distance, on-screen (module docstring); the other outputs ignore it
        (SELDnet's azimuth-only DOA is taken from its x, y blocks by ``label_frames.split_label``).

    Returns
    -------
    target : np.ndarray [shape=(nb_frames,) + target_shape(output)], float32

    Raises
    ------
    SELDError
        ``multi_accddoa`` for a reference without distances, a reference that is not 3-D, or an output rate that
        does not fit the label rate.
    """
    shape = target_shape(output, nb_classes=nb_classes)
    inst = output_instances(ref, nb_frames=nb_frames, frame_rate=frame_rate, label_rate=label_rate)
    vec = np.asarray(inst.vec, np.float64)
    if vec.ndim != 2 or vec.shape[1] != 3:
        raise SELDError(f'{where}: directions of shape {vec.shape}: the targets need x, y, z per instance')
    if output in ('seldnet', 'accdoa'):
        sed, doa = label_frames.instances_to_matrices(inst, nb_classes=nb_classes, nb_frames=nb_frames,
                                                      same_class='last')
        target = doa if output == 'accdoa' else np.concatenate([sed, doa], axis=1)  # doa is 0 where inactive
        return target.astype(np.float32).reshape((nb_frames,) + shape)
    values = label_frames.unit(vec)
    if output == 'multi_accddoa':
        if inst.dist is None:
            raise SELDError(f'{where}: no distances: output=multi_accddoa needs metadata with a distance column '
                            f'(the DCASE 2024 STARSS23 labels, the DCASE 2025 stereo set, or events in seconds)')
        if azi_only:
            onscreen = np.zeros(inst.frame.size) if inst.onscreen is None else inst.onscreen
            values = np.column_stack([label_frames.unit(vec[:, :2]), inst.dist, onscreen])
        else:
            values = np.column_stack([values, inst.dist])
    return adpit_labels(inst.frame, inst.cls, values, nb_frames=nb_frames, nb_classes=nb_classes)

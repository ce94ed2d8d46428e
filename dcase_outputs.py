"""The DCASE baselines' inference: a model's ACCDOA / Multi-ACCDOA output -> frame-wise instances -> a prediction file.

What the official baselines do between the network and the CSV, vectorized over frames and classes (no loop):
:func:`decode` gives the instance list that the official code writes, :func:`write_instances` writes it in a year's
output format. The scorer takes the list as it is (:meth:`scoring.SELDScorer.add_instances`).

Output layout (the baselines' last linear layer; :mod:`losses` reads the same)::

    pred[frame, (track * elements + element) * classes + class]

=================  ======  ==================================  ==================================================
``output``         tracks  elements (``azi_only=False``)       official source
=================  ======  ==================================  ==================================================
``accdoa``         1       x, y, z                             seld-dcase2021 ``seld.py``: ``get_accdoa_labels``
``multi_accdoa``   3       x, y, z                             seld-dcase2022/2023 ``train_seldnet.py``:
                                                               ``get_multi_accdoa_labels``, ``test_epoch``
``multi_accddoa``  3       x, y, z, distance (m)               DCASE2024_seld_baseline ``train_seldnet.py``: the
                                                               same, with ``dist0..2``
=================  ======  ==================================  ==================================================

``azi_only=True`` drops z: ``multi_accddoa`` with ``azi_only=True`` is the 2025 stereo baseline's audio output
(x, y, distance per track: DCASE2025_seld_baseline ``utils.py``: ``get_multiaccdoa_labels``,
``get_output_dict_format_multi_accdoa``; its audio-visual on-screen element is not decoded).

The rules (each official function named)
----------------------------------------
Activity
    A track of a class is active where the length of its direction vector exceeds ``threshold``:
    ``sqrt(x**2 + y**2 + z**2) > 0.5`` (``get_accdoa_labels`` / ``get_multi_accdoa_labels``; 2025
    ``sqrt(x**2 + y**2)``). The distance is the track's distance element with negative values set to 0
    (``dist[dist < 0.] = 0.``, 2024 and 2025).
Similar tracks (``determine_similar_location``)
    Tracks ``i`` and ``j`` of a class are similar in a frame where both are active and the angle between their
    vectors, ``arccos(clip(u_i . u_j, -1, 1))`` in degrees with ``u = v / sqrt(|v|^2 + 1e-10)``
    (``distance_between_cartesian_coordinates``), is below ``thresh_unify``. The three pairs are (0, 1), (1, 2)
    and (2, 0).
Unification (the loop of ``test_epoch`` / ``get_output_dict_format_multi_accdoa``), per frame and class
    - no similar pair: every active track is an instance, tracks 0, 1, 2 in order;
    - one similar pair: the third track if active, then ONE instance for the pair: the mean of the two tracks'
      vectors ``(v_i + v_j) / 2`` and distances;
    - two or three similar pairs (then all three tracks are active): ONE instance, the mean of the three tracks'
      vectors ``(v_0 + v_1 + v_2) / 3`` and distances (even where tracks 0 and 2 are not similar themselves).
    The rule is symmetric under any permutation of the tracks, but for the order of the rows, the track numbers
    written and the rounding of the three-track sum.

The arithmetic is the official's, in the output's precision: a float32 output (a model's) is decoded in float32
with the official expressions in the official order (NumPy 2 keeps float32 scalars float32), so activity and
similarity decisions fall alike at their thresholds; ``benchmarks/compare_official_outputs.py`` checks it against
the official functions. The vectors are NOT normalized, as the official writes them: every consumer (the metrics,
:func:`write_instances`' polar form, :func:`label_frames.instances_to_matrices`) normalizes.

Use, per recording (``out``: the model's output at the label rate, 100-ms frames)::

    inst = decode(out, output='multi_accddoa', nb_classes=13, thresh_unify=15.0)
    scorer.add_instances(stem, ref, inst, duration_s=duration_s, nb_frames=len(out))  # scoring.SELDScorer
    write_instances(path, inst, fmt='dcase2024')

Class-wise matrices of the instances (plots): :func:`label_frames.instances_to_matrices`.
"""
from __future__ import annotations

import io
import os

import numpy as np

from label_frames import Instances
from utils import cart2sph, write_text

#: output -> (tracks, has a distance element)
OUTPUTS = {'accdoa': (1, False), 'multi_accdoa': (3, False), 'multi_accddoa': (3, True)}
#: Formats :func:`write_instances` writes.
WRITE_FORMATS = ('dcase2020', 'dcase2024', 'dcase2025')
#: Header line of a DCASE 2025 prediction file (``write_to_dcase_output_format``).
DCASE2025_HEADER = 'frame,class,source,azimuth,distance,onscreen'
#: Track pairs of ``determine_similar_location`` (flag_0sim1, flag_1sim2, flag_2sim0).
PAIRS = ((0, 1), (1, 2), (2, 0))


def layout(output: str, *, azi_only: bool = False) -> tuple[int, int, bool]:
    """Tracks, elements per track and whether the last element is a distance, of a baseline output.

    Parameters
    ----------
    output : {'accdoa', 'multi_accdoa', 'multi_accddoa'}
    azi_only : bool
        Directions (x, y) instead of (x, y, z).

    Returns
    -------
    tracks : int
        1 or 3.
    elements : int
        Direction dimensions (2 or 3), plus 1 with a distance.
    has_dist : bool
    """
    if output not in OUTPUTS:
        raise ValueError(f'output={output!r} must be one of {", ".join(OUTPUTS)} (seldnet has two outputs: '
                         'threshold its SED probabilities instead)')
    tracks, has_dist = OUTPUTS[output]
    return tracks, (2 if azi_only else 3) + int(has_dist), has_dist


def scalar_square(x: np.ndarray) -> np.ndarray:
    """``x ** 2`` element by element as NumPy computes it for one scalar: with ``pow`` (for float32 ``powf``, one
    ulp off the exact square ``x * x`` for about 0.1 % of values), not the array fast path that squares."""
    x = np.asarray(x)
    return np.power(x, np.full_like(x, 2))


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``distance_between_cartesian_coordinates`` of [shape=(..., d)] vectors, in their dtype, in its order (it runs
    on NumPy scalars: :func:`scalar_square`)."""
    def normalized(v: np.ndarray) -> list[np.ndarray]:
        sq = scalar_square(v[..., 0]) + scalar_square(v[..., 1])
        if v.shape[-1] == 3:
            sq = sq + scalar_square(v[..., 2])
        n = np.sqrt(sq + 1e-10)
        return [v[..., k] / n for k in range(v.shape[-1])]

    ua, ub = normalized(a), normalized(b)
    dot = ua[0] * ub[0] + ua[1] * ub[1]
    if len(ua) == 3:
        dot = dot + ua[2] * ub[2]
    return np.arccos(np.clip(dot, -1, 1)) * 180 / np.pi


def decode(pred: np.ndarray, *, output: str, nb_classes: int, azi_only: bool = False, threshold: float = 0.5,
           thresh_unify: float = 15.0) -> Instances:
    """One recording's baseline output -> its frame-wise instances, as the official inference (module docstring).

    Parameters
    ----------
    pred : np.ndarray [shape=(frames, tracks * elements * classes)]
        The model's output for one recording, layout of the module docstring. Computed in float32 if float32, else
        in float64.
    output : {'accdoa', 'multi_accdoa', 'multi_accddoa'}
    nb_classes : int
    azi_only : bool
        Directions are (x, y) (the 2025 stereo baseline: ``output='multi_accddoa', azi_only=True``).
    threshold : float
        Activity: vector length above it (the baselines' 0.5).
    thresh_unify : float
        Degrees in [0, 180]: similar tracks of a class are unified below it (the baselines' 15).

    Returns
    -------
    inst : label_frames.Instances
        Sorted by frame and class; within a (frame, class), the unmerged tracks in track order, then the unified
        one (the official row order). ``track``: the output track (0-2) of an unmerged instance; for a unified
        one, the first track of its pair as the official names it (0 for 0-1, 1 for 1-2, 2 for 2-0) and 0 for
        all three. ``vec`` [shape=(n, 3) or (n, 2)], float64: the official vectors (not normalized). ``dist``
        [shape=(n,)] metres, float64, for ``multi_accddoa``, else None.

    Raises
    ------
    ValueError
        A shape that is not the layout's, non-finite values, a threshold out of range.
    """
    tracks, elements, has_dist = layout(output, azi_only=azi_only)
    C = int(nb_classes)
    if C < 1:
        raise ValueError(f'nb_classes={nb_classes} must be >= 1')
    if not (np.isfinite(threshold) and threshold >= 0):
        raise ValueError(f'threshold={threshold} must be finite and >= 0')
    if not 0 <= thresh_unify <= 180:
        raise ValueError(f'thresh_unify={thresh_unify} must be in [0, 180] degrees')
    arr = np.asarray(pred)
    arr = arr if arr.dtype == np.float32 else arr.astype(np.float64)
    width = tracks * elements * C
    if arr.ndim != 2 or arr.shape[1] != width:
        raise ValueError(f'pred has shape {arr.shape}; {output} with {C} classes{" (azi_only)" if azi_only else ""}'
                         f' is (frames, {tracks} tracks x {elements} elements x {C} classes = {width})')
    if not np.all(np.isfinite(arr)):
        raise ValueError('pred: values must be finite')
    T, d = arr.shape[0], elements - int(has_dist)
    v = arr.reshape(T, tracks, elements, C).transpose(0, 1, 3, 2)  # (T, tracks, C, elements)
    vec = v[..., :d]
    sq = vec[..., 0] ** 2 + vec[..., 1] ** 2
    if d == 3:
        sq = sq + vec[..., 2] ** 2
    act = np.sqrt(sq) > threshold  # (T, tracks, C)
    dist = np.where(v[..., d] < 0, 0, v[..., d]).astype(arr.dtype) if has_dist else np.zeros(act.shape, arr.dtype)

    if tracks == 1:
        keep = act[:, 0]
        cand_vec, cand_dist = vec[:, 0][:, :, None], dist[:, 0][:, :, None]  # (T, C, 1, d), (T, C, 1)
        track_of = np.zeros(1, dtype=np.int64)
        keep = keep[:, :, None]
    else:
        sim = np.stack([act[:, i] & act[:, j] & (_angle_deg(vec[:, i], vec[:, j]) < thresh_unify)
                        for i, j in PAIRS], axis=-1)  # (T, C, 3 pairs)
        n = sim.sum(axis=-1)
        in_pair = np.stack([sim[..., [p for p, pair in enumerate(PAIRS) if k in pair]].any(axis=-1)
                            for k in range(3)], axis=-1)  # (T, C, 3 tracks): track k in a similar pair
        single = act.transpose(0, 2, 1) & ((n == 0)[..., None] | ((n == 1)[..., None] & ~in_pair))
        pair = sim & (n == 1)[..., None]
        triple = (n >= 2)[..., None]
        keep = np.concatenate([single, pair, triple], axis=-1)  # (T, C, 7): the official row order
        pair_vec = [(vec[:, i] + vec[:, j]) / 2 for i, j in PAIRS]
        pair_dist = [(dist[:, i] + dist[:, j]) / 2 for i, j in PAIRS]
        cand_vec = np.stack([vec[:, 0], vec[:, 1], vec[:, 2], *pair_vec, (vec[:, 0] + vec[:, 1] + vec[:, 2]) / 3],
                            axis=2)  # (T, C, 7, d)
        cand_dist = np.stack([dist[:, 0], dist[:, 1], dist[:, 2], *pair_dist,
                              (dist[:, 0] + dist[:, 1] + dist[:, 2]) / 3], axis=2)  # (T, C, 7)
        track_of = np.array([0, 1, 2, 0, 1, 2, 0], dtype=np.int64)
    t, c, k = np.nonzero(keep)  # row-major: frame, class, then candidate order
    return Instances(t.astype(np.int64), c.astype(np.int64), track_of[k],
                     cand_vec[t, c, k].astype(np.float64),
                     cand_dist[t, c, k].astype(np.float64) if has_dist else None)


def _num(x: float) -> str:
    """A float as the official writers print it (``'{}'.format(float(x))``)."""
    return repr(float(x))


def write_instances(path: str | os.PathLike, inst: Instances, *, fmt: str, coords: str = 'cartesian') -> None:
    """Write an instance list (e.g. :func:`decode`'s) as a DCASE prediction file, rows in the list's order (atomically).

    Parameters
    ----------
    path : str
    inst : label_frames.Instances
        Frames at the format's rate (100 ms); ``track`` is written as the track / source column.
    fmt : {'dcase2020', 'dcase2024', 'dcase2025'}
        - ``dcase2020`` (2020-2023): ``frame,class,track,x,y,z`` (``coords='cartesian'``: the vectors as they are, in
          full precision, as the 2021-2023 baselines write; z 0 for 2-D vectors) or ``frame,class,track,azi,ele``
          (``'polar'``, degrees); no distance.
        - ``dcase2024``: the same with the distance in metres last (the 2024 baseline writes
          ``frame,class,0,x,y,z,dist``), headerless; needs ``inst.dist``.
        - ``dcase2025``: the header ``frame,class,source,azimuth,distance,onscreen``, then the azimuth in whole
          degrees (``atan2(y, x)``), the distance in whole cm and on-screen 0 (``write_to_dcase_output_format``:
          Python's ``round``, halves to even); needs ``inst.dist``.
    coords : {'cartesian', 'polar'}
        dcase2020 and dcase2024 only.

    Raises
    ------
    ValueError
        An unknown format or coords, a format that needs distances without them.
    """
    if fmt not in WRITE_FORMATS:
        raise ValueError(f'fmt={fmt!r} must be one of {", ".join(WRITE_FORMATS)}')
    if coords not in ('cartesian', 'polar'):
        raise ValueError(f"coords={coords!r} must be 'cartesian' or 'polar'")
    vec = np.asarray(inst.vec, dtype=np.float64)
    frame, cls, track = (np.asarray(a, dtype=np.int64) for a in (inst.frame, inst.cls, inst.track))
    if vec.ndim != 2 or vec.shape[1] not in (2, 3) or not frame.size == cls.size == track.size == vec.shape[0]:
        raise ValueError(f'instances: frame {frame.shape}, cls {cls.shape}, track {track.shape} and vec {vec.shape} '
                         'must describe the same rows, with 2-D or 3-D vectors')
    dist = None if inst.dist is None else np.asarray(inst.dist, dtype=np.float64)
    if fmt != 'dcase2020' and (dist is None or dist.shape != frame.shape):
        raise ValueError(f'{fmt} needs one distance per instance (instances.dist is '
                         f'{"None" if dist is None else dist.shape})')
    head = [f'{f},{c},{k}' for f, c, k in zip(frame.tolist(), cls.tolist(), track.tolist())]
    out = io.StringIO()
    if fmt == 'dcase2025':
        azi = np.round(np.rad2deg(np.arctan2(vec[:, 1], vec[:, 0]))).astype(np.int64)  # halves to even, as round()
        cm = np.round(dist * 100).astype(np.int64)
        out.write(DCASE2025_HEADER + '\n')
        for h, a, m in zip(head, azi.tolist(), cm.tolist()):
            out.write(f'{h},{a},{m},0\n')
    else:
        if coords == 'polar':
            azi, ele, _ = cart2sph(vec)
            cols = np.stack([azi, ele], axis=1)
        else:
            cols = vec if vec.shape[1] == 3 else np.concatenate([vec, np.zeros((vec.shape[0], 1))], axis=1)
        if fmt == 'dcase2024':
            cols = np.concatenate([cols, dist[:, None]], axis=1)
        for h, row in zip(head, cols.tolist()):
            out.write(h + ',' + ','.join(_num(x) for x in row) + '\n')
    write_text(path, out.getvalue())

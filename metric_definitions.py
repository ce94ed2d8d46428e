"""SELD metric definitions: the SELDnet paper's and each DCASE year's (2019-2025), as functions of frame-wise
matrices or DOA instance lists that return counts, and of accumulated counts that return scores.

docs/metrics.md is the reference: the conventions (shapes, units, segments), every definition with its source,
the undefined cases and what is not reproduced. The accumulator and the grid scorer are in :mod:`scoring`, the
scoring command in ``evaluation_metrics.py``. Vectorized: no per-frame Python loops.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from doa_matching import group_rows, match_groups, unique_inverse
from label_frames import Instances, as_sed, check_instances, doa_vectors, matrices_to_instances
from metric_dcase2025 import fold_azimuth, frame_level_counts_2025, frame_level_scores_2025, match_folded  # noqa: F401
from utils import SELDError, angular_distance_deg

DEFINITIONS = ('seld2018', 'seld2018_legacy', 'dcase2019', 'dcase2020', 'dcase2020_corrected', 'dcase2021',
               'dcase2022', 'dcase2024', 'dcase2024_nodist', 'dcase2025')
#: Definitions scored when none are named (dcase2024 is added where reference and prediction have distances).
DEFAULT_DEFINITIONS = ('seld2018', 'dcase2019', 'dcase2020', 'dcase2021', 'dcase2022')
#: Definitions that need distances in the reference and the prediction.
DISTANCE_DEFINITIONS = ('dcase2024', 'dcase2025')
#: Every definition that needs no distances.
NO_DISTANCE_DEFINITIONS = tuple(d for d in DEFINITIONS if d not in DISTANCE_DEFINITIONS)
AVERAGES = ('micro', 'macro')
#: Each year's default class averaging (the others pool counts by definition).
DEFAULT_AVERAGE = {'dcase2021': 'micro', 'dcase2022': 'macro', 'dcase2024': 'macro', 'dcase2024_nodist': 'macro',
                   'dcase2025': 'macro'}
#: The SELDnet paper's model frame rate, fs / hop = 44100 / 256.
PAPER_FRAME_RATE = 44100 / 256
EPS = float(np.finfo(float).eps)  # the official codes' eps, kept where it changes a value (2024 relative distance)
_SEGMENT_LA = ('dcase2020', 'dcase2020_corrected', 'dcase2021', 'dcase2022')


# ==================================================================================================
# Input checking and layout
# ==================================================================================================
def frames_per_segment(*, frame_rate: float, segment_len_s: float = 1.0) -> int:
    """Frames per segment: ``int(frame_rate * segment_len_s)`` (172 for 172.27 fps and 1 s).

    Parameters
    ----------
    frame_rate : float
        Frames per second.
    segment_len_s : float
        Segment length in seconds.
    """
    if not (frame_rate > 0 and segment_len_s > 0):
        raise ValueError(f'frame_rate={frame_rate} and segment_len_s={segment_len_s} must be > 0')
    n = int(frame_rate * segment_len_s + 1e-9)
    if n < 1:
        raise ValueError(f'segment_len_s={segment_len_s} holds no frame at {frame_rate} frames/s')
    return n


def _check_pair(ref_sed: np.ndarray, pred_sed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref = as_sed(ref_sed, 'ref_sed')
    pred = as_sed(pred_sed, 'pred_sed')
    if ref.shape != pred.shape:
        raise ValueError(f'ref_sed {ref.shape} and pred_sed {pred.shape} must have the same shape')
    return ref, pred


def _ratio(num: Any, den: Any, undefined: float) -> np.ndarray:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.full(np.broadcast(num, den).shape, undefined), where=den > 0)


def _nanmean(x: Any, axis: int | None = None) -> Any:
    """``np.nanmean`` without the warning: NaN where everything is NaN."""
    x = np.asarray(x, dtype=np.float64)
    n = np.sum(~np.isnan(x), axis=axis)
    return _ratio(np.nansum(x, axis=axis), n, np.nan)


# ==================================================================================================
# Segment-based SED (seld2018, seld2018_legacy, dcase2019)
# ==================================================================================================
def segment_activity(sed: np.ndarray, *, frames_per_segment: int, legacy: bool = False,
                     keep_partial: bool = True) -> np.ndarray:
    """Class activity per segment: active if active in ANY frame of the segment.

    Parameters
    ----------
    sed : np.ndarray [shape=(frames, classes)], values in {0, 1}
    frames_per_segment : int
        Segment ``s`` holds frames ``[s*n, (s+1)*n)``.
    legacy : bool
        Reproduce the original ``O[i*n : i*n+n-1]`` slicing (seld-net, DCASE 2019), which leaves out the last
        frame of every segment.
    keep_partial : bool
        Count a last, partial segment (True; seld-net's ER dropped it).

    Returns
    -------
    seg : np.ndarray [shape=(segments, classes)], bool
        ``segments = ceil(frames / n)`` (``floor`` if not ``keep_partial``).
    """
    arr = as_sed(sed, 'sed')
    n = int(frames_per_segment)
    if n < 1:
        raise ValueError(f'frames_per_segment={frames_per_segment} must be >= 1')
    T, C = arr.shape
    nb_seg = -(-T // n) if keep_partial else T // n
    padded = np.zeros((nb_seg * n, C), dtype=bool)
    m = min(T, nb_seg * n)
    padded[:m] = arr[:m]
    blocks = padded.reshape(nb_seg, n, C)
    if legacy:
        blocks = blocks[:, :n - 1]
    return blocks.any(axis=1)


def segment_counts(ref_seg: np.ndarray, pred_seg: np.ndarray) -> dict[str, int]:
    """Counts of the segment-based SED metrics from segment activity matrices.

    Parameters
    ----------
    ref_seg, pred_seg : np.ndarray [shape=(segments, classes)], bool

    Returns
    -------
    counts : dict
        ``tp, fp, fn, substitutions, deletions, insertions, n_ref, n_sys, segments`` (ints).
    """
    ref, pred = _check_pair(ref_seg, pred_seg)
    fn = (ref & ~pred).sum(axis=1)
    fp = (~ref & pred).sum(axis=1)
    return dict(tp=int((ref & pred).sum()), fp=int(fp.sum()), fn=int(fn.sum()), **sdi_counts(fn=fn, fp=fp),
                n_ref=int(ref.sum()), n_sys=int(pred.sum()), segments=int(ref.shape[0]))


def sdi_counts(*, fn: np.ndarray, fp: np.ndarray) -> dict[str, int]:
    """Substitutions, deletions and insertions from the misses and false alarms of each segment (or frame).

    Per segment ``S = min(FN, FP)``, ``D = max(0, FN - FP)``, ``I = max(0, FP - FN)`` (Mesaros et al. 2016), summed.

    Parameters
    ----------
    fn, fp : np.ndarray [shape=(segments,)], int
        Misses and false alarms of each segment, over its classes.

    Returns
    -------
    counts : dict
        ``substitutions, deletions, insertions`` (ints).
    """
    fn, fp = np.asarray(fn), np.asarray(fp)
    return dict(substitutions=int(np.minimum(fn, fp).sum()), deletions=int(np.maximum(0, fn - fp).sum()),
                insertions=int(np.maximum(0, fp - fn).sum()))


def error_rate(*, substitutions: float, deletions: float, insertions: float, n_ref: float) -> float:
    """``ER = (S + D + I) / N_ref``; with ``N_ref = 0`` the denominator is 1 (docs/metrics.md)."""
    return float((substitutions + deletions + insertions) / max(n_ref, 1))


def f_score(*, tp: float, fp: float, fn: float) -> float:
    """``F = 2 TP / (2 TP + FP + FN)``; 0 when the denominator is 0."""
    den = 2 * tp + fp + fn
    return float(2 * tp / den) if den > 0 else 0.0


def sed_scores(ref_sed: np.ndarray, pred_sed: np.ndarray, *, frames_per_segment: int,
               legacy: bool = False) -> dict[str, float]:
    """Segment-based error rate and F-score (the SELDnet paper, sed_eval's definitions).

    Parameters
    ----------
    ref_sed, pred_sed : np.ndarray [shape=(frames, classes)], values in {0, 1}
    frames_per_segment : int
        E.g. ``frames_per_segment(frame_rate=172.27, segment_len_s=1)`` = 172.
    legacy : bool
        The DCASE 2019 blocks, which leave out the last frame of each (:func:`segment_activity`).

    Returns
    -------
    scores : dict
        ``error_rate``, ``f_score`` and the counts of :func:`segment_counts`.
    """
    ref, pred = _check_pair(ref_sed, pred_sed)
    c = segment_counts(segment_activity(ref, frames_per_segment=frames_per_segment, legacy=legacy),
                       segment_activity(pred, frames_per_segment=frames_per_segment, legacy=legacy))
    return dict(error_rate=error_rate(substitutions=c['substitutions'], deletions=c['deletions'],
                                      insertions=c['insertions'], n_ref=c['n_ref']),
                f_score=f_score(tp=c['tp'], fp=c['fp'], fn=c['fn']), **c)


# ==================================================================================================
# Frame-wise DOA metrics (seld2018, seld2018_legacy) and frame recall
# ==================================================================================================
def frame_recall(ref_sed: np.ndarray, pred_sed: np.ndarray) -> float:
    """Share of frames whose number of predicted active classes equals the reference's.

    Parameters
    ----------
    ref_sed, pred_sed : np.ndarray [shape=(frames, classes)], values in {0, 1}

    Returns
    -------
    recall : float in [0, 1]; NaN for zero frames.
    """
    ref, pred = _check_pair(ref_sed, pred_sed)
    if ref.shape[0] == 0:
        return float('nan')
    return float(np.mean(ref.sum(axis=1) == pred.sum(axis=1)))


def _doa_pairs(ref_sed: np.ndarray, ref_doa: np.ndarray, pred_doa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference and predicted vectors of the reference-active (frame, class) pairs: [shape=(pairs, k)]."""
    ref = as_sed(ref_sed, 'ref_sed')
    C = ref.shape[1]
    rv, pv = doa_vectors(ref_doa, nb_classes=C), doa_vectors(pred_doa, nb_classes=C)
    if rv.shape != pv.shape or rv.shape[0] != ref.shape[0]:
        raise ValueError(f'ref_doa {np.shape(ref_doa)} and pred_doa {np.shape(pred_doa)} must both be '
                         f'({ref.shape[0]}, k*{C}) with the same k')
    rv, pv = rv[ref], pv[ref]
    if np.any(np.einsum('ij,ij->i', rv, rv) == 0):
        raise ValueError('ref_doa: a reference-active class has a zero DOA vector')
    return rv, pv


def _angle_counts(rv: np.ndarray, pv: np.ndarray, detected: np.ndarray) -> dict[str, float]:
    """Sums of the seld2018 DOA error over reference-active pairs: ``detected`` (predicted active) ones measured,
    the others counted as ``missing``."""
    ang = angular_distance_deg(rv[detected], pv[detected])
    return dict(angle_sum=float(ang.sum()), count=int(detected.sum()), missing=int((~detected).sum()))


def _chord_counts(rv: np.ndarray, pv: np.ndarray) -> dict[str, float]:
    return dict(chord_sum=float(np.linalg.norm(pv - rv, axis=1).sum()), count=int(rv.shape[0]))


def doa_error(ref_sed: np.ndarray, ref_doa: np.ndarray, pred_sed: np.ndarray, pred_doa: np.ndarray) -> float:
    """SELDnet DOA error (seld2018), angles averaged in degrees.

    ``mean over {(t, c): ref_sed[t, c] = 1 and pred_sed[t, c] = 1} of angle(ref_vec[t, c], pred_vec[t, c])``: the
    reference-active (frame, class) pairs that are also predicted active, with the predicted DOA of that class. A
    prediction file holds only the DOAs of predicted-active classes, so this is the quantity that the in-memory
    scorer and the scoring command both measure; the reference-active pairs without an estimate are counted apart
    (``doa_missing`` in :func:`definition_scores`). A predicted-active class with a zero vector is 90 degrees
    from everything.

    Parameters
    ----------
    ref_sed, pred_sed : np.ndarray [shape=(frames, classes)], values in {0, 1}
    ref_doa, pred_doa : np.ndarray [shape=(frames, 3*classes) or (frames, 2*classes)]

    Returns
    -------
    error : float, degrees in [0, 180]; NaN if no pair.
    """
    ref, pred = _check_pair(ref_sed, pred_sed)
    rv, pv = _doa_pairs(ref, ref_doa, pred_doa)
    c = _angle_counts(rv, pv, pred[ref])
    return c['angle_sum'] / c['count'] if c['count'] else float('nan')


def chord_to_degrees(chord: float) -> float:
    """Angle subtended by a chord of the unit sphere: ``2 arcsin(min(d / 2, 1))`` in degrees."""
    return float(np.rad2deg(2 * np.arcsin(min(chord / 2.0, 1.0))))


def doa_error_legacy(ref_sed: np.ndarray, ref_doa: np.ndarray, pred_doa: np.ndarray) -> float:
    """The original seld-net DOA error: chord lengths averaged, then converted to degrees.

    ``d = mean over {(t, c): ref_sed[t, c] = 1} of ||pred_vec[t, c] - ref_vec[t, c]||`` (raw predicted vectors),
    error = ``2 arcsin(min(d / 2, 1))`` in degrees: ``doa_loss_gt`` of ``compute_doa_scores_regr_xyz``/``_xy`` as
    converted in ``seld.py``; not the mean angle (seld-net issue #16), see :func:`doa_error`.

    Returns
    -------
    error : float, degrees; NaN if no reference-active pair.
    """
    c = _chord_counts(*_doa_pairs(ref_sed, ref_doa, pred_doa))
    return chord_to_degrees(c['chord_sum'] / c['count']) if c['count'] else float('nan')


def seld_score(*, error_rate: float, f_score: float, doa_error: float, recall: float) -> float:
    """``mean(ER, 1 - F, DOA / 180, 1 - recall)``; a NaN DOA error counts as 180 degrees.

    ``recall`` is the frame recall (seld2018, dcase2019) or the localization recall (DCASE 2020-2023).
    """
    doa = 180.0 if not np.isfinite(doa_error) else doa_error
    return float(np.mean([error_rate, 1.0 - f_score, doa / 180.0, 1.0 - recall]))


# ==================================================================================================
# The DCASE 2024 angle
# ==================================================================================================
def angle_dcase2024(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The DCASE 2024 code's angle in degrees: ``arccos(clip(a.b / (sqrt(|a|^2 + 1e-10) sqrt(|b|^2 + 1e-10))))``.

    Parameters
    ----------
    a, b : np.ndarray [shape=(..., 3)]

    Returns
    -------
    angle : np.ndarray [shape=(...)]; 8.1e-4 degrees for two equal unit vectors (the ``1e-10``).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    den = np.sqrt(np.sum(a * a, axis=-1) + 1e-10) * np.sqrt(np.sum(b * b, axis=-1) + 1e-10)
    return np.rad2deg(np.arccos(np.clip(np.sum(a * b, axis=-1) / den, -1.0, 1.0)))


# ==================================================================================================
# dcase2019: DOA error regardless of class and frame recall
# ==================================================================================================
def dcase2019_doa_counts(ref: Instances, pred: Instances, *, nb_frames: int) -> dict[str, float]:
    """Sums behind the DCASE 2019 DOA error and frame recall.

    Returns
    -------
    counts : dict
        ``dist_sum`` (degrees, Hungarian-matched per frame regardless of class), ``matched``, ``n_pred`` (all
        predicted DOAs), ``good_frames`` (frames with as many predicted as reference DOAs), ``frames``.
    """
    big = np.iinfo(np.int32).max
    ref = check_instances(ref, nb_frames=nb_frames, nb_classes=big, name='ref')
    pred = check_instances(pred, nb_frames=nb_frames, nb_classes=big, name='pred')
    m = match_groups(ref.frame, ref.vec, pred.frame, pred.vec)
    good = np.bincount(ref.frame, minlength=nb_frames) == np.bincount(pred.frame, minlength=nb_frames)
    return dict(dist_sum=float(m['dist'].sum()), matched=int(m['dist'].size), n_pred=int(pred.frame.size),
                good_frames=int(good.sum()), frames=int(nb_frames))


def doa_error_dcase2019(ref_sed: np.ndarray, ref_doa: np.ndarray, pred_sed: np.ndarray,
                        pred_doa: np.ndarray) -> float:
    """DCASE 2019 DOA error: per-frame Hungarian-matched angles summed / number of predicted DOAs.

    Parameters
    ----------
    ref_sed, ref_doa, pred_sed, pred_doa : np.ndarray
        Class-wise matrices, as for :func:`doa_error`.

    Returns
    -------
    error : float, degrees; NaN if no pair was matched (the official code returns 0).
    """
    ref, pred = _check_pair(ref_sed, pred_sed)
    c = dcase2019_doa_counts(matrices_to_instances(ref, ref_doa), matrices_to_instances(pred, pred_doa),
                             nb_frames=ref.shape[0])
    return c['dist_sum'] / c['n_pred'] if c['matched'] else float('nan')


# ==================================================================================================
# Location-aware detection and class-aware localization in segments (dcase2020 to dcase2022)
# ==================================================================================================
_LA_FIELDS = ('tp', 'fp', 'fp_spatial', 'fn', 'n_ref', 'n_sys', 'de_tp', 'de_fn', 'de_sum')


def _segment_matching(ref: Instances, pred: Instances, *, nb_frames: int, nb_classes: int,
                      frames_per_segment: int) -> dict[str, Any]:
    """What the segment-level definitions share: the largest number of simultaneous instances per segment and
    class, and the Hungarian matching per frame and class."""
    C, n = int(nb_classes), int(frames_per_segment)
    ref = check_instances(ref, nb_frames=nb_frames, nb_classes=C, name='ref')
    pred = check_instances(pred, nb_frames=nb_frames, nb_classes=C, name='pred')
    nb_seg = -(-int(nb_frames) // n)
    rkey, pkey = ref.frame * C + ref.cls, pred.frame * C + pred.cls
    _, ur, _, rc = group_rows(rkey)
    _, up, _, pc = group_rows(pkey)
    nb_gt = np.zeros(nb_seg * C, dtype=np.int64)
    nb_pr = np.zeros(nb_seg * C, dtype=np.int64)
    np.maximum.at(nb_gt, (ur // C) // n * C + ur % C, rc)
    np.maximum.at(nb_pr, (up // C) // n * C + up % C, pc)
    return dict(C=C, n=n, nb_seg=nb_seg, nb_gt=nb_gt, nb_pr=nb_pr, J=int(rc.max(initial=1)),
                m=match_groups(rkey, ref.vec, pkey, pred.vec))


def _segment_counts(prep: dict[str, Any], *, threshold: float, rule: str) -> dict[str, Any]:
    """Per-class counts of one segment-level rule: 'dcase2020', 'dcase2020_corrected' or 'tracks' (2021-2023)."""
    C, n, nb_seg, nb_gt, nb_pr, m = (prep[k] for k in ('C', 'n', 'nb_seg', 'nb_gt', 'nb_pr', 'm'))
    size = nb_seg * C

    def seg_class(key: np.ndarray) -> np.ndarray:
        return (key // C) // n * C + key % C

    gt, pr = nb_gt > 0, nb_pr > 0
    both = gt & pr
    if rule in ('dcase2020', 'dcase2020_corrected'):
        fk, inv = unique_inverse(m['key'])
        frame_dist = np.bincount(inv, m['dist'], minlength=fk.size)  # the official sum of the frame's pairs
        if rule == 'dcase2020_corrected':
            frame_dist = frame_dist / np.bincount(inv, minlength=fk.size)
        sc = seg_class(fk)
        seg_frames = np.bincount(sc, minlength=size)
        matched = both & (seg_frames > 0)
        avg = _ratio(np.bincount(sc, frame_dist, minlength=size), seg_frames, 0.0)
        tp = matched & (avg <= threshold)
        fn = (gt & ~pr) | (both & ~tp)
        fp = pr & ~gt
        per = dict(tp=tp, fp=fp, fp_spatial=np.zeros(size), fn=fn, n_ref=gt, n_sys=pr, de_tp=matched,
                   de_fn=gt & ~matched, de_sum=np.where(matched, avg, 0.0))
        loc_fn, loc_fp = fn.astype(np.int64), fp.astype(np.int64)
    elif rule == 'tracks':
        J = prep['J']
        tk, inv = unique_inverse(seg_class(m['key']) * J + m['ref_pos'])
        track_avg = np.bincount(inv, m['dist'], minlength=tk.size) / np.bincount(inv, minlength=tk.size)
        tsc = tk // J
        de_tp = np.bincount(tsc, minlength=size)
        tp = np.bincount(tsc, track_avg <= threshold, minlength=size).astype(np.int64)
        fp_spatial = de_tp - tp
        has = both & (de_tp > 0)
        fp = np.where(has, np.maximum(nb_pr - nb_gt, 0), 0) + np.where(pr & ~gt, nb_pr, 0)
        fn = (np.where(has, np.maximum(nb_gt - nb_pr, 0), 0) + np.where(both & ~has, nb_pr, 0)
              + np.where(gt & ~pr, nb_gt, 0))
        per = dict(tp=tp, fp=fp, fp_spatial=fp_spatial, fn=fn, n_ref=nb_gt, n_sys=nb_pr, de_tp=de_tp,
                   de_fn=fn, de_sum=np.bincount(tsc, track_avg, minlength=size))
        loc_fn, loc_fp = fn, fp + fp_spatial
    else:
        raise ValueError(f"rule={rule!r} must be 'dcase2020', 'dcase2020_corrected' or 'tracks'")
    loc_fn = loc_fn.reshape(nb_seg, C).sum(axis=1)
    loc_fp = loc_fp.reshape(nb_seg, C).sum(axis=1)
    counts: dict[str, Any] = {k: np.asarray(v, dtype=np.float64).reshape(nb_seg, C).sum(axis=0)
                              for k, v in per.items()}
    counts.update(sdi_counts(fn=loc_fn, fp=loc_fp))
    return counts


def _segment_rule(definition: str) -> str:
    if definition not in _SEGMENT_LA:
        raise ValueError(f'definition={definition!r} must be one of {_SEGMENT_LA}')
    return definition if definition.startswith('dcase2020') else 'tracks'


def location_aware_counts(ref: Instances, pred: Instances, *, nb_frames: int, nb_classes: int,
                          frames_per_segment: int, threshold: float = 20.0,
                          definition: str = 'dcase2022') -> dict[str, Any]:
    """Per-class counts of a segment-level DCASE definition (2020 to 2023) for one file (docs/metrics.md).

    Parameters
    ----------
    ref, pred : Instances
        Frame indices at the rate that ``frames_per_segment`` refers to.
    nb_frames : int
        Length of the file in frames (segments = ``ceil(nb_frames / frames_per_segment)``).
    nb_classes : int
    frames_per_segment : int
    threshold : float
        Degrees; a matched class-segment / track with mean distance <= threshold is a TP.
    definition : {'dcase2020', 'dcase2020_corrected', 'dcase2021', 'dcase2022'}
        dcase2021 and dcase2022 share their counts (they differ in the F-score and the averaging).

    Returns
    -------
    counts : dict
        Per-class float arrays [shape=(classes,)] ``tp, fp, fp_spatial, fn, n_ref, n_sys, de_tp, de_fn, de_sum``
        (degrees) and ints ``substitutions, deletions, insertions``.
    """
    prep = _segment_matching(ref, pred, nb_frames=nb_frames, nb_classes=nb_classes,
                             frames_per_segment=frames_per_segment)
    return _segment_counts(prep, threshold=threshold, rule=_segment_rule(definition))


def location_aware_scores(counts: dict[str, Any], *, definition: str = 'dcase2022',
                          average: str | None = None) -> dict[str, float]:
    """Scores from (accumulated) :func:`location_aware_counts`.

    Parameters
    ----------
    counts : dict
    definition : {'dcase2020', 'dcase2020_corrected', 'dcase2021', 'dcase2022'}
    average : {'micro', 'macro'}, optional
        dcase2021 / dcase2022 only (default: the year's, :data:`DEFAULT_AVERAGE`); dcase2020 pools by definition.

    Returns
    -------
    scores : dict
        ``error_rate, f_score, localization_error`` (degrees, NaN if nothing matched), ``localization_recall``
        (dcase2020: DE_F), ``seld_score``.
    """
    _segment_rule(definition)
    average = average or DEFAULT_AVERAGE.get(definition, 'micro')
    if average not in AVERAGES:
        raise ValueError(f'average={average!r} must be one of {AVERAGES}')
    c = {k: np.asarray(counts[k], dtype=np.float64) for k in _LA_FIELDS}
    er = error_rate(substitutions=counts['substitutions'], deletions=counts['deletions'],
                    insertions=counts['insertions'], n_ref=c['n_ref'].sum())
    le = float(_ratio(c['de_sum'].sum(), c['de_tp'].sum(), np.nan))
    if definition.startswith('dcase2020'):
        s = {k: v.sum() for k, v in c.items()}
        f = float(_ratio(2 * s['tp'], s['n_ref'] + s['n_sys'], 0.0))
        lr = float(_ratio(2 * s['de_tp'], s['n_ref'] + s['n_sys'], 0.0) if definition == 'dcase2020' else
                   _ratio(s['de_tp'], s['n_ref'], 0.0))
    else:
        if average == 'micro':
            c = {k: v.sum(keepdims=True) for k, v in c.items()}
        spatial = 0.5 if definition == 'dcase2021' else 1.0  # weight of a spatial miss in F
        f_c = _ratio(c['tp'], c['tp'] + spatial * c['fp_spatial'] + 0.5 * (c['fp'] + c['fn']), 0.0)
        le_c = _ratio(c['de_sum'], c['de_tp'], 180.0)  # the official per-class value without a DE_TP
        lr_c = _ratio(c['de_tp'], c['de_tp'] + c['de_fn'], 0.0)
        f, lr = float(f_c.mean()), float(lr_c.mean())
        le = float(le_c.mean()) if np.isfinite(le) else le
    return dict(error_rate=er, f_score=f, localization_error=le, localization_recall=lr,
                seld_score=seld_score(error_rate=er, f_score=f, doa_error=le, recall=lr))


# ==================================================================================================
# Frame-level location-aware detection with distances (dcase2024), or without (dcase2024_nodist)
# ==================================================================================================
_FL_FIELDS = ('tp', 'fp', 'fp_spatial', 'fn', 'n_ref', 'de_tp', 'de_fn', 'angle_sum', 'dist_sum', 'reldist_sum')


def frame_level_counts(ref: Instances, pred: Instances, *, nb_frames: int, nb_classes: int,
                       doa_threshold: float = 20.0, dist_threshold: float = math.inf,
                       reldist_threshold: float = 1.0, distances: bool = True) -> dict[str, Any]:
    """Per-class counts of the DCASE 2024 frame-level metrics for one file (docs/metrics.md).

    Parameters
    ----------
    ref, pred : Instances
        At the label rate (100-ms frames), both with ``dist`` in metres when ``distances``.
    nb_frames : int
    nb_classes : int
    doa_threshold : float
        Degrees; a matched pair farther is a spatial FP.
    dist_threshold, reldist_threshold : float
        Absolute (metres) and relative distance errors above which a matched pair is a spatial FP.
    distances : bool
        False: ``dcase2024_nodist``, the official code's ``eval_dist=False`` (distances, where given, are ignored;
        the distance sums stay 0).

    Returns
    -------
    counts : dict
        Per-class float arrays ``tp, fp, fp_spatial, fn, n_ref, de_tp, de_fn, angle_sum`` (degrees),
        ``dist_sum`` (metres), ``reldist_sum``; ints ``substitutions, deletions, insertions``.
    """
    C, T = int(nb_classes), int(nb_frames)
    ref = check_instances(ref, nb_frames=T, nb_classes=C, name='ref')
    pred = check_instances(pred, nb_frames=T, nb_classes=C, name='pred')
    for name, inst in (('reference', ref), ('prediction', pred)):
        if distances and inst.dist is None:
            raise ValueError(f'dcase2024: the {name} has no distances (the 2024 metric needs them on both sides; '
                             f'dcase2024_nodist scores without)')
    rkey, pkey = ref.frame * C + ref.cls, pred.frame * C + pred.cls
    n_ref = np.bincount(rkey, minlength=T * C)
    n_pred = np.bincount(pkey, minlength=T * C)
    m = match_groups(rkey, ref.vec, pkey, pred.vec, angle=angle_dcase2024)  # by angle only, as the official code
    if distances:
        d_ref = ref.dist[m['ref_row']]
        d_err = np.abs(d_ref - pred.dist[m['pred_row']])
        rel = d_err / (d_ref + EPS)
    else:
        d_err = rel = np.zeros(m['ref_row'].shape)
    miss = (m['dist'] > doa_threshold) | (d_err > dist_threshold) | (rel > reldist_threshold)
    both = (n_ref > 0) & (n_pred > 0)
    k = np.where(both, np.minimum(n_ref, n_pred), 0)
    fp_spatial = np.bincount(m['key'], miss, minlength=T * C)
    fp = np.maximum(n_pred - n_ref, 0)  # unmatched predictions: both present, or prediction only
    fn = np.maximum(n_ref - n_pred, 0)
    loc_fp = (fp + fp_spatial).reshape(T, C).sum(axis=1)
    loc_fn = fn.reshape(T, C).sum(axis=1)
    per_class = {k_: np.asarray(v, dtype=np.float64).reshape(T, C).sum(axis=0) for k_, v in
                 dict(tp=k - fp_spatial, fp=fp, fp_spatial=fp_spatial, fn=fn, n_ref=n_ref, de_tp=k, de_fn=fn).items()}
    cls = m['key'] % C
    per_class.update(angle_sum=np.bincount(cls, m['dist'], minlength=C), dist_sum=np.bincount(cls, d_err, minlength=C),
                     reldist_sum=np.bincount(cls, rel, minlength=C))
    per_class.update(sdi_counts(fn=loc_fn, fp=loc_fp))
    return per_class


def frame_level_scores(counts: dict[str, Any], *, average: str | None = None,
                       distances: bool = True) -> dict[str, float]:
    """DCASE 2024 scores from (accumulated) :func:`frame_level_counts`.

    Parameters
    ----------
    counts : dict
    average : {'micro', 'macro'}, optional
        Default 'macro' (the 2024 default).
    distances : bool
        As the counts were made. True: SELD = mean(1 - F, DOA / 180, relative distance error) per class (the 2024
        score); False (``dcase2024_nodist``, the official ``eval_dist=False``): mean(ER, 1 - F, DOA / 180, 1 - LR) per
        class, and no distance errors.

    Returns
    -------
    scores : dict
        ``error_rate, f_score, doa_error`` (degrees), ``distance_error`` (metres), ``relative_distance_error``
        (NaN where nothing was matched; with ``distances=False`` left out), ``localization_recall, seld_score``.
    """
    average = average or DEFAULT_AVERAGE['dcase2024']
    if average not in AVERAGES:
        raise ValueError(f'average={average!r} must be one of {AVERAGES}')
    c = {k: np.asarray(counts[k], dtype=np.float64) for k in _FL_FIELDS}
    er = error_rate(substitutions=counts['substitutions'], deletions=counts['deletions'],
                    insertions=counts['insertions'], n_ref=c['n_ref'].sum())
    if average == 'micro':
        c = {k: v.sum(keepdims=True) for k, v in c.items()}
    f_c = _ratio(c['tp'], c['tp'] + c['fp_spatial'] + 0.5 * (c['fp'] + c['fn']), 0.0)
    ang_c, dist_c, rel_c = (_ratio(c[k], c['de_tp'], np.nan) for k in ('angle_sum', 'dist_sum', 'reldist_sum'))
    lr_c = _ratio(c['de_tp'], c['de_tp'] + c['de_fn'], 0.0)
    if not distances:  # ER is one number, repeated per class as the official code does
        seld_c = _nanmean(np.stack(np.broadcast_arrays(er, 1.0 - f_c, ang_c / 180.0, 1.0 - lr_c)), axis=0)
        return dict(error_rate=er, f_score=float(f_c.mean()), doa_error=float(_nanmean(ang_c)),
                    localization_recall=float(lr_c.mean()), seld_score=float(seld_c.mean()))
    seld_c = _nanmean(np.stack([1.0 - f_c, ang_c / 180.0, rel_c]), axis=0)
    return dict(error_rate=er, f_score=float(f_c.mean()), doa_error=float(_nanmean(ang_c)),
                distance_error=float(_nanmean(dist_c)), relative_distance_error=float(_nanmean(rel_c)),
                localization_recall=float(lr_c.mean()), seld_score=float(seld_c.mean()))


# ==================================================================================================
# Every definition: one file's counts, accumulated counts' scores
# ==================================================================================================
def definition_counts(ref_sed: np.ndarray, ref_doa: np.ndarray, pred_sed: np.ndarray, pred_doa: np.ndarray, *,
                      definitions: Sequence[str], frames_per_segment: int, nb_classes: int | None = None,
                      ref_instances: Instances | None = None, pred_instances: Instances | None = None,
                      doa_threshold: float = 20.0, dist_threshold: float = math.inf,
                      reldist_threshold: float = 1.0) -> dict[str, dict[str, Any]]:
    """The counts of one file for each definition, at one frame rate (summed over files, they give the scores of
    :func:`definition_scores`).

    Parameters
    ----------
    ref_sed, pred_sed : np.ndarray [shape=(frames, classes)], values in {0, 1}
        Class-wise matrices: seld2018, seld2018_legacy and dcase2019 count these.
    ref_doa, pred_doa : np.ndarray [shape=(frames, 3*classes) or (frames, 2*classes)]
    definitions : sequence of str
        Any of :data:`DEFINITIONS`.
    frames_per_segment : int
        :func:`frames_per_segment` of the frame rate.
    nb_classes : int, optional
        The classes expected (a ValueError otherwise).
    ref_instances, pred_instances : Instances, optional
        The same file as instance lists (several instances of a class per frame allowed; ``dist`` in metres for
        dcase2024): dcase2020 to dcase2024 count these. Default: the matrices' active (frame, class) pairs.
    doa_threshold : float
        Degrees (DCASE 2020+).
    dist_threshold, reldist_threshold : float
        dcase2024: absolute (metres) and relative distance error thresholds.

    Returns
    -------
    counts : dict
        ``{definition: {count: int, float or per-class np.ndarray [shape=(classes,)]}}``.
    """
    ref, pred = _check_pair(ref_sed, pred_sed)
    T, C = ref.shape
    if nb_classes is not None and C != nb_classes:
        raise ValueError(f'ref_sed has {C} classes, expected nb_classes={nb_classes}')
    if (ref_instances is None) != (pred_instances is None):
        raise ValueError('give both ref_instances and pred_instances, or neither')
    rv, pv = _doa_pairs(ref, ref_doa, pred_doa)
    if ref_instances is None:
        ref_instances, pred_instances = matrices_to_instances(ref, ref_doa), matrices_to_instances(pred, pred_doa)
    fps = frames_per_segment
    prep: dict[str, Any] | None = None
    cache: dict[str, dict[str, Any]] = {}
    out: dict[str, dict[str, Any]] = {}
    for name in definitions:
        if name == 'seld2018':
            seg = segment_counts(segment_activity(ref, frames_per_segment=fps),
                                 segment_activity(pred, frames_per_segment=fps))
            out[name] = dict(seg, good_frames=int((ref.sum(1) == pred.sum(1)).sum()), frames=T,
                             **_angle_counts(rv, pv, pred[ref]))
        elif name == 'seld2018_legacy':
            er_c = segment_counts(segment_activity(ref, frames_per_segment=fps, legacy=True, keep_partial=False),
                                  segment_activity(pred, frames_per_segment=fps, legacy=True, keep_partial=False))
            f_c = segment_counts(segment_activity(ref, frames_per_segment=fps, legacy=True),
                                 segment_activity(pred, frames_per_segment=fps, legacy=True))
            out[name] = dict(substitutions=er_c['substitutions'], deletions=er_c['deletions'],
                             insertions=er_c['insertions'], n_ref=er_c['n_ref'], tp=f_c['tp'], fp=f_c['fp'],
                             fn=f_c['fn'], good_frames=int((ref.sum(1) == pred.sum(1)).sum()), frames=T,
                             **_chord_counts(rv, pv))
        elif name == 'dcase2019':
            seg = segment_counts(segment_activity(ref, frames_per_segment=fps, legacy=True),
                                 segment_activity(pred, frames_per_segment=fps, legacy=True))
            out[name] = dict(seg, **dcase2019_doa_counts(matrices_to_instances(ref, ref_doa),
                                                         matrices_to_instances(pred, pred_doa), nb_frames=T))
        elif name in DISTANCE_DEFINITIONS:
            counter = frame_level_counts if name == 'dcase2024' else frame_level_counts_2025
            try:
                out[name] = counter(ref_instances, pred_instances, nb_frames=T, nb_classes=C,
                                               doa_threshold=doa_threshold, dist_threshold=dist_threshold,
                                               reldist_threshold=reldist_threshold)
            except ValueError as err:
                raise SELDError(str(err)) from err
        elif name == 'dcase2024_nodist':
            out[name] = frame_level_counts(ref_instances, pred_instances, nb_frames=T, nb_classes=C,
                                           doa_threshold=doa_threshold, distances=False)
        else:
            rule = _segment_rule(name)
            if prep is None:
                prep = _segment_matching(ref_instances, pred_instances, nb_frames=T, nb_classes=C,
                                         frames_per_segment=fps)
            if rule not in cache:
                cache[rule] = _segment_counts(prep, threshold=doa_threshold, rule=rule)
            out[name] = cache[rule]
    return out


def definition_scores(name: str, counts: dict[str, Any], *, average: str | None = None) -> dict[str, float]:
    """Named scores of one definition from its (accumulated) :func:`definition_counts`.

    Parameters
    ----------
    name : str
        One of :data:`DEFINITIONS`.
    counts : dict
    average : {'micro', 'macro'}, optional
        Class averaging of dcase2021, dcase2022, dcase2024 (default: each year's, :data:`DEFAULT_AVERAGE`).

    Returns
    -------
    scores : dict of float
        seld2018, seld2018_legacy, dcase2019: ``error_rate, f_score, doa_error, frame_recall, seld_score``
        (seld2018 also ``doa_missing``: the reference-active (frame, class) pairs not predicted active, which its
        ``doa_error`` leaves out); dcase2020, dcase2020_corrected, dcase2021, dcase2022: ``error_rate, f_score,
        localization_error, localization_recall, seld_score``; dcase2024: ``error_rate, f_score, doa_error,
        distance_error, relative_distance_error, localization_recall, seld_score``; dcase2024_nodist: ``error_rate,
        f_score, doa_error, localization_recall, seld_score``; dcase2025: ``f_score,
        f_score_onscreen, doa_error, distance_error, relative_distance_error, onscreen_accuracy, f_error``. Angles
        in degrees, F and recalls in [0, 1].
    """
    n = counts
    if name in _SEGMENT_LA:
        return location_aware_scores(n, definition=name, average=average)
    if name in ('dcase2024', 'dcase2024_nodist'):
        return frame_level_scores(n, average=average, distances=name == 'dcase2024')
    if name == 'dcase2025':
        return frame_level_scores_2025(n, average=average or DEFAULT_AVERAGE['dcase2025'])
    er = error_rate(substitutions=n['substitutions'], deletions=n['deletions'], insertions=n['insertions'],
                    n_ref=n['n_ref'])
    f = f_score(tp=n['tp'], fp=n['fp'], fn=n['fn'])
    fr = n['good_frames'] / n['frames'] if n['frames'] else float('nan')
    if name == 'seld2018':
        doa = n['angle_sum'] / n['count'] if n['count'] else float('nan')
    elif name == 'seld2018_legacy':
        doa = chord_to_degrees(n['chord_sum'] / n['count']) if n['count'] else float('nan')
    else:
        doa = n['dist_sum'] / n['n_pred'] if n['matched'] else float('nan')
    res = dict(error_rate=er, f_score=f, doa_error=float(doa), frame_recall=float(fr),
               seld_score=seld_score(error_rate=er, f_score=f, doa_error=doa, recall=fr))
    if name == 'seld2018':
        res['doa_missing'] = float(n['missing'])
    return res

"""The DCASE 2025 Stereo SELD metric (``dcase2025``): frame-level location-aware detection on azimuth only, with
distances and on-screen flags, as DCASE2025_seld_baseline ``metrics.py`` computes it from its files.

:mod:`metric_definitions` scores it among the other definitions (``definition_counts`` / ``definition_scores``);
``benchmarks/compare_official_metrics.py`` checks it against the official code. Differences from 2024: the angle of
a pair is the difference of the azimuths folded onto the front (a stereo pair cannot tell front from back), the
pairs of a (frame, class) are matched on it, matched pairs compare on-screen flags, and the scores are F (with and
without the flags), the class-dependent DOA, distance and relative distance errors and the on-screen accuracy.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from doa_matching import group_rows
from label_frames import Instances, check_instances

EPS = float(np.finfo(float).eps)  # the official eps (relative distance, F)


def _per_match(total: np.ndarray, matched: np.ndarray) -> np.ndarray:
    """``total / matched`` per class, NaN where nothing was matched."""
    return np.divide(total, matched, out=np.full(np.shape(total), np.nan), where=matched > 0)


def _nanmean(x: np.ndarray) -> float:
    """The mean of the non-NaN values, NaN if there is none (``np.nanmean`` without its warning)."""
    x = np.asarray(x, dtype=np.float64)
    return float(np.nanmean(x)) if np.any(~np.isnan(x)) else math.nan


_FL25_FIELDS = ('tp', 'tp_onscreen', 'fp', 'fp_spatial', 'fp_spatial_onscreen', 'fn', 'de_tp', 'angle_sum',
                'dist_sum', 'reldist_sum', 'onscreen_sum')


def fold_azimuth(azi_deg: np.ndarray) -> np.ndarray:
    """An azimuth folded onto the front half-plane, ``[-90, 90]`` degrees: wrapped to ``[-180, 180)``, then
    ``a -> 180 - a`` above 90 and ``a -> -180 - a`` below -90 (a source behind at 150 degrees is heard at 30 by a
    stereo pair: front-back mirror images; DCASE2025_seld_baseline ``utils.py``: ``fold_az_angle``)."""
    a = (np.asarray(azi_deg, dtype=np.float64) + 180.0) % 360.0 - 180.0
    return np.where(a > 90.0, 180.0 - a, np.where(a < -90.0, -180.0 - a, a))


def match_folded(ref_key: np.ndarray, ref_azi: np.ndarray, pred_key: np.ndarray,
                 pred_azi: np.ndarray) -> dict[str, np.ndarray]:
    """Minimum-total ``|ref_azi - pred_azi|`` one-to-one matching within each group of equal keys, as the 2025
    code's ``least_distance_between_gt_pred`` (scipy's ``linear_sum_assignment``, rows in input order).

    On one axis, tied optima are the rule rather than the exception (for ``a <= c, d <= b``,
    ``|a - c| + |b - d| = |a - d| + |b - c|``), and which tied pairs are chosen changes the distance errors: groups
    of one reference and one prediction are paired at once; the groups with several instances on a side (same-class
    overlaps, a small share of the frames) are solved one by one with scipy, whose choice among ties the official
    code makes.

    Parameters
    ----------
    ref_key, pred_key : np.ndarray [shape=(n_ref,), (n_pred,)], int
    ref_azi, pred_azi : np.ndarray [shape=(n_ref,), (n_pred,)], degrees (folded)

    Returns
    -------
    pairs : dict of np.ndarray [shape=(pairs,)]
        ``key``, ``ref_row``, ``pred_row`` (indices into the inputs), ``dist`` (degrees).
    """
    ref_key, pred_key = np.asarray(ref_key, dtype=np.int64), np.asarray(pred_key, dtype=np.int64)
    ro, ur, rs, rc = group_rows(ref_key)
    po, up, ps, pc = group_rows(pred_key)
    common, ir, ip = np.intersect1d(ur, up, assume_unique=True, return_indices=True)
    single = (rc[ir] == 1) & (pc[ip] == 1)
    key, ref_row, pred_row = [common[single]], [ro[rs[ir[single]]]], [po[ps[ip[single]]]]
    for g in np.flatnonzero(~single):  # same-class overlaps only
        R = ro[rs[ir[g]]:rs[ir[g]] + rc[ir[g]]]
        P = po[ps[ip[g]]:ps[ip[g]] + pc[ip[g]]]
        i, j = linear_sum_assignment(np.abs(ref_azi[R][:, None] - pred_azi[P][None, :]))
        key.append(np.full(i.size, common[g])), ref_row.append(R[i]), pred_row.append(P[j])
    key, ref_row, pred_row = (np.concatenate(v).astype(np.int64) for v in (key, ref_row, pred_row))
    return dict(key=key, ref_row=ref_row, pred_row=pred_row, dist=np.abs(ref_azi[ref_row] - pred_azi[pred_row]))


def frame_level_counts_2025(ref: Instances, pred: Instances, *, nb_frames: int, nb_classes: int,
                            doa_threshold: float = 20.0, dist_threshold: float = math.inf,
                            reldist_threshold: float = 1.0) -> dict[str, Any]:
    """Per-class counts of the DCASE 2025 frame-level metrics for one file (DCASE2025_seld_baseline ``metrics.py``,
    ``SELDMetrics.update_seld_scores``).

    As :func:`metric_definitions.frame_level_counts` (2024), but the angle of a pair is the difference of the
    folded azimuths, ``|fold(azi_ref) - fold(azi_pred)|`` (:func:`fold_azimuth`; ``azi = atan2(y, x)``, elevations
    ignored), which is also what the reference and predicted instances of a (frame, class) are matched on
    (:func:`match_folded`), and on-screen flags are compared for every matched pair. The location-aware F is counted twice: with
    ``lad_req_onscreen=False`` (``tp``, ``fp_spatial``; the audio-only track) and with ``True`` (a matched pair
    whose flags differ is also a spatial FP: ``tp_onscreen``, ``fp_spatial_onscreen``; the audio-visual track).

    The official code compares the files' numbers: integer degrees and centimetres. Here azimuths are recovered
    from vectors (``atan2``, within 1e-13 degrees) and distances are metres: both are rounded, to 1e-9 degrees and
    1e-6 cm, and the distance errors computed in cm, so that a pair exactly at a threshold (20 degrees; a
    relative error of exactly 1) falls on the official side of it.

    Parameters
    ----------
    ref, pred : Instances
        At the label rate (100-ms frames), both with ``dist`` in metres; ``onscreen`` in {0, 1} or None (None: all
        0, as the audio-only baseline writes its predictions).
    nb_frames, nb_classes : int
    doa_threshold : float
        Degrees of folded azimuth; a matched pair farther is a spatial FP.
    dist_threshold, reldist_threshold : float
        Absolute (metres) and relative distance errors above which a matched pair is a spatial FP.

    Returns
    -------
    counts : dict
        Per-class float arrays ``tp, tp_onscreen, fp, fp_spatial, fp_spatial_onscreen, fn, de_tp, angle_sum``
        (degrees), ``dist_sum`` (metres), ``reldist_sum``, ``onscreen_sum`` (matched pairs with equal flags).
    """
    C, T = int(nb_classes), int(nb_frames)
    ref = check_instances(ref, nb_frames=T, nb_classes=C, name='ref')
    pred = check_instances(pred, nb_frames=T, nb_classes=C, name='pred')
    for name, inst in (('reference', ref), ('prediction', pred)):
        if inst.dist is None:
            raise ValueError(f'dcase2025: the {name} has no distances (the 2025 metric needs them on both sides)')
    r_on = np.zeros(ref.frame.size, np.int64) if ref.onscreen is None else ref.onscreen
    p_on = np.zeros(pred.frame.size, np.int64) if pred.onscreen is None else pred.onscreen
    r_az, p_az = (fold_azimuth(np.round(np.rad2deg(np.arctan2(v[:, 1], v[:, 0])), 9)) for v in (ref.vec, pred.vec))
    rkey, pkey = ref.frame * C + ref.cls, pred.frame * C + pred.cls
    n_ref = np.bincount(rkey, minlength=T * C)
    n_pred = np.bincount(pkey, minlength=T * C)
    m = match_folded(rkey, r_az, pkey, p_az)
    d_ref = np.round(ref.dist[m['ref_row']] * 100.0, 6)  # cm
    d_err = np.abs(d_ref - np.round(pred.dist[m['pred_row']] * 100.0, 6))
    rel = d_err / (d_ref + EPS)
    d_err = d_err / 100.0  # metres
    same_flag = r_on[m['ref_row']] == p_on[m['pred_row']]
    miss = (m['dist'] > doa_threshold) | (d_err > dist_threshold) | (rel > reldist_threshold)
    both = (n_ref > 0) & (n_pred > 0)
    k = np.where(both, np.minimum(n_ref, n_pred), 0)
    fp_spatial = np.bincount(m['key'], miss, minlength=T * C)
    fp_spatial_on = np.bincount(m['key'], miss | ~same_flag, minlength=T * C)
    per_class = {k_: np.asarray(v, dtype=np.float64).reshape(T, C).sum(axis=0) for k_, v in
                 dict(tp=k - fp_spatial, tp_onscreen=k - fp_spatial_on, fp=np.maximum(n_pred - n_ref, 0),
                      fp_spatial=fp_spatial, fp_spatial_onscreen=fp_spatial_on, fn=np.maximum(n_ref - n_pred, 0),
                      de_tp=k).items()}
    cls = m['key'] % C
    per_class.update(angle_sum=np.bincount(cls, m['dist'], minlength=C), dist_sum=np.bincount(cls, d_err, minlength=C),
                     reldist_sum=np.bincount(cls, rel, minlength=C),
                     onscreen_sum=np.bincount(cls, same_flag.astype(np.float64), minlength=C))
    return per_class


def frame_level_scores_2025(counts: dict[str, Any], *, average: str = 'macro') -> dict[str, float]:
    """DCASE 2025 scores from (accumulated) :func:`frame_level_counts_2025` (``SELDMetrics.compute_seld_scores``).

    Parameters
    ----------
    counts : dict
    average : {'micro', 'macro'}
        Class averaging (the 2025 default: 'macro').

    Returns
    -------
    scores : dict
        ``f_score`` (F at 20 degrees, no on-screen condition: the audio-only F), ``f_score_onscreen`` (the
        audio-visual F, flags required to agree), ``doa_error`` (degrees of folded azimuth), ``distance_error``
        (metres), ``relative_distance_error``, ``onscreen_accuracy`` (NaN where nothing was matched), and
        ``f_error = 1 - f_score``: the lower-is-better form of the F on which the 2025 baseline selects its model.
    """
    if average not in ('micro', 'macro'):
        raise ValueError(f"average={average!r} must be 'micro' or 'macro'")
    c = {k: np.asarray(counts[k], dtype=np.float64) for k in _FL25_FIELDS}
    if average == 'micro':
        c = {k: v.sum(keepdims=True) for k, v in c.items()}
    f_c = c['tp'] / (EPS + c['tp'] + c['fp_spatial'] + 0.5 * (c['fp'] + c['fn']))
    fo_c = c['tp_onscreen'] / (EPS + c['tp_onscreen'] + c['fp_spatial_onscreen'] + 0.5 * (c['fp'] + c['fn']))
    ang_c, dist_c, rel_c, on_c = (_per_match(c[k], c['de_tp']) for k in ('angle_sum', 'dist_sum', 'reldist_sum',
                                                                               'onscreen_sum'))
    f = float(f_c.mean())
    return dict(f_score=f, f_score_onscreen=float(fo_c.mean()), doa_error=float(_nanmean(ang_c)),
                distance_error=float(_nanmean(dist_c)), relative_distance_error=float(_nanmean(rel_c)),
                onscreen_accuracy=float(_nanmean(on_c)), f_error=1.0 - f)

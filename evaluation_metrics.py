"""SELD metrics: the SELDnet 2018 paper's, DCASE 2019, DCASE 2020 and DCASE 2021-2023, vectorized.

Every definition is a pure function of frame-wise matrices (or DOA instance lists) plus an
accumulator, :class:`SELDMetrics`, that sums *counts* over files (never averages per-file scores)
and returns named results. The file formats of the TUT-2018 and DCASE datasets are read and written
here, and ``python evaluation_metrics.py --ref DIR --pred DIR`` scores a folder of CSVs.

Data conventions
----------------
``sed`` : np.ndarray [shape=(frames, classes)], values in {0, 1}.
``doa`` : np.ndarray [shape=(frames, 3*classes)] in blocks ``[x_0..x_{C-1}, y_0.., z_0..]`` (unit
    vectors, zeros where inactive), or [shape=(frames, 2*classes)] ``[x.., y..]`` for azimuth-only
    models. 2-D and 3-D vectors go through the same code (angles between vectors).
Angles are in degrees: azimuth ``atan2(y, x)`` counter-clockwise from +x, elevation positive up.
Segments: ``frames_per_segment = int(frame_rate * segment_len_s)``, i.e. 172 frames for the paper's
44100/256 = 172.27 fps and 1-s segments, as the original ``nb_frames_1s = int(frame_rate)``; a
"1-s" segment is then 0.998 s long and segment ``s`` holds frames ``[s*fps, (s+1)*fps)``. The last,
partial segment counts.

Definitions (``SELDMetrics(definitions=...)``)
-----------------------------------------------
``seld2018``
    Adavanne et al., IEEE JSTSP 2019, Sec. V. Segment-based SED (sed_eval's definition, Mesaros et
    al. 2016) on segments where a class is active if it is active in ANY frame of the segment (every
    frame counts). Per segment ``FN = #(ref & ~pred)``, ``FP = #(~ref & pred)``, ``S = min(FN, FP)``,
    ``D = max(0, FN - FP)``, ``I = max(0, FP - FN)``; ``ER = sum(S + D + I) / N`` with ``N`` the
    number of active reference class-segments; ``F = 2 TP / (2 TP + FP + FN)`` (micro).
    DOA error: mean over (frame, class) pairs with the class active in the reference of the angle
    between the reference vector and the *predicted vector of the same class* (whatever the
    predicted activity, as in the original code); pairs whose predicted vector is zero (no estimate,
    e.g. a prediction read from a CSV) are left out and counted in :meth:`SELDMetrics.details`.
    Frame recall: share of frames where the number of predicted active classes equals the
    reference's. ``seld_score = mean(ER, 1 - F, DOA / 180, 1 - FR)``.
``seld2018_legacy``
    The original seld-net code (``evaluation_metrics.py`` + ``seld.py``), to compare with published
    numbers: segments are the blocks ``O[i*bs : i*bs+bs-1]`` (the last frame of every block is
    dropped - seld-net issue #16), ER uses ``floor(frames / bs)`` blocks (the last partial block is
    dropped) while F uses ``ceil``; DOA is ``2 arcsin(d / 2)`` in degrees of the mean Euclidean
    (chord) length ``d`` between the raw predicted and the reference vectors over reference-active
    (frame, class) pairs (chord lengths are averaged *before* conversion - issue #16; ``d / 2`` is
    clipped to 1). The original concatenated all test sequences before blocking; here each
    evaluated matrix is blocked on its own.
``dcase2019``
    Adavanne et al., DCASE 2019 task 3 baseline (``metrics/evaluation_metrics.py``,
    ``compute_doa_scores_regr``). SED ER/F as ``seld2018``. DOA: in each frame where both have
    sources, predicted and reference DOAs are matched by the Hungarian algorithm on the angular
    distance *regardless of class*; DOA error = sum of matched angles over all frames / total number
    of predicted DOAs (``np.sum(nb_src_pred_list)``). Unmatched predictions (more predicted than
    reference DOAs, or predictions in frames without reference) add to the denominator only, which
    lowers the error - reproduced on purpose. Frame recall as ``seld2018``.
``dcase2020``
    Politis et al., "Overview and evaluation of SELD in DCASE 2019", IEEE/ACM TASLP 2020, and the
    DCASE 2020 baseline (``metrics/SELD_evaluation_metrics.py``, location-aware detection of
    Mesaros et al., WASPAA 2019). For every segment and class: present in both -> the frames where
    both have the class are paired frame by frame; the segment's distance is the mean over those
    frames of the angle (with several same-class DOAs in a frame - not supported by the official
    code - the mean of the Hungarian-matched angles of that frame). It is a TP if <= ``threshold``,
    otherwise a FN; no common frame -> FN. Reference only -> FN; prediction only -> FP.
    ``ER_T = sum_seg (S + D + I) / N_ref``; ``F_T = 2 TP / (N_ref + N_sys)`` (the code's
    ``2PR/(P+R)``); ``LE_CD = sum(segment distances) / DE_TP`` over class-segments with a common
    frame; ``LR_CD = DE_TP / N_ref``. ``seld_score = mean(ER_T, 1 - F_T, LE_CD / 180, 1 - LR_CD)``.
``dcase2021``
    The DCASE 2021-2023 baselines (``SELD_evaluation_metrics.py``, segment level; the 2024 repository
    keeps it as ``SELDMetricsSegmentLevel``), multi-instance extension of Politis et al. 2020. Per
    segment and class with ``n_ref``/``n_pred`` = the largest number of simultaneous reference /
    predicted instances of the class in a frame of the segment: both present -> in every frame where
    both have instances they are matched by the Hungarian algorithm; matched distances are grouped
    by the reference instance's position in the frame ("track"), averaged over the segment, and each
    group is a DE_TP (distance added to LE) and a TP if <= ``threshold``, else a spatial FP; then
    ``n_pred > n_ref`` adds FPs and ``n_pred < n_ref`` adds FNs. No common frame -> ``n_pred`` FNs.
    Reference only -> ``n_ref`` FNs; prediction only -> ``n_pred`` FPs. Per segment S/D/I from the
    segment's FN and FP (spatial FPs included). ``N_ref = sum n_ref``.
    ``ER = sum (S + D + I) / N_ref``, ``F = TP / (TP + FP_spatial + (FP + FN) / 2)``,
    ``LE = sum distances / DE_TP``, ``LR = DE_TP / (DE_TP + DE_FN)`` (DE_FN = the FNs above).
    ``average='micro'`` pools classes; ``'macro'`` (the official default) averages F, LE, LR over
    ALL classes with ``LE_c = 180`` for a class without any DE_TP (so classes absent from the
    reference count as F = 0, LE = 180, LR = 0); ``'macro_present'`` averages over the classes
    present in the reference only, LE over those with a DE_TP (close to the 2024 code, which sets
    such LE to NaN and uses nanmean). ER is always the overall ER.

Conventions for undefined values (documented choices)
----------------------------------------------------
* ``N_ref = 0``: ``ER = (S + D + I) / 1``, i.e. 0 for an empty prediction and the number of
  inserted class-segments otherwise. (sed_eval and the DCASE code divide by ``N_ref + eps`` and
  report ~4.5e15 per insertion; sed_eval reports F = NaN.)
* ``2 TP + FP + FN = 0`` (nothing anywhere): ``F = 0`` (as the DCASE code). Empty prediction:
  ``F = 0``, ``ER = 1`` (deletions only).
* Localization recall with nothing in the reference: 0.
* DOA / localization error with no pair to measure: NaN in the results; the SELD score uses 180 for
  that term (the DCASE code's value), so the score stays finite. The JSON output writes NaN as null.
* A predicted active class with a zero DOA vector (DCASE definitions) is 90 degrees away from
  everything (:func:`utils.angular_distance_deg`); a reference active class must have a non-zero
  vector.

Quirks of the official code that are documented but NOT reproduced
------------------------------------------------------------------
* seld-net / DCASE 2019: block slicing ``[i*bs : i*bs+bs-1]`` drops a frame per segment (reproduced
  only in ``seld2018_legacy``); ``np.float`` (removed in numpy 1.24) and a leftover import of an
  interactive debugging shell make the original files fail to import today.
* DCASE 2020 code: the fourth metric it returns is ``DE_F = 2 DE_TP / (N_ref + N_sys)`` (an F-score),
  printed as "localization recall"; here LR_CD = DE_TP / N_ref as in the task definition. Its
  Cartesian distance clipped the chord to [-1, 1] before ``2 arcsin(d/2)``, capping errors at 60
  degrees; angles are used here. One DOA per class and frame is assumed (``np.squeeze``).
* DCASE 2021-2023 code: reference track ids are ignored (``gt_ids = np.arange(...)``, a TODO), so a
  "track" is the position of the DOA in the frame's list (file order) - reproduced; the no-common-
  frame case adds ``nb_pred_doas`` (not ``nb_gt_doas``) FNs - reproduced; a spatial miss counts as a
  FP in ER and with weight 1 (not 1/2) in F - reproduced. ``cls_compute_seld_results.py`` segments a
  file up to ``max(reference frame index)`` only, so predictions after the last reference event are
  never scored, and a last frame index that is a multiple of the segment length loses its segment -
  not reproduced: every frame of the given length is scored. An early 2022 revision sliced
  ``gt_arr[:, :-1]`` (track and azimuth used as the angles); later ones use ``[:, 1:]``.
* All DCASE code divides by ``x + eps`` (e.g. ``eps = 2.2e-16``); exact ratios are used here.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
from typing import Any, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from formats import (FORMAT_FRAME_RATE, FORMATS, Instances, as_sed as _as_sed, check_instances as _check_instances,
                     doa_vectors, instances_to_matrices, matrices_to_instances, read_instances, desc_class_names,
                     resample_matrices)
from utils import SELDError, angular_distance_deg, run_cli

DEFINITIONS = ('seld2018', 'seld2018_legacy', 'dcase2019', 'dcase2020', 'dcase2021')
AVERAGES = ('micro', 'macro', 'macro_present')
#: The SELDnet paper's model frame rate, fs / hop = 44100 / 256.
PAPER_FRAME_RATE = 44100 / 256
_MAX_PERMUTATIONS = 5040  # larger assignment problems go to scipy's linear_sum_assignment


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
    ref = _as_sed(ref_sed, 'ref_sed')
    pred = _as_sed(pred_sed, 'pred_sed')
    if ref.shape != pred.shape:
        raise ValueError(f'ref_sed {ref.shape} and pred_sed {pred.shape} must have the same shape')
    return ref, pred


# ==================================================================================================
# Segment-based SED (seld2018, dcase2019)
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
        Reproduce the original ``O[i*n : i*n+n-1]`` slicing, which leaves out the last frame of
        every segment (seld-net issue #16).
    keep_partial : bool
        Count a last, partial segment (True; the original ER dropped it, F kept it).

    Returns
    -------
    seg : np.ndarray [shape=(segments, classes)], bool
        ``segments = ceil(frames / n)`` (``floor`` if not ``keep_partial``).
    """
    arr = _as_sed(sed, 'sed')
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
    return dict(tp=int((ref & pred).sum()), fp=int(fp.sum()), fn=int(fn.sum()),
                substitutions=int(np.minimum(fn, fp).sum()), deletions=int(np.maximum(0, fn - fp).sum()),
                insertions=int(np.maximum(0, fp - fn).sum()), n_ref=int(ref.sum()), n_sys=int(pred.sum()),
                segments=int(ref.shape[0]))


def error_rate(*, substitutions: float, deletions: float, insertions: float, n_ref: float) -> float:
    """``ER = (S + D + I) / N_ref``; with ``N_ref = 0`` the denominator is 1 (module docstring)."""
    return float((substitutions + deletions + insertions) / max(n_ref, 1))


def f_score(*, tp: float, fp: float, fn: float) -> float:
    """``F = 2 TP / (2 TP + FP + FN)``; 0 when the denominator is 0."""
    den = 2 * tp + fp + fn
    return float(2 * tp / den) if den > 0 else 0.0


def sed_scores(ref_sed: np.ndarray, pred_sed: np.ndarray, *, frames_per_segment: int) -> dict[str, float]:
    """Segment-based error rate and F-score (the SELDnet paper, sed_eval's definitions).

    Parameters
    ----------
    ref_sed, pred_sed : np.ndarray [shape=(frames, classes)], values in {0, 1}
    frames_per_segment : int
        E.g. ``frames_per_segment(frame_rate=172.27, segment_len_s=1)`` = 172.

    Returns
    -------
    scores : dict
        ``error_rate``, ``f_score`` and the counts of :func:`segment_counts`.
    """
    ref, pred = _check_pair(ref_sed, pred_sed)
    c = segment_counts(segment_activity(ref, frames_per_segment=frames_per_segment),
                       segment_activity(pred, frames_per_segment=frames_per_segment))
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
    ref = _as_sed(ref_sed, 'ref_sed')
    C = ref.shape[1]
    rv, pv = doa_vectors(ref_doa, nb_classes=C), doa_vectors(pred_doa, nb_classes=C)
    if rv.shape != pv.shape or rv.shape[0] != ref.shape[0]:
        raise ValueError(f'ref_doa {np.shape(ref_doa)} and pred_doa {np.shape(pred_doa)} must both be '
                         f'({ref.shape[0]}, k*{C}) with the same k')
    rv, pv = rv[ref], pv[ref]
    if np.any(np.einsum('ij,ij->i', rv, rv) == 0):
        raise ValueError('ref_doa: a reference-active class has a zero DOA vector')
    return rv, pv


def doa_error_counts(ref_sed: np.ndarray, ref_doa: np.ndarray, pred_doa: np.ndarray) -> dict[str, float]:
    """Sums behind :func:`doa_error`: ``angle_sum`` (degrees), ``count`` and ``missing`` pairs."""
    return _angle_counts(*_doa_pairs(ref_sed, ref_doa, pred_doa))


def _angle_counts(rv: np.ndarray, pv: np.ndarray, ang: np.ndarray | None = None) -> dict[str, float]:
    valid = np.einsum('ij,ij->i', pv, pv) > 0
    ang = angular_distance_deg(rv[valid], pv[valid]) if ang is None else ang[valid]
    return dict(angle_sum=float(ang.sum()), count=int(valid.sum()), missing=int((~valid).sum()))


def doa_error(ref_sed: np.ndarray, ref_doa: np.ndarray, pred_doa: np.ndarray) -> float:
    """SELDnet DOA error, angles averaged in degrees (the correct version of the paper's metric).

    ``mean over {(t, c): ref_sed[t, c] = 1, pred vector != 0} of angle(ref_vec[t, c], pred_vec[t, c])``

    Parameters
    ----------
    ref_sed : np.ndarray [shape=(frames, classes)], values in {0, 1}
    ref_doa, pred_doa : np.ndarray [shape=(frames, 3*classes) or (frames, 2*classes)]
        The predicted DOA of every class is used whatever its predicted activity (as in the paper).

    Returns
    -------
    error : float, degrees in [0, 180]; NaN if no pair.
    """
    c = doa_error_counts(ref_sed, ref_doa, pred_doa)
    return c['angle_sum'] / c['count'] if c['count'] else float('nan')


def chord_to_degrees(chord: float) -> float:
    """Angle subtended by a chord of the unit sphere: ``2 arcsin(min(d / 2, 1))`` in degrees."""
    return float(np.rad2deg(2 * np.arcsin(min(chord / 2.0, 1.0))))


def doa_error_legacy_counts(ref_sed: np.ndarray, ref_doa: np.ndarray, pred_doa: np.ndarray) -> dict[str, float]:
    """Sums behind :func:`doa_error_legacy`: ``chord_sum`` and ``count``."""
    return _chord_counts(*_doa_pairs(ref_sed, ref_doa, pred_doa))


def _chord_counts(rv: np.ndarray, pv: np.ndarray) -> dict[str, float]:
    return dict(chord_sum=float(np.linalg.norm(pv - rv, axis=1).sum()), count=int(rv.shape[0]))


def doa_error_legacy(ref_sed: np.ndarray, ref_doa: np.ndarray, pred_doa: np.ndarray) -> float:
    """The original seld-net DOA error: chord lengths averaged, then converted to degrees.

    ``d = mean over {(t, c): ref_sed[t, c] = 1} of ||pred_vec[t, c] - ref_vec[t, c]||`` (raw,
    unnormalized predicted vectors), error = ``2 arcsin(min(d / 2, 1))`` in degrees. This is
    ``doa_loss_gt`` of ``compute_doa_scores_regr_xyz``/``_xy`` as converted in ``seld.py``; it is
    not the mean angle (seld-net issue #16), see :func:`doa_error`.

    Returns
    -------
    error : float, degrees; NaN if no reference-active pair.
    """
    c = doa_error_legacy_counts(ref_sed, ref_doa, pred_doa)
    return chord_to_degrees(c['chord_sum'] / c['count']) if c['count'] else float('nan')


def seld_score(*, error_rate: float, f_score: float, doa_error: float, recall: float) -> float:
    """``mean(ER, 1 - F, DOA / 180, 1 - recall)``; a NaN DOA error counts as 180 degrees.

    ``recall`` is the frame recall (seld2018, dcase2019) or the localization recall (DCASE 2020+).
    """
    doa = 180.0 if not np.isfinite(doa_error) else doa_error
    return float(np.mean([error_rate, 1.0 - f_score, doa / 180.0, 1.0 - recall]))


# ==================================================================================================
# DOA instance lists and the Hungarian matching (dcase2019, dcase2020, dcase2021)
# ==================================================================================================
def _instances(act: np.ndarray, vec: np.ndarray) -> Instances:
    t, c = np.nonzero(act)
    return Instances(t.astype(np.int64), c.astype(np.int64), np.zeros(t.size, dtype=np.int64), vec[t, c])


def _groups(key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stable sort order, unique keys, group starts (in sorted order) and counts; no sort if sorted."""
    if key.size and np.any(key[1:] < key[:-1]):
        order = np.argsort(key, kind='stable')
        key = key[order]
    else:
        order = np.arange(key.size)
    start = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]])) if key.size else np.zeros(0, np.int64)
    count = np.diff(np.append(start, key.size))
    return order, key[start], start, count


def _unique_inverse(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(key, return_inverse=True)``, without a sort when ``key`` is already sorted."""
    order, uniq, _, count = _groups(np.asarray(key, dtype=np.int64))
    inv = np.empty(order.size, dtype=np.int64)
    inv[order] = np.repeat(np.arange(uniq.size), count)
    return uniq, inv


def _injective_maps(n_from: int, n_to: int) -> np.ndarray:
    return np.array(list(itertools.permutations(range(n_to), n_from)), dtype=np.int64).reshape(-1, n_from)


def match_groups(ref_key: np.ndarray, ref_vec: np.ndarray, pred_key: np.ndarray,
                 pred_vec: np.ndarray) -> dict[str, np.ndarray]:
    """Minimum-total-angle one-to-one matching of reference and predicted DOAs within each group.

    Rows with the same key (e.g. a frame, or a frame and class) form a group; in every group present
    in both, ``min(a, b)`` pairs are chosen to minimise the summed angular distance (the Hungarian
    assignment of ``scipy.optimize.linear_sum_assignment``). Groups are processed by shape
    ``(a, b)``, all at once: ``1 x b`` and ``a x 1`` by an argmin, small problems by evaluating every
    injective assignment in one array operation, large ones (> 5040 assignments) with scipy.
    Tied optima may pair differently from scipy; the total is the same.

    Parameters
    ----------
    ref_key, pred_key : np.ndarray [shape=(n_ref,), (n_pred,)], int
    ref_vec, pred_vec : np.ndarray [shape=(n_ref, k), (n_pred, k)]

    Returns
    -------
    pairs : dict of np.ndarray [shape=(pairs,)]
        ``key``; ``ref_row``, ``pred_row`` (indices into the inputs); ``ref_pos`` (position of the
        reference row within its group, in input order); ``dist`` (degrees).
    """
    ref_key = np.asarray(ref_key, dtype=np.int64)
    pred_key = np.asarray(pred_key, dtype=np.int64)
    ref_vec = np.asarray(ref_vec, dtype=np.float64)
    pred_vec = np.asarray(pred_vec, dtype=np.float64)
    out: dict[str, list[np.ndarray]] = {k: [] for k in ('key', 'ref_row', 'pred_row', 'ref_pos', 'dist')}
    ro, ur, rs, rc = _groups(ref_key)
    po, up, ps, pc = _groups(pred_key)
    j = np.minimum(np.searchsorted(up, ur), max(up.size - 1, 0))
    ir = np.flatnonzero(up[j] == ur) if up.size else np.zeros(0, dtype=np.int64)
    ip = j[ir]
    common = ur[ir]
    a_all, b_all = rc[ir], pc[ip]
    shape_code = a_all * (int(b_all.max(initial=0)) + 1) + b_all
    for code in np.unique(shape_code):
        sel = np.flatnonzero(shape_code == code)
        a, b = int(a_all[sel[0]]), int(b_all[sel[0]])
        if a == 1 and b == 1:  # the common case: one DOA each, no assignment to solve
            r1, p1 = ro[rs[ir[sel]]], po[ps[ip[sel]]]
            for k, v in (('key', common[sel]), ('ref_row', r1), ('pred_row', p1), ('ref_pos', np.zeros_like(r1)),
                         ('dist', angular_distance_deg(ref_vec[r1], pred_vec[p1]))):
                out[k].append(v)
            continue
        R = ro[rs[ir[sel]][:, None] + np.arange(a)]  # (G, a) input rows
        P = po[ps[ip[sel]][:, None] + np.arange(b)]  # (G, b)
        cost = angular_distance_deg(ref_vec[R][:, :, None, :], pred_vec[P][:, None, :, :])  # (G, a, b)
        G, k = len(sel), min(a, b)
        if b == 1:
            ri = np.argmin(cost[:, :, 0], axis=1)[:, None]
            ci = np.zeros((G, 1), dtype=np.int64)
        elif a == 1:
            ri = np.zeros((G, 1), dtype=np.int64)
            ci = np.argmin(cost[:, 0, :], axis=1)[:, None]
        elif math.perm(max(a, b), k) <= _MAX_PERMUTATIONS:
            maps = _injective_maps(k, max(a, b))  # (M, k)
            ri = np.empty((G, k), dtype=np.int64)
            ci = np.empty((G, k), dtype=np.int64)
            step = max(1, 4_000_000 // (maps.size or 1))
            for lo in range(0, G, step):
                blk = cost[lo:lo + step]
                if a <= b:
                    tot = blk[:, np.arange(a)[None, :], maps].sum(-1)  # (g, M)
                    best = np.argmin(tot, axis=1)
                    ri[lo:lo + step], ci[lo:lo + step] = np.arange(a), maps[best]
                else:
                    tot = blk[:, maps, np.arange(b)[None, :]].sum(-1)
                    best = np.argmin(tot, axis=1)
                    ri[lo:lo + step], ci[lo:lo + step] = maps[best], np.arange(b)
        else:
            ri = np.empty((G, k), dtype=np.int64)
            ci = np.empty((G, k), dtype=np.int64)
            for g in range(G):
                r, c = linear_sum_assignment(cost[g])
                ri[g], ci[g] = r, c
        gi = np.repeat(np.arange(G), k)
        ri, ci = ri.ravel(), ci.ravel()
        out['key'].append(common[sel][gi])
        out['ref_row'].append(R[gi, ri])
        out['pred_row'].append(P[gi, ci])
        out['ref_pos'].append(ri)
        out['dist'].append(cost[gi, ri, ci])
    if not out['key']:
        return {k: np.zeros(0, dtype=np.float64 if k == 'dist' else np.int64) for k in out}
    return {k: np.concatenate(v) for k, v in out.items()}


def dcase2019_doa_counts(ref: Instances, pred: Instances, *, nb_frames: int) -> dict[str, float]:
    """Sums behind the DCASE 2019 DOA error and frame recall.

    Returns
    -------
    counts : dict
        ``dist_sum`` (degrees, Hungarian-matched per frame regardless of class), ``matched``,
        ``n_pred`` (all predicted DOAs), ``good_frames`` (frames with as many predicted DOAs as
        reference DOAs), ``frames``.
    """
    big = np.iinfo(np.int32).max
    ref = _check_instances(ref, nb_frames=nb_frames, nb_classes=big, name='ref')
    pred = _check_instances(pred, nb_frames=nb_frames, nb_classes=big, name='pred')
    m = match_groups(ref.frame, ref.vec, pred.frame, pred.vec)
    good = np.bincount(ref.frame, minlength=nb_frames) == np.bincount(pred.frame, minlength=nb_frames)
    return dict(dist_sum=float(m['dist'].sum()), matched=int(m['dist'].size), n_pred=int(pred.frame.size),
                good_frames=int(good.sum()), frames=int(nb_frames))


def doa_error_dcase2019(ref_sed: np.ndarray, ref_doa: np.ndarray, pred_sed: np.ndarray,
                        pred_doa: np.ndarray) -> float:
    """DCASE 2019 DOA error: per-frame Hungarian-matched angles summed / number of predicted DOAs.

    Parameters
    ----------
    ref_sed, pred_sed : np.ndarray [shape=(frames, classes)], values in {0, 1}
    ref_doa, pred_doa : np.ndarray [shape=(frames, 3*classes) or (frames, 2*classes)]

    Returns
    -------
    error : float, degrees; NaN if no pair was matched (the official code returns 0).
    """
    ref, pred = _check_pair(ref_sed, pred_sed)
    c = dcase2019_doa_counts(matrices_to_instances(ref, ref_doa), matrices_to_instances(pred, pred_doa),
                             nb_frames=ref.shape[0])
    return c['dist_sum'] / c['n_pred'] if c['matched'] else float('nan')


# ==================================================================================================
# Location-aware detection and class-aware localization (dcase2020, dcase2021)
# ==================================================================================================
_LA_FIELDS = ('tp', 'fp', 'fp_spatial', 'fn', 'n_ref', 'n_sys', 'de_tp', 'de_fn', 'de_sum')


def location_aware_counts(ref: Instances, pred: Instances, *, nb_frames: int, nb_classes: int,
                          frames_per_segment: int, threshold: float = 20.0,
                          variant: str = 'dcase2021') -> dict[str, Any]:
    """Per-class counts of the DCASE 2020 or 2021-2023 location-aware SELD metrics for one file.

    See the module docstring for the rules of each variant.

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
    variant : {'dcase2020', 'dcase2021'}

    Returns
    -------
    counts : dict
        Per-class int/float arrays [shape=(classes,)] ``tp, fp, fp_spatial, fn, n_ref, n_sys, de_tp,
        de_fn, de_sum`` (degrees) and scalars ``substitutions, deletions, insertions``.
    """
    if variant not in ('dcase2020', 'dcase2021'):
        raise ValueError(f"variant={variant!r} must be 'dcase2020' or 'dcase2021'")
    prep = _la_prepare(ref, pred, nb_frames=nb_frames, nb_classes=nb_classes, frames_per_segment=frames_per_segment)
    return _la_counts(prep, threshold=threshold, variant=variant)


def _la_prepare(ref: Instances, pred: Instances, *, nb_frames: int, nb_classes: int,
                frames_per_segment: int) -> dict[str, Any]:
    """What both location-aware variants share: instance counts per segment and class, and the
    Hungarian matching per frame and class."""
    C, n = int(nb_classes), int(frames_per_segment)
    ref = _check_instances(ref, nb_frames=nb_frames, nb_classes=C, name='ref')
    pred = _check_instances(pred, nb_frames=nb_frames, nb_classes=C, name='pred')
    nb_seg = -(-int(nb_frames) // n)
    size = nb_seg * C
    rkey, pkey = ref.frame * C + ref.cls, pred.frame * C + pred.cls
    _, ur, _, rc = _groups(rkey)
    _, up, _, pc = _groups(pkey)
    nb_gt = np.zeros(size, dtype=np.int64)
    nb_pr = np.zeros(size, dtype=np.int64)
    np.maximum.at(nb_gt, (ur // C) // n * C + ur % C, rc)
    np.maximum.at(nb_pr, (up // C) // n * C + up % C, pc)
    return dict(C=C, n=n, nb_seg=nb_seg, nb_gt=nb_gt, nb_pr=nb_pr, J=int(rc.max(initial=1)),
                m=match_groups(rkey, ref.vec, pkey, pred.vec))


def _la_prepare_matrices(ref: np.ndarray, pred: np.ndarray, ang_ref: np.ndarray, *,
                         frames_per_segment: int) -> dict[str, Any]:
    """:func:`_la_prepare` for class-wise matrices (one instance per frame and class): the Hungarian
    matching of a frame and class is the 1 x 1 pair itself. ``ang_ref`` are the angles of the
    reference-active pairs in ``np.nonzero(ref)`` order."""
    n = int(frames_per_segment)
    T, C = ref.shape
    both = pred[ref]
    seg = [segment_activity(x, frames_per_segment=n).astype(np.int64).ravel() for x in (ref, pred)]
    key = np.flatnonzero(ref)[both]
    return dict(C=C, n=n, nb_seg=-(-T // n), nb_gt=seg[0], nb_pr=seg[1], J=1,
                m=dict(key=key, ref_pos=np.zeros_like(key), dist=ang_ref[both]))


def _la_counts(prep: dict[str, Any], *, threshold: float, variant: str) -> dict[str, Any]:
    C, n, nb_seg, nb_gt, nb_pr, m = (prep[k] for k in ('C', 'n', 'nb_seg', 'nb_gt', 'nb_pr', 'm'))
    size = nb_seg * C

    def seg_class(key: np.ndarray) -> np.ndarray:
        return (key // C) // n * C + key % C

    gt, pr = nb_gt > 0, nb_pr > 0
    both = gt & pr
    if variant == 'dcase2020':
        fk, inv = _unique_inverse(m['key'])
        frame_dist = np.bincount(inv, m['dist'], minlength=fk.size) / np.bincount(inv, minlength=fk.size)
        sc = seg_class(fk)
        seg_sum = np.bincount(sc, frame_dist, minlength=size)
        seg_frames = np.bincount(sc, minlength=size)
        matched = both & (seg_frames > 0)
        avg = np.divide(seg_sum, seg_frames, out=np.zeros(size), where=seg_frames > 0)
        tp = matched & (avg <= threshold)
        fn = (gt & ~pr) | (both & ~tp)
        fp = pr & ~gt
        per = dict(tp=tp, fp=fp, fp_spatial=np.zeros(size), fn=fn, n_ref=gt, n_sys=pr, de_tp=matched,
                   de_fn=gt & ~matched, de_sum=np.where(matched, avg, 0.0))
        loc_fn, loc_fp = fn.astype(np.int64), fp.astype(np.int64)
    else:
        J = prep['J']
        tk, inv = _unique_inverse(seg_class(m['key']) * J + m['ref_pos'])
        track_avg = np.bincount(inv, m['dist'], minlength=tk.size) / np.bincount(inv, minlength=tk.size)
        tsc = tk // J
        de_tp = np.bincount(tsc, minlength=size)
        de_sum = np.bincount(tsc, track_avg, minlength=size)
        tp = np.bincount(tsc, track_avg <= threshold, minlength=size).astype(np.int64)
        fp_spatial = de_tp - tp
        has = both & (de_tp > 0)
        no_common = both & ~has
        fp = np.where(has, np.maximum(nb_pr - nb_gt, 0), 0) + np.where(pr & ~gt, nb_pr, 0)
        fn = (np.where(has, np.maximum(nb_gt - nb_pr, 0), 0) + np.where(no_common, nb_pr, 0)
              + np.where(gt & ~pr, nb_gt, 0))
        per = dict(tp=tp, fp=fp, fp_spatial=fp_spatial, fn=fn, n_ref=nb_gt, n_sys=nb_pr, de_tp=de_tp,
                   de_fn=fn, de_sum=de_sum)
        loc_fn, loc_fp = fn, fp + fp_spatial
    loc_fn = loc_fn.reshape(nb_seg, C).sum(axis=1)
    loc_fp = loc_fp.reshape(nb_seg, C).sum(axis=1)
    counts: dict[str, Any] = {k: np.asarray(v, dtype=np.float64).reshape(nb_seg, C).sum(axis=0)
                              for k, v in per.items()}
    counts.update(substitutions=int(np.minimum(loc_fn, loc_fp).sum()),
                  deletions=int(np.maximum(0, loc_fn - loc_fp).sum()),
                  insertions=int(np.maximum(0, loc_fp - loc_fn).sum()))
    return counts


def _ratio(num: np.ndarray, den: np.ndarray, undefined: float) -> np.ndarray:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.full(np.broadcast(num, den).shape, undefined), where=den > 0)


def location_aware_scores(counts: dict[str, Any], *, variant: str = 'dcase2021',
                          average: str = 'macro') -> dict[str, float]:
    """Scores from (accumulated) :func:`location_aware_counts`.

    Parameters
    ----------
    counts : dict
    variant : {'dcase2020', 'dcase2021'}
        dcase2020 is micro-averaged by definition (``average`` is ignored).
    average : {'micro', 'macro', 'macro_present'}
        See the module docstring.

    Returns
    -------
    scores : dict
        ``error_rate, f_score, localization_error`` (degrees, NaN if undefined),
        ``localization_recall, seld_score``.
    """
    if average not in AVERAGES:
        raise ValueError(f'average={average!r} must be one of {AVERAGES}')
    c = {k: np.asarray(counts[k], dtype=np.float64) for k in _LA_FIELDS}
    er = error_rate(substitutions=counts['substitutions'], deletions=counts['deletions'],
                    insertions=counts['insertions'], n_ref=c['n_ref'].sum())
    if variant == 'dcase2020' or average == 'micro':
        s = {k: v.sum() for k, v in c.items()}
        if variant == 'dcase2020':
            f = float(_ratio(2 * s['tp'], s['n_ref'] + s['n_sys'], 0.0))
            lr = float(_ratio(s['de_tp'], s['n_ref'], 0.0))
        else:
            f = float(_ratio(s['tp'], s['tp'] + s['fp_spatial'] + 0.5 * (s['fp'] + s['fn']), 0.0))
            lr = float(_ratio(s['de_tp'], s['de_tp'] + s['de_fn'], 0.0))
        le = float(_ratio(s['de_sum'], s['de_tp'], np.nan))
    else:
        f_c = _ratio(c['tp'], c['tp'] + c['fp_spatial'] + 0.5 * (c['fp'] + c['fn']), 0.0)
        le_c = _ratio(c['de_sum'], c['de_tp'], np.nan)
        lr_c = _ratio(c['de_tp'], c['de_tp'] + c['de_fn'], 0.0)
        if average == 'macro':
            f, le, lr = float(f_c.mean()), float(np.where(np.isnan(le_c), 180.0, le_c).mean()), float(lr_c.mean())
        else:
            present = c['n_ref'] > 0
            f = float(f_c[present].mean()) if present.any() else 0.0
            lr = float(lr_c[present].mean()) if present.any() else 0.0
            le_p = le_c[present & ~np.isnan(le_c)]
            le = float(le_p.mean()) if le_p.size else float('nan')
    return dict(error_rate=er, f_score=f, localization_error=le, localization_recall=lr,
                seld_score=seld_score(error_rate=er, f_score=f, doa_error=le, recall=lr))


# ==================================================================================================
# The accumulator
# ==================================================================================================
class SELDMetrics:
    """Accumulate SELD metrics over files, sed_eval style: :meth:`evaluate` per file, then :meth:`results`.

    Counts and sums are accumulated, so the results equal those of one evaluation of all files
    concatenated (with segments restarting at every file).

    Parameters
    ----------
    nb_classes : int
    frame_rate : float
        Frames per second of the matrices given to :meth:`evaluate` (the model's, 44100/256 in the
        paper). All definitions are computed at this rate.
    segment_len_s : float
        Segment length for ER/F (and the location-aware segments): ``int(frame_rate *
        segment_len_s)`` frames.
    doa_threshold : float
        Degrees, for dcase2020 / dcase2021.
    definitions : sequence of str
        Any of ``DEFINITIONS``.
    average : {'micro', 'macro', 'macro_present'}
        Class averaging of dcase2021 (dcase2020 is micro by definition).

    Examples
    --------
    >>> m = SELDMetrics(nb_classes=11, frame_rate=44100 / 256)
    >>> for ref_sed, ref_doa, pred_sed, pred_doa in files:   # doctest: +SKIP
    ...     m.evaluate(ref_sed, ref_doa, pred_sed, pred_doa)
    >>> m.results()['seld2018']['seld_score']                 # doctest: +SKIP
    """

    def __init__(self, *, nb_classes: int, frame_rate: float, segment_len_s: float = 1.0,
                 doa_threshold: float = 20.0, definitions: Sequence[str] = DEFINITIONS,
                 average: str = 'macro') -> None:
        unknown = [d for d in definitions if d not in DEFINITIONS]
        if unknown:
            raise ValueError(f'definitions {unknown} are not among {DEFINITIONS}')
        if average not in AVERAGES:
            raise ValueError(f'average={average!r} must be one of {AVERAGES}')
        if int(nb_classes) < 1:
            raise ValueError(f'nb_classes={nb_classes} must be >= 1')
        if not doa_threshold >= 0:
            raise ValueError(f'doa_threshold={doa_threshold} must be >= 0 degrees')
        self.nb_classes = int(nb_classes)
        self.frame_rate = float(frame_rate)
        self.segment_len_s = float(segment_len_s)
        self.frames_per_segment = frames_per_segment(frame_rate=frame_rate, segment_len_s=segment_len_s)
        self.doa_threshold = float(doa_threshold)
        self.definitions = tuple(dict.fromkeys(definitions))
        self.average = average
        self.reset()

    def reset(self) -> None:
        """Forget every evaluated file."""
        self._n: dict[str, Any] = {}
        self.nb_files = 0

    def _add(self, name: str, counts: dict[str, Any]) -> None:
        acc = self._n.setdefault(name, {})
        for k, v in counts.items():
            acc[k] = acc[k] + v if k in acc else (np.array(v, dtype=np.float64) if np.ndim(v) else v)

    def evaluate(self, ref_sed: np.ndarray, ref_doa: np.ndarray, pred_sed: np.ndarray, pred_doa: np.ndarray,
                 *, ref_instances: Instances | None = None, pred_instances: Instances | None = None) -> None:
        """Add one file.

        Parameters
        ----------
        ref_sed, pred_sed : np.ndarray [shape=(frames, classes)], values in {0, 1}
        ref_doa, pred_doa : np.ndarray [shape=(frames, 3*classes) or (frames, 2*classes)]
        ref_instances, pred_instances : Instances, optional
            The same file as instance lists at ``frame_rate`` (several instances of a class per
            frame allowed); if given, dcase2019/2020/2021 use them instead of the matrices.
        """
        ref, pred = _check_pair(ref_sed, pred_sed)
        T, C = ref.shape
        if C != self.nb_classes:
            raise ValueError(f'ref_sed has {C} classes, expected nb_classes={self.nb_classes}')
        if (ref_instances is None) != (pred_instances is None):
            raise ValueError('give both ref_instances and pred_instances, or neither')
        rvec, pvec = doa_vectors(ref_doa, nb_classes=C), doa_vectors(pred_doa, nb_classes=C)
        if rvec.shape != pvec.shape or rvec.shape[0] != T:
            raise ValueError(f'ref_doa {np.shape(ref_doa)} and pred_doa {np.shape(pred_doa)} must both be '
                             f'({T}, k*{C}) with the same k')
        rv, pv = rvec[ref], pvec[ref]
        if np.any(np.einsum('ij,ij->i', rv, rv) == 0):
            raise ValueError('ref_doa: a reference-active class has a zero DOA vector')
        ang_ref = angular_distance_deg(rv, pv)
        if ref_instances is not None:
            ri, pi = ref_instances, pred_instances
        elif 'dcase2019' in self.definitions:
            ri, pi = _instances(ref, rvec), _instances(pred, pvec)
        fps = self.frames_per_segment
        if {'seld2018', 'dcase2019'} & set(self.definitions):
            seg = segment_counts(segment_activity(ref, frames_per_segment=fps),
                                 segment_activity(pred, frames_per_segment=fps))
        good = int((ref.sum(axis=1) == pred.sum(axis=1)).sum())
        prep = None
        for name in self.definitions:
            if name == 'seld2018':
                self._add(name, dict(seg, good_frames=good, frames=T, **_angle_counts(rv, pv, ang_ref)))
            elif name == 'seld2018_legacy':
                er_c = segment_counts(segment_activity(ref, frames_per_segment=fps, legacy=True, keep_partial=False),
                                      segment_activity(pred, frames_per_segment=fps, legacy=True, keep_partial=False))
                f_c = segment_counts(segment_activity(ref, frames_per_segment=fps, legacy=True),
                                     segment_activity(pred, frames_per_segment=fps, legacy=True))
                self._add(name, dict(substitutions=er_c['substitutions'], deletions=er_c['deletions'],
                                     insertions=er_c['insertions'], n_ref=er_c['n_ref'], tp=f_c['tp'],
                                     fp=f_c['fp'], fn=f_c['fn'], good_frames=good, frames=T,
                                     **_chord_counts(rv, pv)))
            elif name == 'dcase2019':
                self._add(name, dict(seg, **dcase2019_doa_counts(ri, pi, nb_frames=T)))
            else:
                if prep is None and ref_instances is not None:
                    prep = _la_prepare(ri, pi, nb_frames=T, nb_classes=C, frames_per_segment=fps)
                elif prep is None:
                    prep = _la_prepare_matrices(ref, pred, ang_ref, frames_per_segment=fps)
                self._add(name, _la_counts(prep, threshold=self.doa_threshold, variant=name))
        self.nb_files += 1

    def details(self) -> dict[str, dict[str, Any]]:
        """The accumulated counts per definition (per-class arrays as lists)."""
        return {name: {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in acc.items()}
                for name, acc in self._n.items()}

    def results(self) -> dict[str, dict[str, float]]:
        """Named scores per definition (flat dicts of floats; angles in degrees, F and recalls in [0, 1]).

        Returns
        -------
        results : dict
            ``{'seld2018': {'error_rate', 'f_score', 'doa_error', 'frame_recall', 'seld_score'},
            'seld2018_legacy': {same}, 'dcase2019': {same}, 'dcase2020': {'error_rate', 'f_score',
            'localization_error', 'localization_recall', 'seld_score'}, 'dcase2021': {same}}``.
        """
        if self.nb_files == 0:
            raise SELDError('SELDMetrics.results(): no file was evaluated')
        res: dict[str, dict[str, float]] = {}
        for name in self.definitions:
            n = self._n[name]
            if name in ('dcase2020', 'dcase2021'):
                res[name] = location_aware_scores(n, variant=name, average=self.average)
                continue
            er = error_rate(substitutions=n['substitutions'], deletions=n['deletions'],
                            insertions=n['insertions'], n_ref=n['n_ref'])
            f = f_score(tp=n['tp'], fp=n['fp'], fn=n['fn'])
            fr = n['good_frames'] / n['frames'] if n['frames'] else float('nan')
            if name == 'seld2018':
                doa = n['angle_sum'] / n['count'] if n['count'] else float('nan')
            elif name == 'seld2018_legacy':
                doa = chord_to_degrees(n['chord_sum'] / n['count']) if n['count'] else float('nan')
            else:
                doa = n['dist_sum'] / n['n_pred'] if n['matched'] else float('nan')
            res[name] = dict(error_rate=er, f_score=f, doa_error=float(doa), frame_recall=float(fr),
                             seld_score=seld_score(error_rate=er, f_score=f, doa_error=doa, recall=fr))
        return res


def flatten_results(res: dict[str, dict[str, float]]) -> dict[str, float]:
    """``{'seld2018': {'error_rate': x}}`` -> ``{'seld2018/error_rate': x}``."""
    return {f'{name}/{k}': v for name, values in res.items() for k, v in values.items()}


# ==================================================================================================
# Command line: score a folder of predictions against a folder of references
# ==================================================================================================
def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _csv_files(folder: str, label: str) -> dict[str, str]:
    if not os.path.isdir(folder):
        raise SELDError(f'{folder}: {label} folder not found')
    files = {os.path.splitext(n)[0]: os.path.join(folder, n) for n in sorted(os.listdir(folder))
             if n.lower().endswith('.csv')}
    if not files:
        raise SELDError(f'{folder}: no .csv files in the {label} folder')
    return files


def _table(res: dict[str, dict[str, float]]) -> str:
    cols = ['error_rate', 'f_score', 'doa_error', 'frame_recall', 'localization_error', 'localization_recall',
            'seld_score']
    short = ['ER', 'F', 'DOA', 'FR', 'LE', 'LR', 'SELD']
    lines = [f'{"definition":<16}' + ''.join(f'{s:>8}' for s in short)]
    for name, vals in res.items():
        cells = [f'{vals[c]:8.3f}' if c in vals and vals[c] is not None and math.isfinite(vals[c]) else
                 (f'{"nan":>8}' if c in vals else f'{"-":>8}') for c in cols]
        lines.append(f'{name:<16}' + ''.join(cells))
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    """Score prediction CSVs against reference CSVs (paired by file stem); JSON on stdout."""
    p = argparse.ArgumentParser(
        prog='evaluation_metrics.py', description=main.__doc__,
        epilog='Example: python evaluation_metrics.py --ref metadata_dev --pred results --format dcase2020 '
               '--nb-classes 14 --metrics dcase2020 dcase2021')
    p.add_argument('--ref', required=True, help='folder of reference CSVs')
    p.add_argument('--pred', required=True, help='folder of prediction CSVs (same file stems)')
    p.add_argument('--format', required=True, choices=FORMATS, help='CSV format of both folders')
    p.add_argument('--metrics', nargs='+', default=['seld2018', 'dcase2019', 'dcase2020', 'dcase2021'],
                   choices=DEFINITIONS, help='definitions to compute (default: all but seld2018_legacy)')
    p.add_argument('--nb-classes', type=int, help='number of classes (required for the DCASE formats)')
    p.add_argument('--classes', help='tut2018: comma-separated class names in index order '
                                     '(default: the sorted names found in the reference files)')
    p.add_argument('--real', action='store_true', help='tut2018: REAL dataset class naming')
    p.add_argument('--frame-rate', type=float,
                   help='frames/s at which files are scored (default: the format\'s, 50 or 10; '
                        f'tut2018: {PAPER_FRAME_RATE:.2f})')
    p.add_argument('--nb-frames', type=int, help='frames per file at --frame-rate (default: up to the last row '
                                                 'of either file)')
    p.add_argument('--segment-len', type=float, default=1.0, help='segment length in seconds (default 1)')
    p.add_argument('--threshold', type=float, default=20.0, help='DOA threshold in degrees (default 20)')
    p.add_argument('--average', choices=AVERAGES, default='macro', help='class averaging of dcase2021')
    a = p.parse_args(argv)

    ref_files, pred_files = _csv_files(a.ref, 'reference'), _csv_files(a.pred, 'prediction')
    if set(ref_files) != set(pred_files):
        only_ref, only_pred = sorted(set(ref_files) - set(pred_files)), sorted(set(pred_files) - set(ref_files))
        raise SELDError(f'file sets differ: without prediction {only_ref}; without reference {only_pred}')
    naming = 'real' if a.real else 'tut'
    if a.format == 'tut2018':
        classes = [c.strip() for c in a.classes.split(',')] if a.classes else desc_class_names(ref_files.values(),
                                                                                             naming=naming)
        nb_classes, rate = len(classes), a.frame_rate or PAPER_FRAME_RATE
    else:
        if a.nb_classes is None:
            raise SELDError(f'--nb-classes is required for the {a.format} format')
        classes, nb_classes = None, a.nb_classes
        rate = a.frame_rate or FORMAT_FRAME_RATE[a.format]
    m = SELDMetrics(nb_classes=nb_classes, frame_rate=rate, segment_len_s=a.segment_len,
                    doa_threshold=a.threshold, definitions=a.metrics, average=a.average)
    src_rate = rate if a.format == 'tut2018' else FORMAT_FRAME_RATE[a.format]
    for stem in sorted(ref_files):
        insts = [read_instances(f[stem], fmt=a.format, nb_classes=nb_classes, classes=classes, frame_rate=rate,
                                naming=naming) for f in (ref_files, pred_files)]
        last = max(int(i.frame.max(initial=-1)) for i in insts) + 1
        if math.isclose(src_rate, rate):
            T = a.nb_frames if a.nb_frames is not None else last
            if last > T:
                raise SELDError(f'{stem}: a row has frame {last - 1}, beyond --nb-frames {T}')
            (rs, rd), (ps, pd) = [instances_to_matrices(i, nb_classes=nb_classes, nb_frames=T, same_class='mean')
                                  for i in insts]
            m.evaluate(rs, rd, ps, pd, ref_instances=insts[0], pred_instances=insts[1])
        else:
            T = a.nb_frames if a.nb_frames is not None else int(math.ceil(last * rate / src_rate - 1e-9))
            (rs, rd), (ps, pd) = [resample_matrices(*instances_to_matrices(i, nb_classes=nb_classes, nb_frames=last,
                                                                           same_class='mean'),
                                                    frame_rate=src_rate, out_frame_rate=rate, rule='any',
                                                    nb_frames_out=T)
                                  for i in insts]
            m.evaluate(rs, rd, ps, pd)
    res = m.results()
    print(f'{m.nb_files} files, {rate:.2f} frames/s, {m.frames_per_segment} frames per segment, '
          f'threshold {a.threshold:g} deg, average {a.average}', file=sys.stderr)
    print(_table(res), file=sys.stderr)
    print(json.dumps(_json_safe(res), indent=2, sort_keys=True))
    return 0


if __name__ == '__main__':
    run_cli(main)

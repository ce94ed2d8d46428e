"""Tests of evaluation_metrics.py against hand counts, sed_eval and slow per-frame references.

The ``slow_*`` / ``official_*`` functions below are the oracles: obvious loops over frames, and ports
of the official DCASE 2020 / 2021-2023 ``update_seld_scores`` logic on their dict structures. The
benchmark (benchmarks/bench_metrics.py) times the vectorized code against them.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

import evaluation_metrics as em
import formats
from utils import SELDError, sph2cart

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
X, Y, Z = np.eye(3)


# ==================================================================================================
# Independent slow references (loops allowed here)
# ==================================================================================================
def _angle(u, v):
    """Great-circle angle in degrees via spherical coordinates (the DCASE code's formula)."""
    def sph(w):
        w = np.asarray(w, dtype=float)
        w = np.append(w, 0.0) if w.size == 2 else w
        return math.atan2(w[1], w[0]), math.atan2(w[2], math.hypot(w[0], w[1]))
    (a1, e1), (a2, e2) = sph(u), sph(v)
    d = math.sin(e1) * math.sin(e2) + math.cos(e1) * math.cos(e2) * math.cos(abs(a1 - a2))
    return math.degrees(math.acos(min(1.0, max(-1.0, d))))


def slow_sed_counts(ref, pred, fps):
    T, C = ref.shape
    c = dict(tp=0, fp=0, fn=0, s=0, d=0, i=0, n_ref=0)
    for s0 in range(0, T, fps):
        fn = fp = 0
        for k in range(C):
            r = any(ref[t, k] for t in range(s0, min(s0 + fps, T)))
            p = any(pred[t, k] for t in range(s0, min(s0 + fps, T)))
            c['tp'] += r and p
            fn += r and not p
            fp += p and not r
            c['n_ref'] += r
        c['fn'] += fn
        c['fp'] += fp
        c['s'] += min(fn, fp)
        c['d'] += max(0, fn - fp)
        c['i'] += max(0, fp - fn)
    return c


def slow_frame_recall(ref, pred):
    return sum(int(ref[t].sum()) == int(pred[t].sum()) for t in range(ref.shape[0])) / ref.shape[0]


def _vec(doa, t, k, C):
    return np.array([doa[t, j * C + k] for j in range(doa.shape[1] // C)])


def slow_doa_error(ref_sed, ref_doa, pred_doa):
    C = ref_sed.shape[1]
    errs = [_angle(_vec(ref_doa, t, k, C), _vec(pred_doa, t, k, C))
            for t in range(ref_sed.shape[0]) for k in range(C) if ref_sed[t, k]]
    return float(np.mean(errs)) if errs else float('nan')


def slow_doa_legacy(ref_sed, ref_doa, pred_doa):
    """compute_doa_scores_regr_xyz's doa_loss_gt, converted as in seld-net's seld.py."""
    C = ref_sed.shape[1]
    total, cnt = 0.0, 0
    for t in range(ref_sed.shape[0]):
        for k in range(C):
            if ref_sed[t, k]:
                total += math.sqrt(sum((pred_doa[t, j * C + k] - ref_doa[t, j * C + k]) ** 2
                                       for j in range(ref_doa.shape[1] // C)))
                cnt += 1
    return math.degrees(2 * math.asin(min(total / cnt / 2, 1.0)))


def slow_dcase2019(ref_sed, ref_doa, pred_sed, pred_doa):
    """compute_doa_scores_regr of the DCASE 2019 baseline, frame by frame, with scipy's Hungarian."""
    C = ref_sed.shape[1]
    total, n_pred, good = 0.0, 0, 0
    for t in range(ref_sed.shape[0]):
        gt = [_vec(ref_doa, t, k, C) for k in range(C) if ref_sed[t, k]]
        pr = [_vec(pred_doa, t, k, C) for k in range(C) if pred_sed[t, k]]
        good += len(gt) == len(pr)
        n_pred += len(pr)
        if gt and pr:
            cost = np.array([[_angle(g, p) for p in pr] for g in gt])
            r, c = linear_sum_assignment(cost)
            total += cost[r, c].sum()
    return total / n_pred, good / ref_sed.shape[0]


def official_segment_labels(rows, nb_frames, fps):
    """cls_feature_class.segment_labels: {block: {class: [[frames-in-block], [[doa, ...] per frame]]}}."""
    frames = {}
    for f, c, v in rows:
        frames.setdefault(f, []).append((c, v))
    out = {b: {} for b in range(int(math.ceil(nb_frames / fps)))}
    for f0 in range(0, nb_frames, fps):
        loc = {}
        for f in range(f0, f0 + fps):
            for c, v in frames.get(f, []):
                loc.setdefault(c, {}).setdefault(f - f0, []).append(v)
        for c in loc:
            out[f0 // fps][c] = [[list(loc[c].keys()), list(loc[c].values())]]
    return out


def _least_distance(gt, pr):
    cost = np.array([[_angle(g, p) for p in pr] for g in gt])
    r, c = linear_sum_assignment(cost)
    return cost[r, c], r, c


def official_2021(pred, gt, nb_classes, thr):
    """SELD_evaluation_metrics.SELDMetrics.update_seld_scores of the DCASE 2021-2023 baselines."""
    n = {k: np.zeros(nb_classes) for k in ('tp', 'fp', 'fp_spatial', 'fn', 'n_ref', 'de_tp', 'de_fn', 'de_sum')}
    S = D = I = 0
    for b in range(len(gt)):
        loc_fn = loc_fp = 0
        for c in range(nb_classes):
            nb_gt = max(len(v) for v in gt[b][c][0][1]) if c in gt[b] else None
            nb_pr = max(len(v) for v in pred[b][c][0][1]) if c in pred[b] else None
            if nb_gt is not None:
                n['n_ref'][c] += nb_gt
            if c in gt[b] and c in pred[b]:
                dist = {}
                gt_ind, pr_ind = gt[b][c][0][0], pred[b][c][0][0]
                for gi, gv in enumerate(gt_ind):
                    if gv in pr_ind:
                        d, r, _ = _least_distance(gt[b][c][0][1][gi], pred[b][c][0][1][pr_ind.index(gv)])
                        for k, dv in enumerate(d):
                            dist.setdefault(r[k], []).append(dv)
                if not dist:
                    loc_fn += nb_pr
                    n['fn'][c] += nb_pr
                    n['de_fn'][c] += nb_pr
                else:
                    for track in dist:
                        avg = sum(dist[track]) / len(dist[track])
                        n['de_sum'][c] += avg
                        n['de_tp'][c] += 1
                        if avg <= thr:
                            n['tp'][c] += 1
                        else:
                            loc_fp += 1
                            n['fp_spatial'][c] += 1
                    if nb_pr > nb_gt:
                        loc_fp += nb_pr - nb_gt
                        n['fp'][c] += nb_pr - nb_gt
                    elif nb_pr < nb_gt:
                        loc_fn += nb_gt - nb_pr
                        n['fn'][c] += nb_gt - nb_pr
                        n['de_fn'][c] += nb_gt - nb_pr
            elif c in gt[b]:
                loc_fn += nb_gt
                n['fn'][c] += nb_gt
                n['de_fn'][c] += nb_gt
            elif c in pred[b]:
                loc_fp += nb_pr
                n['fp'][c] += nb_pr
        S += min(loc_fp, loc_fn)
        D += max(0, loc_fn - loc_fp)
        I += max(0, loc_fp - loc_fn)
    return n, (S, D, I)


def official_2020(pred, gt, nb_classes, thr):
    """metrics/SELD_evaluation_metrics.py of the DCASE 2020 baseline (one DOA per class and frame)."""
    n = dict(tp=0, fp=0, fn=0, n_ref=0, n_sys=0, de_tp=0, de_sum=0.0)
    S = D = I = 0
    for b in range(len(gt)):
        loc_fn = loc_fp = 0
        for c in range(nb_classes):
            n['n_ref'] += c in gt[b]
            n['n_sys'] += c in pred[b]
            if c in gt[b] and c in pred[b]:
                total, cnt = 0.0, 0
                gt_ind, pr_ind = gt[b][c][0][0], pred[b][c][0][0]
                for gi, gv in enumerate(gt_ind):
                    if gv in pr_ind:
                        cnt += 1
                        total += _angle(gt[b][c][0][1][gi][0], pred[b][c][0][1][pr_ind.index(gv)][0])
                if cnt == 0:
                    loc_fn += 1
                    n['fn'] += 1
                else:
                    n['de_sum'] += total / cnt
                    n['de_tp'] += 1
                    if total / cnt <= thr:
                        n['tp'] += 1
                    else:
                        loc_fn += 1
                        n['fn'] += 1
            elif c in gt[b]:
                loc_fn += 1
                n['fn'] += 1
            elif c in pred[b]:
                loc_fp += 1
                n['fp'] += 1
        S += min(loc_fp, loc_fn)
        D += max(0, loc_fn - loc_fp)
        I += max(0, loc_fp - loc_fn)
    return n, (S, D, I)


def rows_of(sed, doa):
    C = sed.shape[1]
    return [(t, k, _vec(doa, t, k, C)) for t in range(sed.shape[0]) for k in range(C) if sed[t, k]]


def instances_of(rows):
    if not rows:
        return em.Instances.empty()
    return em.Instances(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
                        np.zeros(len(rows), dtype=int), np.array([r[2] for r in rows], dtype=float))


# ==================================================================================================
# Random data
# ==================================================================================================
def random_units(rng, shape, k=3):
    v = rng.standard_normal(shape + (k,))
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def random_file(rng, T, C, *, p=0.15, k=3, runs=True):
    """Reference and prediction matrices with realistic runs of activity (or i.i.d. frames)."""
    def act():
        if not runs:
            return rng.random((T, C)) < p
        a = np.zeros((T, C), dtype=bool)
        for c in range(C):
            t = int(rng.integers(0, 20))
            while t < T:
                n = int(rng.integers(3, 40))
                if rng.random() < p * 2:
                    a[t:t + n, c] = True
                t += n + int(rng.integers(0, 30))
        return a
    ref, pred = act(), act()
    ref_vec = random_units(rng, (T, C), k) * ref[..., None]
    noise = random_units(rng, (T, C), k)
    pred_vec = 0.8 * ref_vec + 0.6 * noise  # near the reference where it is active, raw (not unit)
    return ref.astype(np.float32), formats.vectors_to_doa(ref_vec), pred.astype(np.float32), formats.vectors_to_doa(pred_vec)


# ==================================================================================================
# Hand-checkable cases
# ==================================================================================================
# 4 frames at 2 frames/s, 1-s segments = 2 frames, 3 classes.
#   ref  f0 [1,0,0]  f1 [0,0,0] | f2 [0,1,0]  f3 [0,0,1]
#   pred f0 [0,0,0]  f1 [1,0,1] | f2 [0,0,0]  f3 [0,1,0]
# Segments: ref s0 {0}, s1 {1,2}; pred s0 {0,2}, s1 {1}.
#   s0: TP 1 (class 0), FP 1 (class 2), FN 0 -> S 0, D 0, I 1
#   s1: TP 1 (class 1), FN 1 (class 2), FP 0 -> S 0, D 1, I 0
#   N_ref = 3: ER = (0 + 1 + 1) / 3 = 2/3; F = 2*2 / (2*2 + 1 + 1) = 2/3
# Frame counts ref [1,0,1,1], pred [0,2,0,1]: equal only at f3 -> frame recall 1/4.
HAND_REF = np.array([[1, 0, 0], [0, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
HAND_PRED = np.array([[0, 0, 0], [1, 0, 1], [0, 0, 0], [0, 1, 0]], dtype=np.float32)


def hand_doas():
    # Reference-active pairs (0, c0) = +x, (2, c1) = +y, (3, c2) = +z.
    # Predicted vectors of the same classes: +y (90 deg), +y (0 deg), -z (180 deg); elsewhere zero.
    rv = np.zeros((4, 3, 3))
    pv = np.zeros((4, 3, 3))
    rv[0, 0], rv[2, 1], rv[3, 2] = X, Y, Z
    pv[0, 0], pv[2, 1], pv[3, 2] = Y, Y, -Z
    pv[1, 0], pv[1, 2], pv[3, 1] = X, Z, Y  # the predicted-active classes' DOAs
    return formats.vectors_to_doa(rv), formats.vectors_to_doa(pv)


def test_hand_segment_scores():
    s = em.sed_scores(HAND_REF, HAND_PRED, frames_per_segment=2)
    assert (s['substitutions'], s['deletions'], s['insertions'], s['n_ref']) == (0, 1, 1, 3)
    assert s['error_rate'] == pytest.approx(2 / 3)
    assert s['f_score'] == pytest.approx(2 / 3)
    assert em.frame_recall(HAND_REF, HAND_PRED) == pytest.approx(1 / 4)


def test_hand_seld2018_and_legacy():
    rd, pd = hand_doas()
    # Angles 90, 0, 180 -> mean 90 degrees.
    assert em.doa_error(HAND_REF, rd, pd) == pytest.approx(90.0)
    # Chords |y - x| = sqrt 2, 0, |-z - z| = 2 -> d = (sqrt 2 + 2) / 3; 2 asin(d / 2) = 69.37 degrees.
    legacy = math.degrees(2 * math.asin((math.sqrt(2) + 2) / 6))
    assert em.doa_error_legacy(HAND_REF, rd, pd) == pytest.approx(legacy)
    m = em.SELDMetrics(nb_classes=3, frame_rate=2.0, definitions=('seld2018', 'seld2018_legacy'))
    m.evaluate(HAND_REF, rd, HAND_PRED, pd)
    r = m.results()
    # SELD = mean(2/3, 1 - 2/3, 90/180, 1 - 1/4)
    assert r['seld2018'] == pytest.approx(dict(error_rate=2 / 3, f_score=2 / 3, doa_error=90.0, frame_recall=0.25,
                                               seld_score=np.mean([2 / 3, 1 / 3, 0.5, 0.75])))
    # Legacy blocks [0:1] and [2:3] see frames 0 and 2 only: ref s0 {0}, s1 {1}; pred nothing.
    # ER = 2 deletions / 2 = 1; F = 0.
    assert r['seld2018_legacy']['error_rate'] == pytest.approx(1.0)
    assert r['seld2018_legacy']['f_score'] == 0.0
    assert r['seld2018_legacy']['doa_error'] == pytest.approx(legacy)


def test_issue16_last_frame_of_each_segment_and_chord_average():
    # One event only in the LAST frame of each 4-frame segment: the original slicing O[i*bs:i*bs+bs-1]
    # never sees it; every frame counts here.
    ref = np.zeros((8, 1))
    ref[[3, 7], 0] = 1
    assert em.segment_activity(ref, frames_per_segment=4)[:, 0].tolist() == [True, True]
    assert em.segment_activity(ref, frames_per_segment=4, legacy=True)[:, 0].tolist() == [False, False]
    pred = ref.copy()
    assert em.sed_scores(ref, pred, frames_per_segment=4)['f_score'] == 1.0
    # Chord average vs angle average: errors of 0 and 180 degrees (chords 0 and 2) average to 90
    # degrees, but the mean chord 1 converts to 2 asin(1/2) = 60 degrees.
    rd = formats.vectors_to_doa(np.array([[X], [X]]))
    pd = formats.vectors_to_doa(np.array([[X], [-X]]))
    two = np.ones((2, 1))
    assert em.doa_error(two, rd, pd) == pytest.approx(90.0)
    assert em.doa_error_legacy(two, rd, pd) == pytest.approx(60.0)


def test_hand_dcase2019():
    # f0: ref {c0: +x, c1: +y}, pred {c0: +y, c1: +x} (classes swapped): matched regardless of class -> 0 + 0
    # f1: ref {c0: +x}, pred {c0: azimuth 30, c1: -x} -> 1 pair, 30 degrees
    # f2: ref {}, pred {c2: +z} -> nothing matched
    # DOA error = (0 + 30) / (2 + 2 + 1 predicted DOAs) = 6 degrees; frame counts ref [2,1,0] pred [2,2,1] -> FR 1/3
    rs = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0]])
    ps = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]])
    rv, pv = np.zeros((3, 3, 3)), np.zeros((3, 3, 3))
    rv[0, 0], rv[0, 1], rv[1, 0] = X, Y, X
    pv[0, 0], pv[0, 1], pv[1, 0], pv[1, 1], pv[2, 2] = Y, X, sph2cart(30, 0), -X, Z
    rd, pd = formats.vectors_to_doa(rv), formats.vectors_to_doa(pv)
    assert em.doa_error_dcase2019(rs, rd, ps, pd) == pytest.approx(6.0)
    m = em.SELDMetrics(nb_classes=3, frame_rate=3.0, definitions=('dcase2019',))
    m.evaluate(rs, rd, ps, pd)
    r = m.results()['dcase2019']
    assert r['doa_error'] == pytest.approx(6.0) and r['frame_recall'] == pytest.approx(1 / 3)


# Location-aware hand case: 2 classes, 4 frames at 2 frames/s (2 segments of 2 frames), threshold 20.
#   ref : (f0, c0, az 0) (f1, c0, az 0) (f0, c1, az 90) (f2, c1, az 90)
#   pred: (f1, c0, az 10) (f0, c1, az 150) (f3, c1, az 90) (f3, c0, az 100)
#   s0 c0: both, common frame f1, 10 deg -> TP (DE_TP, 10)
#   s0 c1: both, common frame f0, 60 deg -> 2020: FN; 2021: spatial FP (DE_TP, 60 either way)
#   s1 c0: prediction only -> FP
#   s1 c1: both, no common frame -> 2020: FN; 2021: nb_pred = 1 FN (and 1 DE_FN)
LA_REF = [(0, 0, sph2cart(0, 0)), (1, 0, sph2cart(0, 0)), (0, 1, sph2cart(90, 0)), (2, 1, sph2cart(90, 0))]
LA_PRED = [(1, 0, sph2cart(10, 0)), (0, 1, sph2cart(150, 0)), (3, 1, sph2cart(90, 0)), (3, 0, sph2cart(100, 0))]


def _la_scores(variant, average='micro', ref=LA_REF, pred=LA_PRED, T=4, C=2):
    c = em.location_aware_counts(instances_of(ref), instances_of(pred), nb_frames=T, nb_classes=C,
                                 frames_per_segment=2, threshold=20.0, variant=variant)
    return em.location_aware_scores(c, variant=variant, average=average)


def test_hand_dcase2020():
    # N_ref 3, N_sys 4; s0: D 1 (FN only); s1: FN 1 + FP 1 -> S 1; ER = 2/3
    # F = 2 TP / (N_ref + N_sys) = 2/7; LE = (10 + 60) / 2 = 35; LR = DE_TP / N_ref = 2/3
    r = _la_scores('dcase2020')
    assert r == pytest.approx(dict(error_rate=2 / 3, f_score=2 / 7, localization_error=35.0,
                                   localization_recall=2 / 3,
                                   seld_score=np.mean([2 / 3, 5 / 7, 35 / 180, 1 / 3])))


def test_hand_dcase2021_micro_and_macro():
    # s0: spatial FP -> I 1; s1: FP 1 + FN 1 -> S 1; ER = 2/3 (N_ref 3)
    # micro: F = 1 / (1 + 1 + (1 + 1)/2) = 1/3; LE = 35; LR = 2 / (2 + 1) = 2/3
    assert _la_scores('dcase2021') == pytest.approx(dict(
        error_rate=2 / 3, f_score=1 / 3, localization_error=35.0, localization_recall=2 / 3,
        seld_score=np.mean([2 / 3, 2 / 3, 35 / 180, 1 / 3])))
    # macro: class 0: F = 1 / (1 + 0 + (1 + 0)/2) = 2/3, LE 10, LR 1; class 1: F 0, LE 60, LR 1/2
    r = _la_scores('dcase2021', 'macro')
    assert (r['f_score'], r['localization_error'], r['localization_recall']) == pytest.approx((1 / 3, 35.0, 0.75))


def test_hand_multi_instance():
    # One segment (frames 0, 1), class 0 with two reference sources at az 0 and 90.
    # f0: predictions at az 85, 5 -> Hungarian pairs (0, 5) and (90, 85): 5 + 5
    # f1: one prediction at az 80 -> matched to the az-90 source (2nd in the frame): 10
    # 2021: tracks by position: #0 [5] -> 5, #1 [5, 10] -> 7.5: 2 TPs, LE = 12.5 / 2 = 6.25, N_ref 2, F 1, LR 1
    # 2020: per-frame mean 5 and 10 -> segment 7.5, one TP, LE 7.5
    ref = [(0, 0, sph2cart(0, 0)), (0, 0, sph2cart(90, 0)), (1, 0, sph2cart(0, 0)), (1, 0, sph2cart(90, 0))]
    pred = [(0, 0, sph2cart(85, 0)), (0, 0, sph2cart(5, 0)), (1, 0, sph2cart(80, 0))]
    r = _la_scores('dcase2021', ref=ref, pred=pred, T=2, C=1)
    assert (r['error_rate'], r['f_score'], r['localization_error'], r['localization_recall']) == \
        pytest.approx((0.0, 1.0, 6.25, 1.0))
    r = _la_scores('dcase2020', ref=ref, pred=pred, T=2, C=1)
    assert (r['f_score'], r['localization_error']) == pytest.approx((1.0, 7.5))


# ==================================================================================================
# Against sed_eval
# ==================================================================================================
def _events(act, rate, file):
    ev = []
    for c in range(act.shape[1]):
        col = np.concatenate([[0], act[:, c].astype(int), [0]])
        on, off = np.flatnonzero(np.diff(col) == 1), np.flatnonzero(np.diff(col) == -1)
        ev += [dict(filename=file, event_label=f'c{c}', onset=a / rate, offset=b / rate) for a, b in zip(on, off)]
    return ev


def test_segment_metrics_match_sed_eval():
    sed_eval = pytest.importorskip('sed_eval')
    dcase_util = pytest.importorskip('dcase_util')
    rng = np.random.default_rng(7)
    C, rate = 5, 10.0
    oracle = sed_eval.sound_event.SegmentBasedMetrics(event_label_list=[f'c{c}' for c in range(C)],
                                                      time_resolution=1.0)
    m = em.SELDMetrics(nb_classes=C, frame_rate=rate, definitions=('seld2018',))
    for i in range(4):
        T = int(rng.integers(200, 400))  # often a partial last segment
        rs, rd, ps, pd = random_file(rng, T, C, p=0.2)
        oracle.evaluate(dcase_util.containers.MetaDataContainer(_events(rs, rate, f'f{i}')),
                        dcase_util.containers.MetaDataContainer(_events(ps, rate, f'f{i}')),
                        evaluated_length_seconds=T / rate)
        m.evaluate(rs, rd, ps, pd)
    o = oracle.overall
    d = m.details()['seld2018']
    assert (d['tp'], d['substitutions'], d['deletions'], d['insertions'], d['n_ref']) == \
        (o['Ntp'], o['S'], o['D'], o['I'], o['Nref'])
    ov = oracle.results_overall_metrics()
    r = m.results()['seld2018']
    assert r['error_rate'] == pytest.approx(ov['error_rate']['error_rate'])
    assert r['f_score'] == pytest.approx(ov['f_measure']['f_measure'])


# ==================================================================================================
# Vectorized == slow references on random data
# ==================================================================================================
@pytest.mark.parametrize('k', [3, 2])
def test_framewise_metrics_match_slow_reference(k):
    rng = np.random.default_rng(k)
    for runs in (True, False):
        rs, rd, ps, pd = random_file(rng, 157, 4, k=k, runs=runs, p=0.3)
        assert em.doa_error(rs, rd, pd) == pytest.approx(slow_doa_error(rs, rd, pd))
        assert em.doa_error_legacy(rs, rd, pd) == pytest.approx(slow_doa_legacy(rs, rd, pd))
        assert em.frame_recall(rs, ps) == pytest.approx(slow_frame_recall(rs, ps))
        c = em.sed_scores(rs, ps, frames_per_segment=10)
        s = slow_sed_counts(rs, ps, 10)
        assert (c['tp'], c['fp'], c['fn'], c['substitutions'], c['deletions'], c['insertions']) == \
            (s['tp'], s['fp'], s['fn'], s['s'], s['d'], s['i'])
        doa, fr = slow_dcase2019(rs, rd, ps, pd)
        assert em.doa_error_dcase2019(rs, rd, ps, pd) == pytest.approx(doa)


def test_hungarian_matching_matches_scipy_for_all_shapes():
    rng = np.random.default_rng(3)
    rk = np.repeat(np.arange(60), rng.integers(1, 6, size=60))   # 1..5 reference DOAs per group
    pk = np.repeat(np.arange(60), rng.integers(1, 9, size=60))   # 1..8 predicted (8P5 = 6720 > 5040: scipy path)
    rv, pv = random_units(rng, (rk.size,)), random_units(rng, (pk.size,))
    m = em.match_groups(rk, rv, pk, pv)
    for g in range(60):
        cost = np.array([[_angle(a, b) for b in pv[pk == g]] for a in rv[rk == g]])
        r, c = linear_sum_assignment(cost)
        assert m['dist'][m['key'] == g].sum() == pytest.approx(cost[r, c].sum())
        assert (m['key'] == g).sum() == min(cost.shape)


@pytest.mark.parametrize('variant', ['dcase2020', 'dcase2021'])
def test_location_aware_matches_official_port_single_instance(variant):
    rng = np.random.default_rng(11)
    C, fps, T = 4, 10, 143
    for trial in range(3):
        rs, rd, ps, pd = random_file(rng, T, C, p=0.3, runs=trial != 1)
        ref, pred = rows_of(rs, rd), rows_of(ps, pd)
        gt_b, pr_b = official_segment_labels(ref, T, fps), official_segment_labels(pred, T, fps)
        c = em.location_aware_counts(instances_of(ref), instances_of(pred), nb_frames=T, nb_classes=C,
                                     frames_per_segment=fps, threshold=30.0, variant=variant)
        if variant == 'dcase2020':
            o, sdi = official_2020(pr_b, gt_b, C, 30.0)
            for k in ('tp', 'fp', 'fn', 'n_ref', 'n_sys', 'de_tp', 'de_sum'):
                assert c[k].sum() == pytest.approx(o[k]), k
        else:
            o, sdi = official_2021(pr_b, gt_b, C, 30.0)
            for k in o:
                np.testing.assert_allclose(c[k], o[k], err_msg=k)
        assert (c['substitutions'], c['deletions'], c['insertions']) == sdi


def test_dcase2021_matches_official_port_multi_instance():
    rng = np.random.default_rng(5)
    C, fps, T = 3, 5, 60
    ref, pred = [], []
    for t in range(T):
        for c in range(C):
            for rows, p in ((ref, 0.35), (pred, 0.35)):
                for _ in range(int(rng.binomial(3, p))):  # 0..3 instances of a class in a frame
                    rows.append((t, c, random_units(rng, ())))
    gt_b, pr_b = official_segment_labels(ref, T, fps), official_segment_labels(pred, T, fps)
    o, sdi = official_2021(pr_b, gt_b, C, 40.0)
    c = em.location_aware_counts(instances_of(ref), instances_of(pred), nb_frames=T, nb_classes=C,
                                 frames_per_segment=fps, threshold=40.0, variant='dcase2021')
    for k in o:
        np.testing.assert_allclose(c[k], o[k], err_msg=k)
    assert (c['substitutions'], c['deletions'], c['insertions']) == sdi


def test_matrix_fast_path_equals_instance_path():
    rng = np.random.default_rng(8)
    rs, rd, ps, pd = random_file(rng, 333, 5, p=0.3)
    a, b = em.SELDMetrics(nb_classes=5, frame_rate=10.0), em.SELDMetrics(nb_classes=5, frame_rate=10.0)
    a.evaluate(rs, rd, ps, pd)
    b.evaluate(rs, rd, ps, pd, ref_instances=em.matrices_to_instances(rs, rd),
               pred_instances=em.matrices_to_instances(ps, pd))
    assert em.flatten_results(a.results()) == pytest.approx(em.flatten_results(b.results()), nan_ok=True)
    for name in ('dcase2020', 'dcase2021'):
        for k, v in a.details()[name].items():
            np.testing.assert_allclose(v, b.details()[name][k], err_msg=f'{name} {k}')


def test_accumulation_is_exact_over_files():
    rng = np.random.default_rng(2)
    files = [random_file(rng, int(rng.integers(50, 120)), 3, p=0.4) for _ in range(3)]
    m = em.SELDMetrics(nb_classes=3, frame_rate=10.0)
    for f in files:
        m.evaluate(*f)
    # Concatenating files whose lengths are multiples of the segment gives the same segments.
    cut = [tuple(a[:len(a) // 10 * 10] for a in f) for f in files]
    m_cut, m_cat = em.SELDMetrics(nb_classes=3, frame_rate=10.0), em.SELDMetrics(nb_classes=3, frame_rate=10.0)
    for f in cut:
        m_cut.evaluate(*f)
    m_cat.evaluate(*[np.concatenate([f[i] for f in cut]) for i in range(4)])
    flat = em.flatten_results(m_cut.results())
    assert flat == pytest.approx(em.flatten_results(m_cat.results()), nan_ok=True)
    assert 0 < flat['seld2018/f_score'] < 1 and set(flat) >= {'seld2018/error_rate', 'dcase2021/localization_recall'}


# ==================================================================================================
# Edge cases
# ==================================================================================================
def _all(ref_sed, ref_doa, pred_sed, pred_doa, **kw):
    m = em.SELDMetrics(nb_classes=ref_sed.shape[1], frame_rate=10.0, **kw)
    m.evaluate(ref_sed, ref_doa, pred_sed, pred_doa)
    return m.results()


def test_empty_reference_and_prediction():
    rng = np.random.default_rng(0)
    _, _, ps, pd = random_file(rng, 30, 3, p=0.5)
    zs, zd = np.zeros_like(ps), np.zeros_like(pd)
    # Empty reference, 3 segments: ER = insertions / 1 (documented), F = 0, DOA undefined (NaN).
    res = _all(zs, zd, ps, pd)
    ins = int(em.segment_activity(ps, frames_per_segment=10).sum())
    assert res['seld2018']['error_rate'] == ins and res['seld2018']['f_score'] == 0.0
    assert math.isnan(res['seld2018']['doa_error']) and math.isnan(res['dcase2019']['doa_error'])
    assert res['dcase2021']['localization_recall'] == 0.0
    # Nothing anywhere: ER 0, F 0, frame recall 1.
    res0 = _all(zs, zd, zs, zd)
    assert res0['seld2018']['error_rate'] == 0.0 and res0['seld2018']['frame_recall'] == 1.0
    # Empty prediction: deletions only -> ER 1, F 0.
    resp = _all(ps, pd, zs, zd)
    assert resp['seld2018']['error_rate'] == 1.0 and resp['seld2018']['f_score'] == 0.0
    assert resp['dcase2020']['error_rate'] == 1.0 and resp['dcase2021']['f_score'] == 0.0
    for r in (res, res0, resp):
        assert all(math.isfinite(v['seld_score']) for v in r.values())


def test_classes_absent_from_reference_macro_averaging():
    # Class 1 never occurs in the reference nor the prediction; class 0 is perfect.
    sed = np.zeros((20, 2))
    sed[:, 0] = 1
    doa = formats.vectors_to_doa(np.broadcast_to(X, (20, 2, 3)) * sed[..., None])
    r = {a: _all(sed, doa, sed, doa, average=a)['dcase2021'] for a in em.AVERAGES}
    assert r['micro']['f_score'] == 1.0 and r['macro_present']['f_score'] == 1.0
    # Official macro: the absent class counts as F 0, LE 180, LR 0.
    assert r['macro']['f_score'] == 0.5 and r['macro']['localization_error'] == 90.0
    assert r['macro']['localization_recall'] == 0.5


def test_single_partial_segment():
    # 3 frames at 10 frames/s: one (partial) segment. ref class 0 in f2 only, pred class 0 in f0.
    ref, pred = np.zeros((3, 1)), np.zeros((3, 1))
    ref[2, 0] = pred[0, 0] = 1
    assert em.segment_activity(ref, frames_per_segment=10).shape == (1, 1)
    s = em.sed_scores(ref, pred, frames_per_segment=10)
    assert (s['error_rate'], s['f_score']) == (0.0, 1.0)
    doa = formats.vectors_to_doa(np.broadcast_to(X, (3, 1, 3)) * ref[..., None])
    pdoa = formats.vectors_to_doa(np.broadcast_to(Y, (3, 1, 3)) * pred[..., None])
    res = _all(ref, doa, pred, pdoa)
    # no common frame: dcase2020 FN; LE undefined -> NaN, SELD uses 180 and stays finite
    assert math.isnan(res['dcase2020']['localization_error'])
    assert all(math.isfinite(v['seld_score']) for v in res.values())


def test_bad_input_raises():
    with pytest.raises(ValueError, match='0 or 1'):
        em.sed_scores(np.full((3, 2), 0.7), np.zeros((3, 2)), frames_per_segment=2)
    with pytest.raises(ValueError, match='shape'):
        em.doa_error(np.zeros((3, 2)), np.zeros((3, 5)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match='definitions'):
        em.SELDMetrics(nb_classes=2, frame_rate=10.0, definitions=('dcase2099',))
    with pytest.raises(SELDError, match='no file'):
        em.SELDMetrics(nb_classes=2, frame_rate=10.0).results()


# ==================================================================================================
# Files and the command line
# ==================================================================================================
@pytest.mark.parametrize('fmt,coords', [('dcase2019', 'polar'), ('dcase2020', 'polar'), ('dcase2020', 'cartesian')])
def test_csv_round_trip(tmp_path, fmt, coords):
    rng = np.random.default_rng(4)
    rs, rd, _, _ = random_file(rng, 97, 5)
    rate = formats.FORMAT_FRAME_RATE[fmt]
    path = tmp_path / 'a.csv'
    formats.write_csv(path, rs, rd, fmt=fmt, frame_rate=rate, coords=coords)
    sed, doa = formats.read_csv(path, fmt=fmt, nb_classes=5, nb_frames=97)
    np.testing.assert_array_equal(sed, rs)
    np.testing.assert_allclose(doa, rd, atol=1e-9)


def test_tut_round_trip_and_rate_conversion(tmp_path):
    rate, classes = em.PAPER_FRAME_RATE, ['cough', 'knock', 'speech']
    sed = np.zeros((400, 3), dtype=np.float32)
    vec = np.zeros((400, 3, 3))
    for c, a, b, az in ((0, 10, 60, 30), (0, 80, 80, -150), (1, 0, 399, 90), (2, 200, 250, 0)):
        sed[a:b + 1, c] = 1
        vec[a:b + 1, c] = sph2cart(az, 20)
    doa = formats.vectors_to_doa(vec)
    path = tmp_path / 'tut.csv'
    formats.write_csv(path, sed, doa, fmt='tut2018', frame_rate=rate, classes=classes)
    s2, d2 = formats.read_csv(path, fmt='tut2018', classes=classes, frame_rate=rate, nb_frames=400)
    np.testing.assert_array_equal(s2, sed)
    np.testing.assert_allclose(d2, doa, atol=1e-9)
    # 172.27 -> 10 frames/s: the event at frames 200..250 (1.161 .. 1.457 s) keeps onset and offset
    # within one output frame (0.1 s).
    s10, d10 = formats.resample_matrices(sed, doa, frame_rate=rate, out_frame_rate=10.0)
    on, off = np.flatnonzero(s10[:, 2])[[0, -1]]
    assert abs(on / 10 - 200 / rate) < 0.1 and abs((off + 1) / 10 - 251 / rate) < 0.1
    np.testing.assert_allclose(d10[on, [2, 5, 8]], sph2cart(0, 20), atol=1e-9)
    # and back up: same onset/offset within one 10-fps frame
    s_up, _ = formats.resample_matrices(s10, d10, frame_rate=10.0, out_frame_rate=rate, nb_frames_out=400)
    on2, off2 = np.flatnonzero(s_up[:, 2])[[0, -1]]
    assert abs(on2 - 200) <= rate / 10 and abs(off2 - 250) <= rate / 10


def test_bad_rows_name_file_and_line(tmp_path):
    cases = [('0,1,10,20\n1,x,10,20\n', 'class'), ('0,1,10,20\n3,1,10,95\n', 'ele=95'),
             ('frame,class,azi,ele\n0,1,10,20\n0,7,10,20\n', 'class=7'), ('0,1,10\n', 'fields')]
    for text, rule in cases:
        p = tmp_path / 'bad.csv'
        p.write_text(text)
        with pytest.raises(SELDError) as err:
            formats.read_csv(p, fmt='dcase2019', nb_classes=4)
        line = text.count('\n') if rule != 'fields' else 1
        assert f'bad.csv:{line}:' in str(err.value) and rule in str(err.value)


def _run_cli(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, 'evaluation_metrics.py'), *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_cli_prints_json_with_required_keys(tmp_path):
    rng = np.random.default_rng(9)
    (tmp_path / 'ref').mkdir(), (tmp_path / 'pred').mkdir()
    for i in range(2):
        rs, rd, ps, pd = random_file(rng, 120, 4, p=0.3)
        formats.write_csv(tmp_path / 'ref' / f'clip{i}.csv', rs, rd, fmt='dcase2020', frame_rate=10.0)
        formats.write_csv(tmp_path / 'pred' / f'clip{i}.csv', ps, formats.vectors_to_doa(formats.doa_vectors(pd, nb_classes=4)
                                                                                * ps[..., None]),
                     fmt='dcase2020', frame_rate=10.0, coords='cartesian')
    out = _run_cli('--ref', tmp_path / 'ref', '--pred', tmp_path / 'pred', '--format', 'dcase2020',
                   '--nb-classes', 4)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert set(res) == {'seld2018', 'dcase2019', 'dcase2020', 'dcase2021'}
    for name in ('seld2018', 'dcase2019'):
        assert {'error_rate', 'f_score', 'doa_error', 'frame_recall', 'seld_score'} <= set(res[name])
    for name in ('dcase2020', 'dcase2021'):
        assert {'error_rate', 'f_score', 'localization_error', 'localization_recall', 'seld_score'} <= set(res[name])
    assert 'SELD' in out.stderr
    # mismatched file sets: exit 2 with the unpaired names
    (tmp_path / 'pred' / 'clip1.csv').rename(tmp_path / 'pred' / 'other.csv')
    bad = _run_cli('--ref', tmp_path / 'ref', '--pred', tmp_path / 'pred', '--format', 'dcase2020',
                   '--nb-classes', 4)
    assert bad.returncode == 2 and 'clip1' in bad.stderr and 'other' in bad.stderr
    missing = _run_cli('--ref', tmp_path / 'nope', '--pred', tmp_path / 'pred', '--format', 'dcase2019',
                       '--nb-classes', 4)
    assert missing.returncode == 2 and 'nope' in missing.stderr

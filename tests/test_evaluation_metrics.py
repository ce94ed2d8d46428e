"""Tests of evaluation_metrics.py against hand counts, sed_eval and slow per-frame references.

The ``slow_*`` / ``official_*`` functions below are the oracles: obvious loops over frames, and ports of the
official DCASE 2019 / 2020 / 2021-2023 / 2024 logic (written here from the published algorithms, on their dict
structures). The benchmark (benchmarks/bench_metrics.py) times the vectorized code against them. Every definition
also has a hand-computed case whose counts are derived in the comments.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

import doa_matching
import formats
import label_frames
import metric_definitions as md
import scoring
from label_frames import Events, Instances
from utils import SELDError, sph2cart

X, Y, Z = np.eye(3)
A0 = math.degrees(math.acos(1 / (1 + 1e-10)))  # the 2024 code's angle between equal unit vectors (8.1e-4 deg)


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


def _angle_2024(u, v):
    """The 2024 code's Cartesian angle, normalising with sqrt(|u|^2 + 1e-10)."""
    nu, nv = math.sqrt(sum(x * x for x in u) + 1e-10), math.sqrt(sum(x * x for x in v) + 1e-10)
    return math.degrees(math.acos(min(1.0, max(-1.0, sum(a * b for a, b in zip(u, v)) / (nu * nv)))))


def slow_sed_counts(ref, pred, fps, drop_last=False):
    """Segment counts; ``drop_last``: the blocks [i*fps, i*fps + fps - 1) of the DCASE 2019 code."""
    T, C = ref.shape
    c = dict(tp=0, fp=0, fn=0, s=0, d=0, i=0, n_ref=0)
    for s0 in range(0, T, fps):
        fn = fp = 0
        end = min(s0 + fps - (1 if drop_last else 0), T)
        for k in range(C):
            r = any(ref[t, k] for t in range(s0, end))
            p = any(pred[t, k] for t in range(s0, end))
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


def slow_doa_error(ref_sed, ref_doa, pred_sed, pred_doa):
    C = ref_sed.shape[1]
    errs = [_angle(_vec(ref_doa, t, k, C), _vec(pred_doa, t, k, C))
            for t in range(ref_sed.shape[0]) for k in range(C) if ref_sed[t, k] and pred_sed[t, k]]
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


def _least_distance(gt, pr, angle=_angle):
    cost = np.array([[angle(g, p) for p in pr] for g in gt])
    r, c = linear_sum_assignment(cost)
    return cost[r, c], r, c


def official_2021(pred, gt, nb_classes, thr):
    """SELDMetrics.update_seld_scores of the DCASE 2021-2023 baselines (2022 layout: spatial misses apart)."""
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


def official_2021_scores(n, sdi, average):
    """compute_seld_scores of 2021 (micro, spatial misses in FP at 1/2) and 2022 (macro/micro, weight 1)."""
    er = sum(sdi) / n['n_ref'].sum()
    if average == '2021':
        f = n['tp'].sum() / (n['tp'].sum() + 0.5 * (n['fp'].sum() + n['fp_spatial'].sum() + n['fn'].sum()))
        le = n['de_sum'].sum() / n['de_tp'].sum()
        lr = n['de_tp'].sum() / (n['de_tp'].sum() + n['de_fn'].sum())
    else:
        f_c = n['tp'] / (n['tp'] + n['fp_spatial'] + 0.5 * (n['fp'] + n['fn']) + 1e-300)
        le_c = np.array([n['de_sum'][c] / n['de_tp'][c] if n['de_tp'][c] else 180.0 for c in range(len(f_c))])
        lr_c = n['de_tp'] / (n['de_tp'] + n['de_fn'] + 1e-300)
        f, le, lr = f_c.mean(), le_c.mean(), lr_c.mean()
    return dict(error_rate=er, f_score=f, localization_error=le, localization_recall=lr,
                seld_score=np.mean([er, 1 - f, le / 180, 1 - lr]))


def official_2020(pred, gt, nb_classes, thr):
    """metrics/SELD_evaluation_metrics.py of the DCASE 2020 baseline (a frame's distance: the Hungarian sum)."""
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
                        total += _least_distance(gt[b][c][0][1][gi], pred[b][c][0][1][pr_ind.index(gv)])[0].sum()
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


def official_2024(ref_rows, pred_rows, nb_frames, nb_classes, average, thr=20.0, rel_thr=1.0):
    """SELDMetrics.update_seld_scores + compute_seld_scores of the DCASE 2024 baseline (frame level, distances).

    Rows are (frame, class, vec, dist)."""
    C = nb_classes
    n = {k: np.zeros(C) for k in ('tp', 'fp', 'fps', 'fn', 'nref', 'de_tp', 'de_fn', 'ang', 'dist', 'rel')}
    S = D = I = 0
    for t in range(nb_frames):
        loc_fp = loc_fn = 0
        for c in range(C):
            g = [(v, d) for f, k, v, d in ref_rows if f == t and k == c]
            p = [(v, d) for f, k, v, d in pred_rows if f == t and k == c]
            n['nref'][c] += len(g)
            if g and p:
                cost, r, q = _least_distance([v for v, _ in g], [v for v, _ in p], angle=_angle_2024)
                bad = 0
                for e, i, j in zip(cost, r, q):
                    derr = abs(g[i][1] - p[j][1])
                    rel = derr / (g[i][1] + np.finfo(float).eps)
                    n['ang'][c] += e
                    n['dist'][c] += derr
                    n['rel'][c] += rel
                    bad += (e > thr) or (rel > rel_thr)
                k = min(len(g), len(p))
                n['tp'][c] += k - bad
                n['de_tp'][c] += k
                n['fp'][c] += max(0, len(p) - len(g))
                n['fps'][c] += bad
                n['fn'][c] += max(0, len(g) - len(p))
                n['de_fn'][c] += max(0, len(g) - len(p))
                loc_fp += max(0, len(p) - len(g)) + bad
                loc_fn += max(0, len(g) - len(p))
            elif g:
                n['fn'][c] += len(g)
                n['de_fn'][c] += len(g)
                loc_fn += len(g)
            elif p:
                n['fp'][c] += len(p)
                loc_fp += len(p)
        S += min(loc_fp, loc_fn)
        D += max(0, loc_fn - loc_fp)
        I += max(0, loc_fp - loc_fn)
    er = (S + D + I) / n['nref'].sum()
    if average == 'micro':
        n = {k: np.array([v.sum()]) for k, v in n.items()}
    f = n['tp'] / (n['tp'] + n['fps'] + 0.5 * (n['fp'] + n['fn']))
    with np.errstate(invalid='ignore', divide='ignore'):
        ang, dist, rel = n['ang'] / n['de_tp'], n['dist'] / n['de_tp'], n['rel'] / n['de_tp']
    lr = n['de_tp'] / (n['de_tp'] + n['de_fn'])
    seld = [np.nanmean([1 - f[c], ang[c] / 180, rel[c]]) for c in range(len(f))]
    return dict(error_rate=er, f_score=f.mean(), doa_error=np.nanmean(ang), distance_error=np.nanmean(dist),
                relative_distance_error=np.nanmean(rel), localization_recall=lr.mean(), seld_score=np.mean(seld))


def rows_of(sed, doa):
    C = sed.shape[1]
    return [(t, k, _vec(doa, t, k, C)) for t in range(sed.shape[0]) for k in range(C) if sed[t, k]]


def instances_of(rows, dist=None):
    if not rows:
        return Instances.empty()
    return Instances(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
                     np.zeros(len(rows), dtype=int), np.array([r[2] for r in rows], dtype=float),
                     None if dist is None else np.asarray(dist, dtype=float))


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
    return (ref.astype(np.float32), label_frames.vectors_to_doa(ref_vec), pred.astype(np.float32),
            label_frames.vectors_to_doa(pred_vec))


def random_multi_rows(rng, T, C, p=0.35, with_dist=False):
    """0..3 instances of a class per frame, reference and prediction (prediction near the reference)."""
    ref, pred, rd, pd = [], [], [], []
    for t in range(T):
        for c in range(C):
            for _ in range(int(rng.binomial(3, p))):
                v = random_units(rng, ())
                ref.append((t, c, v))
                rd.append(rng.uniform(0.5, 4))
                if rng.random() < 0.8:
                    pred.append((t, c, v + 0.4 * random_units(rng, ())))
                    pd.append(rd[-1] * (1 + rng.normal(0, 0.7)) if rng.random() < 0.9 else rng.uniform(0.1, 8))
            if rng.random() < 0.2:
                pred.append((t, c, random_units(rng, ())))
                pd.append(rng.uniform(0.1, 8))
    pd = [abs(d) + 0.01 for d in pd]
    return (ref, pred, rd, pd) if with_dist else (ref, pred)


# ==================================================================================================
# Hand-checkable cases: seld2018, seld2018_legacy, dcase2019
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
    return label_frames.vectors_to_doa(rv), label_frames.vectors_to_doa(pv)


def test_hand_segment_scores():
    s = md.sed_scores(HAND_REF, HAND_PRED, frames_per_segment=2)
    assert (s['substitutions'], s['deletions'], s['insertions'], s['n_ref']) == (0, 1, 1, 3)
    assert s['error_rate'] == pytest.approx(2 / 3)
    assert s['f_score'] == pytest.approx(2 / 3)
    assert md.frame_recall(HAND_REF, HAND_PRED) == pytest.approx(1 / 4)


def test_hand_seld2018_and_legacy():
    rd, pd = hand_doas()
    # seld2018 measures the reference-active pairs that are also predicted active. HAND_PRED detects none of
    # (0, c0), (2, c1), (3, c2): no angle to average, 3 missing.
    assert math.isnan(md.doa_error(HAND_REF, rd, HAND_PRED, pd))
    # All three detected: angles 90, 0, 180 -> mean 90 degrees.
    assert md.doa_error(HAND_REF, rd, HAND_REF, pd) == pytest.approx(90.0)
    # (0, c0) and (2, c1) detected, (3, c2) not: (90 + 0) / 2 = 45 degrees, 1 missing.
    part = HAND_REF.copy()
    part[3, 2] = 0
    assert md.doa_error(HAND_REF, rd, part, pd) == pytest.approx(45.0)
    m = scoring.SELDMetrics(nb_classes=3, frame_rate=2.0, definitions=('seld2018',))
    m.evaluate(HAND_REF, rd, part, pd)
    assert m.results()['seld2018']['doa_error'] == pytest.approx(45.0)
    assert m.results()['seld2018']['doa_missing'] == 1
    # Chords |y - x| = sqrt 2, 0, |-z - z| = 2 -> d = (sqrt 2 + 2) / 3; 2 asin(d / 2) = 69.37 degrees.
    legacy = math.degrees(2 * math.asin((math.sqrt(2) + 2) / 6))
    assert md.doa_error_legacy(HAND_REF, rd, pd) == pytest.approx(legacy)
    m = scoring.SELDMetrics(nb_classes=3, frame_rate=2.0, definitions=('seld2018', 'seld2018_legacy'))
    m.evaluate(HAND_REF, rd, HAND_PRED, pd)
    r = m.results()
    # No pair measured: DOA NaN (180 in the score), 3 missing. SELD = mean(2/3, 1 - 2/3, 180/180, 1 - 1/4)
    nan = r['seld2018'].pop('doa_error')
    assert math.isnan(nan)
    assert r['seld2018'] == pytest.approx(dict(error_rate=2 / 3, f_score=2 / 3, frame_recall=0.25, doa_missing=3,
                                               seld_score=np.mean([2 / 3, 1 / 3, 1.0, 0.75])))
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
    assert md.segment_activity(ref, frames_per_segment=4)[:, 0].tolist() == [True, True]
    assert md.segment_activity(ref, frames_per_segment=4, legacy=True)[:, 0].tolist() == [False, False]
    pred = ref.copy()
    assert md.sed_scores(ref, pred, frames_per_segment=4)['f_score'] == 1.0
    # Chord average vs angle average: errors of 0 and 180 degrees (chords 0 and 2) average to 90
    # degrees, but the mean chord 1 converts to 2 asin(1/2) = 60 degrees.
    rd = label_frames.vectors_to_doa(np.array([[X], [X]]))
    pd = label_frames.vectors_to_doa(np.array([[X], [-X]]))
    two = np.ones((2, 1))
    assert md.doa_error(two, rd, two, pd) == pytest.approx(90.0)
    assert md.doa_error_legacy(two, rd, pd) == pytest.approx(60.0)


def test_hand_dcase2019():
    # DOA at 3 frames/s (segments of 3 frames, the last one left out of the SED blocks):
    # f0: ref {c0: +x, c1: +y}, pred {c0: +y, c1: +x} (classes swapped): matched regardless of class -> 0 + 0
    # f1: ref {c0: +x}, pred {c0: azimuth 30, c1: -x} -> 1 pair, 30 degrees
    # f2: ref {}, pred {c2: +z} -> nothing matched
    # DOA error = (0 + 30) / (2 + 2 + 1 predicted DOAs) = 6 degrees; frame counts ref [2,1,0] pred [2,2,1] -> FR 1/3
    # SED on the one block O[0:2] (frames 0 and 1): ref {c0, c1}, pred {c0, c1}; c2 (only in f2) is not seen:
    #   TP 2, ER 0, F 1 (seld2018, which sees f2: FP 1 -> ER 1/2, F 4/5)
    rs = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0]])
    ps = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]])
    rv, pv = np.zeros((3, 3, 3)), np.zeros((3, 3, 3))
    rv[0, 0], rv[0, 1], rv[1, 0] = X, Y, X
    pv[0, 0], pv[0, 1], pv[1, 0], pv[1, 1], pv[2, 2] = Y, X, sph2cart(30, 0), -X, Z
    rd, pd = label_frames.vectors_to_doa(rv), label_frames.vectors_to_doa(pv)
    assert md.doa_error_dcase2019(rs, rd, ps, pd) == pytest.approx(6.0)
    m = scoring.SELDMetrics(nb_classes=3, frame_rate=3.0, definitions=('dcase2019', 'seld2018'))
    m.evaluate(rs, rd, ps, pd)
    r = m.results()
    assert r['dcase2019'] == pytest.approx(dict(error_rate=0.0, f_score=1.0, doa_error=6.0, frame_recall=1 / 3,
                                                seld_score=np.mean([0, 0, 6 / 180, 2 / 3])))
    assert (r['seld2018']['error_rate'], r['seld2018']['f_score']) == pytest.approx((0.5, 0.8))


# ==================================================================================================
# Hand-checkable cases: the segment-level location-aware definitions (2020 to 2023)
# ==================================================================================================
# 2 classes, 4 frames at 2 frames/s (2 segments of 2 frames), threshold 20.
#   ref : (f0, c0, az 0) (f1, c0, az 0) (f0, c1, az 90) (f2, c1, az 90)
#   pred: (f1, c0, az 10) (f0, c1, az 150) (f3, c1, az 90) (f3, c0, az 100)
#   s0 c0: both, common frame f1, 10 deg -> TP (DE_TP, 10)
#   s0 c1: both, common frame f0, 60 deg -> 2020: FN; 2021+: spatial miss (DE_TP, 60 either way)
#   s1 c0: prediction only -> FP
#   s1 c1: both, no common frame -> 2020: FN; 2021+: nb_pred = 1 FN (and 1 DE_FN)
LA_REF = [(0, 0, sph2cart(0, 0)), (1, 0, sph2cart(0, 0)), (0, 1, sph2cart(90, 0)), (2, 1, sph2cart(90, 0))]
LA_PRED = [(1, 0, sph2cart(10, 0)), (0, 1, sph2cart(150, 0)), (3, 1, sph2cart(90, 0)), (3, 0, sph2cart(100, 0))]


def _la_scores(definition, average=None, ref=LA_REF, pred=LA_PRED, T=4, C=2):
    c = md.location_aware_counts(instances_of(ref), instances_of(pred), nb_frames=T, nb_classes=C,
                                 frames_per_segment=2, threshold=20.0, definition=definition)
    return md.location_aware_scores(c, definition=definition, average=average)


def test_hand_dcase2020_and_corrected():
    # N_ref 3 class-segments, N_sys 4; s0: c0 TP, c1 FN -> D 1; s1: FN 1 (c1) + FP 1 (c0) -> S 1; ER = 2/3.
    # TP 1: F = 2 TP / (N_ref + N_sys) = 2/7.
    # LE = (10 + 60) / 2 = 35 (DE_TP 2). Official 'recall' DE_F = 2 DE_TP / (N_ref + N_sys) = 4/7;
    # corrected LR = DE_TP / N_ref = 2/3.
    r = _la_scores('dcase2020')
    assert r == pytest.approx(dict(error_rate=2 / 3, f_score=2 / 7, localization_error=35.0, localization_recall=4 / 7,
                                   seld_score=np.mean([2 / 3, 5 / 7, 35 / 180, 3 / 7])))
    r = _la_scores('dcase2020_corrected')
    assert r == pytest.approx(dict(error_rate=2 / 3, f_score=2 / 7, localization_error=35.0, localization_recall=2 / 3,
                                   seld_score=np.mean([2 / 3, 5 / 7, 35 / 180, 1 / 3])))


def test_hand_dcase2021_vs_dcase2022_same_files_different_f():
    # Counts of both (the 2021-2023 code): TP 1 (s0 c0), spatial miss 1 (s0 c1), FP 1 (s1 c0), FN 1 (s1 c1).
    # ER: s0: FP 1 (the spatial miss) -> I 1; s1: FP 1 + FN 1 -> S 1; N_ref 3 -> 2/3 for both.
    # dcase2021 (micro): the spatial miss is one more FP, at weight 1/2:
    #   F = TP / (TP + (FP + FP_spatial + FN) / 2) = 1 / (1 + 3/2) = 2/5
    # dcase2022 (micro): the spatial miss at weight 1: F = 1 / (1 + 1 + (1 + 1)/2) = 1/3
    # dcase2022 (macro, its default): class 0: TP 1, FP 1 -> 1 / (1 + 1/2) = 2/3; class 1: TP 0 -> 0; F = 1/3,
    #   LE = (10 + 60) / 2 = 35, LR = (1/1 + 1/2) / 2 = 3/4
    # LE micro = 35, LR micro = DE_TP / (DE_TP + DE_FN) = 2 / 3.
    r21 = _la_scores('dcase2021')
    assert r21 == pytest.approx(dict(error_rate=2 / 3, f_score=2 / 5, localization_error=35.0,
                                     localization_recall=2 / 3, seld_score=np.mean([2 / 3, 3 / 5, 35 / 180, 1 / 3])))
    assert _la_scores('dcase2022', 'micro')['f_score'] == pytest.approx(1 / 3)
    r22 = _la_scores('dcase2022')
    assert r22 == pytest.approx(dict(error_rate=2 / 3, f_score=1 / 3, localization_error=35.0,
                                     localization_recall=3 / 4, seld_score=np.mean([2 / 3, 2 / 3, 35 / 180, 1 / 4])))
    # dcase2021 macro (an option): class 0: 1 / (1 + 1/2) = 2/3; class 1: 0 -> 1/3
    assert _la_scores('dcase2021', 'macro')['f_score'] == pytest.approx(1 / 3)


def test_hand_multi_instance():
    # One segment (frames 0, 1), class 0 with two reference sources at az 0 and 90.
    # f0: predictions at az 85, 5 -> Hungarian pairs (0, 5) and (90, 85): 5 + 5
    # f1: one prediction at az 80 -> matched to the az-90 source (2nd in the frame): 10
    # 2021+: tracks by position: #0 [5] -> 5, #1 [5, 10] -> 7.5: 2 TPs, LE = 12.5 / 2 = 6.25, N_ref 2, F 1, LR 1
    # 2020 official: a frame's distance is the SUM of its pairs: f0 10, f1 10 -> segment 10, one TP, LE 10
    # 2020 corrected: the MEAN: f0 5, f1 10 -> 7.5
    ref = [(0, 0, sph2cart(0, 0)), (0, 0, sph2cart(90, 0)), (1, 0, sph2cart(0, 0)), (1, 0, sph2cart(90, 0))]
    pred = [(0, 0, sph2cart(85, 0)), (0, 0, sph2cart(5, 0)), (1, 0, sph2cart(80, 0))]
    for name in ('dcase2021', 'dcase2022'):
        r = _la_scores(name, ref=ref, pred=pred, T=2, C=1)
        assert (r['error_rate'], r['f_score'], r['localization_error'], r['localization_recall']) == \
            pytest.approx((0.0, 1.0, 6.25, 1.0))
    r = _la_scores('dcase2020', ref=ref, pred=pred, T=2, C=1)
    assert (r['f_score'], r['localization_error']) == pytest.approx((1.0, 10.0))
    r = _la_scores('dcase2020_corrected', ref=ref, pred=pred, T=2, C=1)
    assert (r['f_score'], r['localization_error']) == pytest.approx((1.0, 7.5))


# ==================================================================================================
# Hand-checkable case: dcase2024 (frame level, distances in metres)
# ==================================================================================================
def test_hand_dcase2024():
    # 3 classes, 3 frames; thresholds 20 degrees, relative distance 1.
    #   f0 c0: ref (az 0, 1 m), pred (az 10, 2 m): 10 deg, |dd| 1, rel 1/(1+eps) <= 1 -> TP
    #   f0 c2: ref (az 0, 1 m) only -> FN 1
    #   f1 c0: ref (az 0, 2 m), pred (az 30, 2 m): 30 deg > 20 -> spatial FP (errors 30, 0, 0)
    #   f1 c1: ref (az 90, 1 m), pred (az 90, 2.5 m): angle A0 (the code's 8.1e-4), rel 1.5 > 1 -> spatial FP
    #   f2 c1: ref (az 90, 1 m) and (az -90, 4 m), pred (az -80, 4 m): matched to -90 (10 deg, rel 0) -> TP; FN 1
    #   f2 c0: pred (az 0, 1 m) only -> FP 1
    # Per class:  c0: TP 1, FP_sp 1, FP 1, FN 0, DE_TP 2, DE_FN 0, angle 40, dist 1, rel 1
    #             c1: TP 1, FP_sp 1, FP 0, FN 1, DE_TP 2, DE_FN 1, angle 10 + A0, dist 1.5, rel 1.5
    #             c2: FN 1, DE_FN 1
    # F_c = TP / (TP + FP_sp + (FP + FN)/2): c0 1/2.5, c1 1/2.5, c2 0 -> F = 0.8/3
    # DOA error (nanmean over c0, c1) = (20 + (10 + A0)/2) / 2; distance (0.5 + 0.75)/2; relative (0.5 + 0.75)/2
    # LR: c0 2/2, c1 2/3, c2 0/1 -> 5/9
    # SELD: per class nanmean(1 - F_c, DOA_c/180, rel_c): c0 (0.6 + 20/180 + 0.5)/3, c1 (0.6 + ((10+A0)/2)/180
    #   + 0.75)/3, c2 (1) (its DOA and rel are NaN) -> their mean
    # ER: f0 FN 1 -> D 1; f1 FP 2 -> I 2; f2 FN 1 + FP 1 -> S 1; N_ref = 2 + 2 + 2 = 6 -> 4/6
    def row(f, c, az, d):
        return f, c, sph2cart(az, 0), d
    ref = [row(0, 0, 0, 1.0), row(0, 2, 0, 1.0), row(1, 0, 0, 2.0), row(1, 1, 90, 1.0), row(2, 1, 90, 1.0),
           row(2, 1, -90, 4.0)]
    pred = [row(0, 0, 10, 2.0), row(1, 0, 30, 2.0), row(1, 1, 90, 2.5), row(2, 1, -80, 4.0), row(2, 0, 0, 1.0)]
    ri, pi = (instances_of([r[:3] for r in rows], [r[3] for r in rows]) for rows in (ref, pred))
    c = md.frame_level_counts(ri, pi, nb_frames=3, nb_classes=3)
    np.testing.assert_allclose(c['tp'], [1, 1, 0])
    np.testing.assert_allclose(c['fp_spatial'], [1, 1, 0])
    np.testing.assert_allclose(c['fp'], [1, 0, 0])
    np.testing.assert_allclose(c['fn'], [0, 1, 1])
    np.testing.assert_allclose(c['angle_sum'], [40, 10 + A0, 0], atol=1e-6)
    r = md.frame_level_scores(c)
    le1 = (10 + A0) / 2
    assert r == pytest.approx(dict(
        error_rate=4 / 6, f_score=0.8 / 3, doa_error=(20 + le1) / 2, distance_error=0.625,
        relative_distance_error=0.625, localization_recall=5 / 9,
        seld_score=np.mean([(0.6 + 20 / 180 + 0.5) / 3, (0.6 + le1 / 180 + 0.75) / 3, 1.0])))
    # micro: TP 2, FP_sp 2, FP 1, FN 2 -> F = 2 / (2 + 2 + 1.5); DOA (50 + A0) / 4; SELD nanmean of the pooled terms
    rm = md.frame_level_scores(c, average='micro')
    assert rm['f_score'] == pytest.approx(2 / 5.5) and rm['doa_error'] == pytest.approx((50 + A0) / 4)
    assert rm['seld_score'] == pytest.approx(np.mean([1 - 2 / 5.5, (50 + A0) / 4 / 180, 2.5 / 4]))
    # no distance on one side: refused
    with pytest.raises(ValueError, match='distances'):
        md.frame_level_counts(ri, pi._replace(dist=None), nb_frames=3, nb_classes=3)


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
    m = scoring.SELDMetrics(nb_classes=C, frame_rate=rate, definitions=('seld2018',))
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
        assert md.doa_error(rs, rd, ps, pd) == pytest.approx(slow_doa_error(rs, rd, ps, pd), nan_ok=True)
        assert md.doa_error_legacy(rs, rd, pd) == pytest.approx(slow_doa_legacy(rs, rd, pd))
        assert md.frame_recall(rs, ps) == pytest.approx(slow_frame_recall(rs, ps))
        for legacy in (False, True):
            c = md.sed_scores(rs, ps, frames_per_segment=10, legacy=legacy)
            s = slow_sed_counts(rs, ps, 10, drop_last=legacy)
            assert (c['tp'], c['fp'], c['fn'], c['substitutions'], c['deletions'], c['insertions']) == \
                (s['tp'], s['fp'], s['fn'], s['s'], s['d'], s['i'])
        doa, fr = slow_dcase2019(rs, rd, ps, pd)
        assert md.doa_error_dcase2019(rs, rd, ps, pd) == pytest.approx(doa)
        m = scoring.SELDMetrics(nb_classes=4, frame_rate=10.0, definitions=('dcase2019',))
        m.evaluate(rs, rd, ps, pd)
        s = slow_sed_counts(rs, ps, 10, drop_last=True)
        r = m.results()['dcase2019']
        assert r['error_rate'] == pytest.approx((s['s'] + s['d'] + s['i']) / s['n_ref'])
        assert (r['doa_error'], r['frame_recall']) == pytest.approx((doa, fr))


def test_hungarian_matching_matches_scipy_for_all_shapes():
    rng = np.random.default_rng(3)
    rk = np.repeat(np.arange(60), rng.integers(1, 6, size=60))   # 1..5 reference DOAs per group
    pk = np.repeat(np.arange(60), rng.integers(1, 9, size=60))   # 1..8 predicted (8P5 = 6720 > 5040: scipy path)
    rv, pv = random_units(rng, (rk.size,)), random_units(rng, (pk.size,))
    m = doa_matching.match_groups(rk, rv, pk, pv)
    for g in range(60):
        cost = np.array([[_angle(a, b) for b in pv[pk == g]] for a in rv[rk == g]])
        r, c = linear_sum_assignment(cost)
        assert m['dist'][m['key'] == g].sum() == pytest.approx(cost[r, c].sum())
        assert (m['key'] == g).sum() == min(cost.shape)


@pytest.mark.parametrize('definition', ['dcase2020', 'dcase2021'])
def test_location_aware_matches_official_port_single_instance(definition):
    rng = np.random.default_rng(11)
    C, fps, T = 4, 10, 143
    for trial in range(3):
        rs, rd, ps, pd = random_file(rng, T, C, p=0.3, runs=trial != 1)
        ref, pred = rows_of(rs, rd), rows_of(ps, pd)
        gt_b, pr_b = official_segment_labels(ref, T, fps), official_segment_labels(pred, T, fps)
        c = md.location_aware_counts(instances_of(ref), instances_of(pred), nb_frames=T, nb_classes=C,
                                     frames_per_segment=fps, threshold=30.0, definition=definition)
        if definition == 'dcase2020':
            o, sdi = official_2020(pr_b, gt_b, C, 30.0)
            for k in ('tp', 'fp', 'fn', 'n_ref', 'n_sys', 'de_tp', 'de_sum'):
                assert c[k].sum() == pytest.approx(o[k]), k
        else:
            o, sdi = official_2021(pr_b, gt_b, C, 30.0)
            for k in o:
                np.testing.assert_allclose(c[k], o[k], err_msg=k)
        assert (c['substitutions'], c['deletions'], c['insertions']) == sdi


def test_segment_definitions_match_official_ports_multi_instance():
    rng = np.random.default_rng(5)
    C, fps, T = 3, 5, 60
    ref, pred = random_multi_rows(rng, T, C)
    gt_b, pr_b = official_segment_labels(ref, T, fps), official_segment_labels(pred, T, fps)
    o, sdi = official_2021(pr_b, gt_b, C, 40.0)
    c = md.location_aware_counts(instances_of(ref), instances_of(pred), nb_frames=T, nb_classes=C,
                                 frames_per_segment=fps, threshold=40.0, definition='dcase2022')
    for k in o:
        np.testing.assert_allclose(c[k], o[k], err_msg=k)
    assert (c['substitutions'], c['deletions'], c['insertions']) == sdi
    for name, avg in (('dcase2021', '2021'), ('dcase2022', 'macro')):
        assert md.location_aware_scores(c, definition=name) == pytest.approx(official_2021_scores(o, sdi, avg))
    o20, sdi20 = official_2020(pr_b, gt_b, C, 40.0)
    c20 = md.location_aware_counts(instances_of(ref), instances_of(pred), nb_frames=T, nb_classes=C,
                                   frames_per_segment=fps, threshold=40.0, definition='dcase2020')
    for k in ('tp', 'fp', 'fn', 'n_ref', 'n_sys', 'de_tp', 'de_sum'):
        assert c20[k].sum() == pytest.approx(o20[k]), k
    assert (c20['substitutions'], c20['deletions'], c20['insertions']) == sdi20


@pytest.mark.parametrize('average', ['macro', 'micro'])
def test_dcase2024_matches_official_port(average):
    rng = np.random.default_rng(6)
    C, T = 3, 40
    ref, pred, rd, pd = random_multi_rows(rng, T, C, with_dist=True)
    o = official_2024([r + (d,) for r, d in zip(ref, rd)], [p + (d,) for p, d in zip(pred, pd)], T, C, average)
    c = md.frame_level_counts(instances_of(ref, rd), instances_of(pred, pd), nb_frames=T, nb_classes=C)
    assert md.frame_level_scores(c, average=average) == pytest.approx(o)


def test_accumulation_is_exact_over_files():
    rng = np.random.default_rng(2)
    files = [random_file(rng, int(rng.integers(50, 120)), 3, p=0.4) for _ in range(3)]
    m = scoring.SELDMetrics(nb_classes=3, frame_rate=10.0)
    for f in files:
        m.evaluate(*f)
    # Concatenating files whose lengths are multiples of the segment gives the same segments.
    cut = [tuple(a[:len(a) // 10 * 10] for a in f) for f in files]
    m_cut = scoring.SELDMetrics(nb_classes=3, frame_rate=10.0)
    m_cat = scoring.SELDMetrics(nb_classes=3, frame_rate=10.0)
    for f in cut:
        m_cut.evaluate(*f)
    m_cat.evaluate(*[np.concatenate([f[i] for f in cut]) for i in range(4)])
    flat = scoring.flatten_results(m_cut.results())
    assert flat == pytest.approx(scoring.flatten_results(m_cat.results()), nan_ok=True)
    assert 0 < flat['seld2018/f_score'] < 1 and set(flat) >= {'seld2018/error_rate', 'dcase2022/localization_recall'}


# ==================================================================================================
# Edge cases
# ==================================================================================================
def _all(ref_sed, ref_doa, pred_sed, pred_doa, **kw):
    m = scoring.SELDMetrics(nb_classes=ref_sed.shape[1], frame_rate=10.0, **kw)
    m.evaluate(ref_sed, ref_doa, pred_sed, pred_doa)
    return m.results()


def test_empty_reference_and_prediction():
    rng = np.random.default_rng(0)
    _, _, ps, pd = random_file(rng, 30, 3, p=0.5)
    zs, zd = np.zeros_like(ps), np.zeros_like(pd)
    # Empty reference, 3 segments: ER = insertions / 1 (documented), F = 0, DOA undefined (NaN).
    res = _all(zs, zd, ps, pd)
    ins = int(md.segment_activity(ps, frames_per_segment=10).sum())
    assert res['seld2018']['error_rate'] == ins and res['seld2018']['f_score'] == 0.0
    assert math.isnan(res['seld2018']['doa_error']) and math.isnan(res['dcase2019']['doa_error'])
    assert res['dcase2021']['localization_recall'] == 0.0 and math.isnan(res['dcase2022']['localization_error'])
    # Nothing anywhere: ER 0, F 0, frame recall 1.
    res0 = _all(zs, zd, zs, zd)
    assert res0['seld2018']['error_rate'] == 0.0 and res0['seld2018']['frame_recall'] == 1.0
    # Empty prediction: deletions only -> ER 1, F 0.
    resp = _all(ps, pd, zs, zd)
    assert resp['seld2018']['error_rate'] == 1.0 and resp['seld2018']['f_score'] == 0.0
    assert resp['dcase2020']['error_rate'] == 1.0 and resp['dcase2021']['f_score'] == 0.0
    for r in (res, res0, resp):
        assert all(math.isfinite(v['seld_score']) for v in r.values())
    # dcase2024 with nothing matched: errors NaN, the score is the nanmean of what remains (1 - F_c per class)
    e = Instances(np.array([0]), np.array([0]), np.array([0]), np.array([X]), np.array([1.0]))
    c = md.frame_level_counts(e, Instances.empty()._replace(dist=np.zeros(0)), nb_frames=2, nb_classes=2)
    r = md.frame_level_scores(c)
    assert math.isnan(r['doa_error']) and r['f_score'] == 0.0 and r['seld_score'] == 1.0


def test_classes_absent_from_reference_macro_averaging():
    # Class 1 never occurs in the reference nor the prediction; class 0 is perfect.
    sed = np.zeros((20, 2))
    sed[:, 0] = 1
    doa = label_frames.vectors_to_doa(np.broadcast_to(X, (20, 2, 3)) * sed[..., None])
    micro = _all(sed, doa, sed, doa, average='micro')['dcase2022']
    assert micro['f_score'] == 1.0
    # Official macro (dcase2022's default): the absent class counts as F 0, LE 180, LR 0.
    r = _all(sed, doa, sed, doa)['dcase2022']
    assert r['f_score'] == 0.5 and r['localization_error'] == 90.0 and r['localization_recall'] == 0.5
    # dcase2021's default is micro
    assert _all(sed, doa, sed, doa)['dcase2021']['f_score'] == 1.0


def test_perfect_prediction_of_a_fold_missing_3_of_11_classes_official_macro():
    # The known case where the official 2022 code cannot score a perfect prediction perfectly: 11 classes, 8 of them
    # in the fold. A perfect prediction: the official port and dcase2022 (macro) give F = LR = 8/11 = 0.727 and
    # LE = 3 * 180 / 11 = 49.1 degrees (each absent class F 0, LE 180, LR 0); micro pools the counts: perfect.
    rng = np.random.default_rng(11)
    C, fps, T = 11, 10, 60
    rows = [(f, c, unit_vec) for c in range(8) for f in sorted(set(rng.integers(0, T, 12).tolist()))
            for unit_vec in [tuple(sph2cart(float(rng.uniform(-180, 180)), float(rng.uniform(-40, 40))))]]
    gt_b = official_segment_labels(rows, T, fps)
    o, sdi = official_2021(gt_b, gt_b, C, 20.0)
    official = official_2021_scores(o, sdi, 'macro')
    assert official['f_score'] == pytest.approx(8 / 11) and official['localization_error'] == pytest.approx(540 / 11)
    c = md.location_aware_counts(instances_of(rows), instances_of(rows), nb_frames=T, nb_classes=C,
                                 frames_per_segment=fps, definition='dcase2022')
    r = md.location_aware_scores(c, definition='dcase2022')
    assert r == pytest.approx(official)
    assert (round(r['f_score'], 3), round(r['localization_error'], 1), r['error_rate']) == (0.727, 49.1, 0.0)
    micro = md.location_aware_scores(c, definition='dcase2022', average='micro')
    assert (micro['f_score'], micro['localization_error'], micro['localization_recall']) == (1.0, 0.0, 1.0)


def test_single_partial_segment():
    # 3 frames at 10 frames/s: one (partial) segment. ref class 0 in f2 only, pred class 0 in f0.
    ref, pred = np.zeros((3, 1)), np.zeros((3, 1))
    ref[2, 0] = pred[0, 0] = 1
    assert md.segment_activity(ref, frames_per_segment=10).shape == (1, 1)
    s = md.sed_scores(ref, pred, frames_per_segment=10)
    assert (s['error_rate'], s['f_score']) == (0.0, 1.0)
    doa = label_frames.vectors_to_doa(np.broadcast_to(X, (3, 1, 3)) * ref[..., None])
    pdoa = label_frames.vectors_to_doa(np.broadcast_to(Y, (3, 1, 3)) * pred[..., None])
    res = _all(ref, doa, pred, pdoa)
    # no common frame: dcase2020 FN; LE undefined -> NaN, SELD uses 180 and stays finite
    assert math.isnan(res['dcase2020']['localization_error'])
    assert all(math.isfinite(v['seld_score']) for v in res.values())


def test_bad_input_raises():
    with pytest.raises(ValueError, match='0 or 1'):
        md.sed_scores(np.full((3, 2), 0.7), np.zeros((3, 2)), frames_per_segment=2)
    with pytest.raises(ValueError, match='shape'):
        md.doa_error(np.zeros((3, 2)), np.zeros((3, 5)), np.zeros((3, 2)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match='definitions'):
        scoring.SELDMetrics(nb_classes=2, frame_rate=10.0, definitions=('dcase2099',))
    with pytest.raises(SELDError, match='no file'):
        scoring.SELDMetrics(nb_classes=2, frame_rate=10.0).results()
    m = scoring.SELDMetrics(nb_classes=1, frame_rate=10.0, definitions=('dcase2024',))
    with pytest.raises(SELDError, match='distances'):
        m.evaluate(np.ones((2, 1)), np.tile(X, (2, 1)), np.ones((2, 1)), np.tile(X, (2, 1)))


# ==================================================================================================
# The scorer: grids
# ==================================================================================================
TUT_RATE = md.PAPER_FRAME_RATE


def _make_events(rows):
    """Events from (class, start, end, azi, ele, dist) rows."""
    a = np.array([r[1:] for r in rows], dtype=float).reshape(-1, 5)
    return Events(np.array([r[0] for r in rows], dtype=np.int64), a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4],
                  [f'x{i:03d}.wav' for i in range(len(rows))])


def test_scorer_tut_grids_by_hand():
    # A 2-s recording, 343 model frames at 44100/256 fps; one event of class 0 from 0.5 to 1.2 s at azimuth 30.
    # The reference is framed ONCE at the model rate by the label rule: frames floor(0.5 * 172.27) = 86 ..
    # ceil(1.2 * 172.27) = 207. The prediction is exactly that (an oracle).
    # 10 fps: model frame i lies in grid frame floor(i * 10 / 172.27). Grid frame 4 holds model frames 69..86 (1 of
    #   18 active), 5..11 are fully active, 12 holds 207..223 (1 of 17). By majority BOTH sides are frames 5..11
    #   (framing the seconds on this grid directly would give 5..12: ceil(1.2 * 10) = 12, an error of the scorer):
    #   segments 0-9 and 10-19 hold the class on both sides, angle 0 -> TP 2, FN 0, FP 0.
    # 50 fps: grid frame 24 holds model frames 83..86 (1 of 4), 25 holds 87..89 ... 59 holds 204..206 (all active),
    #   60 holds 207..210 (1 of 4). Both sides are frames 25..59 (direct framing: 25..60): all 100 frames agree
    #   (frame recall 100/100); SED blocks [0:49] and [50:99] hold the class on both sides -> F 1.
    ev = _make_events([(0, 0.5, 1.2, 30.0, 0.0, 2.0)])
    T = 343
    sed = np.zeros((T, 2))
    sed[86:208, 0] = 1
    doa = label_frames.vectors_to_doa(np.broadcast_to(sph2cart(30, 0), (T, 2, 3)) * 1.0)  # raw DOAs for all classes
    assert label_frames.event_frames(np.array([0.5]), np.array([1.2]), frame_rate=TUT_RATE) == ([86], [207])
    assert label_frames.event_frames(np.array([0.5]), np.array([1.2]), frame_rate=50.0) == ([25], [60])
    s = scoring.SELDScorer(classes=['a', 'b'], prediction_rate=TUT_RATE,
                      definitions=('seld2018', 'dcase2019', 'dcase2020', 'dcase2021', 'dcase2022'), average='micro')
    s.add('clip', ev, sed, doa, duration_s=2.0, nb_frames=T)
    r, d = s.results(), s.details()
    assert r['seld2018'] == pytest.approx(dict(error_rate=0.0, f_score=1.0, doa_error=0.0, frame_recall=1.0,
                                               seld_score=0.0, doa_missing=0), abs=1e-5)
    assert (d['dcase2019']['good_frames'], d['dcase2019']['frames']) == (100, 100)
    assert (d['dcase2019']['tp'], d['dcase2019']['fp'], d['dcase2019']['fn']) == (2, 0, 0)
    assert r['dcase2019']['frame_recall'] == 1.0 and r['dcase2019']['f_score'] == 1.0
    assert d['dcase2022']['tp'] == [2.0, 0.0] and d['dcase2022']['n_ref'] == [2.0, 0.0]
    assert d['dcase2022']['fn'] == [0.0, 0.0] and d['dcase2022']['fp'] == [0.0, 0.0]
    for name in ('dcase2020', 'dcase2021', 'dcase2022'):
        assert r[name]['error_rate'] == 0.0 and r[name]['f_score'] == 1.0, name
        assert r[name]['localization_error'] == pytest.approx(0.0, abs=1e-5), name
        assert r[name]['localization_recall'] == 1.0, name
    g = s.grids()
    assert (g['seld2018']['frame_rate'], g['seld2018']['frames_per_segment']) == (TUT_RATE, 172)
    assert (g['dcase2019']['frame_rate'], g['dcase2019']['frames_per_segment']) == (50.0, 50)
    assert (g['dcase2021']['frame_rate'], g['dcase2021']['frames_per_segment']) == (10.0, 10)
    assert 'majority' in g['dcase2021']['prediction'] and 'then as the prediction' in g['dcase2021']['reference']
    # the 10-fps prediction by majority, and not by 'any' (which would add frames 4 and 12)
    s10, _ = label_frames.resample_matrices(sed, doa, frame_rate=TUT_RATE, out_frame_rate=10.0, nb_frames_out=20)
    assert np.flatnonzero(s10[:, 0]).tolist() == list(range(5, 12))
    # the reference on each grid, by hand: 10 fps 5..11, 50 fps 25..59
    inst = label_frames.events_to_instances(ev, frame_rate=TUT_RATE, nb_frames=T)
    r10 = label_frames.resample_instances(inst, nb_classes=2, frame_rate=TUT_RATE, out_frame_rate=10.0, nb_frames=T,
                                     nb_frames_out=20)
    r50 = label_frames.resample_instances(inst, nb_classes=2, frame_rate=TUT_RATE, out_frame_rate=50.0, nb_frames=T,
                                     nb_frames_out=100)
    assert r10.frame.tolist() == list(range(5, 12)) and r50.frame.tolist() == list(range(25, 60))
    assert r50.dist.tolist() == [2.0] * 35 and np.allclose(r10.vec, sph2cart(30, 0))
    # A prediction one model frame shorter at each end (87..206) is still 5..11 and 25..59: perfect on the grids,
    # and on the model grid 2 of 343 frames differ (frame recall 341/343), segments unchanged.
    s2 = scoring.SELDScorer(classes=['a', 'b'], prediction_rate=TUT_RATE,
                            definitions=('seld2018', 'dcase2019', 'dcase2021'))
    sed2 = sed.copy()
    sed2[[86, 207], 0] = 0
    s2.add('clip', ev, sed2, doa, duration_s=2.0, nb_frames=T)
    r2 = s2.results()
    assert r2['seld2018']['frame_recall'] == pytest.approx(341 / 343) and r2['seld2018']['error_rate'] == 0.0
    assert r2['seld2018']['doa_missing'] == 2
    assert r2['dcase2019']['frame_recall'] == 1.0 and r2['dcase2021']['error_rate'] == 0.0


def test_resample_instances_keeps_same_class_overlaps_in_layers():
    # Two instances of class 1 in frames 0..5 at 20 fps (+x listed first, then +y), +x alone in 6..9. Down to
    # 10 fps (2 input frames per output frame, majority = both): layer 0 (listed last: +y in 0..5, +x in 6..9) is
    # what the class-wise matrices hold, converted exactly as they are; layer 1 (+x in 0..5) stays a second instance.
    frame = np.r_[np.repeat(np.arange(6), 2), np.arange(6, 10)]
    vec = np.r_[np.tile([[1.0, 0, 0], [0, 1.0, 0]], (6, 1)), np.tile([[1.0, 0, 0]], (4, 1))]
    inst = label_frames.Instances(frame, np.ones(16, np.int64), np.zeros(16, np.int64), vec, np.arange(16.0))
    assert label_frames.instance_layers(inst, nb_classes=2).tolist() == [1, 0] * 6 + [0] * 4
    out = label_frames.resample_instances(inst, nb_classes=2, frame_rate=20.0, out_frame_rate=10.0, nb_frames=10,
                                     nb_frames_out=5)
    assert out.frame.tolist() == [0, 0, 1, 1, 2, 2, 3, 4] and out.track.tolist() == [1, 0, 1, 0, 1, 0, 0, 0]
    assert np.allclose(out.vec, [X, Y, X, Y, X, Y, X, X])
    # distances: the mean of the layer's active input frames (layer 0 rows 1, 3 -> 2; layer 1 rows 0, 2 -> 1 ...)
    assert out.dist.tolist() == [1.0, 2.0, 5.0, 6.0, 9.0, 10.0, 12.5, 14.5]
    sed, doa = label_frames.instances_to_matrices(inst, nb_classes=2, nb_frames=10)
    s5, d5 = label_frames.resample_matrices(sed, doa, frame_rate=20.0, out_frame_rate=10.0, nb_frames_out=5)
    s_out, d_out = label_frames.instances_to_matrices(out, nb_classes=2, nb_frames=5)
    assert np.array_equal(s5, s_out) and np.allclose(d5, d_out)


def test_scorer_instances_reference_upsampled_and_refused():
    # A 10-fps reference and an identical 10-fps prediction: every definition is perfect, dcase2019 included
    # (each label frame repeated 5 times at 50 fps). Micro averaging: a class absent from the file would count
    # F 0 in dcase2022's macro average.
    rng = np.random.default_rng(1)
    rs, rd, _, _ = random_file(rng, 30, 3, p=0.4)
    ref = label_frames.matrices_to_instances(rs, rd)
    s = scoring.SELDScorer(classes=['a', 'b', 'c'], prediction_rate=10.0, reference_rate=10.0,
                      definitions=md.DEFINITIONS[:-1], average='micro')
    s.add('x', ref, rs, rd, duration_s=3.0, nb_frames=30)
    for name, vals in s.results().items():
        assert vals['f_score'] == 1.0 and vals['error_rate'] == 0.0, name
    assert s.grids()['dcase2019']['reference'].endswith('repeated 5 times')
    assert s.details()['dcase2019']['frames'] == 150
    # the same reference against a model-rate prediction: a 10-fps reference cannot be used at 172.27 fps
    s = scoring.SELDScorer(classes=['a', 'b', 'c'], prediction_rate=TUT_RATE, reference_rate=10.0)
    with pytest.raises(SELDError, match=r'x: a reference at 10 frames/s cannot be scored on a 172.266'):
        s.add('x', ref, np.zeros((516, 3)), np.zeros((516, 9)), duration_s=3.0, nb_frames=516)
    # a reference frame beyond the recording
    s = scoring.SELDScorer(classes=['a', 'b', 'c'], prediction_rate=10.0, reference_rate=10.0)
    with pytest.raises(SELDError, match='beyond the recording'):
        s.add('y', ref, rs[:20], rd[:20], duration_s=2.0, nb_frames=20)
    with pytest.raises(SELDError, match='nb_frames=5 at 10 frames/s is 0.500 s'):
        s.add('z', ref, rs[:5], rd[:5], duration_s=3.0, nb_frames=5)


def test_scorer_scores_predictions_as_written():
    # Inactive classes' DOAs and vector lengths are not scored: a prediction with other raw vectors for inactive
    # classes and scaled active vectors scores the same.
    rng = np.random.default_rng(4)
    T, C = 200, 3
    rs, rd, ps, pd = random_file(rng, T, C, p=0.3)
    ev = label_frames.matrices_to_instances(rs, rd)
    scale = rng.uniform(0.2, 3, size=(T, 1))
    pd2 = np.where(np.tile(ps, 3) > 0, pd * scale, rng.standard_normal(pd.shape))
    res = []
    for doa in (pd, pd2):
        s = scoring.SELDScorer(classes=list('abc'), prediction_rate=10.0, reference_rate=10.0,
                          definitions=md.DEFINITIONS[:-1])
        s.add('f', ev, ps, doa, duration_s=20.0, nb_frames=T)
        res.append(scoring.flatten_results(s.results()))
    assert res[0] == pytest.approx(res[1], rel=1e-12, nan_ok=True)


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


def test_upsample_instances():
    inst = Instances(np.array([0, 2, 2]), np.array([1, 0, 0]), np.array([7, 1, 2]), np.array([X, Y, Z]),
                     np.array([1.0, 2.0, 3.0]))
    up = label_frames.upsample_instances(inst, factor=3, nb_frames=8)
    # frame 0 -> 0, 1, 2; frame 2 -> 6, 7 (8 is cut), both rows of frame 2 kept in order
    assert up.frame.tolist() == [0, 1, 2, 6, 6, 7, 7]
    assert up.track.tolist() == [7, 7, 7, 1, 2, 1, 2] and up.dist.tolist() == [1, 1, 1, 2, 3, 2, 3]


def _run_cli(*args):
    """The scoring command in this process, through utils.run_cli as ``python evaluation_metrics.py`` runs it (its
    exit status from the shell: tests/test_scoring_cli.py)."""
    from commands import in_process
    return in_process(em.main, *args)


def _assert_same(cli_json, mem):
    assert set(cli_json) == set(mem)
    for name in mem:
        assert set(cli_json[name]) == set(mem[name]), name
        for k, v in mem[name].items():
            w = cli_json[name][k]
            assert (w is None and not math.isfinite(v)) or abs(w - v) <= 1e-9, (name, k, w, v)


TUT_CLASSES = ['cough', 'knock', 'speech']


def test_cli_scores_a_tut_run_folder_like_the_run(tmp_path):
    # A TUT-2018 description folder (train and test files; only the predicted test files are scored) and
    # model-rate predictions written as the pipeline writes them, with format.json.
    rng = np.random.default_rng(9)
    desc, pred_dir = tmp_path / 'desc_ov1_split1', tmp_path / 'run' / 'predictions'
    desc.mkdir(), pred_dir.mkdir(parents=True)
    # what seld.py writes; its in-memory scorer is built from the same dict
    info = dict(format='dcase2019', frame_rate=TUT_RATE, classes=TUT_CLASSES, files={},
                reference=dict(format='tut2018', naming='tut', frame_rate=None),
                metrics=list(md.NO_DISTANCE_DEFINITIONS), doa_threshold=20.0, segment_len_s=1.0, dataset='ansim')
    scorer = scoring.SELDScorer.from_format(info)
    files = info['files']
    for i, (stem, dur) in enumerate((('train_0', 3.0), ('test_0', 3.0), ('test_1', 2.3))):
        lines = ['sound_event_recording,start_time,end_time,ele,azi,dist']
        for k in range(6):
            start = round(float(rng.uniform(0, dur - 0.5)), 3)
            lines.append(f'{TUT_CLASSES[k % 3]}{k:03d}.wav,{start},{round(start + float(rng.uniform(0.2, 1.0)), 3)},'
                         f'{int(rng.integers(-4, 5)) * 10},{int(rng.integers(-18, 18)) * 10},2')
        (desc / f'{stem}.csv').write_text('\n'.join(lines) + '\n')
        if stem.startswith('train'):
            continue
        T = int((dur * 44100 - 512) // 256 + 1)  # the feature frame count
        ref = formats.read_desc_file(desc / f'{stem}.csv', classes=TUT_CLASSES)
        rs, rd = label_frames.instances_to_matrices(
            label_frames.events_to_instances(ref, frame_rate=TUT_RATE, nb_frames=T), nb_classes=3, nb_frames=T)
        flip = rng.random(rs.shape) < 0.02
        ps = np.abs(np.roll(rs, int(rng.integers(-8, 9)), axis=0) - flip)
        pd = rd + 0.3 * rng.standard_normal(rd.shape)  # raw outputs, any value for inactive classes
        scorer.add(stem, ref, ps, pd, duration_s=dur, nb_frames=T)
        formats.write_csv(pred_dir / f'{stem}.csv', ps, pd, fmt='dcase2019', frame_rate=TUT_RATE)
        files[stem] = dict(nb_frames=T, duration_s=dur)
    formats.write_format_file(pred_dir, fmt=info.pop('format'), **info)
    mem = scorer.results()
    assert set(mem) == set(md.NO_DISTANCE_DEFINITIONS)
    out = _run_cli('--ref', desc, '--pred', pred_dir)
    assert out.returncode == 0, out.stderr
    _assert_same(json.loads(out.stdout), mem)
    assert 0.3 < mem['seld2018']['f_score'] < 1 and 'majority' in out.stderr and 'SELD' in out.stderr


def _write_dcase(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(f'{f},{c},{t},{az!r},{el!r}\n' for f, c, t, az, el in rows))


def test_cli_scores_a_dcase2020_run_against_metadata_dev(tmp_path):
    # metadata_dev/ with sub-folders, several instances of a class per frame; 10-fps predictions.
    rng = np.random.default_rng(12)
    C = 4
    classes = [f'class{i}' for i in range(C)]
    meta, pred_dir = tmp_path / 'metadata_dev', tmp_path / 'run' / 'predictions'
    pred_dir.mkdir(parents=True)
    definitions = [d for d in md.DEFINITIONS if d != 'dcase2024']
    scorer = scoring.SELDScorer(classes=classes, prediction_rate=10.0, reference_rate=10.0, definitions=definitions)
    files = {}
    for sub, stem, dur in (('dev-train', 'fold3_room1_mix001', 5.0), ('dev-test', 'fold4_room2_mix001', 6.0),
                           ('dev-test', 'fold4_room2_mix002', 4.4)):
        T = label_frames.nb_frames_at(dur, frame_rate=10)
        rows = sorted([(f, int(c), tr, round(float(rng.uniform(-180, 180))), round(float(rng.uniform(-40, 40))))
                       for tr in range(3) for c in [rng.integers(0, C)] for f in range(*sorted(rng.integers(0, T, 2)))])
        _write_dcase(meta / sub / f'{stem}.csv', rows)
        if sub == 'dev-train':
            continue
        ref = formats.read_instances(meta / sub / f'{stem}.csv', fmt='dcase2020', nb_classes=C)
        rs, rd = label_frames.instances_to_matrices(ref, nb_classes=C, nb_frames=T)
        ps = np.abs(rs - (rng.random(rs.shape) < 0.1))
        pd = rd + 0.4 * rng.standard_normal(rd.shape)
        scorer.add(stem, ref, ps, pd, duration_s=dur, nb_frames=T)
        formats.write_csv(pred_dir / f'{stem}.csv', ps, pd, fmt='dcase2020', frame_rate=10.0)
        files[stem] = dict(nb_frames=T, duration_s=dur)
    formats.write_format_file(pred_dir, fmt='dcase2020', frame_rate=10.0, classes=classes, files=files,
                              reference=dict(format='dcase2020', naming='plain', frame_rate=10.0),
                              metrics=definitions, doa_threshold=20.0, segment_len_s=1.0, dataset='tau2021sse_nigens')
    out = _run_cli('--ref', meta, '--pred', pred_dir)
    assert out.returncode == 0, out.stderr
    _assert_same(json.loads(out.stdout), scorer.results())
    # another system's files: no format.json, the formats given as flags, the files' lengths from their last rows
    os.remove(pred_dir / formats.FORMAT_FILE)
    flags = ('--ref', meta, '--pred', pred_dir, '--format', 'dcase2020', '--nb-classes', C)
    # the headerless references' format from their 5 fields (frame,class,track,azi,ele): dcase2020, as --ref-format
    # says it; the same numbers either way
    inferred = _run_cli(*flags, '--metrics', 'dcase2021', 'dcase2022')
    assert inferred.returncode == 0, inferred.stderr
    ok = _run_cli(*flags, '--ref-format', 'dcase2020', '--metrics', 'dcase2021', 'dcase2022')
    assert ok.returncode == 0, ok.stderr
    assert set(json.loads(ok.stdout)) == {'dcase2021', 'dcase2022'}
    assert json.loads(inferred.stdout) == json.loads(ok.stdout)
    # a predicted stem without reference; a stem found twice in the sub-folders
    _write_dcase(pred_dir / 'fold9_room9_mix009.csv', [(0, 0, 0, 10.0, 0.0)])
    missing = _run_cli(*flags, '--ref-format', 'dcase2020')
    assert missing.returncode == 2 and 'fold9_room9_mix009' in missing.stderr
    os.remove(pred_dir / 'fold9_room9_mix009.csv')
    _write_dcase(meta / 'dev-val' / 'fold4_room2_mix002.csv', [(0, 0, 0, 10.0, 0.0)])
    dup = _run_cli(*flags, '--ref-format', 'dcase2020')
    assert dup.returncode == 2 and 'dev-val' in dup.stderr and 'dev-test' in dup.stderr


def test_cli_dcase2024_reference_in_cm_and_errors(tmp_path):
    # dcase2024 rows with distances: the reference in cm (STARSS23), the prediction in metres; dcase2024 is added to
    # the default definitions because both have distances.
    (tmp_path / 'ref').mkdir(), (tmp_path / 'pred').mkdir()
    (tmp_path / 'ref' / 'a.csv').write_text('0,0,0,10,0,200\n1,0,0,10,0,200\n2,1,0,-90,0,100\n')
    (tmp_path / 'pred' / 'a.csv').write_text('0,0,0,15.0,0.0,2.5\n1,0,0,40.0,0.0,2.0\n2,1,0,-90.0,0.0,3.0\n')
    out = _run_cli('--ref', tmp_path / 'ref', '--pred', tmp_path / 'pred', '--format', 'dcase2024', '--ref-format',
                   'dcase2024', '--nb-classes', 2, '--duration', 0.3)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)['dcase2024']
    # c0: f0 5 deg, 0.5 m (rel 0.25) TP; f1 30 deg -> spatial FP; c1: f2 0 deg (A0), 2 m, rel 2 > 1 -> spatial FP
    assert r['f_score'] == pytest.approx(np.mean([1 / 2, 0.0]))
    assert r['distance_error'] == pytest.approx(np.mean([0.25, 2.0]))
    assert r['relative_distance_error'] == pytest.approx(np.mean([0.125, 2.0]))
    # a TUT header row in a folder declared as DCASE metadata, a row beyond --duration, no format at all
    (tmp_path / 'ref' / 'a.csv').write_text('sound_event_recording,start_time,end_time,ele,azi,dist\n')
    bad = _run_cli('--ref', tmp_path / 'ref', '--pred', tmp_path / 'pred', '--format', 'dcase2024', '--ref-format',
                   'dcase2024', '--nb-classes', 2)
    assert bad.returncode == 2 and 'tut2018 description' in bad.stderr
    late = _run_cli('--ref', tmp_path / 'ref', '--pred', tmp_path / 'pred', '--format', 'dcase2024', '--nb-classes', 2,
                    '--duration', 0.2, '--classes', 'x,y')
    assert late.returncode == 2 and 'a.csv:3' in late.stderr and 'frame=2' in late.stderr
    none = _run_cli('--ref', tmp_path / 'ref', '--pred', tmp_path / 'pred')
    assert none.returncode == 2 and 'give --format' in none.stderr
    missing = _run_cli('--ref', tmp_path / 'nope', '--pred', tmp_path / 'pred', '--format', 'dcase2019')
    assert missing.returncode == 2 and 'nope' in missing.stderr


# ---- benchmarks/diag_per_class.py ------------------------------------------------------------------
def _diag_per_class():
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks', 'diag_per_class.py')
    spec = importlib.util.spec_from_file_location('diag_per_class', path)
    diag = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(diag)
    return diag


def test_per_class_diagnosis_by_hand():
    diag = _diag_per_class()
    # 3 frames, 2 classes. Frame 0: class 0 at (az 170, el 0), predicted at (-170, 0): 20 deg, all of it azimuth.
    # Frame 1: class 1 at (0, 30), predicted at (0, -10): 40 deg of elevation. Frame 2: class 0 active in the
    # reference only, class 1 in the prediction only: no pair.
    ref_sed = np.array([[1, 0], [0, 1], [1, 0]], dtype=float)
    pred_sed = np.array([[1, 0], [0, 1], [0, 1]], dtype=float)
    ref_vec, pred_vec = np.zeros((3, 2, 3)), np.zeros((3, 2, 3))
    ref_vec[0, 0], pred_vec[0, 0] = sph2cart(170.0, 0.0), sph2cart(-170.0, 0.0)
    ref_vec[1, 1], pred_vec[1, 1] = sph2cart(0.0, 30.0), sph2cart(0.0, -10.0)
    ref_vec[2, 0], pred_vec[2, 1] = sph2cart(45.0, 0.0), sph2cart(45.0, 0.0)
    cls, angle, ele_ref, ele_pred, d_azi = diag.per_class_errors(ref_sed, label_frames.vectors_to_doa(ref_vec),
                                                                 pred_sed, label_frames.vectors_to_doa(pred_vec))
    np.testing.assert_array_equal(cls, [0, 1])
    np.testing.assert_allclose(angle, [20.0, 40.0], atol=1e-9)
    np.testing.assert_allclose(ele_ref, [0.0, 30.0], atol=1e-9)
    np.testing.assert_allclose(ele_pred, [0.0, -10.0], atol=1e-9)
    np.testing.assert_allclose(d_azi, [20.0, 0.0], atol=1e-9)
    # Elevation table: references at 28, 32 (bin 30) and -41 (bin -40); predictions -10, 20 and -30.
    bins, count, mean, std, wrong = diag.elevation_table(np.array([28.0, 32.0, -41.0]), np.array([-10.0, 20.0, -30.0]))
    np.testing.assert_allclose(bins, [-40.0, 30.0])
    np.testing.assert_array_equal(count, [1, 2])
    np.testing.assert_allclose(mean, [-30.0, 5.0])
    np.testing.assert_allclose(std, [0.0, 15.0], atol=1e-9)
    np.testing.assert_allclose(wrong, [0.0, 0.5])


def test_intensity_check_of_stored_foa_features(tmp_path, capsys):
    """Plane waves written as standardized FOA features give back their direction; the folder check reads them."""
    diag = _diag_per_class()
    rng = np.random.default_rng(0)
    frames, bins, C = 6, 5, 2
    azi, ele = np.array([30.0, -120.0, 75.0, 0.0, 180.0, -45.0]), np.array([20.0, -40.0, 0.0, 10.0, -30.0, 40.0])
    a, e = np.radians(azi), np.radians(ele)
    gains = np.stack([np.ones(frames), np.sin(a) * np.cos(e), np.sin(e), np.cos(a) * np.cos(e)], axis=1)  # W Y Z X
    w = rng.standard_normal((frames, bins)) + 1j * rng.standard_normal((frames, bins))
    stft = w[..., None] * gains[:, None, :]
    raw = np.concatenate([np.abs(stft), np.angle(stft)], axis=-1)
    mean, scale = rng.standard_normal((bins, 8)), rng.uniform(0.5, 2.0, (bins, 8))
    x_norm = (raw - mean) / scale
    np.testing.assert_allclose(diag.intensity_directions(x_norm, mean=mean, scale=scale), sph2cart(azi, ele),
                               atol=1e-9)
    # A feature folder: frames 0-5 hold class 0 or 1 alone (labels: sed, then x, y, z blocks), frame 6 is silent.
    for sub in ('feat_norm', 'label'):
        os.makedirs(tmp_path / sub)
    vec = sph2cart(azi, ele)
    label = np.zeros((frames + 1, 4 * C))
    cls = np.array([0, 1, 1, 0, 1, 0])
    label[np.arange(frames), cls] = 1
    for k in range(3):
        label[np.arange(frames), C + k * C + cls] = vec[:, k]
    np.save(tmp_path / 'feat_norm' / 'a.npy', np.concatenate([x_norm, np.zeros((1, bins, 8))]).astype(np.float32))
    np.save(tmp_path / 'label' / 'a.npy', label)
    np.savez(tmp_path / 'scaler.npz', mean=mean, scale=scale)
    (tmp_path / 'extraction.json').write_text(json.dumps({'config': {'format': 'foa', 'classes': ['a', 'b']}}))
    assert diag.feature_check(str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert '1 recordings, 6 single-source frames' in out and 'angle median 0.00 mean 0.00' in out
    (tmp_path / 'extraction.json').write_text(json.dumps({'config': {'format': 'mic', 'classes': ['a', 'b']}}))
    with pytest.raises(SELDError, match="format='mic'"):
        diag.feature_check(str(tmp_path))

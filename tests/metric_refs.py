"""The oracles of the metric tests: obvious loops over frames (``slow_*``), and ports of the official DCASE
2019 / 2020 / 2021-2023 / 2024 logic (``official_*``), written here from the published algorithms on their dict
structures; plus random files for them. benchmarks/bench_metrics.py times the vectorized code against them.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.optimize import linear_sum_assignment

import label_frames
from label_frames import Instances


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

"""The metric definitions (metric_definitions.py, doa_matching.py) against hand-computed cases, sed_eval, slow
per-frame references and ports of the official DCASE code (tests/metric_refs.py). Every definition has a hand case
whose counts are derived in its comments; docs/metrics.md gives the formulas.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

import doa_matching
import label_frames
import metric_definitions as md
import scoring
from label_frames import Instances
from utils import SELDError, sph2cart

from metric_refs import (
    A0, X, Y, Z, _angle, instances_of, official_2020, official_2021, official_2021_scores, official_2024,
    official_segment_labels, random_file, random_multi_rows, random_units, rows_of, slow_dcase2019, slow_doa_error,
    slow_doa_legacy, slow_frame_recall, slow_sed_counts)




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
    # dcase2024_nodist (the official eval_dist=False), the same files without distances: f1 c1 is now a TP
    # (8.1e-4 deg), so c1: TP 2, FP_sp 0 -> F_c1 = 2 / (2 + 0.5) = 0.8; c0 unchanged 1/2.5; c2 0 -> F = 1.2 / 3.
    # Angles and LR as above. ER counts spatial misses as FPs: f1 now has 1 FP (c0) -> I 1; f0 D 1, f2 S 1 -> 3/6.
    # SELD per class nanmean(ER, 1 - F_c, DOA_c / 180, 1 - LR_c): c0 (1/2 + 0.6 + 20/180 + 0), c1 (1/2 + 0.2 +
    # le1/180 + 1/3), c2 (1/2 + 1 + 1) / 3 (its DOA is NaN).
    no = [x._replace(dist=None) for x in (ri, pi)]
    cn = md.frame_level_counts(*no, nb_frames=3, nb_classes=3, distances=False)
    np.testing.assert_allclose(cn['tp'], [1, 2, 0])
    np.testing.assert_allclose(cn['fp_spatial'], [1, 0, 0])
    er = 3 / 6
    assert md.frame_level_scores(cn, distances=False) == pytest.approx(dict(
        error_rate=er, f_score=1.2 / 3, doa_error=(20 + le1) / 2, localization_recall=5 / 9,
        seld_score=np.mean([(er + 0.6 + 20 / 180) / 4, (er + 0.2 + le1 / 180 + 1 / 3) / 4, (er + 2) / 3])))
    # distances given are ignored: the same counts
    cd = md.frame_level_counts(ri, pi, nb_frames=3, nb_classes=3, distances=False)
    assert all(np.array_equal(cn[k], cd[k]) for k in cn)


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

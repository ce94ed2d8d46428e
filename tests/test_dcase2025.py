"""The DCASE 2025 Stereo SELD set: its metric (hand-computed cases), its file format (reader and writer agree), its
layout and folds, the look-alike's stereo law and labels, the 2025 targets, and the task-id end to end."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import soundfile as sf

import batch_feature_extraction
import datasets
import formats
import metric_definitions as md
import multitrack_labels
import parameter
import scoring
import seld
from dcase_outputs import write_instances
from label_frames import Instances
from synth import dcase as synth_dcase
from synth.stereo import foa_to_stereo, stereo_rows
from utils import SELDError

import commands

EPS = np.finfo(float).eps


def inst(rows: list[tuple]) -> Instances:
    """Instances from ``(frame, class, azimuth in degrees, distance in m, onscreen)`` rows (tracks by order)."""
    a = np.array(rows, dtype=np.float64).reshape(-1, 5)
    az = np.deg2rad(a[:, 2])
    return Instances(a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), np.arange(len(a), dtype=np.int64),
                     np.stack([np.cos(az), np.sin(az), np.zeros_like(az)], axis=1), a[:, 3],
                     a[:, 4].astype(np.int64))


def scores(ref: list[tuple], pred: list[tuple], *, nb_frames: int = 4, nb_classes: int = 2) -> dict[str, float]:
    counts = md.frame_level_counts_2025(inst(ref), inst(pred), nb_frames=nb_frames, nb_classes=nb_classes)
    return md.frame_level_scores_2025(counts)


# ---- the metric, by hand ------------------------------------------------------------------------
def test_perfect_prediction():
    ref = [(0, 0, 30, 2.0, 1), (1, 0, 35, 2.0, 1), (1, 1, -70, 4.0, 0), (2, 1, -60, 4.0, 0)]
    s = scores(ref, ref)
    # F = TP / (eps + TP) per class, macro over the 2 classes; no error; every flag right
    assert s['f_score'] == pytest.approx(1.0, abs=1e-15) and s['f_score_onscreen'] == s['f_score']
    assert s['doa_error'] == 0 and s['distance_error'] == 0 and s['relative_distance_error'] == 0
    assert s['onscreen_accuracy'] == 1.0 and s['f_error'] == pytest.approx(0.0, abs=1e-15)


def test_one_missed_instance():
    ref = [(0, 0, 30, 2.0, 1), (1, 0, 35, 2.0, 1), (1, 1, -70, 4.0, 0)]
    pred = [(0, 0, 30, 2.0, 1), (1, 0, 35, 2.0, 1)]  # class 1's only instance is missed: FN 1
    s = scores(ref, pred)
    # class 0: 2 / 2 = 1; class 1: 0 / (0 + 0.5 * 1) = 0; macro 0.5. Errors only from class 0 (class 1: NaN, left out)
    assert s['f_score'] == pytest.approx(0.5, abs=1e-15)
    assert s['doa_error'] == 0 and s['relative_distance_error'] == 0


def test_azimuth_error_beyond_20_degrees_and_front_back_folding():
    # frame 0: 10 vs 35 deg -> 25 > 20: a spatial FP; frame 1: 30 vs 150 (its mirror image behind) -> 0;
    # frame 2: 80 vs 100 -> folded 80 vs 80 -> 0; frame 3: -85 vs -95 -> -85 vs -85 -> 0
    ref = [(0, 0, 10, 2.0, 0), (1, 0, 30, 2.0, 0), (2, 0, 80, 2.0, 0), (3, 0, -85, 2.0, 0)]
    pred = [(0, 0, 35, 2.0, 0), (1, 0, 150, 2.0, 0), (2, 0, 100, 2.0, 0), (3, 0, -95, 2.0, 0)]
    s = scores(ref, pred, nb_classes=1)
    assert s['f_score'] == pytest.approx(3 / 4)  # TP 3 / (TP 3 + FP_spatial 1)
    assert s['doa_error'] == pytest.approx(25 / 4)  # every matched pair counts, beyond the threshold too
    # at exactly 20 degrees a pair still counts (the official '> 20'): 10 vs 30
    assert scores([(0, 0, 10, 2.0, 0)], [(0, 0, 30, 2.0, 0)], nb_classes=1)['f_score'] == pytest.approx(1.0)


def test_distance_errors():
    # frame 0: 2 m vs 5 m -> |3| / 2 = 1.5 > 1: a spatial FP; frame 1: 2 m vs 3 m -> 0.5: a TP
    ref = [(0, 0, 0, 2.0, 0), (1, 0, 0, 2.0, 0)]
    pred = [(0, 0, 0, 5.0, 0), (1, 0, 0, 3.0, 0)]
    s = scores(ref, pred, nb_classes=1)
    assert s['f_score'] == pytest.approx(0.5)
    assert s['distance_error'] == pytest.approx(2.0)  # (3 + 1) / 2 metres
    assert s['relative_distance_error'] == pytest.approx(1.0)  # (1.5 + 0.5) / 2
    # a relative error of exactly 1 (4 m for 2 m) is not beyond the threshold
    assert scores([(0, 0, 0, 2.0, 0)], [(0, 0, 0, 4.0, 0)], nb_classes=1)['f_score'] == pytest.approx(1.0)


def test_onscreen_flag_counts_only_in_the_audiovisual_f():
    ref = [(0, 0, 20, 2.0, 1), (1, 0, 20, 2.0, 1)]
    pred = [(0, 0, 20, 2.0, 0), (1, 0, 20, 2.0, 1)]
    s = scores(ref, pred, nb_classes=1)
    assert s['f_score'] == pytest.approx(1.0)
    assert s['f_score_onscreen'] == pytest.approx(0.5)  # frame 0: a spatial FP when the flag must be right
    assert s['onscreen_accuracy'] == pytest.approx(0.5)


def test_same_class_instances_are_matched_on_folded_azimuth():
    # two instances of class 0: reference 0 and 60 degrees (1 m, 3 m), predicted 58 (3.3 m) and 3 (1.1 m), listed
    # crosswise: matched 0-3 and 60-58 (total 5 degrees, not 58 + 57)
    ref = [(0, 0, 0, 1.0, 0), (0, 0, 60, 3.0, 0)]
    pred = [(0, 0, 58, 3.3, 0), (0, 0, 3, 1.1, 0)]
    s = scores(ref, pred, nb_classes=1)
    assert s['f_score'] == pytest.approx(1.0)
    assert s['doa_error'] == pytest.approx(2.5)
    assert s['distance_error'] == pytest.approx(0.2)
    assert s['relative_distance_error'] == pytest.approx((0.1 + 0.1) / 2)


def test_scorer_reads_2025_definition_and_needs_distances():
    ref = inst([(0, 0, 10, 2.0, 1)])
    s = scoring.SELDScorer(classes=['a'], prediction_rate=10.0, reference_rate=10.0, definitions=['dcase2025'])
    s.add_instances('x', ref, ref._replace(vec=ref.vec[:, :2]), duration_s=0.4, nb_frames=4)  # 2-D predictions
    assert s.results()['dcase2025']['f_score'] == pytest.approx(1.0)
    with pytest.raises(SELDError, match='y: dcase2025 needs distances in both'):
        s.add_instances('y', ref, ref._replace(dist=None), duration_s=0.4, nb_frames=4)


# ---- the file format -----------------------------------------------------------------------------
def test_writer_and_reader_agree(tmp_path):
    pred = Instances(np.array([0, 0, 3]), np.array([2, 2, 12]), np.array([0, 1, 0]),
                     np.array([[0.0, 1.0], [-1.0, -0.01], [0.6, -0.8]]), np.array([1.234, 0.005, 7.0]))
    path = tmp_path / 'p.csv'
    write_instances(path, pred, fmt='dcase2025')
    assert path.read_text().splitlines()[:2] == ['frame,class,source,azimuth,distance,onscreen', '0,2,0,90,123,0']
    back = formats.read_instances(path, fmt='dcase2025', nb_classes=13)
    np.testing.assert_array_equal(back.frame, [0, 0, 3])
    np.testing.assert_array_equal(back.track, [0, 1, 0])
    az = np.degrees(np.arctan2(back.vec[:, 1], back.vec[:, 0]))
    np.testing.assert_allclose(az, [90, -179, -53], atol=1e-12)  # whole degrees, atan2(y, x)
    np.testing.assert_allclose(back.dist, [1.23, 0.0, 7.0])  # whole cm, read back in metres
    np.testing.assert_array_equal(back.onscreen, [0, 0, 0])
    assert formats.infer_dcase_format(path) == 'dcase2025'
    # what a run scores (formats.as_dcase2025) is exactly what the file holds
    held = formats.as_dcase2025(pred)
    for field in ('frame', 'cls', 'track', 'vec', 'dist', 'onscreen'):
        np.testing.assert_array_equal(getattr(held, field), getattr(back, field))


@pytest.mark.parametrize('text, rule', [
    ('0,1,0,10,100,0\n', r'p.csv:1: header .* must be frame,class,source,azimuth,distance,onscreen'),
    ('frame,class,source,azimuth,distance,onscreen\n0,1,0,10,100,2\n', r"p.csv:2: onscreen='2' must be 0 or 1"),
    ('frame,class,source,azimuth,distance,onscreen\n0,13,0,10,100,0\n', r'p.csv:2: class=13 is not a class index'),
    ('frame,class,source,azimuth,distance,onscreen\n0,1,0,10,-5,0\n', r'p.csv:2: distance=-5 must be >= 0'),
    ('frame,class,source,azimuth,distance,onscreen\n0,1,0,10,100\n', r'p.csv:2: 5 fields'),
])
def test_bad_rows_name_file_line_and_rule(tmp_path, text, rule):
    path = tmp_path / 'p.csv'
    path.write_text(text)
    with pytest.raises(SELDError, match=rule):
        formats.read_instances(path, fmt='dcase2025', nb_classes=13)


# ---- the look-alike: stereo law, labels, layout ----------------------------------------------------
def test_stereo_law_is_a_coincident_cardioid_pair():
    az = np.deg2rad(np.array([90.0, -90.0, 0.0, 30.0, 150.0]))
    foa = np.stack([np.ones_like(az), np.sin(az), np.zeros_like(az), np.cos(az)], axis=1)  # plane waves, ACN/SN3D
    lr = foa_to_stereo(foa)
    np.testing.assert_allclose(lr, np.stack([(1 + np.sin(az)) / 2, (1 - np.sin(az)) / 2], axis=1), atol=1e-15)
    assert lr[0, 1] == pytest.approx(0) and lr[1, 0] == pytest.approx(0)  # a side source: silent in the far channel
    np.testing.assert_allclose(lr[3], lr[4], atol=1e-15)  # front-back ambiguity: 30 and 150 degrees alike


def test_stereo_rows_fold_and_flag():
    rows = np.array([[0, 1, 0, 150, 10, 250], [1, 1, 0, -120, 0, 250], [2, 2, 1, 40, 0, 90], [3, 2, 1, -51, 0, 90]])
    out = stereo_rows(rows)
    np.testing.assert_array_equal(out[:, 3], [30, -60, 40, -51])
    np.testing.assert_array_equal(out[:, 5], [0, 0, 1, 0])  # within +-50 degrees of the front, before folding
    np.testing.assert_array_equal(out[:, 4], [250, 250, 90, 90])


@pytest.fixture(scope='module')
def lookalike(tmp_path_factory):
    root = tmp_path_factory.mktemp('d25') / 'dcase25_task3'
    synth_dcase.synthesize(dataset='dcase25_task3', dataset_dir=root, nb_per_fold=1, progress=False)
    return root


def test_lookalike_layout_folds_and_labels(lookalike, tmp_path):
    stems = sorted(p.name for p in (lookalike / 'stereo_dev').glob('*/*.wav'))
    assert sorted(p.name for p in (lookalike / 'stereo_dev').iterdir()) == ['dev-test-sony', 'dev-test-tau',
                                                                           'dev-train-sony', 'dev-train-tau']
    assert len(stems) == 4 and all(s.startswith(('fold3_', 'fold4_')) for s in stems)
    wav = next((lookalike / 'stereo_dev' / 'dev-test-tau').glob('*.wav'))
    audio, fs = sf.read(wav)
    assert fs == 24000 and audio.shape == (5 * 24000, 2)
    params = parameter.get_params('dcase2025_baseline', dict(dataset_dir=str(lookalike),
                                                             feat_label_dir=str(tmp_path / 'feat')))
    d = datasets.Dataset(params)
    assert d.nb_channels == 2 and d.fs == 24000 and d.classes == list(datasets.STARSS_CLASSES)
    parts = {r.stem: r.part for r in d.recordings()}
    assert sorted(p for s, p in parts.items() if s.startswith('fold4_')) == ['test', 'test']
    assert sorted(p for s, p in parts.items() if s.startswith('fold3_')) == ['train', 'val']  # val_fraction held out
    rec = d.part('test')[0]
    ref = d.read_reference(rec, duration_s=5.0)
    text = open(rec.meta).read().splitlines()
    assert text[0] == 'frame,class,source,azimuth,distance,onscreen' and len(text) - 1 == ref.frame.size
    az = np.degrees(np.arctan2(ref.vec[:, 1], ref.vec[:, 0]))
    assert np.all(np.abs(az) <= 90 + 1e-9) and np.all(ref.vec[:, 2] == 0)  # folded to the front, azimuth only
    assert np.all((ref.dist >= 1.0) & (ref.dist <= 3.0))  # the synthesizer's 1-3 m, read in metres
    assert set(np.unique(ref.onscreen)) <= {0, 1}


def test_fold_outside_the_baselines_is_an_error(lookalike, tmp_path):
    import shutil
    root = tmp_path / 'copy'
    shutil.copytree(lookalike, root)
    wav = next((root / 'stereo_dev' / 'dev-train-tau').glob('*.wav'))
    meta = root / 'metadata_dev' / 'dev-train-tau' / (wav.stem + '.csv')
    new = 'fold2' + wav.stem[len('fold3'):]
    wav.rename(wav.with_name(new + '.wav'))
    meta.rename(meta.with_name(new + '.csv'))
    params = parameter.get_params('dcase2025_baseline', dict(dataset_dir=str(root), feat_label_dir=str(tmp_path)))
    with pytest.raises(SELDError, match=r'fold2_.*\.wav: fold 2; dataset=dcase25_task3 has folds 1, 3 \(train\) and 4'):
        datasets.Dataset(params).recordings()


def test_2025_targets_hold_x_y_distance_onscreen():
    # class 1 alone in frame 0 (A0, track 0); two class-1 instances in frame 1 (B0, B1: tracks 1 and 2)
    ref = inst([(0, 1, 90, 2.0, 1), (1, 1, 0, 1.5, 0), (1, 1, 180, 3.0, 1)])
    t = multitrack_labels.output_target(ref, output='multi_accddoa', nb_classes=2, nb_frames=2, frame_rate=10.0,
                                        label_rate=10.0, azi_only=True)
    assert t.shape == (2, 6, 5, 2)
    np.testing.assert_allclose(t[0, 0, :, 1], [1, 0, 1, 2.0, 1], atol=1e-15)
    np.testing.assert_allclose(t[1, 1, :, 1], [1, 1, 0, 1.5, 0], atol=1e-15)
    np.testing.assert_allclose(t[1, 2, :, 1], [1, -1, 0, 3.0, 1], atol=1e-15)
    assert t[:, :, :, 0].sum() == 0 and t[0, 1:].sum() == 0


@pytest.mark.slow
def test_task_id_extracts_trains_and_the_scoring_command_reproduces_it(lookalike, tmp_path):
    params = parameter.get_params('dcase2025_baseline', dict(
        dataset_dir=str(lookalike), feat_label_dir=str(tmp_path / 'feat'), model_dir=str(tmp_path / 'runs'),
        nb_epochs=1, quick_test=True, batch_size=4, nb_cnn2d_filt=8, rnn_size=[16], fnn_size=[16], nb_heads=2))
    assert params['early_stop_metric'] == 'dcase2025/f_error'
    batch_feature_extraction.extract(params, progress=False)
    results = seld.train(params, 'quick')
    run = seld.run_dir_for(params, 'quick')
    info = json.load(open(os.path.join(run, 'predictions', 'format.json')))
    assert info['format'] == 'dcase2025' and 'dcase2025' in info['metrics']
    for stem in info['files']:
        lines = open(os.path.join(run, 'predictions', stem + '.csv')).read().splitlines()
        assert lines[0] == 'frame,class,source,azimuth,distance,onscreen'
    import evaluation_metrics
    r = commands.in_process(evaluation_metrics.main, '--ref', lookalike / 'metadata_dev', '--pred',
                            os.path.join(run, 'predictions'))
    assert r.returncode == 0, r.stderr
    scored = json.loads(r.stdout)['dcase2025']
    for key, value in scored.items():
        expected = results['test']['dcase2025'][key]
        assert (value is None and math.isnan(expected)) or value == pytest.approx(expected, rel=1e-12, abs=1e-12), key

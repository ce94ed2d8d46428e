"""The accumulator and the grid scorer (scoring.py), the frame grids (label_frames.py), the file formats
(formats.py) and the scoring command (evaluation_metrics.py), against hand-computed cases and the run's own numbers.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

import formats
import label_frames
import metric_definitions as md
import scoring
from label_frames import Events, Instances
from utils import SELDError, sph2cart

from metric_refs import X, Y, Z, random_file




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
                      definitions=md.NO_DISTANCE_DEFINITIONS, average='micro')
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
                          definitions=md.NO_DISTANCE_DEFINITIONS)
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
    import evaluation_metrics
    return in_process(evaluation_metrics.main, *args)


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
    definitions = list(md.NO_DISTANCE_DEFINITIONS)
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

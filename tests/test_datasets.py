"""The DCASE development layouts (datasets.py) end to end: discovery and folds, labels, bad inputs, a quick
training run on each layout, predictions in the year's format, and scoring against metadata_dev/."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import soundfile as sf

import batch_feature_extraction
import datasets
import parameter
import seld
from utils import SELDError

import commands
import dcase_fixture

TINY = dict(sequence_length=50, batch_size=4, nb_cnn2d_filt=8, rnn_size=[16], fnn_size=[16], nb_epochs=2,
            patience=2)
EXPECTED_PARTS = {  # the baselines' folds (datasets.py); STARSS: a held-out share of dev-train for validation
    'tau2019sse': {'split1_ir0_ov1_1': 'test', 'split2_ir0_ov1_2': 'val', 'split3_ir0_ov1_3': 'train',
                   'split4_ir0_ov1_4': 'train'},
    'tau2020sse_nigens': {'fold1_room1_mix001_ov1': 'test', 'fold2_room1_mix002_ov1': 'val',
                          **{f'fold{k}_room1_mix00{k}_ov1': 'train' for k in (3, 4, 5, 6)}},
    'tau2021sse_nigens': {**{f'fold{k}_room1_mix00{k}': 'train' for k in (1, 2, 3, 4)}, 'fold5_room1_mix001': 'val',
                          'fold6_room1_mix001': 'test'},
}


def params_for(tmp, name, **kw) -> dict:
    return parameter.get_params(name, dict(dataset_dir=str(tmp / name), feat_label_dir=str(tmp / 'feat'),
                                           model_dir=str(tmp / 'runs'), **{**TINY, **kw}))


#: The layouts of the hand-made fixture (2019-2024); the 2025 stereo set: tests/test_dcase2025.py.
FIXTURE_DATASETS = [n for n in datasets.DCASE_DATASETS if n in dcase_fixture.LAYOUTS]


@pytest.mark.parametrize('name', FIXTURE_DATASETS)
def test_layout_folds_and_labels(tmp_path, name):
    dcase_fixture.make_dataset(str(tmp_path / name), name)
    d = datasets.Dataset(params_for(tmp_path, name))
    recs = d.recordings()
    parts = {r.stem: r.part for r in recs}
    if name in EXPECTED_PARTS:
        assert parts == EXPECTED_PARTS[name]
    else:  # STARSS: dev-test is the test part; one of the three dev-train recordings is held out
        assert sorted(s for s, p in parts.items() if p == 'test') == ['fold4_room23_mix001', 'fold4_room2_mix001']
        assert sorted(parts.values()) == ['test', 'test', 'train', 'train', 'val']
        assert {r.fold for r in recs} == {'dev-train-sony', 'dev-train-tau', 'dev-test-sony', 'dev-test-tau'}
    # select_on_test: the original behaviour, the test part also selects; no held-out share, no validation fold
    d2 = datasets.Dataset(params_for(tmp_path, name, select_on_test=True))
    assert [r.stem for r in d2.part('val')] == [r.stem for r in d2.part('test')]
    assert 'val' not in {r.part for r in d2.recordings()}
    fc = batch_feature_extraction.extract(params_for(tmp_path, name), progress=False)
    assert fc.frame_rate == 50.0 and fc.fs == datasets.SPECS[name].fs
    rec = recs[0]
    label = np.load(fc.paths(rec.stem)['label'])
    assert label.shape == (100, 4 * len(d.classes))  # 2 s at 20 ms hops
    if name != 'tau2019sse':  # the fixture's first recording: class 0 moves on track 0 (frames 2-9, -60 -> 10 deg),
        # class 3 static on track 1 from frame 6; a second class-0 instance (frames 5-7, -150 deg) is listed last
        C = len(d.classes)
        sed = label[:, :C]
        np.testing.assert_array_equal(np.flatnonzero(sed[:, 0]), range(10, 50))
        np.testing.assert_array_equal(np.flatnonzero(sed[:, 3]), range(30, 100))
        azi = np.degrees(np.arctan2(label[:, 2 * C], label[:, C]))
        np.testing.assert_allclose(azi[[10, 14, 15, 20]], [-60, -60, -50, -40], atol=1e-4)  # moving
        np.testing.assert_allclose(azi[25:40], -150, atol=1e-4)  # the later row of the same class wins
        np.testing.assert_allclose(azi[40:50], [0] * 5 + [10] * 5, atol=1e-4)


def test_bad_dcase_inputs_name_file_and_rule(tmp_path):
    name = 'tau2020sse_nigens'
    root = tmp_path / name
    dcase_fixture.make_dataset(str(root), name)
    meta = root / 'metadata_dev' / 'fold3_room1_mix003_ov1.csv'
    wav = root / 'foa_dev' / 'fold3_room1_mix003_ov1.wav'
    rows = meta.read_text()
    cases = [
        (rows + '20,1,0,10,10\n', None, r'fold3_room1_mix003_ov1.csv:\d+: frame=20 is beyond the recording \(20 frames\)'),
        (rows + '3,14,0,10,10\n', None, r'fold3_room1_mix003_ov1.csv:\d+: class=14 is not a class index in \[0, 14\)'),
        (rows + '3,1,1000,10,10\n', None, r'fold3_room1_mix003_ov1.csv:\d+: track=1000 is out of range \(at most 999\)'),
        (rows, 'nan', r'fold3_room1_mix003_ov1.wav: 10 NaN or infinite sample'),
    ]
    good = sf.read(str(wav), dtype='float32')[0]
    for text, audio, expect in cases:
        meta.write_text(text)
        if audio == 'nan':
            bad = good.copy()
            bad[100:110, 0] = np.nan
            sf.write(str(wav), bad, 24000, subtype='FLOAT')
        with pytest.raises(SELDError, match=expect):
            batch_feature_extraction.extract(params_for(tmp_path, name), progress=False)
        sf.write(str(wav), good, 24000, subtype='PCM_16')
    meta.write_text(rows)
    # a folder that matches no known layout: says which layout was expected and what was found
    shutil.move(str(root / 'foa_dev'), str(root / 'audio'))
    with pytest.raises(SELDError, match=r'foa_dev: folder missing; dataset=tau2020sse_nigens expects foa_dev/fold'
                                        r'\{1-6\}_room\{r\}_mix\{nnn\}_ov\{1,2\}.wav .*holds \[.audio., .metadata_dev.\]'):
        batch_feature_extraction.extract(params_for(tmp_path, name), progress=False)
    shutil.move(str(root / 'audio'), str(root / 'foa_dev'))
    os.rename(wav, root / 'foa_dev' / 'mix003.wav')
    os.rename(meta, root / 'metadata_dev' / 'mix003.csv')
    with pytest.raises(SELDError, match=r'mix003.wav: the name does not match the tau2020sse_nigens layout'):
        batch_feature_extraction.extract(params_for(tmp_path, name), progress=False)
    with pytest.raises(SELDError, match='split=2: tau2020sse_nigens has one development split'):
        datasets.Dataset(params_for(tmp_path, name, split=2))
    with pytest.raises(SELDError, match="format='ambix': dataset 'starss23' has foa, mic"):
        params_for(tmp_path, 'starss23', format='ambix')


@pytest.mark.slow
@pytest.mark.parametrize('name', FIXTURE_DATASETS)
def test_quick_run_writes_the_years_format_and_the_scoring_command_reproduces_it(tmp_path, name):
    dcase_fixture.make_dataset(str(tmp_path / name), name, fmt='mic' if name == 'starss22' else 'foa',
                               dist=name == 'starss23')
    # one epoch: what is checked is the year's format of the predictions and the scoring command's agreement
    params = params_for(tmp_path, name, format='mic' if name == 'starss22' else 'foa', nb_epochs=1, patience=1)
    batch_feature_extraction.extract(params, progress=False)
    results = seld.train(params, 'quick')
    run = seld.run_dir_for(params, 'quick')
    assert os.path.basename(run) == f'{name}_{params["format"]}_split1_quick'
    spec = datasets.SPECS[name]
    assert results['early_stop_metric'] == f'{spec.metric}/seld_score'
    info = json.load(open(os.path.join(run, 'predictions', 'format.json')))
    if name == 'tau2019sse':  # frame,class,azi,ele at 20 ms
        assert info['format'] == 'dcase2019' and info['frame_rate'] == 50.0
    else:  # frame,class,track,azi,ele at 100 ms
        assert info['format'] == 'dcase2020' and info['frame_rate'] == 10.0
    for stem, f in info['files'].items():
        assert f['duration_s'] == 2.0 and f['nb_frames'] == 2.0 * info['frame_rate']
        for line in open(os.path.join(run, 'predictions', stem + '.csv')).read().splitlines():
            fields = line.split(',')
            assert len(fields) == (4 if name == 'tau2019sse' else 5) and int(fields[0]) < f['nb_frames']
    import evaluation_metrics  # the scoring command in this process (from the shell: tests/test_scoring_cli.py)
    r = commands.in_process(evaluation_metrics.main, '--ref', tmp_path / name / 'metadata_dev', '--pred',
                            os.path.join(run, 'predictions'))
    assert r.returncode == 0, r.stderr
    scored = json.loads(r.stdout)
    assert spec.metric in scored
    for definition, values in scored.items():
        for key, value in values.items():
            expected = results['test'][definition][key]  # NaN (no pair to measure) is null in the JSON
            assert (value is None and np.isnan(expected)) or value == pytest.approx(expected, rel=1e-12, abs=1e-12), \
                (definition, key)

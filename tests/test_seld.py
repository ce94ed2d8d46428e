"""End-to-end training with seld.py on a tiny dataset: run folder, resume, interruption, errors."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import batch_feature_extraction
import formats
import keras_model
import parameter
import seld
import utils
from utils import SELDError

import commands
import tut_fixture

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(sequence_length=64, batch_size=4, nb_cnn2d_filt=8, rnn_size=[16], fnn_size=[16])


def tiny_overrides(tmp) -> dict:
    return dict(dataset_dir=str(tmp / 'ds'), feat_label_dir=str(tmp / 'feat'), model_dir=str(tmp / 'runs'), **TINY)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('seld')
    tut_fixture.make_dataset(str(tmp / 'ds'), nb_train=3, nb_test=2, clip_len_s=2.0)
    batch_feature_extraction.extract(parameter.get_params('999', tiny_overrides(tmp)), progress=False)
    return tmp


@pytest.mark.slow
def test_quick_run_writes_the_run_folder_and_resumes(tiny):
    params = parameter.get_params('999', tiny_overrides(tiny))
    results = seld.train(params, 'e2e')
    run = os.path.join(tiny, 'runs', 'ansim_ov1_split1_e2e')
    for name in ('params.json', 'scaler.npz', 'model.keras', 'metrics.csv', 'training_curves.png',
                 'results.json', 'checkpoint/last.keras', 'checkpoint/state.json'):
        assert os.path.exists(os.path.join(run, name)), name
    assert os.listdir(os.path.join(run, 'logs')) and os.listdir(os.path.join(run, 'predictions'))
    record = json.load(open(os.path.join(run, 'params.json')))
    assert record['params']['sequence_length'] == 64 and record['features']['nb_classes'] == 11
    assert 'keras' in record['versions']
    # the held-out validation file is named, apart from the train and test files
    parts = record['data']['parts']
    assert len(parts['train']) == 2 and len(parts['val']) == 1 and len(parts['test']) == 2
    assert parts['val'][0].startswith('train_') and not set(parts['val']) & set(parts['train'])
    with open(os.path.join(run, 'metrics.csv')) as f:
        rows = list(csv.DictReader(f))
    assert [int(r['epoch']) for r in rows] == [1, 2]
    for key in ('loss', 'val/loss', 'val/seld2018/error_rate', 'val/seld2018/f_score', 'val/seld2018/doa_error',
                'val/seld2018/frame_recall', 'val/seld2018/seld_score', 'val/dcase2019/seld_score',
                'val/dcase2020/localization_error', 'val/dcase2021/f_score', 'val/dcase2022/seld_score'):
        assert key in rows[0], key
    # results.json: the epoch with the best validation score (the minimum in metrics.csv), its validation metrics,
    # and the test metrics of that model in a section of their own
    best = min(rows, key=lambda r: float(r['val/seld2018/seld_score']))
    assert results['best_epoch'] == int(best['epoch']) and results['select_on_test'] is False
    assert results['early_stop_metric'] == 'seld2018/seld_score' and 'warning' not in results
    assert results['validation']['seld2018']['seld_score'] == pytest.approx(float(best['val/seld2018/seld_score']))
    assert set(results['test']) >= {'loss', 'seld2018', 'dcase2019', 'dcase2020', 'dcase2021', 'dcase2022'}
    s = results['test']['seld2018']
    assert s['seld_score'] == pytest.approx(np.mean([s['error_rate'], 1 - s['f_score'], s['doa_error'] / 180,
                                                     1 - s['frame_recall']]))
    assert results['grids']['dcase2019']['frame_rate'] == 50 and results['grids']['dcase2021']['frame_rate'] == 10
    # the scoring command, given only the dataset's description folder and the run's predictions, reproduces the
    # test metrics of results.json exactly
    import evaluation_metrics  # the scoring command in this process (from the shell: tests/test_scoring_cli.py)
    r = commands.in_process(evaluation_metrics.main, '--ref', tiny / 'ds' / 'desc_ov1_split1', '--pred',
                            os.path.join(run, 'predictions'))
    assert r.returncode == 0, r.stderr
    scored = json.loads(r.stdout)
    assert set(scored) == set(results['test']) - {'loss', 'sed_loss', 'doa_loss'}
    for name, values in scored.items():
        for key, value in values.items():
            expected = results['test'][name][key]  # NaN (no pair to measure) is null in the JSON
            assert (value is None and np.isnan(expected)) or value == pytest.approx(expected, rel=1e-12, abs=1e-12), \
                (name, key)
    # the best model loads in safe mode
    assert keras_model.load_model(os.path.join(run, 'model.keras')).count_params() > 0
    # resuming with more epochs continues after epoch 2 instead of starting over
    seld.train(parameter.get_params('999', {**tiny_overrides(tiny), 'nb_epochs': 3, 'patience': 5}), 'e2e')
    with open(os.path.join(run, 'metrics.csv')) as f:
        assert [int(r['epoch']) for r in csv.DictReader(f)] == [1, 2, 3]
    # the same job-id with a different model is refused
    with pytest.raises(SELDError, match=r'other parameters \(batch_size\)'):
        seld.train(parameter.get_params('999', {**tiny_overrides(tiny), 'batch_size': 2}), 'e2e')
    # a run recorded before a key existed (doa_loss here) resumes where the key has its default, and only there
    params_file = os.path.join(run, 'params.json')

    def drop_doa_loss() -> None:
        record = utils.read_json(params_file)
        del record['params']['doa_loss']
        utils.write_json(params_file, record)

    drop_doa_loss()
    again = {**tiny_overrides(tiny), 'nb_epochs': 3, 'patience': 5}
    seld.train(parameter.get_params('999', again), 'e2e')  # finished already: the test split is scored again
    drop_doa_loss()
    with pytest.raises(SELDError, match=r'other parameters \(doa_loss\)'):
        seld.train(parameter.get_params('999', {**again, 'doa_loss': 'masked_mse'}), 'e2e')
    # a cosine schedule ends at nb_epochs, so it cannot be extended; its learning rate is logged every epoch
    cosine = {**tiny_overrides(tiny), 'lr_schedule': 'cosine', 'learning_rate': 0.002}
    seld.train(parameter.get_params('999', cosine), 'cos')
    with open(os.path.join(os.path.dirname(run), os.path.basename(run).replace('e2e', 'cos'), 'metrics.csv')) as f:
        lr = [float(r['learning_rate']) for r in csv.DictReader(f)]
    assert lr == pytest.approx([0.002 * (1 + np.cos(np.pi / 2)) / 2, 0.0], abs=1e-9)  # after steps 2 and 4 of 4
    with pytest.raises(SELDError, match=r'other parameters \(nb_epochs\); nb_epochs is the horizon'):
        seld.train(parameter.get_params('999', {**cosine, 'nb_epochs': 3}), 'cos')


def test_seld_without_features_says_what_to_run(tmp_path):
    params = parameter.get_params('999', tiny_overrides(tmp_path))
    with pytest.raises(SELDError, match='run `python batch_feature_extraction.py 999'):
        seld.train(params, 'x')


@pytest.mark.slow
def test_ctrl_c_leaves_the_best_model_intact_and_rerun_resumes(tiny):
    args = [sys.executable, 'seld.py', 'sigint', '1'] + [
        f'{k}={",".join(map(str, v)) if isinstance(v, list) else v}' for k, v in tiny_overrides(tiny).items()] + [
        'nb_epochs=200', 'patience=200']
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run = os.path.join(tiny, 'runs', 'ansim_ov1_split1_sigint')
    state = os.path.join(run, 'checkpoint', 'state.json')
    deadline = time.time() + 120
    while time.time() < deadline and not os.path.exists(state):
        time.sleep(0.2)
    assert os.path.exists(state), proc.communicate()[0][-2000:]
    time.sleep(0.5)  # interrupt in the middle of a later epoch
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 130, out[-2000:]  # the shell's code for Ctrl-C
    assert 'stopping after this batch' in out  # the first Ctrl-C ends the epoch cleanly, not mid-batch
    assert not [f for f in os.listdir(run) if '.tmp' in f]
    keras_model.load_model(os.path.join(run, 'model.keras'))  # intact
    done = json.load(open(state))['epoch']
    with open(os.path.join(run, 'metrics.csv')) as f:  # one row per finished epoch: the partial one is not logged
        assert len(f.read().splitlines()) == 1 + done
    # a rerun with fewer epochs than already done has nothing left to train and exits cleanly (in this process)
    r = commands.in_process(seld.main, *args[2:-2], f'nb_epochs={done}', 'patience=200')
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'nothing to train' in r.stdout


@pytest.mark.slow
def test_cli_errors_exit_2(tmp_path):
    # from the shell once (seld.py's exit-status contract), then in this process
    r = commands.as_subprocess('seld.py', '1', 'nope')
    assert r.returncode == 2 and 'unknown task-id' in r.stderr and 'Traceback' not in r.stderr
    r = commands.in_process(seld.main, '1', '999', f'feat_label_dir={tmp_path}', f'dataset_dir={tmp_path}')
    assert r.returncode == 2 and 'batch_feature_extraction.py' in r.stderr


@pytest.mark.slow
def test_embedded_default_is_synthesized_then_extracted_and_trained(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default dataset_dir data/ansim is relative to the current folder
    params = parameter.get_params('999', dict(synth_nb_train=3, synth_nb_test=2, synth_clip_len_s=2.0,
                                              unseen_doa_dir='{dataset_dir}_unseen_doa', **TINY))
    assert params['is_embedded_default'] and params['synthesize'] and params['dataset_dir'] == 'data/ansim'
    assert params['unseen_doa_dir'] == 'data/ansim_unseen_doa'
    fc = batch_feature_extraction.extract(params, progress=False)
    info = json.load(open(tmp_path / 'data' / 'ansim' / 'dataset_info.json'))
    assert info['synthetic'] is True and fc.classes == info['classes']  # class set read from the data
    assert len(fc.recordings()) == 5
    # the unseen-DOA test set: the same test scenes (classes, times) with every DOA shifted by +5 degrees
    for j in range(2):
        name = f'test_{j}_desc_30_100.csv'
        on = formats.read_desc_file(tmp_path / 'data' / 'ansim' / 'desc_ov1_split1' / name, classes=fc.classes)
        off = formats.read_desc_file(tmp_path / 'data' / 'ansim_unseen_doa' / 'desc_ov1_split1' / name,
                                     classes=fc.classes)
        np.testing.assert_array_equal(on.cls, off.cls)
        np.testing.assert_array_equal(on.start, off.start)
        np.testing.assert_array_equal(off.azi - on.azi, 5)
        np.testing.assert_array_equal(off.ele - on.ele, 5)
    results = seld.train(params, 'embedded')
    assert np.isfinite(results['test']['seld2018']['seld_score'])
    unseen = results['test_unseen_doa']
    assert unseen['nb_files'] == 2 and set(unseen) >= {'seld2018', 'dcase2021', 'loss'}
    # any other missing dataset is an error, never synthesized
    other = parameter.get_params('999', dict(dataset_dir='data/mine', **TINY))
    assert not other['synthesize']
    with pytest.raises(SELDError, match='No dataset at data/mine'):
        batch_feature_extraction.extract(other, progress=False)
    assert not os.path.exists(tmp_path / 'data' / 'mine')

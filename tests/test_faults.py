"""Faults of extraction, prediction and parameters: every bad file, flag or value is a one-line ``error:`` naming
the file (or key), the value and the rule, with exit status 2 and no traceback; damaged outputs are redone; a full
disk is a clear error and the rerun resumes to byte-identical files; the generator holds no file per recording.

The key=value overrides and predict.py's flags are fuzzed with hypothesis in-process, through the functions the
commands call (``parameter.parse_cli`` + ``parameter.get_params`` + the framing; ``predict.check_arguments``), and a
few subprocess runs of each command confirm the exit status and the one-line message. Run with ``-s`` to see the
fuzz counts.
"""
from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import batch_feature_extraction
import cls_feature_class as cfc
import datasets
import label_frames
import parameter
import predict
import utils
from utils import SELDError

import commands
import tut_fixture

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(sequence_length=16, batch_size=2, nb_cnn2d_filt=4, rnn_size=[8], fnn_size=[8], n_jobs=1)


def over(tmp, **extra) -> dict:
    return dict(dataset_dir=str(tmp / 'ds'), feat_label_dir=str(tmp / 'feat'), model_dir=str(tmp / 'runs'),
                **TINY, **extra)


def tiny_argv() -> list[str]:
    """TINY as key=value arguments."""
    return [f'{key}={",".join(map(str, v)) if isinstance(v, list) else v}' for key, v in TINY.items()]


def one_line_error(text: str) -> str:
    """The single ``error:`` line of a command's stderr (TensorFlow's start-up chatter aside); fails otherwise."""
    assert 'Traceback' not in text, text
    lines = [ln for ln in text.splitlines() if ln.startswith('error:')]
    assert len(lines) == 1, text
    return lines[0]


def run_main(main, argv, capsys, monkeypatch) -> tuple[int, str]:
    """A script's ``main`` through ``utils.run_cli``, as ``python script.py argv`` runs it: (exit status, stderr)."""
    monkeypatch.setattr(sys, 'argv', ['script'] + list(argv))
    with pytest.raises(SystemExit) as exit_info:
        utils.run_cli(main)
    return exit_info.value.code, capsys.readouterr().err


def files_of(folder: str) -> dict[str, bytes]:
    out = {}
    for base, _, names in os.walk(folder):
        for n in names:
            path = os.path.join(base, n)
            out[os.path.relpath(path, folder)] = open(path, 'rb').read()
    return out


@pytest.fixture(scope='module')
def extracted(tmp_path_factory):
    """A tiny TUT-2018 dataset (3 train, 2 test clips of 1 s) and its features."""
    tmp = tmp_path_factory.mktemp('faults')
    tut_fixture.make_dataset(str(tmp / 'ds'), nb_train=3, nb_test=2, clip_len_s=1.0)
    params = parameter.get_params('999', over(tmp))
    fc = batch_feature_extraction.extract(params, progress=False)
    return tmp, params, fc


# ------------------------------------------------------------------------------------------------
# key=value overrides
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('item, message', [
    ('nb_epochs=0', 'nb_epochs=0: must be >= 1'),
    ('batch_size=-4', 'batch_size=-4: must be >= 1'),
    ('sequence_length=0', 'sequence_length=0: must be >= 1'),
    ('learning_rate=nan', "learning_rate='nan': must be a finite number"),
    ('learning_rate=inf', "learning_rate='inf': must be a finite number"),
    ('learning_rate=-0.1', 'learning_rate=-0.1: must be > 0'),
    ('hop_len_s=inf', "hop_len_s='inf': must be a finite number"),
    ('hop_len_s=1e-300', 'hop_len_s=1e-300 is 4.41e-296 samples at fs=44100 Hz: must be at least 1 sample'),
    ('hop_len_s=10', 'hop_len_s=10.0 needs a window of 882000 samples at fs=44100 Hz, an FFT of 1048576: at most'),
    ('val_fraction=1e309', "val_fraction='1e309': must be a finite number"),
    ('sed_threshold=1', 'sed_threshold=1.0: must be strictly between 0 and 1'),
    ('sed_threshold=nan', "sed_threshold='nan': must be a finite number"),
    ('dropout_rate=1', 'dropout_rate=1.0: must be in [0, 1)'),
    ('patience=0', 'patience=0: must be >= 1'),
    ('seed=-1', 'seed=-1: must be in 0 .. 4294967295'),
    ('fs=0', 'fs=0: must be in 1000 .. 384000'),
    ('fs=44.1e3', "fs='44.1e3': must be an integer"),
    ('nfft=511', 'nfft=511: must be an even number of samples'),
    ('nfft=4294967296', 'nfft=4294967296: must be in 16 .. 65536'),
    ('n_jobs=0', 'n_jobs=0: must be a number of jobs >= 1, or -1'),
    ('nb_shards=0', 'nb_shards=0: must be >= 1'),
    ('shard_index=2', 'shard_index=2: must be in 0 .. nb_shards-1 = 0'),
    ('synth_nb_train=0', 'synth_nb_train=0: must be >= 1'),
    ('synth_clip_len_s=-1', 'synth_clip_len_s=-1.0: must be > 0 seconds'),
    ('pool_size=8.5,8,2', "pool_size='8.5,8,2': must be a list of integers"),
    ('pool_size=[8,8,2', "pool_size='[8,8,2': must be a list such as 8,8,2"),
    ('pool_size=8,,2', "pool_size='8,,2': must be a list such as 8,8,2 (an empty item)"),
    ('pool_size=0,8,2', 'pool_size=[0, 8, 2]: must be a non-empty list of positive integers'),
    ('rnn_size=0', 'rnn_size=[0]: must be a list of positive numbers of units'),
    ('loss_weights=1,nan', "loss_weights='1,nan': must be a list of finite numbers"),
    ('loss_weights=0,0', 'loss_weights=[0.0, 0.0]: must be [sed_weight, doa_weight], both >= 0, not both 0'),
    ('loss_weights=1', 'loss_weights=[1.0]: must be [sed_weight, doa_weight]'),
    ('channels=0,0,1,2', 'channels=[0, 0, 1, 2]: must be a non-empty list of distinct channel indices'),
    ('azi_only=maybe', "azi_only='maybe': must be a boolean"),
    ('gru_type=lstm', "gru_type='lstm': must be one of cudnn, original"),
    ('stage=everything', "stage='everything': must be one of all, stats, features"),
    ('early_stop_metric=seld2018', "early_stop_metric='seld2018': must be '<definition>/<metric>'"),
    ('early_stop_metric=dcase2099/seld_score', "early_stop_metric='dcase2099/seld_score': must be"),
    ('dataset=ansim2', "dataset='ansim2': must be one of"),
    ('format=ambisonic', "format='ambisonic': dataset 'ansim' has foa"),
    ('dataset_dir=', "dataset_dir='': must be a non-empty string"),
    ('nb_classes=0', "unknown parameter 'nb_classes'; valid keys:"),
    ('Batch_size=4', "unknown parameter 'Batch_size'; valid keys:"),
])
def test_a_bad_override_is_refused_naming_the_key_the_value_and_the_rule(item, message):
    values, overrides = parameter.parse_cli(['7', '1', item], ('job_id', 'task_id'), 'usage')
    with pytest.raises(SELDError, match=re.escape(message)) as err:
        p = parameter.get_params(values['task_id'], overrides)
        cfc.framing_for(fs=p['fs'] or datasets.SPECS[p['dataset']].fs, nfft=p['nfft'], hop_len_s=p['hop_len_s'])
    assert '\n' not in str(err.value)


@pytest.mark.parametrize('argv, message', [
    (['a/b'], r"job_id='a/b': must be a non-empty name without path separators"),
    ([''], r"job_id='': must be a non-empty name"),
    (['--foo'], r"'--foo': unknown option"),
    (['1', '2', '3'], r"too many arguments"),
    (['7', 'nope'], r"unknown task-id 'nope'"),
])
def test_bad_positional_arguments_are_refused(argv, message):
    with pytest.raises(SELDError, match=message):
        values, overrides = parameter.parse_cli(argv, ('job_id', 'task_id'), 'usage')
        parameter.get_params(values['task_id'], overrides)


def test_python_overrides_are_type_checked_too():
    """Values given as Python objects (seld.train's callers, the tests) obey the same rules as strings."""
    for bad, message in [(dict(batch_size='4'), "batch_size='4': must be an integer"),
                         (dict(batch_size=True), 'batch_size=True: must be an integer'),
                         (dict(learning_rate=float('nan')), 'learning_rate=nan: must be a finite number'),
                         (dict(pool_size=[8, 8.5, 2]), r'pool_size=\[8, 8.5, 2\]: must be a list of int'),
                         (dict(dataset=['ansim']), r"dataset=\['ansim'\]: must be a string"),
                         (dict(patience=-3), 'patience=-3: must be >= 1')]:
        with pytest.raises(SELDError, match=message):
            parameter.get_params('1', bad)
    p = parameter.get_params('1', dict(pool_size=(4, 4, 2), synth_clip_len_s=2, seed=np.int64(3)))
    assert p['pool_size'] == [4, 4, 2] and p['synth_clip_len_s'] == 2.0 and type(p['seed']) is int


def test_default_patience_lets_a_short_run_finish():
    """The default int(0.1 * nb_epochs) was 0 below 10 epochs (a run stopped at its first epoch without
    improvement); it is now the paper's 10 % of nb_epochs, but at least 10 epochs."""
    assert [parameter.get_params('1', [f'nb_epochs={n}'])['patience'] for n in (1, 5, 9, 10, 25, 100, 250, 1000)] == \
        [10, 10, 10, 10, 10, 10, 25, 100]
    assert parameter.get_params('1', ['nb_epochs=5', 'patience=3'])['patience'] == 3


def test_dataset_dir_with_braces_is_kept_as_written():
    p = parameter.get_params('1', ['dataset_dir=/data/{x}/{dataset}'])  # was a KeyError traceback
    assert p['dataset_dir'] == '/data/{x}/ansim'


# The values a fuzzed override takes: numbers of every kind written as text, special words, lists, free text.
NUMBER_TEXT = st.one_of(st.integers(-10**12, 10**12).map(str), st.floats(allow_nan=True, allow_infinity=True).map(str),
                        st.floats(allow_nan=True, allow_infinity=True).map(repr),
                        st.sampled_from(['0', '-0', '-1', '1e309', '-1e309', 'nan', 'NaN', 'inf', '-inf', '1_000',
                                         '0x10', '+5', ' 3 ', '9' * 5000]))
WORD_TEXT = st.sampled_from(['', 'none', 'None', 'true', 'false', 'yes', 'auto', 'cosine', 'constant', 'mic', 'foa',
                             'ansim', 'starss23', 'tau2019sse', 'original', 'mirrored', 'stats', 'features',
                             '{dataset}',
                             'seld2018/seld_score', 'dcase2019/', '/x', 'builtin', '[8,8,2]', '8,8', '[]', '[,]',
                             '[8,[8]]', '(1,2)', '1,2,3', '[1e309]', '\x00', '\n', 'é'])
LIST_TEXT = st.lists(st.one_of(st.integers(-5, 300), st.floats(allow_nan=True, allow_infinity=True)),
                     max_size=4).map(lambda xs: ','.join(map(str, xs)))
VALUE_TEXT = st.one_of(NUMBER_TEXT, WORD_TEXT, LIST_TEXT, st.text(max_size=12))
KEYS = st.one_of(st.sampled_from(sorted(parameter.DEFAULTS)),
                 st.sampled_from(['nb_classes', 'batchsize', 'Batch_size', '', ' seed', 'patience ', 'nfft\n']))
OVERRIDE = st.tuples(KEYS, VALUE_TEXT).map(lambda kv: f'{kv[0]}={kv[1]}')
POSITIONAL = st.sampled_from(['7', 'my-job', '1', '999', 'embedded', 'tau2019sse', 'starss23', 'x', '', 'a/b', '-v',
                              '..'])


def _accepted_is_sane(p: dict) -> None:
    """What an accepted parameter set must satisfy, written out here independently of parameter._validate."""
    for key, default in parameter.DEFAULTS.items():
        v = p[key]
        if isinstance(default, bool):
            assert isinstance(v, bool), key
        elif isinstance(default, float):
            assert isinstance(v, float) and math.isfinite(v), key
        elif isinstance(default, int):
            assert isinstance(v, int) and not isinstance(v, bool), key
        elif isinstance(default, list):
            assert isinstance(v, list) and all(math.isfinite(x) for x in v), key
    for key in ('sequence_length', 'batch_size', 'nb_epochs', 'patience', 'nb_cnn2d_filt', 'nb_shards', 'synth_nb_test',
                'synth_nb_train', 'overlap', 'split'):
        assert p[key] >= 1, key
    assert 0 <= p['seed'] < 2**32 and 0 <= p['synth_seed'] < 2**32 and 0 <= p['shard_index'] < p['nb_shards']
    assert 0 <= p['dropout_rate'] < 1 and 0 <= p['val_fraction'] < 1 and 0 <= p['bn_momentum'] < 1
    assert 0 < p['sed_threshold'] < 1 and p['learning_rate'] > 0 and p['synth_clip_len_s'] > 0 and p['n_jobs'] != 0
    assert 0 <= p['lr_warmup_epochs'] < p['nb_epochs']
    assert len(p['loss_weights']) == 2 and min(p['loss_weights']) >= 0 and max(p['loss_weights']) > 0
    assert p['pool_size'] and min(p['pool_size']) >= 1 and all(u >= 1 for u in p['rnn_size'] + p['fnn_size'])
    assert p['fs'] is None or 1000 <= p['fs'] <= 384000
    assert p['nfft'] is None or (16 <= p['nfft'] <= 65536 and p['nfft'] % 2 == 0
                                 and (p['nfft'] // 2) % math.prod(p['pool_size']) == 0)
    assert p['hop_len_s'] is None or (math.isfinite(p['hop_len_s']) and p['hop_len_s'] > 0)
    assert p['channels'] is None or (p['channels'] and len(set(p['channels'])) == len(p['channels'])
                                     and min(p['channels']) >= 0)
    assert p['dataset'] in datasets.SPECS and p['format'] in datasets.SPECS[p['dataset']].audio_formats


FUZZ = dict(inputs=0, refused=0, accepted=0)


@pytest.mark.slow
@settings(max_examples=3000, deadline=None, database=None, derandomize=True)
@given(pos=st.lists(POSITIONAL, max_size=3), items=st.lists(OVERRIDE, min_size=1, max_size=4), shuffle=st.randoms())
def test_fuzz_key_value_overrides(pos, items, shuffle):
    """parse_cli + get_params + the framing (what seld.py and batch_feature_extraction.py run first): a SELDError
    in one line that names a given key or argument, or parameters that satisfy every rule. Nothing else."""
    argv = pos + items
    shuffle.shuffle(argv)
    FUZZ['inputs'] += 1
    try:
        values, overrides = parameter.parse_cli(argv, ('job_id', 'task_id'), 'usage')
        p = parameter.get_params(values['task_id'], overrides)
        framing = cfc.framing_for(fs=p['fs'] or datasets.SPECS[p['dataset']].fs, nfft=p['nfft'],
                                  hop_len_s=p['hop_len_s'])
    except SELDError as err:
        FUZZ['refused'] += 1
        msg = str(err)
        assert msg and '\n' not in msg and '\r' not in msg, msg
        named = [a.split('=', 1)[0].strip() for a in items] + [a for a in pos]
        assert (any(n and n in msg for n in named) or 'task-id' in msg or 'usage' in msg
                or 'hop_len_s' in msg or 'nfft' in msg), msg
        return
    FUZZ['accepted'] += 1
    _accepted_is_sane(p)
    assert 1 <= framing.hop_len and framing.win_len <= framing.nfft <= 65536 and math.isfinite(framing.frame_rate)
    assert values['job_id'] and '/' not in values['job_id']


def test_fuzz_key_value_counts():
    """Runs after the fuzz test (file order): prints and checks its counts."""
    if not FUZZ['inputs']:
        pytest.skip('the fuzz test did not run in this session')
    print(f"\nfuzz key=value overrides: {FUZZ['inputs']} inputs, {FUZZ['refused']} refused cleanly (one-line "
          f"SELDError naming the key), {FUZZ['accepted']} accepted (and checked), 0 other outcomes")
    assert FUZZ['refused'] + FUZZ['accepted'] == FUZZ['inputs'] and FUZZ['refused'] > FUZZ['inputs'] // 2


# ------------------------------------------------------------------------------------------------
# predict.py: a run folder written by hand (no model is loaded by the checks before it)
# ------------------------------------------------------------------------------------------------
def write_run(folder, *, fs=44100, nb_channels=4, classes=('knock', 'drawer')) -> str:
    os.makedirs(folder, exist_ok=True)
    record = dict(params=dict(sequence_length=8, batch_size=2, sed_threshold=0.5, azi_only=False),
                  features=dict(fs=fs, nfft=512, hop_len=256, win_len=512, centered=False, classes=list(classes),
                                nb_channels=nb_channels, nb_bins=256))
    with open(os.path.join(folder, 'params.json'), 'w') as f:
        json.dump(record, f)
    np.savez(os.path.join(folder, 'scaler.npz'), mean=np.zeros((256, 2 * nb_channels)),
             scale=np.ones((256, 2 * nb_channels)))
    with open(os.path.join(folder, 'model.keras'), 'wb') as f:
        f.write(b'not loaded by these tests')
    return str(folder)


@pytest.fixture(scope='module')
def run_folder(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('run')
    write_run(tmp / 'run')
    sf.write(str(tmp / 'four.wav'), np.zeros((8820, 4)), 44100, subtype='PCM_16')
    sf.write(str(tmp / 'six.wav'), np.zeros((8820, 6)), 44100, subtype='PCM_16')
    os.makedirs(tmp / 'wavs')
    shutil.copy(tmp / 'four.wav', tmp / 'wavs' / 'a.wav')
    (tmp / 'afile').write_text('x')
    return tmp


SCALER_FAULTS = ['garbage', 'empty', 'cut_10', 'cut_half', 'cut_end', 'object', 'nan', 'zero_scale', 'no_scale',
                 'shape']


def damage_scaler(path, how):
    good = open(path, 'rb').read()
    if how == 'garbage':
        open(path, 'wb').write(b'this is not a scaler\n' * 10)
    elif how == 'empty':
        open(path, 'wb').close()
    elif how.startswith('cut_'):
        n = {'cut_10': 10, 'cut_half': len(good) // 2, 'cut_end': len(good) - 10}[how]
        open(path, 'wb').write(good[:n])
    elif how == 'object':
        np.savez(path, mean=np.array([None, 1], dtype=object), scale=np.ones(2))
    elif how == 'nan':
        np.savez(path, mean=np.full((256, 8), np.nan), scale=np.ones((256, 8)))
    elif how == 'zero_scale':
        np.savez(path, mean=np.zeros((256, 8)), scale=np.zeros((256, 8)))
    elif how == 'no_scale':
        np.savez(path, mean=np.zeros((256, 8)))
    elif how == 'shape':
        np.savez(path, mean=np.zeros((256, 8)), scale=np.ones((256, 4)))
    return good


@pytest.mark.parametrize('how', SCALER_FAULTS)
def test_predict_refuses_a_damaged_scaler_naming_it(tmp_path, how):
    """Was a BadZipFile traceback (truncated) or a hint at loading the file as a pickle (garbage). (The run's
    model.keras is not a model: the error must come from the scaler, before it.)"""
    run = write_run(tmp_path / 'run')
    scaler = os.path.join(run, 'scaler.npz')
    damage_scaler(scaler, how)
    with pytest.raises(SELDError, match=r'scaler\.npz: not a valid scaler file') as err:
        predict.load_run(run)
    assert 'pickle' not in str(err.value) and '\n' not in str(err.value)


PARAMS_FAULTS = {
    'truncated': lambda good: good[:len(good) // 2],
    'not utf-8': lambda good: b'\xff\xfe' + good[2:],
    'a list': lambda good: b'[]',
    'empty object': lambda good: b'{}',
    'fs 0': lambda good: good.replace(b'"fs": 44100', b'"fs": 0'),
    'hop 0': lambda good: good.replace(b'"hop_len": 256', b'"hop_len": 0'),
    'fs huge': lambda good: good.replace(b'"fs": 44100', b'"fs": 1e400'),
    'threshold nan': lambda good: good.replace(b'"sed_threshold": 0.5', b'"sed_threshold": NaN'),
    'no classes': lambda good: good.replace(b'["knock", "drawer"]', b'[]'),
}


@pytest.mark.parametrize('how', sorted(PARAMS_FAULTS))
def test_predict_refuses_a_damaged_params_json_naming_it(tmp_path, how):
    run = write_run(tmp_path / 'run')
    path = os.path.join(run, 'params.json')
    good = open(path, 'rb').read()
    bad = PARAMS_FAULTS[how](good)
    assert bad != good
    open(path, 'wb').write(bad)
    with pytest.raises(SELDError, match=r'params\.json: ') as err:
        predict.read_run_settings(run)
    assert '\n' not in str(err.value)


def test_predict_refuses_truncated_and_empty_wavs(run_folder, tmp_path):
    good = open(run_folder / 'four.wav', 'rb').read()
    cut = tmp_path / 'cut.wav'
    n = len(good) * 97 // 100 | 1  # cut mid-sample
    present = n - (good.index(b'data') + 8)
    cut.write_bytes(good[:n])
    with pytest.raises(SELDError, match=rf'cut\.wav: truncated: its header declares 70560 bytes of audio \(0\.20 s\), '
                                        rf'the file holds {present} \(0\.19 s\); {present % 8} byte\(s\) of a partial'):
        predict.check_arguments([str(run_folder / 'run'), str(cut)])
    empty = tmp_path / 'empty.wav'
    empty.write_bytes(b'')
    with pytest.raises(SELDError, match=r'empty\.wav: cannot read audio'):
        predict.check_arguments([str(run_folder / 'run'), str(empty)])


PREDICT_FLAGS = st.sampled_from(['--threshold', '--channels', '--format', '--out', '--thr', '--chan', '--bogus', '-t',
                                 '--threshold=', '--channels=', '--format=dcase2020', '--format=dcase2019', '--'])
FLAG_VALUES = st.one_of(st.sampled_from(['0.5', '0.25', '0.999', '0', '1', '0,1,2,3', '0,1,2,5', '3,2,1,0', '0,0,1,2',
                                         '2,3,4,5', 'dcase2020', 'dcase2019', 'dcase2021', '', ' ', '-1', 'out',
                                         'afile', 'four.wav']),
                        NUMBER_TEXT, LIST_TEXT, st.text(max_size=8))


@pytest.mark.slow
@settings(max_examples=1500, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(run=st.sampled_from(['run'] * 4 + ['missing', 'afile', 'wavs', '']),
       inputs=st.lists(st.sampled_from(['four.wav'] * 6 + ['six.wav', 'wavs', 'missing.wav', 'afile', 'run']),
                       max_size=3),
       flags=st.lists(st.tuples(PREDICT_FLAGS, st.one_of(st.none(), FLAG_VALUES)), max_size=4),
       shuffle=st.randoms())
def test_fuzz_predict_flags(run_folder, run, inputs, flags, shuffle):
    """predict.check_arguments (everything predict.py checks before loading the model): a one-line SELDError, or
    arguments that satisfy every rule. No SystemExit (argparse's own exit), no other exception."""
    here = str(run_folder)
    argv = [os.path.join(here, run) if run else ''] + [os.path.join(here, i) for i in inputs]
    for flag, value in flags:
        argv += [flag] + ([] if value is None else [os.path.join(here, value) if value in ('out', 'afile') else value])
    if any(a.startswith(('-h', '--h')) for a in argv):  # help: printed, exit 0
        return
    PFUZZ['inputs'] += 1
    try:
        args, files, _ = predict.check_arguments(argv)
    except SELDError as err:
        PFUZZ['refused'] += 1
        assert str(err) and '\n' not in str(err) and '\r' not in str(err), str(err)
        return
    PFUZZ['accepted'] += 1
    assert args.threshold is None or (math.isfinite(args.threshold) and 0 < args.threshold < 1)
    assert args.format in predict.FORMATS
    assert files and all(os.path.isfile(f) and sf.info(f).channels >= 4 for f in files)
    if args.channels is None:
        assert all(sf.info(f).channels == 4 for f in files)
    else:
        assert len(args.channels) == 4 and len(set(args.channels)) == 4
        assert all(max(args.channels) < sf.info(f).channels for f in files)
    assert args.out is None or not os.path.exists(args.out) or os.path.isdir(args.out)


PFUZZ = dict(inputs=0, refused=0, accepted=0)


def test_fuzz_predict_counts():
    if not PFUZZ['inputs']:
        pytest.skip('the fuzz test did not run in this session')
    print(f"\nfuzz predict.py flags: {PFUZZ['inputs']} inputs, {PFUZZ['refused']} refused cleanly (one-line "
          f"SELDError), {PFUZZ['accepted']} accepted (and checked), 0 other outcomes")
    assert PFUZZ['refused'] + PFUZZ['accepted'] == PFUZZ['inputs'] and PFUZZ['accepted'] > 0


# ------------------------------------------------------------------------------------------------
# The commands themselves: exit status 2 and one `error:` line, no traceback
# ------------------------------------------------------------------------------------------------
def run_command(script, *args, shell: bool = False):
    """``python script args``: from the shell (``shell``), else the script's ``main`` through ``utils.run_cli`` in
    this process (tests/commands.py), without an interpreter's start. One case of batch_feature_extraction.py and
    predict.py runs from the shell here; seld.py's (whose start imports TensorFlow) is in tests/test_seld.py."""
    if shell:
        return commands.as_subprocess(script, *args, timeout=300)
    import seld
    main = {'batch_feature_extraction.py': batch_feature_extraction.main, 'predict.py': predict.main,
            'seld.py': seld.main}[script]
    return commands.in_process(main, *args)


@pytest.mark.parametrize('args, message, shell', [
    (['1', 'nb_epochs=0'], 'error: nb_epochs=0: must be >= 1', True),
    (['1', 'learning_rate=nan'], "error: learning_rate='nan': must be a finite number", False),
    (['1', 'nb_classes=0'], "error: unknown parameter 'nb_classes'", False),
    (['1', 'pool_size=[8,8'], "error: pool_size='[8,8': must be a list such as 8,8,2", False),
])
def test_batch_feature_extraction_bad_overrides_exit_2_in_one_line(args, message, shell):
    r = run_command('batch_feature_extraction.py', *args, shell=shell)
    assert r.returncode == 2 and one_line_error(r.stderr).startswith(message), r.stderr


def test_seld_bad_overrides_exit_2_in_one_line():
    for args, message in [(['7', '1', 'batch_size=-1'], 'error: batch_size=-1: must be >= 1'),
                          (['7', '1', 'sed_threshold=inf'], "error: sed_threshold='inf': must be a finite number"),
                          (['a/b', '1'], "error: job_id='a/b': must be a non-empty name without path separators")]:
        r = run_command('seld.py', *args)
        assert r.returncode == 2 and one_line_error(r.stderr).startswith(message), r.stderr


def _predict_cases(run_folder, tmp_path):
    run, wav = str(run_folder / 'run'), str(run_folder / 'four.wav')
    bad_scaler = write_run(tmp_path / 'bad')
    damage_scaler(os.path.join(bad_scaler, 'scaler.npz'), 'cut_half')
    return [([run, wav, '--threshold', 'nan'], "error: argument --threshold: nan must be strictly"),
            ([bad_scaler, wav], f'error: {bad_scaler}/scaler.npz: not a valid scaler file'),
            ([run, wav, '--out', str(run_folder / 'afile')], 'error: --out '),
            ([run, wav, '--threshold', '-1'], 'error: argument --threshold: -1.0 must be strictly'),
            ([run, wav, '--channels', 'a,b'], "error: argument --channels: 'a,b' is not a comma"),
            ([run, wav, '--bogus'], 'error: unrecognized arguments: --bogus'),
            ([run], 'error: the following arguments are required: INPUT')]


def test_predict_bad_flags_and_files_exit_2_in_one_line(run_folder, tmp_path):
    for k, (args, message) in enumerate(_predict_cases(run_folder, tmp_path)):
        r = run_command('predict.py', *args, shell=k == 0)
        assert r.returncode == 2 and one_line_error(r.stderr).startswith(message), (args, r.stderr)


# ------------------------------------------------------------------------------------------------
# Extraction: damaged outputs are redone, damaged inputs named, a full disk resumes exactly
# ------------------------------------------------------------------------------------------------
def test_reextraction_redoes_truncated_or_damaged_outputs_to_identical_files(extracted, tmp_path):
    """A truncated feature file used to count as "already done" and stay; every damaged output is now redone."""
    tmp, params, fc = extracted
    work = tmp_path / 'feat'
    shutil.copytree(tmp / 'feat', work)
    p = dict(params, feat_label_dir=str(work))
    fc2 = cfc.FeatureClass(p)
    before = files_of(fc2.feat_label_dir)
    recs = fc2.recordings()
    train = next(r for r in recs if r.part == 'train')
    test = next(r for r in recs if r.part == 'test')
    damaged = {
        fc2.paths(train.stem)['feat']: lambda b: b[:len(b) - 100],  # truncated
        fc2.paths(test.stem)['feat']: lambda b: b[:60],  # inside the header
        fc2.paths(test.stem)['label']: lambda b: b + b'\0' * 16,  # trailing data
        fc2.paths(train.stem)['label']: lambda b: b[:len(b) // 2],
        fc2.paths(train.stem)['stats']: lambda b: b[:len(b) // 2],
        fc2.paths(test.stem)['info']: lambda b: b[:len(b) // 2],
    }
    for path, cut in damaged.items():
        data = open(path, 'rb').read()
        with open(path, 'wb') as f:
            f.write(cut(data))
        os.utime(path, (os.path.getmtime(fc2.scaler_file) + 10,) * 2)  # as new as a good file
    assert not any(fc2.is_extracted(r) for r in (train, test))
    assert not any(fc2.is_analyzed(r) for r in (train, test))
    batch_feature_extraction.extract(p, progress=False)
    after = files_of(fc2.feat_label_dir)
    assert after.keys() == before.keys()
    for name in before:
        if not name.endswith('.npz'):  # zip archives carry their write time
            assert after[name] == before[name], name
    with np.load(fc2.paths(train.stem)['stats']) as z, np.load(fc.paths(train.stem)['stats']) as z0:
        assert all(np.array_equal(z[k], z0[k]) for k in ('n', 'mean', 'm2'))


def test_a_damaged_scaler_in_the_feature_folder_is_replaced(extracted, tmp_path):
    tmp, params, fc = extracted
    work = tmp_path / 'feat'
    shutil.copytree(tmp / 'feat', work)
    p = dict(params, feat_label_dir=str(work))
    fc2 = cfc.FeatureClass(p)
    damage_scaler(fc2.scaler_file, 'cut_half')
    batch_feature_extraction.extract(p, progress=False)
    assert all(np.array_equal(a, b) for a, b in zip(cfc.load_scaler(fc2.scaler_file), cfc.load_scaler(fc.scaler_file)))


@pytest.mark.parametrize('frac', [0.97, 0.5])
def test_a_wav_cut_mid_sample_is_named_not_read_short(extracted, tmp_path, frac, capsys, monkeypatch):
    """Was: at 97 % accepted as a 0.97-s recording; at 50 % an error that blamed the CSV."""
    tmp, params, _ = extracted
    ds = tmp_path / 'ds'
    shutil.copytree(tmp / 'ds', ds)
    wav = sorted((ds / 'wav_ov1_split1_30db').iterdir())[0]
    good = wav.read_bytes()
    n = int(len(good) * frac) | 1  # odd: mid-sample
    present = n - (good.index(b'data') + 8)
    wav.write_bytes(good[:n])
    argv = ['999', f'dataset_dir={ds}', f'feat_label_dir={tmp_path / "feat"}', 'n_jobs=1']
    code, err = run_main(batch_feature_extraction.main, argv, capsys, monkeypatch)
    line = one_line_error(err)
    assert code == 2 and line == (f'error: {wav}: truncated: its header declares 352800 bytes of audio (1.00 s), the '
                                  f'file holds {present} ({present / 352800:.2f} s); {present % 8} byte(s) of a '
                                  f'partial sample frame; copy the file again'), line


def test_a_zero_byte_wav_is_named(extracted, tmp_path, capsys, monkeypatch):
    tmp, params, _ = extracted
    ds = tmp_path / 'ds'
    shutil.copytree(tmp / 'ds', ds)
    wav = sorted((ds / 'wav_ov1_split1_30db').iterdir())[-1]
    wav.write_bytes(b'')
    code, err = run_main(batch_feature_extraction.main, ['999', f'dataset_dir={ds}',
                                                         f'feat_label_dir={tmp_path / "feat"}', 'n_jobs=1'],
                         capsys, monkeypatch)
    assert code == 2 and one_line_error(err).startswith(f'error: {wav}: cannot read audio'), err


def _count_writes(monkeypatch, fail_at=None):
    """Count numpy array writes (np.save, np.savez); raise ENOSPC at write number ``fail_at``."""
    real = np.lib.format.write_array
    calls = dict(n=0)

    def write_array(*args, **kwargs):
        calls['n'] += 1
        if calls['n'] == fail_at:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, **kwargs)

    monkeypatch.setattr(np.lib.format, 'write_array', write_array)
    return calls


def test_disk_full_during_extraction_is_one_line_and_the_rerun_is_identical(extracted, tmp_path, capsys,
                                                                             monkeypatch):
    """ENOSPC at the first array write, in the middle of pass 1, at the scaler, and in pass 2: exit 2 with one line
    naming the file, no temporary file left, and a rerun gives the same files as an uninterrupted extraction."""
    tmp, params, fc = extracted
    reference = files_of(fc.feat_label_dir)
    with monkeypatch.context() as m:  # how many array writes a whole extraction makes
        calls = _count_writes(m)
        batch_feature_extraction.extract(dict(params, feat_label_dir=str(tmp_path / 'count')), progress=False)
    n = calls['n']
    nb_recs = len(fc.recordings())
    # labels, statistics (3 arrays per train file), the scaler (3 arrays), features
    assert n == nb_recs + 3 * sum(r.part == 'train' for r in fc.recordings()) + 3 + nb_recs
    for k in (1, n // 3, n - nb_recs, n - 1):  # a label, a statistics file, the scaler, a feature file
        feat = tmp_path / f'feat{k}'
        argv = ['999', f'dataset_dir={tmp / "ds"}', f'feat_label_dir={feat}', 'n_jobs=1'] + \
            [a for a in tiny_argv() if not a.startswith('n_jobs=')]
        with monkeypatch.context() as m:
            _count_writes(m, fail_at=k)
            code, err = run_main(batch_feature_extraction.main, argv, capsys, monkeypatch)
        line = one_line_error(err)
        assert code == 2 and 'cannot write (No space left on device); free some space, then re-run' in line, line
        assert str(feat) in line
        leftovers = [name for name in files_of(str(feat)) if '.tmp' in name]
        assert not leftovers, leftovers
        code, err = run_main(batch_feature_extraction.main, argv, capsys, monkeypatch)
        assert code == 0, err
        redone = files_of(os.path.join(feat, os.path.basename(fc.feat_label_dir)))
        assert redone.keys() == reference.keys()
        for name in reference:
            if name.endswith('.npz'):
                with np.load(io_bytes(redone[name])) as a, np.load(io_bytes(reference[name])) as b:
                    assert a.files == b.files and all(np.array_equal(a[x], b[x]) for x in a.files), name
            else:
                assert redone[name] == reference[name], (k, name)


def io_bytes(data: bytes):
    import io
    return io.BytesIO(data)


# ------------------------------------------------------------------------------------------------
# The generator: checked headers, no file descriptor per recording
# ------------------------------------------------------------------------------------------------
def test_generator_names_a_truncated_feature_or_label_file(extracted, tmp_path, capsys, monkeypatch):
    """Was a traceback: "mmap length is greater than file size" (features) or a reshape error (labels)."""
    from cls_data_generator import DataGenerator

    tmp, params, fc = extracted
    for kind in ('feat', 'label'):
        work = tmp_path / kind
        shutil.copytree(tmp / 'feat', work)
        p = dict(params, feat_label_dir=str(work))
        fc2 = cfc.FeatureClass(p)
        stem = fc2.dataset.part('test')[0].stem
        path = fc2.paths(stem)[kind]
        data = open(path, 'rb').read()
        open(path, 'wb').write(data[:len(data) - 40])
        with pytest.raises(SELDError, match=rf'{stem}\.npy: \d+ bytes, but its header .* needs \d+: truncated'):
            DataGenerator(p, split='test', feat_class=fc2)
        argv = [f'job-{kind}', '999', f'dataset_dir={tmp / "ds"}', f'feat_label_dir={work}',
                f'model_dir={tmp_path / "runs"}'] + tiny_argv()
        import seld
        code, err = run_main(seld.main, argv, capsys, monkeypatch)
        assert code == 2 and f'{stem}.npy: ' in one_line_error(err) and 'truncated' in err, err


def test_generator_holds_no_file_descriptor_per_recording(extracted):
    from cls_data_generator import DataGenerator

    tmp, params, fc = extracted
    fd_dir = '/proc/self/fd'
    if not os.path.isdir(fd_dir):
        pytest.skip('no /proc/self/fd')
    before = len(os.listdir(fd_dir))
    gens = [DataGenerator(params, split=s, feat_class=fc) for s in ('train', 'val', 'test')]
    batches = [g[0] for g in gens]
    assert len(os.listdir(fd_dir)) == before  # the old memory maps held one per recording: 5 here
    assert all(b[0].shape[0] == params['batch_size'] for b in batches)


FD_SCRIPT = r'''
import os, resource, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
import parameter, seld
params = parameter.get_params('999', dict(dataset_dir=sys.argv[1], feat_label_dir=sys.argv[2], model_dir=sys.argv[3],
                                          nfft=32, pool_size=[2, 2, 2], sequence_length=8, batch_size=4,
                                          nb_cnn2d_filt=4, rnn_size=[8], fnn_size=[8], nb_epochs=1))
results = seld.train(params, 'fd')
print('limit', resource.getrlimit(resource.RLIMIT_NOFILE)[0], 'test files', results['nb_test_files'])
'''


@pytest.mark.slow
def test_training_on_2000_recordings_under_ulimit_256(tmp_path):
    """2,000 tiny recordings train and are scored with at most 256 open files (the old generator's memory maps held
    one descriptor per recording, and failed here with "Too many open files"). To keep the test fast, the recordings
    are one 10-ms clip and its description, hard-linked 2,000 times, and their features are written directly in
    FeatureClass's layout (the features and labels of the first recording, linked; an info file per recording)."""
    nb, fs, samples = 2000, 44100, 441
    ds, feat_root = tmp_path / 'ds', tmp_path / 'feat'
    wav_dir, desc_dir = ds / 'wav_ov1_split1_30db', ds / 'desc_ov1_split1'
    wav_dir.mkdir(parents=True)
    desc_dir.mkdir(parents=True)
    stems = [f'{"train" if i < nb * 0.8 else "test"}_{i}_desc_30_100' for i in range(nb)]
    sf.write(str(tmp_path / 'clip.wav'), np.zeros((samples, 4)), fs, subtype='PCM_16')
    (tmp_path / 'clip.csv').write_text(tut_fixture.HEADER + 'knock000.wav,0.001,0.005,10,40,2.0\n')
    for stem in stems:
        os.link(tmp_path / 'clip.wav', wav_dir / f'{stem}.wav')
        os.link(tmp_path / 'clip.csv', desc_dir / f'{stem}.csv')
    params = parameter.get_params('999', dict(dataset_dir=str(ds), feat_label_dir=str(feat_root), nfft=32,
                                              pool_size=[2, 2, 2]))
    fc = cfc.FeatureClass(params)
    for d in (fc.feat_dir_norm, fc.label_dir, fc.info_dir):
        os.makedirs(d)
    nb_frames = fc.framing.nb_frames(samples)
    recs = fc.recordings()
    ref = fc.dataset.read_reference(recs[0], duration_s=samples / fs)
    np.save(tmp_path / 'label.npy', label_frames.desc_to_labels(ref, nb_classes=fc.nb_classes, nb_frames=nb_frames,
                                                                frame_rate=fc.frame_rate))
    np.save(tmp_path / 'feat.npy', np.random.default_rng(0).standard_normal(
        (nb_frames, fc.framing.nb_bins, 8)).astype(np.float32))
    for rec in recs:
        p = fc.paths(rec.stem)
        os.link(tmp_path / 'label.npy', p['label'])
        os.link(tmp_path / 'feat.npy', p['feat'])
        with open(p['info'], 'w') as f:
            json.dump(dict(stem=rec.stem, part=rec.part, fold=rec.fold, nb_samples=samples, fs=fs,
                           duration_s=samples / fs, nb_frames=nb_frames, wav=rec.wav, meta=rec.meta), f)
    np.savez(fc.scaler_file, mean=np.zeros((fc.framing.nb_bins, 8)), scale=np.ones((fc.framing.nb_bins, 8)))
    r = subprocess.run([sys.executable, '-c', FD_SCRIPT, str(ds), str(feat_root), str(tmp_path / 'runs')], cwd=ROOT,
                       capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'), timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'limit 256 test files' in r.stdout, r.stdout


def test_predict_without_inputs_is_refused(run_folder):
    # Found by test_fuzz_predict_flags: argparse drops a '--' it takes as the only INPUT, leaving none.
    with pytest.raises(SELDError, match='no INPUT given'):
        predict.check_arguments([str(run_folder / 'run'), '--', '--'])

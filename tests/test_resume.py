"""Exact resume of seld.py (TensorFlow CPU backend): a run stopped after any epoch, or killed with SIGKILL anywhere,
continues to the weights and metrics.csv of the uninterrupted run, bit for bit; the run folder's commit record,
lock, temporary files and error messages; the training loss over the real frames only."""
from __future__ import annotations

import csv
import errno
import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

import batch_feature_extraction
import keras_model
import parameter
import seld
import utils
from cls_data_generator import DataGenerator
from utils import SELDError

import commands
import tut_fixture

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# augmentation and dropout on (in the conv blocks, the dense layers and the GRU inputs): every random draw of training
RUN = dict(sequence_length=64, batch_size=4, nb_cnn2d_filt=8, rnn_size=[16], fnn_size=[16], augment=True,
           dropout_rate=0.2, patience=5, nb_epochs=3)
TIMING = {'epoch_time_s'}
# In the order a run reaches them (published_model@1: epoch 1 always selects its model; a later one may not).
KILL_POINTS = ['published_model@1', 'batch@2', 'model_saved@2', 'metrics_written@2', 'committed@2', 'published_last@2',
               'cleaned@2']

pytestmark = pytest.mark.skipif(keras.backend.backend() != 'tensorflow', reason='the exact-resume tests run on the '
                                'TensorFlow CPU backend')


def overrides(tmp, **extra) -> dict:
    return {**dict(dataset_dir=str(tmp / 'ds'), feat_label_dir=str(tmp / 'feat'), model_dir=str(tmp / 'runs')),
            **RUN, **extra}


def run_folder(tmp, job: str) -> str:
    return os.path.join(tmp, 'runs', f'ansim_ov1_split1_{job}')


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('resume')
    tut_fixture.make_dataset(str(tmp / 'ds'), nb_train=3, nb_test=2, clip_len_s=2.0)
    batch_feature_extraction.extract(parameter.get_params('999', overrides(tmp)), progress=False)
    return tmp


@pytest.fixture(scope='module')
def straight(tiny):
    """The uninterrupted run: 3 epochs in one go."""
    seld.train(parameter.get_params('999', overrides(tiny)), 'straight')
    return run_folder(tiny, 'straight')


def model_state(path: str) -> list[np.ndarray]:
    """Every weight of a saved model (BatchNorm statistics included) and its optimizer's state (step, moments)."""
    model = keras_model.load_model(path)
    return [np.asarray(v) for v in model.weights] + [np.asarray(v) for v in model.optimizer.variables]


def max_abs_diff(run_a: str, run_b: str, name: str) -> float:
    a, b = model_state(os.path.join(run_a, name)), model_state(os.path.join(run_b, name))
    assert [x.shape for x in a] == [y.shape for y in b]
    return max(float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)), initial=0.0)) for x, y in zip(a, b))


def metrics_rows(run: str) -> list[dict[str, str]]:
    with open(os.path.join(run, 'metrics.csv'), newline='') as f:
        return [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(f)]


def assert_same_run(run: str, reference: str, label: str) -> None:
    """The final weights and optimizer state, the selected model and metrics.csv (its cells as written, timing
    aside) equal the reference run's exactly."""
    last = max_abs_diff(run, reference, 'checkpoint/last.keras')
    best = max_abs_diff(run, reference, 'model.keras')
    print(f'\n{label}: max abs difference to the uninterrupted run: last epoch {last:.3g}, selected model {best:.3g}')
    assert metrics_rows(run) == metrics_rows(reference)
    assert last == 0 and best == 0
    assert json.load(open(os.path.join(run, 'results.json')))['test'] == \
        json.load(open(os.path.join(reference, 'results.json')))['test']


# ---- one epoch's randomness from (seed, epoch) -----------------------------------------------------------------
def test_generator_batches_are_a_function_of_seed_and_epoch(tiny):
    params = parameter.get_params('999', overrides(tiny))
    a = DataGenerator(params, split='train')
    b = DataGenerator(params, split='train')
    for _ in range(3):  # whatever a generator did before, epoch 2's batches are epoch 2's
        b.on_epoch_end()
    a.set_epoch(2)
    b.set_epoch(2)
    for k in range(len(a)):
        (xa, ya, wa), (xb, yb, wb) = a[k], b[k]
        np.testing.assert_array_equal(xa, xb)
        for key in ('sed_out', 'doa_out'):
            np.testing.assert_array_equal(ya[key], yb[key])
            np.testing.assert_array_equal(wa[key], wb[key])
    a.set_epoch(1)  # another epoch, other draws
    assert not np.array_equal(a._order, b._order) or not np.array_equal(a._transform_ids, b._transform_ids)


def test_dropout_seed_states_are_a_function_of_seed_and_epoch(tmp_path):
    kw = dict(nb_frames=8, nb_bins=16, nb_channels=4, nb_classes=3, dropout_rate=0.3, nb_cnn2d_filt=4,
              pool_size=[2, 2], rnn_size=[4], fnn_size=[4])
    built = keras_model.get_model(**kw)
    names = [v.path for v in keras_model.seed_state_variables(built)]
    assert len(names) == 2 + 2 + 2  # 2 conv blocks, the forward and backward GRU, 2 heads
    keras_model.save_model(built, str(tmp_path / 'm.keras'))
    keras_model.get_model(**kw)  # Keras numbers the seed generators per process: the names shift
    loaded = keras_model.load_model(str(tmp_path / 'm.keras'))
    for m in (built, loaded):
        keras.random.dropout(keras.ops.ones(4), 0.5, seed=None)  # process history
        keras_model.set_epoch_seeds(m, seed=42, epoch=5)
    states = [[np.asarray(v).tolist() for v in keras_model.seed_state_variables(m)] for m in (built, loaded)]
    assert states[0] == states[1]
    assert len({tuple(s) for s in states[0]}) == len(states[0])  # every generator its own stream
    keras_model.set_epoch_seeds(built, seed=42, epoch=6)
    assert [np.asarray(v).tolist() for v in keras_model.seed_state_variables(built)] != states[0]


class _Spy(DataGenerator):
    """Tags every batch with the epoch its generator was set to when Keras read it (in the SED targets)."""

    reads: list[tuple[int, int]]

    def __getitem__(self, b):
        epoch = self.epoch
        x, y, w = super().__getitem__(b)
        self.reads.append((epoch, b))
        return x, {'sed_out': np.full_like(y['sed_out'], epoch), 'doa_out': y['doa_out']}, w


def test_keras_trains_each_epoch_on_the_batches_of_that_epoch(tiny):
    """Keras' TensorFlow trainer reads batches ahead (two to infer the signature, before the first epoch; its
    reader threads) and calls ``on_epoch_end`` once before the first epoch: a batch trained on in epoch ``e`` must still
    be one made after the callback set epoch ``e``. The metric below is the mean of the tag over the trained
    frames: exactly ``e`` only if every trained batch of epoch ``e`` was made for it."""
    params = parameter.get_params('999', overrides(tiny))
    gen = _Spy(params, split='train')
    gen.reads = []
    C = gen.nb_classes
    x = keras.Input(shape=gen.get_data_sizes()[0][1:])
    h = keras.layers.Reshape((gen.seq_len, -1))(x)
    model = keras.Model(x, {'sed_out': keras.layers.Dense(C, name='sed_out')(h),
                            'doa_out': keras.layers.Dense(3 * C, name='doa_out')(h)})
    model.compile(optimizer='sgd', loss='mse', weighted_metrics={'sed_out': [keras.metrics.MeanMetricWrapper(
        lambda t, p: keras.ops.mean(t, axis=-1), name='tag')]})
    for initial in (0, 2):
        gen.reads.clear()
        hist = model.fit(gen, epochs=initial + 3, initial_epoch=initial, shuffle=False, verbose=0,
                         callbacks=[seld.EpochSeeds(seed=params['seed'], train_gen=gen)])
        assert hist.history['sed_out_tag'] == [float(e) for e in range(initial, initial + 3)]
        assert len(gen.reads) > 3 * len(gen)  # the spy saw Keras read ahead, and it did not matter
    # Each batch of the epoch was made once for it. (Two reader threads make them in any order; Keras' ordered
    # enqueuer trains them in index order, which the straight-versus-resumed tests below check through the weights.)
    assert sorted(b for e, b in gen.reads if e == 4) == list(range(len(gen)))


# ---- straight versus resumed -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_two_epochs_then_three_is_three_epochs(tiny, straight):
    seld.train(parameter.get_params('999', overrides(tiny, nb_epochs=2)), 'resumed')
    run = run_folder(tiny, 'resumed')
    assert [r['epoch'] for r in metrics_rows(run)] == ['1', '2']
    seld.train(parameter.get_params('999', overrides(tiny)), 'resumed')
    assert_same_run(run, straight, 'nb_epochs=2, then nb_epochs=3')


def _argv(tiny, job: str, **extra) -> list[str]:
    """seld.py's arguments for ``job`` on the tiny dataset."""
    return [job, '999'] + [f'{k}={",".join(map(str, v)) if isinstance(v, list) else v}'
                           for k, v in overrides(tiny, **extra).items()]


def _cli(tiny, job: str, env: dict | None = None, **extra) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, 'seld.py', *_argv(tiny, job, **extra)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3', **(env or {})})


@pytest.mark.slow
def test_sigkill_anywhere_then_rerun_is_the_uninterrupted_run(tiny, straight):
    """One run killed with SIGKILL at every point of KILL_POINTS in turn (each process dies at the next point not yet
    reached; the one after it resumes), then left to finish: the uninterrupted run's weights and metrics.csv."""
    job = 'killed'
    run = run_folder(tiny, job)
    log = os.path.join(tiny, 'kill_log.txt')
    env = {'SELD_TEST_KILL_AT': ','.join(KILL_POINTS), 'SELD_TEST_KILL_LOG': log, 'PYTHONUNBUFFERED': '1'}
    for k in range(len(KILL_POINTS) + 1):
        state_file = os.path.join(run, 'checkpoint', 'state.json')
        done = json.load(open(state_file))['epoch'] if os.path.exists(state_file) else 0
        out = _cli(tiny, job, env=env)
        fired = open(log).read().split() if os.path.exists(log) else []
        if k < len(KILL_POINTS):  # it died at the next point (some while recovering the last one), by SIGKILL
            assert out.returncode == -9 and fired == KILL_POINTS[:k + 1], (fired, out.stderr[-3000:])
        else:
            assert out.returncode == 0, out.stderr[-3000:]
            assert f'resuming after epoch {done}' in out.stdout, out.stdout
    assert_same_run(run, straight, 'SIGKILL at ' + ', then '.join(KILL_POINTS))
    leftovers = [os.path.join(r, f) for r, ds, fs in os.walk(run) for f in fs + ds if utils.TEMP_NAME.match(f)]
    assert not leftovers
    assert sorted(f for f in os.listdir(os.path.join(run, 'checkpoint')) if f.startswith('epoch-')) == sorted(
        {'epoch-0003.keras', json.load(open(os.path.join(run, 'checkpoint', 'state.json')))['best_model']})


# ---- faults ----------------------------------------------------------------------------------------------------
class _FullDisk:
    """``open`` for utils' writes: the second and later writes of a file whose name contains ``target`` (epoch 2's
    and later) fail with ENOSPC after writing half of it."""

    def __init__(self, target: str):
        self.target, self.count = target, 0

    def __call__(self, path, mode='r', *args, **kwargs):
        f = open(path, mode, *args, **kwargs)
        if 'w' in mode and self.target in os.path.basename(path):
            self.count += 1
            if self.count >= 2:
                real_write = f.write

                def write(data):
                    real_write(data[:len(data) // 2])
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                f.write = write
        return f


@pytest.mark.slow
@pytest.mark.parametrize('target', ['epoch-0002.keras', 'metrics.csv', 'state.json'])
def test_disk_full_during_a_checkpoint(tiny, straight, monkeypatch, target):
    job = 'full_' + target.split('.')[0]
    params = parameter.get_params('999', overrides(tiny))
    if target.endswith('.keras'):
        save = keras.Model.save

        def full_save(self, path, *a, **k):
            if f'.{target}.' in os.path.basename(path):  # the temporary name of the file
                with open(path, 'wb') as f:
                    f.write(b'PK\x03\x04 half a model')
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return save(self, path, *a, **k)
        monkeypatch.setattr(keras.Model, 'save', full_save)
    else:
        monkeypatch.setattr(utils, 'open', _FullDisk(target), raising=False)
    with pytest.raises(SELDError) as err:
        seld.train(params, job)
    message = str(err.value)
    assert '\n' not in message and 'No space left on device' in message and target in message
    monkeypatch.undo()
    run = run_folder(tiny, job)
    assert keras_model.load_model(os.path.join(run, 'model.keras')).count_params() > 0  # epoch 1's, intact
    assert json.load(open(os.path.join(run, 'checkpoint', 'state.json')))['epoch'] == 1
    seld.train(params, job)  # the next run resumes after epoch 1
    assert_same_run(run, straight, f'disk full writing {target}')


@pytest.mark.slow
def test_run_folder_errors_are_one_line(tiny, monkeypatch):
    params = parameter.get_params('999', overrides(tiny, nb_epochs=1))
    seld.train(params, 'faults')
    run = run_folder(tiny, 'faults')
    state_file = os.path.join(run, 'checkpoint', 'state.json')
    good = open(state_file).read()
    cases = [(state_file, '{}', r"state\.json: no 'epoch'"), (state_file, '{"epoch": "x"', r'state\.json: not valid JSON'),
             (state_file, '[1, 2]', r'state\.json: list is not a checkpoint state')]
    metrics_file = os.path.join(run, 'metrics.csv')
    rows = open(metrics_file).read()
    header, first = rows.splitlines()[:2]
    cells = first.split(',')
    cells[header.split(',').index('loss')] = 'abc'
    cases.append((metrics_file, header + '\n' + ','.join(cells) + '\n', r"metrics\.csv:2: 'abc' in column 'loss' is not"))
    for path, text, match in cases:
        with open(path, 'w') as f:
            f.write(text)
        with pytest.raises(SELDError, match=match) as err:
            seld.train(params, 'faults')
        assert '\n' not in str(err.value)
        utils.write_text(state_file, good)
        utils.write_text(metrics_file, rows)
    # a truncated checkpoint model: named, one line
    model_file = os.path.join(run, 'checkpoint', 'epoch-0001.keras')
    saved = open(model_file, 'rb').read()
    with open(model_file, 'wb') as f:
        f.write(saved[:len(saved) // 2])
    with pytest.raises(SELDError, match='epoch-0001.keras: cannot load the model') as err:
        seld.train(parameter.get_params('999', overrides(tiny, nb_epochs=2)), 'faults')
    assert '\n' not in str(err.value)
    with open(model_file, 'wb') as f:
        f.write(saved)
    # a truncated model.keras is published again from the checkpoint it was published from
    with open(os.path.join(run, 'model.keras'), 'r+b') as f:
        f.truncate(100)
    seld.train(params, 'faults')
    assert open(os.path.join(run, 'model.keras'), 'rb').read() == saved
    # model_dir that is a file; a run folder where nothing can be written
    blocker = tiny / 'a_file'
    blocker.write_text('x')
    with pytest.raises(SELDError, match='cannot create the run folder'):
        seld.train(parameter.get_params('999', overrides(tiny, model_dir=str(blocker))), 'faults')
    real_open = os.open

    def read_only(path, flags, *a, **k):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
        return real_open(path, flags, *a, **k)
    monkeypatch.setattr(os, 'open', read_only)
    with pytest.raises(SELDError, match=r'\.lock: cannot create the lock file \(Read-only file system\)'):
        seld.train(params, 'faults')


@pytest.mark.slow
def test_cli_corrupt_state_is_one_line_exit_2(tiny):
    run = run_folder(tiny, 'cli_state')
    os.makedirs(os.path.join(run, 'checkpoint'))
    with open(os.path.join(run, 'checkpoint', 'state.json'), 'w') as f:
        f.write('{}')
    # seld.py's main through utils.run_cli, in this process (its exit status from the shell: tests/test_seld.py)
    r = commands.in_process(seld.main, *_argv(tiny, 'cli_state'))
    assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr[-3000:]
    assert r.stderr.strip().splitlines()[-1].startswith('error: ') and 'state.json' in r.stderr


@pytest.mark.slow
def test_one_writer_per_run_folder_and_a_killed_writer_does_not_block(tiny):
    params = parameter.get_params('999', overrides(tiny, nb_epochs=1))
    run = run_folder(tiny, 'locked')
    os.makedirs(run)
    with utils.lock_folder(run):  # another writer (flock: a second open file description, even in this process)
        with pytest.raises(SELDError, match='another process is using this run folder'):
            seld.train(params, 'locked')
    assert not os.path.exists(os.path.join(run, 'params.json'))  # nothing was written
    # a process that holds the lock and is killed: the kernel releases it
    code = (f'import os, signal, utils; cm = utils.lock_folder({run!r}); cm.__enter__(); '
            f'os.kill(os.getpid(), signal.SIGKILL)')
    assert subprocess.run([sys.executable, '-c', code], cwd=ROOT).returncode == -9
    assert os.path.exists(os.path.join(run, '.lock'))
    seld.train(params, 'locked')


@pytest.mark.slow
def test_moved_run_folder_and_other_spellings_resume(tiny, monkeypatch):
    seld.train(parameter.get_params('999', overrides(tiny, nb_epochs=1)), 'moved')
    os.makedirs(tiny / 'elsewhere')
    shutil.move(str(tiny / 'runs' / 'ansim_ov1_split1_moved'), str(tiny / 'elsewhere' / 'ansim_ov1_split1_moved'))
    run = str(tiny / 'elsewhere' / 'ansim_ov1_split1_moved')
    # leftovers of a killed writer: a temporary file and a temporary predictions folder
    open(os.path.join(run, '.metrics.csv.abcd_123.tmp.csv'), 'w').close()
    os.makedirs(os.path.join(run, '.predictions.k2j4h5g6.tmp'))
    open(os.path.join(run, 'checkpoint', '.state.json.zzzzzzzz.tmp.json'), 'w').close()
    monkeypatch.chdir(tiny)
    for epochs, model_dir, feat in ((2, './elsewhere', 'feat'), (3, 'elsewhere/', str(tiny / 'feat'))):
        seld.train(parameter.get_params('999', overrides(tiny, nb_epochs=epochs, model_dir=model_dir,
                                                          feat_label_dir=feat)), 'moved')
        assert [r['epoch'] for r in metrics_rows(run)] == [str(e) for e in range(1, epochs + 1)]
    assert not [f for r, ds, fs in os.walk(run) for f in fs + ds if utils.TEMP_NAME.match(f)]
    assert json.load(open(os.path.join(run, 'params.json')))['params']['model_dir'] == 'elsewhere/'


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        utils.write_text(tmp_path / 'a.txt', 'x')
        utils.save_npy(tmp_path / 'b.npy', np.zeros(2))
        seld.write_predictions(str(tmp_path / 'predictions'), [], dict(format='dcase2020', frame_rate=10.0,
                                                                       classes=['a']))
        os.umask(0o002)
        utils.write_text(tmp_path / 'c.txt', 'x')
    finally:
        os.umask(old)
    mode = {n: os.stat(tmp_path / n).st_mode & 0o777 for n in ('a.txt', 'b.npy', 'predictions', 'c.txt')}
    assert mode == {'a.txt': 0o640, 'b.npy': 0o640, 'predictions': 0o750, 'c.txt': 0o664}


def test_predictions_folder_is_replaced_whole(tmp_path, monkeypatch):
    import formats

    pred = tmp_path / 'predictions'
    pred.mkdir()
    (pred / 'old_file.csv').write_text('0,0,0,0\n')
    info = dict(format='dcase2020', frame_rate=10.0, classes=['a'])
    one = [dict(stem='x', sed=np.ones((3, 1), np.float32), doa=np.zeros((3, 3), np.float32), nb_frames=3,
                duration_s=0.3)]
    calls = []
    real = formats.write_csv

    def failing(path, *a, **k):  # the second file cannot be written
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(path, *a, **k)
    monkeypatch.setattr(formats, 'write_csv', failing)
    with pytest.raises(SELDError, match='predictions: cannot write'):
        seld.write_predictions(str(pred), one + [dict(one[0], stem='y')], info)
    assert os.listdir(pred) == ['old_file.csv'] and os.listdir(tmp_path) == ['predictions']  # untouched
    monkeypatch.undo()
    seld.write_predictions(str(pred), one, info)
    assert sorted(os.listdir(pred)) == ['format.json', 'x.csv'] and os.listdir(tmp_path) == ['predictions']


# ---- comparable curves -----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_training_loss_is_the_mean_over_real_frames(tiny):
    """The loss of a training batch with zero-weight padding is the mean over its real frames (by hand), and the
    same quantity as seld.py's validation loss on the same data."""
    params = parameter.get_params('999', overrides(tiny, dropout_rate=0.0, augment=False, batch_size=16))
    gen = DataGenerator(params, split='val')
    assert len(gen) == 1  # the whole validation file and all-padding sequences in one batch
    x, y, w = gen[0]
    weight = w['sed_out']
    assert (weight == 0).any() and (weight > 0).any()  # a batch with padding
    keras.utils.set_random_seed(1)
    model = keras_model.get_model(nb_frames=64, nb_bins=x.shape[2], nb_channels=x.shape[3] // 2, nb_classes=11,
                                  nb_cnn2d_filt=8, rnn_size=[16], fnn_size=[16], loss_weights=params['loss_weights'])
    out = model(x, training=True)  # what the training step computes (batch statistics), before its update
    p_sed = np.clip(np.asarray(out['sed_out'], np.float64), 1e-7, 1 - 1e-7)
    t_sed = y['sed_out'].astype(np.float64)
    bce = -np.mean(t_sed * np.log(p_sed) + (1 - t_sed) * np.log(1 - p_sed), axis=-1)
    mse = np.mean((np.asarray(out['doa_out'], np.float64) - y['doa_out']) ** 2, axis=-1)
    real = weight > 0
    w0, w1 = params['loss_weights']
    by_hand = w0 * bce[real].mean() + w1 * mse[real].mean()
    padded = w0 * np.sum(bce * real) / weight.size + w1 * np.sum(mse * real) / weight.size  # weights 0 and 1
    loss = model.train_on_batch(x, y, w, return_dict=True)['loss']
    print(f'\ntraining loss of a padded batch: {loss:.6f}; mean over its real frames by hand {by_hand:.6f}; '
          f'with the padding in the denominator {padded:.6f}')
    assert loss == pytest.approx(by_hand, rel=1e-5)
    # the same data as a validation split: seld.py's val/loss equals Keras' loss of the batch (inference mode)
    scores, _, _ = seld.evaluate_split(model, gen, params)
    assert model.test_on_batch(x, y, w, return_dict=True)['loss'] == pytest.approx(scores['loss'], rel=1e-5)

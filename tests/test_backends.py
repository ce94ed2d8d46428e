"""Keras 3 on JAX and PyTorch, and models moving between backends.

Keras fixes its backend when it is first imported, so every test here runs a fresh interpreter with
``KERAS_BACKEND`` set. The JAX tests are part of the README's test command (requirements-jax.txt); the PyTorch ones
run where ``torch`` is installed and are skipped elsewhere (PyPI's default torch wheel is the multi-GB CUDA build,
so it is not in the test requirements). Tiny shapes throughout: each interpreter spends most of its time compiling.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import keras_model

import tut_fixture

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(sequence_length=64, batch_size=4, nb_cnn2d_filt=8, rnn_size=[16], fnn_size=[16])
BACKENDS = ['jax', 'torch']


# Prepended to every script: TensorFlow cannot be imported (as where it is not installed, e.g. the GPU machine of
# benchmarks/README.md), so any import of it by the project fails the test. Keras itself then sees it as absent too
# (where it is installed, Keras imports it under any backend to check for tf.TensorShape when serializing layers).
NO_TENSORFLOW = "import sys; sys.modules['tensorflow'] = None  # import tensorflow -> ImportError\n"


# JAX's persistent compilation cache, shared by the interpreters of one test session: the tiny models recur (the
# training run's model is the benchmark's end-to-end model), and compiling them is most of each interpreter's time.
JAX_CACHE = {'dir': None}


@pytest.fixture(scope='session', autouse=True)
def jax_compilation_cache(tmp_path_factory):
    JAX_CACHE['dir'] = str(tmp_path_factory.mktemp('jax_cache'))


def need(backend: str) -> None:
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f'{backend} is not installed' + (' (requirements-jax.txt)' if backend == 'jax' else ''))


def run_under(backend: str, code: str, *args: str, env: dict[str, str] | None = None, timeout: int = 400) -> dict:
    """Run ``code`` (which prints ``RESULT <json>``) in a fresh interpreter under ``backend``, without TensorFlow;
    skip if the backend is not installed."""
    need(backend)
    full_env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL='2', JAX_COMPILATION_CACHE_DIR=JAX_CACHE['dir'],
                    JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0.2', **(env or {}))
    proc = subprocess.run([sys.executable, '-c', NO_TENSORFLOW + textwrap.dedent(code), *args], cwd=ROOT,
                          env=full_env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return json.loads(proc.stdout.split('RESULT ', 1)[1].splitlines()[0])


MODEL_TESTS = 'original_gru or mixed_precision'  # the backend's numerics; shapes and configs are the same everywhere


@pytest.mark.slow
@pytest.mark.parametrize('backend', BACKENDS)
def test_model_tests_pass_under(backend):
    """tests/test_keras_model.py's computations under the other backend: the original GRU (hard sigmoid, reset before
    the recurrent matmul) against numpy Keras 2.2.4, and mixed_bfloat16 / mixed_float16 (float32 outputs, a training
    step). Saving and loading: test_model_saved_under_tensorflow_loads_under."""
    result = run_under(backend, f'''
        import contextlib, io, json, pytest
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = pytest.main(['-q', '-p', 'no:cacheprovider', 'tests/test_keras_model.py', '-k', {MODEL_TESTS!r}])
        print('RESULT ' + json.dumps(dict(rc=int(rc), out=out.getvalue()[-4000:])))
    ''')
    assert result['rc'] == 0, result['out']
    assert '3 passed' in result['out'] and 'failed' not in result['out'] and 'skipped' not in result['out'], result['out']


TRAIN_SCRIPT = '''
    import glob, json, os, sys
    import parameter, batch_feature_extraction, seld, predict, keras_model, checkpointing
    overrides = json.loads(sys.argv[1])
    params = parameter.get_params('999', overrides)
    batch_feature_extraction.extract(params, progress=False)
    seld.train(params, 'backend')
    seld.train(parameter.get_params('999', dict(overrides, nb_epochs=3, patience=5)), 'backend')  # resume
    run_dir = seld.run_dir_for(params, 'backend')
    run = predict.load_run(run_dir)
    wav = sorted(glob.glob(os.path.join(overrides['dataset_dir'], 'wav_*', 'test_*.wav')))[0]
    result = predict.predict_file(run, wav)
    last = keras_model.load_model(os.path.join(run_dir, 'checkpoint', 'last.keras'))
    print('RESULT ' + json.dumps(dict(
        rows=checkpointing.read_metrics_csv(os.path.join(run_dir, 'metrics.csv')),
        versions=json.load(open(os.path.join(run_dir, 'params.json')))['versions'],
        sed_shape=list(result['sed_prob'].shape), nb_frames=int(result['nb_frames']),
        optimizer_steps=int(keras_model.keras.ops.convert_to_numpy(last.optimizer.iterations)), logs=os.path.isdir(os.path.join(run_dir, 'logs')))))
'''


@pytest.fixture(scope='module')
def tiny_dataset(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('backends')
    tut_fixture.make_dataset(str(tmp / 'ds'), nb_train=3, nb_test=2, clip_len_s=2.0)
    return tmp


@pytest.mark.slow
@pytest.mark.parametrize('backend', BACKENDS)
def test_seld_trains_resumes_and_predicts_under(backend, tiny_dataset):
    """seld.py trains 2 epochs, resumes for a third, saves; predict.py loads the run and predicts a wav; all without
    TensorFlow (TensorBoard and tf.distribute are kept off these backends)."""
    tmp = tiny_dataset
    overrides = dict(dataset_dir=str(tmp / 'ds'), feat_label_dir=str(tmp / f'feat_{backend}'),
                     model_dir=str(tmp / f'runs_{backend}'), **TINY)
    r = run_under(backend, TRAIN_SCRIPT, json.dumps(overrides))
    assert [row['epoch'] for row in r['rows']] == [1, 2, 3]
    assert all(np.isfinite(row['loss']) and np.isfinite(row['val/seld2018/seld_score']) for row in r['rows'])
    assert r['rows'][2]['loss'] < r['rows'][0]['loss']  # it learns
    assert r['optimizer_steps'] == 3 * 2  # the resumed run kept the optimizer state (2 batches per epoch)
    assert r['versions']['backend'] == backend and backend in r['versions']
    assert r['sed_shape'] == [r['nb_frames'], 11] and r['nb_frames'] == 343  # ceil((2 s * 44100 - 512) / 256)
    assert not r['logs']  # TensorBoard logs are TensorFlow's


CROSS_SCRIPT = '''
    import json, sys
    import keras, numpy as np
    import keras_model
    folder = sys.argv[1]
    x = np.load(folder + '/x.npy')
    out = {}
    # written under TensorFlow: the model as saved (plain Keras loads it), and the same file as a model trained
    # under a tf.distribute strategy would be (synchronized BatchNorm, which only keras_model.load_model loads here)
    plain = keras.saving.load_model(folder + '/tf.keras', safe_mode=True)
    out['plain'] = plain.predict(x, verbose=0)['doa_out'].tolist()
    synced = keras_model.load_model(folder + '/tf_synced.keras')
    out['synced'] = synced.predict(x, verbose=0)['doa_out'].tolist()
    # one training step here, then saved for TensorFlow to load
    y = {'sed_out': np.ones((2, 8, 2), np.float32), 'doa_out': np.zeros((2, 8, 6), np.float32)}
    plain.train_on_batch(x, y)
    keras_model.save_model(plain, folder + '/other.keras')
    out['other'] = plain.predict(x, verbose=0)['doa_out'].tolist()
    print('RESULT ' + json.dumps(out))
'''


@pytest.mark.slow
@pytest.mark.parametrize('backend', BACKENDS)
def test_model_saved_under_tensorflow_loads_under(backend, tmp_path):
    """A model saved here (TensorFlow) predicts the same under the other backend, and one trained and saved there
    predicts the same here; both with plain ``keras.saving.load_model`` in safe mode (a model trained under a
    tf.distribute strategy, with synchronized BatchNorm, through keras_model.load_model)."""
    import keras
    if keras.backend.backend() != 'tensorflow':
        pytest.skip('the suite runs this from TensorFlow')
    need(backend)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 8, 16, 2)).astype(np.float32)
    y = {'sed_out': (rng.random((2, 8, 2)) > 0.5).astype(np.float32), 'doa_out': rng.uniform(-1, 1, (2, 8, 6))}
    np.save(tmp_path / 'x.npy', x)
    model = keras_model.get_model(nb_frames=8, nb_bins=16, nb_channels=1, nb_classes=2, nb_cnn2d_filt=4,
                                  pool_size=[2], rnn_size=[3], fnn_size=[3])
    model.train_on_batch(x, y)  # moving statistics and optimizer state away from their initial values
    keras_model.save_model(model, str(tmp_path / 'tf.keras'))
    for layer in model.layers:  # what seld.py builds under tf.distribute; the same weights
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True
    keras_model.save_model(model, str(tmp_path / 'tf_synced.keras'))
    want = model.predict(x, verbose=0)['doa_out']
    r = run_under(backend, CROSS_SCRIPT, str(tmp_path))
    np.testing.assert_allclose(r['plain'], want, atol=1e-5)
    np.testing.assert_allclose(r['synced'], want, atol=1e-5)
    back = keras.saving.load_model(str(tmp_path / 'other.keras'), safe_mode=True)
    np.testing.assert_allclose(back.predict(x, verbose=0)['doa_out'], r['other'], atol=1e-5)
    assert not np.allclose(r['other'], r['plain'], atol=1e-5)  # the other backend's training step changed it


DATAPARALLEL_SCRIPT = '''
    import json, sys
    import jax, keras, numpy as np
    import keras_model, parameter, seld
    assert len(jax.devices()) == 2, jax.devices()
    kw = dict(nb_frames=8, nb_bins=16, nb_channels=1, nb_classes=2, nb_cnn2d_filt=4, pool_size=[2], rnn_size=[3],
              fnn_size=[3], compile=False)

    def sgd(model):  # plain SGD: updates linear in the gradients (Adam's first steps amplify rounding to +-lr)
        keras_model.compile_model(model, optimizer=keras.optimizers.SGD(0.1))
        return model

    rng = np.random.default_rng(0)
    # the two halves of every batch differ: per-device BatchNorm statistics would differ from the batch's
    x = np.concatenate([rng.standard_normal((8, 8, 16, 2)), 3 + 2 * rng.standard_normal((8, 8, 16, 2))]).astype(np.float32)
    x = x[np.r_[0:4, 8:12, 4:8, 12:16]]  # batches of 4: two of the first kind, then two of the second
    y = {'sed_out': (rng.random((16, 8, 2)) > 0.5).astype(np.float32), 'doa_out': rng.uniform(-1, 1, (16, 8, 6))}
    keras.utils.set_random_seed(1)
    single = sgd(keras_model.get_model(**kw))
    init = single.get_weights()
    single.fit(x, y, batch_size=4, shuffle=False, epochs=1, verbose=0)
    with seld.distribution('dataparallel', batch_size=4) as nb:
        parallel = sgd(keras_model.get_model(**kw))
        parallel.set_weights(init)
        parallel.fit(x, y, batch_size=4, shuffle=False, epochs=1, verbose=0)
        devices = len(parallel.get_layer('conv1').kernel.value.sharding.device_set)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(parallel.get_weights(), single.get_weights()))
    moved = max(float(np.abs(a - b).max()) for a, b in zip(single.get_weights(), init))
    errors = []
    for name, batch in (('dataparallel', 3), ('mirrored', 4)):
        try:
            with seld.distribution(name, batch_size=batch):
                pass
        except seld.SELDError as err:
            errors.append(str(err))
    params = parameter.get_params('999', dict(json.loads(sys.argv[1]), distribute='dataparallel', nb_epochs=1))
    seld.train(params, 'dataparallel')
    print('RESULT ' + json.dumps(dict(replicas=nb, devices=devices, diff=diff, moved=moved, errors=errors)))
'''


@pytest.mark.slow
def test_jax_dataparallel_on_two_cpu_devices(tiny_dataset):
    """distribute=dataparallel: keras.distribution.DataParallel over 2 CPU devices trains as one device (JAX
    computes BatchNorm's statistics over the whole sharded batch), and seld.py trains with it."""
    tmp = tiny_dataset
    overrides = dict(dataset_dir=str(tmp / 'ds'), feat_label_dir=str(tmp / 'feat_dp'), model_dir=str(tmp / 'runs_dp'),
                     **TINY)
    import batch_feature_extraction
    import parameter
    batch_feature_extraction.extract(parameter.get_params('999', overrides), progress=False)
    r = run_under('jax', DATAPARALLEL_SCRIPT, json.dumps(overrides),
                  env=dict(XLA_FLAGS='--xla_force_host_platform_device_count=2'))
    assert r['replicas'] == 2 and r['devices'] == 2  # the variables live on both devices
    assert r['errors'] == ['batch_size=3: must be a multiple of the 2 replicas of distribute=dataparallel',
                           'distribute=mirrored: a tf.distribute strategy needs KERAS_BACKEND=tensorflow (this is jax; '
                           'with JAX use distribute=dataparallel)']
    assert r['moved'] > 1e-2  # training moved the weights ...
    assert r['diff'] < 1e-5, r  # ... identically on one device and on two
    assert (tmp / 'runs_dp' / 'ansim_ov1_split1_dataparallel' / 'model.keras').exists()


def test_distribute_errors_name_the_backend():
    import keras

    import seld
    from utils import SELDError
    if keras.backend.backend() != 'tensorflow':
        pytest.skip('TensorFlow process')
    with pytest.raises(SELDError, match='distribute=dataparallel: keras.distribution needs KERAS_BACKEND=jax'):
        with seld.distribution('dataparallel', batch_size=4):
            pass


@pytest.mark.slow
def test_gpu_benchmark_quick_under_jax(tmp_path):
    """benchmarks/bench_gpu.py --quick (tiny sizes, the same path as on a GPU) under JAX without TensorFlow: every
    row of the table, the PyTorch-native rows where PyTorch is installed, and the end-to-end run."""
    out = tmp_path / 'bench.json'
    run_under('jax', f'''
        import runpy, sys
        sys.argv = ['bench_gpu.py', '--quick', '--json', {str(out)!r}, '--work', {str(tmp_path / 'work')!r}]
        runpy.run_path('benchmarks/bench_gpu.py', run_name='__main__')
        print('RESULT {{}}')
    ''')
    r = json.loads(out.read_text())
    names = [row['name'] for row in r['rows']]
    assert names[:3] == ['Keras (jax) SELDnet, float32', 'Keras (jax) SELDnet, mixed_bfloat16',
                         'Keras (jax) SELDnet, float32, gru_type=original (no cuDNN)']
    assert len(names) == (5 if importlib.util.find_spec('torch') else 3)
    for row in r['rows']:
        assert len(row['times']) == 3 and all(t > 0 for t in row['times']) and row['step_s'] > 0
    # quick sizes by hand: 8 maps; 3 x [conv 3x3 of 8 filters + bias, BatchNorm 4 x 8]; 32 bins / (4*4*2) = 1 bin x 8
    # filters into one bidirectional GRU of 16 (kernel 8 x 48, recurrent 16 x 48, 2 biases of 48, 2 directions);
    # dense 16 and outputs 33 (DOA) and 11 (SED)
    hand = 3 * (3 * 3 * 8 * 8 + 8 + 4 * 8) + 2 * (8 * 48 + 16 * 48 + 2 * 48) + 2 * (16 * 16 + 16) + 16 * 33 + 33 \
        + 16 * 11 + 11
    assert r['rows'][0]['params'] == hand and all(row['params'] == hand for row in r['rows'][3:])  # torch: the same
    assert len(r['e2e']['epoch_s']) == 3 and np.isfinite(r['e2e']['seld_score'])
    assert not r['tensorflow_imported']
    assert not (tmp_path / 'work').exists()  # removed without --keep

"""Scale-out: training with tf.distribute.MirroredStrategy on two logical CPU devices (synchronized BatchNorm: the
same weights as one device), and feature extraction split into shards (2 shards' stats, then 2 shards' features give
the same bytes as one run). JAX's keras.distribution.DataParallel: tests/test_backends.py."""
from __future__ import annotations

import filecmp
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import batch_feature_extraction
import parameter
from cls_feature_class import FeatureClass
from utils import SELDError

import tut_fixture

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(sequence_length=64, batch_size=4, nb_cnn2d_filt=8, rnn_size=[16], fnn_size=[16])

# Logical devices must be configured before TensorFlow initializes its devices: a fresh interpreter.
MIRRORED_SCRIPT = textwrap.dedent('''
    import json, os, sys
    os.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'
    import tensorflow as tf
    cpu = tf.config.list_physical_devices('CPU')[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import parameter, seld, checkpointing
    overrides = json.loads(sys.argv[1])
    out = {}
    for distribute in ('mirrored', 'none'):
        params = parameter.get_params('999', dict(overrides, distribute=distribute))
        if distribute == 'mirrored':
            print('num_replicas_in_sync ==', seld.get_strategy('mirrored').num_replicas_in_sync, flush=True)
        seld.train(params, distribute)
        out[distribute] = checkpointing.read_metrics_csv(os.path.join(seld.run_dir_for(params, distribute), 'metrics.csv'))
    print("RESULT " + json.dumps(out))
''')


SYNC_BN_SCRIPT = textwrap.dedent('''
    import json, os
    os.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'
    import tensorflow as tf
    cpu = tf.config.list_physical_devices('CPU')[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    import keras_model
    kw = dict(nb_frames=8, nb_bins=16, nb_channels=1, nb_classes=2, nb_cnn2d_filt=4, pool_size=[2], rnn_size=[3],
              fnn_size=[3], compile=False)
    rng = np.random.default_rng(0)
    # each batch of 4 holds 2 sequences of one kind and 2 of another: each replica gets one kind
    a, b = rng.standard_normal((6, 8, 16, 2)), 3 + 2 * rng.standard_normal((6, 8, 16, 2))
    x = np.concatenate([np.concatenate([a[i:i + 2], b[i:i + 2]]) for i in (0, 2, 4)]).astype(np.float32)
    y = {'sed_out': (rng.random((12, 8, 2)) > 0.5).astype(np.float32), 'doa_out': rng.uniform(-1, 1, (12, 8, 6))}

    def train(model):  # plain SGD (updates linear in the gradients), 3 steps in order
        keras_model.compile_model(model, optimizer=keras.optimizers.SGD(0.1))
        model.set_weights(init)
        model.fit(x, y, batch_size=4, shuffle=False, epochs=1, verbose=0)
        return model.get_weights()

    keras.utils.set_random_seed(1)
    init = keras_model.get_model(**kw).get_weights()
    one = train(keras_model.get_model(**kw))
    out = dict(moved=max(float(np.abs(w - v).max()) for w, v in zip(one, init)))
    strategy = tf.distribute.MirroredStrategy()
    out['replicas'] = strategy.num_replicas_in_sync
    for sync in (True, False):
        with strategy.scope():
            two = train(keras_model.get_model(sync_batchnorm=sync, **kw))
        out[f'diff_sync_{sync}'] = max(float(np.abs(w - v).max()) for w, v in zip(two, one))
    print('RESULT ' + json.dumps(out))
''')


@pytest.mark.slow
def test_synchronized_batchnorm_two_replicas_train_like_one_device():
    """Under MirroredStrategy on 2 devices, BatchNormalization(synchronized=True) (what seld.py builds for
    distribute=mirrored|multiworker) normalizes with the statistics of the whole batch: 3 training steps give the
    weights and moving statistics of one device. Unsynchronized, each replica normalizes its half: they differ."""
    proc = subprocess.run([sys.executable, '-c', SYNC_BN_SCRIPT], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = json.loads(proc.stdout.split('RESULT ', 1)[1])
    assert r['replicas'] == 2
    assert r['moved'] > 1e-2  # training moved the weights
    assert r['diff_sync_True'] < 1e-5, r  # synchronized: as one device
    assert r['diff_sync_False'] > 1e-3, r  # per-replica statistics: the test can tell


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('dist')
    tut_fixture.make_dataset(str(tmp / 'ds'), nb_train=3, nb_test=2, clip_len_s=2.0)
    return tmp


def overrides(tmp, feat='feat') -> dict:
    return dict(dataset_dir=str(tmp / 'ds'), feat_label_dir=str(tmp / feat), model_dir=str(tmp / 'runs'), **TINY)


@pytest.mark.slow
def test_mirrored_on_two_logical_cpus_trains_like_one_device(tiny):
    batch_feature_extraction.extract(parameter.get_params('999', overrides(tiny)), progress=False)
    proc = subprocess.run([sys.executable, '-c', MIRRORED_SCRIPT, json.dumps(overrides(tiny))], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'num_replicas_in_sync == 2' in proc.stdout
    assert 'distribute=mirrored: 2 replicas' in proc.stdout  # seld.py's own report of the strategy
    result = json.loads(proc.stdout.split('RESULT ', 1)[1])
    run = tiny / 'runs' / 'ansim_ov1_split1_mirrored'
    assert (run / 'model.keras').exists() and (run / 'results.json').exists()
    mirrored, single = result['mirrored'], result['none']
    assert [r['epoch'] for r in mirrored] == [1, 2]
    for key in ('loss', 'val/loss'):
        assert all(np.isfinite(r[key]) for r in mirrored), key
    # Same seed and data as the single-device run, and BatchNorm is synchronized (the test above shows that this
    # trains like one device): with the generator's sample weights (loss = mean over the real frames of the whole
    # batch, also when one replica's share is all padding) and val/loss computed outside the strategy's loss scaling,
    # both runs give the same losses up to float rounding. (Two optimizer steps per epoch show no learning trend:
    # the epochs train on different sequences.)
    for key in ('loss', 'val/loss'):
        assert [r[key] for r in mirrored] == pytest.approx([r[key] for r in single], rel=1e-3), key

def test_two_shards_stats_then_features_equal_one_run(tiny):
    one = parameter.get_params('999', overrides(tiny, 'feat_one'))
    batch_feature_extraction.extract(one, progress=False)
    shard = {}
    for k in (0, 1):
        shard[k] = parameter.get_params('999', dict(overrides(tiny, 'feat_shards'), nb_shards=2, shard_index=k))
        fc = batch_feature_extraction.extract(shard[k], progress=False)  # stage=all on a shard: stats only
        assert not os.path.exists(fc.scaler_file) and not os.path.isdir(fc.feat_dir_norm)
    for k in (0, 1):
        fc = batch_feature_extraction.extract(dict(shard[k], stage='features'), progress=False)
        if k == 0:  # the first shard fits the scaler; the second finds the same one and keeps its file
            scaler_mtime = os.path.getmtime(fc.scaler_file)
            assert len(os.listdir(fc.feat_dir_norm)) == len(fc.recordings()[0::2])
    assert os.path.getmtime(fc.scaler_file) == scaler_mtime
    a, b = FeatureClass(one), FeatureClass(parameter.get_params('999', overrides(tiny, 'feat_shards')))
    stems = [r.stem for r in a.recordings()]
    assert all(b.is_extracted(r) for r in b.recordings())
    for sub, ext in (('feat_norm', '.npy'), ('label', '.npy'), ('info', '.json')):
        names = sorted(os.listdir(os.path.join(a.feat_label_dir, sub)))
        assert names == sorted(os.listdir(os.path.join(b.feat_label_dir, sub))) == sorted(s + ext for s in stems)
        match, mismatch, errors = filecmp.cmpfiles(os.path.join(a.feat_label_dir, sub),
                                                   os.path.join(b.feat_label_dir, sub), names, shallow=False)
        assert not mismatch and not errors, (sub, mismatch, errors)
    with np.load(a.scaler_file) as za, np.load(b.scaler_file) as zb:
        assert all(np.array_equal(za[k], zb[k]) for k in ('mean', 'scale', 'n_samples'))


def test_features_before_every_shard_is_done_is_an_error(tiny):
    shard = parameter.get_params('999', dict(overrides(tiny, 'feat_half'), nb_shards=2, shard_index=1))
    batch_feature_extraction.extract(shard, progress=False)
    with pytest.raises(SELDError, match='without labels/statistics yet'):
        batch_feature_extraction.extract(dict(shard, stage='features'), progress=False)
    with pytest.raises(SELDError, match='made with other feature parameters; run stage=stats'):
        batch_feature_extraction.extract(dict(shard, stage='features', channels=[3, 2, 1, 0]), progress=False)
    with pytest.raises(SELDError, match='extraction.json: missing; run stage=stats'):
        batch_feature_extraction.extract(parameter.get_params('999', dict(overrides(tiny, 'feat_none'),
                                                                          stage='features')), progress=False)
    with pytest.raises(SELDError, match='stage=.normalize.: must be one of all, stats, features'):
        batch_feature_extraction.extract(dict(shard, stage='normalize'), progress=False)
    with pytest.raises(SELDError, match='shard_index=2'):
        batch_feature_extraction.extract(dict(shard, shard_index=2), progress=False)

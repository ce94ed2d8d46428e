"""keras_model.py: parameter counts of both GRU types computed by hand from the layer shapes, the original GRU
against a numpy Keras 2.2.4 GRU, the cuDNN-eligible configuration, mixed precision, and plain-Keras loading.

Backend-neutral (keras.ops and numpy only): tests/test_backends.py runs parts of it under JAX and PyTorch.
"""
from __future__ import annotations

import os
import subprocess
import sys

import keras
from keras import layers
import numpy as np
import pytest

import keras_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def seldnet_parameters(*, nb_channels: int, nb_classes: int, nb_bins: int = 256, filters: int = 64,
                       pool_size=(8, 8, 2), rnn_size=(128, 128), fnn_size=(128,), reset_after: bool = True,
                       doa_per_class: int = 3) -> dict[str, int]:
    """Parameters per layer of SELDnet from the layer shapes (the paper's architecture, written out by hand)."""
    out, cin = {}, 2 * nb_channels
    for i, _ in enumerate(pool_size):
        out[f'conv{i + 1}'] = 3 * 3 * cin * filters + filters  # 3x3 kernel + bias
        out[f'bn{i + 1}'] = 4 * filters  # gamma, beta, moving mean, moving variance
        cin = filters
    feat = nb_bins // int(np.prod(pool_size)) * filters
    for i, u in enumerate(rnn_size):
        # per direction: kernel (in, 3u) for the z, r, h gates, recurrent kernel (u, 3u), and a bias of 3u -
        # doubled (input and recurrent bias) with reset_after=True; two directions
        out[f'bigru{i + 1}'] = 2 * (feat * 3 * u + u * 3 * u + (2 if reset_after else 1) * 3 * u)
        feat = u
    for name, nb_out in (('doa', doa_per_class * nb_classes), ('sed', nb_classes)):
        d = feat
        for j, u in enumerate(fnn_size):
            out[f'{name}_fc{j + 1}'] = d * u + u
            d = u
        out[f'{name}_fc_out'] = d * nb_out + nb_out
    return out


def per_layer_counts(model: keras.Model) -> dict[str, int]:
    return {layer.name: layer.count_params() for layer in model.layers if layer.count_params()}


@pytest.mark.parametrize('gru_type, total', [('cudnn', 514_284), ('original', 512_748)])
def test_parameter_counts_by_hand(gru_type, total):
    """4 channels (8 maps), 11 classes, x, y, z, the default sizes: 514,284 parameters with Keras 3's GRU,
    512,748 with the paper code's (one bias per gate instead of two: 4 directions x 3 gates x 128 = 1,536 fewer)."""
    hand = seldnet_parameters(nb_channels=4, nb_classes=11, reset_after=gru_type == 'cudnn')
    assert sum(hand.values()) == total
    model = keras_model.get_model(nb_frames=512, nb_bins=256, nb_channels=4, nb_classes=11, gru_type=gru_type,
                                  compile=False)
    assert per_layer_counts(model) == hand
    assert model.count_params() == total
    azi = seldnet_parameters(nb_channels=8, nb_classes=11, reset_after=gru_type == 'cudnn', doa_per_class=2)
    m2 = keras_model.get_model(nb_frames=None, nb_bins=256, nb_channels=8, nb_classes=11, azi_only=True,
                               gru_type=gru_type, compile=False)
    assert per_layer_counts(m2) == azi


def test_model_outputs_and_shapes():
    m = keras_model.get_model(nb_frames=None, nb_bins=16, nb_channels=2, nb_classes=3, nb_cnn2d_filt=4,
                              pool_size=[2, 2], rnn_size=[4, 3], fnn_size=[4], compile=False)
    assert set(m.output_names) == {'sed_out', 'doa_out'} and m.input_shape == (None, None, 16, 4)
    out = m(np.random.default_rng(0).standard_normal((2, 9, 16, 4)).astype(np.float32))
    assert tuple(out['sed_out'].shape) == (2, 9, 3) and tuple(out['doa_out'].shape) == (2, 9, 9)
    sed, doa = keras.ops.convert_to_numpy(out['sed_out']), keras.ops.convert_to_numpy(out['doa_out'])
    assert ((sed > 0) & (sed < 1)).all() and (np.abs(doa) < 1).all()  # sigmoid and tanh
    with pytest.raises(ValueError, match='pool_size=.*must divide nb_bins=16'):
        keras_model.get_model(nb_frames=8, nb_bins=16, nb_channels=1, nb_classes=1, pool_size=[3])
    with pytest.raises(ValueError, match="gru_type='lstm': must be one of cudnn, original"):
        keras_model.get_model(nb_frames=8, nb_bins=16, nb_channels=1, nb_classes=1, pool_size=[2], gru_type='lstm')


def test_default_gru_is_cudnn_eligible_and_the_original_is_keras_224s():
    """cuDNN runs a GRU only with tanh, sigmoid gates, reset_after=True, no recurrent dropout and no unrolling
    (Keras' backend.cudnn_ok plus the recurrent_dropout check in GRU.inner_loop)."""
    kw = dict(nb_frames=8, nb_bins=16, nb_channels=1, nb_classes=2, nb_cnn2d_filt=4, pool_size=[2], rnn_size=[3],
              fnn_size=[3], dropout_rate=0.25, compile=False)
    for gru_type, want in (('cudnn', dict(activation='tanh', recurrent_activation='sigmoid', reset_after=True,
                                          recurrent_dropout=0.0, dropout=0.25, unroll=False, use_bias=True)),
                           ('original', dict(activation='tanh', recurrent_activation='hard_sigmoid',
                                             reset_after=False, recurrent_dropout=0.25, dropout=0.25))):
        layer = keras_model.get_model(gru_type=gru_type, **kw).get_layer('bigru1')
        assert isinstance(layer, keras.layers.Bidirectional) and layer.merge_mode == 'mul'
        for gru in (layer.forward_layer, layer.backward_layer):
            assert type(gru) is keras.layers.GRU and gru.use_cudnn == 'auto'
            config = gru.get_config()
            assert {k: config[k] for k in want} == want


def keras224_bigru(x: np.ndarray, weights: list[np.ndarray]) -> np.ndarray:
    """Bidirectional(GRU(reset_after=False), merge_mode='mul') as Keras 2.2.4 computes it (numpy, float64):
    z = hs(x W_z + h U_z + b_z), r = hs(x W_r + h U_r + b_r), hh = tanh(x W_h + (r h) U_h + b_h),
    h = z h + (1 - z) hh, with Keras 2.2.4's hard sigmoid hs(a) = clip(0.2 a + 0.5, 0, 1)."""
    def hs(a):
        return np.clip(0.2 * a + 0.5, 0.0, 1.0)

    def run(seq, w, u, b):
        n = u.shape[0]
        h, out = np.zeros((seq.shape[0], n)), []
        for t in range(seq.shape[1]):
            xt = seq[:, t] @ w + b
            z = hs(xt[:, :n] + h @ u[:, :n])
            r = hs(xt[:, n:2 * n] + h @ u[:, n:2 * n])
            hh = np.tanh(xt[:, 2 * n:] + (r * h) @ u[:, 2 * n:])
            h = z * h + (1 - z) * hh
            out.append(h)
        return np.stack(out, 1)

    x = x.astype(np.float64)
    forward = run(x, *weights[:3])
    backward = run(x[:, ::-1], *weights[3:])[:, ::-1]  # Keras reverses the backward outputs back to time order
    return forward * backward


def test_original_gru_computes_keras_224s_gru():
    """hs_2(a) = hs_3(1.2 a): with the z and r columns of the Keras 2.2.4 kernel, recurrent kernel and bias times
    1.2, the 'original' layer (Keras 3's hard_sigmoid, slope 1/6) computes the Keras 2.2.4 layer (slope 0.2)
    exactly; without the conversion it does not."""
    units, nb_in = 5, 4
    inp = keras.Input((7, nb_in))
    layer = keras.layers.Bidirectional(keras_model._gru(units, 0.0, 'original'), merge_mode='mul')
    model = keras.Model(inp, layer(inp))
    rng = np.random.default_rng(3)
    k2 = [rng.standard_normal(w.shape) * 1.5 for w in layer.get_weights()]  # large: the clip is reached
    assert [w.shape for w in k2] == [(nb_in, 3 * units), (units, 3 * units), (3 * units,)] * 2
    x = rng.standard_normal((3, 7, nb_in)).astype(np.float32)
    ref = keras224_bigru(x, k2)
    zr = np.r_[np.full(2 * units, 1.2), np.ones(units)]  # the z and r columns; h is unchanged
    layer.set_weights([(w * zr).astype(np.float32) for w in k2])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), ref, atol=2e-5, rtol=0)
    layer.set_weights([w.astype(np.float32) for w in k2])  # unconverted: Keras 3's slope 1/6 differs
    assert np.abs(keras.ops.convert_to_numpy(model(x)) - ref).max() > 1e-2


@pytest.mark.slow
@pytest.mark.parametrize('policy', ['mixed_bfloat16', 'mixed_float16'])
def test_mixed_precision_outputs_float32_and_trains(policy):
    kw = dict(nb_frames=8, nb_bins=16, nb_channels=1, nb_classes=2, nb_cnn2d_filt=4, pool_size=[2], rnn_size=[3],
              fnn_size=[3])
    model = keras_model.get_model(mixed_precision=policy, **kw)
    assert keras.config.dtype_policy().name == 'float32'  # restored after the build
    assert model.get_layer('conv1').compute_dtype == policy.split('_')[1]
    assert model.get_layer('conv1').kernel.dtype == 'float32' and model.get_layer('bigru1').compute_dtype != 'float32'
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 8, 16, 2)).astype(np.float32)
    y = {'sed_out': (rng.random((2, 8, 2)) > 0.5).astype(np.float32), 'doa_out': rng.uniform(-1, 1, (2, 8, 6))}
    out = model.predict(x, verbose=0)
    assert out['sed_out'].dtype == np.float32 and out['doa_out'].dtype == np.float32
    before = [w.copy() for w in model.get_weights()]
    logs = model.train_on_batch(x, y, return_dict=True)
    assert np.isfinite(logs['loss'])
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # the step updated weights
    if policy == 'mixed_float16':  # compile added loss scaling
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)


@pytest.mark.slow
def test_save_load_safe_mode_round_trip_and_plain_keras(tmp_path):
    """keras_model.load_model and a plain Python with only Keras (no project code on the path) load the file in
    safe mode and predict the same."""
    m = keras_model.get_model(nb_frames=8, nb_bins=16, nb_channels=4, nb_classes=3, nb_cnn2d_filt=4,
                              pool_size=[2, 2], rnn_size=[4], fnn_size=[4], gru_type='original')
    path = str(tmp_path / 'm.keras')
    keras_model.save_model(m, path)
    assert os.listdir(tmp_path) == ['m.keras']  # no temporary file left
    x = np.random.default_rng(0).standard_normal((2, 8, 16, 8)).astype(np.float32)
    np.save(tmp_path / 'x.npy', x)
    want = m.predict(x, verbose=0)['doa_out']
    np.testing.assert_allclose(keras_model.load_model(path).predict(x, verbose=0)['doa_out'], want, atol=1e-6)
    code = ('import keras, numpy as np; m = keras.saving.load_model("m.keras", safe_mode=True); '
            'np.save("y.npy", m.predict(np.load("x.npy"), verbose=0)["doa_out"])')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    r = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / 'y.npy'), want, atol=1e-6)
    with pytest.raises(ValueError, match='model file not found'):
        keras_model.load_model(str(tmp_path / 'none.keras'))
    (tmp_path / 'bad.keras').write_bytes(b'not a zip')
    with pytest.raises(ValueError, match='bad.keras: cannot load the model'):
        keras_model.load_model(str(tmp_path / 'bad.keras'))


@pytest.mark.slow
def test_cosine_learning_rate_by_hand_and_saved_with_its_step(tmp_path):
    """lr_schedule='cosine': 0 -> peak linearly over the warm-up, then peak * (1 + cos(pi * t)) / 2 with t the share
    of the decay steps done, 0 at the last step; the schedule and its step survive a save and a safe-mode load."""
    peak, total, warm = 2e-3, 20, 4
    sched = keras_model.learning_rate('cosine', peak=peak, total_steps=total, warmup_steps=warm)

    def by_hand(step):
        if step < warm:
            return peak * step / warm
        return peak * (1 + np.cos(np.pi * (step - warm) / (total - warm))) / 2

    for step in (0, 1, 3, 4, 8, 12, 19, 20):
        np.testing.assert_allclose(float(keras.ops.convert_to_numpy(sched(step))), by_hand(step), rtol=1e-5,
                                   atol=1e-12)
    assert keras_model.learning_rate('constant', peak=peak, total_steps=total) == peak
    with pytest.raises(ValueError, match="lr_schedule='step': must be one of constant, cosine"):
        keras_model.learning_rate('step', peak=peak)
    with pytest.raises(ValueError, match='warmup_steps=20: must be at least 0 and less than total_steps=20'):
        keras_model.learning_rate('cosine', peak=peak, total_steps=total, warmup_steps=20)

    m = keras_model.get_model(nb_frames=8, nb_bins=16, nb_channels=4, nb_classes=3, nb_cnn2d_filt=4,
                              pool_size=[2, 2], rnn_size=[4], fnn_size=[4], learning_rate=sched)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 8, 16, 8)).astype(np.float32)
    y = {'sed_out': (rng.random((2, 8, 3)) > 0.5).astype(np.float32),
         'doa_out': rng.uniform(-1, 1, (2, 8, 9)).astype(np.float32)}
    m.fit(x, y, batch_size=2, epochs=6, verbose=0)  # 6 steps
    path = str(tmp_path / 'm.keras')
    keras_model.save_model(m, path)
    loaded = keras_model.load_model(path)
    assert int(keras.ops.convert_to_numpy(loaded.optimizer.iterations)) == 6
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(loaded.optimizer.learning_rate)), by_hand(6),
                               rtol=1e-5)


# ---- cpu_kernels.py -----------------------------------------------------------------------------
@pytest.mark.skipif(keras.backend.backend() != 'tensorflow', reason='a TensorFlow kernel')
def test_fused_batchnorm_trains_as_the_stock_layer_and_saves_a_stock_layer(tmp_path):
    """cpu_kernels' training step (TensorFlow's fused kernel) against the stock Keras layer it patches: outputs,
    gradients w.r.t. input, gamma and beta, and the moving statistics after several steps (momentum 0.5, so that a
    wrong variance correction would show); inference stays Keras'; the saved model holds stock layers."""
    import tensorflow as tf

    import cpu_kernels

    rng = np.random.default_rng(8)
    x = tf.constant((rng.standard_normal((4, 6, 5, 3)) * 2 + 1).astype(np.float32))
    weight = tf.constant(rng.standard_normal(x.shape).astype(np.float32))  # a loss that varies per element
    stock, fused = layers.BatchNormalization(momentum=0.5), layers.BatchNormalization(momentum=0.5)
    init = [rng.uniform(0.5, 1.5, 3), rng.standard_normal(3), rng.standard_normal(3), rng.uniform(0.5, 2.0, 3)]
    for layer in (stock, fused):
        layer.build(x.shape)
        layer.set_weights([w.astype(np.float32) for w in init])
    holder = keras.Sequential([keras.Input(x.shape[1:]), fused])
    assert cpu_kernels.use_fused_batchnorm(holder, enable=True) == 1 and type(fused) is layers.BatchNormalization
    calls = []
    real = tf.compat.v1.nn.fused_batch_norm
    try:
        tf.compat.v1.nn.fused_batch_norm = lambda *a, **k: calls.append(1) or real(*a, **k)
        for _ in range(3):
            results = []
            for layer in (stock, fused):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    y = layer(x, training=True)
                    loss = tf.reduce_sum(y * weight)
                results.append([y.numpy()] + [g.numpy() for g in tape.gradient(loss, [x, layer.gamma, layer.beta])])
            for a, b in zip(*results):
                np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-5)
    finally:
        tf.compat.v1.nn.fused_batch_norm = real
    assert len(calls) == 3  # the patched layer ran the fused kernel in every training step
    for a, b in zip(fused.get_weights(), stock.get_weights()):  # gamma, beta, moving mean, moving variance
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=1e-6)
    assert not np.allclose(stock.moving_variance.numpy(), init[3])  # the statistics did move
    np.testing.assert_allclose(fused(x, training=False).numpy(), stock(x, training=False).numpy(), atol=1e-6)
    # the saved model is a plain Keras model whose BatchNormalization is the stock class
    path = str(tmp_path / 'bn.keras')
    holder.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded.layers[-1]) is layers.BatchNormalization and 'call' not in vars(loaded.layers[-1])
    assert cpu_kernels.use_fused_batchnorm(holder, enable=False) == 0 and 'call' not in vars(fused)  # undone


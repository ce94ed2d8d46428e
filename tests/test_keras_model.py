"""keras_model.FusedBidirectionalGRU against the stock Keras layer it replaces (the independent reference):
``Bidirectional(GRU(units, activation='tanh', dropout=..., recurrent_dropout=0, return_sequences=True),
merge_mode='mul')`` with the same weights. Forward outputs and the gradients w.r.t. the input and all six weights
must agree to float32 rounding. Tiny shapes: the whole file runs in a few seconds.
"""
from __future__ import annotations

import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

import keras_model

ATOL = 1e-5


def stock_and_fused(units: int, nb_in: int, dropout: float = 0.0, dtype=None):
    """The stock layer and the fused one, built for ``(batch, None, nb_in)``, with the same random weights (all
    nonzero, biases included) and the same dropout seed-generator states."""
    stock = layers.Bidirectional(layers.GRU(units, activation='tanh', dropout=dropout, recurrent_dropout=0.0,
                                            return_sequences=True, dtype=dtype), merge_mode='mul', dtype=dtype)
    fused = keras_model.FusedBidirectionalGRU(units, dropout=dropout, dtype=dtype)
    stock.build((None, None, nb_in))
    fused.build((None, None, nb_in))
    rng = np.random.default_rng(units + nb_in)
    weights = [0.5 * rng.standard_normal(w.shape).astype(np.float32) for w in stock.get_weights()]
    fused.set_weights(weights)
    stock.set_weights(weights)
    for s, f in ((stock.forward_layer, fused.forward_layer), (stock.backward_layer, fused.backward_layer)):
        f.cell.seed_generator.state.assign(s.cell.seed_generator.state.value)
    return stock, fused


def outputs_and_gradients(layer, x, training):
    """The layer's output and the gradients of a weighted sum of it w.r.t. [x, *trainable weights]."""
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=training)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) * tf.sin(tf.range(y.shape[-1], dtype=tf.float32) + 1.0))
    return y.numpy(), [g.numpy() for g in tape.gradient(loss, [x] + layer.trainable_weights)]


def assert_same(stock, fused, x, training, atol=ATOL):
    y0, g0 = outputs_and_gradients(stock, x, training)
    y1, g1 = outputs_and_gradients(fused, x, training)
    assert y1.shape == y0.shape and y1.dtype == y0.dtype
    np.testing.assert_allclose(y1, y0, atol=atol, rtol=0)
    assert len(g1) == len(g0) == 7
    for a, b in zip(g1, g0):
        np.testing.assert_allclose(a, b, atol=atol, rtol=0)


@pytest.mark.parametrize('training', [False, True])
@pytest.mark.parametrize('batch, nb_frames', [(3, 7), (1, 6), (2, 1)])
def test_same_outputs_and_gradients_as_stock_layer(batch, nb_frames, training):
    stock, fused = stock_and_fused(units=4, nb_in=5)
    x = np.random.default_rng(batch).standard_normal((batch, nb_frames, 5)).astype(np.float32)
    assert_same(stock, fused, x, training)


def test_xla_forward_loop_option_same_outputs_and_gradients(monkeypatch):
    """keras_model._GRU_FORWARD_XLA (off by default): the training forward loop compiled by XLA."""
    monkeypatch.setattr(keras_model, '_GRU_FORWARD_XLA', True)
    stock, fused = stock_and_fused(units=4, nb_in=5)
    x = np.random.default_rng(8).standard_normal((3, 7, 5)).astype(np.float32)
    assert_same(stock, fused, x, training=True)


def test_training_uses_the_hand_written_gradient(monkeypatch):
    """training=True differentiates through _fused_bigru's reverse loop (checked above against the stock layer);
    inference calls the plain loop (differentiated automatically by TensorFlow, also checked above)."""
    calls = []
    loop = keras_model._gru_backward_loop
    monkeypatch.setattr(keras_model, '_gru_backward_loop', lambda *a: calls.append(1) or loop(*a))
    stock, fused = stock_and_fused(units=4, nb_in=5)
    x = np.random.default_rng(2).standard_normal((2, 4, 5)).astype(np.float32)
    outputs_and_gradients(fused, x, training=False)
    assert not calls
    outputs_and_gradients(fused, x, training=True)
    assert calls == [1]


def test_same_weights_layout_and_count_as_stock_layer():
    stock, fused = stock_and_fused(units=4, nb_in=5)
    assert [w.shape for w in fused.get_weights()] == [(5, 12), (4, 12), (2, 12)] * 2
    def names(layer):  # 'forward_gru/gru_cell/kernel' (the stock layer's inner GRU has a numbered name)
        return [re.sub(r'_\d+/', '/', w.path.split('/', 1)[1]) for w in layer.weights]

    assert names(fused) == names(stock) == [f'{d}_gru/gru_cell/{w}' for d in ('forward', 'backward')
                                            for w in ('kernel', 'recurrent_kernel', 'bias')]
    assert fused.count_params() == stock.count_params()


def test_variable_length_functional_model_and_graph_mode():
    """Time axis None in a functional model (as predict.py uses it), run in a tf.function with its gradients."""
    stock, fused = stock_and_fused(units=3, nb_in=4)
    inp = keras.Input((None, 4))
    m_stock, m_fused = keras.Model(inp, stock(inp)), keras.Model(inp, fused(inp))
    assert m_fused.output_shape == (None, None, 3)

    @tf.function(reduce_retracing=True)
    def run(model, x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = model(x, training=True)
            loss = tf.reduce_sum(y * y)
        return y, tape.gradient(loss, [x] + model.trainable_weights)

    for nb_frames in (5, 11):
        x = tf.constant(np.random.default_rng(nb_frames).standard_normal((2, nb_frames, 4)).astype(np.float32))
        (y0, g0), (y1, g1) = run(m_stock, x), run(m_fused, x)
        np.testing.assert_allclose(y1.numpy(), y0.numpy(), atol=ATOL, rtol=0)
        for a, b in zip(g1, g0):
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=ATOL, rtol=0)
        np.testing.assert_allclose(m_fused.predict(x, verbose=0), y0.numpy(), atol=ATOL, rtol=0)


def test_dropout_masks_as_stock_layer():
    """Same seed-generator states -> the same masks as the Keras GRU (one per sequence and direction, a new one at
    every call), applied only in training."""
    stock, fused = stock_and_fused(units=4, nb_in=6, dropout=0.5)
    x = np.random.default_rng(7).standard_normal((3, 5, 6)).astype(np.float32)
    assert_same(stock, fused, x, training=True)
    assert_same(stock, fused, x, training=True)  # second call: new masks, still the same as the stock layer's
    assert_same(stock, fused, x, training=False)
    assert_same(stock, fused, x, training=True)  # the inference call advanced both seed generators alike
    y_train, y_infer = fused(x, training=True).numpy(), fused(x, training=False).numpy()
    assert np.abs(y_train - y_infer).max() > 1e-3  # dropout is active in training
    nodrop = keras_model.FusedBidirectionalGRU(4)
    nodrop.build((None, None, 6))
    nodrop.set_weights(fused.get_weights())
    np.testing.assert_allclose(nodrop(x, training=True).numpy(), y_infer, atol=1e-6, rtol=0)


def test_mixed_precision_compute_dtype():
    stock, fused = stock_and_fused(units=4, nb_in=5, dtype='mixed_float16')
    x = np.random.default_rng(3).standard_normal((2, 6, 5)).astype(np.float32)
    assert fused.compute_dtype == 'float16' and fused.forward_layer.cell.kernel.dtype == 'float32'
    assert_same(stock, fused, x, training=True, atol=2e-2)


def test_fallback_to_stock_computation(monkeypatch):
    """Other backends (and masks or initial states) use the parent Bidirectional's computation."""
    stock, fused = stock_and_fused(units=4, nb_in=5)
    x = np.random.default_rng(4).standard_normal((2, 6, 5)).astype(np.float32)
    fast = fused(x).numpy()
    monkeypatch.setattr(keras.backend, 'backend', lambda: 'jax')  # the parent's call still runs on TensorFlow
    np.testing.assert_allclose(fused(x).numpy(), fast, atol=ATOL, rtol=0)
    monkeypatch.undo()
    mask = np.ones((2, 6), bool)
    np.testing.assert_allclose(fused(x, mask=mask).numpy(), stock(x, mask=mask).numpy(), atol=ATOL, rtol=0)


def test_config_and_save_load_round_trip(tmp_path):
    inp = keras.Input((None, 5))
    layer = keras_model.FusedBidirectionalGRU(3, dropout=0.25, name='bigru1')
    model = keras.Model(inp, layers.Dense(2)(layer(inp)))
    assert layer.get_config()['units'] == 3 and layer.get_config()['dropout'] == 0.25
    path = str(tmp_path / 'm.keras')
    model.save(path)
    back = keras_model.load_model(path)  # safe_mode=True
    layer2 = back.get_layer('bigru1')
    assert type(layer2) is keras_model.FusedBidirectionalGRU and (layer2.units, layer2.dropout) == (3, 0.25)
    x = np.random.default_rng(5).standard_normal((2, 7, 5)).astype(np.float32)
    np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))


def test_seldnet_uses_the_fused_layer_with_stock_weights():
    """get_model's GRU layers are the fused ones; the stock-layer model's weights load into it unchanged and give
    the same output."""
    kw = dict(nb_frames=None, nb_bins=16, nb_channels=2, nb_classes=3, nb_cnn2d_filt=4, pool_size=[2, 2],
              rnn_size=[4, 3], fnn_size=[4], compile=False)
    model = keras_model.get_model(**kw)
    assert [type(model.get_layer(f'bigru{i}')).__name__ for i in (1, 2)] == ['FusedBidirectionalGRU'] * 2
    stock_cls = keras_model.FusedBidirectionalGRU
    try:  # the same model with the stock layers in place of the fused ones
        keras_model.FusedBidirectionalGRU = lambda units, dropout, name: layers.Bidirectional(
            layers.GRU(units, activation='tanh', dropout=dropout, return_sequences=True), merge_mode='mul', name=name)
        stock = keras_model.get_model(**kw)
    finally:
        keras_model.FusedBidirectionalGRU = stock_cls
    assert stock.count_params() == model.count_params()
    model.set_weights(stock.get_weights())
    x = np.random.default_rng(6).standard_normal((2, 9, 16, 4)).astype(np.float32)
    a, b = model(x, training=False), stock(x, training=False)
    for k in ('sed_out', 'doa_out'):
        np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), atol=ATOL, rtol=0)


def test_fused_batch_norm_trains_as_stock_layer():
    """keras_model.FusedBatchNormalization's training step (TensorFlow's fused kernel) against the stock Keras
    layer: outputs, gradients w.r.t. input, gamma and beta, and the moving statistics after several steps
    (momentum 0.5, so that a wrong variance correction would show); inference goes to the parent class."""
    rng = np.random.default_rng(8)
    x = tf.constant((rng.standard_normal((4, 6, 5, 3)) * 2 + 1).astype(np.float32))
    weight = tf.constant(rng.standard_normal(x.shape).astype(np.float32))  # a loss that varies per element
    stock, fused = layers.BatchNormalization(momentum=0.5), keras_model.FusedBatchNormalization(momentum=0.5)
    init = [rng.uniform(0.5, 1.5, 3), rng.standard_normal(3), rng.standard_normal(3), rng.uniform(0.5, 2.0, 3)]
    for layer in (stock, fused):
        layer.build(x.shape)
        layer.set_weights([w.astype(np.float32) for w in init])
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
    for a, b in zip(fused.get_weights(), stock.get_weights()):  # gamma, beta, moving mean, moving variance
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=1e-6)
    assert not np.allclose(stock.moving_variance.numpy(), init[3])  # the statistics did move
    np.testing.assert_allclose(fused(x, training=False).numpy(), stock(x, training=False).numpy(), atol=1e-6)

"""The SELDnet architecture (Adavanne et al., IEEE JSTSP 2019), Keras 3 Functional API, channels_last."""
from __future__ import annotations

import functools
import os
from typing import Sequence

import keras
from keras import layers

from utils import SELDError


@keras.saving.register_keras_serializable(package='seldnet')
class FusedBatchNormalization(layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` (axis -1) whose float32 training step on the TensorFlow backend is
    one fused kernel (``FusedBatchNormV3``, oneDNN on CPU) instead of Keras 3's separate mean, variance and
    normalization ops. Same weights, same function: the output is normalized with the batch mean and biased
    variance, the moving statistics are updated with the same momentum rule and the biased variance (the
    kernel's Bessel correction is undone). Inference, masks, other dtypes and other backends use the parent.
    Measured gain: benchmarks/bench_training.py.
    """

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable and mask is None and not self.renorm and self.scale and self.center
                and self.axis in (-1, len(inputs.shape) - 1) and keras.backend.backend() == 'tensorflow'
                and keras.backend.standardize_dtype(inputs.dtype) == 'float32' and len(inputs.shape) == 4
                and self.variable_dtype == 'float32'):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        y, mean, var = tf.compat.v1.nn.fused_batch_norm(inputs, self.gamma, self.beta, epsilon=self.epsilon,
                                                        is_training=True)[:3]
        n = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], var.dtype)
        var = var * ((n - 1.0) / tf.maximum(n, 2.0))  # FusedBatchNormV3 returns the unbiased variance
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + var * (1.0 - self.momentum))
        return y


def _gru_forward_loop(ps, us, bs, save_gates=False):
    """The recurrence of both directions of a bidirectional GRU in one ``tf.while_loop``.

    Parameters
    ----------
    ps : list of 2 tf.Tensor
        Forward and backward input projections ``x @ kernel + input_bias``, time-major ``(T, batch, 3*units)``,
        both in natural time order.
    us, bs : list of 2 tf.Tensor
        Recurrent kernels ``(units, 3*units)`` and recurrent biases ``(3*units,)``.
    save_gates : bool
        Also return the gate values that the gradient needs.

    Returns
    -------
    out : list of 2 lists of tf.Tensor
        Per direction, the states h ``(T, batch, units)`` in natural time order (the backward state at time t has
        read the inputs t..T-1), then with ``save_gates`` z, r, hh and m_h = h_prev @ U_h + b_h (same shape).

    Step t advances the forward state at time t and the backward state at time T-1-t: two independent chains of
    one small 2-D matmul and a few gate ops each, which TensorFlow runs in parallel. Arithmetic as the Keras GRU
    cell (reset_after=True, gate order z, r, h): hh = tanh(x_h + r * (h @ U_h + b_h)), h = z * h + (1 - z) * hh.
    """
    import tensorflow as tf

    nb_steps = tf.shape(ps[0])[0]
    units = us[0].shape[0]
    h0 = [tf.zeros(tf.stack([tf.shape(p)[1], units]), p.dtype) for p in ps]
    arrays = [[tf.TensorArray(p.dtype, size=nb_steps) for _ in range(5 if save_gates else 1)] for p in ps]

    def body(t, hs, arrays):
        new_h, new_arrays = [], []
        for d, (h, p, u, b) in enumerate(zip(hs, ps, us, bs)):
            i = t if d == 0 else nb_steps - 1 - t
            m_zr, m_h = tf.split(tf.nn.bias_add(tf.matmul(h, u), b), [2 * units, units], -1)
            x_zr, x_h = tf.split(tf.gather(p, i), [2 * units, units], -1)
            z, r = tf.split(tf.sigmoid(x_zr + m_zr), 2, -1)
            hh = tf.tanh(x_h + r * m_h)
            h = z * h + (1 - z) * hh
            new_h.append(h)
            new_arrays.append([a.write(i, v) for a, v in zip(arrays[d], (h, z, r, hh, m_h))])
        return t + 1, new_h, new_arrays

    _, _, arrays = tf.while_loop(lambda t, *_: t < nb_steps, body, (0, h0, arrays), maximum_iterations=nb_steps)
    return [[a.stack() for a in per_direction] for per_direction in arrays]


def _gru_backward_loop(dhs, coefs, us):
    """Backpropagation through time of ``_gru_forward_loop``: the sequential part only.

    ``dhs`` = gradients w.r.t. the forward and backward state sequences ``(T, batch, units)``; ``coefs`` =
    ``(T, batch, 4*units)`` per step [d z_pre, d r_pre, d m_h, z] / d h_t (``_fused_bigru``). Returns the total
    gradients g_t w.r.t. every state h_t ``(T, batch, units)``: for the forward direction
    g_t = dh_t + z_{t+1} * g_{t+1} + dm_{t+1} @ U^T with dm = g * coefs[:3*units], run from T-1 down (the backward
    direction's next step is t-1: it runs from 0 up).
    """
    import tensorflow as tf

    nb_steps = tf.shape(dhs[0])[0]
    units = us[0].shape[0]
    arrays = [tf.TensorArray(a.dtype, size=nb_steps) for a in dhs]

    def body(t, carries, arrays):
        new_carries, new_arrays = [], []
        for d, (carry, dh, c, u) in enumerate(zip(carries, dhs, coefs, us)):
            i = nb_steps - 1 - t if d == 0 else t
            g = carry + tf.gather(dh, i)
            dm, g_z = tf.split(tf.tile(g, [1, 4]) * tf.gather(c, i), [3 * units, units], -1)
            new_carries.append(g_z + tf.matmul(dm, u, transpose_b=True))  # the part of g_{t-1} from h_t
            new_arrays.append(arrays[d].write(i, g))
        return t + 1, new_carries, new_arrays

    _, _, arrays = tf.while_loop(lambda t, *_: t < nb_steps, body, (0, [tf.zeros_like(a[0]) for a in dhs], arrays),
                                 maximum_iterations=nb_steps)
    return [a.stack() for a in arrays]


# Compile the training forward loop (with the saved gates) with XLA: measured ~15 % faster per layer (forward and
# backward) than TensorFlow's executor, but only 1.09 -> 1.03 and 1.07 -> 1.06 s per training step of the default
# model in two runs (the reverse loop was ~10 % slower under XLA; inference always runs the plain loop). Off by
# default: XLA rounds differently (~2e-7 relative), and the tiny model that tests/test_predict.py trains for 12
# epochs ends, deterministically, at recall 0.77 < 0.80 for one class with it (0.90-0.94 with or without XLA when
# the learning rate is changed by 1e-6: that test is sensitive to rounding). Read when the training step is traced.
_GRU_FORWARD_XLA = False


@functools.lru_cache(maxsize=None)
def _fused_bigru(xla: bool = False):
    """``(pf, pb, uf, ub, bf, bb) -> (hf, hb)``: ``_gru_forward_loop`` with a hand-written gradient.

    TensorFlow's automatic gradient of a ``while_loop`` saves every intermediate of every step on stacks and
    computes the weight gradients step by step inside the reverse loop. Here the forward loop saves the gates
    (compiled by XLA if ``xla``), the reverse loop carries only the state gradient (one matmul and a few small ops
    per step and direction), and the gradients w.r.t. the projections, recurrent kernels and biases are
    whole-sequence element-wise ops and single large matmuls.
    """
    import tensorflow as tf

    forward_loop = functools.partial(_gru_forward_loop, save_gates=True)
    if xla:
        forward_loop = tf.function(forward_loop, jit_compile=True)

    @tf.custom_gradient
    def fused(pf, pb, uf, ub, bf, bb):
        ps, us, bs = [pf, pb], [uf, ub], [bf, bb]
        saved = forward_loop(*[[tf.stop_gradient(a) for a in v] for v in (ps, us, bs)])

        def grad(dhf, dhb):
            units = uf.shape[0]
            zero = tf.zeros_like(saved[0][0][:1])
            h_prev = [tf.concat([zero, saved[0][0][:-1]], 0), tf.concat([saved[1][0][1:], zero], 0)]  # bwd: h_{t+1}
            coefs = []
            for (_, z, r, hh, m_h), hp in zip(saved, h_prev):
                c_h = tf.raw_ops.TanhGrad(y=hh, dy=1 - z)  # d h / d (x_h + r * m_h)
                c_z = tf.raw_ops.SigmoidGrad(y=z, dy=hp - hh)  # d h / d z_pre
                c_r = tf.raw_ops.SigmoidGrad(y=r, dy=c_h * m_h)  # d h / d r_pre
                coefs.append((c_h, tf.concat([c_z, c_r, c_h * r, z], -1)))  # c_h * r = d h / d m_h
            gs = _gru_backward_loop([tf.stop_gradient(dhf), tf.stop_gradient(dhb)],
                                    [tf.stop_gradient(c[1]) for c in coefs], [tf.stop_gradient(u) for u in us])
            dps, dus, dbs = [], [], []
            for (c_h, c), g, hp in zip(coefs, gs, h_prev):
                dm = tf.tile(g, [1, 1, 3]) * c[..., :3 * units]  # d loss / d m_t, m_t = h_prev @ U + b
                dps.append(tf.concat([dm[..., :2 * units], g * c_h], -1))
                dm = tf.reshape(dm, (-1, 3 * units))
                dus.append(tf.matmul(tf.reshape(hp, (-1, units)), dm, transpose_a=True))
                dbs.append(tf.reduce_sum(dm, 0))
            return dps + dus + dbs

        return [s[0] for s in saved], grad

    return fused


@keras.saving.register_keras_serializable(package='seldnet')
class FusedBidirectionalGRU(layers.Bidirectional):
    """``Bidirectional(GRU(units, activation='tanh', dropout=dropout, recurrent_dropout=0, return_sequences=True),
    merge_mode='mul')`` whose TensorFlow computation is restructured for the CPU.

    Same function, ``(batch, T, in) -> (batch, T, units)`` = forward GRU states * backward GRU states (the
    backward GRU reads the sequence from the end; its state is multiplied at its own time step). Same sub-layers
    and weights: ``forward_layer`` / ``backward_layer`` are the Keras GRUs (kernel ``(in, 3*units)``,
    recurrent_kernel ``(units, 3*units)``, bias ``(2, 3*units)`` = [input; recurrent], gate order z, r, h), so
    ``get_weights`` / ``set_weights`` use the stock layer's order (forward kernel, recurrent kernel, bias, then
    backward) and the parameter count is the same.

    Keras 3's GRU on the TensorFlow backend without cuDNN runs one ``while_loop`` per direction whose every step
    also multiplies that step's input by the kernel, and differentiates it automatically. Here the input
    projections of all steps are two ``(T*batch, in) @ (in, 3*units)`` matmuls outside the loop, one loop advances
    both directions (``_gru_forward_loop``), and in training the gradient is hand-written (``_fused_bigru``;
    outside training the loop is differentiable automatically). Input
    dropout is as in the Keras GRU: one mask per sequence and direction, drawn from each GRU cell's seed
    generator at every call when ``dropout > 0`` and applied in training. Variable sequence length (``T`` None)
    and any compute dtype (mixed precision) work; masks, initial states and other backends use the stock
    computation.
    Measured on the default model (two layers of 128 units on (16, 512, 128) inputs, forward and backward):
    ~0.10 s instead of ~0.16 s per layer and training step; whole model 1.17-1.21 -> 1.07-1.09 s per step, from
    55-57 % to 62-63 % of the float32 matmul peak (benchmarks/bench_training.py --rounds 2, variants
    'ref+dense+fusedbn+relupool' and 'project', three runs). ``jit_compile=True`` for the whole model is ~3x slower
    on this CPU (XLA's convolutions instead of oneDNN's, presumably).
    """

    def __init__(self, units: int, dropout: float = 0.0, **kwargs):
        self.units, self.dropout = int(units), float(dropout)
        gru = layers.GRU(self.units, activation='tanh', dropout=self.dropout, recurrent_dropout=0.0,
                         return_sequences=True, dtype=kwargs.get('dtype'), name='gru')
        super().__init__(gru, merge_mode='mul', **kwargs)

    def get_config(self):
        return {**layers.Layer.get_config(self), 'units': self.units, 'dropout': self.dropout}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def call(self, sequences, initial_state=None, mask=None, training=None):
        if keras.backend.backend() != 'tensorflow' or initial_state is not None or mask is not None:
            return super().call(sequences, initial_state=initial_state, mask=mask, training=training)
        import tensorflow as tf

        dtype = self.compute_dtype
        x = tf.transpose(tf.cast(sequences, dtype), (1, 0, 2))  # time-major (T, batch, in)
        cells = (self.forward_layer.cell, self.backward_layer.cell)
        masks = [None, None]
        for d, c in enumerate(cells):  # as keras.layers.RNN: a new mask per call, drawn whenever dropout > 0
            if c.dropout > 0:
                mask = keras.random.dropout(tf.ones_like(x[0]), rate=c.dropout, seed=c.seed_generator)
                if training and c.dropout < 1.0:
                    masks[d] = mask
        shape = tf.concat([tf.shape(x)[:2], [3 * self.units]], 0)
        ps, us, bs = [], [], []
        for c, mask in zip(cells, masks):
            bias = tf.cast(c.bias, dtype)
            xd = tf.reshape(x if mask is None else x * mask, (-1, x.shape[-1]))
            ps.append(tf.reshape(tf.nn.bias_add(tf.matmul(xd, tf.cast(c.kernel, dtype)), bias[0]), shape))
            us.append(tf.cast(c.recurrent_kernel, dtype))
            bs.append(bias[1])
        if training:
            hf, hb = _fused_bigru(_GRU_FORWARD_XLA)(*ps, *us, *bs)
        else:
            (hf,), (hb,) = _gru_forward_loop(ps, us, bs)
        y = tf.transpose(hf * hb, (1, 0, 2))
        y.set_shape(tuple(sequences.shape[:2]) + (self.units,))
        return y


def get_model(*, nb_frames: int, nb_bins: int, nb_channels: int, nb_classes: int, azi_only: bool = False,
              dropout_rate: float = 0.0, nb_cnn2d_filt: int = 64, pool_size: Sequence[int] = (8, 8, 2),
              rnn_size: Sequence[int] = (128, 128), fnn_size: Sequence[int] = (128,),
              loss_weights: Sequence[float] = (1.0, 50.0), learning_rate: float = 1e-3,
              jit_compile: bool | str = False, compile: bool = True) -> keras.Model:
    """Build (and compile) SELDnet.

    ``len(pool_size)`` x [Conv2D 3x3 'same', BatchNorm, ReLU, MaxPool (1, p) over frequency, Dropout],
    reshape to (time, features), ``len(rnn_size)`` x bidirectional GRU (tanh, outputs multiplied),
    then two heads of time-distributed Dense (linear) + Dropout layers: SED with a sigmoid per class
    and DOA with tanh (x, y, z per class, or x, y with ``azi_only``).

    Parameters
    ----------
    nb_frames : int or None
        Sequence length in frames (None for variable length).
    nb_bins : int
        Frequency bins (nfft / 2); must be divisible by ``prod(pool_size)``.
    nb_channels : int
        Audio channels; the input has ``2 * nb_channels`` feature maps (magnitude and phase).
    nb_classes : int
    azi_only : bool
        DOA output of 2 (x, y) instead of 3 (x, y, z) values per class.

    Returns
    -------
    model : keras.Model
        Input ``(batch, frames, bins, 2*channels)``; outputs ``sed_out`` ``(batch, frames, classes)``
        and ``doa_out`` ``(batch, frames, 3*classes)`` laid out as [x..., y..., z...].
    """
    prod = 1
    for p in pool_size:
        prod *= int(p)
    if nb_bins % prod:
        raise SELDError(f'pool_size={list(pool_size)}: product {prod} must divide nb_bins={nb_bins}')
    spec_start = keras.Input(shape=(nb_frames, nb_bins, 2 * nb_channels), name='spec')
    x = spec_start
    for i, p in enumerate(pool_size):
        x = layers.Conv2D(nb_cnn2d_filt, (3, 3), padding='same', name=f'conv{i + 1}')(x)
        x = FusedBatchNormalization(name=f'bn{i + 1}')(x)
        # relu(maxpool(x)) == maxpool(relu(x)) (ReLU is monotonic): the ReLU runs on the pooled map, p x smaller
        x = layers.MaxPooling2D(pool_size=(1, int(p)), name=f'pool{i + 1}')(x)
        x = layers.Activation('relu', name=f'relu{i + 1}')(x)
        x = layers.Dropout(dropout_rate, name=f'drop{i + 1}')(x)
    x = layers.Reshape((-1 if nb_frames is None else nb_frames, (nb_bins // prod) * nb_cnn2d_filt),
                       name='to_sequence')(x)
    for i, units in enumerate(rnn_size):
        # = Bidirectional(GRU(units, tanh, dropout=dropout_rate, return_sequences=True), merge_mode='mul')
        x = FusedBidirectionalGRU(units, dropout=dropout_rate, name=f'bigru{i + 1}')(x)

    def head(name: str, nb_out: int, activation: str) -> keras.KerasTensor:
        h = x
        for j, units in enumerate(fnn_size):
            # Dense on (batch, time, features) is the time-distributed dense of the paper (same weights, same
            # math). Keras 3's TimeDistributed unrolls a static time axis into one Dense call per frame
            # (512 matmuls per layer), which dominated graph tracing and cost per-step overhead.
            h = layers.Dense(units, name=f'{name}_fc{j + 1}')(h)
            h = layers.Dropout(dropout_rate, name=f'{name}_drop{j + 1}')(h)
        h = layers.Dense(nb_out, name=f'{name}_fc_out')(h)
        return layers.Activation(activation, name=f'{name}_out', dtype='float32')(h)  # float32 under mixed precision

    doa = head('doa', (2 if azi_only else 3) * nb_classes, 'tanh')
    sed = head('sed', nb_classes, 'sigmoid')
    model = keras.Model(inputs=spec_start, outputs={'sed_out': sed, 'doa_out': doa}, name='seldnet')
    if compile:
        compile_model(model, loss_weights=loss_weights, learning_rate=learning_rate, jit_compile=jit_compile)
    return model


def compile_model(model: keras.Model, *, loss_weights: Sequence[float] = (1.0, 50.0), learning_rate: float = 1e-3,
                  jit_compile: bool | str = False) -> None:
    """Adam; binary cross-entropy for ``sed_out`` and mean squared error for ``doa_out``."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                  loss={'sed_out': 'binary_crossentropy', 'doa_out': 'mse'},
                  loss_weights={'sed_out': float(loss_weights[0]), 'doa_out': float(loss_weights[1])},
                  jit_compile=jit_compile)


def load_model(path: str) -> keras.Model:
    """Load a saved ``.keras`` model with Keras safe mode on (no arbitrary code, no pickles)."""
    if not os.path.exists(path):
        raise SELDError(f'{path}: model file not found')
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as err:
        raise SELDError(f'{path}: cannot load the model ({err})') from err

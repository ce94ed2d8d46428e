"""The SELDnet architecture (Adavanne et al., IEEE JSTSP 2019), Keras 3 Functional API, channels_last."""
from __future__ import annotations

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
        x = layers.Bidirectional(
            layers.GRU(units, activation='tanh', dropout=dropout_rate, recurrent_dropout=0.0,
                       return_sequences=True), merge_mode='mul', name=f'bigru{i + 1}')(x)

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

"""A CPU kernel for training SELDnet on TensorFlow without a GPU, chosen automatically (``fused_batchnorm=auto``).

Keras 3's ``BatchNormalization`` computes a training step with separate mean, variance and normalization ops, each
a pass over the activation (537 MB per conv1 activation of the default model at batch 16). TensorFlow's fused
kernel (``FusedBatchNormV3``, oneDNN on a CPU) does it in one. On a GPU, Keras' ops are already fast (cuDNN), and
JAX and PyTorch compile their own; so the kernel is used only on the TensorFlow backend with no GPU visible.

Measured (benchmarks/README.md, ``python benchmarks/bench_training.py --steps 5 --variants project,project-fusedbn``):
the default model's training step is 1.24-1.54x faster on 2 CPU cores with it.

:func:`use_fused_batchnorm` leaves the model's layers what they are: stock ``keras.layers.BatchNormalization``
objects with their class, config and weights. It replaces the bound ``call`` method of each layer instance, so a
saved ``model.keras`` is a plain Keras file (loads with no project code, in safe mode, on any backend) and a model
loaded from it gets the kernel again by the same call. Same function: the output is normalized with the batch mean
and biased variance, and the moving statistics are updated with the layer's momentum from the biased variance
(the kernel returns the unbiased one: the Bessel correction is undone). Inference, masks, other dtypes,
``synchronized`` (tf.distribute) layers and renormalization keep Keras' computation.
"""
from __future__ import annotations

import types
from typing import Any

import keras


def available() -> bool:
    """Whether the kernel applies here: the TensorFlow backend and no GPU visible to it."""
    if keras.backend.backend() != 'tensorflow':
        return False
    import tensorflow as tf

    return not tf.config.list_physical_devices('GPU')


def _fused_call(layer: Any, inputs: Any, training: Any = None, mask: Any = None) -> Any:
    """The training step of ``layer`` (a keras.layers.BatchNormalization) with TensorFlow's fused kernel."""
    if not (training and layer.trainable and mask is None and not layer.synchronized and layer.scale and layer.center
            and layer.axis in (-1, len(inputs.shape) - 1) and len(inputs.shape) == 4
            and keras.backend.standardize_dtype(inputs.dtype) == 'float32' and layer.variable_dtype == 'float32'):
        return type(layer).call(layer, inputs, training=training, mask=mask)
    import tensorflow as tf

    y, mean, var = tf.compat.v1.nn.fused_batch_norm(inputs, layer.gamma, layer.beta, epsilon=layer.epsilon,
                                                    is_training=True)[:3]
    n = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], var.dtype)
    var = var * ((n - 1.0) / tf.maximum(n, 2.0))  # FusedBatchNormV3 returns the unbiased variance
    layer.moving_mean.assign(layer.moving_mean * layer.momentum + mean * (1.0 - layer.momentum))
    layer.moving_variance.assign(layer.moving_variance * layer.momentum + var * (1.0 - layer.momentum))
    return y


def use_fused_batchnorm(model: keras.Model, *, enable: bool | str = 'auto') -> int:
    """Give every BatchNormalization layer of ``model`` the fused training kernel (module docstring).

    Parameters
    ----------
    model : keras.Model
    enable : {'auto', True, False}
        ``'auto'``: where :func:`available`; ``True``: on the TensorFlow backend (a GPU too; for tests);
        ``False``: never (the layers keep or get back Keras' computation).

    Returns
    -------
    nb_layers : int
        Layers that use the kernel.
    """
    on = available() if enable == 'auto' else bool(enable) and keras.backend.backend() == 'tensorflow'
    count = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        if on:
            layer.call = types.MethodType(_fused_call, layer)
            count += 1
        elif 'call' in vars(layer):
            del layer.call
    return count

"""The SELDnet architecture (Adavanne et al., IEEE JSTSP 2019) in Keras 3: Functional API, channels_last, stock
layers only, so that a saved ``model.keras`` loads with plain Keras in safe mode on TensorFlow, JAX and PyTorch.

::

    spec (batch, frames, bins, 2*channels)   magnitude and phase maps of every channel
    len(pool_size) x  Conv2D 3x3 'same' -> BatchNormalization -> MaxPooling (1, p) over frequency -> ReLU -> Dropout
    reshape           (batch, frames, bins / prod(pool_size) * filters)
    len(rnn_size) x   Bidirectional(GRU(units, return_sequences=True), merge_mode='mul')
    two heads         len(fnn_size) x [Dense -> Dropout] -> Dense -> sigmoid (sed_out) | tanh (doa_out)

The recurrent layers (``gru_type``):

* ``'cudnn'`` (default): Keras 3's GRU defaults: tanh, sigmoid gates, ``reset_after=True`` (a second, recurrent
  bias per gate) and no recurrent dropout. This is the configuration cuDNN implements, so on a GPU Keras runs
  it with cuDNN on every backend; on a CPU it is the generic loop. Default model: 514,284 parameters.
* ``'original'``: the GRU of the paper's code (Keras 2.2.4 defaults): ``reset_after=False`` (the reset gate
  multiplies the state before the recurrent matmul; one bias per gate), hard-sigmoid gates and
  ``recurrent_dropout=dropout_rate``. Default model: 512,748 parameters. Never cuDNN. With dropout, Keras 3 draws
  one input and one recurrent mask shared by the three gates, where Keras 2.2.4 (``implementation=1``) drew one
  per gate; Keras 3 keeps no ``implementation`` in a saved model, so the shared masks are kept here. The hard sigmoid is Keras 3's stock ``'hard_sigmoid'``,
  ``clip(x / 6 + 1/2, 0, 1)``, so that the model stays a plain Keras file; Keras 2.2.4's was
  ``clip(0.2 x + 1/2, 0, 1)``. The two are the same family of functions: ``hs_2(a) = hs_3(1.2 a)``, so a GRU with
  Keras 2.2.4 weights computes exactly what this layer computes with the update- and reset-gate columns of the
  kernel, recurrent kernel and bias multiplied by 1.2 (tests/test_keras_model.py checks this against a numpy
  Keras 2.2.4 GRU). Trained from scratch, the two differ only by that scale at initialization (the gates start
  1.2x less steep here).
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from typing import Any, Iterator, Sequence

import keras
from keras import layers

import utils
from utils import SELDError

GRU_TYPES = ('cudnn', 'original')
PRECISIONS = ('none', 'mixed_bfloat16', 'mixed_float16')


@contextlib.contextmanager
def precision(mixed_precision: str = 'none') -> Iterator[None]:
    """Keras' global dtype policy inside the block: ``'none'`` (float32), ``'mixed_bfloat16'`` or ``'mixed_float16'``
    (compute in 16 bits, variables in float32); the previous policy is restored after it.

    Layers take the policy when they are built, and ``compile`` adds loss scaling for a ``mixed_float16`` model:
    build, compile and load models inside the block.
    """
    if mixed_precision not in PRECISIONS:
        raise SELDError(f'mixed_precision={mixed_precision!r}: must be one of {", ".join(PRECISIONS)}')
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy('float32' if mixed_precision == 'none' else mixed_precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(old)


def get_model(*, nb_frames: int | None, nb_bins: int, nb_channels: int, nb_classes: int, azi_only: bool = False,
              dropout_rate: float = 0.0, nb_cnn2d_filt: int = 64, pool_size: Sequence[int] = (8, 8, 2),
              rnn_size: Sequence[int] = (128, 128), fnn_size: Sequence[int] = (128,), gru_type: str = 'cudnn',
              bn_momentum: float = 0.99, sync_batchnorm: bool = False, mixed_precision: str = 'none',
              loss_weights: Sequence[float] = (1.0, 50.0),
              learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 1e-3,
              jit_compile: bool | str = 'auto', compile: bool = True) -> keras.Model:
    """Build (and compile) SELDnet.

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
    dropout_rate : float
        Dropout after every conv block and dense layer, on the GRU inputs, and (``gru_type='original'``) on the
        GRU states.
    nb_cnn2d_filt, pool_size, rnn_size, fnn_size
        Filters of every Conv2D; frequency pooling per conv block; units per bidirectional GRU layer; units per
        dense layer before each output.
    gru_type : {'cudnn', 'original'}
        See the module docstring.
    bn_momentum : float
        Momentum of the BatchNormalization moving statistics (0.99: Keras' default, in Keras 2.2.4 too, so the
        paper's): each training step moves them ``1 - bn_momentum`` of the way to the batch's statistics.
    sync_batchnorm : bool
        BatchNormalization with ``synchronized=True``: under a ``tf.distribute`` strategy the batch statistics are
        those of the global batch, not of each replica's share (TensorFlow backend only; seld.py sets it for
        ``distribute=mirrored|multiworker``).
    mixed_precision : {'none', 'mixed_bfloat16', 'mixed_float16'}
        Dtype policy of the layers (see :func:`precision`); the outputs are float32 under every policy.
    loss_weights, learning_rate, jit_compile
        Passed to :func:`compile_model` (``learning_rate``: a number or a schedule, :func:`learning_rate`).
    compile : bool

    Returns
    -------
    model : keras.Model
        Input ``spec`` ``(batch, frames, bins, 2*channels)``; outputs ``sed_out`` ``(batch, frames, classes)``
        and ``doa_out`` ``(batch, frames, 3*classes)`` laid out as [x..., y..., z...] (``2*classes`` with
        ``azi_only``).
    """
    prod = 1
    for p in pool_size:
        prod *= int(p)
    if nb_bins % prod:
        raise SELDError(f'pool_size={list(pool_size)}: product {prod} must divide nb_bins={nb_bins}')
    if gru_type not in GRU_TYPES:
        raise SELDError(f'gru_type={gru_type!r}: must be one of {", ".join(GRU_TYPES)}')
    with precision(mixed_precision):
        spec_start = keras.Input(shape=(nb_frames, nb_bins, 2 * nb_channels), name='spec')
        x = spec_start
        for i, p in enumerate(pool_size):
            x = layers.Conv2D(nb_cnn2d_filt, (3, 3), padding='same', name=f'conv{i + 1}')(x)
            x = layers.BatchNormalization(momentum=bn_momentum, synchronized=sync_batchnorm, name=f'bn{i + 1}')(x)
            # The paper's order is ReLU, then max-pooling. relu(maxpool(x)) == maxpool(relu(x)) exactly (ReLU is
            # monotonic, so it commutes with max), and here the ReLU and its gradient run on the p-times smaller
            # pooled map: 1.59 -> 1.38 s per training step on 2 CPU cores (benchmarks/README.md).
            x = layers.MaxPooling2D(pool_size=(1, int(p)), name=f'pool{i + 1}')(x)
            x = layers.Activation('relu', name=f'relu{i + 1}')(x)
            x = layers.Dropout(dropout_rate, name=f'drop{i + 1}')(x)
        x = layers.Reshape((-1 if nb_frames is None else nb_frames, (nb_bins // prod) * nb_cnn2d_filt),
                           name='to_sequence')(x)
        for i, units in enumerate(rnn_size):
            x = layers.Bidirectional(_gru(int(units), dropout_rate, gru_type), merge_mode='mul',
                                     name=f'bigru{i + 1}')(x)

        def head(name: str, nb_out: int, activation: str) -> keras.KerasTensor:
            h = x
            for j, units in enumerate(fnn_size):
                # Dense on (batch, time, features) is the paper's TimeDistributed(Dense): the same weights and
                # math. Keras 3's TimeDistributed unrolls a static time axis into one Dense call per frame
                # (512 matmuls per layer), which took most of the 52 s to the first training step.
                h = layers.Dense(units, name=f'{name}_fc{j + 1}')(h)
                h = layers.Dropout(dropout_rate, name=f'{name}_drop{j + 1}')(h)
            h = layers.Dense(nb_out, name=f'{name}_fc_out')(h)
            return layers.Activation(activation, name=f'{name}_out', dtype='float32')(h)  # float32 under any policy

        doa = head('doa', (2 if azi_only else 3) * nb_classes, 'tanh')
        sed = head('sed', nb_classes, 'sigmoid')
        model = keras.Model(inputs=spec_start, outputs={'sed_out': sed, 'doa_out': doa}, name='seldnet')
        if compile:
            compile_model(model, loss_weights=loss_weights, learning_rate=learning_rate, jit_compile=jit_compile)
    return model


def _gru(units: int, dropout_rate: float, gru_type: str) -> layers.GRU:
    """One direction of a bidirectional layer (``Bidirectional`` makes the backward copy)."""
    if gru_type == 'original':
        return layers.GRU(units, activation='tanh', recurrent_activation='hard_sigmoid', reset_after=False,
                          dropout=dropout_rate, recurrent_dropout=dropout_rate, return_sequences=True)
    return layers.GRU(units, activation='tanh', recurrent_activation='sigmoid', reset_after=True,
                      dropout=dropout_rate, recurrent_dropout=0.0, return_sequences=True)


LR_SCHEDULES = ('constant', 'cosine')


def learning_rate(lr_schedule: str = 'constant', *, peak: float = 1e-3, total_steps: int = 1,
                  warmup_steps: int = 0) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The learning rate of Adam: a number (``'constant'``, the paper's) or Keras' stock ``CosineDecay``.

    ``'cosine'`` rises linearly from 0 to ``peak`` over ``warmup_steps`` optimizer steps, then falls along a half
    cosine to 0 at ``total_steps`` (the run's last step): large steps early, small ones at the end, where a constant
    rate keeps the weights (and the validation score) jumping from epoch to epoch. A stock schedule, so the saved
    model (its optimizer included) stays a plain Keras file.
    """
    if lr_schedule not in LR_SCHEDULES:
        raise SELDError(f'lr_schedule={lr_schedule!r}: must be one of {", ".join(LR_SCHEDULES)}')
    if lr_schedule == 'constant':
        return float(peak)
    if not 0 <= warmup_steps < total_steps:
        raise SELDError(f'warmup_steps={warmup_steps}: must be at least 0 and less than total_steps={total_steps}')
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else float(peak), decay_steps=int(total_steps - warmup_steps),
        alpha=0.0, warmup_target=float(peak) if warmup_steps else None, warmup_steps=int(warmup_steps))


def compile_model(model: keras.Model, *, loss_weights: Sequence[float] = (1.0, 50.0),
                  learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 1e-3,
                  jit_compile: bool | str = 'auto', optimizer: keras.optimizers.Optimizer | None = None) -> None:
    """Adam (or ``optimizer``, e.g. a loaded model's, with its state); binary cross-entropy for ``sed_out`` and mean
    squared error for ``doa_out``.

    Keras' default reduction divides the weighted sum of the per-frame losses by every frame of the batch; the
    generator's sample weights (0 for padding, ``frames / real frames`` for a real frame) make that the mean over the
    real frames, the validation loss's quantity. (``reduction='mean_with_sample_weight'`` would do it on one device,
    but under a ``tf.distribute`` strategy each replica would divide by its own weights: a replica given only padding
    would halve the batch's loss and gradient.)

    ``jit_compile='auto'`` is Keras' choice per backend: XLA on JAX (always) and on a TensorFlow GPU (unless a
    layer runs cuDNN), none on a TensorFlow CPU, eager PyTorch.
    """
    model.compile(optimizer=optimizer or keras.optimizers.Adam(learning_rate=learning_rate),
                  loss={'sed_out': 'binary_crossentropy', 'doa_out': 'mse'},
                  loss_weights={'sed_out': float(loss_weights[0]), 'doa_out': float(loss_weights[1])},
                  jit_compile=jit_compile)


def seed_state_variables(model: keras.Model) -> list[keras.Variable]:
    """The state variables of every ``keras.random.SeedGenerator`` of the model (the dropout layers' and the GRUs'
    dropout masks), in the model's layer order, which is the same for a built and a loaded model (their variable
    names, numbered by Keras per process, are not)."""
    return [v for v in model.variables if v.name == 'seed_generator_state']


def set_epoch_seeds(model: keras.Model, *, seed: int, epoch: int) -> None:
    """Set the state of every seed generator of the model from ``(seed, epoch)`` alone, so that the dropout masks of
    epoch ``epoch`` are the same whatever ran before it in the process (a resumed run draws what the uninterrupted
    run drew). Generator ``i`` (of :func:`seed_state_variables`) gets state ``[s_i, 0]``, ``s_i`` drawn by
    ``numpy.random.default_rng([seed, epoch, 2, i])``; Keras then counts the second element up per draw."""
    import numpy as np

    for i, v in enumerate(seed_state_variables(model)):
        s = int(np.random.default_rng([int(seed) & ((1 << 64) - 1), int(epoch), 2, i]).integers(1, 2 ** 31 - 1))
        v.assign(np.array([s, 0], dtype=v.dtype))


def save_model(model: keras.Model, path: str) -> None:
    """``model.save(path)``, atomically (temporary name, then rename), as a file that plain Keras loads on any backend.

    Keras 3 on PyTorch writes its optimizer under the backend's own module
    (``keras.src.backend.torch.optimizers.torch_adam``), which cannot be imported where PyTorch is not installed:
    the config names it ``keras.optimizers``, as the other backends write it.
    """
    with utils.atomic_path(path) as tmp:
        model.save(tmp)
        config = _portable_config(tmp, unsync=False)
        if config is not None:
            _copy_with_config(tmp, tmp + '.portable', config)
            os.replace(tmp + '.portable', tmp)


def load_model(path: str) -> keras.Model:
    """Load a saved ``.keras`` model with Keras safe mode on (no arbitrary code, no pickles), on any backend.

    The file holds only stock layers: ``keras.saving.load_model(path, safe_mode=True)`` loads it without this
    project. The one exception is a model trained under a ``tf.distribute`` strategy, whose BatchNormalization
    layers have ``synchronized=True``, which Keras accepts only on TensorFlow: on the other backends it is loaded
    from a copy whose config says ``synchronized=False`` (the same layer outside a distribution strategy); so is a
    file that names a backend's own optimizer module (see :func:`save_model`).
    """
    if not os.path.exists(path):
        raise SELDError(f'{path}: model file not found')
    try:
        config = _portable_config(path, unsync=keras.backend.backend() != 'tensorflow')
        if config is None:
            return keras.saving.load_model(path, safe_mode=True)
        with tempfile.TemporaryDirectory() as tmp:
            copy = os.path.join(tmp, os.path.basename(path))
            _copy_with_config(path, copy, config)
            return keras.saving.load_model(copy, safe_mode=True)
    except Exception as err:
        raise SELDError(f'{path}: cannot load the model ({" ".join(str(err).split())})') from err


def _portable_config(path: str, *, unsync: bool) -> dict | None:
    """The config.json of a ``.keras`` file with backend-specific optimizer modules named ``keras.optimizers`` and
    (``unsync``) every BatchNormalization unsynchronized; None if nothing changes."""
    changed = False

    def fix(node: Any) -> None:
        nonlocal changed
        if isinstance(node, dict):
            module = node.get('module')
            if isinstance(module, str) and module.startswith('keras.src.backend.') and '.optimizers' in module:
                node['module'], changed = 'keras.optimizers', True
            if unsync and node.get('class_name') == 'BatchNormalization' and node.get('config', {}).get('synchronized'):
                node['config']['synchronized'], changed = False, True
            for v in node.values():
                fix(v)
        elif isinstance(node, list):
            for v in node:
                fix(v)

    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read('config.json'))
    fix(config)
    return config if changed else None


def _copy_with_config(src: str, dst: str, config: dict) -> None:
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst, 'w') as b:
        for item in a.infolist():
            b.writestr(item, json.dumps(config) if item.filename == 'config.json' else a.read(item))

"""The SELDnet architecture (Adavanne et al., IEEE JSTSP 2019) in Keras 3, and the DCASE Task 3 baselines that grew
from it (2020-2025), as options: Functional API, channels_last, stock layers only, so that a saved ``model.keras``
loads with plain Keras in safe mode on TensorFlow, JAX and PyTorch.

SELDnet (the defaults)
----------------------
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

The DCASE baselines (options of :func:`get_model`)
--------------------------------------------------
Each year's official model is SELDnet with these changes (parameter.TASKS ``dcase2020_baseline`` ...
``dcase2025_baseline`` set them; tests/test_keras_model_dcase.py counts their parameters by hand):

* ``nb_maps``: the input feature maps of the DCASE features (7 for log-mel + intensity vectors, 10 with GCC-PHAT,
  2 for the 2025 stereo log-mel), ``nb_bins`` their mel bands.
* ``t_pool_size``: max-pooling over time in each conv block as well (``[5, 1, 1]``: 20-ms feature frames to the
  100-ms label frames), so the outputs have ``frames / prod(t_pool_size)`` frames.
* ``output``: one output ``accdoa_out`` instead of the two heads (below).
* ``crnn='dcase2022'``: the PyTorch CRNN of 2022-2025 instead of the Keras SELDnet layers of 2019-2021:
  ``SpatialDropout2D`` after each conv block (``torch.nn.Dropout2d``: whole feature maps), BatchNormalization with
  PyTorch's epsilon 1e-5, the GRU layers stacked as ``torch.nn.GRU(num_layers, bidirectional=True)`` does (both
  directions concatenated between layers, with dropout between them; after the last, ``tanh`` of each direction
  and their product), then ``nb_self_attn_layers`` x [``MultiHeadAttention`` (``nb_heads``, attention dropout) ->
  add its input -> ``LayerNormalization``] (2023+, ``torch.nn.MultiheadAttention`` + ``nn.LayerNorm``), and dense
  layers without dropout or activation before the output layer. Default: ``'dcase2022'`` for the ``multi_*``
  outputs, SELDnet's layers otherwise.
* ``crnn='dcase2020'``: SELDnet's layers as the 2020 and 2021 Keras 2 code builds them (with
  ``gru_type='original'``): its maps are ``channels_first`` and its ``BatchNormalization()`` keeps Keras' default
  ``axis=-1``, so each normalizes the frequency bins (4 weights per bin of its input, 64, 16, 4 with pooling 4, 4,
  2), not the filters: ``BatchNormalization(axis=2)`` here.

=================  ==========================================  =========================================  ========
``output``         ``accdoa_out`` ``(batch, out_frames, n)``   activation                                 loss
=================  ==========================================  =========================================  ========
``seldnet``        (two outputs: ``sed_out``, ``doa_out``)     sigmoid, tanh                              BCE, MSE
``accdoa``         n = 3 x classes: x block, y, z (2021)       tanh                                       accdoa_mse
``multi_accdoa``   n = 3 tracks x 3 (x, y, z) x classes        tanh (2022, 2023)                          adpit_mse
``multi_accddoa``  n = 3 tracks x 4 (x, y, z, distance) x C    none: linear (2024's official model)       adpit_mse
  + ``azi_only``   n = 3 tracks x 3 (x, y, distance) x C       tanh on x, y; ReLU on the distance (2025)  adpit_mse
=================  ==========================================  =========================================  ========

The layout is element-major, as the official linear layer's: ``accdoa_out[..., (track * elements + element) *
classes + class]`` (one track for ``accdoa``; ``azi_only`` drops z from ``accdoa`` and ``multi_accdoa`` too). Each
element of an active class's track is ``activity * value`` (the distance in metres). The model's name is its
``output``, which :func:`compile_model` reads to pick the loss (:mod:`losses`).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import zipfile
from typing import Any, Iterator, Sequence

import keras
from keras import layers

import losses
import utils
from utils import SELDError

GRU_TYPES = ('cudnn', 'original')
PRECISIONS = ('none', 'mixed_bfloat16', 'mixed_float16')
OUTPUTS = ('seldnet', 'accdoa', 'multi_accdoa', 'multi_accddoa')
CRNNS = ('seldnet', 'dcase2020', 'dcase2022')
#: Output tracks of the Multi-ACCDOA outputs.
NB_TRACKS = 3


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
              loss_weights: Sequence[float] = (1.0, 50.0), doa_loss: str = 'mse',
              learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 1e-3,
              jit_compile: bool | str = 'auto', compile: bool = True, nb_maps: int | None = None,
              output: str = 'seldnet', t_pool_size: Sequence[int] | None = None, nb_self_attn_layers: int = 0,
              nb_heads: int = 8, crnn: str | None = None) -> keras.Model:
    """Build (and compile) SELDnet, or a DCASE baseline's model (module docstring).

    Parameters
    ----------
    nb_frames : int or None
        Sequence length in (feature) frames (None for variable length).
    nb_bins : int
        Frequency bins (nfft / 2) or mel bands; ``prod(pool_size)`` must divide them (``crnn='seldnet'``) or be at
        most their number (``'dcase2022'``: the pooling drops the remainder, as the official model's).
    nb_channels : int
        Audio channels; with ``nb_maps=None`` the input has ``2 * nb_channels`` feature maps (magnitude and phase).
    nb_classes : int
    azi_only : bool
        DOA of 2 values (x, y) instead of 3 (x, y, z) per class and track.
    dropout_rate : float
        SELDnet: dropout after every conv block and dense layer, on the GRU inputs, and (``gru_type='original'``)
        on the GRU states. ``crnn='dcase2022'``: after every conv block (whole maps), between the GRU layers and on
        the attention weights.
    nb_cnn2d_filt, pool_size, rnn_size, fnn_size
        Filters of every Conv2D; frequency pooling per conv block; units per bidirectional GRU layer; units per
        dense layer before each output.
    gru_type : {'cudnn', 'original'}
        See the module docstring.
    bn_momentum : float
        Momentum of the BatchNormalization moving statistics (0.99: Keras' default, in Keras 2.2.4 too, so the
        paper's; PyTorch's ``momentum=0.1`` is 0.9 here): each training step moves them ``1 - bn_momentum`` of the
        way to the batch's statistics.
    sync_batchnorm : bool
        BatchNormalization with ``synchronized=True``: under a ``tf.distribute`` strategy the batch statistics are
        those of the global batch, not of each replica's share (TensorFlow backend only; seld.py sets it for
        ``distribute=mirrored|multiworker``).
    mixed_precision : {'none', 'mixed_bfloat16', 'mixed_float16'}
        Dtype policy of the layers (see :func:`precision`); the outputs are float32 under every policy.
    loss_weights, doa_loss, learning_rate, jit_compile
        Passed to :func:`compile_model` (``learning_rate``: a number or a schedule, :func:`learning_rate`).
    compile : bool
    nb_maps : int or None
        Input feature maps; None = ``2 * nb_channels``.
    output : {'seldnet', 'accdoa', 'multi_accdoa', 'multi_accddoa'}
        The output(s), their activations and loss (module docstring).
    t_pool_size : sequence of int or None
        Time max-pooling per conv block (one entry per ``pool_size`` entry); its product must divide ``nb_frames``.
        None = no time pooling.
    nb_self_attn_layers, nb_heads : int
        Self-attention layers after the GRUs (``crnn='dcase2022'`` only) and their heads; ``nb_heads`` must divide
        ``rnn_size[-1]``.
    crnn : {'seldnet', 'dcase2020', 'dcase2022'} or None
        The layers between input and output (module docstring); None = ``'dcase2022'`` for the ``multi_*``
        outputs, else ``'seldnet'``.

    Returns
    -------
    model : keras.Model
        Named ``output``. Input ``spec`` ``(batch, frames, bins, maps)``; with ``out_frames = frames /
        prod(t_pool_size)``: ``output='seldnet'``: outputs ``sed_out`` ``(batch, out_frames, classes)`` and
        ``doa_out`` ``(batch, out_frames, 3*classes)`` laid out as [x..., y..., z...] (``2*classes`` with
        ``azi_only``); otherwise the one output ``accdoa_out`` ``(batch, out_frames, tracks*elements*classes)``
        (module docstring).
    """
    if output not in OUTPUTS:
        raise SELDError(f'output={output!r}: must be one of {", ".join(OUTPUTS)}')
    crnn = crnn or ('dcase2022' if output.startswith('multi') else 'seldnet')
    if crnn not in CRNNS:
        raise SELDError(f'crnn={crnn!r}: must be one of {", ".join(CRNNS)}')
    if gru_type not in GRU_TYPES:
        raise SELDError(f'gru_type={gru_type!r}: must be one of {", ".join(GRU_TYPES)}')
    prod = math.prod(int(p) for p in pool_size)
    if crnn != 'dcase2022' and nb_bins % prod:
        raise SELDError(f'pool_size={list(pool_size)}: product {prod} must divide nb_bins={nb_bins}')
    if prod > nb_bins:
        raise SELDError(f'pool_size={list(pool_size)}: product {prod} must be at most nb_bins={nb_bins}')
    t_pool = [1] * len(pool_size) if t_pool_size is None else [int(t) for t in t_pool_size]
    if len(t_pool) != len(pool_size) or min(t_pool) < 1:
        raise SELDError(f't_pool_size={list(t_pool)}: must have one entry >= 1 per pool_size entry '
                        f'(pool_size={list(pool_size)})')
    t_prod = math.prod(t_pool)
    if nb_frames is not None and nb_frames % t_prod:
        raise SELDError(f't_pool_size={t_pool}: product {t_prod} must divide nb_frames={nb_frames}')
    if nb_self_attn_layers and crnn != 'dcase2022':
        raise SELDError(f"nb_self_attn_layers={nb_self_attn_layers}: needs crnn='dcase2022' (the 2023+ baselines)")
    if nb_self_attn_layers and int(rnn_size[-1]) % nb_heads:
        raise SELDError(f'nb_heads={nb_heads}: must divide the last GRU size {int(rnn_size[-1])}')
    torch_like = crnn == 'dcase2022'
    out_frames = None if nb_frames is None else nb_frames // t_prod
    bn_axis = 2 if crnn == 'dcase2020' else -1  # the frequency axis of (batch, frames, bins, maps)
    with precision(mixed_precision):
        spec_start = keras.Input(shape=(nb_frames, nb_bins, nb_maps or 2 * nb_channels), name='spec')
        x = spec_start
        for i, (t, p) in enumerate(zip(t_pool, pool_size)):
            x = layers.Conv2D(nb_cnn2d_filt, (3, 3), padding='same', name=f'conv{i + 1}')(x)
            x = layers.BatchNormalization(axis=bn_axis, momentum=bn_momentum, epsilon=1e-5 if torch_like else 1e-3,
                                          synchronized=sync_batchnorm, name=f'bn{i + 1}')(x)
            # The paper's order is ReLU, then max-pooling. relu(maxpool(x)) == maxpool(relu(x)) exactly (ReLU is
            # monotonic, so it commutes with max), and here the ReLU and its gradient run on the p-times smaller
            # pooled map: 1.59 -> 1.38 s per training step on 2 CPU cores (benchmarks/README.md).
            x = layers.MaxPooling2D(pool_size=(t, int(p)), name=f'pool{i + 1}')(x)
            x = layers.Activation('relu', name=f'relu{i + 1}')(x)
            x = (layers.SpatialDropout2D if torch_like else layers.Dropout)(dropout_rate, name=f'drop{i + 1}')(x)
        x = layers.Reshape((-1 if out_frames is None else out_frames, (nb_bins // prod) * nb_cnn2d_filt),
                           name='to_sequence')(x)
        if torch_like:
            x = _torch_gru_stack(x, rnn_size, dropout_rate, gru_type)
            for i in range(nb_self_attn_layers):
                units = int(rnn_size[-1])
                attn = layers.MultiHeadAttention(nb_heads, units // nb_heads, dropout=dropout_rate,
                                                 name=f'mhsa{i + 1}')(x, x)
                x = layers.Add(name=f'mhsa{i + 1}_residual')([attn, x])
                x = layers.LayerNormalization(epsilon=1e-5, name=f'mhsa{i + 1}_norm')(x)
        else:
            for i, units in enumerate(rnn_size):
                x = layers.Bidirectional(_gru(int(units), dropout_rate, gru_type), merge_mode='mul',
                                         name=f'bigru{i + 1}')(x)

        def dense_stack(name: str, nb_out: int) -> keras.KerasTensor:
            h = x
            for j, units in enumerate(fnn_size):
                # Dense on (batch, time, features) is the paper's TimeDistributed(Dense): the same weights and
                # math. Keras 3's TimeDistributed unrolls a static time axis into one Dense call per frame
                # (512 matmuls per layer), which took most of the 52 s to the first training step.
                h = layers.Dense(units, name=f'{name}_fc{j + 1}')(h)
                if not torch_like:
                    h = layers.Dropout(dropout_rate, name=f'{name}_drop{j + 1}')(h)
            return layers.Dense(nb_out, name=f'{name}_fc_out')(h)

        def activation(h: keras.KerasTensor, name: str, kind: str) -> keras.KerasTensor:
            return layers.Activation(kind, name=name, dtype='float32')(h)  # float32 under any policy

        nb_doa = 2 if azi_only else 3
        if output == 'seldnet':
            doa = activation(dense_stack('doa', nb_doa * nb_classes), 'doa_out', 'tanh')
            sed = activation(dense_stack('sed', nb_classes), 'sed_out', 'sigmoid')
            outputs = {'sed_out': sed, 'doa_out': doa}
        elif output == 'multi_accddoa' and azi_only:  # 2025: tanh on (x, y), ReLU on the distance, per track
            h = dense_stack('accdoa', NB_TRACKS * 3 * nb_classes)
            outputs = {'accdoa_out': _xy_tanh_distance_relu(h, out_frames, nb_classes)}
        else:
            tracks = 1 if output == 'accdoa' else NB_TRACKS
            elements = nb_doa + (output == 'multi_accddoa')
            h = dense_stack('accdoa', tracks * elements * nb_classes)
            outputs = {'accdoa_out': activation(h, 'accdoa_out', 'linear' if output == 'multi_accddoa' else 'tanh')}
        model = keras.Model(inputs=spec_start, outputs=outputs, name=output)
        if compile:
            compile_model(model, loss_weights=loss_weights, doa_loss=doa_loss, learning_rate=learning_rate,
                          jit_compile=jit_compile)
    return model


def _gru(units: int, dropout_rate: float, gru_type: str) -> layers.GRU:
    """One direction of a bidirectional layer (``Bidirectional`` makes the backward copy)."""
    if gru_type == 'original':
        return layers.GRU(units, activation='tanh', recurrent_activation='hard_sigmoid', reset_after=False,
                          dropout=dropout_rate, recurrent_dropout=dropout_rate, return_sequences=True)
    return layers.GRU(units, activation='tanh', recurrent_activation='sigmoid', reset_after=True,
                      dropout=dropout_rate, recurrent_dropout=0.0, return_sequences=True)


def _torch_gru_stack(x: keras.KerasTensor, rnn_size: Sequence[int], dropout_rate: float,
                     gru_type: str) -> keras.KerasTensor:
    """``torch.nn.GRU(bidirectional=True, num_layers=len(rnn_size), dropout=dropout_rate)``, then the baselines'
    ``tanh`` and product of the two directions: ``(batch, frames, rnn_size[-1])``. PyTorch's GRU is Keras'
    ``reset_after=True`` one (``gru_type='cudnn'``)."""
    for i, units in enumerate(rnn_size):
        last = i == len(rnn_size) - 1
        bi = layers.Bidirectional(_gru(int(units), 0.0, gru_type), merge_mode=None if last else 'concat',
                                  name=f'bigru{i + 1}')(x)
        if not last:
            x = layers.Dropout(dropout_rate, name=f'bigru{i + 1}_drop')(bi)
    forward = layers.Activation('tanh', name='bigru_tanh_forward')(bi[0])
    backward = layers.Activation('tanh', name='bigru_tanh_backward')(bi[1])
    return layers.Multiply(name='bigru_product')([forward, backward])


def _xy_tanh_distance_relu(h: keras.KerasTensor, out_frames: int | None, nb_classes: int) -> keras.KerasTensor:
    """2025's output activations on ``h`` ``(batch, frames, 3 tracks * 3 * classes)``: tanh on the x and y blocks of
    each track, ReLU on its distance block (stock layers: the (frame, track) pairs as rows, the 3 elements as
    columns, the classes as channels, and ``Cropping2D`` to take the columns)."""
    rows = -1 if out_frames is None else out_frames * NB_TRACKS
    grid = layers.Reshape((rows, 3, nb_classes), name='accdoa_tracks')(h)
    xy = layers.Activation('tanh', name='accdoa_xy')(layers.Cropping2D(((0, 0), (0, 1)), name='accdoa_crop_xy')(grid))
    dist = layers.Activation('relu', name='accdoa_distance')(
        layers.Cropping2D(((0, 0), (2, 0)), name='accdoa_crop_distance')(grid))
    both = layers.Concatenate(axis=2, name='accdoa_concat')([xy, dist])
    flat = layers.Reshape((-1 if out_frames is None else out_frames, NB_TRACKS * 3 * nb_classes),
                          name='accdoa_flat')(both)
    return layers.Activation('linear', name='accdoa_out', dtype='float32')(flat)


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


def compile_model(model: keras.Model, *, loss_weights: Sequence[float] = (1.0, 50.0), doa_loss: str = 'mse',
                  learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 1e-3,
                  jit_compile: bool | str = 'auto', optimizer: keras.optimizers.Optimizer | None = None) -> None:
    """Adam (or ``optimizer``, e.g. a loaded model's, with its state) and the loss of the model's output, which
    :func:`get_model` gives as the model's name: ``seldnet``: binary cross-entropy for ``sed_out`` and, for
    ``doa_out``, mean squared error (``doa_loss='mse'``) or the DCASE 2020 baseline's masked loss
    (``'masked_mse'``: :func:`losses.masked_doa_mse`), weighted by ``loss_weights``; ``accdoa``:
    :func:`losses.accdoa_mse`; ``multi_accdoa``, ``multi_accddoa``: :func:`losses.adpit_mse` on the values per
    track that the output has (``loss_weights`` is then unused).

    Keras' default reduction divides the weighted sum of the per-frame losses by every frame of the batch; the
    generator's sample weights (0 for padding, ``frames / real frames`` for a real frame) make that the mean over the
    real frames, the validation loss's quantity. (``reduction='mean_with_sample_weight'`` would do it on one device,
    but under a ``tf.distribute`` strategy each replica would divide by its own weights: a replica given only padding
    would halve the batch's loss and gradient.)

    ``jit_compile='auto'`` is Keras' choice per backend: XLA on JAX (always) and on a TensorFlow GPU (unless a
    layer runs cuDNN), none on a TensorFlow CPU, eager PyTorch.
    """
    optimizer = optimizer or keras.optimizers.Adam(learning_rate=learning_rate)
    if model.name in ('accdoa', 'multi_accdoa', 'multi_accddoa'):
        loss = losses.accdoa_mse if model.name == 'accdoa' else losses.adpit_mse
        model.compile(optimizer=optimizer, loss={'accdoa_out': loss}, jit_compile=jit_compile)
        return
    model.compile(optimizer=optimizer,
                  loss={'sed_out': 'binary_crossentropy',
                        'doa_out': losses.masked_doa_mse if doa_loss == 'masked_mse' else 'mse'},
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

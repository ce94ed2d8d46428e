"""Losses of the DCASE Task 3 baselines' outputs, in ``keras.ops`` (every Keras backend).

* :func:`masked_doa_mse` (2020, ``doa_loss='masked_mse'``): the DOA head's squared error over the reference-active
  classes, the official ``masked_mse`` with its quirks (see the function).
* :func:`accdoa_mse` (2021, and 2025's single-ACCDOA audio model): the mean squared error between the output and
  the activity-coupled target ``activity * (x, y, z)`` of every class (``torch.nn.MSELoss()``).
* :func:`adpit_mse` (2022-2025): Multi-ACCDOA with Auxiliary Duplicating Permutation Invariant Training, the
  official ``MSELoss_ADPIT`` (2022-2024) and ``SELDLossADPIT`` (2025, audio): 3 output tracks per class, each
  ``elements`` values (x, y, z; with a distance for Multi-ACCDDOA, 2024; x, y, distance, 2025). For every frame and
  class the target tracks are one of 13 patterns of the 6 dummy tracks of :mod:`multitrack_labels`::

      A0 A0 A0                                  (one instance)
      B0 B0 B1, B0 B1 B0, B0 B1 B1, B1 B0 B0, B1 B0 B1, B1 B1 B0      (two instances of the class)
      C0 C1 C2, C0 C2 C1, C1 C0 C2, C1 C2 C0, C2 C0 C1, C2 C1 C0      (three)

  each track being ``activity * values`` of that dummy track, plus the other two groups' standard patterns (A0 A0 A0,
  B0 B0 B1, C0 C1 C2) as padding: one group is active per frame and class, so the patterns of the two inactive
  groups become the active group's standard pattern instead of all-zero targets. The loss is the mean over frames
  and classes of the smallest of the 13 mean squared errors (over the 3 x elements values); the gradient flows
  through the first pattern that reaches it, as the official ``torch.min(...).indices`` selects. ``elements`` is
  the output's values per track (``y_pred.shape[-1] / (3 * classes)``) unless given.

The Keras losses are registered as ``seld>masked_doa_mse``, ``seld>accdoa_mse`` and ``seld>adpit_mse``: a saved
model compiled with them loads in safe mode, with its optimizer, where this module is imported (keras_model.py
imports it); plain Keras loads it with ``compile=False``.

Output layout (the baselines' linear layer): ``y_pred[..., (track * elements + element) * classes + class]``,
i.e. (batch, frames, 3 * elements * classes).
"""
from __future__ import annotations

import keras
from keras import ops

from utils import SELDError

#: The 13 target patterns as indices of the 6 dummy tracks (A0, B0, B1, C0, C1, C2), and each one's group.
PATTERNS = ((0, 0, 0),
            (1, 1, 2), (1, 2, 1), (1, 2, 2), (2, 1, 1), (2, 1, 2), (2, 2, 1),
            (3, 4, 5), (3, 5, 4), (4, 3, 5), (4, 5, 3), (5, 3, 4), (5, 4, 3))
GROUPS = (0,) + (1,) * 6 + (2,) * 6
NB_TRACKS = 3


@keras.saving.register_keras_serializable(package='seld')
def masked_doa_mse(y_true, y_pred):
    """The DCASE 2020 baseline's DOA loss (seld-dcase2020 ``keras_model.masked_mse``), on SELDnet's DOA head.

    ``sqrt(sum(mask * (y_true - y_pred) ** 2)) / sum(mask)`` over the WHOLE batch (a root of the sum, divided by the
    count: the official formula, not a mean of squares). The official mask is the reference SED ``>= 0.5`` of each
    class, repeated three times in place (``repeat_elements(sed, 3, -1)``: ``[c0 c0 c0 c1 c1 c1 ...]``) and laid
    over the DOA target ``[x_0 .. x_{C-1}, y_0 .., z_0 ..]``, so element ``j`` is masked by class ``j // 3`` rather
    than its own (``j % C``): a quirk of the official code, kept. Here a class is active where its reference DOA
    vector is non-zero (the labels hold unit vectors where active, zeros elsewhere and in padding: the same mask).

    Parameters
    ----------
    y_true, y_pred : tensor [shape=(batch, frames, 3 * classes)]

    Returns
    -------
    loss : tensor [shape=(batch, frames)]
        The batch's one value in every frame (Keras' mean of it, with the generator's sample weights that average
        1, is that value). A batch with no active class gives 0 (the official code divides 0 by 0) and a zero
        gradient: where the sum is 0 the root is not differentiated (its argument is floored at 1e-30).
    """
    y_true = ops.cast(y_true, y_pred.dtype)
    nb_classes = y_true.shape[-1] // 3
    vec = ops.reshape(y_true, (-1, ops.shape(y_true)[1], 3, nb_classes))
    active = ops.cast(ops.any(ops.not_equal(vec, 0), axis=2), y_pred.dtype)  # (batch, frames, classes)
    mask = ops.repeat(active, 3, axis=-1)  # the official repeat_elements (docstring)
    total = ops.sum(ops.square(y_true - y_pred) * mask)
    root = ops.where(total > 0, ops.sqrt(ops.maximum(total, 1e-30)), 0.0)
    loss = root / ops.maximum(ops.sum(mask), 1.0)
    return ops.broadcast_to(loss, ops.shape(y_pred)[:-1])


@keras.saving.register_keras_serializable(package='seld')
def accdoa_mse(y_true, y_pred):
    """Single-ACCDOA loss: ``mean((y_pred - y_true) ** 2)`` over the last axis.

    Parameters
    ----------
    y_true : tensor [shape=(batch, frames, elements * classes)]
        ``activity * (x, y, z)`` per class (2021: the x block, then y, then z).
    y_pred : tensor, the same shape

    Returns
    -------
    loss : tensor [shape=(batch, frames)]
        Keras' mean over the batch then gives ``torch.nn.MSELoss()``.
    """
    return ops.mean(ops.square(y_pred - ops.cast(y_true, y_pred.dtype)), axis=-1)


def adpit_targets(y_true, *, nb_elements: int | None = None):
    """The 13 target patterns of ADPIT (module docstring).

    Parameters
    ----------
    y_true : tensor [shape=(batch, frames, 6, 1 + values, classes)]
        :func:`multitrack_labels.adpit_labels` of a batch.
    nb_elements : int, optional
        Values per track that the output estimates (the first ones after the activity); default all.

    Returns
    -------
    targets : tensor [shape=(13, batch, frames, 3 * elements, classes)]
    """
    E = int(y_true.shape[3]) - 1 if nb_elements is None else nb_elements
    act_values = y_true[:, :, :, :1, :] * y_true[:, :, :, 1:1 + E, :]  # (B, T, 6, E, C)

    def pattern(tracks):  # (B, T, 3 * E, C): tracks concatenated along the values
        return ops.concatenate([act_values[:, :, t] for t in tracks], axis=2)

    standard = [pattern(PATTERNS[0]), pattern(PATTERNS[1]), pattern(PATTERNS[7])]  # A0A0A0, B0B0B1, C0C1C2
    pads = [standard[1] + standard[2], standard[0] + standard[2], standard[0] + standard[1]]
    return ops.stack([pattern(p) + pads[g] for p, g in zip(PATTERNS, GROUPS)], axis=0)


def adpit_per_class(y_true, y_pred, *, nb_elements: int | None = None):
    """Multi-ACCDOA / Multi-ACCDDOA loss with ADPIT (module docstring), per frame and class.

    Parameters
    ----------
    y_true : tensor [shape=(batch, frames, 6, 1 + values, classes)]
    y_pred : tensor [shape=(batch, frames, 3 * outputs * classes)]
        3 tracks of ``outputs`` values per class; the first ``elements`` of each track are compared.
    nb_elements : int, optional
        Values compared per track; default ``outputs``, the output's (3 for x, y, z; 4 with the distance; 2025:
        3 for x, y, distance against targets x, y, distance, on-screen). At most ``values`` and ``outputs``.

    Returns
    -------
    loss : tensor [shape=(batch, frames, classes)]
        The smallest pattern's mean squared error per frame and class.
    """
    C = int(y_true.shape[-1])
    per_track = int(y_pred.shape[-1]) // (NB_TRACKS * C)
    E = per_track if nb_elements is None else nb_elements
    if per_track * NB_TRACKS * C != int(y_pred.shape[-1]) or not 1 <= E <= min(per_track, int(y_true.shape[3]) - 1):
        raise SELDError(f'adpit_mse: output of {y_pred.shape[-1]} values is not 3 tracks x {E} or more elements x '
                         f'{C} classes of targets of shape {tuple(y_true.shape)}')
    targets = adpit_targets(ops.cast(y_true, y_pred.dtype), nb_elements=E)
    out = ops.reshape(y_pred, (ops.shape(y_pred)[0], ops.shape(y_pred)[1], NB_TRACKS, per_track, C))[:, :, :, :E]
    out = ops.reshape(out, (ops.shape(y_pred)[0], ops.shape(y_pred)[1], NB_TRACKS * E, C))
    each = ops.mean(ops.square(out[None] - targets), axis=3)  # (13, B, T, C)
    first_min = ops.one_hot(ops.argmin(each, axis=0), len(PATTERNS), axis=0, dtype=each.dtype)
    return ops.sum(each * ops.stop_gradient(first_min), axis=0)


@keras.saving.register_keras_serializable(package='seld')
def adpit_mse(y_true, y_pred, *, nb_elements: int | None = None):
    """:func:`adpit_per_class` averaged over the classes: ``(batch, frames)``, the shape of the generator's sample
    weights; its mean (Keras' default reduction) is the official loss (``MSELoss_ADPIT``, ``SELDLossADPIT``)."""
    return ops.mean(adpit_per_class(y_true, y_pred, nb_elements=nb_elements), axis=-1)

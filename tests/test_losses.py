"""The baselines' losses (losses.py) and multi-track targets (multitrack_labels.py): hand-computed cases, and a
brute-force reference written from the definition (13 track assignments per frame and class, smallest MSE)."""
from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest
from keras import ops

import losses
from multitrack_labels import adpit_labels
from utils import SELDError

X, Y, Z = (1.0, 0, 0), (0, 1.0, 0), (0, 0, 1.0)


def target(tracks: dict[int, tuple], nb_values: int = 3) -> np.ndarray:
    """One frame, one class: {dummy track: values}, active; shape (1, 1, 6, 1 + values, 1)."""
    t = np.zeros((1, 1, 6, 1 + nb_values, 1), np.float32)
    for k, v in tracks.items():
        t[0, 0, k, 0, 0] = 1
        t[0, 0, k, 1:, 0] = v
    return t


def output(*tracks: tuple) -> np.ndarray:
    """One frame, one class: the 3 output tracks' values, flattened as the baselines' linear layer."""
    return np.asarray(tracks, np.float32).reshape(1, 1, -1)


def adpit(t, o, **kw) -> np.ndarray:
    return ops.convert_to_numpy(losses.adpit_per_class(ops.convert_to_tensor(t), ops.convert_to_tensor(o), **kw))


def test_accdoa_is_the_mean_squared_error():
    t = np.array([[[1.0, 0, 0, 0.5, 0, 0]]], np.float32)
    o = np.array([[[0.5, 0, 0, 0.5, 1.0, 0]]], np.float32)
    np.testing.assert_allclose(ops.convert_to_numpy(losses.accdoa_mse(t, o)), [[(0.25 + 1.0) / 6]], rtol=1e-6)


def test_masked_doa_mse_by_hand_with_the_official_mask_layout():
    # 2 classes, DOA layout [x0, x1, y0, y1, z0, z1]. Frame 0: class 0 active at (1, 0, 0), class 1 inactive.
    # The official mask repeats each class's SED 3 times in place: [s0 s0 s0 s1 s1 s1] = [1 1 1 0 0 0], so it
    # covers x0, x1, y0 (not x0, y0, z0). Frame 1: nothing active, masked out.
    # sum = (1 - 0.5)^2 + (0 - 0.2)^2 + (0 - 0.1)^2 = 0.30 over 3 masked values -> sqrt(0.30) / 3 in every frame.
    y_true = np.array([[[1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]]], np.float32)
    y_pred = np.array([[[0.5, 0.2, 0.1, 0.3, 0.4, 0.6], [0.9, 0.9, 0.9, 0.9, 0.9, 0.9]]], np.float32)
    loss = ops.convert_to_numpy(losses.masked_doa_mse(y_true, y_pred))
    np.testing.assert_allclose(loss, np.full((1, 2), np.sqrt(0.30) / 3), rtol=1e-6)
    # class 1 active at (0, 0, 1) too: mask [1 1 1 1 1 1]: every value, 6 of them
    y_true[0, 0, 5] = 1.0
    want = np.sqrt(0.25 + 0.04 + 0.01 + 0.09 + 0.16 + 0.16) / 6
    np.testing.assert_allclose(ops.convert_to_numpy(losses.masked_doa_mse(y_true, y_pred)), np.full((1, 2), want),
                               rtol=1e-6)
    # nothing active: 0, with a finite gradient (the official code would divide 0 by 0)
    zero = np.zeros_like(y_true)
    assert float(ops.convert_to_numpy(ops.mean(losses.masked_doa_mse(zero, y_pred)))) == 0.0
    if keras.backend.backend() != 'tensorflow':
        return
    import tensorflow as tf
    v = tf.Variable(y_pred)
    with tf.GradientTape() as tape:
        val = ops.mean(losses.masked_doa_mse(zero, v))
    assert np.isfinite(tape.gradient(val, v).numpy()).all()
    assert keras.saving.get_registered_object('seld>masked_doa_mse') is losses.masked_doa_mse


def test_dcase2020_baseline_compiles_the_masked_loss_and_others_refuse_it():
    import keras_model
    import parameter

    p = parameter.get_params('dcase2020_baseline')
    assert p['doa_loss'] == 'masked_mse' and parameter.get_params('1')['doa_loss'] == 'mse'
    model = keras_model.get_model(nb_frames=50, nb_bins=64, nb_maps=7, nb_channels=4, nb_classes=3,
                                  t_pool_size=[5, 1, 1], pool_size=[4, 4, 2], crnn='dcase2020', nb_cnn2d_filt=4,
                                  rnn_size=[8], fnn_size=[8], doa_loss='masked_mse')
    assert model.loss['doa_out'] is losses.masked_doa_mse
    with pytest.raises(SELDError, match='doa_loss=masked_mse: only for output=seldnet'):
        parameter.get_params('dcase2023_baseline', ['doa_loss=masked_mse'])


def test_one_instance_every_track_aims_at_it():
    # targets A0 A0 A0 = X, X, X; the output's errors 0, 2, 1 over 9 values
    np.testing.assert_allclose(adpit(target({0: X}), output(X, Y, (0, 0, 0))), [[[3 / 9]]], rtol=1e-6)


def test_two_instances_of_one_class_adpit_differs_from_a_plain_mse():
    """B0 = X, B1 = Y. The output (Y, X, (0.6, 0.4, 0)) matches the pattern B1 B0 B0 up to 0.32 on track 3:
    ADPIT gives 0.32 / 9, while a plain MSE against the fixed order B0 B0 B1 = (X, X, Y) gives
    (2 + 0 + 0.72) / 9."""
    t, o = target({1: X, 2: Y}), output(Y, X, (0.6, 0.4, 0))
    np.testing.assert_allclose(adpit(t, o), [[[0.32 / 9]]], rtol=1e-5)
    plain = np.mean((o.reshape(3, 3) - np.array([X, X, Y])) ** 2)
    np.testing.assert_allclose(plain, 2.72 / 9, rtol=1e-6)
    assert plain > 7 * adpit(t, o).item()
    assert adpit(t, output(Y, X, X)).item() == 0  # an exact permuted assignment costs nothing


def test_three_instances_any_order():
    t = target({3: X, 4: Y, 5: Z})
    assert adpit(t, output(Z, X, Y)).item() == 0  # C2 C0 C1
    # the best of the 6 orders for (Z, Y, X): C2 C1 C0 exactly
    assert adpit(t, output(Z, Y, X)).item() == 0
    # a duplicated track cannot match 3 distinct instances: (X, X, Y) is best as C0 C1 C2 with error 2 on track 2
    np.testing.assert_allclose(adpit(t, output(X, X, Z)), [[[2 / 9]]], rtol=1e-6)


def test_multi_accddoa_distance_is_part_of_each_track():
    """2024: (x, y, z, distance) per track; B0 = X at 2 m, B1 = Y at 3 m."""
    t = target({1: X + (2.0,), 2: Y + (3.0,)}, nb_values=4)
    o = output(Y + (3.0,), X + (2.0,), X + (2.5,))
    np.testing.assert_allclose(adpit(t, o), [[[0.25 / 12]]], rtol=1e-6)


def test_2025_outputs_x_y_distance_and_ignore_the_on_screen_value():
    """2025 audio: targets (act, x, y, distance, on-screen), outputs (x, y, distance): elements=3."""
    t = target({0: (0.6, 0.8, 1.5, 1.0)}, nb_values=4)
    o = output((0.6, 0.8, 1.5), (0.6, 0.8, 1.5), (0.6, 0.8, 1.0))
    np.testing.assert_allclose(adpit(t, o, nb_elements=3), [[[0.25 / 9]]], rtol=1e-6)


def brute_force_adpit(t: np.ndarray, o: np.ndarray) -> float:
    """From the definition: per frame and class, the instances (1, 2 or 3 active dummy tracks of one group) and
    every assignment of the 3 output tracks that covers them (1 for one, 6 for two, 6 for three); inactive
    classes aim every track at 0."""
    B, T, _, V, C = t.shape
    o = o.reshape(B, T, 3, V - 1, C)
    total = []
    for b, f, c in itertools.product(range(B), range(T), range(C)):
        act = t[b, f, :, 0, c] > 0
        vals = t[b, f, :, 1:, c]
        inst = [vals[k] for k in np.flatnonzero(act)]
        if len(inst) == 0:
            cands = [np.zeros((3, V - 1))]
        elif len(inst) == 1:
            cands = [np.stack([inst[0]] * 3)]
        elif len(inst) == 2:  # every track assignment using both instances
            cands = [np.stack([inst[i] for i in a]) for a in itertools.product((0, 1), repeat=3) if len(set(a)) == 2]
        else:
            cands = [np.stack([inst[i] for i in a]) for a in itertools.permutations(range(3))]
        total.append(min(np.mean((o[b, f, :, :, c] - cand) ** 2) for cand in cands))
    return float(np.mean(total))


@pytest.mark.parametrize('nb_values', [3, 4])
def test_adpit_equals_a_brute_force_reference_on_random_frames(nb_values):
    rng = np.random.default_rng(nb_values)
    B, T, C = 3, 7, 5
    t = np.zeros((B, T, 6, 1 + nb_values, C), np.float32)
    groups = rng.integers(0, 4, size=(B, T, C))  # none, A, B, C
    for g, tracks in ((1, [0]), (2, [1, 2]), (3, [3, 4, 5])):
        t[:, :, tracks, 0, :] = (groups == g)[:, :, None, :]
    t[:, :, :, 1:] = rng.normal(size=(B, T, 6, nb_values, C)) * t[:, :, :, :1]  # values where active, else 0
    o = rng.normal(size=(B, T, 3 * nb_values * C)).astype(np.float32)
    np.testing.assert_allclose(adpit(t, o).mean(), brute_force_adpit(t, o), rtol=1e-5)
    assert len(losses.PATTERNS) == 13
    # the Keras loss: per frame (the sample weights' shape), the mean over the classes
    per_frame = ops.convert_to_numpy(losses.adpit_mse(t, o))
    assert per_frame.shape == (B, T)
    np.testing.assert_allclose(per_frame, adpit(t, o).mean(axis=-1), rtol=1e-6)


def test_adpit_compares_the_values_the_output_has():
    """Targets of 4 values (2025: x, y, distance, on-screen) against an output of 3 per track: the first 3 are
    compared by default; an output whose size is not 3 tracks x elements x classes is an error."""
    t = target({0: (0.6, 0.8, 1.5, 1.0)}, nb_values=4)
    o = output((0.6, 0.8, 1.5), (0.6, 0.8, 1.5), (0.6, 0.8, 1.0))
    np.testing.assert_allclose(adpit(t, o), adpit(t, o, nb_elements=3), rtol=0)
    with pytest.raises(SELDError, match='not 3 tracks'):
        adpit(t, o[..., :8])
    with pytest.raises(SELDError, match='not 3 tracks'):
        adpit(t, o, nb_elements=4)


@pytest.mark.skipif(keras.backend.backend() != 'tensorflow', reason='gradient via tf.GradientTape')
def test_gradient_flows_through_the_selected_pattern_only():
    import tensorflow as tf

    t, o = target({1: X, 2: Y}), tf.Variable(output(Y, X, (0.6, 0.4, 0)))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(losses.adpit_mse(tf.constant(t), o))
    grad = tape.gradient(loss, o).numpy().reshape(3, 3)
    best = np.array([Y, X, X])  # the pattern B1 B0 B0
    np.testing.assert_allclose(grad, 2 * (output(Y, X, (0.6, 0.4, 0)).reshape(3, 3) - best) / 9, atol=1e-7)


def test_multitrack_labels_hold_up_to_three_instances_of_one_class():
    """Metadata rows (frame, class, values): frame 0 class 2 alone -> track 0; frame 1 class 0 twice (rows 1, 3,
    another class between them) -> tracks 1, 2 in row order, class 1 alone -> track 0; frame 2 class 0 four times ->
    the first three on tracks 3, 4, 5; frame 9 is past the end and dropped."""
    frame = [0, 1, 1, 1, 2, 2, 2, 2, 9]
    cls = [2, 0, 1, 0, 0, 0, 0, 0, 1]
    vals = np.arange(9 * 4, dtype=float).reshape(9, 4) / 10  # x, y, z, distance
    lab = adpit_labels(frame, cls, vals, nb_frames=3, nb_classes=3)
    assert lab.shape == (3, 6, 5, 3) and lab.dtype == np.float32
    expected = np.zeros_like(lab)
    for f, k, c, row in [(0, 0, 2, 0), (1, 1, 0, 1), (1, 2, 0, 3), (1, 0, 1, 2), (2, 3, 0, 4), (2, 4, 0, 5),
                         (2, 5, 0, 6)]:
        expected[f, k, 0, c] = 1
        expected[f, k, 1:, c] = vals[row]
    np.testing.assert_array_equal(lab, expected)
    # the loss on these labels: an output that puts row 3 on track 0 and row 1 on tracks 1 and 2 costs 0 at frame 1
    out = np.zeros((1, 3, 3, 4, 3), np.float32)
    out[0, 1, :, :, 0] = [vals[3], vals[1], vals[1]]
    out[0, 1, :, :, 1] = vals[2]
    per = adpit(lab[None], out.reshape(1, 3, -1))
    assert per[0, 1].tolist() == [0, 0, 0]


def test_multitrack_labels_reject_bad_rows():
    with pytest.raises(SELDError, match='classes must be in 0 .. 2'):
        adpit_labels([0], [3], [[0, 0, 1]], nb_frames=2, nb_classes=3)
    with pytest.raises(SELDError, match='one row per instance'):
        adpit_labels([0, 1], [0], [[0, 0, 1]], nb_frames=2, nb_classes=3)

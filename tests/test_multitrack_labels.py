"""multitrack_labels.py: the targets of every output at the output rate, against hand-built references.

(:func:`multitrack_labels.adpit_labels` alone: tests/test_losses.py.)
"""
from __future__ import annotations

import numpy as np
import pytest

import label_frames
from label_frames import desc_to_labels, instances_to_labels
from multitrack_labels import label_rate_factor, output_layout, output_target, target_shape
from utils import SELDError

C = 3  # classes of the hand-built references


def unit(azi_deg: float, ele_deg: float) -> np.ndarray:
    a, e = np.deg2rad(azi_deg), np.deg2rad(ele_deg)
    return np.array([np.cos(a) * np.cos(e), np.sin(a) * np.cos(e), np.sin(e)])


# rows of a DCASE file at 100 ms (frame, class, track, azi, ele, dist in m), in file order
ROWS = [(0, 2, 0, 10, 0, 1.0),
        (1, 1, 0, 90, 0, 2.0), (1, 1, 1, -90, 0, 3.0),  # two instances of class 1: B0, B1
        (2, 1, 0, 0, 0, 4.0), (2, 0, 0, 45, 20, 5.0), (2, 1, 2, 180, 0, 6.0), (2, 1, 1, 0, 90, 7.0),  # three: C0-C2
        (3, 1, 0, 30, -10, 8.0)]


def instances(rows=ROWS) -> label_frames.Instances:
    arr = np.array(rows, dtype=float)
    return label_frames.Instances(arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2].astype(np.int64),
                                  np.array([unit(a, e) for a, e in arr[:, 3:5]]), arr[:, 5])


def test_target_shapes():
    assert target_shape('seldnet', nb_classes=13) == (52,)
    assert target_shape('accdoa', nb_classes=13) == (39,)
    assert target_shape('multi_accdoa', nb_classes=13) == (6, 4, 13)
    assert target_shape('multi_accddoa', nb_classes=13) == (6, 5, 13)
    with pytest.raises(SELDError, match="output='adpit'"):
        target_shape('adpit', nb_classes=13)


@pytest.mark.parametrize('output', ['multi_accdoa', 'multi_accddoa'])
def test_multitrack_target_keeps_two_and_three_instances_of_one_class(output):
    """Frame 0: class 2 alone (A0). Frame 1: class 1 twice (B0 = row 1, B1 = row 2). Frame 2: class 1 three times,
    another class between them (C0, C1, C2 = rows 3, 5, 6 in file order), class 0 alone (A0). Frame 3: A0."""
    target = output_target(instances(), output=output, nb_classes=C, nb_frames=5, frame_rate=10.0, label_rate=10.0)
    extra = output == 'multi_accddoa'
    assert target.shape == (5, 6, 5 if extra else 4, C) and target.dtype == np.float32
    expected = np.zeros(target.shape, np.float32)
    for frame, track, cls, row in [(0, 0, 2, 0), (1, 1, 1, 1), (1, 2, 1, 2), (2, 3, 1, 3), (2, 4, 1, 5),
                                   (2, 5, 1, 6), (2, 0, 0, 4), (3, 0, 1, 7)]:
        f, c, _, azi, ele, dist = ROWS[row]
        assert (f, c) == (frame, cls)
        expected[frame, track, 0, cls] = 1
        expected[frame, track, 1:4, cls] = unit(azi, ele)
        if extra:
            expected[frame, track, 4, cls] = dist
    np.testing.assert_allclose(target, expected, atol=1e-7)


def test_accdoa_target_is_activity_times_direction_and_the_last_row_of_a_class_wins():
    """The official 2021 rule: the rows of a frame overwrite one (frame, class) cell in file order."""
    target = output_target(instances(), output='accdoa', nb_classes=C, nb_frames=5, frame_rate=10.0, label_rate=10.0)
    assert target.shape == (5, 3 * C)
    expected = np.zeros((5, 3, C))  # (frame, x|y|z, class)
    for frame, cls, row in [(0, 2, 0), (1, 1, 2), (2, 1, 6), (2, 0, 4), (3, 1, 7)]:  # last rows of each cell
        expected[frame, :, cls] = unit(*ROWS[row][3:5])
    np.testing.assert_allclose(target, expected.reshape(5, 3 * C), atol=1e-7)
    # frame 1, class 1: rows (90, 0) then (-90, 0): the target is (0, -1, 0), not their mean (0, 0, 0)
    np.testing.assert_allclose(target[1, [1, C + 1, 2 * C + 1]], [0, -1, 0], atol=1e-7)


def test_accdoa_of_a_known_event_in_seconds():
    """An event of class 2 from 0.25 s to 0.55 s at azimuth 90, elevation 0, output at 10 frames/s: frames
    floor(2.5) = 2 to ceil(5.5) = 6 hold (x, y, z) = (0, 1, 0) in class 2's columns."""
    ev = label_frames.Events(np.array([2]), np.array([0.25]), np.array([0.55]), np.array([90.0]), np.array([0.0]),
                             np.array([2.0]), ['x'])
    target = output_target(ev, output='accdoa', nb_classes=C, nb_frames=9, frame_rate=10.0)
    expected = np.zeros((9, 3 * C), np.float32)
    expected[2:7, C + 2] = 1.0
    np.testing.assert_allclose(target, expected, atol=1e-7)


def test_event_in_seconds_framed_at_a_pooled_rate_by_hand():
    """TUT-2018 framing: 44100 / 256 = 172.265625 frames/s, pooled by 8: 21.533203125 output frames/s. An event from
    0.1 s to 0.5 s is active in output frames floor(2.1533) = 2 to ceil(10.7666) = 11; one from 0.3 s to 0.35 s
    (on two instances: the same class overlapping the first) in floor(6.46) = 6 to ceil(7.54) = 8."""
    rate = 44100 / 256 / 8
    ev = label_frames.Events(np.array([1, 1]), np.array([0.1, 0.3]), np.array([0.5, 0.35]), np.array([0.0, 90.0]),
                             np.array([0.0, 0.0]), np.array([1.0, 2.0]), ['a', 'b'])
    target = output_target(ev, output='multi_accddoa', nb_classes=C, nb_frames=22, frame_rate=rate)
    act = target[:, :, 0, 1]  # (frames, dummy tracks) of class 1
    first_alone = np.r_[2:6, 9:12]
    assert act[first_alone, 0].all() and act[first_alone, 1:].sum() == 0
    assert (act[6:9, 1:3] == 1).all() and act[6:9, [0, 3, 4, 5]].sum() == 0  # B0, B1: rows in file order
    np.testing.assert_allclose(target[7, 1, 1:, 1], [1, 0, 0, 1.0], atol=1e-7)
    np.testing.assert_allclose(target[7, 2, 1:, 1], [0, 1, 0, 2.0], atol=1e-7)
    assert act.sum() == 7 + 2 * 3 and not act[:2].any() and not act[12:].any()


def test_frame_metadata_at_a_multiple_of_the_label_rate_repeats_each_label_frame():
    """Output at 50 frames/s (20 ms frames, no time pooling) from 100 ms labels: output frame k is label frame
    floor(k / 5), every instance kept."""
    lab = output_target(instances(), output='multi_accdoa', nb_classes=C, nb_frames=5, frame_rate=10.0,
                        label_rate=10.0)
    fine = output_target(instances(), output='multi_accdoa', nb_classes=C, nb_frames=23, frame_rate=50.0,
                         label_rate=10.0)
    np.testing.assert_array_equal(fine, np.repeat(lab, 5, axis=0)[:23])


def test_seldnet_target_without_pooling_is_the_stored_label():
    inst = instances()
    for ref, kw in [(inst, dict(label_rate=10.0)),
                    (label_frames.Events(np.array([0, 2]), np.array([0.1, 0.2]), np.array([0.3, 0.6]),
                                         np.array([10.0, -40.0]), np.array([5.0, 0.0]), np.array([1.0, 1.0]),
                                         ['a', 'b']), {})]:
        target = output_target(ref, output='seldnet', nb_classes=C, nb_frames=40, frame_rate=50.0, **kw)
        label = (instances_to_labels(ref, nb_classes=C, nb_frames=40, frame_rate=50.0, label_rate=10.0) if kw
                 else desc_to_labels(ref, nb_classes=C, nb_frames=40, frame_rate=50.0))
        np.testing.assert_array_equal(target, label)


def test_output_rate_must_be_the_label_rate_or_a_whole_multiple():
    assert label_rate_factor(output_rate=10.0, label_rate=10.0) == 1
    assert label_rate_factor(output_rate=50.0, label_rate=10.0) == 5
    for bad in (5.0, 12.5):
        with pytest.raises(SELDError, match=f'output rate {bad:g} frames/s: must be the label rate 10'):
            label_rate_factor(output_rate=bad, label_rate=10.0)
    layout = output_layout(output='multi_accdoa', t_pool_size=[5, 1, 1], frame_rate=50.0, nb_classes=13,
                           label_rate=10.0)
    assert (layout.frames_per_output, layout.output_rate, layout.target_shape) == (5, 10.0, (6, 4, 13))
    assert layout.has_target and layout.nb_frames(101) == 21
    with pytest.raises(SELDError, match=r't_pool_size=\[10, 1, 1\]: 50 feature frames/s pooled by 10: output rate 5'):
        output_layout(output='accdoa', t_pool_size=[10, 1, 1], frame_rate=50.0, nb_classes=13, label_rate=10.0)
    with pytest.raises(SELDError, match=r't_pool_size=\[0\]: must be a list of positive integers'):
        output_layout(output='accdoa', t_pool_size=[0], frame_rate=50.0, nb_classes=13)
    plain = output_layout(output='seldnet', t_pool_size=None, frame_rate=50.0, nb_classes=13, label_rate=10.0)
    assert not plain.has_target and plain.nb_frames(101) == 101


def test_distances_and_directions_are_required_where_used():
    no_dist = instances()._replace(dist=None)
    with pytest.raises(SELDError, match='meta.csv: no distances: output=multi_accddoa needs'):
        output_target(no_dist, output='multi_accddoa', nb_classes=C, nb_frames=5, frame_rate=10.0, label_rate=10.0,
                      where='meta.csv')
    assert output_target(no_dist, output='multi_accdoa', nb_classes=C, nb_frames=5, frame_rate=10.0,
                         label_rate=10.0).shape == (5, 6, 4, C)
    flat = no_dist._replace(vec=no_dist.vec[:, :2])
    with pytest.raises(SELDError, match='the targets need x, y, z'):
        output_target(flat, output='accdoa', nb_classes=C, nb_frames=5, frame_rate=10.0, label_rate=10.0)

"""The baselines' inference (dcase_outputs.py): hand-computed cases, a slow reference written as the official loop
(``test_epoch`` of seld-dcase2022 ... DCASE2024, ``get_output_dict_format_multi_accdoa`` of DCASE2025), properties,
and the writers against hand-written files and the readers of formats.py."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import formats
from dcase_outputs import decode, scalar_square, write_instances
from label_frames import Instances, unit
from scoring import SELDScorer


def vec_at(deg: float, length: float = 1.0) -> tuple[float, float, float]:
    """A horizontal vector at azimuth ``deg``."""
    return (length * math.cos(math.radians(deg)), length * math.sin(math.radians(deg)), 0.0)


def frame_of(tracks: list[tuple], *, classes: int = 1, cls: int = 0) -> np.ndarray:
    """One frame of a 3-track output for one class (the others silent): each track's values (x, y, z[, dist]), put at
    the official slices: track k, element e, class c at column (k * elements + e) * classes + c (``x0 =
    accdoa_in[:, :, :C]``, ``y0 = [C:2C]`` ... ``x1 = [3C:4C]`` in get_multi_accdoa_labels)."""
    E = len(tracks[0])
    out = np.zeros((1, len(tracks) * E * classes), np.float64)
    for k, values in enumerate(tracks):
        for e, v in enumerate(values):
            out[0, (k * E + e) * classes + cls] = v
    return out


OFF = (0.1, 0.0, 0.0)  # an inactive track


# ==================================================================================================
# Activity
# ==================================================================================================
@pytest.mark.parametrize('v, active', [((0.294, 0.0, 0.392), False),   # |v| = 0.49
                                      ((0.0, 0.0, -0.5), False),      # exactly 0.5: not above
                                      ((0.306, 0.0, 0.408), True),    # 0.51
                                      ((0.78, 0.0, -1.04), True)])    # 1.3
def test_accdoa_activity_is_the_vector_length_above_the_threshold(v, active):
    pred = np.zeros((2, 3 * 2))  # 2 frames, 2 classes; frame 1, class 1 holds v: x1 at column 1, y1 3, z1 5
    pred[1, [1, 3, 5]] = v
    inst = decode(pred, output='accdoa', nb_classes=2)
    if active:
        assert inst.frame.tolist() == [1] and inst.cls.tolist() == [1] and inst.track.tolist() == [0]
        np.testing.assert_array_equal(inst.vec, [v])  # the official vector as it is, not normalized
        assert inst.dist is None
    else:
        assert inst.frame.size == 0 and inst.vec.shape == (0, 3)


def test_threshold_is_a_parameter():
    pred = frame_of([(0.3, 0.0, 0.0)])[:, :3]
    assert decode(pred, output='accdoa', nb_classes=1).frame.size == 0
    assert decode(pred, output='accdoa', nb_classes=1, threshold=0.25).frame.size == 1


# ==================================================================================================
# Unification of similar tracks
# ==================================================================================================
def test_two_tracks_10_degrees_apart_are_one_event_their_mean():
    v0, v1 = vec_at(0), vec_at(10, 0.8)
    inst = decode(frame_of([v0, v1, OFF]), output='multi_accdoa', nb_classes=1)
    assert inst.frame.tolist() == [0] and inst.track.tolist() == [0]
    np.testing.assert_allclose(inst.vec, [[(1 + 0.8 * math.cos(math.radians(10))) / 2,
                                           0.8 * math.sin(math.radians(10)) / 2, 0]], rtol=1e-15)


def test_two_tracks_40_degrees_apart_are_two_events():
    v0, v2 = vec_at(0), vec_at(40, 0.7)
    inst = decode(frame_of([v0, OFF, v2]), output='multi_accdoa', nb_classes=1)
    assert inst.track.tolist() == [0, 2]
    np.testing.assert_array_equal(inst.vec, [v0, v2])


def test_thresh_unify_is_the_angle_limit():
    pred = frame_of([vec_at(0), vec_at(40), OFF])
    assert decode(pred, output='multi_accdoa', nb_classes=1).frame.size == 2
    assert decode(pred, output='multi_accdoa', nb_classes=1, thresh_unify=45).frame.size == 1
    near = frame_of([vec_at(0), vec_at(14.9), OFF]), frame_of([vec_at(0), vec_at(15.1), OFF])
    assert [decode(p, output='multi_accdoa', nb_classes=1).frame.size for p in near] == [1, 2]


# (tracks' azimuths or None for inactive) -> expected rows: (track number, mean of which tracks)
THREE_TRACK_CASES = [
    ((0, 90, 200), [(0, [0]), (1, [1]), (2, [2])]),   # no similar pair: every track, in track order
    ((0, 5, 90), [(2, [2]), (0, [0, 1])]),            # 0~1: track 2 first, then the pair (flag_0sim1)
    ((90, 0, 5), [(0, [0]), (1, [1, 2])]),            # 1~2 (flag_1sim2)
    ((5, 90, 0), [(1, [1]), (2, [0, 2])]),            # 2~0 (flag_2sim0): the pair takes track 2's number
    ((0, 5, 10), [(0, [0, 1, 2])]),                    # three similar pairs: one event, the mean of three
    ((0, 10, 20), [(0, [0, 1, 2])]),                   # 0~1, 1~2 but 0 and 2 are 20 deg apart: still one event
    ((0, None, 5), [(2, [0, 2])]),                     # a pair around an inactive track
    ((None, None, 30), [(2, [2])]),
    ((None, None, None), []),
]


@pytest.mark.parametrize('azimuths, expected', THREE_TRACK_CASES)
def test_three_tracks_follow_the_official_pairwise_rules(azimuths, expected):
    lengths = (0.9, 0.7, 0.6)
    vecs = [vec_at(a, l) if a is not None else OFF for a, l in zip(azimuths, lengths)]
    inst = decode(frame_of(vecs), output='multi_accdoa', nb_classes=1)
    assert inst.track.tolist() == [t for t, _ in expected]
    want = [np.mean([vecs[k] for k in members], axis=0) for _, members in expected]
    np.testing.assert_allclose(inst.vec, np.reshape(want, (-1, 3)), rtol=1e-14, atol=1e-15)


def test_classes_and_frames_are_decoded_independently():
    C = 3
    pred = np.concatenate([frame_of([vec_at(0), vec_at(5), OFF], classes=C, cls=2),
                           frame_of([vec_at(0), OFF, vec_at(60)], classes=C, cls=0)
                           + frame_of([vec_at(100), OFF, OFF], classes=C, cls=1)])
    inst = decode(pred, output='multi_accdoa', nb_classes=C)
    assert list(zip(inst.frame.tolist(), inst.cls.tolist(), inst.track.tolist())) == [(0, 2, 0), (1, 0, 0),
                                                                                      (1, 0, 2), (1, 1, 0)]


# ==================================================================================================
# Distances and the 2025 layout
# ==================================================================================================
def test_multi_accddoa_carries_distances_and_averages_unified_ones():
    # x, y, z, distance per track (2024): dist of track k at column (4k + 3) * C + c
    pred = frame_of([(*vec_at(0), 2.0), (*vec_at(8), 3.0), (*vec_at(90), 4.5)])
    inst = decode(pred, output='multi_accddoa', nb_classes=1)
    assert inst.track.tolist() == [2, 0]
    np.testing.assert_allclose(inst.dist, [4.5, 2.5])
    neg = decode(frame_of([(*vec_at(0), -1.0), (*vec_at(8), 2.0), (*OFF, 9.0)]), output='multi_accddoa',
                 nb_classes=1)
    np.testing.assert_allclose(neg.dist, [1.0])  # -1 is set to 0 before the mean (dist[dist < 0.] = 0.)


def test_2025_layout_is_x_y_distance_per_track_and_activity_ignores_the_distance():
    C = 2
    # DCASE2025 get_multiaccdoa_labels: x1 = logits[3C:4C], y1 = [4C:5C], dist1 = [5C:6C]
    pred = np.zeros((1, 9 * C), np.float32)
    pred[0, 3 * C + 1], pred[0, 4 * C + 1], pred[0, 5 * C + 1] = 0.4, 0.4, 2.5   # track 1, class 1: active
    pred[0, 6 * C + 0], pred[0, 7 * C + 0], pred[0, 8 * C + 0] = 0.3, 0.3, 9.0   # |(x, y)| 0.42: inactive
    inst = decode(pred, output='multi_accddoa', nb_classes=C, azi_only=True)
    assert inst.cls.tolist() == [1] and inst.track.tolist() == [1]
    np.testing.assert_allclose(inst.vec, [[0.4, 0.4]])
    np.testing.assert_allclose(inst.dist, [2.5])


def test_2025_unifies_by_azimuth():
    pred = np.concatenate([frame_of([(*vec_at(a)[:2], d) for a, d in ((0, 1.0), (12, 2.0), (100, 3.0))])])
    inst = decode(pred, output='multi_accddoa', nb_classes=1, azi_only=True)
    assert inst.track.tolist() == [2, 0]
    np.testing.assert_allclose(inst.dist, [3.0, 1.5])


# ==================================================================================================
# A slow reference: the official loop, frame by frame, on NumPy scalars
# ==================================================================================================
def official_loop(pred: np.ndarray, C: int, *, azi_only: bool, has_dist: bool, thresh_unify: float) -> list:
    """The loop of the official test_epoch / get_output_dict_format_multi_accdoa, written out as it is."""
    d = 2 if azi_only else 3
    E = d + has_dist

    def angle(a, b):  # distance_between_cartesian_coordinates
        n1 = np.sqrt(sum(x ** 2 for x in a) + 1e-10)
        n2 = np.sqrt(sum(x ** 2 for x in b) + 1e-10)
        dot = sum(x / n1 * (y / n2) for x, y in zip(a, b))
        return np.arccos(np.clip(dot, -1, 1)) * 180 / np.pi

    rows = []
    for f in range(pred.shape[0]):
        for c in range(C):
            v = [[pred[f, (k * E + e) * C + c] for e in range(d)] for k in range(3)]
            dist = [max(pred[f, (k * E + d) * C + c], 0) if has_dist else 0.0 for k in range(3)]
            act = [np.sqrt(sum(x * x for x in v[k])) > 0.5 for k in range(3)]  # on arrays: x**2 squares
            sim = {p: act[p[0]] and act[p[1]] and angle(v[p[0]], v[p[1]]) < thresh_unify
                   for p in ((0, 1), (1, 2), (2, 0))}
            n = sum(sim.values())
            if n == 0:
                rows += [(f, c, v[k], dist[k]) for k in range(3) if act[k]]
            elif n == 1:
                (i, j), = [p for p, s in sim.items() if s]
                k = 3 - i - j
                if act[k]:
                    rows.append((f, c, v[k], dist[k]))
                rows.append((f, c, [(a + b) / 2 for a, b in zip(v[i], v[j])], (dist[i] + dist[j]) / 2))
            else:
                rows.append((f, c, [(a + b + e) / 3 for a, b, e in zip(*v)], (dist[0] + dist[1] + dist[2]) / 3))
    return rows


def hard_output(seed: int, frames: int, C: int, E: int, d: int) -> np.ndarray:
    """Tracks often close to one another and to the threshold."""
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(frames, 3, E, C))
    v[:, 1:, :d] = v[:, :1, :d] + rng.normal(scale=0.2, size=(frames, 2, d, C)) * rng.uniform(size=(frames, 2, 1, C))
    length = np.linalg.norm(v[:, :, :d], axis=2, keepdims=True)
    v[:, :, :d] *= rng.uniform(0.3, 0.8, size=length.shape) / length
    return v.reshape(frames, -1)


@pytest.mark.parametrize('output, azi_only', [('multi_accdoa', False), ('multi_accddoa', False),
                                              ('multi_accddoa', True)])
def test_decode_equals_the_official_loop(output, azi_only):
    C, frames = 4, 200
    d = 2 if azi_only else 3
    E = d + (output == 'multi_accddoa')
    pred = hard_output(0, frames, C, E, d).astype(np.float32)
    ref = official_loop(pred, C, azi_only=azi_only, has_dist=E > d, thresh_unify=15.0)
    inst = decode(pred, output=output, nb_classes=C, azi_only=azi_only)
    assert len(ref) > frames and len({(r[0], r[1]) for r in ref}) < len(ref)  # same-class rows were produced
    assert list(zip(inst.frame.tolist(), inst.cls.tolist())) == [(r[0], r[1]) for r in ref]
    np.testing.assert_array_equal(inst.vec, np.array([r[2] for r in ref], np.float64))
    if E > d:
        np.testing.assert_array_equal(inst.dist, np.array([r[3] for r in ref], np.float64))


def test_scalar_square_is_numpy_scalar_power():
    x = np.random.default_rng(1).uniform(-1, 1, 5000).astype(np.float32)
    np.testing.assert_array_equal(scalar_square(x), np.array([v ** 2 for v in x], np.float32))


# ==================================================================================================
# Properties
# ==================================================================================================
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 31 - 1), perm=st.permutations([0, 1, 2]),
       output=st.sampled_from(['multi_accdoa', 'multi_accddoa']))
def test_the_instances_do_not_depend_on_the_track_order(seed, perm, output):
    C, frames, E = 3, 30, 3 + (output == 'multi_accddoa')
    pred = hard_output(seed, frames, C, E, 3)
    swapped = pred.reshape(frames, 3, E * C)[:, list(perm)].reshape(frames, -1)
    a = decode(pred, output=output, nb_classes=C)
    b = decode(swapped, output=output, nb_classes=C)

    def rows(inst):  # the instances as a sorted list, the track numbers and row order left out
        cols = [inst.frame, inst.cls, *inst.vec.T] + ([] if inst.dist is None else [inst.dist])
        return np.array(sorted(zip(*[c.tolist() for c in cols])))

    ra, rb = rows(a), rows(b)
    assert ra.shape == rb.shape
    np.testing.assert_allclose(ra, rb, rtol=0, atol=1e-12)  # (v0 + v1 + v2) / 3 may round differently


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2 ** 31 - 1))
def test_one_active_track_per_class_is_never_unified(seed):
    rng = np.random.default_rng(seed)
    C, frames = 2, 20
    pred = rng.normal(size=(frames, 3, 3, C))
    pred[:, 1:] *= 0.05  # tracks 1 and 2 below the threshold
    pred = pred.reshape(frames, -1)
    inst = decode(pred, output='multi_accdoa', nb_classes=C)
    single = decode(pred[:, :3 * C], output='accdoa', nb_classes=C)
    for field in ('frame', 'cls', 'track', 'vec'):
        np.testing.assert_array_equal(getattr(inst, field), getattr(single, field))


# ==================================================================================================
# Errors
# ==================================================================================================
@pytest.mark.parametrize('pred, kw, match', [
    (np.zeros((4, 10)), dict(output='multi_accdoa', nb_classes=2),
     r'\(frames, 3 tracks x 3 elements x 2 classes = 18\)'),
    (np.zeros((4, 6)), dict(output='seldnet', nb_classes=2), 'seldnet has two outputs'),
    (np.full((1, 3), np.nan), dict(output='accdoa', nb_classes=1), 'finite'),
    (np.zeros((1, 9)), dict(output='multi_accdoa', nb_classes=1, thresh_unify=200),
     r'thresh_unify=200 must be in \[0, 180\]'),
    (np.zeros((1, 3)), dict(output='accdoa', nb_classes=1, threshold=-1), 'threshold=-1 must be'),
])
def test_bad_input_is_named(pred, kw, match):
    with pytest.raises(ValueError, match=match):
        decode(pred, **kw)


# ==================================================================================================
# Writing, reading back, scoring
# ==================================================================================================
def sample_instances() -> Instances:
    return Instances(np.array([0, 0, 3]), np.array([1, 1, 0]), np.array([2, 0, 1]),
                     np.array([[0.0, 0.5, 0.0], [0.3, 0.0, -0.4], [-0.6, 0.0, 0.0]]), np.array([1.5, 0.25, 3.0]))


def test_dcase2020_and_2024_files_as_the_baselines_write_them(tmp_path):
    inst = sample_instances()
    write_instances(tmp_path / 'a.csv', inst, fmt='dcase2020')
    assert (tmp_path / 'a.csv').read_text() == '0,1,2,0.0,0.5,0.0\n0,1,0,0.3,0.0,-0.4\n3,0,1,-0.6,0.0,0.0\n'
    write_instances(tmp_path / 'b.csv', inst, fmt='dcase2024')
    assert (tmp_path / 'b.csv').read_text() == ('0,1,2,0.0,0.5,0.0,1.5\n0,1,0,0.3,0.0,-0.4,0.25\n'
                                                '3,0,1,-0.6,0.0,0.0,3.0\n')
    write_instances(tmp_path / 'c.csv', inst, fmt='dcase2020', coords='polar')
    rows = [[float(x) for x in line.split(',')] for line in (tmp_path / 'c.csv').read_text().splitlines()]
    np.testing.assert_allclose(np.array(rows)[:, 3:], [[90, 0], [0, math.degrees(math.atan2(-0.4, 0.3))],
                                                        [180, 0]], atol=1e-12)


def test_dcase2025_file_rounds_as_python_round(tmp_path):
    inst = Instances(np.array([0, 2]), np.array([4, 0]), np.array([0, 1]), np.array([[1.0, 1.0], [0.0, -2.0]]),
                     np.array([0.125, 0.375]))
    write_instances(tmp_path / 'p.csv', inst, fmt='dcase2025')
    # 45 deg; 12.5 cm -> 12 and 37.5 cm -> 38 (halves to even, as round()); -90 deg
    assert (tmp_path / 'p.csv').read_text() == ('frame,class,source,azimuth,distance,onscreen\n'
                                                '0,4,0,45,12,0\n2,0,1,-90,38,0\n')


@pytest.mark.parametrize('fmt, coords', [('dcase2020', 'cartesian'), ('dcase2020', 'polar'),
                                         ('dcase2024', 'cartesian'), ('dcase2024', 'polar')])
def test_written_files_read_back_as_the_instances(tmp_path, fmt, coords):
    inst = sample_instances()
    write_instances(tmp_path / 'p.csv', inst, fmt=fmt, coords=coords)
    back = formats.read_instances(tmp_path / 'p.csv', fmt=fmt, nb_classes=2)
    for field in ('frame', 'cls', 'track'):
        np.testing.assert_array_equal(getattr(back, field), getattr(inst, field))
    np.testing.assert_allclose(back.vec, unit(inst.vec), atol=1e-12)
    if fmt == 'dcase2024':
        np.testing.assert_array_equal(back.dist, inst.dist)
    else:
        assert back.dist is None


def test_writers_refuse_what_the_format_cannot_hold(tmp_path):
    inst = sample_instances()._replace(dist=None)
    for fmt in ('dcase2024', 'dcase2025'):
        with pytest.raises(ValueError, match='needs one distance per instance'):
            write_instances(tmp_path / 'p.csv', inst, fmt=fmt)
    with pytest.raises(ValueError, match="fmt='dcase2019' must be one of"):
        write_instances(tmp_path / 'p.csv', inst, fmt='dcase2019')
    assert not (tmp_path / 'p.csv').exists()


def test_decoded_same_class_sources_score_perfectly():
    """Two sources of one class 60 deg apart with distances, encoded on tracks 1 and 2 over 20 frames (100 ms):
    decode gives both, and the 2024 metric on them against the reference is perfect."""
    frames, C = 20, 2  # class 0 active too (a class absent from both sides scores F 0 in the macro average)
    a, b, c = vec_at(30), vec_at(90), vec_at(-45)
    one = (frame_of([(*OFF, 0.0), (*a, 2.0), (*b, 3.5)], classes=C, cls=1)
           + frame_of([(*c, 1.0), (*OFF, 0.0), (*OFF, 0.0)], classes=C, cls=0))
    pred = np.repeat(one, frames, axis=0).astype(np.float32)
    inst = decode(pred, output='multi_accddoa', nb_classes=C)
    ref = Instances(np.repeat(np.arange(frames), 3), np.tile([0, 1, 1], frames), np.tile([0, 0, 1], frames),
                    np.tile([c, a, b], (frames, 1)), np.tile([1.0, 2.0, 3.5], frames))
    assert inst.frame.size == 3 * frames
    scorer = SELDScorer(classes=['a', 'b'], prediction_rate=10.0, reference_rate=10.0,
                        definitions=['dcase2022', 'dcase2024'])
    scorer.add_instances('rec', ref, inst, duration_s=frames / 10, nb_frames=frames)
    res = scorer.results()
    assert res['dcase2024']['f_score'] == 1.0 and res['dcase2024']['relative_distance_error'] < 1e-6
    assert res['dcase2024']['doa_error'] < 0.01 and res['dcase2022']['localization_error'] < 0.01

"""The extraction's targets of the DCASE baselines' outputs (target/, cls_feature_class.py) and the generator's
batches of them (cls_data_generator.py), on the hand-made fixtures: metadata written by hand, features that show
where each tone is."""
from __future__ import annotations

import os

import numpy as np
import pytest

import augmentation
import batch_feature_extraction
import parameter
import utils
from cls_data_generator import DataGenerator
from cls_feature_class import FeatureClass, load_scaler
from utils import SELDError

import dcase_fixture
import tut_fixture

C = 13  # STARSS classes


def unit(azi_deg: float, ele_deg: float) -> np.ndarray:
    a, e = np.deg2rad(azi_deg), np.deg2rad(ele_deg)
    return np.array([np.cos(a) * np.cos(e), np.sin(a) * np.cos(e), np.sin(e)])


# a test recording's metadata, rewritten by hand (frame, class, source, azi, ele, dist in cm), in file order
SAME_CLASS_ROWS = [(1, 7, 0, 20, 0, 100),
                   (3, 7, 0, 30, 0, 110), (3, 2, 5, -45, 10, 250), (3, 7, 4, -60, 0, 120),  # class 7 twice
                   (4, 7, 0, 40, 0, 130), (4, 7, 4, -70, 0, 140), (4, 7, 9, 180, 20, 150)]  # three times


@pytest.fixture(scope='module')
def starss(tmp_path_factory):
    """The STARSS23 look-alike with distances; its first test recording gets the metadata above."""
    root = str(tmp_path_factory.mktemp('starss') / 'ds')
    dcase_fixture.make_dataset(root, 'starss23', dist=True)
    meta = os.path.join(root, 'metadata_dev', 'dev-test-sony', 'fold4_room23_mix001.csv')
    with open(meta) as f:
        original = f.read()
    with open(meta, 'w') as f:
        f.write(''.join(f'{",".join(map(str, r))}\n' for r in SAME_CLASS_ROWS))
    return dict(root=root, feat=str(tmp_path_factory.mktemp('feat')), original=original)


def params(starss, **kw):
    return parameter.get_params('starss23', dict(dict(dataset_dir=starss['root'], feat_label_dir=starss['feat'],
                                                      sequence_length=50, batch_size=4, t_pool_size=[5, 1, 1]), **kw))


@pytest.fixture(scope='module')
def accddoa(starss):
    p = params(starss, output='multi_accddoa')
    batch_feature_extraction.extract(p, progress=False)
    return p


def test_extraction_writes_every_same_class_instance_at_the_label_rate(starss, accddoa):
    fc = FeatureClass(accddoa)
    target = np.load(os.path.join(fc.feat_label_dir, 'target', 'fold4_room23_mix001.npy'))
    assert target.shape == (20, 6, 5, C) and target.dtype == np.float32  # 2 s: 100 feature frames, 20 at 100 ms
    expected = np.zeros_like(target)
    for frame, track, row in [(1, 0, 0), (3, 1, 1), (3, 0, 2), (3, 2, 3), (4, 3, 4), (4, 4, 5), (4, 5, 6)]:
        f, c, _, azi, ele, cm = SAME_CLASS_ROWS[row]
        expected[f, track, 0, c] = 1
        expected[f, track, 1:, c] = [*unit(azi, ele), cm / 100]  # A0; B0, B1; C0, C1, C2; distances in metres
    np.testing.assert_allclose(target, expected, atol=1e-6)
    made = utils.read_json(fc.manifest_file)['config']['target']
    assert made == dict(output='multi_accddoa', frames_per_output=5, output_rate=10.0, target_shape=[6, 5, C])


def test_accdoa_keeps_the_last_instance_of_a_class(starss):
    p = params(starss, output='accdoa', feat_label_dir=starss['feat'] + '_accdoa')
    fc = batch_feature_extraction.extract(p, progress=False)
    target = np.load(fc.paths('fold4_room23_mix001')['target'])
    assert target.shape == (20, 3 * C)
    vec = target.reshape(20, 3, C)
    np.testing.assert_allclose(vec[3, :, 7], unit(-60, 0), atol=1e-6)  # rows (30, 0) then (-60, 0): the last one
    np.testing.assert_allclose(vec[4, :, 7], unit(180, 20), atol=1e-6)
    np.testing.assert_allclose(vec[3, :, 2], unit(-45, 10), atol=1e-6)
    assert np.count_nonzero(np.abs(vec).sum(axis=1)) == 4  # (1, 7), (3, 7), (3, 2), (4, 7)


def test_generator_batches_line_up_features_and_target_frames(accddoa):
    """The test recording fold4_room2_mix001 (fixture index 4): class 1 sounds (300 Hz * 2) from label frame 2 to 9,
    class 4 (300 Hz * 5) from frame 6 to the end. Its sequences of 50 feature frames (1 s) have 10 targets each; a
    tone is on in the features' output frame k (feature frames 5k .. 5k+4) exactly where the target says so."""
    gen = DataGenerator(accddoa, split='test')
    assert gen.get_data_sizes() == ((4, 50, 512, 8), (4, 10, 6, 5, C))
    x, y, w = gen[0]
    assert x.shape == (4, 50, 512, 8) and y.shape == (4, 10, 6, 5, C) and w.shape == (4, 10)
    assert (w == 1).all()  # 2 recordings x 2 whole sequences
    mean, scale = load_scaler(gen.fc.scaler_file)
    k = 2 * gen.stems.index('fold4_room2_mix001')
    for cls in (1, 4):
        b = int(round(300 * (1 + cls) * gen.fc.nfft / gen.fc.fs))
        w_mag = np.concatenate([x[k], x[k + 1]])[:, b, 0] * scale[b, 0] + mean[b, 0]  # channel W, 100 frames
        per_output = w_mag.reshape(20, 5).mean(axis=1)
        on = per_output > 0.5 * per_output.max()
        act = np.concatenate([y[k], y[k + 1]])[:, 0, 0, cls]  # A0 activity
        assert act.tolist() == on.tolist(), cls
        assert act[6:].all() if cls == 4 else act[2:10].all() and act.sum() == 8
    # every sequence's target rows are the stored ones from its first feature frame / 5
    for row, (f, start, n) in enumerate(gen.index[:4]):
        np.testing.assert_array_equal(y[row], gen._label[f][start // 5:start // 5 + 10])


def test_generator_round_trips_targets_and_rejects_bad_settings(accddoa):
    gen = DataGenerator(accddoa, split='test')
    stored = gen.get_targets()
    assert [s for s, _ in stored] == gen.stems and all(t.shape == (20, 6, 5, C) for _, t in stored)
    fake = np.concatenate([gen[b][1] for b in range(len(gen))]).reshape(4 * len(gen), 10, -1)  # a model's flat output
    for (stem, t), (stem2, out) in zip(stored, gen.split_outputs(fake)):
        assert stem == stem2
        np.testing.assert_array_equal(out.reshape(t.shape), t)
    with pytest.raises(SELDError, match='use get_targets'):
        gen.get_labels()
    with pytest.raises(SELDError, match=r'sequence_length=52: must be a multiple of prod\(t_pool_size\)=5'):
        DataGenerator(dict(accddoa, sequence_length=52), split='test')
    with pytest.raises(SELDError, match='azi_only=true: output=accdoa'):  # multi_accddoa: the 2025 targets
        DataGenerator(dict(accddoa, output='accdoa', azi_only=True), split='test')
    with pytest.raises(SELDError, match=r'_multi_accdoa_x5: no normalized features/labels; run'):
        DataGenerator(dict(accddoa, output='multi_accdoa'), split='test')  # each output's targets: a folder of its own
    fc = FeatureClass(accddoa)
    np.save(fc.paths(gen.stems[0])['target'], np.zeros((20, 6, 4, C), np.float32))  # a target of another layout
    try:
        with pytest.raises(SELDError, match=r'target of shape \(20, 6, 4, 13\), expected \(20, 6, 5, 13\)'):
            DataGenerator(accddoa, split='test')
    finally:
        np.save(fc.paths(gen.stems[0])['target'], stored[0][1])
    os.rename(fc.target_dir, fc.target_dir + '.away')
    try:
        with pytest.raises(SELDError, match='no target for output=multi_accddoa; run `python batch_feature_extraction'):
            DataGenerator(accddoa, split='test')
    finally:
        os.rename(fc.target_dir + '.away', fc.target_dir)


def test_shuffled_batches_are_seeded_and_augmentation_rotates_every_track(accddoa):
    plain = DataGenerator(accddoa, split='train')
    aug = DataGenerator(dict(accddoa, augment=True), split='train')
    again = DataGenerator(dict(accddoa, augment=True), split='train')
    transforms = augmentation.transforms_for('foa', nb_channels=4)
    mean, scale = load_scaler(plain.fc.scaler_file)
    drawn = set()
    for epoch in range(3):
        for g in (plain, aug, again):
            g.set_epoch(epoch)
        for b in range(len(aug)):
            x0, y0, w0 = plain[b]
            x1, y1, w1 = aug[b]
            rows = aug._order[b * 4:(b + 1) * 4]
            for k, row in enumerate(rows):
                f, start, n = aug.index[row]
                np.testing.assert_array_equal(y0[k], plain._label[f][start // 5:start // 5 + 10])
                t = transforms[aug._transform_ids[row]]
                drawn.add(t.name)
                np.testing.assert_array_equal(x1[k], augmentation.apply_to_features(x0[k], t, mean=mean,
                                                                                     scale=scale))
                np.testing.assert_array_equal(y1[k][:, :, [0, 4]], y0[k][:, :, [0, 4]])  # activity, distance
                rotated = np.einsum('ij,ftjc->ftic', t.R, y0[k][:, :, 1:4].astype(np.float64))
                np.testing.assert_allclose(y1[k][:, :, 1:4], rotated, atol=1e-6)
            np.testing.assert_array_equal(w1, w0)
            np.testing.assert_array_equal(x1, again[b][0])
    assert len(drawn) > 2


def test_seldnet_with_time_pooling_and_a_rate_that_does_not_fit(starss):
    p = params(starss, feat_label_dir=starss['feat'] + '_seldnet')
    fc = batch_feature_extraction.extract(p, progress=False)
    assert fc.has_target and np.load(fc.paths('fold4_room23_mix001')['target']).shape == (20, 4 * C)
    gen = DataGenerator(p, split='test')
    x, y, w = gen[0]
    assert y['sed_out'].shape == (4, 10, C) and y['doa_out'].shape == (4, 10, 3 * C)
    batches = [gen[b] for b in range(len(gen))]
    fake = {k: np.concatenate([b[1][k] for b in batches]) for k in ('sed_out', 'doa_out')}
    for (s, sed, doa), (s2, sed2, doa2) in zip(gen.get_labels(), gen.split_predictions(fake)):
        assert s == s2 and sed.shape == (20, C)
        np.testing.assert_array_equal(sed, sed2)
        np.testing.assert_array_equal(doa, doa2)
    # frame 3 of the hand-written metadata: class 7 twice, SELDnet's one target is the row listed last
    np.testing.assert_allclose(gen.get_labels()[gen.stems.index('fold4_room23_mix001')][2][3, 7::C], unit(-60, 0),
                               atol=1e-6)
    with pytest.raises(SELDError, match=r't_pool_size=\[10, 1, 1\]: 50 feature frames/s pooled by 10: output rate 5 '
                                        r'frames/s: must be the label rate 10'):
        FeatureClass(dict(p, t_pool_size=[10, 1, 1]))
    # no pooling: 50 output frames/s, each 100 ms label frame repeated 5 times
    q = dict(p, output='multi_accdoa', t_pool_size=None, feat_label_dir=starss['feat'] + '_50')
    fq = batch_feature_extraction.extract(q, progress=False)
    fine = np.load(fq.paths('fold4_room23_mix001')['target'])
    pooled = np.load(FeatureClass(params(starss, output='multi_accddoa')).paths('fold4_room23_mix001')['target'])
    np.testing.assert_array_equal(fine, np.repeat(pooled[:, :, :4], 5, axis=0))


def test_seldnet_without_pooling_writes_no_target(starss):
    p = params(starss, t_pool_size=None, feat_label_dir=starss['feat'] + '_plain')
    fc = batch_feature_extraction.extract(p, progress=False)
    assert not fc.has_target and not os.path.exists(fc.target_dir)
    assert 'target' not in utils.read_json(fc.manifest_file)['config']


def test_distances_are_required_for_multi_accddoa(tmp_path, starss):
    with pytest.raises(SELDError, match='dataset tau2021sse_nigens has no distances'):
        FeatureClass(parameter.get_params('tau2021sse_nigens', dict(dataset_dir=str(tmp_path), output='multi_accddoa',
                                                                    t_pool_size=[5, 1, 1])))
    root = dcase_fixture.make_dataset(str(tmp_path / 'nodist'), 'starss23', dist=False)
    p = parameter.get_params('starss23', dict(dataset_dir=root, feat_label_dir=str(tmp_path / 'f'),
                                              output='multi_accddoa', t_pool_size=[5, 1, 1]))
    with pytest.raises(SELDError, match=r'\.csv: no distances: output=multi_accddoa needs'):
        batch_feature_extraction.extract(p, progress=False)


def test_tut_events_framed_at_the_pooled_rate_and_a_new_output_redoes_the_targets(tmp_path):
    """TUT-2018 look-alike (1 s clips: 171 feature frames at 44100 / 256 frames/s), pooled by 4: 43 output frames at
    43.06640625 frames/s; an event from start to end seconds is on in frames floor(start * rate) .. ceil(end * rate)."""
    root = tut_fixture.make_dataset(str(tmp_path / 'ds'), nb_train=3, nb_test=2, clip_len_s=1.0)
    p = parameter.get_params('1', dict(dataset_dir=root, feat_label_dir=str(tmp_path / 'feat'), sequence_length=64,
                                       batch_size=4, output='accdoa', t_pool_size=[4, 1, 1]))
    batch_feature_extraction.extract(p, progress=False)
    gen = DataGenerator(p, split='test')
    rate = 44100 / 256 / 4
    assert gen.output_rate == rate
    for stem, target in gen.get_targets():
        assert target.shape == (43, 3 * 11)
        with open(os.path.join(root, 'desc_ov1_split1', stem + '.csv')) as f:
            rows = [r.strip().split(',') for r in f.readlines()[1:]]
        expected = np.zeros((43, 3, 11))
        for name, start, end, ele, azi, _ in rows:
            first, last = int(np.floor(float(start) * rate)), int(np.ceil(float(end) * rate))
            expected[first:last + 1, :, tut_fixture.CLASSES.index(name[:-7])] = unit(float(azi), float(ele))
        np.testing.assert_allclose(target.reshape(43, 3, 11), expected, atol=1e-6)
    x, y, w = gen[0]
    assert x.shape == (4, 64, 256, 8) and y.shape == (4, 16, 33)
    assert (w > 0).sum(axis=1).tolist() == [16, 16, 11, 16]  # 171 = 64 + 64 + 43 frames: ceil(43 / 4) = 11 outputs
    # augmentation: each class's (x, y, z) turned by the sequence's transform, padding left at 0
    plain, aug = DataGenerator(p, split='train'), DataGenerator(dict(p, augment=True), split='train')
    transforms = augmentation.transforms_for('foa', nb_channels=4)
    for b in range(len(aug)):
        (_, y0, _), (x1, y1, _) = plain[b], aug[b]
        for k, row in enumerate(aug._order[b * 4:(b + 1) * 4]):
            R = transforms[aug._transform_ids[row]].R
            rotated = np.einsum('ij,fjc->fic', R, y0[k].reshape(16, 3, 11).astype(np.float64)).reshape(16, 33)
            np.testing.assert_allclose(y1[k], rotated, atol=1e-6)
            assert not x1[k, aug.index[row, 2]:].any()
    # another output in the same folder: the manifest changes, so the targets are redone in the new layout
    q = dict(p, output='multi_accdoa')
    fc = batch_feature_extraction.extract(q, progress=False)
    assert np.load(fc.paths(gen.stems[0])['target']).shape == (43, 6, 4, 11)

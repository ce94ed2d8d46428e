"""parameter.py and cls_data_generator.py (keras_model.py: test_keras_model.py)."""
from __future__ import annotations

import os

import numpy as np
import pytest

import batch_feature_extraction
import datasets
import parameter
from cls_data_generator import DataGenerator
from utils import SELDError

import tut_fixture


# ---- parameter.py -------------------------------------------------------------------------------
def test_defaults_are_the_papers():
    p = parameter.get_params('1')
    assert (p['dataset'], p['overlap'], p['split'], p['db'], p['nfft']) == ('ansim', 1, 1, 30, 512)
    assert (p['sequence_length'], p['batch_size'], p['dropout_rate'], p['nb_cnn2d_filt']) == (512, 16, 0.0, 64)
    assert p['pool_size'] == [8, 8, 2] and p['rnn_size'] == [128, 128] and p['fnn_size'] == [128]
    assert p['loss_weights'] == [1.0, 50.0] and p['nb_epochs'] == 1000 and p['patience'] == 100
    assert p['azi_only'] is False and p['hop_len_s'] is None and p['val_fraction'] == 0.2 and p['gru_type'] == 'cudnn'
    assert not p['select_on_test'] and p['early_stop_metric'] == 'seld2018/seld_score' and not p['augment']
    assert [parameter.get_params(t)['sequence_length'] for t in '23456'] == [512, 256, 256, 256, 512]
    assert [datasets.SPECS[parameter.get_params(t)['dataset']].nb_channels for t in '23456'] == [4, 4, 8, 8, 4]
    # the DCASE task-ids: 20 ms hops (nfft derived from the rate), the year's metric selects the model
    p = parameter.get_params('starss23')
    assert (p['hop_len_s'], p['nfft'], p['format'], p['sequence_length']) == (0.02, None, 'foa', 250)
    assert p['early_stop_metric'] == 'dcase2022/seld_score'
    # dataset=<name> with any task-id takes that dataset's framing
    assert parameter.get_params('999', ['dataset=tau2020sse_nigens'])['hop_len_s'] == 0.02


def test_overrides_are_typed_and_checked():
    p = parameter.get_params('3', ['pool_size=4,4,2', 'azi_only=true', 'dropout_rate=0.1', 'nb_epochs=20',
                                   'dataset_dir=/x/{dataset}'])
    assert p['pool_size'] == [4, 4, 2] and p['azi_only'] is True and p['dropout_rate'] == 0.1
    assert p['patience'] == 10  # max(10, int(0.1 * nb_epochs)) follows the override
    assert p['dataset_dir'] == '/x/resim' and not p['is_embedded_default']
    with pytest.raises(SELDError, match=r"unknown parameter 'batchsize'; valid keys: .*batch_size"):
        parameter.get_params('1', ['batchsize=3'])
    with pytest.raises(SELDError, match=r"unknown task-id '77'; valid task-ids: 1, 2"):
        parameter.get_params('77')
    with pytest.raises(SELDError, match="batch_size='x': must be an integer"):
        parameter.get_params('1', ['batch_size=x'])
    with pytest.raises(SELDError, match=r'product 256 must divide nfft/2=256|product 512'):
        parameter.get_params('1', ['pool_size=8,8,8'])
    assert parameter.get_params('1')['is_embedded_default']


def test_embedded_task_augments_and_reports_unseen_doa_while_task_1_stays_the_papers():
    paper, embedded = parameter.get_params('1'), parameter.get_params('embedded')
    assert (paper['augment'], paper['bn_momentum'], paper['fs'], paper['sequence_length']) == (False, 0.99, None, 512)
    assert (paper['lr_schedule'], paper['learning_rate']) == ('constant', 0.001)  # the paper's Adam
    assert paper['unseen_doa_dir'] is None and paper['select_on_test'] is False
    assert embedded['augment'] and embedded['unseen_doa_dir'] == 'data/ansim_unseen_doa'
    assert not embedded['select_on_test'] and embedded['val_fraction'] == 0.2  # selected on the validation split
    for key in ('nb_cnn2d_filt', 'pool_size', 'rnn_size', 'fnn_size', 'loss_weights', 'gru_type'):
        assert embedded[key] == paper[key], key  # the paper's SELDnet


# ---- cls_data_generator.py ----------------------------------------------------------------------
@pytest.fixture(scope='module')
def features(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('gen')
    tut_fixture.make_dataset(str(tmp / 'ds'), nb_train=3, nb_test=2, clip_len_s=1.0)
    p = parameter.get_params('1', dict(dataset_dir=str(tmp / 'ds'), feat_label_dir=str(tmp / 'feat'),
                                       sequence_length=64, batch_size=4))
    batch_feature_extraction.extract(p, progress=False)
    return p


def test_test_generator_covers_every_frame_once(features):
    p = features
    gen = DataGenerator(p, split='test')
    # 1 s clip: ceil((44100 - 512) / 256) = 171 frames = 64 + 64 + 43 -> 3 sequences per file, 6 in all
    assert gen.nb_frames_per_file == [171, 171]
    assert len(gen.index) == 6 and len(gen) == 2  # batches of 4: the second is padded
    x, y, w = gen[1]
    assert x.shape == (4, 64, 256, 8) and x.dtype == np.float32
    assert y['sed_out'].shape == (4, 64, 11) and y['doa_out'].shape == (4, 64, 33)
    assert (w['sed_out'] > 0).sum(axis=1).tolist() == [64, 43, 0, 0] and w['sed_out'][2:].sum() == 0
    np.testing.assert_allclose(w['sed_out'][:2].sum(), 4 * 64, rtol=1e-6)  # frames / real frames each (loss: mean over real frames)
    assert not x[2:].any()  # padding sequences are zero
    # Predicting the labels themselves must give back exactly the per-file ground truth
    batches = [gen[b] for b in range(len(gen))]
    fake = {k: np.concatenate([b[1][k] for b in batches]) for k in ('sed_out', 'doa_out')}
    refs = gen.get_labels()
    back = gen.split_predictions(fake)
    assert [r[0] for r in refs] == [b[0] for b in back] == gen.stems
    for (_, sed, doa), (_, sed2, doa2) in zip(refs, back):
        assert sed.shape == (171, 11) and doa.shape == (171, 33)
        np.testing.assert_array_equal(sed, sed2)
        np.testing.assert_array_equal(doa, doa2)
    # the labels equal the stored label files
    stored = np.load(os.path.join(gen.fc.label_dir, gen.stems[1] + '.npy'))
    np.testing.assert_array_equal(refs[1][1], stored[:, :11])


def test_train_generator_shuffles_and_covers_all_sequences(features):
    gen = DataGenerator(features, split='train')  # 2 of the 3 train clips: one is held out for validation
    assert len(gen.stems) == 2 and len(gen.index) == 6 and len(gen) == 2
    val = DataGenerator(features, split='val')
    assert len(val.stems) == 1 and not set(val.stems) & set(gen.stems) and not val.shuffle

    def epoch_keys():
        keys = []
        for b in range(len(gen)):
            x, _, w = gen[b]
            keys += [float(x[k].sum()) for k in range(len(x)) if w['sed_out'][k].any()]
        return keys

    first = epoch_keys()
    gen.on_epoch_end()
    second = epoch_keys()
    assert len(first) == len(second) == 6
    assert sorted(first) == pytest.approx(sorted(second)) and first != second
    with pytest.raises(SELDError, match='unshuffled'):
        gen.get_labels()


def test_generator_errors_without_features(tmp_path):
    p = parameter.get_params('1', dict(dataset_dir=str(tmp_path), feat_label_dir=str(tmp_path / 'f')))
    with pytest.raises(SELDError, match='batch_feature_extraction.py'):
        DataGenerator(p, split='train')


def test_augmented_batches_are_the_drawn_transforms_of_the_plain_batches(features):
    import augmentation
    from cls_feature_class import load_scaler

    plain = DataGenerator(dict(features, augment=False), split='train')
    aug = DataGenerator(dict(features, augment=True), split='train')
    again = DataGenerator(dict(features, augment=True), split='train')
    assert plain.augment is False and aug.augment is True
    assert not DataGenerator(dict(features, augment=True), split='val').augment  # training sequences only
    transforms = augmentation.transforms_for('foa', nb_channels=4)
    mean, scale = load_scaler(plain.fc.scaler_file)
    for epoch in range(2):
        drawn = set()
        for b in range(len(aug)):
            x0, y0, w0 = plain[b]
            x1, y1, w1 = aug[b]
            rows = aug._order[b * aug.batch_size:(b + 1) * aug.batch_size]
            ids = np.zeros(aug.batch_size, np.int64)
            ids[:len(rows)] = aug._transform_ids[rows]
            drawn |= set(ids.tolist())
            xr, dr = augmentation.apply_batch(x0, y0['doa_out'], ids, transforms=transforms, mean=mean,
                                              scale=scale, nb_classes=11, valid=w0['sed_out'] > 0)
            np.testing.assert_array_equal(x1, xr)
            np.testing.assert_array_equal(y1['doa_out'], dr)
            np.testing.assert_array_equal(y1['sed_out'], y0['sed_out'])  # SED targets do not move
            np.testing.assert_array_equal(x1, again[b][0])  # seeded: the same draws in another instance
        assert len(drawn) > 1
        for g in (plain, aug, again):
            g.on_epoch_end()

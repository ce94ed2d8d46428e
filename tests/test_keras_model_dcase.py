"""keras_model.py's DCASE baseline options: each year's parameter count written out by hand per layer from the
official models' layer shapes, output shapes and layouts, time pooling, the losses behind every output in a
training step, safe-mode loading, and bad options.

The totals stated per year are the official models' counts, measured by benchmarks/compare_official_baselines.py
(2022-2025: the PyTorch parameters plus the BatchNorm running statistics, which Keras counts as weights; 2020/2021:
the official Keras 2 code built under Keras 3 with Keras 2's GRU defaults: its BatchNormalization normalizes the
frequency bins, keras_model's crnn='dcase2020').
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from keras import ops

import datasets
import dcase_features
import keras_model
import losses
import parameter
from utils import SELDError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
YEARS = range(2020, 2026)
#: Each year's official model: Keras count_params() of 2020/2021; PyTorch parameters + BatchNorm running mean and
#: variance (384 = 3 blocks x 64 filters x 2) of 2022-2025 (module docstring).
#: Their BatchNorm running statistics (Keras: moving mean and variance): 2020/2021 per frequency bin, 2 x (64 + 16 + 4).
BN_STATS = {2020: 168, 2021: 168, 2022: 384, 2023: 384, 2024: 384, 2025: 384}
OFFICIAL_TOTALS = {2020: 513_288, 2021: 494_196, 2022: 604_533 + 384, 2023: 737_141 + 384, 2024: 742_172 + 384,
                   2025: 734_261 + 384}


def model_kwargs(params: dict) -> dict:
    """get_model's keywords for a task's parameters (the shapes from the dataset and its features). 2020/2021:
    ``crnn='dcase2020'``, which parameter.py has no key for yet."""
    spec = datasets.SPECS[params['dataset']]
    nb_channels = len(params['channels']) if params['channels'] else spec.nb_channels
    nb_bins, maps = dcase_features.layout(params['features'], nb_channels=nb_channels,
                                          audio_format=params['format'], fs=spec.fs, nfft=1024)
    return dict(nb_frames=params['sequence_length'], nb_bins=nb_bins, nb_channels=nb_channels, nb_maps=len(maps),
                nb_classes=len(spec.classes), azi_only=params['azi_only'], dropout_rate=params['dropout_rate'],
                nb_cnn2d_filt=params['nb_cnn2d_filt'], pool_size=params['pool_size'], rnn_size=params['rnn_size'],
                fnn_size=params['fnn_size'], gru_type=params['gru_type'], bn_momentum=params['bn_momentum'],
                output=params['output'], t_pool_size=params['t_pool_size'],
                nb_self_attn_layers=params['nb_self_attn_layers'], nb_heads=params['nb_heads'],
                crnn=params['crnn'])


def hand_count(*, maps: int, bins: int, classes: int, pool=(4, 4, 2), filters: int = 64, rnn=(128, 128),
               fnn=(128,), torch_gru: bool, bn_per_bin: bool = False, attention: int = 0, heads: int = 8, output: str,
               azi_only: bool = False) -> dict[str, int]:
    """Parameters per layer, written out from the layer shapes of the official models."""
    out, cin, b = {}, maps, bins
    for i in range(len(pool)):
        out[f'conv{i + 1}'] = 3 * 3 * cin * filters + filters  # 3x3 kernel + bias
        # gamma, beta, moving mean and variance per filter, or (2020/2021's Keras 2 code) per bin of the block
        out[f'bn{i + 1}'] = 4 * (b if bn_per_bin else filters)
        cin, b = filters, b // pool[i]
    feat = bins // int(np.prod(pool)) * filters
    for i, u in enumerate(rnn):
        if torch_gru:  # torch.nn.GRU: W_ih (3u, in), W_hh (3u, u), b_ih and b_hh (3u each), two directions; the
            out[f'bigru{i + 1}'] = 2 * 3 * (feat * u + u * u + 2 * u)  # directions are concatenated between layers
            feat = 2 * u
        else:  # Keras 2 GRU (reset_after=False): kernel (in, 3u), recurrent kernel (u, 3u), one bias of 3u
            out[f'bigru{i + 1}'] = 2 * 3 * (feat * u + u * u + u)
            feat = u  # merge_mode='mul'
    if torch_gru:
        feat = rnn[-1]  # tanh(forward) * tanh(backward)
    for i in range(attention):
        E, d = feat, feat // heads  # q, k, v: (E, heads, d) kernels + (heads, d) biases; out: (heads, d, E) + E
        out[f'mhsa{i + 1}'] = 3 * (E * heads * d + heads * d) + heads * d * E + E
        out[f'mhsa{i + 1}_norm'] = 2 * E  # LayerNorm gamma, beta
    doa = 2 if azi_only else 3
    heads_out = {'seldnet': {'doa': doa * classes, 'sed': classes},
                 'accdoa': {'accdoa': doa * classes},
                 'multi_accdoa': {'accdoa': 3 * doa * classes},
                 'multi_accddoa': {'accdoa': 3 * (doa + 1) * classes}}[output]
    for name, n in heads_out.items():
        d = feat
        for j, u in enumerate(fnn):
            out[f'{name}_fc{j + 1}'] = d * u + u
            d = u
        out[f'{name}_fc_out'] = d * n + n
    return out


#: The hand counts of each year's official configuration (each official parameters.py): FOA log-mel + intensity
#: (7 maps x 64 bands) for 2020-2024, the stereo log-mel (2 x 64) for 2025.
HAND = {
    2020: hand_count(maps=7, bins=64, classes=14, torch_gru=False, bn_per_bin=True, output='seldnet'),
    2021: hand_count(maps=7, bins=64, classes=12, torch_gru=False, bn_per_bin=True, output='accdoa'),
    2022: hand_count(maps=7, bins=64, classes=13, torch_gru=True, output='multi_accdoa'),
    2023: hand_count(maps=7, bins=64, classes=13, torch_gru=True, attention=2, output='multi_accdoa'),
    2024: hand_count(maps=7, bins=64, classes=13, torch_gru=True, attention=2, output='multi_accddoa'),
    2025: hand_count(maps=2, bins=64, classes=13, torch_gru=True, attention=2, output='multi_accddoa', azi_only=True),
}


def per_layer_counts(model: keras.Model) -> dict[str, int]:
    return {layer.name: layer.count_params() for layer in model.layers if layer.count_params()}


@pytest.mark.parametrize('year', YEARS)
def test_parameter_count_of_each_baseline_by_hand(year):
    """The task-id's model, layer by layer, against the hand count; its total is the official model's."""
    kw = model_kwargs(parameter.get_params(f'dcase{year}_baseline'))
    model = keras_model.get_model(compile=False, **kw)
    assert per_layer_counts(model) == HAND[year]
    assert model.count_params() == sum(HAND[year].values()) == OFFICIAL_TOTALS[year]
    # trainable: all but the BatchNorm moving statistics (PyTorch's parameters() for 2022-2025)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == OFFICIAL_TOTALS[year] - BN_STATS[year]


@pytest.mark.parametrize('year, shapes', [
    (2020, {'sed_out': (2, 60, 14), 'doa_out': (2, 60, 42)}),
    (2021, {'accdoa_out': (2, 60, 36)}),
    (2022, {'accdoa_out': (2, 50, 117)}),
    (2024, {'accdoa_out': (2, 50, 156)}),
    (2025, {'accdoa_out': (2, 50, 117)}),
])
def test_output_shapes_at_the_label_rate(year, shapes):
    """300 or 250 feature frames of 20 ms, pooled 5x in time: 60 or 50 label frames of 100 ms."""
    kw = model_kwargs(parameter.get_params(f'dcase{year}_baseline'))
    model = keras_model.get_model(compile=False, **kw)
    assert model.get_layer('pool1').pool_size == (5, 4)
    assert model.name == kw['output']
    x = np.zeros((2, kw['nb_frames'], kw['nb_bins'], kw['nb_maps']), np.float32)
    assert {k: tuple(v.shape) for k, v in model(x).items()} == shapes


def tiny(**kw) -> keras.Model:
    base = dict(nb_frames=10, nb_bins=8, nb_channels=4, nb_maps=7, nb_classes=3, nb_cnn2d_filt=4, pool_size=[2, 2],
                t_pool_size=[5, 1], rnn_size=[8, 8], fnn_size=[4], compile=False)
    return keras_model.get_model(**{**base, **kw})


def test_time_pooling_takes_the_maximum_of_each_block_of_frames():
    """An input that is 0 except for frame 7: one conv block (3x3: it reaches frames 6-8) with time pooling 5, so
    only label frame 1 (frames 5-9) can differ from the output for an all-zero input (the test reads the pooled
    conv output: the GRUs carry it on to later frames)."""
    m = tiny(output='accdoa', pool_size=[2], t_pool_size=[5])
    probe = keras.Model(m.input, m.get_layer('to_sequence').output)
    zero = np.zeros((1, 10, 8, 7), np.float32)
    x = zero.copy()
    x[0, 7] = 1.0  # frame 7 -> label frame 1
    diff = np.abs(ops.convert_to_numpy(probe(x)) - ops.convert_to_numpy(probe(zero))).max(axis=-1)[0]
    assert diff.shape == (2,) and diff[0] == 0 and diff[1] > 0
    assert tuple(tiny(output='accdoa')(x)['accdoa_out'].shape) == (1, 2, 9)
    for output, azi_only, n in (('accdoa', False, 9), ('multi_accddoa', True, 27)):  # variable length
        m = tiny(output=output, azi_only=azi_only, nb_frames=None)
        assert tuple(m(np.zeros((1, 15, 8, 7), np.float32))['accdoa_out'].shape) == (1, 3, n)


def test_output_activations_and_layout():
    """With the last dense layer's kernel at 0 the output is the activation of its bias: 2024 linear, 2025 tanh on
    the x and y of each track and ReLU on its distance, at index (track * 3 + element) * classes + class."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 10, 8, 7)).astype(np.float32)
    for azi_only in (False, True):
        m = tiny(output='multi_accddoa', azi_only=azi_only)
        fc = m.get_layer('accdoa_fc_out')
        kernel, bias = fc.get_weights()
        bias = rng.standard_normal(bias.shape).astype(np.float32) * 2
        fc.set_weights([np.zeros_like(kernel), bias])
        got = ops.convert_to_numpy(m(x)['accdoa_out'])[0]  # (frames, 3 * elements * classes)
        if not azi_only:
            assert got.shape == (2, 3 * 4 * 3)
            np.testing.assert_allclose(got, np.broadcast_to(bias, got.shape), rtol=1e-6)
        else:
            element = (np.arange(27) // 3) % 3  # 3 classes per block, 3 elements per track
            want = np.where(element < 2, np.tanh(bias), np.maximum(bias, 0))
            assert got.shape == (2, 27) and (want[element == 2] == 0).any() and (want[element == 2] > 0).any()
            np.testing.assert_allclose(got, np.broadcast_to(want, got.shape), rtol=1e-6, atol=1e-7)
    for output in ('accdoa', 'multi_accdoa'):
        out = ops.convert_to_numpy(tiny(output=output)(x * 100)['accdoa_out'])
        assert np.abs(out).max() <= 1  # tanh


def labels(output: str, rng: np.random.Generator, *, frames: int = 2, classes: int = 3, azi_only: bool = False):
    """Targets in the data side's layout (module docstring of keras_model / multitrack_labels)."""
    if output == 'seldnet':
        return {'sed_out': (rng.random((2, frames, classes)) > 0.5).astype(np.float32),
                'doa_out': rng.uniform(-1, 1, (2, frames, 3 * classes)).astype(np.float32)}
    if output == 'accdoa':  # activity * (x block, y block, z block)
        return {'accdoa_out': rng.uniform(-1, 1, (2, frames, 3 * classes)).astype(np.float32)}
    values = 4  # x, y, z, distance (2024) or x, y, distance, on-screen (2025)
    y = np.zeros((2, frames, 6, 1 + values, classes), np.float32)
    y[:, :, 1:3, 0, :] = 1  # two instances of every class (B0, B1)
    y[:, :, 1:3, 1:, :] = rng.uniform(-1, 1, (2, frames, 2, values, classes))
    return {'accdoa_out': y}


@pytest.mark.parametrize('output, azi_only', [  # about 10 s each on 2 busy cores: one runs in the quick suite
    pytest.param('seldnet', False, marks=pytest.mark.slow), pytest.param('accdoa', False, marks=pytest.mark.slow),
    ('multi_accdoa', False), pytest.param('multi_accddoa', False, marks=pytest.mark.slow),
    pytest.param('multi_accddoa', True, marks=pytest.mark.slow)])
def test_compile_model_picks_the_loss_and_a_training_step_runs(output, azi_only):
    """compile_model's loss on the labels' shapes, with the generator's per-frame sample weights: Keras' loss (in
    inference mode) equals the loss function on the predictions, weighted and averaged over every frame."""
    rng = np.random.default_rng(1)
    m = tiny(output=output, azi_only=azi_only, compile=True, dropout_rate=0.1, nb_self_attn_layers=0)
    x = rng.standard_normal((2, 10, 8, 7)).astype(np.float32)
    y = labels(output, rng, azi_only=azi_only)
    w = np.array([[1.0, 2.0], [0.0, 1.0]], np.float32)
    weights = {k: w for k in y}
    pred = m.predict_on_batch(x)
    if output == 'seldnet':
        bce = ops.convert_to_numpy(keras.losses.binary_crossentropy(y['sed_out'], pred['sed_out']))
        mse = np.mean((pred['doa_out'] - y['doa_out']) ** 2, axis=-1)
        want = np.mean(bce * w) + 50 * np.mean(mse * w)
    elif output == 'accdoa':
        want = np.mean(np.mean((pred['accdoa_out'] - y['accdoa_out']) ** 2, axis=-1) * w)
    else:
        per_class = ops.convert_to_numpy(losses.adpit_per_class(y['accdoa_out'], pred['accdoa_out']))
        assert per_class.shape == (2, 2, 3)
        want = np.mean(per_class.mean(axis=-1) * w)
    got = np.atleast_1d(m.test_on_batch(x, y, sample_weight=weights))[0]  # seldnet: [total, sed, doa]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    before = [v.copy() for v in m.get_weights()]
    loss = np.atleast_1d(m.train_on_batch(x, y, sample_weight=weights))[0]
    assert np.isfinite(loss) and any(np.abs(a - b).max() > 0 for a, b in zip(before, m.get_weights()))


def test_multi_accddoa_compares_the_values_of_the_output():
    """2025's (x, y, distance) tracks against targets (x, y, distance, on-screen): the on-screen value is not
    compared (changing it leaves the loss as is); 2024's (x, y, z, distance) compares all four."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 10, 8, 7)).astype(np.float32)
    for azi_only in (True, False):
        m = tiny(output='multi_accddoa', azi_only=azi_only, compile=True)
        y = labels('multi_accddoa', rng)['accdoa_out']
        y2 = y.copy()
        y2[:, :, :, 4, :] += 0.5
        same = m.test_on_batch(x, {'accdoa_out': y}) == m.test_on_batch(x, {'accdoa_out': y2})
        assert same == azi_only


@pytest.mark.slow
def test_dcase_model_saves_and_loads_in_safe_mode_with_its_loss(tmp_path):
    """A 2025-shaped model (self-attention, Cropping2D, SpatialDropout2D) round-trips through keras_model's save and
    safe-mode load with its optimizer and loss; plain Keras without this project loads it with compile=False."""
    m = tiny(output='multi_accddoa', azi_only=True, nb_maps=2, nb_channels=2, nb_self_attn_layers=2, nb_heads=2,
             compile=True, dropout_rate=0.05)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 10, 8, 2)).astype(np.float32)
    y = labels('multi_accddoa', rng)
    m.train_on_batch(x, y)
    path = str(tmp_path / 'm.keras')
    keras_model.save_model(m, path)
    loaded = keras_model.load_model(path)
    assert loaded.name == 'multi_accddoa' and loaded.loss['accdoa_out'] is losses.adpit_mse
    np.testing.assert_allclose(loaded.predict(x, verbose=0)['accdoa_out'], m.predict(x, verbose=0)['accdoa_out'],
                               atol=1e-6)
    assert int(loaded.optimizer.iterations) == 1
    np.testing.assert_allclose(loaded.test_on_batch(x, y), m.test_on_batch(x, y), rtol=1e-6)
    np.save(tmp_path / 'x.npy', x)
    code = ('import keras, numpy as np; m = keras.saving.load_model("m.keras", safe_mode=True, compile=False); '
            'np.save("y.npy", m.predict(np.load("x.npy"), verbose=0)["accdoa_out"])')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    r = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / 'y.npy'), m.predict(x, verbose=0)['accdoa_out'], atol=1e-6)


@pytest.mark.slow
def test_multi_accdoa_trains_on_jax():
    """The ADPIT loss through Keras' loss wrapper on JAX (XLA): one training step of a tiny Multi-ACCDOA model."""
    code = textwrap.dedent('''
        import numpy as np, keras_model
        m = keras_model.get_model(nb_frames=10, nb_bins=8, nb_channels=4, nb_maps=7, nb_classes=3, nb_cnn2d_filt=4,
                                  pool_size=[2, 2], t_pool_size=[5, 1], rnn_size=[8], fnn_size=[4],
                                  output='multi_accdoa', nb_self_attn_layers=1, nb_heads=2)
        y = np.zeros((2, 2, 6, 4, 3), np.float32); y[:, :, 0, 0] = 1; y[:, :, 0, 1] = 1
        x = np.random.default_rng(0).standard_normal((2, 10, 8, 7)).astype(np.float32)
        a = m.train_on_batch(x, {'accdoa_out': y}, sample_weight={'accdoa_out': np.ones((2, 2), np.float32)})
        print('LOSS', a, np.isfinite(a))
    ''')
    env = dict(os.environ, KERAS_BACKEND='jax', TF_CPP_MIN_LOG_LEVEL='3', PYTHONPATH=ROOT)
    r = subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'True' in r.stdout.split('LOSS')[-1]


@pytest.mark.parametrize('kw, message', [
    (dict(t_pool_size=[5]), r't_pool_size=\[5\]: must have one entry >= 1 per pool_size entry'),
    (dict(t_pool_size=[5, 0]), r't_pool_size=\[5, 0\]: must have one entry >= 1'),
    (dict(t_pool_size=[3, 1]), r't_pool_size=\[3, 1\]: product 3 must divide nb_frames=10'),
    (dict(output='doa'), r"output='doa': must be one of seldnet, accdoa, multi_accdoa, multi_accddoa"),
    (dict(crnn='torch'), r"crnn='torch': must be one of seldnet, dcase2020, dcase2022"),
    (dict(nb_self_attn_layers=1, nb_heads=3, output='multi_accdoa'), r'nb_heads=3: must divide the last GRU size 8'),
    (dict(nb_self_attn_layers=1, output='accdoa'), r"nb_self_attn_layers=1: needs crnn='dcase2022'"),
    (dict(pool_size=[4, 4], output='multi_accdoa'), r'pool_size=\[4, 4\]: product 16 must be at most nb_bins=8'),
    (dict(pool_size=[3, 1]), r'pool_size=\[3, 1\]: product 3 must divide nb_bins=8'),
])
def test_bad_options_are_clear_errors(kw, message):
    with pytest.raises(SELDError, match=message):
        tiny(**kw)


def test_dcase2022_crnn_floors_the_frequency_pooling_as_the_official_model():
    """SALSA-Lite's 382 bins with pooling 32: 11 bands of 64 filters into the GRU (floor, as the official
    ``int(np.floor(bins / prod(f_pool_size)))``)."""
    m = tiny(nb_bins=382, pool_size=[4, 4, 2], t_pool_size=[5, 1, 1], output='multi_accdoa', nb_cnn2d_filt=64)
    assert m.get_layer('to_sequence').output.shape[-1] == 11 * 64

"""The DCASE baselines' features (dcase_features.py) against independent facts: librosa's own STFT, mel filterbank
and dB conversion; the physics of a plane wave on FOA and on the DCASE tetrahedral array; delays of a noise pair."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import librosa
import numpy as np
import pytest

import dcase_features as dcf
from cls_feature_class import _frames, framing_for
from utils import SELDError

FS = 24000
FRAMING = framing_for(fs=FS, nfft=None, hop_len_s=0.02)  # the baselines': hop 480, window 960, FFT 1024
HOP, WIN, NFFT = FRAMING.hop_len, FRAMING.win_len, FRAMING.nfft
C = 343.0


def features_of(audio: np.ndarray, features: str, audio_format: str, **kw) -> np.ndarray:
    frames, _ = _frames(audio.astype(np.float32), FRAMING, None)
    return dcf.compute(frames, window=FRAMING.window(), features=features, fs=FS, audio_format=audio_format, **kw)


def unit(azi_deg: float, ele_deg: float) -> np.ndarray:
    a, e = np.deg2rad(azi_deg), np.deg2rad(ele_deg)
    return np.array([np.cos(a) * np.cos(e), np.sin(a) * np.cos(e), np.sin(e)])


def test_framing_is_the_baselines():
    assert (HOP, WIN, NFFT) == (480, 960, 1024)


def test_log_mel_equals_librosa_stft_melspectrogram_and_power_to_db():
    """The log-mel maps of every year against librosa end to end (librosa.stft with the baselines' arguments,
    librosa.feature.melspectrogram, librosa.power_to_db): per channel for 2020-2024, over both channels for 2025.
    The second channel is 100 dB below the first, so that the two clipping rules (top_db=80) give other numbers."""
    rng = np.random.default_rng(0)
    n = FS + 123  # not a whole number of hops
    audio = rng.standard_normal((n, 2)).astype(np.float32) * 0.1
    audio[:, 1] *= 1e-5
    ref_stft = librosa.stft(audio.T, n_fft=NFFT, hop_length=HOP, win_length=WIN, window='hann', center=True,
                            pad_mode='constant')  # (2, 513, frames)
    mel = librosa.feature.melspectrogram(S=np.abs(ref_stft) ** 2, sr=FS, n_mels=64)  # (2, 64, frames)
    nb = FRAMING.nb_frames(n)
    assert mel.shape[-1] == nb
    per_channel = np.stack([librosa.power_to_db(m) for m in mel], axis=-1).transpose(1, 0, 2)  # (frames, 64, 2)
    joint = librosa.power_to_db(mel).transpose(2, 1, 0)
    assert np.abs(per_channel - joint).max() > 10  # the test can tell the two rules apart
    stereo = features_of(audio, 'logmel_stereo', 'stereo')
    assert stereo.shape == (nb, 64, 2)
    np.testing.assert_allclose(stereo, joint, atol=2e-3)
    gcc = features_of(np.concatenate([audio, audio], axis=1), 'logmel_gcc', 'mic')
    np.testing.assert_allclose(gcc[..., [0, 1]], per_channel, atol=2e-3)


def test_mel_filterbank_is_librosas_slaney_filterbank():
    wts = dcf.mel_filterbank(fs=FS, nfft=NFFT)
    assert wts.shape == (NFFT // 2 + 1, 64)
    np.testing.assert_array_equal(wts, librosa.filters.mel(sr=FS, n_fft=NFFT, n_mels=64, htk=False, norm='slaney',
                                                           fmin=0.0, fmax=FS / 2).T.astype(np.float32))
    # by hand: the Slaney mel scale (linear to 1 kHz at 200/3 Hz per mel, then 27 mels per factor 6.4), 66 edges
    # equally spaced in mel from 0 Hz to fs/2, triangles of area 1 (height 2 / width in Hz)
    brk, step, logstep = 1000.0, 200.0 / 3, np.log(6.4) / 27
    mels = np.linspace(0, brk / step + np.log(FS / 2 / brk) / logstep, 66)
    edges = np.where(mels < brk / step, mels * step, brk * np.exp((mels - brk / step) * logstep))
    f = np.arange(NFFT // 2 + 1) * FS / NFFT
    lo, mid, hi = edges[:-2], edges[1:-1], edges[2:]
    tri = np.maximum(0, np.minimum((f[:, None] - lo) / (mid - lo), (hi - f[:, None]) / (hi - mid)))
    np.testing.assert_allclose(wts, tri * 2 / (hi - lo), atol=1e-6)


@pytest.mark.parametrize('features, xyz, factor', [('logmel_iv', [6, 4, 5], 0.75), ('logmel_iv2021', [4, 5, 6], 1.0),
                                                   ('logmel_iv2020', [4, 5, 6], 1.0)])
@pytest.mark.parametrize('azi, ele', [(30, 10), (-120, -40), (170, 75), (0, 0)])
def test_intensity_vector_of_a_foa_plane_wave_points_at_its_doa(azi, ele, features, xyz, factor):
    """ACN/SN3D plane wave: W = s, (Y, Z, X) = s u, so every bin's Re(conj(W) [Y, Z, X]) is |s|^2 u. Normalized by
    |W|^2 + (|Y|^2 + |Z|^2 + |X|^2) / 3 = 4/3 |s|^2 (2022), by (|W|^2 + ... + |X|^2) / 2 = |s|^2 (2021) or by its
    own norm |s|^2 (2020), each mel band holds factor * u times the sum of its weights (hand-computed)."""
    s = np.random.default_rng(1).standard_normal(FS // 2)
    u = unit(azi, ele)
    foa = s[:, None] * np.array([1.0, u[1], u[2], u[0]])
    feat = features_of(foa, features, 'foa')
    assert feat.shape == (FRAMING.nb_frames(len(s)), 64, 7)
    iv = feat[..., xyz]  # (x, y, z): maps iv_y, iv_z, iv_x (2022) or iv_x, iv_y, iv_z
    expected = factor * dcf.mel_filterbank(fs=FS, nfft=NFFT).sum(axis=0)[None, :, None] * u
    np.testing.assert_allclose(iv, np.broadcast_to(expected, iv.shape), atol=1e-5 * np.abs(expected).max())
    iv = iv.astype(np.float64)
    angle = np.degrees(np.arctan2(np.linalg.norm(np.cross(iv, u), axis=-1), iv @ u))  # well conditioned near 0
    assert angle.max() < 0.01


@pytest.mark.parametrize('delays', [(0, 3, -5, 12), (7, 0, 7, -25)])
def test_gcc_phat_of_delayed_channels_peaks_at_the_delay(delays):
    """Channel n = a noise delayed by delays[n] samples: the GCC map of pair (m, n) peaks at lag
    delays[n] - delays[m], i.e. at index 32 + that lag of the 64 kept (lags -32 .. 31)."""
    s = np.random.default_rng(2).standard_normal(FS)
    pad = 40
    audio = np.stack([s[pad - d:len(s) - pad - d] for d in delays], axis=1)  # channel n lags by delays[n]
    feat = features_of(audio, 'logmel_gcc', 'mic')
    assert feat.shape[1:] == (64, 10)
    gcc = feat[2:-2, :, 4:]  # the frames inside the audio
    for p, (m, n) in enumerate(dcf.channel_pairs(4)):
        lag = delays[n] - delays[m]
        assert (gcc[..., p].argmax(axis=1) == 32 + lag).all(), (m, n, lag)
        assert gcc[..., 32 + lag, p].mean() > 0.7  # near the PHAT peak height 1 (window edges lose a little)


#: The DCASE tetrahedral array (dataset documentation): capsules at (azimuth, elevation) degrees on a 4.2 cm sphere.
TETRA = 0.042 * np.stack([unit(45, 35), unit(-45, -35), unit(135, -35), unit(-135, 35)])


def plane_wave_on_array(s: np.ndarray, u: np.ndarray, mics: np.ndarray) -> np.ndarray:
    """Mic at r receives s(t + r.u / c): a fractional advance, applied exactly in the frequency domain."""
    f = np.fft.rfftfreq(len(s), 1 / FS)
    S = np.fft.rfft(s)
    return np.stack([np.fft.irfft(S * np.exp(2j * np.pi * f * (r @ u) / C), n=len(s)) for r in mics], axis=1)


@pytest.mark.parametrize('azi, ele', [(20, 15), (-100, -30), (150, 50)])
def test_salsa_lite_phase_of_a_plane_wave_gives_its_direction(azi, ele):
    """For a plane wave from u, angle(X_k conj(X_0)) * c / (2 pi f) = (r_k - r_0) . u (metres) in every bin below
    the phase cut-off; solving the three equations for u gives the direction back."""
    u = unit(azi, ele)
    audio = plane_wave_on_array(np.random.default_rng(3).standard_normal(FS), u, TETRA)
    feat = features_of(audio, 'salsa_lite', 'mic')
    lower, upper, cutoff = dcf.salsa_bins(fs=FS, nfft=NFFT)
    assert (lower, upper, cutoff) == (2, 85, 384)  # 50 Hz, 2 kHz, 9 kHz at 24 kHz, nfft 1024
    assert feat.shape[1:] == (382, 7)
    ipd = feat[2:-2, :upper, 4:]  # metres, (frames, bins, 3)
    diff = TETRA[1:] - TETRA[0]
    expected = diff @ u
    assert np.abs(np.median(ipd, axis=(0, 1)) - expected).max() < 2e-4  # 0.2 mm of an up-to-7-cm difference
    est, *_ = np.linalg.lstsq(diff, np.median(ipd.reshape(-1, 3), axis=0), rcond=None)
    assert np.degrees(np.arccos(est @ u / np.linalg.norm(est))) < 0.5
    assert (feat[:, upper:, 4:] == 0).all()
    # the spectral maps: 10 log10 |X|^2 of librosa's STFT on bins lower .. cutoff - 1, no top_db
    ref = librosa.stft(audio[:, 2], n_fft=NFFT, hop_length=HOP, win_length=WIN, pad_mode='constant')
    ref = ref[lower:cutoff, :len(feat)].T  # librosa computes 1 + n // hop frames; the baselines keep n // hop
    np.testing.assert_allclose(feat[..., 2], 10 * np.log10(np.maximum(np.abs(ref) ** 2, 1e-10)), atol=2e-3)


def test_blocks_do_not_change_the_features():
    """top_db needs the whole recording's maximum: blocks of 7 frames give the features of blocks of 128 (to the
    rounding of matrix products of other sizes)."""
    audio = np.random.default_rng(4).standard_normal((FS, 4)).astype(np.float32)
    audio[FS // 2:] *= 1e-6  # a quiet half (120 dB down), clipped by top_db
    for features, fmt in (('logmel_iv', 'foa'), ('logmel_gcc', 'mic'), ('salsa_lite', 'mic')):
        whole = features_of(audio, features, fmt)
        np.testing.assert_allclose(features_of(audio, features, fmt, block_frames=7), whole, rtol=1e-5, atol=1e-5)
        if features != 'salsa_lite':
            mel = whole[..., :4]
            np.testing.assert_allclose(mel.min(axis=(0, 1)), mel.max(axis=(0, 1)) - 80, atol=1e-4)


@pytest.mark.parametrize('features, fmt, ch, fs, shape', [
    ('logmel_iv', 'foa', 4, 24000, (64, 7)), ('logmel_iv2020', 'foa', 4, 24000, (64, 7)),
    ('logmel_gcc', 'mic', 4, 24000, (64, 10)),
    ('salsa_lite', 'mic', 4, 24000, (382, 7)), ('logmel_stereo', 'stereo', 2, 24000, (64, 2)),
    ('salsa_lite', 'mic', 4, 48000, (382, 7)),  # 2019's rate, FFT 2048: the same frequency range
    ('logmel_gcc', 'mic', 8, 44100, (64, 8 + 28))])  # the 8-mic circular array of CANSIM: 28 pairs
def test_layout_per_dataset(features, fmt, ch, fs, shape):
    nfft = framing_for(fs=fs, nfft=None, hop_len_s=0.02).nfft
    nb_bins, maps = dcf.layout(features, nb_channels=ch, audio_format=fmt, fs=fs, nfft=nfft)
    assert (nb_bins, len(maps)) == shape


@pytest.mark.parametrize('features, fmt, ch', [('logmel_iv', 'mic', 4), ('logmel_gcc', 'foa', 4),
                                               ('salsa_lite', 'mic', 1), ('logmel_stereo', 'foa', 4),
                                               ('nope', 'foa', 4)])
def test_layout_refuses_audio_that_does_not_fit(features, fmt, ch):
    with pytest.raises(SELDError, match=f'features={features}'):
        dcf.layout(features, nb_channels=ch, audio_format=fmt, fs=FS, nfft=NFFT)


@pytest.mark.slow
def test_extraction_with_logmel_iv_on_a_starss23_look_alike(tmp_path):
    """The extraction command with features=logmel_iv: features of (frames, 64, 7), the scaler of that shape, a
    rerun that redoes nothing, and magphase features of the same data in their own folder."""
    data, feat_dir = tmp_path / 'starss23', tmp_path / 'feat'
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
    r = subprocess.run([sys.executable, 'synthesize_dataset.py', 'dataset=starss23', 'nb_per_fold=1', 'clip_len_s=3',
                        f'dataset_dir={data}', 'progress=false'], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    cmd = [sys.executable, 'batch_feature_extraction.py', 'starss23', 'features=logmel_iv', f'dataset_dir={data}',
           f'feat_label_dir={feat_dir}', 'n_jobs=1']
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    (folder,) = [p for p in feat_dir.iterdir() if p.name.endswith('_logmel_iv')]
    feats = sorted((folder / 'feat_norm').glob('*.npy'))
    assert feats
    for f in feats:
        x = np.load(f)
        info = json.loads((folder / 'info' / (f.stem + '.json')).read_text())
        assert x.shape == (info['nb_frames'], 64, 7) and x.dtype == np.float32 and np.isfinite(x).all()
    z = np.load(folder / 'scaler.npz')
    assert z['mean'].shape == z['scale'].shape == (64, 7)
    train = [f for f in feats if json.loads((folder / 'info' / (f.stem + '.json')).read_text())['part'] == 'train']
    stacked = np.concatenate([np.load(f) for f in train])  # standardized with the train part's own statistics
    np.testing.assert_allclose(stacked.mean(axis=0), 0, atol=1e-3)
    np.testing.assert_allclose(stacked.std(axis=0)[z['scale'] != 1], 1, atol=1e-3)
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert r.returncode == 0 and f'0 written, {len(feats)} already done' in r.stdout, r.stdout + r.stderr
    r = subprocess.run(cmd + ['features=logmel_gcc'], capture_output=True, text=True, env=env)
    assert r.returncode == 2 and r.stderr.startswith('error: ') and 'features=logmel_gcc' in r.stderr


def test_features_parameter_choices_and_augmentation_rule():
    import parameter

    assert parameter.get_params('starss23', ['features=salsa_lite'])['features'] == 'salsa_lite'
    assert parameter.get_params('1')['features'] == 'magphase'  # the paper's default is unchanged
    with pytest.raises(SELDError, match="features='mfcc': must be one of magphase, logmel_iv"):
        parameter.get_params('1', ['features=mfcc'])
    with pytest.raises(SELDError, match='augment=true: the spatial augmentation works on features=magphase'):
        parameter.get_params('embedded', ['features=logmel_iv'])

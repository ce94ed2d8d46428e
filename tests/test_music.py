"""MUSIC against the physics: plane waves of white noise written here from the array equations, one and two sources,
FOA and the circular array; the class assignment by hand; the conventions against the synthesizer's own files."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import music
from cls_feature_class import stft
from utils import angular_distance_deg, cart2sph, sph2cart

FS, NFFT = 16000, 512
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def foa_audio(sources: list[tuple[float, float]], *, seconds: float = 1.0, snr_db: float = 30.0,
              seed: int = 0) -> np.ndarray:
    """Uncorrelated white-noise plane waves from (azimuth, elevation) in degrees, FOA W, Y, Z, X with the SN3D gains
    [1, sin az cos el, sin el, cos az cos el], plus independent sensor noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    out = np.zeros((n, 4))
    for az, el in sources:
        a, e = np.deg2rad(az), np.deg2rad(el)
        gains = np.array([1.0, np.sin(a) * np.cos(e), np.sin(e), np.cos(a) * np.cos(e)])
        out += rng.standard_normal(n)[:, None] * gains
    return out + 10 ** (-snr_db / 20) * rng.standard_normal(out.shape)


def circular_audio(sources: list[tuple[float, float]], *, seconds: float = 1.0, snr_db: float = 30.0,
                   seed: int = 0) -> np.ndarray:
    """The same on 8 mics at radius 0.05 m, mic m at azimuth 45 m degrees: each mic hears the wave delayed by
    -(u . p_m) / 343 s (an exact fractional delay: a phase shift of the whole signal's FFT)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    phi = np.deg2rad(45.0 * np.arange(8))
    mics = 0.05 * np.stack([np.cos(phi), np.sin(phi), np.zeros(8)], axis=1)
    freqs = np.fft.rfftfreq(n, 1 / FS)
    out = np.zeros((n, 8))
    for az, el in sources:
        a, e = np.deg2rad(az), np.deg2rad(el)
        u = np.array([np.cos(a) * np.cos(e), np.sin(a) * np.cos(e), np.sin(e)])
        tau = -(mics @ u) / 343.0
        spec = np.fft.rfft(rng.standard_normal(n))
        out += np.fft.irfft(spec[:, None] * np.exp(-2j * np.pi * freqs[:, None] * tau[None, :]), n, axis=0)
    return out + 10 ** (-snr_db / 20) * rng.standard_normal(out.shape)


def estimate(audio: np.ndarray, k: int, array: str) -> np.ndarray:
    spec = stft(audio.astype(np.float32), nfft=NFFT)
    counts = np.full(spec.shape[0], k)
    return music.music_doas(spec, counts, array=array, fs=FS, nfft=NFFT)


def test_speed_of_sound_is_the_synthesizers():
    import pyroomacoustics as pra

    assert music.SPEED_OF_SOUND == float(pra.constants.get('c'))


@pytest.mark.parametrize('az, el', [(37.3, 12.4), (-150.0, -35.0), (179.6, 0.0), (-90.2, 40.0), (5.0, 80.5)])
def test_foa_one_plane_wave_within_1_degree(az, el):
    est = estimate(foa_audio([(az, el)]), 1, 'foa')
    err = angular_distance_deg(est[:, 0], sph2cart(az, el))
    assert est.shape[1] == 1 and np.all(np.isfinite(err))
    assert np.median(err) < 1.0, np.median(err)  # the clip's DOA: within 1 degree
    assert err.max() < 1.5, err.max()  # every 128-ms block: the grid's 0.7 degrees plus the estimation noise


def test_coarse_to_fine_search_equals_the_full_1_degree_grid():
    audio = foa_audio([(-63.3, 21.7), (40.2, -12.6)], seconds=1.0, seed=3)
    spec = stft(audio.astype(np.float32), nfft=NFFT)
    counts = np.full(spec.shape[0], 2)
    fast = music.music_doas(spec, counts, array='foa', fs=FS, nfft=NFFT)
    full = music.music_doas(spec, counts, array='foa', fs=FS, nfft=NFFT, coarse_deg=1)
    np.testing.assert_array_equal(fast, full)
    audio = circular_audio([(-63.3, 21.7), (40.2, -12.6)], seconds=1.0, seed=3)
    spec = stft(audio.astype(np.float32), nfft=NFFT)
    fast = music.music_doas(spec, counts, array='circular', fs=FS, nfft=NFFT)
    full = music.music_doas(spec, counts, array='circular', fs=FS, nfft=NFFT, coarse_deg=1)
    np.testing.assert_array_equal(fast, full)


@pytest.mark.parametrize('az, el', [(37.3, 0.0), (-121.6, 20.0), (170.0, -30.0), (-0.4, 35.0)])
def test_circular_one_plane_wave_azimuth_within_2_degrees(az, el):
    est = estimate(circular_audio([(az, el)]), 1, 'circular')
    azi, ele, _ = cart2sph(est[:, 0])
    d_azi = np.abs((azi - az + 180) % 360 - 180)
    assert d_azi.max() < 2.0, d_azi.max()
    assert ele.min() >= 0  # the grid holds the upper hemisphere: the array cannot tell +el from -el
    assert np.median(np.abs(ele - abs(el))) < 10.0  # |el| is heard (through cos el), coarsely at this aperture


@pytest.mark.parametrize('array, sources, tol', [
    ('foa', [(10.0, 10.0), (70.0, -5.0)], 2.0),
    ('foa', [(-170.0, 0.0), (130.0, 20.0)], 2.0),  # 60 degrees apart across the +-180 seam
    ('circular', [(0.0, 0.0), (60.0, 0.0)], 3.0),
])
def test_two_uncorrelated_sources_60_degrees_apart_both_found(array, sources, tol):
    audio = (foa_audio if array == 'foa' else circular_audio)(sources, seconds=2.0)
    est = estimate(audio, 2, array)
    ref = sph2cart(*np.array(sources).T)  # (2, 3)
    # every frame: each source within tol of one estimate
    err = angular_distance_deg(est[:, :, None, :], ref[None, None, :, :])  # (T, est, ref)
    if array == 'circular':  # azimuth only
        azi = cart2sph(est)[0]
        err = np.abs((azi[:, :, None] - np.array(sources)[None, None, :, 0] + 180) % 360 - 180)
    nearest = err.min(axis=1)  # (T, sources): each source's nearest estimate
    assert np.all(np.isfinite(nearest))
    assert np.median(nearest, axis=0).max() < tol, np.median(nearest, axis=0)  # both found, in the clip's median
    assert nearest.max() < 2 * tol, nearest.max()  # and in every 128-ms block (8 snapshots of 2 sources: a bias)


def test_frames_take_their_own_count_and_silence_gets_none():
    audio = foa_audio([(30.0, 0.0), (-60.0, 0.0)], seconds=1.0)
    spec = stft(audio.astype(np.float32), nfft=NFFT)
    counts = np.zeros(spec.shape[0], np.int64)
    counts[8:16], counts[16:24] = 1, 2
    est = music.music_doas(spec, counts, array='foa', fs=FS, nfft=NFFT, block_frames=8)
    assert est.shape == (spec.shape[0], 2, 3)
    assert np.isnan(est[:8]).all() and np.isnan(est[24:]).all()
    assert np.isfinite(est[8:16, 0]).all() and np.isnan(est[8:16, 1]).all()
    assert np.isfinite(est[16:24]).all()


def test_peaks_wrap_around_azimuth():
    shape = (3, 360)
    p = np.zeros((1, 3 * 360))
    p[0, 360 + 0] = 5.0     # azimuth index 0 (-180 deg), middle row
    p[0, 360 + 359] = 4.0   # azimuth index 359 (179 deg): its neighbour across the seam
    p[0, 360 + 180] = 3.0   # a separate peak at 0 deg
    idx = music.find_peaks(p, nb_peaks=3, shape=shape, radius=10)
    assert idx.tolist() == [[360, 540, -1]]


def test_assign_to_classes_by_hand():
    # 3 frames, 3 classes. Frame 0: classes 0 and 2 active, the estimates come in the other order.
    # Frame 1: class 1 active, no estimate. Frame 2: class 1 active, one estimate.
    C = 3
    ref_sed = np.array([[1, 0, 1], [0, 1, 0], [0, 1, 0]], np.float32)
    vec = np.zeros((3, C, 3))
    vec[0, 0], vec[0, 2] = [1, 0, 0], [0, 1, 0]
    vec[1, 1] = vec[2, 1] = [0, 0, 1]
    ref_doa = vec.transpose(0, 2, 1).reshape(3, 3 * C)
    est = np.full((3, 2, 3), np.nan)
    est[0, 0], est[0, 1] = [0.1, 0.99, 0], [0.99, 0.1, 0]
    est[2, 0] = [0, 0.6, 0.8]
    sed, doa = music.assign_to_classes(ref_sed, ref_doa, est)
    assert sed.tolist() == [[1, 0, 1], [0, 0, 0], [0, 1, 0]]
    got = doa.reshape(3, 3, C).transpose(0, 2, 1)
    np.testing.assert_allclose(got[0, 0], [0.99, 0.1, 0], rtol=1e-6)
    np.testing.assert_allclose(got[0, 2], [0.1, 0.99, 0], rtol=1e-6)
    np.testing.assert_allclose(got[2, 1], [0, 0.6, 0.8], rtol=1e-6)
    assert not got[1].any() and not got[0, 1].any()


def test_bad_input_is_a_clear_error():
    from utils import SELDError

    spec = np.zeros((10, 256, 4), np.complex64)
    with pytest.raises(SELDError, match='needs 8 channels'):
        music.music_doas(spec, np.ones(10, int), array='circular', fs=FS, nfft=NFFT)
    with pytest.raises(SELDError, match='counts'):
        music.music_doas(spec, np.full(10, 4), array='foa', fs=FS, nfft=NFFT)
    with pytest.raises(SELDError, match='array='):
        music.music_doas(spec, np.ones(10, int), array='tetra', fs=FS, nfft=NFFT)


@pytest.mark.slow
@pytest.mark.parametrize('dataset', ['ansim', 'cansim'])
def test_conventions_agree_with_the_synthesizer(tmp_path, dataset):
    """MUSIC on the synthesizer's own anechoic ov1 clip (its sound bank, its diffuse noise at 30 dB) finds the
    labelled directions: FOA in 3-D, the circular array in azimuth."""
    import datasets
    import formats
    from cls_feature_class import read_audio

    root = tmp_path / dataset
    subprocess.run([sys.executable, 'synthesize_dataset.py', f'dataset={dataset}', 'nb_train=0', 'nb_test=1',
                    'clip_len_s=6', 'fs=16000', f'dataset_dir={root}', 'progress=false'], cwd=ROOT, check=True,
                   capture_output=True)
    wav_dir, desc_dir = datasets.tut_dirs(root, overlap=1, split=1, db=30)
    audio, _, _ = read_audio(os.path.join(wav_dir, 'test_0_desc_30_100.wav'), nb_channels=4 if dataset == 'ansim'
                             else 8)
    events = formats.read_desc_file(os.path.join(desc_dir, 'test_0_desc_30_100.csv'),
                                    classes=datasets.Dataset(dict(dataset=dataset, dataset_dir=str(root))).classes)
    spec = stft(audio, nfft=NFFT)
    t = (np.arange(spec.shape[0]) * NFFT / 2 + NFFT / 2) / FS  # frame centres, s
    inside = (t[:, None] >= events.start[None] + 0.05) & (t[:, None] < events.end[None] - 0.05)  # (T, events)
    frames, which = np.nonzero(inside)
    counts = inside.sum(axis=1)
    est = music.music_doas(spec, counts, array=music.array_of(dataset), fs=FS, nfft=NFFT, block_frames=4)
    ref = sph2cart(np.asarray(events.azi)[which], np.asarray(events.ele)[which])
    if dataset == 'ansim':
        err = angular_distance_deg(est[frames, 0], ref)
    else:
        err = np.abs((cart2sph(est[frames, 0])[0] - cart2sph(ref)[0] + 180) % 360 - 180)
    assert frames.size > 50
    assert np.median(err) < 2.0, np.median(err)

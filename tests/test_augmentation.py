"""augmentation.py against the physics: every transform is checked on audio of plane waves.

For each transform, the audio of plane waves (FOA gains, or exact fractional delays on the mic arrays) is
transformed by the transform's channel map (``new channel i = sign[i] * old channel perm[i]``) and compared with

* the audio synthesized directly for the transformed direction ``R u`` (the channel map IS the rotated scene);
* the features: ``extract_features`` of the transformed audio, standardized with a per-map scaler, against
  ``apply_to_features`` of the original standardized features (magnitudes to float32 tolerance, phases
  modulo 2 pi);
* the DOA: the active-intensity DOA (FOA) or the SRP-PHAT DOA (arrays), estimated from the transformed audio and
  from the transformed features, against ``apply_to_doa`` of the label, also with 2 simultaneous sources of
  different classes in disjoint frequency bands.

The estimators are the textbook ones of tests/acoustics.py and the synthesis is written here from the formulas (or
taken from the synthesizer's spatial module), not from augmentation.py.
"""
from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

import augmentation as A
import cls_feature_class as cfc
import label_frames
import synth.spatial as sd
from utils import SELDError, angular_distance_deg, cart2sph, sph2cart

import acoustics

FS = 44100
NFFT, HOP = 512, 256
N = int(0.3 * FS)                     # 0.3 s of audio: 48 frames
SPEED = sd.SPEED_OF_SOUND
TETRA_RADIUS_M = 0.042
DIRECTIONS = [(37.3, 21.7), (-121.4, -33.2), (163.9, 8.6)]  # (az, el) degrees, off the 45/90-degree grids
FREQS = np.arange(NFFT // 2) * FS / NFFT
LAYOUTS = ('foa', 'circular8', 'tetra')


def transforms(layout: str) -> list[A.Transform]:
    return A.transforms_for(layout, nb_channels=A.LAYOUT_CHANNELS[layout])


ALL = [(layout, i) for layout in LAYOUTS for i in range(len(transforms(layout)))]


# --------------------------------------------------------------------------------------------------
# Physics written here: signals, encoders, estimators
# --------------------------------------------------------------------------------------------------
def band_noise(seed: int, band: tuple[float, float] | None = None, n: int = N) -> np.ndarray:
    """Periodic white noise (length n), optionally band-limited to ``band`` Hz (exactly, as a periodic signal)."""
    rng = np.random.default_rng(seed)
    spec = rng.normal(size=n // 2 + 1) + 1j * rng.normal(size=n // 2 + 1)
    f = np.fft.rfftfreq(n, 1 / FS)
    spec[0] = 0
    if band is not None:
        spec[(f < band[0]) | (f > band[1])] = 0
    s = np.fft.irfft(spec, n)
    return 0.1 * s / np.std(s)


def tetra_positions() -> np.ndarray:
    az, el = np.array([(45, 35), (-45, -35), (135, -35), (-135, 35)], float).T  # DCASE MIC format
    return sph2cart(az, el, TETRA_RADIUS_M)


def periodic_plane_wave(s: np.ndarray, positions: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """Free-field plane wave from ``unit`` on omni mics at ``positions`` (m): exact fractional delays
    ``tau_m = -p_m . u / c`` of the periodic signal ``s`` (a phase shift per frequency)."""
    tau = -(positions @ unit) / SPEED
    f = np.fft.rfftfreq(len(s), 1 / FS)
    return np.fft.irfft(np.fft.rfft(s)[:, None] * np.exp(-2j * np.pi * f[:, None] * tau[None, :]), len(s), axis=0)


def scene(layout: str, sources: list[tuple[np.ndarray, float, float]]) -> np.ndarray:
    """Audio [samples, channels] of plane waves ``(signal, az, el)`` in one layout."""
    out = 0.0
    for s, az, el in sources:
        u = sph2cart(az, el)
        if layout == 'foa':
            out = out + s[:, None] * sd.foa_gains(u)[None, :]
        elif layout == 'circular8':
            out = out + sd.plane_wave_array(s, azi_deg=az, ele_deg=el, fs=FS)
        else:
            out = out + periodic_plane_wave(s, tetra_positions(), u)
    return out


def channel_map(audio: np.ndarray, t: A.Transform) -> np.ndarray:
    """The transform's definition on the audio: new channel i = sign[i] * old channel perm[i]."""
    return audio[:, t.perm] * t.sign[None, :]


def physical_doa(layout: str, spec: np.ndarray, bins: np.ndarray, ele_deg: float) -> np.ndarray:
    """DOA unit vector from a complex STFT [shape=(frames, bins, channels)], by the physics of the layout.

    The circular array cannot tell +el from -el; it is steered at ``ele_deg`` (the label's elevation, which no
    transform of that array changes) and gives the azimuth.
    """
    if layout == 'foa':
        v = acoustics.intensity_vector(spec[:, bins]).sum(axis=(0, 1))
        return v / np.linalg.norm(v)
    array = dict(bins=bins, fs=FS, nfft=NFFT, speed=SPEED, upsample=64)  # lags of 1/64 sample
    if layout == 'circular8':
        return acoustics.srp_phat_doa(spec, sd.mic_positions(), ele_deg=ele_deg, **array)
    return acoustics.srp_phat_doa(spec, tetra_positions(), **array)


def spec_of(audio: np.ndarray) -> np.ndarray:
    return cfc.stft(audio.astype(np.float32), nfft=NFFT, hop_len=HOP)


def spec_from_features(x_norm: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The complex STFT carried by (standardized) magnitude and phase maps."""
    x = x_norm.astype(np.float64) * scale + mean
    C = x.shape[-1] // 2
    return x[..., :C] * np.exp(1j * x[..., C:])


def scaler_for(feat: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per (bin, map) mean and scale fitted on ``feat``, then moved per map so no two maps share a scaler:
    handling the scaler wrongly (permuting normalized maps, shifting by pi in the normalized domain) fails."""
    rng = np.random.default_rng(seed)
    mean = feat.mean(axis=0, dtype=np.float64)
    scale = feat.std(axis=0, dtype=np.float64)
    maps = feat.shape[-1]
    scale = scale * rng.uniform(0.5, 2.0, size=maps)
    mean = mean + rng.normal(0.0, 1.0, size=maps) * scale
    return mean, scale


def standardize(feat: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return ((feat - mean) / scale).astype(np.float32)


def wrapped(d: np.ndarray) -> np.ndarray:
    return np.angle(np.exp(1j * d))


def label_of(sources: list[tuple[int, float, float]], nb_classes: int, frames: int) -> np.ndarray:
    """DOA label [shape=(frames, 3*classes)] with class c active at (az, el), the others (0, 0, 0)."""
    doa = np.zeros((frames, 3 * nb_classes), np.float32)
    for c, az, el in sources:
        doa[:, [c, nb_classes + c, 2 * nb_classes + c]] = sph2cart(az, el)
    return doa


def class_vector(doa: np.ndarray, c: int, nb_classes: int) -> np.ndarray:
    return doa[..., [c, nb_classes + c, 2 * nb_classes + c]]


@functools.lru_cache(maxsize=None)
def single_source(layout: str, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Audio of one plane wave from DIRECTIONS[d], its standardized features and the scaler."""
    az, el = DIRECTIONS[d]
    audio = scene(layout, [(band_noise(d), az, el)])
    feat = cfc.extract_features(audio.astype(np.float32), nfft=NFFT, hop_len=HOP)
    mean, scale = scaler_for(feat, seed=10 + d)
    return audio, feat, mean, scale


# --------------------------------------------------------------------------------------------------
# The transforms: hand-derived maps, group structure
# --------------------------------------------------------------------------------------------------
def test_hand_derived_channel_maps():
    foa = {t.name: t for t in transforms('foa')}
    # az + 90: (x, y) -> (-y, x), so Y' = X and X' = -Y (Mazzon et al.'s phi + pi/2).
    t = foa['azi->azi+90']
    assert t.perm.tolist() == [0, 3, 2, 1] and t.sign.tolist() == [1, 1, 1, -1]
    t = foa['azi->-azi']
    assert t.perm.tolist() == [0, 1, 2, 3] and t.sign.tolist() == [1, -1, 1, 1]
    t = foa['azi->azi, ele->-ele']
    assert t.perm.tolist() == [0, 1, 2, 3] and t.sign.tolist() == [1, 1, -1, 1]
    assert np.array_equal(foa['azi->azi+90'].R, [[0, -1, 0], [1, 0, 0], [0, 0, 1]])
    circ = {t.name: t for t in transforms('circular8')}
    m = np.arange(8)
    for k in range(8):  # az + 45 k = np.roll of the channels by +k (mic m hears what mic m - k heard)
        deg = (45 * k + 180) % 360 - 180
        name = 'identity' if k == 0 else f'azi->azi{180 if deg == -180 else deg:+d}'
        assert np.array_equal(channel_map(np.eye(8), circ[name]), np.roll(np.eye(8), k, axis=1))
    assert circ['azi->-azi'].perm.tolist() == ((-m) % 8).tolist()       # reflection about the x axis
    assert circ['azi->-azi-45'].perm.tolist() == (7 - m).tolist()       # about the axis at -22.5 degrees
    assert all(np.all(t.sign == 1) and t.R[2, 2] == 1 for t in circ.values())  # z kept: no elevation flip
    tetra = {t.name for t in transforms('tetra')}
    assert tetra == {'identity', 'azi->azi+180', 'azi->-azi+90', 'azi->-azi-90', 'azi->azi+90, ele->-ele',
                     'azi->azi-90, ele->-ele', 'azi->-azi, ele->-ele', 'azi->-azi+180, ele->-ele'}


def test_planar_array_hears_plus_and_minus_elevation_alike():
    """Why the circular array has no elevation flip: its audio for +el and -el is the same, so the only channel
    map of a z-flip is the identity (whose label keeps z)."""
    s = band_noise(0)
    for az, el in DIRECTIONS:
        np.testing.assert_allclose(scene('circular8', [(s, az, el)]), scene('circular8', [(s, az, -el)]),
                                   rtol=0, atol=1e-12)
    assert np.max(np.abs(scene('tetra', [(s, 37.3, 21.7)]) - scene('tetra', [(s, 37.3, -21.7)]))) > 1e-2


def test_tetra_has_no_channel_map_for_the_other_eight():
    """The 8 FOA transforms left out for the tetrahedron: no channel permutation of the audio (all 24 tried)
    gives the audio of the transformed scene; each kept one has exactly one."""
    s = band_noise(1)
    az, el = DIRECTIONS[0]
    audio = scene('tetra', [(s, az, el)])
    kept = {t.name for t in transforms('tetra')}
    for t in transforms('foa'):
        target = scene('tetra', [(s, *cart2sph(t.R @ sph2cart(az, el))[:2])])
        matches = [p for p in itertools.permutations(range(4))
                   if np.max(np.abs(audio[:, list(p)] - target)) < 1e-9]
        assert len(matches) == (1 if t.name in kept else 0), (t.name, matches)


@pytest.mark.parametrize('layout', LAYOUTS)
def test_transforms_are_distinct_and_form_a_group(layout):
    ts = transforms(layout)
    assert ts[0].is_identity and sum(t.is_identity for t in ts) == 1
    assert len(ts) == {'foa': 16, 'circular8': 16, 'tetra': 8}[layout]
    key = lambda perm, sign, R: (tuple(perm), tuple(sign), tuple(np.round(R, 12).ravel() + 0.0))
    keys = {key(t.perm, t.sign, t.R) for t in ts}
    assert len(keys) == len(ts) and len({t.name for t in ts}) == len(ts)
    for t in ts:
        assert np.allclose(t.R @ t.R.T, np.eye(3), atol=1e-15)
    for t1, t2 in itertools.product(ts, ts):  # t2 after t1: new_i = s2_i s1_{p2_i} old_{p1[p2_i]}
        composed = key(t1.perm[t2.perm], t2.sign * t1.sign[t2.perm], t2.R @ t1.R)
        assert composed in keys, (t1.name, t2.name)
    if layout == 'foa':  # all signed permutations of (x, y) times a sign on z
        expected = set()
        for p in ([0, 1], [1, 0]):
            for sx, sy, sz in itertools.product((1, -1), repeat=3):
                R = np.zeros((3, 3))
                R[0, p[0]], R[1, p[1]], R[2, 2] = sx, sy, sz
                expected.add(tuple(R.ravel() + 0.0))
        assert {tuple(t.R.ravel()) for t in ts} == expected


# --------------------------------------------------------------------------------------------------
# Per transform: audio, features and DOA against the physics
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('layout,i', ALL)
def test_channel_map_is_the_rotated_scene(layout, i):
    """The transformed audio equals the audio synthesized for the transformed direction R u."""
    t = transforms(layout)[i]
    for d, (az, el) in enumerate(DIRECTIONS):
        s = band_noise(d)
        az2, el2, _ = cart2sph(t.R @ sph2cart(az, el))
        np.testing.assert_allclose(channel_map(scene(layout, [(s, az, el)]), t), scene(layout, [(s, az2, el2)]),
                                   rtol=0, atol=1e-9)


def feature_errors(layout: str, t: A.Transform, d: int) -> tuple[float, float, np.ndarray, np.ndarray]:
    """(max magnitude error, max wrapped phase error) of apply_to_features against the transformed audio's
    features, and both feature arrays."""
    audio, feat, mean, scale = single_source(layout, d)
    x_norm = standardize(feat, mean, scale)
    expected = cfc.extract_features(channel_map(audio, t).astype(np.float32), nfft=NFFT, hop_len=HOP,
                                    mean=mean, scale=scale)
    got = A.apply_to_features(x_norm, t, mean=mean, scale=scale)
    C = t.nb_channels
    un_got, un_exp = got.astype(np.float64) * scale + mean, expected.astype(np.float64) * scale + mean
    mag_err = np.max(np.abs(un_got[..., :C] - un_exp[..., :C])) / np.max(un_exp[..., :C])
    phase_err = np.max(np.abs(wrapped(un_got[..., C:] - un_exp[..., C:])))
    return float(mag_err), float(phase_err), got, expected


@pytest.mark.parametrize('layout,i', ALL)
def test_features_of_transformed_audio_equal_transformed_features(layout, i):
    t = transforms(layout)[i]
    for d in range(len(DIRECTIONS)):
        mag_err, phase_err, got, expected = feature_errors(layout, t, d)
        assert got.dtype == np.float32 and got.shape == expected.shape
        assert mag_err < 2e-6, mag_err        # relative to the largest magnitude
        assert phase_err < 2e-5, phase_err    # radians, modulo 2 pi
        _, _, mean, scale = single_source(layout, d)
        phase = got.astype(np.float64)[..., t.nb_channels:] * scale[:, t.nb_channels:] + mean[:, t.nb_channels:]
        assert np.all(np.abs(phase) <= np.pi + 1e-5)  # wrapped into the range of np.arctan2


def test_naive_permutation_of_normalized_features_is_wrong():
    """The check above can fail: permuting and sign-shifting the normalized maps without the scaler does."""
    for layout in LAYOUTS:
        t = transforms(layout)[1]
        audio, feat, mean, scale = single_source(layout, 0)
        C = t.nb_channels
        naive = standardize(feat, mean, scale)[..., np.concatenate([t.perm, t.perm + C])]
        expected = cfc.extract_features(channel_map(audio, t).astype(np.float32), nfft=NFFT, hop_len=HOP,
                                        mean=mean, scale=scale)
        assert np.max(np.abs(naive[..., :C] - expected[..., :C])) > 0.1


def doa_errors(layout: str, t: A.Transform, d: int) -> tuple[float, float]:
    """Angle (degrees) between the transformed label and the physical DOA of (transformed audio, transformed
    features)."""
    az, el = DIRECTIONS[d]
    audio, feat, mean, scale = single_source(layout, d)
    C = 3
    label = label_of([(1, az, el)], C, feat.shape[0])
    new = class_vector(A.apply_to_doa(label, t, nb_classes=C), 1, C)[0]
    ele_label = float(cart2sph(new)[1])
    bins = np.arange(1, NFFT // 2)
    from_audio = physical_doa(layout, spec_of(channel_map(audio, t)), bins, ele_label)
    got = A.apply_to_features(standardize(feat, mean, scale), t, mean=mean, scale=scale)
    from_feat = physical_doa(layout, spec_from_features(got, mean, scale), bins, ele_label)
    return direction_error(layout, from_audio, new), direction_error(layout, from_feat, new)


def direction_error(layout: str, est: np.ndarray, label: np.ndarray) -> float:
    """Degrees between an estimate and a label vector; azimuth only for the circular array."""
    if layout == 'circular8':  # the elevation was the steering one
        return float(np.rad2deg(abs(wrapped(np.deg2rad(cart2sph(est)[0] - cart2sph(label)[0])))))
    return float(angular_distance_deg(est, label))


# Measured maxima: FOA 3e-6 degrees (the intensity of a plane wave is exact); arrays 0.02 degrees (the
# estimators' resolution: GCC lags at 1/64 sample, 0.01-degree search grid). A wrong transform is >= 45 off.
DOA_TOL_DEG = {'foa': 0.01, 'circular8': 0.1, 'tetra': 0.1}


@pytest.mark.parametrize('layout,i', ALL)
def test_physical_doa_of_transformed_audio_matches_transformed_label(layout, i):
    t = transforms(layout)[i]
    for d in range(len(DIRECTIONS)):
        err_audio, err_feat = doa_errors(layout, t, d)
        assert err_audio < DOA_TOL_DEG[layout] and err_feat < DOA_TOL_DEG[layout], (d, err_audio, err_feat)


BANDS = {'foa': ((300.0, 3000.0), (6000.0, 12000.0)), 'circular8': ((300.0, 2000.0), (2500.0, 4500.0)),
         'tetra': ((300.0, 1500.0), (2000.0, 3500.0))}


def two_source_errors(layout: str, t: A.Transform) -> list[float]:
    """Two sources of classes 0 and 2 in disjoint bands; class 1 inactive. Angle (degrees) of each band's
    physical DOA (from the transformed audio) to its class's transformed label vector."""
    (az0, el0), (az2, el2) = DIRECTIONS[0], DIRECTIONS[1]
    bands = BANDS[layout]
    audio = scene(layout, [(band_noise(5, bands[0]), az0, el0), (band_noise(6, bands[1]), az2, el2)])
    spec = spec_of(channel_map(audio, t))
    C = 3
    label = label_of([(0, az0, el0), (2, az2, el2)], C, spec.shape[0])
    new = A.apply_to_doa(label, t, nb_classes=C)
    assert np.all(class_vector(new, 1, C) == 0)  # the inactive class stays (0, 0, 0)
    errs = []
    for c, (lo, hi) in zip((0, 2), bands):
        bins = np.flatnonzero((FREQS >= lo + 200) & (FREQS <= hi - 200))  # away from the band edges (leakage)
        v = class_vector(new, c, C)[0]
        errs.append(direction_error(layout, physical_doa(layout, spec, bins, float(cart2sph(v)[1])), v))
    return errs


@pytest.mark.parametrize('layout', LAYOUTS)
def test_two_sources_each_class_vector_follows_its_source(layout):
    for t in transforms(layout):
        errs = two_source_errors(layout, t)
        assert max(errs) < DOA_TOL_DEG[layout], (t.name, errs)


# --------------------------------------------------------------------------------------------------
# DOA targets: azimuth only, inactive classes, dtypes
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('layout', LAYOUTS)
def test_azimuth_only_targets_follow_the_xy_block(layout):
    rng = np.random.default_rng(3)
    C, T = 4, 30
    az, el = rng.uniform(-180, 180, size=(T, C)), rng.uniform(-40, 40, size=(T, C))
    active = rng.random((T, C)) < 0.6
    xyz = sph2cart(az, el) * active[..., None]
    label = np.concatenate([active, xyz[..., 0], xyz[..., 1], xyz[..., 2]], axis=-1).astype(np.float32)
    for t in transforms(layout):
        full = A.apply_to_doa(label[:, C:], t, nb_classes=C)
        _, expected = label_frames.split_label(np.concatenate([label[:, :C], full], axis=-1), nb_classes=C,
                                               azi_only=True)
        _, azi = label_frames.split_label(label, nb_classes=C, azi_only=True)
        got = A.apply_to_doa(azi, t, nb_classes=C)
        assert got.shape == azi.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, atol=1e-6)
        # inactive classes stay exactly zero; azimuths move as the name says
        assert np.all(got[:, :C][~active] == 0) and np.all(got[:, C:][~active] == 0)
        assert np.all(full[:, :C][~active] == 0) and np.all(full[:, 2 * C:][~active] == 0)
        new_az = np.rad2deg(np.arctan2(got[:, C:], got[:, :C]))
        refl = '-azi' in t.name
        shift = float(t.name.split('azi')[-1].split(',')[0] or 0) if t.name != 'identity' else 0.0
        want = (-az if refl else az) + shift
        assert np.all(np.abs(wrapped(np.deg2rad(new_az - want)))[active] < 1e-5)
        want_el = -el if 'ele->-ele' in t.name else el
        assert np.allclose(np.rad2deg(np.arcsin(np.clip(full[:, 2 * C:], -1, 1)))[active], want_el[active], atol=1e-3)


# --------------------------------------------------------------------------------------------------
# Identity, batches, shapes, bad input
# --------------------------------------------------------------------------------------------------
def _scaler(rng, bins, maps):
    return rng.normal(size=(bins, maps)), rng.uniform(0.5, 2.0, size=(bins, maps))


@pytest.mark.parametrize('layout', LAYOUTS)
def test_identity_is_bit_exact(layout):
    rng = np.random.default_rng(0)
    C = A.LAYOUT_CHANNELS[layout]
    x = rng.normal(size=(3, 20, 16, 2 * C)).astype(np.float32)
    x[0, 0, 0, 0] = -0.0
    doa = rng.normal(size=(3, 20, 9)).astype(np.float32)
    mean, scale = _scaler(rng, 16, 2 * C)
    ident = transforms(layout)[0]
    got = A.apply_to_features(x, ident, mean=mean, scale=scale)
    assert got is not x and got.tobytes() == x.tobytes()
    assert A.apply_to_doa(doa, ident, nb_classes=3).tobytes() == doa.tobytes()
    xb, db = A.apply_batch(x, doa, np.zeros(3, int), transforms=transforms(layout), mean=mean, scale=scale,
                           nb_classes=3)
    assert xb.tobytes() == x.tobytes() and db.tobytes() == doa.tobytes()


@pytest.mark.parametrize('layout', LAYOUTS)
def test_apply_batch_applies_each_sequences_transform(layout):
    rng = np.random.default_rng(1)
    C, K, B, T, F = A.LAYOUT_CHANNELS[layout], 3, 7, 12, 8
    ts = transforms(layout)
    x = rng.normal(size=(B, T, F, 2 * C)).astype(np.float32)
    doa = rng.normal(size=(B, T, 2 * K)).astype(np.float32)  # azimuth only
    mean, scale = _scaler(rng, F, 2 * C)
    ids = np.array([0, 1, len(ts) - 1, 1, 2, 0, 1])
    valid = np.ones((B, T), bool)
    valid[3, 9:] = False  # padding of the generator's last partial sequence
    x[3, 9:] = 0.0
    doa[3, 9:] = 0.0
    xb, db = A.apply_batch(x, doa, ids, transforms=ts, mean=mean, scale=scale, nb_classes=K, valid=valid)
    assert xb.shape == x.shape and xb.dtype == np.float32 and db.shape == doa.shape and db.dtype == np.float32
    for b in range(B):
        n = valid[b].sum()
        assert np.array_equal(xb[b, :n], A.apply_to_features(x[b, :n], ts[ids[b]], mean=mean, scale=scale))
        assert np.array_equal(db[b, :n], A.apply_to_doa(doa[b, :n], ts[ids[b]], nb_classes=K))
    assert np.all(xb[3, 9:] == 0) and np.all(db[3, 9:] == 0)
    assert not np.array_equal(xb[1], x[1])  # a non-identity transform changed something
    one = A.apply_to_features(x[0, 0], ts[1], mean=mean, scale=scale)  # (bins, maps) alone works too
    assert one.shape == (F, 2 * C) and np.array_equal(one, A.apply_to_features(x[:1, :1], ts[1], mean=mean,
                                                                               scale=scale)[0, 0])


def test_bad_input_raises_clear_errors():
    rng = np.random.default_rng(2)
    foa = transforms('foa')
    x = rng.normal(size=(2, 5, 6, 8)).astype(np.float32)
    mean, scale = _scaler(rng, 6, 8)
    doa = np.zeros((2, 5, 9), np.float32)
    with pytest.raises(SELDError, match=r"layout='mic': must be one of 'foa', 'circular8', 'tetra'"):
        A.transforms_for('mic', nb_channels=8)
    with pytest.raises(SELDError, match=r"nb_channels=8: layout 'foa' has 4 channels"):
        A.transforms_for('foa', nb_channels=8)
    with pytest.raises(SELDError, match=r'features have shape \(2, 5, 6, 16\): expected \(\.\.\., bins, 8\)'):
        A.apply_to_features(np.zeros((2, 5, 6, 16), np.float32), foa[1], mean=mean, scale=scale)
    with pytest.raises(SELDError, match=r'mean \(6, 16\) and scale \(6, 8\): expected \(6, 8\)'):
        A.apply_to_features(x, foa[1], mean=np.zeros((6, 16)), scale=scale)
    with pytest.raises(SELDError, match='scale > 0'):
        A.apply_to_features(x, foa[1], mean=mean, scale=np.zeros_like(scale))
    with pytest.raises(SELDError, match=r'DOA targets have shape \(2, 5, 7\): expected \(\.\.\., 9\).*\(\.\.\., 6\)'):
        A.apply_to_doa(np.zeros((2, 5, 7)), foa[1], nb_classes=3)
    with pytest.raises(SELDError, match='must be an augmentation.Transform'):
        A.apply_to_doa(doa, 'azi->azi+90', nb_classes=3)
    with pytest.raises(SELDError, match=r'transform_ids within \[0, 16\]: must index the 16 transforms'):
        A.apply_batch(x, doa, np.array([0, 16]), transforms=foa, mean=mean, scale=scale, nb_classes=3)
    with pytest.raises(SELDError, match=r'transform_ids has shape \(3,\).*expected \(2,\) integers'):
        A.apply_batch(x, doa, np.array([0, 1, 2]), transforms=foa, mean=mean, scale=scale, nb_classes=3)
    with pytest.raises(SELDError, match=r'expected \(2,\) integers'):
        A.apply_batch(x, doa, np.array([0.0, 1.0]), transforms=foa, mean=mean, scale=scale, nb_classes=3)
    with pytest.raises(SELDError, match=r'valid has shape \(2, 4\): expected \(2, 5\)'):
        A.apply_batch(x, doa, np.array([0, 1]), transforms=foa, mean=mean, scale=scale, nb_classes=3,
                      valid=np.ones((2, 4), bool))
    with pytest.raises(SELDError, match='features have shape'):  # an 8-channel transform on 4-channel features
        A.apply_batch(x, doa, np.array([0, 1]), transforms=transforms('circular8'), mean=mean, scale=scale,
                      nb_classes=3)
    with pytest.raises(SELDError, match="layout='foa': mic directions exist for 'circular8' and 'tetra'"):
        A.mic_directions('foa')

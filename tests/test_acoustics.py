"""tests/acoustics.py, the tests' physics oracles, on signals whose answer is known by construction: a delayed copy
(GCC-PHAT), an FOA plane wave (active intensity), a plane wave on a tetrahedral array (SRP-PHAT)."""
from __future__ import annotations

import numpy as np
import pytest

import acoustics

FS = 24000
SPEED = 343.0


def noise(n: int, seed: int = 0) -> np.ndarray:
    """White noise with n // 4 zeros at both ends: a circular shift by less than that is a linear delay."""
    x = np.random.default_rng(seed).standard_normal(n)
    x[:n // 4] = 0
    x[-(n // 4):] = 0
    return x


def delayed(x: np.ndarray, samples: float) -> np.ndarray:
    """``x`` delayed by a (fractional) number of samples: a linear phase in frequency."""
    f = np.fft.rfftfreq(len(x))
    return np.fft.irfft(np.fft.rfft(x) * np.exp(-2j * np.pi * f * samples), len(x))


@pytest.mark.parametrize('samples', [0.0, 5.0, -7.0, 2.5, -3.25])
def test_gcc_phat_delay_of_a_delayed_copy(samples):
    x = noise(4096)
    y = delayed(x, samples)
    assert acoustics.gcc_phat_delay(x, y) == pytest.approx(samples, abs=1 / 32)
    assert acoustics.gcc_phat_delay(x, y, max_lag=8.0) == pytest.approx(samples, abs=1 / 32)
    assert acoustics.gcc_phat_delay(y, x) == pytest.approx(-samples, abs=1 / 32)


@pytest.mark.parametrize('azi, ele', [(37.0, 21.0), (-121.0, -33.0), (180.0, 0.0), (10.0, 80.0)])
def test_foa_intensity_points_to_a_plane_wave(azi, ele):
    s = noise(8192, seed=1)
    a, e = np.deg2rad(azi), np.deg2rad(ele)
    foa = s[:, None] * np.array([1.0, np.sin(a) * np.cos(e), np.sin(e), np.cos(a) * np.cos(e)])  # W Y Z X
    v = acoustics.foa_intensity(foa)
    np.testing.assert_allclose(v / np.linalg.norm(v), acoustics.unit_vectors(azi, ele), atol=1e-9)


def tetrahedron(radius: float = 0.042) -> np.ndarray:
    az, el = np.array([(45, 35), (-45, -35), (135, -35), (-135, 35)], float).T
    return radius * acoustics.unit_vectors(az, el)


@pytest.mark.parametrize('azi, ele', [(37.3, 21.7), (-121.4, -33.2)])
def test_srp_phat_finds_a_plane_wave_on_a_tetrahedron(azi, ele):
    """Frames of periodic noise, each delayed exactly at every mic (``tau_m = -p_m . u / c``, a phase per bin)."""
    pos, u, nfft = tetrahedron(), acoustics.unit_vectors(azi, ele), 512
    frames = np.fft.rfft(np.random.default_rng(2).standard_normal((8, nfft)), axis=-1)  # (frames, bins)
    tau = -(pos @ u) / SPEED  # (mics,) seconds
    f = np.fft.rfftfreq(nfft, 1 / FS)
    spec = frames[..., None] * np.exp(-2j * np.pi * f[None, :, None] * tau[None, None, :])  # (frames, bins, mics)
    bins = np.arange(1, nfft // 2)
    for ele_deg in (None, ele):  # searched in 3D, or steered at the true elevation (a planar array's search)
        got = acoustics.srp_phat_doa(spec, pos, bins=bins, fs=FS, nfft=nfft, speed=SPEED, ele_deg=ele_deg)
        assert np.degrees(np.arccos(np.clip(got @ u, -1, 1))) < 0.1, ele_deg
    # the oracle can tell: a mirrored scene (y -> -y) is found mirrored
    mirrored = acoustics.srp_phat_doa(spec, pos * [1, -1, 1], bins=bins, fs=FS, nfft=nfft, speed=SPEED)
    assert np.degrees(np.arccos(np.clip(mirrored @ (u * [1, -1, 1]), -1, 1))) < 0.1

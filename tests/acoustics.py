"""The tests' physics oracles: textbook direction and delay estimators, written from the formulas.

Independent of the package on purpose (numpy and scipy only): the tests compare what the synthesizers, the
features and the augmentation write with what these estimators measure on the audio.

* :func:`intensity_vector` / :func:`foa_intensity`: the active intensity ``Re{conj(W) [X, Y, Z]}`` of FOA
  (ACN channel order W, Y, Z, X; any normalization with equal X, Y, Z gains), which points to the source.
* :func:`gcc_phat_delay`: the delay of one signal relative to another (GCC-PHAT, sub-sample by zero-padding).
* :func:`gcc_phat_pairs` and :func:`srp_phat_doa`: the steered response power (SRP-PHAT) DOA of a mic array
  from its STFT.
"""
from __future__ import annotations

import numpy as np
import scipy.fft
import scipy.signal


# --------------------------------------------------------------------------------------------------
# FOA: active intensity
# --------------------------------------------------------------------------------------------------
def intensity_vector(spec: np.ndarray) -> np.ndarray:
    """Active intensity ``Re{conj(W) [X, Y, Z]}`` of every STFT cell of FOA.

    Parameters
    ----------
    spec : np.ndarray [shape=(..., 4)], complex
        STFT cells with the ACN channels W, Y, Z, X last.

    Returns
    -------
    np.ndarray [shape=(..., 3)]
        ``(x, y, z)`` per cell, unnormalized: sum it over the cells of one source for its direction.
    """
    return np.real(np.conj(spec[..., :1]) * spec[..., [3, 1, 2]])


def foa_intensity(audio: np.ndarray, *, nperseg: int = 512) -> np.ndarray:
    """Active intensity of FOA audio summed over all the cells of its STFT (``scipy.signal.stft``).

    Parameters
    ----------
    audio : np.ndarray [shape=(samples, 4)]
        W, Y, Z, X (ACN).
    nperseg : int
        STFT window length in samples (Hann, half overlap).

    Returns
    -------
    np.ndarray [shape=(3,)]
        ``(x, y, z)``, unnormalized; its direction is the DOA of a single plane wave.
    """
    _, _, spec = scipy.signal.stft(np.asarray(audio).T, nperseg=nperseg)  # (4, freqs, frames)
    return intensity_vector(np.moveaxis(spec, 0, -1)).sum(axis=(0, 1))


# --------------------------------------------------------------------------------------------------
# GCC-PHAT
# --------------------------------------------------------------------------------------------------
def gcc_phat_delay(x: np.ndarray, y: np.ndarray, *, upsample: int = 32, max_lag: float | None = None) -> float:
    """Delay of ``y`` relative to ``x`` in samples, by GCC-PHAT.

    The phase transform of the cross-spectrum ``Y conj(X)`` is inverse-transformed zero-padded ``upsample`` times,
    which evaluates the cross-correlation on a grid of ``1/upsample`` sample (band-limited interpolation).

    Parameters
    ----------
    x, y : np.ndarray [shape=(samples,)]
    upsample : int
        Lag resolution: ``1/upsample`` sample.
    max_lag : float or None
        Search only lags within ``+-max_lag`` samples; None: every lag of the (linear, zero-padded) correlation.

    Returns
    -------
    float
        The lag of the peak in samples; positive when ``y`` lags ``x``.
    """
    n = scipy.fft.next_fast_len(2 * len(x), real=True)  # linear, not circular, correlation
    cross = np.fft.rfft(y, n) * np.conj(np.fft.rfft(x, n))
    m = n * upsample
    cc = np.fft.irfft(cross / np.maximum(np.abs(cross), 1e-20), m)
    if max_lag is None:
        lags = np.arange(m)
        lags[lags > m // 2] -= m
    else:
        lags = np.arange(-int(max_lag * upsample), int(max_lag * upsample) + 1)
    return float(lags[np.argmax(cc[lags])] / upsample)


def gcc_phat_pairs(spec: np.ndarray, *, bins: np.ndarray, nfft: int,
                   upsample: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GCC-PHAT of every mic pair of an STFT on a lag grid of ``1/upsample`` sample.

    For a plane wave ``X_i conj(X_j) = |S|^2 exp(-2j pi f (tau_i - tau_j))``, so
    ``r(lag) = Re sum_f PHAT(X_i conj X_j) exp(+2j pi f lag)`` (summed over frames and ``bins``) peaks at
    ``lag = tau_i - tau_j``; the zero-padded inverse FFT evaluates it at every lag at once.

    Parameters
    ----------
    spec : np.ndarray [shape=(frames, nfft // 2 or nfft // 2 + 1, mics)], complex
    bins : np.ndarray
        The frequency bins to use (indices into the second axis).
    nfft : int
        The STFT's FFT length: bin ``k`` is ``k fs / nfft`` Hz.
    upsample : int
        Lag resolution: ``1/upsample`` sample.

    Returns
    -------
    r : np.ndarray [shape=(pairs, nfft * upsample)]
        The correlation at lags ``0, 1/upsample, ...`` samples (circular: negative lags at the end).
    i, j : np.ndarray [shape=(pairs,)]
        The mics of each pair (``i < j``).
    """
    i, j = np.triu_indices(spec.shape[-1], 1)
    cross = spec[..., i] * np.conj(spec[..., j])
    g = (cross / np.maximum(np.abs(cross), 1e-30)).sum(axis=0)  # (bins, pairs)
    full = np.zeros((len(i), nfft * upsample // 2 + 1), complex)
    full[:, bins] = g[bins].T
    return scipy.fft.irfft(full, nfft * upsample, axis=-1), i, j


def srp_phat(gcc: tuple[np.ndarray, np.ndarray, np.ndarray], positions: np.ndarray, dirs: np.ndarray, *,
             fs: float, upsample: int, speed: float) -> np.ndarray:
    """Steered response power: the sum over pairs of the GCC-PHAT at each pair's delay for a plane wave from
    each of ``dirs``.

    Parameters
    ----------
    gcc : tuple
        :func:`gcc_phat_pairs`' ``(r, i, j)``, computed with the same ``upsample``.
    positions : np.ndarray [shape=(mics, 3)]
        Mic positions in metres.
    dirs : np.ndarray [shape=(directions, 3)]
        Unit vectors towards the candidate sources.
    fs : float
        Sampling rate in Hz.
    upsample : int
        The lag resolution of ``gcc``: ``1/upsample`` sample.
    speed : float
        Speed of sound in m/s.

    Returns
    -------
    np.ndarray [shape=(directions,)]
        The power of each direction (linear interpolation between lags).
    """
    r, i, j = gcc
    n = r.shape[1]
    tau = -(dirs @ positions.T) / speed                          # (D, mics) delay of each mic, s
    lag = ((tau[:, i] - tau[:, j]) * fs * upsample) % n          # (D, pairs) fractional index
    floor = np.floor(lag)
    w = lag - floor
    lo = floor.astype(int) % n  # (a tiny negative lag % n rounds to n)
    p = np.arange(len(i))[None, :]
    return np.sum((1 - w) * r[p, lo] + w * r[p, (lo + 1) % n], axis=1)


def unit_vectors(azi_deg: np.ndarray, ele_deg: np.ndarray) -> np.ndarray:
    """Unit vectors ``(x, y, z)`` [shape=(..., 3)] of azimuths and elevations in degrees."""
    a, e = np.deg2rad(azi_deg), np.deg2rad(ele_deg)
    return np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], axis=-1)


def srp_phat_doa(spec: np.ndarray, positions: np.ndarray, *, bins: np.ndarray, fs: float, nfft: int, speed: float,
                 upsample: int = 64, ele_deg: float | None = None) -> np.ndarray:
    """DOA unit vector of the SRP-PHAT peak of an array, searched on ever finer grids.

    Parameters
    ----------
    spec : np.ndarray [shape=(frames, bins, mics)], complex
        The STFT of the array.
    positions : np.ndarray [shape=(mics, 3)]
        Mic positions in metres.
    bins, fs, nfft, upsample : see :func:`gcc_phat_pairs`
    speed : float
        Speed of sound in m/s.
    ele_deg : float or None
        None: search azimuth and elevation (2-degree grid, then 0.1, then 0.01 degrees around the peak). A number:
        search the azimuth only, steered at this elevation (1-degree grid, then 0.01 degrees): for a planar array,
        which cannot tell +el from -el.

    Returns
    -------
    np.ndarray [shape=(3,)]
    """
    gcc = gcc_phat_pairs(spec, bins=bins, nfft=nfft, upsample=upsample)

    def power(az, el):
        return srp_phat(gcc, positions, unit_vectors(az, el), fs=fs, upsample=upsample, speed=speed)

    if ele_deg is not None:
        best = 0.0
        for grid in (np.arange(-180.0, 180.0, 1.0), np.arange(-1.0, 1.0 + 1e-9, 0.01)):
            grid = grid + best
            best = float(grid[np.argmax(power(grid, np.full_like(grid, ele_deg)))])
        return unit_vectors(best, ele_deg)
    best = (0.0, 0.0)
    for azs, els in ((np.arange(-180.0, 180.0, 2.0), np.arange(-90.0, 90.01, 2.0)),
                     (np.arange(-2.0, 2.01, 0.1), np.arange(-2.0, 2.01, 0.1)),
                     (np.arange(-0.1, 0.101, 0.01), np.arange(-0.1, 0.101, 0.01))):
        az, el = (a.ravel() for a in np.meshgrid(best[0] + azs, best[1] + els, indexing='ij'))
        k = np.argmax(power(az, el))
        best = (az[k], el[k])
    return unit_vectors(*best)

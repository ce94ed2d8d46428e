"""MUSIC: the paper's parametric DOA baseline, given the number of active sources per frame.

Narrowband MUSIC (Schmidt 1986) on the spatial covariance of each block of STFT frames, incoherently summed over
frequency, searched on a 1-degree grid:

* covariance: ``R_f = mean_t x_{t,f} x_{t,f}^H`` over the ``block_frames`` frames of a block (a single frame's
  ``x x^H`` has rank 1, which cannot hold two sources); every frame of a block shares its block's spectrum; each
  block uses the ``max_bins`` bins of the band with the most power (``trace R_f``): a tonal sound fills few bins;
* subspaces: ``np.linalg.eigh`` of every (block, bin) covariance at once; the signal subspace ``E_s`` is spanned by
  the eigenvectors of the ``k`` largest eigenvalues, ``k`` the largest reference count of the block's frames;
* pseudo-spectrum: ``P(g) = sum_f 1 / (||a_f(g)||^2 - ||E_s,f^H a_f(g)||^2)`` (``= sum_f 1 / ||E_n^H a||^2``, the
  noise-subspace form), each bin's steering vectors ``a_f(g)`` normalized to unit norm;
* peaks: maxima of ``P`` within ``peak_radius_deg`` (``scipy.ndimage.maximum_filter``, azimuth wrapped), found on
  a coarse grid and climbed on the 1-degree grid (:func:`music_doas`); frame ``t`` takes the ``k_t`` highest peaks
  of its block, ``k_t`` its reference count.

Arrays (the look-alikes of :mod:`synthesize_dataset`):

* ``foa`` (ANSIM, RESIM): ACN W, Y, Z, X with SN3D gains ``[1, sin az cos el, sin el, cos az cos el]``,
  frequency-independent; grid azimuth -180..179, elevation -90..90.
* ``circular`` (CANSIM, CRESIM): 8 omnidirectional mics on a horizontal circle of radius 0.05 m, mic m at azimuth
  45 m degrees; far-field plane-wave phase delays ``a_m = exp(-2j pi f tau_m)``, ``tau_m = -(u . p_m) / c`` with
  ``c`` = 343 m/s (pyroomacoustics' constant, which the synthesizer uses). The delays depend on ``cos el`` only, so
  the array cannot tell +el from -el: the grid has elevations 0..90 and every estimate is at or above the horizon.
  Bins up to :data:`CIRCULAR_MAX_HZ` (below spatial aliasing: the mic spacing is 3.8 cm, half a wavelength at
  4.48 kHz).

All in numpy, vectorized over blocks and bins (a Python loop only over chunks of blocks and over the few bins).
"""
from __future__ import annotations

import numpy as np
import scipy.ndimage

from utils import SELDError, sph2cart

#: m/s: the speed of sound of the synthesizer (pyroomacoustics' constant ``c``; tests/test_music.py checks it).
SPEED_OF_SOUND = 343.0
NB_MICS = 8
MIC_RADIUS_M = 0.05
ARRAYS = ('foa', 'circular')
#: Hz: the circular array's band (spatial aliasing above c / (2 * 0.0383 m) = 4.48 kHz).
CIRCULAR_MAX_HZ = 4000.0
#: Hz: the default band (lowest bin used; the FOA gains hold at every frequency).
MIN_HZ = 200.0
FOA_MAX_HZ = 8000.0
#: Steps of the fine search at most (each moves every window to its maximum; it stops when none moves).
MAX_CLIMBS = 10
#: Coarse peaks climbed beyond the number of sources (two may climb to one peak).
EXTRA_CANDIDATES = 2


def array_of(dataset: str) -> str:
    """``'foa'`` for ANSIM, RESIM, REAL (and any FOA set), ``'circular'`` for CANSIM and CRESIM."""
    return 'circular' if dataset in ('cansim', 'cresim') else 'foa'


def grid(array: str) -> tuple[np.ndarray, np.ndarray]:
    """The 1-degree search grid.

    Returns
    -------
    azi_deg : np.ndarray [shape=(360,)], -180 .. 179
    ele_deg : np.ndarray [shape=(181,)] (-90 .. 90, FOA) or [shape=(91,)] (0 .. 90, circular)
    """
    _check_array(array)
    azi = np.arange(-180.0, 180.0)
    ele = np.arange(-90.0, 91.0) if array == 'foa' else np.arange(0.0, 91.0)
    return azi, ele


def foa_steering(azi_deg: np.ndarray, ele_deg: np.ndarray) -> np.ndarray:
    """FOA (ACN W, Y, Z, X; SN3D) plane-wave gains.

    Parameters
    ----------
    azi_deg, ele_deg : np.ndarray [shape=(...)], degrees (broadcast together)

    Returns
    -------
    a : np.ndarray [shape=(..., 4)], float64: ``[1, sin az cos el, sin el, cos az cos el]``
    """
    u = sph2cart(azi_deg, ele_deg)
    return np.stack([np.ones(u.shape[:-1]), u[..., 1], u[..., 2], u[..., 0]], axis=-1)


def circular_positions(*, nb_mics: int = NB_MICS, radius_m: float = MIC_RADIUS_M) -> np.ndarray:
    """Mic positions of the circular array, metres [shape=(nb_mics, 3)]: mic m at azimuth 360 m / nb_mics degrees,
    z = 0."""
    return sph2cart(360.0 / nb_mics * np.arange(nb_mics), np.zeros(nb_mics), radius_m)


def circular_steering(azi_deg: np.ndarray, ele_deg: np.ndarray, *, freqs_hz: np.ndarray,
                      positions: np.ndarray | None = None, c: float = SPEED_OF_SOUND) -> np.ndarray:
    """Far-field plane-wave steering vectors of a microphone array (phase delays relative to its centre).

    Parameters
    ----------
    azi_deg, ele_deg : np.ndarray [shape=(...)], degrees (broadcast together)
    freqs_hz : np.ndarray [shape=(F,)], Hz
    positions : np.ndarray [shape=(M, 3)], metres; default :func:`circular_positions`
    c : float, m/s

    Returns
    -------
    a : np.ndarray [shape=(F, ..., M)], complex128: ``exp(-2j pi f tau_m)``, ``tau_m = -(u . p_m) / c``, i.e. the
        STFT of a plane wave from direction ``u`` at mic m relative to the centre (mics nearer the source lead).
    """
    pos = circular_positions() if positions is None else np.asarray(positions, dtype=np.float64)
    tau = -(sph2cart(azi_deg, ele_deg) @ pos.T) / c  # (..., M) s
    f = np.asarray(freqs_hz, dtype=np.float64).reshape((-1,) + (1,) * tau.ndim)
    return np.exp(-2j * np.pi * f * tau[None])


def block_covariance(spec: np.ndarray, *, block_frames: int) -> np.ndarray:
    """Spatial covariance of each block of frames.

    Parameters
    ----------
    spec : np.ndarray [shape=(frames, bins, channels)], complex: an STFT
    block_frames : int
        Frames per block; the last block may be shorter (it averages the frames it has).

    Returns
    -------
    cov : np.ndarray [shape=(ceil(frames / block_frames), bins, channels, channels)], complex128:
        ``mean_t x x^H`` over the block's frames.
    """
    if block_frames < 1:
        raise SELDError(f'block_frames={block_frames}: must be >= 1')
    T, F, M = spec.shape
    B = -(-T // block_frames)
    x = np.zeros((B * block_frames, F, M), np.complex128)
    x[:T] = spec
    x = x.reshape(B, block_frames, F, M).transpose(0, 2, 3, 1)  # (B, F, M, block_frames)
    n = np.minimum(block_frames, T - block_frames * np.arange(B)).astype(np.float64)
    return (x @ x.conj().swapaxes(-1, -2)) / n[:, None, None, None]


def signal_subspace(cov: np.ndarray, *, nb_sources: np.ndarray) -> np.ndarray:
    """The conjugate-transposed signal subspaces of every (block, bin) covariance (``np.linalg.eigh`` of all at once).

    Parameters
    ----------
    cov : np.ndarray [shape=(B, F, M, M)], Hermitian
    nb_sources : np.ndarray [shape=(B,)], int in 0 .. M-1: signal-subspace dimension of each block

    Returns
    -------
    EsH : np.ndarray [shape=(B, F, kmax, M)]: rows = eigenvectors of the ``nb_sources[b]`` largest eigenvalues, zero
        rows beyond them (``kmax = max(nb_sources)``).
    """
    B, F, M, _ = cov.shape
    k = np.asarray(nb_sources, dtype=np.int64)
    if k.shape != (B,) or k.min(initial=0) < 0 or k.max(initial=0) >= M:
        raise SELDError(f'nb_sources: must be {B} integers in 0 .. {M - 1} (one per block), not {k}')
    kmax = int(k.max(initial=0))
    _, vecs = np.linalg.eigh(cov)  # ascending eigenvalues; (B, F, M, M)
    keep = np.arange(kmax)[::-1] < k[:, None]  # (B, kmax): column j holds the (kmax - j)-th largest eigenvalue
    return (vecs[..., M - kmax:] * keep[:, None, None, :]).conj().swapaxes(-1, -2)


def pseudo_spectrum(EsH: np.ndarray, steering: np.ndarray) -> np.ndarray:
    """MUSIC pseudo-spectrum of every block, summed over the bins.

    Parameters
    ----------
    EsH : np.ndarray [shape=(B, F, kmax, M)], from :func:`signal_subspace`
    steering : np.ndarray [shape=(B or 1, F or 1, G, M)]
        Steering vectors (any norm) of the G directions, per block and bin or shared (broadcast).

    Returns
    -------
    p : np.ndarray [shape=(B, G)], float64: ``sum_f 1 / (1 - ||E_s^H a||^2)`` (``= sum_f 1 / ||E_n^H a||^2``) with
        unit-norm ``a``; ``F`` for a block with no source (zero subspace).
    """
    B, F, kmax, M = EsH.shape
    G = steering.shape[-2]
    a = steering / np.linalg.norm(steering, axis=-1, keepdims=True)
    if a.shape[0] > 1:  # per block (the fine search: few directions)
        proj = EsH @ a.swapaxes(-1, -2)  # (B, F, kmax, G)
    elif a.shape[1] == 1:  # shared by every block and bin (FOA): one matrix product
        proj = (EsH.reshape(-1, M) @ a[0, 0].T).reshape(B, F, kmax, G)
    else:  # shared by the blocks, one set per bin: one matrix product per bin
        proj = np.stack([(EsH[:, f].reshape(-1, M) @ a[0, f].T).reshape(B, kmax, G) for f in range(F)], axis=1)
    den = 1.0 - (proj.real ** 2 + proj.imag ** 2).sum(axis=2)
    return (1.0 / np.maximum(den, 1e-12)).sum(axis=1)


def find_peaks(p: np.ndarray, *, nb_peaks: int, shape: tuple[int, int], radius: int) -> np.ndarray:
    """The ``nb_peaks`` highest local maxima of each block's spectrum on the (elevation, azimuth) grid.

    Parameters
    ----------
    p : np.ndarray [shape=(B, nel * naz)]
    shape : (nel, naz)
    radius : int
        Grid steps: a peak is the maximum of the ``(2 radius + 1)^2`` neighbourhood (azimuth wrapped, elevation
        clamped).

    Returns
    -------
    idx : np.ndarray [shape=(B, nb_peaks)], int: flat grid indices, highest first; -1 where a block has fewer.
    """
    B = p.shape[0]
    if nb_peaks == 0 or B == 0:
        return np.full((B, nb_peaks), -1, np.int64)
    s = p.reshape(B, *shape)
    local = scipy.ndimage.maximum_filter(s, size=(1, 2 * radius + 1, 2 * radius + 1),
                                         mode=('nearest', 'nearest', 'wrap'))
    cand = np.where((s >= local) & (s > 0), s, -np.inf).reshape(B, -1)
    top = np.argsort(-cand, axis=1, kind='stable')[:, :nb_peaks]
    return np.where(np.isfinite(np.take_along_axis(cand, top, axis=1)), top, -1)


def music_doas(spec: np.ndarray, counts: np.ndarray, *, array: str, fs: float, nfft: int, block_frames: int = 8,
               min_hz: float = MIN_HZ, max_hz: float | None = None, max_bins: int = 16,
               peak_radius_deg: int = 10, coarse_deg: int = 4) -> np.ndarray:
    """DOAs of the ``counts[t]`` sources of every frame by MUSIC on a 1-degree grid.

    The grid is searched coarse to fine: the spectrum on every ``coarse_deg``-th point of the 1-degree grid gives
    the peaks, then each peak climbs the 1-degree grid (the window of points within ``peak_radius_deg`` of it, moved
    to its maximum until it stays, i.e. until it is a peak as :func:`find_peaks` defines one; at most
    :data:`MAX_CLIMBS` steps). ``coarse_deg=1`` searches every point of the
    1-degree grid; tests/test_music.py checks that both find the same directions.

    Parameters
    ----------
    spec : np.ndarray [shape=(frames, nfft/2, channels)], complex
        The STFT (:func:`cls_feature_class.stft`): 4 FOA channels or the 8 mics.
    counts : np.ndarray [shape=(frames,)], int >= 0
        Number of active sources per frame (the reference's: MUSIC needs it).
    array : {'foa', 'circular'}
    fs : float, Hz
    nfft : int, samples: bin b is at ``b * fs / nfft`` Hz
    block_frames : int
        Frames per covariance estimate.
    min_hz, max_hz : float
        Band; ``max_hz`` None = 8 kHz (FOA) or :data:`CIRCULAR_MAX_HZ` (circular), at most Nyquist.
    max_bins : int
        Each block uses its ``max_bins`` bins of the band with the most power (the cost is proportional).
    peak_radius_deg : int
        Peaks closer than this are one peak.
    coarse_deg : int
        Step of the coarse search, degrees.

    Returns
    -------
    doa : np.ndarray [shape=(frames, max(counts), 3)], unit vectors (x, y, z), strongest peak first; NaN where a
        frame has fewer sources (or its block fewer peaks).
    """
    _check_array(array)
    spec = np.asarray(spec)
    counts = np.asarray(counts, dtype=np.int64)
    if spec.ndim != 3 or counts.shape != spec.shape[:1]:
        raise SELDError(f'spec {spec.shape} must be (frames, bins, channels) and counts {counts.shape} (frames,)')
    M = spec.shape[2]
    need = 4 if array == 'foa' else NB_MICS
    if M != need:
        raise SELDError(f'array={array!r}: needs {need} channels, not {M}')
    if counts.size and (counts.min() < 0 or counts.max() >= M):
        raise SELDError(f'counts: must be in 0 .. {M - 1} sources per frame (got {counts.min()} .. {counts.max()})')
    for key, value in (('block_frames', block_frames), ('max_bins', max_bins), ('coarse_deg', coarse_deg),
                       ('peak_radius_deg', peak_radius_deg)):
        if int(value) != value or value < 1:
            raise SELDError(f'{key}={value}: must be an integer >= 1')
    hi = min(fs / 2, max_hz if max_hz is not None else FOA_MAX_HZ if array == 'foa' else CIRCULAR_MAX_HZ)
    freqs = np.arange(spec.shape[1]) * fs / nfft
    band = np.flatnonzero((freqs >= min_hz) & (freqs <= hi))
    if band.size == 0:
        raise SELDError(f'min_hz={min_hz}, max_hz={hi}: no STFT bin in the band (fs={fs}, nfft={nfft})')
    azi, ele = grid(array)
    nel, naz = ele.size, azi.size
    E, A = np.meshgrid(ele, azi, indexing='ij')  # (nel, naz): flat index = el_index * naz + az_index
    if array == 'foa':
        gains = foa_steering(A.ravel(), E.ravel())  # (G, 4), every bin

        def steering(idx: np.ndarray, hz: np.ndarray) -> np.ndarray:  # (b, n), (b, F) -> (b, 1, n, 4)
            return gains[idx][:, None]
    else:
        tau = -(sph2cart(A.ravel(), E.ravel()) @ circular_positions().T) / SPEED_OF_SOUND  # (G, 8) s

        def steering(idx: np.ndarray, hz: np.ndarray) -> np.ndarray:  # (b, n), (b, F) -> (b, F, n, 8)
            phase = (-2 * np.pi * hz[:, :, None, None] * tau[idx][:, None]).astype(np.float32)
            return np.cos(phase) + 1j * np.sin(phase)
    units = sph2cart(A.ravel(), E.ravel())  # (G, 3)
    T = counts.size
    kmax = int(counts.max(initial=0))
    out = np.full((T, kmax, 3), np.nan)
    if kmax == 0:
        return out
    cov = block_covariance(spec[:, band], block_frames=block_frames)  # (B, band, M, M)
    B = cov.shape[0]
    # each block's max_bins strongest bins of the band (tonal sounds fill few bins)
    power = np.einsum('bfmm->bf', cov).real
    strongest = np.sort(np.argsort(-power, axis=1, kind='stable')[:, :min(max_bins, band.size)], axis=1)
    cov = np.take_along_axis(cov, strongest[:, :, None, None], axis=1)
    hz = freqs[band][strongest]  # (B, F)
    padded = np.zeros(B * block_frames, np.int64)
    padded[:T] = counts
    k_block = padded.reshape(B, block_frames).max(axis=1)
    s = int(coarse_deg)
    ce, ca = np.meshgrid(np.arange(0, nel, s), np.arange(0, naz, s), indexing='ij')
    coarse = (ce * naz + ca).ravel()
    offsets = np.arange(-peak_radius_deg, peak_radius_deg + 1)  # a peak is the maximum of this window
    de, da = (d.ravel() for d in np.meshgrid(offsets, offsets, indexing='ij'))  # (W,)
    peaks = np.full((B, kmax), -1, np.int64)
    todo = np.flatnonzero(k_block > 0)
    F = strongest.shape[1]
    chunk = max(1, int(1e6 // (F * kmax * coarse.size)))  # about 1e6 projections per batch (memory-bound beyond)
    for start in range(0, todo.size, chunk):
        sel = todo[start:start + chunk]
        shared = steering(coarse[None], hz[:1])[:1] if array == 'foa' else steering(
            np.broadcast_to(coarse, (len(sel), coarse.size)), hz[sel])
        EsH = signal_subspace(cov[sel], nb_sources=k_block[sel])
        p = pseudo_spectrum(EsH, shared)
        radius = max(1, round(peak_radius_deg / s))
        if s == 1:
            cp = find_peaks(p, nb_peaks=kmax, shape=ce.shape, radius=radius)  # (b, kmax)
            peaks[sel] = np.where(cp >= 0, coarse[np.maximum(cp, 0)], -1)
            continue
        K = kmax + EXTRA_CANDIDATES  # two coarse peaks may climb to one peak: a few more candidates
        cp = find_peaks(p, nb_peaks=K, shape=ce.shape, radius=radius)  # (b, K)
        best = coarse[np.maximum(cp, 0)]  # (b, K) flat indices on the 1-degree grid
        for _ in range(MAX_CLIMBS):  # hill-climb on the 1-degree grid: the window moves to its maximum
            el_i = np.clip(best[..., None] // naz + de, 0, nel - 1)
            az_i = (best[..., None] % naz + da) % naz
            idx = (el_i * naz + az_i).reshape(len(sel), -1)  # (b, K * W)
            q = pseudo_spectrum(EsH, steering(idx, hz[sel])).reshape(len(sel), K, -1)
            moved = np.take_along_axis(idx.reshape(len(sel), K, -1), q.argmax(axis=2)[..., None], axis=2)[..., 0]
            if np.array_equal(moved, best):
                break
            best = moved
        value = np.where(cp >= 0, q.max(axis=2), -np.inf)
        order = np.argsort(-value, axis=1, kind='stable')  # strongest first
        value, best = np.take_along_axis(value, order, axis=1), np.take_along_axis(best, order, axis=1)
        # a candidate that climbed to within peak_radius_deg of a stronger one is that peak (ties of a flat top)
        u = units[best]  # (b, K, 3)
        near = np.einsum('bid,bjd->bij', u, u) > np.cos(np.deg2rad(peak_radius_deg))
        value[np.triu(near, k=1).any(axis=1)] = -np.inf
        order = np.argsort(-value, axis=1, kind='stable')[:, :kmax]
        peaks[sel] = np.where(np.isfinite(np.take_along_axis(value, order, axis=1)),
                              np.take_along_axis(best, order, axis=1), -1)
    frame_peaks = peaks[np.arange(T) // block_frames]  # (T, kmax)
    valid = (frame_peaks >= 0) & (np.arange(kmax)[None, :] < counts[:, None])
    out[valid] = units[frame_peaks[valid]]
    return out


def assign_to_classes(ref_sed: np.ndarray, ref_doa: np.ndarray, est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class-wise prediction matrices from class-less DOA estimates, given the reference activity.

    In every frame the estimates are assigned to the reference-active classes one to one by the minimum total
    angle (the Hungarian assignment; :func:`doa_matching.match_groups`), as the DCASE 2019 DOA metric matches
    DOAs regardless of class. A MUSIC estimate has no class, so this is the best any class assignment could do.

    Parameters
    ----------
    ref_sed : np.ndarray [shape=(frames, C)], {0, 1}
    ref_doa : np.ndarray [shape=(frames, 3C)], blocks ``[x.., y.., z..]``
    est : np.ndarray [shape=(frames, K, 3)], NaN rows = no estimate (:func:`music_doas`)

    Returns
    -------
    sed : np.ndarray [shape=(frames, C)], float32: the reference-active classes that received an estimate
    doa : np.ndarray [shape=(frames, 3C)], float32: their estimates (zeros elsewhere)
    """
    from doa_matching import match_groups

    ref = np.asarray(ref_sed) > 0.5
    T, C = ref.shape
    vec = np.asarray(ref_doa, dtype=np.float64).reshape(T, 3, C).transpose(0, 2, 1)  # (T, C, 3)
    rt, rc = np.nonzero(ref)
    et, ek = np.nonzero(np.isfinite(est[..., 0]))
    m = match_groups(rt, vec[rt, rc], et, est[et, ek])
    t, c = rt[m['ref_row']], rc[m['ref_row']]
    sed = np.zeros((T, C), np.float32)
    doa = np.zeros((T, 3, C), np.float32)
    sed[t, c] = 1.0
    doa[t, :, c] = est[et[m['pred_row']], ek[m['pred_row']]]
    return sed, doa.reshape(T, 3 * C)


def describe(array: str) -> str:
    """One line saying what the baseline is (for tables and results files)."""
    return (f'MUSIC ({array} steering, 1-degree grid, given the reference number of active sources per frame; '
            f'estimates assigned to the reference classes by the minimum-angle matching)')


def _check_array(array: str) -> None:
    if array not in ARRAYS:
        raise SELDError(f'array={array!r}: must be one of {", ".join(ARRAYS)}')

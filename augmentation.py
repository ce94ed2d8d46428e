"""Label-exact spatial augmentation of stored SELDnet features: channel swaps and sign flips.

Every transform here maps a recording of a scene to the recording of the same scene rotated or mirrored about the
array centre (sources, room and diffuse noise alike), with nothing but a permutation and sign flips of the
channels. Its DOA target is then known exactly: ``new = R @ old`` for the orthogonal 3x3 matrix ``R`` of the
transform. The module applies the transforms to the features as stored (standardized magnitude and phase maps),
so the generator can draw one per sequence without touching the audio.

Conventions (those of the project): azimuth ``az`` counter-clockwise from +x, elevation ``el`` positive up, unit
vector ``u = (cos az cos el, sin az cos el, sin el)``. A transform maps a source at ``u`` to ``R u``; new channel
``i`` is ``sign[i]`` times old channel ``perm[i]``.

FOA (ACN order W, Y, Z, X; SN3D)
--------------------------------
A plane wave ``s(t)`` from ``u`` is encoded as ``s(t) [1, u_y, u_z, u_x]``; any sound field is a superposition of
plane waves, so what holds for one holds for reverberant and diffuse fields too. For a signed permutation matrix
``R`` (each row one ``±1``), the scene rotated by ``R`` has channels ``W' = W`` and, for each dipole axis ``a``,
``D'_a = (R u)_a s = R[a, b] D_b``, where ``b`` is the axis with ``R[a, b] != 0``: a channel swap and a sign.
The signed permutations that keep the z axis form a group of 16 = 4 rotations of the azimuth by multiples of 90
degrees x reflection of the azimuth (``az -> -az``) x reflection of the elevation (``el -> -el``), the 16
transforms of Mazzon, Koizumi, Yasuda and Harada, "First order Ambisonics domain spatial augmentation for
DNN-based direction of arrival estimation", DCASE 2019 Workshop. With ``theta = 90 k``:

=======================  ==================  ===========================
azimuth / elevation      (x, y, z) ->        (W, Y, Z, X) ->
=======================  ==================  ===========================
az + 0                   (x, y, z)           (W, Y, Z, X)
az + 90                  (-y, x, z)          (W, X, Z, -Y)
az + 180                 (-x, -y, z)         (W, -Y, Z, -X)
az - 90                  (y, -x, z)          (W, -X, Z, Y)
-az                      (x, -y, z)          (W, -Y, Z, X)
-az + 90                 (y, x, z)           (W, X, Z, Y)
-az + 180                (-x, y, z)          (W, Y, Z, -X)
-az - 90                 (-y, -x, z)         (W, -X, Z, -Y)
any of these, el -> -el  z -> -z             Z -> -Z
=======================  ==================  ===========================

(``-az + theta`` is the reflection ``az -> -az`` followed by the rotation by ``theta``: a reflection about the
axis at azimuth ``theta / 2``.)

Circular array (8 omni mics, mic m at azimuth 45 m degrees, z = 0)
-----------------------------------------------------------------
Mic m at ``p_m = r (cos phi_m, sin phi_m, 0)``, ``phi_m = 45 m`` degrees, hears a plane wave from ``u`` as
``s(t - tau_m)`` with ``tau_m = -p_m . u / c = -(r / c) cos(el) cos(phi_m - az)``: mic m's signal depends only on
``phi_m - az`` and ``cos el``. Hence

* rotation ``az -> az + 45 k``: ``cos(phi_m - az - 45 k) = cos(phi_{m-k} - az)``, so new channel m is old channel
  ``(m - k) mod 8``: ``np.roll(channels, k)`` (counter-clockwise rotation = roll towards higher indices);
* reflection ``az -> 45 k - az`` (about the axis at azimuth ``22.5 k``): ``cos(phi_m - 45 k + az) =
  cos(phi_{k-m} - az)``, so new channel m is old channel ``(k - m) mod 8``. Plain reversal of the order, old
  ``(-m) mod 8``, is ``az -> -az`` (about the x axis, ``y -> -y``); ``7 - m`` is ``az -> -az - 45`` (about the axis
  at -22.5 degrees).

``R`` is the rotation by ``45 k`` about z, or the reflection ``[[cos 45k, sin 45k], [sin 45k, -cos 45k]]`` in the
xy plane; z is kept. There is no elevation reflection: the planar array hears ``+el`` and ``-el`` identically in
free field (``cos el`` is even), so the only channel map of an elevation flip is the identity, whose label is the
identity; flipping z of the label while the audio stays the same would teach two targets for one input (and in
a room the floor and ceiling echoes do tell ``+el`` from ``-el``, so the same audio is not even the recording of
the mirrored scene). The labels keep the true sign of the elevation.

Tetrahedral array (DCASE MIC format)
------------------------------------
Mics at (az, el) = (45, 35), (-45, -35), (135, -35), (-135, 35) degrees: signs of (x, y, z) (+, +, +), (+, -, -),
(-, +, -), (-, -, +), with equal ``|x| = |y|`` and equal ``|z|``: the four points with ``sign(x y z) = +1``.
A signed permutation of (x, y) with a sign on z keeps ``|x| = |y|`` and ``|z|`` and multiplies ``x y z`` by
``s_x s_y s_z``, so it maps the array onto itself exactly when that product is +1: 8 of the 16 (the group D2d),
namely az + 0, az + 180, -az + 90, -az - 90 without, and az + 90, az - 90, -az, -az + 180 with the elevation
flip (as many as the MIC-format swaps of the "audio channel swapping" of Wang et al., "A four-stage data
augmentation approach to ResNet-Conformer based acoustic modeling for sound event localization and detection",
the DCASE 2020 winners, also used in 2021; their exact list is not reproduced here).
The rotated scene at mic position ``p`` equals the original one at ``R^T p``, so new channel i is the old channel
at ``R^T p_i`` (a permutation, no signs). This is exact for omni mics in free field and also on the rigid sphere
of the DCASE recordings (the sphere is invariant under any orthogonal map about its centre). The other 8 would
move the mics to the other tetrahedron: no channel map exists.

Why the scaler is undone and redone
-----------------------------------
The stored features are ``x_norm = (x - mean) / scale`` per (bin, map), with ``mean``, ``scale`` fitted on the
train files. The transformed recording's stored features would be ``(x'_i - mean_i) / scale_i`` with
``x'_i = x_{perm[i]}`` (magnitude) or ``x_{perm[i]} + pi`` wrapped (phase of a flipped channel; ``angle(-S) =
angle(S) + pi``). Permuting the normalized maps instead gives ``(x_j - mean_j) / scale_j``, which is the same
only if ``mean_j = mean_i`` and ``scale_j = scale_i``: in general they differ (W's magnitude is larger than the
dipoles', and the train DOAs need not be symmetric), and a phase shift of ``pi`` is ``pi / scale_i`` in the
normalized domain, with a wrap point at ``-mean_j / scale_j``. So every output map is computed as
``((transform of x_j * scale_j + mean_j) - mean_i) / scale_i``, folded into one affine map per (bin, map): the
augmented example is then exactly the example the pipeline would have stored for the rotated recording (phases
modulo 2 pi: at the branch cut, ``-pi`` and ``pi`` may swap), and the scaler is the same one for all transforms.
The phase after a flip is wrapped to ``u - pi`` for ``u >= 0`` and ``u + pi`` for ``u < 0``: within the range of
``np.arctan2``.

The identity transform returns its input unchanged, bit for bit, so augmentation with only the identity is no
augmentation. SED targets do not change under a spatial transform. Zero-padded frames (the generator's last
partial sequence) are not features of any recording; :func:`apply_batch` leaves frames outside ``valid`` as they
are, so padding stays 0.

Use in a generator (one transform per sequence, identity included)::

    transforms = transforms_for('foa', nb_channels=4)              # 'circular8' for the 8-mic datasets
    ids = rng.integers(len(transforms), size=batch_size)           # the generator's seeded np.random.Generator
    x, doa = apply_batch(x, doa, ids, transforms=transforms, mean=mean, scale=scale, nb_classes=C, valid=weight > 0)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datasets import TETRA_MICS_DEG
from utils import SELDError, sph2cart

LAYOUT_CHANNELS = {'foa': 4, 'circular8': 8, 'tetra': 4}
_FOA_AXIS = (None, 1, 2, 0)  # axis of channel W, Y, Z, X (W is omnidirectional)
_S2 = float(np.sqrt(0.5))
_COS45 = (1.0, _S2, 0.0, -_S2, -1.0, -_S2, 0.0, _S2)  # cos(45 k), exact zeros and ones


@dataclass(frozen=True, eq=False)
class Transform:
    """One label-exact spatial transform.

    Attributes
    ----------
    name : str
        E.g. ``'azi->-azi+90, ele->-ele'`` or ``'identity'``.
    perm : np.ndarray [shape=(channels,)], int
        New channel ``i`` is old channel ``perm[i]`` ...
    sign : np.ndarray [shape=(channels,)], int
        ... times ``sign[i]`` (+1 or -1; all +1 for mic arrays).
    R : np.ndarray [shape=(3, 3)], float64
        Orthogonal; a DOA unit vector ``u`` becomes ``R @ u``.
    """
    name: str
    perm: np.ndarray
    sign: np.ndarray
    R: np.ndarray

    def __post_init__(self) -> None:
        for field, dtype in (('perm', np.int64), ('sign', np.int64), ('R', np.float64)):
            arr = np.array(getattr(self, field), dtype=dtype)
            arr.flags.writeable = False
            object.__setattr__(self, field, arr)

    @property
    def nb_channels(self) -> int:
        return len(self.perm)

    @property
    def is_identity(self) -> bool:
        return bool(np.array_equal(self.perm, np.arange(len(self.perm))) and np.all(self.sign == 1)
                    and np.array_equal(self.R, np.eye(3)))

    def __repr__(self) -> str:
        return f'Transform({self.name!r}, perm={self.perm.tolist()}, sign={self.sign.tolist()})'


# --------------------------------------------------------------------------------------------------
# The transforms of each layout
# --------------------------------------------------------------------------------------------------
def _azimuth_map(k45: int, reflect: bool, flip_ele: bool) -> np.ndarray:
    """``R`` of ``az -> (-az if reflect) + 45 k45``, ``el -> -el if flip_ele``; exact entries."""
    c, s = _COS45[k45 % 8], _COS45[(k45 - 2) % 8]  # cos, sin of 45 k45
    rot = np.array([[c, -s], [s, c]])
    xy = rot @ np.diag([1.0, -1.0]) if reflect else rot
    R = np.zeros((3, 3))
    R[:2, :2] = xy
    R[2, 2] = -1.0 if flip_ele else 1.0
    return R + 0.0  # no negative zeros


def _name(k45: int, reflect: bool, flip_ele: bool) -> str:
    deg = (45 * k45 + 180) % 360 - 180  # in [-180, 180)
    if deg == -180:
        deg = 180
    if not (k45 % 8 or reflect or flip_ele):
        return 'identity'
    azi = ('-azi' if reflect else 'azi') + (f'{deg:+d}' if deg else '')
    return f'azi->{azi}' + (', ele->-ele' if flip_ele else '')


def _foa_channels(R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Channel map of a signed-permutation ``R``: ``W' = W``, ``D'_a = R[a, b] D_b`` (ACN order W, Y, Z, X)."""
    channel_of_axis = {ax: ch for ch, ax in enumerate(_FOA_AXIS) if ax is not None}
    perm, sign = [0], [1]
    for ax in _FOA_AXIS[1:]:
        b = int(np.flatnonzero(R[ax])[0])
        perm.append(channel_of_axis[b])
        sign.append(int(R[ax, b]))
    return np.array(perm), np.array(sign)


def _array_perm(R: np.ndarray, positions: np.ndarray) -> np.ndarray | None:
    """New mic i = old mic at ``R^T p_i``, or None if ``R`` does not map the array onto itself."""
    moved = positions @ R  # row i: (R^T p_i)^T
    dist = np.linalg.norm(moved[:, None, :] - positions[None, :, :], axis=-1)
    perm = dist.argmin(axis=1)
    if np.max(dist[np.arange(len(perm)), perm]) > 1e-9 or len(set(perm.tolist())) != len(perm):
        return None
    return perm


def mic_directions(layout: str) -> np.ndarray:
    """Unit vectors from the array centre to the mics of a mic-array layout.

    Parameters
    ----------
    layout : {'circular8', 'tetra'}

    Returns
    -------
    directions : np.ndarray [shape=(mics, 3)]
    """
    if layout == 'circular8':
        return sph2cart(45.0 * np.arange(8), np.zeros(8))
    if layout == 'tetra':
        az, el = np.array(TETRA_MICS_DEG).T
        return sph2cart(az, el)
    raise SELDError(f"layout={layout!r}: mic directions exist for 'circular8' and 'tetra'")


def transforms_for(layout: str, *, nb_channels: int) -> list[Transform]:
    """The label-exact transforms of a layout, identity first.

    Parameters
    ----------
    layout : {'foa', 'circular8', 'tetra'}
        FOA (ACN/SN3D, 16 transforms), the 8-mic circular array of CANSIM/CRESIM (16) or the DCASE tetrahedral
        mic array (8).
    nb_channels : int
        Channels of the features (checked against the layout).

    Returns
    -------
    transforms : list of Transform
        ``transforms[0]`` is the identity. The order is fixed, so a transform id drawn by the generator
        names the same transform in every run.
    """
    if layout not in LAYOUT_CHANNELS:
        raise SELDError(f'layout={layout!r}: must be one of {", ".join(map(repr, LAYOUT_CHANNELS))}')
    if nb_channels != LAYOUT_CHANNELS[layout]:
        raise SELDError(f'nb_channels={nb_channels}: layout {layout!r} has {LAYOUT_CHANNELS[layout]} channels')
    out = []
    if layout == 'circular8':
        pos = mic_directions(layout)
        for reflect in (False, True):
            for k in range(8):
                R = _azimuth_map(k, reflect, False)
                out.append(Transform(_name(k, reflect, False), _array_perm(R, pos), np.ones(8, int), R))
        return out
    pos = mic_directions(layout) if layout == 'tetra' else None
    for flip_ele in (False, True):
        for reflect in (False, True):
            for k90 in range(4):
                R = _azimuth_map(2 * k90, reflect, flip_ele)
                name = _name(2 * k90, reflect, flip_ele)
                if layout == 'foa':
                    out.append(Transform(name, *_foa_channels(R), R))
                elif (perm := _array_perm(R, pos)) is not None:
                    out.append(Transform(name, perm, np.ones(4, int), R))
    return out


# --------------------------------------------------------------------------------------------------
# Applying a transform
# --------------------------------------------------------------------------------------------------
def _check_transform(transform: Transform) -> None:
    if not isinstance(transform, Transform):
        raise SELDError(f'transform={transform!r}: must be an augmentation.Transform (from transforms_for)')


def _check_features(x: np.ndarray, transform: Transform, mean: np.ndarray,
                    scale: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    _check_transform(transform)
    x = np.asarray(x)
    C = transform.nb_channels
    if x.ndim < 2 or x.shape[-1] != 2 * C:
        raise SELDError(f'features have shape {x.shape}: expected (..., bins, {2 * C}) for the {C} channels of '
                        f'transform {transform.name!r} (magnitude maps, then phase maps)')
    shape = x.shape[-2:]
    mean = np.asarray(mean, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    if mean.shape != shape or scale.shape != shape:
        raise SELDError(f'mean {mean.shape} and scale {scale.shape}: expected {shape} (bins, maps) as the '
                        f'features {x.shape}')
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
        raise SELDError('mean and scale must be finite and scale > 0 (the train-split scaler)')
    return x, mean, scale


def _coefficients(transform: Transform, mean: np.ndarray, scale: np.ndarray) -> dict[str, np.ndarray]:
    """Per (bin, map) coefficients of ``out = a x[..., src] + b + c - (2 c if x[..., src] >= t else 0)``.

    ``c`` is nonzero only on the phase maps of flipped channels: ``c = pi / scale`` is the normalized half-turn
    and ``t = -mean_src / scale_src`` the normalized value of source phase 0 (below it the phase gains pi,
    from it on it loses pi: the result stays within [-pi, pi]).
    """
    C = transform.nb_channels
    src = np.concatenate([transform.perm, transform.perm + C])
    ms, ss = mean[:, src], scale[:, src]
    flipped = np.concatenate([np.zeros(C, bool), transform.sign < 0])
    c = np.where(flipped, np.pi / scale, 0.0)
    f32 = np.float32
    return dict(src=src, permuted=bool(np.any(src != np.arange(2 * C))), flipped=bool(flipped.any()),
                a=(ss / scale).astype(f32), b=((ms - mean) / scale + c).astype(f32), two_c=(2 * c).astype(f32),
                t=np.where(flipped, -ms / ss, 0.0).astype(f32))


def _apply_coefficients(x: np.ndarray, coef: dict[str, np.ndarray]) -> np.ndarray:
    """Whole-array passes (broadcast over the (bins, maps) coefficients): gather, compare, multiply-add."""
    if coef['permuted']:
        out = np.take(x, coef['src'], axis=-1)
        upper = np.greater_equal(out, coef['t']) if coef['flipped'] else None
        out *= coef['a']
    else:
        upper = np.greater_equal(x, coef['t']) if coef['flipped'] else None
        out = np.multiply(x, coef['a'])
    out += coef['b']
    if upper is not None:
        out -= upper * coef['two_c']  # (a ufunc ``where=upper`` is 4x slower)
    return out


def apply_to_features(x_norm: np.ndarray, transform: Transform, *, mean: np.ndarray,
                      scale: np.ndarray) -> np.ndarray:
    """The standardized features of the transformed recording.

    Parameters
    ----------
    x_norm : np.ndarray [shape=(..., bins, 2*channels)]
        Standardized features (magnitude maps, then phase maps); any leading axes (frames, batch).
    transform : Transform
    mean, scale : np.ndarray [shape=(bins, 2*channels)]
        The scaler the features were standardized with (``x = x_norm * scale + mean``).

    Returns
    -------
    x_norm' : np.ndarray, float32, same shape; a new array (for the identity, a bit-exact copy).
    """
    x, mean, scale = _check_features(x_norm, transform, mean, scale)
    x = x.astype(np.float32, copy=False)
    if transform.is_identity:
        return x.copy()
    return _apply_coefficients(x, _coefficients(transform, mean, scale))


def _check_doa(doa: np.ndarray, transform: Transform, nb_classes: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Validated ``(doa, matrix acting on it, classes)``: ``R`` for (x, y, z), its xy block for azimuth only."""
    _check_transform(transform)
    d = np.asarray(doa)
    if isinstance(nb_classes, bool) or int(nb_classes) != nb_classes or nb_classes < 1:
        raise SELDError(f'nb_classes={nb_classes}: must be a positive integer')
    C = int(nb_classes)
    if d.ndim < 1 or d.shape[-1] not in (2 * C, 3 * C):
        raise SELDError(f'DOA targets have shape {d.shape}: expected (..., {3 * C}) (x, y, z) or (..., {2 * C}) '
                        f'(azimuth only) for nb_classes={C}')
    if d.shape[-1] == 3 * C:
        return d, transform.R, C
    if np.any(transform.R[:2, 2]) or np.any(transform.R[2, :2]):
        raise SELDError(f'transform {transform.name!r} mixes z into (x, y): not applicable to azimuth-only DOA')
    return d, transform.R[:2, :2], C  # orthogonal: commutes with normalizing (x, y) to the unit circle


def _float_dtype(a: np.ndarray) -> np.dtype:
    return a.dtype if np.issubdtype(a.dtype, np.floating) else np.dtype(np.float32)


def apply_to_doa(doa: np.ndarray, transform: Transform, *, nb_classes: int) -> np.ndarray:
    """The DOA targets of the transformed recording: ``R @ u`` for each class's vector.

    Parameters
    ----------
    doa : np.ndarray [shape=(..., 3*classes)] or [shape=(..., 2*classes)]
        ``[x_0..x_{C-1}, y_0.., z_0..]``, or ``[x.., y..]`` for azimuth-only models (the 2x2 xy block of ``R``
        is exact there: every transform keeps the z axis). Inactive classes are (0, 0, 0) and stay so.
    transform : Transform
    nb_classes : int

    Returns
    -------
    doa' : np.ndarray, same shape and dtype (float32 for non-float input); a new array. The signed-permutation
        transforms (FOA, tetra, the circular array's multiples of 90 degrees) are exact; the others are rounded
        once from float64.
    """
    d, M, C = _check_doa(doa, transform, nb_classes)
    if transform.is_identity:
        return d.astype(_float_dtype(d), copy=True)
    v = d.reshape(d.shape[:-1] + (M.shape[0], C))
    return np.einsum('ij,...jc->...ic', M, v).reshape(d.shape).astype(_float_dtype(d))


def apply_batch(x: np.ndarray, doa: np.ndarray, transform_ids: np.ndarray, *, transforms: list[Transform],
                mean: np.ndarray, scale: np.ndarray, nb_classes: int,
                valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One transform per sequence of a batch, vectorized per transform.

    Parameters
    ----------
    x : np.ndarray [shape=(batch, frames, bins, 2*channels)]
        Standardized features.
    doa : np.ndarray [shape=(batch, frames, 3*classes or 2*classes)]
    transform_ids : np.ndarray [shape=(batch,)], int
        Index into ``transforms`` per sequence (0 = identity for :func:`transforms_for` lists), e.g.
        ``rng.integers(len(transforms), size=batch)`` from the generator's seeded ``np.random.Generator``.
    transforms : list of Transform
    mean, scale : np.ndarray [shape=(bins, 2*channels)]
        The scaler of the features.
    nb_classes : int
    valid : np.ndarray [shape=(batch, frames)], bool, optional
        Frames to transform; the others (the generator's zero padding) are copied unchanged, so padding stays 0.

    Returns
    -------
    x', doa' : np.ndarray
        New arrays, same shapes; ``x'`` float32, ``doa'`` of ``doa``'s float dtype. Sequences with the identity
        are bit-exact copies. SED targets do not change under a spatial transform.
    """
    if not transforms:
        raise SELDError('transforms is empty: use transforms_for(layout, nb_channels=...)')
    x, doa, ids = np.asarray(x), np.asarray(doa), np.asarray(transform_ids)
    if x.ndim != 4 or doa.ndim != 3 or doa.shape[:2] != x.shape[:2]:
        raise SELDError(f'x {x.shape} and doa {doa.shape}: expected (batch, frames, bins, maps) and '
                        f'(batch, frames, dims*classes) with the same batch and frames')
    if ids.shape != (x.shape[0],) or not np.issubdtype(ids.dtype, np.integer):
        raise SELDError(f'transform_ids has shape {ids.shape} and dtype {ids.dtype}: expected ({x.shape[0]},) '
                        f'integers, one per sequence')
    if ids.size and (ids.min() < 0 or ids.max() >= len(transforms)):
        raise SELDError(f'transform_ids within [{ids.min()}, {ids.max()}]: must index the {len(transforms)} '
                        f'transforms')
    if valid is not None:
        valid = np.asarray(valid)
        if valid.shape != x.shape[:2]:
            raise SELDError(f'valid has shape {valid.shape}: expected {x.shape[:2]} (batch, frames)')
        valid = valid.astype(bool)
    for t in np.unique(ids):  # validate every transform used before writing anything
        _check_features(x[:1], transforms[int(t)], mean, scale)
        _check_doa(doa[:1], transforms[int(t)], nb_classes)
    x_out = np.empty(x.shape, np.float32)
    doa_out = doa.astype(_float_dtype(doa), copy=True)
    for t in np.unique(ids):
        transform = transforms[int(t)]
        rows = np.flatnonzero(ids == t)
        sub = x if len(rows) == len(ids) else x[rows]
        if transform.is_identity:
            x_out[rows] = sub
            continue
        _, mean64, scale64 = _check_features(x[:1], transform, mean, scale)
        x_out[rows] = _apply_coefficients(sub.astype(np.float32, copy=False),
                                          _coefficients(transform, mean64, scale64))
        doa_out[rows] = apply_to_doa(doa[rows], transform, nb_classes=nb_classes)
    if valid is not None and not valid.all():
        keep = ~valid
        x_out[keep] = x[keep]
        doa_out[keep] = doa[keep]
    return x_out, doa_out

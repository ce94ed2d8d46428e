"""The stereo part of the DCASE 2025 Stereo SELD look-alike (``dataset=dcase25_task3``): FOA to stereo, and the
``dcase2025`` metadata rows.

The real set was made from STARSS23's FOA recordings: rotated, converted to stereo by a mid-side process and cut
into 5-s clips, with labels of azimuth only (rear directions mirrored to the front), distance and an on-screen flag
of a perspective video. The look-alike does the same from the FOA scenes of :mod:`synth.dcase`:

Stereo (:func:`foa_to_stereo`)
    A COINCIDENT pair of virtual cardioids pointing left (+90 degrees azimuth) and right (-90 degrees), made from
    the omni and left-right figure-of-eight components of ACN/SN3D FOA (mid-side with M = W, S = Y)::

        L = (W + Y) / 2,    R = (W - Y) / 2

    A plane wave from azimuth ``a``, elevation ``e`` gets the gains ``(1 +- sin a cos e) / 2``: a level-difference
    panning law (no delay between the channels), the same for ``a`` and ``180 - a`` (front-back ambiguity, as
    stereo has), with the rooms' reverberation and the diffuse noise of the FOA scene converted alike.
Labels (:func:`stereo_rows`)
    ``frame,class,source,azimuth,distance,onscreen`` with that header: the frames, classes and tracks of the FOA
    look-alike's rows (:func:`synth.dcase.frame_rows`), the azimuth folded onto the front (``a -> 180 - a`` above
    90 degrees, ``-180 - a`` below -90: the real set's mapping of the rear hemisphere), the event's distance in
    whole cm, and ``onscreen`` 1 where the UNFOLDED azimuth lies in a frontal field of view of ``fov_deg``
    (default 100 degrees: ``|a| <= 50``), elevation ignored. The real flag comes from the video's field of view;
    this one is an assumption of the look-alike.
"""
from __future__ import annotations

import numpy as np

#: Header line of the dcase2025 metadata (formats.DCASE2025_HEADER).
HEADER = 'frame,class,source,azimuth,distance,onscreen'
#: Horizontal field of view (degrees) within which an event is on screen, by default.
FOV_DEG = 100.0


def foa_to_stereo(foa: np.ndarray) -> np.ndarray:
    """Coincident left/right cardioids from ACN/SN3D FOA (module docstring).

    Parameters
    ----------
    foa : np.ndarray [shape=(samples, 4)], channels W, Y, Z, X

    Returns
    -------
    stereo : np.ndarray [shape=(samples, 2)], channels L (+90 degrees), R (-90 degrees)
    """
    foa = np.asarray(foa)
    if foa.ndim != 2 or foa.shape[1] != 4:
        raise ValueError(f'foa: shape {foa.shape} must be (samples, 4) ACN/SN3D')
    w, y = foa[:, 0], foa[:, 1]
    return np.stack([0.5 * (w + y), 0.5 * (w - y)], axis=1)


def fold_front(azi_deg: np.ndarray) -> np.ndarray:
    """Azimuths in degrees mirrored onto the front half-plane ``[-90, 90]`` (integers stay integers)."""
    a = (np.asarray(azi_deg) + 180) % 360 - 180
    return np.where(a > 90, 180 - a, np.where(a < -90, -180 - a, a))


def stereo_rows(rows: np.ndarray, *, fov_deg: float = FOV_DEG) -> np.ndarray:
    """The dcase2025 rows of a recording from its FOA look-alike rows (module docstring).

    Parameters
    ----------
    rows : np.ndarray [shape=(n, 6)], int - ``frame, class, track, azimuth, elevation, distance in cm``
        (:func:`synth.dcase.frame_rows` with ``dist=True``).
    fov_deg : float
        Horizontal field of view in degrees, centred on azimuth 0.

    Returns
    -------
    rows : np.ndarray [shape=(n, 6)], int64 - ``frame, class, source, folded azimuth, distance in cm, onscreen``.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if rows.ndim != 2 or rows.shape[1] != 6:
        raise ValueError(f'rows: shape {rows.shape} must be (n, 6): frame, class, track, azi, ele, dist_cm')
    azi = rows[:, 3]
    onscreen = (np.abs(azi) <= fov_deg / 2).astype(np.int64)
    return np.stack([rows[:, 0], rows[:, 1], rows[:, 2], fold_front(azi), rows[:, 5], onscreen], axis=1)


def stereo_text(rows: np.ndarray) -> str:
    """The metadata file: the header, then one line per row of :func:`stereo_rows`."""
    return HEADER + '\n' + ''.join(','.join(map(str, r)) + '\n' for r in np.asarray(rows).tolist())

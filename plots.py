"""Figures: the SELDnet output figure (spectrogram, SED and DOA versus time) and the training curves.

Figures are drawn on a bare :class:`matplotlib.figure.Figure` rendered by Agg: no pyplot, so no
global backend switch, no figure registry to leak from and nothing to close; the PNG is written to a
temporary name and renamed (:func:`utils.atomic_path`). matplotlib is imported only when a figure is
drawn, so importing this module (e.g. from seld.py) stays cheap.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

import label_frames
import utils
from utils import SELDError

#: Dynamic range of the spectrogram image in dB below its maximum.
TOP_DB = 80.0


def _new_figure(*, figsize: tuple[float, float], layout: str | None = 'constrained') -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=100, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | os.PathLike) -> None:
    with utils.atomic_path(path) as tmp:
        fig.savefig(tmp, format='png', dpi=100)


def class_colors(nb_classes: int) -> np.ndarray:
    """One RGBA colour per class: tab10 up to 10 classes; beyond, tab20's dark shades first, then its light ones.

    Returns
    -------
    colors : np.ndarray [shape=(nb_classes, 4)], float in [0, 1]
    """
    import matplotlib

    if nb_classes <= 10:
        return np.asarray(matplotlib.colormaps['tab10'](np.arange(nb_classes)))
    order = np.concatenate([np.arange(0, 20, 2), np.arange(1, 20, 2)])  # the 10 dark shades, then the light ones
    return np.asarray(matplotlib.colormaps['tab20'](order[np.arange(nb_classes) % 20]))


def _block_reduce(x: np.ndarray, *, factor: int, how: str) -> np.ndarray:
    """Reduce the first axis by ``factor`` (mean or max over blocks; the last block may be partial)."""
    if factor <= 1:
        return np.asarray(x)
    n = x.shape[0]
    pad = (-n) % factor
    fill = np.nan if how == 'mean' else 0
    xp = np.concatenate([np.asarray(x, dtype=np.float64), np.full((pad,) + x.shape[1:], fill)], axis=0)
    blocks = xp.reshape((-1, factor) + x.shape[1:])
    return np.nanmean(blocks, axis=1) if how == 'mean' else blocks.max(axis=1)


def _angles(sed: np.ndarray, doa: np.ndarray, nb_classes: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Azimuth and elevation in degrees of each class's DOA, NaN where the class is inactive.

    Returns
    -------
    azi : np.ndarray [shape=(frames, classes)]
    ele : np.ndarray [shape=(frames, classes)] or None for an azimuth-only (x, y) DOA
    """
    vec = label_frames.doa_vectors(doa, nb_classes=nb_classes)
    azi, ele, _ = utils.cart2sph(vec)
    off = ~np.asarray(sed, dtype=bool)
    azi[off] = np.nan
    ele[off] = np.nan
    return azi, (ele if vec.shape[-1] == 3 else None)


def _break_wraps(azi: np.ndarray) -> np.ndarray:
    """NaN where the azimuth jumps by more than 180 degrees, so a line does not cross the plot."""
    out = azi.copy()
    jump = np.abs(np.diff(azi, axis=0)) > 180
    out[1:][jump] = np.nan
    return out


def plot_seld_output(path: str | os.PathLike, *, spec: np.ndarray, classes: Sequence[str], frame_rate: float,
                     pred_sed: np.ndarray, pred_doa: np.ndarray, ref_sed: np.ndarray | None = None,
                     ref_doa: np.ndarray | None = None, fs: float | None = None, title: str | None = None,
                     max_columns: int = 3000) -> Any:
    """The SELDnet output figure of one recording, saved as a PNG.

    Panels, sharing the time axis (seconds): the log-magnitude spectrogram of channel 1; the
    reference SED (if given) and the predicted SED as class-versus-time activity (one colour per
    class, class names on the y axis); the azimuth and (for 3-D DOA) the elevation of every active
    class versus time - reference as a thick translucent line, prediction as dots, in the class's
    colour, with a legend naming the classes. Inactive frames are not drawn.

    Parameters
    ----------
    path : str
        PNG file to write (atomically).
    spec : np.ndarray [shape=(frames, bins)]
        Linear STFT magnitude of channel 1 (e.g. ``feat[..., 0]`` of the unnormalized features);
        drawn in dB, ``TOP_DB`` below its maximum.
    classes : sequence of str
        Class names in index order.
    frame_rate : float
        Frames per second.
    pred_sed : np.ndarray [shape=(frames, classes)]
        Predicted activity in {0, 1} (threshold the probabilities first).
    pred_doa : np.ndarray [shape=(frames, 3*classes) or (frames, 2*classes)]
        Predicted DOA in blocks ``[x.., y.., (z..)]``; only frames where ``pred_sed`` is 1 are drawn.
    ref_sed, ref_doa : np.ndarray, optional
        Reference in the same layouts (e.g. the labels of a test file).
    fs : float, optional
        Sample rate in Hz: frequency axis in kHz (``bins = nfft / 2``); default: bin index.
    title : str, optional
    max_columns : int
        Longer inputs are reduced in time to this many columns for drawing (mean of the magnitude,
        any-activity for SED, every n-th frame for DOA).

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure drawn (already saved; its axes can be inspected).
    """
    spec = np.asarray(spec)
    C = len(classes)
    pred_sed = np.asarray(pred_sed)
    pred_doa = np.asarray(pred_doa)
    has_ref = ref_sed is not None and ref_doa is not None
    T = spec.shape[0] if spec.ndim == 2 else -1
    checks = [('spec', spec, None), ('pred_sed', pred_sed, (C,)), ('pred_doa', pred_doa, (2 * C, 3 * C))]
    if has_ref:
        ref_sed, ref_doa = np.asarray(ref_sed), np.asarray(ref_doa)
        checks += [('ref_sed', ref_sed, (C,)), ('ref_doa', ref_doa, (2 * C, 3 * C))]
    for name, arr, widths in checks:
        if arr.ndim != 2 or arr.shape[0] != T or (widths is not None and arr.shape[1] not in widths):
            raise SELDError(f'{path}: {name} has shape {arr.shape}; expected ({max(T, 0)} frames, '
                            f'{"bins" if widths is None else " or ".join(map(str, widths))}) for {C} classes')
    if T == 0:
        raise SELDError(f'{path}: nothing to plot (0 frames)')
    if not frame_rate > 0:
        raise SELDError(f'{path}: frame_rate={frame_rate} must be > 0')

    colors = class_colors(C)
    step = int(np.ceil(T / max_columns))
    duration = T / frame_rate
    sed_panels = [('reference', ref_sed)] if has_ref else []
    sed_panels.append(('prediction', pred_sed))
    pred_azi, pred_ele = _angles(pred_sed, pred_doa, C)
    ref_azi, ref_ele = _angles(ref_sed, ref_doa, C) if has_ref else (None, None)
    angle_panels = [('azimuth', pred_azi, ref_azi, (-180, 180))]
    if pred_ele is not None:
        angle_panels.append(('elevation', pred_ele, ref_ele, (-90, 90)))

    sed_h = max(1.0, 0.22 * C + 0.4)
    heights = [2.6] + [sed_h] * len(sed_panels) + [2.0] * len(angle_panels)
    # Fixed margins in inches (a layout engine would cost more time than drawing): room for the panel
    # titles between rows, tick labels on the left, the colour bar and the legend on the right.
    width, left, right, top, bottom, gap = 12.0, 1.0, 0.15, 0.55 if title else 0.35, 0.5, 0.4
    height = sum(heights) + gap * (len(heights) - 1) + top + bottom
    fig = _new_figure(figsize=(width, height), layout=None)
    grid = fig.add_gridspec(len(heights), 2, width_ratios=[1, 0.09], height_ratios=heights, wspace=0.02,
                            hspace=gap / np.mean(heights), left=left / width, right=1 - right / width,
                            top=1 - top / height, bottom=bottom / height)
    axes = [fig.add_subplot(grid[0, 0])]
    axes += [fig.add_subplot(grid[i, 0], sharex=axes[0]) for i in range(1, len(heights))]
    for a in axes[:-1]:
        a.tick_params(labelbottom=False)

    # Spectrogram of channel 1, in dB (colour bar in the right-hand column)
    ax = axes[0]
    mag = _block_reduce(np.abs(spec), factor=step, how='mean')
    db = 20 * np.log10(np.maximum(mag, 1e-10))
    db = np.maximum(db, db.max() - TOP_DB)
    top = fs / 2 / 1000 if fs else spec.shape[1]
    im = ax.imshow(db.T, origin='lower', aspect='auto', extent=(0, duration, 0, top), cmap='magma',
                   interpolation='nearest')
    ax.set_ylabel('frequency (kHz)' if fs else 'frequency bin')
    ax.set_title('spectrogram of channel 1 (dB)', fontsize=9, loc='left')
    side = fig.add_subplot(grid[0, 1])
    side.axis('off')
    cbar = fig.colorbar(im, cax=side.inset_axes((0.0, 0.0, 0.2, 1.0)))
    cbar.ax.tick_params(labelsize=7)

    # SED: class-coloured activity images
    for ax, (name, sed) in zip(axes[1:], sed_panels):
        act = _block_reduce(np.asarray(sed, dtype=np.float64) > 0.5, factor=step, how='max') > 0
        rgba = np.where(act.T[..., None], colors[:, None, :], 1.0)  # (classes, columns, 4), white if inactive
        ax.imshow(rgba, origin='lower', aspect='auto', extent=(0, duration, -0.5, C - 0.5), interpolation='nearest')
        ax.set_yticks(np.arange(C))
        ax.set_yticklabels(classes, fontsize=7)
        ax.set_title(f'SED {name}', fontsize=9, loc='left')

    # DOA: azimuth and elevation per class; the class legend in the right-hand column
    t = np.arange(0, T, step) / frame_rate
    shown = np.asarray(pred_sed, dtype=bool).any(axis=0)
    if has_ref:
        shown |= np.asarray(ref_sed, dtype=bool).any(axis=0)
    first_doa = 1 + len(sed_panels)
    for ax, (name, pred, ref, lim) in zip(axes[first_doa:], angle_panels):
        for c in np.flatnonzero(shown):
            if ref is not None:
                ax.plot(t, _break_wraps(ref[::step, c]), color=colors[c], linewidth=6, alpha=0.4,
                        solid_capstyle='butt')
            ax.plot(t, pred[::step, c], linestyle='none', marker='.', markersize=2.5, color=colors[c])
        ax.set_ylim(lim[0] - 10, lim[1] + 10)
        ax.set_yticks(np.linspace(lim[0], lim[1], 5))
        ax.set_ylabel(f'{name} (deg)')
        style = 'thick line: reference, dots: prediction' if has_ref else 'prediction'
        ax.set_title(f'DOA {name} ({style})', fontsize=9, loc='left')
        ax.grid(True, color='0.9', linewidth=0.5)
        if not shown.any():
            ax.text(0.5, 0.5, 'no active class', transform=ax.transAxes, ha='center', va='center', color='0.5')
    from matplotlib.lines import Line2D

    side = fig.add_subplot(grid[first_doa, 1])
    side.axis('off')
    handles = [Line2D([], [], color=colors[c], linewidth=4) for c in np.flatnonzero(shown)]
    if handles:
        side.legend(handles, [classes[c] for c in np.flatnonzero(shown)], loc='upper left', fontsize=7,
                    frameon=False, title='class', title_fontsize=8, borderaxespad=0.0)
    axes[-1].set_xlim(0, duration)
    axes[-1].set_xlabel('time (s)')
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.12 / height, va='top')
    _save(fig, path)
    return fig


def plot_training_curves(path: str | os.PathLike, rows: list[dict[str, float]], *, definition: str = 'seld2018') -> Any:
    """Losses and the validation metrics of one definition per epoch, saved atomically as a PNG.

    Parameters
    ----------
    path : str
        PNG file to write.
    rows : list of dict
        One per epoch, as in seld.py's metrics.csv: ``epoch``, ``loss`` (train), ``val/loss`` and
        ``val/<definition>/<metric>``. Both losses are means over real frames (padding has weight 0 in both), so
        the two curves are on one scale.
    definition : str
        The metric definition to draw (``seld2018``, ``dcase2021`` ...): its ER, F, recall (frame or localization)
        and SELD score, and its DOA / localization error in degrees.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    ep = [r['epoch'] for r in rows]
    fig = _new_figure(figsize=(8, 9))
    ax = fig.subplots(3, 1, sharex=True)
    for key, name in (('loss', 'train loss'), ('val/loss', 'validation loss')):
        ax[0].plot(ep, [r[key] for r in rows], label=name)
    ax[0].set_ylabel('loss')
    pre = f'val/{definition}/'
    for key, name in (('error_rate', 'ER'), ('f_score', 'F'), ('frame_recall', 'frame recall'),
                      ('localization_recall', 'localization recall'), ('seld_score', 'SELD score')):
        if pre + key in rows[0]:
            ax[1].plot(ep, [r[pre + key] for r in rows], label=name)
    ax[1].set_ylabel(f'{definition} (validation)')
    for key, name in (('doa_error', 'DOA error'), ('localization_error', 'localization error')):
        if pre + key in rows[0]:
            ax[2].plot(ep, [r[pre + key] for r in rows], label=name)
    ax[2].set_ylabel('degrees')
    ax[2].set_xlabel('epoch')
    for a in ax:
        a.grid(True)
        a.legend(loc='upper right')
    _save(fig, path)
    return fig

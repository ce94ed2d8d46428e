"""Which classes does a run localize badly, and is the error in azimuth or in elevation? A diagnosis (issue 14).

For every class, over the frames where the reference and the prediction both have that class active (one source
per class and frame, as in ov1), the script prints the number of frames, the mean and median angle between the
predicted and the reference direction, and the mean absolute elevation and (wrapped) azimuth errors. A median close
to the mean means a systematic error, not a few outliers. A second table asks whether the elevation is learned at
all: per reference elevation (rounded to 10 deg), the mean and spread of the predicted elevation, the share of
predictions on the wrong side of the horizon, and the correlation of predicted with reference elevations (near 0:
the model predicts about the same elevation whatever the source's).

``--features`` asks instead whether the stored features carry the direction at all (FOA only): the active intensity
vector ``Re{conj(W) [X, Y, Z]}``, summed over the bins of each frame of the de-standardized features, against the
label's DOA in every single-source frame.

Usage::

    python benchmarks/diag_per_class.py --ref data/ansim/desc_ov1_split1 --pred runs/ansim_ov1_split1_1/predictions
    python benchmarks/diag_per_class.py --features data/features/ansim_ov1_split1_30db_nfft512_fs16000

``--pred`` is a run's ``predictions/`` folder (its ``format.json`` names the format, frame rate and classes);
``--ref`` is searched with its sub-folders for the description of every predicted recording, as by
``evaluation_metrics.py``. TUT-2018 descriptions only.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cls_feature_class import load_scaler  # noqa: E402
from formats import find_references, read_desc_file, read_format_file, read_instances  # noqa: E402
from label_frames import doa_vectors, events_to_instances, instances_to_matrices, split_label, unit  # noqa: E402
from utils import SELDError, angular_distance_deg, cart2sph, run_cli  # noqa: E402


def per_class_errors(ref_sed: np.ndarray, ref_doa: np.ndarray, pred_sed: np.ndarray, pred_doa: np.ndarray,
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Same-class direction errors of one recording.

    Parameters
    ----------
    ref_sed, pred_sed : np.ndarray [shape=(frames, classes)] in {0, 1}
    ref_doa, pred_doa : np.ndarray [shape=(frames, 3 * classes) or (frames, 2 * classes)]
        Blocks ``[x_0..x_{C-1}, y_0.., (z_0..)]`` (:func:`label_frames.doa_vectors`); azimuth-only DOAs lie at
        elevation 0.

    Returns
    -------
    cls : np.ndarray [shape=(n,)], int - class of each frame where both are active
    angle, ele_ref, ele_pred, d_azi : np.ndarray [shape=(n,)], float64 - degrees: angle between the directions,
        reference and predicted elevations, absolute azimuth error wrapped to [0, 180]
    """
    C = ref_sed.shape[1]
    both = (ref_sed > 0.5) & (pred_sed > 0.5)
    frame, cls = np.nonzero(both)
    r, p = (doa_vectors(d, nb_classes=C)[frame, cls] for d in (ref_doa, pred_doa))
    (azi_r, ele_r, _), (azi_p, ele_p, _) = cart2sph(r), cart2sph(p)
    d_azi = np.abs((azi_p - azi_r + 180.0) % 360.0 - 180.0)
    return cls, angular_distance_deg(r, p), ele_r, ele_p, d_azi


def elevation_table(ele_ref: np.ndarray, ele_pred: np.ndarray, *, step: float = 10.0,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Predicted elevation per reference elevation bin.

    Parameters
    ----------
    ele_ref, ele_pred : np.ndarray [shape=(n,)] - degrees
    step : float > 0 - degrees: reference elevations are rounded to multiples of ``step``

    Returns
    -------
    bins, count, mean, std, wrong_side : np.ndarray [shape=(bins,)] - the bin centres (degrees), frames per bin, mean
        and standard deviation of the predicted elevation (degrees), share of predictions of the other sign than the
        bin (NaN for the 0 bin)
    """
    bins, inv = np.unique(np.round(ele_ref / step) * step, return_inverse=True)
    count = np.bincount(inv, minlength=bins.size)
    mean = np.bincount(inv, ele_pred, bins.size) / count
    std = np.sqrt(np.maximum(np.bincount(inv, ele_pred ** 2, bins.size) / count - mean ** 2, 0.0))
    wrong = np.bincount(inv, np.sign(ele_pred) != np.sign(bins[inv]), bins.size) / count
    return bins, count, mean, std, np.where(bins == 0, np.nan, wrong)


def intensity_directions(x_norm: np.ndarray, *, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Unit active-intensity direction of every frame of standardized FOA features.

    Parameters
    ----------
    x_norm : np.ndarray [shape=(frames, bins, 8)]
        Standardized magnitude maps of W, Y, Z, X (ACN), then their phase maps (radians once de-standardized).
    mean, scale : np.ndarray [shape=(bins, 8)] - the feature scaler

    Returns
    -------
    np.ndarray [shape=(frames, 3)] - ``(x, y, z)`` of ``sum_bins Re{conj(W) [X, Y, Z]}``, normalized (0 if silent)
    """
    x = x_norm.astype(np.float64) * scale + mean
    spec = x[..., :4] * np.exp(1j * x[..., 4:])
    i = np.real(np.conj(spec[..., :1]) * spec[..., [3, 1, 2]]).sum(axis=1)
    return unit(i)


def feature_check(feat_dir: str) -> int:
    """Print how well the intensity vector of a FOA feature folder's stored features gives its labels' DOA."""
    try:
        with open(os.path.join(feat_dir, 'extraction.json')) as f:
            config = json.load(f)['config']
    except (OSError, ValueError, KeyError) as err:
        raise SELDError(f'{feat_dir}/extraction.json: not a feature folder of batch_feature_extraction.py') from err
    if config.get('format') != 'foa':
        raise SELDError(f'{feat_dir}: format={config.get("format")!r}; the intensity check needs FOA features')
    C = len(config['classes'])
    mean, scale = load_scaler(os.path.join(feat_dir, 'scaler.npz'))
    files = sorted(glob.glob(os.path.join(feat_dir, 'feat_norm', '*.npy')))
    if not files:
        raise SELDError(f'{feat_dir}/feat_norm: no normalized features; run batch_feature_extraction.py')
    ref, est = [], []
    for path in files:
        label_path = os.path.join(feat_dir, 'label', os.path.basename(path))
        if not os.path.exists(label_path):
            raise SELDError(f'{label_path}: labels of {path} missing; run batch_feature_extraction.py again')
        sed, doa = split_label(np.load(label_path), nb_classes=C)
        single = sed.sum(axis=1) == 1
        cls = sed[single].argmax(axis=1)
        ref.append(doa_vectors(doa[single], nb_classes=C)[np.arange(cls.size), cls])
        est.append(intensity_directions(np.load(path)[single], mean=mean, scale=scale))
    r, e = np.concatenate(ref), np.concatenate(est)
    angle = angular_distance_deg(r, e)
    d_ele = np.abs(cart2sph(e)[1] - cart2sph(r)[1])
    print(f'{len(files)} recordings, {angle.size} single-source frames: intensity-vector DOA of the stored features '
          f'vs the labels: angle median {np.median(angle):.2f} mean {angle.mean():.2f}, elevation error median '
          f'{np.median(d_ele):.2f} mean {d_ele.mean():.2f} (degrees)')
    return 0


def main(argv: list[str] | None = None) -> int:
    """Per-class DOA errors of a run's predictions against TUT-2018 descriptions, or the intensity check of
    stored FOA features."""
    p = argparse.ArgumentParser(prog='diag_per_class.py', description=main.__doc__)
    p.add_argument('--ref', help='folder of TUT-2018 descriptions (searched with its sub-folders)')
    p.add_argument('--pred', help="a run's predictions/ folder (with its format.json)")
    p.add_argument('--features', help='a feature folder (with extraction.json, scaler.npz, feat_norm/, label/)')
    a = p.parse_args(argv)
    if a.features:
        return feature_check(a.features)
    if not (a.ref and a.pred):
        raise SELDError('give --ref and --pred (a run\'s predictions), or --features (a FOA feature folder)')
    info = read_format_file(a.pred)
    if info is None:
        raise SELDError(f'{a.pred}: no format.json; give a run\'s predictions/ folder')
    classes, rate, fmt = list(info['classes']), float(info['frame_rate']), info['format']
    naming = (info.get('reference') or {}).get('naming', 'tut')
    stems = sorted(info['files'])
    refs = find_references(a.ref, stems)
    parts = []
    for stem in stems:
        nb_frames = int(info['files'][stem]['nb_frames'])
        events = read_desc_file(refs[stem], classes=classes, naming=naming)
        ref = instances_to_matrices(events_to_instances(events, frame_rate=rate, nb_frames=nb_frames),
                                    nb_classes=len(classes), nb_frames=nb_frames)
        pred = instances_to_matrices(read_instances(os.path.join(a.pred, stem + '.csv'), fmt=fmt,
                                                    nb_classes=len(classes), classes=classes, frame_rate=rate,
                                                    naming=naming, nb_frames=nb_frames),
                                     nb_classes=len(classes), nb_frames=nb_frames)
        parts.append(per_class_errors(ref[0], ref[1], pred[0], pred[1]))
    cls, angle, ele_ref, ele_pred, d_azi = (np.concatenate(x) for x in zip(*parts))
    d_ele = np.abs(ele_pred - ele_ref)
    print(f'{"class":<16}{"frames":>8}{"mean":>8}{"median":>8}{"|d ele|":>9}{"|d azi|":>9}   (degrees)')
    for c, name in enumerate(classes):
        m = cls == c
        if m.any():
            print(f'{name:<16}{int(m.sum()):>8}{angle[m].mean():>8.1f}{np.median(angle[m]):>8.1f}'
                  f'{d_ele[m].mean():>9.1f}{d_azi[m].mean():>9.1f}')
    print(f'{"all":<16}{angle.size:>8}{angle.mean():>8.1f}{np.median(angle):>8.1f}{d_ele.mean():>9.1f}'
          f'{d_azi.mean():>9.1f}')
    print(f'{len(stems)} recordings, {fmt} predictions at {rate:g} frames/s, {angle.size} frames where the reference '
          f'and the prediction share a class')
    print(f'\n{"ref ele":>8}{"frames":>8}{"pred mean":>11}{"pred sd":>9}{"wrong side":>12}   (degrees)')
    for row in zip(*elevation_table(ele_ref, ele_pred)):
        print(f'{row[0]:>+8.0f}{int(row[1]):>8}{row[2]:>+11.1f}{row[3]:>9.1f}{row[4]:>12.2f}')
    corr = np.corrcoef(ele_ref, ele_pred)[0, 1] if np.std(ele_ref) > 0 and np.std(ele_pred) > 0 else float('nan')
    print(f'correlation of predicted with reference elevation: {corr:.2f}')
    return 0


if __name__ == '__main__':
    run_cli(main)

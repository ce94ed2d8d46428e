"""Check :func:`dcase_outputs.decode` and :func:`dcase_outputs.write_instances` against the DCASE 2021-2025 baselines'
own inference code, on seeded random model outputs.

The official code is executed at run time from the user's clones (nothing of it is copied here): only the needed
function definitions, parsed with ``ast`` (``compare_official_baselines.exec_parts``), because their modules import
the whole training stack. PyTorch must be installed (the 2022-2025 code calls it); without it, those years are skipped.

    python benchmarks/compare_official_outputs.py --official DIR [--frames 2000] [--seed 0]

``DIR`` holds the clones under their GitHub names: ``seld-dcase2021`` ... ``seld-dcase2023``
(github.com/sharathadavanne), ``DCASE2024_seld_baseline``, ``DCASE2025_seld_baseline`` (github.com/partha2409).

=====  ==================  ================================================================================
year   ours                official path run on the same output
=====  ==================  ================================================================================
2021   ``accdoa``          ``seld.py``: ``get_accdoa_labels``; ``cls_feature_class.py``: ``FeatureClass.
                           regression_label_format_to_output_format``, ``write_output_format_file``
2022,  ``accdoa``,         ``train_seldnet.py``: ``test_epoch`` itself (with ``get_accdoa_labels``,
2023   ``multi_accdoa``    ``get_multi_accdoa_labels``, ``determine_similar_location``), given a one-batch
                           stub generator and a stub model returning the output; the dict it hands to
                           ``write_output_format_file`` is compared, and that method's file
2024   ``multi_accddoa``   as 2022 (its single-ACCDOA branch cannot write: ``write_output_format_file`` reads a
                           distance that branch does not produce)
2025   ``multi_accddoa``,  ``utils.py``: ``get_multiaccdoa_labels`` and ``get_output_dict_format_multi_accdoa``
       ``azi_only``        (without the polar conversion, for the vectors), and ``write_logits_to_dcase_format``
                           (the file); modality ``audio``
=====  ==================  ================================================================================

The outputs are float32, as a model's, with many hard cases: a third of the track vectors have a length within
a relative 1e-2 .. 1e-8 of the 0.5 threshold (some exactly 0.5), and the second and third tracks are often turned
from another track by an angle within a relative 1e-2 .. 1e-8 of ``thresh_unify`` (15 degrees), or by less, so that
1, 2 and 3 similar pairs all occur; distances include negative values (set to 0). Compared: the rows (frame, class,
their number and order) and the largest absolute difference of their values; the written files (bytes, and the
largest difference of their numbers). The file comparison writes the official track column (0); the 2023 baseline
writes ``frame,class,0,x,y,z,0`` (a distance 0 after the 2022 row), which is ``dcase2024`` with distances 0 (written
``0.0`` here).

Measured (2026-12-06; clones of seld-dcase2021 ... DCASE2025_seld_baseline without git metadata; NumPy 2.4,
PyTorch 2.14; defaults: 2000 frames, seed 0; 10 s): every year's LARGEST DIFFERENCE is 0. The decoded rows are the
official ones in the official order with equal values (2021: 11088 rows; 2022 and 2023 ``accdoa`` 12053 / 11945,
``multi_accdoa`` 31264 / 31168; 2024 31301; 2025 30713), among about 1300 active pairs per year within 1e-4 degrees
of 15 and 500-670 cells with 2-3 similar pairs; the written files are byte-identical (2023: numerically equal, the
official distance column reads ``0``, ours ``0.0``). Before :func:`dcase_outputs.scalar_square` (the angle's squares
as NumPy squares one scalar, ``powf``, not ``x * x``), one 2022 cell in 300 frames differed: an angle of 15.000003
degrees officially, 14.9999895 by exact squares.

The official angle runs on NumPy scalars: with NumPy 1 (value-based casting) its ``+ 1e-10`` turns it to float64, so
there a pair within about 1e-5 degrees of ``thresh_unify`` may be decided otherwise than here (float32 throughout).

Output: one line per comparison and, per year, ``LARGEST DIFFERENCE`` (NaN rows, i.e. differing rows, count as
infinite). Exit status 2 if no official repository was found.
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
import tempfile
from typing import Any, Callable

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from compare_official_baselines import exec_parts, find_clones  # noqa: E402
from compare_official_metrics import _random_units, _rotate, legacy_environment  # noqa: E402
from dcase_outputs import PAIRS, decode, layout, write_instances  # noqa: E402
from label_frames import Instances  # noqa: E402

REPOS = {2021: 'seld-dcase2021', 2022: 'seld-dcase2022', 2023: 'seld-dcase2023', 2024: 'DCASE2024_seld_baseline',
         2025: 'DCASE2025_seld_baseline'}
#: year -> [(output, azi_only)]
CASES = {2021: [('accdoa', False)], 2022: [('accdoa', False), ('multi_accdoa', False)],
         2023: [('accdoa', False), ('multi_accdoa', False)], 2024: [('multi_accddoa', False)],
         2025: [('multi_accddoa', True)]}
NB_CLASSES = {2021: 12, 2022: 13, 2023: 13, 2024: 13, 2025: 13}
THRESH_UNIFY = 15.0


# ==================================================================================================
# Random outputs
# ==================================================================================================
def _near(rng: np.random.Generator, value: float, n: int) -> np.ndarray:
    """``value * (1 +- 10**-e)`` with ``e`` uniform in [2, 8]."""
    return value * (1 + rng.choice([-1.0, 1.0], n) * 10.0 ** -rng.uniform(2, 8, n))


def _lengths(rng: np.random.Generator, n: int) -> np.ndarray:
    kind = rng.integers(0, 3, n)
    return np.where(kind == 0, rng.uniform(0, 0.45, n), np.where(kind == 1, rng.uniform(0.55, 1.2, n),
                                                                  _near(rng, 0.5, n)))


def _turned(rng: np.random.Generator, v: np.ndarray) -> np.ndarray:
    """Unit vectors turned from ``v`` by an angle near ``THRESH_UNIFY`` (a third), below it or anywhere."""
    n = v.shape[0]
    kind = rng.integers(0, 3, n)
    angle = np.where(kind == 0, _near(rng, THRESH_UNIFY, n), np.where(kind == 1, rng.uniform(0, THRESH_UNIFY, n),
                                                                       rng.uniform(0, 180, n)))
    if v.shape[1] == 3:
        return _rotate(rng, v, angle)
    a = np.arctan2(v[:, 1], v[:, 0]) + rng.choice([-1.0, 1.0], n) * np.deg2rad(angle)
    return np.stack([np.cos(a), np.sin(a)], axis=1)


def random_output(rng: np.random.Generator, *, frames: int, classes: int, output: str,
                  azi_only: bool) -> np.ndarray:
    """A float32 output [shape=(frames, tracks * elements * classes)] with the hard cases of the module docstring."""
    tracks, elements, has_dist = layout(output, azi_only=azi_only)
    d, n = elements - int(has_dist), frames * classes
    units = []
    for k in range(tracks):
        u = _random_units(rng, n)[:, :d]
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        if k:
            src = units[int(rng.integers(0, k))]
            related = rng.uniform(size=n) < 0.7
            u[related] = _turned(rng, src[related])
        units.append(u)
    out = np.zeros((frames, tracks, elements, classes))
    for k, u in enumerate(units):
        vec = u * _lengths(rng, n)[:, None]
        exact = rng.uniform(size=n) < 0.03  # exactly 0.5 on an axis: not active (``> 0.5``)
        vec[exact] = 0.0
        vec[exact, 0] = 0.5
        out[:, k, :d, :] = vec.reshape(frames, classes, d).transpose(0, 2, 1)
        if has_dist:
            out[:, k, d, :] = rng.uniform(-0.5, 5.0, (frames, classes))
    return out.reshape(frames, -1).astype(np.float32)


# ==================================================================================================
# The official code
# ==================================================================================================
class _StubGenerator:
    """What ``test_epoch`` asks of a DataGenerator: one file, one batch; it keeps the dict written."""

    def __init__(self, output: np.ndarray, write: Callable[[str, dict], None]) -> None:
        self.output, self.write, self.written = output, write, None

    def get_filelist(self) -> list[str]:
        return ['rec.npy']

    def generate(self):
        yield np.zeros((1, 1)), np.zeros((1, 1))

    def write_output_format_file(self, path: str, out_dict: dict) -> None:
        self.written = out_dict
        self.write(path, out_dict)


class _StubModel:
    def __init__(self, output: np.ndarray) -> None:
        self.output = output

    def eval(self) -> None:
        pass

    def __call__(self, *args: Any) -> Any:
        import torch
        return torch.from_numpy(self.output[None].copy())  # a copy: the 2024 code clips distances in place


def feature_class(folder: str, classes: int) -> Any:
    """The official ``FeatureClass`` (class statement only, no ``__init__``) with its class count."""
    ns = exec_parts(os.path.join(folder, 'cls_feature_class.py'), {'FeatureClass'}, dict(np=np, os=os, math=math))
    fc = object.__new__(ns['FeatureClass'])
    fc._unique_classes = {str(c): c for c in range(classes)}
    fc._nb_unique_classes = classes
    return fc


def official_2021(folder: str, pred: np.ndarray, classes: int, csv: str) -> list[list[float]]:
    ns = exec_parts(os.path.join(folder, 'seld.py'), {'get_accdoa_labels'}, dict(np=np))
    reshape = exec_parts(os.path.join(folder, 'cls_compute_seld_results.py'), {'reshape_3Dto2D'}, {})['reshape_3Dto2D']
    fc = feature_class(folder, classes)
    sed, doa = ns['get_accdoa_labels'](pred[None], classes)
    out = fc.regression_label_format_to_output_format(reshape(sed), reshape(doa))
    fc.write_output_format_file(csv, out)
    return [[f, *row] for f, rows in out.items() for row in rows]


def official_2022_2024(folder: str, year: int, pred: np.ndarray, classes: int, multi: bool,
                       csv: str) -> list[list[float]]:
    import torch

    with legacy_environment():
        dist = exec_parts(os.path.join(folder, 'SELD_evaluation_metrics.py'),
                          {'distance_between_cartesian_coordinates'}, dict(np=np))
    reshape = exec_parts(os.path.join(folder, 'cls_compute_seld_results.py'), {'reshape_3Dto2D'}, {})['reshape_3Dto2D']
    ns = exec_parts(os.path.join(folder, 'train_seldnet.py'),
                    {'get_accdoa_labels', 'get_multi_accdoa_labels', 'determine_similar_location', 'test_epoch'},
                    dict(np=np, torch=torch, os=os, reshape_3Dto2D=reshape,
                         distance_between_cartesian_coordinates=dist['distance_between_cartesian_coordinates']))
    fc = feature_class(folder, classes)
    gen = _StubGenerator(pred, lambda path, d: fc.write_output_format_file(csv, d))
    params = dict(multi_accdoa=multi, unique_classes=classes, thresh_unify=THRESH_UNIFY, quick_test=False)
    ns['test_epoch'](gen, _StubModel(pred), lambda o, t: torch.zeros(()), tempfile.gettempdir(), params, 'cpu')
    return [[f, *row] for f, rows in gen.written.items() for row in rows]


def official_2025(folder: str, pred: np.ndarray, classes: int, csv: str) -> list[list[float]]:
    import shutil

    import torch

    names = {'get_multiaccdoa_labels', 'get_output_dict_format_multi_accdoa', 'determine_similar_location',
             'distance_between_cartesian_coordinates', 'convert_cartesian_to_polar', 'write_to_dcase_output_format',
             'write_logits_to_dcase_format', 'get_accdoa_labels', 'get_output_dict_format_single_accdoa'}
    ns = exec_parts(os.path.join(folder, 'utils.py'), names, dict(np=np, torch=torch, os=os))
    params = dict(multiACCDOA=True, nb_classes=classes, modality='audio', thresh_unify=THRESH_UNIFY)
    logits = torch.from_numpy(pred[None].copy())
    labels = ns['get_multiaccdoa_labels'](logits, classes, 'audio')
    parts = [x[0].numpy() for x in labels]
    out = ns['get_output_dict_format_multi_accdoa'](*parts, THRESH_UNIFY, classes, convert_to_polar=False)
    with tempfile.TemporaryDirectory() as tmp:
        ns['write_logits_to_dcase_format'](torch.from_numpy(pred[None].copy()), params, tmp, ['rec.pt'], split='s')
        shutil.copy(os.path.join(tmp, 's', 'rec.csv'), csv)
    # rows [class, source, x, y, dist, on-screen] -> [frame, class, x, y, dist]
    return [[f, row[0], row[2], row[3], row[4]] for f, rows in out.items() for row in rows]


# ==================================================================================================
# Comparison
# ==================================================================================================
def compare_rows(official: list[list[float]], mine: Instances) -> tuple[str, float]:
    """Rows in order: equal frames and classes, and the largest difference of their values (inf if they differ)."""
    off = np.array(official, dtype=np.float64).reshape(len(official), -1)
    ours = np.concatenate([mine.frame[:, None], mine.cls[:, None], mine.vec]
                          + ([] if mine.dist is None else [mine.dist[:, None]]), axis=1)
    if off.shape != ours.shape:
        key = lambda a: {(int(f), int(c)) for f, c in a[:, :2]}  # noqa: E731
        diff = len(key(off) ^ key(ours))
        return f'{off.shape[0]} official rows, {ours.shape[0]} ours ({diff} (frame, class) differ)', math.inf
    if not np.array_equal(off[:, :2], ours[:, :2]):
        return f'{off.shape[0]} rows, frames/classes differ in {int(np.any(off[:, :2] != ours[:, :2], 1).sum())}', \
            math.inf
    return f'{off.shape[0]} rows, same frames and classes in the same order', float(np.abs(off - ours).max(initial=0))


def compare_files(official_csv: str, mine_csv: str) -> tuple[str, float]:
    with open(official_csv, encoding='utf-8') as f:
        a = f.read()
    with open(mine_csv, encoding='utf-8') as f:
        b = f.read()
    if a == b:
        return 'files byte-identical', 0.0
    la, lb = a.splitlines(), b.splitlines()
    start = 0 if la[:1] == [] or la[0][:1].isdigit() else 1
    try:
        na = np.array([[float(x) for x in line.split(',')] for line in la[start:]])
        nb = np.array([[float(x) for x in line.split(',')] for line in lb[start:]])
    except ValueError:
        return 'files differ (not numeric)', math.inf
    if na.shape != nb.shape:
        return f'files differ: official {na.shape}, ours {nb.shape} (rows, fields)', math.inf
    lines = sum(x != y for x, y in zip(la, lb))
    diff = float(np.abs(na - nb).max(initial=0))
    return f'files {"numerically equal, their text differs" if diff == 0 else "differ"} in {lines} of {len(la)} ' \
           f'lines', diff


def stats(pred: np.ndarray, output: str, azi_only: bool, classes: int) -> str:
    """The hard cases of an output (in float64): lengths within 5e-7 of 0.5, active pairs within 1e-4 degrees of
    ``THRESH_UNIFY``, and (frame, class) cells with 1 and with 2-3 similar pairs."""
    tracks, elements, has_dist = layout(output, azi_only=azi_only)
    d = elements - int(has_dist)
    v = pred.reshape(pred.shape[0], tracks, elements, classes)[:, :, :d].astype(np.float64).transpose(0, 1, 3, 2)
    norm = np.linalg.norm(v, axis=-1)
    text = (f'{pred.shape[0]} frames x {classes} classes x {tracks} tracks, '
            f'{int((np.abs(norm - 0.5) < 5e-7).sum())} lengths within 5e-7 of 0.5')
    if tracks == 1:
        return text
    act = norm > 0.5
    ang = [np.rad2deg(np.arccos(np.clip(np.sum(v[:, i] * v[:, j], -1) / (norm[:, i] * norm[:, j] + 1e-300), -1, 1)))
           for i, j in PAIRS]
    both = [act[:, i] & act[:, j] for i, j in PAIRS]
    near = sum(int((b & (np.abs(a - THRESH_UNIFY) < 1e-4)).sum()) for a, b in zip(ang, both))
    n = sum((b & (a < THRESH_UNIFY)).astype(int) for a, b in zip(ang, both))
    return text + (f', {near} active pairs within 1e-4 deg of {THRESH_UNIFY:g}; cells with 1 similar pair '
                   f'{int((n == 1).sum())}, with 2-3 {int((n >= 2).sum())}')


def run_year(folder: str, year: int, *, frames: int, seed: int) -> list[tuple[str, float]]:
    rows = []
    C = NB_CLASSES[year]
    for output, azi_only in CASES[year]:
        rng = np.random.default_rng([seed, year, len(output)])
        pred = random_output(rng, frames=frames, classes=C, output=output, azi_only=azi_only)
        name = output + (' azi_only' if azi_only else '')
        rows.append((f'{name}: {stats(pred, output, azi_only, C)}', math.nan))
        with tempfile.TemporaryDirectory() as tmp:
            off_csv, my_csv = os.path.join(tmp, 'official.csv'), os.path.join(tmp, 'ours.csv')
            if year == 2021:
                official = official_2021(folder, pred, C, off_csv)
            elif year == 2025:
                official = official_2025(folder, pred, C, off_csv)
            else:
                official = official_2022_2024(folder, year, pred, C, output != 'accdoa', off_csv)
            mine = decode(pred, output=output, nb_classes=C, azi_only=azi_only, thresh_unify=THRESH_UNIFY)
            n_merged = int(np.sum(np.diff(np.r_[-1, mine.frame * C + mine.cls]) == 0))
            text, diff = compare_rows(official, mine)
            rows.append((f'{name}: decoded instances: {text} ({n_merged} rows share a (frame, class))', diff))
            fmt = {2023: 'dcase2024', 2024: 'dcase2024', 2025: 'dcase2025'}.get(year, 'dcase2020')
            zero = np.zeros(mine.frame.size)
            write_instances(my_csv, mine._replace(track=zero.astype(np.int64),
                                                  dist=zero if year == 2023 else mine.dist), fmt=fmt)
            text, diff = compare_files(off_csv, my_csv)
            note = ' with distances 0 (the official 2023 writer adds a distance column 0)' if year == 2023 else ''
            rows.append((f'{name}: written {fmt} file{note}: {text}', diff))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--official', required=True, help='folder of the clones of the official repositories')
    ap.add_argument('--frames', type=int, default=2000, help='frames of each random output')
    ap.add_argument('--seed', type=int, default=0)
    args = ap.parse_args(argv)
    found = find_clones(args.official, REPOS)
    if not found:
        return 2
    has_torch = importlib.util.find_spec('torch') is not None
    for year, folder in found.items():
        if year >= 2022 and not has_torch:
            print(f'{year}  skipped: the official inference needs PyTorch, which is not installed')
            continue
        try:
            rows = run_year(folder, year, frames=args.frames, seed=args.seed)
        except Exception as err:  # an official file that does not load here: say so, go on
            rows = [(f'skipped ({type(err).__name__}: {err})', math.nan)]
        for text, diff in rows:
            print(f'{year}  {text}' + ('' if math.isnan(diff) else f': max |difference| {diff:.3g}'))
        diffs = [d for _, d in rows if not math.isnan(d)]
        print(f'{year}  LARGEST DIFFERENCE: {max(diffs):.3g}' if diffs else f'{year}  nothing compared')
    return 0


if __name__ == '__main__':
    sys.exit(main())

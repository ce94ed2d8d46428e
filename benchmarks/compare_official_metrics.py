"""Check that metric_definitions.py's DCASE definitions give the official DCASE SELD metric code's numbers.

Random reference and prediction data (seeded) for a few recordings of each year are scored twice: with this
project's definitions (:class:`scoring.SELDMetrics`) and with the official code of that year, imported
at run time from the user's own clones of the official repositories. No official code is copied into this project
or this script; a repository that is not found is skipped with a message.

    python benchmarks/compare_official_metrics.py --official DIR [--seed 0] [--files 3] [--tol 1e-9]
                                                  [--baseline-length]

``DIR`` holds the clones under their GitHub names (any missing one is skipped):

=========================  ==========================  ==========================================================
folder                     project definition          official code used, as that year's baseline calls it
=========================  ==========================  ==========================================================
``seld-dcase2019``         ``dcase2019``               ``metrics/evaluation_metrics.py``: ``compute_sed_scores``
                                                       (``nb_frames_1s = 50``), ``compute_doa_scores_regr``,
                                                       ``compute_seld_metric`` on the concatenated regression
                                                       matrices (azimuth, elevation in radians), as ``seld.py``
``seld-dcase2020``         ``dcase2020``               ``metrics/SELD_evaluation_metrics.py`` ``SELDMetrics``
                                                       ``.update_seld_scores`` (polar) and ``compute_seld_scores``,
                                                       ``early_stopping_metric``, as
                                                       ``calculate_dev_results_from_dcase_output.py``
``seld-dcase2021``         ``dcase2021`` (micro)       ``metrics/SELD_evaluation_metrics.py``, as
                                                       ``cls_compute_seld_results.py`` (polar)
``seld-dcase2022``,        ``dcase2022`` (macro)       ``SELD_evaluation_metrics.py`` (``average='macro'``), as
``seld-dcase2023``                                     ``cls_compute_seld_results.py`` (polar)
``DCASE2024_seld_baseline``  ``dcase2024`` (macro)     ``SELD_evaluation_metrics.py`` ``SELDMetrics`` with the
                                                       ``parameters.py`` defaults: frame level, distances,
                                                       ``lad_doa_thresh=20``, ``lad_dist_thresh=inf``,
                                                       ``lad_reldist_thresh=1``, ``average='macro'``
``DCASE2024_seld_baseline``  ``dcase2024_nodist``      the same, ``eval_dist=False`` (on the same files)
``DCASE2025_seld_baseline``  ``dcase2025`` (macro)     ``metrics.py`` ``SELDMetrics`` with the ``parameters.py``
                                                       defaults (``lad_doa_thresh=20``, ``lad_dist_thresh=inf``,
                                                       ``lad_reldist_thresh=1``, ``average='macro'``), once with
                                                       ``req_onscreen=False`` (every score) and once with ``True``
                                                       (``f_score_onscreen``); files read by ``utils.py``
                                                       ``load_labels`` and ``organize_labels``
=========================  ==========================  ==========================================================

For 2020 to 2024 the recordings are written as CSV files in that year's formats (reference metadata polar with
integer degrees, STARSS23-style distances in cm for 2023/2024; predictions Cartesian, as the baselines write them,
with distances in metres for 2023/2024). The official side reads them with the official ``FeatureClass`` methods
(``load_output_format_file``, ``convert_output_format_*``, ``segment_labels`` / ``organize_labels``); the project
side reads the same files with :func:`formats.read_instances` (the 2024 reference distances divided by 100, as the
official ``cm2m=True`` and the project's scoring command do). 2019 is scored in memory, as ``seld.py`` does
(recordings of whole seconds, so that concatenating them keeps the 1-s blocks). 2025: ``10 x --files`` clips of 5 s
(50 frames, as the Stereo SELD set) in the ``dcase2025`` format on both sides (header, azimuth in integer degrees,
folded to the front for the reference, distances in cm, on-screen flags: the reference's set within 45 degrees of
the front, the prediction's wrong for 20 % of its events), read by :func:`formats.read_instances` (metres) and by
the official ``load_labels`` (cm: its ``distance_error`` is divided by 100 here to compare in metres).

How the official code is loaded
-------------------------------
* The metric modules are imported from their files under unique module names. They import ``IPython`` (for
  ``embed``, never called) and use ``np.float`` / ``np.NaN``, which NumPy 2 removed: while the official code runs,
  a stub ``IPython`` module is provided if none is installed, and ``np.float`` / ``np.NaN`` are set if missing
  (both undone at the end).
* 2025's ``metrics.py`` imports ``utils.py``, which imports PyTorch, OpenCV and TensorBoard: only its functions
  ``load_labels``, ``organize_labels``, ``fold_az_angle``, ``least_distance_between_gt_pred``,
  ``convert_polar_to_cartesian`` and ``jackknife_estimation`` are executed (parsed with ``ast``, with ``numpy``,
  ``scipy.stats``, ``linear_sum_assignment`` and ``warnings``), as a module ``utils`` that ``metrics.py`` imports
  (the project's own ``utils`` module is put back right after).
* ``cls_feature_class.py`` imports librosa, scikit-learn (``sklearn.externals.joblib`` in 2019/2020, gone from
  current scikit-learn), matplotlib, and in 2024 OpenCV and the video-feature module. Only its ``class
  FeatureClass`` statement is executed (parsed from the file with ``ast``), with ``numpy`` as ``np``; the instance
  is made without ``__init__`` (which needs a dataset) and given ``_nb_label_frames_1s = 10`` (``label_hop_len_s =
  0.1`` of every year's parameters). The methods used need nothing else.

File length
-----------
The 2020 and 2021 scripts segment every file to ``get_nb_frames()`` (the 60-s maximum, 600 frames); the recordings
here last 60 s. The 2022-2024 ``cls_compute_seld_results.py`` pass ``max(reference frame index)`` as the file
length, so predicted frames after the last reference frame are not scored and the last reference frame is dropped
at frame level (2024) or when it starts a segment (2022-2023) - a documented difference (docs/metrics.md,
"Official behaviour not reproduced"). By default the official functions here get the
recording's frame count, as the project scores; ``--baseline-length`` passes the baselines' ``max(reference frame
index)`` instead, to show that difference.

Output: a markdown table (definition / official repository, metric, ours, official, ``|difference|``) and a one-line
summary with the largest difference. The exit status is 1 if a difference exceeds ``--tol`` (or one side is NaN
and the other not), 2 if no official repository was found.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.util
import math
import os
import subprocess
import sys
import tempfile
import types
import warnings
from typing import Any, Iterator

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import formats  # noqa: E402
import label_frames  # noqa: E402
import scoring  # noqa: E402
from utils import sph2cart  # noqa: E402

#: Official repositories: folder name -> (year, metric module path, cls_feature_class path or None).
REPOS = {
    'seld-dcase2019': (2019, 'metrics/evaluation_metrics.py', None),
    'seld-dcase2020': (2020, 'metrics/SELD_evaluation_metrics.py', 'cls_feature_class.py'),
    'seld-dcase2021': (2021, 'metrics/SELD_evaluation_metrics.py', 'cls_feature_class.py'),
    'seld-dcase2022': (2022, 'SELD_evaluation_metrics.py', 'cls_feature_class.py'),
    'seld-dcase2023': (2023, 'SELD_evaluation_metrics.py', 'cls_feature_class.py'),
    'DCASE2024_seld_baseline': (2024, 'SELD_evaluation_metrics.py', 'cls_feature_class.py'),
    'DCASE2025_seld_baseline': (2025, 'metrics.py', 'utils.py'),
}
#: Project definition scored against each year's code.
DEFINITION = {2019: 'dcase2019', 2020: 'dcase2020', 2021: 'dcase2021', 2022: 'dcase2022', 2023: 'dcase2022',
              2024: 'dcase2024', 2025: 'dcase2025'}
#: Classes of each year's dataset (TAU 2019: 11, TAU-NIGENS 2020: 14, 2021: 12, STARSS22/23 and stereo: 13).
NB_CLASSES = {2019: 11, 2020: 14, 2021: 12, 2022: 13, 2023: 13, 2024: 13, 2025: 13}
#: Project reader format of each year's files (2023 and 2024 files carry distances).
READ_FORMAT = {2020: 'dcase2020', 2021: 'dcase2020', 2022: 'dcase2020', 2023: 'dcase2024', 2024: 'dcase2024'}
LABEL_FRAMES_1S = 10  # label_hop_len_s = 0.1 in every year's parameter file
THRESHOLD = 20.0  # lad_doa_thresh of every year


# ==================================================================================================
# Loading the official code
# ==================================================================================================
@contextlib.contextmanager
def legacy_environment() -> Iterator[None]:
    """``np.float`` / ``np.NaN`` (removed in NumPy 2) and an ``IPython`` stub while the official code runs."""
    added = []
    for name, value in (('float', float), ('NaN', np.nan)):
        if name not in vars(np):
            setattr(np, name, value)
            added.append(name)
    stub = 'IPython' not in sys.modules and importlib.util.find_spec('IPython') is None
    if stub:
        mod = types.ModuleType('IPython')
        mod.embed = lambda *args, **kwargs: None
        sys.modules['IPython'] = mod
    try:
        yield
    finally:
        for name in added:
            delattr(np, name)
        if stub:
            sys.modules.pop('IPython', None)


def import_file(path: str, name: str) -> types.ModuleType:
    """Import one official module from its file, under a unique name (2022 and 2023 share a file name)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f'cannot import {path}')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def feature_class(path: str) -> Any:
    """An official ``FeatureClass`` without its module's imports and without ``__init__`` (module docstring)."""
    with open(path, encoding='utf-8') as fh:
        tree = ast.parse(fh.read(), filename=path)
    node = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == 'FeatureClass'), None)
    if node is None:
        raise ImportError(f'{path}: no class FeatureClass')
    ns: dict[str, Any] = {'np': np, 'os': os, 'math': math, '__name__': 'official_cls_feature_class'}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', SyntaxWarning)  # 2020/2021: `self._dataset is 'foa'` (never called here)
        code = compile(ast.Module(body=[node], type_ignores=[]), path, 'exec')
    exec(code, ns)
    obj = object.__new__(ns['FeatureClass'])
    obj._nb_label_frames_1s = LABEL_FRAMES_1S
    return obj


#: The functions of the 2025 ``utils.py`` that its ``metrics.py`` needs (module docstring).
UTILS_2025 = ('load_labels', 'organize_labels', 'fold_az_angle', 'least_distance_between_gt_pred',
              'convert_polar_to_cartesian', 'jackknife_estimation')


def import_metrics_2025(root: str) -> types.ModuleType:
    """The 2025 ``metrics.py`` with a ``utils`` module of the official functions it uses (module docstring)."""
    from scipy import stats
    from scipy.optimize import linear_sum_assignment

    path = os.path.join(root, 'utils.py')
    with open(path, encoding='utf-8') as fh:
        tree = ast.parse(fh.read(), filename=path)
    nodes = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in UTILS_2025]
    if {n.name for n in nodes} != set(UTILS_2025):
        raise ImportError(f'{path}: missing {sorted(set(UTILS_2025) - {n.name for n in nodes})}')
    official_utils = types.ModuleType('utils')
    official_utils.__dict__.update(np=np, stats=stats, linear_sum_assignment=linear_sum_assignment, warnings=warnings,
                                   os=os)
    exec(compile(ast.Module(body=nodes, type_ignores=[]), path, 'exec'), official_utils.__dict__)
    ours = sys.modules.get('utils')
    sys.modules['utils'] = official_utils
    try:
        mod = import_file(os.path.join(root, 'metrics.py'), 'official_dcase2025_metrics')
    finally:
        if ours is not None:
            sys.modules['utils'] = ours
        else:
            sys.modules.pop('utils', None)
    mod.official_utils = official_utils
    return mod


def commit_of(folder: str) -> str:
    try:
        out = subprocess.run(['git', '-C', folder, 'rev-parse', 'HEAD'], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return 'unknown (git not available)'
    return out.stdout.strip() if out.returncode == 0 else 'unknown (not a git checkout)'


# ==================================================================================================
# Random recordings
# ==================================================================================================
def _random_units(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _rotate(rng: np.random.Generator, v: np.ndarray, angle_deg: np.ndarray) -> np.ndarray:
    """Unit vectors ``v`` turned by ``angle_deg`` towards random perpendicular directions."""
    r = _random_units(rng, v.shape[0])
    u = r - np.sum(r * v, axis=1, keepdims=True) * v
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    a = np.deg2rad(np.asarray(angle_deg, dtype=np.float64))[:, None]
    return np.cos(a) * v + np.sin(a) * u


def simulate(rng: np.random.Generator, T: int, C: int, rate: float) -> tuple[dict[str, np.ndarray], ...]:
    """One recording: reference rows (integer degrees, distance in cm) and prediction rows (unit vectors, m).

    The reference has moving events of 1-6 s (a quarter with a second, overlapping source of the same class); the
    prediction detects 85 % of them with shifted on/offsets, 5 % dropped frames, 5 % class confusions, a
    per-event direction bias (|N(0, 14)| degrees, so some exceed the 20-degree threshold) plus 3-degree jitter,
    distance errors (10 % of events more than double, relative error > 1), and spurious events.
    """
    dur = T / rate
    ev = []
    for _ in range(max(1, rng.poisson(dur / 3.0))):
        ev.append(dict(cls=int(rng.integers(C)), on=int(rng.integers(T)), n=int(rng.uniform(1, 6) * rate)))
    for e in list(ev):
        if rng.random() < 0.25:  # a second source of the same class, overlapping
            ev.append(dict(cls=e['cls'], on=e['on'] + int(rng.integers(0, max(1, e['n']))),
                           n=int(rng.uniform(1, 4) * rate)))
    ref = {k: [] for k in ('frame', 'cls', 'track', 'azi', 'ele', 'dist_cm')}
    pred = {k: [] for k in ('frame', 'cls', 'vec', 'dist')}
    per_class = np.zeros(C, dtype=np.int64)
    for e in ev:
        frames = np.arange(e['on'], min(T, e['on'] + e['n']))
        if frames.size == 0:
            continue
        t = (frames - e['on']) / rate
        azi = np.round((rng.uniform(-180, 180) + rng.uniform(-30, 30) * t + 180) % 360 - 180)
        ele = np.round(np.clip(rng.uniform(-45, 45) + rng.uniform(-5, 5) * t, -80, 80))
        dist_cm = np.round(rng.uniform(80, 500) + rng.uniform(-20, 20) * t)
        for k, v in (('frame', frames), ('cls', np.full(frames.size, e['cls'])),
                     ('track', np.full(frames.size, per_class[e['cls']])), ('azi', azi), ('ele', ele),
                     ('dist_cm', dist_cm)):
            ref[k].append(v)
        per_class[e['cls']] += 1
        if rng.random() >= 0.85:
            continue  # missed
        lo = max(0, e['on'] + int(rng.normal(0, 0.3 * rate)))
        hi = min(T, e['on'] + e['n'] + int(rng.normal(0, 0.3 * rate)))
        pf = np.arange(lo, hi)
        pf = pf[rng.random(pf.size) >= 0.05]
        if pf.size == 0:
            continue
        idx = np.clip(pf - e['on'], 0, frames.size - 1)  # the nearest reference frame of the event
        v = sph2cart(azi[idx], ele[idx])
        v = _rotate(rng, v, np.full(pf.size, abs(rng.normal(0, 14))))
        v = _rotate(rng, v, np.abs(rng.normal(0, 3, pf.size)))
        factor = 2.5 if rng.random() < 0.1 else math.exp(rng.normal(0, 0.3))
        cls = e['cls'] if rng.random() >= 0.05 else int(rng.integers(C))
        pred['frame'].append(pf)
        pred['cls'].append(np.full(pf.size, cls))
        pred['vec'].append(v)
        pred['dist'].append(dist_cm[idx] / 100 * factor * np.exp(rng.normal(0, 0.05, pf.size)))
    for _ in range(rng.poisson(dur / 12.0)):  # spurious predictions
        on = int(rng.integers(T))
        pf = np.arange(on, min(T, on + int(rng.uniform(0.5, 3) * rate)))
        pred['frame'].append(pf)
        pred['cls'].append(np.full(pf.size, int(rng.integers(C))))
        pred['vec'].append(_rotate(rng, np.repeat(_random_units(rng, 1), pf.size, axis=0),
                                   np.abs(rng.normal(0, 3, pf.size))))
        pred['dist'].append(np.full(pf.size, rng.uniform(0.5, 5)))

    def finish(rows: dict[str, list[np.ndarray]], keys: tuple[str, ...]) -> dict[str, np.ndarray]:
        out = {k: (np.concatenate(v) if v else np.zeros((0, 3) if k == 'vec' else 0)) for k, v in rows.items()}
        order = np.lexsort(tuple(out[k] for k in reversed(keys)))  # by frame, then class (then track)
        return {k: v[order] for k, v in out.items()}

    return finish(ref, ('frame', 'cls', 'track')), finish(pred, ('frame', 'cls'))


def write_reference(path: str, ref: dict[str, np.ndarray], *, with_dist: bool) -> None:
    """``frame,class,track,azi,ele[,dist_cm]``: the DCASE metadata (integers)."""
    with open(path, 'w', encoding='utf-8') as fh:
        for i in range(ref['frame'].size):
            row = [ref[k][i] for k in ('frame', 'cls', 'track', 'azi', 'ele')] + ([ref['dist_cm'][i]] if with_dist
                                                                                 else [])
            fh.write(','.join(str(int(x)) for x in row) + '\n')


def write_prediction(path: str, pred: dict[str, np.ndarray], *, with_dist: bool) -> None:
    """``frame,class,0,x,y,z[,dist_m]``: the baselines' output format (full-precision floats, track 0)."""
    with open(path, 'w', encoding='utf-8') as fh:
        for i in range(pred['frame'].size):
            vals = [float(x) for x in pred['vec'][i]] + ([float(pred['dist'][i])] if with_dist else [])
            fh.write(f"{int(pred['frame'][i])},{int(pred['cls'][i])},0," + ','.join(repr(x) for x in vals) + '\n')


# ==================================================================================================
# Both sides, per year
# ==================================================================================================
def _matrices_to_polar(doa: np.ndarray, C: int) -> np.ndarray:
    """(frames, 3C) Cartesian -> (frames, 2C) [azimuths, elevations] in radians, the 2019 regression layout."""
    x, y, z = doa[:, :C], doa[:, C:2 * C], doa[:, 2 * C:]
    return np.concatenate([np.arctan2(y, x), np.arctan2(z, np.hypot(x, y))], axis=1)


def run_2019(mod: types.ModuleType, rng: np.random.Generator, nb_files: int) -> tuple[dict, dict, str]:
    C, rate = NB_CLASSES[2019], 50.0
    ours = scoring.SELDMetrics(nb_classes=C, frame_rate=rate, doa_threshold=THRESHOLD, definitions=('dcase2019',))
    cat: list[list[np.ndarray]] = [[], [], [], []]
    for _ in range(nb_files):
        T = 60 * int(rate)  # 60-s recordings, as TAU Spatial Sound Events 2019
        ref, pred = simulate(rng, T, C, rate)
        ri = label_frames.Instances(ref['frame'], ref['cls'], ref['track'], sph2cart(ref['azi'], ref['ele']))
        pi = label_frames.Instances(pred['frame'], pred['cls'], np.zeros(pred['frame'].size, dtype=np.int64),
                               pred['vec'])
        rs, rd = label_frames.instances_to_matrices(ri, nb_classes=C, nb_frames=T)
        ps, pd = label_frames.instances_to_matrices(pi, nb_classes=C, nb_frames=T)
        ours.evaluate(rs, rd, ps, pd)
        for lst, a in zip(cat, (rs, _matrices_to_polar(rd, C), ps > 0.5, _matrices_to_polar(pd, C))):
            lst.append(a)
    sed_gt, doa_gt, sed_pred, doa_pred = (np.concatenate(a) for a in cat)
    # seld.py: compute_sed_scores(sed_pred, sed_gt, nb_frames_1s), compute_doa_scores_regr(doa_pred, doa_gt,
    # sed_pred, sed_gt), compute_seld_metric(sed, doa) on the concatenated recordings.
    sed = mod.compute_sed_scores(sed_pred, sed_gt, int(rate))
    doa = mod.compute_doa_scores_regr(doa_pred, doa_gt, sed_pred, sed_gt)
    seld = mod.compute_seld_metric(sed, doa)
    off = dict(error_rate=sed[0], f_score=sed[1], doa_error=doa[0], frame_recall=doa[1], seld_score=seld)
    info = f'{nb_files} x 60 s at 50 fps, {C} classes, {int(sed_gt.sum())} reference / {int(sed_pred.sum())} ' \
           'predicted active (frame, class)'
    return ours.results()['dcase2019'], off, info


def run_segment_or_frame(year: int, mod: types.ModuleType, fc: Any, rng: np.random.Generator, nb_files: int,
                         tmp: str, baseline_length: bool, eval_dist: bool = True) -> tuple[dict, dict, str]:
    C, rate = NB_CLASSES[year], 10.0
    definition = DEFINITION[year] if eval_dist else 'dcase2024_nodist'
    with_dist = year >= 2023
    ours = scoring.SELDMetrics(nb_classes=C, frame_rate=rate, doa_threshold=THRESHOLD, definitions=(definition,))
    if year == 2020:
        off = mod.SELDMetrics(nb_classes=C, doa_threshold=THRESHOLD)
    elif year == 2021:
        off = mod.SELDMetrics(nb_classes=C, doa_threshold=THRESHOLD)
    elif year in (2022, 2023):
        off = mod.SELDMetrics(nb_classes=C, doa_threshold=THRESHOLD, average='macro')
    else:
        off = mod.SELDMetrics(nb_classes=C, doa_threshold=THRESHOLD, average='macro', eval_dist=eval_dist,
                              dist_threshold=float('inf'), reldist_threshold=1.0)
    n_ref = n_pred = 0
    lengths = []
    for f in range(nb_files):
        # 2020/2021: 60-s recordings (their datasets); 2022-2024: variable lengths, not whole seconds (STARSS).
        T = 600 if year <= 2021 else int(rng.integers(300, 600)) | 1
        lengths.append(T)
        ref, pred = simulate(rng, T, C, rate)
        n_ref, n_pred = n_ref + ref['frame'].size, n_pred + pred['frame'].size
        ref_path, pred_path = (os.path.join(tmp, f'{year}_{side}_{f}.csv') for side in ('ref', 'pred'))
        write_reference(ref_path, ref, with_dist=with_dist)
        write_prediction(pred_path, pred, with_dist=with_dist)
        # ---- the project: its reader, its definitions
        ri = formats.read_instances(ref_path, fmt=READ_FORMAT[year], nb_classes=C, nb_frames=T)
        pi = formats.read_instances(pred_path, fmt=READ_FORMAT[year], nb_classes=C, nb_frames=T)
        if year == 2024:
            ri = ri._replace(dist=ri.dist / 100)  # STARSS23 metadata in cm (the official cm2m=True)
        rs, rd = label_frames.instances_to_matrices(ri, nb_classes=C, nb_frames=T)
        ps, pd = label_frames.instances_to_matrices(pi, nb_classes=C, nb_frames=T)
        ours.evaluate(rs, rd, ps, pd, ref_instances=ri, pred_instances=pi)
        # ---- the official code, as each year's scoring script calls it (polar for 2020-2023)
        if year == 2024:
            gt = fc.convert_output_format_polar_to_cartesian(fc.load_output_format_file(ref_path, cm2m=True))
            pr = fc.convert_output_format_polar_to_cartesian(fc.load_output_format_file(pred_path))
        else:
            gt = fc.load_output_format_file(ref_path)
            pr = fc.convert_output_format_cartesian_to_polar(fc.load_output_format_file(pred_path))
        if year <= 2021:
            nb = 600  # feat_cls.get_nb_frames(): max_audio_len_s = 60 at 100-ms label frames
        else:
            nb = max(gt.keys()) if baseline_length else T
        if year == 2024:
            off.update_seld_scores(fc.organize_labels(pr, nb), fc.organize_labels(gt, nb), eval_dist=eval_dist)
        else:
            off.update_seld_scores(fc.segment_labels(pr, nb), fc.segment_labels(gt, nb))
    res = ours.results()[definition]
    if year == 2020:
        er, f, de, de_f = off.compute_seld_scores()
        o = dict(error_rate=er, f_score=f, localization_error=de, localization_recall=de_f,
                 seld_score=mod.early_stopping_metric([er, f], [de, de_f]))
    elif year == 2021:
        er, f, le, lr = off.compute_seld_scores()
        o = dict(error_rate=er, f_score=f, localization_error=le, localization_recall=lr,
                 seld_score=mod.early_stopping_metric([er, f], [le, lr]))
    elif year in (2022, 2023):
        er, f, le, lr, seld, _ = off.compute_seld_scores()
        o = dict(error_rate=er, f_score=f, localization_error=le, localization_recall=lr, seld_score=seld)
    elif not eval_dist:
        er, f, ang, lr, seld, _ = off.compute_seld_scores()
        o = dict(error_rate=er, f_score=f, doa_error=ang, localization_recall=lr, seld_score=seld)
    else:
        er, f, ang, dist, rel, lr, seld, _ = off.compute_seld_scores()
        o = dict(error_rate=er, f_score=f, doa_error=ang, distance_error=dist, relative_distance_error=rel,
                 localization_recall=lr, seld_score=seld)
    info = f'{nb_files} recordings of {lengths} frames at 10 fps, {C} classes, {n_ref} reference / {n_pred} ' \
           'predicted rows'
    return res, o, info


def _fold(azi: np.ndarray) -> np.ndarray:
    a = (azi + 180.0) % 360.0 - 180.0
    return np.where(a > 90, 180 - a, np.where(a < -90, -180 - a, a))


def write_2025(path: str, frame: np.ndarray, cls: np.ndarray, track: np.ndarray, azi: np.ndarray, dist_cm: np.ndarray,
               onscreen: np.ndarray) -> None:
    """``frame,class,source,azimuth,distance,onscreen`` with its header, integers (the 2025 files)."""
    with open(path, 'w', encoding='utf-8') as fh:
        fh.write('frame,class,source,azimuth,distance,onscreen\n')
        for row in zip(frame, cls, track, azi, dist_cm, onscreen):
            fh.write(','.join(str(int(round(float(x)))) for x in row) + '\n')


def run_2025(mod: types.ModuleType, rng: np.random.Generator, nb_files: int, tmp: str) -> tuple[dict, dict, str]:
    C, T, rate = NB_CLASSES[2025], 50, 10.0
    ours = scoring.SELDMetrics(nb_classes=C, frame_rate=rate, doa_threshold=THRESHOLD, definitions=('dcase2025',))
    kw = dict(doa_threshold=THRESHOLD, dist_threshold=float('inf'), reldist_threshold=1.0, nb_classes=C,
              average='macro')
    off, off_on = mod.SELDMetrics(req_onscreen=False, **kw), mod.SELDMetrics(req_onscreen=True, **kw)
    u = mod.official_utils
    n_ref = n_pred = 0
    nb_clips = 10 * nb_files
    for f in range(nb_clips):
        ref, pred = simulate(rng, T, C, rate)
        r_az = _fold(ref['azi'])
        r_on = (np.abs(r_az) <= 45).astype(np.int64)
        p_az = np.rad2deg(np.arctan2(pred['vec'][:, 1], pred['vec'][:, 0]))
        # the predicted flag: the reference's rule on the predicted azimuth, flipped for 20 % of the rows
        p_on = (np.abs(_fold(p_az)) <= 45).astype(np.int64) ^ (rng.random(p_az.size) < 0.2)
        ref_path, pred_path = (os.path.join(tmp, f'2025_{side}_{f}.csv') for side in ('ref', 'pred'))
        write_2025(ref_path, ref['frame'], ref['cls'], ref['track'], r_az, ref['dist_cm'], r_on)
        write_2025(pred_path, pred['frame'], pred['cls'], np.zeros(pred['frame'].size), p_az, pred['dist'] * 100,
                   p_on)
        n_ref, n_pred = n_ref + ref['frame'].size, n_pred + pred['frame'].size
        ri = formats.read_instances(ref_path, fmt='dcase2025', nb_classes=C, nb_frames=T)
        pi = formats.read_instances(pred_path, fmt='dcase2025', nb_classes=C, nb_frames=T)
        rs, rd = label_frames.instances_to_matrices(ri, nb_classes=C, nb_frames=T)
        ps, pd = label_frames.instances_to_matrices(pi, nb_classes=C, nb_frames=T)
        ours.evaluate(rs, rd, ps, pd, ref_instances=ri, pred_instances=pi)
        gt = u.organize_labels(u.load_labels(ref_path, convert_to_cartesian=False), T)
        pr = u.organize_labels(u.load_labels(pred_path, convert_to_cartesian=False), T)
        off.update_seld_scores(pr, gt)
        off_on.update_seld_scores(pr, gt)
    f, ang, dist, rel, on_acc, _ = off.compute_seld_scores()
    f_on = off_on.compute_seld_scores()[0]
    o = dict(f_score=f, f_score_onscreen=f_on, doa_error=ang, distance_error=dist / 100, relative_distance_error=rel,
             onscreen_accuracy=on_acc)
    info = f'{nb_clips} clips of {T} frames at 10 fps, {C} classes, {n_ref} reference / {n_pred} predicted rows'
    return ours.results()['dcase2025'], o, info


# ==================================================================================================
# Main
# ==================================================================================================
def difference(a: float, b: float) -> float:
    a, b = float(a), float(b)
    if math.isnan(a) and math.isnan(b):
        return 0.0
    if math.isnan(a) or math.isnan(b):
        return math.inf
    return abs(a - b)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--official', required=True, help='folder holding the clones of the official repositories')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--files', type=int, default=3, help='recordings per year (default 3)')
    ap.add_argument('--tol', type=float, default=1e-9, help='largest allowed |difference| (default 1e-9)')
    ap.add_argument('--baseline-length', action='store_true',
                    help="2022-2024: segment the files to max(reference frame index), as the baselines' "
                         'cls_compute_seld_results.py (a documented difference)')
    args = ap.parse_args(argv)
    if args.files < 1:
        ap.error('--files must be >= 1')
    rows: list[tuple[str, str, float, float, float]] = []
    found = 0
    with legacy_environment(), tempfile.TemporaryDirectory(prefix='seld_official_') as tmp:
        for folder, (year, metrics_path, fc_path) in REPOS.items():
            root = os.path.join(args.official, folder)
            paths = [os.path.join(root, p) for p in (metrics_path, fc_path) if p]
            missing = [p for p in paths if not os.path.isfile(p)]
            if missing:
                print(f'- {folder}: skipped, not found: {", ".join(missing)}')
                continue
            found += 1
            rng = np.random.default_rng([args.seed, year])
            if year == 2025:
                ours, off, info = run_2025(import_metrics_2025(root), rng, args.files, tmp)
            elif year == 2019:
                mod = import_file(paths[0], f'official_{folder.replace("-", "_")}_metrics')
                ours, off, info = run_2019(mod, rng, args.files)
            else:
                mod = import_file(paths[0], f'official_{folder.replace("-", "_")}_metrics')
                ours, off, info = run_segment_or_frame(year, mod, feature_class(paths[1]), rng, args.files, tmp,
                                                       args.baseline_length)
                if year == 2024:  # the same files again, scored without distances (eval_dist=False)
                    rng = np.random.default_rng([args.seed, year])
                    nodist = run_segment_or_frame(year, mod, feature_class(paths[1]), rng, args.files, tmp,
                                                  args.baseline_length, eval_dist=False)
            print(f'- {folder} at {commit_of(root)}: {info}')
            for label, (o_ours, o_off) in [(f'{DEFINITION[year]} / {folder}', (ours, off))] + (
                    [(f'dcase2024_nodist / {folder}', nodist[:2])] if year == 2024 else []):
                for metric, value in o_off.items():
                    rows.append((label, metric, float(o_ours[metric]), float(value),
                                 difference(o_ours[metric], value)))
    if not found:
        print(f'no official repository found under {args.official} (expected folders: {", ".join(REPOS)})')
        return 2
    print()
    print('| definition / official code | metric | ours | official | \\|difference\\| |')
    print('|---|---|---|---|---|')
    for label, metric, a, b, d in rows:
        print(f'| {label} | {metric} | {a:.12g} | {b:.12g} | {d:.3g} |')
    worst = max(rows, key=lambda r: r[4])
    ok = worst[4] <= args.tol
    print(f'\nlargest |difference| {worst[4]:.3g} ({worst[0]}, {worst[1]}) over {len(rows)} values: '
          f'{"all within" if ok else "EXCEEDS"} the tolerance {args.tol:g}')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())

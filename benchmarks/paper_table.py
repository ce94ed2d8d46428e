"""The SELDnet paper's results table (Adavanne et al., IEEE JSTSP 2019) on this project's look-alikes, in one
resumable command: synthesize, extract, train, score, for every cell and method.

Usage::

    python benchmarks/paper_table.py [--scale tiny|cpu|paper] [--cells GLOB[,GLOB...]] [--methods M[,M...]]
                                     [--out DIR] [--dataset-dir DATASET=DIR ...]
    python benchmarks/paper_table.py --scale cpu --out runs/paper_cpu                   # the CPU-scale table
    python benchmarks/paper_table.py --scale tiny --cells 'ansim:ov1:*' --methods seldnet,music
    python benchmarks/paper_table.py --scale paper --cells 'real:*' --dataset-dir real=/data/TUT-REAL

Cells are ``<dataset>:ov<1-3>:split<1-3>:db<30|20|10>`` (``--cells`` takes shell-style globs). The default plan is
the table issue 23 asks for: SELDnet on ANSIM, RESIM, CANSIM and CRESIM x ov1-ov3 (split 1, 30 dB) and on ANSIM ov1
at 20 and 10 dB; the three baselines on ANSIM and RESIM ov1-ov3. ``--methods`` given runs those methods on every
selected cell. REAL cells run only with ``--dataset-dir real=DIR`` (the real zips, unzipped: the TUT-2018 layout):
its measured room responses cannot be synthesized here.

For each cell: the look-alike is synthesized by the ``synthesize_dataset.py`` command (train + test, and the
unseen-DOA test set: the test scenes at DOAs shifted +5 degrees off the training grid), unless ``--dataset-dir``
gives the data (then no unseen-DOA set unless ``DIR_unseen_doa`` exists); features are extracted
(``batch_feature_extraction.extract``); each method is trained with the paper's settings for the dataset
(``parameter.py``'s defaults: nfft 512, the model, Adam 1e-3, batch 16; sequences of 512 frames for ANSIM and REAL,
256 for the others) at the scale's epoch budget, selected on the validation split (20 % of the train clips), and
scored once on the test split and on the unseen-DOA test split.

Methods
-------
``seldnet``   SELDnet (loss weights [1, 50]); every column from the run's ``results.json`` (``seld2018``).
``sed_only``  SELDnet without its DOA head: loss weights [1, 0], selected on the validation SED loss; scored on SED
              (ER, F, frame recall). Its DOA output is untrained, so no DOA or SELD column.
``doa_only``  SELDnet without its SED head: loss weights [0, 50], selected on the validation DOA loss; scored on DOA
              GIVEN THE REFERENCE ACTIVITY: every reference-active (frame, class) takes the model's DOA output of
              that class (the stored labels' activity, framed by the rule the scorer frames the reference with), so
              the DOA error is over every reference-active pair (``doa_missing`` 0). ER, F, frame recall and SELD
              would only score the reference itself: not reported.
``music``     :mod:`music` (no training) GIVEN THE REFERENCE NUMBER OF ACTIVE SOURCES per frame; its class-less
              estimates are assigned to the reference-active classes by the minimum-angle matching
              (:func:`music.assign_to_classes`), so it too is scored on DOA only. Predictions are written as a run's
              (``<out>/music/<cell>/predictions``), scorable by ``evaluation_metrics.py``.

Every score comes from the same metric code (``scoring.SELDScorer`` built by ``seld.scoring_info``).
For the planar array (CANSIM, CRESIM) the table adds the azimuth error (mean wrapped |azimuth difference| over the
pairs the DOA error averages) and the ELEVATION-AMBIGUITY FLOOR of the cell's test labels: the mean |elevation| over
the reference-active (frame, class) pairs. The array's delays depend on cos(el) only, so it cannot tell (az, el)
from (az, -el); those two directions are 2 |el| apart, and with a prior symmetric in el (the look-alikes draw
elevations uniformly on -40..40) no estimator that hears only |el| has a lower expected angle error than |el| (for
any estimate e: (|e - |el|| + |e + |el||) / 2 >= |el|). Reverberation (CRESIM) breaks the symmetry a little
(floor and ceiling reflections), so there it is a floor for the direct sound only.

Scales
------
``tiny``   5 + 2 clips of 5 s at 16 kHz, 1 epoch, a 4-filter model: every cell and method end to end (a smoke test).
``cpu``    20 + 10 clips of 30 s synthesized at 16 kHz (the features' rate, as the ``embedded`` task): 16 train /
           4 validation / 10 test and 10 unseen-DOA test clips, and four CPU-budget changes to the paper's training,
           the same for every cell and method (sequence lengths are the paper's):
           - half the filters (``nb_cnn2d_filt=32``: 407,052 parameters on FOA);
           - 2048 frames per batch (``batch_size`` 4 at the sequence length 512, 8 at 256; the ``embedded`` task's
             frames per step): with the paper's 16 x 512, 2 cores make 16 updates in a minute (measured: 4 s each,
             F 0.06 after them);
           - ``bn_momentum=0.9`` (the ``embedded`` task's), so that the BatchNorm statistics follow a short training;
           - ``learning_rate=2e-3``: at 1e-3 and 4096 frames per step the SED head predicted nothing for 108 of
             its first 120 steps (validation SELD 0.94 for 9 epochs, then 0.70; measured on ANSIM ov1 here).
           Epoch budgets: 20 for the FOA sets and REAL (320 steps), 28 for the circular array (448 steps: the
           issue's CANSIM run was still improving fast when the FOA budget ended). Why so many: at 10 epochs (160
           steps) the SED head of ANSIM ov1 had detected nothing on validation for 7 epochs and more, and the
           ``embedded`` main job needs 290-460 steps for a validation SELD score of 0.37-0.2. The plan is 9,088
           steps (568 epochs with validation); a 2048-frame step took 1.1-1.8 s on the 2-core machine of this
           project on 2026-12-06 (a slow day), so the whole table takes hours there; the measured time is in the
           README ("Reproducing the paper"). How the budgets turned out is read off each run's ``metrics.csv``.
           No early stopping within the budget (``patience`` = the epoch budget, as the ``embedded`` task's; the
           best validation epoch is still the model): every SELDnet curve starts with 5-11 epochs that detect
           nothing (validation SELD 0.93-0.98), which the default patience of 10 cannot tell from a plateau. With
           it, ANSIM ov1 at 10 dB stopped at epoch 11 with epoch 1 selected (F 0 on test), and three DOA-only runs
           stopped at epochs 12-19 (measured on 2026-12-06; those runs then resumed to their budget).
``paper``  240 + 60 clips of 30 s at 44.1 kHz, features at 44.1 kHz, up to 1000 epochs, patience 100 (for a GPU).

Resume: each finished (cell, method) is ``<out>/results/<cell>__<method>.json`` (written atomically) and is not run
again; an interrupted one resumes (synthesis skips finished clips, extraction finished files, training continues
from its last finished epoch). The table is printed in markdown and written to ``<out>/paper_table.md`` and
``<out>/paper_table.csv``, with the time each (cell, method) took (its first method also carries the cell's
synthesis and extraction).
"""
from __future__ import annotations

import argparse
import csv
import fnmatch
import io
import os
import subprocess
import sys
import time
from typing import Any, NamedTuple

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import utils  # noqa: E402
from utils import SELDError  # noqa: E402

DATASETS = ('ansim', 'resim', 'cansim', 'cresim', 'real')
PLANAR = ('cansim', 'cresim')
METHODS = ('seldnet', 'sed_only', 'doa_only', 'music')
BASELINE_DATASETS = ('ansim', 'resim', 'real')
OVERLAPS, SPLITS, DBS = (1, 2, 3), (1, 2, 3), (30, 20, 10)
COLUMNS = ('ER', 'F', 'DOA', 'FR', 'SELD', 'unseen_DOA', 'azimuth', 'ele_floor', 'doa_missing', 'seconds')

# Scales. ``synth``: synthesize_dataset.py keys; ``epochs``: per dataset (each dataset's own budget); ``params``:
# parameter.py overrides for every run (tiny: a tiny model); ``fs``: feature rate (None: the dataset's).
# ``frames_per_batch``: batch_size = frames_per_batch // sequence_length (the same frames per step at every length).
# ``patience``: epochs, or 'epochs' for the dataset's epoch budget (no early stopping).
SCALES: dict[str, dict[str, Any]] = {
    # every cell and method end to end in a couple of minutes: 5 + 2 clips of 5 s, 1 epoch, a tiny model
    'tiny': dict(synth=dict(nb_train=5, nb_test=2, clip_len_s=5.0, fs=16000, n_jobs=1),
                 epochs=dict(ansim=1, resim=1, cansim=1, cresim=1, real=1), patience=1, fs=16000,
                 params=dict(nb_cnn2d_filt=4, rnn_size=[8], fnn_size=[8])),
    # sized for 2 CPU cores (module docstring "Scales": the measured time is in the README)
    'cpu': dict(synth=dict(nb_train=20, nb_test=10, clip_len_s=30.0, fs=16000, n_jobs=-1),
                epochs=dict(ansim=20, resim=20, cansim=28, cresim=28, real=20), patience='epochs', fs=16000,
                params=dict(nb_cnn2d_filt=32, bn_momentum=0.9, learning_rate=2e-3), frames_per_batch=2048),
    # the paper's: 240 + 60 clips of 30 s at 44.1 kHz per split, up to 1000 epochs, patience 100 (for a GPU)
    'paper': dict(synth=dict(nb_train=240, nb_test=60, clip_len_s=30.0, fs=44100, n_jobs=-1),
                  epochs=dict(ansim=1000, resim=1000, cansim=1000, cresim=1000, real=1000), patience=100, fs=None,
                  params={}),
}
SYNTH_SEED = 0


class Cell(NamedTuple):
    dataset: str
    overlap: int
    split: int
    db: int

    @property
    def name(self) -> str:
        return f'{self.dataset}:ov{self.overlap}:split{self.split}:db{self.db}'

    @property
    def key(self) -> str:  # in file names
        return self.name.replace(':', '_')


def all_cells() -> list[Cell]:
    return [Cell(d, o, s, b) for d in DATASETS for o in OVERLAPS for s in SPLITS for b in DBS]


def default_plan() -> list[tuple[Cell, str]]:
    """The table of issue 23 (split 1): SELDnet on the four look-alikes x ov1-3 at 30 dB and ANSIM ov1 at 20 and
    10 dB; the baselines on ANSIM and RESIM ov1-3."""
    plan = [(Cell(d, o, 1, 30), 'seldnet') for d in DATASETS[:4] for o in OVERLAPS]
    plan += [(Cell('ansim', 1, 1, db), 'seldnet') for db in (20, 10)]
    plan += [(Cell(d, o, 1, 30), m) for d in ('ansim', 'resim') for o in OVERLAPS for m in METHODS[1:]]
    return plan


def select_plan(cells: str | None, methods: str | None, dataset_dirs: dict[str, str]) -> list[tuple[Cell, str]]:
    """The (cell, method) pairs to run. Without ``cells`` and ``methods``, :func:`default_plan` (plus REAL ov1-3 when
    its folder is given); ``cells`` filters it (or, with ``methods``, the whole grid); ``methods`` runs those methods
    on every selected cell."""
    meths = None
    if methods is not None:
        meths = [m.strip() for m in methods.split(',') if m.strip()]
        bad = [m for m in meths if m not in METHODS]
        if bad or not meths:
            raise SELDError(f'--methods {methods!r}: must be a comma-separated list of {", ".join(METHODS)}')
    base = default_plan()
    if 'real' in dataset_dirs:
        base += [(Cell('real', o, 1, 30), m) for o in OVERLAPS for m in METHODS]
    if cells is None:
        plan = base
    else:
        globs = [g.strip() for g in cells.split(',') if g.strip()]
        if not globs:
            raise SELDError(f'--cells {cells!r}: give cells such as ansim:ov1:split1:db30 (globs allowed)')
        universe = [(c, m) for c in all_cells() for m in METHODS] if meths else base
        plan = [(c, m) for c, m in universe if any(fnmatch.fnmatchcase(c.name, g) for g in globs)]
        for g in globs:
            if not any(fnmatch.fnmatchcase(c.name, g) for c in all_cells()):
                raise SELDError(f'--cells {g!r}: matches no cell; cells are <dataset>:ov<1-3>:split<1-3>:db<30|20|10> '
                                f'with dataset one of {", ".join(DATASETS)} (e.g. ansim:ov1:split1:db30)')
    if meths is not None:
        cells_in = list(dict.fromkeys(c for c, _ in plan))
        plan = [(c, m) for c in cells_in for m in meths]
    plan = [(c, m) for c, m in plan if c.dataset != 'real' or 'real' in dataset_dirs]
    if not plan:
        raise SELDError('nothing to run: the selected cells and methods are empty (REAL needs --dataset-dir real=DIR)')
    return plan


# --------------------------------------------------------------------------------------------------
# One cell's data and parameters
# --------------------------------------------------------------------------------------------------
def cell_dirs(cell: Cell, *, out: str, dataset_dirs: dict[str, str]) -> tuple[str, str | None]:
    """The cell's dataset folder and its unseen-DOA test set's (None: none)."""
    if cell.dataset in dataset_dirs:
        d = dataset_dirs[cell.dataset]
        return d, (d.rstrip('/') + '_unseen_doa' if os.path.isdir(d.rstrip('/') + '_unseen_doa') else None)
    d = os.path.join(out, 'data', cell.dataset)
    return d, d + '_unseen_doa'


def synthesize(cell: Cell, *, scale: str, dataset_dir: str, unseen_dir: str) -> None:
    """The cell's look-alike and its unseen-DOA test set, by the synthesizer's command line (finished clips are
    skipped)."""
    s = SCALES[scale]['synth']
    common = [f'dataset={cell.dataset}', f'overlap={cell.overlap}', f'split={cell.split}', f'db={cell.db}',
              f'nb_test={s["nb_test"]}', f'clip_len_s={s["clip_len_s"]}', f'fs={s["fs"]}', f'seed={SYNTH_SEED}',
              f'n_jobs={s["n_jobs"]}', 'progress=false']
    for args in ([f'nb_train={s["nb_train"]}', f'dataset_dir={dataset_dir}'],
                 ['nb_train=0', 'unseen_doa=true', f'dataset_dir={unseen_dir}']):
        cmd = [sys.executable, os.path.join(ROOT, 'synthesize_dataset.py'), *common, *args]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise SELDError(f'synthesize_dataset.py failed for {cell.name}: {(done.stderr or done.stdout).strip()}')
        print(f'  {done.stdout.strip()}', flush=True)


def cell_params(cell: Cell, method: str, *, scale: str, out: str, dataset_dir: str,
                unseen_dir: str | None) -> dict[str, Any]:
    """parameter.py's parameters of one (cell, method) run."""
    import parameter

    sc = SCALES[scale]
    # the paper's sequence length of the dataset: its task-id in parameter.TASKS ('2'..'6': 512 ANSIM/REAL, 256 else)
    paper_tasks = [parameter.TASKS[t] for t in '23456']
    sequence_length = next(t['sequence_length'] for t in paper_tasks if t['dataset'] == cell.dataset)
    over: dict[str, Any] = dict(
        dataset=cell.dataset, dataset_dir=dataset_dir, overlap=cell.overlap, split=cell.split, db=cell.db,
        feat_label_dir=os.path.join(out, 'features'), model_dir=os.path.join(out, 'runs'), unseen_doa_dir=unseen_dir,
        sequence_length=sequence_length, nb_epochs=sc['epochs'][cell.dataset],
        patience=sc['epochs'][cell.dataset] if sc['patience'] == 'epochs' else sc['patience'], fs=sc['fs'],
        synthesize=False, **sc['params'])
    if 'frames_per_batch' in sc:  # the same frames per training step at every sequence length
        over['batch_size'] = max(1, sc['frames_per_batch'] // sequence_length)
    if method == 'sed_only':
        over.update(loss_weights=[1.0, 0.0], early_stop_metric='sed_loss')
    elif method == 'doa_only':
        over.update(loss_weights=[0.0, 50.0], early_stop_metric='doa_loss')
    return parameter.get_params('1', over)


# --------------------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------------------
def azimuth_and_floor(pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Planar-array columns over the recordings' ``(ref_sed, ref_doa, pred_sed, pred_doa)`` (frames x classes,
    DOA blocks ``[x.., y.., z..]``).

    Returns
    -------
    dict
        ``azimuth``: mean wrapped |azimuth difference| (degrees) over the (frame, class) pairs active in both;
        ``ele_floor``: mean |reference elevation| over the reference-active pairs (module docstring).
    """
    from utils import cart2sph

    d_azi, ele = [], []
    for ref_sed, ref_doa, pred_sed, pred_doa in pairs:
        T, C = ref_sed.shape
        rv = np.asarray(ref_doa, np.float64).reshape(T, -1, C).transpose(0, 2, 1)
        pv = np.asarray(pred_doa, np.float64).reshape(T, -1, C).transpose(0, 2, 1)
        ref, both = ref_sed > 0.5, (ref_sed > 0.5) & (pred_sed > 0.5)
        ele.append(np.abs(cart2sph(rv[ref])[1]))
        d = cart2sph(pv[both])[0] - cart2sph(rv[both])[0]
        d_azi.append(np.abs((d + 180.0) % 360.0 - 180.0))
    d_azi, ele = np.concatenate(d_azi), np.concatenate(ele)
    return dict(azimuth=float(d_azi.mean()) if d_azi.size else float('nan'),
                ele_floor=float(ele.mean()) if ele.size else float('nan'))


def _scorer(fc: Any, params: dict[str, Any]) -> Any:
    import scoring
    import seld

    return scoring.SELDScorer.from_format(seld.scoring_info(fc, params))


def model_outputs(params: dict[str, Any], run_dir: str, fc: Any) -> list[tuple[str, dict, Any, np.ndarray, ...]]:
    """The selected model's outputs on ``fc``'s test split: per recording ``(stem, info, reference, ref_sed,
    ref_doa, sed_prob, doa)`` at the model frame rate."""
    import keras_model
    from cls_data_generator import DataGenerator

    model = keras_model.load_model(os.path.join(run_dir, 'model.keras'))
    gen = DataGenerator(params, split='test', feat_class=fc)
    outputs = gen.split_predictions(model.predict(gen, verbose=0))
    refs = gen.references()
    return [(stem, *refs[stem], ref_sed, ref_doa, sed, doa)
            for (stem, sed, doa), (_, ref_sed, ref_doa) in zip(outputs, gen.get_labels())]


def score_network(params: dict[str, Any], method: str, run_dir: str, results: dict[str, Any],
                  fcs: dict[str, Any]) -> dict[str, float]:
    """The table's columns of a trained run (``seldnet``, ``sed_only`` from results.json; ``doa_only`` scored here
    with the reference activity)."""
    planar = params['dataset'] in PLANAR
    row: dict[str, float] = {}
    if method in ('seldnet', 'sed_only'):
        m = results['test']['seld2018']
        row.update(ER=m['error_rate'], F=m['f_score'], FR=m['frame_recall'])
        if method == 'seldnet':
            row.update(DOA=m['doa_error'], SELD=m['seld_score'], doa_missing=m['doa_missing'])
            if 'test_unseen_doa' in results:
                row['unseen_DOA'] = results['test_unseen_doa']['seld2018']['doa_error']
            if planar:
                outs = model_outputs(params, run_dir, fcs['test'])
                thr = params['sed_threshold']
                row.update(azimuth_and_floor([(rs, rd, (s > thr).astype(np.float32), d)
                                              for _, _, _, rs, rd, s, d in outs]))
        return row
    for part, fc in fcs.items():  # doa_only: the reference activity, the model's DOA
        outs = model_outputs(params, run_dir, fc)
        scorer = _scorer(fc, params)
        for stem, info, ref, ref_sed, _, _, doa in outs:
            scorer.add(stem, ref, ref_sed, doa, duration_s=info['duration_s'], nb_frames=info['nb_frames'])
        m = scorer.results()['seld2018']
        if part == 'test':
            row.update(DOA=m['doa_error'], doa_missing=m['doa_missing'])
            if planar:
                row.update(azimuth_and_floor([(rs, rd, rs, d) for _, _, _, rs, rd, _, d in outs]))
        else:
            row['unseen_DOA'] = m['doa_error']
    return row


def score_music(params: dict[str, Any], fcs: dict[str, Any], *, pred_root: str) -> dict[str, float]:
    """MUSIC on every test recording of ``fcs`` (test, unseen), given the labels' source counts; scored like a run
    (predictions written to ``<pred_root>/<part>/predictions``)."""
    import music
    import seld
    from cls_feature_class import stft
    from label_frames import split_label

    row: dict[str, float] = {}
    array = music.array_of(params['dataset'])
    for part, fc in fcs.items():
        scorer, predictions, pairs = _scorer(fc, params), [], []
        for rec in [r for r in fc.recordings() if r.part == 'test']:
            info = fc.file_info(rec.stem)
            label = np.load(fc.paths(rec.stem)['label'])
            ref_sed, ref_doa = split_label(label, nb_classes=fc.nb_classes)
            spec = stft(fc.load_audio(rec.wav), nfft=fc.nfft, framing=fc.framing, nb_frames=info['nb_frames'])
            est = music.music_doas(spec, ref_sed.sum(axis=1).round().astype(np.int64), array=array, fs=fc.fs,
                                   nfft=fc.nfft)
            sed, doa = music.assign_to_classes(ref_sed, ref_doa, est)
            ref = fc.dataset.read_reference(rec, duration_s=info['duration_s'])
            scorer.add(rec.stem, ref, sed, doa, duration_s=info['duration_s'], nb_frames=info['nb_frames'])
            predictions.append(dict(stem=rec.stem, sed=sed, doa=doa, nb_frames=info['nb_frames'],
                                    duration_s=info['duration_s']))
            pairs.append((ref_sed, ref_doa, sed, doa))
        folder = os.path.join(pred_root, part)
        with utils.writing(folder):
            os.makedirs(folder, exist_ok=True)
        seld.write_predictions(os.path.join(folder, 'predictions'), predictions, seld.scoring_info(fc, params))
        m = scorer.results()['seld2018']
        if part == 'test':
            row.update(DOA=m['doa_error'], doa_missing=m['doa_missing'])
            if params['dataset'] in PLANAR:
                row.update(azimuth_and_floor(pairs))
        else:
            row['unseen_DOA'] = m['doa_error']
    return row


# --------------------------------------------------------------------------------------------------
# Running the plan
# --------------------------------------------------------------------------------------------------
def result_file(out: str, cell: Cell, method: str) -> str:
    return os.path.join(out, 'results', f'{cell.key}__{method}.json')


def run_one(cell: Cell, method: str, *, scale: str, out: str, dataset_dirs: dict[str, str],
            prepared: set[str]) -> dict[str, Any]:
    """Run one (cell, method) to its results record."""
    import batch_feature_extraction
    from cls_feature_class import FeatureClass

    t0 = time.time()
    dataset_dir, unseen_dir = cell_dirs(cell, out=out, dataset_dirs=dataset_dirs)
    if cell.dataset not in dataset_dirs and cell.name not in prepared:
        synthesize(cell, scale=scale, dataset_dir=dataset_dir, unseen_dir=unseen_dir)
    params = cell_params(cell, method, scale=scale, out=out, dataset_dir=dataset_dir, unseen_dir=unseen_dir)
    if cell.name not in prepared:
        batch_feature_extraction.extract(params, progress=False)
        prepared.add(cell.name)
    fcs = {'test': FeatureClass(params)}
    if unseen_dir:
        fcs['unseen'] = FeatureClass(params, unseen_doa=True)
    if method == 'music':
        row = score_music(params, fcs, pred_root=os.path.join(out, 'music', cell.key))
        run_dir = None
    else:
        import keras

        import seld

        keras.backend.clear_session()
        job = f'{method}_db{cell.db}'
        results = seld.train(params, job)
        run_dir = seld.run_dir_for(params, job)
        row = score_network(params, method, run_dir, results, fcs)
    if cell.dataset in PLANAR and 'ele_floor' not in row:  # the floor belongs to the cell's labels
        row['ele_floor'] = azimuth_and_floor(_label_pairs(fcs['test']))['ele_floor']
    row['seconds'] = time.time() - t0
    return dict(cell=cell.name, method=method, scale=scale, row=row, run_dir=run_dir, dataset_dir=dataset_dir,
                unseen_doa_dir=unseen_dir, nb_epochs=params['nb_epochs'], patience=params['patience'],
                sequence_length=params['sequence_length'], fs=params['fs'], loss_weights=params['loss_weights'],
                early_stop_metric=params['early_stop_metric'],
                note=('given the reference number of active sources per frame' if method == 'music' else
                      'given the reference activity' if method == 'doa_only' else ''))


def _label_pairs(fc: Any) -> list[tuple[np.ndarray, ...]]:
    from label_frames import split_label

    out = []
    for rec in [r for r in fc.recordings() if r.part == 'test']:
        sed, doa = split_label(np.load(fc.paths(rec.stem)['label']), nb_classes=fc.nb_classes)
        out.append((sed, doa, sed, doa))
    return out


def _fmt(value: Any, key: str) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return '—'
    if key in ('DOA', 'unseen_DOA', 'azimuth', 'ele_floor'):
        return f'{value:.1f}°'
    if key == 'seconds':
        return f'{value:.0f} s'
    if key == 'doa_missing':
        return f'{int(value)}'
    return f'{value:.3f}'


HEADER = ('cell', 'method', 'ER', 'F', 'DOA error', 'frame recall', 'SELD', 'unseen-DOA DOA error',
          'azimuth error', 'elevation floor', 'doa_missing', 'time')


def table(records: list[dict[str, Any]]) -> tuple[str, str]:
    """The markdown table and the CSV text of the records."""
    lines = ['| ' + ' | '.join(HEADER) + ' |', '|' + '---|' * len(HEADER)]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator='\n')
    w.writerow(['cell', 'method', *COLUMNS, 'note'])
    for r in records:
        row = r['row']
        method = r['method'] + (' (ref. counts)' if r['method'] == 'music' else
                                ' (ref. activity)' if r['method'] == 'doa_only' else '')
        lines.append('| ' + ' | '.join([r['cell'], method] + [_fmt(row.get(k), k) for k in COLUMNS]) + ' |')
        w.writerow([r['cell'], r['method'], *('' if row.get(k) is None else row[k] for k in COLUMNS), r['note']])
    notes = ['', 'seld2018 metrics (evaluation_metrics.py) on the test split; unseen-DOA: the test scenes at DOAs '
             '+5 deg off the training grid. doa_only is scored with the reference activity and music with the '
             'reference number of sources per frame (their estimates matched to the reference classes by minimum '
             'angle): DOA columns only. sed_only: SED columns only. Azimuth error and elevation floor (mean '
             '|elevation| of the reference-active frames: what an array deaf to the sign of the elevation cannot '
             'beat) for the planar array only. Time: the (cell, method) run, with the cell\'s synthesis and '
             'extraction in its first.']
    if not any(r['cell'].startswith('real:') for r in records):
        notes.append('REAL: not run. Its measured room responses cannot be synthesized; pass --dataset-dir real=DIR '
                     '(the TUT-2018 REAL zips, unzipped).')
    return '\n'.join(lines + notes) + '\n', buf.getvalue()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise SELDError(f'{message} (python benchmarks/paper_table.py --help)')


def main(argv: list[str]) -> int:
    parser = _Parser(prog='paper_table.py', description=__doc__.split('\n\n')[0])
    parser.add_argument('--scale', choices=tuple(SCALES), default='cpu')
    parser.add_argument('--cells', help='comma-separated globs of <dataset>:ov<o>:split<s>:db<d>')
    parser.add_argument('--methods', help=f'comma-separated, of {", ".join(METHODS)}')
    parser.add_argument('--out', default=None, help='output folder (default runs/paper_<scale>)')
    parser.add_argument('--epochs', type=int, default=None,
                        help="every dataset's epoch budget (default: the scale's; for timing probes)")
    parser.add_argument('--dataset-dir', action='append', default=[], metavar='DATASET=DIR',
                        help='use the data in DIR (e.g. the real TUT zips, unzipped) instead of a look-alike')
    args = parser.parse_args(argv)
    dataset_dirs: dict[str, str] = {}
    for item in args.dataset_dir:
        name, sep, folder = item.partition('=')
        if not sep or name not in DATASETS or not folder:
            raise SELDError(f'--dataset-dir {item!r}: must be DATASET=DIR with DATASET one of {", ".join(DATASETS)}')
        if not os.path.isdir(folder):
            raise SELDError(f'{folder}: --dataset-dir {name}=: no such folder')
        dataset_dirs[name] = folder
    out = args.out or os.path.join('runs', f'paper_{args.scale}')
    if args.epochs is not None:
        if args.epochs < 1:
            raise SELDError(f'--epochs {args.epochs}: must be >= 1')
        SCALES[args.scale]['epochs'] = {d: args.epochs for d in DATASETS}
    plan = select_plan(args.cells, args.methods, dataset_dirs)
    records, prepared = [], set()
    t_all = time.time()
    for i, (cell, method) in enumerate(plan, start=1):
        path = result_file(out, cell, method)
        if os.path.exists(path):
            rec = utils.read_json(path)
            if rec.get('scale') != args.scale:
                raise SELDError(f'{path}: made at scale {rec.get("scale")!r}, not {args.scale!r}; use another --out')
            print(f'[{i}/{len(plan)}] {cell.name} {method}: done already ({rec["row"]["seconds"]:.0f} s)', flush=True)
        else:
            print(f'[{i}/{len(plan)}] {cell.name} {method} ({args.scale} scale) ...', flush=True)
            rec = run_one(cell, method, scale=args.scale, out=out, dataset_dirs=dataset_dirs, prepared=prepared)
            with utils.writing(path):
                os.makedirs(os.path.dirname(path), exist_ok=True)
                utils.write_json(path, rec)
            print(f'[{i}/{len(plan)}] {cell.name} {method}: {rec["row"]["seconds"]:.1f} s', flush=True)
        records.append(rec)
    md, text = table(records)
    with utils.writing(os.path.join(out, 'paper_table.md')):
        utils.write_text(os.path.join(out, 'paper_table.md'), md)
    with utils.writing(os.path.join(out, 'paper_table.csv')):
        utils.write_text(os.path.join(out, 'paper_table.csv'), text)
    print(md)
    total = sum(r['row']['seconds'] for r in records)
    print(f'{len(records)} (cell, method) results at scale {args.scale}: {total:.0f} s of work in all; this '
          f'invocation {time.time() - t_all:.0f} s -> {out}/paper_table.md, {out}/paper_table.csv')
    return 0


if __name__ == '__main__':
    utils.run_cli(main)

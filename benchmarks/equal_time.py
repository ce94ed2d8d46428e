"""SELDnet against its descendant Multi-ACCDOA at EQUAL TRAINING TIME, on the STARSS23 look-alike with same-class
overlaps: what the DCASE lineage's features, output and model buy at the same compute (issue 24, item 6).

Usage::

    python benchmarks/equal_time.py [--minutes 15] [--nb-per-fold 16] [--same-class 0.3] [--batch-size 8]
                                    [--arms seldnet,multi_accdoa[,seldnet_iv]] [--out runs/equal_time] [--seed 0]

1. Synthesizes the STARSS23 look-alike (``synthesize_dataset.py dataset=starss23 same_class=0.3``, FOA, reverberant,
   moving sources, 20-40 s recordings, ``nb_per_fold`` per fold and sub-folder: fold 3 trains, fold 4 tests; a
   share of fold 3 is held out for validation, as the project does for STARSS). With ``same_class=0.3`` an event
   that starts while others are active takes one of their classes with probability 0.3.
2. Trains each arm in its own run folder under ``<out>/runs``:

   ``seldnet``       task ``starss23``: the paper's STFT magnitude + phase, SELDnet (sigmoid SED + x, y, z DOA per
                     class: one instance per class and frame, the last one listed).
   ``multi_accdoa``  task ``dcase2023_baseline``: 64 log-mel bands + 3 intensity-vector maps, the 2023 CRNN with
                     2 self-attention layers, Multi-ACCDOA (3 tracks per class) with the ADPIT loss.
   ``seldnet_iv``    (``--arms``) SELDnet's two heads on the 2023 features and CRNN (task ``dcase2023_baseline`` with
                     ``output=seldnet crnn=dcase2022``): separates what the output buys from what the features and
                     model buy.

   The same for every arm: 5-s sequences (250 frames of 20 ms), ``--batch-size`` sequences per step (the 2023
   baseline's 128 would be one step per epoch on this data), Adam 1e-3 (both codes' rate), the seed, model
   selection on the validation ``dcase2022/seld_score``, no early stop.
3. EQUAL TIME: each arm trains 2 epochs; from its second epoch's wall time (``metrics.csv`` ``epoch_time_s``:
   training plus the validation pass) it is given as many more whole epochs as fit ``--minutes`` in all, and
   resumed (``nb_epochs`` may change on a resumed run with a constant learning rate). The table reports the time
   actually spent; it differs from the budget by less than an epoch.
4. Scores the test fold once with the selected model (``results.json``): ``dcase2022`` (1-s segments, macro; the
   2022 and 2023 challenges') and ``dcase2024_nodist`` (the 2024 code's frame-level metric with
   ``eval_dist=False``: neither arm predicts distances; docs/metrics.md).

Prints a markdown table and writes ``<out>/equal_time.md`` / ``.json``. Resumable: synthesis skips finished
recordings, extraction finished files, and each run continues from its last finished epoch.
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import utils  # noqa: E402
from utils import SELDError  # noqa: E402

#: arm -> (task-id, overrides) (module docstring).
ARMS: dict[str, tuple[str, dict[str, Any]]] = {
    'seldnet': ('starss23', {}),
    'multi_accdoa': ('dcase2023_baseline', {}),
    'seldnet_iv': ('dcase2023_baseline', dict(output='seldnet', crnn='dcase2022')),
}
PROBE_EPOCHS = 2
COLUMNS = [('dcase2022', 'error_rate', 'ER'), ('dcase2022', 'f_score', 'F'), ('dcase2022', 'localization_error', 'LE'),
           ('dcase2022', 'localization_recall', 'LR'), ('dcase2022', 'seld_score', 'SELD'),
           ('dcase2024_nodist', 'error_rate', 'ER'), ('dcase2024_nodist', 'f_score', 'F'),
           ('dcase2024_nodist', 'doa_error', 'DOA'), ('dcase2024_nodist', 'localization_recall', 'LR'),
           ('dcase2024_nodist', 'seld_score', 'SELD')]


def arm_params(arm: str, *, out: str, data: str, batch_size: int, seed: int, nb_epochs: int) -> dict[str, Any]:
    import parameter

    task, over = ARMS[arm]
    return parameter.get_params(task, dict(
        over, dataset='starss23', dataset_dir=data, feat_label_dir=os.path.join(out, 'features'),
        model_dir=os.path.join(out, 'runs'), sequence_length=250, batch_size=batch_size, learning_rate=0.001,
        seed=seed, nb_epochs=nb_epochs, patience=10 ** 6, early_stop_metric='dcase2022/seld_score',
        lr_schedule='constant'))


def epoch_times(run_dir: str) -> list[float]:
    """``epoch_time_s`` of every finished epoch of a run (empty before the first)."""
    path = os.path.join(run_dir, 'metrics.csv')
    if not os.path.exists(path):
        return []
    with open(path, newline='', encoding='utf-8') as fh:
        return [float(r['epoch_time_s']) for r in csv.DictReader(fh)]


def epochs_for_budget(probe: list[float], budget_s: float) -> int:
    """Whole epochs that fit ``budget_s`` seconds after the probe epochs took ``probe`` seconds each (the last
    probe epoch is the steady one: the first also compiles); never fewer than the probe."""
    spare = budget_s - sum(probe)
    return len(probe) + max(0, int(spare // probe[-1]))


def train_arm(arm: str, *, out: str, data: str, budget_s: float, batch_size: int, seed: int) -> dict[str, Any]:
    """Train one arm to the time budget (module docstring, step 3); returns its table record."""
    import keras

    import batch_feature_extraction
    import keras_model
    import seld

    t0 = time.time()
    params = arm_params(arm, out=out, data=data, batch_size=batch_size, seed=seed, nb_epochs=PROBE_EPOCHS)
    batch_feature_extraction.extract(params, progress=True)
    job = f'equal_time_{arm}'
    run_dir = seld.run_dir_for(params, job)
    times = epoch_times(run_dir)
    if len(times) < PROBE_EPOCHS:
        keras.backend.clear_session()
        seld.train(params, job)
        times = epoch_times(run_dir)
    per_epoch = times[PROBE_EPOCHS - 1]
    params = dict(params, nb_epochs=max(len(times), epochs_for_budget(times[:PROBE_EPOCHS], budget_s)))
    keras.backend.clear_session()
    results = seld.train(params, job)  # resumes from the probe (or from where an interrupted run stopped)
    times = epoch_times(run_dir)
    model = keras_model.load_model(os.path.join(run_dir, 'model.keras'))
    return dict(arm=arm, task=ARMS[arm][0], overrides=ARMS[arm][1], run_dir=run_dir, epochs=len(times),
                train_s=sum(times), s_per_epoch=per_epoch, params=int(model.count_params()),
                features=params['features'], output=params['output'], test=results['test'],
                selected_epoch=results['best_epoch'], wall_s=time.time() - t0)


def table(records: list[dict[str, Any]], *, minutes: float, same_class: float) -> str:
    head = ['arm', 'features', 'output', 'parameters', 'epochs', 'training time'] + [
        f'{"2022" if d == "dcase2022" else "2024 frame"} {short}' for d, _, short in COLUMNS]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for r in records:
        cells = [r['arm'], r['features'], r['output'], f'{r["params"]:,}', str(r['epochs']),
                 f'{r["train_s"] / 60:.1f} min']
        for d, k, short in COLUMNS:
            v = r['test'][d][k]
            cells.append('—' if v is None or v != v else (f'{v:.1f}°' if short in ('LE', 'DOA') else f'{v:.3f}'))
        lines.append('| ' + ' | '.join(cells) + ' |')
    lines += ['', f'Test fold of the STARSS23 look-alike (same_class={same_class}), each arm trained for about '
              f'{minutes:g} min (whole epochs, validation included), the model selected on validation '
              'dcase2022/seld_score. 2022: dcase2022 (1-s segments, macro, 20 deg); 2024 frame: dcase2024_nodist '
              '(100-ms frames, macro, 20 deg, no distances). Lower ER, LE, DOA, SELD and higher F, LR are better.']
    return '\n'.join(lines) + '\n'


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise SELDError(f'{message} (python benchmarks/equal_time.py --help)')


def main(argv: list[str]) -> int:
    parser = _Parser(prog='equal_time.py', description=__doc__.split('\n\n')[0])
    parser.add_argument('--minutes', type=float, default=15.0, help='training time per arm (default 15)')
    parser.add_argument('--nb-per-fold', type=int, default=16, help='recordings per fold and sub-folder (default 16)')
    parser.add_argument('--same-class', type=float, default=0.3)
    parser.add_argument('--batch-size', type=int, default=8, help='sequences of 5 s per step (default 8)')
    parser.add_argument('--arms', default='seldnet,multi_accdoa',
                        help=f'comma-separated, of {", ".join(ARMS)} (default seldnet,multi_accdoa)')
    parser.add_argument('--out', default=os.path.join('runs', 'equal_time'))
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    arms = [a.strip() for a in args.arms.split(',') if a.strip()]
    bad = [a for a in arms if a not in ARMS]
    if bad or not arms:
        raise SELDError(f'--arms {args.arms!r}: each must be one of {", ".join(ARMS)}')
    if not args.minutes > 0:
        raise SELDError(f'--minutes {args.minutes}: must be > 0')
    if args.nb_per_fold < 2 or args.batch_size < 1:
        raise SELDError(f'--nb-per-fold {args.nb_per_fold} must be >= 2 and --batch-size {args.batch_size} >= 1')
    if not 0 <= args.same_class <= 1:
        raise SELDError(f'--same-class {args.same_class}: must be in [0, 1]')
    t_all = time.time()
    data = os.path.join(args.out, 'data', 'starss23')
    cmd = [sys.executable, os.path.join(ROOT, 'synthesize_dataset.py'), 'dataset=starss23', f'dataset_dir={data}',
           f'nb_per_fold={args.nb_per_fold}', f'same_class={args.same_class}', f'seed={args.seed}']
    if subprocess.run(cmd).returncode != 0:
        raise SELDError(f'{data}: the synthesis failed ({" ".join(cmd[1:])})')
    records = []
    for arm in arms:
        print(f'== {arm}: {ARMS[arm][0]} {ARMS[arm][1] or ""}, about {args.minutes:g} min of training', flush=True)
        records.append(train_arm(arm, out=args.out, data=data, budget_s=60 * args.minutes,
                                 batch_size=args.batch_size, seed=args.seed))
    md = table(records, minutes=args.minutes, same_class=args.same_class)
    for name, text in (('equal_time.md', md), ('equal_time.json', None)):
        path = os.path.join(args.out, name)
        with utils.writing(path):
            os.makedirs(args.out, exist_ok=True)
            if text is None:
                utils.write_json(path, dict(args=vars(args), records=records))
            else:
                utils.write_text(path, text)
    print(md)
    print(f'{len(records)} arms, {sum(r["train_s"] for r in records) / 60:.1f} min of training, '
          f'{(time.time() - t_all) / 60:.1f} min in all -> {args.out}/equal_time.md')
    return 0


if __name__ == '__main__':
    utils.run_cli(main)

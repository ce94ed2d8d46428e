"""The run folder's commit protocol: an epoch's files are consistent after any kill, and a run resumes exactly.

:class:`Checkpoint` (a Keras callback) writes an epoch's files and, last, the commit record
``checkpoint/state.json`` (its docstring lists them in order); :func:`recover_run` brings a folder back to its last
commit before a run resumes. ``SELD_TEST_KILL_AT`` (:func:`kill_point`) lets the tests kill the process at each step
of the protocol.
"""
from __future__ import annotations

import contextlib
import csv
import filecmp
import io
import os
import re
import signal
from typing import Any, Iterator

import keras
import numpy as np

import keras_model
import utils
from plots import plot_training_curves
from utils import SELDError

EPOCH_FILE = re.compile(r'^epoch-(\d{4,})\.keras$')


def write_metrics_csv(path: str, rows: list[dict[str, float]]) -> None:
    keys = list(rows[0])
    for r in rows[1:]:
        keys += [k for k in r if k not in keys]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator='\n')
    w.writeheader()
    w.writerows(rows)
    utils.write_text(path, buf.getvalue())


def read_metrics_csv(path: str) -> list[dict[str, float]]:
    """The rows of metrics.csv (``[]`` if there is none); a cell that is not a number raises :class:`SELDError`
    naming the file and line (an empty cell, a metric an epoch did not have, is left out of its row)."""
    if not os.path.exists(path):
        return []
    rows = []
    try:
        with open(path, newline='', encoding='utf-8') as f:
            for line, r in enumerate(csv.DictReader(f), start=2):
                row = {}
                for k, v in r.items():
                    if k is None or v is None:
                        raise SELDError(f'{path}:{line}: {"more" if k is None else "fewer"} cells than the header\'s '
                                        f'columns')
                    if v == '':
                        continue
                    try:
                        row[k] = int(v) if k == 'epoch' else float(v)
                    except ValueError:
                        raise SELDError(f'{path}:{line}: {v!r} in column {k!r} is not a number') from None
                if 'epoch' not in row:
                    raise SELDError(f'{path}:{line}: no epoch number')
                rows.append(row)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise SELDError(f'{path}: cannot read ({err})') from err
    return rows


def epoch_line(row: dict[str, float], params: dict[str, Any], state: dict[str, Any], improved: bool) -> str:
    """The one-line summary of an epoch: losses and the validation scores of the selecting definition."""
    metric = params['early_stop_metric']
    name = metric.split('/')[0]
    cells = [f'{short} {row[f"val/{name}/{key}"]:.3f}' for key, short in (
        ('error_rate', 'ER'), ('f_score', 'F'), ('doa_error', 'DOA'), ('localization_error', 'LE'),
        ('frame_recall', 'FR'), ('localization_recall', 'LR'), ('seld_score', 'SELD')) if f'val/{name}/{key}' in row]
    return (f'epoch {row["epoch"]:4d}/{params["nb_epochs"]} {row["epoch_time_s"]:7.1f}s | loss {row["loss"]:.4f} '
            f'val {row["val/loss"]:.4f} | {name} (val): {" ".join(cells)} | best {metric} {state["best"]:.4f} @ '
            f'{state["best_epoch"]}' + (' *' if improved else ''))


def kill_point(point: str, epoch: int) -> None:
    """Test hook: ``SELD_TEST_KILL_AT=<point>@<epoch>[,<point>@<epoch> ...]`` kills this process with SIGKILL when it
    reaches ``point`` in epoch ``epoch`` (1-based): ``batch`` (after the first training batch), ``model_saved``,
    ``metrics_written``, ``committed``, ``published_last``, ``published_model``, ``cleaned`` (see
    :class:`Checkpoint`). With ``SELD_TEST_KILL_LOG=<file>`` each point fires once: it is appended to the file before
    the kill and skipped by later processes, so one rerun after another passes every point of the list."""
    here = f'{point}@{epoch}'
    if here not in os.environ.get('SELD_TEST_KILL_AT', '').split(','):
        return
    log = os.environ.get('SELD_TEST_KILL_LOG')
    if log:
        with contextlib.suppress(FileNotFoundError), open(log, encoding='utf-8') as f:
            if here in f.read().split():
                return
        with open(log, 'a', encoding='utf-8') as f:
            f.write(here + '\n')
            f.flush()
            os.fsync(f.fileno())
    os.kill(os.getpid(), signal.SIGKILL)


def epoch_file(epoch: int) -> str:
    return f'epoch-{epoch:04d}.keras'


class Checkpoint(keras.callbacks.Callback):
    """Keep the model with the best validation metric; log, plot, save the resume state, stop early.

    The files of an epoch are made consistent by one commit record, ``checkpoint/state.json``, written last
    (atomically: temporary name, then rename)::

        checkpoint/epoch-NNNN.keras    the model and its optimizer after epoch NNNN (a new name: nothing is replaced)
        metrics.csv                    rows 1..NNNN
        checkpoint/state.json          COMMIT: epoch, best, best_epoch, wait, stopped, the last and the best files
        checkpoint/last.keras, model.keras, checkpoint/best.json   published from the committed state
        other checkpoint/epoch-*.keras removed

    A process killed anywhere in between resumes from the commit record (:func:`recover_run`): the rows of
    metrics.csv after it are dropped, the published files are made again from the files it names, stray files are
    deleted. Keras' own callbacks cannot give this: ``BackupAndRestore`` writes its weights and its epoch counter as
    two files with no commit between them and keeps none of our state (best, wait, the selected model);
    ``ModelCheckpoint`` writes ``model.keras`` in place and forgets its best value across processes; ``CSVLogger``
    appends rows that nothing rolls back; ``EarlyStopping`` restarts its patience count at every ``fit``.

    Parameters
    ----------
    params : dict
    run_dir : str
    history : list of dict
        Rows of metrics.csv so far (appended to).
    state : dict
        The committed state (:func:`recover_run`; updated at each commit).
    interrupt : dict
        ``{'flag': bool}``: stop after the current batch.
    """

    def __init__(self, *, params: dict[str, Any], run_dir: str, history: list[dict[str, float]],
                 state: dict[str, Any], interrupt: dict[str, bool]):
        super().__init__()
        self.run_params, self.run_dir = params, run_dir
        self.history, self.state, self.interrupt = history, state, interrupt
        self.epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if batch == 0:
            kill_point('batch', self.epoch)
        if self.interrupt['flag']:
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.interrupt['flag']:
            return
        params, run_dir = self.run_params, self.run_dir
        e = epoch + 1
        metric = params['early_stop_metric']
        row = {'epoch': e, **{k: float(v) for k, v in logs.items()}}
        value = row[f'val/{metric}']
        old = self.state
        improved = bool(np.isfinite(value) and value < old['best'])
        wait = 0 if improved else old['wait'] + 1
        stop = not improved and wait >= params['patience']
        state = dict(epoch=e, best=value if improved else old['best'], best_epoch=e if improved else old['best_epoch'],
                     wait=wait, stopped=stop, last=epoch_file(e),
                     best_model=epoch_file(e) if improved else old.get('best_model'))
        checkpoint = os.path.join(run_dir, 'checkpoint')
        with _writing(os.path.join(checkpoint, epoch_file(e))) as path:
            keras_model.save_model(self.model, path)
        kill_point('model_saved', e)
        with _writing(os.path.join(run_dir, 'metrics.csv')) as path:
            write_metrics_csv(path, self.history + [row])
        kill_point('metrics_written', e)
        with _writing(os.path.join(checkpoint, 'state.json')) as path:
            utils.write_json(path, state)  # the commit
        kill_point('committed', e)
        self.history.append(row)
        self.state.clear()
        self.state.update(state)
        publish(run_dir, state, self.history)
        with _writing(os.path.join(run_dir, 'training_curves.png')) as path:
            plot_training_curves(path, self.history, definition=metric.split('/')[0])
        print(epoch_line(row, params, state, improved), flush=True)
        if stop:
            print(f'early stopping: no improvement of {metric} in {state["wait"]} epochs')
            self.model.stop_training = True


@contextlib.contextmanager
def _writing(path: str) -> Iterator[str]:
    """Yield ``path``; an OSError while writing it (a full disk, a read-only folder) becomes a one-line
    :class:`SELDError` naming it. The writes are atomic: the last committed epoch stays whole, and a rerun resumes
    from it."""
    with utils.writing(path, hint='; the last finished epoch is kept: free some space, then re-run to resume'):
        yield path


def _same_file(a: str, b: str) -> bool:
    """``b`` exists with the bytes of ``a``. (Published files are copies, not hard links: a file saved over
    ``model.keras`` in place must not change the checkpoint it came from.)"""
    return os.path.exists(b) and filecmp.cmp(a, b, shallow=False)


def publish(run_dir: str, state: dict[str, Any], history: list[dict[str, float]]) -> None:
    """Make the files published from a committed ``state`` agree with it: ``checkpoint/last.keras`` (the last
    epoch's model), ``model.keras`` and ``checkpoint/best.json`` (the selected epoch's model and row); remove the
    other ``checkpoint/epoch-*.keras``. Idempotent: it finishes the publication a killed process began."""
    checkpoint = os.path.join(run_dir, 'checkpoint')
    e = state['epoch']
    last = os.path.join(checkpoint, state['last'])
    if not _same_file(last, os.path.join(checkpoint, 'last.keras')):
        with _writing(os.path.join(checkpoint, 'last.keras')) as path:
            utils.copy_file(last, path)
    kill_point('published_last', e)
    if state['best_model']:
        best = os.path.join(checkpoint, state['best_model'])
        if not _same_file(best, os.path.join(run_dir, 'model.keras')):
            with _writing(os.path.join(run_dir, 'model.keras')) as path:
                utils.copy_file(best, path)
        kill_point('published_model', e)
        record = dict(epoch=state['best_epoch'], metrics=history[state['best_epoch'] - 1])
        best_json = os.path.join(checkpoint, 'best.json')
        if not os.path.exists(best_json) or utils.read_json(best_json) != record:
            with _writing(best_json):
                utils.write_json(best_json, record)
    keep = {state['last'], state['best_model']}
    for name in os.listdir(checkpoint):
        if EPOCH_FILE.match(name) and name not in keep:
            os.remove(os.path.join(checkpoint, name))
    kill_point('cleaned', e)


def _check_state(path: str, state: Any) -> dict[str, Any]:
    """A commit record read from ``path``, checked; :class:`SELDError` naming the file otherwise."""
    def bad(why: str) -> SELDError:
        return SELDError(f'{path}: {why}; restore the file or delete the run folder')

    if not isinstance(state, dict):
        raise bad(f'{type(state).__name__} is not a checkpoint state (a JSON object)')
    need = dict(epoch=int, best=(int, float), best_epoch=int, wait=int, last=str)
    for key, kind in need.items():
        if key not in state:
            raise bad(f'no {key!r}')
        if not isinstance(state[key], kind) or isinstance(state[key], bool):
            raise bad(f'{key}={state[key]!r} has the wrong type')
    e = state['epoch']
    if e < 1 or not 0 <= state['best_epoch'] <= e or not 0 <= state['wait'] <= e:
        raise bad(f'epoch={e}, best_epoch={state["best_epoch"]}, wait={state["wait"]} are not consistent')
    if state['last'] != epoch_file(e):
        raise bad(f'last={state["last"]!r} is not the file of epoch {e}')
    best_model = state.get('best_model')
    if best_model != (epoch_file(state['best_epoch']) if state['best_epoch'] else None):
        raise bad(f'best_model={best_model!r} is not the file of best_epoch {state["best_epoch"]}')
    return dict(state, stopped=bool(state.get('stopped', False)), best_model=best_model)


def recover_run(run_dir: str) -> tuple[dict[str, Any] | None, list[dict[str, float]]]:
    """Bring a run folder to its last commit (:class:`Checkpoint`) and return the committed state (None: no epoch
    was committed) and the rows of metrics.csv up to it. Rows after the commit are dropped; the published files are
    made again; files of uncommitted epochs and the temporary files of a killed process are removed.

    Run it only while holding the run folder's lock."""
    utils.remove_temporaries(run_dir)
    checkpoint = os.path.join(run_dir, 'checkpoint')
    state_file = os.path.join(checkpoint, 'state.json')
    metrics_file = os.path.join(run_dir, 'metrics.csv')
    if not os.path.exists(state_file):  # nothing committed: what is there is an unfinished first epoch's
        for name in (os.listdir(checkpoint) if os.path.isdir(checkpoint) else []):
            if EPOCH_FILE.match(name) or name in ('last.keras', 'best.json'):
                os.remove(os.path.join(checkpoint, name))
        for path in (metrics_file, os.path.join(run_dir, 'model.keras')):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
        return None, []
    state = _check_state(state_file, _migrate(run_dir, utils.read_json(state_file)))
    for key in ('last', 'best_model'):
        if state[key] and not os.path.exists(os.path.join(checkpoint, state[key])):
            raise SELDError(f'{os.path.join(checkpoint, state[key])}: missing, but {state_file} names it; delete the '
                            f'run folder to start again')
    rows = read_metrics_csv(metrics_file)
    e = state['epoch']
    if [r['epoch'] for r in rows[:e]] != list(range(1, e + 1)):
        raise SELDError(f'{metrics_file}: epochs {[r["epoch"] for r in rows]}, but {state_file} says {e} epochs '
                        f'finished; restore the file or delete the run folder')
    if len(rows) > e:  # an epoch after the commit: rolled back
        with _writing(metrics_file):
            write_metrics_csv(metrics_file, rows[:e])
    history = rows[:e]
    publish(run_dir, state, history)
    return state, history


def _migrate(run_dir: str, state: Any) -> Any:
    """The commit record of a run folder written by the earlier seld.py (``checkpoint/last.keras``, ``model.keras``
    and a state.json without ``last``), brought to the current layout; any other ``state`` as it is."""
    checkpoint = os.path.join(run_dir, 'checkpoint')
    last = os.path.join(checkpoint, 'last.keras')
    if not (isinstance(state, dict) and 'last' not in state and isinstance(state.get('epoch'), int)
            and isinstance(state.get('best_epoch'), int) and os.path.exists(last)):
        return state
    e, b = state['epoch'], state['best_epoch']
    with _writing(checkpoint):
        _copy_old_layout(run_dir, checkpoint, last, e, b)
    state = dict(state, last=epoch_file(e), best_model=epoch_file(b) if b else None)
    with _writing(os.path.join(checkpoint, 'state.json')) as path:
        utils.write_json(path, state)
    return state


def _copy_old_layout(run_dir: str, checkpoint: str, last: str, e: int, b: int) -> None:
    utils.copy_file(last, os.path.join(checkpoint, epoch_file(e)))
    if b and b != e:
        utils.copy_file(os.path.join(run_dir, 'model.keras'), os.path.join(checkpoint, epoch_file(b)))

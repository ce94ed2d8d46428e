"""Train SELDnet, select the model on the validation split, stop early, and score the test split once.

Usage::

    python seld.py [job-id] [task-id] [key=value ...]
    python seld.py 7 999 dataset_dir=/data/ansim feat_label_dir=/tmp/feat model_dir=/tmp/runs

Everything of a run goes in ``<model_dir>/<dataset>_ov<ov>_split<split>_<job-id>/`` (TUT-2018) or
``<model_dir>/<dataset>_<format>_split<split>_<job-id>/`` (DCASE):

    params.json          resolved parameters, feature description, the recordings of each part (train, val, test)
                         and library versions
    scaler.npz           the feature scaler (so the folder alone is enough for inference)
    model.keras          the selected model: best ``early_stop_metric`` on the validation split (plain Keras layers)
    metrics.csv          one row per epoch: training losses, validation losses and every validation metric
                         (``val/<definition>/<metric>``)
    training_curves.png  losses and the selecting definition's validation metrics per epoch
    figures/             spectrogram, SED and DOA (reference and prediction) of the first 3 test files, selected model
    logs/                TensorBoard logs (TensorFlow backend)
    results.json         the selected epoch; its ``validation`` metrics; the ``test`` metrics of the selected model,
                         scored once after training (and ``test_unseen_doa`` with ``unseen_doa_dir``); each
                         definition's grid
    predictions/         the selected model's test predictions in the dataset's DCASE format and rate, with
                         ``format.json``: ``python evaluation_metrics.py --ref <metadata> --pred <run>/predictions``
                         reproduces ``test`` of results.json
    checkpoint/          the last epoch's model and state, to resume; ``best.json`` (the selected epoch's row)

Any Keras backend (``KERAS_BACKEND=tensorflow|jax|torch``); ``distribute`` and ``mixed_precision`` as in parameter.py.
Ctrl-C leaves the best model intact (every file is written to a temporary name, then renamed);
re-running the same job-id with the same parameters resumes after the last finished epoch.
"""
from __future__ import annotations

import contextlib
import csv
import importlib
import io
import os
import shutil
import signal
import sys
import threading
import time
from typing import Any, Iterator

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import keras  # noqa: E402
import numpy as np  # noqa: E402

import cpu_kernels  # noqa: E402
import evaluation_metrics  # noqa: E402
import formats  # noqa: E402
import keras_model  # noqa: E402
import parameter  # noqa: E402
import utils  # noqa: E402
from plots import plot_seld_output, plot_training_curves  # noqa: E402
from utils import SELDError  # noqa: E402

USAGE = 'python seld.py [job-id] [task-id] [key=value ...]'
# Parameters that may change when a run is resumed (they do not change what is being trained).
RESUMABLE_CHANGES = {'nb_epochs', 'patience', 'n_jobs', 'nb_shards', 'shard_index', 'stage'}


def run_dir_for(params: dict[str, Any], job_id: str) -> str:
    """``<model_dir>/<dataset>_ov<ov>_split<split>_<job-id>`` (TUT-2018) or ``<dataset>_<format>_split<split>_<job-id>``."""
    import datasets

    if params['dataset'] in datasets.TUT_DATASETS:
        name = f'{params["dataset"]}_ov{params["overlap"]}_split{params["split"]}_{job_id}'
    else:
        name = f'{params["dataset"]}_{params["format"]}_split{params["split"]}_{job_id}'
    return os.path.join(params['model_dir'], name)


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
    if not os.path.exists(path):
        return []
    with open(path, newline='') as f:
        return [{k: (int(v) if k == 'epoch' else float(v)) for k, v in r.items()} for r in csv.DictReader(f)]


def scoring_info(fc: Any, params: dict[str, Any]) -> dict[str, Any]:
    """What the prediction files of a run are and how they are scored: the contents of ``predictions/format.json``
    (without ``files``), from which :meth:`evaluation_metrics.SELDScorer.from_format` builds the scorer of both
    seld.py and the scoring command.

    Predictions are written in the dataset's output format at its prediction rate: the model frame rate for TUT-2018
    (``frame,class,azi,ele`` at 172.27 frames/s) and DCASE 2019 data (50 frames/s), the 100 ms label rate for DCASE
    2020+ data (``frame,class,track,azi,ele``; model frames converted by ``formats.resample_matrices``, majority).
    """
    spec = fc.dataset.spec
    return dict(format=spec.output_format,
                frame_rate=fc.frame_rate if spec.label_rate is None else spec.label_rate,
                classes=list(fc.classes), dataset=spec.name, model_frame_rate=fc.frame_rate,
                reference=dict(format=spec.meta_format, naming=fc.dataset.naming, frame_rate=spec.label_rate),
                metrics=list(evaluation_metrics.DEFAULT_DEFINITIONS), doa_threshold=20.0, segment_len_s=1.0,
                sed_threshold=params['sed_threshold'])


def evaluate_split(model: Any, gen: Any, params: dict[str, Any]) -> tuple[dict[str, Any], list, dict[str, Any]]:
    """Predict every recording of ``gen`` (an unshuffled DataGenerator) and score it.

    Returns
    -------
    scores : dict
        ``loss``, ``sed_loss``, ``doa_loss`` (Keras' losses of the compiled model, over the real frames) and
        ``{definition: {metric: value}}`` of :func:`scoring_info`'s scorer.
    predictions : list of dict
        Per recording: ``stem``; ``sed``, ``doa`` thresholded at the prediction rate, as written to
        ``predictions/``; ``nb_frames`` and ``duration_s`` there; ``sed_prob``, ``model_doa`` the model's output at
        its frame rate.
    info : dict
        :func:`scoring_info`.
    """
    fc = gen.fc
    info = scoring_info(fc, params)
    scorer = evaluation_metrics.SELDScorer.from_format(info)
    outputs = gen.split_predictions(model.predict(gen, verbose=0))
    labels = gen.get_labels()
    references = gen.references()
    predictions = []
    for (stem, sed_prob, doa), (_, ref_sed, ref_doa) in zip(outputs, labels):
        outputs_doa = doa
        file_info, ref = references[stem]
        n = len(sed_prob)
        duration = file_info['duration_s'] if n == file_info['nb_frames'] else n / fc.frame_rate  # quick test
        sed = (sed_prob > params['sed_threshold']).astype(np.float32)
        if info['frame_rate'] != fc.frame_rate:  # DCASE 2020+: the model's 20 ms frames to 100 ms label frames
            n = formats.nb_frames_at(duration, frame_rate=info['frame_rate'])
            sed, doa = formats.resample_matrices(sed, doa, frame_rate=fc.frame_rate, out_frame_rate=info['frame_rate'],
                                                 rule='majority', nb_frames_out=n)
        scorer.add(stem, _cut(ref, duration, fc.label_rate), sed, doa, duration_s=duration, nb_frames=n)
        predictions.append(dict(stem=stem, sed=sed, doa=doa, nb_frames=n, duration_s=duration, sed_prob=sed_prob,
                                model_doa=outputs_doa))
    w = params['loss_weights']
    sed_true, sed_pred = np.concatenate([x[1] for x in labels]), np.concatenate([x[1] for x in outputs])
    doa_true, doa_pred = np.concatenate([x[2] for x in labels]), np.concatenate([x[2] for x in outputs])
    sed_loss = float(keras.losses.BinaryCrossentropy()(sed_true, sed_pred))
    doa_loss = float(keras.losses.MeanSquaredError()(doa_true, doa_pred))
    scores = dict(loss=w[0] * sed_loss + w[1] * doa_loss, sed_loss=sed_loss, doa_loss=doa_loss, **scorer.results())
    return scores, predictions, info


def _cut(ref: Any, duration_s: float, label_rate: float | None) -> Any:
    """A reference cut to its first ``duration_s`` seconds (the quick test scores the first frames only)."""
    if isinstance(ref, formats.Events):
        keep = ref.start < duration_s
        return formats.Events(*(np.asarray(v)[keep] for v in ref[:-1]), [n for n, k in zip(ref.names, keep) if k])
    keep = ref.frame < formats.nb_frames_at(duration_s, frame_rate=label_rate)
    return formats.Instances(*(None if v is None else np.asarray(v)[keep] for v in ref))


def flat_scores(scores: dict[str, Any], prefix: str) -> dict[str, float]:
    """``{'seld2018': {'f_score': x}, 'loss': y}`` -> ``{prefix + 'seld2018/f_score': x, prefix + 'loss': y}``."""
    out = {}
    for key, value in scores.items():
        if isinstance(value, dict):
            out.update({f'{prefix}{key}/{k}': float(v) for k, v in value.items()})
        else:
            out[prefix + key] = float(value)
    return out


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


class Evaluate(keras.callbacks.Callback):
    """Predict the whole validation split after each epoch and add its losses and metrics to ``logs``
    (``val/loss``, ``val/<definition>/<metric>``; :func:`evaluate_split`).

    Parameters
    ----------
    params : dict
        Resolved parameters (``sed_threshold``, ``loss_weights``, ``early_stop_metric``).
    val_gen : cls_data_generator.DataGenerator
        The unshuffled validation generator (the test generator with ``select_on_test``).
    interrupt : dict
        ``{'flag': bool}``, set by the Ctrl-C handler: a partial epoch is not evaluated.
    """

    def __init__(self, *, params: dict[str, Any], val_gen: Any, interrupt: dict[str, bool]):
        super().__init__()
        self.run_params, self.val_gen, self.interrupt = params, val_gen, interrupt

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.t0 = time.time()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.interrupt['flag']:  # a partial epoch is neither evaluated nor checkpointed
            return
        logs.update(flat_scores(evaluate_split(self.model, self.val_gen, self.run_params)[0], 'val/'))
        metric = self.run_params['early_stop_metric']
        if f'val/{metric}' not in logs:
            names = sorted(k[len('val/'):] for k in logs if k.startswith('val/'))
            raise SELDError(f'early_stop_metric={metric!r}: not one of the validation metrics {names}')
        logs['learning_rate'] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        logs['epoch_time_s'] = time.time() - self.t0


class Checkpoint(keras.callbacks.Callback):
    """Keep the model with the best validation metric; log, plot, save the resume state, stop early.

    Parameters
    ----------
    params : dict
    run_dir : str
    history : list of dict
        Rows of metrics.csv so far (appended to).
    state : dict
        Resume state (``epoch``, ``best``, ``best_epoch``, ``wait``; updated and saved).
    interrupt : dict
        ``{'flag': bool}``: stop after the current batch.
    """

    def __init__(self, *, params: dict[str, Any], run_dir: str, history: list[dict[str, float]],
                 state: dict[str, Any], interrupt: dict[str, bool]):
        super().__init__()
        self.run_params, self.run_dir = params, run_dir
        self.history, self.state, self.interrupt = history, state, interrupt

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.interrupt['flag']:
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.interrupt['flag']:
            return
        params, run_dir, state = self.run_params, self.run_dir, self.state
        metric = params['early_stop_metric']
        row = {'epoch': epoch + 1, **{k: float(v) for k, v in logs.items()}}
        self.history.append(row)
        value = row[f'val/{metric}']
        improved = np.isfinite(value) and value < state['best']
        if improved:
            state.update(best=value, best_epoch=epoch + 1, wait=0)
            keras_model.save_model(self.model, os.path.join(run_dir, 'model.keras'))
            utils.write_json(os.path.join(run_dir, 'checkpoint', 'best.json'), dict(epoch=epoch + 1, metrics=row))
        else:
            state['wait'] += 1
        state['epoch'] = epoch + 1
        write_metrics_csv(os.path.join(run_dir, 'metrics.csv'), self.history)
        plot_training_curves(os.path.join(run_dir, 'training_curves.png'), self.history,
                             definition=metric.split('/')[0])
        keras_model.save_model(self.model, os.path.join(run_dir, 'checkpoint', 'last.keras'))
        print(epoch_line(row, params, state, improved), flush=True)
        if not improved and state['wait'] >= params['patience']:
            print(f'early stopping: no improvement of {metric} in {state["wait"]} epochs')
            state['stopped'] = True
            self.model.stop_training = True
        utils.write_json(os.path.join(run_dir, 'checkpoint', 'state.json'), state)


class Progress(keras.callbacks.Callback):
    """A tqdm bar over the training batches of each epoch (Keras' own would print every metric)."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        from tqdm import tqdm
        self.bar = tqdm(total=self.params.get('steps'), desc=f'epoch {epoch + 1}', unit='batch', leave=False)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.bar.update()
        self.bar.set_postfix(loss=f'{float((logs or {}).get("loss", np.nan)):.4f}')

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.bar.close()


def make_callbacks(*, params: dict[str, Any], run_dir: str, val_gen: Any, history: list[dict[str, float]],
                   state: dict[str, Any], interrupt: dict[str, bool] | None = None) -> list[keras.callbacks.Callback]:
    """Callbacks: progress bar, per-epoch validation, selected-model checkpoint with epoch log, resume state and
    early stopping, and (TensorFlow backend) TensorBoard logs."""
    interrupt = interrupt if interrupt is not None else {'flag': False}
    callbacks = [Progress(), Evaluate(params=params, val_gen=val_gen, interrupt=interrupt),
                 Checkpoint(params=params, run_dir=run_dir, history=history, state=state, interrupt=interrupt)]
    if keras.backend.backend() == 'tensorflow':  # Keras' TensorBoard writer is TensorFlow's tf.summary
        callbacks.append(keras.callbacks.TensorBoard(log_dir=os.path.join(run_dir, 'logs'), write_graph=False,
                                                     update_freq='epoch'))
    return callbacks


def get_strategy(name: str) -> Any:
    """The tf.distribute strategy of ``distribute=mirrored|multiworker`` (TensorFlow backend only)."""
    import tensorflow as tf

    if name == 'mirrored':
        return tf.distribute.MirroredStrategy()
    if name == 'multiworker':
        if 'TF_CONFIG' not in os.environ:
            raise SELDError('distribute=multiworker needs the TF_CONFIG environment variable (cluster and task)')
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise SELDError(f'distribute={name!r}: not a tf.distribute strategy (mirrored, multiworker)')


@contextlib.contextmanager
def distribution(name: str, *, batch_size: int) -> Iterator[int]:
    """Run the block under the ``distribute`` parameter's scheme; yields the number of replicas.

    ``none``: one device. ``mirrored`` / ``multiworker`` (TensorFlow backend): a ``tf.distribute`` strategy's
    scope. ``dataparallel`` (JAX backend): ``keras.distribution.DataParallel`` over every local device, each batch
    split along its first axis. Each batch of ``batch_size`` sequences is split between the replicas.
    """
    backend = keras.backend.backend()
    if name == 'none':
        yield 1
        return
    if name in ('mirrored', 'multiworker'):
        if backend != 'tensorflow':
            raise SELDError(f'distribute={name}: a tf.distribute strategy needs KERAS_BACKEND=tensorflow (this is '
                            f'{backend}; with JAX use distribute=dataparallel)')
        strategy = get_strategy(name)
        scope, nb = strategy.scope(), strategy.num_replicas_in_sync
    else:  # dataparallel (parameter.py checks the names)
        if backend != 'jax':
            raise SELDError(f'distribute=dataparallel: keras.distribution needs KERAS_BACKEND=jax (this is {backend}; '
                            f'with TensorFlow use distribute=mirrored)')
        devices = keras.distribution.list_devices()
        scope, nb = keras.distribution.DataParallel(devices=devices).scope(), len(devices)
    if batch_size % nb:
        raise SELDError(f'batch_size={batch_size}: must be a multiple of the {nb} replicas of distribute={name}')
    with scope:
        yield nb


def backend_versions() -> dict[str, str]:
    """Versions of Python, numpy, Keras and the library of the Keras backend (``tensorflow``, ``jax`` or ``torch``:
    already imported by Keras; no other backend is imported)."""
    backend = keras.backend.backend()
    return {'python': sys.version.split()[0], 'numpy': np.__version__, 'keras': keras.__version__,
            'backend': backend, backend: importlib.import_module(backend).__version__}


def train(params: dict[str, Any], job_id: str) -> dict[str, Any]:
    """Train and evaluate one job; returns the contents of results.json."""
    from cls_data_generator import DataGenerator
    from cls_feature_class import FeatureClass

    fc = FeatureClass(params)
    if not os.path.exists(fc.scaler_file):
        raise SELDError(f'{fc.feat_label_dir}: no features for these parameters; run '
                        f'`python batch_feature_extraction.py {params["task_id"]}` (with the same key=value '
                        f'overrides) first')
    run_dir = run_dir_for(params, job_id)
    os.makedirs(run_dir, exist_ok=True)
    record = dict(params=params, job_id=job_id, features=fc.feature_info(), data=fc.dataset.describe(),
                  versions=backend_versions())
    params_file = os.path.join(run_dir, 'params.json')
    if os.path.exists(params_file):
        old = utils.read_json(params_file)
        resumable = RESUMABLE_CHANGES - ({'nb_epochs'} if params['lr_schedule'] != 'constant' else set())
        changed = sorted(k for k in set(old.get('params', {})) | set(params)
                         if k not in resumable and old.get('params', {}).get(k) != params.get(k))
        if changed:
            why = ('; nb_epochs is the horizon of its learning-rate schedule (lr_schedule='
                   f'{params["lr_schedule"]})') if 'nb_epochs' in changed and 'nb_epochs' not in resumable else ''
            raise SELDError(f'{run_dir}: already holds a run of job-id {job_id!r} with other parameters '
                            f'({", ".join(changed)}){why}; use another job-id or delete the folder')
    utils.write_json(params_file, record)
    shutil.copyfile(fc.scaler_file, os.path.join(run_dir, '.scaler.npz.tmp'))
    os.replace(os.path.join(run_dir, '.scaler.npz.tmp'), os.path.join(run_dir, 'scaler.npz'))

    utils.set_seeds(params['seed'])
    quick = params['quick_test']
    train_gen = DataGenerator(params, split='train', feat_class=fc, max_batches=2 if quick else None)
    val_gen = DataGenerator(params, split='val', feat_class=fc, max_batches=2 if quick else None)
    test_gen = DataGenerator(params, split='test', feat_class=fc, max_batches=2 if quick else None)
    print(f'run {run_dir}: {len(train_gen.stems)} train files ({len(train_gen)} batches), {len(val_gen.stems)} '
          f'validation files' + (' (= the TEST files: select_on_test=true)' if params['select_on_test'] else '')
          + f', {len(test_gen.stems)} test files, {fc.nb_classes} classes, input {train_gen.get_data_sizes()[0]}')

    with keras_model.precision(params['mixed_precision']), \
            distribution(params['distribute'], batch_size=params['batch_size']) as nb_replicas:
        if nb_replicas > 1:
            print(f'distribute={params["distribute"]}: {nb_replicas} replicas; each batch of '
                  f'{params["batch_size"]} sequences is split between them')
        # Under tf.distribute each replica normalizes its share of the batch unless BatchNorm is synchronized; JAX's
        # DataParallel computes the statistics over the whole (sharded) batch by itself.
        sync = nb_replicas > 1 and params['distribute'] in ('mirrored', 'multiworker')
        model, state, history = _build_or_resume(params, run_dir, fc, steps_per_epoch=len(train_gen),
                                                 sync_batchnorm=sync)
        if state.get('stopped') and state['wait'] < params['patience']:  # resumed with more patience
            state['stopped'] = False
        if state['epoch'] >= params['nb_epochs'] or state.get('stopped'):
            print(f'{run_dir}: finished already (epoch {state["epoch"]}); nothing to train')
        else:
            _fit(model, params=params, run_dir=run_dir, train_gen=train_gen, val_gen=val_gen, history=history,
                 state=state)
    return evaluate_test(params, run_dir, test_gen, unseen_gen=_unseen_doa_generator(params, fc))




def _fit(model: keras.Model, *, params: dict[str, Any], run_dir: str, train_gen: Any, val_gen: Any,
         history: list[dict[str, float]], state: dict[str, Any]) -> None:
    """``model.fit`` from the epoch after ``state['epoch']``; the first Ctrl-C stops after the current batch."""
    interrupt = {'flag': False}
    callbacks = make_callbacks(params=params, run_dir=run_dir, val_gen=val_gen, history=history, state=state,
                               interrupt=interrupt)

    def on_sigint(signum: int, frame: Any) -> None:  # first Ctrl-C: stop cleanly after the current batch
        interrupt['flag'] = True
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C interrupts at once
        print('\ninterrupted: stopping after this batch; the best model and the last finished epoch are kept '
              '(re-run the same command to resume)', file=sys.stderr, flush=True)

    main_thread = threading.current_thread() is threading.main_thread()  # signals only work there
    previous = signal.signal(signal.SIGINT, on_sigint) if main_thread else None
    try:
        model.fit(train_gen, epochs=params['nb_epochs'], initial_epoch=state['epoch'], callbacks=callbacks, verbose=0)
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)
    if interrupt['flag']:
        raise KeyboardInterrupt


def _unseen_doa_generator(params: dict[str, Any], fc: Any) -> Any:
    """The generator of the unseen-DOA test set (``unseen_doa_dir``), or None."""
    from cls_data_generator import DataGenerator
    from cls_feature_class import FeatureClass

    if not params.get('unseen_doa_dir'):
        return None
    fu = FeatureClass(params, unseen_doa=True)
    return DataGenerator(params, split='test', feat_class=fu, max_batches=2 if params['quick_test'] else None)


def evaluate_test(params: dict[str, Any], run_dir: str, test_gen: Any, *, unseen_gen: Any = None) -> dict[str, Any]:
    """Score the selected model on the test split, once: predictions/, figures/ and results.json (with the
    unseen-DOA test set of ``unseen_gen``, if any, in ``test_unseen_doa``)."""
    from cls_feature_class import load_scaler

    fc = test_gen.fc
    best_file = os.path.join(run_dir, 'checkpoint', 'best.json')
    if not os.path.exists(best_file):
        raise SELDError(f'{run_dir}: no finished epoch yet; nothing to evaluate')
    best = utils.read_json(best_file)
    model = keras_model.load_model(os.path.join(run_dir, 'model.keras'))
    scores, predictions, info = evaluate_split(model, test_gen, params)
    pred_dir = os.path.join(run_dir, 'predictions')
    if os.path.isdir(pred_dir):  # predictions of an earlier evaluation of this run: replaced whole
        shutil.rmtree(pred_dir)
    for p in predictions:
        formats.write_csv(os.path.join(pred_dir, p['stem'] + '.csv'), p['sed'], p['doa'], fmt=info['format'],
                          frame_rate=info['frame_rate'])
    files = {p['stem']: dict(nb_frames=p['nb_frames'], duration_s=p['duration_s']) for p in predictions}
    formats.write_format_file(pred_dir, fmt=info['format'], files=files,
                              **{k: v for k, v in info.items() if k != 'format'})
    mean, scale = load_scaler(fc.scaler_file)
    for (stem, ref_sed, ref_doa), p in list(zip(test_gen.get_labels(), predictions))[:3]:
        # magnitude map of channel 0, un-standardized (the features are stored normalized only)
        spec = np.load(fc.paths(stem)['feat'], mmap_mode='r')[:len(ref_sed), :, 0] * scale[:, 0] + mean[:, 0]
        plot_seld_output(os.path.join(run_dir, 'figures', stem + '.png'), spec=spec, classes=fc.classes,
                         frame_rate=fc.frame_rate, fs=fc.fs, ref_sed=ref_sed, ref_doa=ref_doa,
                         pred_sed=p['sed_prob'] > params['sed_threshold'], pred_doa=p['model_doa'],
                         title=f'{stem}: selected model (epoch {best["epoch"]})')
    metric = params['early_stop_metric']
    validation = {k[len('val/'):]: v for k, v in best['metrics'].items() if k.startswith('val/')}
    results = dict(best_epoch=best['epoch'], early_stop_metric=metric, select_on_test=params['select_on_test'],
                   validation=_nest(validation), test=scores, nb_test_files=len(predictions),
                   prediction_format=info['format'], prediction_frame_rate=info['frame_rate'],
                   model_frame_rate=fc.frame_rate, grids=evaluation_metrics.SELDScorer.from_format(info).grids())
    if unseen_gen is not None:
        unseen, _, _ = evaluate_split(model, unseen_gen, params)
        results['test_unseen_doa'] = dict(unseen, dataset_dir=params['unseen_doa_dir'],
                                          nb_files=len(unseen_gen.stems))
    if params['select_on_test']:
        results['warning'] = ('select_on_test=true: the model was selected on the test split, so the "test" '
                              'numbers are NOT test scores')
    utils.write_json(os.path.join(run_dir, 'results.json'), results)
    name = metric.split('/')[0]
    m = scores[name]
    print(f'selected epoch {best["epoch"]} ({metric} {best["metrics"]["val/" + metric]:.4f} on '
          f'{"the TEST split" if params["select_on_test"] else "validation"}); test {name}: '
          + ' '.join(f'{k} {v:.4f}' for k, v in m.items()) + f' -> {run_dir}')
    if unseen_gen is not None:
        print(f'unseen-DOA test {name}: ' + ' '.join(f'{k} {v:.4f}' for k, v in results['test_unseen_doa'][name].items()))
    return results


def _nest(flat: dict[str, float]) -> dict[str, Any]:
    """``{'seld2018/f_score': x, 'loss': y}`` -> ``{'seld2018': {'f_score': x}, 'loss': y}``."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        name, _, metric = key.partition('/')
        if metric:
            out.setdefault(name, {})[metric] = value
        else:
            out[name] = value
    return out


def _build_or_resume(params: dict[str, Any], run_dir: str, fc: Any, *, steps_per_epoch: int,
                     sync_batchnorm: bool = False) -> tuple[keras.Model, dict[str, Any], list]:
    """A new model, or the last checkpoint of this run with its state and history (and its optimizer: the learning
    rate schedule resumes at the checkpoint's step)."""
    state: dict[str, Any] = dict(epoch=0, best=float('inf'), best_epoch=0, wait=0)
    history: list[dict[str, float]] = []
    state_file = os.path.join(run_dir, 'checkpoint', 'state.json')
    last_model = os.path.join(run_dir, 'checkpoint', 'last.keras')
    if os.path.exists(state_file) and os.path.exists(last_model):
        state = utils.read_json(state_file)
        history = [r for r in read_metrics_csv(os.path.join(run_dir, 'metrics.csv')) if r['epoch'] <= state['epoch']]
        model = keras_model.load_model(last_model)
        # The checkpoint's compile settings hold the jit_compile that Keras resolved where it was saved (False on a
        # TensorFlow CPU, which on JAX would mean running eagerly): compile again for this backend, keeping the
        # optimizer and its state.
        keras_model.compile_model(model, optimizer=model.optimizer, loss_weights=params['loss_weights'],
                                  jit_compile=params['jit_compile'])
        print(f'resuming after epoch {state["epoch"]} (best {params["early_stop_metric"]} {state["best"]:.4f} at '
              f'epoch {state["best_epoch"]})')
    else:
        model = keras_model.get_model(
            nb_frames=params['sequence_length'], nb_bins=fc.framing.nb_bins, nb_channels=fc.nb_channels,
            nb_classes=fc.nb_classes, azi_only=params['azi_only'], dropout_rate=params['dropout_rate'],
            nb_cnn2d_filt=params['nb_cnn2d_filt'], pool_size=params['pool_size'], rnn_size=params['rnn_size'],
            fnn_size=params['fnn_size'], gru_type=params['gru_type'], bn_momentum=params['bn_momentum'],
            sync_batchnorm=sync_batchnorm,
            mixed_precision=params['mixed_precision'], loss_weights=params['loss_weights'],
            learning_rate=keras_model.learning_rate(
                params['lr_schedule'], peak=params['learning_rate'], total_steps=params['nb_epochs'] * steps_per_epoch,
                warmup_steps=round(params['lr_warmup_epochs'] * steps_per_epoch)),
            jit_compile=params['jit_compile'])
    nb = cpu_kernels.use_fused_batchnorm(model, enable=params['fused_batchnorm'])
    if nb:
        print(f'fused_batchnorm: {nb} BatchNormalization layers train with TensorFlow\'s fused CPU kernel (cpu_kernels.py)')
    return model, state, history


def main(argv: list[str]) -> int:
    values, overrides = parameter.parse_cli(argv, ('job_id', 'task_id'), USAGE)
    params = parameter.get_params(values['task_id'], overrides)
    train(params, values['job_id'])
    return 0


if __name__ == '__main__':
    utils.run_cli(main)

"""Train SELDnet, evaluate it after every epoch, keep the best model, stop early on the SELD score.

Usage::

    python seld.py [job-id] [task-id] [key=value ...]
    python seld.py 7 999 dataset_dir=/data/ansim feat_label_dir=/tmp/feat model_dir=/tmp/runs

Everything of a run goes in ``<model_dir>/<dataset>_ov<ov>_split<split>_<job-id>/``:

    params.json          resolved parameters, feature description and library versions
    scaler.npz           the feature scaler (so the folder alone is enough for inference)
    model.keras          the best model so far (by ``early_stop_metric``)
    metrics.csv          one row per epoch: losses and all metrics
    training_curves.png  losses and metrics per epoch
    figures/             spectrogram, SED and DOA (reference and prediction) of the first 3 test files, best model
    logs/                TensorBoard logs (TensorFlow backend)
    results.json         best epoch and its metrics, with named keys
    predictions/         per-test-file CSVs (frame,class,azi,ele at the model frame rate) of the best model
    checkpoint/          the last epoch's model and state, to resume

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

import evaluation_metrics  # noqa: E402
import keras_model  # noqa: E402
import parameter  # noqa: E402
import utils  # noqa: E402
from plots import plot_seld_output, plot_training_curves  # noqa: E402
from utils import SELDError  # noqa: E402

USAGE = 'python seld.py [job-id] [task-id] [key=value ...]'
# Parameters that may change when a run is resumed (they do not change what is being trained).
RESUMABLE_CHANGES = {'nb_epochs', 'patience', 'n_jobs', 'nb_shards', 'shard_index', 'stage', 'direct_io'}


def run_dir_for(params: dict[str, Any], job_id: str) -> str:
    return os.path.join(params['model_dir'], f'{params["dataset"]}_ov{params["overlap"]}_split{params["split"]}_{job_id}')


def masked_losses(ref_sed: np.ndarray, ref_doa: np.ndarray, sed: np.ndarray, doa: np.ndarray,
                  loss_weights: list[float]) -> dict[str, float]:
    """Validation losses over the real (unpadded) frames: binary cross-entropy, MSE and their weighted sum."""
    p = np.clip(sed, 1e-7, 1 - 1e-7)
    bce = float(np.mean(-(ref_sed * np.log(p) + (1 - ref_sed) * np.log(1 - p))))
    mse = float(np.mean((doa - ref_doa) ** 2))
    return dict(val_loss=loss_weights[0] * bce + loss_weights[1] * mse, val_sed_loss=bce, val_doa_loss=mse)


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


class Evaluate(keras.callbacks.Callback):
    """Predict the whole test split after each epoch and add every metric to ``logs``.

    Parameters
    ----------
    params : dict
        Resolved parameters (``sed_threshold``, ``loss_weights``, ``early_stop_metric``).
    test_gen : cls_data_generator.DataGenerator
        The unshuffled test generator.
    interrupt : dict
        ``{'flag': bool}``, set by the Ctrl-C handler: a partial epoch is not evaluated.
    """

    def __init__(self, *, params: dict[str, Any], test_gen: Any, interrupt: dict[str, bool]):
        super().__init__()
        self.run_params, self.test_gen, self.interrupt = params, test_gen, interrupt
        self.refs = test_gen.get_labels()
        self.predictions: list[tuple[str, np.ndarray, np.ndarray]] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.t0 = time.time()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.interrupt['flag']:  # a partial epoch is neither evaluated nor checkpointed
            return
        params, fc = self.run_params, self.test_gen.fc
        pred = self.model.predict(self.test_gen, verbose=0)
        self.predictions = self.test_gen.split_predictions(pred)
        m = evaluation_metrics.SELDMetrics(nb_classes=fc.nb_classes, frame_rate=fc.frame_rate)
        ref_sed_all, ref_doa_all, sed_all, doa_all = [], [], [], []
        for (stem, ref_sed, ref_doa), (_, sed_prob, doa) in zip(self.refs, self.predictions):
            m.evaluate(ref_sed, ref_doa, (sed_prob > params['sed_threshold']).astype(np.float32), doa)
            ref_sed_all.append(ref_sed), ref_doa_all.append(ref_doa)
            sed_all.append(sed_prob), doa_all.append(doa)
        res = m.results()
        logs.update(masked_losses(np.concatenate(ref_sed_all), np.concatenate(ref_doa_all),
                                  np.concatenate(sed_all), np.concatenate(doa_all), params['loss_weights']))
        logs.update(res['seld2018'])
        for name, values in res.items():
            if name != 'seld2018':
                logs.update({f'{name}/{k}': v for k, v in values.items()})
        metric = params['early_stop_metric']
        if metric not in logs:
            raise SELDError(f'early_stop_metric={metric!r}: not one of the metrics {sorted(logs)}')
        logs['epoch_time_s'] = time.time() - self.t0


class Checkpoint(keras.callbacks.Callback):
    """Keep the best model, its test predictions and results.json; log, plot, save resume state.

    Parameters
    ----------
    params : dict
    run_dir : str
    evaluate : Evaluate
        The callback whose metrics (in ``logs``) and predictions this one keeps; it must run first.
    history : list of dict
        Rows of metrics.csv so far (appended to).
    state : dict
        Resume state (``epoch``, ``best``, ``best_epoch``, ``wait``; updated and saved).
    interrupt : dict
        ``{'flag': bool}``: stop after the current batch.
    """

    def __init__(self, *, params: dict[str, Any], run_dir: str, evaluate: Evaluate, history: list[dict[str, float]],
                 state: dict[str, Any], interrupt: dict[str, bool]):
        from cls_feature_class import load_scaler

        super().__init__()
        self.run_params, self.run_dir, self.evaluate = params, run_dir, evaluate
        self.history, self.state, self.interrupt = history, state, interrupt
        # (mean, scale): to draw the spectrogram of the best model's figures
        self.scaler = load_scaler(evaluate.test_gen.fc.scaler_file)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.interrupt['flag']:
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.interrupt['flag']:
            return
        params, run_dir, state, scaler = self.run_params, self.run_dir, self.state, self.scaler
        fc, refs, metric = self.evaluate.test_gen.fc, self.evaluate.refs, params['early_stop_metric']
        row = {'epoch': epoch + 1, **{k: float(v) for k, v in logs.items()}}
        self.history.append(row)
        value = row[metric]
        improved = np.isfinite(value) and value < state['best']
        if improved:
            state.update(best=value, best_epoch=epoch + 1, wait=0)
            keras_model.save_model(self.model, os.path.join(run_dir, 'model.keras'))
            pred_dir = os.path.join(run_dir, 'predictions')
            for (stem, sed_prob, doa) in self.evaluate.predictions:
                evaluation_metrics.write_csv(os.path.join(pred_dir, stem + '.csv'),
                                             (sed_prob > params['sed_threshold']).astype(np.float32), doa,
                                             fmt='dcase2019', frame_rate=fc.frame_rate)
            for (stem, ref_sed, ref_doa), (_, sed_prob, doa) in list(zip(refs, self.evaluate.predictions))[:3]:
                # magnitude map of channel 0, un-standardized (the features are stored normalized only)
                spec = np.load(os.path.join(fc.feat_dir_norm, stem + '.npy'), mmap_mode='r')[:len(ref_sed), :, 0]
                spec = spec * scaler[1][:, 0] + scaler[0][:, 0]
                plot_seld_output(os.path.join(run_dir, 'figures', stem + '.png'), spec=spec, classes=fc.classes,
                                 frame_rate=fc.frame_rate, fs=fc.fs, ref_sed=ref_sed, ref_doa=ref_doa,
                                 pred_sed=sed_prob > params['sed_threshold'], pred_doa=doa,
                                 title=f'{stem}: best model (epoch {epoch + 1})')
            utils.write_json(os.path.join(run_dir, 'results.json'),
                             dict(best_epoch=epoch + 1, early_stop_metric=metric, metrics=row,
                                  frame_rate=fc.frame_rate, nb_test_files=len(refs)))
        else:
            state['wait'] += 1
        state['epoch'] = epoch + 1
        write_metrics_csv(os.path.join(run_dir, 'metrics.csv'), self.history)
        plot_training_curves(os.path.join(run_dir, 'training_curves.png'), self.history)
        keras_model.save_model(self.model, os.path.join(run_dir, 'checkpoint', 'last.keras'))
        print(f'epoch {epoch + 1:4d}/{params["nb_epochs"]} {row["epoch_time_s"]:7.1f}s | '
              f'loss {row["loss"]:.4f} val {row["val_loss"]:.4f} | ER {row["error_rate"]:.3f} '
              f'F {row["f_score"]:.3f} DOA {row["doa_error"]:6.2f} deg FR {row["frame_recall"]:.3f} | '
              f'SELD {row["seld_score"]:.4f} | 2020: ER20 {row["dcase2020/error_rate"]:.3f} '
              f'F20 {row["dcase2020/f_score"]:.3f} LE {row["dcase2020/localization_error"]:6.2f} '
              f'LR {row["dcase2020/localization_recall"]:.3f} | best {metric} {state["best"]:.4f} @ {state["best_epoch"]}'
              + (' *' if improved else ''), flush=True)
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


def make_callbacks(*, params: dict[str, Any], run_dir: str, test_gen: Any, history: list[dict[str, float]],
                   state: dict[str, Any], interrupt: dict[str, bool] | None = None) -> list[keras.callbacks.Callback]:
    """Callbacks: progress bar, per-epoch evaluation, best-model checkpoint with epoch log, resume state and
    early stopping, and (TensorFlow backend) TensorBoard logs."""
    interrupt = interrupt if interrupt is not None else {'flag': False}
    evaluate = Evaluate(params=params, test_gen=test_gen, interrupt=interrupt)
    callbacks = [Progress(), evaluate, Checkpoint(params=params, run_dir=run_dir, evaluate=evaluate, history=history,
                                                  state=state, interrupt=interrupt)]
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
    record = dict(params=params, job_id=job_id, features=fc.feature_info(), versions=backend_versions())
    params_file = os.path.join(run_dir, 'params.json')
    if os.path.exists(params_file):
        old = utils.read_json(params_file)
        changed = sorted(k for k in set(old.get('params', {})) | set(params)
                         if k not in RESUMABLE_CHANGES and old.get('params', {}).get(k) != params.get(k))
        if changed:
            raise SELDError(f'{run_dir}: already holds a run of job-id {job_id!r} with other parameters '
                            f'({", ".join(changed)}); use another job-id or delete the folder')
    utils.write_json(params_file, record)
    shutil.copyfile(fc.scaler_file, os.path.join(run_dir, '.scaler.npz.tmp'))
    os.replace(os.path.join(run_dir, '.scaler.npz.tmp'), os.path.join(run_dir, 'scaler.npz'))

    utils.set_seeds(params['seed'])
    quick = params['quick_test']
    train_gen = DataGenerator(params, split='train', feat_class=fc, max_batches=2 if quick else None)
    test_gen = DataGenerator(params, split='test', feat_class=fc, max_batches=2 if quick else None)
    print(f'run {run_dir}: {len(train_gen.stems)} train files ({len(train_gen)} batches), {len(test_gen.stems)} test '
          f'files ({len(test_gen)} batches), {fc.nb_classes} classes, input {train_gen.get_data_sizes()[0]}')

    with keras_model.precision(params['mixed_precision']), \
            distribution(params['distribute'], batch_size=params['batch_size']) as nb_replicas:
        if nb_replicas > 1:
            print(f'distribute={params["distribute"]}: {nb_replicas} replicas; each batch of '
                  f'{params["batch_size"]} sequences is split between them')
        # Under tf.distribute each replica normalizes its share of the batch unless BatchNorm is synchronized; JAX's
        # DataParallel computes the statistics over the whole (sharded) batch by itself.
        sync = nb_replicas > 1 and params['distribute'] in ('mirrored', 'multiworker')
        model, state, history = _build_or_resume(params, run_dir, fc, sync_batchnorm=sync)
        if state['epoch'] >= params['nb_epochs'] or state.get('stopped'):
            print(f'{run_dir}: finished already (epoch {state["epoch"]}); nothing to train')
        else:
            _fit(model, params=params, run_dir=run_dir, train_gen=train_gen, test_gen=test_gen, history=history,
                 state=state)
    results = utils.read_json(os.path.join(run_dir, 'results.json'))
    m = results['metrics']
    print(f'best epoch {results["best_epoch"]}: ER {m["error_rate"]:.3f} F {m["f_score"]:.3f} '
          f'DOA {m["doa_error"]:.2f} deg FR {m["frame_recall"]:.3f} SELD {m["seld_score"]:.4f} -> {run_dir}')
    return results


def _fit(model: keras.Model, *, params: dict[str, Any], run_dir: str, train_gen: Any, test_gen: Any,
         history: list[dict[str, float]], state: dict[str, Any]) -> None:
    """``model.fit`` from the epoch after ``state['epoch']``; the first Ctrl-C stops after the current batch."""
    interrupt = {'flag': False}
    callbacks = make_callbacks(params=params, run_dir=run_dir, test_gen=test_gen, history=history, state=state,
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


def _build_or_resume(params: dict[str, Any], run_dir: str, fc: Any, *,
                     sync_batchnorm: bool = False) -> tuple[keras.Model, dict[str, Any], list]:
    """A new model, or the last checkpoint of this run with its state and history."""
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
            nb_frames=params['sequence_length'], nb_bins=fc.nfft // 2, nb_channels=fc.nb_channels,
            nb_classes=fc.nb_classes, azi_only=params['azi_only'], dropout_rate=params['dropout_rate'],
            nb_cnn2d_filt=params['nb_cnn2d_filt'], pool_size=params['pool_size'], rnn_size=params['rnn_size'],
            fnn_size=params['fnn_size'], gru_type=params['gru_type'], sync_batchnorm=sync_batchnorm,
            mixed_precision=params['mixed_precision'], loss_weights=params['loss_weights'],
            learning_rate=params['learning_rate'], jit_compile=params['jit_compile'])
    return model, state, history


def main(argv: list[str]) -> int:
    values, overrides = parameter.parse_cli(argv, ('job_id', 'task_id'), USAGE)
    params = parameter.get_params(values['task_id'], overrides)
    train(params, values['job_id'])
    return 0


if __name__ == '__main__':
    utils.run_cli(main)

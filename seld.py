"""Train SELDnet, select the model on the validation split, stop early, and score the test split once.

Usage::

    python seld.py [job-id] [task-id] [key=value ...]
    python seld.py 7 999 dataset_dir=data/ansim feat_label_dir=scratch/feat model_dir=scratch/runs

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
    checkpoint/          ``state.json``, the commit record of the last finished epoch (written last: it names the
                         files below, and a run always resumes from it); ``epoch-NNNN.keras``, the model and optimizer
                         state after the last epoch and after the selected one; ``last.keras`` (the last one) and
                         ``best.json`` (the selected epoch's row) published from it
    .lock                held (``fcntl.flock``) by the process training the folder: a second one is refused

Any Keras backend (``KERAS_BACKEND=tensorflow|jax|torch``); ``distribute`` and ``mixed_precision`` as in parameter.py.
Ctrl-C leaves the best model intact (every file is written to a temporary name, then renamed);
re-running the same job-id with the same parameters resumes after the last finished epoch, exactly: every random draw
of an epoch (data order, augmentation, dropout masks) is a function of ``(seed, epoch)``, and a run killed at any
point (``kill -9``, a full disk) continues to the weights and metrics.csv of the uninterrupted run.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from typing import Any, Iterator

import numpy as np

import parameter
import runtime
import utils
from utils import SELDError

USAGE = 'python seld.py [job-id] [task-id] [key=value ...]'
if __name__ == '__main__':
    parameter.exit_on_help(sys.argv[1:], USAGE)  # --help answers before the backend is imported
keras = runtime.import_keras()

import cpu_kernels  # noqa: E402
import formats  # noqa: E402
import keras_model  # noqa: E402
import label_frames  # noqa: E402
import metric_definitions  # noqa: E402
import scoring  # noqa: E402
from checkpointing import Checkpoint, recover_run  # noqa: E402
from plots import plot_seld_output  # noqa: E402

# Parameters that may change when a run is resumed (they do not change what is being trained).
RESUMABLE_CHANGES = {'nb_epochs', 'patience', 'n_jobs', 'nb_shards', 'shard_index', 'stage'}
# Where the run folder is (model_dir) is not part of what is trained: a moved folder, or model_dir spelled otherwise,
# resumes. The other folders are compared as resolved paths.
LOCATION_KEYS = {'model_dir'}


def run_dir_for(params: dict[str, Any], job_id: str) -> str:
    """``<model_dir>/<dataset>_ov<ov>_split<split>_<job-id>`` (TUT-2018) or ``<dataset>_<format>_split<split>_<job-id>``."""
    import datasets

    if params['dataset'] in datasets.TUT_DATASETS:
        name = f'{params["dataset"]}_ov{params["overlap"]}_split{params["split"]}_{job_id}'
    else:
        name = f'{params["dataset"]}_{params["format"]}_split{params["split"]}_{job_id}'
    return os.path.join(params['model_dir'], name)


def scoring_info(fc: Any, params: dict[str, Any]) -> dict[str, Any]:
    """What the prediction files of a run are and how they are scored: the contents of ``predictions/format.json``
    (without ``files``), from which :meth:`scoring.SELDScorer.from_format` builds the scorer of both
    seld.py and the scoring command.

    Predictions are written in the dataset's output format at its prediction rate: the model frame rate for TUT-2018
    (``frame,class,azi,ele`` at 172.27 frames/s) and DCASE 2019 data (50 frames/s), the 100 ms label rate for DCASE
    2020+ data (``frame,class,track,azi,ele``; model frames converted by ``label_frames.resample_matrices``, majority).
    """
    spec = fc.dataset.spec
    out = fc.output_layout
    if out.output != 'seldnet' and spec.label_rate is None:
        raise SELDError(f"output={out.output}: the DCASE baselines' outputs are scored on datasets with 100 ms frame "
                        f"metadata (DCASE 2020+ layouts); dataset={spec.name} has events in seconds")
    metrics, fmt = list(metric_definitions.DEFAULT_DEFINITIONS), spec.output_format
    if out.output == 'multi_accddoa' and spec.meta_format == 'dcase2024':  # predictions with distances
        metrics, fmt = metrics + ['dcase2024'], 'dcase2024'
    if out.output == 'multi_accddoa' and spec.meta_format == 'dcase2025':  # the 2025 stereo set's own metric
        metrics = metrics + ['dcase2025']
    elif spec.label_rate is not None and 'dcase2024' not in metrics:  # 2024's frame-level grid, without distances
        metrics = metrics + ['dcase2024_nodist']
    return dict(format=fmt, frame_rate=out.output_rate if spec.label_rate is None else spec.label_rate,
                classes=list(fc.classes), dataset=spec.name, model_frame_rate=out.output_rate,
                reference=dict(format=spec.meta_format, naming=fc.dataset.naming, frame_rate=spec.label_rate),
                metrics=metrics, doa_threshold=20.0, segment_len_s=1.0, sed_threshold=params['sed_threshold'])


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
    scorer = scoring.SELDScorer.from_format(info)
    if gen.output != 'seldnet':
        return _evaluate_accdoa(model, gen, params, info, scorer)
    outputs = gen.split_predictions(model.predict(gen, verbose=0))
    labels = gen.get_labels()
    references = gen.references()
    predictions = []
    for (stem, sed_prob, doa), (_, ref_sed, ref_doa) in zip(outputs, labels):
        outputs_doa = doa
        file_info, ref = references[stem]
        n = len(sed_prob)
        full = n == fc.output_layout.nb_frames(file_info['nb_frames'])
        duration = file_info['duration_s'] if full else n / gen.output_rate  # quick test
        sed = (sed_prob > params['sed_threshold']).astype(np.float32)
        if info['frame_rate'] != gen.output_rate:  # DCASE 2020+: the model's 20 ms frames to 100 ms label frames
            n = label_frames.nb_frames_at(duration, frame_rate=info['frame_rate'])
            sed, doa = label_frames.resample_matrices(sed, doa, frame_rate=gen.output_rate,
                                                      out_frame_rate=info['frame_rate'], rule='majority',
                                                      nb_frames_out=n)
        scorer.add(stem, _cut(ref, duration, fc.label_rate), sed, doa, duration_s=duration, nb_frames=n)
        predictions.append(dict(stem=stem, sed=sed, doa=doa, nb_frames=n, duration_s=duration, sed_prob=sed_prob,
                                model_doa=outputs_doa))
    w = params['loss_weights']
    sed_true, sed_pred = np.concatenate([x[1] for x in labels]), np.concatenate([x[1] for x in outputs])
    doa_true, doa_pred = np.concatenate([x[2] for x in labels]), np.concatenate([x[2] for x in outputs])
    # Keras' loss functions (per frame), not its Loss objects: called inside a tf.distribute scope (distribute=mirrored)
    # those divide by the number of replicas, which halved val/loss on 2 replicas.
    sed_loss = float(np.mean(keras.ops.convert_to_numpy(keras.losses.binary_crossentropy(sed_true, sed_pred))))
    doa_loss = float(np.mean(keras.ops.convert_to_numpy(keras.losses.mean_squared_error(doa_true, doa_pred))))
    scores = dict(loss=w[0] * sed_loss + w[1] * doa_loss, sed_loss=sed_loss, doa_loss=doa_loss, **scorer.results())
    return scores, predictions, info


def _evaluate_accdoa(model: Any, gen: Any, params: dict[str, Any], info: dict[str, Any],
                     scorer: Any) -> tuple[dict[str, Any], list, dict[str, Any]]:
    """:func:`evaluate_split` of an ACCDOA-family output (``output=accdoa|multi_accdoa|multi_accddoa``): each
    recording's output, at the label rate, decoded into instances as the baselines do
    (:func:`dcase_outputs.decode`, ``thresh_unify``) and scored as an instance list; the loss is the model's."""
    import dcase_outputs
    import losses

    fc = gen.fc
    pred = model.predict(gen, verbose=0)
    outputs = gen.split_outputs(pred['accdoa_out'] if isinstance(pred, dict) else pred)
    targets = gen.get_targets()
    references = gen.references()
    predictions = []
    for (stem, out), (_, target) in zip(outputs, targets):
        file_info, ref = references[stem]
        n = len(out)
        full = n == fc.output_layout.nb_frames(file_info['nb_frames'])
        duration = file_info['duration_s'] if full else n / gen.output_rate  # quick test
        inst = dcase_outputs.decode(out, output=gen.output, nb_classes=fc.nb_classes, azi_only=params['azi_only'],
                                    thresh_unify=params['thresh_unify'])
        if info['format'] == 'dcase2025':  # scored as written (whole degrees and cm), as the 2025 baseline scores
            inst = formats.as_dcase2025(inst)
        scorer.add_instances(stem, _cut(ref, duration, fc.label_rate), inst, duration_s=duration, nb_frames=n)
        predictions.append(dict(stem=stem, instances=inst, nb_frames=n, duration_s=duration, output=out))
    y_true = np.concatenate([t for _, t in targets])[None]
    y_pred = np.concatenate([o for _, o in outputs])[None]
    loss_fn = losses.accdoa_mse if gen.output == 'accdoa' else losses.adpit_mse
    loss = float(np.mean(keras.ops.convert_to_numpy(loss_fn(y_true, y_pred))))
    return dict(loss=loss, **scorer.results()), predictions, info


def _cut(ref: Any, duration_s: float, label_rate: float | None) -> Any:
    """A reference cut to its first ``duration_s`` seconds (the quick test scores the first frames only)."""
    if isinstance(ref, label_frames.Events):
        keep = ref.start < duration_s
        return label_frames.Events(*(np.asarray(v)[keep] for v in ref[:-1]), [n for n, k in zip(ref.names, keep) if k])
    keep = ref.frame < label_frames.nb_frames_at(duration_s, frame_rate=label_rate)
    return label_frames.Instances(*(None if v is None else np.asarray(v)[keep] for v in ref))


def flat_scores(scores: dict[str, Any], prefix: str) -> dict[str, float]:
    """``{'seld2018': {'f_score': x}, 'loss': y}`` -> ``{prefix + 'seld2018/f_score': x, prefix + 'loss': y}``."""
    out = {}
    for key, value in scores.items():
        if isinstance(value, dict):
            out.update({f'{prefix}{key}/{k}': float(v) for k, v in value.items()})
        else:
            out[prefix + key] = float(value)
    return out


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


class EpochSeeds(keras.callbacks.Callback):
    """At the start of every epoch, make all its random draws functions of ``(seed, epoch)``: the training
    generator's order and augmentation (:meth:`cls_data_generator.DataGenerator.set_epoch`) and the state of every
    seed generator of the model, i.e. the dropout masks (:func:`keras_model.set_epoch_seeds`).

    Keras reads no batch of an epoch before this: ``fit`` calls the callbacks' ``on_epoch_begin`` and only then starts
    the epoch's reader threads (the generator's ``workers``; ``shuffle=False`` keeps Keras' own batch shuffling, with
    Python's ``random``, out). The two batches Keras reads before the first epoch to infer the signature are never
    trained on. tests/test_resume.py checks both with a spy.
    """

    def __init__(self, *, seed: int, train_gen: Any):
        super().__init__()
        self.seed, self.train_gen = int(seed), train_gen

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.train_gen.set_epoch(epoch)
        keras_model.set_epoch_seeds(self.model, seed=self.seed, epoch=epoch)


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


def make_callbacks(*, params: dict[str, Any], run_dir: str, train_gen: Any, val_gen: Any,
                   history: list[dict[str, float]], state: dict[str, Any],
                   interrupt: dict[str, bool] | None = None) -> list[keras.callbacks.Callback]:
    """Callbacks: the epoch's random state, progress bar, per-epoch validation, selected-model checkpoint with epoch
    log, resume state and early stopping, and (TensorFlow backend) TensorBoard logs."""
    interrupt = interrupt if interrupt is not None else {'flag': False}
    callbacks = [EpochSeeds(seed=params['seed'], train_gen=train_gen), Progress(),
                 Evaluate(params=params, val_gen=val_gen, interrupt=interrupt),
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
    """Train and evaluate one job; returns the contents of results.json.

    The run folder is locked for the whole job (:func:`utils.lock_folder`): a second process on it is refused."""
    from cls_feature_class import FeatureClass

    fc = FeatureClass(params)
    scoring_info(fc, params)  # what cannot be scored is refused before any training
    if not os.path.exists(fc.scaler_file):
        raise SELDError(f'{fc.feat_label_dir}: no features for these parameters; run '
                        f'`python batch_feature_extraction.py {params["task_id"]}` (with the same key=value '
                        f'overrides) first')
    run_dir = run_dir_for(params, job_id)
    try:
        os.makedirs(run_dir, exist_ok=True)
    except OSError as err:
        raise SELDError(f'{run_dir}: cannot create the run folder ({err.strerror or err})') from err
    with utils.lock_folder(run_dir, what='this run folder (a seld.py training it)'):
        return _train_locked(params, job_id, run_dir, fc)


def _check_same_run(old: dict[str, Any], params: dict[str, Any], *, run_dir: str, job_id: str,
                    params_file: str) -> None:
    """Refuse to resume a run with parameters that change what is trained (:data:`RESUMABLE_CHANGES` may change,
    :data:`LOCATION_KEYS` are ignored, other ``*_dir`` keys are compared as resolved paths). A key that the run's
    record lacks (added to the project after the run started) is the same if it has its default now: a new key's
    default keeps what the code did before it."""
    if not isinstance(old, dict) or not isinstance(old.get('params'), dict):
        raise SELDError(f'{params_file}: not the parameter record of a run (no "params" object); restore the file or '
                        f'delete the run folder')
    old = old['params']
    resumable = RESUMABLE_CHANGES - ({'nb_epochs'} if params['lr_schedule'] != 'constant' else set())

    def same(k: str) -> bool:
        a, b = old.get(k), params.get(k)
        if k not in old and k in parameter.DEFAULTS and b == parameter.DEFAULTS[k]:
            return True
        if k.endswith('_dir') and isinstance(a, str) and isinstance(b, str):
            return os.path.realpath(a) == os.path.realpath(b)
        return a == b

    changed = sorted(k for k in set(old) | set(params) if k not in resumable | LOCATION_KEYS and not same(k))
    if changed:
        why = ('; nb_epochs is the horizon of its learning-rate schedule (lr_schedule='
               f'{params["lr_schedule"]})') if 'nb_epochs' in changed and 'nb_epochs' not in resumable else ''
        raise SELDError(f'{run_dir}: already holds a run of job-id {job_id!r} with other parameters '
                        f'({", ".join(changed)}){why}; use another job-id or delete the folder')


def _train_locked(params: dict[str, Any], job_id: str, run_dir: str, fc: Any) -> dict[str, Any]:
    """:func:`train` while holding the run folder's lock."""
    from cls_data_generator import DataGenerator

    record = dict(params=params, job_id=job_id, features=fc.feature_info(), data=fc.dataset.describe(),
                  versions=backend_versions())
    params_file = os.path.join(run_dir, 'params.json')
    if os.path.exists(params_file):
        _check_same_run(utils.read_json(params_file), params, run_dir=run_dir, job_id=job_id, params_file=params_file)
    with utils.writing(params_file):
        utils.write_json(params_file, record)
    with utils.writing(os.path.join(run_dir, 'scaler.npz')):
        utils.copy_file(fc.scaler_file, os.path.join(run_dir, 'scaler.npz'))

    print(runtime.device_line(), flush=True)
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
    callbacks = make_callbacks(params=params, run_dir=run_dir, train_gen=train_gen, val_gen=val_gen,
                               history=history, state=state, interrupt=interrupt)

    def on_sigint(signum: int, frame: Any) -> None:  # first Ctrl-C: stop cleanly after the current batch
        interrupt['flag'] = True
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C interrupts at once
        print('\ninterrupted: stopping after this batch; the best model and the last finished epoch are kept '
              '(re-run the same command to resume)', file=sys.stderr, flush=True)

    main_thread = threading.current_thread() is threading.main_thread()  # signals only work there
    previous = signal.signal(signal.SIGINT, on_sigint) if main_thread else None
    try:
        # shuffle=False: the generator shuffles itself, from (seed, epoch) (Keras would reorder its batches with
        # Python's random, which depends on the process's history)
        model.fit(train_gen, epochs=params['nb_epochs'], initial_epoch=state['epoch'], callbacks=callbacks,
                  shuffle=False, verbose=0)
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
    write_predictions(os.path.join(run_dir, 'predictions'), predictions, info)
    mean, scale = load_scaler(fc.scaler_file)
    seldnet_frames = test_gen.output == 'seldnet' and test_gen.frames_per_output == 1  # matrices at the feature rate
    figures = list(zip(test_gen.get_labels(), predictions))[:3] if seldnet_frames else []
    for (stem, ref_sed, ref_doa), p in figures:
        # magnitude map of channel 0, un-standardized (the features are stored normalized only)
        spec = np.load(fc.paths(stem)['feat'], mmap_mode='r')[:len(ref_sed), :, 0] * scale[:, 0] + mean[:, 0]
        figure = os.path.join(run_dir, 'figures', stem + '.png')
        with utils.writing(figure):
            plot_seld_output(figure, spec=spec, classes=fc.classes, frame_rate=fc.frame_rate, fs=fc.fs,
                             ref_sed=ref_sed, ref_doa=ref_doa, pred_sed=p['sed_prob'] > params['sed_threshold'],
                             pred_doa=p['model_doa'], title=f'{stem}: selected model (epoch {best["epoch"]})')
    metric = params['early_stop_metric']
    validation = {k[len('val/'):]: v for k, v in best['metrics'].items() if k.startswith('val/')}
    results = dict(best_epoch=best['epoch'], early_stop_metric=metric, select_on_test=params['select_on_test'],
                   validation=_nest(validation), test=scores, nb_test_files=len(predictions),
                   prediction_format=info['format'], prediction_frame_rate=info['frame_rate'],
                   model_frame_rate=test_gen.output_rate, grids=scoring.SELDScorer.from_format(info).grids())
    if unseen_gen is not None:
        unseen, _, _ = evaluate_split(model, unseen_gen, params)
        results['test_unseen_doa'] = dict(unseen, dataset_dir=params['unseen_doa_dir'],
                                          nb_files=len(unseen_gen.stems))
    if params['select_on_test']:
        results['warning'] = ('select_on_test=true: the model was selected on the test split, so the "test" '
                              'numbers are NOT test scores')
    with utils.writing(os.path.join(run_dir, 'results.json')):
        utils.write_json(os.path.join(run_dir, 'results.json'), results)
    import datasets  # a loss (early_stop_metric=sed_loss ...) selects: print the dataset year's definition
    name = metric.split('/')[0] if '/' in metric else datasets.SPECS[params['dataset']].metric
    m = scores[name]
    print(f'selected epoch {best["epoch"]} ({metric} {best["metrics"]["val/" + metric]:.4f} on '
          f'{"the TEST split" if params["select_on_test"] else "validation"}); test {name}: '
          + ' '.join(f'{k} {v:.4f}' for k, v in m.items()) + f' -> {run_dir}')
    if unseen_gen is not None:
        print(f'unseen-DOA test {name}: ' + ' '.join(f'{k} {v:.4f}' for k, v in results['test_unseen_doa'][name].items()))
    return results


def write_predictions(pred_dir: str, predictions: list[dict[str, Any]], info: dict[str, Any]) -> None:
    """Write the prediction files and ``format.json`` into a temporary folder beside ``pred_dir``, then put it in
    place of ``pred_dir`` whole: the old folder is renamed away, the new one renamed in, the old one deleted (a kill
    between the two renames leaves no ``predictions/``, never a mixed one; the next run removes the leftovers and
    writes it again)."""
    parent = os.path.dirname(os.path.abspath(pred_dir))
    name = os.path.basename(pred_dir)
    try:
        tmp = tempfile.mkdtemp(prefix=f'.{name}.', suffix='.tmp', dir=parent)
        os.chmod(tmp, 0o777 & ~utils.umask())
    except OSError as err:
        raise SELDError(f'{pred_dir}: cannot write ({err.strerror or err})') from err
    try:
        for p in predictions:
            if 'instances' in p:  # an ACCDOA-family output: several instances of a class per frame
                import dcase_outputs

                dcase_outputs.write_instances(os.path.join(tmp, p['stem'] + '.csv'), p['instances'],
                                              fmt=info['format'])
            else:
                formats.write_csv(os.path.join(tmp, p['stem'] + '.csv'), p['sed'], p['doa'], fmt=info['format'],
                                  frame_rate=info['frame_rate'])
        files = {p['stem']: dict(nb_frames=p['nb_frames'], duration_s=p['duration_s']) for p in predictions}
        formats.write_format_file(tmp, fmt=info['format'], files=files,
                                  **{k: v for k, v in info.items() if k != 'format'})
        old = None
        if os.path.lexists(pred_dir):
            old = tempfile.mkdtemp(prefix=f'.{name}.', suffix='.tmp', dir=parent)
            os.replace(pred_dir, old)  # onto the empty folder just made: a name no other process uses
        os.replace(tmp, pred_dir)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SELDError(f'{pred_dir}: cannot write ({err.strerror or err})') from err
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old:
        shutil.rmtree(old, ignore_errors=True)


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
    committed, history = recover_run(run_dir)
    state: dict[str, Any] = committed or dict(epoch=0, best=float('inf'), best_epoch=0, wait=0, stopped=False,
                                              last=None, best_model=None)
    if committed:
        last_model = os.path.join(run_dir, 'checkpoint', committed['last'])
        model = keras_model.load_model(last_model)
        # The checkpoint's compile settings hold the jit_compile that Keras resolved where it was saved (False on a
        # TensorFlow CPU, which on JAX would mean running eagerly): compile again for this backend, keeping the
        # optimizer and its state.
        keras_model.compile_model(model, optimizer=model.optimizer, loss_weights=params['loss_weights'],
                                  doa_loss=params['doa_loss'], jit_compile=params['jit_compile'])
        print(f'resuming after epoch {state["epoch"]} (best {params["early_stop_metric"]} {state["best"]:.4f} at '
              f'epoch {state["best_epoch"]})')
    else:
        model = keras_model.get_model(
            nb_frames=params['sequence_length'], nb_bins=fc.feat_shape[0], nb_maps=fc.feat_shape[1],
            nb_channels=fc.nb_channels, output=params['output'], t_pool_size=params['t_pool_size'],
            nb_self_attn_layers=params['nb_self_attn_layers'], nb_heads=params['nb_heads'], crnn=params['crnn'],
            nb_classes=fc.nb_classes, azi_only=params['azi_only'], dropout_rate=params['dropout_rate'],
            nb_cnn2d_filt=params['nb_cnn2d_filt'], pool_size=params['pool_size'], rnn_size=params['rnn_size'],
            fnn_size=params['fnn_size'], gru_type=params['gru_type'], bn_momentum=params['bn_momentum'],
            sync_batchnorm=sync_batchnorm,
            mixed_precision=params['mixed_precision'], loss_weights=params['loss_weights'],
            doa_loss=params['doa_loss'], learning_rate=keras_model.learning_rate(
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

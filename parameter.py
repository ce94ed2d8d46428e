"""Parameters of feature extraction, the SELDnet model and training.

Do not edit the defaults to run an experiment: add a task-id to ``TASKS`` (a small dict of overrides)
or override on the command line as ``key=value``::

    python batch_feature_extraction.py 3 dataset_dir=/data/resim
    python seld.py my-job 3 dataset_dir=/data/resim batch_size=8

Overrides are typed like the default (``pool_size=8,8,2`` or ``pool_size=[8,8,2]``; ``azi_only=true``).
An unknown key or task-id is an error that lists the valid ones.
"""
from __future__ import annotations

import ast
import copy
import os
from typing import Any, Iterable

import datasets
from utils import SELDError

# fmt: off
DEFAULTS: dict[str, Any] = dict(
    # ---- run control ----------------------------------------------------------------------------
    quick_test=False,        # bool: train/test on 2 batches for 2 epochs (smoke test)
    seed=42,                 # int: seed of training (weight init, shuffling)

    # ---- folders (no machine paths in code: relative to the current directory) -----------------
    dataset_dir='data/{dataset}',   # the unzipped dataset: wav_*/ and desc_*/ (TUT-2018) or foa_dev/, mic_dev/, metadata_dev/ (DCASE)
    feat_label_dir='data/features', # features, labels and the scaler go in a sub-folder per dataset and feature setting
    model_dir='runs',               # one run folder per dataset/split/job-id

    # ---- dataset ------------------------------------------------------------------------------
    dataset='ansim',         # TUT-2018: ansim | resim (FOA, 4 ch) | cansim | cresim (circular array, 8 ch) | real (FOA);
                             # DCASE: tau2019sse | tau2020sse_nigens | tau2021sse_nigens | starss22 | starss23 (datasets.py)
    format=None,             # foa | mic (DCASE sets: FOA or the tetrahedral array, 4 ch); None = the dataset's first (foa)
    overlap=1,               # TUT-2018: maximum number of overlapping sound events (folder name): 1, 2 or 3
    split=1,                 # TUT-2018: cross-validation split (folder name); tau2019sse: the test split 1-4; others: 1
    db=30,                   # TUT-2018: SNR of the sound events in dB (folder name): 30, 20 or 10
    val_fraction=0.2,        # share of the train recordings held out to select the model (TUT-2018, STARSS: no validation set)
    select_on_test=False,    # select the model and stop early on the TEST split, as the original code did: its "test"
                             # numbers are then NOT test scores (they were used for selection)
    fs=None,                 # Hz: None = the dataset's rate (44100 TUT-2018, 48000 2019, 24000 2020+); another resamples (librosa)
    channels=None,           # list of int: the file's channels to use (e.g. 0,1,2,3); None = the file must have the dataset's count

    # ---- features -----------------------------------------------------------------------------
    nfft=None,               # samples: FFT size; None = 512 (TUT-2018 framing: window = nfft, hop = nfft / 2) or, with
                             # hop_len_s, the next power of two >= the window of 2 hops
    hop_len_s=None,          # s: hop of the framing by time (window = 2 hops, centred frames); None = the dataset's
                             # (0.02 for the DCASE sets, the TUT-2018 framing for TUT-2018)
    n_jobs=-1,               # parallel jobs: threads for feature extraction, processes for synthesis (-1: all cores)
    nb_shards=1,             # int: feature extraction split into this many shards (processes or machines)
    shard_index=0,           # int: this process's shard, 0 .. nb_shards-1 (takes sorted files i % nb_shards == shard_index)
    stage='all',             # all | stats (labels + train statistics; per shard) | features (scaler + normalized features; per shard, after every shard's stats)

    # ---- embedded default: a synthetic ANSIM look-alike, made when dataset_dir is missing and synthesize is on
    synthesize=None,         # bool: synthesize a missing dataset_dir from the synth_* keys; None = only the embedded
                             # default (dataset ansim at the default dataset_dir)
    synth_nb_train=80,       # clips in the train part of the embedded synthetic ANSIM look-alike
    synth_nb_test=20,        # clips in its test part
    synth_clip_len_s=30.0,   # s: length of its clips (the TUT-2018 length)
    synth_seed=2018,         # seed of its synthesis
    synth_sound_bank='builtin',  # its sound events: builtin (procedural) or a folder of classNNN.wav (sound_bank.py)
    unseen_doa_dir=None,     # a test-only TUT-2018 dataset whose DOAs are off the training grid, scored once after the
                             # test split ('{dataset_dir}' is filled in); synthesized with the test clips' scenes at
                             # DOAs shifted by +5 deg when synthesize is on

    # ---- model (the paper's 3-D setting) ------------------------------------------------------
    sequence_length=512,     # frames per sequence fed to the network
    batch_size=16,           # sequences per batch
    dropout_rate=0.0,        # dropout after every conv block and dense layer
    nb_cnn2d_filt=64,        # filters of every Conv2D layer
    pool_size=[8, 8, 2],     # frequency max-pooling per conv block (one entry per block)
    rnn_size=[128, 128],     # units per bidirectional GRU layer (one entry per layer)
    fnn_size=[128],          # units per time-distributed dense layer before each output
    loss_weights=[1.0, 50.0],  # [SED binary cross-entropy, DOA mean squared error]
    learning_rate=0.001,     # Adam learning rate (the peak of a schedule)
    lr_schedule='constant',  # constant (the paper's) | cosine: linear warm-up over lr_warmup_epochs, then a half cosine
                             # to 0 at nb_epochs (keras_model.learning_rate)
    lr_warmup_epochs=0.0,    # epochs (may be fractional) of linear warm-up of lr_schedule=cosine
    azi_only=False,          # estimate azimuth only: DOA output is (x, y) per class instead of (x, y, z)
    augment=False,           # bool: label-exact spatial augmentation of the training sequences: one of the 16 rotations /
                             # reflections of the scene per sequence and epoch (8 for the tetrahedral array; augmentation.py)
    bn_momentum=0.99,        # momentum of the BatchNorm moving statistics (Keras' default, the paper's)
    gru_type='cudnn',        # cudnn (Keras 3 GRU: reset_after, sigmoid gates; cuDNN on GPUs) | original (the paper code's Keras 2.2.4 GRU: hard sigmoid, recurrent dropout; never cuDNN)

    # ---- training -----------------------------------------------------------------------------
    nb_epochs=1000,          # maximum number of epochs
    patience=None,           # epochs without improvement before stopping; None = int(0.1 * nb_epochs)
    sed_threshold=0.5,       # SED probability above which a class is active
    early_stop_metric=None,  # validation metric (lower is better) that selects the model, '<definition>/<metric>';
                             # None = the dataset year's SELD score ('seld2018/seld_score', the paper's, for TUT-2018;
                             # 'dcase2019/seld_score' ... 'dcase2022/seld_score' for the DCASE sets)
    jit_compile='auto',      # auto (Keras' choice: XLA on JAX and TF GPUs, none on TF CPUs, eager PyTorch) | true | false
    fused_batchnorm='auto',  # auto (TensorFlow's fused BatchNorm kernel for training on a TF CPU: 1.2-1.5x faster steps;
                             # saved models keep stock layers; cpu_kernels.py) | true | false
    distribute='none',       # none | mirrored (TF: all local GPUs, or CPUs with tf.config logical devices) | multiworker (TF: TF_CONFIG) | dataparallel (JAX: all local devices)
    mixed_precision='none',  # none | mixed_bfloat16 | mixed_float16: 16-bit compute, float32 weights and outputs (for GPUs; slower on CPUs)
)
# fmt: on

# Task-ids: small named overrides of DEFAULTS. Add yours here.
TASKS: dict[str, dict[str, Any]] = {
    '1': {},                                                  # the paper's default (ANSIM, ov1, split1)
    '2': dict(dataset='ansim', sequence_length=512),          # anechoic Ambisonic
    '3': dict(dataset='resim', sequence_length=256),          # reverberant Ambisonic
    '4': dict(dataset='cansim', sequence_length=256),         # anechoic circular array
    '5': dict(dataset='cresim', sequence_length=256),         # reverberant circular array
    '6': dict(dataset='real', sequence_length=512),           # real-life Ambisonic recordings
    '7': dict(dataset='cansim', overlap=3, split=1),          # circular array, up to 3 overlapping events
    '8': dict(dataset='ansim', sequence_length=64, batch_size=32),
    # The embedded default: the synthetic ANSIM look-alike a fresh clone trains on (44.1 kHz on disk, as TUT-2018),
    # tuned to finish synthesis, extraction, training and both test reports on 2 CPU cores within 20 minutes
    # (README.md: the measured time and scores): features at 16 kHz (the STFT cost is proportional to the rate; FOA
    # encodes the direction the same way at every frequency), 2-s sequences (4x the optimizer steps of 512 frames at
    # the same cost per epoch), label-exact spatial augmentation, BatchNorm statistics that keep up with the
    # fast-changing weights of a short run, 25 epochs (what the 20 minutes hold), and the unseen-DOA test set. The
    # model and its constant learning rate are the paper's; lr_schedule=cosine (measured on the earlier, purely tonal
    # built-in sounds) and a moving average of the weights did not score better (README.md, "Measured results").
    'embedded': dict(fs=16000, sequence_length=128, augment=True, bn_momentum=0.9, nb_epochs=25, patience=25,
                     unseen_doa_dir='{dataset_dir}_unseen_doa'),
    # DCASE development sets (datasets.py): each year's SELDnet-style configuration, as far as SELDnet allows:
    # 20 ms hops, the baseline's feature sequence length, epochs and patience; 100 ms labels for 2020+.
    'tau2019sse': dict(dataset='tau2019sse', sequence_length=128, pool_size=[8, 8, 4], nb_epochs=50, patience=5),
    'tau2020sse_nigens': dict(dataset='tau2020sse_nigens', sequence_length=300, nb_epochs=50, patience=50),
    'tau2021sse_nigens': dict(dataset='tau2021sse_nigens', sequence_length=300, dropout_rate=0.05, nb_epochs=50,
                              patience=50),
    'starss22': dict(dataset='starss22', sequence_length=250, dropout_rate=0.05, nb_epochs=100, patience=100),
    'starss23': dict(dataset='starss23', sequence_length=250, dropout_rate=0.05, nb_epochs=100, patience=100),
    '999': dict(quick_test=True, nb_epochs=2),                # quick test: 2 epochs on 2 batches
}

#: Types of the keys whose default is None (the others are typed like their default).
TYPES: dict[str, Any] = dict(patience=int, fs=int, nfft=int, hop_len_s=float, channels=[int], format=str,
                             early_stop_metric=str, synthesize=bool, unseen_doa_dir=str)
CHOICES = dict(gru_type=('cudnn', 'original'), lr_schedule=('constant', 'cosine'), jit_compile=('auto', True, False),
               fused_batchnorm=('auto', True, False),
               distribute=('none', 'mirrored', 'multiworker', 'dataparallel'),
               mixed_precision=('none', 'mixed_bfloat16', 'mixed_float16'))


def _parse_value(key: str, text: str, default: Any) -> Any:
    """Parse ``text`` into the type of ``default`` (or of ``TYPES[key]`` for a None default); raise SELDError naming
    the key and the rule."""
    def fail(rule: str) -> SELDError:
        return SELDError(f'{key}={text!r}: {rule}')

    if default is None:
        if text.strip().lower() in ('none', ''):
            return None
        kind = TYPES.get(key, str)
        default = [0] if isinstance(kind, list) else {bool: False, int: 0, float: 0.0}.get(kind, '')
    if isinstance(default, bool):
        low = text.strip().lower()
        if low in ('1', 'true', 'yes', 'on'):
            return True
        if low in ('0', 'false', 'no', 'off'):
            return False
        raise fail('must be a boolean (true/false)')
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError as err:
            raise fail('must be an integer') from err
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError as err:
            raise fail('must be a number') from err
    if isinstance(default, list):
        src = text.strip()
        if not src.startswith('['):
            src = '[' + src + ']'
        try:
            value = ast.literal_eval(src)
        except (ValueError, SyntaxError) as err:
            raise fail('must be a list such as 8,8,2') from err
        elem = type(default[0]) if default else float
        try:
            return [elem(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
        except (TypeError, ValueError) as err:
            raise fail(f'must be a list of {elem.__name__}') from err
    if True in CHOICES.get(key, ()):  # a word or a boolean, such as jit_compile=auto|true|false
        low = text.strip().lower()
        return True if low in ('1', 'true', 'yes', 'on') else False if low in ('0', 'false', 'no', 'off') else low
    return text


def parse_overrides(items: Iterable[str], defaults: dict[str, Any]) -> dict[str, Any]:
    """Parse ``key=value`` strings, each value typed like ``defaults[key]``; an unknown key is an error.

    Returns only the keys given.
    """
    parsed: dict[str, Any] = {}
    for item in items:
        if '=' not in item:
            raise SELDError(f'{item!r}: arguments must be written key=value; valid keys: {", ".join(defaults)}')
        key, text = item.split('=', 1)
        key = key.strip()
        if key not in defaults:
            raise SELDError(f'unknown parameter {key!r}; valid keys: {", ".join(sorted(defaults))}')
        parsed[key] = _parse_value(key, text, defaults[key])
    return parsed


def get_params(task_id: str = '1', overrides: dict[str, Any] | list[str] | None = None,
               *, verbose: bool = False) -> dict[str, Any]:
    """Resolve the parameters of a task-id plus overrides.

    Parameters
    ----------
    task_id : str
        A key of ``TASKS``.
    overrides : dict or list of 'key=value' strings, optional
        Applied after the task's own overrides. Strings are typed like the default.
    verbose : bool
        Print the resolved parameters.

    Returns
    -------
    params : dict
        All keys of ``DEFAULTS``, with the dataset's framing (``hop_len_s``, ``nfft``), ``format`` and
        ``early_stop_metric`` filled in where None, ``dataset_dir`` resolved, plus ``task_id`` and
        ``is_embedded_default`` (bool). The sample rate, channel count and classes come from the data
        (:class:`cls_feature_class.FeatureClass`).
    """
    task_id = str(task_id)
    if task_id not in TASKS:
        raise SELDError(f'unknown task-id {task_id!r}; valid task-ids: {", ".join(TASKS)}')
    params = copy.deepcopy(DEFAULTS)
    for key, value in TASKS[task_id].items():
        if key not in DEFAULTS:  # a typo in TASKS is a bug worth failing loudly for
            raise SELDError(f'task-id {task_id!r} sets unknown key {key!r}')
        params[key] = value

    if isinstance(overrides, (list, tuple)):
        overrides = parse_overrides(overrides, DEFAULTS)
    for key, value in (overrides or {}).items():
        if key not in DEFAULTS:
            raise SELDError(f'unknown parameter {key!r}; valid keys: {", ".join(sorted(DEFAULTS))}')
        params[key] = value

    if params['dataset'] not in datasets.SPECS:
        raise SELDError(f"dataset={params['dataset']!r}: must be one of {', '.join(datasets.DATASETS)}")
    spec = datasets.SPECS[params['dataset']]
    if params['hop_len_s'] is None:
        params['hop_len_s'] = spec.hop_len_s
    if params['nfft'] is None and params['hop_len_s'] is None:
        params['nfft'] = 512
    if params['format'] is None:
        params['format'] = spec.audio_formats[0]
    if params['early_stop_metric'] is None:
        params['early_stop_metric'] = f'{spec.metric}/seld_score'
    _validate(params)
    if params['patience'] is None:
        params['patience'] = int(0.1 * params['nb_epochs'])
    default_dir = DEFAULTS['dataset_dir'].format(dataset='ansim')
    raw_dir = params['dataset_dir']
    params['dataset_dir'] = raw_dir.format(dataset=params['dataset']) if '{dataset}' in raw_dir else raw_dir
    params['is_embedded_default'] = (params['dataset'] == 'ansim'
                                     and os.path.abspath(params['dataset_dir']) == os.path.abspath(default_dir))
    if params['synthesize'] is None:
        params['synthesize'] = params['is_embedded_default']
    if params['synthesize'] and params['dataset'] != 'ansim':
        raise SELDError(f"synthesize=true: only the ANSIM look-alike is synthesized here (dataset={params['dataset']!r});"
                        f" use synthesize_dataset.py for the others")
    if params['unseen_doa_dir']:
        params['unseen_doa_dir'] = params['unseen_doa_dir'].replace('{dataset_dir}', params['dataset_dir'])
    params['task_id'] = task_id
    if verbose:
        print(f'task-id {task_id}:')
        for key in sorted(params):
            print(f'  {key}: {params[key]}')
    return params


def _validate(p: dict[str, Any]) -> None:
    spec = datasets.SPECS[p['dataset']]
    if p['format'] not in spec.audio_formats:
        raise SELDError(f"format={p['format']!r}: dataset {p['dataset']!r} has {', '.join(spec.audio_formats)}")
    nfft = p['nfft']
    if nfft is not None and (nfft < 16 or nfft % 2):
        raise SELDError(f'nfft={nfft}: must be an even number of samples >= 16')
    if p['hop_len_s'] is not None and not p['hop_len_s'] > 0:
        raise SELDError(f"hop_len_s={p['hop_len_s']}: must be > 0 seconds")
    if not p['pool_size'] or any(v < 1 for v in p['pool_size']):
        raise SELDError(f"pool_size={p['pool_size']}: must be a non-empty list of positive integers")
    prod = 1
    for v in p['pool_size']:
        prod *= v
    if nfft is not None and (nfft // 2) % prod:
        raise SELDError(f"pool_size={p['pool_size']}: their product {prod} must divide nfft/2={nfft // 2}")
    for key in ('sequence_length', 'batch_size', 'nb_epochs', 'nb_cnn2d_filt'):
        if p[key] < 1:
            raise SELDError(f'{key}={p[key]}: must be >= 1')
    if p['fs'] is not None and p['fs'] < 1000:
        raise SELDError(f"fs={p['fs']}: must be a sample rate in Hz (>= 1000)")
    if p['channels'] is not None and (not p['channels'] or any(c < 0 for c in p['channels'])):
        raise SELDError(f"channels={p['channels']}: must be a non-empty list of channel indices >= 0")
    if not 0 <= p['val_fraction'] < 1:
        raise SELDError(f"val_fraction={p['val_fraction']}: must be in [0, 1)")
    if not p['learning_rate'] > 0:
        raise SELDError(f"learning_rate={p['learning_rate']}: must be > 0")
    if not 0 <= p['lr_warmup_epochs'] < p['nb_epochs']:
        raise SELDError(f"lr_warmup_epochs={p['lr_warmup_epochs']}: must be at least 0 and less than "
                        f"nb_epochs={p['nb_epochs']}")
    if not 0 <= p['bn_momentum'] < 1:
        raise SELDError(f"bn_momentum={p['bn_momentum']}: must be in [0, 1)")
    if not 0 <= p['dropout_rate'] < 1:
        raise SELDError(f"dropout_rate={p['dropout_rate']}: must be in [0, 1)")
    if len(p['loss_weights']) != 2:
        raise SELDError(f"loss_weights={p['loss_weights']}: must be [sed_weight, doa_weight]")
    for key, choices in CHOICES.items():
        if p[key] not in choices:
            raise SELDError(f'{key}={p[key]!r}: must be one of {", ".join(str(c).lower() for c in choices)}')
    if p['patience'] is not None and p['patience'] < 0:
        raise SELDError(f"patience={p['patience']}: must be >= 0")


def parse_cli(argv: list[str], positional: tuple[str, ...], usage: str) -> tuple[dict[str, str], list[str]]:
    """Split ``argv`` into positional arguments (those without '=') and ``key=value`` overrides.

    Missing positionals take the defaults ``job_id='1'`` and ``task_id='1'``.
    """
    if any(a in ('-h', '--help') for a in argv):
        print(usage)
        raise SystemExit(0)
    pos = [a for a in argv if '=' not in a]
    overrides = [a for a in argv if '=' in a]
    if len(pos) > len(positional):
        raise SELDError(f'too many arguments {pos}; usage: {usage}')
    values = {name: '1' for name in positional}
    values.update(dict(zip(positional, pos)))
    return values, overrides

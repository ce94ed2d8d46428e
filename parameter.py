"""Parameters of feature extraction, the SELDnet model and training.

Do not edit the defaults to run an experiment: add a task-id to ``TASKS`` (a small dict of overrides)
or override on the command line as ``key=value``::

    python batch_feature_extraction.py 3 dataset_dir=data/resim
    python seld.py my-job 3 dataset_dir=data/resim batch_size=8

Overrides are typed like the default (``pool_size=8,8,2`` or ``pool_size=[8,8,2]``; ``azi_only=true``).
An unknown key or task-id is an error that lists the valid ones; every value is checked (its type, a finite
number, its range or choices: :func:`get_params`), and a bad one is an error naming the key, the value and the rule.
"""
from __future__ import annotations

import copy
import math
import numbers
import os
import re
import sys
from typing import Any, Iterable

import datasets
import dcase_features
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
                             # DCASE: tau2019sse | tau2020sse_nigens | tau2021sse_nigens | starss22 | starss23 (datasets.py);
                             # the 2025 stereo set: dcase25_task3 (2 ch, format=stereo)
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
    features='magphase',     # magphase (the paper's STFT magnitude and phase maps) | the DCASE baselines' (dcase_features.py):
                             # logmel_iv (FOA, 2022-24; logmel_iv2021, logmel_iv2020: those years' intensity normalization)
                             # | logmel_gcc, salsa_lite (MIC, 2020-24, 2022-24) | logmel_stereo (2025)
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
    synth_sound_bank='builtin',  # its sound events: builtin (procedural) or a folder of classNNN.wav (synth/sound_bank.py)
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
    doa_loss='mse',          # mse | masked_mse (the DCASE 2020 baseline's, over the active classes; losses.py)
    learning_rate=0.001,     # Adam learning rate (the peak of a schedule)
    lr_schedule='constant',  # constant (the paper's) | cosine: linear warm-up over lr_warmup_epochs, then a half cosine
                             # to 0 at nb_epochs (keras_model.learning_rate)
    lr_warmup_epochs=0.0,    # epochs (may be fractional) of linear warm-up of lr_schedule=cosine
    output='seldnet',        # seldnet (the paper's SED + DOA heads) | the DCASE baselines' single output (keras_model.py):
                             # accdoa (2021) | multi_accdoa (2022-23: 3 tracks, ADPIT) | multi_accddoa (2024: with distance)
    t_pool_size=None,        # list of int: time max-pooling per conv block (DCASE 2020+: [5, 1, 1], 20 ms frames to the
                             # 100 ms label rate); None = none (SELDnet: one output per feature frame)
    nb_self_attn_layers=0,   # multi-head self-attention layers after the GRUs (DCASE 2023+: 2)
    nb_heads=8,              # heads of each self-attention layer
    crnn=None,               # layer recipe (keras_model.py): seldnet (the paper's) | dcase2020 (the 2020/2021 Keras 2 code's:
                             # BatchNorm per frequency bin) | dcase2022 (the 2022-25 PyTorch CRNN); None = dcase2022 for
                             # multi_accdoa / multi_accddoa, seldnet otherwise
    thresh_unify=15.0,       # degrees: Multi-ACCDOA tracks of one class closer than this are one event (the baselines')
    azi_only=False,          # estimate azimuth only: DOA output is (x, y) per class instead of (x, y, z)
    augment=False,           # bool: label-exact spatial augmentation of the training sequences: one of the 16 rotations /
                             # reflections of the scene per sequence and epoch (8 for the tetrahedral array; augmentation.py)
    bn_momentum=0.99,        # momentum of the BatchNorm moving statistics (Keras' default, the paper's)
    gru_type='cudnn',        # cudnn (Keras 3 GRU: reset_after, sigmoid gates; cuDNN on GPUs) | original (the paper code's Keras 2.2.4 GRU: hard sigmoid, recurrent dropout; never cuDNN)

    # ---- training -----------------------------------------------------------------------------
    nb_epochs=1000,          # maximum number of epochs
    patience=None,           # epochs without improvement before stopping (>= 1); None = max(10, int(0.1 * nb_epochs))
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
    '8': dict(dataset='ansim', sequence_length=64, batch_size=32),  # ANSIM with short sequences, larger batches
    # The embedded default: the synthetic ANSIM look-alike a fresh clone trains on (44.1 kHz on disk, as TUT-2018),
    # tuned to finish synthesis, extraction, training and both test reports on 2 CPU cores within about 20 minutes
    # (RESULTS.md: the measured time and scores): features at 16 kHz (the STFT cost is proportional to the rate; FOA
    # encodes the direction the same way at every frequency), 2-s sequences (4x the optimizer steps of 512 frames at
    # the same cost per epoch), label-exact spatial augmentation, BatchNorm statistics that keep up with the
    # fast-changing weights of a short run, 30 epochs, and the unseen-DOA test set. The model and its constant
    # learning rate are the paper's; lr_schedule=cosine (measured on the earlier, purely tonal built-in sounds) and a
    # moving average of the weights did not score better (RESULTS.md).
    'embedded': dict(fs=16000, sequence_length=128, augment=True, bn_momentum=0.9, nb_epochs=30, patience=30,  # the main job
                     unseen_doa_dir='{dataset_dir}_unseen_doa'),
    # DCASE development sets (datasets.py): each year's SELDnet-style configuration, as far as SELDnet allows:
    # 20 ms hops, the baseline's feature sequence length, epochs and patience; 100 ms labels for 2020+.
    'tau2019sse': dict(dataset='tau2019sse', sequence_length=128, pool_size=[8, 8, 4], nb_epochs=50,  # DCASE 2019
                       patience=5),
    'tau2020sse_nigens': dict(dataset='tau2020sse_nigens', sequence_length=300, nb_epochs=50,  # DCASE 2020
                              patience=50),
    'tau2021sse_nigens': dict(dataset='tau2021sse_nigens', sequence_length=300, dropout_rate=0.05, nb_epochs=50,  # DCASE 2021
                              patience=50),
    'starss22': dict(dataset='starss22', sequence_length=250, dropout_rate=0.05, nb_epochs=100,  # DCASE 2022
                     patience=100),
    'starss23': dict(dataset='starss23', sequence_length=250, dropout_rate=0.05, nb_epochs=100,  # DCASE 2023/2024
                     patience=100),
    # The DCASE Task 3 baselines (keras_model.py: their models; each official parameters.py: their settings). 20-ms
    # feature frames pooled in time to 100-ms labels; sequence_length counts feature frames; patience = nb_epochs as
    # the official code. 2020/2021 were Keras 2 code: its GRU (gru_type=original) and BatchNorm; 2022+ PyTorch:
    # bn_momentum=0.9 is torch's momentum=0.1. Not reproduced: 2024's fine-tuning from the 2023 model (trained from
    # scratch here); 2024's early stopping uses the dataset's metric.
    'dcase2020_baseline': dict(dataset='tau2020sse_nigens', features='logmel_iv2020', output='seldnet', crnn='dcase2020',  # DCASE 2020 baseline: SELDnet heads, FOA
                               t_pool_size=[5, 1, 1], pool_size=[4, 4, 2], nb_cnn2d_filt=64, rnn_size=[128, 128],
                               fnn_size=[128], gru_type='original', dropout_rate=0.0, loss_weights=[1.0, 1000.0], doa_loss='masked_mse',
                               sequence_length=300, batch_size=256, nb_epochs=50, patience=50, learning_rate=0.001),
    'dcase2021_baseline': dict(dataset='tau2021sse_nigens', features='logmel_iv2021', output='accdoa', crnn='dcase2020',  # DCASE 2021 baseline: ACCDOA, FOA
                               t_pool_size=[5, 1, 1], pool_size=[4, 4, 2], nb_cnn2d_filt=64, rnn_size=[128, 128],
                               fnn_size=[128], gru_type='original', dropout_rate=0.05,
                               sequence_length=300, batch_size=256, nb_epochs=50, patience=50, learning_rate=0.001),
    'dcase2022_baseline': dict(dataset='starss22', features='logmel_iv', output='multi_accdoa',  # DCASE 2022 baseline: Multi-ACCDOA, FOA
                               t_pool_size=[5, 1, 1], pool_size=[4, 4, 2], nb_cnn2d_filt=64, rnn_size=[128, 128],
                               fnn_size=[128], nb_self_attn_layers=0, nb_heads=4, dropout_rate=0.05, bn_momentum=0.9,
                               sequence_length=250, batch_size=128, nb_epochs=100, patience=100, learning_rate=0.001),
    'dcase2023_baseline': dict(dataset='starss23', features='logmel_iv', output='multi_accdoa',  # DCASE 2023 baseline: + self-attention
                               t_pool_size=[5, 1, 1], pool_size=[4, 4, 2], nb_cnn2d_filt=64, rnn_size=[128, 128],
                               fnn_size=[128], nb_self_attn_layers=2, nb_heads=8, dropout_rate=0.05, bn_momentum=0.9,
                               sequence_length=250, batch_size=128, nb_epochs=100, patience=100, learning_rate=0.001),
    'dcase2024_baseline': dict(dataset='starss23', features='logmel_iv', output='multi_accddoa',  # DCASE 2024 baseline: Multi-ACCDDOA (distances)
                               t_pool_size=[5, 1, 1], pool_size=[4, 4, 2], nb_cnn2d_filt=64, rnn_size=[128, 128],
                               fnn_size=[128], nb_self_attn_layers=2, nb_heads=8, dropout_rate=0.05, bn_momentum=0.9,
                               sequence_length=250, batch_size=128, nb_epochs=250, patience=250, learning_rate=0.001),
    # 2025: the DCASE2025 Stereo SELD set (datasets.py: dcase25_task3). The official model reads 251 frames per 5-s
    # clip (its pooling drops the last); 250 here. It keeps the epoch of the best F (dcase2025/f_error = 1 - F).
    'dcase2025_baseline': dict(dataset='dcase25_task3', features='logmel_stereo',  # DCASE 2025: stereo, x, y, distance
                               output='multi_accddoa', azi_only=True, t_pool_size=[5, 1, 1], pool_size=[4, 4, 2],
                               nb_cnn2d_filt=64, rnn_size=[128, 128], fnn_size=[128], nb_self_attn_layers=2,
                               nb_heads=8, dropout_rate=0.05, bn_momentum=0.9, sequence_length=250, batch_size=256,
                               nb_epochs=200, patience=200, learning_rate=0.001, early_stop_metric='dcase2025/f_error'),
    '999': dict(quick_test=True, nb_epochs=2),                # quick test: 2 epochs on 2 batches
}

#: Types of the keys whose default is None (the others are typed like their default).
TYPES: dict[str, Any] = dict(patience=int, fs=int, nfft=int, hop_len_s=float, channels=[int], format=str,
                             early_stop_metric=str, synthesize=bool, unseen_doa_dir=str, t_pool_size=[int], crnn=str)
CHOICES = dict(gru_type=('cudnn', 'original'), lr_schedule=('constant', 'cosine'), jit_compile=('auto', True, False),
               fused_batchnorm=('auto', True, False),
               distribute=('none', 'mirrored', 'multiworker', 'dataparallel'),
               mixed_precision=('none', 'mixed_bfloat16', 'mixed_float16'),
               stage=('all', 'stats', 'features'), features=dcase_features.FEATURES,
               output=('seldnet', 'accdoa', 'multi_accdoa', 'multi_accddoa'), crnn=(None, 'seldnet', 'dcase2020', 'dcase2022'),
               doa_loss=('mse', 'masked_mse'))
_TRUE, _FALSE = ('1', 'true', 'yes', 'on'), ('0', 'false', 'no', 'off')
#: Largest FFT size accepted (2**16 samples: 1.4 s at 48 kHz).
MAX_NFFT = 65536
#: Integer rules: key -> (lowest, highest or None).
INT_RANGES: dict[str, tuple[int, int | None]] = dict(
    seed=(0, 2**32 - 1), synth_seed=(0, 2**32 - 1), overlap=(1, None), split=(1, None), db=(0, None),
    fs=(1000, 384000), nfft=(16, MAX_NFFT), nb_shards=(1, None), shard_index=(0, None), synth_nb_train=(1, None),
    synth_nb_test=(1, None), sequence_length=(1, None), batch_size=(1, None), nb_cnn2d_filt=(1, None),
    nb_epochs=(1, None), patience=(1, None), nb_self_attn_layers=(0, None), nb_heads=(1, None))
#: Number rules: key -> (rule text, test); every number must also be finite.
FLOAT_RULES: dict[str, tuple[str, Any]] = dict(
    val_fraction=('must be in [0, 1)', lambda v: 0 <= v < 1),
    hop_len_s=('must be > 0 seconds', lambda v: v > 0),
    synth_clip_len_s=('must be > 0 seconds', lambda v: v > 0),
    dropout_rate=('must be in [0, 1)', lambda v: 0 <= v < 1),
    learning_rate=('must be > 0', lambda v: v > 0),
    lr_warmup_epochs=('must be >= 0', lambda v: v >= 0),
    bn_momentum=('must be in [0, 1)', lambda v: 0 <= v < 1),
    sed_threshold=('must be strictly between 0 and 1', lambda v: 0 < v < 1),
    thresh_unify=('must be in [0, 180] degrees', lambda v: 0 <= v <= 180))


def _fail(key: str, value: Any, rule: str) -> SELDError:
    return SELDError(f'{key}={value!r}: {rule}')


def _parse_bool(key: str, text: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise _fail(key, text, 'must be a boolean (true/false)')


def _parse_int(key: str, text: str) -> int:
    try:
        return int(text)
    except ValueError as err:
        raise _fail(key, text, 'must be an integer') from err


def _parse_float(key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError as err:
        raise _fail(key, text, 'must be a number') from err
    if not math.isfinite(value):
        raise _fail(key, text, 'must be a finite number')
    return value


def _parse_value(key: str, text: str, default: Any) -> Any:
    """Parse ``text`` into the type of ``default`` (or of ``TYPES[key]`` for a None default); raise SELDError naming
    the key, the value and the rule."""
    if default is None:
        if text.strip().lower() in ('none', ''):
            return None
        kind = TYPES.get(key, str)
        default = [0] if isinstance(kind, list) else {bool: False, int: 0, float: 0.0}.get(kind, '')
    if isinstance(default, bool):
        return _parse_bool(key, text)
    if isinstance(default, int):
        return _parse_int(key, text)
    if isinstance(default, float):
        return _parse_float(key, text)
    if isinstance(default, list):
        src = text.strip()
        if src.startswith('[') != src.endswith(']'):
            raise _fail(key, text, 'must be a list such as 8,8,2 or [8,8,2]')
        src = src[1:-1] if src.startswith('[') else src
        items = [s.strip() for s in src.split(',')] if src.strip() else []
        if items and items[-1] == '':  # a trailing comma, as in [8,]
            items.pop()
        if any(not s for s in items):
            raise _fail(key, text, 'must be a list such as 8,8,2 (an empty item)')
        elem = type(default[0]) if default else float
        try:
            return [_parse_int(key, s) if elem is int else _parse_float(key, s) for s in items]
        except SELDError as err:
            raise _fail(key, text, f'must be a list of {"integers" if elem is int else "finite numbers"}') from err
    if True in CHOICES.get(key, ()):  # a word or a boolean, such as jit_compile=auto|true|false
        low = text.strip().lower()
        return True if low in _TRUE else False if low in _FALSE else low
    if '\x00' in text:
        raise _fail(key, text, 'must not contain a NUL character')
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

    _check_types(params)
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
        # dcase2025 has no SELD score: its baseline keeps the best F (f_error = 1 - F)
        params['early_stop_metric'] = f'{spec.metric}/{"f_error" if spec.metric == "dcase2025" else "seld_score"}'
    _validate(params)
    if params['patience'] is None:
        params['patience'] = max(10, int(0.1 * params['nb_epochs']))  # the paper's 10 %; a short run is not cut short
    default_dir = DEFAULTS['dataset_dir'].format(dataset='ansim')
    raw_dir = params['dataset_dir']
    params['dataset_dir'] = raw_dir.replace('{dataset}', params['dataset'])
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


def _expected_type(key: str) -> Any:
    """The type of a key's values: ``bool``, ``int``, ``float``, ``str`` or ``[elem]`` for a list."""
    default = DEFAULTS[key]
    if default is None:
        return TYPES.get(key, str)
    if isinstance(default, list):
        return [type(default[0]) if default else float]
    return type(default)


def _is(value: Any, kind: Any) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    return isinstance(value, kind)


def _check_types(p: dict[str, Any]) -> None:
    """Every value has its key's type (values given as Python objects, not strings, are checked here too); lists are
    made lists and integers ints."""
    for key in DEFAULTS:
        value, kind = p[key], _expected_type(key)
        if value is None and (DEFAULTS[key] is None or key in ('format', 'early_stop_metric', 'hop_len_s')):
            continue
        if True in CHOICES.get(key, ()) and isinstance(value, (bool, str)):
            continue
        if isinstance(kind, list):
            if not isinstance(value, (list, tuple)) or not all(_is(v, kind[0]) for v in value):
                raise _fail(key, value, f'must be a list of {kind[0].__name__}')
            p[key] = [kind[0](v) for v in value]
            continue
        if not _is(value, kind):
            name = {bool: 'a boolean', int: 'an integer', float: 'a number'}.get(kind, 'a string')
            raise _fail(key, value, f'must be {name}')
        if kind is int:
            p[key] = int(value)
        elif kind is float:
            p[key] = float(value)
            if not math.isfinite(p[key]):
                raise _fail(key, value, 'must be a finite number')
        elif kind is str and ('\x00' in value or (not value.strip() and key.endswith('_dir'))):
            raise _fail(key, value, 'must be a non-empty string without NUL characters')


def _validate(p: dict[str, Any]) -> None:
    """The rules of every value (after :func:`_check_types`); the first broken one raises a SELDError naming the key,
    the value and the rule."""
    spec = datasets.SPECS[p['dataset']]
    if p['format'] not in spec.audio_formats:
        raise SELDError(f"format={p['format']!r}: dataset {p['dataset']!r} has {', '.join(spec.audio_formats)}")
    for key, (low, high) in INT_RANGES.items():
        v = p[key]
        if v is not None and (v < low or (high is not None and v > high)):
            raise _fail(key, v, f'must be >= {low}' if high is None else f'must be in {low} .. {high}')
    for key, (rule, ok) in FLOAT_RULES.items():
        if p[key] is not None and not ok(p[key]):
            raise _fail(key, p[key], rule)
    nfft = p['nfft']
    if nfft is not None and nfft % 2:
        raise _fail('nfft', nfft, 'must be an even number of samples')
    if not p['pool_size'] or any(v < 1 for v in p['pool_size']):
        raise SELDError(f"pool_size={p['pool_size']}: must be a non-empty list of positive integers")
    prod = math.prod(p['pool_size'])
    if nfft is not None and (nfft // 2) % prod:
        raise SELDError(f"pool_size={p['pool_size']}: their product {prod} must divide nfft/2={nfft // 2}")
    for key in ('rnn_size', 'fnn_size'):
        if any(v < 1 for v in p[key]):
            raise SELDError(f'{key}={p[key]}: must be a list of positive numbers of units')
    if p['channels'] is not None and (not p['channels'] or any(c < 0 for c in p['channels'])
                                      or len(set(p['channels'])) != len(p['channels'])):
        raise SELDError(f"channels={p['channels']}: must be a non-empty list of distinct channel indices >= 0")
    if not p['lr_warmup_epochs'] < p['nb_epochs']:
        raise SELDError(f"lr_warmup_epochs={p['lr_warmup_epochs']}: must be at least 0 and less than "
                        f"nb_epochs={p['nb_epochs']}")
    if len(p['loss_weights']) != 2 or any(w < 0 for w in p['loss_weights']) or not any(p['loss_weights']):
        raise SELDError(f"loss_weights={p['loss_weights']}: must be [sed_weight, doa_weight], both >= 0, not both 0")
    if p['doa_loss'] != 'mse' and p['output'] != 'seldnet':
        raise SELDError(f"doa_loss={p['doa_loss']}: only for output=seldnet (its DOA head); output={p['output']} "
                        f"has its own loss")
    if p['augment'] and p['features'] != 'magphase':  # augmentation.py transforms magnitude and phase maps only
        raise SELDError(f"augment=true: the spatial augmentation works on features=magphase; "
                        f"features={p['features']} needs augment=false")
    if p['n_jobs'] == 0:
        raise _fail('n_jobs', 0, 'must be a number of jobs >= 1, or -1 for all cores (-2 all but one ...)')
    if p['shard_index'] >= p['nb_shards']:
        raise _fail('shard_index', p['shard_index'], f"must be in 0 .. nb_shards-1 = {p['nb_shards'] - 1}")
    for key, choices in CHOICES.items():
        if p[key] not in choices:
            raise SELDError(f'{key}={p[key]!r}: must be one of {", ".join(str(c).lower() for c in choices)}')
    # the definitions seld.py scores every epoch (seld.scoring_info); scipy is imported only here
    from metric_definitions import DEFAULT_DEFINITIONS as METRIC_DEFINITIONS

    metric = p['early_stop_metric']
    definition, slash, name = metric.partition('/')
    if datasets.SPECS[p['dataset']].metric == 'dcase2025':  # scored beside the defaults (seld.scoring_info)
        METRIC_DEFINITIONS = (*METRIC_DEFINITIONS, 'dcase2025')
    if slash and (definition not in METRIC_DEFINITIONS or not name):
        raise _fail('early_stop_metric', metric, f"must be '<definition>/<metric>' with a definition of "
                    f"{', '.join(METRIC_DEFINITIONS)} (e.g. seld2018/seld_score), or a loss (loss, sed_loss, doa_loss)")
    if not slash and metric not in ('loss', 'sed_loss', 'doa_loss'):
        raise _fail('early_stop_metric', metric, "must be '<definition>/<metric>' (e.g. seld2018/seld_score) or a "
                    'loss (loss, sed_loss, doa_loss)')


def _source_comments() -> tuple[list[tuple[str, str, str]], dict[str, str]]:
    """The comments of this file's ``DEFAULTS`` block (rows ``(section, key, comment)``; a section row has key '')
    and of ``TASKS`` (task-id -> its comment): the single source of the ``--help`` text."""
    with open(__file__, encoding='utf-8') as f:
        src = f.read()
    block = src[src.index('DEFAULTS: dict'):src.index('# fmt: on')]
    rows: list[tuple[str, str, str]] = []
    for line in block.splitlines()[1:]:
        section = re.match(r'\s*# ----\s*(.*?)\s*-*$', line)
        entry = re.match(r'\s{4}(\w+)=.*?,\s+#\s?(.*)$', line)
        more = re.match(r'\s{5,}#\s?(.*)$', line)
        if section:
            rows.append((section.group(1), '', ''))
        elif entry:
            rows.append(('', entry.group(1), entry.group(2).strip()))
        elif more and rows and rows[-1][1]:
            rows[-1] = (rows[-1][0], rows[-1][1], f'{rows[-1][2]} {more.group(1).strip()}')
    tasks: dict[str, str] = {}
    for line in src[src.index('TASKS: dict'):src.index('#: Types of the keys')].splitlines()[1:]:
        task = re.match(r"\s*'([^']+)':.*?(?:#\s?(.*))?$", line)
        if task:
            own = (task.group(2) or '').strip()
            tasks[task.group(1)] = own
    return rows, tasks


def help_text(usage: str) -> str:
    """The ``--help`` of the commands: usage, the task-ids and every key with its default and its comment, read from
    this file (no backend is imported)."""
    rows, tasks = _source_comments()
    out = [f'usage: {usage}', '', 'task-ids (parameter.TASKS; add yours there):']
    for tid, overrides in TASKS.items():
        settings = ' '.join(f'{k}={_show(v)}' for k, v in overrides.items())
        note = tasks.get(tid, '')
        out.append(f'  {tid:<18} {note}' + (f' [{settings}]' if settings else ''))
    out += ['', 'keys (key=value overrides the task-id; default, then meaning):']
    for section, key, comment in rows:
        if section:
            out += ['', f'  {section}:']
        else:
            out.append(f'    {key}={_show(DEFAULTS[key])}  {comment}')
    return '\n'.join(out)


def _show(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ','.join(str(v) for v in value)
    return str(value).lower() if isinstance(value, bool) or value is None else str(value)


def exit_on_help(argv: list[str], usage: str) -> None:
    """Print :func:`help_text` and exit 0 if ``argv`` asks for help (``-h`` or ``--help``)."""
    if any(a in ('-h', '--help') for a in argv):
        try:
            print(help_text(usage), flush=True)
        except BrokenPipeError:  # `--help | head`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(0)


def parse_cli(argv: list[str], positional: tuple[str, ...], usage: str) -> tuple[dict[str, str], list[str]]:
    """Split ``argv`` into positional arguments (those without '=') and ``key=value`` overrides.

    Missing positionals take the defaults ``job_id='1'`` and ``task_id='1'``; ``-h``/``--help`` prints
    :func:`help_text` and exits.
    """
    exit_on_help(argv, usage)
    pos = [a for a in argv if '=' not in a]
    overrides = [a for a in argv if '=' in a]
    if len(pos) > len(positional):
        raise SELDError(f'too many arguments {pos}; usage: {usage}')
    for name, value in zip(positional, pos):
        if value.startswith('-'):
            raise SELDError(f'{value!r}: unknown option; usage: {usage}')
        if not value.strip() or any(c in value for c in ('/', os.sep, '\x00')):
            raise SELDError(f'{name}={value!r}: must be a non-empty name without path separators; usage: {usage}')
    values = {name: '1' for name in positional}
    values.update(dict(zip(positional, pos)))
    return values, overrides

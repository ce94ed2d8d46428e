"""Check this project's DCASE baseline features and losses against the official baselines' code (DCASE 2020-2025).

The official code is imported at run time from the user's own clones; nothing of it is copied here. A repository
that is not found, or a part that needs a package that is not installed (PyTorch for the losses), is skipped with
a message.

    python benchmarks/compare_official_baselines.py --official DIR [--foa WAV] [--mic WAV] [--stereo WAV]
                                                    [--seconds 1.0] [--seed 0]

``DIR`` holds the clones under their GitHub names: ``seld-dcase2020`` ... ``seld-dcase2023``
(github.com/sharathadavanne), ``DCASE2024_seld_baseline``, ``DCASE2025_seld_baseline`` (github.com/partha2409).

Features
--------
Each year's official extraction runs on the same wav file as this project's (:func:`dcase_features.compute` on the
frames and window of :func:`cls_feature_class.framing_for`, the code path of ``features=``), at 24 kHz:

=====  ========================================  ====================================================================
year   ours                                      official
=====  ========================================  ====================================================================
2020   ``logmel_iv2020``, ``logmel_gcc``          ``cls_feature_class.FeatureClass``: ``_load_audio``,
2021   ``logmel_iv2021``, ``logmel_gcc``          ``_spectrogram``, ``_get_mel_spectrogram``, then
2022+  ``logmel_iv``, ``logmel_gcc``, ``salsa_lite``  ``_get_foa_intensity_vectors`` / ``_get_gcc`` / ``_get_salsalite``
2025   ``logmel_stereo``                         ``utils.load_audio``, ``utils.extract_log_mel_spectrogram``
=====  ========================================  ====================================================================

Only the ``FeatureClass`` statement and the ``nCr`` helper are executed from ``cls_feature_class.py`` (parsed with
``ast``; the module imports scikit-learn, matplotlib and in 2024 OpenCV), with ``numpy``, ``librosa``,
``scipy.io.wavfile``, ``os``, ``math``, ``wave`` and ``contextlib``; its ``__init__`` gets the repository's own
``parameters.py`` defaults with ``dataset`` and ``use_salsalite`` set. NumPy 2 removed ``np.int`` / ``np.float``,
which the 2022-2024 ``__init__`` use: they are set while the official code runs. 2020 and 2021 pad every file to
``max_audio_len_s`` (60 s) with noise of 1e-8: it is set to the excerpt's length. From the 2025 ``utils.py`` (which
imports PyTorch and OpenCV) only ``load_audio``, ``extract_stft`` and ``extract_log_mel_spectrogram`` are executed.
The official arrays are reshaped to ``(frames, bins, maps)`` (map-major for 2021+, band-major for 2020) and the
frames both sides have are compared. Without ``--foa`` / ``--mic`` / ``--stereo``, a seeded excerpt is synthesized
(noise bursts from two directions as FOA, on the tetrahedral array and as a stereo pair, 16-bit, 24 kHz).

Multi-track labels
------------------
:func:`multitrack_labels.adpit_labels` against the official ``FeatureClass.get_adpit_labels_for_file`` (2022-2024,
numpy only) on seeded random frames holding 0 to 4 instances of each of 13 classes (2024: with distances in cm).

Losses
------
With PyTorch installed: on seeded random outputs and multi-track targets (up to 3 instances of one class per
frame), ``losses.adpit_mse`` against ``MSELoss_ADPIT`` (``seldnet_model.py``, 2022-2024; 2024 with distances) and
``SELDLossADPIT`` (``loss.py``, 2025, audio), and ``losses.accdoa_mse`` against ``torch.nn.MSELoss``. 2020 (no
PyTorch needed): ``losses.masked_doa_mse`` against the official Keras 2 ``masked_mse`` of ``keras_model.py``, executed
with ``keras.ops`` under the Keras 2 backend names it calls, on random 14-class batches.

Parameters and model outputs
----------------------------
The parameter count of each year's official model against ``keras_model.get_model`` with the parameters of task-id
``dcase{year}_baseline`` (2020/2021 set ``crnn='dcase2020'``): all weights
and the trainable ones. 2022-2025: the PyTorch model as the official training script builds it (FOA +
Multi-ACCDOA/ACCDDOA, task 3; 2025: audio), its ``parameters()`` (= our trainable weights) plus its BatchNorm running
mean and variance (Keras counts them as weights). 2020/2021 (Keras 2.2.4/2.3.1 code): the official ``get_model``
statement run under Keras 3 with Keras 3's layers under the Keras 2 names it imports, ``channels_first`` as its
module sets, and a GRU with Keras 2's defaults (``reset_after=False``, hard sigmoid). With PyTorch, the 2022-2025
official model's initial weights (and random BatchNorm statistics) are copied into ours and both run in inference
mode on the same random features: the largest difference of their outputs.

Measured (2026-12-06; seld-dcase2020 384ad9b, 2021 f8e09db, 2022 c8adb1d, 2023 24d14c9, DCASE2024 0b07887, DCASE2025
42a48b6; librosa 0.11, NumPy 2.4; the synthesized 1-s excerpts, seed 0): largest differences 7.8e-4 dB in the
log-mel maps of 2020-2024 (this project's float32 STFT against the official float64 one; 4.7e-6 dB with float64
frames), 1.8e-6 in the intensity maps, 2.4e-6 in GCC-PHAT, 5.6e-4 dB and 5.3e-5 m in SALSA-Lite, 7.6e-6 dB in the
2025 log-mel maps (the official 2025 extraction has one frame more when the length is a whole number of hops:
librosa's ``1 + n // hop``); multi-track labels equal to float32 rounding (3.0e-8; 2.3e-7 with distances in m).
With PyTorch 2.14.1 (2026-12-06, same clones and excerpts): the ADPIT losses within 6.0e-8 of
``MSELoss_ADPIT`` (2022-2024) and ``SELDLossADPIT`` (2025), ACCDOA within 6.0e-8 of ``torch.nn.MSELoss``; every
year's parameter count equal (2020 513,288, 2021 494,196, 2022 604,917, 2023 737,525, 2024 742,556, 2025 734,645
weights); the 2022-2025 outputs with the official weights within 9e-7.

Output: one line per comparison (year, what, the largest absolute difference, the largest official value for
scale) and, per year, the largest difference. Exit status 2 if no official repository was found.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.util
import io
import math
import os
import sys
import tempfile
import warnings
import wave
from typing import Any, Iterator

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import dcase_features as dcf  # noqa: E402
from cls_feature_class import _frames, framing_for, read_audio  # noqa: E402
from multitrack_labels import adpit_labels  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_official_metrics import import_file, legacy_environment  # noqa: E402  (np.float & co., IPython stub)

@contextlib.contextmanager
def legacy_numpy() -> Iterator[None]:
    """compare_official_metrics.legacy_environment plus ``np.int`` (removed in NumPy 2), which the 2022-2024
    ``FeatureClass.__init__`` uses (the shared helper sets ``np.float`` and ``np.NaN`` only)."""
    added = 'int' not in vars(np)
    if added:
        np.int = int
    try:
        with legacy_environment():
            yield
    finally:
        if added:
            del np.int


REPOS = {2020: 'seld-dcase2020', 2021: 'seld-dcase2021', 2022: 'seld-dcase2022', 2023: 'seld-dcase2023',
         2024: 'DCASE2024_seld_baseline', 2025: 'DCASE2025_seld_baseline'}
#: year -> [(official dataset format, use_salsalite, our features)]
FEATURES = {2020: [('foa', False, 'logmel_iv2020'), ('mic', False, 'logmel_gcc')],
            2021: [('foa', False, 'logmel_iv2021'), ('mic', False, 'logmel_gcc')],
            **{y: [('foa', False, 'logmel_iv'), ('mic', False, 'logmel_gcc'), ('mic', True, 'salsa_lite')]
               for y in (2022, 2023, 2024)},
            2025: [('stereo', False, 'logmel_stereo')]}
FS = 24000


# ==================================================================================================
# Loading the official code
# ==================================================================================================
def exec_parts(path: str, names: set[str], namespace: dict[str, Any]) -> dict[str, Any]:
    """Execute only the top-level classes and functions ``names`` of an official file (module docstring)."""
    with open(path, encoding='utf-8') as fh:
        tree = ast.parse(fh.read(), filename=path)
    body = [n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name in names]
    missing = names - {n.name for n in body}
    if missing:
        raise ImportError(f'{path}: no {", ".join(sorted(missing))}')
    ns = dict(namespace, __name__='official_' + os.path.basename(path)[:-3])
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', SyntaxWarning)  # 2020/2021: `self._dataset is 'foa'` (not executed here)
        code = compile(ast.Module(body=body, type_ignores=[]), path, 'exec')
    exec(code, ns)
    return ns


def official_params(folder: str, year: int) -> dict[str, Any]:
    """The repository's own parameter defaults (``get_params()``, its prints silenced; 2025: ``params``)."""
    name = 'parameter.py' if year <= 2021 else 'parameters.py'
    with contextlib.redirect_stdout(io.StringIO()):
        mod = import_file(os.path.join(folder, name), f'official_params_{year}')
        return dict(mod.get_params() if hasattr(mod, 'get_params') else mod.params)


# ==================================================================================================
# Features
# ==================================================================================================
def write_excerpts(folder: str, *, seconds: float, seed: int) -> dict[str, str]:
    """Seeded 16-bit excerpts: FOA (ACN/SN3D), the tetrahedral array (free field) and a stereo pair."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    n = int(round(seconds * FS))
    t = np.arange(n)
    dirs = [(np.deg2rad(40), np.deg2rad(10)), (np.deg2rad(-110), np.deg2rad(-20))]
    burst = [rng.standard_normal(n) * (np.sin(2 * np.pi * t / n * (k + 1)) > 0) for k in range(2)]
    u = [np.array([np.cos(a) * np.cos(e), np.sin(a) * np.cos(e), np.sin(e)]) for a, e in dirs]
    foa = sum(s[:, None] * np.array([1, v[1], v[2], v[0]]) for s, v in zip(burst, u))
    mic_dirs = np.deg2rad([(45, 35), (-45, -35), (135, -35), (-135, 35)])
    mics = 0.042 * np.stack([np.cos(mic_dirs[:, 0]) * np.cos(mic_dirs[:, 1]),
                             np.sin(mic_dirs[:, 0]) * np.cos(mic_dirs[:, 1]), np.sin(mic_dirs[:, 1])], axis=1)
    f = np.fft.rfftfreq(n, 1 / FS)
    mic = sum(np.fft.irfft(np.fft.rfft(s)[:, None] * np.exp(2j * np.pi * f[:, None] * (mics @ v) / 343.0), n=n,
                           axis=0) for s, v in zip(burst, u))
    stereo = np.stack([burst[0] + 0.3 * burst[1], 0.5 * burst[0] + burst[1]], axis=1)
    paths = {}
    for name, x in (('foa', foa), ('mic', mic), ('stereo', stereo)):
        x = 0.1 * x / np.abs(x).max() + 1e-3 * rng.standard_normal(x.shape)
        paths[name] = os.path.join(folder, f'{name}.wav')
        sf.write(paths[name], x, FS, subtype='PCM_16')
    return paths


def ours(wav: str, features: str, fmt: str) -> np.ndarray:
    audio = read_audio(wav, nb_channels=2 if fmt == 'stereo' else 4)[0]
    framing = framing_for(fs=FS, nfft=None, hop_len_s=0.02)
    return dcf.compute(_frames(audio, framing, None)[0], window=framing.window(), features=features, fs=FS,
                       audio_format=fmt)


def official_2020_2024(folder: str, year: int, wav: str, fmt: str, salsa: bool) -> np.ndarray:
    """The official features of ``wav`` as ``(frames, bins, maps)``."""
    import contextlib as _contextlib
    import librosa
    import scipy.io.wavfile

    ns = exec_parts(os.path.join(folder, 'cls_feature_class.py'), {'FeatureClass', 'nCr'},
                    dict(np=np, librosa=librosa, wav=scipy.io.wavfile, os=os, math=math, wave=wave,
                         contextlib=_contextlib))
    params = official_params(folder, year)
    params.update(dataset=fmt, use_salsalite=salsa, fs=FS)
    with wave.open(wav) as w:
        nb_samples = w.getnframes()
    if year <= 2021:
        params['max_audio_len_s'] = nb_samples / FS  # no padding to 60 s (module docstring)
    fc = ns['FeatureClass'](params)
    if year <= 2021:
        spect = fc._spectrogram(fc._load_audio(wav)[0])
    else:
        spect = fc._get_spectrogram_for_file(wav)
    if salsa:
        flat = fc._get_salsalite(spect)
    else:
        spatial = fc._get_foa_intensity_vectors(spect) if fmt == 'foa' else fc._get_gcc(spect)
        flat = np.concatenate((fc._get_mel_spectrogram(spect), spatial), axis=-1)
    frames, bins = flat.shape[0], (fc._nb_mel_bins if not salsa else fc._cutoff_bin - fc._lower_bin)
    if year == 2020:  # band-major: (frames, bands, maps) per part, concatenated
        nb_mel_maps = spect.shape[-1]
        mel = flat[:, :bins * nb_mel_maps].reshape(frames, bins, nb_mel_maps)
        return np.concatenate([mel, flat[:, bins * nb_mel_maps:].reshape(frames, bins, -1)], axis=-1)
    return flat.reshape(frames, -1, bins).transpose(0, 2, 1)


def official_2025(folder: str, wav: str) -> np.ndarray:
    import librosa
    import librosa.feature

    ns = exec_parts(os.path.join(folder, 'utils.py'), {'load_audio', 'extract_stft', 'extract_log_mel_spectrogram'},
                    dict(np=np, librosa=librosa))
    p = official_params(folder, 2025)
    hop = int(p['sampling_rate'] * p['hop_length_s'])  # as extract_features.SELDFeatureExtractor
    win = 2 * hop
    audio, sr = ns['load_audio'](wav, p['sampling_rate'])
    feat = ns['extract_log_mel_spectrogram'](audio, sr, 2 ** (win - 1).bit_length(), hop, win, p['nb_mels'])
    return feat.transpose(1, 2, 0)  # (2, frames, bands) -> (frames, bands, 2)


def groups(features: str, nb_maps: int) -> list[tuple[str, slice]]:
    """The parts of a feature array compared separately (their scales differ)."""
    if features == 'logmel_stereo':
        return [('log-mel dB', slice(0, 2))]
    if features == 'salsa_lite':
        return [('log-spectrum dB', slice(0, 4)), ('phase differences m', slice(4, nb_maps))]
    return [('log-mel dB', slice(0, 4)), ('intensity' if 'iv' in features else 'GCC-PHAT', slice(4, nb_maps))]


def compare_features(folder: str, year: int, wavs: dict[str, str]) -> list[tuple[str, float, float]]:
    rows = []
    for fmt, salsa, features in FEATURES[year]:
        with legacy_numpy():
            off = official_2025(folder, wavs[fmt]) if year == 2025 else \
                official_2020_2024(folder, year, wavs[fmt], fmt, salsa)
        mine = ours(wavs[fmt], features, fmt)
        n = min(len(off), len(mine))
        if off.shape[1:] != mine.shape[1:]:
            rows.append((f'{features}: shapes differ, official {off.shape}, ours {mine.shape}', math.nan, math.nan))
            continue
        for name, sl in groups(features, mine.shape[-1]):
            diff = float(np.abs(off[:n, :, sl] - mine[:n, :, sl]).max())
            rows.append((f'{features} {name} ({n} frames, frames {len(off)} official / {len(mine)} ours)', diff,
                         float(np.abs(off[:n, :, sl]).max())))
    return rows


# ==================================================================================================
# Multi-track labels
# ==================================================================================================
def compare_labels(folder: str, year: int, *, seed: int) -> list[tuple[str, float, float]]:
    """:func:`multitrack_labels.adpit_labels` against the official ``get_adpit_labels_for_file`` (2022-2024) on
    seeded random frames with 0-4 instances of each class, rows in random order."""
    if year not in (2022, 2023, 2024):
        return []
    ns = exec_parts(os.path.join(folder, 'cls_feature_class.py'), {'FeatureClass'}, dict(np=np, os=os, math=math))
    fc = object.__new__(ns['FeatureClass'])
    fc._nb_unique_classes = C = 13
    rng = np.random.default_rng(seed)
    nb_frames, dist = 60, year == 2024
    rows = []  # (frame, class, track, x, y, z[, distance in cm]) in metadata order
    for frame in range(nb_frames + 2):  # 2 frames past the end, dropped by both
        for cls in range(C):
            for track in range(int(rng.integers(0, 5))):
                v = rng.normal(size=3)
                rows.append([frame, cls, track, *(v / np.linalg.norm(v))] + ([float(rng.integers(50, 500))]
                                                                          if dist else []))
    rows = [rows[i] for i in rng.permutation(len(rows))]
    rows.sort(key=lambda r: r[0])  # by frame, classes mixed within a frame
    desc: dict[int, list] = {}
    for r in rows:
        desc.setdefault(r[0], []).append(list(r[1:]))
    off = fc.get_adpit_labels_for_file(desc, nb_frames)
    arr = np.array(rows)
    values = arr[:, 3:6] if not dist else np.concatenate([arr[:, 3:6], arr[:, 6:7] / 100], axis=1)
    mine = adpit_labels(arr[:, 0], arr[:, 1], values, nb_frames=nb_frames, nb_classes=C)
    if off.shape != mine.shape:
        return [(f'multi-track labels: shapes differ, official {off.shape}, ours {mine.shape}', math.nan, math.nan)]
    return [(f'multi-track labels ({len(rows)} rows, {nb_frames} frames)', float(np.abs(off - mine).max()),
             float(np.abs(off).max()))]


# ==================================================================================================
# Losses
# ==================================================================================================
def random_multitrack(rng: np.random.Generator, *, batch: int, frames: int, classes: int, values: int) -> np.ndarray:
    """Random targets of :func:`multitrack_labels.adpit_labels`: 0-4 instances per frame and class."""
    out = []
    for _ in range(batch):
        count = rng.integers(0, 5, size=(frames, classes))
        frame, cls = np.nonzero(count)
        reps = count[frame, cls]
        frame, cls = np.repeat(frame, reps), np.repeat(cls, reps)
        out.append(adpit_labels(frame, cls, rng.uniform(-1, 1, size=(len(frame), values)), nb_frames=frames,
                                nb_classes=classes))
    return np.stack(out).astype(np.float32)


def masked_mse_2020(folder: str, *, seed: int) -> list[tuple[str, float, float]]:
    """The official Keras 2 ``masked_mse`` (seld-dcase2020 ``keras_model.py``) executed with Keras 3's ``ops``
    under the Keras 2 backend names it calls (``repeat_elements``, ``cast``, ``sqrt``, ``sum``, ``square``), against
    :func:`losses.masked_doa_mse` on random batches of the 2020 layout (14 classes, SED then x, y, z blocks)."""
    import types

    import losses
    from keras import ops

    backend = types.SimpleNamespace(repeat_elements=lambda x, rep, axis: ops.repeat(x, rep, axis=axis),
                                    cast=ops.cast, sqrt=ops.sqrt, sum=ops.sum, square=ops.square)
    official = exec_parts(os.path.join(folder, 'keras_model.py'), {'masked_mse'},
                          dict(keras=types.SimpleNamespace(backend=backend)))['masked_mse']
    rng, C, rows = np.random.default_rng(seed), 14, []
    for b, t in ((4, 60), (2, 10)):
        act = rng.random((b, t, C)) < 0.3
        vec = rng.normal(size=(b, t, 3, C))
        doa = (vec / np.linalg.norm(vec, axis=2, keepdims=True) * act[:, :, None, :]).reshape(b, t, 3 * C)
        out = rng.uniform(-1, 1, size=(b, t, 4 * C))
        y_gt = np.concatenate([act, doa], axis=-1).astype(np.float32)  # the official doa_concat target
        ref = float(ops.convert_to_numpy(official(y_gt, out.astype(np.float32))))
        mine = float(ops.convert_to_numpy(ops.mean(losses.masked_doa_mse(doa.astype(np.float32),
                                                                          out[:, :, C:].astype(np.float32)))))
        rows.append((f'masked DOA loss (official masked_mse, Keras 3 ops), batch {b} x {t} frames', abs(ref - mine),
                     abs(ref)))
    return rows


def compare_losses(folder: str, year: int, *, seed: int) -> list[tuple[str, float, float]]:
    if year == 2020:
        return masked_mse_2020(folder, seed=seed)
    import torch

    import losses
    from keras import ops

    rng = np.random.default_rng(seed)
    rows = []
    if year in (2022, 2023, 2024):
        with legacy_environment():
            official = import_file(os.path.join(folder, 'seldnet_model.py'), f'official_model_{year}').MSELoss_ADPIT()
        values, elements = (4, 4) if year == 2024 else (3, 3)
    elif year == 2025:
        mod = import_file(os.path.join(folder, 'loss.py'), 'official_loss_2025')
        official = mod.SELDLossADPIT(dict(modality='audio'))
        values, elements = 4, 3  # our targets (act, x, y, dist, on-screen), outputs (x, y, dist); the official
        # audio loss takes (act, x, y, dist): the on-screen value is left out of its targets, ours ignores it
    else:
        return [('loss: Keras 2 ACCDOA mse, no official PyTorch loss (the ACCDOA row of 2022+ is the same MSE)',
                 math.nan, math.nan)]
    C = 13
    for b, t in ((4, 50), (2, 10)):
        target = random_multitrack(rng, batch=b, frames=t, classes=C, values=values)
        output = rng.uniform(-1, 1, size=(b, t, 3 * elements * C)).astype(np.float32)
        official_target = target[:, :, :, :4] if year == 2025 else target
        ref = float(official(torch.from_numpy(output), torch.from_numpy(np.ascontiguousarray(official_target))))
        mine = float(ops.convert_to_numpy(ops.mean(losses.adpit_mse(target, output, nb_elements=elements))))
        rows.append((f'ADPIT loss, batch {b} x {t} frames', abs(ref - mine), abs(ref)))
    y, o = rng.uniform(-1, 1, size=(2, 2, 50, 3 * C)).astype(np.float32)
    ref = float(torch.nn.MSELoss()(torch.from_numpy(o), torch.from_numpy(y)))
    mine = float(ops.convert_to_numpy(ops.mean(losses.accdoa_mse(y, o))))
    rows.append(('ACCDOA loss (torch.nn.MSELoss)', abs(ref - mine), abs(ref)))
    return rows


# ==================================================================================================
# Parameter counts
# ==================================================================================================
#: The official model inputs (maps, feature frames, bands) and outputs of each year's baseline (FOA log-mel +
#: intensity; 2025: stereo log-mel), as its parameters.py / data generator give them.
OFFICIAL_SHAPES = {2020: ((7, 300, 64), 14), 2021: ((7, 300, 64), 12), 2022: ((7, 250, 64), 13),
                   2023: ((7, 250, 64), 13), 2024: ((7, 250, 64), 13), 2025: ((2, 251, 64), 13)}


def keras2_count(folder: str, year: int) -> tuple[int, int]:
    """The official Keras 2 ``get_model`` (2020: SED + DOA with ``masked_mse``; 2021: ACCDOA) built under Keras 3:
    its statement runs with Keras 3's layers under the Keras 2 names it imports, ``channels_first`` as its module
    sets, and Keras 2.2.4/2.3.1's GRU defaults (``reset_after=False``, hard-sigmoid gates; Keras 3's defaults have
    a second bias). Returns (all weights, trainable)."""
    import functools

    import keras
    from keras import layers

    names = {'get_model', 'masked_mse'}
    ns = exec_parts(os.path.join(folder, 'keras_model.py'), names, dict(
        np=np, keras=keras, Model=keras.Model, Adam=keras.optimizers.Adam, load_model=keras.saving.load_model,
        GRU=functools.partial(layers.GRU, reset_after=False, recurrent_activation='hard_sigmoid'),
        **{n: getattr(layers, n) for n in ('Bidirectional', 'Conv2D', 'MaxPooling2D', 'Input', 'Concatenate', 'Dense',
                                           'Activation', 'Dropout', 'Reshape', 'Permute', 'BatchNormalization',
                                           'TimeDistributed')}))
    p = official_params(folder, year)
    (maps, frames, bands), classes = OFFICIAL_SHAPES[year]
    res = int(p['label_hop_len_s'] // p['hop_len_s'])
    data_in = (p['batch_size'], maps, frames, bands)
    labels = frames // res
    data_out = (p['batch_size'], labels, 3 * classes) if year == 2021 else \
        [(p['batch_size'], labels, classes), (p['batch_size'], labels, 3 * classes)]
    kw = dict(data_in=data_in, data_out=data_out, dropout_rate=p['dropout_rate'], nb_cnn2d_filt=p['nb_cnn2d_filt'],
              f_pool_size=p['f_pool_size'], t_pool_size=[res, 1, 1], rnn_size=p['rnn_size'], fnn_size=p['fnn_size'],
              weights=p['loss_weights'], doa_objective=p['doa_objective'])
    if year == 2021:
        kw['is_accdoa'] = p['is_accdoa']
    old = keras.config.image_data_format()
    keras.config.set_image_data_format('channels_first')
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            model = ns['get_model'](**kw)
    finally:
        keras.config.set_image_data_format(old)
    return model.count_params(), sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def torch_model(folder: str, year: int) -> Any:
    """The official PyTorch model (2022 ``CRNN``, 2023/2024 ``SeldModel``: task 3, FOA + Multi-ACCDOA/ACCDDOA, as
    ``train_seldnet.py`` builds it; 2025 ``SELDModel``, audio)."""
    (maps, frames, bands), classes = OFFICIAL_SHAPES[year]
    if year == 2025:
        with legacy_environment():
            mod = import_file(os.path.join(folder, 'model.py'), 'official_model_2025')
        net = mod.SELDModel(dict(official_params(folder, 2025), modality='audio', multiACCDOA=True))
    else:
        with legacy_environment(), contextlib.redirect_stdout(io.StringIO()):
            mod = import_file(os.path.join(folder, 'seldnet_model.py'), f'official_model_{year}')
            p = import_file(os.path.join(folder, 'parameters.py'), f'official_params_{year}_3').get_params('3')
        p['unique_classes'] = classes
        out = 3 * (4 if year == 2024 else 3) * classes
        net = getattr(mod, 'CRNN' if year == 2022 else 'SeldModel')((1, maps, frames, bands), (1, frames // 5, out), p)
    return net


def torch_count(folder: str, year: int) -> tuple[int, int]:
    """The official PyTorch model's (parameters + BatchNorm running mean and variance, parameters): Keras counts the
    running statistics as (non-trainable) weights."""
    net = torch_model(folder, year)
    params = sum(t.numel() for t in net.parameters())
    stats = sum(t.numel() for name, t in net.named_buffers() if name.endswith(('running_mean', 'running_var')))
    return params + stats, params


def ours_model(year: int) -> Any:
    """``keras_model.get_model`` (uncompiled) with the parameters of task-id ``dcase{year}_baseline`` (2020/2021:
    ``crnn='dcase2020'``, the official code's BatchNorm over frequency bins)."""
    import datasets
    import keras_model
    import parameter

    p = parameter.get_params(f'dcase{year}_baseline')
    spec = datasets.SPECS[p['dataset']]
    nb_channels = len(p['channels']) if p['channels'] else spec.nb_channels
    nb_bins, maps = dcf.layout(p['features'], nb_channels=nb_channels, audio_format=p['format'], fs=spec.fs,
                               nfft=1024)
    model = keras_model.get_model(
        nb_frames=p['sequence_length'], nb_bins=nb_bins, nb_channels=nb_channels, nb_maps=len(maps),
        nb_classes=len(spec.classes), azi_only=p['azi_only'], dropout_rate=p['dropout_rate'],
        nb_cnn2d_filt=p['nb_cnn2d_filt'], pool_size=p['pool_size'], rnn_size=p['rnn_size'], fnn_size=p['fnn_size'],
        gru_type=p['gru_type'], output=p['output'], t_pool_size=p['t_pool_size'],
        nb_self_attn_layers=p['nb_self_attn_layers'], nb_heads=p['nb_heads'],
        crnn=p['crnn'], compile=False)
    return model


def ours_count(year: int) -> tuple[int, int]:
    model = ours_model(year)
    return model.count_params(), sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def compare_parameters(folder: str, year: int, has_torch: bool) -> list[tuple[str, float, float]]:
    if year >= 2022 and not has_torch:
        return [('parameters: skipped (PyTorch is not installed)', math.nan, math.nan)]
    off = keras2_count(folder, year) if year <= 2021 else torch_count(folder, year)
    mine = ours_count(year)
    how = 'Keras 2 code under Keras 3' if year <= 2021 else 'PyTorch'
    task = f'dcase{year}_baseline'
    return [(f'parameters ({how}): official {off[0]:,} ({off[1]:,} trainable), ours {task} '
             f'{mine[0]:,} ({mine[1]:,} trainable)', float(abs(off[0] - mine[0]) + abs(off[1] - mine[1])),
             float(off[0]))]


def copy_torch_weights(net: Any, model: Any) -> None:
    """Set the Keras model's weights to the PyTorch model's (both in their layouts: NCHW and gates r, z, n there;
    NHWC and gates z, r, h here; the first GRU reads (bands, filters) here, (filters, bands) there)."""
    sd = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    convs = sorted({k.rsplit('.', 2)[0] for k in sd if k.endswith('conv.weight')}, key=lambda c: int(c.split('.')[1]))
    for i, c in enumerate(convs):
        kernel = sd[c + '.conv.weight'].transpose(2, 3, 1, 0)  # (out, in, kt, kf) -> (kt, kf, in, out)
        model.get_layer(f'conv{i + 1}').set_weights([kernel, sd[c + '.conv.bias']])
        model.get_layer(f'bn{i + 1}').set_weights([sd[c + '.bn.' + n] for n in ('weight', 'bias', 'running_mean',
                                                                                'running_var')])

    def zrh(w: np.ndarray) -> np.ndarray:  # torch's (3u, ...) gate blocks r, z, n -> Keras' z, r, h
        r, z, n = np.split(w, 3, axis=0)
        return np.concatenate([z, r, n], axis=0)

    filters = model.get_layer('conv1').filters
    bands = model.get_layer('to_sequence').output.shape[-1] // filters
    for layer in range(len([k for k in sd if k.startswith('gru.weight_ih_l') and not k.endswith('reverse')])):
        weights = []
        for suffix in ('', '_reverse'):
            w_ih, w_hh = sd[f'gru.weight_ih_l{layer}{suffix}'], sd[f'gru.weight_hh_l{layer}{suffix}']
            if layer == 0:  # torch input index filter * bands + band; ours band * filters + filter
                w_ih = w_ih.reshape(-1, filters, bands).transpose(0, 2, 1).reshape(w_ih.shape[0], -1)
            weights += [zrh(w_ih).T, zrh(w_hh).T, np.stack([zrh(sd[f'gru.bias_ih_l{layer}{suffix}']),
                                                            zrh(sd[f'gru.bias_hh_l{layer}{suffix}'])])]
        model.get_layer(f'bigru{layer + 1}').set_weights(weights)
    mhsa = sorted({k.split('.')[1] for k in sd if k.startswith(('mhsa_block_list.', 'mhsa_layers.'))})
    for i, j in enumerate(mhsa):
        prefix = 'mhsa_block_list' if f'mhsa_block_list.{j}.in_proj_weight' in sd else 'mhsa_layers'
        norm = 'layer_norm_list' if prefix == 'mhsa_block_list' else 'layer_norms'
        layer = model.get_layer(f'mhsa{i + 1}')
        heads, dim = layer.num_heads, layer.key_dim
        w, b = sd[f'{prefix}.{j}.in_proj_weight'], sd[f'{prefix}.{j}.in_proj_bias']
        E = w.shape[1]
        qkv = []
        for k in range(3):
            qkv += [w[k * E:(k + 1) * E].T.reshape(E, heads, dim), b[k * E:(k + 1) * E].reshape(heads, dim)]
        qkv += [sd[f'{prefix}.{j}.out_proj.weight'].T.reshape(heads, dim, E), sd[f'{prefix}.{j}.out_proj.bias']]
        layer.set_weights(qkv)
        model.get_layer(f'mhsa{i + 1}_norm').set_weights([sd[f'{norm}.{j}.weight'], sd[f'{norm}.{j}.bias']])
    fc = sorted({k.split('.')[1] for k in sd if k.startswith('fnn_list.')}, key=int)
    names = [f'accdoa_fc{i + 1}' for i in range(len(fc) - 1)] + ['accdoa_fc_out']
    for name, j in zip(names, fc):
        model.get_layer(name).set_weights([sd[f'fnn_list.{j}.weight'].T, sd[f'fnn_list.{j}.bias']])


def compare_outputs(folder: str, year: int, *, seed: int) -> list[tuple[str, float, float]]:
    """The official PyTorch model and ours (task-id ``dcase{year}_baseline``) with the same weights (the official
    model's at initialization, BatchNorm running statistics drawn at random), in inference mode, on the same random
    features."""
    if year <= 2021:
        return []
    import torch
    from keras import ops

    torch.manual_seed(seed)
    net = torch_model(folder, year).eval()
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for name, buf in net.named_buffers():
            if name.endswith('running_mean'):
                buf.copy_(torch.from_numpy(rng.normal(0, 0.5, buf.shape).astype(np.float32)))
            elif name.endswith('running_var'):
                buf.copy_(torch.from_numpy(rng.uniform(0.5, 2, buf.shape).astype(np.float32)))
    model = ours_model(year)
    copy_torch_weights(net, model)
    (maps, _, bands), _ = OFFICIAL_SHAPES[year]
    frames = model.input.shape[1]
    x = rng.standard_normal((2, maps, frames, bands)).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    mine = ops.convert_to_numpy(model(x.transpose(0, 2, 3, 1), training=False)['accdoa_out'])
    return [(f'model output, official weights, 2 x {frames} random frames (inference)', float(np.abs(ref - mine).max()),
             float(np.abs(ref).max()))]


# ==================================================================================================
def find_clones(official: str, repos: dict[int, str]) -> dict[int, str]:
    """``{year: folder}`` of the clones of ``repos`` under ``official``; each one missing is printed as skipped."""
    found = {y: os.path.join(official, r) for y, r in repos.items() if os.path.isdir(os.path.join(official, r))}
    for y, r in repos.items():
        if y not in found:
            print(f'{y}: {r} not found under {official}: skipped')
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--official', required=True, help='folder of the clones of the official repositories')
    ap.add_argument('--foa', help='a 4-channel FOA wav at 24 kHz (default: a synthesized excerpt)')
    ap.add_argument('--mic', help='a 4-channel tetrahedral-array wav at 24 kHz')
    ap.add_argument('--stereo', help='a 2-channel wav at 24 kHz')
    ap.add_argument('--seconds', type=float, default=1.0, help='length of the synthesized excerpts')
    ap.add_argument('--seed', type=int, default=0)
    args = ap.parse_args(argv)
    found = find_clones(args.official, REPOS)
    if not found:
        return 2
    has_torch = importlib.util.find_spec('torch') is not None
    with tempfile.TemporaryDirectory() as tmp:
        wavs = write_excerpts(tmp, seconds=args.seconds, seed=args.seed)
        wavs.update({k: v for k, v in (('foa', args.foa), ('mic', args.mic), ('stereo', args.stereo)) if v})
        for year, folder in found.items():
            rows: list[tuple[str, float, float]] = []
            for what, compare in (('features', lambda: compare_features(folder, year, wavs)),
                                  ('labels', lambda: compare_labels(folder, year, seed=args.seed)),
                                  ('loss', lambda: compare_losses(folder, year, seed=args.seed)),
                                  ('parameters', lambda: compare_parameters(folder, year, has_torch)),
                                  ('outputs', lambda: compare_outputs(folder, year, seed=args.seed))):
                if what in ('loss', 'outputs') and not has_torch and not (what == 'loss' and year == 2020):
                    rows.append((f'{what}: skipped (PyTorch is not installed)', math.nan, math.nan))
                    continue
                try:
                    rows += compare()
                except Exception as err:  # an official file that does not load here: say so, go on
                    rows.append((f'{what}: skipped ({type(err).__name__}: {err})', math.nan, math.nan))
            for text, diff, scale in rows:
                print(f'{year}  {text}: ' + ('' if math.isnan(diff) else f'max |difference| {diff:.3g} '
                                             f'(largest official value {scale:.3g})'))
            diffs = [d for _, d, _ in rows if not math.isnan(d)]
            print(f'{year}  LARGEST DIFFERENCE: {max(diffs):.3g}' if diffs else f'{year}  nothing compared')
    return 0


if __name__ == '__main__':
    sys.exit(main())

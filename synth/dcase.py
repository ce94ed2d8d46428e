"""Synthesize look-alikes of the DCASE SELD development sets (2019-2025) in the layouts datasets.py reads.

The real development sets are recordings (STARSS) or syntheses from measured room responses and recorded sound
events (TAU 2019-2021) that cannot be downloaded here. This module makes SYNTHETIC stand-ins with the same file
names, folders, folds, sample rates, class lists and metadata formats, so that the whole pipeline (extraction,
labels, training, prediction files, scoring) runs on every layout. Run it through synthesize_dataset.py::

    python synthesize_dataset.py dataset=tau2020sse_nigens dataset_dir=data/tau2020sse_nigens
    python synthesize_dataset.py dataset=starss23 format=mic dist=true nb_per_fold=2
    python synthesize_dataset.py dataset=tau2019sse sound_bank=../shared/data/dcase2016_task2_train
    python synthesize_dataset.py dataset=dcase25_task3 dataset_dir=data/dcase25_task3

Keys (default) | ``dataset`` (tau2019sse, tau2020sse_nigens, tau2021sse_nigens, starss22, starss23) |
``format`` (foa; or mic) | ``dataset_dir`` (data/{dataset}) | ``nb_per_fold`` (4; STARSS 3: recordings per fold,
for STARSS and 2021's dev-train per fold and sub-folder) | ``clip_len_s`` (20.0) | ``clip_len_max_s`` (0 = every
recording lasts clip_len_s; STARSS 40: lengths uniform in [clip_len_s, clip_len_max_s], whole 100 ms) |
``overlap`` (2019/2020: 2, the recordings alternate ov1 / ov2; else 3) | ``db`` (30.0, the SNR) | ``reverb``
(true) | ``moving`` (0.5 for 2020+: share of moving events; 2019: 0) | ``same_class`` (0.1 for 2021+:
probability that an event meeting active events takes one of their classes; 2019/2020: 0, no same-class
overlaps) | ``interferers`` (0; 2021+: unlabelled directional interferers per recording) | ``dist`` (false;
starss23: the DCASE 2024 distance column) | ``seed`` (0) | ``sound_bank`` (builtin) | ``n_jobs`` (1) |
``progress`` (true). An unknown key is an error listing the valid ones. ``dcase25_task3`` (the 2025 Stereo SELD
set): ``format`` stereo, ``clip_len_s`` 5, ``nb_per_fold`` 4, distances always written (``dist`` is not used).

On-disk layout (``<dataset_dir>/``; ``{fmt}`` is foa or mic)
-------------------------------------------------------------
``tau2019sse`` (48 kHz): ``{fmt}_dev/split{1-4}_ir{0-4}_ov{1,2}_{n}.wav``, ``metadata_dev/<stem>.csv``
    ``tut2018`` format with its header; the recording name is the class name, times in seconds (6 decimals),
    static sources on the 10-degree grid (azimuth -180..170, elevation -40..40), distance in m. ``ir{r}``: five
    rooms shared by the four splits.
``tau2020sse_nigens`` (24 kHz): ``{fmt}_dev/fold{1-6}_room{r}_mix{nnn}_ov{1,2}.wav``, ``metadata_dev/<stem>.csv``
``tau2021sse_nigens`` (24 kHz): ``{fmt}_dev/dev-train/fold{1-4}_...``, ``dev-val/fold5_...``, ``dev-test/fold6_...``
    (``fold{k}_room{r}_mix{nnn}``) and the same under ``metadata_dev/``.
``starss22``, ``starss23`` (24 kHz): ``{fmt}_dev/dev-train-{sony,tau}/fold3_room{r}_mix{nnn}.wav``,
    ``dev-test-{sony,tau}/fold4_...`` and the same under ``metadata_dev/``.
``dcase25_task3`` (24 kHz, 2 channels): ``stereo_dev/dev-train-{sony,tau}/fold3_room{r}_mix{nnn}.wav``,
    ``dev-test-{sony,tau}/fold4_...`` and the same under ``metadata_dev/``: 5-s clips of the STARSS-like FOA scenes
    converted to stereo, with ``dcase2025`` metadata (:mod:`synth.stereo`: the panning law, the folded azimuths,
    the on-screen flag). No synthetic fold 1 (``dev-train-synth``) is made.
2020+ metadata: headerless rows ``frame,class,track,azi,ele`` (``,dist`` in cm with ``dist=true``), integers,
sorted by frame then track, one row per 100 ms frame in which an event is active for at least one sample. The
track is the event's index in the recording in order of onset (as the real sets enumerate them), so two
instances of one class have distinct tracks. The direction of a row is the event's at the middle of its active
part of the frame, rounded to whole degrees.
Rooms (``room{r}``/``ir{r}``): two per fold (five for 2019), each drawn once from the seed and shared by the
recordings that name it; with ``reverb=false`` the name stays but the sound is free field.
Audio: 16-bit PCM, 4 channels, the dataset's rate, ``round(length * fs)`` samples. ``mic``: the tetrahedral array
of :func:`synth.spatial.tetra_positions` in FREE FIELD (the real array is on a rigid sphere; here only the
inter-capsule delays are modelled). ``foa``: ACN/SN3D.
``synthesis/{fmt}/<sub-folder>/<stem>.json``: per recording, the generation config, room, gain, powers and every
event (labelled and interferers) with its onset/offset samples; ``dataset_info.json`` and ``README.txt``
describe the folder. foa and mic of one seed share the scenes and ``metadata_dev/``, as in the real sets; both
may go into one ``dataset_dir`` if every other key is the same.

Scenes (:mod:`synth.scenes`)
----------------------
Events on ``overlap`` tracks as the TUT look-alikes. 2019: static, the TUT grid, no same-class overlaps.
2020+: integer-degree directions uniform in azimuth -180..179 and elevation +-45 (STARSS +-60), at least 20
degrees from the active events; a share ``moving`` turns at 10, 20 or 40 degrees/s (either sense) at constant
elevation and distance. Same-class overlaps only in 2021+. Interferers (2021+): built-in sounds an octave down,
static, anywhere in the recording, not in the metadata, added after the SNR is set. Sounds: the built-in
procedural bank mapped onto the dataset's classes (:class:`synth.sound_bank.DatasetBank`: synthetic stand-ins, two
octaves up for classes beyond the 11th), or a folder holding every class by name. The recordings of the test
folds (2019: split 1) draw from a folder bank's test part.

Spatialization, noise, SNR (:mod:`synth.spatial`, :mod:`synth.scenes`)
---------------------------------------------------------------------
Static sources as the TUT look-alikes (plane waves, shoebox rooms). Moving sources: FOA per-sample gains, array
per-sample fractional delays; in rooms 100 ms blocks each convolved with the RIR of the block centre (early part
from that position, late part shared). Diffuse noise (FOA: isotropic statistics; tetrahedron: sinc coherence) at
``db`` = 10 log10(P_event / P_noise) on W (FOA) or the mean over the mics, P_event over the samples inside a
labelled event.

Determinism and resume
----------------------
Every recording uses ``np.random.default_rng([seed, crc32(dataset), crc32(sub-folder), fold, index, stream])``
(streams: 0 scene, 1 noise, 3 interferers, 4 length; rooms ``[seed, crc32(dataset), r, 2]``): the same parameters
and seed give byte-identical files for any ``n_jobs``, and foa and mic the same scenes. Files are written to a
temporary name and renamed (wav, csv, then the side file); a recording whose three files exist with the same
config is skipped; recordings of the layout that the parameters no longer make are deleted (:mod:`synth.driver`).
"""
from __future__ import annotations

import functools
import math
import os
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from datasets import DATASET_INFO, DCASE_DATASETS, SPECS, STEM_PATTERNS
from synth.driver import Clip, check_clip_len, check_integers, check_n_jobs, command_line, read_info, run
from synth.scenes import (Event, active_mask, add_noise, distance_sampler, doa_grid, draw_room, grid_doa_picker,
                          mix_events, plan_clip, room_model, sphere_doa_picker, tut2018_text)
from synth.sound_bank import DatasetBank, load_sound_bank
from synth.spatial import ShoeboxModel, diffuse_noise, tetra_positions
from synth.stereo import foa_to_stereo, stereo_rows, stereo_text
from utils import SELDError

GENERATOR_VERSION = 1
FORMATS = ('foa', 'mic')
STEREO = 'dcase25_task3'                       # the stereo set: FOA scenes converted by synth.stereo
LABEL_RATE = 10                                # frames per second of the 2020+ metadata
SPEEDS_DEG_S = (10.0, 20.0, 40.0)              # moving sources (as TAU-NIGENS 2020/2021)
ELE_LIMIT_DEG = {'tau2020sse_nigens': 45, 'tau2021sse_nigens': 45, 'starss22': 60, 'starss23': 60, STEREO: 60}
MAX_OVERLAP = {'tau2019sse': 2, 'tau2020sse_nigens': 2, 'tau2021sse_nigens': 3, 'starss22': 3, 'starss23': 3,
               STEREO: 3}
OV_IN_NAME = ('tau2019sse', 'tau2020sse_nigens')
SAME_CLASS_DATASETS = ('tau2021sse_nigens', 'starss22', 'starss23', STEREO)
SIDE_DIR = 'synthesis'

#: (sub-folder, fold, room numbers, sound-bank part) of each layout.
FOLDS: dict[str, list[tuple[str, int, tuple[int, ...], str]]] = {
    'tau2019sse': [('', k, (0, 1, 2, 3, 4), 'test' if k == 1 else 'train') for k in (1, 2, 3, 4)],
    'tau2020sse_nigens': [('', k, (2 * k - 1, 2 * k), 'test' if k == 1 else 'train') for k in range(1, 7)],
    'tau2021sse_nigens': ([('dev-train', k, (2 * k - 1, 2 * k), 'train') for k in (1, 2, 3, 4)]
                          + [('dev-val', 5, (9, 10), 'train'), ('dev-test', 6, (11, 12), 'test')]),
    'starss22': [('dev-train-sony', 3, (21, 22), 'train'), ('dev-train-tau', 3, (1, 2), 'train'),
                 ('dev-test-sony', 4, (23, 24), 'test'), ('dev-test-tau', 4, (3, 4), 'test')],
}
FOLDS['starss23'] = FOLDS[STEREO] = FOLDS['starss22']


def cli_defaults(dataset: str) -> dict[str, Any]:
    """The command-line keys and defaults for one DCASE dataset (module docstring)."""
    starss = dataset.startswith('starss')
    stereo = dataset == STEREO
    return dict(dataset=dataset, format='stereo' if stereo else 'foa', dataset_dir='data/{dataset}',
                nb_per_fold=3 if starss else 4, clip_len_s=5.0 if stereo else 20.0,
                clip_len_max_s=40.0 if starss else 0.0, overlap=MAX_OVERLAP.get(dataset, 3),
                db=30.0, reverb=True, moving=0.0 if dataset == 'tau2019sse' else 0.5,
                same_class=0.1 if dataset in SAME_CLASS_DATASETS else 0.0, interferers=0, dist=False, seed=0,
                sound_bank='builtin', n_jobs=1, progress=True)


def recording_stem(dataset: str, *, fold: int, room: int, index: int, ov: int) -> str:
    """File stem of a recording, e.g. ``split1_ir0_ov1_1``, ``fold1_room1_mix001_ov1``, ``fold3_room21_mix001``."""
    if dataset == 'tau2019sse':
        return f'split{fold}_ir{room}_ov{ov}_{index + 1}'
    return f'fold{fold}_room{room}_mix{index + 1:03d}' + (f'_ov{ov}' if dataset in OV_IN_NAME else '')


def _crc(text: str) -> int:
    return zlib.crc32(text.encode())


# --------------------------------------------------------------------------------------------------
# One recording
# --------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _cached_room(dataset: str, room: int, seed: int, fs: int) -> tuple[dict[str, Any], ShoeboxModel]:
    """Room ``room`` of a look-alike (drawn from the seed, shared by every recording and format that names it)."""
    info = draw_room(np.random.default_rng([seed, _crc(dataset), room, 2]))
    return info, room_model(info, fs=fs, fmt='foa')


def _room(dataset: str, room: int, seed: int, fs: int, fmt: str) -> tuple[dict[str, Any], ShoeboxModel]:
    info, model = _cached_room(dataset, room, seed, fs)
    return dict(info), model if fmt == 'foa' else model.with_array(fmt='mic', mics=tetra_positions())


def synthesize_recording(*, bank: DatasetBank, dataset: str, fmt: str, sub: str, fold: int, index: int, room: int,
                         ov: int, nb_samples: int, part: str, seed: int, db: float, reverb: bool, moving: float,
                         same_class: float, interferers: int) -> tuple[np.ndarray, list[Event], list[Event],
                                                                         dict[str, Any]]:
    """Synthesize one recording in memory.

    Parameters
    ----------
    bank : DatasetBank
    dataset, fmt : str
    sub : str
        Sub-folder ('' for 2019/2020).
    fold, index, room, ov : int
        Fold number, index in its sub-folder and fold, room number, maximum overlap.
    nb_samples : int
        Length in samples at the dataset's rate.
    part : {'train', 'test'}
        The sound-bank part its events come from.
    seed, db, reverb, moving, same_class, interferers
        As the command-line keys.

    Returns
    -------
    audio : np.ndarray [shape=(nb_samples, 4)] (stereo: 2), float in [-0.99, 0.99]
    events : list of Event, labelled, in onset order (index = track)
    unlabelled : list of Event, the interferers
    info : dict
        ``gain``, ``gain_db``, ``event_power``, ``noise_power`` (:func:`scenes.add_noise`), ``room``.
    """
    fs = SPECS[dataset].fs
    scene_rng, noise_rng, interferer_rng = (np.random.default_rng([seed, _crc(dataset), _crc(sub), fold, index, s])
                                            for s in (0, 1, 3))
    stereo, fmt = fmt == 'stereo', 'foa' if fmt == 'stereo' else fmt  # stereo: the FOA scene, converted at the end
    mics = tetra_positions() if fmt == 'mic' else None
    room_info, model = _room(dataset, room, seed, fs, fmt) if reverb else (None, None)
    if dataset == 'tau2019sse':
        doa_fn = grid_doa_picker(doa_grid(res_deg=10))
    else:
        doa_fn = sphere_doa_picker(ele_limit_deg=ELE_LIMIT_DEG[dataset], moving=moving, speeds_deg_s=SPEEDS_DEG_S,
                                   fs=fs)
    events = plan_clip(scene_rng, bank=bank, part=part, overlap=ov, nb_samples=nb_samples, fs=fs, doa_fn=doa_fn,
                       dist_fn=distance_sampler(model),
                       same_class_prob=same_class if dataset in SAME_CLASS_DATASETS else None)
    if not events:
        raise SELDError(f'clip_len_s={nb_samples / fs}: too short for any event of sound bank {bank.name!r}')
    mix = mix_events(events, nb_samples=nb_samples, nb_channels=4, fs=fs, fmt=fmt, mics=mics, model=model)
    unlabelled = _interferers(interferer_rng, bank=bank, count=interferers, nb_samples=nb_samples, fs=fs, model=model)
    extra = (mix_events(unlabelled, nb_samples=nb_samples, nb_channels=4, fs=fs, fmt=fmt, mics=mics, model=model)
             if unlabelled else None)
    noise = diffuse_noise(noise_rng, nb_samples=nb_samples, fs=fs, fmt=fmt, mics=mics)
    audio, info = add_noise(mix, noise, active=active_mask(events, nb_samples), db=db, fmt=fmt, unlabelled=extra)
    if stereo:  # the L/R gains are at most 1: the mix stays within [-0.99, 0.99]
        audio = foa_to_stereo(audio)
    info['room'] = room_info
    return audio, events, unlabelled, info


def _interferers(rng: np.random.Generator, *, bank: DatasetBank, count: int, nb_samples: int, fs: int,
                 model: ShoeboxModel | None) -> list[Event]:
    """``count`` static unlabelled sounds at uniform onsets and integer-degree directions (elevation +-45)."""
    dist_fn = distance_sampler(model)
    out = []
    shortest = bank.interferer_min_samples(fs)
    for _ in range(count):
        onset = int(rng.integers(0, max(1, nb_samples - shortest)))
        signal, name = bank.draw_interferer(rng=rng, fs=fs, max_samples=nb_samples - onset)
        azi, ele = int(rng.integers(-180, 180)), int(rng.integers(-45, 46))
        out.append(Event(onset=onset, signal=signal[:nb_samples - onset], name=name, class_idx=-1, azi=azi, ele=ele,
                         dist=dist_fn(rng, azi, ele, 0.0)))
    return sorted(out, key=lambda e: e.onset)


def frame_rows(events: list[Event], *, fs: int, dist: bool = False) -> np.ndarray:
    """The 2020+ metadata rows of labelled events (module docstring).

    Returns
    -------
    rows : np.ndarray [shape=(n, 5 or 6)], int64 - frame, class, track, azimuth, elevation[, distance in cm],
        sorted by frame then track.
    """
    hop = fs / LABEL_RATE
    parts = []
    for track, ev in enumerate(events):
        frames = np.arange(int(ev.onset // hop), int((ev.end - 1) // hop) + 1)
        a = np.maximum(frames * hop, ev.onset)
        b = np.minimum((frames + 1) * hop, ev.end)
        azi = np.rint(ev.azimuth_at((a + b - 1) / 2, fs)).astype(np.int64)
        azi[azi >= 180] -= 360
        cols = [frames, np.full_like(frames, ev.class_idx), np.full_like(frames, track), azi,
                np.full_like(frames, ev.ele)]
        if dist:
            cols.append(np.full_like(frames, int(round(ev.dist * 100))))
        parts.append(np.stack(cols, axis=1))
    rows = np.concatenate(parts).astype(np.int64)
    return rows[np.lexsort((rows[:, 2], rows[:, 0]))]


def _metadata_text(dataset: str, events: list[Event], *, fs: int, dist: bool) -> str:
    if dataset == 'tau2019sse':
        return tut2018_text(events, fs)
    if dataset == STEREO:
        return stereo_text(stereo_rows(frame_rows(events, fs=fs, dist=True)))
    return ''.join(','.join(map(str, row)) + '\n' for row in frame_rows(events, fs=fs, dist=dist).tolist())


def _event_record(ev: Event, fs: int) -> dict[str, Any]:
    return dict(onset=ev.onset, end=ev.end, onset_s=ev.onset / fs, end_s=ev.end / fs, name=ev.name,
                class_idx=ev.class_idx, azi=ev.azi, ele=ev.ele, dist=ev.dist, speed_deg_s=ev.speed_deg_s)


def _make(*, dist: bool, **recording: Any) -> tuple[np.ndarray, int, str, dict[str, Any]]:
    """One recording for the driver (:class:`synth.driver.Clip`): audio, rate, metadata, side file."""
    audio, events, unlabelled, info = synthesize_recording(**recording)
    fs = SPECS[recording['dataset']].fs
    return audio, fs, _metadata_text(recording['dataset'], events, fs=fs, dist=dist), {
        **info, 'nb_events': len(events), 'events': [_event_record(e, fs) for e in events],
        'interferers': [_event_record(e, fs) for e in unlabelled]}


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------
def _validate(p: dict[str, Any]) -> None:
    name = p['dataset']
    if name not in DCASE_DATASETS:
        raise SELDError(f"dataset={name!r}: must be one of {', '.join(DCASE_DATASETS)}")
    if (name == STEREO) != (p['format'] == 'stereo') or (name != STEREO and p['format'] not in FORMATS):
        raise SELDError(f"format={p['format']!r}: must be " + ('stereo' if name == STEREO else 'foa or mic'))
    check_integers(*((key, p[key], low) for key, low in (('nb_per_fold', 1), ('seed', 0), ('interferers', 0))))
    check_clip_len(p['clip_len_s'])
    if p['clip_len_max_s'] and not p['clip_len_s'] <= p['clip_len_max_s'] <= 3600.0:
        raise SELDError(f"clip_len_max_s={p['clip_len_max_s']}: must be 0 (every recording lasts clip_len_s) or "
                        f"between clip_len_s={p['clip_len_s']} and 3600 seconds")
    if p['overlap'] not in range(1, MAX_OVERLAP[name] + 1):
        raise SELDError(f"overlap={p['overlap']}: {name} has at most {MAX_OVERLAP[name]} overlapping events "
                        f"(1..{MAX_OVERLAP[name]})")
    if not math.isfinite(p['db']):
        raise SELDError(f"db={p['db']}: the SNR must be a finite number of dB")
    for key in ('moving', 'same_class'):
        if not 0.0 <= p[key] <= 1.0:
            raise SELDError(f'{key}={p[key]}: must be a share in [0, 1]')
    if name == 'tau2019sse' and p['moving']:
        raise SELDError(f"moving={p['moving']}: tau2019sse has static sources only; use moving=0")
    if name not in SAME_CLASS_DATASETS and p['same_class']:
        raise SELDError(f"same_class={p['same_class']}: {name} has no same-class overlaps (2021 and later have "
                        f"them); use same_class=0")
    if name not in SAME_CLASS_DATASETS and p['interferers']:
        raise SELDError(f"interferers={p['interferers']}: {name} has no directional interferers (2021 and later "
                        f"have them); use interferers=0")
    if p['dist'] and name not in ('starss23', STEREO):
        raise SELDError(f"dist=true: only starss23 (its DCASE 2024 release) has a distance column, not {name}")
    check_n_jobs(p['n_jobs'])


def _plan(p: dict[str, Any], bank: DatasetBank) -> list[dict[str, Any]]:
    """Every recording of the layout: sub-folder, stem, fold, room, overlap, length and bank part."""
    name, fs = p['dataset'], SPECS[p['dataset']].fs
    out = []
    for sub, fold, rooms, part in FOLDS[name]:
        for index in range(p['nb_per_fold']):
            ov = 1 + index % p['overlap'] if name in OV_IN_NAME else p['overlap']
            length_s = p['clip_len_s']
            if p['clip_len_max_s'] > p['clip_len_s']:
                rng = np.random.default_rng([p['seed'], _crc(name), _crc(sub), fold, index, 4])
                length_s = round(float(rng.uniform(p['clip_len_s'], p['clip_len_max_s'])) * LABEL_RATE) / LABEL_RATE
            room = rooms[index % len(rooms)]
            out.append(dict(sub=sub, stem=recording_stem(name, fold=fold, room=room, index=index, ov=ov),
                            recording=dict(dataset=name, fmt=p['format'], sub=sub, fold=fold, index=index, room=room,
                                           ov=ov, nb_samples=round(length_s * fs), part=part, seed=p['seed'],
                                           db=float(p['db']), reverb=bool(p['reverb']), moving=float(p['moving']),
                                           same_class=float(p['same_class']), interferers=p['interferers'])))
    shortest = min(bank.min_samples(c, part=r['recording']['part'], fs=fs) for c in range(len(bank.classes))
                   for r in out)
    if min(r['recording']['nb_samples'] for r in out) < shortest + 0.5 * fs:
        raise SELDError(f"clip_len_s={p['clip_len_s']}: too short for the shortest event of sound bank "
                        f"{bank.name!r} ({shortest / fs:.2f} s after an onset of up to 0.5 s)")
    return out


def _scene_config(p: dict[str, Any], bank: DatasetBank) -> dict[str, Any]:
    """The parameters every format of one dataset folder must share (they fix the scenes and the metadata)."""
    keys = ('nb_per_fold', 'clip_len_s', 'clip_len_max_s', 'overlap', 'db', 'reverb', 'moving', 'same_class',
            'interferers', 'dist', 'seed')
    return {**{k: p[k] for k in keys}, 'sound_bank': bank.name, 'version': GENERATOR_VERSION}


def _command(p: dict[str, Any]) -> str:
    """The command that makes ``p``'s recordings."""
    keys = ('dataset', 'format', 'nb_per_fold', 'clip_len_s', 'clip_len_max_s', 'overlap', 'db', 'reverb', 'moving',
            'same_class', 'interferers', 'dist', 'seed', 'sound_bank', 'dataset_dir')
    return command_line({k: p[k] for k in keys})


def synthesize(*, dataset: str, dataset_dir: str | os.PathLike = 'data/{dataset}', format: str | None = None,
               nb_per_fold: int | None = None, clip_len_s: float | None = None, clip_len_max_s: float | None = None,
               overlap: int | None = None, db: float = 30.0, reverb: bool = True, moving: float | None = None,
               same_class: float | None = None, interferers: int = 0, dist: bool = False, seed: int = 0,
               sound_bank: str | os.PathLike = 'builtin', n_jobs: int = 1, progress: bool = True) -> dict[str, Any]:
    """Synthesize one format of a DCASE look-alike (module docstring).

    Parameters
    ----------
    dataset : {'tau2019sse', 'tau2020sse_nigens', 'tau2021sse_nigens', 'starss22', 'starss23', 'dcase25_task3'}
    dataset_dir : str or path
        Output folder (``{dataset}`` is replaced by the name); may hold the other format of the same scenes.
    format : {'foa', 'mic', 'stereo'}
        FOA or the tetrahedral array (free field); ``stereo`` for dcase25_task3 (its only one). None: the first.
    nb_per_fold : int >= 1
        Recordings per fold (STARSS: per sub-folder). None: 4 (STARSS 3).
    clip_len_s, clip_len_max_s : float
        Recording length in seconds (None: 20, dcase25_task3 5); with ``clip_len_max_s`` > ``clip_len_s`` uniform
        in between, whole 100 ms (None: 0, STARSS 40; 0 = fixed).
    overlap : int
        Maximum number of simultaneous labelled events (2019/2020: 1-2, recordings alternate ov1 .. ov<overlap>;
        else 1-3). None: the dataset's maximum.
    db : float
        SNR in dB (:mod:`synth.scenes`).
    reverb : bool
        Shoebox rooms, or free field.
    moving : float in [0, 1]
        Share of moving events (2019: 0). None: 0.5 (2019: 0).
    same_class : float in [0, 1]
        2021+: probability that an event starting while others are active takes one of their classes. None: 0.1
        (2019/2020: 0; they have no same-class overlaps).
    interferers : int >= 0
        2021+: unlabelled directional sounds per recording.
    dist : bool
        starss23: write the DCASE 2024 distance column (cm).
    seed : int >= 0
        With the other parameters it fixes every byte of the output.
    sound_bank : str or path
        ``'builtin'`` or a folder of ``<class><3 digits>.wav`` holding every class of the dataset.
    n_jobs : int
        joblib processes (-1: all cores); the output does not depend on it.
    progress : bool
        A tqdm bar over recordings.

    Returns
    -------
    summary : dict
        ``dataset_dir``, ``dataset``, ``format``, ``nb_recordings``, ``nb_synthesized``, ``nb_skipped``,
        ``nb_events`` (int), ``audio_minutes``, ``seconds`` (float).

    Raises
    ------
    SELDError
        A bad parameter or sound bank, or a ``dataset_info.json`` of this folder that another format wrote with
        other scene parameters.
    """
    p = dict(locals())  # the parameters, None = the dataset's default (cli_defaults)
    started = time.perf_counter()
    if dataset not in DCASE_DATASETS:
        raise SELDError(f"dataset={dataset!r}: must be one of {', '.join(DCASE_DATASETS)}")
    defaults = cli_defaults(dataset)
    p = {key: defaults[key] if value is None else value for key, value in p.items()}
    p['dataset_dir'] = os.fspath(p['dataset_dir']).replace('{dataset}', dataset)
    _validate(p)
    name, fmt, spec = p['dataset'], p['format'], SPECS[p['dataset']]
    bank = DatasetBank(load_sound_bank(p['sound_bank'], split=1), spec.classes)
    plan = _plan(p, bank)
    root = Path(p['dataset_dir'])
    scene = _scene_config(p, bank)
    old = read_info(root, {'synthetic': True, 'dataset': name, 'fs': spec.fs, 'classes': list(spec.classes)})
    other_formats = sorted(set((old or {}).get('formats', [])) - {fmt})
    if other_formats and old.get('scene') != scene:
        before = old.get('scene') or {}
        diff = ', '.join(f'{k}={before.get(k)!r} (now {scene[k]!r})' for k in scene if before.get(k) != scene[k])
        raise SELDError(f'{root / DATASET_INFO}: the {"/".join(other_formats)} recordings there were made with other '
                        f'scene parameters: {diff}; '
                        f'foa and mic of one folder share metadata_dev/, so pass the same values or use another '
                        f'dataset_dir')

    clips = [Clip(wav=root / f'{fmt}_dev' / rec['sub'] / f"{rec['stem']}.wav",
                  csv=root / 'metadata_dev' / rec['sub'] / f"{rec['stem']}.csv",
                  side=root / SIDE_DIR / fmt / rec['sub'] / f"{rec['stem']}.json",
                  config={**rec['recording'], 'stem': rec['stem'], 'classes': list(spec.classes), **scene},
                  make=_make, args=dict(rec['recording'], bank=bank, dist=bool(p['dist'])), group=rec['sub'],
                  seconds=rec['recording']['nb_samples'] / spec.fs) for rec in plan]
    lengths = [clip.seconds for clip in clips]
    formats = sorted(set(other_formats) | {fmt})

    def info(old: dict[str, Any] | None, nb_events: dict[str, int]) -> dict[str, Any]:
        out = {'synthetic': True, 'generator': 'synthesize_dataset.py (synth/dcase.py)',
               'generator_version': GENERATOR_VERSION, 'dataset': name, 'format': '+'.join(formats),
               'formats': formats, 'fs': spec.fs, 'nb_channels': 2 if name == STEREO else 4,
               'classes': list(spec.classes),
               'class_sounds': bank.describe(), 'sound_bank': bank.name, 'metadata_format': spec.meta_format,
               'label_rate': spec.label_rate, 'scene': scene, 'nb_recordings': len(plan),
               'nb_events': sum(nb_events.values()),
               'recording_length_s': {'min': min(lengths), 'max': max(lengths), 'total': sum(lengths)},
               'folds': {f'{sub or "."}': sorted(r['stem'] for r in plan if r['sub'] == sub)
                         for sub in dict.fromkeys(r['sub'] for r in plan)},
               'commands': {**(old or {}).get('commands', {}), fmt: _command(p)}, 'command': _command(p)}
        if 'mic' in formats:
            out['mic_positions_m'] = tetra_positions().round(6).tolist()
        return out

    subs = list(dict.fromkeys(s for s, *_ in FOLDS[name]))
    bases = [root / f'{fmt}_dev', root / SIDE_DIR / fmt] + ([] if other_formats else [root / 'metadata_dev'])
    return run(root=root, clips=clips, stale_folders=[base / sub for base in bases for sub in subs],
               stem_pattern=STEM_PATTERNS[name], desc=f'{name} {fmt}', unit='recording', info=info, readme=_readme,
               summary={'title': f'{name} {fmt}', 'dataset_dir': p['dataset_dir'], 'dataset': name, 'format': fmt,
                        'nb_recordings': len(plan)},
               old=old, n_jobs=p['n_jobs'], progress=p['progress'], started=started)


def _readme(info: dict[str, Any]) -> str:
    spec = SPECS[info['dataset']]
    fmt_text = {'foa': 'foa_dev/: FOA (ACN W,Y,Z,X; SN3D)',
                'mic': 'mic_dev/: 4 omni mics of the tetrahedral array in FREE FIELD (the real array is on a rigid '
                       'sphere: this models only the delays between the capsules)',
                'stereo': 'stereo_dev/: coincident left/right cardioids made from the FOA scene (synth/stereo.py)'}
    scene = info['scene']
    lines = [
        f"SYNTHETIC DATA - not recorded, not the {info['dataset']} development set.",
        '',
        f"Made by synthesize_dataset.py (synth/dcase.py, generator version {GENERATOR_VERSION}) as a look-alike "
        f"of {info['dataset']} in its on-disk layout (file names, folders, folds, {spec.fs} Hz, 16-bit PCM, "
        f"{info['nb_channels']} channels, {spec.meta_format} metadata in metadata_dev/).",
        *[f'  {fmt_text[f]}' for f in info['formats']],
        f"Classes in index order: {', '.join(info['classes'])}.",
        'The sounds are SYNTHETIC STAND-INS for these classes: '
        + '; '.join(f'{c} = {s}' for c, s in info['class_sounds'].items()) + '.',
        f"Recordings of {info['recording_length_s']['min']:g}-{info['recording_length_s']['max']:g} s; up to "
        f"{scene['overlap']} overlapping events; moving share {scene['moving']:g}; same-class probability "
        f"{scene['same_class']:g}; {scene['interferers']} unlabelled interferers per recording; "
        + ('shoebox rooms (pyroomacoustics image sources, RT60 0.4-1.0 s; see synthesis/)' if scene['reverb']
           else 'free field (anechoic)')
        + f"; spatially diffuse noise at {scene['db']:g} dB SNR.",
        'See the docstring of synth/dcase.py for every convention (metadata frames, tracks, SNR, rooms).',
        '',
        'Commands that made this folder:',
        *[f'  {cmd}' for _, cmd in sorted(info['commands'].items())],
    ]
    return '\n'.join(lines) + '\n'

"""TUT Sound Events 2018 look-alikes (ANSIM, RESIM, CANSIM, CRESIM) in the exact on-disk format of the originals.

The original datasets cannot be downloaded here and their generator was never released, so this module makes
SYNTHETIC look-alikes that the same pipeline reads. It also makes the project's embedded default dataset (a small
ANSIM look-alike synthesized automatically by the feature extractor through :func:`synthesize`). Run it through
synthesize_dataset.py::

    python synthesize_dataset.py dataset=resim overlap=2 split=3 db=20
    python synthesize_dataset.py dataset=cansim sound_bank=../shared/data/dcase2016_task2_train n_jobs=2

The spatial encoders (:mod:`synth.spatial`), the scene planning, mixing and SNR (:mod:`synth.scenes`) and the
driver (:mod:`synth.driver`: resume, stale files, progress, parallel map) are shared with :mod:`synth.dcase`.

Keys (default): ``dataset`` (ansim) | ``overlap`` (1) | ``split`` (1) | ``db`` (30) | ``nb_train`` (240) |
``nb_test`` (60) | ``clip_len_s`` (30.0) | ``fs`` (44100) | ``seed`` (0) | ``sound_bank`` (builtin) |
``unseen_doa`` (false) | ``grid_res_deg`` (10) | ``dataset_dir`` (data/{dataset}) | ``n_jobs`` (1, -1 = all
cores) | ``progress`` (true). An unknown key is an error (exit status 2) listing the valid ones.

On-disk format
--------------
``<dataset_dir>/wav_ov{ov}_split{split}_{db}db/{part}_{i}_desc_{db}_100.wav``
    16-bit PCM, ``fs`` Hz, exactly ``clip_len_s`` s; 4 channels FOA (ACN W, Y, Z, X, SN3D) for ansim/resim,
    8 omnidirectional microphones for cansim/cresim. ``part`` is train/test, ``i`` = 0, 1, ...; the
    trailing integer ``n`` of the TUT names is always :data:`FILE_N` = 100.
``<dataset_dir>/desc_ov{ov}_split{split}/{part}_{i}_desc_{db}_100.csv``
    Header ``sound_event_recording,start_time,end_time,ele,azi,dist``; one row per event in onset order:
    ``<class><3 digits>.wav``, onset and offset in seconds (6 decimals: exact sample times), elevation and
    azimuth in integer degrees on the grid, distance in metres (0.1 m steps). ``start_time`` is the sample
    at which the event's signal starts at the array centre divided by ``fs``; ``end_time`` =
    ``start_time`` + duration. The scene (events, times, DOAs) does not depend on ``db``: the CSVs of
    30, 20 and 10 dB of one ov/split are identical, only the noise level of the audio differs.
``<dataset_dir>/meta_ov{ov}_split{split}_{db}db/{part}_{i}_desc_{db}_100.json``
    Per-clip side file (not part of the TUT format): the generation config, the anti-clipping gain, the
    signal and noise powers, and for resim/cresim the room (size, array position, RT60, absorption).
``<dataset_dir>/dataset_info.json``
    The contract with the feature extractor::

        {"synthetic": true, "generator": "synthesize_dataset.py", "dataset": "ansim",
         "format": "foa" | "mic", "fs": 44100, "nb_channels": 4 | 8, "clip_len_s": 30.0,
         "classes": [names in class-index order], "sound_bank": "builtin" | "<folder>",
         "file_name_n": 100, "mic_radius_m": 0.05 (mic only),
         "splits": {"ov1_split1_30db": {"overlap": 1, "split": 1, "db": 30, "nb_train": 240,
                    "nb_test": 60, "seed": 0, "unseen_doa": false, "grid_res_deg": 10,
                    "nb_events": {"train": .., "test": ..}, "wav_dir": .., "desc_dir": .., "meta_dir": ..,
                    "command": "python synthesize_dataset.py ..."}}}

    Several ov/split/db of one dataset share a dataset_dir: the ``splits`` entries are merged; a dataset,
    format, fs, channel count, clip length or class list different from the existing file is an error.
``<dataset_dir>/README.txt``
    Says that the data is synthetic, how it was made and the commands that made it.

Scenes
------
``overlap`` tracks of events (track 0 starts 0.1-0.5 s into the clip, the others 0.1-3 s); on a track
each event follows the previous one after a gap of 0.1-0.8 s (track 0) or 0.1-2 s (the others), so at
most ``overlap`` events are active at once and ov1 events follow each other with short gaps. An event
never starts while an event of the same class or at the same DOA is still active. Classes are uniform
over those allowed; each class's events come from the sound bank (:mod:`synth.sound_bank`). DOAs are uniform on
the grid azimuth -180..180-res, elevation -40..40 in ``grid_res_deg`` steps; with ``unseen_doa`` the test
clips use the grid shifted by res/2 (+5 degrees) in azimuth and elevation. Distances are uniform in 1-3 m
(reverberant: also >= 0.5 m from every wall).

Spatialization (azimuth counter-clockwise from +x, elevation up, :func:`utils.sph2cart`)
--------------------------------------------------------------------------------------
* ansim: plane wave at the array centre, FOA gains ``[1, sin az cos el, sin el, cos az cos el]``
  (ACN/SN3D), amplitude 1/r (r in m, unity at 1 m). No propagation delay: the event arrives at its
  ``start_time``.
* cansim: 8 omnidirectional microphones on a horizontal circle of radius 0.05 m, mic m at azimuth 45 m
  degrees, z = 0. Far-field plane wave with amplitude 1/r at the centre; each mic gets the exact
  fractional delay ``-(u . p_m) / c`` (frequency-domain phase shift, c = 343 m/s = pyroomacoustics'
  constant) relative to the centre. A planar array cannot tell elevation +el from -el (the delays depend
  on cos el only); the labels keep the true sign.
* resim / cresim: shoebox rooms 9-11 x 7-9 x 3.5-4.5 m, array at the centre +-1 m (height +-0.25 m), RT60
  uniform in 0.4-1.0 s per clip (recorded in the meta file), frequency-independent uniform absorption, no
  air absorption. The image sources come from pyroomacoustics (``ShoeBox.image_source_model``: positions
  and reflection orders) with ``max_order`` large enough to hold every image within ``c * RT60`` of the
  direct path; the RIR is truncated there (60 dB decay). The absorption is calibrated per room so that
  the measured T30 equals the RT60 (Eyring's formula alone gives longer decays in a shoebox, see
  :class:`synth.spatial.ShoeboxModel`). Each image is encoded from
  its own direction and delay with amplitude damping / r: into FOA from the array centre (resim), or per
  microphone from its exact distance (cresim). Delays are quantized to 1/16 sample on an oversampled grid
  and band-limited by ``scipy.signal.resample_poly``; pyroomacoustics' 10 Hz RIR high-pass removes the DC
  build-up of the dense late images. The RIR is shifted so that the direct sound reaches the array centre
  at ``start_time``.

Noise and SNR
-------------
Spatially diffuse, stationary pink-ish noise (power spectrum 1 / (f + 100 Hz)) over the whole clip.
FOA: the second-order statistics of an isotropic field, i.e. independent W, Y, Z, X with variances
1, 1/3, 1/3, 1/3. Array: the exact spherically-isotropic coherence ``sinc(2 f d_ij / c)`` between mics
(generated through the circulant eigen-decomposition of the uniform circular array).
SNR (``db``) = 10 log10(P_event / P_noise), where P_event is the mean power of the noise-free event mixture
(direct sound and reverberation) over the samples inside at least one CSV event interval, and P_noise the
mean power of the noise over the whole clip, both on the omnidirectional reference: the W channel (FOA)
or the average over the 8 mics. Each event is scaled to a peak of 0.25 (-12 dBFS) before spatialization;
if the clip's peak then exceeds 0.99 the whole clip (events and noise together, so the SNR is unchanged)
is scaled down and the gain recorded in the clip's meta file.

Determinism and resume
----------------------
Every clip uses its own generators ``np.random.default_rng([seed, overlap, split, part, i, stream])``
(part 0 = train, 1 = test; stream 0 = scene and sounds, 1 = noise, 2 = room), so same parameters + seed
give byte-identical files for any ``n_jobs``, and splits, parts and clips differ. Files are written
atomically (temporary name, then rename), the meta file last; a clip whose wav, csv and meta exist with
the same config is skipped (resume), any other is rewritten. Clips of the same ov/split/db with an index
beyond ``nb_train`` / ``nb_test`` are deleted. One process per ov/split/db at a time.

Speed (one process of a shared 2-core machine, one 30 s clip, builtin bank; ov1 / ov3): ansim 0.4-1 s,
cansim 1-3 s, resim 1.5-8 s, cresim 5-13 s (the reverberant cost grows with the number of events and
RT60: up to ~600 000 image sources per event at RT60 = 1 s). The original size (240 + 60 clips) takes
~5 min (ansim) to ~1 h (cresim ov3) per split on 2 cores.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from datasets import DCASE_DATASETS, tut_dirs
from synth.driver import Clip, check_clip_len, check_integers, check_n_jobs, command_line, read_info, run
from synth.scenes import (FIRST_ONSET_S, Event, active_mask, add_noise, distance_sampler, doa_grid, draw_room,
                          grid_doa_picker, mix_events, plan_clip, room_model, tut2018_text)
from synth.sound_bank import SoundBank, load_sound_bank
from synth.spatial import MIC_RADIUS_M, NB_MICS, diffuse_noise
from utils import SELDError

GENERATOR_VERSION = 1
FILE_N = 100                                   # the fixed trailing integer of the TUT file names
DATASETS = {'ansim': ('foa', False), 'resim': ('foa', True), 'cansim': ('mic', False), 'cresim': ('mic', True)}
OVERLAPS = (1, 2, 3)
DBS = (30, 20, 10)
ELE_LIMIT_DEG = 40

CLI_DEFAULTS: dict[str, Any] = dict(
    dataset='ansim', overlap=1, split=1, db=30, nb_train=240, nb_test=60, clip_len_s=30.0, fs=44100, seed=0,
    sound_bank='builtin', unseen_doa=False, grid_res_deg=10, dataset_dir='data/{dataset}', n_jobs=1, progress=True)


# --------------------------------------------------------------------------------------------------
# One clip
# --------------------------------------------------------------------------------------------------
def synthesize_clip(*, bank: SoundBank, dataset: str, part: str, index: int, overlap: int, split: int, db: int,
                    clip_len_s: float, fs: int, seed: int, unseen_doa: bool,
                    grid_res_deg: int) -> tuple[np.ndarray, list[Event], dict[str, Any]]:
    """Synthesize one clip in memory.

    Parameters
    ----------
    bank : SoundBank
    dataset : {'ansim', 'resim', 'cansim', 'cresim'}
    part : {'train', 'test'}
    index : int
        Clip index within its part.
    overlap, split, db, clip_len_s, fs, seed, unseen_doa, grid_res_deg
        As in :func:`synthesize`.

    Returns
    -------
    audio : np.ndarray [shape=(round(clip_len_s * fs), 4 or 8)]
        Float in [-0.99, 0.99].
    events : list of Event
    info : dict
        ``gain`` (anti-clipping factor applied to the clip), ``event_power`` and ``noise_power`` (on the
        omnidirectional reference, after the gain), ``nb_events``, and ``room`` (reverberant datasets).
    """
    fmt, reverberant = DATASETS[dataset]
    nb_samples = round(clip_len_s * fs)
    part_code = 0 if part == 'train' else 1
    rngs = [np.random.default_rng([seed, overlap, split, part_code, index, stream]) for stream in range(3)]
    shift = grid_res_deg / 2 if (unseen_doa and part == 'test') else 0.0
    grid = doa_grid(res_deg=grid_res_deg, shift_deg=shift)

    room = draw_room(rngs[2]) if reverberant else None
    model = room_model(room, fs=fs, fmt=fmt) if reverberant else None
    events = plan_clip(rngs[0], bank=bank, part=part, overlap=overlap, nb_samples=nb_samples, fs=fs,
                       doa_fn=grid_doa_picker(grid), dist_fn=distance_sampler(model))
    if not events:
        raise SELDError(f'clip_len_s={clip_len_s}: too short for any {part} event of sound bank {bank.name!r}')
    mix = mix_events(events, nb_samples=nb_samples, nb_channels=4 if fmt == 'foa' else NB_MICS, fs=fs, fmt=fmt,
                     model=model)
    noise = diffuse_noise(rngs[1], nb_samples=nb_samples, fs=fs, fmt=fmt)
    audio, info = add_noise(mix, noise, active=active_mask(events, nb_samples), db=db, fmt=fmt)
    info.update(nb_events=len(events), room=room)
    return audio, events, info


def _make(**clip: Any) -> tuple[np.ndarray, int, str, dict[str, Any]]:
    """One clip for the driver (:class:`synth.driver.Clip`): audio, rate, description file, meta file."""
    audio, events, info = synthesize_clip(**clip)
    return audio, clip['fs'], tut2018_text(events, clip['fs']), info


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------
def split_key(*, overlap: int, split: int, db: int) -> str:
    """Key of ``dataset_info.json["splits"]``, e.g. ``'ov1_split1_30db'``."""
    return f'ov{overlap}_split{split}_{db}db'


def clip_stem(*, part: str, index: int, db: int) -> str:
    """File stem of a clip, e.g. ``'train_0_desc_30_100'``."""
    return f'{part}_{index}_desc_{db}_{FILE_N}'


def _validate(*, dataset: str, overlap: int, split: int, db: int, nb_train: int, nb_test: int, clip_len_s: float,
              fs: int, seed: int, grid_res_deg: int, unseen_doa: bool, n_jobs: int) -> None:
    if dataset not in DATASETS:
        raise SELDError(f"dataset={dataset!r}: must be one of {', '.join(DATASETS)} (the TUT-2018 look-alikes) or, "
                        f"on the command line, one of {', '.join(DCASE_DATASETS)} (synth/dcase.py)")
    if overlap not in OVERLAPS:
        raise SELDError(f"overlap={overlap}: must be one of {', '.join(map(str, OVERLAPS))}")
    if db not in DBS:
        raise SELDError(f"db={db}: must be one of {', '.join(map(str, DBS))}")
    check_integers(('split', split, 1), ('nb_train', nb_train, 0), ('nb_test', nb_test, 0), ('seed', seed, 0),
                   ('fs', fs, 16000))
    if nb_train + nb_test < 1:
        raise SELDError(f'nb_train={nb_train}, nb_test={nb_test}: at least one clip is needed')
    check_clip_len(clip_len_s)
    if not (isinstance(grid_res_deg, (int, np.integer)) and grid_res_deg >= 1 and 360 % grid_res_deg == 0
            and ELE_LIMIT_DEG % grid_res_deg == 0):
        raise SELDError(f'grid_res_deg={grid_res_deg}: must be a whole number of degrees dividing 360 and '
                        f'{ELE_LIMIT_DEG} (e.g. 10, 5, 20)')
    if unseen_doa and grid_res_deg % 2:
        raise SELDError(f'grid_res_deg={grid_res_deg} with unseen_doa=true: must be even, so that the test DOAs '
                        f'(shifted by half a step) are whole degrees')
    check_n_jobs(n_jobs)


def _readme(info: dict[str, Any]) -> str:
    lines = [
        'SYNTHETIC DATA - not recorded, not the original TUT Sound Events 2018 datasets.',
        '',
        f"Made by synthesize_dataset.py (generator version {GENERATOR_VERSION}) as a look-alike of the TUT-2018 "
        f"{info['dataset'].upper()} dataset in the same on-disk format: "
        f"{'FOA (ACN W,Y,Z,X; SN3D)' if info['format'] == 'foa' else '8 omni mics on a 5 cm circle'}, "
        f"{info['fs']} Hz, {info['clip_len_s']} s clips, 16-bit PCM.",
        f"Sound events: sound bank {info['sound_bank']!r}; classes in index order: {', '.join(info['classes'])}.",
        'Events are spatialized on a DOA grid (azimuth -180..170, elevation -40..40, step grid_res_deg of each '
        'split in dataset_info.json) at 1-3 m, '
        + ('in simulated shoebox rooms (pyroomacoustics image sources, RT60 0.4-1.0 s per clip, see meta_*/)'
           if info['dataset'] in ('resim', 'cresim') else 'in free field (anechoic)')
        + ', with spatially diffuse noise at the SNR in the folder name.',
        'See the docstring of synthesize_dataset.py for every convention (SNR definition, timing, noise).',
        'desc_*/ hold the labels, wav_*/ the audio, meta_*/ per-clip synthesis details; dataset_info.json '
        'describes the whole folder.',
        '',
        'Commands that made this folder:',
    ]
    lines += [f"  {entry['command']}" for _, entry in sorted(info['splits'].items())]
    return '\n'.join(lines) + '\n'


def synthesize(*, dataset_dir: str | os.PathLike, dataset: str = 'ansim', overlap: int = 1, split: int = 1,
               db: int = 30, nb_train: int = 240, nb_test: int = 60, clip_len_s: float = 30.0, fs: int = 44100,
               seed: int = 0, sound_bank: str | os.PathLike = 'builtin', unseen_doa: bool = False,
               grid_res_deg: int = 10, n_jobs: int = 1, progress: bool = True) -> dict[str, Any]:
    """Synthesize one ov/split/db of a TUT-2018-format SELD dataset (see the module docstring).

    Clips are generated and written one by one (in parallel over clips with joblib), so a split is never
    held in memory; complete clips of an earlier run with the same config are skipped.

    Parameters
    ----------
    dataset_dir : str or path
        Output folder (created); may already hold other ov/split/db of the same dataset.
    dataset : {'ansim', 'resim', 'cansim', 'cresim'}
        Anechoic / reverberant FOA (4 ch), anechoic / reverberant 8-mic circular array.
    overlap : {1, 2, 3}
        Maximum number of simultaneously active events.
    split : int >= 1
        Cross-validation split (part of the folder names and of the random streams).
    db : {30, 20, 10}
        Signal-to-noise ratio in dB (definition in the module docstring).
    nb_train, nb_test : int >= 0
        Number of train and test clips.
    clip_len_s : float
        Clip length in seconds.
    fs : int >= 16000
        Sample rate in Hz.
    seed : int >= 0
        Base seed; with the other parameters it fixes every byte of the output.
    sound_bank : str or path
        ``'builtin'`` or a folder of mono ``<class><3 digits>.wav`` files (:mod:`synth.sound_bank`).
    unseen_doa : bool
        Test clips use DOAs shifted by ``grid_res_deg / 2`` in azimuth and elevation.
    grid_res_deg : int
        DOA grid step in degrees (divides 360 and 40).
    n_jobs : int
        joblib processes (-1: all cores); the output does not depend on it.
    progress : bool
        Show a tqdm progress bar over clips.

    Returns
    -------
    summary : dict
        ``dataset_dir``, ``split_key``, ``wav_dir``, ``desc_dir``, ``meta_dir`` (str), ``nb_clips``,
        ``nb_synthesized``, ``nb_skipped``, ``nb_events`` (int), ``audio_minutes``, ``seconds`` (float), and
        ``title``, ``unit`` for :func:`synth.driver.summary_line`.

    Raises
    ------
    SELDError
        A bad parameter or sound bank, or an existing ``dataset_info.json`` that disagrees.
    """
    started = time.perf_counter()
    _validate(dataset=dataset, overlap=overlap, split=split, db=db, nb_train=nb_train, nb_test=nb_test,
              clip_len_s=clip_len_s, fs=fs, seed=seed, grid_res_deg=grid_res_deg, unseen_doa=bool(unseen_doa),
              n_jobs=n_jobs)
    clip_len_s, unseen_doa = float(clip_len_s), bool(unseen_doa)
    bank = load_sound_bank(sound_bank, split=split)
    for part, nb in (('train', nb_train), ('test', nb_test)):
        shortest = min(bank.min_samples(c, part=part, fs=fs) for c in range(len(bank.classes)))
        if nb and shortest > round(clip_len_s * fs) - FIRST_ONSET_S[0][1] * fs:
            raise SELDError(f'clip_len_s={clip_len_s}: too short for the shortest {part} event of sound bank '
                            f'{bank.name!r} ({shortest / fs:.2f} s after an onset of up to {FIRST_ONSET_S[0][1]} s)')
    fmt, _ = DATASETS[dataset]
    root = Path(dataset_dir)
    header = {'synthetic': True, 'generator': 'synthesize_dataset.py', 'dataset': dataset, 'format': fmt, 'fs': fs,
              'nb_channels': 4 if fmt == 'foa' else NB_MICS, 'clip_len_s': clip_len_s,
              'classes': list(bank.classes), 'sound_bank': bank.name, 'file_name_n': FILE_N}
    if fmt == 'mic':
        header['mic_radius_m'] = MIC_RADIUS_M
    old = read_info(root, {key: header[key] for key in ('synthetic', 'dataset', 'format', 'fs', 'nb_channels',
                                                        'clip_len_s', 'classes')})

    key = split_key(overlap=overlap, split=split, db=db)
    wav_dir, desc_dir = (Path(d) for d in tut_dirs(root, overlap=overlap, split=split, db=db))
    meta_dir = root / f'meta_{key}'
    clips = []
    for part, nb in (('train', nb_train), ('test', nb_test)):
        for index in range(nb):
            args = dict(bank=bank, dataset=dataset, part=part, index=index, overlap=overlap, split=split, db=db,
                        clip_len_s=clip_len_s, fs=fs, seed=seed, unseen_doa=unseen_doa, grid_res_deg=grid_res_deg)
            config = {k: v for k, v in args.items() if k != 'bank'}
            config.update(version=GENERATOR_VERSION, sound_bank=bank.name, classes=list(bank.classes))
            stem = clip_stem(part=part, index=index, db=db)
            clips.append(Clip(wav=wav_dir / f'{stem}.wav', csv=desc_dir / f'{stem}.csv', side=meta_dir / f'{stem}.json',
                              config=config, make=_make, args=args, group=part, seconds=clip_len_s))

    command = command_line(dict(dataset=dataset, overlap=overlap, split=split, db=db, nb_train=nb_train,
                                nb_test=nb_test, clip_len_s=clip_len_s, fs=fs, seed=seed, sound_bank=bank.name,
                                unseen_doa=unseen_doa, grid_res_deg=grid_res_deg,
                                dataset_dir=os.fspath(dataset_dir)))

    def info(old: dict[str, Any] | None, nb_events: dict[str, int]) -> dict[str, Any]:
        out = {**(old or {}), **header, 'splits': dict((old or {}).get('splits', {}))}
        out['splits'][key] = {'overlap': overlap, 'split': split, 'db': db, 'nb_train': nb_train, 'nb_test': nb_test,
                              'seed': seed, 'unseen_doa': unseen_doa, 'grid_res_deg': grid_res_deg,
                              'nb_events': {part: nb_events.get(part, 0) for part in ('train', 'test')},
                              'wav_dir': wav_dir.name, 'desc_dir': desc_dir.name, 'meta_dir': meta_dir.name,
                              'command': command}
        return out

    return run(root=root, clips=clips, stale_folders=[wav_dir, desc_dir, meta_dir],
               stem_pattern=re.compile(rf'(train|test)_\d+_desc_{db}_{FILE_N}'), desc=f'{dataset} {key}', unit='clip',
               info=info, readme=_readme,
               summary={'title': key, 'dataset_dir': os.fspath(dataset_dir), 'split_key': key,
                        'wav_dir': os.fspath(wav_dir), 'desc_dir': os.fspath(desc_dir), 'meta_dir': os.fspath(meta_dir),
                        'nb_clips': nb_train + nb_test},
               old=old, n_jobs=n_jobs, progress=progress, started=started)

"""The one driver of both synthesizer layouts: skip complete clips, remove stale ones, synthesize the rest (in
parallel, with a progress bar), then write ``dataset_info.json`` and ``README.txt``.

A layout (:mod:`synth.tut2018`, :mod:`synth.dcase`) validates its keys, plans its clips (:class:`Clip`: three
files, the config its side file records, the arguments of the layout's ``make``) and says what its
``dataset_info.json`` and ``README.txt`` hold; :func:`run` does the rest.

Files are written to a temporary name and renamed, wav, csv, then the side file (JSON); a clip whose three files
exist and whose side file has the same config is complete and skipped (resume). Clips of the layout that the plan
no longer makes, and temporary files of interrupted runs, are deleted. Every clip draws from its own generators,
so the output does not depend on ``n_jobs``.
"""
from __future__ import annotations

import collections
import dataclasses
import os
import re
import shlex
import time
from pathlib import Path
from typing import Any, Callable

import joblib
import numpy as np
import soundfile as sf
from tqdm import tqdm

from datasets import DATASET_INFO
from utils import SELDError, atomic_path, read_json, write_json, write_text

#: a temporary file of :func:`utils.atomic_path`: ``.<name>.<random>.tmp.<ext>``
TMP_RE = re.compile(r'^\.(?P<stem>.+)\.(wav|csv|json)\..*\.tmp\.(wav|csv|json)$')


@dataclasses.dataclass
class Clip:
    """One clip of a layout.

    ``make(**args)`` (a module-level function, so that joblib can send it to a worker) returns ``(audio, fs,
    csv_text, side)``: float audio in [-1, 1] [shape=(samples, channels)], its rate in Hz, the text of the csv and
    the side file's entries besides ``config`` (``nb_events`` among them). Events are counted per ``group``.
    """

    wav: Path
    csv: Path
    side: Path
    config: dict[str, Any]
    make: Callable[..., tuple[np.ndarray, int, str, dict[str, Any]]]
    args: dict[str, Any]
    group: str
    seconds: float


# --------------------------------------------------------------------------------------------------
# Checks shared by the layouts
# --------------------------------------------------------------------------------------------------
def check_integers(*triples: tuple[str, Any, int]) -> None:
    """Each ``(key, value, low)``: ``value`` is an integer (not a bool) >= ``low``."""
    for key, value, low in triples:
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise SELDError(f'{key}={value!r}: must be an integer >= {low}')


def check_clip_len(clip_len_s: float) -> None:
    if not 1.0 <= clip_len_s <= 3600.0:
        raise SELDError(f'clip_len_s={clip_len_s}: must be between 1 and 3600 seconds')


def check_n_jobs(n_jobs: Any) -> None:
    if n_jobs == 0 or not isinstance(n_jobs, (int, np.integer)):
        raise SELDError(f'n_jobs={n_jobs!r}: must be a nonzero integer (-1: all cores)')


def read_info(root: Path, expected: dict[str, Any]) -> dict[str, Any] | None:
    """The ``dataset_info.json`` of ``root`` (None if there is none); it must agree with ``expected``."""
    info_path = root / DATASET_INFO
    if not info_path.exists():
        return None
    old = read_json(info_path)
    for key, value in expected.items():
        if old.get(key) != value:
            raise SELDError(f'{info_path}: has {key}={old.get(key)!r} but this run makes {key}={value!r}; use '
                            f'another dataset_dir or delete that folder')
    return old


def command_line(args: dict[str, Any]) -> str:
    """``python synthesize_dataset.py key=value ...`` (booleans as true/false, each argument shell-quoted)."""
    text = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in args.items()}
    return 'python synthesize_dataset.py ' + ' '.join(shlex.quote(f'{k}={v}') for k, v in text.items())


# --------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------
def write_pcm16(path: str | os.PathLike, audio: np.ndarray, fs: int) -> None:
    """Write audio in [-1, 1] as a 16-bit PCM wav, atomically."""
    pcm = np.clip(np.rint(audio * 32767.0), -32767, 32767).astype(np.int16)
    with atomic_path(path) as tmp:
        sf.write(tmp, pcm, fs, subtype='PCM_16', format='WAV')


def completed_events(*paths: Path, side: Path, config: dict[str, Any]) -> int | None:
    """Resume: the number of events of a clip whose files ``paths`` and side file all exist and whose side file
    (JSON with ``config`` and ``nb_events``) was written with the same ``config``; else None (make it again)."""
    if not all(p.exists() for p in (*paths, side)):
        return None
    try:
        done = read_json(side)
    except SELDError:
        return None
    return done.get('nb_events') if done.get('config') == config else None


def remove_stale(folders: list[Path], *, pattern: re.Pattern, keep: set[str]) -> None:
    """Delete ``<stem>.wav|csv|json`` in ``folders`` whose stem matches ``pattern`` and is not in ``keep``, and the
    temporary files of interrupted runs whose stem matches ``pattern``."""
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            stem, ext = os.path.splitext(path.name)
            tmp = TMP_RE.match(path.name)
            if ((tmp and pattern.fullmatch(tmp['stem']))
                    or (ext in ('.wav', '.csv', '.json') and pattern.fullmatch(stem) and stem not in keep)):
                path.unlink()


def _clip_job(clip: Clip) -> int:
    """Synthesize and write one clip (wav, csv, then the side file); return its number of events."""
    audio, fs, text, side = clip.make(**clip.args)
    write_pcm16(clip.wav, audio, fs)
    write_text(clip.csv, text)
    write_json(clip.side, {'config': clip.config, **side})
    return side['nb_events']


# --------------------------------------------------------------------------------------------------
# The driver
# --------------------------------------------------------------------------------------------------
def run(*, root: Path, clips: list[Clip], stale_folders: list[Path], stem_pattern: re.Pattern, desc: str, unit: str,
        info: Callable[[dict[str, Any] | None, dict[str, int]], dict[str, Any]],
        readme: Callable[[dict[str, Any]], str], summary: dict[str, Any], old: dict[str, Any] | None, n_jobs: int,
        progress: bool, started: float) -> dict[str, Any]:
    """Make the ``clips`` that are not complete, then ``dataset_info.json`` and ``README.txt`` of ``root``.

    Parameters
    ----------
    root : Path
        The dataset folder.
    clips : list of Clip
        Every clip of the layout.
    stale_folders : list of Path
    stem_pattern : re.Pattern
        Files ``<stem>.wav|csv|json`` in ``stale_folders`` whose stem matches the pattern and is no clip's stem are
        deleted, and the temporary files of such stems.
    desc, unit : str
        The progress bar's description and unit (singular).
    info : callable
        ``info(old, nb_events)``: the ``dataset_info.json`` to write, from ``old`` and the event counts per group.
    readme : callable
        ``readme(info)``: the text of ``README.txt``.
    summary : dict
        The layout's entries of the returned summary, ``title`` (the summary line's start) among them.
    old : dict or None
        The existing ``dataset_info.json`` (:func:`read_info`).
    n_jobs : int
        joblib processes (-1: all cores); the output does not depend on it.
    progress : bool
        A tqdm bar over clips.
    started : float
        ``time.perf_counter()`` when the call began (for ``seconds``).

    Returns
    -------
    summary : dict
        ``summary``, ``unit``, ``nb_synthesized``, ``nb_skipped``, ``nb_events`` (int), ``audio_minutes``,
        ``seconds`` (float).
    """
    remove_stale(stale_folders, pattern=stem_pattern, keep={os.path.splitext(c.wav.name)[0] for c in clips})
    tasks, nb_events = [], collections.Counter()
    for clip in clips:
        done = completed_events(clip.wav, clip.csv, side=clip.side, config=clip.config)
        if done is None:
            tasks.append(clip)
        else:
            nb_events[clip.group] += done
    nb_skipped = len(clips) - len(tasks)

    with tqdm(total=len(clips), initial=nb_skipped, desc=desc, unit=unit, disable=not progress) as bar:
        if n_jobs == 1:
            results = map(_clip_job, tasks)
        else:
            results = joblib.Parallel(n_jobs=n_jobs, return_as='generator')(joblib.delayed(_clip_job)(t) for t in tasks)
        for count, clip in zip(results, tasks):  # results first: an exhausted joblib generator is not 'cancelled'
            nb_events[clip.group] += count
            bar.update(1)

    new_info = info(old, nb_events)
    write_json(root / DATASET_INFO, new_info)
    write_text(root / 'README.txt', readme(new_info))
    return {**summary, 'unit': unit, 'nb_synthesized': len(tasks), 'nb_skipped': nb_skipped,
            'nb_events': sum(nb_events.values()), 'audio_minutes': sum(c.seconds for c in clips) / 60.0,
            'seconds': time.perf_counter() - started}


def summary_line(summary: dict[str, Any]) -> str:
    """The one-line summary of a synthesis (the summary a layout's ``synthesize`` returns)."""
    unit = summary['unit']
    return (f"{summary['title']}: {summary[f'nb_{unit}s']} {unit}s ({summary['nb_skipped']} already complete), "
            f"{summary['nb_events']} events, {summary['audio_minutes']:.1f} min of synthetic audio in "
            f"{summary['seconds']:.1f} s -> {summary['dataset_dir']}")

"""The scoring command: ``python evaluation_metrics.py --ref <reference folder> --pred <run>/predictions`` scores a
folder of prediction CSVs against the reference files of the same stems and prints the JSON of
:meth:`scoring.SELDScorer.results` (NaN as null) on stdout, the grids and a table on stderr.

docs/metrics.md is the reference: the metric definitions, the grids, the command's flags and the keys of
``format.json`` it reads. The definitions are in :mod:`metric_definitions`, the scorer in :mod:`scoring`, the
readers in :mod:`formats`.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any, Callable

import numpy as np

from formats import (FORMAT_FILE, FORMAT_FRAME_RATE, FORMATS, NAMINGS, desc_class_names, find_references,
                     read_format_file, read_instances, read_reference, reference_formats)
from label_frames import Events, Instances, nb_frames_at
from metric_definitions import AVERAGES, DEFAULT_DEFINITIONS, DEFINITIONS, PAPER_FRAME_RATE
from scoring import SELDScorer
from utils import SELDError, run_cli


# ==================================================================================================
# Command line: score a folder of predictions against a dataset's reference folder
# ==================================================================================================
def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _table(res: dict[str, dict[str, float]]) -> str:
    cols = [('error_rate', 'ER'), ('f_score', 'F'), ('doa_error', 'DOA'), ('frame_recall', 'FR'),
            ('localization_error', 'LE'), ('localization_recall', 'LR'), ('distance_error', 'DIST'),
            ('relative_distance_error', 'RDE'), ('seld_score', 'SELD')]
    lines = [f'{"definition":<20}' + ''.join(f'{s:>8}' for _, s in cols)]
    for name, vals in res.items():
        cells = [f'{vals[c]:8.3f}' if c in vals and math.isfinite(vals[c]) else
                 (f'{"nan":>8}' if c in vals else f'{"-":>8}') for c, _ in cols]
        lines.append(f'{name:<20}' + ''.join(cells))
    return '\n'.join(lines)


def _last_time(inst: Events | Instances, rate: float | None) -> float:
    if isinstance(inst, Events):
        return float(np.max(inst.end, initial=0.0))
    return (int(np.max(inst.frame, initial=-1)) + 1) / rate


#: Bounds of the scoring command's numbers (beyond them a typo, not a recording): frames per second, seconds.
MAX_FRAME_RATE = 10_000.0
MAX_DURATION_S = 86_400.0
MAX_SEGMENT_S = 3_600.0
MAX_FRAMES = 10_000_000


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one-line SELDErrors (exit 2 through utils.run_cli), not usage + message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise SELDError(f'{self.prog}: {message}')


def _number(rule: str, *, integer: bool = False, upper: float = math.inf) -> Callable[[str], float]:
    """An argparse type: a finite number ``> 0`` (rule 'positive') or ``>= 0`` ('non-negative'), at most
    ``upper``."""
    def convert(text: str) -> float:
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'{text!r} is not {"an integer" if integer else "a number"}') from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f'{text} must be a finite number')
        if (rule == 'positive' and not value > 0) or (rule == 'non-negative' and not value >= 0):
            raise argparse.ArgumentTypeError(f'{text} must be {"> 0" if rule == "positive" else ">= 0"}')
        if value > upper:
            raise argparse.ArgumentTypeError(f'{text} must be at most {upper:g}')
        return value
    return convert


def _check_value(where: str, name: str, value: Any, *, rule: str, upper: float = math.inf) -> float:
    """A number read from format.json, with the rule of its flag."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SELDError(f'{where}: {name}={value!r} must be a finite number')
    if (rule == 'positive' and not value > 0) or (rule == 'non-negative' and not value >= 0) or value > upper:
        raise SELDError(f'{where}: {name}={value!r} must be {"> 0" if rule == "positive" else ">= 0"}'
                        + (f' and at most {upper:g}' if math.isfinite(upper) else ''))
    return float(value)


def main(argv: list[str] | None = None) -> int:
    """Score a folder of prediction CSVs against reference CSVs (paired by stem); JSON on stdout."""
    p = _Parser(
        prog='evaluation_metrics.py', description=main.__doc__,
        epilog='A run\'s predictions/ folder holds format.json, which says everything: python evaluation_metrics.py '
               '--ref data/ansim/desc_ov1_split1 --pred runs/<run>/predictions. Files of other systems: python '
               'evaluation_metrics.py --ref metadata_dev --pred results --format dcase2020 --nb-classes 12 '
               '(headerless references: their format from their number of fields). Flags override format.json.')
    p.add_argument('--ref', required=True, help='reference folder (searched with its sub-folders): TUT-2018 '
                                                'descriptions (with their header) or DCASE metadata')
    p.add_argument('--pred', required=True, help=f'folder of prediction CSVs (and {FORMAT_FILE})')
    p.add_argument('--format', choices=FORMATS, help=f'prediction format (default: {FORMAT_FILE})')
    p.add_argument('--frame-rate', type=_number('positive', upper=MAX_FRAME_RATE),
                   help="prediction frames/s (default: format.json's, else the format's: 50 or 10)")
    p.add_argument('--ref-format', choices=FORMATS, help='format of headerless reference files (default: '
                                                         'format.json\'s "reference", else from the number of fields: '
                                                         '4 dcase2019, 5 dcase2020, 7 dcase2024, 6 as --format); a '
                                                         'header means tut2018')
    p.add_argument('--ref-frame-rate', type=_number('positive', upper=MAX_FRAME_RATE),
                   help="reference frames/s of a DCASE format (default: format.json's, else the format's)")
    p.add_argument('--classes', help='comma-separated class names in index order (default: format.json\'s; '
                                     'tut2018 references: the sorted names found in them)')
    p.add_argument('--nb-classes', type=_number('positive', integer=True, upper=10_000),
                   help='number of classes, for DCASE files without class names')
    p.add_argument('--naming', choices=NAMINGS, help='class naming of tut2018 recordings (default: format.json\'s, '
                                                     'else tut)')
    p.add_argument('--metrics', nargs='+', choices=DEFINITIONS,
                   help=f'definitions (default: format.json\'s, else {" ".join(DEFAULT_DEFINITIONS)}, and dcase2024 '
                        'where both sides have distances)')
    p.add_argument('--average', choices=AVERAGES, help='class averaging of dcase2021/2022/2024 (default: each '
                                                       'year\'s: micro, macro, macro)')
    p.add_argument('--threshold', type=_number('non-negative'),
                   help='DOA threshold in degrees, >= 0 (default: format.json\'s, else 20)')
    p.add_argument('--segment-len', type=_number('positive', upper=MAX_SEGMENT_S),
                   help='segment length in seconds (default: format.json\'s, else 1)')
    p.add_argument('--duration', type=_number('positive', upper=MAX_DURATION_S),
                   help='length of every recording in seconds (default: format.json\'s files, else up to the last '
                        'row of either file)')
    a = p.parse_args(argv)

    if not os.path.isdir(a.pred):
        raise SELDError(f'{a.pred}: prediction folder not found')
    info = read_format_file(a.pred) or {}
    side = os.path.join(a.pred, FORMAT_FILE)
    reference = info.get('reference') or {}
    if not isinstance(reference, dict):
        raise SELDError(f'{side}: "reference" must be an object (format, naming, frame_rate)')
    reference = dict(reference)
    fmt = a.format or info.get('format')
    if fmt is None:
        raise SELDError(f'{a.pred}: no {FORMAT_FILE}; give --format (one of {", ".join(FORMATS)})')
    if a.frame_rate is not None:
        rate = a.frame_rate
    elif info.get('frame_rate') is not None:
        rate = _check_value(side, 'frame_rate', info['frame_rate'], rule='positive', upper=MAX_FRAME_RATE)
    else:
        rate = FORMAT_FRAME_RATE.get(fmt, PAPER_FRAME_RATE)
    naming = a.naming or reference.get('naming') or 'tut'
    if naming not in NAMINGS:
        raise SELDError(f'{side}: reference.naming={naming!r} must be one of {", ".join(NAMINGS)}')
    ref_fmt = a.ref_format or reference.get('format')
    if ref_fmt is not None and ref_fmt not in FORMATS:
        raise SELDError(f'{side}: reference.format={ref_fmt!r} must be one of {", ".join(FORMATS)}')
    stems = sorted(os.path.splitext(n)[0] for n in os.listdir(a.pred) if n.lower().endswith('.csv'))
    if not stems:
        raise SELDError(f'{a.pred}: no .csv files in the prediction folder')
    files = info.get('files') or {}
    if not isinstance(files, dict):
        raise SELDError(f'{side}: "files" must be an object {{stem: {{nb_frames, duration_s}}}}')
    unlisted, absent = [s for s in stems if s not in files], [s for s in files if s not in stems]
    if info and (unlisted or absent):
        raise SELDError(f'{side}: lists {", ".join(absent) or "no missing file"} without a CSV, and does not list '
                        f'{", ".join(unlisted) or "any other"}; the folder must hold what the run wrote')
    ref_paths = find_references(a.ref, stems)
    ref_fmts = reference_formats(ref_paths, ref_fmt=ref_fmt, hint=fmt)
    dcase_fmts = sorted({f for f in ref_fmts.values() if f != 'tut2018'})
    if a.ref_frame_rate is not None:
        ref_rate = a.ref_frame_rate
    elif reference.get('frame_rate') is not None:
        ref_rate = _check_value(side, 'reference.frame_rate', reference['frame_rate'], rule='positive',
                                upper=MAX_FRAME_RATE)
    else:
        ref_rate = FORMAT_FRAME_RATE[dcase_fmts[0]] if dcase_fmts else None
    if a.classes is not None:
        classes = [c.strip() for c in a.classes.split(',')]
        where = f'--classes {a.classes!r}'
    elif info.get('classes'):
        classes = info['classes']
        where = f'{side}: classes'
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise SELDError(f'{where} must be a list of class names')
    elif a.nb_classes is not None:
        classes = [str(i) for i in range(int(a.nb_classes))]
        where = '--nb-classes'
    elif not dcase_fmts:
        classes = desc_class_names(ref_paths.values(), naming=naming)
        where = 'the references'
    else:
        raise SELDError('the classes are unknown: give --classes or --nb-classes (or a format.json)')
    if not classes or any(not c for c in classes) or len(set(classes)) != len(classes):
        raise SELDError(f'{where}: {classes} must be distinct, non-empty class names')
    if a.nb_classes is not None and int(a.nb_classes) != len(classes):
        raise SELDError(f'--nb-classes {a.nb_classes} does not match the {len(classes)} classes {classes}')

    refs, preds, lengths = {}, {}, {}
    for stem in stems:
        entry = files.get(stem) or {}
        if not isinstance(entry, dict):
            raise SELDError(f'{side}: files.{stem} must be an object {{nb_frames, duration_s}}')
        where = f'{side}: files.{stem}'
        duration = a.duration
        nb_frames = None
        if duration is None and entry.get('duration_s') is not None:
            duration = _check_value(where, 'duration_s', entry['duration_s'], rule='positive', upper=MAX_DURATION_S)
            if entry.get('nb_frames') is not None:
                nb_frames = entry['nb_frames']
                if isinstance(nb_frames, bool) or not isinstance(nb_frames, (int, float)) or nb_frames != int(
                        nb_frames) or nb_frames < 1:
                    raise SELDError(f'{where}: nb_frames={nb_frames!r} must be an integer >= 1')
                nb_frames = int(nb_frames)
        if duration is not None and nb_frames is None:
            nb_frames = nb_frames_at(duration, frame_rate=rate)
        refs[stem] = read_reference(ref_paths[stem], fmt=ref_fmts[stem], classes=classes, naming=naming,
                                    frame_rate=ref_rate, duration_s=duration)
        preds[stem] = read_instances(os.path.join(a.pred, stem + '.csv'), fmt=fmt, nb_classes=len(classes),
                                     classes=classes, frame_rate=rate, naming=naming, nb_frames=nb_frames)
        if duration is None:  # no side file: the file lasts until its last row
            duration = max(_last_time(refs[stem], ref_rate), _last_time(preds[stem], rate), 1.0 / rate)
            if duration > MAX_DURATION_S:
                raise SELDError(f'{ref_paths[stem]}: rows up to {duration:g} s; a recording lasts at most '
                                f'{MAX_DURATION_S:g} s')
            nb_frames = nb_frames_at(duration, frame_rate=rate)
        if nb_frames > MAX_FRAMES:
            raise SELDError(f'{stem}: {duration:g} s at {rate:g} frames/s is {nb_frames} frames; at most '
                            f'{MAX_FRAMES} are scored per file')
        lengths[stem] = (float(duration), int(nb_frames))
    with_dist = fmt == 'dcase2024' and all(refs[s].dist is not None and preds[s].dist is not None for s in stems)
    metrics = a.metrics or info.get('metrics') or list(DEFAULT_DEFINITIONS) + ['dcase2024'] * with_dist
    if not isinstance(metrics, list) or not all(m in DEFINITIONS for m in metrics):
        raise SELDError(f'{side}: metrics={metrics!r} must be a list of {", ".join(DEFINITIONS)}')
    threshold = a.threshold if a.threshold is not None else _check_value(
        side, 'doa_threshold', info.get('doa_threshold', 20.0), rule='non-negative')
    segment = a.segment_len if a.segment_len is not None else _check_value(
        side, 'segment_len_s', info.get('segment_len_s', 1.0), rule='positive', upper=MAX_SEGMENT_S)
    average = a.average or info.get('average')
    if average is not None and average not in AVERAGES:
        raise SELDError(f'{side}: average={average!r} must be one of {", ".join(AVERAGES)}')
    scoring = dict(classes=classes, frame_rate=rate, reference=dict(reference, frame_rate=ref_rate),
                   metrics=metrics, doa_threshold=threshold, segment_len_s=segment, average=average)
    try:
        scorer = SELDScorer.from_format(scoring)
    except SELDError:
        raise
    except ValueError as err:  # e.g. a segment shorter than a frame of a grid
        raise SELDError(f'--segment-len / --frame-rate / {FORMAT_FILE}: {err}') from err
    for stem in stems:
        scorer.add_instances(stem, refs[stem], preds[stem], duration_s=lengths[stem][0], nb_frames=lengths[stem][1])
    res = scorer.results()
    print(f'{scorer.nb_files} files, predictions {fmt} at {rate:g} frames/s, references '
          f'{"/".join(sorted(set(ref_fmts.values())))}; grids:', file=sys.stderr)
    for name, g in scorer.grids().items():
        print(f'  {name:<20} {g["frame_rate"]:g} fps, segments {g["frames_per_segment"] or "-"}, '
              f'prediction {g["prediction"]}', file=sys.stderr)
    print(_table(res), file=sys.stderr)
    print(json.dumps(_json_safe(res), indent=2))
    return 0


if __name__ == '__main__':
    run_cli(main)

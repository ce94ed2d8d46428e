"""Scoring SELD predictions: :class:`SELDMetrics`, an accumulator (sed_eval style: ``evaluate`` per file, then
``results``) of any set of metric definitions at ONE frame rate, and :class:`SELDScorer`, which scores a recording's
reference and the model's prediction on the grid of each definition.

``seld.py`` (in memory) and ``python evaluation_metrics.py --ref DIR --pred DIR`` (from the written files) both use
:class:`SELDScorer`, so their numbers agree. docs/metrics.md is the reference (section *Grids*: how each side is
brought to each grid); the definitions are in :mod:`metric_definitions`.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from formats import FORMAT_FRAME_RATE
from label_frames import (Events, Instances, as_sed, check_instances, doa_vectors, events_to_instances,
                     instances_to_matrices, nb_frames_at, resample_instances, unit, upsample_instances)
from metric_definitions import (AVERAGES, DEFAULT_DEFINITIONS, DEFINITIONS, NO_DISTANCE_DEFINITIONS,
                                definition_counts, definition_scores, frames_per_segment)
from utils import SELDError

#: Frame rate of each DCASE definition's grid (seld2018 and seld2018_legacy: the prediction's rate).
GRID_RATE = {'dcase2019': 50.0, 'dcase2020': 10.0, 'dcase2020_corrected': 10.0, 'dcase2021': 10.0,
             'dcase2022': 10.0, 'dcase2024': 10.0, 'dcase2024_nodist': 10.0, 'dcase2025': 10.0}


# ==================================================================================================
# The accumulator (one frame rate)
# ==================================================================================================
class SELDMetrics:
    """Accumulate SELD metrics over files at one frame rate, sed_eval style: :meth:`evaluate`, then :meth:`results`.

    Counts and sums are accumulated, so the results equal those of one evaluation of all files concatenated (with
    segments restarting at every file). To score a model's output on each year's grid, use :class:`SELDScorer`.

    Parameters
    ----------
    nb_classes : int
    frame_rate : float
        Frames per second of what :meth:`evaluate` gets; every definition is computed at this rate.
    segment_len_s : float
        Segment length: ``int(frame_rate * segment_len_s)`` frames.
    doa_threshold : float
        Degrees, for the DCASE 2020+ definitions.
    definitions : sequence of str
        Any of :data:`DEFINITIONS` (default: all but dcase2024, which needs distances).
    average : {'micro', 'macro'}, optional
        Class averaging of dcase2021, dcase2022, dcase2024, dcase2025 (default: each year's).
    dist_threshold, reldist_threshold : float
        dcase2024, dcase2025: absolute (metres) and relative distance error thresholds.

    Examples
    --------
    >>> m = SELDMetrics(nb_classes=11, frame_rate=44100 / 256)
    >>> for ref_sed, ref_doa, pred_sed, pred_doa in files:   # doctest: +SKIP
    ...     m.evaluate(ref_sed, ref_doa, pred_sed, pred_doa)
    >>> m.results()['seld2018']['seld_score']                 # doctest: +SKIP
    """

    def __init__(self, *, nb_classes: int, frame_rate: float, segment_len_s: float = 1.0,
                 doa_threshold: float = 20.0, definitions: Sequence[str] = NO_DISTANCE_DEFINITIONS,
                 average: str | None = None, dist_threshold: float = math.inf, reldist_threshold: float = 1.0) -> None:
        unknown = [d for d in definitions if d not in DEFINITIONS]
        if unknown or not definitions:
            raise ValueError(f'definitions {list(definitions)} must be among {DEFINITIONS}')
        if average is not None and average not in AVERAGES:
            raise ValueError(f'average={average!r} must be one of {AVERAGES} (or None: each year\'s default)')
        if int(nb_classes) < 1:
            raise ValueError(f'nb_classes={nb_classes} must be >= 1')
        for name, v in (('doa_threshold', doa_threshold), ('dist_threshold', dist_threshold),
                        ('reldist_threshold', reldist_threshold)):
            if not v >= 0:
                raise ValueError(f'{name}={v} must be >= 0')
        self.nb_classes = int(nb_classes)
        self.frame_rate = float(frame_rate)
        self.segment_len_s = float(segment_len_s)
        self.frames_per_segment = frames_per_segment(frame_rate=frame_rate, segment_len_s=segment_len_s)
        self.doa_threshold = float(doa_threshold)
        self.dist_threshold = float(dist_threshold)
        self.reldist_threshold = float(reldist_threshold)
        self.definitions = tuple(dict.fromkeys(definitions))
        self.average = average
        self.reset()

    def reset(self) -> None:
        """Forget every evaluated file."""
        self._n: dict[str, Any] = {}
        self.nb_files = 0

    def _add(self, name: str, counts: dict[str, Any]) -> None:
        acc = self._n.setdefault(name, {})
        for k, v in counts.items():
            acc[k] = acc[k] + v if k in acc else (np.array(v, dtype=np.float64) if np.ndim(v) else v)

    def evaluate(self, ref_sed: np.ndarray, ref_doa: np.ndarray, pred_sed: np.ndarray, pred_doa: np.ndarray,
                 *, ref_instances: Instances | None = None, pred_instances: Instances | None = None) -> None:
        """Add one file.

        Parameters
        ----------
        ref_sed, pred_sed : np.ndarray [shape=(frames, classes)], values in {0, 1}
            Class-wise matrices: seld2018, seld2018_legacy and dcase2019 score these.
        ref_doa, pred_doa : np.ndarray [shape=(frames, 3*classes) or (frames, 2*classes)]
        ref_instances, pred_instances : Instances, optional
            The same file as instance lists at ``frame_rate`` (several instances of a class per frame allowed;
            ``dist`` in metres for dcase2024): dcase2020 to dcase2024 score these. Default: the matrices' active
            (frame, class) pairs (then without distances).
        """
        counts = definition_counts(ref_sed, ref_doa, pred_sed, pred_doa, definitions=self.definitions,
                                   frames_per_segment=self.frames_per_segment, nb_classes=self.nb_classes,
                                   ref_instances=ref_instances, pred_instances=pred_instances,
                                   doa_threshold=self.doa_threshold, dist_threshold=self.dist_threshold,
                                   reldist_threshold=self.reldist_threshold)
        for name, c in counts.items():
            self._add(name, c)
        self.nb_files += 1

    def details(self) -> dict[str, dict[str, Any]]:
        """The accumulated counts per definition (per-class arrays as lists)."""
        return {name: {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in acc.items()}
                for name, acc in self._n.items()}

    def results(self) -> dict[str, dict[str, float]]:
        """Named scores per definition, in the order of ``definitions``.

        Returns
        -------
        results : dict
            ``{definition: {metric: float}}``: :func:`metric_definitions.definition_scores` of the accumulated
            counts (angles in degrees, F and recalls in [0, 1]).
        """
        if self.nb_files == 0:
            raise SELDError('SELDMetrics.results(): no file was evaluated')
        return {name: definition_scores(name, self._n[name], average=self.average) for name in self.definitions}


def flatten_results(res: dict[str, dict[str, float]]) -> dict[str, float]:
    """``{'seld2018': {'error_rate': x}}`` -> ``{'seld2018/error_rate': x}``."""
    return {f'{name}/{k}': v for name, values in res.items() for k, v in values.items()}


# ==================================================================================================
# The scorer: each definition on its grid
# ==================================================================================================
def _integer_ratio(rate: float, base: float) -> int | None:
    """``rate / base`` if it is an integer >= 1 (to 1e-9), else None."""
    r = rate / base
    return int(round(r)) if r >= 1 - 1e-9 and abs(r - round(r)) < 1e-9 else None


class SELDScorer:
    """Score recordings on each definition's grid (docs/metrics.md, *Grids*): ``add`` per file, then ``results``.

    Parameters
    ----------
    classes : sequence of str
        Class names in index order.
    prediction_rate : float
        ``R_p``: frames per second of the predictions given to :meth:`add` (the model rate for TUT-2018 and DCASE
        2019 data, the label rate for DCASE 2020+ data).
    definitions : sequence of str
        Any of :data:`DEFINITIONS` (default :data:`DEFAULT_DEFINITIONS`).
    reference_rate : float, optional
        Frames per second of references given as :class:`label_frames.Instances` (10 for DCASE 2020+ metadata);
        references given as :class:`label_frames.Events` (seconds) need none.
    doa_threshold : float
        Degrees (DCASE 2020+).
    segment_len_s : float
        Segment length in seconds on every grid.
    average : {'micro', 'macro'}, optional
        Class averaging of dcase2021, dcase2022, dcase2024, dcase2025 (default: each year's).
    dist_threshold, reldist_threshold : float
        dcase2024 and dcase2025 distance thresholds (metres; relative).

    Examples
    --------
    >>> s = SELDScorer(classes=names, prediction_rate=44100 / 256)                    # doctest: +SKIP
    >>> s.add(stem, formats.read_desc_file(path, classes=names), sed, doa,              # doctest: +SKIP
    ...       duration_s=30.0, nb_frames=5166)
    >>> s.results()['dcase2021']['f_score']                                             # doctest: +SKIP
    """

    def __init__(self, *, classes: Sequence[str], prediction_rate: float,
                 definitions: Sequence[str] = DEFAULT_DEFINITIONS, reference_rate: float | None = None,
                 doa_threshold: float = 20.0, segment_len_s: float = 1.0, average: str | None = None,
                 dist_threshold: float = math.inf, reldist_threshold: float = 1.0) -> None:
        self.classes = [str(c) for c in classes]
        if not self.classes:
            raise ValueError('classes must name at least one class')
        if not prediction_rate > 0:
            raise ValueError(f'prediction_rate={prediction_rate} must be > 0')
        if reference_rate is not None and not reference_rate > 0:
            raise ValueError(f'reference_rate={reference_rate} must be > 0')
        self.prediction_rate = float(prediction_rate)
        self.reference_rate = None if reference_rate is None else float(reference_rate)
        self.definitions = tuple(dict.fromkeys(definitions))
        kw = dict(nb_classes=len(self.classes), segment_len_s=segment_len_s, doa_threshold=doa_threshold,
                  average=average, dist_threshold=dist_threshold, reldist_threshold=reldist_threshold)
        by_grid: dict[float | None, list[str]] = {}
        for name in self.definitions:
            if name not in DEFINITIONS:
                raise ValueError(f'definitions {list(definitions)} must be among {DEFINITIONS}')
            by_grid.setdefault(GRID_RATE.get(name), []).append(name)
        #: (grid rate or None for R_p with the given nb_frames, accumulator)
        self._grids = [(rate, SELDMetrics(frame_rate=self.prediction_rate if rate is None else rate,
                                          definitions=names, **kw))
                       for rate, names in by_grid.items()]
        self._stems: set[str] = set()

    @classmethod
    def from_format(cls, info: dict[str, Any]) -> 'SELDScorer':
        """The scorer that a prediction folder's side file (:func:`formats.write_format_file`) describes.

        Reads ``classes``, ``frame_rate`` (the prediction rate), ``metrics`` (default
        :data:`DEFAULT_DEFINITIONS`), ``reference.frame_rate`` (default: the format's, for a DCASE
        ``reference.format``; none for ``tut2018``), ``doa_threshold`` (20), ``segment_len_s`` (1) and ``average``
        (each year's). ``seld.py`` builds its in-memory scorer with this from the dict it writes, and the scoring
        command from the file, so both score alike.
        """
        ref = info.get('reference') or {}
        ref_rate = ref.get('frame_rate')
        if ref_rate is None and ref.get('format') in FORMAT_FRAME_RATE:
            ref_rate = FORMAT_FRAME_RATE[ref['format']]
        return cls(classes=info['classes'], prediction_rate=info['frame_rate'],
                   definitions=info.get('metrics') or DEFAULT_DEFINITIONS, reference_rate=ref_rate,
                   doa_threshold=info.get('doa_threshold', 20.0), segment_len_s=info.get('segment_len_s', 1.0),
                   average=info.get('average'))

    @property
    def nb_files(self) -> int:
        return len(self._stems)

    def grids(self) -> dict[str, dict[str, Any]]:
        """How each definition is scored: ``{definition: {frame_rate, frames, frames_per_segment, reference,
        prediction}}`` (the rules of docs/metrics.md, *Grids*, as text)."""
        def conversion(rate: float, base: float | None, other: str) -> str:
            k = None if base is None else _integer_ratio(rate, base)
            return other if k is None else 'as is' if k == 1 else f'each frame repeated {k} times'

        out = {}
        for rate, m in self._grids:
            g = m.frame_rate
            pred = conversion(g, self.prediction_rate, "label_frames.resample_instances(rule='majority')")
            ref = (f'events (seconds) framed at {self.prediction_rate:g} fps by label_frames.events_to_instances, then '
                   f'as the prediction: {pred}')
            if self.reference_rate is not None:
                ref = (f'instances at {self.reference_rate:g} fps: ' + conversion(g, self.reference_rate, 'refused')
                       + '; ' + ref)
            for name in m.definitions:
                out[name] = dict(frame_rate=g, frames='nb_frames (given)' if rate is None else
                                 f'label_frames.nb_frames_at(duration_s, frame_rate={g:g})',
                                 frames_per_segment=(None if name in ('dcase2024', 'dcase2024_nodist', 'dcase2025')
                                                     else m.frames_per_segment),
                                 reference=ref, prediction=pred)
        return {name: out[name] for name in self.definitions}

    def _reference_at(self, stem: str, ref: Events | Instances, rate: float | None, T: int,
                      nb_frames: int) -> Instances:
        """The reference on a grid (``rate`` None: ``R_p``): events in seconds framed once at ``R_p`` by the label
        rule, then converted as the prediction is; instances at their own rate as is or repeated."""
        if isinstance(ref, Events):
            inst = events_to_instances(ref, frame_rate=self.prediction_rate, nb_frames=nb_frames)
            return inst if rate is None else self._prediction_at(inst, rate, T, nb_frames)
        if not isinstance(ref, Instances):
            raise TypeError(f'{stem}: the reference must be label_frames.Events or label_frames.Instances, '
                            f'not {type(ref)}')
        if self.reference_rate is None:
            raise SELDError(f'{stem}: a reference given as instances needs the scorer\'s reference_rate')
        g = self.prediction_rate if rate is None else rate
        k = _integer_ratio(g, self.reference_rate)
        if k is None:
            raise SELDError(f'{stem}: a reference at {self.reference_rate:g} frames/s cannot be scored on a '
                            f'{g:g}-frames/s grid (only integer multiples of its rate: frames are repeated)')
        frame = np.asarray(ref.frame, dtype=np.int64)
        limit = -(-T // k)  # the grid's frames at the reference's rate
        if frame.size and frame.max() >= limit:
            raise SELDError(f'{stem}: reference frame {int(frame.max())} is beyond the recording ({limit} frames at '
                            f'{self.reference_rate:g} frames/s)')
        return ref if k == 1 else upsample_instances(ref, factor=k, nb_frames=T)

    def _prediction_at(self, pred: Instances, rate: float, T: int, nb_frames: int) -> Instances:
        """Instances at ``R_p`` (``nb_frames``) on a grid of ``T`` frames at ``rate``: repeated at an integer
        multiple of ``R_p``, otherwise :func:`label_frames.resample_instances` (majority)."""
        k = _integer_ratio(rate, self.prediction_rate)
        if k is not None:  # the same rate or an integer multiple: frames repeated, those >= T dropped
            return upsample_instances(pred, factor=k, nb_frames=T)
        return resample_instances(pred, nb_classes=len(self.classes), frame_rate=self.prediction_rate,
                                  out_frame_rate=rate, nb_frames=nb_frames, nb_frames_out=T, rule='majority')

    def add(self, stem: str, ref: Events | Instances, pred_sed: np.ndarray, pred_doa: np.ndarray, *,
            duration_s: float, nb_frames: int, pred_dist: np.ndarray | None = None) -> None:
        """Add one recording's reference and class-wise prediction matrices.

        Parameters
        ----------
        stem : str
            The recording's name (in messages; each stem once).
        ref : label_frames.Events or label_frames.Instances
            The reference in seconds, or as instances at ``reference_rate`` (``dist`` in metres for dcase2024).
        pred_sed : np.ndarray [shape=(nb_frames, classes)], values in {0, 1}
            Thresholded activity at ``prediction_rate``.
        pred_doa : np.ndarray [shape=(nb_frames, 3*classes) or (nb_frames, 2*classes)]
            Only the vectors of active classes are scored, as unit vectors (what a prediction file holds).
        duration_s : float
            The recording's length in seconds.
        nb_frames : int
            Its number of frames at ``prediction_rate``.
        pred_dist : np.ndarray [shape=(nb_frames, classes)], optional
            Predicted distances in metres (dcase2024).
        """
        C = len(self.classes)
        act = as_sed(pred_sed, f'{stem}: pred_sed')
        vec = doa_vectors(pred_doa, nb_classes=C)
        if act.shape != (int(nb_frames), C) or vec.shape[0] != act.shape[0]:
            raise SELDError(f'{stem}: pred_sed {act.shape} and pred_doa {np.shape(pred_doa)} must have '
                            f'nb_frames={nb_frames} rows and {C} classes')
        t, c = np.nonzero(act)
        v = unit(vec[t, c])
        if v.shape[1] == 2:  # azimuth-only: elevation 0, as written to a file
            v = np.concatenate([v, np.zeros((v.shape[0], 1))], axis=1)
        dist = None
        if pred_dist is not None:
            pd = np.asarray(pred_dist, dtype=np.float64)
            if pd.shape != act.shape:
                raise SELDError(f'{stem}: pred_dist {pd.shape} must be {act.shape}')
            dist = pd[t, c]
        self.add_instances(stem, ref, Instances(t.astype(np.int64), c.astype(np.int64), np.zeros(t.size, np.int64),
                                                v, dist), duration_s=duration_s, nb_frames=nb_frames)

    def add_instances(self, stem: str, ref: Events | Instances, pred: Instances, *, duration_s: float,
                      nb_frames: int) -> None:
        """Add one recording whose prediction is an instance list at ``prediction_rate`` (e.g. a DCASE file, with
        several instances of a class per frame, a ``dist`` in metres); see :meth:`add`.

        Raises
        ------
        SELDError
            Naming the stem: a stem added twice, ``nb_frames / prediction_rate`` more than 1 s away from
            ``duration_s``, a prediction or reference frame beyond the recording, a reference rate that the grid is
            not an integer multiple of, dcase2024 without distances. The scorer is unchanged then.
        """
        if stem in self._stems:
            raise SELDError(f'{stem}: scored twice')
        nb_frames = int(nb_frames)
        if not (duration_s > 0 and nb_frames >= 1):
            raise SELDError(f'{stem}: duration_s={duration_s} must be > 0 and nb_frames={nb_frames} >= 1')
        if abs(nb_frames / self.prediction_rate - duration_s) >= 1.0:
            raise SELDError(f'{stem}: nb_frames={nb_frames} at {self.prediction_rate:g} frames/s is '
                            f'{nb_frames / self.prediction_rate:.3f} s, but duration_s={duration_s}')
        C = len(self.classes)
        try:
            pred = check_instances(pred, nb_frames=nb_frames, nb_classes=C, name='prediction')
            if pred.vec.shape[1] == 2:  # azimuth-only (the 2025 output): elevation 0, as written to a file
                pred = pred._replace(vec=np.concatenate([pred.vec, np.zeros((pred.vec.shape[0], 1))], axis=1))
            inputs = []  # every grid's input first, so that a bad file leaves the accumulators as they were
            for rate, metrics in self._grids:
                T = nb_frames if rate is None else nb_frames_at(duration_s, frame_rate=rate)
                g = metrics.frame_rate
                ref_g = self._reference_at(stem, ref, rate, T, nb_frames)
                pred_g = pred if rate is None else self._prediction_at(pred, g, T, nb_frames)
                for name in (n for n in metrics.definitions if n in ('dcase2024', 'dcase2025')):
                    if ref_g.dist is None or pred_g.dist is None:
                        raise SELDError(f'{stem}: {name} needs distances in both the reference and the prediction '
                                        f'(the {"reference" if ref_g.dist is None else "prediction"} has none)')
                inputs.append((metrics, *instances_to_matrices(ref_g, nb_classes=C, nb_frames=T, same_class='last'),
                               *instances_to_matrices(pred_g, nb_classes=C, nb_frames=T, same_class='last'),
                               ref_g, pred_g))
        except SELDError:
            raise
        except ValueError as err:
            raise SELDError(f'{stem}: {err}') from err
        for metrics, rs, rd, ps, pd, ref_g, pred_g in inputs:
            metrics.evaluate(rs, rd, ps, pd, ref_instances=ref_g, pred_instances=pred_g)
        self._stems.add(stem)

    def results(self) -> dict[str, dict[str, float]]:
        """``{definition: {metric: value}}`` in the order of ``definitions`` (see :meth:`SELDMetrics.results`)."""
        if not self._stems:
            raise SELDError('SELDScorer.results(): no file was added')
        res: dict[str, dict[str, float]] = {}
        for _, metrics in self._grids:
            res.update(metrics.results())
        return {name: res[name] for name in self.definitions}

    def details(self) -> dict[str, dict[str, Any]]:
        """The accumulated counts per definition (:meth:`SELDMetrics.details`)."""
        out: dict[str, dict[str, Any]] = {}
        for _, metrics in self._grids:
            out.update(metrics.details())
        return out

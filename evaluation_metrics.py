"""SELD metrics: the SELDnet paper's and each DCASE year's (2019-2024), on each year's grid, and the scoring command.

Three layers, vectorized (no per-frame Python loops):

* the **definitions** below, as functions of frame-wise matrices or DOA instance lists that return *counts*, and
  of accumulated counts that return scores;
* :class:`SELDMetrics`, an accumulator (sed_eval style: ``evaluate`` per file, then ``results``) of any set of
  definitions at ONE frame rate;
* :class:`SELDScorer`, which scores a recording's reference and the model's prediction on the grid of each
  definition (section *Grids*). ``seld.py`` (in memory) and ``python evaluation_metrics.py --ref DIR --pred DIR``
  (from the written files) both use it, so their numbers agree.

Data conventions
----------------
``sed`` : np.ndarray [shape=(frames, classes)], values in {0, 1}.
``doa`` : np.ndarray [shape=(frames, 3*classes)] in blocks ``[x_0..x_{C-1}, y_0.., z_0..]`` (zeros where inactive),
    or [shape=(frames, 2*classes)] ``[x.., y..]`` for azimuth-only models.
Instance lists are :class:`formats.Instances` (several instances of a class per frame allowed, ``dist`` in metres).
Angles are in degrees (azimuth ``atan2(y, x)``, elevation positive up); an angle is the great-circle angle between
two direction vectors (the official codes' spherical-coordinate formula gives the same angle).
Segments: ``frames_per_segment = int(frame_rate * segment_len_s)`` (172 at 44100/256 = 172.27 fps, as
``nb_frames_1s = int(frame_rate)`` of the original code; 50 at 50 fps; 10 at 10 fps); segment ``s`` holds frames
``[s*n, (s+1)*n)``; a last, partial segment counts.

Definitions (``definitions=``)
------------------------------
Sources are read at these commits of the official repositories on GitHub (sharathadavanne/..., partha2409/...):
seld-dcase2019 e88c62b, seld-dcase2020 384ad9b, seld-dcase2021 f8e09db, seld-dcase2022 c8adb1d, seld-dcase2023
24d14c9, DCASE2024_seld_baseline (partha2409) 0b07887. ``eps``-guarded ratios of the official code are exact here.

``seld2018``
    Adavanne et al., IEEE JSTSP 2019, Sec. V. Segment-based SED (sed_eval, Mesaros et al. 2016): a class is active
    in a segment if active in ANY of its frames. Per segment ``FN = #(ref & ~pred)``, ``FP = #(~ref & pred)``,
    ``S = min(FN, FP)``, ``D = max(0, FN - FP)``, ``I = max(0, FP - FN)``; ``ER = sum(S + D + I) / N_ref``;
    ``F = 2 TP / (2 TP + FP + FN)`` (micro). DOA error: mean over the reference-active (frame, class) pairs that
    are also PREDICTED ACTIVE of the angle between the reference DOA and the predicted DOA of that class (what a
    prediction file holds: the DOAs of the predicted-active classes); the reference-active pairs without an
    estimate are reported beside it as ``doa_missing`` (a count), so a model that detects little cannot look
    precise unseen. (The paper's code measured every reference-active pair against the raw regression output,
    active or not; a file cannot hold those outputs, and ``seld2018_legacy`` keeps that rule.) Frame recall: share
    of frames with as many predicted as reference active classes. ``seld_score = mean(ER, 1 - F, DOA / 180, 1 -
    FR)``.
``seld2018_legacy``
    The original seld-net code (``evaluation_metrics.py`` + ``seld.py``): blocks ``O[i*bs : i*bs+bs-1]`` (the last
    frame of every block is dropped - seld-net issue #16), ER on ``floor(frames / bs)`` blocks, F on ``ceil``; DOA
    ``2 arcsin(min(d / 2, 1))`` of the mean Euclidean (chord) length ``d`` between the raw predicted and reference
    vectors over reference-active pairs (chords averaged before conversion - issue #16). The original concatenated
    all test sequences before blocking; here each file is blocked on its own.
``dcase2019``
    seld-dcase2019 ``metrics/evaluation_metrics.py``: ``compute_sed_scores`` (``f1_overall_1sec``,
    ``er_overall_1sec``) and ``compute_doa_scores_regr``, as ``seld.py`` calls them on the regression outputs at
    20-ms frames (``nb_frames_1s = 50``). SED: the blocks ``O[i*50 : i*50+49]`` of BOTH functions drop the last frame
    of every block (reproduced), ``ceil(frames / 50)`` blocks for ER and F; ER and F as ``seld2018``. DOA: in each
    frame where both have active classes, the predicted and reference DOAs (one per active class) are matched by
    the Hungarian algorithm on the angle REGARDLESS OF CLASS; ``DOA error = sum of matched angles / total number
    of predicted DOAs`` (unmatched predictions only enlarge the denominator, which lowers the error - reproduced).
    Frame recall and SELD score as ``seld2018``. Several reference instances of a class in a frame: the last one
    (as the 2019 regression labels, ``same_class='last'``).
``dcase2020``
    seld-dcase2020 ``metrics/SELD_evaluation_metrics.py``, ``SELDMetrics.update_seld_scores`` (polar, as
    ``calculate_dev_results_from_dcase_output.py`` scores the files) and ``compute_seld_scores``; location-aware
    detection of Mesaros et al., WASPAA 2019. Per 1-s segment and class: present in both -> over the frames where
    both have the class, the frame's distance is the SUM of the Hungarian-matched angles of its DOAs (one pair with
    one DOA each); the segment's distance ``d`` is their mean over those frames. ``d <= threshold`` is a TP,
    otherwise a FN; no common frame -> FN; ``d`` adds to ``LE`` and counts a ``DE_TP`` whenever a common frame
    exists. Reference only -> FN; prediction only -> FP. ``N_ref`` / ``N_sys`` = class-segments present.
    ``ER = sum_seg (S + D + I) / N_ref``, ``F = 2 TP / (N_ref + N_sys)`` (the code's ``2PR/(P+R)``),
    ``LE = sum d / DE_TP``, and as ``localization_recall`` the value the code returns in that place and the
    challenge published as LR_CD: ``DE_F = 2 DE_TP / (N_ref + N_sys)`` (an F-score). ``seld_score = mean(ER,
    1 - F, LE / 180, 1 - DE_F)``. (Before commit c0d6ccf, 2020-04-25, the Cartesian distance was
    ``2 arcsin(clip(chord, -1, 1) / 2)``, capping errors at 60 degrees; HEAD and the published numbers use angles.)
``dcase2020_corrected``
    ``dcase2020`` as the task description defines it: ``localization_recall = DE_TP / N_ref`` (not DE_F), and a
    frame with several same-class DOAs contributes the MEAN (not the sum) of its matched angles.
``dcase2021``
    seld-dcase2021 ``metrics/SELD_evaluation_metrics.py`` (HEAD, after the multi-instance fix 0fae38e), default
    micro. Per segment and class, ``n_ref`` / ``n_pred`` = the largest number of simultaneous reference / predicted
    instances of the class in a frame of the segment. Both present -> in every frame where both have instances they
    are matched by the Hungarian algorithm; the matched angles are grouped by the reference instance's position in
    the frame (a "track": the code ignores track ids, ``gt_ids = np.arange(...)``), averaged over the segment; each
    track is a ``DE_TP`` (its mean adds to ``LE``) and a TP if ``<= threshold``, else a spatial miss, which the code
    adds to FP (``self._FP += 1``); then ``n_pred > n_ref`` adds FPs and ``n_pred < n_ref`` FNs. No common frame ->
    ``n_pred`` FNs (not ``n_ref`` - reproduced). Reference only -> ``n_ref`` FNs; prediction only -> ``n_pred`` FPs.
    Per segment ``S/D/I`` from its FN and FP (spatial misses included); ``N_ref = sum n_ref``; ``DE_FN = FN``.
    ``ER = sum (S + D + I) / N_ref``; ``F = TP / (TP + (FP + FP_spatial + FN) / 2)`` (a spatial miss weighs 1/2);
    ``LE = sum track means / DE_TP``; ``LR = DE_TP / (DE_TP + DE_FN)``; ``seld_score = mean(ER, 1 - F, LE/180,
    1 - LR)``.
``dcase2022`` (= 2023)
    seld-dcase2022 and seld-dcase2023 ``SELD_evaluation_metrics.py`` (identical files), default macro: the counts
    of ``dcase2021``, with the spatial misses kept apart: ``F_c = TP_c / (TP_c + FP_spatial_c + (FP_c + FN_c) / 2)``
    (a spatial miss weighs 1); ``LE_c = sum_c / DE_TP_c``, 180 for a class without ``DE_TP``; ``LR_c = DE_TP_c /
    (DE_TP_c + DE_FN_c)``; F, LE, LR are the means over ALL classes (a class absent from reference and prediction
    counts F 0, LE 180, LR 0); ER is the overall ER. ``micro`` pools the counts first.
``dcase2024``
    DCASE2024_seld_baseline ``SELD_evaluation_metrics.py``, ``SELDMetrics`` (frame level, ``evaluate_distance=True``,
    ``segment_based_metrics=False``, ``average='macro'``, ``lad_doa_thresh=20``, ``lad_dist_thresh=inf``,
    ``lad_reldist_thresh=1`` of its ``parameters.py``). Per 100-ms frame and class with ``R`` reference and ``P``
    predicted instances: both present -> Hungarian matching on the angle, ``K = min(P, R)`` pairs, each a ``DE_TP``
    whose angle, ``|d_p - d_r|`` and ``|d_p - d_r| / (d_r + eps)`` add to the DOA, distance and relative distance
    errors; a pair is a spatial FP if ``angle > 20`` OR ``|d_p - d_r| > dist_threshold`` OR the relative error
    ``> 1`` (so a relative error of exactly 1 still passes), else a TP; ``P > R`` adds ``P - R`` FPs, ``P < R``
    adds ``R - P`` FNs. Reference only -> ``R`` FNs; prediction only -> ``P`` FPs. S/D/I per frame.
    ``F_c = TP_c / (TP_c + FP_spatial_c + (FP_c + FN_c) / 2)``; ``doa_error_c``, ``distance_error_c`` (metres) and
    ``relative_distance_error_c`` are sums / ``DE_TP_c`` (NaN without a ``DE_TP``); macro: F and LR are means over
    all classes, the errors NaN-means over classes; ``seld_score = mean over classes of nanmean(1 - F_c,
    doa_error_c / 180, relative_distance_error_c)`` (micro: the nanmean of the pooled terms); ER and LR are reported
    but not in the score. The angle is the code's ``arccos(clip(u.v / (sqrt(|u|^2 + 1e-10) sqrt(|v|^2 + 1e-10))))``
    (reproduced: 8.1e-4 degrees for identical directions). Needs a distance on both sides: the official scoring
    reads the REFERENCE files with ``cm2m=True`` (STARSS23 metadata distances in cm, divided by 100) and the
    predictions as written (metres); the scoring command does the same, and in memory both go in metres.

``average=``: ``None`` uses each year's default (dcase2021 micro, dcase2022 and dcase2024 macro); ``'micro'`` or
``'macro'`` applies to those three (dcase2021 macro: per-class F with the 2021 weights, LE 180 for a class without
``DE_TP``, as dcase2022). seld2018, dcase2019 and dcase2020 pool the counts by definition.

Grids (:class:`SELDScorer`)
---------------------------
A recording of ``duration_s`` seconds has ``T_g = formats.nb_frames_at(duration_s, frame_rate=g)`` frames on grid
``g``; on the prediction's own rate ``R_p`` it has the given ``nb_frames`` (for TUT-2018 the feature frame count,
5166 for 30 s at 44.1 kHz / 256, not ``ceil(30 * 172.27)``).

====================================================  ============  ==========================================
definitions                                           grid          segments
====================================================  ============  ==========================================
seld2018, seld2018_legacy                             ``R_p``       ``int(R_p * segment_len_s)`` frames
dcase2019                                             50 fps        50 frames
dcase2020, dcase2020_corrected, dcase2021, dcase2022  10 fps        10 frames (1 s)
dcase2024                                             10 fps        none (frame level)
====================================================  ============  ==========================================

* One conversion for both sides. The prediction is scored as written: the DOAs of the predicted-active classes
  as unit vectors (what a DCASE file holds). On the grid of ``R_p`` it is used as is; on an integer multiple of
  ``R_p`` each frame is repeated (:func:`formats.upsample_instances`); otherwise it is converted by
  :func:`formats.resample_instances` with ``rule='majority'`` - the pipeline's conversion (SELDnet outputs one
  frame per STFT hop, unlike the 2020+ baselines whose CNN pools time down to the label rate; a class active in
  more than half of the model frames of a grid frame is the analogue, its direction their mean). Frames at or
  beyond ``T_g`` are not scored.
* A reference in seconds (:class:`formats.Events`: TUT-2018 descriptions, DCASE 2019 metadata) is framed ONCE, at
  ``R_p`` over the given ``nb_frames``, by the one framing rule (:func:`formats.events_to_instances`, the rule the
  training labels are made with), and then brought to every other grid by exactly the prediction's conversion.
  Reference and prediction therefore meet every grid through the same function: the stored labels fed back as
  the prediction score ER 0, F 1, DOA/LE 0, FR/LR 1 on every grid (tests/test_oracle.py), and no grid carries a
  floor of its own. (Framing the seconds on each grid directly, ``ceil(end * rate)`` inclusive, while the
  prediction was majority-converted, cost a perfect TUT-2018 prediction ER 0.07 to 0.14 on the 100-ms grids.) Two
  instances of one class in one frame (same-class overlap) stay two: the conversion works on layers, layer 0
  being the instance the class-wise labels keep (:func:`formats.resample_instances`).
* A reference given as instances at its label rate (10 fps for DCASE 2020+) is used as is on a grid of that rate,
  and on a grid of an integer multiple of it (dcase2019's 50 fps, a 50-fps model rate) by repeating each frame
  (:func:`formats.upsample_instances`); any other rate is refused (a reference is never down-sampled or
  interpolated). The pipeline's labels are made from it by the same repetition and its predictions for such data
  are converted to the label rate (``R_p`` = 10 fps) by majority, which undoes the repetition exactly.
* seld2018 and dcase2019 score class-wise matrices (one DOA per class and frame: the last instance of a class in a
  frame, ``same_class='last'``); dcase2020 to dcase2024 score the instance lists.

Where the official code cannot score a perfect prediction perfectly (reproduced)
--------------------------------------------------------------------------------
* dcase2022 (= 2023) macro average: a class absent from both reference and prediction counts F 0, LE 180 and
  LR 0 in the class means, so a perfect prediction of a split holding ``k`` of ``C`` classes scores
  ``F = LR = k / C`` and ``LE = 180 (C - k) / C`` (a fold missing 3 of 11 classes: F 0.727, LE 49.1 degrees).
  dcase2024's macro F and LR likewise count such a class 0. ``average='micro'`` (``--average micro``) pools the
  counts and gives F 1, LE 0, LR 1. Small test splits rarely hold every class: read their macro numbers with this.
* dcase2024's angle adds 1e-10 to both squared norms: identical directions are 8.1e-4 degrees apart.

Undefined cases (documented choices)
------------------------------------
* ``N_ref = 0``: ``ER = (S + D + I) / 1``: 0 for an empty prediction, the number of insertions otherwise (the
  official codes divide by ``N_ref + eps``, ~4.5e15 per insertion; sed_eval gives NaN).
* A zero denominator of an F-score or a recall gives 0 (the official codes' value). Empty prediction: F 0, ER 1.
* A DOA / localization error with no pair to measure is NaN (the official value is 0 in 2019, 180 in 2020-2023 and
  NaN in 2024); the SELD score counts 180 for that term (2019-2023; the 2020-2023 value) or leaves it out
  (dcase2024's nanmean, official). In dcase2022-style macro averages a class without ``DE_TP`` counts LE 180 as the
  official code, and the overall LE is NaN only when no class has one. The JSON output writes NaN as null.
* A predicted active class with a zero DOA vector is 90 degrees from everything; a reference-active class must have
  a non-zero vector.

The scoring command
-------------------
``python evaluation_metrics.py --ref <dataset description folder> --pred <run>/predictions`` scores the CSVs of
``--pred`` (only those; ``<stem>.csv`` is paired with the one ``<stem>.csv`` found anywhere below ``--ref``, so a
DCASE ``metadata_dev/`` with ``dev-train/``, ``dev-test/`` ... works; a missing or duplicated reference is an
error). A reference with the ``tut2018`` header row is a description in seconds; a headerless one is DCASE
metadata of the format named by ``reference.format`` (or ``--ref-format``), else of the format its field count
says (:func:`formats.infer_dcase_format`: 4 dcase2019, 5 dcase2020, 7 dcase2024; 6 dcase2024 if the predictions
are, otherwise an error asks for ``--ref-format``). Every reference is read by :func:`formats.read_reference`
(the datasets' reader too: dcase2024 distances from cm to metres). The prediction folder's side file
``format.json`` (:func:`formats.write_format_file`) is read for these keys, each overridden by its flag:

==============================  ======================  ================================================================
key                             flag                    meaning
==============================  ======================  ================================================================
``format``                      ``--format``            prediction file format (:data:`formats.FORMATS`)
``frame_rate``                  ``--frame-rate``        ``R_p``, prediction frames per second
``classes``                     ``--classes``           class names in index order
``files.<stem>.nb_frames``      (``--duration``)        frames at ``R_p``; rows beyond are an error
``files.<stem>.duration_s``     ``--duration``          the recording's length (every grid's ``T_g``)
``reference.format``            ``--ref-format``        format of headerless references
``reference.naming``            ``--naming``            tut2018 class naming (``tut``, ``real``, ``plain``)
``reference.frame_rate``        ``--ref-frame-rate``    DCASE reference frames per second (null: the format's)
``metrics``                     ``--metrics``           definitions (default :data:`DEFAULT_DEFINITIONS`, and dcase2024
                                                        for dcase2024 files with distances on both sides)
``doa_threshold``               ``--threshold``         degrees (20)
``segment_len_s``               ``--segment-len``       seconds (1)
``average``                     ``--average``           optional; each year's default
==============================  ======================  ================================================================

Every CSV of the folder must be listed in ``files`` and every listed stem must have a CSV. Other keys (e.g.
``dataset``) are not read. Without a side file, ``--format`` is needed, the classes come from ``--classes`` /
``--nb-classes`` (or the names in tut2018 references), and each recording lasts until the last row of its
reference or prediction unless ``--duration`` says otherwise. Flags and side-file values are checked: numbers
finite, frame rates, durations and segment lengths > 0 and bounded (:data:`MAX_FRAME_RATE`,
:data:`MAX_DURATION_S`, :data:`MAX_SEGMENT_S`, :data:`MAX_FRAMES` per file), ``--threshold`` >= 0, ``--nb-classes``
an integer >= 1, class names distinct; a 0 is never replaced by a default. Every error, argparse's included, is
one line (``error: ...``, exit 2). The JSON on stdout is :meth:`SELDScorer.results`
(NaN as null); the grids and a table go to stderr. ``seld.py`` builds its scorer with :meth:`SELDScorer.from_format`
from the same dict it writes, so the JSON reproduces the run's numbers.

Official behaviour not reproduced
---------------------------------
* The 2019 challenge script ``calculate_SELD_metrics.py`` scores integer-degree files on a 10-degree grid
  (``get_list_index``: ``(azi + 180) // 10``, predictions clipped to elevations -40..40); the definition here is the
  regression scoring of ``seld.py``, which is what a file with full-precision angles holds.
* ``cls_compute_seld_results.py`` of 2022-2024 scores each file only up to ``max(reference frame index)``: predicted
  frames after the last reference event are never scored, and the last reference frame itself is dropped at frame
  level (2024) or when it starts a segment (2022-2023). Here every frame of the recording (``T_g``) is scored; the
  2021 script used the fixed 60-s length, which this equals for its data.
* The DCASE 2020 ``seld.py`` scores in Cartesian coordinates during training (``update_seld_scores_xyz``, with the
  ``+ 1e-10`` normalisation of 2024); its file scoring, reproduced, is polar.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
from typing import Any, Callable, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from formats import (DESC_HEADER, FORMAT_FILE, FORMAT_FRAME_RATE, FORMATS, NAMINGS, Events, Instances, as_sed,
                     check_instances, desc_class_names, doa_vectors, events_to_instances, has_desc_header,
                     instances_to_matrices, matrices_to_instances, nb_frames_at, read_desc_file, read_format_file,
                     infer_dcase_format, read_instances, read_reference, resample_instances, unit, upsample_instances)
from utils import SELDError, angular_distance_deg, run_cli

DEFINITIONS = ('seld2018', 'seld2018_legacy', 'dcase2019', 'dcase2020', 'dcase2020_corrected', 'dcase2021',
               'dcase2022', 'dcase2024')
#: Definitions scored when none are named (dcase2024 is added where reference and prediction have distances).
DEFAULT_DEFINITIONS = ('seld2018', 'dcase2019', 'dcase2020', 'dcase2021', 'dcase2022')
#: Every definition that needs no distances.
NO_DISTANCE_DEFINITIONS = tuple(d for d in DEFINITIONS if d != 'dcase2024')
AVERAGES = ('micro', 'macro')
#: Each year's default class averaging (the others pool counts by definition).
DEFAULT_AVERAGE = {'dcase2021': 'micro', 'dcase2022': 'macro', 'dcase2024': 'macro'}
#: Frame rate of each DCASE definition's grid (seld2018 and seld2018_legacy: the prediction's rate).
GRID_RATE = {'dcase2019': 50.0, 'dcase2020': 10.0, 'dcase2020_corrected': 10.0, 'dcase2021': 10.0,
             'dcase2022': 10.0, 'dcase2024': 10.0}
#: The SELDnet paper's model frame rate, fs / hop = 44100 / 256.
PAPER_FRAME_RATE = 44100 / 256
EPS = float(np.finfo(float).eps)  # the official codes' eps, kept where it changes a value (2024 relative distance)
_SEGMENT_LA = ('dcase2020', 'dcase2020_corrected', 'dcase2021', 'dcase2022')
_MAX_PERMUTATIONS = 5040  # larger assignment problems go to scipy's linear_sum_assignment


# ==================================================================================================
# Input checking and layout
# ==================================================================================================
def frames_per_segment(*, frame_rate: float, segment_len_s: float = 1.0) -> int:
    """Frames per segment: ``int(frame_rate * segment_len_s)`` (172 for 172.27 fps and 1 s).

    Parameters
    ----------
    frame_rate : float
        Frames per second.
    segment_len_s : float
        Segment length in seconds.
    """
    if not (frame_rate > 0 and segment_len_s > 0):
        raise ValueError(f'frame_rate={frame_rate} and segment_len_s={segment_len_s} must be > 0')
    n = int(frame_rate * segment_len_s + 1e-9)
    if n < 1:
        raise ValueError(f'segment_len_s={segment_len_s} holds no frame at {frame_rate} frames/s')
    return n


def _check_pair(ref_sed: np.ndarray, pred_sed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref = as_sed(ref_sed, 'ref_sed')
    pred = as_sed(pred_sed, 'pred_sed')
    if ref.shape != pred.shape:
        raise ValueError(f'ref_sed {ref.shape} and pred_sed {pred.shape} must have the same shape')
    return ref, pred


def _ratio(num: Any, den: Any, undefined: float) -> np.ndarray:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.full(np.broadcast(num, den).shape, undefined), where=den > 0)


def _nanmean(x: Any, axis: int | None = None) -> Any:
    """``np.nanmean`` without the warning: NaN where everything is NaN."""
    x = np.asarray(x, dtype=np.float64)
    n = np.sum(~np.isnan(x), axis=axis)
    return _ratio(np.nansum(x, axis=axis), n, np.nan)


# ==================================================================================================
# Segment-based SED (seld2018, seld2018_legacy, dcase2019)
# ==================================================================================================
def segment_activity(sed: np.ndarray, *, frames_per_segment: int, legacy: bool = False,
                     keep_partial: bool = True) -> np.ndarray:
    """Class activity per segment: active if active in ANY frame of the segment.

    Parameters
    ----------
    sed : np.ndarray [shape=(frames, classes)], values in {0, 1}
    frames_per_segment : int
        Segment ``s`` holds frames ``[s*n, (s+1)*n)``.
    legacy : bool
        Reproduce the original ``O[i*n : i*n+n-1]`` slicing (seld-net, DCASE 2019), which leaves out the last
        frame of every segment.
    keep_partial : bool
        Count a last, partial segment (True; seld-net's ER dropped it).

    Returns
    -------
    seg : np.ndarray [shape=(segments, classes)], bool
        ``segments = ceil(frames / n)`` (``floor`` if not ``keep_partial``).
    """
    arr = as_sed(sed, 'sed')
    n = int(frames_per_segment)
    if n < 1:
        raise ValueError(f'frames_per_segment={frames_per_segment} must be >= 1')
    T, C = arr.shape
    nb_seg = -(-T // n) if keep_partial else T // n
    padded = np.zeros((nb_seg * n, C), dtype=bool)
    m = min(T, nb_seg * n)
    padded[:m] = arr[:m]
    blocks = padded.reshape(nb_seg, n, C)
    if legacy:
        blocks = blocks[:, :n - 1]
    return blocks.any(axis=1)


def segment_counts(ref_seg: np.ndarray, pred_seg: np.ndarray) -> dict[str, int]:
    """Counts of the segment-based SED metrics from segment activity matrices.

    Parameters
    ----------
    ref_seg, pred_seg : np.ndarray [shape=(segments, classes)], bool

    Returns
    -------
    counts : dict
        ``tp, fp, fn, substitutions, deletions, insertions, n_ref, n_sys, segments`` (ints).
    """
    ref, pred = _check_pair(ref_seg, pred_seg)
    fn = (ref & ~pred).sum(axis=1)
    fp = (~ref & pred).sum(axis=1)
    return dict(tp=int((ref & pred).sum()), fp=int(fp.sum()), fn=int(fn.sum()),
                substitutions=int(np.minimum(fn, fp).sum()), deletions=int(np.maximum(0, fn - fp).sum()),
                insertions=int(np.maximum(0, fp - fn).sum()), n_ref=int(ref.sum()), n_sys=int(pred.sum()),
                segments=int(ref.shape[0]))


def error_rate(*, substitutions: float, deletions: float, insertions: float, n_ref: float) -> float:
    """``ER = (S + D + I) / N_ref``; with ``N_ref = 0`` the denominator is 1 (module docstring)."""
    return float((substitutions + deletions + insertions) / max(n_ref, 1))


def f_score(*, tp: float, fp: float, fn: float) -> float:
    """``F = 2 TP / (2 TP + FP + FN)``; 0 when the denominator is 0."""
    den = 2 * tp + fp + fn
    return float(2 * tp / den) if den > 0 else 0.0


def sed_scores(ref_sed: np.ndarray, pred_sed: np.ndarray, *, frames_per_segment: int,
               legacy: bool = False) -> dict[str, float]:
    """Segment-based error rate and F-score (the SELDnet paper, sed_eval's definitions).

    Parameters
    ----------
    ref_sed, pred_sed : np.ndarray [shape=(frames, classes)], values in {0, 1}
    frames_per_segment : int
        E.g. ``frames_per_segment(frame_rate=172.27, segment_len_s=1)`` = 172.
    legacy : bool
        The DCASE 2019 blocks, which leave out the last frame of each (:func:`segment_activity`).

    Returns
    -------
    scores : dict
        ``error_rate``, ``f_score`` and the counts of :func:`segment_counts`.
    """
    ref, pred = _check_pair(ref_sed, pred_sed)
    c = segment_counts(segment_activity(ref, frames_per_segment=frames_per_segment, legacy=legacy),
                       segment_activity(pred, frames_per_segment=frames_per_segment, legacy=legacy))
    return dict(error_rate=error_rate(substitutions=c['substitutions'], deletions=c['deletions'],
                                      insertions=c['insertions'], n_ref=c['n_ref']),
                f_score=f_score(tp=c['tp'], fp=c['fp'], fn=c['fn']), **c)


# ==================================================================================================
# Frame-wise DOA metrics (seld2018, seld2018_legacy) and frame recall
# ==================================================================================================
def frame_recall(ref_sed: np.ndarray, pred_sed: np.ndarray) -> float:
    """Share of frames whose number of predicted active classes equals the reference's.

    Parameters
    ----------
    ref_sed, pred_sed : np.ndarray [shape=(frames, classes)], values in {0, 1}

    Returns
    -------
    recall : float in [0, 1]; NaN for zero frames.
    """
    ref, pred = _check_pair(ref_sed, pred_sed)
    if ref.shape[0] == 0:
        return float('nan')
    return float(np.mean(ref.sum(axis=1) == pred.sum(axis=1)))


def _doa_pairs(ref_sed: np.ndarray, ref_doa: np.ndarray, pred_doa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference and predicted vectors of the reference-active (frame, class) pairs: [shape=(pairs, k)]."""
    ref = as_sed(ref_sed, 'ref_sed')
    C = ref.shape[1]
    rv, pv = doa_vectors(ref_doa, nb_classes=C), doa_vectors(pred_doa, nb_classes=C)
    if rv.shape != pv.shape or rv.shape[0] != ref.shape[0]:
        raise ValueError(f'ref_doa {np.shape(ref_doa)} and pred_doa {np.shape(pred_doa)} must both be '
                         f'({ref.shape[0]}, k*{C}) with the same k')
    rv, pv = rv[ref], pv[ref]
    if np.any(np.einsum('ij,ij->i', rv, rv) == 0):
        raise ValueError('ref_doa: a reference-active class has a zero DOA vector')
    return rv, pv


def _angle_counts(rv: np.ndarray, pv: np.ndarray, detected: np.ndarray) -> dict[str, float]:
    """Sums of the seld2018 DOA error over reference-active pairs: ``detected`` (predicted active) ones measured,
    the others counted as ``missing``."""
    ang = angular_distance_deg(rv[detected], pv[detected])
    return dict(angle_sum=float(ang.sum()), count=int(detected.sum()), missing=int((~detected).sum()))


def _chord_counts(rv: np.ndarray, pv: np.ndarray) -> dict[str, float]:
    return dict(chord_sum=float(np.linalg.norm(pv - rv, axis=1).sum()), count=int(rv.shape[0]))


def doa_error(ref_sed: np.ndarray, ref_doa: np.ndarray, pred_sed: np.ndarray, pred_doa: np.ndarray) -> float:
    """SELDnet DOA error (seld2018), angles averaged in degrees.

    ``mean over {(t, c): ref_sed[t, c] = 1 and pred_sed[t, c] = 1} of angle(ref_vec[t, c], pred_vec[t, c])``: the
    reference-active (frame, class) pairs that are also predicted active, with the predicted DOA of that class. A
    prediction file holds only the DOAs of predicted-active classes, so this is the quantity that the in-memory
    scorer and the scoring command both measure; the reference-active pairs without an estimate are counted apart
    (``doa_missing`` in :meth:`SELDMetrics.results`). A predicted-active class with a zero vector is 90 degrees
    from everything.

    Parameters
    ----------
    ref_sed, pred_sed : np.ndarray [shape=(frames, classes)], values in {0, 1}
    ref_doa, pred_doa : np.ndarray [shape=(frames, 3*classes) or (frames, 2*classes)]

    Returns
    -------
    error : float, degrees in [0, 180]; NaN if no pair.
    """
    ref, pred = _check_pair(ref_sed, pred_sed)
    rv, pv = _doa_pairs(ref, ref_doa, pred_doa)
    c = _angle_counts(rv, pv, pred[ref])
    return c['angle_sum'] / c['count'] if c['count'] else float('nan')


def chord_to_degrees(chord: float) -> float:
    """Angle subtended by a chord of the unit sphere: ``2 arcsin(min(d / 2, 1))`` in degrees."""
    return float(np.rad2deg(2 * np.arcsin(min(chord / 2.0, 1.0))))


def doa_error_legacy(ref_sed: np.ndarray, ref_doa: np.ndarray, pred_doa: np.ndarray) -> float:
    """The original seld-net DOA error: chord lengths averaged, then converted to degrees.

    ``d = mean over {(t, c): ref_sed[t, c] = 1} of ||pred_vec[t, c] - ref_vec[t, c]||`` (raw predicted vectors),
    error = ``2 arcsin(min(d / 2, 1))`` in degrees: ``doa_loss_gt`` of ``compute_doa_scores_regr_xyz``/``_xy`` as
    converted in ``seld.py``; not the mean angle (seld-net issue #16), see :func:`doa_error`.

    Returns
    -------
    error : float, degrees; NaN if no reference-active pair.
    """
    c = _chord_counts(*_doa_pairs(ref_sed, ref_doa, pred_doa))
    return chord_to_degrees(c['chord_sum'] / c['count']) if c['count'] else float('nan')


def seld_score(*, error_rate: float, f_score: float, doa_error: float, recall: float) -> float:
    """``mean(ER, 1 - F, DOA / 180, 1 - recall)``; a NaN DOA error counts as 180 degrees.

    ``recall`` is the frame recall (seld2018, dcase2019) or the localization recall (DCASE 2020-2023).
    """
    doa = 180.0 if not np.isfinite(doa_error) else doa_error
    return float(np.mean([error_rate, 1.0 - f_score, doa / 180.0, 1.0 - recall]))


# ==================================================================================================
# Hungarian matching of DOA instance lists (dcase2019 to dcase2024)
# ==================================================================================================
def angle_dcase2024(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The DCASE 2024 code's angle in degrees: ``arccos(clip(a.b / (sqrt(|a|^2 + 1e-10) sqrt(|b|^2 + 1e-10))))``.

    Parameters
    ----------
    a, b : np.ndarray [shape=(..., 3)]

    Returns
    -------
    angle : np.ndarray [shape=(...)]; 8.1e-4 degrees for two equal unit vectors (the ``1e-10``).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    den = np.sqrt(np.sum(a * a, axis=-1) + 1e-10) * np.sqrt(np.sum(b * b, axis=-1) + 1e-10)
    return np.rad2deg(np.arccos(np.clip(np.sum(a * b, axis=-1) / den, -1.0, 1.0)))


def _groups(key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stable sort order, unique keys, group starts (in sorted order) and counts; no sort if sorted."""
    if key.size and np.any(key[1:] < key[:-1]):
        order = np.argsort(key, kind='stable')
        key = key[order]
    else:
        order = np.arange(key.size)
    start = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]])) if key.size else np.zeros(0, np.int64)
    count = np.diff(np.append(start, key.size))
    return order, key[start], start, count


def _unique_inverse(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(key, return_inverse=True)``, without a sort when ``key`` is already sorted."""
    order, uniq, _, count = _groups(np.asarray(key, dtype=np.int64))
    inv = np.empty(order.size, dtype=np.int64)
    inv[order] = np.repeat(np.arange(uniq.size), count)
    return uniq, inv


def _injective_maps(n_from: int, n_to: int) -> np.ndarray:
    return np.array(list(itertools.permutations(range(n_to), n_from)), dtype=np.int64).reshape(-1, n_from)


def match_groups(ref_key: np.ndarray, ref_vec: np.ndarray, pred_key: np.ndarray, pred_vec: np.ndarray, *,
                 angle: Callable[[np.ndarray, np.ndarray], np.ndarray] = angular_distance_deg) -> dict[str, np.ndarray]:
    """Minimum-total-angle one-to-one matching of reference and predicted DOAs within each group.

    Rows with the same key (e.g. a frame, or a frame and class) form a group; in every group present in both,
    ``min(a, b)`` pairs are chosen to minimise the summed angle (the Hungarian assignment of
    ``scipy.optimize.linear_sum_assignment``). Groups are processed by shape ``(a, b)``, all at once: ``1 x b`` and
    ``a x 1`` by an argmin, small problems by evaluating every injective assignment in one array operation, large
    ones (> 5040 assignments) with scipy. Tied optima may pair differently from scipy; the total is the same.

    Parameters
    ----------
    ref_key, pred_key : np.ndarray [shape=(n_ref,), (n_pred,)], int
    ref_vec, pred_vec : np.ndarray [shape=(n_ref, k), (n_pred, k)]
    angle : callable
        ``angle(a, b)`` in degrees for broadcast vector arrays (default :func:`utils.angular_distance_deg`).

    Returns
    -------
    pairs : dict of np.ndarray [shape=(pairs,)]
        ``key``; ``ref_row``, ``pred_row`` (indices into the inputs); ``ref_pos`` (position of the reference row
        within its group, in input order); ``dist`` (degrees).
    """
    ref_key = np.asarray(ref_key, dtype=np.int64)
    pred_key = np.asarray(pred_key, dtype=np.int64)
    ref_vec = np.asarray(ref_vec, dtype=np.float64)
    pred_vec = np.asarray(pred_vec, dtype=np.float64)
    out: dict[str, list[np.ndarray]] = {k: [] for k in ('key', 'ref_row', 'pred_row', 'ref_pos', 'dist')}
    ro, ur, rs, rc = _groups(ref_key)
    po, up, ps, pc = _groups(pred_key)
    j = np.minimum(np.searchsorted(up, ur), max(up.size - 1, 0))
    ir = np.flatnonzero(up[j] == ur) if up.size else np.zeros(0, dtype=np.int64)
    ip = j[ir]
    common = ur[ir]
    a_all, b_all = rc[ir], pc[ip]
    shape_code = a_all * (int(b_all.max(initial=0)) + 1) + b_all
    for code in np.unique(shape_code):
        sel = np.flatnonzero(shape_code == code)
        a, b = int(a_all[sel[0]]), int(b_all[sel[0]])
        if a == 1 and b == 1:  # the common case: one DOA each, no assignment to solve
            r1, p1 = ro[rs[ir[sel]]], po[ps[ip[sel]]]
            for k, v in (('key', common[sel]), ('ref_row', r1), ('pred_row', p1), ('ref_pos', np.zeros_like(r1)),
                         ('dist', angle(ref_vec[r1], pred_vec[p1]))):
                out[k].append(v)
            continue
        R = ro[rs[ir[sel]][:, None] + np.arange(a)]  # (G, a) input rows
        P = po[ps[ip[sel]][:, None] + np.arange(b)]  # (G, b)
        cost = angle(ref_vec[R][:, :, None, :], pred_vec[P][:, None, :, :])  # (G, a, b)
        G, k = len(sel), min(a, b)
        if b == 1:
            ri = np.argmin(cost[:, :, 0], axis=1)[:, None]
            ci = np.zeros((G, 1), dtype=np.int64)
        elif a == 1:
            ri = np.zeros((G, 1), dtype=np.int64)
            ci = np.argmin(cost[:, 0, :], axis=1)[:, None]
        elif math.perm(max(a, b), k) <= _MAX_PERMUTATIONS:
            maps = _injective_maps(k, max(a, b))  # (M, k)
            ri = np.empty((G, k), dtype=np.int64)
            ci = np.empty((G, k), dtype=np.int64)
            step = max(1, 4_000_000 // (maps.size or 1))
            for lo in range(0, G, step):
                blk = cost[lo:lo + step]
                if a <= b:
                    tot = blk[:, np.arange(a)[None, :], maps].sum(-1)  # (g, M)
                    best = np.argmin(tot, axis=1)
                    ri[lo:lo + step], ci[lo:lo + step] = np.arange(a), maps[best]
                else:
                    tot = blk[:, maps, np.arange(b)[None, :]].sum(-1)
                    best = np.argmin(tot, axis=1)
                    ri[lo:lo + step], ci[lo:lo + step] = maps[best], np.arange(b)
        else:
            ri = np.empty((G, k), dtype=np.int64)
            ci = np.empty((G, k), dtype=np.int64)
            for g in range(G):
                r, c = linear_sum_assignment(cost[g])
                ri[g], ci[g] = r, c
        gi = np.repeat(np.arange(G), k)
        ri, ci = ri.ravel(), ci.ravel()
        out['key'].append(common[sel][gi])
        out['ref_row'].append(R[gi, ri])
        out['pred_row'].append(P[gi, ci])
        out['ref_pos'].append(ri)
        out['dist'].append(cost[gi, ri, ci])
    if not out['key']:
        return {k: np.zeros(0, dtype=np.float64 if k == 'dist' else np.int64) for k in out}
    return {k: np.concatenate(v) for k, v in out.items()}


# ==================================================================================================
# dcase2019: DOA error regardless of class and frame recall
# ==================================================================================================
def dcase2019_doa_counts(ref: Instances, pred: Instances, *, nb_frames: int) -> dict[str, float]:
    """Sums behind the DCASE 2019 DOA error and frame recall.

    Returns
    -------
    counts : dict
        ``dist_sum`` (degrees, Hungarian-matched per frame regardless of class), ``matched``, ``n_pred`` (all
        predicted DOAs), ``good_frames`` (frames with as many predicted as reference DOAs), ``frames``.
    """
    big = np.iinfo(np.int32).max
    ref = check_instances(ref, nb_frames=nb_frames, nb_classes=big, name='ref')
    pred = check_instances(pred, nb_frames=nb_frames, nb_classes=big, name='pred')
    m = match_groups(ref.frame, ref.vec, pred.frame, pred.vec)
    good = np.bincount(ref.frame, minlength=nb_frames) == np.bincount(pred.frame, minlength=nb_frames)
    return dict(dist_sum=float(m['dist'].sum()), matched=int(m['dist'].size), n_pred=int(pred.frame.size),
                good_frames=int(good.sum()), frames=int(nb_frames))


def doa_error_dcase2019(ref_sed: np.ndarray, ref_doa: np.ndarray, pred_sed: np.ndarray,
                        pred_doa: np.ndarray) -> float:
    """DCASE 2019 DOA error: per-frame Hungarian-matched angles summed / number of predicted DOAs.

    Parameters
    ----------
    ref_sed, pred_sed : np.ndarray [shape=(frames, classes)], values in {0, 1}
    ref_doa, pred_doa : np.ndarray [shape=(frames, 3*classes) or (frames, 2*classes)]

    Returns
    -------
    error : float, degrees; NaN if no pair was matched (the official code returns 0).
    """
    ref, pred = _check_pair(ref_sed, pred_sed)
    c = dcase2019_doa_counts(matrices_to_instances(ref, ref_doa), matrices_to_instances(pred, pred_doa),
                             nb_frames=ref.shape[0])
    return c['dist_sum'] / c['n_pred'] if c['matched'] else float('nan')


# ==================================================================================================
# Location-aware detection and class-aware localization in segments (dcase2020 to dcase2022)
# ==================================================================================================
_LA_FIELDS = ('tp', 'fp', 'fp_spatial', 'fn', 'n_ref', 'n_sys', 'de_tp', 'de_fn', 'de_sum')


def _segment_matching(ref: Instances, pred: Instances, *, nb_frames: int, nb_classes: int,
                      frames_per_segment: int) -> dict[str, Any]:
    """What the segment-level definitions share: the largest number of simultaneous instances per segment and
    class, and the Hungarian matching per frame and class."""
    C, n = int(nb_classes), int(frames_per_segment)
    ref = check_instances(ref, nb_frames=nb_frames, nb_classes=C, name='ref')
    pred = check_instances(pred, nb_frames=nb_frames, nb_classes=C, name='pred')
    nb_seg = -(-int(nb_frames) // n)
    rkey, pkey = ref.frame * C + ref.cls, pred.frame * C + pred.cls
    _, ur, _, rc = _groups(rkey)
    _, up, _, pc = _groups(pkey)
    nb_gt = np.zeros(nb_seg * C, dtype=np.int64)
    nb_pr = np.zeros(nb_seg * C, dtype=np.int64)
    np.maximum.at(nb_gt, (ur // C) // n * C + ur % C, rc)
    np.maximum.at(nb_pr, (up // C) // n * C + up % C, pc)
    return dict(C=C, n=n, nb_seg=nb_seg, nb_gt=nb_gt, nb_pr=nb_pr, J=int(rc.max(initial=1)),
                m=match_groups(rkey, ref.vec, pkey, pred.vec))


def _segment_counts(prep: dict[str, Any], *, threshold: float, rule: str) -> dict[str, Any]:
    """Per-class counts of one segment-level rule: 'dcase2020', 'dcase2020_corrected' or 'tracks' (2021-2023)."""
    C, n, nb_seg, nb_gt, nb_pr, m = (prep[k] for k in ('C', 'n', 'nb_seg', 'nb_gt', 'nb_pr', 'm'))
    size = nb_seg * C

    def seg_class(key: np.ndarray) -> np.ndarray:
        return (key // C) // n * C + key % C

    gt, pr = nb_gt > 0, nb_pr > 0
    both = gt & pr
    if rule in ('dcase2020', 'dcase2020_corrected'):
        fk, inv = _unique_inverse(m['key'])
        frame_dist = np.bincount(inv, m['dist'], minlength=fk.size)  # the official sum of the frame's pairs
        if rule == 'dcase2020_corrected':
            frame_dist = frame_dist / np.bincount(inv, minlength=fk.size)
        sc = seg_class(fk)
        seg_frames = np.bincount(sc, minlength=size)
        matched = both & (seg_frames > 0)
        avg = _ratio(np.bincount(sc, frame_dist, minlength=size), seg_frames, 0.0)
        tp = matched & (avg <= threshold)
        fn = (gt & ~pr) | (both & ~tp)
        fp = pr & ~gt
        per = dict(tp=tp, fp=fp, fp_spatial=np.zeros(size), fn=fn, n_ref=gt, n_sys=pr, de_tp=matched,
                   de_fn=gt & ~matched, de_sum=np.where(matched, avg, 0.0))
        loc_fn, loc_fp = fn.astype(np.int64), fp.astype(np.int64)
    elif rule == 'tracks':
        J = prep['J']
        tk, inv = _unique_inverse(seg_class(m['key']) * J + m['ref_pos'])
        track_avg = np.bincount(inv, m['dist'], minlength=tk.size) / np.bincount(inv, minlength=tk.size)
        tsc = tk // J
        de_tp = np.bincount(tsc, minlength=size)
        tp = np.bincount(tsc, track_avg <= threshold, minlength=size).astype(np.int64)
        fp_spatial = de_tp - tp
        has = both & (de_tp > 0)
        fp = np.where(has, np.maximum(nb_pr - nb_gt, 0), 0) + np.where(pr & ~gt, nb_pr, 0)
        fn = (np.where(has, np.maximum(nb_gt - nb_pr, 0), 0) + np.where(both & ~has, nb_pr, 0)
              + np.where(gt & ~pr, nb_gt, 0))
        per = dict(tp=tp, fp=fp, fp_spatial=fp_spatial, fn=fn, n_ref=nb_gt, n_sys=nb_pr, de_tp=de_tp,
                   de_fn=fn, de_sum=np.bincount(tsc, track_avg, minlength=size))
        loc_fn, loc_fp = fn, fp + fp_spatial
    else:
        raise ValueError(f"rule={rule!r} must be 'dcase2020', 'dcase2020_corrected' or 'tracks'")
    loc_fn = loc_fn.reshape(nb_seg, C).sum(axis=1)
    loc_fp = loc_fp.reshape(nb_seg, C).sum(axis=1)
    counts: dict[str, Any] = {k: np.asarray(v, dtype=np.float64).reshape(nb_seg, C).sum(axis=0)
                              for k, v in per.items()}
    counts.update(substitutions=int(np.minimum(loc_fn, loc_fp).sum()),
                  deletions=int(np.maximum(0, loc_fn - loc_fp).sum()),
                  insertions=int(np.maximum(0, loc_fp - loc_fn).sum()))
    return counts


def _segment_rule(definition: str) -> str:
    if definition not in _SEGMENT_LA:
        raise ValueError(f'definition={definition!r} must be one of {_SEGMENT_LA}')
    return definition if definition.startswith('dcase2020') else 'tracks'


def location_aware_counts(ref: Instances, pred: Instances, *, nb_frames: int, nb_classes: int,
                          frames_per_segment: int, threshold: float = 20.0,
                          definition: str = 'dcase2022') -> dict[str, Any]:
    """Per-class counts of a segment-level DCASE definition (2020 to 2023) for one file (module docstring).

    Parameters
    ----------
    ref, pred : Instances
        Frame indices at the rate that ``frames_per_segment`` refers to.
    nb_frames : int
        Length of the file in frames (segments = ``ceil(nb_frames / frames_per_segment)``).
    nb_classes : int
    frames_per_segment : int
    threshold : float
        Degrees; a matched class-segment / track with mean distance <= threshold is a TP.
    definition : {'dcase2020', 'dcase2020_corrected', 'dcase2021', 'dcase2022'}
        dcase2021 and dcase2022 share their counts (they differ in the F-score and the averaging).

    Returns
    -------
    counts : dict
        Per-class float arrays [shape=(classes,)] ``tp, fp, fp_spatial, fn, n_ref, n_sys, de_tp, de_fn, de_sum``
        (degrees) and ints ``substitutions, deletions, insertions``.
    """
    prep = _segment_matching(ref, pred, nb_frames=nb_frames, nb_classes=nb_classes,
                             frames_per_segment=frames_per_segment)
    return _segment_counts(prep, threshold=threshold, rule=_segment_rule(definition))


def location_aware_scores(counts: dict[str, Any], *, definition: str = 'dcase2022',
                          average: str | None = None) -> dict[str, float]:
    """Scores from (accumulated) :func:`location_aware_counts`.

    Parameters
    ----------
    counts : dict
    definition : {'dcase2020', 'dcase2020_corrected', 'dcase2021', 'dcase2022'}
    average : {'micro', 'macro'}, optional
        dcase2021 / dcase2022 only (default: the year's, :data:`DEFAULT_AVERAGE`); dcase2020 pools by definition.

    Returns
    -------
    scores : dict
        ``error_rate, f_score, localization_error`` (degrees, NaN if nothing matched), ``localization_recall``
        (dcase2020: DE_F), ``seld_score``.
    """
    _segment_rule(definition)
    average = average or DEFAULT_AVERAGE.get(definition, 'micro')
    if average not in AVERAGES:
        raise ValueError(f'average={average!r} must be one of {AVERAGES}')
    c = {k: np.asarray(counts[k], dtype=np.float64) for k in _LA_FIELDS}
    er = error_rate(substitutions=counts['substitutions'], deletions=counts['deletions'],
                    insertions=counts['insertions'], n_ref=c['n_ref'].sum())
    le = float(_ratio(c['de_sum'].sum(), c['de_tp'].sum(), np.nan))
    if definition.startswith('dcase2020'):
        s = {k: v.sum() for k, v in c.items()}
        f = float(_ratio(2 * s['tp'], s['n_ref'] + s['n_sys'], 0.0))
        lr = float(_ratio(2 * s['de_tp'], s['n_ref'] + s['n_sys'], 0.0) if definition == 'dcase2020' else
                   _ratio(s['de_tp'], s['n_ref'], 0.0))
    else:
        if average == 'micro':
            c = {k: v.sum(keepdims=True) for k, v in c.items()}
        spatial = 0.5 if definition == 'dcase2021' else 1.0  # weight of a spatial miss in F
        f_c = _ratio(c['tp'], c['tp'] + spatial * c['fp_spatial'] + 0.5 * (c['fp'] + c['fn']), 0.0)
        le_c = _ratio(c['de_sum'], c['de_tp'], 180.0)  # the official per-class value without a DE_TP
        lr_c = _ratio(c['de_tp'], c['de_tp'] + c['de_fn'], 0.0)
        f, lr = float(f_c.mean()), float(lr_c.mean())
        le = float(le_c.mean()) if np.isfinite(le) else le
    return dict(error_rate=er, f_score=f, localization_error=le, localization_recall=lr,
                seld_score=seld_score(error_rate=er, f_score=f, doa_error=le, recall=lr))


# ==================================================================================================
# Frame-level location-aware detection with distances (dcase2024)
# ==================================================================================================
_FL_FIELDS = ('tp', 'fp', 'fp_spatial', 'fn', 'n_ref', 'de_tp', 'de_fn', 'angle_sum', 'dist_sum', 'reldist_sum')


def frame_level_counts(ref: Instances, pred: Instances, *, nb_frames: int, nb_classes: int,
                       doa_threshold: float = 20.0, dist_threshold: float = math.inf,
                       reldist_threshold: float = 1.0) -> dict[str, Any]:
    """Per-class counts of the DCASE 2024 frame-level metrics for one file (module docstring).

    Parameters
    ----------
    ref, pred : Instances
        At the label rate (100-ms frames), both with ``dist`` in metres.
    nb_frames : int
    nb_classes : int
    doa_threshold : float
        Degrees; a matched pair farther is a spatial FP.
    dist_threshold, reldist_threshold : float
        Absolute (metres) and relative distance errors above which a matched pair is a spatial FP.

    Returns
    -------
    counts : dict
        Per-class float arrays ``tp, fp, fp_spatial, fn, n_ref, de_tp, de_fn, angle_sum`` (degrees),
        ``dist_sum`` (metres), ``reldist_sum``; ints ``substitutions, deletions, insertions``.
    """
    C, T = int(nb_classes), int(nb_frames)
    ref = check_instances(ref, nb_frames=T, nb_classes=C, name='ref')
    pred = check_instances(pred, nb_frames=T, nb_classes=C, name='pred')
    for name, inst in (('reference', ref), ('prediction', pred)):
        if inst.dist is None:
            raise ValueError(f'dcase2024: the {name} has no distances (the 2024 metric needs them on both sides)')
    rkey, pkey = ref.frame * C + ref.cls, pred.frame * C + pred.cls
    n_ref = np.bincount(rkey, minlength=T * C)
    n_pred = np.bincount(pkey, minlength=T * C)
    m = match_groups(rkey, ref.vec, pkey, pred.vec, angle=angle_dcase2024)
    d_ref = ref.dist[m['ref_row']]
    d_err = np.abs(d_ref - pred.dist[m['pred_row']])
    rel = d_err / (d_ref + EPS)
    miss = (m['dist'] > doa_threshold) | (d_err > dist_threshold) | (rel > reldist_threshold)
    both = (n_ref > 0) & (n_pred > 0)
    k = np.where(both, np.minimum(n_ref, n_pred), 0)
    fp_spatial = np.bincount(m['key'], miss, minlength=T * C)
    fp = np.maximum(n_pred - n_ref, 0)  # unmatched predictions: both present, or prediction only
    fn = np.maximum(n_ref - n_pred, 0)
    loc_fp = (fp + fp_spatial).reshape(T, C).sum(axis=1)
    loc_fn = fn.reshape(T, C).sum(axis=1)
    per_class = {k_: np.asarray(v, dtype=np.float64).reshape(T, C).sum(axis=0) for k_, v in
                 dict(tp=k - fp_spatial, fp=fp, fp_spatial=fp_spatial, fn=fn, n_ref=n_ref, de_tp=k, de_fn=fn).items()}
    cls = m['key'] % C
    per_class.update(angle_sum=np.bincount(cls, m['dist'], minlength=C), dist_sum=np.bincount(cls, d_err, minlength=C),
                     reldist_sum=np.bincount(cls, rel, minlength=C))
    per_class.update(substitutions=int(np.minimum(loc_fn, loc_fp).sum()),
                     deletions=int(np.maximum(0, loc_fn - loc_fp).sum()),
                     insertions=int(np.maximum(0, loc_fp - loc_fn).sum()))
    return per_class


def frame_level_scores(counts: dict[str, Any], *, average: str | None = None) -> dict[str, float]:
    """DCASE 2024 scores from (accumulated) :func:`frame_level_counts`.

    Parameters
    ----------
    counts : dict
    average : {'micro', 'macro'}, optional
        Default 'macro' (the 2024 default).

    Returns
    -------
    scores : dict
        ``error_rate, f_score, doa_error`` (degrees), ``distance_error`` (metres), ``relative_distance_error``
        (NaN where nothing was matched), ``localization_recall, seld_score``.
    """
    average = average or DEFAULT_AVERAGE['dcase2024']
    if average not in AVERAGES:
        raise ValueError(f'average={average!r} must be one of {AVERAGES}')
    c = {k: np.asarray(counts[k], dtype=np.float64) for k in _FL_FIELDS}
    er = error_rate(substitutions=counts['substitutions'], deletions=counts['deletions'],
                    insertions=counts['insertions'], n_ref=c['n_ref'].sum())
    if average == 'micro':
        c = {k: v.sum(keepdims=True) for k, v in c.items()}
    f_c = _ratio(c['tp'], c['tp'] + c['fp_spatial'] + 0.5 * (c['fp'] + c['fn']), 0.0)
    ang_c, dist_c, rel_c = (_ratio(c[k], c['de_tp'], np.nan) for k in ('angle_sum', 'dist_sum', 'reldist_sum'))
    lr_c = _ratio(c['de_tp'], c['de_tp'] + c['de_fn'], 0.0)
    seld_c = _nanmean(np.stack([1.0 - f_c, ang_c / 180.0, rel_c]), axis=0)
    return dict(error_rate=er, f_score=float(f_c.mean()), doa_error=float(_nanmean(ang_c)),
                distance_error=float(_nanmean(dist_c)), relative_distance_error=float(_nanmean(rel_c)),
                localization_recall=float(lr_c.mean()), seld_score=float(seld_c.mean()))


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
        Class averaging of dcase2021, dcase2022, dcase2024 (default: each year's).
    dist_threshold, reldist_threshold : float
        dcase2024: absolute (metres) and relative distance error thresholds.

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
        ref, pred = _check_pair(ref_sed, pred_sed)
        T, C = ref.shape
        if C != self.nb_classes:
            raise ValueError(f'ref_sed has {C} classes, expected nb_classes={self.nb_classes}')
        if (ref_instances is None) != (pred_instances is None):
            raise ValueError('give both ref_instances and pred_instances, or neither')
        rv, pv = _doa_pairs(ref, ref_doa, pred_doa)
        if ref_instances is None:
            ref_instances, pred_instances = matrices_to_instances(ref, ref_doa), matrices_to_instances(pred, pred_doa)
        fps = self.frames_per_segment
        prep: dict[str, Any] | None = None
        cache: dict[str, dict[str, Any]] = {}
        for name in self.definitions:
            if name == 'seld2018':
                seg = segment_counts(segment_activity(ref, frames_per_segment=fps),
                                     segment_activity(pred, frames_per_segment=fps))
                self._add(name, dict(seg, good_frames=int((ref.sum(1) == pred.sum(1)).sum()), frames=T,
                                     **_angle_counts(rv, pv, pred[ref])))
            elif name == 'seld2018_legacy':
                er_c = segment_counts(segment_activity(ref, frames_per_segment=fps, legacy=True, keep_partial=False),
                                      segment_activity(pred, frames_per_segment=fps, legacy=True, keep_partial=False))
                f_c = segment_counts(segment_activity(ref, frames_per_segment=fps, legacy=True),
                                     segment_activity(pred, frames_per_segment=fps, legacy=True))
                self._add(name, dict(substitutions=er_c['substitutions'], deletions=er_c['deletions'],
                                     insertions=er_c['insertions'], n_ref=er_c['n_ref'], tp=f_c['tp'],
                                     fp=f_c['fp'], fn=f_c['fn'], good_frames=int((ref.sum(1) == pred.sum(1)).sum()),
                                     frames=T, **_chord_counts(rv, pv)))
            elif name == 'dcase2019':
                seg = segment_counts(segment_activity(ref, frames_per_segment=fps, legacy=True),
                                     segment_activity(pred, frames_per_segment=fps, legacy=True))
                self._add(name, dict(seg, **dcase2019_doa_counts(matrices_to_instances(ref, ref_doa),
                                                                 matrices_to_instances(pred, pred_doa), nb_frames=T)))
            elif name == 'dcase2024':
                try:
                    counts = frame_level_counts(ref_instances, pred_instances, nb_frames=T, nb_classes=C,
                                                doa_threshold=self.doa_threshold, dist_threshold=self.dist_threshold,
                                                reldist_threshold=self.reldist_threshold)
                except ValueError as err:
                    raise SELDError(str(err)) from err
                self._add(name, counts)
            else:
                rule = _segment_rule(name)
                if prep is None:
                    prep = _segment_matching(ref_instances, pred_instances, nb_frames=T, nb_classes=C,
                                             frames_per_segment=fps)
                if rule not in cache:
                    cache[rule] = _segment_counts(prep, threshold=self.doa_threshold, rule=rule)
                self._add(name, cache[rule])
        self.nb_files += 1

    def details(self) -> dict[str, dict[str, Any]]:
        """The accumulated counts per definition (per-class arrays as lists)."""
        return {name: {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in acc.items()}
                for name, acc in self._n.items()}

    def results(self) -> dict[str, dict[str, float]]:
        """Named scores per definition (flat dicts of floats; angles in degrees, F and recalls in [0, 1]).

        Returns
        -------
        results : dict
            seld2018, seld2018_legacy, dcase2019: ``error_rate, f_score, doa_error, frame_recall, seld_score``
            (seld2018 also ``doa_missing``: the reference-active (frame, class) pairs not predicted active, which
            its ``doa_error`` leaves out);
            dcase2020, dcase2020_corrected, dcase2021, dcase2022: ``error_rate, f_score, localization_error,
            localization_recall, seld_score``; dcase2024: ``error_rate, f_score, doa_error, distance_error,
            relative_distance_error, localization_recall, seld_score``.
        """
        if self.nb_files == 0:
            raise SELDError('SELDMetrics.results(): no file was evaluated')
        res: dict[str, dict[str, float]] = {}
        for name in self.definitions:
            n = self._n[name]
            if name in _SEGMENT_LA:
                res[name] = location_aware_scores(n, definition=name, average=self.average)
                continue
            if name == 'dcase2024':
                res[name] = frame_level_scores(n, average=self.average)
                continue
            er = error_rate(substitutions=n['substitutions'], deletions=n['deletions'],
                            insertions=n['insertions'], n_ref=n['n_ref'])
            f = f_score(tp=n['tp'], fp=n['fp'], fn=n['fn'])
            fr = n['good_frames'] / n['frames'] if n['frames'] else float('nan')
            if name == 'seld2018':
                doa = n['angle_sum'] / n['count'] if n['count'] else float('nan')
            elif name == 'seld2018_legacy':
                doa = chord_to_degrees(n['chord_sum'] / n['count']) if n['count'] else float('nan')
            else:
                doa = n['dist_sum'] / n['n_pred'] if n['matched'] else float('nan')
            res[name] = dict(error_rate=er, f_score=f, doa_error=float(doa), frame_recall=float(fr),
                             seld_score=seld_score(error_rate=er, f_score=f, doa_error=doa, recall=fr))
            if name == 'seld2018':
                res[name]['doa_missing'] = float(n['missing'])
        return res


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
    """Score recordings on each definition's grid (module docstring, *Grids*): ``add`` per file, then ``results``.

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
        Frames per second of references given as :class:`formats.Instances` (10 for DCASE 2020+ metadata);
        references given as :class:`formats.Events` (seconds) need none.
    doa_threshold : float
        Degrees (DCASE 2020+).
    segment_len_s : float
        Segment length in seconds on every grid.
    average : {'micro', 'macro'}, optional
        Class averaging of dcase2021, dcase2022, dcase2024 (default: each year's).
    dist_threshold, reldist_threshold : float
        dcase2024 distance thresholds (metres; relative).

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
        prediction}}`` (the rules of the module docstring, as text)."""
        def conversion(rate: float, base: float | None, other: str) -> str:
            k = None if base is None else _integer_ratio(rate, base)
            return other if k is None else 'as is' if k == 1 else f'each frame repeated {k} times'

        out = {}
        for rate, m in self._grids:
            g = m.frame_rate
            pred = conversion(g, self.prediction_rate, "formats.resample_instances(rule='majority')")
            ref = (f'events (seconds) framed at {self.prediction_rate:g} fps by formats.events_to_instances, then '
                   f'as the prediction: {pred}')
            if self.reference_rate is not None:
                ref = (f'instances at {self.reference_rate:g} fps: ' + conversion(g, self.reference_rate, 'refused')
                       + '; ' + ref)
            for name in m.definitions:
                out[name] = dict(frame_rate=g, frames='nb_frames (given)' if rate is None else
                                 f'formats.nb_frames_at(duration_s, frame_rate={g:g})',
                                 frames_per_segment=None if name == 'dcase2024' else m.frames_per_segment,
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
            raise TypeError(f'{stem}: the reference must be formats.Events or formats.Instances, not {type(ref)}')
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
        multiple of ``R_p``, otherwise :func:`formats.resample_instances` (majority)."""
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
        ref : formats.Events or formats.Instances
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
            inputs = []  # every grid's input first, so that a bad file leaves the accumulators as they were
            for rate, metrics in self._grids:
                T = nb_frames if rate is None else nb_frames_at(duration_s, frame_rate=rate)
                g = metrics.frame_rate
                ref_g = self._reference_at(stem, ref, rate, T, nb_frames)
                pred_g = pred if rate is None else self._prediction_at(pred, g, T, nb_frames)
                if 'dcase2024' in metrics.definitions and (ref_g.dist is None or pred_g.dist is None):
                    raise SELDError(f'{stem}: dcase2024 needs distances in both the reference and the prediction '
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


def find_references(folder: str, stems: Sequence[str]) -> dict[str, str]:
    """The reference file of every stem: ``<stem>.csv`` anywhere below ``folder`` (a DCASE ``metadata_dev/`` holds
    ``dev-train/``, ``dev-test/`` ... sub-folders).

    Raises
    ------
    SELDError
        A missing folder, a stem without reference (named), or a stem found twice (both paths named).
    """
    if not os.path.isdir(folder):
        raise SELDError(f'{folder}: reference folder not found')
    found: dict[str, str] = {}
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            stem, ext = os.path.splitext(name)
            if ext.lower() != '.csv':
                continue
            path = os.path.join(root, name)
            if stem in found:
                raise SELDError(f'{stem}: two reference files, {found[stem]} and {path}; pairing by stem needs one')
            found[stem] = path
    missing = [s for s in stems if s not in found]
    if missing:
        raise SELDError(f'{folder}: no reference file for the predicted {", ".join(missing)} (searched all '
                        'sub-folders for <stem>.csv)')
    return {s: found[s] for s in stems}


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


def _reference_formats(ref_paths: dict[str, str], *, ref_fmt: str | None, hint: str | None) -> dict[str, str]:
    """The format of every reference: tut2018 by its header; a headerless one as ``ref_fmt`` says, else from its
    field count (:func:`formats.infer_dcase_format`, the prediction format deciding 6 fields)."""
    out = {}
    for stem, path in ref_paths.items():
        if has_desc_header(path):
            if ref_fmt not in (None, 'tut2018'):
                raise SELDError(f'{path}: a tut2018 description (its header), but the reference format is {ref_fmt}')
            out[stem] = 'tut2018'
        elif ref_fmt == 'tut2018':
            raise SELDError(f'{path}: no tut2018 header ({",".join(DESC_HEADER)}), but the reference format '
                            'is tut2018')
        else:
            out[stem] = ref_fmt or infer_dcase_format(path, hint=hint)
    dcase = sorted({f for f in out.values() if f != 'tut2018'})
    if len(dcase) > 1 and len({FORMAT_FRAME_RATE[f] for f in dcase}) > 1:
        raise SELDError(f'the references are of formats {", ".join(dcase)} with different frame rates; give '
                        '--ref-format (and --ref-frame-rate)')
    return out


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
    ref_fmts = _reference_formats(ref_paths, ref_fmt=ref_fmt, hint=fmt)
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

"""Benchmark: score one hour of 172.27-fps SELD output (11 classes) with the vectorized metrics of
evaluation_metrics.py and with slow per-frame reference implementations, in the same run.

The per-frame references are the oracles of tests/metric_refs.py (loops over frames and
classes, scipy's Hungarian per frame, ports of the official DCASE 2020 / 2021 dict code). They are
timed on a subset of the hour and extrapolated linearly per frame (the output says so). The grid scorer
(SELDScorer: seld2018 at 172 fps, dcase2019 at 50 fps, dcase2020-2022 at 10 fps after the majority
conversion, as seld.py scores each epoch) is timed on the same hour.

    python benchmarks/bench_metrics.py [--minutes 60] [--ref-minutes 2] [--seed 0]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'tests')]

import label_frames  # noqa: E402
import metric_definitions as md  # noqa: E402
import scoring  # noqa: E402
import metric_refs as oracle  # noqa: E402
from utils import cart2sph  # noqa: E402

C = 11
RATE = md.PAPER_FRAME_RATE


def realistic_output(rng: np.random.Generator, T: int) -> tuple[np.ndarray, ...]:
    """Reference with ~1-3 active classes (runs of ~1 s on, ~5 s off per class) and a plausible prediction:
    late/early onsets, missed and spurious events, 3 % flipped frames, DOAs ~10 degrees off, raw
    (non-unit) regression outputs for inactive classes."""
    def runs(on_mean: float, off_mean: float) -> np.ndarray:
        act = np.zeros((T, C), dtype=bool)
        for c in range(C):
            t = int(rng.integers(0, int(off_mean * RATE)))
            while t < T:
                n = max(1, int(rng.exponential(on_mean * RATE)))
                act[t:t + n, c] = True
                t += n + max(1, int(rng.exponential(off_mean * RATE)))
        return act
    ref = runs(1.0, 5.0)
    shift = np.roll(ref, int(rng.integers(-5, 6)), axis=0)
    pred = (shift & (rng.random((T, C)) > 0.03)) | (rng.random((T, C)) < 0.0002) | runs(0.5, 120.0)
    ref_vec = oracle.random_units(rng, (T, C)) * ref[..., None]
    # constant direction per run would be more realistic; per-frame random directions cost the same
    pred_vec = ref_vec + 0.17 * oracle.random_units(rng, (T, C))
    pred_vec = np.where(ref[..., None], pred_vec, 0.5 * oracle.random_units(rng, (T, C)))
    return (ref.astype(np.float32), label_frames.vectors_to_doa(ref_vec), pred.astype(np.float32),
            label_frames.vectors_to_doa(pred_vec))


def vectorized(rs, rd, ps, pd) -> dict:
    m = scoring.SELDMetrics(nb_classes=C, frame_rate=RATE)
    m.evaluate(rs, rd, ps, pd)
    return m.results()


def on_grids(rs, rd, ps, pd) -> dict:
    """The reference as events in seconds (runs of active frames), the prediction at the model rate."""
    inst = label_frames.matrices_to_instances(rs, rd)
    key = inst.cls * (rs.shape[0] + 1) + inst.frame
    order = np.lexsort((inst.frame, inst.cls))
    new = np.ones(order.size, dtype=bool)
    new[1:] = np.diff(key[order]) != 1
    first = order[new]
    last = order[np.append(np.flatnonzero(new)[1:] - 1, order.size - 1)]
    azi, ele, _ = cart2sph(inst.vec[first])
    ev = label_frames.Events(inst.cls[first], inst.frame[first] / RATE, inst.frame[last] / RATE, azi, ele,
                        np.ones(first.size), [])
    s = scoring.SELDScorer(classes=[str(c) for c in range(C)], prediction_rate=RATE,
                      definitions=md.NO_DISTANCE_DEFINITIONS)
    s.add('hour', ev, ps, pd, duration_s=rs.shape[0] / RATE, nb_frames=rs.shape[0])
    return s.results()


def per_frame(rs, rd, ps, pd) -> dict:
    fps = md.frames_per_segment(frame_rate=RATE)
    T = rs.shape[0]
    oracle.slow_sed_counts(rs, ps, fps)
    oracle.slow_frame_recall(rs, ps)
    doa = oracle.slow_doa_error(rs, rd, ps, pd)
    legacy = oracle.slow_doa_legacy(rs, rd, pd)
    d19, _ = oracle.slow_dcase2019(rs, rd, ps, pd)
    gt = oracle.official_segment_labels(oracle.rows_of(rs, rd), T, fps)
    pr = oracle.official_segment_labels(oracle.rows_of(ps, pd), T, fps)
    oracle.official_2020(pr, gt, C, 20.0)
    oracle.official_2021(pr, gt, C, 20.0)
    return dict(doa=doa, legacy=legacy, dcase2019=d19)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--minutes', type=float, default=60.0, help='length of the scored output (default 60)')
    p.add_argument('--ref-minutes', type=float, default=2.0,
                   help='length on which the per-frame reference is timed, then extrapolated (default 2)')
    p.add_argument('--seed', type=int, default=0)
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    T = int(a.minutes * 60 * RATE)
    data = realistic_output(rng, T)
    rs, _, ps, _ = data
    print(f'{a.minutes:g} min at {RATE:.2f} frames/s = {T} frames x {C} classes; '
          f'active classes per frame: reference {rs.sum(1).mean():.2f} (max {int(rs.sum(1).max())}), '
          f'prediction {ps.sum(1).mean():.2f}')
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        res = vectorized(*data)
        times.append(time.perf_counter() - t0)
    t_vec = min(times)
    print(f'vectorized ({len(res)} definitions at {RATE:.2f} fps, {T} frames): best of 3 {t_vec:.2f} s '
          f'(first call {times[0]:.2f} s)')
    t0 = time.perf_counter()
    grid_res = on_grids(*data)
    print(f'SELDScorer on each definition\'s grid ({len(grid_res)} definitions, the same output): '
          f'{time.perf_counter() - t0:.2f} s')

    n = min(T, int(a.ref_minutes * 60 * RATE))
    sub = tuple(x[:n] for x in data)
    t0 = time.perf_counter()
    slow = per_frame(*sub)
    t_sub = time.perf_counter() - t0
    t_ref = t_sub * T / n
    print(f'per-frame reference on {n} frames ({a.ref_minutes:g} min): {t_sub:8.2f} s'
          + (f' -> extrapolated to {T} frames: {t_ref:8.2f} s' if n < T else ''))
    print(f'speed-up: {t_ref / t_vec:.0f}x vs best, {t_ref / times[0]:.0f}x vs first call'
          + (' (reference time extrapolated per frame)' if n < T else ''))
    check = vectorized(*sub)
    agree = (np.isclose(check['seld2018']['doa_error'], slow['doa'])
             and np.isclose(check['seld2018_legacy']['doa_error'], slow['legacy'])
             and np.isclose(check['dcase2019']['doa_error'], slow['dcase2019']))
    print(f'subset results agree with the reference: {agree}')
    for name, vals in res.items():
        print(f'  {name:<20}' + '  '.join(f'{k}={v:.4f}' for k, v in vals.items()))


if __name__ == '__main__':
    main()

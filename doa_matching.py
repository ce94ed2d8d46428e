"""Minimum-total-angle matching of reference and predicted DOAs within groups (frames, or frames and classes):
the Hungarian assignment that the DCASE metrics (2019-2024) apply, vectorized over groups of the same shape.

Used by :mod:`metric_definitions`; docs/metrics.md says which definition matches what.
"""
from __future__ import annotations

import itertools
import math
from typing import Callable

import numpy as np
from scipy.optimize import linear_sum_assignment

from utils import angular_distance_deg

_MAX_PERMUTATIONS = 5040  # larger assignment problems go to scipy's linear_sum_assignment


def group_rows(key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The groups of equal keys: their rows in a stable sort, their keys, starts and sizes (no sort if sorted).

    Parameters
    ----------
    key : np.ndarray [shape=(n,)], int64

    Returns
    -------
    order : np.ndarray [shape=(n,)] - rows in stable key order
    keys, start, count : np.ndarray [shape=(groups,)] - each group's key, its first position in ``order`` and its
        number of rows
    """
    if key.size and np.any(key[1:] < key[:-1]):
        order = np.argsort(key, kind='stable')
        key = key[order]
    else:
        order = np.arange(key.size)
    start = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]])) if key.size else np.zeros(0, np.int64)
    count = np.diff(np.append(start, key.size))
    return order, key[start], start, count


def unique_inverse(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(key, return_inverse=True)``, without a sort when ``key`` is already sorted.

    Parameters
    ----------
    key : np.ndarray [shape=(n,)], int

    Returns
    -------
    keys : np.ndarray [shape=(groups,)], int64 - the sorted distinct keys
    inverse : np.ndarray [shape=(n,)], int64 - each row's index into ``keys``
    """
    order, uniq, _, count = group_rows(np.asarray(key, dtype=np.int64))
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
    ro, ur, rs, rc = group_rows(ref_key)
    po, up, ps, pc = group_rows(pred_key)
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

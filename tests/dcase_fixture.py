"""Tiny hand-made datasets in the DCASE 2019-2024 development layouts, independent of synthesize_dataset.py.

Each recording holds tones at a class-specific frequency, FOA-encoded as plane waves (W, Y, Z, X gains
[1, sin az cos el, sin el, cos az cos el]); a moving source changes its azimuth every 100 ms label frame. The
metadata is written in each year's format: events in seconds with a header (2019), or headerless
``frame,class,track,azi,ele`` rows at 100 ms (2020+; STARSS23 with ``dist=True`` adds a distance column in cm).
"""
from __future__ import annotations

import os

import numpy as np
import soundfile as sf

import datasets

#: (dataset, sub-folder, stem) of the recordings each layout gets; the parts follow from datasets.py.
LAYOUTS = {
    'tau2019sse': [('', f'split{k}_ir0_ov1_{k}') for k in (1, 2, 3, 4)],
    'tau2020sse_nigens': [('', f'fold{k}_room1_mix00{k}_ov1') for k in (1, 2, 3, 4, 5, 6)],
    'tau2021sse_nigens': ([('dev-train', f'fold{k}_room1_mix00{k}') for k in (1, 2, 3, 4)]
                          + [('dev-val', 'fold5_room1_mix001'), ('dev-test', 'fold6_room1_mix001')]),
    'starss22': [('dev-train-sony', 'fold3_room21_mix001'), ('dev-train-sony', 'fold3_room21_mix002'),
                 ('dev-train-tau', 'fold3_room4_mix001'), ('dev-test-sony', 'fold4_room23_mix001'),
                 ('dev-test-tau', 'fold4_room2_mix001')],
}
LAYOUTS['starss23'] = LAYOUTS['starss22']


def foa(signal: np.ndarray, azi_deg: np.ndarray, ele_deg: np.ndarray) -> np.ndarray:
    """FOA (ACN/SN3D) of a mono ``signal`` from per-sample directions; returns (samples, 4)."""
    a, e = np.deg2rad(azi_deg), np.deg2rad(ele_deg)
    gains = np.stack([np.ones_like(a), np.sin(a) * np.cos(e), np.sin(e), np.cos(a) * np.cos(e)], axis=-1)
    return signal[:, None] * gains


def write_recording(wav: str, meta: str, *, name: str, events: list[dict], fs: int, duration_s: float,
                    seed: int = 0, dist: bool = False) -> np.ndarray:
    """Write one recording; ``events`` are dicts with ``cls``, ``track``, ``start``, ``end`` (label frames for
    2020+, seconds for 2019), ``azi`` (a number, or a per-frame list for a moving source), ``ele``."""
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * fs))
    audio = 1e-3 * rng.standard_normal((n, 4))
    t = np.arange(n) / fs
    rows = []
    for ev in events:
        f0 = 300.0 * (1 + ev['cls'])
        if name == 'tau2019sse':
            active = (t >= ev['start']) & (t < ev['end'])
            azi = np.full(n, float(ev['azi']))
            rows.append(f"{datasets.SPECS[name].classes[ev['cls']]},{ev['start']},{ev['end']},{ev['ele']},"
                        f"{ev['azi']},2")
        else:
            frames = np.arange(ev['start'], ev['end'] + 1)
            azis = np.broadcast_to(np.asarray(ev['azi'], dtype=float), frames.shape)
            active = (t >= ev['start'] / 10) & (t < (ev['end'] + 1) / 10)
            azi = azis[np.clip((t * 10).astype(int) - ev['start'], 0, len(frames) - 1)]
            for fr, az in zip(frames, azis):
                row = f"{fr},{ev['cls']},{ev['track']},{int(az)},{ev['ele']}"
                rows.append(row + (',150' if dist else ''))
        audio += foa(0.2 * np.sin(2 * np.pi * f0 * t) * active, azi, np.full(n, float(ev['ele'])))
    os.makedirs(os.path.dirname(wav), exist_ok=True)
    os.makedirs(os.path.dirname(meta), exist_ok=True)
    sf.write(wav, audio, fs, subtype='PCM_16')
    if name != 'tau2019sse':  # DCASE 2020+ metadata: rows sorted by frame
        rows.sort(key=lambda r: int(r.split(',')[0]))
    with open(meta, 'w') as f:
        if name == 'tau2019sse':
            f.write('sound_event_recording,start_time,end_time,ele,azi,dist\n')
        f.write('\n'.join(rows) + '\n')
    return audio


def make_dataset(root: str, name: str, *, fmt: str = 'foa', duration_s: float = 2.0, dist: bool = False) -> str:
    """Write the recordings of :data:`LAYOUTS` ``[name]`` under ``root``; returns ``root``.

    Every recording has two events of different classes; the 2020+ ones have a moving source (azimuth changing
    each label frame) on track 0 and a static one on track 1 that overlap, and the first recording also holds a
    second instance of class 0 overlapping the first (a same-class overlap).
    """
    fs = datasets.SPECS[name].fs
    for i, (sub, stem) in enumerate(LAYOUTS[name]):
        wav = os.path.join(root, f'{fmt}_dev', sub, stem + '.wav')
        meta = os.path.join(root, 'metadata_dev', sub, stem + '.csv')
        c1, c2 = i % 3, 3 + i % 3
        if name == 'tau2019sse':
            events = [dict(cls=c1, start=0.2, end=0.9, azi=10 * i - 40, ele=10),
                      dict(cls=c2, start=1.1, end=1.7, azi=90, ele=-20)]
        else:
            n = int(duration_s * 10)
            events = [dict(cls=c1, track=0, start=2, end=9, azi=list(range(-60, 20, 10)), ele=10),
                      dict(cls=c2, track=1, start=6, end=n - 1, azi=120, ele=-20)]
            if i == 0:
                events.append(dict(cls=c1, track=2, start=5, end=7, azi=-150, ele=30))
        write_recording(wav, meta, name=name, events=events, fs=fs, duration_s=duration_s, seed=i, dist=dist)
    return root

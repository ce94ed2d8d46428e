"""A tiny, hand-made dataset in the TUT Sound Events 2018 layout, independent of synthesize_dataset.py.

Each event is a tone at a class-specific frequency, FOA-encoded as a plane wave (W, Y, Z, X gains
[1, sin az cos el, sin el, cos az cos el]) or, for 8 channels, copied to every channel.
"""
from __future__ import annotations

import os

import numpy as np
import soundfile as sf

HEADER = 'sound_event_recording,start_time,end_time,ele,azi,dist\n'
CLASSES = ['knock', 'drawer', 'clearthroat', 'phone', 'keysDrop', 'speech', 'keyboard', 'pageturn', 'cough',
           'doorslam', 'laughter']


def write_clip(wav_path: str, csv_path: str, events: list[tuple[str, float, float, int, int]], *,
               fs: int = 44100, clip_len_s: float = 2.0, nb_channels: int = 4, seed: int = 0) -> np.ndarray:
    """Write one clip; ``events`` are (class, start_s, end_s, ele, azi). Returns the audio written."""
    rng = np.random.default_rng(seed)
    n = int(clip_len_s * fs)
    audio = 1e-3 * rng.standard_normal((n, nb_channels))
    t = np.arange(n) / fs
    lines = [HEADER]
    for k, (cls, start, end, ele, azi) in enumerate(events):
        f0 = 300.0 * (1 + CLASSES.index(cls))
        active = (t >= start) & (t < end)
        sig = 0.2 * np.sin(2 * np.pi * f0 * t) * active
        if nb_channels == 4:
            a, e = np.deg2rad(azi), np.deg2rad(ele)
            gains = np.array([1, np.sin(a) * np.cos(e), np.sin(e), np.cos(a) * np.cos(e)])
        else:
            gains = np.ones(nb_channels)
        audio += sig[:, None] * gains[None, :]
        lines.append(f'{cls}{k:03d}.wav,{start},{end},{ele},{azi},2.0\n')
    os.makedirs(os.path.dirname(wav_path), exist_ok=True)
    os.makedirs(os.path.dirname(csv_path), exist_ok=True)
    sf.write(wav_path, audio, fs, subtype='PCM_16')
    with open(csv_path, 'w') as f:
        f.writelines(lines)
    return audio


def make_dataset(root: str, *, nb_train: int = 3, nb_test: int = 2, clip_len_s: float = 2.0, fs: int = 44100,
                 nb_channels: int = 4, ov: int = 1, split: int = 1, db: int = 30) -> str:
    """Write a small dataset with random single events per clip; returns ``root``."""
    rng = np.random.default_rng(1234)
    wav_dir = os.path.join(root, f'wav_ov{ov}_split{split}_{db}db')
    desc_dir = os.path.join(root, f'desc_ov{ov}_split{split}')
    i = 0
    for part, count in (('train', nb_train), ('test', nb_test)):
        for j in range(count):
            events = []
            t = 0.1
            for cls in rng.choice(CLASSES[:4], size=2, replace=False):
                dur = 0.4
                events.append((str(cls), round(t, 3), round(t + dur, 3), int(rng.integers(-4, 5) * 10),
                               int(rng.integers(-18, 18) * 10)))
                t += dur + 0.2
            stem = f'{part}_{j}_desc_{db}_100'
            write_clip(os.path.join(wav_dir, stem + '.wav'), os.path.join(desc_dir, stem + '.csv'), events,
                       fs=fs, clip_len_s=clip_len_s, nb_channels=nb_channels, seed=i)
            i += 1
    return root

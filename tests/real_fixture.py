"""A tiny dataset in the on-disk layout of TUT Sound Events 2018 - REAL (real-life impulse responses), independent
of synthesize_dataset.py: ``wav_ov{ov}_split{split}_{db}db/{train|test}_{i}_desc_{db}_100.wav`` (FOA, 44.1 kHz,
16-bit) and ``desc_ov{ov}_split{split}/`` with the TUT header, whose recording names are UrbanSound8K file names
``{fsID}-{classID}-{occurrenceID}-{sliceID}.wav`` (the class is the second field, one of the 8 REAL ids). No
``dataset_info.json``: the real zips have none, so the class list, rate and channels come from ``datasets.SPECS``.

Each event is a tone at a class-specific frequency, FOA-encoded as a plane wave (W, Y, Z, X gains
[1, sin az cos el, sin el, cos az cos el]).
"""
from __future__ import annotations

import os

import numpy as np
import soundfile as sf

from datasets import REAL_CLASSES

HEADER = 'sound_event_recording,start_time,end_time,ele,azi,dist\n'


def make_dataset(root: str, *, nb_train: int = 4, nb_test: int = 2, clip_len_s: float = 3.0, fs: int = 44100,
                 ov: int = 1, split: int = 1, db: int = 30, seed: int = 7) -> str:
    """Write the fixture under ``root``; returns ``root``."""
    rng = np.random.default_rng(seed)
    wav_dir = os.path.join(root, f'wav_ov{ov}_split{split}_{db}db')
    desc_dir = os.path.join(root, f'desc_ov{ov}_split{split}')
    os.makedirs(wav_dir, exist_ok=True)
    os.makedirs(desc_dir, exist_ok=True)
    n = int(clip_len_s * fs)
    t = np.arange(n) / fs
    for part, count in (('train', nb_train), ('test', nb_test)):
        for i in range(count):
            audio = 1e-3 * rng.standard_normal((n, 4))
            lines = [HEADER]
            start = 0.2
            for k in range(2):
                cls = str(rng.choice(REAL_CLASSES))
                end = start + 0.8
                azi, ele = int(rng.integers(-18, 18) * 10), int(rng.integers(-4, 5) * 10)
                a, e = np.deg2rad(azi), np.deg2rad(ele)
                gains = np.array([1, np.sin(a) * np.cos(e), np.sin(e), np.cos(a) * np.cos(e)])
                f0 = 250.0 * (1 + REAL_CLASSES.index(cls))
                audio += (0.2 * np.sin(2 * np.pi * f0 * t) * ((t >= start) & (t < end)))[:, None] * gains
                lines.append(f'{100000 + 37 * i + k}-{cls}-0-{k}.wav,{start:.3f},{end:.3f},{ele},{azi},{1 + k}\n')
                start = end + 0.3
            stem = f'{part}_{i}_desc_{db}_100'
            sf.write(os.path.join(wav_dir, stem + '.wav'), audio, fs, subtype='PCM_16')
            with open(os.path.join(desc_dir, stem + '.csv'), 'w', encoding='utf-8') as f:
                f.writelines(lines)
    return root

"""synth.dcase (through synthesize_dataset.py): the DCASE 2019-2024 look-alikes.

Layouts are checked against datasets.py (the reader the pipeline uses) and formats.py; the physics against the
WRITTEN audio with textbook estimators (active intensity of FOA, GCC-PHAT between the tetrahedral mics, noise
power between events), compared with the metadata and the tetrahedron's geometry (datasets.TETRA_MICS_DEG), not
with the synthesizer's code.
"""
from __future__ import annotations

import collections
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import soundfile as sf

import datasets
import formats
import label_frames
from synth import dcase as sdc
from synth import spatial
from utils import SELDError, angular_distance_deg, sph2cart

import acoustics

ROOT = Path(__file__).resolve().parents[1]
C = 343.0
#: The parts each layout's folds get from datasets.py (the baselines' folds), written out by hand.
EXPECTED_PARTS = {
    'tau2019sse': {'split1': 'test', 'split2': 'val', 'split3': 'train', 'split4': 'train'},
    'tau2020sse_nigens': {'fold1': 'test', 'fold2': 'val', 'fold3': 'train', 'fold4': 'train', 'fold5': 'train',
                          'fold6': 'train'},
    'tau2021sse_nigens': {'dev-train': 'train', 'dev-val': 'val', 'dev-test': 'test'},
    'starss22': {'dev-train-sony': 'train', 'dev-train-tau': 'train', 'dev-test-sony': 'test',
                 'dev-test-tau': 'test'},
}
EXPECTED_PARTS['starss23'] = EXPECTED_PARTS['starss22']
#: Stems of the tiny layouts (nb_per_fold=1), written out by hand from the real sets' naming.
EXPECTED_STEMS = {
    'tau2019sse': {'split1_ir0_ov1_1', 'split2_ir0_ov1_1', 'split3_ir0_ov1_1', 'split4_ir0_ov1_1'},
    'tau2020sse_nigens': {f'fold{k}_room{2 * k - 1}_mix001_ov1' for k in range(1, 7)},
    'tau2021sse_nigens': ({f'dev-train/fold{k}_room{2 * k - 1}_mix001' for k in range(1, 5)}
                          | {'dev-val/fold5_room9_mix001', 'dev-test/fold6_room11_mix001'}),
    'starss22': {'dev-train-sony/fold3_room21_mix001', 'dev-train-tau/fold3_room1_mix001',
                 'dev-test-sony/fold4_room23_mix001', 'dev-test-tau/fold4_room3_mix001'},
}
EXPECTED_STEMS['starss23'] = EXPECTED_STEMS['starss22']


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------
def make(root: Path, dataset: str, **kw) -> dict:
    args = dict(dataset=dataset, dataset_dir=root, nb_per_fold=1, clip_len_s=4.0, clip_len_max_s=0.0,
                reverb=False, seed=3, progress=False)
    args.update(kw)
    return sdc.synthesize(**args)


def recordings(root: Path, fmt: str = 'foa') -> list[tuple[np.ndarray, int, np.ndarray, dict]]:
    """(audio, fs, metadata rows as ints, side file) of every recording of a 2020+ look-alike."""
    out = []
    for wav in sorted((root / f'{fmt}_dev').rglob('*.wav')):
        rel = wav.relative_to(root / f'{fmt}_dev').with_suffix('')
        audio, fs = sf.read(wav, dtype='float64', always_2d=True)
        rows = np.loadtxt(root / 'metadata_dev' / f'{rel}.csv', delimiter=',', dtype=np.int64, ndmin=2)
        side = json.loads((root / 'synthesis' / fmt / f'{rel}.json').read_text())
        out.append((audio, fs, rows, side))
    return out


def write_noise_bank(folder: Path, classes, *, fs: int = 24000, per_class: int = 2, seed: int = 0,
                     dur_s: tuple[float, float] = (0.4, 0.9)) -> Path:
    """Broadband stand-ins: white-noise bursts (``dur_s`` long) named <class><3 digits>.wav for every class."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for cls in classes:
        for k in range(per_class):
            n = int(rng.uniform(*dur_s) * fs)
            sf.write(folder / f'{cls}{k + 1:03d}.wav', 0.2 * rng.standard_normal(n), fs, subtype='PCM_16')
    return folder


def single_source_frames(rows: np.ndarray, audio: np.ndarray, fs: int, *, min_snr_db: float = 30.0):
    """Frames with exactly one metadata row whose track is also active in the frames before and after (so the
    event covers the whole frame) and whose W power is ``min_snr_db`` above the noise of the frames without
    rows. Yields (frame, row, segment)."""
    hop = fs // 10
    nb_frames = len(audio) // hop
    framed = audio[:nb_frames * hop].reshape(nb_frames, hop, -1)
    power = np.mean(framed[:, :, 0] ** 2, axis=1)
    empty = np.setdiff1d(np.arange(nb_frames), rows[:, 0])
    noise = np.median(power[empty]) if empty.size else np.min(power)
    count = collections.Counter(rows[:, 0].tolist())
    track_frames = {t: set(rows[rows[:, 2] == t, 0].tolist()) for t in np.unique(rows[:, 2])}
    for row in rows:
        f, t = int(row[0]), int(row[2])
        if (count[f] == 1 and {f - 1, f + 1} <= track_frames[t] and f < nb_frames
                and power[f] > noise * 10 ** (min_snr_db / 10)):
            yield f, row, framed[f]


def intensity_error(seg: np.ndarray, azi: float, ele: float) -> float:
    """Angle (deg) between (azi, ele) and the active intensity Re{conj(W) [X, Y, Z]} of an FOA segment."""
    return float(angular_distance_deg(acoustics.foa_intensity(seg, nperseg=256), sph2cart(azi, ele)))


def tetra() -> np.ndarray:
    """The tetrahedron of the DCASE sets from datasets.py: (4, 3) metres."""
    azi, ele = np.deg2rad(np.array(datasets.TETRA_MICS_DEG)).T
    return datasets.TETRA_RADIUS_M * np.stack([np.cos(azi) * np.cos(ele), np.sin(azi) * np.cos(ele), np.sin(ele)], 1)


# --------------------------------------------------------------------------------------------------
# layouts
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('name', [n for n in datasets.DCASE_DATASETS if n != 'dcase25_task3'])  # 2025: test_dcase2025
def test_layout_is_read_by_datasets(tmp_path, name):
    """File names, folders, rate, channels, PCM; datasets.Dataset finds every recording in the baseline's part and
    reads its metadata; formats reads it in the dataset's format; dataset_info gives the dataset's classes."""
    summary = make(tmp_path, name)
    spec = datasets.SPECS[name]
    wavs = sorted(p.relative_to(tmp_path / 'foa_dev').with_suffix('').as_posix()
                  for p in (tmp_path / 'foa_dev').rglob('*.wav'))
    assert set(wavs) == EXPECTED_STEMS[name]
    assert summary['nb_recordings'] == len(wavs)
    for rel in wavs:
        info = sf.info(tmp_path / 'foa_dev' / f'{rel}.wav')
        assert (info.samplerate, info.channels, info.subtype, info.frames) == (spec.fs, 4, 'PCM_16', 4 * spec.fs)
        assert datasets.STEM_PATTERNS[name].fullmatch(Path(rel).name)
        assert str(Path(rel).parent).replace('.', '') in datasets.SUBFOLDERS[name]
    dset = datasets.Dataset(dict(dataset=name, dataset_dir=str(tmp_path), format='foa', split=1, val_fraction=0.0))
    recs = dset.recordings()
    assert sorted(r.stem for r in recs) == sorted(Path(w).name for w in wavs)
    assert {r.fold: r.part for r in recs} == EXPECTED_PARTS[name]
    assert (dset.fs, dset.nb_channels, dset.classes) == (spec.fs, 4, list(spec.classes))
    for rec in recs:
        duration = sf.info(rec.wav).duration
        ref = dset.read_reference(rec, duration_s=duration)
        if name == 'tau2019sse':
            assert isinstance(ref, label_frames.Events) and len(ref.cls) >= 1
            assert set(ref.names) <= set(spec.classes)
        else:
            inst = formats.read_instances(rec.meta, fmt=spec.meta_format, nb_classes=len(spec.classes),
                                          nb_frames=label_frames.nb_frames_at(duration, frame_rate=10.0),
                                          max_track=999)
            assert len(inst.frame) == len(ref.frame) >= 10
            assert np.all(np.diff(inst.frame) >= 0)  # sorted by frame
            text = Path(rec.meta).read_text().splitlines()
            assert all(re.fullmatch(r'\d+,\d+,\d+,-?\d+,-?\d+', line) for line in text)  # integers, no header
    info = json.loads((tmp_path / 'dataset_info.json').read_text())
    assert info['synthetic'] is True and info['dataset'] == name and info['format'] == 'foa'
    assert (info['fs'], info['nb_channels'], info['classes']) == (spec.fs, 4, list(spec.classes))
    assert info['command'].startswith(f'python synthesize_dataset.py dataset={name} format=foa')
    assert 'SYNTHETIC' in (tmp_path / 'README.txt').read_text()
    assert not [p for p in tmp_path.rglob('*') if '.tmp' in p.name]


@pytest.mark.slow
def test_tau2019_metadata(tmp_path):
    """2019: the tut2018 header, class names as recordings, static events on the 10-degree grid, ov in the name
    bounding the number of simultaneous events."""
    make(tmp_path, 'tau2019sse', nb_per_fold=2, clip_len_s=8.0)
    names = sorted(p.stem for p in (tmp_path / 'metadata_dev').glob('*.csv'))
    assert len(names) == 8 and {n.split('_ov')[1][0] for n in names} == {'1', '2'}
    max_active = {1: 0, 2: 0}
    for stem in names:
        lines = (tmp_path / 'metadata_dev' / f'{stem}.csv').read_text().splitlines()
        assert lines[0] == 'sound_event_recording,start_time,end_time,ele,azi,dist'
        ev = [line.split(',') for line in lines[1:]]
        assert ev and all(r[0] in datasets.DCASE2016_CLASSES for r in ev)
        assert all(int(r[4]) % 10 == 0 and int(r[3]) % 10 == 0 and -40 <= int(r[3]) <= 40 for r in ev)
        ov = int(stem.split('_ov')[1][0])
        for s in (float(r[1]) for r in ev):
            active = [r for r in ev if float(r[1]) <= s < float(r[2])]
            assert len(active) <= ov and len({r[0] for r in active}) == len(active)  # no same-class overlap
            max_active[ov] = max(max_active[ov], len(active))
    assert max_active == {1: 1, 2: 2}


def test_starss_lengths_vary(tmp_path):
    """STARSS look-alikes: lengths uniform in [clip_len_s, clip_len_max_s], whole 100 ms frames, not all equal;
    the default for STARSS varies them in 20-40 s."""
    make(tmp_path, 'starss22', nb_per_fold=2, clip_len_s=3.0, clip_len_max_s=6.0)
    infos = [sf.info(p) for p in (tmp_path / 'foa_dev').rglob('*.wav')]
    lengths = sorted(i.frames for i in infos)
    assert len(lengths) == 8 and len(set(lengths)) >= 4
    assert all(3 * 24000 <= n <= 6 * 24000 and n % 2400 == 0 for n in lengths)
    dset = datasets.Dataset(dict(dataset='starss22', dataset_dir=str(tmp_path), split=1, val_fraction=0.2))
    for rec in dset.recordings():
        dset.read_reference(rec, duration_s=sf.info(rec.wav).duration)
    assert (sdc.cli_defaults('starss23')['clip_len_s'], sdc.cli_defaults('starss23')['clip_len_max_s']) == (20.0, 40.0)


def test_starss23_distance_column(tmp_path):
    """dist=true: six integer fields, the distance in cm (1-3 m), constant per track; read by formats."""
    make(tmp_path, 'starss23', dist=True, clip_len_s=5.0)
    checked = 0
    for audio, fs, rows, side in recordings(tmp_path):
        assert rows.shape[1] == 6
        for track in np.unique(rows[:, 2]):
            d = rows[rows[:, 2] == track, 5]
            assert np.all(d == d[0]) and 100 <= d[0] <= 300
            assert d[0] == round(side['events'][track]['dist'] * 100)
        checked += 1
    assert checked == 4
    meta = next((tmp_path / 'metadata_dev').rglob('*.csv'))
    inst = formats.read_instances(meta, fmt='dcase2024', nb_classes=13)
    assert inst.dist is not None and np.all((inst.dist >= 100) & (inst.dist <= 300))


@pytest.mark.slow
def test_tracks_and_same_class_overlaps(tmp_path):
    """2021+: same_class=1 makes same-class overlaps (two rows of one class in a frame, distinct tracks); every
    track is one event (one class, contiguous frames) numbered in order of appearance. 2020: none."""
    make(tmp_path / 'a', 'tau2021sse_nigens', same_class=1.0, clip_len_s=8.0, moving=0.5)
    same = 0
    for _, _, rows, side in recordings(tmp_path / 'a'):
        tracks = np.unique(rows[:, 2])
        assert list(tracks) == list(range(len(side['events'])))
        firsts = [rows[rows[:, 2] == t, 0].min() for t in tracks]
        assert firsts == sorted(firsts)
        for t in tracks:
            r = rows[rows[:, 2] == t]
            assert len(set(r[:, 1])) == 1 and np.all(np.diff(r[:, 0]) == 1)
        pairs = collections.Counter(zip(rows[:, 0].tolist(), rows[:, 1].tolist()))
        same += sum(n > 1 for n in pairs.values())
        assert len(set(zip(rows[:, 0].tolist(), rows[:, 2].tolist()))) == len(rows)  # one row per frame and track
    assert same >= 10
    make(tmp_path / 'b', 'tau2020sse_nigens', nb_per_fold=2, clip_len_s=8.0)
    for _, _, rows, _ in recordings(tmp_path / 'b'):
        assert len(set(zip(rows[:, 0].tolist(), rows[:, 1].tolist()))) == len(rows)


# --------------------------------------------------------------------------------------------------
# physics of the written audio
# --------------------------------------------------------------------------------------------------
def test_foa_intensity_follows_frame_metadata(tmp_path):
    """Anechoic FOA, 60 dB SNR: the intensity direction of every single-source frame (static and MOVING sources)
    is within 2 degrees of its metadata row (measured: static max 0.05, moving median 0.33, max 1.35; the
    metadata is rounded to whole degrees); moving tracks turn 1, 2 or 4 degrees per frame."""
    make(tmp_path, 'tau2020sse_nigens', clip_len_s=8.0, db=60.0, moving=0.5)
    errors = {'static': [], 'moving': []}
    steps = set()
    for audio, fs, rows, side in recordings(tmp_path):
        for f, row, seg in single_source_frames(rows, audio, fs):
            prev = rows[(rows[:, 0] == f - 1) & (rows[:, 2] == row[2])][0]
            moving = side['events'][row[2]]['speed_deg_s'] != 0
            errors['moving' if moving else 'static'].append(intensity_error(seg, row[3], row[4]))
            if moving:
                steps.add(abs(int((row[3] - prev[3] + 180) % 360 - 180)))
            else:
                assert prev[3] == row[3] and prev[4] == row[4]
    assert len(errors['static']) >= 30 and len(errors['moving']) >= 30, {k: len(v) for k, v in errors.items()}
    assert max(errors['static']) < 2.0 and max(errors['moving']) < 2.0, errors
    assert steps <= {0, 1, 2, 3, 4, 5} and max(steps) >= 2


@pytest.mark.slow
def test_tetrahedral_delays_follow_metadata(tmp_path):
    """format=mic, anechoic, broadband events: GCC-PHAT delays of all 6 mic pairs in each single-source frame
    (static and moving) match the tetrahedron's geometry for the frame's metadata direction within 0.1 sample
    (measured: max 0.02 static, 0.05 moving; the rounding of the metadata to whole degrees alone is up to 0.05)."""
    bank = write_noise_bank(tmp_path / 'bank', datasets.NIGENS2020_CLASSES)
    make(tmp_path / 'd', 'tau2020sse_nigens', format='mic', clip_len_s=6.0, db=60.0, moving=0.5, sound_bank=bank)
    mics = tetra()
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    errors = {'static': [], 'moving': []}
    for audio, fs, rows, side in recordings(tmp_path / 'd', fmt='mic'):
        for f, row, seg in single_source_frames(rows, audio, fs):
            unit = sph2cart(row[3], row[4])
            kind = 'moving' if side['events'][row[2]]['speed_deg_s'] else 'static'
            for i, j in pairs:
                expected = -(mics[j] - mics[i]) @ unit / C * fs  # mic j hears the wave this much later
                errors[kind].append(abs(acoustics.gcc_phat_delay(seg[:, i], seg[:, j], max_lag=8.0) - expected))
    assert len(errors['static']) >= 60 and len(errors['moving']) >= 60
    assert max(errors['static']) < 0.1 and max(errors['moving']) < 0.1, (max(errors['static']), max(errors['moving']))


def test_moving_fractional_delay_matches_exact_static_delay():
    """plane_wave_array_moving with a constant direction equals the exact phase-shift plane wave (independent
    frequency-domain reference) to -50 dB for a signal below 0.4 fs."""
    rng = np.random.default_rng(0)
    fs = 24000
    b, a = scipy.signal.butter(8, 0.8)
    x = scipy.signal.lfilter(b, a, rng.standard_normal(fs // 2))
    mics = tetra()
    for azi, ele in ((30, 10), (-120, -40), (170, 60)):
        exact = spatial.plane_wave_array(x, azi_deg=azi, ele_deg=ele, fs=fs, mics=mics)
        units = np.repeat(sph2cart(azi, ele)[None], len(x), axis=0)
        moving = spatial.plane_wave_array_moving(x, units=units, fs=fs, mics=mics)
        inner = slice(200, len(x) - 200)  # away from the ends (the FFT reference is circular)
        err = 10 * np.log10(np.sum((moving[inner] - exact[inner]) ** 2) / np.sum(exact[inner] ** 2))
        assert err < -50, err


def test_tetrahedral_diffuse_noise_coherence():
    """Diffuse noise on the tetrahedron: coherence between mics at distance d is sinc(2 f d / c)."""
    rng = np.random.default_rng(1)
    fs = 24000
    mics = tetra()
    noise = spatial.diffuse_noise(rng, nb_samples=8 * fs, fs=fs, fmt='mic', mics=mics)
    for i, j in ((0, 1), (0, 2), (1, 3)):
        d = np.linalg.norm(mics[i] - mics[j])
        f, sxy = scipy.signal.csd(noise[:, i], noise[:, j], fs=fs, nperseg=1024)
        _, sxx = scipy.signal.welch(noise[:, i], fs=fs, nperseg=1024)
        _, syy = scipy.signal.welch(noise[:, j], fs=fs, nperseg=1024)
        band = (f > 200) & (f < 10000)
        error = np.real(sxy[band]) / np.sqrt(sxx[band] * syy[band]) - np.sinc(2 * f[band] * d / C)
        assert np.mean(np.abs(error)) < 0.035, (i, j)


@pytest.mark.parametrize('name,fmt,db', [('tau2019sse', 'foa', 10.0),
                                         pytest.param('tau2019sse', 'mic', 25.0, marks=pytest.mark.slow),
                                         ('tau2021sse_nigens', 'foa', 20.0)])
def test_snr_measured_on_written_audio(tmp_path, name, fmt, db):
    """SNR = event power inside the labelled events / noise power, on W (FOA) or the mean over the mics; the noise
    power is measured between events. Event intervals from the 2019 metadata (seconds), or for 2021 from the side
    file's sample-exact onsets (its 100 ms rows are coarser)."""
    make(tmp_path, name, format=fmt, db=db, clip_len_s=6.0, nb_per_fold=1, moving=0.0)
    for wav in sorted((tmp_path / f'{fmt}_dev').rglob('*.wav')):
        audio, fs = sf.read(wav, dtype='float64', always_2d=True)
        rel = wav.relative_to(tmp_path / f'{fmt}_dev').with_suffix('')
        if name == 'tau2019sse':
            lines = (tmp_path / 'metadata_dev' / f'{rel}.csv').read_text().splitlines()[1:]
            spans = [(float(r.split(',')[1]), float(r.split(',')[2])) for r in lines]
        else:
            side = json.loads((tmp_path / 'synthesis' / fmt / f'{rel}.json').read_text())
            spans = [(e['onset_s'], e['end_s']) for e in side['events']]
        ref = audio[:, 0] ** 2 if fmt == 'foa' else np.mean(audio ** 2, axis=1)
        quiet, active = np.ones(len(ref), bool), np.zeros(len(ref), bool)
        for s, e in spans:
            quiet[max(0, int((s - 0.005) * fs)):int((e + 0.005) * fs)] = False
            active[int(s * fs):int(e * fs)] = True
        noise = ref[quiet].mean()
        measured = 10 * np.log10((ref[active].mean() - noise) / noise)
        assert abs(measured - db) < 1.0, (wav.name, measured)


@pytest.mark.slow
def test_reverberant_moving_sources_follow_metadata(tmp_path):
    """reverb=true, FOA, all events moving, broadband events: the intensity direction of single-source frames
    stays near the metadata despite the reflections (measured over 92 frames of 4 rooms, RT60 0.49-0.98 s:
    median 1.6, mean 2.0, max 8.5 degrees); the mic format of the same scene is written and read too."""
    bank = write_noise_bank(tmp_path / 'bank', datasets.STARSS_CLASSES)
    make(tmp_path / 'r', 'starss23', reverb=True, moving=1.0, overlap=1, clip_len_s=6.0, db=40.0, sound_bank=bank,
         same_class=0.0)
    errors = [intensity_error(seg, row[3], row[4]) for audio, fs, rows, _ in recordings(tmp_path / 'r')
              for _, row, seg in single_source_frames(rows, audio, fs, min_snr_db=20.0)]
    assert len(errors) >= 30
    assert np.median(errors) < 4.0 and np.mean(errors) < 5.0, (np.median(errors), np.mean(errors), max(errors))
    side = json.loads(next((tmp_path / 'r' / 'synthesis' / 'foa').rglob('*.json')).read_text())
    assert 0.4 <= side['room']['rt60_s'] <= 1.0 and all(e['speed_deg_s'] for e in side['events'])
    make(tmp_path / 'r', 'starss23', format='mic', reverb=True, moving=1.0, overlap=1, clip_len_s=6.0, db=40.0,
         sound_bank=bank, same_class=0.0)
    dset = datasets.Dataset(dict(dataset='starss23', dataset_dir=str(tmp_path / 'r'), format='mic', split=1))
    assert len(dset.recordings()) == 4


@pytest.mark.slow
def test_interferers_are_unlabelled(tmp_path):
    """interferers=3 (2021): the same metadata as without them, different audio, and energy where only an
    interferer sounds."""
    kw = dict(clip_len_s=6.0, db=40.0, nb_per_fold=1)
    make(tmp_path / 'none', 'tau2021sse_nigens', **kw)
    make(tmp_path / 'with', 'tau2021sse_nigens', interferers=3, **kw)
    for csv in (tmp_path / 'none' / 'metadata_dev').rglob('*.csv'):
        rel = csv.relative_to(tmp_path / 'none')
        assert csv.read_bytes() == (tmp_path / 'with' / rel).read_bytes()
    louder = 0
    for (a0, fs, rows, _), (a1, _, _, side) in zip(recordings(tmp_path / 'none'), recordings(tmp_path / 'with')):
        assert len(side['interferers']) == 3 and not np.array_equal(a0, a1)
        labelled = set(rows[:, 0].tolist())
        for e in side['interferers']:
            frames = [f for f in range(e['onset'] // 2400, e['end'] // 2400) if f not in labelled]
            for f in frames:
                p0, p1 = (np.mean(x[f * 2400:(f + 1) * 2400, 0] ** 2) for x in (a0, a1))
                louder += p1 > 10 * p0
    assert louder >= 3


# --------------------------------------------------------------------------------------------------
# determinism, resume, formats in one folder
# --------------------------------------------------------------------------------------------------
def _contents(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob('*')
            if p.suffix in ('.wav', '.csv')}


@pytest.mark.slow
def test_determinism_resume_and_both_formats(tmp_path):
    kw = dict(clip_len_s=3.0, moving=0.5, interferers=1)
    a = _contents(Path(make(tmp_path / 'a', 'tau2021sse_nigens', **kw)['dataset_dir']))
    assert a == _contents(Path(make(tmp_path / 'b', 'tau2021sse_nigens', n_jobs=2, **kw)['dataset_dir']))
    other = _contents(Path(make(tmp_path / 'c', 'tau2021sse_nigens', **{**kw, 'seed': 4})['dataset_dir']))
    assert set(other) == set(a) and all(other[k] != a[k] for k in a)
    # resume: nothing rewritten
    wav = next((tmp_path / 'a' / 'foa_dev').rglob('*.wav'))
    mtime = wav.stat().st_mtime_ns
    again = make(tmp_path / 'a', 'tau2021sse_nigens', **kw)
    assert (again['nb_skipped'], again['nb_synthesized']) == (6, 0) and wav.stat().st_mtime_ns == mtime
    # the mic format of the same scenes goes beside it and shares metadata_dev/
    make(tmp_path / 'a', 'tau2021sse_nigens', format='mic', **kw)
    both = _contents(tmp_path / 'a')
    assert {k: v for k, v in both.items() if not k.startswith('mic_dev')} == a
    assert len([k for k in both if k.startswith('mic_dev')]) == 6
    info = json.loads((tmp_path / 'a' / 'dataset_info.json').read_text())
    assert info['formats'] == ['foa', 'mic'] and info['format'] == 'foa+mic' and set(info['commands']) == {'foa', 'mic'}
    with pytest.raises(SELDError, match=r'made with other scene parameters: nb_per_fold=1 \(now 2\)'):
        make(tmp_path / 'a', 'tau2021sse_nigens', nb_per_fold=2, **kw)
    # one format alone may change its scenes: recordings it no longer makes are deleted
    make(tmp_path / 'c', 'tau2021sse_nigens', nb_per_fold=2, **{**kw, 'seed': 4})
    make(tmp_path / 'c', 'tau2021sse_nigens', nb_per_fold=1, **{**kw, 'seed': 4})
    assert _contents(tmp_path / 'c') == other


# --------------------------------------------------------------------------------------------------
# bad input and the command line
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('name,kw,message', [
    ('tau2020sse_nigens', dict(same_class=0.2), 'same_class=0.2: tau2020sse_nigens has no same-class overlaps'),
    ('tau2019sse', dict(moving=0.5), 'moving=0.5: tau2019sse has static sources only'),
    ('tau2020sse_nigens', dict(overlap=3), 'overlap=3: tau2020sse_nigens has at most 2 overlapping events'),
    ('tau2021sse_nigens', dict(overlap=4), 'overlap=4: tau2021sse_nigens has at most 3'),
    ('starss22', dict(dist=True), 'dist=true: only starss23'),
    ('tau2020sse_nigens', dict(interferers=2), 'interferers=2: tau2020sse_nigens has no directional interferers'),
    ('starss23', dict(format='ambix'), "format='ambix': must be foa or mic"),
    ('starss23', dict(nb_per_fold=0), 'nb_per_fold=0: must be an integer >= 1'),
    ('starss23', dict(clip_len_s=5.0, clip_len_max_s=4.0), 'clip_len_max_s=4.0: must be 0'),
    ('starss23', dict(moving=1.5), 'moving=1.5: must be a share in [0, 1]'),
    ('starss23', dict(db=float('nan')), 'db=nan: the SNR must be a finite number'),
])
def test_bad_parameters(tmp_path, name, kw, message):
    with pytest.raises(SELDError, match=re.escape(message)):
        make(tmp_path, name, **kw)


def test_folder_banks(tmp_path):
    """A folder bank must hold every class of the dataset by name; its events must fit the recordings."""
    bank = write_noise_bank(tmp_path / 'bank', datasets.NIGENS2020_CLASSES[:-1])
    with pytest.raises(SELDError, match=r"has no <class><3 digits>\.wav recordings of the class\(es\) \['piano'\]"):
        make(tmp_path / 'out', 'tau2020sse_nigens', sound_bank=bank)
    bank = write_noise_bank(tmp_path / 'long', datasets.NIGENS2020_CLASSES, dur_s=(0.8, 1.0))
    with pytest.raises(SELDError, match=re.escape('clip_len_s=1.0: too short for the shortest event')):
        make(tmp_path / 'out', 'tau2020sse_nigens', sound_bank=bank, clip_len_s=1.0)


@pytest.mark.slow
def test_cli(tmp_path):
    for name in datasets.DCASE_DATASETS:  # every command-line key is a keyword of synthesize, and vice versa
        assert set(sdc.cli_defaults(name)) == set(inspect.signature(sdc.synthesize).parameters)
    cmd = [sys.executable, str(ROOT / 'synthesize_dataset.py')]
    bad = subprocess.run(cmd + ['dataset=starss23', 'nb_train=3'], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2
    assert "unknown parameter 'nb_train'" in bad.stderr and 'nb_per_fold' in bad.stderr and 'dist' in bad.stderr
    ok = subprocess.run(cmd + ['dataset=tau2020sse_nigens', 'nb_per_fold=1', 'clip_len_s=2.5', 'reverb=false',
                               'progress=false', f'dataset_dir={tmp_path}'], capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert re.search(r'tau2020sse_nigens foa: 6 recordings \(0 already complete\), \d+ events, 0\.2 min of '
                     r'synthetic audio in [\d.]+ s', ok.stdout)
    assert (tmp_path / 'foa_dev' / 'fold1_room1_mix001_ov1.wav').exists()

"""synth.tut2018 and synth.sound_bank (through synthesize_dataset.py): format, physics of the written audio,
determinism, bad inputs.

The physical checks estimate DOAs, delays, onsets, SNR and RT60 from the WRITTEN wav files with textbook
estimators (active intensity, GCC-PHAT, Schroeder integration) and compare them with the CSV labels and the
requested parameters; the expected values come from the geometry in the task description, not from the
synthesizer's code.
"""
from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyroomacoustics as pra
import pytest
import scipy.signal
import soundfile as sf
from pyroomacoustics.experimental import measure_rt60

from datasets import DCASE2016_CLASSES
from synth import sound_bank, spatial, tut2018
from synth.sound_bank import BUILTIN_CLASSES, load_sound_bank
from utils import SELDError, angular_distance_deg, sph2cart

import acoustics

ROOT = Path(__file__).resolve().parents[1]
SHARED_DCASE = ROOT.parent / 'shared' / 'data' / 'dcase2016_task2_train'
FS = 44100
C = 343.0  # m/s, speed of sound of the task description (and of pyroomacoustics)
TUT_HEADER = ['sound_event_recording', 'start_time', 'end_time', 'ele', 'azi', 'dist']


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------
def make(tmp: Path, **kw) -> dict:
    args = dict(dataset_dir=tmp, dataset='ansim', nb_train=2, nb_test=1, clip_len_s=4.0, seed=3, progress=False)
    args.update(kw)
    return tut2018.synthesize(**args)


def clips(summary: dict) -> list[tuple[np.ndarray, int, list[dict]]]:
    """(audio [samples, channels] float, fs, CSV rows) of every clip of a synthesized split."""
    out = []
    for wav in sorted(Path(summary['wav_dir']).glob('*.wav')):
        audio, fs = sf.read(wav, dtype='float64', always_2d=True)
        with open(Path(summary['desc_dir']) / (wav.stem + '.csv'), newline='') as f:
            rows = list(csv.DictReader(f))
        out.append((audio, fs, rows))
    return out


def write_bank(folder: Path, *, classes: tuple[str, ...] = ('hiss', 'rush'), per_class: int = 3, fs: int = FS,
               seed: int = 0) -> Path:
    """Mono white-noise bursts with a sharp onset (0.3-0.7 s), named <class><3 digits>.wav."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for cls in classes:
        for k in range(per_class):
            n = int(rng.uniform(0.3, 0.7) * fs)
            sf.write(folder / f'{cls}{7 * k + 1:03d}.wav', 0.2 * rng.standard_normal(n), fs, subtype='PCM_16')
    return folder


def intensity_doa_error(audio: np.ndarray, fs: int, row: dict, *, max_s: float | None = None) -> float:
    """Angle (deg) between the CSV DOA and the direction of the active intensity Re{conj(W) [X, Y, Z]}
    summed over the event's STFT frames and bins (ACN channels: W=0, Y=1, Z=2, X=3)."""
    start, end = float(row['start_time']), float(row['end_time'])
    if max_s is not None:
        end = min(end, start + max_s)
    seg = audio[int(start * fs):int(end * fs)]
    intensity = acoustics.foa_intensity(seg, nperseg=512)
    return float(angular_distance_deg(intensity, sph2cart(float(row['azi']), float(row['ele']))))


def isolated(rows: list[dict], k: int, margin_s: float) -> bool:
    """Whether event k has no other event within margin_s of its interval."""
    s, e = float(rows[k]['start_time']), float(rows[k]['end_time'])
    return all(float(r['end_time']) + margin_s <= s or float(r['start_time']) >= e + margin_s
               for j, r in enumerate(rows) if j != k)


def noise_only_mask(nb: int, fs: int, rows: list[dict], guard_s: float) -> np.ndarray:
    mask = np.ones(nb, dtype=bool)
    for r in rows:
        mask[max(0, int((float(r['start_time']) - guard_s) * fs)):int((float(r['end_time']) + guard_s) * fs)] = False
    return mask


@pytest.fixture(scope='module')
def ansim(tmp_path_factory) -> dict:
    """A tiny ov1 ANSIM look-alike with unseen-DOA test clips."""
    return make(tmp_path_factory.mktemp('ansim'), nb_train=2, nb_test=2, clip_len_s=5.0, unseen_doa=True)


# --------------------------------------------------------------------------------------------------
# format
# --------------------------------------------------------------------------------------------------
def test_on_disk_format(ansim):
    root = Path(ansim['dataset_dir'])
    assert Path(ansim['wav_dir']).name == 'wav_ov1_split1_30db'
    assert Path(ansim['desc_dir']).name == 'desc_ov1_split1'
    stems = sorted(p.stem for p in Path(ansim['wav_dir']).glob('*.wav'))
    assert stems == ['test_0_desc_30_100', 'test_1_desc_30_100', 'train_0_desc_30_100', 'train_1_desc_30_100']
    assert sorted(p.stem for p in Path(ansim['desc_dir']).glob('*.csv')) == stems
    for stem in stems:
        wav = Path(ansim['wav_dir']) / f'{stem}.wav'
        info = sf.info(wav)
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (FS, 4, 5 * FS, 'PCM_16')
        with open(Path(ansim['desc_dir']) / f'{stem}.csv', newline='') as f:
            lines = f.read().splitlines()
        assert lines[0] == ','.join(TUT_HEADER)
        for line in lines[1:]:
            name, start, end, ele, azi, dist = line.split(',')
            cls = re.fullmatch(r'([A-Za-z]+)(\d{3})\.wav', name)
            assert cls and cls[1] in BUILTIN_CLASSES
            assert 0 <= float(start) < float(end) <= 5.0
            assert 0.2 - 1e-3 <= float(end) - float(start) <= 3.0
            step = 5 if stem.startswith('test') else 0  # unseen DOA: the grid shifted by +5 degrees
            assert int(azi) % 10 == step and int(ele) % 10 == step
            assert -180 <= int(azi) < 180 and -40 + step <= int(ele) <= 40 + step
            assert 1.0 <= float(dist) <= 3.0
    info = json.loads((root / 'dataset_info.json').read_text())
    assert info['synthetic'] is True and info['generator'] == 'synthesize_dataset.py'
    assert (info['dataset'], info['format'], info['fs'], info['nb_channels'], info['clip_len_s']) == (
        'ansim', 'foa', FS, 4, 5.0)
    assert info['classes'] == list(BUILTIN_CLASSES) and len(set(info['classes'])) == 11
    assert info['sound_bank'] == 'builtin'
    split = info['splits']['ov1_split1_30db']
    assert (split['nb_train'], split['nb_test'], split['seed'], split['unseen_doa']) == (2, 2, 3, True)
    readme = (root / 'README.txt').read_text()
    assert 'SYNTHETIC' in readme and 'python synthesize_dataset.py' in readme
    assert not [p for p in root.rglob('*') if '.tmp' in p.name]


@pytest.mark.slow
def test_scene_constraints_from_csv(tmp_path):
    """At most `overlap` events at once, never two of one class or one DOA at once; labels fit the audio."""
    for overlap in (2, 3):
        summary = make(tmp_path / f'ov{overlap}', overlap=overlap, clip_len_s=8.0, nb_train=3, nb_test=1)
        max_active = 0
        for audio, fs, rows in clips(summary):
            ev = [(round(float(r['start_time']) * fs), round(float(r['end_time']) * fs), r) for r in rows]
            for s, _, _ in ev:  # the number of active events only grows at onsets
                active = [r for s2, e2, r in ev if s2 <= s < e2]
                max_active = max(max_active, len(active))
                assert len(active) <= overlap
                assert len({re.sub(r'\d{3}\.wav$', '', r['sound_event_recording']) for r in active}) == len(active)
                assert len({(r['azi'], r['ele']) for r in active}) == len(active)
            covered = np.zeros(len(audio), dtype=bool)
            for s, e, _ in ev:
                covered[s:e] = True
            assert covered.mean() > 0.5  # events fill most of the clip
        assert max_active == overlap


# --------------------------------------------------------------------------------------------------
# physics of the written audio
# --------------------------------------------------------------------------------------------------
def test_foa_anechoic_intensity_doa(ansim):
    errors = [intensity_doa_error(audio, fs, row) for audio, fs, rows in clips(ansim) for row in rows]
    assert len(errors) >= 8
    assert max(errors) < 2.0, errors


def test_foa_reverberant_intensity_doa(tmp_path):
    """resim with broadband events (white-noise bank). Measured over 37 events (4 clips of 10 s): median
    2.2, mean 3.0, max 10.6 deg; the tonal built-in classes give median 6, mean 11 deg (room modes and
    early reflections bias the intensity of narrow-band sounds)."""
    summary = make(tmp_path / 'resim', dataset='resim', sound_bank=write_bank(tmp_path / 'bank'), nb_train=2,
                   nb_test=1, clip_len_s=4.0)
    errors = [intensity_doa_error(audio, fs, row) for audio, fs, rows in clips(summary) for row in rows]
    assert len(errors) >= 6
    assert max(errors) < 15.0 and np.mean(errors) < 6.0, errors
    meta = [json.loads(p.read_text()) for p in Path(summary['meta_dir']).glob('*.json')]
    assert all(0.4 <= m['room']['rt60_s'] <= 1.0 for m in meta)


def test_circular_array_gcc_phat(tmp_path):
    """Pairwise delays of the written cansim audio match the plane-wave geometry of the CSV DOA."""
    summary = make(tmp_path / 'cansim', dataset='cansim', sound_bank=write_bank(tmp_path / 'bank'),
                   nb_train=2, nb_test=0, clip_len_s=3.0)
    mics = sph2cart(45.0 * np.arange(8), np.zeros(8), 0.05)
    pairs = [(0, 4), (2, 6), (1, 5), (0, 1), (3, 4), (6, 7), (0, 2)]
    checked = 0
    for audio, fs, rows in clips(summary):
        assert audio.shape[1] == 8
        for row in rows:
            start = round(float(row['start_time']) * fs)
            seg = audio[start:min(start + fs // 4, round(float(row['end_time']) * fs))]
            unit = sph2cart(float(row['azi']), float(row['ele']))
            for i, j in pairs:
                expected = -(mics[j] - mics[i]) @ unit / C * fs   # mic j hears the wave this much later
                assert abs(acoustics.gcc_phat_delay(seg[:, i], seg[:, j]) - expected) < 0.2, (row, i, j)
                checked += 1
    assert checked >= 14
    assert spatial.SPEED_OF_SOUND == C


def test_onsets_match_start_time(tmp_path):
    """W-channel energy envelope rises within 10 ms of start_time (sharp-onset events, resampled from
    48 kHz), and there is no event energy before it."""
    summary = make(tmp_path / 'on', sound_bank=write_bank(tmp_path / 'bank', fs=48000), nb_train=2, nb_test=1)
    frame = FS // 1000  # 1 ms
    checked = 0
    for audio, fs, rows in clips(summary):
        w = audio[:, 0]
        power = np.convolve(w ** 2, np.ones(frame) / frame, mode='same')
        noise = np.median(power[noise_only_mask(len(w), fs, rows, 0.02)])
        for k, row in enumerate(rows):
            if not isolated(rows, k, 0.06):
                continue
            start = float(row['start_time'])
            window = np.arange(int((start - 0.05) * fs), int((start + 0.05) * fs))
            rise = window[np.argmax(power[window] > 30 * noise)] / fs
            assert abs(rise - start) < 0.010, (row, rise)
            checked += 1
    assert checked >= 3


@pytest.mark.parametrize('dataset,db', [('ansim', 10), ('ansim', 30), ('cansim', 20)])
def test_snr_measured_on_written_audio(tmp_path, dataset, db):
    """SNR = event power over the labelled intervals / noise power, on W (FOA) or the mean over mics;
    the noise power is measured on the noise-only stretches between events."""
    summary = make(tmp_path, dataset=dataset, db=db, nb_train=2, nb_test=0, clip_len_s=6.0)
    for audio, fs, rows in clips(summary):
        ref = audio[:, 0] ** 2 if dataset == 'ansim' else np.mean(audio ** 2, axis=1)
        noise_power = ref[noise_only_mask(len(ref), fs, rows, 0.005)].mean()
        active = ~noise_only_mask(len(ref), fs, rows, 0.0)
        measured = 10 * np.log10((ref[active].mean() - noise_power) / noise_power)
        assert abs(measured - db) < 1.0, measured


@pytest.mark.parametrize('rt60', [0.4, pytest.param(1.0, marks=pytest.mark.slow)])
def test_rt60_of_reverberant_rir(rt60):
    """Schroeder-integration T30 (pyroomacoustics.experimental.measure_rt60) of the omni channels of RIRs
    for several source positions lies within 20 % of the requested RT60."""
    room_dim, array = np.array([10.0, 8.0, 4.0]), np.array([4.6, 4.3, 1.9])
    for fmt in ('foa', 'mic'):
        model = spatial.ShoeboxModel(room_dim=room_dim, array_pos=array, rt60=rt60, fs=FS, fmt=fmt)
        for src in ([6.5, 5.0, 2.5], [3.0, 2.5, 1.0], [4.0, 7.0, 3.0]):
            rir = model.rir(np.array(src))
            measured = measure_rt60(rir[:, 0], fs=FS, decay_db=30)
            assert abs(measured - rt60) < 0.2 * rt60, (fmt, src, measured)
            # direct sound: at the array centre `pre` samples in, with amplitude 1 / distance (FOA W)
            if fmt == 'foa':
                assert abs(rir[spatial.PRE_SAMPLES, 0] - 1 / np.linalg.norm(np.array(src) - array)) < 1e-3


def test_image_sources_match_pyroomacoustics():
    """The per-source translation of the room's image sources equals pyroomacoustics' own ISM."""
    room_dim, array = np.array([9.0, 7.0, 3.5]), np.array([4.0, 3.0, 1.8])
    model = spatial.ShoeboxModel(room_dim=room_dim, array_pos=array, rt60=0.3, fs=FS, fmt='foa')
    src = np.array([2.2, 5.1, 0.9])
    images, orders = model.image_sources(src)
    room = pra.ShoeBox(room_dim, fs=FS, max_order=5)
    room.add_source(src)
    room.add_microphone(array)
    room.image_source_model()
    low = orders <= 5
    ours = np.round(np.column_stack([images[low], orders[low]]), 4)
    ref = np.round(np.column_stack([room.sources[0].images.T, room.sources[0].orders]), 4)
    assert len(ours) == len(ref)
    np.testing.assert_allclose(ours[np.lexsort(ours.T)], ref[np.lexsort(ref.T)], atol=1e-3)


def test_diffuse_noise_statistics():
    """FOA: isotropic-field channel powers W : Y : Z : X = 1 : 1/3 : 1/3 : 1/3, uncorrelated.
    Array: coherence between mics at distance d is sinc(2 f d / c) (spherically isotropic field)."""
    rng = np.random.default_rng(0)
    foa = spatial.diffuse_noise(rng, nb_samples=4 * FS, fs=FS, fmt='foa')
    power = np.mean(foa ** 2, axis=0)
    np.testing.assert_allclose(power[1:] / power[0], 1 / 3, rtol=0.05)
    corr = np.corrcoef(foa.T)
    assert np.max(np.abs(corr - np.eye(4))) < 0.05
    mic = spatial.diffuse_noise(rng, nb_samples=8 * FS, fs=FS, fmt='mic')
    for j in (1, 2, 4):
        d = 2 * 0.05 * np.sin(np.deg2rad(45.0 * j) / 2)
        f, sxy = scipy.signal.csd(mic[:, 0], mic[:, j], fs=FS, nperseg=1024)
        _, sxx = scipy.signal.welch(mic[:, 0], fs=FS, nperseg=1024)
        _, syy = scipy.signal.welch(mic[:, j], fs=FS, nperseg=1024)
        band = (f > 200) & (f < 12000)
        error = np.real(sxy[band]) / np.sqrt(sxx[band] * syy[band]) - np.sinc(2 * f[band] * d / C)
        band_means = error[:len(error) // 16 * 16].reshape(-1, 16).mean(axis=1)  # 690 Hz bands
        assert np.mean(np.abs(error)) < 0.035 and np.max(np.abs(band_means)) < 0.06, j


# --------------------------------------------------------------------------------------------------
# determinism, resume, dataset_info merging
# --------------------------------------------------------------------------------------------------
def _contents(summary: dict) -> dict[str, bytes]:
    files = list(Path(summary['wav_dir']).glob('*.wav')) + list(Path(summary['desc_dir']).glob('*.csv'))
    return {p.name: p.read_bytes() for p in files}


@pytest.mark.slow
def test_determinism_and_parallelism(tmp_path):
    kw = dict(nb_train=2, nb_test=1, clip_len_s=2.0)
    a = _contents(make(tmp_path / 'a', **kw))
    assert a == _contents(make(tmp_path / 'b', **kw))
    assert a == _contents(make(tmp_path / 'c', n_jobs=2, **kw))
    other_seed = _contents(make(tmp_path / 'd', **{**kw, 'seed': 4}))
    other_split = make(tmp_path / 'e', split=2, **kw)
    for other in (other_seed, {k: v for k, v in _contents(other_split).items()}):
        assert set(other) == set(a) and all(other[k] != a[k] for k in a)
    assert a['train_0_desc_30_100.wav'] != a['train_1_desc_30_100.wav']
    assert a['train_0_desc_30_100.wav'] != a['test_0_desc_30_100.wav']
    # another SNR: same scene (identical CSV content), different audio
    db10 = _contents(make(tmp_path / 'a', db=10, **kw))
    assert db10['train_0_desc_10_100.csv'] == a['train_0_desc_30_100.csv']


def test_resume_skips_complete_clips_and_merges_splits(tmp_path):
    first = make(tmp_path, nb_train=2, nb_test=1, clip_len_s=2.0)
    wav = Path(first['wav_dir']) / 'train_0_desc_30_100.wav'
    mtime = wav.stat().st_mtime_ns
    again = make(tmp_path, nb_train=1, nb_test=1, clip_len_s=2.0)
    assert (again['nb_skipped'], again['nb_synthesized']) == (2, 0)
    assert wav.stat().st_mtime_ns == mtime
    assert not (Path(first['wav_dir']) / 'train_1_desc_30_100.wav').exists()  # beyond nb_train: removed
    make(tmp_path, overlap=2, split=2, nb_train=1, nb_test=1, clip_len_s=2.0)
    info = json.loads((tmp_path / 'dataset_info.json').read_text())
    assert set(info['splits']) == {'ov1_split1_30db', 'ov2_split2_30db'}
    assert info['splits']['ov1_split1_30db']['nb_train'] == 1
    with pytest.raises(SELDError, match=r'dataset_info.json: has fs=44100 but this run makes fs=48000'):
        make(tmp_path, fs=48000, nb_train=1, nb_test=0, clip_len_s=2.0)
    with pytest.raises(SELDError, match=r"has dataset='ansim'"):
        make(tmp_path, dataset='cansim', nb_train=1, nb_test=0, clip_len_s=2.0)


# --------------------------------------------------------------------------------------------------
# sound banks and bad inputs
# --------------------------------------------------------------------------------------------------
def test_folder_bank_classes_split_and_names(tmp_path):
    bank_dir = write_bank(tmp_path / 'bank', classes=('beep', 'zap', 'boom'), per_class=5)
    (bank_dir / 'README.txt').write_text('not audio')
    bank = load_sound_bank(bank_dir, split=1)
    assert bank.classes == ('beep', 'boom', 'zap')  # not the DCASE set: sorted
    for c in range(3):
        train, test = bank.files(c, part='train'), bank.files(c, part='test')
        assert (len(train), len(test)) == (4, 1) and not set(train) & set(test)
    summary = make(tmp_path / 'out', sound_bank=bank_dir, nb_train=1, nb_test=1, clip_len_s=3.0)
    for part in ('train', 'test'):
        with open(Path(summary['desc_dir']) / f'{part}_0_desc_30_100.csv', newline='') as f:
            names = {r['sound_event_recording'] for r in csv.DictReader(f)}
        allowed = {Path(p).name for c in range(3) for p in bank.files(c, part=part)}
        assert names and names <= allowed


def test_shared_dcase2016_folder_bank(tmp_path):
    if not SHARED_DCASE.is_dir():
        pytest.skip(f'{SHARED_DCASE} not present')
    bank = load_sound_bank(SHARED_DCASE, split=1)
    assert bank.classes == tuple(DCASE2016_CLASSES)  # the order the feature extractor assumes
    assert bank.classes[:3] == ('knock', 'drawer', 'clearthroat') and bank.classes[10] == 'laughter'
    for c, cls in enumerate(bank.classes):
        train, test = bank.files(c, part='train'), bank.files(c, part='test')
        assert (len(train), len(test)) == (16, 4) and not set(train) & set(test)
        assert all(Path(p).name.startswith(cls) for p in train + test)
    summary = make(tmp_path, sound_bank=SHARED_DCASE, nb_train=1, nb_test=0, clip_len_s=4.0)
    info = json.loads((tmp_path / 'dataset_info.json').read_text())
    assert info['classes'] == list(DCASE2016_CLASSES)
    assert summary['nb_events'] >= 1


def test_builtin_excitation_noise_level_spectrum_and_envelope():
    """The broadband noise under the tonal built-in classes, checked on a gated 1 kHz sine: what _noisy adds is
    NOISE_DB below the sine's RMS (drawn across that range), pink (Welch PSD slope -1 on log-log axes, 100 Hz-6 kHz,
    the 1 kHz bin left out) and silent 10 ms after the sine stops."""
    fs, n = 16000, 32000

    def gated_sine(rng, n, fs):
        x = np.sin(2 * np.pi * 1000.0 * np.arange(n) / fs)
        x[n // 2:] = 0.0
        return x

    tone = gated_sine(None, n, fs)
    lo, hi = sound_bank.NOISE_DB
    levels, slopes = [], []
    for seed in range(20):
        noise = sound_bank._noisy(gated_sine)(np.random.default_rng(seed), n, fs) - tone
        levels.append(10 * np.log10(np.mean(noise ** 2) / np.mean(tone ** 2)))
        assert np.abs(noise[n // 2 + int(0.01 * fs):]).max() < 1e-12
        f, psd = scipy.signal.welch(noise[:n // 2], fs=fs, nperseg=1024)
        band = (f >= 100) & (f <= 6000) & (np.abs(f - 1000) > 50)
        slopes.append(np.polyfit(np.log10(f[band]), np.log10(psd[band]), 1)[0])
    assert lo - 1e-9 <= min(levels) and max(levels) <= hi + 1e-9 and max(levels) - min(levels) > (hi - lo) / 2
    assert abs(np.mean(slopes) + 1.0) < 0.1 and np.std(slopes) < 0.2


@pytest.mark.parametrize('case', ['missing', 'empty', 'unparsable', 'corrupt', 'stereo', 'single', 'silent'])
def test_bad_sound_banks(tmp_path, case):
    folder = tmp_path / 'bank'
    if case != 'missing':
        folder.mkdir()
    bad = folder / 'cough001.wav'
    if case in ('corrupt', 'stereo', 'silent', 'unparsable', 'single'):
        write_bank(folder, classes=('cough',), per_class=2)
    if case == 'empty':
        (folder / 'notes.txt').write_text('no wavs here')
    elif case == 'unparsable':
        for p in folder.glob('*.wav'):
            p.rename(folder / p.name.replace('cough', 'cough_take').replace('.wav', '0.wav'))
        bad = sorted(folder.glob('*.wav'))[0]
    elif case == 'corrupt':
        bad.write_bytes(b'RIFF\x10\x00\x00\x00WAVEjunk')
    elif case == 'stereo':
        sf.write(bad, np.zeros((100, 2)) + 0.1, FS)
    elif case == 'silent':
        sf.write(bad, np.zeros(100), FS)
    elif case == 'single':
        sf.write(folder / 'zap001.wav', np.ones(1000) * 0.1, FS)
    expected = {'missing': 'sound-bank folder not found', 'empty': 'holds no .wav file',
                'unparsable': r'does not follow <class><3 digits>\.wav', 'corrupt': 'cannot be read as a wav file',
                'stereo': 'has 2 channels, sound-bank files must be mono', 'silent': 'is silent',
                'single': "class 'zap' has 1 file"}[case]
    with pytest.raises(SELDError, match=expected) as err:
        make(tmp_path / 'out', sound_bank=folder)
    named = folder if case in ('missing', 'empty', 'single') else bad
    assert str(named) in str(err.value)


@pytest.mark.parametrize('kw,message', [
    (dict(db=15), 'db=15: must be one of 30, 20, 10'),
    (dict(overlap=4), 'overlap=4: must be one of 1, 2, 3'),
    (dict(dataset='foo'), "dataset='foo': must be one of ansim, resim, cansim, cresim"),
    (dict(grid_res_deg=7), 'grid_res_deg=7: must be a whole number of degrees dividing 360 and 40'),
    (dict(clip_len_s=0.5), 'clip_len_s=0.5: must be between 1 and 3600 seconds'),
    (dict(grid_res_deg=5, unseen_doa=True), 'grid_res_deg=5 with unseen_doa=true: must be even'),
    (dict(nb_train=0, nb_test=0), 'at least one clip'),
])
def test_bad_parameters(tmp_path, kw, message):
    with pytest.raises(SELDError, match=re.escape(message)):
        make(tmp_path, **kw)


@pytest.mark.slow
def test_cli(tmp_path):
    cmd = [sys.executable, str(ROOT / 'synthesize_dataset.py')]
    bad = subprocess.run(cmd + ['dataset=ansim', 'colour=blue'], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode != 0
    assert "unknown parameter 'colour'" in bad.stderr and 'nb_train' in bad.stderr
    ok = subprocess.run(cmd + ['nb_train=1', 'nb_test=0', 'clip_len_s=1.5', 'progress=false',
                               f'dataset_dir={tmp_path}'], capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert re.search(r'1 clips .* events, 0\.0 min of synthetic audio in [\d.]+ s', ok.stdout)
    assert (tmp_path / 'wav_ov1_split1_30db' / 'train_0_desc_30_100.wav').exists()

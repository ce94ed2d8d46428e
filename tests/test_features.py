"""Features, labels, scaler and bad inputs of cls_feature_class / batch_feature_extraction."""
from __future__ import annotations

import errno
import fcntl
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import batch_feature_extraction
import cls_feature_class as cfc
import formats
import parameter
import utils
from utils import SELDError

import tut_fixture

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def slow_stft(audio: np.ndarray, nfft: int, hop: int, nb_frames: int) -> np.ndarray:
    """The original scripts' per-frame loop, in complex128."""
    win = np.hanning(nfft)[:, None]
    out = np.zeros((nb_frames, nfft // 2, audio.shape[1]), dtype=complex)
    for i in range(nb_frames):
        frame = audio[i * hop:i * hop + nfft] * win
        out[i] = np.fft.fft(frame, n=nfft, axis=0, norm='ortho')[:nfft // 2]
    return out


def small_params(tmp_path, **kw) -> dict:
    over = dict(dataset_dir=str(tmp_path / 'ds'), feat_label_dir=str(tmp_path / 'feat'), clip_len_s=2.0,
                sequence_length=64, batch_size=4)
    over.update(kw)
    return parameter.get_params('1', over)


@pytest.mark.parametrize('nfft, channels', [(512, 4), (256, 8), (1024, 1)])
def test_stft_matches_per_frame_reference(nfft, channels):
    rng = np.random.default_rng(0)
    audio = rng.standard_normal((nfft * 7 + 123, channels)).astype(np.float32)
    hop = nfft // 2
    nb = cfc.nb_frames_for(audio.shape[0], nfft=nfft, hop_len=hop)
    assert nb == int(np.ceil((audio.shape[0] - nfft) / hop))
    fast = cfc.stft(audio, nfft=nfft, hop_len=hop)
    ref = slow_stft(audio.astype(np.float64), nfft, hop, nb)
    assert fast.shape == ref.shape == (nb, nfft // 2, channels)
    np.testing.assert_allclose(fast, ref, rtol=0, atol=2e-5 * np.abs(ref).max())


def test_thirty_second_clip_has_5166_frames():
    # ceil((30 * 44100 - 512) / 256) = ceil(5165.97) = 5166, as in the original scripts
    assert cfc.nb_frames_for(30 * 44100, nfft=512, hop_len=256) == 5166


def test_features_are_separate_magnitude_and_phase_maps():
    rng = np.random.default_rng(1)
    spec = (rng.standard_normal((5, 8, 4)) + 1j * rng.standard_normal((5, 8, 4))).astype(np.complex64)
    feat = cfc.spectrogram_features(spec)
    assert feat.shape == (5, 8, 8) and feat.dtype == np.float32
    # bin 3 of channel 2: magnitude in map 2, phase in map 4 + 2 (no folding of bins into channels)
    assert feat[1, 3, 2] == pytest.approx(abs(spec[1, 3, 2]), rel=1e-6)
    assert feat[1, 3, 6] == pytest.approx(np.angle(spec[1, 3, 2]), rel=1e-6)


def test_labels_hand_computed(tmp_path):
    csv = tmp_path / 'a.csv'
    csv.write_text(tut_fixture.HEADER + 'phone012.wav,0.1,0.2,0,90,2.0\nknock001.wav,0.15,0.3,30,180,1.5\n')
    desc = formats.read_desc_file(csv, classes=tut_fixture.CLASSES)
    fr = 44100 / 256  # 172.265625 frames per second
    label = cfc.desc_to_labels(desc, nb_classes=11, nb_frames=100, frame_rate=fr)
    C = 11
    # phone (class 3): floor(0.1 * fr) = 17 .. ceil(0.2 * fr) = ceil(34.45) = 35, inclusive
    active = np.flatnonzero(label[:, 3])
    assert active[0] == 17 and active[-1] == 35 and len(active) == 19
    # azimuth 90, elevation 0 -> (0, 1, 0)
    np.testing.assert_allclose(label[20, [C + 3, 2 * C + 3, 3 * C + 3]], [0, 1, 0], atol=1e-6)
    # knock (class 0): floor(25.84) = 25 .. ceil(51.68) = 52; az 180, el 30 -> (-cos30, 0, sin30)
    active = np.flatnonzero(label[:, 0])
    assert active[0] == 25 and active[-1] == 52
    np.testing.assert_allclose(label[40, [C, 2 * C, 3 * C]], [-np.sqrt(3) / 2, 0, 0.5], atol=1e-6)
    # inactive frames and classes: zero DOA target
    assert not label[0].any() and not label[60:].any()
    sed, doa = cfc.split_label(label, nb_classes=C, azi_only=True)
    np.testing.assert_allclose(doa[40, [0, C]], [-1, 0], atol=1e-6)  # azimuth-only: unit (x, y)


def test_real_dataset_class_names():
    assert formats.class_of_recording('100032-3-0-0.wav', naming='real') == '3'
    assert formats.class_of_recording('keysDrop017.wav', naming='tut') == 'keysDrop'
    assert formats.class_of_recording('cough66.wav', naming='tut') == ''  # not 3 digits


def test_streaming_scaler_equals_sklearn():
    from sklearn.preprocessing import StandardScaler
    rng = np.random.default_rng(2)
    files = [rng.standard_normal((n, 3, 2)) * 5 + 100 for n in (7, 30, 1, 12)]
    files[0][:, 0, 0] = 3.0  # a constant column in one file
    n, mean, m2 = cfc.merge_stats(cfc.feature_stats(f) for f in files)
    mean, scale = cfc.scaler_from_stats(n, mean, m2)
    ref = StandardScaler().fit(np.concatenate([f.reshape(len(f), -1) for f in files]))
    np.testing.assert_allclose(mean.ravel(), ref.mean_, rtol=1e-12)
    np.testing.assert_allclose(scale.ravel(), ref.scale_, rtol=1e-9)


def test_extraction_end_to_end_and_incremental(tmp_path):
    tut_fixture.make_dataset(str(tmp_path / 'ds'), nb_train=3, nb_test=2)
    p = small_params(tmp_path)
    fc = batch_feature_extraction.extract(p, progress=False)
    stems = fc.file_stems()
    assert len(stems) == 5
    # Independent reference: the per-frame STFT loop, magnitude/phase maps and sklearn's StandardScaler
    from sklearn.preprocessing import StandardScaler
    raw = {}
    for s in stems:
        audio, _ = sf.read(os.path.join(fc.aud_dir, s + '.wav'), dtype='float64', always_2d=True)
        spec = slow_stft(audio[:fc.clip_len_samples], fc.nfft, fc.hop_len, fc.nb_frames)
        raw[s] = np.concatenate([np.abs(spec), np.angle(spec)], axis=-1)
    sk = StandardScaler().fit(np.concatenate([raw[s].reshape(fc.nb_frames, -1) for s in stems if 'train' in s]))
    mean, scale = cfc.load_scaler(fc.scaler_file)
    for s in stems:
        feat = np.load(os.path.join(fc.feat_dir_norm, s + '.npy'))
        assert feat.shape == (fc.nb_frames, 256, 8) and feat.dtype == np.float32
        ref = sk.transform(raw[s].reshape(fc.nb_frames, -1)).reshape(feat.shape)
        np.testing.assert_allclose(feat[..., :4], ref[..., :4], rtol=0, atol=2e-3)  # magnitude maps
        # phase maps, where the phase is defined (not in near-silence), as angles: no +-pi wrap
        phase = (feat * scale + mean)[..., 4:]
        loud = raw[s][..., :4] > 1e-4 * raw[s][..., :4].max()
        err = np.angle(np.exp(1j * (phase - raw[s][..., 4:])))[loud]
        assert loud.mean() > 0.05 and np.abs(err).max() < 1e-3, (loud.mean(), np.abs(err).max())
    # the features are written once, standardized: no unnormalized copy, statistics of train files only
    assert not os.path.exists(fc.legacy_feat_dir)
    assert sorted(os.listdir(fc.stats_dir)) == [s + '.npz' for s in stems if s.startswith('train')]
    # normalized train features have zero mean and unit variance per bin and map
    train = np.concatenate([np.load(os.path.join(fc.feat_dir_norm, s + '.npy')) for s in stems if 'train' in s])
    np.testing.assert_allclose(train.mean(0), 0, atol=1e-4)
    std = train.std(0)
    assert np.all((np.abs(std - 1) < 1e-3) | (std < 1e-6))
    # the scaler is stored as plain arrays
    with np.load(fc.scaler_file, allow_pickle=False) as z:
        assert z['mean'].shape == (256, 8)
    # re-running skips every file and leaves them untouched
    mtimes = {s: os.path.getmtime(os.path.join(fc.feat_dir_norm, s + '.npy')) for s in stems}
    assert fc.analyze_all(progress=False)['analyzed'] == 0 and fc.write_features_all(progress=False) == 0
    batch_feature_extraction.extract(p, progress=False)
    assert mtimes == {s: os.path.getmtime(os.path.join(fc.feat_dir_norm, s + '.npy')) for s in stems}
    # parallel extraction gives the same bytes
    p2 = small_params(tmp_path, feat_label_dir=str(tmp_path / 'feat2'), n_jobs=2)
    fc2 = batch_feature_extraction.extract(p2, progress=False)
    for s in stems:
        assert np.array_equal(np.load(os.path.join(fc.feat_dir_norm, s + '.npy')),
                              np.load(os.path.join(fc2.feat_dir_norm, s + '.npy')))
    before = {s: np.load(os.path.join(fc.feat_dir_norm, s + '.npy')) for s in stems}
    # missing features (e.g. never written: the run was interrupted) are written
    os.remove(os.path.join(fc.feat_dir_norm, stems[1] + '.npy'))
    # a normalized file older than the scaler (made with another scaler) is extracted again
    for s in stems:  # sources well before everything
        for path in (os.path.join(fc.aud_dir, s + '.wav'), os.path.join(fc.desc_dir, s + '.csv')):
            os.utime(path, (os.path.getmtime(path) - 1000,) * 2)
    old = os.path.getmtime(fc.scaler_file) - 10
    os.utime(os.path.join(fc.feat_dir_norm, stems[2] + '.npy'), (old, old))
    # a wav newer than its features is extracted again
    os.utime(os.path.join(fc.aud_dir, stems[3] + '.wav'))  # now: after its label and features
    assert fc.analyze_all(progress=False)['analyzed'] == 1  # stems[3] (source changed)
    scaler_mtime = os.path.getmtime(fc.scaler_file)
    assert fc.fit_scaler()[0].shape == (256, 8) and os.path.getmtime(fc.scaler_file) == scaler_mtime  # same: kept
    assert fc.write_features_all(progress=False) == 3  # stems[1] (gone), stems[2] (old scaler), stems[3] (source)
    for s in stems:
        assert np.array_equal(np.load(os.path.join(fc.feat_dir_norm, s + '.npy')), before[s]), s
    fc.write_features_file(stems[0], *cfc.load_scaler(fc.scaler_file))  # one file, written without a shared writer
    assert np.array_equal(np.load(os.path.join(fc.feat_dir_norm, stems[0] + '.npy')), before[stems[0]])
    # a folder of an older version's unnormalized features is removed (its files are never read)
    os.makedirs(fc.legacy_feat_dir)
    open(os.path.join(fc.legacy_feat_dir, stems[0] + '.npy'), 'wb').close()
    assert fc.analyze_all(progress=False)['analyzed'] == 0 and not os.path.exists(fc.legacy_feat_dir)
    _no_leftovers(tmp_path / 'feat')


def test_one_pass_features_equal_two_step_features_and_statistics():
    rng = np.random.default_rng(3)
    audio = (rng.standard_normal((44100, 3)) * 0.1).astype(np.float32)
    audio[:, 2] = 0.25  # a constant channel: constant magnitude and phase maps
    two_step = cfc.spectrogram_features(cfc.stft(audio, nfft=512, hop_len=256))
    n_ref, mean_ref, m2_ref = cfc.feature_stats(two_step)
    mean32 = mean_ref.astype(np.float32)
    scale32 = (np.sqrt(m2_ref / n_ref) + 0.5).astype(np.float32)
    for block in (1, 7, 128, 1000):
        feat = cfc.extract_features(audio, nfft=512, hop_len=256, block_frames=block)
        assert np.array_equal(feat, two_step), block
        std = cfc.extract_features(audio, nfft=512, hop_len=256, block_frames=block, mean=mean_ref, scale=scale32)
        assert np.array_equal(std, (two_step - mean32) / scale32), block
        n, mean, m2 = cfc.audio_feature_stats(audio, nfft=512, hop_len=256, block_frames=block)
        assert n == n_ref == len(feat)
        np.testing.assert_allclose(mean, mean_ref, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(m2, m2_ref, rtol=1e-9, atol=1e-20)
    # the scaler treats the constant maps as sklearn does (scale 1)
    from sklearn.preprocessing import StandardScaler
    _, scale = cfc.scaler_from_stats(n, mean, m2)
    np.testing.assert_allclose(scale.ravel(), StandardScaler().fit(feat.reshape(len(feat), -1)).scale_, rtol=1e-9)
    out = np.empty_like(feat)
    assert cfc.extract_features(audio, nfft=512, hop_len=256, out=out) is out
    with pytest.raises(SELDError, match='out has shape'):
        cfc.extract_features(audio, nfft=512, hop_len=256, out=out[1:])
    with pytest.raises(SELDError, match='pass both'):
        cfc.extract_features(audio, nfft=512, hop_len=256, mean=mean_ref)


def test_pcm16_fast_read_equals_libsndfile(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.integers(-32768, 32768, size=(44100 * 2 - 5000, 4), dtype=np.int16)  # shorter: padded with zeros
    path = str(tmp_path / 'x.wav')
    sf.write(path, x, 44100, subtype='PCM_16')
    fc = cfc.FeatureClass(small_params(tmp_path))
    ref = np.zeros((fc.clip_len_samples, 4), np.float32)
    ref[:len(x)] = sf.read(path, dtype='float32')[0]
    assert np.array_equal(fc.load_audio(path, reuse_buffer=True), ref)
    sf.write(path, x.astype(np.float32) / 32768, 44100, subtype='FLOAT')  # other formats: libsndfile converts
    assert np.array_equal(fc.load_audio(path), ref)


@pytest.mark.parametrize('how', ['direct', 'buffered', 'no_o_direct', 'einval'])
def test_npy_file_buffer_saves_what_numpy_saves(tmp_path, monkeypatch, how):
    rng = np.random.default_rng(6)
    buf = utils.NpyFileBuffer((1001, 16, 6), np.float32)  # 384,384 bytes + header: not a multiple of 4096
    buf.array[...] = rng.standard_normal(buf.shape)
    np.save(tmp_path / 'ref.npy', buf.array)
    if how == 'no_o_direct':  # a system without O_DIRECT (macOS, Windows)
        monkeypatch.delattr(os, 'O_DIRECT', raising=False)
    elif how == 'einval':  # a filesystem that refuses O_DIRECT writes (the file is then written normally)
        if not hasattr(os, 'O_DIRECT'):
            pytest.skip('no O_DIRECT on this system')
        real_pwrite = os.pwrite

        def pwrite(fd, data, offset):
            if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
                raise OSError(errno.EINVAL, 'Invalid argument')
            return real_pwrite(fd, data, offset)
        monkeypatch.setattr(os, 'pwrite', pwrite)
    buf.save(tmp_path / 'x.npy', direct=how != 'buffered')
    assert (tmp_path / 'x.npy').read_bytes() == (tmp_path / 'ref.npy').read_bytes()
    _no_leftovers(tmp_path)


def _no_leftovers(folder) -> None:
    for dirpath, _, files in os.walk(folder):
        assert not [f for f in files if '.tmp' in f], dirpath


@pytest.mark.parametrize('case, expect', [
    ('unknown_class', r"has class 'dog', which is not one of"),
    ('malformed_row', r':3: 4 fields'),
    ('end_before_start', r'end_time=0.5 must be after start_time=1.0'),
    ('not_a_number', r'must be numbers'),
    ('bad_header', r':1: header'),
    ('wrong_channels', r'2 channel\(s\), dataset .ansim. needs 4'),
    ('wrong_rate', r'sample rate 48000 Hz, expected fs=44100'),
    ('corrupt_wav', r'cannot read audio'),
])
def test_bad_inputs_name_file_and_rule(tmp_path, case, expect):
    root = tut_fixture.make_dataset(str(tmp_path / 'ds'), nb_train=2, nb_test=1)
    desc = os.path.join(root, 'desc_ov1_split1', 'train_1_desc_30_100.csv')
    wav = os.path.join(root, 'wav_ov1_split1_30db', 'train_1_desc_30_100.wav')
    if case == 'unknown_class':
        with open(desc, 'a') as f:
            f.write('dog001.wav,0.5,1.0,0,10,2.0\n')
    elif case == 'malformed_row':
        lines = open(desc).read().splitlines()
        lines[2] = 'knock001.wav,0.5,1.0,0'
        open(desc, 'w').write('\n'.join(lines) + '\n')
    elif case == 'end_before_start':
        with open(desc, 'a') as f:
            f.write('knock003.wav,1.0,0.5,0,10,2.0\n')
    elif case == 'not_a_number':
        with open(desc, 'a') as f:
            f.write('knock003.wav,abc,0.5,0,10,2.0\n')
    elif case == 'bad_header':
        lines = open(desc).read().splitlines()
        open(desc, 'w').write('\n'.join(['name,start,end'] + lines[1:]) + '\n')
    elif case == 'wrong_channels':
        sf.write(wav, np.zeros((44100, 2)), 44100, subtype='PCM_16')
    elif case == 'wrong_rate':
        sf.write(wav, np.zeros((48000, 4)), 48000, subtype='PCM_16')
    elif case == 'corrupt_wav':
        with open(wav, 'wb') as f:
            f.write(b'RIFF\x00\x00\x00\x00WAVEjunk' + bytes(100))
    p = small_params(tmp_path)
    with pytest.raises(SELDError, match=expect) as err:
        batch_feature_extraction.extract(p, progress=False)
    assert 'train_1_desc_30_100' in str(err.value)
    fc = cfc.FeatureClass(p)
    assert not os.path.exists(os.path.join(fc.feat_dir_norm, 'train_1_desc_30_100.npy'))
    _no_leftovers(tmp_path / 'feat')


def test_missing_dataset_and_split_errors(tmp_path):
    p = small_params(tmp_path, dataset_dir=str(tmp_path / 'nowhere'))
    with pytest.raises(SELDError, match='synthesize_dataset.py') as err:
        batch_feature_extraction.extract(p, progress=False)
    assert 'nowhere' in str(err.value)
    root = tut_fixture.make_dataset(str(tmp_path / 'ds'), nb_train=2, nb_test=0)
    with pytest.raises(SELDError, match='has no test files'):
        batch_feature_extraction.extract(small_params(tmp_path), progress=False)
    with pytest.raises(SELDError, match='wav_ov2_split1_30db: folder missing'):
        batch_feature_extraction.extract(small_params(tmp_path, overlap=2), progress=False)
    os.remove(os.path.join(root, 'wav_ov1_split1_30db', 'train_0_desc_30_100.wav'))
    with pytest.raises(SELDError, match='no wav for'):
        batch_feature_extraction.extract(small_params(tmp_path), progress=False)


def test_dataset_info_classes_and_rate_mismatch(tmp_path):
    import json
    root = tut_fixture.make_dataset(str(tmp_path / 'ds'), nb_train=1, nb_test=1)
    info = dict(classes=['knock', 'drawer', 'clearthroat', 'phone'], nb_channels=4, fs=44100)
    (tmp_path / 'ds' / 'dataset_info.json').write_text(json.dumps(info))
    fc = cfc.FeatureClass(small_params(tmp_path))
    assert fc.classes == info['classes'] and fc.nb_classes == 4
    info['fs'] = 48000
    (tmp_path / 'ds' / 'dataset_info.json').write_text(json.dumps(info))
    with pytest.raises(SELDError, match='fs=48000'):
        cfc.FeatureClass(small_params(tmp_path))
    assert root


def test_cli_errors_exit_non_zero(tmp_path):
    for args, expect in ((['42'], 'unknown task-id'), (['1', 'bogus=1'], 'unknown parameter'),
                         (['1', f'dataset_dir={tmp_path / "none"}'], 'No dataset at')):
        r = subprocess.run([sys.executable, 'batch_feature_extraction.py', *args], cwd=ROOT,
                           capture_output=True, text=True)
        assert r.returncode == 2, r.stderr
        assert expect in r.stderr


def test_descriptions_of_another_snr_in_the_shared_desc_folder_are_ignored(tmp_path):
    root = tut_fixture.make_dataset(str(tmp_path / 'ds'), nb_train=2, nb_test=1, db=30)
    tut_fixture.make_dataset(str(tmp_path / 'ds'), nb_train=2, nb_test=1, db=20)  # same desc folder
    fc = cfc.FeatureClass(small_params(tmp_path, db=20))
    assert fc.file_stems() == ['test_0_desc_20_100', 'train_0_desc_20_100', 'train_1_desc_20_100']
    os.remove(os.path.join(root, 'wav_ov1_split1_20db', 'train_1_desc_20_100.wav'))
    with pytest.raises(SELDError, match='no wav for'):
        fc.file_stems()


def _record_thread(stem: str, *, folder: str, state: dict) -> None:
    import threading
    import time
    if stem == 'bad':
        raise SELDError(f'{stem}: refused')
    with state['lock']:
        state['running'] += 1
        state['peak'] = max(state['peak'], state['running'])
    time.sleep(0.05)
    buf = cfc._scratch('t', (3,))
    with open(os.path.join(folder, stem), 'x') as f:  # 'x': a file processed twice fails
        f.write(f'{threading.get_ident()} {id(buf)}')
    with state['lock']:
        state['running'] -= 1


def test_parallel_map_runs_every_file_once_in_n_threads_with_their_own_buffers(tmp_path):
    import functools
    import threading
    stems = [f's{i:02d}' for i in range(40)]
    state = dict(lock=threading.Lock(), running=0, peak=0)
    cfc._map_files(functools.partial(_record_thread, folder=str(tmp_path), state=state), stems, n_jobs=2, desc='t',
                   progress=False)
    assert sorted(os.listdir(tmp_path)) == stems
    assert state['peak'] == 2  # two files at a time, never more
    owner = {}
    for s in stems:  # every thread reuses its own buffer, and no other thread has it
        thread, buf = (tmp_path / s).read_text().split()
        assert owner.setdefault(buf, thread) == thread
    assert len(set(owner.values())) == len(owner) == 2
    with pytest.raises(SELDError, match='bad: refused'):  # an error in any thread reaches the caller
        cfc._map_files(functools.partial(_record_thread, folder=str(tmp_path / 'x'), state=state), ['bad'] * 6,
                       n_jobs=2, desc='t', progress=False)


def test_npy_writer_saves_in_background_reuses_buffers_and_reports_errors(tmp_path):
    shape = (300, 5, 2)
    with utils.NpyWriter(shape, nb_buffers=2) as writer:
        for i in range(5):
            with writer.filling(tmp_path / f'{i}.npy') as out:
                out[...] = i
        with pytest.raises(RuntimeError, match='computing failed'):  # the buffer goes back to the pool
            with writer.filling(tmp_path / 'never.npy') as out:
                raise RuntimeError('computing failed')
        for i in range(5, 8):  # would wait forever if the failed fill had kept its buffer
            with writer.filling(tmp_path / f'{i}.npy') as out:
                out[...] = i
    for i in range(8):
        x = np.load(tmp_path / f'{i}.npy')
        assert x.shape == shape and x.dtype == np.float32 and np.all(x == i)
    assert not (tmp_path / 'never.npy').exists()
    (tmp_path / 'blocker').write_text('a file where a folder should be')
    with pytest.raises(OSError) as err:
        with utils.NpyWriter(shape, nb_buffers=2) as writer:
            with writer.filling(tmp_path / 'blocker' / 'x.npy') as out:
                out[...] = 0
    assert 'while writing' in ''.join(getattr(err.value, '__notes__', [])) and 'blocker' in str(err.value.__notes__)
    _no_leftovers(tmp_path)


def test_parallel_map_on_ctrl_c_waits_for_files_in_progress_and_skips_the_rest(tmp_path):
    import threading
    import time
    done = []

    def work(stem: str) -> None:
        if stem == 's03':
            raise KeyboardInterrupt
        time.sleep(0.05)
        done.append(stem)

    before = set(threading.enumerate())
    with pytest.raises(KeyboardInterrupt):
        cfc._map_files(work, [f's{i:02d}' for i in range(40)], n_jobs=2, desc='t', progress=False)
    finished = len(done)
    # no worker thread is left running (native code still running in a thread aborts the interpreter at exit)
    assert not [t for t in threading.enumerate() if t not in before and t.is_alive() and t.name != 'tqdm_monitor']
    time.sleep(0.2)
    assert len(done) == finished and 1 <= finished < 10  # files in progress finished, the rest never started

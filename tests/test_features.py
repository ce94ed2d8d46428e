"""Features, labels, scaler, the audio reader and bad inputs of cls_feature_class / batch_feature_extraction."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile as sf

import batch_feature_extraction
import cls_feature_class as cfc
import formats
import label_frames
import parameter
from utils import SELDError

import commands
import tut_fixture



def slow_stft(audio: np.ndarray, nfft: int, hop: int, nb_frames: int) -> np.ndarray:
    """The original scripts' per-frame loop, in complex128."""
    win = np.hanning(nfft)[:, None]
    out = np.zeros((nb_frames, nfft // 2, audio.shape[1]), dtype=complex)
    for i in range(nb_frames):
        frame = audio[i * hop:i * hop + nfft] * win
        out[i] = np.fft.fft(frame, n=nfft, axis=0, norm='ortho')[:nfft // 2]
    return out


def small_params(tmp_path, **kw) -> dict:
    over = dict(dataset_dir=str(tmp_path / 'ds'), feat_label_dir=str(tmp_path / 'feat'), sequence_length=64,
                batch_size=4)
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


@pytest.mark.parametrize('fs', [24000, 48000])
def test_framing_by_time_matches_librosa(fs):
    import librosa
    framing = cfc.framing_for(fs=fs, nfft=None, hop_len_s=0.02)
    hop = fs // 50
    assert (framing.hop_len, framing.win_len, framing.nfft) == (hop, 2 * hop, 1024 if fs == 24000 else 2048)
    assert framing.frame_rate == 50.0
    rng = np.random.default_rng(1)
    audio = rng.standard_normal((fs // 2 + 77, 2)).astype(np.float32)
    n = framing.nb_frames(audio.shape[0])
    assert n == int(np.ceil(audio.shape[0] / hop))
    ours = cfc.stft(audio, nfft=framing.nfft, framing=framing)
    for c in range(2):  # librosa: centred frames, zero padding, periodic Hann of win_length centred in n_fft
        ref = librosa.stft(audio[:, c].astype(np.float64), n_fft=framing.nfft, hop_length=hop,
                           win_length=2 * hop, window='hann', center=True, pad_mode='constant')
        ref = ref[:framing.nfft // 2, :n].T / np.sqrt(framing.nfft)  # norm='ortho', Nyquist bin dropped
        np.testing.assert_allclose(ours[..., c], ref, rtol=0, atol=2e-5 * np.abs(ref).max())
    # a block of frames of the whole recording equals the same frames of the whole STFT (inference in blocks)
    whole = cfc.extract_features(audio, framing=framing)
    part = cfc.extract_features(audio, framing=framing, first_frame=7, nb_frames=9)
    np.testing.assert_array_equal(part, whole[7:16])
    with pytest.raises(SELDError, match='hop_len_s=0.0201 is 482.4 samples at fs=24000 Hz'):
        cfc.framing_for(fs=24000, nfft=None, hop_len_s=0.0201)
    with pytest.raises(SELDError, match='nfft=512 must be at least the window of 2 \\* hop = 960'):
        cfc.framing_for(fs=24000, nfft=512, hop_len_s=0.02)


def test_thirty_second_clip_has_5166_frames():
    # ceil((30 * 44100 - 512) / 256) = ceil(5165.97) = 5166, as in the original scripts
    assert cfc.nb_frames_for(30 * 44100, nfft=512, hop_len=256) == 5166
    assert cfc.framing_for(fs=44100, nfft=512, hop_len_s=None).nb_frames(30 * 44100) == 5166


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
    label = label_frames.desc_to_labels(desc, nb_classes=11, nb_frames=100, frame_rate=fr)
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
    sed, doa = label_frames.split_label(label, nb_classes=C, azi_only=True)
    np.testing.assert_allclose(doa[40, [0, C]], [-1, 0], atol=1e-6)  # azimuth-only: unit (x, y)
    # the framing rule's tolerance: 0.3 s at 10 frames/s is frame 3 (0.3 * 10 = 3.0000000000000004)
    first, last = label_frames.event_frames(np.array([0.3]), np.array([0.7]), frame_rate=10.0)
    assert (first[0], last[0]) == (3, 7)


def test_labels_from_frame_metadata_hand_computed(tmp_path):
    # 100 ms label frames, model at 50 frames/s (20 ms hops): model frame j takes label frame j // 5.
    meta = tmp_path / 'fold1_room1_mix001.csv'
    meta.write_text('\n'.join([
        '0,2,0,0,0',        # class 2 (track 0), frames 0-1: moving 0 -> 90 degrees azimuth
        '1,2,0,90,0',
        '1,5,1,180,0',      # class 5 (track 1) overlaps at frame 1
        '2,5,1,-90,45',
        '2,5,2,0,-90',      # a second instance of class 5 in frame 2: the row listed last wins
        '3,2,0,45,0',       # the last label frame of a 0.4 s recording
    ]) + '\n')
    inst = formats.read_instances(meta, fmt='dcase2020', nb_classes=6, nb_frames=4, max_track=9)
    assert inst.frame.tolist() == [0, 1, 1, 2, 2, 3] and inst.track.tolist() == [0, 0, 1, 1, 2, 0]
    label = label_frames.instances_to_labels(inst, nb_classes=6, nb_frames=20, frame_rate=50.0, label_rate=10.0)
    C = 6
    sed, vec = label[:, :C], label_frames.doa_vectors(label[:, C:], nb_classes=C)
    np.testing.assert_array_equal(np.flatnonzero(sed[:, 2]), list(range(0, 10)) + list(range(15, 20)))
    np.testing.assert_array_equal(np.flatnonzero(sed[:, 5]), range(5, 15))
    np.testing.assert_allclose(vec[0:5, 2], [[1, 0, 0]] * 5, atol=1e-7)        # frame 0: azimuth 0
    np.testing.assert_allclose(vec[5:10, 2], [[0, 1, 0]] * 5, atol=1e-7)       # frame 1: moved to 90
    np.testing.assert_allclose(vec[5:10, 5], [[-1, 0, 0]] * 5, atol=1e-7)      # track 1 at 180
    np.testing.assert_allclose(vec[10:15, 5], [[0, 0, -1]] * 5, atol=1e-7)     # the later row (0, -90) wins
    np.testing.assert_allclose(vec[15:20, 2], [[np.sqrt(.5), np.sqrt(.5), 0]] * 5, atol=1e-7)
    assert not vec[10:15, 2].any()  # inactive: zero target
    # a recording shorter than the metadata: rows beyond it are an error, named with file and line
    with pytest.raises(SELDError, match=r'fold1_room1_mix001.csv:6: frame=3 is beyond the recording \(3 frames\)'):
        formats.read_instances(meta, fmt='dcase2020', nb_classes=6, nb_frames=3)
    with pytest.raises(SELDError, match=r':5: track=2 is out of range \(at most 1\)'):
        formats.read_instances(meta, fmt='dcase2020', nb_classes=6, max_track=1)
    with pytest.raises(SELDError, match=r':3: class=5 is not a class index in \[0, 4\)'):
        formats.read_instances(meta, fmt='dcase2020', nb_classes=4)


def test_real_dataset_class_names():
    assert formats.class_of_recording('100032-3-0-0.wav', naming='real') == '3'
    assert formats.class_of_recording('keysDrop017.wav', naming='tut') == 'keysDrop'
    assert formats.class_of_recording('cough66.wav', naming='tut') == ''  # not 3 digits
    assert formats.class_of_recording('cough', naming='plain') == 'cough'  # DCASE 2019 metadata


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
    p = small_params(tmp_path, val_fraction=0.34)
    fc = batch_feature_extraction.extract(p, progress=False)
    recs = fc.recordings()
    stems = [r.stem for r in recs]
    parts = {r.stem: r.part for r in recs}
    assert len(stems) == 5 and sorted(parts.values()) == ['test', 'test', 'train', 'train', 'val']
    nb = cfc.nb_frames_for(2 * 44100, nfft=512, hop_len=256)
    # Independent reference: the per-frame STFT loop, magnitude/phase maps and sklearn's StandardScaler fitted on
    # the train part only (not the held-out validation file, not the test files)
    from sklearn.preprocessing import StandardScaler
    raw = {}
    for r in recs:
        audio, _ = sf.read(r.wav, dtype='float64', always_2d=True)
        spec = slow_stft(audio, 512, 256, nb)
        raw[r.stem] = np.concatenate([np.abs(spec), np.angle(spec)], axis=-1)
    sk = StandardScaler().fit(np.concatenate([raw[s].reshape(nb, -1) for s in stems if parts[s] == 'train']))
    mean, scale = cfc.load_scaler(fc.scaler_file)
    for s in stems:
        feat = np.load(fc.paths(s)['feat'])
        assert feat.shape == (nb, 256, 8) and feat.dtype == np.float32
        ref = sk.transform(raw[s].reshape(nb, -1)).reshape(feat.shape)
        np.testing.assert_allclose(feat[..., :4], ref[..., :4], rtol=0, atol=2e-3)  # magnitude maps
        # phase maps, where the phase is defined (not in near-silence), as angles: no +-pi wrap
        phase = (feat * scale + mean)[..., 4:]
        loud = raw[s][..., :4] > 1e-4 * raw[s][..., :4].max()
        err = np.angle(np.exp(1j * (phase - raw[s][..., 4:])))[loud]
        assert loud.mean() > 0.05 and np.abs(err).max() < 1e-3, (loud.mean(), np.abs(err).max())
        info = fc.file_info(s)
        assert info['part'] == parts[s] and info['nb_frames'] == nb and info['duration_s'] == 2.0
    # statistics of train files only
    assert sorted(os.listdir(fc.stats_dir)) == sorted(s + '.npz' for s in stems if parts[s] == 'train')
    with np.load(fc.scaler_file, allow_pickle=False) as z:  # plain arrays
        assert z['mean'].shape == (256, 8)
    # re-running skips every file and leaves them untouched
    mtimes = {s: os.path.getmtime(fc.paths(s)['feat']) for s in stems}
    assert batch_feature_extraction.analyze_all(fc, recs, n_jobs=1, progress=False) == 0
    assert batch_feature_extraction.write_features_all(fc, recs, n_jobs=1, progress=False) == 0
    batch_feature_extraction.extract(p, progress=False)
    assert mtimes == {s: os.path.getmtime(fc.paths(s)['feat']) for s in stems}
    # parallel extraction gives the same bytes
    fc2 = batch_feature_extraction.extract(small_params(tmp_path, val_fraction=0.34, n_jobs=2,
                                                        feat_label_dir=str(tmp_path / 'feat2')), progress=False)
    for s in stems:
        assert np.array_equal(np.load(fc.paths(s)['feat']), np.load(fc2.paths(s)['feat']))
    before = {s: np.load(fc.paths(s)['feat']) for s in stems}
    # missing features (e.g. never written: the run was interrupted) are written
    os.remove(fc.paths(stems[1])['feat'])
    for r in recs:  # sources well before everything
        for path in (r.wav, r.meta):
            os.utime(path, (os.path.getmtime(path) - 1000,) * 2)
    # a normalized file older than the scaler (made with another scaler) is extracted again
    old = os.path.getmtime(fc.scaler_file) - 10
    os.utime(fc.paths(stems[2])['feat'], (old, old))
    # a wav newer than its features is analyzed and extracted again
    os.utime(recs[3].wav)
    assert batch_feature_extraction.analyze_all(fc, recs, n_jobs=1, progress=False) == 1
    scaler_mtime = os.path.getmtime(fc.scaler_file)
    assert fc.fit_scaler()[0].shape == (256, 8) and os.path.getmtime(fc.scaler_file) == scaler_mtime  # same: kept
    assert batch_feature_extraction.write_features_all(fc, recs, n_jobs=1, progress=False) == 3
    for s in stems:
        assert np.array_equal(np.load(fc.paths(s)['feat']), before[s]), s
    # another validation share changes the train part: the scaler and every feature file are redone
    fc3 = batch_feature_extraction.extract(small_params(tmp_path, val_fraction=0.0), progress=False)
    assert sorted(r.part for r in fc3.recordings()) == ['test', 'test', 'train', 'train', 'train']
    assert not np.array_equal(cfc.load_scaler(fc3.scaler_file)[0], mean)
    _no_leftovers(tmp_path / 'feat')


@pytest.mark.parametrize('framing', [cfc.Framing(0, 512, 256, 512, False), cfc.Framing(24000, 1024, 480, 960, True)])
def test_one_pass_features_equal_two_step_features_and_statistics(framing):
    rng = np.random.default_rng(3)
    audio = (rng.standard_normal((44100, 3)) * 0.1).astype(np.float32)
    audio[:, 2] = 0.25  # a constant channel: constant magnitude and phase maps (TUT framing: no padding)
    two_step = cfc.spectrogram_features(cfc.stft(audio, nfft=framing.nfft, framing=framing))
    n_ref, mean_ref, m2_ref = cfc.feature_stats(two_step)
    mean32 = mean_ref.astype(np.float32)
    scale32 = (np.sqrt(m2_ref / n_ref) + 0.5).astype(np.float32)
    for block in (1, 7, 128, 1000):
        feat = cfc.extract_features(audio, framing=framing, block_frames=block)
        assert np.array_equal(feat, two_step), block
        std = cfc.extract_features(audio, framing=framing, block_frames=block, mean=mean_ref, scale=scale32)
        assert np.array_equal(std, (two_step - mean32) / scale32), block
        n, mean, m2 = cfc.audio_feature_stats(audio, framing=framing, block_frames=block)
        assert n == n_ref == len(feat)
        np.testing.assert_allclose(mean, mean_ref, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(m2, m2_ref, rtol=1e-9, atol=1e-20)
    if not framing.centered:  # the scaler treats the constant maps as sklearn does (scale 1)
        from sklearn.preprocessing import StandardScaler
        _, scale = cfc.scaler_from_stats(n, mean, m2)
        np.testing.assert_allclose(scale.ravel(), StandardScaler().fit(feat.reshape(len(feat), -1)).scale_,
                                   rtol=1e-9)
    with pytest.raises(SELDError, match='pass both'):
        cfc.extract_features(audio, framing=framing, mean=mean_ref)


def test_the_audio_reader_refuses_nan_wrong_channels_and_reads_named_channels(tmp_path):
    rng = np.random.default_rng(5)
    x = (0.1 * rng.standard_normal((4410, 8))).astype(np.float32)
    path = str(tmp_path / 'x.wav')
    sf.write(path, x, 44100, subtype='FLOAT')
    with pytest.raises(SELDError, match=r'x.wav: 8 channel\(s\), expected 4; name the ones to use with channels='):
        cfc.read_audio(path, nb_channels=4)
    audio, fs, notes = cfc.read_audio(path, nb_channels=4, channels=[7, 0, 1, 2])
    np.testing.assert_array_equal(audio, x[:, [7, 0, 1, 2]])
    assert fs == 44100 and 'using channels [7, 0, 1, 2] of 8' in notes[0]
    with pytest.raises(SELDError, match=r'channels=\[0, 8\] must name 2 of its 8 channels'):
        cfc.read_audio(path, nb_channels=2, channels=[0, 8])
    with pytest.raises(SELDError, match='sample rate 44100 Hz, but the dataset is at 48000 Hz'):
        cfc.read_audio(path, nb_channels=8, file_fs=48000)
    x[100, 3], x[200, 5] = np.nan, np.inf
    sf.write(path, x, 44100, subtype='FLOAT')
    with pytest.raises(SELDError, match=r'x.wav: 2 NaN or infinite sample\(s\) \(first at sample 100\)'):
        cfc.read_audio(path, nb_channels=8)
    # resampling (librosa): a 1 kHz tone keeps its frequency
    tone = np.sin(2 * np.pi * 1000 * np.arange(44100) / 44100)[:, None].astype(np.float32)
    sf.write(path, tone, 44100, subtype='FLOAT')
    audio, _, notes = cfc.read_audio(path, nb_channels=1, fs=24000)
    assert audio.shape == (24000, 1) and 'resampled from 44100 Hz to 24000 Hz' in notes[0]
    assert np.argmax(np.abs(np.fft.rfft(audio[:, 0]))) == 1000  # 1 Hz bins over 1 s


def _no_leftovers(folder) -> None:
    for dirpath, _, files in os.walk(folder):
        assert not [f for f in files if '.tmp' in f], dirpath


@pytest.mark.parametrize('case, expect', [
    ('unknown_class', r"has class 'dog', which is not one of"),
    ('malformed_row', r':3: 4 fields'),
    ('end_before_start', r'end_time=0.5 must be after start_time=1.0'),
    ('start_beyond_audio', r'start_time=2.5 is beyond the recording length 2.0 s'),
    ('not_a_number', r'must be numbers'),
    ('bad_header', r':1: header'),
    ('wrong_channels', r'2 channel\(s\), expected 4'),
    ('wrong_rate', r'sample rate 48000 Hz, but the dataset is at 44100 Hz'),
    ('corrupt_wav', r'cannot read audio'),
    ('nan_samples', r'1000 NaN or infinite sample\(s\)'),
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
    elif case == 'start_beyond_audio':
        with open(desc, 'a') as f:
            f.write('knock003.wav,2.5,2.7,0,10,2.0\n')
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
    elif case == 'nan_samples':
        audio = sf.read(wav, dtype='float32')[0]
        audio[5000:5250] = np.nan
        sf.write(wav, audio, 44100, subtype='FLOAT')
    p = small_params(tmp_path, val_fraction=0.0)
    with pytest.raises(SELDError, match=expect) as err:
        batch_feature_extraction.extract(p, progress=False)
    assert 'train_1_desc_30_100' in str(err.value)
    fc = cfc.FeatureClass(p)
    # refused before any statistics are merged: no scaler, no features of any file
    assert not os.path.exists(fc.scaler_file)
    assert not os.path.isdir(fc.feat_dir_norm) or not os.listdir(fc.feat_dir_norm)
    _no_leftovers(tmp_path / 'feat')


def test_missing_dataset_and_split_errors(tmp_path):
    p = small_params(tmp_path, dataset_dir=str(tmp_path / 'nowhere'))
    with pytest.raises(SELDError, match='synthesize_dataset.py') as err:
        batch_feature_extraction.extract(p, progress=False)
    assert 'nowhere' in str(err.value)
    root = tut_fixture.make_dataset(str(tmp_path / 'ds'), nb_train=2, nb_test=0)
    with pytest.raises(SELDError, match='no test recordings'):
        batch_feature_extraction.extract(small_params(tmp_path), progress=False)
    with pytest.raises(SELDError, match=r'wav_ov2_split1_30db: folder missing; dataset=ansim expects '
                                        r'wav_ov2_split1_30db/ and desc_ov2_split1/'):
        batch_feature_extraction.extract(small_params(tmp_path, overlap=2), progress=False)
    os.remove(os.path.join(root, 'wav_ov1_split1_30db', 'train_0_desc_30_100.wav'))
    with pytest.raises(SELDError, match='no wav for'):
        batch_feature_extraction.extract(small_params(tmp_path), progress=False)


def test_dataset_info_classes_and_rate(tmp_path):
    tut_fixture.make_dataset(str(tmp_path / 'ds'), nb_train=2, nb_test=1)
    info = dict(classes=['knock', 'drawer', 'clearthroat', 'phone'], nb_channels=4, fs=44100)
    (tmp_path / 'ds' / 'dataset_info.json').write_text(json.dumps(info))
    fc = cfc.FeatureClass(small_params(tmp_path))
    assert fc.classes == info['classes'] and fc.nb_classes == 4 and fc.fs == 44100
    info['fs'] = 48000  # the data says 48 kHz but the files are at 44.1 kHz
    (tmp_path / 'ds' / 'dataset_info.json').write_text(json.dumps(info))
    with pytest.raises(SELDError, match='sample rate 44100 Hz, but the dataset is at 48000 Hz'):
        batch_feature_extraction.extract(small_params(tmp_path), progress=False)


def test_resampling_on_request(tmp_path):
    tut_fixture.make_dataset(str(tmp_path / 'ds'), nb_train=2, nb_test=1)
    fc = batch_feature_extraction.extract(small_params(tmp_path, fs=24000), progress=False)
    assert fc.fs == 24000 and fc.frame_rate == 24000 / 256 and fc.feat_label_dir.endswith('_fs24000')
    stem = fc.recordings()[0].stem
    assert np.load(fc.paths(stem)['feat']).shape[0] == cfc.nb_frames_for(48000, nfft=512, hop_len=256)


def test_cli_errors_exit_non_zero(tmp_path):
    # the first from the shell (the command's exit-status contract), the others in this process
    for k, (args, expect) in enumerate(((['42'], 'unknown task-id'), (['1', 'bogus=1'], 'unknown parameter'),
                                        (['1', f'dataset_dir={tmp_path / "none"}'], 'No dataset at'))):
        if k == 0:
            r = commands.as_subprocess('batch_feature_extraction.py', *args)
        else:
            r = commands.in_process(batch_feature_extraction.main, *args)
        assert r.returncode == 2, r.stderr
        assert expect in r.stderr and 'Traceback' not in r.stderr


def test_descriptions_of_another_snr_in_the_shared_desc_folder_are_ignored(tmp_path):
    root = tut_fixture.make_dataset(str(tmp_path / 'ds'), nb_train=2, nb_test=1, db=30)
    tut_fixture.make_dataset(str(tmp_path / 'ds'), nb_train=2, nb_test=1, db=20)  # same desc folder
    fc = cfc.FeatureClass(small_params(tmp_path, db=20))
    assert [r.stem for r in fc.recordings()] == ['test_0_desc_20_100', 'train_0_desc_20_100', 'train_1_desc_20_100']
    os.remove(os.path.join(root, 'wav_ov1_split1_20db', 'train_1_desc_20_100.wav'))
    with pytest.raises(SELDError, match='no wav for'):
        fc.recordings()


def _record_thread(stem: str, *, folder: str, state: dict) -> None:
    import time
    if stem == 'bad':
        raise SELDError(f'{stem}: refused')
    with state['lock']:
        state['running'] += 1
        state['peak'] = max(state['peak'], state['running'])
    time.sleep(0.05)
    with open(os.path.join(folder, stem), 'x') as f:  # 'x': a file processed twice fails
        f.write('done')
    with state['lock']:
        state['running'] -= 1


def test_parallel_map_runs_every_file_once_in_n_threads(tmp_path):
    import functools
    import threading
    stems = [f's{i:02d}' for i in range(40)]
    state = dict(lock=threading.Lock(), running=0, peak=0)
    batch_feature_extraction.map_files(functools.partial(_record_thread, folder=str(tmp_path), state=state), stems,
                                       n_jobs=2, desc='t', progress=False)
    assert sorted(os.listdir(tmp_path)) == stems
    assert state['peak'] == 2  # two files at a time, never more
    with pytest.raises(SELDError, match='bad: refused'):  # an error in any thread reaches the caller
        batch_feature_extraction.map_files(functools.partial(_record_thread, folder=str(tmp_path / 'x'),
                                                             state=state), ['bad'] * 6, n_jobs=2, desc='t',
                                           progress=False)


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
        batch_feature_extraction.map_files(work, [f's{i:02d}' for i in range(40)], n_jobs=2, desc='t',
                                           progress=False)
    finished = len(done)
    # no worker thread is left running (native code still running in a thread aborts the interpreter at exit)
    assert not [t for t in threading.enumerate() if t not in before and t.is_alive() and t.name != 'tqdm_monitor']
    time.sleep(0.2)
    assert len(done) == finished and 1 <= finished < 10  # files in progress finished, the rest never started

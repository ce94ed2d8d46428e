"""Benchmark: feature extraction end to end (wav on disk -> normalized float32 features and labels on disk).

Measures, in the same run and on the same synthetic dataset (made in a temporary folder):

* the project's pipeline: ``FeatureClass.analyze_all`` (labels, train statistics) + ``fit_scaler`` +
  ``write_features_all`` (standardized features, written once), with n_jobs=1 and n_jobs=2 threads, and with
  n_jobs=2 and ``direct_io=False`` (each from an empty feature folder);
* the ORIGINAL algorithm of sharathadavanne/seld-net ``cls_feature_class.py``, re-implemented here:
  scipy wav read to float64, a per-frame Python loop of ``np.fft.fft`` into a complex128 spectrogram saved
  with ``np.save``; then reload, ``np.concatenate((np.abs(x), np.angle(x)), axis=1)`` in float64,
  sklearn ``StandardScaler.partial_fit`` on the train files, ``transform`` of every file and ``np.save``
  of the float64 result; labels from the description files.

Real-time factor (RTF) = seconds of audio / seconds of wall time. ``--profile`` adds a per-stage
breakdown of the project's per-file work (single process).

The features are 4.2x the size of the 16-bit wavs (float32, 2 maps per channel: 42 MB per 30 s clip), so the
speed at which the disk absorbs new files bounds any pipeline that writes them. The benchmark measures that
floor in the same run (writing the same number of feature-sized ``.npy`` files, nothing else; through the
page cache with ``np.save``, and with ``O_DIRECT`` as the pipeline does) and prints the RTF it allows.
``--feat-dir /dev/shm`` puts the features on a RAM disk. Every timed part starts after ``os.sync()``, so no
part pays for the write-back of the one before.

    python benchmarks/bench_features.py [--clips 32] [--seconds 30] [--quick] [--profile] [--tmp DIR]
                                        [--feat-dir DIR]
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'tests')]

import cls_feature_class as cfc  # noqa: E402
import formats  # noqa: E402
import parameter  # noqa: E402
import tut_fixture  # noqa: E402


# --------------------------------------------------------------------------------------------------
# The original algorithm (sharathadavanne/seld-net, cls_feature_class.py), kept as close as possible.
# --------------------------------------------------------------------------------------------------
class OriginalFeatureClass:
    def __init__(self, aud_dir: str, desc_dir: str, out_dir: str, *, fs: int = 44100, nfft: int = 512,
                 clip_len_s: float = 30.0, nb_channels: int = 4, classes: list[str] = tut_fixture.CLASSES):
        self._aud_dir, self._desc_dir = aud_dir, desc_dir
        self._feat_dir = os.path.join(out_dir, 'spec')
        self._feat_dir_norm = os.path.join(out_dir, 'spec_norm')
        self._label_dir = os.path.join(out_dir, 'label')
        for d in (self._feat_dir, self._feat_dir_norm, self._label_dir):
            os.makedirs(d, exist_ok=True)
        self._fs, self._nfft, self._win_len, self._hop_len = fs, nfft, nfft, nfft // 2
        self._nb_channels = nb_channels
        self._eps = np.spacing(np.float64(1e-16))
        self._audio_max_len_samples = int(clip_len_s * fs)
        self._max_frames = int(np.ceil((self._audio_max_len_samples - float(self._win_len)) / float(self._hop_len)))
        self._frame_res = fs / float(self._hop_len)
        self._unique_classes = {c: i for i, c in enumerate(classes)}

    def _load_audio(self, audio_path: str) -> np.ndarray:
        from scipy.io import wavfile
        fs, audio = wavfile.read(audio_path)
        audio = audio[:, :self._nb_channels] / 32768.0 + self._eps
        if audio.shape[0] < self._audio_max_len_samples:
            zero_pad = np.zeros((self._audio_max_len_samples - audio.shape[0], audio.shape[1]))
            audio = np.vstack((audio, zero_pad))
        elif audio.shape[0] > self._audio_max_len_samples:
            audio = audio[:self._audio_max_len_samples, :]
        return audio

    def _spectrogram(self, audio_input: np.ndarray) -> np.ndarray:
        _nb_ch = audio_input.shape[1]
        hann_win = np.repeat(np.hanning(self._win_len)[np.newaxis].T, _nb_ch, 1)
        nb_bins = self._nfft // 2
        spectra = np.zeros((self._max_frames, nb_bins, _nb_ch), dtype=complex)
        for ind in range(self._max_frames):
            start_ind = ind * self._hop_len
            aud_frame = audio_input[start_ind + np.arange(0, self._win_len), :] * hann_win
            spectra[ind] = np.fft.fft(aud_frame, n=self._nfft, axis=0, norm='ortho')[:nb_bins, :]
        return spectra

    def extract_all_feature(self) -> None:
        for file_name in sorted(os.listdir(self._aud_dir)):
            audio_in = self._load_audio(os.path.join(self._aud_dir, file_name))
            audio_spec = self._spectrogram(audio_in)
            np.save(os.path.join(self._feat_dir, file_name.split('.')[0] + '.npy'),
                    audio_spec.reshape(self._max_frames, -1))

    def preprocess_features(self) -> None:
        from sklearn import preprocessing
        spec_scaler = preprocessing.StandardScaler()
        names = sorted(os.listdir(self._desc_dir))
        for file_name in names:
            if 'train' in file_name:
                nfeat = np.load(os.path.join(self._feat_dir, file_name.split('.')[0] + '.npy'))
                spec_scaler.partial_fit(np.concatenate((np.abs(nfeat), np.angle(nfeat)), axis=1))
                del nfeat
        for file_name in names:
            feat_file = np.load(os.path.join(self._feat_dir, file_name.split('.')[0] + '.npy'))
            feat_file = spec_scaler.transform(np.concatenate((np.abs(feat_file), np.angle(feat_file)), axis=1))
            np.save(os.path.join(self._feat_dir_norm, file_name.split('.')[0] + '.npy'), feat_file)
            del feat_file

    def extract_all_labels(self) -> None:
        nb = len(self._unique_classes)
        for file_name in sorted(os.listdir(self._desc_dir)):
            se_label = np.zeros((self._max_frames, nb))
            x, y, z = (np.zeros((self._max_frames, nb)) for _ in range(3))
            with open(os.path.join(self._desc_dir, file_name)) as f:
                rows = list(csv.reader(f))[1:]
            for row in rows:
                cls = self._unique_classes[row[0].split('.')[0][:-3]]
                start = int(np.floor(float(row[1]) * self._frame_res))
                end = int(np.ceil(float(row[2]) * self._frame_res))
                ele, azi = np.deg2rad(float(row[3])), np.deg2rad(float(row[4]))
                se_label[start:end + 1, cls] = 1
                x[start:end, cls] = np.cos(azi) * np.cos(ele)
                y[start:end, cls] = np.sin(azi) * np.cos(ele)
                z[start:end, cls] = np.sin(ele)
            np.save(os.path.join(self._label_dir, file_name.split('.')[0] + '.npy'),
                    np.concatenate((se_label, x, y, z), axis=1))


# --------------------------------------------------------------------------------------------------
def make_data(root: str, nb_clips: int, seconds: float) -> str:
    rng = np.random.default_rng(0)
    wav_dir, desc_dir = os.path.join(root, 'wav_ov1_split1_30db'), os.path.join(root, 'desc_ov1_split1')
    nb_test = max(1, nb_clips // 4)
    for i in range(nb_clips):
        part, j = ('test', i) if i < nb_test else ('train', i - nb_test)
        events, t = [], 0.5
        while t + 1.5 < seconds:
            cls = str(rng.choice(tut_fixture.CLASSES))
            events.append((cls, round(t, 3), round(t + 1.0, 3), int(rng.integers(-4, 5) * 10),
                           int(rng.integers(-18, 18) * 10)))
            t += 2.0
        stem = f'{part}_{j}_desc_30_100'
        tut_fixture.write_clip(os.path.join(wav_dir, stem + '.wav'), os.path.join(desc_dir, stem + '.csv'), events,
                               clip_len_s=seconds, seed=i)
    return root


def project_run(params: dict, n_jobs: int) -> tuple[float, dict[str, float]]:
    fc = cfc.FeatureClass(params)
    t0 = time.perf_counter()
    fc.analyze_all(n_jobs=n_jobs, progress=False)
    t1 = time.perf_counter()
    fc.fit_scaler()
    t2 = time.perf_counter()
    fc.write_features_all(n_jobs=n_jobs, progress=False)
    t3 = time.perf_counter()
    return t3 - t0, dict(stats=t1 - t0, scaler=t2 - t1, features=t3 - t2)


def profile_project(params: dict) -> dict[str, float]:
    """Per-stage time of the project's per-file work, summed over files (one process), as analyze_file and
    write_features_file do it (pass 1: labels and train statistics; pass 2: standardized features, written once)."""
    fc = cfc.FeatureClass(params)
    out = os.path.join(params['feat_label_dir'], 'profile')
    os.makedirs(out, exist_ok=True)
    keys = ['1: wav read (train)', '1: statistics (train)', '1: labels + save', '2: wav read',
            '2: features + standardize', '2: write features']
    t = dict.fromkeys(keys, 0.0)
    stems = fc.file_stems()
    stats = []
    for s in stems:
        p = fc._paths(s)
        a = b = c = time.perf_counter()
        if s.startswith('train'):
            audio = fc.load_audio(p['wav'], reuse_buffer=True)
            b = time.perf_counter()
            stats.append(cfc.audio_feature_stats(audio, nfft=fc.nfft, hop_len=fc.hop_len, nb_frames=fc.nb_frames))
            cfc.utils.save_npz(os.path.join(out, s + '.npz'), n=stats[-1][0], mean=stats[-1][1], m2=stats[-1][2])
            c = time.perf_counter()
        desc = formats.read_desc_file(p['csv'], classes=fc.classes, naming='real' if fc.dataset == 'real' else 'tut',
                                  max_time_s=params['clip_len_s'])
        label = cfc.desc_to_labels(desc, nb_classes=fc.nb_classes, nb_frames=fc.nb_frames, frame_rate=fc.frame_rate)
        cfc.utils.save_npy(os.path.join(out, s + '.label.npy'), label)
        d = time.perf_counter()
        for k, v in zip(keys[:3], (b - a, c - b, d - c)):
            t[k] += v
    mean, scale = cfc.scaler_from_stats(*cfc.merge_stats(stats))
    buf = cfc.utils.NpyFileBuffer((fc.nb_frames, fc.nfft // 2, 2 * fc.nb_channels))
    os.sync()
    for s in stems:
        a = time.perf_counter()
        audio = fc.load_audio(fc._paths(s)['wav'], reuse_buffer=True)
        b = time.perf_counter()
        cfc.extract_features(audio, nfft=fc.nfft, hop_len=fc.hop_len, nb_frames=fc.nb_frames, mean=mean,
                             scale=scale, out=buf.array)
        c = time.perf_counter()
        buf.save(os.path.join(out, s + '.npy'), direct=params['direct_io'])
        d = time.perf_counter()
        for k, v in zip(keys[3:], (b - a, c - b, d - c)):
            t[k] += v
    shutil.rmtree(out)
    return t


def write_floor(folder: str, nb_files: int, shape: tuple[int, ...], *, direct: bool) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds to write ``nb_files`` new float32 ``.npy`` files of ``shape``
    atomically, nothing else: with ``direct``, as the pipeline writes them (utils.NpyFileBuffer, O_DIRECT);
    else with ``np.save``."""
    os.makedirs(folder)
    buf = cfc.utils.NpyFileBuffer(shape)
    buf.array[...] = np.random.default_rng(0).standard_normal(shape)
    os.sync()
    t0, c0 = time.perf_counter(), os.times()
    for i in range(nb_files):
        if direct:
            buf.save(os.path.join(folder, f'{i}.npy'))
        else:
            cfc.utils.save_npy(os.path.join(folder, f'{i}.npy'), buf.array)
    dt, c1 = time.perf_counter() - t0, os.times()
    shutil.rmtree(folder)
    return dt, c1.user - c0.user + c1.system - c0.system


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--clips', type=int, default=32)
    ap.add_argument('--seconds', type=float, default=30.0)
    ap.add_argument('--quick', action='store_true', help='8 clips of 30 s')
    ap.add_argument('--profile', action='store_true', help='per-stage breakdown of the project pipeline')
    ap.add_argument('--no-original', action='store_true', help='skip the (slow) original algorithm')
    ap.add_argument('--tmp', default=None, help='parent folder of the temporary dataset (default: system temp)')
    ap.add_argument('--feat-dir', default=None, help='parent folder of the features (default: beside the dataset)')
    args = ap.parse_args()
    if args.quick:
        args.clips = 8
    load = os.getloadavg()
    print(f'feature extraction benchmark: {args.clips} clips x {args.seconds:.0f} s, 4 ch, 44.1 kHz, nfft 512; '
          f'{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}')
    tmp = tempfile.mkdtemp(prefix='bench_features_', dir=args.tmp)
    feat_tmp = tempfile.mkdtemp(prefix='bench_features_out_', dir=args.feat_dir) if args.feat_dir else tmp
    try:
        t0 = time.perf_counter()
        make_data(os.path.join(tmp, 'ds'), args.clips, args.seconds)
        audio_s = args.clips * args.seconds
        print(f'dataset: {audio_s:.0f} s of audio written in {time.perf_counter() - t0:.1f} s')
        base = dict(dataset_dir=os.path.join(tmp, 'ds'), clip_len_s=args.seconds)
        p1 = parameter.get_params('1', dict(base, feat_label_dir=os.path.join(feat_tmp, 'feat1')))
        fc1 = cfc.FeatureClass(p1)
        shape = (fc1.nb_frames, fc1.nfft // 2, 2 * fc1.nb_channels)
        nbytes = args.clips * 4 * int(np.prod(shape))
        floors = {}
        for direct in (False, True):
            floors[direct], cpu = write_floor(os.path.join(feat_tmp, 'floor'), args.clips, shape, direct=direct)
            print(f'write floor ({"O_DIRECT" if direct else "np.save, page cache"}): {args.clips} new feature files of '
                  f'{nbytes / args.clips / 1e6:.1f} MB in {floors[direct]:.2f} s = {nbytes / floors[direct] / 1e6:.0f} '
                  f'MB/s on {feat_tmp} (CPU time {cpu:.2f} s): RTF {audio_s / floors[direct]:.0f}x', flush=True)
        floor = floors[True]
        rtf = {}
        for n_jobs, direct in ((1, True), (2, True), (2, False)):
            params = parameter.get_params('1', dict(base, direct_io=direct, feat_label_dir=os.path.join(
                feat_tmp, f'feat{n_jobs}{"" if direct else "_buffered"}')))
            os.sync()
            total, parts = project_run(params, n_jobs)
            rtf[n_jobs, direct] = audio_s / total
            print(f'project  n_jobs={n_jobs} direct_io={direct!s:5}: {total:6.2f} s  RTF {audio_s / total:7.1f}x real '
                  f'time  (labels+stats {parts["stats"]:.2f} s, scaler {parts["scaler"]:.3f} s, '
                  f'features {parts["features"]:.2f} s)', flush=True)
        # sanity: the last run's files (n_jobs=2, buffered writes) must be identical to n_jobs=1's (O_DIRECT)
        a = np.load(os.path.join(cfc.FeatureClass(params).feat_dir_norm, 'train_0_desc_30_100.npy'))
        b = np.load(os.path.join(cfc.FeatureClass(p1).feat_dir_norm, 'train_0_desc_30_100.npy'))
        print(f'normalized features of n_jobs=1 (O_DIRECT) and n_jobs=2 (buffered) identical: {np.array_equal(a, b)}')
        rtf = {n: rtf[n, True] for n in (1, 2)}
        if args.profile:
            prof = profile_project(p1)
            tot = sum(prof.values())
            print('project per-stage time (1 process, summed over files):')
            for k, v in prof.items():
                print(f'  {k:26s} {v:6.3f} s  {100 * v / tot:5.1f} %')
        if not args.no_original:
            orig = OriginalFeatureClass(os.path.join(tmp, 'ds', 'wav_ov1_split1_30db'),
                                        os.path.join(tmp, 'ds', 'desc_ov1_split1'), os.path.join(feat_tmp, 'orig'),
                                        clip_len_s=args.seconds)
            os.sync()
            t0 = time.perf_counter()
            orig.extract_all_feature()
            t1 = time.perf_counter()
            orig.extract_all_labels()
            t2 = time.perf_counter()
            orig.preprocess_features()
            t3 = time.perf_counter()
            rtf_orig = audio_s / (t3 - t0)
            print(f'original (1 process): {t3 - t0:6.2f} s  RTF {rtf_orig:7.1f}x real time  (spectrogram {t1 - t0:.2f} s, '
                  f'labels {t2 - t1:.2f} s, scaler+normalize {t3 - t2:.2f} s)')
            # same normalized magnitude maps: original (frames, [abs | angle] x bins*ch), column b*C+c of the
            # abs half == project feat_norm[:, b, c]
            orig_norm = np.load(os.path.join(feat_tmp, 'orig', 'spec_norm', 'train_0_desc_30_100.npy'))
            feat = np.load(os.path.join(cfc.FeatureClass(p1).feat_dir_norm, 'train_0_desc_30_100.npy'))
            mag = orig_norm[:, :orig_norm.shape[1] // 2].reshape(feat.shape[0], -1, 4)
            diff = np.max(np.abs(mag - feat[..., :4]))
            print(f'check: normalized magnitude maps of project vs original, max abs difference {diff:.2e}')
            print(f'SUMMARY features: project RTF {rtf[1]:.0f}x (1 job) / {rtf[2]:.0f}x (2 jobs) real time; original '
                  f'{rtf_orig:.0f}x; speed-up {rtf[1] / rtf_orig:.1f}x (1 job) / {rtf[2] / rtf_orig:.1f}x (2 jobs)'
                  f'; targets >= 500x real time and >= 5x original; write floor {audio_s / floor:.0f}x; '
                  f'load average {os.getloadavg()[0]:.2f}')
        else:
            print(f'SUMMARY features: project RTF {rtf[1]:.0f}x (1 job) / {rtf[2]:.0f}x (2 jobs) real time; '
                  f'original not run; write floor {audio_s / floor:.0f}x')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(feat_tmp, ignore_errors=True)


if __name__ == '__main__':
    main()

"""Benchmark: feature extraction end to end (wav on disk -> normalized float32 features and labels on disk).

Measures, in the same run and on the same synthetic dataset (made in a temporary folder):

* the project's pipeline: ``batch_feature_extraction.analyze_all`` (labels, train statistics), the scaler and
  ``write_features_all`` (standardized features, written once with ``np.save`` to a temporary name and renamed),
  with n_jobs=1 and n_jobs=2 threads (each from an empty feature folder);
* the ORIGINAL algorithm of sharathadavanne/seld-net ``cls_feature_class.py``, re-implemented here:
  scipy wav read to float64, a per-frame Python loop of ``np.fft.fft`` into a complex128 spectrogram saved
  with ``np.save``; then reload, ``np.concatenate((np.abs(x), np.angle(x)), axis=1)`` in float64,
  sklearn ``StandardScaler.partial_fit`` on the train files, ``transform`` of every file and ``np.save``
  of the float64 result; labels from the description files;
* the write floor: the time to write the same number of feature-sized ``.npy`` files and nothing else, through
  the page cache (``np.save``, as the pipeline writes) and with ``O_DIRECT`` (page-aligned buffer, as an earlier
  version of the pipeline wrote them). Their difference is what ``O_DIRECT`` could save; the benchmark prints it
  per hour of audio, the unit a user's dataset is counted in.

Real-time factor (RTF) = seconds of audio / seconds of wall time. ``--profile`` adds a per-stage breakdown of the
project's per-file work (single thread). Every timed part starts after ``os.sync()``, so no part pays for the
write-back of the one before.

    python benchmarks/bench_features.py [--clips 32] [--seconds 30] [--quick] [--profile] [--tmp DIR]
                                        [--feat-dir DIR]
"""
from __future__ import annotations

import argparse
import csv
import errno
import mmap
import os
import shutil
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'tests')]

import batch_feature_extraction as bfe  # noqa: E402
import cls_feature_class as cfc  # noqa: E402
import label_frames  # noqa: E402
import parameter  # noqa: E402
import tut_fixture  # noqa: E402
import utils  # noqa: E402


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
    recs = fc.recordings()
    t0 = time.perf_counter()
    bfe.analyze_all(fc, recs, n_jobs=n_jobs, progress=False)
    t1 = time.perf_counter()
    bfe.write_features_all(fc, recs, n_jobs=n_jobs, progress=False)
    t2 = time.perf_counter()
    return t2 - t0, dict(stats=t1 - t0, features=t2 - t1)


def profile_project(params: dict) -> dict[str, float]:
    """Per-stage time of the project's per-file work, summed over files (one thread), as FeatureClass.analyze and
    write_features do it (pass 1: labels and train statistics; pass 2: standardized features, written once)."""
    fc = cfc.FeatureClass(params)
    keys = ['1: wav read', '1: statistics (train)', '1: labels', '2: wav read', '2: features + standardize',
            '2: write features']
    t = dict.fromkeys(keys, 0.0)
    stats, recs = [], fc.recordings()
    out = os.path.join(params['feat_label_dir'], 'profile')
    for r in recs:
        a = time.perf_counter()
        audio = fc.load_audio(r.wav)
        b = time.perf_counter()
        if r.part == 'train':
            stats.append(cfc.audio_feature_stats(audio, framing=fc.framing))
        c = time.perf_counter()
        ref = fc.dataset.read_reference(r, duration_s=audio.shape[0] / fc.fs)
        label_frames.desc_to_labels(ref, nb_classes=fc.nb_classes, nb_frames=fc.framing.nb_frames(audio.shape[0]),
                                    frame_rate=fc.frame_rate)
        d = time.perf_counter()
        for k, v in zip(keys[:3], (b - a, c - b, d - c)):
            t[k] += v
    mean, scale = cfc.scaler_from_stats(*cfc.merge_stats(stats))
    os.sync()
    for r in recs:
        a = time.perf_counter()
        audio = fc.load_audio(r.wav)
        b = time.perf_counter()
        feat = cfc.extract_features(audio, framing=fc.framing, mean=mean, scale=scale)
        c = time.perf_counter()
        utils.save_npy(os.path.join(out, r.stem + '.npy'), feat)
        d = time.perf_counter()
        for k, v in zip(keys[3:], (b - a, c - b, d - c)):
            t[k] += v
    shutil.rmtree(out)
    return t


def _write_direct(path: str, mem: mmap.mmap, nbytes: int) -> None:
    """Write ``nbytes`` of a page-aligned buffer with O_DIRECT (the padding of the last block cut afterwards)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT)
    try:
        view, off = memoryview(mem), 0
        while off < len(view):
            off += os.pwrite(fd, view[off:off + (1 << 23)], off)
        os.ftruncate(fd, nbytes)
    finally:
        os.close(fd)


def write_floor(folder: str, nb_files: int, shape: tuple[int, ...], *, direct: bool) -> tuple[float, float] | None:
    """Wall and CPU (user + system) seconds to write ``nb_files`` new float32 ``.npy`` files of ``shape``
    atomically (temporary name, then rename), nothing else: ``np.save`` through the page cache, or with O_DIRECT.
    None where O_DIRECT is not available."""
    import io
    os.makedirs(folder)
    array = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {'descr': '<f4', 'fortran_order': False, 'shape': shape})
    nbytes = len(head.getvalue()) + array.nbytes
    mem = mmap.mmap(-1, -(-nbytes // 4096) * 4096)  # anonymous: page-aligned
    mem[:len(head.getvalue())] = head.getvalue()
    mem[len(head.getvalue()):nbytes] = array.tobytes()
    os.sync()
    t0, c0 = time.perf_counter(), os.times()
    try:
        for i in range(nb_files):
            path = os.path.join(folder, f'{i}.npy')
            if direct:
                if not hasattr(os, 'O_DIRECT'):
                    return None
                with utils.atomic_path(path) as tmp:
                    _write_direct(tmp, mem, nbytes)
            else:
                utils.save_npy(path, array)
    except OSError as err:
        if err.errno == errno.EINVAL:  # the filesystem refuses O_DIRECT
            return None
        raise
    finally:
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
        base = dict(dataset_dir=os.path.join(tmp, 'ds'), val_fraction=0.0)
        p1 = parameter.get_params('1', dict(base, feat_label_dir=os.path.join(feat_tmp, 'feat1')))
        fc1 = cfc.FeatureClass(p1)
        shape = (fc1.framing.nb_frames(int(args.seconds * fc1.fs)), fc1.framing.nb_bins, 2 * fc1.nb_channels)
        nbytes = args.clips * 4 * int(np.prod(shape))
        floors = {}
        for direct in (False, True):
            res = write_floor(os.path.join(feat_tmp, 'floor'), args.clips, shape, direct=direct)
            if res is None:
                print('write floor (O_DIRECT): not available on this filesystem')
                continue
            floors[direct], cpu = res
            print(f'write floor ({"O_DIRECT" if direct else "np.save, page cache"}): {args.clips} new feature files of '
                  f'{nbytes / args.clips / 1e6:.1f} MB in {floors[direct]:.2f} s = {nbytes / floors[direct] / 1e6:.0f} '
                  f'MB/s on {feat_tmp} (CPU time {cpu:.2f} s): RTF {audio_s / floors[direct]:.0f}x', flush=True)
        rtf = {}
        for n_jobs in (1, 2):
            params = parameter.get_params('1', dict(base, feat_label_dir=os.path.join(feat_tmp, f'feat{n_jobs}')))
            os.sync()
            total, parts = project_run(params, n_jobs)
            rtf[n_jobs] = audio_s / total
            print(f'project  n_jobs={n_jobs}: {total:6.2f} s  RTF {audio_s / total:7.1f}x real time  (labels+stats '
                  f'{parts["stats"]:.2f} s, scaler+features {parts["features"]:.2f} s)', flush=True)
        a = np.load(cfc.FeatureClass(params).paths('train_0_desc_30_100')['feat'])
        b = np.load(fc1.paths('train_0_desc_30_100')['feat'])
        print(f'normalized features of n_jobs=1 and n_jobs=2 identical: {np.array_equal(a, b)}')
        if True in floors:
            saved = (floors[False] - floors[True]) / audio_s * 3600
            print(f'O_DIRECT instead of np.save would save {saved:.1f} s per hour of audio on this disk '
                  f'({saved / (3600 / rtf[2]) * 100:.0f} % of the 2-thread extraction time)')
        if args.profile:
            prof = profile_project(p1)
            tot = sum(prof.values())
            print('project per-stage time (1 thread, summed over files):')
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
            mag = orig_norm[:, :orig_norm.shape[1] // 2].reshape(b.shape[0], -1, 4)
            print(f'check: normalized magnitude maps of project vs original, max abs difference '
                  f'{np.max(np.abs(mag - b[..., :4])):.2e}')
            floor_text = ', '.join(f'{audio_s / v:.0f}x ({name})' for name, v in
                                   (('np.save', floors.get(False)), ('O_DIRECT', floors.get(True))) if v)
            print(f'SUMMARY features: project RTF {rtf[1]:.0f}x (1 job) / {rtf[2]:.0f}x (2 jobs) real time; original '
                  f'{rtf_orig:.0f}x; speed-up {rtf[1] / rtf_orig:.1f}x (1 job) / {rtf[2] / rtf_orig:.1f}x (2 jobs); '
                  f'write floors {floor_text}; load average {os.getloadavg()[0]:.2f}')
        else:
            print(f'SUMMARY features: project RTF {rtf[1]:.0f}x (1 job) / {rtf[2]:.0f}x (2 jobs) real time; '
                  f'original not run')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(feat_tmp, ignore_errors=True)


if __name__ == '__main__':
    main()

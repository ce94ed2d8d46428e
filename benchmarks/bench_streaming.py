"""Benchmark: memory and speed of the training data generator (cls_data_generator.DataGenerator).

1. Peak memory while iterating one epoch of ``DataGenerator(params, split='train')`` over a feature set
   and over its 4x copy (the same files copied under new names), each in a fresh subprocess. Printed:
   ``ru_maxrss`` (peak resident set, which counts file pages mapped through ``np.load(mmap_mode='r')``)
   and the peak of anonymous memory (``RssAnon`` of /proc/self/status, sampled after every batch: the
   memory the process itself allocates, which is what must not grow with the dataset).
2. Batches/s the generator produces (one process, shuffled train order, page cache warm) vs batches/s the
   default model consumes with ``train_on_batch`` (4 channels, 512 frames, 256 bins, batch 16).

The features are synthetic (random normal float32 of the real shape, 5167 frames x 256 bins x 8 maps
per 30-s file, written directly in the layout batch_feature_extraction.py produces).

    python benchmarks/bench_streaming.py [--files 16] [--steps 5] [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'tests')]
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

FRAMES, BINS, MAPS, CLASSES = 5167, 256, 8, 11


def params_for(feat_label_dir: str, tmp: str) -> dict:
    import parameter
    return parameter.get_params('1', dict(feat_label_dir=feat_label_dir, val_fraction=0.0,
                                          dataset_dir=os.path.join(feat_label_dir, 'dataset')))


def _add_recording(fc, stem: str) -> None:
    """A recording in the dataset's TUT-2018 layout: the generator lists recordings from it, but never opens its
    audio (the features exist), so the wav can be empty."""
    aud, meta = fc.dataset.audio_dir(), fc.dataset.meta_dir()
    os.makedirs(aud, exist_ok=True)
    os.makedirs(meta, exist_ok=True)
    open(os.path.join(aud, stem + '.wav'), 'wb').close()
    with open(os.path.join(meta, stem + '.csv'), 'w') as f:
        f.write('sound_event_recording,start_time,end_time,ele,azi,dist\n')


def write_features(feat_label_dir: str, tmp: str, nb_files: int) -> None:
    from cls_feature_class import FeatureClass
    fc = FeatureClass(params_for(feat_label_dir, tmp))
    os.makedirs(fc.feat_dir_norm, exist_ok=True)
    os.makedirs(fc.label_dir, exist_ok=True)
    rng = np.random.default_rng(0)
    feat = rng.standard_normal((FRAMES, BINS, MAPS), dtype=np.float32)
    _add_recording(fc, 'test_0_desc_30_100')  # a dataset needs a test part
    for i in range(nb_files):
        label = np.zeros((FRAMES, 4 * CLASSES), dtype=np.float32)
        label[(i * 100) % FRAMES:, i % CLASSES] = 1
        stem = f'train_{i}_desc_30_100'
        _add_recording(fc, stem)
        np.save(fc.paths(stem)['feat'], np.roll(feat, i, axis=0))
        np.save(fc.paths(stem)['label'], label)


def copy_features(src: str, dst: str, tmp: str, times: int) -> None:
    from cls_feature_class import FeatureClass
    a, b = FeatureClass(params_for(src, tmp)), FeatureClass(params_for(dst, tmp))
    for d in (b.feat_dir_norm, b.label_dir):
        os.makedirs(d, exist_ok=True)
    _add_recording(b, 'test_0_desc_30_100')
    for r in a.recordings():
        if r.part != 'train':
            continue
        for k in range(times):
            stem = f'{r.stem}_copy{k}'.replace('_desc_30_100_copy', '_copy') + '_desc_30_100'
            _add_recording(b, stem)
            for key in ('feat', 'label'):
                shutil.copyfile(a.paths(r.stem)[key], b.paths(stem)[key])


def rss_anon_kb() -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('RssAnon:'):
                return int(line.split()[1])
    return -1


def mmap_generator_class():
    """The generator as it was before: batches sliced from long-lived np.memmap arrays (whose touched
    pages stay mapped and count in the process's RSS until the mapping is dropped). Same batches."""
    import cls_data_generator

    class MmapGenerator(cls_data_generator.DataGenerator):
        @staticmethod
        def _read(arr: np.memmap, start: int, n: int) -> np.ndarray:
            return np.asarray(arr[start:start + n])

    return MmapGenerator


def child(feat_label_dir: str, tmp: str, reader: str) -> None:
    """One epoch over the train generator; print peak memory as JSON (run in a fresh process)."""
    import cls_data_generator  # imports keras
    params = params_for(feat_label_dir, tmp)
    base_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cls = cls_data_generator.DataGenerator if reader == 'pread' else mmap_generator_class()
    gen = cls(params, split='train')
    anon0 = rss_anon_kb()
    peak_anon = anon0
    t0 = time.perf_counter()
    for b in range(len(gen)):
        batch = gen[b]
        peak_anon = max(peak_anon, rss_anon_kb())
        del batch
    dt = time.perf_counter() - t0
    print(json.dumps(dict(batches=len(gen), files=len(gen.stems), seconds=dt, import_maxrss_kb=base_max,
                          anon_start_kb=anon0, peak_anon_kb=peak_anon,
                          maxrss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                          dataset_mb=sum(f.nbytes for f in gen._feat) / 2 ** 20)))


def run_child(feat_label_dir: str, tmp: str, reader: str) -> dict:
    out = subprocess.run([sys.executable, os.path.abspath(__file__), '--child', feat_label_dir, '--tmp', tmp,
                          '--reader', reader],
                         capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def consumption(steps: int) -> tuple[float, float]:
    """(first train_on_batch seconds, median seconds per later step) of the default model."""
    import keras_model
    model = keras_model.get_model(nb_frames=512, nb_bins=256, nb_channels=4, nb_classes=CLASSES)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 512, 256, 8), dtype=np.float32)
    y = {'sed_out': (rng.random((16, 512, CLASSES)) > 0.9).astype(np.float32),
         'doa_out': rng.uniform(-1, 1, (16, 512, 3 * CLASSES)).astype(np.float32)}
    from bench_training import time_train_steps  # same folder
    first, times = time_train_steps(model, x, y, steps)
    return first, float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--files', type=int, default=16, help='train files of the base set (30 s each)')
    ap.add_argument('--steps', type=int, default=5, help='timed train_on_batch steps')
    ap.add_argument('--quick', action='store_true', help='4 files, 2 timed steps')
    ap.add_argument('--tmp', default=None)
    ap.add_argument('--child', default=None, help=argparse.SUPPRESS)
    ap.add_argument('--reader', default='mmap', help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.tmp, args.reader)
        return
    if args.quick:
        args.files, args.steps = 4, 2
    load = os.getloadavg()
    print(f'streaming benchmark: {args.files} train files of {FRAMES} frames x {BINS} bins x {MAPS} maps (float32); '
          f'{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}')
    tmp = tempfile.mkdtemp(prefix='bench_streaming_', dir=args.tmp)
    try:
        one, four = os.path.join(tmp, 'x1'), os.path.join(tmp, 'x4')
        write_features(one, tmp, args.files)
        copy_features(one, four, tmp, 4)
        res = {}
        for reader in ('mmap', 'pread'):
            label = 'old memmap slicing' if reader == 'mmap' else 'DataGenerator (os.pread)'
            for name, d in (('1x', one), ('4x', four)):
                r = res[reader, name] = run_child(d, tmp, reader)
                print(f'{label:26s} dataset {name}: {r["files"]:3d} files, {r["dataset_mb"]:6.0f} MB of features, '
                      f'{r["batches"]:4d} batches in {r["seconds"]:5.1f} s | peak RSS (ru_maxrss) '
                      f'{r["maxrss_kb"] / 1024:6.0f} MB | anonymous memory {r["anon_start_kb"] / 1024:.0f} MB after '
                      f'setup, peak {r["peak_anon_kb"] / 1024:.0f} MB', flush=True)
        ratio = {k: res[k, '4x']['maxrss_kb'] / res[k, '1x']['maxrss_kb'] for k in ('mmap', 'pread')}
        anon_ratio = res['pread', '4x']['peak_anon_kb'] / res['pread', '1x']['peak_anon_kb']
        rss_ratio = ratio['pread']
        print(f'peak ratio 4x/1x dataset (dataset ratio {res["mmap", "4x"]["dataset_mb"] / res["mmap", "1x"]["dataset_mb"]:.1f}): '
              f'DataGenerator ru_maxrss {ratio["pread"]:.2f}, anonymous {anon_ratio:.2f}; old memmap slicing ru_maxrss '
              f'{ratio["mmap"]:.2f}')
        res['1x'], res['4x'] = res['pread', '1x'], res['pread', '4x']

        import cls_data_generator
        gen = cls_data_generator.DataGenerator(params_for(four, tmp), split='train')
        n = min(len(gen), 200)
        for b in range(min(n, 10)):  # warm-up
            gen[b]
        t0 = time.perf_counter()
        for b in range(n):
            gen[b]
        produce = n / (time.perf_counter() - t0)
        print(f'generator: {produce:.1f} batches/s ({n} shuffled batches of 16 x 512 frames, page cache warm)',
              flush=True)
        pgen = mmap_generator_class()(params_for(four, tmp), split='train')
        same = all(np.array_equal(gen[b][0], pgen[b][0]) for b in range(min(n, 3)))
        t0 = time.perf_counter()
        for b in range(n):
            pgen[b]
        print(f'old memmap slicing: {n / (time.perf_counter() - t0):.1f} batches/s; same batches: {same}', flush=True)
        first, step = consumption(args.steps)
        consume = 1 / step
        print(f'model: train_on_batch {consume:.3f} batches/s ({step:.2f} s per step, median of {args.steps}; first '
              f'step {first:.1f} s)')
        print(f'SUMMARY streaming: peak RSS {res["1x"]["maxrss_kb"] / 1024:.0f} MB (1x) vs '
              f'{res["4x"]["maxrss_kb"] / 1024:.0f} MB (4x), ratio {rss_ratio:.2f} (old memmap slicing {ratio["mmap"]:.2f}); '
              f'anonymous peak ratio {anon_ratio:.2f}; '
              f'generator {produce:.1f} batches/s vs model {consume:.2f} batches/s = {produce / consume:.0f}x '
              f'(target >= 10x); load average {os.getloadavg()[0]:.2f}')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()

"""Extract the features and labels of a dataset and standardize them.

Usage::

    python batch_feature_extraction.py [task-id] [key=value ...]
    python batch_feature_extraction.py 999 dataset_dir=data/ansim feat_label_dir=scratch/feat
    python batch_feature_extraction.py starss23 dataset_dir=data/STARSS23

With the default ``dataset_dir`` and ``dataset=ansim``, a missing dataset is the embedded default: a small
SYNTHETIC ANSIM look-alike is synthesized first (see synthesize_dataset.py). Any other missing dataset is an error
that says how to get data. Re-running skips recordings already done with the same parameters, so an interrupted
run resumes; a file already done is checked first (a ``.npy`` whose size does not match its header, or a damaged
info, statistics or scaler file, is redone). A full disk or an unwritable folder is a one-line error naming the
file; the files finished before it are kept, and the rerun continues from them.

Two passes (cls_feature_class.py): labels and the statistics of the train recordings' features, then the scaler
and the standardized features, computed again and written once. Across processes or machines sharing
``feat_label_dir``, run every shard's ``stats`` stage, then every shard's ``features`` stage::

    python batch_feature_extraction.py 1 nb_shards=4 shard_index=0 stage=stats      # ... one per shard, 0..3
    python batch_feature_extraction.py 1 nb_shards=4 shard_index=0 stage=features   # ... after all stats are done

Shard ``k`` of ``n`` takes the recordings ``i`` (sorted by stem) with ``i % n == k``. Every file is written to a
temporary name and renamed, so a file under its final name is complete, and a re-run (or a second machine) skips
files already done.
"""
from __future__ import annotations

import concurrent.futures
import os
import shutil
import sys
import time
from typing import Any, Callable

import parameter
import utils

USAGE = 'python batch_feature_extraction.py [task-id] [key=value ...]'
if __name__ == '__main__':
    parameter.exit_on_help(sys.argv[1:], USAGE)  # --help answers before scipy, librosa and soundfile are imported

from cls_feature_class import FeatureClass, load_scaler  # noqa: E402
from file_checks import writing  # noqa: E402

STAGES = ('all', 'stats', 'features')


def ensure_dataset(params: dict[str, Any]) -> None:
    """Synthesize the dataset (and its unseen-DOA test set) if ``synthesize`` is on and it is missing; otherwise a
    missing dataset is an error that says how to get data."""
    import datasets

    d = datasets.Dataset(params)
    unseen = params.get('unseen_doa_dir')
    todo = [] if os.path.isdir(d.audio_dir()) and os.path.isdir(d.meta_dir()) else [(params['dataset_dir'], False)]
    if unseen and not os.path.isdir(datasets.Dataset(dict(params, dataset_dir=unseen), test_only=True).audio_dir()):
        todo.append((unseen, True))
    if not todo:
        return
    if not params['synthesize']:
        for folder, off_grid in todo:  # raises with instructions
            datasets.Dataset(dict(params, dataset_dir=folder), test_only=off_grid).check()
        return
    from synth import driver, tut2018

    for folder, off_grid in todo:
        nb_train = 0 if off_grid else params['synth_nb_train']
        print(f'{folder}: no data yet; synthesizing a SYNTHETIC ANSIM look-alike ({nb_train} train + '
              f'{params["synth_nb_test"]} test clips of {params["synth_clip_len_s"]} s, seed {params["synth_seed"]}, '
              f'sound bank {params["synth_sound_bank"]}'
              + ('; the test scenes with DOAs shifted off the grid by +5 degrees' if off_grid else '')
              + '). To use the real TUT data, pass dataset_dir=<folder of the unzipped data>.')
        summary = tut2018.synthesize(
            dataset_dir=folder, dataset='ansim', overlap=params['overlap'], split=params['split'], db=params['db'],
            nb_train=nb_train, nb_test=params['synth_nb_test'], clip_len_s=params['synth_clip_len_s'],
            fs=44100, seed=params['synth_seed'], sound_bank=params['synth_sound_bank'],
            unseen_doa=off_grid, n_jobs=params['n_jobs'])
        print(driver.summary_line(summary))


def nb_threads(n_jobs: int, nb_files: int) -> int:
    """Threads for ``n_jobs`` (joblib's convention: -1 = all cores, -2 = all but one ...) and ``nb_files`` files."""
    if n_jobs < 0:
        n_jobs = (os.cpu_count() or 1) + 1 + n_jobs
    return max(1, min(n_jobs, nb_files))


def map_files(func: Callable[[Any], Any], items: list, *, n_jobs: int, desc: str, progress: bool) -> None:
    """Call ``func(item)`` for every item in ``n_jobs`` threads, with a progress bar.

    Threads, not processes: the work per file is in numpy, scipy.fft, libsndfile and the write, which release the
    GIL (two threads extract 1.8-1.9x faster than one; benchmarks/README.md), and threads start at once. The first
    error (or Ctrl-C) cancels the files not started, waits for those in progress (a fraction of a second; their
    outputs are atomic) and is raised here. (joblib's threading backend is not used: on Ctrl-C it returns while its
    daemon threads still run native code, and the interpreter then aborts at exit.)
    """
    from tqdm import tqdm

    n_jobs = nb_threads(n_jobs, len(items))
    with tqdm(total=len(items), desc=desc, unit='file', disable=not progress or not items) as bar:
        if n_jobs <= 1:
            for item in items:
                func(item)
                bar.update()
            return
        with concurrent.futures.ThreadPoolExecutor(n_jobs, thread_name_prefix='features') as pool:
            futures = [pool.submit(func, item) for item in items]
            try:
                for f in concurrent.futures.as_completed(futures):
                    f.result()  # re-raises the thread's error here
                    bar.update()
            except BaseException:
                for f in futures:
                    f.cancel()
                raise  # leaving the with-block waits for the files in progress


def _check_sharding(params: dict[str, Any]) -> None:
    n, k = params['nb_shards'], params['shard_index']
    if n < 1:
        raise utils.SELDError(f'nb_shards={n}: must be >= 1')
    if not 0 <= k < n:
        raise utils.SELDError(f'shard_index={k}: must be in 0 .. nb_shards-1 = {n - 1}')
    if params['stage'] not in STAGES:
        raise utils.SELDError(f'stage={params["stage"]!r}: must be one of {", ".join(STAGES)}')


def _manifest(fc: FeatureClass) -> dict[str, Any]:
    return dict(config=fc.config(), dataset=fc.dataset.describe())


def analyze_all(fc: FeatureClass, recs: list, *, n_jobs: int, progress: bool) -> int:
    """Pass 1 for ``recs``: labels, info and train statistics of the recordings not done yet; returns how many were
    done now. Features made with other parameters are deleted first."""
    if os.path.exists(fc.manifest_file):
        try:
            made = utils.read_json(fc.manifest_file)
        except (utils.SELDError, UnicodeDecodeError):  # damaged: what the files were made with is unknown
            made = None
        old = made.get('config') if isinstance(made, dict) else None
        if old != fc.config():
            print(f'{fc.feat_label_dir}: features were made with other parameters; redoing them')
            for folder in (fc.feat_dir_norm, fc.label_dir, fc.info_dir, fc.stats_dir):
                shutil.rmtree(folder, ignore_errors=True)
            if os.path.exists(fc.scaler_file):
                os.remove(fc.scaler_file)
    for folder in (fc.label_dir, fc.info_dir, fc.stats_dir):
        with writing(folder):
            os.makedirs(folder, exist_ok=True)
    with writing(fc.manifest_file):
        utils.write_json(fc.manifest_file, _manifest(fc))
    todo = [r for r in recs if not fc.is_analyzed(r)]
    map_files(fc.analyze, todo, n_jobs=n_jobs, desc='labels+stats', progress=progress)
    return len(todo)


def write_features_all(fc: FeatureClass, recs: list, *, n_jobs: int, progress: bool) -> int:
    """Pass 2 for ``recs``: fit the scaler on every train recording's statistics (an unseen-DOA test set uses the
    main dataset's), then write the standardized features of those not up to date; returns how many were written.

    Every recording must have been analyzed (all shards' stats stage finished) with the same feature parameters;
    a missing one or other parameters are an error.
    """
    try:
        made = utils.read_json(fc.manifest_file) if os.path.exists(fc.manifest_file) else None
    except UnicodeDecodeError as err:
        raise utils.SELDError(f'{fc.manifest_file}: not valid JSON ({err}); run stage=stats (every shard) '
                              f'first') from err
    made = made.get('config') if isinstance(made, dict) else None
    if made != fc.config():
        raise utils.SELDError(f'{fc.manifest_file}: ' + ('missing' if made is None else 'the labels and statistics '
                              'were made with other feature parameters') + '; run stage=stats (every shard) first')
    missing = [r.stem for r in fc.recordings() if not fc.is_analyzed(r)]
    if missing:
        raise utils.SELDError(f'{fc.label_dir}: {len(missing)} recording(s) without labels/statistics yet (e.g. '
                              f'{missing[:3]}); wait for every shard\'s stats stage to finish (or re-run the missing '
                              f'shard), then run stage=features')
    if not fc.unseen_doa:
        fc.fit_scaler()
    mean, scale = load_scaler(fc.scaler_file)
    with writing(fc.feat_dir_norm):
        os.makedirs(fc.feat_dir_norm, exist_ok=True)
    todo = [r for r in recs if not fc.is_extracted(r)]
    map_files(lambda r: fc.write_features(r, mean=mean, scale=scale), todo, n_jobs=n_jobs, desc='features',
              progress=progress)
    return len(todo)


def extract(params: dict[str, Any], *, progress: bool = True) -> FeatureClass:
    """Labels, statistics, scaler and normalized features of the parameters' dataset.

    ``stage=all`` does everything for all recordings (only this shard's stats when ``nb_shards > 1``);
    ``stage=stats`` only the labels and statistics of this shard's recordings; ``stage=features`` the scaler and
    this shard's features, once every shard's statistics exist.
    """
    _check_sharding(params)
    stage, nb_shards, k = params['stage'], params['nb_shards'], params['shard_index']
    if nb_shards == 1 and stage != 'features':
        ensure_dataset(params)  # shards never synthesize (they would race): the data must exist
    fc = FeatureClass(params)
    t0 = time.time()  # extraction only (not the synthesis of the embedded default, which prints its own time)
    recs = fc.recordings()
    if nb_shards > 1:
        recs = recs[k::nb_shards]
    shard = f'shard {k}/{nb_shards}: ' if nb_shards > 1 else ''
    n_jobs = params['n_jobs']
    if stage != 'features':
        done = analyze_all(fc, recs, n_jobs=n_jobs, progress=progress)
        if stage == 'stats' or nb_shards > 1:
            same = f'(same other key=value{f", shard_index={k} on each shard" if nb_shards > 1 else ""})'
            print(f'{shard}labels and statistics: {len(recs)} recordings ({done} analyzed, {len(recs) - done} already '
                  f'done), {time.time() - t0:.1f} s -> {fc.feat_label_dir}; when every shard is done, run '
                  f'`python batch_feature_extraction.py {params["task_id"]} stage=features` {same}')
            return fc
    written = write_features_all(fc, recs, n_jobs=n_jobs, progress=progress)
    minutes = sum(fc.file_info(r.stem)['duration_s'] for r in recs) / 60
    parts = {p: sum(r.part == p for r in recs) for p in ('train', 'val', 'test')}
    print(f'{shard}features: {len(recs)} recordings ({parts["train"]} train, {parts["val"]} val, {parts["test"]} '
          f'test; {written} written, {len(recs) - written} already done), {minutes:.1f} min of audio, '
          f'{fc.nb_classes} classes, {fc.nb_channels} channels, {fc.frame_rate:.2f} frames/s, '
          f'{time.time() - t0:.1f} s -> {fc.feat_label_dir}')
    if params.get('unseen_doa_dir') and nb_shards == 1:
        fu = FeatureClass(params, unseen_doa=True)
        urecs = fu.recordings()
        analyze_all(fu, urecs, n_jobs=n_jobs, progress=progress)
        written = write_features_all(fu, urecs, n_jobs=n_jobs, progress=progress)
        print(f'unseen-DOA test set: {len(urecs)} recordings ({written} written) -> {fu.feat_label_dir}')
    return fc


def main(argv: list[str]) -> int:
    values, overrides = parameter.parse_cli(argv, ('task_id',), USAGE)
    params = parameter.get_params(values['task_id'], overrides)
    try:
        extract(params)
    except OSError as err:  # the writes name their file themselves (cls_feature_class.writing); this is the rest
        raise utils.SELDError(f'{err.filename or params["feat_label_dir"]}: {err.strerror or err}') from err
    return 0


if __name__ == '__main__':
    utils.run_cli(main)

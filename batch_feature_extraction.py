"""Extract features and labels of one dataset / overlap / split / SNR and normalize them.

Usage::

    python batch_feature_extraction.py [task-id] [key=value ...]
    python batch_feature_extraction.py 999 dataset_dir=/data/ansim feat_label_dir=/tmp/feat

With the default ``dataset_dir`` and ``dataset=ansim``, a missing dataset is the embedded default: a
small SYNTHETIC ANSIM look-alike is synthesized first (see synthesize_dataset.py). Any other missing
dataset is an error that says how to get data. Re-running skips files already extracted with the
same parameters, so an interrupted run resumes.

Across processes or machines (a shared folder for ``feat_label_dir``; see benchmarks/README.md)::

    python batch_feature_extraction.py 1 nb_shards=4 shard_index=0   # ... one per shard, 0..3, anywhere
    python batch_feature_extraction.py 1 stage=normalize             # once, after every shard has finished

Shard ``k`` of ``n`` takes the sorted files ``i`` with ``i % n == k`` and only extracts (features, labels,
per-file statistics); ``stage=normalize`` fits the scaler on the train files' statistics and writes the
normalized features. Every file is written to a temporary name and renamed, so a file under its final name
is complete, and a re-run (or a second machine) skips files already done.
"""
from __future__ import annotations

import os
import time
from typing import Any

import parameter
import utils
from cls_feature_class import FeatureClass

USAGE = 'python batch_feature_extraction.py [task-id] [key=value ...]'


def ensure_dataset(params: dict[str, Any]) -> None:
    """Synthesize the embedded default dataset if it is what the parameters ask for and it is missing."""
    fc = FeatureClass(params)
    if os.path.isdir(fc.aud_dir) and os.path.isdir(fc.desc_dir):
        return
    if not params['is_embedded_default']:
        fc.check_dataset()  # raises with instructions
        return
    import synthesize_dataset

    print(f'{params["dataset_dir"]}: no data yet; synthesizing the embedded default, a SYNTHETIC ANSIM look-alike '
          f'({params["synth_nb_train"]} train + {params["synth_nb_test"]} test clips of {params["clip_len_s"]} s, '
          f'seed {params["synth_seed"]}). To use the real TUT data, pass dataset_dir=<folder of the unzipped data>.')
    summary = synthesize_dataset.synthesize(
        dataset_dir=params['dataset_dir'], dataset='ansim', overlap=params['overlap'], split=params['split'],
        db=params['db'], nb_train=params['synth_nb_train'], nb_test=params['synth_nb_test'],
        clip_len_s=params['clip_len_s'], fs=params['fs'], seed=params['synth_seed'],
        n_jobs=params['n_jobs'])
    print(synthesize_dataset.summary_line(summary))


STAGES = ('all', 'extract', 'normalize')


def shard_stems(stems: list[str], nb_shards: int, shard_index: int) -> list[str]:
    """The files of one shard: sorted ``stems[i]`` with ``i % nb_shards == shard_index``."""
    return sorted(stems)[shard_index::nb_shards]


def _check_sharding(params: dict[str, Any]) -> None:
    n, k = params['nb_shards'], params['shard_index']
    if n < 1:
        raise utils.SELDError(f'nb_shards={n}: must be >= 1')
    if not 0 <= k < n:
        raise utils.SELDError(f'shard_index={k}: must be in 0 .. nb_shards-1 = {n - 1}')
    if params['stage'] not in STAGES:
        raise utils.SELDError(f'stage={params["stage"]!r}: must be one of {", ".join(STAGES)}')
    if params['stage'] == 'normalize' and n > 1:
        raise utils.SELDError('stage=normalize runs once over all files: do not pass nb_shards/shard_index with it')


def normalize(params: dict[str, Any], *, progress: bool = True) -> FeatureClass:
    """Fit the scaler on every train file's statistics and write normalized features of every file.

    Run once after all extraction shards have finished; a missing file (a shard not finished) is an error.
    """
    fc = FeatureClass(params)
    missing = [s for s in fc.file_stems() if not fc.is_extracted(s)]
    if missing:
        raise utils.SELDError(f'{fc.feat_dir}: {len(missing)} file(s) not extracted yet (e.g. {missing[:3]}); wait '
                              f'for every shard to finish (or re-run the missing shard), then run stage=normalize')
    fc.fit_scaler()
    fc.normalize_all(n_jobs=params['n_jobs'], progress=progress)
    return fc


def extract(params: dict[str, Any], *, progress: bool = True) -> FeatureClass:
    """Features, labels, scaler and normalized features for the parameters' dataset/ov/split/db.

    With ``nb_shards > 1`` (or ``stage=extract``) only this shard's features, labels and statistics are
    written; with ``stage=normalize`` only the scaler and the normalized features.
    """
    t0 = time.time()
    _check_sharding(params)
    stage, nb_shards = params['stage'], params['nb_shards']
    if stage == 'normalize':
        fc = normalize(params, progress=progress)
        print(f'normalized features of {len(fc.file_stems())} files with the train-split scaler, '
              f'{time.time() - t0:.1f} s -> {fc.feat_dir_norm}')
        return fc
    if nb_shards > 1:
        FeatureClass(params).check_dataset()  # shards never synthesize (they would race): the data must exist
    else:
        ensure_dataset(params)
    fc = FeatureClass(params)
    t0 = time.time()  # extraction only (not the synthesis of the embedded default, which prints its own time)
    stems = None if nb_shards == 1 else shard_stems(fc.file_stems(), nb_shards, params['shard_index'])
    summary = fc.extract_all(n_jobs=params['n_jobs'], stems=stems, progress=progress)
    minutes = summary['files'] * params['clip_len_s'] / 60
    if stage == 'extract' or nb_shards > 1:
        print(f'features of shard {params["shard_index"]}/{nb_shards}: {summary["files"]} files '
              f'({summary["extracted"]} extracted, {summary["skipped"]} already done), {minutes:.1f} min of audio, '
              f'{time.time() - t0:.1f} s -> {fc.feat_label_dir}; when every shard is done, run '
              f'`python batch_feature_extraction.py {params["task_id"]} stage=normalize` (same other key=value)')
        return fc
    fc.fit_scaler()
    fc.normalize_all(n_jobs=params['n_jobs'], progress=progress)
    print(f'features: {summary["files"]} files ({summary["extracted"]} extracted, {summary["skipped"]} already done), '
          f'{minutes:.1f} min of audio, {fc.nb_classes} classes, {fc.nb_channels} channels, '
          f'{time.time() - t0:.1f} s -> {fc.feat_label_dir}')
    return fc


def main(argv: list[str]) -> int:
    values, overrides = parameter.parse_cli(argv, ('task_id',), USAGE)
    params = parameter.get_params(values['task_id'], overrides)
    extract(params)
    return 0


if __name__ == '__main__':
    utils.run_cli(main)

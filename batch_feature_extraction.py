"""Extract features and labels of one dataset / overlap / split / SNR and normalize them.

Usage::

    python batch_feature_extraction.py [task-id] [key=value ...]
    python batch_feature_extraction.py 999 dataset_dir=/data/ansim feat_label_dir=/tmp/feat

With the default ``dataset_dir`` and ``dataset=ansim``, a missing dataset is the embedded default: a
small SYNTHETIC ANSIM look-alike is synthesized first (see synthesize_dataset.py). Any other missing
dataset is an error that says how to get data. Re-running skips files already extracted with the
same parameters, so an interrupted run resumes.

Two passes (cls_feature_class.py): labels and the statistics of the train files' features, then the scaler and the
standardized features, computed again and written once. Across processes or machines (a shared folder for
``feat_label_dir``; see benchmarks/README.md), run every shard's ``stats`` stage, then every shard's
``features`` stage::

    python batch_feature_extraction.py 1 nb_shards=4 shard_index=0 stage=stats      # ... one per shard, 0..3
    python batch_feature_extraction.py 1 nb_shards=4 shard_index=0 stage=features   # ... after all stats are done

Shard ``k`` of ``n`` takes the sorted files ``i`` with ``i % n == k``. Every file is written to a temporary name
and renamed, so a file under its final name is complete, and a re-run (or a second machine) skips files already
done.
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


STAGES = ('all', 'stats', 'features')


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


def write_features(fc: FeatureClass, params: dict[str, Any], stems: list[str] | None, *, progress: bool) -> int:
    """Fit the scaler on every train file's statistics, then write the standardized features of ``stems``.

    Every file must have been analyzed (all shards' stats stage finished) with the same feature parameters;
    a missing file or other parameters are an error.
    """
    made = utils.read_json(fc.manifest_file).get('config') if os.path.exists(fc.manifest_file) else None
    if made != fc.config():
        raise utils.SELDError(f'{fc.manifest_file}: ' + ('missing' if made is None else 'the labels and statistics '
                              'were made with other feature parameters') + '; run stage=stats (every shard) first')
    missing = [s for s in fc.file_stems() if not fc.is_analyzed(s)]
    if missing:
        raise utils.SELDError(f'{fc.label_dir}: {len(missing)} file(s) without labels/statistics yet (e.g. '
                              f'{missing[:3]}); wait for every shard\'s stats stage to finish (or re-run the missing '
                              f'shard), then run stage=features')
    fc.fit_scaler()
    return fc.write_features_all(n_jobs=params['n_jobs'], stems=stems, progress=progress)


def extract(params: dict[str, Any], *, progress: bool = True) -> FeatureClass:
    """Labels, statistics, scaler and normalized features for the parameters' dataset/ov/split/db.

    ``stage=all`` does everything for all files (for this shard's files only the stats when ``nb_shards > 1``);
    ``stage=stats`` only the labels and statistics of this shard's files; ``stage=features`` the scaler and this
    shard's features, once every shard's statistics exist.
    """
    _check_sharding(params)
    stage, nb_shards, k = params['stage'], params['nb_shards'], params['shard_index']
    if nb_shards > 1 or stage == 'features':
        FeatureClass(params).check_dataset()  # shards never synthesize (they would race): the data must exist
    else:
        ensure_dataset(params)
    fc = FeatureClass(params)
    t0 = time.time()  # extraction only (not the synthesis of the embedded default, which prints its own time)
    stems = fc.file_stems() if nb_shards == 1 else shard_stems(fc.file_stems(), nb_shards, k)
    minutes = len(stems) * params['clip_len_s'] / 60
    shard = f'shard {k}/{nb_shards}: ' if nb_shards > 1 else ''
    same = f'(same other key=value{f", shard_index={k} on each shard" if nb_shards > 1 else ""})'
    if stage == 'features':
        written = write_features(fc, params, stems, progress=progress)
        print(f'{shard}normalized features: {len(stems)} files ({written} written, {len(stems) - written} already '
              f'done), {minutes:.1f} min of audio, {time.time() - t0:.1f} s -> {fc.feat_dir_norm}')
        return fc
    summary = fc.analyze_all(n_jobs=params['n_jobs'], stems=stems, progress=progress)
    if stage == 'stats' or nb_shards > 1:
        print(f'{shard}labels and statistics: {summary["files"]} files ({summary["analyzed"]} analyzed, '
              f'{summary["skipped"]} already done), {time.time() - t0:.1f} s -> {fc.feat_label_dir}; when every '
              f'shard is done, run `python batch_feature_extraction.py {params["task_id"]} stage=features` {same}')
        return fc
    written = write_features(fc, params, stems, progress=progress)
    print(f'features: {len(stems)} files ({written} written, {len(stems) - written} already done), '
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

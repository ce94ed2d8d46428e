"""Extract features and labels of one dataset / overlap / split / SNR and normalize them.

Usage::

    python batch_feature_extraction.py [task-id] [key=value ...]
    python batch_feature_extraction.py 999 dataset_dir=/data/ansim feat_label_dir=/tmp/feat

With the default ``dataset_dir`` and ``dataset=ansim``, a missing dataset is the embedded default: a
small SYNTHETIC ANSIM look-alike is synthesized first (see synthesize_dataset.py). Any other missing
dataset is an error that says how to get data. Re-running skips files already extracted with the
same parameters, so an interrupted run resumes.
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
    synthesize_dataset.synthesize(
        dataset_dir=params['dataset_dir'], dataset='ansim', overlap=params['overlap'], split=params['split'],
        db=params['db'], nb_train=params['synth_nb_train'], nb_test=params['synth_nb_test'],
        clip_len_s=params['clip_len_s'], fs=params['fs'], seed=params['synth_seed'],
        n_jobs=params['n_jobs'])


def extract(params: dict[str, Any], *, progress: bool = True) -> FeatureClass:
    """Features, labels, scaler and normalized features for the parameters' dataset/ov/split/db."""
    t0 = time.time()
    ensure_dataset(params)
    fc = FeatureClass(params)
    summary = fc.extract_all(n_jobs=params['n_jobs'], progress=progress)
    fc.fit_scaler()
    fc.normalize_all(n_jobs=params['n_jobs'], progress=progress)
    minutes = summary['files'] * params['clip_len_s'] / 60
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

"""Do the BatchNorm moving statistics lag behind the weights? A diagnosis of epoch-to-epoch swings (issue 14).

For each run folder, the selected model (``model.keras``, or another of the run's model files with ``--model``) is
scored on the validation split twice:

1. as trained: BatchNormalization normalizes with its moving statistics (momentum ``bn_momentum``);
2. with **re-estimated statistics** ("precise BN"): the moving mean and variance of every BatchNormalization layer
   replaced by the average of its batch statistics over the whole train split (no augmentation), computed with the
   selected weights.

If (2) scores clearly better than (1), the moving statistics were stale: they average batch statistics over the last
``~1 / (1 - momentum)`` steps (100 steps at 0.99), during which the weights below moved, so the network is evaluated
with normalization statistics of older weights; that error changes from epoch to epoch as the weights do. The script
also prints the epoch-to-epoch swing of the validation SELD score from ``metrics.csv``, over all epochs and over the
second half (where a learning-rate schedule has lowered the rate).

Usage::

    python benchmarks/diag_bn_lag.py runs/ansim_ov1_split1_1 runs/ansim_ov1_split1_bn099
    python benchmarks/diag_bn_lag.py runs/ansim_ov1_split1_1 --model checkpoint/last.keras

Run it from the repository root, with the features of the runs still in their ``feat_label_dir``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras_model  # noqa: E402
import checkpointing  # noqa: E402
import seld  # noqa: E402
from cls_data_generator import DataGenerator  # noqa: E402
from cls_feature_class import FeatureClass  # noqa: E402


def swings(run_dir: str, metric: str) -> tuple[float, float, float, float, int]:
    """Mean and largest absolute change of the validation ``metric`` between consecutive epochs, over all epochs and
    over the second half of them (where a run selects its model), and the number of epochs."""
    rows = checkpointing.read_metrics_csv(os.path.join(run_dir, 'metrics.csv'))
    v = np.array([r[f'val/{metric}'] for r in rows], dtype=float)
    d = np.abs(np.diff(v))
    late = d[len(v) // 2:]  # the changes into the epochs of the second half

    def stats(x: np.ndarray) -> tuple[float, float]:
        return (float(x.mean()), float(x.max())) if x.size else (float('nan'), float('nan'))

    return (*stats(d), *stats(late), len(v))


def reestimate_batchnorm(model, gen: DataGenerator) -> int:
    """Set every BatchNormalization layer's moving statistics to the mean of its batch statistics over ``gen``."""
    import keras

    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    probe = keras.Model(model.inputs, [bn.input for bn in bns])
    sums = [None] * len(bns)
    for b in range(len(gen)):
        x = gen[b][0]
        outs = probe.predict_on_batch(x)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        for i, o in enumerate(outs):
            o = np.asarray(keras.ops.convert_to_numpy(o), dtype=np.float64)
            axes = tuple(range(o.ndim - 1))
            stats = np.stack([o.mean(axis=axes), o.var(axis=axes)])
            sums[i] = stats if sums[i] is None else sums[i] + stats
    for bn, s in zip(bns, sums):
        mean, var = s / len(gen)
        bn.moving_mean.assign(mean.astype('float32'))
        bn.moving_variance.assign(var.astype('float32'))
    return len(bns)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('runs', nargs='+', help='seld.py run folders')
    ap.add_argument('--model', default='model.keras',
                    help='model file in each run folder (default: the selected model; checkpoint/last.keras: the '
                         'last epoch, e.g. one the validation score swung away from)')
    args = ap.parse_args()
    rows = []
    for run in args.runs:
        params = json.load(open(os.path.join(run, 'params.json')))['params']
        metric = params['early_stop_metric']
        definition, key = metric.split('/')
        fc = FeatureClass(params)
        val = DataGenerator(params, split='val', feat_class=fc)
        train = DataGenerator(dict(params, augment=False), split='train', shuffle=False, feat_class=fc)
        model = keras_model.load_model(os.path.join(run, args.model))
        before = seld.evaluate_split(model, val, params)[0]
        reestimate_batchnorm(model, train)
        after = seld.evaluate_split(model, val, params)[0]
        mean_swing, max_swing, late_mean, late_max, epochs = swings(run, metric)
        schedule = f"{params.get('lr_schedule', 'constant')} {params['learning_rate']:g}"
        rows.append((os.path.basename(run.rstrip('/')), params['bn_momentum'], schedule, epochs, mean_swing, max_swing,
                     late_mean, late_max, before['loss'], after['loss'], before[definition][key],
                     after[definition][key]))
    print(f'| run | bn_momentum | learning rate | epochs | val {metric}: mean / max change between epochs | the same, '
          f'second half | val loss: moving / re-estimated BN stats | val {metric}: moving / re-estimated |')
    print('|---|---|---|---|---|---|---|---|')
    for r in rows:
        print(f'| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.3f} / {r[5]:.3f} | {r[6]:.3f} / {r[7]:.3f} | '
              f'{r[8]:.4f} / {r[9]:.4f} ({r[9] / r[8]:.3f}x) | {r[10]:.4f} / {r[11]:.4f} |')
    print(f'diag_bn_lag: {len(rows)} runs scored with moving and re-estimated BatchNorm statistics')


if __name__ == '__main__':
    main()

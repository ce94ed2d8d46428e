"""GPU benchmark: training throughput of SELDnet on one GPU, against a PyTorch-native SELDnet, plus an end-to-end run.

Runs under the Keras backend of ``KERAS_BACKEND`` (if unset: the first installed of tensorflow, jax, torch) and
needs none of the others: TensorFlow is imported only on the TensorFlow backend. Everything runs in this one
process, in this order, and ends with one summary table (markdown):

1. the default SELDnet of keras_model.py (4 channels -> 8 maps, 512 frames, 256 bins, 11 classes, batch 16;
   Keras 3's GRU, which runs cuDNN on a GPU): training steps/s and sequences/s (``train_on_batch`` on one batch
   already on the device; the first step, with compilation, timed apart);
2. the same under the ``mixed_bfloat16`` policy;
3. the same with ``gru_type='original'`` (the paper code's GRU: no cuDNN), fewer steps;
4. where PyTorch is installed: a PyTorch-native SELDnet built here with the same shapes and parameter count
   (``torch.nn.Conv2d``, ``BatchNorm2d``, ``MaxPool2d``, bidirectional ``torch.nn.GRU`` (cuDNN), ``Linear``;
   Adam, binary cross-entropy + 50 x MSE), float32 and under ``torch.autocast(bfloat16)``: the peer a user would
   pick instead;
5. end to end: synthesize a paper-sized ANSIM look-alike (240 + 60 clips of 30 s: ``synthesize_dataset``),
   extract its features (``batch_feature_extraction.extract``), train 3 epochs with seld.py's ``train`` and report
   seconds per epoch (each epoch includes the evaluation of the 60 test clips; the first includes compilation).
   The features take ~13 GB on disk (``--work``); the folder is removed afterwards unless ``--keep``.

``--quick`` runs the same path with tiny sizes in about a minute on a CPU (the test suite runs it under JAX).

    python benchmarks/bench_gpu.py                       # on the GPU machine; < 8 minutes
    KERAS_BACKEND=jax python benchmarks/bench_gpu.py     # or torch / tensorflow
    python benchmarks/bench_gpu.py --quick [--json out.json]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.dirname(os.path.abspath(__file__))]

if 'KERAS_BACKEND' not in os.environ:  # whichever backend is installed (Keras' default, tensorflow, may be absent)
    os.environ['KERAS_BACKEND'] = next((b for b in ('tensorflow', 'jax', 'torch') if importlib.util.find_spec(b)),
                                       'tensorflow')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('TF_FORCE_GPU_ALLOW_GROWTH', 'true')  # TensorFlow and JAX would otherwise take the whole
os.environ.setdefault('XLA_PYTHON_CLIENT_PREALLOCATE', 'false')  # GPU and leave nothing to PyTorch

FULL = dict(batch=16, frames=512, bins=256, channels=4, classes=11, filters=64, pool=(8, 8, 2), rnn=(128, 128),
            fnn=(128,), steps=20, nb_train=240, nb_test=60, clip_len_s=30.0, epochs=3, n_jobs=-1)
QUICK = dict(batch=2, frames=32, bins=32, channels=4, classes=11, filters=8, pool=(4, 4, 2), rnn=(16,), fnn=(16,),
             steps=3, nb_train=4, nb_test=2, clip_len_s=2.0, epochs=3, n_jobs=1)
E2E_QUICK_MODEL = dict(sequence_length=64, batch_size=4, nb_cnn2d_filt=8, rnn_size=[16], fnn_size=[16])


def device_name() -> str:
    import keras
    backend = keras.backend.backend()
    if backend == 'jax':
        import jax
        d = jax.devices()[0]
        return f'{d.platform}: {getattr(d, "device_kind", d)} (x{len(jax.devices())})'
    if backend == 'torch':
        import torch
        if torch.cuda.is_available():
            return f'cuda: {torch.cuda.get_device_name(0)} (x{torch.cuda.device_count()})'
        return f'cpu: {platform.processor() or platform.machine()}'
    import tensorflow as tf
    gpus = tf.config.list_physical_devices('GPU')
    if gpus:
        return f'gpu: {tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)} (x{len(gpus)})'
    return f'cpu: {platform.processor() or platform.machine()}'


def fake_batch(s: dict, rng):
    import numpy as np
    x = rng.standard_normal((s['batch'], s['frames'], s['bins'], 2 * s['channels']), dtype=np.float32)
    sed = (rng.random((s['batch'], s['frames'], s['classes'])) > 0.9).astype(np.float32)
    doa = rng.uniform(-1, 1, (s['batch'], s['frames'], 3 * s['classes'])).astype(np.float32)
    return x, sed, doa


def keras_row(s: dict, *, mixed_precision: str = 'none', gru_type: str = 'cudnn', steps: int) -> dict:
    """Time ``train_on_batch`` of keras_model.get_model on one batch already on the device."""
    import keras
    import numpy as np

    import keras_model
    from bench_training import time_train_steps
    keras.utils.set_random_seed(0)
    x, sed, doa = fake_batch(s, np.random.default_rng(0))
    model = keras_model.get_model(nb_frames=s['frames'], nb_bins=s['bins'], nb_channels=s['channels'],
                                  nb_classes=s['classes'], nb_cnn2d_filt=s['filters'], pool_size=s['pool'],
                                  rnn_size=s['rnn'], fnn_size=s['fnn'], gru_type=gru_type,
                                  mixed_precision=mixed_precision)
    to = keras.ops.convert_to_tensor
    first, times = time_train_steps(model, to(x), {'sed_out': to(sed), 'doa_out': to(doa)}, steps)
    return dict(params=model.count_params(), first_s=first, times=times)


def torch_seldnet(s: dict):
    """SELDnet in plain PyTorch (NCHW): the layers of keras_model.get_model, the same parameter shapes."""
    import torch
    from torch import nn

    class SELDnet(nn.Module):
        def __init__(self):
            super().__init__()
            blocks, cin = [], 2 * s['channels']
            for p in s['pool']:  # BatchNorm momentum/epsilon as Keras' (0.99 moving average, 1e-3)
                blocks += [nn.Conv2d(cin, s['filters'], 3, padding=1), nn.BatchNorm2d(s['filters'], eps=1e-3,
                           momentum=0.01), nn.MaxPool2d((1, p)), nn.ReLU()]
                cin = s['filters']
            self.cnn = nn.Sequential(*blocks)
            prod = 1
            for p in s['pool']:
                prod *= p
            feat = s['bins'] // prod * s['filters']
            self.grus = nn.ModuleList()
            for u in s['rnn']:
                self.grus.append(nn.GRU(feat, u, batch_first=True, bidirectional=True))
                feat = u

            def head(nb_out):
                layers, d = [], feat
                for u in s['fnn']:
                    layers.append(nn.Linear(d, u))
                    d = u
                return nn.Sequential(*layers, nn.Linear(d, nb_out))

            self.doa, self.sed = head(3 * s['classes']), head(s['classes'])

        def forward(self, x):  # x: (batch, frames, bins, maps), as the Keras model's input
            h = self.cnn(x.permute(0, 3, 1, 2))  # (batch, filters, frames, bins')
            h = h.permute(0, 2, 3, 1).flatten(2)  # (batch, frames, bins' * filters): Keras' Reshape order
            for gru in self.grus:
                out, _ = gru(h)
                u = gru.hidden_size
                h = out[..., :u] * out[..., u:]  # merge_mode='mul'
            return torch.sigmoid(self.sed(h)), torch.tanh(self.doa(h))

    return SELDnet()


def torch_row(s: dict, *, bf16: bool, steps: int) -> dict:
    import numpy as np
    import torch
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    torch.manual_seed(0)
    model = torch_seldnet(s).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    x, sed, doa = (torch.from_numpy(a).to(device) for a in fake_batch(s, np.random.default_rng(0)))

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
            p_sed, p_doa = model(x)
        loss = (torch.nn.functional.binary_cross_entropy(p_sed.float(), sed)
                + 50.0 * torch.nn.functional.mse_loss(p_doa.float(), doa))
        loss.backward()
        opt.step()
        return loss.item()  # waits for the GPU

    model.train()
    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    trainable = sum(p.numel() for p in model.parameters())
    stats = sum(b.numel() for name, b in model.named_buffers() if 'running' in name)
    return dict(params=trainable + stats, first_s=first, times=times, torch=torch.__version__, device=device)


def end_to_end(s: dict, *, work: str, quick: bool) -> dict:
    """Synthesize, extract and train ``epochs`` epochs with the project's own functions."""
    import batch_feature_extraction
    import parameter
    import checkpointing
    import seld
    from synth import tut2018
    out = {}
    data = os.path.join(work, 'ansim')
    t0 = time.perf_counter()
    tut2018.synthesize(dataset_dir=data, dataset='ansim', nb_train=s['nb_train'], nb_test=s['nb_test'],
                       clip_len_s=s['clip_len_s'], seed=2018, n_jobs=s['n_jobs'], progress=False)
    out['synthesis_s'] = time.perf_counter() - t0
    overrides = dict(dataset_dir=data, feat_label_dir=os.path.join(work, 'features'),
                     model_dir=os.path.join(work, 'runs'), nb_epochs=s['epochs'],
                     patience=s['epochs'], **(E2E_QUICK_MODEL if quick else {}))
    params = parameter.get_params('1', overrides)
    t0 = time.perf_counter()
    batch_feature_extraction.extract(params, progress=False)
    out['extraction_s'] = time.perf_counter() - t0
    t0 = time.perf_counter()
    results = seld.train(params, 'bench_gpu')
    out['training_s'] = time.perf_counter() - t0
    rows = checkpointing.read_metrics_csv(os.path.join(seld.run_dir_for(params, 'bench_gpu'), 'metrics.csv'))
    out['epoch_s'] = [r['epoch_time_s'] for r in rows]
    out['seld_score'] = results['test']['seld2018']['seld_score']
    out['batches'] = f'{params["batch_size"]} x {params["sequence_length"]} frames'
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--quick', action='store_true', help='tiny sizes (a CPU smoke run of the same path)')
    ap.add_argument('--steps', type=int, default=None, help='timed training steps per model row (default 20)')
    ap.add_argument('--no-e2e', action='store_true', help='skip the end-to-end run')
    ap.add_argument('--work', default=None, help='folder for the end-to-end data (default: a temporary folder)')
    ap.add_argument('--keep', action='store_true', help='keep the end-to-end data and run folder')
    ap.add_argument('--json', default=None, help='also write the results to this JSON file')
    args = ap.parse_args()
    s = dict(QUICK if args.quick else FULL)
    if args.steps:
        s['steps'] = args.steps
    t_start = time.perf_counter()
    import keras
    import numpy as np
    backend = keras.backend.backend()
    lib = sys.modules[backend].__version__ if backend in sys.modules else '?'
    head = (f'GPU benchmark{" (--quick: tiny sizes)" if args.quick else ""}: {device_name()}; Keras {keras.__version__} '
            f'on {backend} {lib}; batch {s["batch"]} x {s["frames"]} frames x {s["bins"]} bins x '
            f'{2 * s["channels"]} maps; {time.strftime("%Y-%m-%d %H:%M")}; load average '
            f'{" ".join(f"{v:.2f}" for v in os.getloadavg())}')
    print(head, flush=True)
    rows: list[tuple[str, dict]] = []

    def report(name: str, r: dict) -> None:
        r['step_s'] = float(np.median(r['times']))
        rows.append((name, r))
        print(f'{name}: first step {r["first_s"]:.1f} s, {1 / r["step_s"]:.2f} steps/s = '
              f'{s["batch"] / r["step_s"]:.1f} seq/s (median of {len(r["times"])} steps)', flush=True)

    report(f'Keras ({backend}) SELDnet, float32', keras_row(s, steps=s['steps']))
    report(f'Keras ({backend}) SELDnet, mixed_bfloat16', keras_row(s, mixed_precision='mixed_bfloat16',
                                                                  steps=s['steps']))
    report(f'Keras ({backend}) SELDnet, float32, gru_type=original (no cuDNN)',
           keras_row(s, gru_type='original', steps=max(3, s['steps'] // 4)))
    if importlib.util.find_spec('torch'):
        r = torch_row(s, bf16=False, steps=s['steps'])
        report(f'PyTorch-native SELDnet (torch.nn.GRU), float32, torch {r["torch"]} on {r["device"]}', r)
        report('PyTorch-native SELDnet (torch.nn.GRU), bfloat16 autocast', torch_row(s, bf16=True, steps=s['steps']))
    else:
        print('PyTorch is not installed: no PyTorch-native rows')
    e2e = None
    if not args.no_e2e:
        work = args.work or tempfile.mkdtemp(prefix='bench_gpu_')
        try:
            e2e = end_to_end(s, work=work, quick=args.quick)
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
    print()
    print(head)
    print()
    print('| what | parameters | first step (s) | steps/s | sequences/s | s/step |')
    print('|---|---|---|---|---|---|')
    for name, r in rows:
        print(f'| {name} | {r["params"]:,} | {r["first_s"]:.1f} | {1 / r["step_s"]:.2f} | {s["batch"] / r["step_s"]:.1f}'
              f' | {r["step_s"]:.4f} |')
    if e2e:
        print(f'| end to end: synthesize {s["nb_train"]} + {s["nb_test"]} clips of {s["clip_len_s"]:.0f} s | | | | | '
              f'{e2e["synthesis_s"]:.1f} s |')
        print(f'| end to end: extract features | | | | | {e2e["extraction_s"]:.1f} s |')
        print(f'| end to end: train {s["epochs"]} epochs (batches of {e2e["batches"]}; each epoch includes the test '
              f'evaluation, the first compilation) | | | | | {" / ".join(f"{t:.1f}" for t in e2e["epoch_s"])} s per '
              f'epoch; {e2e["training_s"]:.1f} s in all; SELD score {e2e["seld_score"]:.3f} |')
    tf_loaded = sys.modules.get('tensorflow') is not None
    print(f'\ntotal {time.perf_counter() - t_start:.0f} s; tensorflow imported: {"yes" if tf_loaded else "no"}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(head=head, backend=backend, rows=[dict(name=n, **r) for n, r in rows], e2e=e2e,
                           tensorflow_imported=tf_loaded), f, indent=1)


if __name__ == '__main__':
    main()

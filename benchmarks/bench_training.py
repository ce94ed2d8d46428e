"""Benchmark: training throughput of the default SELDnet (4 channels -> 8 input maps, 512 frames, 256 bins,
batch 16, 11 classes) as steps/s, sequences/s and achieved FLOP/s as a share of this machine's float32
matmul peak (measured in the same process, same thread settings), plus the time to the first step.

Every variant runs in a fresh subprocess (thread settings and the mixed-precision policy must be set
before TensorFlow starts; the first step includes graph tracing):

* ``reference``  the model as written before issue 5: ReLU before max-pooling, ``TimeDistributed(Dense)``
  (built here, same weights and function as keras_model.py);
* ``ref+dense``  the reference with ``Dense`` on the 3-D sequence instead of ``TimeDistributed(Dense)``;
* ``project``    ``keras_model.get_model``: Dense, ReLU after pooling, stock ``BatchNormalization`` and
  ``Bidirectional(GRU)`` (``gru_type='cudnn'``);
* ``project-original``  the same with the paper code's GRU (``gru_type='original'``);
* ``project-bf16``, ``project-fp16``  under the ``mixed_bfloat16`` / ``mixed_float16`` policy (``mixed_precision``);
* ``project-inter1``  (TensorFlow) with ``tf.config.threading.set_inter_op_parallelism_threads(1)``;
* ``project-noonednn`` (TensorFlow) with ``TF_ENABLE_ONEDNN_OPTS=0``;
* ``<variant>-xla``   any of the above with ``jit_compile=True`` (XLA for the whole train step on TensorFlow and
  JAX, ``torch.compile`` on PyTorch), e.g. ``project-xla``; the others use ``jit_compile='auto'`` (JAX: XLA;
  TensorFlow on a CPU: none; PyTorch: eager).

Against the peer (``--peer-official DIR``, DIR holding a clone of github.com/sharathadavanne/seld-dcase2023 as
``seld-dcase2023``): the DCASE 2023 baseline, the PyTorch program its users would otherwise run, trained on this
machine beside ours at the same batch and sequence (``--peer-batch`` sequences of 250 feature frames x 64 mel bands
x 7 maps, FOA log-mel + intensity vectors; targets: 50 label frames of Multi-ACCDOA with ADPIT, ``(batch, 50, 6, 4,
13)`` for both, as ``multitrack_labels.adpit_labels`` and the official data generator give them):

* ``official-dcase2023``  the official ``SeldModel`` from the clone as ``train_seldnet.py`` builds it (its own
  ``parameters.py`` defaults, task 3: FOA + Multi-ACCDOA), trained as its ``train_epoch`` does: ``torch.optim.Adam``
  (its ``lr``), ``MSELoss_ADPIT``, ``zero_grad`` / forward / ``backward`` / ``step`` / ``loss.item()``, on the CPU
  with PyTorch's default threads (one per core, as TensorFlow's intra-op pool) or ``--peer-threads``, eager;
* ``dcase2023_baseline``  ours: ``keras_model.get_model`` with task-id ``dcase2023_baseline``'s parameters
  (``compare_official_baselines.ours_model``), ``keras_model.compile_model`` (Adam at the task's learning rate,
  ``losses.adpit_mse``) and, as seld.py, ``cpu_kernels.use_fused_batchnorm`` (``fused_batchnorm=auto``: TensorFlow's
  fused BatchNorm kernel on a TensorFlow CPU), ``train_on_batch``; under each of ``--backends``.

The official model and its loss are loaded with compare_official_baselines.py's helpers (nothing of the official
code is copied here). Both get the same seeded random features and targets (``random_multitrack``: 0 to 4
instances of a class per frame). Without ``--variants`` only these two run; the printout ends with the steps/s of
each and the ratio ours / official per backend (>1: ours is faster), per round and the median over rounds.
``--peer-threads N`` gives every one of these processes N threads (PyTorch ``set_num_threads``, TensorFlow's intra-
and inter-op pools; JAX: N = 1 only, by ``XLA_FLAGS``); by default each library takes its own (one per core). On
a machine whose cores are busy with other work, PyTorch's default OpenMP threads wait at every parallel region for
the one that has no core, and TensorFlow's work-stealing pool does not (benchmarks/README.md: the official step
took 1.5-5.2 s with 2 threads, 0.8-1.3 s with 1, at a load of 5-6 on 2 cores): compare at ``--peer-threads 1`` there.

It runs under the Keras backend of ``KERAS_BACKEND`` (TensorFlow by default, JAX or PyTorch), or under each of
``--backends`` in turn within one run (so that they meet the same machine load); the TensorFlow-only variants are
skipped on the others. The custom CPU kernels that keras_model.py had until issue 13
(``FusedBatchNormalization``, ``FusedBidirectionalGRU``) and their variants are gone: their measurements are in
benchmarks/README.md and in the git history of this file.

FLOP convention (printed): forward FLOPs = 2 x multiply-accumulates of every convolution, GRU and dense
matmul, plus the GRU's element-wise gate arithmetic (~15 per unit per step, transcendental = 1);
BatchNorm, ReLU, pooling, biases and the loss are not counted. Training FLOPs = 3 x forward (backward =
gradient w.r.t. inputs + w.r.t. weights). The count without conv1's input gradient (never computed) is
printed too. Steps use ``train_on_batch`` on one in-memory batch (the input pipeline is measured in
bench_streaming.py).

    python benchmarks/bench_training.py [--steps 5] [--quick] [--variants reference,project,...] [--rounds 2]
    KERAS_BACKEND=jax python benchmarks/bench_training.py --quick
    python benchmarks/bench_training.py --steps 3 --variants project --backends tensorflow,jax,torch
    python benchmarks/bench_training.py --peer-official DIR --backends tensorflow,jax,torch --steps 3 --rounds 2 \
        [--peer-threads 1] [--peer-batch 16]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT]

from utils import SELDError, run_cli  # noqa: E402

B, T, BINS, CH, NC = 16, 512, 256, 4, 11
FILT, POOL, RNN, FNN = 64, (8, 8, 2), (128, 128), (128,)
VARIANTS = ('reference', 'ref+dense', 'project', 'project-fusedbn', 'project-original', 'project-inter1',
            'project-noonednn',
            'project-bf16', 'project-fp16', 'project-xla')
TF_ONLY = ('project-inter1', 'project-noonednn', 'project-fusedbn')
REFERENCES = {  # models built here: the pre-issue-5 layer choices, then one change at a time
    'reference': dict(time_distributed=True),
    'ref+dense': dict(time_distributed=False),
}
PRECISION = {'bf16': 'mixed_bfloat16', 'fp16': 'mixed_float16'}
OURS_PEER, OFFICIAL_PEER = 'dcase2023_baseline', 'official-dcase2023'  # the --peer-official comparison
PEER_FRAMES, PEER_BANDS, PEER_MAPS, PEER_LABELS, PEER_CLASSES = 250, 64, 7, 50, 13


def time_train_steps(model, x, y, steps: int) -> tuple[float, list[float]]:
    """Seconds of the first ``train_on_batch`` (graph tracing included) and of each of ``steps`` later ones."""
    t0 = time.perf_counter()
    model.train_on_batch(x, y)
    first = time.perf_counter() - t0
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - t0)
    return first, times


def flops_per_sequence() -> dict[str, float]:
    """Analytic forward FLOPs of one sequence of the default model, per layer group."""
    out: dict[str, float] = {}
    f, cin = BINS, 2 * CH
    for i, p in enumerate(POOL):
        out[f'conv{i + 1}'] = 2 * 3 * 3 * cin * FILT * T * f  # 'same' padding: output T x f
        f, cin = f // p, FILT
    feat = f * FILT
    for i, u in enumerate(RNN):
        mm = 2 * 3 * (feat * u + u * u)  # per step per direction
        elem = 15 * u
        out[f'bigru{i + 1}'] = 2 * T * (mm + elem) + T * u  # 2 directions + the 'mul' merge
        feat = u
    for name, nb_out in (('doa', 3 * NC), ('sed', NC)):
        d = feat
        tot = 0
        for u in FNN:
            tot += 2 * d * u * T
            d = u
        out[f'{name}_dense'] = tot + 2 * d * nb_out * T
    return out


# --------------------------------------------------------------------------------------------------
def reference_model(*, time_distributed: bool = True, jit_compile: bool | str = 'auto'):
    """SELDnet as keras_model.py built it before issue 5 (ReLU before pooling; ``TimeDistributed(Dense)`` unless
    ``time_distributed=False``); stock layers, the same weights as keras_model.get_model's."""
    import keras
    from keras import layers

    import keras_model
    x = inp = keras.Input(shape=(T, BINS, 2 * CH), name='spec')
    for i, p in enumerate(POOL):
        x = layers.Conv2D(FILT, (3, 3), padding='same', name=f'conv{i + 1}')(x)
        x = layers.BatchNormalization(name=f'bn{i + 1}')(x)
        x = layers.Activation('relu', name=f'relu{i + 1}')(x)
        x = layers.MaxPooling2D(pool_size=(1, p), name=f'pool{i + 1}')(x)
        x = layers.Dropout(0.0, name=f'drop{i + 1}')(x)
    x = layers.Reshape((T, (BINS // 128) * FILT), name='to_sequence')(x)
    for i, u in enumerate(RNN):
        x = layers.Bidirectional(layers.GRU(u, activation='tanh', return_sequences=True), merge_mode='mul',
                                 name=f'bigru{i + 1}')(x)

    def dense(units, name):
        return layers.TimeDistributed(layers.Dense(units), name=name) if time_distributed \
            else layers.Dense(units, name=name)

    def head(name, nb_out, act):
        h = x
        for j, u in enumerate(FNN):
            h = dense(u, f'{name}_fc{j + 1}')(h)
            h = layers.Dropout(0.0, name=f'{name}_drop{j + 1}')(h)
        h = dense(nb_out, f'{name}_fc_out')(h)
        return layers.Activation(act, name=f'{name}_out', dtype='float32')(h)

    doa, sed = head('doa', 3 * NC, 'tanh'), head('sed', NC, 'sigmoid')
    model = keras.Model(inputs=inp, outputs={'sed_out': sed, 'doa_out': doa}, name='seldnet')
    keras_model.compile_model(model, jit_compile=jit_compile)
    return model


def matmul_peak(n: int = 4096, runs: int = 7) -> float:
    """Best float32 FLOP/s of an ``n x n`` matmul through ``keras.ops`` on this backend (same threads as training)."""
    import keras
    import numpy as np
    rng = np.random.default_rng(0)
    a, b = (keras.ops.convert_to_tensor(rng.standard_normal((n, n), dtype=np.float32)) for _ in range(2))

    def run():
        return float(keras.ops.convert_to_numpy(keras.ops.sum(keras.ops.matmul(a, b))))  # waits for the result

    run()
    best = float('inf')
    for _ in range(runs):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best


def thread_settings() -> str:
    import keras
    backend = keras.backend.backend()
    if backend == 'tensorflow':
        import tensorflow as tf
        return (f'intra {tf.config.threading.get_intra_op_parallelism_threads()}, '
                f'inter {tf.config.threading.get_inter_op_parallelism_threads()}')
    if backend == 'torch':
        import torch
        return f'torch threads {torch.get_num_threads()}'
    flags = os.environ.get('XLA_FLAGS', '')
    return f'XLA threads: {flags}' if 'intra_op' in flags else 'XLA default threads'


def limit_threads(threads: int) -> None:
    """``--peer-threads``: the thread pools of this process's library (before any op runs; JAX's flags are set by
    :func:`run_variant` in the environment)."""
    if not threads:
        return
    if 'torch' in sys.modules:
        import torch
        torch.set_num_threads(threads)
    if 'tensorflow' in sys.modules:
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def peer_batch(batch: int) -> tuple:
    """Seeded random features ``(batch, 7, 250, 64)`` (the official NCHW layout; ours is its transpose to
    ``(batch, 250, 64, 7)``) and Multi-ACCDOA targets ``(batch, 50, 6, 4, 13)``, the same for both sides."""
    import numpy as np
    from compare_official_baselines import random_multitrack
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, PEER_MAPS, PEER_FRAMES, PEER_BANDS), dtype=np.float32)
    y = random_multitrack(rng, batch=batch, frames=PEER_LABELS, classes=PEER_CLASSES, values=3)
    return x, y


def official_child(official: str, steps: int, batch: int, threads: int = 0) -> None:
    """Time the official DCASE 2023 training step (module docstring) in this process; print its RESULT line."""
    t_start = time.perf_counter()
    import torch

    import compare_official_baselines as cob
    from compare_official_metrics import import_file, legacy_environment
    t_import = time.perf_counter() - t_start
    limit_threads(threads)
    folder = os.path.join(official, cob.REPOS[2023])
    torch.manual_seed(0)
    x, y = peer_batch(batch)
    t0 = time.perf_counter()
    model = cob.torch_model(folder, 2023)  # SeldModel((1, 7, 250, 64), (1, 50, 117), get_params('3'))
    with legacy_environment():
        criterion = import_file(os.path.join(folder, 'seldnet_model.py'), 'official_loss_2023').MSELoss_ADPIT()
    lr = cob.official_params(folder, 2023)['lr']
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    t_build = time.perf_counter() - t0

    def step() -> float:  # train_seldnet.train_epoch's body
        data, target = torch.tensor(x).float(), torch.tensor(y).float()
        optimizer.zero_grad()
        loss = criterion(model(data), target)
        loss.backward()
        optimizer.step()
        return loss.item()

    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    step()
    t_first = time.perf_counter() - t0
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    load_after = os.getloadavg()[0]
    params = sum(t.numel() for t in model.parameters())
    stats = sum(t.numel() for n, t in model.named_buffers() if n.endswith(('running_mean', 'running_var')))
    print('RESULT ' + json.dumps(dict(variant=OFFICIAL_PEER, backend=f'torch {torch.__version__}',
                                      params=params + stats, import_s=t_import, build_s=t_build,
                                      first_step_s=t_first, steps=times,
                                      peak_flops=None, check_max_abs_diff=None, load=(load_before, load_after),
                                      threads=f'torch threads {torch.get_num_threads()}', jit_compile=False,
                                      learning_rate=lr)))


def child(variant: str, steps: int, *, official: str | None = None, batch: int = 16, threads: int = 0) -> None:
    if variant == OFFICIAL_PEER:
        official_child(official, steps, batch, threads)
        return
    t_start = time.perf_counter()
    xla = variant.endswith('-xla')
    base = variant[:-len('-xla')] if xla else variant
    import numpy as np
    if base.endswith('inter1'):
        import tensorflow as tf
        tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    import keras_model
    t_import = time.perf_counter() - t_start
    if base == OURS_PEER:
        limit_threads(threads)  # keras has loaded its backend's library; no op has run yet
    keras.utils.set_random_seed(0)
    if base == OURS_PEER:  # the official model's batch, features transposed to ours (frames, bands, maps)
        x, y = peer_batch(batch)
        x, y = np.ascontiguousarray(x.transpose(0, 2, 3, 1)), {'accdoa_out': y}
    else:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((B, T, BINS, 2 * CH), dtype=np.float32)
        y = {'sed_out': (rng.random((B, T, NC)) > 0.9).astype(np.float32),
             'doa_out': rng.uniform(-1, 1, (B, T, 3 * NC)).astype(np.float32)}
    t0 = time.perf_counter()
    jit = True if xla else 'auto'
    if base == OURS_PEER:
        import compare_official_baselines as cob
        import parameter
        model = cob.ours_model(2023)
        keras_model.compile_model(model, learning_rate=parameter.get_params(OURS_PEER)['learning_rate'],
                                  jit_compile=jit)
        import cpu_kernels  # as seld.py trains it (fused_batchnorm=auto: on a TensorFlow CPU only)
        fused = cpu_kernels.use_fused_batchnorm(model, enable=parameter.get_params(OURS_PEER)['fused_batchnorm'])
    elif base in REFERENCES:
        model = reference_model(**REFERENCES[base], jit_compile=jit)
    else:
        model = keras_model.get_model(nb_frames=T, nb_bins=BINS, nb_channels=CH, nb_classes=NC, jit_compile=jit,
                                      gru_type='original' if base == 'project-original' else 'cudnn',
                                      mixed_precision=PRECISION.get(base.rsplit('-', 1)[-1], 'none'))
    if base != OURS_PEER:
        fused = None
    if base == 'project-fusedbn':  # cpu_kernels.py: TensorFlow's fused BatchNorm training kernel
        import cpu_kernels
        cpu_kernels.use_fused_batchnorm(model, enable=True)
    t_build = time.perf_counter() - t0
    load_before = os.getloadavg()[0]
    t_first, times = time_train_steps(model, x, y, steps)
    load_after = os.getloadavg()[0]
    check = None
    if base == 'project':  # same function as the reference model, same weights: compare one forward pass
        ref = reference_model()
        ref.set_weights(model.get_weights())
        a = model(x[:2], training=True)
        b = ref(x[:2], training=True)
        check = max(float(np.max(np.abs(keras.ops.convert_to_numpy(a[k]) - keras.ops.convert_to_numpy(b[k]))))
                    for k in a)
    peak = None if base == OURS_PEER else matmul_peak()
    print('RESULT ' + json.dumps(dict(variant=variant, backend=keras.backend.backend(), params=model.count_params(),
                                      import_s=t_import, build_s=t_build, first_step_s=t_first, steps=times,
                                      peak_flops=peak, check_max_abs_diff=check, load=(load_before, load_after),
                                      threads=thread_settings(), jit_compile=bool(model.jit_compile),
                                      fused_batchnorm=fused)))


def run_variant(variant: str, steps: int, backend: str | None = None, *, official: str | None = None,
                batch: int = 16, threads: int = 0) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', **({'KERAS_BACKEND': backend} if backend else {}))
    if threads:
        env['OMP_NUM_THREADS'] = str(threads)
        if threads == 1:  # XLA's CPU thread pool can only be turned off, not sized
            env['XLA_FLAGS'] = (env.get('XLA_FLAGS', '') +
                                ' --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1').strip()
    if variant.removesuffix('-xla').endswith('noonednn'):
        env['TF_ENABLE_ONEDNN_OPTS'] = '0'
    t0 = time.perf_counter()
    peer = ['--peer-batch', str(batch), '--peer-threads', str(threads)] + (['--peer-official', official] if official
                                                                            else [])
    out = subprocess.run([sys.executable, os.path.abspath(__file__), '--child', variant, '--steps', str(steps)] + peer,
                         capture_output=True, text=True, cwd=ROOT, env=env)
    if out.returncode:
        raise SystemExit(f'{variant} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}')
    res = json.loads(out.stdout.split('RESULT ', 1)[1].splitlines()[0])
    res['process_s'] = time.perf_counter() - t0
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--steps', type=int, default=5, help='timed steps after the first')
    ap.add_argument('--quick', action='store_true', help='3 timed steps; ref+dense and project only')
    ap.add_argument('--variants', default=None, help=f'comma-separated subset of {",".join(VARIANTS)}')
    ap.add_argument('--rounds', type=int, default=1,
                    help='run the list of variants this many times, interleaved (A B A B ...), and summarize '
                         'each variant by the median over rounds')
    ap.add_argument('--backends', default=None,
                    help='comma-separated Keras backends (tensorflow,jax,torch) to run every variant under, '
                         'interleaved in the same run (default: KERAS_BACKEND\'s)')
    ap.add_argument('--peer-official', default=None, metavar='DIR',
                    help='folder holding a clone of seld-dcase2023: time its PyTorch training step beside ours '
                         f'({OURS_PEER}) at the same batch and sequence (module docstring)')
    ap.add_argument('--peer-batch', type=int, default=16, help='batch size of the peer comparison (default 16)')
    ap.add_argument('--peer-threads', type=int, default=0,
                    help='threads of every peer-comparison process (PyTorch, TensorFlow; JAX: 1 only); default 0: '
                         'each library\'s default (one per core)')
    ap.add_argument('--child', default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.steps, official=args.peer_official, batch=args.peer_batch, threads=args.peer_threads)
        return
    import keras  # the backend of KERAS_BACKEND (no tensors here: the children time the steps)
    import numpy as np

    backends = args.backends.split(',') if args.backends else [keras.backend.backend()]
    peer = args.peer_official
    variants = args.variants.split(',') if args.variants else ([] if peer else list(VARIANTS))
    if args.quick:
        args.steps = 3
        variants = args.variants.split(',') if args.variants else ([] if peer else ['ref+dense', 'project'])
    unknown = [v for v in variants if v.removesuffix('-xla') not in VARIANTS + (OURS_PEER,)]
    if unknown:
        raise SELDError(f'--variants: unknown {unknown}; choose from {", ".join(VARIANTS + (OURS_PEER,))} '
                        f'(each also with -xla)')
    if peer:
        import importlib.util

        from compare_official_baselines import REPOS
        clone = os.path.join(peer, REPOS[2023])
        if not os.path.isfile(os.path.join(clone, 'seldnet_model.py')):
            raise SELDError(f'--peer-official {peer}: no {REPOS[2023]}/seldnet_model.py there (a clone of '
                            f'github.com/sharathadavanne/seld-dcase2023)')
        if importlib.util.find_spec('torch') is None:
            raise SELDError('--peer-official needs PyTorch (the official model is a PyTorch program)')
        if not any(v.removesuffix('-xla') == OURS_PEER for v in variants):
            variants.append(OURS_PEER)
    jobs = [(b, v) for b in backends for v in variants if b == 'tensorflow' or v.removesuffix('-xla') not in TF_ONLY]
    skipped = [f'{v} on {b}' for b in backends for v in variants if (b, v) not in jobs]
    if skipped:
        print(f'skipped (TensorFlow only): {", ".join(skipped)}')
    if peer:
        jobs.insert(0, (None, OFFICIAL_PEER))
    backend = ','.join(backends)
    fl = flops_per_sequence()
    fwd = sum(fl.values())
    train_seq = 3 * fwd
    needed = train_seq - fl['conv1']  # conv1's gradient w.r.t. the input features is never computed
    seldnet = any(v.removesuffix('-xla') in VARIANTS for v in variants)
    print(f'training benchmark, Keras {keras.__version__} on {backend}; {os.cpu_count()} CPUs; load average '
          f'{" ".join(f"{v:.2f}" for v in os.getloadavg())}')
    if seldnet:
        print(f'SELDnet variants: batch {B} x {T} frames x {BINS} bins x {2 * CH} maps, {NC} classes')
        print('forward GFLOP per sequence: ' + ', '.join(f'{k} {v / 1e9:.3f}' for k, v in fl.items())
              + f'; total {fwd / 1e9:.3f}')
        print(f'training GFLOP per sequence (3 x forward): {train_seq / 1e9:.3f} ({train_seq * B / 1e9:.1f} per '
              f'step); without conv1 input gradient: {needed / 1e9:.3f}')
    if peer:
        print(f'peer comparison: DCASE 2023 baseline, batch {args.peer_batch} x {PEER_FRAMES} frames x {PEER_BANDS} '
              f'mel bands x {PEER_MAPS} maps -> {PEER_LABELS} label frames x 3 tracks x 3 x {PEER_CLASSES} classes; '
              f'official from {os.path.join(peer, REPOS[2023])}')

    def label(b: str | None, v: str) -> str:
        if v == OFFICIAL_PEER:
            return f'{v} (PyTorch)'
        return f'{v} ({b})' if len(backends) > 1 else v

    runs: dict[str, list[dict]] = {label(b, v): [] for b, v in jobs}
    for k, (b, v) in ((k, job) for k in range(args.rounds) for job in jobs):
        is_peer = v.removesuffix('-xla') in (OURS_PEER, OFFICIAL_PEER)
        batch = args.peer_batch if is_peer else B
        r = run_variant(v, args.steps, b if args.backends else None, official=peer, batch=args.peer_batch,
                        threads=args.peer_threads if is_peer else 0)
        r['variant'] = v = label(b, v)
        r['round'], r['batch'] = k, batch
        runs[v].append(r)
        step = float(np.median(r['steps']))
        r['step_s'] = step
        r['share'] = None if is_peer else train_seq * B / step / r['peak_flops']
        flops = '' if is_peer else (f'{train_seq * B / step / 1e9:6.1f} GFLOP/s = {100 * r["share"]:4.1f} % of matmul '
                                    f'peak {r["peak_flops"] / 1e9:.0f} GFLOP/s ')
        print((f'[round {k + 1}] ' if args.rounds > 1 else '')
              + f'{v:26s} params {r["params"]:,} | first step {r["first_step_s"]:5.1f} s (build {r["build_s"]:.1f} s, '
              f'imports {r["import_s"]:.1f} s) | {1 / step:.3f} steps/s = {batch / step:5.2f} seq/s '
              f'({step:.2f} s/step, median of {len(r["steps"])}: {" ".join(f"{s:.2f}" for s in r["steps"])}) | '
              f'{flops}({r["threads"]}, jit_compile {r["jit_compile"]}'
              + (f', fused BatchNorm in {r["fused_batchnorm"]} layers' if r.get('fused_batchnorm') else '')
              + ') | load average '
              f'{r["load"][0]:.2f} -> {r["load"][1]:.2f}'
              + (f' | max |project - reference| forward {r["check_max_abs_diff"]:.1e}'
                 if r['check_max_abs_diff'] is not None else ''), flush=True)
    results = {}
    for v, rs in runs.items():  # one run, or the medians over the rounds
        r = results[v] = dict(rs[0])
        for key in ('step_s', 'share', 'first_step_s'):
            r[key] = None if r[key] is None else float(np.median([x[key] for x in rs]))
        if args.rounds > 1:
            share = '' if r['share'] is None else f' = {100 * r["share"]:4.1f} % of matmul peak'
            print(f'median of {len(rs)} rounds: {v:26s} {r["step_s"]:.2f} s/step{share}, first step '
                  f'{r["first_step_s"]:.1f} s (load averages '
                  f'{" ".join(f"{x[0]:.2f}->{x[1]:.2f}" for x in (y["load"] for y in rs))})')
    for old in ('reference', 'ref+dense'):
        if old in results and 'project' in results:
            a, b = results[old], results['project']
            print(f'project vs {old}: step {a["step_s"] / b["step_s"]:.2f}x faster, first step '
                  f'{a["first_step_s"]:.1f} s -> {b["first_step_s"]:.1f} s')
    ranked = [r for r in results.values() if r['share'] is not None]
    if ranked:
        best = min(ranked, key=lambda r: r['step_s'])
        print(f'SUMMARY training ({backend}): best {best["variant"]}: {1 / best["step_s"]:.3f} steps/s, '
              f'{B / best["step_s"]:.2f} seq/s, {100 * best["share"]:.1f} % of the {best["peak_flops"] / 1e9:.0f} '
              f'GFLOP/s float32 matmul peak (target >= 60 %), first step {best["first_step_s"]:.1f} s (target <= '
              f'10 s); load average {os.getloadavg()[0]:.2f}')
    if peer:  # ours / official per round (each round's runs met about the same load), then the median over rounds
        official = runs[label(None, OFFICIAL_PEER)]
        o = results[label(None, OFFICIAL_PEER)]
        print(f'SUMMARY peer: official DCASE 2023 baseline (PyTorch, {o["threads"]}) {1 / o["step_s"]:.3f} steps/s, '
              f'batch {args.peer_batch}, {o["params"]:,} weights')
        for v, rs in runs.items():
            if v == label(None, OFFICIAL_PEER) or rs[0]['variant'].split(' ')[0].removesuffix('-xla') != OURS_PEER:
                continue
            ratios = [official[r['round']]['step_s'] / r['step_s'] for r in rs]
            print(f'SUMMARY peer: {v:32s} {1 / results[v]["step_s"]:.3f} steps/s ({results[v]["params"]:,} weights, '
                  f'{rs[0]["threads"]}); ours / official {float(np.median(ratios)):.2f}x'
                  + (f' (rounds: {" ".join(f"{x:.2f}" for x in ratios)})' if len(ratios) > 1 else '')
                  + f'; load average {os.getloadavg()[0]:.2f}')


if __name__ == '__main__':
    run_cli(lambda argv: main())

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
    return 'XLA default threads'


def child(variant: str, steps: int) -> None:
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
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, BINS, 2 * CH), dtype=np.float32)
    y = {'sed_out': (rng.random((B, T, NC)) > 0.9).astype(np.float32),
         'doa_out': rng.uniform(-1, 1, (B, T, 3 * NC)).astype(np.float32)}
    t0 = time.perf_counter()
    jit = True if xla else 'auto'
    if base in REFERENCES:
        model = reference_model(**REFERENCES[base], jit_compile=jit)
    else:
        model = keras_model.get_model(nb_frames=T, nb_bins=BINS, nb_channels=CH, nb_classes=NC, jit_compile=jit,
                                      gru_type='original' if base == 'project-original' else 'cudnn',
                                      mixed_precision=PRECISION.get(base.rsplit('-', 1)[-1], 'none'))
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
    peak = matmul_peak()
    print('RESULT ' + json.dumps(dict(variant=variant, backend=keras.backend.backend(), params=model.count_params(),
                                      import_s=t_import, build_s=t_build, first_step_s=t_first, steps=times,
                                      peak_flops=peak, check_max_abs_diff=check, load=(load_before, load_after),
                                      threads=thread_settings(), jit_compile=bool(model.jit_compile))))


def run_variant(variant: str, steps: int, backend: str | None = None) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', **({'KERAS_BACKEND': backend} if backend else {}))
    if variant.removesuffix('-xla').endswith('noonednn'):
        env['TF_ENABLE_ONEDNN_OPTS'] = '0'
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, os.path.abspath(__file__), '--child', variant, '--steps', str(steps)],
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
    ap.add_argument('--child', default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.steps)
        return
    import keras  # the backend of KERAS_BACKEND (no tensors here: the children time the steps)
    import numpy as np

    backends = args.backends.split(',') if args.backends else [keras.backend.backend()]
    variants = args.variants.split(',') if args.variants else list(VARIANTS)
    if args.quick:
        args.steps = 3
        variants = args.variants.split(',') if args.variants else ['ref+dense', 'project']
    unknown = [v for v in variants if v.removesuffix('-xla') not in VARIANTS]
    if unknown:
        raise SystemExit(f'unknown variants {unknown}; choose from {", ".join(VARIANTS)} (each also with -xla)')
    jobs = [(b, v) for b in backends for v in variants if b == 'tensorflow' or v.removesuffix('-xla') not in TF_ONLY]
    skipped = [f'{v} on {b}' for b in backends for v in variants if (b, v) not in jobs]
    if skipped:
        print(f'skipped (TensorFlow only): {", ".join(skipped)}')
    backend = ','.join(backends)
    fl = flops_per_sequence()
    fwd = sum(fl.values())
    train_seq = 3 * fwd
    needed = train_seq - fl['conv1']  # conv1's gradient w.r.t. the input features is never computed
    print(f'training benchmark, Keras {keras.__version__} on {backend}: batch {B} x {T} frames x {BINS} bins x '
          f'{2 * CH} maps, {NC} classes; {os.cpu_count()} CPUs; load average {" ".join(f"{v:.2f}" for v in os.getloadavg())}')
    print('forward GFLOP per sequence: ' + ', '.join(f'{k} {v / 1e9:.3f}' for k, v in fl.items())
          + f'; total {fwd / 1e9:.3f}')
    print(f'training GFLOP per sequence (3 x forward): {train_seq / 1e9:.3f} ({train_seq * B / 1e9:.1f} per step); '
          f'without conv1 input gradient: {needed / 1e9:.3f}')
    label = (lambda b, v: f'{v} ({b})') if len(backends) > 1 else (lambda b, v: v)
    runs: dict[str, list[dict]] = {label(b, v): [] for b, v in jobs}
    for k, (b, v) in ((k, job) for k in range(args.rounds) for job in jobs):
        r = run_variant(v, args.steps, b if args.backends else None)
        r['variant'] = v = label(b, v)
        runs[v].append(r)
        step = float(np.median(r['steps']))
        r['step_s'] = step
        r['share'] = train_seq * B / step / r['peak_flops']
        print((f'[round {k + 1}] ' if args.rounds > 1 else '')
              + f'{v:26s} params {r["params"]:,} | first step {r["first_step_s"]:5.1f} s (build {r["build_s"]:.1f} s, '
              f'imports {r["import_s"]:.1f} s) | {1 / step:.3f} steps/s = {B / step:5.2f} seq/s '
              f'({step:.2f} s/step, median of {len(r["steps"])}: {" ".join(f"{s:.2f}" for s in r["steps"])}) | '
              f'{train_seq * B / step / 1e9:6.1f} GFLOP/s = {100 * r["share"]:4.1f} % of matmul peak '
              f'{r["peak_flops"] / 1e9:.0f} GFLOP/s ({r["threads"]}, jit_compile {r["jit_compile"]}) | load average '
              f'{r["load"][0]:.2f} -> {r["load"][1]:.2f}'
              + (f' | max |project - reference| forward {r["check_max_abs_diff"]:.1e}'
                 if r['check_max_abs_diff'] is not None else ''), flush=True)
    results = {}
    for v, rs in runs.items():  # one run, or the medians over the rounds
        r = results[v] = dict(rs[0])
        for key in ('step_s', 'share', 'first_step_s'):
            r[key] = float(np.median([x[key] for x in rs]))
        if args.rounds > 1:
            print(f'median of {len(rs)} rounds: {v:26s} {r["step_s"]:.2f} s/step = {100 * r["share"]:4.1f} % of '
                  f'matmul peak, first step {r["first_step_s"]:.1f} s (load averages '
                  f'{" ".join(f"{x[0]:.2f}->{x[1]:.2f}" for x in (y["load"] for y in rs))})')
    for old in ('reference', 'ref+dense'):
        if old in results and 'project' in results:
            a, b = results[old], results['project']
            print(f'project vs {old}: step {a["step_s"] / b["step_s"]:.2f}x faster, first step '
                  f'{a["first_step_s"]:.1f} s -> {b["first_step_s"]:.1f} s')
    best = min(results.values(), key=lambda r: r['step_s'])
    print(f'SUMMARY training ({backend}): best {best["variant"]}: {1 / best["step_s"]:.3f} steps/s, {B / best["step_s"]:.2f} seq/s, '
          f'{100 * best["share"]:.1f} % of the {best["peak_flops"] / 1e9:.0f} GFLOP/s float32 matmul peak '
          f'(target >= 60 %), first step {best["first_step_s"]:.1f} s (target <= 10 s); load average '
          f'{os.getloadavg()[0]:.2f}')


if __name__ == '__main__':
    main()

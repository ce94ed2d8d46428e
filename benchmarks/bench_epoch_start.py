"""Benchmark: the cost of an epoch's first batch, with tf.data's prefetch (``workers=1``) and with Keras' ordered
thread enqueuer (``workers=2``, what cls_data_generator.DataGenerator uses).

With ``workers=1`` Keras feeds a PyDataset to TensorFlow as ``tf.data.Dataset.from_generator(...).prefetch(AUTOTUNE)``
and makes a new iterator every epoch. Deleting the finished iterator of the last epoch, which happens when the next
epoch starts, stalled for seconds in some epochs: the main job's "first batch 15 s" (the probe of 2026-12-06 timed
each step of an epoch's start; the deletion was the whole gap). ``workers=2`` makes Keras read ahead with its own
threads and build the pipeline without tf.data's prefetch.

Each setting trains the SELDnet of keras_model.get_model (small input: 64 frames, 64 bins, 4 channels) for
``--epochs`` epochs of ``--batches`` batches from a PyDataset that computes each batch with numpy (about the work of
reading and augmenting a real batch), and predicts a validation PyDataset after each epoch, as seld.py does. A
callback times every batch from the previous batch's end (the first from the epoch's start). Printed per setting:
the first batch of each epoch, the median of the other batches, and the largest first-batch / median ratio. Both
settings run in this one process, one after the other (TensorFlow backend)::

    python benchmarks/bench_epoch_start.py [--epochs 8] [--batches 20]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import runtime  # noqa: E402

keras = runtime.import_keras()
import numpy as np  # noqa: E402

import keras_model  # noqa: E402

T, BINS, CH, C, BATCH = 64, 64, 4, 11, 16


class Batches(keras.utils.PyDataset):
    """``n`` batches, each a pure function of its index (numpy work of about 30 ms)."""

    def __init__(self, n: int, *, workers: int):
        super().__init__(workers=workers)
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        rng = np.random.default_rng(i)
        x = rng.standard_normal((BATCH, T, BINS, 2 * CH)).astype(np.float32)
        for _ in range(3):  # stand-in for reading and augmenting the sequences
            x = np.tanh(x)
        sed = (rng.random((BATCH, T, C)) < 0.2).astype(np.float32)
        doa = rng.standard_normal((BATCH, T, 3 * C)).astype(np.float32)
        return x, {'sed_out': sed, 'doa_out': doa}


class Clock(keras.callbacks.Callback):
    def __init__(self, val: Batches):
        super().__init__()
        self.val, self.first, self.rest = val, [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.t = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        (self.first if batch == 0 else self.rest).append(now - self.t)
        self.t = now

    def on_epoch_end(self, epoch, logs=None):
        self.model.predict(self.val, verbose=0)  # as seld.py's Evaluate


def run(workers: int, *, epochs: int, batches: int) -> tuple[list[float], float]:
    keras.utils.set_random_seed(0)
    model = keras_model.get_model(nb_frames=T, nb_bins=BINS, nb_channels=CH, nb_classes=C, pool_size=(4, 4, 2),
                                  nb_cnn2d_filt=16, rnn_size=(32,), fnn_size=(32,))
    clock = Clock(Batches(4, workers=workers))
    model.fit(Batches(batches, workers=workers), epochs=epochs, shuffle=False, verbose=0, callbacks=[clock])
    return clock.first, float(np.median(clock.rest))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--epochs', type=int, default=8)
    ap.add_argument('--batches', type=int, default=20)
    args = ap.parse_args()
    print(runtime.device_line())
    print('| reader | first batch of epochs 2.. (s) | median other batch (s) | largest first / median |')
    print('|---|---|---|---|')
    for workers, name in ((1, 'workers=1: tf.data prefetch'), (2, 'workers=2: Keras enqueuer (DataGenerator)')):
        first, median = run(workers, epochs=args.epochs, batches=args.batches)
        later = first[1:]  # epoch 1's first batch also traces the training step
        print(f'| {name} | {" ".join(f"{t:.2f}" for t in later)} | {median:.3f} | {max(later) / median:.1f} |',
              flush=True)


if __name__ == '__main__':
    main()

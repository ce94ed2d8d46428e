"""Streaming batches of normalized features and targets for SELDnet (a ``keras.utils.PyDataset``).

Every file is cut into sequences of ``sequence_length`` frames; the last partial sequence of a file
is zero-padded and its padded frames get sample weight 0, so no frame is dropped and none is counted
twice. The last partial batch is padded with all-zero-weight sequences, so every batch has the same
shape (one compiled graph). The header of every feature file is read and checked once for its shape and
offset, and each sequence is read with ``os.pread`` (open, read, close): no file stays open and only the
current batch of features is in memory, whatever the size of the dataset (the labels, 4 values per class
and frame, are loaded whole).

With ``augment``, every training sequence gets one of the label-exact spatial transforms of
:mod:`augmentation` (channel swaps and sign flips of the features, the same rotation of its DOA targets),
drawn anew each epoch.

Every random draw of an epoch (the order of the sequences, their transforms) is a function of ``(seed, epoch)``
only (:meth:`DataGenerator.set_epoch`), never of what the process did before: a run resumed at epoch ``e`` sees
exactly the batches the uninterrupted run saw. seld.py sets the epoch from a callback at the start of each epoch.

The weights of a batch's real frames are all ``frames / real frames`` of the batch, so that Keras' loss (a weighted
sum over every frame, divided by their number) is the mean over the real frames, the validation loss's quantity.

Outputs at a pooled rate, and the DCASE baselines' outputs
----------------------------------------------------------
With ``t_pool_size`` (``p = prod(t_pool_size)`` feature frames per output frame) or an ``output`` other than
``seldnet``, the targets are the extraction's ``target/`` files at the output rate
(:attr:`cls_feature_class.FeatureClass.output_layout`), ``sequence_length`` must be a multiple of ``p``, and a
sequence of features starting at frame ``s`` has the targets of output frames ``s / p`` on (the last partial
sequence: ``ceil(n / p)`` real output frames, the one that ends in padding included). The sequences, their order
and transforms are those of the feature frames, as above. Batches are

* ``output='seldnet'``: ``(x, {'sed_out', 'doa_out'}, weights)`` as without pooling, ``T / p`` frames each;
* ``accdoa``, ``multi_accdoa``, ``multi_accddoa``: ``(x, target, weight)`` with ``target`` [shape=(batch, T / p) +
  target shape] (``multitrack_labels.target_shape``) and ``weight`` [shape=(batch, T / p)].

Augmentation stays label-exact for every layout: the transform ``R`` of a sequence acts on each (x, y, z) of the
target (each class's of ``seldnet``/``accdoa``, each dummy track's of the multi-track targets), and the activity and
the distance do not change under a rotation or reflection about the array centre; the tracks need no reordering
(ADPIT tries every assignment).
"""
from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np

import augmentation
from cls_feature_class import FeatureClass, load_scaler
from file_checks import NpyFile, load_npy, npy_header
from label_frames import split_label
from multitrack_labels import NB_DUMMY_TRACKS
from utils import SELDError

_MASK64 = (1 << 64) - 1  # numpy's SeedSequence takes non-negative integers: a negative seed as its two's complement


def augmentation_layout(fc: FeatureClass) -> str:
    """The augmentation layout of a dataset's channels: FOA, the 8-mic circle (CANSIM/CRESIM) or the DCASE
    tetrahedral array (``format=mic``)."""
    import datasets

    if fc.dataset.name in datasets.CIRCULAR_DATASETS:
        return 'circular8'
    return 'tetra' if fc.dataset.audio_format == 'mic' else 'foa'


class DataGenerator(keras.utils.PyDataset):
    """Batches ``(x, {'sed_out', 'doa_out'}, {'sed_out', 'doa_out'} sample weights)``, or ``(x, target, weight)`` for
    the DCASE baselines' outputs (module docstring).

    Parameters
    ----------
    params : dict
        Resolved parameters (``sequence_length``, ``batch_size``, ``azi_only``, ``seed``, ``quick_test`` ...).
    split : {'train', 'val', 'test'}
        The recordings of this part (:meth:`datasets.Dataset.part`; ``val`` is the test part with
        ``select_on_test``).
    shuffle : bool, optional
        Shuffle sequences between epochs (default: True for train, False for test).
    feat_class : FeatureClass, optional
        Reuse an existing instance.
    max_batches : int, optional
        Use only the first batches (quick test).

    Notes
    -----
    ``x`` has shape (batch, sequence_length, nfft/2, 2*channels), float32 (channels_last) (or the (bins, maps) of
    another ``features=``). ``output``, ``frames_per_output`` and ``output_rate`` are those of the features'
    :attr:`cls_feature_class.FeatureClass.output_layout`.
    """

    def __init__(self, params: dict[str, Any], *, split: str, shuffle: bool | None = None,
                 feat_class: FeatureClass | None = None, max_batches: int | None = None, **kwargs: Any):
        # Two reader threads: Keras then reads batches ahead with its own ordered thread pool, and feeds TensorFlow
        # through tf.data without tf.data's prefetch. With that prefetch (workers=1), deleting the finished iterator
        # of an epoch at the start of the next one stalled for seconds to tens of seconds in some epochs
        # (benchmarks/bench_epoch_start.py). Every batch is a pure function of (seed, epoch, index), so the
        # threads change no number.
        super().__init__(**{'workers': 2, **kwargs})
        if split not in ('train', 'val', 'test'):
            raise SELDError(f'split={split!r}: must be train, val or test')
        self.fc = feat_class or FeatureClass(params)
        self.split = split
        self.seq_len = int(params['sequence_length'])
        self.batch_size = int(params['batch_size'])
        self.azi_only = bool(params['azi_only'])
        self.nb_classes = self.fc.nb_classes
        self.shuffle = (split == 'train') if shuffle is None else shuffle
        self.seed = int(params['seed'])
        self.augment = bool(params.get('augment')) and split == 'train'
        out = self.fc.output_layout
        self.output, self.frames_per_output, self.output_rate = out.output, out.frames_per_output, out.output_rate
        self.has_target = self.fc.has_target
        if self.seq_len % self.frames_per_output:
            raise SELDError(f'sequence_length={self.seq_len}: must be a multiple of prod(t_pool_size)='
                            f'{self.frames_per_output} (feature frames per output frame)')
        if self.azi_only and self.output not in ('seldnet', 'multi_accddoa'):
            raise SELDError(f'azi_only=true: output={self.output} estimates x, y, z; azi_only needs output=seldnet '
                            f'or multi_accddoa (2025)')
        if self.azi_only and self.output == 'multi_accddoa' and self.augment:
            raise SELDError('augment=true: the 2025 targets (x, y, distance, on-screen) are not augmented; use '
                            'augment=false with output=multi_accddoa azi_only=true')
        if self.augment:
            self._transforms = augmentation.transforms_for(augmentation_layout(self.fc), nb_channels=self.fc.nb_channels)
            self._scaler = load_scaler(self.fc.scaler_file)

        if not os.path.isdir(self.fc.feat_dir_norm) or not os.path.isdir(self.fc.label_dir):
            raise SELDError(f'{self.fc.feat_label_dir}: no normalized features/labels; run '
                            f'`python batch_feature_extraction.py {params.get("task_id", "1")}` with the same '
                            f'parameters first')
        self.recordings = self.fc.dataset.part(split)
        self.stems = [r.stem for r in self.recordings]
        self._references: dict[str, tuple[dict[str, Any], Any]] | None = None
        self._feat, self._label = [], []  # _label: the labels (frames, 4*classes), or the targets at the output rate
        for s in self.stems:
            p = self.fc.paths(s)
            if not os.path.exists(p['feat']) or not os.path.exists(p['label']):
                raise SELDError(f'{p["feat"]}: normalized features or labels missing; run batch_feature_extraction.py '
                                f'again with the same parameters')
            feat = npy_header(p['feat'], dtype=np.float32, ndim=3)  # shape and offset only: no open file kept
            if self.has_target:
                label = self._load_target(p['target'], feat.shape[0], params)
            else:
                label = load_npy(p['label'], ndim=2)  # small: (frames, 4*classes), kept in memory
                if feat.shape[0] != label.shape[0] or label.shape[1] != 4 * self.nb_classes:
                    raise SELDError(f'{p["feat"]}: features {feat.shape} and labels {label.shape} do not match '
                                    f'({self.nb_classes} classes); re-run batch_feature_extraction.py')
            self._feat.append(feat)
            self._label.append(label)
        self.feat_shape = self._feat[0].shape[1:]  # (bins, 2*channels)
        self.nb_frames_per_file = [f.shape[0] for f in self._feat]
        # Sequence index: (file, first frame, valid frames)
        idx = []
        for i, n in enumerate(self.nb_frames_per_file):
            starts = np.arange(0, n, self.seq_len)
            idx.append(np.stack([np.full_like(starts, i), starts, np.minimum(self.seq_len, n - starts)], axis=1))
        self.index = np.concatenate(idx)
        self._nb_batches = int(np.ceil(len(self.index) / self.batch_size))
        if max_batches is not None:
            self._nb_batches = min(self._nb_batches, int(max_batches))
        self.set_epoch(0)

    def _load_target(self, path: str, nb_frames: int, params: dict[str, Any]) -> np.ndarray:
        """One recording's target at the output rate, checked against its features' frames."""
        out = self.fc.output_layout
        how = (f'run `python batch_feature_extraction.py {params.get("task_id", "1")}` with the same parameters '
               f'(output={out.output}, t_pool_size={params.get("t_pool_size")})')
        if not os.path.exists(path):
            raise SELDError(f'{path}: no target for output={out.output}; {how}')
        target = load_npy(path, dtype=np.float32)
        shape = (out.nb_frames(nb_frames),) + out.target_shape
        if target.shape != shape:
            raise SELDError(f'{path}: target of shape {target.shape}, expected {shape} for {nb_frames} feature frames; '
                            f'{how}')
        return target

    # ---- PyDataset API -------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._nb_batches

    def __getitem__(self, b: int):
        if not 0 <= b < self._nb_batches:
            raise IndexError(b)
        order, transform_ids = self._plan  # one read: a concurrent set_epoch never mixes two epochs in a batch
        rows = order[b * self.batch_size:(b + 1) * self.batch_size]
        if self.has_target:
            return self._target_batch(rows, transform_ids)
        B, T, C = self.batch_size, self.seq_len, self.nb_classes
        x = np.zeros((B, T) + self.feat_shape, dtype=np.float32)
        label = np.zeros((B, T, 4 * C), dtype=np.float32)
        weight = np.zeros((B, T), dtype=np.float32)
        for k, (f, start, n) in enumerate(self.index[rows]):
            x[k, :n] = self._read(self._feat[f], start, n)
            label[k, :n] = self._label[f][start:start + n]
            weight[k, :n] = 1.0
        sed, doa = split_label(label, nb_classes=C, azi_only=self.azi_only)
        if self.augment:
            ids = np.zeros(B, np.int64)
            ids[:len(rows)] = transform_ids[rows]
            x, doa = augmentation.apply_batch(x, doa, ids, transforms=self._transforms, mean=self._scaler[0],
                                              scale=self._scaler[1], nb_classes=C, valid=weight > 0)
        # Keras' losses divide the weighted sum by every frame of the batch: scaled by frames / real frames, the
        # weights make each output's loss the mean over the real frames (the validation loss's quantity), on one device
        # and split between replicas alike (each replica divides by its share of the batch, and Keras by the replicas).
        weight *= np.float32(weight.size / weight.sum())
        return x, {'sed_out': sed, 'doa_out': doa}, {'sed_out': weight, 'doa_out': weight}

    def _target_batch(self, rows: np.ndarray, transform_ids: np.ndarray | None) -> tuple:
        """:meth:`__getitem__` with targets at the output rate (module docstring)."""
        B, T, p = self.batch_size, self.seq_len, self.frames_per_output
        x = np.zeros((B, T) + self.feat_shape, dtype=np.float32)
        target = np.zeros((B, T // p) + self.fc.output_layout.target_shape, dtype=np.float32)
        weight = np.zeros((B, T // p), dtype=np.float32)
        for k, (f, start, n) in enumerate(self.index[rows]):
            x[k, :n] = self._read(self._feat[f], start, n)
            m = -(-n // p)
            target[k, :m] = self._label[f][start // p:start // p + m]
            weight[k, :m] = 1.0
        if self.augment:
            ids = np.zeros(B, np.int64)
            ids[:len(rows)] = transform_ids[rows]
            valid = np.zeros((B, T), bool)
            valid[:len(rows)] = np.arange(T) < self.index[rows, 2][:, None]
            x, target = self._augment_targets(x, target, ids, valid)
        weight *= np.float32(weight.size / weight.sum())  # as in __getitem__
        if self.output != 'seldnet':
            return x, target, weight
        sed, doa = split_label(target, nb_classes=self.nb_classes, azi_only=self.azi_only)
        return x, {'sed_out': sed, 'doa_out': doa}, {'sed_out': weight, 'doa_out': weight}

    def _augment_targets(self, x: np.ndarray, target: np.ndarray, ids: np.ndarray,
                         valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The transform ``ids[k]`` applied to sequence ``k``'s features (padding, outside ``valid``, stays 0) and to
        every (x, y, z) of its target (module docstring)."""
        C = self.nb_classes
        x, target = x.copy(), target.copy()
        for t in np.unique(ids):
            transform = self._transforms[int(t)]
            if transform.is_identity:
                continue
            rows = np.flatnonzero(ids == t)
            x[rows] = augmentation.apply_to_features(x[rows], transform, mean=self._scaler[0], scale=self._scaler[1])
            if self.output in ('seldnet', 'accdoa'):  # (..., 4C): SED then x, y, z; (..., 3C): x, y, z
                target[rows, ..., -3 * C:] = augmentation.apply_to_doa(target[rows, ..., -3 * C:], transform,
                                                                       nb_classes=C)
            else:  # (..., 6, 1 + values, C): x, y, z are values 1..3 of each dummy track
                vec = target[rows, :, :, 1:4, :].reshape(len(rows), -1, NB_DUMMY_TRACKS, 3 * C)
                target[rows, :, :, 1:4, :] = augmentation.apply_to_doa(vec, transform, nb_classes=C).reshape(
                    len(rows), -1, NB_DUMMY_TRACKS, 3, C)
        x[~valid] = 0.0
        return x, target

    @staticmethod
    def _read(arr: NpyFile, start: int, n: int) -> np.ndarray:
        """Rows ``start:start+n`` of a ``.npy`` file (its checked header, :func:`file_checks.npy_header`),
        read with ``os.pread`` from a descriptor opened for this read only.

        No file stays open (a dataset of thousands of recordings would otherwise hold a descriptor each, against
        ``ulimit -n``), and no memory map: slicing a long-lived one would leave every page it touched mapped, and
        counted in the process's resident memory (benchmarks/bench_streaming.py). Only the batch is in memory.
        """
        row = arr.dtype.itemsize * int(np.prod(arr.shape[1:]))
        try:
            fd = os.open(arr.filename, os.O_RDONLY)
            try:
                buf = os.pread(fd, n * row, arr.offset + start * row)
            finally:
                os.close(fd)
        except OSError as err:
            raise SELDError(f'{arr.filename}: cannot read ({err.strerror or err}); re-run batch_feature_extraction.py '
                            f'if it was removed') from err
        if len(buf) != n * row:
            raise SELDError(f'{arr.filename}: file is shorter than its header says; re-run batch_feature_extraction.py')
        return np.frombuffer(buf, dtype=arr.dtype).reshape((n,) + arr.shape[1:])

    def set_epoch(self, epoch: int) -> None:
        """Make the batches those of epoch ``epoch`` (0-based, Keras' numbering): the order of the sequences
        (shuffled with ``shuffle``) and one spatial transform per sequence (identity included; with ``augment``),
        drawn from generators seeded with ``(seed, epoch)`` alone. Every batch is then a pure function of
        ``(seed, epoch, index)``, whatever order or thread the batches are read in and whatever ran before."""
        epoch = int(epoch)
        if epoch < 0:
            raise SELDError(f'epoch={epoch}: must be >= 0')
        order = np.arange(len(self.index))
        if self.shuffle:
            np.random.default_rng([self.seed & _MASK64, epoch, 0]).shuffle(order)
        transform_ids = None
        if self.augment:
            transform_ids = np.random.default_rng([self.seed & _MASK64, epoch, 1]).integers(len(self._transforms),
                                                                                           size=len(self.index))
        self.epoch, self._plan = epoch, (order, transform_ids)

    def on_epoch_end(self) -> None:
        """Go on to the next epoch's batches (used without seld.py's callback; Keras also calls it once before the
        first epoch, which that callback's :meth:`set_epoch` overrides)."""
        self.set_epoch(self.epoch + 1)

    @property
    def _order(self) -> np.ndarray:
        """The sequence order of the current epoch."""
        return self._plan[0]

    @property
    def _transform_ids(self) -> np.ndarray | None:
        """The transform of each sequence in the current epoch (``augment``), else None."""
        return self._plan[1]

    # ---- helpers for evaluation ----------------------------------------------------------------
    def get_data_sizes(self) -> tuple[tuple[int, ...], Any]:
        """Input shape and output shape(s) of one batch: ``{'sed_out', 'doa_out'}`` shapes (``output='seldnet'``),
        or the target's shape, at the output rate (``sequence_length / prod(t_pool_size)`` frames)."""
        C, B, To = self.nb_classes, self.batch_size, self.seq_len // self.frames_per_output
        x = (B, self.seq_len) + tuple(self.feat_shape)
        if self.output != 'seldnet':
            return x, (B, To) + self.fc.output_layout.target_shape
        return x, {'sed_out': (B, To, C), 'doa_out': (B, To, (2 if self.azi_only else 3) * C)}

    def nb_sequences_used(self) -> int:
        return min(len(self.index), self._nb_batches * self.batch_size)

    def references(self) -> dict[str, tuple[dict[str, Any], Any]]:
        """Per stem: the recording's info (``duration_s``, ``nb_frames`` ...) and the dataset's reference
        (:meth:`datasets.Dataset.read_reference`), read on first use and kept: a validation split is scored
        every epoch. The reference is the metadata's, whatever the output (every instance, at the label rate or in
        seconds); ``nb_frames`` counts feature frames (output frames: :meth:`FeatureClass.output_layout.nb_frames`)."""
        if self._references is None:
            refs = {}
            for r in self.recordings:
                info = self.fc.file_info(r.stem)
                refs[r.stem] = (info, self.fc.dataset.read_reference(r, duration_s=info['duration_s']))
            self._references = refs
        return self._references

    def get_labels(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """Ground truth per file, in file order: ``(stem, sed (frames, C), doa (frames, 3C or 2C))``, at the output
        rate (``output='seldnet'``; the others: :meth:`get_targets`).

        Requires an unshuffled generator; with ``max_batches`` only the frames covered are returned.
        """
        if self.output != 'seldnet':
            raise SELDError(f'output={self.output}: per-file SED/DOA labels are for output=seldnet; use get_targets()')
        return [(stem, *split_label(target, nb_classes=self.nb_classes, azi_only=self.azi_only))
                for stem, target in self.get_targets()]

    def get_targets(self) -> list[tuple[str, np.ndarray]]:
        """The stored target of each file, in file order: ``(stem, target)`` [shape=(output frames,) + target shape]
        (``output='seldnet'`` without pooling: the label, (frames, 4C)).

        Requires an unshuffled generator; with ``max_batches`` only the output frames covered are returned.
        """
        self._check_ordered()
        p = self.frames_per_output
        return [(self.stems[f], self._label[f][:-(-frames // p)]) for f, frames in self._frames_used().items()]

    def split_predictions(self, pred: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """Cut ``model.predict(self)`` output back into per-file arrays, padding removed (``output='seldnet'``).

        Parameters
        ----------
        pred : dict
            ``sed_out`` [shape=(batches*batch_size, T, C)] and ``doa_out`` as returned by predict, ``T`` frames at
            the output rate.

        Returns
        -------
        list of ``(stem, sed_prob (frames, C), doa (frames, 3C or 2C))`` in the order of :meth:`get_labels`.
        """
        sed, doa = self.split_outputs(pred['sed_out']), self.split_outputs(pred['doa_out'])
        return [(stem, s, d) for (stem, s), (_, d) in zip(sed, doa)]

    def split_outputs(self, pred: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """Cut one output of ``model.predict(self)`` [shape=(batches*batch_size, T, ...)] back into per-file arrays
        ``(stem, output (frames, ...))`` at the output rate, padding removed, in the order of :meth:`get_targets`."""
        self._check_ordered()
        n_seq = self.nb_sequences_used()
        if pred.shape[0] < n_seq:
            raise SELDError(f'{pred.shape[0]} predicted sequences, expected at least {n_seq}')
        p = self.frames_per_output
        out = []
        for f, frames in self._frames_used().items():
            rows = np.flatnonzero(self.index[:n_seq, 0] == f)
            out.append((self.stems[f], np.concatenate([pred[r, :-(-self.index[r, 2] // p)]
                                                       for r in rows])[:-(-frames // p)]))
        return out

    def _frames_used(self) -> dict[int, int]:
        used = self.index[:self.nb_sequences_used()]
        frames: dict[int, int] = {}
        for f, start, n in used:
            frames[int(f)] = max(frames.get(int(f), 0), int(start + n))
        return frames

    def _check_ordered(self) -> None:
        if self.shuffle:
            raise SELDError('per-file labels/predictions need an unshuffled generator (shuffle=False)')

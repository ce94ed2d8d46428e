"""Datasets: layouts, file discovery, folds, class lists and metadata of every dataset the pipeline reads.

Each dataset is a :class:`DatasetSpec` (what is fixed by the dataset: sample rate, classes, metadata format, label
rate, folds) and a :class:`Dataset` (one copy on disk, with the parameters that select its part: ``dataset_dir``,
``format``, ``split``, ``overlap``/``db`` for TUT-2018, ``val_fraction``, ``select_on_test``). A dataset lists its
recordings (:meth:`Dataset.recordings`), each with its part (train / val / test) and its metadata file, and reads
their labels (:meth:`Dataset.read_reference`) with the readers of :mod:`formats`.

Layouts (``<dataset_dir>/...``)
-------------------------------
TUT Sound Events 2018 (``ansim``, ``resim``, ``cansim``, ``cresim``, ``real``; 44.1 kHz)
    ``wav_ov{ov}_split{split}_{db}db/{train|test}_{i}_desc_{db}_{n}.wav`` and ``desc_ov{ov}_split{split}/`` with a
    ``.csv`` of the same stem (``tut2018`` format, the class is the recording name without its 3 digits; REAL:
    the UrbanSound8K id). FOA (4 channels) except cansim/cresim (8-mic circular array). ``dataset_info.json``
    (written by synthesize_dataset.py) may give the class list, channel count and rate.
``tau2019sse`` (TAU Spatial Sound Events 2019; 48 kHz)
    ``foa_dev/`` or ``mic_dev/``: ``split{1-4}_ir{r}_ov{1,2}_{n}.wav``; ``metadata_dev/`` the same stem, ``tut2018``
    format whose recording name is the class name.
``tau2020sse_nigens`` (TAU-NIGENS Spatial Sound Events 2020; 24 kHz)
    ``foa_dev/`` or ``mic_dev/``: ``fold{1-6}_room{r}_mix{nnn}_ov{1,2}.wav``; ``metadata_dev/`` rows
    ``frame,class,track,azi,ele`` at 100 ms, no header (``dcase2020``).
``tau2021sse_nigens`` (TAU-NIGENS Spatial Sound Events 2021; 24 kHz)
    ``foa_dev/dev-{train,val,test}/fold{n}_room{r}_mix{nnn}.wav`` and ``metadata_dev/dev-{train,val,test}/``.
``starss22``, ``starss23`` (Sony-TAu Realistic Spatial Soundscapes; 24 kHz)
    ``foa_dev/dev-{train,test}-{sony,tau}/fold{3,4}_room{r}_mix{nnn}.wav`` and the same under ``metadata_dev/``,
    rows ``frame,class,source,azi,ele`` at 100 ms; the DCASE 2024 release of STARSS23 adds a distance column
    (``dcase2024`` format; accepted). Recordings last from about 30 s to several minutes.

``dcase25_task3`` (DCASE2025 Task3 Stereo SELD Dataset, from STARSS23; 24 kHz, 2 channels, 5-s clips)
    ``stereo_dev/dev-{train,test}-{sony,tau}/fold{n}_<...>.wav`` (and ``dev-train-synth/`` for synthetic fold-1
    clips, as its baseline's README places them) and the same under ``metadata_dev/``: the header
    ``frame,class,source,azimuth,distance,onscreen``, then rows at 100 ms, azimuth only (front hemisphere),
    distance in cm, on-screen flag (``dcase2025`` format). soundata has no loader for it; the name follows
    soundata's ``dcase<yy>_task<n>`` names of DCASE task sets (``dcase23_task2`` ...). Its video is not read.

``mic`` is the tetrahedral array of the DCASE sets (4 channels). Files keep their own lengths.

Folds (train / val / test), as each year's baseline defines them
-----------------------------------------------------------------
* TUT-2018: ``train_*`` / held-out share / ``test_*`` of the chosen ov/split/db. The original has no validation
  set: ``val_fraction`` of the train files (at least one) is held out, chosen deterministically from the stems
  (sorted by CRC-32, so the choice does not depend on the seed or the file order).
* tau2019sse (seld-dcase2019 ``seld.py``): test split ``split`` (1-4), validation split ``split % 4 + 1``, train
  the other two (test 1 / val 2 / train 3, 4; test 2 / val 3 / train 4, 1; ...).
* tau2020sse_nigens (seld-dcase2020): test fold 1, validation fold 2, train folds 3-6.
* tau2021sse_nigens (seld-dcase2021): train dev-train (folds 1-4), validation dev-val (fold 5), test dev-test (6).
* starss22 / starss23 (seld-dcase2022/2023): train dev-train-* (fold 3), test dev-test-* (fold 4). Their
  baselines validate on the test fold; here ``val_fraction`` of the train recordings is held out instead.
* dcase25_task3 (DCASE2025_seld_baseline ``parameters.py``): train folds 1 (synthetic) and 3, test fold 4, from the
  ``fold{n}`` prefix of the file name, as its data generator selects them; ``val_fraction`` held out as STARSS.

``select_on_test=True`` reproduces the original behaviour of selecting the model on the test split: the test files
also serve as validation, a held-out share is not taken out of training (TUT-2018, STARSS) and validation folds
(2019-2021) are left unused. The numbers reported as "test" are then not test scores.
"""
from __future__ import annotations

import dataclasses
import os
import re
import zlib
from typing import Any, NamedTuple

import formats
import label_frames
import utils
from utils import SELDError

DCASE2016_CLASSES = ('knock', 'drawer', 'clearthroat', 'phone', 'keysDrop', 'speech', 'keyboard', 'pageturn',
                     'cough', 'doorslam', 'laughter')
REAL_CLASSES = ('1', '3', '4', '5', '6', '7', '8', '9')  # UrbanSound8K class ids of TUT-REAL
NIGENS2020_CLASSES = ('alarm', 'baby', 'crash', 'dog', 'engine', 'female_scream', 'female_speech', 'fire',
                      'footsteps', 'knock', 'male_scream', 'male_speech', 'phone', 'piano')
NIGENS2021_CLASSES = ('alarm', 'baby', 'crash', 'dog', 'female_scream', 'female_speech', 'footsteps', 'knock',
                      'male_scream', 'male_speech', 'phone', 'piano')
STARSS_CLASSES = ('female_speech', 'male_speech', 'clapping', 'telephone', 'laughter', 'domestic_sounds',
                  'footsteps', 'door', 'music', 'musical_instrument', 'water_tap', 'bell', 'knock')
DATASET_INFO = 'dataset_info.json'
PARTS = ('train', 'val', 'test')
#: Track / source ids of DCASE metadata must be integers in [0, MAX_TRACK]: they enumerate the events (or
#: sources) of one recording, which never number 1000.
MAX_TRACK = 999
#: Tetrahedral microphone array of the DCASE sets (``mic``): capsule directions (azimuth, elevation) in degrees on a
#: sphere of radius 0.042 m (Eigenmike em32 capsules 6, 10, 26, 22).
TETRA_MICS_DEG = ((45.0, 35.0), (-45.0, -35.0), (135.0, -35.0), (-135.0, 35.0))
TETRA_RADIUS_M = 0.042


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What a dataset fixes.

    Attributes
    ----------
    name : str
        soundata's name for the DCASE sets; the TUT-2018 names otherwise.
    fs : int
        Sample rate in Hz.
    classes : tuple of str
        Class names in index order.
    meta_format : str
        Format of its metadata files (:data:`formats.FORMATS`).
    label_rate : float or None
        Frames per second of frame-wise metadata (10 for 2020+); None for events in seconds.
    naming : str
        Class naming of ``tut2018`` metadata (:data:`formats.NAMINGS`).
    metric : str
        The metric definition that the dataset's year reports (``metric_definitions``).
    output_format : str
        Format of the prediction files written for it.
    audio_formats : tuple of str
        ``foa`` and/or ``mic``; ``stereo`` for dcase25_task3.
    hop_len_s : float or None
        Hop of its task-id (20 ms for the DCASE sets); None = the TUT-2018 framing from ``nfft``.
    """
    name: str
    fs: int
    classes: tuple
    meta_format: str
    label_rate: float | None
    naming: str
    metric: str
    output_format: str
    audio_formats: tuple = ('foa', 'mic')
    hop_len_s: float | None = None

    @property
    def is_tut(self) -> bool:
        return self.name in TUT_DATASETS

    @property
    def nb_channels(self) -> int:
        """Channels of its audio: 8 for the circular array, 2 for stereo, 4 otherwise (FOA, the tetrahedral array)."""
        return 8 if self.name in CIRCULAR_DATASETS else 2 if self.audio_formats == ('stereo',) else 4


TUT_DATASETS = ('ansim', 'resim', 'cansim', 'cresim', 'real')
CIRCULAR_DATASETS = ('cansim', 'cresim')
_TUT = dict(fs=44100, meta_format='tut2018', label_rate=None, naming='tut', metric='seld2018',
            output_format='dcase2019')
SPECS: dict[str, DatasetSpec] = {
    'ansim': DatasetSpec('ansim', classes=DCASE2016_CLASSES, audio_formats=('foa',), **_TUT),
    'resim': DatasetSpec('resim', classes=DCASE2016_CLASSES, audio_formats=('foa',), **_TUT),
    'cansim': DatasetSpec('cansim', classes=DCASE2016_CLASSES, audio_formats=('mic',), **_TUT),
    'cresim': DatasetSpec('cresim', classes=DCASE2016_CLASSES, audio_formats=('mic',), **_TUT),
    'real': DatasetSpec('real', classes=REAL_CLASSES, audio_formats=('foa',), **{**_TUT, 'naming': 'real'}),
    'tau2019sse': DatasetSpec('tau2019sse', fs=48000, classes=DCASE2016_CLASSES, meta_format='tut2018',
                              label_rate=None, naming='plain', metric='dcase2019', output_format='dcase2019',
                              hop_len_s=0.02),
    'tau2020sse_nigens': DatasetSpec('tau2020sse_nigens', fs=24000, classes=NIGENS2020_CLASSES,
                                     meta_format='dcase2020', label_rate=10.0, naming='plain', metric='dcase2020',
                                     output_format='dcase2020', hop_len_s=0.02),
    'tau2021sse_nigens': DatasetSpec('tau2021sse_nigens', fs=24000, classes=NIGENS2021_CLASSES,
                                     meta_format='dcase2020', label_rate=10.0, naming='plain', metric='dcase2021',
                                     output_format='dcase2020', hop_len_s=0.02),
    'starss22': DatasetSpec('starss22', fs=24000, classes=STARSS_CLASSES, meta_format='dcase2024',
                            label_rate=10.0, naming='plain', metric='dcase2022', output_format='dcase2020',
                            hop_len_s=0.02),
    'starss23': DatasetSpec('starss23', fs=24000, classes=STARSS_CLASSES, meta_format='dcase2024',
                            label_rate=10.0, naming='plain', metric='dcase2022', output_format='dcase2020',
                            hop_len_s=0.02),
    'dcase25_task3': DatasetSpec('dcase25_task3', fs=24000, classes=STARSS_CLASSES, meta_format='dcase2025',
                                 label_rate=10.0, naming='plain', metric='dcase2025', output_format='dcase2025',
                                 audio_formats=('stereo',), hop_len_s=0.02),
}
DATASETS = tuple(SPECS)
DCASE_DATASETS = tuple(n for n in DATASETS if n not in TUT_DATASETS)


class Recording(NamedTuple):
    """One recording of a dataset.

    Attributes
    ----------
    stem : str
        File name without extension, unique in the dataset.
    wav : str
        Path of the audio.
    meta : str
        Path of its metadata file.
    part : str
        ``train``, ``val``, ``test``, or ``unused`` (a validation fold with ``select_on_test``).
    fold : str
        Where it comes from: ``split1``, ``fold3``, ``dev-test-sony``, ``train`` ...
    """
    stem: str
    wav: str
    meta: str
    part: str
    fold: str


# Stem patterns and the sub-folders of each DCASE layout.
STEM_PATTERNS = {
    'tau2019sse': re.compile(r'split(?P<fold>[1-4])_ir\d+_ov\d+_\d+'),
    'tau2020sse_nigens': re.compile(r'fold(?P<fold>[1-6])_room\d+_mix\d+_ov\d+'),
    'tau2021sse_nigens': re.compile(r'fold(?P<fold>\d+)_room\d+_mix\d+'),
    'starss22': re.compile(r'fold(?P<fold>\d+)_room\d+_mix\d+'),
    'starss23': re.compile(r'fold(?P<fold>\d+)_room\d+_mix\d+'),
    'dcase25_task3': re.compile(r'fold(?P<fold>\d+)_[A-Za-z0-9_.-]+'),
}
SUBFOLDERS = {
    'tau2019sse': ('',),
    'tau2020sse_nigens': ('',),
    'tau2021sse_nigens': ('dev-train', 'dev-val', 'dev-test'),
    'starss22': ('dev-train-sony', 'dev-train-tau', 'dev-test-sony', 'dev-test-tau'),
    'starss23': ('dev-train-sony', 'dev-train-tau', 'dev-test-sony', 'dev-test-tau'),
    'dcase25_task3': ('dev-train-sony', 'dev-train-tau', 'dev-train-synth', 'dev-test-sony', 'dev-test-tau'),
}
#: dcase25_task3: the part of each fold (DCASE2025_seld_baseline ``parameters.py``: dev_train_folds fold1 and
#: fold3, dev_test_folds fold4).
STEREO_FOLD_PARTS = {1: 'train', 3: 'train', 4: 'test'}
LAYOUT_TEXT = {
    'tau2019sse': '{fmt}_dev/split{{1-4}}_ir{{r}}_ov{{1,2}}_{{n}}.wav and metadata_dev/<same stem>.csv',
    'tau2020sse_nigens': '{fmt}_dev/fold{{1-6}}_room{{r}}_mix{{nnn}}_ov{{1,2}}.wav and metadata_dev/<same stem>.csv',
    'tau2021sse_nigens': '{fmt}_dev/dev-{{train,val,test}}/fold{{n}}_room{{r}}_mix{{nnn}}.wav and the same under '
                         'metadata_dev/',
    'starss22': '{fmt}_dev/dev-{{train,test}}-{{sony,tau}}/fold{{3,4}}_room{{r}}_mix{{nnn}}.wav and the same under '
                'metadata_dev/',
}
LAYOUT_TEXT['starss23'] = LAYOUT_TEXT['starss22']
LAYOUT_TEXT['dcase25_task3'] = ('stereo_dev/dev-{{train,test}}-{{sony,tau}}/fold{{1,3,4}}_<name>.wav (and '
                                'dev-train-synth/) and the same under metadata_dev/')


def tut_dirs(dataset_dir: str | os.PathLike, *, overlap: int, split: int, db: int) -> tuple[str, str]:
    """The TUT-2018 folders of one overlap / split / SNR: ``(wav_ov{ov}_split{split}_{db}db, desc_ov{ov}_split{split})``
    under ``dataset_dir`` (the layout synthesize_dataset.py writes and :class:`Dataset` reads)."""
    return (os.path.join(dataset_dir, f'wav_ov{overlap}_split{split}_{db}db'),
            os.path.join(dataset_dir, f'desc_ov{overlap}_split{split}'))


def no_data_message(name: str, dataset_dir: str) -> str:
    """What to do when ``dataset_dir`` holds no data."""
    if name in TUT_DATASETS:
        return (f'No dataset at {dataset_dir}. Either synthesize one, e.g. `python synthesize_dataset.py '
                f'dataset={name} dataset_dir={dataset_dir}`, or download the TUT Sound Events 2018 zips (ANSIM, '
                f'RESIM, CANSIM, CRESIM or REAL; https://zenodo.org/communities/dcase) and unzip them so that '
                f'{dataset_dir} holds the wav_ov*_split*_*db/ and desc_ov*_split*/ folders; then pass '
                f'dataset_dir=<that folder>.')
    audio = 'stereo_dev/' if name == 'dcase25_task3' else 'foa_dev/ (or mic_dev/)'
    return (f'No dataset at {dataset_dir}. Download the {name} development set (README.md, section "Datasets") '
            f'and unzip it so that {dataset_dir} holds {audio} and metadata_dev/; then pass '
            f'dataset_dir=<that folder>, or synthesize a look-alike with `python synthesize_dataset.py '
            f'dataset={name} dataset_dir={dataset_dir}`.')


def held_out(stems: list[str], *, fraction: float) -> set[str]:
    """The ``fraction`` of ``stems`` (at least one if fraction > 0 and there are two or more) held out for
    validation: the first after sorting by CRC-32 of the stem (deterministic, independent of order and seed)."""
    if fraction <= 0 or len(stems) < 2:
        return set()
    n = min(len(stems) - 1, max(1, int(round(fraction * len(stems)))))
    return set(sorted(stems, key=lambda s: (zlib.crc32(s.encode()), s))[:n])


class Dataset:
    """One dataset on disk and the part of it the parameters select.

    Parameters
    ----------
    params : dict
        Resolved parameters (:func:`parameter.get_params`): ``dataset``, ``dataset_dir``, ``format``, ``split``,
        ``overlap``, ``db``, ``val_fraction``, ``select_on_test``.
    test_only : bool
        A test set only (e.g. ``unseen_doa_dir``): every recording is in the test part, whatever its name or fold.

    Attributes
    ----------
    spec : DatasetSpec
    name, dataset_dir, audio_format : str
    fs, nb_channels : int
        As the dataset (or its ``dataset_info.json``) gives them.
    classes : list of str
    info : dict
        ``dataset_info.json`` of a synthesized dataset, or empty.
    """

    def __init__(self, params: dict[str, Any], *, test_only: bool = False):
        self.params = params
        self.test_only = test_only
        self.name = params['dataset']
        if self.name not in SPECS:
            raise SELDError(f"dataset={self.name!r}: must be one of {', '.join(DATASETS)}")
        self.spec = SPECS[self.name]
        self.dataset_dir = params['dataset_dir']
        self.audio_format = params.get('format') or self.spec.audio_formats[0]
        if self.audio_format not in self.spec.audio_formats:
            raise SELDError(f"format={self.audio_format!r}: dataset {self.name!r} has {', '.join(self.spec.audio_formats)}")
        self.info = self._read_dataset_info()
        self.classes = [str(c) for c in self.info['classes']] if self.info else list(self.spec.classes)
        self.nb_channels = int(self.info.get('nb_channels', self.spec.nb_channels))
        self.fs = int(self.info.get('fs', self.spec.fs))
        self.split = int(params.get('split', 1))
        if self.name == 'tau2019sse' and not 1 <= self.split <= 4:
            raise SELDError(f'split={self.split}: tau2019sse has the test splits 1-4 of its four-fold cross-validation')
        if self.name in DCASE_DATASETS and self.name != 'tau2019sse' and self.split != 1:
            raise SELDError(f'split={self.split}: {self.name} has one development split, as its baseline defines it '
                            f'(README.md, "Datasets"); use split=1')

    # ---- description ----------------------------------------------------------------------------
    @property
    def label_rate(self) -> float | None:
        return self.spec.label_rate

    @property
    def naming(self) -> str:
        return 'real' if self.name == 'real' else self.spec.naming

    def _read_dataset_info(self) -> dict[str, Any]:
        path = os.path.join(self.dataset_dir, DATASET_INFO)
        if not os.path.exists(path):
            return {}
        info = utils.read_json(path)
        if not isinstance(info, dict) or not isinstance(info.get('classes'), list) or not info['classes']:
            raise SELDError(f'{path}: must be a JSON object with a non-empty "classes" list')
        return info

    def audio_dir(self) -> str:
        if self.spec.is_tut:
            return tut_dirs(self.dataset_dir, overlap=self.params['overlap'], split=self.split,
                            db=self.params['db'])[0]
        return os.path.join(self.dataset_dir, f'{self.audio_format}_dev')

    def meta_dir(self) -> str:
        if self.spec.is_tut:
            return tut_dirs(self.dataset_dir, overlap=self.params['overlap'], split=self.split,
                            db=self.params['db'])[1]
        return os.path.join(self.dataset_dir, 'metadata_dev')

    def describe(self) -> dict[str, Any]:
        """What a run records about its data (params.json): name, format, rate, classes and the files of each part."""
        parts: dict[str, list[str]] = {}
        for r in self.recordings():
            parts.setdefault(r.part, []).append(r.stem)
        return dict(dataset=self.name, dataset_dir=os.path.abspath(self.dataset_dir), format=self.audio_format,
                    fs=self.fs, nb_channels=self.nb_channels, classes=self.classes, label_rate=self.label_rate,
                    metadata_format=self.spec.meta_format, parts=parts,
                    synthetic=bool(self.info.get('synthetic', False)))

    # ---- discovery ------------------------------------------------------------------------------
    def check(self) -> None:
        """Raise a SELDError saying which layout was expected and what was found if the folders are missing."""
        if not os.path.isdir(self.dataset_dir):
            raise SELDError(no_data_message(self.name, self.dataset_dir))
        for folder in (self.audio_dir(), self.meta_dir()):
            if not os.path.isdir(folder):
                found = sorted(d for d in os.listdir(self.dataset_dir) if os.path.isdir(os.path.join(self.dataset_dir, d)))
                if self.spec.is_tut:
                    expected = (f'wav_ov{self.params["overlap"]}_split{self.split}_{self.params["db"]}db/ and '
                                f'desc_ov{self.params["overlap"]}_split{self.split}/ (overlap, split, db)')
                else:
                    expected = LAYOUT_TEXT[self.name].format(fmt=self.audio_format)
                raise SELDError(f'{folder}: folder missing; dataset={self.name} expects {expected}; {self.dataset_dir} '
                                f'holds {found or "no folders"}. ' + no_data_message(self.name, self.dataset_dir))

    def recordings(self) -> list[Recording]:
        """Every recording with its part, sorted by stem; each wav must have its metadata file, and vice versa."""
        self.check()
        found = self._tut_files() if self.spec.is_tut else self._dcase_files()
        if not found:
            raise SELDError(f'{self.audio_dir()}: no recordings found')
        recs = [Recording(stem, wav, meta, 'test' if self.test_only else self._part(fold), fold)
                for stem, (wav, meta, fold) in sorted(found.items())]
        train = [r.stem for r in recs if r.part == 'train']
        holdout = set()
        if not self.params.get('select_on_test') and (self.spec.is_tut
                                                      or self.name in ('starss22', 'starss23', 'dcase25_task3')):
            holdout = held_out(train, fraction=float(self.params.get('val_fraction', 0.0)))
        recs = [r._replace(part='val') if r.stem in holdout else r for r in recs]
        for part in ('test',) if self.test_only else ('train', 'test'):
            if not any(r.part == part for r in recs):
                raise SELDError(f'{self.meta_dir()}: no {part} recordings for dataset={self.name} split={self.split} '
                                f'(folds found: {sorted({r.fold for r in recs})})')
        return recs

    def part(self, name: str) -> list[Recording]:
        """The recordings of one part; ``'val'`` is the test part with ``select_on_test``."""
        if name not in PARTS:
            raise SELDError(f'part={name!r}: must be one of {", ".join(PARTS)}')
        if name == 'val' and self.params.get('select_on_test'):
            name = 'test'
        recs = [r for r in self.recordings() if r.part == name]
        if not recs:
            raise SELDError(f'{self.meta_dir()}: no {name} recordings (val_fraction={self.params.get("val_fraction")})')
        return recs

    def _part(self, fold: str) -> str:
        if self.spec.is_tut:
            return fold  # 'train' or 'test'; the held-out share is taken afterwards
        if self.name == 'tau2019sse':
            k = int(fold[len('split'):])
            test, val = self.split, self.split % 4 + 1
            part = 'test' if k == test else 'val' if k == val else 'train'
        elif self.name == 'tau2020sse_nigens':
            k = int(fold[len('fold'):])
            part = 'test' if k == 1 else 'val' if k == 2 else 'train'
        elif self.name == 'tau2021sse_nigens':
            part = {'dev-train': 'train', 'dev-val': 'val', 'dev-test': 'test'}[fold]
        elif self.name == 'dcase25_task3':
            part = STEREO_FOLD_PARTS[int(fold[len('fold'):])]
        else:
            part = 'test' if fold.startswith('dev-test') else 'train'
        if part == 'val' and self.params.get('select_on_test'):
            return 'unused'
        return part

    def _tut_files(self) -> dict[str, tuple[str, str, str]]:
        aud, desc = self.audio_dir(), self.meta_dir()
        descs = {os.path.splitext(f)[0] for f in os.listdir(desc) if f.endswith('.csv')}
        wavs = {os.path.splitext(f)[0] for f in os.listdir(aud) if f.endswith('.wav')}
        # One desc folder may serve several SNRs: descriptions named for another db have no wav here.
        other_db = re.compile(r'_desc_(\d+)_')
        descs = {d for d in descs if not ((m := other_db.search(d)) and m.group(1) != str(self.params['db'])
                                          and d not in wavs)}
        self._check_pairs(descs, wavs, aud, desc)
        bad = sorted(s for s in descs if not s.startswith(('train', 'test')))
        if bad:
            raise SELDError(f'{desc}: file names must start with train or test, not {bad[:5]}')
        return {s: (os.path.join(aud, s + '.wav'), os.path.join(desc, s + '.csv'),
                    'train' if s.startswith('train') else 'test') for s in descs}

    def _dcase_files(self) -> dict[str, tuple[str, str, str]]:
        aud_root, meta_root = self.audio_dir(), self.meta_dir()
        pattern = STEM_PATTERNS[self.name]
        out: dict[str, tuple[str, str, str]] = {}
        for sub in SUBFOLDERS[self.name]:
            aud, meta = os.path.join(aud_root, sub), os.path.join(meta_root, sub)
            if sub and not os.path.isdir(aud) and not os.path.isdir(meta):
                continue  # e.g. STARSS without its Sony part
            for folder in (aud, meta):
                if not os.path.isdir(folder):
                    raise SELDError(f'{folder}: folder missing; dataset={self.name} expects '
                                    + LAYOUT_TEXT[self.name].format(fmt=self.audio_format))
            wavs = {os.path.splitext(f)[0] for f in os.listdir(aud) if f.lower().endswith('.wav')}
            metas = {os.path.splitext(f)[0] for f in os.listdir(meta) if f.lower().endswith('.csv')}
            self._check_pairs(metas, wavs, aud, meta)
            for stem in sorted(wavs):
                m = pattern.fullmatch(stem)
                if m is None:
                    raise SELDError(f'{os.path.join(aud, stem)}.wav: the name does not match the {self.name} layout '
                                    f'({LAYOUT_TEXT[self.name].format(fmt=self.audio_format)})')
                if stem in out:
                    raise SELDError(f'{os.path.join(aud, stem)}.wav: the same name is also in {out[stem][0]}')
                fold = sub or f'{"split" if self.name == "tau2019sse" else "fold"}{m.group("fold")}'
                if self.name == 'dcase25_task3':  # the fold of the name decides, as the baseline's generator
                    fold = f'fold{int(m.group("fold"))}'
                    if int(m.group('fold')) not in STEREO_FOLD_PARTS:
                        raise SELDError(f'{os.path.join(aud, stem)}.wav: fold {m.group("fold")}; dataset={self.name} '
                                        f'has folds 1, 3 (train) and 4 (test)')
                out[stem] = (os.path.join(aud, stem + '.wav'), os.path.join(meta, stem + '.csv'), fold)
        if not out:
            found = sorted(os.listdir(aud_root))[:10]
            raise SELDError(f'{aud_root}: no recordings of the {self.name} layout '
                            f'({LAYOUT_TEXT[self.name].format(fmt=self.audio_format)}); found {found}')
        return out

    @staticmethod
    def _check_pairs(metas: set[str], wavs: set[str], aud: str, meta: str) -> None:
        if metas - wavs:
            raise SELDError(f'{aud}: no wav for metadata file(s) {sorted(metas - wavs)[:5]}')
        if wavs - metas:
            raise SELDError(f'{meta}: no metadata file for wav(s) {sorted(wavs - metas)[:5]}')

    # ---- metadata -------------------------------------------------------------------------------
    def read_reference(self, rec: Recording, *,
                       duration_s: float) -> label_frames.Events | label_frames.Instances:
        """The labels of one recording as its metadata gives them.

        Parameters
        ----------
        rec : Recording
        duration_s : float
            Length of its audio; an event starting at or after it, or a frame row beyond it, is an error.

        Returns
        -------
        ref : label_frames.Events (seconds; TUT-2018 and 2019) or label_frames.Instances at :attr:`label_rate`
            (2020+: several instances per frame, track ids, per-frame directions of moving sources, ``dist`` in
            metres where given: STARSS23's centimetres divided by 100), read by :func:`formats.read_reference`, the
            reader of the scoring command.
        """
        return formats.read_reference(rec.meta, fmt=self.spec.meta_format, classes=self.classes, naming=self.naming,
                                      frame_rate=self.label_rate, duration_s=duration_s, max_track=MAX_TRACK)

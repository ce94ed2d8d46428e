"""Sound banks of the synthesizer (:mod:`synth`): where the isolated (dry, mono) sound events come from.

Two banks share one interface (:class:`SoundBank`):

``builtin`` (:class:`BuiltinBank`, the default; needs no files)
    11 procedural, honestly named synthetic classes. Every instance is synthesized from the clip's
    random generator, so pitch, timbre, envelope and duration differ between instances and the
    test clips hear new sounds, not copies of the training ones. Class-index order is the order of
    the table (fixed):

    ===  ==============  =====================================================================  ==========
    idx  class           what it is (per-instance random parameters)                            duration
    ===  ==============  =====================================================================  ==========
    0    harmonicTone    harmonic complex, f0 110-440 Hz, 4-20 harmonics with 1/k^p roll-off     0.4-3.0 s
                         (p 0.7-2), 4-7 Hz vibrato up to 1 %, attack 10-80 ms, release 50-300 ms
    1    chirpUp         exponential sine sweep up 1-3 octaves from 200-1500 Hz, 0-50 % second   0.3-2.0 s
                         harmonic
    2    chirpDown       exponential sine sweep down 1-3 octaves from 1.5-6 kHz, 0-50 % second   0.3-2.0 s
                         harmonic
    3    noiseBurst      white noise through a Gaussian band-pass (log-frequency) centred at     0.2-1.5 s
                         300-6000 Hz, 0.3-2 octaves wide, fast attack and exponential decay
    4    impact          a 1-2 ms noise click exciting 3-6 damped modes (150-3400 Hz, decay      0.2-1.0 s
                         time constants 40-300 ms)
    5    clickTrain      clicks (damped 1-6 kHz resonance, 0.5-2 ms) repeating at 4-25 Hz with    0.4-3.0 s
                         +-10 % timing jitter and random click levels
    6    amTone          sine carrier 250-2500 Hz, amplitude-modulated at 3-15 Hz, depth 50-100 %  0.4-3.0 s
    7    fmTone          two-operator FM: carrier 200-1200 Hz, modulator ratio 0.5-2, decaying   0.3-2.5 s
                         index (kept below the Nyquist frequency)
    8    bell            Risset's inharmonic bell partials (0.56 ... 4.07 x 200-900 Hz), each    0.5-3.0 s
                         decaying 60 dB over its own share of the duration
    9    vowel           glottal pulse train (f0 90-250 Hz, vibrato/jitter) through three       0.3-2.0 s
                         formant resonators of /a e i o u/ (+-10 %): a synthetic sung vowel
    10   whoosh          white noise through a one-octave band-pass sweeping (log) between       0.4-2.5 s
                         300-1000 Hz and 2-8 kHz, up or down, bell-shaped envelope
    ===  ==============  =====================================================================  ==========

    The tonal classes (harmonicTone, chirpUp, chirpDown, impact, amTone, fmTone, bell) also carry broadband
    excitation noise, as real tonal events do (breath, bow, strike, the room): pink noise (1/f power above 50 Hz)
    shaped by the event's 10 ms RMS envelope, at a level drawn uniformly from :data:`NOISE_DB` (-20 to -10 dB)
    re. the event's RMS. Without it a pure tone puts its direction into a handful of STFT bins, which made these
    classes localize about twice as badly as the broadband ones (README.md, "Measured results").

    The CSV name of a built-in instance is ``<class><3 digits>.wav`` where the digits are the event's
    index in its clip (modulo 1000), e.g. ``chirpUp004.wav``; no such file exists.

``<folder>`` (:class:`FolderBank`)
    Isolated mono recordings named ``<class><3 digits>.wav`` (the DCASE2016 task-2 convention,
    e.g. ``cough066.wav``); other files (a README) are ignored. The examples of each class are split
    deterministically (given the cross-validation ``split`` and the class name) into 80 % train and
    20 % test recordings (16/4 of 20, like the original TUT datasets); a class needs >= 2 files.
    Files at another sample rate are resampled (``scipy.signal.resample_poly``). Class order: the
    TUT-2018 order if the classes are exactly the 11 DCASE2016 task-2 ones
    (:data:`DCASE2016_TUT_ORDER`), otherwise sorted by name.

Every event a bank returns is a float64 mono signal at the requested rate, trimmed so that its first
and last samples are the first and last whose magnitude reaches -60 dB re. its peak (so the event
"starts" at a nonzero sample), and scaled to a peak of 0.25 (-12 dBFS, the DCASE2016 normalization).
"""
from __future__ import annotations

import functools
import math
import os
import re
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.signal
import soundfile as sf

from datasets import DCASE2016_CLASSES
from utils import SELDError

#: Class order of the TUT Sound Events 2018 datasets (the 11 DCASE2016 task-2 classes): the order the feature
#: extractor assumes for a dataset without dataset_info.json.
DCASE2016_TUT_ORDER: tuple[str, ...] = tuple(DCASE2016_CLASSES)

#: ``<class><3 digits>.wav``: a class name starts with a letter and does not end in a digit.
FILE_NAME_RE = re.compile(r'^(?P<cls>[A-Za-z](?:[A-Za-z0-9_-]*[A-Za-z_-])?)(?P<num>\d{3})\.wav$', re.IGNORECASE)

EVENT_PEAK = 0.25          # peak of every returned event (-12 dBFS)
TRIM_DB = -60.0            # leading/trailing samples below this level re. the peak are trimmed
TEST_FRACTION = 0.2        # share of each class's recordings used by the test clips


def trim_and_normalize(x: np.ndarray) -> np.ndarray:
    """Trim leading/trailing samples below -60 dB re. the peak and scale the peak to 0.25.

    Parameters
    ----------
    x : np.ndarray [shape=(samples,)]
        A non-silent mono signal.

    Returns
    -------
    y : np.ndarray [shape=(samples',), dtype=float64]
    """
    x = np.asarray(x, dtype=np.float64)
    mag = np.abs(x)
    peak = mag.max()
    loud = np.flatnonzero(mag >= peak * 10.0 ** (TRIM_DB / 20.0))
    return x[loud[0]:loud[-1] + 1] * (EVENT_PEAK / peak)


class SoundBank:
    """Interface of a sound bank.

    Attributes
    ----------
    name : str
        ``'builtin'`` or the folder as given.
    classes : tuple of str
        Class names in class-index order.
    """

    name: str
    classes: tuple[str, ...]

    def min_samples(self, class_idx: int, *, part: str, fs: int) -> int:
        """Length in samples (at ``fs``) of the shortest event :meth:`draw` can return."""
        raise NotImplementedError

    def draw(self, class_idx: int, *, part: str, rng: np.random.Generator, fs: int, max_samples: int,
             index: int) -> tuple[np.ndarray, str]:
        """Draw one event of a class.

        Parameters
        ----------
        class_idx : int
            Index into :attr:`classes`.
        part : {'train', 'test'}
            Which part of the bank to draw from (folder banks hold disjoint recordings per part).
        rng : np.random.Generator
            The clip's generator (all randomness comes from it).
        fs : int
            Sample rate in Hz.
        max_samples : int
            Upper bound on the event length (must be >= :meth:`min_samples`).
        index : int
            Index of the event in its clip (names built-in instances).

        Returns
        -------
        signal : np.ndarray [shape=(samples,), dtype=float64]
            Trimmed, peak 0.25, ``samples <= max_samples`` (folder events may exceed it by the
            one or two samples of a resampling round-off; the caller cuts them).
        csv_name : str
            ``<class><3 digits>.wav`` for the first CSV column.
        """
        raise NotImplementedError


def load_sound_bank(sound_bank: str | os.PathLike, *, split: int) -> SoundBank:
    """Return the built-in bank (``'builtin'``) or a validated :class:`FolderBank`.

    Parameters
    ----------
    sound_bank : str or path
        ``'builtin'`` or a folder of ``<class><3 digits>.wav`` files.
    split : int
        Cross-validation split: seeds the train/test division of a folder's recordings.

    Raises
    ------
    SELDError
        Missing or empty folder, unparsable file names, a corrupt, silent or non-mono wav, a class
        with fewer than 2 recordings.
    """
    if str(sound_bank) == 'builtin':
        return BuiltinBank()
    return FolderBank(sound_bank, split=split)


# --------------------------------------------------------------------------------------------------
# Folder bank
# --------------------------------------------------------------------------------------------------
class FolderBank(SoundBank):
    """Isolated mono recordings named ``<class><3 digits>.wav`` (see the module docstring).

    Parameters
    ----------
    folder : str or path
        The folder; every file in it is read once here to validate it.
    split : int
        Seeds the deterministic 80/20 train/test division of each class's recordings.
    """

    def __init__(self, folder: str | os.PathLike, *, split: int):
        self.name = os.fspath(folder)
        path = Path(folder)
        if not path.is_dir():
            raise SELDError(f"{folder}: sound-bank folder not found (sound_bank must be 'builtin' or a folder "
                            f"of mono <class><3 digits>.wav files)")
        wavs = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() == '.wav')
        if not wavs:
            raise SELDError(f'{folder}: holds no .wav file; a sound-bank folder must hold mono files named '
                            f'<class><3 digits>.wav (e.g. cough066.wav)')
        by_class: dict[str, list[tuple[str, int]]] = {}
        for wav in wavs:
            match = FILE_NAME_RE.match(wav.name)
            if match is None:
                raise SELDError(f'{wav}: file name does not follow <class><3 digits>.wav (e.g. cough066.wav; '
                                f'the class name must start with a letter and not end in a digit)')
            by_class.setdefault(match['cls'], []).append((str(wav), _trimmed_length(wav)))
        for cls, files in by_class.items():
            if len(files) < 2:
                raise SELDError(f'{folder}: class {cls!r} has {len(files)} file; every class needs at least 2 '
                                f'so that train and test clips use different recordings')
        names = set(by_class)
        self.classes = DCASE2016_TUT_ORDER if names == set(DCASE2016_TUT_ORDER) else tuple(sorted(names))
        # parts[part][class_idx] = list of (path, (trimmed length in samples, sample rate))
        self.parts: dict[str, list[list[tuple[str, tuple[int, int]]]]] = {'train': [], 'test': []}
        for cls in self.classes:
            files = by_class[cls]
            perm = np.random.default_rng([split, zlib.crc32(cls.encode())]).permutation(len(files))
            nb_test = max(1, round(TEST_FRACTION * len(files)))
            test_idx = set(perm[:nb_test].tolist())
            self.parts['test'].append([f for k, f in enumerate(files) if k in test_idx])
            self.parts['train'].append([f for k, f in enumerate(files) if k not in test_idx])

    def files(self, class_idx: int, *, part: str) -> list[str]:
        """Paths of the recordings of a class used by one part (sorted)."""
        return [f[0] for f in self.parts[part][class_idx]]

    def min_samples(self, class_idx: int, *, part: str, fs: int) -> int:
        return min(_resampled_length(n, sr, fs) for _, (n, sr) in self.parts[part][class_idx])

    def draw(self, class_idx: int, *, part: str, rng: np.random.Generator, fs: int, max_samples: int,
             index: int) -> tuple[np.ndarray, str]:
        fitting = [path for path, (n, sr) in self.parts[part][class_idx] if _resampled_length(n, sr, fs) <= max_samples]
        path = fitting[int(rng.integers(len(fitting)))]
        return _load_event(path, fs), os.path.basename(path)


def _resampled_length(n: int, sr: int, fs: int) -> int:
    return n if sr == fs else math.ceil(n * fs / sr)


def _read_mono(path: Path | str) -> tuple[np.ndarray, int]:
    try:
        x, sr = sf.read(os.fspath(path), dtype='float64', always_2d=True)
    except (RuntimeError, sf.LibsndfileError, OSError) as err:  # LibsndfileError subclasses RuntimeError
        raise SELDError(f'{path}: cannot be read as a wav file ({err})') from err
    if x.shape[1] != 1:
        raise SELDError(f'{path}: has {x.shape[1]} channels, sound-bank files must be mono')
    if x.shape[0] == 0:
        raise SELDError(f'{path}: holds no samples')
    if not np.any(x):
        raise SELDError(f'{path}: is silent (all samples are zero)')
    if not np.all(np.isfinite(x)):
        raise SELDError(f'{path}: holds NaN or infinite samples')
    return x[:, 0], int(sr)


def _trimmed_length(path: Path) -> tuple[int, int]:
    x, sr = _read_mono(path)
    return len(trim_and_normalize(x)), sr


@functools.lru_cache(maxsize=512)
def _load_event(path: str, fs: int) -> np.ndarray:
    """Read, resample to ``fs``, trim and normalize one recording (cached per worker process)."""
    x, sr = _read_mono(path)
    x = trim_and_normalize(x)
    if sr != fs:
        g = math.gcd(sr, fs)
        x = trim_and_normalize(scipy.signal.resample_poly(x, fs // g, sr // g))
    x.setflags(write=False)
    return x


# --------------------------------------------------------------------------------------------------
# Built-in procedural bank
# --------------------------------------------------------------------------------------------------
def _asr(n: int, fs: int, attack_s: float, release_s: float) -> np.ndarray:
    """Attack-sustain-release envelope with raised-cosine ramps, shape (n,), first sample nonzero."""
    env = np.ones(n)
    na = max(1, min(n // 2, int(attack_s * fs)))
    nr = max(1, min(n // 2, int(release_s * fs)))
    env[:na] = np.sin(0.5 * np.pi * (np.arange(na) + 1) / na) ** 2
    env[n - nr:] = np.cos(0.5 * np.pi * (np.arange(nr) + 1) / (nr + 1)) ** 2
    return env


def _harmonic_tone(rng: np.random.Generator, n: int, fs: int) -> np.ndarray:
    t = np.arange(n) / fs
    f0 = 110.0 * 2.0 ** rng.uniform(0, 2)
    nb_harm = int(rng.integers(4, 21))
    k = np.arange(1, nb_harm + 1)
    k = k[k * f0 * 1.02 < 0.45 * fs]
    vib_rate, vib_depth = rng.uniform(4, 7), rng.uniform(0, 0.01)
    phase = 2 * np.pi * f0 * (t - vib_depth * np.cos(2 * np.pi * vib_rate * t) / (2 * np.pi * vib_rate))
    amps = k ** -rng.uniform(0.7, 2.0)
    x = amps @ np.sin(np.outer(k, phase) + rng.uniform(0, 2 * np.pi, (len(k), 1)))
    return x * _asr(n, fs, rng.uniform(0.01, 0.08), rng.uniform(0.05, 0.3))


def _chirp(rng: np.random.Generator, n: int, fs: int, up: bool) -> np.ndarray:
    t = np.arange(n) / fs
    dur = n / fs
    octaves = rng.uniform(1, 3)
    f1 = rng.uniform(200, 1500) if up else rng.uniform(1500, 6000)
    f2 = f1 * 2.0 ** (octaves if up else -octaves)
    top = max(f1, f2)
    if 2 * top > 0.45 * fs:  # keep the second harmonic below Nyquist
        scale = 0.45 * fs / (2 * top)
        f1, f2 = f1 * scale, f2 * scale
    ratio = math.log(f2 / f1)
    phase = 2 * np.pi * f1 * dur / ratio * (np.exp(ratio * t / dur) - 1) + rng.uniform(0, 2 * np.pi)
    x = np.sin(phase) + rng.uniform(0, 0.5) * np.sin(2 * phase)
    return x * _asr(n, fs, rng.uniform(0.005, 0.02), rng.uniform(0.02, 0.1))


def _band_noise(rng: np.random.Generator, n: int, fs: int, fc: float, octaves: float) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / fs)
    with np.errstate(divide='ignore'):
        lf = np.log2(np.maximum(f, 1e-3) / fc)
    return np.fft.irfft(spec * np.exp(-0.5 * (lf / (octaves / 2)) ** 2), n)


def _noise_burst(rng: np.random.Generator, n: int, fs: int) -> np.ndarray:
    t = np.arange(n) / fs
    x = _band_noise(rng, n, fs, 300.0 * 20.0 ** rng.uniform(0, 1), rng.uniform(0.3, 2.0))
    decay = np.exp(-t / (n / fs / rng.uniform(1.5, 4.0)))
    return x * decay * _asr(n, fs, rng.uniform(0.002, 0.02), 0.02)


def _impact(rng: np.random.Generator, n: int, fs: int) -> np.ndarray:
    t = np.arange(n) / fs
    nb_modes = int(rng.integers(3, 7))
    freqs = np.minimum(150.0 * 2.0 ** rng.uniform(0, 4.5, nb_modes), 0.45 * fs)
    taus = rng.uniform(0.04, 0.3, nb_modes)
    amps = rng.uniform(0.3, 1.0, nb_modes)
    modes = amps @ (np.sin(2 * np.pi * np.outer(freqs, t) + rng.uniform(0, 2 * np.pi, (nb_modes, 1)))
                    * np.exp(-t[None, :] / taus[:, None]))
    click = rng.standard_normal(n) * np.exp(-t / rng.uniform(0.0005, 0.001)) * rng.uniform(0.5, 1.5)
    return (modes + click) * _asr(n, fs, 0.0005, 0.02)


def _click_train(rng: np.random.Generator, n: int, fs: int) -> np.ndarray:
    rate = rng.uniform(4, 25)
    period = fs / rate
    nb = max(1, int(n / period))
    times = (np.arange(nb) + 0.5) * period + rng.uniform(-0.1, 0.1, nb) * period
    pulses = np.zeros(n)
    pulses[np.clip(times.astype(int), 0, n - 1)] = rng.uniform(0.5, 1.0, nb)
    pulses[0] = max(pulses[0], 0.3)  # the event starts with a click
    tk = np.arange(int(0.012 * fs)) / fs
    resonance = rng.uniform(1000, min(6000, 0.45 * fs))
    kernel = np.sin(2 * np.pi * resonance * tk + 0.3) * np.exp(-tk / rng.uniform(0.0005, 0.002))
    return scipy.signal.fftconvolve(pulses, kernel)[:n] * _asr(n, fs, 0.0005, 0.01)


def _am_tone(rng: np.random.Generator, n: int, fs: int) -> np.ndarray:
    t = np.arange(n) / fs
    fc = 250.0 * 10.0 ** rng.uniform(0, 1)
    depth = rng.uniform(0.5, 1.0)
    mod = 1 - depth / 2 * (1 - np.cos(2 * np.pi * rng.uniform(3, 15) * t + rng.uniform(0, 2 * np.pi)))
    carrier = np.sin(2 * np.pi * fc * t + rng.uniform(0, 2 * np.pi))
    return mod * carrier * _asr(n, fs, rng.uniform(0.02, 0.08), rng.uniform(0.05, 0.2))


def _fm_tone(rng: np.random.Generator, n: int, fs: int) -> np.ndarray:
    t = np.arange(n) / fs
    fc = 200.0 * 6.0 ** rng.uniform(0, 1)
    fm = fc * rng.choice([0.5, 1.0, 1.4, 2.0]) * rng.uniform(0.98, 1.02)
    max_index = max(0.5, (0.45 * fs - fc) / fm - 1)  # Carson's rule: keep the sidebands below Nyquist
    i0 = min(rng.uniform(2, 6), max_index)
    index = i0 * (0.2 + 0.8 * np.exp(-t / rng.uniform(0.1, 1.0)))
    x = np.sin(2 * np.pi * fc * t + index * np.sin(2 * np.pi * fm * t) + rng.uniform(0, 2 * np.pi))
    return x * _asr(n, fs, rng.uniform(0.005, 0.03), rng.uniform(0.05, 0.2))


_BELL_RATIOS = np.array([0.56, 0.56, 0.92, 0.92, 1.19, 1.7, 2.0, 2.74, 3.0, 3.76, 4.07])
_BELL_OFFSETS_HZ = np.array([0, 1, 0, 1.7, 0, 0, 0, 0, 0, 0, 0])
_BELL_AMPS = np.array([1, 0.67, 1, 1.8, 2.67, 1.67, 1.46, 1.33, 1.33, 1, 1.33])
_BELL_DURS = np.array([1, 0.9, 0.65, 0.55, 0.325, 0.35, 0.25, 0.2, 0.15, 0.1, 0.075])


def _bell(rng: np.random.Generator, n: int, fs: int) -> np.ndarray:
    t = np.arange(n) / fs
    f0 = rng.uniform(200, 900)
    freqs = f0 * _BELL_RATIOS * rng.uniform(0.99, 1.01, len(_BELL_RATIOS)) + _BELL_OFFSETS_HZ
    keep = freqs < 0.45 * fs
    decay = -math.log(1000.0) / (n / fs * _BELL_DURS[keep])  # 60 dB over each partial's duration
    x = (_BELL_AMPS[keep] * rng.uniform(0.7, 1.3, keep.sum())) @ (
        np.sin(2 * np.pi * np.outer(freqs[keep], t) + rng.uniform(0, 2 * np.pi, (keep.sum(), 1)))
        * np.exp(np.outer(decay, t)))
    return x * _asr(n, fs, 0.002, 0.01)


_VOWEL_FORMANTS_HZ = np.array([[730, 1090, 2440], [530, 1840, 2480], [270, 2290, 3010],
                               [570, 840, 2410], [300, 870, 2240]], dtype=float)


def _vowel(rng: np.random.Generator, n: int, fs: int) -> np.ndarray:
    t = np.arange(n) / fs
    f0 = rng.uniform(90, 250) * (1 + 0.02 * np.sin(2 * np.pi * rng.uniform(4, 6) * t)
                                 + 0.01 * rng.standard_normal(n).cumsum() / np.sqrt(n))
    cycles = np.floor(np.cumsum(f0) / fs + rng.uniform(0, 1))
    pulses = np.diff(cycles, prepend=cycles[0] - 1.0)  # 1 at every glottal closure, first sample included
    x = scipy.signal.lfilter([1.0], [1.0, -0.9], pulses)  # glottal spectral tilt
    for fc, bw in zip(_VOWEL_FORMANTS_HZ[rng.integers(len(_VOWEL_FORMANTS_HZ))] * rng.uniform(0.9, 1.1, 3),
                      (80.0, 100.0, 120.0)):
        r = math.exp(-math.pi * bw / fs)
        x = scipy.signal.lfilter([1 - r], [1.0, -2 * r * math.cos(2 * math.pi * min(fc, 0.45 * fs) / fs), r * r], x)
    return x * _asr(n, fs, rng.uniform(0.02, 0.05), rng.uniform(0.05, 0.15))


def _whoosh(rng: np.random.Generator, n: int, fs: int) -> np.ndarray:
    nperseg = 1024
    _, _, spec = scipy.signal.stft(rng.standard_normal(n), nperseg=nperseg)
    f = np.fft.rfftfreq(nperseg, 1 / fs)
    lo, hi = rng.uniform(300, 1000), min(rng.uniform(2000, 8000), 0.45 * fs)
    frac = np.linspace(0, 1, spec.shape[1])
    centre = lo * (hi / lo) ** (frac if rng.random() < 0.5 else 1 - frac)
    lf = np.log2(np.maximum(f, 1.0)[:, None] / centre[None, :])
    _, x = scipy.signal.istft(spec * np.exp(-0.5 * (lf / 0.5) ** 2), nperseg=nperseg)
    x = np.pad(x, (0, max(0, n - len(x))))[:n]
    return x * np.sin(np.pi * (np.arange(n) + 0.5) / n) ** rng.uniform(0.5, 2.0)


#: dB range (re. the tonal part's RMS) of the broadband noise under every tonal built-in event (:func:`_noisy`).
NOISE_DB = (-20.0, -10.0)


def _noisy(generate: Callable[[np.random.Generator, int, float], np.ndarray]
           ) -> Callable[[np.random.Generator, int, float], np.ndarray]:
    """``generate`` with pink noise added that follows its amplitude envelope (10 ms RMS), at a level drawn from
    :data:`NOISE_DB` re. its RMS: the broadband excitation noise (breath, bow, strike, room) of real tonal events."""
    @functools.wraps(generate)
    def noisy(rng: np.random.Generator, n: int, fs: int) -> np.ndarray:
        x = generate(rng, n, fs)
        spec = np.fft.rfft(rng.standard_normal(n))
        f = np.fft.rfftfreq(n, 1 / fs)
        noise = np.fft.irfft(spec / np.sqrt(np.maximum(f, 50.0)), n)  # pink: 1/f power above 50 Hz
        win = max(1, int(0.01 * fs))
        env = np.sqrt(np.convolve(x * x, np.ones(win) / win, mode='same'))
        noise *= env
        gain = 10.0 ** (rng.uniform(*NOISE_DB) / 20.0) * np.sqrt(np.mean(x * x) / max(np.mean(noise * noise), 1e-30))
        return x + gain * noise
    return noisy


# name -> (generator, min duration s, max duration s)
_BUILTIN = {
    'harmonicTone': (_noisy(_harmonic_tone), 0.4, 3.0),
    'chirpUp': (_noisy(functools.partial(_chirp, up=True)), 0.3, 2.0),
    'chirpDown': (_noisy(functools.partial(_chirp, up=False)), 0.3, 2.0),
    'noiseBurst': (_noise_burst, 0.2, 1.5),
    'impact': (_noisy(_impact), 0.2, 1.0),
    'clickTrain': (_click_train, 0.4, 3.0),
    'amTone': (_noisy(_am_tone), 0.4, 3.0),
    'fmTone': (_noisy(_fm_tone), 0.3, 2.5),
    'bell': (_noisy(_bell), 0.5, 3.0),
    'vowel': (_vowel, 0.3, 2.0),
    'whoosh': (_whoosh, 0.4, 2.5),
}
BUILTIN_CLASSES: tuple[str, ...] = tuple(_BUILTIN)


class BuiltinBank(SoundBank):
    """The 11 procedural classes of the module docstring (train and test draw from the same
    distributions; every instance is new)."""

    name = 'builtin'
    classes = BUILTIN_CLASSES

    def min_samples(self, class_idx: int, *, part: str, fs: int) -> int:
        return math.ceil(_BUILTIN[self.classes[class_idx]][1] * fs)

    def draw(self, class_idx: int, *, part: str, rng: np.random.Generator, fs: int, max_samples: int,
             index: int) -> tuple[np.ndarray, str]:
        cls = self.classes[class_idx]
        generate, lo, hi = _BUILTIN[cls]
        n = int(rng.integers(math.ceil(lo * fs), min(math.floor(hi * fs), max_samples) + 1))
        return trim_and_normalize(generate(rng, n, fs)), f'{cls}{index % 1000:03d}.wav'


# --------------------------------------------------------------------------------------------------
# A bank under a dataset's class names (the DCASE look-alikes)
# --------------------------------------------------------------------------------------------------
#: DatasetBank: built-in class k of a dataset is generator k mod 11 transposed up by TRANSPOSE ** (k // 11).
TRANSPOSE = 4.0
#: DatasetBank interferers: any built-in generator transposed by this factor (one octave down).
INTERFERER_TRANSPOSE = 0.5


def _draw_builtin(cls: str, *, rng: np.random.Generator, fs: int, max_samples: int, transpose: float) -> np.ndarray:
    """One built-in event transposed by ``transpose`` (frequencies times it; the generator runs at the nominal
    rate ``fs / transpose`` and its samples are played at ``fs``), duration in the class's range at ``fs``."""
    generate, lo, hi = _BUILTIN[cls]
    n = int(rng.integers(math.ceil(lo * fs), min(math.floor(hi * fs), max_samples) + 1))
    return trim_and_normalize(generate(rng, n, fs / transpose))


class DatasetBank(SoundBank):
    """A sound bank under a dataset's class list (``classes``), for the DCASE look-alikes of :mod:`synth.dcase`.

    Built-in bank: the sounds are SYNTHETIC STAND-INS, not the dataset's sounds. Class k of the dataset is rendered
    by built-in generator ``k mod 11`` (module docstring), transposed up by ``4 ** (k // 11)`` (two octaves for the
    classes beyond the 11th), so that every class index can occur and sounds different from the others. Folder
    bank: class k is the folder's class of the same name (e.g. the DCASE2016 task-2 recordings for tau2019sse);
    every class of the dataset must be in the folder.

    :meth:`draw` returns the class name as the recording name (the DCASE 2019 metadata convention).
    :meth:`draw_interferer` gives unlabelled sounds: a random built-in generator an octave down.

    Parameters
    ----------
    base : SoundBank
        :class:`BuiltinBank` or :class:`FolderBank`.
    classes : sequence of str
        The dataset's class names in index order.
    """

    def __init__(self, base: SoundBank, classes: tuple[str, ...] | list[str]):
        self.base, self.classes, self.name = base, tuple(classes), base.name
        if isinstance(base, BuiltinBank):
            self.sources = [(k % len(BUILTIN_CLASSES), TRANSPOSE ** (k // len(BUILTIN_CLASSES)))
                            for k in range(len(self.classes))]
        else:
            missing = [c for c in self.classes if c not in base.classes]
            if missing:
                raise SELDError(f'{base.name}: has no <class><3 digits>.wav recordings of the class(es) {missing}; '
                                f'a sound-bank folder for this dataset must hold every class of '
                                f'{", ".join(self.classes)} (or use sound_bank=builtin)')
            self.sources = [(base.classes.index(c), 1.0) for c in self.classes]

    def describe(self) -> dict[str, str]:
        """What renders each class: ``{class: 'builtin harmonicTone' | 'builtin harmonicTone x4' | folder}``."""
        if not isinstance(self.base, BuiltinBank):
            return {c: f'{self.base.name} {c}*.wav' for c in self.classes}
        return {c: f'builtin {BUILTIN_CLASSES[src]}' + ('' if up == 1.0 else f' transposed x{up:g}')
                for c, (src, up) in zip(self.classes, self.sources)}

    def min_samples(self, class_idx: int, *, part: str, fs: int) -> int:
        return self.base.min_samples(self.sources[class_idx][0], part=part, fs=fs)

    def draw(self, class_idx: int, *, part: str, rng: np.random.Generator, fs: int, max_samples: int,
             index: int) -> tuple[np.ndarray, str]:
        src, up = self.sources[class_idx]
        if up == 1.0:
            signal, _ = self.base.draw(src, part=part, rng=rng, fs=fs, max_samples=max_samples, index=index)
        else:
            signal = _draw_builtin(BUILTIN_CLASSES[src], rng=rng, fs=fs, max_samples=max_samples, transpose=up)
        return signal, self.classes[class_idx]

    @staticmethod
    def interferer_min_samples(fs: int) -> int:
        """Length in samples of the shortest interferer."""
        return min(math.ceil(lo * fs) for _, lo, _ in _BUILTIN.values())

    def draw_interferer(self, *, rng: np.random.Generator, fs: int, max_samples: int) -> tuple[np.ndarray, str]:
        """An unlabelled sound: a built-in generator (uniform among those that fit) transposed by
        :data:`INTERFERER_TRANSPOSE`; returns (signal, description)."""
        fits = [c for c in BUILTIN_CLASSES if math.ceil(_BUILTIN[c][1] * fs) <= max_samples]
        cls = fits[int(rng.integers(len(fits)))]
        return (_draw_builtin(cls, rng=rng, fs=fs, max_samples=max_samples, transpose=INTERFERER_TRANSPOSE),
                f'{cls} transposed x{INTERFERER_TRANSPOSE:g}')

"""Run a trained SELDnet on your own recordings: per-frame detections, an event list and a figure per file.

Usage::

    python predict.py RUN_FOLDER INPUT [INPUT ...] [--out DIR] [--format dcase2019|dcase2020] [--threshold P]
                      [--channels 0,1,2,3]
    python predict.py runs/ansim_ov1_split1_7 my_recording.wav recordings/

``RUN_FOLDER`` is a folder written by seld.py (``params.json``, ``model.keras``, ``scaler.npz``);
``INPUT`` are wav files (anything libsndfile reads) and/or folders of ``.wav`` files. For every file
``<stem>`` the folder ``--out`` (default ``RUN_FOLDER/inference/``) receives:

    <stem>.csv          detections per frame, headerless: ``frame,class,azi,ele`` (dcase2019, at the
                        model frame rate fs / hop, e.g. 172.27 frames/s) or ``frame,class,track,azi,ele``
                        (dcase2020, 100-ms frames); angles in integer degrees
    <stem>_events.csv   one row per event (a run of consecutive active frames of a class):
                        ``class,onset_s,offset_s,azimuth_deg,elevation_deg`` (mean direction of the run)
    <stem>.png          spectrogram of channel 1, SED and DOA versus time (plots.plot_seld_output)

A run of a DCASE baseline (``features=`` other than ``magphase``, ``output=accdoa|multi_accdoa|multi_accddoa``,
``t_pool_size``) is predicted the same way at its output rate (100 ms); its ``<stem>.csv`` is in its year's format
with every decoded instance (``dcase_outputs.write_instances``: ``dcase2020``, with distances ``dcase2024``, stereo
``dcase2025``; ``--format`` applies to SELDnet runs), the threshold applies to the ACCDOA vectors' length, and the
event list and figure hold one direction per class and frame.

A file of any length is processed whole, with the training features' framing and frame count (a file
shorter than one window of the TUT-2018 framing is zero-padded to one window), computed and predicted in
blocks of ``batch_size`` sequences of ``sequence_length`` frames (the last sequence zero-padded as in
training, the padding dropped afterwards), so memory does not grow with the length beyond the audio
itself. The audio is read by the pipeline's one reader (``cls_feature_class.read_audio``): another sample
rate is resampled to the model's (``librosa.resample``), NaN or infinite samples are an error, and a file
with more channels than the model's is an error unless ``--channels`` names the ones to use.

From Python::

    import predict
    run = predict.load_run('runs/ansim_ov1_split1_7')
    result = predict.predict_file(run, 'my_recording.wav')  # sed_prob, sed, doa, spec, frame_rate, ...
    predict.write_outputs(result, out_dir='out')            # the three files above
    events = predict.events_of(result['sed'], result['doa'], frame_rate=result['frame_rate'])
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from typing import Any

import numpy as np
import soundfile as sf
from tqdm import tqdm

import formats
import label_frames
import plots
import runtime
import utils
from cls_feature_class import Framing, check_channels, extract_features, load_scaler, read_audio
from file_checks import check_wav_complete, writing
from utils import SELDError

USAGE = ('python predict.py RUN_FOLDER INPUT [INPUT ...] [--out DIR] [--format dcase2019|dcase2020] [--threshold P] '
         '[--channels 0,1,2,3]')
FORMATS = ('dcase2019', 'dcase2020')
RUN_FILES = ('params.json', 'model.keras', 'scaler.npz')
EVENTS_HEADER = 'class,onset_s,offset_s,azimuth_deg,elevation_deg'


@dataclasses.dataclass
class Run:
    """What inference needs from a seld.py run folder (see :func:`load_run`).

    Attributes
    ----------
    folder : str
    model : keras.Model
        Input (batch, sequence_length, nb_bins, 2*nb_channels); outputs ``sed_out``, ``doa_out``.
    classes : list of str
    fs : int
        Sample rate of the model's features, Hz.
    framing : cls_feature_class.Framing
        The training features' STFT framing.
    frame_rate : float
        Frames per second, ``fs / hop_len``.
    nb_channels, nb_bins, sequence_length, batch_size : int
    threshold : float
        SED probability above which a class is active (the run's ``sed_threshold``).
    azi_only : bool
        DOA output is (x, y) per class.
    mean, scale : np.ndarray [shape=(nb_bins, nb_maps)], float32
        The feature scaler.
    params : dict
        The run's resolved parameters.
    features : str
        The run's ``features=`` (``magphase``: the paper's; the DCASE baselines': :mod:`dcase_features`).
    nb_maps : int
        Feature maps (``2*nb_channels`` for ``magphase``); ``nb_bins`` is then the bins or mel bands.
    audio_format : str
        ``foa``, ``mic`` or ``stereo`` (what the DCASE features of the channels are).
    output : str
        ``seldnet`` (``sed_out``, ``doa_out``) or an ACCDOA-family output (``accdoa_out``, decoded by
        :func:`dcase_outputs.decode` with the run's ``thresh_unify``).
    frames_per_output : int
        Feature frames per output frame (``prod(t_pool_size)``).
    """
    folder: str
    model: Any
    classes: list[str]
    fs: int
    framing: Framing
    frame_rate: float
    nb_channels: int
    nb_bins: int
    sequence_length: int
    batch_size: int
    threshold: float
    azi_only: bool
    mean: np.ndarray
    scale: np.ndarray
    params: dict[str, Any]
    features: str = 'magphase'
    nb_maps: int = 0
    audio_format: str = 'foa'
    output: str = 'seldnet'
    frames_per_output: int = 1

    @property
    def nb_classes(self) -> int:
        return len(self.classes)

    @property
    def nfft(self) -> int:
        return self.framing.nfft

    @property
    def hop_len(self) -> int:
        return self.framing.hop_len


def read_run_settings(run_folder: str | os.PathLike) -> dict[str, Any]:
    """Check a run folder and read its ``params.json`` (cheap: no TensorFlow, no model).

    Parameters
    ----------
    run_folder : str

    Returns
    -------
    settings : dict
        ``folder``, ``classes``, ``fs``, ``framing``, ``frame_rate``, ``nb_channels``,
        ``nb_bins``, ``sequence_length``, ``batch_size``, ``threshold``, ``azi_only``, ``params``
        (the keyword arguments of :class:`Run` but the model and the scaler).

    Raises
    ------
    SELDError
        The folder or any of ``params.json``, ``model.keras``, ``scaler.npz`` is missing (all
        missing ones are named), or ``params.json`` lacks an entry.
    """
    folder = os.fspath(run_folder)
    if not os.path.isdir(folder):
        raise SELDError(f'{folder}: run folder not found (a folder written by seld.py holding '
                        f'{", ".join(RUN_FILES)})')
    missing = [name for name in RUN_FILES if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        raise SELDError(f'{folder}: not a complete seld.py run folder: {", ".join(missing)} missing'
                        + (' (no epoch has finished yet?)' if missing == ['model.keras'] else ''))
    params_file = os.path.join(folder, 'params.json')
    try:
        record = utils.read_json(params_file)
    except (UnicodeDecodeError, OSError) as err:
        raise SELDError(f'{params_file}: not valid JSON ({err})') from err
    try:
        p, feat = record['params'], record['features']
        framing = Framing(int(feat['fs']), int(feat['nfft']), int(feat['hop_len']), int(feat['win_len']),
                          bool(feat['centered']))
        settings = dict(folder=folder, classes=[str(c) for c in feat['classes']], fs=framing.fs,
                        framing=framing, nb_channels=int(feat['nb_channels']),
                        nb_bins=int(feat['nb_bins']), sequence_length=int(p['sequence_length']),
                        batch_size=int(p['batch_size']), threshold=float(p['sed_threshold']),
                        azi_only=bool(p['azi_only']), params=p, features=str(feat.get('features', 'magphase')),
                        audio_format=str(feat.get('format', 'foa')), output=str(p.get('output', 'seldnet')),
                        frames_per_output=int(feat.get('frames_per_output', 1)))
        if settings['features'] != 'magphase':  # (mel bands, maps) of the DCASE features
            settings['nb_bins'], settings['nb_maps'] = (int(v) for v in feat['feature_shape'])
        else:
            settings['nb_maps'] = 2 * settings['nb_channels']
    except (KeyError, TypeError, ValueError, OverflowError) as err:
        raise SELDError(f'{params_file}: missing or invalid entry {err} (expected the "params" and "features" '
                        f'written by seld.py)') from err
    rules = [('features.fs', framing.fs, framing.fs >= 1000, 'must be a sample rate in Hz >= 1000'),
             ('features.hop_len', framing.hop_len, 1 <= framing.hop_len <= framing.nfft, 'must be in 1 .. nfft'),
             ('features.win_len', framing.win_len, 1 <= framing.win_len <= framing.nfft, 'must be in 1 .. nfft'),
             ('features.nfft', framing.nfft, 16 <= framing.nfft <= 65536 and framing.nfft % 2 == 0,
              'must be an even number of samples, 16 .. 65536'),
             ('features.nb_bins', settings['nb_bins'],
              settings['nb_bins'] == framing.nfft // 2 or settings['features'] != 'magphase', 'must be nfft/2'),
             ('features.frames_per_output', settings['frames_per_output'], settings['frames_per_output'] >= 1,
              'must be >= 1'),
             ('features.nb_channels', settings['nb_channels'], settings['nb_channels'] >= 1, 'must be >= 1'),
             ('features.classes', settings['classes'], len(settings['classes']) >= 1, 'must not be empty'),
             ('params.sequence_length', settings['sequence_length'],
              settings['sequence_length'] >= 1 and settings['sequence_length'] % settings['frames_per_output'] == 0,
              'must be a multiple of features.frames_per_output, >= 1'),
             ('params.batch_size', settings['batch_size'], settings['batch_size'] >= 1, 'must be >= 1'),
             ('params.sed_threshold', settings['threshold'], 0 < settings['threshold'] < 1,
              'must be strictly between 0 and 1')]
    for name, value, ok, rule in rules:
        if not ok:
            raise SELDError(f'{params_file}: {name}={value!r}: {rule}')
    settings['frame_rate'] = framing.frame_rate
    return settings


def load_run(run_folder: str | os.PathLike) -> Run:
    """Load the best model, parameters and scaler of a seld.py run folder.

    Parameters
    ----------
    run_folder : str
        Holds ``params.json``, ``model.keras`` (loaded with Keras safe mode) and ``scaler.npz``.

    Returns
    -------
    run : Run

    Raises
    ------
    SELDError
        The folder or any of its three files is missing (all missing ones are named), or they do
        not agree with each other (model input and outputs, scaler shape, feature description).
    """
    s = read_run_settings(run_folder)
    folder, nb_bins = s['folder'], s['nb_bins']
    params_file = os.path.join(folder, 'params.json')
    scaler_file = os.path.join(folder, 'scaler.npz')
    mean, scale = load_scaler(scaler_file, hint='copy scaler.npz again from the feature folder of the run '
                                                '(params.json: features.feat_label_dir)')
    nb_maps = s['nb_maps']
    if mean.shape != (nb_bins, nb_maps) or scale.shape != mean.shape:
        raise SELDError(f'{scaler_file}: shape {mean.shape} does not match the features of {params_file} '
                        f'({nb_bins} bins, {nb_maps} maps)')
    runtime.import_keras()  # Keras and its backend: loaded only now, so argument and file errors are reported fast
    import keras_model

    model_file = os.path.join(folder, 'model.keras')
    model = keras_model.load_model(model_file)
    expected_in = (s['sequence_length'], nb_bins, nb_maps)
    got_in = tuple(model.input_shape[1:])
    if len(got_in) != 3 or any(g is not None and g != e for g, e in zip(got_in, expected_in)):
        raise SELDError(f'{model_file}: input shape {got_in} does not match {params_file} '
                        f'(sequence_length, bins, maps) = {expected_in}')
    C = len(s['classes'])
    if s['output'] == 'seldnet':
        expected_out = dict(sed_out=C, doa_out=(2 if s['azi_only'] else 3) * C)
    else:  # tracks x values per track x classes (keras_model.py)
        values = 3 + (s['output'] == 'multi_accddoa') - (s['output'] == 'multi_accddoa' and s['azi_only'])
        expected_out = dict(accdoa_out=(1 if s['output'] == 'accdoa' else 3) * values * C)
    got_out = {name: out.shape[-1] for name, out in zip(model.output_names, model.outputs)}
    if got_out != expected_out:
        raise SELDError(f'{model_file}: outputs {got_out} do not match the {len(s["classes"])} classes of '
                        f'{params_file} (expected {expected_out})')
    return Run(model=model, mean=mean, scale=scale, **s)


# --------------------------------------------------------------------------------------------------
# Audio
# --------------------------------------------------------------------------------------------------
def audio_info(path: str, *, nb_channels: int, channels: list[int] | None = None) -> tuple[int, int, int]:
    """Check a file's header before any work: readable, the channel rule of :func:`cls_feature_class.read_audio`.

    Returns
    -------
    fs, channels, samples : int
    """
    check_wav_complete(path)
    try:
        info = sf.info(path)
    except Exception as err:  # libsndfile raises several types for unreadable files
        raise SELDError(f'{path}: cannot read audio ({err})') from err
    check_channels(path, nb_file=info.channels, nb_channels=nb_channels, channels=channels)
    return int(info.samplerate), int(info.channels), int(info.frames)


# --------------------------------------------------------------------------------------------------
# Inference
# --------------------------------------------------------------------------------------------------
def predict_audio(run: Run, audio: np.ndarray) -> dict[str, np.ndarray]:
    """Run the model over a whole recording.

    The features of frames ``[f0, f1)`` (``extract_features(..., first_frame=f0)``) are identical to those of one
    STFT of the whole file; they are computed and predicted one block of
    ``batch_size * sequence_length`` frames at a time, the last sequence zero-padded (after
    normalization, as the training generator pads) and the padding dropped.

    Parameters
    ----------
    run : Run
    audio : np.ndarray [shape=(samples, nb_channels)] at ``run.fs``

    Returns
    -------
    dict with
        ``sed_prob`` np.ndarray [shape=(frames, classes)], float32 - SED probabilities;
        ``doa`` np.ndarray [shape=(frames, 3*classes) or (frames, 2*classes)], float32 - the network's
        DOA output in blocks [x.., y.., z..] (meaningful only where the class is active);
        ``spec`` np.ndarray [shape=(frames, bins)], float32 - the first feature map (STFT magnitude of channel 1,
        or the log-mel of channel 1).
        For an ACCDOA-family run, ``output`` [shape=(output frames, values)] (the model's ``accdoa_out``) replaces
        ``sed_prob`` and ``doa``; with time pooling, output frames are ``ceil(frames / frames_per_output)``.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 2 or audio.shape[1] != run.nb_channels:
        raise SELDError(f'audio has shape {audio.shape}: expected (samples, {run.nb_channels})')
    if not run.framing.centered and audio.shape[0] < run.nfft + run.hop_len:  # at least one frame
        audio = np.pad(audio, ((0, run.nfft + run.hop_len - audio.shape[0]), (0, 0)))
    n = run.framing.nb_frames(audio.shape[0])
    T, p = run.sequence_length, run.frames_per_output
    block = T * run.batch_size
    whole = None
    if run.features != 'magphase':  # the DCASE features are whole-recording (the log-mel's top_db): computed once
        from cls_feature_class import _frames

        import dcase_features
        whole = dcase_features.compute(_frames(audio, run.framing, None)[0], window=run.framing.window(),
                                       features=run.features, fs=run.fs, audio_format=run.audio_format)
    names = ('sed_out', 'doa_out') if run.output == 'seldnet' else ('accdoa_out',)
    outs: dict[str, list] = {k: [] for k in names}
    spec = []
    for f0 in range(0, n, block):
        f1 = min(f0 + block, n)
        feat = (extract_features(audio, framing=run.framing, first_frame=f0, nb_frames=f1 - f0) if whole is None
                else whole[f0:f1])
        spec.append(feat[..., 0].copy())
        x = (feat - run.mean) / run.scale
        nb_seq = -(-(f1 - f0) // T)
        x = np.pad(x, ((0, nb_seq * T - (f1 - f0)), (0, 0), (0, 0)))
        out = run.model.predict_on_batch(x.reshape(nb_seq, T, run.nb_bins, run.nb_maps))
        for k in names:  # output frames: T / p per sequence; those of the real frames kept
            outs[k].append(np.asarray(out[k]).reshape(nb_seq * (T // p), -1)[:-(-(f1 - f0) // p)])
    result = {k: np.concatenate(v).astype(np.float32) for k, v in outs.items()}
    spec = np.concatenate(spec).astype(np.float32)
    if run.output != 'seldnet':
        return dict(output=result['accdoa_out'], spec=spec)
    return dict(sed_prob=result['sed_out'], doa=result['doa_out'], spec=spec)


def predict_file(run: Run, path: str | os.PathLike, *, threshold: float | None = None,
                 channels: list[int] | None = None) -> dict[str, Any]:
    """Predict one recording.

    Parameters
    ----------
    run : Run
        From :func:`load_run`.
    path : str
        Audio file of any length and sample rate with ``run.nb_channels`` channels (or ``channels``).
    threshold : float, optional
        SED threshold (default: the run's ``sed_threshold``).
    channels : list of int, optional
        The file's channels to use (required when it has more than ``run.nb_channels``).

    Returns
    -------
    result : dict
        ``sed_prob`` [shape=(frames, classes)] probabilities; ``sed`` [shape=(frames, classes)]
        float32 in {0, 1}; ``doa`` [shape=(frames, 3*classes) or (frames, 2*classes)] the network's
        DOA output; ``spec`` [shape=(frames, nfft/2)] magnitude of channel 1; ``frame_rate``
        (frames/s); ``nb_frames``; ``nb_samples`` (at ``fs``, before padding); ``fs`` (Hz);
        ``duration_s``; ``classes``; ``path``; ``notes`` (list of str: resampling, dropped channels).
    """
    path = os.fspath(path)
    threshold = run.threshold if threshold is None else float(threshold)
    audio, _, notes = read_audio(path, fs=run.fs, nb_channels=run.nb_channels, channels=channels)
    out = predict_audio(run, audio)
    if run.output != 'seldnet':  # decoded as the baselines do; class-wise matrices for the event list and figure
        import dcase_outputs

        inst = dcase_outputs.decode(out['output'], output=run.output, nb_classes=run.nb_classes,
                                    azi_only=run.azi_only, threshold=threshold,
                                    thresh_unify=float(run.params.get('thresh_unify', 15.0)))
        sed, doa = label_frames.instances_to_matrices(
            inst._replace(vec=inst.vec[:, :2] if run.azi_only else inst.vec), nb_classes=run.nb_classes,
            nb_frames=len(out['output']))
        out.update(instances=inst, sed_prob=sed, doa=doa.astype(np.float32),
                   instances_format='dcase2025' if run.azi_only else
                   'dcase2024' if run.output == 'multi_accddoa' else 'dcase2020')
    out.update(sed=(out['sed_prob'] > threshold).astype(np.float32), frame_rate=run.frame_rate / run.frames_per_output,
               nb_frames=int(out['sed_prob'].shape[0]), nb_samples=int(audio.shape[0]), fs=run.fs,
               duration_s=audio.shape[0] / run.fs, classes=list(run.classes), path=path, notes=notes,
               threshold=threshold, frames_per_output=run.frames_per_output)
    return out


def events_of(sed: np.ndarray, doa: np.ndarray, *, frame_rate: float) -> dict[str, np.ndarray]:
    """Events = runs of consecutive active frames of a class, with their mean direction.

    Parameters
    ----------
    sed : np.ndarray [shape=(frames, classes)], values in {0, 1}
    doa : np.ndarray [shape=(frames, 3*classes) or (frames, 2*classes)], blocks [x.., y.., (z..)]
    frame_rate : float
        Frames per second; frame ``i`` covers ``[i, i + 1) / frame_rate`` seconds.

    Returns
    -------
    events : dict of np.ndarray [shape=(events,)], sorted by onset then class
        ``cls`` (int), ``onset_s``, ``offset_s`` (end of the last active frame), ``azimuth``,
        ``elevation`` (degrees; the mean of the run's unit vectors, renormalized; elevation 0 for
        an azimuth-only model), ``first``, ``last`` (frame indices, inclusive).
    """
    act = np.asarray(sed) > 0.5
    C = act.shape[1]
    vec = label_frames.doa_vectors(doa, nb_classes=C)  # (frames, classes, k)
    norm = np.linalg.norm(vec, axis=-1, keepdims=True)
    unit = np.divide(vec, norm, out=np.zeros_like(vec), where=norm > 0) * act[..., None]
    edges = np.diff(np.pad(act.T.astype(np.int8), ((0, 0), (1, 1))), axis=1)  # (classes, frames + 1)
    cls, first = np.nonzero(edges == 1)
    _, stop = np.nonzero(edges == -1)  # row-major order pairs each onset with its offset
    csum = np.concatenate([np.zeros((1,) + unit.shape[1:]), np.cumsum(unit, axis=0)])  # (frames + 1, C, k)
    mean = csum[stop, cls] - csum[first, cls]
    if mean.shape[-1] == 2:
        mean = np.concatenate([mean, np.zeros(mean.shape[:-1] + (1,))], axis=-1)
    azi, ele, _ = utils.cart2sph(mean)
    order = np.lexsort((cls, first))
    return dict(cls=cls[order], first=first[order], last=stop[order] - 1, onset_s=first[order] / frame_rate,
                offset_s=stop[order] / frame_rate, azimuth=azi[order], elevation=ele[order])


def write_events_csv(path: str | os.PathLike, events: dict[str, np.ndarray], *, classes: list[str]) -> None:
    """Write :func:`events_of` as ``class,onset_s,offset_s,azimuth_deg,elevation_deg`` (atomically)."""
    rows = [EVENTS_HEADER]
    rows += [f'{classes[c]},{on:.3f},{off:.3f},{az:.1f},{el:.1f}'
             for c, on, off, az, el in zip(events['cls'], events['onset_s'], events['offset_s'],
                                           events['azimuth'], events['elevation'])]
    utils.write_text(path, '\n'.join(rows) + '\n')


def write_outputs(result: dict[str, Any], *, out_dir: str, fmt: str = 'dcase2019') -> dict[str, Any]:
    """Write the CSV, the event list and the figure of one :func:`predict_file` result.

    Returns
    -------
    written : dict with ``csv``, ``events_csv``, ``figure`` (paths) and ``events`` (:func:`events_of`)
    """
    if fmt not in FORMATS:
        raise SELDError(f'--format {fmt}: must be one of {", ".join(FORMATS)}')
    stem = os.path.splitext(os.path.basename(result['path']))[0]
    paths = dict(csv=os.path.join(out_dir, stem + '.csv'), events_csv=os.path.join(out_dir, stem + '_events.csv'),
                 figure=os.path.join(out_dir, stem + '.png'))
    fr = result['frame_rate']
    if 'instances' in result:  # an ACCDOA-family run: its year's format, every instance (dcase_outputs.py)
        import dcase_outputs

        dcase_outputs.write_instances(paths['csv'], result['instances'], fmt=result['instances_format'])
    else:
        out_rate = fr if fmt == 'dcase2019' else formats.FORMAT_FRAME_RATE[fmt]
        formats.write_csv(paths['csv'], result['sed'], result['doa'], fmt=fmt, frame_rate=fr,
                          out_frame_rate=out_rate, angle_decimals=0)
    events = events_of(result['sed'], result['doa'], frame_rate=fr)
    write_events_csv(paths['events_csv'], events, classes=result['classes'])
    p = result.get('frames_per_output', 1)  # the figure at the features' rate
    plots.plot_seld_output(paths['figure'], spec=result['spec'], classes=result['classes'], frame_rate=fr * p,
                           pred_sed=np.repeat(result['sed'], p, axis=0)[:len(result['spec'])],
                           pred_doa=np.repeat(result['doa'], p, axis=0)[:len(result['spec'])], fs=result['fs'],
                           title=f'{os.path.basename(result["path"])}: SELDnet prediction '
                                 f'(threshold {result["threshold"]:g})')
    return dict(paths, events=events)


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------
def collect_inputs(inputs: list[str]) -> tuple[list[str], bool]:
    """Expand folders to their ``.wav`` files (sorted); refuse missing paths, empty folders, stem clashes.

    Returns
    -------
    files : list of str
    any_folder : bool
    """
    if not inputs:  # argparse drops a '--' it takes as the only INPUT: `predict.py RUN -- --`
        raise SELDError('no INPUT given: name wav files and/or folders of wav files after the run folder')
    files: list[str] = []
    any_folder = False
    for item in inputs:
        if os.path.isdir(item):
            any_folder = True
            wavs = sorted(os.path.join(item, f) for f in os.listdir(item)
                          if f.lower().endswith('.wav') and os.path.isfile(os.path.join(item, f)))
            if not wavs:
                raise SELDError(f'{item}: folder holds no .wav files')
            files += wavs
        elif os.path.isfile(item):
            files.append(item)
        else:
            raise SELDError(f'{item if item.isprintable() else repr(item)}: no such file or folder')
    unique: list[str] = []
    by_stem: dict[str, str] = {}
    for f in files:
        stem = os.path.splitext(os.path.basename(f))[0]
        if stem in by_stem and os.path.samefile(f, by_stem[stem]):
            continue  # the same file given twice
        if stem in by_stem:
            raise SELDError(f'{f} and {by_stem[stem]}: same name {stem!r}, their outputs would overwrite each '
                            f'other; run them into different --out folders')
        by_stem[stem] = f
        unique.append(f)
    return unique, any_folder


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f'{text!r} is not a number') from err
    if not 0.0 < value < 1.0:  # NaN fails this too
        raise argparse.ArgumentTypeError(f'{value} must be strictly between 0 and 1')
    return value


def _channel_list(text: str) -> list[int]:
    try:
        value = [int(c) for c in text.split(',')]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f'{text!r} is not a comma-separated list of channel indices') from err
    if not value or any(c < 0 for c in value):
        raise argparse.ArgumentTypeError(f'{text!r}: channel indices must be >= 0')
    if len(set(value)) != len(value):
        raise argparse.ArgumentTypeError(f'{text!r}: channel indices must be distinct')
    return value


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are a :class:`SELDError` (one line ``error: ...``, exit 2 through
    :func:`utils.run_cli`) instead of its usage text and ``sys.exit``."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise SELDError(f'{message}; usage: {USAGE}'.replace('\n', '\\n').replace('\r', '\\r'))


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(
        prog='predict.py', usage=USAGE,
        description='Run a trained SELDnet (a seld.py run folder) on wav files: per-frame DCASE CSV, event list '
                    'and figure per file.')
    ap.add_argument('run_folder', metavar='RUN_FOLDER', help='run folder written by seld.py')
    ap.add_argument('inputs', metavar='INPUT', nargs='+', help='wav files and/or folders of wav files')
    ap.add_argument('--out', metavar='DIR', help='output folder (default: RUN_FOLDER/inference)')
    ap.add_argument('--format', choices=FORMATS, default='dcase2019',
                    help='per-frame CSV: dcase2019 = frame,class,azi,ele at the model frame rate (default); '
                         'dcase2020 = frame,class,track,azi,ele in 100-ms frames')
    ap.add_argument('--threshold', type=_threshold, metavar='P',
                    help="SED probability threshold in (0, 1) (default: the run's sed_threshold)")
    ap.add_argument('--channels', type=_channel_list, metavar='LIST',
                    help="the files' channels to use, e.g. 0,1,2,3 (required for files with more channels than the "
                         "model's)")
    return ap


def check_arguments(argv: list[str]) -> tuple[argparse.Namespace, list[str], bool]:
    """Everything :func:`main` checks before loading the model: the flags, the inputs (readable, complete, the
    right channels), the run folder's ``params.json`` and the output folder.

    Returns
    -------
    args : argparse.Namespace
    files : list of str
    any_folder : bool
        An input was a folder.

    Raises
    ------
    SELDError
        The first fault, in one line.
    """
    args = build_parser().parse_args(argv)
    files, any_folder = collect_inputs(args.inputs)
    settings = read_run_settings(args.run_folder)
    for f in files:  # fail on an unreadable file or a wrong channel count before loading the model
        audio_info(f, nb_channels=settings['nb_channels'], channels=args.channels)
    out_dir = args.out or os.path.join(settings['folder'], 'inference')
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise SELDError(f'--out {out_dir}: exists and is not a folder')
    return args, files, any_folder


def main(argv: list[str]) -> int:
    try:
        return _main(argv)
    except OSError as err:  # outputs name their folder themselves (cls_feature_class.writing); this is the rest
        raise SELDError(f'{err.filename or "predict.py"}: {err.strerror or err}') from err


def _main(argv: list[str]) -> int:
    t0 = time.time()
    args, files, any_folder = check_arguments(argv)
    run = load_run(args.run_folder)
    print(runtime.device_line(), flush=True)
    out_dir = args.out or os.path.join(run.folder, 'inference')
    with writing(out_dir):
        os.makedirs(out_dir, exist_ok=True)
    nb_events, seconds = 0, 0.0
    bar = tqdm(files, desc='predict', unit='file', disable=not (any_folder or len(files) > 1), file=sys.stderr)
    for f in bar:
        result = predict_file(run, f, threshold=args.threshold, channels=args.channels)
        for note in result['notes']:
            tqdm.write(f'note: {note}', file=sys.stdout)
        with writing(out_dir):
            written = write_outputs(result, out_dir=out_dir, fmt=args.format)
        nb_events += len(written['events']['cls'])
        seconds += result['duration_s']
    bar.close()
    fmt = args.format if run.output == 'seldnet' else 'the run\'s year\'s format'
    native = args.format == 'dcase2019' and run.output == 'seldnet' and run.frames_per_output == 1
    rate = f'{run.frame_rate:.2f} frames/s (model frame rate)' if native else '10 frames/s (100 ms)'
    threshold = run.threshold if args.threshold is None else args.threshold
    print(f'predict: {len(files)} file(s), {seconds:.1f} s of audio, {nb_events} event(s) at threshold '
          f'{threshold:g}; {fmt} CSVs at {rate}, events and figures in {out_dir} ({time.time() - t0:.1f} s)')
    return 0


if __name__ == '__main__':
    utils.run_cli(main)

"""synthesize_dataset.py's command line, fuzzed: every ``key=value`` argument list either passes validation or is
refused with a one-line :class:`utils.SELDError`; nothing else may escape (no traceback from the command).

The heavy part of a synthesis (the clips) is not run: the sound bank loader is wrapped so that, once the real
loader has accepted the bank, a sentinel exception stops the command. What is checked is everything the command
does with its arguments before it makes audio: parsing, typing, validation, the bank's path.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import synthesize_dataset as sd
from synth import dcase, sound_bank, tut2018
from datasets import DCASE_DATASETS
from utils import SELDError

ROOT = Path(__file__).resolve().parents[1]

# Values that break naive parsing or validation: zeros, negatives, non-finite numbers, wrong types, empty text,
# huge numbers, paths that are not folders.
NASTY = ['0', '-1', '-0', '1', '2', '3', '0.5', '1e9', '1e400', 'nan', 'NaN', 'inf', '-inf', '', ' ', 'abc',
         'true', 'false', 'yes', '[1,2]', '{}', 'None', '/nonexistent/bank', '.', 'ansim', 'foa', 'mic',
         'tau2019sse', 'starss23', '1_000', '0x10', '٣', '10.0', '30', '20']


class Reached(Exception):
    """Raised where the command would start synthesizing: the arguments were accepted."""


@pytest.fixture()
def stop_before_audio(monkeypatch):
    def loader(bank, **kw):
        sound_bank.load_sound_bank(bank, **kw)  # the real checks of the bank's path
        raise Reached
    monkeypatch.setattr(tut2018, 'load_sound_bank', loader)
    monkeypatch.setattr(dcase, 'load_sound_bank', loader)


def _keys() -> list[str]:
    keys = set(tut2018.CLI_DEFAULTS)
    for name in DCASE_DATASETS:
        keys |= set(dcase.cli_defaults(name))
    return sorted(keys) + ['unknown_key']


ARGS = st.lists(st.tuples(st.sampled_from(_keys()), st.sampled_from(NASTY)), max_size=5)
COUNTS = {'accepted': 0, 'refused': 0}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=ARGS, dataset=st.sampled_from(['ansim', 'cansim', 'resim', *DCASE_DATASETS, 'bogus']))
def test_fuzzed_arguments_pass_or_are_refused_cleanly(stop_before_audio, tmp_path, pairs, dataset):
    argv = [f'dataset={dataset}', f'dataset_dir={tmp_path / "d"}'] + [f'{k}={v}' for k, v in pairs]
    try:
        sd.main(argv)
    except Reached:
        COUNTS['accepted'] += 1
    except SELDError as err:
        msg = str(err)
        assert msg and '\n' not in msg, argv  # one line
        COUNTS['refused'] += 1
    else:  # main returns only after a synthesis, which the sentinel stops
        pytest.fail(f'{argv}: neither accepted nor refused')


def test_fuzz_saw_both_outcomes():
    # Runs after the fuzz test (file order): it must have exercised both paths, or it proved nothing.
    if sum(COUNTS.values()) == 0:
        pytest.skip('run together with test_fuzzed_arguments_pass_or_are_refused_cleanly')
    assert COUNTS['accepted'] > 0 and COUNTS['refused'] > 0, COUNTS
    print(f'synthesize_dataset.py fuzz: {sum(COUNTS.values())} argument lists, {COUNTS["refused"]} refused '
          f'cleanly, {COUNTS["accepted"]} accepted')


@pytest.mark.parametrize('argv, needle', [
    (['overlap=0'], 'overlap=0'),
    (['nb_train=-1'], 'nb_train=-1'),
    (['clip_len_s=nan'], 'clip_len_s'),
    (['fs=abc'], 'fs'),
    (['sound_bank=/nonexistent/bank', 'nb_train=1', 'nb_test=0'], '/nonexistent/bank'),
    (['dataset=starss23', 'same_class=2'], 'same_class=2'),
    (['bogus=1'], 'bogus'),
])
def test_command_refuses_with_one_line_and_status_2(tmp_path, argv, needle):
    from commands import in_process  # the command's main through utils.run_cli, without an interpreter's start
    out = in_process(sd.main, f'dataset_dir={tmp_path / "d"}', *argv)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ') and needle in lines[0], out.stderr
    assert 'Traceback' not in out.stderr
    assert not (tmp_path / 'd').exists() or not any((tmp_path / 'd').rglob('*.wav'))


def test_dataset_dir_that_is_a_file_is_one_line_error(tmp_path):
    # An OSError (here: a folder cannot be made inside a file) is reported by utils.run_cli like a SELDError; from
    # the shell, as a user runs the command (the exit-status contract).
    blocker = tmp_path / 'a_file'
    blocker.write_text('not a folder')
    out = subprocess.run([sys.executable, 'synthesize_dataset.py', f'dataset_dir={blocker}', 'nb_train=1',
                          'nb_test=0', 'clip_len_s=2', 'progress=false'], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and 'Traceback' not in out.stderr, out.stderr
    line, = out.stderr.strip().splitlines()
    assert line.startswith(f'error: {blocker}') and 'Not a directory' in line
    assert blocker.read_text() == 'not a folder'

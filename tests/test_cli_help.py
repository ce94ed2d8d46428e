"""``--help`` of the commands: generated from parameter.py, complete, and answered without a backend; and the
commands' output carries no backend start-up log."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import parameter
import runtime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Run a command's module as __main__ and report which heavy libraries it imported before exiting.
PROBE = '''
import runpy, sys
sys.argv = [{script!r}, '--help']
try:
    runpy.run_path({script!r}, run_name='__main__')
except SystemExit as e:
    code = e.code
print('IMPORTED', sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch', 'librosa') if m in sys.modules))
print('EXIT', code)
'''


@pytest.mark.parametrize('script', ['seld.py', 'batch_feature_extraction.py'])
def test_help_lists_every_task_and_key_without_importing_a_backend(script):
    out = subprocess.run([sys.executable, '-c', PROBE.format(script=script)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[-1] == 'EXIT 0' and lines[-2] == 'IMPORTED []', lines[-2:]
    text = '\n'.join(lines[:-2])
    assert text.startswith(f'usage: python {script}')
    for task in parameter.TASKS:
        assert any(line.split()[:1] == [task] for line in text.splitlines()), task
    for key, value in parameter.DEFAULTS.items():  # every key, with its default and its comment
        entry = next(line for line in text.splitlines() if line.strip().startswith(f'{key}='))
        assert entry.strip().startswith(f'{key}={parameter._show(value)}  '), entry
        assert len(entry.split('  ', 1)[1].strip()) > 3, entry
    assert out.stderr == ''


def test_help_text_joins_continued_comments_and_shows_sections():
    rows, tasks = parameter._source_comments()
    comments = {key: comment for _, key, comment in rows if key}
    assert set(comments) == set(parameter.DEFAULTS)
    # lr_schedule's comment continues on the next line of parameter.py
    assert comments['lr_schedule'].endswith('to 0 at nb_epochs (keras_model.learning_rate)')
    assert [s for s, key, _ in rows if s][:2] == ['run control', 'folders (no machine paths in code: relative to '
                                                                 'the current directory)']
    assert tasks['999'].startswith('quick test') and set(tasks) == set(parameter.TASKS)


def test_commands_print_no_backend_log():
    """A command that imports Keras prints only its own words: here a one-line error, nothing from TensorFlow."""
    env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
    out = subprocess.run([sys.executable, 'seld.py', 'job', '999', 'feat_label_dir=no/such/folder'], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 2
    assert out.stdout == ''
    assert out.stderr.count('\n') == 1 and out.stderr.startswith('error: '), out.stderr


def test_device_line_says_where_training_runs():
    runtime.import_keras()
    line = runtime.device_line()
    names = runtime.accelerators()
    assert line.startswith('device: Keras ')
    assert ('GPU' in line.split(' on ', 1)[1]) and (bool(names) or 'no GPU found' in line)


def test_seld_refuses_an_output_it_cannot_score_before_training():
    import seld
    from utils import SELDError

    params = parameter.get_params('999', ['features=logmel_iv', 'output=multi_accdoa', 't_pool_size=4,1,1',
                                          'pool_size=4,4,2', 'feat_label_dir=no/such/folder'])
    with pytest.raises(SELDError, match="output=multi_accdoa: the DCASE baselines' outputs are scored on datasets "
                                        "with 100 ms frame metadata"):
        seld.train(params, 'job')

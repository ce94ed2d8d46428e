"""The README's commands, copied from its ``bash`` blocks, run in order in a scratch folder and succeed.

Only their size changes: keys that set how much data or training there is (clips, clip lengths, epochs) are set
to tiny values (:data:`TINY`), replacing the README's value where it gives one. The install and test commands are
not run here (this is the test run); they must be exactly the commands of ``.ci/run``.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Size keys per command (script -> key -> value).
TINY = {
    'batch_feature_extraction.py': dict(synth_nb_train=4, synth_nb_test=2, synth_clip_len_s=3),
    'seld.py': dict(quick_test='true', nb_epochs=1, synth_nb_train=4, synth_nb_test=2, synth_clip_len_s=3),
    'synthesize_dataset.py': dict(nb_train=2, nb_test=1, clip_len_s=3, nb_per_fold=1, clip_len_max_s=0),
}
#: synthesize_dataset.py keys that only some layouts accept.
SYNTH_TUT_ONLY, SYNTH_DCASE_ONLY = {'nb_train', 'nb_test'}, {'nb_per_fold', 'clip_len_max_s'}


def readme_commands() -> list[str]:
    """Every command line of the README's ``bash`` blocks (``&&`` chains split), comments dropped."""
    with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as f:
        text = f.read()
    out = []
    for block in re.findall(r'```bash\n(.*?)```', text, flags=re.S):
        for line in block.splitlines():
            line = line.split('  #')[0].strip()
            out += [part.strip() for part in line.split('&&') if part.strip()]
    return out


def shrink(command: str) -> list[str]:
    """The command as an argv, with the size keys of :data:`TINY` set (replacing the README's values)."""
    argv = shlex.split(command)
    env = [a for a in argv if re.match(r'^[A-Z_]+=', a)]
    argv = argv[len(env):]
    script = os.path.basename(argv[1]) if len(argv) > 1 else ''
    tiny = dict(TINY.get(script, {}))
    if script == 'synthesize_dataset.py':
        dcase = any(a.startswith('dataset=') and a.split('=')[1] not in ('ansim', 'resim', 'cansim', 'cresim')
                    for a in argv)
        tiny = {k: v for k, v in tiny.items() if k not in (SYNTH_TUT_ONLY if dcase else SYNTH_DCASE_ONLY)}
    if any(a in ('-h', '--help') for a in argv) or not tiny:
        return env + argv
    keep = [a for a in argv if a.split('=', 1)[0] not in tiny]
    return env + keep + [f'{k}={v}' for k, v in tiny.items()]


def test_readme_has_the_two_commands_of_a_fresh_machine():
    commands = readme_commands()
    with open(os.path.join(ROOT, '.ci', 'run'), encoding='utf-8') as f:
        ci = f.read().strip().splitlines()[-1]
    assert ci in [' && '.join(commands[i:i + 2]) for i in range(len(commands))]  # CI runs the README's command
    assert commands[:3] == ['pip install -r requirements.txt', 'python batch_feature_extraction.py embedded',
                            'python seld.py 1 embedded']
    assert 'python -m pytest -q -m "not slow"' in commands


def test_shrink_sets_size_keys_and_keeps_the_rest():
    assert shrink('python seld.py 1 embedded') == ['python', 'seld.py', '1', 'embedded', 'quick_test=true',
                                                   'nb_epochs=1', 'synth_nb_train=4', 'synth_nb_test=2',
                                                   'synth_clip_len_s=3']
    assert shrink('KERAS_BACKEND=jax python seld.py --help') == ['KERAS_BACKEND=jax', 'python', 'seld.py', '--help']
    assert shrink('python synthesize_dataset.py dataset=resim nb_train=20') == [
        'python', 'synthesize_dataset.py', 'dataset=resim', 'nb_train=2', 'nb_test=1', 'clip_len_s=3']


@pytest.mark.slow
def test_readme_commands_run_as_written(tmp_path):
    for name in os.listdir(ROOT):  # the repository's code, seen from a scratch folder
        if name.endswith('.py') or name in ('synth', 'benchmarks'):
            os.symlink(os.path.join(ROOT, name), tmp_path / name)
    ran = 0
    for command in readme_commands():
        if command.startswith(('pip ', 'python -m pip', 'python -m pytest')):
            continue  # installs and the test command itself: checked above
        argv = shrink(command)
        env = dict(os.environ, **dict(a.split('=', 1) for a in argv if re.match(r'^[A-Z_]+=', a)))
        argv = [a for a in argv if not re.match(r'^[A-Z_]+=', a)]
        assert argv[0] == 'python', command
        if env.get('KERAS_BACKEND') == 'jax':
            pytest.importorskip('jax')
        out = subprocess.run([sys.executable] + argv[1:], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=900)
        assert out.returncode == 0, f'{command}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}'
        ran += 1
    assert ran >= 8

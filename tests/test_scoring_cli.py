"""The scoring command (``python evaluation_metrics.py``): the README's commands as written, the format of
headerless references from their field count, and bad flags, files and values as one-line errors (exit 2), never
a traceback - by hand and by a hypothesis fuzz of the flags and of format.json."""
from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import shutil
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import evaluation_metrics as em
import formats
import metric_definitions as md
from utils import SELDError

import test_oracle

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_main(*args) -> tuple[int, str, str]:
    """``evaluation_metrics.main`` in-process: (exit status, stdout, stderr) as ``utils.run_cli`` would give them."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = em.main([str(a) for a in args])
        except SELDError as e:
            print(f'error: {e}', file=err)
            rc = 2
    return rc, out.getvalue(), err.getvalue()


def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, os.path.join(ROOT, 'evaluation_metrics.py'), *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def assert_one_line_error(rc: int, stderr: str, *needles: str) -> None:
    assert rc == 2, stderr
    assert 'Traceback' not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


# ==================================================================================================
# The README's commands, as written
# ==================================================================================================
def readme_commands() -> list[str]:
    """The ``python evaluation_metrics.py`` lines of docs/metrics.md's "Scoring a folder" section (the reference page
    of the scoring command)."""
    text = open(os.path.join(ROOT, 'docs', 'metrics.md'), encoding='utf-8').read()
    section = text[text.index('## Scoring a folder'):] + '\n## '
    section = section[:section.index('\n## ', 3)]
    return [line.strip() for line in section.splitlines() if line.strip().startswith('python evaluation_metrics.py')]


@pytest.fixture(scope='module')
def readme_data(tmp_path_factory):
    """A TUT-2018 run's predictions (the stored labels, with format.json) and a TAU-NIGENS 2021 metadata_dev/ with
    another system's files (dcase2020 rows, no format.json), each an oracle of its reference."""
    tmp = str(tmp_path_factory.mktemp('readme'))
    tut = test_oracle.oracle(test_oracle.write_layout(os.path.join(tmp, 'tut'), 'ansim'), os.path.join(tmp, 'tut'))
    nigens = test_oracle.oracle(test_oracle.write_layout(os.path.join(tmp, 'nigens'), 'tau2021sse_nigens'),
                                os.path.join(tmp, 'nigens'))
    system = os.path.join(tmp, 'my_system')
    shutil.copytree(nigens['pred_dir'], system)
    os.remove(os.path.join(system, formats.FORMAT_FILE))
    return {'data/ansim/desc_ov1_split1': tut['meta_dir'], 'runs/ansim_ov1_split1_1/predictions': tut['pred_dir'],
            'data/TAU-NIGENS2021/metadata_dev': nigens['meta_dir'], 'my_system/': system + os.sep}


def test_readme_commands_run_as_written(readme_data):
    commands = readme_commands()
    assert len(commands) == 3 and any('--nb-classes 12 --metrics dcase2021' in c for c in commands)
    for i, command in enumerate(commands):
        argv = shlex.split(command)[2:]
        argv = [readme_data.get(a, a) for a in argv]
        assert not [a for a in argv if a.startswith(('data/', 'runs/', '/data/', 'my_system'))], argv
        # one of them in a subprocess, exactly as a user runs it; the others in-process
        if i == 2:
            r = run_cli(*argv)
            rc, out, err = r.returncode, r.stdout, r.stderr
        else:
            rc, out, err = run_main(*argv)
        assert rc == 0, (command, err)
        res = json.loads(out)
        for name, v in res.items():  # each is an oracle: perfect, but for the default macro averages
            assert v['error_rate'] == 0.0, (command, name)
            if name not in ('dcase2022', 'dcase2024_nodist') or '--average micro' in command:
                assert v['f_score'] == 1.0, (command, name)
        if 'dcase2021' in command:
            assert set(res) == {'dcase2021'} and res['dcase2021']['localization_recall'] == 1.0


# ==================================================================================================
# Headerless references: the format from the field count
# ==================================================================================================
def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)


@pytest.mark.parametrize('rows,pred_fmt,expected', [
    ('0,1,10,0\n3,0,-20,5\n', 'dcase2019', 'dcase2019'),
    ('0,1,0,10,0\n3,0,1,-20,5\n', 'dcase2020', 'dcase2020'),
    ('0,1,0,10,0,150\n3,0,1,-20,5,200\n', 'dcase2024', 'dcase2024'),
    ('0,1,0,1,0,0,150\n', 'dcase2020', 'dcase2024'),
    ('0,1,0,10,0\n', 'dcase2024', 'dcase2024'),
])
def test_reference_format_from_field_count(tmp_path, rows, pred_fmt, expected):
    _write(str(tmp_path / 'a.csv'), rows)
    assert formats.infer_dcase_format(tmp_path / 'a.csv', hint=pred_fmt) == expected


def test_six_fields_without_a_deciding_format_and_other_counts_are_errors(tmp_path):
    _write(str(tmp_path / 'a.csv'), '0,1,0,10,0,150\n')
    for hint in (None, 'dcase2019', 'dcase2020'):  # dcase2020 Cartesian x,y,z or dcase2024 azi,ele,dist
        with pytest.raises(SELDError, match=r'a.csv:1: 6 fields .* give the reference format \(--ref-format\)'):
            formats.infer_dcase_format(tmp_path / 'a.csv', hint=hint)
    _write(str(tmp_path / 'b.csv'), '0,1,0\n')
    with pytest.raises(SELDError, match=r'b.csv:1: 3 fields'):
        formats.infer_dcase_format(tmp_path / 'b.csv')
    # through the command: STARSS23 metadata (6 fields, cm) against dcase2020 predictions asks for --ref-format
    _write(str(tmp_path / 'ref' / 'x.csv'), '0,1,0,10,0,150\n')
    _write(str(tmp_path / 'pred' / 'x.csv'), '0,1,0,10.0,0.0\n')
    rc, _, err = run_main('--ref', tmp_path / 'ref', '--pred', tmp_path / 'pred', '--format', 'dcase2020',
                          '--nb-classes', 2)
    assert_one_line_error(rc, err, 'x.csv:1', '--ref-format')
    rc, out, err = run_main('--ref', tmp_path / 'ref', '--pred', tmp_path / 'pred', '--format', 'dcase2020',
                            '--nb-classes', 2, '--ref-format', 'dcase2024', '--average', 'micro')
    assert rc == 0, err
    assert json.loads(out)['dcase2021']['f_score'] == 1.0


# ==================================================================================================
# Bad flags and rows: one line, exit 2
# ==================================================================================================
@pytest.fixture()
def small(tmp_path):
    """A 5-frame dcase2020 reference and its oracle prediction, no format.json."""
    rows = '0,0,0,10,0\n1,0,0,10,0\n2,1,1,-90,20\n'
    _write(str(tmp_path / 'ref' / 'a.csv'), rows)
    _write(str(tmp_path / 'pred' / 'a.csv'), rows)
    return ['--ref', str(tmp_path / 'ref'), '--pred', str(tmp_path / 'pred'), '--format', 'dcase2020']


@pytest.mark.parametrize('flag,value,needle', [
    ('--frame-rate', '0', '0 must be > 0'), ('--frame-rate', '-1', '-1 must be > 0'),
    ('--frame-rate', 'nan', 'nan must be a finite number'), ('--frame-rate', 'abc', "'abc' is not a number"),
    ('--duration', '0', '0 must be > 0'), ('--duration', 'inf', 'inf must be a finite number'),
    ('--duration', '1e300', 'must be at most 86400'),
    ('--segment-len', '0', '0 must be > 0'), ('--segment-len', '-1', '-1 must be > 0'),
    ('--segment-len', '0.01', 'holds no frame'),
    ('--threshold', '-1', '-1 must be >= 0'), ('--threshold', 'nan', 'nan must be a finite number'),
    ('--nb-classes', '0', '0 must be > 0'), ('--nb-classes', '2.5', "'2.5' is not an integer"),
    ('--ref-frame-rate', '0', '0 must be > 0'), ('--average', 'median', "invalid choice: 'median'"),
    ('--metrics', 'dcase2099', "invalid choice: 'dcase2099'"), ('--format', 'csv', "invalid choice: 'csv'"),
    ('--classes', 'a,,b', 'distinct, non-empty'), ('--classes', 'a,a', 'distinct, non-empty'),
])
def test_bad_flag_values_are_one_line_errors(small, flag, value, needle):
    extra = [] if flag in ('--classes', '--nb-classes') else ['--nb-classes', '2']
    rc, out, err = run_main(*small, *extra, flag, value)
    assert out == ''
    assert_one_line_error(rc, err, needle)


@pytest.mark.slow
def test_zero_flags_are_not_replaced_by_defaults_and_errors_exit_2_in_a_subprocess(small):
    # before: `a.frame_rate or ...` turned 0 into the default and scored; now an error, also from the shell
    r = run_cli(*small, '--nb-classes', 2, '--frame-rate', '0')
    assert_one_line_error(r.returncode, r.stderr, '--frame-rate', '0 must be > 0')
    r = run_cli(*small, '--nb-classes', 2, '--threshold', '-1')
    assert_one_line_error(r.returncode, r.stderr, '--threshold', '-1 must be >= 0')
    ok = run_cli(*small, '--nb-classes', 2, '--threshold', '0')  # 0 degrees is a threshold, not "unset"
    assert ok.returncode == 0, ok.stderr


def test_duplicated_rows_are_rejected(tmp_path, small):
    desc = tmp_path / 'desc.csv'
    _write(str(desc), 'sound_event_recording,start_time,end_time,ele,azi,dist\nspeech000.wav,0.1,0.5,0,10,2\n'
                      'cough001.wav,0.3,0.9,10,-20,2\nspeech000.wav,0.1,0.5,0,10,2\n')
    with pytest.raises(SELDError, match=r'desc.csv:4: speech000.wav,0.1,0.5,0,10,2 duplicates line 2'):
        formats.read_desc_file(desc, classes=['cough', 'speech'])
    with open(tmp_path / 'ref' / 'a.csv', 'a') as f:
        f.write('1,0,0,10,0\n')
    rc, _, err = run_main(*small, '--nb-classes', 2)
    assert_one_line_error(rc, err, 'a.csv:4', 'duplicates line 2')


# ==================================================================================================
# Fuzz: flags and format.json values
# ==================================================================================================
NUMBERS = st.one_of(st.integers(-10**6, 10**6).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.sampled_from(['0', '-0', '1e308', '-1e-300', 'nan', 'inf', '-inf', '', ' ', 'x', '1,5',
                                     '0x10', '1_000', '5', '10', '0.5', '20']))
VALUES = {
    '--frame-rate': NUMBERS, '--ref-frame-rate': NUMBERS, '--duration': NUMBERS, '--segment-len': NUMBERS,
    '--threshold': NUMBERS, '--nb-classes': NUMBERS,
    '--format': st.sampled_from(list(formats.FORMATS) + ['dcase2023', '', 'DCASE2020']),
    '--ref-format': st.sampled_from(list(formats.FORMATS) + ['nope']),
    '--average': st.sampled_from(['micro', 'macro', 'weighted', '']),
    '--naming': st.sampled_from(list(formats.NAMINGS) + ['x']),
    '--metrics': st.sampled_from(list(md.DEFINITIONS) + ['dcase2099', '']),
    '--classes': st.one_of(st.sampled_from(['a,b', 'a', 'a,b,c', 'a,,b', ',', 'b,a', 'a,a']),
                           st.text(max_size=8)),
}
JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**12), st.floats(allow_nan=True),
                        st.text(max_size=5), st.lists(st.integers(-2, 3), max_size=3),
                        st.dictionaries(st.sampled_from(['format', 'frame_rate', 'naming', 'nb_frames', 'duration_s']),
                                        st.one_of(st.integers(-3, 100), st.text(max_size=4), st.none()), max_size=3))
JSON_KEYS = ('format', 'frame_rate', 'classes', 'files', 'reference', 'metrics', 'doa_threshold', 'segment_len_s',
             'average')


@pytest.mark.slow
def test_fuzz_flags_and_format_json_give_results_or_one_line_errors(tmp_path):
    rows = '0,0,0,10,0\n1,0,0,10,0\n2,1,1,-90,20\n'
    _write(str(tmp_path / 'ref' / 'a.csv'), rows)
    _write(str(tmp_path / 'pred' / 'a.csv'), rows)
    side = tmp_path / 'pred' / formats.FORMAT_FILE
    good = dict(format='dcase2020', frame_rate=10.0, classes=['a', 'b'], files={'a': dict(nb_frames=3, duration_s=0.3)},
                reference=dict(format='dcase2020', naming='plain', frame_rate=10.0))
    outcomes = {'scored': 0, 'refused': 0}

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(flags=st.dictionaries(st.sampled_from(sorted(VALUES)), st.none(), max_size=5).flatmap(
        lambda d: st.fixed_dictionaries({k: VALUES[k] for k in d})),
           side_file=st.one_of(st.none(), st.dictionaries(st.sampled_from(JSON_KEYS), JSON_VALUES, max_size=3)))
    def check(flags, side_file):
        if side_file is None:
            if side.exists():
                side.unlink()
        else:
            side.write_text(json.dumps({**good, **side_file}))
        argv = ['--ref', tmp_path / 'ref', '--pred', tmp_path / 'pred']
        for k, v in flags.items():
            argv += [k, v] if not v.startswith('-') else [f'{k}={v}']
        try:
            rc, out, err = run_main(*argv)
        except SystemExit as e:  # only --help exits; it is never generated
            raise AssertionError(f'{argv}: SystemExit {e}') from e
        if rc == 0:
            res = json.loads(out)
            assert res and all(isinstance(v, dict) for v in res.values())
            outcomes['scored'] += 1
        else:
            assert_one_line_error(rc, err)
            outcomes['refused'] += 1

    check()
    total = outcomes['scored'] + outcomes['refused']
    print(f'\nfuzzed {total} inputs: {outcomes["scored"]} scored, {outcomes["refused"]} refused with a one-line error')
    assert total >= 400 and outcomes['scored'] > 0 and outcomes['refused'] > 0

"""benchmarks/paper_table.py: the plan, the planar-array columns by hand, its errors, the tiny scale end to end
(every cell and method, then resumed), and the REAL layout read through --dataset-dir."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))

import paper_table  # noqa: E402
from utils import SELDError  # noqa: E402

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')


def run(*args: str, cwd: str = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, os.path.join(ROOT, 'benchmarks', 'paper_table.py'), *args], cwd=cwd,
                          capture_output=True, text=True, env=ENV)


def test_default_plan_is_the_issues_table():
    plan = paper_table.select_plan(None, None, {})
    seldnet = [c.name for c, m in plan if m == 'seldnet']
    assert len(seldnet) == 14 and len(set(seldnet)) == 14
    assert {c.dataset for c, m in plan if m == 'seldnet'} == {'ansim', 'resim', 'cansim', 'cresim'}
    assert sorted(c.db for c, m in plan if m == 'seldnet' and c.dataset == 'ansim' and c.overlap == 1) == [10, 20, 30]
    for method in ('sed_only', 'doa_only', 'music'):
        cells = [c for c, m in plan if m == method]
        assert sorted(c.name for c in cells) == sorted(f'{d}:ov{o}:split1:db30' for d in ('ansim', 'resim')
                                                       for o in (1, 2, 3))
    assert all(c.split == 1 for c, _ in plan)


def test_cells_and_methods_select():
    plan = paper_table.select_plan('ansim:ov1:*', None, {})
    assert sorted((c.db, m) for c, m in plan) == sorted(
        [(30, 'seldnet'), (20, 'seldnet'), (10, 'seldnet'), (30, 'sed_only'), (30, 'doa_only'), (30, 'music')])
    plan = paper_table.select_plan('cansim:ov2:split3:db20', 'music', {})  # --methods: the whole grid
    assert [(c.name, m) for c, m in plan] == [('cansim:ov2:split3:db20', 'music')]
    assert paper_table.select_plan('real:*', None, {'real': 'x'})  # REAL only with its folder
    with pytest.raises(SELDError, match='REAL needs'):
        paper_table.select_plan('real:*', None, {})
    with pytest.raises(SELDError, match='matches no cell'):
        paper_table.select_plan('ansim:ov4:*', None, {})
    with pytest.raises(SELDError, match='--methods'):
        paper_table.select_plan(None, 'seldnet,hirnn', {})


def test_cpu_scale_trains_each_dataset_its_whole_budget(tmp_path):
    """No early stopping at the cpu scale: patience is the dataset's epoch budget (SELDnet's first epochs detect
    nothing); the baselines keep their own selection metric."""
    for dataset, epochs in (('ansim', 20), ('resim', 20), ('cansim', 28), ('cresim', 28)):
        for method in ('seldnet', 'sed_only', 'doa_only'):
            p = paper_table.cell_params(paper_table.Cell(dataset, 1, 1, 30), method, scale='cpu', out=str(tmp_path),
                                        dataset_dir=str(tmp_path / dataset), unseen_dir=None)
            assert (p['nb_epochs'], p['patience']) == (epochs, epochs)
            if method != 'seldnet':
                assert p['early_stop_metric'] == {'sed_only': 'sed_loss', 'doa_only': 'doa_loss'}[method]
    p = paper_table.cell_params(paper_table.Cell('ansim', 1, 1, 30), 'seldnet', scale='paper', out=str(tmp_path),
                                dataset_dir=str(tmp_path / 'ansim'), unseen_dir=None)
    assert (p['nb_epochs'], p['patience']) == (1000, 100)  # the paper's


def test_azimuth_error_and_elevation_floor_by_hand():
    # 2 frames, 2 classes. Frame 0: class 0 at (az 30, el 20), predicted at (az 40, el -20): azimuth error 10.
    # Frame 1: class 1 at (az 170, el -40), predicted at (az -170, el 0): azimuth error 20 across the seam;
    # class 0 reference-active there too (az 0, el 10) but not predicted: in the floor, not in the azimuth error.
    from utils import sph2cart

    def doa(vectors):  # {(t, c): (az, el)} -> (2, 6) blocks [x.., y.., z..]
        out = np.zeros((2, 3, 2))
        for (t, c), (az, el) in vectors.items():
            out[t, :, c] = sph2cart(az, el)
        return out.reshape(2, 6)

    ref_sed = np.array([[1, 0], [1, 1]], np.float32)
    pred_sed = np.array([[1, 0], [0, 1]], np.float32)
    ref = doa({(0, 0): (30, 20), (1, 0): (0, 10), (1, 1): (170, -40)})
    pred = doa({(0, 0): (40, -20), (1, 1): (-170, 0)})
    got = paper_table.azimuth_and_floor([(ref_sed, ref, pred_sed, pred)])
    assert got['azimuth'] == pytest.approx((10 + 20) / 2)
    assert got['ele_floor'] == pytest.approx((20 + 10 + 40) / 3)


def test_bad_arguments_are_one_line_errors(tmp_path):
    for args in (['--cells', 'foo:ov1'], ['--methods', 'nope'], ['--dataset-dir', 'real'],
                 ['--dataset-dir', f'real={tmp_path}/missing'], ['--scale', 'huge'], ['--epochs', '0']):
        done = run(*args, '--out', str(tmp_path / 'o'))
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.startswith('error: ') and done.stderr.count('\n') == 1, (args, done.stderr)
        assert 'Traceback' not in done.stderr


def _read_csv(path: str) -> list[dict[str, str]]:
    with open(path, newline='', encoding='utf-8') as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_tiny_scale_runs_every_method_on_foa_and_array_cells_then_resumes(tmp_path):
    """Every method on one FOA and one circular-array cell (the whole tiny grid, 32 results, takes about 13 minutes
    on 2 cores: `python benchmarks/paper_table.py --scale tiny`, too long for the suite)."""
    out = str(tmp_path / 'tiny')
    cells = 'ansim:ov1:split1:db30,cansim:ov1:split1:db30'
    methods = 'seldnet,sed_only,doa_only,music'
    done = run('--scale', 'tiny', '--cells', cells, '--methods', methods, '--out', out)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = _read_csv(os.path.join(out, 'paper_table.csv'))
    plan = paper_table.select_plan(cells, methods, {})
    assert len(plan) == 8
    assert [(r['cell'], r['method']) for r in rows] == [(c.name, m) for c, m in plan]
    for r in rows:
        assert float(r['seconds']) > 0
        if r['method'] in ('seldnet', 'sed_only'):
            assert all(r[k] != '' for k in ('ER', 'F', 'FR'))
        if r['method'] in ('seldnet', 'doa_only', 'music'):
            assert 0 <= float(r['DOA']) <= 180 and 0 <= float(r['unseen_DOA']) <= 180
        if r['method'] in ('doa_only', 'music'):
            assert r['ER'] == r['F'] == r['SELD'] == '' and float(r['doa_missing']) == 0
        if r['method'] == 'sed_only':
            assert r['DOA'] == r['SELD'] == ''
        if r['cell'].startswith(('cansim', 'cresim')) and r['method'] != 'sed_only':
            assert 0 <= float(r['azimuth']) <= 180 and 0 < float(r['ele_floor']) <= 40
    # MUSIC given the reference count on one anechoic FOA source at a time must localize (the network, 1 epoch,
    # need not); with overlapping sounds it finds spurious peaks in bins one source leaves empty: no bound there
    music = [r for r in rows if r['method'] == 'music' and r['cell'].startswith('ansim')]
    assert float(next(r for r in music if r['cell'] == 'ansim:ov1:split1:db30')['DOA']) < 5.0
    # its predictions are a run's: the scoring command reproduces the table's DOA error
    pred = os.path.join(out, 'music', 'ansim_ov1_split1_db30', 'test', 'predictions')
    ref = os.path.join(out, 'data', 'ansim', 'desc_ov1_split1')
    cli = subprocess.run([sys.executable, 'evaluation_metrics.py', '--ref', ref, '--pred', pred], cwd=ROOT,
                         capture_output=True, text=True, env=ENV)
    assert cli.returncode == 0, cli.stderr
    cell = next(r for r in music if r['cell'] == 'ansim:ov1:split1:db30')
    # (the prediction files hold rounded angles: 1e-7 relative apart in the run measured)
    assert json.loads(cli.stdout)['seld2018']['doa_error'] == pytest.approx(float(cell['DOA']), abs=1e-3)
    # every result kept: a second invocation runs nothing and prints the same table
    table = open(os.path.join(out, 'paper_table.md'), encoding='utf-8').read()
    again = run('--scale', 'tiny', '--cells', cells, '--methods', methods, '--out', out)
    assert again.returncode == 0
    assert again.stdout.count('done already') == len(plan)
    assert open(os.path.join(out, 'paper_table.md'), encoding='utf-8').read() == table
    # another scale in the same folder is refused
    other = run('--scale', 'cpu', '--cells', 'ansim:ov1:split1:db30', '--out', out)
    assert other.returncode == 2 and 'made at scale' in other.stderr


@pytest.mark.slow
def test_real_layout_through_dataset_dir_and_music_on_the_circular_array(tmp_path):
    from real_fixture import make_dataset

    real = make_dataset(str(tmp_path / 'TUT-REAL'))
    out = str(tmp_path / 'out')
    done = run('--scale', 'tiny', '--cells', 'real:ov1:split1:db30', '--methods', 'seldnet,music',
               '--dataset-dir', f'real={real}', '--out', out)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = _read_csv(os.path.join(out, 'paper_table.csv'))
    assert [(r['cell'], r['method']) for r in rows] == [('real:ov1:split1:db30', 'seldnet'),
                                                        ('real:ov1:split1:db30', 'music')]
    record = json.load(open(os.path.join(out, 'results', 'real_ov1_split1_db30__seldnet.json'), encoding='utf-8'))
    params = json.load(open(os.path.join(record['run_dir'], 'params.json'), encoding='utf-8'))
    assert params['data']['classes'] == ['1', '3', '4', '5', '6', '7', '8', '9']  # the REAL ids, from the layout
    parts = params['data']['parts']
    assert sorted(sum(parts.values(), [])) == sorted([f'train_{i}_desc_30_100' for i in range(4)]
                                                     + [f'test_{i}_desc_30_100' for i in range(2)])
    assert len(parts['val']) == 1 and len(parts['test']) == 2
    assert rows[0]['unseen_DOA'] == ''  # the real data has no unseen-DOA set
    assert float(rows[1]['DOA']) < 10.0  # tones as plane waves, given the counts: MUSIC finds them
    assert not os.path.exists(os.path.join(out, 'data'))  # nothing synthesized for REAL
    # the circular array's MUSIC, end to end on a CANSIM look-alike
    done = run('--scale', 'tiny', '--cells', 'cansim:ov1:split1:db30', '--methods', 'music', '--out', out)
    assert done.returncode == 0, done.stderr[-3000:]
    row = [r for r in _read_csv(os.path.join(out, 'paper_table.csv')) if r['cell'].startswith('cansim')][0]
    assert float(row['azimuth']) < 10.0 and 0 < float(row['ele_floor']) <= 40

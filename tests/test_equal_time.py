"""benchmarks/equal_time.py: the epoch budget by hand, the table, its one-line errors. (Its training path is
seld.train resumed with a larger nb_epochs, which tests/test_resume.py checks equals an uninterrupted run.)"""
from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))

import equal_time  # noqa: E402


def test_epochs_for_budget_by_hand():
    # probe epochs of 30 s (compiling) and 10 s: 100 s leave 60 s = 6 more epochs
    assert equal_time.epochs_for_budget([30.0, 10.0], 100.0) == 8
    assert equal_time.epochs_for_budget([30.0, 10.0], 49.9) == 2 + 0  # 9.9 s spare: not a whole epoch
    assert equal_time.epochs_for_budget([30.0, 10.0], 50.0) == 3
    assert equal_time.epochs_for_budget([30.0, 10.0], 20.0) == 2  # the probe alone overran: never fewer


def test_arms_share_everything_but_what_they_compare():
    p = {arm: equal_time.arm_params(arm, out='o', data='d', batch_size=8, seed=0, nb_epochs=2)
         for arm in equal_time.ARMS}
    same = ('sequence_length', 'batch_size', 'learning_rate', 'seed', 'early_stop_metric', 'dataset', 'lr_schedule')
    for key in same:
        assert len({repr(v[key]) for v in p.values()}) == 1, key
    assert (p['seldnet']['features'], p['seldnet']['output']) == ('magphase', 'seldnet')
    assert (p['multi_accdoa']['features'], p['multi_accdoa']['output']) == ('logmel_iv', 'multi_accdoa')
    assert (p['seldnet_iv']['features'], p['seldnet_iv']['output']) == ('logmel_iv', 'seldnet')
    assert p['seldnet_iv']['nb_self_attn_layers'] == p['multi_accdoa']['nb_self_attn_layers'] == 2


def test_table_rows():
    scores = dict(dcase2022=dict(error_rate=0.5, f_score=0.25, localization_error=30.0, localization_recall=0.75,
                                 seld_score=0.4),
                  dcase2024_nodist=dict(error_rate=0.6, f_score=0.2, doa_error=math.nan, localization_recall=0.0,
                                        seld_score=0.7))
    rec = dict(arm='seldnet', features='magphase', output='seldnet', params=1234, epochs=7, train_s=480.0,
               test=scores)
    md = equal_time.table([rec], minutes=8, same_class=0.3)
    row = md.splitlines()[2]
    assert row == ('| seldnet | magphase | seldnet | 1,234 | 7 | 8.0 min | 0.500 | 0.250 | 30.0° | 0.750 | 0.400 | '
                   '0.600 | 0.200 | — | 0.000 | 0.700 |')


@pytest.mark.parametrize('args, what', [(['--arms', 'seldnet,nope'], '--arms'), (['--minutes', '0'], '--minutes'),
                                        (['--nb-per-fold', '1'], '--nb-per-fold'),
                                        (['--same-class', '2'], '--same-class'), (['--minutes', 'x'], 'invalid float')])
def test_bad_arguments_are_one_line_errors(tmp_path, args, what):
    r = subprocess.run([sys.executable, os.path.join(ROOT, 'benchmarks', 'equal_time.py'), '--out', str(tmp_path),
                        *args], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and r.stderr.startswith('error:') and what in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not os.listdir(tmp_path)

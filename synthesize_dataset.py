"""Synthesize SELD datasets: look-alikes of TUT Sound Events 2018 (ANSIM, RESIM, CANSIM, CRESIM) and of the DCASE
2019-2024 development sets, in their exact on-disk layouts. The data is SYNTHETIC (package :mod:`synth`).

Usage::

    python synthesize_dataset.py [key=value ...]
    python synthesize_dataset.py dataset=resim overlap=2 split=3 db=20
    python synthesize_dataset.py dataset=cansim sound_bank=../shared/data/dcase2016_task2_train n_jobs=2
    python synthesize_dataset.py dataset=tau2021sse_nigens format=mic      # a DCASE layout

``dataset=`` ansim, resim, cansim or cresim takes the keys of :mod:`synth.tut2018`; tau2019sse,
tau2020sse_nigens, tau2021sse_nigens, starss22 or starss23 those of :mod:`synth.dcase` (``--help`` prints both
docstrings). An unknown key is an error (exit status 2) listing the valid ones. One driver (:mod:`synth.driver`)
resumes, removes stale files, shows the progress and prints a one-line summary for both layouts.
"""
from __future__ import annotations

from typing import Any

from datasets import DCASE_DATASETS
from parameter import parse_overrides as parse_key_values
from synth import dcase, tut2018
from synth.driver import summary_line
from utils import run_cli


def parse_overrides(argv: list[str]) -> dict[str, Any]:
    """Parse ``key=value`` arguments typed like :data:`synth.tut2018.CLI_DEFAULTS` (a DCASE dataset: like
    :func:`synth.dcase.cli_defaults`); unknown keys are errors."""
    given = dict(a.split('=', 1) for a in argv if '=' in a)
    dataset = given.get('dataset', tut2018.CLI_DEFAULTS['dataset']).strip()
    defaults = dcase.cli_defaults(dataset) if dataset in DCASE_DATASETS else tut2018.CLI_DEFAULTS
    params = dict(defaults, **parse_key_values(argv, defaults))
    params['dataset_dir'] = params['dataset_dir'].replace('{dataset}', params['dataset'])
    return params


def main(argv: list[str]) -> int:
    """Command-line entry point (see the module docstring)."""
    if any(a in ('-h', '--help') for a in argv):
        print(__doc__)
        print(tut2018.__doc__)
        print(dcase.__doc__)
        return 0
    params = parse_overrides(argv)
    layout = dcase if params['dataset'] in DCASE_DATASETS else tut2018
    print(summary_line(layout.synthesize(**params)))
    return 0


if __name__ == '__main__':
    run_cli(main)

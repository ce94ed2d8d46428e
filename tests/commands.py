"""Running the project's commands from the tests: in this process, or as a user runs them.

``python script.py ARGS`` runs ``utils.run_cli(main)`` with ``sys.argv`` set; :func:`in_process` does exactly that
without a new interpreter (whose start, with TensorFlow's import, costs seconds per call). :func:`as_subprocess`
runs the real command, for the few tests that hold the exit-status contract of each command from the shell.
Both return a :class:`subprocess.CompletedProcess` with ``returncode``, ``stdout`` and ``stderr``.
"""
from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from typing import Callable

import utils

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def in_process(main: Callable[[list[str]], int | None], *args) -> subprocess.CompletedProcess:
    """``main`` through :func:`utils.run_cli` with ``sys.argv = [script, *args]``: the exit status it gives
    (``SystemExit``), and what it printed to stdout and stderr. Any other exception propagates and fails the test,
    as a traceback would from the shell."""
    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv
    sys.argv = ['script'] + argv
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                utils.run_cli(main)
            except SystemExit as exit_info:
                code = exit_info.code
            else:  # pragma: no cover - run_cli always exits
                raise AssertionError('utils.run_cli returned without exiting')
    finally:
        sys.argv = saved
    code = 0 if code is None else code if isinstance(code, int) else 1
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def as_subprocess(script: str, *args, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python script args`` in the repository root, as a user runs it (TensorFlow's C++ log quietened)."""
    return subprocess.run([sys.executable, script, *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3', **(env or {})}, timeout=timeout)

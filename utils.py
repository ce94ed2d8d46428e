"""Small shared helpers: the project's exception, atomic file writes, DOA geometry, CLI glue.

Everything here is dependency-light (numpy only) so that every script can import it cheaply.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import re
import shutil
import sys
import tempfile
from typing import Any, Callable, Iterator

import numpy as np


class SELDError(ValueError):
    """The project's error for bad input: names the file, the value and the rule it broke.

    Subclasses ``ValueError`` so that callers who catch ``ValueError`` (keras-io style) also catch it.
    The command-line entry points turn it into a one-line message on stderr and exit status 2.
    """


# --------------------------------------------------------------------------------------------------
# Atomic writes: write to a temporary name in the same folder, then rename. An interrupted run never
# leaves a half-written file under the final name.
# --------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on error delete it.

    An ``OSError`` while writing (a full disk, a read-only folder) is raised as it is, ``path`` unchanged: callers
    name the file (:func:`writing`).

    Parameters
    ----------
    path : str
        Final file name.
    suffix : str, optional
        Suffix of the temporary name (default: the final name's extension, so that libraries that
        look at the extension, such as ``keras.Model.save``, behave as for the final name).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if suffix is None:
        suffix = os.path.splitext(path)[1]
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', suffix='.tmp' + suffix, dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~umask())  # mkstemp creates 0600; a written file follows the umask like open() does
    finally:
        os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def writing(path: str | os.PathLike, *, hint: str = '') -> Iterator[None]:
    """Turn an ``OSError`` in the block (a full disk, a read-only folder) into a one-line :class:`SELDError` naming
    ``path`` (a full disk adds "free some space"), followed by ``hint``."""
    try:
        yield
    except OSError as err:
        full = '; free some space' if err.errno in (errno.ENOSPC, errno.EDQUOT) else ''
        raise SELDError(f'{os.fspath(path)}: cannot write ({_why(err)}){full}{hint}') from err


def _why(err: OSError) -> str:
    return err.strerror or str(err) or type(err).__name__


def umask() -> int:
    """The process's file-mode creation mask (read from ``/proc/self/status`` where it is there, so that no other
    thread sees a changed umask; otherwise set and restored)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Names :func:`atomic_path` gives its temporary files: ``.<name>.<8 random characters>.tmp<suffix>`` (and files a
#: writer derives from them by appending to the name).
TEMP_NAME = re.compile(r'^\..+\.[A-Za-z0-9_]{8}\.tmp')


def remove_temporaries(folder: str | os.PathLike, *, recursive: bool = True) -> list[str]:
    """Delete the temporary files :func:`atomic_path` (and folders named like them) left behind in ``folder`` when
    their process was killed.

    Call it only where no other process writes (e.g. under :func:`lock_folder`). Returns the removed paths.
    """
    removed = []
    for root, dirs, files in os.walk(folder):
        for name in files:
            if TEMP_NAME.match(name):
                path = os.path.join(root, name)
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
                    removed.append(path)
        for name in [d for d in dirs if TEMP_NAME.match(d)]:  # a folder written whole, then renamed
            dirs.remove(name)
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
            removed.append(os.path.join(root, name))
        if not recursive:
            break
    return removed


def copy_file(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy ``src`` to ``dst`` atomically (temporary name, then rename)."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def fsync_dir(folder: str | os.PathLike) -> None:
    """Flush a folder's entries (the renames into it) to disk, where the platform allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def lock_folder(folder: str | os.PathLike, *, what: str = 'this folder') -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on ``<folder>/.lock`` inside the block; another process holding it is
    refused at once with :class:`SELDError`. The kernel releases the lock when its process ends, however it ends, so
    a lock left by a killed process never blocks a rerun."""
    import fcntl

    path = os.path.join(os.fspath(folder), '.lock')
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:
        raise SELDError(f'{path}: cannot create the lock file ({err.strerror})') from err
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise SELDError(f'{folder}: another process is using {what} (it holds {path}); wait for it to end, '
                                f'or use another job-id') from err
            raise SELDError(f'{path}: cannot lock ({err.strerror})') from err
        yield
    finally:
        os.close(fd)  # releases the lock


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Save one array as ``.npy`` atomically (no pickles)."""
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as f:
            np.save(f, np.asarray(array), allow_pickle=False)


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Save named arrays as ``.npz`` atomically (no pickles)."""
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as f:
            np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, 'w', encoding='utf-8', newline='') as f:
            f.write(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON atomically, indented and with sorted keys (stable, diff-friendly)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + '\n')


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f'{type(obj).__name__} is not JSON serializable')


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a missing, unreadable or malformed file raises :class:`SELDError` naming it."""
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except FileNotFoundError as err:
        raise SELDError(f'{path}: file not found') from err
    except json.JSONDecodeError as err:
        raise SELDError(f'{path}: not valid JSON ({err})') from err
    except UnicodeDecodeError as err:
        raise SELDError(f'{path}: not UTF-8 text, so not a JSON file ({err.reason} at byte {err.start})') from err
    except OSError as err:  # a folder, no permission
        raise SELDError(f'{path}: cannot read ({_why(err)})') from err


# --------------------------------------------------------------------------------------------------
# DOA geometry. One pair of functions for every use: azimuth counter-clockwise from +x (atan2(y, x)),
# elevation positive upwards, both in degrees.
# --------------------------------------------------------------------------------------------------
def sph2cart(azi_deg: np.ndarray | float, ele_deg: np.ndarray | float, r: np.ndarray | float = 1.0) -> np.ndarray:
    """Spherical (degrees) to Cartesian.

    Parameters
    ----------
    azi_deg, ele_deg : np.ndarray or float [shape=(...)]
        Azimuth and elevation in degrees.
    r : np.ndarray or float [shape=(...)]
        Radius (default 1: unit vectors).

    Returns
    -------
    xyz : np.ndarray [shape=(..., 3)]
        ``x = r cos(az) cos(el)``, ``y = r sin(az) cos(el)``, ``z = r sin(el)``.
    """
    azi = np.deg2rad(np.asarray(azi_deg, dtype=np.float64))
    ele = np.deg2rad(np.asarray(ele_deg, dtype=np.float64))
    cos_ele = np.cos(ele)
    return np.stack([r * np.cos(azi) * cos_ele, r * np.sin(azi) * cos_ele, r * np.sin(ele) * np.ones_like(azi)],
                    axis=-1)


def cart2sph(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cartesian to spherical (degrees); works for 2-D (x, y) too, giving elevation 0.

    Parameters
    ----------
    xyz : np.ndarray [shape=(..., 3) or (..., 2)]

    Returns
    -------
    azi_deg, ele_deg, r : np.ndarray [shape=(...)]
    """
    xyz = np.asarray(xyz, dtype=np.float64)
    x, y = xyz[..., 0], xyz[..., 1]
    z = xyz[..., 2] if xyz.shape[-1] > 2 else np.zeros_like(x)
    hyp = np.hypot(x, y)
    return np.rad2deg(np.arctan2(y, x)), np.rad2deg(np.arctan2(z, hyp)), np.hypot(hyp, z)


def angular_distance_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Great-circle angle in degrees between Cartesian direction vectors (normalized here).

    Parameters
    ----------
    a, b : np.ndarray [shape=(..., 2 or 3)]

    Returns
    -------
    angle : np.ndarray [shape=(...)], in [0, 180]; 0/0 (a zero vector) gives 90 by convention of
        the dot product being 0, so callers must exclude inactive (zero) vectors themselves.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    na = np.linalg.norm(a, axis=-1)
    nb = np.linalg.norm(b, axis=-1)
    dot = np.sum(a * b, axis=-1) / np.maximum(na * nb, 1e-12)
    return np.rad2deg(np.arccos(np.clip(dot, -1.0, 1.0)))


# --------------------------------------------------------------------------------------------------
# Misc
# --------------------------------------------------------------------------------------------------
def set_seeds(seed: int) -> None:
    """Seed Python, numpy and (if imported) Keras and its backend (``keras.utils.set_random_seed``)."""
    random.seed(seed)
    np.random.seed(seed)
    if 'keras' in sys.modules:
        sys.modules['keras'].utils.set_random_seed(seed)


def os_error_message(err: OSError) -> str:
    """One line for an :class:`OSError`: ``<file>: <reason>`` (both files of a failed rename)."""
    where = ' -> '.join(str(f) for f in (err.filename, err.filename2) if f is not None)
    return f'{where}: {_why(err)}' if where else _why(err)


def run_cli(main: Callable[[list[str]], int | None]) -> None:
    """Run a script's ``main(argv)``: a :class:`SELDError`, or an :class:`OSError` (a file that cannot be read or
    written: a full disk, a file where a folder should be), becomes one line ``error: ...`` on stderr and exit
    status 2; Ctrl-C exits 130 after the script's own cleanup."""
    try:
        code = main(sys.argv[1:])
    except SELDError as err:
        print(f'error: {" ".join(str(err).split())}', file=sys.stderr)  # one line, whatever a library's text held
        sys.exit(2)
    except OSError as err:  # a file the command could not read or write: a full disk, a file where a folder goes
        print(f'error: {os_error_message(err)}', file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)

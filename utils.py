"""Small shared helpers: the project's exception, atomic file writes, DOA geometry, CLI glue.

Everything here is dependency-light (numpy only) so that every script can import it cheaply.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import random
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
    os.makedirs(folder, exist_ok=True)
    if suffix is None:
        suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', suffix='.tmp' + suffix, dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Save one array as ``.npy`` atomically (no pickles)."""
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as f:
            np.save(f, np.asarray(array), allow_pickle=False)


class NpyFileBuffer:
    """A whole ``.npy`` file in one page-aligned buffer: the header, then the array, for fast atomic saving.

    Fill :attr:`array` (C-order, ``shape`` and ``dtype``), then :meth:`save` it. The buffer can be reused for
    the next file of the same shape (no new memory per file).

    Parameters
    ----------
    shape : tuple of int
    dtype : numpy dtype
    """

    ALIGN = 4096  # O_DIRECT needs the buffer address, file offsets and sizes aligned to the device's block size

    def __init__(self, shape: tuple[int, ...], dtype: Any = np.float32):
        import io
        import mmap

        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {'descr': np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                                      'fortran_order': False, 'shape': tuple(shape)})
        head = header.getvalue()  # numpy pads it to a multiple of 64 bytes: the array stays aligned
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.nbytes = len(head) + int(np.prod(shape)) * self.dtype.itemsize
        self._mem = mmap.mmap(-1, -(-self.nbytes // self.ALIGN) * self.ALIGN)  # anonymous: page-aligned
        raw = np.frombuffer(self._mem, np.uint8)
        raw[:len(head)] = np.frombuffer(head, np.uint8)
        self.array = raw[len(head):self.nbytes].view(self.dtype).reshape(shape)

    def save(self, path: str | os.PathLike, *, direct: bool = True) -> None:
        """Write the file atomically (temporary name, then rename).

        With ``direct`` (Linux), it is written with ``O_DIRECT``: straight from this buffer to the disk, not
        through the page cache, which on a VM can take new pages several times slower than the disk takes
        data. Where ``O_DIRECT`` is not available (other systems, some filesystems) it falls back to a normal
        write.
        """
        with atomic_path(path) as tmp:
            if not (direct and self._write_direct(tmp)):
                with open(tmp, 'wb') as f:
                    f.write(memoryview(self._mem)[:self.nbytes])

    def _write_direct(self, tmp: str) -> bool:
        flag = getattr(os, 'O_DIRECT', 0)
        if not flag:
            return False
        try:
            fd = os.open(tmp, os.O_WRONLY | flag)
        except OSError as err:
            if err.errno == errno.EINVAL:  # the filesystem does not support it
                return False
            raise
        try:
            view, off, chunk = memoryview(self._mem), 0, 1 << 23
            while off < len(view):
                try:
                    off += os.pwrite(fd, view[off:off + chunk], off)
                except OSError as err:
                    if err.errno == errno.EINVAL and off == 0:  # opened, but this file or device refuses it
                        return False
                    err.add_note(f'while writing {tmp} with O_DIRECT at byte {off}')
                    raise
            os.ftruncate(fd, self.nbytes)  # the last block was written whole: cut the padding
        finally:
            os.close(fd)
        return True


class NpyWriter:
    """Save :class:`NpyFileBuffer` files in a background thread while the callers fill the next ones.

    At most ``nb_buffers`` buffers exist; :meth:`filling` waits for one whose write has finished. Leaving the
    ``with`` block waits for every write; the first write error is raised by the next :meth:`filling` or on
    leaving.

    Parameters
    ----------
    shape : tuple of int
    dtype : numpy dtype
    nb_buffers : int
        Buffers in flight: one per thread filling them, plus one being written.
    direct : bool
        Write with ``O_DIRECT`` where available (see :meth:`NpyFileBuffer.save`).

    Examples
    --------
    >>> with NpyWriter((10, 3), nb_buffers=2) as writer:            # doctest: +SKIP
    ...     with writer.filling('x.npy') as array:
    ...         array[...] = 1.0
    """

    def __init__(self, shape: tuple[int, ...], dtype: Any = np.float32, *, nb_buffers: int, direct: bool = True):
        import concurrent.futures
        import queue

        if nb_buffers < 1:
            raise ValueError(f'nb_buffers={nb_buffers} must be at least 1')
        self.direct = direct
        self._free: queue.Queue[NpyFileBuffer] = queue.Queue()
        for _ in range(nb_buffers):
            self._free.put(NpyFileBuffer(shape, dtype))
        self._error: BaseException | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix='npy-writer')

    @contextlib.contextmanager
    def filling(self, path: str | os.PathLike) -> Iterator[np.ndarray]:
        """Yield a free buffer's array to fill; on a normal exit it is saved to ``path`` in the background."""
        self._raise()
        buf = self._free.get()
        try:
            self._raise()
            yield buf.array
        except BaseException:
            self._free.put(buf)
            raise
        self._executor.submit(self._write, buf, os.fspath(path))

    def _write(self, buf: NpyFileBuffer, path: str) -> None:
        try:
            buf.save(path, direct=self.direct)
        except BaseException as err:  # kept for the caller's thread
            err.add_note(f'while writing {path}')
            self._error = self._error or err
        finally:
            self._free.put(buf)

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Wait for every write, then raise the first write error."""
        self._executor.shutdown(wait=True)
        self._raise()

    def __enter__(self) -> 'NpyWriter':
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is None:
            self.close()
            return
        with contextlib.suppress(BaseException):  # the caller's error is the one to report
            self.close()


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
    """Read a JSON file; a missing or malformed file raises :class:`SELDError` naming it."""
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except FileNotFoundError as err:
        raise SELDError(f'{path}: file not found') from err
    except json.JSONDecodeError as err:
        raise SELDError(f'{path}: not valid JSON ({err})') from err


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


def run_cli(main: Callable[[list[str]], int | None]) -> None:
    """Run a script's ``main(argv)``: a :class:`SELDError` becomes ``error: ...`` on stderr and exit 2;
    Ctrl-C exits 130 after the script's own cleanup."""
    try:
        code = main(sys.argv[1:])
    except SELDError as err:
        print(f'error: {err}', file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)

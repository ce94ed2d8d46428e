"""Checked reads and writes of the pipeline's files: every fault is a :class:`utils.SELDError` naming the file.

* ``.npy`` files are opened by their header only (:func:`npy_header`): its shape, dtype and data offset, checked
  against the file's size, so a truncated file is named instead of failing inside a memory map, and no file (or
  descriptor) is kept open: :func:`load_npy` reads a whole small file, ``os.pread`` a slice of a large one.
* ``.npz`` archives are read as numeric arrays only (:func:`read_npz`; never pickles).
* A WAVE file cut short is refused (:func:`check_wav_complete`) instead of being read as a shorter recording.
* :func:`writing` turns an OSError while writing (a full disk, no permission) into a SELDError naming the file.
"""
from __future__ import annotations

import contextlib
import math
import os
import struct
import zipfile
import zlib
from typing import Any, NamedTuple

import numpy as np

import utils
from utils import SELDError

REDO = 're-run batch_feature_extraction.py with the same parameters (it redoes bad files)'


class NpyFile(NamedTuple):
    """Where the array of a ``.npy`` file lies (:func:`npy_header`): read rows with ``os.pread``, no open file kept.

    The field names are those of ``np.memmap`` (``filename``, ``offset``, ``shape``, ``dtype``).
    """
    filename: str
    offset: int
    shape: tuple
    dtype: np.dtype

    @property
    def nbytes(self) -> int:
        """Bytes of the array (as ``np.ndarray.nbytes``)."""
        return math.prod(self.shape) * self.dtype.itemsize


def npy_header(path: str | os.PathLike, *, dtype: Any = None, ndim: int | None = None) -> NpyFile:
    """Read and check the header of a ``.npy`` file, without loading (or mapping) its data.

    Parameters
    ----------
    path : str
    dtype : optional
        The dtype the array must have.
    ndim : int, optional
        The number of dimensions it must have.

    Returns
    -------
    NpyFile
        ``filename``, ``offset`` of the data, ``shape``, ``dtype``.

    Raises
    ------
    SELDError
        The file is missing or unreadable, not a ``.npy`` file (format 1.0 or 2.0), holds Python objects, is in
        Fortran order, has another dtype or number of dimensions, or its size is not the header's data size (a
        truncated file): naming the file.
    """
    path = os.fspath(path)
    fmt = np.lib.format
    try:
        with open(path, 'rb') as f:
            version = fmt.read_magic(f)
            if version not in ((1, 0), (2, 0)):
                raise SELDError(f'{path}: .npy format version {version[0]}.{version[1]}, expected 1.0 or 2.0; {REDO}')
            read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, fortran, dt = read(f)
            offset, size = f.tell(), os.fstat(f.fileno()).st_size
    except FileNotFoundError as err:
        raise SELDError(f'{path}: file not found; {REDO}') from err
    except OSError as err:
        raise SELDError(f'{path}: cannot read ({err.strerror or err})') from err
    except (ValueError, SyntaxError, EOFError, TypeError) as err:
        raise SELDError(f'{path}: not a valid .npy file ({err}); {REDO}') from err
    if dt.hasobject:
        raise SELDError(f'{path}: holds Python objects ({dt}); only numeric arrays are read; {REDO}')
    if fortran or (dtype is not None and dt != np.dtype(dtype)) or (ndim is not None and len(shape) != ndim):
        raise SELDError(f'{path}: array {shape} {dt}{" (Fortran order)" if fortran else ""}, expected '
                        f'{ndim if ndim is not None else "any"}-D {np.dtype(dtype) if dtype is not None else ""} in C '
                        f'order; {REDO}')
    need = offset + math.prod(shape) * dt.itemsize
    if size != need:
        raise SELDError(f'{path}: {size} bytes, but its header ({shape}, {dt}) needs {need}: '
                        f'{"truncated" if size < need else "trailing data"}; {REDO}')
    return NpyFile(path, offset, tuple(shape), dt)


def load_npy(path: str | os.PathLike, *, dtype: Any = None, ndim: int | None = None) -> np.ndarray:
    """Load a whole ``.npy`` file after :func:`npy_header`'s checks (never pickles)."""
    info = npy_header(path, dtype=dtype, ndim=ndim)
    try:
        with open(info.filename, 'rb') as f:
            f.seek(info.offset)
            data = f.read()
    except OSError as err:
        raise SELDError(f'{info.filename}: cannot read ({err.strerror or err})') from err
    if len(data) != math.prod(info.shape) * info.dtype.itemsize:
        raise SELDError(f'{info.filename}: changed while being read; {REDO}')
    return np.frombuffer(data, dtype=info.dtype).reshape(info.shape).copy()


def is_valid_npy(path: str, *, shape: tuple | None = None, dtype: Any = None) -> bool:
    """Whether ``path`` is a complete ``.npy`` file (:func:`npy_header`) of ``shape`` (None: any) and ``dtype``."""
    try:
        info = npy_header(path, dtype=dtype)
    except SELDError:
        return False
    return shape is None or info.shape == tuple(shape)


def writing(path: str | os.PathLike) -> contextlib.AbstractContextManager[None]:
    """:func:`utils.writing` for the extraction's outputs: an OSError while writing ``path`` (a full disk, no
    permission) becomes a SELDError naming it. The writes are atomic (:func:`utils.atomic_path`), so the files
    already written stay valid and a re-run resumes."""
    return utils.writing(path, hint=', then re-run: finished files are kept')


def read_npz(path: str | os.PathLike, names: tuple[str, ...], *, what: str, hint: str = REDO) -> dict[str, np.ndarray]:
    """Read named numeric arrays of an ``.npz`` archive (never pickles); any fault is a SELDError naming the file.

    A file that is not a zip archive (e.g. overwritten with text) is refused before numpy sees it, so the message is
    about the file, not about pickles.
    """
    path = os.fspath(path)
    try:
        with open(path, 'rb') as f:
            magic = f.read(4)
    except FileNotFoundError as err:
        raise SELDError(f'{path}: {what} not found; {hint}') from err
    except OSError as err:
        raise SELDError(f'{path}: cannot read ({err.strerror or err})') from err
    if magic != b'PK\x03\x04':
        raise SELDError(f'{path}: not a valid {what} (not an .npz archive of arrays); {hint}')
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [n for n in names if n not in z.files]
            if missing:
                raise SELDError(f'{path}: not a valid {what} (arrays {missing} missing); {hint}')
            out = {n: z[n] for n in names}
    except SELDError:
        raise
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as err:
        raise SELDError(f'{path}: not a valid {what} (truncated or corrupt: {type(err).__name__}); {hint}') from err
    bad = [n for n, a in out.items() if a.dtype.kind not in 'biuf' or not np.isfinite(a).all()]
    if bad:
        raise SELDError(f'{path}: not a valid {what} (arrays {bad} are not finite numbers); {hint}')
    return out


def check_wav_complete(path: str | os.PathLike) -> None:
    """Refuse a RIFF/WAVE file whose data chunk is shorter than its header declares (a copy or download cut short).

    libsndfile reads such a file as a shorter recording; its length is then wrong and, cut before the last event, its
    labels fail with an error that blames the metadata. Other formats, and WAVE files written by a stream (data size
    0 or 0xFFFFFFFF), are left to libsndfile.

    Raises
    ------
    SELDError
        Naming the file, the declared and the present length of its audio data.
    """
    path = os.fspath(path)
    try:
        with open(path, 'rb') as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] not in (b'RIFF', b'RIFX') or head[8:12] != b'WAVE':
                return
            endian = '<' if head[:4] == b'RIFF' else '>'
            size = os.fstat(f.fileno()).st_size
            byte_rate = block_align = 0
            while True:
                chunk = f.read(8)
                if len(chunk) < 8:
                    return  # no data chunk: libsndfile says what is wrong
                cid, clen = chunk[:4], struct.unpack(endian + 'I', chunk[4:])[0]
                if cid == b'fmt ' and clen >= 16:
                    fmt = f.read(16)
                    if len(fmt) == 16:
                        byte_rate, block_align = struct.unpack(endian + 'I', fmt[8:12])[0], struct.unpack(
                            endian + 'H', fmt[12:14])[0]
                    f.seek(clen - 16 + (clen & 1), os.SEEK_CUR)
                elif cid == b'data':
                    start = f.tell()
                    break
                else:
                    f.seek(clen + (clen & 1), os.SEEK_CUR)
    except OSError as err:
        raise SELDError(f'{path}: cannot read audio ({err.strerror or err})') from err
    if clen in (0, 0xFFFFFFFF):
        return
    present = size - start
    if present < clen:
        secs = (lambda n: f' ({n / byte_rate:.2f} s)') if byte_rate else (lambda n: '')
        partial = present % block_align if block_align else 0
        frac = f'; {partial} byte(s) of a partial sample frame' if partial else ''
        raise SELDError(f'{path}: truncated: its header declares {clen} bytes of audio{secs(clen)}, the file holds '
                        f'{present}{secs(present)}{frac}; copy the file again')

"""Import Keras without the backend's start-up log, and say once which device trains.

TensorFlow prints its start-up chatter to the C-level stderr: "Could not find cuda drivers on your machine", "oneDNN
custom operations are on", and on a machine without a GPU an alarming ``E0000 ... failed call to cuInit``. Part of it
is written before TensorFlow reads ``TF_CPP_MIN_LOG_LEVEL``. :func:`import_keras` silences it, and keeps it: if the
import fails, the captured text is written back to stderr before the exception, so nothing a user needs is lost.
:func:`device_line` then says, in the project's words, whether a GPU is used.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from typing import Any, Iterator


@contextlib.contextmanager
def _captured_stderr() -> Iterator[None]:
    """Send file descriptor 2 to a temporary file; replay the file to stderr if the block raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode='w+b') as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            tmp.seek(0)
            sys.stderr.write(tmp.read().decode(errors='replace'))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def import_keras() -> Any:
    """Import and return :mod:`keras` with its backend, without the backend's start-up log.

    Sets ``TF_CPP_MIN_LOG_LEVEL=3`` unless the user set it, and lets TensorFlow probe its devices while stderr is
    captured (the probe is what logs ``cuInit`` errors on a machine without a GPU). JAX's "no CUDA-enabled jaxlib"
    warning is silenced the same way (Python logging). Call it before the first ``import keras``.
    """
    if 'keras' in sys.modules:
        return sys.modules['keras']
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
    logging.getLogger('jax._src.xla_bridge').setLevel(logging.ERROR)
    with _captured_stderr():
        import keras

        if keras.backend.backend() == 'tensorflow':
            import tensorflow as tf

            tf.config.list_physical_devices('GPU')
    return keras


def accelerators() -> list[str]:
    """Names of the GPUs the current Keras backend will use (empty on a CPU machine)."""
    import keras

    backend = keras.backend.backend()
    if backend == 'tensorflow':
        import tensorflow as tf

        with _captured_stderr():
            gpus = tf.config.list_physical_devices('GPU')
        names = []
        for gpu in gpus:
            try:
                names.append(tf.config.experimental.get_device_details(gpu).get('device_name', gpu.name))
            except (ValueError, RuntimeError):
                names.append(gpu.name)
        return names
    if backend == 'jax':
        import jax

        return [d.device_kind for d in jax.devices() if d.platform == 'gpu']
    if backend == 'torch':
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return []


def device_line() -> str:
    """One line: the Keras backend and whether it computes on GPUs or on the CPU."""
    import keras

    names = accelerators()
    where = (f'{len(names)} GPU{"s" if len(names) > 1 else ""} ({", ".join(sorted(set(names)))})' if names
             else f'the CPU ({os.cpu_count()} cores; no GPU found)')
    return f'device: Keras {keras.__version__} with {keras.backend.backend()} on {where}'

"""Elementwise formulas evaluated in cache-sized blocks across a pool of threads.

NumPy evaluates ``0.5 * (a - b) ** 2 / c`` one operation at a time over the whole array:
every temporary of a million float64 goes out to memory and comes back, and only one core
works. A formula that is elementwise gives the same numbers when it is evaluated on any
slice of its (broadcast) arguments, so it can be cut into blocks of BLOCK entries, whose
temporaries stay in the cache, and the blocks shared among threads (NumPy releases the GIL
inside its ufuncs). Each entry goes through the same operations as in one call over the
whole array, so the result is bit for bit the same.

Threads are used only from PARALLEL_FROM entries: below that, starting them costs more than
they give, and the formula is called as it is. The number of threads is
``$SYMGEN_NUM_THREADS`` if set, else the cores this process may run on; :func:`set_threads`
changes it. Calls from several threads at once share one pool; a blocked formula called
from inside a block (a formula built from another) runs that inner call directly, so the
pool never waits on itself.

Validation runs inside the same pass, block by block. When a block finds a bad argument,
the checks are run again over the whole arrays, so the error names the same argument and
value as an unblocked call would.
"""
from __future__ import annotations

import functools
import inspect
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

ENVIRONMENT_VARIABLE = "SYMGEN_NUM_THREADS"
#: Entries per block. Each block costs a call of the generated function (its argument
#: handling, each refine's index work: tens of microseconds of Python holding the GIL) and a
#: copy into the result, so small blocks lose more than the cache gives back: on the 2-core
#: machine of the README's Speed section, kl_normal on 10^7 entries took 210 ms in blocks of
#: 16384, 93 ms in blocks of 65536 and 75 ms in blocks of 131072 (unblocked: 161 ms).
BLOCK = 131072
#: Below this many entries a formula is called as it is, on the calling thread: at 10^6
#: entries two threads gained little for the cheap formulas (score_normal 2.1 -> 2.6 ms,
#: diffusion_marginal 2.2 -> 3.1 ms, the copy into the result costing what the second core
#: saved), so threads start at 2^20.
PARALLEL_FROM = 1 << 20

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_threads = 0
_threads: int | None = None
_inside = threading.local()


def _default_threads() -> int:
    setting = os.environ.get(ENVIRONMENT_VARIABLE)
    if setting:
        try:
            count = int(setting)
        except ValueError:
            raise ValueError(f"{ENVIRONMENT_VARIABLE} must be a positive integer, not {setting!r}") from None
        if count < 1:
            raise ValueError(f"{ENVIRONMENT_VARIABLE} must be a positive integer, not {setting!r}")
        return count
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads() -> int:
    """The number of threads a blocked formula uses (1: no threads)."""
    global _threads
    if _threads is None:
        _threads = _default_threads()
    return _threads


def set_threads(count: int | None) -> None:
    """Use ``count`` threads from now on (None: back to $SYMGEN_NUM_THREADS or the cores)."""
    global _threads
    if count is not None and (not isinstance(count, (int, np.integer)) or count < 1):
        raise ValueError(f"set_threads: count must be a positive integer or None, not {count!r}")
    with _lock:
        _threads = None if count is None else int(count)


def _executor(count: int) -> ThreadPoolExecutor:
    global _pool, _pool_threads
    with _lock:
        if _pool is None or _pool_threads != count:
            _pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="symgen")
            _pool_threads = count
        return _pool


def _flat_arguments(arguments):
    """The arguments as 1-d arrays over the broadcast shape (a scalar stays a scalar), or None
    where that would copy (an argument broadcast along some axes: the formula is then called
    as it is)."""
    arrays = [np.asarray(argument) for argument in arguments]
    shape = np.broadcast_shapes(*(array.shape for array in arrays))
    size = int(np.prod(shape, dtype=np.int64))
    flat = []
    for array in arrays:
        if array.size == 1 and array.ndim == 0:
            flat.append(array)
        elif array.shape == shape and array.flags.c_contiguous:
            flat.append(array.reshape(-1))
        else:
            return None, shape, size
    return flat, shape, size


def elementwise(formula):
    """``formula(*arguments, validate=...)``, an elementwise formula returning an array or a
    named tuple of arrays, evaluated in blocks across threads for large inputs (see the
    module docstring)."""
    signature = inspect.signature(formula)

    @functools.wraps(formula)
    def blocked(*arguments, validate=True, **named):
        if named:   # arguments by name, in the formula's order (a TypeError as the formula gives)
            arguments = signature.bind(*arguments, **named).args
        count = threads()
        if count == 1 or getattr(_inside, "active", False):
            return formula(*arguments, validate=validate)
        try:
            flat, shape, size = _flat_arguments(arguments)
        except ValueError:   # shapes that do not broadcast: the formula's checks say which
            return formula(*arguments, validate=validate)
        if flat is None or size < PARALLEL_FROM:
            return formula(*arguments, validate=validate)
        first = formula(*_block(flat, 0, BLOCK), validate=validate)
        outputs = _outputs(first, BLOCK, size)
        if outputs is None:
            return formula(*arguments, validate=validate)   # not elementwise arrays: called whole
        for output, values in zip(outputs, _parts(first)):
            output[:BLOCK] = values
        starts = range(BLOCK, size, BLOCK)
        failed = []

        def run(offset):
            _inside.active = True
            try:
                # Each thread takes every count-th block: the threads sweep the arrays side by side.
                for start in starts[offset::count]:
                    stop = min(start + BLOCK, size)
                    values = _parts(formula(*_block(flat, start, stop), validate=validate))
                    if any(part.dtype != output.dtype for part, output in zip(values, outputs)):
                        raise _Unblockable
                    for output, part in zip(outputs, values):
                        output[start:stop] = part
            except ValueError as error:   # a bad argument: reported below as an unblocked call would
                failed.append(error)
            finally:
                _inside.active = False

        try:
            list(_executor(count).map(run, range(count)))
        except _Unblockable:
            return formula(*arguments, validate=validate)
        if failed:
            # The checks over the whole arrays name the argument an unblocked call names.
            formula(*arguments, validate=validate)
            raise failed[0]
        shaped = [output.reshape(shape) for output in outputs]
        return shaped[0] if isinstance(first, np.ndarray) else type(first)(*shaped)

    blocked.unblocked = formula
    return blocked


def _block(flat, start, stop):
    return [part[start:stop] if part.ndim else part for part in flat]


def _parts(result):
    return (result,) if isinstance(result, np.ndarray) else tuple(result)


def _outputs(first, block, size):
    """Arrays for the whole result, shaped like the first block's parts; None when a part is
    not an array over the block (a constant output, a reduction)."""
    parts = _parts(first) if isinstance(first, (np.ndarray, tuple)) else None
    if not parts or any(not isinstance(part, np.ndarray) or part.shape != (min(block, size),) for part in parts):
        return None
    return [np.empty(size, dtype=part.dtype) for part in parts]


class _Unblockable(Exception):
    """A block's result changed dtype (a float32 block beside a float64 one): call it whole."""

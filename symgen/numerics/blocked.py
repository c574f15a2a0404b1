"""Elementwise formulas evaluated in cache-sized blocks across a pool of threads.

NumPy evaluates ``0.5 * (a - b) ** 2 / c`` one operation at a time over the whole array:
every temporary of a million float64 goes out to memory and comes back, and only one core
works. A formula that is elementwise gives the same numbers when it is evaluated on any
slice of its (broadcast) arguments, so it can be cut into blocks of BLOCK entries, whose
temporaries (1 MB each) mostly stay in the caches, and the blocks shared among threads
(NumPy releases the GIL inside its ufuncs). Each entry goes through the same operations as in one call over the
whole array, so the result is bit for bit the same.

Threads are used only from PARALLEL_FROM entries: below that, waking them costs more than
they give, and the formula is called as it is. Up to ALWAYS_PARALLEL_FROM entries they are
used only for a formula that costs at least PARALLEL_COST_NS per entry, as measured on its
own first call of that size (evaluated whole); a cheap formula there is bound by memory,
and the copy of each block into the result costs what the second core saves.

The number of threads is ``$SYMGEN_NUM_THREADS`` if set, else the cores this process may
run on; :func:`set_threads` changes it. A first call on PROBE entries shows the outputs'
structure; then the calling thread and the pool's threads take the blocks in turn, each in
a copy of the caller's context (so ``np.errstate`` holds in every block). Where the whole of
an output is a stable branch (``stable.refine(..., output=k)``), the blocks collect the
entries to refine and the branch runs once over all of them at the end: a few NumPy calls on
a few entries hold the GIL, and made in every block they kept the other threads waiting.
Calls from several threads at once share one pool; a blocked formula called from inside a
block (a formula built from another) runs that inner call directly, so the pool never waits
on itself; a forked child (a data-loading worker) starts a pool of its own.

Validation runs inside the same pass, block by block. When a block finds a bad argument,
the checks are run again over the whole arrays, so the error names the same argument and
value as an unblocked call would.

Batched matrix formulas (``kl_mvn``, ``score_mvn``) are shared out the same way by
:func:`over_batch`: each thread takes one contiguous part of the leading batch axis (NumPy's
batched LAPACK routines release the GIL too), from BATCH_WORK_FROM units of work on.
"""
from __future__ import annotations

import contextvars
import functools
import inspect
import itertools
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from symgen.numerics import stable

ENVIRONMENT_VARIABLE = "SYMGEN_NUM_THREADS"
#: Entries per block. Each block costs a call of the generated function (its argument
#: handling, each refine's index work: tens of microseconds of Python holding the GIL) and a
#: copy into the result, so small blocks lose more than the cache gives back: on the 2-core
#: machine of the README's Speed section, kl_normal on 10^7 entries took 210 ms in blocks of
#: 16384, 93 ms in blocks of 65536 and 75 ms in blocks of 131072 (unblocked: 161 ms).
BLOCK = 131072
#: Entries of the first call, made before the threads start, that shows the outputs'
#: structure. A whole first block there kept the other threads waiting: kl_normal on 10^6
#: entries took 5.3 ms so; with this probe, the blocks taken in turn and its stable branch
#: made once at the end, 4.4-4.9 ms (on the machine of the README's Speed section).
PROBE = 1024
#: Below this many entries a formula is called as it is, on the calling thread.
PARALLEL_FROM = 1 << 18
#: From this many entries on every elementwise formula is shared among the threads.
ALWAYS_PARALLEL_FROM = 1 << 20
#: Between the two, threads are used for a formula whose whole call took at least this many
#: nanoseconds per entry. At 10^6 entries on the 2-core machine of the README's Speed
#: section, with threads for every formula, those from ~3 ns on gained (score_diffusion 3.2
#: ns per entry: 3.16 -> 2.51 ms, affine_flow_logpdf 4.4: 4.39 -> 3.52 ms, linear_flow_logpdf_2d
#: 23 -> 13 ms) and the cheaper ones lost or broke even (diffusion_min_snr_weight 2.7: 2.74 ->
#: 3.27 ms, diffusion_marginal 1.8: 1.83 -> 4.83 ms, score_normal 1.9: 1.92 -> 1.90 ms).
PARALLEL_COST_NS = 3.0

#: A batched matrix formula is split among the threads from this many batch entries times
#: d^3 (the order of its factorizations' work): kl_mvn at batch 10^4 took 18.3 ms at d = 8
#: (5e6 units) and 15.7 ms in two halves on two threads; at d = 64, 1756 ms and 875 ms.
BATCH_WORK_FROM = 1 << 22

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


def _forget_the_pool_in_a_child() -> None:
    """After fork the child has the pool object but none of its threads (a DataLoader
    worker, say): work submitted to it would wait forever, so the child starts its own."""
    global _pool, _pool_threads, _lock
    _pool, _pool_threads, _lock = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_the_pool_in_a_child)


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
    cost_ns = [None]   # per entry, from the formula's last whole call of a middling size

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
        if size < ALWAYS_PARALLEL_FROM and (cost_ns[0] is None or cost_ns[0] < PARALLEL_COST_NS):
            start = time.perf_counter()
            result = formula(*arguments, validate=validate)
            cost_ns[0] = (time.perf_counter() - start) * 1e9 / size
            return result
        # Refinements of a whole output (stable.refine's ``output``) are collected from the
        # blocks and made once at the end: each is a few NumPy calls on a few entries, which
        # hold the GIL, so per block they kept the other threads waiting.
        refinements = []

        def evaluate(start, stop):
            with stable.deferring(formula) as collected:
                values = formula(*_block(flat, start, stop), validate=validate)
            refinements.extend([(refinement, start) for refinement in collected])   # atomic under the GIL
            return values

        try:
            # A first call on a few entries shows the outputs' number, shape and dtype.
            first = evaluate(0, PROBE)
        except ValueError:   # a bad argument: the whole call names the one it names
            return formula(*arguments, validate=validate)
        outputs = _outputs(first, PROBE, size)
        if outputs is None:
            return formula(*arguments, validate=validate)   # not elementwise arrays: called whole
        for output, values in zip(outputs, _parts(first)):
            output[:PROBE] = values
        # Blocks of at most BLOCK entries, as many as makes a multiple of the threads, all of
        # one length: no thread is left with the last, short block while the others wait.
        rest = size - PROBE
        count_blocks = -(-rest // BLOCK)
        count_blocks = -(-count_blocks // count) * count
        length = -(-rest // count_blocks)
        starts = range(PROBE, size, length)
        # The threads take the blocks in turn from one counter (next() on it is atomic under
        # the GIL), so one that starts late or runs slow takes fewer.
        turns = itertools.count()
        failed = []

        def run():
            _inside.active = True
            try:
                for turn in turns:
                    if turn >= len(starts):
                        break
                    start = starts[turn]
                    stop = min(start + length, size)
                    values = _parts(evaluate(start, stop))
                    if any(part.dtype != output.dtype for part, output in zip(values, outputs)):
                        raise _Unblockable
                    for output, part in zip(outputs, values):
                        output[start:stop] = part
            except ValueError as error:   # a bad argument: reported below as an unblocked call would
                failed.append(error)
            finally:
                _inside.active = False

        try:
            # The calling thread sweeps its share too, while the pool's threads sweep theirs.
            # Each thread runs in a copy of the caller's context: NumPy's error settings
            # (np.errstate) hold in every block as in one call.
            others = [_executor(count).submit(contextvars.copy_context().run, run) for _ in range(1, count)]
            run()
            for other in others:
                other.result()
        except _Unblockable:
            return formula(*arguments, validate=validate)
        if failed:
            # The checks over the whole arrays name the argument an unblocked call names.
            formula(*arguments, validate=validate)
            raise failed[0]
        stable.make_refinements(refinements, outputs)
        shaped = [output.reshape(shape) for output in outputs]
        return shaped[0] if isinstance(first, np.ndarray) else type(first)(*shaped)

    blocked.unblocked = _without_threads(formula)
    blocked.cost_ns = cost_ns
    return blocked


def _without_threads(formula):
    """``formula`` in one call on the calling thread, the blocked formulas it calls too."""
    @functools.wraps(formula)
    def whole(*arguments, **named):
        before = getattr(_inside, "active", False)
        _inside.active = True
        try:
            return formula(*arguments, **named)
        finally:
            _inside.active = before
    return whole


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


def over_batch(*core_ndims, split_from_d=1):
    """Decorator for ``formula(*arrays, validate=..., **options)`` whose i-th argument has
    ``core_ndims[i]`` trailing core dimensions (1: a vector of length d, 2: a d x d matrix)
    after batch dimensions that broadcast, each batch entry computed on its own: the
    leading batch axis is cut into one contiguous part per thread when the work is large
    enough (see the module docstring) and d is at least ``split_from_d`` (below it, a
    formula whose first steps do not spread over threads makes them whole and splits the
    rest itself). Every entry goes through the same operations as in one call, so the
    result is bit for bit the same; a part that raises is answered by the whole call, whose
    checks name the argument."""
    def decorate(formula):
        @functools.wraps(formula)
        def split(*arguments, validate=True, **options):
            count = threads()
            plan = None
            if count > 1 and not getattr(_inside, "active", False) and len(arguments) == len(core_ndims):
                plan = _batch_plan(arguments, core_ndims, count, split_from_d)
            if plan is None:
                return formula(*arguments, validate=validate, **options)
            failed = []

            def run(window):
                _inside.active = True
                try:
                    return formula(*(array[window] if sliced else array for array, sliced in plan),
                                   validate=validate, **options)
                except ValueError as error:   # reported below as the whole call reports it
                    failed.append(error)
                finally:
                    _inside.active = False

            size = next(array.shape[0] for array, sliced in plan if sliced)
            step = -(-size // count)
            windows = [slice(start, start + step) for start in range(0, size, step)]
            # Each part runs in a copy of the caller's context (np.errstate holds there too).
            contexts = [contextvars.copy_context() for _ in windows]
            parts = list(_executor(count).map(lambda context, window: context.run(run, window),
                                              contexts, windows))
            if failed:
                return formula(*arguments, validate=validate, **options)
            return np.concatenate(parts, axis=0)

        split.unblocked = _without_threads(formula)
        return split
    return decorate


def _batch_plan(arguments, core_ndims, count, split_from_d=1):
    """(array, sliced) for each argument: sliced along axis 0 when it spans the leading batch
    axis, else passed whole (it broadcasts there); None when the call is better made whole
    (small work, no leading batch axis, shapes the formula's own checks should judge)."""
    arrays = [np.asarray(argument) for argument in arguments]
    if any(array.ndim < core for array, core in zip(arrays, core_ndims)) or arrays[0].ndim < 1:
        return None
    batches = [array.shape[:array.ndim - core] for array, core in zip(arrays, core_ndims)]
    try:
        batch = np.broadcast_shapes(*batches)
    except ValueError:
        return None
    d = arrays[0].shape[-1]
    entries = int(np.prod(batch, dtype=np.int64))
    if not batch or batch[0] < 2 * count or entries * d ** 3 < BATCH_WORK_FROM or d < split_from_d:
        return None
    return [(array, len(shape) == len(batch) and shape[0] == batch[0])
            for array, shape in zip(arrays, batches)]

"""Shared timing helper for the benchmark scripts: best of several runs."""
import time


def best_time(function, *arguments, repeat: int = 7, **keywords) -> float:
    """The fastest of ``repeat`` runs, in seconds (the least disturbed by other load)."""
    function(*arguments, **keywords)  # warm up: first-call imports and allocations
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function(*arguments, **keywords)
        best = min(best, time.perf_counter() - start)
    return best


def best_times(calls, repeat: int = 7) -> list[float]:
    """The fastest of ``repeat`` runs of each zero-argument call, in seconds, the calls
    taking turns within each round: a burst of load from elsewhere on a shared machine
    then slows every contender's round alike, instead of all the runs of one of them.

    Each timed run directly follows an untimed run of the same call. At 10^6 elements,
    getting fresh pages from the system costs about as much as the arithmetic, and how
    many a call needs depends on what the allocator kept from the call before it; this
    way each call is timed in the state its own previous run leaves, as in a loop that
    calls it, not in whatever state the previous contender (torch, say) left."""
    best = [float("inf")] * len(calls)
    for _ in range(repeat):
        for index, call in enumerate(calls):
            call()
            start = time.perf_counter()
            call()
            best[index] = min(best[index], time.perf_counter() - start)
    return best


def table(rows, header):
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(header, widths))]
    lines += ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)) for row in rows]
    return "\n".join(lines)

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


def table(rows, header):
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(header, widths))]
    lines += ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)) for row in rows]
    return "\n".join(lines)

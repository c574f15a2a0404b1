"""Import time of ``from symgen import kl_normal`` against ``import numpy`` (target: <= 1.5x).

    python benchmarks/import_time.py

Each import runs in a fresh interpreter; the best of 15 runs is kept, and the cost of
starting Python itself is subtracted from both.
"""
import subprocess
import sys
import time


def best_start_time(code: str, runs: int = 15) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        best = min(best, time.perf_counter() - start)
    return best


def main():
    bare = best_start_time("pass")
    numpy_time = best_start_time("import numpy") - bare
    symgen_time = best_start_time("from symgen import kl_normal") - bare
    print(f"python startup            {bare * 1e3:7.1f} ms (subtracted below)")
    print(f"import numpy              {numpy_time * 1e3:7.1f} ms")
    print(f"from symgen import kl_normal {symgen_time * 1e3:4.1f} ms")
    print(f"ratio                     {symgen_time / numpy_time:7.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()

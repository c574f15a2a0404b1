"""Import time of ``from symgen import kl_normal`` against ``import numpy`` (target: <= 1.5x).

    python benchmarks/import_time.py [--runs 25]

Each import runs in a fresh interpreter; the three programs (a bare interpreter, the
NumPy import, the symgen import) take turns, the best of ``--runs`` rounds is kept for
each, and the cost of starting Python itself is subtracted from both imports.
"""
import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import best_times  # noqa: E402

PROGRAMS = {"bare": "pass", "numpy": "import numpy", "symgen": "from symgen import kl_normal"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=25)
    arguments = parser.parse_args(argv)
    calls = [lambda code=code: subprocess.run([sys.executable, "-c", code], check=True)
             for code in PROGRAMS.values()]
    bare, numpy_time, symgen_time = best_times(calls, repeat=arguments.runs)
    numpy_time, symgen_time = numpy_time - bare, symgen_time - bare
    print(f"python startup            {bare * 1e3:7.1f} ms (subtracted below)")
    print(f"import numpy              {numpy_time * 1e3:7.1f} ms")
    print(f"from symgen import kl_normal {symgen_time * 1e3:4.1f} ms")
    print(f"ratio                     {symgen_time / numpy_time:7.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()

"""Wall time of `symgen verify` over the whole catalogue and of the test suite.

    python benchmarks/wall_times.py [--skip-tests]

Both run as a user would run them (subprocesses, CI=true so hypothesis is derandomized).
"""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(command):
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=ROOT, env={**os.environ, "CI": "true"},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return time.perf_counter() - start, completed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-tests", action="store_true")
    arguments = parser.parse_args(argv)
    seconds, completed = timed([sys.executable, "-m", "symgen", "verify", "--quiet"])
    print(f"symgen verify (whole catalogue): {seconds:.1f} s, exit {completed.returncode}, "
          f"{completed.stdout.strip().splitlines()[-1]}")
    if not arguments.skip_tests:
        seconds, completed = timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"])
        print(f"test suite: {seconds:.1f} s, exit {completed.returncode}, "
              f"{completed.stdout.strip().splitlines()[-1]}")


if __name__ == "__main__":
    main()

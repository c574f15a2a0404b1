"""Wall time of `symgen verify` over the whole catalogue and of the test suite.

    python benchmarks/wall_times.py [--skip-tests]

All run as a user would run them (subprocesses, CI=true so hypothesis is derandomized):
`symgen verify` with an empty cache (every step derived and proved), the same with
`--jobs 2`, a second run (proofs from the cache), and the test suite.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(command, **environment):
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=ROOT, env={**os.environ, "CI": "true", **environment},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return time.perf_counter() - start, completed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-tests", action="store_true")
    arguments = parser.parse_args(argv)
    verify = [sys.executable, "-m", "symgen", "verify", "--quiet"]
    with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as second:
        for label, extra, cache in (("empty cache", [], first), ("empty cache, --jobs 2", ["--jobs", "2"], second),
                                    ("second run (from the first run's cache)", [], first)):
            seconds, completed = timed(verify + extra, SYMGEN_CACHE_DIR=cache)
            print(f"symgen verify, {label}: {seconds:.1f} s, exit {completed.returncode}, "
                  f"{completed.stdout.strip().splitlines()[-1]}")
    if not arguments.skip_tests:
        seconds, completed = timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"])
        print(f"test suite: {seconds:.1f} s, exit {completed.returncode}, "
              f"{completed.stdout.strip().splitlines()[-1]}")


if __name__ == "__main__":
    main()

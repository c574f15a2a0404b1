"""Wall time of the command line against the imports it is measured by.

    python benchmarks/cli.py [--runs 15]

Targets: `symgen list`, `symgen show NAME` (text, Markdown, LaTeX) and an unknown name
within 3x the time of `python -c "import numpy"`; `symgen export` within 2x the time of
`python -c "import sympy"`. Every program runs in a fresh interpreter, as a user runs it
(`python -m symgen ...`, from an empty directory); they take turns in each round and the
best of ``--runs`` rounds counts. The derivation cache is warm (a first, untimed run of
each fills it), which is the state a user is in after one command: the cold cost of
`export` is the derivation of that one formula, printed separately.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import best_times, table  # noqa: E402

SYMGEN = [sys.executable, "-m", "symgen"]
PROGRAMS = {
    "python -c 'import numpy'": [sys.executable, "-c", "import numpy"],
    "python -c 'import sympy'": [sys.executable, "-c", "import sympy"],
    "symgen list": SYMGEN + ["list"],
    "symgen show kl_normal": SYMGEN + ["show", "kl_normal"],
    "symgen show kl_normal --format markdown": SYMGEN + ["show", "kl_normal", "--format", "markdown"],
    "symgen show kl_normal --format latex": SYMGEN + ["show", "kl_normal", "--format", "latex"],
    "symgen show diffusion_posterior": SYMGEN + ["show", "diffusion_posterior"],
    "symgen show kl_nrmal (a typo)": SYMGEN + ["show", "kl_nrmal"],
    "symgen export kl_std_normal": SYMGEN + ["export", "kl_std_normal"],
    "symgen export diffusion_vpsde_marginal --backend torch": SYMGEN + ["export", "diffusion_vpsde_marginal",
                                                                       "--backend", "torch"],
}
MEASURED_BY = {"symgen export": "python -c 'import sympy'"}
TARGET = {"symgen export": 2.0}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    arguments = parser.parse_args(argv)
    directory = tempfile.mkdtemp()
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}

    def run(command):
        subprocess.run(command, cwd=directory, env=environment, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    # Cold: the first export of a formula derives it (and fills the cache).
    with tempfile.TemporaryDirectory() as cold:
        start = time.perf_counter()
        subprocess.run(SYMGEN + ["export", "diffusion_vpsde_marginal"], cwd=directory, stdout=subprocess.DEVNULL,
                       env={**environment, "SYMGEN_CACHE_DIR": cold}, check=True)
        cold_export = time.perf_counter() - start
    calls = [lambda command=command: run(command) for command in PROGRAMS.values()]
    times = dict(zip(PROGRAMS, best_times(calls, repeat=arguments.runs)))
    rows = []
    for name, seconds in times.items():
        if not name.startswith("symgen"):
            rows.append((name, f"{seconds * 1e3:.0f}", "", ""))
            continue
        prefix = "symgen export" if name.startswith("symgen export") else "symgen"
        baseline = MEASURED_BY.get(prefix, "python -c 'import numpy'")
        ratio = seconds / times[baseline]
        rows.append((name, f"{seconds * 1e3:.0f}", f"{ratio:.2f}x {baseline.split()[-1][:-1]}",
                     f"<= {TARGET.get(prefix, 3.0):.0f}x"))
    print(table(rows, ("command", "ms", "ratio", "target")))
    print(f"\nfirst export of diffusion_vpsde_marginal with an empty cache (derives it: dsolve): "
          f"{cold_export * 1e3:.0f} ms")


if __name__ == "__main__":
    main()

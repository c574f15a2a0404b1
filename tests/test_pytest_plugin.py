"""The pytest plugin (symgen/pytest_plugin.py), as a user's test suite meets it: a test
file with one right and one wrong formula, run by pytest in a fresh interpreter."""
import os
import re
import subprocess
import sys
from pathlib import Path

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
# The test file the README offers to copy.
USER_TESTS = re.search(r"```python\n# test_formulas.py\n(.*?)```", README, re.S).group(1)


def _pytest(tmp_path, *options):
    (tmp_path / "test_user_formulas.py").write_text(USER_TESTS)
    # The plugin is found through its pytest11 entry point (the installed package's
    # metadata), as in a user's project; -p loads it explicitly where symgen is only on
    # the path (a source checkout that was never installed).
    from importlib.metadata import entry_points

    registered = any(point.name == "symgen" for point in entry_points(group="pytest11"))
    load = [] if registered else ["-p", "symgen.pytest_plugin"]
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "-p", "no:randomly", *load, *options, "test_user_formulas.py"],
                          cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def test_a_right_formula_passes_and_a_wrong_one_fails_with_its_counterexample(tmp_path):
    result = _pytest(tmp_path, "--symgen-seed", "3")
    assert "1 failed, 1 passed" in result.stdout, result.stdout + result.stderr
    assert "test_posterior_variance" in re.search(r"FAILED (.*)", result.stdout).group(1)
    assert "refuted: diffusion_posterior.var" in result.stdout
    counterexample = re.search(r"counterexample at .*alpha_bar_prev=([0-9.e-]+):", result.stdout)
    assert float(counterexample.group(1)) > 0.94            # where the slip is
    assert "the proved closed form gives var" in result.stdout


def test_the_plugin_imports_nothing_heavy():
    loaded = subprocess.run([sys.executable, "-c", "import sys, symgen.pytest_plugin; "
                             "print(sorted(m for m in ('sympy', 'scipy', 'hypothesis', 'numpy') if m in sys.modules))"],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert loaded.stdout.strip() == "[]", loaded.stderr

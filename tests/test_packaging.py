"""What a user gets from the package: light imports, current generated files, the command."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from symgen.engine import build

ROOT = Path(__file__).resolve().parent.parent


def run_python(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("statement", ["import symgen", "from symgen import kl_normal, kl_mvn"])
def test_importing_formulas_loads_no_engine(statement):
    loaded = run_python(f"{statement}\nimport sys, json\n"
                        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
                        "('sympy', 'scipy', 'hypothesis', 'mpmath') or m.startswith('symgen.engine'))))")
    assert json.loads(loaded) == []


def test_a_formula_loads_its_own_topic_only():
    # symgen.formulas imports a topic's module on first use of one of its functions.
    loaded = run_python("from symgen import kl_normal\nimport sys, json\n"
                        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('symgen.formulas.'))))")
    assert json.loads(loaded) == ["symgen.formulas.gaussian_kl"]


def test_engine_functions_load_on_first_use():
    assert run_python("import symgen; print(callable(symgen.check), 'sympy' in __import__('sys').modules)") \
        .split() == ["True", "True"]


def test_generated_files_are_current():
    stale = build.build(root=ROOT, check=True)
    assert stale == [], f"run `symgen build`: stale {stale}"


def test_generated_code_imports_numpy_and_symgen_numerics_only():
    for path in (ROOT / "symgen" / "formulas").glob("*.py"):
        imports = [line for line in path.read_text().splitlines() if line.startswith(("import", "from"))]
        for line in imports:
            assert line.split()[1].split(".")[0] in ("numpy", "symgen", "collections", "importlib") or \
                line.startswith("from ."), (path.name, line)


def symgen_command(*arguments, cwd=None):
    return subprocess.run([sys.executable, "-m", "symgen", *arguments], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def test_cli_list_and_show(tmp_path):
    listing = symgen_command("list", cwd=tmp_path)
    assert listing.returncode == 0 and "kl_normal" in listing.stdout and "divergence:" in listing.stdout
    shown = symgen_command("show", "kl_std_normal", "--format", "latex", cwd=tmp_path)
    assert shown.returncode == 0 and r"\begin{aligned}" in shown.stdout


def test_cli_check_exit_status(tmp_path):
    verified = symgen_command("check", "kl_std_normal", "(exp(logvar) + loc**2 - 1 - logvar)/2",
                              "--examples", "5", cwd=tmp_path)
    assert verified.returncode == 0 and verified.stdout.startswith("verified")
    refuted = symgen_command("check", "kl_std_normal", "(exp(logvar) + loc**2 - logvar)/2", cwd=tmp_path)
    assert refuted.returncode == 1 and "counterexample" in refuted.stdout
    unreadable = symgen_command("check", "kl_std_normal", "exp(", cwd=tmp_path)
    assert unreadable.returncode == 2


def test_cli_verify_json_and_exit_status(tmp_path):
    result = symgen_command("verify", "kl_std_normal", "--json", "--examples", "5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["passed"] and {row["kind"] for row in payload["rows"]} >= {"proof", "accuracy", "mean"}
    assert "kl_std_normal" in result.stderr      # the progress display


def test_cli_verify_fails_on_a_broken_derivation(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text(
        "import sympy as sp\nfrom symgen.engine import Derivation, Param, Real\n"
        "x = sp.Symbol('x', real=True)\n"
        "broken_square = Derivation('broken_square', title='t', kind='identity', references=[],\n"
        "                           params=[Param(x, Real(-1, 1), 'x')])\n"
        "broken_square.define((x + 1)**2, 'definition').step(x**2 + 1, 'a wrong expansion')\n")
    result = symgen_command("--path", str(broken), "verify", "broken_square", "--examples", "3", cwd=tmp_path)
    assert result.returncode == 1
    assert "FAIL" in result.stdout

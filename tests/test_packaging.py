"""What a user gets from the package: light imports and current generated files (the command
line is tests/test_cli.py's)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from symgen.engine import build

ROOT = Path(__file__).resolve().parent.parent


def run_python(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("statement", ["import symgen", "from symgen import kl_normal, kl_mvn",
                                       "from symgen.torch import kl_normal, kl_mvn, discretized_gaussian_logpmf"])
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


@pytest.mark.parametrize("package, library", [("formulas", "numpy"), ("torch", "torch"), ("jax", "jax")])
def test_generated_code_imports_its_array_library_and_symgen_numerics_only(package, library):
    paths = sorted((ROOT / "symgen" / package).glob("*.py"))
    assert len(paths) > 10
    for path in paths:
        imports = [line for line in path.read_text().splitlines() if line.startswith(("import", "from"))]
        for line in imports:
            assert line.split()[1].split(".")[0] in (library, "symgen", "collections", "importlib"), (path.name, line)
            assert not line.startswith("from symgen") or line.startswith("from symgen.numerics"), (path.name, line)


def test_every_backend_has_every_function():
    names = set(run_python("import symgen.formulas as f; print(' '.join(f.__all__))").split())
    for package in ("torch", "jax"):
        listed = run_python(f"import symgen.{package} as f; print(' '.join(f.__all__))").split()
        assert set(listed) == names and len(names) >= 36

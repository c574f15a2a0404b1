"""`symgen build --check`: byte for byte under the SymPy that printed the files, by inputs and
meaning under another, so a new SymPy release does not make every checkout stale while a
change of meaning still does."""
import json
import shutil
from pathlib import Path

import pytest

from symgen.engine import build

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def checkout(tmp_path):
    """A copy of what the build reads and writes (no docs/: their pages run the verification)."""
    for part in ("derivations", "symgen/formulas", "symgen/torch", "symgen/jax", "symgen/index", "symgen/kl_pairs"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__", "drafts"))
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


def printed_by_another_sympy(path: Path) -> None:
    edit(path, "SymPy ", "SymPy 0.0.1, was ")


def test_check_compares_bytes_under_the_same_sympy_and_meaning_under_another(checkout):
    formulas = checkout / "symgen" / "formulas"
    # The same SymPy: any difference is stale, a reordered sum included.
    edit(formulas / "gaussian_kl.py", "0.5 * (loc ** 2 + stable.expm1mx(logvar))",
         "(stable.expm1mx(logvar) + loc ** 2) * 0.5")
    # Another SymPy, printing the same formula another way: current.
    printed_by_another_sympy(formulas / "langevin.py")
    edit(formulas / "langevin.py", "    _t1 = 2 * _t0", "    _t1 = _t0 * 2")
    # Another SymPy, another meaning (0.1% off): stale.
    printed_by_another_sympy(formulas / "scores.py")
    edit(formulas / "scores.py", "return (loc - x) / scale / scale", "return 1.001 * (loc - x) / scale / scale")
    # Another SymPy, made from another source: stale.
    printed_by_another_sympy(formulas / "flows.py")
    edit(formulas / "flows.py", "# Inputs: sha256 ", "# Inputs: sha256 0")
    # A record printed by another SymPy from the same source: current; from another: stale.
    for name, source in (("kl_std_normal", None), ("kl_normal", "0" * 64)):
        path = checkout / "symgen" / "index" / f"{name}.json"
        record = json.loads(path.read_text())
        record["inputs"]["sympy"] = "0.0.1"
        record["outputs"][0]["steps"][1]["latex"] = "printed another way"
        if source:
            record["inputs"]["source"] = source
        path.write_text(json.dumps(record))
    assert sorted(build.build(root=checkout, check=True)) == [
        "symgen/formulas/flows.py", "symgen/formulas/gaussian_kl.py", "symgen/formulas/scores.py",
        "symgen/index/kl_normal.json"]


def test_build_writes_what_check_finds_stale(checkout):
    edit(checkout / "symgen/formulas/gaussian_kl.py", "stable.expm1mx(logvar)", "stable.log1pmx(logvar)")
    # The torch and JAX modules are generated from the same derivations, and checked the same way.
    edit(checkout / "symgen/torch/gaussian_kl.py", "stable.expm1mx(logvar, backend)", "stable.log1pmx(logvar, backend)")
    (checkout / "symgen/jax/gan.py").unlink()
    (checkout / "symgen/index/kl_normal.json").unlink()
    expected = ["symgen/formulas/gaussian_kl.py", "symgen/index/kl_normal.json", "symgen/jax/gan.py",
                "symgen/torch/gaussian_kl.py"]
    assert sorted(build.build(root=checkout, check=True)) == expected
    assert sorted(build.build(root=checkout)) == expected
    assert build.build(root=checkout, check=True) == []


def test_kl_pairs_are_current_and_an_edited_one_is_not(checkout):
    from symgen.engine import kl

    pairs = checkout / "symgen" / "kl_pairs"
    assert kl.generated_current(pairs)
    edit(pairs / "normal.py", "def kl_normal_normal(", "def kl_normal_normal_renamed(")
    # The recorded digest no longer matches: `symgen build --check` derives the pairs and compares.
    assert not kl.generated_current(pairs)

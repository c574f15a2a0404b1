"""The catalogue's shape: derivation modules that only write expressions down and import
from the engine alone, an engine without import cycles, generated code that reads well."""
import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import symgen
from symgen import records

ROOT = Path(__file__).resolve().parent.parent
DERIVATIONS = sorted(p for p in (ROOT / "derivations").glob("*.py") if not p.name.startswith("_"))
ENGINE = ROOT / "symgen" / "engine"

# --- derivation modules ----------------------------------------------------------------------

HOOKS = {"_latex", "_sympystr", "_eval_evalf", "doit", "_numpycode", "_torchcode", "_jaxcode", "_mpmathcode",
         "fdiff", "_eval_derivative", "eval", "_entry"}


@pytest.mark.parametrize("path", DERIVATIONS, ids=lambda p: p.stem)
def test_a_derivation_module_imports_from_the_engine_only(path):
    tree = ast.parse(path.read_text())
    for node in tree.body:       # module level: symgen.engine only
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("symgen"):
            assert node.module == "symgen.engine", f"{path.name}:{node.lineno} imports {node.module}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert not alias.name.startswith("symgen"), f"{path.name}:{node.lineno}"
                assert not alias.name.startswith("scipy"), f"{path.name}:{node.lineno}: use lazy_module"
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("scipy"):
            raise AssertionError(f"{path.name}:{node.lineno} imports SciPy at import time: use lazy_module")
    for node in ast.walk(tree):  # inside functions, only a figure may import the shipped formulas
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("symgen"):
            assert node.module in ("symgen.engine", "symgen.formulas"), f"{path.name}:{node.lineno}"


@pytest.mark.parametrize("path", DERIVATIONS, ids=lambda p: p.stem)
def test_a_derivation_module_defines_no_machinery(path):
    # Custom SymPy classes, domains and check kinds are engine building blocks.
    tree = ast.parse(path.read_text())
    classes = [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    assert classes == [], f"{path.name} defines classes {classes}"
    hooks = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)} & HOOKS
    assert not hooks, f"{path.name} defines SymPy hooks {hooks}"


IMPORT_EVERY_MODULE = """
import importlib.util, json, sys
import sympy
import symgen.engine
from symgen.engine import catalogue, change_of_variables, functions

# SymPy's computing functions, and the engine's, raise if a module calls them at import.
HEAVY = {heavy!r}
def forbidden(name):
    def raising(*arguments, **keywords):
        raise RuntimeError(name + " called while importing a derivation module")
    return raising
for name in HEAVY:
    setattr(sympy, name, forbidden(name))
for name in ("pushforward", "jacobian", "log_abs_det_jacobian"):
    setattr(change_of_variables, name, forbidden(name))
    setattr(symgen.engine, name, forbidden(name))
found = catalogue.collect()
print(json.dumps({{
    "derivations": len(found),
    "derived": sorted(name for name, d in found.items()
                      if any(step.recipe is not None for o in d.outputs.values() for step in o.written)
                      and d._derived),
    # lazy_module registers a module in sys.modules before it runs: count the ones that ran.
    "scipy": sorted(m for m in sys.modules if m in ("scipy.stats", "scipy.integrate", "scipy.optimize",
                                                    "scipy.linalg", "scipy.special", "scipy.interpolate")
                    and not isinstance(sys.modules[m], importlib.util._LazyModule)),
    "hypothesis": "hypothesis" in sys.modules,
}}))
"""
HEAVY = ["solve", "dsolve", "integrate", "simplify", "factor", "product", "summation", "limit", "series",
         "nsimplify", "trigsimp", "gammasimp", "solveset", "cancel", "together", "apart", "expand_log",
         "powsimp", "radsimp", "ratsimp", "Poly", "expand"]


def test_importing_the_catalogue_writes_expressions_down_and_nothing_more():
    result = subprocess.run([sys.executable, "-c", IMPORT_EVERY_MODULE.format(heavy=HEAVY)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout)
    assert loaded["derivations"] == len(symgen.derivations())
    assert loaded["derived"] == [], "steps computed at import"
    assert loaded["scipy"] == [] and not loaded["hypothesis"]


# --- the engine ------------------------------------------------------------------------------


def _imports_of(path: Path) -> set[str]:
    """The symgen modules a module imports, at module level or inside functions."""
    package = "symgen.engine" if path.parent == ENGINE else "symgen"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package if node.level == 1 else package.rsplit(".", node.level - 1)[0]
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            # `from symgen.engine import api` names a module; `from .x import name` a name in x.
            for alias in node.names:
                candidate = f"{module}.{alias.name}"
                found.add(candidate if _is_module(candidate) else module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("symgen.") and _is_module(name)
            and name not in ("symgen.engine", "symgen.formulas")}


def _is_module(name: str) -> bool:
    parts = name.split(".")
    return (ROOT.joinpath(*parts).with_suffix(".py").is_file()
            or (ROOT.joinpath(*parts) / "__init__.py").is_file())


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def test_the_engine_has_no_import_cycle():
    modules = [p for p in ENGINE.glob("*.py") if p.name != "__init__.py"] + \
              [p for p in (ROOT / "symgen").glob("*.py") if p.name != "__init__.py"]
    graph = {_module_name(path): _imports_of(path) for path in modules}
    state: dict[str, str] = {}

    def visit(node, trail):
        state[node] = "open"
        for successor in sorted(graph.get(node, ())):
            if state.get(successor) == "open":
                raise AssertionError("import cycle: " + " -> ".join(trail + [node, successor]))
            if successor not in state:
                visit(successor, trail + [node])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


def test_the_command_line_and_the_views_need_no_engine():
    # list and show answer from the index with the standard library alone.
    for module in ("cli", "records", "view"):
        imports = _imports_of(ROOT / "symgen" / f"{module}.py")
        tree = ast.parse((ROOT / "symgen" / f"{module}.py").read_text())
        top_level = {alias.name.split(".")[0] for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
                     for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])}
        assert not top_level & {"sympy", "numpy", "scipy", "hypothesis", "mpmath"}, (module, top_level)
        assert all(not name.startswith("symgen.engine") for name in imports) or module == "cli", (module, imports)


# --- generated code ----------------------------------------------------------------------------

GENERATED = sorted((ROOT / "symgen" / "formulas").glob("*.py"))


@pytest.mark.parametrize("path", GENERATED, ids=lambda p: p.stem)
def test_generated_lines_fit_in_100_characters(path):
    long = [(number, len(line)) for number, line in enumerate(path.read_text().splitlines(), 1) if len(line) > 100]
    assert long == []


@pytest.mark.parametrize("path", [p for p in GENERATED if p.name != "__init__.py"], ids=lambda p: p.stem)
def test_generated_modules_record_what_printed_them(path):
    header = path.read_text().splitlines()[:3]
    digest = records.source_digest(ROOT / "derivations" / path.name)[:16]
    assert f"sha256 {digest}" in header[1]
    assert re.search(r"SymPy \d+\.\d+", header[1])


def test_constants_are_printed_as_derived():
    # kl_normal's accurate branch is taken where the textbook KL is below 0.01; common-
    # subexpression elimination used to move the -1/2 across and print 0.51.
    import sympy as sp

    for name in symgen.derivations():
        found = symgen.derivation(name)
        if found.implementation:
            continue
        text = (ROOT / "symgen" / "formulas" / f"{found.topic}.py").read_text()
        for output in found.outputs.values():
            for relation in output.implementation.atoms(sp.core.relational.Relational):
                for side in relation.args:
                    if side.is_number and side not in (0, 1, -1):
                        assert repr(float(side)) in text, (name, relation)
    assert "numpy.less(_t0, 0.01)" in (ROOT / "symgen" / "formulas" / "gaussian_kl.py").read_text()

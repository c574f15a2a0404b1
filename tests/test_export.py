"""`symgen export`: the generated function for NumPy, PyTorch or JAX as source, which runs as
printed and agrees with symgen's NumPy function."""
from pathlib import Path

import numpy as np
import pytest

import symgen
from symgen.engine.accuracy import accuracy_points
from symgen.engine.export import export
from symgen.engine.runner import formula_values

ROOT = Path(__file__).resolve().parent.parent
SCALAR = [name for name in symgen.derivations()
          if not symgen.derivation(name).is_matrix and not symgen.derivation(name).implementation]
MATRIX = [name for name in symgen.derivations() if symgen.derivation(name).implementation]


def exported(name, backend):
    namespace = {}
    exec(compile(export(symgen.derivation(name), backend), f"<{name} {backend}>", "exec"), namespace)
    return namespace[name]


def points_as_arrays(found, count=40):
    # Half of the points have the near-equal pairs, where only stable forms are accurate.
    points = accuracy_points(found, count, seed=7)
    return {name: np.array([point[name] for point in points]) for name in found.param_names}


def compare(name, backend, convert, back):
    found = symgen.derivation(name)
    arguments = points_as_arrays(found)
    expected = formula_values(found)(arguments)
    result = exported(name, backend)(**{k: convert(v) for k, v in arguments.items()})
    results = result if isinstance(result, tuple) else (result,)
    for output, value in zip(found.outputs, results):
        np.testing.assert_allclose(back(value), expected[output], rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", SCALAR)
def test_numpy_export_matches(name):
    compare(name, "numpy", lambda v: v, np.asarray)


@pytest.mark.parametrize("name", SCALAR)
def test_torch_export_matches(name):
    torch = pytest.importorskip("torch")
    compare(name, "torch", lambda v: torch.tensor(v, dtype=torch.float64), lambda t: t.numpy())


@pytest.mark.parametrize("name", SCALAR)
def test_jax_export_matches(name):
    jax = pytest.importorskip("jax", reason="JAX is an optional extra (pip install 'symgen[jax]')")
    jax.config.update("jax_enable_x64", True)
    compare(name, "jax", jax.numpy.asarray, np.asarray)


@pytest.mark.parametrize("name", MATRIX)
def test_matrix_functions_export_as_calls_of_their_implementation(name):
    source = export(symgen.derivation(name), "torch")
    assert f"array_linalg.{name}(" in source and "backend=backend" in source


def test_an_export_is_the_generated_function():
    source = export(symgen.derivation("kl_normal"), "torch")
    generated = (ROOT / "symgen" / "torch" / "gaussian_kl.py").read_text()
    body = source.split("def kl_normal(", 1)[1]
    assert body in generated


def test_an_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="backend must be one of"):
        export(symgen.derivation("kl_normal"), "tensorflow")

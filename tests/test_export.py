"""`symgen export`: the closed forms as source for NumPy, PyTorch and JAX agree with symgen."""
import numpy as np
import pytest

import symgen
from symgen.engine.accuracy import accuracy_points
from symgen.engine.export import export
from symgen.engine.runner import formula_values

SCALAR = [name for name in symgen.derivations()
          if not symgen.derivation(name).is_matrix and not symgen.derivation(name).implementation]


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


def test_matrix_formulas_are_not_exported():
    with pytest.raises(ValueError, match="by hand"):
        export(symgen.derivation("kl_mvn"), "torch")

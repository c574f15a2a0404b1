"""Array reuse in the generated code (symgen/engine/reuse.py, symgen/numerics/inplace.py):
an operation writes into an operand only when nothing reads that operand later, and the
values are the plain expression's, bit for bit, for every formula of the catalogue."""

import numpy as np
import pytest

import symgen
from symgen.engine.reuse import reuse_arrays
from symgen.engine.runner import formula_function, generated_function
from symgen.numerics import inplace

# --- the rewrite ------------------------------------------------------------------------


def test_a_temporary_is_written_into_at_its_last_reading_only():
    body = "_t0 = scale**2\n_t1 = 2*_t0\nreturn _t0*(_t1/(_t1 - eta))"
    rewritten = reuse_arrays(body)
    # _t1 - eta comes before the division that reads _t1 again: it must not write into _t1.
    assert "_t1 - eta" in rewritten
    assert "inplace.into_first(numpy.true_divide, _t1, _t1 - eta)" in rewritten
    assert rewritten.endswith("inplace.into_first(numpy.multiply, _t0, "
                              "inplace.into_first(numpy.true_divide, _t1, _t1 - eta))")


def test_arguments_are_never_written_into():
    rewritten = reuse_arrays("return x*y - z/w")
    assert "inplace" not in rewritten  # no temporaries, and NumPy reuses x*y itself


def test_the_nameless_right_operand_of_a_subtraction_is_reused():
    assert reuse_arrays("return 1 - x/y") == "return inplace.into_second(numpy.subtract, 1, x / y)"
    assert reuse_arrays("return numpy.exp(x - y)") == "return inplace.into_only(numpy.exp, x - y)"


@pytest.mark.parametrize("body", [
    # handed to a call that may return the same memory
    "_t0 = x*y\n_t1 = stable.log1pmx(_t0)\nreturn _t0*2 + _t1",
    # read by a lambda that runs later
    "_t0 = x*y\nreturn stable.refine(x > 0, _t0 + 1, lambda x: x*_t0, x)",
    # returned as an output of its own
    "_t0 = x*y\nreturn Result(_t0, _t0*2)",
    "_t0 = x*y\n_t1 = _t0*2\nreturn _t0",
])
def test_a_temporary_that_escapes_is_never_written_into(body):
    assert "into_first(numpy.multiply, _t0" not in reuse_arrays(body)


def test_a_comparison_is_not_written_into_a_float_array():
    rewritten = reuse_arrays("_t0 = x*y\nif validate:\n    require('f', numpy.less(z, _t0), 'm')\nreturn z")
    assert "numpy.less(z, _t0)" in rewritten


def test_squares_keep_numpys_fast_path():
    assert reuse_arrays("_t0 = x - y\nreturn _t0**2") == \
        "_t0 = x - y\nreturn inplace.into_only(numpy.square, _t0)"
    assert reuse_arrays("_t0 = x - y\nreturn _t0**3") == "_t0 = x - y\nreturn _t0 ** 3"


# --- the runtime helpers ----------------------------------------------------------------


def test_the_result_goes_into_the_operand_when_it_fits():
    owned = np.arange(4.0)
    result = inplace.into_first(np.multiply, owned, 2.0)
    assert result is owned and result.tolist() == [0.0, 2.0, 4.0, 6.0]
    owned = np.arange(4.0)
    assert inplace.into_second(np.subtract, 1.0, owned) is owned
    owned = np.arange(4.0)
    assert inplace.into_only(np.exp, owned) is owned


@pytest.mark.parametrize("owned, other", [
    (np.arange(1.0, 4.0), np.ones((2, 3))),             # broadcast to a larger shape
    (np.arange(1.0, 4.0), np.ones(3, dtype=complex)),   # a wider dtype (a complex step)
    (np.arange(1.0, 4.0, dtype=np.float32), np.ones(3)),
    (np.float64(2.0), np.ones(3)),                      # a NumPy scalar
    (2.0, np.ones(3)),
    (np.arange(1, 4), 0.5),                             # integers divided
])
def test_otherwise_a_new_array_holds_the_plain_result(owned, other):
    before = np.array(owned, copy=True)
    for helper in (inplace.into_first, lambda f, a, b: inplace.into_second(f, b, a)):
        for ufunc in (np.add, np.true_divide):
            expected = ufunc(*((owned, other) if helper is inplace.into_first else (other, owned)))
            result = helper(ufunc, owned, other)
            assert result.dtype == expected.dtype and np.array_equal(result, expected)
            assert np.array_equal(owned, before)


# --- every formula: the same values, the arguments untouched ----------------------------

SCALAR_FORMULAS = [name for name in symgen.derivations()
                   if not symgen.derivation(name).is_matrix and not symgen.derivation(name).implementation]


def _as_tuple(value):
    return tuple(value) if isinstance(value, tuple) else (value,)


@pytest.mark.parametrize("name", SCALAR_FORMULAS)
def test_reuse_changes_no_value_and_no_argument(name):
    found = symgen.derivation(name)
    shipped, plain = formula_function(found), generated_function(found, reuse=False)
    rng = np.random.default_rng(20261127)
    points = [found.sample_point(rng) for _ in range(48)]
    columns = {p: np.array([point[p] for point in points], dtype=np.float64) for p in found.param_names}
    half = len(points) // 2
    cases = [
        columns,                                                   # one batch
        {p: v.astype(np.float32) for p, v in columns.items()},     # float32 stays float32
        {p: v[:half].reshape(-1, 1) if i % 2 else v[half:]         # broadcasting
         for i, (p, v) in enumerate(columns.items())},
        {p: float(v[0]) for p, v in columns.items()},              # Python scalars
        {p: v[:1].reshape(()) for p, v in columns.items()},        # 0-d arrays
    ]
    for arguments in cases:
        copies = {p: np.array(v, copy=True) for p, v in arguments.items()}
        with np.errstate(all="ignore"):
            expected = _as_tuple(plain(**arguments, validate=False))
            result = _as_tuple(shipped(**arguments, validate=False))
        for got, want in zip(result, expected):
            assert np.shape(got) == np.shape(want)
            assert np.asarray(got).dtype == np.asarray(want).dtype
            np.testing.assert_array_equal(got, want)
        for p, value in arguments.items():
            np.testing.assert_array_equal(value, copies[p], err_msg=f"{name} wrote into argument {p}")

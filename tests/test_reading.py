"""Reading a candidate (symgen/engine/reading.py): NumPy spellings read as their SymPy
spellings, decimals exactly, one-line errors naming what could not be read, and FID's
sqrtm of a non-symmetric product as the principal square root."""
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp
from scipy import linalg

import symgen
from symgen.engine.evaluate import evaluate
from symgen.engine.functions import SPECIAL_FUNCTIONS
from symgen.engine.matrices import MatrixSqrt
from symgen.engine.reading import read_expression

KL = symgen.derivation("kl_normal")
FRECHET = symgen.derivation("frechet_distance")
KL_MVN = symgen.derivation("kl_mvn")
KL_TAKES = "kl_normal takes loc_p, scale_p, loc_q, scale_q"
FRECHET_TAKES = "frechet_distance takes loc1, cov1, loc2, cov2"
MEAN_TERM = "trace((loc1 - loc2).T*(loc1 - loc2))"


# --- NumPy spellings read as their SymPy spellings ---------------------------------------

SCALAR_SPELLINGS = [
    ("np.exp(loc_p) + numpy.log(scale_p)", "exp(loc_p) + log(scale_p)"),
    ("math.sqrt(scale_q)", "sqrt(scale_q)"),
    ("np.log1p(loc_p) - np.expm1(loc_q)", "log1p(loc_p) - expm1(loc_q)"),
    ("torch.log1p(loc_p) + torch.exp(loc_q)*torch.log(scale_p)", "log1p(loc_p) + exp(loc_q)*log(scale_p)"),
    ("np.square(loc_p - loc_q)", "(loc_p - loc_q)**2"),
    ("np.pi*math.pi + np.e + math.e", "pi**2 + 2*E"),
    ("np.abs(loc_p) + np.tanh(loc_q)", "Abs(loc_p) + tanh(loc_q)"),
    ("np.maximum(loc_p, loc_q) - np.minimum(loc_p, loc_q)", "Max(loc_p, loc_q) - Min(loc_p, loc_q)"),
    ("torch.clamp(loc_p, max=loc_q)", "Min(loc_p, loc_q)"),
    ("np.power(scale_p, 0.5)", "sqrt(scale_p)"),
    ("scipy.special.expit(loc_p) + torch.nn.functional.softplus(loc_q)", "sigmoid(loc_p) + softplus(loc_q)"),
    ("np.logaddexp(loc_p, loc_q)", "logaddexp(loc_p, loc_q)"),
    ("jnp.log(scale_q) + jax.numpy.log(scale_p)", "log(scale_q) + log(scale_p)"),
    ("sp.sqrt(scale_p) + sympy.Rational(1, 3)", "sqrt(scale_p) + 1/3"),
    ("np.log(scale_q/scale_p) + (scale_p**2 + (loc_p - loc_q)**2)/(2*scale_q**2) - 0.5",
     "log(scale_q/scale_p) + (scale_p^2 + (loc_p - loc_q)^2)/(2*scale_q^2) - 1/2"),
]


@pytest.mark.parametrize("numpy_spelling, sympy_spelling", SCALAR_SPELLINGS)
def test_a_numpy_spelling_reads_as_its_sympy_spelling(numpy_spelling, sympy_spelling):
    numpy_read, sympy_read = read_expression(KL, numpy_spelling), read_expression(KL, sympy_spelling)
    assert numpy_read == sympy_read or sp.simplify(numpy_read - sympy_read) == 0


MATRIX_SPELLINGS = [
    ("np.trace(cov1) + np.linalg.det(cov2)", "trace(cov1) + det(cov2)"),
    ("np.linalg.inv(cov1) @ cov2", "inv(cov1)*cov2"),
    ("np.dot(cov1, cov2) + cov1.dot(cov2)", "2*cov1*cov2"),
    ("scipy.linalg.sqrtm(cov1) + linalg.sqrtm(cov2)", "sqrtm(cov1) + sqrtm(cov2)"),
    ("np.transpose(cov1)", "cov1.T"),
    ("(loc1 - loc2).T @ (loc1 - loc2)", MEAN_TERM),
    ("(loc1 - loc2) @ (loc1 - loc2)", MEAN_TERM),           # two vectors, as NumPy's 1-D arrays
    ("np.sum((loc1 - loc2)**2)", MEAN_TERM),
    ("np.linalg.norm(loc1 - loc2)**2", MEAN_TERM),
    ("loc1.T @ cov1 @ loc1", "quad(loc1, cov1)"),
    ("np.trace(cov1 + cov2 - 2*scipy.linalg.sqrtm(cov1 @ cov2)) + (loc1 - loc2).T @ (loc1 - loc2)",
     f"{MEAN_TERM} + trace(cov1 + cov2 - 2*sqrtm(cov1*cov2))"),
]


@pytest.mark.parametrize("numpy_spelling, sympy_spelling", MATRIX_SPELLINGS)
def test_a_numpy_matrix_spelling_reads_as_its_sympy_spelling(numpy_spelling, sympy_spelling):
    assert read_expression(FRECHET, numpy_spelling) == read_expression(FRECHET, sympy_spelling)


def test_the_kl_between_multivariate_normals_in_numpy_syntax():
    numpy_spelling = ("0.5*(np.trace(np.linalg.inv(cov_q) @ cov_p) + (loc_q - loc_p).T @ np.linalg.inv(cov_q) "
                      "@ (loc_q - loc_p) - d + np.log(np.linalg.det(cov_q)/np.linalg.det(cov_p)))")
    sympy_spelling = ("(trace(inv(cov_q)*cov_p) + quad(loc_q - loc_p, inv(cov_q)) - d "
                      "+ log(det(cov_q)/det(cov_p)))/2")
    assert read_expression(KL_MVN, numpy_spelling) == read_expression(KL_MVN, sympy_spelling)


def test_sympy_syntax_reads_as_before():
    loc_p = KL.symbols()["loc_p"]
    assert read_expression(KL, "loc_p^2") == loc_p**2                 # ^ is a power, as in sympify
    assert read_expression(KL, "log1pmx(loc_p)") == SPECIAL_FUNCTIONS["log1pmx"](loc_p)
    loc1, cov1 = FRECHET.symbols()["loc1"], FRECHET.symbols()["cov1"]
    assert read_expression(FRECHET, "quad(loc1, cov1)") == sp.Trace(loc1.T * cov1 * loc1)


def test_a_sympy_expression_is_returned_after_the_check_of_its_names():
    expression = sp.exp(KL.symbols()["loc_p"])
    assert read_expression(KL, expression) is expression
    with pytest.raises(ValueError, match="x"):
        read_expression(KL, expression + sp.Symbol("x"))


def test_every_declared_slip_is_read():
    for name in symgen.derivations():
        found = symgen.derivation(name)
        for slip, _, _ in found.slips:
            assert isinstance(read_expression(found, slip), sp.Basic), (name, slip)


# --- numbers as written ------------------------------------------------------------------


@pytest.mark.parametrize("text, exact", [
    ("0.008", sp.Rational(1, 125)), ("1e-5", sp.Rational(1, 100000)), ("2.5e3", sp.Integer(2500)),
    ("1/2", sp.Rational(1, 2)), ("np.sqrt(2.0)", sp.sqrt(2)), ("0.1 + 0.2", sp.Rational(3, 10)),
])
def test_decimals_are_read_exactly(text, exact):
    assert read_expression(KL, text) == exact


def test_a_power_one_half_is_a_square_root():
    assert read_expression(KL, "scale_p**0.5") == sp.sqrt(KL.symbols()["scale_p"])


# --- what cannot be read -----------------------------------------------------------------


@pytest.mark.parametrize("text, named", [
    ("np.foo(loc_p)", "np.foo"), ("torch.bar(loc_p) + 1", "torch.bar"), ("np.linalg.slogdet(loc_p)", "np.linalg.slogdet"),
    ("np.where(loc_p > 0, loc_p, 0)", "np.where"), ("foo(loc_p)", "foo()"), ("loc_p + zz", "zz"),
    ("loc_p.T", ".T"), ("np.exp", "np.exp"), ("(loc_p + 1", "unbalanced brackets"), ("loc_p +* 2", "invalid syntax"),
    ("loc_p(2)", "not callable"), ("", "invalid syntax"), ("loc_p\n+ np.foo(1)", "np.foo"),
])
def test_what_cannot_be_read_is_named_in_one_line(text, named):
    with pytest.raises(Exception) as raised:
        read_expression(KL, text)
    assert type(raised.value) is ValueError
    message = str(raised.value)
    assert "\n" not in message
    assert named in message and KL_TAKES in message


@pytest.mark.parametrize("text, named", [
    ("trace(cov1) + loc1.T*loc1", "quad(v, A)"), ("np.sum(cov1**2)", "np.sum"), ("sqrtm(cov3)", "cov3"),
    ("scipy.linalg.logm(cov1)", "scipy.linalg.logm"),
])
def test_what_a_matrix_derivation_cannot_read_is_named_in_one_line(text, named):
    with pytest.raises(Exception) as raised:
        read_expression(FRECHET, text)
    assert type(raised.value) is ValueError
    message = str(raised.value)
    assert "\n" not in message and named in message and FRECHET_TAKES in message


def test_a_candidate_of_another_type_is_a_value_error():
    with pytest.raises(ValueError, match=KL_TAKES):
        read_expression(KL, ["loc_p"])


# --- FID's sqrtm of a non-symmetric product ----------------------------------------------


def random_spd(rng, d):
    factor = rng.standard_normal((d, d))
    return factor @ factor.T + 0.1 * np.eye(d)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("text", [
    f"{MEAN_TERM} + trace(cov1 + cov2 - 2*sqrtm(cov1*cov2))",
    "np.trace(cov1 + cov2 - 2*scipy.linalg.sqrtm(cov1 @ cov2)) + (loc1-loc2).T @ (loc1-loc2)",
])
def test_fid_through_the_square_root_of_the_product_is_the_distance(text, seed):
    rng = np.random.default_rng(seed)
    point = dict(loc1=rng.standard_normal(3), cov1=random_spd(rng, 3), loc2=rng.standard_normal(3),
                 cov2=random_spd(rng, 3))
    value = float(evaluate(FRECHET, read_expression(FRECHET, text), point, digits=50))
    difference = point["loc1"] - point["loc2"]
    cov1, cov2 = point["cov1"], point["cov2"]
    by_scipy = difference @ difference + np.trace(cov1 + cov2 - 2 * np.real(linalg.sqrtm(cov1 @ cov2)))
    assert value == pytest.approx(by_scipy, rel=1e-9)
    assert value == pytest.approx(float(symgen.frechet_distance(**point)), rel=1e-9)


@pytest.mark.parametrize("entries", [
    [[2, 1], [sp.Rational(1, 2), 3]],          # real eigenvalues
    [[1, -2], [2, 1]],                           # complex ones: the principal root is still real
    [[sp.Float("0.3", 50), 1], [0, sp.Float("0.7", 50)]],
    [[1, 1], [0, 1]],                            # not diagonalizable
])
def test_the_square_root_of_a_non_symmetric_matrix_squares_to_it(entries):
    matrix = sp.ImmutableMatrix(entries)
    root = MatrixSqrt(matrix).doit()
    assert all(entry.is_real for entry in root)
    assert max(abs(entry) for entry in root * root - matrix) < 1e-40


def test_a_symmetric_matrix_has_its_symmetric_square_root():
    matrix = sp.ImmutableMatrix([[4, 1], [1, 3]])
    root = MatrixSqrt(matrix).doit()
    assert max(abs(entry) for entry in root - root.T) < 1e-45
    assert max(abs(entry) for entry in root * root - matrix) < 1e-40


def test_a_matrix_without_a_square_root_has_no_value():
    assert all(entry is sp.nan for entry in MatrixSqrt(sp.ImmutableMatrix([[0, 1], [0, 0]])).doit())


def test_importing_symgen_does_not_read_anything():
    code = "import sys, symgen; assert 'symgen.engine.reading' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)

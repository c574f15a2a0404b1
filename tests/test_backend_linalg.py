"""The torch and JAX matrix formulas (symgen/numerics/array_linalg.py) against the NumPy ones.

1. Values: float64 within 1e-12 (relative) of the NumPy functions, which are themselves tested
   against 50-digit mpmath, at generic, batched and broadcast, nearly equal and equal inputs,
   and for frechet_distance at singular (positive semi-definite) covariances; score_mvn also
   against mpmath where NumPy's own refinement is the less accurate one.
2. Conversion: float32 stays float32; Python lists and numbers, NumPy arrays and tensors mix.
3. Gradients: torch.autograd.gradcheck and JAX's check_grads (central differences) at generic
   points, equal means and equal covariances (also S = I, where eigenvector gradients would
   be infinite), near-equal ones; finite at singular covariances, and right along covariances
   of the same rank (sample covariances of n < d points).
4. Validation: the ValueError messages are NumPy's, word for word; validate=False skips.
5. torch.compile (aot_eager; inductor for score_mvn's error-free arithmetic) and jax.jit.
"""
from __future__ import annotations

import math
import os
import shutil

import mpmath
import numpy as np
import pytest
import torch

from symgen.numerics import array_linalg
from symgen.numerics import frechet as np_frechet_module
from symgen.numerics import gaussian as np_gaussian_module
from symgen.numerics import backends
from symgen.numerics.backends import TORCH
from symgen.numerics.frechet import frechet_distance as np_frechet
from symgen.numerics.gaussian import kl_mvn as np_kl
from symgen.numerics.scores import score_mvn as np_score

RTOL = 1e-12
FUNCTIONS = ("kl_mvn", "score_mvn", "frechet_distance")
NUMPY = {"kl_mvn": np_kl, "score_mvn": np_score, "frechet_distance": np_frechet}
LIBRARIES = ("torch", "jax")


# --- the two libraries ------------------------------------------------------------------------


class Library:
    def __init__(self, name):
        self.name = name
        if name == "torch":
            self.backend = TORCH
        else:
            jax = pytest.importorskip("jax", reason="JAX is an optional extra: pip install 'symgen[jax]'")
            jax.config.update("jax_enable_x64", True)
            import jax.numpy as jnp

            self.jax, self.jnp, self.backend = jax, jnp, backends.JAX

    def array(self, values, dtype=np.float64, requires_grad=False):
        values = np.asarray(values, dtype=dtype)
        if self.name == "torch":
            return torch.tensor(values, requires_grad=requires_grad)
        return self.jnp.asarray(values)

    def numpy(self, array):
        return self.backend.to_numpy(array)

    def call(self, name, *arguments, **options):
        return getattr(array_linalg, name)(*arguments, backend=self.backend, **options)

    def values(self, name, *arguments, **options):
        """The function at NumPy float64 arguments (converted), as a NumPy array."""
        return self.numpy(self.call(name, *(self.array(a) for a in arguments), **options))


@pytest.fixture(params=LIBRARIES)
def lib(request):
    return Library(request.param)


def relative_error(got, want):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    scale = np.abs(want)
    error = np.abs(got - want)
    # An exact 0 must be exactly 0.
    return float(np.max(np.where(scale > 0, error / np.where(scale > 0, scale, 1), np.where(error > 0, np.inf, 0)),
                        initial=0.0))


# --- inputs -----------------------------------------------------------------------------------


def spd(rng, d, low=-2.0, high=2.0):
    """Q diag(10^e) Q^T, e uniform in [low, high], exactly symmetric."""
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    q = q * np.sign(np.diag(r))
    cov = (q * 10.0 ** rng.uniform(low, high, d)) @ q.T
    return 0.5 * (cov + cov.T)


def generic_pair(seed, d):
    rng = np.random.default_rng(seed)
    scale = 10.0 ** rng.uniform(-3, 3)
    return (10 * rng.standard_normal(d), scale * spd(rng, d), 10 * rng.standard_normal(d), scale * spd(rng, d))


def near_equal_pair(seed, d):
    """cov_q = cov_p (1 + 1e-9) or cov_p + 1e-9 x (small SPD); locations 1e-10 apart."""
    rng = np.random.default_rng(seed)
    cov_p = 10.0 ** rng.uniform(-3, 3) * spd(rng, d)
    if seed % 2:
        cov_q = cov_p * (1 + 1e-9)
    else:
        cov_q = cov_p + 1e-9 * spd(rng, d, -1.0, 0.0) * np.max(np.abs(cov_p))
    loc_p = 10 * rng.standard_normal(d)
    return loc_p, cov_p, loc_p + 1e-10 * rng.uniform(-1, 1, d), cov_q


def moderately_close_pair(seed, d):
    """Relative differences 1e-6 .. 1: both sides of the switch between routes."""
    rng = np.random.default_rng(seed)
    cov_p = 10.0 ** rng.uniform(-3, 3) * spd(rng, d)
    closeness = 10.0 ** rng.uniform(-6, 0)
    cov_q = cov_p + closeness * spd(rng, d, -1.0, 0.0) * np.max(np.abs(cov_p))
    loc_p = rng.standard_normal(d)
    return loc_p, cov_p, loc_p + closeness * rng.uniform(-1, 1, d), cov_q


PAIRS = {"generic": generic_pair, "near-equal": near_equal_pair, "moderately close": moderately_close_pair}
SEEDS = range(12)
# d = 1 + seed % 4: JAX compiles every operation anew for each shape in eager mode (~2 s a
# shape per function), so the dimensions are few; the NumPy functions' own tests go to d = 6.
DIMENSIONS = 4


def naive_kl(loc_p, cov_p, loc_q, cov_q):
    inverse = np.linalg.inv(cov_q)
    diff = loc_q - loc_p
    return 0.5 * (np.trace(inverse @ cov_p) + diff @ inverse @ diff - len(loc_p)
                  + np.linalg.slogdet(cov_q)[1] - np.linalg.slogdet(cov_p)[1])


# --- 1. values --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(PAIRS))
@pytest.mark.parametrize("name", ["kl_mvn", "frechet_distance"])
def test_pairs_agree_with_numpy(lib, name, kind):
    worst = 0.0
    for seed in SEEDS:
        args = PAIRS[kind](seed, 1 + seed % DIMENSIONS)
        want = NUMPY[name](*args)
        got = lib.values(name, *args)
        assert got.shape == () and got.dtype == np.float64
        worst = max(worst, relative_error(got, want))
    assert worst <= RTOL, worst


def test_the_near_equal_points_are_hard():
    # Where the textbook formula (and the direct route) cancel: the accurate route is needed.
    failures = [relative_error(naive_kl(*near_equal_pair(seed, 4)), np_kl(*near_equal_pair(seed, 4)))
                for seed in SEEDS]
    assert min(failures) > 1e-6


@pytest.mark.parametrize("name", ["kl_mvn", "frechet_distance"])
def test_a_batch_mixing_routes_agrees_with_numpy(lib, name):
    # Entries that cancel (near-equal covariances, equal means: the covariance term is the
    # value) and entries that do not, in one call: both routes, picked per entry.
    d = 3
    entries = [generic_pair(1, d), near_equal_pair(2, d), near_equal_pair(3, d), moderately_close_pair(4, d),
               generic_pair(5, d)]
    loc_p, cov_p, loc_q, cov_q = (np.stack([entry[i] for entry in entries]) for i in range(4))
    loc_q[1:3] = loc_p[1:3]
    cov_p[3] = cov_q[3]                   # and an entry with equal covariances
    arguments = (loc_p[:, None, :], cov_p[:, None], loc_q[:, None, :], cov_q[:, None])   # batch (5, 1)
    want = NUMPY[name](*arguments)
    got = lib.values(name, *arguments)
    assert got.shape == (5, 1)
    assert relative_error(got, want) <= RTOL


@pytest.mark.parametrize("name", ["kl_mvn", "frechet_distance"])
def test_broadcast_batch_dimensions(lib, name):
    rng = np.random.default_rng(11)
    d = 2
    loc_p = rng.standard_normal((4, 1, d))
    cov_p = spd(rng, d)
    loc_q = rng.standard_normal((3, d))
    cov_q = np.stack([spd(rng, d) for _ in range(3)])
    want = NUMPY[name](loc_p, cov_p, loc_q, cov_q)
    got = lib.values(name, loc_p, cov_p, loc_q, cov_q)
    assert got.shape == (4, 3)
    assert relative_error(got, want) <= RTOL


@pytest.mark.parametrize("name", ["kl_mvn", "frechet_distance"])
def test_equal_distributions_give_exactly_zero(lib, name):
    for seed in SEEDS:
        loc, cov, _, _ = generic_pair(seed, 1 + seed % DIMENSIONS)
        assert lib.values(name, loc, cov, loc, cov) == 0.0
    eye = np.eye(3)
    assert lib.values(name, np.zeros(3), eye, np.zeros(3), eye) == 0.0


@pytest.mark.parametrize("d", [1, 3, 8])
def test_score_agrees_with_numpy(lib, d):
    worst = 0.0
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        cov = 10.0 ** rng.uniform(-3, 3) * spd(rng, d)      # condition number up to 1e4
        x, loc = 10 * rng.standard_normal((5, d)), rng.standard_normal(d)
        got = lib.values("score_mvn", x, loc, cov)
        assert got.shape == (5, d)
        worst = max(worst, relative_error(got, np_score(x, loc, cov)))
    assert worst <= RTOL, worst


def test_score_broadcasts(lib):
    rng = np.random.default_rng(3)
    x, loc = rng.standard_normal((4, 1, 2)), rng.standard_normal((3, 2))
    cov = np.stack([spd(rng, 2) for _ in range(3)])
    got = lib.values("score_mvn", x, loc, cov)
    assert got.shape == (4, 3, 2)
    assert relative_error(got, np_score(x, loc, cov)) <= RTOL


def ill_conditioned_score(rng, condition, d=6):
    """x, loc, cov (condition number ``condition``) and the 60-digit score -cov^-1 (x - loc)."""
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    cov = (q * np.geomspace(1, 1 / condition, d)) @ q.T
    cov = 0.5 * (cov + cov.T)
    x = 10 * rng.standard_normal(d)
    loc = x + 1e-3 * rng.standard_normal(d)
    with mpmath.workdps(60):
        exact = mpmath.lu_solve(mpmath.matrix(cov.tolist()), mpmath.matrix(x.tolist()) - mpmath.matrix(loc.tolist()))
    return x, loc, cov, -np.array([float(v) for v in exact])


@pytest.mark.parametrize("condition", [1e8, 1e12])
def test_score_is_accurate_where_the_plain_solve_is_not(lib, condition):
    # The residual of the refinement is formed error-free (TwoSum and Ozaki's splitting): the
    # error no longer grows with cond(Sigma). Against 60-digit mpmath; NumPy's long double
    # residual (11 more bits) is the less accurate one here, so NumPy is not the reference.
    x, loc, cov, want = ill_conditioned_score(np.random.default_rng(int(math.log10(condition))), condition)
    scale = np.max(np.abs(want))
    plain = -np.linalg.solve(cov, x - loc)
    eps = np.finfo(np.float64).eps
    assert np.max(np.abs(plain - want)) / scale > 1e4 * eps
    # One refinement step with an exact residual: a few ulps plus (cond eps)^2.
    got = lib.values("score_mvn", x, loc, cov)
    assert np.max(np.abs(got - want)) / scale <= 8 * eps + 10 * (condition * eps) ** 2
    assert np.max(np.abs(got - want)) <= np.max(np.abs(np_score(x, loc, cov) - want))


HADAMARD = np.array([[1.0]])
for _ in range(3):
    HADAMARD = np.block([[HADAMARD, HADAMARD], [HADAMARD, -HADAMARD]])       # 8 x 8


def hadamard_pair(eigenvalues1, eigenvalues2):
    """Exactly representable covariances with known eigenvectors: the distance is
    sum (sqrt(a) - sqrt(b))^2 over the eigenvalue pairs."""
    cov1 = HADAMARD @ np.diag(eigenvalues1) @ HADAMARD.T / 8
    cov2 = HADAMARD @ np.diag(eigenvalues2) @ HADAMARD.T / 8
    with mpmath.workdps(40):
        exact = float(mpmath.fsum((mpmath.sqrt(a) - mpmath.sqrt(b)) ** 2 for a, b in zip(eigenvalues1, eigenvalues2)))
    return cov1, cov2, exact


def zero_sum_points(rng, n, d):
    points = rng.integers(-3, 4, (n, d)).astype(np.float64)
    points[-1] = -points[:-1].sum(axis=0)
    return points


SINGULAR = {
    "hadamard, rank 5 and 6": lambda: hadamard_pair([0, 0, 0, 1, 2, 4, 8, 16], [0, 0, 3, 1, 5, 4, 7, 20]),
    "hadamard, nonzero eigenvalues moved by 2^-20":
        lambda: hadamard_pair([0, 0, 0, 1, 2, 4, 8, 16], [0, 0, 0, 1 + 2**-20, 2, 4 - 2**-20, 8, 16]),
    "hadamard, null space filled by 2^-30":
        lambda: hadamard_pair([0, 0, 0, 1, 2, 4, 8, 16], [2**-30, 0, 2**-30, 1, 2, 4, 8, 16]),
}


@pytest.mark.parametrize("case", list(SINGULAR))
def test_frechet_singular_exact_inputs(lib, case):
    cov1, cov2, exact = SINGULAR[case]()
    zero = np.zeros(8)
    got = float(lib.values("frechet_distance", zero, cov1, zero, cov2))
    assert abs(got - exact) <= 1e-13 * exact
    assert relative_error(got, np_frechet(zero, cov1, zero, cov2)) <= RTOL


@pytest.mark.parametrize("sizes", [(4, 4), (2, 7), (7, 7), (4, 16)])
def test_frechet_singular_scatter_matrices(lib, sizes):
    # X^T X of integer points with zero column sums: exact, of rank n - 1 for n <= d.
    rng = np.random.default_rng(sum(sizes))
    d = 8
    points1, points2 = zero_sum_points(rng, sizes[0], d), zero_sum_points(rng, sizes[1], d)
    cov1, cov2 = points1.T @ points1, points2.T @ points2
    zero = np.zeros(d)
    assert relative_error(lib.values("frechet_distance", zero, cov1, zero, cov2),
                          np_frechet(zero, cov1, zero, cov2)) <= RTOL
    # The value at equal singular covariances is exactly 0 too.
    assert lib.values("frechet_distance", zero, cov1, zero, cov1) == 0.0


def test_frechet_rounded_sample_covariances(lib):
    # np.cov of n < d points: singular in exact arithmetic, rounded. Within NumPy's own
    # (Hoelder) accuracy limit of each other: sqrt(d eps) of the value at worst; measured ~1e-15.
    rng = np.random.default_rng(8)
    d = 8
    features = [rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) for n in (3, 5, 40)]
    covs = [np.cov(f, rowvar=False) for f in features]
    zero = np.zeros(d)
    for cov1, cov2 in ((covs[0], covs[1]), (covs[0], covs[2]), (covs[1], covs[2])):
        assert relative_error(lib.values("frechet_distance", zero, cov1, zero, cov2),
                              np_frechet(zero, cov1, zero, cov2)) <= 1e-12


# --- 2. conversion ----------------------------------------------------------------------------


def _arguments(name, seed=0, d=3):
    loc_p, cov_p, loc_q, cov_q = generic_pair(seed, d)
    if name == "score_mvn":
        return loc_q, loc_p, cov_p
    return loc_p, cov_p, loc_q, cov_q


@pytest.mark.parametrize("name", FUNCTIONS)
def test_float32_in_float32_out(lib, name):
    arguments = _arguments(name, seed=2)
    result = lib.call(name, *(lib.array(a, dtype=np.float32) for a in arguments))
    assert str(result.dtype).endswith("float32")
    want = NUMPY[name](*(np.asarray(a, dtype=np.float32).astype(np.float64) for a in arguments))
    assert relative_error(lib.numpy(result), want) <= 1e-3


@pytest.mark.parametrize("name", FUNCTIONS)
def test_lists_numpy_arrays_and_tensors_mix(lib, name):
    arguments = _arguments(name, seed=4, d=2)
    mixed = [lib.array(arguments[0]), arguments[1].tolist()] + [np.asarray(a) for a in arguments[2:]]
    result = lib.call(name, *mixed)
    assert str(result.dtype).endswith("float64")
    if lib.name == "torch":
        assert isinstance(result, torch.Tensor) and result.device == mixed[0].device
    assert relative_error(lib.numpy(result), NUMPY[name](*arguments)) <= RTOL


@pytest.mark.parametrize("name", FUNCTIONS)
def test_integer_lists_alone_are_float64(lib, name):
    # Python numbers alone are float64 in torch as in NumPy (symgen/numerics/backends.py).
    integers = {"kl_mvn": ([0, 1], [[2, 1], [1, 2]], [1, -1], [[3, 0], [0, 1]]),
                "score_mvn": ([1, 2], [0, 1], [[2, 1], [1, 2]]),
                "frechet_distance": ([0, 1], [[2, 1], [1, 2]], [1, -1], [[3, 0], [0, 1]])}[name]
    result = lib.call(name, *integers)
    assert result.dtype == (torch.float64 if lib.name == "torch" else lib.jnp.float64)
    want = NUMPY[name](*integers)
    tolerance = 10 * float(np.finfo(lib.numpy(result).dtype).eps)
    assert relative_error(lib.numpy(result), want) <= tolerance


def test_python_scalar_locations_broadcast_only_as_numpy_allows(lib):
    # A 0-d location is not (..., d): NumPy's message, not a silent broadcast.
    cov = np.eye(2)
    with pytest.raises(ValueError) as numpy_error:
        np_kl(0.0, cov, [0.0, 0.0], cov)
    with pytest.raises(ValueError) as ours:
        lib.call("kl_mvn", 0.0, lib.array(cov), [0.0, 0.0], cov)
    assert str(ours.value) == str(numpy_error.value)


# --- 3. gradients -----------------------------------------------------------------------------

D = 3


def _parameters(seed, equal_covariances=False, equal_means=False, near=False):
    """Unconstrained parameters: covariances A A^T + I/2 (symmetric positive definite)."""
    rng = np.random.default_rng(seed)
    a1, a2 = rng.standard_normal((D, D)), rng.standard_normal((D, D))
    m1, m2 = rng.standard_normal(D), rng.standard_normal(D)
    if equal_covariances:
        a2 = a1.copy()
    if near:
        a2 = a1 + 1e-7 * rng.standard_normal((D, D))
    if equal_means:
        m2 = m1.copy()
    return a1, a2, m1, m2


POINTS = {
    "generic": {},
    "equal covariances": {"equal_covariances": True},
    "equal means": {"equal_means": True},
    "equal distributions": {"equal_covariances": True, "equal_means": True},
    "near-equal covariances": {"near": True},
}


def _torch_objective(name):
    def objective(a1, a2, m1, m2):
        eye = 0.5 * torch.eye(D, dtype=a1.dtype)
        cov1, cov2 = a1 @ a1.T + eye, a2 @ a2.T + eye
        if name == "score_mvn":      # one covariance: the pair's mean
            return array_linalg.score_mvn(m1, m2, 0.5 * (cov1 + cov2), backend=TORCH)
        return getattr(array_linalg, name)(m1, cov1, m2, cov2, backend=TORCH)

    return objective


def _jax_objective(lib, name):
    jnp = lib.jnp

    def objective(a1, a2, m1, m2):
        eye = 0.5 * jnp.eye(D)
        cov1, cov2 = a1 @ a1.T + eye, a2 @ a2.T + eye
        if name == "score_mvn":
            return jnp.sum(array_linalg.score_mvn(m1, m2, 0.5 * (cov1 + cov2), backend=backends.JAX) * jnp.arange(1.0, D + 1))
        return getattr(array_linalg, name)(m1, cov1, m2, cov2, backend=backends.JAX)

    return objective


@pytest.mark.parametrize("point", list(POINTS))
@pytest.mark.parametrize("name", FUNCTIONS)
def test_torch_gradients_match_central_differences(name, point):
    inputs = tuple(torch.tensor(v, requires_grad=True) for v in _parameters(7, **POINTS[point]))
    objective = _torch_objective(name)
    assert torch.autograd.gradcheck(objective, inputs, eps=1e-6, atol=1e-7, rtol=1e-6)
    gradients = torch.autograd.grad(objective(*inputs).sum(), inputs)
    assert all(torch.isfinite(g).all() for g in gradients)


@pytest.mark.parametrize("point", list(POINTS))
@pytest.mark.parametrize("name", FUNCTIONS)
def test_jax_gradients_match_central_differences_and_torch(name, point):
    lib = Library("jax")
    from jax.test_util import check_grads

    parameters = _parameters(7, **POINTS[point])
    arrays = tuple(lib.jnp.asarray(v) for v in parameters)
    objective = _jax_objective(lib, name)
    check_grads(objective, arrays, order=1, modes=("rev",), eps=1e-6, atol=1e-7, rtol=1e-6)
    gradients = lib.jax.grad(objective, argnums=(0, 1, 2, 3))(*arrays)
    assert all(np.isfinite(np.asarray(g)).all() for g in gradients)
    # The same formulas in torch: the same gradients, to rounding.
    inputs = tuple(torch.tensor(v, requires_grad=True) for v in parameters)
    torch_value = _torch_objective(name)(*inputs)
    if name == "score_mvn":
        torch_value = (torch_value * torch.arange(1.0, D + 1, dtype=torch.float64)).sum()
    for g, h in zip(gradients, torch.autograd.grad(torch_value, inputs)):
        np.testing.assert_allclose(np.asarray(g), h.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ["kl_mvn", "frechet_distance"])
def test_gradients_at_identity_covariances_are_zero(lib, name):
    # S1 = S2 = I: every eigenvalue repeated, where eigenvector gradients are 1/0.
    eye = np.eye(3)
    zero = np.zeros(3)
    if lib.name == "torch":
        inputs = [torch.tensor(a, requires_grad=True) for a in (zero, eye, zero, eye)]
        value = lib.call(name, *inputs)
        gradients = [g.numpy() for g in torch.autograd.grad(value, inputs)]
    else:
        gradients = lib.jax.grad(lambda *a: lib.call(name, *a), argnums=(0, 1, 2, 3))(
            *(lib.jnp.asarray(a) for a in (zero, eye, zero, eye)))
    for gradient in gradients:
        assert np.all(np.isfinite(np.asarray(gradient)))
        assert np.max(np.abs(np.asarray(gradient))) <= 1e-14


def _sample_covariance(features):
    centred = features - features.mean(0, keepdims=True)
    return centred.T @ centred / (features.shape[0] - 1)


@pytest.mark.parametrize("partner", ["positive definite", "singular"])
def test_frechet_gradient_through_singular_sample_covariances(partner):
    # A sample covariance of n < d points is singular; the distance is differentiable along
    # covariances of that rank, which is how it moves with the points: the gradient with
    # respect to the points agrees with central differences of the (accurate) value.
    rng = np.random.default_rng(21)
    d, n = 6, 3
    points = torch.tensor(rng.standard_normal((n, d)), requires_grad=True)
    a = rng.standard_normal((d, d))
    other = torch.tensor(a @ a.T + np.eye(d)) if partner == "positive definite" else \
        _sample_covariance(torch.tensor(rng.standard_normal((n + 1, d))))
    zero = torch.zeros(d, dtype=torch.float64)

    def distance(p):
        return array_linalg.frechet_distance(zero, _sample_covariance(p), zero, other, backend=TORCH)

    gradient, = torch.autograd.grad(distance(points), points)
    assert torch.isfinite(gradient).all()
    step = 1e-6
    numeric = np.zeros((n, d))
    for i in range(n):
        for j in range(d):
            e = torch.zeros(n, d, dtype=torch.float64)
            e[i, j] = step
            numeric[i, j] = (float(distance(points.detach() + e)) - float(distance(points.detach() - e))) / (2 * step)
    np.testing.assert_allclose(gradient.numpy(), numeric, atol=1e-7 * np.abs(numeric).max())


def test_frechet_gradients_are_finite_at_singular_covariances(lib):
    cov1, cov2, _ = SINGULAR["hadamard, rank 5 and 6"]()
    zero = np.zeros(8)
    if lib.name == "torch":
        inputs = [torch.tensor(a, requires_grad=True) for a in (zero, cov1, zero, cov2)]
        gradients = torch.autograd.grad(lib.call("frechet_distance", *inputs), inputs)
    else:
        gradients = lib.jax.grad(lambda *a: lib.call("frechet_distance", *a), argnums=(0, 1, 2, 3))(
            *(lib.jnp.asarray(a) for a in (zero, cov1, zero, cov2)))
    assert all(np.isfinite(np.asarray(g)).all() for g in gradients)
    assert np.max(np.abs(np.asarray(gradients[1]))) > 0.1         # not simply cut off


# --- 4. validation ----------------------------------------------------------------------------


def _bad_inputs():
    eye, loc = np.eye(2), np.zeros(2)
    asymmetric = np.array([[1.0, 0.5], [0.1, 1.0]])
    indefinite = np.array([[1.0, 2.0], [2.0, 1.0]])
    nan_loc = np.array([0.0, np.nan])
    inf_cov = np.array([[1.0, 0.0], [0.0, np.inf]])
    three = np.zeros(3)
    not_square = np.ones((2, 3))
    batch2, batch3 = np.stack([eye, eye]), np.stack([eye, eye, eye])
    return {
        "kl_mvn": {
            "asymmetric": (loc, eye, loc, asymmetric),
            "indefinite": (loc, indefinite, loc, eye),
            "both indefinite": (loc, indefinite, loc, indefinite),
            "nan": (loc, eye, nan_loc, eye),
            "inf": (loc, inf_cov, loc, eye),
            "dimension": (loc, eye, three, eye),
            "not square": (loc, not_square, loc, eye),
            "broadcast": (loc, batch2, loc, batch3),
            "0-d": (0.0, eye, loc, eye),
        },
        "score_mvn": {
            "asymmetric": (loc, loc, asymmetric),
            "indefinite": (loc, loc, indefinite),
            "nan": (nan_loc, loc, eye),
            "inf": (loc, loc, inf_cov),
            "dimension": (three, loc, eye),
            "broadcast": (np.zeros((3, 2)), np.zeros((2, 2)), eye),
        },
        "frechet_distance": {
            "asymmetric": (loc, asymmetric, loc, eye),
            "indefinite": (loc, indefinite, loc, eye),
            "both indefinite": (loc, indefinite, loc, -eye),
            "nan": (nan_loc, eye, loc, eye),
            "inf": (loc, eye, loc, inf_cov),
            "dimension": (loc, eye, loc, np.eye(3)),
            "broadcast": (loc, batch2, loc, batch3),
        },
    }


BAD = [(name, kind) for name, kinds in _bad_inputs().items() for kind in kinds]


def _message(call):
    with pytest.raises(ValueError) as raised:
        call()
    return str(raised.value)


@pytest.mark.parametrize("name, kind", BAD, ids=[f"{name}-{kind}" for name, kind in BAD])
def test_bad_input_raises_the_numpy_message(lib, name, kind):
    arguments = _bad_inputs()[name][kind]
    expected = _message(lambda: NUMPY[name](*arguments))
    assert _message(lambda: lib.call(name, *(lib.array(a) for a in arguments))) == expected
    # Also when the message comes from a check that has to look at values in float32.
    if kind in ("asymmetric", "nan", "indefinite"):
        float32 = [lib.array(a, dtype=np.float32) for a in arguments]
        assert _message(lambda: lib.call(name, *float32)) == _message(
            lambda: NUMPY[name](*(np.asarray(a, dtype=np.float32) for a in arguments)))


def test_torch_tensors_that_require_grad_are_validated():
    loc = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    cov = torch.tensor([[1.0, 0.5], [0.1, 1.0]], dtype=torch.float64, requires_grad=True)
    expected = _message(lambda: np_kl(np.zeros(2), np.eye(2), np.zeros(2), cov.detach().numpy()))
    assert _message(lambda: array_linalg.kl_mvn(loc, torch.eye(2, dtype=torch.float64), loc, cov,
                                                backend=TORCH)) == expected


def test_positive_semidefinite_covariances_are_accepted_by_frechet(lib):
    singular = np.array([[1.0, 1.0], [1.0, 1.0]])
    got = float(lib.values("frechet_distance", np.zeros(2), singular, np.zeros(2), np.eye(2)))
    assert got == pytest.approx(float(np_frechet(np.zeros(2), singular, np.zeros(2), np.eye(2))), rel=1e-14)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_validate_false_skips_the_checks(lib, name, monkeypatch):
    def refuse(*args):
        raise AssertionError("validation ran")

    modules = {"kl_mvn": np_gaussian_module, "frechet_distance": np_frechet_module}
    from symgen.numerics import scores as np_scores_module

    module = modules.get(name, np_scores_module)
    monkeypatch.setattr(module, "_check_arguments", refuse)
    arguments = [lib.array(a) for a in _arguments(name, d=2)]
    with pytest.raises(AssertionError, match="validation ran"):       # the patch is what validates
        lib.call(name, *arguments)
    assert np.all(np.isfinite(lib.numpy(lib.call(name, *arguments, validate=False))))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_validate_false_gives_nan_for_bad_values_and_numpy_values_otherwise(lib, name):
    bad = _bad_inputs()[name]
    # Not finite: NaN, no exception.
    assert np.all(np.isnan(lib.numpy(lib.call(name, *(lib.array(a) for a in bad["nan"]), validate=False))))
    if name == "kl_mvn":
        # Not positive definite: NaN in that entry only (NumPy raises even with validate=False).
        loc, eye = np.zeros((2, 2)), np.eye(2)
        covs = np.stack([eye, bad["indefinite"][1]])
        got = lib.numpy(lib.call(name, lib.array(loc), lib.array(covs), lib.array(loc), lib.array(eye),
                                 validate=False))
        assert got[0] == 0.0 and np.isnan(got[1])
    else:
        # NumPy computes these without validation: the same values.
        kind = "asymmetric" if name == "score_mvn" else "indefinite"
        arguments = bad[kind]
        got = lib.numpy(lib.call(name, *(lib.array(a) for a in arguments), validate=False))
        assert relative_error(got, NUMPY[name](*arguments, validate=False)) <= RTOL


@pytest.mark.parametrize("name", ["kl_mvn", "frechet_distance"])
def test_validate_false_keeps_a_bad_entry_to_itself(lib, name):
    # An entry whose covariance cannot be factored (kl_mvn) or is not finite (frechet_distance)
    # is NaN; the other entry's value, and the gradient of a covariance they share, are not.
    bad = np.array([[1.0, 2.0], [2.0, 1.0]]) if name == "kl_mvn" else np.array([[1.0, np.nan], [np.nan, 1.0]])
    covs, locs, shared = np.stack([2 * np.eye(2), bad]), np.zeros((2, 2)), np.array([[2.0, 0.5], [0.5, 1.0]])
    if lib.name == "torch":
        shared_leaf = torch.tensor(shared, requires_grad=True)
        values = lib.call(name, lib.array(locs), lib.array(covs), lib.array(locs + 1), shared_leaf, validate=False)
        gradient = torch.autograd.grad(values[0], shared_leaf)[0].numpy()
        values = values.detach().numpy()
    else:
        def first(cov):
            return lib.call(name, lib.array(locs), lib.array(covs), lib.array(locs + 1), cov, validate=False)[0]
        values = lib.numpy(lib.call(name, lib.array(locs), lib.array(covs), lib.array(locs + 1), lib.array(shared),
                                    validate=False))
        gradient = np.asarray(lib.jax.grad(first)(lib.array(shared)))
    assert np.isnan(values[1]) and np.isfinite(values[0])
    assert values[0] == pytest.approx(float(NUMPY[name](locs[0], covs[0], locs[0] + 1, shared)), rel=1e-14)
    assert np.all(np.isfinite(gradient)) and np.any(gradient != 0)


def test_a_validation_message_names_the_function_given(lib):
    arguments = _bad_inputs()["kl_mvn"]["asymmetric"]
    message = _message(lambda: lib.call("kl_mvn", *(lib.array(a) for a in arguments), function="my_kl"))
    assert message.startswith("my_kl: argument 'cov_q'")


# --- 5. torch.compile and jax.jit -------------------------------------------------------------


def _mixed_batch(name):
    """A batch of two entries: a generic one and one with near-equal covariances and equal
    means (both routes; for score_mvn, x = loc: exactly 0)."""
    d = 3
    entries = [generic_pair(1, d), near_equal_pair(2, d)]
    loc_p, cov_p, loc_q, cov_q = (np.stack([entry[i] for entry in entries]) for i in range(4))
    loc_q[1] = loc_p[1]
    if name == "score_mvn":
        return loc_q, loc_p, cov_p
    return loc_p, cov_p, loc_q, cov_q


@pytest.mark.slow
@pytest.mark.parametrize("name", FUNCTIONS)
def test_torch_compile_matches_eager(name):
    # backend="aot_eager": traced by dynamo and AOT autograd (the branch-free route: both
    # routes and where) and run by eager kernels, without inductor's C++ code generation.
    torch._dynamo.reset()
    function = getattr(array_linalg, name)
    compiled = torch.compile(lambda *a: function(*a, backend=TORCH), backend="aot_eager", fullgraph=False)
    arguments = _mixed_batch(name)
    inputs = [torch.tensor(a, requires_grad=True) for a in arguments]
    traced = compiled(*inputs)
    eager_inputs = [torch.tensor(a, requires_grad=True) for a in arguments]
    eager = function(*eager_inputs, backend=TORCH)
    assert relative_error(traced.detach().numpy(), NUMPY[name](*arguments)) <= RTOL
    assert relative_error(traced.detach().numpy(), eager.detach().numpy()) <= 1e-14
    for g, h in zip(torch.autograd.grad(traced.sum(), inputs), torch.autograd.grad(eager.sum(), eager_inputs)):
        np.testing.assert_allclose(g.numpy(), h.numpy(), rtol=1e-10, atol=1e-13)
    # Validation is skipped while tracing: a NaN gives NaN in its entry, no ValueError (the
    # same shapes, so no recompilation).
    bad = [torch.tensor(a) for a in arguments]
    bad[0][1, 0] = math.nan
    result = compiled(*bad).detach().numpy()
    assert np.isnan(result[1]).all() and np.isfinite(result[0]).all()
    torch._dynamo.reset()


def _cxx_compiler():
    candidates = [os.environ.get("CXX", ""), "g++", "c++", "clang++"]
    return next((found for found in map(shutil.which, filter(None, candidates)) if found), None)


@pytest.mark.slow
@pytest.mark.skipif(_cxx_compiler() is None, reason="torch.compile's default backend (inductor) needs a C++ compiler")
def test_torch_compile_inductor_keeps_the_error_free_arithmetic():
    # TwoSum and Ozaki's splitting ((x + s) - s) only work if the compiler does not reassociate
    # floating-point sums: inductor's code must keep score_mvn accurate at condition 1e8.
    torch._dynamo.reset()
    compiled = torch.compile(lambda x, loc, cov: array_linalg.score_mvn(x, loc, cov, backend=TORCH))
    x, loc, cov, want = ill_conditioned_score(np.random.default_rng(8), 1e8)
    got = compiled(torch.tensor(x), torch.tensor(loc), torch.tensor(cov)).numpy()
    assert np.max(np.abs(got - want)) / np.max(np.abs(want)) <= 1e-13
    torch._dynamo.reset()


@pytest.mark.parametrize("name", FUNCTIONS)
def test_jax_jit_matches_numpy(name):
    lib = Library("jax")
    function = getattr(array_linalg, name)
    jitted = lib.jax.jit(lambda *a: function(*a, backend=backends.JAX))
    arguments = _mixed_batch(name)
    got = np.asarray(jitted(*(lib.jnp.asarray(a) for a in arguments)))
    assert relative_error(got, NUMPY[name](*arguments)) <= RTOL
    # Validation is skipped while tracing: NaN in, NaN out, no exception.
    assert np.isnan(np.asarray(jitted(*(lib.jnp.asarray(a) for a in _bad_inputs()[name]["nan"])))).all()


@pytest.mark.parametrize("case", list(SINGULAR))
def test_jax_jit_frechet_at_singular_covariances(case):
    # Under tracing every route runs on every entry and the chord refinement takes a fixed
    # number of steps (TRACED_CHORD_STEPS): the same values as eager mode.
    lib = Library("jax")
    cov1, cov2, exact = SINGULAR[case]()
    zero = np.zeros(8)
    arguments = [lib.jnp.asarray(a) for a in (zero, cov1, zero, cov2)]
    jitted = float(lib.jax.jit(lambda *a: array_linalg.frechet_distance(*a, backend=backends.JAX))(*arguments))
    assert abs(jitted - exact) <= 1e-13 * exact
    assert relative_error(jitted, lib.call("frechet_distance", *arguments)) <= 1e-13


@pytest.mark.parametrize("name", FUNCTIONS)
def test_jax_gradients_under_jit(name):
    lib = Library("jax")
    objective = _jax_objective(lib, name)
    for point in ("generic", "equal distributions"):
        arrays = tuple(lib.jnp.asarray(v) for v in _parameters(3, **POINTS[point]))
        eager = lib.jax.grad(objective, argnums=(0, 1, 2, 3))(*arrays)
        jitted = lib.jax.jit(lib.jax.grad(objective, argnums=(0, 1, 2, 3)))(*arrays)
        for g, h in zip(jitted, eager):
            assert np.all(np.isfinite(np.asarray(g)))
            np.testing.assert_allclose(np.asarray(g), np.asarray(h), rtol=1e-9, atol=1e-13)

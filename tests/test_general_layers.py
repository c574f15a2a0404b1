"""General-size flow layers and autoregressive likelihood (symgen/numerics/flow_layers.py,
symgen/numerics/sequences.py) against the catalogue's proved small cases and routes that share
nothing with them.

(a) at d = 2 (L = 2, K = 3) each agrees with its proved small case over hypothesis draws;
(b) the autoregressive pmf sums to 1 over every sequence (prefix-dependent logits) and equals
    the product of softmax probabilities by mpmath, logits of +-700 included;
(c) each flow density integrates to 1 (scipy quadrature, d = 2), its log-determinant is slogdet
    of a complex-step Jacobian (d = 3, 5), and it matches 50-digit mpmath (d = 3);
(d) each of those checks refutes wrong variants (mutants);
(e) errors name the argument; (f) float32 stays float32, batch dimensions broadcast.

The checks are functions of an implementation, so (c) runs them on the real one and (d) on the
mutants. Hypothesis is derandomized on CI; the other random draws use fixed seeds.
"""
import itertools
import math
import zlib
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import integrate

from symgen.formulas import discrete_likelihoods as proved_sequences
from symgen.formulas import flow_layers as proved_flows
from symgen.numerics.flow_layers import (
    affine_coupling_logpdf,
    elementwise_affine_logpdf,
    linear_flow_logpdf,
    planar_flow_logdet,
)
from symgen.numerics.sequences import autoregressive_categorical_logpmf


def proved(module, new_name, old_name):
    """The proved small case: its new name (``..._2d``, ``..._2x3``), or the old one before
    the rename."""
    return getattr(module, new_name, None) or getattr(module, old_name)


# The catalogue's proved small cases, imported here only.
PROVED = {
    "elementwise_affine_logpdf": proved(proved_flows, "elementwise_affine_logpdf_2d", "elementwise_affine_logpdf"),
    "linear_flow_logpdf": proved(proved_flows, "linear_flow_logpdf_2d", "linear_flow_logpdf"),
    "affine_coupling_logpdf": proved(proved_flows, "affine_coupling_logpdf_2d", "affine_coupling_logpdf"),
    "planar_flow_logdet": proved(proved_flows, "planar_flow_logdet_2d", "planar_flow_logdet"),
    "autoregressive_categorical_logpmf": proved(proved_sequences, "autoregressive_categorical_logpmf_2x3",
                                                "autoregressive_categorical_logpmf"),
}

EPS = 2.0**-52
mpf = mpmath.mpf
LOG_2PI = math.log(2 * math.pi)


def seeded(*key):
    """A generator seeded by ``key`` (the same in every process: crc32, not hash)."""
    return np.random.default_rng([zlib.crc32(str(part).encode()) for part in key])


# --- (a) agreement with the proved small cases at d = 2 ------------------------------------------
# The tolerance is 1e-13 relative to the result, or to the size of its terms where they cancel
# (|z|^2/2 + log 2 pi + |log det|): the two codes round differently, and a sum of terms of
# either sign is only as accurate as its largest term.

finite = {"allow_nan": False, "allow_infinity": False}


def nonzero_scale():
    return st.tuples(st.sampled_from([-1.0, 1.0]), st.floats(1e-2, 1e2, **finite)).map(lambda pair: pair[0] * pair[1])


def assert_agree(general, small, size, rtol=1e-13):
    assert abs(float(general) - float(small)) <= rtol * max(abs(float(small)), size), (general, small)


@settings(max_examples=80)
@given(x=st.tuples(st.floats(-10, 10), st.floats(-10, 10)), scale=st.tuples(nonzero_scale(), nonzero_scale()),
       shift=st.tuples(st.floats(-10, 10), st.floats(-10, 10)))
def test_elementwise_affine_matches_the_proved_2d_case(x, scale, shift):
    small = PROVED["elementwise_affine_logpdf"](*x, *scale, *shift)
    general = elementwise_affine_logpdf(np.array(x), np.array(scale), np.array(shift))
    standard = (np.array(x) - shift) / scale
    assert_agree(general, small, standard @ standard / 2 + LOG_2PI + np.abs(np.log(np.abs(scale))).sum())


diagonal = st.tuples(st.sampled_from([-1.0, 1.0]), st.floats(0.5, 4)).map(lambda pair: pair[0] * pair[1])
off_diagonal = st.floats(-0.4, 0.4)


@settings(max_examples=80)
@given(x=st.tuples(st.floats(-8, 8), st.floats(-8, 8)),
       weight=st.tuples(diagonal, off_diagonal, off_diagonal, diagonal),
       shift=st.tuples(st.floats(-3, 3), st.floats(-3, 3)))
def test_linear_flow_matches_the_proved_2d_case(x, weight, shift):
    # The proved case's domain: |det W| >= 0.09, cond(W) below ~200.
    small = PROVED["linear_flow_logpdf"](*x, *weight, *shift)
    matrix = np.array(weight).reshape(2, 2)
    general = linear_flow_logpdf(np.array(x), matrix, np.array(shift))
    latent = np.linalg.solve(matrix, np.subtract(x, shift))
    assert_agree(general, small, latent @ latent / 2 + LOG_2PI + abs(np.linalg.slogdet(matrix)[1]))


@settings(max_examples=80)
@given(x1=st.floats(-4, 4), x2=st.floats(-8, 8), s_weight=st.floats(-1, 1), s_bias=st.floats(-1.5, 1.5),
       t_weight=st.floats(-2, 2), t_bias=st.floats(-3, 3), unused=st.tuples(st.floats(-50, 50), st.floats(-50, 50)))
def test_affine_coupling_matches_the_proved_2d_case(x1, x2, s_weight, s_bias, t_weight, t_bias, unused):
    # The proved case: x1 passed through (mask [1, 0]), s(x1) = s_weight x1 + s_bias and
    # t(x1) = t_weight x1 + t_bias computed from it; the network outputs on the masked
    # coordinate are not used, so they are drawn at random.
    small = PROVED["affine_coupling_logpdf"](x1, x2, s_weight, s_bias, t_weight, t_bias)
    log_scale = np.array([unused[0], s_weight * x1 + s_bias])
    shift = np.array([unused[1], t_weight * x1 + t_bias])
    general = affine_coupling_logpdf(np.array([x1, x2]), np.array([1, 0]), log_scale, shift)
    z2 = (x2 - shift[1]) * math.exp(-log_scale[1])
    assert_agree(general, small, (x1**2 + z2**2) / 2 + LOG_2PI + abs(log_scale[1]))


planar_entry = st.floats(-0.8, 0.8)


@settings(max_examples=80)
@given(z=st.tuples(st.floats(-3, 3), st.floats(-3, 3)), u=st.tuples(planar_entry, planar_entry),
       w=st.tuples(planar_entry, planar_entry), bias=st.floats(-12, 12))
def test_planar_flow_matches_the_proved_2d_case(z, u, w, bias):
    assume(Fraction(u[0]) * Fraction(w[0]) + Fraction(u[1]) * Fraction(w[1]) >= -1)   # exactly: invertible
    small = PROVED["planar_flow_logdet"](*z, *u, *w, bias)
    general = planar_flow_logdet(np.array(z), np.array(u), np.array(w), bias)
    # 1e-13 relative, plus the proved code's rounding of u1 w1 + u2 w2 (a few ulps of
    # |u1 w1| + |u2 w2|) carried into log1p(u^T w sech^2): where u^T w cancels, the general
    # code (compensated dot products) is the accurate one; see
    # test_planar_flow_keeps_digits_where_u_dot_w_cancels_and_at_the_edge. 1e-320 absolute:
    # where the log-det is subnormal (u^T w ~ 1e-315) the codes may differ by a few of its ulps.
    activation = w[0] * z[0] + w[1] * z[1] + bias
    rounding = 4 * EPS * (abs(u[0] * w[0]) + abs(u[1] * w[1])) / math.cosh(activation) ** 2
    assert abs(float(general) - float(small)) <= 1e-13 * abs(float(small)) + rounding + 1e-320


@settings(max_examples=80)
@given(first=st.lists(st.floats(-8, 8), min_size=3, max_size=3),
       table=st.lists(st.lists(st.floats(-8, 8), min_size=3, max_size=3), min_size=3, max_size=3),
       tokens=st.tuples(st.sampled_from([0, 1, 2]), st.sampled_from([0, 1, 2])))
def test_autoregressive_matches_the_proved_2x3_case(first, table, tokens):
    # The proved case's logits: a_k for the first token, b_{jk} for the second given the first
    # is j; the general function gets the rows the network would give: [a, b_{x1}].
    small = PROVED["autoregressive_categorical_logpmf"](float(tokens[0]), float(tokens[1]), *first,
                                                        *itertools.chain(*table))
    general = autoregressive_categorical_logpmf(np.array([first, table[tokens[0]]]), np.array(tokens))
    assert abs(float(general) - float(small)) <= 1e-13 * abs(float(small))


def test_autoregressive_matches_the_proved_case_on_every_sequence_up_to_700():
    # All nine sequences in one batched call, logits up to +-700 (the proved case's extremes).
    rng = seeded("autoregressive 700")
    sequences = np.array(list(itertools.product(range(3), repeat=2)))
    for _ in range(20):
        first, table = rng.uniform(-700, 700, 3), rng.uniform(-700, 700, (3, 3))
        logits = np.stack([np.broadcast_to(first, (9, 3)), table[sequences[:, 0]]], axis=1)
        general = autoregressive_categorical_logpmf(logits, sequences)
        small = PROVED["autoregressive_categorical_logpmf"](*sequences.T.astype(float), *first, *table.ravel())
        tiny = np.abs(small) < 1e-300       # subnormal results: only absolute accuracy exists
        np.testing.assert_allclose(general[~tiny], small[~tiny], rtol=1e-12, atol=0)
        np.testing.assert_allclose(general[tiny], small[tiny], rtol=0, atol=1e-320)


# --- (b) the autoregressive model: enumeration and the chain rule by mpmath -------------------


def prefix_table(rng, length, categories, spread, dominant=False):
    """Logits for every prefix (one row per prefix of length 0 .. L - 1): what a network
    conditioned on the prefix would output. ``dominant`` puts 710 on one random category
    (e^710 overflows float64)."""
    table = {}
    for size in range(length):
        for prefix in itertools.product(range(categories), repeat=size):
            row = rng.uniform(-spread, spread, categories)
            if dominant:
                row[rng.integers(categories)] = 710.0
            table[prefix] = row
    return table


def teacher_forced(table, length, categories):
    """Every sequence, and the logits a causal network would give along it: (K^L, L, K)."""
    sequences = np.array(list(itertools.product(range(categories), repeat=length)), dtype=np.int64)
    sequences = sequences.reshape(categories**length, length)
    logits = np.array([[table[tuple(sequence[:position])] for position in range(length)]
                       for sequence in sequences]).reshape(len(sequences), length, categories)
    return logits, sequences


def chain_rule_by_mpmath(table, sequence):
    """log prod_l softmax(a_l)[x_l] with 50 digits beyond the largest logit gap (so 1 - p of a
    probability within e^-1400 of 1 is resolved): the softmaxes as exp(a)/sum exp."""
    gaps = [max(row) - min(row) for row in table.values()]
    with mpmath.workdps(50 + int(max(gaps) / math.log(10))):
        probability = mpf(1)
        for position, token in enumerate(sequence):
            row = [mpf(float(v)) for v in table[tuple(sequence[:position])]]
            probability *= mpmath.exp(row[token]) / mpmath.fsum(mpmath.exp(v) for v in row)
        return mpmath.log(probability)


SIZES = [(1, 1), (1, 3), (2, 2), (2, 3), (3, 2), (3, 3)]
# Logit spreads: a moderate one, and +-700 with one category per row at 710 (conditional
# log probabilities from about -1e-300 down to -1400).
SPREADS = {"moderate": (4.0, False), "extreme": (700.0, True)}


def check_enumeration(implementation, spread="moderate"):
    """exp(log p) sums to 1 within 1e-12 over all K^L sequences, at every size."""
    for length, categories in SIZES:
        table = prefix_table(seeded("enumeration", spread, length, categories), length, categories,
                             *SPREADS[spread])
        logits, sequences = teacher_forced(table, length, categories)
        with np.errstate(all="ignore"):
            total = math.fsum(np.exp(np.asarray(implementation(logits, sequences), dtype=float)))
        assert abs(total - 1) <= 1e-12, (length, categories, total)


def check_chain_rule(implementation, spread="moderate"):
    """log p of every sequence within 1e-12 relative of the mpmath chain rule (1e-322 absolute
    where the value is subnormal)."""
    for length, categories in SIZES:
        table = prefix_table(seeded("chain rule", spread, length, categories), length, categories,
                             *SPREADS[spread])
        logits, sequences = teacher_forced(table, length, categories)
        with np.errstate(all="ignore"):
            logp = np.asarray(implementation(logits, sequences), dtype=float)
        for value, sequence in zip(logp, sequences):
            reference = chain_rule_by_mpmath(table, tuple(sequence))
            assert abs(mpf(float(value)) - reference) <= 1e-12 * abs(reference) + mpf("1e-322"), (
                sequence, value, reference)


AUTOREGRESSIVE_CHECKS = {
    "enumeration": check_enumeration,
    "chain rule by mpmath": check_chain_rule,
    "enumeration, logits +-700": lambda implementation: check_enumeration(implementation, "extreme"),
    "chain rule by mpmath, logits +-700": lambda implementation: check_chain_rule(implementation, "extreme"),
}


@pytest.mark.parametrize("check", AUTOREGRESSIVE_CHECKS)
def test_autoregressive_passes(check):
    AUTOREGRESSIVE_CHECKS[check](autoregressive_categorical_logpmf)


def test_autoregressive_keeps_a_log_probability_of_minus_1e_304():
    # Each token the likeliest by 700: log p = -2 log1p(e^-700 + e^-1400), about -2e-304,
    # where log-sum-exp gives 700 - log(e^700 + 1 + e^-700) = 0 (and e^710 overflows).
    logits = np.array([[700.0, 0.0, -700.0], [0.0, 700.0, -700.0]])
    value = autoregressive_categorical_logpmf(logits, [0, 1])
    assert value == pytest.approx(-2 * math.exp(-700), rel=1e-14)
    shifted = autoregressive_categorical_logpmf(logits + 710.0, [0, 1])
    assert shifted == pytest.approx(-2 * math.exp(-700), rel=1e-12)
    huge = autoregressive_categorical_logpmf(np.array([[1e300, -1e300]]), [1])
    assert huge == -2e300


# --- (c) flows: integrals, complex-step Jacobians, 50-digit mpmath ----------------------------
# Each layer: parameters drawn for a dimension d, its forward map x = T(z) (complex-safe, for
# the complex step), the implementation called at x, and the mpmath value from the same floats.


def network(d, rng):
    """A coupling network: s(v) = 0.8 tanh(A v + c), t(v) = B v + e, with outputs on every
    coordinate (those on the masked ones are unused, and nonzero, so a wrong mask shows)."""
    return {"A": rng.normal(0, 0.7, (d, d)), "c": rng.normal(0, 0.5, d),
            "B": rng.normal(0, 0.7, (d, d)), "e": rng.normal(0, 1, d)}


def coupling_outputs(params, v):
    return 0.8 * np.tanh(v @ params["A"].T + params["c"]), v @ params["B"].T + params["e"]


def draw(layer, d, rng):
    # Scales and diagonals of alternating sign: every draw flips some axis.
    signs = rng.choice([-1, 1]) * (-1) ** np.arange(d)
    if layer == "elementwise_affine_logpdf":
        return {"scale": signs * rng.uniform(0.4, 2.5, d), "shift": rng.uniform(-2, 2, d)}
    if layer == "linear_flow_logpdf":
        weight = np.diag(signs * rng.uniform(0.7, 2.0, d)) + rng.uniform(-0.4, 0.4, (d, d))
        return {"weight": weight, "shift": rng.uniform(-2, 2, d)}
    if layer == "affine_coupling_logpdf":
        mask = np.zeros(d, dtype=int)
        mask[rng.permutation(d)[: d // 2]] = 1
        return dict(mask=mask, **network(d, rng))
    u, w = rng.uniform(-0.7, 0.7, d), rng.uniform(-0.7, 0.7, d)
    if u @ w < -1:
        u *= -0.9 / (u @ w)
    return {"u": u, "w": w, "bias": rng.uniform(-2, 2)}


def forward(layer, z, p):
    """x = T(z), written from the papers' forward maps (never the inverse)."""
    if layer == "elementwise_affine_logpdf":
        return p["scale"] * z + p["shift"]
    if layer == "linear_flow_logpdf":
        return z @ p["weight"].T + p["shift"]
    if layer == "affine_coupling_logpdf":
        log_scale, shift = coupling_outputs(p, p["mask"] * z)
        return p["mask"] * z + (1 - p["mask"]) * (z * np.exp(log_scale) + shift)
    return z + p["u"] * np.tanh(z @ p["w"] + p["bias"])[..., None]


def call(layer, implementation, point, p):
    """The implementation at ``point`` (x for the densities, z for the planar log-det)."""
    if layer == "elementwise_affine_logpdf":
        return implementation(point, p["scale"], p["shift"])
    if layer == "linear_flow_logpdf":
        return implementation(point, p["weight"], p["shift"])
    if layer == "affine_coupling_logpdf":
        log_scale, shift = coupling_outputs(p, p["mask"] * point)     # the network sees m * x
        return implementation(point, p["mask"], log_scale, shift)
    return implementation(point, p["u"], p["w"], p["bias"])


def log_standard_normal(z):
    return -0.5 * np.sum(np.square(z), axis=-1) - z.shape[-1] * LOG_2PI / 2


def log_density_of_latent(layer, implementation, z, p):
    """What the implementation says is log p_z(z) = log p_x(T(z)) + log|det J_T(z)|, here as the
    density it gives x = T(z); for the planar flow, log N(f(z)) + logdet(z)."""
    if layer == "planar_flow_logdet":
        return log_standard_normal(forward(layer, z, p)) + call(layer, implementation, z, p)
    return call(layer, implementation, forward(layer, z, p), p)


IMPLEMENTATIONS = {"elementwise_affine_logpdf": elementwise_affine_logpdf, "linear_flow_logpdf": linear_flow_logpdf,
                   "affine_coupling_logpdf": affine_coupling_logpdf, "planar_flow_logdet": planar_flow_logdet}
LAYERS = list(IMPLEMENTATIONS)


def integral_over_plane(log_integrand, reach=25.0, nodes=256):
    """The integral of exp(log_integrand) over R^2: scipy's adaptive quad in the first
    coordinate of a 256-point Gauss-Legendre rule (scipy's fixed_quad, vectorized) in the
    second, on [-25, 25]^2. Measured within 2e-14 of 1 for every correct layer below."""
    def inner(first):
        def integrand(second):
            points = np.stack(np.broadcast_arrays(first, second), axis=-1)
            with np.errstate(all="ignore"):
                return np.exp(log_integrand(points))
        return integrate.fixed_quad(integrand, -reach, reach, n=nodes)[0]
    return integrate.quad(inner, -reach, reach, epsabs=1e-13, epsrel=1e-13, limit=200)[0]


def check_integral(layer, implementation):
    """At d = 2 and two parameter draws: the density of x integrates to 1 (for the planar
    flow, N(f(z)) |det df/dz| integrates to 1 over z: the change of variables)."""
    for draw_number in range(2):
        p = draw(layer, 2, seeded("integral", layer, draw_number))
        if layer == "planar_flow_logdet":
            total = integral_over_plane(lambda z, p=p: log_density_of_latent(layer, implementation, z, p))
        else:
            total = integral_over_plane(lambda x, p=p: call(layer, implementation, x, p))
        assert abs(total - 1) <= 1e-10, (layer, draw_number, total)


def complex_step_jacobian(function, point, step=1e-30):
    """dT/dz at ``point``, column j = Im T(z + i h e_j) / h: exact to rounding."""
    return np.array([function(point + 1j * step * unit).imag / step for unit in np.eye(point.size)]).T


def check_jacobian(layer, implementation):
    """At d = 3 and 5, three points each: log N(z) - log|det J_T(z)| (numpy slogdet of the
    complex-step Jacobian) is what the implementation gives for the density of T(z) (for the
    planar flow: the log-det itself)."""
    for d in (3, 5):
        rng = seeded("jacobian", layer, d)
        p = draw(layer, d, rng)
        for _ in range(3):
            z = rng.normal(0, 1.5, d)
            sign, log_det = np.linalg.slogdet(complex_step_jacobian(lambda v, p=p: forward(layer, v, p), z))
            assert sign != 0
            with np.errstate(all="ignore"):
                if layer == "planar_flow_logdet":
                    value, expected = call(layer, implementation, z, p), log_det
                else:
                    value = call(layer, implementation, forward(layer, z, p), p)
                    expected = log_standard_normal(z) - log_det
            assert abs(value - expected) <= 1e-10 * (1 + abs(expected)), (layer, d, value, expected)


def reference_by_mpmath(layer, point, p):
    """(value, size of its terms) at 50 digits from the same floats: the papers' formulas."""
    M = [mpf(float(v)) for v in point]
    half_log_2pi = mpmath.log(2 * mpmath.pi) / 2

    def normal(z):
        return -mpmath.fsum(v**2 for v in z) / 2 - len(z) * half_log_2pi

    def spread(z, log_det_size):
        return mpmath.fsum(v**2 for v in z) / 2 + len(z) * half_log_2pi + log_det_size

    if layer == "elementwise_affine_logpdf":
        z = [(x - mpf(b)) / mpf(a) for x, a, b in zip(M, p["scale"], p["shift"])]
        logs = [mpmath.log(abs(mpf(a))) for a in p["scale"]]
        return normal(z) - mpmath.fsum(logs), spread(z, mpmath.fsum(abs(v) for v in logs))
    if layer == "linear_flow_logpdf":
        matrix = mpmath.matrix([[mpf(v) for v in row] for row in p["weight"]])
        z = mpmath.lu_solve(matrix, mpmath.matrix([x - mpf(b) for x, b in zip(M, p["shift"])]))
        log_det = mpmath.log(abs(mpmath.det(matrix)))
        return normal(list(z)) - log_det, spread(list(z), abs(log_det))
    if layer == "affine_coupling_logpdf":
        log_scale, shift = coupling_outputs(p, p["mask"] * point)    # the network's float outputs
        z = [x if m else (x - mpf(t)) * mpmath.exp(-mpf(s)) for x, m, s, t in zip(M, p["mask"], log_scale, shift)]
        log_det = mpmath.fsum(mpf(s) for m, s in zip(p["mask"], log_scale) if not m)
        return normal(z) - log_det, spread(z, mpmath.fsum(abs(mpf(s)) for m, s in zip(p["mask"], log_scale) if not m))
    u_dot_w = mpmath.fsum(mpf(a) * mpf(b) for a, b in zip(p["u"], p["w"]))
    activation = mpmath.fsum(mpf(a) * b for a, b in zip(p["w"], M)) + mpf(p["bias"])
    value = mpmath.log1p(u_dot_w * mpmath.sech(activation) ** 2)
    return value, abs(value)


def check_mpmath(layer, implementation, points=12):
    """At d = 3: within 1e-12 of 50-digit mpmath, relative to the result (the planar
    log-det) or to the size of the terms of the log density, at random points."""
    rng = seeded("mpmath", layer)
    with mpmath.workdps(50):
        for _ in range(points):
            p = draw(layer, 3, rng)
            point = rng.normal(0, 2, 3)
            with np.errstate(all="ignore"):
                value = call(layer, implementation, point, p)
            reference, size = reference_by_mpmath(layer, point, p)
            assert abs(mpf(float(value)) - reference) <= 1e-12 * size, (layer, value, reference)


FLOW_CHECKS = {"integral": check_integral, "jacobian": check_jacobian, "mpmath": check_mpmath}


@pytest.mark.parametrize("check", FLOW_CHECKS)
@pytest.mark.parametrize("layer", LAYERS)
def test_flow_layer_passes(layer, check):
    FLOW_CHECKS[check](layer, IMPLEMENTATIONS[layer])


def test_planar_flow_keeps_digits_where_u_dot_w_cancels_and_at_the_edge():
    # u^T w = 9e-19 from products of 0.07 (the 2-D code's sum of products rounds it to 0, and
    # returns 0); u^T w = -1 up to rounding with a tiny activation (the determinant is
    # tanh^2(a) ~ 1e-16); both against mpmath at 50 digits.
    cases = [{"z": [0.5, 0.25], "u": [0.1, 0.3], "w": [0.7, -0.1 / 0.3 * 0.7], "bias": 0.1}]
    w = np.array([0.6, -0.3, 0.45])
    z = np.array([0.2, 1.1, -0.7])
    cases.append({"z": z, "u": -w / (w @ w), "w": w, "bias": -(w @ z) + 1e-8})
    with mpmath.workdps(50):
        for case in cases:
            value = planar_flow_logdet(**{name: np.asarray(v) for name, v in case.items()})
            parameters = {"u": np.asarray(case["u"]), "w": np.asarray(case["w"]), "bias": case["bias"]}
            reference, _ = reference_by_mpmath("planar_flow_logdet", np.asarray(case["z"], dtype=float), parameters)
            assert abs(mpf(float(value)) - reference) <= 1e-14 * abs(reference), (value, reference)


def test_linear_flow_shared_and_batched_weights_agree():
    rng = seeded("shared weight")
    p = draw("linear_flow_logpdf", 4, rng)
    x = rng.normal(0, 2, (6, 4))
    shared = linear_flow_logpdf(x, p["weight"], p["shift"])
    batched = linear_flow_logpdf(x, np.broadcast_to(p["weight"], (6, 4, 4)).copy(), p["shift"])
    one_by = linear_flow_logpdf(x, p["weight"][None], p["shift"])
    np.testing.assert_allclose(shared, batched, rtol=1e-14)
    assert one_by.shape == (6,)


def test_coupling_ignores_the_network_outputs_on_masked_coordinates():
    x = np.array([0.3, -1.2, 2.0, 0.7])
    mask = np.array([1, 0, 1, 0])
    log_scale = np.array([0.0, 0.4, 0.0, -0.3])
    shift = np.array([0.0, 1.0, 0.0, -2.0])
    junk = np.where(mask == 1, 1e300, 0.0)
    assert affine_coupling_logpdf(x, mask, log_scale + junk, shift - junk) == affine_coupling_logpdf(
        x, mask, log_scale, shift)
    assert affine_coupling_logpdf(x, mask.astype(bool), log_scale, shift) == affine_coupling_logpdf(
        x, mask, log_scale, shift)


# --- (d) the checks refute wrong variants --------------------------------------------------------
# Each mutant has the signature of the real function. Listed with the checks that refute it.


def elementwise_sign_flipped(x, scale, shift):
    return log_standard_normal((x - shift) / scale) + np.sum(np.log(np.abs(scale)) * np.ones_like(x), axis=-1)


def elementwise_log_det_dropped(x, scale, shift):
    return log_standard_normal((x - shift) / scale)


def elementwise_scale_off_by_1_percent(x, scale, shift):
    return elementwise_affine_logpdf(x, 1.01 * scale, shift) + x.shape[-1] * math.log(1.01)


def elementwise_without_absolute_value(x, scale, shift):
    return log_standard_normal((x - shift) / scale) - np.sum(np.log(scale) * np.ones_like(x), axis=-1)


def linear_sign_flipped(x, weight, shift):
    return linear_flow_logpdf(x, weight, shift) + 2 * np.linalg.slogdet(weight)[1]


def linear_log_det_dropped(x, weight, shift):
    return linear_flow_logpdf(x, weight, shift) + np.linalg.slogdet(weight)[1]


def linear_weight_off_by_1_percent(x, weight, shift):
    return linear_flow_logpdf(x, 1.01 * weight, shift) + x.shape[-1] * math.log(1.01)


def linear_transpose_for_inverse(x, weight, shift):
    return log_standard_normal(np.einsum("...ji,...j->...i", weight, x - shift)) - np.linalg.slogdet(weight)[1]


def coupling_sign_flipped(x, mask, log_scale, shift):
    return affine_coupling_logpdf(x, mask, log_scale, shift) + 2 * np.sum((1 - mask) * log_scale, axis=-1)


def coupling_log_det_dropped(x, mask, log_scale, shift):
    return affine_coupling_logpdf(x, mask, log_scale, shift) + np.sum((1 - mask) * log_scale, axis=-1)


def coupling_mask_inverted(x, mask, log_scale, shift):
    return affine_coupling_logpdf(x, 1 - mask, log_scale, shift)


def coupling_scale_off_by_1_percent(x, mask, log_scale, shift):
    return affine_coupling_logpdf(x, mask, log_scale + math.log(1.01), shift) + np.sum(
        (1 - mask) * math.log(1.01), axis=-1)


def coupling_log_det_over_every_coordinate(x, mask, log_scale, shift):
    return affine_coupling_logpdf(x, mask, log_scale, shift) - np.sum(mask * log_scale, axis=-1)


def planar_sign_flipped(z, u, w, bias):
    return -planar_flow_logdet(z, u, w, bias)


def planar_log_det_dropped(z, u, w, bias):
    return np.zeros(np.shape(z)[:-1])


def planar_u_off_by_1_percent(z, u, w, bias):
    return planar_flow_logdet(z, 1.01 * u, w, bias)


def planar_one_minus_tanh(z, u, w, bias):
    return np.log(1 + (1 - np.tanh(z @ w + bias)) * (u @ w))


def planar_u_dot_u(z, u, w, bias):
    return np.log(1 + (1 - np.tanh(z @ w + bias) ** 2) * (u @ u))


ALL_FLOW_CHECKS = tuple(FLOW_CHECKS)
FLOW_MUTANTS = [
    ("elementwise_affine_logpdf", elementwise_sign_flipped, ALL_FLOW_CHECKS),
    ("elementwise_affine_logpdf", elementwise_log_det_dropped, ALL_FLOW_CHECKS),
    ("elementwise_affine_logpdf", elementwise_scale_off_by_1_percent, ALL_FLOW_CHECKS),
    ("elementwise_affine_logpdf", elementwise_without_absolute_value, ALL_FLOW_CHECKS),  # NaN at a < 0
    ("linear_flow_logpdf", linear_sign_flipped, ALL_FLOW_CHECKS),
    ("linear_flow_logpdf", linear_log_det_dropped, ALL_FLOW_CHECKS),
    ("linear_flow_logpdf", linear_weight_off_by_1_percent, ALL_FLOW_CHECKS),
    ("linear_flow_logpdf", linear_transpose_for_inverse, ALL_FLOW_CHECKS),
    ("affine_coupling_logpdf", coupling_sign_flipped, ALL_FLOW_CHECKS),
    ("affine_coupling_logpdf", coupling_log_det_dropped, ALL_FLOW_CHECKS),
    ("affine_coupling_logpdf", coupling_mask_inverted, ALL_FLOW_CHECKS),
    ("affine_coupling_logpdf", coupling_scale_off_by_1_percent, ALL_FLOW_CHECKS),
    ("affine_coupling_logpdf", coupling_log_det_over_every_coordinate, ALL_FLOW_CHECKS),
    ("planar_flow_logdet", planar_sign_flipped, ALL_FLOW_CHECKS),
    ("planar_flow_logdet", planar_log_det_dropped, ALL_FLOW_CHECKS),
    ("planar_flow_logdet", planar_u_off_by_1_percent, ALL_FLOW_CHECKS),
    ("planar_flow_logdet", planar_one_minus_tanh, ALL_FLOW_CHECKS),
    ("planar_flow_logdet", planar_u_dot_u, ALL_FLOW_CHECKS),
]


@pytest.mark.parametrize("layer, mutant, checks", FLOW_MUTANTS, ids=[m.__name__ for _, m, _ in FLOW_MUTANTS])
@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")   # quad of a NaN integrand
def test_flow_checks_refute_the_mutant(layer, mutant, checks):
    for check in checks:
        with pytest.raises(AssertionError):
            FLOW_CHECKS[check](layer, mutant)


def take(values, tokens):
    return np.take_along_axis(values, np.asarray(tokens)[..., None], axis=-1)[..., 0]


def autoregressive_without_normalizer(logits, tokens):
    return take(logits, tokens).sum(axis=-1)


def autoregressive_normalized_over_positions(logits, tokens):
    top = logits.max(axis=-2, keepdims=True)
    return take(logits - top - np.log(np.exp(logits - top).sum(axis=-2, keepdims=True)), tokens).sum(axis=-1)


def autoregressive_rows_shifted_by_one(logits, tokens):
    return autoregressive_categorical_logpmf(np.roll(logits, -1, axis=-2), tokens)


def autoregressive_temperature_off_by_1_percent(logits, tokens):
    return autoregressive_categorical_logpmf(1.01 * logits, tokens)


def autoregressive_log_sum_exp_without_log1p(logits, tokens):
    top = logits.max(axis=-1, keepdims=True)
    return take(logits - top - np.log(np.exp(logits - top).sum(axis=-1, keepdims=True)), tokens).sum(axis=-1)


def autoregressive_without_the_max(logits, tokens):
    return take(logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True)), tokens).sum(axis=-1)


EVERY = tuple(AUTOREGRESSIVE_CHECKS)
EXTREME = ("enumeration, logits +-700", "chain rule by mpmath, logits +-700")
AUTOREGRESSIVE_MUTANTS = [
    (autoregressive_without_normalizer, EVERY),
    (autoregressive_normalized_over_positions, EVERY),
    (autoregressive_rows_shifted_by_one, EVERY),
    # Still a pmf at another temperature: only the chain rule by mpmath sees it.
    (autoregressive_temperature_off_by_1_percent, ("chain rule by mpmath", "chain rule by mpmath, logits +-700")),
    # Right to rounding at moderate logits; loses log p ~ -1e-304 to 0 at +-700.
    (autoregressive_log_sum_exp_without_log1p, ("chain rule by mpmath, logits +-700",)),
    # Overflows at 700.
    (autoregressive_without_the_max, EXTREME),
]


@pytest.mark.parametrize("mutant, checks", AUTOREGRESSIVE_MUTANTS, ids=[m.__name__ for m, _ in AUTOREGRESSIVE_MUTANTS])
def test_autoregressive_checks_refute_the_mutant(mutant, checks):
    for check in checks:
        with pytest.raises(AssertionError):
            AUTOREGRESSIVE_CHECKS[check](mutant)


# --- (e) errors name the argument ---------------------------------------------------------------

X3 = np.array([0.5, -1.0, 2.0])
ERRORS = [
    (elementwise_affine_logpdf, (X3, [1.0, 0.0, 2.0], 0.0), "scale"),
    (elementwise_affine_logpdf, ([0.5, np.nan, 1.0], 1.0, 0.0), "x"),
    (elementwise_affine_logpdf, (X3, 1.0, [0.0, np.inf, 0.0]), "shift"),
    (elementwise_affine_logpdf, (0.5, 1.0, 0.0), "x"),
    (elementwise_affine_logpdf, (X3, [1.0, 2.0], 0.0), "scale"),
    (linear_flow_logpdf, (X3, [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 0.0, 1.0]], 0.0), "weight"),
    (linear_flow_logpdf, (X3, np.ones((3, 2)), 0.0), "weight"),
    (linear_flow_logpdf, (X3, np.eye(2), 0.0), "weight"),
    (linear_flow_logpdf, (X3, np.eye(3), [0.0, 1.0]), "shift"),
    (linear_flow_logpdf, ([np.inf, 0.0, 0.0], np.eye(3), 0.0), "x"),
    (linear_flow_logpdf, (X3, np.diag([1.0, np.nan, 1.0]), 0.0), "weight"),
    (affine_coupling_logpdf, (X3, [1, 0.5, 0], 0.0, 0.0), "mask"),
    (affine_coupling_logpdf, (X3, [1, 0, 0], [0.0, np.nan, 0.0], 0.0), "log_scale"),
    (affine_coupling_logpdf, (X3, [1, 0, 0], 0.0, [0.0, 0.0, -np.inf]), "shift"),
    (affine_coupling_logpdf, (X3, [1, 0], 0.0, 0.0), "mask"),
    (planar_flow_logdet, (X3, [1.0, 0.0, 0.0], [-1.5, 0.0, 0.0], 0.0), "u"),
    (planar_flow_logdet, (X3, [1.0, 0.0, 0.0], [0.5, 0.0, 0.0], np.nan), "bias"),
    (planar_flow_logdet, (0.3, [1.0], [0.5], 0.0), "z"),
    (planar_flow_logdet, (np.ones((3, 3)), [1.0, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 1.0]), "bias"),
    (planar_flow_logdet, (X3, [1.0, 0.0], [0.5, 0.0, 0.0], 0.0), "u"),
    (autoregressive_categorical_logpmf, (np.zeros((2, 3)), [0, 3]), "tokens"),
    (autoregressive_categorical_logpmf, (np.zeros((2, 3)), [0, -1]), "tokens"),
    (autoregressive_categorical_logpmf, (np.zeros((2, 3)), [0.0, 1.5]), "tokens"),
    (autoregressive_categorical_logpmf, (np.zeros((2, 3)), [0, 1, 2]), "tokens"),
    (autoregressive_categorical_logpmf, (np.zeros((4, 2, 3)), np.zeros((3, 2), int)), "tokens"),
    (autoregressive_categorical_logpmf, (np.array([[0.0, np.inf, 1.0]]), [0]), "logits"),
    (autoregressive_categorical_logpmf, (np.zeros(3), [0]), "logits"),
    (autoregressive_categorical_logpmf, (np.zeros((2, 0)), [0, 0]), "logits"),
    (autoregressive_categorical_logpmf, (np.zeros((2, 3)), ["a", "b"]), "tokens"),
]


@pytest.mark.parametrize("function, arguments, name", ERRORS,
                         ids=[f"{f.__name__}-{name}-{i}" for i, (f, _, name) in enumerate(ERRORS)])
def test_errors_name_the_function_and_argument(function, arguments, name):
    with pytest.raises(ValueError, match=function.__name__) as raised:
        function(*arguments)
    assert repr(name) in str(raised.value) or f"{name} (" in str(raised.value), str(raised.value)


# --- (f) float32 and batch broadcasting -----------------------------------------------------------


def batched_cases():
    """(function, arguments with batch dimensions, the batch shape, a function of an index
    giving the unbatched arguments)."""
    rng = seeded("batches")
    x = rng.normal(0, 1, (4, 1, 3))
    scale, shift = rng.uniform(0.5, 2, (5, 3)), rng.normal(0, 1, 3)
    yield (elementwise_affine_logpdf, (x, scale, shift), (4, 5), lambda i, j: (x[i, 0], scale[j], shift))
    weight = np.eye(3) + rng.uniform(-0.3, 0.3, (5, 3, 3))
    yield (linear_flow_logpdf, (x, weight, shift), (4, 5), lambda i, j: (x[i, 0], weight[j], shift))
    mask = np.array([1, 0, 1])
    log_scale, coupling_shift = rng.normal(0, 0.5, (5, 3)), rng.normal(0, 1, (4, 1, 3))
    yield (affine_coupling_logpdf, (x, mask, log_scale, coupling_shift), (4, 5),
           lambda i, j: (x[i, 0], mask, log_scale[j], coupling_shift[i, 0]))
    u, w, bias = rng.uniform(-0.5, 0.5, 3), rng.uniform(-0.5, 0.5, (5, 3)), rng.normal(0, 1, (4, 1))
    yield (planar_flow_logdet, (x, u, w, bias), (4, 5), lambda i, j: (x[i, 0], u, w[j], bias[i, 0]))
    logits, tokens = rng.normal(0, 2, (4, 1, 6, 3)), rng.integers(0, 3, (5, 6))
    yield (autoregressive_categorical_logpmf, (logits, tokens), (4, 5), lambda i, j: (logits[i, 0], tokens[j]))


@pytest.mark.parametrize("case", list(batched_cases()), ids=lambda case: case[0].__name__)
def test_batch_dimensions_broadcast(case):
    function, arguments, shape, unbatched = case
    values = function(*arguments)
    assert values.shape == shape
    for index in np.ndindex(*shape):
        single = function(*unbatched(*index))
        assert np.ndim(single) == 0
        assert values[index] == pytest.approx(float(single), rel=1e-14, abs=1e-14)


@pytest.mark.parametrize("case", list(batched_cases()), ids=lambda case: case[0].__name__)
def test_float32_in_float32_out(case):
    function, arguments, shape, _ = case
    single = [np.asarray(a).astype(np.float32) if np.asarray(a).dtype.kind == "f" else a for a in arguments]
    values = function(*single)
    assert values.dtype == np.float32 and values.shape == shape
    reference = function(*[np.asarray(a).astype(np.float64) if np.asarray(a).dtype.kind == "f" else a
                            for a in single])
    np.testing.assert_allclose(values, reference, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("function", [elementwise_affine_logpdf, linear_flow_logpdf, affine_coupling_logpdf,
                                      planar_flow_logdet])
def test_a_python_number_does_not_widen_float32(function):
    # The last argument (a shift, or the planar bias) as a Python float.
    case = next(case for case in batched_cases() if case[0] is function)
    single = [np.asarray(a).astype(np.float32) if np.asarray(a).dtype.kind == "f" else a for a in case[1]]
    assert function(*single[:-1], 0.5).dtype == np.float32


def test_a_single_point_gives_a_scalar_and_integers_give_float64():
    assert isinstance(elementwise_affine_logpdf([1, 2], [1, 1], [0, 0]), np.float64)
    assert isinstance(linear_flow_logpdf([1, 2], [[1, 0], [0, 1]], [0, 0]), np.float64)
    assert isinstance(autoregressive_categorical_logpmf([[1, 2]], [1]), np.float64)
    assert autoregressive_categorical_logpmf(np.zeros((3, 0, 4)), np.zeros((3, 0), int)).tolist() == [0.0] * 3

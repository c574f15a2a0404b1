"""symgen.kl: KL between families, derived on demand (symgen/engine/kl.py).

Each pair here is derived, every step proved, and its generated function compared with
(a) torch.distributions' registered formula where torch has the pair, (b) a 50-digit mpmath
quadrature of the definition, strictly (1e-12 relative) at generic and near-equal points,
and (c) wrong variants, which the Monte Carlo and quadrature checks must refute.
"""
import math

import mpmath
import numpy as np
import pytest

from symgen.engine import kl as kl_module
from symgen.engine.families import FAMILIES

FAST_PAIRS = [("Normal", "Normal"), ("Laplace", "Laplace"), ("Laplace", "Normal"), ("Normal", "Laplace")]


def mpmath_kl(p_name, p_values, q_name, q_values, dps=50):
    """KL(P || Q) at dps digits by mpmath quadrature of p (log p - log q), from the families'
    log-densities (SymPy to mpmath), split at the locations."""
    import sympy as sp

    fam_p, fam_q = FAMILIES[p_name], FAMILIES[q_name]
    p = dict(zip((q.name for q in fam_p.parameters), map(sp.Float, p_values, [dps + 10] * len(p_values))))
    q = dict(zip((r.name for r in fam_q.parameters), map(sp.Float, q_values, [dps + 10] * len(q_values))))
    x = kl_module.x
    with mpmath.workdps(dps + 10):
        log_p = sp.lambdify(x, fam_p.log_density(p), "mpmath")
        log_q = sp.lambdify(x, fam_q.log_density(q), "mpmath")
        lower, upper = (mpmath.mpf(str(e)) if e.is_finite else (mpmath.inf if e > 0 else -mpmath.inf)
                        for e in fam_p.support(p))
        points = sorted({mpmath.mpf(v) for v in (*p_values, *q_values) if lower < v < upper})
        value = mpmath.quad(lambda t: mpmath.exp(log_p(t)) * (log_p(t) - log_q(t)), [lower, *points, upper])
    return value


@pytest.mark.parametrize("pair", FAST_PAIRS, ids=lambda pair: "-".join(pair))
def test_every_step_is_proved(pair):
    answer = kl_module.kl(*pair)
    assert answer.status == "closed form"
    answer.derivation.prove()
    steps = answer.derivation.output().steps
    assert len(steps) >= 5
    assert all(step.proof.startswith("SymPy") for step in steps[1:])


@pytest.mark.parametrize("pair", FAST_PAIRS, ids=lambda pair: "-".join(pair))
def test_strictly_within_1e12_of_50_digit_quadrature_generic_and_near_equal(pair):
    answer = kl_module.kl(*pair)
    rng = np.random.default_rng(7)
    for index in range(6):
        values = [float(rng.uniform(-2, 2)) if name.startswith("loc") else float(np.exp(rng.uniform(-1, 1)))
                  for name in answer.parameters]
        if pair[0] == pair[1] and index % 2:
            # Q = P up to a relative 1e-9 (the loc moved by 1e-9 of P's scale): the textbook form cancels.
            half = len(values) // 2
            values[half:] = [v * (1 + 1e-9) for v in values[:half]]
        value = float(answer(*values))
        half = len(FAMILIES[pair[0]].parameters)
        reference = mpmath_kl(pair[0], values[:half], pair[1], values[half:])
        assert abs(value - float(reference)) <= 1e-12 * abs(float(reference)), (values, value, reference)


def test_agrees_with_torch_where_torch_has_the_pair():
    torch = pytest.importorskip("torch")
    dist = torch.distributions
    rng = np.random.default_rng(3)
    for p_name, q_name in [("Normal", "Normal"), ("Laplace", "Laplace"), ("Laplace", "Normal"),
                           ("Normal", "Laplace")]:
        answer = kl_module.kl(p_name, q_name)
        if (getattr(dist, p_name), getattr(dist, q_name)) not in dist.kl._KL_REGISTRY:
            continue
        for _ in range(5):
            p_values = [float(rng.uniform(-2, 2)), float(np.exp(rng.uniform(-1, 1)))]
            q_values = [float(rng.uniform(-2, 2)), float(np.exp(rng.uniform(-1, 1)))]
            theirs = dist.kl_divergence(getattr(dist, p_name)(*(torch.tensor(v, dtype=torch.float64) for v in p_values)),
                                        getattr(dist, q_name)(*(torch.tensor(v, dtype=torch.float64) for v in q_values))).item()
            ours = float(answer(*p_values, *q_values))
            assert math.isclose(ours, theirs, rel_tol=1e-10), (p_name, q_name, p_values, q_values)


def test_the_checks_pass_and_refute_wrong_variants():
    answer = kl_module.kl("Laplace", "Normal")
    report = answer.verify(examples=4)
    assert report.passed, [row.summary for row in report.rows if not row.passed]
    # Wrong variants: off by 1%, a constant, a swapped argument, a missing term. The checks
    # (Monte Carlo under P, false alarm <= 1e-6; quadrature) must refute each.
    import sympy as sp

    closed = answer.derivation.output().closed_form
    symbols = answer.derivation.symbols()
    wrong = [closed * sp.Rational(101, 100), closed + sp.Rational(1, 10),
             closed.xreplace({symbols["scale_p"]: symbols["scale_q"], symbols["scale_q"]: symbols["scale_p"]}),
             closed - symbols["scale_p"] ** 2 / (2 * symbols["scale_q"] ** 2)]
    from symgen.engine.runner import expression_values, run_check

    for variant in wrong:
        refuted = False
        for empirical in answer.derivation.checks:
            outcome = run_check(answer.derivation, empirical,
                                expression_values(answer.derivation, answer.name, variant), examples=4)
            refuted |= not outcome.passed
        assert refuted, variant


def test_infinite_and_no_closed_form_say_why():
    infinite = kl_module.kl("Normal", "Exponential")
    assert infinite.status == "infinite" and "support" in infinite.reason
    assert infinite(0.0, 1.0, 2.0) == math.inf
    heavy = kl_module.kl("Cauchy", "Normal")
    assert heavy.status == "infinite" and "no mean" in heavy.reason
    none = kl_module.kl("Normal", "Cauchy")
    assert none.status == "no closed form" and none.kind == "quadrature"
    # The quadrature function, labelled as such, against mpmath.
    value = none(0.3, 1.2, -0.4, 0.7)
    assert math.isclose(value, float(mpmath_kl("Normal", [0.3, 1.2], "Cauchy", [-0.4, 0.7])), rel_tol=1e-9)


def test_bad_input_raises_naming_the_argument():
    with pytest.raises(ValueError, match="scale_q"):
        kl_module.kl("Normal", "Normal")(0.0, 1.0, 0.0, -1.0)
    with pytest.raises(ValueError, match="unknown family"):
        kl_module.kl("Normal", "Student")


def test_table_lists_every_ordered_pair():
    text = kl_module.table_text()
    assert len(text.strip().splitlines()) == 1 + len(FAMILIES) ** 2
    assert "Normal       Normal       closed form" in text

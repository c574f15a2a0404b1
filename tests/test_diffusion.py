"""The diffusion forward process: q(x_t | x_0) and q(x_{t-1} | x_t, x_0).

The forward chain's lemma, accuracy against 50-digit mpmath at the
edges (alpha_bar near 0 and 1, alpha_bar_prev barely above alpha_bar_t, huge and tiny
values), dtypes, errors, and how a slip's counterexample shrinks (the usual slips themselves are
declared in derivations/diffusion.py and refuted by a catalogue-wide test).
"""
import math

import mpmath
import numpy as np
import pytest

import symgen
from symgen import (diffusion_marginal, diffusion_optimal_eps, diffusion_posterior, diffusion_predictions,
                    diffusion_vpsde_marginal, tweedie_normal)
from symgen.engine.accuracy import relative_error
from symgen.engine.evaluate import reference_value
from single_check import (assert_refutes_a_thousandth_off, assert_verifies_and_resolves_a_thousandth,
                          one_per_check)

EPS64 = np.finfo(np.float64).eps


def reference(name, output, point):
    found = symgen.derivation(name)
    return reference_value(found, found.output(output).closed_form, point)


def assert_accurate(name, point, result):
    for output, value in result._asdict().items():
        assert relative_error(value, reference(name, output, point)) <= 1e-12, (output, point)


# --- the forward chain's lemma and the outputs -------------------------------------


def test_the_forward_chain_induction_is_proved_by_sympy():
    module = symgen.derivation("diffusion_marginal").module
    assert "proved" in module.FORWARD_INDUCTION.prove()


def test_outputs_are_named_mean_and_var():
    result = diffusion_posterior(1.0, 0.5, 0.3, 0.6)
    assert result._fields == ("mean", "var")
    mean, var = diffusion_marginal(1.0, 0.5)
    assert (mean, var) == tuple(diffusion_marginal(1.0, 0.5))


# --- accuracy against 50-digit mpmath ------------------------------------------------


def posterior_mean_condition(x0, xt, alpha_bar_t, alpha_bar_prev):
    """(|c0 x0| + |ct xt|) / |c0 x0 + ct xt|: the mean is a sum of two terms of either
    sign, so where they cancel the function itself is ill-conditioned in x0 and xt."""
    with mpmath.workdps(50):
        x0, xt, at, ap = (mpmath.mpf(float(v)) for v in (x0, xt, alpha_bar_t, alpha_bar_prev))
        c0 = (ap - at) / (mpmath.sqrt(ap) * (1 - at))
        ct = mpmath.sqrt(at) * (1 - ap) / (mpmath.sqrt(ap) * (1 - at))
        total = abs(c0 * x0 + ct * xt)
        return float((abs(c0 * x0) + abs(ct * xt)) / total) if total else math.inf


@pytest.mark.parametrize("alpha_bar", [5e-324, 1e-300, 1e-12, 0.5, 1 - 1e-9, 1 - 2**-52, 1.0])
@pytest.mark.parametrize("x0", [-3.0, 1e-150, 1e150])
def test_diffusion_marginal_at_the_edges(alpha_bar, x0):
    point = dict(x0=x0, alpha_bar=alpha_bar)
    result = diffusion_marginal(**point)
    if alpha_bar == 1.0:
        # No noise at all: the law is the point mass at x0.
        assert result.mean == x0 and result.var == 0.0
    else:
        assert_accurate("diffusion_marginal", point, result)


def textbook_posterior(x0, xt, alpha_bar_t, alpha_bar_prev):
    """Ho et al. (2020), Eq. 7, transcribed literally, with beta_t = 1 - alpha_bar_t/alpha_bar_prev."""
    alpha_t = alpha_bar_t / alpha_bar_prev
    beta_t = 1 - alpha_t
    mean = (math.sqrt(alpha_bar_prev) * beta_t / (1 - alpha_bar_t) * x0
            + math.sqrt(alpha_t) * (1 - alpha_bar_prev) / (1 - alpha_bar_t) * xt)
    return mean, (1 - alpha_bar_prev) / (1 - alpha_bar_t) * beta_t


@pytest.mark.parametrize("alpha_bar_t", [1e-6, 0.3, 0.9, 1 - 1e-6])
@pytest.mark.parametrize("gap", [1e-13, 1e-10, 1e-7])
def test_diffusion_posterior_where_the_levels_nearly_agree(alpha_bar_t, gap):
    point = dict(x0=1.25, xt=-0.5, alpha_bar_t=alpha_bar_t, alpha_bar_prev=alpha_bar_t * (1 + gap))
    mean, var = diffusion_posterior(**point)
    var_reference = reference("diffusion_posterior", "var", point)
    assert relative_error(var, var_reference) <= 1e-12
    assert relative_error(mean, reference("diffusion_posterior", "mean", point)) <= 1e-12


def test_the_textbook_form_cancels_where_the_levels_nearly_agree():
    # 1 - alpha_bar_t / alpha_bar_prev cancels: the rounding of the ratio (half an ulp) is
    # amplified by 1/gap, so at gap 1e-10 the textbook transcription keeps ~6 digits.
    # (Gaps of varied size, so the ratio's rounding errors are not all lucky ones.)
    rng = np.random.default_rng(7)
    textbook_errors, errors = [], []
    for alpha_bar_t in np.linspace(0.05, 0.95, 19):
        gap = 1e-10 * rng.uniform(0.5, 2.0)
        point = dict(x0=1.25, xt=-0.5, alpha_bar_t=alpha_bar_t, alpha_bar_prev=alpha_bar_t * (1 + gap))
        var_reference = reference("diffusion_posterior", "var", point)
        textbook_errors.append(relative_error(textbook_posterior(**point)[1], var_reference))
        errors.append(relative_error(diffusion_posterior(**point).var, var_reference))
    assert max(errors) <= 1e-12
    assert max(textbook_errors) > 1e-8


def test_diffusion_posterior_degenerate_ends():
    # Equal levels: the step adds no noise, so x_{t-1} = x_t exactly.
    mean, var = diffusion_posterior(2.0, -0.75, 0.4, 0.4)
    assert mean == -0.75 and var == 0.0
    # alpha_bar_prev = 1: x_{t-1} = x_0 exactly, whatever x_t.
    mean, var = diffusion_posterior(2.0, -0.75, 0.4, 1.0)
    assert mean == pytest.approx(2.0, rel=1e-15) and var == 0.0


@pytest.mark.parametrize("alpha_bar_t, alpha_bar_prev", [(5e-324, 1e-300), (1e-300, 1e-200), (1e-12, 0.5),
                                                         (0.999999, 1 - 1e-12)])
@pytest.mark.parametrize("x0, xt", [(1e150, -1e150), (1e-150, 3e-150), (0.7, 2.0)])
def test_diffusion_posterior_at_tiny_levels_and_extreme_values(alpha_bar_t, alpha_bar_prev, x0, xt):
    point = dict(x0=x0, xt=xt, alpha_bar_t=alpha_bar_t, alpha_bar_prev=alpha_bar_prev)
    mean, var = diffusion_posterior(**point)
    assert relative_error(var, reference("diffusion_posterior", "var", point)) <= 1e-12
    assert relative_error(mean, reference("diffusion_posterior", "mean", point)) <= max(
        1e-12, 8 * EPS64 * posterior_mean_condition(**point))


def test_posterior_is_consistent_with_the_marginals():
    """Relations, not numbers: averaging the posterior mean over x_t ~ q(x_t | x_0) gives
    the marginal mean at alpha_bar_prev, and the law of total variance adds up."""
    x0, alpha_bar_t, alpha_bar_prev = 0.8, 0.35, 0.6
    mean_t, var_t = diffusion_marginal(x0, alpha_bar_t)
    mean_prev, var_prev = diffusion_marginal(x0, alpha_bar_prev)
    # The posterior mean is affine in x_t: its average is its value at E[x_t], and its
    # variance over x_t is slope^2 Var[x_t].
    at_mean = diffusion_posterior(x0, mean_t, alpha_bar_t, alpha_bar_prev)
    slope = (diffusion_posterior(x0, mean_t + 1.0, alpha_bar_t, alpha_bar_prev).mean - at_mean.mean)
    assert at_mean.mean == pytest.approx(mean_prev, rel=1e-14)
    assert at_mean.var + slope**2 * var_t == pytest.approx(var_prev, rel=1e-14)


# --- the reparameterised sample and the eps / x0 / v predictions ------------------------------


def test_predictions_round_trip_through_the_reparameterised_sample():
    """Relations, not numbers: noise x0 with eps, and the predictions give back x0; v converts
    to x0 and to eps as sqrt(alpha_bar) x_t - sqrt(1 - alpha_bar) v and
    sqrt(1 - alpha_bar) x_t + sqrt(alpha_bar) v (Salimans & Ho 2022)."""
    rng = np.random.default_rng(3)
    x0, eps, alpha_bar = rng.normal(size=40), rng.normal(size=40), rng.uniform(0.05, 0.95, 40)
    xt = np.sqrt(alpha_bar) * x0 + np.sqrt(1 - alpha_bar) * eps
    x0_hat, v = diffusion_predictions(xt, alpha_bar, eps)
    np.testing.assert_allclose(x0_hat, x0, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(v, np.sqrt(alpha_bar) * eps - np.sqrt(1 - alpha_bar) * x0, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.sqrt(alpha_bar) * xt - np.sqrt(1 - alpha_bar) * v, x0, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.sqrt(1 - alpha_bar) * xt + np.sqrt(alpha_bar) * v, eps, rtol=1e-12, atol=1e-12)
    # The reparameterised sample is a draw of q(x_t | x_0): its mean given x0 is the marginal mean.
    assert np.all(np.abs(xt - diffusion_marginal(x0, alpha_bar).mean)
                  <= np.sqrt(diffusion_marginal(x0, alpha_bar).var) * np.abs(eps) * (1 + 1e-12))


def test_predictions_without_noise():
    x0, v = diffusion_predictions(0.75, 1.0, -0.2)
    assert x0 == 0.75 and v == -0.2


# --- the optimal noise prediction and the VP SDE ------------------------------------------


def test_optimal_eps_is_tweedie_in_noise_units():
    """eps = (x_t - sqrt(alpha_bar) x_0)/sqrt(1 - alpha_bar), so the best noise prediction is
    the best denoiser (tweedie_normal) in noise units, and its error variance scales by
    alpha_bar/(1 - alpha_bar): two derivations that share no step agree."""
    xt, alpha_bar, loc, scale = np.linspace(-4, 4, 9), np.array(0.3), 0.5, 1.4
    denoised = tweedie_normal(xt, alpha_bar, loc, scale)
    eps = diffusion_optimal_eps(xt, alpha_bar, loc, scale)
    np.testing.assert_allclose(eps.mean, (xt - np.sqrt(alpha_bar) * denoised.mean) / np.sqrt(1 - alpha_bar),
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(eps.var, alpha_bar * denoised.var / (1 - alpha_bar), rtol=1e-13)


def test_optimal_loss_by_timestep():
    """Section 12's curve for Gaussian data: the least denoising loss rises from 0 (pure
    noise: x_t is eps) to 1 (no noise: nothing in x_t about eps) as alpha_bar grows, so it
    falls along the forward process; wider data (larger scale) make eps harder to tell."""
    alpha_bar = np.cos(np.linspace(0.01, 1.0, 20) * np.pi / 2) ** 2      # a cosine-like schedule
    loss = diffusion_optimal_eps(0.0, alpha_bar, 0.0, 1.0).var
    assert np.all(np.diff(loss) < 0) and 0 < loss[-1] < loss[0] < 1
    assert diffusion_optimal_eps(0.0, 1.0, 0.0, 1.0).var == 1.0
    assert np.all(diffusion_optimal_eps(0.0, alpha_bar, 0.0, 2.0).var > loss)
    # Unit-variance data: the loss is alpha_bar itself (signal share of a unit-variance x_t).
    np.testing.assert_allclose(loss, alpha_bar, rtol=1e-14)


def test_vpsde_marginal_is_the_ddpm_marginal_at_its_signal_level():
    t, beta_min, beta_max, x0 = np.linspace(0.05, 1.0, 8), 0.1, 20.0, 1.7
    alpha_bar = np.exp(-(beta_min * t + (beta_max - beta_min) * t**2 / 2))
    continuous = diffusion_vpsde_marginal(x0, t, beta_min, beta_max)
    discrete = diffusion_marginal(x0, alpha_bar)
    np.testing.assert_allclose(continuous.mean, discrete.mean, rtol=1e-14)
    np.testing.assert_allclose(continuous.var, discrete.var, rtol=1e-12)


def test_vpsde_variance_at_small_times():
    # 1 - exp(-int beta) cancels at small t; the expm1 form keeps every digit.
    for t in (1e-12, 1e-9, 1e-6):
        point = dict(x0=1.0, time=t, beta_min=0.1, beta_max=20.0)
        expected = reference("diffusion_vpsde_marginal", "var", point)
        assert relative_error(diffusion_vpsde_marginal(**point).var, expected) <= 1e-12
        textbook = 1 - math.exp(-(0.1 * t + 19.9 * t**2 / 2))
        assert relative_error(textbook, expected) > 1e-11   # past the 1e-12 bound


# --- dtypes, broadcasting, errors ------------------------------------------------------


def test_float32_in_float32_out():
    f32 = np.float32
    result = diffusion_marginal(np.ones(3, f32), f32(0.5))
    assert result.mean.dtype == np.float32 and result.var.dtype == np.float32
    result = diffusion_posterior(np.ones(3, f32), np.zeros(3, f32), f32(0.3), f32(0.6))
    assert result.mean.dtype == np.float32 and result.var.dtype == np.float32


def test_broadcasting_follows_numpy():
    x0 = np.linspace(-1, 1, 5)[:, None]
    alpha_bar = np.array([0.1, 0.5, 0.9])
    mean, var = diffusion_marginal(x0, alpha_bar)
    assert mean.shape == (5, 3) and var.shape == (3,)
    mean, var = diffusion_posterior(x0, 0.0, alpha_bar * 0.5, alpha_bar)
    assert mean.shape == (5, 3) and var.shape == (3,)
    assert mean[4, 2] == diffusion_posterior(1.0, 0.0, 0.45, 0.9).mean


@pytest.mark.parametrize("alpha_bar", [-1e-300, -0.2, 1.5, np.nan, np.inf])
def test_diffusion_marginal_rejects_alpha_bar_outside_0_1(alpha_bar):
    with pytest.raises(ValueError, match=r"diffusion_marginal: argument 'alpha_bar' must"):
        diffusion_marginal(1.0, alpha_bar)


@pytest.mark.parametrize("arguments, message", [
    ((0.0, 0.0, 0.5, 0.4), "argument 'alpha_bar_prev' must be >= alpha_bar_t"),
    ((0.0, 0.0, np.array([0.2, 0.5]), 0.3), "argument 'alpha_bar_prev' must be >= alpha_bar_t"),
    ((0.0, 0.0, 1.0, 1.0), "argument 'alpha_bar_t' must lie in"),
    ((0.0, 0.0, -0.1, 0.5), "argument 'alpha_bar_t' must lie in"),
    ((0.0, 0.0, 0.5, 1.2), "argument 'alpha_bar_prev' must lie in"),
    ((np.nan, 0.0, 0.5, 0.6), "argument 'x0' must be finite"),
    ((0.0, np.inf, 0.5, 0.6), "argument 'xt' must be finite"),
])
def test_diffusion_posterior_rejects_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=rf"diffusion_posterior: {message}"):
        diffusion_posterior(*arguments)


@pytest.mark.parametrize("call, message", [
    (lambda: diffusion_optimal_eps(0.0, 0.0, 0.0, 1.0), "diffusion_optimal_eps: argument 'alpha_bar' must lie in"),
    (lambda: diffusion_optimal_eps(0.0, 0.5, 0.0, 0.0), "diffusion_optimal_eps: argument 'scale' must be positive"),
    (lambda: diffusion_predictions(0.0, 0.0, 0.1), "diffusion_predictions: argument 'alpha_bar' must lie in"),
    (lambda: diffusion_vpsde_marginal(0.0, 1.5, 0.1, 20.0), "diffusion_vpsde_marginal: argument 'time' must lie in"),
    (lambda: diffusion_vpsde_marginal(0.0, -0.1, 0.1, 20.0), "diffusion_vpsde_marginal: argument 'time' must lie in"),
    (lambda: diffusion_vpsde_marginal(0.0, 0.5, -0.1, 20.0), "diffusion_vpsde_marginal: argument 'beta_min' must be"),
])
def test_other_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- the usual slips (declared in derivations/diffusion.py) -------------------------------


def test_a_slip_shrinks_to_a_small_counterexample():
    # alpha_bar for sqrt(alpha_bar): shrinking finds a simple point where the two differ.
    result = symgen.check("diffusion_marginal.mean", "alpha_bar*x0")
    assert not result.verified
    point = result.empirical_counterexample.point
    assert point["x0"] != 0 and 0 < point["alpha_bar"] < 1
    assert result.empirical_counterexample.candidate == pytest.approx(point["alpha_bar"] * point["x0"], rel=1e-12)
    assert str(result).startswith("refuted")


def test_symgen_check_verifies_the_textbook_forms():
    assert symgen.check("diffusion_posterior.mean",
                        "sqrt(alpha_bar_prev)*(1 - alpha_bar_t/alpha_bar_prev)/(1 - alpha_bar_t)*x0"
                        " + sqrt(alpha_bar_t/alpha_bar_prev)*(1 - alpha_bar_prev)/(1 - alpha_bar_t)*xt",
                        examples=5).verified
    assert symgen.check("diffusion_posterior.var",
                        "(1 - alpha_bar_prev)/(1 - alpha_bar_t)*(1 - alpha_bar_t/alpha_bar_prev)",
                        examples=5).verified


# --- power of the checks with control variates (derivations/diffusion.py) -----------------------

MARGINAL_MEAN, MARGINAL_VAR = "sqrt(alpha_bar)*x0", "1 - alpha_bar"
POSTERIOR_MEAN = ("sqrt(alpha_bar_prev)*x0*(1 - alpha_bar_t/alpha_bar_prev)/(1 - alpha_bar_t)"
                  " + sqrt(alpha_bar_t)*xt*(1 - alpha_bar_prev)/(sqrt(alpha_bar_prev)*(1 - alpha_bar_t))")
POSTERIOR_VAR = "(1 - alpha_bar_prev)*(1 - alpha_bar_t/alpha_bar_prev)/(1 - alpha_bar_t)"
OPTIMAL_EPS_MEAN = "sqrt(1 - alpha_bar)*(xt - sqrt(alpha_bar)*loc)/(alpha_bar*scale**2 + 1 - alpha_bar)"
OPTIMAL_EPS_VAR = "alpha_bar*scale**2/(alpha_bar*scale**2 + 1 - alpha_bar)"

CONTROLLED_CHECKS = [
    ("diffusion_marginal", "var", "Var[x_t | x_0]", MARGINAL_VAR),
    ("diffusion_marginal", "mean", "forward chain run step by step (1-4 steps, random schedule) vs", MARGINAL_MEAN),
    ("diffusion_marginal", "var", "forward chain run step by step (1-4 steps, random schedule) vs", MARGINAL_VAR),
    ("diffusion_posterior", "mean", "joint forward draws", POSTERIOR_MEAN),
    ("diffusion_posterior", "var", "joint forward draws", POSTERIOR_VAR),
    ("diffusion_optimal_eps", "mean", "joint draws (x_t, eps)", OPTIMAL_EPS_MEAN),
    ("diffusion_optimal_eps", "var", "joint draws (x_t, eps)", OPTIMAL_EPS_VAR),
]


@pytest.mark.parametrize("name, output, description, closed_form", CONTROLLED_CHECKS)
def test_a_check_with_control_variates_refutes_a_thousandth_off(name, output, description, closed_form):
    assert_refutes_a_thousandth_off(name, output, description, closed_form)


@pytest.mark.parametrize("name, output, description, closed_form", one_per_check(CONTROLLED_CHECKS))
def test_a_check_with_control_variates_verifies_the_closed_form_and_resolves_a_thousandth(
        name, output, description, closed_form):
    assert_verifies_and_resolves_a_thousandth(name, output, description, closed_form)


def test_the_forward_chain_runs_its_signal_and_noise_apart():
    """Run as one, x_t rounds to an ulp of x_0 at each step, which over several steps correlated
    with the noise and moved its variance by 1e-9 of itself at alpha_bar = 1 - 1e-12: past the
    control variates' resolution (the distribution check failed at x0 = 10 there)."""
    module = symgen.derivation("diffusion_marginal").module
    x0, alpha_bar = 10.0, 1 - 1e-12
    fractions = module.schedule_at((x0, alpha_bar), module.MARGINAL_STEPS)
    normals = np.random.default_rng(5).standard_normal((400_000, len(fractions)))
    noise = module.run_chain(0.0, alpha_bar, fractions, normals)
    rounding = module.run_chain(x0, alpha_bar, fractions, normals) - math.sqrt(alpha_bar) * x0 - noise
    assert abs(2 * np.mean(noise * rounding)) <= 1e-10 * (1 - alpha_bar)


def test_a_schedule_is_a_function_of_the_point():
    # The main sample and the pilot the control variates are fitted on run the same chain.
    module = symgen.derivation("diffusion_marginal").module
    first, again = module.schedule_at((1.5, 0.3), 4), module.schedule_at((1.5, 0.3), 4)
    assert np.array_equal(first, again) and math.isclose(first.sum(), 1.0)
    lengths = {len(module.schedule_at((1.5, level), 4)) for level in np.linspace(0.05, 0.95, 40)}
    assert lengths == {1, 2, 3, 4}


def test_the_controlled_conditional_statistics_are_calibrated_where_the_controls_leave_noise():
    """Where the control variates cannot explain the moments (here y's own noise is not among
    the normals the draws come back with), the conditional check's jackknife t statistics of
    the mean at ``at`` and of the variance follow Student's t with batches - 1 degrees of
    freedom: 150 replications of 10,000 draws in 50 batches, Kolmogorov-Smirnov p > 1e-6."""
    from scipy import stats

    from symgen.engine import conditional

    rng = np.random.default_rng(11)
    intercept, slope, noise_sd, at = 0.5, 0.8, 0.6, 1.3

    def draw(n):
        x = rng.standard_normal(n)
        return np.stack([x, intercept + slope * x + noise_sd * rng.standard_normal(n)]), x[:, None]

    t_mean, t_var = [], []
    for _ in range(150):
        pilot = draw(10_000)
        centring = conditional.pilot_centring(*pilot[0])
        means = conditional.controlled_batch_means(*draw(10_000), pilot, centring, 50)
        at_u = at - centring[0]
        (offset, offset_se), (variance, variance_se) = (
            conditional.jackknife(means, lambda m, part=part: conditional.conditional_moments(m, at_u)[part])
            for part in (0, 1))
        t_mean.append((centring[1] + centring[2] * at_u + offset - (intercept + slope * at)) / offset_se)
        t_var.append((variance - noise_sd**2) / variance_se)
    for t_values in (t_mean, t_var):
        assert stats.kstest(t_values, stats.t(49).cdf).pvalue > 1e-6


# --- the predictions implied by a v prediction ---------------------------------------------------

from symgen import diffusion_predictions_from_v  # noqa: E402


def test_v_predictions_invert_the_eps_ones():
    """diffusion_predictions gives v from eps; diffusion_predictions_from_v gives eps (and x_0) back."""
    rng = np.random.default_rng(5)
    xt, alpha_bar, eps = rng.normal(size=50), rng.uniform(0.01, 0.99, 50), rng.normal(size=50)
    implied = diffusion_predictions(xt, alpha_bar, eps)
    back = diffusion_predictions_from_v(xt, alpha_bar, implied.v)
    np.testing.assert_allclose(back.eps, eps, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(back.x0, implied.x0, rtol=1e-12, atol=1e-13)


def test_v_predictions_at_both_ends():
    """alpha_bar = 0 (zero terminal SNR): x_t is the noise and v = -x_0, where an eps prediction
    says nothing about x_0 (diffusion_predictions rejects it); alpha_bar = 1: x_t is the data."""
    assert tuple(diffusion_predictions_from_v(0.7, 0.0, -1.5)) == (1.5, 0.7)
    assert tuple(diffusion_predictions_from_v(0.7, 1.0, -1.5)) == (0.7, -1.5)
    with pytest.raises(ValueError, match="diffusion_predictions: argument 'alpha_bar' must lie in"):
        diffusion_predictions(0.7, 0.0, 0.1)

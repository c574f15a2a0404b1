"""Noise schedules: the cosine schedule and the linear schedule in continuous time.

The lemmas the proofs rest on, accuracy over the domain and against
50-digit mpmath at the edges (t = 1, t = T, t within the clip's reach of T, T up to 4000; t
near 0 for the linear schedule), relations between the outputs and with the discrete DDPM
product, errors, and what refuting the clip's slips takes (the usual slips themselves are declared
in derivations/noise_schedules.py and refuted by a catalogue-wide test).
"""
import math

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings

import symgen
from symgen import diffusion_vpsde_marginal
from symgen.engine.accuracy import relative_error
from symgen.engine.evaluate import reference_value
from symgen.engine.primitives import DIFFERENCE_OF_SQUARES
from symgen.engine.runner import formula_function, parameter_strategy

COSINE = symgen.derivation("diffusion_cosine_schedule")
LINEAR = symgen.derivation("diffusion_linear_schedule")
MODULE = COSINE.module
cosine_schedule = formula_function(COSINE)
linear_schedule = formula_function(LINEAR)

# The paper's formulas as candidate strings, with s = 0.008 exact (a decimal 0.008 is a binary
# float, 1e-17 off, which shows near t = T where alpha_bar -> 0).
F_T = "cos(((t/T + 8/1000)/(1 + 8/1000))*pi/2)"
F_PREVIOUS = "cos(((Max(t - 1, 0)/T + 8/1000)/(1 + 8/1000))*pi/2)"
F_0 = "cos((8/1000)/(1 + 8/1000)*pi/2)"
ALPHA_BAR = f"({F_T}**2/{F_0}**2)"
INTEGRAL = "(beta_min*time + (beta_max - beta_min)*time**2/2)"


def reference(found, output, point):
    return reference_value(found, found.output(output).closed_form, point)


def assert_accurate(found, function, point, bound=1e-12):
    for output, value in function(**point)._asdict().items():
        assert relative_error(value, reference(found, output, point)) <= bound, (output, point)


def paper_level(t, T):
    """f(t)/f(0) of Nichol & Dhariwal (2021, Eq. 17) at 60 digits, written out here again."""
    with mpmath.workdps(60):
        f = lambda u: mpmath.cos((mpmath.mpf(u) / T + mpmath.mpf(8) / 1000)  # noqa: E731
                                 / (1 + mpmath.mpf(8) / 1000) * mpmath.pi / 2) ** 2
        return f(t) / f(0)


# --- the lemmas ------------------------------------------------------------------------


def test_the_lemmas_are_proved_by_sympy():
    assert "proved" in MODULE.COSINE_ANGLE.prove()
    assert "proved" in DIFFERENCE_OF_SQUARES.prove()
    n, keep, step, forms = MODULE.linear_schedule_product()
    # Each form is the product it stands for, at a few whole n.
    for count in (1, 2, 5):
        values = {n: count, keep: sp.Rational(9, 10), step: sp.Rational(1, 100)}
        for name, sign in (("rising", -1), ("falling", 1)):
            direct = math.prod(0.9 + sign * 0.01 * i for i in range(count))
            assert float(forms[name].subs(values)) == pytest.approx(direct, rel=1e-14), (name, count)


def test_outputs_are_named():
    assert cosine_schedule(3.0, 10.0)._fields == ("alpha_bar", "beta", "snr")
    assert linear_schedule(0.5, 0.1, 20.0)._fields == ("alpha_bar", "snr")


# --- the cosine schedule: accuracy --------------------------------------------------------


def edge_steps(T):
    steps = [1.0, 1.5, 2.0, T / 2, T - 1, T - 0.5, T - 0.03, T - 1e-6, T * (1 - 1e-15),
             float(np.nextafter(T, 0)), T]
    return sorted({t for t in steps if 1 <= t <= T})


@pytest.mark.parametrize("T", [1.0, 1.5, 2.0, 10.0, 1000.0, 3999.0, 4000.0])
def test_cosine_schedule_at_the_edges(T):
    for t in edge_steps(T):
        assert_accurate(COSINE, cosine_schedule, dict(t=t, T=T))


@settings(max_examples=40)
@given(point=parameter_strategy(COSINE))
def test_cosine_schedule_matches_mpmath_over_the_domain(point):
    assert_accurate(COSINE, cosine_schedule, point)


def test_the_textbook_forms_cancel_where_the_rewrites_do_not():
    """1 - alpha_bar_t/alpha_bar_{t-1} keeps ~1/(T beta_t) of the digits over a long schedule,
    and 1 - alpha_bar_t ~t/T of them at the first steps: both miss the 1e-12 bound there."""
    beta_errors, snr_errors, ours = [], [], []
    for t in (1.0, 1.25, 1.5, 2.0, 3.0):
        point = dict(t=t, T=4000.0)
        level = float(paper_level(t, 4000.0))
        textbook_beta = 1 - level / float(paper_level(t - 1, 4000.0))
        textbook_snr = level / (1 - level)
        beta_errors.append(relative_error(textbook_beta, reference(COSINE, "beta", point)))
        snr_errors.append(relative_error(textbook_snr, reference(COSINE, "snr", point)))
        result = cosine_schedule(**point)
        ours += [relative_error(result.beta, reference(COSINE, "beta", point)),
                 relative_error(result.snr, reference(COSINE, "snr", point))]
    assert max(ours) <= 1e-12
    assert max(beta_errors) > 1e-12 and max(snr_errors) > 1e-12


# --- the cosine schedule: relations -------------------------------------------------------


@pytest.mark.parametrize("T", [1.0, 2.0, 7.0, 1000.0, 4000.0])
def test_the_product_of_one_minus_beta_is_alpha_bar(T):
    """alpha_bar_t = prod_{s<=t} (1 - beta_s) of the function's own betas at every step 0..T, the
    clipped last one included (Ho et al. 2020, Eq. 4; the chaining improved-diffusion and diffusers
    do): within 1e-12 relative. Step 0 is the data."""
    steps = np.arange(0.0, T + 1)
    result = cosine_schedule(steps, T)
    assert result.alpha_bar[0] == 1 and result.beta[0] == 0 and result.snr[0] == np.inf
    unclipped = result.beta < 0.999
    assert np.all(unclipped[:-1]) and not unclipped[-1]
    products = np.exp(np.cumsum(np.log1p(-result.beta)))
    np.testing.assert_allclose(result.alpha_bar, products, rtol=1e-12)
    # The clipped last step keeps 0.001 of alpha_bar_{T-1}: never 0, so the levels feed every formula.
    assert result.alpha_bar[-1] == pytest.approx(0.001 * result.alpha_bar[-2], rel=1e-13)
    assert result.snr[-1] == pytest.approx(result.alpha_bar[-1] / (1 - result.alpha_bar[-1]), rel=1e-13)


def test_agrees_with_the_usual_numpy_transcription():
    """improved-diffusion's betas_for_alpha_bar (cosines, 1 - ratio, clip) and its alphas_cumprod
    (the running product) for T = 1000: the same betas up to that transcription's cancellation
    (~1e-16/beta_t, below 5e-12 here), the same levels, 2.4287669e-9 at t = T."""
    T = 1000
    f = lambda u: np.cos((u / T + 0.008) / 1.008 * np.pi / 2) ** 2  # noqa: E731
    usual = np.array([min(1 - f(i + 1) / f(i), 0.999) for i in range(T)])
    ours = cosine_schedule(np.arange(1.0, T + 1), float(T))
    np.testing.assert_allclose(ours.beta, usual, rtol=1e-10)
    np.testing.assert_allclose(ours.alpha_bar, np.cumprod(1 - usual), rtol=1e-10)
    assert ours.alpha_bar[-1] == pytest.approx(2.4287669e-9, rel=1e-7)


def test_real_steps_below_one_take_their_variance_from_the_data():
    """0 < t < 1 interpolates between the data and step 1: alpha_bar_{t'} = 1 before it, so
    beta_t = 1 - alpha_bar_t, continuous at t = 0 and t = 1."""
    t = np.array([1e-9, 0.25, 0.5, 1 - 1e-12, 1.0])
    result = cosine_schedule(t, 100.0)
    # 1 - alpha_bar = 1/(1 + SNR), without the cancellation of 1 - alpha_bar near t = 0.
    np.testing.assert_allclose(result.beta, 1 / (1 + result.snr), rtol=1e-12)
    assert result.alpha_bar[0] < 1 and result.beta[0] == pytest.approx(0, abs=1e-12)
    assert result.beta[-2] == pytest.approx(result.beta[-1], rel=1e-9)


def test_snr_is_alpha_bar_over_one_minus_alpha_bar():
    t = np.linspace(1.0, 999.0, 50)
    result = cosine_schedule(t, 1000.0)
    np.testing.assert_allclose(result.snr, result.alpha_bar / (1 - result.alpha_bar), rtol=1e-12)
    # Noise only grows: alpha_bar and SNR fall, beta rises, along the schedule.
    assert np.all(np.diff(result.alpha_bar) < 0) and np.all(np.diff(result.snr) < 0)
    assert np.all(np.diff(result.beta) > 0)


def test_cosine_schedule_dtypes_and_broadcasting():
    result = cosine_schedule(np.array([1.0, 2.0, 3.0], np.float32), np.float32(10.0))
    assert all(value.dtype == np.float32 for value in result)
    t = np.linspace(1.0, 10.0, 4)[:, None]
    T = np.array([10.0, 20.0, 40.0])
    result = cosine_schedule(t, T)
    assert result.alpha_bar.shape == (4, 3)
    assert result.beta[2, 1] == cosine_schedule(t[2, 0], 20.0).beta


# --- the linear schedule --------------------------------------------------------------------


@settings(max_examples=40)
@given(point=parameter_strategy(LINEAR))
def test_linear_schedule_matches_mpmath_over_the_domain(point):
    assert_accurate(LINEAR, linear_schedule, point)


def test_linear_schedule_at_small_times():
    # exp(int beta) - 1 cancels at small t; expm1 keeps every digit.
    for t in (1e-12, 1e-9, 1e-6, 1e-3):
        point = dict(time=t, beta_min=0.1, beta_max=20.0)
        assert_accurate(LINEAR, linear_schedule, point)
        textbook = 1 / (math.exp(0.1 * t + 19.9 * t**2 / 2) - 1)
        if t <= 1e-9:
            assert relative_error(textbook, reference(LINEAR, "snr", point)) > 1e-12


def test_linear_schedule_is_the_vp_sde_marginal():
    """Two derivations that share no step: the VP SDE's marginal q(x_t | x_0) (moment ODEs) is
    N(sqrt(alpha_bar) x_0, 1 - alpha_bar), and 1 - alpha_bar = alpha_bar/SNR."""
    t, x0 = np.linspace(0.05, 1.0, 8), 1.7
    schedule = linear_schedule(t, 0.1, 20.0)
    marginal = diffusion_vpsde_marginal(x0, t, 0.1, 20.0)
    np.testing.assert_allclose(marginal.mean, np.sqrt(schedule.alpha_bar) * x0, rtol=1e-14)
    np.testing.assert_allclose(marginal.var, schedule.alpha_bar / schedule.snr, rtol=1e-13)


def test_the_discrete_product_is_ddpms_running_product():
    """SymPy's Gamma-function form of prod (1 - beta_i) against np.cumprod over Ho et al.'s
    schedule (1e-4 to 0.02 in 1000 steps); the running product's rounding is <= 1000 ulps."""
    betas = np.linspace(1e-4, 0.02, 1000)
    running = np.cumprod(1 - betas)
    with mpmath.workdps(40):
        first, increment = 1 - mpmath.mpf(1e-4), (mpmath.mpf(0.02) - mpmath.mpf(1e-4)) / 999
        exact = [float(mpmath.exp(MODULE.log_linear_product(n, first, increment))) for n in range(1, 1001)]
    np.testing.assert_allclose(running, exact, rtol=1e-12)
    # A falling schedule (the variances in reverse order) has the same last product.
    with mpmath.workdps(40):
        last = MODULE.log_linear_product(1000, 1 - mpmath.mpf(0.02), -increment)
    assert float(mpmath.exp(last)) == pytest.approx(running[-1], rel=1e-12)


def test_ddpm_is_not_its_continuous_limit_at_1000_steps():
    """With N steps of variance beta_i = beta(i/N)/N, the exact product misses exp(-int beta) by
    sum_i (beta_i^2/2 + beta_i^3/3 + ...) (log(1 - beta) = -beta - beta^2/2 - ...; at t = 1 the sum
    of the betas is the integral exactly): 6.5% for DDPM's 1000 steps, halving as N doubles."""
    gaps = []
    for steps in (1000, 2000, 4000):
        betas = np.linspace(0.1 / steps, 20.0 / steps, steps)
        with mpmath.workdps(40):
            low = mpmath.mpf(0.1) / steps
            log_product = MODULE.log_linear_product(steps, 1 - low, (mpmath.mpf(20.0) / steps - low) / (steps - 1))
        continuous = linear_schedule(1.0, 0.1, 20.0).alpha_bar
        gap = float(log_product) - math.log(continuous)
        assert gap == pytest.approx(np.sum(np.log1p(-betas) + betas), rel=1e-9)
        gaps.append(gap)
    assert 0.06 < -math.expm1(gaps[0]) < 0.07
    assert 1.98 < gaps[0] / gaps[1] < 2.02 and 1.98 < gaps[1] / gaps[2] < 2.02


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("arguments, message", [
    ((-0.5, 10.0), "argument 't' must be non-negative"),
    ((11.0, 10.0), "argument 't' must be <= T"),
    ((np.array([2.0, 12.0]), 10.0), "argument 't' must be <= T"),
    ((1.0, 0.0), "argument 'T' must be positive"),
    ((1.0, -5.0), "argument 'T' must be positive"),
    ((1.0, 0.5), "argument 'T' must be >= 1"),
    ((np.nan, 10.0), "argument 't' must be finite"),
    ((1.0, np.inf), "argument 'T' must be finite"),
])
def test_cosine_schedule_rejects_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=rf"diffusion_cosine_schedule: {message}"):
        cosine_schedule(*arguments)


@pytest.mark.parametrize("arguments, message", [
    ((-0.1, 0.1, 20.0), "argument 'time' must lie in"),
    ((1.5, 0.1, 20.0), "argument 'time' must lie in"),
    ((0.5, 0.0, 20.0), "argument 'beta_min' must be positive"),
    ((0.5, 0.1, -1.0), "argument 'beta_max' must be positive"),
])
def test_linear_schedule_rejects_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=rf"diffusion_linear_schedule: {message}"):
        linear_schedule(*arguments)


# --- the usual slips (declared in derivations/noise_schedules.py) ------------------------------


def test_the_clip_slip_is_refuted_on_long_schedules_too():
    """The unclipped beta differs only within ~0.033 steps of T; at the last step of T = 1000
    the paper's clip gives 0.999 where 1 - f(T)/f(T - 1) is 1."""
    assert cosine_schedule(1000.0, 1000.0).beta == 0.999
    unclipped = 1 - float(paper_level(1000.0, 1000.0) / paper_level(999.0, 1000.0))
    assert unclipped == 1.0
    assert cosine_schedule(1000.0 - 0.05, 1000.0).beta < 0.999 == cosine_schedule(1000.0 - 0.02, 1000.0).beta


def test_a_slip_shrinks_to_a_small_counterexample():
    # The missing f(0): f(0) = cos^2(s pi/(2 (1 + s))) = 0.99984, so the slip is 1.6e-4 off at
    # every step; shrinking finds a simple point.
    result = symgen.check("diffusion_cosine_schedule.alpha_bar", f"{F_T}**2")
    assert not result.verified and str(result).startswith("refuted")
    point = result.counterexample.point
    assert 0 <= point["t"] <= point["T"]


def test_symgen_check_verifies_the_paper_forms():
    # The levels chained through the clip: alpha_bar_t = alpha_bar_{t-1} max(f(t)/f(t-1), 0.001), step 0 the data.
    kept = f"Max({F_T}**2/{F_PREVIOUS}**2, 1/1000)"
    chained = f"({F_PREVIOUS}**2/{F_0}**2*{kept})"
    assert symgen.check("diffusion_cosine_schedule.alpha_bar", chained, examples=5).verified
    assert symgen.check("diffusion_cosine_schedule.beta", f"Min(1 - {F_T}**2/{F_PREVIOUS}**2, 999/1000)",
                        examples=5).verified
    assert symgen.check("diffusion_cosine_schedule.snr", f"{chained}/(1 - {chained})", examples=5).verified
    # f(t)/f(0) at every step is 0 at t = T, where the chained levels keep 0.001 of alpha_bar_{T-1}.
    assert not symgen.check("diffusion_cosine_schedule.alpha_bar", ALPHA_BAR, examples=5).verified
    assert symgen.check("diffusion_linear_schedule.snr", f"exp(-{INTEGRAL})/(1 - exp(-{INTEGRAL}))",
                        examples=5).verified


# --- DDPM's discrete linear schedule ---------------------------------------------------------------

from symgen import diffusion_discrete_linear_schedule  # noqa: E402
from symgen.numerics.schedules import log_levels  # noqa: E402


def ddpm_reference(T, beta_start, beta_end):
    """alpha_bar_t for t = 0..T: DDPM's linspace betas multiplied at 50 digits (mpmath)."""
    with mpmath.workdps(50):
        first, last = mpmath.mpf(beta_start), mpmath.mpf(beta_end)
        levels, level = [mpmath.mpf(1)], mpmath.mpf(1)
        for s in range(1, T + 1):
            level *= 1 - (first + (s - 1) * (last - first) / (T - 1))
            levels.append(level)
        return levels


@pytest.mark.parametrize("T, beta_start, beta_end", [(1000, 1e-4, 0.02), (4000, 1e-4, 0.02), (2, 1e-4, 0.02),
                                                     (50, 0.3, 0.9), (1000, 0.02, 1e-4)])
def test_discrete_linear_schedule_is_the_exact_product(T, beta_start, beta_end):
    """Every step 0..T within 1e-12 of the 50-digit product; the SNR within 1e-12 too (it is
    alpha_bar/(1 - alpha_bar) without the cancellation at small t)."""
    result = diffusion_discrete_linear_schedule(np.arange(T + 1), T, beta_start, beta_end)
    reference = ddpm_reference(T, beta_start, beta_end)
    assert max(relative_error(value, exact) for value, exact in zip(result.alpha_bar, reference)) <= 1e-12
    snr_errors = [relative_error(value, exact / (1 - exact)) for value, exact in zip(result.snr[1:], reference[1:])]
    assert max(snr_errors) <= 1e-12
    assert result.alpha_bar[0] == 1 and result.beta[0] == 0 and result.snr[0] == np.inf
    np.testing.assert_array_equal(result.beta[1:], np.linspace(beta_start, beta_end, T))
    # The function's own betas multiply to its alpha_bar (the chaining the issue asks for).
    np.testing.assert_allclose(np.exp(np.cumsum(np.log1p(-result.beta))), result.alpha_bar, rtol=1e-12)


def test_discrete_linear_schedule_is_not_its_continuous_limit():
    """diffusion_linear_schedule (continuous time, beta_min = T beta_start) differs from DDPM's discrete
    product by ~7% at the last step: the reason both are shipped."""
    discrete = diffusion_discrete_linear_schedule(1000, 1000, 1e-4, 0.02).alpha_bar
    continuous = linear_schedule(1.0, 0.1, 20.0).alpha_bar
    assert 0.05 < abs(discrete / continuous - 1) < 0.1


def test_the_compensated_sum_beats_a_plain_cumsum():
    betas = np.linspace(1e-4, 0.02, 4000)
    plain = np.concatenate([[0.0], np.cumsum(np.log1p(-betas))])
    ours = log_levels(betas)
    with mpmath.workdps(40):
        exact = [mpmath.fsum(mpmath.log1p(-mpmath.mpf(b)) for b in betas[:n]) for n in (1000, 4000)]
    for n, value in zip((1000, 4000), exact):
        assert abs(ours[n] - float(value)) <= abs(plain[n] - float(value))
        assert abs(ours[n] - float(value)) <= 2 * np.finfo(float).eps * abs(float(value))


@pytest.mark.parametrize("arguments, message", [
    ((1.5, 10, 1e-4, 0.02), "argument 't' must be a whole number"),
    ((11, 10, 1e-4, 0.02), "argument 't' must be <= T"),
    ((-1, 10, 1e-4, 0.02), "argument 't' must be non-negative"),
    ((1, 1, 1e-4, 0.02), "argument 'T' must lie in"),
    ((1, 10.5, 1e-4, 0.02), "argument 'T' must be a whole number"),
    ((1, 10, 0.0, 0.02), "argument 'beta_start' must lie in"),
    ((1, 10, 1e-4, 1.0), "argument 'beta_end' must lie in"),
])
def test_discrete_linear_schedule_rejects_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=rf"diffusion_discrete_linear_schedule: {message}"):
        diffusion_discrete_linear_schedule(*arguments)


def test_discrete_linear_schedule_broadcasts_over_settings():
    t = np.array([[0], [5], [10]])
    T = np.array([10, 20])
    result = diffusion_discrete_linear_schedule(t, T, 1e-4, 0.02)
    assert result.alpha_bar.shape == (3, 2)
    assert result.alpha_bar[1, 1] == diffusion_discrete_linear_schedule(5, 20, 1e-4, 0.02).alpha_bar
    f32 = np.float32
    assert diffusion_discrete_linear_schedule(f32(3), f32(10), f32(1e-4), f32(0.02)).alpha_bar.dtype == np.float32


# --- every schedule feeds the diffusion formulas at both ends --------------------------------------

from symgen import diffusion_marginal, diffusion_posterior, diffusion_predictions, score_diffusion  # noqa: E402


def schedules_over_whole_steps(T=1000):
    """alpha_bar at t = 0..T from each whole-step schedule of the catalogue."""
    steps = np.arange(T + 1.0)
    return {"cosine": cosine_schedule(steps, float(T)).alpha_bar,
            "ddpm linear": diffusion_discrete_linear_schedule(steps, T, 1e-4, 0.02).alpha_bar,
            "continuous linear": np.concatenate([[1.0], linear_schedule(steps[1:] / T, 0.1, 20.0).alpha_bar])}


@pytest.mark.parametrize("name", ["cosine", "ddpm linear", "continuous linear"])
def test_every_schedule_feeds_the_diffusion_formulas(name):
    """The marginal at every step 0..T, the posterior, the score and the predictions at every step
    1..T, without error; at t = 0 the marginal is x_t = x_0 exactly, and the posterior variance
    at t = 1 is +0.0 (x_0 is known there), never -0.0."""
    alpha_bar = schedules_over_whole_steps()[name]
    x0, eps = 0.75, -1.25
    mean, var = diffusion_marginal(x0, alpha_bar)
    assert mean[0] == x0 and var[0] == 0 and np.all(var[1:] > 0)
    xt = mean + np.sqrt(var) * eps
    posterior = diffusion_posterior(x0, xt[1:], alpha_bar[1:], alpha_bar[:-1])
    assert posterior.var[0] == 0 and not np.signbit(posterior.var[0]) and np.all(posterior.var[1:] > 0)
    assert posterior.mean[0] == pytest.approx(x0, rel=1e-15)
    np.testing.assert_allclose(score_diffusion(x0, xt[1:], alpha_bar[1:]), -eps / np.sqrt(var[1:]), rtol=1e-9)
    predictions = diffusion_predictions(xt[1:], alpha_bar[1:], eps)
    np.testing.assert_allclose(predictions.x0, x0, rtol=1e-6)


def test_zero_signal_is_pure_noise():
    """alpha_bar = 0 (the last step of a zero-terminal-SNR schedule): x_t ~ N(0, 1), the posterior
    of the last step is the marginal at alpha_bar_prev, and the score is -x_t."""
    assert tuple(diffusion_marginal(2.0, 0.0)) == (0.0, 1.0)
    mean, var = diffusion_posterior(2.0, -0.5, 0.0, 0.3)
    assert mean == pytest.approx(np.sqrt(0.3) * 2.0, rel=1e-15) and var == pytest.approx(0.7, rel=1e-15)
    assert score_diffusion(2.0, -0.5, 0.0) == 0.5


def test_step_zero_is_the_data_without_a_warning():
    """The SNR of step 0 (time 0) is infinite: the answer, computed without NumPy's divide-by-zero
    warning (the derivations declare it with infinite_at)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tuple(cosine_schedule(0.0, 10.0)) == (1.0, 0.0, np.inf)
        assert tuple(linear_schedule(0.0, 0.1, 20.0)) == (1.0, np.inf)
        assert tuple(diffusion_discrete_linear_schedule(0, 10, 1e-4, 0.02)) == (1.0, 0.0, np.inf)

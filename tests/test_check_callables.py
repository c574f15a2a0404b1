"""symgen.check on a user's own code: Python callables, matched to the derivation's
parameters, judged by the proved closed form (with the rounding float64 code may make)
and by the empirical checks; their accuracy reported apart from the verdict."""
import math

import numpy as np
import pytest

import symgen
from symgen.engine.callables import CandidateError, callable_candidate, match_parameters
from symgen.engine.judge import JUDGE_POINTS, format_value

KL_NORMAL = symgen.derivation("kl_normal")


def textbook_kl(loc_p, scale_p, loc_q, scale_q):
    # Kingma & Welling (2014), App. B, as most code writes it: cancels near p = q.
    return np.log(scale_q / scale_p) + (scale_p**2 + (loc_p - loc_q) ** 2) / (2 * scale_q**2) - 0.5


def vae_kl(mu, log_var):
    # The VAE's KL term to N(0, 1) per latent, in the usual PyTorch spelling.
    return -0.5 * (1 + log_var - mu**2 - np.exp(log_var))


# --- matching the candidate's parameters ------------------------------------------------


def test_parameters_are_matched_by_name_then_by_position_or_by_args():
    assert match_parameters(textbook_kl, KL_NORMAL) == ([], {name: name for name in KL_NORMAL.param_names})
    assert match_parameters(lambda a, b, c, d: 0, KL_NORMAL) == (KL_NORMAL.param_names, {})
    std = symgen.derivation("kl_std_normal")
    assert match_parameters(vae_kl, std, {"mu": "loc", "log_var": "logvar"}) == (
        [], {"mu": "loc", "log_var": "logvar"})


@pytest.mark.parametrize("function, args, message", [
    (lambda a, b: a, None, r"cannot match the candidate's parameters \(a, b\) to kl_normal's "
                           r"\(loc_p, scale_p, loc_q, scale_q\)"),
    (vae_kl, {"mu": "loc"}, r"\['log_var'\] are not in args"),
    (vae_kl, {"mu": "loc", "log_var": "sigma"}, r"\['sigma'\], which are not parameters"),
    (vae_kl, {"mu": "loc", "log_var": "logvar", "beta": "loc"}, r"\['beta'\], which the candidate"),
])
def test_parameters_that_do_not_match_are_a_value_error_naming_them(function, args, message):
    found = symgen.derivation("kl_std_normal") if function is vae_kl else KL_NORMAL
    with pytest.raises(ValueError, match=message):
        match_parameters(function, found, args)


def test_a_candidate_returning_too_few_outputs_is_told_to_return_the_tuple():
    with pytest.raises(CandidateError, match="must return all 2 as a tuple"):
        symgen.check("diffusion_posterior", lambda x0, xt, alpha_bar_t, alpha_bar_prev: x0)


def test_a_function_that_reduces_its_input_is_called_once_per_point():
    # Returns the mean over whatever it is given: a single point's value for one point,
    # not one value per point for arrays. It must not be taken to broadcast.
    wrapped = callable_candidate(lambda *a: np.mean(textbook_kl(*a)), KL_NORMAL, ("kl_normal",))
    points = [KL_NORMAL.sample_point(np.random.default_rng(seed)) for seed in range(5)]
    values = wrapped.at_points(points)["kl_normal"]
    assert wrapped.broadcasts is False
    assert values == pytest.approx([symgen.kl_normal(**point) for point in points], rel=1e-12)


# --- verdicts -----------------------------------------------------------------------------


def test_a_correct_formula_that_cancels_is_verified_and_its_lost_digits_reported():
    result = symgen.check("kl_normal", textbook_kl)
    assert result.verified, result
    assert result.judgement.points >= JUDGE_POINTS
    # Near p = q the KL is ~1e-24 and the textbook form's rounding ~1e-16: no digit left.
    assert result.max_relative_error > 1e-3
    assert result.digits_lost >= 12
    point = result.worst_point
    assert math.isclose(point["loc_p"], point["loc_q"], rel_tol=1e-6)
    assert "the right quantity, loses" in str(result)


def test_a_per_point_function_with_math_is_verified():
    def kl(loc_p, scale_p, loc_q, scale_q):
        return math.log(scale_q / scale_p) + (scale_p**2 + (loc_p - loc_q) ** 2) / (2 * scale_q**2) - 0.5

    result = symgen.check("kl_normal", kl)
    assert result.verified, result
    assert any("once per point" in note for note in result.notes)


def test_args_map_the_users_names():
    result = symgen.check("kl_std_normal", vae_kl, args={"mu": "loc", "log_var": "logvar"})
    assert result.verified, result
    # exp(logvar) - 1 - logvar cancels near logvar = 0: the judged points near zero find it.
    assert result.max_relative_error > 0.1
    assert abs(result.worst_point["logvar"]) < 1e-6


@pytest.mark.parametrize("factor", [1.005, 1 + 1e-6, 0.99])
def test_a_callable_off_by_a_factor_is_refuted_by_the_closed_form(factor):
    result = symgen.check("kl_normal", lambda *a: factor * textbook_kl(*a), examples=5)
    assert not result.verified
    assert result.counterexample.check == "the proved closed form"
    ce = result.counterexample
    assert ce.candidate == pytest.approx(factor * ce.estimate, rel=1e-6)


def posterior(x0, xt, alpha_bar_t, alpha_bar_prev):
    # DDPM (Ho et al. 2020, eq. 7) with beta_t from the ratio of the alpha_bars, and
    # sqrt(alpha_t) computed as sqrt(1 - beta_t): right, but it loses digits where
    # alpha_bar_t / alpha_bar_prev is tiny (1 - (1 - a) in float64).
    beta = 1 - alpha_bar_t / alpha_bar_prev
    mean = (np.sqrt(alpha_bar_prev) * beta / (1 - alpha_bar_t)) * x0 \
        + (np.sqrt(1 - beta) * (1 - alpha_bar_prev) / (1 - alpha_bar_t)) * xt
    return mean, beta * (1 - alpha_bar_prev) / (1 - alpha_bar_t)


def test_a_tuple_of_outputs_is_judged_output_by_output_and_rounding_is_not_a_refutation():
    result = symgen.check("diffusion_posterior", posterior)
    assert result.verified, result
    assert result.judgement.points >= JUDGE_POINTS


def test_an_error_confined_to_a_corner_is_refuted_there():
    def corner(x0, xt, alpha_bar_t, alpha_bar_prev):
        mean, var = posterior(x0, xt, alpha_bar_t, alpha_bar_prev)
        return mean, np.where(alpha_bar_prev > 0.94, 1.01 * var, var)

    result = symgen.check("diffusion_posterior", corner, examples=5)
    assert not result.verified
    assert result.counterexample.point["alpha_bar_prev"] > 0.94
    assert result.counterexample.output == "var"


def test_a_removable_zero_over_zero_is_judged_by_its_neighbours():
    # (b^2 - a^2)/((b - a)(b + a)) = 1 except at a = b, where it is 0/0; the judged edge
    # points include alpha_bar_t = alpha_bar_prev.
    def var(alpha_bar_t, alpha_bar_prev):
        ratio = (alpha_bar_prev**2 - alpha_bar_t**2) / ((alpha_bar_prev - alpha_bar_t) * (alpha_bar_prev + alpha_bar_t))
        return ratio * (1 - alpha_bar_t / alpha_bar_prev) * (1 - alpha_bar_prev) / (1 - alpha_bar_t)

    with np.errstate(all="ignore"):
        result = symgen.check("diffusion_posterior.var", var, examples=5)
    assert result.verified, result
    assert any("no value at" in note for note in result.notes), result.notes


def test_a_removable_zero_over_zero_in_a_formula_is_judged_by_its_neighbours():
    formula = ("(alpha_bar_prev**2 - alpha_bar_t**2)/((alpha_bar_prev - alpha_bar_t)*(alpha_bar_prev + alpha_bar_t))"
               "*(1 - alpha_bar_t/alpha_bar_prev)*(1 - alpha_bar_prev)/(1 - alpha_bar_t)")
    result = symgen.check("diffusion_posterior.var", formula, examples=5)
    assert result.verified, result
    assert any("0/0 at" in note and "by its limit" in note for note in result.notes), result.notes
    assert "error: )" not in str(result)


def test_a_formula_is_proved_equal_where_sympy_can():
    result = symgen.check("kl_std_normal", "(loc**2 + exp(logvar) - 1 - logvar)/2", examples=5)
    assert result.verified and result.judgement.proved, result


# --- torch ------------------------------------------------------------------------------


def normal_kl(mean1, logvar1, mean2, logvar2):
    # improved-diffusion's KL between Gaussians given log-variances (Nichol & Dhariwal
    # 2021), in torch: the textbook form, which cancels near p = q.
    import torch

    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2)
                  + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def test_a_torch_function_is_verified_with_its_gradient():
    torch = pytest.importorskip("torch")

    def kl(loc_p, scale_p, loc_q, scale_q):
        return normal_kl(loc_p, 2 * torch.log(scale_p), loc_q, 2 * torch.log(scale_q))

    result = symgen.check("kl_normal", kl, grad=True)
    assert result.verified, result
    assert any(note.startswith("gradient: agrees") for note in result.notes), result.notes


def test_a_torch_function_with_a_detached_argument_is_refuted_by_its_gradient():
    torch = pytest.importorskip("torch")

    def kl(loc_p, scale_p, loc_q, scale_q):
        return normal_kl(loc_p, 2 * torch.log(scale_p), loc_q.detach(), 2 * torch.log(scale_q))

    assert symgen.check("kl_normal", kl, examples=5).verified       # right in value
    result = symgen.check("kl_normal", kl, grad=True, examples=5)
    assert not result.verified
    assert "derivative d/dloc_q" in result.counterexample.check


def test_float32_code_is_judged_by_float32_rounding():
    pytest.importorskip("torch")

    def kl(loc, logvar):
        loc, logvar = loc.float(), logvar.float()
        return -0.5 * (1 + logvar - loc**2 - logvar.exp())

    result = symgen.check("kl_std_normal", kl, examples=5)
    assert result.verified, result
    assert 1e-9 < result.max_relative_error
    wrong = symgen.check("kl_std_normal", lambda loc, logvar: 1.005 * kl(loc, logvar), examples=5)
    assert not wrong.verified


# --- what is printed ------------------------------------------------------------------


def test_points_print_with_every_digit_needed_to_reproduce_them():
    assert format_value(1 - 1e-12) == "0.999999999999"
    assert float(format_value(1 - 1e-12)) == 1 - 1e-12
    assert float(format_value(0.1 + 0.2)) == 0.1 + 0.2
    assert format_value(np.array([1e-300, 2.5])) == "[1e-300, 2.5]"


def test_numpy_code_is_recomputed_at_60_digits_to_tell_rounding_from_another_formula():
    # At alpha_bar_t = 3e-25, 1 - (1 - a) is 0 in float64 and in extended precision alike;
    # the same NumPy code given 60-digit numbers computes its own formula, which is right.
    found = symgen.derivation("diffusion_posterior")
    wrapped = callable_candidate(posterior, found, ("mean", "var"))
    wrapped.backend = "numpy"
    point = {"x0": 0.0, "xt": 3.0, "alpha_bar_t": 3e-25, "alpha_bar_prev": 0.5}
    assert posterior(**point)[0] == 0.0
    values, precision = wrapped.in_other_precision(point)
    assert precision == "60 digits"
    assert float(values["mean"]) == pytest.approx(float(symgen.diffusion_posterior(**point)[0]), rel=1e-14)
    # A formula that is wrong stays wrong at 60 digits.
    wrong = callable_candidate(lambda *a: 1.01 * posterior(*a)[1], found, ("var",))
    wrong.backend = "numpy"
    values, _ = wrong.in_other_precision(point)
    assert float(values["var"]) == pytest.approx(1.01 * float(symgen.diffusion_posterior(**point)[1]), rel=1e-14)


def test_counts_reach_the_candidate_as_integers():
    def expected_modes(modes, draws):
        # One mode after another: the chance the k-th draw finds a new one (needs range(draws)).
        return modes * sum((1 - 1 / modes) ** k / modes for k in range(draws))

    assert symgen.check("expected_modes_covered", expected_modes, examples=5).verified


def mixture_score(x, weight, loc1, scale1, loc2, scale2):
    # The score of a two-component mixture from its densities: both underflow to 0 far from
    # the modes (x = -41 with scales ~0.05), where float64 gives 0/0.
    p1 = weight * np.exp(-(x - loc1) ** 2 / (2 * scale1**2)) / scale1
    p2 = (1 - weight) * np.exp(-(x - loc2) ** 2 / (2 * scale2**2)) / scale2
    return (p1 * (loc1 - x) / scale1**2 + p2 * (loc2 - x) / scale2**2) / (p1 + p2)


def test_an_underflow_to_nan_is_rounding_when_the_same_code_at_60_digits_is_right():
    with np.errstate(all="ignore"):
        right = symgen.check("score_mixture", mixture_score, examples=5)
        wrong = symgen.check("score_mixture", lambda *a: 1.005 * mixture_score(*a), examples=5)
    assert right.verified, right
    assert "no float64 value" in str(right)
    assert not wrong.verified
    assert math.isfinite(wrong.counterexample.candidate)     # a point where it has a value

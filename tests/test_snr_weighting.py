"""Min-SNR-gamma loss weights and the zero-terminal-SNR rescaling (derivations/snr_weighting.py):
against the formulas of the training code people run (diffusers' compute_snr and Min-SNR weights,
Lin et al.'s Algorithm 1 in NumPy on DDPM's schedule), the lemma the weights rest on, exact
endpoints, and the cancellations the stable forms avoid.

Accuracy over the declared domains, the checks' power and the backends are covered
catalogue-wide (tests/test_accuracy.py, tests/test_mutations.py, tests/test_proofs.py,
tests/test_float32.py, tests/test_backends.py).
"""
import mpmath
import numpy as np
import pytest

import symgen
from symgen import diffusion_min_snr_weight, diffusion_zero_terminal_snr

MIN_SNR = symgen.derivation("diffusion_min_snr_weight")
MODULE = MIN_SNR.module


def ddpm_alphas_cumprod(steps=1000):
    """DDPM's linear schedule (Ho et al. 2020, Sec. 4): betas from 1e-4 to 0.02 over T = 1000 steps."""
    return np.cumprod(1 - np.linspace(1e-4, 0.02, steps))


def compute_snr(alphas_cumprod):
    """diffusers' compute_snr (training_utils.py), written out: (alpha/sigma)^2 with alpha =
    sqrt(alphas_cumprod), sigma = sqrt(1 - alphas_cumprod)."""
    alpha, sigma = alphas_cumprod**0.5, (1.0 - alphas_cumprod) ** 0.5
    return (alpha / sigma) ** 2


def diffusers_min_snr_weights(snr, gamma, prediction_type):
    """The Min-SNR weights of diffusers' training scripts, written out: min over the stacked
    (snr, gamma) divided by snr for epsilon prediction and by snr + 1 for v_prediction; the
    Min-SNR authors' code uses min(snr, gamma) itself for x_0 ("sample") prediction."""
    clamped = np.stack([snr, gamma * np.ones_like(snr)], axis=1).min(axis=1)
    divisor = {"epsilon": snr, "v_prediction": snr + 1, "sample": np.ones_like(snr)}[prediction_type]
    return clamped / divisor


# --- Min-SNR-gamma ---------------------------------------------------------------------------


def test_the_error_ratios_are_proved():
    assert "proved" in MODULE.ERRORS_IN_X0_UNITS.prove()


@pytest.mark.parametrize("gamma", [1.0, 5.0, 20.0])
def test_min_snr_weights_match_diffusers_on_ddpm_timesteps(gamma):
    snr = compute_snr(ddpm_alphas_cumprod())
    weights = diffusion_min_snr_weight(snr, gamma)
    for output, prediction_type in (("eps", "epsilon"), ("v", "v_prediction"), ("x0", "sample")):
        np.testing.assert_allclose(getattr(weights, output), diffusers_min_snr_weights(snr, gamma, prediction_type),
                                   rtol=1e-15, atol=0, err_msg=output)


def test_the_weighted_losses_are_the_clamped_x0_loss_in_a_training_step():
    """Per example of a float64 batch: each network's weighted squared error equals min(SNR, gamma)
    times the squared error of the x_0 it implies (DDPM Eq. 4 and Salimans & Ho's conversions)."""
    rng = np.random.default_rng(3)
    alphas_cumprod = ddpm_alphas_cumprod()
    steps = rng.integers(0, 1000, 64)
    level = alphas_cumprod[steps][:, None]
    clean, noise = rng.standard_normal((2, 64, 32))
    noisy = np.sqrt(level) * clean + np.sqrt(1 - level) * noise
    velocity = np.sqrt(level) * noise - np.sqrt(1 - level) * clean
    snr = compute_snr(alphas_cumprod[steps])
    weights = diffusion_min_snr_weight(snr, 5.0)
    clamped = np.minimum(snr, 5.0)
    eps_hat, x0_hat, v_hat = rng.standard_normal((3, 64, 32))
    from_eps = (noisy - np.sqrt(1 - level) * eps_hat) / np.sqrt(level)
    from_v = np.sqrt(level) * noisy - np.sqrt(1 - level) * v_hat
    for weight, own, implied in ((weights.eps, np.sum((noise - eps_hat) ** 2, 1), from_eps),
                                 (weights.x0, np.sum((clean - x0_hat) ** 2, 1), x0_hat),
                                 (weights.v, np.sum((velocity - v_hat) ** 2, 1), from_v)):
        np.testing.assert_allclose(weight * own, clamped * np.sum((clean - implied) ** 2, 1), rtol=1e-9)


def test_the_clamp_branches():
    snr = np.array([1e-10, 0.3, 4.999, 5.0, 5.001, 1e3, 1e10])
    weights = diffusion_min_snr_weight(snr, 5.0)
    below = snr < 5.0
    assert np.all(weights.eps[below] == 1.0)                  # SNR/SNR is exactly 1
    np.testing.assert_allclose(weights.eps[~below], 5.0 / snr[~below], rtol=1e-16)
    np.testing.assert_allclose(weights.x0, np.minimum(snr, 5.0), rtol=0)
    np.testing.assert_allclose(weights.v, np.minimum(snr, 5.0) / (snr + 1), rtol=2e-16)
    assert np.all(weights.v <= 5.0 / 6.0 + 1e-16)              # at most gamma/(gamma + 1), at SNR = gamma


def test_a_zero_snr_is_rejected_not_divided_by():
    """At zero terminal SNR (the last step of a rescaled schedule) min(SNR, gamma)/SNR is 0/0 (its
    limit is 1; diffusers' scripts set that weight by hand): the function asks for SNR > 0."""
    with pytest.raises(ValueError, match="snr"):
        diffusion_min_snr_weight(0.0, 5.0)


# --- zero terminal SNR -----------------------------------------------------------------------


def algorithm_1(betas):
    """Lin et al. (2024), Algorithm 1, in NumPy (the paper writes it in torch): betas in, betas out."""
    alphas_bar = np.cumprod(1 - betas)
    alphas_bar_sqrt = np.sqrt(alphas_bar)
    first, last = alphas_bar_sqrt[0].copy(), alphas_bar_sqrt[-1].copy()
    alphas_bar_sqrt -= last
    alphas_bar_sqrt *= first / (first - last)
    alphas_bar = alphas_bar_sqrt**2
    alphas = np.concatenate([alphas_bar[:1], alphas_bar[1:] / alphas_bar[:-1]])
    return 1 - alphas


def test_algorithm_1_on_ddpm_agrees_at_every_step():
    betas = np.linspace(1e-4, 0.02, 1000)
    levels = np.cumprod(1 - betas)
    rescaled_betas = algorithm_1(betas)
    assert rescaled_betas[-1] == 1.0                          # the last step is pure noise
    from_algorithm = np.cumprod(1 - rescaled_betas)
    ours = diffusion_zero_terminal_snr(levels, levels[0], levels[-1])
    np.testing.assert_allclose(ours.alpha_bar, from_algorithm, rtol=1e-12, atol=0)
    assert ours.snr[-1] == 0.0 and ours.alpha_bar[-1] == 0.0
    assert ours.alpha_bar[0] == pytest.approx(levels[0], rel=4e-16)
    np.testing.assert_allclose(ours.snr[:-1], compute_snr(from_algorithm[:-1]), rtol=1e-11)
    # The rescaling lowers every SNR but the first, and keeps the order of the steps.
    assert np.all(ours.snr[1:] < compute_snr(levels)[1:]) and np.all(np.diff(ours.alpha_bar) < 0)


def test_the_endpoints_are_exact():
    for first, last in [(0.9999, 4.036e-5), (0.99915, 0.0047), (0.5, 0.49), (1 - 1e-12, 1e-12)]:
        at_last = diffusion_zero_terminal_snr(last, first, last)
        assert at_last.alpha_bar == 0.0 and at_last.snr == 0.0
        at_first = diffusion_zero_terminal_snr(first, first, last)
        assert at_first.alpha_bar == pytest.approx(first, rel=4e-16)
        assert at_first.snr == pytest.approx(first / (1 - first), rel=1e-15 / (1 - first) * 1e-3 + 4e-16)


def exact(alpha_bar, first, last):
    """(alpha_bar', SNR') by Algorithm 1's arithmetic at 60 digits."""
    with mpmath.workdps(60):
        root, root_first, root_last = (mpmath.sqrt(mpmath.mpf(v)) for v in (alpha_bar, first, last))
        rescaled = ((root - root_last) * root_first / (root_first - root_last)) ** 2
        return rescaled, rescaled / (1 - rescaled)


@pytest.mark.parametrize("alpha_bar, first, last", [
    (4.0e-5 * (1 + 1e-9), 0.9999, 4.0e-5),        # next to the last step: sqrt differences cancel
    (0.0047 * (1 + 1e-12), 0.99915, 0.0047),
    (0.3, 0.3 * (1 + 1e-10), 0.3 * (1 - 1e-10)),  # first and last nearly equal
    (1 - 3.7e-10, 1 - 1.3e-10, 0.0123),           # next to a first level near 1: 1 - alpha_bar' is small
])
def test_the_stable_forms_keep_their_digits_where_algorithm_1_does_not(alpha_bar, first, last):
    ours = diffusion_zero_terminal_snr(alpha_bar, first, last)
    reference = exact(alpha_bar, first, last)
    for value, truth in zip(ours, reference):
        assert float(abs(value - truth) / truth) < 1e-13
    # Algorithm 1's float64 arithmetic on the same three levels loses digits here.
    root, root_first, root_last = np.sqrt([alpha_bar, first, last])
    textbook = ((root - root_last) * root_first / (root_first - root_last)) ** 2
    textbook_snr = textbook / (1 - textbook)
    errors = [float(abs(v - t) / t) for v, t in zip((textbook, textbook_snr), reference)]
    assert max(errors) > 1e-10


@pytest.mark.parametrize("arguments, message", [
    ((0.5, 0.4, 0.1), "alpha_bar_first"),
    ((0.05, 0.9, 0.1), "alpha_bar_last"),
    ((0.5, 0.5, 0.5), "alpha_bar_last"),
    ((0.5, 1.0, 0.1), "alpha_bar_first"),
])
def test_bad_levels_are_rejected(arguments, message):
    with pytest.raises(ValueError, match=message):
        diffusion_zero_terminal_snr(*arguments)

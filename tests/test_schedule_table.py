"""diffusion_schedule_table: the arrays improved-diffusion's GaussianDiffusion precomputes, from any
schedule's levels, against improved-diffusion's own formulas written out here (NumPy)."""
import math

import numpy as np
import pytest

import symgen
from symgen import diffusion_cosine_schedule, diffusion_discrete_linear_schedule, diffusion_schedule_table


def improved_diffusion_arrays(betas):
    """GaussianDiffusion.__init__ of improved-diffusion (gaussian_diffusion.py), transcribed."""
    alphas_cumprod = np.cumprod(1.0 - betas)
    alphas_cumprod_prev = np.append(1.0, alphas_cumprod[:-1])
    posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
    return dict(
        betas=betas, alphas_cumprod=alphas_cumprod, alphas_cumprod_prev=alphas_cumprod_prev,
        posterior_variance=posterior_variance,
        posterior_log_variance_clipped=np.log(np.append(posterior_variance[1], posterior_variance[1:])),
        posterior_mean_coef1=betas * np.sqrt(alphas_cumprod_prev) / (1.0 - alphas_cumprod),
        posterior_mean_coef2=(1.0 - alphas_cumprod_prev) * np.sqrt(1.0 - betas) / (1.0 - alphas_cumprod))


def cosine_betas(T):
    f = lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    return np.array([min(1 - f((i + 1) / T) / f(i / T), 0.999) for i in range(T)])


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_the_table_is_improved_diffusions(schedule):
    """Every array within 1e-10 of the transcription (whose 1 - ratio betas carry ~1e-12 of
    cancellation), the first step's 0 and the clipped log-variance included."""
    T = 1000
    steps = np.arange(1, T + 1)
    if schedule == "cosine":
        ours = diffusion_schedule_table(diffusion_cosine_schedule(steps, T).alpha_bar)
        theirs = improved_diffusion_arrays(cosine_betas(T))
    else:
        ours = diffusion_schedule_table(diffusion_discrete_linear_schedule(steps, T, 1e-4, 0.02).alpha_bar)
        theirs = improved_diffusion_arrays(np.linspace(1e-4, 0.02, T))
    for name, expected in theirs.items():
        np.testing.assert_allclose(getattr(ours, name), expected, rtol=1e-10, atol=0, err_msg=name)
    assert ours.posterior_variance[0] == 0 and not np.signbit(ours.posterior_variance[0])
    assert ours.posterior_log_variance_clipped[0] == ours.posterior_log_variance_clipped[1]


def test_the_table_takes_a_zero_terminal_snr_schedule():
    T = 1000
    levels = diffusion_discrete_linear_schedule(np.arange(1, T + 1), T, 1e-4, 0.02).alpha_bar
    first, last = levels[0], levels[-1]
    rescaled = symgen.diffusion_zero_terminal_snr(levels, first, last).alpha_bar
    assert rescaled[-1] == 0
    table = diffusion_schedule_table(rescaled)
    assert table.betas[-1] == 1 and np.all(np.isfinite(table.posterior_log_variance_clipped))


@pytest.mark.parametrize("levels, message", [
    (np.array([0.5]), "must be 1-D with at least two steps"),
    (np.array([0.9, 1.0]), "must lie in"),
    (np.array([0.5, 0.6]), "must be non-increasing"),
    (np.array([0.9, np.nan]), "must be finite"),
])
def test_bad_levels_are_named(levels, message):
    with pytest.raises(ValueError, match=f"diffusion_schedule_table: argument 'alpha_bar' {message}"):
        diffusion_schedule_table(levels)

"""The per-step tables a DDPM sampler keeps, from any schedule's levels (``from symgen import
diffusion_schedule_table``).

improved-diffusion's ``GaussianDiffusion`` and diffusers' ``DDPMScheduler`` precompute, for the steps
t = 1..T (their indices 0..T-1), the betas, the levels alpha_bar_t and alpha_bar_{t-1}, the posterior
q(x_{t-1} | x_t, x_0) = N(coef1 x_0 + coef2 x_t, var) of each step (Ho et al. 2020, Eqs. 6-7) and the
log of its variance, clipped at the first step where the variance is 0 (improved-diffusion takes the
second step's there). Here each entry comes from the catalogue's derived functions, so every one is
as accurate as they are: the betas by the exact subtraction (alpha_bar_{t-1} - alpha_bar_t)/alpha_bar_{t-1},
the posterior by ``diffusion_posterior``.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from symgen.numerics.validate import check_interval, fail

DiffusionScheduleTable = namedtuple("DiffusionScheduleTable", [
    "betas", "alphas_cumprod", "alphas_cumprod_prev", "posterior_variance", "posterior_log_variance_clipped",
    "posterior_mean_coef1", "posterior_mean_coef2"])


def diffusion_schedule_table(alpha_bar, *, validate=True, function="diffusion_schedule_table"):
    r"""The arrays a DDPM sampler precomputes, from the levels alpha_bar_1..alpha_bar_T of any schedule.

    .. math::

        \beta_t = \frac{\bar\alpha_{t-1} - \bar\alpha_t}{\bar\alpha_{t-1}},\qquad
        \tilde\beta_t = \frac{1 - \bar\alpha_{t-1}}{1 - \bar\alpha_t}\,\beta_t,\qquad
        \tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1 - \bar\alpha_t}\,x_0
                    + \frac{\sqrt{1 - \beta_t}\,(1 - \bar\alpha_{t-1})}{1 - \bar\alpha_t}\,x_t

    (Ho et al. 2020, Eqs. 6-7), with alpha_bar_0 = 1.

    Parameters
    ----------
    alpha_bar : array_like, shape (T,)
        alpha_bar_t at the steps t = 1..T (``diffusion_cosine_schedule(numpy.arange(1, T + 1), T).alpha_bar``,
        say): at least two steps, in [0, 1), non-increasing. A zero-terminal-SNR schedule's last 0 is allowed.

    Returns
    -------
    DiffusionScheduleTable
        ``betas``, ``alphas_cumprod``, ``alphas_cumprod_prev``, ``posterior_variance``,
        ``posterior_log_variance_clipped``, ``posterior_mean_coef1`` (of x_0), ``posterior_mean_coef2``
        (of x_t): arrays of shape (T,) named and indexed as improved-diffusion's ``GaussianDiffusion``
        names them (index t - 1 for step t). The posterior variance at step 1 is 0 (x_0 is known
        there); its log is clipped to the second step's, as improved-diffusion does.
    """
    from symgen.formulas.diffusion import diffusion_posterior

    levels = np.asarray(alpha_bar, dtype=np.float64)
    if validate:
        if levels.ndim != 1 or levels.shape[0] < 2:
            raise fail(function, "alpha_bar", f"must be 1-D with at least two steps, got shape {levels.shape}")
        check_interval(function, "alpha_bar", levels, 0.0, 1.0, True, False)
        if np.any(np.diff(levels) > 0):
            raise fail(function, "alpha_bar", "must be non-increasing (noise only grows along the chain)")
    previous = np.concatenate([[1.0], levels[:-1]])
    betas = (previous - levels) / previous          # exact subtraction where the levels nearly agree
    coef1 = diffusion_posterior(1.0, 0.0, levels, previous, validate=False).mean
    coef2 = diffusion_posterior(0.0, 1.0, levels, previous, validate=False).mean
    variance = diffusion_posterior(0.0, 0.0, levels, previous, validate=False).var
    log_variance_clipped = np.log(np.concatenate([variance[1:2], variance[1:]]))
    return DiffusionScheduleTable(betas, levels, previous, variance, log_variance_clipped, coef1, coef2)

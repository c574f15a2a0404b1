"""A corpus of user candidates for ``symgen.check``: formulas as people write them in their own
code, standing in for the candidates symgen will be handed but that are not in this repository.

Each candidate is a formula for one derivation of the catalogue (or one output of it):

- correct ones written differently from the catalogue: NumPy-syntax and SymPy-syntax strings,
  NumPy functions that broadcast (some with their own parameter names, mapped by ``args=``),
  a positional-only lambda, functions that take one point at a time (``math.``, SciPy's
  ``sqrtm``), torch functions in the style of improved-diffusion, pytorch/examples and
  pytorch-fid, and a function returning the tuple of all outputs;
- wrong ones: 0.5% off, off by a constant, a sign error, arguments swapped, a missing term,
  errors confined to a corner of the domain, the Fréchet distance with sqrtm(cov1) sqrtm(cov2)
  in place of the principal root of cov1 cov2.

Every function below was written for this corpus, in the style of the codebase it cites (the
formula, the argument names, the idioms), not copied from it.

``test_the_corpus_is_what_it_says`` checks the corpus itself with plain NumPy against the
shipped functions (``symgen.kl_normal`` ...) at random domain points, without the engine: the
correct candidates agree to 1e-10, the wrong ones differ somewhere. The main tests then ask
``symgen.check`` for the verdict; they are marked ``slow`` (about a second or more of CPU each),
so ``pytest -m "not slow"`` leaves them out.
"""
from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import sympy as sp

import symgen

# --- the candidates -----------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A user's formula for ``name`` (a derivation, or NAME.OUTPUT).

    ``build`` returns what the user hands to ``symgen.check`` (a string or a callable); it is
    called only when needed, so torch is imported only by the torch candidates. ``where``, for
    a wrong candidate whose error is confined to a corner of the domain, says which points of
    the domain are in that corner (the sanity test draws some there)."""

    id: str
    name: str
    kind: str
    correct: bool
    build: Callable[[], object]
    args: dict | None = None
    torch: bool = False
    where: Callable[[dict], bool] | None = None
    note: str = ""
    #: how close a correct candidate comes to the shipped function, relative (the sanity test)
    precision: float = 1e-10


def _torch():
    torch = pytest.importorskip("torch")
    return torch


# kl_normal ---------------------------------------------------------------------------------

def kl_normal_numpy(m1, s1, m2, s2):
    """KL(N(m1, s1^2) || N(m2, s2^2)) as the textbook writes it (Kingma & Welling 2014, App. B):
    a NumPy function that broadcasts; cancels near p = q, where the KL is tiny."""
    return np.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5


def improved_diffusion_kl():
    """improved-diffusion's ``normal_kl(mean1, logvar1, mean2, logvar2)`` (Nichol & Dhariwal 2021,
    losses.py; the Gaussian KL of Ho et al. 2020, Eq. 5) takes log-variances: wrapped in a
    lambda of kl_normal's parameters, logvar = 2 log scale."""
    torch = _torch()

    def normal_kl(mean1, logvar1, mean2, logvar2):
        return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2)
                      + (mean1 - mean2) ** 2 * torch.exp(-logvar2))

    return lambda loc_p, scale_p, loc_q, scale_q: normal_kl(loc_p, 2 * torch.log(scale_p),
                                                             loc_q, 2 * torch.log(scale_q))


def kl_positional_only():
    """The variance form of Wikipedia's "Normal distribution" KL, as a positional-only lambda
    whose names match nothing in kl_normal: matched by position (loc_p, scale_p, loc_q, scale_q)."""
    return lambda m1, s1, m2, s2, /: 0.5 * (s1**2 / s2**2 + (m2 - m1) ** 2 / s2**2 - 1 + np.log(s2**2 / s1**2))


def kl_wrong_when_both_scales_small():
    """Right except where both scales are below 0.1, where it is 1% high: an error in a corner
    of the domain (a sixteenth of it, scales being drawn log-uniformly from [0.01, 100])."""
    def kl(loc_p, scale_p, loc_q, scale_q):
        value = kl_normal_numpy(loc_p, scale_p, loc_q, scale_q)
        return np.where((scale_p < 0.1) & (scale_q < 0.1), 1.01 * value, value)
    return kl


def kl_half_a_percent_high():
    return lambda loc_p, scale_p, loc_q, scale_q: 1.005 * kl_normal_numpy(loc_p, scale_p, loc_q, scale_q)


# kl_std_normal -----------------------------------------------------------------------------

def pytorch_vae_kld():
    """The VAE's KL term in PyTorch style (pytorch/examples, vae/main.py, ``loss_function``:
    KLD = -0.5 * sum(1 + logvar - mu^2 - logvar.exp()); Kingma & Welling 2014, App. B), per
    element (no sum); ``mu`` is mapped to ``loc`` by ``args``."""
    _torch()

    def vae_kld(mu, logvar):
        return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())
    return vae_kld


# kl_mvn ------------------------------------------------------------------------------------

def gaussian_kl_full_cov(mu0, sigma0, mu1, sigma1, *, swap_trace=False):
    """KL(N(mu0, sigma0) || N(mu1, sigma1)) = 1/2 [tr(sigma1^-1 sigma0) + (mu1 - mu0)^T sigma1^-1
    (mu1 - mu0) - k + ln(det sigma1/det sigma0)] (Wikipedia, "Multivariate normal distribution",
    Kullback-Leibler divergence), broadcasting over leading dimensions with np.linalg."""
    k = mu0.shape[-1]
    diff = (mu1 - mu0)[..., None]
    ratio = np.linalg.solve(sigma0, sigma1) if swap_trace else np.linalg.solve(sigma1, sigma0)
    trace = np.trace(ratio, axis1=-2, axis2=-1)
    mahalanobis = (np.swapaxes(diff, -1, -2) @ np.linalg.solve(sigma1, diff))[..., 0, 0]
    logdet0 = np.linalg.slogdet(sigma0)[1]
    logdet1 = np.linalg.slogdet(sigma1)[1]
    return 0.5 * (trace + mahalanobis - k + logdet1 - logdet0)


KL_MVN_ARGS = {"mu0": "loc_p", "sigma0": "cov_p", "mu1": "loc_q", "sigma1": "cov_q"}


def kl_mvn_trace_swapped():
    """tr(sigma0^-1 sigma1) in place of tr(sigma1^-1 sigma0): p and q swapped in one term."""
    return lambda mu0, sigma0, mu1, sigma1: gaussian_kl_full_cov(mu0, sigma0, mu1, sigma1, swap_trace=True)


# frechet_distance --------------------------------------------------------------------------

def fid_style_frechet(root_of_product=True):
    """``calculate_frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6)`` in the style of
    pytorch-fid (fid_score.py): d^2 = ||mu1 - mu2||^2 + tr(sigma1 + sigma2 - 2 sqrt(sigma1
    sigma2)) (Dowson & Landau 1982; Heusel et al. 2017, Eq. 6), with SciPy's sqrtm of the
    (non-symmetric) product, its real part, and an eps offset if the root is not finite. One
    point at a time: (d,) means and (d, d) covariances.

    With ``root_of_product=False`` it is the usual slip: sqrtm(sigma1) @ sqrtm(sigma2), whose
    trace is not that of the principal root of sigma1 sigma2 unless the two commute."""
    from scipy import linalg

    def calculate_frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6):
        mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
        sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
        assert mu1.shape == mu2.shape and sigma1.shape == sigma2.shape
        diff = mu1 - mu2
        if root_of_product:
            covmean = linalg.sqrtm(sigma1.dot(sigma2))
            if not np.isfinite(covmean).all():
                offset = np.eye(sigma1.shape[0]) * eps
                covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
        else:
            covmean = linalg.sqrtm(sigma1).dot(linalg.sqrtm(sigma2))
        covmean = np.real(covmean)
        return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)
    return calculate_frechet_distance


FID_ARGS = {"mu1": "loc1", "sigma1": "cov1", "mu2": "loc2", "sigma2": "cov2"}


# diffusion_posterior -----------------------------------------------------------------------

def diffusers_posterior_variance():
    """diffusers' DDPMScheduler ``_get_variance`` in its own names: variance = (1 - alpha_prod_t_prev)
    / (1 - alpha_prod_t) * current_beta_t with current_beta_t = 1 - alpha_prod_t / alpha_prod_t_prev
    (Ho et al. 2020, Eq. 7, beta_tilde). A function of the two signal levels only (mapped by
    ``args``); its 1 - alpha_prod_t/alpha_prod_t_prev cancels as the levels meet."""
    def get_variance(alpha_prod_t, alpha_prod_t_prev):
        current_beta_t = 1 - alpha_prod_t / alpha_prod_t_prev
        return (1 - alpha_prod_t_prev) / (1 - alpha_prod_t) * current_beta_t
    return get_variance


def q_posterior_mean_variance(x_start, x_t, alpha_bar_t, alpha_bar_prev):
    """improved-diffusion's ``q_posterior_mean_variance`` with its coefficients (Ho et al. 2020,
    Eq. 7): mean = coef1 x_start + coef2 x_t, coef1 = beta_t sqrt(alpha_bar_prev)/(1 - alpha_bar_t),
    coef2 = (1 - alpha_bar_prev) sqrt(alpha_t)/(1 - alpha_bar_t), alpha_t = alpha_bar_t/alpha_bar_prev;
    variance = beta_t (1 - alpha_bar_prev)/(1 - alpha_bar_t). Returns the tuple (mean, var)."""
    alpha_t = alpha_bar_t / alpha_bar_prev
    beta_t = 1 - alpha_t
    coef1 = beta_t * np.sqrt(alpha_bar_prev) / (1 - alpha_bar_t)
    coef2 = (1 - alpha_bar_prev) * np.sqrt(alpha_t) / (1 - alpha_bar_t)
    return coef1 * x_start + coef2 * x_t, beta_t * (1 - alpha_bar_prev) / (1 - alpha_bar_t)


POSTERIOR_ARGS = {"x_start": "x0", "x_t": "xt", "alpha_bar_t": "alpha_bar_t", "alpha_bar_prev": "alpha_bar_prev"}


def posterior_mean_wrong_late():
    """The posterior mean, 1% high where alpha_bar_t >= 0.94 (the first few percent of the
    steps of a usual schedule): an error confined to a corner."""
    def mean(x0, xt, alpha_bar_t, alpha_bar_prev):
        right = q_posterior_mean_variance(x0, xt, alpha_bar_t, alpha_bar_prev)[0]
        return np.where(alpha_bar_t < 0.94, right, 1.01 * right)
    return mean


# diffusion_cosine_schedule -----------------------------------------------------------------

def cosine_alpha_bar_per_point(normalised=True):
    """alpha_bar_t = f(t)/f(0), f(u) = cos^2((u/T + s)/(1 + s) pi/2), s = 0.008 (Nichol & Dhariwal
    2021, Eq. 17), chained through the clip of beta at the last step, with ``math`` as improved-diffusion's ``get_named_beta_schedule("cosine")``
    writes f: one point at a time (math.cos takes no array).

    ``normalised=False`` is the slip of taking improved-diffusion's f itself for alpha_bar
    (there the normalisation happens through the betas' telescoping product): f(t), not
    f(t)/f(0), 0.016% low everywhere."""
    def alpha_bar(t, T):
        f = lambda u: math.cos((u / T + 0.008) / 1.008 * math.pi / 2) ** 2
        # Chained through the clip, as improved-diffusion's cumprod of its clipped betas: the level
        # before step t times max(f(t)/f(t - 1), 0.001), the level before step 1 the data's.
        previous = max(t - 1, 0)
        chained = f(previous) * max(f(t) / f(previous), 0.001)
        return chained / f(0) if normalised else chained
    return alpha_bar


def cosine_alpha_bar_numpy(t, T):
    return (np.cos((t / T + 0.008) / 1.008 * np.pi / 2) / np.cos(0.008 / 1.008 * np.pi / 2)) ** 2


def cosine_alpha_bar_clipped():
    """alpha_bar clipped at 0.999 (the clip belongs to beta_t, Nichol & Dhariwal 2021, Sec. 3.2):
    wrong only in the first steps of a long schedule, where alpha_bar > 0.999."""
    return lambda t, T: np.minimum(cosine_alpha_bar_numpy(t, T), 0.999)


# score_diffusion ---------------------------------------------------------------------------

def score_from_eps():
    """The score through the noise: x_t = sqrt(abar) x_start + sqrt(1 - abar) eps, so eps =
    (x_t - sqrt(abar) x_start)/sqrt(1 - abar) and grad log q(x_t | x_start) = -eps/sqrt(1 - abar)
    (Ho et al. 2020, Eq. 4; Song et al. 2021, Sec. 3.3). Broadcasts; its own names, mapped by ``args``."""
    def score(x_t, x_start, abar):
        eps = (x_t - np.sqrt(abar) * x_start) / np.sqrt(1 - abar)
        return -eps / np.sqrt(1 - abar)
    return score


# gan_losses_logits -------------------------------------------------------------------------

def bce_discriminator_loss():
    """The discriminator's cost from logits with ``binary_cross_entropy_with_logits`` (real labelled
    1, fake labelled 0; Goodfellow et al. 2014, Eq. 1; the DCGAN PyTorch tutorial's criterion),
    halved as in the catalogue's gan_losses: 1/2 [BCE(real, 1) + BCE(fake, 0)], per element."""
    torch = _torch()
    from torch.nn import functional as F

    def discriminator_loss(logit_real, logit_fake):
        real = F.binary_cross_entropy_with_logits(logit_real, torch.ones_like(logit_real), reduction="none")
        fake = F.binary_cross_entropy_with_logits(logit_fake, torch.zeros_like(logit_fake), reduction="none")
        return 0.5 * (real + fake)
    return discriminator_loss


# tweedie_normal ----------------------------------------------------------------------------

def tweedie_kalman_mean():
    """E[x0 | x_t] for x0 ~ N(mu, sigma^2) as a Kalman update (Gaussian conditioning; Efron 2011):
    the prior mean plus the gain K = sqrt(abar) sigma^2/(abar sigma^2 + 1 - abar) times the
    innovation x_t - sqrt(abar) mu. Broadcasts; its own names, mapped by ``args``."""
    def posterior_mean(x_t, abar, mu, sigma):
        gain = np.sqrt(abar) * sigma**2 / (abar * sigma**2 + (1 - abar))
        return mu + gain * (x_t - np.sqrt(abar) * mu)
    return posterior_mean


# bits_per_dim ------------------------------------------------------------------------------

def bits_per_dim_float32():
    """nll/(D ln 2) (van den Oord et al. 2016, Sec. 5.1) computed in float32, as a float32 model
    computes it (inputs cast to float32, float32 result).

    Decision: this candidate is CORRECT. The formula is right and well-conditioned (condition
    number 1); its error, ~6e-8 relative, is float32 rounding, a precision the user chose, not
    a slip. A verdict "refuted" with a counterexample would tell the user the formula is wrong,
    which it is not; the expected verdict is "verified", with the float32 rounding showing in
    ``max_relative_error`` (~1e-7). (Rounding is judged in the result's own precision; a
    0.5%-off candidate is still refuted in float32.)"""
    def bits(nll_nats, dims):
        nll = np.asarray(nll_nats, dtype=np.float32)
        d = np.asarray(dims, dtype=np.float32)
        return nll / (d * np.float32(math.log(2)))
    return bits


# planar_flow_logdet_2d ------------------------------------------------------------------------

def planar_logdet(tanh_squared=True):
    """log|det df/dz| = log|1 + u^T psi(z)|, psi(z) = h'(w^T z + b) w, h = tanh, h' = 1 - tanh^2
    (Rezende & Mohamed 2015, Eqs. 10-12), written naively: 1 - tanh^2 rounds to 0 for large
    |w^T z + b| and log(1 + tiny) loses the digits log1p would keep (a few 1e-16, absolute).
    Broadcasts; matched by name.

    ``tanh_squared=False``: the slip h' = 1 - tanh (the square forgotten)."""
    def logdet(z1, z2, u1, u2, w1, w2, bias):
        a = w1 * z1 + w2 * z2 + bias
        h_prime = 1 - np.tanh(a) ** 2 if tanh_squared else 1 - np.tanh(a)
        return np.log(np.abs(1 + h_prime * (u1 * w1 + u2 * w2)))
    return logdet


# vae_linear_gaussian_elbo ------------------------------------------------------------------

def elbo_per_point():
    """ELBO = E_q[log p(x | z)] - KL(q(z) || N(0, 1)) for x | z ~ N(w z + b, s^2) and q =
    N(loc, scale^2) (Kingma & Welling 2014, Eq. 3 and App. B), with E_q[(x - w z - b)^2] =
    (x - w loc - b)^2 + w^2 scale^2. ``math.log``: one point at a time."""
    def elbo(x, w, b, s, loc, scale):
        expected_square = (x - w * loc - b) ** 2 + (w * scale) ** 2
        reconstruction = -0.5 * math.log(2 * math.pi) - math.log(s) - expected_square / (2 * s**2)
        kl = 0.5 * (loc**2 + scale**2 - 1) - math.log(scale)
        return reconstruction - kl
    return elbo


def elbo_without_decoder_variance():
    """The slip of plugging z = loc into log p(x | z): the w^2 scale^2 term of E_q is missing."""
    def elbo(x, w, b, s, loc, scale):
        reconstruction = -0.5 * np.log(2 * np.pi) - np.log(s) - (x - w * loc - b) ** 2 / (2 * s**2)
        return reconstruction - (0.5 * (loc**2 + scale**2 - 1) - np.log(scale))
    return elbo


def _const(value):
    return lambda: value


CORRECT = [
    Candidate("kl_normal/numpy-string", "kl_normal", "NumPy-syntax string", True,
              _const("np.log(scale_q/scale_p) + (scale_p**2 + (loc_p - loc_q)**2)/(2*scale_q**2) - 0.5")),
    Candidate("kl_normal/improved-diffusion-torch", "kl_normal", "torch callable (logvar, wrapped)", True,
              improved_diffusion_kl, torch=True),
    Candidate("kl_normal/positional-only-lambda", "kl_normal", "positional-only lambda", True, kl_positional_only),
    Candidate("kl_std_normal/pytorch-vae-torch", "kl_std_normal", "torch callable, args=", True, pytorch_vae_kld,
              args={"mu": "loc", "logvar": "logvar"}, torch=True),
    Candidate("kl_mvn/numpy-linalg-args", "kl_mvn", "broadcasting NumPy callable, args=", True,
              _const(gaussian_kl_full_cov), args=KL_MVN_ARGS),
    Candidate("frechet_distance/pytorch-fid-sqrtm", "frechet_distance", "per-point NumPy/SciPy callable, args=", True,
              fid_style_frechet, args=FID_ARGS),
    Candidate("frechet_distance/sympy-string-cov2-root", "frechet_distance", "SymPy-syntax string", True,
              # tr sqrt(cov1^1/2 cov2 cov1^1/2) = tr sqrt(cov2^1/2 cov1 cov2^1/2): the roots' roles swapped
              _const("trace((loc1 - loc2).T*(loc1 - loc2)) + trace(cov1) + trace(cov2)"
                     " - 2*trace(sqrtm(sqrtm(cov2)*cov1*sqrtm(cov2)))")),
    Candidate("diffusion_marginal.mean/numpy-string", "diffusion_marginal.mean", "NumPy-syntax string", True,
              _const("x0 * alpha_bar**0.5")),
    Candidate("diffusion_posterior.var/diffusers-get-variance", "diffusion_posterior.var",
              "broadcasting NumPy callable of 2 of the 4 parameters, args=", True, diffusers_posterior_variance,
              args={"alpha_prod_t": "alpha_bar_t", "alpha_prod_t_prev": "alpha_bar_prev"}),
    Candidate("diffusion_posterior/improved-diffusion-tuple", "diffusion_posterior",
              "broadcasting NumPy callable returning (mean, var), args=", True,
              _const(q_posterior_mean_variance), args=POSTERIOR_ARGS),
    Candidate("diffusion_cosine_schedule.alpha_bar/math-per-point", "diffusion_cosine_schedule.alpha_bar",
              "per-point math callable", True, cosine_alpha_bar_per_point),
    Candidate("score_normal/sympy-string", "score_normal", "SymPy-syntax string", True,
              _const("-(x - loc)/scale**2")),
    Candidate("score_diffusion/through-eps", "score_diffusion", "broadcasting NumPy callable, args=", True,
              score_from_eps, args={"x_t": "xt", "x_start": "x0", "abar": "alpha_bar"}),
    Candidate("gan_optimal_discriminator.value/numpy-string", "gan_optimal_discriminator.value",
              "NumPy-syntax string", True,
              _const("p_data*np.log(p_data/(p_data + p_g)) + p_g*numpy.log(p_g/(p_data + p_g))")),
    Candidate("gan_losses_logits.discriminator/bce-with-logits-torch", "gan_losses_logits.discriminator",
              "torch callable", True, bce_discriminator_loss, torch=True),
    Candidate("tweedie_normal.mean/kalman-gain", "tweedie_normal.mean", "broadcasting NumPy callable, args=", True,
              tweedie_kalman_mean, args={"x_t": "xt", "abar": "alpha_bar", "mu": "loc", "sigma": "scale"}),
    Candidate("bits_per_dim/float32", "bits_per_dim", "float32 NumPy callable", True, bits_per_dim_float32,
              note="float32 rounding is not a wrong formula: see bits_per_dim_float32", precision=1e-6),
    Candidate("planar_flow_logdet_2d/naive-tanh", "planar_flow_logdet_2d", "broadcasting NumPy callable", True,
              planar_logdet),
    Candidate("vae_linear_gaussian_elbo/math-per-point", "vae_linear_gaussian_elbo", "per-point math callable", True,
              elbo_per_point),
]

WRONG = [
    Candidate("kl_normal/p-and-q-swapped", "kl_normal", "SymPy-syntax string", False,
              _const("log(scale_p/scale_q) + (scale_q**2 + (loc_p - loc_q)**2)/(2*scale_p**2) - 1/2")),
    Candidate("kl_normal/1%-off-when-both-scales-below-0.1", "kl_normal", "broadcasting NumPy callable (np.where)",
              False, kl_wrong_when_both_scales_small,
              where=lambda p: p["scale_p"] < 0.1 and p["scale_q"] < 0.1),
    Candidate("kl_normal/0.5%-high", "kl_normal", "broadcasting NumPy callable", False, kl_half_a_percent_high),
    Candidate("kl_std_normal/missing-the-1", "kl_std_normal", "NumPy-syntax string", False,
              # off by the constant 1/2: the "1 +" inside the bracket forgotten
              _const("-0.5*(logvar - loc**2 - np.exp(logvar))")),
    Candidate("kl_mvn/trace-term-p-q-swapped", "kl_mvn", "broadcasting NumPy callable, args=", False,
              kl_mvn_trace_swapped, args=KL_MVN_ARGS),
    Candidate("frechet_distance/sqrtm-cov1-times-sqrtm-cov2", "frechet_distance", "per-point NumPy/SciPy callable, args=",
              False, lambda: fid_style_frechet(root_of_product=False), args=FID_ARGS,
              # equal to the right value when the covariances commute (d = 1, both diagonal)
              where=lambda p: p["cov1"].shape[-1] > 1),
    Candidate("diffusion_marginal.var/std-not-variance", "diffusion_marginal.var", "NumPy-syntax string", False,
              _const("np.sqrt(1 - alpha_bar)")),
    Candidate("diffusion_posterior.mean/1%-off-where-alpha_bar_t-above-0.94", "diffusion_posterior.mean",
              "broadcasting NumPy callable (np.where)", False, posterior_mean_wrong_late,
              where=lambda p: p["alpha_bar_t"] >= 0.94),
    Candidate("diffusion_posterior.var/beta_t-not-beta_tilde", "diffusion_posterior.var", "SymPy-syntax string", False,
              # DDPM's other choice of sampling variance, sigma_t^2 = beta_t, is not the posterior's
              _const("1 - alpha_bar_t/alpha_bar_prev")),
    Candidate("diffusion_cosine_schedule.alpha_bar/f(t)-without-f(0)", "diffusion_cosine_schedule.alpha_bar",
              "per-point math callable", False, lambda: cosine_alpha_bar_per_point(normalised=False)),
    Candidate("diffusion_cosine_schedule.alpha_bar/clipped-at-0.999", "diffusion_cosine_schedule.alpha_bar",
              "broadcasting NumPy callable (np.minimum)", False, cosine_alpha_bar_clipped,
              where=lambda p: p["t"] / p["T"] < 0.005),
    Candidate("score_normal/sign-error", "score_normal", "SymPy-syntax string", False,
              _const("(x - loc)/scale**2")),
    Candidate("gan_optimal_discriminator.logit/log-D-not-logit", "gan_optimal_discriminator.logit",
              "NumPy-syntax string", False, _const("numpy.log(p_data/(p_data + p_g))")),
    Candidate("planar_flow_logdet_2d/1-minus-tanh-not-squared", "planar_flow_logdet_2d", "broadcasting NumPy callable",
              False, lambda: planar_logdet(tanh_squared=False)),
    Candidate("vae_linear_gaussian_elbo/missing-w2-scale2", "vae_linear_gaussian_elbo", "broadcasting NumPy callable",
              False, elbo_without_decoder_variance),
    Candidate("bits_per_dim/nats-not-bits", "bits_per_dim", "positional lambda", False,
              _const(lambda nll, d: nll / d)),
]

CORPUS = CORRECT + WRONG


# --- evaluating a candidate without the engine (for the sanity test) ------------------------


def _matrix_namespace():
    from scipy import linalg

    def numeric(matrix):
        return np.array(matrix.tolist(), dtype=float)

    return {"trace": lambda m: float(numeric(m).trace()),
            "sqrtm": lambda m: sp.Matrix(np.real(linalg.sqrtm(numeric(m)))),
            "inv": lambda m: m.inv(), "det": lambda m: m.det()}


NUMPY_NAMESPACE = {"np": np, "numpy": np, "math": math, "exp": np.exp, "log": np.log, "sqrt": np.sqrt}


def evaluate_string(text, point):
    """A string candidate at one point, by Python's eval: NumPy functions for scalars; for the
    matrix derivations, SymPy matrices of floats, where * is the matrix product and .T the
    transpose, as in SymPy syntax."""
    if any(isinstance(value, np.ndarray) for value in point.values()):
        values = {name: sp.Matrix(value) if value.ndim == 2 else sp.Matrix(value.reshape(-1, 1))
                  for name, value in point.items()}
        return float(eval(text, {**_matrix_namespace(), "__builtins__": {}}, values))
    return eval(text, {**NUMPY_NAMESPACE, "__builtins__": {}}, dict(point))


def call_candidate(function, point, parameter_names, args=None, torch=False):
    """Call a user's function at one point as the spec says ``check`` does: through ``args``,
    else by name, else by position. Torch functions get float64 tensors."""
    if torch:
        import torch as torch_module
        point = {name: torch_module.as_tensor(value, dtype=torch_module.float64) for name, value in point.items()}
    signature = inspect.signature(function)
    if args:
        return function(**{own: point[theirs] for own, theirs in args.items()})
    names = [p.name for p in signature.parameters.values() if p.default is inspect.Parameter.empty]
    if set(names) <= set(parameter_names) and all(
            p.kind is not inspect.Parameter.POSITIONAL_ONLY for p in signature.parameters.values()):
        return function(**{name: point[name] for name in names})
    return function(*[point[name] for name in parameter_names])


def _as_float(value):
    if hasattr(value, "detach"):
        value = value.detach().numpy()
    return float(np.asarray(value, dtype=float))


def candidate_values(candidate, point):
    """{output: value} of ``candidate`` at ``point``."""
    found = symgen.derivation(candidate.name)
    outputs = [candidate.name.split(".", 1)[1]] if "." in candidate.name else list(found.outputs)
    built = candidate.build()
    if isinstance(built, str):
        return {outputs[0]: float(evaluate_string(built, point))}
    value = call_candidate(built, point, found.param_names, candidate.args, candidate.torch)
    if len(outputs) > 1:
        return {output: _as_float(part) for output, part in zip(outputs, value, strict=True)}
    return {outputs[0]: _as_float(value)}


def shipped_values(name, point):
    found = symgen.derivation(name)
    result = getattr(symgen, found.name)(**point)
    if len(found.outputs) == 1:
        return {next(iter(found.outputs)): float(result)}
    return {output: float(getattr(result, output)) for output in found.outputs}


def sample_where(found, rng, where, count, tries=100_000):
    """``count`` domain points satisfying ``where``: draws as ``sample_point`` makes them, the
    corner's test first (cheap), then the derivation's own ``requires``."""
    points = []
    for _ in range(tries):
        sizes = {d: int(rng.integers(low, high + 1)) for d, (low, high) in found.dimensions.items()}
        point = {param.name: param.domain.sample(rng, sizes) for param in found.params}
        if where(point) and found.satisfies_requirements(point):
            points.append(point)
            if len(points) == count:
                return points
    raise AssertionError(f"{found.name}: fewer than {count} of {tries} domain points in the corner")


@functools.cache
def random_points(name, count=50):
    """``count`` random domain points of derivation ``name`` (seed 0), shared by its candidates."""
    found = symgen.derivation(name)
    rng = np.random.default_rng(0)
    return tuple(found.sample_point(rng) for _ in range(count))


def _id(candidate):
    return candidate.id


# --- the corpus is what it says -------------------------------------------------------------


def test_the_corpus_is_what_it_says():
    """Plain NumPy against the shipped functions, no engine: every correct candidate agrees
    with ``symgen.<name>`` to 1e-10 relative (1e-12 absolute, for values that cancel to near 0)
    at 50 random domain points; every wrong one is off by more than 1e-6 relative at some point
    (drawn from its corner, when its error is confined to one)."""
    assert len(CORPUS) >= 30
    assert len({c.id for c in CORPUS}) == len(CORPUS)
    assert len({c.name.split(".")[0] for c in CORPUS}) >= 12
    problems = []
    for candidate in CORPUS:
        if candidate.torch:
            try:
                import torch  # noqa: F401
            except ImportError:
                continue
        found = symgen.derivation(candidate.name)
        points = list(random_points(found.name))
        if candidate.where is not None:
            points += sample_where(found, np.random.default_rng(1), candidate.where, 10)
        worst = 0.0
        for point in points:
            expected = shipped_values(candidate.name.split(".")[0], point)
            for output, value in candidate_values(candidate, point).items():
                reference = expected[output]
                if not np.isfinite(value):
                    worst = math.inf
                    continue
                error = abs(value - reference)
                if candidate.correct:
                    error = error / (candidate.precision * abs(reference) + 1e-12)  # > 1: too far for a correct one
                else:
                    error = error / (1e-6 * abs(reference) + 1e-300)   # > 1: wrong here
                worst = max(worst, error)
        if candidate.correct and worst > 1:
            problems.append(f"{candidate.id}: a correct candidate is {worst:.3g} x beyond "
                            f"{candidate.precision:g} of the shipped value")
        if not candidate.correct and worst <= 1:
            problems.append(f"{candidate.id}: a wrong candidate agrees with the shipped value at every point")
    assert not problems, "\n".join(problems)


# --- the verdicts -----------------------------------------------------------------------------


def _check(candidate):
    if candidate.torch:
        pytest.importorskip("torch")
    return symgen.check(candidate.name, candidate.build(), args=candidate.args)


@pytest.mark.slow
@pytest.mark.parametrize("candidate", CORRECT, ids=_id)
def test_a_correct_candidate_is_verified(candidate):
    result = _check(candidate)
    assert result, str(result)
    assert result.verified
    assert result.counterexample is None


@pytest.mark.slow
@pytest.mark.parametrize("candidate", WRONG, ids=_id)
def test_a_wrong_candidate_is_refuted(candidate):
    result = _check(candidate)
    assert not result, str(result)
    assert result.counterexample is not None, str(result)
    assert set(result.counterexample.point) == set(symgen.derivation(candidate.name).param_names)


@pytest.mark.slow
def test_a_naive_kl_that_cancels_is_verified_with_its_poor_accuracy_reported():
    # The textbook KL (a positional-only lambda) loses every digit near p = q, where the KL is
    # ~ (relative offset)^2: correct, so verified; the accuracy figure shows the loss.
    result = symgen.check("kl_normal", kl_positional_only())
    assert result, str(result)
    assert result.max_relative_error > 1e-6, result.max_relative_error
    assert result.worst_point is not None


# --- candidates that cannot be read -------------------------------------------------------------


def test_a_callable_of_the_wrong_arity_is_refused_naming_the_problem():
    with pytest.raises(ValueError) as raised:
        symgen.check("kl_normal", lambda a, b: a)
    message = str(raised.value)
    # It says what it got (2 arguments, a and b) and what kl_normal takes.
    assert re.search(r"\b2\b|\ba\b.*\bb\b", message), message
    assert all(name in message for name in ("loc_p", "scale_p", "loc_q", "scale_q")), message


def test_an_unknown_derivation_is_refused_naming_it():
    with pytest.raises(ValueError, match="no_such_thing"):
        symgen.check("no_such_thing", "x")

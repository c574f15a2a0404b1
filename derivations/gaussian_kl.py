"""The Gaussian KL family: the divergence term of the VAE objective.

The KL divergence from q to p is the expected log-ratio under p,

    KL(p || q) = E_{x ~ p}[log p(x) - log q(x)].

For Gaussians the log-ratio is a quadratic in x, so its expectation needs only the
first two moments of p, and the closed forms follow (Kingma & Welling 2014,
"Auto-Encoding Variational Bayes", Appendix B, for the VAE's KL to N(0, I); the
multivariate form is in Petersen & Pedersen, "The Matrix Cookbook" (version of
November 15, 2012), Eq. 380).

Theory notebook, sections 2-3: a VAE encoder outputs (loc, logvar); its latent is
reparameterised as loc + exp(logvar / 2) * eps, and the KL term of the ELBO is
kl_std_normal(loc, logvar) summed over latent dimensions.
"""
import math

import numpy as np
import sympy as sp

from symgen.engine import (Controlled, Covariance, Derivation, GaussianExpectation, IdentityCheck, MeanCheck,
                           MvnExpectation, Param, Positive, Real, Vector, expm1mx, lazy_module, log1pmx,
                           log_mvn_pdf, log_normal_pdf, quadratic_form)

# SciPy is loaded when a check first runs, not when the module is imported.
integrate = lazy_module("scipy.integrate")
linalg = lazy_module("scipy.linalg")
stats = lazy_module("scipy.stats")

VAE_REFERENCE = "Kingma & Welling (2014), Auto-Encoding Variational Bayes, Appendix B"
x = sp.Symbol("x", real=True)

# --- KL between two univariate Gaussians ---------------------------------------------

loc_p, loc_q = sp.symbols("loc_p loc_q", real=True)
scale_p, scale_q = sp.symbols("scale_p scale_q", positive=True)
# The textbook closed form: where the chain arrives, and what the stable form falls back on.
textbook_kl = sp.log(scale_q / scale_p) + (scale_p**2 + (loc_p - loc_q) ** 2) / (2 * scale_q**2) - sp.Rational(1, 2)

kl_normal = Derivation(
    "kl_normal",
    title="KL divergence between two univariate Gaussians",
    summary="KL(N(loc_p, scale_p^2) || N(loc_q, scale_q^2)), in nats.",
    kind="divergence",
    references=[VAE_REFERENCE],
    # The stable branch tests the textbook value: its condition reads KL < 0.01.
    notation={"kl_normal": r"\mathrm{KL}(p \,\|\, q)", textbook_kl: r"\mathrm{KL}"},
    params=[
        Param(loc_p, Real(-10, 10), "mean of p"),
        Param(scale_p, Positive(1e-2, 1e2), "standard deviation of p (not the variance)"),
        Param(loc_q, Real(-10, 10), "mean of q"),
        Param(scale_q, Positive(1e-2, 1e2), "standard deviation of q (not the variance)"),
    ],
    # Near-equal distributions are where textbook formulas cancel to 0 or noise.
    near=[(scale_q, scale_p), (loc_q, loc_p)],
    returns="KL(p || q) >= 0, broadcast over the arguments",
    sections=(3,),
)

log_ratio = log_normal_pdf(x, loc_p, scale_p) - log_normal_pdf(x, loc_q, scale_q)
moments_of_p = {0: 1, 1: loc_p, 2: loc_p**2 + scale_p**2}          # E[x^k] for x ~ p
ratio_minus_one = (scale_p - scale_q) * (scale_p + scale_q) / scale_q**2

chain = kl_normal.define(
    GaussianExpectation(log_ratio, x, loc_p, scale_p),
    "definition: the expected log-ratio under p")
# SymPy collects the powers of x (Poly) when the derivation is derived, not at import.
chain.step(
    lambda previous: GaussianExpectation(sp.Poly(sp.expand(previous.integrand), x).as_expr(),
                                         x, loc_p, scale_p),
    "the log-ratio is a quadratic in x: collect its powers")
chain.step(
    lambda previous: sum(coefficient * moments_of_p[power]
                         for (power,), coefficient in sp.Poly(previous.integrand, x).terms()),
    "linearity of E, with E[x] = loc_p and E[x^2] = loc_p^2 + scale_p^2 under p")
chain.step(textbook_kl, "collect terms: the textbook closed form")
chain.stable(
    sp.Piecewise(
        # UnevaluatedExpr keeps the test as written, KL < 0.01: Piecewise would otherwise move
        # the -1/2 across and compare the other terms with 0.51.
        (-log1pmx(ratio_minus_one) / 2 + ((loc_p - loc_q) / scale_q) ** 2 / 2,
         sp.UnevaluatedExpr(textbook_kl) < sp.Rational(1, 100)),
        (textbook_kl, True)),
    "where the textbook value is below 0.01, split off the mean term (>= 0) and, with u = "
    "scale_p^2/scale_q^2 - 1 formed as (scale_p - scale_q)(scale_p + scale_q)/scale_q^2 (an exact "
    "subtraction), write log(scale_q/scale_p) = -log(1 + u)/2: log1pmx(u) = log(1 + u) - u has no "
    "cancellation. Elsewhere the textbook terms (each of size at most ~100 KL there) cancel by at "
    "most a factor ~100, a few 1e-14 relative, so the textbook form, the cheapest, is kept; the "
    "test on its own value makes the accurate branch cost time only on the few entries near p = q")


# The log-ratios of Gaussians are quadratics in the normals the draws are built from, so the
# Hermite control variates of those normals (symgen/engine/controls.py) leave only rounding:
# 20_000 draws (and a 20_000-draw pilot) resolve ~1e-12 of the value, where 10^6 plain draws
# resolved 2e-5 to 1e-4 and kl_mvn's 400_000 6e-4.
CONTROLLED_SAMPLES = 20_000


def sample_log_ratio(rng, n, loc_p, scale_p, loc_q, scale_q):
    normals = rng.standard_normal(n)
    draws = loc_p + scale_p * normals
    return Controlled(stats.norm.logpdf(draws, loc_p, scale_p) - stats.norm.logpdf(draws, loc_q, scale_q),
                      normals)


def quadrature_kl(loc_p, scale_p, loc_q, scale_q):
    # In standard units of p, so the integrand has a fixed shape whatever the scales.
    def integrand(z):
        draw = loc_p + scale_p * z
        return stats.norm.pdf(z) * (stats.norm.logpdf(draw, loc_p, scale_p)
                                    - stats.norm.logpdf(draw, loc_q, scale_q))

    return integrate.quad(integrand, -40, 40, epsabs=1e-14, epsrel=1e-12, limit=200)[0]


kl_normal.add_check(MeanCheck(sample_log_ratio, "E_p[log p(x) - log q(x)] by Monte Carlo",
                              samples=CONTROLLED_SAMPLES, batches=200))
# quad's own error is ~1e-13 relative here; the absolute floor covers near-equal
# pairs, where the integrand is a difference of nearly equal logs (~1e-16 absolute).
kl_normal.add_check(IdentityCheck(quadrature_kl, "the same integral by adaptive quadrature",
                                  rtol=1e-9, atol=1e-13))


def draw_near_equal_scales(axes):
    """KL(N(0, r^2) || N(0, 1)) for r near 1: symgen against the textbook formula."""
    import numpy as np

    from symgen.formulas import kl_normal as kl_normal_function

    offsets = np.logspace(-10, -1, 200)
    ratio = 1 + offsets
    textbook = np.log(1 / ratio) + ratio**2 / 2 - 0.5
    axes.loglog(offsets, kl_normal_function(0.0, ratio, 0.0, 1.0), label="symgen kl_normal")
    axes.loglog(offsets, np.abs(textbook) + 1e-300, ".", markersize=3, label="textbook formula (|value|)")
    axes.set_xlabel("scale_p / scale_q - 1")
    axes.set_ylabel("KL (nats)")
    axes.legend()


kl_normal.add_plot("Near-equal scales: where the textbook formula cancels", draw_near_equal_scales)

# --- the VAE's KL to the standard normal ---------------------------------------------

loc = sp.Symbol("loc", real=True)
logvar = sp.Symbol("logvar", real=True)

kl_std_normal = Derivation(
    "kl_std_normal",
    notation={"kl_std_normal": r"\mathrm{KL}\left(\mathcal{N}(\mu, \sigma^{2}) \,\|\, \mathcal{N}(0, 1)\right)"},
    title="KL divergence from the standard normal (the VAE's KL term)",
    summary="KL(N(loc, exp(logvar)) || N(0, 1)), elementwise, in nats.",
    kind="divergence",
    references=[VAE_REFERENCE + " (the KL term of Eq. 10)"],
    params=[
        Param(loc, Real(-10, 10), "mean of the encoder's Gaussian"),
        Param(logvar, Real(-20, 20), "log-variance of the encoder's Gaussian (log scale^2)"),
    ],
    returns="the KL divergence, elementwise; sum over latent dimensions for the ELBO term",
    sections=(2, 3),
)
scale = sp.exp(logvar / 2)
chain = kl_std_normal.define(
    GaussianExpectation(log_normal_pdf(x, loc, scale) - log_normal_pdf(x, 0, 1), x, loc, scale),
    "definition: KL(N(loc, scale^2) || N(0, 1)) with scale = exp(logvar / 2)")
chain.step(
    textbook_kl.subs({loc_p: loc, scale_p: scale, loc_q: 0, scale_q: 1}),
    "kl_normal's closed form at loc_p = loc, scale_p = exp(logvar/2), loc_q = 0, scale_q = 1 "
    "(log(1/exp(logvar/2)) = -logvar/2): the textbook form of Kingma & Welling's Appendix B")
chain.stable(
    (expm1mx(logvar) + loc**2) / 2,
    "expm1mx(logvar) = exp(logvar) - 1 - logvar without the cancellation near logvar = 0, "
    "where the textbook form loses every digit of the variance term")


def sample_log_ratio_std(rng, n, loc, logvar):
    scale_value = math.exp(logvar / 2)
    normals = rng.standard_normal(n)
    draws = loc + scale_value * normals
    return Controlled(stats.norm.logpdf(draws, loc, scale_value) - stats.norm.logpdf(draws), normals)


def quadrature_kl_std(loc, logvar):
    return quadrature_kl(loc, math.exp(logvar / 2), 0.0, 1.0)


kl_std_normal.add_check(MeanCheck(sample_log_ratio_std, "E_q[log q(z) - log N(z; 0, 1)] by Monte Carlo",
                                  samples=CONTROLLED_SAMPLES, batches=200))
kl_std_normal.add_check(IdentityCheck(quadrature_kl_std, "the same integral by adaptive quadrature",
                                      rtol=1e-9, atol=1e-13))

# --- KL between multivariate Gaussians ----------------------------------------------

d = sp.Symbol("d", integer=True, positive=True)
loc_p_vec, loc_q_vec = sp.MatrixSymbol("loc_p", d, 1), sp.MatrixSymbol("loc_q", d, 1)
cov_p, cov_q = sp.MatrixSymbol("cov_p", d, d), sp.MatrixSymbol("cov_q", d, d)
x_vec = sp.MatrixSymbol("x", d, 1)

kl_mvn = Derivation(
    "kl_mvn",
    notation={"kl_mvn": r"\mathrm{KL}(p \,\|\, q)"},
    title="KL divergence between two multivariate Gaussians",
    summary="KL(N(loc_p, cov_p) || N(loc_q, cov_q)) with full covariances, batched over leading dimensions.",
    kind="divergence",
    references=["Petersen & Pedersen (2012), The Matrix Cookbook (version of November 15, 2012), Eq. 380 "
                "(E[(x-m)^T A (x-m)])",
                VAE_REFERENCE],
    params=[
        Param(loc_p_vec, Vector(d, Real(-5, 5)), "mean of p, shape (..., d)"),
        Param(cov_p, Covariance(d), "covariance of p, shape (..., d, d), symmetric positive definite"),
        Param(loc_q_vec, Vector(d, Real(-5, 5)), "mean of q, shape (..., d)"),
        Param(cov_q, Covariance(d), "covariance of q, shape (..., d, d), symmetric positive definite"),
    ],
    near=[(cov_q, cov_p), (loc_q_vec, loc_p_vec)],
    dimensions={d: (1, 4)},
    implementation="symgen.numerics.gaussian:kl_mvn",
    returns="KL(p || q) >= 0, with the broadcast batch shape of the arguments",
    sections=(3,),
)

chain = kl_mvn.define(
    MvnExpectation(log_mvn_pdf(x_vec, loc_p_vec, cov_p, d) - log_mvn_pdf(x_vec, loc_q_vec, cov_q, d),
                   x_vec, loc_p_vec, cov_p),
    "definition: the expected log-ratio under p")
chain.step(
    sp.log(sp.Determinant(cov_q)) / 2 - sp.log(sp.Determinant(cov_p)) / 2
    + MvnExpectation(quadratic_form(x_vec - loc_q_vec, cov_q.I), x_vec, loc_p_vec, cov_p) / 2
    - MvnExpectation(quadratic_form(x_vec - loc_p_vec, cov_p.I), x_vec, loc_p_vec, cov_p) / 2,
    "the normalising constants (d/2) log 2 pi cancel; linearity of E")
chain.step(
    sp.log(sp.Determinant(cov_q)) / 2 - sp.log(sp.Determinant(cov_p)) / 2
    + (sp.Trace(cov_q.I * cov_p) + quadratic_form(loc_p_vec - loc_q_vec, cov_q.I)) / 2
    - sp.Trace(cov_p.I * cov_p) / 2,
    "E[(x - m)^T A (x - m)] = tr(A cov) + (loc - m)^T A (loc - m) for x ~ N(loc, cov), "
    "with A = cov_q^-1, m = loc_q and with A = cov_p^-1, m = loc_p")
chain.step(
    (sp.Trace(cov_q.I * cov_p) + quadratic_form(loc_q_vec - loc_p_vec, cov_q.I) - d
     + sp.log(sp.Determinant(cov_q)) - sp.log(sp.Determinant(cov_p))) / 2,
    "tr(cov_p^-1 cov_p) = tr(I_d) = d: the textbook closed form")


def log_mvn_density_by_cholesky(draws, loc, factor):
    """log N(draws; loc, L L^T) from the Cholesky factor L: |L^-1 (x - loc)|^2 by a triangular
    solve, log det = 2 sum log diag L. Backward stable: the quadratic form is good to about
    sqrt(cond) * 1e-16 of itself, where an inverse (or scipy's eigendecomposition) loses
    cond * 1e-16, which the control variates below would no longer hide in the noise."""
    whitened = linalg.solve_triangular(factor, (draws - loc).T, lower=True)
    return (-0.5 * np.sum(whitened**2, axis=0) - np.sum(np.log(np.diag(factor)))
            - factor.shape[0] * math.log(2 * math.pi) / 2)


def sample_log_ratio_mvn(rng, n, loc_p, cov_p, loc_q, cov_q):
    # x = loc_p + L_p eps with L_p L_p^T = cov_p (Cholesky) and eps ~ N(0, I): the log-ratio is
    # a quadratic in eps, cross products eps_i eps_j included (they are control variates too).
    factor_p, factor_q = (np.linalg.cholesky(np.atleast_2d(cov)) for cov in (cov_p, cov_q))
    normals = rng.standard_normal((n, factor_p.shape[0]))
    draws = np.atleast_1d(loc_p) + normals @ factor_p.T
    return Controlled(log_mvn_density_by_cholesky(draws, np.atleast_1d(loc_p), factor_p)
                      - log_mvn_density_by_cholesky(draws, np.atleast_1d(loc_q), factor_q), normals)


kl_mvn.add_check(MeanCheck(sample_log_ratio_mvn, "E_p[log p(x) - log q(x)] by Monte Carlo",
                           samples=CONTROLLED_SAMPLES, batches=200))

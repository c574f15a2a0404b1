"""GAN objectives: the players' costs, their gradients, and the optimal discriminator.

The GAN value function (Goodfellow et al. 2014, Eq. 1) is

    V(D, G) = E_{x ~ p_data}[log D(x)] + E_{z}[log(1 - D(G(z)))],

maximised by the discriminator and minimised by the generator. Per pair of one real
sample (discriminator output d_real = D(x)) and one fake sample (d_fake = D(G(z))), the
players' costs in the convention of Goodfellow (2016, Section 3.2), which averages over
a batch that is half real and half fake, are

    J_D            = -1/2 log d_real - 1/2 log(1 - d_fake)   (binary cross-entropy, real = 1, fake = 0)
    J_G (minimax)  = -J_D = 1/2 log d_real + 1/2 log(1 - d_fake)
    J_G (non-saturating) = -1/2 log d_fake                    (Goodfellow et al. 2014, Section 3)

Theory notebook, section 5: its D_loss is 2 J_D, its "G saturating objective" is the
d_fake part of 2 J_G (minimax), its non-saturating loss is 2 J_G (non-saturating). PyTorch's DCGAN
example sums the two binary cross-entropies in the same way: ``gan_losses_bce`` gives the losses
in that convention (twice J_D and twice the non-saturating J_G).

With d = sigmoid(logit), -log d = softplus(-logit) and -log(1 - d) = softplus(logit):
the logit form never takes log(0), even where d rounds to 0 or 1. The gradients with
respect to the fake sample's logit, derived below by SymPy, show why the minimax cost
saturates: d J_G/d logit = -d_fake/2 vanishes as d_fake -> 0 (a discriminator that
confidently rejects the fakes), while the non-saturating one's is -(1 - d_fake)/2 -> -1/2.

The optimal discriminator (Goodfellow et al. 2014, Proposition 1) maximises
p_data(x) log D + p_g(x) log(1 - D) pointwise: D* = p_data/(p_data + p_g), found by
SymPy solving the stationarity condition; its logit is log p_data - log p_g. The value
of the pointwise objective there integrates to V(D*, G) = -log 4 + 2 JSD(p_data || p_g)
(Theorem 1), checked in the tests by Monte Carlo against quadrature for Gaussian pairs.
"""
from __future__ import annotations

import math

import mpmath
import numpy as np
import sympy as sp
from sympy.codegen.cfunctions import log1p

from symgen.engine import (ArgMax, Derivation, IdentityCheck, Interval, Param, Positive, Real, lazy_module,
                           sigmoid, softplus)

# SciPy is loaded when a check first runs, not when the module is imported.
optimize = lazy_module("scipy.optimize")
special = lazy_module("scipy.special")
stats = lazy_module("scipy.stats")

REFERENCES = [
    "Goodfellow et al. (2014), Generative Adversarial Nets, Eq. 1 (the value function) and Section 3 "
    "(the non-saturating generator objective)",
    "Goodfellow (2016), NIPS 2016 Tutorial: Generative Adversarial Networks, Section 3.2 (the costs "
    "J_D, minimax and non-saturating J_G)",
]
OPTIMUM_REFERENCES = [
    "Goodfellow et al. (2014), Generative Adversarial Nets, Proposition 1 (the optimal discriminator) "
    "and Theorem 1 with its proof, Eq. 6 (C(G) = -log 4 + 2 JSD(p_data || p_g))",
]

half = sp.Rational(1, 2)
label = sp.Symbol("label", real=True)
probability = sp.Symbol("probability", positive=True)
# Binary cross-entropy of a prediction against a label (real = 1, fake = 0).
cross_entropy = -(label * sp.log(probability) + (1 - label) * sp.log(1 - probability))

# --- the costs in probability form ---------------------------------------------------------

d_real, d_fake = sp.symbols("d_real d_fake", positive=True)
PROBABILITY = Interval(0.0, 1.0, low_closed=True, high_closed=True, draw_low=1e-300, draw_high=1 - 2**-53)

gan_losses = Derivation(
    "gan_losses",
    notation={"discriminator": r"J_{D}",
              "generator_minimax": r"J_{G}^{\mathrm{minimax}}",
              "generator_non_saturating": r"J_{G}^{\mathrm{NS}}"},
    sections=(5,),
    title="GAN costs of the discriminator and the generator, from discriminator probabilities",
    summary="Per real/fake pair: J_D, the minimax J_G = -J_D, and the non-saturating J_G.",
    kind="adversarial",
    references=REFERENCES,
    params=[
        Param(d_real, PROBABILITY, "discriminator's probability that a real sample is real, D(x)"),
        Param(d_fake, PROBABILITY, "discriminator's probability that a generated sample is real, D(G(z))"),
    ],
)
chain = gan_losses.define(
    half * sp.Subs(cross_entropy, (label, probability), (1, d_real))
    + half * sp.Subs(cross_entropy, (label, probability), (0, d_fake)),
    "definition: the discriminator's cross-entropy, real labelled 1 and fake 0, averaged over the pair",
    output="discriminator", doc="J_D = -(log d_real + log(1 - d_fake))/2")
chain.step(-sp.log(d_real) / 2 - sp.log(1 - d_fake) / 2, "substitute the labels: the textbook cost")
chain.stable(-sp.log(d_real) / 2 - log1p(-d_fake) / 2,
             "log1p(-d_fake) keeps the digits of log(1 - d_fake) for small d_fake, where 1 - d_fake rounds to 1")

chain = gan_losses.define(
    -gan_losses.output("discriminator").steps[0].expression,
    "definition: the zero-sum (minimax) game, J_G = -J_D; G minimises V", output="generator_minimax",
    doc="J_G = (log d_real + log(1 - d_fake))/2; only the d_fake term depends on G")
chain.step(sp.log(d_real) / 2 + sp.log(1 - d_fake) / 2, "substitute the labels")
chain.stable(sp.log(d_real) / 2 + log1p(-d_fake) / 2, "log1p(-d_fake) for small d_fake")

chain = gan_losses.define(
    half * sp.Subs(cross_entropy, (label, probability), (1, d_fake)),
    "definition: the non-saturating cost, the cross-entropy of the fake sample labelled real "
    "(G maximises log D(G(z)) instead of minimising log(1 - D(G(z))))",
    output="generator_non_saturating", doc="J_G = -log(d_fake)/2")
chain.step(-sp.log(d_fake) / 2, "substitute the label")


def bernoulli_log_likelihood(outcome, probability_value):
    return float(stats.bernoulli.logpmf(outcome, probability_value))


gan_losses.add_check(IdentityCheck(
    lambda d_real, d_fake: -(bernoulli_log_likelihood(1, d_real) + bernoulli_log_likelihood(0, d_fake)) / 2,
    "J_D from scipy.stats.bernoulli log-likelihoods", output="discriminator", rtol=1e-12))
gan_losses.add_check(IdentityCheck(
    lambda d_real, d_fake: (bernoulli_log_likelihood(1, d_real) + bernoulli_log_likelihood(0, d_fake)) / 2,
    "minimax J_G from scipy.stats.bernoulli log-likelihoods", output="generator_minimax", rtol=1e-12))
gan_losses.add_check(IdentityCheck(
    lambda d_real, d_fake: -bernoulli_log_likelihood(1, d_fake) / 2,
    "non-saturating J_G from scipy.stats.bernoulli log-likelihoods", output="generator_non_saturating",
    rtol=1e-12))

# The usual slip: the minimax generator's term log(1 - D(G(z))) kept for the non-saturating cost.
gan_losses.add_slip("log(1 - d_fake)/2", "log(1 - d_fake)/2, the minimax term, for -log(d_fake)/2",
                    output="generator_non_saturating")

# --- the costs and the generator's gradients in logit form ------------------------------------

logit_real, logit_fake = sp.symbols("logit_real logit_fake", real=True)


# Logits are any finite reals. Hypothesis draws them (checks, accuracy) from [-30, 30]:
# candidates handed to ``symgen check`` are evaluated at 30 digits, where the textbook
# log(1 + e^-logit) keeps 17 digits at |logit| = 30 and none past 69, so the draws stop at 30
# (tests/test_gan.py checks the float64 edges, |logit| up to 700, against mpmath directly).
# The engine's numeric spot checks of the steps evaluate at 30-digit inputs and a 1e-25
# tolerance, relative to costs as small as 1e-13; their points come from [-10, 10]
# (sample_within), where the cost is above 4e-5.
LOGIT = Real(-30, 30, sample_within=(-10, 10))

gan_losses_logits = Derivation(
    "gan_losses_logits",
    notation={"discriminator": r"J_{D}",
              "generator_minimax": r"J_{G}^{\mathrm{minimax}}",
              "generator_non_saturating": r"J_{G}^{\mathrm{NS}}",
              "generator_minimax_grad": r"\partial J_{G}^{\mathrm{minimax}} / \partial \ell_{\mathrm{fake}}",
              "generator_non_saturating_grad": r"\partial J_{G}^{\mathrm{NS}} / \partial \ell_{\mathrm{fake}}"},
    sections=(5,),
    title="GAN costs and generator gradients from discriminator logits",
    summary="gan_losses at d = sigmoid(logit), never taking log(0), and d J_G / d logit_fake for both "
            "generator costs.",
    kind="adversarial",
    references=REFERENCES,
    params=[
        Param(logit_real, LOGIT, "discriminator's logit on a real sample (D(x) = sigmoid(logit))"),
        Param(logit_fake, LOGIT, "discriminator's logit on a generated sample"),
    ],
)
at_logits = {d_real: sigmoid(logit_real), d_fake: sigmoid(logit_fake)}
textbook_costs = {}        # each cost's closed form, which the gradients below differentiate

for output, textbook, stable, doc in [
    ("discriminator",
     sp.log(1 + sp.exp(-logit_real)) / 2 + sp.log(1 + sp.exp(logit_fake)) / 2,
     softplus(-logit_real) / 2 + softplus(logit_fake) / 2,
     "J_D = (softplus(-logit_real) + softplus(logit_fake))/2"),
    ("generator_minimax",
     -sp.log(1 + sp.exp(-logit_real)) / 2 - sp.log(1 + sp.exp(logit_fake)) / 2,
     -softplus(-logit_real) / 2 - softplus(logit_fake) / 2,
     "minimax J_G = -J_D"),
    ("generator_non_saturating",
     sp.log(1 + sp.exp(logit_fake)) / 2 - logit_fake / 2,
     softplus(-logit_fake) / 2,
     "non-saturating J_G = softplus(-logit_fake)/2"),
]:
    chain = gan_losses_logits.define(
        gan_losses.output(output).closed_form.xreplace(at_logits),
        "definition: the cost of gan_losses at d = sigmoid(logit)", output=output, doc=doc, published=True)
    if output == "generator_non_saturating":
        chain.step(sp.log(1 + sp.exp(-logit_fake)) / 2, "-log sigmoid(l) = log(1 + e^-l)")
        chain.step(textbook, "log(1 + e^-l) = log(1 + e^l) - l: the cost grows like -l/2 as the "
                             "discriminator rejects the fakes (l -> -inf), where the minimax cost "
                             "-log(1 + e^l)/2 flattens to 0")
    else:
        chain.step(textbook, "-log sigmoid(l) = log(1 + e^-l) and -log(1 - sigmoid(l)) = log(1 + e^l)")
    chain.stable(stable, "softplus(x) = log(1 + e^x), computed as log1p(e^x) and as x itself above 33.3: "
                         "no overflow of e^x and no log(0) where sigmoid rounds to 0 or 1")
    textbook_costs[output] = textbook

slope_variable = sp.Symbol("t", real=True)
for output, cost, gradient, doc in [
    ("generator_minimax_grad", "generator_minimax",
     -1 / (2 * (1 + sp.exp(-logit_fake))),
     "d J_G/d logit_fake = -d_fake/2: vanishes as d_fake -> 0 (the cost saturates)"),
    ("generator_non_saturating_grad", "generator_non_saturating",
     -1 / (2 * (1 + sp.exp(logit_fake))),
     "d J_G/d logit_fake = -(1 - d_fake)/2: tends to -1/2 as d_fake -> 0"),
]:
    # d/dt cost(t) at t = logit_fake: a dummy differentiation variable, so the point can be
    # substituted by a number.
    chain = gan_losses_logits.define(
        sp.Subs(sp.Derivative(textbook_costs[cost].xreplace({logit_fake: slope_variable}), slope_variable),
                slope_variable, logit_fake),
        f"definition: the gradient of the {cost.replace('_', ' ')} cost with respect to the fake "
        "sample's logit", output=output, doc=doc)
    chain.step(lambda previous: sp.simplify(previous.doit()), "SymPy differentiates")
    chain.step(gradient, "= -sigmoid(logit_fake)/2 (minimax) or -sigmoid(-logit_fake)/2 "
                         "(non-saturating): the textbook form")
    sign = 1 if output == "generator_minimax_grad" else -1
    chain.stable(-sp.exp(-softplus(-sign * logit_fake)) / 2,
                 "sigmoid(x) = exp(-softplus(-x)): no overflow of e^-x for very negative x")


def log_sigmoid(x):
    return float(special.log_expit(x))


gan_losses_logits.add_check(IdentityCheck(
    lambda logit_real, logit_fake: -(log_sigmoid(logit_real) + log_sigmoid(-logit_fake)) / 2,
    "J_D from scipy.special.log_expit", output="discriminator", rtol=1e-12))
gan_losses_logits.add_check(IdentityCheck(
    lambda logit_real, logit_fake: (log_sigmoid(logit_real) + log_sigmoid(-logit_fake)) / 2,
    "minimax J_G from scipy.special.log_expit", output="generator_minimax", rtol=1e-12))
gan_losses_logits.add_check(IdentityCheck(
    lambda logit_real, logit_fake: -log_sigmoid(logit_fake) / 2,
    "non-saturating J_G from scipy.special.log_expit", output="generator_non_saturating", rtol=1e-12))


def finite_difference_gradient(cost):
    """d cost / d logit_fake by mpmath's numerical differentiation of the probability-form
    cost at d_fake = 1/(1 + e^-logit_fake), with enough digits for 1 - d_fake to survive."""
    def gradient(logit_real, logit_fake):
        with mpmath.workdps(40 + int(abs(logit_fake))):
            def cost_at(logit):
                fake = 1 / (1 + mpmath.exp(-logit))
                return cost(fake)
            return float(mpmath.diff(cost_at, mpmath.mpf(logit_fake)))
    return gradient


gan_losses_logits.add_check(IdentityCheck(
    finite_difference_gradient(lambda fake: mpmath.log(1 - fake) / 2),
    "minimax gradient by mpmath numerical differentiation", output="generator_minimax_grad", rtol=1e-12))
gan_losses_logits.add_check(IdentityCheck(
    finite_difference_gradient(lambda fake: -mpmath.log(fake) / 2),
    "non-saturating gradient by mpmath numerical differentiation", output="generator_non_saturating_grad",
    rtol=1e-12))

# --- the sum-of-BCE convention (PyTorch's DCGAN example) ---------------------------------------------

DCGAN_REFERENCE = ("PyTorch examples, dcgan/main.py (errD = BCE(D(x), 1) + BCE(D(G(z)), 0), "
                   "errG = BCE(D(G(z)), 1)), "
                   "following Radford, Metz & Chintala (2016), Unsupervised Representation Learning with Deep "
                   "Convolutional GANs")

gan_losses_bce = Derivation(
    "gan_losses_bce",
    notation={"discriminator": r"L_{D}", "generator": r"L_{G}"},
    sections=(5,),
    title="GAN losses as a sum of binary cross-entropies on logits (the DCGAN convention)",
    summary="discriminator = BCE(sigmoid(logit_real), 1) + BCE(sigmoid(logit_fake), 0) and generator = "
            "BCE(sigmoid(logit_fake), 1), as PyTorch's DCGAN example sums them (BCEWithLogitsLoss): twice "
            "gan_losses_logits' J_D and non-saturating J_G, which average over a half-real, half-fake batch.",
    kind="adversarial",
    references=[DCGAN_REFERENCE, *REFERENCES],
    params=[
        Param(logit_real, LOGIT, "discriminator's logit on a real sample (D(x) = sigmoid(logit))"),
        Param(logit_fake, LOGIT, "discriminator's logit on a generated sample"),
    ],
)


def bce_of_logit(logit, target):
    """BCE(sigmoid(logit), target) from the cross-entropy above, target 1 (real) or 0 (fake)."""
    return cross_entropy.xreplace({label: target, probability: sigmoid(logit)})


(gan_losses_bce
 .define(bce_of_logit(logit_real, 1) + bce_of_logit(logit_fake, 0),
         "definition (the DCGAN example): the discriminator's loss is the BCE of its real output against "
         "label 1 plus the BCE of its fake output against label 0, summed, not averaged", output="discriminator",
         doc="BCE(D(x), 1) + BCE(D(G(z)), 0) = softplus(-logit_real) + softplus(logit_fake)", published=True)
 .step(sp.log(1 + sp.exp(-logit_real)) + sp.log(1 + sp.exp(logit_fake)),
       "-log sigmoid(l) = log(1 + e^-l) and -log(1 - sigmoid(l)) = log(1 + e^l)")
 .stable(softplus(-logit_real) + softplus(logit_fake),
         "softplus, as in gan_losses_logits: no overflow of e^x, no log(0) where sigmoid rounds to 0 or 1"))
(gan_losses_bce
 .define(bce_of_logit(logit_fake, 1),
         "definition (the DCGAN example): the generator's loss is the BCE of the discriminator's output on "
         "its sample against the real label 1, the non-saturating cost (Goodfellow et al. 2014, Sec. 3)",
         output="generator", doc="BCE(D(G(z)), 1) = softplus(-logit_fake)", published=True)
 .step(sp.log(1 + sp.exp(-logit_fake)), "-log sigmoid(l) = log(1 + e^-l)")
 .stable(softplus(-logit_fake), "softplus, as above"))

# Deterministic routes (scipy's log_expit, accurate to an ulp): false-alarm probability 0 at 1e-12.
gan_losses_bce.add_check(IdentityCheck(
    lambda logit_real, logit_fake: -(log_sigmoid(logit_real) + log_sigmoid(-logit_fake)),
    "BCE(D(x), 1) + BCE(D(G(z)), 0) from scipy.special.log_expit", output="discriminator", rtol=1e-12))
gan_losses_bce.add_check(IdentityCheck(
    lambda logit_real, logit_fake: -log_sigmoid(logit_fake),
    "BCE(D(G(z)), 1) from scipy.special.log_expit", output="generator", rtol=1e-12))

gan_losses_bce.add_slip("(log(1 + exp(-logit_real)) + log(1 + exp(logit_fake)))/2",
                        "the half convention (J_D) for the DCGAN sum", output="discriminator")
gan_losses_bce.add_slip("-log(1 + exp(logit_fake))", "the minimax cost log(1 - D(G(z))) for the non-saturating one",
                        output="generator")
gan_losses_bce.add_slip("log(1 + exp(logit_fake))", "the fake sample labelled fake (BCE(D(G(z)), 0))",
                        output="generator")


# --- the optimal discriminator ------------------------------------------------------------------

p_data, p_g = sp.symbols("p_data p_g", positive=True)
discriminator = sp.Symbol("D", positive=True)
pointwise_objective = p_data * sp.log(discriminator) + p_g * sp.log(1 - discriminator)
optimum = ArgMax(pointwise_objective, discriminator)
mixture = (p_data + p_g) / 2

gan_optimal_discriminator = Derivation(
    "gan_optimal_discriminator",
    notation={"logit": r"\log \frac{D^{*}(x)}{1 - D^{*}(x)}", "value": r"V^{*}(x)"},
    sections=(5,),
    title="The optimal GAN discriminator and the pointwise value of the objective there",
    summary="For densities p_data(x), p_g(x) at a point x: the logit of D*(x) = p_data/(p_data + p_g), "
            "and p_data log D* + p_g log(1 - D*), whose integral over x is -log 4 + 2 JSD(p_data || p_g).",
    kind="adversarial",
    references=OPTIMUM_REFERENCES,
    params=[
        Param(p_data, Positive(1e-3, 1e3), "density of the data at x, p_data(x)"),
        Param(p_g, Positive(1e-3, 1e3), "density of the generator's samples at x, p_g(x)"),
    ],
    # Near-equal densities (where the generator is right) are where log p_data - log p_g cancels.
    near=[(p_g, p_data)],
)
chain = gan_optimal_discriminator.define(
    sp.log(optimum / (1 - optimum)),
    "definition: the logit of D*(x), the maximiser over D in (0, 1) of p_data log D + p_g log(1 - D), "
    "the integrand of V(D, G) at x", output="logit",
    doc="log D*/(1 - D*) = log p_data - log p_g; D* = sigmoid(logit)")
chain.step(sp.log((p_data / (p_data + p_g)) / (1 - p_data / (p_data + p_g))),
           "SymPy solves d/dD [p_data log D + p_g log(1 - D)] = 0: D* = p_data/(p_data + p_g), "
           "a maximum (the second derivative is negative)")
chain.step(sp.log(p_data) - sp.log(p_g), "1 - D* = p_g/(p_data + p_g): the log density ratio")
relative_difference = (p_data - p_g) / p_g
chain.stable(
    sp.Piecewise((log1p(relative_difference), sp.Abs(p_data - p_g) <= p_g / 2),
                 (sp.log(p_data) - sp.log(p_g), True)),
    "near p_data = p_g, log1p of the exact relative difference (p_data - p_g)/p_g; elsewhere the "
    "logarithms differ by more than log 3/2 and their difference keeps its digits")

chain = gan_optimal_discriminator.define(
    pointwise_objective.subs(discriminator, optimum),
    "definition: the pointwise objective at its maximiser", output="value",
    doc="p_data log D* + p_g log(1 - D*) <= 0; integrates to -log 4 + 2 JSD")
chain.step(p_data * sp.log(p_data / (p_data + p_g)) + p_g * sp.log(p_g / (p_data + p_g)),
           "SymPy solves the stationarity condition: D* = p_data/(p_data + p_g)")
chain.step(-(p_data + p_g) * sp.log(2) + p_data * sp.log(p_data / mixture) + p_g * sp.log(p_g / mixture),
           "in terms of the mixture m = (p_data + p_g)/2: integrated over x, with int p_data = int p_g = 1, "
           "this is -log 4 + KL(p_data || m) + KL(p_g || m) = -log 4 + 2 JSD(p_data || p_g)")
chain.stable(-p_data * log1p(p_g / p_data) - p_g * log1p(p_data / p_g),
             "log(p_data/(p_data + p_g)) = -log1p(p_g/p_data): two non-positive terms, no cancellation, "
             "and no rounding of p_data/(p_data + p_g) to 1 when p_g << p_data")


def maximise_numerically(p_data, p_g):
    """The maximiser of p_data log D + p_g log(1 - D) over (0, 1), by Brent's root finder on
    its derivative p_data/D - p_g/(1 - D), which falls from +inf to -inf."""
    slope = lambda d: p_data / d - p_g / (1 - d)   # noqa: E731
    return optimize.brentq(slope, 1e-300, 1 - 2**-53, xtol=1e-300, rtol=4 * np.finfo(float).eps,
                                 maxiter=500)


def numerical_logit(p_data, p_g):
    optimum_value = maximise_numerically(p_data, p_g)
    return math.log(optimum_value) - math.log1p(-optimum_value)


def numerical_value(p_data, p_g):
    optimum_value = maximise_numerically(p_data, p_g)
    return p_data * math.log(optimum_value) + p_g * math.log1p(-optimum_value)


# The root finder is accurate to a few ulps of D*; the logit's conditioning near
# D* = 1/2 (where it is ~0) is covered by an absolute floor of a few ulps.
gan_optimal_discriminator.add_check(IdentityCheck(
    numerical_logit, "the logit of the maximiser found by scipy.optimize.brentq", output="logit",
    rtol=1e-9, atol=1e-13))
gan_optimal_discriminator.add_check(IdentityCheck(
    numerical_value, "the objective at the maximiser found by scipy.optimize.brentq", output="value",
    rtol=1e-9))


def draw_generator_costs_in_the_logit(axes):
    """The minimax and non-saturating generator costs and their gradients against the
    discriminator's logit on fake samples: the minimax gradient vanishes as D(G(z)) -> 0."""
    import numpy as np

    from symgen.formulas import gan_losses_logits

    logit_fake = np.linspace(-10, 10, 400)
    costs = gan_losses_logits(0.0, logit_fake)
    axes.plot(logit_fake, costs.generator_minimax, label="minimax cost")
    axes.plot(logit_fake, costs.generator_non_saturating, label="non-saturating cost")
    axes.plot(logit_fake, costs.generator_minimax_grad, "--", label="minimax gradient")
    axes.plot(logit_fake, costs.generator_non_saturating_grad, "--", label="non-saturating gradient")
    axes.set_xlabel("discriminator logit on a fake sample (D(G(z)) = sigmoid)")
    axes.set_ylabel("cost / gradient")
    axes.legend()


gan_losses_logits.add_plot("Generator costs and their gradients in the logit", draw_generator_costs_in_the_logit)

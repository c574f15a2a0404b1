"""Discrete likelihoods and their units: categorical autoregressive, bits/dim, perplexity, DDPM decoder.

Autoregressive models factor a joint pmf by the chain rule, p(x) = prod_i p(x_i | x_<i)
(van den Oord, Kalchbrenner & Kavukcuoglu 2016, Eq. 1), each conditional a softmax over
the values a pixel can take (their Section 2.2). ``autoregressive_categorical_logpmf_2x3`` is
the smallest such model with more than two categories: two steps, three categories,
first-step logits a_k and second-step logits b_{jk} for x2 = k given x1 = j:

    log p(x1, x2) = a_{x1} - log sum_k e^{a_k} + b_{x1 x2} - log sum_k e^{b_{x1 k}}.

A log-likelihood in nats becomes the units papers report by a change of base:
bits per dimension -log_2 p(x) / D = nll / (D ln 2) (PixelRNN, Section 5.1; the total
discrete log-likelihood normalised by the number of dimensions), and perplexity, the
inverse geometric mean of the per-token probabilities, p^(-1/N) = exp(nll / N)
(Bengio et al. 2003, Section 4).

DDPM's decoder (Ho, Jain & Abbeel 2020, Eq. 13) gives 8-bit data scaled to [-1, 1] a
discrete likelihood: the Gaussian N(loc, scale^2) integrated over the bin of width 2/255
around each grid value, the bins at -1 and 1 extended to -inf and inf so that the 256
bins cover the line:

    log P(x) = log(Phi((x + 1/255 - loc)/scale) - Phi((x - 1/255 - loc)/scale)).

Far in the tails (loc many scales away from x, or a tiny scale) both CDFs round to 1
(or to 0), and the textbook difference is log 0; the generated code uses the stable
primitive ``log_normal_mass`` (symgen.numerics.stable), which never forms that
difference.

Checks that never use the closed forms: exact enumeration of every value (the pmf sums
to 1), frequencies of ancestral samples (the Gumbel-max trick for the softmaxes;
Gaussian draws clipped and rounded to the grid for the decoder) against exp(log p) with
exact binomial bounds, and mpmath evaluations of the papers' definitions (the chain rule
with table lookups; the bin integral by quadrature; base-2 logarithms and powers).

The categorical model here is the proved small case (two tokens, three categories, twelve logits
as scalars: ``autoregressive_categorical_logpmf_2x3``). For sequences of any length from a network's
logits, ``from symgen import autoregressive_categorical_logpmf`` (logits (..., L, K), tokens (..., L);
symgen/numerics/sequences.py), held to this case and checked by enumeration in
tests/test_general_layers.py.
"""
import math

import mpmath
import numpy as np
import sympy as sp

from symgen.engine import (Derivation, EnumerationCheck, IdentityCheck, NonNegative, OneOf, Param, Positive, Real,
                           log_gaussian_mass, log_normal_cdf, log_normal_mass, logaddexp, normal_cdf)

PIXEL_RNN = ("van den Oord, Kalchbrenner & Kavukcuoglu (2016), Pixel Recurrent Neural Networks, Eq. 1 "
             "(the chain rule) and Section 2.2 (softmax conditionals over discrete pixel values)")
PIXEL_RNN_EVALUATION = ("van den Oord, Kalchbrenner & Kavukcuoglu (2016), Pixel Recurrent Neural Networks, "
                        "Section 5.1 (negative log-likelihood in bits per dimension)")
BENGIO = ("Bengio, Ducharme, Vincent & Jauvin (2003), A Neural Probabilistic Language Model, JMLR, "
          "Section 4 (perplexity: the exponential of the average negative log-likelihood)")
DDPM = ("Ho, Jain & Abbeel (2020), Denoising Diffusion Probabilistic Models, Section 3.3 and Eq. 13 "
        "(the discrete decoder of data scaled to [-1, 1])")
DDPM_BITS = "Ho, Jain & Abbeel (2020), Denoising Diffusion Probabilistic Models, Table 1 (NLL in bits/dim)"


# --- vocabulary: table lookups and softmaxes as polynomials in a category -----------------------


def indicator(category, value, count=3):
    """[value = category] for value in {0, ..., count - 1}: the Lagrange polynomial that is 1
    at ``category`` and 0 at the other categories (a polynomial identity of SymPy's)."""
    others = [j for j in range(count) if j != category]
    return sp.Mul(*[(value - j) for j in others]) / sp.Mul(*[(category - j) for j in others])


def selected(entries, value):
    """entries[value], a table lookup written as a polynomial in value (exact on the categories)."""
    return sum(indicator(k, value, len(entries)) * entry for k, entry in enumerate(entries))


def softmax_pmf(logits, value):
    """softmax(logits)[value] as prod_k softmax_k^[value = k]: a categorical pmf."""
    total = sum(sp.exp(logit) for logit in logits)
    return sp.Mul(*[(sp.exp(logit) / total) ** indicator(k, value, len(logits)) for k, logit in enumerate(logits)])


def log_sum_exp(terms):
    return sp.log(sum(sp.exp(term) for term in terms))


# --- 1. a categorical autoregressive model ---------------------------------------------------

x1, x2 = sp.symbols("x1 x2", real=True)
first_logits = list(sp.symbols("a0 a1 a2", real=True))
table = [list(sp.symbols(f"b{j}0 b{j}1 b{j}2", real=True)) for j in range(3)]

# A category 0, 1 or 2; the requires below name the allowed values.
CATEGORY = OneOf((0, 1, 2))
# Hypothesis draws logits in [-8, 8], where every conditional probability is above 3e-8 and
# the frequencies of the likely sequences can tell a wrong formula from the right one; the
# function accepts any finite logit (the tests go to +-700).
LOGIT = Real(-8.0, 8.0)

autoregressive_categorical_logpmf_2x3 = Derivation(
    "autoregressive_categorical_logpmf_2x3",
    notation={"autoregressive_categorical_logpmf_2x3": r"\log p(x_{1}, x_{2})"},
    sections=(1,),
    title="Log probability of a sequence under a 2-step autoregressive model with 3 categories",
    summary="log p(x1, x2) = log softmax(a)_{x1} + log softmax(b_{x1})_{x2}: the chain rule with "
            "softmax conditionals.",
    kind="likelihood",
    references=[PIXEL_RNN],
    params=[
        Param(x1, CATEGORY, "first variable"),
        Param(x2, CATEGORY, "second variable"),
        *[Param(logit, LOGIT, f"logit of x1 = {k}") for k, logit in enumerate(first_logits)],
        *[Param(table[j][k], LOGIT, f"logit of x2 = {k} given x1 = {j}") for j in range(3) for k in range(3)],
    ],
    requires=[(sp.Eq(x1 * (x1 - 1) * (x1 - 2), 0), "argument 'x1' must be 0, 1 or 2"),
              (sp.Eq(x2 * (x2 - 1) * (x2 - 2), 0), "argument 'x2' must be 0, 1 or 2")],
    returns="log p(x1, x2) in nats",
)

# p(x2 | x1) = softmax(b_{x1})_{x2} = prod_{j,k} softmax(b_j)_k^([x1 = j][x2 = k]).
second_given_first = sp.Mul(*[softmax_pmf(table[j], x2) ** indicator(j, x1) for j in range(3)])
# evaluate=False writes the same log down: SymPy's log would spend tens of milliseconds at
# import asking whether the product can be 0 or negative, only to leave it as it is.
categorical_chain = autoregressive_categorical_logpmf_2x3.define(
    sp.log(softmax_pmf(first_logits, x1) * second_given_first, evaluate=False),
    "definition: the chain rule p(x1, x2) = p(x1) p(x2 | x1) (Eq. 1) with softmax conditionals, "
    "p(x1) = softmax(a)_{x1} and p(x2 | x1) = softmax(b_{x1})_{x2}, each lookup written as a product "
    "of powers p^[x = k], the indicator [x = k] a polynomial in x that is exact on {0, 1, 2}")
categorical_chain.step(
    lambda current: sp.expand_log(current, force=True),
    "the log of a product is the sum of the logs: sum_i log p(x_i | x_<i) (SymPy's expand_log)")
categorical_chain.step(
    selected(first_logits, x1) - log_sum_exp(first_logits)
    + sum(indicator(j, x1) * (selected(table[j], x2) - log_sum_exp(table[j])) for j in range(3)),
    "log softmax_k = logit_k - log sum_j e^{logit_j}, and the indicators sum to 1 (SymPy: expand): "
    "a_{x1} - logsumexp(a) + b_{x1 x2} - logsumexp(b_{x1}), the row b_{x1} picked by [x1 = j]")


def stable_log_softmax(logits, value):
    """log softmax(logits)[value] = -log sum_j exp(logit_j - logit_value), nested logaddexp,
    with logit_value looked up by the indicator polynomials (exact on the categories)."""
    chosen = selected(logits, value)
    differences = [logit - chosen for logit in logits]
    return -logaddexp(logaddexp(differences[0], differences[1]), differences[2])


# The row b_{x1} of the second step's table, looked up once: b_{x1, k} for k = 0, 1, 2.
second_row = [selected([table[j][k] for j in range(3)], x1) for k in range(3)]
categorical_chain.stable(
    stable_log_softmax(first_logits, x1) + stable_log_softmax(second_row, x2),
    "logit_k - log sum_j e^{logit_j} = -log sum_j e^{logit_j - logit_k}, by nested logaddexp, with "
    "the row b_{x1} and the logits a_{x1}, b_{x1 x2} looked up first (4 logaddexp in all, not one "
    "per table cell): no exponential overflows (logaddexp factors out the larger argument, so "
    "logits of +-700 are fine), and the term j = k is exactly e^0 = 1, so when k is the likeliest "
    "category the result is -log1p(rest) and a log probability of -1e-300 keeps its digits (the "
    "textbook difference gives 0). The lookups hold on the categories only: proved case by case")


def gumbel_max_samples(rng, n, **params):
    """Ancestral sampling with the Gumbel-max trick (Gumbel 1954; see Maddison, Tarlow & Minka
    2014, A* Sampling): x1 = argmax_k (a_k + G_k), then x2 = argmax_k (b_{x1 k} + G'_k), G
    i.i.d. standard Gumbel, so argmax ~ softmax without any softmax being normalised."""
    first = np.array([params[f"a{k}"] for k in range(3)])
    rows = np.array([[params[f"b{j}{k}"] for k in range(3)] for j in range(3)])
    x1_draws = np.argmax(first + rng.gumbel(size=(n, 3)), axis=1)
    x2_draws = np.argmax(rows[x1_draws] + rng.gumbel(size=(n, 3)), axis=1)
    return np.stack([x1_draws, x2_draws], axis=1)


def chain_rule_by_mpmath(x1, x2, **params):
    """log p(x1) + log p(x2 | x1) at 50 digits, each conditional a softmax looked up by index."""
    with mpmath.workdps(50):
        first = [mpmath.mpf(params[f"a{k}"]) for k in range(3)]
        row = [mpmath.mpf(params[f"b{int(x1)}{k}"]) for k in range(3)]
        first_p = mpmath.exp(first[int(x1)]) / mpmath.fsum(mpmath.exp(v) for v in first)
        second_p = mpmath.exp(row[int(x2)]) / mpmath.fsum(mpmath.exp(v) for v in row)
        return mpmath.log(first_p) + mpmath.log(second_p)


# First, because it is cheap (symgen.check stops at the first check that refutes). A
# deterministic route: the generated code is accurate to ~1e-15 relative, so 1e-11 is slack.
autoregressive_categorical_logpmf_2x3.add_check(IdentityCheck(
    chain_rule_by_mpmath, "the chain rule with softmax table lookups, by mpmath at 50 digits", rtol=1e-11))
autoregressive_categorical_logpmf_2x3.add_check(EnumerationCheck(
    gumbel_max_samples,
    "all 9 sequences sum to 1; Gumbel-max ancestral sampling frequencies (exact binomial cells)",
    # 200_000 draws: a probability off by 0.01 at p = 0.2 stands out by 11 standard errors.
    variables=("x1", "x2"), grids=((0.0, 1.0, 2.0), (0.0, 1.0, 2.0)), samples=200_000))


# The usual slips, in a candidate's own words: a lookup entries[value] is a Piecewise over
# the categories, and log softmax(logits)_value = logits[value] - log sum_k e^{logit_k}.
def lookup_text(entries, value):
    cases = ", ".join(f"({entry}, Eq({value}, {k}))" for k, entry in enumerate(entries[:-1]))
    return f"Piecewise({cases}, ({entries[-1]}, True))"


def log_softmax_text(logits, value):
    return f"({lookup_text(logits, value)} - log({' + '.join(f'exp({logit})' for logit in logits)}))"


FIRST_STEP_TEXT = log_softmax_text(["a0", "a1", "a2"], "x1")                   # log p(x1)
ROWS_TEXT = [[f"b{j}{k}" for k in range(3)] for j in range(3)]                  # b_{jk}: row j
SECOND_STEP_TEXT = lookup_text([log_softmax_text(row, "x2") for row in ROWS_TEXT], "x1")   # log p(x2 | x1)

autoregressive_categorical_logpmf_2x3.add_slip(
    f"{FIRST_STEP_TEXT} + {lookup_text([log_softmax_text([f'b{k}{j}' for k in range(3)], 'x2') for j in range(3)], 'x1')}",
    "the row of x2 (b_{x2 x1})")
autoregressive_categorical_logpmf_2x3.add_slip(
    f"{FIRST_STEP_TEXT} + {lookup_text([lookup_text(row, 'x2') for row in ROWS_TEXT], 'x1')}",
    "no normaliser at the second step")
autoregressive_categorical_logpmf_2x3.add_slip(
    f"{FIRST_STEP_TEXT} + {log_softmax_text(['a0', 'a1', 'a2'], 'x2')}", "x1's logits reused for x2")
autoregressive_categorical_logpmf_2x3.add_slip(f"({FIRST_STEP_TEXT} + {SECOND_STEP_TEXT})/log(2)", "log base 2")
autoregressive_categorical_logpmf_2x3.add_slip(FIRST_STEP_TEXT, "the first step only")


# --- 2. bits per dimension and perplexity ----------------------------------------------------

# Real, not nonnegative: with that assumption SymPy would decide nll_nats >= 0 is True and
# the generated code would not check it.
nll_nats = sp.Symbol("nll_nats", real=True)
dims = sp.Symbol("dims", positive=True)
tokens = sp.Symbol("tokens", positive=True)
bits = sp.Symbol("bits", real=True)

# A negative log-likelihood of discrete data is -log p with p <= 1: never negative. (A
# continuous density can exceed 1; its negative log-likelihood needs the data's
# quantisation, log(2/255) per dimension for DDPM, added before it is in bits.)
NONNEGATIVE_NLL = (nll_nats >= 0, ("argument 'nll_nats' must be >= 0: the negative log-likelihood of "
                                   "discrete data, -log p with p <= 1 (add the quantisation term for a density)"))
probability_of_data = sp.UnevaluatedExpr(sp.exp(-nll_nats))   # p(x), kept as e^{-nll} in the display

bits_per_dim = Derivation(
    "bits_per_dim",
    notation={"bits_per_dim": r"\mathrm{bpd}"},
    sections=(1, 13),
    title="Bits per dimension of a negative log-likelihood in nats",
    summary="-log_2 p(x) / D = nll / (D ln 2): the change of base from nats to bits, per dimension.",
    kind="metric",
    references=[PIXEL_RNN_EVALUATION, DDPM_BITS],
    params=[
        Param(nll_nats, NonNegative(1e5), "negative log-likelihood -ln p(x) of the whole datum (nats), discrete data"),
        Param(dims, Positive(1.0, 1e5), "number of dimensions D (3072 for a 32x32 RGB image)"),
    ],
    requires=[NONNEGATIVE_NLL],
    returns="bits per dimension",
)

bits_chain = bits_per_dim.define(
    -sp.log(probability_of_data, 2) / dims,
    "definition: the code length of x in bits, -log_2 p(x), per dimension, for p(x) = e^{-nll}; SymPy "
    "writes log_2 p as ln p / ln 2 (the change of base)")
bits_chain.step(
    lambda previous: sp.solve(sp.Eq(2 ** (-dims * bits), sp.exp(-nll_nats)), bits)[0],
    "equivalently the b with 2^{-D b} = p(x) = e^{-nll}: SymPy's solve gives nll / (D ln 2)")


def bits_by_mpmath(nll_nats, dims):
    """-log_2 p(x) / D from p = e^{-nll}: mpmath's base-2 logarithm of the probability, with 50
    digits beyond the ones that p = 1 - nll spends on its leading 9s when nll is tiny."""
    leading_nines = max(0, int(-math.log10(nll_nats))) if 0 < nll_nats < 1 else 0
    with mpmath.workdps(50 + leading_nines):
        return -mpmath.log(mpmath.exp(-mpmath.mpf(nll_nats)), 2) / mpmath.mpf(dims)


# No sampling experiment measures a code length here: this check evaluates the definition
# itself at 50 digits, and says so (kind "definition").
bits_per_dim.add_check(IdentityCheck(
    bits_by_mpmath, "definition, evaluated at 50 digits: mpmath's base-2 log of the probability e^{-nll}, "
    "per dimension", rtol=1e-12, definition=True))

bits_per_dim.add_slip("nll_nats/dims", "no change of base (nats per dimension)")
bits_per_dim.add_slip("nll_nats/(dims*log(10))", "base 10")
bits_per_dim.add_slip("nll_nats*log(2)/dims", "multiplied by ln 2")
bits_per_dim.add_slip("nll_nats/log(2)", "not per dimension")


perplexity = Derivation(
    "perplexity",
    notation={"perplexity": r"\mathrm{PPL}"},
    sections=(1, 13),
    title="Perplexity of a negative log-likelihood in nats over a number of tokens",
    summary="p(w_1, ..., w_N)^(-1/N) = exp(nll / N): the inverse geometric mean of the per-token "
            "probabilities, 2 to the bits per token.",
    kind="metric",
    references=[BENGIO],
    params=[
        Param(nll_nats, NonNegative(5e3), "negative log-likelihood -ln p(w_1, ..., w_N) of the whole sequence (nats)"),
        Param(tokens, Positive(10.0, 1e5), "number of tokens N"),
    ],
    requires=[NONNEGATIVE_NLL],
    returns="perplexity (overflows to inf beyond nll / N = 709.78)",
)

perplexity_chain = perplexity.define(
    probability_of_data ** (-1 / tokens),
    "definition: the inverse geometric mean of the token probabilities, prod_i p(w_i | w_<i)^{-1/N} "
    "= p(w)^{-1/N}, for p(w) = e^{-nll}")
perplexity_chain.step(
    sp.exp(nll_nats / tokens),
    "(e^{-nll})^{-1/N} = e^{nll/N}, a power of a positive base (SymPy): the exponential of the average "
    "negative log-likelihood per token, equal to 2 to the cross-entropy in bits per token")


def perplexity_by_mpmath(nll_nats, tokens):
    """p^(-1/N) from p = e^{-nll} at 50 digits: mpmath's power of the probability."""
    with mpmath.workdps(50):
        return mpmath.power(mpmath.exp(-mpmath.mpf(nll_nats)), -1 / mpmath.mpf(tokens))


# As for bits per dimension: the definition evaluated at 50 digits, labelled so.
perplexity.add_check(IdentityCheck(
    perplexity_by_mpmath, "definition, evaluated at 50 digits: mpmath's power p^{-1/N} of the probability "
    "e^{-nll}", rtol=1e-12, definition=True))

perplexity.add_slip("2**(nll_nats/tokens)", "2 to the nats per token")
perplexity.add_slip("exp(nll_nats)", "not per token")
perplexity.add_slip("exp(-nll_nats/tokens)", "the geometric mean probability, not its inverse")
perplexity.add_slip("exp(nll_nats/(tokens*log(2)))", "e to the bits per token")
perplexity.add_slip("tokens*exp(nll_nats/tokens)", "times the number of tokens")


# --- 3. DDPM's discretized Gaussian decoder --------------------------------------------------

# Pixel values k = 0, ..., 255 scaled to [-1, 1] as users do it, k / 127.5 - 1.
EIGHT_BIT_GRID = np.arange(256) / 127.5 - 1
# A pixel value k in 0..255 scaled to [-1, 1], x = 2k/255 - 1 (Section 3.3). The generated
# code checks x in [-1, 1]; the derivation's requires checks the grid. The edge values -1
# and 1, whose bins reach to -inf and inf, are where a decoder is most often wrong: draws
# hit each a quarter of the time (2 of 256 values otherwise), shrinking to the bin at -1.
PIXEL = OneOf(tuple(float(value) for value in EIGHT_BIT_GRID), description="2k/255 - 1 for an integer k in [0, 255]",
              favour=(-1.0, 1.0), constraint=("interval", -1.0, 1.0, True, True))

x, loc = sp.symbols("x loc", real=True)
scale = sp.Symbol("scale", positive=True)
HALF_WIDTH = sp.Rational(1, 255)       # half the spacing 2/255 of the grid
BIN_WIDTH = sp.Rational(2, 255)
# The edge bins: x = -1 takes (-inf, -1 + 1/255], x = 1 takes [1 - 1/255, inf). The
# conditions split the grid halfway between -1 and its neighbour, so rounding of x is harmless.
LOWER_EDGE = x < -1 + HALF_WIDTH
UPPER_EDGE = x > 1 - HALF_WIDTH
# In units of a grid step, x must be within 1e-3 of an integer k: a float32 k/127.5 - 1 is
# within 2e-5 (rounding of x and of 127.5 (x + 1)); anything further is not 8-bit data.
GRID_TOLERANCE = 1e-3
step_index = 255 * (x + 1) / 2

discretized_gaussian_logpmf = Derivation(
    "discretized_gaussian_logpmf",
    notation={"discretized_gaussian_logpmf": r"\log P(x)"},
    sections=(1, 7),
    title="Log probability of an 8-bit value under DDPM's discretized Gaussian decoder",
    summary="log of N(loc, scale^2) integrated over the bin of width 2/255 around x in [-1, 1], the edge "
            "bins extended to -inf and inf (Eq. 13).",
    kind="likelihood",
    references=[DDPM],
    params=[
        Param(x, PIXEL, "the data value, a pixel value k scaled to [-1, 1]: x = 2k/255 - 1"),
        Param(loc, Real(-2.0, 2.0), "mean of the decoder's Gaussian (the network's prediction)"),
        Param(scale, Positive(1e-4, 10.0), "its standard deviation"),
    ],
    near=[(loc, x)],
    requires=[(sp.Abs(step_index - sp.floor(step_index + sp.Rational(1, 2))) <= GRID_TOLERANCE,
               ("argument 'x' must lie on the 8-bit grid 2k/255 - 1 for k = 0, ..., 255 "
                "(pixel values scaled by x / 127.5 - 1)"))],
    returns="log P(x) in nats, summed over the data dimensions by the caller",
)

# The bin's ends in standard units. The upper end is written as the lower end plus the
# bin's width, (x + 1/255 - loc)/scale = a + (2/255)/scale, so that no single changed
# constant makes the two ends coincide (a wrong formula should be refuted, not log 0).
lower_end = (x - HALF_WIDTH - loc) / scale
upper_end = lower_end + BIN_WIDTH / scale

decoder_chain = discretized_gaussian_logpmf.define(
    sp.Piecewise(
        (log_gaussian_mass(-sp.oo, x + HALF_WIDTH, loc, scale), LOWER_EDGE),
        (log_gaussian_mass(x - HALF_WIDTH, sp.oo, loc, scale), UPPER_EDGE),
        (log_gaussian_mass(x - HALF_WIDTH, x + HALF_WIDTH, loc, scale), True)),
    "definition (Eq. 13): the Gaussian density integrated over the bin [x - 1/255, x + 1/255], the bin "
    "of x = -1 from -inf and the bin of x = 1 to inf", published=True)
decoder_chain.step(
    sp.Piecewise(
        (log_normal_cdf(upper_end), LOWER_EDGE),
        (log_normal_cdf(-lower_end), UPPER_EDGE),
        (sp.log(normal_cdf(-lower_end) - normal_cdf(-upper_end)), x >= loc),
        (sp.log(normal_cdf(upper_end) - normal_cdf(lower_end)), True)),
    "SymPy integrates the density: its antiderivative (1 + erf((y - loc) / (sqrt 2 scale))) / 2 = "
    "Phi((y - loc) / scale) at the bin's ends, a = (x - 1/255 - loc)/scale and b = a + (2/255)/scale: "
    "log Phi(b) and log(1 - Phi(a)) = log Phi(-a) for the edge bins, log(Phi(b) - Phi(a)) inside, "
    "written with upper tails, Phi(-a) - Phi(-b), for a bin at or above the mean (Phi(-z) = 1 - Phi(z))")
decoder_chain.stable(
    sp.Piecewise(
        (log_normal_mass(-sp.oo, upper_end), LOWER_EDGE),
        (log_normal_mass(lower_end, sp.oo), UPPER_EDGE),
        (log_normal_mass(lower_end, upper_end), True)),
    "log(Phi(b) - Phi(a)) as the primitive log_normal_mass: never a difference of two CDFs near 1 or "
    "near 0, so the log probability of a bin 40 scales from loc (1e-350) is finite and accurate where "
    "the textbook form gives log 0")


def clipped_rounded_samples(rng, n, x, loc, scale):
    """y ~ N(loc, scale^2), clipped to [-1, 1] and rounded to the nearest grid value: the data
    process the decoder describes. Returns the indices k of the grid values."""
    draws = np.clip(rng.normal(loc, scale, n), -1.0, 1.0)
    return np.rint((draws + 1) * 127.5).astype(np.int64)[:, None]


def log_bin_mass_by_quadrature(x, loc, scale, digits=30):
    """log of Eq. 13's integral by mpmath quadrature (never the CDF formula); for the tests.

    Not an empirical check of the derivation: candidates are evaluated at 30 digits, where
    the erf form of the closed form (an equivalent rewrite, which must be verified) is
    log 0 in the far tails, while the enumeration and sampling checks take candidates in
    float64, where a vanishing probability is harmless."""
    x, loc, scale = (sp.Float(float(value), digits) for value in (x, loc, scale))
    lower = -sp.oo if x < -1 + HALF_WIDTH else x - HALF_WIDTH
    upper = sp.oo if x > 1 - HALF_WIDTH else x + HALF_WIDTH
    # At numbers, log_gaussian_mass evaluates by mpmath quadrature in standard units.
    with mpmath.workdps(digits):
        return mpmath.mpf(log_gaussian_mass(lower, upper, loc, scale).evalf(digits))


# The mass of all 256 bins is 1 to within 1e-12: beyond the rounding of the logs, the float
# grid values miss 2k/255 - 1 by up to 1.1e-16, and the overlap or gap this leaves between
# neighbouring bins holds at most 1.1e-16 x 4e3 (the density at the smallest scale, 1e-4).
discretized_gaussian_logpmf.add_check(EnumerationCheck(
    clipped_rounded_samples,
    "all 256 values sum to 1; N(loc, scale^2) draws clipped and rounded to the grid (exact binomial cells)",
    variables=("x",), grids=(tuple(EIGHT_BIT_GRID),)))


# The usual slips, in a candidate's own words: Eq. 13 with the bin's ends a and b, the edge
# bins (x = -1 from -inf: log Phi(b); x = 1 to inf: log Phi(-a)) as given, or left out; with
# upper_tails, a bin at or above loc as Phi(-a) - Phi(-b), as the closed form writes it.
def decoder_text(half_width="1/255", lower="log(normal_cdf({b}))", upper="log(normal_cdf(-{a}))",
                 loc="loc", scale="scale", upper_tails=False):
    a, b = f"(x - {half_width} - {loc})/{scale}", f"(x + {half_width} - {loc})/{scale}"
    branches = [f"({lower.format(a=a, b=b)}, x < -254/255)"] if lower else []
    branches += [f"({upper.format(a=a, b=b)}, x > 254/255)"] if upper else []
    branches += [f"(log(normal_cdf(-{a}) - normal_cdf(-{b})), x >= {loc})"] if upper_tails else []
    return f"Piecewise({', '.join(branches + [f'(log(normal_cdf({b}) - normal_cdf({a})), True)'])})"


def closed_form_text(**changed):
    """The closed form, with ``loc`` or ``scale`` replaced by the text given."""
    return decoder_text(lower="log_normal_cdf({b})", upper="log_normal_cdf(-{a})", upper_tails=True, **changed)


discretized_gaussian_logpmf.add_slip(decoder_text(lower=None, upper=None), "no edge bins (Phi(b) - Phi(a) everywhere)")
discretized_gaussian_logpmf.add_slip(decoder_text(lower=None), "no lower edge bin")
discretized_gaussian_logpmf.add_slip(decoder_text(upper=None), "no upper edge bin")
discretized_gaussian_logpmf.add_slip(decoder_text(lower="log(1 - normal_cdf({a}))", upper="log(normal_cdf({b}))"),
                                     "edge extensions swapped")
discretized_gaussian_logpmf.add_slip(decoder_text("2/255"), "half-width 2/255 (bins 4/255 wide)")
discretized_gaussian_logpmf.add_slip(decoder_text("1/510"), "half-width 1/510 (bins 1/255 wide)")
discretized_gaussian_logpmf.add_slip("-(x - loc)**2/(2*scale**2) - log(scale) - log(2*pi)/2 + log(2/255)",
                                     "the density times the bin width")
discretized_gaussian_logpmf.add_slip(closed_form_text(scale="sqrt(scale)"), "scale read as the variance")
discretized_gaussian_logpmf.add_slip(closed_form_text(loc="(-loc)"), "loc with the wrong sign")

"""Autoregressive likelihood: the chain rule for a small binary autoregressive model.

Any joint distribution factorises as p(x) = prod_i p(x_i | x_<i), so

    log p(x) = sum_i log p(x_i | x_<i)

(theory notebook, section 1; van den Oord, Kalchbrenner & Kavukcuoglu (2016), "Pixel
Recurrent Neural Networks", Eq. 1). For three binary variables with Bernoulli
conditionals p(x_1 = 1) = p1, p(x_2 = 1 | x_1) = q_{x_1}, p(x_3 = 1 | x_1, x_2) =
r_{x_1 x_2}, each conditional's pmf is p^x (1 - p)^(1 - x), and the table lookup q_{x_1}
is written q_0 (1 - x_1) + q_1 x_1 (exact for x_1 in {0, 1}).
"""
import numpy as np
import sympy as sp
from sympy.codegen.cfunctions import log1p

from symgen.engine import Binary, Derivation, EnumerationCheck, Interval, Param

PIXEL_RNN = "van den Oord, Kalchbrenner & Kavukcuoglu (2016), Pixel Recurrent Neural Networks, Eq. 1"

x1, x2, x3 = sp.symbols("x1 x2 x3", real=True)
p1, q0, q1, r00, r01, r10, r11 = sp.symbols("p1 q0 q1 r00 r01 r10 r11", positive=True)

# Probabilities strictly inside (0, 1), so every sequence has a finite log probability.
PROBABILITY = Interval(0.0, 1.0, draw_low=1e-3, draw_high=1 - 1e-3)

autoregressive_binary_logpmf = Derivation(
    "autoregressive_binary_logpmf",
    notation={"autoregressive_binary_logpmf": r"\log p(x_{1}, x_{2}, x_{3})"},
    sections=(1,),
    title="Log probability of a binary sequence under a 3-step autoregressive model",
    summary="log p(x1, x2, x3) = log p(x1) + log p(x2 | x1) + log p(x3 | x1, x2), Bernoulli conditionals.",
    kind="likelihood",
    references=[PIXEL_RNN],
    params=[
        Param(x1, Binary(), "first variable, 0 or 1"),
        Param(x2, Binary(), "second variable, 0 or 1"),
        Param(x3, Binary(), "third variable, 0 or 1"),
        Param(p1, PROBABILITY, "p(x1 = 1)"),
        Param(q0, PROBABILITY, "p(x2 = 1 | x1 = 0)"),
        Param(q1, PROBABILITY, "p(x2 = 1 | x1 = 1)"),
        Param(r00, PROBABILITY, "p(x3 = 1 | x1 = 0, x2 = 0)"),
        Param(r01, PROBABILITY, "p(x3 = 1 | x1 = 0, x2 = 1)"),
        Param(r10, PROBABILITY, "p(x3 = 1 | x1 = 1, x2 = 0)"),
        Param(r11, PROBABILITY, "p(x3 = 1 | x1 = 1, x2 = 1)"),
    ],
    requires=[(sp.Eq(x1 * (1 - x1), 0), "argument 'x1' must be 0 or 1"),
              (sp.Eq(x2 * (1 - x2), 0), "argument 'x2' must be 0 or 1"),
              (sp.Eq(x3 * (1 - x3), 0), "argument 'x3' must be 0 or 1")],
    returns="log p(x1, x2, x3) in nats (divide by 3 log 2 for bits per dimension)",
)

q = q0 * (1 - x1) + q1 * x1
r = r00 * (1 - x1) * (1 - x2) + r01 * (1 - x1) * x2 + r10 * x1 * (1 - x2) + r11 * x1 * x2


def bernoulli_pmf(value, probability):
    return probability**value * (1 - probability) ** (1 - value)


chain = autoregressive_binary_logpmf.define(
    sp.log(bernoulli_pmf(x1, p1) * bernoulli_pmf(x2, q) * bernoulli_pmf(x3, r)),
    "definition: the chain rule p(x) = p(x1) p(x2 | x1) p(x3 | x1, x2)")
chain.step(
    lambda definition: sp.expand_log(definition, force=True),
    "the log of a product is the sum of the logs: sum_i log p(x_i | x_<i) (SymPy's expand_log)")
chain.stable(
    x1 * sp.log(p1) + (1 - x1) * log1p(-p1) + x2 * sp.log(q) + (1 - x2) * log1p(-q)
    + x3 * sp.log(r) + (1 - x3) * log1p(-r),
    "log(1 - p) as log1p(-p): exact for tiny p, where 1 - p rounds away p's digits")


def ancestral_samples(rng, n, x1, x2, x3, p1, q0, q1, r00, r01, r10, r11):
    # Sample x1, then x2 given x1, then x3 given (x1, x2): the model's own generative process.
    first = rng.random(n) < p1
    second = rng.random(n) < np.where(first, q1, q0)
    third_probability = np.select([~first & ~second, ~first & second, first & ~second], [r00, r01, r10], r11)
    third = rng.random(n) < third_probability
    return np.stack([first, second, third], axis=1)


autoregressive_binary_logpmf.add_check(EnumerationCheck(
    ancestral_samples, "all 8 sequences sum to 1; ancestral-sampling frequencies (exact binomial cells)",
    variables=("x1", "x2", "x3")))

"""The engine: everything a derivation module imports, and the machinery behind it.

A derivation module imports from here only. What a contributor needs to know:

1. ``Derivation(name, title=, kind=, params=, references=)``: one named result, the
   public function's name; ``kind`` is one of :data:`KINDS`.
2. ``Param(symbol, domain, doc)``: an argument. The SymPy symbol's name is the argument
   name; its domain says what is legal and what the checks draw: ``Real``, ``Positive``,
   ``Interval``, ``NonNegative``, ``NonZero``, ``Count``, ``OneOf`` (``Binary``),
   ``Vector``, ``Covariance``.
3. Chains: ``derivation.define(definition, reason)`` starts an output,
   ``.step(expression, reason)`` equates the next form, ``.stable(expression, reason)``
   gives the form the generated code evaluates. Every step is proved by SymPy and spot-
   checked numerically. A step SymPy must compute is a function,
   ``.step(lambda previous: sp.solve(...), reason)``: it runs when the derivation is
   derived, never at import.
4. Definitions kept unevaluated until a proof asks: ``GaussianExpectation``,
   ``MvnExpectation``, ``log_gaussian_mass``, ``ArgMax``; ``special_function`` declares a
   named function with its meaning, its own numeric route and its code; a ``Lemma`` is an
   identity SymPy proves on first use.
5. Vocabulary: densities (``log_normal_pdf``, ``normal_pdf``, ``log_mvn_pdf``), matrix
   functions (``MatrixSqrt``, ``DiagonalPart``, ``quadratic_form``, ``squared_norm``),
   change of variables (``pushforward``, ``jacobian``), and the stable primitives
   (``log1pmx``, ``expm1mx``, ``sqrt_ratio``, ``softplus``, ``logaddexp``, ``sigmoid``,
   ``normal_cdf``, ``log_normal_cdf``, ``log_normal_mass``, ``minimum``, ``maximum`` (and
   ``at_most``, their slope), ``complement``, ``hypot``, ``sin_product``).
6. Empirical checks, which never use the closed form: ``MeanCheck`` (a Monte Carlo
   mean), ``DistributionCheck``, ``ConditionalCheck``, ``DensityCheck``, ``BoxCheck``,
   ``EnumerationCheck`` (samples against a law), ``IdentityCheck`` and
   ``VectorIdentityCheck`` (an independent numerical route); each states its
   false-alarm rate. ``derivation.add_check(check)``.
7. ``derivation.add_slip(candidate, description)``: a usual mistake, which the checks must
   refute; ``derivation.add_plot(title, draw)``: a figure for the docs.

``lazy_module("scipy.stats")`` loads SciPy when a check first runs, so importing a
derivation module stays cheap. The smallest complete derivation::

    import sympy as sp
    from symgen.engine import Derivation, GaussianExpectation, MeanCheck, Param, Positive, Real

    shift, gain = sp.Symbol("shift", real=True), sp.Symbol("gain", positive=True)
    z = sp.Symbol("z", real=True)

    affine_mean = Derivation(
        "affine_mean", title="Mean of an affine map of a standard normal", kind="identity",
        references=[], params=[Param(shift, Real(-5, 5), "shift"), Param(gain, Positive(0.1, 10), "gain")])
    affine_mean.define(GaussianExpectation(gain * z + shift, z, 0, 1), "definition").step(shift, "E[z] = 0")
    affine_mean.add_check(MeanCheck(lambda rng, n, shift, gain: shift + gain * rng.standard_normal(n),
                                    "sample mean of simulated draws"))

``symgen --path that_file.py verify affine_mean`` proves the steps, checks the generated
function's accuracy and runs the check. The engine loads SymPy, SciPy and hypothesis, so
``symgen`` imports it only when one of its functions is first used.
"""
from .change_of_variables import Pushforward, jacobian, log_abs_det_jacobian, monotone_direction, pushforward
from .checks import DistributionCheck, IdentityCheck, MeanCheck, Outcome
from .conditional import ConditionalCheck
from .controls import Controlled
from .densities import log_mvn_pdf, log_normal_pdf, normal_pdf
from .density_checks import BoxCheck, DensityCheck
from .derivation import KINDS, Derivation, DerivationError, ExplicitMatrices, Param
from .discrete import EnumerationCheck
from .domains import Binary, Count, Covariance, Interval, NonNegative, NonZero, OneOf, Positive, Real, Vector
from .expectations import GaussianExpectation, MvnExpectation, log_gaussian_mass
from .functions import Lemma, special_function
from .lazy import lazy_module
from .matrices import DiagonalPart, MatrixSqrt, quadratic_form, squared_norm
from .optimum import ArgMax
from .primitives import (at_most, complement, expm1mx, hypot, log1pmx, log_normal_cdf, log_normal_mass, logaddexp,
                         maximum, minimum, normal_cdf, sigmoid, sin_product, softplus, sqrt_ratio)
from .vector_checks import VectorIdentityCheck

__all__ = [
    # 1-3: derivations, parameters and their domains
    "KINDS", "Derivation", "DerivationError", "ExplicitMatrices", "Param",
    "Binary", "Count", "Covariance", "Interval", "NonNegative", "NonZero", "OneOf", "Positive", "Real", "Vector",
    # 4: definitions kept unevaluated
    "ArgMax", "GaussianExpectation", "Lemma", "MvnExpectation", "log_gaussian_mass", "special_function",
    # 5: vocabulary
    "log_mvn_pdf", "log_normal_pdf", "normal_pdf",
    "DiagonalPart", "MatrixSqrt", "quadratic_form", "squared_norm",
    "Pushforward", "jacobian", "log_abs_det_jacobian", "monotone_direction", "pushforward",
    "at_most", "complement", "expm1mx", "hypot", "log1pmx", "log_normal_cdf", "log_normal_mass", "logaddexp",
    "maximum", "minimum", "normal_cdf", "sigmoid", "sin_product", "softplus", "sqrt_ratio",
    # 6: empirical checks
    "BoxCheck", "ConditionalCheck", "Controlled", "DensityCheck", "DistributionCheck", "EnumerationCheck",
    "IdentityCheck", "MeanCheck", "Outcome", "VectorIdentityCheck",
    # loading
    "lazy_module",
]

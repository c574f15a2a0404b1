"""DDPM's discrete linear noise schedule, in NumPy (``from symgen import diffusion_discrete_linear_schedule``).

DDPM (Ho et al. 2020, Sec. 4) takes T step variances rising linearly, ``betas = linspace(beta_start,
beta_end, T)`` (1e-4 to 0.02 over T = 1000), and the signal level alpha_bar_t = prod_{s<=t} (1 - beta_s)
(Eq. 4). The product has a closed form, a ratio of Gamma functions (derivations/noise_schedules.py
derives it), but at DDPM's sizes its two log-Gammas are ~5e5 each and cancel to the O(10) result, so
the value here is the product summed in log space: log alpha_bar_t = sum_{s<=t} log1p(-beta_s), the
sum compensated (Neumaier), so the whole schedule is good to a few ulps of its log, and

    alpha_bar_t = exp(sum),   SNR_t = alpha_bar_t/(1 - alpha_bar_t) = 1/expm1(-sum)

without the cancellation of 1 - alpha_bar_t at small t. Step 0 is the data: alpha_bar_0 = 1,
beta_0 = 0, SNR_0 = inf.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from symgen.numerics.validate import broadcast_shape, fail, float_dtype, prepare

DiffusionDiscreteLinearScheduleResult = namedtuple("DiffusionDiscreteLinearScheduleResult",
                                                   ["alpha_bar", "beta", "snr"])

NON_NEGATIVE = ("interval", 0.0, np.finfo(np.float64).max, True, True)
AT_LEAST_TWO = ("interval", 2.0, np.finfo(np.float64).max, True, True)
UNIT = ("interval", 0.0, 1.0, False, False)


def linear_betas(steps: int, beta_start: float, beta_end: float) -> np.ndarray:
    """DDPM's step variances, ``numpy.linspace(beta_start, beta_end, steps)`` in float64."""
    return np.linspace(beta_start, beta_end, steps, dtype=np.float64)


def log_levels(betas: np.ndarray) -> np.ndarray:
    """log alpha_bar_t for t = 0..T: 0 followed by the running sums of log1p(-beta_s), each sum
    compensated (Neumaier's variant of Kahan's), so every entry is the exact sum rounded once
    (to ~1e-16 of the largest partial sum) however long the schedule."""
    terms = np.log1p(-betas).tolist()
    sums = [0.0] * (len(terms) + 1)
    total = compensation = 0.0
    for index, term in enumerate(terms, start=1):
        updated = total + term
        if abs(total) >= abs(term):
            compensation += (total - updated) + term
        else:
            compensation += (term - updated) + total
        total = updated
        sums[index] = total + compensation
    return np.asarray(sums)


def diffusion_discrete_linear_schedule(t, T, beta_start, beta_end, *, validate=True,
                                       function="diffusion_discrete_linear_schedule"):
    r"""DDPM's discrete linear schedule at whole steps: alpha_bar_t, beta_t and the SNR.

    .. math::

        \beta_s = \beta_{\mathrm{start}} + (s - 1)\,\frac{\beta_{\mathrm{end}} - \beta_{\mathrm{start}}}{T - 1},
        \qquad \bar\alpha_t = \prod_{s=1}^{t} (1 - \beta_s),
        \qquad \mathrm{SNR}_t = \frac{\bar\alpha_t}{1 - \bar\alpha_t}

    (Ho et al. 2020, Sec. 4 and Eq. 4: ``betas = numpy.linspace(beta_start, beta_end, T)``,
    ``alphas_cumprod = numpy.cumprod(1 - betas)``; step t here is index t - 1 there.)

    Parameters
    ----------
    t : array_like
        whole steps 0 <= t <= T (0 is the data: alpha_bar = 1, beta = 0, SNR = inf).
    T : array_like
        the number of steps, a whole number >= 2 (1000 in DDPM).
    beta_start, beta_end : array_like
        the first and last step variances, in (0, 1) (1e-4 and 0.02 in DDPM; either may be larger).

    Returns
    -------
    alpha_bar, beta, snr : ndarray
        broadcast over the arguments; float32 arguments give float32 results.

    The product is summed in log space (module docstring): within a few ulps of a 50-digit product,
    where the closed form through log-Gamma functions loses ~5 digits at DDPM's sizes. Schedules
    are computed once per distinct (T, beta_start, beta_end); gradients do not flow through it in
    the torch and JAX versions (a schedule is a table of constants).
    """
    t, T, beta_start, beta_end = arrays = prepare(
        function, validate, t=(t, NON_NEGATIVE), T=(T, AT_LEAST_TWO), beta_start=(beta_start, UNIT),
        beta_end=(beta_end, UNIT))
    dtype = float_dtype(*arrays)
    shape = broadcast_shape(function, {"t": t.shape, "T": T.shape, "beta_start": beta_start.shape,
                                       "beta_end": beta_end.shape})
    t, T, beta_start, beta_end = (np.broadcast_to(np.asarray(a, dtype=np.float64), shape) for a in arrays)
    if validate:
        for name, values in (("t", t), ("T", T)):
            fractional = values != np.floor(values)
            if np.any(fractional):
                raise fail(function, name, f"must be a whole number of steps, got {values[fractional].flat[0]!r}")
        if np.any(t > T):
            raise ValueError(f"{function}: argument 't' must be <= T (the schedule ends at step T)")
    alpha_bar, beta, log_level = (np.empty(shape) for _ in range(3))
    # One schedule per distinct (T, beta_start, beta_end); usually a single one for a whole array of t.
    settings = np.stack([T.ravel(), beta_start.ravel(), beta_end.ravel()], axis=-1)
    distinct, which = np.unique(settings, axis=0, return_inverse=True)
    steps_flat, log_flat, beta_flat = t.ravel().astype(np.int64), log_level.reshape(-1), beta.reshape(-1)
    for index, (steps, first, last) in enumerate(distinct):
        betas = linear_betas(int(steps), first, last)
        chosen = which.reshape(-1) == index
        at = steps_flat[chosen]
        log_flat[chosen] = log_levels(betas)[at]
        beta_flat[chosen] = np.concatenate([[0.0], betas])[at]
    alpha_bar = np.exp(log_level)
    # 1 - alpha_bar = -expm1(log alpha_bar), formed as 0 - expm1(...) so that step 0 gives +0.0 (negating
    # expm1(0.0) = 0.0 would give -0.0, and SNR_0 = -inf); SNR_0 = 1/0 = inf: the data has no noise.
    noise = 0.0 - np.expm1(log_level)
    with np.errstate(divide="ignore"):
        snr = alpha_bar / noise
    return DiffusionDiscreteLinearScheduleResult(*(np.asarray(a, dtype=dtype)[()] for a in (alpha_bar, beta, snr)))

"""Control variates: sharper Monte Carlo from the randomness a sampler already drew.

A sampler that builds its draws g from independent standard normals z (a reparameterised
Gaussian, a forward diffusion chain, ...) may return ``Controlled(draws, normals)``. The
checks then estimate E[g] from g - c(z) beta instead of g, where c(z) are Hermite
polynomials of the normals: He_k(z_i) for k = 1..4 and z_i z_j for i < j, each of mean 0
under the sampler's law, whatever beta is. beta is the least-squares fit of g on c(z) over
a separate pilot sample, so the adjusted draws stay independent and identically
distributed with the same mean, and the batch-means t test is as valid as before; its
standard error shrinks by the fraction of g's variance these polynomials explain (all of
it when g is a quadratic in z, as the log-ratios of Gaussian KLs are).

Nothing here uses the closed form: only that E[He_k(z)] = 0 for k >= 1 and that products
of functions of independent normals factorise (Owen, Monte Carlo theory, methods and
examples, 2013, ch. 8.9, regression control variates).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Pilot draws for fitting beta, relative to the main sample (and at least PILOT_MIN).
PILOT_FRACTION = 0.1
PILOT_MIN = 20_000
#: Rows of features built at a time, so a million draws never hold all their features at once.
BLOCK = 50_000


@dataclass
class Controlled:
    """Draws of a sampler together with the independent standard normals they were built
    from: ``normals`` has shape (n,) or (n, k)."""

    draws: np.ndarray
    normals: np.ndarray


def split(result):
    """(draws, normals or None) from what a sampler returned."""
    if isinstance(result, Controlled):
        normals = np.asarray(result.normals, dtype=np.float64)
        return np.asarray(result.draws, dtype=np.float64), normals.reshape(normals.shape[0], -1)
    return np.asarray(result, dtype=np.float64), None


def hermite_features(normals: np.ndarray) -> np.ndarray:
    """c(z): He_1..He_4 of each normal, and the products z_i z_j (i < j); mean 0 each."""
    z = normals
    squared = z * z
    columns = [z, squared - 1, z * (squared - 3), squared * (squared - 6) + 3]
    k = z.shape[1]
    if k > 1:
        first, second = np.triu_indices(k, 1)
        columns.append(z[:, first] * z[:, second])
    return np.concatenate(columns, axis=1)


def fit(draws: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """beta minimising the variance of draws - c(z) beta, from a pilot sample."""
    features = hermite_features(normals)
    centred = features - features.mean(axis=0)
    # Scaled columns keep the least-squares problem well conditioned (He_4 is ~ 10x z).
    scale = np.maximum(centred.std(axis=0), 1e-300)
    beta, *_ = np.linalg.lstsq(centred / scale, draws - draws.mean(), rcond=None)
    return beta / scale


def adjusted(draws: np.ndarray, normals: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """draws - c(z) beta, built block by block."""
    result = np.empty_like(draws)
    for start in range(0, draws.shape[0], BLOCK):
        stop = start + BLOCK
        result[start:stop] = draws[start:stop] - hermite_features(normals[start:stop]) @ beta
    return result


def pilot_size(samples: int) -> int:
    return max(int(samples * PILOT_FRACTION), PILOT_MIN)

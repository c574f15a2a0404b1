"""Numeric domains of a derivation's parameters.

A domain says two things: which values are legal (the generated function rejects
the rest with ``ValueError``) and which values hypothesis draws when a check runs
(a bounded range that reaches the edges that matter: tiny and huge scales, values
near a boundary). Scalars shrink towards simple values (0, 1), so a refuted
formula's counterexample is small and readable.

Each domain also names its edges (``edges(dimensions)``): the values at the ends of what
it draws, where formulas most often go wrong and where ordinary draws rarely land (33
uniform draws of alpha_bar in (0, 1) come within 1e-12 of 1 with probability 3e-11).
The runner evaluates every check at them (symgen/engine/runner.py, ``edge_points``) and
hypothesis draws them now and then, so a failure there also shrinks.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np
import sympy as sp


def _hypothesis():
    from hypothesis import strategies

    return strategies


@dataclass(frozen=True)
class Real:
    """Any finite real; hypothesis draws from [low, high].

    ``sample_within`` narrows the points of the numeric spot checks, the anchors and the
    accuracy points (:meth:`sample`) where a step is only checkable there: GAN costs at
    logits beyond 10 fall below what a 25-digit spot check of a 1e-25 tolerance resolves."""

    low: float = -10.0
    high: float = 10.0
    sample_within: tuple | None = None
    constraint = "real"
    shape_kind = "scalar"

    def describe(self) -> str:
        return "real"

    def strategy(self, dimensions):
        st = _hypothesis()
        return st.floats(self.low, self.high, allow_nan=False, allow_infinity=False)

    def sample(self, rng, dimensions):
        low, high = self.sample_within or (self.low, self.high)
        return float(rng.uniform(max(low, self.low), min(high, self.high)))

    def nearby(self, value, relative, scale=1.0):
        return value + relative * max(abs(value), scale)

    def edges(self, dimensions) -> list:
        return [float(self.low), float(self.high)]


@dataclass(frozen=True)
class Positive:
    """A finite positive real; hypothesis draws log-uniformly from [low, high]
    (and plain floats there too, which shrink to 1). With ``zero_allowed`` the function also
    takes 0 (a schedule's step 0, the data), which the checks do not draw: the tests of such a
    derivation cover that end directly."""

    low: float = 1e-3
    high: float = 1e3
    zero_allowed: bool = False
    shape_kind = "scalar"

    @property
    def constraint(self):
        return ("interval", 0.0, sys.float_info.max, True, True) if self.zero_allowed else "positive"

    def describe(self) -> str:
        return "non-negative" if self.zero_allowed else "positive"

    def strategy(self, dimensions):
        st = _hypothesis()
        log_uniform = st.floats(math.log(self.low), math.log(self.high)).map(math.exp)
        plain = st.floats(self.low, self.high)
        return st.one_of(plain, log_uniform).filter(lambda v: self.low <= v <= self.high)

    def sample(self, rng, dimensions):
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))

    def nearby(self, value, relative, scale=1.0):
        return value * (1 + relative)

    def edges(self, dimensions) -> list:
        return [float(self.low), float(self.high)]


@dataclass(frozen=True)
class Interval:
    """A real in an interval (open or closed at each end); hypothesis draws from
    [draw_low, draw_high], which defaults to the interval itself."""

    low: float
    high: float
    low_closed: bool = False
    high_closed: bool = False
    draw_low: float | None = None
    draw_high: float | None = None
    shape_kind = "scalar"

    @property
    def constraint(self):
        return ("interval", self.low, self.high, self.low_closed, self.high_closed)

    def describe(self) -> str:
        return (f"{'[' if self.low_closed else '('}{self.low}, {self.high}"
                f"{']' if self.high_closed else ')'}")

    def _bounds(self):
        low = self.low if self.draw_low is None else self.draw_low
        high = self.high if self.draw_high is None else self.draw_high
        return low, high

    def contains(self, value) -> bool:
        above = value >= self.low if self.low_closed else value > self.low
        below = value <= self.high if self.high_closed else value < self.high
        return bool(above and below)

    def strategy(self, dimensions):
        st = _hypothesis()
        low, high = self._bounds()
        return st.floats(low, high).filter(self.contains)

    def sample(self, rng, dimensions):
        low, high = self._bounds()
        return float(rng.uniform(low, high))

    def nearby(self, value, relative, scale=1.0):
        moved = value + relative * max(abs(value), 1e-300)
        return moved if self.contains(moved) else value

    def edges(self, dimensions) -> list:
        """The ends of the drawn range; an open end of the interval itself, not drawn
        there, is approached to within EDGE_DISTANCE of the interval's width."""
        low, high = self._bounds()
        inward = EDGE_DISTANCE * (self.high - self.low)
        if low == self.low and not self.low_closed:
            low = self.low + inward
        if high == self.high and not self.high_closed:
            high = self.high - inward
        return [float(low), float(high)]


@dataclass(frozen=True)
class NonNegative:
    """A finite real >= 0; hypothesis draws from [0, high]. The generated code checks
    finiteness; the derivation adds a ``requires`` with the message for negative values."""

    high: float = 1e5
    constraint = "real"
    shape_kind = "scalar"

    def describe(self) -> str:
        return "non-negative"

    def strategy(self, dimensions):
        return _hypothesis().floats(0.0, self.high)

    def sample(self, rng, dimensions):
        return float(rng.uniform(0.0, self.high))

    def nearby(self, value, relative, scale=1.0):
        return value * (1 + abs(relative))

    def edges(self, dimensions) -> list:
        return [0.0, float(self.high)]


@dataclass(frozen=True)
class NonZero:
    """A finite nonzero real: hypothesis draws a sign and a magnitude, log-uniform in
    [low, high] (and plain floats there too, which shrink to 1).

    Its constraint for the generated code is "real" (finite); the derivation adds
    ``requires=[(sp.Ne(a, 0), "argument 'a' must be nonzero ...")]``, so a zero raises
    ``ValueError`` naming the argument (the scale a of the affine flow x = a z + b, which
    is invertible exactly when a != 0)."""

    low: float = 1e-3
    high: float = 1e3
    constraint = "real"
    shape_kind = "scalar"

    def describe(self) -> str:
        return "nonzero real"

    def strategy(self, dimensions):
        st = _hypothesis()
        magnitude = Positive(self.low, self.high).strategy(dimensions)
        return st.tuples(st.sampled_from([1.0, -1.0]), magnitude).map(lambda pair: pair[0] * pair[1])

    def sample(self, rng, dimensions):
        sign = 1.0 if rng.random() < 0.5 else -1.0
        return sign * Positive(self.low, self.high).sample(rng, dimensions)

    def nearby(self, value, relative, scale=1.0):
        return value * (1 + relative)

    def edges(self, dimensions) -> list:
        """Both magnitudes with both signs, lowest first."""
        return [-float(self.high), -float(self.low), float(self.low), float(self.high)]


@dataclass(frozen=True)
class Count:
    """A whole number of things (modes, draws): validated as a real >= low (the formulas
    are continuous in their counts), drawn as the integers low..high."""

    low: int = 1
    high: int = 100
    zero_allowed: bool = False      # 0 accepted (a schedule's step 0, the data) but not drawn
    shape_kind = "scalar"

    @property
    def constraint(self):
        return ("interval", 0.0 if self.zero_allowed else float(self.low), sys.float_info.max, True, True)

    def describe(self) -> str:
        return f"integer >= {0 if self.zero_allowed else int(self.low)}"

    def strategy(self, dimensions):
        return _hypothesis().integers(int(self.low), int(self.high)).map(float)

    def sample(self, rng, dimensions):
        return float(rng.integers(int(self.low), int(self.high) + 1))

    def nearby(self, value, relative, scale=1.0):
        return value

    def edges(self, dimensions) -> list:
        return [float(self.low), float(self.high)]


@dataclass(frozen=True)
class OneOf:
    """One of finitely many values (0 or 1; a category 0, 1, 2; a pixel value on a grid).

    ``favour`` are values drawn half of the time between them (a grid's edge values, where
    a formula is most often wrong); hypothesis shrinks towards the first of them, or the
    first value. A proof may go case by case over the values (``values``). The generated
    code checks ``constraint`` (finiteness by default); the derivation adds a ``requires``
    that names the allowed values."""

    values: tuple
    description: str = ""
    favour: tuple = ()
    constraint: object = "real"
    shape_kind = "scalar"

    def describe(self) -> str:
        if self.description:
            return self.description
        values = [repr(v) if not float(v).is_integer() else str(int(v)) for v in self.values]
        return ", ".join(values[:-1]) + f" or {values[-1]}" if len(values) > 1 else values[0]

    def strategy(self, dimensions):
        st = _hypothesis()
        values = st.sampled_from([float(v) for v in self.values])
        return st.one_of(st.sampled_from([float(v) for v in self.favour]), values) if self.favour else values

    def sample(self, rng, dimensions):
        if self.favour and rng.random() < 0.5:
            return float(self.favour[int(rng.integers(0, len(self.favour)))])
        return float(self.values[int(rng.integers(0, len(self.values)))])

    def nearby(self, value, relative, scale=1.0):
        return value

    def edges(self, dimensions) -> list:
        """The smallest and the largest value (a grid's ends)."""
        return [float(min(self.values)), float(max(self.values))]


def Binary() -> OneOf:  # noqa: N802 (a domain, named like the others)
    """0 or 1; the derivation adds ``requires=[(sp.Eq(x * (1 - x), 0), "argument 'x' must be 0 or 1")]``."""
    return OneOf((0, 1))


@dataclass(frozen=True)
class Vector:
    """A real vector of the derivation's dimension, entries from ``entries``."""

    dimension: sp.Symbol
    entries: Real = Real(-5.0, 5.0)
    constraint = "vector"
    shape_kind = "vector"

    def describe(self) -> str:
        return f"real vector of length {self.dimension}"

    def strategy(self, dimensions):
        st = _hypothesis()
        size = dimensions[self.dimension]
        return st.lists(self.entries.strategy(dimensions), min_size=size, max_size=size).map(np.array)

    def sample(self, rng, dimensions):
        return rng.uniform(self.entries.low, self.entries.high, dimensions[self.dimension])

    def nearby(self, value, relative, scale=1.0):
        return value + relative * np.maximum(np.abs(value), scale)

    def edges(self, dimensions) -> list:
        """Every entry at the same edge of ``entries``."""
        size = dimensions[self.dimension]
        return [np.full(size, edge) for edge in self.entries.edges(dimensions)]

    def explicit(self, name, size):
        return sp.ImmutableMatrix(sp.symbols(f"{name}_1:{size + 1}", real=True))


@dataclass(frozen=True)
class Covariance:
    """A symmetric positive-definite matrix of the derivation's dimension.

    Hypothesis draws eigenvalues log-uniformly from [low, high] and a rotation from
    a seed (seed 0 is the identity rotation), so shrinking leads to diagonal and
    then identity matrices.
    """

    dimension: sp.Symbol
    low: float = 1e-2
    high: float = 1e2
    semidefinite: bool = False
    constraint = "covariance"
    shape_kind = "matrix"

    def describe(self) -> str:
        definite = "semi-definite" if self.semidefinite else "definite"
        return f"{self.dimension}x{self.dimension} symmetric positive {definite}"

    def _build(self, log_eigenvalues, seed):
        eigenvalues = np.exp(np.asarray(log_eigenvalues, dtype=float))
        rotation = random_rotation(len(eigenvalues), seed)
        matrix = (rotation * eigenvalues) @ rotation.T
        return (matrix + matrix.T) / 2

    def strategy(self, dimensions):
        st = _hypothesis()
        size = dimensions[self.dimension]
        log_eigenvalues = st.lists(st.floats(math.log(self.low), math.log(self.high)),
                                   min_size=size, max_size=size)
        return st.builds(self._build, log_eigenvalues, st.integers(0, 2**16))

    def sample(self, rng, dimensions):
        size = dimensions[self.dimension]
        return self._build(rng.uniform(math.log(self.low), math.log(self.high), size),
                           int(rng.integers(1, 2**16)))

    def nearby(self, value, relative, scale=1.0):
        # A symmetric perturbation of relative size |relative|: (1 + r) C plus a
        # rank-one bump, so the pair is near-equal but not proportional.
        size = value.shape[-1]
        direction = np.linspace(1.0, -1.0, size) if size > 1 else np.ones(1)
        bump = np.outer(direction, direction) * np.trace(value) / (size * max(size, 2))
        moved = value * (1 + relative) + abs(relative) * bump
        return (moved + moved.T) / 2

    def edges(self, dimensions) -> list:
        """low I, high I, and (beyond d = 1) a rotated matrix with eigenvalues from low to
        high: the smallest and largest scales, and the worst conditioned matrix drawn."""
        size = dimensions[self.dimension]
        matrices = [self.low * np.eye(size), self.high * np.eye(size)]
        if size > 1:
            spread = np.linspace(math.log(self.low), math.log(self.high), size)
            matrices.insert(1, self._build(spread, EDGE_ROTATION_SEED))
        return matrices

    def explicit(self, name, size):
        """A general symmetric symbolic matrix: every entry on and above the diagonal its own symbol."""
        entries = {}
        for i in range(size):
            for j in range(i, size):
                entries[i, j] = entries[j, i] = sp.Symbol(f"{name}_{i + 1}{j + 1}", real=True)
        return sp.ImmutableMatrix(size, size, lambda i, j: entries[i, j])


#: How close an edge comes to an open end of an interval the derivation draws up to,
#: relative to the interval's width: alpha_bar within 1e-12 of 0 and of 1.
EDGE_DISTANCE = 1e-12
#: The rotation of the ill-conditioned covariance edge (any seed but 0, the identity).
EDGE_ROTATION_SEED = 7


def random_rotation(size: int, seed: int) -> np.ndarray:
    """An orthogonal matrix from a seed; seed 0 gives the identity."""
    if seed == 0 or size == 1:
        return np.eye(size)
    gaussian = np.random.default_rng(seed).standard_normal((size, size))
    q, r = np.linalg.qr(gaussian)
    return q * np.sign(np.diag(r))


def log_uniform_offsets():
    """Relative offsets for near-equal draws: +-[1e-12, 1e-2], log-uniform."""
    st = _hypothesis()
    magnitude = st.floats(math.log(1e-12), math.log(1e-2)).map(math.exp)
    return st.tuples(st.sampled_from([1.0, -1.0]), magnitude).map(lambda pair: pair[0] * pair[1])

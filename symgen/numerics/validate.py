"""Argument checks shared by every public formula.

Each check raises ``ValueError`` naming the function, the argument and the
offending value, so a bad call never passes silently. The generated functions call
:func:`prepare` once with all their scalar arguments; matrix-valued functions use
the smaller pieces directly.
"""
from __future__ import annotations

import numpy as np

# Symmetry is judged relative to the matrix's own scale: entries that differ by more
# than this many units in the last place are not rounding noise.
SYMMETRY_RTOL = 1e-10


def float_dtype(*arrays: np.ndarray) -> np.dtype:
    """The floating dtype a formula computes in: float32 stays float32, ints become float64."""
    dtype = np.result_type(*arrays, np.float32)
    if not np.issubdtype(dtype, np.floating) or dtype == np.float16:
        return np.dtype(np.float64) if not np.issubdtype(dtype, np.floating) else np.dtype(np.float32)
    return dtype


def _first_bad(values: np.ndarray, bad: np.ndarray) -> str:
    flat = np.asarray(values)[np.asarray(bad)]
    return repr(flat.flat[0].item()) if flat.size else "?"


def fail(function: str, name: str, message: str) -> ValueError:
    return ValueError(f"{function}: argument {name!r} {message}")


# The checks first reduce (min and max propagate NaN and reveal infinities, at a
# fraction of the cost of an elementwise test); only a failure looks for the culprit.


def _extremes(values: np.ndarray):
    if values.size == 0:
        return 0.0, 0.0
    return values.min(), values.max()


def check_finite(function: str, name: str, values: np.ndarray) -> None:
    # One pass: a NaN or an infinity makes the sum non-finite. So can a sum of huge
    # finite values (it overflows), which the elementwise test below then clears.
    if values.size == 0 or np.isfinite(np.add.reduce(values, axis=None)):
        return
    if not np.isfinite(values).all():
        bad = ~np.isfinite(values)
        raise fail(function, name, f"must be finite, got {_first_bad(values, bad)}")


def check_positive(function: str, name: str, values: np.ndarray) -> None:
    low, high = _extremes(values)
    if not (low > 0 and np.isfinite(high)):
        check_finite(function, name, values)
        bad = ~(values > 0)
        raise fail(function, name, f"must be positive, got {_first_bad(values, bad)}")


def check_interval(function: str, name: str, values: np.ndarray, low: float, high: float,
                   low_closed: bool, high_closed: bool) -> None:
    # Within finite bounds the extremes alone settle it: min and max propagate a NaN, and an
    # infinity lies outside (two passes, not a finiteness sum as well).
    if not (np.isfinite(low) and np.isfinite(high)):
        check_finite(function, name, values)
    smallest, largest = _extremes(values)
    if values.size == 0 or ((smallest >= low if low_closed else smallest > low)
                            and (largest <= high if high_closed else largest < high)):
        return
    check_finite(function, name, values)
    above = values >= low if low_closed else values > low
    below = values <= high if high_closed else values < high
    bad = ~(above & below)
    if np.any(bad):
        if low == 0 and low_closed and high == np.finfo(np.float64).max:
            raise fail(function, name, f"must be non-negative, got {_first_bad(values, bad)}")
        interval = f"{'[' if low_closed else '('}{low}, {high}{']' if high_closed else ')'}"
        raise fail(function, name, f"must lie in {interval}, got {_first_bad(values, bad)}")


CHECKS = {"real": check_finite, "positive": check_positive}


def check_symmetric(function: str, name: str, matrix: np.ndarray) -> None:
    """A covariance must be symmetric up to rounding of its own entries."""
    if np.array_equal(matrix, np.swapaxes(matrix, -1, -2)):  # the common case, and cheap
        return
    scale = np.max(np.abs(matrix), axis=(-2, -1), keepdims=True)
    asymmetry = np.abs(matrix - np.swapaxes(matrix, -1, -2))
    if np.any(asymmetry > SYMMETRY_RTOL * scale):
        worst = float(np.max(asymmetry / np.where(scale > 0, scale, 1)))
        raise fail(function, name, f"must be symmetric, relative asymmetry {worst:.3g}")


def broadcast_shape(function: str, shapes: dict[str, tuple[int, ...]]) -> tuple[int, ...]:
    try:
        return np.broadcast_shapes(*shapes.values())
    except ValueError:
        listed = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(f"{function}: arguments do not broadcast together: {listed}") from None


def prepare(function: str, validate: bool, **arguments: tuple[object, object]) -> list[np.ndarray]:
    """Convert scalar-formula arguments to arrays of one float dtype and check them.

    ``arguments`` maps each argument name to ``(value, constraint)``, where the
    constraint is ``"real"``, ``"positive"`` or ``("interval", low, high, low_closed,
    high_closed)``. Returns the arrays in the order given (not broadcast: NumPy's
    ufuncs broadcast for free, and we only check that they can).
    """
    arrays = {name: np.asarray(value) for name, (value, _) in arguments.items()}
    dtype = float_dtype(*arrays.values())
    converted = [array.astype(dtype, copy=False) for array in arrays.values()]
    if validate:
        broadcast_shape(function, {name: array.shape for name, array in arrays.items()})
        for (name, (_, constraint)), array in zip(arguments.items(), converted):
            if isinstance(constraint, tuple):
                check_interval(function, name, array, *constraint[1:])
            else:
                CHECKS[constraint](function, name, array)
    return converted


def require(function: str, holds, message: str) -> None:
    """A relation between arguments (``alpha_bar_prev >= alpha_bar_t``) must hold everywhere."""
    if not np.all(holds):
        raise ValueError(f"{function}: {message}")

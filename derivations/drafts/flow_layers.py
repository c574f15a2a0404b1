"""DRAFT, appended to derivations/flows.py when it verifies."""
import numpy as np
import sympy as sp
from sympy.codegen.cfunctions import log1p

from symgen.engine import Derivation, IdentityCheck, Param, Real
from symgen.engine.change_of_variables import jacobian

# --- the planar flow's log-determinant -------------------------------------------------

PLANAR_REFERENCE = ("Rezende & Mohamed (2015), Variational Inference with Normalizing Flows, "
                    "Section 4.1 (planar flows) and Appendix A (invertibility for u^T w >= -1)")
z1, z2, u1, u2, w1, w2, bias = sp.symbols("z1 z2 u1 u2 w1 w2 bias", real=True)
# Parameters are drawn where |u^T w| <= 0.72, so det J >= 0.28 and its finite-difference
# check is well conditioned; any finite values with u^T w > -1 are accepted.
PLANAR_ENTRY = Real(-0.6, 0.6)

planar_flow_logdet = Derivation(
    "planar_flow_logdet",
    title="Log-determinant of a 2-D planar flow f(z) = z + u tanh(w^T z + bias)",
    summary="log det(df/dz) = log(1 + (1 - tanh^2(w^T z + bias)) u^T w), by the matrix determinant lemma.",
    kind="likelihood",
    references=[PLANAR_REFERENCE],
    params=[Param(z1, Real(-3, 3), "first coordinate of the input z"),
            Param(z2, Real(-3, 3), "second coordinate of the input z"),
            Param(u1, PLANAR_ENTRY, "first entry of the direction u"),
            Param(u2, PLANAR_ENTRY, "second entry of the direction u"),
            Param(w1, PLANAR_ENTRY, "first entry of the weight w"),
            Param(w2, PLANAR_ENTRY, "second entry of the weight w"),
            Param(bias, Real(-3, 3), "bias inside the tanh")],
    requires=[(u1 * w1 + u2 * w2 > -1,
               "the planar flow is invertible only for u^T w >= -1 (u1*w1 + u2*w2 > -1 required)")],
    returns="log det of the Jacobian (positive when u^T w > -1), for log p_x = log p_z - logdet",
)
activation = w1 * z1 + w2 * z2 + bias
flow = [z1 + u1 * sp.tanh(activation), z2 + u2 * sp.tanh(activation)]
chain = planar_flow_logdet.define(
    sp.log(jacobian(flow, [z1, z2]).det()),
    "definition: log det J with J = df/dz from Matrix.jacobian; det J > 0 when u^T w > -1")
chain.step(
    sp.log(1 + (1 - sp.tanh(activation) ** 2) * (u1 * w1 + u2 * w2)),
    "J = I + h'(w^T z + bias) u w^T, and det(I + a b^T) = 1 + b^T a (matrix determinant lemma), "
    "with h' = 1 - tanh^2")
chain.stable(
    log1p((u1 * w1 + u2 * w2) / sp.cosh(activation) ** 2),
    "1 - tanh^2 = 1/cosh^2 without the cancellation at large |w^T z + bias|, and log1p for the "
    "small increments there")


def log_det_by_complex_step(z1, z2, u1, u2, w1, w2, bias):
    # The Jacobian column by column by complex-step differentiation (exact to rounding,
    # no subtraction), then NumPy's slogdet: shares nothing with the lemma.
    def forward(point):
        t = np.tanh(w1 * point[0] + w2 * point[1] + bias)
        return np.array([point[0] + u1 * t, point[1] + u2 * t])

    step = 1e-30
    columns = [forward(np.array([z1, z2], dtype=complex) + 1j * step * e).imag / step for e in np.eye(2)]
    sign, logdet = np.linalg.slogdet(np.array(columns).T)
    return logdet if sign > 0 else np.nan


planar_flow_logdet.add_check(IdentityCheck(
    log_det_by_complex_step, "log det of the complex-step Jacobian (numpy slogdet)", rtol=1e-9, atol=1e-13))

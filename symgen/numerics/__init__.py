"""Hand-written NumPy numerics behind the generated formulas.

Only NumPy is imported here: these modules are loaded by ``from symgen import ...``.
``stable`` holds the cancellation-free primitives the derivations rewrite into,
``validate`` the argument checks every public function shares, and ``gaussian``
the linear-algebra implementations of the matrix-valued Gaussian formulas.
"""

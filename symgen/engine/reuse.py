"""Reusing arrays in the generated code: results go into operands read for the last time.

The body of a generated formula is straight-line code: temporaries from common
subexpression elimination, the requirements, and a return. NumPy allocates a new array
for each operation, and it cannot reuse a named temporary by itself (see
``symgen/numerics/inplace.py`` for why that costs). This pass rewrites the body's
syntax tree so that an operation writes into an operand that no later operation reads:

* a temporary at the operation that reads it for the last time, in the order Python
  evaluates the code (operands left to right, then the operation);
* the unnamed result of an inner operation, where NumPy's own reuse does not reach it
  (the right operand of ``-``, ``/`` and ``**``, and the argument of a function like
  ``numpy.exp``).

Only arrays the formula made itself are written into: never an argument, and never a
temporary that a call other than an elementwise NumPy function has seen, since such a
call may hand back the same memory (a view) under another name. The rewritten calls fall
back to a new array whenever the operand cannot hold the result, so the values are the
plain expression's values, bit for bit; tests/test_reuse.py compares the two for every
formula of the catalogue.
"""
from __future__ import annotations

import ast
import math

import numpy

# Elementwise binary operators and the ufuncs that compute them.
BINARY_UFUNCS = {ast.Add: "add", ast.Sub: "subtract", ast.Mult: "multiply",
                 ast.Div: "true_divide", ast.Pow: "power"}
# NumPy reuses a nameless left operand by itself, and either one of + and *.
COMMUTATIVE = (ast.Add, ast.Mult)
# x**2 and x**0.5 are squares and square roots in NumPy's fast path; keep them so.
POWER_UFUNCS = {2: "square", 0.5: "sqrt"}

FINAL = math.inf  # when the returned values are read: after every operation


def _ufunc(call: ast.Call) -> numpy.ufunc | None:
    """The ufunc of a plain call ``numpy.<name>(...)`` (positional arguments only)."""
    function = call.func
    if not (isinstance(function, ast.Attribute) and isinstance(function.value, ast.Name)
            and function.value.id == "numpy") or call.keywords:
        return None
    ufunc = getattr(numpy, function.attr, None)
    if isinstance(ufunc, numpy.ufunc) and ufunc.nout == 1 and ufunc.nin == len(call.args):
        return ufunc
    return None


def _ufunc_arity(call: ast.Call) -> int:
    """How many operands the call takes if it is a ufunc with a floating result, else 0
    (a comparison's booleans must not be written into a float array)."""
    ufunc = _ufunc(call)
    if ufunc is not None and "d" * ufunc.nin + "->d" in ufunc.types:
        return ufunc.nin
    return 0


def _is_elementwise(node: ast.AST) -> bool:
    return ((isinstance(node, ast.BinOp) and type(node.op) in BINARY_UFUNCS)
            or (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub))
            or (isinstance(node, ast.Call) and _ufunc_arity(node) > 0))


def _is_fresh(node: ast.AST) -> bool:
    """Whether the node's value is a new array (or a scalar) that nothing else refers to."""
    return _is_elementwise(node) or (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                                     and isinstance(node.func.value, ast.Name)
                                     and node.func.value.id == "inplace")


class _Readings(ast.NodeVisitor):
    """Numbers the operations in evaluation order and records, for every name, the
    operations that read it and whether anything other than an elementwise operation
    (or the return) does."""

    def __init__(self):
        self.clock = 0
        self.read_at: dict[str, list[float]] = {}
        self.escapes: set[str] = set()
        self.time: dict[int, int] = {}

    def _read(self, name: str, when: float, elementwise: bool) -> None:
        self.read_at.setdefault(name, []).append(when)
        if not elementwise:
            self.escapes.add(name)

    def visit_operation(self, node: ast.AST, operands: list[ast.AST], elementwise: bool,
                        final: bool = False) -> None:
        for operand in operands:
            if not isinstance(operand, ast.Name):
                self.visit(operand)
        self.clock += 1
        self.time[id(node)] = self.clock
        for operand in operands:
            if isinstance(operand, ast.Name):
                self._read(operand.id, FINAL if final else self.clock, elementwise or final)

    def visit_BinOp(self, node):
        self.visit_operation(node, [node.left, node.right], type(node.op) in BINARY_UFUNCS)

    def visit_UnaryOp(self, node):
        self.visit_operation(node, [node.operand], isinstance(node.op, ast.USub))

    def visit_Compare(self, node):
        # A comparison makes a new boolean array: reading a temporary there is harmless.
        self.visit_operation(node, [node.left, *node.comparators], True)

    def visit_Call(self, node):
        # Any ufunc makes a new array from its operands; other calls may return them.
        self.visit_operation(node, [*node.args, *(keyword.value for keyword in node.keywords)],
                             _ufunc(node) is not None)

    def visit_Lambda(self, node):
        # A lambda's body runs later, inside the call it is handed to: an outer name it
        # reads must never be written into.
        parameters = {argument.arg for argument in node.args.args}
        for inner in ast.walk(node.body):
            if isinstance(inner, ast.Name) and inner.id not in parameters:
                self._read(inner.id, FINAL, False)

    def visit_Return(self, node):
        value = node.value
        if isinstance(value, ast.Name):
            self._read(value.id, FINAL, True)
        elif isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
            self.visit_operation(value, value.args, False, final=True)  # the named tuple of outputs
        else:
            self.visit(value)

    def visit_Name(self, node):
        # A name read anywhere but as an operand (a subscript, an attribute) escapes.
        if isinstance(node.ctx, ast.Load):
            self._read(node.id, math.inf, False)


class _Rewriter(ast.NodeTransformer):
    def __init__(self, readings: _Readings, reusable: set[str]):
        self.readings = readings
        self.reusable = reusable

    def _dead_here(self, operand: ast.AST, node: ast.AST) -> bool:
        return (isinstance(operand, ast.Name) and operand.id in self.reusable
                and max(self.readings.read_at[operand.id]) == self.readings.time[id(node)])

    def _owned_slot(self, node: ast.AST, operands: list[ast.AST]) -> int | None:
        for slot, operand in enumerate(operands):
            if self._dead_here(operand, node):
                return slot
        # NumPy itself reuses a nameless left operand (either operand of + and *) once
        # it is large enough; what it leaves out is the right operand of -, / and **,
        # and the argument of a function call.
        if (isinstance(node, ast.BinOp) and not isinstance(node.op, COMMUTATIVE)
                and _is_fresh(operands[1]) and not _is_fresh(operands[0])):
            return 1
        if isinstance(node, ast.Call) and len(operands) == 1 and _is_fresh(operands[0]):
            return 0
        return None

    def _rewrite(self, node: ast.AST, ufunc: str, operands: list[ast.AST]) -> ast.AST:
        slot = self._owned_slot(node, operands)
        if slot is None:
            return node
        helper = "into_only" if len(operands) == 1 else ("into_first", "into_second")[slot]
        function = ast.Attribute(ast.Name("numpy", ast.Load()), ufunc, ast.Load())
        return ast.Call(ast.Attribute(ast.Name("inplace", ast.Load()), helper, ast.Load()),
                        [function, *operands], [])

    def visit_Lambda(self, node):
        # Its parameters are whatever the call hands it: only nameless results are reused.
        node.body = _Rewriter(self.readings, set()).visit(node.body)
        return node

    def visit_BinOp(self, node):
        self.generic_visit(node)  # operands first, as they are evaluated
        if type(node.op) not in BINARY_UFUNCS:
            return node
        if isinstance(node.op, ast.Pow) and isinstance(node.right, ast.Constant):
            special = POWER_UFUNCS.get(node.right.value)
            if special is not None:
                return self._rewrite(node, special, [node.left]) if self._dead_here(node.left, node) else node
            return node  # other constant powers: NumPy's own power, unchanged
        return self._rewrite(node, BINARY_UFUNCS[type(node.op)], [node.left, node.right])

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, ast.USub) and self._dead_here(node.operand, node):
            return self._rewrite(node, "negative", [node.operand])
        return node

    def visit_Call(self, node):
        self.generic_visit(node)
        if _ufunc_arity(node) == 0:
            return node
        return self._rewrite(node, node.func.attr, list(node.args))


def reuse_arrays(body: str) -> str:
    """The straight-line ``body`` (statements at column 0) with operations writing into
    operands that are read for the last time; see the module docstring."""
    tree = ast.parse(body)
    readings = _Readings()
    readings.visit(tree)
    defined = {statement.targets[0].id: statement.value for statement in tree.body
               if isinstance(statement, ast.Assign) and len(statement.targets) == 1
               and isinstance(statement.targets[0], ast.Name)}
    reusable = {name for name, value in defined.items()
                if _is_fresh(value) and name not in readings.escapes and name in readings.read_at}
    tree = ast.fix_missing_locations(_Rewriter(readings, reusable).visit(tree))
    return ast.unparse(tree)

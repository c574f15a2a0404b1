"""Generated code and docstrings within 100 characters a line.

A printed closed form can run to hundreds of characters on one line. Python joins lines
inside brackets, so a statement is broken after a comma or before a binary operator
where the brackets are open (the right-hand side is put in parentheses first when a
break is needed at the top level), continuing 8 spaces further in. LaTeX in a docstring
is broken at spaces, which math mode ignores.
"""
from __future__ import annotations

import io
import textwrap
import tokenize

WIDTH = 100
_BINARY = {"+", "-", "*", "/", "//", "%", "@", "<", ">", "<=", ">=", "==", "!=", "and", "or"}


def _break_points(code: str, top_level: bool) -> list[int]:
    """Offsets in ``code`` where a line may be broken: after a comma, or before a binary
    operator, inside brackets (and at the top level when ``top_level``, for code that the
    caller will put in parentheses)."""
    points, depth, previous = [], 0, None
    lines = code.split("\n")
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        if token.type in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.COMMENT):
            continue
        offset = starts[token.start[0] - 1] + token.start[1]
        end = starts[token.end[0] - 1] + token.end[1]
        open_here = depth > 0 or top_level
        if token.string in "([{" and token.type == tokenize.OP:
            depth += 1
        elif token.string in ")]}" and token.type == tokenize.OP:
            depth -= 1
        elif token.string == "," and depth > 0:
            points.append(end)
        elif (token.type == tokenize.STRING and previous is not None and previous.type == tokenize.STRING
              and depth > 0):
            points.append(offset)             # between adjacent literals, which Python joins
        elif (token.string in _BINARY and open_here and previous is not None
              and (previous.type in (tokenize.NAME, tokenize.NUMBER, tokenize.STRING)
                   or previous.string in ")]}")
              and previous.string not in ("lambda", "not", "and", "or", "return", "if", "else")):
            points.append(offset)
        previous = token
    return points


def _pack(code: str, points: list[int], first_width: int, rest_width: int) -> list[str]:
    pieces, last = [], 0
    for point in points:
        pieces.append(code[last:point])
        last = point
    pieces.append(code[last:])
    lines, current = [], ""
    for piece in pieces:
        width = first_width if not lines else rest_width
        if current and len(current) + len(piece.rstrip()) > width:
            lines.append(current.rstrip())
            current = piece.lstrip()
        else:
            current += piece
    lines.append(current.rstrip())
    return lines


def _split_long_literals(line: str, longest: int = 60) -> str:
    """Long string literals as adjacent shorter ones (Python joins them), so a break can
    fall between them."""
    import ast

    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return line
    for token in reversed(tokens):
        if token.type != tokenize.STRING or len(token.string) <= longest or token.string[0] not in "'\"":
            continue
        pieces = textwrap.wrap(ast.literal_eval(token.string), longest - 2, drop_whitespace=False,
                               break_long_words=False)
        start, end = token.start[1], token.end[1]
        line = line[:start] + " ".join(repr(piece) for piece in pieces) + line[end:]
    return line


def wrap_statement(line: str, width: int = WIDTH) -> str:
    """One line of Python, broken into lines of at most ``width`` characters where it can be."""
    if len(line) <= width:
        return line
    line = _split_long_literals(line)
    indent = line[: len(line) - len(line.lstrip())]
    code = line.strip()
    continuation = indent + " " * 8
    prefix = ""
    for lead in ("return ",):
        if code.startswith(lead):
            prefix, code = lead, code[len(lead):]
    if not prefix and " = " in code and code.split(" = ", 1)[0].replace(",", "").replace("_", "").replace(
            " ", "").isalnum():
        target, code = code.split(" = ", 1)
        prefix = target + " = "
    try:
        points = _break_points(code, top_level=False)
    except (tokenize.TokenError, IndentationError, SyntaxError):   # not a whole statement
        return line
    first = width - len(indent) - len(prefix)
    rest = width - len(continuation)
    lines = _pack(code, points, first, rest)
    if any(len(piece) > rest for piece in lines[1:]) or len(lines[0]) > first:
        # Breaks inside brackets are not enough: wrap the expression in parentheses and
        # break at the top level as well.
        code = f"({code})"
        lines = _pack(code, _break_points(code, top_level=False), first, rest)
    return "\n".join([indent + prefix + lines[0]] + [continuation + piece for piece in lines[1:]])


def wrap_code(source: str, width: int = WIDTH) -> str:
    """Every line of ``source`` (statements one per line) wrapped by :func:`wrap_statement`."""
    return "\n".join(wrap_statement(line, width) for line in source.split("\n"))


def wrap_text(text: str, indent: str, width: int = WIDTH) -> list[str]:
    """Prose or LaTeX broken at spaces into lines of at most ``width`` characters."""
    return textwrap.wrap(text, width, initial_indent=indent, subsequent_indent=indent,
                         break_long_words=False, break_on_hyphens=False) or [indent.rstrip()]

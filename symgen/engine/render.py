"""Showing a derivation: its chain of steps, reasons, references and closed form.

Text for the terminal, LaTeX for papers and notes, Markdown (with LaTeX that
renders on GitHub) for docs. All three walk the same ``Derivation`` object.
"""
from __future__ import annotations

import inspect
import textwrap

import sympy as sp


def _signature(found) -> str:
    return f"{found.name}({', '.join(found.param_names)}, *, validate=True)"


def _heading(found) -> list[str]:
    return [f"{found.name}: {found.title}", found.summary]


def _output_label(found, name):
    return name if len(found.outputs) == 1 else f"{found.name}.{name}"


def text(found) -> str:
    lines = _heading(found) + [f"kind: {found.kind}", ""]
    lines.append("parameters:")
    for param in found.params:
        lines.append(f"  {param.name:<10} {param.domain.describe():<14} {param.doc}")
    for name, output in found.outputs.items():
        lines.append("")
        lines.append(f"{_output_label(found, name)}:")
        for index, step in enumerate(output.steps):
            marker = "   " if index == 0 else " = "
            lines.append(f"  {marker}{sp.sstr(step.expression)}")
            lines.extend(textwrap.wrap(step.reason, 92, initial_indent="      why:    ",
                                       subsequent_indent="              "))
            if index and step.proof:
                lines.append(f"      proved: {step.proof}")
        lines.append(f"  closed form: {sp.sstr(output.closed_form)}")
    lines += ["", f"function: symgen.{_signature(found)}"]
    if found.references:
        lines += ["references:"] + [f"  - {reference}" for reference in found.references]
    return "\n".join(lines)


def _latex_steps(found, name, output) -> list[str]:
    lines = [r"\begin{aligned}"]
    for index, step in enumerate(output.steps):
        left = rf"\mathrm{{{_output_label(found, name).replace('_', chr(92) + '_')}}}" if index == 0 else ""
        reason = step.reason
        for special in ("%", "&", "#", "_"):
            reason = reason.replace(special, "\\" + special)
        reason = reason.replace("^", r"\^{}")
        lines.append(rf"{left} &= {sp.latex(step.expression)} && \text{{{reason}}} \\")
    lines.append(r"\end{aligned}")
    return lines


def latex(found) -> str:
    lines = [rf"% {found.name}: {found.title}"]
    for name, output in found.outputs.items():
        label = _output_label(found, name).replace("_", r"\_")
        lines += _latex_steps(found, name, output)
        lines += [rf"% closed form of {_output_label(found, name)}:",
                  rf"\[ \mathrm{{{label}}} = {sp.latex(output.closed_form)} \]"]
    lines.append(f"% function: symgen.{_signature(found)}")
    lines += [f"% reference: {reference}" for reference in found.references]
    return "\n".join(lines)


def markdown(found) -> str:
    lines = [f"# `{found.name}`: {found.title}", "", found.summary, "",
             f"Objective kind: **{found.kind}**. Function: `symgen.{_signature(found)}`.", "",
             "| parameter | domain | meaning |", "|---|---|---|"]
    lines += [f"| `{p.name}` | {p.domain.describe()} | {p.doc} |" for p in found.params]
    for name, output in found.outputs.items():
        lines += ["", f"## `{_output_label(found, name)}`", ""]
        for index, step in enumerate(output.steps):
            lines += ["$$", ("" if index == 0 else "= ") + sp.latex(step.expression), "$$",
                      f"*{step.reason}*" + (f" — proved: {step.proof}" if index and step.proof else ""), ""]
        lines += ["Closed form:", "", "$$", sp.latex(output.closed_form), "$$"]
    if found.references:
        lines += ["", "## References", ""] + [f"- {reference}" for reference in found.references]
    return "\n".join(lines) + "\n"


FORMATS = {"text": text, "latex": latex, "markdown": markdown}


def source_of(found) -> str:
    return inspect.getsource(found.module)

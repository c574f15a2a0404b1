"""Showing a derivation record as text, Markdown or LaTeX (the standard library only).

A record (symgen/records.py) is a derivation written out as plain data: its parameters,
and for each output the chain of steps, each with its text and LaTeX forms, its reason
and how it was proved. The same three views serve ``symgen show``, the docs and the
notebook, whether the record was read from the built index or made from a derivation
just derived (symgen/engine/record.py).
"""
from __future__ import annotations

import textwrap


def signature(record: dict) -> str:
    return f"{record['name']}({', '.join(p['name'] for p in record['params'])}, *, validate=True)"


def text(record: dict) -> str:
    lines = [f"{record['name']}: {record['title']}", record["summary"], f"kind: {record['kind']}", "",
             "parameters:"]
    for param in record["params"]:
        lines.append(f"  {param['name']:<10} {param['domain']:<14} {param['doc']}")
    for output in record["outputs"]:
        lines += ["", f"{output['label']}:"]
        for index, step in enumerate(output["steps"]):
            marker = "   " if index == 0 else " = "
            lines.append(f"  {marker}{step['text']}")
            lines.extend(textwrap.wrap(step["reason"], 92, initial_indent="      why:    ",
                                       subsequent_indent="              "))
            if index and step["proof"]:
                lines.append(f"      proved: {step['proof']}")
        lines.append(f"  closed form: {output['closed_form']['text']}")
    lines += ["", f"function: symgen.{signature(record)}"]
    if record["references"]:
        lines += ["references:"] + [f"  - {reference}" for reference in record["references"]]
    return "\n".join(lines)


def _latex_text(reason: str) -> str:
    for special in ("\\", "%", "&", "#", "_", "{", "}", "$"):
        reason = reason.replace(special, "\\" + special)
    return reason.replace("^", r"\^{}").replace("~", r"\~{}")


def latex(record: dict) -> str:
    lines = [rf"% {record['name']}: {record['title']}"]
    for output in record["outputs"]:
        label = output["label"].replace("_", r"\_")
        lines.append(r"\begin{aligned}")
        for index, step in enumerate(output["steps"]):
            left = rf"\mathrm{{{label}}}" if index == 0 else ""
            lines.append(rf"{left} &= {step['latex']} && \text{{{_latex_text(step['reason'])}}} \\")
        lines.append(r"\end{aligned}")
        lines += [rf"% closed form of {output['label']}:",
                  rf"\[ \mathrm{{{label}}} = {output['closed_form']['latex']} \]"]
    lines.append(f"% function: symgen.{signature(record)}")
    lines += [f"% reference: {reference}" for reference in record["references"]]
    return "\n".join(lines)


def markdown(record: dict) -> str:
    lines = [f"# `{record['name']}`: {record['title']}", "", record["summary"], "",
             f"Objective kind: **{record['kind']}**. Function: `symgen.{signature(record)}`.", "",
             "| parameter | domain | meaning |", "|---|---|---|"]
    lines += [f"| `{p['name']}` | {p['domain']} | {p['doc']} |" for p in record["params"]]
    for output in record["outputs"]:
        lines += ["", f"## `{output['label']}`", ""]
        for index, step in enumerate(output["steps"]):
            proof = f" — proved: {step['proof']}" if index and step["proof"] else ""
            lines += ["$$", ("" if index == 0 else "= ") + step["latex"], "$$", f"*{step['reason']}*{proof}", ""]
        lines += ["Closed form:", "", "$$", output["closed_form"]["latex"], "$$"]
    if record["references"]:
        lines += ["", "## References", ""] + [f"- {reference}" for reference in record["references"]]
    return "\n".join(lines) + "\n"


FORMATS = {"text": text, "latex": latex, "markdown": markdown}

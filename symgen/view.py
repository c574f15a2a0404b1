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


def latex_text(words: str) -> str:
    """Plain text for LaTeX's text mode: its special characters escaped, and < > | as text
    commands (in the default font encoding they would print as other glyphs)."""
    replacements = {"\\": r"\textbackslash{}", "%": r"\%", "&": r"\&", "#": r"\#", "_": r"\_",
                    "{": r"\{", "}": r"\}", "$": r"\$", "^": r"\^{}", "~": r"\~{}",
                    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}
    return "".join(replacements.get(character, character) for character in words)


def _computed_as(output: dict) -> dict | None:
    """The step the generated code evaluates, when it is not the closed form shown."""
    last = len(output["steps"]) - 1
    return output["steps"][last] if output["closed_form"].get("step", last) != last else None


def latex(record: dict, standalone: bool = False) -> str:
    """The derivation as LaTeX: display math (``align*``) with the reasons as text lines
    between the equations (``\\intertext``). Pasted into a document that loads amsmath and
    amssymb it compiles as given; ``standalone`` makes it a complete document."""
    lines = [rf"% symgen show {record['name']} --format latex: needs \usepackage{{amsmath,amssymb}}",
             rf"\section*{{{latex_text(record['title'])}}}", "", latex_text(record["summary"]), "",
             r"\noindent Notation:"]
    params, definitions = record["params"], record.get("definitions", [])
    for index, param in enumerate(params):
        end = "." if index == len(params) - 1 and not definitions else ";"
        lines.append(rf"${param['symbol']}$ (\texttt{{{latex_text(param['name'])}}}), {latex_text(param['doc'])}{end}")
    for index, definition in enumerate(definitions):
        end = "." if index == len(definitions) - 1 else ";"
        lines.append(rf"${definition['symbol']} = {definition['latex']}${end}")
    for output in record["outputs"]:
        steps = output["steps"]
        lines += ["", rf"\subsection*{{${output['symbol']}$: \texttt{{{latex_text(output['label'])}}}}}", "",
                  latex_text(steps[0]["reason"]) + ":",
                  r"\begin{align*}"]
        for index, step in enumerate(steps):
            if index:
                lines.append(rf"\intertext{{{latex_text(step['reason'])}:}}")
            left = output["symbol"] if index == 0 else ""
            lines.append(rf"{left} &= {step['latex']}" + (r" \\" if index < len(steps) - 1 else ""))
        lines.append(r"\end{align*}")
        lines += ["Closed form:", rf"\[ {output['symbol']} = {output['closed_form']['latex']} \]"]
        computed = _computed_as(output)
        if computed is not None:
            lines += ["Evaluated as (the last step above, proved equal to it):",
                      rf"\[ {output['symbol']} = {computed['latex']} \]"]
    lines += ["", rf"\noindent Function: \texttt{{symgen.{latex_text(signature(record))}}}."]
    if record["references"]:
        lines += ["", r"\noindent References:", r"\begin{itemize}"]
        lines += [rf"\item {latex_text(reference)}" for reference in record["references"]]
        lines.append(r"\end{itemize}")
    body = "\n".join(lines)
    if not standalone:
        return body
    return "\n".join([r"\documentclass{article}", r"\usepackage[T1]{fontenc}", r"\usepackage{amsmath}",
                      r"\usepackage{amssymb}", r"\allowdisplaybreaks", r"\begin{document}", body,
                      r"\end{document}"])


def markdown_steps(record: dict, proofs: bool = True) -> list[str]:
    """Each output's steps as Markdown display math (``$$``, which GitHub renders), each
    reason a line of text before the step it justifies (with how SymPy proved it, if
    ``proofs``); then the closed form as its reference writes it, and the form the code
    evaluates where that differs."""
    lines = []
    for output in record["outputs"]:
        lines += ["", f"## ${output['symbol']}$ (`{output['label']}`)", ""]
        for index, step in enumerate(output["steps"]):
            proof = f" (proved: {step['proof']})" if proofs and index and step["proof"] else ""
            lines += [f"*{step['reason']}*{proof}", "", "$$",
                      (output["symbol"] + " = " if index == 0 else "= ") + step["latex"], "$$", ""]
        lines += ["Closed form:", "", "$$", f"{output['symbol']} = {output['closed_form']['latex']}", "$$"]
        computed = _computed_as(output)
        if computed is not None:
            lines += ["", "Evaluated as (the last step above, proved equal to it):", "", "$$",
                      f"{output['symbol']} = {computed['latex']}", "$$"]
    return lines


def cell(text: str) -> str:
    """Text for a Markdown table cell: a bar would end the cell."""
    return text.replace("|", r"\|")


def parameter_table(record: dict) -> list[str]:
    """The parameters with their symbols (the derivation's notation), domains and meanings,
    and what else the notation defines."""
    lines = (["| parameter | symbol | domain | meaning |", "|---|---|---|---|"]
             + [f"| `{p['name']}` | ${cell(p['symbol'])}$ | {cell(p['domain'])} | {cell(p['doc'])} |"
                for p in record["params"]])
    for definition in record.get("definitions", []):
        lines += ["", "where", "", "$$", f"{definition['symbol']} = {definition['latex']}", "$$"]
    return lines


def markdown(record: dict) -> str:
    lines = [f"# `{record['name']}`: {record['title']}", "", record["summary"], "",
             f"Objective kind: **{record['kind']}**. Function: `symgen.{signature(record)}`.", ""]
    lines += parameter_table(record) + markdown_steps(record)
    if record["references"]:
        lines += ["", "## References", ""] + [f"- {reference}" for reference in record["references"]]
    return "\n".join(lines) + "\n"


FORMATS = {"text": text, "latex": latex, "markdown": markdown}

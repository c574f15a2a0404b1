"""A derivation written out as a plain record: what ``symgen show`` and the docs display.

The record holds every step as SymPy's text and LaTeX, with its reason and proof, so the
views in symgen/view.py need neither SymPy nor the derivation. ``symgen build`` stores the
records of the catalogue in ``symgen/index/`` (symgen/records.py reads them back).
"""
from __future__ import annotations

import sympy as sp

from .notation import Notation


def _label(found, output_name: str) -> str:
    return output_name if len(found.outputs) == 1 else f"{found.name}.{output_name}"


def record_of(found, *, prove: bool = True) -> dict:
    """The record of a derivation; ``prove`` proves it first (from the cache when it can),
    so each step says how it was proved."""
    if prove:
        found.prove()
    notation = Notation(found)
    outputs = []
    for name, output in found.outputs.items():
        steps = [{"text": sp.sstr(step.expression), "latex": notation.latex(step.expression),
                  "reason": step.reason, "proof": step.proof if index else ""}
                 for index, step in enumerate(output.steps)]
        published = output.published_step
        outputs.append({"name": name, "label": _label(found, name), "doc": output.doc, "steps": steps,
                        "symbol": notation.outputs[name],
                        # The closed form as the reference writes it, and (when it differs) the
                        # step the generated code evaluates, proved equal to it in the chain.
                        "closed_form": {"text": sp.sstr(published.expression),
                                        "latex": notation.latex(published.expression),
                                        "step": next(index for index, step in enumerate(output.steps)
                                                    if step is published)},
                        "stable": output.has_stable})
    return {
        "name": found.name, "title": found.title, "summary": found.summary, "kind": found.kind,
        "topic": found.topic, "returns": found.returns,
        "params": [{"name": p.name, "domain": p.domain.describe(), "doc": p.doc,
                    "symbol": notation.symbol(p.symbol)} for p in found.params],
        "outputs": outputs,
        "definitions": [{"symbol": symbol, "latex": latex} for symbol, latex in notation.definitions.items()],
        "references": list(found.references), "sections": list(found.sections),
        "checks": [{"kind": check.kind, "description": check.description, "outputs": list(check.outputs)}
                   for check in found.checks],
        "slips": [{"candidate": candidate, "description": description, "output": output}
                  for candidate, description, output in found.slips],
        "implementation": found.implementation,
    }


def summary_of(found) -> dict:
    """The catalogue's line for a derivation (no steps: ``symgen list`` and name lookups)."""
    return {"name": found.name, "title": found.title, "kind": found.kind, "topic": found.topic,
            "params": found.param_names, "outputs": list(found.outputs), "sections": list(found.sections)}

"""``symgen notebook``: the theory notebook's 13 sections, made of verified parts.

Each section of the theory notebook (a toy NumPy version of one objective) becomes a
section of a Jupyter notebook with the derivations that make it real: the steps, a
call of the verified function, its verification table and its figures. Derivations
say which sections they belong to (``Derivation(sections=...)``). The notebook is
executed (nbclient), so it is delivered with its outputs.
"""
from __future__ import annotations

from pathlib import Path

SECTIONS = {
    1: "Autoregressive log likelihood",
    2: "VAE reparameterization",
    3: "Gaussian KL to standard normal",
    4: "ELBO pieces",
    5: "GAN losses",
    6: "1D flow change of variables",
    7: "Diffusion noising step",
    8: "Denoising MSE",
    9: "Score-based Langevin update",
    10: "Simplified FID-style distance",
    11: "Diversity check",
    12: "Denoising loss by timestep",
    13: "Final checklist",
}

SETUP = """\
import io

import numpy as np
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from IPython.display import Image, Markdown, display

import symgen
from symgen import view
from symgen.engine.docs import KIND_NOTES
from symgen.engine.record import record_of


def show(figure):
    \"\"\"The figure as a PNG output of the cell (under Agg, plt.show() leaves none), then closed.\"\"\"
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    display(Image(buffer.getvalue()))
"""


def _derivation_cells(nbformat, found, examples: int) -> list:
    name = found.name
    cells = [
        nbformat.v4.new_markdown_cell(f"### `{name}`: {found.title}\n\n{found.summary}"),
        nbformat.v4.new_code_cell(
            f'found = symgen.derivation("{name}").prove()   # every step proved by SymPy\n'
            "display(Markdown(view.markdown(record_of(found))))"),
        nbformat.v4.new_code_cell(
            "# The verified function at a point of its domain\n"
            f"point = found.sample_point(np.random.default_rng(0))\n"
            f"print(point)\nprint(symgen.{name}(**point))"),
        nbformat.v4.new_code_cell(
            f'report = symgen.verify(["{name}"], examples={examples})\n'
            "for row in report.rows:\n"
            "    print(f\"{'ok' if row.passed else 'FAIL':5} {row.check}: {row.summary}\")"),
    ]
    for index, (title, _) in enumerate(found.plots):
        cells.append(nbformat.v4.new_code_cell(
            f"figure, axes = plt.subplots(figsize=(6.4, 4))\n"
            f"found.plots[{index}][1](axes)\naxes.set_title({title!r})\nshow(figure)"))
    return cells


def build_notebook(derivations: list, examples: int = 5):
    import nbformat

    notebook = nbformat.v4.new_notebook()
    cells = [nbformat.v4.new_markdown_cell(
                 "# Generative models: the theory notebook, derived and verified\n\n"
                 "Each section replaces a toy formula with a derivation whose every step SymPy has "
                 "proved, a NumPy function checked against 50-digit arithmetic, and Monte Carlo "
                 "checks that never use the closed form."),
             nbformat.v4.new_code_cell(SETUP)]
    for number, title in SECTIONS.items():
        # The sections the chosen derivations make real, in the theory notebook's order, and the
        # closing checklist (section 13). A derivation of several sections is worked in the first
        # and pointed to from the others.
        members = [found for found in derivations if number in found.sections]
        if not members and number != 13:
            continue
        cells.append(nbformat.v4.new_markdown_cell(f"## {number}. {title}"))
        shown = [found for found in members if min(found.sections) < number]
        if shown:
            cells.append(nbformat.v4.new_markdown_cell("\n".join(
                f"- `{found.name}` ({found.title}): worked in section {min(found.sections)} above."
                for found in shown)))
        if number == 13:
            cells.append(nbformat.v4.new_code_cell(
                "for kind, (measures, does_not, report) in KIND_NOTES.items():\n"
                "    print(f\"{kind}:\\n  measures: {measures}\\n  does not measure: {does_not}\\n"
                "  report: {report}\")"))
            continue
        for found in members:
            if min(found.sections) == number:
                cells += _derivation_cells(nbformat, found, examples)
    notebook.cells = cells
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return notebook


def write_notebook(derivations: list, path: Path, execute: bool = True, timeout: int = 1200) -> Path:
    import nbformat

    notebook = build_notebook(derivations)
    if execute:
        from nbclient import NotebookClient

        NotebookClient(notebook, timeout=timeout, kernel_name="python3").execute()
    path = Path(path)
    nbformat.write(notebook, path)
    return path

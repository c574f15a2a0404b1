"""Teaching output: show in three formats, the docs pages, the executed notebook."""
import pytest

import symgen
from symgen import view
from symgen.engine import docs
from symgen.engine.printer import _function_source
from symgen.engine.record import record_of


@pytest.mark.parametrize("form", ["text", "latex", "markdown"])
def test_show_formats_carry_steps_reasons_and_references(form):
    found = symgen.derivation("kl_normal")
    shown = view.FORMATS[form](record_of(found))
    plain = shown.replace("\\", "")    # LaTeX escapes its underscores and percent signs
    for step in found.output().steps:
        assert step.reason[:20] in plain
    assert "Kingma & Welling" in plain
    assert "kl_normal(loc_p, scale_p, loc_q, scale_q" in plain


def test_docs_static_page_has_latex_and_code():
    found = symgen.derivation("kl_std_normal")
    page = docs.static_page(found, record_of(found, prove=False), _function_source(found))
    assert page.count("$$") >= 2 * len(found.output().steps)
    assert "def kl_std_normal(loc, logvar, *, validate=True):" in page


def test_docs_index_explains_every_kind_in_the_catalogue():
    derivations = [symgen.derivation(name) for name in symgen.derivations()]
    index = docs.index_page(derivations)
    for found in derivations:
        assert f"[`{found.name}`]({found.name}.md)" in index
        assert f"## {found.kind}" in index
    assert "number of generation steps" in index


def test_figures_are_reproducible(tmp_path):
    pytest.importorskip("matplotlib")
    with_plots = [symgen.derivation(n) for n in symgen.derivations() if symgen.derivation(n).plots]
    if not with_plots:
        pytest.skip("no derivation declares a figure")
    found = with_plots[0]
    first = [(tmp_path / p).read_text() for p in docs.draw_figures(found, tmp_path)]
    second = [(tmp_path / p).read_text() for p in docs.draw_figures(found, tmp_path)]
    assert first == second and all("<svg" in text for text in first)


def test_notebook_is_built_and_executed(tmp_path):
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    import nbformat

    from symgen.engine.notebook import SECTIONS, write_notebook

    names = ["kl_std_normal"] + [n for n in symgen.derivations() if symgen.derivation(n).plots][:1]
    chosen = [symgen.derivation(n) for n in names]
    path = write_notebook(chosen, tmp_path / "theory.ipynb")
    notebook = nbformat.read(path, as_version=4)
    headings = [cell.source for cell in notebook.cells if cell.cell_type == "markdown"]
    # Only the chosen derivations' sections, in the theory notebook's order, and the checklist;
    # no "not covered" text.
    covered = sorted({number for found in chosen for number in found.sections} | {13})
    numbers = [int(h[3:].split(".")[0]) for h in headings if h.startswith("## ")]
    assert numbers == covered and set(numbers) <= set(SECTIONS)
    assert not any("covers this section" in h for h in headings)
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert outputs and not [o for o in outputs if o.output_type == "error"]
    assert any("max relative error" in o.get("text", "") for o in outputs)
    # Every figure cell leaves its image in the notebook (under Agg, plt.show() left none).
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == sum(len(found.plots) for found in chosen) >= 1


def test_the_whole_catalogue_notebook_has_its_figures_and_every_section():
    pytest.importorskip("nbformat")
    from symgen.engine.notebook import SECTIONS, build_notebook

    derivations = [symgen.derivation(name) for name in symgen.derivations()]
    notebook = build_notebook(derivations)
    figure_cells = [cell for cell in notebook.cells
                    if cell.cell_type == "code" and cell.source.startswith("figure, axes = plt.subplots")]
    # Each figure cell leaves a PNG when executed (test_notebook_is_built_and_executed).
    assert len(figure_cells) == sum(len(found.plots) for found in derivations) >= 6
    headings = [cell.source for cell in notebook.cells if cell.cell_type == "markdown" and cell.source.startswith("## ")]
    assert [int(h[3:].split(".")[0]) for h in headings] == sorted(SECTIONS)
    assert not any("covers this section" in cell.source for cell in notebook.cells)

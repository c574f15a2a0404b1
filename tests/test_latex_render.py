"""Every formula a reader is shown parses: the docs pages' math through KaTeX (the parser
GitHub-like renderers share the grammar of), ``symgen show --format latex`` through KaTeX and,
where a TeX installation is present, its ``--standalone`` document through pdflatex.

KaTeX comes from the ``markdown-katex`` package (a self-contained KaTeX command-line binary);
each call starts a process (~1 s), so the blocks of all pages are parsed in one call, and only a
failing batch is split to name the block that does not parse.
"""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import symgen
from symgen import records, view

katex = pytest.importorskip("markdown_katex.wrapper", reason="the LaTeX parser: pip install markdown-katex")

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").glob("*.md"))
DISPLAY = re.compile(r"^\$\$\n(.*?)\n\$\$$", re.S | re.M)
INLINE = re.compile(r"(?<![\\$])\$(?!\$)([^$\n]+?)(?<!\\)\$")


def parses(blocks: list[str]) -> list[tuple[str, str]]:
    """The blocks that KaTeX does not parse, each with its error: all in one call when all
    parse, then halves of a failing batch."""
    if not blocks:
        return []
    # Each block in its own braces, one per row: an unbalanced block cannot borrow from another.
    joined = r"\begin{gathered}" + r" \\ ".join("{" + block + "}" for block in blocks) + r"\end{gathered}"
    try:
        katex.tex2html(joined, {"display-mode": True})
        return []
    except katex.KatexError as error:
        if len(blocks) == 1:
            message = str(error)
            return [(blocks[0], message[message.find("ParseError"):][:300])]
    middle = len(blocks) // 2
    return parses(blocks[:middle]) + parses(blocks[middle:])


def page_math(text: str) -> list[str]:
    blocks = DISPLAY.findall(text)
    outside = DISPLAY.sub("", text)
    outside = re.sub(r"```.*?```", "", outside, flags=re.S)        # code: its $ are not math
    outside = re.sub(r"`[^`\n]*`", "", outside)
    return blocks + INLINE.findall(outside)


def latex_math(document: str) -> list[str]:
    """The math of ``symgen show --format latex``: align* (without its \\intertext lines, which
    KaTeX lacks: pdflatex checks those), \\[ \\] and $ $."""
    blocks = []
    for body in re.findall(r"\\begin\{align\*\}\n(.*?)\n\\end\{align\*\}", document, re.S):
        rows = [line for line in body.splitlines() if not line.startswith(r"\intertext{")]
        blocks.append(r"\begin{aligned}" + "\n".join(rows) + r"\end{aligned}")
    blocks += re.findall(r"\\\[ (.*?) \\\]", document)
    text = re.sub(r"\\begin\{align\*\}.*?\\end\{align\*\}", "", document, flags=re.S)
    return blocks + INLINE.findall(re.sub(r"\\\$", "", text))


def test_the_parser_refutes_broken_latex():
    # The check itself: an unbalanced brace, an unknown command, a misplaced &.
    broken = [r"\frac{a}{", r"\mathbb{E}[x] \foo", r"a & b", r"\left( x"]
    assert [block for block, _ in parses([r"\frac{a}{b}"] + broken)] == broken


def test_every_docs_page_parses():
    blocks = {}
    for page in PAGES:
        for block in page_math(page.read_text()):
            blocks.setdefault(block, page.name)
    assert len(blocks) > 200
    failures = parses(list(blocks))
    assert not failures, "\n".join(f"{blocks[block]}: {error}\n  {block[:200]}" for block, error in failures)


def _record(name):
    record = records.load_record(name)
    if record is None:
        from symgen.engine.record import record_of
        record = record_of(symgen.derivation(name), prove=False)
    return record


def test_every_latex_view_parses():
    blocks = {}
    for name in symgen.derivations():
        for block in latex_math(view.latex(_record(name))):
            blocks.setdefault(block, name)
    failures = parses(list(blocks))
    assert not failures, "\n".join(f"{blocks[block]}: {error}\n  {block[:200]}" for block, error in failures)


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no TeX installation (pdflatex) on this machine")
def test_standalone_documents_compile(tmp_path):
    for name in symgen.derivations():
        source = tmp_path / f"{name}.tex"
        source.write_text(view.latex(_record(name), standalone=True))
        run = subprocess.run(["pdflatex", "-halt-on-error", "-interaction=nonstopmode", source.name],
                             cwd=tmp_path, capture_output=True, text=True, timeout=120)
        errors = [line for line in run.stdout.splitlines() if line.startswith("!")]
        assert run.returncode == 0 and (tmp_path / f"{name}.pdf").exists(), (name, errors)


# --- the notation: declared once per derivation, used by every view ---------------------------

def test_kl_normal_is_written_in_the_papers_notation():
    shown = view.latex(_record("kl_normal"))
    for symbol in (r"\mu_{p}", r"\sigma_{p}", r"\mu_{q}", r"\sigma_{q}", r"\mathrm{KL}(p \,\|\, q)"):
        assert symbol in shown
    assert "loc_{p}" not in shown and "scale_{q}" not in shown
    assert r"\left(x - \mu_{q}\right)^{2}" in shown          # a positive term leads the sum
    assert r"\mathrm{KL} < 0.01" in shown                    # the condition as derived
    assert r"\frac{1}{100}" not in shown and "51" not in shown
    assert r"\intertext{the log-ratio is a quadratic in x" in shown   # reasons between equations


def test_every_view_uses_the_same_notation():
    found = symgen.derivation("diffusion_posterior")
    from symgen.engine.printer import _function_source
    record = _record("diffusion_posterior")
    docstring = _function_source(found)
    for shown in (view.latex(record), view.markdown(record), docstring,
                  (ROOT / "docs" / "diffusion_posterior.md").read_text()):
        assert r"\bar{\alpha}_{t-1}" in shown and r"\tilde{\mu}_{t}" in shown
        assert "alpha_{bar prev}" not in shown


def test_the_cosine_schedule_is_shown_as_published_then_rewritten():
    record = _record("diffusion_cosine_schedule")
    assert [d["latex"] for d in record["definitions"]][0].startswith(r"\cos^{2}")
    for output in record["outputs"]:
        closed = output["closed_form"]
        assert closed["step"] == 0 and r"f\left(t\right)" in closed["latex"] and r"\sin" not in closed["latex"]
        assert any(r"\sin" in step["latex"] for step in output["steps"][1:])
    markdown = view.markdown(record)
    assert markdown.index(r"\cos^{2}") < markdown.index(r"\sin^{2}")


def test_standalone_is_a_complete_document():
    document = view.latex(_record("kl_normal"), standalone=True)
    assert document.startswith(r"\documentclass") and document.rstrip().endswith(r"\end{document}")
    for package in ("amsmath", "amssymb"):
        assert rf"\usepackage{{{package}}}" in document


def test_docstrings_link_their_docs_page():
    for name in ("kl_normal", "diffusion_cosine_schedule", "frechet_distance"):
        doc = getattr(symgen, name).__doc__
        assert f"docs/{name}.md" in doc and (ROOT / "docs" / f"{name}.md").exists()

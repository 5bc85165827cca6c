"""The notebook examples/backprop.ipynb runs, and what it displays carries the seed walk-through's numbers.

Executed with nbclient in a fresh kernel (the test-only extra; skipped, saying why, when nbclient,
nbformat or a Python kernel is missing).  Also: ``symgrad.worked_example`` and the formula objects
display themselves as Jupyter expects, without a kernel.
"""

from __future__ import annotations

import os
import re

import pytest

import symgrad
from helpers import EXAMPLES, MAZUR


def _kernel_or_skip() -> None:
    pytest.importorskip("nbformat", reason="nbformat is not installed (pip install 'symgrad[test]')")
    pytest.importorskip("nbclient", reason="nbclient is not installed (pip install 'symgrad[test]')")
    kernelspec = pytest.importorskip("jupyter_client.kernelspec", reason="jupyter_client is not installed")
    if "python3" not in kernelspec.KernelSpecManager().find_kernel_specs():
        pytest.skip("no python3 Jupyter kernel (pip install ipykernel)")


def _outputs(cell) -> str:
    """Everything a cell displayed or printed, every MIME type."""
    texts = []
    for output in cell.get("outputs", []):
        texts.append(output.get("text", ""))
        for value in output.get("data", {}).values():
            texts.append(value if isinstance(value, str) else "")
    return "\n".join(texts)


def test_the_notebook_runs_and_shows_the_seeds_numbers(monkeypatch):
    _kernel_or_skip()
    import nbformat
    from nbclient import NotebookClient

    root = str(EXAMPLES.parent)
    monkeypatch.setenv("PYTHONPATH", root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    notebook = nbformat.read(EXAMPLES / "backprop.ipynb", as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), \
        "the committed notebook carries outputs: clear them"
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(EXAMPLES)}}).execute()
    shown = [_outputs(cell) for cell in notebook.cells if cell.cell_type == "code"]
    everything = "\n".join(shown)
    assert not [output for cell in notebook.cells for output in cell.get("outputs", [])
                if output.get("output_type") == "error" or output.get("name") == "stderr"]
    lesson = next(text for text in shown if "symgrad-worked" in text)
    # the seed's numbers (its rounding), in the worked example's HTML and Markdown
    for number in ("0.298371", "0.59327", "0.751365", "0.082167", "0.138499", "0.0553994", "0.0363503",
                   "0.000438568", "0.358916", "0.149781"):
        assert number in lesson, number
    assert "<mo>\u2212</mo><mn>0.0190491</mn>" in lesson  # dE_o2/dout_h1, a minus sign
    styles = re.findall(r"<style>(.*?)</style>", lesson, flags=re.S)
    selectors = [selector.strip() for style in styles for rule in re.findall(r"([^{}]+)\{", style)
                 for selector in rule.split(",")]
    assert selectors and all(s.startswith((".symgrad-worked ", "svg.network ")) for s in selectors), \
        "the HTML restyles the notebook page"
    assert "E = 0.298371109, dE/dw5 = 0.082167041, delta_o1 = 0.138498562" in everything
    assert "w5 after one step: 0.358916480; E after it: 0.291027774" in everything
    latex = [output["data"]["text/latex"] for cell in notebook.cells for output in cell.get("outputs", [])
             if "text/latex" in output.get("data", {})]
    assert len(latex) == 3 and all(text.startswith("$$ \\frac{\\partial") for text in latex)
    assert "\\delta_{o1} \\cdot \\mathrm{w5}" in latex[1]  # dE/dout_h1 = delta_o1 w5 + delta_o2 w7


def test_a_worked_example_displays_itself():
    lesson = symgrad.worked_example(MAZUR, steps=1)
    assert str(lesson) == symgrad.explain.render(lesson.example, "txt", 6)
    assert lesson._repr_markdown_().startswith("# Worked example: mazur")
    html = lesson._repr_html_()
    assert html.startswith('<div class="symgrad-worked"') and html.rstrip().endswith("</div>")
    assert "<!DOCTYPE" not in html and "<body" not in html and "<svg" in html
    assert lesson.error == pytest.approx(0.298371108760003, rel=1e-13)
    assert lesson.updated["w1"] == pytest.approx(0.149780716132763, rel=1e-13)


def test_worked_example_refuses_bad_digits():
    with pytest.raises(symgrad.SpecError, match="digits"):
        symgrad.worked_example(MAZUR, digits=0)


def test_formula_objects_display_as_latex():
    gradients = symgrad.analyze(MAZUR).gradients
    chain = symgrad.chain_rule(gradients, "w1")
    assert chain._repr_latex_().startswith("$$ \\frac{\\partial E}{\\partial \\mathrm{w1}} = ")
    factor = chain.paths[0].factors[1]
    assert factor._repr_latex_() == ("$$ \\frac{\\partial \\mathrm{out}_{h1}}{\\partial \\mathrm{net}_{h1}} = "
                                     "\\mathrm{out}_{h1} \\left(1 - \\mathrm{out}_{h1}\\right) $$")
    assert "\\delta_{o1} \\cdot \\mathrm{w5}" in chain.upstream[0]._repr_latex_()
    assert chain.paths[0]._repr_latex_().count("\\frac{\\partial") == 3

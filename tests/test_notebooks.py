"""Static checks on the chapters: pairing, output-free twins, kernels, the toc and the first cell."""

from __future__ import annotations

import jupytext
import nbformat
import pytest
import tomllib
import yaml

import labclip_utils
from tests.conftest import ROOT

SOURCES = sorted((ROOT / "notebooks").glob("[0-9]*.py"))


def test_there_are_chapters():
    assert SOURCES, "no chapters found in notebooks/"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_pair_is_in_sync(source, book_tool):
    twin = source.with_suffix(".ipynb")
    assert twin.exists(), f"{twin.name} missing: run `make sync`"
    committed = nbformat.read(twin, as_version=4)
    expected = book_tool.twin_notebook(source)
    got = [(c.cell_type, c.source) for c in committed.cells]
    want = [(c.cell_type, c.source) for c in expected.cells]
    assert got == want, f"{twin.name} is out of sync with {source.name}: run `make sync`"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_committed_twin_has_no_outputs(source):
    nb = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{source.with_suffix('.ipynb').name}: cells {dirty} carry outputs; run `make sync`"
    assert "widgets" not in nb.metadata


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_no_empty_cells(source):
    nb = jupytext.read(source, fmt="py:percent")
    empty = [i for i, c in enumerate(nb.cells) if not c.source.strip()]
    assert not empty, f"{source.name}: empty cells {empty} (two blank lines before a cell marker make one)"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_kernel_is_python3(source):
    header = jupytext.read(source, fmt="py:percent").metadata
    assert header.get("kernelspec", {}).get("name") == "python3", f"{source.name}: header must name python3"
    twin = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    assert twin.metadata["kernelspec"]["name"] == "python3"
    assert header["jupytext"]["formats"] == "ipynb,py:percent"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_first_cell_picks_the_profile_in_one_call(source):
    """A chapter starts with its parameter and one call; the Colab install is the twin's business (below)."""
    nb = jupytext.read(source, fmt="py:percent")
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert "parameters" in first.metadata.get("tags", []), f"{source.name}: first code cell must be tagged parameters"
    code = [line for line in first.source.splitlines() if line.strip() and not line.startswith("#")]
    assert code[0] == 'PROFILE = None  # "offline" or "paper"; None reads $LABCLIP_PROFILE (default: offline)'
    assert code[-2:] == ["from labclip_utils import use_profile", "profile = use_profile(PROFILE)"], source.name
    assert all(line.split(" = ")[0].isupper() for line in code[:-2]), f"{source.name}: only parameters before the call"
    assert not any("google.colab" in c.source for c in nb.cells), f"{source.name}: the Colab install is `make sync`'s"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_the_twin_colab_opens_installs_only_in_colab(source, book_tool):
    twin = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    code = [c for c in twin.cells if c.cell_type == "code"]
    first = code[0]
    assert first.get("id") == book_tool.COLAB_CELL_ID and "remove-cell" in first.metadata["tags"]
    assert 'if "google.colab" in sys.modules:' in first.source
    assert f"labclip-utils[paper] @ git+{labclip_utils.REPOSITORY_URL}" in first.source
    assert "parameters" in code[1].metadata.get("tags", []), "the parameters cell follows the install cell"


def test_a_chapter_that_carries_the_install_cell_itself_is_refused(book_tool, tmp_path):
    source = tmp_path / "99_x.py"
    source.write_text('# %%\nimport sys\nif "google.colab" in sys.modules:\n    pass\n')
    with pytest.raises(ValueError, match="twin only"):
        book_tool.twin_notebook(source, "https://example.org/x")


def test_toc_lists_every_chapter_in_order(book_tool):
    chapters = book_tool.toc_notebooks()
    assert sorted(chapters) == [f"notebooks/{p.stem}" for p in SOURCES], "every chapter must be in _toc.yml once"
    assert chapters == sorted(chapters), "chapters are numbered in reading order"
    for doc in book_tool.toc_files():
        suffix = ".py" if doc.startswith("notebooks/") else ".md"
        assert (ROOT / f"{doc}{suffix}").exists(), doc


def test_repository_url_is_written_in_one_place(book_tool, tmp_path):
    """pyproject.toml holds the address; the package reads it from its metadata, the runner writes it into the staged
    _config.yml (launch buttons) and `make sync` into every twin's install cell."""
    url = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    assert book_tool.repository_url() == url == labclip_utils.REPOSITORY_URL
    assert "url" not in (yaml.safe_load((ROOT / "_config.yml").read_text()).get("repository") or {})
    for source in SOURCES:
        assert url not in source.read_text(), f"{source.name}: the address belongs in pyproject.toml only"
    fork = book_tool.twin_notebook(SOURCES[0], "https://example.org/fork")
    install = next(c for c in fork.cells if c.get("id") == book_tool.COLAB_CELL_ID)
    assert "@ git+https://example.org/fork" in install.source


def test_colab_install_brings_everything_the_paper_profile_imports_and_keeps_colabs_torch():
    import ast

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    installed = {Requirement(r).name.lower().replace("_", "-") for r in project["dependencies"]}
    installed |= {Requirement(r).name.lower() for r in project["optional-dependencies"]["paper"]}
    third_party = set()
    for path in (ROOT / "labclip_utils").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            third_party |= {n.split(".")[0] for n in names}
    import sys

    third_party -= set(sys.stdlib_module_names) | {"labclip_utils", "IPython", "myst_nb", "__future__"}
    distributions = {"PIL": "pillow", "sklearn": "scikit-learn", "open_clip": "open-clip-torch", "yaml": "pyyaml"}
    missing = {m for m in third_party if distributions.get(m, m).lower().replace("_", "-") not in installed
               and m not in ("torchvision",)}
    assert not missing, f"the package imports {sorted(missing)} but pip install of it would not bring them"
    for dep in project["dependencies"]:
        req = Requirement(dep)
        if req.name in ("torch", "torchvision"):
            assert not any(s.operator in ("==", "<", "<=", "~=") for s in req.specifier), \
                f"{dep}: an upper bound or pin would make pip replace Colab's own torch"
    twin = nbformat.read(SOURCES[0].with_suffix(".ipynb"), as_version=4)
    first = next(c.source for c in twin.cells if c.cell_type == "code")  # the twin's install cell
    assert '"install", "-q", "labclip-utils[paper] @ git+' in first
    assert "--upgrade" not in first and "-U" not in first.split() and "torch" not in first


def test_book_config_is_strict_and_offline():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off", "notebooks run once, in tools/book.py execute"
    assert config["sphinx"]["config"]["nb_execution_raise_on_error"] is True
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert "path_to_book" not in config["repository"], "path_to_book puts /./ in launch links"
    for hidden in (".venv", "**/.*", "_build", "_stage"):
        assert hidden in config["exclude_patterns"]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    commands = [line.strip() for line in ci.splitlines() if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert commands[0] == "make test", "CI runs the README's test command first"
    assert "make rehearse" in commands
    workflow = (ROOT / ".github" / "workflows" / "book.yml").read_text()
    import re

    called = re.findall(r"run: (make [\w-]+)", workflow)
    assert called and set(called) <= set(commands), f"the workflow calls {called}; CI here runs {commands}"
    assert "upload-pages-artifact" in workflow and "_build/html" in workflow and "gh release upload" in workflow
    assert "make test" in readme and "make book" in readme and "make rehearse" in readme


def glossary_terms(text: str) -> list[str]:
    """The terms a ``{glossary}`` block defines (its unindented lines)."""
    body = text.split("```{glossary}", 1)[1].split("```", 1)[0]
    return [line.strip() for line in body.splitlines() if line.strip() and not line.startswith((" ", "\t"))]


def linked_terms(text: str) -> set[str]:
    """The glossary terms a page links with ``{term}`text``` or ``{term}`text <term>```, lower-cased."""
    import re

    return {re.sub(r".*<(.*)>\s*$", r"\1", m).strip().lower() for m in re.findall(r"\{term\}`([^`]*)`", text)}


def test_every_glossary_term_is_linked_from_a_chapter_or_page():
    """The glossary promises that a term links there where it is first used: a term nobody links is never found."""
    terms = glossary_terms((ROOT / "book" / "glossary.md").read_text(encoding="utf-8"))
    pages = [*SOURCES, *(p for p in (ROOT / "book").glob("*.md") if p.name != "glossary.md")]
    linked = set().union(*(linked_terms(p.read_text(encoding="utf-8")) for p in pages))
    assert len(terms) > 20
    missing = [t for t in terms if t.lower() not in linked]
    assert not missing, f"glossary terms no page links to: {missing}"
    assert linked_terms("a {term}`Probe`, two {term}`cones <cone>`") == {"probe", "cone"}

"""The book's runner: stage the sources, execute every chapter exactly once, build the website.

    python tools/book.py sync       # notebooks/*.py -> their committed, output-free .ipynb twins
    python tools/book.py stage      # _config.yml, _toc.yml, book/ and notebooks/*.py -> _stage/ (fresh .ipynb)
    python tools/book.py execute    # run each staged notebook once (nbmake, 2 workers); outputs stay in _stage/
    python tools/book.py build      # jupyter-book build _stage -> _build/html with -W -n --keep-going
    python tools/book.py teaching   # the figure pack and the instructor edition -> _build/html/teaching

The site is built from the executed copies in ``_stage/`` (``execute_notebooks: "off"`` in _config.yml), so
nothing runs twice and the committed ``.ipynb`` twins stay output-free. The setup chapter (11, in the reference
part) runs after the others so it can report how long they took.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from html import escape
from pathlib import Path

import jupytext
import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
STAGE = ROOT / "_stage"
BUILD = ROOT / "_build"
REPORTS = BUILD / "reports"
#: Notebooks (by stem) that run after all the others, in this order.
RUN_LAST = ("11_setup",)
#: The slowest chapters start first (a clean offline run on 2 cores: 09 114 s, 06 98 s, 02 84 s, 04 66 s, 07 58 s,
#: 03 43 s; the rest under 20 s), handed to the two workers one at a time, so that no long chapter starts last
#: and runs alone. Chapters not listed follow in file order.
SLOWEST_FIRST = ("09_beyond", "06_labclip", "02_miniature", "04_probing", "07_benchmarks", "03_bag_of_words")
#: Shared artefacts built once, with every core, before the chapters run two at a time (each chapter then loads
#: them from the cache; run on its own, in Colab say, a chapter builds what it needs itself).
PREPARE = {
    "offline": "from labclip_utils.models import load_miniature; load_miniature(\"seed0\", progress=False)",
    # the paper profile: the synthetic backbone's embeddings of the evaluation scenes most chapters share
    "paper": "from labclip_utils import use_profile; from labclip_utils.scenes import evaluation_scenes; "
             "from labclip_utils.store import embed_scenes; p = use_profile(); e = p.load_encoder('synthetic'); "
             "s = evaluation_scenes(seed=0, image_size=p.image_size, fraction=p.fraction); "
             "[embed_scenes(e, d, progress=False) for d in (s.pool, s.seen)]",
}
#: A cell that runs longer fails. The slowest cell of any profile takes a few minutes on 2 cores; a kernel wedged by a
#: lost message (seen about once in ten full executions, with ipykernel 6 and 7: the kernel idle after sending its
#: reply, the client still waiting for it) is cut here and its chapter executed once more (``--reruns``).
CELL_TIMEOUT_S = 900
#: MathJax, served from the site itself so that formulas render without a network (a classroom, the browser test).
#: From npm, checked against the registry's published integrity hash.
MATHJAX = {"spec": "mathjax@3.2.2", "file": "mathjax-3.2.2.tgz",
           "integrity": "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw"
                        "=="}
VENDOR = ROOT / ".cache" / "vendor"


def toc_files(toc_path: Path = ROOT / "_toc.yml") -> list[str]:
    """Every document named in ``_toc.yml`` (root first), in reading order, without extension."""
    toc = yaml.safe_load(toc_path.read_text())
    if not isinstance(toc, dict) or "root" not in toc:
        raise ValueError(f"{toc_path}: expected a mapping with a 'root' entry")
    found = [toc["root"]]

    def walk(entries: list) -> None:
        for entry in entries or []:
            if not isinstance(entry, dict):
                raise ValueError(f"{toc_path}: unexpected toc entry {entry!r}")
            if "file" in entry:
                found.append(entry["file"])
            for key in ("chapters", "sections", "parts"):
                walk(entry.get(key, []))

    walk(toc.get("chapters", []) + toc.get("parts", []))
    return found


def toc_notebooks(toc_path: Path = ROOT / "_toc.yml") -> list[str]:
    """The toc entries that are chapters (``notebooks/NAME``)."""
    return [f for f in toc_files(toc_path) if f.startswith("notebooks/")]


def notebook_from_source(source: Path) -> nbformat.NotebookNode:
    """Read a py:percent chapter as an output-free notebook with stable cell ids (``cell-0``, ``cell-1``...).

    Stable ids keep the committed .ipynb twins free of churn: the same .py always gives the same bytes.
    """
    nb = jupytext.read(source, fmt="py:percent")
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
        if cell.cell_type == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return nb


def repository_url(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """The repository's address, written in one place: ``[project.urls] Repository`` of pyproject.toml."""
    import tomllib

    return tomllib.loads(pyproject.read_text())["project"]["urls"]["Repository"]


#: The first cell of every committed .ipynb twin (what Colab's launch button opens): in Colab, where the helper
#: package is not installed, it installs it from the repository; elsewhere it does nothing. It is written here once,
#: not in the chapters' sources, which start with their one call, ``profile = use_profile(PROFILE)``.
COLAB_CELL_ID = "colab-install"
COLAB_CELL = """# Colab only: install this book's helper package from the repository (this cell is added by `make sync`)
import subprocess
import sys

if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "labclip-utils[paper] @ git+{url}"], check=True)"""


def twin_notebook(source: Path, url: str | None = None) -> nbformat.NotebookNode:
    """The committed .ipynb twin of a chapter: its output-free notebook with the Colab install cell before its first
    code cell (pointing at ``url``, default the repository of pyproject.toml)."""
    nb = notebook_from_source(source)
    if any(c.get("id") == COLAB_CELL_ID or "google.colab" in c.source for c in nb.cells):
        raise ValueError(f"notebooks/{source.name}: the Colab install cell belongs to the .ipynb twin only (`make "
                         "sync` adds it); remove it from the chapter's source")
    cell = nbformat.v4.new_code_cell(COLAB_CELL.format(url=url or repository_url()),
                                     metadata={"tags": ["remove-cell"]})
    cell["id"] = COLAB_CELL_ID
    nb.cells.insert(next(i for i, c in enumerate(nb.cells) if c.cell_type == "code"), cell)  # after the title
    return nb


def sync(sources: list[Path] | None = None) -> list[Path]:
    """Regenerate the committed .ipynb twin of every chapter source (``make sync``): its output-free notebook with the
    Colab install cell (:data:`COLAB_CELL`) before its first code cell."""
    written = []
    url = repository_url()
    for source in sources or sorted((ROOT / "notebooks").glob("[0-9]*.py")):
        target = source.with_suffix(".ipynb")
        jupytext.write(twin_notebook(source, url), target, fmt="ipynb")
        written.append(target)
        print(f"wrote {target.relative_to(ROOT)}")
    return written


def vendor_mathjax(static: Path, vendor: Path = VENDOR) -> Path:
    """Put MathJax's CommonHTML build and its fonts under ``static/mathjax`` (npm tarball cached in ``vendor``)."""
    import base64
    import hashlib
    import tarfile

    tarball = vendor / MATHJAX["file"]
    if not tarball.is_file():
        vendor.mkdir(parents=True, exist_ok=True)
        print(f"+ npm pack {MATHJAX['spec']}", flush=True)
        subprocess.run(["npm", "pack", MATHJAX["spec"], "--pack-destination", str(vendor), "--silent"], check=True,
                       cwd=vendor, stdout=subprocess.DEVNULL)
    algorithm, _, expected = MATHJAX["integrity"].partition("-")
    digest = base64.b64encode(hashlib.new(algorithm, tarball.read_bytes()).digest()).decode()
    if digest != expected:
        tarball.unlink()
        raise SystemExit(f"{tarball}: integrity {algorithm}-{digest} differs from npm's published "
                         f"{MATHJAX['integrity']}; the file was removed, run again")
    target = static / "mathjax"
    shutil.rmtree(target, ignore_errors=True)
    with tarfile.open(tarball) as t:
        members = [m for m in t.getmembers() if m.isfile() and (
            m.name == "package/es5/tex-mml-chtml.js" or m.name.startswith("package/es5/output/chtml/fonts/woff-v2/"))]
        for m in members:
            m.name = m.name.removeprefix("package/es5/")
        t.extractall(target, members=members, filter="data")
    return target / "tex-mml-chtml.js"


def stage(stage_dir: Path = STAGE) -> list[Path]:
    """Copy the book sources to ``_stage/`` (or another folder) and write each chapter as a fresh .ipynb."""
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    stage_dir.mkdir(parents=True)
    for name in ("_toc.yml", "references.bib"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, stage_dir / name)
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config.setdefault("repository", {})["url"] = repository_url()  # launch buttons and the repository link
    (stage_dir / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    shutil.copytree(ROOT / "book", stage_dir / "book")
    vendor_mathjax(stage_dir / "book" / "_static")
    staged = []
    for doc in toc_notebooks():
        source = ROOT / f"{doc}.py"
        if not source.is_file():
            raise FileNotFoundError(f"_toc.yml names {doc!r} but {source.relative_to(ROOT)} does not exist")
        target = stage_dir / f"{doc}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        jupytext.write(notebook_from_source(source), target, fmt="ipynb")
        staged.append(target)
    for doc in toc_files():
        if not doc.startswith("notebooks/") and not (stage_dir / f"{doc}.md").exists():
            raise FileNotFoundError(f"_toc.yml names {doc!r} but book source {doc}.md does not exist")
    print(f"staged {len(staged)} notebooks and {len(toc_files()) - len(staged)} pages into {stage_dir}")
    return staged


def _pytest_nbmake(notebooks: list[Path], workers: int, report: Path, env: dict[str, str]) -> int:
    cmd = [
        sys.executable, "-m", "pytest", "--nbmake", "--overwrite", f"--nbmake-timeout={CELL_TIMEOUT_S}",
        "-p", "no:cacheprovider", "-o", "addopts=", "-o", "testpaths=", f"--junitxml={report}", "-v",
        # only a timed-out chapter runs again (a wedged kernel); an error in a chapter fails at once
        "--reruns", "1", "--only-rerun", "timed out",
    ]
    if workers > 1 and len(notebooks) > 1:
        cmd += ["-n", str(min(workers, len(notebooks))), "--maxschedchunk=1"]
    cmd += [str(nb) for nb in notebooks]
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, env=env, cwd=ROOT).returncode


def check_executed(notebooks: list[Path]) -> None:
    """Fail unless every code cell of every notebook was executed (guards against a run that ran nothing)."""
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
        missing = [i for i, c in enumerate(code) if c.get("execution_count") is None]
        if not code or missing:
            raise SystemExit(f"{path}: {len(missing)} of {len(code)} code cells were not executed")


def execute(directory: Path = STAGE / "notebooks", workers: int = 2, report_dir: Path = REPORTS,
            prepare: bool | None = None) -> int:
    """Execute every notebook in ``directory`` once; return 0 only if all ran and passed. ``prepare`` builds the
    profile's shared artefacts first, with every core (default: when executing the book's stage)."""
    notebooks = sorted(directory.glob("*.ipynb"))
    if not notebooks:
        print(f"no notebooks to execute in {directory}: refusing to pass without running anything")
        return 1
    report_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("LABCLIP_PROFILE", "offline")
    # progress bars help readers in Jupyter; on the website they would be frozen widgets
    env.setdefault("TQDM_DISABLE", "1")
    env.setdefault("LABCLIP_PROGRESS", "0")
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    # Figures that book pages (the landing page) show are written here by the chapters that draw them.
    env.setdefault("LABCLIP_FIGURES_DIR", str(directory.parent / "book" / "figures"))
    # Files the site serves as they are (the in-browser playground's data), into the staged html_static_path.
    env.setdefault("LABCLIP_STATIC_DIR", str(directory.parent / "book" / "_static"))
    # Every cell's figures are checked for overlapping elements (labclip_utils.book.figures): one that fails stops
    # its chapter, naming the figure and the two elements.
    env.setdefault("LABCLIP_FIGURE_CHECK", "1")
    profile = env["LABCLIP_PROFILE"]
    if prepare is None:
        prepare = directory == STAGE / "notebooks"
    if profile in PREPARE and prepare:
        print(f"+ preparing shared artefacts for the {profile!r} profile", flush=True)
        code = subprocess.run([sys.executable, "-c", PREPARE[profile]], env=env, cwd=ROOT).returncode
        if code != 0:
            return code
    # Two notebooks at a time on few cores: one thread each (torch, OpenMP and the BLAS under numpy/scikit-learn),
    # or their spinning thread pools thrash each other and every chapter runs several times slower.
    parallel_env = dict(env)
    if workers > 1:
        for var in ("LABCLIP_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            parallel_env.setdefault(var, "1")
    first = sorted((nb for nb in notebooks if nb.stem not in RUN_LAST),
                   key=lambda nb: SLOWEST_FIRST.index(nb.stem) if nb.stem in SLOWEST_FIRST else len(SLOWEST_FIRST))
    last = sorted((nb for nb in notebooks if nb.stem in RUN_LAST), key=lambda nb: RUN_LAST.index(nb.stem))
    main_report = report_dir / "notebooks.xml"
    main_report.unlink(missing_ok=True)
    if first:
        code = _pytest_nbmake(first, workers, main_report, parallel_env)
        if code != 0:
            return code
    if last:
        env["LABCLIP_RUN_REPORT"] = str(main_report)
        code = _pytest_nbmake(last, 1, report_dir / "notebooks-last.xml", env)
        if code != 0:
            return code
    check_executed(notebooks)
    print(f"executed {len(notebooks)} notebooks")
    return 0


def build(stage_dir: Path = STAGE, output: Path = ROOT) -> int:
    """Build the site from the executed stage into ``<output>/_build/html``; any warning fails."""
    if not (stage_dir / "_toc.yml").exists():
        raise SystemExit("nothing staged: run `python tools/book.py stage` and `execute` first")
    check_executed([stage_dir / f"{doc}.ipynb" for doc in toc_notebooks(stage_dir / "_toc.yml")])
    # Stale doctrees break widget mimetypes (QuantEcon does the same); the build is fast anyway.
    shutil.rmtree(output / "_build" / ".doctrees", ignore_errors=True)
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(stage_dir), "--path-output", str(output), "--builder", "html",
           "-W", "-n", "--keep-going"]
    print("+", " ".join(cmd), flush=True)
    code = subprocess.run(cmd, cwd=ROOT).returncode
    if code == 0 and not (output / "_build" / "html" / "index.html").exists():
        print(f"jupyter-book reported success but {output}/_build/html/index.html is missing")
        return 1
    return code


#: The folder of the figure pack that holds the figures book pages (the landing page) show, from book/figures.
LANDING = "00_landing"


def _chapter_title(nb: nbformat.NotebookNode, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def _md_cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def figure_pack(stage_dir: Path, target: Path) -> list[dict[str, str]]:
    """The figure pack for slides, one zip: the figures book pages show (``book/figures``: the landing figure the
    lesson plan starts with) under ``00_landing/``, then every figure of the executed chapters under
    ``<chapter>/``, each named by what it shows (``06_labclip/swap-test-clip-sb-labclip-and-full-fine-tuning.png``,
    from the name and caption each figure carries: see :mod:`labclip_utils.book.figures`), and ``README.md`` and
    ``captions.csv`` listing every file with its page, caption and profile. Returns those rows."""
    import base64
    import csv
    import io
    import zipfile

    from PIL import Image

    rows: list[dict[str, str]] = []
    files: dict[str, bytes] = {}

    def add(folder: str, name: str, png: bytes, page: str, caption: str, profile: str) -> None:
        stem = name or "figure"
        path, n = f"{folder}/{stem}.png", 1
        while path in files:  # two figures with one title: number the second
            n += 1
            path = f"{folder}/{stem}-{n}.png"
        files[path] = png
        rows.append({"file": path, "page": page, "caption": caption, "profile": profile})

    for png_path in sorted((stage_dir / "book" / "figures").glob("*.png")):
        png = png_path.read_bytes()
        text = Image.open(io.BytesIO(png)).text
        add(LANDING, text.get("labclip:name") or png_path.stem.replace("_", "-"), png,
            "the landing page (book/intro): the figure the lesson plan starts with", text.get("labclip:caption", ""),
            text.get("labclip:profile", ""))
    for doc in toc_notebooks(stage_dir / "_toc.yml"):
        nb = nbformat.read(stage_dir / f"{doc}.ipynb", as_version=4)
        chapter = Path(doc).name
        page = f"{chapter}: {_chapter_title(nb, chapter)}"
        k = 0
        for cell in nb.cells:
            for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
                png = out.get("data", {}).get("image/png")
                if png:
                    k += 1
                    about = (out.get("metadata", {}).get("image/png") or {}).get("labclip") or {}
                    add(chapter, about.get("name") or f"figure-{k:02d}", base64.b64decode(png), page,
                        about.get("caption", ""), about.get("profile", ""))
    readme = ["# LabCLIP Book: the figure pack", "",
              "Every figure of the executed book as a PNG, by the page that shows it, named by what it shows.",
              "Each figure says in its bottom-right corner which profile built it: *offline profile: miniature CLIP, "
              "generated data* means the small CLIP this book trains on a CPU and generated scenes, not OpenAI's CLIP "
              "or real datasets; the paper profile names its CLIP backbones. Slides should keep that label.", "",
              "| file | page | caption | profile |", "|---|---|---|---|"]
    readme += [f"| `{r['file']}` | {_md_cell(r['page'])} | {_md_cell(r['caption']) or '(no caption)'} | "
               f"{_md_cell(r['profile'])} |" for r in rows]
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=["file", "page", "caption", "profile"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as z:
        z.writestr("README.md", "\n".join(readme) + "\n")
        z.writestr("captions.csv", table.getvalue())
        for path, png in files.items():
            z.writestr(path, png)
    return rows


INSTRUCTOR_JS = """// Instructor edition: every solution open, ready to print.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("details").forEach((d) => { d.open = true; });
  const note = document.createElement("p");
  note.textContent = "Instructor edition: every chapter on one page, solutions open. Print it to PDF from the browser.";
  note.style.cssText = "font-weight:bold;border:1px solid #888;padding:0.5rem;";
  const article = document.querySelector("article");
  if (article) article.prepend(note);
  // one page has no search index: the search buttons would lead nowhere
  document.querySelectorAll(".search-button__button, .search-button-field, .bd-search").forEach((e) => e.remove());
});
"""


def teaching_kit(stage_dir: Path = STAGE, html: Path = BUILD / "html") -> int:
    """The teacher's kit, into ``<html>/teaching/``: the figure pack and the instructor edition (every chapter on one
    printable page with the solutions open), built from the executed stage without running anything."""
    out = html / "teaching"
    n = len(figure_pack(stage_dir, out / "labclip-figures.zip"))
    edition = stage_dir.parent / f"{stage_dir.name}-instructor"
    shutil.rmtree(edition, ignore_errors=True)
    shutil.copytree(stage_dir, edition, ignore=shutil.ignore_patterns("_build"))
    (edition / "book" / "_static" / "instructor.js").write_text(INSTRUCTOR_JS)
    config = yaml.safe_load((edition / "_config.yml").read_text())
    config["sphinx"]["config"]["html_js_files"] = ["instructor.js"]
    # the website's extra files (the redirect from the setup chapter's old address) point at its pages, which the
    # one-page edition does not have
    config["sphinx"]["config"].pop("html_extra_path", None)
    # solutions are dropdown admonitions, which sphinx-togglebutton folds; a selector that matches nothing leaves
    # every one open, printed as plain admonitions
    config["sphinx"]["config"]["togglebutton_selector"] = ".labclip-instructor-folds-nothing"
    config["title"] = f"{config['title']}: instructor edition"
    (edition / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(edition), "--path-output", str(edition), "--builder", "singlehtml", "-W", "-n",
           "--keep-going"]
    print("+", " ".join(cmd), flush=True)
    code = subprocess.run(cmd, cwd=ROOT).returncode
    if code != 0:
        return code
    shutil.rmtree(out / "instructor", ignore_errors=True)
    shutil.copytree(edition / "_build" / "singlehtml", out / "instructor")
    # Sphinx's single-page builder writes the root document (book/intro.html) with every path relative to the output
    # folder (_static/, _images/, searchindex.js), as if the page sat there: in book/ its CSS, JS and MathJax would
    # all 404. So the page becomes the edition's index.html (replacing the redirect to book/intro.html), where
    # those paths are right; its links to itself become in-page anchors, and links the site's pages write to the
    # teaching folder (../teaching/x from book/) are re-based for teaching/instructor/; links to the root page itself
    # (the top) have no anchor to go to. The single-page builder writes no search index but still loads one, and
    # leaves the sidebar's title "None".
    folder = out / "instructor"
    text = (folder / "book" / "intro.html").read_text().replace('href="book/intro.html#', 'href="#')
    text = text.replace('href="#document-book/intro"', 'href="#"')  # the root page is the top: it has no anchor
    text = text.replace('<script src="searchindex.js"></script>', "")
    text = text.replace('<p class="title logo__title">None</p>',
                        f'<p class="title logo__title">{escape(config["title"])}</p>')
    (folder / "index.html").write_text(text.replace('href="../teaching/', 'href="../'))
    shutil.rmtree(folder / "book")
    shutil.rmtree(edition, ignore_errors=True)
    print(f"teaching kit: {n} figures in {out / 'labclip-figures.zip'}, instructor edition in {out / 'instructor'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("sync", help="regenerate the output-free .ipynb twins in notebooks/")
    sub.add_parser("stage", help="copy sources to _stage/ with fresh .ipynb chapters")
    ex = sub.add_parser("execute", help="execute every staged notebook once")
    ex.add_argument("--dir", type=Path, default=STAGE / "notebooks", help="folder of .ipynb files to execute")
    ex.add_argument("--workers", type=int, default=2, help="notebooks executed in parallel")
    ex.add_argument("--report-dir", type=Path, default=REPORTS, help="where the JUnit reports go")
    sub.add_parser("build", help="build _build/html from the executed stage")
    sub.add_parser("teaching", help="the figure pack and the instructor edition, into _build/html/teaching")
    args = parser.parse_args(argv)
    if args.command == "sync":
        sync()
        return 0
    if args.command == "stage":
        stage()
        return 0
    if args.command == "execute":
        return execute(args.dir, args.workers, args.report_dir)
    if args.command == "teaching":
        return teaching_kit()
    return build()


if __name__ == "__main__":
    sys.exit(main())

"""The book's runner: stage the sources, execute every chapter exactly once, build the website.

    python tools/book.py sync       # notebooks/*.py -> their committed, output-free .ipynb twins
    python tools/book.py stage      # _config.yml, _toc.yml, book/ and notebooks/*.py -> _stage/ (fresh .ipynb)
    python tools/book.py execute    # run each staged notebook once (nbmake, 2 workers); outputs stay in _stage/
    python tools/book.py build      # jupyter-book build _stage -> _build/html with -W -n --keep-going

The site is built from the executed copies in ``_stage/`` (``execute_notebooks: "off"`` in _config.yml), so
nothing runs twice and the committed ``.ipynb`` twins stay output-free. Chapter 0 ("Setting up") runs after
the others so it can report how long they took.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
STAGE = ROOT / "_stage"
BUILD = ROOT / "_build"
REPORTS = BUILD / "reports"
#: Notebooks (by stem) that run after all the others, in this order.
RUN_LAST = ("00_setup",)
#: Shared artefacts built once, with every core, before the chapters run two at a time (each chapter then loads
#: them from the cache; run on its own, in Colab say, a chapter builds what it needs itself).
PREPARE = {"offline": "from labclip_utils.models import load_miniature; load_miniature(progress=False)"}
CELL_TIMEOUT_S = 1200


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


def sync(sources: list[Path] | None = None) -> list[Path]:
    """Regenerate the committed .ipynb twin of every chapter source (``make sync``)."""
    written = []
    for source in sources or sorted((ROOT / "notebooks").glob("[0-9]*.py")):
        target = source.with_suffix(".ipynb")
        jupytext.write(notebook_from_source(source), target, fmt="ipynb")
        written.append(target)
        print(f"wrote {target.relative_to(ROOT)}")
    return written


def stage() -> list[Path]:
    """Copy the book sources to ``_stage/`` and write each chapter as a fresh, output-free .ipynb."""
    if STAGE.exists():
        shutil.rmtree(STAGE)
    STAGE.mkdir()
    for name in ("_config.yml", "_toc.yml", "references.bib"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, STAGE / name)
    shutil.copytree(ROOT / "book", STAGE / "book")
    staged = []
    for doc in toc_notebooks():
        source = ROOT / f"{doc}.py"
        if not source.is_file():
            raise FileNotFoundError(f"_toc.yml names {doc!r} but {source.relative_to(ROOT)} does not exist")
        target = STAGE / f"{doc}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        jupytext.write(notebook_from_source(source), target, fmt="ipynb")
        staged.append(target)
    for doc in toc_files():
        if not doc.startswith("notebooks/") and not (STAGE / f"{doc}.md").exists():
            raise FileNotFoundError(f"_toc.yml names {doc!r} but book source {doc}.md does not exist")
    print(f"staged {len(staged)} notebooks and {len(toc_files()) - len(staged)} pages into {STAGE}")
    return staged


def _pytest_nbmake(notebooks: list[Path], workers: int, report: Path, env: dict[str, str]) -> int:
    cmd = [
        sys.executable, "-m", "pytest", "--nbmake", "--overwrite", f"--nbmake-timeout={CELL_TIMEOUT_S}",
        "-p", "no:cacheprovider", "-o", "addopts=", "-o", "testpaths=", f"--junitxml={report}", "-v",
    ]
    if workers > 1 and len(notebooks) > 1:
        cmd += ["-n", str(min(workers, len(notebooks)))]
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


def execute(directory: Path = STAGE / "notebooks", workers: int = 2, report_dir: Path = REPORTS) -> int:
    """Execute every notebook in ``directory`` once; return 0 only if all ran and passed."""
    notebooks = sorted(directory.glob("*.ipynb"))
    if not notebooks:
        print(f"no notebooks to execute in {directory}: refusing to pass without running anything")
        return 1
    report_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("LABCLIP_PROFILE", "offline")
    env.setdefault("TQDM_DISABLE", "1")  # progress bars help readers in Jupyter; on the website they are noise
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    # Figures that book pages (the landing page) show are written here by the chapters that draw them.
    env.setdefault("LABCLIP_FIGURES_DIR", str(directory.parent / "book" / "figures"))
    profile = env["LABCLIP_PROFILE"]
    if profile in PREPARE and directory == STAGE / "notebooks":
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
    first = [nb for nb in notebooks if nb.stem not in RUN_LAST]
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


def build() -> int:
    """Build the site from the executed stage into ``_build/html``; any warning fails."""
    if not (STAGE / "_toc.yml").exists():
        raise SystemExit("nothing staged: run `python tools/book.py stage` and `execute` first")
    check_executed([STAGE / f"{doc}.ipynb" for doc in toc_notebooks(STAGE / "_toc.yml")])
    # Stale doctrees break widget mimetypes (QuantEcon does the same); the build is fast anyway.
    shutil.rmtree(BUILD / ".doctrees", ignore_errors=True)
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(STAGE), "--path-output", str(ROOT), "--builder", "html", "-W", "-n", "--keep-going"]
    print("+", " ".join(cmd), flush=True)
    code = subprocess.run(cmd, cwd=ROOT).returncode
    if code == 0 and not (BUILD / "html" / "index.html").exists():
        print("jupyter-book reported success but _build/html/index.html is missing")
        return 1
    return code


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
    args = parser.parse_args(argv)
    if args.command == "sync":
        sync()
        return 0
    if args.command == "stage":
        stage()
        return 0
    if args.command == "execute":
        return execute(args.dir, args.workers, args.report_dir)
    return build()


if __name__ == "__main__":
    sys.exit(main())

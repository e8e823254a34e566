"""A browsable book of one run's executed notebooks, to read or publish without Jupyter.

``python -m madutils.book --scale small`` takes the executed notebooks of the newest ``./reproduce.sh`` run of that
scale (``runs/<scale>/notebooks/latest/``; ``--run`` names another folder), and builds them with Jupyter Book 1
(Sphinx with MyST-NB, the book theme: navigation, full-text search, every figure of the run) into
``runs/<scale>/book/html/index.html``. The notebooks are not executed again. MathJax 3 is served from the book
itself (the copy that the PyPI package ``sphinx-mathjax-offline`` carries), with its SVG output, which needs no web
fonts, so the equations render offline, also from ``file://``; nothing is fetched from a CDN, and no page logs
an error (Thebe, which needs a live server, is left out; the search lists matching pages by title, without the
snippets that it would have to fetch from the other pages). A run of some notebooks updates their pages and keeps
the others from the runs before (the intro names each page's run). The whole ``html`` folder can be put on any
static web server.
"""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
import sys
from pathlib import Path

from .paths import project_root, runs_dir
from .registry import NOTEBOOKS
from .utils import check_scale

MATHJAX = "mathjax/tex-svg.js"  # TeX input, SVG output: no web fonts to load


class BookError(RuntimeError):
    """The book cannot be built: the message says what is missing and what to do."""


def mathjax_folder() -> Path:
    """The MathJax 3 files of the ``sphinx-mathjax-offline`` package (a dependency of the notebooks extra)."""
    import importlib.util

    spec = importlib.util.find_spec("sphinx-mathjax-offline")  # the package's module name has dashes
    if spec is None or spec.origin is None:
        raise BookError(
            "the book serves MathJax itself, from the package sphinx-mathjax-offline: pip install "
            "sphinx-mathjax-offline (it comes with the project's notebooks extra)"
        )
    folder = Path(spec.origin).parent / "static" / "mathjax"
    if not (folder / "tex-svg.js").is_file():
        raise BookError(f"{folder} holds no tex-svg.js; reinstall sphinx-mathjax-offline")
    return folder


def executed_notebooks(run: Path) -> list[Path]:
    """The executed notebooks of a run folder, in the order of the collection."""
    if not run.is_dir():
        raise BookError(
            f"no executed notebooks at {run}: run ./reproduce.sh first (it writes runs/<scale>/notebooks/<run>/), "
            "or pass --run <folder of executed notebooks>"
        )
    found = [run / nb.file for nb in NOTEBOOKS.values() if (run / nb.file).is_file()]
    if not found:
        raise BookError(f"{run} holds none of the notebooks ({', '.join(nb.file for nb in NOTEBOOKS.values())})")
    return found


def _intro(scale: str, pages: list[Path], runs: dict[str, str]) -> str:
    readme = (project_root() / "README.md").read_text().split("\n## ")[0]
    lines = [
        readme.split("\n![")[0].strip(),
        "",
        f"This book holds the executed notebooks of the `{scale}` scale, each from the newest run that executed it:",
        "",
    ]
    lines += [f"* [{p.stem}]({p.name}) (run `{runs.get(p.name, 'unknown')}`)" for p in pages]
    lines += [
        "",
        "The search finds pages by their words and lists their titles; it shows no snippets of text, since a book "
        "opened from its files cannot read its other pages (on a web server it could).",
    ]
    return "\n".join(lines) + "\n"


def build(scale: str, run: Path | None = None, out: Path | None = None) -> Path:
    """Build the book of the executed notebooks in ``run`` (default: the newest run of ``scale``) into ``out``
    (default ``runs/<scale>/book``), keeping the pages of notebooks that ``run`` did not execute from earlier
    builds; returns the path of its ``index.html``."""
    run = Path(run) if run is not None else runs_dir(scale) / "notebooks" / "latest"
    out = Path(out) if out is not None else runs_dir(scale) / "book"
    notebooks = executed_notebooks(run)
    # The pages of notebooks that this run did not execute stay from the runs that did (./reproduce.sh --only 05
    # updates notebook 05's page and keeps the others); pages.json says which run each page comes from.
    src = out / "src"
    src.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(src / "_local_static", ignore_errors=True)
    # not in _static, whose every .js Jupyter Book would add to every page: Sphinx copies it into the book's _static
    shutil.copytree(mathjax_folder(), src / "_local_static" / "mathjax")
    try:
        runs = json.loads((src / "pages.json").read_text())
    except (OSError, ValueError):
        runs = {}
    for path in notebooks:
        nb = json.loads(path.read_text())
        # the saved state of widgets (progress bars, sliders) would make every page fetch the widget manager from a
        # CDN; a static page cannot run them anyway, and their text form stays
        nb.get("metadata", {}).pop("widgets", None)
        (src / path.name).write_text(json.dumps(nb, indent=1, ensure_ascii=False))
        runs[path.name] = run.resolve().name
    (src / "pages.json").write_text(json.dumps(runs, indent=1))
    pages = [src / nb.file for nb in NOTEBOOKS.values() if (src / nb.file).is_file()]
    (src / "intro.md").write_text(_intro(scale, pages, runs))
    toc = {"format": "jb-book", "root": "intro", "chapters": [{"file": p.stem} for p in pages]}
    (src / "_toc.yml").write_text(json.dumps(toc, indent=1))  # JSON is YAML
    from jupyter_book.config import get_default_sphinx_config

    # Thebe (live code through a Binder server) cannot run in a static offline book, and its extension declared its
    # script twice on every page (a console error); comments need a web service too
    extensions = [e for e in get_default_sphinx_config()["extensions"] if e not in ("sphinx_thebe", "sphinx_comments")]
    config = {
        "title": f"MAD notebooks ({scale} scale)",
        "author": "the MAD notebooks authors",
        "copyright": f"{datetime.date.today().year}, the MAD notebooks authors (MIT licence)",
        "execute": {"execute_notebooks": "off"},
        "only_build_toc_files": True,
        "sphinx": {
            "config": {
                "extensions": extensions,
                "html_static_path": ["_local_static"],
                "mathjax_path": MATHJAX,
                # one search field (the header's); the sidebar keeps the navigation
                "html_sidebars": {"**": ["navbar-logo.html", "sbt-sidebar-nav.html"]},
                # no snippets: a page read from file:// cannot fetch the other pages that snippets are cut from
                "html_show_search_summary": False,
                "html_context": {"default_mode": "light"},
                "html_theme_options": {"use_download_button": False, "use_repository_button": False},
            }
        },
    }
    (src / "_config.yml").write_text(json.dumps(config, indent=1))
    html = out / "html"
    shutil.rmtree(html, ignore_errors=True)
    # jupyter-book's command line, in a process of this interpreter (the package has no __main__)
    command = "import sys; from jupyter_book.cli.main import main; sys.exit(main())"
    done = subprocess.run(
        [sys.executable, "-c", command, "build", str(src), "--path-output", str(out)],
        capture_output=True,
        text=True,
    )
    built = out / "_build" / "html"
    if done.returncode != 0 or not (built / "index.html").is_file():
        raise BookError(
            f"jupyter-book could not build the book from {src}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    shutil.move(str(built), html)
    shutil.rmtree(out / "_build", ignore_errors=True)
    return html / "index.html"


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m madutils.book", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="small", type=check_scale)
    parser.add_argument("--run", type=Path, help="a folder of executed notebooks (default: the newest run)")
    parser.add_argument("--out", type=Path, help="where to build (default: runs/<scale>/book)")
    args = parser.parse_args(argv)
    try:
        index = build(args.scale, args.run, args.out)
    except BookError as exc:
        raise SystemExit(f"error: {exc}") from None
    print(f"the book: {index}")


if __name__ == "__main__":
    main()

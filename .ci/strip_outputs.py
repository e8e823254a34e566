"""The git filter that keeps notebook outputs out of commits (named in .gitattributes, set up by .ci/env.sh).

Reads a notebook on standard input (or from the path given, for `git diff`), writes it back without what running and
saving it adds: outputs, execution counts, the kernel's language_info, and the per-cell view and timing metadata
that JupyterLab records. Cell ids, tags and everything written by hand stay. The notebook is written as Jupyter
writes it (sorted keys, one-space indent, a final newline), so that a notebook run and saved without edits is
byte for byte the committed one and `git status` stays clean.

It needs nothing but Python's standard library, and git runs it by a path relative to the repository, so it works
whichever environment is active and wherever the project's .venv is.
"""

import json
import sys

NOTEBOOK_KEYS = ("language_info", "widgets", "signature")
CELL_KEYS = ("collapsed", "scrolled", "ExecuteTime", "execution", "heading_collapsed", "hidden")


def strip(notebook: dict) -> dict:
    for key in NOTEBOOK_KEYS:
        notebook.get("metadata", {}).pop(key, None)
    for cell in notebook.get("cells", []):
        for key in CELL_KEYS:
            cell.get("metadata", {}).pop(key, None)
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    return notebook


def main(argv: list[str]) -> int:
    text = open(argv[0], encoding="utf-8").read() if argv else sys.stdin.buffer.read().decode("utf-8")
    try:
        notebook = json.loads(text)
    except ValueError:  # not JSON (a conflict, a half-written file): passed through unchanged
        sys.stdout.buffer.write(text.encode("utf-8"))
        return 0
    out = json.dumps(strip(notebook), sort_keys=True, indent=1, ensure_ascii=False) + "\n"
    sys.stdout.buffer.write(out.encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The house rules of STYLE.md for committed notebooks (their execution is checked by nbval at smoke scale)."""

import json
from pathlib import Path

import pytest

from madutils.registry import NOTEBOOKS as REGISTERED

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_there_are_notebooks_and_each_is_registered():
    assert NOTEBOOKS
    assert sorted(p.name for p in NOTEBOOKS) == sorted(nb.file for nb in REGISTERED.values())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_skeleton(path):
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert not any(c.get("outputs") for c in code), "committed with outputs"
    assert not any(c.get("execution_count") for c in code), "committed with execution counts"
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "needs exactly one cell tagged 'parameters'"
    src = "".join(params[0]["source"])
    assert 'scale: str = os.environ.get("MAD_SCALE", "small")' in src
    # every parameter is typed, so that papermill --help-notebook shows its type
    for line in src.splitlines():
        if "=" in line and not line.startswith(("#", "import")):
            assert ":" in line.split("=")[0], f"untyped parameter: {line}"
    assert cells[0]["cell_type"] == "markdown" and cells[0]["source"][0].startswith("# ")
    everything = "\n".join("".join(c["source"]) for c in cells)
    if REGISTERED[path.name[:2]].paper:  # a section of the paper: the whole skeleton of STYLE.md
        assert "record_claims(" in everything, "needs a claims cell"
        for heading in ("## Method", "## Summary", "## Exercises", "## Differences from the paper"):
            assert heading in everything, f"needs a {heading!r} section"
        assert "$$" in everything, "the Method section typesets its equations"
        assert "ctx.footer()" in everything
    for bad in ("!pip", "/root/", "/home/", "/work/", '"cuda"'):
        assert bad not in everything, f"{bad!r} in a committed notebook"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    # nothing after the parameters cell reassigns a parameter
    names = [
        line.split("=")[0].split(":")[0].strip()
        for line in src.splitlines()
        if "=" in line and not line.startswith("#")
    ]
    later = "\n".join("".join(c["source"]) for c in code[code.index(params[0]) + 1 :])
    for name in names:
        assert f"\n{name} = " not in "\n" + later, f"parameter {name} is overridden after the parameters cell"


@pytest.mark.slow
def test_a_notebook_run_by_hand_keeps_its_figures_inline_and_leaves_the_committed_ones_alone(project, tmp_path):
    """Papermill on notebook 01 at smoke scale, as a person or ./reproduce.sh runs it (no MPLBACKEND): the executed
    notebook holds every figure, its HTML export shows them, and a run by hand (no MAD_PUBLISH) writes its figures
    under runs/<scale>/by-hand/, never into figures/."""
    import os
    import subprocess
    import sys

    root = Path(__file__).parent.parent
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "MAD_PUBLISH")}
    env |= {"MAD_ROOT": str(project), "MAD_DATA": os.environ.get("MAD_DATA") or str(root / "data")}
    out = tmp_path / "01.ipynb"
    subprocess.run(
        [sys.executable, "-m", "papermill", str(root / "notebooks" / "01_gaussian_martingale.ipynb"), str(out)]
        + ["-p", "scale", "smoke", "--cwd", str(root / "notebooks"), "--no-progress-bar"],
        env=env,
        check=True,
        capture_output=True,
        timeout=900,
    )
    cells = json.loads(out.read_text())["cells"]
    images = [o for c in cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # nb01_trace_collapse, nb01_mean_random_walk, nb01_samples_2d
    hand = project / "runs" / "smoke" / "by-hand"
    assert {p.name for p in hand.glob("*.png")} >= {"nb01_trace_collapse.png", "nb01_samples_2d.png"}
    assert (hand / "claims" / "01.csv").is_file()
    assert not (project / "figures").exists() and not (project / "runs" / "smoke" / "meta").exists()
    subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", str(out)], check=True, capture_output=True
    )
    assert out.with_suffix(".html").read_text().count("data:image/png") >= 3

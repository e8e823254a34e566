"""The house rules of STYLE.md for committed notebooks (their execution is checked by nbval at smoke scale)."""

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS


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
    assert 'scale = os.environ.get("MAD_SCALE", "small")' in src
    assert cells[0]["cell_type"] == "markdown" and cells[0]["source"][0].startswith("# ")
    everything = "\n".join("".join(c["source"]) for c in cells)
    assert "record_claims(" in everything, "needs a claims cell"
    assert "## Differences from the paper" in everything
    assert "ctx.footer()" in everything
    for bad in ("!pip", "/root/", "/home/", "/work/", '"cuda"'):
        assert bad not in everything, f"{bad!r} in a committed notebook"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    # nothing after the parameters cell reassigns a parameter
    names = [line.split("=")[0].strip() for line in src.splitlines() if "=" in line and not line.startswith("#")]
    later = "\n".join("".join(c["source"]) for c in code[code.index(params[0]) + 1 :])
    for name in names:
        assert f"\n{name} = " not in "\n" + later, f"parameter {name} is overridden after the parameters cell"

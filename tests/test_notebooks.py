"""The house rules for committed notebooks (docs/design.md) (their execution is checked by nbval at smoke scale)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from madutils.registry import NOTEBOOKS as REGISTERED

ROOT = Path(__file__).parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
STRIP = ROOT / ".ci" / "strip_outputs.py"


def committed(path: Path) -> str:
    """A notebook as it is committed (git's index: the last commit and what is staged, through the filter), not as
    a student's JupyterLab last saved it; the working tree's copy outside a git checkout or before it is added."""
    rel = path.relative_to(ROOT).as_posix()
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "show", f":{rel}"], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return path.read_text(encoding="utf-8")
    return out.stdout.decode("utf-8")


def saved_by_jupyter(text: str) -> str:
    """A notebook after a run and a save in JupyterLab: outputs, execution counts, the kernel's language_info,
    per-cell timing and view metadata, written as nbformat writes files."""
    import nbformat

    nb = nbformat.reads(text, as_version=nbformat.NO_CONVERT)
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.7", "mimetype": "text/x-python"}
    for i, cell in enumerate(nb.cells, 1):
        if cell.cell_type == "code":
            cell.execution_count = i
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"cell {i}\n")]
            cell.metadata["execution"] = {"iopub.execute_input": "2026-12-08T01:00:00.000Z"}
            cell.metadata["scrolled"] = True
    return nbformat.writes(nb) + "\n"


def strip(text: str) -> str:
    out = subprocess.run([sys.executable, str(STRIP)], input=text.encode(), capture_output=True, check=True)
    return out.stdout.decode()


def test_there_are_notebooks_and_each_is_registered():
    assert NOTEBOOKS
    assert sorted(p.name for p in NOTEBOOKS) == sorted(nb.file for nb in REGISTERED.values())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_skeleton(path):
    text = committed(path)
    assert strip(text) == text, "committed with outputs or run metadata (stage it again: the filter strips them)"
    nb = json.loads(text)
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
    if REGISTERED[path.name[:2]].paper:  # a section of the paper: the whole skeleton of a notebook
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


PARAMETERS = """import os

scale: str = os.environ.get("MAD_SCALE", "small")  # smoke, small or paper
seed: int = 0  # base seed
lams: list[float] = None  # sampling biases
generations: int = None  # generations
"""


def test_parameters_from_the_command_line_are_checked_and_coerced_by_name():
    from madutils.notebook import ParameterError, check_parameters

    def kernel(injected: str) -> dict:
        ns = {"scale": "smoke", "seed": 0, "lams": None, "generations": None}
        exec(injected.split("\n", 1)[1], {}, ns)  # what papermill's injected cell sets
        return ns | {"In": ["", PARAMETERS, injected]}

    ns = kernel('# Parameters\nlams = "[1.0, 0.7]"\ngenerations = "4"\n')  # the README's `-p lams "[1.0, 0.7]"`
    assert check_parameters(ns) == {"scale": "smoke", "seed": 0, "lams": [1.0, 0.7], "generations": 4}
    assert ns["lams"] == [1.0, 0.7] and ns["generations"] == 4
    assert check_parameters(kernel("# Parameters\nlams = 0.5\n"))["lams"] == [0.5]
    for injected, match in [
        ('# Parameters\nlams = "[1.5]"\n', r"parameter lams = 1.5 is not a valid sampling bias"),
        ("# Parameters\nlams = []\n", r"parameter lams is an empty list"),
        ('# Parameters\nlams = "[1.0, 0.7"\n', r"parameter lams = '\[1.0, 0.7' is not a list; pass it as -p lams"),
        ("# Parameters\nlamz = 0.5\n", r"unknown parameter lamz: this notebook's parameters are scale, seed, lams"),
        ('# Parameters\ngenerations = "many"\n', r"parameter generations = 'many' is not a number"),
        ("# Parameters\ngenerations = 2.5\n", r"parameter generations = 2.5 must be a whole number"),
    ]:
        with pytest.raises(ParameterError, match=match):
            check_parameters(kernel(injected))
    assert check_parameters({"x": 1}) == {}  # no parameters cell ran: nothing to check


@pytest.mark.slow
def test_an_unknown_papermill_parameter_stops_the_notebook_before_any_work(project, tmp_path):
    import os
    import subprocess
    import sys

    root = Path(__file__).parent.parent
    env = {k: v for k, v in os.environ.items() if k != "MAD_PUBLISH"}
    env |= {"MAD_ROOT": str(project), "MAD_DATA": os.environ.get("MAD_DATA") or str(root / "data")}
    out = subprocess.run(
        [sys.executable, "-m", "papermill", str(root / "notebooks" / "02_fully_synthetic.ipynb"), str(tmp_path / "o")]
        + ["-p", "scale", "smoke", "-p", "lamz", "0.5", "--cwd", str(root / "notebooks"), "--no-progress-bar"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode != 0 and "unknown parameter lamz" in out.stderr
    assert not (project / "runs").exists()  # nothing was computed or stored


def _small_row(notebook: str) -> str:
    import json

    nb = json.loads((Path(__file__).parent.parent / "notebooks" / f"{notebook}.ipynb").read_text())
    intro = "".join(nb["cells"][0]["source"])
    return next(line for line in intro.splitlines() if line.startswith("| `small`"))


def test_the_sizes_each_notebook_quotes_are_those_of_its_scale():
    """The `small` row of each notebook's table of scales quotes its sizes; they come from madutils/scales.py, so
    a change of the sizes that leaves a notebook's text behind fails here."""
    from madutils.scales import (
        DDPMSizes,
        FlowSizes,
        FreshGaussianSizes,
        GaussianMartingaleSizes,
        GMMSizes,
        StyleGANSizes,
        WGANSizes,
        sizes,
    )

    def lams(values) -> str:
        return "{" + ", ".join(f"{v:g}" for v in values) + "}"

    m, d = sizes(GaussianMartingaleSizes, "small"), sizes(DDPMSizes, "small")
    fr, g, w = sizes(FreshGaussianSizes, "small"), sizes(GMMSizes, "small"), sizes(WGANSizes, "small")
    fl, sg = sizes(FlowSizes, "small"), sizes(StyleGANSizes, "small")
    quoted = {
        "01_gaussian_martingale": [
            f"{m.trials:,} trials × {m.generations:,} generations × {len(m.lams) * len(m.n_ss)} settings"
        ],
        "02_fully_synthetic": [
            f"λ ∈ {lams(d.lams)}",
            f"{d.generations} generations of {d.n:,} images",
            f"{d.seeds} seeds",
        ],
        "03_synthetic_augmentation": [
            f"λ ∈ {lams(d.lams)}",
            f"{d.aug_generations} generations, {d.n:,} real + {d.n:,} synthetic images, {d.seeds} seeds",
        ],
        "04_fresh_data": [
            f"d = {fr.start.d} for Fig. 10; d = {fr.grid.d} for the grids ({len(fr.grid.n_rs)} n_r × "
            f"{len(fr.grid.ratios) + 1} n_s × {len(fr.grid.lams)} λ, {fr.grid.trials} trials)",
            f"n_r = n_s = {d.fresh_n}, {len(d.fresh_inis)} n_ini, {d.fresh_generations} generations, {d.seeds} seeds",
            f"two controls, {d.control_seeds} seeds × {d.control_generations} generations",
        ],
        "05_appendix_fully_synthetic": [
            f"GMM: {g.seeds} seeds × {g.iterations:,} iterations",
            f"WGAN-GP: {w.seeds} seeds × {w.generations} generations",
            f"flow: {fl.seeds} seeds × {fl.generations} generations × {len(fl.lams)} λ",
        ],
        "06_stylegan_ffhq": [f"{sg.n:,} images, {sg.seeds} seeds", f"{max(sg.generations.values())} generations each"],
    }
    for notebook, parts in quoted.items():
        row = _small_row(notebook)
        for part in parts:
            assert part in row, f"notebooks/{notebook}.ipynb quotes '{row[:160]}...', the sizes say '{part}'"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_notebook_run_and_saved_in_jupyter_is_the_committed_one_through_the_filter(path):
    text = committed(path)
    assert strip(saved_by_jupyter(text)) == text


def test_the_filter_keeps_outputs_out_of_a_fresh_clone_and_survives_a_moved_environment(tmp_path):
    """What ./test.sh and ./reproduce.sh set up (.ci/env.sh) works in a fresh repository: a notebook saved with
    outputs has no diff and is staged without them (ids and tags kept), after which `git status` is clean; the
    commands name no environment, so git keeps working when .venv is moved or deleted."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "clone"
    (repo / ".ci").mkdir(parents=True)
    for name in (".ci/env.sh", ".ci/strip_outputs.py", ".gitattributes"):
        shutil.copy(ROOT / name, repo / name)
    (repo / "notebooks").mkdir()
    nb = repo / "notebooks" / NOTEBOOKS[0].name
    nb.write_text(committed(NOTEBOOKS[0]), encoding="utf-8")

    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)

    git("init", "-q")
    setup = subprocess.run(["bash", "-c", f". .ci/env.sh && mad_strip_outputs {repo}"], cwd=repo, capture_output=True)
    assert b"notebooks are committed without their outputs" in setup.stderr
    # no environment is named, so moving or deleting .venv cannot break git
    assert git("config", "filter.strip-outputs.clean").stdout.strip() == "python3 .ci/strip_outputs.py"
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "notebooks")
    nb.write_text(saved_by_jupyter(nb.read_text(encoding="utf-8")), encoding="utf-8")  # a student's run and save
    # git lists a file whose size changed until it is added again, but it differs in nothing that would be committed
    assert git("diff", "--exit-code").returncode == 0
    git("add", str(nb))
    staged = git("show", f":notebooks/{nb.name}").stdout
    assert staged == committed(NOTEBOOKS[0]) and '"outputs": []' in staged
    status = git("status", "--porcelain")
    assert status.returncode == 0 and status.stdout == ""
    cells = json.loads(staged)["cells"]
    assert [c["id"] for c in cells] == [c["id"] for c in json.loads(committed(NOTEBOOKS[0]))["cells"]]
    assert any("parameters" in c["metadata"].get("tags", []) for c in cells)


def test_a_cell_run_before_the_parameters_cell_says_which_cells_to_run_first(capsys):
    from IPython.core.interactiveshell import InteractiveShell

    from madutils import notebook

    shell = InteractiveShell.instance()
    try:
        notebook._install_run_in_order_hint()
        shell.run_cell("from madutils.notebook import setup_notebook\nctx = setup_notebook('01', scale, seed)")
    finally:
        shell.set_custom_exc((), None)
        InteractiveShell.clear_instance()
    out = capsys.readouterr()
    text = out.out + out.err
    assert "NameError" in text and "'scale' is defined by a cell above this one that has not run" in text
    assert "the parameters cell, the first code cell" in text


def test_claims_tables_typeset_their_subscripts():
    from madutils.claims.core import math_markdown

    text = "E[Σ_t | Σ_{t-1}] = λ Σ_{t-1}, steps λ tr Σ_{t-1}/n_s; hf_share and n_ini stay words"
    assert math_markdown(text) == (
        "E[$Σ_t$ | $Σ_{t-1}$] = λ $Σ_{t-1}$, steps λ tr $Σ_{t-1}$/$n_s$; hf_share and n_ini stay words"
    )

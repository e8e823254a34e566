"""Code is part of a run's identity (docs/design.md, "The store and its keys").

A family, source or hook defined outside the package keys on its code; the package's own carry a CODE_VERSION that
this test ties to the syntax tree of the modules their results depend on. When a module below changes (its code,
not its comments or formatting) this test fails: if the change can alter results, raise the CODE_VERSION of the
classes named (their stored runs are then recomputed under new keys), and either way record the new digest here.
"""

import importlib
import json
import sys
import textwrap
from pathlib import Path

import pytest

from madutils.loops import describe
from madutils.utils import source_digest

PACKAGE = Path(__file__).parent.parent / "madutils"

# module -> (digest of its syntax tree without docstrings, the classes whose results depend on it)
MODULES = {
    "models/base.py": (
        "74c599b0a75ca594",
        (
            "models.ddpm.DDPMFamily",
            "models.stylegan.StyleGANFamily",
            "models.wgan.WGANFamily",
            "models.flow.FlowFamily",
        ),
    ),
    "models/ddpm.py": ("2675955114781e41", ("models.ddpm.DDPMFamily",)),
    "models/stylegan.py": ("000e617ae76d9712", ("models.stylegan.StyleGANFamily",)),
    "models/wgan.py": ("12437a19df772f5e", ("models.wgan.WGANFamily",)),
    "models/flow.py": ("9c34c8d6fa9e4959", ("models.flow.FlowFamily",)),
    "models/gmm.py": ("0878ec6c4637d608", ("models.gmm.GMMFamily",)),
    "models/gaussian.py": ("8ab4acceafa9c2bd", ("models.gaussian.GaussianFamily",)),
    "gaussian.py": ("0b69693cb9447cc7", ("models.gaussian.GaussianFamily", "data.GaussianSource")),
    "data.py": (
        "348c900324f63fcc",
        ("data.MnistSource", "data.MnistImages", "data.FFHQSource", "data.GridSource", "data.RosenbrockSource"),
    ),
    "metrics/hook.py": ("91d01a8e5dbb140d", ("metrics.hook.ImageMetrics",)),
    "metrics/prd.py": (
        "53d4e40eded20ed1",
        ("metrics.hook.ImageMetrics", "metrics.toy.ModeMetrics", "metrics.toy.TailMetrics"),
    ),
    "metrics/fid.py": ("4ae2c663b021d6b9", ("metrics.hook.ImageMetrics",)),
    "metrics/features.py": ("656ddbe36a80eed9", ("metrics.hook.ImageMetrics",)),
    "metrics/spectrum.py": ("8f33f23f8ea7e4cb", ("metrics.hook.ImageMetrics",)),
    "metrics/toy.py": ("11579fecbc3272a4", ("metrics.toy.ModeMetrics", "metrics.toy.TailMetrics")),
    "controls.py": ("62ac72ae225c1881", ("controls.RealOutput", "controls.ModelSamples")),
}

# class -> its CODE_VERSION (1: the version every class had when versions were introduced; not written into keys)
VERSIONS = {name: 1 for _, names in MODULES.values() for name in names}


def _class(name: str):
    module, cls = name.rsplit(".", 1)
    return getattr(importlib.import_module(f"madutils.{module}"), cls)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_the_code_of_every_family_source_and_hook_is_tied_to_its_version(module):
    digest, classes = MODULES[module]
    now = source_digest((PACKAGE / module).read_text())
    assert now == digest, (
        f"madutils/{module} changed (its syntax tree, not only comments or formatting). If the change can alter "
        f"results, raise CODE_VERSION of {', '.join(classes)} (their stored runs are recomputed under new keys) "
        f"and record it in VERSIONS; either way record the new digest {now!r} for {module!r} in MODULES "
        "(tests/test_code_versions.py)"
    )
    for name in classes:
        assert getattr(_class(name), "CODE_VERSION", 1) == VERSIONS[name], f"record CODE_VERSION of {name} in VERSIONS"


def test_a_version_above_1_enters_the_key_and_1_keeps_the_stored_keys(monkeypatch):
    from madutils.models.ddpm import DDPMFamily

    before = describe(DDPMFamily())
    assert "__version__" not in before
    monkeypatch.setattr(DDPMFamily, "CODE_VERSION", 2, raising=False)
    assert describe(DDPMFamily()) == before | {"__version__": 2}


KDE = """
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class KDEFamily:
    bandwidth: float = 0.05  # kernel standard deviation h
    name: str = "kde"

    def fit(self, data, seed):
        return {"points": np.asarray(data, dtype=float), "h": self.bandwidth}

    def sample(self, model, n, lam, seed):
        rng = np.random.default_rng(seed)
        pick = model["points"][rng.integers(0, len(model["points"]), size=n)]
        return pick + np.sqrt(lam) * model["h"] * rng.standard_normal(pick.shape)
"""


def _described(tmp_path, source, name):
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    sys.path.insert(0, str(tmp_path))
    try:
        return describe(importlib.import_module(name).KDEFamily())
    finally:
        sys.path.remove(str(tmp_path))


def test_a_family_edited_outside_the_package_gets_a_new_key(tmp_path):
    """Notebook 07's exercise: KDEFamily.sample with five times the kernel noise must not reuse the old runs; a
    comment or a reformatting changes nothing."""
    original = _described(tmp_path, KDE, "kde_a")
    edited = _described(tmp_path, KDE.replace("np.sqrt(lam) * model", "5 * np.sqrt(lam) * model"), "kde_b")
    comment = _described(tmp_path, KDE.replace("        rng = np", "        # draw\n        rng = np"), "kde_c")
    spaced = _described(tmp_path, KDE.replace("size=n)]", "size = n) ]"), "kde_d")
    assert original["__code__"] != edited["__code__"]
    assert original == comment == spaced
    assert {k: v for k, v in original.items() if k != "__code__"} == {
        "__class__": "KDEFamily",
        "bandwidth": 0.05,
        "name": "kde",
    }


def test_a_class_typed_into_a_kernel_keys_on_its_methods():
    """A class defined in a notebook cell: Python cannot find its source as a whole, its methods' sources (or their
    compiled code) still identify it."""
    from madutils.utils import code_digest

    namespace: dict = {}
    exec(compile(KDE, "<cell>", "exec"), namespace)
    first = code_digest(namespace["KDEFamily"])
    exec(compile(KDE.replace("np.sqrt(lam) * model", "5 * np.sqrt(lam) * model"), "<cell>", "exec"), namespace)
    assert code_digest(namespace["KDEFamily"]) != first


def test_the_families_keep_the_keys_of_the_stored_runs():
    """The run keys of the PyTorch families at every scale, as the stored runs have them (tests/family_keys.json):
    a refactoring of the families (the TorchFamily base, fields left out of the key declared on the field) must
    not move a stored run."""
    import json
    from dataclasses import replace

    from madutils.models.stylegan import StyleGANFamily
    from madutils.scales import DDPMSizes, FlowSizes, StyleGANSizes, WGANSizes, sizes

    now = {}
    for scale in ("smoke", "small", "paper"):
        d = sizes(DDPMSizes, scale)
        now[f"ddpm-{scale}"] = describe(d.family)
        now[f"ddpm-effort-{scale}"] = describe(replace(d.family, effort_images=d.n))
        now[f"stylegan-{scale}"] = describe(sizes(StyleGANSizes, scale).family)
        now[f"wgan-{scale}"] = describe(sizes(WGANSizes, scale).family)
        now[f"flow-{scale}"] = describe(sizes(FlowSizes, scale).family)
    now["stylegan-bf16"] = describe(StyleGANFamily(precision="bf16"))
    recorded = json.loads((Path(__file__).parent / "family_keys.json").read_text())
    assert json.loads(json.dumps(now)) == recorded


CELLS = {
    "imports": "import numpy as np\nfrom dataclasses import dataclass\n",
    "constant": "WIDEN = 1.0\n",
    "helper": "def kernel_width(h):\n    return WIDEN * h\n",
    "family": """
@dataclass(frozen=True)
class KDEFamily:
    bandwidth: float = 0.05
    name: str = "kde"

    def fit(self, data, seed):
        return {"points": np.asarray(data, dtype=float), "h": kernel_width(self.bandwidth)}

    def sample(self, model, n, lam, seed):
        rng = np.random.default_rng(seed)
        pick = model["points"][rng.integers(0, len(model["points"]), size=n)]
        return pick + np.sqrt(lam) * model["h"] * rng.standard_normal(pick.shape)
""",
}


def _notebook(**edits) -> dict:
    """The cells above run in order in one namespace, as a notebook's kernel runs them (each cell its own source)."""
    namespace: dict = {"__name__": "__main__"}
    for i, (name, source) in enumerate(CELLS.items()):
        exec(compile(edits.get(name, source), f"<cell {i}>", "exec"), namespace)
    return describe(namespace["KDEFamily"]())


def test_a_notebook_familys_key_covers_the_helpers_and_constants_its_methods_read():
    """Notebook 07's exercise invites helpers: an edit of a helper function in another cell, of a module constant a
    helper reads, or of a method gives a new key; reverting an edit gives the first key back; an unrelated cell
    changes nothing."""
    first = _notebook()
    helper = _notebook(helper="def kernel_width(h):\n    return 2 * WIDEN * h\n")
    constant = _notebook(constant="WIDEN = 4.0\n")
    method = _notebook(family=CELLS["family"].replace("np.sqrt(lam) *", "2 * np.sqrt(lam) *"))
    keys = [first, helper, constant, method]
    assert len({json.dumps(k, sort_keys=True) for k in keys}) == 4
    assert _notebook() == first
    assert _notebook(imports=CELLS["imports"] + "UNRELATED = 3\n") == first
    assert "__reaches__" in first


def test_a_family_that_reads_only_libraries_keeps_the_key_it_had():
    """A family whose methods read nothing of its notebook but modules (notebook 07's KDE) keeps its stored key."""
    namespace: dict = {"__name__": "__main__"}
    exec(compile(KDE, "<cell>", "exec"), namespace)
    assert "__reaches__" not in describe(namespace["KDEFamily"]())


def test_an_edited_helper_is_recomputed_and_the_reverted_one_is_read_back(tmp_path):
    from madutils.data import GridSource
    from madutils.loops import LoopConfig, run_loop
    from madutils.store import Store

    def family(**edits):
        namespace: dict = {"__name__": "__main__"}
        for i, (name, source) in enumerate(CELLS.items()):
            exec(compile(edits.get(name, source), f"<cell {i}>", "exec"), namespace)
        return namespace["KDEFamily"]()

    store, cfg = Store(tmp_path), LoopConfig(generations=2, n_ini=50, n_s=50)

    def run(**edits):
        return run_loop(family(**edits), cfg, GridSource(), store=store, progress=False).run.path

    first = run()
    wider = run(constant="WIDEN = 4.0\n")
    assert wider != first and len(list(tmp_path.glob("loop/*/gen-002"))) == 2
    assert run() == first and len(list(tmp_path.glob("loop/*/gen-002"))) == 2


def test_state_a_family_writes_to_does_not_change_its_key():
    """A list that fit appends to (a log, a counter) is state, not code: its growing contents keep the key."""
    namespace: dict = {"__name__": "__main__"}
    source = CELLS["family"].replace(
        "    def fit(self, data, seed):\n", "    def fit(self, data, seed):\n        LOG.append(len(data))\n"
    )
    for i, cell in enumerate([CELLS["imports"], CELLS["constant"], CELLS["helper"], "LOG = []\n", source]):
        exec(compile(cell, f"<cell {i}>", "exec"), namespace)
    before = describe(namespace["KDEFamily"]())
    namespace["LOG"].extend([1, 2, 3])
    assert describe(namespace["KDEFamily"]()) == before

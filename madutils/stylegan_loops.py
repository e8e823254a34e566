"""The StyleGAN2 loops of §3.2–4.1 (claim C12), shared by notebooks 02, 03 and 06.

Three loops start from the same generation 1 (trained once, see ``run_loop(share_first=True)``): the fully
synthetic loop at λ = 1 (Fig. 1, 4, App. C) and at λ = 0.7 (Fig. 6, App. D), and the synthetic augmentation loop
with the fixed real set and a pool of all earlier synthetic samples, n_s^t = (t − 1)·n (Fig. 8, App. F). Each
notebook asks for the loops it draws; a loop already in the store is read, not trained again, so notebook 06
finds the runs of 02 and 03.

Data and metrics by scale: ``paper`` uses FFHQ at 128 × 128 with Inception features
(:func:`madutils.metrics.ffhq_metrics`); ``small`` and ``smoke`` use MNIST zero-padded to 32 × 32 with LeNet
features against the MNIST test set, the only image data reachable offline.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from .loops import LoopConfig, LoopRun, family_key, run_loop
from .scales import sizes

EXPERIMENT = "stylegan"
LOOPS = {
    "fully synthetic": ("none", False),
    "augmentation": ("fixed", True),
}


@dataclass
class StyleGANLoops:
    """The family, real source, metric hook and loop configurations of one scale. ``ctx`` is the notebook context
    (:func:`madutils.notebook.setup_notebook`)."""

    ctx: object
    sizes: dict = field(init=False)

    def __post_init__(self) -> None:
        from .models.stylegan import StyleGANFamily

        self.sizes = dict(sizes("stylegan", self.ctx.scale))
        sz = self.sizes
        self.family = StyleGANFamily(**sz["family"], device=self.ctx.device)
        if sz["data"] == "ffhq":
            from .data import FFHQSource
            from .metrics import ffhq_metrics

            self.source = FFHQSource(resolution=sz["resolution"])
            self.hook = ffhq_metrics(resolution=sz["resolution"], keep_images=sz["keep_images"], device=self.ctx.device)
        else:
            from .data import MnistImages
            from .metrics import mnist_metrics

            self.source = MnistImages(size=sz["resolution"])
            self.hook = mnist_metrics(
                keep_images=sz["keep_images"], device=self.ctx.device, size=sz["resolution"], spectrum=True
            )

    @property
    def data_name(self) -> str:
        """The training data in figure titles: "FFHQ 128" or "MNIST 32×32"."""
        r = self.sizes["resolution"]
        return f"FFHQ {r}" if self.sizes["data"] == "ffhq" else f"MNIST {r}×{r}"

    def config(self, loop: str, lam: float) -> LoopConfig:
        """The configuration of one loop: ``loop`` is "fully synthetic" or "augmentation"."""
        if loop not in LOOPS:
            raise ValueError(f"loop = {loop!r}; the StyleGAN loops are {sorted(LOOPS)}")
        real, accumulate = LOOPS[loop]
        sz = self.sizes
        n = sz["n"]
        name = f"{loop} λ={lam:g}"
        if name not in sz["generations"]:
            raise ValueError(
                f"no StyleGAN loop {name!r} at scale {self.ctx.scale!r}; madutils/scales.py defines "
                f"{sorted(sz['generations'])} (add an entry there to run another λ)"
            )
        return LoopConfig(
            generations=sz["generations"][name],
            n_ini=n,
            n_s=n,
            real=real,
            n_r=n if real == "fixed" else 0,
            lam=lam,
            accumulate=accumulate,
            seed=self.ctx.seed,
        )

    def run(self, loop: str, lam: float = 1.0) -> LoopRun:
        """Run (or read) one loop; every generation's model is stored, for the grids of notebook 06."""
        return run_loop(
            self.family,
            self.config(loop, lam),
            self.source,
            store=self.ctx.store,
            experiment=EXPERIMENT,
            evaluate=self.hook,
            store_models=True,
            desc=f"StyleGAN2 {loop} λ={lam:g}",
        )

    def table(self) -> pd.DataFrame:
        """Tidy metrics of this scale's stored StyleGAN loops (this family, this n and seed)."""
        t = self.ctx.store.table(EXPERIMENT)
        if t.empty:
            return t
        return t[(t.family_key == family_key(self.family)) & (t.n_ini == self.sizes["n"]) & (t.seed == self.ctx.seed)]

"""The one table that maps notebooks → experiments → figures → claims, so that notebook ids, figure names and
paper figure numbers are written once: :func:`madutils.plots.save_figure` takes the paper figure number from here,
the gallery its order and titles, and :func:`madutils.notebook.record_claims` checks that a notebook records only its
own claims."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """A figure file ``figures/<scale>/<name>.png`` and the paper figure it reproduces (``None``: not in the
    paper)."""

    name: str
    paper: str | None


@dataclass(frozen=True)
class Notebook:
    id: str
    slug: str
    figures: tuple[Figure, ...]
    claims: tuple[str, ...]
    paper: bool = True  # a paper section; False: a companion (the explorer, the bring-your-own-model example)

    @property
    def file(self) -> str:
        return f"{self.slug}.ipynb"


NOTEBOOKS: dict[str, Notebook] = {
    nb.id: nb
    for nb in (
        Notebook("00", "00_explorer", (), (), paper=False),
        Notebook(
            "01",
            "01_gaussian_martingale",
            (
                Figure("nb01_trace_collapse", None),
                Figure("nb01_mean_random_walk", None),
                Figure("nb01_samples_2d", None),
            ),
            ("C1",),
        ),
        Notebook(
            "02",
            "02_fully_synthetic",
            (
                Figure("fig04_fully_synthetic_fid_precision_recall", "4"),
                Figure("fig04b_stylegan_fully_synthetic", "4"),
                Figure("fig06b_stylegan_fully_synthetic_biased", "6"),
                Figure("fig05_fully_synthetic_tsne_unbiased", "5"),
                Figure("fig07_fully_synthetic_tsne_biased", "7"),
                Figure("fig06_fully_synthetic_biased", "6"),
                Figure("fig16_fully_synthetic_all_lambdas", "16"),
                Figure("fig26_samples_unbiased", "26"),
                Figure("fig27_samples_biased", "27"),
                Figure("nb02_metric_controls", None),
                Figure("nb02_secondary_measures", None),
            ),
            ("C2", "C3"),
        ),
        Notebook(
            "03",
            "03_synthetic_augmentation",
            (
                Figure("fig09_augmentation_fid_precision_recall", "9"),
                Figure("fig08_stylegan_augmentation", "8"),
                Figure("nb03_secondary_measures", None),
            ),
            ("C4",),
        ),
        Notebook(
            "04",
            "04_fresh_data",
            (
                Figure("fig10_fresh_gaussian_w2", "10 (left)"),
                Figure("fig10_fresh_ddpm_fid", "10 (right)"),
                Figure("nb04_fresh_ddpm_samples", None),
                Figure("nb04_fresh_ddpm_controls", None),
                Figure("fig11_fresh_admissible_region", "11"),
                Figure("fig12_fresh_threshold_vs_lambda", "12"),
                Figure("fig30_fresh_memory", "30"),
                Figure("fig31_fresh_dataset_size", "31"),
            ),
            ("C5", "C6", "C7", "C8"),
        ),
        Notebook(
            "05",
            "05_appendix_fully_synthetic",
            (
                Figure("fig14_gmm_densities", "14"),
                Figure("fig15_gmm_diversity_measures", "15"),
                Figure("fig13_wgan_fid_precision_recall", "13"),
                Figure("fig13_wgan_samples", "13 (samples, not in the paper)"),
                Figure("fig17_flow_rosenbrock", "17"),
                Figure("fig17_flow_tail_mass", "17 (tail mass, not in the paper)"),
            ),
            ("C9", "C10", "C11"),
        ),
        Notebook(
            "06",
            "06_stylegan_ffhq",
            (
                Figure("fig01_stylegan_fully_synthetic_generations", "1, 18–22"),
                Figure("fig23_stylegan_fully_synthetic_biased_generations", "23–25"),
                Figure("fig28_stylegan_augmentation_generations", "28, 29"),
                Figure("nb06_high_frequency_share", None),
            ),
            ("C12",),
        ),
        Notebook("07", "07_bring_your_own_model", (Figure("nb07_kde_fully_synthetic", None),), (), paper=False),
    )
}


def notebook(nb_id: str) -> Notebook:
    try:
        return NOTEBOOKS[nb_id]
    except KeyError:
        raise ValueError(f"no notebook {nb_id!r}; the notebooks are {', '.join(NOTEBOOKS)}") from None


def figure(nb_id: str, name: str) -> Figure:
    """The registered figure ``name`` of notebook ``nb_id``; an error names the figures it has."""
    nb = notebook(nb_id)
    for fig in nb.figures:
        if fig.name == name:
            return fig
    raise ValueError(
        f"figure {name!r} is not registered for notebook {nb_id} in madutils/registry.py; its figures are "
        f"{', '.join(f.name for f in nb.figures)}"
    )


def claim_notebook(claim: str) -> str:
    """The id of the notebook that records ``claim`` (e.g. "C10" → "05")."""
    for nb in NOTEBOOKS.values():
        if claim in nb.claims:
            return nb.id
    known = sorted({c for nb in NOTEBOOKS.values() for c in nb.claims}, key=lambda c: int(c[1:]))
    raise ValueError(f"no notebook records claim {claim!r} in madutils/registry.py; the claims are {', '.join(known)}")

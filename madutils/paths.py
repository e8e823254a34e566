"""Where the project keeps data, run results and figures.

All outputs are placed relative to the project root, which is found from the environment variable
``MAD_ROOT`` or by walking up from the working directory to the folder that holds ``reproduce.sh``
(notebooks run inside ``notebooks/``). Data go to ``MAD_DATA`` (default ``<root>/data``).
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The project folder: ``$MAD_ROOT``, else the nearest parent of the working directory with
    ``reproduce.sh`` and ``madutils/``, else the working directory itself."""
    env = os.environ.get("MAD_ROOT")
    if env:
        return Path(env).expanduser().resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "reproduce.sh").is_file() and (folder / "madutils").is_dir():
            return folder
    return here


def data_dir() -> Path:
    """Datasets and cached networks: ``$MAD_DATA`` or ``<root>/data`` (ignored by git)."""
    env = os.environ.get("MAD_DATA")
    path = Path(env).expanduser() if env else project_root() / "data"
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir(scale: str) -> Path:
    """Stored loop results and executed notebooks of one scale: ``<root>/runs/<scale>``."""
    return project_root() / "runs" / scale


def figures_dir(scale: str) -> Path:
    """Figures, gallery and claims table of one scale: ``<root>/figures/<scale>``."""
    return project_root() / "figures" / scale

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An empty project root for outputs (figures, runs), so tests never touch the real ones."""
    (tmp_path / "madutils").mkdir()
    (tmp_path / "reproduce.sh").write_text("")
    monkeypatch.setenv("MAD_ROOT", str(tmp_path))
    return tmp_path

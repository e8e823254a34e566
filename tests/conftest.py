import os
import socket

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Tests never reach the network: MNIST and LeNet-5 are prepared by ./test.sh before pytest starts (or found
    in the data folder), and any connection a test attempts fails at once, in this process and, through
    MAD_OFFLINE, in the subprocesses it starts. Loopback (a server the test itself started) is allowed."""
    monkeypatch.setenv("MAD_OFFLINE", "1")

    def refuse(self, address, *args):
        host = address[0] if isinstance(address, tuple) else ""
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
            raise OSError(f"tests must not use the network (a connection to {address} was attempted)")
        return real_connect(self, address, *args)

    real_connect = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An empty project root for outputs (figures, runs), so tests never touch the real ones."""
    (tmp_path / "madutils").mkdir()
    (tmp_path / "reproduce.sh").write_text("")
    monkeypatch.setenv("MAD_ROOT", str(tmp_path))
    return tmp_path

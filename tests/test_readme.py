"""Every command of the README runs as written (at the smoke scale, which MAD_SCALE sets for ./reproduce.sh and the
notebooks), so that a newcomer who pastes them is not the first to find one broken."""

import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def readme_commands() -> list[str]:
    """The command lines of the README's bash blocks, without their comments."""
    text = (ROOT / "README.md").read_text()
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            command = line.split("  #")[0].strip()
            if command and not command.startswith("#"):
                lines.append(command)
    return lines


def test_the_readme_lists_its_commands():
    commands = readme_commands()
    assert commands[:2] == ["./test.sh", "./reproduce.sh"]  # the two commands first
    first = {"./test.sh", "./reproduce.sh", ".venv/bin/jupyter", ".venv/bin/papermill", ".venv/bin/python", "mkdir"}
    assert all(c.split()[0] in first for c in commands)
    # what a command writes goes to an ignored place (runs/), never into the repository's tracked folders
    assert all("out.ipynb" not in c or "runs/out.ipynb" in c for c in commands)


def _env(tmp_path):
    return dict(os.environ, MAD_SCALE="smoke", MPLBACKEND="Agg", JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))


@pytest.mark.slow
@pytest.mark.parametrize("command", readme_commands())
def test_every_readme_command_runs(command, tmp_path):
    env = _env(tmp_path)
    if command.startswith("./test.sh"):
        # ./test.sh is what CI runs (.ci/run); here: that it accepts the README's arguments
        assert "./test.sh" in (ROOT / ".ci" / "run").read_text()
        args = shlex.split(command)[1:]
        out = subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", *[a.strip('"') for a in args], "tests"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        return
    if command.startswith(".venv/bin/jupyter lab"):
        exe = ROOT / ".venv" / "bin" / "jupyter"
        exe = str(exe) if exe.exists() else "jupyter"  # an active environment of its own (conda, CI)
        port = 8800 + os.getpid() % 100
        server = subprocess.Popen(
            [exe, "lab", *command.split()[2:], "--no-browser", f"--port={port}", "--ServerApp.token=", "--allow-root"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "lab.log", "w"),  # noqa: SIM115 - closed with the process
        )
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never through a proxy
        try:
            deadline, status, error = time.time() + 180, None, None
            while time.time() < deadline and status != 200:
                try:
                    status = direct.open(f"http://127.0.0.1:{port}/lab", timeout=30).status
                except OSError as exc:
                    error = exc
                    time.sleep(1)
            assert status == 200, f"JupyterLab did not answer ({error!r}): " + (tmp_path / "lab.log").read_text()[-800:]
        finally:
            server.terminate()
            server.wait(timeout=30)
        return
    if not (ROOT / ".venv" / "bin").is_dir():  # an active environment of its own (conda): its own commands
        command = command.replace(".venv/bin/", "")
    before = _untracked()
    out = subprocess.run(command, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3000)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert _untracked() == before, "the command left files in the repository that git does not ignore"


def _untracked() -> set[str]:
    out = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=all"], capture_output=True, text=True
    )
    return {line for line in out.stdout.splitlines() if line.startswith("??")}


def test_the_counts_the_readme_quotes_are_those_of_the_sizes():
    """The README says how many generations the main job trains per loop; they come from madutils/scales.py, so a
    change of the sizes that leaves the README behind fails here."""
    from madutils.scales import DDPMSizes, StyleGANSizes, WGANSizes, sizes

    d, sg, w = sizes(DDPMSizes, "small"), sizes(StyleGANSizes, "small"), sizes(WGANSizes, "small")
    assert d.generations == d.aug_generations == d.fresh_generations  # "every DDPM loop"
    assert len(set(sg.generations.values())) == 1  # "every StyleGAN2 loop"
    text = " ".join((ROOT / "README.md").read_text().split())
    quoted = (
        f"training {d.generations} generations of every DDPM loop, {max(sg.generations.values())} of every "
        f"StyleGAN2 loop and {w.generations} of the WGAN-GP loops"
    )
    assert quoted in text, f"README.md should say '{quoted}'"

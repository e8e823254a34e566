# Sourced by reproduce.sh, test.sh and .ci/run. `mad_env` uses the active environment when it already has
# madutils (a conda env made from environment.yml, or an activated venv); otherwise it creates .venv at the
# project root, installs the project with its notebook and test extras (again whenever pyproject.toml changes),
# and activates it.
mad_env() {
  local root venv stamp want py
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  if [ -n "${VIRTUAL_ENV:-}${CONDA_PREFIX:-}" ] && python -c "import madutils" >/dev/null 2>&1; then
    mad_strip_outputs "$root"
    return 0
  fi
  py="${PYTHON:-python3}"
  if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' >/dev/null 2>&1; then
    echo "error: Python >= 3.10 is needed ($py is $("$py" --version 2>&1)); set PYTHON=/path/to/python3.x" >&2
    return 1
  fi
  venv="$root/.venv"
  stamp="$venv/.madutils-installed"
  want="$("$py" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest()[:16])' \
          "$root/pyproject.toml")"
  if [ ! -x "$venv/bin/python" ]; then
    echo ">> creating $venv" >&2
    "$py" -m venv "$venv" || return 1
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo ">> installing madutils and its dependencies into $venv (first use: a few minutes)" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip || return 1
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$root[notebooks,test]" || return 1
    echo "$want" >"$stamp"
  fi
  # shellcheck disable=SC1091
  . "$venv/bin/activate"
  mad_strip_outputs "$root"
}

# In a git checkout, the filter named in .gitattributes: .ci/strip_outputs.py strips a notebook's outputs when it is
# staged (cell ids and hand-written metadata kept), and `git diff` compares notebooks without outputs. The commands
# name the script by its path in the repository and run it with whichever python3 is on PATH (it needs only the
# standard library), so no environment has to exist or stay where it was.
mad_strip_outputs() {
  local root="$1"
  git -C "$root" rev-parse --git-dir >/dev/null 2>&1 || return 0
  if [ "$(git -C "$root" config filter.strip-outputs.clean)" != "python3 .ci/strip_outputs.py" ]; then
    echo ">> git: notebooks are committed without their outputs (the strip-outputs filter, set in .git/config)" >&2
    git -C "$root" config filter.strip-outputs.clean "python3 .ci/strip_outputs.py" || true
    git -C "$root" config filter.strip-outputs.smudge cat || true
    git -C "$root" config filter.strip-outputs.required true || true
    git -C "$root" config diff.ipynb.textconv "python3 .ci/strip_outputs.py" || true
    git -C "$root" config --remove-section filter.nbstripout 2>/dev/null || true  # the filter of earlier versions
  fi
}

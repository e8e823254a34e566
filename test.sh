#!/usr/bin/env bash
# The whole test suite: unit tests of madutils, then every committed notebook executed through nbval at the
# smoke scale. Sets itself up on first use (see .ci/env.sh). Extra arguments go to pytest, e.g.
#   ./test.sh -m "not slow"          skip the long checks
#   ./test.sh tests/test_loops.py    one file
set -euo pipefail
cd "$(dirname "$0")"
. .ci/env.sh
mad_env
export MAD_SCALE=smoke
export MPLBACKEND=Agg
if [ $# -gt 0 ]; then
  exec python -m pytest "$@"
fi
python -m pytest tests
python -m pytest --nbval-lax --nbval-cell-timeout=1200 -p no:cacheprovider notebooks

#!/usr/bin/env bash
# The whole test suite: unit tests of madutils, then every committed notebook executed through nbval at the
# smoke scale. Sets itself up on first use (see .ci/env.sh): the environment, then MNIST and LeNet-5 (fetched
# and trained once, before any test runs, so that no test touches the network or trains LeNet inside a timed
# step). Extra arguments go to pytest, e.g.
#   ./test.sh -m "not slow"          the fast tier: unit tests without the long checks (no notebooks)
#   ./test.sh tests/test_loops.py    one file
set -euo pipefail
cd "$(dirname "$0")"
. .ci/env.sh
mad_env
export MAD_SCALE=smoke
export MPLBACKEND=Agg
python -c "from madutils.metrics import LeNetFeatures; LeNetFeatures(device='cpu', progress=False)" || {
  echo "error: MNIST or LeNet-5 could not be prepared (see above); the tests need both" >&2
  exit 1
}
if [ $# -gt 0 ]; then
  exec python -m pytest "$@"
fi
python -m pytest tests
python -m pytest --nbval-lax --nbval-cell-timeout=1200 -p no:cacheprovider notebooks

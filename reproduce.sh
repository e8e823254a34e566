#!/usr/bin/env bash
# Run every notebook through papermill at one scale and rebuild figures/<scale>/ (figures, gallery, claims.csv).
# Sets itself up on first use (see .ci/env.sh). Stored results under runs/<scale>/ are reused, so a rerun after
# an interruption continues where it stopped.
set -uo pipefail
cd "$(dirname "$0")"
ROOT="$(pwd)"

usage() {
  cat <<'EOF'
usage: ./reproduce.sh [--scale smoke|small|paper] [--only NN [NN ...]] [--jobs N] [--gpus N] [--help]

  --scale S     sizes of every experiment (default: $MAD_SCALE, else small). smoke: seconds, numbers mean nothing;
                small: every figure on a 2-core CPU; paper: the paper's sizes (GPUs).
  --only NN...  run only these notebooks, by number (e.g. --only 01 04)
  --jobs N      run N notebooks at once (default 1); CPU threads are shared between them
  --gpus N      first compute the notebooks' loops on N GPUs of this machine, one loop per GPU at a time
                (torchrun, python -m madutils.distributed), then run the notebooks, which read them from the
                store; README, "Several GPUs", has the recipe for several machines
  --help        this text

Writes executed notebooks and logs to runs/<scale>/notebooks/<run>/ (latest: runs/<scale>/notebooks/latest/), figures to figures/<scale>/figNN_slug.png, the claims
table to figures/<scale>/claims.csv and the gallery to figures/<scale>/README.md. Exits non-zero when a notebook
fails.
EOF
}

# MAD_SCALE (as the notebooks read it) sets the default scale; --scale overrides it
SCALE="${MAD_SCALE:-small}"
JOBS=1
GPUS=0
ONLY=()
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) SCALE="${2:-}"; shift 2 || { usage; exit 2; } ;;
    --scale=*) SCALE="${1#*=}"; shift ;;
    --jobs) JOBS="${2:-}"; shift 2 || { usage; exit 2; } ;;
    --jobs=*) JOBS="${1#*=}"; shift ;;
    --gpus) GPUS="${2:-}"; shift 2 || { usage; exit 2; } ;;
    --gpus=*) GPUS="${1#*=}"; shift ;;
    --only)
      shift
      while [ $# -gt 0 ] && [[ "$1" != --* ]]; do ONLY+=("$1"); shift; done
      if [ ${#ONLY[@]} -eq 0 ]; then
        echo "error: --only needs notebook numbers, e.g. --only 01 04 (without them it would run every notebook)" >&2
        exit 2
      fi ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$SCALE" in
  smoke|small|paper) ;;
  *) echo "error: unknown scale '$SCALE' (from --scale or MAD_SCALE); use smoke, small or paper" >&2; exit 2 ;;
esac
if ! [[ "$JOBS" =~ ^[1-9][0-9]*$ ]]; then echo "error: --jobs needs a positive integer, got '$JOBS'" >&2; exit 2; fi
if ! [[ "$GPUS" =~ ^[0-9]+$ ]]; then echo "error: --gpus needs a number of GPUs, got '$GPUS'" >&2; exit 2; fi

NOTEBOOKS=()
for nb in notebooks/[0-9][0-9]_*.ipynb; do
  num="$(basename "$nb" | cut -c1-2)"
  if [ ${#ONLY[@]} -eq 0 ] || printf '%s\n' "${ONLY[@]}" | grep -qx "$num"; then NOTEBOOKS+=("$nb"); fi
done
for want in "${ONLY[@]}"; do
  ls notebooks/"$want"_*.ipynb >/dev/null 2>&1 || { echo "error: no notebook numbered '$want' in notebooks/" >&2; exit 2; }
done

. .ci/env.sh
mad_env || exit 1

# every run keeps its own executed notebooks and logs (two runs on one store never write into each other's);
# runs/<scale>/notebooks/latest points to the newest
RUN_ID="$(date +%Y%m%d-%H%M%S)-$$"
OUT="runs/$SCALE/notebooks/$RUN_ID"
mkdir -p "$OUT" "figures/$SCALE"
ln -sfn "$RUN_ID" "runs/$SCALE/notebooks/latest"
TIMINGS="runs/$SCALE/timings.tsv"
CORES="$(python -c 'import os; print(len(os.sched_getaffinity(0)))')"
export MAD_THREADS="${MAD_THREADS:-$(( CORES / JOBS > 0 ? CORES / JOBS : 1 ))}"
# MAD_PUBLISH: figures go to figures/<scale>/ (a notebook run by hand writes under runs/<scale>/by-hand/).
# No MPLBACKEND: the kernels keep their inline backend, so the executed notebooks keep every figure.
unset MPLBACKEND
export MAD_SCALE="$SCALE" MAD_ROOT="$ROOT" MAD_PUBLISH=1
THIS_RUN="$(mktemp)"
# whether the store held any computed generation when this run started (the gallery records it)
if [ -n "$(find "runs/$SCALE" -mindepth 3 -maxdepth 3 -type d -name 'gen-*' -print -quit 2>/dev/null)" ]; then
  STORE_STATE=filled
else
  STORE_STATE=empty
fi
COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain -- madutils notebooks 2>/dev/null)" ]; then COMMIT="$COMMIT+uncommitted"; fi

run_one() {
  local nb="$1" index="$2" name start status
  name="$(basename "$nb" .ipynb)"
  start=$(date +%s)
  echo "$index/${#NOTEBOOKS[@]} $name" >"$OUT/current"
  echo ">> notebook $index of ${#NOTEBOOKS[@]}: $name (scale $SCALE, $MAD_THREADS threads)"
  # what this notebook recorded before is removed first: a failed run leaves no stale figures or claims as current
  python -m madutils.gallery --scale "$SCALE" --forget "${name:0:2}" >/dev/null
  if python -m papermill "$nb" "$OUT/$name.ipynb" -p scale "$SCALE" --cwd notebooks --no-progress-bar \
       --log-level WARNING >"$OUT/$name.log" 2>&1; then
    status=ok
    # ipykernel reports the interrupt with which papermill stops a finished kernel as an ERROR: not an error
    sed -i '/KeyboardInterrupt caught in kernel/d' "$OUT/$name.log"
    # a copy to browse without Jupyter, next to the executed notebook
    python -m jupyter nbconvert --to html "$OUT/$name.ipynb" --output-dir "$OUT" >>"$OUT/$name.log" 2>&1 ||
      echo "!! $name: the HTML export failed; see $OUT/$name.log" >&2
  else
    status=FAILED
    echo "!! $name failed; see $OUT/$name.log and $OUT/$name.ipynb" >&2
    tail -n 20 "$OUT/$name.log" >&2
  fi
  printf '%s\t%s\t%s\t%s\n' "$name" "$(( $(date +%s) - start ))" "$status" "$COMMIT" >>"$THIS_RUN"
}

T0=$(date +%s)
if [ "$GPUS" -gt 0 ]; then
  NUMS=()
  for nb in "${NOTEBOOKS[@]}"; do NUMS+=("$(basename "$nb" | cut -c1-2)"); done
  echo ">> the notebooks' loops on $GPUS GPUs (torchrun; log: runs/$SCALE/distributed.log)"
  mkdir -p "runs/$SCALE"
  if ! python -m torch.distributed.run --standalone --nproc_per_node "$GPUS" -m madutils.distributed \
       --scale "$SCALE" --only "${NUMS[@]}" >"runs/$SCALE/distributed.log" 2>&1; then
    echo "!! computing the loops on $GPUS GPUs failed; see runs/$SCALE/distributed.log (what finished is stored)" >&2
    tail -n 20 "runs/$SCALE/distributed.log" >&2
    exit 1
  fi
fi
# the progress of the loops, read from the store: one updating line in a terminal, plain lines in a log
NUMS=()
for nb in "${NOTEBOOKS[@]}"; do NUMS+=("$(basename "$nb" | cut -c1-2)"); done
python -m madutils.progress --scale "$SCALE" --only "${NUMS[@]}" --run-dir "$OUT" &
MONITOR=$!
INDEX=0
for nb in "${NOTEBOOKS[@]}"; do
  INDEX=$((INDEX + 1))
  while [ "$(jobs -rp | grep -vx "$MONITOR" | wc -l)" -ge "$JOBS" ]; do wait -n; done
  run_one "$nb" "$INDEX" &
done
for job in $(jobs -rp); do [ "$job" = "$MONITOR" ] || wait "$job"; done
touch "$OUT/done"
wait "$MONITOR" 2>/dev/null

# keep the latest time (and the commit it ran) of every notebook, of this and earlier runs, for the gallery
python - "$TIMINGS" "$THIS_RUN" <<'PY'
import sys, csv
old, new = sys.argv[1], sys.argv[2]
rows = {}
for path in (old, new):
    try:
        for r in csv.reader(open(path), delimiter="\t"):
            rows[r[0]] = r
    except FileNotFoundError:
        pass
with open(old, "w") as f:
    for k in sorted(rows):
        f.write("\t".join(rows[k]) + "\n")
PY

TOTAL=$(( $(date +%s) - T0 ))
# a run of every notebook records its total, the cores and whether the store started empty, for the gallery
if [ ${#ONLY[@]} -eq 0 ]; then
  printf 'seconds\t%s\ncores\t%s\nstore\t%s\ncommit\t%s\n' "$TOTAL" "$CORES" "$STORE_STATE" "$COMMIT" \
    >"runs/$SCALE/last-full-run.tsv"
fi
python -m madutils.gallery --scale "$SCALE" --timings "$TIMINGS" --commit "$COMMIT" >/dev/null || exit 1
# the executed notebooks of this run as a browsable book (navigation, search, figures; it reads offline)
BOOK="$(python -m madutils.book --scale "$SCALE" --run "$OUT" --out "runs/$SCALE/book" 2>&1 | tail -n 1)" ||
  echo "!! the book could not be built: $BOOK" >&2

echo
echo "wall times (scale $SCALE; the store started $STORE_STATE):"
sort "$THIS_RUN" | awk -F'\t' '{printf "  %-32s %7.1f min  %s\n", $1, $2/60, $3}'
echo "  total                            $(awk -v s=$TOTAL 'BEGIN{printf "%7.1f", s/60}') min ($CORES cores: $(awk -v s=$TOTAL -v c=$CORES 'BEGIN{printf "%.0f", s*c/60}') core-minutes)"
python - "figures/$SCALE/claims.csv" <<'PY' || true
import csv, sys
from collections import Counter
try:
    rows = list(csv.DictReader(open(sys.argv[1], newline="")))
except FileNotFoundError:
    sys.exit(0)
counts = Counter(r["verdict"] for r in rows)
print("verdicts: " + ", ".join(f"{counts[v]} {v}" for v in ("reproduced", "not_reproduced", "uninformative", "not_run")))
PY
echo "figures, gallery and claims: figures/$SCALE/; executed notebooks and logs: $OUT/"
echo "${BOOK:-}"
FAILED=$(grep -c FAILED "$THIS_RUN" || true)
rm -f "$THIS_RUN"
[ "$FAILED" -eq 0 ] || { echo "$FAILED notebook(s) failed" >&2; exit 1; }

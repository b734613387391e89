#!/usr/bin/env bash
# The pretrained re-ID baselines (docs/results/pretrained-baselines/): the validation sweep that
# chose the `pretrained` recipe's settings, then the recipe on the test set per regime.
#
#   experiments/pretrained_baselines.sh OUT STEP...     e.g.  ... /data/pre val-A val-B k2
#
# Steps: val-{A,B,B-noerase,B-60} (K = 2, 100 held-out training ids, seed 1), epoch-cost,
# k2 (seeds 1-3), full (seed 1), k4 (seed 1); K2_EPOCHS sets the scarce regimes' epochs. Each step runs once: a finished one leaves
# OUT/done/STEP and is skipped; an interrupted bench resumes from its last epoch (rerun the same
# command). Logs go to OUT/logs/STEP.log, wall seconds to OUT/times.tsv. Needs REIDAUG_DATA.
set -euo pipefail

OUT=${1:?usage: $0 OUT STEP...}
shift
R=${REIDAUG_DATA:?set REIDAUG_DATA to the Market-1501 root}
mkdir -p "$OUT/done" "$OUT/logs"
BENCH=(reidaug bench-reid --dataset market1501 --root "$R" --recipe pretrained --arms baseline
    --workers 1)
VAL=(--real-per-id 2 --val-ids 100 --seeds 1)
# the scarce regimes' epochs, chosen on the validation split (val-B against val-B-60)
K2_EPOCHS=${K2_EPOCHS:-30}
# the sweep's candidate A: a tenfold head learning rate (3.5e-3 head, 3.5e-4 backbone)
HEAD10=(--lr 3.5e-3 --base-lr-mult 0.1)

step() {
    case $1 in
    val-A) "${BENCH[@]}" "${VAL[@]}" "${HEAD10[@]}" --out "$OUT/val-A" ;;
    val-B) "${BENCH[@]}" "${VAL[@]}" --out "$OUT/val-B" ;;
    val-B-noerase) "${BENCH[@]}" "${VAL[@]}" --transforms random_flip,random_crop \
        --out "$OUT/val-B-noerase" ;;
    val-B-60) "${BENCH[@]}" "${VAL[@]}" --epochs 60 --out "$OUT/val-B-60" ;;
    epoch-cost) python benchmarks/reid_epoch.py --market --real-per-id 4 --recipes cpu,pretrained \
        --workers 1 --repeat 3 > "$OUT/epoch-cost.txt" ;;
    k2) "${BENCH[@]}" --real-per-id 2 --epochs "$K2_EPOCHS" --seeds 1-3 --out "$OUT/k2" ;;
    full) "${BENCH[@]}" --seeds 1 --out "$OUT/full" ;;
    k4) "${BENCH[@]}" --real-per-id 4 --epochs "$K2_EPOCHS" --seeds 1 --out "$OUT/k4" ;;
    *) echo "unknown step $1" >&2 && return 2 ;;
    esac
}

for s in "$@"; do
    [[ -e "$OUT/done/$s" ]] && { echo "$s: done earlier"; continue; }
    t0=$(date +%s)
    step "$s" > "$OUT/logs/$s.log" 2>&1
    printf '%s\t%s\n' "$s" $(($(date +%s) - t0)) >> "$OUT/times.tsv"
    touch "$OUT/done/$s"
done

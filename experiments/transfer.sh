#!/usr/bin/env bash
# The transfer regime (docs/results/transfer/): a generator trained on all images of one half
# of Market's training identities makes new-pose images of K = 2 images of each identity of the
# other half, brought in as a folder dataset of symlinks (the user with their own people), and
# the pretrained re-ID recipe is trained on that half with and without them.
#
#   experiments/transfer.sh OUT STEP...      steps: gen folder synth bench warp-synth warp-bench
#
# warp-synth and warp-bench are the control: the training-free part warp of the same sources
# into the same pose bank (synthesize --source warp), added the same way, against the same
# baseline units (copied from OUT/bench).
#
# Each step runs once: a finished one leaves OUT/done/STEP and is skipped; an interrupted
# generator resumes from its last checkpoint, an interrupted bench from its last epoch. Logs go
# to OUT/logs/STEP.log, wall seconds to OUT/times.tsv. Needs REIDAUG_DATA (the Market root).
# SEEDS picks the bench's training seeds [default: 1-5].
set -euo pipefail

OUT=${1:?usage: $0 OUT STEP...}
shift
R=${REIDAUG_DATA:?set REIDAUG_DATA to the Market-1501 root}
SEEDS=${SEEDS:-1-5}
mkdir -p "$OUT/done" "$OUT/logs"
HERE=$(cd "$(dirname "$0")" && pwd)

# the gain study's generator (warping G1 against D, residual, NN loss), 3,000 it
GEN_FLAGS=(--preset cpu --stage 1 --iters1 3000 --lambda-ssim 1 --skip deform
    --deform-output residual --lambda-nn 1 --variant g1-d --lambda-l1 1000)
FOLDER=$OUT/folder
# the pretrained recipe at K = 2 as docs/results/pretrained-baselines chose it on validation
BENCH=(--dataset folder --root "$FOLDER" --real-per-id 2 --recipe pretrained --epochs 60)

gen_run() {
    local run
    run=$(find "$OUT/gen" -mindepth 1 -maxdepth 1 -type d -name '0*' 2>/dev/null | sort | head -1)
    [[ -n $run ]] || { echo "Error: no generator run in $OUT/gen: run the gen step" >&2; return 1; }
    echo "$run"
}

step() {  # step NAME CMD...: run CMD once, logged and timed
    local name=$1 t0 rc=0
    shift
    [[ -f $OUT/done/$name ]] && { echo "skip $name (done)"; return 0; }
    echo "start $name $(date -u +%FT%TZ)"
    t0=$(date +%s)
    "$@" >"$OUT/logs/$name.log" 2>&1 || rc=$?
    echo "end $name rc=$rc $(($(date +%s) - t0)) s"
    [[ $rc -eq 0 ]] || return $rc
    printf '%s\t%s\t%s\n' "$name" "$(($(date +%s) - t0))" "$*" >>"$OUT/times.tsv"
    touch "$OUT/done/$name"
}

for s in "$@"; do
    case $s in
    gen)
        if [[ ! -f $OUT/done/gen ]] && gen=$(gen_run 2>/dev/null); then
            step gen reidaug train --resume "$gen"
        else
            step gen reidaug --seed 0 train --dataset market1501 --root "$R" "${GEN_FLAGS[@]}" \
                --id-fraction 0.5 --subset-seed 0 --out "$OUT/gen"
        fi
        ;;
    folder)
        rm -rf "$FOLDER.tmp"
        step folder python "$HERE/market_half_folder.py" "$R" "$FOLDER" --subset-seed 0
        ;;
    synth)
        step synth reidaug synthesize --run "$(gen_run)" --dataset folder --root "$FOLDER" \
            --real-per-id 2 --subset-seed 0 --poses 10 --out "$OUT/shards"
        ;;
    bench)
        step bench reidaug bench-reid "${BENCH[@]}" --arms baseline,augmented --seeds "$SEEDS" \
            --mix add --shards "$OUT/shards" --label same-id --out "$OUT/bench"
        ;;
    warp-synth)
        step warp-synth reidaug synthesize --source warp --dataset folder --root "$FOLDER" \
            --real-per-id 2 --subset-seed 0 --poses 10 --out "$OUT/warp-shards"
        ;;
    warp-bench)
        mkdir -p "$OUT/bench-warp"
        for f in "$OUT"/bench/baseline-seed*.{json,pt}; do cp -n "$f" "$OUT/bench-warp/"; done
        step warp-bench reidaug bench-reid "${BENCH[@]}" --arms baseline,augmented \
            --seeds "$SEEDS" --mix add --shards "$OUT/warp-shards" --label same-id \
            --out "$OUT/bench-warp"
        ;;
    *) echo "unknown step $s" >&2 && exit 1 ;;
    esac
done

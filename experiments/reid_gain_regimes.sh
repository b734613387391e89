#!/usr/bin/env bash
# The second re-ID proof run (docs/results/reid-gain-regimes/): per regime (K = 2 and K = 4 real
# images per identity, and the full training set) a warping generator trained on the regime's
# images only, its synthesis and shard check, a one-seed pilot of the label scheme (K = 2), and
# the bench with test-time pose fusion.
#
#   experiments/reid_gain_regimes.sh OUT STEP...      e.g.  ... /data/proof k2-gen k2-synth
#
# Steps: {k2,k4,full}-{gen,synth,check,bench}, k2-pilot. Each step runs once: a finished one
# leaves OUT/done/STEP and is skipped; an interrupted generator resumes from its last
# checkpoint, an interrupted bench from its last epoch or test-time block. Logs go to
# OUT/logs/STEP.log, wall seconds to OUT/times.tsv. Needs REIDAUG_DATA (the Market root);
# LABEL (same-id, lsro or teacher) picks the bench's label scheme [default: same-id].
set -euo pipefail

OUT=${1:?usage: $0 OUT STEP...}
shift
R=${REIDAUG_DATA:?set REIDAUG_DATA to the Market-1501 root}
LABEL=${LABEL:-same-id}
mkdir -p "$OUT/done" "$OUT/logs"

# the generator of docs/results/generators (warping G1 against D, residual, NN loss), 3,000 it
GEN_FLAGS=(--preset cpu --stage 1 --iters1 3000 --lambda-ssim 1 --skip deform
    --deform-output residual --lambda-nn 1 --variant g1-d --lambda-l1 1000)
POSES=10          # synthesis poses per real image
TEST_POSES=8      # canonical poses of test-time fusion
FUSION_WEIGHT=16  # fixed from the one-seed sweep of docs/results/test-time-fusion

subset_flags() {  # the regime's training set
    case $1 in
    k2) echo "--real-per-id 2" ;;
    k4) echo "--real-per-id 4" ;;
    full) echo "" ;;
    *) echo "unknown regime $1" >&2 && return 1 ;;
    esac
}

epochs() {  # the cpu recipe's 7,676 steps held (docs/results/reid-calibration)
    case $1 in k2) echo 334 ;; k4) echo 167 ;; full) echo 38 ;; esac
}

gen_run() {  # the regime's generator run; none yet is an error
    local run
    run=$(find "$OUT/$1/gen" -mindepth 1 -maxdepth 1 -type d -name '0*' 2>/dev/null | sort | head -1)
    if [[ -z $run ]]; then
        echo "Error: no generator run in $OUT/$1/gen: run the $1-gen step first" >&2
        return 1
    fi
    echo "$run"
}

step() {  # step NAME CMD...: run CMD once, logged and timed
    local name=$1 t0 rc
    shift
    if [[ -f $OUT/done/$name ]]; then
        echo "skip $name (done)"
        return 0
    fi
    echo "start $name $(date -u +%FT%TZ)"
    t0=$(date +%s)
    rc=0
    "$@" >"$OUT/logs/$name.log" 2>&1 || rc=$?
    echo "end $name rc=$rc $(($(date +%s) - t0)) s"
    [[ $rc -eq 0 ]] || return $rc
    printf '%s\t%s\t%s\n' "$name" "$(($(date +%s) - t0))" "$*" >>"$OUT/times.tsv"
    touch "$OUT/done/$name"
}

bench_flags() {  # the regime's training set and epochs, shared by every bench-reid call
    # shellcheck disable=SC2046
    echo --dataset market1501 --root "$R" $(subset_flags "$1") --epochs "$(epochs "$1")"
}

run_step() {
    local reg=${1%%-*} what=${1#*-} arms gen
    case $what in
    gen)  # an interrupted generator continues from its last checkpoint (every 1,000 steps)
        if [[ ! -f $OUT/done/$1 ]] && gen=$(gen_run "$reg" 2>/dev/null); then
            step "$1" reidaug train --resume "$gen"
        else
            # shellcheck disable=SC2046
            step "$1" reidaug --seed 0 train --dataset market1501 --root "$R" "${GEN_FLAGS[@]}" \
                $(subset_flags "$reg") --out "$OUT/$reg/gen"
        fi
        ;;
    synth)
        gen=$(gen_run "$reg")
        step "$1" reidaug synthesize --run "$gen" --poses $POSES \
            --out "$OUT/$reg/shards"
        ;;
    check)  # the regime's seed-1 baseline judges the synthetic images before use
        step "$1-judge" reidaug bench-reid $(bench_flags "$reg") --arms baseline --seeds 1 \
            --out "$OUT/$reg/bench"
        step "$1" reidaug evaluate --dataset market1501 --root "$R" --shards "$OUT/$reg/shards" \
            --metrics idp --reid-checkpoint "$OUT/$reg/bench/baseline-seed1.pt" \
            --json "$OUT/$reg/shards-idp.json"
        ;;
    pilot)  # seed 0, kept out of the final intervals: same-id against teacher labels
        step "$1-same-id" reidaug bench-reid $(bench_flags "$reg") --seeds 0 --mix add \
            --shards "$OUT/$reg/shards" --label same-id --out "$OUT/$reg/pilot-same-id"
        mkdir -p "$OUT/$reg/pilot-teacher"
        cp -n "$OUT/$reg/pilot-same-id/baseline-seed0."{json,pt} "$OUT/$reg/pilot-teacher/"
        step "$1-teacher" reidaug bench-reid $(bench_flags "$reg") --seeds 0 --mix add \
            --shards "$OUT/$reg/shards" --label teacher --out "$OUT/$reg/pilot-teacher"
        ;;
    bench)
        gen=$(gen_run "$reg")
        arms=baseline,augmented
        [[ $reg == k4 ]] || arms=baseline,augmented,baseline-matched
        local seeds=1-5
        [[ $reg == full ]] && seeds=${FULL_SEEDS:-1-3}
        step "$1" reidaug bench-reid $(bench_flags "$reg") --arms $arms --seeds "$seeds" \
            --mix add --shards "$OUT/$reg/shards" --label "$LABEL" --test-poses $TEST_POSES \
            --test-generator "$gen" --fusion-weight $FUSION_WEIGHT --test-arms baseline,augmented \
            --out "$OUT/$reg/bench"
        ;;
    *) echo "unknown step $1" >&2 && return 1 ;;
    esac
}

for s in "$@"; do
    run_step "$s"
done

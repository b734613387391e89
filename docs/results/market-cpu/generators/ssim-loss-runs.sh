#!/bin/bash
# paired screen of --lambda-ssim: G1 --preset cpu 1,500 it, seed 0 (control: gen20/genC raw weights, same batches)
set -e
export PYTHONPATH=/work/exp/wt-s21
PY=/work/main/.venv/bin/python
R=/work/shared/data/market1501
J=/work/exp/gen21
cd $J
E="$PY -m reidaug evaluate --protocol posegan --metrics ssim,mssim,sharpness --limit 3000"
for L in 1 3; do
  $PY -m reidaug train --dataset market1501 --root $R --preset cpu --stage 1 --iters1 1500 --lambda-ssim $L --out gen-s$L > train-s$L.log 2>&1
  RUN=$(ls -d $J/gen-s$L/*/ | head -1); RUN=${RUN%/}
  echo "s$L trained" >> progress.txt
  $E --run $RUN --json eval-s$L.json > eval-s$L.log 2>&1; echo "s$L eval done" >> progress.txt
done
# paired: G1 --preset cpu 3,000 it --lambda-ssim 1, seed 0 (control: gen20/gen step 3000 raw weights = eval-g1-raw.json)
J=/work/exp/gen21
cd $J
$PY -m reidaug train --dataset market1501 --root $R --preset cpu --stage 1 --iters1 3000 --lambda-ssim 1 --out gen-3k > train-3k.log 2>&1
RUN=$(ls -d $J/gen-3k/*/ | head -1); RUN=${RUN%/}
echo "3k trained" >> progress.txt
$PY -m reidaug evaluate --protocol posegan --metrics ssim,mssim,sharpness --limit 3000 --run $RUN --json eval-3k.json > eval-3k.log 2>&1; echo "3k eval done" >> progress.txt
# session 22, paired with g1-cpu-decay-lr5e-4-9133it (README row 20): G1 --preset cpu 9,133 it --lambda-ssim 1, seed 0, all 12,000 pairs
J=/work/exp/gen22
cd $J
$PY -m reidaug train --dataset market1501 --root $R --preset cpu --stage 1 --iters1 9133 --lambda-ssim 1 --out gen-9k > train-9k.log 2>&1
RUN=$(ls -d $J/gen-9k/*/ | head -1); RUN=${RUN%/}
$PY -m reidaug evaluate --protocol posegan --metrics ssim,mssim,sharpness --run $RUN --json eval-9k.json > eval-9k.log 2>&1
# session 23: the third idp judge (the first two went with machines), then idp of row 31 and of the paired 3,000-it G1s
cd /work/exp/judge
$PY -m reidaug bench-reid --dataset market1501 --root $R --recipe cpu --arms baseline --seeds 1 --out bench-cpu   # resumable
JUDGE=/work/exp/judge/bench-cpu/baseline-seed1.pt
E="$PY -m reidaug evaluate --protocol posegan --metrics idp --reid-checkpoint $JUDGE"
cd /work/exp/gen22
$E --run /work/exp/gen22/gen-9k/00000-pg2-market1501 --json idp-9k-judge2.json          # ssim-loss-1-g1-9133it.idp-judge3.json
cd /work/exp/s23
$E --run /work/exp/gen21/gen-3k/00000-pg2-market1501 --json idp-3k-ssim.json            # ssim-loss-1-g1-3000it.idp-judge3.json
RUN=$(ls -d /work/exp/gen20/gen/*/ | head -1)   # session 20's --ema 0.999 run: its G1 at step 3000, last weights
$E --run ${RUN%/} --checkpoint ${RUN}checkpoints/step-0003000.pt --raw-weights --json idp-3k-plain.json   # ema-0.999-g1-3000it-g2d-l1-1000-1500it.g1.idp-raw-judge3.json
# session 24: row 32, row 31's second seed (paired with g1-cpu-decay-lr5e-4-9133it-seed1); resumable:
# rerun the train line with --resume RUN (RUN the run directory) after an interruption
mkdir -p /work/exp/s23 && cd /work/exp/s23
$PY -m reidaug --seed 1 train --dataset market1501 --root $R --preset cpu --stage 1 --iters1 9133 \
    --lambda-ssim 1 --checkpoint-every 500 --out gen-9k-s1 > train-s1.log 2>&1
RUN=$(ls -d /work/exp/s23/gen-9k-s1/*/ | head -1); RUN=${RUN%/}
$PY -m reidaug evaluate --protocol posegan --metrics ssim,mssim,sharpness --run $RUN --json eval-9k-s1.json   # ssim-loss-1-g1-9133it-seed1.eval.json
# session 24: stage 2 with the SSIM loss, paired (g1g2d-ssim-loss-1000-2000it, g1g2d-ssim-loss-0-2000it):
# two copies of row 31's run, then G2 + D at --lambda-l1 1000 with --lambda-ssim 1000 and 0
SRC=/work/exp/gen22/gen-9k/00000-pg2-market1501
for L in 1000 0; do
  RUN=/work/exp/s24/g2-$L/00000-pg2-market1501
  mkdir -p $RUN/checkpoints && cp $SRC/training_options.json $SRC/stats.jsonl $RUN/ && cp $SRC/checkpoints/step-0009133.pt $RUN/checkpoints/
  $PY -m reidaug train --resume $RUN --stage 2 --iters1 9133 --iters2 2000 --lambda-l1 1000 --lambda-ssim $L --checkpoint-every 500
  $PY -m reidaug evaluate --protocol posegan --metrics ssim,mssim,sharpness --run $RUN --json eval-$L.json          # *.eval.json
  $PY -m reidaug evaluate --protocol posegan --metrics ssim,ssim-fixed --run $RUN --json fixed-$L.json            # *.ssim-fixed.json
  $PY -m reidaug evaluate --protocol posegan --metrics idp --reid-checkpoint $JUDGE --run $RUN --json idp-$L.json   # *.idp-judge3.json
done
# ssim-fixed of the 3,000-iteration pair above (first 3,000 pairs): ssim-loss-1-g1-3000it.ssim-fixed.json and
# ema-0.999-g1-3000it-g2d-l1-1000-1500it.g1.ssim-fixed-raw.json
E3="$PY -m reidaug evaluate --protocol posegan --metrics ssim,ssim-fixed --limit 3000"
$E3 --run /work/exp/gen21/gen-3k/00000-pg2-market1501 --json fixed-3k-ssim.json
RUN=/work/exp/gen20/gen/00000-pg2-market1501
$E3 --run $RUN --checkpoint $RUN/checkpoints/step-0003000.pt --raw-weights --json fixed-3k-plain.json
# long G1 runs with the loss, each scored on all 12,000 pairs: long_g1 DIR OUT ITERS [reidaug global flags];
# resumable: after an interruption rerun the train line as `train --resume RUN`
long_g1() {
  mkdir -p "$1" && cd "$1"
  $PY -m reidaug "${@:4}" train --dataset market1501 --root $R --preset cpu --stage 1 --iters1 "$3" \
      --lambda-ssim 1 --checkpoint-every 500 --out "$2" >> train.log 2>&1
  RUN=$1/$2/00000-pg2-market1501
  $PY -m reidaug evaluate --protocol posegan --metrics ssim,ssim-fixed,mssim,sharpness --run $RUN --json eval.json   # *.eval.json
  $PY -m reidaug evaluate --protocol posegan --metrics idp --reid-checkpoint $JUDGE --run $RUN --json idp.json        # *.idp-judge3.json
}
# sessions 25 and 26: row 35, row 31's command at row 25's 19,927 iterations (ssim-loss-1-g1-19927it)
long_g1 /work/exp/s25 g1-20k 19927
# sessions 26 and 27: row 36, the same at 19,927 / 1.09 = 18,282 iterations, what a 60-minute run with the loss
# reaches at row 25's 5.54 it/s (ssim-loss-1-g1-18282it)
long_g1 /work/exp/s26 g1-18k 18282
# sessions 27 and 28: row 37, row 36's command with reidaug --seed 1 (ssim-loss-1-g1-18282it-seed1)
long_g1 /work/exp/s27 g1-18k-seed1 18282 --seed 1
# session 28: row 38, row 31's command at 18,282 x 25 / 60 = 7,618 iterations, what a 25-minute run with the loss
# reaches at row 25's 5.54 it/s (ssim-loss-1-g1-7618it)
long_g1 /work/exp/s28 g1-7k 7618

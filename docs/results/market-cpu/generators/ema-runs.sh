#!/bin/bash
# paired EMA test: G1 3,000 it + G2 + D (lambda-l1 1000) 1,500 it with --ema 0.999; each network
# scored with its averaged and its last weights on the first 3,000 posegan pairs
set -e
export PYTHONPATH=/work/exp/wt-s20
PY=/work/main/.venv/bin/python
R=/work/shared/data/market1501
J=/work/exp/gen20
cd $J
$PY -m reidaug train --dataset market1501 --root $R --preset cpu --stage 1 --iters1 3000 --ema 0.999 --out gen > train1.log 2>&1
RUN=$(ls -d $J/gen/*/ | head -1); RUN=${RUN%/}
cp $RUN/checkpoints/step-0003000.pt $J/g1.pt
echo "stage1 done" > progress.txt
$PY -m reidaug train --resume $RUN --stage 2 --iters2 1500 --lambda-l1 1000 > train2.log 2>&1
echo "stage2 done" >> progress.txt
E="$PY -m reidaug evaluate --protocol posegan --metrics ssim,mssim,sharpness --limit 3000"
$E --run $RUN --json eval.json > eval.log 2>&1; echo "eval avg done" >> progress.txt
$E --run $RUN --raw-weights --json eval-raw.json > eval-raw.log 2>&1; echo "eval raw done" >> progress.txt
$E --run $RUN --checkpoint $RUN/checkpoints/step-0003000.pt --json eval-g1.json > eval-g1.log 2>&1; echo "eval g1 avg done" >> progress.txt
$E --run $RUN --checkpoint $RUN/checkpoints/step-0003000.pt --raw-weights --json eval-g1-raw.json > eval-g1-raw.log 2>&1; echo "all done" >> progress.txt
#!/bin/bash
# run A cut back to its G1 (step 3000), stage 2 again with the warmed-up EMA (code 540a8a4)
set -e
export PYTHONPATH=/work/exp/wt-s20b
PY=/work/main/.venv/bin/python
J=/work/exp/gen20
cd $J
A=$(ls -d $J/gen/*/ | head -1); A=${A%/}
B=$J/genB/run; mkdir -p $J/genB; rm -rf $B; cp -r $A $B
find $B/checkpoints -name 'step-*.pt' ! -name 'step-0003000.pt' -delete
rm -f $B/metric-*.jsonl
$PY -m reidaug train --resume $B --stage 2 > trainB.log 2>&1
echo "B stage2 done" >> progress.txt
E="$PY -m reidaug evaluate --protocol posegan --metrics ssim,mssim,sharpness --limit 3000"
$E --run $B --json evalB.json > evalB.log 2>&1; echo "B eval avg done" >> progress.txt
$E --run $B --raw-weights --json evalB-raw.json > evalB-raw.log 2>&1; echo "B all done" >> progress.txt
#!/bin/bash
# stage-1 paired test of the warmed-up EMA (code 540a8a4): G1 --preset cpu 1,500 it, --ema 0.999
set -e
export PYTHONPATH=/work/exp/wt-s20b
PY=/work/main/.venv/bin/python
R=/work/shared/data/market1501
J=/work/exp/gen20
cd $J
$PY -m reidaug train --dataset market1501 --root $R --preset cpu --stage 1 --iters1 1500 --ema 0.999 --out genC > trainC.log 2>&1
C=$(ls -d $J/genC/*/ | head -1); C=${C%/}
echo "C trained" >> progress.txt
E="$PY -m reidaug evaluate --protocol posegan --metrics ssim,mssim,sharpness --limit 3000"
$E --run $C --json evalC.json > evalC.log 2>&1; echo "C eval avg done" >> progress.txt
$E --run $C --raw-weights --json evalC-raw.json > evalC-raw.log 2>&1; echo "C all done" >> progress.txt

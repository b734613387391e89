"""Training engine: run directory, resume determinism, NaN stop, data parallelism, learning."""

import dataclasses
import json
import os
import shutil
import socket

import pytest
import torch
import torch.multiprocessing as mp

from reidaug.cli import cli
from reidaug.config import TrainConfig
from reidaug.data import SyntheticMarket
from reidaug.errors import UserError
from reidaug.training import checkpoint as C
from reidaug.training import rundir, train
from reidaug.training.loop import lr_factor
from reidaug.training.pg2 import PG2Recipe
from tests.helpers import evaluate, tiny


def on_step(monkeypatch, n: int, action) -> None:
    """Patch ``PG2Recipe.step`` so that its ``n``-th call returns ``action(recipe, losses)``
    (which may raise, or change the recipe) instead of the losses."""
    real_step, calls = PG2Recipe.step, {"n": 0}

    def step(self, stage, batch):
        calls["n"] += 1
        out = real_step(self, stage, batch)
        return action(self, out) if calls["n"] == n else out

    monkeypatch.setattr(PG2Recipe, "step", step)


class Interrupt(Exception):
    pass


def stop_at(n: int):
    """A progress callback that interrupts training after step ``n``."""

    def progress(done, total, label=None, **kw):
        if done == n:
            raise Interrupt

    return progress


def losses_by_step(run):
    out = {}
    for line in (run / "stats.jsonl").read_text().splitlines():
        rec = json.loads(line)
        out.setdefault(rec["global_step"], []).append(rec["losses"])
    return out


def test_run_directory_layout(synth_root, tmp_path):
    run = train(tiny(synth_root, tmp_path))
    assert run.name == "00000-pg2-synthetic"
    assert TrainConfig.load(run / "training_options.json").width == 4
    assert sorted(losses_by_step(run)) == list(range(1, 9))
    assert (run / "curves.png").is_file()
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "step-0000003.png",
        "step-0000007.png",
        "step-0000008.png",
    ]
    # the newest two plus the end of stage 1 are kept
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "step-0000004.pt",
        "step-0000006.pt",
        "step-0000008.pt",
    ]
    ck = C.load(run / "checkpoints" / "step-0000008.pt")
    assert set(ck["nets"]) == {"G1", "G2", "D"} and ck["stage_index"] == 1 and ck["stage_step"] == 4
    assert train(tiny(synth_root, tmp_path, iters1=1, iters2=1)).name == "00001-pg2-synthetic"


def test_a_torn_stats_line_does_not_stop_a_resume(synth_root, tmp_path):
    """A kill or a full disk mid-append leaves a line without its newline: readers skip (and
    report) it, the next append starts on a fresh line, and a resume drops it."""
    run = train(tiny(synth_root, tmp_path, iters1=2, iters2=2))
    stats = run / "stats.jsonl"
    good = len(stats.read_text().splitlines())
    with open(stats, "a") as f:
        f.write('{"time": 17, "stage": "2", "losses": {"loss_G')  # torn: no closing, no newline
    rundir.append_stats(
        run, {"global_step": 4, "losses": {"loss_G2": 0.5}, "note": "after the tear"}
    )
    lines = stats.read_text().splitlines()
    assert (
        lines[good].endswith('"loss_G') and json.loads(lines[good + 1])["note"] == "after the tear"
    )
    assert rundir.read_stats(run)[1] == 1
    said = []
    train(tiny(synth_root, tmp_path, iters1=2, iters2=4), resume=run, log=said.append)
    assert any("skipped 1 torn line" in s for s in said), said
    records, torn = rundir.read_stats(run)
    assert torn == 0 and sorted(losses_by_step(run)) == list(range(1, 7))


def test_rows_logged_after_the_last_checkpoint_are_not_doubled_by_a_resume(synth_root, tmp_path):
    with pytest.raises(Interrupt):
        train(tiny(synth_root, tmp_path, checkpoint_every=2), progress=stop_at(5))
    run = tmp_path / "00000-pg2-synthetic"
    assert C.latest(run).name == "step-0000004.pt" and max(losses_by_step(run)) == 5
    said = []
    train(tiny(synth_root, tmp_path, checkpoint_every=2), resume=run, log=said.append)
    steps = losses_by_step(run)
    assert sorted(steps) == list(range(1, 9)) and all(len(v) == 1 for v in steps.values()), steps
    assert any("dropped 1 stats row(s) logged after step-0000004.pt" in s for s in said), said


def test_a_resume_writes_samples_into_a_run_copied_without_its_samples_folder(synth_root, tmp_path):
    """A run copied as options, stats and one checkpoint (to train stage 2 on a copy) has no
    ``samples/``: the resume makes it instead of failing at its first sample sheet."""
    run = train(tiny(synth_root, tmp_path, stage="1"))
    shutil.rmtree(run / "samples")
    train(tiny(synth_root, tmp_path, stage="2"), resume=run)
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "step-0000007.png",
        "step-0000008.png",
    ]


def test_a_truncated_newest_checkpoint_gives_way_to_the_older_one(synth_root, tmp_path):
    run = train(tiny(synth_root, tmp_path, iters1=4, iters2=2, checkpoint_every=2))
    newest = C.latest(run)
    assert newest.name == "step-0000006.pt"
    newest.write_bytes(newest.read_bytes()[:1000])  # a kill mid-copy
    said = []
    train(
        tiny(synth_root, tmp_path, iters1=4, iters2=4, checkpoint_every=2),
        resume=run,
        log=said.append,
    )
    assert any(s.startswith("skipping step-0000006.pt: cannot load checkpoint") for s in said), said
    assert any("resuming" in s and "step-0000004.pt" in s for s in said), said
    assert C.load(C.latest(run))["global_step"] == 8


def test_a_worker_error_is_one_line_with_the_workers_own_message(tmp_path, runner):
    from reidaug.data import make_synthetic

    root = tmp_path / "data"
    make_synthetic(root, ids=6, seed=3, test_pairs=20)
    for p in SyntheticMarket(root).train:
        p.path.write_bytes(b"")  # zero-byte JPEGs
    r = runner.invoke(
        cli,
        [
            "train",
            "--dataset",
            "synthetic",
            "--root",
            str(root),
            "--iters",
            "2",
            "--width",
            "4",
            "--batch-size",
            "2",
            "--workers",
            "1",
            "--out",
            str(tmp_path / "runs"),
        ],
    )
    assert r.exit_code == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: cannot decode image ") and last.endswith(
        "(corrupt or not an image)"
    ), last
    assert "Traceback" not in r.stderr and "worker process" not in r.stderr
    assert not any((tmp_path / "runs").iterdir())  # no run folder holding only its options


def test_ctrl_c_exits_130_and_says_what_a_resume_redoes(synth_root, tmp_path, runner, monkeypatch):
    def interrupt(recipe, losses):
        raise KeyboardInterrupt

    on_step(monkeypatch, 4, interrupt)
    r = runner.invoke(
        cli,
        [
            "train",
            "--dataset",
            "synthetic",
            "--root",
            str(synth_root),
            "--iters",
            "4",
            "--width",
            "4",
            "--batch-size",
            "4",
            "--workers",
            "0",
            "--checkpoint-every",
            "2",
            "--out",
            str(tmp_path),
        ],
    )
    assert r.exit_code == 130, r.output
    run = tmp_path / "00000-pg2-synthetic"
    ck = run / "checkpoints" / "step-0000002.pt"
    assert (
        f"interrupted after step 3; last checkpoint: {ck}; 1 step(s) since it will be redone by: "
        in " ".join(r.stderr.split())
    )
    assert r.stderr.strip().splitlines()[-1] == "Interrupted."


def test_resume_gives_the_same_losses(synth_root, tmp_path):
    ref = train(tiny(synth_root, tmp_path / "a", checkpoint_every=1))

    with pytest.raises(Interrupt):
        train(tiny(synth_root, tmp_path / "b", checkpoint_every=1), progress=stop_at(6))
    run = tmp_path / "b" / "00000-pg2-synthetic"
    assert C.latest(run).name == "step-0000006.pt"
    train(tiny(synth_root, tmp_path / "b", checkpoint_every=1), resume=run)
    a, b = losses_by_step(ref), losses_by_step(run)
    assert sorted(a) == sorted(b) == list(range(1, 9))
    assert all(len(recs) == 1 for recs in b.values())  # rows after the checkpoint are not doubled
    for step in a:
        for rec in b[step]:
            assert rec == a[step][0], (
                step
            )  # bit-identical, stage 2 (G2 + D with batch norm) included


def test_nan_loss_stops_and_keeps_last_good_checkpoint(synth_root, tmp_path, monkeypatch):
    on_step(monkeypatch, 3, lambda recipe, losses: {k: float("nan") for k in losses})
    with pytest.raises(UserError) as e:
        train(tiny(synth_root, tmp_path))
    good = tmp_path / "00000-pg2-synthetic" / "checkpoints" / "step-0000002.pt"
    assert str(e.value) == (
        f"loss_G1 became nan: training stopped; last good checkpoint: {good} "
        "(resume it with a lower --lr)"
    )
    assert good.is_file() and C.latest(good.parent.parent) == good


def test_poisoned_weights_are_never_named_good_and_a_resume_takes_a_new_lr(
    synth_root, tmp_path, monkeypatch
):
    """Weights can turn non-finite while the loss still is: such a checkpoint is never written,
    the stop names the newest finite one, and ``--resume`` with ``--lr`` continues from it."""

    def poison(recipe, losses):
        with torch.no_grad():
            next(recipe.nets["G1"].parameters()).fill_(float("inf"))
        return losses  # the loss of this step is still finite

    real_step = PG2Recipe.step
    on_step(monkeypatch, 3, poison)
    with pytest.raises(UserError) as e:
        train(tiny(synth_root, tmp_path, checkpoint_every=1))
    run = tmp_path / "00000-pg2-synthetic"
    good = run / "checkpoints" / "step-0000002.pt"
    assert str(e.value).startswith(
        f"the weights became non-finite at step 3: training stopped; last good checkpoint: {good}"
    )
    assert C.latest(run) == good and C.finite(C.load(good)["nets"])
    monkeypatch.setattr(PG2Recipe, "step", real_step)
    said = []
    train(tiny(synth_root, tmp_path, checkpoint_every=1, lr=2e-4), resume=run, log=said.append)
    assert "lr changed from 0.001 to 0.0002 at step 2" in said, said
    final = C.load(C.latest(run))
    assert final["global_step"] == 8 and C.finite(final["nets"])
    assert {g["lr"] for o in final["opts"].values() for g in o["param_groups"]} == {2e-4}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, cfg_dict, skew=0.0):
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(world),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    from reidaug.training import distributed as dist

    if rank == 1 and skew:  # rank 1's clock jumps ``skew`` seconds after the run's start
        from types import SimpleNamespace

        from reidaug.training import loop

        real, calls = loop.time.time, []
        loop.time = SimpleNamespace(
            time=lambda: real() + skew * bool(calls.append(1) or len(calls) > 1)
        )

    train(TrainConfig(**cfg_dict))
    dist.shutdown()


@pytest.mark.slow
def test_two_process_gloo_matches_one_process(synth_root, tmp_path):
    """Gradients averaged over 2 ranks x 2 images equal one process on the 4-image batch."""
    cfg = tiny(synth_root, tmp_path / "ddp", variant="g1-posemask", iters1=3)
    mp.spawn(_worker, args=(2, _free_port(), dataclasses.asdict(cfg)), nprocs=2, join=True)
    single = train(dataclasses.replace(cfg, out=str(tmp_path / "one")))
    a = losses_by_step(tmp_path / "ddp" / "00000-pg2-synthetic")
    b = losses_by_step(single)
    assert sorted(a) == [1, 2, 3]
    for step in a:
        assert a[step][0]["loss_G1"] == pytest.approx(b[step][0]["loss_G1"], rel=1e-4)
    wa = C.load(C.latest(tmp_path / "ddp" / "00000-pg2-synthetic"))["nets"]["G1"]
    wb = C.load(C.latest(single))["nets"]["G1"]
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-3, atol=2e-4)  # lr 1e-3: 3 Adam steps


@pytest.mark.slow
def test_ranks_decay_the_rate_on_one_clock(synth_root, tmp_path):
    """With a time budget the ranks step with the same rate: the budget clock is their mean.
    Rank 1's clock runs 1,000 s ahead, so rank 0 (which logs) decays as if 500 s had passed."""
    cfg = tiny(
        synth_root, tmp_path, variant="g1-posemask", iters1=3, lr_decay=1.0, max_seconds=1100
    )
    mp.spawn(_worker, args=(2, _free_port(), dataclasses.asdict(cfg), 1000.0), nprocs=2, join=True)
    run = tmp_path / "00000-pg2-synthetic"
    lrs = [json.loads(line)["lr"] for line in (run / "stats.jsonl").read_text().splitlines()]
    assert lrs[0] == pytest.approx(1e-3)  # before the first step no clock was shared yet
    # step 1: the budget's 600 of 1,100 s left (rank 0 alone would take the steps' 2/3);
    # step 2: the steps' 1/3, lower than the budget's
    assert lrs[1:] == pytest.approx([1e-3 * 600 / 1100, 1e-3 / 3], rel=0.01)


def test_train_cli_and_bad_input(runner, synth_root, tmp_path):
    def invoke(*args):
        r = runner.invoke(
            cli, ["train", "--dataset", "synthetic", "--root", str(synth_root), *args]
        )
        assert "Traceback" not in r.output
        return r

    r = invoke(
        "--width",
        "4",
        "--d-width",
        "4",
        "--iters",
        "2",
        "--batch-size",
        "2",
        "--workers",
        "0",
        "--out",
        str(tmp_path),
    )
    assert r.exit_code == 0, r.output
    assert "run directory:" in r.stdout
    r = invoke("--resume", str(tmp_path / "nope"))
    assert r.exit_code == 1
    assert r.stderr.strip().splitlines()[-1] == (
        f"Error: not a run directory (no training_options.json): {tmp_path / 'nope'}"
    )
    half = train(tiny(synth_root, tmp_path / "half", stage="1", iters1=2))
    r = invoke("--stage", "2", "--resume", str(half), "--iters1", "4")
    assert r.exit_code == 1
    assert r.stderr.strip().splitlines()[-1] == (
        f"Error: --stage 2: stage 1 of {half} is not finished (step 2 of 4); resume it with "
        "--stage 1 first"
    )
    r = invoke("--stage", "2", "--out", str(tmp_path))
    assert r.exit_code == 1
    assert r.stderr.strip().splitlines()[-1] == (
        "Error: --stage 2 needs a trained stage 1: pass --resume RUN_DIR of such a run"
    )


def test_lr_decay_falls_linearly_over_each_stages_last_steps_and_resumes(
    synth_root, tmp_path, runner
):
    assert [lr_factor(k, 10, 0.5) for k in range(10)] == pytest.approx(
        [1, 1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2]
    )
    assert [lr_factor(k, 4, 0.0) for k in range(4)] == [1.0] * 4

    def rows(run):
        return [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]

    flat = train(tiny(synth_root, tmp_path / "flat"))
    ref = train(tiny(synth_root, tmp_path / "a", lr_decay=0.5, checkpoint_every=1))
    # 4 + 4 steps, decay over the last 2 of each stage: 1, 1, 1, 1/2 of lr 1e-3 in both stages
    assert [r["lr"] for r in rows(ref)] == pytest.approx([1e-3, 1e-3, 1e-3, 5e-4] * 2)
    assert [r["lr"] for r in rows(flat)] == pytest.approx([1e-3] * 8)
    # the first 4 steps see the same weights; the halved step 4 changes what stage 2 starts from
    assert [r["losses"] for r in rows(ref)[:4]] == [r["losses"] for r in rows(flat)[:4]]
    assert rows(ref)[4]["losses"] != rows(flat)[4]["losses"]

    with pytest.raises(Interrupt):  # the schedule follows the step, so a resume continues it
        train(
            tiny(synth_root, tmp_path / "b", lr_decay=0.5, checkpoint_every=1), progress=stop_at(3)
        )
    run = tmp_path / "b" / "00000-pg2-synthetic"
    train(tiny(synth_root, tmp_path / "b", lr_decay=0.5, checkpoint_every=1), resume=run)

    def lr_and_losses(run):
        return [(r["global_step"], r["lr"], r["losses"]) for r in rows(run)]

    assert lr_and_losses(run) == lr_and_losses(ref)

    r = runner.invoke(cli, ["train", "--resume", str(run), "--lr-decay", "1.5"])
    assert r.exit_code == 2 and "Invalid value for '--lr-decay'" in r.output
    opts = json.loads((run / "training_options.json").read_text())
    (run / "training_options.json").write_text(json.dumps({**opts, "lr_decay": 2}))
    r = runner.invoke(cli, ["train", "--resume", str(run), "--iters2", "6"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert (
        r.stderr.strip().splitlines()[-1] == "Error: training option lr_decay is 2; expected 0 to 1"
    )


def test_lr_decay_follows_a_minutes_budget(synth_root, tmp_path, monkeypatch):
    """With ``max_seconds`` the rate also falls over the budget's last fraction (here long
    before the stage's 100 iterations would start it), on a clock that ticks 1 s a step."""
    from types import SimpleNamespace

    from reidaug.training import loop

    assert lr_factor(0, 100, 0.5, elapsed=7.0, budget=10.0) == pytest.approx(0.6)
    assert lr_factor(95, 100, 0.5, elapsed=1.0, budget=10.0) == pytest.approx(0.1)  # steps first
    assert lr_factor(0, 100, 0.0, elapsed=9.9, budget=10.0) == 1.0
    clock = {"t": 0.0}
    monkeypatch.setattr(loop, "time", SimpleNamespace(time=lambda: clock["t"]))
    real_step = PG2Recipe.step

    def ticking(self, stage, batch):
        clock["t"] += 1.0
        return real_step(self, stage, batch)

    monkeypatch.setattr(PG2Recipe, "step", ticking)
    totals = []
    run = train(
        tiny(synth_root, tmp_path, stage="1", iters1=100, lr_decay=0.5, max_seconds=10),
        progress=lambda done, total, label=None, **kw: totals.append(total),
    )
    lrs = [json.loads(line)["lr"] for line in (run / "stats.jsonl").read_text().splitlines()]
    # step k starts k seconds in: full rate for the first half of the 10 s, then 0.8, 0.6, ...
    assert lrs == pytest.approx([1e-3] * 6 + [8e-4, 6e-4, 4e-4, 2e-4, 0.0])
    # the progress bar expects the steps the budget allows at 1 step/s, not the 100 asked for
    assert totals == [10] * 10 + [11]


@pytest.mark.slow
def test_small_g1_beats_the_copy_baseline(synth_root, tmp_path):
    """A width-16 G1 trained ~1.5 CPU-minutes beats copying the condition on held-out pairs."""
    cfg = tiny(
        synth_root,
        tmp_path,
        width=16,
        variant="g1-posemask",
        iters1=GATE_ITERS,
        batch_size=8,
        lr=5e-4,
        log_every=50,
        sample_every=10**6,
        checkpoint_every=10**6,
        workers=1,
    )
    s = evaluate(train(cfg), SyntheticMarket(synth_root))
    assert s["G1"] > s["copy"] + 0.005, s
    assert s["G1_ssim"] > s["copy_ssim"] + 0.05, s


GATE_ITERS = 500


def _g_batch(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    img = lambda: torch.rand(n, 3, 128, 64, generator=g) * 2 - 1  # noqa: E731
    return {
        "condition": img(),
        "target": img(),
        "target_pose": torch.rand(n, 18, 128, 64, generator=g),
        "target_mask": (torch.rand(n, 1, 128, 64, generator=g) > 0.5).float(),
    }


def test_ema_is_the_moving_average_of_each_step_and_sample_grids_restore_the_raw_weights():
    from reidaug.training import build_recipe

    cfg = TrainConfig(dataset="synthetic", width=4, d_width=4, norm="batch", lr=1e-2, ema=0.75)
    rec = build_recipe(cfg, torch.device("cpu"))
    assert sorted(rec.averaged) == ["G1", "G2"]  # generators only, never D
    rec.train_mode(rec.stages()[0])
    expected = None
    for k in range(40):
        rec.step("1", _g_batch(n=2, seed=k))
        w = {n: t.detach().clone().float() for n, t in rec.nets["G1"].state_dict().items()}
        d = min(0.75, (1 + k) / (10 + k))  # TF warm-up: k steps averaged before this one
        expected = w if expected is None else {n: d * expected[n] + (1 - d) * w[n] for n in w}
    got = {n: t.float() for n, t in rec.averaged["G1"].module.state_dict().items()}
    for n in expected:
        if "num_batches_tracked" not in n:
            torch.testing.assert_close(got[n], expected[n], msg=n)  # weights and BN statistics
    raw = {n: t.clone() for n, t in rec.nets["G1"].state_dict().items()}
    assert any(not torch.equal(raw[n].float(), got[n]) for n in expected)
    with rec.evaluating():
        inside = rec.nets["G1"].state_dict()
        for n in expected:
            if "num_batches_tracked" not in n:
                torch.testing.assert_close(inside[n].float(), got[n])
    for n, t in rec.nets["G1"].state_dict().items():
        assert torch.equal(t, raw[n]), n  # the raw weights are back: training goes on from them
    assert rec.nets["G1"].training


def test_ema_run_resumes_exactly_and_evaluation_uses_the_average(synth_root, tmp_path, runner):
    from reidaug.training import load_generator

    def params(net):
        return torch.cat([p.detach().flatten() for p in net.parameters()])

    plain = train(tiny(synth_root, tmp_path / "plain", norm="batch"))
    ref = train(tiny(synth_root, tmp_path / "a", norm="batch", ema=0.5, checkpoint_every=1))
    a, p = losses_by_step(ref), losses_by_step(plain)
    assert [a[s] for s in range(1, 5)] == [p[s] for s in range(1, 5)]  # EMA never steers stage 1
    assert a[5] != p[5]  # stage 2 starts from G1's average, not its last weights
    end1 = C.load(ref / "checkpoints" / "step-0000004.pt")
    last = load_generator(ref, raw=True)
    assert last.averaged == ()
    torch.testing.assert_close(
        params(last.recipe.nets["G1"]), params(last.recipe.averaged["G1"].module)
    )
    stage1_avg = {
        k[len("module.") :]: v for k, v in end1["averaged"]["G1"].items() if k.startswith("module.")
    }
    for k, v in last.recipe.nets["G1"].state_dict().items():
        assert torch.equal(v, stage1_avg[k]), k
    gen = load_generator(ref)
    assert gen.averaged == ("G1", "G2")
    assert not torch.equal(params(gen.recipe.nets["G2"]), params(last.recipe.nets["G2"]))
    torch.testing.assert_close(
        params(gen.recipe.nets["G2"]), params(last.recipe.averaged["G2"].module)
    )

    with pytest.raises(Interrupt):
        train(
            tiny(synth_root, tmp_path / "b", norm="batch", ema=0.5, checkpoint_every=1),
            progress=stop_at(3),
        )
    run = tmp_path / "b" / "00000-pg2-synthetic"
    train(tiny(synth_root, tmp_path / "b", norm="batch", ema=0.5, checkpoint_every=1), resume=run)
    assert losses_by_step(run) == a
    resumed = load_generator(run)
    for n in ("G1", "G2"):
        assert torch.equal(params(resumed.recipe.nets[n]), params(gen.recipe.nets[n])), n

    r = runner.invoke(cli, ["train", "--resume", str(run), "--ema", "0.9"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert (
        r.stderr.strip()
        .splitlines()[-1]
        .startswith("Error: --ema cannot change when a run is resumed")
    )
    r = runner.invoke(
        cli, ["train", "--dataset", "synthetic", "--root", str(synth_root), "--ema", "1"]
    )
    assert r.exit_code == 2 and "Invalid value for '--ema'" in r.output
    r = runner.invoke(
        cli,
        [
            "evaluate",
            "--images",
            str(tmp_path),
            "--dataset",
            "synthetic",
            "--root",
            str(synth_root),
            "--raw-weights",
        ],
    )
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.stderr.strip().splitlines()[-1] == (
        "Error: --raw-weights chooses a run's weights: give --run or --checkpoint"
    )

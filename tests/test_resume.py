"""What a resume may change: a finished stage's length never, a moved dataset only if it is the
same one, and every checkpoint the plan still needs is kept."""

import json
import shutil

import pytest

from reidaug.config import TrainConfig
from reidaug.data import make_synthetic
from reidaug.errors import UserError
from reidaug.training import checkpoint as C
from reidaug.training import train
from tests.helpers import tiny


def _steps(run):
    return sorted(int(p.stem.split("-")[1]) for p in (run / "checkpoints").glob("step-*.pt"))


def test_a_finished_stages_length_cannot_change_and_nothing_is_deleted(synth_root, tmp_path):
    run = train(tiny(synth_root, tmp_path, iters1=2, iters2=2, checkpoint_every=1,
                     keep_checkpoints=10))  # fmt: skip
    before = _steps(run)
    assert before[-1] == 4
    for changes in ({"iters1": 3, "iters2": 4}, {"iters1": 3}):
        with pytest.raises(UserError, match="--iters1 cannot change: stage 1 of .* is finished"):
            train(resume=run, changes=changes)
        assert _steps(run) == before
        assert TrainConfig.load(run / "training_options.json").changes == []
    # the last stage may grow: its steps continue the global count
    train(resume=run, changes={"iters2": 3})
    assert _steps(run)[-1] == 5 and 2 in _steps(run)


def test_a_stage_whose_successor_has_not_started_may_grow(synth_root, tmp_path):
    run = train(tiny(synth_root, tmp_path, stage="1", iters1=2, checkpoint_every=1))
    train(resume=run, changes={"iters1": 3})
    assert C.load(C.latest(run))["stage_step"] == 3
    with pytest.raises(UserError, match="--iters1 2 is below the 3 steps stage 1"):
        train(resume=run, changes={"iters1": 2})


def test_a_moved_root_must_hold_the_same_dataset(synth_root, tmp_path):
    run = train(tiny(synth_root, tmp_path / "r", iters1=1, iters2=1))
    moved = tmp_path / "moved"
    shutil.copytree(synth_root, moved)
    train(resume=run, changes={"root": str(moved), "iters2": 2})  # the same data elsewhere
    other = tmp_path / "other"
    make_synthetic(other, ids=2, seed=3, test_pairs=8)
    with pytest.raises(UserError, match=f"{other} holds another training set than {run}"):
        train(resume=run, changes={"root": str(other), "iters2": 3})


def test_resume_takes_the_changes_or_the_whole_config_alike(synth_root, tmp_path):
    a = train(tiny(synth_root, tmp_path / "a", iters1=1, iters2=1))
    b = train(tiny(synth_root, tmp_path / "b", iters1=1, iters2=1))
    train(resume=a, changes={"iters2": 2, "lr": 5e-4})
    whole = TrainConfig.load(b / "training_options.json")
    train(tiny(whole.root, tmp_path / "b", iters1=1, iters2=2, lr=5e-4), resume=b)
    ca, cb = (TrainConfig.load(r / "training_options.json") for r in (a, b))
    assert [(c["option"], c["to"]) for c in ca.changes] == [
        (c["option"], c["to"]) for c in cb.changes
    ]
    with pytest.raises(UserError, match="unknown training options: speed"):
        train(resume=a, changes={"speed": 2})


def test_a_runs_recorded_root_wins_over_reidaug_data(synth_root, tmp_path, runner, monkeypatch):
    """Precedence for every command that takes a run: --root, then the run's record, then
    $REIDAUG_DATA (which names another dataset here)."""
    from reidaug.cli import cli

    run = train(tiny(synth_root, tmp_path / "r", iters1=1, iters2=1, checkpoint_every=1))
    other = tmp_path / "other"
    make_synthetic(other, ids=2, seed=3, test_pairs=8)
    monkeypatch.setenv("REIDAUG_DATA", str(other))
    r = runner.invoke(cli, ["train", "--resume", str(run), "--iters2", "2"])
    assert r.exit_code == 0, r.stderr
    assert C.load(C.latest(run))["stage_step"] == 2
    r = runner.invoke(
        cli, ["synthesize", "--run", str(run), "--poses", "1", "--out", str(tmp_path / "s")]
    )
    assert r.exit_code == 0, r.stderr
    r = runner.invoke(cli, ["evaluate", "--run", str(run), "--limit", "4", "--metrics", "ssim"])
    assert r.exit_code == 0, r.stderr
    # an explicit --root still moves the run, and is checked
    r = runner.invoke(cli, ["train", "--resume", str(run), "--iters2", "3", "--root", str(other)])
    assert r.exit_code == 1 and "holds another training set" in r.stderr
    envs = [json.loads(line) for line in (run / "environment.jsonl").read_text().splitlines()]
    assert len(envs) == 2 and {"cpu", "threads", "torch", "deterministic"} <= set(envs[-1])

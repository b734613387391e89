"""The failure campaign of docs/failures.md ("The campaign"): every case is a command a user
might type with a wrong input; each must end in one ``Error:`` line (or, where marked, work),
a non-zero exit, no traceback, and nothing written where the command would write. The table in
docs/failures.md lists the same case names; a test keeps the two in step."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import pytest

from reidaug.cli import cli
from reidaug.synthesis import export, synthesize
from reidaug.training import train
from reidaug.weights import file_sha256
from tests.helpers import tiny
from tests.test_folder import as_folder

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Ctx:
    """What the cases point at: the embedded dataset, it as a folder, a tiny generator run,
    its shards and the warp's, and a scratch folder per case."""

    root: Path
    folder: Path
    run: Path
    shards: Path
    warp: Path
    tmp: Path

    def copy_folder(self, name: str) -> Path:
        out = self.tmp / name
        shutil.copytree(self.folder, out, symlinks=True)
        return out

    def copy_shards(self, name: str) -> Path:
        out = self.tmp / name
        shutil.copytree(self.shards, out)
        return out


@dataclass(frozen=True)
class Case:
    name: str
    new: bool  # an input of this round's features (else a case of an earlier campaign re-run)
    args: Callable[[Ctx], list[str]]
    expect: str  # a regular expression the last output line must match
    writes: str | None = None  # a path (relative to the case's folder) that must stay absent
    ok: bool = False  # an input that must work: exit 0, ``expect`` found in the output


def _bench(c: Ctx, *extra: str) -> list[str]:
    return ["bench-reid", "--dataset", "synthetic", "--root", str(c.root), "--epochs", "5",
            "--out", str(c.tmp / "bench"), *extra]  # fmt: skip


def _train(c: Ctx, *extra: str) -> list[str]:
    return ["train", "--dataset", "synthetic", "--root", str(c.root), "--iters", "2", "--width",
            "4", "--d-width", "4", "--batch-size", "2", "--workers", "0", "--out",
            str(c.tmp / "runs"), *extra]  # fmt: skip


def _synth(c: Ctx, *extra: str) -> list[str]:
    return ["synthesize", "--out", str(c.tmp / "shards"), *extra]


def _folder(c: Ctx, *extra: str) -> list[str]:
    return ["data", "check", "--dataset", "folder", "--root", *extra]


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def _code_pickle(c: Ctx) -> Path:
    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {c.tmp / 'ran'}",))

    return _write(c.tmp / "boom.pt", pickle.dumps({"features.0.0.weight": Boom()}))


def _index(c: Ctx, rows: str, name: str) -> Path:
    root = c.tmp / name
    root.mkdir()
    for i, p in enumerate(sorted((c.folder / "train").iterdir())[:4]):
        shutil.copy(p, root / f"img{i}.jpg")
    _write(root / "index.csv", rows)
    return root


def _junk_train(c: Ctx) -> str:
    root = c.copy_folder("junk")
    first = sorted((root / "train").iterdir())[0]
    first.rename(root / "train" / ("-1" + first.name[4:]))
    return str(root)


def _bad_poses(c: Ctx) -> str:
    root = c.copy_folder("poses")
    text = (root / "poses.csv").read_text().splitlines()
    text[3] = text[3].split(":")[0] + ": [1, 2, 3]: [4]"
    (root / "poses.csv").write_text("\n".join(text) + "\n")
    return str(root)


def _no_poses(c: Ctx) -> str:
    root = c.copy_folder("nopose")
    (root / "poses.csv").unlink()
    return str(root)


def _loop(c: Ctx) -> str:
    root = c.copy_folder("loop")
    os.symlink("0002_c1s1_999999_01.jpg", root / "train" / "0002_c1s1_999999_01.jpg")
    return str(root)


def _truncated(c: Ctx) -> str:
    out = c.copy_shards("trunc")
    p = sorted(out.glob("shard-*.h5"))[0]
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return str(out)


def _flipped(c: Ctx) -> str:
    out = c.copy_shards("flip")
    p = sorted(out.glob("shard-*.h5"))[-1]
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    return str(out)


def _traversal(c: Ctx) -> str:
    out = c.copy_shards("trav")
    m = json.loads((out / "manifest.json").read_text())
    m["shards"][0]["file"] = "../" + m["shards"][0]["file"]
    (out / "manifest.json").write_text(json.dumps(m))
    return str(out)


def _external(c: Ctx) -> str:
    out = c.copy_shards("ext")
    p = sorted(out.glob("shard-*.h5"))[0]
    with h5py.File(p, "a") as f:
        n = len(f["pid"])
        del f["pid"]
        f.create_dataset("pid", shape=(n,), dtype="i8", external=[(str(c.tmp / "x.bin"), 0, 8 * n)])
    m = json.loads((out / "manifest.json").read_text())  # as a forger would: sizes that fit
    m["shards"][0].update(bytes=p.stat().st_size, sha256=file_sha256(p))
    (out / "manifest.json").write_text(json.dumps(m))
    return str(out)


def _run_copy(c: Ctx) -> str:
    out = c.tmp / "copied-run"
    shutil.copytree(c.run, out)
    return str(out)


def _exported(c: Ctx) -> str:
    export(c.shards, c.tmp / "e")
    return str(c.tmp / "e")


def _not_a_run(c: Ctx) -> str:
    d = c.tmp / "notarun"
    d.mkdir()
    return str(d)


def _ckpt(c: Ctx) -> str:
    return str(sorted((c.run / "checkpoints").glob("*.pt"))[-1])


def _half_ckpt(c: Ctx) -> str:
    src = Path(_ckpt(c))
    return str(_write(c.tmp / "half.pt", src.read_bytes()[: src.stat().st_size // 2]))


CASES = [
    # ------------------------------------------------ pretrained backbones and their recipe
    Case(
        "backbone file missing",
        True,
        lambda c: _bench(
            c,
            "--arms",
            "baseline",
            "--recipe",
            "pretrained",
            "--backbone-weights",
            str(c.tmp / "no.pt"),
        ),
        r"^Error: .*no\.pt",
        "bench",
    ),
    Case(
        "backbone file that runs code",
        True,
        lambda c: _bench(
            c,
            "--arms",
            "baseline",
            "--recipe",
            "pretrained",
            "--backbone-weights",
            str(_code_pickle(c)),
        ),
        r"^Error: cannot load backbone weights .*boom\.pt",
        "ran",  # and no bench folder: see "backbone file missing"
    ),
    Case(
        "backbone file is text",
        True,
        lambda c: _bench(
            c,
            "--arms",
            "baseline",
            "--recipe",
            "pretrained",
            "--backbone-weights",
            str(_write(c.tmp / "t.pt", "hello")),
        ),
        r"^Error: cannot load backbone weights .*t\.pt",
        "bench",
    ),
    Case(
        "unknown transform",
        True,
        lambda c: _bench(c, "--transforms", "random_flip,zoom"),
        r"^Error: .*zoom",
        "bench",
    ),
    Case(
        "unknown re-ID model",
        True,
        lambda c: _bench(c, "--model", "resnet9000"),
        r"^Error: .*resnet9000",
        "bench",
    ),
    Case(
        "backbone learning rate multiple 0",
        True,
        lambda c: _bench(c, "--base-lr-mult", "0"),
        r"^Error: .*--base-lr-mult",
        "bench",
    ),
    Case(
        "head-only epochs over the epochs",
        True,
        lambda c: _bench(
            c, "--arms", "baseline", "--recipe", "pretrained", "--fixbase-epochs", "9"
        ),
        r"^Error: .*--fixbase-epochs",
        "bench",
    ),
    Case(
        "validation split of every identity",
        True,
        lambda c: _bench(c, "--val-ids", "12"),
        r"^Error: .*--val-ids",
        "bench",
    ),
    Case(
        "validation split larger than the identities",
        True,
        lambda c: _bench(c, "--val-ids", "100000"),
        r"^Error: .*--val-ids",
        "bench",
    ),
    # ------------------------------------------------ the perceptual and NN losses
    Case(
        "negative perceptual weight",
        True,
        lambda c: _train(c, "--lambda-perceptual", "-1"),
        r"^Error: .*--lambda-perceptual",
        "runs",
    ),
    Case(
        "perceptual layer out of range",
        True,
        lambda c: _train(c, "--lambda-perceptual", "1", "--perceptual-layers", "99"),
        r"^Error: .*perceptual",
        "runs",
    ),
    Case(
        "perceptual layers not numbers",
        True,
        lambda c: _train(c, "--lambda-perceptual", "1", "--perceptual-layers", "a,b"),
        r"^Error: .*perceptual",
        "runs",
    ),
    Case(
        "perceptual layers without the loss",
        True,
        lambda c: _train(c, "--perceptual-layers", "1"),
        r"^Error: .*--lambda-perceptual",
        "runs",
    ),
    Case(
        "even NN kernel",
        True,
        lambda c: _train(c, "--lambda-nn", "1", "--nn-kernel", "4"),
        r"^Error: .*nn.kernel is 4",
        "runs",
    ),
    Case(
        "NN kernel without the NN loss",
        True,
        lambda c: _train(c, "--nn-kernel", "5"),
        r"^Error: .*--lambda-nn",
        "runs",
    ),
    Case(
        "identity checkpoint missing",
        True,
        lambda c: _train(c, "--lambda-id", "1", "--id-checkpoint", str(c.tmp / "no.pt")),
        r"^Error: .*no\.pt",
        "runs",
    ),
    Case(
        "resume with another perceptual weight",
        True,
        lambda c: ["train", "--resume", _run_copy(c), "--lambda-perceptual", "5"],
        r"run directory: .*copied-run",
        ok=True,
    ),
    # ------------------------------------------------ evaluate: fd-mnv2, judges
    Case(
        "unknown metric beside fd-mnv2",
        True,
        lambda c: ["evaluate", "--run", str(c.run), "--metrics", "fd-mnv2,fid2"],
        r"^Error: .*fid2",
    ),
    Case(
        "judge recipe and judge checkpoint together",
        True,
        lambda c: [
            "evaluate",
            "--run",
            str(c.run),
            "--metrics",
            "idp",
            "--reid-recipe",
            "pretrained",
            "--reid-checkpoint",
            _ckpt(c),
        ],  # fmt: skip
        r"^Error: .*--reid-(recipe|checkpoint)",
    ),
    Case(
        "shards without idp",
        True,
        lambda c: ["evaluate", "--run", str(c.run), "--metrics", "ssim", "--shards", str(c.shards)],
        r"^Error: .*--shards",
    ),
    Case(
        "a generator checkpoint as the idp judge",
        True,
        lambda c: [
            "evaluate",
            "--run",
            str(c.run),
            "--metrics",
            "idp",
            "--limit",
            "4",
            "--reid-checkpoint",
            _ckpt(c),
        ],  # fmt: skip
        r"^Error: .*",
    ),
    # ------------------------------------------------ synthesize: sources and datasets
    Case(
        "warp with a generator",
        True,
        lambda c: _synth(
            c,
            "--source",
            "warp",
            "--run",
            str(c.run),
            "--dataset",
            "synthetic",
            "--root",
            str(c.root),
        ),
        r"^Error: --source warp uses no generator",
        "shards",
    ),
    Case(
        "warp without a dataset",
        True,
        lambda c: _synth(c, "--source", "warp"),
        r"^Error: --source warp needs --dataset",
        "shards",
    ),
    Case(
        "unknown synthesis source",
        True,
        lambda c: _synth(c, "--source", "vae"),
        r"^Error: .*vae",
        "shards",
    ),
    Case(
        "another dataset without its root",
        True,
        lambda c: _synth(c, "--run", str(c.run), "--dataset", "folder"),
        r"^Error: --dataset folder needs --root",
        "shards",
    ),
    Case(
        "a subset without another dataset",
        True,
        lambda c: _synth(c, "--run", str(c.run), "--real-per-id", "2"),
        r"^Error: --real-per-id and --subset-seed",
        "shards",
    ),
    Case(
        "a folder without poses for the generator",
        True,
        lambda c: _synth(c, "--run", str(c.run), "--dataset", "folder", "--root", _no_poses(c)),
        r"^Error: no pose file .*poses estimate",
        "shards",
    ),
    Case(
        "warp of a folder without poses",
        True,
        lambda c: _synth(c, "--source", "warp", "--dataset", "folder", "--root", _no_poses(c)),
        r"^Error: no pose file",
        "shards",
    ),
    # ------------------------------------------------ bench-reid with shards
    Case(
        "warp shards of another subset",
        True,
        lambda c: _bench(
            c, "--real-per-id", "2", "--subset-seed", "1", "--mix", "add", "--shards", str(c.warp)
        ),
        r"^Error: shard source image .* outside this bench's training subset",
        "bench",
    ),
    Case(
        "warp shards on a folder",
        True,
        lambda c: [
            "bench-reid",
            "--dataset",
            "folder",
            "--root",
            str(c.folder),
            "--epochs",
            "1",
            "--mix",
            "add",
            "--shards",
            str(c.warp),
            "--out",
            str(c.tmp / "bench"),
        ],
        r"^Error: shards were made from synthetic, not folder",
        "bench",
    ),
    Case(
        "embedded-dataset shards on a folder",
        True,
        lambda c: [
            "bench-reid",
            "--dataset",
            "folder",
            "--root",
            str(c.folder),
            "--epochs",
            "1",
            "--shards",
            str(c.shards),
            "--out",
            str(c.tmp / "bench"),
        ],  # fmt: skip
        r"^Error: shards were made from synthetic, not folder",
        "bench",
    ),
    Case(
        "augmented arm without shards",
        True,
        lambda c: _bench(c, "--arms", "augmented"),
        r"^Error: .*--shards",
        "bench",
    ),
    Case(
        "test-time fusion without a generator",
        True,
        lambda c: _bench(c, "--test-poses", "4"),
        r"^Error: .*--test-generator",
        "bench",
    ),
    Case(
        "seeds range backwards",
        True,
        lambda c: _bench(c, "--seeds", "3-1"),
        r"^Error: .*seeds",
        "bench",
    ),
    Case(
        "unknown arm",
        True,
        lambda c: _bench(c, "--arms", "baseline,gan"),
        r"^Error: .*gan",
        "bench",
    ),
    # ------------------------------------------------ poses for a folder
    Case(
        "estimate a folder without its root",
        True,
        lambda c: ["poses", "estimate", "--dataset", "folder"],
        r"^Error: .*--root",
    ),
    Case(
        "estimate images and a folder at once",
        True,
        lambda c: [
            "poses",
            "estimate",
            "--dataset",
            "folder",
            "--root",
            str(c.folder),
            "--images",
            str(c.folder / "train"),
        ],  # fmt: skip
        r"^Error: .*--images",
    ),
    Case(
        "estimate a folder that is a Market root",
        True,
        lambda c: ["poses", "estimate", "--dataset", "folder", "--root", str(c.root)],
        r"^Error: .* is a Market-1501 root",
    ),
    Case(
        "estimate with keypoint R-CNN weights missing",
        True,
        lambda c: [
            "poses",
            "estimate",
            "--images",
            str(c.folder / "train"),
            "--out",
            str(c.tmp / "p.csv"),
            "--backend",
            "keypointrcnn",
            "--weights",
            str(c.tmp / "krcnn.pth"),
        ],  # fmt: skip
        r"^Error: .*krcnn\.pth",
        "p.csv",
    ),
    # ------------------------------------------------ folder datasets beyond docs' table
    Case(
        "index split not train, query or gallery",
        True,
        lambda c: _folder(c, str(_index(c, "path,pid,camid,split\nimg0.jpg,0,0,test\n", "s"))),
        r"^Error: .*split",
    ),
    Case(
        "index with a header only",
        True,
        lambda c: _folder(c, str(_index(c, "path,pid,camid\n", "h"))),
        r"^Error: .*index\.csv lists no images",
    ),
    Case(
        "folder root is a file",
        True,
        lambda c: _folder(c, str(_write(c.tmp / "root.txt", "x"))),
        r"^Error: dataset root is a file, not a folder: .*root\.txt",
    ),
    Case(
        "junk identity in train",
        True,
        lambda c: _folder(c, _junk_train(c)),
        r"^Error: junk images \(id -1\) belong in the gallery",
    ),
    Case("malformed pose row", True, lambda c: _folder(c, _bad_poses(c)), r"^Error: .*poses\.csv"),
    Case(
        "symlink loop in a folder",
        True,
        lambda c: _folder(c, _loop(c)),
        r"^Error: cannot read image .*0002_c1s1_999999_01\.jpg \(too many levels of symbolic",
    ),
    Case(
        "train on a folder without poses",
        True,
        lambda c: [
            "train",
            "--dataset",
            "folder",
            "--root",
            _no_poses(c),
            "--iters",
            "2",
            "--out",
            str(c.tmp / "runs"),
        ],  # fmt: skip
        r"^Error: no pose file",
        "runs",
    ),
    Case(
        "train share of identities 0",
        True,
        lambda c: _train(c, "--id-fraction", "0"),
        r"^Error: .*--id-fraction",
        "runs",
    ),
    # ------------------------------------------------ earlier campaigns, re-run
    Case(
        "synthesize into another job's folder",
        False,
        lambda c: [
            "synthesize",
            "--run",
            str(c.run),
            "--poses",
            "3",
            "--shard-size",
            "64",
            "--out",
            str(c.shards),
        ],  # fmt: skip
        r"^Error: .* holds shards of a different job",
    ),
    Case(
        "synthesize from a missing run",
        False,
        lambda c: _synth(c, "--run", str(c.tmp / "gone")),
        r"^Error: run directory not found",
        "shards",
    ),
    Case(
        "synthesize from a half checkpoint",
        False,
        lambda c: _synth(c, "--checkpoint", _half_ckpt(c)),
        r"^Error: cannot load checkpoint",
        "shards",
    ),
    Case(
        "synthesize shard index past the count",
        False,
        lambda c: _synth(c, "--run", str(c.run), "--num-shards", "2", "--shard-index", "3"),
        r"^Error: --shard-index 3 must be in 0\.\.1",
        "shards",
    ),
    Case(
        "synthesize seeds disagree",
        False,
        lambda c: ["--seed", "1", *_synth(c, "--run", str(c.run), "--seed", "2")],
        r"^Error: .*--seed",
        "shards",
    ),
    Case(
        "export a truncated shard",
        False,
        lambda c: ["export", "--shards", _truncated(c), "--out", str(c.tmp / "e")],
        r"^Error: .*shard-00000\.h5",
        "e",
    ),
    Case(
        "export a bit-flipped shard",
        False,
        lambda c: ["export", "--shards", _flipped(c), "--out", str(c.tmp / "e")],
        r"^Error: .*shard-0000\d\.h5",
        "e",
    ),
    Case(
        "manifest path leaving its folder",
        False,
        lambda c: ["export", "--shards", _traversal(c), "--out", str(c.tmp / "e")],
        r"^Error: .*manifest",
        "e",
    ),
    Case(
        "shard with external storage",
        False,
        lambda c: ["export", "--shards", _external(c), "--out", str(c.tmp / "e")],
        r"^Error: .*external storage",
        "e",
    ),
    Case(
        "export into a folder that holds an export",
        False,
        lambda c: ["export", "--shards", str(c.shards), "--out", _exported(c)],
        r"^Error: output folder exists and is not empty",
    ),
    Case(
        "bench on truncated shards",
        False,
        lambda c: _bench(c, "--mix", "add", "--shards", _truncated(c)),
        r"^Error: .*shard-00000\.h5",
        "bench",
    ),
    Case(
        "evaluate a missing run",
        False,
        lambda c: ["evaluate", "--run", str(c.tmp / "gone")],
        r"^Error: .*gone",
    ),
    Case(
        "evaluate an unknown metric",
        False,
        lambda c: ["evaluate", "--run", str(c.run), "--metrics", "psnr"],
        r"^Error: .*psnr",
    ),
    Case(
        "evaluate a half checkpoint",
        False,
        lambda c: ["evaluate", "--checkpoint", _half_ckpt(c)],
        r"^Error: cannot load checkpoint",
    ),
    Case(
        "train for 0 iterations",
        False,
        lambda c: _train(c, "--iters", "0"),
        r"^Error: .*--iters",
        "runs",
    ),
    Case(
        "train on a missing root",
        False,
        lambda c: [
            "train",
            "--dataset",
            "market1501",
            "--root",
            str(c.tmp / "gone"),
            "--out",
            str(c.tmp / "runs"),
        ],  # fmt: skip
        r"^Error: .*gone",
        "runs",
    ),
    Case(
        "resume a folder that is no run",
        False,
        lambda c: ["train", "--resume", _not_a_run(c)],
        r"^Error: .*notarun",
    ),
    Case(
        "data check of a missing root",
        False,
        lambda c: ["data", "check", "--dataset", "market1501", "--root", str(c.tmp / "gone")],
        r"^Error: .*gone",
    ),
    Case(
        "bench results folder is a file",
        False,
        lambda c: [
            "bench-reid",
            "--dataset",
            "synthetic",
            "--root",
            str(c.root),
            "--out",
            str(_write(c.tmp / "f.txt", "x")),
        ],  # fmt: skip
        r"^Error: .*f\.txt",
    ),
    Case(
        "bench on a missing root",
        False,
        lambda c: [
            "bench-reid",
            "--dataset",
            "market1501",
            "--root",
            str(c.tmp / "gone"),
            "--out",
            str(c.tmp / "bench"),
        ],  # fmt: skip
        r"^Error: .*gone",
        "bench",
    ),
]


@pytest.fixture(scope="module")
def ctx(synth_root, tmp_path_factory) -> Ctx:
    base = tmp_path_factory.mktemp("campaign")
    run = train(tiny(synth_root, base / "runs", iters1=2, iters2=2))
    shards = base / "shards"
    synthesize(shards, run=run, poses=2, shard_size=64, batch_size=16, workers=0)
    warp = base / "warp"
    synthesize(warp, source="warp", dataset="synthetic", root=str(synth_root), real_per_id=2,
               poses=2, shard_size=64, batch_size=16, workers=0)  # fmt: skip
    return Ctx(synth_root, as_folder(synth_root, base / "folder", "names"), run, shards, warp, base)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case, ctx: Ctx, runner, tmp_path, monkeypatch):
    monkeypatch.delenv("REIDAUG_DATA", raising=False)
    c = Ctx(ctx.root, ctx.folder, ctx.run, ctx.shards, ctx.warp, tmp_path)
    args = case.args(c)
    r = runner.invoke(cli, ["--device", "cpu", *args])
    out = r.output
    assert "Traceback" not in out, out
    if case.ok:
        assert r.exit_code == 0 and re.search(case.expect, out, flags=re.M), out
        return
    assert r.exit_code != 0, out
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    lines = [ln for ln in out.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error:")]
    assert len(errors) == 1 and re.search(case.expect, errors[0]), out
    if case.writes:
        assert not (tmp_path / case.writes).exists(), f"{case.writes} was written"


def test_the_docs_table_lists_every_case():
    text = (REPO / "docs" / "failures.md").read_text()
    table = text.split("## The campaign", 1)[1]
    named = set(re.findall(r"^\| ([^|]+?) \|", table, flags=re.M)) - {"case", "---"}
    assert named == {c.name for c in CASES}
    assert sum(c.new for c in CASES) + 24 >= 60 and sum(not c.new for c in CASES) >= 20

"""``reidaug demo`` at its smallest settings: every artefact exists, the summary has every row."""

import json

import pytest

from reidaug.cli import cli

ROWS = [
    "SSIM",
    "mask-SSIM",
    "Laplacian var. / real",
    "HF energy / real",
    "idp Rank-1",
    "idp mAP",
    "re-ID mAP",
    "re-ID Rank-1",
]


@pytest.mark.slow
def test_demo_smallest_settings(runner, tmp_path):
    out = tmp_path / "demo"
    r = runner.invoke(
        cli,
        [
            "demo",
            "--out",
            str(out),
            "--ids",
            "6",
            "--iters1",
            "20",
            "--iters2",
            "10",
            "--poses",
            "1",
            "--reid-epochs",
            "1",
            "--test-pairs",
            "16",
        ],
    )
    assert r.exit_code == 0, r.output
    for i in range(1, 6):
        assert f"[{i}/5]" in r.stderr  # each step says what it does
    for row in ROWS:
        assert row in r.stderr, row
    run = next((out / "runs").iterdir())
    for path in [
        out / "data" / "info.json",
        run / "curves.png",
        run / "training_options.json",
        out / "shards" / "manifest.json",
        out / "shards" / "shard-00000.h5",
        out / "bench-reid" / "report.json",
        out / "bench-reid" / "report.md",
        out / "bench-reid" / "cmc.png",
        out / "bench-reid" / "baseline-seed1.pt",
        out / "summary.json",
        out / "summary.md",
        out / "samples.png",
    ]:
        assert path.is_file() and path.stat().st_size > 0, path
    assert list((run / "samples").glob("step-*.png")) and list(
        (run / "checkpoints").glob("step-*.pt")
    )
    summary = json.loads((out / "summary.json").read_text())
    assert [row["row"] for row in summary["rows"]] == ROWS
    quality = {row["row"]: row for row in summary["rows"] if "G1" in row}
    assert (
        quality["SSIM"]["real target"] == 1.0
        and quality["Laplacian var. / real"]["real target"] == 1.0
    )
    assert summary["synthetic_images"] == summary["dataset"]["train_images"]  # one pose each
    md = (out / "summary.md").read_text()
    assert all(row in md for row in ROWS)

    # a second demo of another size into the same folder never overwrites the first's dataset
    before = (out / "data" / "info.json").read_bytes()
    r = runner.invoke(cli, ["demo", "--out", str(out), "--ids", "7"])
    assert r.exit_code != 0 and "holds another dataset" in r.stderr.strip().splitlines()[-1]
    assert (out / "data" / "info.json").read_bytes() == before
    # a file as --out is one clear error
    bad = tmp_path / "file"
    bad.write_text("x")
    r = runner.invoke(cli, ["demo", "--out", str(bad)])
    assert r.exit_code != 0 and r.stderr.strip().splitlines()[-1].startswith("Error:")
    assert bad.read_text() == "x"

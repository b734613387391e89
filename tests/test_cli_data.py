"""CLI tests for `reidaug data`: exact Error lines, exit codes, no tracebacks."""

import shutil

import pytest

from reidaug import __version__
from reidaug.cli import cli


def run(runner, *args):
    result = runner.invoke(cli, list(args))
    assert "Traceback" not in result.output
    return result


def test_version_and_help(runner):
    r = run(runner, "--version")
    assert r.exit_code == 0 and __version__ in r.output
    r = run(runner, "data", "--help")
    assert r.exit_code == 0 and "check" in r.output and "make-synthetic" in r.output


def test_check_on_embedded_dataset(runner, synth_root):
    r = run(runner, "data", "check", "--dataset", "synthetic", "--root", str(synth_root))
    assert r.exit_code == 0, r.output
    assert "valid train pairs:" in r.stdout and "test pairs: 120" in r.stdout


def test_pairs_command_writes_csv(runner, synth_root, tmp_path):
    out = tmp_path / "p.csv"
    r = run(
        runner,
        "data",
        "pairs",
        "--dataset",
        "synthetic",
        "--root",
        str(synth_root),
        "--split",
        "test",
        "--protocol",
        "pg2",
        "--num",
        "30",
        "--out",
        str(out),
    )
    assert r.exit_code == 0, r.output
    lines = out.read_text().splitlines()
    assert lines[0] == "from,to" and len(lines) == 31


def test_make_synthetic_refuses_a_non_empty_folder(runner, tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    r = run(runner, "data", "make-synthetic", "--out", str(tmp_path / "x"), "--ids", "2")
    assert r.exit_code == 1
    assert (
        r.stderr.strip().splitlines()[-1]
        == f"Error: output folder exists and is not empty: {tmp_path / 'x'}"
    )
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"


@pytest.fixture()
def broken(tmp_path, synth_root):
    root = tmp_path / "m"
    shutil.copytree(synth_root, root)
    return root


def last_line(r):
    return r.stderr.strip().splitlines()[-1]


def test_wrong_root(runner, tmp_path):
    r = run(runner, "data", "check", "--dataset", "synthetic", "--root", str(tmp_path / "nope"))
    assert r.exit_code == 1
    assert last_line(r) == f"Error: dataset root not found: {tmp_path / 'nope'}"


def test_empty_split(runner, broken):
    for f in (broken / "bounding_box_train").iterdir():
        f.unlink()
    r = run(runner, "data", "check", "--dataset", "synthetic", "--root", str(broken))
    assert r.exit_code == 1
    assert last_line(r) == f"Error: no .jpg images in train folder: {broken / 'bounding_box_train'}"


def test_corrupt_jpeg(runner, broken):
    victim = sorted((broken / "query").glob("*.jpg"))[2]
    victim.write_bytes(victim.read_bytes()[:200])
    r = run(runner, "data", "check", "--dataset", "synthetic", "--root", str(broken))
    assert r.exit_code == 1
    assert last_line(r) == f"Error: cannot decode image {victim} (corrupt or not an image)"


def test_malformed_csv_row(runner, broken):
    csv = broken / "annotations" / "market-annotation-train.csv"
    lines = csv.read_text().splitlines()
    lines[4] = lines[4].replace(":", ";", 1)
    csv.write_text("\n".join(lines) + "\n")
    r = run(runner, "data", "check", "--dataset", "synthetic", "--root", str(broken), "--quick")
    assert r.exit_code == 1
    assert last_line(r) == (
        f"Error: malformed annotation row at {csv}:5: expected 'NAME: [18 ys]: [18 xs]'"
    )


def test_unexpected_error_is_one_line_with_a_hint(runner, monkeypatch, synth_root):
    def boom(*a, **k):
        raise RuntimeError("kaboom\nsecond line")

    monkeypatch.setattr("reidaug.data.check.check_dataset", boom)  # what the command imports
    monkeypatch.delenv("REIDAUG_DEBUG", raising=False)
    r = run(runner, "data", "check", "--dataset", "synthetic", "--root", str(synth_root))
    assert r.exit_code == 1
    assert r.stderr.strip().splitlines()[-2:] == [
        "Error: unexpected RuntimeError: kaboom",
        "Hint: rerun with REIDAUG_DEBUG=1 to see the traceback, and report it.",
    ]


@pytest.mark.realdata
def test_check_on_real_market(runner, real_market):
    r = run(runner, "data", "check", "--root", str(real_market), "--quick")
    assert r.exit_code == 0, r.output
    assert "valid train pairs: 263632" in r.stdout
    assert "test pairs: 12000" in r.stdout
    assert "12116 (745)" in r.stderr


def test_check_counts_poses_outside_the_image_and_pairs_naming_missing_images(runner, broken):
    csv = broken / "annotations" / "market-annotation-train.csv"
    lines = csv.read_text().splitlines()
    name = lines[3].split(":")[0]
    head, ys, xs = lines[3].split(": ")
    ys, xs = ys.strip("[]").split(", "), xs.strip("[]").split(", ")
    ys[1], xs[1] = "500", "10"  # the neck, far below the image
    lines[3] = f"{head}: [{', '.join(ys)}]: [{', '.join(xs)}]"
    csv.write_text("\n".join(lines) + "\n")
    pairs = broken / "annotations" / "market-pairs-test.csv"
    pairs.write_text(pairs.read_text() + "0001_c1s1_999999_01.jpg,0001_c2s1_999999_01.jpg\n")
    r = run(runner, "data", "check", "--dataset", "synthetic", "--root", str(broken), "--quick")
    assert r.exit_code == 0, r.output
    assert (
        f"warning: 1 train poses have keypoints outside the 128x64 image (first: {name})"
        in r.stderr
    )
    assert (
        "warning: 1 of 121 test pairs name images that do not exist "
        "(first: 0001_c1s1_999999_01.jpg,0001_c2s1_999999_01.jpg)"
    ) in r.stderr


def test_a_coordinate_too_large_for_an_integer_is_one_error(runner, broken):
    csv = broken / "annotations" / "market-annotation-train.csv"
    lines = csv.read_text().splitlines()
    head, ys, xs = lines[3].split(": ")
    lines[3] = f"{head}: [{'9' * 30}, {ys.strip('[]').split(', ', 1)[1]}]: {xs}"
    csv.write_text("\n".join(lines) + "\n")
    r = run(runner, "data", "check", "--dataset", "synthetic", "--root", str(broken), "--quick")
    assert r.exit_code == 1
    assert last_line(r) == (
        f"Error: annotation row at {csv}:4: coordinate {'9' * 30} is out of range (|value| <= "
        "1000000)"
    )

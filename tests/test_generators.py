"""Generator options: additive skips, presets, the identity loss, and what a resume may change."""

import json

import pytest
import torch

from reidaug.cli import cli
from reidaug.config import PRESETS, TrainConfig
from reidaug.data import SyntheticMarket
from reidaug.models import build
from reidaug.reidnet import adapter
from reidaug.reidnet import model as reid_model
from reidaug.reidnet.identity import IdentityLoss, load_identity
from reidaug.training import build_recipe, load_generator, train
from reidaug.training import checkpoint as C
from tests.helpers import tiny


@pytest.mark.parametrize("model", ["pg2", "mscgan"])
def test_additive_skips_add_encoder_features_and_cost_less(model):
    concat, add = build(model, width=8), build(model, width=8, skip="add")
    x = torch.randn(2, 21, 128, 64)
    assert add["G1"](x).shape == concat["G1"](x).shape == (2, 3, 128, 64)
    assert add["G2"](torch.randn(2, 6, 128, 64)).shape == (2, 3, 128, 64)
    g = add["G1"]
    # every decoder block keeps its level's encoder width: nothing is concatenated
    assert [b.conv1[0].in_channels for b in g.dec] == g.channels[::-1]
    n = {k: sum(p.numel() for p in v["G1"].parameters()) for k, v in (("c", concat), ("a", add))}
    if model == "pg2":
        assert n["a"] < n["c"]
    # the skip is really used: perturbing only what one level's skip carries into the decoder
    # (the encoder path below it is untouched) changes the output
    torch.manual_seed(0)
    y0 = g(x)
    join, level_hw = g._join, (64, 32)  # the second encoder level's maps

    def perturbed(h, skip):
        return join(h, skip + 1.0 if tuple(skip.shape[-2:]) == level_hw else skip)

    g._join = perturbed
    assert not torch.allclose(g(x), y0)
    g._join = join
    torch.testing.assert_close(g(x), y0)


def test_the_cpu_preset_and_flags_on_top(runner, synth_root, tmp_path):
    r = runner.invoke(
        cli,
        [
            "train",
            "--dataset",
            "synthetic",
            "--root",
            str(synth_root),
            "--preset",
            "cpu",
            "--width",
            "4",
            "--iters",
            "2",
            "--workers",
            "0",
            "--norm",
            "none",
            "--out",
            str(tmp_path),
        ],
    )
    assert r.exit_code == 0, r.output
    cfg = TrainConfig.load(next(tmp_path.iterdir()) / "training_options.json")
    assert (cfg.preset, cfg.skip, cfg.lr, cfg.batch_size) == ("cpu", "add", 5e-4, 16)
    assert cfg.d_width == 16
    assert (cfg.upsample, cfg.lr_decay, cfg.beta1, cfg.beta2) == ("nearest-1x1", 0.5, 0.5, 0.999)
    # flags given win over the preset
    assert (cfg.width, cfg.iters1, cfg.iters2, cfg.norm) == (4, 2, 2, "none")
    assert TrainConfig.from_preset("cpu").norm == "batch"
    paper = TrainConfig.from_preset("paper")
    assert (paper.skip, paper.width, paper.lr) == ("concat", 128, None)  # None: PG2's 2e-5
    assert set(PRESETS) == {"paper", "cpu"}
    r = runner.invoke(cli, ["train", "--dataset", "synthetic", "--preset", "fast"])
    assert r.exit_code == 2 and "'fast' is not one of 'cpu', 'paper'" in r.stderr


def _reid_checkpoint(path, num_classes, dataset="synthetic"):
    torch.manual_seed(0)
    net = adapter.build_model("osnet_x0_25", num_classes)
    reid_model.save(
        net,
        path,
        name="osnet_x0_25",
        height=128,
        width=64,
        num_classes=num_classes,
        dataset=dataset,
        recipe={},
    )
    return path


def test_identity_loss_is_a_frozen_cosine_distance(synth_root, tmp_path):
    ds = SyntheticMarket(synth_root)
    loss = load_identity(
        _reid_checkpoint(tmp_path / "id.pt", ds.num_train_ids), "synthetic", ds.num_train_ids
    )
    loss.train()
    assert not loss.net.training  # batch-norm statistics stay frozen
    a, b = torch.rand(2, 3, 128, 64) * 2 - 1, torch.rand(2, 3, 128, 64) * 2 - 1
    assert loss(a, a).item() == pytest.approx(0, abs=1e-5)
    fake = b.clone().requires_grad_(True)
    value = loss(fake, a)
    fa, fb = loss.embed(a), loss.embed(b)
    expect = (1 - torch.nn.functional.cosine_similarity(fa, fb)).mean()
    assert value.item() == pytest.approx(expect.item(), rel=1e-5) and value.item() > 0
    value.backward()
    assert fake.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.net.parameters())
    with pytest.raises(Exception, match="trained on market1501"):
        load_identity(
            _reid_checkpoint(tmp_path / "m.pt", ds.num_train_ids, "market1501"),
            "synthetic",
            ds.num_train_ids,
        )


@pytest.mark.parametrize("model", ["pg2", "mscgan"])
def test_identity_loss_trains_every_generator_stage(synth_root, tmp_path, model):
    ds = SyntheticMarket(synth_root)
    ck = _reid_checkpoint(tmp_path / "id.pt", ds.num_train_ids)
    identity = load_identity(ck, "synthetic", ds.num_train_ids)
    runs = {}
    for lam in (0.0, 5.0):
        cfg = tiny(
            synth_root,
            tmp_path / str(lam),
            model=model,
            iters1=2,
            iters2=2,
            lambda_id=lam,
            id_checkpoint=str(ck),
        )
        runs[lam] = train(cfg, identity=identity if lam else None)
    stats = [json.loads(x) for x in (runs[5.0] / "stats.jsonl").read_text().splitlines()]
    assert {s["stage"] for s in stats if "loss_id" in s["losses"]} == {"1", "2"}
    assert all(s["losses"]["loss_id"] > 0 for s in stats)
    assert all(
        "loss_id" not in s["losses"]
        for s in (json.loads(x) for x in (runs[0.0] / "stats.jsonl").read_text().splitlines())
    )
    # same seed, same batches: only the identity term tells the generators apart
    a, b = (C.load(C.latest(r))["nets"] for r in (runs[0.0], runs[5.0]))
    for net in ("G1", "G2"):
        assert any(not torch.equal(a[net][k], b[net][k]) for k in a[net]), net


@pytest.mark.parametrize("model", ["pg2", "mscgan"])
def test_ssim_loss_trains_every_generator_stage(synth_root, tmp_path, model):
    runs = {
        lam: train(
            tiny(synth_root, tmp_path / str(lam), model=model, iters1=2, iters2=2, lambda_ssim=lam)
        )
        for lam in (0.0, 2.0)
    }
    stats = [json.loads(x) for x in (runs[2.0] / "stats.jsonl").read_text().splitlines()]
    assert {s["stage"] for s in stats if "loss_ssim" in s["losses"]} == {"1", "2"}
    assert all(0 < s["losses"]["loss_ssim"] <= 4 for s in stats)  # 2 * (1 - SSIM), SSIM in [-1, 1)
    assert all(
        "loss_ssim" not in s["losses"]
        for s in (json.loads(x) for x in (runs[0.0] / "stats.jsonl").read_text().splitlines())
    )
    a, b = (C.load(C.latest(r))["nets"] for r in (runs[0.0], runs[2.0]))
    for net in ("G1", "G2"):
        assert any(not torch.equal(a[net][k], b[net][k]) for k in a[net]), net


def test_identity_loss_without_a_network_is_refused(runner, synth_root, tmp_path):
    cfg = tiny(synth_root, tmp_path, lambda_id=1.0)
    with pytest.raises(Exception, match="--lambda-id needs an identity network"):
        recipe = build_recipe(cfg, torch.device("cpu"), None)
        recipe.with_aux_losses(torch.zeros(()), torch.zeros(1), torch.zeros(1))
    r = runner.invoke(
        cli,
        [
            "train",
            "--dataset",
            "synthetic",
            "--root",
            str(synth_root),
            "--lambda-id",
            "1",
            "--id-checkpoint",
            str(tmp_path / "none.pt"),
            "--out",
            str(tmp_path),
        ],
    )
    assert r.exit_code == 1
    assert r.stderr.strip().splitlines()[-1] == (
        f"Error: identity network checkpoint not found: {tmp_path / 'none.pt'}"
    )


def test_the_cli_records_the_identity_network(runner, synth_root, tmp_path):
    ds = SyntheticMarket(synth_root)
    ck = _reid_checkpoint(tmp_path / "id.pt", ds.num_train_ids)
    r = runner.invoke(
        cli,
        [
            "train",
            "--dataset",
            "synthetic",
            "--root",
            str(synth_root),
            "--width",
            "4",
            "--iters",
            "1",
            "--batch-size",
            "2",
            "--workers",
            "0",
            "--lambda-id",
            "0.5",
            "--id-checkpoint",
            str(ck),
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert r.exit_code == 0, r.output
    cfg = TrainConfig.load(next((tmp_path / "r").iterdir()) / "training_options.json")
    assert cfg.lambda_id == 0.5 and cfg.id_checkpoint == str(ck.resolve())
    assert len(cfg.id_checkpoint_sha256) == 64


def test_a_resume_keeps_saved_options_changes_only_given_flags_and_records_them(
    runner, synth_root, tmp_path
):
    def invoke(*args):
        r = runner.invoke(cli, ["train", *args])
        assert "Traceback" not in r.output
        return r

    r = invoke(
        "--dataset",
        "synthetic",
        "--root",
        str(synth_root),
        "--width",
        "4",
        "--d-width",
        "4",
        "--iters",
        "3",
        "--batch-size",
        "2",
        "--workers",
        "0",
        "--log-every",
        "1",
        "--checkpoint-every",
        "1",
        "--out",
        str(tmp_path),
    )
    assert r.exit_code == 0, r.output
    run = next(tmp_path.iterdir())
    # no flags: the finished 3+3 run stays finished (not the 22000 + 14000 defaults)
    assert invoke("--resume", str(run), "--workers", "0").exit_code == 0
    assert C.load(C.latest(run))["global_step"] == 6
    cfg = TrainConfig.load(run / "training_options.json")
    assert (cfg.iters1, cfg.iters2, cfg.log_every, cfg.checkpoint_every) == (3, 3, 1, 1)
    for flags, name in (
        (["--width", "8"], "width"),
        (["--batch-size", "4"], "batch_size"),
        (["--model", "mscgan"], "model"),
        (["--dataset", "market1501"], "dataset"),
        (["--skip", "add"], "skip"),
    ):
        r = invoke("--resume", str(run), *flags)
        assert r.exit_code == 1, flags
        assert "training" not in r.output  # no progress bar line is left before the Error
        assert (
            r.stderr.strip()
            .splitlines()[-1]
            .startswith(
                f"Error: --{name.replace('_', '-')} cannot change when a run is resumed ({run} "
                f"has {name} = "
            )
        )
    r = invoke("--resume", str(run), "--out", str(tmp_path / "x"))
    assert r.exit_code == 2 and "--out cannot be used with --resume" in r.stderr
    assert TrainConfig.load(run / "training_options.json") == cfg  # refusals change nothing
    r = invoke("--resume", str(run), "--iters2", "5", "--lr", "1e-4", "--workers", "0")
    assert r.exit_code == 0, r.output
    cfg = TrainConfig.load(run / "training_options.json")
    assert (cfg.iters2, cfg.lr) == (5, 1e-4)
    assert cfg.changes == [
        {"step": 6, "option": "iters2", "from": 3, "to": 5},
        {"step": 6, "option": "lr", "from": None, "to": 1e-4},
    ]
    gen = load_generator(run, optimizers=True)
    assert gen.step == 8 and gen.config.changes == cfg.changes
    rec = gen.recipe
    assert all(g["lr"] == 1e-4 for o in rec.opts.values() for g in o.param_groups)


def test_identity_loss_resizes_to_the_network_input():
    torch.manual_seed(0)
    loss = IdentityLoss(adapter.build_model("osnet_x0_25", 5), 256, 128)
    a = torch.rand(1, 3, 128, 64) * 2 - 1
    big = torch.nn.functional.interpolate(a, size=(256, 128), mode="bilinear", align_corners=False)
    torch.testing.assert_close(loss.embed(a), loss.embed(big))


def test_evaluate_warns_when_the_judge_is_the_identity_network(synth_root, tmp_path):
    from reidaug.metrics import evaluate
    from reidaug.weights import file_sha256

    ds = SyntheticMarket(synth_root)
    ck = _reid_checkpoint(tmp_path / "id.pt", ds.num_train_ids)
    other = tmp_path / "other.pt"
    torch.manual_seed(1)
    reid_model.save(
        adapter.build_model("osnet_x0_25", ds.num_train_ids),
        other,
        name="osnet_x0_25",
        height=128,
        width=64,
        num_classes=ds.num_train_ids,
        dataset="synthetic",
        recipe={},
    )
    cfg = tiny(
        synth_root,
        tmp_path / "r",
        iters1=1,
        iters2=1,
        lambda_id=1.0,
        id_checkpoint=str(ck),
        id_checkpoint_sha256=file_sha256(ck),
    )
    run = train(cfg, identity=load_identity(ck, "synthetic", ds.num_train_ids))
    for judge, warned in ((ck, True), (other, False)):
        said = []
        evaluate(
            run=run,
            protocols=["posegan"],
            metrics=["idp"],
            limit=8,
            device="cpu",
            reid_checkpoint=judge,
            log=said.append,
        )
        assert (
            any("is the identity network this generator was trained against" in s for s in said)
            == warned
        )


def test_the_loader_takes_no_core_from_a_cpu_training_unless_asked(
    synth_root, tmp_path, monkeypatch
):
    from reidaug.training import loop

    seen = []

    class Recording(loop.DataLoader):
        def __init__(self, *a, **kw):
            seen.append(kw["num_workers"])
            super().__init__(*a, **kw)

    monkeypatch.setattr(loop, "DataLoader", Recording)
    for workers in (None, 1):
        cfg = tiny(
            synth_root, tmp_path / str(workers), workers=workers, variant="g1-posemask", iters1=1
        )
        train(cfg)
    assert seen == [0, 1]  # auto on a CPU, then the flag honoured
    assert loop.loader_workers(None, torch.device("cuda")) == 1
    assert TrainConfig().workers is None


def _kinds(net):
    return {type(m).__name__ for m in net.modules()}


@pytest.mark.parametrize("model", ["pg2", "mscgan"])
def test_generators_take_elu_and_xavier_init_and_d_keeps_its_own(model):
    plain, tf = (
        build(model, width=8, skip="add"),
        build(model, width=8, skip="add", act="elu", init="xavier"),
    )
    for name in ("G1", "G2"):
        assert "ReLU" in _kinds(plain[name]) and "ELU" not in _kinds(plain[name])
        assert "ELU" in _kinds(tf[name]) and "ReLU" not in _kinds(tf[name])
        convs = [m for m in tf[name].modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
        for m in convs:  # Glorot-uniform: within the bound, spread like it, zero biases
            fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(m.weight)
            bound = (6 / (fan_in + fan_out)) ** 0.5
            if m is tf[name].conv_out[0] and name == "G2":
                assert m.weight.abs().max() == 0  # the difference map still starts at zero
                continue
            assert m.weight.abs().max() <= bound and m.bias.abs().max() == 0
            if m.weight.numel() >= 1000:
                assert m.weight.std().item() == pytest.approx(bound / 3**0.5, rel=0.15)
        assert any(
            m.bias.abs().max() > 0
            for m in plain[name].modules()
            if isinstance(m, torch.nn.Conv2d) and m.bias is not None
        )
    d = next(k for k in tf if k.startswith("D"))
    assert _kinds(tf[d]) == _kinds(plain[d]) and "LeakyReLU" in _kinds(tf[d])


def test_act_and_init_are_recorded_and_rebuilt(runner, synth_root, tmp_path):
    r = runner.invoke(
        cli,
        [
            "train",
            "--dataset",
            "synthetic",
            "--root",
            str(synth_root),
            "--preset",
            "cpu",
            "--width",
            "4",
            "--iters",
            "2",
            "--act",
            "elu",
            "--init",
            "xavier",
            "--out",
            str(tmp_path),
        ],
    )
    assert r.exit_code == 0, r.output
    run = next(tmp_path.iterdir())
    cfg = TrainConfig.load(run / "training_options.json")
    assert (cfg.act, cfg.init) == ("elu", "xavier")
    assert "ELU" in _kinds(load_generator(run).recipe.nets["G1"])
    old = json.loads((run / "training_options.json").read_text())
    del old["act"], old["init"]  # a run from before the options: ReLU and PyTorch's init
    assert (TrainConfig.from_dict(old).act, TrainConfig.from_dict(old).init) == ("relu", "torch")
    r = runner.invoke(cli, ["train", "--resume", str(run), "--act", "relu"])
    assert r.exit_code != 0 and "Error: --act cannot change when a run is resumed" in r.output
    bad = json.loads((run / "training_options.json").read_text()) | {"act": "gelu"}
    (run / "training_options.json").write_text(json.dumps(bad))  # a hand-edited file
    r = runner.invoke(cli, ["train", "--resume", str(run)])
    assert r.exit_code == 1
    assert r.output.strip() == 'Error: training option act is "gelu"; expected one of: relu, elu'


@pytest.mark.parametrize("model", ["pg2", "mscgan"])
@pytest.mark.parametrize(
    ("norm", "layer"), [("batch", "BatchNorm2d"), ("instance", "InstanceNorm2d")]
)
def test_norm_sits_between_every_generator_conv_and_its_activation(model, norm, layer):
    plain, normed = build(model, width=8, skip="add"), build(model, width=8, skip="add", norm=norm)
    for name in ("G1", "G2"):
        assert not _kinds(plain[name]) & {"BatchNorm2d", "InstanceNorm2d"}
        seqs = [m for m in normed[name].modules() if isinstance(m, torch.nn.Sequential)]
        acts = [(s, i) for s in seqs for i, m in enumerate(s) if isinstance(m, torch.nn.ReLU)]
        assert acts and all(type(s[i - 1]).__name__ == layer for s, i in acts)
        n_norm = sum(type(m).__name__ == layer for m in normed[name].modules())
        assert n_norm == len(acts)  # one per activation, none on the output conv or the FCs
        assert len(normed[name].conv_out) == 1
        net = normed[name].eval()  # running statistics: each image is generated on its own
        x = torch.randn(3, net.conv_in[0].in_channels, 128, 64)
        with torch.no_grad():
            assert torch.allclose(net(x)[:1], net(x[:1]), atol=1e-5)
    d = next(k for k in normed if k.startswith("D"))
    assert _kinds(normed[d]) == _kinds(plain[d])


def test_batch_norm_is_recorded_rebuilt_and_left_alone_by_sample_grids(
    runner, synth_root, tmp_path
):
    r = runner.invoke(
        cli,
        [
            "train",
            "--dataset",
            "synthetic",
            "--root",
            str(synth_root),
            "--preset",
            "cpu",
            "--width",
            "4",
            "--iters",
            "2",
            "--norm",
            "batch",
            "--sample-every",
            "1",
            "--out",
            str(tmp_path),
        ],
    )
    assert r.exit_code == 0, r.output
    run = next(tmp_path.iterdir())
    assert TrainConfig.load(run / "training_options.json").norm == "batch"
    rec = load_generator(run).recipe
    bn = [m for m in rec.nets["G1"].modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bn and not rec.nets["G1"].training
    # the trained statistics came back: two training batches; the grids drawn after each step
    # (of held-out pairs) neither used nor counted
    assert (run / "samples" / "step-0000002.png").is_file()
    assert all(m.num_batches_tracked.item() == 2 for m in bn)
    r = runner.invoke(cli, ["train", "--resume", str(run), "--norm", "none"])
    assert r.exit_code != 0 and "Error: --norm cannot change when a run is resumed" in r.output
    # a sample grid during training runs in eval mode and restores each network's mode
    rec.nets["G1"].train()
    before = [m.running_mean.clone() for m in bn]
    with rec.evaluating():
        assert not rec.nets["G1"].training
        rec.generate(torch.randn(2, 3, 128, 64), torch.randn(2, 18, 128, 64))
    assert rec.nets["G1"].training and not rec.nets["G2"].training
    assert all(torch.equal(m.running_mean, b) for m, b in zip(bn, before, strict=True))


@pytest.mark.parametrize("model", ["pg2", "mscgan"])
def test_upsample_nearest_1x1_replaces_every_decoder_upsampling_conv(model):
    paper = build(model, width=8, skip="add")
    cheap = build(model, width=8, skip="add", upsample="nearest-1x1")
    for name in ("G1", "G2"):
        ups = [u for u in cheap[name].up]
        assert ups and all(u.mode == "nearest" and u.conv[0].kernel_size == (1, 1) for u in ups)
        paper_convs = [u.conv[0] for u in paper[name].up]
        assert all(c.kernel_size != (1, 1) for c in paper_convs)
        assert [u.conv[0].out_channels for u in ups] == [c.out_channels for c in paper_convs]
        n_paper = sum(p.numel() for p in paper[name].parameters())
        assert sum(p.numel() for p in cheap[name].parameters()) < n_paper
        x = torch.randn(2, cheap[name].conv_in[0].in_channels, 128, 64)
        with torch.no_grad():
            assert cheap[name](x).shape == (2, 3, 128, 64)
    d = next(k for k in cheap if k.startswith("D"))
    assert _kinds(cheap[d]) == _kinds(paper[d])


def test_upsample_is_recorded_rebuilt_and_fixed_on_resume(runner, synth_root, tmp_path):
    r = runner.invoke(
        cli,
        [
            "train",
            "--dataset",
            "synthetic",
            "--root",
            str(synth_root),
            "--preset",
            "cpu",
            "--width",
            "4",
            "--iters",
            "1",
            "--upsample",
            "nearest-1x1",
            "--out",
            str(tmp_path),
        ],
    )
    assert r.exit_code == 0, r.output
    run = next(tmp_path.iterdir())
    assert TrainConfig.load(run / "training_options.json").upsample == "nearest-1x1"
    g1 = load_generator(run).recipe.nets["G1"]
    assert all(u.conv[0].kernel_size == (1, 1) for u in g1.up)
    old = json.loads((run / "training_options.json").read_text())
    del old["upsample"]  # a run from before the option: the paper's upsampling
    assert TrainConfig.from_dict(old).upsample == "paper"
    r = runner.invoke(cli, ["train", "--resume", str(run), "--upsample", "paper"])
    assert r.exit_code != 0 and "Error: --upsample cannot change when a run is resumed" in r.output


def test_lambda_adv_zero_trains_g2_on_the_pose_mask_l1_alone(synth_root, tmp_path):
    runs = {
        lam: train(tiny(synth_root, tmp_path / str(lam), iters1=2, iters2=3, lambda_adv=lam))
        for lam in (None, 0.0)
    }
    rows = {
        lam: [json.loads(x) for x in (r / "stats.jsonl").read_text().splitlines()]
        for lam, r in runs.items()
    }
    assert all("loss_D" in s["losses"] for s in rows[None] if s["stage"] == "2")
    stage2 = [s["losses"] for s in rows[0.0] if s["stage"] == "2"]
    assert len(stage2) == 3 and all(set(s) == {"loss_G2", "l1"} for s in stage2)
    # same seed and batches: only stage 2's objective tells the two runs apart
    first = C.load(sorted((runs[0.0] / "checkpoints").glob("step-*.pt"))[0])
    last, paper = C.load(C.latest(runs[0.0]))["nets"], C.load(C.latest(runs[None]))["nets"]
    for k, v in last["D"].items():  # D is never stepped
        assert torch.equal(v, first["nets"]["D"][k]), k
    assert any(not torch.equal(paper["D"][k], v) for k, v in last["D"].items())
    assert any(not torch.equal(paper["G2"][k], v) for k, v in last["G2"].items())
    rec = load_generator(runs[0.0]).recipe
    assert rec.opt("lambda_adv") == 0.0 and load_generator(runs[None]).recipe.opt("lambda_adv") == 1


def test_a_loss_weight_the_objective_lacks_is_refused(runner, synth_root, tmp_path):
    def invoke(*args):
        r = runner.invoke(
            cli,
            [
                "train",
                "--dataset",
                "synthetic",
                "--root",
                str(synth_root),
                "--width",
                "4",
                "--iters",
                "1",
                "--batch-size",
                "2",
                "--workers",
                "0",
                "--out",
                str(tmp_path),
                *args,
            ],
        )
        assert "Traceback" not in r.output
        return r

    for args, want in (
        (
            ["--lambda-bg", "2"],
            "--lambda-bg does not apply to pg2 (variant full), whose loss "
            "weights are --lambda-l1, --lambda-adv",
        ),
        (
            ["--model", "mscgan", "--lambda-adv", "0"],
            "--lambda-adv does not apply to mscgan "
            "(variant full), whose loss weights are --lambda-l1, --lambda-bg, --lambda-d1, "
            "--lambda-d2",
        ),
        (
            ["--variant", "g1-posemask", "--lambda-l1", "5"],
            "--lambda-l1 does not apply to pg2 "
            "(variant g1-posemask), which has no loss weight to set",
        ),
    ):
        r = invoke(*args)
        assert r.exit_code == 1, args
        assert r.stderr.strip().splitlines()[-1] == f"Error: {want}"
    assert not list(tmp_path.iterdir())  # nothing is written for a refused run
    r = invoke("--lambda-adv", "-1")
    assert r.exit_code == 2 and "-1" in r.stderr
    assert invoke("--variant", "g1-d", "--lambda-adv", "0.5", "--lambda-l1", "5").exit_code == 0


def test_the_cli_takes_and_records_lambda_ssim(runner, synth_root, tmp_path):
    args = [
        "train",
        "--dataset",
        "synthetic",
        "--root",
        str(synth_root),
        "--width",
        "4",
        "--iters",
        "1",
        "--batch-size",
        "2",
        "--workers",
        "0",
        "--out",
        str(tmp_path / "r"),
    ]
    r = runner.invoke(cli, [*args, "--lambda-ssim", "0.5"])
    assert r.exit_code == 0, r.output
    run = next((tmp_path / "r").iterdir())
    assert TrainConfig.load(run / "training_options.json").lambda_ssim == 0.5
    r = runner.invoke(cli, ["train", "--resume", str(run), "--iters2", "2", "--lambda-ssim", "1"])
    assert r.exit_code == 0, r.output
    cfg = TrainConfig.load(run / "training_options.json")
    assert cfg.lambda_ssim == 1.0
    assert {"option": "lambda_ssim", "from": 0.5, "to": 1.0}.items() <= cfg.changes[-1].items()
    r = runner.invoke(cli, [*args, "--lambda-ssim", "-1"])
    assert r.exit_code == 2 and "--lambda-ssim" in r.stderr

"""Configs are validated when constructed, from Python, JSON or the CLI alike."""

import json

import pytest

from reidaug.config import GeneratorShape, TrainConfig
from reidaug.errors import UserError
from reidaug.models import build


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("width", "abc", "training option width is 'abc'; expected an integer"),
        ("batch_size", 0, "training option batch_size is 0; expected 1 or more"),
        ("checkpoint_every", 0, "training option checkpoint_every is 0; expected 1 or more"),
        ("lr", "fast", "training option lr is 'fast'; expected a number or null"),
        ("iters1", -5, "training option iters1 is -5; expected 1 or more"),
        ("lambda_l1", -5, "training option lambda_l1 is -5; expected 0 or more"),
        ("flip", "yes", "training option flip is 'yes'; expected true or false"),
        ("skip", "sum", 'training option skip is "sum"; expected one of: concat, add, deform'),
    ],
)
def test_a_bad_training_option_is_named_from_python_and_json(tmp_path, field, value, message):
    with pytest.raises(UserError) as e:
        TrainConfig(**{field: value})
    assert str(e.value) == message
    path = tmp_path / "training_options.json"
    path.write_text(json.dumps({**json.loads(TrainConfig().to_json()), field: value}))
    with pytest.raises(UserError) as e:
        TrainConfig.load(path)
    assert str(e.value) == message


def test_the_generator_shape_is_one_validated_object():
    cfg = TrainConfig.from_preset("cpu")
    assert cfg.shape == GeneratorShape("add", "relu", "torch", "batch", "nearest-1x1")
    with pytest.raises(UserError, match='generator option norm is "layer"; expected one of'):
        GeneratorShape(norm="layer")
    with pytest.raises(UserError, match='generator option upsample is "bilinear"'):
        build("pg2", width=8, upsample="bilinear")  # not a bare ValueError from the blocks
    nets = build("pg2", width=8, shape=cfg.shape)
    assert [b.conv1[0].in_channels for b in nets["G1"].dec] == nets["G1"].channels[::-1]  # add


def test_older_options_files_with_an_extra_mapping_still_load(tmp_path):
    old = json.loads(TrainConfig().to_json())
    old["extra"] = {"id_checkpoint_sha256": "ab" * 32, "lambda_d3": 0.5}
    for k in ("id_checkpoint_sha256", "lambda_d3"):
        old.pop(k)
    (tmp_path / "o.json").write_text(json.dumps(old))
    cfg = TrainConfig.load(tmp_path / "o.json")
    assert cfg.id_checkpoint_sha256 == "ab" * 32 and cfg.lambda_d3 == 0.5


def test_presets_keep_their_value_for_an_override_of_none():
    assert TrainConfig.from_preset("cpu", lr=None).lr == 5e-4
    with pytest.raises(UserError, match='unknown preset "gpu"; expected one of: paper, cpu'):
        TrainConfig.from_preset("gpu")


def test_synthesis_takes_one_validated_config():
    from reidaug.config import SynthesisConfig

    cfg = SynthesisConfig(out="shards", run="runs/00000-pg2-market1501", poses=4)
    assert (cfg.poses, cfg.strategy, cfg.shard_size) == (4, "random", 2000)
    with pytest.raises(UserError, match="--poses must be at least 1, got 0"):
        SynthesisConfig(out="shards", poses=0)
    with pytest.raises(UserError, match='synthesis option strategy is "grid"; expected one of'):
        SynthesisConfig(out="shards", strategy="grid")

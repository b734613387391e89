"""Shared fixtures: the embedded dataset (made once for the whole tests package, which is one
test run) and the real Market root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from reidaug.data import make_synthetic

REPO = Path(__file__).resolve().parents[1]


def market_root() -> Path | None:
    root = Path(os.environ.get("REIDAUG_DATA", REPO.parent / "shared" / "data" / "market1501"))
    return root if (root / "annotations").is_dir() else None


@pytest.fixture(scope="package")
def real_market() -> Path:
    root = market_root()
    if root is None:
        pytest.skip("real Market-1501 not found (../shared/data/market1501 or REIDAUG_DATA)")
    return root


@pytest.fixture(scope="package")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small embedded dataset: 12 train ids, 12 test ids."""
    root = tmp_path_factory.mktemp("synth") / "market"
    make_synthetic(root, ids=12, seed=0, test_pairs=120)
    return root


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if market_root() is None:
        skip = pytest.mark.skip(reason="real Market-1501 not found")
        for item in items:
            if "realdata" in item.keywords:
                item.add_marker(skip)

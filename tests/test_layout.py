"""The package's shape: data flows one way, and the CLI is the only place for click and rich."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import reidaug

PKG = Path(reidaug.__file__).parent
#: The pipeline, in order: a module may import from its own stage and the stages before it.
#: Shared helpers (config, errors, device, weights, the version) may be imported anywhere.
ORDER = [
    "data",
    "models",
    "reidnet",  # the re-ID network: a component that training and metrics use
    "losses",
    "training",
    "synthesis",
    "metrics",
    "bench",  # the with/without experiment
    "demo",
    "cli",
    "__main__",
]
SHARED = {"config", "errors", "device", "weights", "atomic", "names", "lock", "progress", ""}


def _stage(module: str) -> str:
    """``reidaug.metrics.ssim`` -> ``metrics``; ``reidaug`` -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> list[str]:
    """Every ``reidaug`` module a file imports, at any depth (function-level imports too)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.split(".")[0] == "reidaug"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "reidaug":
            out.append(node.module)
    return out


def violations(pkg: Path = PKG) -> list[str]:
    bad = []
    for path in sorted(pkg.rglob("*.py")):
        rel = path.relative_to(pkg)
        own = rel.parts[0].removesuffix(".py")
        if own in SHARED or own == "__init__":
            continue
        for mod in _imports(path):
            stage = _stage(mod)
            if stage in SHARED or stage == own:
                continue
            if ORDER.index(stage) > ORDER.index(own):
                bad.append(f"{rel} imports {mod} ({stage} comes after {own})")
    return bad


def test_every_module_imports_only_from_earlier_pipeline_stages():
    """data -> models -> reidnet -> losses -> training -> synthesis -> metrics -> bench -> demo
    -> cli: in particular the re-ID network imports nothing of training, and metrics nothing of
    the bench."""
    assert violations() == []


def test_the_layout_check_sees_a_backward_import(tmp_path):
    """The check itself: a metrics module importing the bench, or the re-ID network importing
    training, is caught; the forward imports are not."""
    pkg = tmp_path / "reidaug"
    files = {
        "metrics/bad.py": "def f():\n    from reidaug.bench import run\n",
        "reidnet/bad.py": "from reidaug.training.loop import train\n",
        "bench/ok.py": "from reidaug.metrics import registry\n",
        "training/ok.py": "from reidaug.reidnet import identity\n",
    }
    for name, text in files.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
    assert violations(pkg) == [
        "metrics/bad.py imports reidaug.bench (bench comes after metrics)",
        "reidnet/bad.py imports reidaug.training.loop (training comes after reidnet)",
    ]


def test_no_click_or_rich_below_the_cli():
    bad = [
        f"{p.relative_to(PKG)} imports {m}"
        for p in sorted(PKG.rglob("*.py"))
        if p.relative_to(PKG).parts[0] not in ("cli", "__main__.py")
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for m in (
            [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        )
        if m.split(".")[0] in ("click", "rich")
    ]
    assert bad == []


def test_the_cli_loads_without_torch():
    """``reidaug --help`` and usage errors answer at once: loading the command tree imports
    neither torch nor torchreid (the commands import the library when they run)."""
    code = (
        "import sys, reidaug.cli; "
        "print(sorted(m for m in ('torch', 'torchreid', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_light_name_lists_match_the_registries():
    """The CLI's choices come from ``reidaug.names``; each must equal the registry it stands for."""
    from reidaug import names
    from reidaug.bench.config import ARMS
    from reidaug.data import DATASETS
    from reidaug.metrics import SCORERS
    from reidaug.reidnet.recipe import RECIPES as REID
    from reidaug.training import STEP_RECIPES

    assert set(names.DATASETS) == set(DATASETS)
    assert set(names.GENERATORS) == set(STEP_RECIPES)
    assert set(names.METRICS) == set(SCORERS)
    assert set(names.REID_RECIPES) == set(REID)
    assert names.ARMS == ARMS
    from typing import get_args

    from reidaug.config import Strategy, SynthesisSource

    assert get_args(Strategy) == names.STRATEGIES and get_args(SynthesisSource) == names.SOURCES


def test_the_code_is_linted_and_formatted():
    """``make lint`` as a test: ruff's checks pass and ``ruff format`` would change nothing."""
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.is_file():
        pytest.skip("ruff is not installed beside this Python (pip install -e '.[dev]')")
    root = PKG.parent
    dirs = ["reidaug", "tests", "benchmarks", "experiments"]
    check = subprocess.run([str(ruff), "check", *dirs], cwd=root, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout[-3000:]
    fmt = subprocess.run(
        [str(ruff), "format", "--check", *dirs], cwd=root, capture_output=True, text=True
    )
    assert fmt.returncode == 0, fmt.stdout[-3000:]

"""The package's shape: data flows one way, and the CLI is the only place for click and rich."""

import ast
from pathlib import Path

import reidaug

PKG = Path(reidaug.__file__).parent
#: The pipeline, in order: a module may import from its own stage and the stages before it.
#: Shared helpers (config, errors, device, weights, the version) may be imported anywhere.
ORDER = ["data", "models", "losses", "training", "synthesis", "metrics", "reid", "demo", "cli",
         "__main__"]  # fmt: skip
SHARED = {"config", "errors", "device", "weights", ""}


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
    """data -> models -> training -> synthesis -> metrics -> reid -> cli: in particular metrics
    imports nothing from reid (the idp scorer lives with the re-ID code)."""
    assert violations() == []


def test_the_layout_check_sees_a_backward_import(tmp_path):
    """The check itself: a metrics module importing reid is caught."""
    pkg = tmp_path / "reidaug"
    (pkg / "metrics").mkdir(parents=True)
    (pkg / "metrics" / "bad.py").write_text("def f():\n    from reidaug.reid import idp\n")
    (pkg / "reid").mkdir()
    (pkg / "reid" / "ok.py").write_text("from reidaug.metrics import registry\n")
    assert violations(pkg) == ["metrics/bad.py imports reidaug.reid (reid comes after metrics)"]


def test_no_click_or_rich_below_the_cli():
    bad = [
        f"{p.relative_to(PKG)} imports {m}"
        for p in sorted(PKG.rglob("*.py"))
        if p.relative_to(PKG).parts[0] not in ("cli", "__main__.py")
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for m in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""])
        if m.split(".")[0] in ("click", "rich")
    ]  # fmt: skip
    assert bad == []

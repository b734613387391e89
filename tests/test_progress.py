"""The progress contract: library loops report ``(done, total, label, **stats)``; the CLI
renders whatever it gets."""

import io

from rich.console import Console

from reidaug.cli.app import App
from reidaug.progress import relabel, render_stats


def test_stats_render_generically_with_rates_as_units():
    assert render_stats({"loss": 0.123456, "it_s": 2.3456}) == "loss 0.1235 | 2.346 it/s"
    assert render_stats({"epoch": "3/60", "images_s": 80.0}) == "epoch 3/60 | 80 images/s"
    assert render_stats({}) == ""


def test_relabel_keeps_the_stats_and_replaces_the_label():
    got = []
    inner = relabel(lambda *a, **kw: got.append((a, kw)), "re-ID model")
    inner(3, 9, "baseline seed 1", epoch="1/3", loss=0.5)
    assert got == [((3, 9, "re-ID model"), {"epoch": "1/3", "loss": 0.5})]
    assert relabel(None, "x") is None


def _shown(rows: bool, reports) -> str:
    app = App()
    app.console = Console(file=io.StringIO(), width=200, force_terminal=False)
    with app.progress("training", rows=rows) as update:
        for args, kw in reports:
            update(*args, **kw)
    return app.console.file.getvalue()


def test_the_cli_bar_shows_each_label_and_its_stats():
    text = _shown(
        True,
        [((1, 4, "baseline seed 1"), {"epoch": "1/2", "loss": 1.5}),
         ((2, 4, "augmented seed 1"), {"epoch": "1/2", "loss": 2.5})],
    )  # fmt: skip
    assert "baseline seed 1" in text and "augmented seed 1" in text
    assert "epoch 1/2 | loss 2.5" in text
    text = _shown(False, [((5, 10, "stage 1"), {"loss": 0.25, "it_s": 3.0})])
    assert "training" in text and "stage 1 | loss 0.25 | 3 it/s" in text

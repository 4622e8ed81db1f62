"""Server-drawn charts: Chinese labels render, a run's record decides what is drawn, and
charts drawn at once in several threads (the web app's) do not disturb each other."""

from __future__ import annotations

import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

from webapp import charts

REPORT = {"confusion": [[5, 1], [2, 4]], "labels": ["正面", "负面"]}


def _record(params: dict, metrics: dict, epochs: list[dict]) -> SimpleNamespace:
    """An experiment row as epochs_of reads it."""
    rows = [
        SimpleNamespace(epoch=e["epoch"], train_loss=e["train_loss"], val_loss=e["val_loss"], metrics=e["metrics"])
        for e in epochs
    ]
    return SimpleNamespace(name="run", params=params, metrics=metrics, epochs=rows)


def test_chinese_labels_render_with_a_cjk_font() -> None:
    assert charts.cjk_font() is not None, "no CJK font: install fonts-wqy-microhei (make fonts)"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        svg = charts.confusion(REPORT).decode()
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert missing == []
    assert "正面" in svg and "负面" in svg  # kept as text (svg.fonttype none), so a browser can select it
    families = re.findall(r"font-family: ([^;\"]+)", svg)
    assert families and all(charts.cjk_font() in f for f in families)


def _logistic_path() -> list[dict]:
    return [
        {"epoch": i, "train_loss": 0.5, "val_loss": 0.6 - 0.01 * i, "metrics": {"C": c, "f1": 0.7 + 0.01 * i}}
        for i, c in enumerate([0.01, 0.1, 1.0, 10.0])
    ]


def test_a_logistic_runs_record_says_which_c_it_chose() -> None:
    run = charts.epochs_of(_record({"kind": "logistic"}, {"C": 1.0, "balanced": False}, _logistic_path()))
    assert (run["kind"], run["chosen"]) == ("logistic", {"C": 1.0, "balanced": False})
    svg = charts.training(run).decode()
    assert "chosen C = 1" in svg and "CV loss, unweighted" in svg

    still_running = charts.epochs_of(_record({"kind": "logistic"}, {}, _logistic_path()))
    assert still_running["chosen"] is None
    assert "chosen C" not in charts.training(still_running).decode()


def test_each_kind_of_run_is_drawn_on_its_own_axes() -> None:
    mlp = charts.epochs_of(
        _record(
            {"kind": "mlp"},
            {},
            [{"epoch": i, "train_loss": 1 / i, "val_loss": 1.2 / i, "metrics": {"f1": 0.5}} for i in range(1, 4)],
        )
    )
    encoder = charts.epochs_of(
        _record(
            {"finetune": {"epochs": 1}},
            {},
            [{"epoch": 1, "train_loss": 0.3, "val_loss": 0.4, "metrics": {"step": s}} for s in (10, 20)],
        )
    )
    assert (mlp["kind"], encoder["kind"]) == ("mlp", "encoder")
    assert "val F1" in charts.training(mlp).decode()
    assert "encoder step" in charts.training(encoder).decode()
    both = charts.comparison([mlp, charts.epochs_of(_record({"kind": "logistic"}, {"C": 1.0}, _logistic_path()))])
    assert "chosen class weighting" in both.decode() and "epoch (encoder runs" in both.decode()


def test_nothing_to_draw_says_why() -> None:
    empty = charts.draw("confusion", {"confusion": [[0, 0], [0, 0]], "labels": ["a", "b"]}).decode()
    assert "no evaluation items" in empty


def test_charts_drawn_at_once_are_the_same_as_drawn_alone() -> None:
    """Each chart is its own Figure (no pyplot state), so threads need no lock."""
    run = charts.epochs_of(_record({"kind": "logistic"}, {"C": 0.1, "balanced": False}, _logistic_path()))
    alone = {"confusion": charts.confusion(REPORT), "training": charts.training(run)}
    jobs = [("confusion", REPORT), ("training", run)] * 12
    with ThreadPoolExecutor(max_workers=8) as pool:
        drawn = list(pool.map(lambda job: (job[0], charts.draw(*job)), jobs))
    assert all(svg == alone[name] for name, svg in drawn)


def test_a_font_installed_after_matplotlib_cached_its_list_is_found(monkeypatch) -> None:
    """``make fonts`` may run after matplotlib first cached the system's fonts."""
    from matplotlib import font_manager

    charts.cjk_font()
    cjk_files = {f.fname for f in font_manager.fontManager.ttflist if f.name in charts.FONTS[1:]}
    stale = [f for f in font_manager.fontManager.ttflist if f.fname not in cjk_files]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", stale)
    assert charts._known_cjk_font() is None
    charts._add_fonts_installed_since_the_cache()
    assert charts._known_cjk_font() is not None

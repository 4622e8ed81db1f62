"""Charts as SVG, drawn on the server with matplotlib (already a dependency; no CDN, no script).

Pages show them with ``<img src=".../x.svg">``: an SVG loaded as an image runs nothing and is
not bound by the page's style-src policy (matplotlib styles its marks inline). Each function
takes plain data (an evaluation report, a run's record, points) and returns the SVG bytes.

Built with matplotlib's object API, as its own web-server example does: each chart is a
``Figure`` of its own (no pyplot, whose global state needs a lock), and the style is set once,
on first use. The font list puts a CJK font after the Latin one, so Chinese labels render
(matplotlib falls back glyph by glyph) where such a font is installed, as on the platform's
images and CI (Debian's fonts-wqy-microhei, ``make fonts``, or fonts-noto-cjk).
"""

from __future__ import annotations

import functools
import io
import itertools
from collections.abc import Callable, Sequence
from typing import Any

from flask_babel import gettext as _t

INK, MUTED, GRID = "#1d2433", "#667085", "#e4e7ec"
PALETTE = ["#4f46e5", "#12805c", "#b54708", "#c01048", "#175cd3", "#7a5af8", "#0e9384", "#667085"]
# Latin first, then the CJK fonts a Debian or macOS or Windows machine may have.
FONTS = ["DejaVu Sans", "Noto Sans CJK SC", "WenQuanYi Micro Hei", "Source Han Sans SC", "Noto Sans SC",
         "PingFang SC", "Microsoft YaHei", "SimHei"]  # fmt: skip


@functools.cache
def _figure_class() -> Any:
    """matplotlib's ``Figure``, with the platform's style set once (text kept as text in the SVG)."""
    import matplotlib
    from matplotlib import font_manager
    from matplotlib.figure import Figure

    matplotlib.rcParams.update(
        {
            "font.size": 9,
            "axes.edgecolor": GRID,
            "axes.labelcolor": MUTED,
            "xtick.color": MUTED,
            "ytick.color": MUTED,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "svg.hashsalt": "labelops",  # the same data gives the same SVG
            "svg.fonttype": "none",
        }
    )
    if _known_cjk_font() is None:
        _add_fonts_installed_since_the_cache()
    # The families themselves, not "sans-serif": matplotlib falls back glyph by glyph only across
    # the families named in font.family (the generic name resolves to its first installed font).
    installed = {f.name for f in font_manager.fontManager.ttflist}
    matplotlib.rcParams["font.family"] = [name for name in FONTS if name in installed] + ["sans-serif"]
    return Figure


def cjk_font() -> str | None:
    """The CJK font charts draw Chinese with (None: Chinese would not render on this machine)."""
    _figure_class()
    return _known_cjk_font()


def _known_cjk_font() -> str | None:
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in FONTS[1:] if name in installed), None)


def _add_fonts_installed_since_the_cache() -> None:
    """matplotlib caches the font list the first time it runs; a CJK font installed after that
    (``make fonts``) stays unknown until the cache is rebuilt. Add the system's fonts of
    :data:`FONTS` that the cache lacks, once per process (fontManager.addfont is public)."""
    from matplotlib import font_manager

    known = {f.fname for f in font_manager.fontManager.ttflist}
    for path in font_manager.findSystemFonts():
        if path in known:
            continue
        try:
            family = font_manager.get_font(path).family_name
        except (OSError, RuntimeError):  # a broken font file is not ours to fix
            continue
        if family in FONTS:
            font_manager.fontManager.addfont(path)


def _figure(width: float = 6.4, height: float = 3.6) -> tuple[Any, Any]:
    fig = _figure_class()(figsize=(width, height), dpi=100, layout="tight")
    ax = fig.subplots()
    ax.grid(True, color=GRID, linewidth=0.6)
    ax.set_axisbelow(True)
    return fig, ax


def _svg(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def _empty(message: str) -> bytes:
    fig, ax = _figure(height=1.2)
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", color=MUTED)
    return _svg(fig)


def draw(name: str, data: Any) -> bytes:
    """The chart ``name`` for ``data``; an empty-state picture when there is nothing to draw."""
    try:
        return CHARTS[name](data)
    except _Nothing as nothing:
        return _empty(str(nothing))


class _Nothing(Exception):
    """Nothing to draw; the message says why (shown in the picture)."""


def epochs_of(run: Any) -> dict[str, Any]:
    """A training run as its charts draw it, read from its experiment record: what kind of run
    it was (a logistic head's regularisation path, an MLP's epochs, an encoder's steps), the
    setting a logistic head chose, and its progress records."""
    params, metrics = run.params or {}, run.metrics or {}
    kind = "encoder" if "finetune" in params else str(params.get("kind") or params.get("model_kind") or "mlp")
    chosen = None
    if kind == "logistic" and metrics.get("C") is not None:
        chosen = {"C": float(metrics["C"]), "balanced": bool(metrics.get("balanced"))}
    return {
        "name": run.name,
        "kind": kind,
        "chosen": chosen,
        "epochs": [
            {
                "epoch": e.epoch,
                "train_loss": e.train_loss,
                "val_loss": e.val_loss,
                "f1": e.metrics.get("f1"),  # None: an encoder's records are pair losses only
                "C": e.metrics.get("C"),
                "step": e.metrics.get("step"),
                "balanced": bool(e.metrics.get("balanced")),
            }
            for e in run.epochs
        ],
    }


# -- a model's evaluation report --------------------------------------------------------------
def confusion(report: dict[str, Any]) -> bytes:
    import numpy as np

    matrix = np.asarray(report["confusion"])
    labels = report["labels"]
    if matrix.sum() == 0:
        raise _Nothing("no evaluation items")
    size = 1.6 + 0.55 * len(labels)
    fig, ax = _figure(size + 1.2, size)
    ax.grid(False)
    rows = matrix.sum(axis=1, keepdims=True)
    ax.imshow(matrix / np.maximum(rows, 1), cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            share = matrix[i, j] / max(rows[i, 0], 1)
            ax.text(j, i, f"{matrix[i, j]}", ha="center", va="center", color="white" if share > 0.6 else INK)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true label")
    return _svg(fig)


def _curves(report: dict[str, Any], kind: str) -> bytes:
    curves = report.get("curves") or []
    if not curves:
        raise _Nothing("needs both classes in the evaluation set")
    fig, ax = _figure()
    for color, curve in zip(PALETTE, curves, strict=False):
        data = curve[kind]
        x, y = (data["recall"], data["precision"]) if kind == "pr" else (data["fpr"], data["tpr"])
        ax.plot(x, y, color=color, linewidth=1.8, label=f"{curve['label']} (AUC {data['auc']:.3f})")
    if kind == "roc":
        ax.plot([0, 1], [0, 1], color=GRID, linestyle="--", linewidth=1)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
    else:
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(frameon=False, loc="lower right" if kind == "roc" else "lower left")
    return _svg(fig)


def pr_curves(report: dict[str, Any]) -> bytes:
    return _curves(report, "pr")


def roc_curves(report: dict[str, Any]) -> bytes:
    return _curves(report, "roc")


def reliability(report: dict[str, Any]) -> bytes:
    bins = report.get("reliability") or []
    if not bins:
        raise _Nothing("no evaluation items")
    fig, ax = _figure()
    low = 1.0 / len(report["labels"])
    ax.plot([low, 1], [low, 1], color=GRID, linestyle="--", linewidth=1, label="perfectly calibrated")
    ax.plot(
        [b["confidence"] for b in bins],
        [b["accuracy"] for b in bins],
        marker="o",
        color=PALETTE[0],
        linewidth=1.8,
        label=f"this model (ECE {report['ece']:.3f})",
    )
    for b in bins:
        ax.annotate(
            str(b["count"]),
            (b["confidence"], b["accuracy"]),
            textcoords="offset points",
            xytext=(0, 6),
            ha="center",
            color=MUTED,
            fontsize=7,
        )
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.05)
    ax.legend(frameon=False, loc="upper left")
    return _svg(fig)


def histogram(report: dict[str, Any]) -> bytes:
    hist = report.get("histogram")
    if not hist or not (sum(hist["right"]) + sum(hist["wrong"])):
        raise _Nothing("no evaluation items")
    edges = hist["edges"]
    width = edges[1] - edges[0]
    fig, ax = _figure()
    ax.bar(edges[:-1], hist["right"], width=width, align="edge", color=PALETTE[1], alpha=0.85, label="right")
    ax.bar(
        edges[:-1],
        hist["wrong"],
        width=width,
        align="edge",
        color=PALETTE[3],
        alpha=0.85,
        label="wrong",
        bottom=hist["right"],
    )
    ax.set_xlabel("confidence of the predicted label")
    ax.set_ylabel("items")
    ax.legend(frameon=False, loc="upper left")
    return _svg(fig)


# -- experiments ------------------------------------------------------------------------------
def training(run: dict[str, Any]) -> bytes:
    """A run's curves: a logistic head's regularisation path, an encoder's pair losses by step,
    or an MLP's train and validation loss (left axis) and validation F1 (right axis) by epoch."""
    epochs = run["epochs"]
    if not epochs:
        raise _Nothing("no epochs recorded")
    if run["kind"] == "logistic":
        return regularisation_path(epochs, run["chosen"])
    fig, ax = _figure()
    if run["kind"] == "encoder":
        x = [e.get("step") or e["epoch"] for e in epochs]
        ax.plot(x, [e["train_loss"] for e in epochs], color=PALETTE[0], linewidth=1.6, label="pair loss (training)")
        ax.plot(x, [e["val_loss"] for e in epochs], color=PALETTE[2], linewidth=1.6, label="pair loss (held-out texts)")
        ax.set_xlabel("encoder step")
        ax.set_ylabel("cosine-similarity loss")
        ax.legend(frameon=False, loc="upper right")
        return _svg(fig)
    x = [e["epoch"] for e in epochs]
    ax.plot(x, [e["train_loss"] for e in epochs], color=PALETTE[0], linewidth=1.6, label="train loss")
    ax.plot(x, [e["val_loss"] for e in epochs], color=PALETTE[2], linewidth=1.6, label="val loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    right = ax.twinx()
    right.plot(x, [e["f1"] for e in epochs], color=PALETTE[1], linewidth=1.6, linestyle="--", label="val F1")
    right.set_ylabel("val macro F1")
    right.set_ylim(0, 1)
    right.spines["top"].set_visible(False)
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], frameon=False, loc="center right")
    return _svg(fig)


def regularisation_path(points: Sequence[dict[str, Any]], chosen: dict[str, Any] | None) -> bytes:
    """A logistic head's run: cross-validated loss and macro F1 against C, per class weighting;
    the setting the run chose (from its record) is marked; a run still going has none yet."""
    fig, ax = _figure()
    right = ax.twinx()
    for balanced, style in ((False, "-"), (True, ":")):
        mine = sorted((p for p in points if bool(p.get("balanced")) == balanced), key=lambda p: p["C"])
        if not mine:
            continue
        tag = "balanced" if balanced else "unweighted"
        c = [p["C"] for p in mine]
        ax.plot(c, [p["val_loss"] for p in mine], color=PALETTE[2], linestyle=style, label=f"CV loss, {tag}")
        right.plot(c, [p["f1"] for p in mine], color=PALETTE[1], linestyle=style, label=f"CV F1, {tag}")
    best = _chosen_point(points, chosen)
    if best is not None:
        right.scatter([best["C"]], [best["f1"]], color=PALETTE[1], zorder=3, s=30, label=f"chosen C = {best['C']:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("C (inverse L2 strength)")
    ax.set_ylabel("cross-validated loss")
    right.set_ylabel("cross-validated macro F1")
    right.set_ylim(0, 1)
    right.spines["top"].set_visible(False)
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], frameon=False, loc="lower center", fontsize=7)
    return _svg(fig)


def _chosen_point(points: Sequence[dict[str, Any]], chosen: dict[str, Any] | None) -> dict[str, Any] | None:
    """The path's point of the setting the run recorded as chosen."""
    if chosen is None:
        return None
    same = [p for p in points if bool(p.get("balanced")) == chosen["balanced"]]
    return min(same, key=lambda p: abs(p["C"] - chosen["C"]) / chosen["C"]) if same else None


def comparison(runs: Sequence[dict[str, Any]]) -> bytes:
    """Validation loss and F1 of several experiments, one color each: runs that train by epochs
    (or encoder steps) against those, logistic runs against C (their regularisation path under
    the class weighting each chose), each on its own row so no run is drawn on an axis that
    means something else for it."""
    if not runs:
        raise _Nothing("choose two to five experiments")
    colors = {id(run): color for run, color in zip(runs, PALETTE, strict=False)}
    by_c = [r for r in runs if r["kind"] == "logistic" and r["epochs"]]
    rows = [(group, axis) for group, axis in (([r for r in runs if r not in by_c], "epoch"), (by_c, "C")) if group]
    fig = _figure_class()(figsize=(9, 3.4 * len(rows)), dpi=100, layout="tight")
    axes = fig.subplots(len(rows), 2, squeeze=False)
    for (group, axis), (loss_ax, f1_ax) in zip(rows, axes, strict=True):
        for ax in (loss_ax, f1_ax):
            ax.grid(True, color=GRID, linewidth=0.6)
            if axis == "C":
                ax.set_xscale("log")
                ax.set_xlabel("C (inverse L2 strength), chosen class weighting")
            else:
                ax.set_xlabel("epoch (encoder runs: progress record)")
        for run in group:
            color = colors.get(id(run), MUTED)
            points = _chosen_path(run) if axis == "C" else run["epochs"]
            x = [p["C"] if axis == "C" else p["epoch"] for p in points]
            loss_ax.plot(x, [p["val_loss"] for p in points], color=color, linewidth=1.6, label=run["name"])
            if any(p["f1"] is not None for p in points):
                f1_ax.plot(x, [p["f1"] for p in points], color=color, linewidth=1.6, label=run["name"])
        loss_ax.set_ylabel("cross-validated loss" if axis == "C" else "val loss")
        f1_ax.set_ylabel("cross-validated macro F1" if axis == "C" else "val macro F1")
        f1_ax.set_ylim(0, 1)
        loss_ax.legend(frameon=False, fontsize=7, loc="upper right")
    return _svg(fig)


def _chosen_path(run: dict[str, Any]) -> list[dict[str, Any]]:
    """A logistic run's path under the class weighting it chose (all of it while it runs), by C."""
    balanced = run["chosen"]["balanced"] if run["chosen"] else None
    return sorted(
        (p for p in run["epochs"] if balanced is None or bool(p.get("balanced")) == balanced), key=lambda p: p["C"]
    )


# -- datasets ---------------------------------------------------------------------------------
def learning(points: Sequence[dict[str, Any]]) -> bytes:
    """Eval-set macro F1 of each model version against the labels it was trained on."""
    models = [p for p in points if not p["baseline"]]
    baselines = [p for p in points if p["baseline"]]
    if not models and not baselines:
        raise _Nothing("no evaluated model yet")
    fig, ax = _figure()
    colors = {"promoted": PALETTE[1], "retired": PALETTE[0], "rejected": PALETTE[3], "candidate": MUTED}
    for status, color in colors.items():
        mine = [p for p in models if p["status"] == status]
        if mine:
            ax.scatter(
                [p["labels"] for p in mine], [p["macro_f1"] for p in mine], color=color, s=28, label=status, zorder=3
            )
    ordered = sorted(models, key=lambda p: p["labels"])
    if len(ordered) > 1:
        ax.plot([p["labels"] for p in ordered], [p["macro_f1"] for p in ordered], color=GRID, linewidth=1, zorder=2)
    for p in baselines[-1:]:
        ax.axhline(
            p["macro_f1"], color=PALETTE[2], linestyle="--", linewidth=1.2, label=f"LLM baseline ({p['version'][:28]})"
        )
    ax.set_xlabel("labels the model was trained on")
    ax.set_ylabel("macro F1 on the evaluation set")
    ax.set_ylim(0, 1.02)
    ax.legend(frameon=False, loc="lower right", fontsize=8)
    return _svg(fig)


def label_distribution(counts: dict[str, int], what: str = "labeled tasks") -> bytes:
    if not counts or not sum(counts.values()):
        raise _Nothing("no labels yet" if what == "labeled tasks" else f"no {what}")
    fig, ax = _figure(height=min(2.6, 0.5 * len(counts) + 1.2))
    names = list(counts)
    ax.barh(names, [counts[n] for n in names], color=PALETTE[: len(names)])
    for i, name in enumerate(names):
        ax.text(counts[name], i, f" {counts[name]}", va="center", color=INK)
    ax.invert_yaxis()
    ax.set_xlabel(what)
    return _svg(fig)


def labels_per_day(data: dict[str, Any]) -> bytes:
    """Stacked bars: labels per day, one color per annotator."""
    days, series = data["days"], data["series"]
    if not days:
        raise _Nothing(_t("no labels yet"))
    fig, ax = _figure()
    bottom = [0] * len(days)
    for color, (who, values) in zip(PALETTE, series.items(), strict=False):
        ax.bar(days, values, bottom=bottom, color=color, label=who, width=0.8)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel(_t("labels"))
    ax.tick_params(axis="x", rotation=45 if len(days) > 6 else 0)
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    return _svg(fig)


# -- a dataset's quality report and agreement --------------------------------------------------
OK_COLOR, BAD_COLOR, SKIP_COLOR = "#12805c", "#c01048", "#98a2b3"
CHECK_TITLES = {
    "duplicates": "Duplicates",
    "near_duplicates": "Near-duplicates",
    "lengths": "Empty / short / long",
    "scripts": "Main script",
    "label_balance": "Rarest label",
    "label_errors": "Suspected label errors",
    "agreement": "Lowest kappa",
}


def quality_checks(checks: dict[str, Any]) -> bytes:
    """Each check's value as a bar, its threshold as a tick: green passed, red failed, grey not checked."""
    if not checks:
        raise _Nothing("no quality report yet: run the quality check")
    names = [n for n in CHECK_TITLES if n in checks]
    fig, ax = _figure(height=0.45 * len(names) + 0.9)
    for i, name in enumerate(names):
        check = checks[name]
        value = check["value"] if isinstance(check["value"], int | float) else 0.0
        color = SKIP_COLOR if check["passed"] is None else OK_COLOR if check["passed"] else BAD_COLOR
        ax.barh(i, value, color=color, height=0.55)
        if isinstance(check["threshold"], int | float):
            ax.plot([check["threshold"]] * 2, [i - 0.38, i + 0.38], color=INK, linewidth=1.6)
        shown = "not checked" if check["passed"] is None else f"{value:.3g}"
        ax.text(max(value, 0) + 0.01, i, f" {shown}", va="center", color=INK, fontsize=8)
    ax.set_yticks(range(len(names)), [CHECK_TITLES[n] for n in names])
    ax.invert_yaxis()
    ax.set_xlim(min(0.0, *[c["value"] or 0 for c in checks.values() if isinstance(c["value"], int | float)]), 1.15)
    ax.set_xlabel("share (kappa for agreement) · black tick: threshold")
    return _svg(fig)


def text_lengths(check: dict[str, Any]) -> bytes:
    counts, edges = check.get("histogram") or [], check.get("histogram_edges") or []
    if not counts or not sum(counts):
        raise _Nothing("no texts")
    fig, ax = _figure(height=2.8)
    widths = [b - a for a, b in itertools.pairwise(edges)]
    ax.bar(edges[:-1], counts, width=widths, align="edge", color=PALETTE[0], edgecolor="white", linewidth=0.5)
    ax.set_xlabel("characters")
    ax.set_ylabel("texts")
    return _svg(fig)


def scripts_chart(check: dict[str, Any]) -> bytes:
    return label_distribution(dict(check.get("distribution") or {}), "texts")


def agreement_chart(data: dict[str, Any]) -> bytes:
    """Cohen's kappa per annotator pair, and each annotator's agreement with the final label."""
    pairs, people = data.get("pairs") or [], data.get("versus_final") or []
    if not pairs and not people:
        raise _Nothing("no task has two annotations yet: turn on overlap")
    fig, ax = _figure(height=0.42 * (len(pairs) + len(people)) + 1.0)
    rows = [(f"{p['a']} × {p['b']} (κ, {p['tasks']} tasks)", p["kappa"], PALETTE[0]) for p in pairs]
    rows += [(f"{p['annotator']} vs final ({p['tasks']})", p["agreement"], PALETTE[1]) for p in people]
    for i, (_, value, color) in enumerate(rows):
        ax.barh(i, value, color=color, height=0.55)
        ax.text(max(value, 0) + 0.01, i, f" {value:.2f}", va="center", color=INK, fontsize=8)
    ax.set_yticks(range(len(rows)), [r[0] for r in rows])
    ax.invert_yaxis()
    ax.set_xlim(min(0.0, *[r[1] for r in rows]), 1.15)
    ax.axvline(0.6, color=GRID, linestyle="--", linewidth=1)
    ax.set_xlabel("Cohen's kappa (blue) · share agreeing with the final label (green)")
    return _svg(fig)


# -- annotator performance (include.services.performance.as_json) -----------------------------
def throughput(data: dict[str, Any]) -> bytes:
    """Stacked bars: labels per day, one color per annotator."""
    days = sorted({d for a in data["annotators"] for d in a["per_day"]})
    series = {a["username"]: [a["per_day"].get(d, 0) for d in days] for a in data["annotators"] if a["per_day"]}
    return labels_per_day({"days": [d[5:] for d in days], "series": series})


def lead_times(data: dict[str, Any]) -> bytes:
    """Grouped bars: how many labels took 0-2 s, 2-5 s ... per annotator."""
    people = [a for a in data["annotators"] if a["lead_histogram"]]
    if not people:
        raise _Nothing(_t("no timed labels yet"))
    bins = data["lead_bins"]
    names = [f"{lo}-{hi}" for lo, hi in itertools.pairwise(bins)] + [f"{bins[-1]}+"]
    fig, ax = _figure()
    width = 0.8 / len(people)
    for k, (color, person) in enumerate(zip(itertools.cycle(PALETTE), people, strict=False)):
        total = sum(person["lead_histogram"]) or 1
        shares = [n / total for n in person["lead_histogram"]]
        ax.bar([i + k * width for i in range(len(names))], shares, width=width, color=color, label=person["username"])
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(names))], names)
    ax.set_xlabel(_t("seconds to label"))
    ax.set_ylabel(_t("share of labels"))
    ax.legend(frameon=False, fontsize=8)
    return _svg(fig)


def gold_accuracy(data: dict[str, Any]) -> bytes:
    """Bars: accuracy on hidden gold with its 95 % interval, and the threshold to keep."""
    people = [a for a in data["annotators"] if a["gold_answered"]]
    if not people:
        raise _Nothing(_t("no gold answers yet"))
    fig, ax = _figure()
    names = [a["username"] for a in people]
    accuracy = [a["gold_accuracy"] for a in people]
    low = [acc - a["gold_low"] for acc, a in zip(accuracy, people, strict=True)]
    high = [a["gold_high"] - acc for acc, a in zip(accuracy, people, strict=True)]
    colors = [BAD_COLOR if a["gold_alert"] else PALETTE[0] for a in people]
    ax.bar(names, accuracy, yerr=[low, high], color=colors, capsize=4, ecolor=MUTED)
    ax.axhline(data["threshold"], color=BAD_COLOR, linestyle="--", linewidth=1)
    keep = " " + _t("keep ≥ %(t)s", t=f"{data['threshold']:.0%}")
    ax.text(len(names) - 0.5, data["threshold"], keep, color=BAD_COLOR, va="bottom", ha="right", fontsize=8)
    for i, a in enumerate(people):
        ax.text(i, 0.02, f"n={a['gold_answered']}", ha="center", color="white", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(_t("accuracy on gold"))
    return _svg(fig)


def gold_trend(data: dict[str, Any]) -> bytes:
    """Lines: cumulative gold accuracy over time, per annotator."""
    people = [a for a in data["annotators"] if a["gold_trend"]]
    if not people:
        raise _Nothing(_t("no gold answers yet"))
    fig, ax = _figure()
    for color, person in zip(itertools.cycle(PALETTE), people, strict=False):
        points = person["gold_trend"]
        ax.plot([p["day"][5:] for p in points], [p["accuracy"] for p in points], marker="o", color=color,
                label=person["username"])  # fmt: skip
    ax.axhline(data["threshold"], color=BAD_COLOR, linestyle="--", linewidth=1)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(_t("gold accuracy so far"))
    ax.legend(frameon=False, fontsize=8)
    return _svg(fig)


CHARTS: dict[str, Callable[[Any], bytes]] = {
    "throughput": throughput,
    "lead-times": lead_times,
    "gold": gold_accuracy,
    "gold-trend": gold_trend,
    "quality": quality_checks,
    "lengths": text_lengths,
    "scripts": scripts_chart,
    "agreement": agreement_chart,
    "confusion": confusion,
    "pr": pr_curves,
    "roc": roc_curves,
    "reliability": reliability,
    "histogram": histogram,
    "training": training,
    "comparison": comparison,
    "learning": learning,
    "labels": label_distribution,
    "daily": labels_per_day,
}

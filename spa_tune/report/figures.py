"""Figures: the block masks of a trial, the accuracy/size Pareto plot of an experiment, and the results page's
F1 against size."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from .values import number  # noqa: E402

SHORT_NAMES = {
    "attention.self.query": "query",
    "attention.self.key": "key",
    "attention.self.value": "value",
    "attention.output.dense": "attn out",
    "intermediate.dense": "ffn in",
    "output.dense": "ffn out",
}
MARKERS = {"splopa": "o", "fine-pruning": "s", "dense": "*"}
AXIS_LABELS = {
    "remaining_pct": "remaining encoder weights (%)",
    "learned_pct": "learned parameters (% of encoder weights)",
    "f1": "F1",
}


def split_layer_name(name: str) -> tuple[int, str]:
    """``(layer index, short matrix name)`` of an encoder Linear's qualified name."""
    match = re.search(r"layer\.(\d+)\.(.+)$", name)
    if not match:
        return 0, name
    return int(match.group(1)), SHORT_NAMES.get(match.group(2), match.group(2))


def mask_mosaic(block_masks: dict[str, np.ndarray], gap: int = 1) -> tuple[np.ndarray, list[int], list[str], list[int]]:
    """All block masks in one array: a row per encoder layer, a column per matrix, NaN gaps.

    Returns the mosaic, the layer indices (rows), the matrix names (columns) and each column's
    left edge. Kept blocks are 1, pruned blocks 0. Matrices taller than wide are drawn transposed
    (their name gets a trailing T), so that every row stays as low as the smallest side.
    """
    placed = []
    for name, mask in block_masks.items():
        layer, col = split_layer_name(name)
        mask = np.asarray(mask, dtype=float)
        if mask.shape[0] > mask.shape[1]:
            mask, col = mask.T, f"{col} T"
        placed.append((layer, col, mask))
    layers = sorted({layer for layer, _, _ in placed})
    columns = list(dict.fromkeys(col for _, col, _ in placed))
    heights = [max((m.shape[0] for at, _, m in placed if at == layer), default=1) for layer in layers]
    widths = [max((m.shape[1] for _, c, m in placed if c == col), default=1) for col in columns]
    lefts = [sum(widths[:i]) + gap * i for i in range(len(columns))]
    tops = [sum(heights[:i]) + gap * i for i in range(len(layers))]
    mosaic = np.full((tops[-1] + heights[-1], lefts[-1] + widths[-1]), np.nan)
    for layer, col, mask in placed:
        top, left = tops[layers.index(layer)], lefts[columns.index(col)]
        mosaic[top : top + mask.shape[0], left : left + mask.shape[1]] = mask
    return mosaic, layers, columns, lefts


def mask_image(block_masks: dict[str, np.ndarray], title: str = "", scale: int = 4) -> Image.Image:
    """The kept blocks of every encoder matrix as one PNG-ready image: dark kept, white pruned.

    Drawn with Pillow rather than matplotlib: a trial draws it at every evaluation, so it must cost
    milliseconds. Rows are layers, columns the six matrices (label: name and kept %).
    """
    mosaic, layers, columns, lefts = mask_mosaic(block_masks)
    pixels = np.where(np.isnan(mosaic), 228, np.where(mosaic > 0, 30, 255)).astype(np.uint8)
    pixels = np.kron(pixels, np.ones((scale, scale), dtype=np.uint8))
    margin_left, margin_top = 64, 44
    canvas = Image.new("L", (pixels.shape[1] + margin_left + 8, pixels.shape[0] + margin_top + 8), 255)
    canvas.paste(Image.fromarray(pixels, mode="L"), (margin_left, margin_top))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 4), title or "kept blocks per encoder matrix", fill=0)
    kept: dict[str, list[float]] = {}
    for name, mask in block_masks.items():
        col = split_layer_name(name)[1]
        col = next(c for c in columns if c in (col, f"{col} T"))
        kept.setdefault(col, []).append(float(np.asarray(mask, dtype=float).mean()))
    for col, left in zip(columns, lefts):
        draw.text((margin_left + left * scale, 18), col, fill=0)
        draw.text((margin_left + left * scale, 30), f"{100 * np.mean(kept[col]):.0f}% kept", fill=0)
    row_height = pixels.shape[0] / max(1, len(layers))
    for i, layer in enumerate(layers):
        draw.text((4, margin_top + row_height * (i + 0.5) - 5), f"layer {layer}", fill=0)
    return canvas


def pareto_figure(rows: Sequence[dict], front: Sequence[dict], x: str = "remaining_pct", y: str = "f1") -> Figure:
    """F1 against remaining %: marker by method, size by learned parameters, front drawn as a step.

    Trials that did not complete (stopped early, failed) are drawn hollow.
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    finite = [r for r in rows if _finite(r.get(x)) and _finite(r.get(y))]
    largest = max((float(r.get("learned_params") or 0) for r in finite), default=1.0) or 1.0
    for method in dict.fromkeys(r["method"] for r in finite):
        for finished in (True, False):
            group = [r for r in finite if r["method"] == method and (r.get("status") == "completed") == finished]
            if not group:
                continue
            sizes = [30 + 270 * float(r.get("learned_params") or 0) / largest for r in group]
            ax.scatter(
                [r[x] for r in group], [r[y] for r in group], s=sizes, marker=MARKERS.get(method, "D"),
                alpha=0.7, edgecolors="black", linewidths=0.5, facecolors=None if finished else "none",
                label=method if finished else f"{method} (stopped early)",
            )
    points = sorted((r[x], r[y]) for r in front if _finite(r.get(x)) and _finite(r.get(y)))
    if points:
        xs, ys = zip(*points)
        ax.step(xs, ys, where="post", color="crimson", linewidth=1.2, label="Pareto front")
    ax.set_xlabel(AXIS_LABELS.get(x, x))
    ax.set_ylabel(AXIS_LABELS.get(y, y))
    ax.set_title("accuracy / size trade-off (marker size: learned parameters)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def save_pareto_plot(rows: Sequence[dict], front: Sequence[dict], path, x: str = "remaining_pct", y: str = "f1"):
    """Draw ``pareto_figure`` into the PNG ``path`` and close it; returns ``path``."""
    figure = pareto_figure(rows, front, x=x, y=y)
    try:
        figure.savefig(path, dpi=120)
    finally:
        plt.close(figure)
    return path


def _finite(value) -> bool:
    try:
        return value is not None and np.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def size_figure(rows: Sequence[dict], label_of: Callable[[dict], tuple[str, str]], path: Path) -> Path:
    """F1 against remaining % and against learned % (log scale); one marker and legend entry per trial,
    named by ``label_of(row)`` (the trial's kind and its setting). The results page's figure."""
    done = [r for r in rows if number(r.get("f1")) is not None and number(r.get("remaining_pct")) is not None]
    fig, axes = plt.subplots(1, 2, figsize=(11, 6.2))
    markers = {"dense": "*", "fine-pruning": "o", "splopa": "s"}
    colours = plt.get_cmap("tab10")
    for ax, x, label in ((axes[0], "remaining_pct", "remaining encoder weights (%)"),
                         (axes[1], "learned_pct", "learned parameters (% of encoder weights, log)")):
        for i, row in enumerate(done):
            if (number(row.get(x)) or 0) <= 0:
                continue
            kind, setting = label_of(row)
            ax.scatter(row[x], row["f1"], marker=markers.get(row["method"], "D"), s=90 if row["method"] == "dense" else 60,
                       color=colours(i % 10), alpha=0.85, edgecolors="black", linewidths=0.5,
                       label=f"{kind}{': ' + setting if setting else ''} (F1 {row['f1']:.1f})")
        ax.set_xlabel(label)
        ax.set_ylabel("F1 (evaluation set)")
        ax.grid(alpha=0.3)
    axes[1].set_xscale("log")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=7.5, frameon=False)
    fig.suptitle("F1 against size: remaining encoder weights and learned parameters", fontsize=10)
    fig.tight_layout(rect=(0, 0.06 + 0.03 * ((len(labels) + 1) // 2), 1, 1))
    try:
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return path

"""Figures: the block masks of a trial and the accuracy/size Pareto plot of an experiment."""

from __future__ import annotations

import re
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

SHORT_NAMES = {
    "attention.self.query": "query",
    "attention.self.key": "key",
    "attention.self.value": "value",
    "attention.output.dense": "attn out",
    "intermediate.dense": "ffn in",
    "output.dense": "ffn out",
}
MARKERS = {"splopa": "o", "fine-pruning": "s", "dense": "*"}


def split_layer_name(name: str) -> tuple[int, str]:
    """``(layer index, short matrix name)`` of an encoder Linear's qualified name."""
    match = re.search(r"layer\.(\d+)\.(.+)$", name)
    if not match:
        return 0, name
    return int(match.group(1)), SHORT_NAMES.get(match.group(2), match.group(2))


def mask_figure(block_masks: dict[str, np.ndarray], title: str = "") -> Figure:
    """One panel per encoder layer and matrix; kept blocks dark, pruned blocks white."""
    placed = [(*split_layer_name(name), np.asarray(mask, dtype=float)) for name, mask in block_masks.items()]
    layers = sorted({layer for layer, _, _ in placed})
    columns = list(dict.fromkeys(col for _, col, _ in placed))
    fig, axes = plt.subplots(
        len(layers), len(columns), figsize=(1.6 * len(columns), 1.1 * len(layers) + 0.6), squeeze=False
    )
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_visible(False)
    for layer, col, mask in placed:
        ax = axes[layers.index(layer)][columns.index(col)]
        ax.set_visible(True)
        ax.imshow(mask, cmap="Greys", vmin=0, vmax=1, interpolation="nearest", aspect="auto")
        ax.set_title(f"{col} {100 * mask.mean():.0f}%", fontsize=7)
        if columns.index(col) == 0:
            ax.set_ylabel(f"layer {layer}", fontsize=7)
    fig.suptitle(title or "kept blocks per encoder matrix", fontsize=9)
    fig.tight_layout()
    return fig


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
    ax.set_xlabel("remaining encoder weights (%)" if x == "remaining_pct" else x)
    ax.set_ylabel("F1" if y == "f1" else y)
    ax.set_title("accuracy / size trade-off (marker size: learned parameters)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _finite(value) -> bool:
    try:
        return value is not None and np.isfinite(float(value))
    except (TypeError, ValueError):
        return False

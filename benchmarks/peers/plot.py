"""Plot test score against task-model calls, one panel per task (run by the plot venv's matplotlib)."""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MARKERS = {
    "baseline": "s",
    "baseline-plain": "D",
    "microprompts-beam": "*",
    "microprompts-evolution": "P",
    "sammo": "o",
    "dspy-mipro": "^",
    "dspy-gepa": "v",
    "textgrad": "X",
}
# One colour per system in every panel (matplotlib's default cycles by draw order, so it changed between panels).
COLORS = {name: f"C{i}" for i, name in enumerate(MARKERS)}


def main(src: str, dst: str) -> None:
    store = json.load(open(src))
    cells = [c for c in store.get("cells", {}).values() if c.get("status") == "ok" and c.get("test_score") is not None]
    tasks = [
        t
        for t in ["implicatures", "navigate", "object_counting", "seats", "hotpot"]
        if any(c["task"] == t for c in cells)
    ]
    if not tasks:
        return
    fig, axes = plt.subplots(1, len(tasks), figsize=(max(8.0, 4.2 * len(tasks)), 4.6), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=False):
        for c in (c for c in cells if c["task"] == task):
            # answered calls, as in peers.md (a rejected request is counted apart there)
            x = int((c.get("calls") or {}).get("task", 0)) - int((c.get("call_errors") or {}).get("task", 0))
            ax.scatter(
                x,
                c["test_score"],
                marker=MARKERS.get(c["system"], "o"),
                s=90 if "micro" in c["system"] else 60,
                color=COLORS.get(c["system"], "C9"),
                label=c["system"],
            )
        ax.set_title(task)
        ax.set_xlabel("task-model calls while optimizing")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test score")
    handles, _labels = {}, {}
    for ax in axes[0]:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=False):
            handles.setdefault(label, h)
    names = sorted(handles, key=lambda n: list(MARKERS).index(n) if n in MARKERS else 99)
    fig.legend(
        [handles[n] for n in names], names, loc="lower center", ncol=min(4, len(handles)), fontsize=8, frameon=False
    )
    budget = store.get("settings", {}).get("budget_calls")
    fig.suptitle(f"Test score vs task-model calls (budget {budget}; qwen2.5-coder-0.5b on 2 CPU cores)")
    fig.tight_layout(rect=(0, 0.14, 1, 0.95))
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

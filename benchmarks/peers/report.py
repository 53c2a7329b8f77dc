"""Turn ``peers.json`` into ``peers.md`` (tables) and ``peers.png`` (test score against task-model calls).

Stdlib only; the plot is drawn by ``plot.py`` with the ``plot`` venv's matplotlib (not a project dependency).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tasks import TASKS, prepare  # noqa: E402

ORDER = [
    "baseline",
    "baseline-plain",
    "microprompts-beam",
    "microprompts-evolution",
    "sammo",
    "dspy-mipro",
    "dspy-gepa",
    "textgrad",
]
TASK_ORDER = ["implicatures", "navigate", "object_counting", "seats", "hotpot"]
SCORE_NAME = {"em": "accuracy", "seats": "seat score (Jaccard - penalties)", "hotpot": "answer F1 (EM)"}


def _calls(cell: dict, role: str) -> int:
    """Requests of a role that the server answered (rejected ones, such as a probe of the structured-output format
    or a retried error, are counted apart: see ``_calls_text``)."""
    return int((cell.get("calls") or {}).get(role, 0)) - _errors(cell, role)


def _errors(cell: dict, role: str) -> int:
    return int((cell.get("call_errors") or {}).get(role, 0))


def _calls_text(cell: dict, role: str) -> str:
    errors = _errors(cell, role)
    return f"{_calls(cell, role)}" + (f" (+{errors} rejected)" if errors else "")


def _tokens(cell: dict, roles=("task", "optimizer")) -> int:
    tokens = cell.get("tokens") or {}
    return sum(tokens.get(r, {}).get("prompt", 0) + tokens.get(r, {}).get("completion", 0) for r in roles)


def _score(cell: dict) -> str:
    if cell.get("status") in ("n/a", "unfinished"):
        return cell["status"]
    if cell.get("status") != "ok" or cell.get("test_score") is None:
        return "failed"
    text = f"{cell['test_score']:.3f}"
    if len(cell.get("seeds", [])) > 1:
        each = ", ".join("failed" if x is None else f"{x:.3f}" for x in cell["seed_scores"])
        return f"{text} ± {cell['test_spread']:.3f} (seeds {cell['seeds']}: {each})"
    if cell.get("test_em") is not None:
        text += f" ({cell['test_em']:.2f})"
    if cell.get("test_score_official") is not None and abs(cell["test_score_official"] - cell["test_score"]) > 1e-6:
        text += f" [official {cell['test_score_official']:.3f}]"
    return text


def _config(cell: dict) -> str:
    config = cell.get("config") or {}
    keep = {k: v for k, v in config.items() if k not in ("source", "note")}
    text = "; ".join(f"{k}={v}" for k, v in keep.items())
    return text.replace("|", "/").replace("\n", " ")[:400]


def _ordered(cells: dict) -> list[tuple[str, list[dict]]]:
    tasks: dict[str, list[dict]] = {}
    for cell in cells.values():
        tasks.setdefault(cell["task"], []).append(cell)
    out = []
    for task in sorted(tasks, key=lambda t: TASK_ORDER.index(t) if t in TASK_ORDER else 99):
        rows = sorted(tasks[task], key=lambda c: ORDER.index(c["system"]) if c["system"] in ORDER else 99)
        out.append((task, rows))
    return out


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def merged(cells: dict) -> dict:
    """One cell per task and system: a seed's cell as it is, or over several seeds one whose test score, calls,
    tokens and wall time are the means over the seeds that finished (`test_spread`: their standard deviation;
    `seeds` and `seed_scores` list each), so the summary compares seed means."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for cell in cells.values():
        groups.setdefault((cell["task"], cell["system"]), []).append(cell)
    out = {}
    for (task, system), group in groups.items():
        group.sort(key=lambda c: c.get("seed", 0))
        if len(group) == 1:
            out[f"{task}/{system}"] = group[0]
            continue
        ok = [c for c in group if c.get("status") == "ok" and c.get("test_score") is not None]
        cell = {**group[0], "seeds": [c.get("seed", 0) for c in group]}
        cell["seed_scores"] = [c["test_score"] if c in ok else None for c in group]
        if ok:
            scores = [c["test_score"] for c in ok]
            centre = _mean(scores)
            roles = {role for c in ok for role in (c.get("calls") or {})}
            cell.update(
                status="ok",
                error=None if len(ok) == len(group) else f"{len(group) - len(ok)} of {len(group)} seeds failed",
                test_score=round(centre, 4),
                test_spread=round(_mean([(x - centre) ** 2 for x in scores]) ** 0.5, 4),
                test_em=round(_mean([c["test_em"] for c in ok]), 4) if all("test_em" in c for c in ok) else None,
                test_score_official=None,
                calls={r: round(_mean([(c.get("calls") or {}).get(r, 0) for c in ok])) for r in roles},
                call_errors={r: round(_mean([(c.get("call_errors") or {}).get(r, 0) for c in ok])) for r in roles},
                tokens={
                    r: {
                        k: round(_mean([(c.get("tokens") or {}).get(r, {}).get(k, 0) for c in ok]))
                        for k in ("prompt", "completion")
                    }
                    for r in roles
                },
                wall_seconds=_mean([c.get("wall_seconds", 0) for c in ok]),
            )
        out[f"{task}/{system}"] = cell
    return out


MICRO = ("microprompts-beam", "microprompts-evolution")
PEERS = ("sammo", "dspy-mipro", "dspy-gepa", "textgrad")


def majority_label(task: str, settings: dict, seeds: list[int]) -> float | None:
    """Always answering train's most common label, scored on test, averaged over `seeds` (each seed draws its own
    train; the test rows are the same): the floor an optimized label task should clear (issue 25). None for a task
    without labels, or where its data is not there."""
    if not TASKS.get(task, {}).get("labels"):
        return None
    sizes = (settings.get("train", 50), settings.get("dev", 20), settings.get("test", 40))
    scores = []
    try:
        for seed in seeds:
            with tempfile.TemporaryDirectory(prefix="peers-majority.") as tmp:
                prepare(task, tmp, *sizes, seed=seed)
                train, test = (
                    [json.loads(x)["answer"] for x in open(Path(tmp) / f"{n}.jsonl")] for n in ("train", "test")
                )
            label = Counter(train).most_common(1)[0][0]
            scores.append(sum(a == label for a in test) / len(test))
    except (OSError, ValueError, KeyError):
        return None
    return round(_mean(scores), 4) if scores else None


def summary_rows(store: dict) -> list[dict]:
    """Per task: the best microprompts system and the best peer by test score, with their task-model calls."""
    out = []
    for task, rows in _ordered(merged(store.get("cells", {}))):
        ok = [c for c in rows if c.get("status") == "ok" and c.get("test_score") is not None]
        by = {c["system"]: c for c in rows}
        micro = max((c for c in ok if c["system"] in MICRO), key=lambda c: c["test_score"], default=None)
        peer = max((c for c in ok if c["system"] in PEERS), key=lambda c: c["test_score"], default=None)
        peer_calls = [_calls(c, "task") for c in rows if c["system"] in PEERS and c.get("status") == "ok"]
        base = by.get("baseline")
        statuses = Counter(by[s].get("status") for s in PEERS if s in by)
        seeds = sorted({x for c in rows if c["system"] in MICRO for x in c.get("seeds", [c.get("seed", 0)])}) or [0]
        row = {
            "task": task,
            "baseline": base.get("test_score") if base else None,
            "majority": majority_label(task, rows[0].get("settings") or {}, seeds),
            "micro": micro["system"] if micro else None,
            "micro_score": micro["test_score"] if micro else None,
            "micro_calls": _calls(micro, "task") if micro else None,
            "peer": peer["system"] if peer else None,
            "peer_score": peer["test_score"] if peer else None,
            "peer_calls": _calls(peer, "task") if peer else None,
            "max_peer_calls": max(peer_calls) if peer_calls else None,
            "peers_done": sum(statuses.values()),
            "peers_failed": statuses["failed"],
            "peers_unfinished": statuses["unfinished"],
            "peers_na": statuses["n/a"],
        }
        if micro and peer:
            row["micro_best"] = micro["test_score"] >= peer["test_score"]
            row["within_calls"] = row["max_peer_calls"] is None or row["micro_calls"] <= row["max_peer_calls"]
            # either search counts when it alone meets both conditions (its score may be below the other's)
            winner = next(
                (
                    c
                    for c in sorted(ok, key=lambda c: -c["test_score"])
                    if c["system"] in MICRO
                    and c["test_score"] >= peer["test_score"]
                    and (row["max_peer_calls"] is None or _calls(c, "task") <= row["max_peer_calls"])
                ),
                None,
            )
            row["counted"] = winner is not None
            if winner is not None and winner is not micro:
                row["counted_by"] = f"{winner['system']} {winner['test_score']:.3f} at {_calls(winner, 'task')}"
        out.append(row)
    return out


def gains(store: dict) -> dict[str, dict[str, float]]:
    """Per system (each search and each peer), its test score minus the baseline's on each task it finished (a
    failed, unfinished or n/a cell is left out, not counted as no gain)."""
    out: dict[str, dict[str, float]] = {}
    for task, rows in _ordered(merged(store.get("cells", {}))):
        base = next((c.get("test_score") for c in rows if c["system"] == "baseline"), None)
        for c in rows:
            if base is None or c["system"] not in MICRO + PEERS or c.get("status") != "ok":
                continue
            if c.get("test_score") is not None:
                out.setdefault(c["system"], {})[task] = round(c["test_score"] - base, 4)
    return out


def gain_lines(store: dict) -> list[str]:
    """The mean-gain table (each system's gain over the baseline per task, and its mean over the tasks it finished)
    and the ratio of each search's mean gain to the best peer's."""
    table = gains(store)
    if not table:
        return []
    tasks = [t for t, _ in _ordered(merged(store.get("cells", {})))]
    means = {system: _mean(list(per.values())) for system, per in table.items()}
    lines = [
        "### Mean gain over the baseline",
        "",
        "| system | " + " | ".join(tasks) + " | mean (tasks) |",
        "|---|" + "---|" * (len(tasks) + 1),
    ]
    for system in [s for s in ORDER if s in table]:
        cells = [f"{table[system][t]:+.3f}" if t in table[system] else "-" for t in tasks]
        lines.append(f"| {system} | " + " | ".join(cells) + f" | {means[system]:+.3f} ({len(table[system])}) |")
    peers = {s: m for s, m in means.items() if s in PEERS}
    if peers:
        best = max(peers, key=lambda s: peers[s])
        ratios = [
            f"{s} {means[s] / peers[best]:.2f}x"
            if peers[best] > 0
            else f"{s} {means[s]:+.3f} against {peers[best]:+.3f}"
            for s in MICRO
            if s in means
        ]
        lines += [
            "",
            f"Each system's mean is over the tasks it finished (a failed or n/a cell is left out). Best peer: {best} "
            f"({peers[best]:+.3f}); microprompts' mean gain as a multiple of it: {', '.join(ratios)} (target 1.5x).",
        ]
    return lines + [""]


def _peer_status(row: dict) -> str:
    """Failed peers out of those recorded, with the unfinished and n/a ones named apart (neither is a failure)."""
    extra = [f"{row[k]} {name}" for k, name in (("peers_unfinished", "unfinished"), ("peers_na", "n/a")) if row.get(k)]
    return f"{row['peers_failed']}/{row['peers_done']}" + (f" ({', '.join(extra)})" if extra else "")


def _fmt(value, digits=3) -> str:
    return "-" if value is None else (f"{value:.{digits}f}" if isinstance(value, float) else str(value))


def markdown(store: dict) -> str:
    settings = store.get("settings", {})
    model = store.get("model", {})
    lines = [
        f"# {store.get('title', 'peers benchmark')}",
        "",
        f"Measured on commit `{store.get('commit', '?')}` (each cell also records its own), "
        f"updated {store.get('updated_at', '?')}, on {store.get('machine', '?')}.",
        f"Command: `{store.get('command', '')}`.",
        "",
        f"Model: `{model.get('path', '?')}` served by one `{model.get('server', '?')}` (n_ctx {model.get('n_ctx')}, "
        f"{model.get('n_threads')} threads) for every system and role (task model and optimizer model alike). "
        f"Budget: {settings.get('budget_calls')} task-model calls while optimizing; splits train "
        f"{settings.get('train')} / dev {settings.get('dev')} / test {settings.get('test')} rows (seed "
        f"{settings.get('seed')}; fewer where the task has fewer). Every call's generation is capped at "
        f"{settings.get('max_tokens_cap')} tokens by the proxy, the same for every system.",
        "",
        "Calls and tokens are counted at the server by the counting proxy, per role: **task** = the task model "
        "while optimizing (the budgeted calls), **opt** = the optimizer / proposer / reflection model, **test** = "
        "the final run on the test rows. A call counts when the server answered it; requests it rejected (HTTP "
        "errors: a probe of the structured-output format, a retried failure) are shown apart as `(+N rejected)`. "
        "Every system's test predictions are scored by the same function "
        "(`benchmarks/peers/common.py`). Wall time is the whole cell (optimizing and testing); the CPU is shared "
        "with other work, so times are indicative only.",
        "",
    ]
    summary = summary_rows(store)
    if summary:
        lines += [
            "## Summary",
            "",
            "| task | baseline | majority label | best microprompts (calls) | best peer (calls) | "
            "most task calls by a peer | microprompts best? | peers failed |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in summary:
            verdict = (
                "-"
                if "micro_best" not in r
                else ("yes" if r["micro_best"] else "no")
                + ("" if r.get("within_calls") else " (more calls)")
                + (f"; counts by {r['counted_by']}" if r.get("counted_by") else "")
            )
            lines.append(
                f"| {r['task']} | {_fmt(r['baseline'])} | {_fmt(r['majority'])} | "
                f"{_fmt(r['micro_score'])} {r['micro'] or ''} "
                f"({_fmt(r['micro_calls'])}) | {_fmt(r['peer_score'])} {r['peer'] or ''} ({_fmt(r['peer_calls'])}) | "
                f"{_fmt(r['max_peer_calls'])} | {verdict} | {_peer_status(r)} |"
            )
        compared = [r for r in summary if "micro_best" in r]
        wins = sum(1 for r in compared if r["counted"])
        lines += [
            "",
            f"microprompts has the best test score at no more task-model calls than a peer on **{wins} of "
            f"{len(compared)}** task(s) with results (planned: {', '.join(TASK_ORDER)}; ties count as best; "
            "either search counts, at no more task calls than the most a peer used). The majority label is the test "
            "score of always answering train's most common label (label tasks; the mean over the seeds' trains): "
            "the floor an optimized label task should clear.",
        ]
        lines.append("")
        lines += gain_lines(store)
    for task, rows in _ordered(merged(store.get("cells", {}))):
        metric = SCORE_NAME.get((rows[0].get("config") or {}).get("metric", ""), "")
        first = rows[0]
        metric = {"hotpot": SCORE_NAME["hotpot"], "seats": SCORE_NAME["seats"]}.get(task, SCORE_NAME["em"])
        cs = first.get("settings") or {}
        commits = sorted({c.get("commit", "?")[:10] for c in rows})
        seeds = sorted({x for c in rows for x in c.get("seeds", [c.get("seed", cs.get("seed", 0))])})
        seed_text = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds}: the same test rows, mean ± sd"
        lines += [
            f"## {task}",
            "",
            f"Test score: {metric}. Test rows: {first.get('test_n', '?')}. Budget "
            f"{cs.get('budget_calls')} task-model calls; train {cs.get('train')} / dev {cs.get('dev')} / test "
            f"{cs.get('test')} ({seed_text}). Measured on commit(s) {', '.join(commits)}.",
            "",
            "| system | test score | task calls | opt calls | test calls | tokens (task+opt) | wall s | status |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for c in rows:
            status = c.get("status", "?")
            if c.get("error"):
                status += ": " + str(c["error"]).replace("|", "/").replace("\n", " ")[:160]
            lines.append(
                f"| {c['system']} | {_score(c)} | {_calls_text(c, 'task')} | {_calls_text(c, 'optimizer')} | "
                f"{_calls_text(c, 'test')} | {_tokens(c)} | {c.get('wall_seconds', 0):.0f} | {status} |"
            )
        lines += ["", "<details><summary>configuration per system</summary>", ""]
        for c in rows:
            lines.append(f"- **{c['system']}**: {_config(c)}")
        lines += ["", "</details>", ""]
    lines += ["## Notes", "", store.get("notes", "(none yet)"), ""]
    return "\n".join(lines)


def write_all(results_path: Path, store: dict, plot_python: Path | None) -> None:
    results_path = Path(results_path)
    md = results_path.with_suffix(".md")
    tmp = md.with_name(md.name + ".tmp")
    tmp.write_text(markdown(store))
    tmp.replace(md)
    if plot_python and Path(plot_python).exists():
        subprocess.run(
            [
                str(plot_python),
                str(Path(__file__).resolve().parent / "plot.py"),
                str(results_path),
                str(results_path.with_suffix(".png")),
            ],
            capture_output=True,
            timeout=120,
        )


if __name__ == "__main__":
    import sys

    path = Path(sys.argv[1])
    write_all(path, json.loads(path.read_text()), Path(sys.argv[2]) if len(sys.argv) > 2 else None)

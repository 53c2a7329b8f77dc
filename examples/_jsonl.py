"""Writing generated example rows as JSON lines, and the small CLI every case generator shares."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_jsonl(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Write rows as JSON lines (creating the folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def generator_main(generate: Callable[[int, int], list[dict[str, Any]]], what: str, argv: list[str] | None) -> None:
    """``--n N --seed S --out FILE.jsonl``: write ``generate(N, S)`` to FILE."""
    parser = argparse.ArgumentParser(description=f"Generate {what} as JSONL.")
    parser.add_argument("--n", type=int, default=60, help="number of rows")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--out", required=True, help="output .jsonl file")
    args = parser.parse_args(argv)
    write_jsonl(generate(args.n, args.seed), args.out)
    print(f"wrote {args.n} rows to {args.out}")

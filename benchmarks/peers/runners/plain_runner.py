"""The seed instruction as a plain chat prompt, unoptimized (stdlib only): what the text peers start from.

System message: the seed instruction; user message: the row's text; free-text reply, scored like every system's.
For the multi-node HotpotQA task the same two steps run as two plain prompts (facts, then answer).
"""

from __future__ import annotations

import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402


def main(config_path: str) -> None:
    cell = common.load_cell(config_path)
    meta = cell["meta"]
    url = cell["urls"]["test"]
    started = time.time()
    result = {
        "system": cell["system"],
        "task": cell["task"],
        "status": "failed",
        "config": {"prompt": "system: seed instruction; user: the row's text; temperature 0, max_tokens 256"},
    }

    def one(row):
        if meta["kind"] == "pipeline":
            q, paragraphs = row["inputs"]["question"], row["inputs"]["paragraphs"]
            facts = common.chat(
                url,
                [
                    {"role": "system", "content": meta["instructions"][0]},
                    {"role": "user", "content": f"Question: {q}\nParagraphs:\n{paragraphs}"},
                ],
            )
            facts_text = facts["choices"][0]["message"]["content"]
            reply = common.chat(
                url,
                [
                    {"role": "system", "content": meta["instructions"][1]},
                    {"role": "user", "content": f"Question: {q}\nFacts:\n{facts_text}"},
                ],
            )
        else:
            reply = common.chat(
                url, [{"role": "system", "content": meta["instruction"]}, {"role": "user", "content": row["text"]}]
            )
        return row["id"], reply["choices"][0]["message"]["content"]

    try:
        with ThreadPoolExecutor(max_workers=int(cell.get("concurrency", 4))) as pool:
            result["predictions"] = dict(pool.map(one, cell["test"]))
        result["status"] = "ok"
    except BaseException as exc:  # noqa: BLE001
        result["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        result["traceback"] = traceback.format_exc()[-4000:]
    finally:
        result["seconds"] = time.time() - started
        common.write_json(cell["out"], result)


if __name__ == "__main__":
    main(sys.argv[1])

"""Re-score seats predictions with the project's own metric (run by the project's venv).

stdin: ``{row_id: prediction}``; argv[1]: the task's data folder; prints ``{"score": mean, "n": rows}``.
A text prediction is first split into seat ids by ``common.seat_items``, exactly as the harness scorer does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from examples.seats.metric import seat_metric  # noqa: E402
from microprompts.data.dataset import Row  # noqa: E402
from microprompts.evals.score import as_score  # noqa: E402

predictions = json.loads(sys.stdin.read())
rows = common.read_jsonl(Path(sys.argv[1]) / "test.jsonl")
values = []
for r in rows:
    example = Row(inputs=r["inputs"], output=r["output"], id=r["id"])
    predicted = {"recommended_seats": common.seat_items(predictions.get(r["id"]))}
    values.append(as_score(seat_metric(example, predicted)).value)
print(json.dumps({"score": sum(values) / len(values), "n": len(values)}))

"""Log-probabilities of candidate replies from an OpenAI-compatible chat server (calibrated labels there).

Chat servers neither echo a prompt's log-probabilities nor continue a half-written assistant turn, so the scores
come from one greedy generation with `logprobs` and `top_logprobs`: the model writes the replies' shared start
(`{"answer": "` for a JSON reply; constrained by the labels' schema where the server takes one), and the top
tokens at the position where the replies part give each label's score: the summed probability of the listed
tokens that begin that label and no other. A label none of them begins scores the lowest listed log-probability
(an upper bound: it was not among the top). Exact for labels that differ in their first token (yes/no, A/B/C,
most enums); labels sharing their first token tie at that token.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

__all__ = ["TOP_LOGPROBS", "label_schema", "reply_budget", "scores_from_logprobs"]

TOP_LOGPROBS = 20  # OpenAI's most; llama.cpp's and vLLM's servers take it too


def label_schema(replies: list[str]) -> dict[str, Any] | None:
    """When every reply is a JSON object of one same field, the schema allowing exactly those values (so a server
    that takes a schema writes the shared start and a label); None otherwise (the prompt alone sets the form)."""
    field: str | None = None
    values: list[Any] = []
    for reply in replies:
        try:
            data = json.loads(reply)
        except ValueError:
            return None
        if not isinstance(data, dict) or len(data) != 1:
            return None
        ((key, value),) = data.items()
        if field not in (None, key):
            return None
        field = key
        values.append(value)
    if field is None:
        return None
    return {
        "type": "object",
        "properties": {field: {"enum": values}},
        "required": [field],
        "additionalProperties": False,
    }


def reply_budget(replies: list[str]) -> int:
    """Tokens enough to write the longest reply (a token holds at least one character) and a little slack."""
    return max(len(r) for r in replies) + 8


def _squash(text: str) -> str:
    """The text without whitespace: a server may space the JSON it writes unlike the replies do."""
    return "".join(text.split())


def scores_from_logprobs(content: Any, replies: list[str]) -> list[float]:
    """Each reply's score from a chat completion's `logprobs.content` (see the module's docstring); ValueError
    when the generation left the replies' shared start, ended before a label, or carries no top log-probs."""
    if not isinstance(content, list) or not content:
        raise ValueError("the server returned no log-probabilities (does it take `logprobs` and `top_logprobs`?)")
    shared = _squash(os.path.commonprefix(replies))
    written = ""  # what the model wrote before the current token, squashed
    for entry in content:
        token = entry.get("token") if isinstance(entry, dict) else None
        if not isinstance(token, str):
            raise ValueError(f"a log-probability entry without a token: {str(entry)[:120]}")
        after = written + _squash(token)
        if len(after) > len(shared):  # this token goes past the shared start: it is where the labels part
            if not after.startswith(shared):
                break
            rests = [_squash(r)[len(written) :] for r in replies]
            return _label_scores(entry.get("top_logprobs"), rests)
        if not shared.startswith(after):
            break
        written = after
    text = "".join(str(e.get("token", "")) for e in content if isinstance(e, dict))
    raise ValueError(f"the reply did not reach a label (it wrote {text[:120]!r}, expected one of {replies[:4]!r})")


def _label_scores(top: Any, rests: list[str]) -> list[float]:
    """Per label (its remaining text `rests[i]`), the log of the summed probability of the top tokens that begin
    it and no other label; the lowest listed log-probability where none does."""
    if not isinstance(top, list) or not top:
        raise ValueError("the server returned no top log-probabilities (top_logprobs) at the label")
    mass = [0.0] * len(rests)
    listed: list[float] = []
    for item in top:
        token, logprob = (item.get("token"), item.get("logprob")) if isinstance(item, dict) else (None, None)
        if not isinstance(token, str) or isinstance(logprob, bool) or not isinstance(logprob, (int, float)):
            continue
        if not math.isfinite(logprob) or logprob > 1e-6:
            continue
        listed.append(float(logprob))
        piece = _squash(token)
        if not piece:
            continue
        begins = [i for i, rest in enumerate(rests) if rest.startswith(piece) or piece.startswith(rest)]
        if len(begins) == 1:
            mass[begins[0]] += math.exp(logprob)
    if not listed:
        raise ValueError("the server's top log-probabilities at the label hold no usable number")
    floor = min(listed)
    return [math.log(m) if m > 0 else floor for m in mass]

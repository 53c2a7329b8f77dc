"""Asking the optimizer model safely: bounded requests, typed replies, and strict acceptance.

Every request runs as an optimizer micro-prompt (`_meta.ask_meta`): a request larger than `ctx.max_prompt_chars`
is never sent, a reply cut off by the token limit or one that does not validate against its type is rejected, and
a failed call (after the caller's retries) is a rejection too; `accept_text` then checks the text itself.
`BudgetExceeded` is not caught: the search must see it to stop.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from langchain_core.messages import BaseMessage

from microprompts.models import Completion
from microprompts.nodes import extract_json
from microprompts.nodes.render import render_value
from microprompts.optimizers.mutators._meta import Instruction, ask_meta, meta_prompt, overhead
from microprompts.optimizers.mutators.base import MutationContext

log = logging.getLogger(__name__)

INSTRUCTION = "instruction"
REWRITE = meta_prompt("rewrite", Instruction)  # the content operators' requests: one new section text


def request_overhead() -> int:
    """Characters a rewrite request takes besides its written body (the meta-prompt around it)."""
    return overhead(REWRITE)


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, marked with an ellipsis when cut."""
    if limit <= 0:
        return ""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def show(value: Any, limit: int) -> str:
    """A value as prompt text (strings as is, the rest as JSON), clipped."""
    return clip(render_value(value), limit)


def message_chars(messages: Iterable[BaseMessage]) -> int:
    """Characters in the messages' contents: what `max_prompt_chars` bounds."""
    return sum(len(str(m.content)) for m in messages)


def tokens_for(chars: int) -> int:
    """A `max_tokens` that fits `chars` characters of text plus the JSON around it."""
    return chars // 3 + 48


def normalized(text: str) -> str:
    """Case-, spacing- and punctuation-insensitive form, for 'is this the same text?'."""
    return re.sub(r"[\W_]+", " ", text).strip().casefold()


def mentions(text: str, term: str) -> bool:
    """True when `term` occurs in `text` as a whole word (case-insensitive)."""
    return re.search(rf"(?<![\w]){re.escape(term)}(?![\w])", text, re.IGNORECASE) is not None


def dropped_terms(original: str, new: str, terms: Iterable[str]) -> list[str]:
    """The `terms` that `original` mentions and `new` does not: a rewrite must keep labels and field names."""
    return [t for t in terms if t and mentions(original, t) and not mentions(new, t)]


def parse_object(reply: Completion) -> dict[str, Any] | None:
    """The JSON object in a complete reply; None when truncated or not an object."""
    if reply.finish_reason == "length":
        log.debug("rejected: reply truncated at the token limit")
        return None
    try:
        data = extract_json(reply.text)
    except ValueError:
        log.debug("rejected: reply is not JSON: %r", reply.text[:120])
        return None
    return data if isinstance(data, dict) else None


def accept_text(
    data: dict[str, Any] | None,
    *,
    key: str = INSTRUCTION,
    max_chars: int,
    original: str = "",
    seen: Iterable[str] = (),
    keep: Iterable[str] = (),
) -> str | None:
    """The reply's text when it is usable: a non-empty string, at most `max_chars`, new, keeping `keep`.

    'New' means different (ignoring case, spacing and punctuation) from `original` and every text in `seen`;
    every term of `keep` that `original` mentions must still be mentioned (a weak optimizer model that answers
    with an echo of its instructions drops them).
    """
    if data is None:
        return None
    text = data.get(key)
    if not isinstance(text, str) or not text.strip():
        log.debug("rejected: no %r string in the reply", key)
        return None
    text = text.strip()
    if len(text) > max_chars:
        log.debug("rejected: %d chars is over the %d limit", len(text), max_chars)
        return None
    norm = normalized(text)
    if norm == normalized(original) or any(norm == normalized(s) for s in seen):
        log.debug("rejected: reply repeats a text already tried")
        return None
    lost = dropped_terms(original, text, keep)
    if lost:
        log.debug("rejected: reply drops %s", lost)
        return None
    return text


def ask_text(
    ctx: MutationContext,
    body: str,
    *,
    max_chars: int,
    original: str,
    seen: Iterable[str] = (),
    temperature: float,
    sample: int,
    keep: Iterable[str] = (),
) -> str | None:
    """Ask for `{"instruction": str}` (the `REWRITE` micro-prompt) and return the accepted text, or None (see
    `accept_text`)."""
    prompt = REWRITE.with_params(temperature=temperature, max_tokens=min(8192, tokens_for(max_chars)))
    data = ask_meta(ctx, prompt, {"request": body}, sample)
    return accept_text(data, max_chars=max_chars, original=original, seen=seen, keep=keep)


def fit_blocks(blocks: list[str], budget: int) -> list[str]:
    """Clip each block to an equal share of `budget` characters (a share left unused by short blocks is shared
    among the rest), so the blocks together never exceed the budget."""
    if not blocks:
        return []
    out: list[str] = [""] * len(blocks)
    remaining = max(0, budget)
    order = sorted(range(len(blocks)), key=lambda i: len(blocks[i]))
    for done, i in enumerate(order):
        share = remaining // (len(blocks) - done)
        out[i] = clip(blocks[i], share)
        remaining -= len(out[i])
    return out

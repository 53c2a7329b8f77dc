"""A deterministic simulated model for one task: its answers get better as the prompt gets what the task needs.

``SimulatedChatModel`` stands in for a real model in optimizer tests. It knows the right answer for
every row (``SimTask.answer``) and answers it with probability

    p = base + bonus + sum(gain for boost in task.boosts if boost.predicate(system_prompt, params))

(clipped to [0, 1]); otherwise it gives a plausible wrong answer (another label, an empty list...).
Whether a row is answered correctly is decided by comparing ``p`` with a *stable* number in [0, 1) drawn
from a SHA-256 hash of the row's inputs (and, with ``prompt_noise=True``, of the system prompt too; with
``temperature > 0``, of the sample seed too), so everything is deterministic across runs and processes.

By default the draw depends on the row only (its "difficulty"), so the simulator is *monotone*: a prompt
that satisfies more boosts is never worse on any row, and prompts that satisfy the same boosts score the
same. ``prompt_noise=True`` re-draws per system prompt, like a real model that reacts to wording.

What a boost predicate sees: the rendered system prompt and a :class:`SimParams` (temperature, max
tokens, seed, the detected data format of the user turn, whether a reasoning field is asked for, the
number of worked examples shown, the response format, the messages). Ready-made boosts::

    task = SimTask(
        "topic",
        answer=lambda inputs: {"label": LABELS[inputs["headline"]]},
        labels=["sports", "business", "world", "tech"],
        base=0.2,
        boosts=[
            has_examples(0.3),                 # the prompt shows at least one worked example
            contains("one word", 0.2),         # the prompt says a key phrase (case-insensitive)
            data_format("json", 0.1),          # rows are rendered as JSON
            reasoning_on(0.1),                 # the output asks for a reasoning field
            temperature_zero(0.1),             # sampling is greedy
        ],
    )
    model = SimulatedChatModel(task=task)

Inputs are parsed back from the user turn in any of the renderer's data formats (markdown ``key: value``,
xml ``<key>value</key>``, json); values that look like JSON lists/objects are decoded, everything else
stays a string. With ``SimTask(raw=True)`` the answer function receives the raw user text instead.
The reply is the JSON object of the answer (``reasoning`` first when the prompt asks for it), so it
parses against the node's schema as long as ``answer`` returns the node's output fields.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult

from microprompts.testing.recording import Call, RecordingChatModel
from microprompts.testing.rendered import detect_format, parse_user


@dataclass(frozen=True)
class SimParams:
    """What a boost predicate may look at besides the system prompt."""

    temperature: float
    max_tokens: int | None
    seed: int | None
    data_format: str  # "markdown" | "xml" | "json": how the user turn is rendered
    reasoning: bool  # the output asks for a `reasoning` field
    n_examples: int  # worked examples shown in the system prompt ("Example N" headings)
    response_format: dict[str, Any] | None
    messages: tuple[BaseMessage, ...] = ()


@dataclass(frozen=True)
class Boost:
    """A prompt property that raises the chance of a right answer by ``gain`` when ``predicate`` holds."""

    name: str
    predicate: Callable[[str, SimParams], bool]
    gain: float


@dataclass(frozen=True)
class SimTask:
    """A task the simulator can answer: the right output per row and what in a prompt helps.

    ``answer(inputs) -> dict`` gives the correct output fields (``answer(user_text)`` with ``raw=True``).
    ``wrong(inputs, correct) -> dict`` gives a wrong answer; by default each field of the correct answer
    is spoiled: a string becomes the next of ``labels`` (or ``"unknown"``), a list becomes empty, a
    number grows by 1, a bool flips.
    """

    name: str
    answer: Callable[[Any], dict[str, Any]]
    boosts: Sequence[Boost] = ()
    base: float = 0.2
    labels: Sequence[Any] | None = None
    wrong: Callable[[Any, dict[str, Any]], dict[str, Any]] | None = None
    raw: bool = False
    reasoning_text: str = "Looking at the inputs."

    def signature(self) -> str:
        """Identifies the task's configuration (not its code) for cache keys."""
        boosts = [(b.name, b.gain) for b in self.boosts]
        return json.dumps([self.name, self.base, boosts, list(self.labels or []), self.raw], default=str)


def unit(*parts: Any) -> float:
    """A stable number in [0, 1) from the parts (SHA-256; the same in every process)."""
    blob = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    digest = hashlib.sha256(blob.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


_EXAMPLE_HEADING = re.compile(r"\bExample \d+\b")


def _wants_reasoning(system: str, response_format: dict[str, Any] | None) -> bool:
    schema = (response_format or {}).get("schema") or ((response_format or {}).get("json_schema") or {}).get("schema")
    if isinstance(schema, dict):
        return "reasoning" in (schema.get("properties") or {})
    return "- reasoning (" in system or "`reasoning` first" in system


class SimulatedChatModel(RecordingChatModel):
    """A deterministic stand-in for a model on one task; see the module docstring."""

    task: SimTask
    bonus: float = 0.0  # a "stronger model": added to every row's chance
    prompt_noise: bool = False

    @property
    def _llm_type(self) -> str:
        return "simulated"

    def identity(self) -> str:
        """Stable across processes for the same task configuration, so the call cache works."""
        return f"simulated:{self.task.signature()}:bonus={self.bonus}:noise={self.prompt_noise}"

    def params_of(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> SimParams:
        """The request as a boost predicate sees it."""
        call = Call(list(messages), kwargs)
        return SimParams(
            temperature=float(kwargs.get("temperature") or 0.0),
            max_tokens=kwargs.get("max_tokens"),
            seed=kwargs.get("seed"),
            data_format=detect_format(call.user),
            reasoning=_wants_reasoning(call.system, call.response_format),
            n_examples=len(set(_EXAMPLE_HEADING.findall(call.system))),
            response_format=call.response_format,
            messages=tuple(messages),
        )

    def chance(self, system: str, params: SimParams) -> float:
        """The probability of a right answer for this prompt and these parameters."""
        p = self.task.base + self.bonus + sum(b.gain for b in self.task.boosts if b.predicate(system, params))
        return max(0.0, min(1.0, p))

    def satisfied(self, system: str, params: SimParams) -> list[str]:
        """Names of the boosts this prompt satisfies (for debugging tests)."""
        return [b.name for b in self.task.boosts if b.predicate(system, params)]

    def reply_for(self, messages: list[BaseMessage], **kwargs: Any) -> dict[str, Any]:
        """The answer this model gives (as a dict), without recording a call."""
        call = Call(list(messages), kwargs)
        system, user = call.system, call.user
        params = self.params_of(messages, kwargs)
        inputs: Any = user if self.task.raw else parse_user(user)
        correct = dict(self.task.answer(inputs))
        parts: list[Any] = [self.task.name, user if self.task.raw else inputs]
        if self.prompt_noise:
            parts.append(system)
        if params.temperature > 0:
            parts.append(params.seed or 0)
        right = unit(*parts) < self.chance(system, params)
        output = correct if right else self._wrong(inputs, correct)
        if params.reasoning:
            output = {"reasoning": self.task.reasoning_text, **output}
        return output

    def _wrong(self, inputs: Any, correct: dict[str, Any]) -> dict[str, Any]:
        if self.task.wrong is not None:
            return dict(self.task.wrong(inputs, correct))
        return {k: _spoil(v, self.task.labels) for k, v in correct.items()}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self._record(messages, kwargs)
        return self._result(json.dumps(self.reply_for(messages, **kwargs), ensure_ascii=False), messages)


def _spoil(value: Any, labels: Sequence[Any] | None) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, list):
        return []
    if isinstance(value, dict):
        return {}
    if labels and value in labels:
        items = list(labels)
        return items[(items.index(value) + 1) % len(items)]
    return "unknown" if value != "unknown" else "other"

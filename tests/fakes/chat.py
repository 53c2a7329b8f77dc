"""Chat-model test doubles: a scripted model and a deterministic task simulator.

``ScriptedChatModel`` answers from a list (or a function of the messages) and records every call::

    model = ScriptedChatModel(replies=['{"label": "x"}', ValueError("boom")])
    ...
    model.calls[0].system, model.calls[0].user, model.calls[0].temperature

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
import itertools
import json
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

from microprompts.models import ModelCaller

__all__ = [
    "Boost", "Call", "SchemaRecordingCaller", "ScriptedChatModel", "SimParams", "SimTask", "SimulatedChatModel",
    "contains",
    "data_format", "detect_format", "has_examples", "min_examples", "parse_user", "reasoning_on",
    "temperature_zero", "unit",
]

_COUNTER = itertools.count(1)


# --- recording -------------------------------------------------------------------------------------------
@dataclass
class Call:
    """One call a fake received: the messages and the keyword arguments the caller passed."""

    messages: list[BaseMessage]
    kwargs: dict[str, Any]

    @property
    def system(self) -> str:
        """The system prompt ("" when none)."""
        return next((str(m.content) for m in self.messages if m.type == "system"), "")

    @property
    def user(self) -> str:
        """The first user turn ("" when none)."""
        return next((str(m.content) for m in self.messages if m.type == "human"), "")

    @property
    def response_format(self) -> Any:
        return self.kwargs.get("response_format")

    @property
    def temperature(self) -> Any:
        return self.kwargs.get("temperature")

    @property
    def max_tokens(self) -> Any:
        return self.kwargs.get("max_tokens")

    @property
    def seed(self) -> Any:
        return self.kwargs.get("seed")


class _RecordingChatModel(BaseChatModel):
    """Shared plumbing: a stable identity, thread-safe call recording, usage metadata on replies."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str | None = Field(default_factory=lambda: f"fake-{next(_COUNTER)}")
    usage: dict[str, int] | None = None
    report_usage: bool = True
    finish_reason: str = "stop"
    _calls: list[Call] = PrivateAttr(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def calls(self) -> list[Call]:
        """Every call so far, in order of arrival."""
        with self._lock:
            return list(self._calls)

    @property
    def call_count(self) -> int:
        with self._lock:
            return len(self._calls)

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def identity(self) -> str:
        """The cache-key identity: stable for one configuration, distinct between fakes by default."""
        return f"{self._llm_type}:{self.name}"

    def _record(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> int:
        with self._lock:
            self._calls.append(Call(list(messages), dict(kwargs)))
            return len(self._calls) - 1

    def _result(self, text: str, messages: list[BaseMessage]) -> ChatResult:
        meta = self.usage
        if meta is None:  # a plausible count, so usage accounting has something to add up
            prompt = sum(len(str(m.content)) for m in messages) // 4 + 1
            meta = {"input_tokens": prompt, "output_tokens": len(text) // 4 + 1}
        meta = {**meta, "total_tokens": meta.get("input_tokens", 0) + meta.get("output_tokens", 0)}
        message = AIMessage(content=text, usage_metadata=meta if self.report_usage else None,
                            response_metadata={"finish_reason": self.finish_reason})
        return ChatResult(generations=[ChatGeneration(message=message)])


# --- scripted --------------------------------------------------------------------------------------------
Reply = str | BaseException | dict[str, Any]


class ScriptedChatModel(_RecordingChatModel):
    """Replies from a list, in order (or from ``replies(messages)``), recording every call.

    A list item may be a string (the reply), a dict (dumped as JSON), or an exception instance (raised, to
    test retries and errors). A function may return a string or a dict, or raise. When the list runs out
    the model raises ``AssertionError`` unless ``cycle=True`` (start over) or ``repeat_last=True``.
    ``usage={"input_tokens": 7, "output_tokens": 3}`` sets the usage metadata of every reply (else a
    rough count; ``report_usage=False`` reports none); ``finish_reason`` sets the reply's finish reason.
    """

    replies: Any = Field(default_factory=list)
    cycle: bool = False
    repeat_last: bool = False

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _next(self, index: int, messages: list[BaseMessage]) -> Reply:
        if callable(self.replies):
            return self.replies(messages)
        items = list(self.replies)
        if index < len(items):
            return items[index]
        if items and self.cycle:
            return items[index % len(items)]
        if items and self.repeat_last:
            return items[-1]
        raise AssertionError(f"ScriptedChatModel {self.name!r} ran out of replies (call {index + 1})")

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        index = self._record(messages, kwargs)
        reply = self._next(index, messages)
        if isinstance(reply, BaseException):
            raise reply
        text = json.dumps(reply) if isinstance(reply, dict) else str(reply)
        return self._result(text, messages)


# --- simulated -------------------------------------------------------------------------------------------
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


_XML = re.compile(r"<([A-Za-z_][\w.-]*)>(.*?)</\1>", re.DOTALL)
_MD = re.compile(r"^([A-Za-z_][\w.-]*): ?(.*)$")
_EXAMPLE_HEADING = re.compile(r"\bExample \d+\b")
_MARKED = re.compile(r"^\[\[ ## (\w+) ## \]\]\n(.*?)(?=\n\n\[\[ ## |\n\nReply with the output fields|\Z)",
                     re.DOTALL | re.MULTILINE)


def detect_format(text: str) -> str:
    """The renderer's data format of a user turn: json, xml or markdown."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            if isinstance(json.loads(stripped), dict):
                return "json"
        except ValueError:
            pass
    if stripped.startswith("<") and _XML.search(stripped):
        return "xml"
    return "markdown"


def _value(text: str) -> Any:
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def parse_user(text: str) -> dict[str, Any]:
    """A row's inputs back from the rendered user turn (any of the three data formats)."""
    if text.startswith("[[ ## "):  # the `markers` reply format's user turn
        return {k: _value(v) for k, v in _MARKED.findall(text)}
    fmt = detect_format(text)
    if fmt == "json":
        return dict(json.loads(text))
    if fmt == "xml":
        return {k: _value(v) for k, v in _XML.findall(text)}
    inputs: dict[str, Any] = {}
    key: str | None = None
    for line in text.splitlines():
        match = _MD.match(line)
        if match:
            key = match.group(1)
            inputs[key] = match.group(2)
        elif key is not None:  # a multi-line string value continues
            inputs[key] += "\n" + line
    return {k: _value(v) for k, v in inputs.items()}


def _wants_reasoning(system: str, response_format: dict[str, Any] | None) -> bool:
    schema = (response_format or {}).get("schema") or ((response_format or {}).get("json_schema") or {}).get("schema")
    if isinstance(schema, dict):
        return "reasoning" in (schema.get("properties") or {})
    return "- reasoning (" in system or "`reasoning` first" in system


class SimulatedChatModel(_RecordingChatModel):
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


# --- ready-made boosts -----------------------------------------------------------------------------------
def has_examples(gain: float, name: str = "has examples") -> Boost:
    """The system prompt shows at least one worked example."""
    return Boost(name, lambda system, p: p.n_examples > 0, gain)


def min_examples(count: int, gain: float) -> Boost:
    """The system prompt shows at least ``count`` worked examples."""
    return Boost(f"at least {count} examples", lambda system, p: p.n_examples >= count, gain)


def contains(phrase: str, gain: float) -> Boost:
    """The system prompt contains ``phrase`` (case-insensitive)."""
    return Boost(f"contains {phrase!r}", lambda system, p: phrase.lower() in system.lower(), gain)


def data_format(fmt: str, gain: float) -> Boost:
    """Rows are rendered in data format ``fmt`` (markdown, xml or json)."""
    return Boost(f"data_format == {fmt}", lambda system, p: p.data_format == fmt, gain)


def reasoning_on(gain: float) -> Boost:
    """The output asks for a reasoning field."""
    return Boost("reasoning field on", lambda system, p: p.reasoning, gain)


def temperature_zero(gain: float) -> Boost:
    """Sampling is greedy (temperature 0)."""
    return Boost("temperature 0", lambda system, p: p.temperature == 0.0, gain)


class SchemaRecordingCaller(ModelCaller):
    """A ModelCaller with no cache that records the schema each call sends (None for free-text replies)."""

    def __init__(self) -> None:
        super().__init__(cache=None, base_delay=0.0)
        self.schemas: list[dict[str, Any] | None] = []

    def complete(self, model: BaseChatModel, messages: list[BaseMessage], **kwargs: Any) -> Any:
        self.schemas.append(kwargs.get("schema"))
        return super().complete(model, messages, **kwargs)

"""Synthetic rows for a flow with no labelled data: a generator model proposes varied situations, then writes rows per
situation; each row is checked against the flow's input and output schemas, duplicates and near duplicates are
dropped, and an optional LLM judge filters and an optional teacher (the flow run on a stronger model) labels them.

The generator's two prompts are micro-prompts with typed outputs (so a local model is grammar-constrained), sent
through the same `ModelCaller` as every call (cache, retries, usage); replies are then read row by row, so one bad
row is rejected with its reason without losing the reply's good rows. Every request has its own sample seed derived
from `seed`, so a re-run with the same seed is answered from the cache.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from microprompts.data.dataset import Row
from microprompts.data.synthesize import Deduper, SynthesisReport
from microprompts.evals.evaluate import evaluate
from microprompts.evals.score import Metric, as_score
from microprompts.flows.flow import Flow
from microprompts.flows.state_types import key_types
from microprompts.models import BudgetExceeded, ModelCaller, ModelCallError, ModelLike, UsageMeter, resolve_model
from microprompts.nodes import MicroPrompt, cut_json, default_caller, extract_json

__all__ = ["SynthesisConfig", "SynthesisResult", "generator_prompts", "output_model", "synthesize"]

SITUATIONS_TASK = (
    "You design test data for an AI system. Propose varied situations it must handle: different personas, "
    "attributes, difficulty, edge cases and styles, so the data set is diverse and no two situations are the same "
    "case. Each situation is one short sentence."
)
ROWS_TASK = (
    "You write realistic test examples for an AI system. Write the requested number of examples that fit the "
    "situation, each different from the others and from the seed examples. Each example has the system's inputs and "
    "the correct expected output, with exactly the fields described."
)
GENERIC_SITUATION = "a typical case"


class SynthesisConfig(BaseModel):
    """How many rows to keep and how to get them: rows asked per request, situations, the request budget (the
    generator's and the teacher's requests together), the generator's temperature and reply length, the judge's pass
    mark and the near-duplicate threshold (0..100)."""

    model_config = ConfigDict(frozen=True)

    n: int = Field(ge=1)
    seed: int = 0
    per_request: int = Field(default=5, ge=1, le=50)
    situations: int | None = Field(default=None, ge=1, le=100)
    max_calls: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=0.9, ge=0.0, le=2.0)
    max_tokens: int = Field(default=2048, ge=64)
    judge_min: float = Field(default=0.75, ge=0.0, le=1.0)
    near_duplicate: float = Field(default=92.0, gt=0.0, le=100.0)

    def situation_count(self) -> int:
        """How many situations to ask for: enough for one request each, 2 to 20."""
        return self.situations or max(2, min(20, -(-self.n // self.per_request)))

    def call_budget(self, teacher_row_calls: int = 0) -> int:
        """Requests allowed: the given budget, else three times the generator requests `n` needs plus the
        situations, and with a teacher (`teacher_row_calls` requests a row) twice what labelling `n` rows takes."""
        return self.max_calls or 3 * -(-self.n // self.per_request) + 2 + 2 * self.n * teacher_row_calls


class SynthesisResult(BaseModel):
    """The kept rows (each valid for the flow) and the report of what was generated, rejected and kept."""

    rows: list[Row]
    report: SynthesisReport


def output_model(flow: Flow) -> type[BaseModel]:
    """A row's expected output: the flow's final output fields (written by a node, read by none), typed as the
    writing node declares them (every output field when each is read again)."""
    read = {k for node in flow.nodes.values() for k in node.reads}
    finals = [k for k in flow.output_keys if k not in read] or list(flow.output_keys)
    types = key_types(flow)
    fields: Any = {k: (types.get(k, Any), ...) for k in finals}
    return create_model(f"{flow.name.title().replace('_', '')}Output", **fields)


def _inputs_model(flow: Flow) -> type[BaseModel]:
    types = flow.input_types()
    fields: Any = {k: (types.get(k, Any), ...) for k in flow.input_keys}
    return create_model(f"{flow.name.title().replace('_', '')}Inputs", **fields)


def generator_prompts(flow: Flow, labelled: bool = True) -> tuple[MicroPrompt, MicroPrompt]:
    """The generator's two micro-prompts: situations (a list of sentences) and rows for one situation (typed as the
    flow's inputs and, when `labelled`, its output)."""
    situations = MicroPrompt(
        "synthesize_situations",
        task=SITUATIONS_TASK,
        inputs={
            "system_task": "what the AI system does",
            "input_fields": "the system's inputs",
            "seed_examples": "a few real examples (may be none)",
            "count": "how many situations to propose",
        },
        output=create_model("Situations", situations=(list[str], Field(description="one short sentence each"))),
        temperature=0.9,
        max_tokens=1024,
    )
    row_fields: Any = {"inputs": (_inputs_model(flow), ...)}
    if labelled:
        row_fields["output"] = (output_model(flow), ...)
    row = create_model("SynthesizedRow", **row_fields)
    rows_fields: Any = {"rows": (list.__class_getitem__(row), ...)}  # a list of a model built at run time
    rows = MicroPrompt(
        "synthesize_rows",
        task=ROWS_TASK,
        inputs={
            "system_task": "what the AI system does",
            "input_fields": "the system's inputs",
            "output_fields": "the system's expected output",
            "situation": "the situation every example must fit",
            "seed_examples": "a few real examples (may be none)",
            "count": "how many examples to write",
        },
        output=create_model("SynthesizedRows", **rows_fields),
        temperature=0.9,
        max_tokens=2048,
    )
    return situations, rows


def at_most(schema: dict[str, Any] | None, most: int) -> dict[str, Any] | None:
    """`schema` with its top-level lists capped at `most` items (JSON Schema's `maxItems`): a constrained model
    closes the list there. Asked for ten situations, Qwen 1.5B at temperature 0.9 wrote 13 in its first 400 tokens and
    was still going; each such reply ran to the token limit and was paid for in full."""
    if schema is None:
        return None
    fields = {
        name: {**field, "maxItems": most} if field.get("type") == "array" else field
        for name, field in schema.get("properties", {}).items()
    }
    return {**schema, "properties": fields}


def _task_text(node: MicroPrompt) -> str:
    section = node.section("task")
    return (section.text if section is not None else "") or ""


def _describe(flow: Flow, seeds: Sequence[Row]) -> dict[str, str]:
    """The flow as the generator sees it: its tasks, its input and output fields, and up to three seed rows."""
    tasks = [f"{mp.name}: {_task_text(mp)}" for mp in flow.micro_prompts()]
    described = {k: d for mp in flow.micro_prompts() for k, d in mp.inputs.items()}
    inputs = [f"- {k}: {described.get(k, '(no description)')}" for k in flow.input_keys]
    outputs = [f"- {k}" for k in output_model(flow).model_fields]
    shown = [json.dumps({"inputs": r.inputs, "output": r.output}, ensure_ascii=False) for r in seeds[:3]]
    return {
        "system_task": "\n".join(tasks) or flow.name,
        "input_fields": "\n".join(inputs),
        "output_fields": "\n".join(outputs),
        "seed_examples": "\n".join(shown) or "(none)",
    }


class _Generator:
    """One synthesis run's state: the caller, the budget of requests (the generator's and the teacher's, cached ones
    included, so a re-run stops where the first run stopped), the report and the rows kept so far."""

    def __init__(
        self, flow: Flow, model: BaseChatModel, config: SynthesisConfig, caller: ModelCaller, teacher_row_calls: int
    ) -> None:
        self.flow, self.model, self.config, self.caller = flow, model, config, caller
        self.report = SynthesisReport()
        self.meter = UsageMeter()
        self.requests = 0  # the generator's: each has its own sample seed
        self.budget = config.call_budget(teacher_row_calls)
        self.outputs = output_model(flow)

    def spent(self) -> int:
        """Requests made so far, the generator's and the teacher's."""
        return self.requests + self.report.teacher_calls + self.report.teacher_cached_calls

    def ask(self, node: MicroPrompt, inputs: dict[str, Any], most: int) -> Any:
        """One generator request (its own sample seed) for at most `most` items, as parsed JSON; None when the budget
        is spent or the call or its parse fails (counted in the report as a rejected reply). A reply cut at its
        token limit keeps the items it finished."""
        if self.report.budget_exhausted or self.spent() >= self.budget:
            self.report.budget_exhausted = True
            return None
        self.requests += 1
        sample = 1 + self.config.seed * 100_003 + self.requests
        try:
            done = self.caller.complete(
                self.model,
                node.render(inputs),
                schema=at_most(node.request_schema(inputs), most),
                temperature=self.config.temperature,
                max_tokens=self.config.max_tokens,
                sample=sample,
                node=node.name,
                meter=self.meter,
            )
        except BudgetExceeded:
            self.report.budget_exhausted = True
            return None
        except ModelCallError as exc:
            self.report.reject("failed call", str(exc))
            return None
        try:
            return extract_json(done.text)
        except ValueError as exc:
            if done.finish_reason == "length":  # say so: a larger --max-tokens or fewer rows per request fixes it
                try:
                    kept: Any = cut_json(done.text, whole_items=True)  # the items it finished are paid for
                except ValueError:
                    kept = None
                items = sum(len(v) for v in kept.values() if isinstance(v, list)) if kept else 0
                shown = f"{self.config.max_tokens} tokens, {items} finished items kept"
                self.report.reject("reply cut at max tokens", f"{shown}: {done.text[:200]!r}")
                return kept
            self.report.reject("unparseable reply", f"{exc}: {done.text[:200]!r}")
            return None

    def situations(self, node: MicroPrompt, described: dict[str, str]) -> list[str]:
        """The generator's varied situations (two tries), else one generic situation."""
        count = self.config.situation_count()
        for _ in range(2):
            data = self.ask(node, {**described, "count": str(count)}, count)
            if data is None:
                continue
            found = data.get("situations") if isinstance(data, dict) else None
            if not isinstance(found, list):
                self.report.reject("unparseable reply", "situations reply has no list `situations`")
                continue
            unique = list(dict.fromkeys(" ".join(str(s).split()) for s in found if str(s).strip()))
            if unique:
                return unique[:count]
        return [GENERIC_SITUATION]

    def check(self, raw: Any, labelled: bool) -> Row | str:
        """A generated row as a Row, or the reason it is rejected (`schema: ...`)."""
        if not isinstance(raw, dict) or not isinstance(raw.get("inputs"), dict):
            return "schema: a row must be an object with an `inputs` object"
        inputs = raw["inputs"]
        missing = [k for k in self.flow.input_keys if k not in inputs]
        if missing:
            return f"schema: missing input(s) {missing}"
        inputs = {k: inputs[k] for k in self.flow.input_keys}
        if problems := self.flow.input_problems(inputs):
            return "schema: " + "; ".join(problems)
        output: dict[str, Any] = {}
        if labelled:
            try:
                output = self.outputs.model_validate(raw.get("output")).model_dump(mode="json")
            except ValidationError as exc:
                first = exc.errors()[0]
                return f"schema: output {'.'.join(map(str, first['loc'])) or '(whole)'}: {first['msg']}"
        return Row(inputs=inputs, output=output)


def _label(flow: Flow, rows: list[Row], teacher: ModelLike, gen: _Generator) -> list[Row]:
    """The rows labelled by the teacher (the flow run on it): distillation; a row it fails is rejected, and so is a
    row the requests left cannot label (each may take one request per micro-prompt)."""
    affordable = max(0, gen.budget - gen.spent()) // max(1, len(flow.micro_prompts()))
    for row in rows[affordable:]:
        gen.report.reject("budget", f"no requests left to label {str(row.inputs)[:200]}")
    if len(rows) > affordable:
        gen.report.budget_exhausted = True
    rows = rows[:affordable]
    if not rows:
        return []
    result = evaluate(flow, rows, None, model=teacher, caller=gen.caller, concurrency=4)
    gen.report.teacher_calls += result.usage.calls
    gen.report.teacher_cached_calls += result.usage.cached_calls
    labelled: list[Row] = []
    for row, ran in zip(rows, result.rows, strict=True):
        if ran.error is not None:
            gen.report.reject("teacher failed", ran.error)
            continue
        try:
            output = gen.outputs.model_validate(ran.prediction or {}).model_dump(mode="json")
        except ValidationError as exc:
            gen.report.reject("teacher failed", f"output fails the schema: {exc.errors()[0]['msg']}")
            continue
        labelled.append(row.model_copy(update={"output": output}))
    return labelled


def _judged(rows: list[Row], judge: Metric, gen: _Generator) -> list[Row]:
    """The rows whose expected output the judge grades at least `judge_min`."""
    kept: list[Row] = []
    for row in rows:
        score = as_score(judge(row, dict(row.output)))
        if score.value >= gen.config.judge_min:
            kept.append(row)
        else:
            gen.report.reject("judge", f"{score.value:.2f}: {score.feedback}")
    return kept


def synthesize(
    flow: Flow,
    model: ModelLike,
    config: SynthesisConfig,
    *,
    seed_rows: Sequence[Row] = (),
    judge: Metric | None = None,
    teacher: ModelLike | None = None,
    caller: ModelCaller | None = None,
    on_progress: Callable[[SynthesisReport], None] | None = None,
) -> SynthesisResult:
    """Up to `config.n` new rows for `flow` written by `model` (situations first, then rows per situation), each
    valid for the flow's schemas, none a (near) duplicate of another or of a seed row; `judge` (a metric graded on
    the row's own output) filters, `teacher` labels the inputs by running the flow on it. Stops at the request
    budget, which the teacher's requests are charged to as well; the report says what was generated, rejected (by
    reason) and kept."""
    flow.validate()
    row_calls = len(flow.micro_prompts()) if teacher is not None else 0
    gen = _Generator(flow, resolve_model(model), config, caller or default_caller(), row_calls)
    situations_node, rows_node = generator_prompts(flow, labelled=teacher is None)
    described = _describe(flow, list(seed_rows))
    situations = gen.situations(situations_node, described)
    gen.report.situations = situations
    dedupe = Deduper(config.near_duplicate, (r.inputs for r in seed_rows))
    kept: list[Row] = []
    turn = 0
    while len(kept) < config.n and not gen.report.budget_exhausted:
        situation = situations[turn % len(situations)]
        turn += 1
        data = gen.ask(
            rows_node, {**described, "situation": situation, "count": str(config.per_request)}, config.per_request
        )
        if data is None:
            continue
        raws = data.get("rows") if isinstance(data, dict) else None
        if not isinstance(raws, list):
            gen.report.reject("unparseable reply", "rows reply has no list `rows`")
            continue
        fresh: list[Row] = []
        for raw in raws:
            gen.report.generated += 1
            checked = gen.check(raw, labelled=teacher is None)
            verdict = checked if isinstance(checked, str) else dedupe.verdict(checked.inputs)
            if verdict is not None:
                gen.report.reject(verdict.partition(":")[0], verdict if isinstance(checked, str) else str(raw)[:200])
                continue
            assert isinstance(checked, Row)
            dedupe.add(checked.inputs)
            fresh.append(checked)
        if fresh and teacher is not None:
            fresh = _label(flow, fresh, teacher, gen)
        if fresh and judge is not None:
            fresh = _judged(fresh, judge, gen)
        kept += fresh
        gen.report.kept = min(len(kept), config.n)
        if on_progress is not None:
            on_progress(gen.report)
    rows = [r.model_copy(update={"id": f"syn-{config.seed}-{i}"}) for i, r in enumerate(kept[: config.n], 1)]
    usage = gen.meter.snapshot()
    gen.report.kept, gen.report.calls, gen.report.cached_calls = len(rows), usage.calls, usage.cached_calls
    return SynthesisResult(rows=rows, report=gen.report)

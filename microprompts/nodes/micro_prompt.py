"""`MicroPrompt`: one small, single-purpose prompt with typed sections, a typed output and parameters."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any, Literal, Optional

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, ConfigDict, Field

from microprompts.models import Completion, UsageMeter
from microprompts.models.cache import KeyedSchema
from microprompts.nodes.input_types import InputSpec, python_type, split_inputs, type_problems
from microprompts.nodes.itemize import added_up, itemized
from microprompts.nodes.memo import per_object
from microprompts.nodes.nearest import NEAREST_DEFAULT, nearest
from microprompts.nodes.parse import OutputParseError, parse_cut_json, parse_lines, parse_markers, parse_reply
from microprompts.nodes.render import count_tokens, render_messages, render_reply
from microprompts.nodes.runtime import NodeTrace, Recorder, Runtime, recorder_of, state_dict
from microprompts.nodes.schema import REASONING, check_choices, constrain_choices, json_schema, with_reasoning
from microprompts.nodes.sections import Calibration, Example, Params, Section, insert_section
from microprompts.nodes.soft import node_model

# Per reply format: how a reply is parsed, and what a repair turn asks for.
_PARSERS = {"json": parse_reply, "lines": parse_lines, "markers": parse_markers}
_WANTED = {
    "json": "JSON object",
    "lines": "`field: value` lines",
    "markers": "`[[ ## field ## ]]` blocks, ending with `[[ ## completed ## ]]`",
}


class NodeInputError(ValueError):
    """A node was run without one of the inputs it reads."""


class DefaultOutput(BaseModel):
    """The output of a micro-prompt that declares none: one text answer."""

    output: str


class MicroPrompt(BaseModel):
    """A node of a flow: ordered sections, typed and described inputs, an output schema, examples and parameters.

    `inputs=` maps each input to a description (an untyped input: a string), to a type with its description
    (`(list[str], "...")`, `(list[str], Field(description="..."))`, `Annotated[list[str], "..."]`) or to a bare type;
    or it is a pydantic model class whose fields and descriptions are the inputs. `inputs` keeps the descriptions,
    `input_schemas` the JSON Schema of each typed input (plain JSON types: what an artifact carries)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    kind: Literal["micro_prompt"] = "micro_prompt"
    name: str
    sections: tuple[Section, ...]
    inputs: dict[str, str]
    input_schemas: dict[str, dict[str, Any]] = Field(default_factory=dict)
    output: type[BaseModel] = DefaultOutput
    examples: tuple[Example, ...] = ()
    params: Params = Params()

    def __init__(
        self,
        name: str | None = None,
        /,
        *,
        task: str | None = None,
        guidelines: str | list[str] | None = None,
        sections: list[Section] | tuple[Section, ...] | None = None,
        inputs: dict[str, InputSpec] | list[str] | type[BaseModel] | None = None,
        output: type[BaseModel] | None = None,
        examples: list[Example | dict[str, Any]] | tuple[Example, ...] = (),
        params: Params | dict[str, Any] | None = None,
        **param_values: Any,
    ) -> None:
        if name is None:
            name = param_values.pop("name", None)
        if not name:
            raise ValueError("a MicroPrompt needs a name")
        examples_t = tuple(e if isinstance(e, Example) else Example(**e) for e in examples)
        if sections is None:
            sections = default_sections(task, guidelines, bool(examples_t))
        elif task is not None or guidelines is not None:
            raise ValueError("give either `sections` or `task`/`guidelines`, not both")
        descriptions, schemas = split_inputs(inputs)
        p = params if isinstance(params, Params) else Params(**(params or {}), **param_values)
        super().__init__(
            name=name,
            sections=tuple(sections),
            inputs=descriptions,
            input_schemas=_checked_schemas(descriptions, schemas),
            output=output or DefaultOutput,
            examples=examples_t,
            params=p,
        )

    # --- what it reads and writes --------------------------------------------------------------
    @property
    def reads(self) -> tuple[str, ...]:
        """State keys this node reads."""
        return tuple(self.inputs)

    @property
    def writes(self) -> tuple[str, ...]:
        """State keys this node writes: its output fields."""
        return tuple(self.output.model_fields)

    def input_types(self) -> dict[str, Any]:
        """The Python type of each typed input (rebuilt from its JSON Schema); untyped inputs are left out."""
        return dict(self._input_types())

    def _input_types(self) -> dict[str, Any]:
        """`input_types()`, built once per prompt object (it is immutable) rather than once a row: not to be changed."""
        return per_object(self, "input_types", lambda: {k: python_type(s, k) for k, s in self.input_schemas.items()})

    def input_problems(self, inputs: dict[str, Any]) -> list[str]:
        """One line per given input whose value does not match its declared type (untyped inputs take any)."""
        return type_problems(self._input_types(), inputs)

    def output_model(self) -> type[BaseModel]:
        """The schema the model must satisfy: the output (an itemized field as its list), reasoning first when on."""
        base = itemized(self.output, self.params.itemize) if self.params.itemize else self.output
        return with_reasoning(base) if self.params.reasoning else base

    def request_schema(self, inputs: dict[str, Any]) -> dict[str, Any] | None:
        """The schema a call sends for this row: None for `lines` and `markers` replies, which are free text."""
        return self.output_schema(inputs) if self.params.reply_format == "json" else None

    def _sent_schema(self, inputs: dict[str, Any]) -> dict[str, Any] | None:
        """`request_schema(inputs)`, built once per prompt object when it is the same for every row (no `choices`):
        a KeyedSchema, whose key text is made once too."""
        if self.params.reply_format != "json" or self.params.choices:
            return self.request_schema(inputs)
        return per_object(self, "request_schema", lambda: KeyedSchema(json.dumps(self.output_schema())))

    def output_schema(self, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
        """The JSON schema sent to constrained backends; with `inputs`, `choices` become per-row enums."""
        schema = json_schema(self.output_model())
        if inputs is not None and self.params.choices:
            schema = constrain_choices(schema, self.params.choices, inputs)
        return schema

    def shown_examples(self, inputs: dict[str, Any] | None = None) -> tuple[Example, ...]:
        """The examples the prompt shows: the first `n_examples` (all when unset); with `nearest_examples` and a
        row's `inputs`, the `n_examples` (3 when unset) most like that row's."""
        n = self.params.n_examples
        if self.params.nearest_examples and inputs is not None:
            return nearest(self.examples, inputs, NEAREST_DEFAULT if n is None else n)
        return self.examples if n is None else self.examples[:n]

    def section(self, kind: str) -> Section | None:
        """The first section of a kind, if any."""
        return next((s for s in self.sections if s.kind == kind), None)

    # --- immutable updates -----------------------------------------------------------------------
    def with_params(self, **changes: Any) -> MicroPrompt:
        """A copy with some parameters changed (validated)."""
        return self.model_copy(update={"params": Params(**{**self.params.model_dump(), **changes})})

    def replace(self, **changes: Any) -> MicroPrompt:
        """A copy with fields replaced (sections, inputs, input_schemas, examples, output, name); new `inputs` keep
        the types of the inputs they keep, unless they give a type of their own. Examples given to a node that had
        none and no examples section get that section too, so they are shown."""
        if "inputs" in changes:
            descriptions, typed = split_inputs(changes["inputs"])
            kept = {k: s for k, s in changes.get("input_schemas", self.input_schemas).items() if k in descriptions}
            changes["inputs"] = descriptions
            changes["input_schemas"] = {**kept, **typed}
        if "input_schemas" in changes:
            changes["input_schemas"] = _checked_schemas(changes.get("inputs", self.inputs), changes["input_schemas"])
        if "sections" in changes:
            changes["sections"] = tuple(changes["sections"])
        if "examples" in changes:
            changes["examples"] = tuple(e if isinstance(e, Example) else Example(**e) for e in changes["examples"])
            if changes["examples"] and not self.examples and "sections" not in changes and not self.section("examples"):
                changes["sections"] = insert_section(self.sections, Section.of("examples"))
        return self.model_copy(update=changes)

    # --- running -------------------------------------------------------------------------------
    def render(self, inputs: dict[str, Any]) -> list[BaseMessage]:
        """The chat messages for one row's inputs."""
        return render_messages(self, inputs)

    def run(self, state: dict[str, Any], runtime: Runtime, recorder: Recorder | None = None) -> dict[str, Any]:
        """Render, call the model (k samples), parse (a reply cut at its limit as far as it goes) with one repair,
        vote; returns the output fields."""
        state = state_dict(state)
        missing = [k for k in self.inputs if k not in state]
        if missing:
            raise NodeInputError(f"node {self.name!r} needs input(s) {missing} that the state does not have")
        inputs = {k: state[k] for k in self.inputs}
        problems = self.input_problems(inputs)
        if problems:
            raise NodeInputError(f"node {self.name!r} got badly typed input(s): " + "; ".join(problems))
        messages = self.render(inputs)
        if recorder is None:  # nobody reads a trace: none is built (nor its token count, meter and clock)
            model = node_model(self.name, self.params, runtime)
            outputs = [self._sample(model, messages, i, runtime, inputs) for i in range(self.params.samples)]
            return voted(outputs)
        return self._run_traced(inputs, messages, runtime, recorder)

    def _run_traced(
        self, inputs: dict[str, Any], messages: list[BaseMessage], runtime: Runtime, recorder: Recorder
    ) -> dict[str, Any]:
        """`run` with the node's trace and usage given to `recorder`."""
        rendered_tokens = count_tokens(messages)
        replies: list[str] = []
        output: dict[str, Any] | None = None
        error: str | None = None
        meter = UsageMeter()
        started = time.perf_counter()
        try:
            model = node_model(self.name, self.params, runtime)  # with its soft prompt, when it holds one
            outputs = [
                self._sample(model, messages, i, runtime, inputs, meter, replies) for i in range(self.params.samples)
            ]
            output = voted(outputs)
            return output
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            trace = NodeTrace(
                node=self.name,
                kind=self.kind,
                inputs=inputs,
                output=output,
                replies=replies,
                rendered_tokens=rendered_tokens,
                usage=meter.snapshot(),
                seconds=time.perf_counter() - started,
                error=error,
            )
            recorder.add(trace)
            recorder.meter.add(trace.usage, self.name)

    def _sample(
        self,
        model: Any,
        messages: list[BaseMessage],
        sample: int,
        runtime: Runtime,
        inputs: dict[str, Any],
        meter: UsageMeter | None = None,
        replies: list[str] | None = None,
    ) -> dict[str, Any]:
        p = self.params
        if p.calibration is not None:
            return self._calibrated(model, messages, p.calibration, runtime, inputs, meter, replies)
        schema = self._sent_schema(inputs)
        target = self.output_model()

        def ask(turns: list[BaseMessage]) -> Completion:
            return runtime.caller.complete(
                model,
                turns,
                schema=schema,
                temperature=p.temperature,
                max_tokens=p.max_tokens,
                sample=sample,
                node=self.name,
                meter=meter,
            )

        reply = ask(messages)
        if replies is not None:
            replies.append(reply.text)
        try:
            data = self._validated(reply.text, target, inputs)
        except ValueError as first:
            data = self._salvaged(reply.text, target, inputs) if reply.finish_reason == "length" else None
            if data is None:
                wanted = _WANTED[p.reply_format]
                repair = messages + [
                    AIMessage(content=reply.text),
                    HumanMessage(content=f"That reply is invalid ({first}). Reply with only the corrected {wanted}."),
                ]
                fixed = ask(repair)
                if replies is not None:
                    replies.append(fixed.text)
                try:
                    data = self._validated(fixed.text, target, inputs)
                except ValueError as second:
                    raise OutputParseError(self.name, fixed.text, str(second)) from second
        if p.reasoning and REASONING not in self.output.model_fields:
            data.pop(REASONING, None)
        return added_up(data, self.output, p.itemize) if p.itemize else data

    def calibrated_replies(self, calibration: Calibration) -> list[str]:
        """The reply giving each calibrated label, written as the node's examples show replies."""
        return [render_reply({calibration.field: label}, self.params.reply_format) for label in calibration.labels]

    def _calibrated(
        self,
        model: Any,
        messages: list[BaseMessage],
        calibration: Calibration,
        runtime: Runtime,
        inputs: dict[str, Any],
        meter: UsageMeter | None,
        replies: list[str] | None,
    ) -> dict[str, Any]:
        """The label whose reply the model finds likeliest once its bias is added: scored, not generated."""
        texts = self.calibrated_replies(calibration)
        scores = runtime.caller.score_replies(model, messages, texts, node=self.name, meter=meter)
        best = max(range(len(texts)), key=lambda i: scores[i] + calibration.bias[i])
        if replies is not None:
            replies.append(texts[best])
        try:
            return self._validated(texts[best], self.output_model(), inputs)
        except ValueError as exc:  # a label the output schema refuses, or a field it does not have
            raise OutputParseError(self.name, texts[best], f"calibrated label: {exc}") from exc

    def _validated(self, text: str, target: type[BaseModel], inputs: dict[str, Any]) -> dict[str, Any]:
        """The reply as validated JSON data, its choices checked; raises ValueError with a short reason."""
        parse = _PARSERS[self.params.reply_format]
        data = parse(text, target).model_dump(mode="json")
        check_choices(data, self.params.choices, inputs)
        return data

    def _salvaged(self, text: str, target: type[BaseModel], inputs: dict[str, Any]) -> dict[str, Any] | None:
        """A JSON reply cut at its token limit, as far as it goes (`parse_cut_json`), when that validates: the items
        it finished (a list's sentences, say) are kept rather than a repair asked for that the same limit would cut
        again. None otherwise (and for an itemized total: a cut list adds up short), and the repair turn follows."""
        if self.params.reply_format != "json" or self.params.itemize:
            return None
        try:
            data = parse_cut_json(text, target).model_dump(mode="json")
            check_choices(data, self.params.choices, inputs)
        except ValueError:
            return None
        return data

    # LangGraph passes `config` only to a parameter annotated exactly `RunnableConfig` or `Optional[RunnableConfig]`
    # (as text, under postponed annotations): `RunnableConfig | None` would silently get no config.
    def __call__(self, state: dict[str, Any], config: Optional[RunnableConfig] = None) -> dict[str, Any]:  # noqa: UP045
        """Run as a plain LangGraph node (model from `configurable.model`, else `local`)."""
        return self.run(state, Runtime.for_config(config), recorder_of(config))

    def __hash__(self) -> int:
        return hash(json.dumps(self.model_dump(mode="json", exclude={"output"}), sort_keys=True, default=str))


def voted(outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """The most common output (the first of those tied), as its sorted JSON read back. One output, of plain JSON
    values (a reply's `model_dump(mode="json")`), is copied with its keys sorted instead: the same value, a fifth of
    the time of the JSON round trip and the count."""
    if len(outputs) == 1:
        try:
            return _sorted_copy(outputs[0])
        except TypeError:
            pass  # not plain JSON values: the round trip says what they become
    votes = Counter(json.dumps(o, sort_keys=True) for o in outputs)
    return json.loads(votes.most_common(1)[0][0])


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _sorted_copy(value: Any) -> Any:
    """`json.loads(json.dumps(value, sort_keys=True))` for a value made of dicts with string keys, lists, strings,
    numbers, booleans and None; TypeError for anything else."""
    kind = type(value)
    if kind is dict:
        if not all(type(k) is str for k in value):
            raise TypeError("a key that is not a string")
        return {k: _sorted_copy(value[k]) for k in sorted(value)}
    if kind is list:
        if all(type(v) in _PLAIN for v in value):
            return list(value)  # a list of plain values (the common case): copied as it is
        return [_sorted_copy(v) for v in value]
    if kind in _PLAIN:
        return value
    raise TypeError(f"not a plain JSON value: {kind.__name__}")


def _checked_schemas(inputs: dict[str, str], schemas: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Input schemas checked: each names an input and is a plain JSON type (InputTypeError otherwise)."""
    if not isinstance(schemas, dict):
        raise ValueError(f"input_schemas must map input names to JSON Schemas, not {schemas!r}")
    unknown = [k for k in schemas if k not in inputs]
    if unknown:
        raise ValueError(f"input_schemas name(s) {unknown} that are not inputs ({list(inputs)})")
    for key, schema in schemas.items():
        python_type(schema, key)
    return {k: dict(s) for k, s in schemas.items()}


def default_sections(task: str | None, guidelines: str | list[str] | None, has_examples: bool) -> list[Section]:
    """Task, inputs, output format, examples (when given) and guidelines (when given), in that order."""
    sections = [Section.of("task", task or ""), Section.of("inputs"), Section.of("output_format")]
    if has_examples:
        sections.append(Section.of("examples"))
    if guidelines:
        text = guidelines if isinstance(guidelines, str) else "\n".join(f"- {g}" for g in guidelines)
        sections.append(Section.of("guidelines", text))
    return sections

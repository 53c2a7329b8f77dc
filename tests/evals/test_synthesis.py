"""``synthesize`` with a scripted generator: situations then rows, schema checks, duplicates, judge, teacher, budget."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from pydantic import BaseModel

from microprompts import Flow, MicroPrompt, ModelCaller
from microprompts.data import Row
from microprompts.evals import Score
from microprompts.evals.synthesis import SynthesisConfig, generator_prompts, output_model, synthesize
from microprompts.models import CallCache
from microprompts.testing import SchemaRecordingCaller, ScriptedChatModel


class Answer(BaseModel):
    answer: str


class Count(BaseModel):
    count: int


FLOW = Flow("qa").then(
    MicroPrompt("answer", task="Answer the trivia question.", inputs={"question": "a trivia question"}, output=Answer)
)


def caller() -> ModelCaller:
    return ModelCaller(cache=None, base_delay=0.0)


def generator(rows_by_call: list[Any], situations: Any = None) -> ScriptedChatModel:
    """A generator answering the situations prompt, then each rows prompt from `rows_by_call` in order."""
    state = {"n": 0}

    def reply(messages: list[BaseMessage]) -> Any:
        if "Propose varied situations" in str(messages[0].content):
            return situations if situations is not None else {"situations": ["geography", "history", "geography"]}
        item = rows_by_call[min(state["n"], len(rows_by_call) - 1)]
        state["n"] += 1
        return item

    return ScriptedChatModel(replies=reply)


def row(question: str, answer: Any = "x") -> dict[str, Any]:
    return {"inputs": {"question": question}, "output": {"answer": answer}}


def test_situations_then_rows_per_situation_and_valid_rows_are_kept() -> None:
    model = generator(
        [{"rows": [row("What is the capital of France?"), row("Who painted the Mona Lisa?")]}]
        + [{"rows": [row(f"Unrelated question number {i} about {w}")]} for i, w in enumerate(["rivers", "kings"])]
    )
    recording = SchemaRecordingCaller()
    kept_so_far: list[int] = []
    result = synthesize(
        FLOW, model, SynthesisConfig(n=4, per_request=2), caller=recording,
        on_progress=lambda report: kept_so_far.append(report.kept),
    )  # fmt: skip
    assert kept_so_far == [2, 3, 4]  # the progress callback sees the rows kept after each request
    assert [r.inputs["question"] for r in result.rows] == [
        "What is the capital of France?",
        "Who painted the Mona Lisa?",
        "Unrelated question number 0 about rivers",
        "Unrelated question number 1 about kings",
    ]
    assert all(r.id and r.id.startswith("syn-0-") for r in result.rows)
    assert result.report.situations == ["geography", "history"]  # the repeated situation is dropped
    users = [c.user for c in model.calls[1:]]
    assert "geography" in users[0] and "history" in users[1] and "geography" in users[2]
    # The rows prompt is typed: the grammar sees the flow's input and output fields.
    schema = recording.schemas[1]
    assert schema is not None and "question" in json.dumps(schema) and "answer" in json.dumps(schema)
    assert result.report.kept == 4 and result.report.generated == 4 and not result.report.rejected


def test_a_reply_that_does_not_parse_or_fails_the_schema_is_rejected_with_its_reason() -> None:
    model = generator(
        [
            "this is not JSON at all",
            {"rows": "nope"},
            {"rows": [{"inputs": {"question": 7}, "output": {"answer": "a"}}, {"inputs": {}}, {"question": "flat"}]},
            {"rows": [row("Is the output typed?", answer=["a", "list"]), row("A perfectly good question?")]},
        ]
    )
    result = synthesize(FLOW, model, SynthesisConfig(n=1, per_request=3), caller=caller())
    assert [r.inputs for r in result.rows] == [{"question": "A perfectly good question?"}]
    report = result.report
    assert report.rejected == {"unparseable reply": 2, "schema": 4}
    text = " ".join(report.examples["schema"])
    assert "input 'question'" in text and "missing input(s) ['question']" in text and "`inputs` object" in text
    line = report.line()
    assert "generated 5" in line and "schema 4" in line and "unparseable reply 2" in line and "kept 1" in line


def test_exact_and_near_duplicates_and_seed_rows_are_removed() -> None:
    model = generator(
        [
            {
                "rows": [
                    row("What is the capital of France?"),
                    row("what is the  capital of France?"),  # same after normalizing
                    row("What is the capital of France??"),  # near
                    row("Name the longest river in Africa."),  # a seed
                    row("Which planet is largest?"),
                ]
            }
        ]
    )
    seeds = [Row(inputs={"question": "Name the longest river in Africa."}, output={"answer": "Nile"})]
    result = synthesize(FLOW, model, SynthesisConfig(n=5, per_request=5, max_calls=2), seed_rows=seeds, caller=caller())
    assert [r.inputs["question"] for r in result.rows] == ["What is the capital of France?", "Which planet is largest?"]
    assert result.report.rejected == {"duplicate": 2, "near-duplicate": 1}
    assert result.report.budget_exhausted
    assert "Nile" in model.calls[0].user  # seed rows are shown to the generator


def test_the_judge_filters_rows_by_its_grade() -> None:
    model = generator([{"rows": [row("Good question one?", "right"), row("Bad question two?", "wrong")]}])

    def judge(example: Row, prediction: dict[str, Any]) -> Score:
        return Score(value=1.0 if prediction["answer"] == "right" else 0.2, feedback="graded")

    result = synthesize(FLOW, model, SynthesisConfig(n=2, per_request=2, max_calls=2), judge=judge, caller=caller())
    assert [r.output for r in result.rows] == [{"answer": "right"}]
    assert result.report.rejected == {"judge": 1}


def test_the_teacher_labels_synthesized_inputs() -> None:
    gen = generator([{"rows": [{"inputs": {"question": "2+2?"}}, {"inputs": {"question": "3+3?"}}]}])
    teacher = ScriptedChatModel(replies=lambda m: {"answer": "4" if "2+2" in str(m[-1].content) else "6"})
    recording = SchemaRecordingCaller()
    result = synthesize(FLOW, gen, SynthesisConfig(n=2, per_request=2), teacher=teacher, caller=recording)
    assert {r.inputs["question"]: r.output for r in result.rows} == {"2+2?": {"answer": "4"}, "3+3?": {"answer": "6"}}
    # The teacher's calls are reported beside the generator's (one a labelled row here), not hidden in them.
    assert (result.report.calls, result.report.teacher_calls) == (2, 2)
    assert "2 teacher calls (0 cached)" in result.report.line()
    # Without labels asked of the generator, its rows schema has no output.
    assert "question" in json.dumps(recording.schemas[1]) and "answer" not in json.dumps(recording.schemas[1])


def test_the_teacher_failing_a_row_rejects_it() -> None:
    gen = generator([{"rows": [{"inputs": {"question": "2+2?"}}]}])
    teacher = ScriptedChatModel(replies=["not json", "still not json"])
    result = synthesize(FLOW, gen, SynthesisConfig(n=1, max_calls=3), teacher=teacher, caller=caller())
    assert result.rows == [] and result.report.rejected == {"teacher failed": 1}


def test_the_teachers_requests_are_charged_to_the_budget() -> None:
    """Three requests: the situations and one rows request leave one for the teacher, which labels one of the three
    rows; the other two are rejected for the budget, never written unlabelled."""
    gen = generator([{"rows": [{"inputs": {"question": f"{i}+{i}?"}} for i in (1, 2, 3)]}])
    teacher = ScriptedChatModel(replies=[{"answer": "2"}], repeat_last=True)
    result = synthesize(FLOW, gen, SynthesisConfig(n=3, per_request=3, max_calls=3), teacher=teacher, caller=caller())
    assert [(r.inputs["question"], r.output) for r in result.rows] == [("1+1?", {"answer": "2"})]
    assert result.report.rejected == {"budget": 2} and result.report.budget_exhausted
    assert (result.report.calls, result.report.teacher_calls) == (2, 1)
    assert len(teacher.calls) == 1


def test_typed_outputs_are_checked_and_an_unparseable_situations_reply_falls_back() -> None:
    flow = Flow("count").then(MicroPrompt("count", task="Count the words.", inputs={"text": "a text"}, output=Count))
    gen = generator([{"rows": [{"inputs": {"text": "a b"}, "output": {"count": "two"}}]}], situations="garbage")
    result = synthesize(flow, gen, SynthesisConfig(n=1, max_calls=4), caller=caller())
    assert result.rows == [] and result.report.situations == ["a typical case"]
    assert result.report.rejected == {"unparseable reply": 2, "schema": 2}
    assert "output count" in result.report.examples["schema"][0]
    assert output_model(flow).model_fields.keys() == {"count"}


def test_seeded_requests_are_cached_so_a_rerun_pays_nothing(tmp_path: Any) -> None:
    cache = CallCache(tmp_path / "cache.sqlite")
    replies = [{"rows": [row("Question alpha?"), row("Completely different beta?")]}]
    model = generator(replies)
    first = synthesize(FLOW, model, SynthesisConfig(n=2, per_request=2), caller=ModelCaller(cache=cache))
    again = synthesize(FLOW, model, SynthesisConfig(n=2, per_request=2), caller=ModelCaller(cache=cache))
    assert again.rows == first.rows and len(model.calls) == 2 and again.report.cached_calls == 2
    synthesize(FLOW, model, SynthesisConfig(n=2, per_request=2, seed=1), caller=ModelCaller(cache=cache))
    assert len(model.calls) == 4  # another seed asks again


def test_generator_prompts_are_micro_prompts_with_typed_outputs() -> None:
    situations, rows = generator_prompts(FLOW)
    assert situations.output_schema()["properties"]["situations"]["type"] == "array"
    assert "rows" in rows.output_schema()["properties"]


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError):
        SynthesisConfig(n=0)


def test_a_reply_cut_at_max_tokens_says_so() -> None:
    model = ScriptedChatModel(replies=['{"situations": ["a", "b"]}', '{"rows": [{"inputs": {"question": "Is'])
    model.finish_reason = "length"
    result = synthesize(FLOW, model, SynthesisConfig(n=1, max_calls=2), caller=caller())
    assert result.rows == [] and result.report.rejected == {"reply cut at max tokens": 1}


def test_a_reply_cut_at_max_tokens_keeps_the_rows_it_finished_and_drops_the_one_it_was_cut_in() -> None:
    whole = json.dumps(row("What is the capital of Peru?"))
    model = ScriptedChatModel(replies=['{"situations": ["a", "b", "c', '{"rows": [' + whole + ', {"inputs": {"quest'])
    model.finish_reason = "length"
    result = synthesize(FLOW, model, SynthesisConfig(n=2, max_calls=2), caller=caller())
    assert result.report.situations == ["a", "b"]  # the cut third one is not a situation
    assert [r.inputs["question"] for r in result.rows] == ["What is the capital of Peru?"]
    assert result.report.rejected == {"reply cut at max tokens": 2}  # one reply of each kind, each said
    assert "1 finished items kept" in result.report.examples["reply cut at max tokens"][-1]


def test_the_generator_is_asked_for_lists_no_longer_than_it_needs() -> None:
    recording = SchemaRecordingCaller()
    model = generator([{"rows": [row("Capital of Chile?"), row("Longest river in Asia?")]}])
    synthesize(FLOW, model, SynthesisConfig(n=2, per_request=2, situations=3), caller=recording)
    situations, rows = recording.schemas
    assert situations is not None and situations["properties"]["situations"]["maxItems"] == 3
    assert rows is not None and rows["properties"]["rows"]["maxItems"] == 2

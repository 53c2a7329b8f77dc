"""Running one node: parsing, repair, k-sample voting, parameters, inputs, traces; function nodes and refs."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, ValidationError

from microprompts import FunctionNode, MicroPrompt, ModelCaller, OutputParseError
from microprompts.nodes import NodeInputError, Recorder, RefError, Runtime, extract_json, load_object, parse_reply
from microprompts.nodes.function import ref_of
from microprompts.nodes.parse import finished_json
from microprompts.testing import ScriptedChatModel


class Label(BaseModel):
    label: Literal["a", "b"]


NODE = MicroPrompt("cls", task="Classify.", inputs={"text": "The text."}, output=Label)


def runtime(model) -> Runtime:
    return Runtime(model=model, caller=ModelCaller(cache=None, base_delay=0.0))


# --- parsing --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        '{"label": "a"}',
        '  {"label": "a"}\n',
        'Sure:\n```json\n{"label": "a"}\n```\nDone.',
        '```\n{"label": "a"}\n```',
        'The answer is {"label": "a"} as requested.',
    ],
)
def test_extract_json_finds_the_object_in_plain_fenced_and_chatty_replies(text):
    assert extract_json(text) == {"label": "a"}


def test_extract_json_without_an_object_raises():
    with pytest.raises(ValueError, match="no JSON object"):
        extract_json("I think it is a.")


def test_parse_reply_names_the_failing_field():
    with pytest.raises(ValueError, match="label"):
        parse_reply('{"label": "c"}', Label)
    with pytest.raises(ValueError, match="expected a JSON object"):
        parse_reply('["a"]', Label)


# --- running --------------------------------------------------------------------------------------------------
def test_run_returns_the_output_fields_and_records_a_trace():
    model = ScriptedChatModel(replies=['```json\n{"label": "b"}\n```'], usage={"input_tokens": 11, "output_tokens": 3})
    recorder = Recorder()
    assert NODE.run({"text": "hello", "other": 1}, runtime(model), recorder) == {"label": "b"}
    (trace,) = recorder.traces
    assert trace.node == "cls" and trace.kind == "micro_prompt"
    assert trace.inputs == {"text": "hello"}
    assert trace.output == {"label": "b"}
    assert trace.replies == ['```json\n{"label": "b"}\n```']
    assert trace.rendered_tokens > 0
    assert (trace.usage.calls, trace.usage.prompt_tokens, trace.usage.completion_tokens) == (1, 11, 3)
    assert recorder.meter.by_node["cls"].calls == 1
    assert trace.error is None


def test_run_passes_temperature_and_max_tokens_to_the_model():
    model = ScriptedChatModel(replies=['{"label": "a"}'])
    NODE.with_params(temperature=0.7, max_tokens=33).run({"text": "x"}, runtime(model))
    call = model.calls[0]
    assert (call.temperature, call.max_tokens) == (0.7, 33)
    assert call.system.startswith("## Task\nClassify.") and call.user == "text: x"


def test_a_bad_reply_then_a_good_one_is_repaired():
    model = ScriptedChatModel(replies=["I think it is a", '{"label": "a"}'])
    recorder = Recorder()
    assert NODE.run({"text": "x"}, runtime(model), recorder) == {"label": "a"}
    assert model.call_count == 2
    repair = model.calls[1].messages
    assert [m.type for m in repair] == ["system", "human", "ai", "human"]
    assert repair[2].content == "I think it is a"
    assert "invalid" in repair[3].content
    assert recorder.traces[0].replies == ["I think it is a", '{"label": "a"}']
    assert recorder.traces[0].usage.calls == 2


def test_two_bad_replies_raise_output_parse_error_carrying_the_raw_reply():
    model = ScriptedChatModel(replies=['{"label": "c"}', '{"label": "still wrong"}'])
    recorder = Recorder()
    with pytest.raises(OutputParseError) as info:
        NODE.run({"text": "x"}, runtime(model), recorder)
    assert info.value.raw == '{"label": "still wrong"}'
    assert info.value.node == "cls"
    assert "label" in info.value.reason
    assert "still wrong" in str(info.value)
    assert recorder.traces[0].error.startswith("OutputParseError")
    assert model.call_count == 2


def test_reasoning_is_asked_for_but_not_written_to_state():
    model = ScriptedChatModel(replies=['{"reasoning": "because", "label": "a"}'])
    assert NODE.with_params(reasoning=True).run({"text": "x"}, runtime(model)) == {"label": "a"}


def test_a_reply_missing_reasoning_is_repaired_when_reasoning_is_on():
    model = ScriptedChatModel(replies=['{"label": "a"}', '{"reasoning": "r", "label": "b"}'])
    assert NODE.with_params(reasoning=True).run({"text": "x"}, runtime(model)) == {"label": "b"}


def test_k_samples_vote_and_each_sample_gets_its_own_seed():
    model = ScriptedChatModel(replies=['{"label": "a"}', '{"label": "b"}', '{"label": "b"}'])
    node = NODE.with_params(samples=3, temperature=0.8)
    recorder = Recorder()
    assert node.run({"text": "x"}, runtime(model), recorder) == {"label": "b"}
    assert [c.seed for c in model.calls] == [None, 1, 2]
    assert recorder.traces[0].usage.calls == 3


def test_k_samples_hit_the_cache_separately():
    from microprompts import CallCache

    model = ScriptedChatModel(replies=['{"label": "a"}', '{"label": "a"}', '{"label": "b"}'])
    rt = Runtime(model=model, caller=ModelCaller(cache=CallCache(":memory:")))
    node = NODE.with_params(samples=3)
    assert node.run({"text": "x"}, rt) == {"label": "a"}
    assert node.run({"text": "x"}, rt) == {"label": "a"}
    assert model.call_count == 3


def test_missing_input_raises_node_input_error_naming_it():
    with pytest.raises(NodeInputError, match=r"'cls' needs input\(s\) \['text'\]"):
        NODE.run({"txt": "x"}, runtime(ScriptedChatModel()))


def test_with_params_returns_a_validated_copy():
    hot = NODE.with_params(temperature=1.2, n_examples=2)
    assert (hot.params.temperature, hot.params.n_examples) == (1.2, 2)
    assert NODE.params.temperature == 0.0  # the original is unchanged
    with pytest.raises(ValidationError):
        NODE.with_params(temperature=-1)
    with pytest.raises(ValidationError):
        NODE.with_params(max_tokens=0)


def test_with_params_rejects_unknown_parameters():
    with pytest.raises(ValidationError, match="temprature"):
        NODE.with_params(temprature=0.5)
    with pytest.raises(ValidationError, match="temprature"):
        MicroPrompt("x", task="t", inputs=["q"], temprature=0.5)


def test_micro_prompts_are_immutable_values():
    with pytest.raises(ValidationError):
        NODE.name = "other"  # type: ignore[misc]
    renamed = NODE.replace(name="other", examples=[{"inputs": {"text": "q"}, "output": {"label": "a"}}])
    assert renamed.name == "other" and renamed.examples[0].output == {"label": "a"} and NODE.name == "cls"


def test_a_node_model_spec_overrides_the_runtime_default():
    default = ScriptedChatModel(replies=['{"label": "a"}'])
    rt = runtime(default)
    other = ScriptedChatModel(replies=['{"label": "b"}'])
    rt._models["special"] = other
    assert NODE.with_params(model="special").run({"text": "x"}, rt) == {"label": "b"}
    assert default.call_count == 0


# --- function nodes and refs ------------------------------------------------------------------------------------
def double(state):
    return {"y": state["x"] * 2}


def not_a_dict(state):
    return 3


def test_function_node_runs_and_traces():
    node = FunctionNode("dbl", double, reads=["x"], writes=["y"])
    recorder = Recorder()
    assert node.run({"x": 2}, recorder) == {"y": 4}
    assert recorder.traces[0].kind == "function" and recorder.traces[0].output == {"y": 4}
    assert node.ref == "tests.nodes.test_run:double"


def test_function_node_returning_a_non_dict_raises_type_error_and_is_traced():
    recorder = Recorder()
    with pytest.raises(TypeError, match="returned int, expected a dict"):
        FunctionNode("bad", not_a_dict).run({}, recorder)
    assert "TypeError" in recorder.traces[0].error


def test_function_node_from_an_import_path_respects_allow():
    assert FunctionNode("dbl", "tests.nodes.test_run:double", allow=["tests"]).fn is double
    with pytest.raises(RefError, match="not in the allowed modules"):
        FunctionNode("dbl", "tests.nodes.test_run:double", allow=["microprompts"])


def test_ref_of_refuses_lambdas_and_nested_functions():
    def inner(state):
        return {}

    with pytest.raises(RefError, match="not importable"):
        ref_of(lambda s: {})
    with pytest.raises(RefError, match="not importable"):
        ref_of(inner)


@pytest.mark.parametrize(
    "ref, message",
    [
        ("nocolon", "bad reference"),
        ("os.path:", "bad reference"),
        ("no_such_module_xyz:f", "cannot import"),
        ("tests.nodes.test_run:nothing_here", "has no attribute"),
    ],
)
def test_load_object_errors_are_clear(ref, message):
    with pytest.raises(RefError, match=message):
        load_object(ref)


def test_load_object_refuses_file_paths_when_modules_are_restricted(tmp_path):
    evil = tmp_path / "evil.py"
    evil.write_text("import sys\nsys.modules['_evil_ran'] = True\ndef f(state):\n    return {}\n")
    import sys

    with pytest.raises(RefError, match="names a file; only modules under"):
        load_object(f"{evil}:f", allow=["microprompts"])
    assert "_evil_ran" not in sys.modules
    assert callable(load_object(f"{evil}:f"))  # unrestricted (the CLI's own FLOW argument) still works


class ObjState(BaseModel):
    text: str
    label: str | None = None


def text_length(state):
    return {"n": len(state.text)}


def test_nodes_accept_pydantic_and_dataclass_states():
    import dataclasses

    model = ScriptedChatModel(replies=['{"label": "a"}', '{"label": "b"}'])
    assert NODE.run(ObjState(text="x"), runtime(model)) == {"label": "a"}
    DataState = dataclasses.make_dataclass("DataState", [("text", str)])
    assert NODE.run(DataState(text="y"), runtime(model)) == {"label": "b"}
    assert model.calls[1].user == "text: y"
    recorder = Recorder()
    node = FunctionNode("len", text_length, reads=["text"], writes=["n"])
    assert node.run(ObjState(text="abc"), recorder) == {"n": 3}  # the function gets the object itself
    assert recorder.traces[0].inputs == {"text": "abc"}
    with pytest.raises(TypeError, match="expected a dict, pydantic model or dataclass"):
        NODE.run(["text"], runtime(model))  # type: ignore[arg-type]


class Facts(BaseModel):
    facts: list[str]


FACTS = MicroPrompt("pick", task="Pick the facts.", inputs={"text": "The text."}, output=Facts)


def test_a_json_reply_cut_at_its_limit_keeps_what_it_finished_without_a_repair():
    cut = '{"facts": ["Paris is in France.", "It is on the Seine.", "It has the Lou'
    model = ScriptedChatModel(replies=[cut], finish_reason="length")
    out = FACTS.run({"text": "x"}, runtime(model))
    assert out == {"facts": ["Paris is in France.", "It is on the Seine."]}  # the sentence cut short is dropped
    assert model.call_count == 1  # a repair would be cut at the same limit


@pytest.mark.parametrize(
    ("cut", "finished"),
    [
        ('{"facts": ["A", "B", "C', '{"facts": ["A", "B",'),
        ('{"label": "no', '{"label"'),  # "no" may have been "not sure": no value is kept cut
        ('{"count": 2', '{"count"'),  # nor a number: 2 may have been 25
        ('{"a": 1, "b": [1, 2', '{"a": 1, "b": [1,'),
        ('{"a": "say \\"hi\\"", "b": "x', '{"a": "say \\"hi\\"", "b"'),  # an escaped quote ends no string
        ('{"answer": "Paris"', '{"answer": "Paris"'),
    ],
)
def test_finished_json_keeps_only_the_values_a_cut_reply_finished(cut, finished):
    assert finished_json(cut) == finished


def test_a_cut_reply_that_does_not_validate_still_gets_its_repair():
    model = ScriptedChatModel(replies=['{"lab', '{"label": "a"}'], finish_reason="length")
    assert NODE.run({"text": "x"}, runtime(model)) == {"label": "a"}
    assert model.call_count == 2
    cut_label = ScriptedChatModel(replies=['{"label": "b', '{"label": "b"}'], finish_reason="length")
    assert NODE.run({"text": "x"}, runtime(cut_label)) == {"label": "b"}  # a label cut open is not taken as it is
    assert cut_label.call_count == 2


def test_a_whole_reply_that_does_not_validate_is_not_salvaged():
    model = ScriptedChatModel(replies=['{"facts": ["one"', '{"facts": ["one", "two"]}'])  # finish_reason "stop"
    assert FACTS.run({"text": "x"}, runtime(model)) == {"facts": ["one", "two"]}
    assert model.call_count == 2

"""Property-based tests on artifacts: any mutation of a valid artifact either loads or raises a clear
ArtifactError/ValueError (never another exception type), and `Flow.save` never leaves a partial or temporary
file behind, whether it succeeds or fails (500 examples each)."""

from __future__ import annotations

import contextlib
import copy
import json
import os
from pathlib import Path
from typing import Any, Literal
from unittest import mock

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from microprompts import Example, Flow, FunctionNode, MicroPrompt
from microprompts.flows import ArtifactError, content_hash

PROPERTY = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
ALLOW = ["tests.flows.test_artifact_properties"]


class Label(BaseModel):
    label: Literal["urgent", "normal"]
    confidence: float | None = None


class Reply(BaseModel):
    reply: str


def escalate(state: dict[str, Any]) -> dict[str, Any]:
    """Function node body."""
    return {"reply": "escalated"}


def by_label(state: dict[str, Any]) -> str:
    """Router."""
    return str(state["label"])


def rich_flow() -> Flow:
    """Two micro-prompts (examples, guidelines, params), a function node and a branch."""
    classify = MicroPrompt(
        "classify",
        task="Classify the ticket.",
        guidelines=["Be brief."],
        inputs={"text": "t"},
        output=Label,
        examples=[Example(inputs={"text": "fire"}, output={"label": "urgent"})],
        temperature=0.3,
        reasoning=True,
    )
    answer = MicroPrompt("answer", task="Reply to the ticket.", inputs={"text": "t"}, output=Reply, data_format="xml")
    return (
        Flow("triage")
        .add(classify)
        .add(answer)
        .add(FunctionNode("escalate", escalate, reads=["text"], writes=["reply"]))
        .edge("__start__", "classify")
        .branch("classify", by_label, {"urgent": "escalate", "normal": "answer"})
    )


VALID = rich_flow().to_dict()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside the artifact (the root excluded)."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            found.append(prefix + (key,))
            found += _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.append(prefix + (index,))
            found += _paths(item, prefix + (index,))
    return found


PATHS = _paths(VALID)


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A valid artifact with 1-3 edits (replace, delete or add), usually re-hashed so the edits get checked."""
    data = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        parent: Any = data
        try:
            for key in path[:-1]:
                parent = parent[key]
            last = path[-1]
            action = draw(st.sampled_from(["replace", "delete", "add"]))
            if action == "replace":
                parent[last] = draw(json_values)
            elif action == "delete":
                del parent[last]
            elif isinstance(parent, dict):
                parent[draw(st.text(max_size=8))] = draw(json_values)
            elif isinstance(parent, list):
                parent.append(draw(json_values))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed or replaced this path
    if draw(st.booleans()) or draw(st.booleans()):
        with contextlib.suppress(ArtifactError):  # an edit may key a dict by an int beside strings: no canonical JSON
            data["content_hash"] = content_hash(data)
    return data


def _loads_or_clear_error(data: Any) -> None:
    try:
        flow = Flow.from_dict(data, allow=ALLOW)
    except ValueError as exc:  # ArtifactError, RefError, FlowValidationError... all ValueErrors with a message
        assert str(exc) and "Traceback" not in str(exc)
        return
    assert isinstance(flow, Flow)


@settings(PROPERTY)
@given(data=mutated())
def test_mutated_artifacts_load_or_raise_a_clear_error(data):
    _loads_or_clear_error(data)


@settings(PROPERTY)
@given(data=json_values | st.dictionaries(st.sampled_from(list(VALID)), json_values))
def test_arbitrary_json_is_refused_clearly(data):
    _loads_or_clear_error(data)


@settings(PROPERTY)
@given(cut=st.integers(0, len(json.dumps(VALID)) - 1), junk=st.binary(max_size=8))
def test_damaged_files_are_refused_clearly(tmp_path_factory, cut, junk):
    path = Path(tmp_path_factory.mktemp("damaged")) / "a.json"
    path.write_bytes(json.dumps(VALID).encode()[:cut] + junk)
    try:
        Flow.load(str(path), allow=ALLOW)
    except ValueError as exc:
        assert str(exc)


def test_the_unmutated_artifact_loads():
    assert Flow.from_dict(copy.deepcopy(VALID), allow=ALLOW).content_hash() == VALID["content_hash"]


texts = st.text(max_size=60)


@settings(PROPERTY)
@given(
    task=texts,
    guideline=texts,
    example=json_values,
    secret_in_task=st.booleans(),
    failure=st.sampled_from([None, "replace", "fsync", "write"]),
)
def test_save_leaves_no_partial_or_temp_file(tmp_path_factory, task, guideline, example, secret_in_task, failure):
    secret = "sk-prop-0123456789abcdef"
    assume(secret not in task + guideline + json.dumps(example))
    folder = Path(tmp_path_factory.mktemp("save"))
    target = folder / "flow.json"
    old = rich_flow()
    old.save(str(target))
    before = target.read_bytes()
    node = MicroPrompt(
        "reply",
        task=(task + secret) if secret_in_task else task,
        guidelines=[guideline],
        inputs={"text": "t"},
        output=Reply,
        examples=[{"inputs": {"text": example}, "output": {}}],
    )
    flow = Flow("f").then(node)
    patches = {
        "replace": mock.patch("os.replace", side_effect=OSError("disk full")),
        "fsync": mock.patch("os.fsync", side_effect=OSError("io error")),
        "write": mock.patch("os.fdopen", side_effect=OSError("no space")),
    }
    with mock.patch.dict(os.environ, {"MY_API_KEY": secret}):
        context = patches[failure] if failure else contextlib.nullcontext()
        with context:
            try:
                flow.save(str(target))
                saved = True
            except (OSError, ValueError):
                saved = False
    assert sorted(p.name for p in folder.iterdir()) == ["flow.json"]  # no temp file, ever
    if saved:
        assert not secret_in_task and failure is None
        assert Flow.load(str(target), allow=ALLOW).content_hash() == flow.content_hash()
        assert secret.encode() not in target.read_bytes()
    else:
        assert target.read_bytes() == before  # the old artifact is intact
        assert secret_in_task or failure is not None


@pytest.mark.parametrize("bad", [None, [], "x", 1])
def test_non_dict_artifacts(bad):
    with pytest.raises(ValueError, match="not a microprompts flow artifact"):
        Flow.from_dict(bad)


def test_a_dict_keyed_by_int_and_str_is_refused_clearly():
    data = copy.deepcopy(VALID)
    data["nodes"][0]["params"][1] = "x"  # only a Python dict can hold this: JSON keys are strings
    with pytest.raises(ArtifactError, match="not canonical JSON"):
        Flow.from_dict(data, allow=ALLOW)

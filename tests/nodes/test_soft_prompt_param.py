"""A soft prompt as a node parameter: only its reference is stored, it runs only on a model that carries soft
prompts (one clear error naming the node otherwise), and the call cache tells it apart from the bare model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from microprompts import Flow, MicroPrompt
from microprompts.flows.artifact import node_to_dict
from microprompts.models.soft_prompt import SoftPromptError, SoftPromptRef
from microprompts.nodes import Params, Runtime
from microprompts.nodes.soft import soft_model
from microprompts.testing import ScriptedChatModel

REF = SoftPromptRef(file="answer.0123456789ab.safetensors", sha256="0" * 64, num_virtual_tokens=4, base_model="hf:abc")


def _node(**params: Any) -> MicroPrompt:
    return MicroPrompt(
        "answer", task="Answer yes or no.", inputs={"question": "A question."}, reply_format="lines", **params
    )


def test_params_hold_a_soft_prompt_reference_that_round_trips() -> None:
    assert Params().soft_prompt is None
    params = Params(soft_prompt=REF)
    again = Params.model_validate_json(params.model_dump_json())
    assert again == params and again.soft_prompt == REF
    assert _node().with_params(soft_prompt=REF).params.soft_prompt == REF  # with_params revalidates the dump


def test_the_artifact_stores_the_reference_only_and_nothing_without_one() -> None:
    assert "soft_prompt" not in node_to_dict(_node())["params"]  # old artifacts and their hashes are unchanged
    stored = node_to_dict(_node(soft_prompt=REF))["params"]["soft_prompt"]
    assert stored == {
        "method": "prompt_tuning",
        "file": REF.file,
        "sha256": REF.sha256,
        "num_virtual_tokens": 4,
        "lora": None,
        "base_model": "hf:abc",
    }
    json.dumps(stored)  # plain JSON: no tensors


def test_a_bad_reference_in_params_is_refused() -> None:
    with pytest.raises(ValueError, match="plain `NAME.safetensors`"):
        Params.model_validate({"soft_prompt": {**REF.model_dump(), "file": "../elsewhere.safetensors"}})


def test_a_soft_prompt_on_a_model_without_soft_prompts_names_the_node_and_the_hf_spec(tmp_path: Path) -> None:
    flow = Flow("f").then(_node(soft_prompt=REF)).evolve(soft_dir=str(tmp_path))
    graph = flow.compile(model=ScriptedChatModel(replies=["yes"], repeat_last=True))
    with pytest.raises(SoftPromptError) as info:
        graph.invoke({"question": "Is 3 odd?"})
    message = str(info.value)
    assert "'answer'" in message and "hf:" in message and "TorchChatModel" in message and "hf:abc" in message


def test_a_soft_prompt_with_no_folder_is_one_error() -> None:
    class Carrier(ScriptedChatModel):
        def with_soft_prompt(self, ref: SoftPromptRef | None, directory: str | Path | None = None) -> ScriptedChatModel:
            return self

    with pytest.raises(SoftPromptError, match="'answer' holds soft prompt file .*Flow.load"):
        soft_model("answer", Carrier(), REF, None)


def test_the_runtime_carries_the_flow_soft_dir(tmp_path: Path) -> None:
    assert Runtime(caller=None, soft_dir=tmp_path).soft_dir == str(tmp_path)
    flow = Flow("f").then(_node()).evolve(soft_dir=str(tmp_path))
    assert flow.evolve(name="g").soft_dir == str(tmp_path)  # a mutated copy keeps its folder
    assert flow.replace_node(_node(temperature=0.5)).soft_dir == str(tmp_path)

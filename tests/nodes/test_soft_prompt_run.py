"""A node holding a soft prompt runs on the tiny random `hf:` model with the prompt loaded from its flow's folder, and
the call cache keys its calls apart from the bare model's (the soft prompt's hash is in the model's identity)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the [soft] extra (torch==2.13.0, transformers, peft) is not installed")
pytest.importorskip("peft", reason="the [soft] extra (peft) is not installed")

from microprompts import Flow
from microprompts.models.cache import CallCache
from microprompts.models.client import ModelCaller
from microprompts.models.soft_prompt import SoftPromptError
from microprompts.models.spec import model_identity
from microprompts.models.torch_model import TorchChatModel
from microprompts.nodes import Runtime
from microprompts.nodes.soft import node_model
from tests.fakes.tiny_soft import QUESTIONS, plain_node, soft_setup
from tests.fakes.tiny_torch import build_tiny_model


def test_the_node_model_carries_its_soft_prompt_and_the_cache_key_follows_it(tmp_path: Path) -> None:
    setup = soft_setup(tmp_path)
    runtime = Runtime(model=setup.model, caller=None, soft_dir=setup.folder)
    tuned = node_model("answer", setup.node.params, runtime)
    bare = node_model("answer", plain_node().params, runtime)
    assert bare is setup.model and tuned.soft_prompt == setup.ref  # type: ignore[attr-defined]
    assert model_identity(tuned) != model_identity(bare) and setup.ref.sha256 in model_identity(tuned)
    assert node_model("answer", setup.node.params, runtime) is tuned  # built once, then reused

    caller = ModelCaller(cache=CallCache(tmp_path / "calls.sqlite"))
    soft = setup.flow.compile(model=setup.model, caller=caller)
    plain = Flow("plain").then(plain_node()).compile(model=setup.model, caller=caller)
    first = [soft.invoke({"question": q})["output"] for q in QUESTIONS]
    assert caller.cache is not None and len(caller.cache) == len(QUESTIONS)
    without = [plain.invoke({"question": q})["output"] for q in QUESTIONS]
    assert len(caller.cache) == 2 * len(QUESTIONS)  # the same messages, a different key: never the other's reply
    assert first != without  # the virtual tokens change what the model says
    assert [soft.invoke({"question": q})["output"] for q in QUESTIONS] == first
    assert len(caller.cache) == 2 * len(QUESTIONS)  # the second run is served from the cache


def test_a_soft_prompt_trained_on_another_model_names_the_node(tmp_path: Path) -> None:
    setup = soft_setup(tmp_path)
    other = TorchChatModel(model_path=str(build_tiny_model(tmp_path / "other", seed=7)), n_threads=1, max_tokens=4)
    graph = setup.flow.compile(model=other, caller=ModelCaller(cache=None))
    with pytest.raises(SoftPromptError, match="node 'answer': soft prompt .* was trained on"):
        graph.invoke({"question": "Is 3 odd?"})

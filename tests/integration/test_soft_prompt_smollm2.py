"""Prompt tuning on the embedded SmolLM2 through torch (the `hf:local` spec): 4 virtual tokens trained for 3 steps
from a node's rows, saved beside an artifact, verified on load, and served by a compiled flow."""

from __future__ import annotations

from pathlib import Path

import pytest

from microprompts.models.errors import ModelSpecError
from microprompts.models.local import smollm2_path

pytest.importorskip("torch", reason="the [soft] extra (torch==2.13.0, transformers, peft, gguf) is not installed")
pytest.importorskip("peft", reason="the [soft] extra (peft) is not installed")
pytest.importorskip("gguf", reason="the [soft] extra (gguf) is not installed: transformers reads GGUF files with it")

from microprompts.data.dataset import Row
from microprompts.flows.flow import Flow
from microprompts.models.client import ModelCaller
from microprompts.models.soft_train import SoftTrainConfig
from microprompts.models.spec import model_identity, resolve_model
from microprompts.models.torch_model import TorchChatModel
from microprompts.nodes.micro_prompt import MicroPrompt
from microprompts.optimizers.soft import train_node_soft_prompt

pytestmark = pytest.mark.integration

NODE = MicroPrompt(
    "answer",
    task="Answer the question with yes or no.",
    inputs={"question": "A yes/no question."},
    reply_format="lines",
)
ROWS = [
    Row(inputs={"question": "Is the sky blue?"}, output={"output": "yes"}),
    Row(inputs={"question": "Is fire cold?"}, output={"output": "no"}),
    Row(inputs={"question": "Do fish swim?"}, output={"output": "yes"}),
    Row(inputs={"question": "Is ice hot?"}, output={"output": "no"}),
]


@pytest.fixture(scope="module")
def smollm2() -> TorchChatModel:
    try:
        smollm2_path()
    except ModelSpecError as exc:
        pytest.skip(str(exc))
    model = resolve_model("hf:local")
    assert isinstance(model, TorchChatModel)
    return model.model_copy(update={"n_threads": 1, "max_tokens": 16})


def test_four_virtual_tokens_train_on_smollm2_and_are_served(smollm2: TorchChatModel, tmp_path: Path) -> None:
    config = SoftTrainConfig(num_virtual_tokens=4, steps=3, lr=0.01, eval_every=3)
    run = train_node_soft_prompt(NODE, smollm2, ROWS[:3], ROWS[3:], tmp_path, config)
    assert run.report.steps == 3 and len(run.report.train_losses) == 3 and run.report.seconds > 0
    assert run.ref.num_virtual_tokens == 4 and run.ref.base_model == smollm2.checkpoint().identity
    tuned = smollm2.with_soft_prompt(run.ref, tmp_path)
    assert model_identity(tuned) != model_identity(smollm2)
    caller = ModelCaller()
    agent = Flow("yes_no").then(NODE).compile(model=tuned, caller=caller)
    out = agent.invoke({"question": "Is water wet?"})
    assert isinstance(out["output"], str) and out["output"].strip()
    usage = caller.meter.snapshot()
    assert usage.calls >= 1 and usage.prompt_tokens > 4

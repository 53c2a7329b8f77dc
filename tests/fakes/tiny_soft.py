"""A one-node flow whose node holds a soft prompt (4 random virtual tokens) for the tiny random model, for the tests
of soft prompts in nodes, artifacts, evaluate, serve and the optimizer; needs the `[soft]` extra."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from microprompts import Flow, MicroPrompt
from microprompts.models.soft_prompt import SoftPromptRef
from microprompts.models.torch_model import TorchChatModel, save_soft_prompt
from tests.fakes.tiny_torch import build_tiny_model

QUESTIONS = ["Is 3 odd?", "Is 4 odd?", "Is the sky green?"]

torch.set_num_threads(1)


@dataclass
class SoftSetup:
    """The tiny model, a soft prompt trained for nothing (random), the folder holding it, and the node and flow."""

    model: TorchChatModel
    ref: SoftPromptRef
    folder: Path
    node: MicroPrompt
    flow: Flow


def plain_node() -> MicroPrompt:
    """A node the tiny model can always answer: one text field, replied as bare `lines` text."""
    return MicroPrompt(
        "answer", task="Answer yes or no.", inputs={"question": "A yes/no question."}, reply_format="lines"
    )


def soft_setup(directory: Path, tiny: Path | None = None, k: int = 4, seed: int = 1) -> SoftSetup:
    """Build (or reuse `tiny`) the tiny model, write a random k-token soft prompt for it under `directory`/made, and
    a flow whose node holds it (its soft_dir that folder)."""
    tiny = tiny or build_tiny_model(directory / "tiny")
    model = TorchChatModel(model_path=str(tiny), n_threads=1, max_tokens=6)
    width = int(model.checkpoint().model.get_input_embeddings().weight.shape[1])
    generator = torch.Generator().manual_seed(seed)
    folder = directory / "made"
    ref = save_soft_prompt(torch.randn(k, width, generator=generator), folder, "answer", model.checkpoint().identity)
    node = plain_node().with_params(soft_prompt=ref)
    flow = Flow("soft").then(node).evolve(soft_dir=str(folder))
    return SoftSetup(model, ref, folder, node, flow)

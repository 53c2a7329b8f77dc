"""Training a node's soft prompt from dataset rows (tiny random model, seconds): the pairs are the node's rendered
input and its gold reply, the trained file lands beside the artifact, and the node's loss on dev goes down."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the [soft] extra (torch==2.13.0, transformers, peft) is not installed")
pytest.importorskip("peft", reason="the [soft] extra (peft) is not installed")

from microprompts.data.dataset import Row
from microprompts.models.soft_train import SoftTrainConfig, pair_loss
from microprompts.models.torch_model import TorchChatModel
from microprompts.nodes.micro_prompt import MicroPrompt
from microprompts.optimizers.soft import distill_node_soft_prompt, node_pairs, short_node, train_node_soft_prompt
from tests.fakes.tiny_torch import build_tiny_model

NODE = MicroPrompt("answer", task="Answer yes or no.", inputs={"question": "A yes/no question."})
ROWS = [Row(inputs={"question": f"Is {i} odd?"}, output={"output": "yes" if i % 2 else "no"}) for i in range(8)]


def test_pairs_are_the_rendered_input_and_the_gold_reply() -> None:
    rows = [*ROWS[:2], Row(inputs={"other": "x"}, output={"output": "no"}), Row(inputs={"question": "q"})]
    pairs = node_pairs(NODE, rows)
    assert len(pairs) == 2  # rows without the node's input or its output are skipped
    messages, reply = pairs[1]
    assert [m.type for m in messages] == ["system", "human"] and "Is 1 odd?" in str(messages[1].content)
    assert "Answer yes or no." in str(messages[0].content)
    assert reply == '{"output": "yes"}'


def test_a_node_soft_prompt_trains_from_rows_and_lands_beside_the_artifact(tmp_path: Path) -> None:
    model = TorchChatModel(model_path=str(build_tiny_model(tmp_path / "tiny")), n_threads=1, max_tokens=8)
    config = SoftTrainConfig(num_virtual_tokens=4, steps=20, lr=0.3, eval_every=5)
    run = train_node_soft_prompt(NODE, model, ROWS[:6], ROWS[6:], tmp_path / "artifact", config)
    assert run.ref.path(tmp_path / "artifact").is_file() and run.ref.file.startswith("answer.")
    assert run.train_pairs == 6 and run.dev_pairs == 2 and run.report.examples == run.report.steps > 0
    assert run.report.initial_dev_loss is not None and run.report.best_dev_loss is not None
    assert run.report.best_dev_loss < run.report.initial_dev_loss
    tuned = model.with_soft_prompt(run.ref, tmp_path / "artifact")
    assert pair_loss(tuned, node_pairs(NODE, ROWS[6:])) == pytest.approx(run.report.best_dev_loss, rel=1e-4)


def test_no_usable_training_row_is_one_clear_error(tmp_path: Path) -> None:
    model = TorchChatModel(model_path=str(tmp_path / "unused"), n_threads=1)
    with pytest.raises(ValueError, match="no training row holds its inputs"):
        train_node_soft_prompt(NODE, model, [Row(inputs={"x": 1}, output={"output": "no"})], None, tmp_path)


def test_distilling_a_node_into_its_short_form(tmp_path: Path) -> None:
    model = TorchChatModel(model_path=str(build_tiny_model(tmp_path / "tiny")), n_threads=1, max_tokens=6)
    short = short_node(NODE)
    assert [s.kind for s in short.sections] == ["task"] and short.name == NODE.name
    inputs = {"question": "Is 1 odd?"}
    assert len(str(short.render(inputs)[0].content)) < len(str(NODE.render(inputs)[0].content))
    config = SoftTrainConfig(num_virtual_tokens=4, steps=10, lr=0.3, eval_every=5, max_target_tokens=6)
    run = distill_node_soft_prompt(NODE, model, ROWS[:4], ROWS[4:6], tmp_path / "artifact", config)
    assert run.ref.file.startswith("answer.distilled.") and run.train_pairs == 4 and run.dev_pairs == 2
    assert run.report.best_dev_loss is not None and run.report.initial_dev_loss is not None
    assert run.report.best_dev_loss < run.report.initial_dev_loss

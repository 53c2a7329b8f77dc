"""The `soft_prompt` operator on the tiny random model: it trains a soft prompt for a node from the train rows,
proposes the node holding it (the file in the operator's folder, the child's soft_dir), and records the training's
cost (seconds, examples) in the mutation's note, which the journal keeps."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from pydantic import BaseModel

pytest.importorskip("torch", reason="the [soft] extra (torch==2.13.0, transformers, peft) is not installed")
pytest.importorskip("peft", reason="the [soft] extra (peft) is not installed")

from microprompts import Budget, Flow, MicroPrompt, optimize
from microprompts.data.dataset import Row
from microprompts.evals import EvalResult, evaluate
from microprompts.evals.evaluate import RowResult
from microprompts.evals.metrics import exact_match
from microprompts.models import Usage
from microprompts.models.client import ModelCaller
from microprompts.models.soft_train import SoftTrainConfig
from microprompts.nodes import NodeTrace
from microprompts.optimizers.candidate import Candidate
from microprompts.optimizers.mutators.base import MutationContext
from microprompts.optimizers.mutators.soft import SoftPrompt, soft_prompt_rows
from microprompts.testing import ScriptedChatModel
from tests.fakes.tiny_soft import SoftSetup, plain_node, soft_setup
from tests.fakes.tiny_torch import build_tiny_model

ROWS = [Row(inputs={"question": f"Is {i} odd?"}, output={"output": "yes" if i % 2 else "no"}) for i in range(6)]


class Echo(BaseModel):
    echo: str


CONFIG = SoftTrainConfig(num_virtual_tokens=4, steps=6, lr=0.3, eval_every=3)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def setup(tmp_path: Path, tiny: Path) -> SoftSetup:
    return soft_setup(tmp_path, tiny)


def _ctx(**changes: object) -> MutationContext:
    ctx = MutationContext(train=ROWS, metric=exact_match("output"), rng=random.Random(0))
    for key, value in changes.items():
        setattr(ctx, key, value)
    return ctx


def test_it_proposes_the_node_with_a_trained_soft_prompt_and_records_the_cost(tmp_path: Path, setup: SoftSetup) -> None:
    run_dir = tmp_path / "run" / "soft"
    mutator = SoftPrompt(setup.model, run_dir, CONFIG)
    parent = Flow("f").then(plain_node())
    assert mutator.addresses(parent) == ["answer.params.soft_prompt"]
    [(child, mutation)] = mutator.propose(Candidate(parent), _ctx(), n=1)
    ref = child.nodes["answer"].params.soft_prompt  # type: ignore[union-attr]
    assert ref is not None and ref.num_virtual_tokens == 4 and (run_dir / ref.file).is_file()
    assert child.soft_dir == str(run_dir.resolve()) and parent.nodes["answer"].params.soft_prompt is None  # type: ignore[union-attr]
    assert (mutation.operator, mutation.kind) == ("soft_prompt", "parameters")
    assert mutation.address == "answer.params.soft_prompt"
    assert mutation.before is None and mutation.after == ref.model_dump(mode="json")
    found = re.search(r"on (\d+) pairs \(dev (\d+)\): (\d+) steps, (\d+) examples, ([\d.]+) s", mutation.note)
    assert found, mutation.note
    assert (int(found[1]) + int(found[2]), int(found[3]), int(found[4])) == (6, 6, 6) and float(found[5]) > 0
    assert mutation.model_dump()["note"] == mutation.note  # what the journal writes

    result = evaluate(child, ROWS[:2], exact_match("output"), model=setup.model, caller=ModelCaller(cache=None))
    assert result.errors == 0  # the child runs, its tensors read from the run's folder
    saved = tmp_path / "best" / "flow.json"
    child.save(saved)
    assert (saved.parent / ref.file).is_file() and Flow.load(saved).nodes["answer"] == child.nodes["answer"]


def test_other_nodes_soft_prompts_follow_the_child_into_the_operator_folder(tmp_path: Path, setup: SoftSetup) -> None:
    echo = MicroPrompt(
        "echo", task="Say it again.", inputs={"question": "A question."}, output=Echo, reply_format="lines"
    )
    parent = setup.flow.then(echo)  # node `answer` holds a soft prompt in setup.folder
    rows = [Row(inputs={"question": r.inputs["question"]}, output={"echo": "yes"}) for r in ROWS]
    run_dir = tmp_path / "run"
    [(child, _)] = SoftPrompt(setup.model, run_dir, CONFIG).propose(Candidate(parent), _ctx(train=rows), n=1)
    assert child.nodes["echo"].params.soft_prompt is not None  # type: ignore[union-attr]
    assert (run_dir / setup.ref.file).is_file() and child.soft_dir == str(run_dir.resolve())


def test_it_skips_nodes_with_a_soft_prompt_frozen_nodes_other_models_and_nodes_without_rows(
    tmp_path: Path, setup: SoftSetup
) -> None:
    mutator = SoftPrompt(setup.model, tmp_path / "run", CONFIG)
    assert mutator.propose(Candidate(setup.flow), _ctx(), n=1) == []  # it holds one already
    plain = Flow("f").then(plain_node())
    assert mutator.propose(Candidate(plain), _ctx(frozen=["answer.*"]), n=1) == []
    other = Flow("f").then(plain_node().with_params(model="openai:gpt-4o-mini"))
    assert mutator.propose(Candidate(other), _ctx(), n=1) == []
    assert mutator.propose(Candidate(plain), _ctx(train=[Row(inputs={"x": 1}, output={"output": "no"})]), n=1) == []
    assert not (tmp_path / "run").exists()  # nothing was trained


def test_it_refuses_a_model_that_cannot_carry_a_soft_prompt(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="local `hf:` model"):
        SoftPrompt(ScriptedChatModel(), tmp_path)


def test_an_inner_node_learns_from_what_it_did_on_the_rows_the_parent_got_right() -> None:
    node = plain_node()

    def result(score: float, output: str) -> RowResult:
        trace = NodeTrace(node="answer", kind="micro_prompt", inputs={"question": "q"}, output={"output": output})
        return RowResult(index=0, inputs={"topic": "t"}, score=score, traces=[trace])

    evaluation = EvalResult(
        score=0.5, n=2, errors=0, rows=[result(1.0, "right"), result(0.0, "wrong")], usage=Usage(), seconds=0.0
    )
    rows = soft_prompt_rows(node, [{"inputs": {"topic": "t"}, "output": {"final": "x"}}], evaluation)
    assert [r.output for r in rows] == [{"final": "x"}, {"output": "right"}]


def test_optimize_takes_the_operator_and_its_journal_shows_the_training_cost(tmp_path: Path, setup: SoftSetup) -> None:
    run_dir = tmp_path / "run"
    soft = SoftPrompt(setup.model, run_dir / "soft", CONFIG)
    result = optimize(
        Flow("f").then(plain_node()),
        train=ROWS[:4],
        dev=ROWS[4:],
        metric=exact_match("output"),
        model=setup.model,
        optimizer_model="none",
        mutators=[soft],
        budget=Budget(calls=12),
        run_dir=str(run_dir),
    )
    events = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text(encoding="utf-8").splitlines()]
    notes = [e["mutation"]["note"] for e in events if (e.get("mutation") or {}).get("operator") == "soft_prompt"]
    assert notes and all(re.search(r"\d+ steps, \d+ examples, [\d.]+ s", n) for n in notes)
    assert result.best is not None


def test_an_hf_task_model_brings_the_operator_into_the_default_set(tmp_path: Path, setup: SoftSetup) -> None:
    run_dir = tmp_path / "run"
    kw = dict(train=ROWS[:4], dev=ROWS[4:], metric=exact_match("output"), optimizer_model="none", progress=False)
    optimize(Flow("f").then(plain_node()), model=setup.model, budget=Budget(calls=4), run_dir=str(run_dir), **kw)
    assert "soft_prompt" in json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["mutators"]
    other = tmp_path / "other"
    optimize(Flow("f").then(plain_node()), model=ScriptedChatModel(replies=["yes"]), budget=Budget(calls=4),
             run_dir=str(other), **kw)  # fmt: skip
    assert "soft_prompt" not in json.loads((other / "run.json").read_text(encoding="utf-8"))["mutators"]

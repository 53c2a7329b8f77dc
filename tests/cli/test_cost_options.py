"""`microprompts optimize --cost-weight --models --price`: a priced run moves a node to the cheaper model and saves
the Pareto front; a bad price is one error line and exit 2, before anything is read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import microprompts.cli.optimize
import microprompts.nodes.runtime as runtime_module
from microprompts.cli import main
from microprompts.flows import Flow
from microprompts.nodes import MicroPrompt
from microprompts.testing import SimulatedChatModel
from tests.cli.sim_run import FLOW, run_args
from tests.optimizers import engine_helpers as h


@pytest.fixture(autouse=True)
def _simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    """--model sim is the simulated topic model; a node's own `sim:small` is another of the same task."""
    model = h.model("cli")
    small = SimulatedChatModel(task=h.TASK, name="small")
    real = runtime_module.resolve_model
    monkeypatch.setattr(microprompts.cli.optimize, "resolve_model", lambda spec, *args, **kwargs: model)
    monkeypatch.setattr(
        runtime_module,
        "resolve_model",
        lambda spec, *args, **kwargs: small if spec == "sim:small" else real(spec, *args, **kwargs),
    )


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_a_priced_run_moves_the_node_to_the_cheaper_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    args = [
        *run_args(tmp_path, out, train=6),
        "--models",
        "sim:small",
        "--price",
        "sim=10/30",
        "--price",
        "sim:small=0.1/0.3",
        "--cost-weight",
        "100",
        "--kind",
        "parameters",
        "--optimizer-model",
        "none",
    ]
    code = main(["optimize", *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    best = Flow.load(out / "best.json").nodes["classify"]
    assert isinstance(best, MicroPrompt) and best.params.model == "sim:small"
    index = json.loads((out / "pareto" / "index.json").read_text())
    assert index["cost_unit"] == "dollars"
    assert {"classify": "sim:small"} in [e["models"] for e in index["front"]]
    for entry in index["front"]:
        assert Flow.load(out / entry["artifact"]).name == "topic"
    run = json.loads((out / "run.json").read_text())
    assert run["cost_weight"] == 100.0 and set(run["prices"]) == {"sim", "sim:small"}


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--price", "sim=cheap"], "bad --price 'sim=cheap': expected SPEC=IN/OUT"),
        (["--price", "sim"], "bad --price 'sim'"),
        (["--price", "sim=-1/2"], "bad --price 'sim=-1/2'"),
        (["--price", "sim=1/2", "--price", "sim=0.1s"], "--price names 'sim' twice"),
        (["--cost-weight", "-1"], "Invalid value for '--cost-weight'"),
    ],
)
def test_bad_price_options_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], extra: list[str], says: str
) -> None:
    # no file named here exists: the options fail before anything is read
    code = main(["optimize", FLOW, "--train", "missing.jsonl", "--metric", "exact_match:label", *extra])
    assert code == 2
    assert says in _one_line(capsys)


def test_the_help_lists_the_cost_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["optimize", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--cost-weight", "--price", "--models"):
        assert option in text

"""The `soft_prompt` operator: train a soft prompt (prompt tuning by default) for one node on its local `hf:` model
from the train rows, and propose the node holding it, so the search weighs it against the hard-prompt candidates.

Part of the optional `[soft]` extra: import it explicitly and pass it in `mutators=[...]`. Training is its own cost,
not model calls: its seconds and examples go in the mutation's note, which the journal keeps. The tensors are written
to the operator's `directory` (the run's folder), which becomes the child flow's `soft_dir`; saving the winner copies
them beside its artifact.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from langchain_core.language_models import BaseChatModel

from microprompts.data.dataset import Row
from microprompts.evals import EvalResult
from microprompts.flows import Flow
from microprompts.models.soft_prompt import copy_verified
from microprompts.models.soft_train import SoftTrainConfig
from microprompts.models.spec import resolve_model
from microprompts.models.torch_model import TorchChatModel
from microprompts.nodes import MicroPrompt
from microprompts.optimizers.candidate import Candidate
from microprompts.optimizers.mutators.base import Move, MutationContext, Mutator
from microprompts.optimizers.soft import SoftPromptRun, node_pairs, train_node_soft_prompt

__all__ = ["SoftPrompt", "soft_prompt_rows"]

DEV_SHARE = 0.2  # of the usable rows, held out for early stopping (when there are at least MIN_DEV_ROWS of them)
MIN_DEV_ROWS = 5


class SoftPrompt(Mutator):
    """Train a soft prompt for one node (one the rows can teach: they hold its inputs and outputs, or the parent's
    correct runs recorded them) on `model`, the `hf:` task model, and set it in the node's `params.soft_prompt`."""

    name: ClassVar[str] = "soft_prompt"
    kind = "parameters"
    needs_evaluation: ClassVar[bool] = False  # uses the parent's correct runs for inner nodes when there are some

    def __init__(
        self, model: str | BaseChatModel, directory: str | Path, config: SoftTrainConfig | None = None
    ) -> None:
        resolved = resolve_model(model) if isinstance(model, str) else model
        if not isinstance(resolved, TorchChatModel):
            raise TypeError(
                "the soft_prompt operator trains on a local `hf:` model (TorchChatModel), "
                f"not {type(resolved).__name__}"
            )
        self.model = resolved
        self.directory = Path(directory)
        self.config = config or SoftTrainConfig()

    def addresses(self, flow: Flow) -> list[str]:
        """Each micro-prompt's soft prompt."""
        return [f"{mp.name}.params.soft_prompt" for mp in flow.micro_prompts()]

    def drafts(self, candidate: Candidate, ctx: MutationContext, n: int) -> Iterator[Move]:
        """One move per node that holds no soft prompt yet, runs on an `hf:` model (its own or the default) and has
        training rows, in a random order; the training happens when the child is made."""
        flow = candidate.flow
        nodes = [mp for mp in flow.micro_prompts() if mp.params.soft_prompt is None and self._model_of(mp)]
        ctx.rng.shuffle(nodes)
        for mp in nodes:
            rows = soft_prompt_rows(mp, ctx.train, ctx.evaluation)
            if not node_pairs(mp, rows):
                continue
            move = Move(f"{mp.name}.params.soft_prompt", None, None, lambda: flow)
            move.make = self._maker(flow, mp, rows, ctx, move)
            if self.allows(move, ctx):
                yield move

    def _maker(self, flow: Flow, node: MicroPrompt, rows: list[Row], ctx: MutationContext, move: Move) -> Any:
        """The thunk that trains the node's soft prompt and returns the child, recording the cost in `move`."""

        def make() -> Flow:
            model = self._model_of(node)
            assert model is not None  # drafts keeps only the nodes that have one
            shuffled = list(rows)
            ctx.rng.shuffle(shuffled)
            n_dev = int(len(shuffled) * DEV_SHARE) if len(shuffled) >= MIN_DEV_ROWS else 0
            dev, train = shuffled[:n_dev], shuffled[n_dev:]
            run = train_node_soft_prompt(node, model, train, dev, self.directory, self.config)
            move.after = run.ref.model_dump(mode="json")
            move.note = cost_note(run, self.config)
            return child_flow(flow, node.with_params(soft_prompt=run.ref), self.directory)

        return make

    def _model_of(self, node: MicroPrompt) -> TorchChatModel | None:
        """The model the node runs on, when it can carry a soft prompt: its own `hf:` spec, else the operator's model;
        None for a node that names another kind of model."""
        spec = node.params.model
        if spec is None:
            return self.model
        if spec.startswith("hf:"):
            resolved = resolve_model(spec)
            return resolved if isinstance(resolved, TorchChatModel) else None
        return None

    def __repr__(self) -> str:
        return f"SoftPrompt({self.model.model_path!r}, {str(self.directory)!r}, {self.config.method})"


def soft_prompt_rows(node: MicroPrompt, train: Sequence[Any], evaluation: EvalResult | None) -> list[Row]:
    """The rows that teach `node`: the train rows holding its inputs and outputs, then, for an inner node, what it
    read and wrote on the rows the parent's last run got fully right."""
    rows = [Row.of(r) for r in train]
    if evaluation is not None:
        for result in evaluation.rows:
            if result.error is not None or result.score < 1.0:
                continue
            for trace in result.traces:
                if trace.node == node.name and trace.error is None and trace.output is not None:
                    rows.append(Row(inputs=dict(trace.inputs), output=dict(trace.output)))
    return rows


def cost_note(run: SoftPromptRun, config: SoftTrainConfig) -> str:
    """The journal's note on a training run: method and size, pairs, steps, examples, seconds and dev losses."""
    report = run.report
    size = f"k={config.num_virtual_tokens}" if config.method != "lora" else f"rank={config.lora.rank}"
    losses = ""
    if report.initial_dev_loss is not None and report.best_dev_loss is not None:
        losses = f"; dev loss {report.initial_dev_loss:.3f} -> {report.best_dev_loss:.3f} (step {report.best_step})"
    return (
        f"trained {config.method} {size} on {run.train_pairs} pairs (dev {run.dev_pairs}): "
        f"{report.steps} steps, {report.examples} examples, {report.seconds:.2f} s{losses}"
    )


def child_flow(flow: Flow, node: MicroPrompt, directory: str | Path) -> Flow:
    """`flow` with `node` swapped in and `directory` as its soft-prompt folder, the other nodes' soft-prompt files
    copied (verified) there first, so the child's files all lie in one folder as an artifact's do."""
    folder = Path(directory).resolve()
    for other in flow.micro_prompts():
        ref = other.params.soft_prompt
        if other.name != node.name and ref is not None:
            copy_verified(ref, flow.soft_dir or folder, folder)
    return flow.replace_node(node).evolve(soft_dir=str(folder))

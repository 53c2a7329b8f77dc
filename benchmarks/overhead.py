"""What microprompts costs per invocation, and how fast the embedded model runs the seat example.

1. Overhead: the seat flow compiled by microprompts against the same one-node graph hand-written in LangGraph
   (render the same messages, call the same instant fake chat model, parse the JSON, validate it), both with
   no call cache. Repeats alternate between the two (ABBA order) in one process; the figure is the median
   per-invocation time over repeats, and the ratio of the two medians.
2. The embedded model (``local``) on a few seat test rows, cache disabled: calls/s and tokens/s.

``python benchmarks/overhead.py [--invocations 300] [--repeats 9] [--model-rows 6] [--no-model]``
prints a table and writes ``benchmarks/results/overhead.json`` (``overhead_no_model.json`` with ``--no-model``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, TypedDict

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from langchain_core.language_models import BaseChatModel  # noqa: E402
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage  # noqa: E402
from langchain_core.outputs import ChatGeneration, ChatResult  # noqa: E402
from langgraph.graph import END, START, StateGraph  # noqa: E402

from examples.seats.flow import Seats, recommend  # noqa: E402
from examples.seats.flow import flow as seats_flow  # noqa: E402
from examples.seats.metric import seat_metric  # noqa: E402
from microprompts import ModelCaller, evaluate  # noqa: E402
from microprompts.data import Dataset  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "overhead.json"
TEST = ROOT / "examples" / "seats" / "data" / "test.jsonl"
REPLY = json.dumps({"recommended_seats": ["economy_14A_window", "economy_15F_window", "economy_16A_window"]})


class InstantChat(BaseChatModel):
    """A chat model that answers at once with a fixed JSON reply (and token counts)."""

    reply: str = REPLY

    @property
    def _llm_type(self) -> str:
        return "instant-fake"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        usage = {"input_tokens": 200, "output_tokens": 30, "total_tokens": 230}
        message = AIMessage(content=self.reply, usage_metadata=usage, response_metadata={"finish_reason": "stop"})
        return ChatResult(generations=[ChatGeneration(message=message)])


class SeatState(TypedDict, total=False):
    """The hand-written graph's state."""

    preferences: str
    available_seats: list[str]
    recommended_seats: list[str]


def hand_messages(system_prompt: str, state: SeatState) -> list[BaseMessage]:
    """The hand-written rendering: a fixed system prompt and the row's fields."""
    user = f"preferences: {state['preferences']}\navailable_seats: {json.dumps(state['available_seats'])}"
    return [SystemMessage(content=system_prompt), HumanMessage(content=user)]


def hand_written_graph(model: BaseChatModel, system_prompt: str) -> Any:
    """The same graph written directly in LangGraph: one node that renders, calls, parses and validates."""

    def recommend_node(state: SeatState) -> dict[str, Any]:
        reply = model.invoke(hand_messages(system_prompt, state), temperature=0.0, max_tokens=256)
        return Seats.model_validate_json(str(reply.content)).model_dump()

    builder = StateGraph(SeatState)
    builder.add_node("recommend", recommend_node)
    builder.add_edge(START, "recommend")
    builder.add_edge("recommend", END)
    return builder.compile()


def per_call_us(graph: Any, inputs: list[dict[str, Any]], n: int) -> float:
    """Mean microseconds per `graph.invoke` over `n` invocations cycling through `inputs`."""
    started = time.perf_counter()
    for i in range(n):
        graph.invoke(inputs[i % len(inputs)])
    return (time.perf_counter() - started) / n * 1e6


def measure_overhead(invocations: int, repeats: int) -> dict[str, Any]:
    """Median per-invocation µs of both graphs, alternating ABBA over `repeats` rounds, and their ratio."""
    model = InstantChat()
    inputs = [dict(row.inputs) for row in Dataset.load(TEST)]
    ours = seats_flow.compile(model=model, caller=ModelCaller(cache=None))
    system_prompt = str(recommend.render(inputs[0])[0].content)
    theirs = hand_written_graph(model, system_prompt)
    for row in inputs:  # the two graphs send the model the very same messages
        assert recommend.render(row) == hand_messages(system_prompt, row)  # type: ignore[arg-type]
    assert ours.invoke(inputs[0])["recommended_seats"] == theirs.invoke(inputs[0])["recommended_seats"]
    graphs = {"microprompts": ours, "langgraph": theirs}
    for graph in graphs.values():  # warm up
        per_call_us(graph, inputs, 50)
    samples: dict[str, list[float]] = {name: [] for name in graphs}
    for r in range(repeats):
        order = list(graphs) if r % 2 == 0 else list(reversed(graphs))
        for name in order:
            samples[name].append(per_call_us(graphs[name], inputs, invocations))
    ours_us, theirs_us = statistics.median(samples["microprompts"]), statistics.median(samples["langgraph"])
    return {
        "invocations_per_repeat": invocations,
        "repeats": repeats,
        "microprompts_us": round(ours_us, 1),
        "langgraph_us": round(theirs_us, 1),
        "ratio": round(ours_us / theirs_us, 3),
        "added_us": round(ours_us - theirs_us, 1),
        "samples_us": {k: [round(v, 1) for v in vs] for k, vs in samples.items()},
    }


def measure_model(rows: int) -> dict[str, Any]:
    """The embedded model on the first `rows` seat test rows, cache off: calls/s, tokens/s, score."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError as exc:
        return {"skipped": f"llama_cpp cannot be imported ({exc})"}
    from microprompts.models import resolve_model
    from microprompts.models.local import default_threads

    model = resolve_model("local")
    warm = ModelCaller(cache=None)
    evaluate(seats_flow, list(Dataset.load(TEST))[-1:], seat_metric, model=model, caller=warm)  # loads the model
    data = list(Dataset.load(TEST))[:rows]
    result = evaluate(seats_flow, data, seat_metric, model=model, caller=ModelCaller(cache=None), concurrency=1)
    u, seconds = result.usage, result.seconds
    return {
        "rows": len(data),
        "score": round(result.score, 3),
        "errors": result.errors,
        "calls": u.calls,
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "seconds": round(seconds, 2),
        "calls_per_s": round(u.calls / seconds, 2),
        "tokens_per_s": round(u.tokens / seconds, 1),
        "prompt_tokens_per_s": round(u.prompt_tokens / seconds, 1),
        "completion_tokens_per_s": round(u.completion_tokens / seconds, 1),
        "threads": default_threads(),
    }


def report(overhead: dict[str, Any], model: dict[str, Any] | None) -> str:
    """The printed table."""
    lines = [
        "per-invocation overhead (seat flow, instant fake model, no cache)",
        f"  {'graph':<28}{'median µs':>12}",
        f"  {'hand-written LangGraph':<28}{overhead['langgraph_us']:>12.1f}",
        f"  {'microprompts compiled flow':<28}{overhead['microprompts_us']:>12.1f}",
        f"  ratio {overhead['ratio']:.2f}x, +{overhead['added_us']:.0f} µs per invocation "
        f"({overhead['repeats']} repeats x {overhead['invocations_per_repeat']} invocations, interleaved)",
    ]
    if model is not None:
        lines.append("embedded model (local, seat test rows, cache off)")
        if "skipped" in model:
            lines.append(f"  skipped: {model['skipped']}")
        else:
            lines += [
                f"  {model['rows']} rows, {model['calls']} calls in {model['seconds']:.1f}s, "
                f"{model['threads']} threads: score {model['score']:.3f}",
                f"  calls/s {model['calls_per_s']:.2f}, tokens/s {model['tokens_per_s']:.0f} "
                f"(prompt {model['prompt_tokens_per_s']:.0f}, completion {model['completion_tokens_per_s']:.0f})",
            ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invocations", type=int, default=300, help="invocations per repeat")
    parser.add_argument("--repeats", type=int, default=9, help="interleaved repeats per graph")
    parser.add_argument("--model-rows", type=int, default=6, help="seat rows run on the embedded model")
    parser.add_argument("--no-model", action="store_true", help="skip the embedded model")
    parser.add_argument("--out", help="JSON output (default: overhead.json; overhead_no_model.json with --no-model)")
    args = parser.parse_args(argv)
    overhead = measure_overhead(args.invocations, args.repeats)
    model = None if args.no_model else measure_model(args.model_rows)
    print(report(overhead, model))
    out = Path(args.out) if args.out else RESULTS.with_name("overhead_no_model.json" if args.no_model else RESULTS.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    data = {
        "overhead": overhead,
        "embedded_model": model,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_1min": load},
    }
    out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reloading a served agent's artifact without dropping requests: the new flow is loaded, checked and compiled
beside the old one, then swapped in; runs in flight finish on the graph they started with. A broken artifact (or
one that changes the flow's inputs or outputs) leaves the old one serving. Every try is recorded in the store."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from pydantic import BaseModel

from microprompts.flows import Flow
from microprompts.models import ModelLike
from microprompts.serve._runner import Agent
from microprompts.serve._warm import flow_models

__all__ = ["ReloadResult", "reload_agent"]

_LOCK = threading.Lock()


class ReloadResult(BaseModel):
    """What a reload did: `ok`, the artifact hash serving now and the one before, or why it kept the old one."""

    ok: bool
    artifact: str | None = None
    artifact_hash: str | None = None
    previous: str | None = None
    error: str | None = None


def _recorded_hash(path: Path, flow: Flow) -> str:
    try:
        recorded = json.loads(path.read_text(encoding="utf-8")).get("content_hash")
    except (OSError, ValueError, AttributeError):
        recorded = None
    return recorded if isinstance(recorded, str) else flow.content_hash()


def _load(agent: Agent, path: Path, model: ModelLike | None, allow_modules: list[str] | None) -> tuple[Flow, str]:
    """The new flow, checked: same inputs and outputs as the serving one, every model resolvable, compiled."""
    flow = Flow.load(str(path), allow_modules)
    if set(flow.input_keys) != set(agent.flow.input_keys) or set(flow.output_keys) != set(agent.flow.output_keys):
        raise ValueError(
            f"the artifact changes the flow's inputs or outputs ({list(flow.input_keys)} -> {list(flow.output_keys)}); "
            "restart the server to serve a different interface"
        )
    flow_models(flow, model)
    return flow, _recorded_hash(path, flow)


def reload_agent(
    agent: Agent, artifact: str | Path | None, model: ModelLike | None = None, allow_modules: list[str] | None = None
) -> ReloadResult:
    """Load `artifact` (the served artifact file) again and swap it in; on any failure keep the old flow serving.
    The outcome is recorded in the agent's store as a `reload` event."""
    previous = agent.artifact_hash
    with _LOCK:
        try:
            if artifact is None or not str(artifact).endswith(".json"):
                raise ValueError("the server was not started from an artifact file, so there is nothing to reload")
            flow, new_hash = _load(agent, Path(artifact), model, allow_modules)
            graph = flow.compile(model=model, caller=agent.caller)
        except Exception as exc:  # noqa: BLE001 - any broken artifact keeps the old one serving
            result = ReloadResult(ok=False, artifact=None if artifact is None else str(artifact), previous=previous)
            result.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:500]
            result.artifact_hash = previous
        else:
            agent.graph, agent.flow, agent.artifact_hash = graph, flow, new_hash
            result = ReloadResult(ok=True, artifact=str(artifact), artifact_hash=new_hash, previous=previous)
    if agent.store is not None:
        agent.store.record_event("reload", result.model_dump())
    return result

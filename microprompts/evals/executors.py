"""Executors by name: ``local``, ``ray`` or ``ray:ADDRESS`` (see `microprompts.evals.executor`); the Ray executor's
module is loaded only when asked for, since Ray is an optional extra."""

from __future__ import annotations

from microprompts.evals.executor import Executor, ExecutorError, LocalExecutor

__all__ = ["EXECUTOR_FORMS", "RAY_EXTRA", "as_executor", "parse_executor"]

EXECUTOR_FORMS = "local, ray or ray:ADDRESS"
RAY_EXTRA = "pip install 'microprompts[ray]'"


def parse_executor(spec: str) -> tuple[str, str | None]:
    """(kind, address) of an executor name: ``local``, ``ray`` or ``ray:ADDRESS``; ExecutorError otherwise."""
    text = spec.strip()
    kind, _, address = text.partition(":")
    if kind == "local" and not address:
        return "local", None
    if kind == "ray":
        return "ray", address.strip() or None
    raise ExecutorError(f"unknown executor {spec!r}: expected {EXECUTOR_FORMS}")


def as_executor(executor: Executor | str | None, replicas: int | None = None) -> Executor:
    """An Executor from a name (``local``, ``ray``, ``ray:ADDRESS``; None is ``local``) and a replica count; an
    Executor passes through (its own replicas win). Ray missing gives one ExecutorError naming the extra."""
    if isinstance(executor, Executor):
        return executor
    kind, address = parse_executor(executor or "local")
    if kind == "local":
        return LocalExecutor(replicas)
    try:
        from microprompts.evals import _ray
    except ModuleNotFoundError as exc:
        if exc.name is None or not (exc.name == "ray" or exc.name.startswith("ray.")):
            raise
        raise ExecutorError(f"the ray executor needs Ray, an optional extra: {RAY_EXTRA}") from None
    return _ray.RayExecutor(address=address, replicas=replicas)

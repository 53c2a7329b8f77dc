"""Plain Python steps and routers, referenced by import path so artifacts hold no code."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, Optional

from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, ConfigDict

from microprompts.nodes.runtime import NodeTrace, Recorder, recorder_of, state_dict

# What an artifact may import when the user names nothing: the package's own schema classes. Anything else (the
# user's function nodes, routers, state types) needs `allow` / `--allow-module`, resolved from sys.path as installed.
DEFAULT_ALLOWED = ("microprompts",)


class RefError(ValueError):
    """An import reference that is malformed, not allowed, or does not resolve."""


def ref_of(obj: Callable[..., Any] | type) -> str:
    """`module:qualname` for an importable function or class; refuses lambdas and nested functions."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", "")
    if not module or "<" in qualname or module == "__main__":
        raise RefError(f"{obj!r} is not importable by path (define it at module level in an importable module)")
    return f"{module}:{qualname}"


def load_object(ref: str, allow: Sequence[str] | None = None) -> Any:
    """Import `module:qualname` or `path/file.py:name`; with `allow`, only modules under those prefixes."""
    module_name, sep, qualname = ref.rpartition(":")
    if not sep or not module_name or not qualname:
        raise RefError(f"bad reference {ref!r}: expected module:name or path/file.py:name")
    if module_name.endswith(".py"):
        if allow is not None:  # an artifact may name modules only: a file path would bypass the allow-list
            raise RefError(f"reference {ref!r} names a file; only modules under {list(allow)} are allowed here")
        module = _import_file(Path(module_name))
    else:
        if allow is not None and not any(module_name == a or module_name.startswith(a + ".") for a in allow):
            raise RefError(f"module {module_name!r} is not in the allowed modules {list(allow)}")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise RefError(f"cannot import {module_name!r} for {ref!r}: {exc}") from exc
    obj: Any = module
    for part in qualname.split("."):
        if allow is not None and obj is not module and isinstance(obj, ModuleType):
            raise RefError(f"{ref!r} reaches another module through {module_name!r}; name the module itself")
        if not hasattr(obj, part):
            raise RefError(f"{ref!r}: {module_name!r} has no attribute {qualname!r}")
        obj = getattr(obj, part)
    if allow is not None:
        _check_defined_there(ref, obj, module_name, qualname)
    return obj


def _check_defined_there(ref: str, obj: Any, module_name: str, qualname: str) -> None:
    """An artifact's reference must name an object where it is defined (its own module and qualified name), so no
    path through an allowed module reaches code outside it; of the package itself, only schema classes."""
    if getattr(obj, "__module__", None) != module_name or getattr(obj, "__qualname__", None) != qualname:
        raise RefError(
            f"{ref!r} is not defined in {module_name!r} itself; an artifact must name the module that defines it"
        )
    if module_name.split(".")[0] == "microprompts" and not (
        isinstance(obj, type) and issubclass(obj, (BaseModel, dict))
    ):
        raise RefError(f"{ref!r}: of the microprompts package an artifact may name only schema classes")


def _import_file(path: Path) -> Any:
    """Import a .py file, under its dotted package name when it lives below the working directory."""
    if not path.is_file():
        raise RefError(f"no such file: {path}")
    resolved = path.resolve()
    try:
        relative = resolved.relative_to(Path.cwd().resolve())
        dotted = ".".join(relative.with_suffix("").parts)
        if str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        return importlib.import_module(dotted)
    except (ValueError, ImportError):
        pass
    name = f"_microprompts_file_{resolved.stem}"
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise RefError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class FunctionNode(BaseModel):
    """A plain Python step: `fn(state) -> dict` of updates; declares what it reads and writes."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    kind: Literal["function"] = "function"
    name: str
    fn: Callable[..., dict[str, Any]]
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()

    def __init__(
        self,
        name: str,
        fn: Callable[..., Any] | str,
        reads: Sequence[str] = (),
        writes: Sequence[str] = (),
        allow: Sequence[str] | None = None,
    ) -> None:
        func = load_object(fn, allow) if isinstance(fn, str) else fn
        if not callable(func):
            raise RefError(f"function node {name!r}: {fn!r} is not callable")
        super().__init__(name=name, fn=func, reads=tuple(reads), writes=tuple(writes))

    @property
    def ref(self) -> str:
        """The function's import path, for artifacts."""
        return ref_of(self.fn)

    def run(self, state: dict[str, Any], recorder: Recorder | None = None) -> dict[str, Any]:
        """Call the function and check it returned a dict of updates."""
        started = time.perf_counter()
        values = state_dict(state)  # the function itself gets the state as LangGraph gives it
        trace = NodeTrace(node=self.name, kind=self.kind, inputs={k: values.get(k) for k in self.reads})
        try:
            result = self.fn(state)
            if not isinstance(result, dict):
                raise TypeError(f"function node {self.name!r} returned {type(result).__name__}, expected a dict")
            trace.output = result
            return result
        except Exception as exc:
            trace.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            trace.seconds = time.perf_counter() - started
            if recorder is not None:
                recorder.add(trace)

    # LangGraph passes `config` only to a parameter annotated exactly `RunnableConfig` or `Optional[RunnableConfig]`
    # (as text, under postponed annotations): `RunnableConfig | None` would silently get no config.
    def __call__(self, state: dict[str, Any], config: Optional[RunnableConfig] = None) -> dict[str, Any]:  # noqa: UP045
        """Run as a plain LangGraph node."""
        return self.run(state, recorder_of(config))


class Router(BaseModel):
    """A conditional edge's decision: `fn(state) -> label`; the branch maps labels to node names."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    fn: Callable[..., Any]
    reads: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """The router's import path, for artifacts."""
        return ref_of(self.fn)

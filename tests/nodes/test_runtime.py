"""The runtime a node runs with: the process-wide caller and its cache setting, model resolution."""

from __future__ import annotations

import microprompts.nodes.runtime as runtime_module
from microprompts.nodes import Runtime, default_caller
from microprompts.testing import ScriptedChatModel


def test_the_default_caller_uses_the_cache_file_from_the_environment(tmp_cache):
    caller = default_caller()
    assert caller is default_caller()  # process-wide
    assert caller.cache is not None and caller.cache.path == tmp_cache


def test_the_default_cache_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("MICROPROMPTS_CACHE", "off")
    monkeypatch.setattr(runtime_module, "_DEFAULT", None)
    assert default_caller().cache is None


def test_runtime_resolves_a_spec_once_and_passes_model_objects_through(monkeypatch):
    resolved = []
    fake = ScriptedChatModel()

    def resolve(spec):
        resolved.append(spec)
        return fake

    monkeypatch.setattr(runtime_module, "resolve_model", resolve)
    rt = Runtime()
    assert rt.model_for(None) is fake and rt.model_for(None) is fake and resolved == ["local"]
    assert rt.model_for("openai:x@http://h/v1") is fake and resolved == ["local", "openai:x@http://h/v1"]
    other = ScriptedChatModel()
    assert Runtime(model=other).model_for(None) is other
    assert Runtime(model="local").model_for(other) is other

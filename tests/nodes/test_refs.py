"""References from artifacts resolve only to objects defined in an allowed module itself: no walk through an
allowed module reaches another module or what it imported, and of the package only schema classes."""

from __future__ import annotations

import types
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tests.nodes._refs_target as target
from microprompts.nodes import RefError, load_object
from microprompts.nodes.function import DEFAULT_ALLOWED
from microprompts.nodes.micro_prompt import DefaultOutput

ALLOW = ["tests.nodes._refs_target"]
MODULE = "tests.nodes._refs_target"


@pytest.mark.parametrize("ref", [f"{MODULE}:step", f"{MODULE}:route", f"{MODULE}:State", f"{MODULE}:Steps.shout"])
def test_objects_defined_in_the_allowed_module_load(ref: str) -> None:
    assert load_object(ref, ALLOW) is not None


@pytest.mark.parametrize(
    ("ref", "match"),
    [
        (f"{MODULE}:os.system", "reaches another module"),
        (f"{MODULE}:subprocess.run", "reaches another module"),
        (f"{MODULE}:os.path.join", "reaches another module"),
        (f"{MODULE}:system", "not defined in"),
        (f"{MODULE}:Any", "not defined in"),
        (f"{MODULE}:os", "not defined in"),
        (f"{MODULE}:step.__globals__", "not defined in"),
    ],
)
def test_nothing_outside_the_allowed_module_is_reached(ref: str, match: str) -> None:
    with pytest.raises(RefError, match=match):
        load_object(ref, ALLOW)


def test_without_an_allow_list_the_user_may_name_anything() -> None:
    assert load_object(f"{MODULE}:system") is target.system  # a reference the user typed, not an artifact's


@pytest.mark.parametrize(
    "ref",
    [
        "microprompts.cli:main",
        "microprompts.nodes.function:load_object",
        "microprompts._io:atomic_write_text",
        "microprompts.models.cache:CallCache",
    ],
)
def test_of_the_package_an_artifact_names_only_schema_classes(ref: str) -> None:
    with pytest.raises(RefError, match="only schema classes"):
        load_object(ref, DEFAULT_ALLOWED)


def test_the_packages_own_output_schema_loads_by_default() -> None:
    assert load_object("microprompts.nodes.micro_prompt:DefaultOutput", DEFAULT_ALLOWED) is DefaultOutput


def test_the_default_allow_list_is_only_the_package() -> None:
    assert DEFAULT_ALLOWED == ("microprompts",)  # not `examples`, which would resolve against the working directory


def _walk(obj: Any, names: list[str]) -> Any:
    for name in names:
        obj = getattr(obj, name)
    return obj


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_random_attribute_paths_never_reach_a_callable_outside_the_module(data: st.DataObject) -> None:
    names: list[str] = []
    obj: Any = target
    for _ in range(data.draw(st.integers(1, 4))):
        attrs = sorted(dir(obj))
        if not attrs:
            break
        names.append(data.draw(st.sampled_from(attrs)))
        try:
            obj = getattr(obj, names[-1])
        except Exception:  # noqa: BLE001 - an attribute that cannot be read ends the walk
            break
    ref = f"{MODULE}:{'.'.join(names)}"
    try:
        loaded = load_object(ref, ALLOW)
    except RefError:
        return
    assert not isinstance(loaded, types.ModuleType)
    assert getattr(loaded, "__module__", None) == MODULE, ref
    assert _walk(target, names) is loaded

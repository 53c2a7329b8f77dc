"""Artifacts of flows whose nodes hold soft prompts: saving copies the tensor files beside the JSON, loading checks
each file's SHA-256 (a missing or changed file is one error naming the node and the file) and runs the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the [soft] extra (torch==2.13.0, transformers, peft) is not installed")
pytest.importorskip("peft", reason="the [soft] extra (peft) is not installed")

from microprompts import Flow
from microprompts.flows.artifact import ArtifactError, content_hash
from microprompts.models.client import ModelCaller
from microprompts.models.soft_prompt import SoftPromptError
from tests.fakes.tiny_soft import QUESTIONS, SoftSetup, soft_setup
from tests.fakes.tiny_torch import build_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def setup(tmp_path: Path, tiny: Path) -> SoftSetup:
    return soft_setup(tmp_path, tiny)


def _answers(flow: Flow, setup: SoftSetup) -> list[str]:
    graph = flow.compile(model=setup.model, caller=ModelCaller(cache=None))
    return [graph.invoke({"question": q})["output"] for q in QUESTIONS]


def test_a_soft_prompt_round_trips_through_an_artifact_with_the_same_outputs(tmp_path: Path, setup: SoftSetup) -> None:
    before = _answers(setup.flow, setup)
    path = tmp_path / "out" / "flow.json"
    digest = setup.flow.save(path)
    assert (path.parent / setup.ref.file).read_bytes() == (setup.folder / setup.ref.file).read_bytes()
    text = path.read_text(encoding="utf-8")
    assert setup.ref.sha256 in text and "prompt_embeddings" not in text  # the reference, never the tensors
    loaded = Flow.load(path)
    assert loaded.soft_dir == str(path.parent.resolve()) and loaded.content_hash() == digest
    assert loaded.nodes["answer"].params.soft_prompt == setup.ref  # type: ignore[union-attr]
    assert _answers(loaded, setup) == before


def test_saving_where_the_files_already_lie_checks_them_only(setup: SoftSetup) -> None:
    path = setup.folder / "flow.json"
    setup.flow.evolve(soft_dir=None).save(path)  # no folder known: the files must already be beside the JSON
    assert sorted(p.name for p in setup.folder.iterdir()) == sorted(["flow.json", setup.ref.file])


def test_saving_without_the_file_is_one_error_and_writes_no_json(tmp_path: Path, setup: SoftSetup) -> None:
    path = tmp_path / "elsewhere" / "flow.json"
    with pytest.raises(ArtifactError, match=f"node 'answer': cannot save soft prompt file {setup.ref.file}"):
        setup.flow.evolve(soft_dir=str(tmp_path / "nowhere")).save(path)
    assert not path.exists()


def test_a_tampered_tensor_file_is_refused_on_load(tmp_path: Path, setup: SoftSetup) -> None:
    path = tmp_path / "out" / "flow.json"
    setup.flow.save(path)
    tensor = path.parent / setup.ref.file
    data = bytearray(tensor.read_bytes())
    data[-1] ^= 0x01
    tensor.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=f"node 'answer': soft prompt file {setup.ref.file} is refused.*changed"):
        Flow.load(path)


def test_a_missing_tensor_file_is_refused_on_load(tmp_path: Path, setup: SoftSetup) -> None:
    path = tmp_path / "out" / "flow.json"
    setup.flow.save(path)
    (path.parent / setup.ref.file).unlink()
    with pytest.raises(ArtifactError, match=f"node 'answer': soft prompt file {setup.ref.file} is refused.*missing"):
        Flow.load(path)


def test_a_file_changed_after_loading_is_refused_when_the_node_runs(tmp_path: Path, setup: SoftSetup) -> None:
    path = tmp_path / "out" / "flow.json"
    setup.flow.save(path)
    loaded = Flow.load(path)
    (path.parent / setup.ref.file).write_bytes(b"not the file")
    graph = loaded.compile(model=setup.model, caller=ModelCaller(cache=None))
    with pytest.raises(SoftPromptError, match="node 'answer': soft prompt file .* has changed"):
        graph.invoke({"question": QUESTIONS[0]})


def test_an_artifact_pointing_outside_its_folder_is_malformed(tmp_path: Path, setup: SoftSetup) -> None:
    path = tmp_path / "out" / "flow.json"
    setup.flow.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["nodes"][0]["params"]["soft_prompt"]["file"] = "../made/" + setup.ref.file
    data["content_hash"] = content_hash(data)
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ArtifactError, match="(?s)malformed artifact.*plain `NAME.safetensors`"):
        Flow.load(path)

"""A soft prompt's reference and file checks, without torch: what an artifact stores is checked as hostile data, and
a file is verified by its hash before a byte of it is used or copied."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from microprompts.models.soft_prompt import LoraSpec, SoftPromptError, SoftPromptRef, copy_verified, read_verified


def _ref(tmp_path: Path, data: bytes = b"tensor bytes") -> SoftPromptRef:
    (tmp_path / "node.abc.safetensors").write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    return SoftPromptRef(file="node.abc.safetensors", sha256=sha, num_virtual_tokens=4, base_model="hf:x")


def test_a_verified_file_is_read_and_copied_beside_another_artifact(tmp_path: Path) -> None:
    ref = _ref(tmp_path)
    assert read_verified(ref, tmp_path) == b"tensor bytes"
    dest = copy_verified(ref, tmp_path, tmp_path / "elsewhere")
    assert dest == tmp_path / "elsewhere" / ref.file and dest.read_bytes() == b"tensor bytes"
    assert copy_verified(ref, tmp_path, tmp_path) == tmp_path / ref.file  # same folder: a check only


def test_a_changed_file_is_neither_read_nor_copied(tmp_path: Path) -> None:
    ref = _ref(tmp_path)
    (tmp_path / ref.file).write_bytes(b"tensor bytez")
    with pytest.raises(SoftPromptError, match="has changed"):
        copy_verified(ref, tmp_path, tmp_path / "elsewhere")
    assert not (tmp_path / "elsewhere").exists()


def test_a_reference_round_trips_through_json_and_rejects_unknown_fields(tmp_path: Path) -> None:
    ref = SoftPromptRef(
        method="lora", file="n.safetensors", sha256="a" * 64, lora=LoraSpec(rank=4), base_model="hf:" + "b" * 64
    )
    assert SoftPromptRef.model_validate_json(ref.model_dump_json()) == ref
    with pytest.raises(ValueError):
        SoftPromptRef.model_validate({**ref.model_dump(), "path": "/etc/passwd"})
    with pytest.raises(ValueError, match="plain module names"):
        LoraSpec(targets=("q_proj; rm",))
    with pytest.raises(ValueError, match="64 lowercase hex"):
        SoftPromptRef(file="n.safetensors", sha256="A" * 64, num_virtual_tokens=1, base_model="hf:x")

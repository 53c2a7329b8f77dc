"""A soft prompt's reference (what an artifact stores) and its file's checks; torch-free, so any room may import it.

The tensors live in a safetensors file next to the artifact JSON; the JSON names the file and its SHA-256. Loading
reads the file's bytes once, hashes them and parses those same bytes, so a changed, swapped or missing file is one
clear error and a file is never unpickled.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from microprompts.models.errors import ModelSpecError

__all__ = [
    "SOFT_EXTRA",
    "LoraSpec",
    "SoftMethod",
    "SoftPromptError",
    "SoftPromptRef",
    "copy_verified",
    "read_verified",
    "write_bytes_atomic",
]

SOFT_EXTRA = "pip install 'microprompts[soft]'  (torch==2.13.0, transformers, peft, safetensors, gguf)"
SoftMethod = Literal["prompt_tuning", "prefix_tuning", "lora"]
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,150}\.safetensors$")
_SHA = re.compile(r"^[0-9a-f]{64}$")
_MODULE = re.compile(r"^[A-Za-z0-9_.]{1,100}$")
MAX_SOFT_BYTES = 256 * 1024 * 1024  # a soft prompt is a few KB to a few MB; a larger file is refused before reading


class SoftPromptError(ModelSpecError):
    """A soft prompt that cannot be used: missing or changed file, bad name, wrong shape, another base model."""


class LoraSpec(BaseModel):
    """A LoRA adapter's shape: rank, scaling alpha, and the module names it wraps (e.g. `q_proj`, `v_proj`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rank: int = Field(default=8, ge=1, le=256)
    alpha: int = Field(default=16, ge=1)
    targets: tuple[str, ...] = ("q_proj", "v_proj")

    @field_validator("targets")
    @classmethod
    def _names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """Plain module names, at least one."""
        if not value or not all(_MODULE.match(v) for v in value):
            raise ValueError(f"LoRA targets must be plain module names, got {list(value)}")
        return value


class SoftPromptRef(BaseModel):
    """What an artifact stores about a soft prompt or adapter: the method (prompt tuning, prefix tuning: k virtual
    tokens; LoRA: its shape), its file beside the artifact and that file's SHA-256, and the base model it was trained
    on (the model's identity), so nothing but that model runs it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: SoftMethod = "prompt_tuning"
    file: str
    sha256: str
    num_virtual_tokens: int = Field(default=0, ge=0, le=4096)
    lora: LoraSpec | None = None
    base_model: str

    @model_validator(mode="after")
    def _method_fields(self) -> SoftPromptRef:
        """Prompt and prefix tuning carry k >= 1 virtual tokens and no LoRA shape; LoRA carries its shape, no tokens."""
        if self.method == "lora" and (self.lora is None or self.num_virtual_tokens):
            raise ValueError("a LoRA reference needs `lora` (its shape) and no virtual tokens")
        if self.method != "lora" and (self.lora is not None or self.num_virtual_tokens < 1):
            raise ValueError(f"a {self.method} reference needs num_virtual_tokens >= 1 and no `lora`")
        return self

    @field_validator("file")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        """A bare file name (no directory, no `..`): an artifact is hostile data and must not point elsewhere."""
        if not _FILE_NAME.match(value):
            raise ValueError(f"soft prompt file {value!r} must be a plain `NAME.safetensors` beside the artifact")
        return value

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        """64 lowercase hex digits."""
        if not _SHA.match(value):
            raise ValueError("soft prompt sha256 must be 64 lowercase hex digits")
        return value

    def path(self, directory: str | Path) -> Path:
        """Where the file lies: `directory` (the artifact's folder) joined with the bare file name."""
        return Path(directory) / self.file


def read_verified(ref: SoftPromptRef, directory: str | Path) -> bytes:
    """The soft prompt file's bytes, after checking they hash to `ref.sha256` (a missing or changed file raises)."""
    path = ref.path(directory)
    if not path.is_file():
        raise SoftPromptError(f"soft prompt file {path} is missing (the artifact names it with sha256 {ref.sha256})")
    size = path.stat().st_size
    if size > MAX_SOFT_BYTES:
        raise SoftPromptError(f"soft prompt file {path} is {size} bytes, over the {MAX_SOFT_BYTES}-byte limit")
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != ref.sha256:
        raise SoftPromptError(
            f"soft prompt file {path} has changed: its sha256 is {actual}, the artifact says {ref.sha256}; "
            "retrain it or restore the file"
        )
    return data


def copy_verified(ref: SoftPromptRef, source: str | Path, target: str | Path) -> Path:
    """Copy a soft prompt's file from the folder of one artifact to another's (saving an artifact elsewhere), after
    checking its hash; returns the new path. The same folder is a check only."""
    data = read_verified(ref, source)
    dest = ref.path(target)
    if dest.resolve() != ref.path(source).resolve():
        write_bytes_atomic(dest, data)
    return dest


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write bytes so a reader sees the old file or the new one, never a partial one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

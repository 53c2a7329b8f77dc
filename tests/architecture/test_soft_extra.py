"""The optional `[soft]` extra (torch, transformers, peft, safetensors) stays optional: only its own modules import
it, nothing imports them but an `hf:` spec on use, and without it `import microprompts` works and an `hf:` spec is
one error naming the extra."""

from __future__ import annotations

import subprocess
import sys

from tests.architecture.test_imports import IMPORTS, _third_party_importers

SOFT_MODULES = {
    "microprompts.models._peft",
    "microprompts.models.torch_model",
    "microprompts.models.soft_train",
    "microprompts.optimizers.soft",
    "microprompts.optimizers.mutators.soft",
}
SOFT_IMPORTERS = {
    # importer -> why it may import a soft module
    "microprompts.models.spec": "an hf: spec loads the torch backend on first use (a late import)",
    "microprompts.models.torch_model": "runs soft prompts through PEFT",
    "microprompts.models.soft_train": "training is part of the same extra",
    "microprompts.models.soft_distill": "distillation trains with the same loop",
    "microprompts.optimizers.soft": "training is part of the same extra",
    "microprompts.optimizers.mutators.soft": "the soft_prompt operator trains with it; users pass it in mutators=[...]",
    "microprompts.optimizers.optimize": "adds the soft_prompt operator when the task model is an hf: model (late)",
}


def test_only_the_soft_modules_import_torch_transformers_peft_safetensors() -> None:
    for package in ("torch", "transformers", "peft", "safetensors"):
        assert _third_party_importers(package) <= SOFT_MODULES, package


def test_nothing_imports_the_soft_modules_but_their_own() -> None:
    wrong = sorted(f"{a}:{line}" for a, b, line, _ in IMPORTS if b in SOFT_MODULES and a not in SOFT_IMPORTERS)
    assert not wrong, "the soft modules are imported explicitly by users only: " + ", ".join(wrong)
    assert not any(top for a, b, _, top in IMPORTS if a == "microprompts.models.spec" and b in SOFT_MODULES)


_WITHOUT_TORCH = """
import sys
for name in ("torch", "transformers", "peft", "safetensors", "safetensors.torch"):
    sys.modules[name] = None  # an import of any of them now fails, as on a machine without the extra
import microprompts, microprompts.models, microprompts.optimizers, microprompts.serve
from microprompts.models.errors import ModelSpecError
from microprompts.models.spec import resolve_model
from microprompts.models.soft_prompt import SoftPromptRef
try:
    resolve_model("hf:" + sys.argv[1])
except ModelSpecError as exc:
    print("ERROR:", exc)
"""


def test_without_the_extra_the_package_imports_and_an_hf_spec_names_the_extra(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_TORCH, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "ERROR:" in done.stdout and "microprompts[soft]" in done.stdout and "torch==2.13.0" in done.stdout

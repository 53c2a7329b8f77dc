"""The torch backend and prompt tuning on a tiny random model (seconds): training lowers the loss, a trained prompt
round-trips through its file with the same outputs, a tampered or missing file is refused, identity follows it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

pytest.importorskip(
    "torch", reason="the [soft] extra (torch==2.13.0, transformers, peft, safetensors) is not installed"
)
pytest.importorskip("peft", reason="the [soft] extra (peft) is not installed")

import torch
from langchain_core.messages import HumanMessage, SystemMessage

from microprompts.models.cache import CallCache
from microprompts.models.client import ModelCaller, completion_key
from microprompts.models.errors import ModelSpecError
from microprompts.models.soft_distill import distill_soft_prompt
from microprompts.models.soft_prompt import LoraSpec, SoftPromptError, SoftPromptRef
from microprompts.models.soft_train import SoftTrainConfig, pair_loss, train_soft_prompt
from microprompts.models.spec import model_identity, resolve_model
from microprompts.models.torch_model import TorchChatModel, load_soft_prompt, save_soft_prompt
from tests.fakes.tiny_torch import build_tiny_model

PAIRS = [
    ([SystemMessage(content="Answer yes or no."), HumanMessage(content=f"Question {i}?")], "yes" if i % 2 else "no")
    for i in range(6)
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def model(tiny: Path) -> TorchChatModel:
    return TorchChatModel(model_path=str(tiny), n_threads=1, max_tokens=8)


@pytest.fixture(scope="module")
def trained(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[SoftPromptRef, Path, float, float]:
    model = TorchChatModel(model_path=str(tiny), n_threads=1, max_tokens=8)
    plain = [model.invoke(m).content for m, _ in PAIRS[:2]]
    config = SoftTrainConfig(num_virtual_tokens=4, steps=30, lr=0.3, eval_every=5, init_text="Answer yes or no.")
    state, report = train_soft_prompt(model, PAIRS, PAIRS[:2], config)
    out = tmp_path_factory.mktemp("artifact")
    ref = save_soft_prompt(state, out, "answer", model.checkpoint().identity)
    assert report.steps >= 5 and report.examples == report.steps
    assert [model.invoke(m).content for m, _ in PAIRS[:2]] == plain  # the shared base model is left as it was
    assert not any(p.requires_grad for p in model.checkpoint().model.parameters())
    assert report.initial_dev_loss is not None and report.best_dev_loss is not None
    return ref, out, report.initial_dev_loss, report.best_dev_loss


def test_training_lowers_the_loss(trained: tuple[SoftPromptRef, Path, float, float]) -> None:
    _, _, before, after = trained
    assert after < before - 1.0


def test_the_kept_tokens_score_the_reported_dev_loss(model: TorchChatModel, trained: tuple) -> None:
    ref, out, _, after = trained
    with_soft = model.with_soft_prompt(ref, out)
    assert pair_loss(with_soft, PAIRS[:2]) == pytest.approx(after, rel=1e-4)


def test_a_trained_prompt_round_trips_through_its_file(model: TorchChatModel, trained: tuple) -> None:
    ref, out, _, _ = trained
    first = model.with_soft_prompt(ref, out)
    again = TorchChatModel(model_path=model.model_path, n_threads=1, max_tokens=8).with_soft_prompt(
        SoftPromptRef.model_validate_json(ref.model_dump_json()), out
    )
    assert first.virtual_tokens() == 4 and first.runner() is not model.checkpoint().model
    for messages, _ in PAIRS[:3]:
        a, b = first.invoke(messages), again.invoke(messages)
        assert a.content == b.content
        assert a.usage_metadata and a.usage_metadata["input_tokens"] == len(model.prompt_ids(messages)) + 4
    plain = [model.invoke(m).content for m, _ in PAIRS]
    tuned = [first.invoke(m).content for m, _ in PAIRS]
    assert plain != tuned  # the soft prompt is really in front of the input


def test_a_tampered_tensor_file_is_refused(model: TorchChatModel, trained: tuple, tmp_path: Path) -> None:
    ref, out, _, _ = trained
    data = bytearray(ref.path(out).read_bytes())
    data[-1] ^= 0x01
    ref.path(tmp_path).write_bytes(bytes(data))
    with pytest.raises(SoftPromptError, match="has changed"):
        model.with_soft_prompt(ref, tmp_path)


def test_a_missing_file_is_refused(model: TorchChatModel, trained: tuple, tmp_path: Path) -> None:
    ref, _, _, _ = trained
    with pytest.raises(SoftPromptError, match="missing"):
        model.with_soft_prompt(ref, tmp_path)


def test_a_file_with_a_matching_hash_but_wrong_shape_is_refused(
    model: TorchChatModel, trained: tuple, tmp_path: Path
) -> None:
    ref, out, _, _ = trained
    assert hashlib.sha256(ref.path(out).read_bytes()).hexdigest() == ref.sha256
    lying = ref.model_copy(update={"num_virtual_tokens": 5})  # the file is intact; the reference lies about it
    with pytest.raises(SoftPromptError, match="shape"):
        model.with_soft_prompt(lying, out)
    with pytest.raises(SoftPromptError, match="missing"):
        load_soft_prompt(ref, out, {"other": (4, 32)})


def test_another_base_model_is_refused(tiny: Path, trained: tuple, tmp_path: Path) -> None:
    ref, out, _, _ = trained
    other = build_tiny_model(tmp_path / "other", seed=1)
    with pytest.raises(SoftPromptError, match="trained on"):
        TorchChatModel(model_path=str(other), n_threads=1).with_soft_prompt(ref, out)


@pytest.mark.parametrize("name", ["../x.safetensors", "/etc/x.safetensors", "a/b.safetensors", "x.bin"])
def test_a_reference_must_name_a_plain_file_beside_the_artifact(name: str) -> None:
    with pytest.raises(ValueError, match="plain"):
        SoftPromptRef(file=name, sha256="0" * 64, num_virtual_tokens=1, base_model="hf:x")


def test_identity_and_cache_key_change_with_the_soft_prompt(
    model: TorchChatModel, trained: tuple, tmp_path: Path
) -> None:
    ref, out, _, _ = trained
    tuned = model.with_soft_prompt(ref, out)
    assert model_identity(model).startswith("hf:") and model_identity(tuned) != model_identity(model)
    assert ref.sha256 in model_identity(tuned)
    messages = PAIRS[0][0]
    assert completion_key(model, messages) != completion_key(tuned, messages)
    caller = ModelCaller(cache=CallCache(tmp_path / "calls.sqlite"))
    first = caller.complete(tuned, messages, max_tokens=8)
    assert not first.cached and first.prompt_tokens == len(model.prompt_ids(messages)) + 4
    assert first.completion_tokens > 0
    assert not caller.complete(model, messages, max_tokens=8).cached  # the plain model never hits the tuned reply
    assert caller.complete(tuned, messages, max_tokens=8).cached


def test_greedy_is_deterministic_and_sampling_follows_the_seed(model: TorchChatModel) -> None:
    messages = PAIRS[1][0]
    assert model.invoke(messages).content == model.invoke(messages).content
    hot = model.model_copy(update={"temperature": 1.0, "max_tokens": 12})
    assert hot.invoke(messages, seed=3).content == hot.invoke(messages, seed=3).content
    assert len({hot.invoke(messages, seed=s).content for s in range(4)}) > 1


def test_hf_spec_resolves_a_checkpoint_folder(tiny: Path) -> None:
    resolved = resolve_model(f"hf:{tiny}")
    assert isinstance(resolved, TorchChatModel) and resolved.model_path == str(tiny)


@pytest.mark.parametrize(("spec", "message"), [("hf:", "names no model"), ("hf:/no/such.gguf", "no such file")])
def test_bad_hf_specs_raise_one_clear_error(spec: str, message: str) -> None:
    with pytest.raises(ModelSpecError, match=message):
        resolve_model(spec)


def test_replies_match_the_training_time_forward(model: TorchChatModel, trained: tuple) -> None:
    """Each greedy token is the argmax of a full (uncached) forward of the prompt and the tokens so far, with the
    soft prompt in front as training put it (PEFT's own generate drifts from this after the first token)."""
    ref, out, _, _ = trained
    tuned = model.with_soft_prompt(ref, out)
    runner, tokenizer = tuned.runner(), model.checkpoint().tokenizer
    messages = PAIRS[0][0]
    ids = model.prompt_ids(messages)
    reply = tuned.invoke(messages, max_tokens=6).content
    expected: list[int] = []
    with torch.no_grad():
        for _ in range(6):
            token = int(runner(input_ids=torch.tensor([ids + expected])).logits[0, -1].argmax())
            if token == tokenizer.eos_token_id:
                break
            expected.append(token)
    assert reply == tokenizer.decode(expected, skip_special_tokens=True)


def test_prefix_tuning_trains_round_trips_and_differs_from_prompt_tuning(
    model: TorchChatModel, trained: tuple, tmp_path: Path
) -> None:
    config = SoftTrainConfig(method="prefix_tuning", num_virtual_tokens=4, steps=30, lr=0.3, eval_every=5)
    state, report = train_soft_prompt(model, PAIRS, PAIRS[:2], config)
    assert report.initial_dev_loss is not None and report.best_dev_loss is not None
    assert report.best_dev_loss < report.initial_dev_loss - 1.0
    ref = save_soft_prompt(state, tmp_path, "answer", model.checkpoint().identity, "prefix_tuning")
    assert ref.method == "prefix_tuning" and tuple(state["prompt_embeddings"].shape) == (
        4,
        2 * 2 * 16,
    )  # layers x (k, v) x kv width
    tuned = model.with_soft_prompt(SoftPromptRef.model_validate_json(ref.model_dump_json()), tmp_path)
    assert pair_loss(tuned, PAIRS[:2]) == pytest.approx(report.best_dev_loss, rel=1e-4)
    again = TorchChatModel(model_path=model.model_path, n_threads=1, max_tokens=8).with_soft_prompt(ref, tmp_path)
    assert [tuned.invoke(m).content for m, _ in PAIRS[:3]] == [again.invoke(m).content for m, _ in PAIRS[:3]]
    assert model_identity(tuned) not in {model_identity(model), model_identity(model.with_soft_prompt(*trained[:2]))}
    lying = ref.model_copy(update={"method": "prompt_tuning"})  # a prefix table is not an input embedding
    with pytest.raises(SoftPromptError, match="shape"):
        model.with_soft_prompt(lying, tmp_path)


def test_lora_trains_on_a_copy_round_trips_and_leaves_the_base_alone(model: TorchChatModel, tmp_path: Path) -> None:
    base = model.checkpoint().model
    before = {k: v.clone() for k, v in base.state_dict().items()}
    plain = [model.invoke(m).content for m, _ in PAIRS[:2]]
    config = SoftTrainConfig(method="lora", lora=LoraSpec(rank=4), steps=30, lr=0.05, eval_every=5)
    state, report = train_soft_prompt(model, PAIRS, PAIRS[:2], config)
    assert report.initial_dev_loss is not None and report.best_dev_loss is not None
    assert report.best_dev_loss < report.initial_dev_loss - 1.0
    assert state and all("lora_" in k for k in state)
    ref = save_soft_prompt(state, tmp_path, "answer", model.checkpoint().identity, "lora", LoraSpec(rank=4))
    assert ref.method == "lora" and ref.num_virtual_tokens == 0 and ref.lora == LoraSpec(rank=4)
    tuned = model.with_soft_prompt(SoftPromptRef.model_validate_json(ref.model_dump_json()), tmp_path)
    assert pair_loss(tuned, PAIRS[:2]) == pytest.approx(report.best_dev_loss, rel=1e-4)
    assert tuned.runner() is not base and tuned.virtual_tokens() == 0
    assert "+lora:" + ref.sha256 in model_identity(tuned)
    assert all(torch.equal(before[k], v) for k, v in base.state_dict().items())  # training and merging used a copy
    assert [model.invoke(m).content for m, _ in PAIRS[:2]] == plain
    with pytest.raises(SoftPromptError, match="missing"):  # a rank-8 reference does not fit rank-4 tensors
        model.with_soft_prompt(ref.model_copy(update={"lora": LoraSpec(rank=8, targets=("k_proj",))}), tmp_path)


def test_a_reference_carries_the_fields_of_its_method() -> None:
    with pytest.raises(ValueError, match="LoRA reference needs"):
        SoftPromptRef(method="lora", file="a.safetensors", sha256="0" * 64, base_model="hf:x")
    with pytest.raises(ValueError, match="num_virtual_tokens >= 1"):
        SoftPromptRef(file="a.safetensors", sha256="0" * 64, base_model="hf:x")


def test_distillation_makes_a_short_prompt_match_the_long_one(model: TorchChatModel, tmp_path: Path) -> None:
    long_system = "You answer questions. Reply with yes or no, in lower case, and nothing else at all."
    pairs = [
        ([SystemMessage(content=long_system), HumanMessage(content=f"Q{i}?")], [HumanMessage(content=f"Q{i}?")])
        for i in range(5)
    ]
    config = SoftTrainConfig(num_virtual_tokens=4, steps=30, lr=0.3, eval_every=5, max_target_tokens=6)
    state, report = distill_soft_prompt(model.model_copy(update={"max_tokens": 6}), pairs[:4], pairs[4:], config)
    assert report.initial_dev_loss is not None and report.best_dev_loss is not None
    assert report.best_dev_loss < report.initial_dev_loss * 0.7  # the KL to the long prompt's replies shrinks
    ref = save_soft_prompt(state, tmp_path, "distilled", model.checkpoint().identity)
    student = model.with_soft_prompt(ref, tmp_path)
    short, long = pairs[0][1], pairs[0][0]
    assert student.invoke(short).usage_metadata["input_tokens"] < model.invoke(long).usage_metadata["input_tokens"]


def test_reply_scores_are_the_training_time_loss_with_and_without_a_soft_prompt(
    model: TorchChatModel, trained: tuple, tmp_path: Path
) -> None:
    """Calibrated labels on the torch backend: a reply's log-probability is minus the training loss summed over its
    tokens and the end of the turn (the loss is their mean), plain, with prompt tuning and with prefix tuning; scored
    through the caller it is cached like any call."""
    config = SoftTrainConfig(method="prefix_tuning", num_virtual_tokens=2, steps=5, lr=0.3, eval_every=5)
    prefix_state, _ = train_soft_prompt(model, PAIRS, None, config)
    prefix = save_soft_prompt(prefix_state, tmp_path, "answer", model.checkpoint().identity, "prefix_tuning")
    tokenizer = model.checkpoint().tokenizer
    for scorer in (model, model.with_soft_prompt(*trained[:2]), model.with_soft_prompt(prefix, tmp_path)):
        for messages, target in PAIRS[:2]:
            n = len(tokenizer(target, add_special_tokens=False)["input_ids"]) + 1
            (score,) = scorer.reply_logprobs(messages, [target])
            assert score == pytest.approx(-pair_loss(scorer, [(messages, target)]) * n, rel=1e-4)
    caller = ModelCaller(cache=CallCache(tmp_path / "calls.sqlite"))
    first = caller.score_replies(model, PAIRS[0][0], ["yes", "no"])
    assert first == caller.score_replies(model, PAIRS[0][0], ["yes", "no"]) and first[0] != first[1]
    assert (caller.meter.total.calls, caller.meter.total.cached_calls) == (1, 1)
    assert caller.meter.total.prompt_tokens == len(model.prompt_ids(PAIRS[0][0]))  # counted, not estimated
    tuned = model.with_soft_prompt(*trained[:2])
    assert tuned.count_prompt_tokens(PAIRS[0][0]) == len(model.prompt_ids(PAIRS[0][0])) + 4

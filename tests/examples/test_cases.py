"""The case generators are deterministic and their gold answers follow the documented rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from examples.seats import cases as seats
from examples.triage import cases as triage
from microprompts.data import Dataset

ROOT = Path(__file__).resolve().parents[2]
SEEDS = range(6)


@pytest.mark.parametrize("module", [seats, triage])
def test_generators_are_deterministic_and_seeded(module):
    assert module.generate(25, seed=7) == module.generate(25, seed=7)
    assert module.generate(25, seed=7) != module.generate(25, seed=8)
    ids = [r["id"] for r in module.generate(25, seed=7)]
    assert len(set(ids)) == 25


def _matches(seat: str, prefs: seats.Preferences) -> bool:
    cabin, _, _, position = seats.parse_seat(seat)
    return prefs.cabin in (None, cabin) and prefs.position in (None, position)


@pytest.mark.parametrize("seed", SEEDS)
def test_seat_answers_follow_the_rules(seed):
    for case in seats.generate_cases(60, seed):
        prefs, available, answer = case.prefs, list(case.available_seats), list(case.recommended_seats)
        assert len(answer) == 3 and len(set(answer)) == 3
        assert set(answer) <= set(available)
        assert all(seats.seat_id(*seats.parse_seat(s)[:3]) == s for s in available)  # well-formed ids
        assert available == sorted(available, key=lambda s: seats.order_key(s, "front"))
        exact = sorted((s for s in available if _matches(s, prefs)), key=lambda s: seats.order_key(s, prefs.end))
        if len(exact) >= 3:  # enough full matches: the 3 best-placed of them
            assert answer == exact[:3]
        else:  # every full match first, then fallbacks, none of which is a full match
            assert answer[: len(exact)] == exact
            assert not any(_matches(s, prefs) for s in answer[len(exact) :])
        rows = [seats.parse_seat(s)[1] for s in answer if _matches(s, prefs)]
        assert rows == sorted(rows, reverse=prefs.end == "back")


def test_seat_fallback_prefers_the_class_over_the_position():
    prefs = seats.Preferences(cabin="business", position="window", end=None)
    available = ["business_1C_aisle", "business_2A_window", "economy_10A_window", "economy_11A_window"]
    assert seats.recommend(prefs, available) == ["business_2A_window", "business_1C_aisle", "economy_10A_window"]
    back = seats.Preferences(cabin="economy", position=None, end="back")
    assert seats.recommend(back, available) == ["economy_11A_window", "economy_10A_window", "business_2A_window"]


@pytest.mark.parametrize("seed", SEEDS)
def test_seat_preferences_state_what_the_rules_use(seed):
    for case in seats.generate_cases(60, seed):
        text = case.preferences.lower()
        if case.prefs.position:
            assert case.prefs.position in text
        if case.prefs.cabin == "business":
            assert "business" in text
        if case.prefs.cabin == "premium":
            assert "premium" in text
        if case.prefs.end == "back":
            assert "back" in text or "rear" in text
        if case.prefs.end == "front":
            assert "front" in text


@pytest.mark.parametrize("seed", SEEDS)
def test_triage_labels_follow_the_rules(seed):
    for ticket in triage.generate_tickets(60, seed):
        row = ticket.row()
        out, text = row["output"], row["inputs"]["ticket"]
        assert out["category"] in triage.CATEGORIES and ticket.product in text
        urgent = any(cue in text for cue in triage.URGENT_CUES) or ticket.security
        assert out["urgency"] == ("urgent" if urgent else "normal")
        assert out["team"] == (triage.TEAMS[out["category"]] if urgent else "frontline")
        assert out["route"] == ("escalate" if urgent else "reply")
        if ticket.security:
            assert out["category"] == "account"


def test_triage_generator_covers_every_label():
    tickets = triage.generate_tickets(200, 0)
    assert {t.category for t in tickets} == set(triage.CATEGORIES)
    assert {t.team for t in tickets} == {*triage.TEAMS.values(), "frontline"}
    assert any(t.security for t in tickets) and any(t.urgent_cue for t in tickets)


@pytest.mark.parametrize("module", ["seats", "triage"])
def test_generator_cli_writes_a_loadable_dataset(module, tmp_path, capsys):
    mod = seats if module == "seats" else triage
    out = tmp_path / "rows.jsonl"
    mod.main(["--n", "12", "--seed", "3", "--out", str(out)])
    assert "wrote 12 rows" in capsys.readouterr().out
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines == mod.generate(12, 3)
    assert len(Dataset.load(out)) == 12


@pytest.mark.parametrize("module,seeds", [("seats", (1, 2, 3)), ("triage", (1, 2, 3))])
def test_committed_data_is_what_the_generator_makes(module, seeds):
    mod = seats if module == "seats" else triage
    for name, seed in zip(("train", "dev", "test"), seeds, strict=True):
        path = ROOT / "examples" / module / "data" / f"{name}.jsonl"
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        assert rows == mod.generate(len(rows), seed), f"{path} is stale: regenerate it"

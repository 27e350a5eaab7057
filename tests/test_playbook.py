"""The retention playbook: the shipped default and the validation of edited files (file, line, key)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from churnguard.errors import ConfigError
from churnguard.reasons import DRIVER_CODES
from churnguard.retention.playbook import CHANNELS, default_playbook, default_playbook_text, load_playbook


def test_default_playbook_follows_the_field_practice() -> None:
    pb = default_playbook()
    assert pb.tiers == ("VIP", "A", "B", "C") and pb.unranked_tier == "C" and pb.currency == "CNY"
    first = {(t, c): pb.candidates("retain", t, c)[0] for t in pb.tiers for c in DRIVER_CODES}
    # VIP: a personal visit whatever the reason (but a payment plan for payment trouble)
    assert {first["VIP", c] for c in DRIVER_CODES - {"payment"}} == {"am_visit"}
    # A: the account manager calls, by reason
    assert first["A", "other"] == "am_call" and first["A", "price"] == "am_call_tariff"
    assert first["A", "service"] == "am_call_service" and first["A", "competitor"] == "am_call_matching"
    # B: targeted offers; C: automated messages
    assert first["B", "tenure"] == "targeted_offer" and first["B", "price"] == "tariff_offer"
    assert first["C", "value"] == "auto_care_sms" and first["C", "price"] == "auto_discount_sms"
    assert {pb.actions[first["C", c]].channel for c in DRIVER_CODES} == {"sms"}
    assert {pb.actions[first["A", c]].channel for c in DRIVER_CODES} == {"call"}
    # by reason: product/usage -> upgrade, payment -> payment plan
    assert first["B", "usage"] == first["B", "product"] == "upgrade_offer"
    assert first["B", "payment"] == "payment_plan_offer" and first["A", "payment"] == "am_call_payment"
    # every cell offers a cheaper alternative below C, and cheaper always saves less
    for t in ("VIP", "A", "B"):
        for c in DRIVER_CODES:
            cands = [pb.actions[a] for a in pb.candidates("retain", t, c)]
            assert len(cands) == 2, (t, c)
    # unknown or missing tiers fall back to the unranked tier; unknown reasons to the tier's default
    assert pb.candidates("retain", None, "price") == pb.candidates("retain", "C", "price")
    assert pb.candidates("retain", "Gold", None) == pb.candidates("retain", "C", "default")
    assert pb.candidates("winback", "VIP", "payment") == ("winback_settlement",)
    for a in pb.actions.values():
        assert a.label_en and a.label_zh and a.description and a.description_zh
        assert a.channel in CHANNELS and a.cost >= 0 and 0 < a.save_rate < 1
    ab = pb.abandon
    assert (ab.no_gain, ab.min_expected_gain, ab.arrears, ab.arrears_threshold) == (True, 0.0, True, 300.0)
    assert (ab.abusive, ab.abusive_column) == (True, "abusive")
    # every (tier, category) cell appears in the expansion used for the join
    cells = pb.cells("retain")
    assert {(r["tier"], r["category"]) for r in cells} == {(t, c) for t in pb.tiers for c in DRIVER_CODES}


def test_default_text_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "copy.yaml"
    path.write_text(default_playbook_text(), encoding="utf-8")
    assert load_playbook(path).to_dict() | {"source": ""} == default_playbook().to_dict() | {"source": ""}


def edited(tmp_path: Path, old: str, new: str) -> tuple[Path, int]:
    """The default playbook with the first ``old`` replaced by ``new``; returns the file and that line (1-based)."""
    text = default_playbook_text()
    assert old in text, old
    line = text[: text.index(old)].count("\n") + 1
    path = tmp_path / "edited.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path, line


@pytest.mark.parametrize(
    ("old", "new", "fragments"),
    [
        ("  C:\n    default: [auto_care_sms]", "  Gold:\n    default: [auto_care_sms]", ['unknown tier "Gold"']),
        ("    price: [tariff_offer, auto_discount_sms]", "    pricing: [tariff_offer]", ['"pricing"', "usage"]),
        ("    payment: [payment_plan_offer, auto_payment_sms]", "    payment: [payment_plan]", ['"payment_plan"']),
        ("    save_rate: 0.40\n", "    save_rate: 1.4\n", ["actions.am_visit.save_rate", "between 0 and 1"]),
        ("    cost: 200\n", "    cost: -5\n", ["actions.am_visit.cost", "at least 0"]),
        ("    channel: visit\n", "    channel: pigeon\n", ["actions.am_visit.channel", "pigeon"]),
        ("    label_en: Account manager visit\n", "    lable_en: Account manager visit\n", ['unknown key "lable_en"']),
        ("    threshold: 300", "    limit: 300", ["abandon.arrears.limit", 'unknown key "limit"']),
        ("    enabled: true\n    threshold", "    enabled: maybe\n    threshold", ["abandon.arrears.enabled"]),
        ("currency: CNY", "curency: CNY", ['unknown key "curency"']),
    ],
)
def test_validation_names_file_line_and_key(tmp_path: Path, old: str, new: str, fragments: list[str]) -> None:
    path, line = edited(tmp_path, old, new)
    with pytest.raises(ConfigError) as info:
        load_playbook(path)
    message = str(info.value)
    assert str(path) in message
    lines = [int(w) for w in message.split(" line ")[1].split(",")[0].split()[:1]]
    assert line <= lines[0] <= line + 2, message  # the edited line (or the key's line inside the edit)
    for f in fragments:
        assert f in message, message


def test_structural_problems(tmp_path: Path) -> None:
    path, _ = edited(tmp_path, "  C:\n    default: [auto_care_sms]\n    price", "  C:\n    price")
    with pytest.raises(ConfigError, match=r"retain\.C: the `default` cell is missing"):
        load_playbook(path)
    path, _ = edited(tmp_path, "tiers: [VIP, A, B, C]", "tiers: [VIP, A, B, C, D]")
    with pytest.raises(ConfigError, match="tier D has no row"):
        load_playbook(path)
    path, line = edited(tmp_path, "version: 1\n", "version: 1\nversion: 2\n")
    with pytest.raises(ConfigError, match=f'line {line + 1}: key "version" appears twice'):
        load_playbook(path)
    path, line = edited(tmp_path, "name: default", "name: [default")
    with pytest.raises(ConfigError, match=r"line \d+, column \d+: expected valid YAML"):
        load_playbook(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_playbook(tmp_path / "nope.yaml")
    only_retain = yaml.safe_load(default_playbook_text())
    del only_retain["winback"]
    path.write_text(yaml.safe_dump(only_retain, allow_unicode=True), encoding="utf-8")
    pb = load_playbook(path)
    with pytest.raises(ConfigError, match="has no `winback` section"):
        pb.candidates("winback", "A", "price")

"""evaluate(): every number checked against a hand computation on ten rows."""

from __future__ import annotations

import numpy as np
import pytest

from churnguard.predict import evaluate
from churnguard.predict.errors import ModelError
from churnguard.predict.evaluation import expected_value_threshold

# ten customers, ranked by p; four churned (base rate 0.4)
P = [0.95, 0.85, 0.75, 0.65, 0.55, 0.45, 0.35, 0.25, 0.15, 0.05]
Y = [1, 1, 0, 1, 0, 0, 1, 0, 0, 0]


def test_ranking_metrics() -> None:
    r = evaluate(Y, P, threshold=0.5)
    assert r["n"] == 10 and r["positives"] == 4 and r["base_rate"] == 0.4
    # churners beat 6 + 6 + 5 + 3 of the 24 churner/stayer pairs
    assert r["auc"] == pytest.approx(20 / 24, abs=1e-6)
    # average precision: precision at each churner's rank = 1/1, 2/2, 3/4, 4/7, recall steps of 1/4
    assert r["pr_auc"] == pytest.approx((1 + 1 + 3 / 4 + 4 / 7) / 4, abs=1e-6)
    # top decile = the top ⌈0.1 · 10⌉ = 1 row, a churner: 1.0 / 0.4
    assert r["lift_at_10"] == pytest.approx(2.5)


def test_lift_curve() -> None:
    curve = evaluate(Y, P)["lift_curve"]
    assert [d["rows"] for d in curve] == [1] * 10
    assert [d["churners"] for d in curve] == Y
    assert curve[0]["lift"] == pytest.approx(2.5)
    assert curve[2]["lift"] == 0
    assert curve[2]["cumulative_lift"] == pytest.approx((2 / 3) / 0.4, abs=1e-6)
    assert curve[2]["capture"] == pytest.approx(0.5)
    assert curve[-1]["capture"] == pytest.approx(1.0)
    assert curve[-1]["cumulative_lift"] == pytest.approx(1.0)


def test_brier_and_calibration() -> None:
    r = evaluate(Y, P)
    # Σ (p − y)² = .0025 + .0225 + .5625 + .1225 + .3025 + .2025 + .4225 + .0625 + .0225 + .0025 = 1.725
    assert r["brier"] == pytest.approx(0.1725)
    # one row per bin: ECE = Σ |p − y| / 10 = 3.4 / 10
    assert r["ece"] == pytest.approx(0.34)
    cal = r["calibration"]
    assert len(cal) == 10 and [b["rows"] for b in cal] == [1] * 10
    assert cal[9]["mean_p"] == pytest.approx(0.95) and cal[9]["observed"] == 1.0
    assert cal[2]["mean_p"] == pytest.approx(0.25) and cal[2]["observed"] == 0.0


def test_ece_with_shared_bins() -> None:
    # bin [0.2, 0.3): four rows at 0.2, one churner → |0.2 − 0.25|; bin [0.8, 0.9): two churners → |0.8 − 1|
    r = evaluate([1, 0, 0, 0, 1, 1], [0.2, 0.2, 0.2, 0.2, 0.8, 0.8])
    assert r["ece"] == pytest.approx((4 * 0.05 + 2 * 0.2) / 6)


def test_confusion_at_a_threshold() -> None:
    c = evaluate(Y, P, threshold=0.5)["confusion"]
    assert (c["tp"], c["fp"], c["fn"], c["tn"]) == (3, 2, 1, 4)
    assert c["precision"] == pytest.approx(0.6) and c["recall"] == pytest.approx(0.75)


def test_top_k_threshold_is_the_default() -> None:
    r = evaluate(Y, P, top_k=0.3)
    assert r["threshold_method"] == "top_k"
    assert r["threshold"] == 0.75
    assert r["confusion"]["contacted"] == 3 and r["confusion"]["tp"] == 2


def test_expected_value_threshold() -> None:
    # each contact: p · 100 · 0.5 − 20 → 27.5, 22.5, 17.5, 12.5, 7.5, 2.5, −2.5, …: contact down to p = 0.45
    r = evaluate(Y, P, value=100, contact_cost=20, save_rate=0.5)
    assert r["threshold_method"] == "expected_value"
    ev = r["thresholds"]["expected_value"]
    assert r["threshold"] == 0.45
    assert ev["contacted"] == 6
    assert ev["expected_value"] == pytest.approx(90.0)
    assert ev["break_even_p"] == pytest.approx(0.4)
    # realised on the labels: three churners saved (30 each) and three stayers contacted (−20 each)
    assert ev["realised_value"] == pytest.approx(30.0)
    assert r["confusion"]["contacted"] == 6


def test_expected_value_with_per_customer_values() -> None:
    value = [10, 10, 10, 10, 10, 10, 1000, 10, 10, 10]
    ev = expected_value_threshold(np.array(P), value=value, contact_cost=20, save_rate=0.5)
    # six small losses (−99 together) before the valuable customer at p = 0.35 (+155)
    assert ev["threshold"] == 0.35 and ev["contacted"] == 7
    assert ev["expected_value"] == pytest.approx(56.0)


def test_expected_value_cuts_only_between_distinct_probabilities() -> None:
    # gains 5, 6, −3.5: the best prefix (11) would split the tie at p = 0.5, so all three are contacted
    ev = expected_value_threshold(np.array([0.9, 0.5, 0.5]), value=[10, 20, 1], contact_cost=4, save_rate=1.0)
    assert ev["contacted"] == 3 and ev["threshold"] == 0.5
    assert ev["expected_value"] == pytest.approx(7.5)


def test_expected_value_contacts_nobody_when_no_contact_pays() -> None:
    ev = expected_value_threshold(np.array(P), value=100, contact_cost=100, save_rate=0.5)
    assert ev["contacted"] == 0 and ev["threshold"] > 0.95


def test_one_class_and_bad_input() -> None:
    r = evaluate([0, 0, 0], [0.1, 0.2, 0.3])
    assert r["auc"] is None and r["lift_at_10"] is None and r["lift_curve"] == []
    assert r["brier"] == pytest.approx((0.01 + 0.04 + 0.09) / 3, abs=1e-6)
    with pytest.raises(ModelError):
        evaluate([0, 1], [0.5])
    with pytest.raises(ModelError):
        evaluate([0, 2], [0.5, 0.5])
    with pytest.raises(ModelError):
        evaluate([0, 1], [0.5, float("nan")])

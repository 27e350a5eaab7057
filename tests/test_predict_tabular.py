"""Snapshot tables with no mapping: reading files, type inference, the label, encoding at scoring."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnguard.predict.errors import TableError
from churnguard.predict.tabular import TablePlan, driver_category, infer_plan, label_vector, read_table


def frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """A hand-made customer table with every kind of column."""
    rng = np.random.default_rng(seed)
    charges = rng.uniform(20, 120, n).round(2).astype(str).astype(object)
    charges[:7] = " "  # blanks, as in Telco's TotalCharges
    return pd.DataFrame(
        {
            "cust_code": [f"C{i:05d}" for i in range(n)],
            "row_number": np.arange(1000, 1000 + n),
            "Name": [f"Person {i} {chr(65 + i % 26)}" for i in range(n)],
            "Comment": [f"called about the bill on day {i} and was not happy at all" for i in range(n)],
            "City": [f"City{i % 120}" for i in range(n)],
            "Partner": rng.choice(["Yes", "No"], n),
            "Active": rng.choice(["true", "false"], n),
            "Plan": rng.choice(["basic", "pro", "max"], n),
            "Region": "North",
            "TotalCharges": charges,
            "MonthlyCharges": rng.uniform(20, 120, n).round(2),
            "signup": pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D"),
            "Churn": rng.choice(["Yes", "No"], n, p=[0.3, 0.7]),
        }
    )


def reasons_of(plan: TablePlan) -> dict[str, str]:
    return {d["column"]: d["reason"] for d in plan.dropped}


def test_ids_free_text_and_high_cardinality_text_are_dropped_with_reasons() -> None:
    plan = infer_plan(frame(), label="Churn")
    dropped = reasons_of(plan)
    assert "identifier" in dropped["cust_code"]
    assert "identifier" in dropped["row_number"]  # a different whole number on every row
    assert "identifier" in dropped["Name"] or "text" in dropped["Name"]
    assert dropped["Comment"].startswith("free text")
    assert dropped["City"].startswith("high-cardinality text")  # 120 distinct in 400 rows
    assert dropped["Region"].startswith("constant")
    assert set(plan.names) == {"Partner", "Active", "Plan", "TotalCharges", "MonthlyCharges", "signup"}


def test_given_id_and_time_columns_are_never_features() -> None:
    f = frame()
    f["as_of"] = dt.date(2024, 12, 31)
    plan = infer_plan(f, label="Churn", id_col="cust_code", time_col="as_of")
    dropped = reasons_of(plan)
    assert dropped["cust_code"] == "the customer id (--id)"
    assert dropped["as_of"] == "the time column (--time-col)"
    assert "Churn" not in plan.names and "cust_code" not in plan.names


def test_kinds_yes_no_numeric_text_dates() -> None:
    plan = infer_plan(frame(), label="Churn")
    kinds = {f.name: (f.kind, f.source) for f in plan.features}
    assert kinds["Partner"] == ("binary", "yes/no")
    assert kinds["Active"] == ("binary", "yes/no")
    assert kinds["Plan"] == ("categorical", "text")
    assert kinds["TotalCharges"] == ("numeric", "numeric text")
    assert kinds["MonthlyCharges"] == ("numeric", "number")
    assert kinds["signup"] == ("date", "date")
    partner = next(f for f in plan.features if f.name == "Partner")
    assert partner.levels == ["No", "Yes"]


def test_blanks_are_missing_not_zero() -> None:
    f = frame()
    plan = infer_plan(f, label="Churn")
    X = plan.matrix(f)
    j = plan.names.index("TotalCharges")
    assert np.isnan(X[:7, j]).all()
    assert not (X[:, j] == 0).any()
    assert np.allclose(X[7:, j], f["TotalCharges"][7:].astype(float))
    col = next(c for c in plan.features if c.name == "TotalCharges")
    assert col.missing_share == pytest.approx(7 / 400)


def test_yes_no_encoded_as_one_and_zero() -> None:
    f = frame()
    plan = infer_plan(f, label="Churn")
    X = plan.matrix(f)
    assert np.array_equal(X[:, plan.names.index("Partner")], (f["Partner"] == "Yes").astype(float).to_numpy())
    assert np.array_equal(X[:, plan.names.index("Active")], (f["Active"] == "true").astype(float).to_numpy())


def test_dates_are_days_before_the_tables_latest_date_or_the_rows_time() -> None:
    f = pd.DataFrame(
        {
            "signup": ["2024-01-01", "2024-01-11", "2024-02-01", None, "2024-01-21"] * 20,
            "x": np.arange(100) % 7,
            "y": [1, 0, 0, 1, 0] * 20,
        }
    )
    plan = infer_plan(f, label="y")
    X = plan.matrix(f)
    j = plan.names.index("signup")
    assert list(X[:5, j][[0, 1, 2, 4]]) == [31.0, 21.0, 0.0, 11.0]
    assert np.isnan(X[3, j])
    f["as_of"] = pd.to_datetime("2024-03-01")
    plan = infer_plan(f, label="y", time_col="as_of")
    X = plan.matrix(f)
    assert X[2, plan.names.index("signup")] == 29.0  # 2024-02-01 → 2024-03-01


def test_unseen_categories_are_missing_and_absent_columns_are_an_error() -> None:
    f = frame()
    plan = infer_plan(f, label="Churn")
    new = f.head(3).copy()
    new["Plan"] = ["basic", "platinum", None]
    X = plan.matrix(new)
    j = plan.names.index("Plan")
    assert X[0, j] == plan.features[j].levels.index("basic")
    assert np.isnan(X[1, j]) and np.isnan(X[2, j])
    with pytest.raises(TableError) as info:
        plan.matrix(new.drop(columns=["MonthlyCharges"]), source="new.csv")
    assert "new.csv" in str(info.value) and "MonthlyCharges" in str(info.value)
    filled = plan.matrix(new.drop(columns=["MonthlyCharges"]), missing="fill")
    assert np.isnan(filled[:, plan.names.index("MonthlyCharges")]).all()
    # columns the model never used may be absent
    plan.matrix(new.drop(columns=["Comment", "cust_code", "Churn"]))


@pytest.mark.parametrize(
    ("values", "positive", "expected"),
    [
        (["Yes", "No", "yes", None], None, [1, 0, 1, np.nan]),
        ([1, 0, 0, 1], None, [1, 0, 0, 1]),
        ([True, False, True, False], None, [1, 0, 1, 0]),
        (["churned", "active", "active", "churned"], None, [1, 0, 0, 1]),
        (["left", "stay", "stay", "left"], "LEFT", [1, 0, 0, 1]),
        ([2, 1, 1, 2], "2", [1, 0, 0, 1]),
    ],
)
def test_label_values(values: list, positive: str | None, expected: list) -> None:
    y, _ = label_vector(pd.DataFrame({"c": values}), "c", positive)
    assert np.array_equal(y, np.array(expected, dtype=float), equal_nan=True)


def test_unrecognised_label_asks_for_positive() -> None:
    with pytest.raises(TableError) as info:
        label_vector(pd.DataFrame({"status": ["A", "B", "A"]}), "status", None, source="t.csv")
    message = str(info.value)
    assert "t.csv" in message and "status" in message and "--positive" in message
    with pytest.raises(TableError, match="positive value 'C'"):
        label_vector(pd.DataFrame({"status": ["A", "B", "A"]}), "status", "C")


def test_driver_categories_from_names() -> None:
    assert driver_category("MonthlyCharges") == "price"
    assert driver_category("tenure") == "tenure"
    assert driver_category("TechSupport") == "service"
    assert driver_category("num_support_tickets") == "service"
    assert driver_category("PaperlessBilling") == "payment"
    assert driver_category("PaymentMethod") == "payment"
    assert driver_category("Contract") == "product"
    assert driver_category("StreamingTV") == "product"
    assert driver_category("data_usage_gb") == "usage"
    assert driver_category("login_count_30d") == "usage"
    assert driver_category("competitor_offers") == "competitor"
    assert driver_category("CLTV") == "value"
    assert driver_category("gender") == "other"
    assert driver_category("message_count") == "other"  # "age" inside a word is not tenure


def test_read_table_sniffs_the_delimiter_and_keeps_text(tmp_path: Path) -> None:
    p = tmp_path / "semi.csv"
    p.write_text("id;Total Charges;Churn\n0012;29.85;No\n0013; ;Yes\n", encoding="utf-8")
    df = read_table(p)
    assert list(df.columns) == ["id", "Total Charges", "Churn"]
    assert df["id"].tolist() == ["0012", "0013"]
    pq = tmp_path / "t.parquet"
    pd.DataFrame({"a": [1.5, None], "b": ["x", "y"]}).to_parquet(pq)
    assert read_table(pq)["a"].isna().tolist() == [False, True]
    xl = tmp_path / "t.xlsx"
    pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}).to_excel(xl, index=False)
    assert read_table(xl)["b"].tolist() == ["x", "y"]


def test_bad_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(TableError, match=r"missing\.csv"):
        read_table(tmp_path / "missing.csv")
    bad = tmp_path / "data.xlsx"
    bad.write_text("not a workbook", encoding="utf-8")
    with pytest.raises(TableError, match=r"data\.xlsx"):
        read_table(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("a,b\n", encoding="utf-8")
    with pytest.raises(TableError, match=r"empty\.csv"):
        read_table(empty)


def test_missing_label_column_is_named() -> None:
    with pytest.raises(TableError) as info:
        infer_plan(frame(), label="churned", source="c.csv")
    assert "c.csv" in str(info.value) and "churned" in str(info.value)

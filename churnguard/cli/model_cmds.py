"""``churnguard model …``: train, evaluate, score, list and explain early-warning models.

Snapshot mode works on one customer table with a label column and no mapping::

    churnguard model train --table customers.csv --id customerID --label Churn --out models/telco
    churnguard model evaluate --model models/telco --table holdout.csv --format json
    churnguard model score --model models/telco --table customers.csv --out scores.parquet
    churnguard model explain --model models/telco
    churnguard model list --dir models

Without ``--table``, ``model train`` trains the event-based model on the store's own tables
(``--horizon 30d``; see :mod:`churnguard.predict.events`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from churnguard.cli.app import FormatOption, settings_of
from churnguard.cli.render import OutputFormat, console, print_json, print_table
from churnguard.errors import ConfigError

model_app = typer.Typer(
    help="Early-warning models (流失预警模型): train, evaluate, score, explain, list.", no_args_is_help=True
)

LABELS: dict[str, tuple[str, str]] = {
    "model": ("Model", "模型"),
    "algorithm": ("Algorithm", "算法"),
    "rows": ("Rows", "行数"),
    "churned": ("Churned", "流失数"),
    "features": ("Features", "特征"),
    "feature": ("Feature", "特征"),
    "category": ("Driver category", "驱动类别"),
    "dtype": ("Type", "类型"),
    "dropped": ("Dropped columns", "未使用的字段"),
    "column": ("Column", "字段"),
    "reason": ("Reason", "原因"),
    "validation": ("Validation", "验证集"),
    "evaluation": ("Evaluation", "模型评估"),
    "metric": ("Metric", "指标"),
    "value": ("Value", "数值"),
    "importance": ("Global importance (mean |contribution|, log-odds)", "全局重要性(平均|贡献|,对数几率)"),
    "share": ("Share", "占比"),
    "drivers": (
        "Driver analysis: logistic regression, standardised coefficients",
        "驱动因素分析:逻辑回归标准化系数",
    ),
    "term": ("Term", "项"),
    "coefficient": ("Coefficient", "系数"),
    "odds_ratio": ("Odds ratio per 1 sd", "每1个标准差的比值比"),
    "direction": ("Direction", "方向"),
    "pd": ("Partial dependence", "部分依赖"),
    "probability": ("Mean probability", "平均流失概率"),
    "models": ("Models", "模型列表"),
    "created": ("Created", "创建时间"),
    "mode": ("Mode", "模式"),
    "path": ("Path", "路径"),
    "confusion": ("Confusion at the threshold", "阈值处的混淆矩阵"),
    "lift_curve": ("Lift by decile", "分十等份提升度"),
    "decile": ("Decile", "十分位"),
    "rate": ("Churn rate", "流失率"),
    "lift": ("Lift", "提升度"),
    "capture": ("Cumulative capture", "累计捕获率"),
    "scored": ("Scored", "已评分"),
    "top_reasons": ("Top reasons", "主要原因"),
    "backtest": ("Time-based backtest", "时间回测"),
    "fold": ("Fold", "折"),
    "test_period": ("Test period", "测试期"),
}


def _l(key: str, lang: str) -> str:
    pair = LABELS.get(key)
    if pair is None:
        return key
    return pair[1] if lang.startswith("zh") else pair[0]


def register(app: typer.Typer) -> None:
    """Add the ``model`` sub-app."""
    app.add_typer(model_app, name="model")


def _parse_horizon(text: str) -> int:
    t = text.strip().lower()
    units = {"d": 1, "w": 7, "m": 30, "y": 365}
    try:
        if t and t[-1] in units:
            return int(t[:-1]) * units[t[-1]]
        return int(t)
    except ValueError:
        raise ConfigError(f'--horizon: expected days like 30d, 8w or 3m, got "{text}".') from None


def _drop_list(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out += [c.strip() for c in v.split(",") if c.strip()]
    return out


def _store_if_exists(ctx: typer.Context) -> Any:
    """The store named by --db when its file exists (listing or registering never creates one)."""
    from churnguard.store import connect
    from churnguard.store.connection import parse_url

    url = parse_url(settings_of(ctx).db)
    if url.backend == "duckdb" and (url.path == ":memory:" or not Path(url.path).expanduser().exists()):
        return None
    return connect(settings_of(ctx).db)


def _load(path: Path) -> Any:
    from churnguard.predict import load_model

    return load_model(path)


def _summary_rows(metrics: dict[str, Any]) -> list[list[Any]]:
    keys = ("n", "positives", "auc", "pr_auc", "lift_at_10", "brier", "ece", "threshold")
    return [[k, f"{v:.4f}" if isinstance(v, float) else v] for k in keys if k in metrics for v in [metrics[k]]]


# -- train -----------------------------------------------------------------------------------


@model_app.command("train")
def train_cmd(
    ctx: typer.Context,
    table: Annotated[
        Path | None, typer.Option("--table", help="Snapshot table: CSV (delimiter sniffed), Parquet or Excel.")
    ] = None,
    id_col: Annotated[str | None, typer.Option("--id", help="The customer id column (never a feature).")] = None,
    label: Annotated[str | None, typer.Option("--label", help="The label column (churned or not).")] = None,
    positive: Annotated[
        str | None, typer.Option("--positive", help="The label's churned value (default: yes/true/1/churned).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Folder to write the model into.")] = None,
    algorithm: Annotated[
        str,
        typer.Option(
            "--algorithm",
            help="blend (LightGBM and logistic, weight chosen on validation data), lightgbm, logistic or auto.",
        ),
    ] = "blend",
    seed: Annotated[int, typer.Option("--seed", help="Seeds the split, the trees and the calibration.")] = 0,
    time_col: Annotated[
        str | None, typer.Option("--time-col", help="A date column: the latest dates validate (else a random 20 %).")
    ] = None,
    drop: Annotated[
        list[str] | None, typer.Option("--drop", help="Columns never to use, e.g. leaking scores (repeat or a,b).")
    ] = None,
    sheet: Annotated[str | None, typer.Option("--sheet", help="Excel: the sheet to read.")] = None,
    backtest: Annotated[
        int, typer.Option("--backtest", help="With --time-col: this many time-based backtest folds.")
    ] = 0,
    register_opt: Annotated[
        bool | None,
        typer.Option(
            "--register/--no-register",
            help="Record the model in the store's model_runs (default: when the --db store exists).",
            show_default=False,
        ),
    ] = None,
    horizon: Annotated[
        str | None, typer.Option("--horizon", help="Event mode (no --table): churn within this horizon, e.g. 30d.")
    ] = None,
    observations: Annotated[
        str, typer.Option("--observations", help="Event mode: observation dates, monthly or weekly.")
    ] = "monthly",
    count: Annotated[int, typer.Option("--count", help="Event mode: number of observation dates.")] = 12,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Train a churn model: on a snapshot table (--table), or on the store's events (--horizon)."""
    lang = settings_of(ctx).lang
    if table is None:
        _train_events(ctx, horizon, observations, count, algorithm, out, seed, fmt)
        return
    if label is None:
        raise ConfigError("--label: give the label column of the table (e.g. --label Churn).")
    if out is None:
        raise ConfigError("--out: give the folder to write the model into (e.g. --out models/churn).")
    from churnguard.predict import read_table, train
    from churnguard.predict.backtesting import backtest as run_backtest
    from churnguard.predict.backtesting import backtest_summary
    from churnguard.predict.registry import metrics_summary, register

    text_columns = [c for c in (id_col,) if c]
    frame = read_table(table, sheet=sheet, text_columns=text_columns)
    drops = _drop_list(drop)
    folds = None
    if backtest:
        if time_col is None:
            raise ConfigError("--backtest needs --time-col (the date that orders the folds).")
        folds = run_backtest(
            frame,
            label=label,
            time_col=time_col,
            folds=backtest,
            id_col=id_col,
            algorithm=algorithm,
            drop=drops,
            seed=seed,
            positive=positive,
            source=table.name,
        )
    model = train(
        frame,
        label=label,
        id_col=id_col,
        time_col=time_col,
        algorithm=algorithm,
        drop=drops,
        seed=seed,
        positive=positive,
        source=table.name,
    )
    model.meta["table"] = str(table)
    if folds is not None:
        model.meta["backtest"] = folds
        model.metrics["backtest"] = folds
    model.save(out)
    registered = False
    store = _store_if_exists(ctx) if register_opt is not False else None
    if register_opt and store is None:
        from churnguard.store import connect

        store = connect(settings_of(ctx).db)
    if store is not None:
        with store:
            register(store, model, out)
        registered = True
    result = {
        "model_id": model.model_id,
        "path": str(Path(out).resolve()),
        "mode": "snapshot",
        "algorithm": model.algorithm,
        "algorithm_requested": algorithm,
        "rows": model.meta["label"]["rows"],
        "positives": model.meta["label"]["positives"],
        "label": model.meta["label"],
        "features": [{"name": f.name, "dtype": f.kind, "category": f.category} for f in model.plan.features],
        "dropped": model.plan.dropped,
        "split": model.meta["split"],
        "calibration": model.calibrator.method,
        "validation": metrics_summary(model.metrics).get("validation"),
        "validation_auc_by_algorithm": model.meta["validation_auc_by_algorithm"],
        "training_seconds": model.meta["training_seconds"],
        "registered": registered,
        "backtest": folds,
        "backtest_summary": backtest_summary(folds) if folds else None,
    }
    if fmt == OutputFormat.json:
        print_json(result)
        return
    v = result["validation"] or {}
    console.print(
        f"[bold]{_l('model', lang)} {model.model_id}[/] · {model.algorithm} · {result['rows']:,} {_l('rows', lang)}, "
        f"{result['positives']:,} {_l('churned', lang)} · {len(model.features)} {_l('features', lang)} · "
        f"{model.meta['training_seconds']:.1f} s\n"
        f"{_l('validation', lang)}: AUC {v.get('auc')}, lift@10 {v.get('lift_at_10')}, Brier {v.get('brier')}, "
        f"calibration {model.calibrator.method} · saved to {result['path']}" + (" · registered" if registered else "")
    )
    if model.plan.dropped:
        print_table(
            _l("dropped", lang),
            [_l("column", lang), _l("reason", lang)],
            [[d["column"], d["reason"]] for d in model.plan.dropped],
        )
    _importance_table(model, lang, 10)
    if folds:
        _backtest_table(folds, lang)


def _train_events(
    ctx: typer.Context,
    horizon: str | None,
    observations: str,
    count: int,
    algorithm: str,
    out: Path | None,
    seed: int,
    fmt: OutputFormat,
) -> None:
    from churnguard.predict.events import train_from_store
    from churnguard.store import connect

    days = _parse_horizon(horizon or "30d")
    every = {"monthly": "monthly", "weekly": "weekly"}.get(observations)
    if every is None:
        raise ConfigError(f'--observations: expected monthly or weekly, got "{observations}".')
    with connect(settings_of(ctx).db) as store:
        result = train_from_store(
            store, horizon_days=days, observations=every, count=count, algorithm=algorithm, out=out, seed=seed
        )
    data = result.to_dict()
    if fmt == OutputFormat.json:
        print_json(data)
        return
    test = data.get("test") or {}
    console.print(
        f"[bold]{data['model_id']}[/] · events · horizon {days} days · {data['rows']:,} rows · "
        f"test AUC {test.get('auc')}, lift@10 {test.get('lift_at_10')} · saved to {data['path']}"
    )
    if data.get("backtest"):
        _backtest_table(data["backtest"], settings_of(ctx).lang)


def _backtest_table(folds: list[dict[str, Any]], lang: str) -> None:
    print_table(
        _l("backtest", lang),
        [_l("fold", lang), _l("test_period", lang), "Train to", "n", "AUC", "Lift@10", "Brier"],
        [
            [
                f.get("fold"),
                f"{f.get('test_from')} – {f.get('test_to')}",
                f.get("train_to"),
                f.get("n_test"),
                f.get("auc"),
                f.get("lift_at_10"),
                f.get("brier"),
            ]
            for f in folds
        ],
        numeric={3, 4, 5, 6},
    )


def _importance_table(model: Any, lang: str, top: int) -> None:
    imp = model.importance().head(top)
    print_table(
        _l("importance", lang),
        [_l("feature", lang), _l("category", lang), _l("importance", lang).split(" (")[0], _l("share", lang)],
        [[r.feature, _category(r.category, lang), r.importance, f"{r.share * 100:.1f} %"] for r in imp.itertuples()],
        numeric={2, 3},
    )


def _direction(row: dict[str, Any], lang: str) -> str:
    if not lang.startswith("zh"):
        return str(row["direction"])
    return "提高流失" if row["coefficient"] > 0 else "降低流失" if row["coefficient"] < 0 else "无"


def _category(code: str, lang: str) -> str:
    from churnguard.reasons import driver

    try:
        return driver(code).label(lang)
    except KeyError:
        return code


# -- evaluate --------------------------------------------------------------------------------


@model_app.command("evaluate")
def evaluate_cmd(
    ctx: typer.Context,
    model_dir: Annotated[Path, typer.Option("--model", help="The model folder (from model train --out).")],
    table: Annotated[Path, typer.Option("--table", help="A labelled table, e.g. held-out customers.")],
    label: Annotated[str | None, typer.Option("--label", help="Label column (default: the model's).")] = None,
    positive: Annotated[str | None, typer.Option("--positive", help="Churned value (default: the model's).")] = None,
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="Contact at or above this probability.")
    ] = None,
    top_k: Annotated[float, typer.Option("--top-k", help="Top-k share for the top-k threshold.")] = 0.10,
    value: Annotated[
        str | None, typer.Option("--value", help="Customer value: a number or a column (for the EV threshold).")
    ] = None,
    contact_cost: Annotated[float | None, typer.Option("--contact-cost", help="Cost of one contact.")] = None,
    save_rate: Annotated[float | None, typer.Option("--save-rate", help="Share of contacted churners saved.")] = None,
    allow_missing: Annotated[
        bool, typer.Option("--allow-missing-columns", help="Treat absent feature columns as missing values.")
    ] = False,
    sheet: Annotated[str | None, typer.Option("--sheet", help="Excel: the sheet to read.")] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Evaluate a model on a labelled table: AUC, PR AUC, lift, Brier, calibration, confusion."""
    import numpy as np

    from churnguard.predict import evaluate, read_table
    from churnguard.predict.tabular import label_vector, to_numbers

    lang = settings_of(ctx).lang
    model = _load(model_dir)
    frame = read_table(table, sheet=sheet, text_columns=[c for c in (model.plan.id_col,) if c])
    label_col = label or model.plan.label
    if label_col is None:
        raise ConfigError("--label: the model records no label column; give one.")
    pos = positive if positive is not None else (model.plan.positive if label is None else None)
    y, _ = label_vector(frame, label_col, pos, source=table.name)
    keep = ~np.isnan(y)
    frame = frame.loc[keep]
    y = y[keep]
    p = model.predict(frame, missing="fill" if allow_missing else "error", source=table.name)
    values: Any = None
    if value is not None:
        try:
            values = float(value)
        except ValueError:
            if value not in frame.columns:
                raise ConfigError(f'--value: expected a number or a column of {table.name}, got "{value}".') from None
            values = to_numbers(frame[value])
    given = [values is not None, contact_cost is not None, save_rate is not None]
    if any(given) and not all(given):
        raise ConfigError("the expected-value threshold needs --value, --contact-cost and --save-rate together.")
    result = evaluate(
        y, p, value=values, contact_cost=contact_cost, save_rate=save_rate, threshold=threshold, top_k=top_k
    )
    result = {"model_id": model.model_id, "algorithm": model.algorithm, "table": str(table), **result}
    if fmt == OutputFormat.json:
        print_json(result)
        return
    console.print(f"[bold]{model.model_id}[/] · {model.algorithm} · {table.name}")
    print_table(
        _l("evaluation", lang),
        [_l("metric", lang), _l("value", lang)],
        _summary_rows(result),
        numeric={1},
    )
    c = result["confusion"]
    print_table(
        _l("confusion", lang) + f" ({result['threshold_method']}, p ≥ {result['threshold']:.4f})",
        ["", "churned", "stayed"],
        [["contacted", c["tp"], c["fp"]], ["not contacted", c["fn"], c["tn"]]],
        numeric={1, 2},
    )
    print_table(
        _l("lift_curve", lang),
        [_l("decile", lang), _l("rows", lang), _l("rate", lang), _l("lift", lang), _l("capture", lang)],
        [[d["decile"], d["rows"], d["rate"], d["lift"], d["capture"]] for d in result["lift_curve"]],
        numeric={0, 1, 2, 3, 4},
    )


# -- score -----------------------------------------------------------------------------------


@model_app.command("score")
def score_cmd(
    ctx: typer.Context,
    model_dir: Annotated[Path, typer.Option("--model", help="The model folder.")],
    table: Annotated[Path, typer.Option("--table", help="Customers to score (same columns as in training).")],
    out: Annotated[Path, typer.Option("--out", help="Output file: .csv or .parquet.")],
    top: Annotated[int, typer.Option("--top", help="Reasons per customer.")] = 3,
    allow_missing: Annotated[
        bool, typer.Option("--allow-missing-columns", help="Treat absent feature columns as missing values.")
    ] = False,
    sheet: Annotated[str | None, typer.Option("--sheet", help="Excel: the sheet to read.")] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Score a table: id, probability, risk band, top reason, reason_1..3 and the reasons as JSON."""
    lang = settings_of(ctx).lang
    suffix = out.name.lower()
    if not suffix.endswith((".csv", ".parquet", ".pq")):
        raise ConfigError(f'--out: expected a .csv or .parquet file name, got "{out.name}".')
    model = _load(model_dir)
    from churnguard.predict import read_table

    started = time.perf_counter()
    frame = read_table(table, sheet=sheet, text_columns=[c for c in (model.plan.id_col,) if c])
    read_s = time.perf_counter() - started
    t0 = time.perf_counter()
    scored = model.score(frame, top=top, lang=lang, missing="fill" if allow_missing else "error", source=table.name)
    score_s = time.perf_counter() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix.endswith(".csv"):
        scored.to_csv(out, index=False)
    else:
        scored.to_parquet(out, index=False)
    counts = scored["top_reason"].value_counts(dropna=False)
    result = {
        "model_id": model.model_id,
        "rows": len(scored),
        "out": str(out),
        "columns": list(scored.columns),
        "read_seconds": round(read_s, 3),
        "score_seconds": round(score_s, 3),
        "rows_per_second": round(len(scored) / score_s) if score_s > 0 else None,
        "mean_probability": round(float(scored["probability"].mean()), 6),
        "bands": scored["risk_band"].value_counts().to_dict() if "risk_band" in scored else None,
        "top_reasons": {("none" if k is None or k != k else str(k)): int(v) for k, v in counts.items()},
    }
    if fmt == OutputFormat.json:
        print_json(result)
        return
    console.print(
        f"[bold]{_l('scored', lang)} {len(scored):,}[/] · {model.model_id} → {out} · "
        f"{result['rows_per_second']:,} rows/s"
    )
    print_table(
        _l("top_reasons", lang),
        [_l("category", lang), _l("rows", lang)],
        [[_category(k, lang), v] for k, v in result["top_reasons"].items()],
        numeric={1},
    )


# -- list ------------------------------------------------------------------------------------


@model_app.command("list")
def list_cmd(
    ctx: typer.Context,
    folder: Annotated[Path | None, typer.Option("--dir", help="Also list model folders under this folder.")] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Models registered in the store (model_runs) and/or found under --dir, newest first."""
    from churnguard.predict.registry import list_models

    lang = settings_of(ctx).lang
    store = _store_if_exists(ctx)
    try:
        models = list_models(store, folder)
    finally:
        if store is not None:
            store.close()
    if fmt == OutputFormat.json:
        print_json(models)
        return
    rows = []
    for m in models:
        head = (m.get("metrics") or {}).get("test") or (m.get("metrics") or {}).get("validation") or {}
        rows.append(
            [
                m["model_id"],
                m.get("created_at"),
                m.get("mode"),
                m.get("algorithm"),
                m.get("n_rows"),
                head.get("auc"),
                head.get("lift_at_10"),
                "yes" if m.get("active") else "",
                m.get("path"),
            ]
        )
    print_table(
        _l("models", lang),
        [
            _l("model", lang),
            _l("created", lang),
            _l("mode", lang),
            _l("algorithm", lang),
            _l("rows", lang),
            "AUC",
            "Lift@10",
            "Active",
            _l("path", lang),
        ],
        rows,
        numeric={4, 5, 6},
    )


# -- explain ---------------------------------------------------------------------------------


@model_app.command("explain")
def explain_cmd(
    ctx: typer.Context,
    model_dir: Annotated[Path, typer.Option("--model", help="The model folder.")],
    table: Annotated[
        Path | None, typer.Option("--table", help="Compute partial dependence on this table (else the stored one).")
    ] = None,
    top: Annotated[int, typer.Option("--top", help="Drivers shown.")] = 10,
    sheet: Annotated[str | None, typer.Option("--sheet", help="Excel: the sheet to read.")] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Global importance, the logistic-regression driver table and partial dependence of the top drivers."""
    lang = settings_of(ctx).lang
    model = _load(model_dir)
    importance = model.importance()
    pd_points = model.partial_dependence()
    if table is not None:
        from churnguard.predict import read_table

        frame = read_table(table, sheet=sheet)
        if len(frame) > 1000:
            frame = frame.sample(1000, random_state=0)
        pd_points = model.partial_dependence(frame, features=list(importance["feature"].head(5)))
    result = {
        "model_id": model.model_id,
        "algorithm": model.algorithm,
        "importance": importance.head(top).to_dict("records"),
        "drivers": model.drivers().head(top * 2).to_dict("records"),
        "partial_dependence": pd_points,
        "dropped": model.plan.dropped,
    }
    if fmt == OutputFormat.json:
        print_json(result)
        return
    console.print(f"[bold]{model.model_id}[/] · {model.algorithm} · {len(model.features)} {_l('features', lang)}")
    _importance_table(model, lang, top)
    print_table(
        _l("drivers", lang),
        [
            _l("term", lang),
            _l("category", lang),
            _l("coefficient", lang),
            _l("odds_ratio", lang),
            _l("direction", lang),
        ],
        [
            [d["term"], _category(d["category"], lang), d["coefficient"], d["odds_ratio"], _direction(d, lang)]
            for d in result["drivers"]
        ],
        numeric={2, 3},
    )
    for curve in pd_points:
        print_table(
            f"{_l('pd', lang)}: {curve['feature']}",
            [_l("value", lang), _l("probability", lang)],
            [[pt["value"], pt["probability"]] for pt in curve["points"]],
            numeric={1},
        )

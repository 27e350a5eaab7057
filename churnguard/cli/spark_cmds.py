"""``churnguard spark …``: the set-based stages on a Spark session over a Parquet lake.

The lake is what ``churnguard export --to FOLDER`` writes.  ``--master`` is ``local[2]``,
``local[*]`` (default), a cluster master (``spark://host:7077``, ``yarn``) or a Spark Connect
URL (``sc://host:15002``).  pyspark is imported only when one of these commands runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churnguard.cli.app import FormatOption, settings_of
from churnguard.cli.metrics_cmds import parse_date
from churnguard.cli.render import OutputFormat, console, print_json, print_table
from churnguard.errors import ConfigError
from churnguard.i18n import label

spark_app = typer.Typer(
    help="Run metrics, features and batch scoring on Spark over a Parquet lake (churnguard export writes one).",
    no_args_is_help=True,
)

LakeOption = Annotated[Path, typer.Option("--lake", help="The lake folder (churnguard export --to FOLDER).")]
MasterOption = Annotated[
    str | None,
    typer.Option("--master", help="Spark master: local[2], local[*], spark://…, yarn, or sc://host:port (Connect)."),
]
METRICS: tuple[str, ...] = ("churn", "cohort", "implicit")


def register(app: typer.Typer) -> None:
    app.add_typer(spark_app, name="spark")


def _busy(fmt: OutputFormat, text: str):  # type: ignore[no-untyped-def]
    import contextlib

    return console.status(text, spinner="dots") if fmt == OutputFormat.table else contextlib.nullcontext()


@spark_app.command("metrics")
def metrics_cmd(
    ctx: typer.Context,
    lake: LakeOption,
    what: Annotated[str, typer.Option("--what", help="churn (by month × branch), cohort or implicit.")] = "churn",
    master: MasterOption = None,
    max_age: Annotated[int, typer.Option("--max-age", help="cohort: the last age shown (periods).")] = 12,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Churn by month × branch, the cohort matrix or implicit churn, computed on Spark."""
    from churnguard.engines import spark_stages

    if what not in METRICS:
        raise ConfigError(f'--what: expected one of {", ".join(METRICS)}, got "{what}".')
    with _busy(fmt, f"Spark: {what} …"):
        if what == "churn":
            result = spark_stages.churn_by_month_branch(lake, master=master)
        elif what == "cohort":
            result = spark_stages.cohort_matrix(lake, master=master, max_age=max_age)
        else:
            result = spark_stages.implicit_churn_report(lake, master=master)
    data = result.to_dict()
    if fmt == OutputFormat.json:
        print_json(data)
        return
    lang = settings_of(ctx).lang
    if what == "churn":
        print_table(
            f"{label('churn_rate', lang)} {data['from']} – {data['to']} (Spark)",
            ["period", "branch", "start", "churned", label("churn_rate", lang)],
            [
                [r["period"], r["branch"], r["start_customers"], r["churned_from_start"], r["churn_rate"]]
                for r in data["rows"]
            ],
            numeric={2, 3, 4},
        )
    elif what == "cohort":
        ages = range(min(max_age, 12) + 1)
        print_table(
            "cohort retention (Spark)",
            ["cohort", "size", *[str(k) for k in ages]],
            [[c["cohort"], c["size"], *[c["retention"][k] for k in ages]] for c in data["cohorts"]],
            numeric=set(range(1, len(ages) + 2)),
        )
    else:
        print_table(
            "implicit churn (Spark)",
            ["as_of", "active", "judged", "implicit churners", "share"],
            [
                [
                    data["as_of"],
                    data["active_customers"],
                    data["judged_customers"],
                    data["implicit_churners"],
                    data["share"],
                ]
            ],
            numeric={1, 2, 3, 4},
        )


@spark_app.command("features")
def features_cmd(
    lake: LakeOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="The Parquet file to write the feature table to.")],
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Observation date (default: the last labelled month start).")
    ] = None,
    count: Annotated[int, typer.Option("--count", min=1, help="Without --as-of: this many month starts.")] = 1,
    horizon_days: Annotated[int, typer.Option("--horizon-days", min=1, help="Label horizon in days.")] = 30,
    master: MasterOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Point-in-time features (and labels) computed on Spark, written as Parquet."""
    from churnguard.engines import spark_stages

    day = parse_date(as_of, "--as-of")
    with _busy(fmt, "Spark: features …"):
        frame = spark_stages.features(lake, day, count=count, master=master, horizon_days=horizon_days)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out, index=False)
    summary = {"out": str(out), "rows": len(frame), "columns": len(frame.columns), "build": frame.attrs.get("build")}
    if fmt == OutputFormat.json:
        print_json(summary)
        return
    console.print(f"{len(frame)} rows × {len(frame.columns)} columns → {out}")


@spark_app.command("score")
def score_cmd(
    lake: LakeOption,
    model: Annotated[Path, typer.Option("--model", help="The model folder (churnguard model train --out).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The Parquet folder to write the scores to.")],
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Scoring date (default: the data's as-of + 1 day).")
    ] = None,
    partitions: Annotated[int | None, typer.Option("--partitions", min=1, help="Scoring partitions.")] = None,
    master: MasterOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Batch scoring on Spark: features on the lake, the saved model applied per partition, Parquet out."""
    from churnguard.engines.spark_stages import score_lake

    with _busy(fmt, "Spark: scoring …"):
        run = score_lake(lake, model, parse_date(as_of, "--as-of"), out, partitions=partitions, master=master)
    if fmt == OutputFormat.json:
        print_json(run.to_dict())
        return
    print_table(
        f"scores {run.as_of} → {run.out}",
        ["model", "customers", "high", "medium", "low"],
        [[run.model_id, run.customers, run.bands["high"], run.bands["medium"], run.bands["low"]]],
        numeric={1, 2, 3, 4},
    )

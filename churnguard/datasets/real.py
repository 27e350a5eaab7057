"""The bundled real data sets: a registry and loaders.

Each data set ships inside the package: its data as gzipped CSV in ``datasets/data/`` (built
once by :mod:`churnguard.datasets.bundle`) and one mapping file per canonical table in
``datasets/mappings/``.  Loading goes through the ordinary ingestion path: tables that the
data does not hold directly (customers derived from transactions, the branch tree, a
subscription per snapshot row) are computed in the engine (DuckDB SQL over the bundled file)
into in-memory Arrow tables, and every table — file or derived — is validated and written by
one :func:`~churnguard.ingest.ingest_tables` call, so a load is all or nothing.

Examples
--------
>>> from churnguard.store import connect
>>> store = connect("duckdb://:memory:")
>>> results = load_dataset(store, "grocery")
>>> [(r.table, r.rows_added) for r in results]
[('branches', 1), ('customers', 1525), ('transactions', 10483)]
>>> store.get_meta("dataset"), store.get_meta("churn_definition")
('grocery', 'non_contractual')

See ``docs/datasets.md`` for each data set's provenance, licence, mapping and caveats.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churnguard.errors import ChurnguardError, ConfigError
from churnguard.ingest import MODES, IngestResult, LoadSpec, ingest_tables, load_mapping
from churnguard.store.connection import Store
from churnguard.store.sql import ident

DATA_DIR = Path(__file__).parent / "data"
MAPPINGS_DIR = Path(__file__).parent / "mappings"

#: The head-office branch of every data set (the mappings say ``branch_id: {value: HQ}``).
HQ_BRANCH_ID = "HQ"
HQ_BRANCH_NAME = "Head office"

#: The IBM Telco data have no dates.  IBM describes them as one quarter (Q3) of a fictional
#: Californian telco; we place the snapshot on the last day of a third quarter (the year is a fixed choice).
TELCO_SNAPSHOT_DATE = dt.date(2019, 9, 30)

CONTRACTUAL = "contractual"
NON_CONTRACTUAL = "non_contractual"

#: Store metadata keys written by :func:`load_dataset`.
META_DATASET = "dataset"
META_CHURN_DEFINITION = "churn_definition"
META_AS_OF = "dataset_as_of"
META_NOT_FEATURES = "attributes_not_features"


class UnknownDatasetError(ChurnguardError, LookupError):
    """A data set name that is not bundled with churnguard."""

    http_status = 404
    exit_code = 2


@dataclass(frozen=True)
class DatasetInfo:
    """What a bundled data set is.

    Attributes
    ----------
    name : the name to load it by (``churnguard datasets load NAME``).
    title : a one-line title.
    description : what the data hold and how they map onto the canonical tables.
    churn_definition : ``contractual`` (churn is recorded: a subscription ends) or
        ``non_contractual`` (churn is inferred from inactivity).
    source : where the data come from (repository, path, commit).
    tables : the canonical tables the data set fills, in load order.
    licence : the licence the data are distributed under, as far as it is stated.
    """

    name: str
    title: str
    description: str
    churn_definition: str
    source: str
    tables: tuple[str, ...]
    licence: str


@dataclass(frozen=True)
class _Dataset:
    info: DatasetInfo
    as_of: dt.date  # the last day the data describe
    build: Callable[[Any], list[_Spec]]  # private DuckDB connection -> what to load
    not_features: tuple[str, ...] = ()  # customer attributes a churn model must not read


@dataclass(frozen=True)
class _Spec:
    """One table to load and how the result names its source."""

    table: str
    source: Any  # a bundled file path or a derived pyarrow Table
    mapping: Any  # a mapping file path or a parsed Mapping
    label: str


# -- derivations (DuckDB SQL over the bundled files) ----------------------------------------


def _data(name: str) -> Path:
    return DATA_DIR / name


def _mapping(name: str) -> Path:
    return MAPPINGS_DIR / name


def _read_csv(alias: str) -> str:
    # The same reading as the ingestion reader: every cell as text, no type sniffing.
    return f"read_csv(${alias}, header=true, all_varchar=true, delim=',', quote='\"', escape='\"')"


def _arrow(con: Any, sql: str, params: dict[str, Any] | None = None) -> Any:
    return con.sql(sql, params=params or None).to_arrow_table()


def _hq_branches(con: Any) -> Any:
    return _arrow(
        con,
        "SELECT $id AS branch_id, $name AS name, CAST(NULL AS VARCHAR) AS parent_id, 0 AS level",
        {"id": HQ_BRANCH_ID, "name": HQ_BRANCH_NAME},
    )


def _telco_snapshot(con: Any, file: str, *, id_col: str, tenure: str, churn: str, senior: str) -> None:
    """Create the temp table ``snapshot``: the file plus ``Signup Date``, ``Segment``, ``Churn Date``.

    ``Signup Date`` = snapshot date − tenure months; ``Churn Date`` = the snapshot date where the
    churn label is ``Yes`` (empty otherwise); ``Segment`` = ``senior`` (senior citizen), else
    ``family`` (a partner or dependents), else ``single``.  A label other than Yes/No stops the load.
    """
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE snapshot AS
        SELECT *,
          CAST($snapshot - to_months(CAST({ident(tenure)} AS INTEGER)) AS DATE) AS "Signup Date",
          CASE WHEN {ident(senior)} IN ('1', 'Yes') THEN 'senior'
               WHEN "Partner" = 'Yes' OR "Dependents" = 'Yes' THEN 'family'
               ELSE 'single' END AS "Segment",
          CASE {ident(churn)} WHEN 'Yes' THEN $snapshot WHEN 'No' THEN CAST(NULL AS DATE)
               ELSE error('{file}: expected {churn} Yes or No, got ' || coalesce({ident(churn)}, 'an empty cell')
                          || ' for ' || {ident(id_col)}) END AS "Churn Date"
        FROM {_read_csv("path")}
        """,
        {"path": str(_data(file)), "snapshot": TELCO_SNAPSHOT_DATE},
    )


def _build_telco(con: Any) -> list[_Spec]:
    file = "telco_customer_churn.csv.gz"
    _telco_snapshot(con, file, id_col="customerID", tenure="tenure", churn="Churn", senior="SeniorCitizen")
    snapshot = _arrow(con, "SELECT * FROM snapshot")
    churners = _arrow(con, 'SELECT * FROM snapshot WHERE "Churn Date" IS NOT NULL')
    derived = f"{file} (derived)"
    return [
        _Spec("branches", _hq_branches(con), _mapping("branches.yaml"), "head office (derived)"),
        _Spec("customers", snapshot, _mapping("telco_customers.yaml"), derived),
        _Spec("subscriptions", snapshot, _mapping("telco_subscriptions.yaml"), derived),
        _Spec("churn_events", churners, _mapping("telco_churn_events.yaml"), derived),
    ]


def _build_telco_cltv(con: Any) -> list[_Spec]:
    file = "telco_customer_churn_cltv.csv.gz"
    _telco_snapshot(
        con, file, id_col="CustomerID", tenure="Tenure Months", churn="Churn Label", senior="Senior Citizen"
    )
    # Branch ids: readable, stable slugs — state "california", city "california.los-angeles".
    con.execute(
        "CREATE OR REPLACE TEMP MACRO slug(x) AS trim(lower(regexp_replace(trim(x), '[^A-Za-z0-9]+', '-', 'g')), '-')"
    )
    snapshot = _arrow(con, 'SELECT *, slug("State") || \'.\' || slug("City") AS "Branch ID" FROM snapshot')
    branches = _arrow(
        con,
        """
        WITH geo AS (SELECT DISTINCT "State" AS state, "City" AS city FROM snapshot)
        SELECT $hq AS branch_id, $hq_name AS name, CAST(NULL AS VARCHAR) AS parent_id, 0 AS level
        UNION ALL
        SELECT DISTINCT slug(state), state, $hq, 1 FROM geo
        UNION ALL
        SELECT slug(state) || '.' || slug(city), city, slug(state), 2 FROM geo
        ORDER BY level, branch_id
        """,
        {"hq": HQ_BRANCH_ID, "hq_name": HQ_BRANCH_NAME},
    )
    # "Destination" follows the mapping's own recode table: the texts it recodes to competitor.
    events_map = load_mapping(_mapping("telco_cltv_churn_events.yaml"))
    recode = events_map.columns["reason_code"].values or {}
    competitor_texts = sorted(text for text, code in recode.items() if code == "competitor")
    churners = _arrow(
        con,
        """
        SELECT "CustomerID", "Churn Date", "Churn Reason",
          CASE WHEN list_contains($competitor, "Churn Reason") THEN 'competitor' END AS "Destination"
        FROM snapshot WHERE "Churn Date" IS NOT NULL
        """,
        {"competitor": competitor_texts},
    )
    derived = f"{file} (derived)"
    return [
        _Spec("branches", branches, _mapping("branches.yaml"), derived),
        _Spec("customers", snapshot, _mapping("telco_cltv_customers.yaml"), derived),
        _Spec("subscriptions", snapshot, _mapping("telco_cltv_subscriptions.yaml"), derived),
        _Spec("churn_events", churners, events_map, derived),
    ]


def _first_purchases(con: Any, file: str, *, customer: str, date: str, extra: tuple[str, ...] = ()) -> Any:
    """One row per customer with ``first_purchase`` = the earliest ``date`` text.

    The bundled logs write dates as YYYYMMDD or YYYY-MM-DD, which sort as text the way they sort
    as dates; the customers mapping parses the result with the same format as the transactions'.
    """
    extras = "".join(f", min({ident(c)}) AS {ident(c)}" for c in extra)
    return _arrow(
        con,
        f"SELECT {ident(customer)}, min({ident(date)}) AS first_purchase{extras} "
        f"FROM {_read_csv('path')} GROUP BY {ident(customer)} ORDER BY {ident(customer)}",
        {"path": str(_data(file))},
    )


def _transaction_log(
    file: str, transactions_map: str, customers_map: str, *, customer: str, date: str, extra: tuple[str, ...] = ()
) -> Callable[[Any], list[_Spec]]:
    """The builder of a transaction-log data set: HQ, customers from first purchases, the log itself."""

    def build(con: Any) -> list[_Spec]:
        customers = _first_purchases(con, file, customer=customer, date=date, extra=extra)
        return [
            _Spec("branches", _hq_branches(con), _mapping("branches.yaml"), "head office (derived)"),
            _Spec("customers", customers, _mapping(customers_map), f"{file} (derived: first purchases)"),
            _Spec("transactions", _data(file), _mapping(transactions_map), file),
        ]

    return build


# -- the registry ---------------------------------------------------------------------------

_TELCO_SOURCE = (
    "GitHub IBM/telco-customer-churn-on-icp4d, data/Telco-Customer-Churn.csv, commit d5371f5d83a4 "
    "(the Kaggle WA_Fn-UseC_-Telco-Customer-Churn.csv with LF line endings)"
)

_REGISTRY: dict[str, _Dataset] = {
    d.info.name: d
    for d in (
        _Dataset(
            DatasetInfo(
                name="telco",
                title="IBM Telco Customer Churn (7,043 customers, one snapshot)",
                description=(
                    "A fictional Californian telco's customer snapshot: contract, services, charges and whether the "
                    "customer left in the last month (1,869 of 7,043). One head-office branch; signup dates derived "
                    f"as {TELCO_SNAPSHOT_DATE.isoformat()} minus tenure months; one subscription per customer, ending "
                    "on the snapshot date for churners; churn reasons unknown."
                ),
                churn_definition=CONTRACTUAL,
                source=_TELCO_SOURCE,
                tables=("branches", "customers", "subscriptions", "churn_events"),
                licence="Apache-2.0 (the source repository's licence; IBM sample data, fictional customers)",
            ),
            as_of=TELCO_SNAPSHOT_DATE,
            build=_build_telco,
        ),
        _Dataset(
            DatasetInfo(
                name="telco-cltv",
                title="IBM Telco Customer Churn, extended: geography, CLTV and churn reasons",
                description=(
                    "The same 7,043 customers with their city (1,129 cities in California) and IBM's churn reason "
                    "(20 texts) and lifetime-value estimate. Branch tree HQ -> state -> city; churn reasons recoded "
                    "to the taxonomy; CLTV kept as the attribute ibm_cltv (not a churn feature); Churn Score and the "
                    "labels are not stored as attributes."
                ),
                churn_definition=CONTRACTUAL,
                source=(
                    "GitHub iamhari9/IBM-Telco-Customer-Churn, Telco_customer_churn.xlsx, commit 52f77802bbf1 "
                    "(IBM Cognos Analytics 11.1.3+ sample), exported to CSV by churnguard.datasets.bundle"
                ),
                tables=("branches", "customers", "subscriptions", "churn_events"),
                licence="none stated (IBM sample data, fictional customers)",
            ),
            as_of=TELCO_SNAPSHOT_DATE,
            build=_build_telco_cltv,
            not_features=("ibm_cltv",),
        ),
        _Dataset(
            DatasetInfo(
                name="cdnow",
                title="CDNOW purchases (69,659 transactions, 23,570 customers, 1997-1998)",
                description=(
                    "Every purchase of the cohort of CDNOW customers who first bought in Q1 1997, to June 1998: "
                    "date, number of CDs (attribute quantity) and dollar value. Customers derived from their first "
                    "purchase; one head-office branch. Non-contractual: no recorded churn."
                ),
                churn_definition=NON_CONTRACTUAL,
                source=(
                    "PyPI lifetimes 0.11.3, lifetimes/datasets/CDNOW_master.txt (Fader & Hardie 2001, "
                    "'Forecasting Repeat Sales at CDNOW', Interfaces 31(3))"
                ),
                tables=("branches", "customers", "transactions"),
                licence="MIT (the lifetimes package); data from Bruce Hardie's data page",
            ),
            as_of=dt.date(1998, 6, 30),
            build=_transaction_log(
                "cdnow_master.csv.gz",
                "cdnow_transactions.yaml",
                "cdnow_customers.yaml",
                customer="customer_id",
                date="date",
            ),
        ),
        _Dataset(
            DatasetInfo(
                name="cdnow-sample",
                title="CDNOW 1/10 sample (6,919 transactions, 2,357 customers)",
                description=(
                    "The 1/10 sample of the CDNOW cohort used in the BG/NBD literature and the lifetimes "
                    "documentation; customer ids are the master ids, and the attribute sample_id is the id in "
                    "lifetimes' cdnow_customers_summary. Non-contractual: no recorded churn."
                ),
                churn_definition=NON_CONTRACTUAL,
                source="PyPI lifetimes 0.11.3, lifetimes/datasets/CDNOW_sample.txt",
                tables=("branches", "customers", "transactions"),
                licence="MIT (the lifetimes package); data from Bruce Hardie's data page",
            ),
            as_of=dt.date(1998, 6, 30),
            build=_transaction_log(
                "cdnow_sample.csv.gz",
                "cdnow_transactions.yaml",
                "cdnow_sample_customers.yaml",
                customer="customer_id",
                date="date",
                extra=("sample_id",),
            ),
        ),
        _Dataset(
            DatasetInfo(
                name="grocery",
                title="Online grocery purchases (10,483 transactions, 1,525 customers, 2006-2007)",
                description=(
                    "Two years of purchase dates of a cohort of an online grocer's customers who first bought in "
                    "Q1 2006. No amounts (amount is empty). Customers derived from their first purchase; one "
                    "head-office branch. Non-contractual: no recorded churn."
                ),
                churn_definition=NON_CONTRACTUAL,
                source=(
                    "GitHub mplatzer/BTYDplus, data/groceryElog.rda, commit d5eda8f13968 (Platzer & Reutterer 2016, "
                    "Marketing Science 35(5))"
                ),
                tables=("branches", "customers", "transactions"),
                licence="GPL-3 (the BTYDplus package); no separate data licence stated",
            ),
            as_of=dt.date(2007, 12, 31),
            build=_transaction_log(
                "grocery_elog.csv.gz",
                "grocery_transactions.yaml",
                "grocery_customers.yaml",
                customer="cust",
                date="date",
            ),
        ),
    )
}


# -- public API -----------------------------------------------------------------------------


def list_datasets() -> list[DatasetInfo]:
    """The bundled data sets, in a stable order.

    Returns
    -------
    list of DatasetInfo
    """
    return [d.info for d in _REGISTRY.values()]


def _lookup(name: str) -> _Dataset:
    key = name.strip().lower().replace("_", "-")
    try:
        return _REGISTRY[key]
    except KeyError:
        known = ", ".join(_REGISTRY)
        raise UnknownDatasetError(
            f'unknown data set "{name}": expected one of {known}. Fix: run `churnguard datasets list` to see them.'
        ) from None


def load_dataset(store: Store, name: str, *, mode: str = "replace") -> list[IngestResult]:
    """Load the bundled data set ``name`` into ``store`` through the ingestion path, atomically.

    Parameters
    ----------
    store : the open store.
    name : a data set name from :func:`list_datasets` (``telco``, ``telco-cltv``, ``cdnow``, …).
    mode : ``replace`` (default) makes the store hold exactly this data set: every canonical table
        (branches, customers and all tables that refer to customers) is replaced in the same
        transaction, so loading into a fresh store, re-loading the same data set and switching to
        another data set all work.  ``append`` adds the rows that are not stored yet (re-loading
        adds nothing); ``upsert`` replaces stored rows with the same key.  Both leave other tables
        alone and refuse a store that holds a different data set.

    Returns
    -------
    list of IngestResult
        One per table the data set fills, in load order.

    Raises
    ------
    UnknownDatasetError
        ``name`` is not a bundled data set.
    ConfigError
        ``mode`` is not one of append, replace, upsert; or ``append``/``upsert`` into a store that
        holds another data set.
    ValidationError
        A bundled file does not fit its mapping (a packaging defect); nothing is written.

    Notes
    -----
    The store's metadata records ``dataset`` (the name), ``churn_definition`` (``contractual`` or
    ``non_contractual``), ``dataset_as_of`` (the last day the data describe) and
    ``attributes_not_features`` (comma-separated customer attributes a churn model must not read).
    """
    dataset = _lookup(name)
    if mode not in MODES:
        raise ConfigError(f'load mode "{mode}": expected one of {", ".join(MODES)}.')
    current = store.get_meta(META_DATASET)
    if mode != "replace" and current not in (None, dataset.info.name):
        raise ConfigError(
            f'the store holds the data set "{current}"; {mode} would mix "{dataset.info.name}" into it. '
            f'Fix: load it with mode "replace" (the store then holds only {dataset.info.name}), or use another store.'
        )

    import duckdb

    con = duckdb.connect()
    try:
        specs = dataset.build(con)
    finally:
        con.close()
    meta = {
        META_DATASET: dataset.info.name,
        META_CHURN_DEFINITION: dataset.info.churn_definition,
        META_AS_OF: dataset.as_of.isoformat(),
        META_NOT_FEATURES: ",".join(dataset.not_features),
    }
    # replace: the store holds exactly this data set afterwards (every canonical table is emptied
    # and loses its extra columns first, in the same transaction as the load and the metadata).
    return ingest_tables(
        store,
        [LoadSpec(s.table, s.source, s.mapping, name=s.label) for s in specs],
        mode=mode,
        clear_all=mode == "replace",
        meta=meta,
    )


__all__ = [
    "CONTRACTUAL",
    "NON_CONTRACTUAL",
    "DatasetInfo",
    "UnknownDatasetError",
    "list_datasets",
    "load_dataset",
]

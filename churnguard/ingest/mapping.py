"""Mapping files: how a user's columns become the canonical table's columns.

A mapping is YAML::

    table: customers                 # optional: the table this mapping is for
    delimiter: ";"                   # optional: CSV delimiter (default: sniffed from the header)
    sheet: Customers                 # optional: Excel sheet name (default: the first)
    columns:
      customer_id: customerID                     # canonical <- source column
      signup_date: {from: Join Date, format: "%d/%m/%Y"}
      voluntary: {from: Churn Type, true_values: [Voluntary], false_values: [Involuntary]}
      recurring_revenue: {from: MRR cents, scale: 0.01}
      reason_code: {from: Churn Reason, values: {"Price too high": price, "Don't know": null}}
      branch_id: {value: HQ}                      # a constant
      plan: {from: Contract, default: unknown}    # fill empty cells
      tenure: {from: tenure, type: integer}       # an extra column with a declared type
    drop: [Count, Lat Long]          # source columns not to keep
    keep_extra: true                 # keep unmapped source columns as extra attributes

Every option is checked when the file is read; a mistake names the file and the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from churnguard.errors import MappingError
from churnguard.store.schema import KIND_TYPES

_OPTION_KEYS = {"from", "value", "format", "true_values", "false_values", "scale", "values", "default", "type"}


@dataclass(frozen=True)
class ColumnMap:
    """How one target column is produced from the source."""

    target: str
    source: str | None = None
    value: Any = None
    format: str | None = None
    true_values: tuple[str, ...] | None = None
    false_values: tuple[str, ...] | None = None
    scale: float | None = None
    values: dict[str, str | None] | None = None  # a value recoded to null (or "") becomes empty
    default: Any = None
    type: str | None = None  # a kind (text, number, integer, date, timestamp, bool, id)


@dataclass(frozen=True)
class Mapping:
    """A parsed mapping file (or an empty one: identity mapping)."""

    columns: dict[str, ColumnMap] = field(default_factory=dict)
    table: str | None = None
    drop: tuple[str, ...] = ()
    keep_extra: bool = True
    delimiter: str | None = None
    sheet: str | None = None
    origin: str = "the inline mapping"


def snake_case(name: str) -> str:
    """Normalise a source column name for an extra attribute column: ``"Zip Code"`` → ``zip_code``."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.strip())
    text = re.sub(r"\W+", "_", text).strip("_").lower()
    return text or "column"


def parse_mapping(data: Any, *, origin: str = "the inline mapping") -> Mapping:
    """Validate a mapping given as a dict (the parsed YAML)."""
    if data is None:
        return Mapping(origin=origin)
    if not isinstance(data, dict):
        raise MappingError(f"{origin}: expected a mapping with a 'columns:' section, got {type(data).__name__}.")
    unknown = set(data) - {"table", "columns", "drop", "keep_extra", "delimiter", "sheet", "description"}
    if unknown:
        raise MappingError(
            f"{origin}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; expected table, columns, drop, "
            "keep_extra, delimiter, sheet."
        )
    raw_cols = data.get("columns") or {}
    if not isinstance(raw_cols, dict):
        raise MappingError(f"{origin}, key columns: expected target: source pairs, got {type(raw_cols).__name__}.")
    columns: dict[str, ColumnMap] = {}
    for target, spec in raw_cols.items():
        columns[str(target)] = _parse_column(str(target), spec, origin)
    drop = data.get("drop") or []
    if not isinstance(drop, list):
        raise MappingError(f"{origin}, key drop: expected a list of source column names, got {drop!r}.")
    delimiter = data.get("delimiter")
    if delimiter is not None and (not isinstance(delimiter, str) or len(delimiter) != 1):
        raise MappingError(f"{origin}, key delimiter: expected one character, got {delimiter!r}.")
    keep_extra = data.get("keep_extra", True)
    if not isinstance(keep_extra, bool):  # bool("false") would be True
        raise MappingError(f"{origin}, key keep_extra: expected true or false, got {keep_extra!r}.")
    return Mapping(
        columns=columns,
        table=data.get("table"),
        drop=tuple(str(d) for d in drop),
        keep_extra=keep_extra,
        delimiter=delimiter,
        sheet=data.get("sheet"),
        origin=origin,
    )


def _parse_column(target: str, spec: Any, origin: str) -> ColumnMap:
    where = f"{origin}, column {target}"
    if isinstance(spec, str | int | float) and not isinstance(spec, bool):
        return ColumnMap(target=target, source=str(spec))
    if not isinstance(spec, dict):
        raise MappingError(f"{where}: expected a source column name or options like {{from: NAME}}, got {spec!r}.")
    unknown = set(spec) - _OPTION_KEYS
    if unknown:
        raise MappingError(
            f"{where}: unknown option(s) {', '.join(sorted(map(str, unknown)))}; expected one of "
            f"{', '.join(sorted(_OPTION_KEYS))}."
        )
    if ("from" in spec) == ("value" in spec):
        raise MappingError(f"{where}: expected exactly one of 'from' (a source column) or 'value' (a constant).")
    scale = spec.get("scale")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, int | float)):
        raise MappingError(f"{where}, option scale: expected a number like 0.01, got {scale!r}.")
    kind = spec.get("type")
    if kind is not None and kind not in KIND_TYPES:
        raise MappingError(f"{where}, option type: expected one of {', '.join(KIND_TYPES)}, got {kind!r}.")
    values = spec.get("values")
    if values is not None and not isinstance(values, dict):
        raise MappingError(f"{where}, option values: expected source: target pairs, got {values!r}.")
    fmt = spec.get("format")
    if fmt is not None and (not isinstance(fmt, str) or "%" not in fmt):
        raise MappingError(f'{where}, option format: expected a strptime format like "%d/%m/%Y", got {fmt!r}.')
    return ColumnMap(
        target=target,
        source=str(spec["from"]) if "from" in spec else None,
        value=spec.get("value"),
        format=fmt,
        true_values=_str_tuple(spec.get("true_values"), where, "true_values"),
        false_values=_str_tuple(spec.get("false_values"), where, "false_values"),
        scale=float(scale) if scale is not None else None,
        values={_flag_text(k): (None if v is None else _flag_text(v)) for k, v in values.items()} if values else None,
        default=spec.get("default"),
        type=kind,
    )


def _flag_text(v: Any) -> str:
    # YAML turns bare yes/no/true/false into booleans; a mapping means the text.
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _str_tuple(v: Any, where: str, key: str) -> tuple[str, ...] | None:
    if v is None:
        return None
    if not isinstance(v, list) or not v:
        raise MappingError(f"{where}, option {key}: expected a non-empty list like [Yes, Y], got {v!r}.")
    return tuple(_flag_text(x) for x in v)


def load_mapping(path: str | Path) -> Mapping:
    """Read and validate a mapping file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MappingError(f"mapping file {p} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:  # a folder, no permission, not UTF-8
        raise MappingError(f"mapping file {p}: expected a readable UTF-8 YAML file, got {exc}.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{p} line {mark.line + 1}, column {mark.column + 1}" if mark else str(p)
        raise MappingError(
            f"{where}: expected valid YAML, got a syntax error ({getattr(exc, 'problem', exc)})."
        ) from None
    return parse_mapping(data, origin=str(p))

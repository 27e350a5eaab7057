"""Retention playbooks (挽留与挽回策略): value tier × churn-reason category → candidate actions.

A playbook is a YAML file (the shipped default is ``retention/playbooks/default.yaml``; print it
with ``churnguard campaign playbook --show``).  It declares

- ``tiers``: the value tiers it knows, most valuable first (``VIP, A, B, C`` by default), and
  ``unranked_tier``, used for customers without a tier or with one it does not list;
- ``actions``: code → ``label_en, label_zh, channel, cost, save_rate, description[, description_zh]``;
- ``retain`` and ``winback``: tier → driver category (:data:`churnguard.reasons.DRIVER_CATEGORIES`
  codes, or ``default``) → a list of candidate action codes, the playbook's first choice first;
- ``abandon``: the abandon rules (彻底放弃), each with ``enabled`` and its parameter.

For a customer with tier ``t`` and top reason category ``r`` the candidates are
``matrix[t][r]`` if listed, else ``matrix[t]["default"]``.  Each candidate ``a`` has

    expected gain(a) = value at risk × save_rate(a) − cost(a)

(:mod:`churnguard.retention.value`), and the budget allocator
(:mod:`churnguard.retention.budget`) picks one candidate per customer, or none.

Every problem found in a file raises :class:`~churnguard.errors.ConfigError` naming the file,
the line and the key (from the YAML parser's marks).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from churnguard.errors import ConfigError
from churnguard.reasons import DRIVER_CATEGORIES, DRIVER_CODES

#: Channels an action may use.
CHANNELS: tuple[str, ...] = ("visit", "call", "sms", "email", "app", "mail", "other")
#: Campaign kinds, and the playbook section each reads.
KINDS: tuple[str, ...] = ("retain", "winback")
DEFAULT_CELL = "default"

_TOP_KEYS = ("name", "version", "currency", "description", "tiers", "unranked_tier", "actions", *KINDS, "abandon")
_ACTION_KEYS = ("label_en", "label_zh", "channel", "cost", "save_rate", "description", "description_zh")
_ACTION_REQUIRED = ("label_en", "label_zh", "channel", "cost", "save_rate")
_ABANDON_KEYS: dict[str, tuple[str, ...]] = {
    "no_gain": ("enabled", "min_expected_gain"),
    "arrears": ("enabled", "threshold"),
    "abusive": ("enabled", "column"),
}
_CODE = re.compile(r"^[a-z][a-z0-9_]*$")
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Action:
    """One retention or win-back action.

    ``cost`` is money per customer treated; ``save_rate`` the share of treated at-risk customers it
    keeps (win-back: brings back), a default to calibrate from measured campaign effects.
    """

    code: str
    label_en: str
    label_zh: str
    channel: str
    cost: float
    save_rate: float
    description: str = ""
    description_zh: str = ""

    def label(self, lang: str = "en") -> str:
        return self.label_zh if lang.startswith("zh") else self.label_en

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "label_en": self.label_en,
            "label_zh": self.label_zh,
            "channel": self.channel,
            "cost": self.cost,
            "save_rate": self.save_rate,
            "description": self.description,
            "description_zh": self.description_zh,
        }


@dataclass(frozen=True)
class AbandonRules:
    """The abandon rules (彻底放弃); a customer matching an enabled rule gets no action.

    Attributes
    ----------
    no_gain, min_expected_gain : abandon when every candidate action's expected gain is
        ``≤ min_expected_gain`` (the value does not cover the action's cost).
    arrears, arrears_threshold : malicious arrears (恶意欠费): the customer's unpaid bills at the
        as-of date sum to more than the threshold.  Needs ``transactions.kind`` and ``paid_at``.
    abusive, abusive_column : the customer is flagged (true / yes / 1) in this ``customers`` column.
    """

    no_gain: bool = True
    min_expected_gain: float = 0.0
    arrears: bool = True
    arrears_threshold: float = 300.0
    abusive: bool = True
    abusive_column: str = "abusive"

    def to_dict(self) -> dict[str, Any]:
        return {
            "no_gain": {"enabled": self.no_gain, "min_expected_gain": self.min_expected_gain},
            "arrears": {"enabled": self.arrears, "threshold": self.arrears_threshold},
            "abusive": {"enabled": self.abusive, "column": self.abusive_column},
        }


@dataclass(frozen=True)
class Playbook:
    """A validated playbook; build one with :func:`load_playbook` or :func:`parse_playbook`."""

    name: str
    tiers: tuple[str, ...]
    unranked_tier: str
    actions: dict[str, Action]
    matrices: dict[str, dict[str, dict[str, tuple[str, ...]]]]
    abandon: AbandonRules = field(default_factory=AbandonRules)
    currency: str = ""
    version: int = 1
    source: str = "default"
    text: str = ""

    def tier_of(self, tier: str | None) -> str:
        """The playbook tier used for a customer tier (``unranked_tier`` for none or an unlisted one)."""
        return tier if tier in self.tiers else self.unranked_tier

    def candidates(self, kind: str, tier: str | None, category: str | None) -> tuple[str, ...]:
        """Candidate action codes for a customer, the playbook's first choice first."""
        row = self._matrix(kind)[self.tier_of(tier)]
        return row.get(category or DEFAULT_CELL) or row[DEFAULT_CELL]

    def cells(self, kind: str) -> list[dict[str, Any]]:
        """Every (tier, category) cell expanded, one row per candidate: ``tier, category, rank, action``.

        All driver categories appear for every tier (unlisted ones take the tier's ``default``),
        so a join on ``(tier, category)`` finds every customer's candidates.
        """
        matrix = self._matrix(kind)
        rows = []
        for tier in self.tiers:
            for cat in DRIVER_CATEGORIES:
                for rank, code in enumerate(matrix[tier].get(cat.code) or matrix[tier][DEFAULT_CELL]):
                    rows.append({"tier": tier, "category": cat.code, "rank": rank, "action": code})
        return rows

    def _matrix(self, kind: str) -> dict[str, dict[str, tuple[str, ...]]]:
        if kind not in KINDS:
            raise ConfigError(f'campaign kind: expected one of {", ".join(KINDS)}, got "{kind}".')
        if kind not in self.matrices:
            raise ConfigError(
                f"playbook {self.source} has no `{kind}` section. Fix: add one (see the default: "
                "churnguard campaign playbook --show)."
            )
        return self.matrices[kind]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "currency": self.currency,
            "source": self.source,
            "tiers": list(self.tiers),
            "unranked_tier": self.unranked_tier,
            "actions": {k: a.to_dict() for k, a in self.actions.items()},
            **{k: {t: {c: list(v) for c, v in row.items()} for t, row in m.items()} for k, m in self.matrices.items()},
            "abandon": self.abandon.to_dict(),
        }


# -- reading -------------------------------------------------------------------------------------


def default_playbook_text() -> str:
    """The shipped default playbook, as YAML text."""
    return resources.files("churnguard.retention").joinpath("playbooks/default.yaml").read_text(encoding="utf-8")


def default_playbook() -> Playbook:
    """The shipped default playbook."""
    return parse_playbook(default_playbook_text(), source="default playbook (retention/playbooks/default.yaml)")


def load_playbook(path: str | Path | None = None) -> Playbook:
    """Read and validate a playbook file; ``None`` gives the shipped default."""
    if path is None:
        return default_playbook()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"playbook {p} does not exist. Fix: write one from the default (churnguard campaign playbook --show)."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"playbook {p}: expected a readable UTF-8 YAML file, got {exc}.") from None
    return parse_playbook(text, source=str(p))


class _Lines:
    """Line numbers (1-based) of every key and value of a YAML document, by path."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.key: dict[tuple[Any, ...], int] = {}
        self.value: dict[tuple[Any, ...], int] = {}

    def walk(self, node: yaml.Node, path: tuple[Any, ...] = ()) -> None:
        self.value[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for k, v in node.value:
                name = k.value
                if name in seen:
                    raise ConfigError(
                        f'{self.source} line {k.start_mark.line + 1}: key "{_dotted((*path, name))}" appears twice. '
                        "Fix: keep one."
                    )
                seen.add(name)
                self.key[(*path, name)] = k.start_mark.line + 1
                self.walk(v, (*path, name))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                self.walk(v, (*path, i))

    def at(self, path: tuple[Any, ...]) -> str:
        line = self.key.get(path) or self.value.get(path)
        while line is None and path:
            path = path[:-1]
            line = self.key.get(path) or self.value.get(path)
        return f"{self.source} line {line}" if line else self.source

    def error(self, path: tuple[Any, ...], message: str) -> ConfigError:
        key = _dotted(path)
        where = self.at(path)
        return ConfigError(f"{where}, key {key}: {message}" if key else f"{where}: {message}")


def _dotted(path: tuple[Any, ...]) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path).replace(".[", "[")


def parse_playbook(text: str, *, source: str = "playbook") -> Playbook:
    """Validate playbook YAML ``text``; ``source`` names it in error messages."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source} line {mark.line + 1}, column {mark.column + 1}" if mark else source
        raise ConfigError(
            f"{where}: expected valid YAML, got a syntax error ({getattr(exc, 'problem', exc)})."
        ) from None
    lines = _Lines(source)
    if node is not None:
        lines.walk(node)
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with tiers, actions and retain, got {type(data).__name__}.")
    _known_keys(lines, (), data, _TOP_KEYS)
    for key in ("tiers", "actions", "retain"):
        if key not in data:
            raise lines.error((), f"the key `{key}` is missing. Fix: copy it from the default playbook.")

    tiers = data["tiers"]
    if not isinstance(tiers, list) or not tiers or not all(isinstance(t, str) and t for t in tiers):
        raise lines.error(("tiers",), f"expected a list of tier names like [VIP, A, B, C], got {tiers!r}.")
    if len(set(tiers)) != len(tiers):
        raise lines.error(("tiers",), f"expected each tier once, got {tiers!r}.")
    unranked = data.get("unranked_tier", tiers[-1])
    if unranked not in tiers:
        raise lines.error(("unranked_tier",), f'expected one of the tiers {", ".join(tiers)}, got "{unranked}".')

    actions = _parse_actions(lines, data["actions"])
    matrices = {kind: _parse_matrix(lines, kind, data[kind], tiers, actions) for kind in KINDS if kind in data}
    abandon = _parse_abandon(lines, data.get("abandon") or {})
    version = data.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        raise lines.error(("version",), f"expected a whole number, got {version!r}.")
    return Playbook(
        name=str(data.get("name") or Path(source).stem),
        tiers=tuple(tiers),
        unranked_tier=unranked,
        actions=actions,
        matrices=matrices,
        abandon=abandon,
        currency=str(data.get("currency") or ""),
        version=version,
        source=source,
        text=text,
    )


def _known_keys(lines: _Lines, path: tuple[Any, ...], mapping: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in mapping:
        if key not in allowed:
            raise lines.error((*path, key), f'unknown key "{key}"; expected one of {", ".join(allowed)}.')


def _number(lines: _Lines, path: tuple[Any, ...], value: Any, *, low: float, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise lines.error(path, f"expected a number, got {value!r}.")
    if not low <= value <= high:
        bound = f"between {low:g} and {high:g}" if math.isfinite(high) else f"at least {low:g}"
        raise lines.error(path, f"expected a number {bound}, got {value!r}.")
    return float(value)


def _text(lines: _Lines, path: tuple[Any, ...], value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise lines.error(path, f"expected text, got {value!r}.")
    return value.strip()


def _parse_actions(lines: _Lines, data: Any) -> dict[str, Action]:
    if not isinstance(data, dict) or not data:
        raise lines.error(("actions",), "expected a mapping of action code → label_en, label_zh, channel, cost, …")
    out = {}
    for code, spec in data.items():
        path = ("actions", code)
        if not isinstance(code, str) or not _CODE.match(code):
            raise lines.error(path, f'expected an action code of lower-case letters, digits and _, got "{code}".')
        if not isinstance(spec, dict):
            raise lines.error(path, f"expected a mapping with {', '.join(_ACTION_REQUIRED)}, got {spec!r}.")
        _known_keys(lines, path, spec, _ACTION_KEYS)
        for key in _ACTION_REQUIRED:
            if key not in spec:
                raise lines.error(path, f"the key `{key}` is missing.")
        channel = spec["channel"]
        if channel not in CHANNELS:
            raise lines.error((*path, "channel"), f'expected one of {", ".join(CHANNELS)}, got "{channel}".')
        out[code] = Action(
            code=code,
            label_en=_text(lines, (*path, "label_en"), spec["label_en"]),
            label_zh=_text(lines, (*path, "label_zh"), spec["label_zh"]),
            channel=channel,
            cost=_number(lines, (*path, "cost"), spec["cost"], low=0),
            save_rate=_number(lines, (*path, "save_rate"), spec["save_rate"], low=0, high=1),
            description=str(spec.get("description") or "").strip(),
            description_zh=str(spec.get("description_zh") or "").strip(),
        )
    return out


def _parse_matrix(
    lines: _Lines, kind: str, data: Any, tiers: list[str], actions: dict[str, Action]
) -> dict[str, dict[str, tuple[str, ...]]]:
    if not isinstance(data, dict):
        raise lines.error((kind,), "expected a mapping of tier → reason category → actions.")
    for tier in data:
        if tier not in tiers:
            raise lines.error((kind, tier), f'unknown tier "{tier}"; expected one of {", ".join(tiers)} (see `tiers`).')
    matrix: dict[str, dict[str, tuple[str, ...]]] = {}
    allowed = (DEFAULT_CELL, *sorted(DRIVER_CODES))
    for tier in tiers:
        if tier not in data:
            raise lines.error((kind,), f"tier {tier} has no row. Fix: add `{tier}:` with at least a `default:` cell.")
        row = data[tier]
        if not isinstance(row, dict):
            raise lines.error((kind, tier), "expected a mapping of reason category → actions.")
        for cat in row:
            if cat not in allowed:
                raise lines.error(
                    (kind, tier, cat), f'unknown reason category "{cat}"; expected one of {", ".join(allowed)}.'
                )
        if DEFAULT_CELL not in row:
            raise lines.error((kind, tier), "the `default` cell is missing (used for the categories not listed).")
        cells = {}
        for cat, value in row.items():
            path = (kind, tier, cat)
            codes = [value] if isinstance(value, str) else value
            if not isinstance(codes, list) or not codes:
                raise lines.error(path, f"expected an action code or a list of them, got {value!r}.")
            for i, code in enumerate(codes):
                if code not in actions:
                    raise lines.error(
                        path + ((i,) if isinstance(value, list) else ()),
                        f'unknown action "{code}"; expected one of the codes under `actions`.',
                    )
            if len(set(codes)) != len(codes):
                raise lines.error(path, f"expected each action once, got {codes!r}.")
            cells[cat] = tuple(codes)
        matrix[tier] = cells
    return matrix


def _parse_abandon(lines: _Lines, data: Any) -> AbandonRules:
    if not isinstance(data, dict):
        raise lines.error(("abandon",), "expected a mapping of rule → settings.")
    _known_keys(lines, ("abandon",), data, tuple(_ABANDON_KEYS))
    values: dict[str, Any] = {}
    for rule, keys in _ABANDON_KEYS.items():
        spec = data.get(rule)
        if spec is None:
            continue
        path = ("abandon", rule)
        if not isinstance(spec, dict):
            raise lines.error(path, f"expected a mapping with {', '.join(keys)}, got {spec!r}.")
        _known_keys(lines, path, spec, keys)
        if "enabled" in spec:
            if not isinstance(spec["enabled"], bool):
                raise lines.error((*path, "enabled"), f"expected true or false, got {spec['enabled']!r}.")
            values[rule] = spec["enabled"]
        if rule == "no_gain" and "min_expected_gain" in spec:
            values["min_expected_gain"] = _number(
                lines, (*path, "min_expected_gain"), spec["min_expected_gain"], low=-math.inf
            )
        if rule == "arrears" and "threshold" in spec:
            values["arrears_threshold"] = _number(lines, (*path, "threshold"), spec["threshold"], low=0)
        if rule == "abusive" and "column" in spec:
            column = spec["column"]
            if not isinstance(column, str) or not _COLUMN.match(column):
                raise lines.error((*path, "column"), f"expected a column name like abusive, got {column!r}.")
            values["abusive_column"] = column
    return AbandonRules(**values)

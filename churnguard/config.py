"""Settings: every setting's name, type, default and help in one table.

Precedence, lowest first: the defaults below < a TOML config file (``./churnguard.toml``
or the file named by ``CHURNGUARD_CONFIG``) < ``CHURNGUARD_<NAME>`` environment variables
< command-line flags.  Built once at the edge (the CLI, the API's app factory) and passed down.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from churnguard.errors import ConfigError
from churnguard.store.connection import DEFAULT_URL

LANGS = ("en", "zh")


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    choices: tuple[str, ...] | None = None


SETTINGS: tuple[Setting, ...] = (
    Setting("db", DEFAULT_URL, "store URL: duckdb:///PATH (default ./churnguard.duckdb)"),
    Setting("lang", "en", "language of labels in tables and reports", LANGS),
    Setting("claim_limit", 20, "cases an account manager may hold when users.max_claims is empty (限制认领数量)"),
    Setting("claim_hours", 72.0, "hours a claimed case may go without follow-up before it returns to the pool"),
)


@dataclass(frozen=True)
class Settings:
    db: str = DEFAULT_URL
    lang: str = "en"
    claim_limit: int = 20
    claim_hours: float = 72.0

    def with_overrides(self, **values: Any) -> Settings:
        """Return a copy with every non-``None`` value applied (flags win over everything)."""
        clean = {k: v for k, v in values.items() if v is not None}
        return _validated(replace(self, **clean), "command-line flags")


def _validated(s: Settings, origin: str) -> Settings:
    for setting in SETTINGS:
        value = getattr(s, setting.name)
        if isinstance(setting.default, int | float) and not isinstance(value, int | float):
            try:  # environment variables arrive as text
                value = type(setting.default)(value)
            except (TypeError, ValueError):
                raise ConfigError(f"{origin}: setting {setting.name} expected a number, got {value!r}.") from None
            s = replace(s, **{setting.name: value})
        if setting.choices and value not in setting.choices:
            raise ConfigError(
                f"{origin}: setting {setting.name} expected one of {', '.join(setting.choices)}, got {value!r}."
            )
    return s


def load_settings(env: dict[str, str] | None = None, cwd: Path | None = None) -> Settings:
    """Build settings from defaults, the config file and the environment."""
    env = dict(os.environ if env is None else env)
    names = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    path = Path(env["CHURNGUARD_CONFIG"]) if "CHURNGUARD_CONFIG" in env else (cwd or Path.cwd()) / "churnguard.toml"
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: expected valid TOML, got a syntax error ({exc}).") from None
        unknown = set(data) - names
        if unknown:
            raise ConfigError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(names)}.")
        values.update(data)
        s = _validated(Settings(**values), str(path))
    else:
        s = Settings()
    from_env = {n: env[f"CHURNGUARD_{n.upper()}"] for n in names if f"CHURNGUARD_{n.upper()}" in env}
    if from_env:
        s = _validated(replace(s, **from_env), "environment")
    return s

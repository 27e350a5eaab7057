"""Settings precedence: defaults < config file < environment < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from churnguard.config import Settings, load_settings
from churnguard.errors import ConfigError


def test_defaults(tmp_path: Path) -> None:
    assert load_settings(env={}, cwd=tmp_path) == Settings()


def test_precedence(tmp_path: Path) -> None:
    (tmp_path / "churnguard.toml").write_text('db = "file.duckdb"\nlang = "zh"\n', encoding="utf-8")
    s = load_settings(env={}, cwd=tmp_path)
    assert (s.db, s.lang) == ("file.duckdb", "zh")
    s = load_settings(env={"CHURNGUARD_DB": "env.duckdb"}, cwd=tmp_path)
    assert (s.db, s.lang) == ("env.duckdb", "zh")
    s = s.with_overrides(db="flag.duckdb", lang=None)
    assert (s.db, s.lang) == ("flag.duckdb", "zh")


def test_config_file_from_environment_and_errors(tmp_path: Path) -> None:
    cfg = tmp_path / "other.toml"
    cfg.write_text('colour = "red"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(env={"CHURNGUARD_CONFIG": str(cfg)}, cwd=tmp_path)
    cfg.write_text("db = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected valid TOML"):
        load_settings(env={"CHURNGUARD_CONFIG": str(cfg)}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="expected one of en, zh"):
        load_settings(env={"CHURNGUARD_LANG": "fr"}, cwd=tmp_path)

"""deploy/bounceproc.toml, the annotated sample configuration, names every setting and nothing
else (issue 14, item 9): its active lines and its commented defaults ("# name = value") together
are exactly the fields of Settings, and both load without error."""
from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from pathlib import Path

from bounceproc.config import Settings, load_settings

SAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "bounceproc.toml"
COMMENTED = re.compile(r"^# (\w+ = .*)$")


def _uncommented(text: str) -> str:
    return "\n".join(COMMENTED.sub(r"\1", line) for line in text.splitlines()) + "\n"


def _names(text: str) -> set[str]:
    names: set[str] = set()
    for section in tomllib.loads(text).values():
        names.update(section)
    return names


def test_sample_names_every_setting_and_nothing_else():
    fields = {f.name for f in dataclasses.fields(Settings)} - {"extra"}
    names = _names(_uncommented(SAMPLE.read_text()))
    assert not names - fields, f"not settings: {sorted(names - fields)}"
    assert not fields - names, f"settings missing from deploy/bounceproc.toml: {sorted(fields - names)}"


def test_sample_loads_as_is_and_with_every_default_uncommented(tmp_path, monkeypatch):
    for name in [n for n in os.environ if n.startswith("BOUNCEPROC_")]:
        monkeypatch.delenv(name)
    settings = load_settings(config_file=str(SAMPLE))
    assert settings.extra == {} and settings.sink_accept == ("bounces.sender.example", "fbl@sender.example")
    full = tmp_path / "full.toml"
    full.write_text(_uncommented(SAMPLE.read_text()))
    defaults = load_settings(config_file=str(full))
    assert defaults.extra == {}
    for f in dataclasses.fields(Settings):           # a commented default is the real default
        if f.name in ("extra", "data_dir") or f.default is dataclasses.MISSING:
            continue
        if f"\n# {f.name} = " in SAMPLE.read_text():
            assert getattr(defaults, f.name) == f.default, f.name

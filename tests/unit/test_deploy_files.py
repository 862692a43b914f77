"""The deployment files (issue 14, item 9) say things that are true: every `bounceproc` command in
the systemd units, compose.yaml, the Dockerfile and the PowerMTA snippet parses with the real CLI
parser; the units run as the service user with a state directory and hardening; the image runs as
a non-root user."""
from __future__ import annotations

import configparser
import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from bounceproc.entrypoints.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted((ROOT / "deploy" / "systemd").glob("*.service"))


def _parses(argv: list[str]) -> None:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"`bounceproc {' '.join(argv)}` does not parse ({exc})")
    assert getattr(args, "func", None), argv


def _unit(path: Path) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#", ";"))
    cp.optionxform = str
    cp.read(path)
    return cp


def test_there_are_units_for_serve_sink_api_worker_and_beat():
    names = {p.name for p in UNITS}
    assert {"bounceproc.service", "bounceproc-sink.service", "bounceproc-api.service",
            "bounceproc-worker.service", "bounceproc-beat.service"} <= names


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_runs_a_real_command_as_the_service_user_hardened(unit):
    service = _unit(unit)["Service"]
    argv = shlex.split(service["ExecStart"])
    if argv[0].endswith("/bounceproc"):
        _parses(argv[1:])
    else:
        assert argv[0].endswith("/celery") and argv[1:3] == ["-A", "workers"]
    assert service["User"] == "bounceproc" and service["StateDirectory"] == "bounceproc"
    for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("PrivateTmp", "yes")):
        assert service[key] == value, key
    binds_25 = "CAP_NET_BIND_SERVICE" in service.get("AmbientCapabilities", "")
    assert binds_25 == (argv[1:2] in (["serve"], ["sink"]) and "--no-sink" not in argv)


def test_compose_and_dockerfile_commands_parse():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "api", "worker", "beat", "migrate"} <= set(services)
    for name, svc in services.items():
        if "build" in svc and "entrypoint" not in svc:
            _parses(svc["command"])
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^FROM python:3\.\d+-slim", dockerfile, re.M)
    assert 'ENTRYPOINT ["bounceproc"]' in dockerfile
    _parses(json.loads(re.search(r"^CMD (\[.*\])", dockerfile, re.M).group(1)))


def test_powermta_snippet_pipes_to_a_real_command():
    text = (ROOT / "deploy" / "powermta" / "bounceproc.conf").read_text()
    pipes = re.findall(r'^<acct-file "\|(\S+) (.*)">', text, re.M)
    assert pipes
    for program, args in pipes:
        assert program.endswith("/bounceproc")
        _parses(shlex.split(args))
    assert "records d,b,t,f,rb" in text and "header_X-Bounceproc-Ref" in text

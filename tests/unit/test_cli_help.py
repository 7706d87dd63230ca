"""Every option of `pyvrrpd` and `keepalived` has help text; errors and exit codes as documented."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyvrrpd.cli.keepalived import _parser as keepalived_parser
from pyvrrpd.cli.main import EXIT_CODES_HELP, build_parser

README = Path(__file__).resolve().parents[2] / "README.md"


def _walk(
    parser: argparse.ArgumentParser,
) -> Iterator[tuple[argparse.ArgumentParser, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _walk(sub)
        else:
            yield parser, action


@pytest.mark.parametrize("make", [build_parser, keepalived_parser], ids=["pyvrrpd", "keepalived"])
def test_every_option_has_help(make: object) -> None:
    parser = make()  # type: ignore[operator]
    missing = [
        f"{p.prog} {'/'.join(a.option_strings) or a.dest}"
        for p, a in _walk(parser)
        if not a.help or a.help == argparse.SUPPRESS
    ]
    assert not missing, f"options without help text: {missing}"
    assert sum(1 for _ in _walk(parser)) > 5  # the walk did find the options


def test_every_subcommand_documents_exit_codes() -> None:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert {"run", "status", "check-config", "demo"} <= set(sub.choices)
    for name, parser in sub.choices.items():
        assert parser.description, name
        assert "exit codes" in (parser.epilog or ""), name


def _pyvrrpd(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pyvrrpd", *argv], capture_output=True, text=True, timeout=60
    )


def test_demo_help_names_the_command() -> None:
    r = _pyvrrpd("demo", "--help")
    assert r.returncode == 0
    assert r.stdout.startswith("usage: pyvrrpd demo")
    assert "--daemon" in r.stdout and "--keep" in r.stdout


def test_status_json_without_daemon_is_json(tmp_path: Path) -> None:
    r = _pyvrrpd("status", "--json", "--control-socket", str(tmp_path / "none.sock"))
    assert r.returncode == 1
    reply = json.loads(r.stdout)
    assert reply["exit_code"] == 1
    assert "no daemon" in reply["error"]


def test_status_without_json_is_one_line_on_stderr(tmp_path: Path) -> None:
    r = _pyvrrpd("status", "--control-socket", str(tmp_path / "none.sock"))
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.startswith("pyvrrpd: ") and r.stderr.count("\n") == 1


def test_usage_error_with_json_is_json() -> None:
    r = _pyvrrpd("status", "--json", "--no-such-option")
    assert r.returncode == 2
    assert json.loads(r.stdout) == {
        "error": "pyvrrpd: unrecognized arguments: --no-such-option",
        "exit_code": 2,
    }
    plain = _pyvrrpd("status", "--no-such-option")
    assert plain.returncode == 2 and "usage:" in plain.stderr and plain.stdout == ""


def test_run_exit_codes_match_the_help(tmp_path: Path) -> None:
    bad = tmp_path / "bad.conf"
    bad.write_text("vrrp_instance VI_1 {\n  priority banana\n}\n")
    assert _pyvrrpd("run", "-f", str(bad)).returncode == 2
    missing = _pyvrrpd("check-config", "-f", str(tmp_path / "missing.conf"))
    assert missing.returncode == 4
    for code in ("0", "1", "2", "4", "5", "6"):
        assert f"\n  {code}  " in EXIT_CODES_HELP


def test_readme_has_the_exit_code_table() -> None:
    text = README.read_text()
    assert "## Exit codes" in text
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    for row in ("| 0 |", "| 1 |", "| 2 |", "| 4 |", "| 5 |", "| 6 |"):
        assert row in section, row


def test_check_config_json(tmp_path: Path) -> None:
    bad = tmp_path / "bad.conf"
    bad.write_text("vrrp_instance VI_1 {\n  priority banana\n}\n")
    r = _pyvrrpd("check-config", "--json", "--syntax-only", "-f", str(bad))
    assert r.returncode == 5
    out = json.loads(r.stdout)
    assert out["exit_code"] == 5 and "would not start" in out["error"]
    assert any(
        d["line"] == 2 and d["col"] == 12 and "banana" in d["message"] for d in out["diagnostics"]
    )
    missing = _pyvrrpd("check-config", "--json", "-f", str(tmp_path / "missing.conf"))
    assert missing.returncode == 4 and json.loads(missing.stdout)["exit_code"] == 4
    good = tmp_path / "good.conf"
    good.write_text(
        "vrrp_instance VI_1 {\n interface lo\n virtual_router_id 51\n priority 100\n"
        " virtual_ipaddress {\n  192.0.2.10\n }\n}\n"
    )
    ok = _pyvrrpd("check-config", "--json", "--syntax-only", "-f", str(good))
    assert ok.returncode == 0, ok.stdout
    verdict = json.loads(ok.stdout)
    assert "error" not in verdict and verdict["instances"] == 1


def test_reload_json_without_daemon(tmp_path: Path) -> None:
    r = _pyvrrpd("reload", "--json", "--control-socket", str(tmp_path / "none.sock"))
    assert r.returncode == 1
    reply = json.loads(r.stdout)
    assert reply["exit_code"] == 1 and reply["error"].startswith("reload rejected: no daemon")
    assert reply["ok"] is False

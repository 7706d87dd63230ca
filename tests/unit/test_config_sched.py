"""global_defs scheduling keywords: values keepalived accepts, errors where it complains."""

from __future__ import annotations

import pytest

from pyvrrpd.config import ConfigError, parse_text
from pyvrrpd.config.model import Config, GlobalDefs, Severity

INSTANCE = (
    "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n"
    "  virtual_ipaddress {\n    192.0.2.10\n  }\n}\n"
)


def parse(global_lines: str) -> Config:
    return parse_text("global_defs {\n" + global_lines + "}\n" + INSTANCE, "keepalived.conf")


def errors(global_lines: str) -> list[str]:
    with pytest.raises(ConfigError) as ei:
        parse(global_lines)
    return [f"{d.loc}: {d.message}" for d in ei.value.errors]


def warnings(config: Config) -> list[str]:
    return [f"{d.loc}: {d.message}" for d in config.warnings if d.severity is Severity.WARNING]


def test_defaults_leave_scheduling_alone() -> None:
    gd = parse("").global_defs
    assert (gd.vrrp_priority, gd.vrrp_rt_priority, gd.vrrp_rlimit_rttime) == (None, None, None)
    assert gd.vrrp_no_swap is False
    assert (gd.max_auto_priority, gd.min_auto_priority_delay) == (0, 1_000_000)


def test_values_are_read_and_a_hard_rttime_limit_warned_about() -> None:
    config = parse(
        "  vrrp_rt_priority 50\n  vrrp_rlimit_rttime 20000\n  vrrp_no_swap\n"
        "  max_auto_priority 60\n  min_auto_priority_delay 250000\n"
    )
    gd = config.global_defs
    assert gd.vrrp_rt_priority == 50
    assert gd.vrrp_rlimit_rttime == 20000
    assert gd.vrrp_no_swap is True
    assert gd.max_auto_priority == 60
    assert gd.min_auto_priority_delay == 250000
    assert warnings(config) == [
        "keepalived.conf:3:3: vrrp_rlimit_rttime is a hard limit: the kernel SIGKILLs the"
        " daemon after that much realtime CPU without a pause (a flood can do it), leaving"
        " its VIPs in place; leave it unset for no hard limit"
    ]


def test_nice_alone() -> None:
    config = parse("  vrrp_priority -15\n")
    assert config.global_defs.vrrp_priority == -15
    assert warnings(config) == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("vrrp_priority -21", "2:17: vrrp_priority (a nice value) must be an integer -20..19"),
        ("vrrp_priority 20", "2:17: vrrp_priority (a nice value) must be an integer -20..19"),
        ("vrrp_priority high", "2:17: vrrp_priority (a nice value) must be an integer -20..19"),
        ("vrrp_rt_priority 0", "2:20: vrrp_rt_priority must be an integer 1..99"),
        ("vrrp_rt_priority 100", "2:20: vrrp_rt_priority must be an integer 1..99"),
        ("vrrp_rt_priority", "2:3: vrrp_rt_priority needs a value: an integer 1..99"),
        ("vrrp_rlimit_rttime 0", "2:22: vrrp_rlimit_rttime (microseconds) must be an integer"),
        ("vrrp_rlimit_rttime 4294967296", "2:22: vrrp_rlimit_rttime (microseconds) must be"),
        ("max_auto_priority 100", "2:21: max_auto_priority must be an integer -1..99"),
        ("max_auto_priority -2", "2:21: max_auto_priority must be an integer -1..99"),
        ("min_auto_priority_delay 0", "2:27: min_auto_priority_delay (microseconds) must be"),
        ("min_auto_priority_delay 10000001", "2:27: min_auto_priority_delay (microseconds)"),
        ("min_auto_priority_delay", "2:3: min_auto_priority_delay needs a value"),
    ],
)
def test_bad_values_are_located_errors(line: str, message: str) -> None:
    (got,) = errors(f"  {line}\n")
    assert got.startswith("keepalived.conf:" + message), got


def test_every_bad_value_reported_at_once_with_caret() -> None:
    with pytest.raises(ConfigError) as ei:
        parse("  vrrp_priority -30\n  vrrp_rt_priority 120\n")
    assert len(ei.value.errors) == 2
    assert ei.value.errors[1].format() == (
        "keepalived.conf:3:20: error: vrrp_rt_priority must be an integer 1..99, got '120'\n"
        "      vrrp_rt_priority 120\n"
        "                       ^"
    )


def test_max_auto_priority_without_value_is_the_highest_and_minus_one_is_off() -> None:
    assert parse("  max_auto_priority\n").global_defs.max_auto_priority == 99
    assert parse("  max_auto_priority -1\n").global_defs.max_auto_priority == 0


def test_rlimit_rttime_one_becomes_two_as_in_keepalived() -> None:
    # keepalived: the soft limit is half the value and must not be 0.
    gd = parse("  vrrp_rt_priority 1\n  vrrp_rlimit_rttime 1\n").global_defs
    assert gd.vrrp_rlimit_rttime == 2


def test_deprecated_spelling_is_read_with_a_warning() -> None:
    config = parse("  vrrp_rt_priority 10\n  vrrp_rlimit_rtime 30000\n")
    assert config.global_defs.vrrp_rlimit_rttime == 30000
    assert warnings(config)[0] == (
        "keepalived.conf:3:3: keyword 'vrrp_rlimit_rtime' is deprecated; use 'vrrp_rlimit_rttime'"
    )


def test_settings_without_effect_are_warned_about() -> None:
    config = parse(
        "  vrrp_priority -5\n  vrrp_rt_priority 10\n"  # nice ignored under SCHED_RR
    )
    assert [w.split(": ", 1)[1].split(" (")[0] for w in warnings(config)] == [
        "vrrp_priority has no effect with vrrp_rt_priority"
    ]
    config = parse("  vrrp_rlimit_rttime 5000\n  min_auto_priority_delay 5\n")
    assert warnings(config) == [
        "keepalived.conf:2:3: vrrp_rlimit_rttime applies only under realtime scheduling"
        " (vrrp_rt_priority or max_auto_priority); ignored",
        "keepalived.conf:3:3: min_auto_priority_delay has no effect without"
        " max_auto_priority; ignored",
    ]
    # max_auto_priority can go realtime later: its rlimit is not "ignored".
    config = parse("  vrrp_rlimit_rttime 5000\n  max_auto_priority 5\n")
    assert [w.split(": ")[1] for w in warnings(config)] == ["vrrp_rlimit_rttime is a hard limit"]


def test_vrrp_no_swap_takes_no_value() -> None:
    config = parse("  vrrp_no_swap yes\n")
    assert config.global_defs.vrrp_no_swap is True  # as keepalived: the word sets it
    assert warnings(config) == [
        "keepalived.conf:2:16: unexpected extra word 'yes' after 'vrrp_no_swap'; ignored"
    ]


def test_checker_and_bfd_variants_stay_accepted_and_unsupported() -> None:
    config = parse("  checker_rt_priority 50\n  bfd_no_swap\n  vrrp_cpu_affinity 0\n")
    assert all("has no effect in pyvrrpd" in w for w in warnings(config))
    assert config.global_defs == GlobalDefs()


def test_typo_names_the_scheduling_keyword() -> None:
    config = parse("  vrrp_rt_prority 50\n")
    assert warnings(config) == [
        "keepalived.conf:2:3: unknown keyword 'vrrp_rt_prority' in global_defs"
        " (did you mean 'vrrp_rt_priority'?)"
    ]

"""Label selectors for the watch scope: kubectl's syntax, matched as the API server does."""

from __future__ import annotations

import pytest

from pipeline_recovery.selectors import SelectorError, parse_selector
from pipeline_recovery.settings import SettingsError, load_settings

LABELS = {"app": "web", "tier": "build", "ci.example.com/pipeline": "main"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=api", False),
        ("app!=api", True),
        ("missing!=x", True),
        ("tier in (build, test)", True),
        ("tier notin (build)", False),
        ("missing notin (a,b)", True),
        ("ci.example.com/pipeline", True),
        ("!ci.example.com/pipeline", False),
        ("!skip", True),
        ("app=web,tier in (build),!skip", True),
        ("app=web, tier=test", False),
        ("app=", False),
    ],
)
def test_selector_matching(selector: str, expected: bool) -> None:
    assert parse_selector(selector).matches(LABELS) is expected


@pytest.mark.parametrize("bad", ["app=(x)", "tier in ()", "tier in (a;b)", "=web", "app=web,,x"])
def test_invalid_selectors_are_refused(bad: str) -> None:
    with pytest.raises(SelectorError):
        parse_selector(bad)


def test_a_bad_watch_selector_stops_start_up_naming_the_setting() -> None:
    with pytest.raises(SettingsError, match="PIPELINE_RECOVERY_WATCH_SELECTOR"):
        load_settings(watch_selector="tier in (")
    assert load_settings(watch_selector="app=web").watch_selector == "app=web"

"""Shared by the alert-rule and dashboard contract tests: metric names in PromQL, names exported."""

from __future__ import annotations

import re

from debian_tools import required_tool
from pipeline_recovery import metrics

# PromQL functions (Prometheus 2.x); a name followed by "(" outside this set is a typo.
_FUNCTION_WORDS = """
    abs absent absent_over_time avg avg_over_time bottomk ceil changes clamp clamp_max clamp_min
    count count_over_time count_values day_of_month day_of_week day_of_year days_in_month delta
    deriv exp floor group histogram_count histogram_fraction histogram_quantile histogram_stddev
    histogram_stdvar histogram_sum holt_winters hour idelta increase irate label_join
    label_replace last_over_time ln log10 log2 max max_over_time min min_over_time minute month
    predict_linear present_over_time quantile quantile_over_time rate resets round scalar sgn sort
    sort_desc stddev stddev_over_time stdvar stdvar_over_time sum sum_over_time time timestamp
    topk vector year acos acosh asin asinh atan atanh cos cosh sin sinh tan tanh deg rad pi
"""
FUNCTIONS = frozenset(_FUNCTION_WORDS.split())
KEYWORDS = frozenset({"and", "or", "unless", "offset", "bool", "inf", "nan", "atan2"})
# Series Prometheus makes itself for every target; not the operator's to export.
PROMETHEUS_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
# Stand-ins for Grafana's interval variables when checking queries with promtool.
GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_DURATION = re.compile(r"\b\d+(?:ms|s|m|h|d|w|y)\b")
_NUMBER = re.compile(r"\b\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\b")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects; raises ValueError on an unknown function name."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery selectors
    text = _GROUPING.sub(" ", text)  # label lists of by/without/on/ignoring/group_*
    text = re.sub(r"\$\{?\w+\}?", " ", text)  # dashboard variables
    text = _DURATION.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    names: set[str] = set()
    for match in _IDENT.finditer(text):
        token = match.group()
        if token in KEYWORDS:
            continue
        if text[match.end() :].lstrip().startswith("("):
            if token not in FUNCTIONS:
                raise ValueError(f"unknown PromQL function {token!r} in {expr!r}")
            continue
        names.add(token)
    return names


def exported_series_names() -> set[str]:
    """Every sample name the operator's registry can export (counter/histogram suffixes)."""
    names: set[str] = set()
    for family in metrics.REGISTRY.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count")}
        else:
            names.add(family.name)
    return names


def promtool() -> str:
    """Path of promtool; skips (or fails under CI) when the prometheus package is missing."""
    return required_tool("promtool")

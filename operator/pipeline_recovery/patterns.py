"""The pattern table: load, validate and compile rule files (data/patterns.yaml plus user files)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from pipeline_recovery.taxonomy import CATEGORIES, UNKNOWN, Severity

BUILTIN_NAME = "patterns.yaml"
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,79}$")
# Constructs some engine lacks; rules must stay in the subset Hyperscan, RE2 and `re` share.
_FORBIDDEN = re.compile(r"\(\?<?[=!]|\(\?>|\(\?\(|\\[1-9]|\(\?P=|\\[AZzGk]|\(\?[aLux]")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_KEYS = {
    "id", "category", "regex", "priority", "severity", "confidence", "solution", "root_cause",
    "transient", "auto_fixable", "description", "tools",
}


class PatternError(Exception):
    """A rule file or rule is invalid; the message is one line naming the file and rule id."""


@dataclass(frozen=True)
class Rule:
    """One row of the pattern table."""

    id: str
    category: str
    regex: str
    priority: int
    solution: str
    root_cause: str = ""
    severity: str | None = None
    confidence: float = 0.8
    transient: bool | None = None
    auto_fixable: bool | None = None
    source: str = BUILTIN_NAME
    compiled: re.Pattern[str] = field(default=re.compile(""), compare=False, repr=False)

    @property
    def captures(self) -> tuple[str, ...]:
        return tuple(self.compiled.groupindex)


def _fail(source: str, rule_id: str, why: str) -> PatternError:
    one_line = " ".join(why.split())
    return PatternError(f"{source}: rule {rule_id}: {one_line}")


def _str(raw: Mapping[str, Any], key: str, source: str, rule_id: str, required: bool) -> str:
    value = raw.get(key, "")
    if value is None or (value == "" and not required):
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise _fail(source, rule_id, f"'{key}' must be a non-empty string")
    return value


def build_rule(raw: object, source: str, index: int) -> Rule:
    """Validate one raw mapping into a Rule; PatternError (one line) on any defect."""
    if not isinstance(raw, Mapping):
        raise _fail(source, f"#{index}", "each rule must be a mapping")
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not _ID_RE.match(rule_id):
        raise _fail(source, str(rule_id or f"#{index}"), "'id' must match [a-z0-9][a-z0-9._-]+")
    unknown = set(raw) - _KEYS
    if unknown:
        raise _fail(source, rule_id, f"unknown keys {sorted(unknown)}")
    category = raw.get("category")
    if category not in CATEGORIES or category == UNKNOWN:
        raise _fail(source, rule_id, f"category {category!r} is not in the taxonomy")
    regex = _str(raw, "regex", source, rule_id, True)
    if _FORBIDDEN.search(regex):
        raise _fail(source, rule_id, "regex uses lookaround, backreferences or anchors "
                    "outside the shared engine subset")
    if "\n" in regex:
        raise _fail(source, rule_id, "regex must not contain a newline (rules match one line)")
    try:
        compiled = re.compile(regex)
    except re.error as exc:
        raise _fail(source, rule_id, f"bad regex: {exc}") from None
    if compiled.match(""):
        raise _fail(source, rule_id, "regex matches the empty string")
    priority = raw.get("priority")
    if not isinstance(priority, int) or isinstance(priority, bool) or not 0 <= priority <= 100:
        raise _fail(source, rule_id, "'priority' must be an integer 0..100")
    severity = raw.get("severity")
    if severity is not None and severity not in Severity.__members__:
        raise _fail(source, rule_id, f"severity {severity!r} is not one of {list(Severity)}")
    confidence = raw.get("confidence", 0.8)
    if not isinstance(confidence, int | float) or isinstance(confidence, bool) \
            or not 0 < confidence <= 1:
        raise _fail(source, rule_id, "'confidence' must be a number in (0, 1]")
    solution = _str(raw, "solution", source, rule_id, True)
    root_cause = _str(raw, "root_cause", source, rule_id, False)
    for text in (solution, root_cause):
        for name in _PLACEHOLDER.findall(text):
            if name not in compiled.groupindex:
                raise _fail(source, rule_id, f"placeholder {{{name}}} is not a named capture")
    flags: dict[str, bool | None] = {}
    for key in ("transient", "auto_fixable"):
        value = raw.get(key)
        if value is not None and not isinstance(value, bool):
            raise _fail(source, rule_id, f"'{key}' must be true or false")
        flags[key] = value
    return Rule(
        id=rule_id, category=str(category), regex=regex, priority=priority, solution=solution,
        root_cause=root_cause, severity=severity, confidence=float(confidence),
        transient=flags["transient"], auto_fixable=flags["auto_fixable"], source=source,
        compiled=compiled,
    )


def parse_rules(text: str, source: str) -> list[Rule]:
    """Parse one YAML document: a list of rules, or a mapping with a `rules` list."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise PatternError(f"{source}: rule -: not valid YAML{where}") from None
    items = doc.get("rules") if isinstance(doc, Mapping) else doc
    if not isinstance(items, list):
        raise PatternError(f"{source}: rule -: expected a list of rules (or `rules:` list)")
    return [build_rule(raw, source, i) for i, raw in enumerate(items)]


def builtin_text() -> str:
    return resources.files("pipeline_recovery").joinpath("data", BUILTIN_NAME).read_text("utf-8")


def load_rules(extra_files: Iterable[str | Path] = (), *, builtin: bool = True) -> list[Rule]:
    """The built-in table plus each extra file; ids must be unique across all of them."""
    rules = parse_rules(builtin_text(), BUILTIN_NAME) if builtin else []
    for path in extra_files:
        name = str(path)
        try:
            text = Path(path).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = (exc.strerror if isinstance(exc, OSError) and exc.strerror
                      else type(exc).__name__)
            raise PatternError(f"{name}: rule -: cannot read file ({reason})") from None
        rules.extend(parse_rules(text, name))
    check_unique(rules)
    return rules


def check_unique(rules: Sequence[Rule]) -> None:
    seen: dict[str, str] = {}
    for rule in rules:
        if rule.id in seen:
            raise _fail(rule.source, rule.id, f"duplicate id (also in {seen[rule.id]})")
        seen[rule.id] = rule.source

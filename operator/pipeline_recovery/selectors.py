"""Kubernetes label selectors (`app=web,tier!=db,env in (ci,qa),!skip`) parsed and matched, pure."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# A label key (optional DNS prefix) and a label value, as the API server validates them.
_NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_KEY = rf"(?:[a-z0-9](?:[-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_NAME}"
_VALUE = rf"(?:{_NAME})?"
_REQUIREMENT = re.compile(
    rf"\s*(?:(?P<not>!)\s*(?P<absent>{_KEY})"
    rf"|(?P<key>{_KEY})\s*(?:(?P<op>==|=|!=)\s*(?P<value>{_VALUE})"
    rf"|\s+(?P<setop>in|notin)\s*\((?P<values>[^()]*)\))?)\s*(?:,|$)"
)


class SelectorError(ValueError):
    """The selector is not valid label-selector syntax; the message says where."""


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # exists, !exists, in, notin
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.op == "exists":
            return self.key in labels
        if self.op == "!exists":
            return self.key not in labels
        if self.op == "in":
            return labels.get(self.key) in self.values
        return labels.get(self.key) not in self.values  # notin: absent keys match too


@dataclass(frozen=True)
class Selector:
    """All requirements must hold; the empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)


def parse_selector(text: str) -> Selector:
    """Parse equality- and set-based requirements, comma-separated, as kubectl -l takes them."""
    text = text.strip()
    requirements: list[Requirement] = []
    pos = 0
    while pos < len(text):
        m = _REQUIREMENT.match(text, pos)
        if m is None or m.end() == pos:
            raise SelectorError(f"cannot parse label selector at {text[pos:pos + 30]!r}")
        pos = m.end()
        if m["absent"]:
            requirements.append(Requirement(m["absent"], "!exists"))
        elif m["op"]:
            op = "notin" if m["op"] == "!=" else "in"
            requirements.append(Requirement(m["key"], op, frozenset([m["value"]])))
        elif m["setop"]:
            values = [v.strip() for v in m["values"].split(",") if v.strip()]
            bad = [v for v in values if not re.fullmatch(_VALUE, v)]
            if not values or bad:
                raise SelectorError(f"invalid values in {m.group(0).strip()!r}")
            requirements.append(Requirement(m["key"], m["setop"], frozenset(values)))
        else:
            requirements.append(Requirement(m["key"], "exists"))
    return Selector(tuple(requirements))

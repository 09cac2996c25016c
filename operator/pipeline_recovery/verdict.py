"""Weighing signals into one Diagnosis: root cause by priority and position, honest confidence."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from pipeline_recovery.fingerprint import fingerprint, fingerprint_line
from pipeline_recovery.model import Diagnosis, Signal
from pipeline_recovery.patterns import Rule
from pipeline_recovery.taxonomy import UNKNOWN, info, is_transient

MIN_PRIORITY = 20  # below this a hit is only a hint (warning lines, generic exit codes)
BAND = 10  # signals this close to the strongest compete on position: the earliest wins
AUTO_FIXABLE = frozenset({
    "out-of-memory", "disk-full", "deadline-exceeded", "network", "rate-limited", "evicted",
    "image-pull", "unschedulable", "missing-file",
})
_TRANSIENT_PULL = re.compile(
    r"timeout|timed out|i/o|TLS|429|toomanyrequests|connection|EOF|unavailable|503|502", re.I)
# Symptoms that an earlier signal of these categories explains, even a weak one (a pip
# "WARNING: Retrying ... connection" before "No matching distribution" is a network failure).
CAUSED_BY: dict[str, tuple[str, ...]] = {
    "dependency-resolution": ("network", "rate-limited", "auth"),
    "missing-module": ("network", "rate-limited", "dependency-resolution"),
    "missing-file": ("network", "rate-limited"),
    "compile-error": ("out-of-memory", "missing-module", "dependency-resolution"),
    "test-failure": ("out-of-memory", "missing-module", "network"),
    "evicted": ("disk-full", "out-of-memory"),
    # An OOM kill can make a step overrun its deadline, never the reverse; status tables
    # (`kubectl get -w`) print them in no causal order.
    "deadline-exceeded": ("out-of-memory",),
}
# A cause printed just after its symptom, in the same error record (Maven's "Could not
# transfer artifact" then "status code: 429"; webpack's "ERROR in x" then "Module not found").
FOLLOWING_LINES = 3
CAUSE_MAY_FOLLOW = frozenset({"dependency-resolution", "missing-module", "missing-file",
                              "compile-error", "deadline-exceeded"})
# Just below a bundler's "ERROR in x" / "[vite] Build errored out." or CMake's "CMake Error
# at x:N (file):", a missing file is the detail (not below a linker's failure: a missing
# crt1.o is the toolchain's); earlier in the log it may be anything (a warning, a cleanup).
# Keyed by the symptom's rule.
FOLLOWING_CAUSES: dict[str, tuple[str, ...]] = {"compile-webpack": ("missing-file",),
                                                 "compile-cmake": ("missing-file",)}
HINT_PRIORITY = 10
# Errors tools retry past (a wait-for-the-database loop, pip's "Retrying ... Connection
# refused"): recovered when, in the same log, they stop, this many lines pass without
# another failure, and then something else fails.
RETRYABLE = frozenset({"network", "rate-limited"})
RECOVERY_LINES = 200
FAILURE_PRIORITY = 30  # what counts as "something else failed" for that test
# A Go test's own output ("    foo_test.go:42: ...") quotes errors the test saw or expected:
# when the log also reports failing tests, those quotes are not the step's cause.
_GO_TEST_OUTPUT = re.compile(r"^\s+[\w.-]+_test\.go:\d+: ")
# Other runners' renderings of what a failing test met: pytest's "E   " lines, crash
# locations ("x.py:379: FileNotFoundError") and "FAILED test - Error" summaries (not ERROR:
# a collection or setup error is the environment's). Only what a test cannot cause itself
# stays the step's cause there (no rerun fixes a test's missing fixture file or a 403).
_TEST_OUTPUT = re.compile(r"^(?:E {3,}|\S+\.py:\d+: \w+$|FAILED \S+ - )")
# What a test asserted (expect's Expected/Received, RSpec's expected "..." and Failure/Error):
# quotes, like Go's, whatever their category.
_ASSERTION = re.compile(r"^\s*(?:Expected|Received)(?: [\w ]+)?: |^\s*expected [\"'\[]"
                        r"|Failure/Error: ")
TEST_CAUSES = frozenset({"out-of-memory", "missing-module", "network", "rate-limited",
                         "disk-full"})
QUOTED_PRIORITY = 5
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

DEFAULT_SOLUTIONS: dict[str, str] = {
    "out-of-memory": "Raise the container's memory limit (or lower the build's parallelism).",
    "disk-full": "Free or enlarge the volume (ephemeral-storage limit, cache cleanup) and retry.",
    "image-pull": "Check the image name and tag, registry credentials (imagePullSecrets) "
                  "and registry reachability; retry with backoff if the registry was flaky.",
    "config-error": "Create or fix the referenced Secret/ConfigMap, env or volume, then rerun.",
    "unschedulable": "Lower the resource requests, add capacity, or fix selectors/tolerations.",
    "evicted": "Retry; set requests equal to limits and ephemeral-storage limits.",
    "deadline-exceeded": "Raise activeDeadlineSeconds / the step timeout, or speed up the step.",
    "missing-file": "Create the missing path or fix the path the step expects, then rerun.",
    "permission-denied": "Fix file ownership/mode or run the step with the needed permissions.",
    "missing-module": "Install the missing module or add it to the dependency manifest.",
    "dependency-resolution": "Fix the conflicting or missing versions in the dependency manifest "
                             "or lockfile.",
    "network": "Retry with backoff; check DNS, proxies and the remote service's availability.",
    "rate-limited": "Retry after a delay; authenticate or use a mirror/cache to raise the limit.",
    "auth": "Provide valid credentials (token, secret, SSH key) for the registry or service.",
    "compile-error": "Fix the compile error at the reported location.",
    "test-failure": "Inspect the failing tests and fix the code or the tests.",
    "lint-failure": "Run the linter/formatter locally and commit the fixes.",
    UNKNOWN: "No known pattern matched; read the log excerpt or ask the AI analysis.",
}


def fill(text: str, captures: Mapping[str, str]) -> str:
    """Substitute {capture} placeholders; a capture that did not match reads as empty."""
    filled = _PLACEHOLDER.sub(lambda m: captures.get(m.group(1), ""), text)
    # Tidy what empty captures leave: "()", "( x", "x )", doubled and stray spaces.
    return re.sub(r"\s*\(\)|\s+(?=[.,)])|(?<=\()\s+| (?= )", "", filled)


def _pick(strong: Sequence[Signal], hints: Sequence[Signal]) -> Signal:
    top = max(s.priority for s in strong)
    band = [s for s in strong if s.priority >= top - BAND]
    # The earliest strong signal names the category; the most specific hit of that
    # category (highest priority, then earliest) is the evidence.
    first = min(band, key=lambda s: (s.offset, -s.priority))
    causes = CAUSED_BY.get(first.category, ())
    following = causes + FOLLOWING_CAUSES.get(first.rule_id, ())
    explaining = [s for s in hints if (s.category in causes and s.offset < first.offset)
                  or (s.category in following and _follows(first, s))]
    if explaining:
        first = min(explaining, key=lambda s: (s.offset, -s.priority))
    same = [s for s in hints if s.category == first.category]
    return max(same, key=lambda s: (s.priority, -s.offset))


def _follows(symptom: Signal, cause: Signal) -> bool:
    if symptom.category not in CAUSE_MAY_FOLLOW:
        return False
    a, b = symptom.evidence, cause.evidence
    return (a.source == b.source == "log" and a.container == b.container
            and a.line is not None and b.line is not None
            and a.line < b.line <= a.line + FOLLOWING_LINES)


def _quoted(signal: Signal) -> bool:
    """Whether a log signal is what a failing test printed, not what failed the step."""
    if signal.category == "test-failure" or signal.evidence.source != "log":
        return False
    text = signal.evidence.text
    return bool(_GO_TEST_OUTPUT.match(text) or _ASSERTION.search(text)) or (
        signal.category not in TEST_CAUSES and _TEST_OUTPUT.search(text) is not None)


def _recovered(signals: Sequence[Signal]) -> set[int]:
    """ids of retryable log signals that a later, unrelated failure shows the step got past."""
    logs: dict[str | None, list[Signal]] = {}
    for signal in signals:
        if signal.evidence.source == "log" and signal.evidence.line is not None:
            logs.setdefault(signal.evidence.container, []).append(signal)
    recovered: set[int] = set()
    for found in logs.values():
        retried = [s.evidence.line or 0 for s in found if s.category in RETRYABLE]
        failed = [s.evidence.line or 0 for s in found
                  if s.category not in RETRYABLE and s.priority >= FAILURE_PRIORITY]
        if not retried or not failed:
            continue
        # A failure soon after any of them: that error is what the step died of.
        if any(r < f <= r + RECOVERY_LINES for r in retried for f in failed):
            continue
        if max(failed) > max(retried) + RECOVERY_LINES:
            recovered.update(id(s) for s in found if s.category in RETRYABLE)
    return recovered


def _confidence(winner: Signal, strong: Sequence[Signal], rule: Rule | None) -> float:
    if rule is not None:
        conf = rule.confidence
    else:
        conf = 0.95 if winner.priority >= 90 else 0.5 if winner.priority >= 40 else 0.35
    # Lint rules sit low on purpose (any other failure outranks a lint finding); that is
    # not weak evidence.
    if winner.priority < 40 and winner.category != "lint-failure":
        conf = min(conf, 0.5)
    # Symptoms the winner explains (a dependency failure after a network error) are no rivals.
    rivals = [s for s in strong if s.category != winner.category
              and winner.category not in CAUSED_BY.get(s.category, ())]
    close = [s for s in rivals if s.priority >= winner.priority - BAND]
    if any(s.priority > winner.priority for s in close):
        conf -= 0.25
    elif close:
        conf -= 0.15
    distant = {s.category for s in rivals if s not in close and s.priority >= 40}
    conf -= 0.05 * min(3, len(distant))
    if any(s.priority >= 90 and s.evidence.source != "log" for s in rivals):
        conf -= 0.2  # Kubernetes itself says something else happened
    sources = {s.evidence.source for s in strong if s.category == winner.category}
    if len(sources) > 1:
        conf += 0.1
    return round(min(0.99, max(0.05, conf)), 2)


def _auto_fixable(winner: Signal, rule: Rule | None) -> bool:
    if rule is not None and rule.auto_fixable is not None:
        return rule.auto_fixable
    category = winner.category
    if category == "image-pull":
        return bool(_TRANSIENT_PULL.search(winner.evidence.text))
    if category == "missing-file":
        return "path" in winner.evidence.captures
    return category in AUTO_FIXABLE


def decide(signals: Sequence[Signal], rules: Mapping[str, Rule],
           fallback_text: str = "") -> Diagnosis:
    """The Diagnosis that the signals support (unknown when none is credible)."""
    if any(s.category == "test-failure" and s.priority >= 40 for s in signals):
        signals = [Signal(s.category, s.rule_id, QUOTED_PRIORITY, s.evidence, s.offset)
                   if _quoted(s) else s for s in signals]
    ordered = tuple(sorted(signals, key=lambda s: (s.offset, -s.priority, s.rule_id)))
    recovered = _recovered(ordered)
    strong = [s for s in ordered if s.priority >= MIN_PRIORITY and id(s) not in recovered]
    if not strong:
        template = fingerprint_line(fallback_text)
        return Diagnosis(
            category=UNKNOWN, severity=info(UNKNOWN).severity.value,
            confidence=0.2 if ordered else 0.0, transient=False, auto_fixable=False,
            root_cause="No known failure pattern matched the log or the Kubernetes status.",
            solution=DEFAULT_SOLUTIONS[UNKNOWN], evidence=None,
            fingerprint=fingerprint(UNKNOWN, "", template), signals=ordered[:20],
        )
    winner = _pick(strong, [s for s in ordered
                            if s.priority >= HINT_PRIORITY and id(s) not in recovered])
    rule = rules.get(winner.rule_id)
    captures = winner.evidence.captures
    category = winner.category
    summary = info(category).summary
    if rule is not None and rule.root_cause:
        root_cause = fill(rule.root_cause, captures)
    else:
        root_cause = f"{summary[0].upper()}{summary[1:]}: {winner.evidence.text[:200]}"
    solution = fill(rule.solution, captures) if rule is not None else DEFAULT_SOLUTIONS[category]
    severity = (rule.severity if rule is not None and rule.severity else None) \
        or info(category).severity.value
    transient = rule.transient if rule is not None and rule.transient is not None \
        else is_transient(category)
    template = fingerprint_line(winner.evidence.text)
    # Keep the winner first, then the rest earliest-first, bounded for status objects.
    rest = tuple(s for s in ordered if s is not winner)[:19]
    return Diagnosis(
        category=category, severity=severity, confidence=_confidence(winner, strong, rule),
        transient=transient, auto_fixable=_auto_fixable(winner, rule), root_cause=root_cause,
        solution=solution, evidence=winner.evidence,
        fingerprint=fingerprint(category, winner.rule_id, template), signals=(winner, *rest),
    )

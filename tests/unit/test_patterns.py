"""The pattern table as data: validation, extra rule files, one-line errors naming file and rule."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline_recovery.classifier import Classifier
from pipeline_recovery.patterns import PatternError, load_rules
from pipeline_recovery.scan_engines import ENGINES, build_engine, scan_form
from pipeline_recovery.taxonomy import CATEGORIES

GOOD = """
rules:
  - id: acme-license-server
    category: network
    priority: 85
    regex: 'ACME license server (?P<host>[\\w.-]+) unreachable'
    solution: 'Check that {host} is reachable from the cluster.'
"""


def test_builtin_table_is_broad_and_valid() -> None:
    rules = load_rules()
    assert len(rules) >= 150
    covered = {rule.category for rule in rules}
    assert covered == set(CATEGORIES) - {"unknown"}
    for seed in ("ENOENT", "EOUTOFMEMORY", "ETIMEDOUT", "MODULE_NOT_FOUND"):
        assert any(rule.compiled.search(f"npm ERR! code {seed}") for rule in rules), seed
    assert len({rule.id for rule in rules}) == len(rules)


def test_every_builtin_rule_compiles_on_every_engine() -> None:
    rules = load_rules()
    for name in ENGINES:
        assert build_engine(rules, name).name == name


def test_extra_file_adds_rules(tmp_path: Path) -> None:
    extra = tmp_path / "acme.yaml"
    extra.write_text(GOOD)
    for engine in ENGINES:
        clf = Classifier.load([extra], engine=engine)
        data = b"step 3\nACME license server lic.acme.io unreachable\n"
        diag = clf.diagnose([clf.scan_bytes(data)])
        assert diag.category == "network"
        assert diag.evidence is not None and diag.evidence.pattern_id == "acme-license-server"
        assert diag.solution == "Check that lic.acme.io is reachable from the cluster."


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (GOOD.replace("network", "flaky"), "rule acme-license-server: category 'flaky'"),
        (GOOD.replace("(?P<host>[\\w.-]+) unreachable", "(unclosed"),
         "rule acme-license-server: bad regex"),
        (GOOD.replace("ACME license", "(?<=x)ACME"), "rule acme-license-server: regex uses"),
        (GOOD.replace("ACME license", "(a)\\\\1 ACME"), "rule acme-license-server: regex uses"),
        (GOOD.replace("priority: 85", "priority: high"), "rule acme-license-server: 'priority'"),
        (GOOD.replace("{host}", "{hostname}"), "rule acme-license-server: placeholder {hostname}"),
        (GOOD.replace("    solution:", "    colour: red\n    solution:"),
         "rule acme-license-server: unknown keys"),
        (GOOD.replace("acme-license-server", "Bad Id!"), "rule Bad Id!:"),
        (GOOD.replace("acme-license-server", "disk-enospc"), "rule disk-enospc: duplicate id"),
        (GOOD.replace("ACME license server (?P<host>[\\w.-]+) unreachable", "x*"),
         "matches the empty string"),
        ("rules: [unclosed", "rule -: not valid YAML"),
        ("rules: 3", "rule -: expected a list"),
    ],
)
def test_bad_extra_file_fails_with_one_line(tmp_path: Path, body: str, needle: str) -> None:
    extra = tmp_path / "bad-rules.yaml"
    extra.write_text(body)
    with pytest.raises(PatternError) as err:
        load_rules([extra])
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{extra}: ")
    assert needle in message


def test_missing_extra_file(tmp_path: Path) -> None:
    with pytest.raises(PatternError, match=r"nope\.yaml: rule -: cannot read file"):
        load_rules([tmp_path / "nope.yaml"])


def test_scan_form_is_engine_neutral() -> None:
    form = scan_form(r"(?i)ENOENT: \w+ '(?P<path>[^']+)'\s+x$")
    assert form.startswith("(?i)ENOENT:")
    assert "(?P<" not in form and "[^\\n']" in form and form.endswith("x")
    assert "$" not in form and "\\s" not in form  # \s would run over the newline
    # A trailing repeat would report one end per byte, and a class after the literal makes
    # Hyperscan key on commoner bytes: the form ends at the literal.
    assert scan_form(r"npm ERR! code (?P<code>E\d+)\b") == "npm ERR! code E"
    assert scan_form(r"RPC failed; curl \d+") == "RPC failed; curl "
    # Not when too little literal text would be left to scan for.
    assert scan_form(r"E\d{4}").startswith("E")
    # A character beyond ASCII is several bytes: out of a byte class, into an alternation;
    # a negated class lets it through.
    assert scan_form("called [\u2018']x") == "called (?:\u2018|['])x"
    assert scan_form("called [^\u2019']x") == "called [^\\n']x"
    # Of a `.*` gap's two sides the form keeps the one with more literal text.
    assert "clang" not in scan_form(r"(?:clang|ld) .*virtual memory exhausted")


def _loaded(engine: str) -> Classifier:
    try:
        return Classifier.load(engine=engine)
    except ImportError:
        pytest.skip(f"{engine} is not installed")


@pytest.mark.parametrize("engine", ENGINES)
def test_phrase_split_by_colour_codes_is_found(engine: str) -> None:
    clf = _loaded(engine)
    plain = b"build ok\nnpm ERR! code ELIFECYCLE\n"
    coloured = (b"build ok\n\x1b[1mnpm\x1b[22m \x1b[31mERR!\x1b[39m "
                b"\x1b[35mcode\x1b[39m ELIFECYCLE\n")
    for data in (plain, coloured):
        hits = [s for s in clf.scan_bytes(data).signals if s.rule_id == "generic-npm-elifecycle"]
        assert [s.evidence.text for s in hits] == ["npm ERR! code ELIFECYCLE"]
        assert hits[0].evidence.line == data.count(b"\n")


@pytest.mark.parametrize("engine", ENGINES)
def test_rule_past_its_warning_slots_still_finds_the_real_error(engine: str) -> None:
    clf = _loaded(engine)
    warning = b"12:00:01 npm WARN optional SKIPPING fsevents@2.3.2: ENOENT skipped\n"
    data = warning * 500 + b"\x1b[33mWARN\x1b[0m cache ENOENT\n" + b"Error: ENOENT boom\n"
    hits = [s for s in clf.scan_bytes(data).signals if s.rule_id == "missing-file-enoent"]
    weak_and_lines = [(s.evidence.line, s.priority < 20) for s in hits]
    assert weak_and_lines == [(1, True), (2, True), (502, False)]


# Output of builds that went fine, near misses included (a deprecation, counters named error
# and failures, a retry, a summary of passed tests).
_HEALTHY_OUTPUT = """\
[INFO] Compiling 214 source files to /build/target/classes
[INFO] Downloaded from central: https://repo.maven.apache.org/maven2/org/slf4j/slf4j-api (64 kB)
   Compiling serde_json v1.0.108
ok  	github.com/acme/api/handlers	0.412s
tests/test_orders.py::test_create_order[postgres] PASSED                 [ 42%]
  ✓ renders the header (12 ms)
#14 [builder 4/9] RUN npm ci --no-audit
Step 6/14 : COPY package.json package-lock.json ./
npm WARN deprecated inflight@1.0.6: This module is not supported, and leaks memory.
warning: unused variable: `retries`
[WARNING] The POM for com.example:legacy:jar:1.2 is missing, no dependency information available
Retrying request to https://registry.npmjs.org/react-dom (attempt 2 of 3)
============================= 512 passed, 3 skipped in 41.20s ==============================
Progress: resolved 1043, reused 1001, downloaded 42, added 1043, done
error_count=0 warning_count=3 timeout_ms=30000 failures=0
    Finished `release` profile [optimized] target(s) in 2m 03s
go: downloading golang.org/x/sys v0.15.0
> Task :app:compileDebugKotlin UP-TO-DATE
Successfully installed requests-2.31.0 urllib3-2.1.0 idna-3.6
Collecting pytest==7.4.3 (from -r requirements-dev.txt (line 4))
webpack 5.89.0 compiled successfully in 8123 ms
Fetched 23.4 MB in 3s (7,812 kB/s)
Get:12 http://deb.debian.org/debian bookworm/main amd64 libssl3 amd64 3.0.11-1 [2,016 kB]
Status: Downloaded newer image for node:20-alpine
 ✔ Container ci-postgres-1  Healthy
Test Suites: 48 passed, 48 total
BUILD SUCCESSFUL in 1m 12s
Run actions/checkout@v4
""".splitlines()


def test_no_rule_or_scan_form_matches_healthy_build_output() -> None:
    # A form cut down to a common word ("error") makes every such line a candidate to
    # confirm in Python: the scan slowed 3.5x the one time that happened.
    for rule in load_rules():
        form = re.compile(scan_form(rule.regex))
        assert not [line for line in _HEALTHY_OUTPUT if form.search(line)], rule.id
        assert not [line for line in _HEALTHY_OUTPUT if rule.compiled.search(line)], rule.id

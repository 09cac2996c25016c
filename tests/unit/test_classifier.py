"""Classifier verdicts over the per-category fixtures, on every scan engine."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from pipeline_recovery.classifier import Classifier, LogScan
from pipeline_recovery.fingerprint import fingerprint_line
from pipeline_recovery.scan_engines import ENGINES
from pipeline_recovery.taxonomy import CATEGORIES

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "logs"
LOGS = sorted(FIXTURES.glob("*/*.log"))
SEED = (
    b"npm ERR! code ENOENT\n"
    b"npm ERR! syscall mkdir\n"
    b"npm ERR! path /app/node_modules/.cache\n"
    b"npm ERR! errno -2\n"
    b"npm ERR! enoent ENOENT: no such file or directory, mkdir '/app/node_modules/.cache'\n"
)


@pytest.fixture(scope="module", params=ENGINES)
def clf(request: pytest.FixtureRequest) -> Classifier:
    return Classifier.load(engine=request.param)


def _diagnose(clf: Classifier, data: bytes) -> tuple[LogScan, str, float]:
    scan = clf.scan_bytes(data, container="build")
    diag = clf.diagnose([scan])
    return scan, diag.category, diag.confidence


def test_fixtures_cover_every_category() -> None:
    assert {p.parent.name for p in LOGS} == set(CATEGORIES)
    for category in CATEGORIES:
        if category != "unknown":
            assert len(list((FIXTURES / category).glob("*.log"))) >= 2, category


@pytest.mark.parametrize("path", LOGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_category(clf: Classifier, path: Path) -> None:
    diag = clf.diagnose([clf.scan_bytes(path.read_bytes())])
    assert diag.category == path.parent.name
    if diag.category == "unknown":
        assert diag.evidence is None and diag.confidence <= 0.2
    else:
        assert diag.evidence is not None and diag.evidence.line is not None
        assert diag.evidence.pattern_id and diag.evidence.text
        assert 0.2 <= diag.confidence <= 0.99


_CLASSIFIER: list[Classifier] = []


def _default() -> Classifier:
    if not _CLASSIFIER:
        _CLASSIFIER.append(Classifier.load())
    return _CLASSIFIER[0]


_UNTIDY = re.compile(r"  | [.,:;)]|:\.|\(\)|\( |\{\w+\}")


@pytest.mark.parametrize("path", LOGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_root_cause_and_solution_read_cleanly(path: Path) -> None:
    # Captures an alternative does not set render empty; what they leave must still read.
    clf = _default()
    diag = clf.diagnose([clf.scan_bytes(path.read_bytes())])
    assert not _UNTIDY.search(diag.root_cause), diag.root_cause
    assert not _UNTIDY.search(diag.solution), diag.solution


@pytest.mark.parametrize(("text", "captures", "expected"), [
    ("The type checker found {count}{count2} errors.", {}, "The type checker found errors."),
    ("NuGet could not restore ({code} {package}).", {"package": "x"},
     "NuGet could not restore (x)."),
    ("curl failed (curl error {code}).", {}, "curl failed (curl error)."),
    ("Missing ({path}).", {}, "Missing."),
    ("Missing ({path}).", {"path": "/a b"}, "Missing (/a b)."),
])
def test_fill_tidies_what_empty_captures_leave(text: str, captures: dict[str, str],
                                               expected: str) -> None:
    from pipeline_recovery.verdict import fill

    assert fill(text, captures) == expected


def test_seed_npm_enoent(clf: Classifier) -> None:
    diag = clf.diagnose([clf.scan_bytes(SEED)])
    assert diag.category == "missing-file"
    assert diag.evidence is not None
    assert diag.evidence.captures["path"] == "/app/node_modules/.cache"
    assert diag.evidence.line == 5
    assert "/app/node_modules/.cache" in diag.solution
    assert diag.auto_fixable and not diag.transient and diag.severity == "HIGH"


def test_any_chunking_gives_the_same_scan(clf: Classifier) -> None:
    data = (FIXTURES / "network" / "network-then-missing.log").read_bytes() * 3
    whole = clf.scan_bytes(data)
    rng = random.Random(7)
    for _ in range(5):
        stream = clf.open_stream(container="build")
        pos = 0
        while pos < len(data):
            step = rng.randint(1, 97)
            stream.feed(data[pos:pos + step])
            pos += step
        scan = stream.finish()
        assert [(s.rule_id, s.evidence.line, s.evidence.captures) for s in scan.signals] == \
            [(s.rule_id, s.evidence.line, s.evidence.captures) for s in whole.signals]
        assert scan.lines == whole.lines and scan.bytes_scanned == len(data)
        assert scan.tail == whole.tail and scan.windows == whole.windows


def test_engine_parity_on_every_fixture() -> None:
    clfs = [Classifier.load(engine=name) for name in ENGINES]
    for path in LOGS:
        data = path.read_bytes()
        verdicts = []
        for clf in clfs:
            scan = clf.scan_bytes(data)
            diag = clf.diagnose([scan])
            ev = diag.evidence
            verdicts.append((diag.category, diag.confidence, diag.fingerprint,
                             ev.pattern_id if ev else None, ev.line if ev else None,
                             sorted((s.rule_id, s.evidence.line) for s in scan.signals)))
        assert verdicts[0] == verdicts[1] == verdicts[2], path


def test_scan_keeps_windows_tail_and_counts(clf: Classifier) -> None:
    noise = b"".join(b"2024-01-01T00:00:%02dZ step %d ok\n" % (i % 60, i) for i in range(500))
    data = noise + b"Error: Cannot find module 'left-pad'\n" + noise
    scan = clf.scan_bytes(data)
    assert scan.lines == 1001 and scan.bytes_scanned == len(data)
    assert len(scan.tail) == 50 and scan.tail[-1].endswith("step 499 ok")
    start, lines = scan.windows[0]
    assert start == 498 and lines[3] == "Error: Cannot find module 'left-pad'" and len(lines) == 7
    diag = clf.diagnose([scan])
    assert diag.category == "missing-module" and diag.evidence is not None
    assert diag.evidence.line == 501 and diag.evidence.captures == {"module": "left-pad"}


def test_ansi_and_progress_bars_are_cleaned(clf: Classifier) -> None:
    data = (b"\x1b[1m\x1b[31mnpm\x1b[39m \x1b[31mERR!\x1b[39m\x1b[22m \x1b[35mcode\x1b[39m E401\n"
            b"progress 10%\rprogress 90%\rprogress done\n")
    scan = clf.scan_bytes(data)
    diag = clf.diagnose([scan])
    assert diag.category == "auth" and diag.evidence is not None
    assert diag.evidence.text == "npm ERR! code E401"
    assert scan.tail[-1] == "progress done"


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        (b"", 0),
        (b"\x00\x00\x00", 1),
        (bytes(range(256)) * 64, None),
        (b"\xff\xfe broken \xc3\x28 utf8\nNo space left on device \xff\n", 2),
        (b"x" * (1 << 20), 1),
    ],
    ids=["empty", "nul", "binary", "invalid-utf8", "1mb-line"],
)
def test_bad_inputs_do_not_break_the_scan(clf: Classifier, data: bytes, lines: int | None) -> None:
    scan = clf.scan_bytes(data)
    diag = clf.diagnose([scan])
    assert scan.bytes_scanned == len(data)
    if lines is not None:
        assert scan.lines == lines
    assert all(len(line) <= 1000 for line in scan.tail)
    if b"No space" in data:
        assert diag.category == "disk-full"
    elif not data.strip(b"\x00"):
        assert diag.category == "unknown"


def test_long_line_with_error_at_its_head(clf: Classifier) -> None:
    data = b"fatal: ENOSPC: no space left on device, write " + b"y" * (2 << 20) + b"\ndone\n"
    stream = clf.open_stream()
    for start in range(0, len(data), 4096):
        stream.feed(data[start:start + 4096])
    scan = stream.finish()
    assert scan.lines == 2
    assert clf.diagnose([scan]).category == "disk-full"
    assert len(scan.signals[0].evidence.text) <= 1000


def test_earliest_cause_wins_and_warnings_are_weak(clf: Classifier) -> None:
    diag = clf.diagnose([clf.scan_bytes((FIXTURES / "rate-limited" / "npm-warn-then-429.log")
                                        .read_bytes())])
    assert diag.category == "rate-limited"
    oom = clf.diagnose([clf.scan_bytes((FIXTURES / "out-of-memory" / "killed-then-tests.log")
                                       .read_bytes())])
    assert oom.category == "out-of-memory"
    net = clf.diagnose([clf.scan_bytes((FIXTURES / "network" / "network-then-missing.log")
                                       .read_bytes())])
    assert net.category == "network" and net.transient


def test_conflicting_signals_lower_confidence(clf: Classifier) -> None:
    clean = clf.diagnose([clf.scan_bytes(b"npm ERR! code E429\n")])
    mixed = clf.diagnose([clf.scan_bytes(
        b"npm ERR! code E429\nerror: could not compile `api`\nError: EACCES: permission denied\n")])
    assert clean.category == mixed.category == "rate-limited"
    assert mixed.confidence < clean.confidence


def test_weak_rule_alone_is_not_credible(clf: Classifier) -> None:
    diag = clf.diagnose([clf.scan_bytes(b"npm ERR! code ELIFECYCLE\n")])
    assert diag.category == "unknown" and diag.confidence <= 0.2


def test_fingerprint_is_stable_across_runs(clf: Classifier) -> None:
    one = (b"2024-03-11T09:14:02.118Z npm ERR! enoent ENOENT: no such file or directory, "
           b"mkdir '/builds/run-8812/node_modules/.cache'\n")
    two = (b"2025-01-02T23:59:59.999Z npm ERR! enoent ENOENT: no such file or directory, "
           b"mkdir '/builds/run-17/node_modules/.cache'\n")
    fp = [clf.diagnose([clf.scan_bytes(b"noise line 1\n" * n + data)]).fingerprint
          for n, data in ((3, one), (40, two))]
    assert fp[0] == fp[1]
    other = clf.diagnose([clf.scan_bytes(b"No space left on device\n")]).fingerprint
    assert other != fp[0]


def test_fingerprint_line_masks_variable_parts() -> None:
    a = fingerprint_line("12:01:02 pulled sha256:" + "ab" * 32 + " from 10.1.2.3:5000 in 4.2s "
                         "id 3f9e2c1a-1111-2222-3333-444455556666 at /tmp/x/y.txt 0xdeadbeef")
    assert a == "<ts> pulled <digest> from <ip> in <dur> id <uuid> at <path> <hex>"
    assert fingerprint_line("Tests: 3 failed, 140 passed") == \
        fingerprint_line("Tests: 12 failed, 9 passed")


def _filler(count: int, start: int = 0) -> bytes:
    return b"".join(b"[INFO] Compiling module %d of 900\n" % i for i in range(start, start + count))


@pytest.mark.parametrize(("log", "category"), [
    # pip retried past a refused connection; 300 lines of build later tsc fails.
    (b"WARNING: Retrying (Retry(total=4)) after connection broken by 'NewConnectionError("
     b"\"Failed to establish a new connection: [Errno 111] Connection refused\")'\n"
     + _filler(300) + b"src/app.ts(3,7): error TS2322: Type 'string' is not assignable.\n",
     "compile-error"),
    # The same error right before the failure it causes stays the cause.
    (_filler(300) + b"curl: (7) Failed to connect to cdn.example.com port 443: Connection refused\n"
     + _filler(5, 300) + b"src/app.ts(3,7): error TS2322: Type 'string' is not assignable.\n",
     "network"),
    # Errors that keep coming between failures are not recovered from.
    (b"".join(b"E   ConnectionRefusedError: [Errno 111] Connection refused\n"
              + _filler(150, i * 150)
              + b"FAILED tests/test_api.py::test_%d - ConnectionError\n" % i for i in range(4)),
     "network"),
    # Nothing else failed: the network error is the failure.
    (b"npm ERR! code ETIMEDOUT\n" + _filler(400), "network"),
])
def test_errors_a_step_retried_past_are_not_the_cause(clf: Classifier, log: bytes,
                                                       category: str) -> None:
    _, found, confidence = _diagnose(clf, log)
    assert found == category and confidence >= 0.5


@pytest.mark.parametrize(("line", "category"), [
    (b'ERROR: failed to solve: process "/bin/sh -c npm run build" did not complete '
     b"successfully: exit code: 1\n", "compile-error"),
    (b"The command '/bin/sh -c make -j4' returned a non-zero code: 2\n", "compile-error"),
    # apt or a script failing says only that the step failed: unknown (the AI looks next).
    (b'ERROR: failed to solve: process "/bin/sh -c apt-get update" did not complete '
     b"successfully: exit code: 100\n", "unknown"),
])
def test_a_dockerfile_step_alone_names_a_build_only_for_build_tools(
        clf: Classifier, line: bytes, category: str) -> None:
    assert _diagnose(clf, b"#8 [4/6] RUN something\n" + line)[1] == category


@pytest.mark.parametrize("path", LOGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_runner_timestamp_before_every_line_changes_no_verdict(clf: Classifier,
                                                                 path: Path) -> None:
    # GitHub Actions' raw logs and `kubectl logs --timestamps` put one before each line.
    lines = path.read_bytes().split(b"\n")
    stamped = b"\n".join(b"2024-03-11T09:%02d:%02d.1234567Z " % divmod(i % 3600, 60) + line
                         for i, line in enumerate(lines))
    plain = clf.diagnose([clf.scan_bytes(path.read_bytes())])
    diag = clf.diagnose([clf.scan_bytes(stamped)])
    assert diag.category == plain.category == path.parent.name
    if plain.evidence is not None:
        assert diag.evidence is not None and diag.evidence.text == plain.evidence.text


@pytest.mark.parametrize("prefix", [
    "2026-07-30T20:36:12.0134960Z ",  # GitHub Actions
    "2026-07-30T20:36:12.013496012Z ",  # kubectl logs --timestamps
    "2026-07-30T20:36:12.013496Z 00O ",  # GitLab's raw trace, stream mark
    "2026-07-30T20:36:12.013496Z 01E+",  # GitLab, continued line
    "[2026-07-30T20:36:12.013Z] ",  # Jenkins timestamper
    "2026-07-30 20:36:12,013+02:00 ",
    "22:52:57 ",  # Jenkins timestamper, time only
    "[00:06:41.396]  ",
])
def test_clean_line_drops_the_runner_timestamp(prefix: str) -> None:
    from pipeline_recovery.cleaning import clean_line

    assert clean_line(prefix + "--- FAIL: TestGlob (0.00s)") == "--- FAIL: TestGlob (0.00s)"
    assert clean_line("2026 was a year") == "2026 was a year"


_PYTEST_TAIL = b"=================== 1 failed, 41 passed in 3.10s ===================\n"


@pytest.mark.parametrize(("log", "category"), [
    # What a failing test met and the test could have caused itself: the tests failed.
    (b"E       FileNotFoundError: [Errno 2] No such file or directory: 'fixtures/a.json'\n"
     b"tests/test_a.py:12: FileNotFoundError\n"
     b"FAILED tests/test_a.py::test_load - FileNotFoundError: [Errno 2] No such file\n"
     + _PYTEST_TAIL, "test-failure"),
    (b"  FAIL  src/api.test.ts\n  \xe2\x97\x8f api \xe2\x80\xba rejects anonymous calls\n"
     b'    Expected substring: "403 Forbidden"\n    Received string:    "200 OK"\n'
     b"Tests:       1 failed, 12 passed, 13 total\n", "test-failure"),
    # What no test causes itself stays the cause: the host was unreachable, the disk full.
    (b"E   requests.exceptions.ConnectionError: HTTPSConnectionPool(host='pypi.org', port=443):"
     b" Max retries exceeded (Caused by NewConnectionError: [Errno 111] Connection refused)\n"
     + _PYTEST_TAIL, "network"),
    (b"E   OSError: [Errno 28] No space left on device\n" + _PYTEST_TAIL, "disk-full"),
    # A collection error is not a failing test: its own cause stands.
    (b"E   PermissionError: [Errno 13] Permission denied: '/root/.cache'\n"
     b"ERROR tests/test_a.py::test_load - PermissionError\n", "permission-denied"),
])
def test_what_failing_tests_printed_is_not_the_cause_unless_no_test_could_cause_it(
        clf: Classifier, log: bytes, category: str) -> None:
    assert _diagnose(clf, log)[1] == category


@pytest.mark.parametrize(("gap", "category"), [(1, "rate-limited"), (3, "rate-limited"),
                                                (4, "dependency-resolution")])
def test_a_cause_printed_just_after_its_symptom_explains_it(clf: Classifier, gap: int,
                                                            category: str) -> None:
    log = (b"[ERROR] Failed to execute goal on project app: Could not transfer artifact "
           b"org.acme:lib:jar:1.0 from/to central\n"
           + b"[ERROR]   at org.acme.Resolver.fetch(Resolver.java:42)\n" * (gap - 1)
           + b"[ERROR]   (https://repo.maven.apache.org/maven2): status code: 429\n")
    assert _diagnose(clf, log)[1] == category

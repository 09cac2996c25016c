"""status.remediation bookkeeping: attempts made, history entries, when the last failure was."""

from __future__ import annotations

from pipeline_recovery.remediation import records


def test_attempts_done_takes_the_highest_count() -> None:
    assert records.attempts_done({}, 0) == 0
    assert records.attempts_done({}, 2) == 2  # the target's lineage labels
    rem = {"attempts": 1, "result": "Failed", "history": [{"attempt": 1}, {"attempt": 3}]}
    assert records.attempts_done({"remediation": rem}, 0) == 3
    # A plan that never ran does not count as an attempt.
    waiting = {"attempts": 2, "result": "AwaitingApproval"}
    assert records.attempts_done({"remediation": waiting}, 0) == 0


def test_history_entries_replace_by_job_name_and_stay_bounded() -> None:
    hist = records.with_entry([], {"jobName": "a", "result": "Starting"})
    hist = records.with_entry(hist, {"jobName": "a", "result": "Running"})
    assert hist == [{"jobName": "a", "result": "Running"}]
    for i in range(80):
        hist = records.with_entry(hist, {"jobName": f"j{i}"})
    assert len(hist) == records.MAX_HISTORY and hist[-1] == {"jobName": "j79"}
    assert records.entry_for(hist, "j79") == {"jobName": "j79"}
    assert records.entry_for(hist, "missing") == {"jobName": "missing"}


def test_last_failure_time() -> None:
    status = {"detectedAt": "2024-05-01T10:00:00Z"}
    assert records.last_finished_at(status, 0.0) == records.epoch("2024-05-01T10:00:00Z", 0.0)
    status["remediation"] = {
        "history": [{"finishedAt": "2024-05-01T10:05:00Z"}, {"finishedAt": "2024-05-01T10:02:00Z"}]
    }
    assert records.last_finished_at(status, 0.0) - records.epoch("2024-05-01T10:00:00Z", 0.0) == 300
    assert records.last_finished_at({}, 42.0) == 42.0
    assert records.iso(records.epoch("2024-05-01T10:00:00Z", 0.0)) == "2024-05-01T10:00:00Z"

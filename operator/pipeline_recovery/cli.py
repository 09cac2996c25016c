"""The `pipeline-recovery` command line: classify, run and demo, each in its own module."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from pipeline_recovery import __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipeline-recovery",
        description="Diagnose failed CI/CD pipeline runs on Kubernetes and recover them safely.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    classify = sub.add_parser(
        "classify",
        help="diagnose one log file offline",
        description="Classify the root cause of a failed pipeline step from its log "
        "(and optionally the failed Pod's or Job's JSON).",
    )
    classify.add_argument("log", help="log file to read, or - for standard input")
    classify.add_argument(
        "--status",
        metavar="STATUS_FILE",
        help="the failed Pod or Job as `kubectl get -o json` (or -o yaml) prints it",
    )
    classify.add_argument("--json", action="store_true", help="print one JSON object")
    classify.add_argument(
        "--ai", action="store_true", help="also consult the configured LLM, as the operator would"
    )

    run = sub.add_parser(
        "run",
        help="run the operator against a cluster",
        description="Run the operator (kopf) with the project's settings; the cluster is reached "
        "via the in-cluster service account or KUBECONFIG / ~/.kube/config.",
    )
    scope = run.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        metavar="NS",
        help="watch this namespace (repeatable)",
    )
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="watch every namespace")
    run.add_argument("--standalone", action="store_true", help="no peering (single replica only)")
    run.add_argument("--verbose", action="store_true", help="debug logging")
    run.add_argument(
        "--liveness",
        metavar="URL",
        default=None,
        help="kopf liveness endpoint, e.g. http://0.0.0.0:8081/healthz",
    )

    demo = sub.add_parser(
        "demo",
        help="the whole flow on an embedded emulated cluster",
        description="Start an in-process Kubernetes emulator, run the operator against it, create "
        "failing Jobs and Pods, and print their diagnoses and recoveries.",
    )
    demo.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for the diagnoses"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "classify":
        from pipeline_recovery.classify_command import run_classify

        try:
            code = run_classify(args)
            sys.stdout.flush()  # a closed pipe shows here, not at exit
            return code
        except BrokenPipeError:  # `classify LOG | head`: the reader left, which is fine
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    if args.command == "run":
        from pipeline_recovery.runner import run_operator

        return run_operator(args)
    from pipeline_recovery.demo import run_demo

    return run_demo(args)


if __name__ == "__main__":
    sys.exit(main())

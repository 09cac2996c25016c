"""`pipeline-recovery demo` without its optional emulator says what to install, in one line."""

from __future__ import annotations

import subprocess
import sys

# sys.modules[name] = None makes `import name` raise ImportError, as on an install without it.
_WITHOUT_KMOCK = (
    "import sys; sys.modules['kmock'] = None; "
    "from pipeline_recovery.cli import main; raise SystemExit(main(['demo']))"
)


def test_demo_without_kmock_exits_2_with_one_line() -> None:
    done = subprocess.run([sys.executable, "-c", _WITHOUT_KMOCK], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "pipeline-recovery demo: the demo needs KMock's emulator: "
        "pip install 'pipeline-recovery[demo]'"
    ]
    assert done.stdout == ""

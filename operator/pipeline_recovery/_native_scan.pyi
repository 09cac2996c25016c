"""Types of the optional C extension (`_native_scan.c`)."""

from collections.abc import Sequence

class Scanner:
    def __init__(self, expressions: Sequence[bytes], warning: bytes) -> None: ...
    def scan(self, block: bytes | bytearray, start: int, skip_warnings: bytes | bytearray,
             limit: int) -> tuple[list[tuple[int, int]], int]: ...

def count_lines(block: bytes | bytearray, start: int, end: int) -> int: ...
def strip_into(out: bytearray, head: bytes, body: bytes, start: int, end: int) -> int:
    """Newlines copied."""

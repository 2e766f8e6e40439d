"""Claims: one holder per file across threads and processes; released when a process dies."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from medcat_data.loaders.locks import ClaimTable


def test_a_claim_excludes_other_claims_in_the_same_process(tmp_path: Path) -> None:
    first, second = ClaimTable(tmp_path), ClaimTable(tmp_path)
    assert first.try_claim("a/b.dcm")
    assert not second.try_claim("a/b.dcm")
    assert second.try_claim("a/c.dcm")
    first.release("a/b.dcm")
    assert second.try_claim("a/b.dcm")
    first.close()
    second.close()


_HOLDER = """
import sys, time
from pathlib import Path
from medcat_data.loaders.locks import ClaimTable
t = ClaimTable(Path(sys.argv[1]))
assert t.try_claim("big.bin")
print("held", flush=True)
time.sleep(60)
"""


def test_a_claim_held_by_another_process_is_released_when_it_dies(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        table = ClaimTable(tmp_path)
        assert not table.try_claim("big.bin")
        assert table.try_claim("other.bin")
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 5
    while not table.try_claim("big.bin"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    table.close()

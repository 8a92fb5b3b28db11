"""A short bounded run of the parse fuzzer (tests/fuzz_parse.py): no input may crash parsing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")


def test_parsing_survives_a_bounded_fuzz_run(tmp_path):
    harness = Path(__file__).with_name("fuzz_parse.py")
    # libFuzzer's RSS check reads the peak resident size, which Linux carries across exec from
    # the forking parent (this test process, large by now): it would blame the harness for the
    # parent's memory. The bound on any single allocation stays.
    limits = ["-rss_limit_mb=0", "-malloc_limit_mb=2048"]
    proc = subprocess.run(
        [sys.executable, str(harness), "-runs=20000", "-seed=1", *limits, f"-artifact_prefix={tmp_path}/"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done 20000 runs" in proc.stderr
    assert not list(tmp_path.glob("crash-*"))


def test_every_input_the_fuzzer_crashed_on_is_now_refused_with_a_reason():
    """Inputs the fuzzer found (tests/data/fuzz): EPUBs whose zip directory names a zip version
    Python cannot read raised NotImplementedError, not a refusal."""
    import sys

    from articleqa.errors import UnusableFile
    from articleqa.ingest.files import parse
    from conftest import DATA

    sys.path.insert(0, str(Path(__file__).parent))
    try:
        import fuzz_inputs as harness
    finally:
        sys.path.remove(str(Path(__file__).parent))
    found = sorted((DATA / "fuzz").iterdir())
    assert found
    for path in found:
        data = path.read_bytes()
        name, make = harness.MODES[data[0] % len(harness.MODES)]
        with pytest.raises(UnusableFile, match=r"damaged EPUB e-book \(not a readable zip archive: zip file version"):
            parse(make(data[1:]), name=name, article_id="fuzz", source="fuzz")

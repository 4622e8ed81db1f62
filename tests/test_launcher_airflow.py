"""The launcher's Airflow components, started for real (on the test metadata database)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from include.runtime.airflow_runtime import COMPONENTS, component_argv
from include.runtime.supervisor import ProcessComponent

pytestmark = pytest.mark.airflow


def test_make_run_starts_a_triggerer(airflow_db, tmp_path: Path) -> None:
    """Deferrable operators and asset watchers need a triggerer; `make run` starts one and it runs."""
    assert "triggerer" in COMPONENTS
    procs = ProcessComponent(
        "airflow triggerer", component_argv("triggerer"), env=dict(os.environ), log_file=tmp_path / "triggerer.log"
    )
    procs.launch()
    airflow = str(Path(sys.executable).with_name("airflow"))
    try:
        deadline = time.monotonic() + 120
        while True:
            assert procs.alive(), (tmp_path / "triggerer.log").read_text()[-3000:]
            check = subprocess.run(
                [airflow, "jobs", "check", "--job-type", "TriggererJob", "--local"],
                capture_output=True,
                text=True,
                timeout=120,
            )
            if check.returncode == 0:
                break
            assert time.monotonic() < deadline, check.stderr[-2000:] + check.stdout[-2000:]
            time.sleep(2)
        assert "Found one alive job" in check.stdout
    finally:
        procs.stop()

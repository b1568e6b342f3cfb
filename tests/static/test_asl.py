"""Every infra/*.asl.json passes asl-validator (when node and the validator are installed)."""
import shutil
import subprocess
from pathlib import Path

import pytest

from infra import statemachines

ROOT = Path(__file__).resolve().parents[2]
LOCAL_VALIDATOR = ROOT / ".tools" / "node_modules" / ".bin" / "asl-validator"  # installed by .ci/run
MACHINES = statemachines.discover()


def _validator() -> str | None:
    if LOCAL_VALIDATOR.exists():
        return str(LOCAL_VALIDATOR)
    return shutil.which("asl-validator")


@pytest.mark.parametrize("sm", MACHINES, ids=[m.name for m in MACHINES])
def test_the_definition_is_valid_asl(sm):
    validator = _validator()
    if validator is None:
        pytest.skip("asl-validator not installed (bash .ci/run installs it into .tools/)")
    out = subprocess.run([validator, "--json-path", str(sm.path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr

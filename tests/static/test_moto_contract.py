"""The sandbox's in-process Lambda dispatch replaces a private moto method: guard it loudly."""
import re
from importlib import metadata
from pathlib import Path

from sandbox import aws_local

ROOT = Path(__file__).resolve().parents[2]


def test_moto_is_pinned_exactly_to_the_installed_version():
    pins = re.findall(r"^moto\[[^\]]*\]==([\w.]+)\s*$", (ROOT / "requirements-dev.txt").read_text(), re.M)
    assert pins == [metadata.version("moto")]


def test_motos_private_invoke_hook_still_has_the_shape_the_dispatcher_replaces():
    # Raises with a message naming sandbox/aws_local.py when moto changes.
    aws_local.check_moto_contract()


def test_the_chalice_test_client_hook_the_fixtures_adjust_still_exists():
    from chalice.test import BaseClient

    assert callable(getattr(BaseClient, "_patched_env_vars", None))

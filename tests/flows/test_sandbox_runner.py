"""`make run` in a test: the whole embedded world starts on free ports and stops cleanly."""
import os

import pytest
import requests

from sandbox.run import Sandbox
from sandbox.token import mint


@pytest.fixture(scope="module")
def runner():
    before = dict(os.environ)
    with Sandbox(ports=0) as sandbox:
        yield sandbox
    assert dict(os.environ) == before  # the sandbox restored the environment


def test_it_uses_free_ports_not_the_developers_8000_to_8002(runner):
    ports = {int(url.rsplit(":", 1)[1]) for url in (runner.api_url, runner.sandbox_url, runner.moto_url)}
    assert len(ports) == 3 and not ports & {8000, 8001, 8002}


def test_the_api_and_the_provider_sandbox_answer(runner):
    assert requests.get(runner.api_url + "/v1/health", timeout=10).json() == {"status": "ok"}
    health = requests.get(runner.sandbox_url + "/sandbox/health", timeout=10).json()
    assert health["status"] == "ok" and health["missing"] == []
    assert "sandbox.simulators.stripe" in health["simulators"]


def test_the_app_sees_the_local_stage_with_the_real_urls(runner):
    assert runner.env["MIZANI_STAGE"] == "local"
    assert runner.env["AWS_ENDPOINT_URL"] == runner.moto_url
    assert runner.env["MIZANI_STRIPE_API_BASE"] == runner.sandbox_url
    assert runner.env["MIZANI_SANDBOX_BASE_URL"] == runner.sandbox_url
    assert runner.env["MIZANI_STATE_MACHINE_ARN"] == runner.state_machine_arn
    assert os.environ["MOTO_PORT"] == runner.moto_url.rsplit(":", 1)[1]


def test_the_escrow_state_machine_and_the_workflow_lambdas_exist_in_moto(runner):
    described = runner.client("stepfunctions").describe_state_machine(stateMachineArn=runner.state_machine_arn)
    assert described["name"] == f"{runner.table_prefix}-escrow"
    names = {f["FunctionName"] for f in runner.client("lambda").list_functions()["Functions"]}
    assert f"{runner.table_prefix}-release_escrow" in names


def test_the_platform_accounts_are_bootstrapped(runner):
    reply = requests.get(
        runner.api_url + "/v1/ledger/accounts/fx:USD",
        headers={"Authorization": f"Bearer {mint('finance', 'fin-1')}"},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["currency"] == "USD"


def test_a_start_prints_no_stray_line_and_moto_keeps_its_known_warnings(capsys, caplog):
    """make demo / make run: no "Serving on" printed from the server's thread into the banner, and none of
    moto's two known warnings (a Distributed Map's ToleratedFailureCount, a Lambda task that raised)."""
    import logging

    caplog.set_level(logging.WARNING)
    with Sandbox(ports=0) as sandbox:
        assert requests.get(sandbox.api_url + "/v1/health", timeout=10).status_code == 200
    printed = capsys.readouterr()
    assert "Serving on" not in printed.out + printed.err
    noise = [r.getMessage() for r in caplog.records if r.name.startswith("moto.")]
    assert not [m for m in noise if "ToleratedFailureCount" in m or "State Task encountered" in m]


def test_the_banner_of_make_run_says_its_state_is_in_memory_only():
    from sandbox.run import IN_MEMORY_NOTICE

    assert "in memory only" in IN_MEMORY_NOTICE and "forgets" in IN_MEMORY_NOTICE

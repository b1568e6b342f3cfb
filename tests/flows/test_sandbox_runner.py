"""`make run` in a test: the whole embedded world starts on free ports and stops cleanly."""
import os

import pytest
import requests

from sandbox.run import Sandbox
from sandbox.token import mint


@pytest.fixture(scope="module")
def world():
    before = dict(os.environ)
    with Sandbox(ports=0) as sandbox:
        yield sandbox
    assert dict(os.environ) == before  # the sandbox restored the environment


def test_it_uses_free_ports_not_the_developers_8000_to_8002(world):
    ports = {int(url.rsplit(":", 1)[1]) for url in (world.api_url, world.sandbox_url, world.moto_url)}
    assert len(ports) == 3 and not ports & {8000, 8001, 8002}


def test_the_api_and_the_provider_sandbox_answer(world):
    assert requests.get(world.api_url + "/v1/health", timeout=10).json() == {"status": "ok"}
    health = requests.get(world.sandbox_url + "/sandbox/health", timeout=10).json()
    assert health["status"] == "ok" and health["missing"] == []
    assert "sandbox.simulators.stripe" in health["simulators"]


def test_the_app_sees_the_local_stage_with_the_real_urls(world):
    assert world.env["MIZANI_STAGE"] == "local"
    assert world.env["AWS_ENDPOINT_URL"] == world.moto_url
    assert world.env["MIZANI_STRIPE_API_BASE"] == world.sandbox_url
    assert world.env["MIZANI_SANDBOX_BASE_URL"] == world.sandbox_url
    assert world.env["MIZANI_STATE_MACHINE_ARN"] == world.state_machine_arn
    assert os.environ["MOTO_PORT"] == world.moto_url.rsplit(":", 1)[1]


def test_the_escrow_state_machine_and_the_workflow_lambdas_exist_in_moto(world):
    described = world.client("stepfunctions").describe_state_machine(stateMachineArn=world.state_machine_arn)
    assert described["name"] == f"{world.table_prefix}-escrow"
    names = {f["FunctionName"] for f in world.client("lambda").list_functions()["Functions"]}
    assert f"{world.table_prefix}-release_escrow" in names


def test_the_platform_accounts_are_bootstrapped(world):
    reply = requests.get(
        world.api_url + "/v1/ledger/accounts/fx:USD",
        headers={"Authorization": f"Bearer {mint('finance', 'fin-1')}"},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["currency"] == "USD"

"""`make token ROLE=buyer SUB=buyer-1`: a local-stage JWT the API accepts."""
import jwt
import pytest

from sandbox.token import main, mint


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # the documented local secret
def test_the_token_carries_sub_role_and_a_twelve_hour_expiry():
    claims = jwt.decode(mint("seller", "coop-1", now=1_000), "local-dev-secret", algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {"sub": "coop-1", "role": "seller", "iat": 1_000, "exp": 1_000 + 12 * 3600}


def test_the_secret_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("MIZANI_JWT_SECRET", "another-secret-of-enough-length-32b")
    token = mint("finance", "fin-1")
    assert jwt.decode(token, "another-secret-of-enough-length-32b", algorithms=["HS256"])["role"] == "finance"


def test_an_unknown_role_is_refused():
    with pytest.raises(ValueError):
        mint("pirate", "x")


def test_the_command_prints_only_the_token(capsys):
    assert main(["buyer", "buyer-1"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.count(".") == 2 and "\n" not in out
    assert main(["buyer"]) == 2

"""JWT handling: pinned algorithm, distinct token kinds, issuer/audience/expiry checks."""

from __future__ import annotations

import base64
import json
import time
from uuid import uuid4

import jwt
import pytest

from application.auth import Unauthenticated
from infrastructure.jwt_tokens import JwtTokens

SECRET = "s" * 48


def tokens(**overrides: object) -> JwtTokens:
    args: dict[str, object] = {"secret": SECRET, "issuer": "apranova", "audience": "api",
                               "access_ttl": 900, "refresh_ttl": 7 * 86400}
    args.update(overrides)
    return JwtTokens(**args)  # type: ignore[arg-type]


def code_of(call: object) -> str:
    with pytest.raises(Unauthenticated) as error:
        call()  # type: ignore[operator]
    return error.value.code


def test_round_trip_and_lifetimes() -> None:
    t = tokens()
    account, session = uuid4(), uuid4()
    pair = t.issue(account, "student", session, "jti-1")
    access = t.decode_access(pair.access)
    assert (access.account_id, access.role, access.session_id) == (account, "student", session)
    refresh = t.decode_refresh(pair.refresh)
    assert (refresh.account_id, refresh.session_id, refresh.jti) == (account, session, "jti-1")
    claims = jwt.decode(pair.access, SECRET, algorithms=["HS256"], audience="api")
    assert claims["exp"] - claims["iat"] == 900
    claims = jwt.decode(pair.refresh, SECRET, algorithms=["HS256"], audience="api")
    assert claims["exp"] - claims["iat"] == 7 * 86400


def test_kinds_are_not_interchangeable() -> None:
    t = tokens()
    pair = t.issue(uuid4(), "student", uuid4(), "j")
    assert code_of(lambda: t.decode_access(pair.refresh)) == "TOKEN_INVALID"
    assert code_of(lambda: t.decode_refresh(pair.access)) == "TOKEN_INVALID"


def test_alg_none_is_refused() -> None:
    t = tokens()
    pair = t.issue(uuid4(), "admin", uuid4(), "j")
    payload = jwt.decode(pair.access, options={"verify_signature": False})

    def b64(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    forged = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(payload)}."
    assert code_of(lambda: t.decode_access(forged)) == "TOKEN_INVALID"


@pytest.mark.filterwarnings("ignore:The HMAC key is")
def test_other_algorithm_wrong_key_issuer_or_audience_are_refused() -> None:
    t = tokens()
    now = int(time.time())
    good = {"sub": str(uuid4()), "sid": str(uuid4()), "iss": "apranova", "aud": "api",
            "iat": now, "exp": now + 60, "typ": "access", "role": "admin", "jti": "x"}
    cases = [
        jwt.encode(good, SECRET, algorithm="HS512"),
        jwt.encode(good, "another-secret-" + "y" * 40, algorithm="HS256"),
        jwt.encode({**good, "iss": "someone-else"}, SECRET, algorithm="HS256"),
        jwt.encode({**good, "aud": "other-api"}, SECRET, algorithm="HS256"),
        jwt.encode({k: v for k, v in good.items() if k != "sid"}, SECRET, algorithm="HS256"),
        "not.a.jwt",
    ]
    for token in cases:
        assert code_of(lambda token=token: t.decode_access(token)) == "TOKEN_INVALID"


def test_expired_tokens_are_refused_with_their_own_code() -> None:
    t = tokens(access_ttl=-10)
    pair = t.issue(uuid4(), "student", uuid4(), "j")
    assert code_of(lambda: t.decode_access(pair.access)) == "TOKEN_EXPIRED"


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError):
        tokens(secret="short")

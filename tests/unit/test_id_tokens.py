"""An OpenID Connect ID token is trusted only when the issuer's key signed it and its
claims hold: issuer, audience, expiry, issue time, subject and the flow's nonce."""

from __future__ import annotations

import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from application.ports import IdentityRefused
from infrastructure.oauth import OpenIDConnect, verified_email

ISSUER, CLIENT = "https://op.example", "client-1"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
STRANGER = RSAKey.generate_key(2048, parameters={"kid": "k1"})  # same kid, other key


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> OpenIDConnect:
    op = OpenIDConnect("google", ISSUER, CLIENT, "secret")
    keys = KeySet([KEY])
    monkeypatch.setattr(op, "_key_set", lambda refresh: keys)
    return op


def token(key: RSAKey = KEY, alg: str = "RS256", **changes: Any) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": CLIENT, "sub": "s-1", "iat": now, "exp": now + 300,
              "nonce": "n-1", "email": "a@example.com", "email_verified": True, **changes}
    return jwt.encode({"alg": alg, "kid": "k1"}, {k: v for k, v in claims.items()
                                                  if v is not None}, key)


def test_a_good_token_gives_its_claims(provider: OpenIDConnect) -> None:
    claims = provider.validate(token(), "n-1")
    assert (claims["sub"], claims["email"]) == ("s-1", "a@example.com")


def test_a_token_for_several_audiences_needs_us_as_its_authorised_party(
        provider: OpenIDConnect) -> None:
    assert provider.validate(token(aud=[CLIENT, "x"], azp=CLIENT), "n-1")["sub"] == "s-1"
    with pytest.raises(IdentityRefused):
        provider.validate(token(aud=[CLIENT, "x"], azp="x"), "n-1")


@pytest.mark.parametrize("changes", [
    {"aud": "another-client"}, {"iss": "https://evil.example"},
    {"exp": int(time.time()) - 3600}, {"nonce": "n-2"}, {"nonce": None}, {"sub": None},
    {"exp": None}, {"iat": None}, {"sub": 12}, {"sub": "x" * 300}, {"sub": "a\x00b"}],
    ids=["audience", "issuer", "expired", "nonce", "no-nonce", "no-subject", "no-exp",
         "no-iat", "subject-type", "subject-long", "subject-nul"])
def test_claims_that_do_not_hold_are_refused(provider: OpenIDConnect,
                                             changes: dict[str, Any]) -> None:
    with pytest.raises(IdentityRefused):
        provider.validate(token(**changes), "n-1")


def test_a_token_signed_by_an_unknown_key_is_refused(provider: OpenIDConnect) -> None:
    with pytest.raises(IdentityRefused):
        provider.validate(token(STRANGER), "n-1")


@pytest.mark.parametrize("forged", ["not.a.jwt", "", "a.b", "\x00", "e30.e30."])
def test_what_is_not_a_signed_token_is_refused(provider: OpenIDConnect, forged: str) -> None:
    with pytest.raises(IdentityRefused):
        provider.validate(forged, "n-1")


def test_an_unsigned_token_is_refused(provider: OpenIDConnect) -> None:
    payload = token().split(".")[1]
    with pytest.raises(IdentityRefused):
        provider.validate(f"eyJhbGciOiJub25lIn0.{payload}.", "n-1")


def test_a_flow_without_a_nonce_is_refused(provider: OpenIDConnect) -> None:
    with pytest.raises(IdentityRefused):
        provider.validate(token(), None)


@pytest.mark.parametrize(("value", "verified", "expected"), [
    ("a@example.com", True, "a@example.com"), ("a@example.com", False, None),
    ("a@example.com", "true", None), ("no-at", True, None), ("a@b@c", True, None),
    ("a\x00@example.com", True, None), ("a b@example.com", True, None),
    ("x" * 250 + "@e.com", True, None), (None, True, None), (7, True, None)])
def test_only_a_verified_plausible_address_counts(value: Any, verified: Any,
                                                  expected: str | None) -> None:
    assert verified_email(value, verified) == expected

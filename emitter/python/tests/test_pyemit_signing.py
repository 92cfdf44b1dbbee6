"""Signatures and tickets beyond the vectors: each refusal says which check failed."""

import base64
import datetime
import time

import pytest

from switchboard_emitter import (Invalid, SignatureError, Signer, TicketClaims, TicketError, TicketKey,
                                 Verifier, mint_ticket, verify_ticket)

NOW = 1_800_000_000
BODY = b'{"topic":"a.b"}'


def which(verifier, header, body=BODY, now=NOW):
    with pytest.raises(SignatureError) as refused:
        verifier.verify(header, body, now=now)
    return refused.value.which


def test_signature_matches_the_rust_unit_test():
    header = Signer("s3cret").sign_with(BODY, NOW, "nonce123")
    assert header == "t=1800000000,n=nonce123,s=3d478874c873ebb6184f71436ae5945c02dfb881dde8e919c69782130d018d3d"


def test_each_signature_refusal_says_which_check_failed():
    signer, verifier = Signer("k"), Verifier("k", 300)
    assert which(verifier, None) == "missing"
    assert which(verifier, "garbage") == "malformed"
    assert which(verifier, "t=1,n=abcdefgh") == "malformed"
    assert which(verifier, "t=x,n=abcdefgh,s=00") == "malformed"
    assert which(verifier, "t=1,n=short,s=00") == "malformed"
    assert which(verifier, f"t={NOW},n=abcdefgh,s={'zz' * 32}") == "malformed"
    assert which(verifier, f"t={NOW},n=abcdefgh,s=00,x=1") == "malformed"
    good = signer.sign_with(BODY, NOW, "nonce-0001")
    assert which(verifier, good, body=b'{"topic":"a.c"}') == "invalid"
    assert which(verifier, Signer("other").sign_with(BODY, NOW, "nonce-0002")) == "invalid"
    assert which(verifier, signer.sign_with(BODY, NOW - 301, "nonce-0003")) == "expired"
    assert which(verifier, signer.sign_with(BODY, NOW + 301, "nonce-0004")) == "expired"
    verifier.verify(signer.sign_with(BODY, NOW - 300, "nonce-0005"), BODY, now=NOW)


def test_fresh_signatures_verify_once_and_invalid_ones_spend_no_nonce():
    signer, verifier = Signer(b"k"), Verifier("k")
    header = signer.sign(BODY)
    assert header.startswith(f"t={int(time.time())}"[:8])
    verifier.verify(header, BODY)
    with pytest.raises(SignatureError):
        verifier.verify(header, BODY)
    forged = Signer("other").sign_with(BODY, NOW, "nonce-forged")
    assert which(verifier, forged) == "invalid"
    verifier.verify(Signer("k").sign_with(BODY, NOW, "nonce-forged"), BODY, now=NOW)
    assert "hush" not in repr(Signer("hush")) + repr(TicketKey("hush")) + repr(Verifier("hush"))


def test_a_ticket_round_trips_and_holds_no_secret():
    ticket = mint_ticket("s3cret-value", "alice", ["member", "viewer"], 60)
    assert "s3cret" not in ticket
    claims = verify_ticket("s3cret-value", ticket, "alice")
    assert claims.roles == ["member", "viewer"]
    assert int(time.time()) + 59 <= claims.exp <= int(time.time()) + 61
    assert TicketKey("k").verify(TicketKey("k").mint("a", ["r"], datetime.timedelta(minutes=2))).exp > time.time() + 100


def test_each_ticket_refusal_says_why():
    key = TicketKey("k")
    ticket = key.mint_claims(TicketClaims("alice", ["member"], NOW + 10))

    def refused(t, authid=None, now=NOW):
        with pytest.raises(TicketError) as error:
            key.verify(t, authid, now=now)
        return error.value.which

    assert key.verify(ticket, "alice", now=NOW).exp == NOW + 10
    assert refused(ticket, "alice", NOW + 10) == "expired"
    assert refused(ticket, "bob") == "wrong_authid"
    assert refused(TicketKey("other").mint_claims(TicketClaims("alice", ["member"], NOW + 10))) == "invalid"
    payload, tag = ticket.split(".")
    longer = base64.urlsafe_b64encode(b'{"authid":"alice","roles":["member"],"exp":1900000000}').rstrip(b"=")
    assert refused(f"{longer.decode()}.{tag}") == "invalid"
    for bad in ["", "nodot", "abc.zz", "abc.00", "x" * 4097]:
        assert refused(bad) == "malformed", bad
    # A well-signed payload that is not exactly the claims is still refused.
    extra = TicketKey("k")
    odd = base64.urlsafe_b64encode(b'{"authid":"a","roles":["r"],"exp":1900000000,"admin":true}').rstrip(b"=").decode()
    from switchboard_emitter.ticket import _tag
    assert refused(f"{odd}.{_tag(b'k', odd).hex()}") == "malformed"
    del extra


def test_bad_claims_are_not_minted():
    key = TicketKey("k")
    for authid, roles, ttl, field in [("", ["r"], 1, "authid"), ("a", [], 1, "roles"), ("a", ["r"], 0, "ttl"),
                                      ("a", "member", 1, "roles"), ("a", [""], 1, "roles"),
                                      ("a", ["r"], -5, "ttl"), ("a", ["r"], "60", "ttl")]:
        with pytest.raises(Invalid) as error:
            key.mint(authid, roles, ttl)
        assert error.value.field == field, (authid, roles, ttl)

"""Pseudonymous refs and the contact vault."""
from __future__ import annotations

from urllib.parse import unquote

import pytest
from cryptography.fernet import Fernet

from pipelines.optout import opt_out_status, opt_out_url
from pipelines.pseudonym import normalise_phone, respondent_ref
from pipelines.vault import Contact, ContactVault


def test_ref_is_stable_across_spelling_and_secret_without_the_key():
    a = respondent_ref(b"k", email="Olli.Koe@Example.fi ")
    assert a == respondent_ref(b"k", email="olli.koe@example.fi")
    assert a != respondent_ref(b"other", email="olli.koe@example.fi")
    assert a.startswith("r_") and len(a) == 26 and "olli" not in a


def test_phone_forms_normalise_to_one_ref():
    assert normalise_phone("040 123 4567") == normalise_phone("+358 40 1234567") == normalise_phone("00358401234567")
    assert respondent_ref(b"k", phone="040-1234567") == respondent_ref(b"k", phone="+358401234567")


def test_ref_needs_a_detail():
    with pytest.raises(ValueError):
        respondent_ref(b"k")


def test_vault_round_trip_and_rotation():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = ContactVault([old]).encrypt(Contact(email="a@example.fi"))
    assert "a@example.fi" not in token
    rotated_vault = ContactVault([new, old])
    rotated = rotated_vault.rotate(token)
    assert ContactVault([new]).decrypt(rotated) == Contact(email="a@example.fi")
    with pytest.raises(ValueError, match="decrypted"):
        ContactVault([new]).decrypt(token)


def test_vault_rejects_bad_keys():
    with pytest.raises(ValueError, match="contact_keys"):
        ContactVault(["short"])


def test_opt_out_links_are_signed():
    url = opt_out_url("https://x.example/", b"k", "r_" + "a" * 24, 1_800_000_000)
    token = unquote(url.split("token=")[1])
    assert opt_out_status(b"k", "r_" + "a" * 24, token, 1_800_000_000, 86_400) == "valid"
    assert opt_out_status(b"k", "r_" + "b" * 24, token, 1_800_000_000, 86_400) == "invalid"
    assert opt_out_status(b"other", "r_" + "a" * 24, token, 1_800_000_000, 86_400) == "invalid"

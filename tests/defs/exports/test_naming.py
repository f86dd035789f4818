"""Responsys name rules: each rule rejects what Responsys would, with a message naming where."""

import re

import pytest

from responsys_assets.defs.exports.naming import (
    InvalidResponsysName,
    validate_field_name,
    validate_folder_name,
    validate_object_name,
)

WHERE = "export 'vip_list'"


@pytest.mark.parametrize(
    "name",
    ["FIRST_NAME", "b", "Score$1", "LTV#", "X" * 30, "EMAIL_ADDRESS_", "riid_", "Customer_Tier"],
)
def test_valid_field_names(name):
    assert validate_field_name(name, where=WHERE) == name


def test_bad_character_message_names_export_field_and_character():
    with pytest.raises(InvalidResponsysName) as info:
        validate_field_name("FIRST NAME", where=WHERE)
    assert str(info.value) == (
        "export 'vip_list': field 'FIRST NAME' has a character Responsys does not allow (' ')"
    )
    assert info.value.name == "FIRST NAME" and info.value.where == WHERE


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("X" * 31, "31 characters"),
        ("1ST", "start with a letter"),
        ("_X", "start with a letter"),
        ("SCORE_", "ends with '_'"),
        ("E", "single letter"),
        ("u", "single letter"),
        ("DATE", "reserved word"),
        ("number", "reserved word"),
        ("ID", "reserved word"),
        ("USER", "reserved word"),
        ("", "empty"),
        ("NAME-2", "does not allow ('-')"),
        ("PRÉNOM", "does not allow ('É')"),
    ],
)
def test_invalid_field_names(name, reason):
    with pytest.raises(InvalidResponsysName, match=re.escape(reason)):
        validate_field_name(name, where=WHERE)


def test_object_names():
    assert validate_object_name("VIP_LIST", kind="PET", where=WHERE) == "VIP_LIST"
    with pytest.raises(InvalidResponsysName, match="PET name 'VIP LIST'"):
        validate_object_name("VIP LIST", kind="PET", where=WHERE)
    with pytest.raises(InvalidResponsysName, match="limit is 30"):
        validate_object_name("L" * 31, kind="list", where=WHERE)
    with pytest.raises(InvalidResponsysName, match="start with a letter"):
        validate_object_name("9LIST", kind="list", where=WHERE)


def test_folder_names():
    name = "Marketing [EU] {2026} - A=B @home!_x"
    assert validate_folder_name(name, where=WHERE) == name
    assert validate_folder_name("F" * 100, where=WHERE)
    with pytest.raises(InvalidResponsysName, match="limit is 100"):
        validate_folder_name("F" * 101, where=WHERE)
    with pytest.raises(InvalidResponsysName, match=r"does not allow \('/'\)"):
        validate_folder_name("a/b", where=WHERE)
    with pytest.raises(InvalidResponsysName, match="empty"):
        validate_folder_name("", where=WHERE)

"""
Flows described over D-Bus (docs/architecture.md §3.3): Manager.GetFlow gives a client a
flow's fields, materials and steps from the plugin's own tables, and Manager.ValidateFields
flags a mistyped field as it is typed, with the same validators as CreateOrder.
"""

import pytest

from conftest import (ERR_INVALID_INPUT, ID_29_FEB_1949, ID_BAD_CHECK, MANAGER_IFACE,
                      MANAGER_PATH, ORG_FIELDS, PERSON_FIELDS, USCC_BAD_CHECK, dbus_error,
                      fields_arg)


def get_flow(client, kind, subject):
    return client.call(MANAGER_PATH, MANAGER_IFACE, "GetFlow", "ss", (kind, subject))


def validate(client, kind, subject, fields):
    return [tuple(p) for p in client.call(MANAGER_PATH, MANAGER_IFACE, "ValidateFields",
                                          "ssa{sv}", (kind, subject, fields_arg(fields)))]


def test_get_flow_describes_the_new_org_flow(daemon, client):
    flow = get_flow(client, "new", "org")
    assert flow["kind"] == "new" and flow["subject_type"] == "org"
    assert flow["title_zh"] == "新办"
    fields = {f["name"]: f for f in flow["fields"]}
    # Only the organisation's fields: a person's are not offered.
    assert "uscc" in fields and "id_number" not in fields and "name" not in fields
    uscc = fields["uscc"]
    assert uscc["type"] == "uscc" and uscc["required"] and uscc["identity"]
    assert uscc["max_length"] == 18 and uscc["label_zh"] == "统一社会信用代码"
    assert uscc["label_en"]
    auth = fields["auth_method"]
    assert auth["type"] == "enum"
    assert auth["choices"] == ["legal_rep_phone", "corporate_account", "legal_rep_bank_card"]
    assert len(auth["choice_labels_zh"]) == 3 and auth["choice_labels_zh"][1] == "企业对公账户认证"
    assert len(auth["choice_labels_en"]) == 3
    assert not fields["bank_card"]["required"] and not fields["handler_phone"]["identity"]
    # A field with no length of its own gets the engine's default.
    assert fields["auth_method"]["max_length"] == 256
    materials = {m["kind"]: m for m in flow["materials"]}
    assert set(materials) == {"business_license", "handler_id_front", "handler_id_back",
                              "seal_form", "seal_image"}
    assert materials["business_license"]["required"]
    assert materials["business_license"]["label_zh"] == "营业执照"
    assert not materials["seal_image"]["required"]
    # The applicant's steps in the flow's order, none of the office's.
    steps = flow["steps"]
    assert steps.index("confirm") < steps.index("submit") < steps.index("cancel")
    assert "approve" not in steps and "make" not in steps and "pay" not in steps
    assert "draft" in flow["states"] and "making" in flow["states"]


def test_get_flow_for_a_person_has_the_persons_fields_and_materials(daemon, client):
    flow = get_flow(client, "new", "person")
    names = [f["name"] for f in flow["fields"]]
    assert "id_number" in names and "uscc" not in names and "org_name" not in names
    auth = next(f for f in flow["fields"] if f["name"] == "auth_method")
    assert auth["choices"] == ["phone", "bank_card", "bank_account_transfer"]
    kinds = [m["kind"] for m in flow["materials"]]
    assert "id_front" in kinds and "business_license" not in kinds


def test_get_flow_refuses_an_unknown_kind_or_subject_naming_it(daemon, client):
    with dbus_error(ERR_INVALID_INPUT, "kind", "nosuch"):
        get_flow(client, "nosuch", "org")
    with dbus_error(ERR_INVALID_INPUT, "subject_type"):
        get_flow(client, "new", "company")


def test_validate_fields_is_empty_when_all_are_good(daemon, client):
    assert validate(client, "new", "org", ORG_FIELDS) == []
    assert validate(client, "new", "person", PERSON_FIELDS) == []
    # Some fields only, as a form has while it is being filled.
    assert validate(client, "new", "person", {"id_number": PERSON_FIELDS["id_number"]}) == []


def test_validate_fields_names_each_bad_field_and_why(daemon, client):
    problems = dict(validate(client, "new", "person",
                             {"id_number": ID_BAD_CHECK, "phone": "12345",
                              "email": "nobody", "name": PERSON_FIELDS["name"]}))
    assert set(problems) == {"id_number", "phone", "email"}
    assert "check" in problems["id_number"]
    # The reason does not repeat the field's name: the pair names it.
    assert not problems["phone"].startswith("phone:")
    problems = dict(validate(client, "new", "person", {"id_number": ID_29_FEB_1949}))
    assert "date" in problems["id_number"] or "birth" in problems["id_number"]
    problems = dict(validate(client, "new", "org", {"uscc": USCC_BAD_CHECK,
                                                    "auth_method": "carrier_pigeon",
                                                    "shoe_size": "42"}))
    assert set(problems) == {"uscc", "auth_method", "shoe_size"}
    assert "legal_rep_phone" in problems["auth_method"]
    assert "not a field" in problems["shoe_size"]


def test_validate_fields_agrees_with_create_order(daemon, client):
    bad = dict(PERSON_FIELDS, id_number=ID_BAD_CHECK)
    problems = dict(validate(client, "new", "person", bad))
    with dbus_error(ERR_INVALID_INPUT, "id_number") as info:
        client.create_order("new", "person", bad)
    assert problems["id_number"] in str(info.value)


def test_validate_fields_stores_nothing(daemon, client):
    before = client.managed_objects()
    validate(client, "new", "org", ORG_FIELDS)
    assert client.managed_objects() == before

"""
Filling in a new-certificate application (新办, docs/architecture.md §1.1) over D-Bus: create the order,
fill it, go back and change it (返回修改), confirm it, cancel it; every input checked at the
front with an InvalidInput naming the field (docs/architecture.md §6); every change announced.
"""

import dbus
import pytest

from conftest import (ERR_INVALID_INPUT, ERR_WRONG_STATE, ID_29_FEB_1949, ID_BAD_CHECK,
                      ORDER_IFACE, ORG_FIELDS, PERSON_FIELDS, USCC_BAD_CHECK, USCC_LEGACY,
                      SignalRecorder, dbus_error)


def luhn_check_digit(body):
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


CARD_BODY = "622202123456789012"
CARD_GOOD = CARD_BODY + luhn_check_digit(CARD_BODY)
CARD_BAD = CARD_BODY + str((int(luhn_check_digit(CARD_BODY)) + 1) % 10)


# The required materials of a new order (docs/architecture.md §1.1), listed in Missing after the fields.
ORG_MATERIALS = ["business_license", "handler_id_front", "handler_id_back", "seal_form"]
PERSON_MATERIALS = ["id_front", "id_back", "seal_form"]


def with_fields(base, **changes):
    f = dict(base)
    for k, v in changes.items():
        if v is None:
            f.pop(k, None)
        else:
            f[k] = v
    return f


@pytest.fixture
def signals(client):
    rec = SignalRecorder(client)
    yield rec
    rec.remove()


def properties_changed_on(path, prop=None):
    def match(member, spath, iface, args):
        if member != "PropertiesChanged" or spath != path or args[0] != ORDER_IFACE:
            return False
        return prop is None or prop in args[1] or prop in args[2]
    return match


# --- create ---------------------------------------------------------------------------

def test_new_org_order_is_created_as_a_draft(daemon, client, signals):
    order = client.create_order("new", "org", ORG_FIELDS)
    added = signals.wait_for(lambda m, p, i, a: m == "InterfacesAdded" and a[0] == order.path)
    assert added is not None, "no InterfacesAdded for the new order"
    props = order.get_all()
    assert props["State"] == "draft"
    assert props["Kind"] == "new"
    assert props["SubjectType"] == "org"
    assert props["Vendor"] == "demo-a"
    assert props["Id"] == order.id
    assert props["Missing"] == ORG_MATERIALS
    for action in ("Update", "Confirm", "Cancel"):
        assert action in props["NextActions"]
    assert props["AmountFen"] == 30000
    assert props["AuthMethod"] == "legal_rep_phone"
    assert props["Warnings"] == []
    assert props["CreatedAt"] > 0 and props["UpdatedAt"] >= props["CreatedAt"]
    # InterfacesAdded carries the order's public properties only.
    announced = added[3][1][ORDER_IFACE]
    assert announced["State"] == "draft"
    assert "Fields" not in announced


def test_fields_are_read_explicitly_and_kept_out_of_getall(daemon, client):
    order = client.create_order("new", "org", ORG_FIELDS)
    fields = order.get("Fields")
    assert fields == ORG_FIELDS
    assert "Fields" not in order.get_all()
    for value in ("厦门示例科技有限公司", ORG_FIELDS["uscc"], ORG_FIELDS["legal_rep_id"]):
        assert value not in repr(order.get_all()), "personal data in GetAll"


def test_a_draft_lists_what_is_still_missing(daemon, client):
    order = client.create_order("new", "org", with_fields(ORG_FIELDS, email=None, postcode=None))
    missing = order.get("Missing")
    assert sorted(missing[:2]) == ["email", "postcode"]
    assert missing[2:] == ORG_MATERIALS


def test_new_person_order_is_created(daemon, client):
    order = client.create_order("new", "person", PERSON_FIELDS)
    assert order.state == "draft"
    assert order.get("SubjectType") == "person"
    assert order.get("Missing") == PERSON_MATERIALS
    assert order.get("AmountFen") == 10000
    assert order.get("Fields")["id_number"] == PERSON_FIELDS["id_number"]
    order.confirm()
    assert order.state == "confirmed"


def test_legacy_uscc_from_the_exception_list_is_accepted(daemon, client):
    order = client.create_order("new", "org", with_fields(ORG_FIELDS, uscc=USCC_LEGACY))
    assert order.get("Fields")["uscc"] == USCC_LEGACY


# --- refusals, each naming the field ---------------------------------------------------

@pytest.mark.parametrize("field,value", [
    ("uscc", USCC_BAD_CHECK),
    ("legal_rep_id", ID_BAD_CHECK),
    ("handler_id", ID_29_FEB_1949),
    ("legal_rep_phone", "12345"),
    ("handler_phone", "23800138000"),
    ("org_name", "示例\x01公司"),
    ("email", "not an address"),
    ("postcode", "36100"),
], ids=["uscc-bad-check-char", "resident-id-bad-check", "resident-id-29-feb-1949",
        "phone-too-short", "phone-bad-prefix", "org-name-control-char", "email", "postcode"])
def test_create_refuses_an_invalid_field_naming_it(daemon, client, field, value):
    with dbus_error(ERR_INVALID_INPUT, field):
        client.create_order("new", "org", with_fields(ORG_FIELDS, **{field: value}))


@pytest.mark.parametrize("value", [
    "\u3000", "\u3000\u3000", "\u3164", "\u3164\u3164", "\u034f", "\u2800",
    "\u0301\u0308", " \u3000 ",
], ids=["ideographic-space", "ideographic-spaces", "hangul-filler", "hangul-fillers",
        "grapheme-joiner", "braille-blank", "only-combining-marks", "spaces"])
def test_create_refuses_a_blank_or_invisible_name_naming_it(daemon, client, value):
    with dbus_error(ERR_INVALID_INPUT, "org_name"):
        client.create_order("new", "org", with_fields(ORG_FIELDS, org_name=value))


@pytest.mark.parametrize("value", ["ops\u202e@example.cn", "ops@exa\u2066mple.cn",
                                   "o\u200bps@example.cn"],
                         ids=["rlo", "lri", "zero-width-space"])
def test_create_refuses_bidi_controls_in_email(daemon, client, value):
    with dbus_error(ERR_INVALID_INPUT, "email"):
        client.create_order("new", "org", with_fields(ORG_FIELDS, email=value))


def raw_create_order(bus, entries):
    """CreateOrder with an a{sv} built entry by entry (GDBus, not dbus-python, so that a key
    may repeat and a string may hold what libdbus would refuse to send)."""
    from gi.repository import Gio, GLib
    conn = Gio.DBusConnection.new_for_address_sync(
        bus.address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
        Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
    b = GLib.VariantBuilder.new(GLib.VariantType.new("a{sv}"))
    for k, v in entries:
        b.add_value(GLib.Variant("{sv}", (k, GLib.Variant("s", v))))
    try:
        conn.call_sync("org.certseal.CertSeal1", "/org/certseal/CertSeal1",
                       "org.certseal.CertSeal1.Manager", "CreateOrder",
                       GLib.Variant.new_tuple(GLib.Variant("s", "new"), GLib.Variant("s", "org"),
                                              b.end()),
                       None, Gio.DBusCallFlags.NONE, 10000, None)
        return None
    except GLib.Error as e:
        name = Gio.DBusError.get_remote_error(e)
        return name, e.message.split(f"GDBus.Error:{name}: ", 1)[-1]
    finally:
        conn.close_sync(None)


def test_create_refuses_a_field_given_twice_naming_it(daemon, bus, client):
    before = set(client.managed_objects())
    entries = list(ORG_FIELDS.items()) + [("org_name", "另一个公司")]
    got = raw_create_order(bus, entries)
    assert got is not None and got[0] == ERR_INVALID_INPUT, got
    assert "org_name" in got[1] and "twice" in got[1], got
    assert set(client.managed_objects()) == before


@pytest.mark.parametrize("char", ["\uffff", "\ufdd0", "\ufffe"])
def test_create_names_the_field_holding_a_non_character(daemon, bus, char):
    got = raw_create_order(bus, [(k, v + char if k == "address" else v)
                                 for k, v in ORG_FIELDS.items()])
    assert got is not None and got[0] == ERR_INVALID_INPUT, got
    assert got[1].startswith("address:"), got
    assert "Bad message" not in got[1]


def test_create_refuses_a_bad_resident_id_of_a_person(daemon, client):
    with dbus_error(ERR_INVALID_INPUT, "id_number"):
        client.create_order("new", "person", with_fields(PERSON_FIELDS, id_number=ID_29_FEB_1949))


def test_refusals_do_not_repeat_the_value(daemon, client):
    with dbus_error(ERR_INVALID_INPUT, "legal_rep_id") as info:
        client.create_order("new", "org", with_fields(ORG_FIELDS, legal_rep_id=ID_BAD_CHECK))
    assert ID_BAD_CHECK not in info.value.get_dbus_message()


@pytest.mark.parametrize("where", ["kind", "field", "vendor"])
def test_refusals_quote_little_of_a_bad_value_escaped(daemon, client, where):
    bad = "\x1b[31m" + "x" * 1000000 + "\nline"
    with pytest.raises(dbus.exceptions.DBusException) as info:
        if where == "kind":
            client.create_order(bad, "org", ORG_FIELDS)
        elif where == "field":
            client.create_order("new", "org", with_fields(ORG_FIELDS, **{bad: "v"}))
        else:
            client.create_order("new", "org", with_fields(ORG_FIELDS, vendor=bad))
    assert info.value.get_dbus_name() == ERR_INVALID_INPUT
    msg = info.value.get_dbus_message()
    assert len(msg) < 400, len(msg)
    assert "\x1b" not in msg and "\n" not in msg, msg
    assert "\\x1b[31mxxx" in msg, msg


def test_create_refuses_an_unknown_kind(daemon, client):
    with dbus_error(ERR_INVALID_INPUT, "kind"):
        client.create_order("renewal-of-nothing", "org", ORG_FIELDS)


def test_create_refuses_an_unknown_subject_type(daemon, client):
    with dbus_error(ERR_INVALID_INPUT, "subject_type"):
        client.create_order("new", "company", ORG_FIELDS)


def test_create_refuses_a_number_where_a_string_is_expected(daemon, client):
    with dbus_error(ERR_INVALID_INPUT, "org_name"):
        client.create_order("new", "org", with_fields(ORG_FIELDS, org_name=dbus.Int32(42)))


def test_create_refuses_an_unknown_field(daemon, client):
    with dbus_error(ERR_INVALID_INPUT, "favourite_colour"):
        client.create_order("new", "org", with_fields(ORG_FIELDS, favourite_colour="blue"))


def test_create_refuses_a_person_field_on_an_org_order(daemon, client):
    with dbus_error(ERR_INVALID_INPUT, "id_number"):
        client.create_order("new", "org", with_fields(ORG_FIELDS, id_number=PERSON_FIELDS["id_number"]))


def test_create_refuses_an_unknown_vendor(daemon, client):
    with dbus_error(ERR_INVALID_INPUT, "vendor"):
        client.create_order("new", "org", with_fields(ORG_FIELDS, vendor="no-such-vendor"))


# --- 返回修改, confirm, cancel ----------------------------------------------------------

def test_update_in_draft_changes_a_field_and_announces_it(daemon, client, signals):
    order = client.create_order("new", "org", ORG_FIELDS)
    signals.clear()
    order.update({"address": "福建省厦门市湖里区示例路 9 号", "legal_rep_phone": "+86 139 0013 9000"})
    fields = order.get("Fields")
    assert fields["address"] == "福建省厦门市湖里区示例路 9 号"
    assert fields["legal_rep_phone"] == "13900139000", "phone not normalised"
    changed = signals.wait_for(properties_changed_on(order.path))
    assert changed is not None, "no PropertiesChanged after Update"
    # Fields is only invalidated: its values never travel in a broadcast.
    assert "Fields" not in changed[3][1]
    assert "Fields" in changed[3][2]
    assert "13900139000" not in repr(signals.signals)


def test_update_refuses_an_invalid_value_and_keeps_the_old_one(daemon, client):
    order = client.create_order("new", "org", ORG_FIELDS)
    with dbus_error(ERR_INVALID_INPUT, "uscc"):
        order.update({"uscc": USCC_BAD_CHECK})
    assert order.get("Fields")["uscc"] == ORG_FIELDS["uscc"]
    assert [h[2] for h in order.get("History")] == ["created"]


def test_update_with_an_empty_string_removes_a_field(daemon, client):
    order = client.create_order("new", "org", ORG_FIELDS)
    order.update({"email": ""})
    assert "email" not in order.get("Fields")
    assert order.get("Missing") == ["email"] + ORG_MATERIALS


def test_confirm_refuses_while_a_field_is_missing_naming_it(daemon, client):
    order = client.create_order("new", "org", with_fields(ORG_FIELDS, handler_phone=None))
    with dbus_error(ERR_INVALID_INPUT, "handler_phone"):
        order.confirm()
    assert order.state == "draft"


def test_confirm_a_complete_application(daemon, client, signals):
    order = client.create_order("new", "org", ORG_FIELDS)
    signals.clear()
    order.confirm()
    assert order.state == "confirmed"
    changed = signals.wait_for(
        lambda m, p, i, a: properties_changed_on(order.path, "State")(m, p, i, a)
        and a[1].get("State") == "confirmed")
    assert changed is not None, f"no PropertiesChanged State=confirmed: {signals.signals}"
    next_actions = order.get("NextActions")
    assert "Update" not in next_actions and "Confirm" not in next_actions
    assert "Cancel" in next_actions


def test_update_after_confirm_is_wrong_state(daemon, client):
    order = client.create_order("new", "org", ORG_FIELDS)
    order.confirm()
    with dbus_error(ERR_WRONG_STATE):
        order.update({"address": "另一个地址 3 号"})
    assert order.get("Fields")["address"] == ORG_FIELDS["address"]


def test_cancel_then_confirm_is_wrong_state(daemon, client):
    order = client.create_order("new", "org", ORG_FIELDS)
    order.confirm()
    order.cancel()
    assert order.state == "cancelled"
    with dbus_error(ERR_WRONG_STATE):
        order.confirm()
    with dbus_error(ERR_WRONG_STATE):
        order.cancel()
    assert order.get("NextActions") == []


def test_corporate_account_needs_the_bank_account_at_confirm(daemon, client):
    order = client.create_order("new", "org", with_fields(
        ORG_FIELDS, auth_method="corporate_account", bank_name="中国工商银行厦门分行"))
    with dbus_error(ERR_INVALID_INPUT, "bank_account"):
        order.confirm()
    assert order.state == "draft"
    order.update({"bank_account": "4100 0210 0900 1234 567"})
    order.confirm()
    assert order.state == "confirmed"


def test_history_records_each_step_with_its_state(daemon, client):
    order = client.create_order("new", "org", ORG_FIELDS)
    order.update({"postcode": "361001"})
    order.confirm()
    order.cancel()
    history = order.get("History")
    assert [(state, note) for _, state, note in history] == [
        ("draft", "created"), ("draft", "updated"), ("confirmed", "confirm"),
        ("cancelled", "cancel")]
    times = [t for t, _, _ in history]
    assert times == sorted(times) and times[0] > 0


def test_a_bank_card_failing_luhn_is_a_warning_not_a_refusal(daemon, client):
    order = client.create_order("new", "person", with_fields(
        PERSON_FIELDS, auth_method="bank_card", bank_card=CARD_BAD))
    warnings = order.get("Warnings")
    assert len(warnings) == 1 and "bank_card" in warnings[0], warnings
    assert CARD_BAD not in warnings[0]
    order.update({"bank_card": CARD_GOOD})
    assert order.get("Warnings") == []
    order.confirm()
    assert order.state == "confirmed"


def test_changes_go_to_the_connections_that_created_called_or_listed_the_order(daemon, bus,
                                                                                client):
    """Root's connections do not all hear every order: the creator, a connection that
    called the order and one that asked for every object (GetManagedObjects) do; another
    root connection busy with an order of its own hears nothing about it."""
    from conftest import MANAGER_PATH, OBJMGR_IFACE, Client, pump
    others = {name: Client(bus) for name in ("caller", "lister", "bystander")}
    recs = {name: SignalRecorder(c) for name, c in others.items()}
    creator = SignalRecorder(client)
    try:
        others["bystander"].create_order("new", "person", PERSON_FIELDS)
        others["lister"].call(MANAGER_PATH, OBJMGR_IFACE, "GetManagedObjects", "", ())
        order = client.create_order("new", "org", ORG_FIELDS)
        others["caller"].get(order.path, ORDER_IFACE, "State")
        order.update({"address": "厦门市湖里区示例路 9 号"})
        changed = properties_changed_on(order.path)
        for name, rec in [("creator", creator), ("caller", recs["caller"]),
                          ("lister", recs["lister"])]:
            assert rec.wait_for(changed) is not None, f"the {name} heard no change"
        added = recs["lister"].wait_for(lambda m, p, i, a: m == "InterfacesAdded" and
                                        a[0] == order.path)
        assert added is not None, "GetManagedObjects' caller was not told of the new order"
        # A round trip of the bystander's own comes after anything sent to it before.
        others["bystander"].call(MANAGER_PATH, "org.freedesktop.DBus.Peer", "Ping", "", ())
        pump(0.2)
        heard = [s for s in recs["bystander"].signals
                 if s[1] == order.path or (s[3] and s[3][0] == order.path)]
        assert heard == [], f"a root connection that never asked heard {heard}"
    finally:
        creator.remove()
        for name, c in others.items():
            recs[name].remove()
            c.close()

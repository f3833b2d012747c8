"""
`certseal` follows an order (订单查询) and acts on it: `orders`, `order show`, `order
confirm`, `order cancel`, human and --json, with the documented exit codes and the JSON
error shape {"error": {"code", "message"}} (cli/certseal.c, STYLE.md).
"""

import json

import pytest

from conftest import (ERR_INVALID_INPUT, ERR_WRONG_STATE, ORG_FIELDS, PERSON_FIELDS, Client,
                      run_cli)


@pytest.fixture(scope="module")
def orders(daemon, bus):
    c = Client(bus)
    made = {
        "org": c.create_order("new", "org", ORG_FIELDS),
        "person": c.create_order("new", "person", PERSON_FIELDS),
        "incomplete": c.create_order("new", "org", dict(ORG_FIELDS, email="")),
    }
    yield made
    c.close()


def test_orders_lists_my_orders(orders, bus):
    cp = run_cli(bus, "orders")
    assert cp.returncode == 0, cp.stderr
    for o in orders.values():
        assert o.id in cp.stdout
    assert "draft" in cp.stdout


def test_orders_json_parses(orders, bus):
    cp = run_cli(bus, "--json", "orders")
    assert cp.returncode == 0, cp.stderr
    listed = {o["Id"]: o for o in json.loads(cp.stdout)}
    for o in orders.values():
        assert o.id in listed
        assert listed[o.id]["Kind"] == "new"
        assert "Fields" not in listed[o.id]


def test_orders_can_filter_by_state(orders, bus):
    cp = run_cli(bus, "--json", "orders", "--state", "no_such_state")
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout) == []


def test_order_show_human(orders, bus):
    o = orders["org"]
    cp = run_cli(bus, "order", "show", o.id)
    assert cp.returncode == 0, cp.stderr
    assert o.id in cp.stdout
    assert "draft" in cp.stdout
    assert ORG_FIELDS["org_name"] in cp.stdout
    assert "300.00" in cp.stdout


def test_order_show_json_has_fields(orders, bus):
    o = orders["person"]
    cp = run_cli(bus, "--json", "order", "show", o.id)
    assert cp.returncode == 0, cp.stderr
    doc = json.loads(cp.stdout)
    assert doc["Id"] == o.id
    assert doc["State"] == "draft"
    assert doc["Fields"]["name"] == PERSON_FIELDS["name"]
    assert doc["Fields"]["id_number"] == PERSON_FIELDS["id_number"]
    assert doc["AmountFen"] == 10000


def test_order_show_of_an_unknown_order_exits_4(orders, bus):
    cp = run_cli(bus, "order", "show", "NOPE")
    assert cp.returncode == 4, (cp.stdout, cp.stderr)
    # Said in an order's words, not an object path's.
    assert "order NOPE: no such order, or not yours" in cp.stderr, cp.stderr
    assert "/org/certseal" not in cp.stderr, cp.stderr
    cp = run_cli(bus, "--json", "order", "continue", "NOPE")
    assert cp.returncode == 4, (cp.stdout, cp.stderr)
    err = json.loads(cp.stdout)["error"]
    assert set(err) == {"code", "message"}
    assert err["message"].startswith("order NOPE: no such order"), err


def test_order_id_with_a_slash_is_a_usage_error(orders, bus):
    cp = run_cli(bus, "order", "show", "../../CertSeal1")
    assert cp.returncode == 2, (cp.stdout, cp.stderr)


def test_order_confirm(orders, bus):
    o = orders["org"]
    cp = run_cli(bus, "--json", "order", "confirm", o.id)
    assert cp.returncode == 0, (cp.stdout, cp.stderr)
    assert json.loads(cp.stdout)["State"] == "confirmed"
    assert o.state == "confirmed"


def test_refused_confirm_prints_a_json_error_and_exits_1(orders, bus):
    o = orders["incomplete"]
    cp = run_cli(bus, "--json", "order", "confirm", o.id)
    assert cp.returncode == 1, (cp.stdout, cp.stderr)
    doc = json.loads(cp.stdout)
    assert set(doc) == {"error"}
    assert doc["error"]["code"] == ERR_INVALID_INPUT
    assert "email" in doc["error"]["message"]
    assert o.state == "draft"
    # Without --json the message goes to stderr and stdout stays empty.
    cp = run_cli(bus, "order", "confirm", o.id)
    assert cp.returncode == 1
    assert "email" in cp.stderr
    assert cp.stdout == ""


def test_order_cancel_then_cancel_again_is_refused(orders, bus):
    o = orders["person"]
    cp = run_cli(bus, "order", "cancel", o.id)
    assert cp.returncode == 0, (cp.stdout, cp.stderr)
    assert "cancelled" in cp.stdout
    cp = run_cli(bus, "--json", "order", "cancel", o.id)
    assert cp.returncode == 1
    assert json.loads(cp.stdout)["error"]["code"] == ERR_WRONG_STATE

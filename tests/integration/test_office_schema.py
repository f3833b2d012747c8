"""
test_office_schema.py — the document matches the wire (issue 19): every verb both ways and
the CALL methods, exchanged with a real daemon and checked against the JSON Schemas of
dbus/office-schema/ (office_helpers.Worker checks each message; office_schema.SEEN counts
what was checked, so that a verb left out fails here). The events of §7 too.
"""

import json

import pytest
import zmq

import office_schema
from conftest import Daemon, short_tmpdir
from office_helpers import HEARTBEAT_MS, LIVENESS, OfficeEnv, Worker, office_info, serving_office, read_key_file

ROLES = {"rita": "reviewer", "mark": "maker", "cash": "cashier", "audrey": "auditor",
         "gw": "gateway"}


@pytest.fixture(scope="module")
def env():
    return OfficeEnv(short_tmpdir("csschema-"), ROLES)


@pytest.fixture(scope="module")
def office(bus, env):
    yield from serving_office(Daemon(bus, config=env.config))


def events_socket(state_dir, key_file):
    info = office_info(state_dir)
    pub, sec = read_key_file(key_file)
    s = zmq.Context.instance().socket(zmq.SUB)
    s.linger = 0
    s.curve_serverkey = info["server_public_key"].encode()
    s.curve_publickey, s.curve_secretkey = pub.encode(), sec.encode()
    s.setsockopt(zmq.SUBSCRIBE, b"order.")
    s.connect(info["events_endpoint"])
    return s


def next_message(w, verb):
    got = w.recv()
    assert got is not None and got[0] == verb, got
    return got[1]


def test_every_verb_and_method_matches_the_schemas(office, env, client):
    office_schema.SEEN.clear()
    events = events_socket(office.state_dir, env.keys["audrey"])
    rita = Worker(office.state_dir, env.keys["rita"])
    info = rita.ok("info")
    assert info["heartbeat_ms"] == HEARTBEAT_MS and info["liveness"] == LIVENESS

    # An order paid through the cashier: payment.notify.
    order = client.create_order("officeflow", "org", {"vendor": "demo-a", "name": "示例"})
    order.confirm()
    cash = Worker(office.state_dir, env.keys["cash"])
    paid = cash.ok("payment.notify", {"channel": "sandbox", "order_id": order.id})
    assert paid["applied"] is True and order.state == "in_review"

    # READY → HEARTBEAT (timing) → TASK; FAIL gives it back, the next TASK is DONE.
    rita.send("READY", {"service": "review"})
    beat = rita.recv(skip_heartbeats=False)
    assert beat == ("HEARTBEAT", {"heartbeat_ms": HEARTBEAT_MS, "liveness": LIVENESS})
    task = next_message(rita, "TASK")
    while task["order_id"] != order.id:  # a task of an earlier test: approve it
        rita.send("DONE", {"lease": task["lease"], "result": {"decision": "approve"}})
        next_message(rita, "RESULT")
        task = next_message(rita, "TASK")
    assert task["state"] == "leased" and task["lease_user"] == "rita"
    first_attempts = task["attempts"]
    rita.send("FAIL", {"lease": task["lease"], "error": "looked twice"})
    assert next_message(rita, "RESULT")["result"] == {"committed": True}
    task = next_message(rita, "TASK")
    assert task["order_id"] == order.id and task["attempts"] == first_attempts + 1
    rita.send("DONE", {"lease": task["lease"], "result": {"decision": "approve"}})
    assert next_message(rita, "RESULT")["lease"] == task["lease"]
    rita.send("DONE", {"lease": task["lease"], "result": {"decision": "approve"}})
    assert next_message(rita, "ERROR")["code"] == "WrongState"
    rita.send("HEARTBEAT", {})
    verb, body = rita.call("no.such.method")
    assert verb == "ERROR" and body["code"] == "InvalidInput"
    rita.close()
    assert order.state == "approved"

    # A connection that only heartbeats is told to READY.
    lone = Worker(office.state_dir, env.keys["gw"])
    lone.send("HEARTBEAT")
    assert next_message(lone, "ERROR")["service"] is None
    verb, body = lone.call("task.secret", {"lease": "not-a-lease"})
    assert verb == "ERROR" and body["code"] == "WrongState"
    lone.close()

    # People: task.next / task.claim / task.fail / task.done.
    mark = Worker(office.state_dir, env.keys["mark"])
    t = mark.ok("task.next", {"service": "make"})
    while t is not None and t["order_id"] != order.id:
        mark.ok("task.fail", {"lease": t["lease"], "error": "not now"})
        t = mark.ok("task.next", {"service": "make"})
    assert t is not None
    assert mark.ok("task.fail", {"lease": t["lease"], "error": "no blank key"}) == {
        "committed": True}
    t = mark.ok("task.claim", {"order_id": order.id, "service": "make"})
    assert mark.ok("task.done", {"lease": t["lease"], "result": {"key_serial": "VK0001"}}) == {
        "committed": True}
    mark.close()
    assert order.state == "made"

    # The auditor's and the admin's reads.
    audrey = Worker(office.state_dir, env.keys["audrey"])
    assert any(o["id"] == order.id for o in audrey.ok("orders.list"))
    got = audrey.ok("orders.get", {"id": order.id})
    assert [t["service"] for t in got["tasks"]][:2] == ["review", "make"]
    assert audrey.ok("tasks.list", {"service": "review"})
    assert audrey.ok("ledger.verify")["ok"] is True
    assert audrey.ok("ca.export", {"vendor": "demo-a"})[0]["vendor"] == "demo-a"
    assert audrey.ok("ca.crl", {"vendor": "demo-a"})[0]["pem"].startswith("-----BEGIN X509 CRL")
    audrey.close()
    admin = Worker(office.state_dir)
    assert isinstance(admin.ok("outbox.list", {"service": "sms"}), list)
    admin.close()

    # The events of this order, as §7 says.
    seen_states = set()
    while events.poll(1000):
        topic, body = events.recv_multipart()
        office_schema.check_event(json.loads(body))
        event = json.loads(body)
        assert topic.decode() == "order." + event["state"]
        if event["order_id"] == order.id:
            seen_states.add(event["state"])
    events.close()
    assert {"in_review", "approved", "made"} <= seen_states, seen_states

    seen = office_schema.SEEN
    for verb in office_schema.SENT_BY_WORKER:
        assert seen["sent", verb], f"no {verb} was sent"
    for verb in office_schema.SENT_BY_DAEMON:
        assert seen["received", verb], f"no {verb} was received"
    for method in ("info", "payment.notify", "task.next", "task.claim", "task.done",
                   "task.fail", "orders.list", "orders.get", "tasks.list", "ledger.verify",
                   "ca.export", "ca.crl", "outbox.list"):
        assert seen["result", method], f"no result of {method} was checked"

"""
Order query (订单查询, docs/architecture.md §1.6): a subject's orders found with a code sent
to the phone on file. The code is single use and opens a grant to the D-Bus connection that
gave it — not to another connection of the same user, not after it expires, not after the
connection closes. The querying user is a real client process running as uid 65534, so
that it owns none of the orders it finds.
"""

import json
import os
import subprocess
import time

import pytest

from conftest import (CLI, MANAGER_IFACE, MANAGER_PATH, Daemon, dbus_error, short_tmpdir,
                      write_config)
from flow_helpers import Application, Office, masked, resident_id, secret_of, unpaid_application
from office_helpers import office_info
from test_access import spawn_nobody
from test_new_flow import daemon_on_own_bus

ERR_NOT_FOUND = "org.certseal.Error.NotFound"
ERR_CODE_INVALID = "org.certseal.Error.CodeInvalid"
ERR_TOO_MANY = "org.certseal.Error.TooManyAttempts"
ERR_RATE_LIMITED = "org.certseal.Error.RateLimited"
ERR_INVALID_INPUT = "org.certseal.Error.InvalidInput"
REFUSED = {"org.freedesktop.DBus.Error.UnknownObject", "org.freedesktop.DBus.Error.AccessDenied",
           "org.certseal.Error.AccessDenied"}
GRANT_S = 3

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root to run a client as uid 65534")

# Runs as uid 65534: D-Bus calls on named connections, one JSON request per stdin line,
# one JSON answer per stdout line. {"conn": "A", "close": true} closes a connection.
CHILD = r"""
import json, sys
import dbus
conns = {}
address = sys.argv[1]
for line in sys.stdin:
    req = json.loads(line)
    name = req["conn"]
    if req.get("close"):
        conns.pop(name).close()
        print(json.dumps({"ok": True}), flush=True)
        continue
    if name not in conns:
        conns[name] = dbus.bus.BusConnection(address)
    args = req["args"]
    if req["sig"] == "a{sv}":
        args = [dbus.Dictionary(args[0], signature="sv")]
    try:
        r = conns[name].call_blocking("org.certseal.CertSeal1", req["path"], req["iface"],
                                      req["method"], req["sig"], args, timeout=10)
        out = {"ok": True, "value": json.loads(json.dumps(r, default=str))}
    except dbus.exceptions.DBusException as e:
        out = {"ok": False, "error": e.get_dbus_name(), "message": e.get_dbus_message()}
    print(json.dumps(out), flush=True)
"""


class Stranger:
    """A user (uid 65534) with D-Bus connections of its own."""

    def __init__(self, bus):
        self.proc = spawn_nobody(CHILD, bus.address, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE)

    def call(self, conn, path, iface, method, sig="", args=()):
        self.proc.stdin.write(json.dumps({"conn": conn, "path": path, "iface": iface,
                                          "method": method, "sig": sig,
                                          "args": list(args)}) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def manager(self, conn, method, sig, *args):
        return self.call(conn, MANAGER_PATH, MANAGER_IFACE, method, sig, args)

    def send_code(self, conn, id_number, vendor=""):
        return self.manager(conn, "SendQueryCode", "sss", vendor, "person", id_number)

    def find(self, conn, id_number, code, vendor="", method="FindOrders"):
        return self.manager(conn, method, "ssss", vendor, "person", id_number, code)

    def state(self, conn, path):
        return self.call(conn, path, "org.freedesktop.DBus.Properties", "Get", "ss",
                         ("org.certseal.CertSeal1.Order", "State"))

    def close(self, conn):
        self.proc.stdin.write(json.dumps({"conn": conn, "close": True}) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def qdaemon(bus):
    """A daemon whose grants last GRANT_S seconds, and whose codes may follow each other."""
    workdir = short_tmpdir("csq-")
    conf = write_config(os.path.join(workdir, "certseald.conf"),
                        sms={"query_grant_s": GRANT_S, "resend_cooldown_s": 0,
                             "daily_cap": 1000, "query_codes_per_uid_hour": 1000,
                             "query_codes_per_subject_day": 1000})
    d = Daemon(bus, config=conf)
    d.start()
    office_info(d.state_dir)
    yield d
    d.cleanup()


@pytest.fixture(scope="module")
def office(qdaemon):
    return Office(qdaemon.state_dir)


@pytest.fixture
def stranger(bus, qdaemon):
    s = Stranger(bus)
    yield s
    s.stop()


def query_code(office, phone, mark):
    msg = office.wait_message("sms", to=phone, template="query_code", after=mark)
    assert msg is not None, f"no query_code message to {phone}"
    return secret_of(msg)


def test_an_unknown_subject_is_not_found_and_nothing_is_sent(qdaemon, client, office,
                                                            stranger):
    mark = office.mark("sms")
    r = stranger.send_code("A", resident_id(987654))
    assert not r["ok"] and r["error"] == ERR_NOT_FOUND, r
    assert "no certificate business" in r["message"]
    # A subject with an order that was never submitted is not known by any phone either.
    Application(client, office, "person", n=987655)
    r = stranger.send_code("A", resident_id(987655))
    assert r["error"] == ERR_NOT_FOUND, r
    assert office.messages("sms", template="query_code", after=mark) == []
    # A malformed number is refused naming the field.
    r = stranger.send_code("A", "110105194912310021")
    assert r["error"] == ERR_INVALID_INPUT and r["message"].startswith("id_number: "), r


def test_a_code_grants_the_connection_that_gave_it_and_no_other(qdaemon, client, office,
                                                               stranger):
    a = unpaid_application(client, office)
    id_number = a.fields["id_number"]
    mark = office.mark("sms")
    r = stranger.send_code("A", id_number)
    assert r["ok"] and r["value"] == masked(a.handler_phone), r
    code = query_code(office, a.handler_phone, mark)
    assert len(code) == 6 and code.isdigit()

    # Before the code: the order is not the stranger's.
    assert stranger.state("A", a.order.path).get("error") in REFUSED
    r = stranger.find("A", id_number, code)
    assert r["ok"] and r["value"] == [a.order.path], r
    assert stranger.state("A", a.order.path)["value"] == "unpaid"
    # The grant, not the code, lets A look again; the code is used up.
    assert stranger.find("A", id_number, "")["value"] == [a.order.path]
    r = stranger.find("A", id_number, code)
    assert r["error"] == ERR_CODE_INVALID and "already used" in r["message"], r
    # Another connection of the same user has no grant and cannot reuse the code.
    r = stranger.find("B", id_number, "")
    assert r["error"] == ERR_INVALID_INPUT and "code" in r["message"], r
    r = stranger.find("B", id_number, code)
    assert r["error"] == ERR_CODE_INVALID and "already used" in r["message"], r
    assert stranger.state("B", a.order.path).get("error") in REFUSED
    # The grant ends with its connection.
    stranger.close("A")
    assert stranger.state("A", a.order.path).get("error") in REFUSED
    assert stranger.find("A", id_number, "")["error"] == ERR_INVALID_INPUT


def test_the_grant_expires(qdaemon, client, office, stranger):
    a = unpaid_application(client, office)
    mark = office.mark("sms")
    stranger.send_code("A", a.fields["id_number"])
    code = query_code(office, a.handler_phone, mark)
    assert stranger.find("A", a.fields["id_number"], code)["ok"]
    assert stranger.state("A", a.order.path)["value"] == "unpaid"
    time.sleep(GRANT_S + 0.5)
    assert stranger.state("A", a.order.path).get("error") in REFUSED
    assert stranger.find("A", a.fields["id_number"], "")["error"] == ERR_INVALID_INPUT


def test_wrong_codes_are_counted_until_too_many(qdaemon, client, office, stranger):
    a = unpaid_application(client, office)
    mark = office.mark("sms")
    stranger.send_code("A", a.fields["id_number"])
    code = query_code(office, a.handler_phone, mark)
    wrong = f"{(int(code) + 1) % 1000000:06d}"
    for left in (4, 3, 2, 1):
        r = stranger.find("A", a.fields["id_number"], wrong)
        assert r["error"] == ERR_CODE_INVALID and f"{left} tries left" in r["message"], r
    r = stranger.find("A", a.fields["id_number"], wrong)
    assert r["error"] == ERR_TOO_MANY, r
    # Dead: even the right code no longer works.
    r = stranger.find("A", a.fields["id_number"], code)
    assert r["error"] == ERR_TOO_MANY, r
    assert stranger.state("A", a.order.path).get("error") in REFUSED


def test_an_unapproved_subject_shows_only_the_orders_of_the_phone_that_got_the_code(
        qdaemon, client, office, stranger):
    n = 900123
    first = unpaid_application(client, office, n=n)
    # Someone else applied for the same person number with their own phone, later.
    other_phone = "13700999123"
    second = unpaid_application(client, office, n=n, phone=other_phone)
    mark = office.mark("sms")
    r = stranger.send_code("A", first.fields["id_number"])
    # The latest submitted order's phone gets it.
    assert r["value"] == masked(other_phone), r
    code = query_code(office, other_phone, mark)
    r = stranger.find("A", first.fields["id_number"], code)
    assert r["value"] == [second.order.path], r
    assert stranger.state("A", first.order.path).get("error") in REFUSED


def test_a_registered_subject_gets_the_code_on_the_registry_phone_and_sees_all_its_orders(
        qdaemon, client, office, stranger):
    n = 900456
    first = unpaid_application(client, office, n=n)
    first.pay()
    first.approve()  # the reviewer's approval records the subject and its phone
    second = unpaid_application(client, office, n=n, phone="13700999456")
    mark = office.mark("sms")
    r = stranger.send_code("A", first.fields["id_number"])
    assert r["value"] == masked(first.handler_phone), r
    code = query_code(office, first.handler_phone, mark)
    r = stranger.find("A", first.fields["id_number"], code)
    assert r["value"] == [second.order.path, first.order.path], r  # newest first
    assert stranger.state("A", first.order.path)["value"] == "approved"


def test_an_unfinished_order_found_by_query_is_continued_from_the_new_connection(
        qdaemon, client, office, stranger):
    a = unpaid_application(client, office)
    mark = office.mark("sms")
    stranger.send_code("A", a.fields["id_number"])
    code = query_code(office, a.handler_phone, mark)
    assert stranger.find("A", a.fields["id_number"], code)["ok"]
    actions = stranger.call("A", a.order.path, "org.freedesktop.DBus.Properties", "Get", "ss",
                            ("org.certseal.CertSeal1.Order", "NextActions"))
    assert "StartPayment" in actions["value"], actions
    r = stranger.call("A", a.order.path, "org.certseal.CertSeal1.Order", "StartPayment", "s",
                      ("sandbox",))
    assert r["ok"], r
    a.notify_paid()
    assert a.state == "in_review"
    assert stranger.state("A", a.order.path)["value"] == "in_review"
    history = stranger.call("A", a.order.path, "org.freedesktop.DBus.Properties", "Get", "ss",
                            ("org.certseal.CertSeal1.Order", "History"))
    assert history["ok"] and len(history["value"]) >= 4


def test_vendor_filters_orders_and_certificates_are_listed(qdaemon, client, office, stranger):
    a = unpaid_application(client, office)
    mark = office.mark("sms")
    stranger.send_code("A", a.fields["id_number"])
    code = query_code(office, a.handler_phone, mark)
    assert stranger.find("A", a.fields["id_number"], code, vendor="demo-b")["value"] == []
    assert stranger.find("A", a.fields["id_number"], "", vendor="demo-a")["value"] == \
        [a.order.path]
    r = stranger.find("A", a.fields["id_number"], "", vendor="nosuch")
    assert r["error"] == ERR_INVALID_INPUT and "vendor" in r["message"], r
    r = stranger.find("A", a.fields["id_number"], "", method="FindCertificates")
    assert r["ok"] and r["value"] == [], r  # nothing issued yet


def test_rate_limits_per_user_and_per_subject():
    workdir = short_tmpdir("csq-")
    conf = write_config(os.path.join(workdir, "certseald.conf"),
                        sms={"resend_cooldown_s": 0, "daily_cap": 1000,
                             "query_codes_per_uid_hour": 4, "query_codes_per_subject_day": 2})
    with daemon_on_own_bus(config=conf) as (d, client, office):
        subjects = [unpaid_application(client, office) for _ in range(3)]

        def send(a):
            return client.call(MANAGER_PATH, MANAGER_IFACE, "SendQueryCode", "sss",
                               ("", "person", a.fields["id_number"]))

        send(subjects[0])
        send(subjects[0])
        with dbus_error(ERR_RATE_LIMITED, "a day"):
            send(subjects[0])
        send(subjects[1])
        send(subjects[2])
        with dbus_error(ERR_RATE_LIMITED, "an hour"):
            send(subjects[2])
        # Refusals send nothing: four codes went out.
        assert len(office.messages("sms", template="query_code")) == 4


def test_the_resend_cooldown_holds_between_codes():
    workdir = short_tmpdir("csq-")
    conf = write_config(os.path.join(workdir, "certseald.conf"), sms={"resend_cooldown_s": 2})
    with daemon_on_own_bus(config=conf) as (d, client, office):
        a = unpaid_application(client, office)
        time.sleep(2.2)  # the submit's SMS code went to the same phone
        args = ("", "person", a.fields["id_number"])
        client.call(MANAGER_PATH, MANAGER_IFACE, "SendQueryCode", "sss", args)
        with dbus_error(ERR_RATE_LIMITED, "wait"):
            client.call(MANAGER_PATH, MANAGER_IFACE, "SendQueryCode", "sss", args)


def test_certseal_query_lists_the_orders_and_certificates(bus, qdaemon, client, office):
    a = unpaid_application(client, office)
    mark = office.mark("sms")
    p = subprocess.Popen([CLI, "--session", "--json", "query", "--subject", "person", "--id",
                          a.fields["id_number"], "--certificates"], env=bus.env(),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    code = query_code(office, a.handler_phone, mark)
    out, err = p.communicate(code + "\n", timeout=30)
    assert p.returncode == 0, out + err
    assert masked(a.handler_phone) in err
    assert code not in out and code not in err
    doc = json.loads(out)
    assert [o["id"] for o in doc["orders"]] == [a.id]
    assert doc["orders"][0]["state"] == "unpaid"
    assert doc["orders"][0]["next_action"]
    assert doc["certificates"] == []
    # A wrong code: refused, exit 1, the reason on stderr.
    mark = office.mark("sms")
    p = subprocess.Popen([CLI, "--session", "query", "--subject", "person", "--id",
                          a.fields["id_number"]], env=bus.env(), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    code = query_code(office, a.handler_phone, mark)
    out, err = p.communicate(f"{(int(code) + 1) % 1000000:06d}\n", timeout=30)
    assert p.returncode == 1 and "tries left" in err, out + err
    r = subprocess.run([CLI, "--session", "query", "--subject", "person"], env=bus.env(),
                       capture_output=True, text=True)
    assert r.returncode == 2 and "usage" in r.stderr


def test_the_office_lists_one_subjects_orders_without_a_code(qdaemon, client, office):
    a = unpaid_application(client, office)
    b = unpaid_application(client, office)
    listed = office.call("orders.list", {"subject": a.fields["id_number"].lower()})
    assert [o["id"] for o in listed] == [a.id]
    assert b.id in [o["id"] for o in office.call("orders.list")]

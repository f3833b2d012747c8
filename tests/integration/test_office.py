"""
test_office.py — the back office over ZeroMQ (docs/architecture.md §3.4, issue 5): real sockets, real
CURVE, the real daemon. Orders are of the test flow "officeflow" (tests/plugins/office),
whose steps wait for the office; the `new` flow gets its office steps in a later release.
"""

import base64
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import zmq
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from conftest import Bus, Daemon, short_tmpdir
from office_helpers import (HEARTBEAT_MS, LIVENESS, OFFICE_CLI, WECHAT_SERIALS, OfficeEnv, Worker,
                            office_info, serving_office, run_office, run_office_json)

ROLES = {"rita": "reviewer", "mark": "maker", "sam": "shipper", "cash": "cashier",
         "audrey": "auditor", "gw": "gateway", "rob": "reviewer", "ray": "reviewer"}
LEASE_LOSS_S = HEARTBEAT_MS * (LIVENESS + 2) / 1000.0


@pytest.fixture(scope="module")
def env():
    workdir = short_tmpdir("csoff-")
    yield OfficeEnv(workdir, ROLES)


@pytest.fixture(scope="module")
def office(bus, env):
    yield from serving_office(Daemon(bus, config=env.config))


def new_order(client, state="unpaid"):
    """An officeflow order, confirmed (→ unpaid) and optionally paid (→ in_review)."""
    order = client.create_order("officeflow", "org", {"vendor": "demo-a", "name": "示例"})
    order.confirm()
    assert order.state == "unpaid"
    if state == "in_review":
        rc, out = run_office_json(office_state(client), "pay-notify", order.id, "--channel", "sandbox")
        assert rc == 0, out
        assert order.state == "in_review"
    return order


_STATE = {}


def office_state(client):
    return _STATE["dir"]


@pytest.fixture(autouse=True)
def remember_state(office):
    _STATE["dir"] = office.state_dir


def wait_for(predicate, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(0.05)
    return predicate()


# --- security -------------------------------------------------------------------------

def test_info_json_shape(office):
    rc, out = run_office_json(office.state_dir, "info")
    assert rc == 0
    assert set(out) == {"endpoint", "events_endpoint", "server_public_key"}
    assert out["endpoint"].startswith("ipc://@certseal-")
    assert len(out["server_public_key"]) == 40
    st = os.stat(os.path.join(office.state_dir, "office", "server.key"))
    assert st.st_mode & 0o077 == 0


def test_unknown_key_refused_at_handshake(office):
    w = Worker(office.state_dir, keypair=tuple(k.decode() for k in zmq.curve_keypair()))
    w.send("CALL", {"id": 1, "method": "info"})
    assert w.recv(timeout=1.5) is None
    w.close()
    assert wait_for(lambda: "refused an unknown worker key" in office.log())
    admin = Worker(office.state_dir)
    assert admin.ok("info")["user"] == "admin"
    admin.close()


def test_refused_handshakes_logged_as_a_summary(env):
    """300 refused keys once gave 300 log lines; now the first one and a count."""
    own_bus = Bus()  # the module's daemon owns the name on the shared one
    d = Daemon(own_bus, config=env.config)
    try:
        d.start()
        info = office_info(d.state_dir)
        ctx = zmq.Context()
        socks, monitors = [], []
        for _ in range(300):
            pub, sec = zmq.curve_keypair()
            s = ctx.socket(zmq.DEALER)
            s.linger = 0
            s.curve_serverkey = info["server_public_key"].encode()
            s.curve_publickey, s.curve_secretkey = pub, sec
            monitors.append(s.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_AUTH))
            s.connect(info["endpoint"])
            socks.append(s)
        for m in monitors:  # each socket hears its refusal (ZAP 400)
            assert m.poll(20000), "a handshake was never refused"
        for s in socks:
            s.close(0)
        for m in monitors:
            m.close(0)
        ctx.term()
        admin = Worker(d.state_dir)
        assert admin.ok("info")["user"] == "admin"
        admin.close()
        d.stop()
        lines = [l for l in d.log().splitlines() if "unknown worker key" in l]
        assert 1 <= len(lines) <= 3, lines
        counts = [int(m) for l in lines for m in re.findall(r"refused (\d+) more", l)]
        assert counts and sum(counts) + 1 >= 300, lines
    finally:
        d.cleanup()
        own_bus.close()


def ledger_events(state_dir, kind):
    con = sqlite3.connect(f"file:{os.path.join(state_dir, 'ledger.db')}?mode=ro", uri=True)
    try:
        return [json.loads(r[0]) for r in
                con.execute("SELECT data FROM events WHERE kind = ? ORDER BY seq", (kind,))]
    finally:
        con.close()


def test_info_writes_no_event_and_repeat_reads_fold(office, client):
    order = new_order(client)
    before = ledger_events(office.state_dir, "office.call")
    w = Worker(office.state_dir)
    for _ in range(50):
        assert w.ok("info")["user"] == "admin"
    for _ in range(20):
        assert w.ok("orders.get", {"id": order.id})["id"] == order.id
    after = ledger_events(office.state_dir, "office.call")
    new = after[len(before):]
    assert [e["method"] for e in new] == ["orders.get"], new  # no info; 20 reads, one event
    w.close()


def test_reviewer_cannot_ship_or_make(office, env, client):
    order = new_order(client, "in_review")
    rita = Worker(office.state_dir, env.keys["rita"])
    assert any(o["id"] == order.id for o in rita.ok("orders.list"))
    for service in ("make", "ship", "deliver"):
        verb, body = rita.call("task.claim", {"order_id": order.id, "service": service})
        assert verb == "ERROR" and body["code"] == "AccessDenied", body
    verb, body = rita.call("payment.notify", {"channel": "sandbox", "order_id": order.id})
    assert verb == "ERROR" and body["code"] == "AccessDenied"
    rita.send("READY", {"service": "make"})
    verb, body = rita.recv()
    assert verb == "ERROR" and body["code"] == "AccessDenied"
    rita.close()
    r = run_office(office.state_dir, "make", order.id, "--key", "K1", key=env.keys["rita"])
    assert r.returncode == 1 and "AccessDenied" in r.stderr
    r = run_office(office.state_dir, "ship", order.id, "--tracking", "SF1", key=env.keys["rita"])
    assert r.returncode == 1 and "AccessDenied" in r.stderr
    # A gateway holds no office role: it cannot read orders.
    gw = Worker(office.state_dir, env.keys["gw"])
    verb, body = gw.call("orders.list")
    assert verb == "ERROR" and body["code"] == "AccessDenied"
    gw.close()


def test_insecure_public_endpoint_refused(bus, env, tmp_dir):
    from conftest import write_config
    cfg = write_config(os.path.join(tmp_dir, "insecure.conf"), env.config,
                       office={"endpoint": "tcp://0.0.0.0:47123", "curve": "false"})
    d = Daemon(bus, config=cfg)
    try:
        d.start(wait=False)
        d.proc.wait(timeout=10)
        assert d.proc.returncode != 0
        assert "CURVE is required" in d.log()
    finally:
        d.cleanup()


# --- the whole office path through certseal-office ------------------------------------

def test_cli_flow_review_make_ship_deliver(office, env, client):
    order = new_order(client, "in_review")
    sub = zmq.Context.instance().socket(zmq.SUB)
    info = office_info(office.state_dir)
    from office_helpers import read_key_file
    pub, sec = read_key_file(env.keys["audrey"])
    sub.curve_serverkey = info["server_public_key"].encode()
    sub.curve_publickey, sub.curve_secretkey = pub.encode(), sec.encode()
    sub.setsockopt(zmq.SUBSCRIBE, b"order.")
    sub.connect(info["events_endpoint"])
    time.sleep(0.3)

    rc, task = run_office_json(office.state_dir, "review", "next", key=env.keys["rita"])
    assert rc == 0 and task["service"] == "review"
    rc, out = run_office_json(office.state_dir, "review", "approve", task["order_id"], "--note",
                              "材料齐全", key=env.keys["rita"])
    assert rc == 0 and out["committed"] is True
    if task["order_id"] != order.id:  # an older test's order came first
        run_office_json(office.state_dir, "review", "approve", order.id, key=env.keys["rita"])
    assert order.state == "approved"
    assert run_office_json(office.state_dir, "make", order.id, "--key", "VK0001",
                           key=env.keys["mark"])[0] == 0
    assert run_office_json(office.state_dir, "ship", order.id, "--tracking", "SF1234567890",
                           key=env.keys["sam"])[0] == 0
    assert run_office_json(office.state_dir, "deliver", order.id, key=env.keys["sam"])[0] == 0
    assert order.state == "completed"

    topics = []
    while sub.poll(500):
        topic, body = sub.recv_multipart()
        if json.loads(body)["order_id"] == order.id:
            topics.append(topic.decode())
    sub.close(0)
    assert topics == ["order.approved", "order.made", "order.shipped", "order.completed"]

    rc, shown = run_office_json(office.state_dir, "order", "show", order.id, key=env.keys["audrey"])
    assert rc == 0
    kinds = [h["kind"] for h in shown["history"] if h["kind"] not in ("office.call",)]
    assert kinds == ["created", "confirm", "pay", "approve", "make", "ship", "deliver"]
    actors = {h["kind"]: h["actor"] for h in shown["history"]}
    assert actors["approve"] == "office:rita" and actors["ship"] == "office:sam"
    assert any(h["kind"] == "office.call" and h["actor"] == "office:audrey" for h in shown["history"])
    rc, out = run_office_json(office.state_dir, "ledger", "verify", key=env.keys["audrey"])
    assert rc == 0 and out["ok"] is True


def test_commands_without_an_engine_side_fail_clearly(office, env, client):
    order = client.create_order("officeflow", "org", {"vendor": "demo-a"})  # draft
    r = run_office(office.state_dir, "review", "approve", order.id)
    assert r.returncode == 1 and f"order {order.id} has no open review task" in r.stderr
    r = run_office(office.state_dir, "refund", order.id)
    assert r.returncode == 1 and "WrongState" in r.stderr


def test_ca_export_and_crl_are_pem_openssl_verifies(office, env, tmp_dir):
    r = run_office(office.state_dir, "ca", "export", "--vendor", "demo-a", key=env.keys["audrey"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("-----BEGIN CERTIFICATE-----") == 3  # root, issuing, seal maker
    chain = os.path.join(tmp_dir, "demo-a-ca.pem")
    with open(chain, "w") as f:
        f.write(r.stdout)
    numbers = []
    for _ in range(2):  # regenerated on demand: a new CRL number each time
        r = run_office(office.state_dir, "ca", "crl", "--vendor", "demo-a", key=env.keys["audrey"])
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("-----BEGIN X509 CRL-----")
        crl = os.path.join(tmp_dir, "demo-a.crl.pem")
        with open(crl, "w") as f:
            f.write(r.stdout)
        v = subprocess.run(["openssl", "crl", "-in", crl, "-CAfile", chain, "-noout", "-verify",
                            "-crlnumber"], capture_output=True, text=True)
        assert "verify OK" in v.stderr + v.stdout, v.stderr + v.stdout
        numbers.append(int(v.stdout.strip().split("=")[1], 16))
    assert numbers[1] > numbers[0]
    # Every vendor at once, and the auditor's business only.
    rc, out = run_office_json(office.state_dir, "ca", "crl")
    assert rc == 0 and sorted(x["vendor"] for x in out) == ["demo-a", "demo-b"]
    r = run_office(office.state_dir, "ca", "crl", "--vendor", "acme")
    assert r.returncode != 0 and "vendor: no vendor profile named 'acme'" in r.stderr
    r = run_office(office.state_dir, "ca", "export", key=env.keys["rita"])
    assert r.returncode == 1 and "AccessDenied" in r.stderr


# --- leases ---------------------------------------------------------------------------

HOLDER = r"""
import json, sys, time, zmq
sys.path.insert(0, sys.argv[1])
from office_helpers import Worker
w = Worker(sys.argv[2], sys.argv[3])
w.send("READY", {"service": "review"})
while True:
    got = w.recv(timeout=10)
    if got and got[0] == "TASK":
        print(json.dumps(got[1]), flush=True)
        break
while True:  # hold the lease, heartbeating like a busy worker
    w.send("HEARTBEAT")
    time.sleep(0.1)
"""


def drain_review_queue(office):
    """Approve every queued review task so the next test sees only its own."""
    admin = Worker(office.state_dir)
    while True:
        t = admin.ok("task.next", {"service": "review"})
        if t is None:
            break
        admin.ok("task.done", {"lease": t["lease"], "result": {"decision": "approve"}})
    admin.close()


def test_killed_worker_loses_lease_and_effect_applies_once(office, env, client):
    drain_review_queue(office)
    order = new_order(client, "in_review")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, os.path.dirname(__file__),
                               office.state_dir, env.keys["rob"]],
                              stdout=subprocess.PIPE, text=True)
    try:
        first = json.loads(holder.stdout.readline())
        assert first["order_id"] == order.id
        time.sleep(LEASE_LOSS_S)  # busy but heartbeating: the lease holds
        audrey = Worker(office.state_dir, env.keys["audrey"])
        held = [t for t in audrey.ok("tasks.list", {"service": "review"}) if t["order_id"] == order.id]
        assert held[0]["state"] == "leased" and held[0]["lease_user"] == "rob"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()

    ray = Worker(office.state_dir, env.keys["ray"])
    ray.send("READY", {"service": "review"})
    got = ray.recv(timeout=LEASE_LOSS_S + 3)
    assert got is not None and got[0] == "TASK", got
    task = got[1]
    assert task["task_id"] == first["task_id"] and task["lease"] != first["lease"]
    ray.send("DONE", {"lease": task["lease"], "result": {"decision": "approve"}})
    verb, body = ray.recv()
    assert verb == "RESULT" and body["result"]["committed"] is True
    assert order.state == "approved"
    # The dead worker's lease, replayed by anyone holding rob's key, is refused.
    rob = Worker(office.state_dir, env.keys["rob"])
    rob.send("DONE", {"lease": first["lease"], "result": {"decision": "reject"}})
    verb, body = rob.recv()
    assert verb == "ERROR" and body["code"] == "WrongState" and "lease" in body["message"]
    # …and so is a retry of the DONE that committed.
    ray.send("DONE", {"lease": task["lease"], "result": {"decision": "approve"}})
    verb, body = ray.recv()
    assert verb == "ERROR" and body["code"] == "WrongState"
    history = audrey.ok("orders.get", {"id": order.id})["history"]
    assert [h["kind"] for h in history].count("approve") == 1
    assert order.state == "approved"
    for w in (ray, rob, audrey):
        w.close()


def test_silent_worker_stale_done_refused(office, env, client):
    drain_review_queue(office)
    order = new_order(client, "in_review")
    rob = Worker(office.state_dir, env.keys["rob"])
    rob.send("READY", {"service": "review"})
    verb, task = rob.recv()
    assert verb == "TASK" and task["order_id"] == order.id
    time.sleep(LEASE_LOSS_S)  # silent: no heartbeats
    admin = Worker(office.state_dir)
    t = [t for t in admin.ok("tasks.list", {"service": "review"}) if t["order_id"] == order.id][0]
    assert t["state"] == "queued"
    rob.send("DONE", {"lease": task["lease"], "result": {"decision": "approve"}})
    verb, body = rob.recv(heartbeat=False)
    assert verb == "ERROR" and body["code"] == "WrongState"
    assert order.state == "in_review"
    drain_review_queue(office)
    assert order.state == "approved"
    rob.close()
    admin.close()


def test_tasks_survive_restart(office, client):
    drain_review_queue(office)
    queued = new_order(client, "in_review")
    leased = new_order(client, "in_review")
    admin = Worker(office.state_dir)
    held = admin.ok("task.claim", {"order_id": leased.id, "service": "review"})
    admin.close()
    office.stop()
    office.start()
    admin = Worker(office.state_dir)
    tasks = {t["order_id"]: t for t in admin.ok("tasks.list", {"service": "review"})}
    assert tasks[queued.id]["state"] == "queued"
    assert tasks[leased.id]["state"] == "queued"  # leases do not outlive the daemon
    verb, body = admin.call("task.done", {"lease": held["lease"], "result": {"decision": "approve"}})
    assert verb == "ERROR" and body["code"] == "WrongState"
    for o in (queued, leased):
        rc, out = run_office_json(office.state_dir, "review", "reject", o.id, "--note", "模糊")
        assert rc == 0, out
        assert client.order(o.id).state == "rejected"
    admin.close()


# --- malformed traffic ----------------------------------------------------------------

@pytest.mark.parametrize("frames", [
    [b"CSO2", b"CALL", b'{"id":1,"method":"info"}'],
    [b"CSO1"],
    [b"CSO1", b"CALL"],
    [b"CSO1", b"CALL", b"{not json"],
    [b"CSO1", b"CALL", b"[1,2]"],
    [b"CSO1", b"CALL", b"\xff\xfe"],
    [b"CSO1", b"FROB", b"{}"],
    [b"CSO1", b"TASK", b'{"lease":"x"}'],
    [b"CSO1", b"CALL", b'{"id":1}'],
    [b"CSO1", b"CALL", b'{"id":1,"method":"info"}', b"extra"],
    [b"CSO1", b"CALL", b'{"id":1e999999,"method":"info"}'],
    [b"CSO1", b"CALL", b'{"id":{"a":1},"method":"info"}'],
    [b"CSO1", b"CALL", b'{"id":2.5,"method":"info"}'],
    [b"CSO1", b"CALL", b'{"id":1,"method":"info\\u0000evil"}'],
], ids=["wrong-tag", "one-frame", "no-body", "invalid-json", "not-object", "not-utf8",
        "unknown-verb", "daemon-verb", "no-method", "extra-frame", "id-not-finite", "id-object",
        "id-fraction", "method-nul"])
def test_malformed_traffic_gets_error(office, frames):
    w = Worker(office.state_dir)
    w.send(None, raw=frames)
    raw = [b"CSO1", b"HEARTBEAT"]
    while raw[1] == b"HEARTBEAT":
        assert w.sock.poll(2000), "no answer"
        raw = w.sock.recv_multipart(zmq.NOBLOCK)
    assert raw[1] == b"ERROR", raw
    got = ("ERROR", json.loads(raw[2], parse_constant=lambda c: pytest.fail(f"not JSON: {c}")))
    assert got[1]["code"] == "InvalidInput"
    assert got[1]["id"] is None
    assert w.ok("info")["user"] == "admin"
    w.close()


def test_deeply_nested_body_refused_daemon_keeps_serving(office):
    """100,000 arrays deep (200 KB, under the body limit) overflowed json-glib's stack."""
    w = Worker(office.state_dir)
    deep = b"[" * 100000 + b"]" * 100000
    body = b'{"id":1,"method":"info","params":' + deep + b"}"
    w.send(None, raw=[b"CSO1", b"CALL", body])
    got = w.recv(timeout=5)
    assert got is not None and got[0] == "ERROR", got
    assert got[1]["code"] == "InvalidInput"
    assert "nested deeper than 64" in got[1]["message"], got
    assert w.ok("info")["user"] == "admin"
    w.close()
    assert office.running


def test_strings_with_nul_refused(office, client):
    """An id "<id>\\u0000junk" once read as "<id>": a C string ends at the NUL."""
    order = new_order(client)
    w = Worker(office.state_dir)
    assert w.ok("orders.get", {"id": order.id})["id"] == order.id
    w.send("CALL", {"id": 99, "method": "orders.get", "params": {"id": order.id + "\u0000junk"}})
    got = w.recv(timeout=5)
    assert got is not None and got[0] == "ERROR", got
    assert got[1]["code"] == "InvalidInput" and "U+0000" in got[1]["message"], got
    w.close()


def test_errors_quote_little_of_a_bad_value_and_count_frames(office):
    w = Worker(office.state_dir)
    w.send(None, raw=[b"CSO1", b"CALL", b'{"id":1,"method":"info"}'] + [b"x"] * 97)
    got = w.recv(timeout=5)
    assert got is not None and got[0] == "ERROR", got
    assert got[1]["message"].startswith("frames: 100, at most 3"), got
    # A method name of 500 KB with a terminal escape and a newline in it.
    method = "\x1b[31m" + "m" * 500000 + "\nforged log line"
    verb, body = w.call("x" + method)
    assert verb == "ERROR" and body["code"] == "InvalidInput", body
    assert len(body["message"]) < 200, len(body["message"])
    assert "\x1b" not in body["message"] and "\n" not in body["message"], body
    assert "\\x1b[31m" in body["message"], body
    verb, body = w.call("orders.get", {"id": method})
    assert verb == "ERROR" and body["code"] == "NotFound", body
    assert len(body["message"]) < 200 and "\x1b" not in body["message"], body
    w.close()


def test_64mb_body_dropped_daemon_keeps_serving(office):
    w = Worker(office.state_dir)
    w.send(None, raw=[b"CSO1", b"CALL", b"x" * (64 << 20)])
    # Silent while waiting: a heartbeat on the reconnected socket would be told to READY.
    assert w.recv(timeout=1.5, heartbeat=False) is None
    w.close()
    other = Worker(office.state_dir)
    assert other.ok("info")["user"] == "admin"
    other.close()


# --- payment notifications ------------------------------------------------------------

def notify(state_dir, key, params):
    w = Worker(state_dir, key)
    try:
        return w.call("payment.notify", params)
    finally:
        w.close()


def test_alipay_notifications(office, env, client):
    cash = env.keys["cash"]
    order = new_order(client)
    for label, form, code in [
        ("tampered", env.alipay_form(order.id, tamper={"total_amount": "0.01"}), "InvalidInput"),
        ("wrong amount", env.alipay_form(order.id, total="300.00", trade_no="A2"), "InvalidInput"),
        ("not paid", env.alipay_form(order.id, status="WAIT_BUYER_PAY", trade_no="A3"), "InvalidInput"),
    ]:
        verb, body = notify(office.state_dir, cash, {"channel": "alipay", "form": form})
        assert verb == "ERROR" and body["code"] == code, (label, body)
        assert order.state == "unpaid", label
    good = env.alipay_form(order.id, trade_no="A1")
    verb, body = notify(office.state_dir, cash, {"channel": "alipay", "form": good})
    assert verb == "RESULT" and body["result"]["applied"] is True, body
    assert order.state == "in_review"
    verb, body = notify(office.state_dir, cash, {"channel": "alipay", "form": good})
    assert verb == "RESULT" and body["result"]["applied"] is False
    assert body["result"]["duplicate"] is True
    history = Worker(office.state_dir).ok("orders.get", {"id": order.id})["history"]
    assert [h["kind"] for h in history].count("pay") == 1
    # Through the CLI too: the form from a file.
    other = new_order(client)
    path = os.path.join(env.workdir, "alipay.form")
    with open(path, "w") as f:
        f.write(env.alipay_form(other.id, trade_no="A9"))
    rc, out = run_office_json(office.state_dir, "pay-notify", other.id, "--channel", "alipay",
                              "--form", path, key=cash)
    assert rc == 0 and out["applied"] is True
    assert other.state == "in_review"


def test_wechat_notifications(office, env, client):
    cash = env.keys["cash"]
    order = new_order(client)
    cases = [
        ("stale", env.wechat_notification(order.id, transaction_id="W1", ts=int(time.time()) - 600)),
        ("tampered", env.wechat_notification(order.id, transaction_id="W1", tamper_body=True)),
        ("wrong amount", env.wechat_notification(order.id, total=1, transaction_id="W2")),
        ("not paid", env.wechat_notification(order.id, transaction_id="W3", state="NOTPAY")),
    ]
    for label, (headers, body_text) in cases:
        verb, body = notify(office.state_dir, cash,
                            {"channel": "wechat", "headers": headers, "body": body_text})
        assert verb == "ERROR" and body["code"] == "InvalidInput", (label, body)
        assert order.state == "unpaid", label
    headers, body_text = env.wechat_notification(order.id, transaction_id="W1")
    verb, body = notify(office.state_dir, cash, {"channel": "wechat", "headers": headers, "body": body_text})
    assert verb == "RESULT" and body["result"]["applied"] is True, body
    assert order.state == "in_review"
    verb, body = notify(office.state_dir, cash, {"channel": "wechat", "headers": headers, "body": body_text})
    assert verb == "RESULT" and body["result"]["duplicate"] is True
    assert order.state == "in_review"


def test_wechat_platform_certificates_picked_by_serial(office, env, client):
    """A platform key rotation: both certificates held, each notification names its own."""
    cash = env.keys["cash"]
    old, new = WECHAT_SERIALS
    order = new_order(client)
    # Signed by the new key but naming the old serial: the old key does not verify it.
    headers, body_text = env.wechat_notification(order.id, transaction_id="WS1", serial=new)
    headers["Wechatpay-Serial"] = old
    verb, body = notify(office.state_dir, cash,
                        {"channel": "wechat", "headers": headers, "body": body_text})
    assert verb == "ERROR" and body["code"] == "InvalidInput", body
    assert "signature" in body["message"], body
    # An unknown serial is refused naming it.
    headers["Wechatpay-Serial"] = "0123456789ABCDEF"
    verb, body = notify(office.state_dir, cash,
                        {"channel": "wechat", "headers": headers, "body": body_text})
    assert verb == "ERROR" and body["code"] == "InvalidInput", body
    assert "0123456789ABCDEF" in body["message"], body
    del headers["Wechatpay-Serial"]
    verb, body = notify(office.state_dir, cash,
                        {"channel": "wechat", "headers": headers, "body": body_text})
    assert verb == "ERROR" and "Wechatpay-Serial" in body["message"], body
    assert order.state == "unpaid"
    # The new key with its own serial verifies.
    headers, body_text = env.wechat_notification(order.id, transaction_id="WS1", serial=new)
    verb, body = notify(office.state_dir, cash,
                        {"channel": "wechat", "headers": headers, "body": body_text})
    assert verb == "RESULT" and body["result"]["applied"] is True, body
    assert order.state == "in_review"


def test_alipay_empty_values_are_signed(office, env, client):
    """passback_params= and buyer_id= are part of what Alipay signs (its SDK keeps them)."""
    order = new_order(client)
    form = env.alipay_form(order.id, trade_no="AE1")
    assert "buyer_id=&" in form or form.endswith("buyer_id=")
    verb, body = notify(office.state_dir, env.keys["cash"], {"channel": "alipay", "form": form})
    assert verb == "RESULT" and body["result"]["applied"] is True, body


def test_deeply_nested_signed_notification_refused(office, env):
    """A body that verifies (the gateway's key signed it) still meets the depth limit."""
    body = '{"id":"evt-deep","resource":' + "[" * 100000 + "]" * 100000 + "}"
    ts = str(int(time.time()))
    message = f"{ts}\nn0nce-deep\n{body}\n".encode()
    sig = env.wechat_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    headers = {"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": "n0nce-deep",
               "Wechatpay-Signature": base64.b64encode(sig).decode(),
               "Wechatpay-Serial": env.wechat_serial}
    verb, reply = notify(office.state_dir, env.keys["cash"],
                         {"channel": "wechat", "headers": headers, "body": body})
    assert verb == "ERROR" and reply["code"] == "InvalidInput", reply
    assert "nested deeper than 64" in reply["message"], reply
    assert office.running


# --- sandbox gateways -----------------------------------------------------------------

def test_sandbox_idle_outbox_empty_and_roles(office, env):
    rc, out = run_office_json(office.state_dir, "sms", "outbox")
    assert rc == 0 and isinstance(out, list)
    rc, out = run_office_json(office.state_dir, "mail", "outbox")
    assert rc == 0 and isinstance(out, list)
    rc, out = run_office_json(office.state_dir, "sms", "outbox", key=env.keys["rita"])
    assert rc == 1 and out["error"]["code"] == "AccessDenied"


# --- automated workers and endpoints --------------------------------------------------

def test_work_mode_serves_a_service(office, env, client):
    drain_review_queue(office)
    order = new_order(client, "in_review")
    r = run_office(office.state_dir, "--json", "work", "review", "--result", '{"decision": "approve"}',
                   "--max", "1", "--heartbeat-ms", "100", key=env.keys["rita"])
    assert r.returncode == 0, r.stderr
    task = json.loads(r.stdout.splitlines()[0])
    assert task["order_id"] == order.id and task["service"] == "review"
    assert wait_for(lambda: order.state == "approved")


def test_loopback_tcp_without_curve_in_test_mode(env, tmp_dir):
    import socket
    from conftest import Bus, write_config
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = write_config(os.path.join(tmp_dir, "tcp.conf"), env.config,
                       office={"endpoint": f"tcp://127.0.0.1:{port}",
                               "events_endpoint": f"tcp://127.0.0.1:{port + 1}", "curve": "false"})
    own_bus = Bus()  # the module's daemon owns the name on the shared one
    d = Daemon(own_bus, config=cfg)
    try:
        d.start()
        info = office_info(d.state_dir)
        assert info["endpoint"] == f"tcp://127.0.0.1:{port}" and info["curve"] is False
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.linger = 0
        sock.connect(info["endpoint"])
        sock.send_multipart([b"CSO1", b"CALL", b'{"id": 1, "method": "info"}'])
        assert sock.poll(3000)
        frames = sock.recv_multipart()
        assert frames[1] == b"RESULT" and json.loads(frames[2])["result"]["user"] == "local"
        sock.close(0)
    finally:
        d.cleanup()
        own_bus.close()

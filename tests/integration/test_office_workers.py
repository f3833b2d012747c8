"""
test_office_workers.py — worker keys without a restart (issue 19): office_dir re-read on
SIGHUP and when its files change, a broken file refused with its file, line and reason while
the others keep working (at start-up too), a removed key's connection losing its lease, and
`certseal-office keygen --install` writing where the running daemon reads. Real daemon,
real ZeroMQ, real CURVE.
"""

import os
import re
import signal

import pytest

from conftest import Daemon, short_tmpdir
from office_helpers import (LIVENESS, HEARTBEAT_MS, OfficeEnv, Worker, office_info, serving_office, run_office,
                            run_office_json)

ROLES = {"rita": "reviewer", "audrey": "auditor", "rob": "reviewer"}
LEASE_LOSS_S = HEARTBEAT_MS * (LIVENESS + 2) / 1000.0

def doc_example_key_file(public_key):
    """The document's own example (dbus/office-protocol.md §1, its ```ini block), comments
    after values included, with a real key in place of the placeholder."""
    from conftest import SOURCE_DIR
    with open(os.path.join(SOURCE_DIR, "dbus", "office-protocol.md"), encoding="utf-8") as f:
        text = re.search(r"```ini\n(.*?)```", f.read(), re.S).group(1)
    return re.sub(r"<40 characters[^>]*>", public_key, text)


@pytest.fixture(scope="module")
def env():
    e = OfficeEnv(short_tmpdir("csow-"), ROLES)
    # Broken before the daemon starts: one bad role on line 4, and a file not ending in .conf.
    with open(os.path.join(e.office_d, "broken.conf"), "w") as f:
        f.write("# a typo in the roles\n[worker]\nkey = %s\nroles = reviewer;boss\nuser = bad\n"
                % ("0" * 40))
    with open(os.path.join(e.office_d, "notes.txt"), "w") as f:
        f.write("not a worker\n")
    e.alice_key = os.path.join(e.workdir, "alice.key")
    rc, out = run_office_json(e.workdir, "keygen", "--output", e.alice_key)
    assert rc == 0
    with open(os.path.join(e.office_d, "alice.conf"), "w") as f:
        f.write(doc_example_key_file(out["public_key"]))
    return e


@pytest.fixture(scope="module")
def office(bus, env):
    yield from serving_office(Daemon(bus, config=env.config))


def wait_for(predicate, timeout=10.0):
    import time
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(0.05)
    return predicate()


def new_review_order(client, state_dir):
    order = client.create_order("officeflow", "org", {"vendor": "demo-a", "name": "示例"})
    order.confirm()
    rc, out = run_office_json(state_dir, "pay-notify", order.id, "--channel", "sandbox")
    assert rc == 0, out
    assert order.state == "in_review"
    return order


def info_of(state_dir, key_file, timeout=1.5):
    w = Worker(state_dir, key_file)
    try:
        got = w.call("info", timeout=timeout)
    except AssertionError:
        return None
    finally:
        w.close()
    verb, body = got
    return body.get("result") if verb == "RESULT" else None


def test_broken_file_at_start_refused_with_line_others_work(office, env):
    log = office.log()
    assert re.search(r"broken\.conf:4: \[worker\] roles: unknown role 'boss'", log), log
    assert "notes.txt: ignored: worker files in office_dir must end in .conf" in log
    assert "1 file(s) of office_dir refused" in log
    rita = Worker(office.state_dir, env.keys["rita"])
    assert rita.ok("info")["roles"] == ["reviewer"]
    rita.close()


def test_doc_example_with_comments_after_values(office, env):
    alice = Worker(office.state_dir, env.alice_key)
    info = alice.ok("info")
    assert info["user"] == "alice" and info["roles"] == ["reviewer", "maker"]
    alice.close()


def test_key_installed_while_running_connects_and_works(office, env, client):
    key = os.path.join(env.workdir, "newrev.key")
    rc, out = run_office_json(office.state_dir, "keygen", "--output", key, "--user", "newrev",
                              "--roles", "reviewer", "--install")
    assert rc == 0, out
    assert out["installed"] == os.path.join(os.path.realpath(env.office_d), "newrev.conf")
    # The daemon sees the new file by itself (no restart, no signal).
    assert wait_for(lambda: info_of(office.state_dir, key)), office.log()
    assert info_of(office.state_dir, key)["user"] == "newrev"
    order = new_review_order(client, office.state_dir)
    w = Worker(office.state_dir, key)
    task = None
    while task is None or task["order_id"] != order.id:
        r = w.ok("task.next", {"service": "review"})
        assert r is not None, "the new order's review task is not queued"
        if r["order_id"] != order.id:
            w.ok("task.done", {"lease": r["lease"], "result": {"decision": "approve"}})
        task = r
    assert w.ok("task.done", {"lease": task["lease"], "result": {"decision": "approve"}}) == {
        "committed": True}
    assert order.state == "approved"
    w.close()
    # Installing again under the same name refuses rather than replacing a key.
    rc, out = run_office_json(office.state_dir, "keygen", "--output", key + "2", "--user",
                              "newrev", "--roles", "reviewer", "--install")
    assert rc != 0 and "exists" in out["error"]["message"]


def test_sighup_rereads_and_a_file_broken_later_is_refused(office, env):
    key = os.path.join(env.workdir, "late.key")
    rc, out = run_office_json(office.state_dir, "keygen", "--output", key)
    assert rc == 0
    path = os.path.join(env.office_d, "late.conf")
    with open(path, "w") as f:
        f.write(f"[worker]\nkey = {out['public_key']}\nuser = late\nroles = auditor\n")
    mark = office.log_size()
    os.kill(office.pid, signal.SIGHUP)
    assert wait_for(lambda: "re-read (SIGHUP)" in office.log(mark)), office.log(mark)
    assert wait_for(lambda: info_of(office.state_dir, key))
    with open(path, "w") as f:
        f.write(f"[worker]\nkey = {out['public_key']}\nuser = late\nrole = auditor\n")
    assert wait_for(lambda: "late.conf:4: [worker] 'role': unknown setting" in office.log(mark))
    assert wait_for(lambda: info_of(office.state_dir, key) is None)
    # The others keep working.
    rita = Worker(office.state_dir, env.keys["rita"])
    assert rita.ok("info")["user"] == "rita"
    rita.close()


def test_removed_key_loses_its_lease(office, env, client):
    order = new_review_order(client, office.state_dir)
    rob = Worker(office.state_dir, env.keys["rob"])
    rob.send("READY", {"service": "review"})
    task = None
    while task is None or task["order_id"] != order.id:
        got = rob.recv()
        assert got is not None and got[0] == "TASK", got
        if task is not None or got[1]["order_id"] != order.id:
            rob.send("DONE", {"lease": got[1]["lease"], "result": {"decision": "approve"}})
            assert rob.recv()[0] == "RESULT"
        task = got[1]
    mark = office.log_size()
    os.unlink(os.path.join(env.office_d, "rob.conf"))
    assert wait_for(lambda: "worker rob is no longer allowed" in office.log(mark)), \
        office.log(mark)
    assert "its lease lost" in office.log(mark)
    rob.send("DONE", {"lease": task["lease"], "result": {"decision": "approve"}})
    verb, body = rob.recv()
    assert verb == "ERROR" and body["code"] == "AccessDenied" and "office_dir" in body["message"]
    assert order.state == "in_review"
    audrey = Worker(office.state_dir, env.keys["audrey"])
    t = [t for t in audrey.ok("tasks.list", {"service": "review"}) if t["order_id"] == order.id]
    assert t[0]["state"] == "queued"
    audrey.close()
    rob.close()
    # Someone else finishes it.
    rita = Worker(office.state_dir, env.keys["rita"])
    while True:
        r = rita.ok("task.next", {"service": "review"})
        assert r is not None
        rita.ok("task.done", {"lease": r["lease"], "result": {"decision": "approve"}})
        if r["order_id"] == order.id:
            break
    assert order.state == "approved"
    rita.close()


# --- the worker's life: timing announced, a reconnected worker told to send READY ---------

def raw_recv(w, timeout_ms=5000):
    import json
    assert w.sock.poll(timeout_ms), "no message"
    frames = w.sock.recv_multipart()
    return frames[1].decode(), (json.loads(frames[2]) if len(frames) > 2 else None)


def test_info_announces_heartbeat_and_liveness(office, env):
    rita = Worker(office.state_dir, env.keys["rita"])
    info = rita.ok("info")
    assert info["heartbeat_ms"] == HEARTBEAT_MS and info["liveness"] == LIVENESS
    rita.close()


def test_first_heartbeat_carries_the_timing(office, env):
    audrey = Worker(office.state_dir, env.keys["audrey"])
    audrey.send("READY", {"service": "review"})  # an auditor may not serve review
    verb, body = raw_recv(audrey)
    assert verb == "ERROR" and body["code"] == "AccessDenied"
    audrey.close()
    rita = Worker(office.state_dir, env.keys["rita"])
    rita.send("READY", {"service": "review"})
    verb, body = raw_recv(rita)
    assert verb == "HEARTBEAT" and body == {"heartbeat_ms": HEARTBEAT_MS, "liveness": LIVENESS}
    # Later heartbeats carry an empty body.
    while True:
        verb, body = raw_recv(rita)
        if verb == "TASK":  # a queued review from another test: give it back
            rita.send("FAIL", {"lease": body["lease"], "error": "not mine"})
            continue
        if verb == "HEARTBEAT":
            assert body == {}
            break
    rita.close()


def test_heartbeat_without_ready_is_told_to_send_ready(office, env):
    rita = Worker(office.state_dir, env.keys["rita"])
    rita.send("HEARTBEAT")
    verb, body = raw_recv(rita)
    assert verb == "ERROR" and body["code"] == "WrongState" and body["service"] is None
    assert "send READY" in body["message"]
    rita.send("HEARTBEAT")  # told once per connection
    rita.send("READY", {"service": "review"})
    verb, body = raw_recv(rita)
    assert verb == "HEARTBEAT" and body["heartbeat_ms"] == HEARTBEAT_MS
    rita.close()


def test_sandbox_gateways_false_keeps_gateway_tasks_for_workers(env, tmp_dir):
    from conftest import Bus, write_config
    cfg = write_config(os.path.join(tmp_dir, "nosandbox.conf"), env.config,
                       office={"sandbox_gateways": "false"})
    own_bus = Bus()  # the module's daemon owns the name on the shared one
    d = Daemon(own_bus, config=cfg)
    try:
        d.start()
        office_info(d.state_dir)
        admin = Worker(d.state_dir)
        assert admin.ok("info")["sandbox"] is False
        admin.close()
    finally:
        d.cleanup()
        own_bus.close()


def test_dev_config_has_the_sandbox_and_an_existing_office_dir(office):
    from conftest import DEV_CONF
    import configparser
    conf = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=None)
    conf.read(DEV_CONF)
    assert conf["office"]["sandbox_gateways"] == "true"
    assert os.path.isdir(conf["daemon"]["office_dir"])
    admin = Worker(office.state_dir)
    assert admin.ok("info")["sandbox"] is True
    admin.close()

"""
The ledger is tamper-evident as a whole, with MACs keyed from the vault: the chain head
(last seq and hash) and the checkpoints, and the state of every order after each of its
events. Start-up checks the chain from the last checkpoint, the head, and the orders those
events are about; the whole ledger is verified in the background after start, and a
failure makes the daemon read-only (every writing call: Unavailable "ledger failed
verification at event N", logged as critical). Real daemon, real SQLite file, private bus.
"""

import os
import re
import sqlite3

from conftest import BUS_NAME, ORG_FIELDS, Client, dbus_error, run_until, write_config
from office_helpers import run_office_json

UNAVAILABLE = "org.certseal.Error.Unavailable"


def make_ledger(make_daemon, bus, config=None, updates=3):
    """A state directory with one order and a few events, cleanly shut down."""
    d = make_daemon(**({"config": config} if config else {})).start()
    c = Client(bus)
    order = c.create_order("new", "org", ORG_FIELDS)
    for i in range(updates):
        order.update({"postcode": f"36100{i}"})
    order_id = order.id
    c.close()
    assert d.stop() == 0
    return d, order_id


def tamper(state_dir, *statements):
    con = sqlite3.connect(os.path.join(state_dir, "ledger.db"))
    try:
        for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
            con.execute(f'DROP TRIGGER "{name}"')
        for sql in statements:
            con.execute(sql)
        con.commit()
    finally:
        con.close()


def last_seq(state_dir):
    con = sqlite3.connect(os.path.join(state_dir, "ledger.db"))
    try:
        return con.execute("SELECT MAX(seq) FROM events").fetchone()[0]
    finally:
        con.close()


def assert_refused(cp, bus, *patterns):
    out = cp.stdout + cp.stderr
    assert cp.returncode == 1, f"certseald did not refuse (exit {cp.returncode}):\n{out}"
    for p in patterns:
        assert re.search(p, cp.stderr), f"stderr does not match {p!r}:\n{cp.stderr}"
    assert not bus.name_has_owner(BUS_NAME)


def test_good_ledger_starts_and_verifies_in_background(make_daemon, bus):
    d, _ = make_ledger(make_daemon, bus)
    n = last_seq(d.state_dir)
    mark = d.log_size()
    d.start()
    assert run_until(lambda: "ledger verified in the background" in d.log(mark), timeout=20), \
        d.log(mark)
    assert f"ledger verified in the background: {n} events" in d.log(mark)
    code, r = run_office_json(d.state_dir, "ledger", "verify")
    assert code == 0 and r["ok"] is True, r
    # Writing still works.
    c = Client(bus)
    order = c.create_order("new", "org", ORG_FIELDS)
    order.update({"postcode": "361009"})
    c.close()
    assert d.stop() == 0
    cp = d.run("--verify-ledger")
    assert cp.returncode == 0, cp.stdout + cp.stderr


def test_last_events_deleted_are_refused_at_start(make_daemon, bus):
    d, _ = make_ledger(make_daemon, bus)
    n = last_seq(d.state_dir)
    tamper(d.state_dir, f"DELETE FROM events WHERE seq > {n - 2}")
    cp = d.run()
    assert_refused(cp, bus, rf"ledger event {n - 1}\b", "keyed chain head")
    cp = d.run("--verify-ledger")
    assert_refused(cp, bus, rf"ledger event {n - 1}\b")


def test_orders_table_changed_directly_is_refused_at_start(make_daemon, bus):
    d, order_id = make_ledger(make_daemon, bus)
    tamper(d.state_dir, f"UPDATE orders SET state = 'confirmed' WHERE id = '{order_id}'")
    cp = d.run()
    assert_refused(cp, bus, rf"order {order_id} does not match its keyed state")


def test_changed_event_before_checkpoint_makes_the_daemon_read_only(make_daemon, bus, tmp_dir):
    conf = write_config(os.path.join(tmp_dir, "ckpt.conf"), ledger={"checkpoint_interval": 2})
    d, order_id = make_ledger(make_daemon, bus, config=conf, updates=5)
    tamper(d.state_dir, "UPDATE events SET actor = 'uid:0' WHERE seq = 2")
    # The critical log line is the point here: not fatal for this run.
    d.env = lambda: d.bus.env(G_DEBUG="", G_SLICE="always-malloc", G_MESSAGES_DEBUG="all",
                              LC_ALL="C.UTF-8")
    mark = d.log_size()
    d.start()  # opening checks from the last checkpoint on: it starts
    assert run_until(lambda: "ledger failed verification" in d.log(mark), timeout=20), \
        d.log(mark)
    log = d.log(mark)
    assert re.search(r"CRITICAL.*ledger failed verification at event 2\b", log), log
    c = Client(bus)
    order = c.order(order_id)
    # Reads answer; every write is refused, naming the event.
    assert order.get("State") == "draft"
    with dbus_error(UNAVAILABLE, "ledger failed verification at event 2"):
        order.update({"postcode": "361001"})
    with dbus_error(UNAVAILABLE, "ledger failed verification at event 2"):
        c.create_order("new", "org", ORG_FIELDS)
    # The auditor's verification (in the background too) still answers, naming the event.
    code, r = run_office_json(d.state_dir, "ledger", "verify")
    assert code != 0 and r["ok"] is False and r["bad_seq"] == 2, r
    assert "ledger event 2: hash mismatch" in r["message"], r
    c.close()
    assert d.stop() == 0
    cp = d.run("--verify-ledger")
    assert_refused(cp, bus, r"ledger event 2: hash mismatch")

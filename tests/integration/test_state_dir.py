"""
One daemon per state directory, and nothing sealed is ever orphaned: a second certseald on
the same state directory (even on another bus) is refused before it touches anything; a
ledger whose vault key went missing is refused instead of getting a fresh key that could
never open its secrets, and a vault key replaced by other bytes is refused by its check value;
--verify-ledger does not run beside a live daemon.
"""

import hashlib
import os
import sqlite3

from conftest import BUS_NAME, ORG_FIELDS, Bus, Client, Daemon
from flow_helpers import Application, Office
from office_helpers import office_info


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_second_daemon_on_the_same_state_dir_is_refused(make_daemon, bus):
    first = make_daemon().start()
    c = Client(bus)
    order = c.create_order("new", "org", ORG_FIELDS)
    other_bus = Bus()
    try:
        second = Daemon(other_bus, state_dir=first.state_dir)
        cp = second.run()
        assert cp.returncode == 1, cp.stdout + cp.stderr
        assert "in use by another certseald" in cp.stderr, cp.stderr
        assert not other_bus.name_has_owner(BUS_NAME)
        second.cleanup()
    finally:
        other_bus.close()
    # The first one is untouched and still serving.
    order.confirm()
    assert order.state == "confirmed"
    c.close()
    assert first.stop() == 0


def test_missing_vault_key_is_refused_not_replaced(make_daemon, bus):
    d = make_daemon().start()
    c = Client(bus)
    c.create_order("new", "org", ORG_FIELDS)
    c.close()
    assert d.stop() == 0
    key = os.path.join(d.state_dir, "vault.key")
    ledger = os.path.join(d.state_dir, "ledger.db")
    os.rename(key, key + ".moved")
    before = sha256_file(ledger)
    cp = d.run()
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert "vault.key is missing" in cp.stderr and "restore it" in cp.stderr, cp.stderr
    assert not os.path.exists(key), "a new vault key was created for an existing ledger"
    assert sha256_file(ledger) == before
    # With the key back, everything is there again.
    os.rename(key + ".moved", key)
    d.start()
    assert len(Client(bus).managed_objects()) == 1
    assert d.stop() == 0


def test_verify_ledger_refuses_beside_a_running_daemon(make_daemon, bus):
    d = make_daemon().start()
    cp = Daemon(bus, state_dir=d.state_dir).run("--verify-ledger")
    assert cp.returncode == 1
    assert "running certseald holds this state directory" in cp.stderr, cp.stderr
    assert d.stop() == 0
    cp = d.run("--verify-ledger")
    assert cp.returncode == 0, cp.stderr


def test_replaced_vault_key_is_refused_naming_the_file(make_daemon, bus):
    d = make_daemon().start()
    c = Client(bus)
    c.create_order("new", "org", ORG_FIELDS)
    c.close()
    assert d.stop() == 0
    key = os.path.join(d.state_dir, "vault.key")
    with open(key, "rb") as f:
        good = f.read()
    os.unlink(key)
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, bytes(b ^ 0x5A for b in good))
    os.close(fd)
    cp = d.run()
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert key in cp.stderr and "not the key" in cp.stderr, cp.stderr
    # The right key back: it starts and serves its orders.
    os.unlink(key)
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, good)
    os.close(fd)
    d.start()
    assert len(Client(bus).managed_objects()) == 1
    assert d.stop() == 0


def test_state_dir_without_a_key_check_value_gets_one(make_daemon, bus):
    d = make_daemon().start()
    assert d.stop() == 0
    check = os.path.join(d.state_dir, "vault.check")
    assert os.path.exists(check)
    os.unlink(check)
    d.start()
    assert d.stop() == 0
    assert os.path.exists(check) and os.stat(check).st_mode & 0o777 == 0o600


def test_older_state_dir_with_a_replaced_key_is_refused_by_its_sealed_secrets(make_daemon, bus):
    """Before check values existed: the check value written on the first start is proven by
    opening a sealed secret, so a replaced key is refused then too (not blessed)."""
    d = make_daemon().start()
    office_info(d.state_dir)
    c = Client(bus)
    app = Application(c, Office(d.state_dir))
    app.confirm()
    app.attach_all()
    app.submit()  # the SMS to the handler is sealed in the vault
    c.close()
    assert d.stop() == 0
    ledger = os.path.join(d.state_dir, "ledger.db")
    con = sqlite3.connect(ledger)
    try:
        sealed = con.execute("SELECT count(*) FROM secrets WHERE sealed IS NOT NULL").fetchone()[0]
    finally:
        con.close()
    assert sealed > 0
    key = os.path.join(d.state_dir, "vault.key")
    check = os.path.join(d.state_dir, "vault.check")
    with open(key, "rb") as f:
        good = f.read()
    os.unlink(check)
    os.unlink(key)
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, bytes(b ^ 0xA5 for b in good))
    os.close(fd)
    before = sha256_file(ledger)
    cp = d.run()
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert key in cp.stderr and "not the key" in cp.stderr, cp.stderr
    assert not os.path.exists(check), "a check value was kept for the wrong key"
    assert sha256_file(ledger) == before
    os.unlink(key)
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, good)
    os.close(fd)
    d.start()
    assert os.path.exists(check)
    assert d.stop() == 0

"""
Nothing acknowledged is lost (docs/architecture.md §3.5, §7): certseald SIGKILLed right after it
acknowledged a change comes back on the same state directory with every order, state and
history entry, and the event chain verifies — with `certseald --verify-ledger` and with an
independent recomputation here from the SQLite file.
"""

import hashlib
import json
import os
import shutil
import sqlite3

from conftest import BUS_NAME, ORG_FIELDS, PERSON_FIELDS, Client


def recompute_chain(db_path, tmp_dir):
    """Recompute every event's hash from a copy of the ledger (the original is never
    opened for writing). Returns the number of events; asserts on any mismatch."""
    copy = os.path.join(tmp_dir, "ledger-copy.db")
    shutil.copyfile(db_path, copy)
    for suffix in ("-wal",):
        if os.path.exists(db_path + suffix):
            shutil.copyfile(db_path + suffix, copy + suffix)
    con = sqlite3.connect(copy)
    try:
        rows = con.execute("SELECT seq, time, order_id, kind, from_state, to_state, actor, data, "
                           "hash FROM events ORDER BY seq").fetchall()
    finally:
        con.close()
    prev = bytes(32)
    for i, (seq, t, order_id, kind, from_state, to_state, actor, data, stored) in enumerate(rows):
        assert seq == i + 1, f"event seqs are not contiguous: {seq} at position {i + 1}"
        canonical = json.dumps(
            {"seq": seq, "time": t, "order_id": order_id, "kind": kind, "from": from_state,
             "to": to_state, "actor": actor,
             "data": json.loads(data) if data is not None else None},
            sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        digest = hashlib.sha256(prev + canonical).digest()
        if isinstance(stored, str):
            assert stored.lower() == digest.hex(), f"event {seq}: stored hash differs from " \
                f"sha256(prev ‖ {canonical!r})"
        else:
            assert bytes(stored) == digest, f"event {seq}: stored hash differs from " \
                f"sha256(prev ‖ {canonical!r})"
        prev = digest
    return len(rows)


def test_order_survives_sigkill_right_after_create_order(make_daemon, bus, tmp_dir):
    d = make_daemon().start()
    c = Client(bus)
    order = c.create_order("new", "person", PERSON_FIELDS)
    d.kill()  # the very next thing after CreateOrder's reply
    c.close()

    d.start()
    c = Client(bus)
    try:
        o = c.order(order.id)
        assert o.state == "draft"
        history = o.get("History")
        assert [(h[1], h[2]) for h in history] == [("draft", "created")]
        assert o.get("Fields")["id_number"] == PERSON_FIELDS["id_number"]
        assert o.path in c.managed_objects()
    finally:
        c.close()
    assert d.stop() == 0
    cp = d.run("--verify-ledger")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    # The order's event, after the first start's three CA certificates of each of the two
    # demo vendors.
    assert "chain verified, 7 events" in cp.stdout, cp.stdout
    assert recompute_chain(os.path.join(d.state_dir, "ledger.db"), tmp_dir) == 1 + 3 * 2


def test_acknowledged_changes_survive_sigkill(make_daemon, bus, tmp_dir):
    d = make_daemon().start()
    c = Client(bus)
    org = c.create_order("new", "org", ORG_FIELDS)
    org.update({"address": "福建省厦门市思明区示例路 7 号"})
    person = c.create_order("new", "person", PERSON_FIELDS)
    person.cancel()
    draft = c.create_order("new", "org", dict(ORG_FIELDS, email="later@example.cn"))
    org.confirm()
    d.kill()  # right after the acknowledged reply, before anything else can happen
    c.close()

    d.start()
    c = Client(bus)
    try:
        expect = {org.id: ("confirmed", ["created", "updated", "confirm"]),
                  person.id: ("cancelled", ["created", "cancel"]),
                  draft.id: ("draft", ["created"])}
        for order_id, (state, notes) in expect.items():
            o = c.order(order_id)
            assert o.state == state, order_id
            history = o.get("History")
            assert [h[2] for h in history] == notes, order_id
            assert history[-1][1] == state
        assert c.order(org.id).get("Fields")["address"] == "福建省厦门市思明区示例路 7 号"
        assert c.order(draft.id).get("Fields")["email"] == "later@example.cn"
        listed = c.managed_objects()
        for o in (org, person, draft):
            assert o.path in listed
        # The restarted daemon goes on where it stopped.
        c.order(draft.id).confirm()
        assert c.order(draft.id).state == "confirmed"
    finally:
        c.close()
    assert d.stop() == 0

    cp = d.run("--verify-ledger")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    n = recompute_chain(os.path.join(d.state_dir, "ledger.db"), tmp_dir)
    # created×3, updated, cancel, confirm, confirm; and at first start the three CA
    # certificates (root, issuing, seal maker) of each of the two demo vendors
    assert n == 7 + 3 * 2


def test_history_is_identical_after_a_restart(make_daemon, bus):
    d = make_daemon().start()
    c = Client(bus)
    o = c.create_order("new", "org", ORG_FIELDS)
    o.confirm()
    before = o.get_all()
    c.close()
    d.kill()
    d.start()
    c = Client(bus)
    try:
        after = c.order(o.id).get_all()
    finally:
        c.close()
    for prop in ("Id", "State", "History", "CreatedAt", "UpdatedAt", "AmountFen", "Vendor"):
        assert after[prop] == before[prop], prop


def test_sigterm_exits_0_and_releases_the_name(make_daemon, bus):
    d = make_daemon().start()
    c = Client(bus)
    c.create_order("new", "org", ORG_FIELDS)
    c.close()
    assert bus.name_has_owner(BUS_NAME)
    assert d.stop() == 0
    assert not bus.name_has_owner(BUS_NAME)
    cp = d.run("--verify-ledger")
    assert cp.returncode == 0, cp.stdout + cp.stderr

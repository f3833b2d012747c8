"""
Refusals before the main loop are fatal and clear (docs/architecture.md §3.5, daemon/base/cs-config.h): a
broken configuration or vendor profile names the file and the line; a ledger that is not
a certseal ledger, or whose chain does not verify, is refused — and left byte for byte as
it was (never deleted or silently repaired).
"""

import hashlib
import os
import re
import shutil
import sqlite3

from conftest import BUS_NAME, DEV_CONF, ORG_FIELDS, VENDORS_D, Client, write_config


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def line_of(path, pattern):
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if re.search(pattern, line):
                return n
    raise AssertionError(f"{pattern!r} not in {path}")


def assert_refused(cp, bus, *mentions):
    out = cp.stdout + cp.stderr
    assert cp.returncode != 0, f"certseald started despite the problem:\n{out}"
    assert cp.returncode == 1, f"refusal should exit 1 (main.c), got {cp.returncode}:\n{out}"
    for m in mentions:
        assert m in cp.stderr, f"stderr does not mention {m!r}:\n{cp.stderr}"
    assert not bus.name_has_owner(BUS_NAME)


def test_config_with_a_syntax_error_is_refused_naming_file_and_line(make_daemon, bus, tmp_dir):
    conf = write_config(os.path.join(tmp_dir, "broken.conf"))
    with open(conf, "a") as f:
        f.write("[daemon\n")
    n = line_of(conf, r"^\[daemon$")
    cp = make_daemon(config=conf).run()
    assert_refused(cp, bus, f"{conf}:{n}:")


def test_config_line_without_equals_is_refused_naming_the_line(make_daemon, bus, tmp_dir):
    conf = write_config(os.path.join(tmp_dir, "noeq.conf"))
    with open(conf) as f:
        text = f.read()
    text = text.replace("[daemon]\n", "[daemon]\nthis line is not a key\n", 1)
    with open(conf, "w") as f:
        f.write(text)
    n = line_of(conf, r"^this line is not a key$")
    cp = make_daemon(config=conf).run()
    assert_refused(cp, bus, f"{conf}:{n}:")


def test_config_with_an_unknown_key_is_refused_naming_file_and_line(make_daemon, bus, tmp_dir):
    conf = write_config(os.path.join(tmp_dir, "unknown.conf"), daemon={"plugin_dri": "/tmp"})
    n = line_of(conf, r"^plugin_dri =")
    cp = make_daemon(config=conf).run()
    assert_refused(cp, bus, f"{conf}:{n}:", "plugin_dri")


def test_vendor_profile_with_a_bad_algorithm_is_refused(make_daemon, bus, tmp_dir):
    vendor_dir = os.path.join(tmp_dir, "vendors.d")
    os.mkdir(vendor_dir)
    shutil.copy(os.path.join(VENDORS_D, "demo-b.conf"), vendor_dir)
    profile = os.path.join(vendor_dir, "demo-a.conf")
    with open(os.path.join(VENDORS_D, "demo-a.conf")) as f:
        text = f.read()
    text, n_subs = re.subn(r"(?m)^(\[key\]\n(?:#.*\n)*)algorithm = .*$", r"\1algorithm = dsa", text)
    assert n_subs == 1
    with open(profile, "w") as f:
        f.write(text)
    n = line_of(profile, r"^algorithm = dsa$")
    conf = write_config(os.path.join(tmp_dir, "c.conf"), daemon={"vendor_dir": vendor_dir})
    cp = make_daemon(config=conf).run()
    assert_refused(cp, bus, f"{profile}:{n}:")


def test_garbage_ledger_is_refused_and_left_untouched(make_daemon, bus):
    d = make_daemon()
    os.makedirs(d.state_dir, mode=0o700)
    # A vault key beside it, so that the ledger check is the one that refuses.
    key = os.open(os.path.join(d.state_dir, "vault.key"), os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(key, os.urandom(32))
    os.close(key)
    ledger = os.path.join(d.state_dir, "ledger.db")
    with open(ledger, "wb") as f:
        f.write(bytes(range(256)) * 64)
    before = sha256_file(ledger)
    cp = d.run()
    assert_refused(cp, bus, "ledger.db", "not a certseal ledger")
    assert sha256_file(ledger) == before
    assert os.path.exists(ledger)


def make_good_state_dir(make_daemon, bus):
    """A state directory with a few events, cleanly shut down (WAL checkpointed)."""
    d = make_daemon().start()
    c = Client(bus)
    o = c.create_order("new", "org", ORG_FIELDS)
    o.update({"postcode": "361009"})
    o.confirm()
    c.close()
    assert d.stop() == 0
    return d


def test_tampered_event_is_refused_naming_it_and_left_untouched(make_daemon, bus, tmp_dir):
    good = make_good_state_dir(make_daemon, bus)
    state = os.path.join(tmp_dir, "tampered-state")
    shutil.copytree(good.state_dir, state)
    ledger = os.path.join(state, "ledger.db")

    con = sqlite3.connect(ledger)
    try:
        triggers = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'")]
        assert triggers, "the events table has no append-only triggers"
        for t in triggers:
            con.execute(f'DROP TRIGGER "{t}"')
        cur = con.execute("""UPDATE events SET data = '{"fields":["org_name"]}' WHERE seq = 2""")
        assert cur.rowcount == 1
        con.commit()
    finally:
        con.close()
    assert not os.path.exists(ledger + "-wal") or os.path.getsize(ledger + "-wal") == 0
    before = sha256_file(ledger)

    cp = make_daemon(state_dir=state).run()
    assert_refused(cp, bus)
    assert re.search(r"event 2\b", cp.stderr), f"the refusal does not name event 2:\n{cp.stderr}"
    assert sha256_file(ledger) == before, "the refused ledger was modified"

    verify = make_daemon(state_dir=state).run("--verify-ledger")
    assert verify.returncode == 1, verify.stdout + verify.stderr
    assert re.search(r"event 2\b", verify.stderr), verify.stderr
    assert sha256_file(ledger) == before

    # The untampered original still starts.
    cp = good.run("--verify-ledger")
    assert cp.returncode == 0, cp.stdout + cp.stderr


def test_dev_config_itself_is_accepted(make_daemon, bus):
    """The control for the refusals above: the same daemon starts with the dev config."""
    d = make_daemon(config=DEV_CONF).start()
    assert d.stop() == 0

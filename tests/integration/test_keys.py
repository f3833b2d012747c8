"""
USB keys on D-Bus (docs/architecture.md §3.3 Key, issue 3): real SoftHSM2 tokens behind the virtual UKey
(vkey), driven by the pkcs11 driver inside the real certseald. Keys of the two demo
vendors are told apart by their manufacturer; plugging and unplugging shows on the
ObjectManager within 2 s; wrong PINs count down to a lock that even the right PIN cannot
pass; a key pulled in the middle of a write answers KeyRemoved; a hung token never
freezes the bus.
"""

import json
import subprocess
import threading
import time

import dbus
import pytest

from conftest import (CLI, KEY_IFACE, MANAGER_IFACE, MANAGER_PATH, OBJMGR_IFACE, Client,
                      SignalRecorder, dbus_error, key_path, run_cli, run_until, vkey)

ERR_PIN_INCORRECT = "org.certseal.Error.PinIncorrect"
ERR_PIN_LOCKED = "org.certseal.Error.PinLocked"
ERR_KEY_REMOVED = "org.certseal.Error.KeyRemoved"


@pytest.fixture(scope="module")
def keyd(daemon_with_keys):
    return daemon_with_keys


@pytest.fixture(scope="module")
def daemon_with_keys(bus):
    from conftest import Daemon
    d = Daemon(bus)
    try:
        vkey(d.state_dir, "create", "--vendor", "demo-a", "--serial", "KA0001")
        vkey(d.state_dir, "create", "--vendor", "demo-b", "--serial", "KB0001")
        d.start()
        yield d
    finally:
        d.cleanup()


def keys_on_bus(client):
    objects = client.managed_objects()
    return {path: ifaces[KEY_IFACE] for path, ifaces in objects.items() if KEY_IFACE in ifaces}


def wait_key(client, serial, present=True, timeout=3.0):
    path = key_path(serial)
    assert run_until(lambda: (path in keys_on_bus(client)) == present, timeout), (
        f"key {serial} {'did not appear' if present else 'did not go'} within {timeout} s")
    return path


def key_prop(client, path, name):
    return client.get(path, KEY_IFACE, name)


def login(client, path, pin):
    client.call(path, KEY_IFACE, "Login", "s", (pin,))


def new_key(keyd, client, serial, vendor="demo-a", **opts):
    args = ["create", "--vendor", vendor, "--serial", serial]
    for k, v in opts.items():
        args += [f"--{k.replace('_', '-')}", v]
    vkey(keyd.state_dir, *args)
    return wait_key(client, serial)


def test_two_keys_of_two_vendors_are_listed(keyd, client):
    a = wait_key(client, "KA0001", timeout=5)
    b = wait_key(client, "KB0001", timeout=5)
    props = keys_on_bus(client)
    assert props[a]["Vendor"] == "demo-a" and props[b]["Vendor"] == "demo-b"
    assert props[a]["Manufacturer"] == "certseal demo A"
    assert props[b]["Manufacturer"] == "certseal demo B"
    assert props[a]["PinTriesLeft"] == 6 and not props[a]["PinLocked"]
    assert "Certificate" not in props[a], "Certificate is an explicit property"
    cp = run_cli(keyd.bus, "keys", "--json")
    assert cp.returncode == 0, cp.stderr
    listed = {k["Serial"]: k for k in json.loads(cp.stdout)}
    assert {"KA0001", "KB0001"} <= set(listed)
    cp = run_cli(keyd.bus, "keys")
    assert cp.returncode == 0, cp.stderr
    line = next(l for l in cp.stdout.splitlines() if "KA0001" in l)
    for word in ("demo-a", "certseal demo A", "none", "6 tries left"):
        assert word in line, cp.stdout


def test_plug_and_unplug_are_seen_on_dbus_within_2s(keyd, client):
    path = new_key(keyd, client, "KP0001")
    rec = SignalRecorder(client, dbus_interface=OBJMGR_IFACE)
    try:
        t0 = time.monotonic()
        vkey(keyd.state_dir, "unplug", "KP0001")
        got = rec.wait_for(lambda m, p, i, a: m == "InterfacesRemoved" and a[0] == path, 2.5)
        assert got is not None, "no InterfacesRemoved within 2 s"
        assert time.monotonic() - t0 < 2.5
        assert path not in keys_on_bus(client)
        t0 = time.monotonic()
        vkey(keyd.state_dir, "plug", "KP0001")
        got = rec.wait_for(lambda m, p, i, a: m == "InterfacesAdded" and a[0] == path, 2.5)
        assert got is not None, "no InterfacesAdded within 2 s"
        assert time.monotonic() - t0 < 2.5
        assert got[3][1][KEY_IFACE]["Serial"] == "KP0001"
    finally:
        rec.remove()


def test_wrong_pin_counts_down_to_lock_and_then_the_right_pin_is_refused(keyd, client):
    path = new_key(keyd, client, "KL0001")
    for left in range(5, 0, -1):
        with dbus_error(ERR_PIN_INCORRECT, f"{left} tries left"):
            login(client, path, "999999")
        assert key_prop(client, path, "PinTriesLeft") == left
    with dbus_error(ERR_PIN_LOCKED):
        login(client, path, "999999")
    assert key_prop(client, path, "PinLocked") is True
    assert key_prop(client, path, "PinTriesLeft") == 0
    with dbus_error(ERR_PIN_LOCKED):
        login(client, path, "123456")
    assert key_prop(client, path, "LoggedIn") is False
    log = keyd.log()
    assert "999999" not in log and "123456" not in log, "a PIN reached the log"


def test_login_logout_and_loggedin_stay_live(keyd, client):
    path = new_key(keyd, client, "KI0001")
    rec = SignalRecorder(client, dbus_interface="org.freedesktop.DBus.Properties",
                         signal_name="PropertiesChanged")
    try:
        login(client, path, "123456")
        assert key_prop(client, path, "LoggedIn") is True
        got = rec.wait_for(lambda m, p, i, a: p == path and a[1].get("LoggedIn") is True, 2)
        assert got is not None, "no PropertiesChanged for LoggedIn"
        client.call(path, KEY_IFACE, "Logout", "", ())
        assert key_prop(client, path, "LoggedIn") is False
    finally:
        rec.remove()


def test_change_pin_through_the_cli_reads_pins_from_stdin(keyd, client):
    new_key(keyd, client, "KC0001")
    cp = run_cli(keyd.bus, "change-pin", "KC0001", input="123456\n654321\n654321\n")
    assert cp.returncode == 0, cp.stderr + cp.stdout
    cp = run_cli(keyd.bus, "login", "KC0001", input="123456\n")
    assert cp.returncode == 1 and "5 tries left" in cp.stderr, cp.stderr
    cp = run_cli(keyd.bus, "login", "KC0001", input="654321\n")
    assert cp.returncode == 0, cp.stderr


def test_login_needs_one_key_named_when_several_are_inserted(keyd, client):
    wait_key(client, "KA0001")
    cp = run_cli(keyd.bus, "--json", "login", input="123456\n")
    assert cp.returncode == 1, cp.stdout
    assert json.loads(cp.stdout)["error"]["code"] == "org.certseal.Error.MultipleKeys"


def test_key_pulled_mid_write_is_key_removed(keyd, client):
    path = new_key(keyd, client, "KR0001")
    vkey(keyd.state_dir, "fault", "KR0001", "C_SetPIN", "--after", "1", "--mode", "unplug")
    with dbus_error(ERR_KEY_REMOVED):
        client.call(path, KEY_IFACE, "ChangePin", "ss", ("123456", "654321"))
    wait_key(client, "KR0001", present=False)
    assert keyd.running
    # Back in, the key still has its old PIN: the write never happened.
    vkey(keyd.state_dir, "plug", "KR0001")
    wait_key(client, "KR0001")
    login(client, path, "123456")


def test_a_hanging_token_call_does_not_freeze_dbus(keyd, client, bus):
    path = new_key(keyd, client, "KH0001")
    vkey(keyd.state_dir, "fault", "KH0001", "C_Login", "--after", "1", "--mode", "hang",
         "--timeout", "20000")
    result = {}

    def slow_login():
        c = Client(bus)
        try:
            c.call(path, KEY_IFACE, "Login", "s", ("123456",))
            result["ok"] = True
        except dbus.exceptions.DBusException as e:
            result["error"] = e.get_dbus_name()
        finally:
            c.close()

    t = threading.Thread(target=slow_login)
    t.start()
    try:
        time.sleep(0.5)
        assert t.is_alive(), "the hung Login returned early"
        t0 = time.monotonic()
        assert client.manager("Version")
        assert time.monotonic() - t0 < 1.0, "a Manager property Get took a second or more"
        t0 = time.monotonic()
        keys_on_bus(client)
        assert time.monotonic() - t0 < 1.0
    finally:
        vkey(keyd.state_dir, "unplug", "KH0001")  # releases the hang
        t.join(25)
    assert not t.is_alive()
    assert result.get("error") == ERR_KEY_REMOVED, result


def test_readseal_without_a_seal_is_not_found(keyd, client):
    path = wait_key(client, "KB0001")
    assert key_prop(client, path, "HasSeal") is False
    with dbus_error("org.certseal.Error.NotFound"):
        client.call(path, KEY_IFACE, "ReadSeal", "", ())


def test_a_new_pin_outside_the_vendor_rule_is_refused(keyd, client):
    path = wait_key(client, "KB0001")
    with dbus_error("org.certseal.Error.InvalidInput", "new_pin", "6 to 16"):
        client.call(path, KEY_IFACE, "ChangePin", "ss", ("123456", "12"))
    assert key_prop(client, path, "PinTriesLeft") == 6
    # Never one digit repeated; demo-a's [pin] policy also wants digits only.
    with dbus_error("org.certseal.Error.InvalidInput", "new_pin", "one digit repeated"):
        client.call(path, KEY_IFACE, "ChangePin", "ss", ("123456", "777777"))
    a = wait_key(client, "KA0001")
    with dbus_error("org.certseal.Error.InvalidInput", "new_pin", "digits only"):
        client.call(a, KEY_IFACE, "ChangePin", "ss", ("123456", "abc12345"))
    assert key_prop(client, path, "PinTriesLeft") == 6
    assert key_prop(client, a, "PinTriesLeft") == 6


def test_shutdown_has_a_deadline_while_a_token_call_hangs():
    from conftest import Bus, Daemon
    bus = Bus()  # its own bus: the module's daemon owns the name on the shared one
    d = Daemon(bus)
    vkey(d.state_dir, "create", "--vendor", "demo-a", "--serial", "KS0001")
    d.start()
    c = Client(bus)
    try:
        path = wait_key(c, "KS0001", timeout=5)
        vkey(d.state_dir, "fault", "KS0001", "C_Login", "--after", "1", "--mode", "hang",
             "--timeout", "60000")
        # A client waiting on the hung Login (the CLI, in its own process).
        waiting = subprocess.Popen([CLI, "--session", "login", "KS0001"], env=bus.env(),
                                   stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        waiting.stdin.write(b"123456\n")
        waiting.stdin.close()
        time.sleep(0.5)
        assert waiting.poll() is None, "the hung Login returned early"
        t0 = time.monotonic()
        assert d.stop(timeout=15) == 0
        assert time.monotonic() - t0 < 10, "shutdown waited for the hung token"
        assert "still running" in d.log()
        waiting.wait(10)  # the daemon left: the client gets an error, not a hang
    finally:
        c.close()
        d.cleanup()
        bus.close()


def test_a_desk_of_more_than_64_blank_keys_is_listed_whole():
    """The driver asks the module how many slots it has: a maker's desk of 70 blank keys
    is listed whole, and one more plugged while they are there is seen too."""
    from conftest import Bus, Daemon
    own_bus = Bus()
    d = Daemon(own_bus)
    c = None
    try:
        for i in range(70):
            vkey(d.state_dir, "create", "--vendor", "demo-a", "--serial", f"DESK{i:03d}",
                 "--blank")
        d.start()
        c = Client(own_bus)
        wanted = {key_path(f"DESK{i:03d}") for i in range(70)}
        assert run_until(lambda: wanted <= set(keys_on_bus(c)), 10.0), \
            f"listed {len(wanted & set(keys_on_bus(c)))} of 70 keys"
        new_key(d, c, "DESK070")
    finally:
        if c is not None:
            c.close()
        d.cleanup()
        own_bus.close()

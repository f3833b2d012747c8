"""
A key belongs to the uid that logged in to it (issue 17, part 3): while uid A is logged in,
every Key method called by another uid — root included — is AccessDenied, so a PIN one person
entered never serves another. A's login lasts across A's connections until Logout, the key's
removal or the idle timeout ([daemon] key_login_idle_s), after which the key is logged out.
The two users are real client processes running as uid 65534 and uid 1 on the session bus.
"""

import json
import os
import subprocess

import dbus
import pytest

from conftest import KEY_IFACE, Client, run_until, vkey, write_config
from test_keys import wait_key

USER_A = 65534
USER_B = 1
PIN = "123456"
DENIED = "org.certseal.Error.AccessDenied"

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root to run clients as uid 65534 and uid 1")

# Runs as one uid on its own connection: the calls given on stdin, what each answered.
CHILD = r"""
import json, os, sys, tempfile
import dbus
req = json.load(sys.stdin)
conn = dbus.bus.BusConnection(req["address"])
out = {"uid": os.getuid(), "results": []}
for method, args in req["calls"]:
    sig = {"Login": "s", "Logout": "", "ChangePin": "ss", "ReadSeal": "",
           "SealDocument": "sh"}[method]
    if method == "SealDocument":
        doc = tempfile.TemporaryFile()
        doc.write(b"a document")
        doc.flush()
        args = [args[0], dbus.types.UnixFd(doc)]
    try:
        conn.call_blocking("org.certseal.CertSeal1", req["path"], "org.certseal.CertSeal1.Key",
                           method, sig, args, timeout=20)
        out["results"].append({"method": method, "ok": True})
    except dbus.exceptions.DBusException as e:
        out["results"].append({"method": method, "ok": False, "error": e.get_dbus_name(),
                               "message": e.get_dbus_message()})
print(json.dumps(out))
"""


def as_user(uid):
    def change():
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    return change


def calls_as(uid, bus, path, calls):
    """Run @calls ([method, args]…) on key @path as @uid in a process of its own (its own
    bus connection, closed when it exits); the answers, in order."""
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "HOME": "/nonexistent"}
    child = subprocess.Popen(["/usr/bin/python3", "-c", CHILD], env=env, cwd="/",
                             preexec_fn=as_user(uid), text=True, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = child.communicate(json.dumps({"address": bus.address, "path": path,
                                             "calls": calls}), timeout=120)
    assert child.returncode == 0, err
    seen = json.loads(out)
    assert seen["uid"] == uid
    return seen["results"]


def test_a_key_logged_in_by_one_user_serves_no_other(make_daemon, bus, client):
    d = make_daemon()
    vkey(d.state_dir, "create", "--vendor", "demo-a", "--serial", "KO0001")
    d.start()
    path = wait_key(client, "KO0001")

    [login] = calls_as(USER_A, bus, path, [["Login", [PIN]]])
    assert login["ok"], login
    # A's connection is gone; the login is still A's.
    assert client.get(path, KEY_IFACE, "LoggedIn") is True

    # B, with the right PIN or none, gets nothing out of the key.
    results = calls_as(USER_B, bus, path, [["Login", [PIN]], ["ReadSeal", []],
                                           ["ChangePin", [PIN, "654321"]],
                                           ["SealDocument", ["doc.txt"]], ["Logout", []]])
    for r in results:
        assert not r["ok"], f"uid {USER_B} could {r['method']} on a key uid {USER_A} holds"
        assert r["error"] == DENIED, r
        assert "logged in by another user" in r["message"], r
        assert PIN not in r["message"]
    # Root is another uid too.
    with pytest.raises(dbus.exceptions.DBusException) as e:
        client.call(path, KEY_IFACE, "ReadSeal", "", ())
    assert e.value.get_dbus_name() == DENIED
    assert client.get(path, KEY_IFACE, "LoggedIn") is True

    # A, from a second connection, still uses it: the PIN B tried to change is A's to change,
    # the token answers ReadSeal (no seal on a fresh key), and Logout ends A's hold.
    results = calls_as(USER_A, bus, path, [["ChangePin", [PIN, "654321"]], ["ReadSeal", []],
                                           ["Logout", []]])
    assert results[0]["ok"], results[0]
    assert not results[1]["ok"] and results[1]["error"] == "org.certseal.Error.NotFound", (
        results[1])
    assert results[2]["ok"], results[2]
    assert client.get(path, KEY_IFACE, "LoggedIn") is False

    # Logged out, the key serves whoever logs in next.
    [login] = calls_as(USER_B, bus, path, [["Login", ["654321"]]])
    assert login["ok"], login
    with pytest.raises(dbus.exceptions.DBusException) as e:
        client.call(path, KEY_IFACE, "Login", "s", ("654321",))
    assert e.value.get_dbus_name() == DENIED


def test_an_idle_login_ends_and_the_key_is_free_again(make_daemon, bus, client, tmp_dir):
    conf = write_config(os.path.join(tmp_dir, "idle.conf"), daemon={"key_login_idle_s": "2"})
    d = make_daemon(config=conf)
    vkey(d.state_dir, "create", "--vendor", "demo-a", "--serial", "KO0002")
    d.start()
    path = wait_key(client, "KO0002")

    [login] = calls_as(USER_A, bus, path, [["Login", [PIN]]])
    assert login["ok"], login
    # Nobody calls on it: after the idle timeout the daemon logs the key out.
    assert run_until(lambda: client.get(path, KEY_IFACE, "LoggedIn") is False, 30), (
        "the key is still logged in long after key_login_idle_s")
    assert "logged out after 2 s without a call of its user" in d.log()
    [login] = calls_as(USER_B, bus, path, [["Login", [PIN]]])
    assert login["ok"], login
    assert client.get(path, KEY_IFACE, "LoggedIn") is True

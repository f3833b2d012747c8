"""
polkit on the system bus (docs/architecture.md §6): certseald --system asks polkit, with its
own asynchronous CheckAuthorization, before every key and order method; the session bus is
unchanged (every other test).

Real components: a private dbus-daemon with a system-bus configuration (type system, the
default policy of the system bus, our bus policy dbus/org.certseal.CertSeal1.conf and
polkit's own), the real polkitd (Debian's polkitd package) running as its user on that bus,
and callers running as non-root uids. polkitd 122 cannot be pointed at other directories:
the test installs our actions into /usr/share/polkit-1/actions and a rules file into
/etc/polkit-1/rules.d, and removes both in a finally. There is no logind here, so no caller
is in an active session: the rules file says YES for uid 65534 (nobody) and says nothing for
the others (but uid 2, bin, a second person polkit allows), who therefore get the action's default for a session-less caller (allow_any=no).
The bus configuration lists no service directories, so a stopped polkitd stays stopped.
"""

import json
import os
import pwd
import shutil
import signal
import subprocess
import time

import pytest

from conftest import (BUS_NAME, CERTSEALD, DEV_CONF, MANAGER_PATH, PERSON_FIELDS, SOURCE_DIR,
                      Daemon, key_path, short_tmpdir, vkey)

POLKITD = "/usr/lib/polkit-1/polkitd"
POLICY = os.path.join(SOURCE_DIR, "dbus", "org.certseal.CertSeal1.policy")
BUS_POLICY = os.path.join(SOURCE_DIR, "dbus", "org.certseal.CertSeal1.conf")
POLKIT_BUS_POLICY = "/usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf"
ACTIONS_DIR = "/usr/share/polkit-1/actions"
RULES_DIR = "/etc/polkit-1/rules.d"
INSTALLED_POLICY = os.path.join(ACTIONS_DIR, "org.certseal.CertSeal1.test.policy")
RULES_FILE = os.path.join(RULES_DIR, "10-certseal-test.rules")

ALLOWED_UID = 65534  # nobody
SECOND_UID = 2  # bin, allowed as well
OTHER_UID = 1  # daemon

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: installs polkit files, runs "
                       "polkitd and callers as other uids"),
    pytest.mark.skipif(not os.path.exists(POLKITD), reason="polkitd is not installed"),
]

SYSTEM_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={dir}/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <include>{bus_policy}</include>
  <include>{polkit_policy}</include>
</busconfig>
"""

RULES = """// certseal integration test (tests/integration/test_polkit.py); removed by the test.
polkit.addRule(function(action, subject) {
    if (action.id.indexOf("org.certseal.") == 0 &&
        (subject.user == "nobody" || subject.user == "bin"))
        return polkit.Result.YES;
});
"""

# Runs as a non-root uid: makes the calls listed on stdin and prints what happened.
CHILD = r"""
import json, os, sys, time
import dbus
req = json.load(sys.stdin)
conn = dbus.bus.BusConnection(req["address"])
out = {"uid": os.getuid(), "calls": []}
last = "/org/certseal/CertSeal1/orders/none"
for c in req["calls"]:
    path = c["path"]
    if path == "$last":
        path = last
    args = [dbus.Dictionary(a, signature="sv") if isinstance(a, dict) else a for a in c["args"]]
    t0 = time.monotonic()
    try:
        r = conn.call_blocking("org.certseal.CertSeal1", path, c["iface"], c["method"],
                               c["sig"], args, timeout=30)
        res = {"ok": True, "value": json.loads(json.dumps(r, default=str))}
        if c["method"] == "CreateOrder":
            last = str(r)
    except dbus.exceptions.DBusException as e:
        res = {"ok": False, "error": e.get_dbus_name(), "message": e.get_dbus_message()}
    res["seconds"] = time.monotonic() - t0
    out["calls"].append(res)
print(json.dumps(out))
"""

MANAGER = "org.certseal.CertSeal1.Manager"
ORDER = "org.certseal.CertSeal1.Order"


def create_order():
    return {"path": MANAGER_PATH, "iface": MANAGER, "method": "CreateOrder", "sig": "ssa{sv}",
            "args": ["new", "person", PERSON_FIELDS]}


def update_last():
    return {"path": "$last", "iface": ORDER, "method": "Update", "sig": "a{sv}",
            "args": [{"address": "北京市西城区示例胡同 3 号"}]}


def get_flow():
    return {"path": MANAGER_PATH, "iface": MANAGER, "method": "GetFlow", "sig": "ss",
            "args": ["new", "person"]}


def as_uid(uid):
    def become():
        pw = pwd.getpwuid(uid)
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(uid)
    return become


def call_as(uid, address, calls):
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "HOME": "/nonexistent"}
    cp = subprocess.run(["/usr/bin/python3", "-c", CHILD], env=env, cwd="/",
                        preexec_fn=as_uid(uid), text=True, capture_output=True, timeout=120,
                        input=json.dumps({"address": address, "calls": calls}))
    assert cp.returncode == 0, cp.stderr
    out = json.loads(cp.stdout)
    assert out["uid"] == uid
    return out["calls"]


class SystemBus:
    """A private dbus-daemon configured as a system bus."""

    def __init__(self):
        self.dir = short_tmpdir("cssys-")
        self.config = os.path.join(self.dir, "system.conf")
        with open(self.config, "w") as f:
            f.write(SYSTEM_BUS_CONFIG.format(dir=self.dir, bus_policy=BUS_POLICY,
                                             polkit_policy=POLKIT_BUS_POLICY))
        self.address = f"unix:path={self.dir}/system_bus_socket"
        self.log = open(os.path.join(self.dir, "dbus-daemon.log"), "w")
        self.proc = subprocess.Popen(["dbus-daemon", f"--config-file={self.config}", "--nofork"],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while not os.path.exists(f"{self.dir}/system_bus_socket"):
            assert self.proc.poll() is None, "dbus-daemon exited"
            assert time.monotonic() < deadline, "dbus-daemon did not listen"
            time.sleep(0.02)
        import dbus
        self._conn = dbus.bus.BusConnection(self.address)

    # What conftest.Daemon uses of a bus.
    def env(self, **extra):
        env = dict(os.environ)
        env["DBUS_SYSTEM_BUS_ADDRESS"] = self.address
        env.pop("DBUS_SESSION_BUS_ADDRESS", None)
        env.pop("DBUS_STARTER_ADDRESS", None)
        env.update(extra)
        return env

    def name_has_owner(self, name=BUS_NAME):
        return bool(self._conn.call_blocking("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                             "org.freedesktop.DBus", "NameHasOwner", "s",
                                             (name,), timeout=10))

    def close(self):
        self._conn.close()
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class SystemDaemon(Daemon):
    def command(self, *args):
        return [CERTSEALD, "--system", "--state-dir", self.state_dir, "--config", self.config,
                *self.extra_args, *args]


@pytest.fixture(scope="module")
def system():
    """The system bus, polkitd on it with our actions and the test rules, certseald --system."""
    installed = []
    bus = polkitd = daemon = None
    try:
        shutil.copyfile(POLICY, INSTALLED_POLICY)
        installed.append(INSTALLED_POLICY)
        with open(RULES_FILE, "w") as f:
            f.write(RULES)
        installed.append(RULES_FILE)
        polkit = pwd.getpwnam("polkitd")
        os.chown(RULES_FILE, polkit.pw_uid, 0)

        bus = SystemBus()
        # polkitd starts as root and changes to its own user.
        polkitd_log = open(os.path.join(bus.dir, "polkitd.log"), "w")
        polkitd = subprocess.Popen([POLKITD, "--no-debug"], env=bus.env(),
                                   stdout=polkitd_log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 20
        while not bus.name_has_owner("org.freedesktop.PolicyKit1"):
            assert polkitd.poll() is None, "polkitd exited: " + open(polkitd_log.name).read()
            assert time.monotonic() < deadline, "polkitd did not own its name"
            time.sleep(0.05)

        daemon = SystemDaemon(bus, config=DEV_CONF)
        vkey(daemon.state_dir, "create", "--vendor", "demo-a", "--serial", "KP0001")
        daemon.start()
        yield {"bus": bus, "polkitd": polkitd, "daemon": daemon}
    finally:
        if daemon is not None:
            daemon.cleanup()
        if polkitd is not None and polkitd.poll() is None:
            polkitd.terminate()
            polkitd.wait(10)
        if bus is not None:
            bus.close()
        for path in installed:
            os.unlink(path)


def test_polkit_decides_the_system_bus(system):
    address = system["bus"].address

    # The uid polkit allows creates an order and acts on it; flow descriptions are open.
    ok = call_as(ALLOWED_UID, address, [create_order(), update_last(), get_flow()])
    assert [c["ok"] for c in ok] == [True, True, True], ok

    # Another uid, session-less: polkit's default (allow_any=no) refuses; the refusal names
    # the action; the open method still answers.
    other = call_as(OTHER_UID, address, [create_order(), get_flow()])
    assert other[0]["ok"] is False, other
    assert other[0]["error"] == "org.certseal.Error.AccessDenied"
    assert "org.certseal.order-create" in other[0]["message"]
    assert "polkit does not allow" in other[0]["message"]
    assert other[1]["ok"] is True, other

    # A call that leaves out its interface gets no further (sd-bus refuses it before any
    # handler; were it dispatched, it would be guarded by its member).
    bare = call_as(OTHER_UID, address, [dict(create_order(), iface=None)])
    assert bare[0]["ok"] is False, bare

    # polkit's answer is not kept: the allowed uid is asked about again per call, and the
    # other uid is refused again (nothing learnt from the first caller serves the second).
    again = call_as(OTHER_UID, address, [create_order()])
    assert again[0]["error"] == "org.certseal.Error.AccessDenied", again


def key_call(method, sig="", args=()):
    return {"path": key_path("KP0001"), "iface": "org.certseal.CertSeal1.Key",
            "method": method, "sig": sig, "args": list(args)}


def key_prop(name):
    return {"path": key_path("KP0001"), "iface": "org.freedesktop.DBus.Properties",
            "method": "Get", "sig": "ss", "args": ["org.certseal.CertSeal1.Key", name]}


def test_polkit_decides_key_login(system):
    address = system["bus"].address

    # Refused before the PIN reaches the key: no try is spent.
    other = call_as(OTHER_UID, address, [key_call("Login", "s", ["123456"]),
                                         key_prop("PinTriesLeft"), key_prop("LoggedIn")])
    assert other[0]["ok"] is False, other
    assert other[0]["error"] == "org.certseal.Error.AccessDenied"
    assert "org.certseal.key-login" in other[0]["message"]
    assert other[1]["ok"] and other[2]["ok"], other
    tries = other[1]["value"]
    assert other[2]["value"] == 0

    ok = call_as(ALLOWED_UID, address, [key_call("Login", "s", ["123456"]), key_prop("LoggedIn"),
                                        key_prop("PinTriesLeft"), key_call("Logout")])
    assert [c["ok"] for c in ok] == [True, True, True, True], ok
    assert ok[1]["value"] == 1
    assert ok[2]["value"] == tries


def test_a_key_logged_in_by_one_user_serves_no_other_on_the_system_bus(system):
    """Two users polkit allows: while uid A is logged in to the key, uid B's Login, ReadSeal
    and Logout are refused (a PIN entered by one person never serves another). A's login
    outlives the process that made it — `certseal login` then `certseal seal sign` are two
    processes — and ends with A's Logout, after which B logs in."""
    address = system["bus"].address
    a = call_as(ALLOWED_UID, address, [key_call("Login", "s", ["123456"]), key_prop("LoggedIn")])
    assert [c["ok"] for c in a] == [True, True] and a[1]["value"] == 1, a
    b = call_as(SECOND_UID, address, [key_call("Login", "s", ["123456"]), key_call("ReadSeal"),
                                      key_call("Logout"), key_prop("LoggedIn")])
    for c in b[:3]:
        assert c["ok"] is False and c["error"] == "org.certseal.Error.AccessDenied", b
        assert "logged in by another user" in c["message"], c
    assert b[3]["ok"] and b[3]["value"] == 1, b
    a = call_as(ALLOWED_UID, address, [key_call("Logout"), key_prop("LoggedIn")])
    assert a[0]["ok"] and a[1]["value"] == 0, a
    b = call_as(SECOND_UID, address, [key_call("Login", "s", ["123456"]), key_call("Logout")])
    assert [c["ok"] for c in b] == [True, True], b


def test_polkit_silent_denies_after_the_bound(system):
    """polkitd stopped (SIGSTOP: it owns its name but never answers): the call is refused
    when the 5 s bound passes, naming the action, and the daemon goes on answering."""
    address = system["bus"].address
    polkitd = system["polkitd"]
    polkitd.send_signal(signal.SIGSTOP)
    try:
        calls = call_as(ALLOWED_UID, address, [create_order(), get_flow()])
    finally:
        polkitd.send_signal(signal.SIGCONT)
    assert calls[0]["ok"] is False, calls
    assert calls[0]["error"] == "org.certseal.Error.AccessDenied"
    assert "org.certseal.order-create: polkit could not be asked" in calls[0]["message"]
    assert calls[1]["ok"] is True, calls
    # polkitd back: the same caller is allowed again (nothing was remembered meanwhile).
    again = call_as(ALLOWED_UID, address, [create_order()])
    assert again[0]["ok"] is True, again


def test_polkit_gone_denies_and_the_daemon_keeps_answering(system):
    address = system["bus"].address
    polkitd = system["polkitd"]
    polkitd.send_signal(signal.SIGTERM)
    polkitd.wait(10)
    deadline = time.monotonic() + 10
    while system["bus"].name_has_owner("org.freedesktop.PolicyKit1"):
        assert time.monotonic() < deadline
        time.sleep(0.02)

    calls = call_as(ALLOWED_UID, address, [create_order(), get_flow()])
    assert calls[0]["ok"] is False, calls
    assert calls[0]["error"] == "org.certseal.Error.AccessDenied"
    assert "org.certseal.order-create" in calls[0]["message"]
    assert "polkit could not be asked" in calls[0]["message"]
    assert calls[1]["ok"] is True, calls
    assert system["daemon"].running

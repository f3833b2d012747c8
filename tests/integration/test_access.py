"""
Orders belong to the uid that created them (docs/architecture.md §3.3): another user on the same bus
neither sees nor acts on them, root sees all, and the signals everyone can receive carry
no personal data. The other user is a real client process running as uid 65534.
"""

import json
import os
import subprocess
import sys

import pytest

from conftest import BUS_NAME, ORDER_IFACE, ORG_FIELDS, PERSON_FIELDS, ORDERS_PATH

NOBODY = 65534

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root to run a client as uid 65534")

# Runs as uid 65534: acts on the order paths given on stdin and prints what happened.
CHILD_ACT = r"""
import json, os, sys
import dbus
BUS = "org.certseal.CertSeal1"
ORDER = "org.certseal.CertSeal1.Order"
req = json.load(sys.stdin)
conn = dbus.bus.BusConnection(req["address"])
out = {"uid": os.getuid()}

def call(path, iface, method, sig, args):
    try:
        r = conn.call_blocking(BUS, path, iface, method, sig, args, timeout=10)
        return {"ok": True, "value": json.loads(json.dumps(r, default=str))}
    except dbus.exceptions.DBusException as e:
        return {"ok": False, "error": e.get_dbus_name(), "message": e.get_dbus_message()}

objs = call("/org/certseal/CertSeal1", "org.freedesktop.DBus.ObjectManager",
            "GetManagedObjects", "", ())
out["managed"] = sorted(objs["value"].keys()) if objs["ok"] else objs
tree = call("/org/certseal/CertSeal1/orders", "org.freedesktop.DBus.Introspectable",
            "Introspect", "", ())
out["nodes"] = tree["value"] if tree["ok"] else ""
out["foreign"] = {}
for path in req["paths"]:
    out["foreign"][path] = {
        "get_state": call(path, "org.freedesktop.DBus.Properties", "Get", "ss", (ORDER, "State")),
        "get_fields": call(path, "org.freedesktop.DBus.Properties", "Get", "ss", (ORDER, "Fields")),
        "get_all": call(path, "org.freedesktop.DBus.Properties", "GetAll", "s", (ORDER,)),
        "update": call(path, ORDER, "Update", "a{sv}", ({"address": "somewhere else 1"},)),
        "confirm": call(path, ORDER, "Confirm", "", ()),
        "cancel": call(path, ORDER, "Cancel", "", ()),
    }
own = call("/org/certseal/CertSeal1", "org.certseal.CertSeal1.Manager", "CreateOrder",
           "ssa{sv}", ("new", "person", dbus.Dictionary(req["own_fields"], signature="sv")))
out["own"] = own
if own["ok"]:
    out["own_state"] = call(own["value"], "org.freedesktop.DBus.Properties", "Get", "ss",
                            (ORDER, "State"))
objs = call("/org/certseal/CertSeal1", "org.freedesktop.DBus.ObjectManager",
            "GetManagedObjects", "", ())
out["managed_after"] = sorted(objs["value"].keys()) if objs["ok"] else objs
print(json.dumps(out))
"""

# Runs as uid 65534: records every signal certseald sends until stdin closes.
CHILD_LISTEN = r"""
import json, sys
import dbus, dbus.mainloop.glib
from gi.repository import GLib
dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
conn = dbus.bus.BusConnection(sys.argv[1])
got = []
def on_signal(*args, **kw):
    got.append({"member": str(kw["member"]), "path": str(kw["path"]),
                "args": json.loads(json.dumps(args, default=str))})
conn.add_signal_receiver(on_signal, bus_name="org.certseal.CertSeal1",
                         member_keyword="member", path_keyword="path")
# Known to the daemon as a watcher (it lists its orders), with an order of its own whose
# signals must reach it.
manager = conn.get_object("org.certseal.CertSeal1", "/org/certseal/CertSeal1")
manager.GetManagedObjects(dbus_interface="org.freedesktop.DBus.ObjectManager")
fields = dbus.Dictionary({"vendor": "demo-b", "name": "张三", "id_number": "110105200002290021"},
                         signature="sv")
own = manager.CreateOrder("new", "person", fields,
                          dbus_interface="org.certseal.CertSeal1.Manager")
loop = GLib.MainLoop()
def on_stdin(*a):
    loop.quit()
    return False
GLib.io_add_watch(sys.stdin, GLib.IO_IN | GLib.IO_HUP, on_stdin)
GLib.timeout_add(20000, on_stdin)
print("ready " + str(own), flush=True)
loop.run()
print(json.dumps(got), flush=True)
"""


def as_nobody():
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def spawn_nobody(script, *args, **kwargs):
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "HOME": "/nonexistent"}
    return subprocess.Popen(["/usr/bin/python3", "-c", script, *args], env=env, cwd="/",
                            preexec_fn=as_nobody, text=True, **kwargs)


REFUSED = {"org.freedesktop.DBus.Error.UnknownObject", "org.freedesktop.DBus.Error.AccessDenied",
           "org.certseal.Error.AccessDenied"}


def test_another_user_neither_sees_nor_acts_on_my_orders(daemon, bus, client):
    mine = [client.create_order("new", "org", ORG_FIELDS),
            client.create_order("new", "person", PERSON_FIELDS)]
    request = {"address": bus.address, "paths": [o.path for o in mine],
               "own_fields": dict(PERSON_FIELDS, id_number="110105200002290021")}
    child = spawn_nobody(CHILD_ACT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    out, err = child.communicate(json.dumps(request), timeout=60)
    assert child.returncode == 0, err
    seen = json.loads(out)
    assert seen["uid"] == NOBODY

    assert isinstance(seen["managed"], list), seen["managed"]
    for o in mine:
        assert o.path not in seen["managed"], "another user's order is listed"
        assert f'"{o.id}"' not in seen["nodes"], "another user's order is in Introspect"
        for what, result in seen["foreign"][o.path].items():
            assert not result["ok"], f"uid {NOBODY} could {what} {o.path}: {result}"
            assert result["error"] in REFUSED, f"{what}: {result}"

    # Nothing the other user tried changed my orders.
    for o in mine:
        assert o.state == "draft"
        assert [h[2] for h in o.get("History")] == ["created"]
        assert o.get("Fields")["address"] != "somewhere else 1"

    # The other user has an order of its own, which it sees; root sees it too.
    assert seen["own"]["ok"], seen["own"]
    theirs = seen["own"]["value"]
    assert seen["own_state"] == {"ok": True, "value": "draft"}
    assert seen["managed_after"] == [theirs]
    visible_to_root = client.managed_objects()
    for path in [o.path for o in mine] + [theirs]:
        assert path in visible_to_root
    assert client.order(theirs).get("Fields")["id_number"] == "110105200002290021"


def test_another_user_receives_no_signal_about_my_orders(daemon, bus, client):
    listener = spawn_nobody(CHILD_LISTEN, bus.address, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ready = listener.stdout.readline().strip().split()
        assert ready[:1] == ["ready"], listener.stderr.read()
        own_path = ready[1]
        order = client.create_order("new", "org", ORG_FIELDS)
        order.update({"handler_phone": "13700137000", "address": "厦门市集美区示例大道 8 号"})
        order.confirm()
        client.get(order.path, ORDER_IFACE, "Fields")  # a Get must not broadcast either
        out, err = listener.communicate("", timeout=30)
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()
    assert listener.returncode == 0, err
    received = json.loads(out.strip().splitlines()[-1])
    # The listener works: its own order's InterfacesAdded reached it …
    assert any(sig["member"] == "InterfacesAdded" and sig["args"][0] == own_path
               for sig in received), received
    # … and nothing about root's order did, not even that it exists.
    text = json.dumps(received, ensure_ascii=False)
    assert order.path not in text, f"uid {NOBODY} was told about root's order: {text}"
    # (postcode and enum values are left out: six digits or a method name can occur in
    # any signal by chance)
    secrets = [v for k, v in ORG_FIELDS.items()
               if k not in ("handler_auth_method", "auth_method", "postcode", "vendor")]
    secrets += ["13700137000", "厦门市集美区示例大道 8 号"]
    for value in secrets:
        assert value not in text, f"a signal another user received carries {value!r}"
    print(f"uid {NOBODY} received {len(received)} signal(s) from {BUS_NAME} "
          f"({ORDERS_PATH})", file=sys.stderr)

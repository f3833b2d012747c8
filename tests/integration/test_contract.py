"""
The D-Bus contract: the running certseald's introspection equals
dbus/org.certseal.CertSeal1.xml, the source of truth (docs/architecture.md §3.3, STYLE.md "The XML is
the source of truth").
"""

import subprocess
import xml.etree.ElementTree as ET

from conftest import (INTROSPECTION_XML, KEY_IFACE, MANAGER_IFACE, MANAGER_PATH, OBJMGR_IFACE,
                      ORDER_IFACE, ORG_FIELDS, Bus, Client, Daemon, key_path, run_until, vkey)

EMITS = "org.freedesktop.DBus.Property.EmitsChangedSignal"


def parse_interfaces(xml_text):
    """{interface: {"methods": {name: [(arg, type, direction)]},
                    "signals": {name: [(arg, type)]},
                    "properties": {name: (type, access, emits-changed)}}}"""
    root = ET.fromstring(xml_text)
    result = {}
    for iface in root.findall("interface"):
        methods = {}
        for m in iface.findall("method"):
            methods[m.get("name")] = [(a.get("name"), a.get("type"), a.get("direction", "in"))
                                      for a in m.findall("arg")]
        signals = {}
        for s in iface.findall("signal"):
            signals[s.get("name")] = [(a.get("name"), a.get("type")) for a in s.findall("arg")]
        props = {}
        for p in iface.findall("property"):
            emits = "true"
            for a in p.findall("annotation"):
                if a.get("name") == EMITS:
                    emits = a.get("value")
            props[p.get("name")] = (p.get("type"), p.get("access"), emits)
        result[iface.get("name")] = {"methods": methods, "signals": signals, "properties": props}
    return result


def expected(iface):
    with open(INTROSPECTION_XML) as f:
        return parse_interfaces(f.read())[iface]


def assert_same_interface(running, iface):
    want = expected(iface)
    got = running.get(iface)
    assert got is not None, f"certseald does not export {iface}"
    for what in ("methods", "signals", "properties"):
        missing = sorted(set(want[what]) - set(got[what]))
        extra = sorted(set(got[what]) - set(want[what]))
        assert not missing, f"{iface}: {what} in the XML but not served: {missing}"
        assert not extra, f"{iface}: {what} served but not in the XML: {extra}"
        for name in want[what]:
            assert got[what][name] == want[what][name], (
                f"{iface}.{name}: served {got[what][name]}, XML says {want[what][name]}")


def test_manager_introspection_equals_the_xml(daemon, client):
    running = parse_interfaces(client.introspect(MANAGER_PATH))
    assert_same_interface(running, MANAGER_IFACE)
    assert OBJMGR_IFACE in running


def test_order_introspection_equals_the_xml(daemon, client):
    order = client.create_order("new", "org", {"vendor": ORG_FIELDS["vendor"]})
    running = parse_interfaces(client.introspect(order.path))
    assert_same_interface(running, ORDER_IFACE)


def test_key_introspection_equals_the_xml():
    bus = Bus()  # its own bus: the module's daemon owns the name on the shared one
    d = Daemon(bus)
    client = Client(bus)
    try:
        vkey(d.state_dir, "create", "--vendor", "demo-a", "--serial", "CONTRACT1")
        d.start()
        path = key_path("CONTRACT1")
        assert run_until(lambda: path in client.managed_objects(), 5), "no Key object"
        running = parse_interfaces(client.introspect(path))
        assert_same_interface(running, KEY_IFACE)
    finally:
        client.close()
        d.cleanup()
        bus.close()


def test_busctl_lists_the_manager(daemon, bus):
    cp = subprocess.run(["busctl", "--user", "--no-pager", "introspect", "org.certseal.CertSeal1",
                         MANAGER_PATH], capture_output=True, text=True, timeout=30,
                        env=bus.env(), stdin=subprocess.DEVNULL)
    assert cp.returncode == 0, cp.stderr
    for word in (MANAGER_IFACE, OBJMGR_IFACE, ".CreateOrder", ".Plugins", ".Drivers", ".Vendors",
                 ".Version"):
        assert word in cp.stdout, f"busctl introspect does not list {word}:\n{cp.stdout}"

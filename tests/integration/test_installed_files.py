"""
The installed files of the system service: `meson install --destdir` puts the daemon, the
systemd unit, the bus policy, the activation file, the introspection XML and the polkit
actions where the build's prefix says, and they agree with each other: one bus name, one
binary path (the one installed), one unit; the polkit policy is valid against polkit's
DTD; the bus policy lets only root own the name, which a real system-type dbus-daemon
loading the installed file enforces for a caller running as uid 65534.
"""

import json
import os
import shutil
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import BUILD_DIR, BUS_NAME, short_tmpdir

POLKIT_DTD = "/usr/share/polkit-1/policyconfig-1.dtd"
ACTIONS = {"org.certseal.key-login", "org.certseal.key-manage", "org.certseal.order-create",
           "org.certseal.order-act"}


@pytest.fixture(scope="module")
def installed():
    """{name of the installed file: (path inside DESTDIR, installed path)} and DESTDIR."""
    destdir = tempfile.mkdtemp(prefix="csdest-", dir="/tmp")
    try:
        cp = subprocess.run(["meson", "install", "-C", BUILD_DIR, "--no-rebuild", "--quiet",
                             "--destdir", destdir], capture_output=True, text=True, timeout=300)
        assert cp.returncode == 0, cp.stdout + cp.stderr
        cp = subprocess.run(["meson", "introspect", BUILD_DIR, "--installed"],
                            capture_output=True, text=True, check=True)
        files = {}
        for dest in json.loads(cp.stdout).values():
            files[os.path.basename(dest)] = (destdir + dest, dest)
        yield files, destdir
    finally:
        shutil.rmtree(destdir, ignore_errors=True)


def ini(path):
    """The key=value lines of a unit or activation file (last one wins)."""
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if "=" in line and not line.startswith(("#", ";", "[")):
                k, v = line.split("=", 1)
                out[k.strip()] = v.strip()
    return out


def xmllint(*args):
    return subprocess.run(["xmllint", "--noout", *args], capture_output=True, text=True)


def test_everything_is_installed_where_expected(installed):
    files, destdir = installed
    expect = {
        "certseald": "/libexec/certseald",
        "certseald.service": "/systemd/system/certseald.service",
        "org.certseal.CertSeal1.conf": "/share/dbus-1/system.d/org.certseal.CertSeal1.conf",
        "org.certseal.CertSeal1.service":
            "/share/dbus-1/system-services/org.certseal.CertSeal1.service",
        "org.certseal.CertSeal1.xml": "/share/dbus-1/interfaces/org.certseal.CertSeal1.xml",
        "org.certseal.CertSeal1.policy": "/share/polkit-1/actions/org.certseal.CertSeal1.policy",
    }
    for name, tail in expect.items():
        assert name in files, f"{name} is not installed"
        inside, dest = files[name]
        assert dest.endswith(tail), f"{name} installed as {dest}"
        assert os.path.isfile(inside), f"{inside} missing after meson install"
    assert os.access(files["certseald"][0], os.X_OK)


def test_unit_and_activation_file_agree(installed):
    files, _ = installed
    binary = files["certseald"][1]
    unit = ini(files["certseald.service"][0])
    activation = ini(files["org.certseal.CertSeal1.service"][0])

    assert unit["BusName"] == BUS_NAME
    assert unit["ExecStart"] == f"{binary} --system"
    assert unit["Type"] == "notify"
    assert activation["Name"] == BUS_NAME
    assert activation["Exec"] == f"{binary} --system"
    assert activation["User"] == "root"
    assert activation["SystemdService"] == "certseald.service"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_unit_verifies(installed):
    """systemd-analyze verify finds nothing wrong with the unit but that the binary is not
    on this machine's root (it is in DESTDIR, checked above)."""
    files, _ = installed
    binary = files["certseald"][1]
    cp = subprocess.run(["systemd-analyze", "verify", "--man=no", files["certseald.service"][0]],
                        capture_output=True, text=True, cwd="/tmp")
    problems = [line for line in (cp.stdout + cp.stderr).splitlines()
                if line.strip() and not (os.path.exists(binary) is False
                                         and f"Command {binary} is not executable" in line)]
    assert problems == [], "\n".join(problems)


@pytest.mark.skipif(shutil.which("xmllint") is None, reason="no xmllint (libxml2-utils)")
def test_xml_files_are_valid(installed):
    files, _ = installed
    for name in ("org.certseal.CertSeal1.conf", "org.certseal.CertSeal1.xml"):
        cp = xmllint(files[name][0])
        assert cp.returncode == 0, f"{name}: {cp.stderr}"
    policy = files["org.certseal.CertSeal1.policy"][0]
    if os.path.exists(POLKIT_DTD):
        cp = xmllint("--dtdvalid", POLKIT_DTD, policy)
    else:
        cp = xmllint(policy)
    assert cp.returncode == 0, cp.stderr

    root = ET.parse(policy).getroot()
    actions = {a.get("id"): a for a in root.iter("action")}
    assert set(actions) == ACTIONS
    lang = "{http://www.w3.org/XML/1998/namespace}lang"
    for action_id, a in actions.items():
        for tag in ("description", "message"):
            langs = {e.get(lang) for e in a.findall(tag)}
            assert langs == {None, "zh_CN"}, f"{action_id}: {tag} in {langs}"
        d = a.find("defaults")
        assert (d.findtext("allow_any"), d.findtext("allow_inactive"),
                d.findtext("allow_active")) == ("no", "auth_admin_keep", "yes"), action_id

    interfaces = {i.get("name") for i in ET.parse(files["org.certseal.CertSeal1.xml"][0])
                  .getroot().iter("interface")}
    assert {"org.certseal.CertSeal1.Manager", "org.certseal.CertSeal1.Order",
            "org.certseal.CertSeal1.Key"} <= interfaces


def test_bus_policy_lets_only_root_own_the_name(installed):
    files, _ = installed
    conf = files["org.certseal.CertSeal1.conf"][0]
    root = ET.parse(conf).getroot()
    for policy in root.iter("policy"):
        for allow in policy.iter("allow"):
            owned = allow.get("own") or allow.get("own_prefix")
            if owned is None:
                continue
            assert policy.attrib == {"user": "root"}, f"{policy.attrib} may own {owned}"
            assert owned == BUS_NAME


SYSTEM_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={dir}/socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
  </policy>
  <include>{conf}</include>
</busconfig>
"""

# Asks for the name; prints the reply or the error's name.
REQUEST_NAME = r"""
import sys, dbus
conn = dbus.bus.BusConnection(sys.argv[1])
try:
    print(conn.call_blocking("org.freedesktop.DBus", "/org/freedesktop/DBus",
                             "org.freedesktop.DBus", "RequestName", "su",
                             ("org.certseal.CertSeal1", 4), timeout=10))
except dbus.exceptions.DBusException as e:
    print(e.get_dbus_name())
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a caller as uid 65534")
def test_installed_bus_policy_enforced(installed):
    files, _ = installed
    d = short_tmpdir("csown-")
    with open(os.path.join(d, "system.conf"), "w") as f:
        f.write(SYSTEM_CONF.format(dir=d, conf=files["org.certseal.CertSeal1.conf"][0]))
    proc = subprocess.Popen(["dbus-daemon", f"--config-file={d}/system.conf", "--nofork"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(f"{d}/socket"):
            assert proc.poll() is None, "dbus-daemon refused the installed bus policy"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        address = f"unix:path={d}/socket"

        def request(uid):
            def become():
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            cp = subprocess.run(["/usr/bin/python3", "-c", REQUEST_NAME, address],
                                preexec_fn=become if uid else None, capture_output=True,
                                text=True, timeout=30, cwd="/")
            assert cp.returncode == 0, cp.stderr
            return cp.stdout.strip()

        assert request(65534) == "org.freedesktop.DBus.Error.AccessDenied"
        assert request(0) == "1"  # DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(d, ignore_errors=True)

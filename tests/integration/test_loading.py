"""
Loading vendor drivers and flow plugins (docs/architecture.md §3.1, §3.2): a module with the wrong ABI,
without its entry symbol, whose init fails, or (outside test mode) writable by others is
refused with one clear log line naming the file and the reason, and the daemon runs on
without it.
"""

import os
import re
import shutil

import pytest

from conftest import TEST_MODULES, Client, write_config

PLUGINS = ["good-plugin", "old-minor-plugin", "bad-abi-plugin", "no-entry-plugin", "failing-init-plugin"]
DRIVERS = ["good-driver", "bad-abi-driver", "no-entry-driver", "failing-init-driver",
           "crashing-init-driver", "old-minor-driver"]


def module(name):
    return os.path.join(TEST_MODULES, name + ".so")


def write_vendor(vendor_dir, vendor_id, driver):
    with open(os.path.join(vendor_dir, vendor_id + ".conf"), "w") as f:
        f.write(f"""[vendor]
name = Test vendor {vendor_id}
driver = {driver}

[key]
algorithm = ec-p256

[ca]
crl_url = http://crl.{vendor_id}.certseal.test/issuing.crl

[prices]
new.org = 100
""")


def refusal_lines(log, name):
    return [line for line in log.splitlines() if f"{name}.so: refused" in line]


@pytest.fixture
def test_modules_daemon(make_daemon, tmp_dir):
    for name in PLUGINS + DRIVERS:
        assert os.path.exists(module(name)), f"{module(name)} is not built"
    vendor_dir = os.path.join(tmp_dir, "vendors.d")
    os.mkdir(vendor_dir)
    write_vendor(vendor_dir, "vgood", "good")
    write_vendor(vendor_dir, "vfailing", "failing")
    write_vendor(vendor_dir, "vcrashing", "crashing")
    conf = write_config(os.path.join(tmp_dir, "modules.conf"),
                        daemon={"plugin_dir": TEST_MODULES, "driver_dir": TEST_MODULES,
                                "vendor_dir": vendor_dir})
    return make_daemon(config=conf).start()


def test_only_well_formed_plugins_are_offered(test_modules_daemon, bus):
    c = Client(bus)
    try:
        # old-major: a plugin built against an older ABI major is refused like a newer one;
        # old-minor: one built against an older minor of this major loads
        assert c.manager("Plugins") == ["good", "oldminor"]
    finally:
        c.close()
    log = test_modules_daemon.log()
    for name, reason in [("bad-abi-plugin", r"ABI"), ("old-major-plugin", r"ABI major version 1"),
                         ("no-entry-plugin", r"missing symbol"),
                         ("failing-init-plugin", r"init failed|refused: .*backend unreachable")]:
        lines = [line for line in refusal_lines(log, name) if "certseal_driver" not in line]
        assert len(lines) == 1, f"{name}: expected one refusal line, got {lines}\n{log}"
        assert re.search(reason, lines[0]), lines[0]
        assert module(name) in lines[0]


def test_drivers_that_load_are_listed_and_broken_ones_refused(test_modules_daemon, bus):
    c = Client(bus)
    try:
        drivers = c.manager("Drivers")
        vendors = c.manager("Vendors")
    finally:
        c.close()
    assert "good" in drivers and "failing" in drivers and "crashing" in drivers
    # Built against minor 0 of the driver ABI: still loads under a newer minor.
    assert "oldminor" in drivers
    assert len(drivers) == 4, drivers
    assert sorted(v[0] for v in vendors) == ["vcrashing", "vfailing", "vgood"]
    log = test_modules_daemon.log()
    for name, reason in [("bad-abi-driver", r"ABI"), ("no-entry-driver", r"missing symbol")]:
        lines = [line for line in refusal_lines(log, name) if "certseal_plugin" not in line]
        assert len(lines) == 1, f"{name}: expected one refusal line, got {lines}\n{log}"
        assert re.search(reason, lines[0]), lines[0]
    # The failing driver's init refuses its vendor only, in one line naming the file.
    lines = [line for line in log.splitlines()
             if "vfailing" in line and "refused" in line]
    assert len(lines) == 1, log
    assert module("failing-init-driver") in lines[0]
    assert not [line for line in log.splitlines() if "vgood" in line and "refused" in line]
    # The crashing driver's init ran in a probe child: its vendor is refused, the daemon
    # lives on and serves the good vendor.
    lines = [line for line in log.splitlines() if "vcrashing" in line and "refused" in line]
    assert len(lines) == 1, log
    assert "crashed" in lines[0] and module("crashing-init-driver") in lines[0], lines[0]
    assert test_modules_daemon.running


def test_daemon_serves_the_good_flow(test_modules_daemon, bus):
    c = Client(bus)
    try:
        order = c.create_order("good", "org", {"note": "hello"})
        assert order.state == "draft"
        assert order.get("Missing") == []
        assert "Finish" in order.get("NextActions")
        assert test_modules_daemon.running
    finally:
        c.close()


def test_module_writable_by_others_is_refused_outside_test_mode(make_daemon, bus, tmp_dir):
    plugin_dir = os.path.join(tmp_dir, "plugins")
    driver_dir = os.path.join(tmp_dir, "drivers")
    os.mkdir(plugin_dir)
    os.mkdir(driver_dir)
    writable = os.path.join(plugin_dir, "a-good-writable.so")
    shutil.copy(module("good-plugin"), writable)
    os.chmod(writable, 0o666)
    # The control: the same plugin, not writable by others, loads.
    safe = os.path.join(plugin_dir, "b-good.so")
    shutil.copy(module("good-plugin"), safe)
    os.chmod(safe, 0o644)
    if os.geteuid() != 0:
        pytest.skip("files copied by a non-root user are refused for their owner first")
    conf = write_config(os.path.join(tmp_dir, "strict.conf"),
                        daemon={"test_mode": "false", "plugin_dir": plugin_dir,
                                "driver_dir": driver_dir})
    d = make_daemon(config=conf).start()
    c = Client(bus)
    try:
        assert c.manager("Plugins") == ["good"]
    finally:
        c.close()
    log = d.log()
    lines = [line for line in log.splitlines() if "a-good-writable.so: refused" in line]
    assert len(lines) == 1, log
    assert "writable" in lines[0]
    assert not [line for line in log.splitlines() if "b-good.so: refused" in line], log

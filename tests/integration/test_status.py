"""
`certseal status`: what the daemon offers (version, flows, vendors), and the CLI's exit
codes when the daemon is missing or the command is wrong (cli/certseal.c).
"""

import json

from conftest import BUS_NAME, run_cli


def vendor_ids(vendors):
    """Ids from the JSON form of Vendors a(sss): arrays [id, name, driver] or objects."""
    ids = []
    for v in vendors:
        if isinstance(v, dict):
            ids.append(v.get("id"))
        else:
            ids.append(v[0])
    return ids


def test_status_shows_version_flow_and_vendors(make_daemon, bus, client):
    make_daemon().start()
    version = client.manager("Version")
    cp = run_cli(bus, "status")
    assert cp.returncode == 0, cp.stderr
    assert "certseald" in cp.stdout
    assert version in cp.stdout
    assert "new" in cp.stdout
    assert "demo-a" in cp.stdout and "demo-b" in cp.stdout


def test_status_json_parses(make_daemon, bus):
    make_daemon().start()
    cp = run_cli(bus, "--json", "status")
    assert cp.returncode == 0, cp.stderr
    doc = json.loads(cp.stdout)
    assert {"change", "new", "reissue", "renew", "unlock"} <= set(doc["Plugins"])
    assert doc["Plugins"] == sorted(doc["Plugins"])
    assert isinstance(doc["Version"], str) and doc["Version"]
    assert vendor_ids(doc["Vendors"]) == ["demo-a", "demo-b"]


def test_status_exits_3_when_no_daemon_owns_the_name(make_daemon, bus):
    d = make_daemon().start()
    assert d.stop() == 0
    assert not bus.name_has_owner(BUS_NAME)
    cp = run_cli(bus, "status")
    assert cp.returncode == 3, (cp.stdout, cp.stderr)
    cp = run_cli(bus, "--json", "status")
    assert cp.returncode == 3, (cp.stdout, cp.stderr)
    assert "code" in json.loads(cp.stdout)["error"]


def test_unknown_command_exits_2(bus):
    cp = run_cli(bus, "frobnicate")
    assert cp.returncode == 2, (cp.stdout, cp.stderr)

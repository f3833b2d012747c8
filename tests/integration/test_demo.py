"""
The demo script from a checkout (DESIGN §4): it runs the daemon with the development
configuration, shows its status, fills in and confirms an application (refusing a mistyped
resident ID on the way) and stops everything it started.
"""

import os
import subprocess

import pytest

from conftest import BUILD_DIR, SOURCE_DIR

DEMO = os.path.join(SOURCE_DIR, "demo.sh")


def test_demo_script_runs_and_shows_status(bus, tmp_dir):
    env = bus.env(CERTSEAL_SKIP_INSTALL="1", CERTSEAL_BUILD_DIR=BUILD_DIR, LC_ALL="C.UTF-8",
                  NO_COLOR="1", CERTSEAL_DEMO_DIR=tmp_dir)
    cp = subprocess.run(["bash", DEMO], capture_output=True, text=True, env=env,
                        stdin=subprocess.DEVNULL, timeout=120, cwd=SOURCE_DIR)
    assert cp.returncode == 0, f"demo.sh exited {cp.returncode}:\n{cp.stdout}\n{cp.stderr}"
    out = cp.stdout + cp.stderr
    assert "certseald" in cp.stdout and "Flows:    new" in cp.stdout, out
    assert "id_number: bad check character" in out, out
    assert "State:     confirmed" in cp.stdout, out
    assert "certseald stopped" in cp.stdout, out
    assert os.path.exists(os.path.join(tmp_dir, "state", "ledger.db"))
    assert "\x1b[" not in cp.stdout  # no colours when not on a terminal
    # certseal keys lists the two virtual keys with vendor, serial, certificate and PIN.
    for serial, vendor in (("DEMOA0001", "demo-a"), ("DEMOB0001", "demo-b")):
        line = next((l for l in cp.stdout.splitlines() if serial in l), "")
        assert vendor in line and "none" in line and "6 tries left" in line, out

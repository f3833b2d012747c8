"""
The demo script from a checkout (DESIGN §4): it runs the daemon with the development
configuration and shows its status. Skipped until demo.sh exists.
"""

import os
import subprocess

import pytest

from conftest import BUILD_DIR, SOURCE_DIR

DEMO = os.path.join(SOURCE_DIR, "demo.sh")


@pytest.mark.skipif(not os.path.exists(DEMO), reason=f"{DEMO} does not exist yet")
def test_demo_script_runs_and_shows_status(bus):
    env = bus.env(CERTSEAL_SKIP_INSTALL="1", CERTSEAL_BUILD_DIR=BUILD_DIR, LC_ALL="C.UTF-8",
                  NO_COLOR="1")
    cp = subprocess.run(["bash", DEMO], capture_output=True, text=True, env=env,
                        stdin=subprocess.DEVNULL, timeout=120, cwd=SOURCE_DIR)
    assert cp.returncode == 0, f"demo.sh exited {cp.returncode}:\n{cp.stdout}\n{cp.stderr}"
    assert "certseald" in cp.stdout, cp.stdout
    # certseal keys lists the two virtual keys with vendor, serial, certificate and PIN.
    for serial, vendor in (("DEMOA0001", "demo-a"), ("DEMOB0001", "demo-b")):
        line = next((l for l in cp.stdout.splitlines() if serial in l), "")
        assert vendor in line and "none" in line and "6 tries left" in line, cp.stdout

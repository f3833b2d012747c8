"""
certseal-driver-check, the vendor conformance checker: it passes on the pkcs11 driver over
the virtual UKey (including removal handling), and on the pkcs11 driver over plain
SoftHSM2 loaded directly — a module we did not write.
"""

import json
import os
import shutil
import subprocess

import pytest

from conftest import DEV_VENDORS_D, DRIVER_CHECK, PKCS11_DRIVER, VKEY, vkey


def check(*args, pin="123456", env=None):
    cp = subprocess.run([DRIVER_CHECK, PKCS11_DRIVER, *args], input=pin + "\n",
                        capture_output=True, text=True, timeout=120, env=env)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "not ok" not in cp.stdout
    return cp.stdout


def test_pkcs11_over_vkey_passes_every_check(tmp_dir):
    vkey(tmp_dir, "create", "--vendor", "demo-b", "--serial", "DC0001")
    out = check("--profile", os.path.join(DEV_VENDORS_D, "demo-b.conf"), "--state-dir", tmp_dir,
                "--remove-command", f"{VKEY} --state-dir {tmp_dir} unplug DC0001")
    for name in ("enumerate finds the token", "counts tries down", "rsa-2048 signature verifies",
                 "ec-p256 signature verifies", "certificate round trip", "data object round trip",
                 "removed token leaves the list", "delete_key deletes a key pair",
                 "deleted key pair no longer signs", "the key pair beside it still signs"):
        assert name in out, out
    assert "SKIP" not in out


def test_vkey_list_json_shows_vendor_identity_and_plug_state(tmp_dir):
    vkey(tmp_dir, "create", "--vendor", "demo-a", "--serial", "LJ0001")
    vkey(tmp_dir, "create", "--vendor", "demo-b", "--serial", "LJ0002", "--unplugged")
    keys = {k["serial"]: k for k in json.loads(vkey(tmp_dir, "list", "--json"))}
    assert keys["LJ0001"]["manufacturer"] == "certseal demo A" and keys["LJ0001"]["plugged"]
    assert keys["LJ0002"]["manufacturer"] == "certseal demo B" and not keys["LJ0002"]["plugged"]
    assert keys["LJ0001"]["tries_left"] == keys["LJ0001"]["max_tries"] == 6
    vkey(tmp_dir, "plug", "LJ0002")
    assert json.loads(vkey(tmp_dir, "list", "--json"))[1]["plugged"]


@pytest.mark.skipif(shutil.which("softhsm2-util") is None, reason="softhsm2-util is missing")
def test_pkcs11_over_plain_softhsm2_passes(tmp_dir):
    tokens = os.path.join(tmp_dir, "tokens")
    os.mkdir(tokens)
    conf = os.path.join(tmp_dir, "softhsm2.conf")
    with open(conf, "w") as f:
        f.write(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = dict(os.environ, SOFTHSM2_CONF=conf)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "plain", "--pin",
                    "123456", "--so-pin", "12345678"], env=env, check=True, capture_output=True,
                   timeout=60)
    profile = os.path.join(tmp_dir, "plain.conf")
    with open(profile, "w") as f:
        f.write("[vendor]\nname = Plain SoftHSM2\ndriver = pkcs11\n"
                "[token]\nmodule = /usr/lib/softhsm/libsofthsm2.so\n"
                "[key]\nalgorithm = rsa-2048\n[ca]\ncrl_url = http://crl.plain.test/x.crl\n")
    out = check("--profile", profile, "--state-dir", tmp_dir, env=env)
    assert "rsa-2048 signature verifies" in out

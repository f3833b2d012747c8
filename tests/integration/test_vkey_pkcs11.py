"""
The virtual UKey judged by a peer's tool: OpenSC's pkcs11-tool (Debian `opensc`) against
certseal-vkey-pkcs11.so, as a vendor's key would be — list, login, sign and verify, the
user PIN locked by wrong PINs and reset with the SO PIN (--init-pin), the SO PIN's own
try counter, --change-pin within the vendor's PIN length, the advertised mechanisms
working (--test) — plus what the tool cannot do, by tests/vkey-threads.c: two threads
signing on one key while it is pulled, a wrong CKU_CONTEXT_SPECIFIC PIN counted, a
failed C_Sign ending its operation.

Keys come from certseal-vkey with the demo-a profile (PIN 6–16 characters, 6 tries, SO
PIN 10 tries); no daemon runs. PINs on the command line are fine here: virtual keys only.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import BUILD_DIR, vkey

MODULE = os.path.join(BUILD_DIR, "drivers", "vkey", "certseal-vkey-pkcs11.so")
THREADS = os.path.join(BUILD_DIR, "tests", "vkey-threads")
PIN, SO_PIN = "123456", "12345678"


@pytest.fixture
def key(tmp_dir):
    """One inserted demo-a key: (state dir, token dir, environment)."""
    if shutil.which("pkcs11-tool") is None:
        pytest.fail("pkcs11-tool is missing: run tests/install-deps.sh (Debian opensc)")
    vkey(tmp_dir, "create", "--vendor", "demo-a", "--serial", "PT0001")
    root = os.path.join(tmp_dir, "drivers", "vkey")
    env = dict(os.environ, CERTSEAL_VKEY_DIR=root)
    return tmp_dir, os.path.join(root, "PT0001"), env


def sanitizer_env(env):
    """pkcs11-tool is not built with AddressSanitizer: when the module is (the ASan build),
    its runtime is preloaded; leaks are then checked for the module's own tests, not the
    tool's."""
    libs = subprocess.run(["ldd", MODULE], capture_output=True, text=True).stdout
    m = re.search(r"(/\S*libasan\.so\S*)", libs)
    if m is None:
        return env
    return dict(env, LD_PRELOAD=m.group(1),
                ASAN_OPTIONS="detect_leaks=0:verify_asan_link_order=0")


def tool(env, *args, check=True):
    cp = subprocess.run(["pkcs11-tool", "--module", MODULE, *args], capture_output=True,
                        text=True, env=sanitizer_env(env), stdin=subprocess.DEVNULL,
                        timeout=60)
    out = cp.stdout + cp.stderr
    if check:
        assert cp.returncode == 0, f"pkcs11-tool {' '.join(args)}: {out}"
    return out


def token_flags(env):
    out = tool(env, "--list-token-slots")
    return re.search(r"token flags\s*:\s*(.*)", out).group(1)


def rv_of(out):
    m = re.search(r"rv = (CKR_[A-Z_]+)", out)
    return m.group(1) if m else None


def test_the_key_is_listed_with_the_vendors_identity_and_pin_length(key):
    _, _, env = key
    out = tool(env, "--list-token-slots")
    assert "certseal demo A" in out
    assert re.search(r"serial num\s*:\s*PT0001", out)
    assert re.search(r"pin min/max\s*:\s*6/16", out)
    assert "PIN initialized" in token_flags(env)


def test_login_sign_and_verify(key, tmp_dir):
    _, _, env = key
    tool(env, "--login", "--pin", PIN, "--keypairgen", "--key-type", "EC:prime256v1",
         "--id", "01", "--label", "k1")
    digest = os.path.join(tmp_dir, "hash")
    sig = os.path.join(tmp_dir, "sig")
    with open(digest, "wb") as f:
        f.write(hashlib.sha256(b"to be sealed").digest())
    tool(env, "--login", "--pin", PIN, "--sign", "-m", "ECDSA", "--id", "01", "-i", digest,
         "-o", sig)
    out = tool(env, "--login", "--pin", PIN, "--verify", "-m", "ECDSA", "--id", "01",
               "-i", digest, "--signature-file", sig)
    assert "Signature is valid" in out
    # Another digest does not verify with that signature.
    with open(digest, "wb") as f:
        f.write(hashlib.sha256(b"something else").digest())
    out = tool(env, "--login", "--pin", PIN, "--verify", "-m", "ECDSA", "--id", "01",
               "-i", digest, "--signature-file", sig, check=False)
    assert "Signature is valid" not in out


def test_the_advertised_mechanisms_work(key):
    _, _, env = key
    tool(env, "--login", "--pin", PIN, "--keypairgen", "--key-type", "EC:prime256v1",
         "--id", "02", "--label", "k2")
    out = tool(env, "--login", "--pin", PIN, "--test")
    assert "all 4 digest functions seem to work" in out, out
    assert "No errors" in out, out


def test_wrong_pins_lock_the_key_and_the_so_pin_resets_it(key):
    _, _, env = key
    answers = [rv_of(tool(env, "--login", "--pin", "000000", "--list-objects", check=False))
               for _ in range(6)]
    assert answers == ["CKR_PIN_INCORRECT"] * 5 + ["CKR_PIN_LOCKED"]
    assert "user PIN locked" in token_flags(env)
    # Locked: even the right PIN is refused.
    assert rv_of(tool(env, "--login", "--pin", PIN, "--list-objects",
                      check=False)) == "CKR_PIN_LOCKED"
    # The SO resets it; a new PIN outside the vendor's length is refused first.
    out = tool(env, "--login", "--login-type", "so", "--so-pin", SO_PIN, "--init-pin",
               "--new-pin", "12", check=False)
    assert rv_of(out) == "CKR_PIN_LEN_RANGE", out
    tool(env, "--login", "--login-type", "so", "--so-pin", SO_PIN, "--init-pin",
         "--new-pin", "246810")
    assert "locked" not in token_flags(env)
    tool(env, "--login", "--pin", "246810", "--list-objects")


def test_the_so_pin_locks_after_its_tries(key):
    _, _, env = key
    answers = [rv_of(tool(env, "--login", "--login-type", "so", "--so-pin", "00000000",
                          "--init-pin", "--new-pin", "246810", check=False))
               for _ in range(10)]
    assert answers == ["CKR_PIN_INCORRECT"] * 9 + ["CKR_PIN_LOCKED"]
    assert "SO PIN locked" in token_flags(env)
    listed = json.loads(vkey(key[0], "list", "--json"))
    assert (listed[0]["so_tries_left"], listed[0]["so_max_tries"]) == (0, 10)
    out = tool(env, "--login", "--login-type", "so", "--so-pin", SO_PIN, "--init-pin",
               "--new-pin", "246810", check=False)
    assert rv_of(out) == "CKR_PIN_LOCKED", out
    # The user PIN still works: only unlocking is impossible now.
    tool(env, "--login", "--pin", PIN, "--list-objects")


def test_change_pin_within_the_vendors_length(key):
    _, _, env = key
    out = tool(env, "--login", "--pin", PIN, "--change-pin", "--new-pin", "12345",
               check=False)
    assert rv_of(out) == "CKR_PIN_LEN_RANGE", out
    out = tool(env, "--login", "--pin", PIN, "--change-pin", "--new-pin", "1" * 17,
               check=False)
    assert rv_of(out) == "CKR_PIN_LEN_RANGE", out
    tool(env, "--login", "--pin", PIN, "--change-pin", "--new-pin", "654321")
    assert rv_of(tool(env, "--login", "--pin", PIN, "--list-objects",
                      check=False)) == "CKR_PIN_INCORRECT"
    tool(env, "--login", "--pin", "654321", "--list-objects")


def threads(key, check, *args):
    _, token_dir, env = key
    cp = subprocess.run([THREADS, MODULE, token_dir, check, *args], capture_output=True,
                        text=True, env=env, stdin=subprocess.DEVNULL, timeout=120)
    assert cp.returncode == 0, f"vkey-threads {check}: rc {cp.returncode}: {cp.stderr}"
    return cp.stdout


def test_pulling_the_key_while_two_threads_sign_crashes_nothing(key):
    for _ in range(3):
        vkey(key[0], "plug", "PT0001")
        assert "both saw the key removed" in threads(key, "unplug-while-signing", PIN)


def test_a_wrong_context_specific_pin_is_counted(key):
    assert "is counted" in threads(key, "context-specific", PIN)


def test_a_failed_sign_ends_the_operation(key):
    assert "ended the operation" in threads(key, "sign-fault", PIN)

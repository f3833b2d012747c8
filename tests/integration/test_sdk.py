"""
The driver SDK (docs/architecture.md §3.1): `meson install` puts certseal/driver.h, certseal-driver.pc
and the linker version script into a prefix; an example driver is then compiled out of
tree with nothing but pkg-config and a C compiler, exports only the three ABI symbols,
and certseald loads it and shows its token as a Key — a vendor needs no source tree.
"""

import glob
import os
import shutil
import subprocess

from conftest import BUILD_DIR, KEY_IFACE, SOURCE_DIR, Client, key_path, run_until, write_config

EXAMPLE = os.path.join(SOURCE_DIR, "tests", "sdk", "example-driver.c")


def run(cmd, **kw):
    cp = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                        timeout=120, **kw)
    assert cp.returncode == 0, f"{' '.join(cmd)}:\n{cp.stdout}\n{cp.stderr}"
    return cp.stdout


def test_out_of_tree_driver_builds_against_the_installed_sdk_and_loads(make_daemon, bus, tmp_dir):
    destdir = os.path.join(tmp_dir, "root")
    run(["meson", "install", "-C", BUILD_DIR, "--destdir", destdir, "--no-rebuild", "--quiet"])
    pcs = glob.glob(os.path.join(destdir, "**", "certseal-driver.pc"), recursive=True)
    assert len(pcs) == 1, pcs
    env = dict(os.environ, PKG_CONFIG_LIBDIR=os.path.dirname(pcs[0]),
               PKG_CONFIG_SYSROOT_DIR=destdir)
    env.pop("PKG_CONFIG_PATH", None)
    cflags = run(["pkg-config", "--cflags", "certseal-driver"], env=env).split()
    driver_map = run(["pkg-config", "--variable=driver_map", "certseal-driver"],
                               env=env).strip()
    if not driver_map.startswith(destdir):  # older pkg-config: no sysroot for variables
        driver_map = destdir + driver_map
    assert os.path.exists(driver_map), driver_map

    # A vendor's tree: the example source only.
    vendor_src = os.path.join(tmp_dir, "vendor")
    os.mkdir(vendor_src)
    shutil.copy(EXAMPLE, vendor_src)
    driver_dir = os.path.join(tmp_dir, "drivers")
    os.mkdir(driver_dir)
    so = os.path.join(driver_dir, "example.so")
    run(["cc", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror", "-shared", "-fPIC", *cflags,
         os.path.join(vendor_src, "example-driver.c"), "-o", so,
         f"-Wl,--version-script,{driver_map}"], cwd=vendor_src)
    symbols = run(["nm", "-D", "--defined-only", so]).split()
    exported = sorted(s for s in symbols if s.startswith("certseal_"))
    assert exported == ["certseal_driver_abi_major", "certseal_driver_abi_minor",
                        "certseal_driver_get_ops"], symbols

    vendor_dir = os.path.join(tmp_dir, "vendors.d")
    os.mkdir(vendor_dir)
    with open(os.path.join(vendor_dir, "vexample.conf"), "w") as f:
        f.write("[vendor]\nname = Example\ndriver = example\n[key]\nalgorithm = ec-p256\n"
                "[ca]\ncrl_url = http://crl.example.test/x.crl\n")
    conf = write_config(os.path.join(tmp_dir, "sdk.conf"),
                        daemon={"driver_dir": driver_dir, "vendor_dir": vendor_dir})
    d = make_daemon(config=conf).start()
    c = Client(bus)
    try:
        assert c.manager("Drivers") == ["example"]
        path = key_path("EX0001", driver="example")
        assert run_until(lambda: path in c.managed_objects(), 3), d.log()
        props = c.get_all(path, KEY_IFACE)
        assert props["Vendor"] == "vexample" and props["Manufacturer"] == "Example Vendor"
        assert props["PinTriesLeft"] == 3
    finally:
        c.close()
    assert "loaded driver example" in d.log()

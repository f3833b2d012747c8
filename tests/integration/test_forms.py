"""
DownloadForm (docs/architecture.md §1.1, §3.3): the blank seal-sample forms come over D-Bus as PDF bytes
that poppler reads back; an unknown form name is refused naming the field.
"""

import os
import subprocess

import dbus
import pytest

from conftest import MANAGER_PATH, MANAGER_IFACE


def download(client, name):
    return bytes(client.conn.call_blocking("org.certseal.CertSeal1", MANAGER_PATH, MANAGER_IFACE,
                                           "DownloadForm", "s", [name], timeout=30))


@pytest.mark.parametrize("name,title", [("seal_form_org", "电子印章采样表（单位）"),
                                        ("seal_form_person", "个人签章采样表")])
def test_download_blank_seal_form(daemon, client, tmp_dir, name, title):
    pdf = download(client, name)
    assert pdf.startswith(b"%PDF-")
    path = os.path.join(tmp_dir, name + ".pdf")
    with open(path, "wb") as f:
        f.write(pdf)
    text = subprocess.run(["pdftotext", "-layout", path, "-"], capture_output=True, text=True,
                          check=True).stdout
    assert title in text
    # Twice gives the same form.
    assert download(client, name) == pdf


def test_unknown_form_refused(daemon, client):
    with pytest.raises(dbus.exceptions.DBusException) as e:
        download(client, "../../etc/passwd")
    assert e.value.get_dbus_name() == "org.certseal.Error.InvalidInput"
    assert e.value.get_dbus_message().startswith("name: no form '../../etc/passwd'")


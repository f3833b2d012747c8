"""
The assistant's 订单查询 (order query), 电子印章 (e-seal) and renewal reminder as a person
uses them: the vendor, 单位/个人 and the number, the code sent to the phone on file typed
into a password entry, the orders with their state and next steps in words, 继续办理
carrying an unpaid order on to the payment QR code, the invoice saved as a PDF, refusals
shown next to the field they are about; the key's seal shown and a document sealed with
it; a toast when the key's certificate is Renewable. A real window under Xvfb, driven
through AT-SPI and XTest, against the real certseald and a virtual key that
tests/make-sealed-key prepared with a certificate and an e-seal from the daemon's CA.
"""

import os
import subprocess

import pytest

from conftest import BUILD_DIR, CLI, ClockDaemon, Client, key_path, run_until, short_tmpdir, vkey, \
    write_config
from flow_helpers import Office, resident_id, secret_of, unpaid_application

N = 61000  # the subjects of this file (their resident IDs and phones)
MAKE_SEALED_KEY = os.path.join(BUILD_DIR, "tests", "make-sealed-key")
SEALED = "AS0001"  # a key with a certificate and an e-seal
PIN = "123456"
SEAL_NAME = "厦门示例科技有限公司"  # what make-sealed-key puts in the seal


@pytest.fixture(scope="module")
def daemon(bus):
    """certseald whose query codes may follow an order's own SMS code at once, with the
    key SEALED inserted."""
    workdir = short_tmpdir("csaq-")
    conf = write_config(os.path.join(workdir, "certseald.conf"),
                        sms={"resend_cooldown_s": 0})
    d = ClockDaemon(bus, config=conf)
    try:
        picture = os.path.join(d.workdir, "seal.png")
        subprocess.run(["convert", "-size", "160x160", "xc:white", "-fill", "none", "-stroke",
                        "red", "-strokewidth", "8", "-draw", "circle 80,80 80,12", "-fill",
                        "red", "-stroke", "none", "-draw", "circle 80,80 80,56", picture],
                       check=True, timeout=30)
        vkey(d.state_dir, "create", "--vendor", "demo-a", "--serial", SEALED)
        cp = subprocess.run([MAKE_SEALED_KEY, "--config", conf, "--state-dir", d.state_dir,
                             "--vendor", "demo-a", "--serial", SEALED, "--picture", picture],
                            input=PIN + "\n", capture_output=True, text=True, timeout=60)
        assert cp.returncode == 0, cp.stderr
        d.start()
        yield d
    finally:
        d.cleanup()


def open_query(w):
    w.click(w.wait_find(role="push button", name="订单查询"))
    return w.wait_find(role="text", name="证件号码（统一社会信用代码或身份证号）")


def send_code(w, office, number, phone):
    """个人数字证书, the number, 发送验证码: the code the phone on file received."""
    w.click(w.wait_find(name="个人数字证书"))
    w.type_into(w.find(role="text", name="证件号码（统一社会信用代码或身份证号）"), number)
    mark = office.mark("sms")
    w.click(w.find(role="push button", name="发送验证码"))
    w.wait_find(role="label", contains="验证码已发送至")
    msg = office.wait_message("sms", to=phone, template="query_code", after=mark)
    return secret_of(msg)


def find_orders(w, code):
    entry = w.wait_find(role="password text", name="短信中的验证码")
    w.type_into(entry, code)
    w.press(w.find(role="push button", name="确认"))


def test_a_query_by_sms_code_continues_an_unpaid_order_to_the_payment_qr(
        daemon, client, window_factory):
    office = Office(daemon.state_dir)
    a = unpaid_application(client, office, n=N + 1)
    w = window_factory()
    open_query(w)
    w.screenshot("query-form")
    code = send_code(w, office, a.fields["id_number"], a.handler_phone)
    w.screenshot("query-code-sent")

    # A wrong code first: the daemon's refusal next to the code's field; the right one then.
    find_orders(w, f"{(int(code) + 1) % 1000000:06d}")
    w.wait_find(role="label", name="验证码不正确：此验证码还可尝试 4 次。")
    w.screenshot("query-wrong-code")
    find_orders(w, code)
    row = w.wait_find(role="list item", name=f"订单 {a.id}")
    assert w.wait(lambda: "状态：待支付" in w.texts(row))
    texts = w.texts(row)
    assert f"订单 {a.id}：证书申请" in texts, texts
    assert any(t.startswith("下一步：") and "支付" in t for t in texts), texts
    assert w.find(role="label", contains="验证码不正确") is None or not w.find(
        role="label", contains="验证码不正确").getState().contains(w.pyatspi.STATE_VISIBLE)

    # How the certificate password travels: masked, and shown only when asked.
    delivery = a.prop("PasswordDelivery")
    assert delivery.startswith("sms:") and "****" in delivery, delivery
    assert "密码获取方式：••••••" in texts, texts
    w.click(w.find(role="toggle button", name=f"显示订单 {a.id} 的密码获取方式") or
            w.find(name=f"显示订单 {a.id} 的密码获取方式"))
    w.wait(lambda: any(delivery[4:] in t for t in w.texts(row)))
    assert f"密码获取方式：短信发送至 {delivery[4:]}" in w.texts(row), w.texts(row)
    w.screenshot("query-orders")

    # 继续办理: the order page, and on to the payment QR code.
    w.click(w.find(role="push button", name=f"继续办理订单 {a.id}"))
    w.wait_find(role="label", name=f"订单 {a.id}：待支付")
    w.wait_find(role="label", contains="下一步：支付")
    w.screenshot("query-continue-order")
    w.click(w.wait_find(role="push button", name="测试收银台"))
    w.wait_find(role="image", name="付款二维码")
    w.wait_find(role="label", contains="请扫描二维码支付")
    shot = w.screenshot("query-continue-payment-qr")
    cp = subprocess.run(["zbarimg", "-q", "--raw", shot], capture_output=True, text=True)
    assert cp.returncode == 0, "no readable QR code on the payment page"
    payload, _expires = a.start_payment()
    assert cp.stdout.strip() == payload, (cp.stdout, payload)
    assert a.state == "unpaid"
    assert code not in daemon.log()


def test_an_unknown_number_is_named_next_to_the_field(daemon, window_factory):
    w = window_factory()
    entry = open_query(w)
    number = resident_id(N + 500)
    w.click(w.wait_find(name="个人数字证书"))
    w.type_into(entry, number)
    w.click(w.find(role="push button", name="发送验证码"))
    w.wait_find(role="label", name=f"证件号码 {number} 没有证书业务记录。")
    w.screenshot("query-unknown-number")
    # A malformed number: the daemon's reason, at the same place.
    w.type_into(entry, "110105194912310021")
    w.click(w.find(role="push button", name="发送验证码"))
    w.wait_find(role="label", contains="证件号码无效：")
    assert w.find(role="label", contains="没有证书业务记录") is None


def test_the_query_page_in_english(daemon, window_factory):
    w = window_factory(lang="en_US.UTF-8")
    w.click(w.wait_find(role="push button", name="Look up orders"))
    w.wait_find(role="text", name="ID number (unified social credit code or resident ID)")
    w.wait_find(role="push button", name="Send the code")
    w.wait_find(role="password text", name="The code in the SMS")
    w.wait_find(name="Personal certificate")
    w.screenshot("query-english")


def test_a_paid_orders_invoice_is_saved_as_the_pdf_the_daemon_gives(
        daemon, client, window_factory, tmp_path):
    office = Office(daemon.state_dir)
    a = unpaid_application(client, office, n=N + 2)
    a.pay()
    assert a.prop("InvoiceAvailable") is True
    w = window_factory()
    open_query(w)
    code = send_code(w, office, a.fields["id_number"], a.handler_phone)
    find_orders(w, code)
    row = w.wait_find(role="list item", name=f"订单 {a.id}")
    assert w.wait(lambda: "状态：审核中" in w.texts(row))
    w.click(w.wait_find(role="push button", name=f"保存订单 {a.id} 的发票"))
    visible = w.pyatspi.STATE_VISIBLE
    chooser = w.wait(lambda: next((n for n in w.nodes() if n.name == "保存发票"
                                   and n.getState().contains(visible)), None))
    assert chooser is not None, "no file chooser"
    w.focus_window("保存发票")
    target = tmp_path / "invoice.pdf"
    focused = w.pyatspi.STATE_FOCUSED
    name = w.wait(lambda: next((n for n in w.nodes(chooser) if n.getRoleName() == "text"
                                and n.getState().contains(focused)), None), 5)
    assert name is not None, "the save dialog's name entry has no focus"
    w.keys("ctrl+a", "BackSpace")
    w.type_keys(str(target))
    w.screenshot("query-invoice-chooser")
    for _ in range(3):
        w.keys("Return")
        if w.wait(lambda: not chooser.getState().contains(visible), 3):
            break
    assert w.wait(lambda: target.exists() and target.stat().st_size > 0), \
        f"no invoice at {target}: {w.texts()}"
    w.wait_find(role="label", contains="发票已保存")
    assert target.read_bytes() == a.invoice()
    assert target.read_bytes().startswith(b"%PDF-")
    w.screenshot("query-invoice-saved")


def choose_file(w, title, path=None):
    """Answer the file chooser titled @title: the location @path typed (Ctrl+L), or what it
    proposes; Return until it closes."""
    visible = w.pyatspi.STATE_VISIBLE
    chooser = w.wait(lambda: next((n for n in w.nodes() if n.name == title
                                   and n.getState().contains(visible)), None))
    assert chooser is not None, f"no file chooser {title}"
    w.focus_window(title)
    focused = w.pyatspi.STATE_FOCUSED
    if path is not None:
        location = None
        for _ in range(5):
            w.keys("ctrl+l")
            location = w.wait(lambda: next((n for n in w.nodes(chooser)
                                            if n.getRoleName() == "text"
                                            and n.getState().contains(focused)), None), 3)
            if location is not None:
                break
        assert location is not None, "the file chooser shows no location entry"
        w.type_keys(str(path))
    else:
        assert w.wait(lambda: next((n for n in w.nodes(chooser) if n.getRoleName() == "text"
                                    and n.getState().contains(focused)), None), 5), \
            "the save dialog's name entry has no focus"
    for _ in range(3):
        w.keys("Return")
        if w.wait(lambda: not chooser.getState().contains(visible), 3):
            break
    assert not chooser.getState().contains(visible), f"{title} stays open"


def test_the_seal_page_shows_the_keys_seal_and_seals_a_document(daemon, window_factory,
                                                               tmp_path):
    w = window_factory(args=("--state-dir", daemon.state_dir))
    w.wait_find(role="list item", name=f"UKey {SEALED}")
    w.click(w.wait_find(role="push button", name="电子印章"))
    # Logged in first (the key's password), then the seal read from the key.
    w.type_into(w.wait_find(role="password text", name="证书密码"), PIN)
    w.screenshot("seal-login")
    w.click(w.find(role="push button", name="登录"))
    w.wait_find(role="label", name=f"印章名称：{SEAL_NAME}")
    texts = w.texts()
    assert f"持有人：{SEAL_NAME}" in texts, texts
    assert f"印章编码：{SEALED}" in texts, texts
    assert any(t.startswith("有效期：") and " 至 " in t for t in texts), texts
    assert "验证通过：印章有效。" in texts, texts
    picture = w.find(role="image", name="印章图片")
    assert picture is not None
    ext = picture.queryComponent().getExtents(w.pyatspi.WINDOW_COORDS)
    assert ext.width >= 100 and ext.height >= 100, (ext.width, ext.height)
    shot = w.screenshot("seal-shown")
    # The picture on screen is the seal's: its red among the window's greys.
    red = subprocess.run(["convert", shot, "-fill", "black", "+opaque", "rgb(255,0,0)",
                          "-fill", "white", "-opaque", "rgb(255,0,0)", "-format", "%[fx:mean]",
                          "info:"], capture_output=True, text=True, check=True).stdout
    assert float(red) > 0.001, "no red seal picture on the screen"

    # 文件盖章: a document chosen, sealed on the key, the signature saved beside it.
    doc = tmp_path / "contract.txt"
    doc.write_bytes(b"The parties agree to the terms below.\n" * 40)
    w.click(w.find(role="push button", name="选择文件并盖章…"))
    choose_file(w, "选择要盖章的文件", doc)
    w.wait_find(role="label", contains="请选择签名文件的保存位置")
    choose_file(w, "保存签名文件")
    sig = tmp_path / "contract.txt.ses"
    w.wait_find(role="label", name=f"签名文件已保存为 {sig}。")
    w.wait_find(role="label", name="验证通过：签名与文件一致。")
    w.screenshot("seal-document-sealed")
    cp = subprocess.run([CLI, "--json", "seal", "verify", str(sig), "--document", str(doc),
                         "--state-dir", daemon.state_dir], capture_output=True, text=True,
                        timeout=30)
    assert cp.returncode == 0 and '"valid":true' in cp.stdout.replace(" ", ""), \
        cp.stdout + cp.stderr
    # The signature is of this document: another one fails.
    other = tmp_path / "other.txt"
    other.write_bytes(doc.read_bytes() + b"!")
    cp = subprocess.run([CLI, "seal", "verify", str(sig), "--document", str(other),
                         "--state-dir", daemon.state_dir], capture_output=True, text=True,
                        timeout=30)
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert PIN not in daemon.log()


def test_a_seal_is_not_called_valid_without_the_ca_to_check_it(daemon, bus, window_factory):
    c = Client(bus)
    try:
        logged_in = c.get(key_path(SEALED), "org.certseal.CertSeal1.Key", "LoggedIn")
    finally:
        c.close()
    w = window_factory(args=("--state-dir", os.path.join(daemon.workdir, "no-such-dir")))
    w.wait_find(role="list item", name=f"UKey {SEALED}")
    w.click(w.wait_find(role="push button", name="电子印章"))
    if not logged_in:  # a login lasts across connections: the test before may have made it
        w.type_into(w.wait_find(role="password text", name="证书密码"), PIN)
        w.click(w.find(role="push button", name="登录"))
    w.wait_find(role="label", name=f"印章名称：{SEAL_NAME}")
    w.wait_find(role="label", contains="无法验证：在 ")
    assert "验证通过：印章有效。" not in w.texts()
    w.screenshot("seal-without-ca")


def test_a_renewable_key_is_announced_by_a_toast_on_the_home_page(daemon, bus, window_factory):
    # The certificate (365 days) is new: nothing to announce.
    w = window_factory()
    item = w.wait_find(role="list item", name=f"UKey {SEALED}")
    assert "可更新" not in w.texts(item)
    assert w.find(role="label", contains="现在可以更新") is None
    # 300 days on, fewer than 90 are left: the daemon says Renewable, and the window, open
    # all along, sees the key again and says so.
    daemon.test_now = "+300d"
    daemon.restart()
    c = Client(bus)
    try:
        path = key_path(SEALED)
        assert run_until(lambda: path in c.managed_objects(), 10)
        assert c.get(path, "org.certseal.CertSeal1.Key", "Renewable") is True
    finally:
        c.close()
    toast = w.wait_find(role="label", contains=f"UKey {SEALED} 上的证书现在可以更新")
    assert "有效期至" in toast.name
    assert w.find(role="push button", contains="立即更新") is not None
    item = w.wait_find(role="list item", name=f"UKey {SEALED}")
    assert w.wait(lambda: "可更新" in w.texts(item))
    w.screenshot("home-renewal-reminder")

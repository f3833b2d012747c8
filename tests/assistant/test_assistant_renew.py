"""
The assistant's pages of an order for the key in the slot, as a person uses them: 证书更新
(renewal) and 找回密码/解锁 (unlock), against the real certseald on a private bus. Keys are
made by the platform itself through a `new` application (their certificate, registry entry
and password are the platform's own); the business clock is moved with CERTSEAL_TEST_NOW
(test mode, a daemon restart) to reach the renewal window before the window opens.
"""

import datetime
import os
import shutil

import pytest

from conftest import DEV_CONF, DEV_VENDORS_D, ClockDaemon, Client, key_path, run_until, short_tmpdir, vkey, write_config
from flow_helpers import Application, Office, blank_key, secret_of
from office_helpers import office_info, serving_office

KEY_IFACE = "org.certseal.CertSeal1.Key"
DAY = 86400
MAX_TRIES = 6  # demo-a's [pin] max_tries


class OfficeClockDaemon(ClockDaemon):
    """A ClockDaemon whose office is up again after each move; no restart for no move."""

    def move_clock(self, value):
        if value == self.test_now:
            return
        super().move_clock(value)
        office_info(self.state_dir)


@pytest.fixture(scope="module")
def daemon(bus):
    # No SMS resend cooldown: a change's code follows the new key's messages at once. A
    # person's unlock costs 5 yuan: its pages go through the payment.
    workdir = short_tmpdir("csasst-")
    vendors = os.path.join(workdir, "vendors.d")
    shutil.copytree(DEV_VENDORS_D, vendors)
    profile = os.path.join(vendors, "demo-a.conf")
    with open(profile) as f:
        text = f.read()
    assert "unlock.person = 0" in text
    with open(profile, "w") as f:
        f.write(text.replace("unlock.person = 0", "unlock.person = 500"))
    config = write_config(os.path.join(workdir, "assistant.conf"), DEV_CONF,
                          daemon={"vendor_dir": vendors},
                          sms={"resend_cooldown_s": "0", "daily_cap": "1000"})
    yield from serving_office(OfficeClockDaemon(bus, config=config))


@pytest.fixture
def plugged(daemon, bus):
    """Keys a test plugged; unplugged at its end, so that each test's key is the only one."""
    made = []
    yield made
    c = Client(bus)
    try:
        for serial in made:
            vkey(daemon.state_dir, "unplug", serial, check=False)
        for serial in made:
            run_until(lambda: key_path(serial) not in c.managed_objects(), 5.0)
    finally:
        c.close()


_N = iter(range(900, 999))


def made_key(daemon, bus, plugged, serial, subject="person"):
    """A key made through the new flow on the real clock: (application, its PIN, NotAfter).
    XTest types only what the keymap has: the holder's name is in Latin letters."""
    daemon.move_clock(None)
    c = Client(bus)
    try:
        n = next(_N)
        extra = {"name": f"Wang Wu {n}"} if subject == "person" else {}
        a = Application(c, Office(daemon.state_dir), subject, n=n, **extra)
        a.to_review()
        pin = a.approve()
        blank_key(daemon.state_dir, c, serial)
        plugged.append(serial)
        a.make(serial)
        path = key_path(serial)
        assert run_until(lambda: c.get(path, KEY_IFACE, "CertificateSerial") != "", 10.0)
        return a, pin, c.get(path, KEY_IFACE, "NotAfter")
    finally:
        c.close()


def days_from_now(epoch_s):
    now = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    return (epoch_s - now) // DAY


def key_prop(bus, serial, name):
    c = Client(bus)
    try:
        return c.get(key_path(serial), KEY_IFACE, name)
    finally:
        c.close()


def log_in(w, pin):
    """The login dialog: the certificate password typed, 登录 pressed."""
    entry = w.wait_find(role="password text", name="证书密码")
    w.type_into(entry, pin)
    w.press(w.find(role="push button", name="登录"))


def key_flow_window(window_factory, serial, button, pin):
    """The window with the key @serial listed, @button pressed and the key logged in to."""
    w = window_factory()
    w.wait_find(role="list item", name=f"UKey {serial}")
    w.click(w.wait_find(role="push button", name=button))
    log_in(w, pin)
    return w


def visible(w, node):
    """Visible: on the step shown (the pages' other steps are hidden)."""
    return node is not None and node.getState().contains(w.pyatspi.STATE_VISIBLE)


def wait_label(w, text=None, contains=None):
    node = w.wait(lambda: next((n for n in w.nodes() if n.getRoleName() == "label" and visible(
        w, n) and (text is None or n.name == text) and (contains is None or contains in (
            n.name or ""))), None))
    assert node is not None, f"no label {text or contains!r}: {w.texts()}"
    return node


def test_not_eligible_shows_the_certificates_dates(daemon, bus, window_factory, plugged):
    a, pin, not_after = made_key(daemon, bus, plugged, "RA0001")
    # The business clock 400 days after the end: expired more than 365 days ago.
    daemon.move_clock(f"+{days_from_now(not_after) + 400}d")
    w = key_flow_window(window_factory, "RA0001", "证书更新", pin)
    wait_label(w, "不符合办理条件")
    end = datetime.datetime.fromtimestamp(not_after, datetime.timezone.utc).strftime("%Y-%m-%d")
    # The daemon's reason, with the certificate's end, and the key's dates.
    wait_label(w, contains=f"expired on {end}")
    wait_label(w, contains=f"有效期至：{end}")
    w.screenshot("renew-not-eligible")
    log = daemon.log()
    assert pin not in log


def test_a_whole_renewal_from_the_button_to_done(daemon, bus, window_factory, plugged):
    a, pin, not_after = made_key(daemon, bus, plugged, "RA0002")
    daemon.move_clock(f"+{days_from_now(not_after) - 60}d")  # 60 days left
    w = window_factory()
    w.wait_find(role="list item", name="UKey RA0002")
    w.click(w.wait_find(role="push button", name="证书更新"))
    w.screenshot("renew-login")
    log_in(w, pin)
    # The order from the daemon: the form the flow describes, pre-filled from the key and
    # the registry; a mistyped e-mail gets the daemon's reason next to it.
    email = w.wait_find(role="text", name="电子邮箱 *")
    w.screenshot("renew-form")
    w.type_into(email, "wangwu.example.cn")
    reason = wait_label(w, contains="exactly one @")
    w.screenshot("renew-bad-email")
    w.type_into(email, "wangwu@example.cn")
    assert w.wait(lambda: not visible(w, reason) or "exactly one @" not in reason.name)
    w.type_into(w.find(role="text", name="通讯地址 *"), "2 Shili Hutong, Xicheng, Beijing")
    w.press(w.find(role="push button", name="下一步"))
    # 确认订单: the order as the daemon holds it, its fee.
    wait_label(w, "电子邮箱：wangwu@example.cn")
    wait_label(w, contains="费用：80.00 元")
    w.screenshot("renew-confirm")
    w.click(w.find(role="push button", name="确认订单"))
    w.click(w.wait_find(role="push button", name="测试收银台"))
    w.wait_find(role="image", name="付款二维码")
    w.screenshot("renew-payment-qr")
    c = Client(bus)
    try:
        orders = [p for p in c.managed_objects() if "/orders/" in p]
        renewal = next(p for p in orders if c.get(p, "org.certseal.CertSeal1.Order", "Kind")
                       == "renew" and c.get(p, "org.certseal.CertSeal1.Order", "State")
                       == "unpaid")
        oid = c.get(renewal, "org.certseal.CertSeal1.Order", "Id")
    finally:
        c.close()
    assert Office(daemon.state_dir).ok("pay-notify", oid, "--channel", "sandbox")["applied"]
    # The download starts by itself; the bar follows Progress up to 100 %.
    wait_label(w, "下载进度：100 %")
    wait_label(w, contains="新证书和印章已写入 UKey")
    bar = w.find(role="progress bar", name="下载进度")
    assert bar is not None
    try:
        assert bar.queryValue().currentValue == pytest.approx(1.0) or \
            bar.queryValue().currentValue == pytest.approx(100)
    except NotImplementedError:
        pass  # the label beside it says the same
    new_after = key_prop(bus, "RA0002", "NotAfter")
    assert new_after > not_after
    until = datetime.datetime.fromtimestamp(new_after, datetime.timezone.utc).strftime("%Y-%m-%d")
    wait_label(w, contains=until)
    w.screenshot("renew-done")
    w.click(w.find(role="push button", name="完成"))
    w.wait_find(role="list item", name="UKey RA0002")
    log = daemon.log()
    assert pin not in log


def test_a_key_pulled_mid_download_resumes_when_it_is_back(daemon, bus, window_factory,
                                                          plugged):
    a, pin, not_after = make_and_order_renewal(daemon, bus, window_factory, plugged, "RA0003")
    w, oid = a
    # Pulled while the new certificate is written.
    vkey(daemon.state_dir, "fault", "RA0003", "C_CreateObject", "--after", "1", "--mode",
         "unplug")
    assert Office(daemon.state_dir).ok("pay-notify", oid, "--channel", "sandbox")["applied"]
    wait_label(w, "UKey 已被拔出，请重新插入以继续下载。")
    w.screenshot("renew-key-removed")
    vkey(daemon.state_dir, "plug", "RA0003")
    log_in(w, pin)
    wait_label(w, "下载进度：100 %")
    wait_label(w, contains="新证书和印章已写入 UKey")
    assert key_prop(bus, "RA0003", "NotAfter") > not_after
    w.screenshot("renew-resumed-done")


def make_and_order_renewal(daemon, bus, window_factory, plugged, serial):
    """A renewal ordered through the window up to its payment QR: ((window, order id), PIN,
    the old NotAfter)."""
    a, pin, not_after = made_key(daemon, bus, plugged, serial)
    daemon.move_clock(f"+{days_from_now(not_after) - 30}d")
    w = key_flow_window(window_factory, serial, "证书更新", pin)
    w.type_into(w.wait_find(role="text", name="电子邮箱 *"), "wangwu@example.cn")
    w.type_into(w.find(role="text", name="通讯地址 *"), "2 Shili Hutong, Xicheng, Beijing")
    w.press(w.find(role="push button", name="下一步"))
    w.click(w.wait_find(role="push button", name="确认订单"))
    w.click(w.wait_find(role="push button", name="测试收银台"))
    w.wait_find(role="image", name="付款二维码")
    c = Client(bus)
    try:
        oid = next(c.get(p, "org.certseal.CertSeal1.Order", "Id") for p in c.managed_objects()
                   if "/orders/" in p and c.get(p, "org.certseal.CertSeal1.Order", "State")
                   == "unpaid" and c.get(p, "org.certseal.CertSeal1.Order", "Kind") == "renew")
    finally:
        c.close()
    return (w, oid), pin, not_after


def test_two_keys_get_the_only_one_key_page_then_retry(daemon, bus, window_factory, plugged):
    daemon.move_clock(None)
    for serial in ("RB0001", "RB0002"):
        vkey(daemon.state_dir, "create", "--vendor", "demo-a", "--serial", serial)
        plugged.append(serial)
    w = window_factory()
    w.wait_find(role="list item", name="UKey RB0001")
    w.wait_find(role="list item", name="UKey RB0002")
    w.click(w.wait_find(role="push button", name="证书更新"))
    wait_label(w, "请只插入一枚 UKey")
    w.screenshot("renew-only-one-key")
    vkey(daemon.state_dir, "unplug", "RB0002")
    assert w.wait(lambda: w.find(role="list item", name="UKey RB0002") is None)
    w.click(w.find(role="push button", name="重试"))
    # One key now: its login.
    w.wait_find(role="password text", name="证书密码")
    wait_label(w, contains="RB0001")
    w.screenshot("renew-retry-login")


def test_a_locked_key_offers_recovering_the_password(daemon, bus, window_factory, plugged):
    daemon.move_clock(None)
    vkey(daemon.state_dir, "create", "--vendor", "demo-a", "--serial", "RL0001")
    plugged.append("RL0001")
    lock(bus, "RL0001")
    w = window_factory()
    w.wait_find(role="list item", name="UKey RL0001")
    w.click(w.wait_find(role="push button", name="证书更新"))
    wait_label(w, "UKey 已锁定")
    w.screenshot("renew-locked-key")
    w.click(w.find(role="push button", name="找回密码/解锁"))
    # The unlock's form, from the daemon.
    w.wait_find(role="label", name="验证身份方式 *")


def test_the_last_wrong_password_at_login_offers_recovering_it(daemon, bus, window_factory,
                                                               plugged):
    daemon.move_clock(None)
    vkey(daemon.state_dir, "create", "--vendor", "demo-a", "--serial", "RL0002")
    plugged.append("RL0002")
    lock(bus, "RL0002", tries=MAX_TRIES - 1)  # one try left
    w = window_factory()
    w.wait_find(role="list item", name="UKey RL0002")
    w.click(w.wait_find(role="push button", name="证书更新"))
    log_in(w, "999999")
    w.wait_find(role="label", contains="密码错误次数过多，UKey 已锁定")
    w.screenshot("renew-login-locks-the-key")
    assert key_prop(bus, "RL0002", "PinLocked") is True
    # 找回密码 in the login dialog (its own window): the unlock's pages.
    dialog = w.wait(lambda: next((w.app.getChildAtIndex(i) for i in range(w.app.childCount)
                                  if w.app.getChildAtIndex(i).name == "登录"), None))
    assert dialog is not None, "no login dialog"
    w.click(w.wait_find(role="push button", name="找回密码/解锁", root=dialog))
    w.wait_find(role="label", name="验证身份方式 *")
    assert "999999" not in daemon.log()


def lock(bus, serial, tries=MAX_TRIES):
    c = Client(bus)
    try:
        path = key_path(serial)
        assert run_until(lambda: path in c.managed_objects(), 5.0)
        for _ in range(tries):
            try:
                c.call(path, KEY_IFACE, "Login", "s", ("000000",))
            except Exception:
                pass
        assert c.get(path, KEY_IFACE, "PinLocked") is (tries == MAX_TRIES)
    finally:
        c.close()


def test_an_unlock_of_a_locked_key(daemon, bus, window_factory, plugged):
    a, pin, _ = made_key(daemon, bus, plugged, "RU0001")
    lock(bus, "RU0001")
    w = window_factory()
    w.wait_find(role="list item", name="UKey RU0001")
    w.click(w.wait_find(role="push button", name="找回密码/解锁"))
    w.wait_find(role="label", name="验证身份方式 *")
    w.choose(w.wait_find(role="check box", name="手机实名认证"))
    w.type_into(w.find(role="text", name="姓名 *"), a.fields["name"])
    w.type_into(w.find(role="text", name="身份证号 *"), a.fields["id_number"])
    w.type_into(w.find(role="text", name="手机"), a.fields["phone"])
    w.screenshot("unlock-form")
    w.press(w.find(role="push button", name="下一步"))
    wait_label(w, f"姓名：{a.fields['name']}")
    w.screenshot("unlock-confirm")
    office = Office(daemon.state_dir)
    mark = office.mark("sms")
    w.click(w.find(role="push button", name="确认订单"))
    # Priced: the payment first, then the identity check and the code.
    w.click(w.wait_find(role="push button", name="测试收银台"))
    w.wait_find(role="image", name="付款二维码")
    wait_label(w, contains="费用为 5.00 元")
    w.screenshot("unlock-payment-qr")
    c = Client(bus)
    try:
        oid = next(c.get(p, "org.certseal.CertSeal1.Order", "Id") for p in c.managed_objects()
                   if "/orders/" in p and c.get(p, "org.certseal.CertSeal1.Order", "Kind")
                   == "unlock" and c.get(p, "org.certseal.CertSeal1.Order", "State")
                   == "unpaid")
    finally:
        c.close()
    assert office.ok("pay-notify", oid, "--channel", "sandbox")["applied"]
    code_entry = w.wait_find(role="password text", name="授权码")
    wait_label(w, contains="授权码已短信发送至")
    msg = office.wait_message("sms", to=a.fields["phone"], template="auth_code", after=mark)
    assert msg is not None, "no authorization code was sent"
    code = secret_of(msg)
    w.screenshot("unlock-code")
    w.type_into(code_entry, code)
    w.type_into(w.find(role="password text", name="新密码"), "24681357")
    w.type_into(w.find(role="password text", name="确认新密码"), "24681357")
    w.press(w.find(role="push button", name="重置密码"))
    wait_label(w, f"密码已重置，密码剩余尝试次数：{MAX_TRIES}。")
    w.screenshot("unlock-done")
    assert key_prop(bus, "RU0001", "PinLocked") is False
    assert key_prop(bus, "RU0001", "PinTriesLeft") == MAX_TRIES
    c = Client(bus)
    try:
        c.call(key_path("RU0001"), KEY_IFACE, "Login", "s", ("24681357",))
        assert c.get(key_path("RU0001"), KEY_IFACE, "LoggedIn") is True
    finally:
        c.close()
    log = daemon.log()
    assert "24681357" not in log and code not in log

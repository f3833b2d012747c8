"""
The desktop assistant (certseal-assistant) as a person uses it: a real GTK window under
Xvfb, found through the accessibility tree, against the real certseald on a private bus
with virtual keys. Each test saves its pages' screenshots under the build directory
(tests/assistant-screenshots/<test>/).
"""

import os
import subprocess

import pytest

from conftest import BUILD_DIR, Client, key_path, run_until, vkey

DESKTOP = os.path.join(BUILD_DIR, "assistant", "org.certseal.Assistant.desktop")
METAINFO = os.path.join(BUILD_DIR, "assistant", "org.certseal.Assistant.metainfo.xml")
KEY_IFACE = "org.certseal.CertSeal1.Key"


def test_desktop_file_and_metainfo_validate():
    cp = subprocess.run(["desktop-file-validate", DESKTOP], capture_output=True, text=True)
    assert cp.returncode == 0 and not cp.stdout.strip(), cp.stdout + cp.stderr
    cp = subprocess.run(["appstream-util", "validate-relax", "--nonet", METAINFO],
                        capture_output=True, text=True)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    with open(DESKTOP, encoding="utf-8") as f:
        assert "Name[zh_CN]=证书助手" in f.read()


def wait_key_on_bus(bus, serial, present=True):
    c = Client(bus)
    try:
        path = key_path(serial)

        def there():
            objects = c.call("/org/certseal/CertSeal1", "org.freedesktop.DBus.ObjectManager",
                             "GetManagedObjects", "", ())
            return (path in objects) == present
        assert run_until(there, 5), f"key {serial} present={present} not seen on the bus"
        return path
    finally:
        c.close()


def key_item(w, serial):
    return w.find(role="list item", name=f"UKey {serial}")


def test_home_lists_inserted_keys_live_with_their_tries(daemon, bus, window_factory):
    vkey(daemon.state_dir, "create", "--vendor", "demo-a", "--serial", "HA0001")
    vkey(daemon.state_dir, "create", "--vendor", "demo-b", "--serial", "HB0001")
    wait_key_on_bus(bus, "HA0001")
    wait_key_on_bus(bus, "HB0001")
    w = window_factory()
    a = w.wait_find(role="list item", name="UKey HA0001")
    b = w.wait_find(role="list item", name="UKey HB0001")
    assert "密码剩余尝试次数：6" in w.texts(a)
    assert "序列号：HB0001" in w.texts(b)
    assert any(t.startswith("厂商：") for t in w.texts(a))
    # The manual's buttons, in Chinese; a flow the daemon has not loaded is insensitive
    # and says why.
    for name in ("证书申请", "证书更新", "找回密码/解锁", "修改密码", "丢失补办", "信息变更",
                 "订单查询", "电子印章"):
        w.wait_find(role="push button", name=name)
    assert w.sensitive(w.find(role="push button", name="证书申请"))
    loaded = set(daemon_plugins(bus))
    for name, kind in (("证书更新", "renew"), ("找回密码/解锁", "unlock"), ("丢失补办", "reissue"),
                       ("信息变更", "change")):
        button = w.find(role="push button", name=name)
        if kind in loaded:
            assert w.sensitive(button), name
        else:
            assert not w.sensitive(button), name
            assert "未加载" in button.description, name
    w.screenshot("home-two-keys")

    vkey(daemon.state_dir, "unplug", "HB0001")
    assert w.wait(lambda: key_item(w, "HB0001") is None), "the unplugged key stays listed"
    assert key_item(w, "HA0001") is not None
    w.screenshot("home-one-key")
    vkey(daemon.state_dir, "unplug", "HA0001")
    assert w.wait(lambda: key_item(w, "HA0001") is None)
    w.wait_find(role="label", name="未插入 UKey，请插入您的 UKey。")


def daemon_plugins(bus):
    """The flows the daemon loaded (Manager.Plugins)."""
    c = Client(bus)
    try:
        return c.manager("Plugins")
    finally:
        c.close()


def test_english_with_lang_en_us(daemon, window_factory):
    w = window_factory(lang="en_US.UTF-8")
    w.wait_find(role="push button", name="Apply for a certificate")
    w.wait_find(role="push button", name="Change the password")
    w.screenshot("home-english")


def test_change_pin_with_a_wrong_old_pin_shows_the_tries_left(daemon, bus, window_factory):
    vkey(daemon.state_dir, "create", "--vendor", "demo-a", "--serial", "HP0001")
    path = wait_key_on_bus(bus, "HP0001")
    w = window_factory()
    w.wait_find(role="list item", name="UKey HP0001")
    w.click(w.wait_find(role="push button", name="修改密码"))
    old = w.wait_find(role="password text", name="原密码")
    w.type_into(old, "999998")
    w.type_into(w.find(role="password text", name="新密码"), "24681357")
    w.type_into(w.find(role="password text", name="确认新密码"), "24681357")
    w.screenshot("change-pin-filled")
    w.click(w.find(role="push button", name="修改"))
    c = Client(bus)
    try:
        assert run_until(lambda: c.get(path, KEY_IFACE, "PinTriesLeft") == 5, 5)
    finally:
        c.close()
    w.wait_find(role="label", name="密码错误：还剩 5 次尝试机会，之后 UKey 将被锁定。")
    # The home page follows the key: one try fewer.
    w.wait(lambda: "密码剩余尝试次数：5" in w.texts(key_item(w, "HP0001")))
    assert "密码剩余尝试次数：5" in w.texts(key_item(w, "HP0001"))
    w.screenshot("change-pin-wrong-old-pin")
    log = daemon.log()
    assert "999998" not in log and "24681357" not in log


def test_the_application_form_flags_a_mistyped_resident_id_before_submitting(daemon, window_factory):
    w = window_factory()
    w.click(w.wait_find(role="push button", name="证书申请"))
    w.click(w.wait_find(role="push button", name="个人"))
    # The form is the flow's, as the daemon describes it (GetFlow): its Chinese labels.
    entry = w.wait_find(role="text", name="身份证号 *")
    w.screenshot("apply-person-form")
    w.type_into(entry, "110105194912310021")  # a wrong check character
    reason = w.wait_find(role="label", contains="check character")
    assert w.wait(lambda: reason.getState().contains(w.pyatspi.STATE_VISIBLE))
    w.screenshot("apply-bad-resident-id")
    # Corrected, the daemon's objection goes.
    w.type_into(entry, "11010519491231002X")
    assert w.wait(lambda: w.find(role="label", contains="check character") is None or
                  not w.find(role="label", contains="check character").getState().contains(
                      w.pyatspi.STATE_VISIBLE))


def test_a_whole_application_by_a_person_up_to_the_payment_qr(daemon, window_factory, tmp_path):
    from flow_helpers import PERSON_MATERIALS, Office, secret_of

    from conftest import PERSON_FIELDS
    # XTest types only what the keymap has: Latin letters for the name and address.
    fields = dict(PERSON_FIELDS, name="Wang Wu", address="2 Shili Hutong, Xicheng, Beijing")
    w = window_factory()
    w.click(w.wait_find(role="push button", name="证书申请"))
    w.click(w.wait_find(role="push button", name="个人"))
    w.wait_find(role="text", name="身份证号 *")
    # Choices as the flow offers them; the vendor by its profile's name.
    w.choose(w.wait_find(role="check box", contains="Demo Vendor A"))
    w.choose(w.wait_find(role="check box", name="手机实名认证"))
    for label, field in (("姓名 *", "name"), ("身份证号 *", "id_number"), ("手机 *", "phone"),
                         ("电子邮箱 *", "email"), ("通讯地址 *", "address"),
                         ("邮政编码 *", "postcode")):
        w.type_into(w.find(role="text", name=label), fields[field])
    w.screenshot("apply-filled")
    w.press(w.find(role="push button", name="下一步"))
    w.click(w.wait_find(role="push button", name="确认订单"))
    w.wait_find(role="label", contains="尚未上传")
    w.screenshot("apply-materials")
    # Each material through the file chooser: its location typed, as a person would.
    w.attach_materials(tmp_path, PERSON_MATERIALS, shot="apply-file-chooser")
    office = Office(daemon.state_dir)
    mark = office.mark("sms")
    w.click(w.wait_find(role="push button", name="确认申请"))
    code_entry = w.wait_find(role="password text", name="短信验证码")
    msg = office.wait_message("sms", to=PERSON_FIELDS["phone"], template="sms_code", after=mark)
    assert msg is not None, "no SMS code was sent"
    w.screenshot("apply-sms-code")
    w.type_into(code_entry, secret_of(msg))
    w.press(w.find(role="push button", name="确定"))
    w.click(w.wait_find(role="push button", name="测试收银台"))
    w.wait_find(role="image", name="付款二维码")
    w.wait_find(role="label", contains="请扫描二维码支付")
    shot = w.screenshot("apply-payment-qr")
    # The QR code on screen is one a phone can read.
    cp = subprocess.run(["zbarimg", "-q", "--raw", shot], capture_output=True, text=True)
    assert cp.returncode == 0 and cp.stdout.strip(), "no readable QR code on the payment page"


def test_change_pin_on_a_locked_key_points_to_unlocking(daemon, bus, window_factory):
    vkey(daemon.state_dir, "create", "--vendor", "demo-a", "--serial", "HL0001")
    path = wait_key_on_bus(bus, "HL0001")
    c = Client(bus)
    try:
        for _ in range(6):  # the vendor's tries: the key locks
            try:
                c.call(path, KEY_IFACE, "Login", "s", ("999999",))
            except Exception:
                pass
        assert c.get(path, KEY_IFACE, "PinLocked") is True
    finally:
        c.close()
    w = window_factory()
    item = w.wait_find(role="list item", name="UKey HL0001")
    assert "已锁定" in w.texts(item)
    # Only an unlock helps a locked key: 修改密码 says so and offers 找回密码.
    w.click(w.wait_find(role="push button", name="修改密码"))
    w.wait_find(role="label", name="UKey 已锁定")
    w.screenshot("change-pin-locked-key")
    w.click(w.wait_find(role="push button", name="找回密码/解锁"))
    # The unlock's pages: its form, or first "only one key" while earlier tests' keys are in.
    assert w.wait(lambda: w.find(role="label", name="验证身份方式 *") or
                  w.find(role="label", name="请只插入一枚 UKey"))
    w.screenshot("unlock-for-a-locked-key")

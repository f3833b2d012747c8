"""
The assistant's 信息变更 (change) pages as a person uses them, against the real certseald on a
private bus: the key made by the platform, the login, the order's form filled from the
certificate and the registry, the SMS code to the phone on file, 确认订单, done. The pages
are the renewal's (cs-assistant-renew.c); the helpers and fixtures are its tests'.
"""

from conftest import Client, run_until
from flow_helpers import PERSON_MATERIALS, Office, secret_of
from test_assistant_renew import daemon, key_flow_window, log_in, made_key, plugged, wait_label  # noqa: F401

ORDER_IFACE = "org.certseal.CertSeal1.Order"


def test_a_change_of_the_phone_on_file_from_the_button_to_done(daemon, bus, window_factory,
                                                               plugged):
    a, pin, _ = made_key(daemon, bus, plugged, "RC0001")
    w = key_flow_window(window_factory, "RC0001", "信息变更", pin)
    phone = w.wait_find(role="text", name="手机号 *")
    w.screenshot("change-form")
    w.type_into(phone, "13912345678")
    office = Office(daemon.state_dir)
    mark = office.mark("sms")
    w.press(w.find(role="push button", name="下一步"))
    # 短信校验: the code goes to the phone on file, not the new one.
    code_entry = w.wait_find(role="password text", name="短信验证码")
    wait_label(w, contains="验证码已发送至")
    msg = office.wait_message("sms", to=a.fields["phone"], template="sms_code", after=mark)
    assert msg is not None, "no SMS code reached the phone on file"
    assert office.messages("sms", to="13912345678", after=mark) == []
    w.screenshot("change-sms-code")
    w.type_into(code_entry, secret_of(msg))
    w.press(w.find(role="push button", name="确定"))
    wait_label(w, "手机号：13912345678")
    wait_label(w, f"姓名：{a.fields['name']}")
    w.screenshot("change-confirm")
    w.click(w.find(role="push button", name="确认订单"))
    # Contacts only: done at Confirm, no new certificate.
    wait_label(w, "业务办理完成。")
    w.screenshot("change-done")
    c = Client(bus)
    try:
        changes = [p for p in c.managed_objects() if "/orders/" in p and
                   c.get(p, ORDER_IFACE, "Kind") == "change"]
        assert [c.get(p, ORDER_IFACE, "State") for p in changes] == ["completed"]
    finally:
        c.close()
    assert pin not in daemon.log()


def test_a_reissue_from_the_certificate_found_to_its_payment(daemon, bus, window_factory,
                                                             plugged, tmp_path):
    from conftest import vkey
    from test_assistant_renew import key_prop
    a, pin, _ = made_key(daemon, bus, plugged, "RR0001")
    serial = key_prop(bus, "RR0001", "CertificateSerial")
    vkey(daemon.state_dir, "unplug", "RR0001")  # lost
    office = Office(daemon.state_dir)
    w = window_factory()
    w.click(w.wait_find(role="push button", name="丢失补办"))
    number = w.wait_find(role="text", name="证件号码（统一社会信用代码或身份证号）")
    w.click(w.wait_find(name="个人数字证书"))
    w.type_into(number, a.fields["id_number"])
    mark = office.mark("sms")
    w.click(w.find(role="push button", name="发送验证码"))
    w.wait_find(role="label", contains="验证码已发送至")
    msg = office.wait_message("sms", to=a.fields["phone"], template="query_code", after=mark)
    w.type_into(w.wait_find(role="password text", name="短信中的验证码"), secret_of(msg))
    w.press(w.find(role="push button", name="确认"))
    # The certificates of the subject, 补办 for each reason the flow offers.
    row = w.wait_find(role="list item", contains=serial.lstrip("0")[:8])
    w.screenshot("reissue-certificates")
    w.click(w.find(role="push button", name="补办（丢失）", root=row))
    # The reissue order's form, pre-filled from the certificate's own order.
    w.wait_find(role="text", name="通讯地址 *")
    wait_label(w, "录入信息")
    w.screenshot("reissue-form")
    w.press(w.find(role="push button", name="下一步"))
    wait_label(w, "补办原因：丢失")
    wait_label(w, f"姓名：{a.fields['name']}")
    w.screenshot("reissue-confirm")
    w.click(w.find(role="push button", name="确认订单"))
    # Materials are the order page's: its file choosers, then 确认申请, the SMS code, the
    # payment.
    w.click(w.wait_find(role="push button", name="上传资料…"))
    w.wait_find(role="label", contains="尚未上传")
    w.screenshot("reissue-materials")
    w.attach_materials(tmp_path, PERSON_MATERIALS)
    mark = office.mark("sms")
    w.click(w.wait_find(role="push button", name="确认申请"))
    code_entry = w.wait_find(role="password text", name="短信验证码")
    msg = office.wait_message("sms", to=a.fields["phone"], template="sms_code", after=mark)
    assert msg is not None, "no SMS code was sent"
    w.type_into(code_entry, secret_of(msg))
    w.press(w.find(role="push button", name="确定"))
    w.click(w.wait_find(role="push button", name="测试收银台"))
    w.wait_find(role="image", name="付款二维码")
    w.screenshot("reissue-payment-qr")
    c = Client(bus)
    try:
        reissues = [p for p in c.managed_objects() if "/orders/" in p and
                    c.get(p, ORDER_IFACE, "Kind") == "reissue"]
        # Paid next: the SMS code was verified on the order page.
        assert [c.get(p, ORDER_IFACE, "State") for p in reissues] == ["unpaid"]
        fields = c.call(reissues[0], "org.freedesktop.DBus.Properties", "Get", "ss",
                        (ORDER_IFACE, "Fields"))
        assert fields["reason"] == "lost" and fields["certificate_serial"] == serial
    finally:
        c.close()


def test_a_new_name_is_reviewed_then_downloaded_to_the_key(daemon, bus, window_factory, plugged,
                                                           tmp_path):
    from test_assistant_renew import key_prop
    a, pin, _ = made_key(daemon, bus, plugged, "RC0002")
    w = key_flow_window(window_factory, "RC0002", "信息变更", pin)
    w.type_into(w.wait_find(role="text", name="姓名 *"), "Wang Xin")
    office = Office(daemon.state_dir)
    mark = office.mark("sms")
    w.press(w.find(role="push button", name="下一步"))
    code_entry = w.wait_find(role="password text", name="短信验证码")
    msg = office.wait_message("sms", to=a.fields["phone"], template="sms_code", after=mark)
    w.type_into(code_entry, secret_of(msg))
    w.press(w.find(role="push button", name="确定"))
    wait_label(w, "姓名：Wang Xin")
    w.click(w.find(role="push button", name="确认订单"))
    # A new name needs the ID card: the order page takes the materials, 确认申请 submits.
    w.click(w.wait_find(role="push button", name="上传资料…"))
    w.attach_materials(tmp_path, ["id_front", "id_back"])
    w.click(w.wait_find(role="push button", name="确认申请"))
    c = Client(bus)
    try:
        def in_review():
            return next((c.get(p, ORDER_IFACE, "Id") for p in c.managed_objects()
                         if "/orders/" in p and c.get(p, ORDER_IFACE, "Kind") == "change"
                         and c.get(p, ORDER_IFACE, "State") == "in_review"), None)
        assert run_until(in_review, 10), "the change was not submitted for review"
        oid = in_review()
    finally:
        c.close()
    w.screenshot("change-in-review")
    assert office.ok("review", "approve", oid).get("committed") is True
    # Downloadable: the key's pages take the order and download to the key by themselves
    # (after a login, if the key logged out meanwhile).
    w.wait(lambda: w.find(role="label", name="下载进度：100 %") or
           w.find(role="password text", name="证书密码"), 30)
    if w.find(role="password text", name="证书密码") is not None:
        log_in(w, pin)
    wait_label(w, "下载进度：100 %")
    wait_label(w, contains="新证书和印章已写入 UKey")
    w.screenshot("change-downloaded")
    assert "Wang Xin" in key_prop(bus, "RC0002", "CertificateSubject")

"""
The assistant's 信息变更 (change) pages as a person uses them, against the real certseald on a
private bus: the key made by the platform, the login, the order's form filled from the
certificate and the registry, the SMS code to the phone on file, 确认订单, done. The pages
are the renewal's (cs-assistant-renew.c); the helpers and fixtures are its tests'.
"""

from conftest import Client
from flow_helpers import Office, secret_of
from test_assistant_renew import daemon, log_in, made_key, plugged, wait_label  # noqa: F401

ORDER_IFACE = "org.certseal.CertSeal1.Order"


def test_a_change_of_the_phone_on_file_from_the_button_to_done(daemon, bus, window_factory,
                                                               plugged):
    a, pin, _ = made_key(daemon, bus, plugged, "RC0001")
    w = window_factory()
    w.wait_find(role="list item", name="UKey RC0001")
    w.click(w.wait_find(role="push button", name="信息变更"))
    log_in(w, pin)
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

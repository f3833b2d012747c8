"""
StartPayment on the real payment channels (docs/architecture.md §3.3): `alipay` and `wechat` queue a
`cashier` task (`precreate`) and the D-Bus call answers with the QR payload the cashier
worker returns — a real worker on the office bus over CURVE — or Unavailable after 10 s
when no worker answers. The payment then arrives as a notification signed with the
platform's key, verified by the daemon, and moves the order to review with its e-invoice.
"""

import os
import time

import dbus
import pytest

from conftest import BUILD_DIR, ERR_INVALID_INPUT, ERR_WRONG_STATE, ORDER_IFACE, Daemon, \
    dbus_error, run_until, short_tmpdir
from flow_helpers import PRICE_FEN, Application, Office, unpaid_application
from office_helpers import OfficeEnv, Worker, serving_office

NEW_PLUGINS = os.path.join(BUILD_DIR, "plugins")
ERR_UNAVAILABLE = "org.certseal.Error.Unavailable"


@pytest.fixture(scope="module")
def env():
    return OfficeEnv(short_tmpdir("cspay-"), {"cassie": "cashier"}, plugin_dir=NEW_PLUGINS)


@pytest.fixture(scope="module")
def daemon(bus, env):
    yield from serving_office(Daemon(bus, config=env.config))


@pytest.fixture
def cashier(daemon, env):
    w = Worker(daemon.state_dir, key_file=env.keys["cassie"])
    yield w
    w.close()


def start_payment_async(a, channel):
    """StartPayment without blocking: the reply is dispatched while the test pumps."""
    outcome = {}
    proxy = a.client.conn.get_object("org.certseal.CertSeal1", a.order.path)
    proxy.StartPayment(channel, dbus_interface=ORDER_IFACE, timeout=30,
                       reply_handler=lambda qr, expires: outcome.update(qr=str(qr),
                                                                         expires=int(expires)),
                       error_handler=lambda e: outcome.update(error=e))
    return outcome


def take_precreate(cashier, order_id):
    """The cashier worker claims the order's precreate task."""
    deadline = time.time() + 10
    while time.time() < deadline:
        verb, body = cashier.call("task.claim", {"order_id": order_id, "service": "cashier"})
        if verb == "RESULT" and body["result"]:
            task = body["result"]
            assert task["payload"]["kind"] == "precreate", task
            return task
        run_until(lambda: False, timeout=0.1)  # the D-Bus call may still be on its way
    raise AssertionError(f"no cashier task: {verb} {body}")


@pytest.mark.parametrize("channel", ["alipay", "wechat"])
def test_the_qr_payload_comes_from_the_cashier_worker(daemon, client, env, cashier, channel):
    a = unpaid_application(client, Office(daemon.state_dir), "org")
    outcome = start_payment_async(a, channel)
    task = take_precreate(cashier, a.id)
    assert task["payload"] == {"kind": "precreate", "order_id": a.id, "channel": channel,
                               "amount_fen": PRICE_FEN[a.subject]}, task
    assert outcome == {}, "StartPayment answered before the cashier did"
    qr = f"https://qr.{channel}.example/{a.id}"
    cashier.ok("task.done", {"lease": task["lease"], "result": {"qr_payload": qr}})
    assert run_until(lambda: outcome, timeout=10), "StartPayment never answered"
    assert outcome.get("qr") == qr, outcome
    assert 14 * 60 <= outcome["expires"] - time.time() <= 15 * 60 + 5
    assert a.prop("PaymentChannel") == channel
    assert "payment_started: " + channel in [h[2] for h in a.prop("History")]
    assert a.state == "unpaid"

    # The platform's signed notification pays it: review, with the e-invoice.
    fen = PRICE_FEN[a.subject]
    if channel == "alipay":
        form = env.alipay_form(a.id, total=f"{fen // 100}.{fen % 100:02d}", trade_no="T" + a.id)
        result = cashier.ok("payment.notify", {"channel": "alipay", "form": form})
    else:
        headers, body = env.wechat_notification(a.id, total=fen, transaction_id="W" + a.id)
        result = cashier.ok("payment.notify", {"channel": "wechat", "headers": headers,
                                               "body": body})
    assert result["applied"] is True, result
    assert a.state == "in_review"
    assert a.prop("InvoiceAvailable") is True


def test_no_cashier_answer_is_unavailable_after_10_s(daemon, client):
    a = unpaid_application(client, Office(daemon.state_dir), "org")
    start = time.monotonic()
    outcome = start_payment_async(a, "wechat")
    assert run_until(lambda: outcome, timeout=20), "StartPayment never answered"
    elapsed = time.monotonic() - start
    assert "error" in outcome, outcome
    assert outcome["error"].get_dbus_name() == ERR_UNAVAILABLE
    assert "10 s" in outcome["error"].get_dbus_message()
    assert 9.5 <= elapsed < 15, elapsed
    # No worker will find the abandoned request later.
    assert outcome["error"] is not None
    # The order waits, unpaid; a sandbox payment still works (test mode).
    assert a.state == "unpaid"
    qr, _ = a.start_payment("sandbox")
    assert qr.startswith("certseal-sandbox://pay?order=" + a.id)
    # Paid through the sandbox after wechat was tried: the channel and the refund follow
    # the payment, not the attempt.
    start_payment_async(a, "wechat")  # queued again; nobody answers
    out = a.notify_paid()
    assert out["applied"] is True, out
    assert a.prop("PaymentChannel") == "sandbox"
    a.order.cancel()
    assert a.state == "refunding"
    refunds = [t for t in a.office.tasks("cashier", a.id) if t["payload"]["kind"] == "refund"]
    assert len(refunds) == 1, refunds
    assert refunds[0]["payload"]["channel"] == "sandbox"
    assert refunds[0]["payload"]["payments"] == [
        {"channel": "sandbox", "trade_no": refunds[0]["payload"]["payments"][0]["trade_no"],
         "amount_fen": PRICE_FEN[a.subject]}]


def test_a_late_cashier_answer_changes_nothing(daemon, client, cashier):
    a = unpaid_application(client, Office(daemon.state_dir), "org")
    outcome = start_payment_async(a, "alipay")
    task = take_precreate(cashier, a.id)
    assert run_until(lambda: outcome, timeout=20)
    assert outcome["error"].get_dbus_name() == ERR_UNAVAILABLE
    # The caller gave up and so did the daemon: the task ended, a late answer is refused.
    verb, body = cashier.call("task.done", {"lease": task["lease"],
                                            "result": {"qr_payload": "late"}})
    assert verb == "ERROR" and body["code"] == "WrongState", body
    verb, body = cashier.call("task.claim", {"order_id": a.id, "service": "cashier"})
    assert verb == "ERROR", body
    assert a.state == "unpaid"


def test_unknown_channels_and_wrong_states_are_refused(daemon, client):
    a = Application(client, Office(daemon.state_dir))
    with dbus_error(ERR_WRONG_STATE, "nothing to pay"):
        a.start_payment("sandbox")
    a.confirm()
    a.attach_all()
    a.submit()
    a.verify()
    for channel in ("paypal", "", "ALIPAY"):
        with dbus_error(ERR_INVALID_INPUT, "channel:"):
            a.start_payment(channel)
    assert a.prop("PaymentChannel") == ""
    a.pay()
    with dbus_error(ERR_WRONG_STATE, "is in_review"):
        a.start_payment("alipay")

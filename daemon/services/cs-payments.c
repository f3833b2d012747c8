/*
 * cs-payments.c — money: payments applied to orders, refunds queued for the cashier, and
 * StartPayment waiting for the cashier's QR code.
 *
 * Invariants:
 * - A payment is applied once: its notification's idempotency key is recorded in the
 *   ledger's payments inside the transaction of the order's payment step (the transition
 *   its flow marks CS_TRANSITION_PAYMENT), so a duplicate is acknowledged and changes
 *   nothing. Signatures were checked before (by the office front, office/cs-payment.c).
 * - Money that arrives for an order no longer waiting for it is recorded and refunded,
 *   never lost and never applied.
 * - Amounts are integers in fen.
 */
#define G_LOG_DOMAIN "certseald"

#include <json-glib/json-glib.h>

#include "cs-json.h"
#include "cs-payments.h"

#define PAYMENT_TTL_S (15 * 60)
#define PRECREATE_TIMEOUT_MS 10000

struct _CsPayments {
	CsEngine *engine;
	CsTasks *tasks;
	GHashTable *waiters; /* gint64 task id → PaymentWaiter */
};

void
cs_payment_notice_free(CsPaymentNotice *notice)
{
	if (notice == NULL)
		return;
	g_free(notice->channel);
	g_free(notice->order_id);
	g_free(notice->trade_no);
	g_free(notice->notify_key);
	g_free(notice);
}

/* What the cashier gives back: each payment received, on its own channel and trade. */
static JsonArray *
payments_of(
    CsEngine *engine, CsOrder *order, guint64 *total, const char **channel_out, GError **error)
{
	g_autoptr(GPtrArray) rows =
	    cs_ledger_list_payments(cs_engine_get_ledger(engine), cs_order_get_id(order), error);
	g_autoptr(JsonArray) out = json_array_new();

	*total = 0;
	*channel_out = "";
	if (rows == NULL)
		return NULL;
	for (guint i = 0; i < rows->len; i++) {
		CsPaymentRow *row = g_ptr_array_index(rows, i);
		JsonObject *p = json_object_new();
		json_object_set_string_member(p, "channel", row->channel);
		json_object_set_string_member(p, "trade_no", row->trade_no);
		json_object_set_int_member(p, "amount_fen", (gint64)row->amount_fen);
		*total += row->amount_fen;
		json_array_add_object_element(out, p);
	}
	if (rows->len > 0) {
		/* Owned by the array's last object from here on. */
		JsonObject *last = json_array_get_object_element(out, rows->len - 1);
		*channel_out = json_object_get_string_member(last, "channel");
	}
	return g_steal_pointer(&out);
}

gboolean
cs_step_queue_refund(CsStep *step, GError **error)
{
	CsEngine *engine = cs_step_get_engine(step);
	CsOrder *order = cs_step_get_order(step);
	CsTasks *tasks = cs_engine_get_tasks(engine);
	g_autoptr(JsonObject) payload = json_object_new();
	g_autoptr(JsonArray) payments = NULL;
	const char *channel = "";
	guint64 paid = 0;

	if (!cs_step_check_transaction(step, "cs_step_queue_refund", error) ||
	    !cs_engine_require(tasks, "the office", error))
		return FALSE;
	payments = payments_of(engine, order, &paid, &channel, error);
	if (payments == NULL)
		return FALSE;
	json_object_set_string_member(payload, "kind", "refund");
	json_object_set_string_member(payload, "order_id", cs_order_get_id(order));
	json_object_set_string_member(payload, "channel", channel);
	json_object_set_int_member(payload, "amount_fen", (gint64)paid);
	json_object_set_array_member(payload, "payments", g_steal_pointer(&payments));
	return cs_tasks_enqueue_in_txn(tasks, "cashier", cs_order_get_id(order),
				       cs_order_get_state(order), payload, 0, NULL, error);
}

gboolean
cs_payments_awaited(CsEngine *engine, CsOrder *order)
{
	return cs_engine_find_step(engine, order, CS_TRANSITION_PAYMENT) != NULL;
}

/* ---- StartPayment ---------------------------------------------------------------------- */

typedef struct {
	CsPayments *payments;
	gint64 task_id;
	guint timeout;
	CsPaymentStartedFunc func;
	gpointer user_data;
	GDestroyNotify destroy;
} PaymentWaiter;

static void
waiter_free(gpointer data)
{
	PaymentWaiter *w = data;

	if (w->timeout != 0)
		g_source_remove(w->timeout);
	if (w->destroy != NULL)
		w->destroy(w->user_data);
	g_free(w);
}

static void
waiter_finish(PaymentWaiter *w, const char *payload, guint64 expires, const GError *error)
{
	g_hash_table_steal(w->payments->waiters, &w->task_id);
	if (w->timeout != 0)
		g_source_remove(w->timeout);
	w->func(payload, expires, error, w->user_data);
	if (w->destroy != NULL)
		w->destroy(w->user_data);
	g_free(w);
}

static gboolean
on_precreate_timeout(gpointer data)
{
	PaymentWaiter *w = data;
	g_autoptr(GError) error = g_error_new_literal(
	    CS_ERROR, CS_ERROR_UNAVAILABLE,
	    "channel: the payment gateway did not answer within 10 s; try again");
	g_autoptr(GError) local = NULL;

	w->timeout = 0;
	if (!cs_tasks_abandon(w->payments->tasks, w->task_id, "the payment was not set up in time",
			      &local))
		g_warning("cashier task %" G_GINT64_FORMAT ": %s", w->task_id, local->message);
	waiter_finish(w, NULL, 0, error);
	return G_SOURCE_REMOVE;
}

/* A cashier task was done: the StartPayment waiting for it, if any, gets its QR code. */
static void
on_task_done(CsTasks *tasks, const CsTask *task, const char *result_json, gpointer user_data)
{
	CsPayments *payments = user_data;
	PaymentWaiter *w = g_hash_table_lookup(payments->waiters, &task->id);
	g_autoptr(JsonNode) root = NULL;
	g_autoptr(GError) error = NULL;
	const char *payload = NULL;

	if (w == NULL)
		return;
	if (result_json != NULL)
		root = cs_json_parse_untrusted(result_json, -1, NULL);
	if (root != NULL && JSON_NODE_HOLDS_OBJECT(root)) {
		JsonObject *o = json_node_get_object(root);
		payload = json_object_get_string_member_with_default(o, "qr_payload", NULL);
	}
	if (payload == NULL || *payload == '\0') {
		error = g_error_new_literal(CS_ERROR, CS_ERROR_UNAVAILABLE,
					    "channel: the payment gateway returned no QR payload");
		waiter_finish(w, NULL, 0, error);
		return;
	}
	waiter_finish(w, payload, (guint64)(g_get_real_time() / G_USEC_PER_SEC) + PAYMENT_TTL_S,
		      NULL);
}

CsPayments *
cs_payments_new(CsEngine *engine, CsTasks *tasks)
{
	CsPayments *payments = g_new0(CsPayments, 1);

	payments->engine = engine;
	payments->tasks = tasks;
	payments->waiters = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, waiter_free);
	if (tasks != NULL)
		cs_tasks_set_done_func(tasks, on_task_done, payments);
	return payments;
}

void
cs_payments_free(CsPayments *payments)
{
	if (payments == NULL)
		return;
	if (payments->tasks != NULL)
		cs_tasks_set_done_func(payments->tasks, NULL, NULL);
	/* Whoever still waits for a QR code is told nothing more: the daemon stops. */
	g_hash_table_unref(payments->waiters);
	g_free(payments);
}

void
cs_payments_start(CsPayments *payments,
		  const CsRequest *request,
		  CsOrder *order,
		  const char *channel,
		  CsPaymentStartedFunc func,
		  gpointer user_data,
		  GDestroyNotify destroy)
{
	CsEngine *engine = payments->engine;
	static const char *const channels[] = {"sandbox", "alipay", "wechat", NULL};
	CsLedger *ledger = cs_engine_get_ledger(engine);
	CsTasks *tasks = payments->tasks;
	g_autoptr(GError) error = NULL;
	g_autofree char *actor = cs_request_to_actor(request);
	g_autoptr(JsonObject) payload = json_object_new();
	g_autoptr(GVariant) data = NULL;
	guint64 amount = cs_engine_amount_fen(engine, order);
	gint64 task_id = 0;
	gboolean sandbox = g_strcmp0(channel, "sandbox") == 0;
	gint64 now = g_get_real_time();
	gboolean ok;
	GVariantDict d;

	if (!cs_engine_check_access(engine, request, order, &error))
		goto fail;
	if (!g_strv_contains(channels, channel)) {
		error =
		    g_error_new(CS_ERROR, CS_ERROR_INVALID_INPUT,
				"channel: must be sandbox, alipay or wechat, not '%s'", channel);
		goto fail;
	}
	if (!cs_payments_awaited(engine, order)) {
		error = g_error_new(CS_ERROR, CS_ERROR_WRONG_STATE,
				    "order %s is %s: there is nothing to pay now",
				    cs_order_get_id(order), cs_order_get_state(order));
		goto fail;
	}
	if (sandbox && !cs_engine_get_config(engine)->test_mode) {
		error = g_error_new_literal(CS_ERROR, CS_ERROR_UNAVAILABLE,
					    "channel: the sandbox channel needs test_mode");
		goto fail;
	}
	if (!cs_engine_require(tasks, "the office", &error))
		goto fail;
	g_variant_dict_init(&d, NULL);
	g_variant_dict_insert(&d, "channel", "s", channel);
	data = g_variant_ref_sink(g_variant_dict_end(&d));
	json_object_set_string_member(payload, "kind", "precreate");
	json_object_set_string_member(payload, "order_id", cs_order_get_id(order));
	json_object_set_string_member(payload, "channel", channel);
	json_object_set_int_member(payload, "amount_fen", (gint64)amount);
	if (!cs_ledger_begin(ledger, &error))
		goto fail;
	ok = cs_ledger_update_order(ledger, cs_order_get_id(order), NULL, NULL, now, &error) &&
	     cs_engine_set_attr(engine, order, "payment_channel", channel, &error) &&
	     cs_ledger_append_event(ledger, cs_order_get_id(order), "payment_started",
				    cs_order_get_state(order), cs_order_get_state(order), actor,
				    data, now, NULL, &error) &&
	     /* One payment being set up per order: a new StartPayment replaces the last. */
	     cs_tasks_abandon_requests(tasks, cs_order_get_id(order), "precreate",
				       "replaced by a newer StartPayment", &error) &&
	     (sandbox ||
	      cs_tasks_enqueue_in_txn(tasks, "cashier", cs_order_get_id(order),
				      cs_order_get_state(order), payload, 0, &task_id, &error)) &&
	     cs_ledger_commit(ledger, &error);
	if (!ok) {
		cs_ledger_rollback(ledger);
		cs_order_forget_attrs(order);
		goto fail;
	}
	cs_engine_order_attrs_changed(engine, order, now);
	if (sandbox) {
		g_autofree char *qr =
		    g_strdup_printf("certseal-sandbox://pay?order=%s&amount_fen=%" G_GUINT64_FORMAT,
				    cs_order_get_id(order), amount);
		func(qr, (guint64)(g_get_real_time() / G_USEC_PER_SEC) + PAYMENT_TTL_S, NULL,
		     user_data);
		if (destroy != NULL)
			destroy(user_data);
		return;
	}
	{
		PaymentWaiter *w = g_new0(PaymentWaiter, 1);
		w->payments = payments;
		w->task_id = task_id;
		w->func = func;
		w->user_data = user_data;
		w->destroy = destroy;
		w->timeout = g_timeout_add(PRECREATE_TIMEOUT_MS, on_precreate_timeout, w);
		g_hash_table_insert(payments->waiters, &w->task_id, w);
	}
	return;
fail:
	func(NULL, 0, error, user_data);
	if (destroy != NULL)
		destroy(user_data);
}

/* ---- applying -------------------------------------------------------------------------- */

static gboolean
record_payment(CsEngine *engine, CsOrder *order, gpointer user_data, GError **error)
{
	CsPaymentNotice *n = user_data;
	CsPaymentRow row = {
	    .notify_key = n->notify_key,
	    .channel = n->channel,
	    .order_id = n->order_id,
	    .amount_fen = n->amount_fen,
	    .trade_no = n->trade_no,
	    .time = g_get_real_time(),
	};

	if (!cs_ledger_insert_payment(cs_engine_get_ledger(engine), &row, error))
		return FALSE;
	/* PaymentChannel: the channel that was paid, not the last one tried. */
	return cs_engine_set_attr(engine, order, "payment_channel", n->channel, error);
}

/*
 * Money for an order that no longer waits for it — cancelled meanwhile, or paid twice
 * through two QR codes: it was taken, so it is recorded (with an event) and a cashier
 * refund task queued, in one transaction. The notification is acknowledged.
 */
static gboolean
record_unexpected_payment(CsEngine *engine, CsOrder *order, CsPaymentNotice *n, GError **error)
{
	CsLedger *ledger = cs_engine_get_ledger(engine);
	g_autoptr(JsonObject) payload = json_object_new();
	g_autoptr(GVariant) data = NULL;
	GVariantDict d;
	gboolean ok;

	g_variant_dict_init(&d, NULL);
	g_variant_dict_insert(&d, "channel", "s", n->channel);
	g_variant_dict_insert(&d, "amount_fen", "x", (gint64)n->amount_fen);
	g_variant_dict_insert(&d, "reason", "s", "the order no longer waits for a payment");
	data = g_variant_ref_sink(g_variant_dict_end(&d));
	json_object_set_string_member(payload, "kind", "refund");
	json_object_set_string_member(payload, "order_id", cs_order_get_id(order));
	json_object_set_string_member(payload, "channel", n->channel);
	json_object_set_int_member(payload, "amount_fen", (gint64)n->amount_fen);
	json_object_set_string_member(payload, "trade_no", n->trade_no);
	if (!cs_ledger_begin(ledger, error))
		return FALSE;
	ok = record_payment(engine, order, n, error) &&
	     cs_ledger_append_event(ledger, cs_order_get_id(order), "payment_unexpected",
				    cs_order_get_state(order), cs_order_get_state(order), "gateway",
				    data, g_get_real_time(), NULL, error) &&
	     cs_tasks_enqueue_in_txn(cs_engine_get_tasks(engine), "cashier", cs_order_get_id(order),
				     NULL, payload, 0, NULL, error) &&
	     cs_ledger_commit(ledger, error);
	cs_order_forget_attrs(order);
	if (!ok) {
		cs_ledger_rollback(ledger);
		return FALSE;
	}
	g_message("order %s: %s payment of %" G_GUINT64_FORMAT
		  " fen arrived while it is %s; a refund is queued for the cashier",
		  cs_order_get_id(order), n->channel, n->amount_fen, cs_order_get_state(order));
	return TRUE;
}

gboolean
cs_payment_apply(CsEngine *engine,
		 CsPaymentNotice *notice,
		 gboolean *applied,
		 gboolean *refunding,
		 GError **error)
{
	CsRequest request = {.actor = CS_ACTOR_GATEWAY, .user_id = notice->channel};
	const CsTransition *step;
	gboolean found = FALSE;
	CsOrder *order;
	guint64 due;

	*applied = FALSE;
	if (refunding != NULL)
		*refunding = FALSE;
	if (!cs_ledger_payment_known(cs_engine_get_ledger(engine), notice->notify_key, &found,
				     error))
		return FALSE;
	if (found)
		return TRUE; /* a duplicate: acknowledged, nothing changes */
	order = cs_engine_get_order(engine, notice->order_id, error);
	if (order == NULL)
		return FALSE;
	step = cs_engine_find_step(engine, order, CS_TRANSITION_PAYMENT);
	if (step == NULL) {
		if (cs_engine_get_tasks(engine) == NULL) {
			g_set_error(error, CS_ERROR, CS_ERROR_WRONG_STATE,
				    "order %s is %s: it does not wait for a payment",
				    cs_order_get_id(order), cs_order_get_state(order));
			return FALSE;
		}
		if (!record_unexpected_payment(engine, order, notice, error))
			return FALSE;
		if (refunding != NULL)
			*refunding = TRUE;
		return TRUE;
	}
	due = cs_engine_amount_fen(engine, order);
	if (notice->amount_fen != due) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "amount: %" G_GUINT64_FORMAT
			    " fen paid, the order costs %" G_GUINT64_FORMAT,
			    notice->amount_fen, due);
		return FALSE;
	}
	if (!cs_engine_act_full(engine, &request, order, step->action, record_payment, notice,
				error))
		return FALSE;
	*applied = TRUE;
	return TRUE;
}

/*
 * cs-engine-flow.c — the engine services the flows' steps use (certseal/plugin.h, minor 2):
 * order attributes, notices by SMS, the certificate password, the e-invoice, review
 * deadlines, refunds, and starting a payment (DESIGN §1.1, §3.3, §6).
 *
 * Invariants:
 * - Services marked "in transition" write only inside the step's transaction: a step and
 *   its effects (a notice queued, a password sealed, an invoice issued) commit together.
 * - Secrets are generated here, sealed at once, and leave only as a sealed copy that a
 *   gateway task refers to by id; the plaintext is wiped from memory after use.
 */
#define G_LOG_DOMAIN "certseald"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sqlite3.h>
#include <string.h>

#include "cs-engine-flow.h"
#include "cs-invoice.h"
#include "cs-tasks.h"
#include "cs-validate.h"
#include "cs-vault.h"
#include "cs-workdays.h"

#define PAYMENT_TTL_S (15 * 60)

static gboolean payment_step_from(const CsPlugin *plugin, const char *state);
#define PRECREATE_TIMEOUT_MS 10000

static gboolean
need(gpointer service, const char *what, GError **error)
{
	if (service != NULL)
		return TRUE;
	g_set_error(error, CS_ERROR, CS_ERROR_UNAVAILABLE, "%s is not running", what);
	return FALSE;
}

gboolean
cs_engine_set_attr(
    CsEngine *engine, CsOrder *order, const char *name, const char *value, GError **error)
{
	if (!cs_ledger_set_attr(cs_engine_get_ledger(engine), order->id, name, value,
				g_get_real_time(), error))
		return FALSE;
	/* The rest of the step sees it; the step forgets the cache when its transaction
	 * ends, committed or not. */
	if (order->attrs != NULL) {
		if (value != NULL)
			g_hash_table_insert(order->attrs, g_strdup(name), g_strdup(value));
		else
			g_hash_table_remove(order->attrs, name);
	}
	return TRUE;
}

/* A string of @len random decimal digits, from the OpenSSL generator without bias. */
char *
cs_random_digits(guint len, GError **error)
{
	char *out = g_malloc0(len + 1);

	for (guint i = 0; i < len;) {
		unsigned char b[16];
		if (RAND_bytes(b, sizeof b) != 1) {
			g_set_error_literal(error, CS_ERROR, CS_ERROR_INTERNAL,
					    "the random generator failed");
			OPENSSL_cleanse(out, len);
			g_free(out);
			return NULL;
		}
		for (guint j = 0; j < sizeof b && i < len; j++) {
			if (b[j] < 250) /* 250 = 25 × 10: no modulo bias */
				out[i++] = (char)('0' + b[j] % 10);
		}
		OPENSSL_cleanse(b, sizeof b);
	}
	return out;
}

void
cs_secret_free(char *secret)
{
	if (secret == NULL)
		return;
	OPENSSL_cleanse(secret, strlen(secret));
	g_free(secret);
}

static gint64
attr_int(CsOrder *order, const char *name)
{
	const char *v = cs_order_get_attr(order, name);
	return v != NULL ? g_ascii_strtoll(v, NULL, 10) : 0;
}

static gboolean
set_attr_int(CsEngine *engine, CsOrder *order, const char *name, gint64 value, GError **error)
{
	g_autofree char *text = g_strdup_printf("%" G_GINT64_FORMAT, value);
	return cs_engine_set_attr(engine, order, name, text, error);
}

/* The plaintext of a sealed secret the order refers to by attribute @name. */
char *
cs_engine_open_order_secret(CsEngine *engine, CsOrder *order, const char *name, GError **error)
{
	gint64 ref = attr_int(order, name);
	g_autoptr(GBytes) bytes = NULL;
	gsize len = 0;
	const char *data;

	if (ref <= 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_FOUND, "order %s has no %s", order->id,
			    name);
		return NULL;
	}
	bytes = cs_ledger_open_secret(cs_engine_get_ledger(engine), ref, error);
	if (bytes == NULL)
		return NULL;
	data = g_bytes_get_data(bytes, &len);
	return g_strndup(data, len);
}

static JsonObject *
params_to_json(GVariant *params)
{
	JsonObject *o = json_object_new();
	GVariantIter iter;
	const char *name;
	GVariant *value;

	if (params == NULL)
		return o;
	g_variant_iter_init(&iter, params);
	while (g_variant_iter_next(&iter, "{&sv}", &name, &value)) {
		if (g_variant_is_of_type(value, G_VARIANT_TYPE_STRING))
			json_object_set_string_member(o, name, g_variant_get_string(value, NULL));
		g_variant_unref(value);
	}
	return o;
}

gboolean
cs_engine_send_notice(CsEngine *engine,
		      CsOrder *order,
		      const char *phone,
		      const char *template_name,
		      GVariant *params,
		      gboolean with_password,
		      GError **error)
{
	CsTasks *tasks = cs_engine_get_tasks(engine);
	g_autoptr(GVariant) owned = params != NULL ? g_variant_ref_sink(params) : NULL;
	g_autoptr(JsonObject) json = NULL;
	char *secret = NULL;
	gboolean ok;

	if (!need(tasks, "the office", error))
		return FALSE;
	if (phone == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "phone: order %s has no phone for the %s notice", order->id,
			    template_name);
		return FALSE;
	}
	json = params_to_json(owned);
	json_object_set_string_member(json, "order", order->id);
	if (with_password) {
		secret = cs_engine_open_order_secret(engine, order, "user_pin_ref", error);
		if (secret == NULL)
			return FALSE;
	}
	ok = cs_tasks_send_sms_in_txn(tasks, order->id, phone, template_name, json, secret, FALSE,
				      error);
	cs_secret_free(secret);
	return ok;
}

gboolean
cs_engine_issue_password(CsEngine *engine, CsOrder *order, GError **error)
{
	const CsVendor *vendor = cs_config_find_vendor(cs_engine_get_config(engine), order->vendor);
	guint len = 8;
	char *pin;
	gint64 ref = 0;
	gboolean ok;

	if (cs_order_get_attr(order, "user_pin_ref") != NULL)
		return TRUE; /* once per order: making again uses the same password */
	if (vendor == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "vendor: unknown '%s'",
			    order->vendor);
		return FALSE;
	}
	len = CLAMP(len, vendor->pin_min_length, vendor->pin_max_length);
	pin = cs_random_digits(len, error);
	if (pin == NULL)
		return FALSE;
	ok = cs_ledger_seal_secret(cs_engine_get_ledger(engine), "user_pin", order->id,
				   (const guint8 *)pin, len, g_get_real_time(), &ref, error) &&
	     set_attr_int(engine, order, "user_pin_ref", ref, error);
	cs_secret_free(pin);
	return ok;
}

gboolean
cs_engine_forget_password(CsEngine *engine, CsOrder *order, GError **error)
{
	gint64 ref = attr_int(order, "user_pin_ref");

	if (ref <= 0)
		return TRUE;
	return cs_ledger_wipe_secret(cs_engine_get_ledger(engine), ref, g_get_real_time(), error) &&
	       cs_engine_set_attr(engine, order, "user_pin_ref", NULL, error);
}

gboolean
cs_engine_send_password_transfer(CsEngine *engine,
				 CsOrder *order,
				 const char *account_name,
				 const char *bank_name,
				 const char *account,
				 GError **error)
{
	CsTasks *tasks = cs_engine_get_tasks(engine);
	g_autoptr(JsonObject) payload = json_object_new();
	char *pin = NULL;
	gint64 ref = 0;
	gboolean ok;

	if (!need(tasks, "the office", error))
		return FALSE;
	if (account == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "bank_account: required for a transfer");
		return FALSE;
	}
	pin = cs_engine_open_order_secret(engine, order, "user_pin_ref", error);
	if (pin == NULL)
		return FALSE;
	json_object_set_string_member(payload, "kind", "micro_deposit");
	json_object_set_string_member(payload, "account_name",
				      account_name != NULL ? account_name : "");
	json_object_set_string_member(payload, "bank_name", bank_name != NULL ? bank_name : "");
	json_object_set_string_member(payload, "account", account);
	json_object_set_int_member(payload, "amount_fen", 1);
	json_object_set_string_member(payload, "template", "password_transfer");
	ok =
	    cs_ledger_seal_secret(cs_engine_get_ledger(engine), "bank", order->id,
				  (const guint8 *)pin, strlen(pin), g_get_real_time(), &ref, error);
	cs_secret_free(pin);
	if (!ok)
		return FALSE;
	json_object_set_int_member(payload, "secret_ref", ref);
	return cs_tasks_enqueue_in_txn(tasks, "bank", order->id, NULL, payload, ref, NULL, error);
}

static char *
sha256_hex(GBytes *bytes)
{
	guint8 md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	gsize size = 0;
	const guint8 *data = g_bytes_get_data(bytes, &size);
	GString *s = g_string_new(NULL);

	EVP_Digest(data, size, md, &len, EVP_sha256(), NULL);
	for (unsigned int i = 0; i < len; i++)
		g_string_append_printf(s, "%02x", md[i]);
	return g_string_free(s, FALSE);
}

/* The manual's name of a kind, as the invoice's item says it. */
static const char *
kind_title(const char *kind)
{
	static const struct {
		const char *kind, *title;
	} titles[] = {
	    {"new", "新办"},	 {"renew", "更新"},  {"unlock", "解锁"},
	    {"reissue", "补办"}, {"change", "变更"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(titles); i++) {
		if (g_strcmp0(titles[i].kind, kind) == 0)
			return titles[i].title;
	}
	return kind;
}

gboolean
cs_engine_issue_invoice(CsEngine *engine, CsOrder *order, const char *email, GError **error)
{
	CsLedger *ledger = cs_engine_get_ledger(engine);
	CsConfig *config = cs_engine_get_config(engine);
	CsTasks *tasks = cs_engine_get_tasks(engine);
	g_autoptr(GDateTime) now = g_date_time_new_now_local();
	g_autofree char *day = g_date_time_format(now, "%Y%m%d");
	g_autofree char *number = NULL;
	g_autofree char *item = NULL;
	g_autofree char *digest = NULL;
	g_autofree char *amount = NULL;
	g_autofree char *body = NULL;
	g_autofree char *subject = NULL;
	g_autofree char *name = NULL;
	g_autoptr(GBytes) pdf = NULL;
	g_autoptr(JsonObject) payload = json_object_new();
	JsonArray *attachments;
	JsonObject *a;
	g_autoptr(GError) render_error = NULL;
	guint64 paid = 0;
	gint64 count = 0;
	gboolean org = order->subject_type == CS_SUBJECT_ORG;
	CsInvoice invoice = {0};

	if (!need(tasks, "the office", error))
		return FALSE;
	if (cs_order_get_attr(order, "invoice_number") != NULL)
		return TRUE; /* issued once */
	if (!cs_ledger_order_paid(ledger, order->id, &paid, error) ||
	    !cs_ledger_count_invoices(ledger, &count, error))
		return FALSE;
	if (paid == 0)
		return TRUE; /* nothing paid, nothing to invoice */
	number = g_strdup_printf("CS%s%08" G_GINT64_FORMAT, day, count + 1);
	item = g_strdup_printf("数字证书及电子签章服务（%s）", kind_title(order->kind));
	invoice.number = number;
	invoice.issued = now;
	invoice.order_id = order->id;
	invoice.buyer_name = cs_order_get_field(order, org ? "org_name" : "name");
	invoice.buyer_tax_id = org ? cs_order_get_field(order, "uscc") : NULL;
	invoice.item = item;
	invoice.amount_fen = paid;
	invoice.tax_rate_permille = config->invoice_tax_rate_permille;
	invoice.seller_name = config->invoice_seller_name;
	invoice.seller_tax_id = config->invoice_seller_tax_id;
	pdf = cs_invoice_render(&invoice, &render_error);
	if (pdf == NULL) {
		/* The payment is real whatever the renderer says: record it; GetInvoice issues
		 * the invoice when it is first asked for. */
		g_warning("order %s: the e-invoice could not be rendered: %s", order->id,
			  render_error->message);
		return TRUE;
	}
	if (!cs_ledger_insert_invoice(ledger, order->id, number, paid, pdf, g_get_real_time(),
				      error) ||
	    !cs_engine_set_attr(engine, order, "invoice_number", number, error))
		return FALSE;
	if (email == NULL)
		return TRUE;
	digest = sha256_hex(pdf);
	amount = cs_amount_format(paid);
	subject = g_strdup_printf("电子发票 %s", number);
	body = g_strdup_printf("订单 %s 的电子发票 %s，金额 %s。", order->id, number, amount);
	name = g_strdup_printf("invoice-%s.pdf", number);
	json_object_set_string_member(payload, "to", email);
	json_object_set_string_member(payload, "subject", subject);
	json_object_set_string_member(payload, "body", body);
	attachments = json_array_new();
	a = json_object_new();
	json_object_set_string_member(a, "name", name);
	json_object_set_string_member(a, "mime", "application/pdf");
	json_object_set_string_member(a, "sha256", digest);
	json_array_add_object_element(attachments, a);
	json_object_set_array_member(payload, "attachments", attachments);
	return cs_tasks_enqueue_in_txn(tasks, "mail", order->id, NULL, payload, 0, NULL, error);
}

GBytes *
cs_engine_get_invoice(CsEngine *engine, const CsRequest *request, CsOrder *order, GError **error)
{
	CsLedger *ledger = cs_engine_get_ledger(engine);
	g_autoptr(GError) local = NULL;
	GBytes *pdf;

	if (!cs_engine_check_access(engine, request, order, error))
		return NULL;
	pdf = cs_ledger_load_invoice(ledger, order->id, NULL, &local);
	if (pdf != NULL || !g_error_matches(local, CS_ERROR, CS_ERROR_NOT_FOUND) ||
	    !cs_engine_order_paid(engine, order)) {
		if (pdf == NULL)
			g_propagate_error(error, g_steal_pointer(&local));
		return pdf;
	}
	/* Paid, but the invoice could not be rendered when the payment arrived: issue it now. */
	if (!cs_ledger_begin(ledger, error))
		return NULL;
	if (!cs_engine_issue_invoice(engine, order, cs_order_get_field(order, "email"), error) ||
	    !cs_ledger_commit(ledger, error)) {
		cs_ledger_rollback(ledger);
		cs_order_forget_attrs(order);
		return NULL;
	}
	cs_engine_order_attrs_changed(engine, order, 0);
	return cs_ledger_load_invoice(ledger, order->id, NULL, error);
}

gboolean
cs_engine_set_due_by(CsEngine *engine, CsOrder *order, guint working_days, GError **error)
{
	CsConfig *config = cs_engine_get_config(engine);
	CsCalendar calendar = {
	    .holidays = (const char *const *)config->review_holidays,
	    .extra_workdays = (const char *const *)config->review_extra_workdays,
	};
	g_autoptr(GDateTime) now = g_date_time_new_now_local();
	g_autoptr(GDateTime) due = cs_calendar_due_by(
	    &calendar, now, working_days > 0 ? working_days : cs_engine_review_days(engine, order));

	return set_attr_int(engine, order, "due_by", g_date_time_to_unix(due), error);
}

guint
cs_engine_review_days(CsEngine *engine, CsOrder *order)
{
	CsConfig *config = cs_engine_get_config(engine);
	return order->subject_type == CS_SUBJECT_ORG ? config->review_org_days
						     : config->review_person_days;
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(sqlite3_stmt, sqlite3_finalize)

/* What the cashier gives back: each payment received, on its own channel and trade. */
static JsonArray *
payments_of(
    CsEngine *engine, CsOrder *order, guint64 *total, const char **channel_out, GError **error)
{
	sqlite3 *db = cs_ledger_get_db(cs_engine_get_ledger(engine));
	g_autoptr(sqlite3_stmt) stmt = NULL;
	g_autoptr(JsonArray) out = json_array_new();
	int rc;

	*total = 0;
	if (sqlite3_prepare_v2(db,
			       "SELECT channel, trade_no, amount_fen FROM payments "
			       "WHERE order_id = ?1 ORDER BY time",
			       -1, &stmt, NULL) != SQLITE_OK) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "ledger: %s", sqlite3_errmsg(db));
		return NULL;
	}
	sqlite3_bind_text(stmt, 1, order->id, -1, SQLITE_TRANSIENT);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		JsonObject *p = json_object_new();
		json_object_set_string_member(p, "channel",
					      (const char *)sqlite3_column_text(stmt, 0));
		json_object_set_string_member(p, "trade_no",
					      (const char *)sqlite3_column_text(stmt, 1));
		json_object_set_int_member(p, "amount_fen", sqlite3_column_int64(stmt, 2));
		*total += (guint64)sqlite3_column_int64(stmt, 2);
		json_array_add_object_element(out, p);
	}
	if (rc != SQLITE_DONE) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "ledger: %s", sqlite3_errmsg(db));
		return NULL;
	}
	if (channel_out != NULL) {
		guint n = json_array_get_length(out);
		*channel_out = n > 0 ? json_object_get_string_member(
					   json_array_get_object_element(out, n - 1), "channel")
				     : "";
	}
	return g_steal_pointer(&out);
}

gboolean
cs_engine_queue_refund(CsEngine *engine, CsOrder *order, GError **error)
{
	CsTasks *tasks = cs_engine_get_tasks(engine);
	g_autoptr(JsonObject) payload = json_object_new();
	g_autoptr(JsonArray) payments = NULL;
	const char *channel = "";
	guint64 paid = 0;

	if (!need(tasks, "the office", error))
		return FALSE;
	payments = payments_of(engine, order, &paid, &channel, error);
	if (payments == NULL)
		return FALSE;
	json_object_set_string_member(payload, "kind", "refund");
	json_object_set_string_member(payload, "order_id", order->id);
	json_object_set_string_member(payload, "channel", channel);
	json_object_set_int_member(payload, "amount_fen", (gint64)paid);
	json_object_set_array_member(payload, "payments", g_steal_pointer(&payments));
	return cs_tasks_enqueue_in_txn(tasks, "cashier", order->id, order->state, payload, 0, NULL,
				       error);
}

/* ---- StartPayment (DESIGN §3.3) ----------------------------------------------------------- */

typedef struct {
	CsEngine *engine;
	gint64 task_id;
	guint timeout;
	CsPaymentStartedFunc func;
	gpointer user_data;
	GDestroyNotify destroy;
} PaymentWaiter;

void
cs_payment_waiter_free(gpointer data)
{
	PaymentWaiter *w = data;

	if (w->timeout != 0)
		g_source_remove(w->timeout);
	if (w->destroy != NULL)
		w->destroy(w->user_data);
	g_free(w);
}

static GHashTable *
waiters(CsEngine *engine)
{
	return cs_engine_get_payment_waiters(engine);
}

static void
waiter_finish(PaymentWaiter *w, const char *payload, guint64 expires, const GError *error)
{
	g_hash_table_steal(waiters(w->engine), &w->task_id);
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
	if (!cs_tasks_abandon(cs_engine_get_tasks(w->engine), w->task_id,
			      "the payment was not set up in time", &local))
		g_warning("cashier task %" G_GINT64_FORMAT ": %s", w->task_id, local->message);
	waiter_finish(w, NULL, 0, error);
	return G_SOURCE_REMOVE;
}

void
cs_engine_payment_task_done(CsEngine *engine, gint64 task_id, const char *result_json)
{
	PaymentWaiter *w = g_hash_table_lookup(waiters(engine), &task_id);
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(GError) error = NULL;
	const char *payload = NULL;

	if (w == NULL)
		return;
	if (result_json != NULL && json_parser_load_from_data(parser, result_json, -1, NULL) &&
	    JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
		JsonObject *o = json_node_get_object(json_parser_get_root(parser));
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

gboolean
cs_engine_awaits_payment(CsEngine *engine, CsOrder *order)
{
	return payment_step_from(order->plugin, order->state);
}

static gboolean
payment_step_from(const CsPlugin *plugin, const char *state)
{
	for (guint i = 0; plugin != NULL && i < plugin->n_transitions; i++) {
		const CsTransition *t = &plugin->transitions[i];
		if ((t->actors & CS_ACTOR_GATEWAY) && g_strcmp0(t->action, "pay") == 0 &&
		    g_strcmp0(t->from, state) == 0)
			return TRUE;
	}
	return FALSE;
}

void
cs_engine_start_payment(CsEngine *engine,
			const CsRequest *request,
			CsOrder *order,
			const char *channel,
			CsPaymentStartedFunc func,
			gpointer user_data,
			GDestroyNotify destroy)
{
	static const char *const channels[] = {"sandbox", "alipay", "wechat", NULL};
	CsLedger *ledger = cs_engine_get_ledger(engine);
	CsTasks *tasks = cs_engine_get_tasks(engine);
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
	if (!payment_step_from(order->plugin, order->state)) {
		error = g_error_new(CS_ERROR, CS_ERROR_WRONG_STATE,
				    "order %s is %s: there is nothing to pay now", order->id,
				    order->state);
		goto fail;
	}
	if (sandbox && !cs_engine_get_config(engine)->test_mode) {
		error = g_error_new_literal(CS_ERROR, CS_ERROR_UNAVAILABLE,
					    "channel: the sandbox channel needs test_mode");
		goto fail;
	}
	if (!need(tasks, "the office", &error))
		goto fail;
	g_variant_dict_init(&d, NULL);
	g_variant_dict_insert(&d, "channel", "s", channel);
	data = g_variant_ref_sink(g_variant_dict_end(&d));
	json_object_set_string_member(payload, "kind", "precreate");
	json_object_set_string_member(payload, "order_id", order->id);
	json_object_set_string_member(payload, "channel", channel);
	json_object_set_int_member(payload, "amount_fen", (gint64)amount);
	if (!cs_ledger_begin(ledger, &error))
		goto fail;
	ok = cs_ledger_update_order(ledger, order->id, NULL, NULL, now, &error) &&
	     cs_engine_set_attr(engine, order, "payment_channel", channel, &error) &&
	     cs_ledger_append_event(ledger, order->id, "payment_started", order->state,
				    order->state, actor, data, now, NULL, &error) &&
	     /* One payment being set up per order: a new StartPayment replaces the last. */
	     cs_tasks_abandon_requests(tasks, order->id, "precreate",
				       "replaced by a newer StartPayment", &error) &&
	     (sandbox || cs_tasks_enqueue_in_txn(tasks, "cashier", order->id, order->state, payload,
						 0, &task_id, &error)) &&
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
				    order->id, amount);
		func(qr, (guint64)(g_get_real_time() / G_USEC_PER_SEC) + PAYMENT_TTL_S, NULL,
		     user_data);
		if (destroy != NULL)
			destroy(user_data);
		return;
	}
	{
		PaymentWaiter *w = g_new0(PaymentWaiter, 1);
		w->engine = engine;
		w->task_id = task_id;
		w->func = func;
		w->user_data = user_data;
		w->destroy = destroy;
		w->timeout = g_timeout_add(PRECREATE_TIMEOUT_MS, on_precreate_timeout, w);
		g_hash_table_insert(waiters(engine), &w->task_id, w);
	}
	return;
fail:
	func(NULL, 0, error, user_data);
	if (destroy != NULL)
		destroy(user_data);
}

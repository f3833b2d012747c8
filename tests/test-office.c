/*
 * test-office.c — the office's engine side and parser at the C API, with a real ledger:
 * CSO1 frames, durable leased tasks (exactly-once DONE, stale leases), the SMS limits,
 * the sandbox outbox, Alipay RSA2 and WeChat Pay v3 verification with gateway keys made
 * here, and the ZeroMQ GSource draining a flood.
 *
 * The flow plugin is a fixture declared below with office steps (pay by a gateway, review,
 * make); it is registered under the kind "reissue" only to use that kind's entry in the
 * demo vendor's price table (30000 fen for an org).
 */
#include <glib/gstdio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sqlite3.h>
#include <string.h>
#include <zmq.h>

#include "cs-engine.h"
#include "cs-office-keys.h"
#include "cs-office-msg.h"
#include "cs-office.h"
#include "cs-payment.h"
#include "cs-queue.h"
#include "cs-tasks.h"
#include "cs-zmq-source.h"

#define PRICE_FEN 30000

static const char *const fx_states[] = {"draft", "unpaid", "in_review", "approved", "made", NULL};
static const char *const fx_editable[] = {"draft", NULL};
static const CsFieldSpec fx_fields[] = {
    {"vendor", CS_FIELD_VENDOR, CS_SUBJECT_ANY, TRUE, FALSE, NULL, 32},
};
static const CsResultSpec fx_review_results[] = {{"note", FALSE, TRUE}, {NULL}};
static const CsResultSpec fx_make_results[] = {{"key_serial", TRUE, FALSE}, {NULL}};
static const CsTransition fx_transitions[] = {
    {"confirm", "draft", "unpaid", CS_ACTOR_DESKTOP, 0},
    {"pay", "unpaid", "in_review", CS_ACTOR_GATEWAY, CS_TRANSITION_PAYMENT},
    {"approve", "in_review", "approved", CS_ACTOR_REVIEWER, 0, "review", fx_review_results},
    {"reject", "in_review", "draft", CS_ACTOR_REVIEWER, 0, "review", fx_review_results},
    {"make", "approved", "made", CS_ACTOR_MAKER, 0, "make", fx_make_results},
};
static const CsPlugin fx_plugin = {
    .kind = "reissue",
    .summary = "office test fixture",
    .initial_state = "draft",
    .states = fx_states,
    .editable_states = fx_editable,
    .transitions = fx_transitions,
    .n_transitions = G_N_ELEMENTS(fx_transitions),
    .fields = fx_fields,
    .n_fields = G_N_ELEMENTS(fx_fields),
};

static const CsRequest owner = {.actor = CS_ACTOR_DESKTOP, .uid = 1000};
static const CsRequest rita = {
    .actor = CS_ACTOR_ADMIN, .user_id = "rita", .roles = CS_ACTOR_REVIEWER};
static const CsRequest mark = {.actor = CS_ACTOR_ADMIN, .user_id = "mark", .roles = CS_ACTOR_MAKER};

typedef struct {
	char *dir;
	CsConfig *config;
	CsVault *vault;
	CsLedger *ledger;
	CsEngine *engine;
	CsTasks *tasks;
	CsQueue *queue;
	EVP_PKEY *alipay;
	EVP_PKEY *wechat;
	CsPaymentKeys *keys;
} Fixture;

G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_MD_CTX, EVP_MD_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_CIPHER_CTX, EVP_CIPHER_CTX_free)

static const guint8 apiv3[32] = "0123456789abcdef0123456789abcdef";

static char *
write_public_pem(Fixture *f, EVP_PKEY *key, const char *name)
{
	char *path = g_build_filename(f->dir, name, NULL);
	FILE *fp = fopen(path, "w");

	g_assert_nonnull(fp);
	g_assert_cmpint(PEM_write_PUBKEY(fp, key), ==, 1);
	fclose(fp);
	return path;
}

/* The task queue and the order work over it, as the daemon opens them. */
static void
open_tasks(Fixture *f)
{
	g_autoptr(GError) error = NULL;

	f->tasks = cs_tasks_new(f->ledger, f->vault, f->config, &error);
	g_assert_no_error(error);
	f->queue = cs_queue_new(f->engine, f->tasks, &error);
	g_assert_no_error(error);
}

static void
close_tasks(Fixture *f)
{
	g_clear_pointer(&f->queue, cs_queue_free);
	g_clear_pointer(&f->tasks, cs_tasks_free);
}

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *ledger_path = NULL;
	g_autofree char *apiv3_path = NULL;

	f->dir = g_dir_make_tmp("cs-office-XXXXXX", &error);
	g_assert_no_error(error);
	f->config = cs_config_load(NULL, &error);
	g_assert_no_error(error);
	f->config->test_mode = TRUE;
	f->config->office_sandbox_gateways = TRUE;
	g_free(f->config->vendor_dir);
	f->config->vendor_dir =
	    g_build_filename(g_getenv("CS_SOURCE_DIR"), "daemon", "vendors.d", NULL);
	g_assert_true(cs_config_load_vendors(f->config, &error));
	f->alipay = EVP_RSA_gen(2048);
	f->wechat = EVP_RSA_gen(2048);
	f->config->alipay_app_id = g_strdup("2021000000000001");
	f->config->alipay_public_key = write_public_pem(f, f->alipay, "alipay.pem");
	f->config->wechat_mchid = g_strdup("1900000001");
	f->config->wechat_appid = g_strdup("wx0000000000000001");
	f->config->wechat_platform_public_key = write_public_pem(f, f->wechat, "wechat.pem");
	apiv3_path = g_build_filename(f->dir, "apiv3.key", NULL);
	g_assert_true(g_file_set_contents(apiv3_path, (const char *)apiv3, 32, NULL));
	f->config->wechat_apiv3_key_file = g_strdup(apiv3_path);
	f->keys = cs_payment_keys_load(f->config, &error);
	g_assert_no_error(error);

	ledger_path = g_build_filename(f->dir, "ledger.db", NULL);
	f->vault = cs_vault_open(f->dir, &error);
	g_assert_no_error(error);
	f->ledger = cs_ledger_open(ledger_path, f->vault, 1000, &error);
	g_assert_no_error(error);
	f->engine = cs_engine_new(f->config, f->ledger);
	g_assert_true(cs_engine_add_plugin(f->engine, &fx_plugin, &error));
	open_tasks(f);
}

static void
remove_tree(const char *dir)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *name;

	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		g_autofree char *p = g_build_filename(dir, name, NULL);
		if (g_file_test(p, G_FILE_TEST_IS_DIR))
			remove_tree(p);
		else
			g_unlink(p);
	}
	g_rmdir(dir);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
	close_tasks(f);
	cs_engine_free(f->engine);
	cs_ledger_free(f->ledger);
	cs_vault_free(f->vault);
	cs_payment_keys_free(f->keys);
	EVP_PKEY_free(f->alipay);
	EVP_PKEY_free(f->wechat);
	cs_config_free(f->config);
	remove_tree(f->dir);
	g_free(f->dir);
}

static CsOrder *
order_in(Fixture *f, const char *state)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariantDict) d = g_variant_dict_new(NULL);
	g_autoptr(GVariant) fields = NULL;
	CsOrder *order;
	CsRequest gw = {.actor = CS_ACTOR_GATEWAY};

	g_variant_dict_insert(d, "vendor", "s", "demo-a");
	fields = g_variant_ref_sink(g_variant_dict_end(d));
	order = cs_engine_create_order(f->engine, &owner, "reissue", "org", fields, &error);
	g_assert_no_error(error);
	g_assert_true(cs_engine_act(f->engine, &owner, order, "confirm", &error));
	if (g_strcmp0(state, "in_review") == 0)
		g_assert_true(cs_engine_act(f->engine, &gw, order, "pay", &error));
	g_assert_no_error(error);
	return order;
}

static gint64
count(Fixture *f, const char *sql)
{
	sqlite3_stmt *stmt = NULL;
	gint64 n;

	g_assert_cmpint(sqlite3_prepare_v2(cs_ledger_get_db(f->ledger), sql, -1, &stmt, NULL), ==,
			SQLITE_OK);
	g_assert_cmpint(sqlite3_step(stmt), ==, SQLITE_ROW);
	n = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return n;
}

/* ---- CSO1 frames ------------------------------------------------------------------------ */

static CsOfficeMsg *
parse3(const char *a, const char *b, const char *c, GError **error)
{
	g_autoptr(GBytes) f0 = g_bytes_new(a, strlen(a));
	g_autoptr(GBytes) f1 = b != NULL ? g_bytes_new(b, strlen(b)) : NULL;
	g_autoptr(GBytes) f2 = c != NULL ? g_bytes_new(c, strlen(c)) : NULL;
	GBytes *frames[] = {f0, f1, f2};

	return cs_office_msg_parse(frames, b == NULL ? 1 : c == NULL ? 2 : 3, error);
}

static void
test_msg_parse(Fixture *f, gconstpointer data)
{
	static const struct {
		const char *a, *b, *c, *mention;
	} bad[] = {
	    {"CSO2", "CALL", "{\"method\":\"info\"}", "protocol"},
	    {"CSO1", NULL, NULL, "missing frames"},
	    {"CSO1", "CALL", NULL, "needs a body"},
	    {"CSO1", "CALL", "{nope", "not JSON"},
	    {"CSO1", "CALL", "[1]", "JSON object"},
	    {"CSO1", "CALL", "{\"method\":1}", "\"method\""},
	    {"CSO1", "FROB", "{}", "verb"},
	    {"CSO1", "DONE", "{}", "\"lease\""},
	    {"CSO1", "READY", "{\"service\":null}", "\"service\""},
	    {"CSO1", "CALL", "{\"id\":1e999999,\"method\":\"info\"}", "not finite"},
	    {"CSO1", "CALL", "{\"id\":1.5,\"method\":\"info\"}", "id: an integer or a string"},
	    {"CSO1", "CALL", "{\"id\":[1],\"method\":\"info\"}", "id: an integer or a string"},
	    {"CSO1", "CALL", "{\"id\":true,\"method\":\"info\"}", "id: an integer or a string"},
	    {"CSO1", "CALL", "{\"id\":null,\"method\":\"info\"}", "id: an integer or a string"},
	    {"CSO1", "CALL", "{\"id\":1,\"method\":\"info\\u0000evil\"}", "U+0000"},
	};
	g_autoptr(GError) error = NULL;
	g_autoptr(CsOfficeMsg) msg =
	    parse3("CSO1", "CALL", "{\"id\":7,\"method\":\"info\"}", &error);
	g_autoptr(CsOfficeMsg) beat = parse3("CSO1", "HEARTBEAT", NULL, &error);
	g_autoptr(CsOfficeMsg) named =
	    parse3("CSO1", "CALL", "{\"id\":\"a-7\",\"method\":\"info\"}", &error);
	g_autoptr(CsOfficeMsg) anonymous = parse3("CSO1", "CALL", "{\"method\":\"info\"}", &error);

	g_assert_no_error(error);
	g_assert_cmpint(msg->verb, ==, CS_OFFICE_CALL);
	g_assert_cmpstr(cs_office_body_get_string(msg->body, "method"), ==, "info");
	g_assert_cmpint(beat->verb, ==, CS_OFFICE_HEARTBEAT);
	g_assert_nonnull(named);
	g_assert_nonnull(anonymous);
	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) e = NULL;
		g_autoptr(CsOfficeMsg) m = parse3(bad[i].a, bad[i].b, bad[i].c, &e);
		g_assert_null(m);
		g_assert_error(e, CS_ERROR, CS_ERROR_INVALID_INPUT);
		g_assert_nonnull(strstr(e->message, bad[i].mention));
	}
}

/* ---- tasks ------------------------------------------------------------------------------ */

static CsTask *
only_task(Fixture *f, const char *service)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) list = cs_tasks_list(f->tasks, "queued", service, &error);

	g_assert_no_error(error);
	g_assert_cmpuint(list->len, ==, 1);
	return g_ptr_array_steal_index(list, 0);
}

static void
test_review_task_done_once(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	CsOrder *order = order_in(f, "in_review");
	g_autoptr(CsTask) queued = only_task(f, "review");
	g_autoptr(CsTask) first = NULL;
	g_autoptr(CsTask) second = NULL;
	g_autoptr(JsonObject) approve = json_object_new();
	g_autoptr(GPtrArray) history = NULL;
	guint approvals = 0;

	g_assert_cmpstr(queued->order_id, ==, cs_order_get_id(order));
	g_assert_cmpstr(queued->expected_state, ==, "in_review");
	json_object_set_string_member(approve, "decision", "approve");
	/* A maker may not take a review. */
	first = cs_tasks_lease_next(f->tasks, "review", "rita", &error);
	g_assert_no_error(error);
	g_assert_false(cs_tasks_complete(f->tasks, &mark, first->lease, approve, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_ACCESS_DENIED);
	g_clear_error(&error);
	/* The lease is lost (a silent worker): the task goes back, the old lease is stale. */
	g_assert_true(cs_tasks_release(f->tasks, first->lease));
	second = cs_tasks_lease_next(f->tasks, "review", "rob", &error);
	g_assert_nonnull(second);
	g_assert_cmpint(second->id, ==, first->id);
	g_assert_false(cs_tasks_complete(f->tasks, &rita, first->lease, approve, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_WRONG_STATE);
	g_clear_error(&error);
	g_assert_cmpstr(cs_order_get_state(order), ==, "in_review");
	/* The current lease commits once; a retry is refused. */
	g_assert_true(cs_tasks_complete(f->tasks, &rita, second->lease, approve, &error));
	g_assert_no_error(error);
	g_assert_cmpstr(cs_order_get_state(order), ==, "approved");
	g_assert_false(cs_tasks_complete(f->tasks, &rita, second->lease, approve, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_WRONG_STATE);
	history = cs_engine_history(f->engine, order, NULL);
	for (guint i = 0; i < history->len; i++) {
		CsEventRow *e = g_ptr_array_index(history, i);
		if (g_strcmp0(e->kind, "approve") == 0) {
			approvals++;
			g_assert_cmpstr(e->actor, ==, "office:rita");
		}
	}
	g_assert_cmpuint(approvals, ==, 1);
	/* The next step's task was queued by the engine's rule. */
	g_clear_pointer(&queued, cs_task_free);
	queued = only_task(f, "make");
	g_assert_cmpstr(queued->expected_state, ==, "approved");
}

static void
test_done_refused_when_order_moved_on(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	CsOrder *order = order_in(f, "in_review");
	g_autoptr(CsTask) task = cs_tasks_lease_next(f->tasks, "review", "rita", &error);
	g_autoptr(JsonObject) approve = json_object_new();
	CsRequest admin = {.actor = CS_ACTOR_ADMIN, .user_id = "boss", .roles = CS_ACTOR_ADMIN};

	json_object_set_string_member(approve, "decision", "approve");
	/* Someone else took the step directly. */
	admin.actor = CS_ACTOR_REVIEWER;
	g_assert_true(cs_engine_act(f->engine, &admin, order, "reject", &error));
	g_assert_false(cs_tasks_complete(f->tasks, &rita, task->lease, approve, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_WRONG_STATE);
	g_assert_cmpstr(cs_order_get_state(order), ==, "draft");
	/* The obsolete task was ended, not left for the next reviewer. */
	g_assert_cmpint(count(f, "SELECT count(*) FROM tasks WHERE state IN ('queued', 'leased')"),
			==, 0);
	g_assert_cmpint(
	    count(f,
		  "SELECT count(*) FROM tasks WHERE state = 'failed' AND result LIKE '%obsolete%'"),
	    ==, 1);
}

static void
test_tasks_survive_reopen(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CsTask) leased = NULL;
	g_autoptr(GPtrArray) all = NULL;

	order_in(f, "in_review");
	order_in(f, "in_review");
	leased = cs_tasks_lease_next(f->tasks, "review", "rita", &error);
	close_tasks(f);
	open_tasks(f);
	g_assert_no_error(error);
	all = cs_tasks_list(f->tasks, "queued", "review", &error);
	g_assert_cmpuint(all->len, ==, 2); /* the lease was revoked, nothing duplicated */
	g_assert_null(cs_tasks_get_by_lease(f->tasks, leased->lease, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_WRONG_STATE);
}

/* ---- SMS and the sandbox ----------------------------------------------------------------- */

static void
test_sms_limits_and_sandbox_outbox(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CsTask) task = NULL;
	g_autoptr(JsonArray) outbox = NULL;
	gint64 id = 0;
	const char *text;

	g_assert_true(cs_tasks_send_sms(f->tasks, NULL, "13800138000", "sms_code", NULL, "493817",
					&id, &error));
	g_assert_no_error(error);
	/* The cooldown. */
	g_assert_false(cs_tasks_send_sms(f->tasks, NULL, "13800138000", "sms_code", NULL, "111111",
					 NULL, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_RATE_LIMITED);
	g_clear_error(&error);
	/* The daily cap, without the cooldown. */
	f->config->sms_resend_cooldown_s = 0;
	f->config->sms_daily_cap = 2;
	g_assert_true(
	    cs_tasks_send_sms(f->tasks, NULL, "13800138000", "sms_code", NULL, NULL, NULL, &error));
	g_assert_false(
	    cs_tasks_send_sms(f->tasks, NULL, "13800138000", "sms_code", NULL, NULL, NULL, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_RATE_LIMITED);
	g_clear_error(&error);
	g_assert_true(
	    cs_tasks_send_sms(f->tasks, NULL, "13900139000", "sms_code", NULL, NULL, NULL, &error));
	/* No secret in any payload, event or task result: only its id. */
	g_assert_cmpint(count(f, "SELECT count(*) FROM tasks WHERE payload LIKE '%493817%'"), ==,
			0);
	g_assert_cmpint(count(f, "SELECT count(*) FROM events WHERE data LIKE '%493817%'"), ==, 0);
	g_assert_cmpint(count(f, "SELECT count(*) FROM tasks WHERE secret_ref IS NOT NULL"), ==, 1);

	/* The sandbox gateway delivers it to the outbox, and the one-time secret is wiped. */
	task = cs_tasks_lease_next(f->tasks, "sms", "sandbox", &error);
	g_assert_cmpint(task->id, ==, id);
	g_assert_true(cs_tasks_run_sandbox(f->tasks, task->lease, &error));
	g_assert_no_error(error);
	outbox = cs_tasks_list_outbox(f->tasks, "sms", &error);
	g_assert_cmpuint(json_array_get_length(outbox), ==, 1);
	text = json_object_get_string_member(json_array_get_object_element(outbox, 0), "text");
	g_assert_nonnull(strstr(text, "493817"));
	g_assert_cmpint(
	    count(f, "SELECT count(*) FROM secrets WHERE purpose = 'sms' AND wiped IS NOT NULL"),
	    ==, 1);
	g_assert_cmpint(count(f, "SELECT count(*) FROM outbox WHERE recipient = '13800138000'"), ==,
			1);

	/* The other sandbox services behind the same task interface. */
	{
		g_autoptr(JsonObject) mail = json_object_new();
		g_autoptr(JsonObject) idv = json_object_new();
		g_autoptr(CsTask) m = NULL;
		g_autoptr(CsTask) i = NULL;
		g_autoptr(JsonArray) mails = NULL;
		g_autoptr(GPtrArray) done = NULL;

		json_object_set_string_member(mail, "to", "ops@example.cn");
		json_object_set_string_member(mail, "subject", "电子发票");
		json_object_set_string_member(mail, "body", "见附件");
		json_object_set_string_member(idv, "method", "phone");
		g_assert_true(
		    cs_tasks_enqueue(f->tasks, "mail", NULL, NULL, mail, 0, NULL, &error));
		g_assert_true(cs_tasks_enqueue(f->tasks, "idv", NULL, NULL, idv, 0, NULL, &error));
		m = cs_tasks_lease_next(f->tasks, "mail", "sandbox", &error);
		i = cs_tasks_lease_next(f->tasks, "idv", "sandbox", &error);
		g_assert_true(cs_tasks_run_sandbox(f->tasks, m->lease, &error));
		g_assert_true(cs_tasks_run_sandbox(f->tasks, i->lease, &error));
		g_assert_no_error(error);
		mails = cs_tasks_list_outbox(f->tasks, "mail", &error);
		g_assert_cmpuint(json_array_get_length(mails), ==, 1);
		g_assert_nonnull(strstr(
		    json_object_get_string_member(json_array_get_object_element(mails, 0), "text"),
		    "电子发票"));
		done = cs_tasks_list(f->tasks, "done", "idv", &error);
		g_assert_cmpuint(done->len, ==, 1);
		g_assert_nonnull(strstr(((CsTask *)g_ptr_array_index(done, 0))->result, "sandbox"));
	}
}

/* ---- payment notifications --------------------------------------------------------------- */

static char *
sign_b64(EVP_PKEY *key, const char *data, gsize len)
{
	g_autoptr(EVP_MD_CTX) ctx = EVP_MD_CTX_new();
	guchar sig[512];
	size_t sig_len = sizeof(sig);

	g_assert_cmpint(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key), ==, 1);
	g_assert_cmpint(EVP_DigestSign(ctx, sig, &sig_len, (const guchar *)data, len), ==, 1);
	return g_base64_encode(sig, sig_len);
}

static char *
alipay_form(Fixture *f, const char *order_id, const char *amount, const char *trade_no)
{
	/* As Alipay signs: every parameter but sign and sign_type, empty ones too. */
	g_autofree char *content = g_strdup_printf(
	    "app_id=2021000000000001&buyer_logon_id=&notify_id=n%s&out_trade_no=%s&total_amount=%s&"
	    "trade_no=%s&trade_status=TRADE_SUCCESS",
	    trade_no, order_id, amount, trade_no);
	g_autofree char *sig = sign_b64(f->alipay, content, strlen(content));
	g_autofree char *escaped = g_uri_escape_string(sig, NULL, FALSE);

	return g_strdup_printf("%s&sign_type=RSA2&sign=%s", content, escaped);
}

static void
test_alipay(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	CsOrder *order = order_in(f, "unpaid");
	g_autofree char *good = alipay_form(f, cs_order_get_id(order), "300.00", "T1");
	g_autofree char *wrong_amount = alipay_form(f, cs_order_get_id(order), "300.01", "T2");
	g_autofree char *tampered = g_strdup(good);
	g_autoptr(CsPaymentNotice) notice = NULL;
	gboolean applied = FALSE;

	*strstr(tampered, "300.00") = '9';
	g_assert_null(cs_payment_verify_alipay(f->keys, tampered, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_nonnull(strstr(error->message, "signature"));
	g_clear_error(&error);

	notice = cs_payment_verify_alipay(f->keys, wrong_amount, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(notice->amount_fen, ==, PRICE_FEN + 1);
	g_assert_false(cs_payment_apply(f->engine, notice, &applied, NULL, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_nonnull(strstr(error->message, "amount"));
	g_clear_error(&error);
	g_clear_pointer(&notice, cs_payment_notice_free);

	notice = cs_payment_verify_alipay(f->keys, good, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(notice->order_id, ==, cs_order_get_id(order));
	g_assert_cmpuint(notice->amount_fen, ==, PRICE_FEN);
	g_assert_true(cs_payment_apply(f->engine, notice, &applied, NULL, &error));
	g_assert_true(applied);
	g_assert_cmpstr(cs_order_get_state(order), ==, "in_review");
	/* Replayed: acknowledged, applied nothing. */
	g_assert_true(cs_payment_apply(f->engine, notice, &applied, NULL, &error));
	g_assert_false(applied);
	g_assert_cmpint(count(f, "SELECT count(*) FROM payments"), ==, 1);
	g_assert_cmpint(count(f, "SELECT count(*) FROM events WHERE kind = 'pay'"), ==, 1);
}

static char *
read_vector(const char *name)
{
	g_autofree char *path =
	    g_build_filename(g_getenv("CS_TEST_DATA"), "alipay-notify", name, NULL);
	g_autoptr(GError) error = NULL;
	char *text = NULL;

	g_assert_true(g_file_get_contents(path, &text, NULL, &error));
	g_assert_no_error(error);
	g_strchomp(text);
	return text;
}

/* Vectors signed and checked as the official SDK's notify check (tests/data/alipay-notify). */
static void
test_alipay_sdk_vectors(Fixture *f, gconstpointer data)
{
	static const char *const verify[] = {"sdk.form", "no-sign-type.form", "fallback.form"};
	g_autoptr(GError) error = NULL;
	g_autoptr(CsPaymentKeys) keys = NULL;
	g_autofree char *dropped = read_vector("empty-dropped.form");
	g_autofree char *rsa = NULL;

	g_free(f->config->alipay_public_key);
	f->config->alipay_public_key =
	    g_build_filename(g_getenv("CS_TEST_DATA"), "alipay-notify", "public.pem", NULL);
	keys = cs_payment_keys_load(f->config, &error);
	g_assert_no_error(error);
	for (guint i = 0; i < G_N_ELEMENTS(verify); i++) {
		g_autofree char *form = read_vector(verify[i]);
		g_autoptr(CsPaymentNotice) notice = cs_payment_verify_alipay(keys, form, &error);

		g_assert_no_error(error);
		g_assert_cmpstr(notice->order_id, ==, "ORDER-VECTOR-1");
		g_assert_cmpuint(notice->amount_fen, ==, 30000);
	}
	/* Empty values left out of the signed content: the SDK refuses it, and so do we. */
	g_assert_null(cs_payment_verify_alipay(keys, dropped, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_nonnull(strstr(error->message, "signature"));
	g_clear_error(&error);
	/* Only RSA2 is accepted. */
	rsa = read_vector("sdk.form");
	memcpy(strstr(rsa, "sign_type=RSA2"), "sign_type=RSA1", 14);
	g_assert_null(cs_payment_verify_alipay(keys, rsa, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_nonnull(strstr(error->message, "sign_type"));
}

static char *
wechat_body(const char *order_id, gint64 total, const char *txn)
{
	g_autofree char *plain = g_strdup_printf(
	    "{\"mchid\":\"1900000001\",\"appid\":\"wx0000000000000001\",\"out_trade_no\":\"%s\","
	    "\"transaction_id\":\"%s\",\"trade_state\":\"SUCCESS\",\"amount\":{\"total\":"
	    "%" G_GINT64_FORMAT "}}",
	    order_id, txn, total);
	g_autoptr(EVP_CIPHER_CTX) ctx = EVP_CIPHER_CTX_new();
	gsize len = strlen(plain);
	g_autofree guchar *ct = g_malloc(len + 16);
	g_autofree char *b64 = NULL;
	int n = 0;
	const char *aad = "transaction";

	g_assert_cmpint(
	    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, apiv3, (const guchar *)"abcdefghijkl"),
	    ==, 1);
	g_assert_cmpint(EVP_EncryptUpdate(ctx, NULL, &n, (const guchar *)aad, (int)strlen(aad)), ==,
			1);
	g_assert_cmpint(EVP_EncryptUpdate(ctx, ct, &n, (const guchar *)plain, (int)len), ==, 1);
	g_assert_cmpint(EVP_EncryptFinal_ex(ctx, ct + n, &n), ==, 1);
	g_assert_cmpint(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, ct + len), ==, 1);
	b64 = g_base64_encode(ct, len + 16);
	return g_strdup_printf("{\"id\":\"e1\",\"event_type\":\"TRANSACTION.SUCCESS\",\"resource\":"
			       "{\"algorithm\":\"AEAD_AES_256_GCM\",\"ciphertext\":\"%s\","
			       "\"associated_data\":\"transaction\",\"nonce\":\"abcdefghijkl\"}}",
			       b64);
}

static JsonObject *
wechat_headers(Fixture *f, const char *body, gint64 ts)
{
	JsonObject *h = json_object_new();
	g_autofree char *t = g_strdup_printf("%" G_GINT64_FORMAT, ts);
	g_autofree char *msg = g_strdup_printf("%s\nNONCE1\n%s\n", t, body);
	g_autofree char *sig = sign_b64(f->wechat, msg, strlen(msg));

	json_object_set_string_member(h, "wechatpay-timestamp", t);
	json_object_set_string_member(h, "Wechatpay-Nonce", "NONCE1");
	json_object_set_string_member(h, "Wechatpay-Signature", sig);
	return h;
}

static void
test_wechat(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	CsOrder *order = order_in(f, "unpaid");
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	g_autofree char *body = wechat_body(cs_order_get_id(order), PRICE_FEN, "W1");
	g_autofree char *tampered = g_strdup(body);
	g_autoptr(JsonObject) headers = wechat_headers(f, body, now);
	g_autoptr(JsonObject) stale = wechat_headers(f, body, now - 301);
	g_autoptr(CsPaymentNotice) notice = NULL;
	gboolean applied = FALSE;

	*strstr(tampered, "e1") = 'f';
	g_assert_null(cs_payment_verify_wechat(f->keys, headers, tampered, now, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_clear_error(&error);
	g_assert_null(cs_payment_verify_wechat(f->keys, stale, body, now, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_nonnull(strstr(error->message, "5 minutes"));
	g_clear_error(&error);
	notice = cs_payment_verify_wechat(f->keys, headers, body, now, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(notice->amount_fen, ==, PRICE_FEN);
	g_assert_true(cs_payment_apply(f->engine, notice, &applied, NULL, &error));
	g_assert_true(applied);
	g_assert_true(cs_payment_apply(f->engine, notice, &applied, NULL, &error));
	g_assert_false(applied);
	g_assert_cmpstr(cs_order_get_state(order), ==, "in_review");
}

/* ---- the GSource ------------------------------------------------------------------------ */

static void
on_message(void *socket, GPtrArray *frames, guint n_frames, const char *user_id, gpointer user_data)
{
	(*(guint *)user_data)++;
}

static void
test_zmq_source_drains(Fixture *f, gconstpointer data)
{
	void *ctx = zmq_ctx_new();
	void *rx = zmq_socket(ctx, ZMQ_PULL);
	void *tx = zmq_socket(ctx, ZMQ_PUSH);
	GSource *source;
	guint received = 0;
	gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

	g_assert_cmpint(zmq_bind(rx, "inproc://drain"), ==, 0);
	g_assert_cmpint(zmq_connect(tx, "inproc://drain"), ==, 0);
	source = cs_zmq_source_new(rx, on_message, &received);
	g_source_attach(source, NULL);
	/* Many messages arrive behind one edge of ZMQ_FD: all must be read. */
	for (guint i = 0; i < 1000; i++)
		g_assert_cmpint(zmq_send(tx, "m", 1, 0), ==, 1);
	while (received < 1000 && g_get_monotonic_time() < deadline)
		g_main_context_iteration(NULL, FALSE);
	g_assert_cmpuint(received, ==, 1000);
	g_source_destroy(source);
	g_source_unref(source);
	zmq_close(tx);
	zmq_close(rx);
	zmq_ctx_term(ctx);
}

/* ---- the office front: external workers before the sandbox ------------------------------ */

static void
pump(int ms)
{
	gint64 until = g_get_monotonic_time() + ms * 1000;

	while (g_get_monotonic_time() < until) {
		if (!g_main_context_iteration(NULL, FALSE))
			g_usleep(1000);
	}
}

static void
send3(void *sock, const char *verb, const char *body)
{
	zmq_send(sock, "CSO1", 4, ZMQ_SNDMORE);
	zmq_send(sock, verb, strlen(verb), ZMQ_SNDMORE);
	zmq_send(sock, body, strlen(body), 0);
}

/* The next message's verb and body (NULL on timeout), running the daemon's loop meanwhile. */
static JsonObject *
recv_verb(void *sock, const char *verb, int timeout_ms)
{
	gint64 until = g_get_monotonic_time() + timeout_ms * 1000;

	while (g_get_monotonic_time() < until) {
		char frames[3][4096];
		int n = 0, more = 1;

		g_main_context_iteration(NULL, FALSE);
		if (zmq_poll(&(zmq_pollitem_t){sock, 0, ZMQ_POLLIN, 0}, 1, 5) <= 0)
			continue;
		while (more) {
			size_t len = sizeof(more);
			int got = zmq_recv(sock, frames[MIN(n, 2)], sizeof(frames[0]) - 1, 0);
			frames[MIN(n, 2)][MAX(0, MIN(got, (int)sizeof(frames[0]) - 1))] = '\0';
			n++;
			zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len);
		}
		if (n == 3 && g_strcmp0(frames[1], verb) == 0) {
			g_autoptr(JsonParser) p = json_parser_new();
			g_assert_true(json_parser_load_from_data(p, frames[2], -1, NULL));
			return json_object_ref(json_node_get_object(json_parser_get_root(p)));
		}
	}
	return NULL;
}

static void
test_ready_worker_before_sandbox(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CsOffice) office = NULL;
	g_autoptr(JsonArray) outbox = NULL;
	g_autoptr(JsonObject) task = NULL;
	g_autoptr(JsonObject) secret = NULL;
	g_autoptr(JsonObject) ack = NULL;
	g_autofree char *key_path = g_build_filename(f->dir, "office", "admin.key", NULL);
	g_autofree char *server_path = g_build_filename(f->dir, "office", "server.key", NULL);
	g_autofree char *body = NULL;
	char pub[41], sec[41], spub[41], ssec[41];
	CsTasks *tasks;
	void *ctx, *sock;
	int zero = 0;

	f->config->office_endpoint = g_strdup_printf("ipc://@certseal-test-office-%d", getpid());
	/* A gateway worker on the allow-list: only a gateway serves sms (staff, the admin
	 * included, never see what its tasks carry). */
	g_free(f->config->office_dir);
	f->config->office_dir = g_build_filename(f->dir, "office.d", NULL);
	g_assert_cmpint(g_mkdir_with_parents(f->config->office_dir, 0700), ==, 0);
	g_assert_true(cs_office_keys_generate(pub, sec, &error));
	{
		g_autofree char *conf =
		    g_strdup_printf("[worker]\nkey = %s\nuser = gw\nroles = gateway\n", pub);
		g_autofree char *conf_path =
		    g_build_filename(f->config->office_dir, "gw.conf", NULL);
		g_assert_true(g_file_set_contents(conf_path, conf, -1, &error));
	}
	office = cs_office_new(f->engine, f->tasks, f->vault, f->dir, &error);
	g_assert_no_error(error);
	tasks = cs_office_get_tasks(office);

	/* Nobody READY for sms: the built-in sandbox delivers to the outbox. */
	g_assert_true(cs_tasks_send_sms(tasks, NULL, "13800138000", "sms_code", NULL, "246810",
					NULL, &error));
	pump(100);
	outbox = cs_tasks_list_outbox(tasks, "sms", &error);
	g_assert_cmpuint(json_array_get_length(outbox), ==, 1);

	/* A READY external worker takes precedence. */
	g_assert_true(cs_office_key_file_read(server_path, spub, ssec, &error));
	ctx = zmq_ctx_new();
	sock = zmq_socket(ctx, ZMQ_DEALER);
	zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, spub, 40);
	zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pub, 40);
	zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, sec, 40);
	g_assert_cmpint(zmq_connect(sock, cs_office_get_endpoint(office)), ==, 0);
	send3(sock, "READY", "{\"service\":\"sms\"}");
	pump(200);
	g_assert_true(cs_tasks_send_sms(tasks, NULL, "13900139000", "sms_code", NULL, "135790",
					NULL, &error));
	task = recv_verb(sock, "TASK", 3000);
	g_assert_nonnull(task);
	g_assert_cmpstr(json_object_get_string_member(task, "service"), ==, "sms");
	body = cs_office_body_to_string(task);
	g_assert_null(strstr(body, "135790")); /* the code travels only on request */
	g_free(body);
	body =
	    g_strdup_printf("{\"id\":1,\"method\":\"task.secret\",\"params\":{\"lease\":\"%s\"}}",
			    json_object_get_string_member(task, "lease"));
	send3(sock, "CALL", body);
	secret = recv_verb(sock, "RESULT", 3000);
	g_assert_nonnull(secret);
	g_assert_cmpstr(json_object_get_string_member(
			    json_object_get_object_member(secret, "result"), "secret"),
			==, "135790");
	g_free(body);
	body = g_strdup_printf("{\"lease\":\"%s\",\"result\":{}}",
			       json_object_get_string_member(task, "lease"));
	send3(sock, "DONE", body);
	ack = recv_verb(sock, "RESULT", 3000);
	g_assert_nonnull(ack);
	g_clear_pointer(&outbox, json_array_unref);
	outbox = cs_tasks_list_outbox(tasks, "sms", &error);
	g_assert_cmpuint(json_array_get_length(outbox), ==, 1);
	g_assert_cmpint(
	    count(f, "SELECT count(*) FROM tasks WHERE service = 'sms' AND state = 'done'"), ==, 2);
	memset(sec, 0, sizeof(sec));
	memset(ssec, 0, sizeof(ssec));
	zmq_close(sock);
	zmq_ctx_term(ctx);
}

static void *
connect_admin(Fixture *f, CsOffice *office, void **ctx_out)
{
	g_autofree char *key_path = g_build_filename(f->dir, "office", "admin.key", NULL);
	g_autofree char *server_path = g_build_filename(f->dir, "office", "server.key", NULL);
	char pub[41], sec[41], spub[41], ssec[41];
	void *ctx = zmq_ctx_new();
	void *sock = zmq_socket(ctx, ZMQ_DEALER);
	int zero = 0;

	g_assert_true(cs_office_key_file_read(key_path, pub, sec, NULL));
	g_assert_true(cs_office_key_file_read(server_path, spub, ssec, NULL));
	zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, spub, 40);
	zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pub, 40);
	zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, sec, 40);
	memset(sec, 0, sizeof(sec));
	memset(ssec, 0, sizeof(ssec));
	g_assert_cmpint(zmq_connect(sock, cs_office_get_endpoint(office)), ==, 0);
	*ctx_out = ctx;
	return sock;
}

/* A person's claim runs out after claim_ms unless that person's heartbeats renew it. */
static void
test_claim_expires_unless_renewed(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CsOffice) office = NULL;
	g_autoptr(JsonObject) claim = NULL;
	g_autoptr(JsonObject) again = NULL;
	g_autofree char *body = NULL;
	CsOrder *order;
	void *ctx, *sock;
	const char *lease;

	f->config->office_endpoint = g_strdup_printf("ipc://@certseal-test-claim-%d", getpid());
	f->config->office_heartbeat_ms = 50;
	f->config->office_claim_ms = 400;
	office = cs_office_new(f->engine, f->tasks, f->vault, f->dir, &error);
	g_assert_no_error(error);
	order = order_in(f, "in_review");
	sock = connect_admin(f, office, &ctx);
	body = g_strdup_printf("{\"id\":1,\"method\":\"task.claim\",\"params\":"
			       "{\"order_id\":\"%s\",\"service\":\"review\"}}",
			       cs_order_get_id(order));
	send3(sock, "CALL", body);
	claim = recv_verb(sock, "RESULT", 3000);
	g_assert_nonnull(claim);
	lease =
	    json_object_get_string_member(json_object_get_object_member(claim, "result"), "lease");
	/* Heartbeating for longer than claim_ms keeps it. */
	for (int i = 0; i < 12; i++) {
		zmq_send(sock, "CSO1", 4, ZMQ_SNDMORE);
		zmq_send(sock, "HEARTBEAT", 9, 0);
		pump(50);
	}
	g_assert_cmpint(count(f, "SELECT count(*) FROM tasks WHERE state = 'leased'"), ==, 1);
	/* Silence: the claim runs out and the task is queued again; the lease is stale. */
	pump(700);
	g_assert_cmpint(
	    count(f, "SELECT count(*) FROM tasks WHERE state = 'queued' AND service = 'review'"),
	    ==, 1);
	g_free(body);
	body = g_strdup_printf("{\"id\":2,\"method\":\"task.done\",\"params\":{\"lease\":\"%s\","
			       "\"result\":{\"decision\":\"approve\"}}}",
			       lease);
	send3(sock, "CALL", body);
	again = recv_verb(sock, "ERROR", 3000);
	g_assert_nonnull(again);
	g_assert_cmpstr(json_object_get_string_member(again, "code"), ==, "WrongState");
	g_assert_cmpstr(cs_order_get_state(order), ==, "in_review");
	zmq_close(sock);
	zmq_ctx_term(ctx);
}

/* ---- the audit of calls ---------------------------------------------------------------- */

static guint
call_events(Fixture *f, CsOrder *order, GPtrArray *data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) events =
	    cs_ledger_order_events(f->ledger, cs_order_get_id(order), &error);
	guint n = 0;

	g_assert_no_error(error);
	for (guint i = 0; i < events->len; i++) {
		CsEventRow *e = g_ptr_array_index(events, i);
		if (g_strcmp0(e->kind, "office.call") != 0)
			continue;
		n++;
		if (data != NULL)
			g_ptr_array_add(data, g_strdup(e->data));
	}
	return n;
}

static void
test_repeat_reads_folded(Fixture *f, gconstpointer unused)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) data = g_ptr_array_new_with_free_func(g_free);
	CsOrder *order = order_in(f, "unpaid");
	CsRequest rob = {.actor = CS_ACTOR_ADMIN, .user_id = "rob", .roles = CS_ACTOR_REVIEWER};
	const char *id = cs_order_get_id(order);

	for (guint i = 0; i < 20; i++)
		g_assert_true(
		    cs_tasks_record_call(f->tasks, &rita, "orders.get", id, TRUE, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(call_events(f, order, NULL), ==, 1);
	/* Another worker's read, and an action, are recorded on their own. */
	g_assert_true(cs_tasks_record_call(f->tasks, &rob, "orders.get", id, TRUE, &error));
	g_assert_true(cs_tasks_record_call(f->tasks, &rita, "task.done", id, FALSE, &error));
	g_assert_true(cs_tasks_record_call(f->tasks, &rita, "task.done", id, FALSE, &error));
	g_assert_cmpuint(call_events(f, order, NULL), ==, 4);
	/* The minute is not over: nothing more; at the end, the count is written. */
	cs_tasks_flush_calls(f->tasks, FALSE);
	g_assert_cmpuint(call_events(f, order, NULL), ==, 4);
	cs_tasks_flush_calls(f->tasks, TRUE);
	g_assert_cmpuint(call_events(f, order, data), ==, 5);
	g_assert_cmpstr(g_ptr_array_index(data, 4), ==,
			"{\"method\":\"orders.get\",\"repeats\":19}");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
	ADD("/office/audit/repeat-reads-folded", test_repeat_reads_folded);
	ADD("/office/cso1/frames-parsed-or-refused", test_msg_parse);
	ADD("/office/tasks/review-done-once-stale-lease-refused", test_review_task_done_once);
	ADD("/office/tasks/done-refused-when-order-moved-on",
	    test_done_refused_when_order_moved_on);
	ADD("/office/tasks/survive-reopen-leases-revoked", test_tasks_survive_reopen);
	ADD("/office/sms/rate-limits-and-sandbox-outbox", test_sms_limits_and_sandbox_outbox);
	ADD("/office/payment/alipay-rsa2", test_alipay);
	ADD("/office/payment/alipay-sdk-vectors", test_alipay_sdk_vectors);
	ADD("/office/payment/wechat-v3", test_wechat);
	ADD("/office/zmq-source/drains-behind-one-edge", test_zmq_source_drains);
	ADD("/office/gateways/ready-worker-before-sandbox", test_ready_worker_before_sandbox);
	ADD("/office/leases/claim-expires-unless-renewed", test_claim_expires_unless_renewed);
	return g_test_run();
}

/*
 * cs-pinreset.c — a key across orders and its user PIN reset with the SO PIN (docs/architecture.md
 * §1.3): the step services cs_step_check_key_made_here, cs_step_record_key,
 * cs_step_find_record, cs_step_count_steps, cs_step_check_new_pin and
 * cs_step_start_pin_reset of certseal/plugin.h.
 *
 * Invariants:
 * - A key "made here" is one whose SO PIN the making sealed in the vault (the making
 *   order's attribute so_pin_ref.<serial>, cs-keywork.c); only such a key can be unlocked,
 *   and its SO PIN is opened only on the way to the driver, then wiped.
 * - The new PIN comes with the step as a secret (cs_engine_act_with_secrets): it is never
 *   recorded, logged or put in a task; it lives in memory until the driver call and is
 *   wiped after it (cs-keys.c).
 * - A reset that fails (the key pulled, the driver failed) takes the flow's failed step
 *   and leaves everything else as it was; the D-Bus call that asked is answered with the
 *   reason.
 */
#define G_LOG_DOMAIN "certseald"

#include <openssl/crypto.h>
#include <string.h>

#include "cs-crypto.h"
#include "cs-engine.h"
#include "cs-keys.h"
#include "cs-pin-policy.h"

/* The order attribute of the making order holding the sealed SO PIN of key @serial. */
static char *
so_pin_attr(const char *serial)
{
	return g_strdup_printf("so_pin_ref.%s", serial);
}

/* The one key inserted, which the order's `key` field (when set) must name; NULL with the
 * error that says why (NoKey, MultipleKeys: the manual's "只插一枚 UK"). */
static CsKey *
order_key(CsEngine *engine, CsOrder *order, GError **error)
{
	const char *path = cs_order_get_field(order, "key");
	/* The Key's object path; or its id, when the path came typed as one (the D-Bus front
	 * turns an object path under keys/ into the id). */
	g_autofree char *id =
	    path != NULL && *path != '/' ? g_strdup(path) : cs_keys_id_from_path(path);
	CsKeys *keys = cs_engine_get_keys(engine);
	CsKey *key;

	if (!cs_engine_require(keys, "the key manager", error))
		return NULL;
	key = cs_keys_get_single(keys, error);
	if (key == NULL || path == NULL)
		return key;
	if (id == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "key: not the object path of a key");
		return NULL;
	}
	if (g_strcmp0(key->id, id) != 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "key: %s is not inserted (the key inserted is %s)", id, key->id);
		return NULL;
	}
	return key;
}

/* A key logged in by one uid serves no other desktop caller (cs_keys_check_user); the
 * daemon's own work (recovery, timeouts) acts for whoever started it. */
static gboolean
check_key_user(CsStep *step, CsKeys *keys, const CsKey *key, GError **error)
{
	const CsRequest *request = cs_step_get_request(step);

	if (request == NULL || request->actor != CS_ACTOR_DESKTOP)
		return TRUE;
	return cs_keys_check_user(keys, key->id, request->uid, error);
}

/* The sealed SO PIN's secret id of @key, or 0 when this platform did not make it. */
static gint64
so_pin_ref(CsEngine *engine, const CsKey *key, GError **error)
{
	g_autofree char *attr = so_pin_attr(key->serial);
	g_autofree char *value = NULL;
	g_autoptr(GError) local = NULL;

	if (!cs_ledger_find_attr(cs_engine_get_ledger(engine), attr, NULL, &value, &local)) {
		if (g_error_matches(local, CS_ERROR, CS_ERROR_NOT_FOUND))
			return 0;
		g_propagate_error(error, g_steal_pointer(&local));
		return -1;
	}
	return g_ascii_strtoll(value, NULL, 10);
}

gboolean
cs_step_check_key_made_here(CsStep *step, GError **error)
{
	CsEngine *engine = cs_step_get_engine(step);
	CsOrder *order = cs_step_get_order(step);
	const char *number = cs_order_get_subject_number(order);
	const char *type = cs_subject_type_to_string(cs_order_get_subject_type(order));
	g_autoptr(CsCertRow) cert = NULL;
	CsKey *key = order_key(engine, order, error);
	gint64 ref;

	if (key == NULL || !check_key_user(step, cs_engine_get_keys(engine), key, error))
		return FALSE;
	if (g_strcmp0(key->vendor, cs_order_get_vendor(order)) != 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "key: %s is a key of vendor %s, not of %s", key->serial, key->vendor,
			    cs_order_get_vendor(order));
		return FALSE;
	}
	ref = so_pin_ref(engine, key, error);
	if (ref < 0)
		return FALSE;
	if (ref == 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_ELIGIBLE,
			    "key: %s was not made by this platform (its SO PIN is not in the "
			    "vault), so it cannot be unlocked here; replace it (补办)",
			    key->serial);
		return FALSE;
	}
	if (key->certificate_serial == NULL || *key->certificate_serial == '\0') {
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_ELIGIBLE,
			    "key: %s holds no certificate; replace it (补办)", key->serial);
		return FALSE;
	}
	cert =
	    cs_ledger_load_certificate(cs_engine_get_ledger(engine), key->certificate_serial, NULL);
	if (cert == NULL || g_strcmp0(cert->subject_type, type) != 0 ||
	    (number != NULL && g_strcmp0(cert->id_number, number) != 0)) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "key: the certificate on %s names another subject than this order's",
			    key->serial);
		return FALSE;
	}
	return TRUE;
}

gboolean
cs_step_record_key(CsStep *step, const char *attr, GError **error)
{
	CsKey *key = order_key(cs_step_get_engine(step), cs_step_get_order(step), error);

	return key != NULL &&
	       check_key_user(step, cs_engine_get_keys(cs_step_get_engine(step)), key, error) &&
	       cs_step_set_attr(step, attr, key->id, error);
}

char *
cs_step_find_record(CsStep *step, const char *name, GError **error)
{
	g_autoptr(GError) local = NULL;
	char *value = NULL;

	if (cs_ledger_find_attr(cs_engine_get_ledger(cs_step_get_engine(step)), name, NULL, &value,
				&local))
		return value;
	if (!g_error_matches(local, CS_ERROR, CS_ERROR_NOT_FOUND))
		g_propagate_error(error, g_steal_pointer(&local));
	return NULL;
}

gboolean
cs_step_count_steps(CsStep *step,
		    const char *action,
		    const char *attr,
		    const char *value,
		    gint64 since_us,
		    guint *count,
		    GError **error)
{
	return cs_ledger_count_events_with_attr(cs_engine_get_ledger(cs_step_get_engine(step)),
						action, attr, value, since_us, count, error);
}

gboolean
cs_step_check_new_pin(CsStep *step, GError **error)
{
	CsEngine *engine = cs_step_get_engine(step);
	CsOrder *order = cs_step_get_order(step);
	const CsVendor *vendor =
	    cs_config_find_vendor(cs_engine_get_config(engine), cs_order_get_vendor(order));
	CsPinPolicy policy;

	if (vendor == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "vendor: unknown '%s'",
			    cs_order_get_vendor(order));
		return FALSE;
	}
	policy = cs_pin_policy_for_vendor(vendor);
	return cs_pin_policy_check(&policy, "new_pin", cs_step_get_secret(step, "new_pin"), error);
}

/* --- the reset on driver threads ------------------------------------------------------ */

typedef struct {
	CsEngine *engine;
	gint *stopping; /* the engine's flag: once set, the engine may be gone */
	const CsPinReset *reset;
	char *state; /* the order's state while the reset runs */
	char *order_id;
	char *key_id;
	CsEngineReplyFunc reply;
	gpointer reply_data;
} Job;

static const CsRequest system_request = {.actor = CS_ACTOR_SYSTEM, .user_id = "pin reset"};

static void
job_free(Job *job)
{
	g_atomic_rc_box_release(job->stopping);
	g_free(job->state);
	g_free(job->order_id);
	g_free(job->key_id);
	g_free(job);
}

static void
job_reply(Job *job, const GError *error)
{
	if (job->reply != NULL)
		job->reply(error, job->reply_data);
	job->reply = NULL;
}

static gboolean
record_failure(CsEngine *engine, CsOrder *order, gpointer user_data, GError **error)
{
	return cs_engine_set_attr(engine, order, "key_work_error", user_data, error);
}

static gboolean
record_done(CsEngine *engine, CsOrder *order, gpointer user_data, GError **error)
{
	return cs_engine_set_attr(engine, order, "key_work_error", NULL, error);
}

static GVariant *
one_param(const char *name, const char *value)
{
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&b, "{sv}", name, g_variant_new_string(value));
	return g_variant_builder_end(&b);
}

/* The order, still in the reset's state, or NULL (the reset's result is then dropped). */
static CsOrder *
job_order(Job *job)
{
	g_autoptr(GError) error = NULL;
	CsOrder *order = cs_engine_get_order(job->engine, job->order_id, &error);

	if (order == NULL) {
		g_warning("PIN reset %s: %s", job->order_id, error->message);
		return NULL;
	}
	if (g_strcmp0(cs_order_get_state(order), job->state) != 0) {
		g_warning("PIN reset %s: the order is %s now; the result is dropped", job->order_id,
			  cs_order_get_state(order));
		return NULL;
	}
	return order;
}

static void
job_fail(Job *job, CsOrder *order, const GError *why)
{
	g_autoptr(GError) reply = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *text = NULL;

	/* The SO PIN refused (locked, or no longer the one in the vault): nothing can reset
	 * the user PIN of this key any more. */
	if (g_error_matches(why, CS_ERROR, CS_ERROR_PIN_LOCKED) ||
	    g_error_matches(why, CS_ERROR, CS_ERROR_PIN_INCORRECT))
		reply = g_error_new(CS_ERROR, CS_ERROR_NOT_ELIGIBLE,
				    "key: the SO PIN of %s is locked, so its PIN cannot be reset; "
				    "replace the key (补办)",
				    job->key_id);
	else
		reply = g_error_copy(why);
	text =
	    g_strdup_printf("resetting the PIN of key %s failed: %s", job->key_id, reply->message);
	g_message("order %s: %s", job->order_id, text);
	if (order != NULL &&
	    !cs_engine_act_with(job->engine, &system_request, order, job->reset->failed_action,
				one_param("reason", text), NULL, record_failure, text, &error)) {
		g_warning("order %s: %s", job->order_id, error->message);
		g_clear_error(&error);
		if (!cs_engine_act_with(job->engine, &system_request, order,
					job->reset->failed_action, NULL, NULL, NULL, NULL, &error))
			g_warning("order %s: %s", job->order_id, error->message);
	}
	job_reply(job, reply);
}

static void
on_reset(GBytes *result, const GError *error, gpointer user_data)
{
	Job *job = user_data;
	g_autoptr(GError) local = NULL;
	CsOrder *order;

	/* The daemon stops: the order is still in the reset's state in the ledger, and the
	 * next start's recovery takes it back; the caller's connection is going too. */
	if (g_atomic_int_get(job->stopping)) {
		job_free(job);
		return;
	}
	order = job_order(job);
	if (error != NULL) {
		job_fail(job, order, error);
	} else if (order == NULL) {
		local =
		    g_error_new(CS_ERROR, CS_ERROR_WRONG_STATE,
				"order %s moved on while its key's PIN was reset", job->order_id);
		job_reply(job, local);
	} else if (!cs_engine_act_with(job->engine, &system_request, order, job->reset->done_action,
				       one_param("key", job->key_id), NULL, record_done, NULL,
				       &local)) {
		job_fail(job, order, local);
	} else {
		job_reply(job, NULL);
	}
	job_free(job);
}

void
cs_step_start_pin_reset(CsStep *step, const char *key_attr, const CsPinReset *reset)
{
	CsEngine *engine = cs_step_get_engine(step);
	CsOrder *order = cs_step_get_order(step);
	CsKeys *keys = cs_engine_get_keys(engine);
	const char *new_pin = cs_step_get_secret(step, "new_pin");
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) sealed = NULL;
	char *so_pin = NULL;
	CsKey *key;
	gint64 ref = 0;
	Job *job = g_new0(Job, 1);

	job->engine = engine;
	job->stopping = cs_engine_ref_stopping(engine);
	job->reset = reset;
	job->state = g_strdup(cs_order_get_state(order));
	job->order_id = g_strdup(cs_order_get_id(order));
	job->key_id = g_strdup(cs_order_get_attr(order, key_attr));
	job->reply = cs_step_steal_reply(step, &job->reply_data);
	key = job->key_id != NULL && keys != NULL ? cs_keys_lookup(keys, job->key_id) : NULL;
	if (key == NULL) {
		error = g_error_new(CS_ERROR, CS_ERROR_KEY_REMOVED, "key: %s is not inserted",
				    job->key_id != NULL ? job->key_id : "?");
	} else if ((ref = so_pin_ref(engine, key, &error)) > 0) {
		sealed = cs_ledger_open_secret(cs_engine_get_ledger(engine), ref, &error);
	} else if (ref == 0) {
		error = g_error_new(CS_ERROR, CS_ERROR_NOT_ELIGIBLE,
				    "key: %s was not made by this platform", key->serial);
	}
	if (sealed != NULL) {
		gsize len = 0;
		guint8 *raw = g_bytes_unref_to_data(g_steal_pointer(&sealed), &len);
		so_pin = g_strndup((const char *)raw, len);
		OPENSSL_cleanse(raw, len);
		g_free(raw);
	}
	if (so_pin == NULL || new_pin == NULL) {
		if (error == NULL)
			error = g_error_new_literal(CS_ERROR, CS_ERROR_INVALID_INPUT,
						    "new_pin: required");
		job_fail(job, order, error);
		job_free(job);
		return;
	}
	g_info("order %s: resetting the PIN of key %s", job->order_id, job->key_id);
	cs_keys_unblock(keys, job->key_id, so_pin, new_pin, on_reset, job);
	cs_secret_free(so_pin);
}

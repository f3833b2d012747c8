/*
 * cs-query.c — order query: codes for a subject, and the grants they open.
 *
 * A query code is 6 random digits, like an order's SMS code, but for a subject: it goes to
 * the phone on file (never to a number the caller names) and only its keyed hash is kept,
 * with its lifetime and tries ([sms] code_lifetime_s, code_max_tries). Against enumeration
 * of ID numbers, a uid gets at most query_codes_per_uid_hour codes and a subject at most
 * query_codes_per_subject_day; an unknown subject says so (NotFound) without sending
 * anything. A verified code is used up and opens a grant (cs-grants.h) for the caller's
 * connection: for a registered subject every order of it, otherwise only the orders whose
 * contact phone received the code — whoever once applied with their own phone must not read
 * someone else's orders.
 */
#define G_LOG_DOMAIN "certseald"

#include <string.h>

#include <json-glib/json-glib.h>
#include <openssl/crypto.h>

#include "cs-clock.h"
#include "cs-crypto.h"
#include "cs-grants.h"
#include "cs-order-private.h"
#include "cs-query.h"
#include "cs-tasks.h"
#include "cs-validate.h"
#include "cs-vault.h"

#define HOUR_US (G_GINT64_CONSTANT(3600) * G_USEC_PER_SEC)
#define DAY_US (24 * HOUR_US)

typedef struct {
	CsSubjectType type;
	char *type_name; /* "org" | "person" */
	char *id_number; /* upper-cased, validated */
	const char *vendor;
} Subject;

static void
subject_clear(Subject *s)
{
	g_free(s->type_name);
	g_free(s->id_number);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Subject, subject_clear)

/* The subject named by the arguments, each validated as at CreateOrder. */
static gboolean
read_subject(CsEngine *engine,
	     const char *vendor,
	     const char *subject_type,
	     const char *id_number,
	     Subject *out,
	     GError **error)
{
	CsConfig *config = cs_engine_get_config(engine);
	g_autofree char *up = NULL;
	const char *field;

	if (vendor == NULL || (*vendor != '\0' && cs_config_find_vendor(config, vendor) == NULL)) {
		g_autofree char *quoted = cs_quote_value(vendor != NULL ? vendor : "");
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "vendor: no vendor profile named '%s' (\"\" for every vendor)", quoted);
		return FALSE;
	}
	out->type = cs_subject_type_from_string(subject_type);
	if (out->type == 0) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "subject_type: must be 'org' or 'person'");
		return FALSE;
	}
	field = cs_subject_number_field(out->type);
	up = g_ascii_strup(id_number != NULL ? id_number : "", -1);
	if (!(out->type == CS_SUBJECT_ORG
		  ? cs_validate_uscc(up, (const char *const *)config->legacy_uscc, error)
		  : cs_validate_resident_id(up, NULL, error))) {
		if (g_strcmp0(field, "id_number") == 0)
			g_prefix_error(error, "id_number: ");
		else
			g_prefix_error(error, "id_number (the %s): ", field);
		return FALSE;
	}
	out->type_name = g_strdup(subject_type);
	out->id_number = g_steal_pointer(&up);
	out->vendor = vendor;
	return TRUE;
}

static const char *
contact_phone(CsOrder *order)
{
	return order->plugin->contact_phone != NULL ? order->plugin->contact_phone(order) : NULL;
}

/* The subject's orders, newest first (borrowed from the engine's cache). */
static GPtrArray *
subject_orders(CsEngine *engine, const Subject *s, GError **error)
{
	g_autoptr(GPtrArray) ids = cs_ledger_list_orders(cs_engine_get_ledger(engine), NULL, error);
	GPtrArray *orders;

	if (ids == NULL)
		return NULL;
	orders = g_ptr_array_new();
	for (guint i = ids->len; i > 0; i--) {
		CsOrder *o = cs_engine_get_order(engine, g_ptr_array_index(ids, i - 1), error);
		if (o == NULL) {
			g_ptr_array_unref(orders);
			return NULL;
		}
		if (o->subject_type == s->type &&
		    g_strcmp0(cs_order_get_subject_number(o), s->id_number) == 0)
			g_ptr_array_add(orders, o);
	}
	return orders;
}

/* Has @order been submitted with a verified SMS code (its phone proven)? */
static gboolean
phone_verified(CsEngine *engine, CsOrder *order)
{
	g_autoptr(CsCodeRow) row =
	    cs_ledger_latest_code(cs_engine_get_ledger(engine), order->id, "sms", NULL);
	return row != NULL && g_strcmp0(row->state, "used") == 0;
}

/*
 * Where the subject's codes go: the registry's handler phone (*registered TRUE), or the
 * phone the latest submitted order verified. NotFound when the platform has no business
 * for the number.
 */
static char *
phone_on_file(CsEngine *engine, const Subject *s, gboolean *registered, GError **error)
{
	g_autoptr(GVariant) known = NULL;
	g_autoptr(GPtrArray) orders = NULL;
	g_autoptr(GError) local = NULL;
	const char *phone = NULL;

	known = cs_ledger_lookup_subject(cs_engine_get_ledger(engine), s->type_name, s->id_number,
					 &local);
	if (local != NULL) {
		g_propagate_error(error, g_steal_pointer(&local));
		return NULL;
	}
	*registered = known != NULL;
	if (known != NULL && g_variant_lookup(known, "handler_phone", "&s", &phone))
		return g_strdup(phone);
	orders = subject_orders(engine, s, error);
	if (orders == NULL)
		return NULL;
	for (guint i = 0; i < orders->len; i++) {
		CsOrder *o = g_ptr_array_index(orders, i);
		if (contact_phone(o) != NULL && phone_verified(engine, o))
			return g_strdup(contact_phone(o));
	}
	g_set_error_literal(error, CS_ERROR, CS_ERROR_NOT_FOUND,
			    "id_number: no certificate business for this number");
	return NULL;
}

static char *
code_hash(CsEngine *engine, const Subject *s, const char *code)
{
	g_autofree char *data = g_strdup_printf("%s:%s:%s", s->type_name, s->id_number, code);
	return cs_vault_keyed_hash(cs_engine_get_vault(engine), "query-code", data);
}

static gboolean
require_services(CsEngine *engine, GError **error)
{
	if (cs_engine_get_vault(engine) != NULL && cs_engine_get_tasks(engine) != NULL)
		return TRUE;
	g_set_error_literal(error, CS_ERROR, CS_ERROR_UNAVAILABLE,
			    "the office services are not running");
	return FALSE;
}

/* The rate limits: per caller uid per hour, per subject per day, the resend cooldown. */
static gboolean
check_limits(CsEngine *engine, const CsRequest *request, const Subject *s, GError **error)
{
	CsConfig *config = cs_engine_get_config(engine);
	CsLedger *ledger = cs_engine_get_ledger(engine);
	gint64 now = g_get_real_time();
	gint64 count = 0, latest = 0;

	if (!cs_ledger_count_query_codes(ledger, request->uid, NULL, NULL, now - HOUR_US, &count,
					 NULL, error))
		return FALSE;
	if (count >= config->query_codes_per_uid_hour) {
		g_set_error(error, CS_ERROR, CS_ERROR_RATE_LIMITED,
			    "at most %u query codes an hour; try again later",
			    config->query_codes_per_uid_hour);
		return FALSE;
	}
	if (!cs_ledger_count_query_codes(ledger, -1, s->type_name, s->id_number, now - DAY_US,
					 &count, &latest, error))
		return FALSE;
	if (count >= config->query_codes_per_subject_day) {
		g_set_error(error, CS_ERROR, CS_ERROR_RATE_LIMITED,
			    "at most %u query codes a day for one subject; try again tomorrow",
			    config->query_codes_per_subject_day);
		return FALSE;
	}
	if (latest != 0 && now - latest < (gint64)config->sms_resend_cooldown_s * G_USEC_PER_SEC) {
		g_set_error(error, CS_ERROR, CS_ERROR_RATE_LIMITED,
			    "a code was sent %" G_GINT64_FORMAT " s ago; wait %u s between codes",
			    (now - latest) / G_USEC_PER_SEC, config->sms_resend_cooldown_s);
		return FALSE;
	}
	return TRUE;
}

char *
cs_query_send_code(CsEngine *engine,
		   const CsRequest *request,
		   const char *vendor,
		   const char *subject_type,
		   const char *id_number,
		   GError **error)
{
	CsConfig *config = cs_engine_get_config(engine);
	CsLedger *ledger = cs_engine_get_ledger(engine);
	g_auto(Subject) s = {0};
	g_autofree char *phone = NULL;
	g_autofree char *hash = NULL;
	g_autofree char *code = NULL;
	g_autoptr(JsonObject) params = json_object_new();
	gint64 now = g_get_real_time();
	gboolean registered = FALSE;
	gboolean ok;

	if (!read_subject(engine, vendor, subject_type, id_number, &s, error) ||
	    !require_services(engine, error))
		return NULL;
	phone = phone_on_file(engine, &s, &registered, error);
	if (phone == NULL || !check_limits(engine, request, &s, error))
		return NULL;
	code = cs_random_digits(6, error);
	if (code == NULL)
		return NULL;
	hash = code_hash(engine, &s, code);
	json_object_set_string_member(params, "purpose", "order_query");
	if (!cs_ledger_begin(ledger, error)) {
		cs_secret_free(g_steal_pointer(&code));
		return NULL;
	}
	ok = cs_ledger_insert_query_code(
		 ledger, s.type_name, s.id_number, phone, request->uid, hash, now,
		 now + (gint64)config->sms_code_lifetime_s * G_USEC_PER_SEC, error) &&
	     cs_tasks_send_sms_in_txn(cs_engine_get_tasks(engine), NULL, phone, "query_code",
				      params, code, TRUE, error) &&
	     cs_ledger_commit(ledger, error);
	cs_secret_free(g_steal_pointer(&code));
	if (!ok) {
		cs_ledger_rollback(ledger);
		return NULL;
	}
	g_info("query code for a %s subject sent by uid %u", s.type_name, request->uid);
	return cs_mask_phone(phone);
}

/* Count a wrong or late try in its own transaction, and say why the code did not work. */
static gboolean
refuse_code(CsEngine *engine, const CsCodeRow *row, gboolean expired, GError **error)
{
	CsLedger *ledger = cs_engine_get_ledger(engine);
	guint max_tries = cs_engine_get_config(engine)->sms_code_max_tries;
	gint64 tries = expired ? row->tries : row->tries + 1;
	const char *state = expired || tries >= max_tries ? "dead" : "open";

	if (!cs_ledger_begin(ledger, error))
		return FALSE;
	if (!cs_ledger_update_query_code(ledger, row->id, tries, state, error) ||
	    !cs_ledger_commit(ledger, error)) {
		cs_ledger_rollback(ledger);
		return FALSE;
	}
	if (expired)
		g_set_error_literal(error, CS_ERROR, CS_ERROR_CODE_EXPIRED,
				    "code: expired; ask for a new one with SendQueryCode");
	else if (tries >= max_tries)
		g_set_error_literal(
		    error, CS_ERROR, CS_ERROR_TOO_MANY_ATTEMPTS,
		    "code: too many wrong tries; ask for a new one with SendQueryCode");
	else
		g_set_error(error, CS_ERROR, CS_ERROR_CODE_INVALID,
			    "code: wrong, %" G_GINT64_FORMAT " tries left", max_tries - tries);
	return FALSE;
}

/* The caller's connection may read the subject's orders: it holds a grant, or @code is the
 * subject's open code (used up now, opening a grant). */
static gboolean
open_grant(
    CsEngine *engine, const CsRequest *request, const Subject *s, const char *code, GError **error)
{
	CsConfig *config = cs_engine_get_config(engine);
	CsLedger *ledger = cs_engine_get_ledger(engine);
	CsGrants *grants = cs_engine_get_grants(engine);
	g_autoptr(CsCodeRow) row = NULL;
	g_autoptr(GVariant) known = NULL;
	g_autoptr(GError) local = NULL;
	g_autofree char *hash = NULL;

	if (request->sender == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_ACCESS_DENIED,
				    "a query is answered to a D-Bus connection only");
		return FALSE;
	}
	if ((code == NULL || *code == '\0') &&
	    cs_grants_holds(grants, request->sender, s->type, s->id_number))
		return TRUE;
	if (!require_services(engine, error))
		return FALSE;
	if (code == NULL || *code == '\0') {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "code: required (the code SendQueryCode sent)");
		return FALSE;
	}
	row = cs_ledger_latest_query_code(ledger, s->type_name, s->id_number, &local);
	if (row == NULL) {
		if (!g_error_matches(local, CS_ERROR, CS_ERROR_NOT_FOUND)) {
			g_propagate_error(error, g_steal_pointer(&local));
			return FALSE;
		}
		g_set_error_literal(error, CS_ERROR, CS_ERROR_CODE_INVALID,
				    "code: none was sent; ask for one with SendQueryCode");
		return FALSE;
	}
	if (g_strcmp0(row->state, "dead") == 0 || row->tries >= config->sms_code_max_tries) {
		g_set_error_literal(
		    error, CS_ERROR, CS_ERROR_TOO_MANY_ATTEMPTS,
		    "code: too many wrong tries; ask for a new one with SendQueryCode");
		return FALSE;
	}
	if (g_strcmp0(row->state, "open") != 0) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_CODE_INVALID,
				    "code: already used; ask for a new one with SendQueryCode");
		return FALSE;
	}
	if (g_get_real_time() >= row->expires)
		return refuse_code(engine, row, TRUE, error);
	hash = code_hash(engine, s, code);
	if (strlen(hash) != strlen(row->code_hash) ||
	    CRYPTO_memcmp(hash, row->code_hash, strlen(hash)) != 0)
		return refuse_code(engine, row, FALSE, error);
	if (!cs_ledger_begin(ledger, error))
		return FALSE;
	if (!cs_ledger_update_query_code(ledger, row->id, row->tries, "used", error) ||
	    !cs_ledger_commit(ledger, error)) {
		cs_ledger_rollback(ledger);
		return FALSE;
	}
	known = cs_ledger_lookup_subject(ledger, s->type_name, s->id_number, NULL);
	cs_grants_add(grants, request->sender, s->type, s->id_number,
		      known != NULL ? NULL : row->phone,
		      g_get_monotonic_time() + (gint64)config->query_grant_s * G_USEC_PER_SEC);
	g_info("query code verified: uid %u may follow a %s subject's orders for %u s",
	       request->uid, s->type_name, config->query_grant_s);
	return TRUE;
}

GPtrArray *
cs_query_find_orders(CsEngine *engine,
		     const CsRequest *request,
		     const char *vendor,
		     const char *subject_type,
		     const char *id_number,
		     const char *code,
		     GError **error)
{
	g_auto(Subject) s = {0};
	g_autoptr(GPtrArray) orders = NULL;
	GPtrArray *ids;

	if (!read_subject(engine, vendor, subject_type, id_number, &s, error) ||
	    !open_grant(engine, request, &s, code, error))
		return NULL;
	orders = subject_orders(engine, &s, error);
	if (orders == NULL)
		return NULL;
	ids = g_ptr_array_new_with_free_func(g_free);
	for (guint i = 0; i < orders->len; i++) {
		CsOrder *o = g_ptr_array_index(orders, i);
		if ((*s.vendor == '\0' || g_strcmp0(o->vendor, s.vendor) == 0) &&
		    cs_engine_check_access(engine, request, o, NULL))
			g_ptr_array_add(ids, g_strdup(o->id));
	}
	return ids;
}

GPtrArray *
cs_query_find_certificates(CsEngine *engine,
			   const CsRequest *request,
			   const char *vendor,
			   const char *subject_type,
			   const char *id_number,
			   const char *code,
			   GError **error)
{
	g_auto(Subject) s = {0};
	g_autoptr(GPtrArray) certs = NULL;
	GPtrArray *visible;

	if (!read_subject(engine, vendor, subject_type, id_number, &s, error) ||
	    !open_grant(engine, request, &s, code, error))
		return NULL;
	certs = cs_ledger_find_certificates(cs_engine_get_ledger(engine), s.vendor, s.type_name,
					    s.id_number, error);
	if (certs == NULL)
		return NULL;
	/* Only the certificates of orders the grant covers. */
	visible = g_ptr_array_new_with_free_func((GDestroyNotify)cs_cert_row_free);
	for (guint i = 0; i < certs->len; i++) {
		CsCertRow *c = g_ptr_array_index(certs, i);
		CsOrder *o =
		    c->order_id != NULL ? cs_engine_get_order(engine, c->order_id, NULL) : NULL;
		if (o != NULL && cs_engine_check_access(engine, request, o, NULL)) {
			g_ptr_array_add(visible, c);
			certs->pdata[i] = NULL;
		}
	}
	return visible;
}

gboolean
cs_create_find_certificate(CsCreate *create,
			   const char *serial,
			   CsKeyCertificate *info,
			   GError **error)
{
	CsEngine *engine = cs_create_get_engine(create);
	const CsRequest *request = cs_create_get_request(create);
	CsSubjectType type = cs_create_get_subject_type(create);
	g_autoptr(CsCertRow) row = NULL;
	g_autoptr(GError) local = NULL;
	g_autofree char *up = NULL;
	CsOrder *order = NULL;

	if (serial == NULL || *serial == '\0') {
		g_set_error_literal(
		    error, CS_ERROR, CS_ERROR_INVALID_INPUT,
		    "certificate_serial: required (a serial FindCertificates listed)");
		return FALSE;
	}
	if (request->sender == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_ACCESS_DENIED,
				    "certificate_serial: a certificate is found by an order query "
				    "on a D-Bus connection only");
		return FALSE;
	}
	up = g_ascii_strup(serial, -1);
	row = cs_ledger_load_certificate(cs_engine_get_ledger(engine), up, &local);
	if (row == NULL && !g_error_matches(local, CS_ERROR, CS_ERROR_NOT_FOUND)) {
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	if (row != NULL && g_strcmp0(row->role, "subscriber") == 0 && row->order_id != NULL &&
	    g_strcmp0(row->subject_type, cs_subject_type_to_string(type)) == 0)
		order = cs_engine_get_order(engine, row->order_id, NULL);
	/* Whether the certificate exists is not told to a connection without the grant. */
	if (order == NULL || !cs_grants_allow(cs_engine_get_grants(engine), request->sender, type,
					      row->id_number, contact_phone(order))) {
		g_set_error(
		    error, CS_ERROR, CS_ERROR_NOT_FOUND,
		    "certificate_serial: %s is not among the %s certificates FindCertificates "
		    "found on this connection (query first, within the grant)",
		    up, cs_subject_type_to_string(type));
		return FALSE;
	}
	info->certificate_serial = g_strdup(row->serial);
	info->vendor = g_strdup(row->vendor);
	info->not_before = row->not_before;
	info->not_after = row->not_after;
	info->issued_here = TRUE;
	info->status = g_strdup(
	    g_strcmp0(row->status, "valid") == 0 && row->not_after <= cs_clock_now() ? "expired"
										     : row->status);
	info->revocation_reason = g_strdup(row->reason);
	info->subject_type = g_strdup(row->subject_type);
	info->id_number = g_strdup(row->id_number);
	info->subject_name = g_strdup(cs_order_get_subject_name(order));
	info->order_id = g_strdup(row->order_id);
	return TRUE;
}

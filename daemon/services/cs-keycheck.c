/*
 * cs-keycheck.c — what a flow working on the applicant's own key may know of it
 * (certseal/plugin.h, CsKeyCertificate): the single key inserted, whether its user logged
 * in, and the certificate it holds as this platform's ledger knows it. No flow words: the
 * flow decides what it needs of them.
 */
#define G_LOG_DOMAIN "certseald"

#include <string.h>

#include "cs-certs.h"
#include "cs-engine.h"
#include "cs-keys.h"

void
cs_key_certificate_clear(CsKeyCertificate *info)
{
	g_clear_pointer(&info->key, g_free);
	g_clear_pointer(&info->serial, g_free);
	g_clear_pointer(&info->vendor, g_free);
	g_clear_pointer(&info->certificate_serial, g_free);
	g_clear_pointer(&info->status, g_free);
	g_clear_pointer(&info->revocation_reason, g_free);
	g_clear_pointer(&info->subject_type, g_free);
	g_clear_pointer(&info->id_number, g_free);
	g_clear_pointer(&info->subject_name, g_free);
	g_clear_pointer(&info->order_id, g_free);
	memset(info, 0, sizeof(*info));
}

/* The ledger's row of @key's certificate, when this platform issued it for the key's
 * vendor (a certificate of another CA, or of another vendor's, is not ours). */
static CsCertRow *
issued_here(CsEngine *engine, CsKey *key, GError **error)
{
	g_autoptr(GError) local = NULL;
	g_autoptr(CsCertRow) row = NULL;

	row = cs_ledger_load_certificate(cs_engine_get_ledger(engine), key->certificate_serial,
					 &local);
	if (row == NULL) {
		if (g_error_matches(local, CS_ERROR, CS_ERROR_NOT_FOUND))
			return NULL;
		g_propagate_error(error, g_steal_pointer(&local));
		return NULL;
	}
	if (g_strcmp0(row->role, "subscriber") != 0 || g_strcmp0(row->vendor, key->vendor) != 0 ||
	    row->der == NULL || key->certificate == NULL ||
	    !g_bytes_equal(row->der, key->certificate))
		return NULL;
	return g_steal_pointer(&row);
}

static gboolean
inspect_key(CsEngine *engine, CsKeyCertificate *info, GError **error)
{
	CsKeys *keys = cs_engine_get_keys(engine);
	g_autoptr(GError) local = NULL;
	g_autoptr(CsCertRow) row = NULL;
	CsKey *key;

	memset(info, 0, sizeof(*info));
	if (keys == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_UNAVAILABLE,
				    "key: no key manager is running");
		return FALSE;
	}
	key = cs_keys_get_single(keys, error);
	if (key == NULL)
		return FALSE;
	info->key = g_strdup(key->id);
	info->serial = g_strdup(key->serial);
	info->vendor = g_strdup(key->vendor);
	info->logged_in = key->logged_in;
	if (key->certificate_serial == NULL)
		return TRUE;
	info->certificate_serial = g_strdup(key->certificate_serial);
	info->not_before = (gint64)key->not_before;
	info->not_after = (gint64)key->not_after;
	row = issued_here(engine, key, &local);
	if (local != NULL) {
		cs_key_certificate_clear(info);
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	if (row == NULL)
		return TRUE;
	info->issued_here = TRUE;
	info->status = g_strdup(row->status);
	info->revocation_reason = g_strdup(row->reason);
	info->subject_type = g_strdup(row->subject_type);
	info->id_number = g_strdup(row->id_number);
	info->order_id = g_strdup(row->order_id);
	info->subject_name = cs_certs_subject_name(row->der);
	return TRUE;
}

gboolean
cs_create_inspect_key(CsCreate *create, CsKeyCertificate *info, GError **error)
{
	return inspect_key(cs_create_get_engine(create), info, error);
}

gboolean
cs_step_inspect_key(CsStep *step, CsKeyCertificate *info, GError **error)
{
	return inspect_key(cs_step_get_engine(step), info, error);
}

gboolean
cs_key_certificate_check_login(const CsKeyCertificate *info, GError **error)
{
	if (info->logged_in)
		return TRUE;
	g_set_error(error, CS_ERROR, CS_ERROR_ACCESS_DENIED,
		    "key %s is not logged in: Login with the certificate password first",
		    info->serial);
	return FALSE;
}

gboolean
cs_key_certificate_check_ours(const CsKeyCertificate *info, const char *verb, GError **error)
{
	if (info->certificate_serial == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_ELIGIBLE,
			    "certificate: key %s holds no certificate: apply for a new one",
			    info->serial);
		return FALSE;
	}
	if (!info->issued_here) {
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_ELIGIBLE,
			    "certificate: %s on key %s was not issued by this platform; only "
			    "its own certificates are %s here",
			    info->certificate_serial, info->serial, verb);
		return FALSE;
	}
	if (g_strcmp0(info->status, "valid") != 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_NOT_ELIGIBLE,
			    "certificate: %s is revoked (%s): apply for a new certificate",
			    info->certificate_serial,
			    info->revocation_reason != NULL ? info->revocation_reason : "revoked");
		return FALSE;
	}
	return TRUE;
}

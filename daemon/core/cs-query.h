/*
 * cs-query.h — order query (订单查询, docs/architecture.md §1.6): a subject's orders and
 * certificates found with a one-time code sent to the phone on file. Manager methods, not a
 * flow: they read every flow's orders.
 */
#pragma once

#include <glib.h>

#include "cs-engine.h"

G_BEGIN_DECLS

/* Manager.SendQueryCode: a code to the phone on file for the subject — the registry's
 * handler phone, or for a subject no reviewer approved yet the phone its latest submitted
 * order verified. Returns that phone masked. NotFound for a subject with no business here;
 * RateLimited beyond the codes per uid per hour or per subject per day, or within the
 * resend cooldown. */
char *cs_query_send_code(CsEngine *engine,
			 const CsRequest *request,
			 const char *vendor,
			 const char *subject_type,
			 const char *id_number,
			 GError **error);

/* Manager.FindOrders: with the subject's latest code (single use; it opens a grant for the
 * caller's connection, query_grant_s long), or "" while the connection holds one, the ids
 * of the subject's orders the grant covers, newest first; @vendor "" = every vendor. */
GPtrArray *cs_query_find_orders(CsEngine *engine,
				const CsRequest *request,
				const char *vendor,
				const char *subject_type,
				const char *id_number,
				const char *code,
				GError **error);

/* Manager.FindCertificates: as FindOrders, the subscriber certificates (CsCertRow) this
 * platform issued for the subject, oldest first. */
GPtrArray *cs_query_find_certificates(CsEngine *engine,
				      const CsRequest *request,
				      const char *vendor,
				      const char *subject_type,
				      const char *id_number,
				      const char *code,
				      GError **error);

G_END_DECLS

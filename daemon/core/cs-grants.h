/*
 * cs-grants.h — what a verified query code opens (订单查询): one D-Bus connection may read
 * and continue one subject's orders for a while. A grant ends when it expires or when its
 * connection goes away.
 */
#pragma once

#include <glib.h>

#include "certseal/plugin.h"

G_BEGIN_DECLS

typedef struct _CsGrants CsGrants;

CsGrants *cs_grants_new(void);
void cs_grants_free(CsGrants *grants);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsGrants, cs_grants_free)

/* Let @sender (a unique bus name) reach the orders of the subject until @expires_us
 * (monotonic microseconds). @phone: only the orders whose contact phone it is (a subject no
 * reviewer approved yet is only known by the phones its orders gave), or NULL for all. A
 * new grant for the same sender and subject replaces the old one. */
void cs_grants_add(CsGrants *grants,
		   const char *sender,
		   CsSubjectType subject_type,
		   const char *id_number,
		   const char *phone,
		   gint64 expires_us);
/* Does @sender hold a live grant for this subject (and, when the grant has one, for
 * @contact_phone)? */
gboolean cs_grants_allow(CsGrants *grants,
			 const char *sender,
			 CsSubjectType subject_type,
			 const char *id_number,
			 const char *contact_phone);
/* Does @sender hold a live grant for this subject at all? */
gboolean cs_grants_holds(CsGrants *grants,
			 const char *sender,
			 CsSubjectType subject_type,
			 const char *id_number);
/* Does @sender hold any grant? */
gboolean cs_grants_any(CsGrants *grants, const char *sender);
/* @sender left the bus: its grants end. */
void cs_grants_drop(CsGrants *grants, const char *sender);

G_END_DECLS

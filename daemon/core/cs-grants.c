/*
 * cs-grants.c — query grants, in memory: they end with their connection, so a restart (which
 * ends every connection) ends them too.
 */
#include "cs-grants.h"

typedef struct {
	CsSubjectType subject_type;
	char *id_number;
	char *phone; /* NULL: every order of the subject */
	gint64 expires_us;
} Grant;

struct _CsGrants {
	GHashTable *by_sender; /* unique name → GPtrArray of Grant */
};

static void
grant_free(Grant *g)
{
	g_free(g->id_number);
	g_free(g->phone);
	g_free(g);
}

CsGrants *
cs_grants_new(void)
{
	CsGrants *grants = g_new0(CsGrants, 1);

	grants->by_sender = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
						  (GDestroyNotify)g_ptr_array_unref);
	return grants;
}

void
cs_grants_free(CsGrants *grants)
{
	if (grants == NULL)
		return;
	g_hash_table_unref(grants->by_sender);
	g_free(grants);
}

/* The live grant of @sender for the subject, dropping the expired ones on the way. */
static Grant *
find(CsGrants *grants, const char *sender, CsSubjectType subject_type, const char *id_number)
{
	GPtrArray *list = sender != NULL ? g_hash_table_lookup(grants->by_sender, sender) : NULL;
	gint64 now = g_get_monotonic_time();
	Grant *found = NULL;

	if (list == NULL)
		return NULL;
	for (guint i = list->len; i > 0; i--) {
		Grant *g = g_ptr_array_index(list, i - 1);
		if (g->expires_us <= now)
			g_ptr_array_remove_index(list, i - 1);
		else if (g->subject_type == subject_type && g_strcmp0(g->id_number, id_number) == 0)
			found = g;
	}
	if (list->len == 0) {
		g_hash_table_remove(grants->by_sender, sender);
		return NULL;
	}
	return found;
}

void
cs_grants_add(CsGrants *grants,
	      const char *sender,
	      CsSubjectType subject_type,
	      const char *id_number,
	      const char *phone,
	      gint64 expires_us)
{
	Grant *g = find(grants, sender, subject_type, id_number);
	GPtrArray *list;

	if (g == NULL) {
		list = g_hash_table_lookup(grants->by_sender, sender);
		if (list == NULL) {
			list = g_ptr_array_new_with_free_func((GDestroyNotify)grant_free);
			g_hash_table_insert(grants->by_sender, g_strdup(sender), list);
		}
		g = g_new0(Grant, 1);
		g->subject_type = subject_type;
		g->id_number = g_strdup(id_number);
		g_ptr_array_add(list, g);
	}
	g_free(g->phone);
	g->phone = g_strdup(phone);
	g->expires_us = expires_us;
}

gboolean
cs_grants_allow(CsGrants *grants,
		const char *sender,
		CsSubjectType subject_type,
		const char *id_number,
		const char *contact_phone)
{
	Grant *g = find(grants, sender, subject_type, id_number);

	return g != NULL && (g->phone == NULL || g_strcmp0(g->phone, contact_phone) == 0);
}

gboolean
cs_grants_holds(CsGrants *grants,
		const char *sender,
		CsSubjectType subject_type,
		const char *id_number)
{
	return find(grants, sender, subject_type, id_number) != NULL;
}

gboolean
cs_grants_any(CsGrants *grants, const char *sender)
{
	return sender != NULL && g_hash_table_contains(grants->by_sender, sender);
}

void
cs_grants_drop(CsGrants *grants, const char *sender)
{
	g_hash_table_remove(grants->by_sender, sender);
}

/*
 * cs-polkit.c — asynchronous CheckAuthorization calls to org.freedesktop.PolicyKit1 for the
 * D-Bus front on the system bus (cs-polkit.h).
 *
 * A call under check is held (a reference) in a table keyed by the message itself, so an
 * answer can only ever serve the call it was asked for; the handler that finds it takes it
 * out. polkit unreachable, slow, or answering with an error all deny.
 */
#define G_LOG_DOMAIN "certseald"

#include <errno.h>
#include <string.h>

#include "cs-polkit.h"

#define POLKIT_NAME "org.freedesktop.PolicyKit1"
#define POLKIT_PATH "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_IFACE "org.freedesktop.PolicyKit1.Authority"
/* CheckAuthorizationFlags: AllowUserInteraction. */
#define POLKIT_ALLOW_USER_INTERACTION 0x1u
/* An answer whose call never reached its handler again (its object went away meanwhile)
 * is dropped after this long. */
#define STALE_USEC (60 * G_USEC_PER_SEC)

G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_bus_message, sd_bus_message_unref)

struct _CsPolkit {
	sd_bus *bus;
	GHashTable *queries; /* sd_bus_message * (ref) → Query */
};

typedef struct {
	CsPolkit *polkit;
	sd_bus_message *call; /* owned by the table's key */
	const char *action;
	sd_bus_slot *slot;
	gboolean answered;
	gboolean authorized;
	char *reason; /* why not, when answered and not authorized */
	gint64 answered_at;
} Query;

static void
query_free(gpointer data)
{
	Query *q = data;

	sd_bus_slot_unref(q->slot);
	g_free(q->reason);
	g_free(q);
}

static void
unref_message(gpointer m)
{
	sd_bus_message_unref(m);
}

typedef struct {
	const char *interface;
	const char *member;
	const char *action;
} Guard;

/* Every method of dbus/org.certseal.CertSeal1.xml; NULL for those open to anyone. */
static const Guard guards[] = {
    {"org.certseal.CertSeal1.Manager", "CreateOrder", CS_POLKIT_ORDER_CREATE},
    {"org.certseal.CertSeal1.Manager", "GetFlow", NULL},
    {"org.certseal.CertSeal1.Manager", "ValidateFields", NULL},
    {"org.certseal.CertSeal1.Manager", "DownloadForm", NULL},
    {"org.certseal.CertSeal1.Manager", "SendQueryCode", CS_POLKIT_ORDER_ACT},
    {"org.certseal.CertSeal1.Manager", "FindOrders", CS_POLKIT_ORDER_ACT},
    {"org.certseal.CertSeal1.Manager", "FindCertificates", CS_POLKIT_ORDER_ACT},
    {"org.certseal.CertSeal1.Order", "Update", CS_POLKIT_ORDER_ACT},
    {"org.certseal.CertSeal1.Order", "Confirm", CS_POLKIT_ORDER_ACT},
    {"org.certseal.CertSeal1.Order", "AttachMaterial", CS_POLKIT_ORDER_ACT},
    {"org.certseal.CertSeal1.Order", "Submit", CS_POLKIT_ORDER_ACT},
    {"org.certseal.CertSeal1.Order", "SendSmsCode", CS_POLKIT_ORDER_ACT},
    {"org.certseal.CertSeal1.Order", "VerifySmsCode", CS_POLKIT_ORDER_ACT},
    {"org.certseal.CertSeal1.Order", "StartPayment", CS_POLKIT_ORDER_ACT},
    {"org.certseal.CertSeal1.Order", "GetInvoice", CS_POLKIT_ORDER_ACT},
    {"org.certseal.CertSeal1.Order", "Cancel", CS_POLKIT_ORDER_ACT},
    {"org.certseal.CertSeal1.Order", "Unlock", CS_POLKIT_KEY_MANAGE},
    {"org.certseal.CertSeal1.Order", "Download", CS_POLKIT_KEY_MANAGE},
    {"org.certseal.CertSeal1.Key", "Login", CS_POLKIT_KEY_LOGIN},
    {"org.certseal.CertSeal1.Key", "Logout", CS_POLKIT_KEY_LOGIN},
    {"org.certseal.CertSeal1.Key", "ChangePin", CS_POLKIT_KEY_LOGIN},
    {"org.certseal.CertSeal1.Key", "ReadSeal", CS_POLKIT_KEY_LOGIN},
    {"org.certseal.CertSeal1.Key", "SealDocument", CS_POLKIT_KEY_LOGIN},
};

/* A method of ours missing from the table is guarded by the strictest action of its
 * interface, so a new method is never open by oversight. */
const char *
cs_polkit_action_for(const char *interface, const char *member)
{
	if (member == NULL)
		return NULL;
	/* A call may leave out its interface: it is then guarded as the method of that name
	 * (our method names are unique across our interfaces). */
	if (interface == NULL) {
		for (gsize i = 0; i < G_N_ELEMENTS(guards); i++)
			if (strcmp(guards[i].member, member) == 0)
				return guards[i].action;
		return NULL;
	}
	for (gsize i = 0; i < G_N_ELEMENTS(guards); i++)
		if (strcmp(guards[i].interface, interface) == 0 &&
		    strcmp(guards[i].member, member) == 0)
			return guards[i].action;
	if (strcmp(interface, "org.certseal.CertSeal1.Key") == 0)
		return CS_POLKIT_KEY_MANAGE;
	if (strcmp(interface, "org.certseal.CertSeal1.Order") == 0)
		return CS_POLKIT_ORDER_ACT;
	if (strcmp(interface, "org.certseal.CertSeal1.Manager") == 0)
		return CS_POLKIT_ORDER_CREATE;
	return NULL;
}

CsPolkit *
cs_polkit_new(sd_bus *bus)
{
	CsPolkit *self = g_new0(CsPolkit, 1);

	self->bus = bus;
	self->queries =
	    g_hash_table_new_full(g_direct_hash, g_direct_equal, unref_message, query_free);
	return self;
}

void
cs_polkit_free(CsPolkit *self)
{
	if (self == NULL)
		return;
	g_hash_table_destroy(self->queries);
	g_free(self);
}

/* Answer @q's call with @q's refusal and forget it. */
static void
refuse_now(Query *q)
{
	int r =
	    sd_bus_reply_method_errorf(q->call, "org.certseal.Error.AccessDenied", "%s", q->reason);

	if (r < 0)
		g_warning("%s: cannot reply: %s", sd_bus_message_get_member(q->call),
			  g_strerror(-r));
	g_hash_table_remove(q->polkit->queries, q->call);
}

static int
on_polkit_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
	Query *q = userdata;
	const sd_bus_error *e = sd_bus_message_get_error(reply);
	int authorized = 0, challenge = 0;
	int r;

	(void)ret_error;
	q->slot = sd_bus_slot_unref(q->slot);
	q->answered = TRUE;
	q->answered_at = g_get_monotonic_time();
	if (e != NULL) {
		q->reason = g_strdup_printf("%s: polkit could not be asked (%s%s%s)", q->action,
					    e->name, e->message != NULL ? ": " : "",
					    e->message != NULL ? e->message : "");
	} else if ((r = sd_bus_message_enter_container(reply, 'r', "bba{ss}")) < 0 ||
		   (r = sd_bus_message_read(reply, "bb", &authorized, &challenge)) < 0) {
		q->reason = g_strdup_printf("%s: polkit's answer cannot be read: %s", q->action,
					    g_strerror(-r));
	} else if (authorized) {
		q->authorized = TRUE;
	} else if (challenge) {
		q->reason = g_strdup_printf("%s: polkit requires authentication; call again "
					    "allowing interactive authorization",
					    q->action);
	} else {
		q->reason = g_strdup_printf("%s: polkit does not allow this caller", q->action);
	}
	/* Back to the dispatcher: the handler runs again and finds the answer. */
	r = sd_bus_enqueue_for_read(q->polkit->bus, q->call);
	if (r < 0) {
		g_warning("%s: cannot dispatch again: %s", sd_bus_message_get_member(q->call),
			  g_strerror(-r));
		if (q->reason == NULL)
			q->reason = g_strdup_printf("%s: the call could not be resumed", q->action);
		refuse_now(q);
	}
	return 1;
}

static void
drop_stale(CsPolkit *self)
{
	GHashTableIter it;
	gpointer value;
	gint64 now = g_get_monotonic_time();

	g_hash_table_iter_init(&it, self->queries);
	while (g_hash_table_iter_next(&it, NULL, &value)) {
		Query *q = value;
		if (q->answered && now - q->answered_at > STALE_USEC)
			g_hash_table_iter_remove(&it);
	}
}

int
cs_polkit_check(CsPolkit *self, sd_bus_message *m, sd_bus_error *ret_error)
{
	g_autoptr(sd_bus_message) call = NULL;
	const char *action;
	const char *sender;
	gboolean interactive;
	Query *q;
	int r;

	if (self == NULL)
		return 1;
	action =
	    cs_polkit_action_for(sd_bus_message_get_interface(m), sd_bus_message_get_member(m));
	if (action == NULL)
		return 1;

	q = g_hash_table_lookup(self->queries, m);
	if (q != NULL && q->answered) {
		if (q->authorized) {
			g_hash_table_remove(self->queries, m);
			return 1;
		}
		r = sd_bus_error_set(ret_error, "org.certseal.Error.AccessDenied", q->reason);
		g_hash_table_remove(self->queries, m);
		return r;
	}
	if (q != NULL) /* asked already; the answer brings the call back */
		return 0;

	drop_stale(self);
	sender = sd_bus_message_get_sender(m);
	if (sender == NULL)
		return sd_bus_error_setf(ret_error, "org.certseal.Error.AccessDenied",
					 "%s: caller unknown", action);
	interactive = sd_bus_message_get_allow_interactive_authorization(m) > 0;

	r = sd_bus_message_new_method_call(self->bus, &call, POLKIT_NAME, POLKIT_PATH, POLKIT_IFACE,
					   "CheckAuthorization");
	if (r >= 0)
		r = sd_bus_message_append(call, "(sa{sv})sa{ss}us", "system-bus-name", 1, "name",
					  "s", sender, action, 0,
					  interactive ? POLKIT_ALLOW_USER_INTERACTION : 0u, "");
	if (r < 0)
		return sd_bus_error_setf(ret_error, "org.certseal.Error.AccessDenied",
					 "%s: cannot ask polkit: %s", action, g_strerror(-r));

	q = g_new0(Query, 1);
	q->polkit = self;
	q->call = sd_bus_message_ref(m);
	q->action = action;
	r = sd_bus_call_async(self->bus, &q->slot, call, on_polkit_reply, q,
			      interactive ? CS_POLKIT_INTERACTIVE_TIMEOUT_USEC
					  : CS_POLKIT_TIMEOUT_USEC);
	if (r < 0) {
		sd_bus_message_unref(q->call);
		query_free(q);
		return sd_bus_error_setf(ret_error, "org.certseal.Error.AccessDenied",
					 "%s: cannot ask polkit: %s", action, g_strerror(-r));
	}
	g_hash_table_insert(self->queries, q->call, q);
	return 0;
}

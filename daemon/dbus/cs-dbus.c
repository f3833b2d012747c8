/*
 * cs-dbus.c — the D-Bus front on sd-bus.
 *
 * Objects: the Manager and an ObjectManager at /org/certseal/CertSeal1; each order at
 * /org/certseal/CertSeal1/orders/<id> through a fallback vtable, so orders are looked up
 * in the engine when called, not registered one by one.
 *
 * Who sees what: an order is found only for its owner's uid or root (the find callback
 * checks the caller of the call being processed), and its signals are addressed to the
 * connections that asked about it (order_audience()), never broadcast. Fields, the personal data,
 * is moreover an explicit property (not part of GetAll or InterfacesAdded) announced by
 * invalidation. Callers' uids come from the bus driver once per connection and are cached until
 * NameOwnerChanged says the connection left.
 *
 * Handlers follow one order: read arguments → build the request → ask the engine (which
 * validates, checks access, records) → reply. Signals follow from engine announcements.
 */
#define G_LOG_DOMAIN "certseald"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "cs-build-config.h"
#include "cs-crypto.h"
#include "cs-dbus.h"
#include "cs-dbus-keys.h"
#include "cs-grants.h"
#include "cs-query.h"
#include "cs-invoicing.h"
#include "cs-ledger.h"
#include "cs-payments.h"
#include "cs-polkit.h"
#include "cs-forms.h"
#include "cs-material.h"
#include "cs-validate.h"
#include "cs-sd-event-source.h"

struct _CsDbus {
	CsEngine *engine;
	CsPayments *payments;
	GStrv drivers;
	sd_bus *bus;
	sd_event *event;
	GSource *source;
	GHashTable *uids; /* unique name → uid + 1 */
	/* Who hears an order's changes (see order_audience()): order id → set of unique
	 * names, the reverse (to forget a connection that left), and the connections that
	 * asked for every object (GetManagedObjects). */
	GHashTable *watchers;
	GHashTable *watching;
	GHashTable *managers;
	sd_bus_slot *filter_slot;
	sd_bus_slot *name_owner_slot;
	gboolean name_owned;
	/* AttachMaterial uploads being read and stored: by caller uid (uid → count) and in
	 * all, bounded by material_uploads_per_user and material_uploads_max. */
	GHashTable *uploads_by_uid;
	guint uploads;
	/* Asked for every key and order method on the system bus; NULL on the session bus. */
	CsPolkit *polkit;
};

G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_bus_creds, sd_bus_creds_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_bus_message, sd_bus_message_unref)

static int
reply_error(sd_bus_error *ret_error, const GError *error)
{
	const char *name = "org.certseal.Error.Internal";

	g_autofree char *message = cs_sanitize_message(error->message, 0);

	if (error->domain == CS_ERROR)
		name = cs_error_code_to_dbus_name(error->code);
	/* sd_bus_error_set() copies both strings. */
	return sd_bus_error_set(ret_error, name, message);
}

/* Reply to @call with @bytes as its one "ay" argument. */
static int
reply_bytes(sd_bus_message *call, GBytes *bytes)
{
	g_autoptr(sd_bus_message) reply = NULL;
	gsize len = 0;
	const void *data = g_bytes_get_data(bytes, &len);
	int r = sd_bus_message_new_method_return(call, &reply);

	if (r >= 0)
		r = sd_bus_message_append_array(reply, 'y', data, len);
	if (r >= 0)
		r = sd_bus_send(NULL, reply, NULL);
	return r;
}

static char *
order_path(const char *id)
{
	char *path = NULL;

	if (sd_bus_path_encode(CS_DBUS_ORDERS_PATH, id, &path) < 0)
		return NULL;
	return path;
}

/* The caller's identity, as a desktop request. */
static gboolean
request_from_message(CsDbus *self, sd_bus_message *m, CsRequest *req, GError **error)
{
	const char *sender = sd_bus_message_get_sender(m);
	gpointer cached;
	uid_t uid;

	*req = (CsRequest){.actor = CS_ACTOR_DESKTOP, .sender = sender};
	req->interactive = sd_bus_message_get_allow_interactive_authorization(m) > 0;
	if (sender == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_ACCESS_DENIED, "caller unknown");
		return FALSE;
	}
	cached = g_hash_table_lookup(self->uids, sender);
	if (cached != NULL) {
		req->uid = GPOINTER_TO_UINT(cached) - 1;
		return TRUE;
	}
	{
		g_autoptr(sd_bus_creds) creds = NULL;
		/* On dbus-daemon the bus driver supplies the effective uid of the peer
		 * (SO_PEERCRED at connect), once per connection thanks to the cache. */
		int r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID, &creds);
		if (r >= 0)
			r = sd_bus_creds_get_euid(creds, &uid);
		if (r < 0) {
			g_set_error(error, CS_ERROR, CS_ERROR_ACCESS_DENIED,
				    "cannot tell who the caller is: %s", g_strerror(-r));
			return FALSE;
		}
	}
	g_hash_table_insert(self->uids, g_strdup(sender), GUINT_TO_POINTER((guint)uid + 1));
	req->uid = uid;
	return TRUE;
}

/* @name hears the changes of order @id from now on (until it leaves the bus). */
static void
watch_order(CsDbus *self, const char *id, const char *name)
{
	GHashTable *names = g_hash_table_lookup(self->watchers, id);
	GHashTable *ids;

	if (names == NULL) {
		names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
		g_hash_table_insert(self->watchers, g_strdup(id), names);
	} else if (g_hash_table_contains(names, name)) {
		return;
	}
	g_hash_table_add(names, g_strdup(name));
	ids = g_hash_table_lookup(self->watching, name);
	if (ids == NULL) {
		ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
		g_hash_table_insert(self->watching, g_strdup(name), ids);
	}
	g_hash_table_add(ids, g_strdup(id));
}

/* The sender of the method call being processed, if there is one. */
static const char *
current_caller(CsDbus *self)
{
	sd_bus_message *current = sd_bus_get_current_message(self->bus);
	uint8_t type = 0;

	if (current == NULL || sd_bus_message_get_type(current, &type) < 0 ||
	    type != SD_BUS_MESSAGE_METHOD_CALL)
		return NULL;
	return sd_bus_message_get_sender(current);
}

static void
forget_connection(CsDbus *self, const char *name)
{
	GHashTable *ids = g_hash_table_lookup(self->watching, name);
	GHashTableIter iter;
	gpointer id;

	g_hash_table_remove(self->managers, name);
	if (ids == NULL)
		return;
	g_hash_table_iter_init(&iter, ids);
	while (g_hash_table_iter_next(&iter, &id, NULL)) {
		GHashTable *names = g_hash_table_lookup(self->watchers, id);
		if (names != NULL && g_hash_table_remove(names, name) &&
		    g_hash_table_size(names) == 0)
			g_hash_table_remove(self->watchers, id);
	}
	g_hash_table_remove(self->watching, name);
}

/* Every incoming message passes here first: a GetManagedObjects on the root asks for
 * every object the caller may see, orders created later included. */
static int
on_incoming(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	CsDbus *self = userdata;
	const char *sender = sd_bus_message_get_sender(m);

	if (sender != NULL &&
	    sd_bus_message_is_method_call(m, "org.freedesktop.DBus.ObjectManager",
					  "GetManagedObjects") > 0 &&
	    g_strcmp0(sd_bus_message_get_path(m), CS_DBUS_PATH) == 0 &&
	    !g_hash_table_contains(self->managers, sender))
		g_hash_table_add(self->managers, g_strdup(sender));
	return 0;
}

static int
on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	CsDbus *self = userdata;
	const char *name, *old_owner, *new_owner;

	if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
		return 0;
	if (name[0] == ':' && new_owner[0] == '\0') {
		forget_connection(self, name);
		g_hash_table_remove(self->uids, name);
		cs_grants_drop(cs_engine_get_grants(self->engine), name); /* a query's grant */
	}
	return 0;
}

/* --- GVariant ⇄ sd-bus for the a{sv} fields ----------------------------------------- */

static gboolean
is_basic_type(const char *sig)
{
	return sig[0] != '\0' && sig[1] == '\0' && strchr("ybnqiuxtdsog", sig[0]) != NULL;
}

static int
read_basic(sd_bus_message *m, char type, GVariant **out)
{
	union {
		uint8_t y;
		int b;
		int16_t n;
		uint16_t q;
		int32_t i;
		uint32_t u;
		int64_t x;
		uint64_t t;
		double d;
		const char *s;
	} v;
	int r = sd_bus_message_read_basic(m, type, &v);

	if (r < 0)
		return r;
	switch (type) {
	case 'y':
		*out = g_variant_new_byte(v.y);
		break;
	case 'b':
		*out = g_variant_new_boolean(v.b);
		break;
	case 'n':
		*out = g_variant_new_int16(v.n);
		break;
	case 'q':
		*out = g_variant_new_uint16(v.q);
		break;
	case 'i':
		*out = g_variant_new_int32(v.i);
		break;
	case 'u':
		*out = g_variant_new_uint32(v.u);
		break;
	case 'x':
		*out = g_variant_new_int64(v.x);
		break;
	case 't':
		*out = g_variant_new_uint64(v.t);
		break;
	case 'd':
		*out = g_variant_new_double(v.d);
		break;
	case 'o': {
		/* A Key's object path (a flow's `key` field) reaches the engine as the key's
		 * id; any other path stays a path, which the engine refuses by name. */
		char *id = NULL;
		if (sd_bus_path_decode(v.s, CS_DBUS_KEYS_PATH, &id) > 0 && id[0] != '\0')
			*out = g_variant_new_take_string(id);
		else {
			free(id);
			*out = g_variant_new_object_path(v.s);
		}
		break;
	}
	case 'g':
		*out = g_variant_new_signature(v.s);
		break;
	default:
		if (!g_utf8_validate(v.s, -1, NULL))
			return -EBADMSG;
		*out = g_variant_new_string(v.s);
		break;
	}
	return 0;
}

/* Read an a{sv} of basic values (the engine then insists on strings). A value of another
 * type, a key given twice (which one would win is not the caller's to guess) and a value
 * sd-bus cannot read (not UTF-8, or a Unicode non-character such as U+FFFF, which sd-bus
 * refuses) are refused naming the field. */
static gboolean
read_fields(sd_bus_message *m, GVariant **out, GError **error)
{
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autofree char *bad_key = NULL;
	GVariantBuilder b;
	int r;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	r = sd_bus_message_enter_container(m, 'a', "{sv}");
	while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		const char *key = NULL;
		const char *contents = NULL;
		GVariant *value = NULL;

		r = sd_bus_message_read(m, "s", &key);
		if (r >= 0)
			r = sd_bus_message_peek_type(m, NULL, &contents);
		if (r < 0)
			break;
		if (!g_hash_table_add(seen, g_strdup(key))) {
			g_autofree char *quoted = cs_quote_value(key);

			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "%s: given twice in one call", quoted);
			g_variant_builder_clear(&b);
			return FALSE;
		}
		if (!is_basic_type(contents)) {
			g_autofree char *quoted = cs_quote_value(key);

			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "%s: must be a string, not '%s'", quoted, contents);
			g_variant_builder_clear(&b);
			return FALSE;
		}
		r = sd_bus_message_enter_container(m, 'v', contents);
		if (r >= 0)
			r = read_basic(m, contents[0], &value);
		if (r < 0)
			bad_key = g_strdup(key);
		if (r >= 0)
			r = sd_bus_message_exit_container(m);
		if (r >= 0)
			r = sd_bus_message_exit_container(m);
		if (r < 0) {
			if (value != NULL)
				g_variant_unref(g_variant_ref_sink(value));
			break;
		}
		g_variant_builder_add(&b, "{sv}", key, value);
	}
	if (r >= 0)
		r = sd_bus_message_exit_container(m);
	if (r < 0) {
		g_variant_builder_clear(&b);
		g_autofree char *quoted_bad = cs_quote_value(bad_key);

		if (bad_key != NULL && r == -EBADMSG)
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "%s: must be valid UTF-8 without Unicode non-characters "
				    "(U+FDD0…U+FDEF, U+FFFE, U+FFFF and the like)",
				    quoted_bad);
		else
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "fields: not a valid a{sv}: %s", g_strerror(-r));
		return FALSE;
	}
	*out = g_variant_ref_sink(g_variant_builder_end(&b));
	return TRUE;
}

static int
append_basic(sd_bus_message *m, GVariant *v)
{
	switch (g_variant_classify(v)) {
	case G_VARIANT_CLASS_BOOLEAN: {
		int b = g_variant_get_boolean(v);
		return sd_bus_message_append_basic(m, 'b', &b);
	}
	case G_VARIANT_CLASS_BYTE: {
		uint8_t y = g_variant_get_byte(v);
		return sd_bus_message_append_basic(m, 'y', &y);
	}
	case G_VARIANT_CLASS_INT32: {
		int32_t i = g_variant_get_int32(v);
		return sd_bus_message_append_basic(m, 'i', &i);
	}
	case G_VARIANT_CLASS_UINT32: {
		uint32_t u = g_variant_get_uint32(v);
		return sd_bus_message_append_basic(m, 'u', &u);
	}
	case G_VARIANT_CLASS_INT64: {
		int64_t x = g_variant_get_int64(v);
		return sd_bus_message_append_basic(m, 'x', &x);
	}
	case G_VARIANT_CLASS_UINT64: {
		uint64_t t = g_variant_get_uint64(v);
		return sd_bus_message_append_basic(m, 't', &t);
	}
	case G_VARIANT_CLASS_STRING:
		return sd_bus_message_append_basic(m, 's', g_variant_get_string(v, NULL));
	default:
		return -EINVAL;
	}
}

/* Append any GVariant of basic types, arrays, dictionaries, tuples and variants. */
static int
append_value(sd_bus_message *m, GVariant *v)
{
	const char *type = g_variant_get_type_string(v);
	g_autofree char *contents = NULL;
	GVariantIter iter;
	GVariant *child;
	char container;
	int r;

	switch (type[0]) {
	case 'a':
		container = 'a';
		contents = g_strdup(type + 1);
		break;
	case '{':
		container = 'e';
		contents = g_strndup(type + 1, strlen(type) - 2);
		break;
	case '(':
		container = 'r';
		contents = g_strndup(type + 1, strlen(type) - 2);
		break;
	case 'v': {
		g_autoptr(GVariant) inner = g_variant_get_variant(v);
		r = sd_bus_message_open_container(m, 'v', g_variant_get_type_string(inner));
		if (r >= 0)
			r = append_value(m, inner);
		return r >= 0 ? sd_bus_message_close_container(m) : r;
	}
	default:
		return append_basic(m, v);
	}
	r = sd_bus_message_open_container(m, container, contents);
	g_variant_iter_init(&iter, v);
	while (r >= 0 && (child = g_variant_iter_next_value(&iter)) != NULL) {
		r = append_value(m, child);
		g_variant_unref(child);
	}
	return r >= 0 ? sd_bus_message_close_container(m) : r;
}

/* Reply to @call with @value (a floating reference is taken) as its one argument. */
static int
reply_variant(sd_bus_message *call, GVariant *value)
{
	g_autoptr(GVariant) owned = g_variant_ref_sink(value);
	g_autoptr(sd_bus_message) reply = NULL;
	int r = sd_bus_message_new_method_return(call, &reply);

	if (r >= 0)
		r = append_value(reply, owned);
	if (r < 0)
		return r;
	return sd_bus_send(NULL, reply, NULL);
}

/* Append an a{sv} whose values are basic types (what the engine stores). */
static int
append_fields(sd_bus_message *m, GVariant *dict)
{
	GVariantIter iter;
	const char *key;
	GVariant *value;
	int r = sd_bus_message_open_container(m, 'a', "{sv}");

	g_variant_iter_init(&iter, dict);
	while (r >= 0 && g_variant_iter_next(&iter, "{&sv}", &key, &value)) {
		char sig[2] = {g_variant_get_type_string(value)[0], '\0'};
		r = sd_bus_message_open_container(m, 'e', "sv");
		if (r >= 0)
			r = sd_bus_message_append_basic(m, 's', key);
		if (r >= 0)
			r = sd_bus_message_open_container(m, 'v', sig);
		if (r >= 0)
			r = append_basic(m, value);
		if (r >= 0)
			r = sd_bus_message_close_container(m);
		if (r >= 0)
			r = sd_bus_message_close_container(m);
		g_variant_unref(value);
	}
	if (r >= 0)
		r = sd_bus_message_close_container(m);
	return r;
}

/* --- Manager ------------------------------------------------------------------------ */

static int
prop_version(sd_bus *bus,
	     const char *path,
	     const char *iface,
	     const char *prop,
	     sd_bus_message *reply,
	     void *userdata,
	     sd_bus_error *ret_error)
{
	return sd_bus_message_append(reply, "s", CS_VERSION);
}

static int
prop_plugins(sd_bus *bus,
	     const char *path,
	     const char *iface,
	     const char *prop,
	     sd_bus_message *reply,
	     void *userdata,
	     sd_bus_error *ret_error)
{
	CsDbus *self = userdata;
	g_auto(GStrv) kinds = cs_engine_get_kinds(self->engine);

	return sd_bus_message_append_strv(reply, kinds);
}

static int
prop_drivers(sd_bus *bus,
	     const char *path,
	     const char *iface,
	     const char *prop,
	     sd_bus_message *reply,
	     void *userdata,
	     sd_bus_error *ret_error)
{
	CsDbus *self = userdata;

	return sd_bus_message_append_strv(reply, self->drivers);
}

static int
prop_vendors(sd_bus *bus,
	     const char *path,
	     const char *iface,
	     const char *prop,
	     sd_bus_message *reply,
	     void *userdata,
	     sd_bus_error *ret_error)
{
	CsDbus *self = userdata;
	CsConfig *config = cs_engine_get_config(self->engine);
	int r = sd_bus_message_open_container(reply, 'a', "(sss)");

	for (guint i = 0; r >= 0 && config->vendors != NULL && i < config->vendors->len; i++) {
		const CsVendor *v = g_ptr_array_index(config->vendors, i);
		r = sd_bus_message_append(reply, "(sss)", v->id, v->name, v->driver);
	}
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	return r;
}

static int
method_create_order(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	CsDbus *self = userdata;
	const char *kind = NULL;
	const char *subject_type = NULL;
	g_autoptr(GVariant) fields = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *path = NULL;
	CsRequest req;
	CsOrder *order;
	int r;

	CS_POLKIT_GATE(self->polkit, m, ret_error);
	r = sd_bus_message_read(m, "ss", &kind, &subject_type);
	if (r < 0)
		return r;
	if (!read_fields(m, &fields, &error) || !request_from_message(self, m, &req, &error))
		return reply_error(ret_error, error);
	order = cs_engine_create_order(self->engine, &req, kind, subject_type, fields, &error);
	if (order == NULL)
		return reply_error(ret_error, error);
	path = order_path(cs_order_get_id(order));
	return sd_bus_reply_method_return(m, "o", path);
}

static int
method_get_flow(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	CsDbus *self = userdata;
	const char *kind = NULL;
	const char *subject_type = NULL;
	GVariant *flow; /* floating, taken by reply_variant() */
	g_autoptr(GError) error = NULL;
	int r = sd_bus_message_read(m, "ss", &kind, &subject_type);

	if (r < 0)
		return r;
	flow = cs_engine_describe_flow(self->engine, kind, subject_type, &error);
	if (flow == NULL)
		return reply_error(ret_error, error);
	return reply_variant(m, flow);
}

static int
method_validate_fields(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	CsDbus *self = userdata;
	const char *kind = NULL;
	const char *subject_type = NULL;
	g_autoptr(GVariant) fields = NULL;
	GVariant *problems; /* floating, taken by reply_variant() */
	g_autoptr(GError) error = NULL;
	int r = sd_bus_message_read(m, "ss", &kind, &subject_type);

	if (r < 0)
		return r;
	if (!read_fields(m, &fields, &error))
		return reply_error(ret_error, error);
	problems = cs_engine_validate_fields(self->engine, kind, subject_type, fields, &error);
	if (problems == NULL)
		return reply_error(ret_error, error);
	return reply_variant(m, problems);
}

static int
method_send_query_code(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	CsDbus *self = userdata;
	const char *vendor = NULL, *subject_type = NULL, *id_number = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *masked = NULL;
	CsRequest req;
	int r;

	CS_POLKIT_GATE(self->polkit, m, ret_error);
	r = sd_bus_message_read(m, "sss", &vendor, &subject_type, &id_number);
	if (r < 0)
		return r;
	if (!request_from_message(self, m, &req, &error))
		return reply_error(ret_error, error);
	masked = cs_query_send_code(self->engine, &req, vendor, subject_type, id_number, &error);
	if (masked == NULL)
		return reply_error(ret_error, error);
	return sd_bus_reply_method_return(m, "s", masked);
}

static int
method_find_orders(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	CsDbus *self = userdata;
	const char *vendor = NULL, *subject_type = NULL, *id_number = NULL, *code = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) ids = NULL;
	g_autoptr(sd_bus_message) reply = NULL;
	CsRequest req;
	int r;

	CS_POLKIT_GATE(self->polkit, m, ret_error);
	r = sd_bus_message_read(m, "ssss", &vendor, &subject_type, &id_number, &code);
	if (r < 0)
		return r;
	if (!request_from_message(self, m, &req, &error))
		return reply_error(ret_error, error);
	ids =
	    cs_query_find_orders(self->engine, &req, vendor, subject_type, id_number, code, &error);
	if (ids == NULL)
		return reply_error(ret_error, error);
	r = sd_bus_message_new_method_return(m, &reply);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "o");
	for (guint i = 0; r >= 0 && i < ids->len; i++) {
		g_autofree char *path = order_path(g_ptr_array_index(ids, i));
		r = sd_bus_message_append_basic(reply, 'o', path);
		/* Granted by the query code: this connection hears the order's changes. */
		watch_order(self, g_ptr_array_index(ids, i), req.sender);
	}
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r < 0)
		return r;
	return sd_bus_send(NULL, reply, NULL);
}

/* valid | expired | revoked | superseded, as FindCertificates shows a certificate. */
static const char *
certificate_status(const CsCertRow *c, gint64 now_s)
{
	if (g_strcmp0(c->status, "revoked") == 0)
		return g_strcmp0(c->reason, "superseded") == 0 ? "superseded" : "revoked";
	return c->not_after < now_s ? "expired" : "valid";
}

static int
method_find_certificates(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	CsDbus *self = userdata;
	const char *vendor = NULL, *subject_type = NULL, *id_number = NULL, *code = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) certs = NULL;
	g_autoptr(sd_bus_message) reply = NULL;
	gint64 now_s = g_get_real_time() / G_USEC_PER_SEC;
	CsRequest req;
	int r;

	CS_POLKIT_GATE(self->polkit, m, ret_error);
	r = sd_bus_message_read(m, "ssss", &vendor, &subject_type, &id_number, &code);
	if (r < 0)
		return r;
	if (!request_from_message(self, m, &req, &error))
		return reply_error(ret_error, error);
	certs = cs_query_find_certificates(self->engine, &req, vendor, subject_type, id_number,
					   code, &error);
	if (certs == NULL)
		return reply_error(ret_error, error);
	r = sd_bus_message_new_method_return(m, &reply);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(sssstt)");
	for (guint i = 0; r >= 0 && i < certs->len; i++) {
		const CsCertRow *c = g_ptr_array_index(certs, i);
		r = sd_bus_message_append(reply, "(sssstt)", c->serial, c->subject, c->vendor,
					  certificate_status(c, now_s), (uint64_t)c->not_before,
					  (uint64_t)c->not_after);
	}
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r < 0)
		return r;
	return sd_bus_send(NULL, reply, NULL);
}

/* DownloadForm: the name is checked at once; the PDF is rendered (the first time) on a
 * worker thread and the reply sent from the main loop when it is ready. */
typedef struct {
	sd_bus_message *call;
	char *name;
} FormCall;

static void
form_call_free(FormCall *fc)
{
	sd_bus_message_unref(fc->call);
	g_free(fc->name);
	g_free(fc);
}

static void
form_render_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	FormCall *fc = data;
	GError *error = NULL;
	GBytes *pdf = cs_forms_render(fc->name, &error);

	if (pdf == NULL)
		g_task_return_error(task, error);
	else
		g_task_return_pointer(task, pdf, (GDestroyNotify)g_bytes_unref);
}

static void
form_rendered(GObject *source, GAsyncResult *result, gpointer user_data)
{
	FormCall *fc = g_task_get_task_data(G_TASK(result));
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) pdf = g_task_propagate_pointer(G_TASK(result), &error);
	int r;

	if (pdf == NULL) {
		sd_bus_error err = SD_BUS_ERROR_NULL;
		reply_error(&err, error);
		r = sd_bus_reply_method_error(fc->call, &err);
		sd_bus_error_free(&err);
	} else {
		r = reply_bytes(fc->call, pdf);
	}
	if (r < 0)
		g_warning("DownloadForm %s: cannot reply: %s", fc->name, g_strerror(-r));
}

static int
method_download_form(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	const char *name = NULL;
	g_autoptr(GTask) task = NULL;
	FormCall *fc;
	int r = sd_bus_message_read(m, "s", &name);

	if (r < 0)
		return r;
	if (!g_strv_contains(cs_forms_names(), name)) {
		g_autoptr(GError) error = NULL;
		g_autofree char *known = g_strjoinv(", ", (char **)cs_forms_names());
		g_autofree char *quoted = cs_quote_value(name);
		g_set_error(&error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "name: no form '%s' (available: %s)", quoted, known);
		return reply_error(ret_error, error);
	}
	fc = g_new0(FormCall, 1);
	fc->call = sd_bus_message_ref(m);
	fc->name = g_strdup(name);
	task = g_task_new(NULL, NULL, form_rendered, NULL);
	g_task_set_task_data(task, fc, (GDestroyNotify)form_call_free);
	g_task_run_in_thread(task, form_render_thread);
	return 1; /* replied later */
}

static const sd_bus_vtable manager_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Version", "s", prop_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Plugins", "as", prop_plugins, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Drivers", "as", prop_drivers, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Vendors", "a(sss)", prop_vendors, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_METHOD_WITH_ARGS("CreateOrder",
			    SD_BUS_ARGS("s", kind, "s", subject_type, "a{sv}", fields),
			    SD_BUS_RESULT("o", order),
			    method_create_order,
			    SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("GetFlow",
			    SD_BUS_ARGS("s", kind, "s", subject_type),
			    SD_BUS_RESULT("a{sv}", flow),
			    method_get_flow,
			    SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("ValidateFields",
			    SD_BUS_ARGS("s", kind, "s", subject_type, "a{sv}", fields),
			    SD_BUS_RESULT("a(ss)", problems),
			    method_validate_fields,
			    SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("SendQueryCode",
			    SD_BUS_ARGS("s", vendor, "s", subject_type, "s", id_number),
			    SD_BUS_RESULT("s", masked_phone),
			    method_send_query_code,
			    SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("FindOrders",
			    SD_BUS_ARGS("s", vendor, "s", subject_type, "s", id_number, "s", code),
			    SD_BUS_RESULT("ao", orders),
			    method_find_orders,
			    SD_BUS_VTABLE_UNPRIVILEGED | SD_BUS_VTABLE_SENSITIVE),
    SD_BUS_METHOD_WITH_ARGS("FindCertificates",
			    SD_BUS_ARGS("s", vendor, "s", subject_type, "s", id_number, "s", code),
			    SD_BUS_RESULT("a(sssstt)", certificates),
			    method_find_certificates,
			    SD_BUS_VTABLE_UNPRIVILEGED | SD_BUS_VTABLE_SENSITIVE),
    SD_BUS_METHOD_WITH_ARGS("DownloadForm",
			    SD_BUS_ARGS("s", name),
			    SD_BUS_RESULT("ay", form),
			    method_download_form,
			    SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

/* --- Orders ------------------------------------------------------------------------- */

/* May the caller of the message being processed see @order? Emissions the daemon makes
 * on its own (no method call being processed) are allowed: they carry no personal data. */
static gboolean
caller_may_see(CsDbus *self, CsOrder *order)
{
	sd_bus_message *current = sd_bus_get_current_message(self->bus);
	uint8_t type = 0;
	CsRequest req;

	if (current == NULL || sd_bus_message_get_type(current, &type) < 0 ||
	    type != SD_BUS_MESSAGE_METHOD_CALL)
		return TRUE;
	if (!request_from_message(self, current, &req, NULL))
		return FALSE;
	return cs_engine_check_access(self->engine, &req, order, NULL);
}

static int
order_find(sd_bus *bus,
	   const char *path,
	   const char *iface,
	   void *userdata,
	   void **found,
	   sd_bus_error *ret_error)
{
	CsDbus *self = userdata;
	g_autofree char *id = NULL;
	CsOrder *order;

	if (sd_bus_path_decode(path, CS_DBUS_ORDERS_PATH, &id) <= 0 || id[0] == '\0')
		return 0;
	order = cs_engine_get_order(self->engine, id, NULL);
	if (order == NULL || !caller_may_see(self, order))
		return 0;
	/* A connection that calls an order (or lists it) hears its changes from now on. */
	if (current_caller(self) != NULL)
		watch_order(self, id, current_caller(self));
	*found = self;
	return 1;
}

static int
order_enumerate(
    sd_bus *bus, const char *prefix, void *userdata, char ***nodes, sd_bus_error *ret_error)
{
	CsDbus *self = userdata;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) ids = NULL;
	g_autoptr(GStrvBuilder) b = g_strv_builder_new();
	sd_bus_message *current = sd_bus_get_current_message(bus);
	CsRequest req = {.actor = CS_ACTOR_SYSTEM};

	/* Only the caller's own orders are listed (all of them for root), straight from an
	 * ownership query: nobody else's order is loaded to answer. */
	if (current != NULL && !request_from_message(self, current, &req, &error))
		return reply_error(ret_error, error);
	ids = cs_engine_list_visible_order_ids(self->engine, &req, &error);
	if (ids == NULL)
		return reply_error(ret_error, error);
	for (guint i = 0; i < ids->len; i++) {
		g_autofree char *p = order_path(g_ptr_array_index(ids, i));
		if (p != NULL)
			g_strv_builder_add(b, p);
	}
	/* sd-bus frees the result with free(); GLib's allocator is malloc. */
	*nodes = g_strv_builder_end(b);
	return 0;
}

/* The order an object path names (the find callback already checked the caller). */
static CsOrder *
order_at(CsDbus *self, const char *path)
{
	g_autofree char *id = NULL;

	if (path == NULL || sd_bus_path_decode(path, CS_DBUS_ORDERS_PATH, &id) <= 0)
		return NULL;
	return cs_engine_get_order(self->engine, id, NULL);
}

/* Getters receive the front as userdata and look the order up by path. */
#define ORDER_GETTER(fn)                                                                           \
	static int fn##_impl(CsDbus *self, CsOrder *order, sd_bus_message *reply,                  \
			     sd_bus_error *ret_error);                                             \
	static int fn(sd_bus *bus, const char *path, const char *iface, const char *prop,          \
		      sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)              \
	{                                                                                          \
		CsOrder *order = order_at(userdata, path);                                         \
		if (order == NULL)                                                                 \
			return sd_bus_error_set(ret_error, SD_BUS_ERROR_UNKNOWN_OBJECT, path);     \
		return fn##_impl(userdata, order, reply, ret_error);                               \
	}                                                                                          \
	static int fn##_impl(CsDbus *self, CsOrder *order, sd_bus_message *reply,                  \
			     sd_bus_error *ret_error)

ORDER_GETTER(prop_order_id)
{
	return sd_bus_message_append(reply, "s", cs_order_get_id(order));
}

ORDER_GETTER(prop_order_kind)
{
	return sd_bus_message_append(reply, "s", cs_order_get_kind(order));
}

ORDER_GETTER(prop_order_subject_type)
{
	return sd_bus_message_append(reply, "s",
				     cs_subject_type_to_string(cs_order_get_subject_type(order)));
}

ORDER_GETTER(prop_order_vendor)
{
	return sd_bus_message_append(reply, "s", cs_order_get_vendor(order));
}

ORDER_GETTER(prop_order_state)
{
	return sd_bus_message_append(reply, "s", cs_order_get_state(order));
}

ORDER_GETTER(prop_order_fields)
{
	return append_fields(reply, cs_order_get_fields(order));
}

ORDER_GETTER(prop_order_auth_method)
{
	const char *v = cs_order_get_field(order, "auth_method");
	return sd_bus_message_append(reply, "s", v != NULL ? v : "");
}

ORDER_GETTER(prop_order_missing)
{
	g_auto(GStrv) v = cs_engine_missing(self->engine, order);
	return sd_bus_message_append_strv(reply, v);
}

ORDER_GETTER(prop_order_materials)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) rows = cs_engine_list_materials(self->engine, order, &error);
	int r;

	if (rows == NULL)
		return reply_error(ret_error, error);
	r = sd_bus_message_open_container(reply, 'a', "s");
	for (guint i = 0; r >= 0 && i < rows->len; i++)
		r = sd_bus_message_append_basic(
		    reply, 's', ((CsMaterialRow *)g_ptr_array_index(rows, i))->kind);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	return r;
}

ORDER_GETTER(prop_order_next_actions)
{
	g_auto(GStrv) v = cs_engine_next_actions(self->engine, order);
	return sd_bus_message_append_strv(reply, v);
}

ORDER_GETTER(prop_order_warnings)
{
	g_auto(GStrv) v = cs_engine_warnings(self->engine, order);
	return sd_bus_message_append_strv(reply, v);
}

ORDER_GETTER(prop_order_amount)
{
	uint64_t fen = cs_engine_amount_fen(self->engine, order);
	return sd_bus_message_append(reply, "t", fen);
}

ORDER_GETTER(prop_order_created)
{
	return sd_bus_message_append(reply, "t",
				     (uint64_t)(cs_order_get_created(order) / G_USEC_PER_SEC));
}

ORDER_GETTER(prop_order_updated)
{
	return sd_bus_message_append(reply, "t",
				     (uint64_t)(cs_order_get_updated(order) / G_USEC_PER_SEC));
}

ORDER_GETTER(prop_order_history)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) events = cs_engine_history(self->engine, order, &error);
	const char *state = "";
	int r;

	if (events == NULL)
		return reply_error(ret_error, error);
	/* The applicant's view: the steps of the order and what was done to it, each with the
	 * state it left the order in; the office's own audit trail (its calls, finished
	 * gateway tasks) stays with the office (orders.get). */
	r = sd_bus_message_open_container(reply, 'a', "(tss)");
	for (guint i = 0; r >= 0 && i < events->len; i++) {
		CsEventRow *e = g_ptr_array_index(events, i);
		g_autofree char *note = NULL;
		if (g_strcmp0(e->kind, "office.call") == 0 || g_strcmp0(e->kind, "task.done") == 0)
			continue;
		if (e->to != NULL)
			state = e->to;
		note = cs_engine_event_note(order, e);
		r = sd_bus_message_append(reply, "(tss)", (uint64_t)(e->time / G_USEC_PER_SEC),
					  state, note);
	}
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	return r;
}

/* The Order properties that show attributes: those the flow declares (CsPlugin.attrs),
 * and those of the services (the payment channel, the review deadline, the invoice, the
 * progress of key work). */
static const struct {
	const char *property;
	char type;
	const char *service_attr; /* NULL: only a flow's attribute */
} attr_properties[] = {
    {"PasswordDelivery", 's', NULL}, {"ReviewNote", 's', NULL},
    {"TrackingNumber", 's', NULL},   {"PaymentChannel", 's', "payment_channel"},
    {"DueBy", 't', "due_by"},	     {"InvoiceAvailable", 'b', "invoice_number"},
    {"Progress", 'u', "progress"},
};

/* The flow's attributes shown as @property, joined with "; "; else the service's. */
static char *
attr_text(CsOrder *order, const char *property, const char *service_attr)
{
	const CsPlugin *plugin = cs_order_get_plugin(order);
	g_autoptr(GString) s = g_string_new(NULL);
	const char *v;

	for (guint i = 0; plugin != NULL && plugin->attrs != NULL && plugin->attrs[i].name != NULL;
	     i++) {
		if (g_strcmp0(plugin->attrs[i].property, property) != 0)
			continue;
		v = cs_order_get_attr(order, plugin->attrs[i].name);
		if (v != NULL && *v != '\0')
			g_string_append_printf(s, "%s%s", s->len > 0 ? "; " : "", v);
	}
	if (s->len == 0 && service_attr != NULL &&
	    (v = cs_order_get_attr(order, service_attr)) != NULL)
		g_string_append(s, v);
	return s->len > 0 ? g_string_free(g_steal_pointer(&s), FALSE) : NULL;
}

static int
prop_order_attr(sd_bus *bus,
		const char *path,
		const char *iface,
		const char *prop,
		sd_bus_message *reply,
		void *userdata,
		sd_bus_error *ret_error)
{
	CsOrder *order = order_at(userdata, path);
	g_autofree char *text = NULL;

	if (order == NULL)
		return sd_bus_error_set(ret_error, SD_BUS_ERROR_UNKNOWN_OBJECT, path);
	for (guint i = 0; i < G_N_ELEMENTS(attr_properties); i++) {
		if (g_strcmp0(attr_properties[i].property, prop) != 0)
			continue;
		text = attr_text(order, prop, attr_properties[i].service_attr);
		switch (attr_properties[i].type) {
		case 't':
			return sd_bus_message_append(
			    reply, "t",
			    (uint64_t)(text != NULL ? g_ascii_strtoull(text, NULL, 10) : 0));
		case 'u':
			return sd_bus_message_append(
			    reply, "u",
			    (uint32_t)(text != NULL ? g_ascii_strtoull(text, NULL, 10) : 0));
		case 'b':
			return sd_bus_message_append(reply, "b", text != NULL);
		default:
			return sd_bus_message_append(reply, "s", text != NULL ? text : "");
		}
	}
	return sd_bus_error_set(ret_error, SD_BUS_ERROR_UNKNOWN_PROPERTY, prop);
}

/* "Confirm" → "confirm", "StartPayment" → "start_payment". */
static char *
method_to_action(const char *member)
{
	GString *s = g_string_new(NULL);

	for (const char *p = member; *p != '\0'; p++) {
		if (g_ascii_isupper(*p) && p != member)
			g_string_append_c(s, '_');
		g_string_append_c(s, g_ascii_tolower(*p));
	}
	return g_string_free(s, FALSE);
}

/* The order a method call is addressed to and the caller's request: 1 when both are had,
 * 0 while polkit is being asked (the handler returns 1 and runs again with the answer),
 * negative (with @ret_error set for the reply) when either cannot be had. */
static int
order_call(
    CsDbus *self, sd_bus_message *m, CsOrder **order, CsRequest *req, sd_bus_error *ret_error)
{
	g_autoptr(GError) error = NULL;
	int r = cs_polkit_check(self->polkit, m, ret_error);

	if (r <= 0)
		return r;
	*order = order_at(self, sd_bus_message_get_path(m));
	if (*order == NULL)
		return sd_bus_error_set(ret_error, SD_BUS_ERROR_UNKNOWN_OBJECT,
					sd_bus_message_get_path(m));
	if (!request_from_message(self, m, req, &error))
		return reply_error(ret_error, error);
	return 1;
}

static int
method_order_act(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	CsDbus *self = userdata;
	g_autofree char *action = method_to_action(sd_bus_message_get_member(m));
	g_autoptr(GError) error = NULL;
	CsOrder *order;
	CsRequest req;
	int r = order_call(self, m, &order, &req, ret_error);

	if (r <= 0)
		return r < 0 ? r : 1; /* 0: polkit is being asked */
	if (!cs_engine_act(self->engine, &req, order, action, &error))
		return reply_error(ret_error, error);
	return sd_bus_reply_method_return(m, NULL);
}

static int
method_order_verify_sms_code(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	CsDbus *self = userdata;
	g_autoptr(GError) error = NULL;
	const char *code = NULL;
	CsOrder *order;
	CsRequest req;
	int r = order_call(self, m, &order, &req, ret_error);

	if (r <= 0)
		return r < 0 ? r : 1; /* 0: polkit is being asked */
	r = sd_bus_message_read(m, "s", &code);
	if (r < 0)
		return r;
	if (!cs_engine_act_with(self->engine, &req, order, "verify_sms_code", NULL, code, NULL,
				NULL, &error))
		return reply_error(ret_error, error);
	return sd_bus_reply_method_return(m, NULL);
}

/* Download(o key) and the like: the step named after the method, taken with the key it
 * names (as the key's id, param "key"). */
static int
method_order_act_on_key(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	CsDbus *self = userdata;
	g_autofree char *action = method_to_action(sd_bus_message_get_member(m));
	g_autofree char *id = NULL;
	g_autoptr(GError) error = NULL;
	const char *path = NULL;
	GVariantBuilder b;
	CsOrder *order;
	CsRequest req;
	int r = order_call(self, m, &order, &req, ret_error);

	if (r <= 0)
		return r < 0 ? r : 1; /* 0: polkit is being asked */
	r = sd_bus_message_read(m, "o", &path);
	if (r < 0)
		return r;
	if (sd_bus_path_decode(path, CS_DBUS_KEYS_PATH, &id) <= 0 || id == NULL || id[0] == '\0')
		return sd_bus_error_setf(ret_error, "org.certseal.Error.InvalidInput",
					 "key: %s is not a Key object", path);
	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&b, "{sv}", "key", g_variant_new_string(id));
	if (!cs_engine_act_with(self->engine, &req, order, action, g_variant_builder_end(&b), NULL,
				NULL, NULL, &error))
		return reply_error(ret_error, error);
	return sd_bus_reply_method_return(m, NULL);
}

/* Unlock(o key, s code, s new_pin): the code and the new PIN travel to the engine as the
 * step's secrets (never recorded); the call is answered when the key's PIN was reset, or
 * with why it was not. */
static void
unlock_replied(const GError *error, gpointer user_data)
{
	sd_bus_message *m = user_data;
	int r;

	if (error != NULL) {
		sd_bus_error err = SD_BUS_ERROR_NULL;
		reply_error(&err, error);
		r = sd_bus_reply_method_error(m, &err);
		sd_bus_error_free(&err);
	} else {
		r = sd_bus_reply_method_return(m, NULL);
	}
	if (r < 0)
		g_warning("Unlock: cannot reply: %s", g_strerror(-r));
	sd_bus_message_unref(m);
}

static void
wipe_secret(gpointer secret)
{
	cs_secret_free(secret);
}

static int
method_order_unlock(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	CsDbus *self = userdata;
	g_autoptr(GError) error = NULL;
	g_autoptr(GHashTable) secrets =
	    g_hash_table_new_full(g_str_hash, g_str_equal, NULL, wipe_secret);
	g_autofree char *action = method_to_action(sd_bus_message_get_member(m));
	const char *key = NULL, *code = NULL, *new_pin = NULL;
	GVariantBuilder params;
	CsOrder *order;
	CsRequest req;
	int r = order_call(self, m, &order, &req, ret_error);

	if (r <= 0)
		return r < 0 ? r : 1; /* 0: polkit is being asked */
	r = sd_bus_message_read(m, "oss", &key, &code, &new_pin);
	if (r < 0)
		return r;
	g_variant_builder_init(&params, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&params, "{sv}", "key", g_variant_new_string(key));
	g_hash_table_insert(secrets, "code", g_strdup(code));
	g_hash_table_insert(secrets, "new_pin", g_strdup(new_pin));
	sd_bus_message_ref(m);
	if (!cs_engine_act_with_secrets(self->engine, &req, order, action,
					g_variant_builder_end(&params), secrets, unlock_replied, m,
					&error)) {
		sd_bus_message_unref(m);
		return reply_error(ret_error, error);
	}
	return 1; /* answered by unlock_replied */
}

static int
method_order_send_sms_code(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	CsDbus *self = userdata;
	g_autoptr(GError) error = NULL;
	g_autofree char *masked = NULL;
	CsOrder *order;
	CsRequest req;
	int r = order_call(self, m, &order, &req, ret_error);

	if (r <= 0)
		return r < 0 ? r : 1; /* 0: polkit is being asked */
	if (!cs_engine_send_code(self->engine, &req, order, &masked, &error))
		return reply_error(ret_error, error);
	return sd_bus_reply_method_return(m, "s", masked);
}

static int
method_order_get_invoice(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	CsDbus *self = userdata;
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) pdf = NULL;
	CsOrder *order;
	CsRequest req;
	int r = order_call(self, m, &order, &req, ret_error);

	if (r <= 0)
		return r < 0 ? r : 1; /* 0: polkit is being asked */
	pdf = cs_invoicing_get(self->engine, &req, order, &error);
	if (pdf == NULL)
		return reply_error(ret_error, error);
	return reply_bytes(m, pdf);
}

/* StartPayment replies when the payment is set up: at once for the sandbox, when the
 * cashier worker answers for alipay and wechat (Unavailable after 10 s). */
static void
payment_started(const char *qr_payload, guint64 expires, const GError *error, gpointer user_data)
{
	sd_bus_message *call = user_data;
	int r;

	if (error != NULL) {
		sd_bus_error err = SD_BUS_ERROR_NULL;
		reply_error(&err, error);
		r = sd_bus_reply_method_error(call, &err);
		sd_bus_error_free(&err);
	} else {
		r = sd_bus_reply_method_return(call, "st", qr_payload, (uint64_t)expires);
	}
	if (r < 0)
		g_warning("StartPayment: cannot reply: %s", g_strerror(-r));
}

static void
unref_message(gpointer m)
{
	sd_bus_message_unref(m);
}

static int
method_order_start_payment(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	CsDbus *self = userdata;
	const char *channel = NULL;
	CsOrder *order;
	CsRequest req;
	int r = order_call(self, m, &order, &req, ret_error);

	if (r <= 0)
		return r < 0 ? r : 1; /* 0: polkit is being asked */
	r = sd_bus_message_read(m, "s", &channel);
	if (r < 0)
		return r;
	cs_payments_start(self->payments, &req, order, channel, payment_started,
			  sd_bus_message_ref(m), unref_message);
	return 1; /* replied by payment_started */
}

static int
method_order_update(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	CsDbus *self = userdata;
	g_autoptr(GVariant) fields = NULL;
	g_autoptr(GError) error = NULL;
	CsOrder *order;
	CsRequest req;
	int r = order_call(self, m, &order, &req, ret_error);

	if (r <= 0)
		return r < 0 ? r : 1; /* 0: polkit is being asked */
	if (!read_fields(m, &fields, &error) ||
	    !cs_engine_update_order(self->engine, &req, order, fields, &error))
		return reply_error(ret_error, error);
	return sd_bus_reply_method_return(m, NULL);
}

/*
 * AttachMaterial: everything that can be decided without the content is decided at once
 * (kind, access, state, file name, fd type, size from fstat — a 50 MB file is refused
 * unread — and a free upload slot: RateLimited beyond material_uploads_per_user for the
 * caller's uid or material_uploads_max in all). The content is then read, hashed, sniffed
 * and stored on a worker thread, streamed in 64 KiB chunks to a content-addressed file of
 * the ledger's material store (never held in memory whole; checked through a read-only
 * mapping of that file), so the main loop never waits for it. The engine records the
 * reference back on the main loop, where access and state are checked again (they may
 * have changed meanwhile), and the reply follows.
 */
typedef struct {
	CsDbus *self;
	sd_bus_message *call;
	guint32 uid; /* whose upload slot this holds */
	char *order_id;
	char *kind;
	char *filename;
	int fd; /* our duplicate, read from offset 0 with pread */
	gsize max_size;
	CsBlobWriter *writer;
	/* the worker's results */
	char *sha256;
	gsize size;
	CsMaterialType type;
} MaterialCall;

static void
material_call_free(MaterialCall *mc)
{
	sd_bus_message_unref(mc->call);
	g_free(mc->order_id);
	g_free(mc->kind);
	g_free(mc->filename);
	if (mc->fd >= 0)
		close(mc->fd);
	g_clear_pointer(&mc->writer, cs_blob_writer_free);
	g_free(mc->sha256);
	g_free(mc);
}

static gboolean
upload_slot_take(CsDbus *self, guint32 uid, GError **error)
{
	CsConfig *config = cs_engine_get_config(self->engine);
	guint mine =
	    GPOINTER_TO_UINT(g_hash_table_lookup(self->uploads_by_uid, GUINT_TO_POINTER(uid)));

	if (mine >= config->material_uploads_per_user) {
		g_set_error(error, CS_ERROR, CS_ERROR_RATE_LIMITED,
			    "AttachMaterial: %u uploads of uid %u are running (at most %u at a "
			    "time); send this one when one of them has finished",
			    mine, (guint)uid, config->material_uploads_per_user);
		return FALSE;
	}
	if (self->uploads >= config->material_uploads_max) {
		g_set_error(error, CS_ERROR, CS_ERROR_RATE_LIMITED,
			    "AttachMaterial: %u uploads are running (at most %u at a time); send "
			    "this one when one of them has finished",
			    self->uploads, config->material_uploads_max);
		return FALSE;
	}
	g_hash_table_insert(self->uploads_by_uid, GUINT_TO_POINTER(uid),
			    GUINT_TO_POINTER(mine + 1));
	self->uploads++;
	return TRUE;
}

static void
upload_slot_give_back(CsDbus *self, guint32 uid)
{
	guint mine =
	    GPOINTER_TO_UINT(g_hash_table_lookup(self->uploads_by_uid, GUINT_TO_POINTER(uid)));

	if (mine <= 1)
		g_hash_table_remove(self->uploads_by_uid, GUINT_TO_POINTER(uid));
	else
		g_hash_table_insert(self->uploads_by_uid, GUINT_TO_POINTER(uid),
				    GUINT_TO_POINTER(mine - 1));
	if (self->uploads > 0)
		self->uploads--;
}

/* Copy up to one byte past the limit from the fd into the writer (a file that grew since
 * fstat is still bounded, and the check below then refuses it by its size). */
static gboolean
material_stream(MaterialCall *mc, GError **error)
{
	guint8 chunk[65536];
	off_t offset = 0;

	for (;;) {
		gsize want = MIN(sizeof(chunk), mc->max_size + 1 - (gsize)offset);
		ssize_t n = want > 0 ? pread(mc->fd, chunk, want, offset) : 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "%s: cannot read the file: %s", mc->kind, g_strerror(e));
			return FALSE;
		}
		if (n == 0)
			return TRUE;
		if (!cs_blob_writer_write(mc->writer, chunk, (gsize)n, error))
			return FALSE;
		offset += n;
	}
}

static void
material_read_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	MaterialCall *mc = data;
	g_autoptr(GBytes) mapped = NULL;
	GError *error = NULL;

	if (!material_stream(mc, &error) ||
	    (mapped = cs_blob_writer_map(mc->writer, &error)) == NULL ||
	    !cs_material_check(mc->kind, g_bytes_get_data(mapped, NULL), g_bytes_get_size(mapped),
			       mc->max_size, &mc->type, &error)) {
		g_task_return_error(task, error);
		return;
	}
	g_clear_pointer(&mapped, g_bytes_unref);
	mc->size = cs_blob_writer_get_size(mc->writer);
	if (!cs_blob_writer_commit(mc->writer, &mc->sha256, &error)) {
		g_task_return_error(task, error);
		return;
	}
	g_task_return_boolean(task, TRUE);
}

static void
material_read(GObject *source, GAsyncResult *result, gpointer user_data)
{
	MaterialCall *mc = g_task_get_task_data(G_TASK(result));
	CsDbus *self = mc->self;
	g_autoptr(GError) error = NULL;
	CsOrder *order = NULL;
	CsRequest req;
	int r;

	upload_slot_give_back(self, mc->uid);
	if (g_task_propagate_boolean(G_TASK(result), &error) &&
	    (order = cs_engine_get_order(self->engine, mc->order_id, &error)) != NULL &&
	    request_from_message(self, mc->call, &req, &error))
		cs_engine_attach_material(self->engine, &req, order, mc->kind, mc->filename,
					  cs_material_type_to_mime(mc->type), mc->sha256,
					  (gint64)mc->size, &error);
	if (error != NULL) {
		sd_bus_error err = SD_BUS_ERROR_NULL;
		reply_error(&err, error);
		r = sd_bus_reply_method_error(mc->call, &err);
		sd_bus_error_free(&err);
	} else {
		r = sd_bus_reply_method_return(mc->call, NULL);
	}
	if (r < 0)
		g_warning("AttachMaterial %s: cannot reply: %s", mc->kind, g_strerror(-r));
}

/* The base name of @filename, printable, at most 255 characters; NULL with @error. */
static char *
material_filename(const char *filename, GError **error)
{
	const char *base = strrchr(filename, '/');
	g_autoptr(GError) local = NULL;

	base = base != NULL ? base + 1 : filename;
	if (!cs_validate_text(base, 255, &local)) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "filename: %s",
			    local->message);
		return NULL;
	}
	if (strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "filename: '%s' is not a file name", base);
		return NULL;
	}
	return g_strdup(base);
}

static int
method_order_attach_material(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	CsDbus *self = userdata;
	CsOrder *order;
	CsConfig *config = cs_engine_get_config(self->engine);
	const char *kind = NULL;
	const char *filename = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GTask) task = NULL;
	g_autofree char *name = NULL;
	MaterialCall *mc;
	struct stat st;
	CsRequest req;
	int fd = -1;
	int r = order_call(self, m, &order, &req, ret_error);

	if (r <= 0)
		return r < 0 ? r : 1; /* 0: polkit is being asked */
	r = sd_bus_message_read(m, "ssh", &kind, &filename, &fd);
	if (r < 0)
		return r;
	if (!cs_engine_check_material(self->engine, &req, order, kind, &error))
		return reply_error(ret_error, error);
	name = material_filename(filename, &error);
	if (name == NULL)
		return reply_error(ret_error, error);
	if (fstat(fd, &st) < 0) {
		g_set_error(&error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "%s: cannot stat the file: %s", kind, g_strerror(errno));
		return reply_error(ret_error, error);
	}
	/* A memfd is a regular file too; pipes, sockets and devices are refused (a size known
	 * in advance is what lets a too-large upload be refused unread). */
	if (!S_ISREG(st.st_mode)) {
		g_set_error(&error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "%s: the fd must be a regular file or a memfd, not a %s", kind,
			    S_ISFIFO(st.st_mode)   ? "pipe"
			    : S_ISSOCK(st.st_mode) ? "socket"
			    : S_ISDIR(st.st_mode)  ? "directory"
						   : "device");
		return reply_error(ret_error, error);
	}
	if ((guint64)st.st_size > config->material_max_size) {
		g_autofree char *limit = cs_material_format_limit(config->material_max_size);
		g_set_error(&error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "%s: %" G_GUINT64_FORMAT " bytes is larger than the %s limit", kind,
			    (guint64)st.st_size, limit);
		return reply_error(ret_error, error);
	}
	if (!upload_slot_take(self, req.uid, &error))
		return reply_error(ret_error, error);
	mc = g_new0(MaterialCall, 1);
	mc->self = self;
	mc->uid = req.uid;
	mc->call = sd_bus_message_ref(m);
	mc->order_id = g_strdup(cs_order_get_id(order));
	mc->kind = g_strdup(kind);
	mc->filename = g_steal_pointer(&name);
	mc->max_size = config->material_max_size;
	mc->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	task = g_task_new(NULL, NULL, material_read, NULL);
	g_task_set_task_data(task, mc, (GDestroyNotify)material_call_free);
	if (mc->fd < 0) {
		g_task_return_new_error(task, CS_ERROR, CS_ERROR_INTERNAL,
					"%s: cannot keep the fd: %s", kind, g_strerror(errno));
		return 1;
	}
	mc->writer =
	    cs_blob_writer_new(cs_ledger_get_blobs(cs_engine_get_ledger(self->engine)), &error);
	if (mc->writer == NULL) {
		g_task_return_error(task, g_steal_pointer(&error));
		return 1;
	}
	g_task_run_in_thread(task, material_read_thread);
	return 1; /* replied later */
}

#define CHANGES SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE

static const sd_bus_vtable order_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Id", "s", prop_order_id, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Kind", "s", prop_order_kind, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("SubjectType", "s", prop_order_subject_type, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Vendor", "s", prop_order_vendor, 0, CHANGES),
    SD_BUS_PROPERTY("State", "s", prop_order_state, 0, CHANGES),
    SD_BUS_PROPERTY("Fields",
		    "a{sv}",
		    prop_order_fields,
		    0,
		    SD_BUS_VTABLE_PROPERTY_EXPLICIT | SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
    SD_BUS_PROPERTY("Materials", "as", prop_order_materials, 0, CHANGES),
    SD_BUS_PROPERTY("Missing", "as", prop_order_missing, 0, CHANGES),
    SD_BUS_PROPERTY("NextActions", "as", prop_order_next_actions, 0, CHANGES),
    SD_BUS_PROPERTY("Warnings", "as", prop_order_warnings, 0, CHANGES),
    SD_BUS_PROPERTY("AmountFen", "t", prop_order_amount, 0, CHANGES),
    SD_BUS_PROPERTY("AuthMethod", "s", prop_order_auth_method, 0, CHANGES),
    SD_BUS_PROPERTY("CreatedAt", "t", prop_order_created, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("UpdatedAt", "t", prop_order_updated, 0, CHANGES),
    SD_BUS_PROPERTY("History", "a(tss)", prop_order_history, 0, CHANGES),
    SD_BUS_PROPERTY("PasswordDelivery", "s", prop_order_attr, 0, CHANGES),
    SD_BUS_PROPERTY("PaymentChannel", "s", prop_order_attr, 0, CHANGES),
    SD_BUS_PROPERTY("ReviewNote", "s", prop_order_attr, 0, CHANGES),
    SD_BUS_PROPERTY("TrackingNumber", "s", prop_order_attr, 0, CHANGES),
    SD_BUS_PROPERTY("DueBy", "t", prop_order_attr, 0, CHANGES),
    SD_BUS_PROPERTY("InvoiceAvailable", "b", prop_order_attr, 0, CHANGES),
    SD_BUS_PROPERTY("Progress", "u", prop_order_attr, 0, CHANGES),
    SD_BUS_METHOD_WITH_ARGS("Update",
			    SD_BUS_ARGS("a{sv}", fields),
			    SD_BUS_NO_RESULT,
			    method_order_update,
			    SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS(
	"Confirm", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_order_act, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("AttachMaterial",
			    SD_BUS_ARGS("s", kind, "s", filename, "h", fd),
			    SD_BUS_NO_RESULT,
			    method_order_attach_material,
			    SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS(
	"Submit", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_order_act, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("SendSmsCode",
			    SD_BUS_NO_ARGS,
			    SD_BUS_RESULT("s", masked_phone),
			    method_order_send_sms_code,
			    SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("VerifySmsCode",
			    SD_BUS_ARGS("s", code),
			    SD_BUS_NO_RESULT,
			    method_order_verify_sms_code,
			    SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("StartPayment",
			    SD_BUS_ARGS("s", channel),
			    SD_BUS_RESULT("s", qr_payload, "t", expires),
			    method_order_start_payment,
			    SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("Unlock",
			    SD_BUS_ARGS("o", key, "s", code, "s", new_pin),
			    SD_BUS_NO_RESULT,
			    method_order_unlock,
			    SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("GetInvoice",
			    SD_BUS_NO_ARGS,
			    SD_BUS_RESULT("ay", invoice),
			    method_order_get_invoice,
			    SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("Download",
			    SD_BUS_ARGS("o", key),
			    SD_BUS_NO_RESULT,
			    method_order_act_on_key,
			    SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS(
	"Cancel", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_order_act, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

/* --- Engine announcements → signals ------------------------------------------------- */

/*
 * Order signals are addressed, not broadcast: an order is personal, and a rush of
 * applicants (all root on a test bus, or one platform user) must not make every change
 * go to every connection. An order's InterfacesAdded and PropertiesChanged go to the
 * connections that created it, called it (a Get, GetAll or method on it, or listed it
 * with GetManagedObjects), or were granted it by a query code (FindOrders), and to the
 * connections that asked for every object with GetManagedObjects — each only while it
 * may still see the order (its owner's uid, root, or a grant not yet expired). The values
 * come from the vtable's own getters, so a signal and a Get never disagree.
 */
static gboolean
may_hear(CsDbus *self, const char *name, CsOrder *order)
{
	gpointer uid_plus_one = g_hash_table_lookup(self->uids, name);
	CsRequest req = {.actor = CS_ACTOR_DESKTOP, .sender = name};

	if (uid_plus_one == NULL)
		return FALSE;
	req.uid = GPOINTER_TO_UINT(uid_plus_one) - 1;
	return cs_engine_check_access(self->engine, &req, order, NULL);
}

static GPtrArray *
order_audience(CsDbus *self, CsOrder *order, CsOrderChange change)
{
	GPtrArray *names = g_ptr_array_new();
	const char *id = cs_order_get_id(order);
	const char *caller = current_caller(self);
	GHashTable *watchers;
	GHashTableIter iter;
	gpointer name;

	/* The connection whose call created the order watches it. */
	if (change == CS_ORDER_CREATED && caller != NULL)
		watch_order(self, id, caller);
	watchers = g_hash_table_lookup(self->watchers, id);
	if (watchers != NULL) {
		g_hash_table_iter_init(&iter, watchers);
		while (g_hash_table_iter_next(&iter, &name, NULL))
			if (may_hear(self, name, order))
				g_ptr_array_add(names, name);
	}
	g_hash_table_iter_init(&iter, self->managers);
	while (g_hash_table_iter_next(&iter, &name, NULL))
		if ((watchers == NULL || !g_hash_table_contains(watchers, name)) &&
		    may_hear(self, name, order))
			g_ptr_array_add(names, name);
	return names;
}

/* Append {name: value} of the Order properties whose flags match @want (and not @skip). */
static int
append_order_properties(CsDbus *self,
			sd_bus_message *m,
			const char *path,
			guint64 want,
			guint64 skip,
			gboolean names_only)
{
	int r = names_only ? sd_bus_message_open_container(m, 'a', "s")
			   : sd_bus_message_open_container(m, 'a', "{sv}");

	for (const sd_bus_vtable *v = order_vtable; r >= 0 && v->type != _SD_BUS_VTABLE_END; v++) {
		sd_bus_error err = SD_BUS_ERROR_NULL;

		if (v->type != _SD_BUS_VTABLE_PROPERTY || (v->flags & skip) != 0 ||
		    (want != 0 && (v->flags & want) == 0))
			continue;
		if (names_only) {
			r = sd_bus_message_append_basic(m, 's', v->x.property.member);
			continue;
		}
		r = sd_bus_message_open_container(m, 'e', "sv");
		if (r >= 0)
			r = sd_bus_message_append_basic(m, 's', v->x.property.member);
		if (r >= 0)
			r = sd_bus_message_open_container(m, 'v', v->x.property.signature);
		if (r >= 0)
			r = v->x.property.get(self->bus, path, CS_DBUS_ORDER_IFACE,
					      v->x.property.member, m, self, &err);
		if (r >= 0)
			r = sd_bus_message_close_container(m);
		if (r >= 0)
			r = sd_bus_message_close_container(m);
		sd_bus_error_free(&err);
	}
	if (r >= 0)
		r = sd_bus_message_close_container(m);
	return r;
}

static int
build_interfaces_added(CsDbus *self, const char *path, sd_bus_message **ret)
{
	g_autoptr(sd_bus_message) m = NULL;
	const char *standard[] = {"org.freedesktop.DBus.Peer",
				  "org.freedesktop.DBus.Introspectable",
				  "org.freedesktop.DBus.Properties"};
	int r = sd_bus_message_new_signal(self->bus, &m, CS_DBUS_PATH,
					  "org.freedesktop.DBus.ObjectManager", "InterfacesAdded");

	if (r >= 0)
		r = sd_bus_message_append(m, "o", path);
	if (r >= 0)
		r = sd_bus_message_open_container(m, 'a', "{sa{sv}}");
	for (guint i = 0; r >= 0 && i < G_N_ELEMENTS(standard); i++)
		r = sd_bus_message_append(m, "{sa{sv}}", standard[i], 0);
	if (r >= 0)
		r = sd_bus_message_open_container(m, 'e', "sa{sv}");
	if (r >= 0)
		r = sd_bus_message_append(m, "s", CS_DBUS_ORDER_IFACE);
	if (r >= 0)
		r = append_order_properties(self, m, path, 0, SD_BUS_VTABLE_PROPERTY_EXPLICIT,
					    FALSE);
	if (r >= 0)
		r = sd_bus_message_close_container(m);
	if (r >= 0)
		r = sd_bus_message_close_container(m);
	if (r >= 0)
		*ret = g_steal_pointer(&m);
	return r;
}

static int
build_properties_changed(CsDbus *self, const char *path, sd_bus_message **ret)
{
	g_autoptr(sd_bus_message) m = NULL;
	int r = sd_bus_message_new_signal(self->bus, &m, path, "org.freedesktop.DBus.Properties",
					  "PropertiesChanged");

	if (r >= 0)
		r = sd_bus_message_append(m, "s", CS_DBUS_ORDER_IFACE);
	if (r >= 0)
		r = append_order_properties(self, m, path, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE, 0,
					    FALSE);
	if (r >= 0)
		r = append_order_properties(self, m, path,
					    SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION, 0, TRUE);
	if (r >= 0)
		*ret = g_steal_pointer(&m);
	return r;
}

/* @template, sealed, as a new signal addressed to @destination: the properties are read
 * once per change, not once per connection. */
static int
send_copy(CsDbus *self, sd_bus_message *template, const char *destination)
{
	g_autoptr(sd_bus_message) m = NULL;
	int r = sd_bus_message_new_signal(self->bus, &m, sd_bus_message_get_path(template),
					  sd_bus_message_get_interface(template),
					  sd_bus_message_get_member(template));

	if (r >= 0)
		r = sd_bus_message_set_destination(m, destination);
	if (r >= 0)
		r = sd_bus_message_rewind(template, TRUE);
	if (r >= 0)
		r = sd_bus_message_copy(m, template, TRUE);
	if (r >= 0)
		r = sd_bus_send(self->bus, m, NULL);
	return r;
}

static void
on_order_changed(CsEngine *engine, CsOrder *order, CsOrderChange change, gpointer user_data)
{
	CsDbus *self = user_data;
	g_autofree char *path = order_path(cs_order_get_id(order));
	g_autoptr(GPtrArray) audience = order_audience(self, order, change);
	g_autoptr(sd_bus_message) template = NULL;
	int r;

	if (audience->len == 0)
		return;
	r = change == CS_ORDER_CREATED ? build_interfaces_added(self, path, &template)
				       : build_properties_changed(self, path, &template);
	if (r >= 0)
		r = sd_bus_message_seal(template, 1, 0);
	if (r < 0) {
		g_warning("order %s: cannot build its signal: %s", cs_order_get_id(order),
			  g_strerror(-r));
		return;
	}
	for (guint i = 0; i < audience->len; i++) {
		r = send_copy(self, template, g_ptr_array_index(audience, i));
		if (r < 0) {
			g_warning("order %s: cannot signal %s: %s", cs_order_get_id(order),
				  (const char *)g_ptr_array_index(audience, i), g_strerror(-r));
		}
	}
}

/* --- Life cycle --------------------------------------------------------------------- */

CsDbus *
cs_dbus_new(CsEngine *engine,
	    CsPayments *payments,
	    const char *const *drivers,
	    CsBusType bus_type,
	    GError **error)
{
	g_autoptr(CsDbus) self = g_new0(CsDbus, 1);
	int r;

	self->engine = engine;
	self->payments = payments;
	self->drivers = g_strdupv((char **)drivers);
	self->uids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	self->watchers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					       (GDestroyNotify)g_hash_table_unref);
	self->watching = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					       (GDestroyNotify)g_hash_table_unref);
	self->managers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	self->uploads_by_uid = g_hash_table_new(g_direct_hash, g_direct_equal);

	r = bus_type == CS_BUS_SESSION
		? sd_bus_open_user_with_description(&self->bus, "certseald")
		: sd_bus_open_system_with_description(&self->bus, "certseald");
	if (r < 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_UNAVAILABLE,
			    "cannot connect to the %s bus: %s",
			    bus_type == CS_BUS_SESSION ? "session" : "system", g_strerror(-r));
		return NULL;
	}
	if (bus_type == CS_BUS_SYSTEM)
		self->polkit = cs_polkit_new(self->bus);
	r = sd_event_new(&self->event);
	if (r >= 0)
		r = sd_bus_attach_event(self->bus, self->event, SD_EVENT_PRIORITY_NORMAL);
	if (r >= 0)
		r = sd_bus_add_filter(self->bus, &self->filter_slot, on_incoming, self);
	if (r >= 0)
		r = sd_bus_add_object_manager(self->bus, NULL, CS_DBUS_PATH);
	if (r >= 0)
		r = sd_bus_add_object_vtable(self->bus, NULL, CS_DBUS_PATH, CS_DBUS_MANAGER_IFACE,
					     manager_vtable, self);
	if (r >= 0)
		r = sd_bus_add_fallback_vtable(self->bus, NULL, CS_DBUS_ORDERS_PATH,
					       CS_DBUS_ORDER_IFACE, order_vtable, order_find, self);
	if (r >= 0)
		r = sd_bus_add_node_enumerator(self->bus, NULL, CS_DBUS_ORDERS_PATH,
					       order_enumerate, self);
	if (r >= 0)
		r = sd_bus_match_signal_async(self->bus, &self->name_owner_slot,
					      "org.freedesktop.DBus", "/org/freedesktop/DBus",
					      "org.freedesktop.DBus", "NameOwnerChanged",
					      on_name_owner_changed, NULL, self);
	if (r < 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "cannot export objects: %s",
			    g_strerror(-r));
		return NULL;
	}
	cs_engine_add_listener(engine, on_order_changed, self);

	/* Objects first, then the name: a client that sees the name finds them. */
	r = sd_bus_request_name(self->bus, CS_DBUS_NAME, 0);
	if (r < 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_UNAVAILABLE, "cannot own %s: %s",
			    CS_DBUS_NAME,
			    r == -EEXIST ? "another certseald owns it" : g_strerror(-r));
		return NULL;
	}
	self->name_owned = TRUE;
	self->source = cs_sd_event_source_new(self->event);
	g_source_attach(self->source, NULL);
	return g_steal_pointer(&self);
}

sd_bus *
cs_dbus_get_bus(CsDbus *self)
{
	return self->bus;
}

CsPolkit *
cs_dbus_get_polkit(CsDbus *self)
{
	return self->polkit;
}

const char *
cs_dbus_get_unique_name(CsDbus *self)
{
	const char *name = NULL;

	sd_bus_get_unique_name(self->bus, &name);
	return name;
}

void
cs_dbus_free(CsDbus *self)
{
	if (self == NULL)
		return;
	if (self->engine != NULL)
		cs_engine_remove_listener(self->engine, on_order_changed, self);
	if (self->bus != NULL && self->name_owned)
		sd_bus_release_name(self->bus, CS_DBUS_NAME);
	if (self->source != NULL) {
		g_source_destroy(self->source);
		g_source_unref(self->source);
	}
	self->name_owner_slot = sd_bus_slot_unref(self->name_owner_slot);
	self->filter_slot = sd_bus_slot_unref(self->filter_slot);
	cs_polkit_free(self->polkit);
	if (self->bus != NULL) {
		sd_bus_flush(self->bus);
		sd_bus_detach_event(self->bus);
		sd_bus_close_unref(self->bus);
	}
	if (self->event != NULL)
		sd_event_unref(self->event);
	g_hash_table_unref(self->uids);
	g_hash_table_unref(self->watchers);
	g_hash_table_unref(self->watching);
	g_hash_table_unref(self->managers);
	g_hash_table_unref(self->uploads_by_uid);
	g_strfreev(self->drivers);
	g_free(self);
}

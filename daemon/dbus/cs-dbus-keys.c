/*
 * cs-dbus-keys.c — the Key objects of the D-Bus front.
 *
 * Keys are served through a fallback vtable with a find callback and a node enumerator
 * (like orders), so the object manager's GetManagedObjects and InterfacesAdded /
 * InterfacesRemoved always agree with the key manager's table. Methods that touch a token
 * reply asynchronously: the handler keeps a reference on the call, the key manager runs
 * the driver on a worker thread, and the reply is sent from the main loop when the result
 * comes back. Certificate (the DER bytes) is an explicit property: not part of GetAll or
 * InterfacesAdded, its changes announced as invalidations.
 *
 * PINs arrive as method arguments and go straight to the key manager; they are never
 * logged, stored or echoed in an error.
 *
 * ReadSeal returns the e-seal bytes stored on the key. SealDocument takes the document as
 * an fd: the message's fd is duplicated and handed to the key manager, which checks it
 * with fstat here and reads, hashes and signs it on a worker thread (docs/architecture.md §3.3,
 * §9).
 */
#define G_LOG_DOMAIN "certseald"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "cs-clock.h"
#include "cs-dbus-keys.h"
#include "cs-validate.h"
#include "cs-validity.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_bus_message, sd_bus_message_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_bus_creds, sd_bus_creds_unref)

struct _CsDbusKeys {
	sd_bus *bus;
	CsKeys *keys;
	CsPolkit *polkit; /* NULL on the session bus */
	sd_bus_slot *vtable_slot;
	sd_bus_slot *enum_slot;
};

static char *
key_path(const char *id)
{
	char *path = NULL;

	if (sd_bus_path_encode(CS_DBUS_KEYS_PATH, id, &path) < 0)
		return NULL;
	return path;
}

static CsKey *
key_at(CsDbusKeys *self, const char *path)
{
	g_autofree char *id = NULL;

	if (path == NULL || sd_bus_path_decode(path, CS_DBUS_KEYS_PATH, &id) <= 0 || id[0] == '\0')
		return NULL;
	return cs_keys_lookup(self->keys, id);
}

static int
key_find(sd_bus *bus,
	 const char *path,
	 const char *iface,
	 void *userdata,
	 void **found,
	 sd_bus_error *ret_error)
{
	CsDbusKeys *self = userdata;

	if (key_at(self, path) == NULL)
		return 0;
	*found = self;
	return 1;
}

static int
key_enumerate(
    sd_bus *bus, const char *prefix, void *userdata, char ***nodes, sd_bus_error *ret_error)
{
	CsDbusKeys *self = userdata;
	g_autoptr(GPtrArray) list = cs_keys_list(self->keys);
	char **strv = g_new0(char *, list->len + 1);

	for (guint i = 0; i < list->len; i++)
		strv[i] = key_path(((CsKey *)g_ptr_array_index(list, i))->id);
	/* sd-bus frees the result with free(); GLib's allocator is malloc. */
	*nodes = strv;
	return 0;
}

/* Getters look the key up by path; the find callback already said it exists. */
#define KEY_GETTER(fn)                                                                             \
	static int fn##_impl(CsKey *key, sd_bus_message *reply);                                   \
	static int fn(sd_bus *bus, const char *path, const char *iface, const char *prop,          \
		      sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)              \
	{                                                                                          \
		CsKey *key = key_at(userdata, path);                                               \
		if (key == NULL)                                                                   \
			return sd_bus_error_set(ret_error, SD_BUS_ERROR_UNKNOWN_OBJECT, path);     \
		return fn##_impl(key, reply);                                                      \
	}                                                                                          \
	static int fn##_impl(CsKey *key, sd_bus_message *reply)

static const char *
str_or_empty(const char *s)
{
	return s != NULL ? s : "";
}

/* The first instant the key's certificate may be renewed (docs/architecture.md §1.2), 0 without
 * one. */
KEY_GETTER(prop_renewable_from)
{
	uint64_t from =
	    key->not_after != 0 ? (uint64_t)cs_validity_renewable_from((gint64)key->not_after) : 0;
	return sd_bus_message_append(reply, "t", from);
}
/* Whether the renewal window is open now, on the business clock. */
KEY_GETTER(prop_renewable)
{
	int open = key->not_after != 0 &&
		   cs_validity_renewal_eligible((gint64)key->not_after, cs_clock_now(), NULL);
	return sd_bus_message_append(reply, "b", open);
}
KEY_GETTER(prop_vendor)
{
	return sd_bus_message_append(reply, "s", str_or_empty(key->vendor));
}
KEY_GETTER(prop_serial)
{
	return sd_bus_message_append(reply, "s", str_or_empty(key->serial));
}
KEY_GETTER(prop_label)
{
	return sd_bus_message_append(reply, "s", str_or_empty(key->label));
}
KEY_GETTER(prop_manufacturer)
{
	return sd_bus_message_append(reply, "s", str_or_empty(key->manufacturer));
}
KEY_GETTER(prop_model)
{
	return sd_bus_message_append(reply, "s", str_or_empty(key->model));
}
KEY_GETTER(prop_tries)
{
	return sd_bus_message_append(reply, "i", (int32_t)key->pin_tries_left);
}
KEY_GETTER(prop_locked)
{
	return sd_bus_message_append(reply, "b", key->pin_locked);
}
KEY_GETTER(prop_logged_in)
{
	return sd_bus_message_append(reply, "b", key->logged_in);
}
KEY_GETTER(prop_has_seal)
{
	return sd_bus_message_append(reply, "b", key->has_seal);
}
KEY_GETTER(prop_cert_subject)
{
	return sd_bus_message_append(reply, "s", str_or_empty(key->certificate_subject));
}
KEY_GETTER(prop_cert_serial)
{
	return sd_bus_message_append(reply, "s", str_or_empty(key->certificate_serial));
}
KEY_GETTER(prop_not_before)
{
	return sd_bus_message_append(reply, "t", key->not_before);
}
KEY_GETTER(prop_not_after)
{
	return sd_bus_message_append(reply, "t", key->not_after);
}
KEY_GETTER(prop_certificate)
{
	gsize len = 0;
	const void *data = key->certificate != NULL ? g_bytes_get_data(key->certificate, &len) : "";

	return sd_bus_message_append_array(reply, 'y', data, len);
}

/* --- methods: reply when the key manager is done ------------------------------------ */

static void
on_done(GBytes *result, const GError *error, gpointer user_data)
{
	sd_bus_message *m = user_data;
	int r;

	if (error != NULL) {
		const char *name = error->domain == CS_ERROR
				       ? cs_error_code_to_dbus_name(error->code)
				       : "org.certseal.Error.Internal";
		g_autofree char *message = cs_sanitize_message(error->message, 0);

		r = sd_bus_reply_method_errorf(m, name, "%s", message);
	} else if (result != NULL) {
		g_autoptr(sd_bus_message) reply = NULL;
		gsize len = 0;
		const void *data = g_bytes_get_data(result, &len);
		r = sd_bus_message_new_method_return(m, &reply);
		if (r >= 0)
			r = sd_bus_message_append_array(reply, 'y', data != NULL ? data : "", len);
		if (r >= 0)
			r = sd_bus_send(NULL, reply, NULL);
	} else {
		r = sd_bus_reply_method_return(m, NULL);
	}
	if (r < 0)
		g_warning("cannot reply to %s: %s", sd_bus_message_get_member(m), g_strerror(-r));
	sd_bus_message_unref(m);
}

/* The caller's effective uid (the bus driver's, from SO_PEERCRED at connect). */
static gboolean
caller_uid(sd_bus_message *m, uid_t *uid, sd_bus_error *ret_error)
{
	g_autoptr(sd_bus_creds) creds = NULL;
	int r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID, &creds);

	if (r >= 0)
		r = sd_bus_creds_get_euid(creds, uid);
	if (r < 0) {
		sd_bus_error_setf(ret_error, "org.certseal.Error.AccessDenied",
				  "cannot tell who the caller is: %s", g_strerror(-r));
		return FALSE;
	}
	return TRUE;
}

/* The id of the key the call is for, when the caller may use it: a key logged in by
 * another uid is theirs alone (cs_keys_check_user). @uid gets the caller's uid. */
static const char *
key_id_of(CsDbusKeys *self, sd_bus_message *m, uid_t *uid, sd_bus_error *ret_error)
{
	CsKey *key = key_at(self, sd_bus_message_get_path(m));
	g_autoptr(GError) error = NULL;

	if (key == NULL) {
		sd_bus_error_setf(ret_error, "org.certseal.Error.KeyRemoved",
				  "the key was removed");
		return NULL;
	}
	if (!caller_uid(m, uid, ret_error))
		return NULL;
	if (!cs_keys_check_user(self->keys, key->id, (guint32)*uid, &error)) {
		sd_bus_error_set(ret_error, cs_error_code_to_dbus_name(error->code),
				 error->message);
		return NULL;
	}
	return key->id;
}

static int
method_login(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	CsDbusKeys *self = userdata;
	uid_t uid = 0;
	const char *pin = NULL;
	const char *id;
	int r;

	CS_POLKIT_GATE(self->polkit, m, ret_error);
	r = sd_bus_message_read(m, "s", &pin);

	if (r < 0)
		return r;
	if ((id = key_id_of(self, m, &uid, ret_error)) == NULL)
		return -ENODEV;
	if (pin[0] == '\0')
		return sd_bus_error_set(ret_error, "org.certseal.Error.InvalidInput",
					"pin: must not be empty");
	cs_keys_login(self->keys, id, (guint32)uid, pin, on_done, sd_bus_message_ref(m));
	return 1;
}

static int
method_logout(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	CsDbusKeys *self = userdata;
	uid_t uid = 0;
	const char *id;

	CS_POLKIT_GATE(self->polkit, m, ret_error);
	id = key_id_of(self, m, &uid, ret_error);

	if (id == NULL)
		return -ENODEV;
	cs_keys_logout(self->keys, id, on_done, sd_bus_message_ref(m));
	return 1;
}

static int
method_change_pin(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	CsDbusKeys *self = userdata;
	uid_t uid = 0;
	const char *old_pin = NULL, *new_pin = NULL;
	const char *id;
	int r;

	CS_POLKIT_GATE(self->polkit, m, ret_error);
	r = sd_bus_message_read(m, "ss", &old_pin, &new_pin);

	if (r < 0)
		return r;
	if ((id = key_id_of(self, m, &uid, ret_error)) == NULL)
		return -ENODEV;
	if (old_pin[0] == '\0')
		return sd_bus_error_set(ret_error, "org.certseal.Error.InvalidInput",
					"old_pin: must not be empty");
	cs_keys_change_pin(self->keys, id, old_pin, new_pin, on_done, sd_bus_message_ref(m));
	return 1;
}

static int
method_read_seal(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	CsDbusKeys *self = userdata;
	uid_t uid = 0;
	const char *id;

	CS_POLKIT_GATE(self->polkit, m, ret_error);
	id = key_id_of(self, m, &uid, ret_error);

	if (id == NULL)
		return -ENODEV;
	cs_keys_read_seal(self->keys, id, on_done, sd_bus_message_ref(m));
	return 1;
}

static int
method_seal_document(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	CsDbusKeys *self = userdata;
	uid_t uid = 0;
	const char *filename = NULL;
	const char *id;
	int fd = -1;
	int r;

	CS_POLKIT_GATE(self->polkit, m, ret_error);
	r = sd_bus_message_read(m, "sh", &filename, &fd);

	if (r < 0)
		return r;
	if ((id = key_id_of(self, m, &uid, ret_error)) == NULL)
		return -ENODEV;
	/* The message owns @fd; the key manager gets its own copy. */
	fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return sd_bus_error_setf(ret_error, "org.certseal.Error.InvalidInput",
					 "fd: cannot use it: %s", g_strerror(errno));
	cs_keys_seal_document(self->keys, id, filename, fd, on_done, sd_bus_message_ref(m));
	return 1;
}

#define CHANGES SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE

static const sd_bus_vtable key_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Vendor", "s", prop_vendor, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Serial", "s", prop_serial, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Label", "s", prop_label, 0, CHANGES),
    SD_BUS_PROPERTY("Manufacturer", "s", prop_manufacturer, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Model", "s", prop_model, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("PinTriesLeft", "i", prop_tries, 0, CHANGES),
    SD_BUS_PROPERTY("PinLocked", "b", prop_locked, 0, CHANGES),
    SD_BUS_PROPERTY("LoggedIn", "b", prop_logged_in, 0, CHANGES),
    SD_BUS_PROPERTY("HasSeal", "b", prop_has_seal, 0, CHANGES),
    SD_BUS_PROPERTY("CertificateSubject", "s", prop_cert_subject, 0, CHANGES),
    SD_BUS_PROPERTY("CertificateSerial", "s", prop_cert_serial, 0, CHANGES),
    SD_BUS_PROPERTY("NotBefore", "t", prop_not_before, 0, CHANGES),
    SD_BUS_PROPERTY("NotAfter", "t", prop_not_after, 0, CHANGES),
    SD_BUS_PROPERTY("RenewableFrom", "t", prop_renewable_from, 0, CHANGES),
    SD_BUS_PROPERTY("Renewable", "b", prop_renewable, 0, 0),
    SD_BUS_PROPERTY("Certificate",
		    "ay",
		    prop_certificate,
		    0,
		    SD_BUS_VTABLE_PROPERTY_EXPLICIT | SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
    SD_BUS_METHOD_WITH_ARGS(
	"Login", SD_BUS_ARGS("s", pin), SD_BUS_NO_RESULT, method_login, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS(
	"Logout", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_logout, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("ChangePin",
			    SD_BUS_ARGS("s", old_pin, "s", new_pin),
			    SD_BUS_NO_RESULT,
			    method_change_pin,
			    SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("ReadSeal",
			    SD_BUS_NO_ARGS,
			    SD_BUS_RESULT("ay", seal),
			    method_read_seal,
			    SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("SealDocument",
			    SD_BUS_ARGS("s", filename, "h", fd),
			    SD_BUS_RESULT("ay", signature),
			    method_seal_document,
			    SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

static void
on_key_changed(CsKeys *keys, CsKey *key, CsKeyChange change, gpointer user_data)
{
	CsDbusKeys *self = user_data;
	g_autofree char *path = key_path(key->id);
	int r;

	if (path == NULL)
		return;
	switch (change) {
	case CS_KEY_ADDED:
		r = sd_bus_emit_object_added(self->bus, path);
		break;
	case CS_KEY_REMOVED:
		r = sd_bus_emit_object_removed(self->bus, path);
		break;
	default:
		r = sd_bus_emit_properties_changed_strv(self->bus, path, CS_DBUS_KEY_IFACE, NULL);
		break;
	}
	if (r < 0)
		g_warning("key %s: cannot emit signal: %s", key->id, g_strerror(-r));
}

CsDbusKeys *
cs_dbus_keys_new(sd_bus *bus, CsPolkit *polkit, CsKeys *keys, GError **error)
{
	CsDbusKeys *self = g_new0(CsDbusKeys, 1);
	int r;

	self->bus = sd_bus_ref(bus);
	self->polkit = polkit;
	self->keys = keys;
	r = sd_bus_add_fallback_vtable(bus, &self->vtable_slot, CS_DBUS_KEYS_PATH,
				       CS_DBUS_KEY_IFACE, key_vtable, key_find, self);
	if (r >= 0)
		r = sd_bus_add_node_enumerator(bus, &self->enum_slot, CS_DBUS_KEYS_PATH,
					       key_enumerate, self);
	if (r < 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "cannot export keys: %s",
			    g_strerror(-r));
		cs_dbus_keys_free(self);
		return NULL;
	}
	cs_keys_set_listener(keys, on_key_changed, self);
	return self;
}

void
cs_dbus_keys_free(CsDbusKeys *self)
{
	if (self == NULL)
		return;
	if (self->keys != NULL)
		cs_keys_set_listener(self->keys, NULL, NULL);
	self->vtable_slot = sd_bus_slot_unref(self->vtable_slot);
	self->enum_slot = sd_bus_slot_unref(self->enum_slot);
	sd_bus_unref(self->bus);
	g_free(self);
}

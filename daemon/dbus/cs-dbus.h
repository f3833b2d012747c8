/*
 * cs-dbus.h — the D-Bus front (sd-bus), bus name org.certseal.CertSeal1.
 *
 * A front translates: it unpacks a call, builds a CsRequest carrying the caller's
 * identity, asks the engine, and packs the reply; engine announcements become
 * ObjectManager and PropertiesChanged signals. No business rule lives here.
 */
#pragma once

#include <glib.h>

#include "cs-engine.h"
#include "cs-payments.h"
#include "cs-polkit.h"

G_BEGIN_DECLS

#define CS_DBUS_NAME "org.certseal.CertSeal1"
#define CS_DBUS_PATH "/org/certseal/CertSeal1"
#define CS_DBUS_ORDERS_PATH CS_DBUS_PATH "/orders"
#define CS_DBUS_MANAGER_IFACE "org.certseal.CertSeal1.Manager"
#define CS_DBUS_ORDER_IFACE "org.certseal.CertSeal1.Order"

typedef struct _CsDbus CsDbus;

typedef enum {
	CS_BUS_SYSTEM,
	CS_BUS_SESSION,
} CsBusType;

/*
 * Connect, export the objects, attach to the GLib main context and own the bus name.
 * @drivers: names of the loaded drivers, for the Manager's Drivers property.
 */
CsDbus *cs_dbus_new(CsEngine *engine,
		    CsPayments *payments,
		    const char *const *drivers,
		    CsBusType bus_type,
		    GError **error);
/* Release the name, flush queued messages and disconnect. */
void cs_dbus_free(CsDbus *dbus);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsDbus, cs_dbus_free)

/* Our connection, for the other object families of the front (cs-dbus-keys.c). */
struct sd_bus;
struct sd_bus *cs_dbus_get_bus(CsDbus *dbus);

/* Who asks polkit for the other object families; NULL on the session bus. */
CsPolkit *cs_dbus_get_polkit(CsDbus *dbus);

/* The unique name of our connection (for benchmarks and logs). */
const char *cs_dbus_get_unique_name(CsDbus *dbus);

G_END_DECLS

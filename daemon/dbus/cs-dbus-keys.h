/*
 * cs-dbus-keys.h — Key objects on D-Bus: /org/certseal/CertSeal1/keys/<id>,
 * org.certseal.CertSeal1.Key (docs/architecture.md §3.3), backed by the key manager.
 */
#pragma once

#include <systemd/sd-bus.h>

#include "cs-keys.h"
#include "cs-polkit.h"

G_BEGIN_DECLS

#define CS_DBUS_KEYS_PATH "/org/certseal/CertSeal1/keys"
#define CS_DBUS_KEY_IFACE "org.certseal.CertSeal1.Key"

typedef struct _CsDbusKeys CsDbusKeys;

/* Export the keys of @keys on @bus (whose ObjectManager at /org/certseal/CertSeal1 then
 * reports them) and announce arrivals and removals; every method asks @polkit first (NULL:
 * nothing to ask, the session bus). All three are borrowed. */
CsDbusKeys *cs_dbus_keys_new(sd_bus *bus, CsPolkit *polkit, CsKeys *keys, GError **error);
void cs_dbus_keys_free(CsDbusKeys *front);

G_END_DECLS

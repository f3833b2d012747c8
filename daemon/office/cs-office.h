/*
 * cs-office.h — the office front: CSO1 over ZeroMQ (docs/architecture.md §3.4,
 * dbus/office-protocol.md).
 *
 * A ROUTER for workers (people through certseal-office, automated gateways) and a PUB for
 * order events, both CURVE servers authenticated by a ZAP handler that allow-lists the
 * public keys of office_dir (plus the admin key of the state directory). The front only
 * translates: roles are checked against the §3.4 table, and every CALL and DONE goes to
 * the engine (cs-tasks, cs-payment) as a CsRequest carrying the worker's user id and
 * roles, where it is recorded in the ledger.
 */
#pragma once

#include <glib.h>

#include "cs-engine.h"
#include "cs-tasks.h"
#include "cs-vault.h"

G_BEGIN_DECLS

typedef struct _CsOffice CsOffice;

/* Create keys on first start, load the allow-list, bind ZAP then the sockets, and attach
 * them to the default main context. Refuses (fatal at start-up) a non-loopback tcp://
 * endpoint without CURVE, CURVE off outside test_mode, and an endpoint that cannot bind. */
/* @tasks is borrowed: the queue the office dispatches. */
CsOffice *cs_office_new(
    CsEngine *engine, CsTasks *tasks, CsVault *vault, const char *state_dir, GError **error);
void cs_office_free(CsOffice *office);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsOffice, cs_office_free)

const char *cs_office_get_endpoint(CsOffice *office);
const char *cs_office_get_events_endpoint(CsOffice *office);
/* The task queue the office dispatches (borrowed). */
CsTasks *cs_office_get_tasks(CsOffice *office);

G_END_DECLS

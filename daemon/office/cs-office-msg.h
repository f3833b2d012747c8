/*
 * cs-office-msg.h — the frames of the CSO1 office protocol (docs/architecture.md §3.4,
 * dbus/office-protocol.md).
 *
 * A message between a worker's DEALER and the daemon's ROUTER is three frames:
 *   "CSO1", a verb, a JSON object body (HEARTBEAT may omit the body).
 * The ROUTER sees the peer's identity frame in front; this parser takes the frames after
 * it. Parsing is pure (no sockets, no state) so that it can be fuzzed on its own.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define CS_OFFICE_PROTOCOL "CSO1"
/* The largest body accepted; the ROUTER's ZMQ_MAXMSGSIZE drops bigger messages before they
 * are read whole. */
#define CS_OFFICE_MAX_BODY (1024 * 1024)

typedef enum {
	CS_OFFICE_READY,
	CS_OFFICE_TASK,
	CS_OFFICE_DONE,
	CS_OFFICE_FAIL,
	CS_OFFICE_HEARTBEAT,
	CS_OFFICE_CALL,
	CS_OFFICE_RESULT,
	CS_OFFICE_ERROR,
	CS_OFFICE_N_VERBS,
} CsOfficeVerb;

typedef struct {
	CsOfficeVerb verb;
	JsonNode *root;	  /* an object node, {} when the body was absent */
	JsonObject *body; /* borrowed from root */
} CsOfficeMsg;

void cs_office_msg_free(CsOfficeMsg *msg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsOfficeMsg, cs_office_msg_free)

const char *cs_office_verb_to_string(CsOfficeVerb verb);

/* Parse a message of @n frames (GBytes); @frames holds at least the first three of them
 * (or all when fewer), the rest are counted, not read. CS_ERROR_INVALID_INPUT names what is wrong:
 * the protocol tag, a missing frame, an unknown verb, a body that is too large, not UTF-8, not JSON
 * or not an object, or a body without the members its verb requires. */
CsOfficeMsg *cs_office_msg_parse(GBytes *const *frames, guint n, GError **error);

/* A body's string member, or NULL when absent or not a string. */
const char *cs_office_body_get_string(JsonObject *body, const char *name);

/* Serialise @body (may be NULL for {}) compactly. */
char *cs_office_body_to_string(JsonObject *body);

G_END_DECLS

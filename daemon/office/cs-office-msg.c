/*
 * cs-office-msg.c — parsing CSO1 frames.
 *
 * Invariants: every byte comes from an unauthenticated or at least untrusted peer, so
 * nothing here allocates more than the frame sizes allow, the body is checked for UTF-8
 * before json-glib sees it, and a message is either returned whole and well-formed (an
 * object body holding the members its verb requires, with the right JSON types) or
 * refused with an error naming the first problem.
 */
#define G_LOG_DOMAIN "certseald"

#include <string.h>

#include "certseal/plugin.h"
#include "cs-json.h"
#include "cs-office-msg.h"

static const char *const verb_names[CS_OFFICE_N_VERBS] = {
    [CS_OFFICE_READY] = "READY",   [CS_OFFICE_TASK] = "TASK",		[CS_OFFICE_DONE] = "DONE",
    [CS_OFFICE_FAIL] = "FAIL",	   [CS_OFFICE_HEARTBEAT] = "HEARTBEAT", [CS_OFFICE_CALL] = "CALL",
    [CS_OFFICE_RESULT] = "RESULT", [CS_OFFICE_ERROR] = "ERROR",
};

/* The string members each verb requires (NULL-terminated). */
static const char *const ready_members[] = {"service", NULL};
static const char *const lease_members[] = {"lease", NULL};
static const char *const call_members[] = {"method", NULL};
static const char *const no_members[] = {NULL};

static const char *const *const required_members[CS_OFFICE_N_VERBS] = {
    [CS_OFFICE_READY] = ready_members,	[CS_OFFICE_TASK] = lease_members,
    [CS_OFFICE_DONE] = lease_members,	[CS_OFFICE_FAIL] = lease_members,
    [CS_OFFICE_HEARTBEAT] = no_members, [CS_OFFICE_CALL] = call_members,
    [CS_OFFICE_RESULT] = no_members,	[CS_OFFICE_ERROR] = no_members,
};

void
cs_office_msg_free(CsOfficeMsg *msg)
{
	if (msg == NULL)
		return;
	g_clear_pointer(&msg->root, json_node_unref);
	g_free(msg);
}

const char *
cs_office_verb_to_string(CsOfficeVerb verb)
{
	return verb < CS_OFFICE_N_VERBS ? verb_names[verb] : "?";
}

static gboolean
bytes_equal_str(GBytes *bytes, const char *s)
{
	gsize len = 0;
	const void *data = g_bytes_get_data(bytes, &len);

	return len == strlen(s) && (len == 0 || memcmp(data, s, len) == 0);
}

static gboolean
parse_verb(GBytes *frame, CsOfficeVerb *verb)
{
	for (guint i = 0; i < CS_OFFICE_N_VERBS; i++) {
		if (bytes_equal_str(frame, verb_names[i])) {
			*verb = (CsOfficeVerb)i;
			return TRUE;
		}
	}
	return FALSE;
}

static JsonNode *
parse_body(GBytes *frame, GError **error)
{
	g_autoptr(GError) local = NULL;
	gsize len = 0;
	const char *data = g_bytes_get_data(frame, &len);
	g_autoptr(JsonNode) root = NULL;

	if (len > CS_OFFICE_MAX_BODY) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "body: %" G_GSIZE_FORMAT " bytes, more than %d", len,
			    CS_OFFICE_MAX_BODY);
		return NULL;
	}
	if (len == 0 || !g_utf8_validate_len(data, len, NULL)) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    len == 0 ? "body: empty" : "body: not UTF-8");
		return NULL;
	}
	root = cs_json_parse_untrusted(data, (gssize)len, &local);
	if (root == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "body: %s", local->message);
		return NULL;
	}
	if (!JSON_NODE_HOLDS_OBJECT(root)) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "body: must be a JSON object");
		return NULL;
	}
	return g_steal_pointer(&root);
}

const char *
cs_office_body_get_string(JsonObject *body, const char *name)
{
	JsonNode *node = body != NULL ? json_object_get_member(body, name) : NULL;

	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) ||
	    json_node_get_value_type(node) != G_TYPE_STRING)
		return NULL;
	return json_node_get_string(node);
}

/* A CALL's id comes back in the reply as it came: only an integer or a string can (a number
 * like 1e999999 reads as infinity, which JSON cannot write; a fraction may not round-trip). */
static gboolean
check_call_id(JsonObject *body, GError **error)
{
	JsonNode *id = json_object_get_member(body, "id");

	if (id == NULL)
		return TRUE;
	if (JSON_NODE_HOLDS_VALUE(id) && (json_node_get_value_type(id) == G_TYPE_INT64 ||
					  json_node_get_value_type(id) == G_TYPE_STRING))
		return TRUE;
	g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "id: an integer or a string, when given");
	return FALSE;
}

CsOfficeMsg *
cs_office_msg_parse(GBytes *const *frames, guint n, GError **error)
{
	g_autoptr(CsOfficeMsg) msg = g_new0(CsOfficeMsg, 1);
	const char *const *members;

	if (n < 2) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "missing frames: %u of at least 2 (\"CSO1\", verb, body)", n);
		return NULL;
	}
	if (!bytes_equal_str(frames[0], CS_OFFICE_PROTOCOL)) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "protocol: the first frame must be \"CSO1\"");
		return NULL;
	}
	if (!parse_verb(frames[1], &msg->verb)) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "verb: unknown");
		return NULL;
	}
	if (n > 3) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "frames: %u, at most 3 (\"CSO1\", verb, body)", n);
		return NULL;
	}
	if (n == 3) {
		msg->root = parse_body(frames[2], error);
		if (msg->root == NULL)
			return NULL;
	} else if (msg->verb == CS_OFFICE_HEARTBEAT) {
		msg->root = json_node_init_object(json_node_alloc(), json_object_new());
		json_object_unref(json_node_get_object(msg->root));
	} else {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "missing frames: %s needs a body", verb_names[msg->verb]);
		return NULL;
	}
	msg->body = json_node_get_object(msg->root);
	members = required_members[msg->verb];
	for (guint i = 0; members[i] != NULL; i++) {
		if (cs_office_body_get_string(msg->body, members[i]) == NULL) {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "body: %s needs the string member \"%s\"",
				    verb_names[msg->verb], members[i]);
			return NULL;
		}
	}
	if (msg->verb == CS_OFFICE_CALL && !check_call_id(msg->body, error))
		return NULL;
	return g_steal_pointer(&msg);
}

char *
cs_office_body_to_string(JsonObject *body)
{
	g_autoptr(JsonNode) node = json_node_alloc();
	g_autoptr(JsonObject) empty = NULL;

	if (body == NULL)
		body = empty = json_object_new();
	json_node_init_object(node, body);
	return json_to_string(node, FALSE);
}

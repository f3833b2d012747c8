/*
 * cs-json.h — canonical JSON writing, and reading JSON that comes from outside.
 *
 * One writer serves the ledger's event encoding (docs/architecture.md §3.5: compact, keys sorted by
 * byte order, UTF-8 as is, no insignificant whitespace) and the CLIs' --json output, so
 * both speak the same bytes. Strings escape only '"', '\\' and control characters
 * (\b \f \n \r \t, others as \u00xx with lowercase hex) — the same bytes as Python's
 * json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False), which an
 * auditor can use to recompute the chain independently.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Append @s (valid UTF-8) as a JSON string literal; NULL appends null. */
void cs_json_append_string(GString *out, const char *s);

/*
 * Append @value as canonical JSON: strings; booleans; integers of any width as numbers;
 * doubles as numbers (shortest round-trip form, "null" if not finite); arrays ("a*") as
 * lists; dictionaries ("a{s*}") and "a{sv}" as objects with keys sorted; variants as
 * their contents; maybes as the value or null; tuples as lists; byte arrays ("ay") as
 * lowercase hex strings; object paths and signatures as strings.
 */
void cs_json_append_variant(GString *out, GVariant *value);

/* A new string holding cs_json_append_variant() of @value. */
char *cs_json_from_variant(GVariant *value);

/* The deepest nesting of arrays and objects accepted from outside. json-glib recurses once
 * a level with no limit of its own, so a body of a few hundred KB of '[' overflows the
 * stack; nothing the daemon reads nests more than a handful of levels. */
#define CS_JSON_MAX_DEPTH 64

/*
 * Check JSON text from outside before a parser sees it, in one pass without recursion:
 * arrays and objects nested at most CS_JSON_MAX_DEPTH deep, no NUL byte and no \u0000
 * escape (a JSON string becomes a C string, which would end there: "info\u0000evil"
 * would read as "info"). CS_ERROR_INVALID_INPUT says what and at which byte. The text
 * need not be valid JSON otherwise: the parser says so.
 */
gboolean cs_json_check_untrusted(const char *data, gsize len, GError **error);

/*
 * The one way to parse JSON from outside (office bodies, payment notifications, the
 * CLI's fields files): cs_json_check_untrusted(), then json-glib, then no number that is
 * not finite (1e999999 reads as infinity, which no JSON writer can write back). @len may
 * be -1 for a NUL-terminated string. The root node (of any type) or NULL with
 * CS_ERROR_INVALID_INPUT.
 */
JsonNode *cs_json_parse_untrusted(const char *data, gssize len, GError **error);

G_END_DECLS

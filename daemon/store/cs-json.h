/*
 * cs-json.h — canonical JSON writing.
 *
 * One writer serves the ledger's event encoding (DESIGN §3.5: compact, keys sorted by
 * byte order, UTF-8 as is, no insignificant whitespace) and the CLIs' --json output, so
 * both speak the same bytes. Strings escape only '"', '\\' and control characters
 * (\b \f \n \r \t, others as \u00xx with lowercase hex) — the same bytes as Python's
 * json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False), which an
 * auditor can use to recompute the chain independently.
 */
#pragma once

#include <glib.h>

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

G_END_DECLS

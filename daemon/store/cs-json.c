/*
 * cs-json.c — canonical JSON writing (docs/architecture.md §3.5), and the checks JSON from outside
 * passes before json-glib parses it (at the end of the file).
 *
 * The ledger hashes the JSON of every event, so these bytes are a contract: an auditor
 * must be able to recompute them with Python's
 *   json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
 * and get the same hash. Everything here follows that function, not taste:
 *   - no whitespace between tokens;
 *   - object keys sorted by byte order of their UTF-8 (the same as Python's code-point
 *     order, because UTF-8 preserves it);
 *   - strings escape only '"', '\\' and U+0000…U+001F (\b \f \n \r \t by name, the rest
 *     as \u00xx, lowercase hex); everything else, DEL and U+2028 included, as is;
 *   - doubles in the shortest form that reads back to the same value, written the way
 *     Python's repr() writes them (1.0, 0.1, 1e+16, 1e-05).
 *
 * Invariants: the output is valid UTF-8 for any GVariant (GVariant strings are UTF-8;
 * a C string handed to cs_json_append_string() that is not is repaired with U+FFFD rather
 * than copied, so no caller can smuggle invalid bytes into a hashed event).
 */
#define G_LOG_DOMAIN "certseald"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certseal/plugin.h"
#include "cs-json.h"

static void
append_escaped(GString *out, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	g_string_append_c(out, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		switch (*p) {
		case '"':
			g_string_append(out, "\\\"");
			break;
		case '\\':
			g_string_append(out, "\\\\");
			break;
		case '\b':
			g_string_append(out, "\\b");
			break;
		case '\f':
			g_string_append(out, "\\f");
			break;
		case '\n':
			g_string_append(out, "\\n");
			break;
		case '\r':
			g_string_append(out, "\\r");
			break;
		case '\t':
			g_string_append(out, "\\t");
			break;
		default:
			if (*p < 0x20) {
				g_string_append(out, "\\u00");
				g_string_append_c(out, hex[*p >> 4]);
				g_string_append_c(out, hex[*p & 0xf]);
			} else {
				g_string_append_c(out, (char)*p);
			}
		}
	}
	g_string_append_c(out, '"');
}

void
cs_json_append_string(GString *out, const char *s)
{
	g_autofree char *repaired = NULL;

	if (s == NULL) {
		g_string_append(out, "null");
		return;
	}
	if (!g_utf8_validate(s, -1, NULL)) {
		repaired = g_utf8_make_valid(s, -1);
		s = repaired;
	}
	append_escaped(out, s);
}

/*
 * Python's float repr: the shortest digit string that reads back to @d, positional when
 * the decimal exponent is in [-4, 16), scientific otherwise with at least two exponent
 * digits; a positional integer value keeps ".0".
 */
static void
append_double(GString *out, double d)
{
	char buf[40];
	char digits[20];
	gsize n_digits = 0;
	int exponent;
	char *e;

	if (!isfinite(d)) {
		/* Python would write NaN/Infinity, which is not JSON; cs-json.h promises null. */
		g_string_append(out, "null");
		return;
	}
	/* g_ascii_* so that a locale with a decimal comma never changes hashed bytes. */
	for (int precision = 1; precision <= 17; precision++) {
		char format[8];

		g_snprintf(format, sizeof(format), "%%.%de", precision - 1);
		g_ascii_formatd(buf, sizeof(buf), format, d);
		if (g_ascii_strtod(buf, NULL) == d)
			break;
	}
	/* buf is now "[-]D[.DDD]e[+-]XX". */
	e = strchr(buf, 'e');
	exponent = atoi(e + 1);
	for (const char *p = buf; p < e; p++) {
		if (g_ascii_isdigit(*p))
			digits[n_digits++] = *p;
	}
	/* No trailing zeros to strip: with one digit fewer the shortest form would also have
	 * read back, so its last digit is never 0 (except for 0 itself). */
	digits[n_digits] = '\0';

	if (buf[0] == '-')
		g_string_append_c(out, '-');
	if (exponent >= -4 && exponent < 16) {
		if (exponent < 0) {
			g_string_append(out, "0.");
			for (int i = -1; i > exponent; i--)
				g_string_append_c(out, '0');
			g_string_append(out, digits);
		} else if ((gsize)exponent + 1 >= n_digits) {
			g_string_append(out, digits);
			for (gsize i = n_digits; i < (gsize)exponent + 1; i++)
				g_string_append_c(out, '0');
			g_string_append(out, ".0");
		} else {
			g_string_append_len(out, digits, exponent + 1);
			g_string_append_c(out, '.');
			g_string_append(out, digits + exponent + 1);
		}
		return;
	}
	g_string_append_c(out, digits[0]);
	if (n_digits > 1) {
		g_string_append_c(out, '.');
		g_string_append(out, digits + 1);
	}
	g_string_append_printf(out, "e%c%02d", exponent < 0 ? '-' : '+', ABS(exponent));
}

static void append_value(GString *out, GVariant *value);

/* The key of a dictionary entry as an object key: strings as they are, other basic
 * types in their JSON spelling (Python turns int and bool keys into strings too). */
static char *
dict_key_to_string(GVariant *key)
{
	GString *s;

	if (g_variant_is_of_type(key, G_VARIANT_TYPE_STRING) ||
	    g_variant_is_of_type(key, G_VARIANT_TYPE_OBJECT_PATH) ||
	    g_variant_is_of_type(key, G_VARIANT_TYPE_SIGNATURE))
		return g_variant_dup_string(key, NULL);
	s = g_string_new(NULL);
	append_value(s, key);
	return g_string_free(s, FALSE);
}

typedef struct {
	char *key;
	GVariant *value;
} JsonMember;

static void
json_member_free(gpointer data)
{
	JsonMember *m = data;

	g_free(m->key);
	g_variant_unref(m->value);
	g_free(m);
}

static gint
json_member_compare(gconstpointer a, gconstpointer b)
{
	const JsonMember *ma = *(const JsonMember *const *)a;
	const JsonMember *mb = *(const JsonMember *const *)b;

	/* strcmp compares as unsigned char: byte order of UTF-8 = code-point order. */
	return strcmp(ma->key, mb->key);
}

static void
append_object(GString *out, GVariant *dict)
{
	g_autoptr(GPtrArray) members = g_ptr_array_new_with_free_func(json_member_free);
	gsize n = g_variant_n_children(dict);

	for (gsize i = 0; i < n; i++) {
		g_autoptr(GVariant) entry = g_variant_get_child_value(dict, i);
		g_autoptr(GVariant) key = g_variant_get_child_value(entry, 0);
		JsonMember *m = g_new0(JsonMember, 1);

		m->key = dict_key_to_string(key);
		m->value = g_variant_get_child_value(entry, 1);
		g_ptr_array_add(members, m);
	}
	/* g_ptr_array_sort is a stable merge sort: duplicate keys keep their order. */
	g_ptr_array_sort(members, json_member_compare);

	g_string_append_c(out, '{');
	for (guint i = 0; i < members->len; i++) {
		JsonMember *m = g_ptr_array_index(members, i);

		if (i > 0)
			g_string_append_c(out, ',');
		cs_json_append_string(out, m->key);
		g_string_append_c(out, ':');
		append_value(out, m->value);
	}
	g_string_append_c(out, '}');
}

static void
append_list(GString *out, GVariant *container)
{
	gsize n = g_variant_n_children(container);

	g_string_append_c(out, '[');
	for (gsize i = 0; i < n; i++) {
		g_autoptr(GVariant) child = g_variant_get_child_value(container, i);

		if (i > 0)
			g_string_append_c(out, ',');
		append_value(out, child);
	}
	g_string_append_c(out, ']');
}

static void
append_hex(GString *out, GVariant *bytes)
{
	static const char hex[] = "0123456789abcdef";
	gsize len = 0;
	const guint8 *data = g_variant_get_fixed_array(bytes, &len, 1);

	g_string_append_c(out, '"');
	for (gsize i = 0; i < len; i++) {
		g_string_append_c(out, hex[data[i] >> 4]);
		g_string_append_c(out, hex[data[i] & 0xf]);
	}
	g_string_append_c(out, '"');
}

static void
append_value(GString *out, GVariant *value)
{
	switch (g_variant_classify(value)) {
	case G_VARIANT_CLASS_BOOLEAN:
		g_string_append(out, g_variant_get_boolean(value) ? "true" : "false");
		return;
	case G_VARIANT_CLASS_BYTE:
		g_string_append_printf(out, "%u", (guint)g_variant_get_byte(value));
		return;
	case G_VARIANT_CLASS_INT16:
		g_string_append_printf(out, "%d", (int)g_variant_get_int16(value));
		return;
	case G_VARIANT_CLASS_UINT16:
		g_string_append_printf(out, "%u", (guint)g_variant_get_uint16(value));
		return;
	case G_VARIANT_CLASS_INT32:
		g_string_append_printf(out, "%" G_GINT32_FORMAT, g_variant_get_int32(value));
		return;
	case G_VARIANT_CLASS_HANDLE:
		g_string_append_printf(out, "%" G_GINT32_FORMAT, g_variant_get_handle(value));
		return;
	case G_VARIANT_CLASS_UINT32:
		g_string_append_printf(out, "%" G_GUINT32_FORMAT, g_variant_get_uint32(value));
		return;
	case G_VARIANT_CLASS_INT64:
		g_string_append_printf(out, "%" G_GINT64_FORMAT, g_variant_get_int64(value));
		return;
	case G_VARIANT_CLASS_UINT64:
		g_string_append_printf(out, "%" G_GUINT64_FORMAT, g_variant_get_uint64(value));
		return;
	case G_VARIANT_CLASS_DOUBLE:
		append_double(out, g_variant_get_double(value));
		return;
	case G_VARIANT_CLASS_STRING:
	case G_VARIANT_CLASS_OBJECT_PATH:
	case G_VARIANT_CLASS_SIGNATURE:
		cs_json_append_string(out, g_variant_get_string(value, NULL));
		return;
	case G_VARIANT_CLASS_VARIANT: {
		g_autoptr(GVariant) inner = g_variant_get_variant(value);

		append_value(out, inner);
		return;
	}
	case G_VARIANT_CLASS_MAYBE: {
		g_autoptr(GVariant) inner = g_variant_get_maybe(value);

		if (inner == NULL)
			g_string_append(out, "null");
		else
			append_value(out, inner);
		return;
	}
	case G_VARIANT_CLASS_ARRAY:
		if (g_variant_is_of_type(value, G_VARIANT_TYPE_BYTESTRING))
			append_hex(out, value);
		else if (g_variant_type_is_dict_entry(
			     g_variant_type_element(g_variant_get_type(value))))
			append_object(out, value);
		else
			append_list(out, value);
		return;
	case G_VARIANT_CLASS_TUPLE:
	case G_VARIANT_CLASS_DICT_ENTRY:
		append_list(out, value);
		return;
	}
	g_string_append(out, "null");
}

void
cs_json_append_variant(GString *out, GVariant *value)
{
	/* Like g_variant_print(), this only reads @value: a floating reference is not sunk,
	 * so a caller holding one in a g_autoptr keeps the only reference. */
	if (value == NULL) {
		g_string_append(out, "null");
		return;
	}
	append_value(out, value);
}

char *
cs_json_from_variant(GVariant *value)
{
	GString *out = g_string_new(NULL);

	cs_json_append_variant(out, value);
	return g_string_free(out, FALSE);
}

/* ---- reading JSON from outside ------------------------------------------------------------ */

gboolean
cs_json_check_untrusted(const char *data, gsize len, GError **error)
{
	gboolean in_string = FALSE;
	guint depth = 0;

	for (gsize i = 0; i < len; i++) {
		char c = data[i];

		if (c == '\0') {
			g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "a NUL byte (U+0000) at byte %" G_GSIZE_FORMAT, i);
			return FALSE;
		}
		if (in_string) {
			if (c == '"') {
				in_string = FALSE;
			} else if (c == '\\' && i + 1 < len) {
				if (data[i + 1] == 'u' && i + 5 < len &&
				    memcmp(data + i + 2, "0000", 4) == 0) {
					g_set_error(
					    error, CS_ERROR, CS_ERROR_INVALID_INPUT,
					    "a string holds U+0000 (NUL) at byte %" G_GSIZE_FORMAT,
					    i);
					return FALSE;
				}
				i++; /* the escaped character, '"' and '\\' included */
			}
		} else if (c == '"') {
			in_string = TRUE;
		} else if (c == '[' || c == '{') {
			if (++depth > CS_JSON_MAX_DEPTH) {
				g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
					    "arrays and objects nested deeper than %d at byte "
					    "%" G_GSIZE_FORMAT,
					    CS_JSON_MAX_DEPTH, i);
				return FALSE;
			}
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return TRUE;
}

/* Depth is bounded by CS_JSON_MAX_DEPTH once checked, so recursion is safe here. */
static gboolean
check_numbers(JsonNode *node, GError **error)
{
	switch (JSON_NODE_TYPE(node)) {
	case JSON_NODE_VALUE:
		if (json_node_get_value_type(node) == G_TYPE_DOUBLE &&
		    !isfinite(json_node_get_double(node))) {
			g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
					    "a number out of range (not finite)");
			return FALSE;
		}
		return TRUE;
	case JSON_NODE_ARRAY: {
		JsonArray *a = json_node_get_array(node);

		for (guint i = 0; i < json_array_get_length(a); i++) {
			if (!check_numbers(json_array_get_element(a, i), error))
				return FALSE;
		}
		return TRUE;
	}
	case JSON_NODE_OBJECT: {
		JsonObjectIter iter;
		JsonNode *member;

		json_object_iter_init(&iter, json_node_get_object(node));
		while (json_object_iter_next(&iter, NULL, &member)) {
			if (!check_numbers(member, error))
				return FALSE;
		}
		return TRUE;
	}
	default:
		return TRUE;
	}
}

JsonNode *
cs_json_parse_untrusted(const char *data, gssize len, GError **error)
{
	g_autoptr(JsonParser) parser = json_parser_new_immutable();
	g_autoptr(GError) local = NULL;
	gsize n = len < 0 ? strlen(data) : (gsize)len;
	JsonNode *root;

	if (!cs_json_check_untrusted(data, n, error))
		return NULL;
	if (!json_parser_load_from_data(parser, data, (gssize)n, &local)) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "not JSON: %s",
			    local->message);
		return NULL;
	}
	root = json_parser_get_root(parser);
	if (root == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "not JSON: empty");
		return NULL;
	}
	if (!check_numbers(root, error))
		return NULL;
	return json_node_ref(root);
}

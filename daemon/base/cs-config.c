/*
 * cs-config.c — reading certseald.conf and the vendor profiles in vendors.d (docs/architecture.md
 * §1.7, §4).
 *
 * Both are GKeyFiles read through one small layer (CsConfFile) that adds what GKeyFile
 * lacks: it remembers the line of every group and key, so that every refusal names the
 * file, the line and the problem ("certseald.conf:7: [daemon] test_mode: not a boolean
 * ('yes please')"), and it refuses what GKeyFile silently accepts — unknown groups and
 * keys, a group or key written twice — because a typo in a configuration must not quietly
 * fall back to a default.
 *
 * Invariants: a CsConfig or CsVendor is only ever returned fully validated; a missing
 * optional key keeps its default; relative paths in certseald.conf are resolved against the
 * directory of that file, so the daemon's working directory never matters.
 */
#define G_LOG_DOMAIN "certseald"

#include <string.h>

#include "certseal/plugin.h"
#include "cs-build-config.h"
#include "cs-config.h"
#include "cs-validate.h"
#include "cs-workdays.h"

#define CS_VENDOR_ID_MAX_LENGTH 32
#define CS_CONF_TEXT_MAX_CHARS 256
#define CS_CONF_PATH_MAX_CHARS 4096

/* One GKeyFile and where each of its groups and keys was written. */
typedef struct {
	char *path; /* as given, for messages */
	char *dir;  /* absolute directory of the file, for relative paths */
	GKeyFile *keyfile;
	GHashTable *lines; /* "group" or "group\x1fkey" → line number */
} CsConfFile;

/* The groups a file may contain and, for each, its keys (NULL: the reader checks them). */
typedef struct {
	const char *group;
	const char *const *keys;
} CsConfGroup;

static const char *const algorithms[] = {"rsa-2048", "ec-p256", "sm2", NULL};
static const char *const price_subjects[] = {"org", "person", NULL};

static const char *const daemon_keys[] = {
    "state_dir",
    "plugin_dir",
    "driver_dir",
    "draw_module",
    "vendor_dir",
    "test_mode",
    "shutdown_timeout_ms",
    "office_dir",
    "material_max_size",
    "material_uploads_per_user",
    "material_uploads_max",
    "key_login_idle_s",
    NULL,
};
static const char *const ledger_keys[] = {"checkpoint_interval", NULL};
static const char *const validation_keys[] = {"legacy_uscc", NULL};
static const char *const office_keys[] = {
    "endpoint", "events_endpoint",  "curve", "heartbeat_ms", "liveness",
    "claim_ms", "sandbox_gateways", NULL,
};
static const char *const payment_keys[] = {
    "alipay_app_id",
    "alipay_public_key",
    "wechat_mchid",
    "wechat_appid",
    "wechat_platform_public_key",
    "wechat_platform_serial",
    "wechat_platform_certificates",
    "wechat_apiv3_key_file",
    NULL,
};
static const char *const sms_keys[] = {"resend_cooldown_s",
				       "daily_cap",
				       "code_lifetime_s",
				       "code_max_tries",
				       "query_grant_s",
				       "query_codes_per_uid_hour",
				       "query_codes_per_subject_day",
				       NULL};
static const char *const auth_code_keys[] = {"lifetime_s", "max_tries", NULL};
static const char *const review_keys[] = {"holidays", "extra_workdays", "org_days", "person_days",
					  NULL};
static const char *const invoice_keys[] = {"seller_name", "seller_tax_id", "tax_rate_permille",
					   NULL};
static const char *const reminder_keys[] = {"before_days", "after_days", "check_interval_s", NULL};
static const CsConfGroup config_schema[] = {
    {"daemon", daemon_keys},
    {"office", office_keys},
    {"payment", payment_keys},
    {"sms", sms_keys},
    {"review", review_keys},
    {"invoice", invoice_keys},
    {"ledger", ledger_keys},
    {"validation", validation_keys},
    {"reminders", reminder_keys},
    {"auth_code", auth_code_keys},
    {NULL, NULL},
};

static const char *const vendor_keys[] = {"name", "driver", NULL};
static const char *const token_keys[] = {"module", "manufacturer", "model", "init_args", NULL};
static const char *const pin_keys[] = {"min_length",	   "max_length",  "max_tries",
				       "so_pin_max_tries", "digits_only", NULL};
static const char *const key_keys[] = {"algorithm", NULL};
static const char *const ca_keys[] = {"algorithm", "validity_days", "crl_url", NULL};
static const CsConfGroup vendor_schema[] = {
    {"vendor", vendor_keys}, /* who the vendor is and which driver serves its keys */
    {"token", token_keys},   /* how its tokens are found and recognised */
    {"pin", pin_keys},	     /* its PIN policy */
    {"key", key_keys},	     /* the key pair generated on its tokens */
    {"ca", ca_keys},	     /* its embedded CA */
    {"prices", NULL},	     /* "<kind>.<org|person>" = fen, checked by vendor_read_prices() */
    {NULL, NULL},
};

static void
cs_conf_file_free(CsConfFile *file)
{
	if (file == NULL)
		return;
	g_free(file->path);
	g_free(file->dir);
	if (file->keyfile != NULL)
		g_key_file_free(file->keyfile);
	if (file->lines != NULL)
		g_hash_table_unref(file->lines);
	g_free(file);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsConfFile, cs_conf_file_free)

static gboolean
strv_has(const char *const *strv, const char *s)
{
	return g_strv_contains(strv, s);
}

static char *
line_key(const char *group, const char *key)
{
	return key != NULL ? g_strconcat(group, "\x1f", key, NULL) : g_strdup(group);
}

static guint
conf_file_get_line(CsConfFile *file, const char *group, const char *key)
{
	g_autofree char *k = line_key(group, key);

	return GPOINTER_TO_UINT(g_hash_table_lookup(file->lines, k));
}

/* Sets "<path>:<line>: [group] key: <problem>"; the line is left out when the key (or, with
 * @key NULL, the group) is not in the file, as for a missing required key. */
static gboolean conf_file_refuse(
    CsConfFile *file, GError **error, const char *group, const char *key, const char *format, ...)
    G_GNUC_PRINTF(5, 6);
static gboolean
conf_file_refuse_line(CsConfFile *file, GError **error, guint line, const char *format, ...)
    G_GNUC_PRINTF(4, 5);

static gboolean
conf_file_refuse(
    CsConfFile *file, GError **error, const char *group, const char *key, const char *format, ...)
{
	g_autofree char *problem = NULL;
	g_autoptr(GString) msg = g_string_new(file->path);
	guint line = conf_file_get_line(file, group, key);
	va_list args;

	va_start(args, format);
	problem = g_strdup_vprintf(format, args);
	va_end(args);

	if (line > 0)
		g_string_append_printf(msg, ":%u", line);
	g_string_append_printf(msg, ": [%s]", group);
	if (key != NULL)
		g_string_append_printf(msg, " %s", key);
	g_string_append_printf(msg, ": %s", problem);
	g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT, msg->str);
	return FALSE;
}

/* A syntax problem on a line, before any group or key can be named. */
static gboolean
conf_file_refuse_line(CsConfFile *file, GError **error, guint line, const char *format, ...)
{
	g_autofree char *problem = NULL;
	va_list args;

	va_start(args, format);
	problem = g_strdup_vprintf(format, args);
	va_end(args);
	g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "%s:%u: %s", file->path, line,
		    problem);
	return FALSE;
}

/* Key names GKeyFile accepts that a certseal file can use: [A-Za-z0-9_.-]+, with an optional
 * "[locale]" suffix so that "name[zh_CN]" is reported as an unknown key, not as a syntax
 * error. */
static gboolean
key_name_ok(const char *key)
{
	const char *p = key;

	while (g_ascii_isalnum(*p) || *p == '_' || *p == '.' || *p == '-')
		p++;
	if (p == key)
		return FALSE;
	if (*p == '\0')
		return TRUE;
	if (*p++ != '[')
		return FALSE;
	while (g_ascii_isalnum(*p) || *p == '_' || *p == '.' || *p == '@' || *p == '-')
		p++;
	return p[0] == ']' && p[-1] != '[' && p[1] == '\0';
}

static gboolean
group_name_ok(const char *name)
{
	if (*name == '\0')
		return FALSE;
	for (const char *p = name; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if (c == '[' || c == ']' || g_unichar_iscntrl(c))
			return FALSE;
	}
	return TRUE;
}

static gboolean
conf_file_scan_group(CsConfFile *file, char *text, guint line, char **group, GError **error)
{
	gsize len = strlen(text);
	guint first;

	if (len < 2 || text[len - 1] != ']')
		return conf_file_refuse_line(file, error, line, "malformed group header");
	text[len - 1] = '\0';
	if (!group_name_ok(text + 1))
		return conf_file_refuse_line(file, error, line, "malformed group header");

	/* GKeyFile would merge a repeated group; a repeat is more likely a pasting mistake. */
	first = conf_file_get_line(file, text + 1, NULL);
	if (first > 0)
		return conf_file_refuse_line(
		    file, error, line, "[%s]: group repeated (first on line %u)", text + 1, first);
	g_hash_table_insert(file->lines, g_strdup(text + 1), GUINT_TO_POINTER(line));
	g_free(*group);
	*group = g_strdup(text + 1);
	return TRUE;
}

static gboolean
conf_file_scan_key(CsConfFile *file, char *text, guint line, const char *group, GError **error)
{
	char *eq = strchr(text, '=');
	guint first;

	*eq = '\0';
	g_strchomp(text);
	if (group == NULL)
		return conf_file_refuse_line(file, error, line, "key before the first [group]");
	if (!key_name_ok(text))
		return conf_file_refuse_line(
		    file, error, line, "[%s]: malformed key name (letters, digits, _ . -)", group);

	/* GKeyFile would let the last one win silently. */
	first = conf_file_get_line(file, group, text);
	if (first > 0)
		return conf_file_refuse_line(
		    file, error, line, "[%s] %s: set twice (first on line %u)", group, text, first);
	g_hash_table_insert(file->lines, line_key(group, text), GUINT_TO_POINTER(line));
	return TRUE;
}

/*
 * GKeyFile reports syntax errors without a line number and forgets where each key was
 * written, so the text is scanned here first with the same rules (leading whitespace
 * ignored; "#" comments; "[group]"; "key = value"), a little stricter where GKeyFile is
 * lenient, recording the line of every group and key.
 */
static gboolean
conf_file_scan(CsConfFile *file, const char *contents, gsize length, GError **error)
{
	const char *end = contents + length;
	g_autofree char *group = NULL;
	guint line = 0;

	for (const char *p = contents; p < end;) {
		const char *nl = memchr(p, '\n', (gsize)(end - p));
		gsize len = (gsize)((nl != NULL ? nl : end) - p);
		g_autofree char *text = NULL;
		gboolean ok;

		line++;
		if (!g_utf8_validate_len(p, len, NULL))
			return conf_file_refuse_line(file, error, line, "not valid UTF-8");
		text = g_strstrip(g_strndup(p, len));
		p = nl != NULL ? nl + 1 : end;

		if (text[0] == '\0' || text[0] == '#')
			continue;
		if (text[0] == '[')
			ok = conf_file_scan_group(file, text, line, &group, error);
		else if (strchr(text, '=') != NULL)
			ok = conf_file_scan_key(file, text, line, group, error);
		else
			ok = conf_file_refuse_line(file, error, line,
						   "not a [group], a key = value or a # comment");
		if (!ok)
			return FALSE;
	}
	return TRUE;
}

static CsConfFile *
conf_file_load(const char *path, GError **error)
{
	g_autoptr(CsConfFile) file = g_new0(CsConfFile, 1);
	g_autofree char *contents = NULL;
	g_autofree char *absolute = NULL;
	g_autoptr(GError) error_local = NULL;
	gsize length = 0;

	file->path = g_strdup(path);
	absolute = g_canonicalize_filename(path, NULL);
	file->dir = g_path_get_dirname(absolute);
	file->keyfile = g_key_file_new();
	file->lines = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

	if (!g_file_get_contents(path, &contents, &length, error))
		return NULL;
	if (!conf_file_scan(file, contents, length, error))
		return NULL;
	/* Keeping translations makes "name[zh_CN]" visible, so it is refused as an unknown key
	 * instead of being dropped silently. */
	if (!g_key_file_load_from_data(file->keyfile, contents, length,
				       G_KEY_FILE_KEEP_TRANSLATIONS, &error_local)) {
		/* Not expected: the scan is stricter than GKeyFile. */
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "%s: %s", path,
			    error_local->message);
		return NULL;
	}
	return g_steal_pointer(&file);
}

static const CsConfGroup *
schema_find_group(const CsConfGroup *schema, const char *group)
{
	for (guint i = 0; schema[i].group != NULL; i++) {
		if (g_strcmp0(schema[i].group, group) == 0)
			return &schema[i];
	}
	return NULL;
}

/* Refuses, in file order, the first group or key @schema does not know. */
static gboolean
conf_file_check_schema(CsConfFile *file, const CsConfGroup *schema, GError **error)
{
	g_auto(GStrv) groups = g_key_file_get_groups(file->keyfile, NULL);

	for (guint i = 0; groups[i] != NULL; i++) {
		const CsConfGroup *known = schema_find_group(schema, groups[i]);
		g_auto(GStrv) keys = NULL;

		if (known == NULL)
			return conf_file_refuse(file, error, groups[i], NULL, "unknown group");
		if (known->keys == NULL)
			continue;
		keys = g_key_file_get_keys(file->keyfile, groups[i], NULL, NULL);
		for (guint j = 0; keys != NULL && keys[j] != NULL; j++) {
			if (!strv_has(known->keys, keys[j]))
				return conf_file_refuse(file, error, groups[i], keys[j],
							"unknown key");
		}
	}
	return TRUE;
}

static gboolean
conf_file_has_key(CsConfFile *file, const char *group, const char *key)
{
	return g_key_file_has_key(file->keyfile, group, key, NULL);
}

/* The unescaped string value; TRUE with *value untouched when the key is absent. */
static gboolean
conf_file_get_string(
    CsConfFile *file, const char *group, const char *key, char **value, GError **error)
{
	g_autoptr(GError) error_local = NULL;
	g_autofree char *s = NULL;

	if (!conf_file_has_key(file, group, key))
		return TRUE;
	s = g_key_file_get_string(file->keyfile, group, key, &error_local);
	if (error_local != NULL)
		return conf_file_refuse(file, error, group, key,
					"bad escape sequence (write a backslash as \\\\)");
	g_free(*value);
	*value = g_steal_pointer(&s);
	return TRUE;
}

/* The raw value with surrounding whitespace removed, for numbers and booleans. */
static char *
conf_file_get_raw(CsConfFile *file, const char *group, const char *key)
{
	char *s = g_key_file_get_value(file->keyfile, group, key, NULL);

	return s != NULL ? g_strstrip(s) : NULL;
}

static gboolean
conf_file_get_text(CsConfFile *file,
		   const char *group,
		   const char *key,
		   guint max_chars,
		   char **value,
		   GError **error)
{
	g_autoptr(GError) error_local = NULL;
	g_autofree char *s = NULL;

	if (!conf_file_get_string(file, group, key, &s, error))
		return FALSE;
	if (s == NULL)
		return TRUE;
	if (!cs_validate_text(s, max_chars, &error_local))
		return conf_file_refuse(file, error, group, key, "%s", error_local->message);
	g_free(*value);
	*value = g_steal_pointer(&s);
	return TRUE;
}

static gboolean
conf_file_get_required_text(CsConfFile *file,
			    const char *group,
			    const char *key,
			    guint max_chars,
			    char **value,
			    GError **error)
{
	if (!conf_file_has_key(file, group, key))
		return conf_file_refuse(file, error, group, key, "required");
	return conf_file_get_text(file, group, key, max_chars, value, error);
}

/* A directory or file name; relative ones are taken from the file's own directory. */
static gboolean
conf_file_get_path(
    CsConfFile *file, const char *group, const char *key, char **value, GError **error)
{
	g_autofree char *s = NULL;

	if (!conf_file_get_text(file, group, key, CS_CONF_PATH_MAX_CHARS, &s, error))
		return FALSE;
	if (s == NULL)
		return TRUE;
	g_free(*value);
	*value = g_canonicalize_filename(s, file->dir);
	return TRUE;
}

static gboolean
conf_file_get_boolean(
    CsConfFile *file, const char *group, const char *key, gboolean *value, GError **error)
{
	g_autofree char *s = conf_file_get_raw(file, group, key);

	if (s == NULL)
		return TRUE;
	if (g_strcmp0(s, "true") == 0)
		*value = TRUE;
	else if (g_strcmp0(s, "false") == 0)
		*value = FALSE;
	else
		return conf_file_refuse(file, error, group, key, "not a boolean ('%s')", s);
	return TRUE;
}

static gboolean
conf_file_get_uint(CsConfFile *file,
		   const char *group,
		   const char *key,
		   guint64 min,
		   guint64 max,
		   guint64 *value,
		   GError **error)
{
	g_autofree char *s = conf_file_get_raw(file, group, key);
	guint64 v = 0;

	if (s == NULL)
		return TRUE;
	if (!g_ascii_string_to_unsigned(s, 10, 0, G_MAXUINT64, &v, NULL))
		return conf_file_refuse(file, error, group, key,
					"not a non-negative whole number ('%s')", s);
	if (v < min || v > max)
		return conf_file_refuse(file, error, group, key,
					"%" G_GUINT64_FORMAT " is not between %" G_GUINT64_FORMAT
					" and %" G_GUINT64_FORMAT,
					v, min, max);
	*value = v;
	return TRUE;
}

/* conf_file_get_uint() for a guint field. */
static gboolean
conf_file_get_guint(CsConfFile *file,
		    const char *group,
		    const char *key,
		    guint min,
		    guint max,
		    guint *value,
		    GError **error)
{
	guint64 v = *value;

	if (!conf_file_get_uint(file, group, key, min, max, &v, error))
		return FALSE;
	*value = (guint)v;
	return TRUE;
}

static gboolean
conf_file_get_choice(CsConfFile *file,
		     const char *group,
		     const char *key,
		     const char *const *choices,
		     char **value,
		     GError **error)
{
	g_autofree char *s = conf_file_get_raw(file, group, key);
	g_autofree char *list = NULL;

	if (s == NULL)
		return TRUE;
	if (!strv_has(choices, s)) {
		list = g_strjoinv(", ", (char **)choices);
		return conf_file_refuse(file, error, group, key, "'%s' is not one of %s", s, list);
	}
	g_free(*value);
	*value = g_steal_pointer(&s);
	return TRUE;
}

/* ---- certseald.conf ------------------------------------------------------------------ */

static CsConfig *
config_new_defaults(void)
{
	CsConfig *config = g_new0(CsConfig, 1);

	config->state_dir = g_strdup(CS_STATE_DIR);
	config->plugin_dir = g_strdup(CS_PLUGIN_DIR);
	config->draw_module = g_strdup(CS_DRAW_MODULE);
	config->driver_dir = g_strdup(CS_DRIVER_DIR);
	config->vendor_dir = g_strdup(CS_VENDOR_DIR);
	config->test_mode = FALSE;
	config->shutdown_timeout_ms = 5000;
	config->checkpoint_interval = 1000;
	config->material_max_size = 10 * 1024 * 1024;
	config->material_uploads_per_user = 2;
	config->material_uploads_max = 8;
	config->legacy_uscc = g_new0(char *, 1);
	config->office_dir = g_strdup(CS_OFFICE_DIR);
	config->key_login_idle_s = 15 * 60;
	config->office_curve = TRUE;
	config->office_sandbox_gateways = FALSE;
	config->office_heartbeat_ms = 2500;
	config->office_liveness = 3;
	config->office_claim_ms = 15 * 60 * 1000;
	config->sms_resend_cooldown_s = 60;
	config->sms_daily_cap = 10;
	config->sms_code_lifetime_s = 300;
	config->sms_code_max_tries = 5;
	config->query_grant_s = 30 * 60;
	config->query_codes_per_uid_hour = 10;
	config->query_codes_per_subject_day = 5;
	config->auth_code_lifetime_s = 600;
	config->auth_code_max_tries = 5;
	config->review_holidays = g_new0(char *, 1);
	config->review_extra_workdays = g_new0(char *, 1);
	config->review_org_days = 5;
	config->review_person_days = 3;
	config->invoice_seller_name = g_strdup("数字证书及电子签章共享平台");
	config->invoice_seller_tax_id = g_strdup("91350200776049653A");
	config->invoice_tax_rate_permille = 60;
	{
		static const guint before[] = {90, 30, 7, 1}, after[] = {30, 180, 330};
		config->reminder_before_days = g_array_new(FALSE, FALSE, sizeof(guint));
		config->reminder_after_days = g_array_new(FALSE, FALSE, sizeof(guint));
		g_array_append_vals(config->reminder_before_days, before, G_N_ELEMENTS(before));
		g_array_append_vals(config->reminder_after_days, after, G_N_ELEMENTS(after));
	}
	config->reminder_check_interval_s = 3600;
	config->vendors = g_ptr_array_new_with_free_func((GDestroyNotify)cs_vendor_free);
	return config;
}

static gboolean
config_read_daemon(CsConfig *config, CsConfFile *file, GError **error)
{
	if (!conf_file_get_path(file, "daemon", "state_dir", &config->state_dir, error))
		return FALSE;
	if (!conf_file_get_path(file, "daemon", "plugin_dir", &config->plugin_dir, error))
		return FALSE;
	if (!conf_file_get_path(file, "daemon", "driver_dir", &config->driver_dir, error))
		return FALSE;
	if (!conf_file_get_path(file, "daemon", "draw_module", &config->draw_module, error))
		return FALSE;
	if (!conf_file_get_path(file, "daemon", "vendor_dir", &config->vendor_dir, error))
		return FALSE;
	if (!conf_file_get_boolean(file, "daemon", "test_mode", &config->test_mode, error))
		return FALSE;
	if (!conf_file_get_path(file, "daemon", "office_dir", &config->office_dir, error))
		return FALSE;
	if (!conf_file_get_guint(file, "daemon", "material_max_size", 1024, 512 * 1024 * 1024,
				 &config->material_max_size, error))
		return FALSE;
	if (!conf_file_get_guint(file, "daemon", "material_uploads_per_user", 1, 256,
				 &config->material_uploads_per_user, error) ||
	    !conf_file_get_guint(file, "daemon", "material_uploads_max", 1, 256,
				 &config->material_uploads_max, error))
		return FALSE;
	if (!conf_file_get_guint(file, "daemon", "key_login_idle_s", 1, 86400,
				 &config->key_login_idle_s, error))
		return FALSE;
	return conf_file_get_guint(file, "daemon", "shutdown_timeout_ms", 0, 600000,
				   &config->shutdown_timeout_ms, error);
}

static gboolean
config_read_legacy_uscc(CsConfig *config, CsConfFile *file, GError **error)
{
	g_autoptr(GError) error_local = NULL;
	g_auto(GStrv) codes = NULL;

	if (!conf_file_has_key(file, "validation", "legacy_uscc"))
		return TRUE;
	codes = g_key_file_get_string_list(file->keyfile, "validation", "legacy_uscc", NULL,
					   &error_local);
	if (codes == NULL)
		return conf_file_refuse(file, error, "validation", "legacy_uscc",
					"bad escape sequence (write a backslash as \\\\)");
	for (guint i = 0; codes[i] != NULL; i++) {
		const char *const self[] = {g_strstrip(codes[i]), NULL};

		/* Listing the code itself bypasses only the check character, so this tests
		 * exactly the format a listed code must still have. */
		g_clear_error(&error_local);
		if (!cs_validate_uscc(codes[i], self, &error_local))
			return conf_file_refuse(file, error, "validation", "legacy_uscc",
						"entry %u: %s", i + 1, error_local->message);
	}
	g_strfreev(config->legacy_uscc);
	config->legacy_uscc = g_steal_pointer(&codes);
	return TRUE;
}

/* The office bus (docs/architecture.md §3.4), payment notification keys (§9) and SMS limits (§6).
 */
static gboolean
config_read_office(CsConfig *config, CsConfFile *file, GError **error)
{
	static const char *const payment_paths[] = {
	    "alipay_public_key", "wechat_platform_public_key", "wechat_apiv3_key_file"};
	char **path_fields[] = {&config->alipay_public_key, &config->wechat_platform_public_key,
				&config->wechat_apiv3_key_file};

	if (!conf_file_get_string(file, "office", "endpoint", &config->office_endpoint, error) ||
	    !conf_file_get_string(file, "office", "events_endpoint",
				  &config->office_events_endpoint, error) ||
	    !conf_file_get_boolean(file, "office", "curve", &config->office_curve, error) ||
	    !conf_file_get_boolean(file, "office", "sandbox_gateways",
				   &config->office_sandbox_gateways, error) ||
	    !conf_file_get_guint(file, "office", "heartbeat_ms", 10, 600000,
				 &config->office_heartbeat_ms, error) ||
	    !conf_file_get_guint(file, "office", "liveness", 1, 100, &config->office_liveness,
				 error) ||
	    !conf_file_get_guint(file, "office", "claim_ms", 100, 86400000,
				 &config->office_claim_ms, error))
		return FALSE;
	if (!conf_file_get_string(file, "payment", "alipay_app_id", &config->alipay_app_id,
				  error) ||
	    !conf_file_get_string(file, "payment", "wechat_platform_serial",
				  &config->wechat_platform_serial, error) ||
	    !conf_file_get_string(file, "payment", "wechat_mchid", &config->wechat_mchid, error) ||
	    !conf_file_get_string(file, "payment", "wechat_appid", &config->wechat_appid, error))
		return FALSE;
	/* An empty value (as in the documented example) means "not configured". */
	for (guint i = 0; i < G_N_ELEMENTS(payment_paths); i++) {
		g_autofree char *raw = NULL;
		if (!conf_file_get_string(file, "payment", payment_paths[i], &raw, error))
			return FALSE;
		if (raw != NULL && *raw != '\0') {
			g_free(*path_fields[i]);
			*path_fields[i] = g_canonicalize_filename(raw, file->dir);
		}
	}
	if (conf_file_has_key(file, "payment", "wechat_platform_certificates")) {
		g_auto(GStrv) list = g_key_file_get_string_list(
		    file->keyfile, "payment", "wechat_platform_certificates", NULL, NULL);
		g_autoptr(GStrvBuilder) b = g_strv_builder_new();

		for (guint i = 0; list != NULL && list[i] != NULL; i++) {
			g_autofree char *path = NULL;

			if (*g_strstrip(list[i]) == '\0')
				continue;
			path = g_canonicalize_filename(list[i], file->dir);
			g_strv_builder_add(b, path);
		}
		g_strfreev(config->wechat_platform_certificates);
		config->wechat_platform_certificates = g_strv_builder_end(b);
	}
	{
		char **optional[] = {&config->office_endpoint, &config->office_events_endpoint,
				     &config->alipay_app_id,   &config->wechat_mchid,
				     &config->wechat_appid,    &config->wechat_platform_serial};
		for (guint i = 0; i < G_N_ELEMENTS(optional); i++) {
			if (*optional[i] != NULL && **optional[i] == '\0')
				g_clear_pointer(optional[i], g_free);
		}
	}
	return conf_file_get_guint(file, "sms", "resend_cooldown_s", 0, 86400,
				   &config->sms_resend_cooldown_s, error) &&
	       conf_file_get_guint(file, "sms", "daily_cap", 1, 10000, &config->sms_daily_cap,
				   error) &&
	       conf_file_get_guint(file, "sms", "code_lifetime_s", 1, 86400,
				   &config->sms_code_lifetime_s, error) &&
	       conf_file_get_guint(file, "sms", "code_max_tries", 1, 100,
				   &config->sms_code_max_tries, error) &&
	       conf_file_get_guint(file, "sms", "query_grant_s", 1, 86400, &config->query_grant_s,
				   error) &&
	       conf_file_get_guint(file, "sms", "query_codes_per_uid_hour", 1, 10000,
				   &config->query_codes_per_uid_hour, error) &&
	       conf_file_get_guint(file, "sms", "query_codes_per_subject_day", 1, 10000,
				   &config->query_codes_per_subject_day, error) &&

	       conf_file_get_guint(file, "auth_code", "lifetime_s", 1, 86400,
				   &config->auth_code_lifetime_s, error) &&
	       conf_file_get_guint(file, "auth_code", "max_tries", 1, 100,
				   &config->auth_code_max_tries, error);
}

/* A list of YYYY-MM-DD dates; each must exist. */
static gboolean
config_read_dates(CsConfFile *file, const char *group, const char *key, char ***out, GError **error)
{
	g_autoptr(GError) error_local = NULL;
	g_auto(GStrv) days = NULL;

	if (!conf_file_has_key(file, group, key))
		return TRUE;
	days = g_key_file_get_string_list(file->keyfile, group, key, NULL, &error_local);
	if (days == NULL)
		return conf_file_refuse(file, error, group, key, "not a list of dates");
	for (guint i = 0; days[i] != NULL; i++) {
		const char *const one[] = {g_strstrip(days[i]), NULL};
		CsCalendar calendar = {.holidays = one, .extra_workdays = NULL};
		g_clear_error(&error_local);
		if (!cs_calendar_validate(&calendar, &error_local))
			return conf_file_refuse(file, error, group, key, "entry %u: %s", i + 1,
						error_local->message);
	}
	g_strfreev(*out);
	*out = g_steal_pointer(&days);
	return TRUE;
}

/* A list of day counts, each 1..@max ("90;30;7;1"; empty: none). */
static gboolean
config_read_days(
    CsConfFile *file, const char *group, const char *key, guint max, GArray **out, GError **error)
{
	g_autoptr(GError) error_local = NULL;
	g_auto(GStrv) items = NULL;
	g_autoptr(GArray) days = NULL;

	if (!conf_file_has_key(file, group, key))
		return TRUE;
	items = g_key_file_get_string_list(file->keyfile, group, key, NULL, &error_local);
	days = g_array_new(FALSE, FALSE, sizeof(guint));
	for (guint i = 0; items != NULL && items[i] != NULL; i++) {
		guint64 v = 0;
		const char *text = g_strstrip(items[i]);
		if (*text == '\0')
			continue;
		if (!g_ascii_string_to_unsigned(text, 10, 1, max, &v, NULL))
			return conf_file_refuse(file, error, group, key,
						"entry %u: not a number of days from 1 to %u",
						i + 1, max);
		g_array_append_val(days, (guint){(guint)v});
	}
	g_array_unref(*out);
	*out = g_steal_pointer(&days);
	return TRUE;
}

/* Expiry reminders (docs/architecture.md §1.2). */
static gboolean
config_read_reminders(CsConfig *config, CsConfFile *file, GError **error)
{
	return config_read_days(file, "reminders", "before_days", 3650,
				&config->reminder_before_days, error) &&
	       config_read_days(file, "reminders", "after_days", 365, &config->reminder_after_days,
				error) &&
	       conf_file_get_guint(file, "reminders", "check_interval_s", 1, 86400,
				   &config->reminder_check_interval_s, error);
}

/* Review deadlines (docs/architecture.md §1.1) and the e-invoice's seller. */
static gboolean
config_read_review(CsConfig *config, CsConfFile *file, GError **error)
{
	return config_read_dates(file, "review", "holidays", &config->review_holidays, error) &&
	       config_read_dates(file, "review", "extra_workdays", &config->review_extra_workdays,
				 error) &&
	       conf_file_get_guint(file, "review", "org_days", 0, 365, &config->review_org_days,
				   error) &&
	       conf_file_get_guint(file, "review", "person_days", 0, 365,
				   &config->review_person_days, error) &&
	       conf_file_get_text(file, "invoice", "seller_name", 100, &config->invoice_seller_name,
				  error) &&
	       conf_file_get_text(file, "invoice", "seller_tax_id", 18,
				  &config->invoice_seller_tax_id, error) &&
	       conf_file_get_guint(file, "invoice", "tax_rate_permille", 0, 1000,
				   &config->invoice_tax_rate_permille, error);
}

CsConfig *
cs_config_load(const char *path, GError **error)
{
	g_autoptr(CsConfig) config = config_new_defaults();
	g_autoptr(CsConfFile) file = NULL;

	if (path == NULL)
		return g_steal_pointer(&config);
	file = conf_file_load(path, error);
	if (file == NULL)
		return NULL;
	config->path = g_strdup(path);
	if (!conf_file_check_schema(file, config_schema, error))
		return NULL;
	if (!config_read_daemon(config, file, error))
		return NULL;
	if (!conf_file_get_guint(file, "ledger", "checkpoint_interval", 1, G_MAXINT,
				 &config->checkpoint_interval, error))
		return NULL;
	if (!config_read_legacy_uscc(config, file, error))
		return NULL;
	if (!config_read_office(config, file, error))
		return NULL;
	if (!config_read_review(config, file, error) || !config_read_reminders(config, file, error))
		return NULL;
	return g_steal_pointer(&config);
}

void
cs_config_free(CsConfig *config)
{
	if (config == NULL)
		return;
	g_free(config->path);
	g_free(config->state_dir);
	g_free(config->plugin_dir);
	g_free(config->draw_module);
	g_free(config->driver_dir);
	g_free(config->vendor_dir);
	g_strfreev(config->legacy_uscc);
	g_strfreev(config->review_holidays);
	g_strfreev(config->review_extra_workdays);
	g_clear_pointer(&config->reminder_before_days, g_array_unref);
	g_clear_pointer(&config->reminder_after_days, g_array_unref);
	g_free(config->invoice_seller_name);
	g_free(config->invoice_seller_tax_id);
	g_free(config->office_dir);
	g_free(config->office_endpoint);
	g_free(config->office_events_endpoint);
	g_free(config->alipay_app_id);
	g_free(config->alipay_public_key);
	g_free(config->wechat_mchid);
	g_free(config->wechat_appid);
	g_free(config->wechat_platform_public_key);
	g_free(config->wechat_platform_serial);
	g_strfreev(config->wechat_platform_certificates);
	g_free(config->wechat_apiv3_key_file);
	if (config->vendors != NULL)
		g_ptr_array_unref(config->vendors);
	g_free(config);
}

/* ---- vendor profiles ----------------------------------------------------------------- */

gboolean
cs_config_vendor_id_ok(const char *id)
{
	gsize len = strlen(id);

	if (len == 0 || len > CS_VENDOR_ID_MAX_LENGTH)
		return FALSE;
	for (gsize i = 0; i < len; i++) {
		if (!g_ascii_islower(id[i]) && !g_ascii_isdigit(id[i]) && id[i] != '_' &&
		    id[i] != '-')
			return FALSE;
	}
	return TRUE;
}

/* The id a profile's file name gives, or NULL when the name is not "<id>.conf". */
static char *
vendor_id_from_path(const char *path)
{
	g_autofree char *base = g_path_get_basename(path);

	if (!g_str_has_suffix(base, ".conf"))
		return NULL;
	base[strlen(base) - strlen(".conf")] = '\0';
	if (!cs_config_vendor_id_ok(base))
		return NULL;
	return g_steal_pointer(&base);
}

static gboolean
vendor_read_vendor(CsVendor *vendor, CsConfFile *file, GError **error)
{
	if (!conf_file_get_required_text(file, "vendor", "name", CS_CONF_TEXT_MAX_CHARS,
					 &vendor->name, error))
		return FALSE;
	if (!conf_file_get_required_text(file, "vendor", "driver", CS_CONF_TEXT_MAX_CHARS,
					 &vendor->driver, error))
		return FALSE;
	for (const char *p = vendor->driver; *p != '\0'; p++) {
		if (!g_ascii_islower(*p) && !g_ascii_isdigit(*p) && *p != '_' && *p != '-')
			return conf_file_refuse(file, error, "vendor", "driver",
						"'%s' is not a driver name (a-z, 0-9, _ and -)",
						vendor->driver);
	}
	return TRUE;
}

static gboolean
vendor_read_token(CsVendor *vendor, CsConfFile *file, GError **error)
{
	/* The module is handed to dlopen() as written: an absolute path, or a library name
	 * found through the usual search path. */
	if (!conf_file_get_text(file, "token", "module", CS_CONF_PATH_MAX_CHARS, &vendor->module,
				error))
		return FALSE;
	if (!conf_file_get_text(file, "token", "manufacturer", CS_CONF_TEXT_MAX_CHARS,
				&vendor->manufacturer, error))
		return FALSE;
	if (!conf_file_get_text(file, "token", "init_args", CS_CONF_PATH_MAX_CHARS,
				&vendor->init_args, error))
		return FALSE;
	return conf_file_get_text(file, "token", "model", CS_CONF_TEXT_MAX_CHARS, &vendor->model,
				  error);
}

static gboolean
vendor_read_pin(CsVendor *vendor, CsConfFile *file, GError **error)
{
	if (!conf_file_get_guint(file, "pin", "min_length", 4, 64, &vendor->pin_min_length, error))
		return FALSE;
	if (!conf_file_get_guint(file, "pin", "max_length", 4, 64, &vendor->pin_max_length, error))
		return FALSE;
	if (!conf_file_get_guint(file, "pin", "max_tries", 1, 15, &vendor->pin_max_tries, error))
		return FALSE;
	if (!conf_file_get_guint(file, "pin", "so_pin_max_tries", 1, 15, &vendor->so_pin_max_tries,
				 error))
		return FALSE;
	if (!conf_file_get_boolean(file, "pin", "digits_only", &vendor->pin_digits_only, error))
		return FALSE;
	if (vendor->pin_min_length > vendor->pin_max_length) {
		/* Point at whichever of the two the file sets (min_length when both are). */
		const char *key =
		    conf_file_has_key(file, "pin", "min_length") ? "min_length" : "max_length";
		return conf_file_refuse(file, error, "pin", key,
					"min_length (%u) is greater than max_length (%u)",
					vendor->pin_min_length, vendor->pin_max_length);
	}
	return TRUE;
}

/* The CRL URL goes into certificates as an IA5String: printable ASCII only. */
static gboolean
crl_url_ok(const char *url)
{
	g_autoptr(GUri) uri = NULL;

	if (!g_str_has_prefix(url, "http://") && !g_str_has_prefix(url, "https://"))
		return FALSE;
	for (const char *p = url; *p != '\0'; p++) {
		if (*p <= ' ' || *p >= 0x7f)
			return FALSE;
	}
	uri = g_uri_parse(url, G_URI_FLAGS_NONE, NULL);
	return uri != NULL && g_uri_get_host(uri) != NULL && g_uri_get_host(uri)[0] != '\0';
}

static gboolean
vendor_read_ca(CsVendor *vendor, CsConfFile *file, GError **error)
{
	if (!conf_file_get_choice(file, "key", "algorithm", algorithms, &vendor->key_algorithm,
				  error))
		return FALSE;
	vendor->ca_algorithm = g_strdup(vendor->key_algorithm);
	if (!conf_file_get_choice(file, "ca", "algorithm", algorithms, &vendor->ca_algorithm,
				  error))
		return FALSE;
	if (!conf_file_get_guint(file, "ca", "validity_days", 1, 3650, &vendor->validity_days,
				 error))
		return FALSE;
	if (!conf_file_get_required_text(file, "ca", "crl_url", CS_CONF_PATH_MAX_CHARS,
					 &vendor->crl_url, error))
		return FALSE;
	if (!crl_url_ok(vendor->crl_url))
		return conf_file_refuse(file, error, "ca", "crl_url",
					"not an http:// or https:// URL of printable ASCII");
	return TRUE;
}

static gboolean
price_key_ok(const char *key)
{
	g_auto(GStrv) parts = g_strsplit(key, ".", -1);

	/* The kind is a flow's name; flows are plugins, so which ones exist is known only once
	 * they are loaded (the daemon then says which prices name none). */
	return g_strv_length(parts) == 2 &&
	       g_regex_match_simple("^[a-z][a-z0-9_]{0,31}$", parts[0], 0, 0) &&
	       strv_has(price_subjects, parts[1]);
}

static gboolean
vendor_read_prices(CsVendor *vendor, CsConfFile *file, GError **error)
{
	g_auto(GStrv) keys = g_key_file_get_keys(file->keyfile, "prices", NULL, NULL);

	for (guint i = 0; keys != NULL && keys[i] != NULL; i++) {
		guint64 fen = 0;

		if (!price_key_ok(keys[i]))
			return conf_file_refuse(file, error, "prices", keys[i],
						"unknown key (expected <kind>.<org|person>, kind "
						"the name of a flow such as new)");
		/* Fen, kept below 2^63 so that sums stay exact in SQLite's signed integers. */
		if (!conf_file_get_uint(file, "prices", keys[i], 0, G_MAXINT64, &fen, error))
			return FALSE;
		g_hash_table_insert(vendor->prices, g_strdup(keys[i]), g_memdup2(&fen, sizeof fen));
	}
	return TRUE;
}

CsVendor *
cs_vendor_load(const char *path, GError **error)
{
	g_autoptr(CsVendor) vendor = g_new0(CsVendor, 1);
	g_autoptr(CsConfFile) file = NULL;

	vendor->id = vendor_id_from_path(path);
	if (vendor->id == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "%s: the file name must be <id>.conf, the id 1 to %u characters of "
			    "a-z, 0-9, _ and -",
			    path, CS_VENDOR_ID_MAX_LENGTH);
		return NULL;
	}
	vendor->path = g_strdup(path);
	vendor->pin_min_length = 6;
	vendor->pin_max_length = 16;
	vendor->pin_max_tries = 6;
	vendor->so_pin_max_tries = 10;
	vendor->key_algorithm = g_strdup("ec-p256");
	vendor->validity_days = 365;
	vendor->prices = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);

	file = conf_file_load(path, error);
	if (file == NULL)
		return NULL;
	if (!conf_file_check_schema(file, vendor_schema, error))
		return NULL;
	if (!vendor_read_vendor(vendor, file, error) || !vendor_read_token(vendor, file, error) ||
	    !vendor_read_pin(vendor, file, error) || !vendor_read_ca(vendor, file, error) ||
	    !vendor_read_prices(vendor, file, error))
		return NULL;
	return g_steal_pointer(&vendor);
}

void
cs_vendor_free(CsVendor *vendor)
{
	if (vendor == NULL)
		return;
	g_free(vendor->id);
	g_free(vendor->path);
	g_free(vendor->name);
	g_free(vendor->driver);
	g_free(vendor->module);
	g_free(vendor->manufacturer);
	g_free(vendor->model);
	g_free(vendor->init_args);
	g_free(vendor->key_algorithm);
	g_free(vendor->ca_algorithm);
	g_free(vendor->crl_url);
	if (vendor->prices != NULL)
		g_hash_table_unref(vendor->prices);
	g_free(vendor);
}

static int
vendor_compare_id(gconstpointer a, gconstpointer b)
{
	const CsVendor *va = *(const CsVendor *const *)a;
	const CsVendor *vb = *(const CsVendor *const *)b;

	return strcmp(va->id, vb->id);
}

/* The profile files of @dir: regular "*.conf" files, hidden ones (editor droppings) left
 * out. NULL with no error when the directory does not exist. */
static GPtrArray *
vendor_dir_list(const char *dir, GError **error)
{
	g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GError) error_local = NULL;
	g_autoptr(GDir) gdir = g_dir_open(dir, 0, &error_local);
	const char *name;

	if (gdir == NULL) {
		if (g_error_matches(error_local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			return NULL;
		g_propagate_error(error, g_steal_pointer(&error_local));
		return NULL;
	}
	while ((name = g_dir_read_name(gdir)) != NULL) {
		g_autofree char *path = NULL;

		if (name[0] == '.' || !g_str_has_suffix(name, ".conf"))
			continue;
		path = g_build_filename(dir, name, NULL);
		if (g_file_test(path, G_FILE_TEST_IS_REGULAR))
			g_ptr_array_add(paths, g_steal_pointer(&path));
	}
	return g_steal_pointer(&paths);
}

gboolean
cs_config_load_vendors(CsConfig *config, GError **error)
{
	g_autoptr(GPtrArray) vendors =
	    g_ptr_array_new_with_free_func((GDestroyNotify)cs_vendor_free);
	g_autoptr(GPtrArray) paths = NULL;
	g_autoptr(GError) error_local = NULL;

	g_return_val_if_fail(config != NULL, FALSE);

	paths = vendor_dir_list(config->vendor_dir, &error_local);
	if (error_local != NULL) {
		g_propagate_error(error, g_steal_pointer(&error_local));
		return FALSE;
	}
	for (guint i = 0; paths != NULL && i < paths->len; i++) {
		CsVendor *vendor = cs_vendor_load(g_ptr_array_index(paths, i), error);

		if (vendor == NULL)
			return FALSE;
		g_ptr_array_add(vendors, vendor);
	}
	g_ptr_array_sort(vendors, vendor_compare_id);

	/* Replace the list only when every profile is good: all or nothing. */
	g_ptr_array_unref(config->vendors);
	config->vendors = g_steal_pointer(&vendors);
	return TRUE;
}

const CsVendor *
cs_config_find_vendor(CsConfig *config, const char *id)
{
	if (config == NULL || config->vendors == NULL || id == NULL)
		return NULL;
	for (guint i = 0; i < config->vendors->len; i++) {
		const CsVendor *vendor = g_ptr_array_index(config->vendors, i);

		if (g_strcmp0(vendor->id, id) == 0)
			return vendor;
	}
	return NULL;
}

GStrv
cs_vendor_get_price_kinds(const CsVendor *vendor)
{
	g_autoptr(GStrvBuilder) b = g_strv_builder_new();
	g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func(g_free);
	GHashTableIter iter;
	gpointer key;

	g_hash_table_iter_init(&iter, vendor->prices);
	while (g_hash_table_iter_next(&iter, &key, NULL)) {
		char *kind = g_strndup(key, strcspn(key, "."));
		if (g_ptr_array_find_with_equal_func(seen, kind, g_str_equal, NULL)) {
			g_free(kind);
			continue;
		}
		g_strv_builder_add(b, kind);
		g_ptr_array_add(seen, kind);
	}
	return g_strv_builder_end(b);
}

guint64
cs_vendor_get_price(const CsVendor *vendor, const char *kind, const char *subject_type)
{
	g_autofree char *key = NULL;
	const guint64 *fen;

	if (vendor == NULL || vendor->prices == NULL || kind == NULL || subject_type == NULL)
		return 0;
	key = g_strconcat(kind, ".", subject_type, NULL);
	fen = g_hash_table_lookup(vendor->prices, key);
	return fen != NULL ? *fen : 0;
}

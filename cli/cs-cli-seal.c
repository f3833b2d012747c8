/*
 * cs-cli-seal.c — `certseal seal show|verify FILE [--document DOC]`: GB/T 38540 seals and
 * document signatures read and verified locally, with the same code the daemon runs
 * (daemon/pki/cs-seal.c); no bus is needed.
 *
 * Trust comes from --ca FILE (a PEM bundle, e.g. what `certseal-office ca export`
 * prints; repeatable), or from the CA files of a state directory (--state-dir DIR, by
 * default the daemon's): DIR/ca/<vendor>/root.crt and issuing.crt.
 *
 * Rules kept: with --json, stdout carries exactly one JSON document; verification
 * prints {"valid": true|false, "kind", …, "reason"}. Exit codes: 0 valid (or shown),
 * 1 invalid or unreadable, 2 usage.
 */
#define G_LOG_DOMAIN "certseal"

#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/x509.h>

#include "certseal/plugin.h"
#include "cs-build-config.h"
#include "cs-cli-seal.h"
#include "cs-clock.h"
#include "cs-json.h"
#include "cs-seal.h"

#define SEAL_USAGE                                                                                 \
	"usage: certseal seal show FILE [--picture OUT] | certseal seal verify FILE "              \
	"[--document DOC] [--ca PEM]… [--state-dir DIR] [--at TIME]"

static int
seal_fail(gboolean json, int code, const char *name, const char *message)
{
	if (json) {
		g_autoptr(GString) s = g_string_new("{\"error\":{\"code\":");
		cs_json_append_string(s, name);
		g_string_append(s, ",\"message\":");
		cs_json_append_string(s, message);
		g_string_append(s, "}}");
		g_print("%s\n", s->str);
	} else {
		g_printerr("certseal: %s\n", message);
	}
	return code;
}

static char *
iso_time(gint64 t)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);

	return dt != NULL ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ") : g_strdup("?");
}

/* RFC 2253 text, UTF-8 kept as UTF-8. */
static char *
subject_of(X509 *x)
{
	BIO *bio;
	char *data = NULL;
	long len;
	char *out;

	if (x == NULL)
		return g_strdup("(not a certificate)");
	bio = BIO_new(BIO_s_mem());
	if (bio == NULL || X509_NAME_print_ex(bio, X509_get_subject_name(x), 0,
					      XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0) {
		BIO_free(bio);
		return g_strdup("?");
	}
	len = BIO_get_mem_data(bio, &data);
	out = g_strndup(data, (gsize)len);
	BIO_free(bio);
	return out;
}

static void
dict_time(GVariantDict *d, const char *key, gint64 t)
{
	g_autofree char *s = iso_time(t);
	g_variant_dict_insert(d, key, "s", s);
}

static GVariant *
seal_to_variant(const CsSealInfo *info)
{
	GVariantDict d;
	GVariantBuilder holders;
	g_autofree char *maker = subject_of(info->maker);

	g_variant_dict_init(&d, NULL);
	g_variant_dict_insert(&d, "kind", "s", "seal");
	g_variant_dict_insert(&d, "vendor_id", "s", info->vendor_id);
	g_variant_dict_insert(&d, "es_id", "s", info->es_id);
	g_variant_dict_insert(&d, "version", "x", info->version);
	g_variant_dict_insert(&d, "type", "s",
			      info->type == CS_SEAL_ORG	     ? "org"
			      : info->type == CS_SEAL_PERSON ? "person"
							     : "unknown");
	g_variant_dict_insert(&d, "name", "s", info->name);
	dict_time(&d, "created", info->created);
	dict_time(&d, "valid_start", info->valid_start);
	dict_time(&d, "valid_end", info->valid_end);
	g_variant_dict_insert(&d, "picture_type", "s", info->picture_type);
	g_variant_dict_insert(&d, "picture_size", "t", (guint64)g_bytes_get_size(info->picture));
	g_variant_dict_insert(&d, "width_mm", "x", info->width_mm);
	g_variant_dict_insert(&d, "height_mm", "x", info->height_mm);
	g_variant_dict_insert(&d, "sign_algorithm", "s", info->sign_algorithm);
	g_variant_dict_insert(&d, "maker", "s", maker);
	g_variant_builder_init(&holders, G_VARIANT_TYPE("as"));
	for (guint i = 0; i < info->holders->len; i++) {
		g_autofree char *h = subject_of(g_ptr_array_index(info->holders, i));
		g_variant_builder_add(&holders, "s", h);
	}
	g_variant_dict_insert_value(&d, "holders", g_variant_builder_end(&holders));
	return g_variant_dict_end(&d);
}

static GVariant *
signature_to_variant(const CsSignatureInfo *info)
{
	GVariantDict d;
	g_autofree char *signer = subject_of(info->signer);

	g_variant_dict_init(&d, NULL);
	g_variant_dict_insert(&d, "kind", "s", "signature");
	g_variant_dict_insert(&d, "version", "x", info->version);
	dict_time(&d, "time", info->time);
	g_variant_dict_insert(&d, "property_info", "s", info->property_info);
	g_variant_dict_insert(&d, "data_hash", "s", info->data_hash_hex);
	g_variant_dict_insert(&d, "sign_algorithm", "s", info->sign_algorithm);
	g_variant_dict_insert(&d, "signer", "s", signer);
	g_variant_dict_insert_value(&d, "seal", seal_to_variant(info->seal_info));
	return g_variant_dict_end(&d);
}

static void
print_human(GVariant *v, int indent)
{
	GVariantIter iter;
	const char *key;
	GVariant *value;

	g_variant_iter_init(&iter, v);
	while (g_variant_iter_next(&iter, "{&sv}", &key, &value)) {
		g_autoptr(GVariant) owned = value;

		if (g_variant_is_of_type(value, G_VARIANT_TYPE_VARDICT)) {
			g_print("%*s%s:\n", indent, "", key);
			print_human(value, indent + 2);
		} else if (g_variant_is_of_type(value, G_VARIANT_TYPE_STRING)) {
			g_print("%*s%-15s %s\n", indent, "", key,
				g_variant_get_string(value, NULL));
		} else if (g_variant_is_of_type(value, G_VARIANT_TYPE_STRING_ARRAY)) {
			g_autofree const char **strv = g_variant_get_strv(value, NULL);
			g_autofree char *joined = g_strjoinv("; ", (char **)strv);
			g_print("%*s%-15s %s\n", indent, "", key, joined);
		} else {
			g_autofree char *text = g_variant_print(value, FALSE);
			g_print("%*s%-15s %s\n", indent, "", key, text);
		}
	}
}

static void
emit(gboolean json, GVariant *v)
{
	g_autoptr(GVariant) owned = g_variant_ref_sink(v);

	if (json) {
		g_autofree char *s = cs_json_from_variant(owned);
		g_print("%s\n", s);
	} else {
		print_human(owned, 0);
	}
}

static gboolean
read_file(const char *path, const char *what, GBytes **out, GError **error)
{
	g_autoptr(GMappedFile) map = g_mapped_file_new(path, FALSE, error);

	if (map == NULL) {
		g_prefix_error(error, "%s: ", what);
		return FALSE;
	}
	*out = g_mapped_file_get_bytes(map);
	return TRUE;
}

static gboolean
add_ca_file(CsSealTrust *trust, const char *path, gboolean required, GError **error)
{
	g_autofree char *pem = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &pem, &len, error)) {
		if (!required) {
			g_clear_error(error);
			return TRUE;
		}
		g_prefix_error(error, "--ca: ");
		return FALSE;
	}
	if (!cs_seal_trust_add_pem(trust, pem, len, error)) {
		g_prefix_error(error, "%s: ", path);
		return FALSE;
	}
	return TRUE;
}

/* show --picture OUT: the seal's picture (PNG or JPEG, as the seal carries it) saved. */
static int
seal_show(gboolean json, const char *path, const char *picture)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) der = NULL;
	const guint8 *data;
	gsize len = 0;
	int kind;

	if (!read_file(path, "FILE", &der, &error))
		return seal_fail(json, 1, "org.certseal.Error.InvalidInput", error->message);
	data = g_bytes_get_data(der, &len);
	kind = cs_seal_sniff(data, len);
	if (kind == 1) {
		g_autoptr(CsSealInfo) info = cs_seal_parse(data, len, &error);
		if (info != NULL && picture != NULL &&
		    !g_file_set_contents(picture, g_bytes_get_data(info->picture, NULL),
					 (gssize)g_bytes_get_size(info->picture), &error))
			return seal_fail(json, 2, "file", error->message);
		if (info != NULL) {
			emit(json, seal_to_variant(info));
			return 0;
		}
	} else if (kind == 2) {
		g_autoptr(CsSignatureInfo) info = cs_signature_parse(data, len, &error);
		if (info != NULL) {
			emit(json, signature_to_variant(info));
			return 0;
		}
	} else {
		g_set_error(
		    &error, CS_ERROR, CS_ERROR_INVALID_INPUT,
		    "%s: neither a GB/T 38540 seal (SESeal) nor a signature (SES_Signature)", path);
	}
	return seal_fail(json, 1, "org.certseal.Error.InvalidInput", error->message);
}

static int
report(gboolean json, const char *kind, const char *subject, GError *error)
{
	if (json) {
		GVariantDict d;
		g_variant_dict_init(&d, NULL);
		g_variant_dict_insert(&d, "valid", "b", error == NULL);
		g_variant_dict_insert(&d, "kind", "s", kind);
		if (subject != NULL)
			g_variant_dict_insert(&d, "subject", "s", subject);
		if (error != NULL)
			g_variant_dict_insert(&d, "reason", "s", error->message);
		emit(TRUE, g_variant_dict_end(&d));
	} else if (error == NULL) {
		g_print("valid: %s %s\n", kind, subject != NULL ? subject : "");
	} else {
		g_print("invalid: %s\n", error->message);
	}
	return error == NULL ? 0 : 1;
}

static int
seal_verify(gboolean json,
	    const char *path,
	    const char *document,
	    GPtrArray *ca_files,
	    const char *state_dir,
	    gint64 at)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) der = NULL;
	g_autoptr(GBytes) doc = NULL;
	g_autoptr(CsSealTrust) trust = cs_seal_trust_new();
	const guint8 *data;
	gsize len = 0;
	int kind;

	if (!read_file(path, "FILE", &der, &error))
		return seal_fail(json, 1, "org.certseal.Error.InvalidInput", error->message);
	for (guint i = 0; i < ca_files->len; i++) {
		if (!add_ca_file(trust, g_ptr_array_index(ca_files, i), TRUE, &error))
			return seal_fail(json, 1, "org.certseal.Error.InvalidInput",
					 error->message);
	}
	if (ca_files->len == 0 || state_dir != NULL)
		(void)cs_seal_trust_add_state_dir(trust,
						  state_dir != NULL ? state_dir : CS_STATE_DIR);
	data = g_bytes_get_data(der, &len);
	kind = cs_seal_sniff(data, len);
	if (kind == 2 && document == NULL)
		return seal_fail(json, 2, "usage",
				 "a document signature is verified against its document: add "
				 "--document DOC");
	if (kind == 1) {
		g_autoptr(CsSealInfo) info = cs_seal_parse(data, len, NULL);
		g_autofree char *what = info != NULL
					    ? g_strdup_printf("%s (%s, vendor %s)", info->es_id,
							      info->name, info->vendor_id)
					    : NULL;
		cs_seal_verify(data, len, trust, at, &error);
		return report(json, "seal", what, error);
	}
	if (kind == 2) {
		g_autoptr(CsSignatureInfo) info = cs_signature_parse(data, len, NULL);
		g_autofree char *what =
		    info != NULL
			? g_strdup_printf("of %s by %s", info->property_info, info->seal_info->name)
			: NULL;
		if (!read_file(document, "--document", &doc, &error))
			return seal_fail(json, 1, "org.certseal.Error.InvalidInput",
					 error->message);
		cs_signature_verify(data, len, g_bytes_get_data(doc, NULL), g_bytes_get_size(doc),
				    trust, &error);
		return report(json, "signature", what, error);
	}
	g_set_error(&error, CS_ERROR, CS_ERROR_INVALID_INPUT,
		    "%s: neither a GB/T 38540 seal (SESeal) nor a signature (SES_Signature)", path);
	return report(json, "unknown", NULL, error);
}

int
cs_cli_seal(gboolean json, int argc, char **argv)
{
	g_autoptr(GPtrArray) ca_files = g_ptr_array_new();
	const char *document = NULL;
	const char *state_dir = NULL;
	const char *file = NULL;
	const char *at_text = NULL;
	const char *picture = NULL;
	gint64 at_offset = 0;
	g_autoptr(GError) error = NULL;

	if (argc < 2)
		return seal_fail(json, 2, "usage", SEAL_USAGE);
	for (int i = 2; i < argc; i++) {
		if (g_strcmp0(argv[i], "--document") == 0 && i + 1 < argc)
			document = argv[++i];
		else if (g_strcmp0(argv[i], "--ca") == 0 && i + 1 < argc)
			g_ptr_array_add(ca_files, argv[++i]);
		else if (g_strcmp0(argv[i], "--state-dir") == 0 && i + 1 < argc)
			state_dir = argv[++i];
		else if (g_strcmp0(argv[i], "--at") == 0 && i + 1 < argc)
			at_text = argv[++i];
		else if (g_strcmp0(argv[i], "--picture") == 0 && i + 1 < argc &&
			 g_strcmp0(argv[0], "show") == 0)
			picture = argv[++i];
		else
			return seal_fail(json, 2, "usage", SEAL_USAGE);
	}
	/* --at: the instant the seal is checked at, in CERTSEAL_TEST_NOW's syntax (an
	 * ISO-8601 date-time or +Nd/-Nd from now), for seals made under a moved clock. */
	if (!cs_clock_parse_offset(at_text, g_get_real_time(), &at_offset, &error)) {
		g_autofree char *msg = g_strdup_printf("--at: %s", error->message);
		return seal_fail(json, 2, "usage", msg);
	}
	file = argv[1];
	if (g_strcmp0(argv[0], "show") == 0 && document == NULL && ca_files->len == 0)
		return seal_show(json, file, picture);
	if (g_strcmp0(argv[0], "verify") == 0)
		return seal_verify(json, file, document, ca_files, state_dir,
				   (g_get_real_time() + at_offset) / G_USEC_PER_SEC);
	return seal_fail(json, 2, "usage", SEAL_USAGE);
}

/*
 * test-seal.c — GB/T 38540 seals and document signatures (docs/architecture.md §9) made by the real
 * CA of each vendor (RSA, EC, SM2): a seal that round-trips and verifies, every kind of tampering
 * detected and named, an expired seal refused, a document sealed and verified, and the same checks
 * through the `certseal seal show|verify` command line.
 */
#include <glib/gstdio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <string.h>

#include "cs-ca.h"
#include "cs-seal.h"
#include "cs-validity.h"

#define DAY CS_VALIDITY_DAY_SECONDS

/* A 1×1 PNG and the start of a JPEG: the picture checks look at the signature bytes. */
static const guint8 png[] = {0x89, 'P', 'N', 'G',  '\r', '\n', 0x1a, '\n', 0,	0,   0,	 13, 'I',
			     'H',  'D', 'R', 0,	   0,	 0,    1,    0,	   0,	0,   1,	 8,  6,
			     0,	   0,	0,   0x1f, 0x15, 0xc4, 0x89, 'P',  'I', 'C', 'T'};
static const guint8 jpg[] = {0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F',
			     'I',  'F',	 0,    1,    1, 0,  'P', 'X'};

typedef struct {
	char *dir;
	CsConfig *config;
	CsVault *vault;
	CsLedger *ledger;
	CsCaSet *cas;
	CsCa *ca;
	EVP_PKEY *holder_key;
	X509 *holder;
	GBytes *seal;
	CsSealTrust *trust;
	gint64 now;
} Fixture;

static void
write_profile(const char *vendor_dir, const char *id, const char *alg)
{
	g_autofree char *path = g_strdup_printf("%s/%s.conf", vendor_dir, id);
	g_autofree char *text = g_strdup_printf(
	    "[vendor]\nname = Test vendor %s\ndriver = pkcs11\n[key]\nalgorithm = %s\n"
	    "[ca]\nalgorithm = %s\ncrl_url = http://crl.%s.test/issuing.crl\n",
	    id, alg, alg, id);
	g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

static GBytes *
make_csr(EVP_PKEY *key)
{
	X509_REQ *req = X509_REQ_new();
	g_autoptr(EVP_MD_CTX) ctx = cs_sign_ctx_new(key, NULL);
	guint8 *der = NULL;
	int len;
	GBytes *out;

	g_assert_nonnull(ctx);
	g_assert_cmpint(X509_REQ_set_pubkey(req, key), ==, 1);
	g_assert_cmpint(X509_REQ_sign_ctx(req, ctx), >, 0);
	len = i2d_X509_REQ(req, &der);
	out = g_bytes_new(der, (gsize)len);
	OPENSSL_free(der);
	X509_REQ_free(req);
	return out;
}

static X509 *
issue_holder(Fixture *f, const char *vendor, EVP_PKEY *key)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) der = make_csr(key);
	g_autoptr(CsCsr) csr =
	    cs_csr_parse(g_bytes_get_data(der, NULL), g_bytes_get_size(der), &error);
	CsIssueRequest request = {
	    .vendor = vendor,
	    .actor = "office:test",
	    .subject = {CS_SUBJECT_ORG, "厦门示例科技有限公司", "91350200776049653A"},
	};
	g_autoptr(GBytes) cert = NULL;
	X509 *x;

	g_assert_no_error(error);
	cert = cs_ca_set_issue(f->cas, &request, csr, f->now, &error);
	g_assert_no_error(error);
	x = cs_x509_from_der(cert);
	g_assert_nonnull(x);
	return x;
}

static GBytes *
build_seal(Fixture *f,
	   CsCa *ca,
	   X509 *maker,
	   EVP_PKEY *maker_key,
	   const guint8 *pic,
	   gsize len,
	   GError **error)
{
	CsSealSpec spec = {
	    .vendor_id = cs_ca_get_vendor_id(ca),
	    .es_id = "35020000000001",
	    .type = CS_SEAL_ORG,
	    .name = "厦门示例科技有限公司",
	    .holder = f->holder,
	    .created = f->now,
	    .valid_start = f->now,
	    .valid_end = f->now + 365 * DAY,
	    .picture = pic,
	    .picture_len = len,
	    .width_mm = 40,
	    .height_mm = 40,
	};

	return cs_seal_build(&spec, maker, maker_key, error);
}

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
	const char *alg = data;
	g_autoptr(GError) error = NULL;
	g_autofree char *vendor_dir = NULL;
	g_autofree char *ledger_path = NULL;

	f->dir = g_dir_make_tmp("cs-seal-XXXXXX", &error);
	g_assert_no_error(error);
	vendor_dir = g_build_filename(f->dir, "vendors.d", NULL);
	g_assert_cmpint(g_mkdir(vendor_dir, 0700), ==, 0);
	write_profile(vendor_dir, "v-main", alg);
	write_profile(vendor_dir, "v-other", alg);
	f->config = cs_config_load(NULL, &error);
	g_assert_no_error(error);
	g_free(f->config->vendor_dir);
	f->config->vendor_dir = g_steal_pointer(&vendor_dir);
	g_assert_true(cs_config_load_vendors(f->config, &error));
	ledger_path = g_build_filename(f->dir, "ledger.db", NULL);
	f->vault = cs_vault_open(f->dir, &error);
	g_assert_no_error(error);
	f->ledger = cs_ledger_open(ledger_path, f->vault, 1000, &error);
	g_assert_no_error(error);
	f->cas = cs_ca_set_new(f->config, f->dir, f->ledger, &error);
	g_assert_no_error(error);
	f->ca = cs_ca_set_get(f->cas, "v-main", NULL);
	/* "Now" once the CA exists: its certificates start at their creation second, which a
	 * slow (sanitized) key generation can push past a time taken earlier. */
	f->now = g_get_real_time() / G_USEC_PER_SEC;
	f->holder_key = cs_key_generate(cs_ca_get_algorithm(f->ca), &error);
	g_assert_no_error(error);
	f->holder = issue_holder(f, "v-main", f->holder_key);
	f->seal = build_seal(f, f->ca, cs_ca_get_seal_maker(f->ca), cs_ca_get_seal_maker_key(f->ca),
			     png, sizeof(png), &error);
	g_assert_no_error(error);
	g_assert_nonnull(f->seal);
	/* Trust what `certseal-office ca export` would print: root, issuing, seal maker. */
	f->trust = cs_seal_trust_new();
	{
		g_autofree char *pem = cs_ca_export_pem(f->ca);
		g_assert_true(cs_seal_trust_add_pem(f->trust, pem, strlen(pem), &error));
		g_assert_cmpuint(cs_seal_trust_count(f->trust), ==, 1);
	}
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", f->dir);

	g_clear_pointer(&f->trust, cs_seal_trust_free);
	g_clear_pointer(&f->seal, g_bytes_unref);
	g_clear_pointer(&f->holder, X509_free);
	g_clear_pointer(&f->holder_key, EVP_PKEY_free);
	g_clear_pointer(&f->cas, cs_ca_set_free);
	g_clear_pointer(&f->ledger, cs_ledger_free);
	g_clear_pointer(&f->vault, cs_vault_free);
	g_clear_pointer(&f->config, cs_config_free);
	g_assert_cmpint(system(cmd), ==, 0);
	g_free(f->dir);
}

/* A copy of @b with @n bytes at the first occurrence of @what changed by @edit. */
static GBytes *
tamper(GBytes *b, const void *what, gsize what_len, gsize offset, const void *edit, gsize n)
{
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(b, &len);
	guint8 *copy = g_memdup2(data, len);
	guint8 *at = memmem(copy, len, what, what_len);

	g_assert_nonnull(at);
	memcpy(at + offset, edit, n);
	return g_bytes_new_take(copy, len);
}

static void
assert_seal_refused(Fixture *f, GBytes *seal, gint64 at, const char *message_start)
{
	g_autoptr(GError) error = NULL;

	g_assert_false(cs_seal_verify(g_bytes_get_data(seal, NULL), g_bytes_get_size(seal),
				      f->trust, at, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	if (!g_str_has_prefix(error->message, message_start))
		g_error("expected '%s…', got '%s'", message_start, error->message);
	g_assert_cmpint(ERR_peek_error(), ==, 0);
}

/* ---- seals ---------------------------------------------------------------------------- */

static void
test_seal_round_trip(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CsSealInfo) info =
	    cs_seal_parse(g_bytes_get_data(f->seal, NULL), g_bytes_get_size(f->seal), &error);
	gboolean sm2 = cs_ca_get_algorithm(f->ca) == CS_KEY_SM2;

	g_assert_no_error(error);
	g_assert_cmpstr(info->vendor_id, ==, "v-main");
	g_assert_cmpint(info->version, ==, 4);
	g_assert_cmpstr(info->es_id, ==, "35020000000001");
	g_assert_cmpint(info->type, ==, CS_SEAL_ORG);
	g_assert_cmpstr(info->name, ==, "厦门示例科技有限公司");
	g_assert_cmpint(info->valid_start, ==, f->now);
	g_assert_cmpint(info->valid_end, ==, f->now + 365 * DAY);
	g_assert_cmpstr(info->picture_type, ==, "PNG");
	g_assert_cmpmem(g_bytes_get_data(info->picture, NULL), g_bytes_get_size(info->picture), png,
			sizeof(png));
	g_assert_cmpint(info->width_mm, ==, 40);
	g_assert_cmpstr(info->sign_algorithm, ==,
			sm2					       ? "1.2.156.10197.1.501"
			: cs_ca_get_algorithm(f->ca) == CS_KEY_EC_P256 ? "1.2.840.10045.4.3.2"
								       : "1.2.840.113549.1.1.11");
	g_assert_cmpuint(info->holders->len, ==, 1);
	g_assert_cmpint(X509_cmp(g_ptr_array_index(info->holders, 0), f->holder), ==, 0);
	g_assert_cmpint(X509_cmp(info->maker, cs_ca_get_seal_maker(f->ca)), ==, 0);
	g_assert_cmpint(cs_seal_sniff(g_bytes_get_data(f->seal, NULL), g_bytes_get_size(f->seal)),
			==, 1);

	g_assert_true(cs_seal_verify(g_bytes_get_data(f->seal, NULL), g_bytes_get_size(f->seal),
				     f->trust, f->now + 60, &error));
	g_assert_no_error(error);

	/* A JPEG seal works the same way. */
	{
		g_autoptr(GBytes) j =
		    build_seal(f, f->ca, cs_ca_get_seal_maker(f->ca),
			       cs_ca_get_seal_maker_key(f->ca), jpg, sizeof(jpg), &error);
		g_autoptr(CsSealInfo) ji = NULL;
		g_assert_no_error(error);
		ji = cs_seal_parse(g_bytes_get_data(j, NULL), g_bytes_get_size(j), &error);
		g_assert_cmpstr(ji->picture_type, ==, "JPG");
		g_assert_true(cs_seal_verify(g_bytes_get_data(j, NULL), g_bytes_get_size(j),
					     f->trust, f->now, &error));
		g_assert_no_error(error);
	}
	/* A picture that is neither is refused when building. */
	{
		static const guint8 gif[] = "GIF89a....";
		g_autoptr(GBytes) g =
		    build_seal(f, f->ca, cs_ca_get_seal_maker(f->ca),
			       cs_ca_get_seal_maker_key(f->ca), gif, sizeof(gif), &error);
		g_assert_null(g);
		g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	}
}

static void
test_seal_tampering(Fixture *f, gconstpointer data)
{
	gint64 at = f->now + 60;
	guint8 flip;
	gsize len = g_bytes_get_size(f->seal);
	const guint8 *der = g_bytes_get_data(f->seal, NULL);

	/* The picture's bytes. */
	{
		g_autoptr(GBytes) t = tamper(f->seal, "PICT", 4, 0, "PACT", 4);
		assert_seal_refused(f, t, at, "seal signature: does not verify");
	}
	/* The picture's type, and data that is not what the type says. */
	{
		g_autoptr(GBytes) t = tamper(f->seal, "\x16\x03PNG", 5, 2, "GIF", 3);
		g_autoptr(GBytes) u = tamper(f->seal, "\x89PNG", 4, 1, "MNG", 3);
		assert_seal_refused(f, t, at, "seal picture: type 'GIF' is not PNG or JPG");
		assert_seal_refused(f, u, at,
				    "seal picture: the data is neither PNG nor JPEG, not PNG");
	}
	/* The name and the dates inside the signed part. */
	{
		g_autoptr(GBytes) t =
		    tamper(f->seal, "示例", strlen("示例"), 0, "范例", strlen("范例"));
		assert_seal_refused(f, t, at, "seal signature: does not verify");
	}
	/* The signature itself: its last byte. */
	{
		g_autofree guint8 *copy = g_memdup2(der, len);
		g_autoptr(GBytes) t = NULL;
		copy[len - 1] ^= 0x01;
		t = g_bytes_new(copy, len);
		assert_seal_refused(f, t, at, "seal signature: does not verify");
	}
	/* The header. */
	{
		g_autoptr(GBytes) t = tamper(f->seal,
					     "\x16\x02"
					     "ES",
					     4, 2, "EX", 2);
		assert_seal_refused(f, t, at, "seal header: id 'EX'");
	}
	/* Expired, and not yet valid. */
	assert_seal_refused(f, f->seal, f->now + 365 * DAY + 1, "seal dates: expired on ");
	assert_seal_refused(f, f->seal, f->now - 1, "seal");
	/* Not DER: trailing bytes, truncated, oversized, empty. */
	{
		g_autofree guint8 *copy = g_malloc(len + 1);
		g_autoptr(GBytes) t = NULL;
		g_autoptr(GBytes) cut = g_bytes_new(der, len - 1);
		memcpy(copy, der, len);
		copy[len] = 0;
		t = g_bytes_new(copy, len + 1);
		assert_seal_refused(f, t, at, "seal: 1 bytes after the structure");
		assert_seal_refused(f, cut, at, "seal: not a DER SESEAL");
		(void)flip;
	}
	{
		g_autofree guint8 *big = g_malloc0(CS_SEAL_MAX_SIZE + 1);
		g_autoptr(GBytes) t = g_bytes_new_take(g_steal_pointer(&big), CS_SEAL_MAX_SIZE + 1);
		assert_seal_refused(f, t, at, "seal: too large");
	}
	/* A seal maker not issued by a trusted root: another vendor's (real) maker, and a
	 * forged maker with a copied name. */
	{
		g_autoptr(GError) error = NULL;
		CsCa *other = cs_ca_set_get(f->cas, "v-other", NULL);
		g_autoptr(GBytes) t =
		    build_seal(f, f->ca, cs_ca_get_seal_maker(other),
			       cs_ca_get_seal_maker_key(other), png, sizeof(png), &error);
		g_autoptr(EVP_PKEY) fake_key = cs_key_generate(cs_ca_get_algorithm(f->ca), &error);
		g_autoptr(X509) fake = X509_dup(cs_ca_get_seal_maker(f->ca));
		g_autoptr(EVP_MD_CTX) ctx = cs_sign_ctx_new(fake_key, &error);
		g_autoptr(GBytes) u = NULL;

		g_assert_no_error(error);
		assert_seal_refused(f, t, at, "seal maker certificate: ");
		g_assert_cmpint(X509_set_pubkey(fake, fake_key), ==, 1);
		g_assert_cmpint(X509_sign_ctx(fake, ctx), >, 0);
		u = build_seal(f, f->ca, fake, fake_key, png, sizeof(png), &error);
		g_assert_no_error(error);
		assert_seal_refused(f, u, at, "seal maker certificate: ");
	}
	/* Without any trust anchor, nothing verifies. */
	{
		g_autoptr(CsSealTrust) none = cs_seal_trust_new();
		g_autoptr(GError) error = NULL;
		g_assert_false(cs_seal_verify(der, len, none, at, &error));
		g_assert_nonnull(strstr(error->message, "no trusted root"));
	}
}

/* Random damage, as a bounded fuzz run: every changed byte of a seal is covered by the
 * maker's signature (or is the maker's certificate, its algorithm or the signature), so
 * no mutation may verify — and none may crash or leave OpenSSL errors queued. */
static void
test_seal_mutations(Fixture *f, gconstpointer data)
{
	gsize len = g_bytes_get_size(f->seal);
	const guint8 *der = g_bytes_get_data(f->seal, NULL);

	for (guint round = 0; round < 400; round++) {
		g_autofree guint8 *copy = g_memdup2(der, len);
		g_autoptr(GError) error = NULL;
		g_autoptr(CsSealInfo) info = NULL;
		gsize cut = len;
		guint n = (guint)g_test_rand_int_range(1, 4);

		for (guint i = 0; i < n; i++) {
			gsize at = (gsize)g_test_rand_int_range(0, (gint32)len);
			copy[at] ^= (guint8)g_test_rand_int_range(1, 256);
		}
		if (round % 10 == 9)
			cut = (gsize)g_test_rand_int_range(1, (gint32)len);
		if (cut == len && memcmp(copy, der, len) == 0)
			continue;
		info = cs_seal_parse(copy, cut, NULL);
		g_assert_false(cs_seal_verify(copy, cut, f->trust, f->now + 60, &error));
		g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
		g_assert_cmpint(ERR_peek_error(), ==, 0);
		g_assert_cmpint(cs_seal_sniff(copy, cut), <=, 2);
	}
}

static void
test_csr_mutations(Fixture *f, gconstpointer data)
{
	g_autoptr(GBytes) csr = make_csr(f->holder_key);
	gsize len = g_bytes_get_size(csr);
	const guint8 *der = g_bytes_get_data(csr, NULL);
	guint refused = 0;

	for (guint round = 0; round < 400; round++) {
		g_autofree guint8 *copy = g_memdup2(der, len);
		g_autoptr(GError) error = NULL;
		g_autoptr(CsCsr) parsed = NULL;
		gsize at = (gsize)g_test_rand_int_range(0, (gint32)len);

		copy[at] ^= (guint8)g_test_rand_int_range(1, 256);
		parsed = cs_csr_parse(copy, len, &error);
		g_assert_true((parsed == NULL) == (error != NULL));
		refused += parsed == NULL;
		g_assert_cmpint(ERR_peek_error(), ==, 0);
	}
	/* Nearly every byte is signed; the few that are not (e.g. DER length forms) are
	 * refused as non-DER or as a bad signature as well. */
	g_assert_cmpuint(refused, >=, 390);
}

/* ---- documents ------------------------------------------------------------------------ */

static const char document[] =
    "%PDF-1.7\n合同 / contract between A and B, signed 2026-11-24\n%%EOF\n";

static GBytes *
sign_doc(Fixture *f, X509 *signer, EVP_PKEY *key, gint64 when, GError **error)
{
	return cs_seal_sign_document(f->seal, signer, (const guint8 *)document, strlen(document),
				     "contract.pdf", when, cs_seal_sign_with_key, key, error);
}

static void
assert_doc_refused(Fixture *f, GBytes *sig, const char *doc, const char *message_start)
{
	g_autoptr(GError) error = NULL;

	g_assert_false(cs_signature_verify(g_bytes_get_data(sig, NULL), g_bytes_get_size(sig),
					   (const guint8 *)doc, strlen(doc), f->trust, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	if (!g_str_has_prefix(error->message, message_start))
		g_error("expected '%s…', got '%s'", message_start, error->message);
}

static void
test_document_sign_verify(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) sig = sign_doc(f, f->holder, f->holder_key, f->now + 10, &error);
	g_autoptr(CsSignatureInfo) info = NULL;
	gboolean sm2 = cs_ca_get_algorithm(f->ca) == CS_KEY_SM2;

	g_assert_no_error(error);
	g_assert_true(cs_signature_verify(g_bytes_get_data(sig, NULL), g_bytes_get_size(sig),
					  (const guint8 *)document, strlen(document), f->trust,
					  &error));
	g_assert_no_error(error);
	info = cs_signature_parse(g_bytes_get_data(sig, NULL), g_bytes_get_size(sig), &error);
	g_assert_no_error(error);
	g_assert_cmpint(info->version, ==, 4);
	g_assert_cmpint(info->time, ==, f->now + 10);
	g_assert_cmpstr(info->property_info, ==, "contract.pdf");
	g_assert_cmpuint(strlen(info->data_hash_hex), ==, 64);
	if (!sm2) {
		g_autofree char *sha =
		    g_compute_checksum_for_string(G_CHECKSUM_SHA256, document, -1);
		g_assert_cmpstr(info->data_hash_hex, ==, sha);
	}
	g_assert_cmpint(X509_cmp(info->signer, f->holder), ==, 0);
	g_assert_true(g_bytes_equal(info->seal, f->seal));
	g_assert_cmpint(cs_seal_sniff(g_bytes_get_data(sig, NULL), g_bytes_get_size(sig)), ==, 2);

	/* Another document, or one byte changed. */
	assert_doc_refused(f, sig, "%PDF-1.7\nsomething else\n",
			   "document: its hash does not match");
	{
		g_autofree char *changed = g_strdup(document);
		changed[10] ^= 1;
		assert_doc_refused(f, sig, changed, "document: its hash does not match");
	}
	/* The signature, the signed time, the signed name. */
	{
		gsize len = g_bytes_get_size(sig);
		g_autofree guint8 *copy = g_memdup2(g_bytes_get_data(sig, NULL), len);
		g_autoptr(GBytes) t = NULL;
		g_autoptr(GBytes) u = tamper(sig, "contract.pdf", 12, 0, "contrakt", 8);
		copy[len - 1] ^= 0x01;
		t = g_bytes_new(copy, len);
		assert_doc_refused(f, t, document, "signature: does not verify");
		assert_doc_refused(f, u, document, "signature: does not verify");
	}
	/* The seal inside the signature is checked too. */
	{
		g_autoptr(GBytes) t = tamper(sig, "PICT", 4, 0, "PACT", 4);
		assert_doc_refused(f, t, document, "seal signature: does not verify");
	}
	/* Signed after the seal expired. */
	{
		g_autoptr(GBytes) late =
		    sign_doc(f, f->holder, f->holder_key, f->now + 366 * DAY, &error);
		g_assert_no_error(error);
		assert_doc_refused(f, late, document, "seal dates: expired on ");
	}
	/* A signer not in the seal's certList cannot use it. */
	{
		g_autoptr(EVP_PKEY) k2 = cs_key_generate(cs_ca_get_algorithm(f->ca), &error);
		g_autoptr(X509) c2 = issue_holder(f, "v-main", k2);
		g_autoptr(GBytes) s2 = sign_doc(f, c2, k2, f->now, &error);
		g_assert_null(s2);
		g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
		g_clear_error(&error);
		/* … nor sign with another key under the holder's certificate. */
		g_autoptr(GBytes) s3 = sign_doc(f, f->holder, k2, f->now, &error);
		g_assert_no_error(error);
		assert_doc_refused(f, s3, document, "signature: does not verify");
	}
	/* Trusting another vendor only: the chain fails. */
	{
		g_autoptr(CsSealTrust) other = cs_seal_trust_new();
		g_autofree char *pem = cs_ca_export_pem(cs_ca_set_get(f->cas, "v-other", NULL));
		g_assert_true(cs_seal_trust_add_pem(other, pem, strlen(pem), &error));
		g_assert_false(cs_signature_verify(g_bytes_get_data(sig, NULL),
						   g_bytes_get_size(sig), (const guint8 *)document,
						   strlen(document), other, &error));
		g_assert_true(g_str_has_prefix(error->message, "seal maker certificate: "));
	}
}

/* ---- the command line ----------------------------------------------------------------- */

static int
run_cli(const char *const *args, char **out)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GError) error = NULL;
	g_autofree char *err = NULL;
	int status = -1;

	g_ptr_array_add(argv, g_build_filename(g_getenv("CS_BUILD_DIR"), "cli", "certseal", NULL));
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, g_strdup(args[i]));
	g_ptr_array_add(argv, NULL);
	g_assert_true(g_spawn_sync(NULL, (char **)argv->pdata, NULL, 0, NULL, NULL, out, &err,
				   &status, &error));
	g_assert_no_error(error);
	g_test_message("certseal %s %s: %s%s", args[0], args[1], *out, err);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return -1;
}

static char *
write_tmp(Fixture *f, const char *name, const void *data, gsize len)
{
	char *path = g_build_filename(f->dir, name, NULL);
	g_assert_true(g_file_set_contents(path, data, (gssize)len, NULL));
	return path;
}

static void
test_cli_show_verify(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) sig = sign_doc(f, f->holder, f->holder_key, f->now + 5, &error);
	g_autofree char *pem = cs_ca_export_pem(f->ca);
	g_autofree char *ca = write_tmp(f, "trust.pem", pem, strlen(pem));
	g_autofree char *seal =
	    write_tmp(f, "seal.der", g_bytes_get_data(f->seal, NULL), g_bytes_get_size(f->seal));
	g_autofree char *sigf =
	    write_tmp(f, "contract.pdf.ses", g_bytes_get_data(sig, NULL), g_bytes_get_size(sig));
	g_autofree char *doc = write_tmp(f, "contract.pdf", document, strlen(document));
	g_autofree char *other = write_tmp(f, "other.pdf", "other", 5);
	g_autofree char *bad = NULL;
	g_autofree char *state_dir = g_strdup(f->dir);

	g_assert_no_error(error);
	{
		const char *args[] = {"--json", "seal", "show", seal, NULL};
		g_autofree char *out = NULL;
		g_assert_cmpint(run_cli(args, &out), ==, 0);
		g_assert_nonnull(strstr(out, "\"es_id\":\"35020000000001\""));
		g_assert_nonnull(strstr(out, "\"picture_type\":\"PNG\""));
		g_assert_nonnull(strstr(out, "\"kind\":\"seal\""));
	}
	{
		const char *args[] = {"--json", "seal", "verify", seal, "--ca", ca, NULL};
		g_autofree char *out = NULL;
		g_assert_cmpint(run_cli(args, &out), ==, 0);
		g_assert_nonnull(strstr(out, "\"valid\":true"));
	}
	{
		/* The trust taken from a state directory's CA files instead. */
		const char *args[] = {"seal", "verify", seal, "--state-dir", state_dir, NULL};
		g_autofree char *out = NULL;
		g_assert_cmpint(run_cli(args, &out), ==, 0);
		g_assert_nonnull(strstr(out, "valid"));
	}
	{
		const char *args[] = {"--json", "seal", "verify", sigf, "--document",
				      doc,	"--ca", ca,	  NULL};
		g_autofree char *out = NULL;
		g_assert_cmpint(run_cli(args, &out), ==, 0);
		g_assert_nonnull(strstr(out, "\"valid\":true"));
		g_assert_nonnull(strstr(out, "\"kind\":\"signature\""));
	}
	{
		const char *args[] = {"--json", "seal", "show", sigf, NULL};
		g_autofree char *out = NULL;
		g_assert_cmpint(run_cli(args, &out), ==, 0);
		g_assert_nonnull(strstr(out, "\"property_info\":\"contract.pdf\""));
	}
	{
		const char *args[] = {"--json", "seal", "verify", sigf, "--document",
				      other,	"--ca", ca,	  NULL};
		g_autofree char *out = NULL;
		g_assert_cmpint(run_cli(args, &out), ==, 1);
		g_assert_nonnull(strstr(out, "\"valid\":false"));
		g_assert_nonnull(strstr(out, "document: its hash does not match"));
	}
	{
		g_autoptr(GBytes) t = tamper(f->seal, "PICT", 4, 0, "PACT", 4);
		const char *args[] = {"seal", "verify", NULL, "--ca", ca, NULL};
		g_autofree char *out = NULL;
		bad = write_tmp(f, "bad.der", g_bytes_get_data(t, NULL), g_bytes_get_size(t));
		args[2] = bad;
		g_assert_cmpint(run_cli(args, &out), ==, 1);
		g_assert_nonnull(strstr(out, "seal signature: does not verify"));
	}
	{
		/* A signature needs its document; a file that is neither is refused. */
		const char *a1[] = {"seal", "verify", sigf, "--ca", ca, NULL};
		const char *a2[] = {"--json", "seal", "show", doc, NULL};
		g_autofree char *o1 = NULL;
		g_autofree char *o2 = NULL;
		g_assert_cmpint(run_cli(a1, &o1), ==, 2);
		g_assert_cmpint(run_cli(a2, &o2), ==, 1);
		g_assert_nonnull(strstr(o2, "\"error\""));
	}
}

/* DER of @depth SEQUENCEs one inside the other (definite lengths), around nothing. */
static GByteArray *
nested_der(guint depth)
{
	GByteArray *der = g_byte_array_new();

	for (guint i = 0; i < depth; i++) {
		guint8 head[6] = {0x30};
		guint len = der->len;
		guint n;

		if (len < 0x80) {
			head[1] = (guint8)len;
			n = 2;
		} else if (len < 0x10000) {
			head[1] = 0x82, head[2] = (guint8)(len >> 8), head[3] = (guint8)len;
			n = 4;
		} else {
			head[1] = 0x83, head[2] = (guint8)(len >> 16), head[3] = (guint8)(len >> 8);
			head[4] = (guint8)len;
			n = 5;
		}
		g_byte_array_prepend(der, head, n);
	}
	return der;
}

/* OpenSSL's templates bound constructed nesting (ASN1_MAX_CONSTRUCTED_NEST): a hostile seal,
 * SES_Signature or CSR nested thousands deep is refused with an error, not a crash. */
static void
test_deep_asn1_refused(void)
{
	static const guint depths[] = {40, 3000, 100000};

	for (guint i = 0; i < G_N_ELEMENTS(depths); i++) {
		g_autoptr(GByteArray) der = nested_der(depths[i]);
		GByteArray *indefinite = g_byte_array_new();
		g_autoptr(GError) error = NULL;

		g_assert_null(cs_seal_parse(der->data, der->len, &error));
		g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
		g_clear_error(&error);
		g_assert_null(cs_signature_parse(der->data, der->len, &error));
		g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
		g_clear_error(&error);
		g_assert_cmpint(cs_seal_sniff(der->data, der->len), ==, 0);
		if (der->len <= CS_CSR_MAX_SIZE) {
			g_assert_null(cs_csr_parse(der->data, der->len, &error));
			g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
			g_clear_error(&error);
		}
		/* The same with BER's indefinite lengths: 30 80 … 00 00. */
		for (guint d = 0; d < depths[i]; d++)
			g_byte_array_append(indefinite, (const guint8 *)"\x30\x80", 2);
		for (guint d = 0; d < depths[i]; d++)
			g_byte_array_append(indefinite, (const guint8 *)"\x00\x00", 2);
		g_assert_null(cs_seal_parse(indefinite->data, indefinite->len, &error));
		g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
		g_clear_error(&error);
		if (indefinite->len <= CS_CSR_MAX_SIZE) {
			g_assert_null(cs_csr_parse(indefinite->data, indefinite->len, &error));
			g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
			g_clear_error(&error);
		}
		g_byte_array_free(indefinite, TRUE);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, func, alg) g_test_add(path, Fixture, alg, fixture_set_up, func, fixture_tear_down)
	ADD("/seal/ec/round-trip", test_seal_round_trip, "ec-p256");
	ADD("/seal/rsa/round-trip", test_seal_round_trip, "rsa-2048");
	ADD("/seal/sm2/round-trip", test_seal_round_trip, "sm2");
	ADD("/seal/ec/tampering-detected", test_seal_tampering, "ec-p256");
	ADD("/seal/sm2/tampering-detected", test_seal_tampering, "sm2");
	ADD("/seal/ec/mutations-never-verify", test_seal_mutations, "ec-p256");
	ADD("/seal/sm2/mutations-never-verify", test_seal_mutations, "sm2");
	ADD("/seal/ec/csr-mutations-refused", test_csr_mutations, "ec-p256");
	ADD("/seal/ec/document-sealed-and-verified", test_document_sign_verify, "ec-p256");
	ADD("/seal/rsa/document-sealed-and-verified", test_document_sign_verify, "rsa-2048");
	ADD("/seal/sm2/document-sealed-and-verified", test_document_sign_verify, "sm2");
	ADD("/seal/cli/show-and-verify", test_cli_show_verify, "ec-p256");
	ADD("/seal/cli/sm2/show-and-verify", test_cli_show_verify, "sm2");
#undef ADD
	g_test_add_func("/seal/asn1/deep-nesting-refused", test_deep_asn1_refused);
	return g_test_run();
}

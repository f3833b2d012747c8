/*
 * bench-ca.c — what issuing a certificate costs against the unavoidable work beneath it
 * (docs/architecture.md §7), measured in the same run, for an EC P-256 and an RSA-2048 CA:
 *
 *   (a) cs_ca_set_issue(): a certificate built, signed by the issuing CA and durably
 *       recorded (certificates row + chained event, one transaction), from a CSR already
 *       parsed and verified (as at submission), vs
 *   (b) the floor: one raw signature with the same issuing key over a certificate-sized
 *       TBS (through the same per-thread context) plus one raw SQLite single-row commit
 *       of the same size with the same durability (journal_mode=WAL, synchronous=FULL)
 *       in a separate file;
 *   (a') and (b') the same without the disk: building and signing a certificate
 *       (cs_ca_sign_certificate) vs the raw signature alone — the CPU overhead, which
 *       stays readable when the disk's fsync latency swings between runs;
 *   (c) the time to regenerate (number, read, sign, encode, write) a CRL of 100,000
 *       revoked entries.
 *
 * Blocks of (a) and (b) alternate so that a slow moment of the disk or the scheduler
 * hurts both. It prints rates and the ratio (a)/(b) and never judges them: the exit status
 * is non-zero only when something did not work. The temporary directory is removed.
 *
 * Run: meson test -C build --benchmark (or build/tests/bench-ca [ITERATIONS]).
 */
#define G_LOG_DOMAIN "bench-ca"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <openssl/x509.h>

#include "cs-ca.h"
#include "cs-ledger.h"
#include "cs-vault.h"

#define N_BLOCKS 8
#define CRL_ENTRIES 100000

static int opt_iterations = 800;

typedef struct {
	char *dir;
	CsConfig *config;
	CsVault *vault;
	CsLedger *ledger;
	CsCaSet *cas;
	CsCa *ca;
	CsCsr *csr;
	sqlite3 *raw;
	sqlite3_stmt *raw_insert;
	GBytes *tbs; /* a certificate's TBS bytes, for the raw signature */
} Bench;

static void
die(const char *what, GError *error)
{
	g_printerr("bench-ca: %s: %s\n", what, error != NULL ? error->message : "failed");
	exit(1);
}

static void
remove_tree(const char *dir)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *name;

	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		g_autofree char *p = g_build_filename(dir, name, NULL);
		if (g_file_test(p, G_FILE_TEST_IS_DIR) && !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
			remove_tree(p);
		else
			g_unlink(p);
	}
	g_rmdir(dir);
}

static void
bench_open(Bench *b, const char *alg)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *vendor_dir = NULL;
	g_autofree char *profile = NULL;
	g_autofree char *text = NULL;
	g_autofree char *ledger_path = NULL;
	g_autofree char *raw_path = NULL;
	g_autoptr(EVP_PKEY) key = NULL;
	g_autoptr(EVP_MD_CTX) ctx = NULL;
	g_autoptr(GBytes) sample_der = NULL;
	g_autoptr(X509) sample = NULL;
	X509_REQ *req = X509_REQ_new();
	guint8 *der = NULL;
	int len;
	CsIssueRequest request = {
	    .vendor = "bench",
	    .actor = "system",
	    .subject = {CS_SUBJECT_ORG, "厦门示例科技有限公司", "91350200776049653A"}};

	b->dir = g_dir_make_tmp("cs-bench-ca-XXXXXX", &error);
	if (b->dir == NULL)
		die("temporary directory", error);
	vendor_dir = g_build_filename(b->dir, "vendors.d", NULL);
	g_mkdir(vendor_dir, 0700);
	profile = g_build_filename(vendor_dir, "bench.conf", NULL);
	text =
	    g_strdup_printf("[vendor]\nname = Bench\ndriver = pkcs11\n[key]\nalgorithm = %s\n"
			    "[ca]\nalgorithm = %s\ncrl_url = http://crl.bench.test/issuing.crl\n",
			    alg, alg);
	g_file_set_contents(profile, text, -1, NULL);
	b->config = cs_config_load(NULL, &error);
	if (b->config == NULL)
		die("configuration", error);
	g_free(b->config->vendor_dir);
	b->config->vendor_dir = g_steal_pointer(&vendor_dir);
	if (!cs_config_load_vendors(b->config, &error))
		die("vendor profile", error);
	b->vault = cs_vault_open(b->dir, &error);
	ledger_path = g_build_filename(b->dir, "ledger.db", NULL);
	b->ledger = b->vault != NULL ? cs_ledger_open(ledger_path, b->vault, 0, &error) : NULL;
	if (b->ledger == NULL)
		die("ledger", error);
	b->cas = cs_ca_set_new(b->config, b->dir, b->ledger, &error);
	if (b->cas == NULL)
		die("CA", error);
	b->ca = cs_ca_set_get(b->cas, "bench", NULL);

	/* One subscriber key and CSR, parsed and verified once as at submission. */
	key = cs_key_generate(cs_ca_get_algorithm(b->ca), &error);
	ctx = key != NULL ? cs_sign_ctx_new(key, &error) : NULL;
	if (ctx == NULL || X509_REQ_set_pubkey(req, key) != 1 || X509_REQ_sign_ctx(req, ctx) <= 0)
		die("CSR", error);
	len = i2d_X509_REQ(req, &der);
	X509_REQ_free(req);
	b->csr = cs_csr_parse(der, (gsize)len, &error);
	OPENSSL_free(der);
	if (b->csr == NULL)
		die("CSR", error);

	/* The floor's inputs: a real certificate's TBS, and a raw file like the ledger. */
	sample_der =
	    cs_ca_set_issue(b->cas, &request, b->csr, g_get_real_time() / G_USEC_PER_SEC, &error);
	sample = sample_der != NULL ? cs_x509_from_der(sample_der) : NULL;
	if (sample == NULL)
		die("sample certificate", error);
	der = NULL;
	len = i2d_re_X509_tbs(sample, &der);
	b->tbs = g_bytes_new(der, (gsize)len);
	OPENSSL_free(der);
	raw_path = g_build_filename(b->dir, "raw.db", NULL);
	if (sqlite3_open(raw_path, &b->raw) != SQLITE_OK ||
	    sqlite3_exec(b->raw,
			 "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
			 "CREATE TABLE t (serial TEXT PRIMARY KEY, der BLOB NOT NULL)",
			 NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(b->raw, "INSERT INTO t (serial, der) VALUES (?1, ?2)", -1,
			       &b->raw_insert, NULL) != SQLITE_OK)
		die("raw SQLite file", NULL);
}

static void
bench_close(Bench *b)
{
	sqlite3_finalize(b->raw_insert);
	sqlite3_close(b->raw);
	g_bytes_unref(b->tbs);
	cs_csr_free(b->csr);
	cs_ca_set_free(b->cas);
	cs_ledger_free(b->ledger);
	cs_vault_free(b->vault);
	cs_config_free(b->config);
	remove_tree(b->dir);
	g_free(b->dir);
}

static double
run_issue(Bench *b, int n)
{
	CsIssueRequest request = {
	    .vendor = "bench",
	    .actor = "system",
	    .subject = {CS_SUBJECT_ORG, "厦门示例科技有限公司", "91350200776049653A"}};
	gint64 start = g_get_monotonic_time();

	for (int i = 0; i < n; i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) x = cs_ca_set_issue(b->cas, &request, b->csr,
						      g_get_real_time() / G_USEC_PER_SEC, &error);
		if (x == NULL)
			die("issuing", error);
	}
	return (double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC;
}

static double
run_floor(Bench *b, int n, int block)
{
	gint64 start = g_get_monotonic_time();
	gsize tbs_len = 0;
	const guint8 *tbs = g_bytes_get_data(b->tbs, &tbs_len);

	for (int i = 0; i < n; i++) {
		g_autoptr(GError) error = NULL;
		char serial[48];

		if (!cs_ca_raw_sign(b->ca, tbs, tbs_len, &error))
			die("raw signature", error);
		g_snprintf(serial, sizeof(serial), "%08d%08d", block, i);
		sqlite3_bind_text(b->raw_insert, 1, serial, -1, SQLITE_STATIC);
		/* A certificate's worth of bytes, as the ledger stores. */
		sqlite3_bind_blob(b->raw_insert, 2, tbs, (int)tbs_len, SQLITE_STATIC);
		if (sqlite3_step(b->raw_insert) != SQLITE_DONE)
			die("raw commit", NULL);
		sqlite3_reset(b->raw_insert);
	}
	return (double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC;
}

/* (a') vs (b'): no disk. */
static void
run_cpu(Bench *b, int n, double *t_sign, double *t_raw)
{
	CsCertSubject subject = {CS_SUBJECT_ORG, "厦门示例科技有限公司", "91350200776049653A"};
	g_autoptr(X509_NAME) name = cs_cert_subject_build(&subject, NULL);
	gsize tbs_len = 0;
	const guint8 *tbs = g_bytes_get_data(b->tbs, &tbs_len);
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	gint64 start = g_get_monotonic_time();

	for (int i = 0; i < n; i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) der = NULL;
		guint8 serial[CS_SERIAL_SIZE];

		memset(serial, 0x5a, sizeof(serial));
		memcpy(serial, &i, sizeof(i));
		der = cs_ca_sign_certificate(b->ca, b->csr, name, serial, now, now + 86400, &error);
		if (der == NULL)
			die("signing", error);
	}
	*t_sign += (double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC;
	start = g_get_monotonic_time();
	for (int i = 0; i < n; i++) {
		g_autoptr(GError) error = NULL;
		if (!cs_ca_raw_sign(b->ca, tbs, tbs_len, &error))
			die("raw signature", error);
	}
	*t_raw += (double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC;
}

/* CRL_ENTRIES revoked certificates straight into the ledger (one transaction), then time
 * one regeneration. */
static double
run_crl(Bench *b, gsize *crl_size)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) dummy = g_bytes_new_static("\x30\x00", 2);
	g_autoptr(GBytes) crl = NULL;
	gint64 start;

	if (!cs_ledger_begin(b->ledger, &error))
		die("CRL fill", error);
	for (int i = 0; i < CRL_ENTRIES; i++) {
		char serial[33];
		CsCertRow row = {.serial = serial,
				 .vendor = (char *)"bench",
				 .role = (char *)"subscriber",
				 .subject = (char *)"CN=bench",
				 .subject_type = (char *)"org",
				 .id_number = (char *)"x",
				 .not_before = 0,
				 .not_after = 1,
				 .der = dummy};

		g_snprintf(serial, sizeof(serial), "7%031X", (guint)i);
		if (!cs_ledger_insert_certificate(b->ledger, &row, &error) ||
		    !cs_ledger_revoke_certificate(b->ledger, serial,
						  i % 2 ? "superseded" : "keyCompromise",
						  1700000000 + i, &error))
			die("CRL fill", error);
	}
	if (!cs_ledger_commit(b->ledger, &error))
		die("CRL fill", error);
	start = g_get_monotonic_time();
	crl = cs_ca_set_regenerate_crl(b->cas, "bench", g_get_real_time() / G_USEC_PER_SEC, &error);
	if (crl == NULL)
		die("CRL", error);
	*crl_size = g_bytes_get_size(crl);
	return (double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC;
}

static void
bench_algorithm(const char *alg)
{
	Bench b = {0};
	double t_issue = 0, t_floor = 0, t_crl;
	int per_block = opt_iterations / N_BLOCKS;
	gsize crl_size = 0;

	bench_open(&b, alg);
	/* Warm up both paths (page cache, WAL file, per-thread contexts). */
	run_issue(&b, 10);
	run_floor(&b, 10, 99);
	for (int block = 0; block < N_BLOCKS; block++) {
		t_issue += run_issue(&b, per_block);
		t_floor += run_floor(&b, per_block, block);
	}
	{
		int n = per_block * N_BLOCKS;
		double r_issue = n / t_issue;
		double r_floor = n / t_floor;

		g_print("%-8s issue (sign + durable record, verified CSR): %8.0f certificates/s\n",
			alg, r_issue);
		g_print("%-8s floor (raw signature + raw durable commit):  %8.0f /s\n", alg,
			r_floor);
		g_print("%-8s ratio issue/floor: %.2f  (target >= 0.8)\n", alg, r_issue / r_floor);
	}
	{
		double t_sign = 0, t_raw = 0;
		int n = opt_iterations;

		for (int block = 0; block < N_BLOCKS; block++)
			run_cpu(&b, n / N_BLOCKS, &t_sign, &t_raw);
		n = (n / N_BLOCKS) * N_BLOCKS;
		g_print("%-8s cpu: build+sign %8.0f /s, raw signature %8.0f /s, ratio %.2f\n", alg,
			n / t_sign, n / t_raw, t_raw / t_sign);
	}
	t_crl = run_crl(&b, &crl_size);
	g_print("%-8s CRL of %d entries regenerated in %.3f s (%" G_GSIZE_FORMAT " bytes)\n", alg,
		CRL_ENTRIES, t_crl, crl_size);
	bench_close(&b);
}

int
main(int argc, char **argv)
{
	if (argc > 1)
		opt_iterations = MAX(atoi(argv[1]), N_BLOCKS);
	g_log_set_writer_func(g_log_writer_default, NULL, NULL);
	bench_algorithm("ec-p256");
	bench_algorithm("rsa-2048");
	return 0;
}

/*
 * bench-office.c — an office task round trip against the unavoidable work beneath it
 * (docs/architecture.md §7, issue 5), measured in the same run, with CURVE on and off:
 *
 *   office: a task queued in the ledger is leased and pushed (TASK) to a READY worker
 *           over the office ROUTER, the worker answers DONE, the daemon commits the result
 *           (lease checked, event appended) and acknowledges — tasks per second;
 *   bound:  a raw DEALER/ROUTER echo on the same kind of endpoint (ipc://, same CURVE
 *           setting) plus one raw SQLite single-row commit with the same durability
 *           (WAL, synchronous=FULL) — per second, 1 / (t_echo + t_commit).
 *
 * The daemon side (engine, ledger, CsOffice) runs on this thread's GLib main loop exactly
 * as in certseald; the worker and the echo server run on their own threads with their
 * own ZeroMQ contexts. It prints rates and ratios and never judges them: the exit status
 * is non-zero only when something did not work.
 */
#define G_LOG_DOMAIN "bench-office"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "cs-engine.h"
#include "cs-office-keys.h"
#include "cs-office.h"
#include "cs-tasks.h"

static int opt_tasks = 400;

typedef struct {
	const char *endpoint;
	char server_public[41];
	char public_key[41];
	char secret_key[41];
	gboolean curve;
	int n;
	double seconds;
	gboolean ok;
	GMainLoop *loop;
} WorkerRun;

static void
set_curve_client(void *sock, WorkerRun *w)
{
	if (!w->curve)
		return;
	zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, w->server_public, 40);
	zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, w->public_key, 40);
	zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, w->secret_key, 40);
}

static int
recv_frames(void *sock, char frames[4][512], int timeout_ms)
{
	zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
	int n = 0, more = 1;

	if (zmq_poll(&item, 1, timeout_ms) <= 0)
		return -1;
	while (more) {
		size_t len = sizeof(more);
		int got = zmq_recv(sock, n < 4 ? frames[n] : frames[3], 511, 0);
		if (got < 0)
			return -1;
		if (n < 4)
			frames[n][MIN(got, 511)] = '\0';
		n++;
		zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len);
	}
	return n;
}

static gboolean
quit_loop(gpointer data)
{
	g_main_loop_quit(data);
	return G_SOURCE_REMOVE;
}

/* The automated worker: READY, then DONE for every TASK, until n acknowledgements. */
static gpointer
worker_thread(gpointer data)
{
	WorkerRun *w = data;
	void *ctx = zmq_ctx_new();
	void *sock = zmq_socket(ctx, ZMQ_DEALER);
	char frames[4][512];
	int acked = 0, zero = 0;
	gint64 start;
	const char *ready = "{\"service\":\"cashier\"}";

	zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
	set_curve_client(sock, w);
	zmq_connect(sock, w->endpoint);
	start = g_get_monotonic_time();
	zmq_send(sock, "CSO1", 4, ZMQ_SNDMORE);
	zmq_send(sock, "READY", 5, ZMQ_SNDMORE);
	zmq_send(sock, ready, strlen(ready), 0);
	while (acked < w->n) {
		int n = recv_frames(sock, frames, 10000);
		if (n < 0)
			break;
		if (n >= 3 && strcmp(frames[1], "TASK") == 0) {
			g_autoptr(JsonParser) p = json_parser_new();
			g_autofree char *done = NULL;
			const char *lease;
			if (!json_parser_load_from_data(p, frames[2], -1, NULL))
				break;
			lease = json_object_get_string_member(
			    json_node_get_object(json_parser_get_root(p)), "lease");
			done = g_strdup_printf(
			    "{\"lease\":\"%s\",\"result\":{\"qr_payload\":\"bench\"}}", lease);
			zmq_send(sock, "CSO1", 4, ZMQ_SNDMORE);
			zmq_send(sock, "DONE", 4, ZMQ_SNDMORE);
			zmq_send(sock, done, strlen(done), 0);
		} else if (n >= 3 && strcmp(frames[1], "RESULT") == 0) {
			acked++;
		} else if (n >= 3 && strcmp(frames[1], "ERROR") == 0) {
			g_printerr("bench-office: %s\n", frames[2]);
			break;
		}
	}
	w->seconds = (double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC;
	w->ok = acked == w->n;
	zmq_close(sock);
	zmq_ctx_term(ctx);
	g_idle_add(quit_loop, w->loop);
	return NULL;
}

/* ---- the raw bound --------------------------------------------------------------------- */

typedef struct {
	const char *endpoint;
	gboolean curve;
	char server_secret[41];
	void *ctx;
	int n;
} EchoRun;

static gpointer
echo_server(gpointer data)
{
	EchoRun *e = data;
	void *sock = zmq_socket(e->ctx, ZMQ_ROUTER);
	char buf[4][512];
	int one = 1, zero = 0;

	zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
	if (e->curve) {
		/* A CURVE server needs no ZAP handler to encrypt: without one, any client key
		 * is accepted, which costs the same handshake and crypto per message. */
		zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof(one));
		zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, e->server_secret, 40);
	}
	zmq_bind(sock, e->endpoint);
	for (int i = 0; i < e->n; i++) {
		int n = recv_frames(sock, buf, 10000);
		if (n < 2)
			break;
		zmq_send(sock, buf[0], strlen(buf[0]), ZMQ_SNDMORE); /* identity: 5 bytes, no NUL */
		zmq_send(sock, buf[1], strlen(buf[1]), 0);
	}
	zmq_close(sock);
	return NULL;
}

/* Seconds per DEALER/ROUTER round trip of a TASK-sized message. */
static double
measure_echo(gboolean curve, int n)
{
	void *ctx = zmq_ctx_new();
	void *sock = zmq_socket(ctx, ZMQ_DEALER);
	g_autofree char *endpoint = g_strdup_printf("ipc://@certseal-bench-echo-%d", getpid());
	char pub[41], sec[41], cpub[41], csec[41];
	char frames[4][512];
	const char msg[] = "{\"task_id\":1,\"lease\":\"0b7c6f34-7f2e-4a5e-9f1c-2d6a1b3c4d5e\","
			   "\"service\":\"cashier\",\"payload\":{}}";
	WorkerRun keys = {.curve = curve};
	EchoRun e = {.endpoint = endpoint, .curve = curve, .ctx = ctx, .n = n + 1};
	GThread *t;
	gint64 start;
	int zero = 0, id_len = 5;

	zmq_curve_keypair(pub, sec);
	zmq_curve_keypair(cpub, csec);
	memcpy(e.server_secret, sec, 41);
	memcpy(keys.server_public, pub, 41);
	memcpy(keys.public_key, cpub, 41);
	memcpy(keys.secret_key, csec, 41);
	t = g_thread_new("echo", echo_server, &e);
	zmq_setsockopt(sock, ZMQ_ROUTING_ID, "bench", id_len);
	zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
	set_curve_client(sock, &keys);
	zmq_connect(sock, endpoint);
	zmq_send(sock, msg, strlen(msg), 0); /* warm-up: the handshake */
	recv_frames(sock, frames, 10000);
	start = g_get_monotonic_time();
	for (int i = 0; i < n; i++) {
		zmq_send(sock, msg, strlen(msg), 0);
		if (recv_frames(sock, frames, 10000) < 1)
			break;
	}
	double s = (double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC / n;
	g_thread_join(t);
	zmq_close(sock);
	zmq_ctx_term(ctx);
	return s;
}

/* Seconds per raw single-row commit with the ledger's durability. */
static double
measure_commit(const char *dir, int n)
{
	g_autofree char *path = g_build_filename(dir, "raw.db", NULL);
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;
	gint64 start;

	sqlite3_open(path, &db);
	sqlite3_exec(db,
		     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
		     "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);",
		     NULL, NULL, NULL);
	sqlite3_prepare_v2(db, "INSERT INTO t (v) VALUES (?1)", -1, &stmt, NULL);
	start = g_get_monotonic_time();
	for (int i = 0; i < n; i++) {
		sqlite3_bind_text(stmt, 1, "a task result of about this size", -1, SQLITE_STATIC);
		sqlite3_step(stmt);
		sqlite3_reset(stmt);
	}
	double s = (double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC / n;
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return s;
}

/* ---- the office side ------------------------------------------------------------------- */

static void
remove_tree(const char *dir)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *name;

	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		g_autofree char *p = g_build_filename(dir, name, NULL);
		if (g_file_test(p, G_FILE_TEST_IS_DIR))
			remove_tree(p);
		else
			g_unlink(p);
	}
	g_rmdir(dir);
}

static gboolean
measure_office(gboolean curve, int n, double *rate)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *dir = g_dir_make_tmp("cs-bench-office-XXXXXX", &error);
	g_autofree char *ledger_path = NULL;
	g_autofree char *admin_key = NULL;
	g_autoptr(CsConfig) config = cs_config_load(NULL, &error);
	g_autoptr(CsVault) vault = NULL;
	g_autoptr(CsLedger) ledger = NULL;
	g_autoptr(CsEngine) engine = NULL;
	g_autoptr(CsOffice) office = NULL;
	g_autoptr(CsTasks) tasks = NULL;
	WorkerRun w = {.curve = curve, .n = n};
	GThread *t;

	config->test_mode = TRUE;
	config->office_curve = curve;
	config->office_endpoint =
	    g_strdup_printf("ipc://@certseal-bench-office-%d-%d", getpid(), curve);
	g_free(config->office_dir);
	config->office_dir = g_build_filename(dir, "office.d", NULL);
	ledger_path = g_build_filename(dir, "ledger.db", NULL);
	vault = cs_vault_open(dir, &error);
	ledger = vault != NULL ? cs_ledger_open(ledger_path, vault, 1000, &error) : NULL;
	if (ledger == NULL) {
		g_printerr("bench-office: %s\n", error->message);
		return FALSE;
	}
	engine = cs_engine_new(config, ledger);
	tasks = cs_tasks_new(ledger, vault, config, &error);
	office = tasks != NULL ? cs_office_new(engine, tasks, vault, dir, &error) : NULL;
	if (office == NULL) {
		g_printerr("bench-office: %s\n", error->message);
		return FALSE;
	}
	/* The queue is filled before the worker arrives: the bench measures dispatch. */
	for (int i = 0; i < n; i++) {
		g_autoptr(JsonObject) payload = json_object_new();
		json_object_set_string_member(payload, "kind", "precreate");
		if (!cs_tasks_enqueue(tasks, "cashier", NULL, NULL, payload, 0, NULL, &error)) {
			g_printerr("bench-office: %s\n", error->message);
			return FALSE;
		}
	}
	admin_key = g_build_filename(dir, "office", "admin.key", NULL);
	w.endpoint = cs_office_get_endpoint(office);
	if (!cs_office_key_file_read(admin_key, w.public_key, w.secret_key, &error)) {
		g_printerr("bench-office: %s\n", error->message);
		return FALSE;
	}
	{
		g_autofree char *server_key = g_build_filename(dir, "office", "server.key", NULL);
		char ignored[41];
		cs_office_key_file_read(server_key, w.server_public, ignored, NULL);
		memset(ignored, 0, sizeof(ignored));
	}
	w.loop = g_main_loop_new(NULL, FALSE);
	t = g_thread_new("worker", worker_thread, &w);
	g_main_loop_run(w.loop);
	g_thread_join(t);
	g_main_loop_unref(w.loop);
	g_clear_pointer(&tasks, cs_tasks_free);
	g_clear_pointer(&office, cs_office_free);
	g_clear_pointer(&engine, cs_engine_free);
	g_clear_pointer(&ledger, cs_ledger_free);
	remove_tree(dir);
	*rate = n / w.seconds;
	return w.ok;
}

int
main(int argc, char **argv)
{
	g_autofree char *dir = g_dir_make_tmp("cs-bench-raw-XXXXXX", NULL);
	int status = 0;

	if (g_getenv("CS_BENCH_TASKS") != NULL)
		opt_tasks = atoi(g_getenv("CS_BENCH_TASKS"));
	g_log_set_handler("certseald", G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO,
			  (GLogFunc)(gpointer)g_log_default_handler, NULL);
	for (int curve = 1; curve >= 0; curve--) {
		double office_rate = 0;
		double t_commit, t_echo, bound;

		if (!measure_office(curve, opt_tasks, &office_rate)) {
			g_printerr("bench-office: the office run with CURVE %s failed\n",
				   curve ? "on" : "off");
			status = 1;
			continue;
		}
		t_commit = measure_commit(dir, opt_tasks);
		t_echo = measure_echo(curve, opt_tasks);
		bound = 1.0 / (t_echo + t_commit);
		printf("CURVE %-3s office task dispatch→DONE→committed: %8.0f /s\n",
		       curve ? "on" : "off", office_rate);
		printf("CURVE %-3s raw echo %6.1f µs + raw commit %6.1f µs: bound %8.0f /s\n",
		       curve ? "on" : "off", t_echo * 1e6, t_commit * 1e6, bound);
		printf("CURVE %-3s ratio office / bound: %.2f\n", curve ? "on" : "off",
		       office_rate / bound);
	}
	remove_tree(dir);
	return status;
}

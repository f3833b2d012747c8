/*
 * cs-keywork.c — key work: a new key pair, certificate and e-seal put on a UKey for an
 * order (certseal/plugin.h, CsKeyWork). The flow says which steps start it and which ones
 * it takes when it ends; this service knows no flow's states.
 *
 * Provisioning a blank key (制证): the maker names a blank key inserted on the daemon's
 * host. Before the token is touched, the vault holds both PINs: the user PIN sealed by
 * cs_step_issue_password() and an SO PIN sealed by cs_step_prepare_key_work() in the
 * transaction of the step that starts the work. Then, on driver threads, the token is
 * initialised with both, the key pair is generated on it, and the CSR is signed on it;
 * back on the main loop the certificate is issued and the e-seal made; the token gets
 * both; the order takes the flow's done step. Any failure takes its failed step (with the
 * reason); a crash leaves the order in the state the work runs in, which the flow
 * declares as transient, so the engine's recovery takes it back at the next start.
 * Working again — on the same key or another — uses the same user PIN; the same key keeps
 * its SO PIN, because a key once initialised only accepts its own SO PIN to be
 * initialised again.
 *
 * Renewing the applicant's own key (CsKeyWork.follows_field): the key is logged in by its
 * user, so no PIN passes and none changes. Its old seal is read (for its picture), a new
 * key pair is generated beside the old one and the CSR signed with it, the certificate is
 * issued following the old one and the new seal made, and the key gets both before the
 * old certificate and key pair are deleted; then the old certificate is revoked as
 * superseded and the flow's done step taken. A failure before the writing starts revokes
 * the attempt's certificate at once; one during the writing leaves the decision to the
 * next attempt, which looks at what the key holds: still the old certificate — every
 * certificate of this order is revoked and the work starts over; already this order's new
 * one — the writing is finished (it can run twice) and the order completes.
 *
 * A change of subject (CsKeyWork.changes_subject) works the same way on the applicant's
 * key, but the certificate carries the order's new subject and keeps the old one's end, the
 * seal's picture is drawn with the new name (or is the order's seal_image), and the old
 * certificate is revoked affiliationChanged.
 */
#define G_LOG_DOMAIN "certseald"

#include <openssl/bn.h>
#include <openssl/x509.h>
#include <string.h>

#include "cs-ca.h"
#include "cs-certs.h"
#include "cs-crypto.h"
#include "cs-draw.h"
#include "cs-keys.h"
#include "cs-notices.h"
#include "cs-seal.h"
#include "cs-pin-policy.h"

#define SO_PIN_LENGTH 12

/* The order attribute holding the sealed SO PIN of key @serial. */
static char *
so_pin_attr(const char *serial)
{
	return g_strdup_printf("so_pin_ref.%s", serial);
}

/* The key of serial (or id) @serial. */
static CsKey *
find_key(CsKeys *keys, const char *serial)
{
	g_autoptr(GPtrArray) list = cs_keys_list(keys);

	for (guint i = 0; i < list->len; i++) {
		CsKey *key = g_ptr_array_index(list, i);
		if (g_strcmp0(key->serial, serial) == 0 || g_strcmp0(key->id, serial) == 0)
			return key;
	}
	return NULL;
}

/* A key logged in by one uid serves no other desktop caller (cs_keys_check_user); the
 * daemon's own work (recovery, timeouts) acts for whoever started it. */
static gboolean
check_key_user(CsStep *step, CsKeys *keys, const CsKey *key, GError **error)
{
	const CsRequest *request = cs_step_get_request(step);

	if (request == NULL || request->actor != CS_ACTOR_DESKTOP)
		return TRUE;
	return cs_keys_check_user(keys, key->id, request->uid, error);
}

gboolean
cs_step_prepare_key_work(CsStep *step, const CsKeyWork *work, const char *serial, GError **error)
{
	CsEngine *engine = cs_step_get_engine(step);
	CsOrder *order = cs_step_get_order(step);
	CsKeys *keys = cs_engine_get_keys(engine);
	const char *vendor_id = cs_order_get_vendor(order);
	const CsVendor *vendor = cs_config_find_vendor(cs_engine_get_config(engine), vendor_id);
	g_autofree char *attr = NULL;
	g_autofree char *ref_text = NULL;
	CsKey *key;
	CsPinPolicy policy;
	char *so_pin;
	gint64 ref = 0;
	gboolean ok;

	if (!cs_step_check_transaction(step, "cs_step_prepare_key_work", error))
		return FALSE;
	if (keys == NULL) {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_UNAVAILABLE,
				    "key_serial: no key manager is running");
		return FALSE;
	}
	if (serial == NULL || *serial == '\0') {
		g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
				    "key_serial: name the blank key to make");
		return FALSE;
	}
	key = find_key(keys, serial);
	if (key == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "key_serial: no key %s is inserted on this host", serial);
		return FALSE;
	}
	if (vendor == NULL || g_strcmp0(key->vendor, vendor_id) != 0) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "key_serial: key %s is a %s key; the order is for %s", serial,
			    key->vendor, vendor_id);
		return FALSE;
	}
	if (!check_key_user(step, keys, key, error))
		return FALSE;
	if (work->follows_field != NULL)
		return cs_engine_set_attr(engine, order, "key_work_key", key->id, error) &&
		       cs_engine_set_attr(engine, order, "key_work_error", NULL, error) &&
		       cs_engine_set_attr(engine, order, "recovery_note", NULL, error) &&
		       cs_engine_set_attr(engine, order, "progress", "0", error);
	attr = so_pin_attr(serial);
	if (work->provision && key->initialized && cs_order_get_attr(order, attr) == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT,
			    "key_serial: key %s is not blank", serial);
		return FALSE;
	}
	if (cs_order_get_attr(order, "user_pin_ref") == NULL) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL,
			    "order %s has no certificate password to put on the key",
			    cs_order_get_id(order));
		return FALSE;
	}
	if (!cs_engine_set_attr(engine, order, "key_work_key", key->id, error) ||
	    !cs_engine_set_attr(engine, order, "key_work_error", NULL, error) ||
	    !cs_engine_set_attr(engine, order, "progress", "0", error))
		return FALSE;
	if (!work->provision || cs_order_get_attr(order, attr) != NULL)
		return TRUE; /* no SO PIN to set, or the one this key already has */
	policy = cs_pin_policy_for_vendor(vendor);
	so_pin = cs_pin_policy_generate(&policy, SO_PIN_LENGTH, error);
	if (so_pin == NULL)
		return FALSE;
	ok = cs_ledger_seal_secret(cs_engine_get_ledger(engine), "so_pin", cs_order_get_id(order),
				   (const guint8 *)so_pin, strlen(so_pin), g_get_real_time(), &ref,
				   error);
	cs_secret_free(so_pin);
	if (!ok)
		return FALSE;
	ref_text = g_strdup_printf("%" G_GINT64_FORMAT, ref);
	return cs_engine_set_attr(engine, order, attr, ref_text, error);
}

typedef struct {
	CsEngine *engine;
	gint *stopping; /* the engine's flag: once set, the engine may be gone */
	const CsKeyWork *work;
	char *state; /* the order's state while the work runs */
	char *order_id;
	char *key_id;
	char *serial;
	char *user_pin;
	char *certificate_serial;
	/* A renewal (work->follows_field): the certificate renewed, the old seal's picture, and
	 * whether the key is being written (a failure then is not known to be before it). */
	char *old_serial;
	GBytes *old_picture;
	guint old_width_mm, old_height_mm;
	GBytes *cert_der;
	gboolean writing;
	/* A seal picture drawn on a worker thread, and the certificate waiting for it. */
	struct _Drawing *drawing;
	GBytes *waiting_cert;
} Job;

static void drawing_forget(struct _Drawing *d);

static void
job_free(Job *job)
{
	g_atomic_rc_box_release(job->stopping);
	g_free(job->state);
	g_free(job->order_id);
	g_free(job->key_id);
	g_free(job->serial);
	cs_secret_free(job->user_pin);
	g_free(job->certificate_serial);
	g_free(job->old_serial);
	g_clear_pointer(&job->old_picture, g_bytes_unref);
	g_clear_pointer(&job->cert_der, g_bytes_unref);
	g_clear_pointer(&job->waiting_cert, g_bytes_unref);
	if (job->drawing != NULL)
		drawing_forget(job->drawing);
	g_free(job);
}

static const CsRequest system_request = {.actor = CS_ACTOR_SYSTEM, .user_id = "key work"};

static CsOrder *
job_order(Job *job)
{
	g_autoptr(GError) error = NULL;
	CsOrder *order = cs_engine_get_order(job->engine, job->order_id, &error);

	if (order == NULL) {
		g_warning("key work %s: %s", job->order_id, error->message);
		return NULL;
	}
	if (g_strcmp0(cs_order_get_state(order), job->state) != 0) {
		g_warning("key work %s: the order is %s now; the result is dropped", job->order_id,
			  cs_order_get_state(order));
		return NULL;
	}
	return order;
}

static void
set_progress(Job *job, CsOrder *order, guint percent)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *text = g_strdup_printf("%u", percent);
	gboolean ok;

	if (!cs_ledger_begin(cs_engine_get_ledger(job->engine), &error))
		return;
	ok = cs_engine_set_attr(job->engine, order, "progress", text, &error) &&
	     cs_ledger_commit(cs_engine_get_ledger(job->engine), &error);
	if (!ok) {
		cs_ledger_rollback(cs_engine_get_ledger(job->engine));
		cs_order_forget_attrs(order);
		return;
	}
	cs_engine_order_attrs_changed(job->engine, order, 0);
}

static GVariant *
reason_params(const char *name, const char *value, const char *name2, const char *value2)
{
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&b, "{sv}", name, g_variant_new_string(value));
	if (name2 != NULL && value2 != NULL)
		g_variant_builder_add(&b, "{sv}", name2, g_variant_new_string(value2));
	return g_variant_builder_end(&b);
}

/* A result that arrives while the daemon stops is dropped: the order is still in the
 * work's state in the ledger, and the next start's recovery takes it back. */
static gboolean
job_dropped(Job *job)
{
	if (!g_atomic_int_get(job->stopping))
		return FALSE;
	job_free(job);
	return TRUE;
}

/* A driver's message made fit for the ledger: valid UTF-8, no control characters, short. */
static char *
clean_reason(const char *text)
{
	g_autofree char *valid = g_utf8_make_valid(text != NULL ? text : "", -1);

	for (char *p = valid; *p != '\0'; p++) {
		if ((guchar)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	}
	return g_utf8_substring(valid, 0, MIN(g_utf8_strlen(valid, -1), 400));
}

/* In the failed step: why, for the applicant and the office (ReviewNote). */
static gboolean
record_failure(CsEngine *engine, CsOrder *order, gpointer user_data, GError **error)
{
	return cs_engine_set_attr(engine, order, "key_work_error", user_data, error);
}

/* In the done step: the certificate the key holds now, the work finished. */
static gboolean
record_done(CsEngine *engine, CsOrder *order, gpointer user_data, GError **error)
{
	return cs_engine_set_attr(engine, order, "certificate_serial", user_data, error) &&
	       cs_engine_set_attr(engine, order, "key_work_error", NULL, error) &&
	       cs_engine_set_attr(engine, order, "progress", "100", error);
}

/* The flow's failed step, saying why; a certificate already issued for this attempt is
 * revoked (it never reached a key). */
static void
job_fail(Job *job, const char *reason)
{
	CsOrder *order;
	g_autoptr(GError) error = NULL;
	g_autofree char *cleaned = clean_reason(reason);
	g_autofree char *text = NULL;

	if (job_dropped(job))
		return;
	order = job_order(job);
	text = job->old_serial != NULL
		   ? g_strdup_printf("writing the renewed certificate on key %s failed: %s",
				     job->serial, cleaned)
		   : g_strdup_printf("making on key %s failed: %s", job->serial, cleaned);

	g_message("order %s: %s", job->order_id, text);
	if (order == NULL) {
		job_free(job);
		return;
	}
	/* While the key was being written the new certificate may be on it: the next attempt
	 * decides (see the top of this file). */
	if (job->certificate_serial != NULL && !(job->old_serial != NULL && job->writing) &&
	    !cs_certs_revoke(job->engine, &system_request, job->certificate_serial,
			     "cessationOfOperation", order, &error)) {
		g_warning("order %s: cannot revoke certificate %s: %s", job->order_id,
			  job->certificate_serial, error->message);
		g_clear_error(&error);
	}
	if (!cs_engine_act_with(job->engine, &system_request, order, job->work->failed_action,
				reason_params("reason", text, NULL, NULL), NULL, record_failure,
				text, &error)) {
		/* Never leave the order in the work's state with nothing behind it. */
		g_warning("order %s: %s", job->order_id, error->message);
		g_clear_error(&error);
		if (!cs_engine_act_with(job->engine, &system_request, order,
					job->work->failed_action, NULL, NULL, NULL, NULL, &error))
			g_warning("order %s: %s", job->order_id, error->message);
	}
	job_free(job);
}

/* Where a token step hands back: the job's order, still in the work's state, or NULL when the job
 * ended here (the daemon stops, the step failed, or the order moved on). */
static CsOrder *
job_resume(Job *job, const GError *error)
{
	CsOrder *order;

	if (job_dropped(job))
		return NULL;
	if (error != NULL) {
		job_fail(job, error->message);
		return NULL;
	}
	order = job_order(job);
	if (order == NULL)
		job_free(job);
	return order;
}

static gint64
attr_int(CsOrder *order, const char *name)
{
	const char *text = cs_order_get_attr(order, name);

	return text != NULL ? g_ascii_strtoll(text, NULL, 10) : 0;
}

static void on_written(GBytes *result, const GError *error, gpointer user_data);

/* Put the certificate and seal on the key: making logs in with the certificate password; a
 * renewal writes beside the old ones on the logged-in key, then deletes those. */
static void
write_key(Job *job, GBytes *cert, GBytes *seal)
{
	CsKeys *keys = cs_engine_get_keys(job->engine);

	if (job->old_serial == NULL) {
		cs_keys_make_finish(keys, job->key_id, job->user_pin, cert, seal, on_written, job);
		return;
	}
	job->writing = TRUE;
	cs_keys_renew_finish(keys, job->key_id, cert, seal, on_written, job);
}

/* The renewed certificate is superseded once the key holds the new one (it may already be,
 * when an earlier attempt got that far). */
static gboolean
revoke_superseded(Job *job, CsOrder *order, GError **error)
{
	g_autoptr(CsCertRow) old =
	    cs_ledger_load_certificate(cs_engine_get_ledger(job->engine), job->old_serial, error);

	if (old == NULL)
		return FALSE;
	if (g_strcmp0(old->status, "valid") != 0)
		return TRUE;
	g_message("order %s: certificate %s superseded by %s", job->order_id, job->old_serial,
		  job->certificate_serial != NULL ? job->certificate_serial : "?");
	return cs_certs_revoke(job->engine, &system_request, job->old_serial,
			       job->work->changes_subject ? "affiliationChanged" : "superseded",
			       order, error);
}

static void
on_written(GBytes *result, const GError *error, gpointer user_data)
{
	Job *job = user_data;
	CsOrder *order;
	g_autoptr(GError) local = NULL;

	order = job_resume(job, error);
	if (order == NULL)
		return;
	if (job->old_serial != NULL && !revoke_superseded(job, order, &local)) {
		job_fail(job, local->message);
		return;
	}
	if (!cs_engine_act_with(job->engine, &system_request, order, job->work->done_action,
				reason_params("key_serial", job->serial, "certificate_serial",
					      job->certificate_serial),
				NULL, record_done, job->certificate_serial, &local)) {
		g_autofree char *why =
		    g_strdup_printf("the finished key could not be recorded: %s", local->message);
		job_fail(job, why);
		return;
	}
	job_free(job);
}

/* The seal's picture when it need not be drawn: the old seal's (a renewal) or the
 * uploaded seal_image; NULL when a seal with the name is to be drawn. */
static GBytes *
seal_picture_kept(Job *job, CsOrder *order, guint *width_mm, guint *height_mm)
{
	gboolean org = cs_order_get_subject_type(order) == CS_SUBJECT_ORG;
	g_autoptr(CsMaterialRow) image = cs_ledger_load_material(
	    cs_engine_get_ledger(job->engine), cs_order_get_id(order), "seal_image", NULL);

	if (job->old_picture != NULL) {
		*width_mm = job->old_width_mm;
		*height_mm = job->old_height_mm;
		return g_bytes_ref(job->old_picture);
	}
	if (image != NULL && (g_strcmp0(image->mime, "image/png") == 0 ||
			      g_strcmp0(image->mime, "image/jpeg") == 0)) {
		*width_mm = org ? 42 : 18;
		*height_mm = org ? 42 : 18;
		return g_bytes_ref(image->data);
	}
	return NULL;
}

/* The seal made from @cert and @picture, signed, and both written to the key. */
static void
seal_and_write(Job *job, CsOrder *order, GBytes *cert, GBytes *picture, guint width, guint height)
{
	g_autoptr(GError) local = NULL;
	g_autoptr(GBytes) seal = cs_certs_make_seal(
	    job->engine, &system_request, order, cert, g_bytes_get_data(picture, NULL),
	    g_bytes_get_size(picture), width, height, &local);

	if (seal == NULL) {
		job_fail(job, local->message);
		return;
	}
	set_progress(job, order, 80);
	write_key(job, cert, seal);
}

/*
 * Drawing a seal with the name happens on a worker thread, so that the main loop keeps
 * answering meanwhile. A making starts it with the token work (the picture needs only the
 * name), so it is usually ready when the certificate is; otherwise it starts once the
 * certificate is issued. The drawing outlives a job that ends first: it is shared
 * (refcounted) by the job and the task, and forgets the job when the job goes.
 */
typedef struct _Drawing {
	char *name;
	gboolean org;
	GBytes *picture;
	guint width_mm, height_mm;
	GError *error;
	/* main loop only */
	Job *job; /* NULL once the job has ended */
	gboolean done;
} Drawing;

static void
drawing_clear(Drawing *d)
{
	g_free(d->name);
	g_clear_pointer(&d->picture, g_bytes_unref);
	g_clear_error(&d->error);
}

static void
drawing_unref(Drawing *d)
{
	g_atomic_rc_box_release_full(d, (GDestroyNotify)drawing_clear);
}

/* The job's end: a drawing still running finishes for nobody. */
static void
drawing_forget(Drawing *d)
{
	d->job = NULL;
	drawing_unref(d);
}

static void
draw_in_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
	Drawing *d = task_data;

	d->picture = cs_draw_seal_picture(d->name, d->org, &d->width_mm, &d->height_mm, &d->error);
	g_task_return_boolean(task, TRUE);
}

/* The certificate issued (job->waiting_cert) and the picture drawn: the seal, and the
 * writing. */
static void
seal_drawn(Job *job)
{
	Drawing *d = job->drawing;
	g_autoptr(GBytes) cert = g_steal_pointer(&job->waiting_cert);
	CsOrder *order = job_resume(job, NULL);

	if (order == NULL)
		return;
	if (d->picture == NULL) {
		job_fail(job, d->error != NULL ? d->error->message : "the seal was not drawn");
		return;
	}
	seal_and_write(job, order, cert, d->picture, d->width_mm, d->height_mm);
}

static void
on_drawn(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Drawing *d = g_task_get_task_data(G_TASK(result));

	d->done = TRUE;
	/* The job is gone, or its certificate is not issued yet (seal_with_picture goes on). */
	if (d->job != NULL && d->job->waiting_cert != NULL)
		seal_drawn(d->job);
}

static void
start_drawing(Job *job, CsOrder *order)
{
	const char *name = cs_order_get_subject_name(order);
	g_autoptr(GTask) task = NULL;
	Drawing *d = g_atomic_rc_box_new0(Drawing);

	d->name = g_strdup(name != NULL ? name : cs_order_get_id(order));
	d->org = cs_order_get_subject_type(order) == CS_SUBJECT_ORG;
	d->job = job;
	job->drawing = g_atomic_rc_box_acquire(d);
	task = g_task_new(NULL, NULL, on_drawn, NULL);
	g_task_set_task_data(task, d, (GDestroyNotify)drawing_unref);
	g_task_run_in_thread(task, draw_in_thread);
}

/* The seal's picture, then the seal and the writing: at once when the picture is kept or
 * already drawn, once it is drawn otherwise. */
static void
seal_with_picture(Job *job, CsOrder *order, GBytes *cert)
{
	guint width = 0, height = 0;
	g_autoptr(GBytes) picture = seal_picture_kept(job, order, &width, &height);

	if (picture != NULL) {
		seal_and_write(job, order, cert, picture, width, height);
		return;
	}
	if (job->drawing == NULL)
		start_drawing(job, order);
	g_clear_pointer(&job->waiting_cert, g_bytes_unref);
	job->waiting_cert = g_bytes_ref(cert);
	if (job->drawing->done)
		seal_drawn(job);
}

static void
on_csr(GBytes *csr, const GError *error, gpointer user_data)
{
	Job *job = user_data;
	CsOrder *order;
	g_autoptr(GError) local = NULL;
	g_autoptr(GBytes) cert = NULL;
	g_autoptr(X509) x509 = NULL;
	const guint8 *p;
	gsize len = 0;

	order = job_resume(job, error);
	if (order == NULL)
		return;
	set_progress(job, order, 60);
	p = g_bytes_get_data(csr, &len);
	if (job->work->keeps_end_field != NULL)
		cert = cs_certs_issue_keeping_end(
		    job->engine, &system_request, order, p, len,
		    cs_order_get_field(order, job->work->keeps_end_field), &local);
	else if (job->work->changes_subject)
		cert = cs_certs_issue_replacing(job->engine, &system_request, order, p, len,
						job->old_serial, &local);
	else
		cert = cs_certs_issue(job->engine, &system_request, order, p, len, job->old_serial,
				      job->old_serial != NULL ? attr_int(order, "eligible_at") : 0,
				      &local);
	if (cert == NULL) {
		job_fail(job, local->message);
		return;
	}
	p = g_bytes_get_data(cert, &len);
	x509 = d2i_X509(NULL, &p, (long)len);
	if (x509 != NULL) {
		const ASN1_INTEGER *serial = X509_get0_serialNumber(x509);
		BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
		char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
		job->certificate_serial = g_strdup(hex != NULL ? hex : "");
		OPENSSL_free(hex);
		BN_free(bn);
	}
	seal_with_picture(job, order, cert);
}

/* Key work cut short after its certificate was issued (the daemon stopped, or died) left a
 * valid certificate that no key holds: revoke it before working again, or when the order
 * ends without a key. */
static void
revoke_unused_certificates(CsEngine *engine, CsOrder *order)
{
	const char *id_number = cs_order_get_subject_number(order);
	const char *order_id = cs_order_get_id(order);
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) certs = NULL;

	if (id_number == NULL)
		return;
	certs = cs_certs_find(engine, cs_order_get_vendor(order),
			      cs_subject_type_to_string(cs_order_get_subject_type(order)),
			      id_number, &error);
	if (certs == NULL) {
		g_warning("order %s: %s", order_id, error->message);
		return;
	}
	for (guint i = 0; i < certs->len; i++) {
		CsCertRow *row = g_ptr_array_index(certs, i);
		if (g_strcmp0(row->order_id, order_id) != 0 || g_strcmp0(row->status, "valid") != 0)
			continue;
		g_message("order %s: revoking certificate %s of interrupted key work", order_id,
			  row->serial);
		if (!cs_certs_revoke(engine, &system_request, row->serial, "cessationOfOperation",
				     order, &error)) {
			g_warning("order %s: %s", order_id, error->message);
			g_clear_error(&error);
		}
	}
}

void
cs_step_revoke_unused_certificates(CsStep *step)
{
	revoke_unused_certificates(cs_step_get_engine(step), cs_step_get_order(step));
}

/* A renewal whose earlier attempt already put this order's certificate on the key: finish
 * the writing (the seal again, the old key pair deleted) and complete. */
static gboolean
finish_written(Job *job, CsOrder *order, CsKey *key)
{
	g_autoptr(CsCertRow) row = NULL;

	if (key->certificate_serial == NULL ||
	    g_ascii_strcasecmp(key->certificate_serial, job->old_serial) == 0)
		return FALSE;
	row = cs_ledger_load_certificate(cs_engine_get_ledger(job->engine), key->certificate_serial,
					 NULL);
	if (row == NULL || g_strcmp0(row->order_id, job->order_id) != 0 ||
	    g_strcmp0(row->status, "valid") != 0)
		return FALSE;
	g_message("order %s: key %s already holds certificate %s: finishing", job->order_id,
		  key->id, row->serial);
	job->certificate_serial = g_strdup(row->serial);
	seal_with_picture(job, order, row->der);
	return TRUE;
}

static void
on_old_seal(GBytes *seal, const GError *error, gpointer user_data)
{
	Job *job = user_data;
	CsOrder *order = job_resume(job, NULL);
	const CsVendor *vendor;
	const char *name;
	CsKey *key;
	g_autoptr(CsSealInfo) info = NULL;

	if (order == NULL)
		return;
	/* No readable old seal: the new one is drawn, as for a new key. */
	info = seal != NULL
		   ? cs_seal_parse(g_bytes_get_data(seal, NULL), g_bytes_get_size(seal), NULL)
		   : NULL;
	/* A changed subject gets a new picture with its new name. */
	if (info != NULL && info->picture != NULL && !job->work->changes_subject) {
		job->old_picture = g_bytes_ref(info->picture);
		job->old_width_mm = (guint)info->width_mm;
		job->old_height_mm = (guint)info->height_mm;
	} else if (error != NULL) {
		g_message("order %s: the old seal is not readable (%s); a new picture is drawn",
			  job->order_id, error->message);
	}
	key = cs_keys_lookup(cs_engine_get_keys(job->engine), job->key_id);
	if (key == NULL) {
		job_fail(job, "the key is no longer inserted");
		return;
	}
	if (finish_written(job, order, key))
		return;
	/* The key still holds the old certificate: whatever an interrupted attempt issued is
	 * revoked, and the work starts over. */
	revoke_unused_certificates(job->engine, order);
	g_info("order %s: renewing certificate %s on key %s", job->order_id, job->old_serial,
	       key->id);
	vendor =
	    cs_config_find_vendor(cs_engine_get_config(job->engine), cs_order_get_vendor(order));
	name = cs_order_get_subject_name(order);
	set_progress(job, order, 20);
	cs_keys_renew_begin(cs_engine_get_keys(job->engine), job->key_id, job->old_serial,
			    vendor != NULL ? vendor->key_algorithm : "ec-p256",
			    name != NULL ? name : job->order_id, on_csr, job);
}

/* The seal on the key first, for its picture (the old seal's, or already the new one's
 * when an earlier attempt wrote it); then on_old_seal decides. */
static void
start_renewal(Job *job, CsKey *key)
{
	cs_keys_read_seal(cs_engine_get_keys(job->engine), key->id, on_old_seal, job);
}

void
cs_step_start_key_work(CsStep *step, const CsKeyWork *work)
{
	CsEngine *engine = cs_step_get_engine(step);
	CsOrder *order = cs_step_get_order(step);
	CsKeys *keys = cs_engine_get_keys(engine);
	const CsVendor *vendor =
	    cs_config_find_vendor(cs_engine_get_config(engine), cs_order_get_vendor(order));
	const char *key_id = cs_order_get_attr(order, "key_work_key");
	const char *name = cs_order_get_subject_name(order);
	const char *algorithm = cs_order_get_field(order, "key_algorithm");
	g_autoptr(GError) error = NULL;
	g_autofree char *attr = NULL;
	g_autoptr(GBytes) kept = NULL;
	guint width = 0, height = 0;
	char *so_pin = NULL;
	CsKey *key;
	Job *job = g_new0(Job, 1);

	job->engine = engine;
	job->stopping = cs_engine_ref_stopping(engine);
	job->work = work;
	job->state = g_strdup(cs_order_get_state(order));
	job->order_id = g_strdup(cs_order_get_id(order));
	job->key_id = g_strdup(key_id);
	key = key_id != NULL && keys != NULL ? cs_keys_lookup(keys, key_id) : NULL;
	job->serial = g_strdup(key != NULL ? key->serial : (key_id != NULL ? key_id : "?"));
	if (key == NULL || vendor == NULL) {
		job_fail(job, "the key is no longer inserted");
		return;
	}
	if (work->follows_field != NULL) {
		job->old_serial = g_strdup(cs_order_get_field(order, work->follows_field));
		if (job->old_serial == NULL) {
			job_fail(job, "the order names no certificate to renew");
			return;
		}
		start_renewal(job, key);
		return;
	}
	revoke_unused_certificates(engine, order);
	attr = so_pin_attr(key->serial);
	job->user_pin = cs_engine_open_order_secret(engine, order, "user_pin_ref", &error);
	if (job->user_pin != NULL)
		so_pin = cs_engine_open_order_secret(engine, order, attr, &error);
	if (so_pin == NULL) {
		job_fail(job, error->message);
		return;
	}
	g_info("order %s: key work on key %s", job->order_id, key->id);
	/* The picture is drawn while the token works. */
	kept = seal_picture_kept(job, order, &width, &height);
	if (kept == NULL)
		start_drawing(job, order);
	cs_keys_make_begin(keys, key->id, "certseal", job->user_pin, so_pin,
			   algorithm != NULL ? algorithm : vendor->key_algorithm,
			   name != NULL ? name : job->order_id, on_csr, job);
	cs_secret_free(so_pin);
}

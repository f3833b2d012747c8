/*
 * cs-assistant-renew.c — the step pages of an order for the key in the slot, as the manual
 * lays them out: 证书更新 (renew: 插入 UKey → 登录 → 录入更新信息 → 确认订单 → 付款结算 →
 * 下载证书), 找回密码/解锁 (unlock: 提交信息 → 获取授权码, 重置密码) and 信息变更 (change: 登录 →
 * 修改信息 and 短信校验 → 确认信息 → 下载证书); a reissue's order (丢失补办) goes through the
 * same pages once it is created.
 *
 * One set of pages serves every kind: which one shows follows the order's State and
 * NextActions, what it says comes from the daemon (the flow's labels, the order's Fields,
 * AmountFen, PasswordDelivery, ReviewNote, Progress, and its errors: NotEligible with its
 * dates, MultipleKeys "only one key", NoKey, PinLocked → 找回密码, KeyRemoved → insert the key
 * again, and the download resumes). The code, the new PIN and the SMS code stay in password
 * entries and the calls' arguments.
 */
#include <string.h>

#include "cs-assistant.h"

/* The manual's first steps of each kind started from a key. */
typedef struct {
	const char *kind;
	const char *title;    /* the home button's name */
	gboolean needs_login; /* 输入证书密码, 点击登录 */
} KindSteps;

static const KindSteps kinds[] = {
    {"renew", N_("Renew the certificate"), TRUE},
    {"change", N_("Change the details"), TRUE},
    {"unlock", N_("Recover the password / unlock"), FALSE},
    {"reissue", N_("Replace a lost key"), FALSE},
};

typedef enum { RETRY_KEY, RETRY_DOWNLOAD } RetryWhat;

typedef struct {
	CsAssistant *a;
	const KindSteps *steps;
	char *subject;
	char *key_path; /* the key the order is for; NULL for a reissue */
	CsOrder *order;
	GBinding *progress_binding;
	GVariant *flow;
	GVariant *fields; /* the order's Fields, as last read */
	CsForm *form;
	guint generation;	/* of the current start: older replies are dropped */
	guint login_generation; /* the start the login dialog was opened for */
	GtkStack *stack;
	GtkWidget *title;
	/* problem */
	GtkWidget *problem_title, *problem_text, *problem_dates, *retry, *to_unlock;
	RetryWhat retry_what;
	/* key and login */
	GtkWidget *key_text, *login;
	/* form */
	GtkWidget *form_status;
	/* SMS code */
	GtkWidget *sms_text, *sms_code, *sms_status;
	/* confirm */
	GtkWidget *summary, *confirm_status;
	/* status */
	GtkWidget *state_text, *note_text, *missing_text, *materials, *submit, *status_status;
	/* payment */
	GtkWidget *pay_text, *payment;
	/* authorization code */
	GtkWidget *code_text, *code, *pin1, *pin2, *code_status, *reset;
	/* download and done */
	GtkWidget *download_title, *progress, *progress_text, *download_status, *resume, *done_text,
	    *finish;
	const char *draft_step; /* "form", "sms" or "confirm" while the order is a draft */
	gboolean sms_verified;
	gboolean download_pending; /* a Download call is under way */
	gboolean login_offered;	   /* for this download: the login dialog opened once */
} Flow;

typedef struct {
	Flow *f;
	guint generation;
	gboolean fill_form; /* the order's Fields read for the form (else for the summary) */
} Call;

static void show_state(Flow *f);
static void start_download(Flow *f);
static void choose_key(Flow *f);
static CsKey *single_key(Flow *f, RetryWhat retry);
static void send_code(Flow *f);

static Call *
call_new(Flow *f)
{
	Call *c = g_new0(Call, 1);

	c->f = f;
	c->generation = f->generation;
	return c;
}

/* The flow the call was made for, or NULL when the pages were started again since. */
static Flow *
call_done(Call *c)
{
	Flow *f = c->generation == c->f->generation ? c->f : NULL;

	g_free(c);
	return f;
}

/* The login dialog's: one at a time, and it may be closed without logging in, so the
 * flow itself carries the start it was opened for. */
static gpointer
login_for(Flow *f)
{
	f->login_generation = f->generation;
	return f;
}

static Flow *
login_done(gpointer user_data)
{
	Flow *f = user_data;

	return f->login_generation == f->generation ? f : NULL;
}

static gboolean
can(Flow *f, const char *action)
{
	const char *const *next = f->order != NULL ? cs_order_get_next_actions(f->order) : NULL;

	return next != NULL && g_strv_contains(next, action);
}

static void
set_text(GtkWidget *label, const char *text)
{
	gtk_label_set_text(GTK_LABEL(label), text != NULL ? text : "");
	gtk_widget_set_visible(label, text != NULL && *text != '\0');
}

/* Only the step shown is visible: the others are out of the accessible tree's view too. */
static void
show_step(Flow *f, const char *name)
{
	GtkWidget *shown = gtk_stack_get_child_by_name(f->stack, name);

	gtk_widget_set_visible(shown, TRUE);
	gtk_stack_set_visible_child(f->stack, shown);
	for (GtkWidget *child = gtk_widget_get_first_child(GTK_WIDGET(f->stack)); child != NULL;
	     child = gtk_widget_get_next_sibling(child))
		gtk_widget_set_visible(child, child == shown);
}

/* The key of the order, as inserted now (a new reference), or NULL when it is out. */
static CsKey *
flow_key(Flow *f)
{
	GDBusInterface *iface;

	if (f->key_path == NULL || f->a->objects == NULL)
		return NULL;
	iface = g_dbus_object_manager_get_interface(f->a->objects, f->key_path,
						    "org.certseal.CertSeal1.Key");
	return iface != NULL ? CS_KEY(iface) : NULL;
}

/* --- a problem: what the daemon refused, and what to do ---------------------------------- */

static void
problem(Flow *f,
	const char *title,
	const char *text,
	const char *dates,
	RetryWhat retry,
	gboolean offer_unlock)
{
	gtk_label_set_text(GTK_LABEL(f->problem_title), title);
	set_text(f->problem_text, text);
	set_text(f->problem_dates, dates);
	f->retry_what = retry;
	gtk_widget_set_visible(f->retry, !offer_unlock);
	gtk_widget_set_visible(f->to_unlock, offer_unlock);
	show_step(f, "problem");
}

static void
problem_only_one_key(Flow *f, RetryWhat retry)
{
	problem(f, _("Insert only one key"),
		_("Several USB keys are inserted. Leave only the key this service is for in the "
		  "computer, take the others out, then press Retry."),
		NULL, retry, FALSE);
}

static void
problem_no_key(Flow *f, RetryWhat retry)
{
	problem(f, _("Insert your USB key"),
		_("No USB key is inserted. Insert the key this service is for, then press Retry."),
		NULL, retry, FALSE);
}

/* The certificate's dates as the key reports them: valid until, renewable from. */
static char *
key_dates(Flow *f)
{
	g_autoptr(CsKey) key = flow_key(f);
	g_autofree char *until = NULL;
	g_autofree char *from = NULL;

	if (key == NULL || cs_key_get_not_after(key) == 0)
		return NULL;
	until = cs_format_date(cs_key_get_not_after(key));
	if (cs_key_get_renewable_from(key) == 0)
		return g_strdup_printf(_("Valid until: %s"), until);
	from = cs_format_date(cs_key_get_renewable_from(key));
	return g_strdup_printf(_("Valid until: %s. Renewable from: %s."), until, from);
}

/* A refusal of the daemon on its page; TRUE when it has one (else the caller shows it
 * where it happened). */
static gboolean
problem_from_error(Flow *f, const GError *error, RetryWhat retry)
{
	const char *name = cs_error_name(error);
	g_autofree char *text = cs_error_text(error);

	if (g_strcmp0(name, "MultipleKeys") == 0) {
		problem_only_one_key(f, retry);
	} else if (g_strcmp0(name, "NoKey") == 0) {
		problem_no_key(f, retry);
	} else if (g_strcmp0(name, "NotEligible") == 0) {
		g_autofree char *dates = key_dates(f);
		problem(f, _("Not eligible"), text, dates, retry, FALSE);
	} else if (g_strcmp0(name, "PinLocked") == 0) {
		problem(f, _("The key is locked"),
			_("Too many wrong passwords locked the key. Recover the password to unlock "
			  "it."),
			NULL, retry, TRUE);
	} else {
		return FALSE;
	}
	return TRUE;
}

static void
on_retry(GtkButton *button, gpointer user_data)
{
	Flow *f = user_data;

	if (f->retry_what == RETRY_DOWNLOAD && f->order != NULL) {
		show_state(f);
		return;
	}
	choose_key(f);
}

static void
on_to_unlock(GtkButton *button, gpointer user_data)
{
	Flow *f = user_data;

	cs_assistant_key_flow_start(f->a, "unlock");
}

/* --- the order's pages, as its state says ------------------------------------------------ */

static void
on_progress_text(GObject *bar, GParamSpec *pspec, gpointer user_data)
{
	Flow *f = user_data;
	double fraction = gtk_progress_bar_get_fraction(GTK_PROGRESS_BAR(bar));
	g_autofree char *text =
	    g_strdup_printf(_("Download progress: %d %%"), (int)(fraction * 100 + 0.5));

	gtk_label_set_text(GTK_LABEL(f->progress_text), text);
}

static gboolean
progress_to_fraction(GBinding *binding, const GValue *from, GValue *to, gpointer user_data)
{
	g_value_set_double(to, MIN(g_value_get_uint(from), 100) / 100.0);
	return TRUE;
}

static char *
yuan_text(guint64 fen)
{
	return g_strdup_printf("%" G_GUINT64_FORMAT ".%02" G_GUINT64_FORMAT, fen / 100, fen % 100);
}

static void
fill_summary(Flow *f)
{
	GVariant *fields = f->fields;
	g_autoptr(GVariant) specs = NULL;
	GtkWidget *child;
	GVariantIter iter;
	GVariant *spec;
	guint64 fen = cs_order_get_amount_fen(f->order);

	while ((child = gtk_widget_get_first_child(f->summary)) != NULL)
		gtk_box_remove(GTK_BOX(f->summary), child);
	specs = f->flow != NULL
		    ? g_variant_lookup_value(f->flow, "fields", G_VARIANT_TYPE("aa{sv}"))
		    : NULL;
	if (specs == NULL || fields == NULL)
		return;
	g_variant_iter_init(&iter, specs);
	while ((spec = g_variant_iter_next_value(&iter)) != NULL) {
		const char *name = cs_dict_string(spec, "name");
		const char *value = NULL;
		if (g_variant_lookup(fields, name, "&s", &value) && *value != '\0') {
			g_autofree char *line =
			    g_strdup_printf(_("%s: %s"), cs_form_label(f->form, name),
					    cs_form_shown_value(f->form, name, value));
			gtk_box_append(GTK_BOX(f->summary), cs_label_new(line, NULL));
		}
		g_variant_unref(spec);
	}
	if (fen > 0) {
		g_autofree char *yuan = yuan_text(fen);
		g_autofree char *line = g_strdup_printf(_("Fee: %s yuan"), yuan);
		gtk_box_append(GTK_BOX(f->summary), cs_label_new(line, "heading"));
	}
}

static gboolean
history_has(Flow *f, const char *state)
{
	GVariant *history = cs_order_get_history(f->order);
	GVariantIter iter;
	const char *s;

	if (history == NULL)
		return FALSE;
	g_variant_iter_init(&iter, history);
	while (g_variant_iter_next(&iter, "(t&s&s)", NULL, &s, NULL)) {
		if (g_strcmp0(s, state) == 0)
			return TRUE;
	}
	return FALSE;
}

static void
show_done(Flow *f)
{
	g_autoptr(CsKey) key = flow_key(f);
	g_autofree char *text = NULL;

	if (history_has(f, "downloading") && key != NULL && cs_key_get_not_after(key) > 0) {
		g_autofree char *until = cs_format_date(cs_key_get_not_after(key));
		text = g_strdup_printf(
		    _("The new certificate and seal are on the key, valid until %s. The password "
		      "is unchanged."),
		    until);
	} else if (history_has(f, "unlocking") && key != NULL) {
		text = g_strdup_printf(_("The password was reset. Password tries left: %d."),
				       cs_key_get_pin_tries_left(key));
	} else {
		text = g_strdup(_("The order is completed."));
	}
	gtk_label_set_text(GTK_LABEL(f->download_title), _("Completed"));
	set_text(f->done_text, text);
	set_text(f->download_status, NULL);
	gtk_widget_set_visible(f->resume, FALSE);
	gtk_widget_set_visible(f->finish, TRUE);
	show_step(f, "download");
}

static void
show_download(Flow *f, const char *status)
{
	gtk_label_set_text(GTK_LABEL(f->download_title), _("Download the certificate"));
	gtk_widget_set_visible(f->progress, TRUE);
	gtk_widget_set_visible(f->progress_text, TRUE);
	set_text(f->download_status, status);
	set_text(f->done_text, NULL);
	gtk_widget_set_visible(f->finish, FALSE);
	show_step(f, "download");
}

static void
show_status(Flow *f)
{
	g_autofree char *state = g_strdup_printf(_("Order %s: %s"), cs_order_get_id(f->order),
						 cs_state_text(cs_order_get_state(f->order)));
	g_autofree char *missing = g_strjoinv(", ", (char **)cs_order_get_missing(f->order));
	g_autofree char *needed = *missing ? g_strdup_printf(_("Still needed: %s"), missing) : NULL;
	const char *note = cs_order_get_review_note(f->order);

	gtk_label_set_text(GTK_LABEL(f->state_text), state);
	set_text(f->note_text, note);
	set_text(f->missing_text, needed);
	gtk_widget_set_visible(f->submit, can(f, "Submit"));
	gtk_widget_set_visible(f->materials, can(f, "AttachMaterial"));
	show_step(f, "status");
}

static void
show_state(Flow *f)
{
	const char *state;

	if (f->order == NULL || f->flow == NULL)
		return;
	state = cs_order_get_state(f->order);
	if (g_strcmp0(state, "draft") == 0) {
		const char *note = cs_order_get_review_note(f->order);
		if (note != NULL && *note != '\0')
			set_text(f->form_status, note);
		show_step(f, f->draft_step);
	} else if (g_strcmp0(state, "unpaid") == 0 && can(f, "StartPayment")) {
		g_autofree char *yuan = yuan_text(cs_order_get_amount_fen(f->order));
		g_autofree char *text =
		    g_strdup_printf(_("The fee is %s yuan. Choose how to pay, scan the code, and "
				      "the next step follows when the payment arrives."),
				    yuan);
		gtk_label_set_text(GTK_LABEL(f->pay_text), text);
		cs_payment_set_order(f->payment, f->order);
		show_step(f, "pay");
	} else if (can(f, "Unlock")) {
		const char *to = cs_order_get_password_delivery(f->order);
		g_autofree char *how = cs_delivery_text(to != NULL && *to ? to : "—");
		g_autofree char *text = g_strdup_printf(
		    _("The authorization code was sent %s. Type it and the new password twice."),
		    how);
		gtk_label_set_text(GTK_LABEL(f->code_text), text);
		show_step(f, "code");
	} else if (g_strcmp0(state, "downloading") == 0) {
		show_download(f, _("Downloading to the key: do not pull it out."));
	} else if (can(f, "Download")) {
		start_download(f);
	} else if (g_strcmp0(state, "completed") == 0) {
		show_done(f);
	} else {
		show_status(f);
	}
}

static void
on_order_changed(GDBusProxy *proxy, GVariant *changed, GStrv invalidated, gpointer user_data)
{
	show_state(user_data);
}

/* --- the download: automatic once paid, resumed when the key comes back ---------------- */

static void
on_downloaded(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Flow *f = call_done(user_data);
	g_autoptr(GError) error = NULL;
	gboolean ok = cs_order_call_download_finish(CS_ORDER(source), result, &error);
	g_autofree char *text = NULL;

	if (f == NULL)
		return;
	f->download_pending = FALSE;
	if (ok) {
		show_state(f);
		return;
	}
	/* The key out: the download goes on when it is back (on_key_added). */
	if (cs_error_is_key_removed(error)) {
		show_download(f, _("The key was removed. Insert it again to resume the download."));
		return;
	}
	if (problem_from_error(f, error, RETRY_DOWNLOAD))
		return;
	text = cs_error_text(error);
	show_download(f, text);
	gtk_widget_set_visible(f->resume, TRUE);
}

static void
on_download_login(CsAssistant *a, CsKey *key, gpointer user_data)
{
	Flow *f = login_done(user_data);

	if (f != NULL)
		start_download(f);
}

static void
start_download(Flow *f)
{
	g_autoptr(CsKey) key = NULL;
	const char *note = cs_order_get_review_note(f->order);

	gtk_widget_set_visible(f->resume, FALSE);
	if (f->download_pending)
		return;
	if (f->key_path == NULL) {
		/* An order opened here from elsewhere: the key in the slot is the one, which
		 * the daemon checks. */
		g_autoptr(CsKey) inserted = single_key(f, RETRY_DOWNLOAD);
		if (inserted == NULL)
			return;
		f->key_path = g_strdup(g_dbus_proxy_get_object_path(G_DBUS_PROXY(inserted)));
	}
	key = flow_key(f);
	if (key == NULL) {
		show_download(f, _("The key was removed. Insert it again to resume the download."));
		return;
	}
	if (!cs_key_get_logged_in(key)) {
		show_download(f, note != NULL && *note ? note : _("Log in to download."));
		gtk_widget_set_visible(f->resume, TRUE);
		if (!f->login_offered) {
			f->login_offered = TRUE;
			cs_assistant_login(f->a, key, G_CALLBACK(on_download_login), login_for(f));
		}
		return;
	}
	f->download_pending = TRUE;
	show_download(f, _("Downloading to the key: do not pull it out."));
	cs_order_call_download(f->order, f->key_path, NULL, on_downloaded, call_new(f));
}

static void
on_resume(GtkButton *button, gpointer user_data)
{
	Flow *f = user_data;

	f->login_offered = FALSE;
	start_download(f);
}

/* A key inserted: the order's own, back in the slot, takes the download up again. */
static void
on_key_added(GDBusObjectManager *manager, GDBusObject *object, gpointer user_data)
{
	Flow *f = user_data;

	if (f->order == NULL || !can(f, "Download") ||
	    (f->key_path != NULL &&
	     g_strcmp0(g_dbus_object_get_object_path(object), f->key_path) != 0))
		return;
	f->login_offered = FALSE;
	start_download(f);
}

static void
on_key_interface_added(GDBusObjectManager *manager,
		       GDBusObject *object,
		       GDBusInterface *iface,
		       gpointer user_data)
{
	on_key_added(manager, object, user_data);
}

/* --- the order: created, its form, its steps ------------------------------------------- */

static void
on_fields(GObject *source, GAsyncResult *result, gpointer user_data)
{
	gboolean fill_form = ((Call *)user_data)->fill_form;
	Flow *f = call_done(user_data);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = g_dbus_proxy_call_finish(G_DBUS_PROXY(source), result, &error);

	if (f == NULL)
		return;
	if (reply == NULL) {
		g_autofree char *text = cs_error_text(error);
		problem(f, _("The certificate service refused"), text, NULL, RETRY_KEY, FALSE);
		return;
	}
	g_clear_pointer(&f->fields, g_variant_unref);
	g_variant_get(reply, "(v)", &f->fields);
	if (fill_form) {
		cs_form_fill(f->form, f->steps->kind, f->subject, f->flow, f->fields);
		set_text(f->form_status, _("Fields marked * are required."));
	} else {
		fill_summary(f);
	}
	show_state(f);
}

/* The order's Fields: personal data, read on purpose (not among the cached properties). */
static void
fetch_fields(Flow *f, gboolean fill_form)
{
	Call *c = call_new(f);

	c->fill_form = fill_form;
	g_dbus_proxy_call(G_DBUS_PROXY(f->order), "org.freedesktop.DBus.Properties.Get",
			  g_variant_new("(ss)", "org.certseal.CertSeal1.Order", "Fields"),
			  G_DBUS_CALL_FLAGS_NONE, -1, NULL, on_fields, c);
}

static void
on_flow(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Flow *f = call_done(user_data);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) flow = NULL;

	if (!cs_manager_call_get_flow_finish(CS_MANAGER(source), &flow, result, &error) ||
	    f == NULL) {
		if (f != NULL) {
			g_autofree char *text = cs_error_text(error);
			problem(f, _("The certificate service refused"), text, NULL, RETRY_KEY,
				FALSE);
		}
		return;
	}
	g_clear_pointer(&f->flow, g_variant_unref);
	f->flow = g_variant_ref(flow);
	fetch_fields(f, TRUE);
}

static void
on_order_proxy(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Flow *f = call_done(user_data);
	g_autoptr(GError) error = NULL;
	CsOrder *order = cs_order_proxy_new_finish(result, &error);

	if (f == NULL) {
		g_clear_object(&order);
		return;
	}
	if (order == NULL) {
		problem(f, _("The certificate service refused"), error->message, NULL, RETRY_KEY,
			FALSE);
		return;
	}
	f->order = order;
	g_free(f->subject);
	f->subject = g_strdup(cs_order_get_subject_type(order));
	/* After the proxy's own handler, which drops the values the getters cached. */
	g_signal_connect_after(order, "g-properties-changed", G_CALLBACK(on_order_changed), f);
	f->progress_binding = g_object_bind_property_full(order, "progress", f->progress,
							  "fraction", G_BINDING_SYNC_CREATE,
							  progress_to_fraction, NULL, NULL, NULL);
	cs_manager_call_get_flow(f->a->manager, f->steps->kind, f->subject, NULL, on_flow,
				 call_new(f));
}

static void
open_order(Flow *f, const char *path)
{
	cs_order_proxy_new_for_bus(f->a->bus_type, G_DBUS_PROXY_FLAGS_NONE, CS_BUS_NAME, path, NULL,
				   on_order_proxy, call_new(f));
}

static void
on_created(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Flow *f = call_done(user_data);
	g_autoptr(GError) error = NULL;
	g_autofree char *path = NULL;

	if (f == NULL)
		return;
	path = cs_assistant_apply_start_for_key_finish(f->a, result, &error);
	if (path == NULL) {
		g_autofree char *text = cs_error_text(error);
		if (!problem_from_error(f, error, RETRY_KEY))
			problem(f, _("The certificate service refused"), text, NULL, RETRY_KEY,
				FALSE);
		return;
	}
	open_order(f, path);
}

static void
create_order(Flow *f)
{
	g_autoptr(CsKey) key = flow_key(f);

	if (key == NULL) {
		problem_no_key(f, RETRY_KEY);
		return;
	}
	set_text(f->key_text, _("Preparing the order…"));
	gtk_widget_set_visible(f->login, FALSE);
	show_step(f, "key");
	cs_assistant_apply_start_for_key(f->a, f->steps->kind, key, on_created, call_new(f));
}

static void
on_logged_in(CsAssistant *a, CsKey *key, gpointer user_data)
{
	Flow *f = login_done(user_data);

	if (f != NULL)
		create_order(f);
}

static void
on_login(GtkButton *button, gpointer user_data)
{
	Flow *f = user_data;
	g_autoptr(CsKey) key = flow_key(f);

	if (key == NULL) {
		problem_no_key(f, RETRY_KEY);
		return;
	}
	cs_assistant_login(f->a, key, G_CALLBACK(on_logged_in), login_for(f));
}

/* --- the key in the slot ------------------------------------------------------------ */

/* The one key inserted (a new reference); NULL with the page that says what to do when
 * there is none or several (电脑只插一枚待更新的 UK). */
static CsKey *
single_key(Flow *f, RetryWhat retry)
{
	GList *objects =
	    f->a->objects != NULL ? g_dbus_object_manager_get_objects(f->a->objects) : NULL;
	CsKey *key = NULL;
	guint n = 0;

	for (GList *l = objects; l != NULL; l = l->next) {
		CsKey *k = cs_object_peek_key(CS_OBJECT(l->data));
		if (k == NULL)
			continue;
		n++;
		g_set_object(&key, k);
	}
	g_list_free_full(objects, g_object_unref);
	if (n == 0)
		problem_no_key(f, retry);
	else if (n > 1)
		problem_only_one_key(f, retry);
	if (n != 1)
		g_clear_object(&key);
	return key;
}

/* The key in the slot: exactly one, then its login. */
static void
choose_key(Flow *f)
{
	g_autoptr(CsKey) key = NULL;
	g_autofree char *holder = NULL;
	g_autofree char *text = NULL;

	f->generation++;
	key = single_key(f, RETRY_KEY);
	if (key == NULL)
		return;
	g_free(f->key_path);
	f->key_path = g_strdup(g_dbus_proxy_get_object_path(G_DBUS_PROXY(key)));
	if (!f->steps->needs_login) {
		create_order(f);
		return;
	}
	if (cs_key_get_pin_locked(key)) {
		cs_assistant_show_locked(f->a, key);
		return;
	}
	if (cs_key_get_logged_in(key)) {
		create_order(f);
		return;
	}
	holder = cs_key_holder(key);
	text = g_strdup_printf(_("Key %s: %s. Type the certificate password and log in."),
			       cs_key_get_serial(key), holder != NULL ? holder : _("Blank key"));
	set_text(f->key_text, text);
	gtk_widget_set_visible(f->login, TRUE);
	show_step(f, "key");
	cs_assistant_login(f->a, key, G_CALLBACK(on_logged_in), login_for(f));
}

/* --- the buttons of the steps ------------------------------------------------------------ */

static void
next_draft_step(Flow *f)
{
	if (can(f, "VerifySmsCode") && !f->sms_verified) {
		f->draft_step = "sms";
		set_text(f->sms_status, NULL);
		if (can(f, "SendSmsCode"))
			send_code(f);
		show_state(f);
	} else {
		f->draft_step = "confirm";
		set_text(f->confirm_status, NULL);
		fetch_fields(f, FALSE);
	}
}

static void
on_updated(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Flow *f = call_done(user_data);
	g_autoptr(GError) error = NULL;

	if (!cs_order_call_update_finish(CS_ORDER(source), result, &error)) {
		if (f != NULL && !cs_form_show_error(f->form, error)) {
			g_autofree char *line = cs_not_accepted_text(error);
			set_text(f->form_status, line);
		} else if (f != NULL) {
			set_text(f->form_status, _("Correct the fields marked in red."));
		}
		return;
	}
	if (f != NULL)
		next_draft_step(f);
}

static void
on_next(GtkButton *button, gpointer user_data)
{
	Flow *f = user_data;
	g_autoptr(GVariant) changes = g_variant_ref_sink(cs_form_changes(f->form));

	if (f->order == NULL)
		return;
	if (g_variant_n_children(changes) == 0) {
		next_draft_step(f);
		return;
	}
	cs_order_call_update(f->order, changes, NULL, on_updated, call_new(f));
}

static void
on_code_sent(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Flow *f = call_done(user_data);
	g_autoptr(GError) error = NULL;
	g_autofree char *to = NULL;
	g_autofree char *text = NULL;

	if (!cs_order_call_send_sms_code_finish(CS_ORDER(source), &to, result, &error)) {
		text = cs_not_accepted_text(error);
	} else {
		text = g_strdup_printf(_("A code was sent to %s."), to);
	}
	if (f != NULL)
		set_text(f->sms_text, text);
}

static void
send_code(Flow *f)
{
	if (f->order != NULL)
		cs_order_call_send_sms_code(f->order, NULL, on_code_sent, call_new(f));
}

static void
on_send_code(GtkButton *button, gpointer user_data)
{
	send_code(user_data);
}

static void
on_sms_verified(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Flow *f = call_done(user_data);
	g_autoptr(GError) error = NULL;

	if (f == NULL)
		return;
	if (!cs_order_call_verify_sms_code_finish(CS_ORDER(source), result, &error)) {
		g_autofree char *text = cs_not_accepted_text(error);
		set_text(f->sms_status, text);
		return;
	}
	f->sms_verified = TRUE;
	next_draft_step(f);
}

static void
on_verify(GtkButton *button, gpointer user_data)
{
	Flow *f = user_data;

	cs_order_call_verify_sms_code(f->order, gtk_editable_get_text(GTK_EDITABLE(f->sms_code)),
				      NULL, on_sms_verified, call_new(f));
	gtk_editable_set_text(GTK_EDITABLE(f->sms_code), "");
}

static void
on_back_to_form(GtkButton *button, gpointer user_data)
{
	Flow *f = user_data;

	f->draft_step = "form";
	show_state(f);
}

static void
on_order_call(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Flow *f = call_done(user_data);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = g_dbus_proxy_call_finish(G_DBUS_PROXY(source), result, &error);

	if (f == NULL)
		return;
	if (reply == NULL) {
		g_autofree char *line = cs_not_accepted_text(error);
		set_text(f->confirm_status, line);
		set_text(f->status_status, line);
		return;
	}
	show_state(f);
}

static void
on_confirmed(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Flow *f = call_done(user_data);
	g_autoptr(GError) error = NULL;

	if (f == NULL)
		return;
	if (!cs_order_call_confirm_finish(CS_ORDER(source), result, &error)) {
		g_autofree char *line = cs_not_accepted_text(error);
		set_text(f->confirm_status, line);
		return;
	}
	/* A complete order goes on at once: 确认订单 submits it. */
	if (can(f, "Submit") && g_strv_length((char **)cs_order_get_missing(f->order)) == 0) {
		g_dbus_proxy_call(G_DBUS_PROXY(f->order), "Submit", NULL, G_DBUS_CALL_FLAGS_NONE,
				  -1, NULL, on_order_call, call_new(f));
		return;
	}
	show_state(f);
}

static void
on_confirm(GtkButton *button, gpointer user_data)
{
	Flow *f = user_data;

	set_text(f->confirm_status, NULL);
	cs_order_call_confirm(f->order, NULL, on_confirmed, call_new(f));
}

static void
on_submit(GtkButton *button, gpointer user_data)
{
	Flow *f = user_data;

	g_dbus_proxy_call(G_DBUS_PROXY(f->order), "Submit", NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL,
			  on_order_call, call_new(f));
}

/* The pages let go of their order: no more of its changes, no call's reply. */
static void
flow_detach(Flow *f)
{
	f->generation++;
	if (f->order != NULL)
		g_signal_handlers_disconnect_by_data(f->order, f);
	if (f->progress_binding != NULL)
		g_binding_unbind(f->progress_binding);
	f->progress_binding = NULL;
	g_clear_object(&f->order);
	cs_payment_set_order(f->payment, NULL);
}

static void
on_home(GtkButton *button, gpointer user_data)
{
	Flow *f = user_data;

	flow_detach(f);
	cs_assistant_go_home(f->a);
}

/* Materials are the order page's: the file choosers, then its steps. */
static void
on_materials(GtkButton *button, gpointer user_data)
{
	Flow *f = user_data;
	g_autofree char *path = g_strdup(g_dbus_proxy_get_object_path(G_DBUS_PROXY(f->order)));

	flow_detach(f);
	cs_assistant_apply_open_order(f->a, path);
}

static void
on_unlocked(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Flow *f = call_done(user_data);
	g_autoptr(GError) error = NULL;

	if (f == NULL)
		return;
	gtk_widget_set_sensitive(f->reset, TRUE);
	if (!cs_order_call_unlock_finish(CS_ORDER(source), result, &error)) {
		g_autofree char *text = cs_not_accepted_text(error);
		set_text(f->code_status, text);
		return;
	}
	set_text(f->code_status, NULL);
	show_state(f);
}

static void
on_reset(GtkButton *button, gpointer user_data)
{
	Flow *f = user_data;
	const char *code = gtk_editable_get_text(GTK_EDITABLE(f->code));
	const char *pin = gtk_editable_get_text(GTK_EDITABLE(f->pin1));

	if (*code == '\0') {
		set_text(f->code_status, _("Type the authorization code."));
		return;
	}
	if (strcmp(pin, gtk_editable_get_text(GTK_EDITABLE(f->pin2))) != 0) {
		set_text(f->code_status, _("The two new passwords differ."));
		return;
	}
	gtk_widget_set_sensitive(f->reset, FALSE);
	set_text(f->code_status, NULL);
	cs_order_call_unlock(f->order, f->key_path, code, pin, NULL, on_unlocked, call_new(f));
	gtk_editable_set_text(GTK_EDITABLE(f->code), "");
	gtk_editable_set_text(GTK_EDITABLE(f->pin1), "");
	gtk_editable_set_text(GTK_EDITABLE(f->pin2), "");
}

/* --- the pages ------------------------------------------------------------------------- */

static GtkWidget *
step_page(Flow *f, const char *name, const char *title, GtkWidget **title_label)
{
	GtkWidget *scroller;
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);
	GtkWidget *heading = cs_label_new(title, "title-3");

	if (title_label != NULL)
		*title_label = heading;
	gtk_box_append(GTK_BOX(box), heading);
	scroller = cs_page_scroller(box, 12, 640);
	gtk_stack_add_named(f->stack, scroller, name);
	return box;
}

static GtkWidget *
button_row(GtkWidget *box)
{
	GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);

	gtk_widget_set_halign(row, GTK_ALIGN_END);
	gtk_box_append(GTK_BOX(box), row);
	return row;
}

static GtkWidget *
add_button(GtkWidget *row, const char *label, const char *css, GCallback cb, Flow *f)
{
	GtkWidget *button = gtk_button_new_with_label(label);

	if (css != NULL)
		gtk_widget_add_css_class(button, css);
	g_signal_connect(button, "clicked", cb, f);
	gtk_box_append(GTK_BOX(row), button);
	return button;
}

static GtkWidget *
status_label(GtkWidget *box, const char *css)
{
	GtkWidget *label = cs_label_new("", css);

	gtk_widget_set_visible(label, FALSE);
	gtk_box_append(GTK_BOX(box), label);
	return label;
}

static void
build_pages(Flow *f)
{
	GtkWidget *box, *row;

	box = step_page(f, "problem", "", &f->problem_title);
	f->problem_text = status_label(box, NULL);
	f->problem_dates = status_label(box, "heading");
	row = button_row(box);
	f->to_unlock = add_button(row, _("Recover the password / unlock"), "suggested-action",
				  G_CALLBACK(on_to_unlock), f);
	f->retry = add_button(row, _("Retry"), "suggested-action", G_CALLBACK(on_retry), f);

	box = step_page(f, "key", _("Insert the key and log in"), NULL);
	f->key_text = status_label(box, NULL);
	row = button_row(box);
	f->login = add_button(row, _("Log in…"), "suggested-action", G_CALLBACK(on_login), f);

	box = step_page(f, "form", _("Fill in the order"), NULL);
	gtk_box_append(GTK_BOX(box), cs_form_widget(f->form));
	f->form_status = status_label(box, NULL);
	row = button_row(box);
	add_button(row, _("Next"), "suggested-action", G_CALLBACK(on_next), f);

	box = step_page(f, "sms", _("SMS code"), NULL);
	f->sms_text = status_label(box, NULL);
	f->sms_code = cs_password_entry_new(box, _("SMS code"));
	f->sms_status = status_label(box, "error");
	row = button_row(box);
	add_button(row, _("Send a new code"), NULL, G_CALLBACK(on_send_code), f);
	add_button(row, _("OK"), "suggested-action", G_CALLBACK(on_verify), f);

	box = step_page(f, "confirm", _("Confirm the order"), NULL);
	gtk_box_append(GTK_BOX(box), cs_label_new(_("Check the order once more."), NULL));
	f->summary = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
	gtk_box_append(GTK_BOX(box), f->summary);
	f->confirm_status = status_label(box, "error");
	row = button_row(box);
	add_button(row, _("Back to edit"), NULL, G_CALLBACK(on_back_to_form), f);
	add_button(row, _("Confirm the order"), "suggested-action", G_CALLBACK(on_confirm), f);

	box = step_page(f, "status", _("The order"), NULL);
	f->state_text = cs_label_new("", "heading");
	gtk_box_append(GTK_BOX(box), f->state_text);
	f->note_text = status_label(box, NULL);
	f->missing_text = status_label(box, NULL);
	f->status_status = status_label(box, "error");
	row = button_row(box);
	f->materials =
	    add_button(row, _("Upload the materials…"), NULL, G_CALLBACK(on_materials), f);
	f->submit = add_button(row, _("Submit"), "suggested-action", G_CALLBACK(on_submit), f);

	box = step_page(f, "pay", _("Pay"), NULL);
	f->pay_text = cs_label_new("", NULL);
	gtk_box_append(GTK_BOX(box), f->pay_text);
	f->payment = cs_payment_new(f->a);
	gtk_box_append(GTK_BOX(box), f->payment);

	box = step_page(f, "code", _("Reset the password"), NULL);
	f->code_text = cs_label_new("", NULL);
	gtk_box_append(GTK_BOX(box), f->code_text);
	f->code = cs_password_entry_new(box, _("Authorization code"));
	f->pin1 = cs_password_entry_new(box, _("New password"));
	f->pin2 = cs_password_entry_new(box, _("New password again"));
	f->code_status = status_label(box, "error");
	row = button_row(box);
	f->reset =
	    add_button(row, _("Reset the password"), "suggested-action", G_CALLBACK(on_reset), f);

	box = step_page(f, "download", "", &f->download_title);
	f->progress = gtk_progress_bar_new();
	gtk_accessible_update_property(GTK_ACCESSIBLE(f->progress), GTK_ACCESSIBLE_PROPERTY_LABEL,
				       _("Download progress"), -1);
	gtk_box_append(GTK_BOX(box), f->progress);
	f->progress_text = cs_label_new("", NULL);
	gtk_box_append(GTK_BOX(box), f->progress_text);
	g_signal_connect(f->progress, "notify::fraction", G_CALLBACK(on_progress_text), f);
	on_progress_text(G_OBJECT(f->progress), NULL, f);
	f->download_status = status_label(box, NULL);
	f->done_text = status_label(box, "heading");
	row = button_row(box);
	f->resume = add_button(row, _("Resume the download"), NULL, G_CALLBACK(on_resume), f);
	f->finish = add_button(row, _("Done"), "suggested-action", G_CALLBACK(on_home), f);
}

static Flow *
flow_page(CsAssistant *a)
{
	Flow *f = g_new0(Flow, 1);
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
	GtkWidget *bar = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
	GtkWidget *home = gtk_button_new_with_label(_("Back to the home page"));

	f->a = a;
	f->form = cs_form_new(a, NULL, NULL);
	f->title = cs_label_new("", "title-2");
	gtk_widget_set_margin_top(f->title, 12);
	gtk_widget_set_margin_start(f->title, 24);
	gtk_box_append(GTK_BOX(box), f->title);
	f->stack = GTK_STACK(gtk_stack_new());
	gtk_widget_set_vexpand(GTK_WIDGET(f->stack), TRUE);
	build_pages(f);
	gtk_box_append(GTK_BOX(box), GTK_WIDGET(f->stack));
	g_signal_connect(home, "clicked", G_CALLBACK(on_home), f);
	gtk_widget_set_halign(bar, GTK_ALIGN_START);
	gtk_widget_set_margin_start(bar, 24);
	gtk_widget_set_margin_bottom(bar, 12);
	gtk_box_append(GTK_BOX(bar), home);
	gtk_box_append(GTK_BOX(box), bar);
	if (a->objects != NULL) {
		g_signal_connect(a->objects, "object-added", G_CALLBACK(on_key_added), f);
		g_signal_connect(a->objects, "interface-added", G_CALLBACK(on_key_interface_added),
				 f);
	}
	gtk_stack_add_named(a->stack, box, "key-flow");
	return f;
}

static Flow *
flow_reset(CsAssistant *a, const char *kind)
{
	Flow *f = a->key_flow;

	if (f == NULL)
		a->key_flow = f = flow_page(a);
	f->generation++;
	f->steps = &kinds[0];
	for (guint i = 0; i < G_N_ELEMENTS(kinds); i++) {
		if (g_strcmp0(kinds[i].kind, kind) == 0)
			f->steps = &kinds[i];
	}
	flow_detach(f);
	g_clear_pointer(&f->flow, g_variant_unref);
	g_clear_pointer(&f->fields, g_variant_unref);
	g_clear_pointer(&f->key_path, g_free);
	gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(f->progress), 0);
	f->draft_step = "form";
	f->sms_verified = FALSE;
	f->download_pending = FALSE;
	f->login_offered = FALSE;
	gtk_label_set_text(GTK_LABEL(f->title), _(f->steps->title));
	gtk_stack_set_visible_child_name(a->stack, "key-flow");
	return f;
}

/* The pages of @kind (renew, unlock, change) for the key in the slot. */
void
cs_assistant_key_flow_start(CsAssistant *a, const char *kind)
{
	choose_key(flow_reset(a, kind));
}

/* A key locked by wrong passwords: the page that says so and offers 找回密码. */
void
cs_assistant_show_locked(CsAssistant *a, CsKey *key)
{
	Flow *f = a->key_flow;

	if (f == NULL || gtk_stack_get_visible_child(a->stack) !=
			     gtk_stack_get_child_by_name(a->stack, "key-flow"))
		f = flow_reset(a, "unlock");
	g_free(f->key_path);
	f->key_path = g_strdup(g_dbus_proxy_get_object_path(G_DBUS_PROXY(key)));
	problem(f, _("The key is locked"),
		_("Too many wrong passwords locked the key. Recover the password to unlock it."),
		NULL, RETRY_KEY, TRUE);
}

/* An order created elsewhere (a reissue found by its certificate): its steps on these
 * pages. */
void
cs_assistant_key_flow_open(CsAssistant *a, const char *kind, const char *order_path)
{
	open_order(flow_reset(a, kind), order_path);
}

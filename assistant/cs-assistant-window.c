/*
 * cs-assistant-window.c — the main window and its home page: the inserted keys, live
 * through the daemon's ObjectManager (vendor, holder, valid until, PIN tries left, locked),
 * and the manual's buttons (证书申请, 证书更新, 找回密码/解锁, 修改密码, 丢失补办, 信息变更,
 * 订单查询, 电子印章).
 *
 * A button that fronts an order kind is sensitive only when the daemon has that flow
 * loaded (Manager.Plugins); otherwise its tooltip says so.
 */
#include <string.h>

#include "cs-assistant.h"

typedef enum {
	ACTION_FLOW,	   /* an order of @kind: the application form */
	ACTION_KEY_FLOW,   /* an order of @kind for the key in the slot: its step pages */
	ACTION_REISSUE,	   /* 丢失补办: the certificate found by a code, then its order */
	ACTION_CHANGE_PIN, /* Key.ChangePin */
	ACTION_QUERY,	   /* 订单查询 (cs-assistant-query.c) */
	ACTION_SEAL,	   /* 电子印章 (cs-assistant-seal.c) */
	ACTION_LATER,	   /* not offered by this version */
} ActionType;

typedef struct {
	const char *label; /* the manual's name, translated */
	const char *icon;
	ActionType type;
	const char *kind; /* ACTION_FLOW: the order kind it starts */
} HomeAction;

static const HomeAction home_actions[] = {
    {N_("Apply for a certificate"), "document-new-symbolic", ACTION_FLOW, "new"},
    {N_("Renew the certificate"), "view-refresh-symbolic", ACTION_KEY_FLOW, "renew"},
    {N_("Recover the password / unlock"), "changes-allow-symbolic", ACTION_KEY_FLOW, "unlock"},
    {N_("Change the password"), "dialog-password-symbolic", ACTION_CHANGE_PIN, NULL},
    {N_("Replace a lost key"), "edit-copy-symbolic", ACTION_REISSUE, "reissue"},
    {N_("Change the details"), "document-edit-symbolic", ACTION_KEY_FLOW, "change"},
    {N_("Look up orders"), "system-search-symbolic", ACTION_QUERY, NULL},
    {N_("E-seal"), "emblem-documents-symbolic", ACTION_SEAL, NULL},
};

void
cs_assistant_toast(CsAssistant *a, const char *text)
{
	AdwToast *toast = adw_toast_new(text);

	adw_toast_set_timeout(toast, 8);
	adw_toast_overlay_add_toast(a->toasts, toast);
}

void
cs_assistant_go_home(CsAssistant *a)
{
	gtk_stack_set_visible_child_name(a->stack, "home");
}

/* --- the key list ------------------------------------------------------------------ */

static void
fill_key_row(CsAssistant *a, GtkWidget *row, CsKey *key)
{
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
	GtkWidget *line = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 18);
	g_autofree char *holder = cs_key_holder(key);
	g_autofree char *vendor =
	    g_strdup_printf(_("Vendor: %s"), cs_vendor_name(a, cs_key_get_vendor(key)));
	g_autofree char *serial = g_strdup_printf(_("Serial number: %s"), cs_key_get_serial(key));
	g_autofree char *until = NULL;
	g_autofree char *tries = NULL;
	g_autofree char *name = NULL;
	GtkWidget *title;
	int left = cs_key_get_pin_tries_left(key);

	if (cs_key_get_not_after(key) > 0) {
		g_autofree char *date = cs_format_date(cs_key_get_not_after(key));
		until = g_strdup_printf(_("Valid until: %s"), date);
	} else {
		until = g_strdup(_("No certificate on this key"));
	}
	if (left >= 0)
		tries = g_strdup_printf(_("PIN tries left: %d"), left);
	else
		tries = g_strdup(_("PIN tries left: unknown"));

	title = cs_label_new(holder != NULL ? holder : _("Blank key"), "heading");
	gtk_box_append(GTK_BOX(box), title);
	gtk_box_append(GTK_BOX(line), cs_label_new(vendor, NULL));
	gtk_box_append(GTK_BOX(line), cs_label_new(serial, NULL));
	gtk_box_append(GTK_BOX(box), line);
	line = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 18);
	gtk_box_append(GTK_BOX(line), cs_label_new(until, NULL));
	gtk_box_append(GTK_BOX(line), cs_label_new(tries, NULL));
	if (cs_key_get_renewable(key))
		gtk_box_append(GTK_BOX(line), cs_label_new(_("Renewable"), "warning"));
	if (cs_key_get_pin_locked(key))
		gtk_box_append(GTK_BOX(line), cs_label_new(_("Locked"), "error"));
	else if (cs_key_get_logged_in(key))
		gtk_box_append(GTK_BOX(line), cs_label_new(_("Logged in"), "success"));
	gtk_box_append(GTK_BOX(box), line);
	gtk_widget_set_margin_top(box, 10);
	gtk_widget_set_margin_bottom(box, 10);
	gtk_widget_set_margin_start(box, 12);
	gtk_widget_set_margin_end(box, 12);
	gtk_list_box_row_set_child(GTK_LIST_BOX_ROW(row), box);

	name = g_strdup_printf(_("Key %s"), cs_key_get_serial(key));
	gtk_accessible_update_property(GTK_ACCESSIBLE(row), GTK_ACCESSIBLE_PROPERTY_LABEL, name,
				       -1);
}

static void
on_key_changed(GDBusProxy *proxy, GVariant *changed, GStrv invalidated, gpointer user_data)
{
	CsAssistant *a = user_data;
	GtkWidget *row = g_hash_table_lookup(a->rows, g_dbus_proxy_get_object_path(proxy));

	if (row != NULL)
		fill_key_row(a, row, CS_KEY(proxy));
}

static void
add_key(CsAssistant *a, GDBusObject *object)
{
	CsKey *key = cs_object_peek_key(CS_OBJECT(object));
	const char *path = g_dbus_object_get_object_path(object);
	GtkWidget *row;

	if (key == NULL || g_hash_table_contains(a->rows, path))
		return;
	row = gtk_list_box_row_new();
	g_object_set_data_full(G_OBJECT(row), "cs-key", g_object_ref(key), g_object_unref);
	fill_key_row(a, row, key);
	/* After the proxy's own handler, which drops the values the getters cached. */
	g_signal_connect_after(key, "g-properties-changed", G_CALLBACK(on_key_changed), a);
	g_hash_table_insert(a->rows, g_strdup(path), row);
	gtk_list_box_append(a->key_list, row);
	cs_assistant_remind_renewal(a, key);
}

static void
remove_key(CsAssistant *a, GDBusObject *object)
{
	const char *path = g_dbus_object_get_object_path(object);
	GtkWidget *row = g_hash_table_lookup(a->rows, path);

	if (row == NULL)
		return;
	gtk_list_box_remove(a->key_list, row);
	g_hash_table_remove(a->rows, path);
}

static void
on_object_added(GDBusObjectManager *manager, GDBusObject *object, gpointer user_data)
{
	add_key(user_data, object);
}

static void
on_object_removed(GDBusObjectManager *manager, GDBusObject *object, gpointer user_data)
{
	remove_key(user_data, object);
}

static void
on_interface_added(GDBusObjectManager *manager,
		   GDBusObject *object,
		   GDBusInterface *iface,
		   gpointer user_data)
{
	add_key(user_data, object);
}

static void
on_interface_removed(GDBusObjectManager *manager,
		     GDBusObject *object,
		     GDBusInterface *iface,
		     gpointer user_data)
{
	if (CS_IS_KEY(iface))
		remove_key(user_data, object);
}

/* The key an action is for: the one inserted, or the one chosen in the list. NULL (and a
 * toast saying what to do) when there is none or the choice is open. */
CsKey *
cs_assistant_chosen_key(CsAssistant *a)
{
	GtkListBoxRow *row = gtk_list_box_get_selected_row(a->key_list);
	GHashTableIter iter;
	gpointer value;

	if (row != NULL && g_object_get_data(G_OBJECT(row), "cs-key") != NULL)
		return g_object_ref(g_object_get_data(G_OBJECT(row), "cs-key"));
	if (g_hash_table_size(a->rows) == 0) {
		cs_assistant_toast(a, _("Insert your USB key first."));
		return NULL;
	}
	if (g_hash_table_size(a->rows) > 1) {
		cs_assistant_toast(a, _("Several keys are inserted: choose one in the list."));
		return NULL;
	}
	g_hash_table_iter_init(&iter, a->rows);
	g_hash_table_iter_next(&iter, NULL, &value);
	return g_object_ref(g_object_get_data(G_OBJECT(value), "cs-key"));
}

/* --- the buttons ---------------------------------------------------------------------- */

static void
on_action(GtkButton *button, gpointer user_data)
{
	CsAssistant *a = user_data;
	const HomeAction *action = g_object_get_data(G_OBJECT(button), "cs-action");
	g_autoptr(CsKey) key = NULL;

	switch (action->type) {
	case ACTION_FLOW:
		cs_assistant_apply_start(a, action->kind);
		break;
	case ACTION_KEY_FLOW:
		cs_assistant_key_flow_start(a, action->kind);
		break;
	case ACTION_REISSUE:
		cs_assistant_reissue_start(a);
		break;
	case ACTION_CHANGE_PIN:
		key = cs_assistant_chosen_key(a);
		if (key != NULL && cs_key_get_pin_locked(key))
			cs_assistant_show_locked(a, key); /* only an unlock helps now */
		else if (key != NULL)
			cs_assistant_change_pin(a, key);
		break;
	case ACTION_QUERY:
		cs_assistant_query_start(a);
		break;
	case ACTION_SEAL:
		cs_assistant_seal_start(a);
		break;
	case ACTION_LATER:
		break;
	}
}

/* Which buttons work: those whose flow the daemon has loaded. */
static void
update_buttons(CsAssistant *a)
{
	const char *const *plugins = a->manager != NULL ? cs_manager_get_plugins(a->manager) : NULL;
	gboolean running =
	    a->manager != NULL && g_dbus_proxy_get_name_owner(G_DBUS_PROXY(a->manager)) != NULL;

	gtk_widget_set_visible(a->service_banner, !running);
	for (guint i = 0; i < a->flow_buttons->len; i++) {
		GtkWidget *button = g_ptr_array_index(a->flow_buttons, i);
		const HomeAction *action = g_object_get_data(G_OBJECT(button), "cs-action");
		gboolean loaded = action->kind == NULL || /* a page of Manager and Key calls */
				  (plugins != NULL && g_strv_contains(plugins, action->kind));

		gtk_widget_set_sensitive(button, running && loaded);
		if (!running)
			gtk_widget_set_tooltip_text(button,
						    _("The certificate service is not running."));
		else if (!loaded)
			gtk_widget_set_tooltip_text(
			    button, _("Not available: the certificate service has not loaded this "
				      "service's flow."));
		else
			gtk_widget_set_tooltip_text(button, NULL);
	}
}

static void
on_name_owner(GObject *proxy, GParamSpec *pspec, gpointer user_data)
{
	update_buttons(user_data);
}

static GtkWidget *
home_button(CsAssistant *a, const HomeAction *action)
{
	GtkWidget *button = gtk_button_new();
	GtkWidget *content = adw_button_content_new();

	adw_button_content_set_label(ADW_BUTTON_CONTENT(content), _(action->label));
	adw_button_content_set_icon_name(ADW_BUTTON_CONTENT(content), action->icon);
	gtk_button_set_child(GTK_BUTTON(button), content);
	gtk_widget_add_css_class(button, "pill");
	g_object_set_data(G_OBJECT(button), "cs-action", (gpointer)action);
	g_signal_connect(button, "clicked", G_CALLBACK(on_action), a);
	if (action->type == ACTION_FLOW || action->type == ACTION_KEY_FLOW ||
	    action->type == ACTION_REISSUE || action->type == ACTION_QUERY ||
	    action->type == ACTION_SEAL)
		g_ptr_array_add(a->flow_buttons, button);
	if (action->type == ACTION_LATER) {
		gtk_widget_set_sensitive(button, FALSE);
		gtk_widget_set_tooltip_text(
		    button, _("Not available in this version of the assistant yet."));
	}
	return button;
}

static GtkWidget *
home_page(CsAssistant *a)
{
	GtkWidget *scroller;
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 18);
	GtkWidget *grid = gtk_grid_new();
	GtkWidget *heading;

	a->service_banner = cs_label_new(
	    _("The certificate service (certseald) is not running: start it, then open the "
	      "assistant again."),
	    "error");
	gtk_box_append(GTK_BOX(box), a->service_banner);

	heading = cs_label_new(_("Inserted keys"), "title-4");
	gtk_box_append(GTK_BOX(box), heading);
	a->key_list = GTK_LIST_BOX(gtk_list_box_new());
	gtk_widget_add_css_class(GTK_WIDGET(a->key_list), "boxed-list");
	gtk_list_box_set_selection_mode(a->key_list, GTK_SELECTION_SINGLE);
	gtk_accessible_update_property(GTK_ACCESSIBLE(a->key_list), GTK_ACCESSIBLE_PROPERTY_LABEL,
				       _("Inserted keys"), -1);
	a->no_keys = cs_label_new(_("No key is inserted. Insert your USB key."), "dim-label");
	gtk_widget_set_margin_top(a->no_keys, 18);
	gtk_widget_set_margin_bottom(a->no_keys, 18);
	gtk_widget_set_halign(a->no_keys, GTK_ALIGN_CENTER);
	gtk_list_box_set_placeholder(a->key_list, a->no_keys);
	gtk_box_append(GTK_BOX(box), GTK_WIDGET(a->key_list));

	heading = cs_label_new(_("Services"), "title-4");
	gtk_box_append(GTK_BOX(box), heading);
	gtk_grid_set_row_spacing(GTK_GRID(grid), 12);
	gtk_grid_set_column_spacing(GTK_GRID(grid), 12);
	gtk_grid_set_column_homogeneous(GTK_GRID(grid), TRUE);
	for (guint i = 0; i < G_N_ELEMENTS(home_actions); i++)
		gtk_grid_attach(GTK_GRID(grid), home_button(a, &home_actions[i]), (int)(i % 4),
				(int)(i / 4), 1, 1);
	gtk_box_append(GTK_BOX(box), grid);

	scroller = cs_page_scroller(box, 24, 760);
	return scroller;
}

void
cs_assistant_window_build(CsAssistant *a)
{
	GtkWidget *window = adw_application_window_new(GTK_APPLICATION(a->app));
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
	GtkWidget *header = adw_header_bar_new();
	GtkWidget *title = adw_window_title_new(_("Certificate Assistant"), NULL);
	GList *objects;

	a->window = GTK_WINDOW(window);
	a->rows = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	a->flow_buttons = g_ptr_array_new();
	gtk_window_set_title(a->window, _("Certificate Assistant"));
	gtk_window_set_default_size(a->window, 860, 640);
	adw_header_bar_set_title_widget(ADW_HEADER_BAR(header), title);
	gtk_box_append(GTK_BOX(box), header);

	a->stack = GTK_STACK(gtk_stack_new());
	gtk_stack_set_transition_type(a->stack, GTK_STACK_TRANSITION_TYPE_SLIDE_LEFT_RIGHT);
	gtk_widget_set_vexpand(GTK_WIDGET(a->stack), TRUE);
	gtk_stack_add_named(a->stack, home_page(a), "home");
	a->toasts = ADW_TOAST_OVERLAY(adw_toast_overlay_new());
	adw_toast_overlay_set_child(a->toasts, GTK_WIDGET(a->stack));
	gtk_box_append(GTK_BOX(box), GTK_WIDGET(a->toasts));
	adw_application_window_set_content(ADW_APPLICATION_WINDOW(window), box);

	if (a->manager != NULL)
		g_signal_connect(a->manager, "notify::g-name-owner", G_CALLBACK(on_name_owner), a);
	update_buttons(a);
	if (a->objects != NULL) {
		g_signal_connect(a->objects, "object-added", G_CALLBACK(on_object_added), a);
		g_signal_connect(a->objects, "object-removed", G_CALLBACK(on_object_removed), a);
		g_signal_connect(a->objects, "interface-added", G_CALLBACK(on_interface_added), a);
		g_signal_connect(a->objects, "interface-removed", G_CALLBACK(on_interface_removed),
				 a);
		objects = g_dbus_object_manager_get_objects(a->objects);
		for (GList *l = objects; l != NULL; l = l->next)
			add_key(a, l->data);
		g_list_free_full(objects, g_object_unref);
	}
}

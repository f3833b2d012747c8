/*
 * cs-assistant.h — certseal-assistant (证书助手), the desktop assistant: shared state of the
 * application and its pages.
 *
 * The assistant is a client of certseald over D-Bus only, through the proxy gdbus-codegen
 * makes from dbus/org.certseal.CertSeal1.xml. It holds no business rule: what it shows
 * and offers comes from the daemon's properties, NextActions, Missing, errors and GetFlow.
 */
#pragma once

#include <adwaita.h>
#include <gio/gunixfdlist.h>
#include <glib/gi18n.h>
#include <gtk/gtk.h>

#include "cs-assistant-config.h"
#include "cs-certseal-dbus.h"

#define CS_BUS_NAME "org.certseal.CertSeal1"
#define CS_MANAGER_PATH "/org/certseal/CertSeal1"

typedef struct _CsAssistant CsAssistant;

struct _CsAssistant {
	AdwApplication *app;
	GBusType bus_type;
	CsManager *manager;	     /* NULL when the bus could not be reached */
	GDBusObjectManager *objects; /* the daemon's keys and orders */
	GtkWindow *window;
	AdwToastOverlay *toasts;
	GtkStack *stack;
	GtkListBox *key_list;
	GtkWidget *no_keys;	   /* the list's placeholder */
	GtkWidget *service_banner; /* "the certificate service is not running" */
	GHashTable *rows;	   /* key object path → its GtkListBoxRow */
	GPtrArray *flow_buttons;   /* the home page's buttons that front a flow */
	gboolean chinese;	   /* labels from the daemon: _zh or _en */
	gpointer apply;		   /* the application form's state (cs-assistant-apply.c) */
	char *state_dir;	   /* the daemon's, for its CA certificates (seals) */
	gpointer key_flow;	   /* the pages of an order for a key (cs-assistant-renew.c) */
};

/* cs-assistant-window.c */
void cs_assistant_window_build(CsAssistant *a);
void cs_assistant_toast(CsAssistant *a, const char *text);
CsKey *cs_assistant_chosen_key(CsAssistant *a);
void cs_assistant_go_home(CsAssistant *a);

/* cs-assistant-pin.c */
void cs_assistant_change_pin(CsAssistant *a, CsKey *key);
void cs_assistant_login(CsAssistant *a, CsKey *key, GCallback done, gpointer user_data);

/* cs-assistant-apply.c */
void cs_assistant_apply_start(CsAssistant *a, const char *kind);
void cs_assistant_apply_open_order(CsAssistant *a, const char *order_path);

/* cs-assistant-query.c */
void cs_assistant_query_start(CsAssistant *a);
void cs_assistant_reissue_start(CsAssistant *a);

/* cs-assistant-seal.c */
void cs_assistant_seal_start(CsAssistant *a);

/* cs-assistant-remind.c */
void cs_assistant_remind_renewal(CsAssistant *a, CsKey *key);

/* cs-assistant-words.c */
const char *cs_state_text(const char *state);
const char *cs_action_text(const char *action);
const char *cs_kind_text(const char *kind);
const char *cs_certificate_status_text(const char *status);
char *cs_delivery_text(const char *delivery);
char *cs_actions_text(const char *const *next);
void cs_assistant_apply_start_for_key(
    CsAssistant *a, const char *kind, CsKey *key, GAsyncReadyCallback callback, gpointer user_data);
char *cs_assistant_apply_start_for_key_finish(CsAssistant *a, GAsyncResult *result, GError **error);

/* cs-assistant-renew.c: renewal, unlock, change, and a reissue's order */
void cs_assistant_key_flow_start(CsAssistant *a, const char *kind);
void cs_assistant_show_locked(CsAssistant *a, CsKey *key);
void cs_assistant_key_flow_open(CsAssistant *a, const char *kind, const char *order_path);

/* cs-assistant-form.c: a flow's form from GetFlow, checked with ValidateFields */
typedef struct _CsForm CsForm;
typedef void (*CsFormStatus)(gpointer user_data, const char *text, gboolean error);
CsForm *cs_form_new(CsAssistant *a, CsFormStatus status, gpointer status_data);
void cs_form_free(CsForm *form);
GtkWidget *cs_form_widget(CsForm *form);
void
cs_form_fill(CsForm *form, const char *kind, const char *subject, GVariant *flow, GVariant *values);
GVariant *cs_form_values(CsForm *form);
GVariant *cs_form_changes(CsForm *form);
const char *cs_form_label(CsForm *form, const char *name);
const char *cs_form_shown_value(CsForm *form, const char *name, const char *value);
gboolean cs_form_show_error(CsForm *form, const GError *error);
void cs_form_check(CsForm *form);
const char *cs_dict_string(GVariant *dict, const char *key);

/* cs-assistant-pay.c: the payment step */
GtkWidget *cs_payment_new(CsAssistant *a);
void cs_payment_set_order(GtkWidget *payment, CsOrder *order);
GdkTexture *cs_qr_texture(const char *payload);

/* cs-assistant-util.c */
const char *cs_error_name(const GError *error);
char *cs_error_text(const GError *error);
gboolean cs_error_is_key_removed(const GError *error);
char *cs_not_accepted_text(const GError *error);
char *cs_subject_holder(const char *subject);
char *cs_key_holder(CsKey *key);
const char *cs_key_subject_type(CsKey *key);
const char *cs_vendor_name(CsAssistant *a, const char *vendor_id);
char *cs_format_date(guint64 seconds);
GtkWidget *cs_label_new(const char *text, const char *css_class);
GtkWidget *cs_password_entry_new(GtkWidget *box, const char *label_text);
GtkWidget *cs_page_scroller(GtkWidget *box, int margin, int width);
GtkWidget *cs_back_button_new(CsAssistant *a);
void cs_chooser_show(GtkFileChooserNative *chooser, GCallback on_response, gpointer user_data);
GUnixFDList *
cs_open_chosen_file(GtkNativeDialog *dialog, int response, char **path, char **error_text);

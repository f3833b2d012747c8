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

/* cs-assistant-seal.c */
void cs_assistant_seal_start(CsAssistant *a);

/* cs-assistant-remind.c */
void cs_assistant_remind_renewal(CsAssistant *a, CsKey *key);

/* cs-assistant-words.c */
const char *cs_state_text(const char *state);
const char *cs_action_text(const char *action);
const char *cs_kind_text(const char *kind);
char *cs_actions_text(const char *const *next);

/* cs-assistant-util.c */
const char *cs_error_name(const GError *error);
char *cs_error_text(const GError *error);
char *cs_key_holder(CsKey *key);
const char *cs_vendor_name(CsAssistant *a, const char *vendor_id);
char *cs_format_date(guint64 seconds);
GtkWidget *cs_label_new(const char *text, const char *css_class);

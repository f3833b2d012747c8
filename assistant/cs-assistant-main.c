/*
 * cs-assistant-main.c — certseal-assistant's entry point: the language (Chinese unless the
 * environment names English), the bus, the application.
 *
 * "Chinese by default": zh_CN strings unless LANGUAGE/LC_ALL/LC_MESSAGES/LANG name English,
 * the other language the assistant has (its source strings). Under LANG=C it is Chinese
 * too; gettext ignores LANGUAGE in the C locale, so the C.UTF-8 locale is taken then.
 */
#include <locale.h>
#include <string.h>

#include "cs-assistant-config.h"
#include "cs-assistant.h"
#include "cs-build-config.h"

static gboolean opt_session;
static gboolean opt_system;
static char *opt_state_dir;

static const GOptionEntry options[] = {
    {"session", 0, 0, G_OPTION_ARG_NONE, &opt_session,
     N_("Talk to the certificate service on the session bus"), NULL},
    {"system", 0, 0, G_OPTION_ARG_NONE, &opt_system,
     N_("Talk to the certificate service on the system bus (the default)"), NULL},
    {"state-dir", 0, 0, G_OPTION_ARG_FILENAME, &opt_state_dir,
     N_("The certificate service's state directory, whose CA certificates verify seals"),
     N_("DIR")},
    {NULL},
};

/* TRUE when the environment asks for English before any language the assistant has. */
static gboolean
wants_english(void)
{
	const char *const *names = g_get_language_names();

	for (guint i = 0; names[i] != NULL; i++) {
		if (g_str_has_prefix(names[i], "en"))
			return TRUE;
		if (g_str_has_prefix(names[i], "zh"))
			return FALSE;
	}
	return FALSE;
}

static gboolean
setup_language(void)
{
	gboolean english = wants_english();
	const char *current = setlocale(LC_ALL, "");
	const char *dir = g_getenv("CERTSEAL_LOCALEDIR");

	if (current == NULL || strcmp(current, "C") == 0 || strcmp(current, "POSIX") == 0) {
		if (english || setlocale(LC_ALL, "zh_CN.UTF-8") == NULL)
			setlocale(LC_ALL, "C.UTF-8");
	}
	/* Only the language chosen above; nothing else in LANGUAGE may override it. */
	g_setenv("LANGUAGE", english ? "en" : "zh_CN", TRUE);
	bindtextdomain(GETTEXT_PACKAGE, dir != NULL && *dir != '\0' ? dir : CS_LOCALEDIR);
	bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
	textdomain(GETTEXT_PACKAGE);
	return !english;
}

static void
on_activate(GApplication *app, gpointer user_data)
{
	CsAssistant *a = user_data;

	if (a->window == NULL)
		cs_assistant_window_build(a);
	gtk_window_present(a->window);
}

static void
on_startup(GApplication *app, gpointer user_data)
{
	CsAssistant *a = user_data;
	g_autoptr(GError) error = NULL;

	a->bus_type = opt_session ? G_BUS_TYPE_SESSION : G_BUS_TYPE_SYSTEM;
	a->state_dir = g_strdup(opt_state_dir != NULL ? opt_state_dir : CS_STATE_DIR);
	a->manager = cs_manager_proxy_new_for_bus_sync(a->bus_type, G_DBUS_PROXY_FLAGS_NONE,
						       CS_BUS_NAME, CS_MANAGER_PATH, NULL, &error);
	if (a->manager == NULL) {
		g_warning("cannot reach the certificate service: %s", error->message);
		g_clear_error(&error);
		return;
	}
	a->objects = cs_object_manager_client_new_for_bus_sync(
	    a->bus_type, G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_NONE, CS_BUS_NAME, CS_MANAGER_PATH,
	    NULL, &error);
	if (a->objects == NULL)
		g_warning("cannot list the keys: %s", error->message);
}

int
main(int argc, char **argv)
{
	CsAssistant a = {0};
	int status;

	a.chinese = setup_language();
	/* GTK would set the locale from the environment again, undoing the choice above. */
	gtk_disable_setlocale();
	a.app = adw_application_new(CS_ASSISTANT_ID, G_APPLICATION_NON_UNIQUE);
	g_application_add_main_option_entries(G_APPLICATION(a.app), options);
	g_application_set_option_context_summary(G_APPLICATION(a.app),
						 _("The certificate assistant (证书助手)"));
	g_signal_connect(a.app, "startup", G_CALLBACK(on_startup), &a);
	g_signal_connect(a.app, "activate", G_CALLBACK(on_activate), &a);
	g_set_application_name(_("Certificate Assistant"));
	status = g_application_run(G_APPLICATION(a.app), argc, argv);

	g_clear_object(&a.objects);
	g_clear_object(&a.manager);
	g_clear_pointer(&a.rows, g_hash_table_unref);
	g_clear_pointer(&a.flow_buttons, g_ptr_array_unref);
	g_free(a.state_dir);
	g_free(opt_state_dir);
	g_object_unref(a.app);
	return status;
}

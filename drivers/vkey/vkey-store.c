/*
 * vkey-store.c — reading and writing the virtual UKey store (layout in vkey-store.h).
 *
 * Invariant: each file has one writer (token.conf and plugged: the tool; pin: the module;
 * fault: the tool creates, the module deletes), and every write replaces the file
 * atomically (g_file_set_contents), so a reader never sees half a file.
 */
#define G_LOG_DOMAIN "vkey"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdio.h>

#include "vkey-store.h"

void
vkey_token_conf_free(VkeyTokenConf *conf)
{
	if (conf == NULL)
		return;
	g_free(conf->dir);
	g_free(conf->serial);
	g_free(conf->vendor);
	g_free(conf->manufacturer);
	g_free(conf->model);
	g_free(conf);
}

VkeyTokenConf *
vkey_token_conf_load(const char *dir, GError **error)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autofree char *path = g_build_filename(dir, "token.conf", NULL);
	g_autoptr(VkeyTokenConf) conf = g_new0(VkeyTokenConf, 1);

	if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, error))
		return NULL;
	conf->dir = g_strdup(dir);
	conf->serial = g_key_file_get_string(kf, "token", "serial", error);
	if (conf->serial == NULL)
		return NULL;
	conf->vendor = g_key_file_get_string(kf, "token", "vendor", NULL);
	conf->manufacturer = g_key_file_get_string(kf, "token", "manufacturer", NULL);
	conf->model = g_key_file_get_string(kf, "token", "model", NULL);
	conf->max_tries = (guint)g_key_file_get_integer(kf, "token", "max_tries", NULL);
	if (conf->max_tries == 0)
		conf->max_tries = 6;
	conf->so_max_tries = (guint)g_key_file_get_integer(kf, "token", "so_max_tries", NULL);
	if (conf->so_max_tries == 0)
		conf->so_max_tries = 10;
	conf->min_pin_length = (guint)g_key_file_get_integer(kf, "token", "min_pin_length", NULL);
	if (conf->min_pin_length == 0)
		conf->min_pin_length = 6;
	conf->max_pin_length = (guint)g_key_file_get_integer(kf, "token", "max_pin_length", NULL);
	if (conf->max_pin_length < conf->min_pin_length)
		conf->max_pin_length = MAX(16, conf->min_pin_length);
	conf->slot = (guint)g_key_file_get_integer(kf, "token", "slot", NULL);
	return g_steal_pointer(&conf);
}

gboolean
vkey_token_conf_save(const VkeyTokenConf *conf, GError **error)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autofree char *path = g_build_filename(conf->dir, "token.conf", NULL);

	g_key_file_set_string(kf, "token", "serial", conf->serial);
	g_key_file_set_string(kf, "token", "vendor", conf->vendor != NULL ? conf->vendor : "");
	g_key_file_set_string(kf, "token", "manufacturer",
			      conf->manufacturer != NULL ? conf->manufacturer : "");
	g_key_file_set_string(kf, "token", "model", conf->model != NULL ? conf->model : "");
	g_key_file_set_integer(kf, "token", "max_tries", (gint)conf->max_tries);
	g_key_file_set_integer(kf, "token", "so_max_tries", (gint)conf->so_max_tries);
	g_key_file_set_integer(kf, "token", "min_pin_length", (gint)conf->min_pin_length);
	g_key_file_set_integer(kf, "token", "max_pin_length", (gint)conf->max_pin_length);
	g_key_file_set_integer(kf, "token", "slot", (gint)conf->slot);
	return g_key_file_save_to_file(kf, path, error);
}

static gint
compare_slot(gconstpointer a, gconstpointer b)
{
	const VkeyTokenConf *x = *(VkeyTokenConf *const *)a;
	const VkeyTokenConf *y = *(VkeyTokenConf *const *)b;

	return (x->slot > y->slot) - (x->slot < y->slot);
}

GPtrArray *
vkey_store_list(const char *root)
{
	GPtrArray *list = g_ptr_array_new_with_free_func((GDestroyNotify)vkey_token_conf_free);
	g_autoptr(GDir) d = g_dir_open(root, 0, NULL);
	const char *name;

	if (d == NULL)
		return list;
	while ((name = g_dir_read_name(d)) != NULL) {
		g_autofree char *dir = g_build_filename(root, name, NULL);
		VkeyTokenConf *conf = vkey_token_conf_load(dir, NULL);
		if (conf != NULL)
			g_ptr_array_add(list, conf);
	}
	g_ptr_array_sort(list, compare_slot);
	return list;
}

gboolean
vkey_is_plugged(const char *dir)
{
	g_autofree char *path = g_build_filename(dir, "plugged", NULL);

	return g_file_test(path, G_FILE_TEST_EXISTS);
}

gboolean
vkey_plug(const char *dir, GError **error)
{
	g_autofree char *path = g_build_filename(dir, "plugged", NULL);
	g_autofree char *nonce =
	    g_strdup_printf("%" G_GINT64_FORMAT " %u\n", g_get_real_time(), g_random_int());

	return g_file_set_contents(path, nonce, -1, error);
}

gboolean
vkey_unplug(const char *dir, GError **error)
{
	g_autofree char *path = g_build_filename(dir, "plugged", NULL);

	if (g_unlink(path) != 0 && errno != ENOENT) {
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", path,
			    g_strerror(errno));
		return FALSE;
	}
	return TRUE;
}

/*
 * vkey-store.h — the on-disk store of virtual UKeys, shared by the vkey PKCS#11 module
 * (drivers/vkey/vkey.c) and the certseal-vkey tool.
 *
 * Layout of one token, <root>/<serial>/:
 *   token.conf      [token] serial, vendor, manufacturer, model, max_tries, so_max_tries,
 *                   min_pin_length, max_pin_length, slot (written once by
 *                   `certseal-vkey create`, from the vendor profile's [pin] group)
 *   softhsm2.conf   the configuration of this token's own SoftHSM2 instance
 *   libsofthsm2.so  a private copy of SoftHSM2 (see vkey.c for why)
 *   tokens/         SoftHSM2's token directory
 *   plugged         present while the key is "inserted"; rewritten on every plug so the
 *                   module can tell a re-plug from no change (it compares inode + mtime)
 *   pin             "<tries left>" — the module's user PIN counter, written by the module only
 *   so_pin          "<tries left>" — the same for the SO PIN
 *   fault           "<FUNCTION> <N> <fail|hang|unplug> <timeout_ms>": the Nth call of
 *                   FUNCTION on this token misbehaves once (written by the tool; the module
 *                   deletes it when it fires)
 *
 * <root> is "<daemon state dir>/drivers/vkey": `certseal-vkey --state-dir DIR` and a vendor
 * profile's `init_args = dir=${state_dir}/../vkey` name the same place.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
	char *dir;
	char *serial;
	char *vendor;
	char *manufacturer;
	char *model;
	guint max_tries;      /* user PIN tries, default 6 */
	guint so_max_tries;   /* SO PIN tries, default 10 */
	guint min_pin_length; /* reported in ulMinPinLen, enforced on C_InitPIN/C_SetPIN */
	guint max_pin_length;
	guint slot;
} VkeyTokenConf;

void vkey_token_conf_free(VkeyTokenConf *conf);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VkeyTokenConf, vkey_token_conf_free)

/* Read <dir>/token.conf. */
VkeyTokenConf *vkey_token_conf_load(const char *dir, GError **error);
gboolean vkey_token_conf_save(const VkeyTokenConf *conf, GError **error);
/* Every token of @root, sorted by slot. */
GPtrArray *vkey_store_list(const char *root);

gboolean vkey_is_plugged(const char *dir);
gboolean vkey_plug(const char *dir, GError **error);
gboolean vkey_unplug(const char *dir, GError **error);

G_END_DECLS

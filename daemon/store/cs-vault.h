/*
 * cs-vault.h — the secrets vault (docs/architecture.md §3.5, §6).
 *
 * A 32-byte random key in <state_dir>/vault.key (mode 0600, created on first use, never
 * rewritten). Sealing is AES-256-GCM with a fresh 12-byte random nonce; the sealed form
 * is nonce ‖ ciphertext ‖ 16-byte tag, and the caller's associated data binds it to its
 * row (e.g. "secret:42:so_pin"). Keys for keyed hashes (SMS and authorization codes) are
 * derived from the vault key with HKDF-SHA256 and a label, so the vault key itself never
 * leaves this file.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _CsVault CsVault;

#define CS_VAULT_KEY_SIZE 32
#define CS_VAULT_NONCE_SIZE 12
#define CS_VAULT_TAG_SIZE 16

/* Load <state_dir>/vault.key, creating it (0600) when absent. Refuses a key file of the
 * wrong size or readable by group/others, and a key that does not match the key check
 * value in <state_dir>/vault.check (naming the key file); writes the check value when it
 * is absent (a new key, or a state directory from before check values). */
CsVault *cs_vault_open(const char *state_dir, GError **error);
void cs_vault_free(CsVault *vault);
/* TRUE when this open wrote the check value for a key that existed before it (a state
 * directory from before check values): the key is not proven yet, so the caller opens a
 * sealed secret with it, and on failure calls cs_vault_forget_check_value(), which removes
 * the check value just written so that the right key can be restored and checked. */
gboolean cs_vault_check_value_is_new(CsVault *vault);
/* <state_dir>/vault.key, for messages. */
const char *cs_vault_get_key_path(CsVault *vault);
void cs_vault_forget_check_value(CsVault *vault);
/* An independent copy (for a worker thread that may outlive the original). */
CsVault *cs_vault_copy(CsVault *vault);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsVault, cs_vault_free)

/* nonce ‖ ciphertext ‖ tag */
GBytes *
cs_vault_seal(CsVault *vault, const char *aad, const guint8 *plaintext, gsize len, GError **error);
/* The plaintext; fails (CS_ERROR_INTERNAL, "sealed secret failed authentication") when
 * the sealed bytes or the associated data were altered. Free with cs_vault_bytes_free(). */
GBytes *cs_vault_unseal(CsVault *vault, const char *aad, GBytes *sealed, GError **error);

/* Release plaintext returned by cs_vault_unseal(): its bytes are wiped when the last
 * reference goes (a g_bytes_unref() does the same; this name says why it matters). */
void cs_vault_bytes_free(GBytes *bytes);

/* Derive a 32-byte key for @label (HKDF-SHA256 over the vault key). */
void cs_vault_derive_key(CsVault *vault, const char *label, guint8 out[CS_VAULT_KEY_SIZE]);

/* HMAC-SHA256 of @data under the key derived for @label, as lowercase hex. */
char *cs_vault_keyed_hash(CsVault *vault, const char *label, const char *data);
/* HMAC-SHA256 of @data under @key (from cs_vault_derive_key(), for callers that key many
 * values with one label), as lowercase hex. */
char *cs_vault_hmac_hex(const guint8 key[CS_VAULT_KEY_SIZE], const char *data);

G_END_DECLS

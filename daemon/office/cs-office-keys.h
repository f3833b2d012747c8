/*
 * cs-office-keys.h — CURVE key files and endpoint names of the office bus, shared by
 * certseald and certseal-office.
 *
 * A key file is a GKeyFile, mode 0600:
 *   [worker]
 *   public = <40 characters of Z85>
 *   secret = <40 characters of Z85>
 * The daemon keeps its own (server.key) and the admin worker's (admin.key) in
 * <state_dir>/office/, with info.json: {endpoint, events_endpoint, server_public_key}.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CS_OFFICE_Z85_KEY_LEN 40

/* A new CURVE key pair as Z85 strings (41 bytes with the NUL). */
gboolean cs_office_keys_generate(char public_key[41], char secret_key[41], GError **error);
/* Write a key file (mode 0600, replacing atomically). */
gboolean cs_office_key_file_write(const char *path,
				  const char *public_key,
				  const char *secret_key,
				  GError **error);
/* Read a key file; @secret_key may be NULL when only the public key is wanted. Refuses
 * a file holding a secret that group or others can read. */
gboolean
cs_office_key_file_read(const char *path, char public_key[41], char secret_key[41], GError **error);
/* Is @key 40 characters of Z85 that decode to 32 bytes? */
gboolean cs_office_key_is_valid(const char *key);

/* ipc://@certseal-<16 hex of SHA-256(state_dir)>: abstract, so short whatever the path. */
char *cs_office_default_endpoint(const char *state_dir);
/* The events endpoint that goes with @endpoint: "<ipc endpoint>-events", or the next port
 * for tcp://HOST:PORT. NULL when it cannot be derived. */
char *cs_office_default_events_endpoint(const char *endpoint);
/* Is @endpoint tcp:// on an address other than loopback (127.0.0.0/8, ::1, localhost)? */
gboolean cs_office_endpoint_is_public(const char *endpoint);

G_END_DECLS

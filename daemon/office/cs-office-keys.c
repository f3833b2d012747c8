/*
 * cs-office-keys.c — CURVE key files and endpoint names (see cs-office-keys.h).
 *
 * Invariants: secret keys are written only with mode 0600 (created that way, never
 * chmod-ed after the bytes are on disk) and are never logged.
 */
#define G_LOG_DOMAIN "certseal-office"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "cs-office-keys.h"

gboolean
cs_office_keys_generate(char public_key[41], char secret_key[41], GError **error)
{
	if (zmq_curve_keypair(public_key, secret_key) != 0) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
			    "cannot make a CURVE key pair: %s", zmq_strerror(zmq_errno()));
		return FALSE;
	}
	return TRUE;
}

gboolean
cs_office_key_is_valid(const char *key)
{
	guint8 raw[32];

	return key != NULL && strlen(key) == CS_OFFICE_Z85_KEY_LEN &&
	       zmq_z85_decode(raw, key) != NULL;
}

gboolean
cs_office_key_file_write(const char *path,
			 const char *public_key,
			 const char *secret_key,
			 GError **error)
{
	g_autofree char *tmp = g_strdup_printf("%s.tmp", path);
	g_autofree char *text =
	    g_strdup_printf("[worker]\npublic = %s\nsecret = %s\n", public_key, secret_key);
	gsize len = strlen(text);
	int fd;

	(void)g_unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", tmp,
			    g_strerror(errno));
		return FALSE;
	}
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
		int e = errno;
		close(fd);
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "%s: %s", tmp,
			    g_strerror(e));
		return FALSE;
	}
	memset(text, 0, len);
	close(fd);
	if (g_rename(tmp, path) != 0) {
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", path,
			    g_strerror(errno));
		return FALSE;
	}
	return TRUE;
}

static gboolean
read_key(GKeyFile *kf, const char *path, const char *name, char out[41], GError **error)
{
	g_autofree char *v = g_key_file_get_string(kf, "worker", name, NULL);

	if (v != NULL)
		g_strstrip(v);
	if (!cs_office_key_is_valid(v)) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
			    "%s: [worker] %s: missing or not a Z85 CURVE key", path, name);
		return FALSE;
	}
	memcpy(out, v, 41);
	memset(v, 0, strlen(v));
	return TRUE;
}

gboolean
cs_office_key_file_read(const char *path, char public_key[41], char secret_key[41], GError **error)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	GStatBuf st;

	if (secret_key != NULL) {
		if (g_stat(path, &st) != 0) {
			g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s",
				    path, g_strerror(errno));
			return FALSE;
		}
		if ((st.st_mode & 077) != 0) {
			g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_PERM,
				    "%s: holds a secret key but is readable by others (chmod 600)",
				    path);
			return FALSE;
		}
	}
	if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, error)) {
		g_prefix_error(error, "%s: ", path);
		return FALSE;
	}
	if (!read_key(kf, path, "public", public_key, error))
		return FALSE;
	return secret_key == NULL || read_key(kf, path, "secret", secret_key, error);
}

char *
cs_office_default_endpoint(const char *state_dir)
{
	g_autofree char *canon = g_canonicalize_filename(state_dir, NULL);
	g_autofree char *hash = g_compute_checksum_for_string(G_CHECKSUM_SHA256, canon, -1);

	hash[16] = '\0';
	return g_strdup_printf("ipc://@certseal-%s", hash);
}

/* The host and port of tcp://HOST:PORT ([v6]:PORT too); FALSE for anything else. */
static gboolean
split_tcp(const char *endpoint, char **host, guint64 *port)
{
	const char *rest, *colon;

	if (!g_str_has_prefix(endpoint, "tcp://"))
		return FALSE;
	rest = endpoint + strlen("tcp://");
	colon = strrchr(rest, ':');
	if (colon == NULL || !g_ascii_string_to_unsigned(colon + 1, 10, 0, 65535, port, NULL))
		return FALSE;
	*host = g_strndup(rest, (gsize)(colon - rest));
	return TRUE;
}

char *
cs_office_default_events_endpoint(const char *endpoint)
{
	g_autofree char *host = NULL;
	guint64 port = 0;

	if (g_str_has_prefix(endpoint, "ipc://"))
		return g_strdup_printf("%s-events", endpoint);
	if (split_tcp(endpoint, &host, &port) && port > 0 && port < 65535)
		return g_strdup_printf("tcp://%s:%" G_GUINT64_FORMAT, host, port + 1);
	return NULL;
}

gboolean
cs_office_endpoint_is_public(const char *endpoint)
{
	g_autofree char *host = NULL;
	guint64 port = 0;

	if (!g_str_has_prefix(endpoint, "tcp://"))
		return FALSE;
	if (!split_tcp(endpoint, &host, &port))
		return TRUE; /* unparsable: assume the worst */
	return !(g_str_has_prefix(host, "127.") || g_strcmp0(host, "localhost") == 0 ||
		 g_strcmp0(host, "[::1]") == 0 || g_strcmp0(host, "::1") == 0);
}

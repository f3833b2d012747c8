/*
 * cs-vault.c — the secrets vault: one key file, AES-256-GCM sealing, derived keys for
 * keyed hashes (docs/architecture.md §3.5, §6).
 *
 * Invariants:
 *   - The key file <state_dir>/vault.key holds exactly CS_VAULT_KEY_SIZE random bytes,
 *     is a regular file owned by the daemon's user with no group or other permission bits,
 *     and is never rewritten: a file that breaks any of these is refused, not repaired,
 *     because replacing a vault key silently makes every sealed secret unreadable.
 *   - It is created complete or not at all: the key is written and fsynced in a private
 *     temporary file (O_CREAT|O_EXCL, 0600) and published with link(), which fails rather
 *     than replace a key another process created meanwhile.
 *   - Key material lives only in the CsVault, in buffers wiped with OPENSSL_cleanse when
 *     released (the vault key, derived keys, unsealed plaintext).
 *   - <state_dir>/vault.check holds a key check value (an HMAC under a key derived from the
 *     vault key for that purpose only). A key that does not match it is refused: 32 other
 *     bytes would otherwise be accepted and every sealed secret would silently fail to open.
 *     A state directory from before the check value gets one written on its first start.
 *   - A sealed blob is nonce ‖ ciphertext ‖ tag with a fresh random nonce each time; the
 *     associated data is authenticated, so a blob moved to another row fails to open.
 */
#define G_LOG_DOMAIN "certseald"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "certseal/plugin.h"
#include "cs-vault.h"

#define CS_VAULT_KEY_FILE "vault.key"
/* The key check value: an HMAC under a key derived for its own label, never the key. */
#define CS_VAULT_CHECK_FILE "vault.check"
#define CS_VAULT_CHECK_LABEL "vault key check"
#define CS_VAULT_CHECK_PREFIX "certseal vault check v1 "
/* Fixed HKDF salt: domain separation from any other use of the same key bytes. */
#define CS_VAULT_HKDF_SALT "certseal vault hkdf v1"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_CIPHER_CTX, EVP_CIPHER_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_KDF, EVP_KDF_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_KDF_CTX, EVP_KDF_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_MAC, EVP_MAC_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_MAC_CTX, EVP_MAC_CTX_free)

struct _CsVault {
	guint8 key[CS_VAULT_KEY_SIZE];
	/* The check value was first written by this open, for a key that existed before
	 * (a state directory from before check values): still to be proven by a secret. */
	char *new_check_path;
	char *key_path;
};

/* A buffer whose bytes are wiped before they are freed; carries its own length so that
 * it can serve as the user data of g_bytes_new_with_free_func(). */
typedef struct {
	gsize len;
	guint8 data[];
} CsSecureBuf;

static void
secure_buf_free(gpointer data)
{
	CsSecureBuf *buf = data;

	OPENSSL_cleanse(buf, sizeof(*buf) + buf->len);
	g_free(buf);
}

static CsSecureBuf *
secure_buf_new(gsize len)
{
	CsSecureBuf *buf = g_malloc0(sizeof(*buf) + len);

	buf->len = len;
	return buf;
}

void
cs_vault_bytes_free(GBytes *bytes)
{
	/* The wipe happens in secure_buf_free when the last reference goes. */
	if (bytes != NULL)
		g_bytes_unref(bytes);
}

/* Lowercase hex of @data, a new string. */
static char *
hex_string(const guint8 *data, gsize len)
{
	static const char hex[] = "0123456789abcdef";
	char *s = g_malloc(len * 2 + 1);

	for (gsize i = 0; i < len; i++) {
		s[2 * i] = hex[data[i] >> 4];
		s[2 * i + 1] = hex[data[i] & 0xf];
	}
	s[len * 2] = '\0';
	return s;
}

static gboolean
set_openssl_error(GError **error, const char *what)
{
	g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "vault: %s failed", what);
	return FALSE;
}

static gboolean
read_all(int fd, guint8 *buf, gsize len, gsize *n_read)
{
	*n_read = 0;
	while (*n_read < len) {
		ssize_t n = read(fd, buf + *n_read, len - *n_read);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return FALSE;
		if (n == 0)
			break;
		*n_read += (gsize)n;
	}
	return TRUE;
}

static gboolean
write_all(int fd, const guint8 *buf, gsize len)
{
	gsize done = 0;

	while (done < len) {
		ssize_t n = write(fd, buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return FALSE;
		done += (gsize)n;
	}
	return TRUE;
}

static void
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return;
	/* Best effort: the key is already durable in its file; this makes the name so. */
	(void)fsync(fd);
	close(fd);
}

/* Write a fresh key to a private temporary file and publish it under @path. Succeeds too
 * when another process published one first (the caller then reads that one). */
static gboolean
create_key_file(const char *state_dir, const char *path, GError **error)
{
	g_autofree char *tmp = g_build_filename(state_dir, CS_VAULT_KEY_FILE ".new-XXXXXX", NULL);
	guint8 key[CS_VAULT_KEY_SIZE];
	gboolean ok;
	int saved_errno;
	int fd;

	/* g_mkstemp_full opens with O_CREAT|O_EXCL and the mode given. */
	fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		saved_errno = errno;
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: cannot create: %s", path,
			    g_strerror(saved_errno));
		return FALSE;
	}
	if (RAND_priv_bytes(key, sizeof(key)) != 1) {
		close(fd);
		g_unlink(tmp);
		return set_openssl_error(error, "generating the vault key");
	}
	/* umask can only clear bits; fchmod makes the mode exactly 0600 whatever it was. */
	ok = fchmod(fd, 0600) == 0 && write_all(fd, key, sizeof(key)) && fsync(fd) == 0;
	saved_errno = errno;
	OPENSSL_cleanse(key, sizeof(key));
	if (close(fd) != 0 && ok) {
		ok = FALSE;
		saved_errno = errno;
	}
	if (!ok) {
		g_unlink(tmp);
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: cannot write: %s", path,
			    g_strerror(saved_errno));
		return FALSE;
	}
	if (link(tmp, path) != 0 && errno != EEXIST) {
		saved_errno = errno;
		g_unlink(tmp);
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: cannot create: %s", path,
			    g_strerror(saved_errno));
		return FALSE;
	}
	g_unlink(tmp);
	fsync_dir(state_dir);
	return TRUE;
}

static gboolean
load_key_file(CsVault *vault, const char *path, GError **error)
{
	struct stat st;
	gsize n_read = 0;
	gboolean ok;
	int saved_errno;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		saved_errno = errno;
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: cannot open: %s", path,
			    g_strerror(saved_errno));
		return FALSE;
	}
	if (fstat(fd, &st) != 0) {
		saved_errno = errno;
		close(fd);
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: cannot stat: %s", path,
			    g_strerror(saved_errno));
		return FALSE;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: not a regular file", path);
		return FALSE;
	}
	if (st.st_uid != geteuid()) {
		close(fd);
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL,
			    "%s: owned by uid %u, not by the daemon's uid %u", path,
			    (guint)st.st_uid, (guint)geteuid());
		return FALSE;
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		close(fd);
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL,
			    "%s: group or others have access (mode %04o); it must be 0600", path,
			    (guint)(st.st_mode & 07777));
		return FALSE;
	}
	if (st.st_size != CS_VAULT_KEY_SIZE) {
		close(fd);
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL,
			    "%s: wrong size (%" G_GINT64_FORMAT " bytes, expected %d)", path,
			    (gint64)st.st_size, CS_VAULT_KEY_SIZE);
		return FALSE;
	}
	ok = read_all(fd, vault->key, sizeof(vault->key), &n_read);
	saved_errno = errno;
	close(fd);
	if (!ok || n_read != sizeof(vault->key)) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: cannot read: %s", path,
			    ok ? "short read" : g_strerror(saved_errno));
		return FALSE;
	}
	return TRUE;
}

static char *
check_value_line(CsVault *vault)
{
	g_autofree char *mac = cs_vault_keyed_hash(vault, CS_VAULT_CHECK_LABEL, "certseal");

	return g_strconcat(CS_VAULT_CHECK_PREFIX, mac, "\n", NULL);
}

/* Write the check value through a private temporary file renamed into place. */
static gboolean
write_check_file(CsVault *vault, const char *check_path, GError **error)
{
	g_autofree char *line = check_value_line(vault);
	g_autoptr(GError) local_error = NULL;

	if (!g_file_set_contents_full(check_path, line, -1,
				      G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
				      0600, &local_error)) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: cannot write: %s", check_path,
			    local_error->message);
		return FALSE;
	}
	return TRUE;
}

/* The key must match the check value written with it; a state directory without one
 * (from before it existed) gets one now. */
static gboolean
check_key(CsVault *vault,
	  const char *state_dir,
	  const char *key_path,
	  gboolean key_created,
	  GError **error)
{
	g_autofree char *check_path = g_build_filename(state_dir, CS_VAULT_CHECK_FILE, NULL);
	g_autofree char *expected = check_value_line(vault);
	g_autofree char *stored = NULL;
	g_autoptr(GError) local_error = NULL;
	gsize len = 0;

	if (!g_file_get_contents(check_path, &stored, &len, &local_error)) {
		if (!g_error_matches(local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
			g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL, "%s: cannot read: %s",
				    check_path, local_error->message);
			return FALSE;
		}
		if (!write_check_file(vault, check_path, error))
			return FALSE;
		g_message("wrote the vault key check value %s", check_path);
		if (!key_created)
			vault->new_check_path = g_steal_pointer(&check_path);
		return TRUE;
	}
	if (!g_str_has_prefix(stored, CS_VAULT_CHECK_PREFIX) || strlen(stored) != len) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL,
			    "%s: not a vault key check value; restore it from a backup",
			    check_path);
		return FALSE;
	}
	if (CRYPTO_memcmp(stored, expected, MIN(len, strlen(expected))) != 0 ||
	    len != strlen(expected)) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL,
			    "%s: not the key this state directory's secrets were sealed with (it "
			    "does not match the check value in %s); restore the right key from a "
			    "backup",
			    key_path, check_path);
		return FALSE;
	}
	return TRUE;
}

CsVault *
cs_vault_open(const char *state_dir, GError **error)
{
	g_autofree char *path = g_build_filename(state_dir, CS_VAULT_KEY_FILE, NULL);
	g_autoptr(CsVault) vault = g_new0(CsVault, 1);
	gboolean created = FALSE;

	if (!g_file_test(path, G_FILE_TEST_EXISTS) && !g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
		if (!create_key_file(state_dir, path, error))
			return NULL;
		g_info("created vault key %s", path);
		created = TRUE;
	}
	if (!load_key_file(vault, path, error) ||
	    !check_key(vault, state_dir, path, created, error))
		return NULL;
	vault->key_path = g_strdup(path);
	return g_steal_pointer(&vault);
}

void
cs_vault_free(CsVault *vault)
{
	if (vault == NULL)
		return;
	OPENSSL_cleanse(vault->key, sizeof(vault->key));
	g_free(vault->new_check_path);
	g_free(vault->key_path);
	g_free(vault);
}

const char *
cs_vault_get_key_path(CsVault *vault)
{
	return vault->key_path != NULL ? vault->key_path : CS_VAULT_KEY_FILE;
}

gboolean
cs_vault_check_value_is_new(CsVault *vault)
{
	return vault->new_check_path != NULL;
}

void
cs_vault_forget_check_value(CsVault *vault)
{
	if (vault->new_check_path == NULL)
		return;
	if (g_unlink(vault->new_check_path) != 0)
		g_warning("%s: cannot remove: %s", vault->new_check_path, g_strerror(errno));
	g_clear_pointer(&vault->new_check_path, g_free);
}

CsVault *
cs_vault_copy(CsVault *vault)
{
	CsVault *copy = g_new0(CsVault, 1);

	memcpy(copy->key, vault->key, sizeof(copy->key));
	return copy;
}

GBytes *
cs_vault_seal(CsVault *vault, const char *aad, const guint8 *plaintext, gsize len, GError **error)
{
	g_autoptr(EVP_CIPHER_CTX) ctx = EVP_CIPHER_CTX_new();
	gsize aad_len = aad != NULL ? strlen(aad) : 0;
	gsize total = CS_VAULT_NONCE_SIZE + len + CS_VAULT_TAG_SIZE;
	g_autofree guint8 *out = NULL;
	guint8 *nonce;
	guint8 *ct;
	int n = 0;
	int n_final = 0;

	g_return_val_if_fail(vault != NULL, NULL);
	g_return_val_if_fail(plaintext != NULL || len == 0, NULL);

	if (len > G_MAXINT - 64 || aad_len > G_MAXINT) {
		g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "vault: secret too large");
		return NULL;
	}
	out = g_malloc(total);
	nonce = out;
	ct = out + CS_VAULT_NONCE_SIZE;
	if (ctx == NULL || RAND_bytes(nonce, CS_VAULT_NONCE_SIZE) != 1) {
		set_openssl_error(error, "preparing to seal");
		return NULL;
	}
	if (EVP_EncryptInit_ex2(ctx, EVP_aes_256_gcm(), vault->key, nonce, NULL) != 1 ||
	    (aad_len > 0 &&
	     EVP_EncryptUpdate(ctx, NULL, &n, (const guint8 *)aad, (int)aad_len) != 1) ||
	    EVP_EncryptUpdate(ctx, ct, &n, plaintext, (int)len) != 1 ||
	    EVP_EncryptFinal_ex(ctx, ct + n, &n_final) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CS_VAULT_TAG_SIZE, ct + len) != 1) {
		set_openssl_error(error, "sealing");
		return NULL;
	}
	return g_bytes_new_take(g_steal_pointer(&out), total);
}

GBytes *
cs_vault_unseal(CsVault *vault, const char *aad, GBytes *sealed, GError **error)
{
	g_autoptr(EVP_CIPHER_CTX) ctx = EVP_CIPHER_CTX_new();
	gsize aad_len = aad != NULL ? strlen(aad) : 0;
	gsize sealed_len = 0;
	const guint8 *data;
	CsSecureBuf *buf;
	gsize len;
	int n = 0;
	int n_final = 0;

	g_return_val_if_fail(vault != NULL, NULL);
	g_return_val_if_fail(sealed != NULL, NULL);

	data = g_bytes_get_data(sealed, &sealed_len);
	if (sealed_len < CS_VAULT_NONCE_SIZE + CS_VAULT_TAG_SIZE || sealed_len > G_MAXINT ||
	    aad_len > G_MAXINT) {
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL,
			    "sealed secret failed authentication");
		return NULL;
	}
	if (ctx == NULL) {
		set_openssl_error(error, "preparing to unseal");
		return NULL;
	}
	len = sealed_len - CS_VAULT_NONCE_SIZE - CS_VAULT_TAG_SIZE;
	buf = secure_buf_new(len);
	/* The tag ctrl takes a non-const pointer but only reads it. */
	if (EVP_DecryptInit_ex2(ctx, EVP_aes_256_gcm(), vault->key, data, NULL) != 1 ||
	    (aad_len > 0 &&
	     EVP_DecryptUpdate(ctx, NULL, &n, (const guint8 *)aad, (int)aad_len) != 1) ||
	    EVP_DecryptUpdate(ctx, buf->data, &n, data + CS_VAULT_NONCE_SIZE, (int)len) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CS_VAULT_TAG_SIZE,
				(void *)(data + CS_VAULT_NONCE_SIZE + len)) != 1 ||
	    EVP_DecryptFinal_ex(ctx, buf->data + n, &n_final) != 1) {
		secure_buf_free(buf);
		g_set_error(error, CS_ERROR, CS_ERROR_INTERNAL,
			    "sealed secret failed authentication");
		return NULL;
	}
	return g_bytes_new_with_free_func(buf->data, len, secure_buf_free, buf);
}

/* HKDF can only fail on allocation or a broken provider. The signature has no error, so
 * fail closed: a random key makes every keyed hash compare unequal instead of using a
 * predictable key. */
void
cs_vault_derive_key(CsVault *vault, const char *label, guint8 out[CS_VAULT_KEY_SIZE])
{
	g_autoptr(EVP_KDF) kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	g_autoptr(EVP_KDF_CTX) ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM params[5];
	char digest[] = "SHA256";
	char salt[] = CS_VAULT_HKDF_SALT;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
	params[1] =
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, vault->key, sizeof(vault->key));
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt, strlen(salt));
	params[3] =
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (char *)label, strlen(label));
	params[4] = OSSL_PARAM_construct_end();
	if (ctx == NULL || EVP_KDF_derive(ctx, out, CS_VAULT_KEY_SIZE, params) != 1) {
		g_critical("vault: HKDF failed; using a random key for '%s'", label);
		if (RAND_bytes(out, CS_VAULT_KEY_SIZE) != 1)
			memset(out, 0xff, CS_VAULT_KEY_SIZE);
	}
}

char *
cs_vault_hmac_hex(const guint8 key[CS_VAULT_KEY_SIZE], const char *data)
{
	guint8 digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;

	/* The one-shot HMAC(): no per-call fetch of the MAC implementation, which matters
	 * for the ledger keying every event and verifying every order. */
	if (HMAC(EVP_sha256(), key, CS_VAULT_KEY_SIZE, (const guint8 *)data, strlen(data), digest,
		 &digest_len) == NULL) {
		g_autofree char *random_hex = NULL;

		/* Fail closed: a random value, marked so that no stored hash can equal it. */
		g_critical("vault: HMAC failed");
		if (RAND_bytes(digest, 32) != 1)
			return g_strdup("!");
		random_hex = hex_string(digest, 32);
		return g_strconcat("!", random_hex, NULL);
	}
	return hex_string(digest, digest_len);
}

char *
cs_vault_keyed_hash(CsVault *vault, const char *label, const char *data)
{
	guint8 key[CS_VAULT_KEY_SIZE];
	char *out;

	cs_vault_derive_key(vault, label, key);
	out = cs_vault_hmac_hex(key, data);
	OPENSSL_cleanse(key, sizeof(key));
	return out;
}

/*
 * The local key in the desktop keyring (keyring.h), through libsecret's
 * synchronous "password" API.  libsecret keeps what it returns in
 * non-pageable memory and wipes it on secret_password_free().
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <libsecret/secret.h>
#include <sodium.h>

#include "client-core/keyring.h"

static const SecretSchema schema = {
	"org.sealpost.CacheKey", SECRET_SCHEMA_NONE,
	{
		{ "cache", SECRET_SCHEMA_ATTRIBUTE_STRING },
		{ NULL, 0 },
	},
	0, 0, 0, 0, 0, 0, 0, 0
};

int
sp_keyring_enabled(void)
{
	const char *bus = getenv("DBUS_SESSION_BUS_ADDRESS");

	return bus != NULL && *bus != 0 && getenv("SEALPOST_NO_KEYRING") == NULL;
}

/* The entry's name: the directory's absolute path. */
static int
entry_name(const char *dir, char out[PATH_MAX])
{
	if (realpath(dir, out) == NULL)
		return errno;
	return 0;
}

int
sp_keyring_store(const char *dir, const char *address, const uint8_t key[32])
{
	char path[PATH_MAX], label[PATH_MAX + 32], *b64;
	size_t b64len = sodium_base64_ENCODED_LEN(32,
	    sodium_base64_VARIANT_ORIGINAL);
	GError *error = NULL;
	gboolean ok;
	int rc;

	if (!sp_keyring_enabled())
		return ENOTSUP;
	if ((rc = entry_name(dir, path)) != 0)
		return rc;
	if ((b64 = sodium_malloc(b64len)) == NULL)
		return ENOMEM;
	sodium_bin2base64(b64, b64len, key, 32, sodium_base64_VARIANT_ORIGINAL);
	snprintf(label, sizeof(label), "sealpost local key for %s",
	    address ? address : path);
	ok = secret_password_store_sync(&schema, SECRET_COLLECTION_DEFAULT,
	    label, b64, NULL, &error, "cache", path, NULL);
	sodium_free(b64);
	if (!ok) {
		g_clear_error(&error);
		return EIO;
	}
	return 0;
}

int
sp_keyring_load(const char *dir, uint8_t **key_r)
{
	char path[PATH_MAX];
	gchar *b64;
	GError *error = NULL;
	uint8_t *key;
	size_t len = 0;
	int rc;

	*key_r = NULL;
	if (!sp_keyring_enabled())
		return ENOTSUP;
	if ((rc = entry_name(dir, path)) != 0)
		return rc;
	b64 = secret_password_lookup_sync(&schema, NULL, &error, "cache",
	    path, NULL);
	if (error != NULL) {
		g_clear_error(&error);
		return EIO;
	}
	if (b64 == NULL)
		return ENOENT;
	if ((key = sodium_malloc(32)) == NULL) {
		secret_password_free(b64);
		return ENOMEM;
	}
	rc = sodium_base642bin(key, 32, b64, strlen(b64), NULL, &len, NULL,
	    sodium_base64_VARIANT_ORIGINAL);
	secret_password_free(b64);
	if (rc != 0 || len != 32) {
		sodium_free(key);
		return EIO;
	}
	*key_r = key;
	return 0;
}

int
sp_keyring_delete(const char *dir)
{
	char path[PATH_MAX];
	GError *error = NULL;
	int rc;

	if (!sp_keyring_enabled())
		return ENOTSUP;
	if ((rc = entry_name(dir, path)) != 0)
		return rc;
	(void)secret_password_clear_sync(&schema, NULL, &error, "cache", path,
	    NULL);
	if (error != NULL) {
		g_clear_error(&error);
		return EIO;
	}
	return 0;
}

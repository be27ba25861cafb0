/* The gateway key pair (outbound_key.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "server/gateway/outbound_key.h"

static int
read32(const char *path, uint8_t *out)
{
	uint8_t buf[33];
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n == 32)
		memcpy(out, buf, 32);
	sodium_memzero(buf, sizeof(buf));
	return n == 32 ? 0 : EINVAL;
}

static int
write32(const char *path, const uint8_t *in, int mode)
{
	int fd, rc = 0;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    mode)) < 0)
		return errno;
	if (write(fd, in, 32) != 32 || fsync(fd) != 0)
		rc = errno ? errno : EIO;
	close(fd);
	if (rc != 0)
		unlink(path);
	return rc;
}

int
sp_ob_key_load(const char *data_dir, struct sp_ob_key *k)
{
	char kpath[4096], ppath[4096];
	uint8_t check[32];
	int rc;

	memset(k, 0, sizeof(*k));
	if ((size_t)snprintf(kpath, sizeof(kpath), "%s/gateway.key",
	    data_dir) >= sizeof(kpath) ||
	    (size_t)snprintf(ppath, sizeof(ppath), "%s/gateway.pub",
	    data_dir) >= sizeof(ppath))
		return EINVAL;
	if ((k->sk = sodium_malloc(32)) == NULL)
		return ENOMEM;
	rc = read32(kpath, k->sk);
	if (rc == ENOENT) {
		crypto_box_keypair(k->pk, k->sk);
		if ((rc = write32(kpath, k->sk, 0600)) != 0)
			goto fail;
		(void)unlink(ppath);    /* a stale public key of a lost pair */
		if ((rc = write32(ppath, k->pk, 0644)) != 0)
			goto fail;
		return 0;
	}
	if (rc != 0)
		goto fail;
	crypto_scalarmult_base(k->pk, k->sk);
	if ((rc = read32(ppath, check)) == ENOENT)
		rc = write32(ppath, k->pk, 0644);
	else if (rc == 0 && sodium_memcmp(check, k->pk, 32) != 0)
		rc = EINVAL;
	if (rc != 0)
		goto fail;
	return 0;
fail:
	sp_ob_key_free(k);
	return rc;
}

void
sp_ob_key_free(struct sp_ob_key *k)
{
	if (k->sk != NULL)
		sodium_free(k->sk);    /* wipes */
	k->sk = NULL;
}

/*
 * The bridge's local TLS certificate, made with OpenSSL on first start.
 *
 * Not a CA certificate (basicConstraints critical CA:FALSE): a mail client
 * told to trust it trusts this one server name, and a stolen key cannot
 * issue certificates for other sites (the mistake of bridges that install
 * a local CA).  No keyUsage extension, because a self-signed leaf with a
 * keyUsage lacking keyCertSign is not accepted as its own trust anchor by
 * OpenSSL's verifier.
 */
#include "bridge/imap_server.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static int
add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

static int
write_pem(const char *path, EVP_PKEY *key, X509 *x)
{
	char tmp[4200];
	FILE *f;
	int ok, fd;

	snprintf(tmp, sizeof(tmp), "%s.new", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) < 0)
		return -1;
	if ((f = fdopen(fd, "w")) == NULL) {
		close(fd);
		return -1;
	}
	ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) :
	    PEM_write_X509(f, x);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		ok = 0;
	if (fclose(f) != 0)
		ok = 0;
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

int
bridge_cert_ensure(const char *dir, char *cert_r, char *key_r, size_t cap,
    char *err, size_t errlen)
{
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	X509_NAME *name;
	int rc = -1;

	if ((size_t)snprintf(cert_r, cap, "%s/cert.pem", dir) >= cap ||
	    (size_t)snprintf(key_r, cap, "%s/key.pem", dir) >= cap) {
		snprintf(err, errlen, "%s: path too long", dir);
		return ENAMETOOLONG;
	}
	if (access(cert_r, R_OK) == 0 && access(key_r, R_OK) == 0)
		return 0;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return errno;
	}
	if ((key = EVP_EC_gen("P-256")) == NULL || (x = X509_new()) == NULL)
		goto out;
	if (!X509_set_version(x, 2) ||
	    !ASN1_INTEGER_set_int64(X509_get_serialNumber(x),
	    (int64_t)time(NULL)) ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 825L * 86400) == NULL ||
	    !X509_set_pubkey(x, key))
		goto out;
	name = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"sealpost-bridge", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
	    (const unsigned char *)"sealpost local bridge", -1, -1, 0) ||
	    !X509_set_issuer_name(x, name))
		goto out;
	if (add_ext(x, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
	    add_ext(x, NID_ext_key_usage, "serverAuth") != 0 ||
	    add_ext(x, NID_subject_alt_name,
	    "IP:127.0.0.1,IP:::1,DNS:localhost") != 0 ||
	    add_ext(x, NID_subject_key_identifier, "hash") != 0)
		goto out;
	if (!X509_sign(x, key, EVP_sha256()))
		goto out;
	if (write_pem(key_r, key, NULL) != 0 || write_pem(cert_r, NULL, x) !=
	    0)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		snprintf(err, errlen, "cannot make the TLS certificate in %s",
		    dir);
	X509_free(x);
	EVP_PKEY_free(key);
	return rc == 0 ? 0 : EIO;
}

#include <string.h>

#include "crypto/error.h"

static const char *const sp_errstr[] = {
	[SP_EINVAL - SP_ERR_FIRST] = "invalid argument",
	[SP_EFORMAT - SP_ERR_FIRST] = "malformed input",
	[SP_EVERSION - SP_ERR_FIRST] = "unsupported version or algorithm",
	[SP_ETRUNC - SP_ERR_FIRST] = "input length does not match its header",
	[SP_EAUTH - SP_ERR_FIRST] = "authentication failed (tampered data or wrong key)",
	[SP_ENOKEY - SP_ERR_FIRST] = "no recipient slot opens with this key",
	[SP_ESIG - SP_ERR_FIRST] = "bad signature",
	[SP_ELIMIT - SP_ERR_FIRST] = "input exceeds a limit",
	[SP_ENOMEM - SP_ERR_FIRST] = "out of memory",
	[SP_ECRYPTO - SP_ERR_FIRST] = "cryptographic library failure",
	[SP_EPGP - SP_ERR_FIRST] = "OpenPGP operation failed",
	[SP_EKEYREVOKED - SP_ERR_FIRST] = "OpenPGP key is revoked",
	[SP_EKEYEXPIRED - SP_ERR_FIRST] = "OpenPGP key has expired",
	[SP_ERANGE - SP_ERR_FIRST] = "byte range outside the content",
	[SP_ESERVER - SP_ERR_FIRST] = "the server refused the request",
	[SP_EWEAK - SP_ERR_FIRST] =
	    "the server asked for weaker password hashing than allowed",
	[SP_EKEYCHANGED - SP_ERR_FIRST] = "the key differs from the pinned key",
};

const char *
sp_strerror(int err)
{
	if (err == 0)
		return "success";
	if (err >= SP_ERR_FIRST && err < SP_ERR_LAST)
		return sp_errstr[err - SP_ERR_FIRST];
	if (err > 0)
		return strerror(err);
	return "unknown error";
}

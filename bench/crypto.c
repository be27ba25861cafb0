/*
 * bench/crypto: envelope sealing and opening of a 50 KB message, side by
 * side with raw libsodium crypto_box_seal and GPGME encryption of the same
 * bytes, measured in the same run.  Every figure is printed as messages per
 * second and as a ratio to crypto_box_seal (the baseline).
 *
 * Target (issue "Foundation"): envelope sealing >= 0.8 of crypto_box_seal.
 *
 *   bench-crypto [SECONDS_PER_CASE]     (default 2)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "crypto/envelope.h"
#include "crypto/pgp.h"

#define MSG_SIZE (50 * 1024)

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct ctx {
	uint8_t *msg;
	sp_keyset *alice, *bob;
	uint8_t rcpt[1][32];
	uint8_t *sealed, *env, *plain;
	size_t env_len;
	sp_pgp *pgp;
	unsigned char *pgp_pub;
	size_t pgp_pub_len;
};

typedef int (*bench_fn)(struct ctx *);

static int
run_box_seal(struct ctx *c)
{
	return crypto_box_seal(c->sealed, c->msg, MSG_SIZE, c->rcpt[0]);
}

static int
seal_common(struct ctx *c, const sp_keyset *signer)
{
	struct sp_envelope_seal_args a = { .kind = SP_ENVELOPE_KIND_BODY,
	    .recipients = (const uint8_t(*)[32])c->rcpt, .n_recipients = 1,
	    .signer = signer };
	uint8_t *out;
	size_t len;
	int rc;

	if ((rc = sp_envelope_seal(&a, c->msg, MSG_SIZE, &out, &len)) != 0)
		return rc;
	free(out);
	return 0;
}

static int run_seal(struct ctx *c) { return seal_common(c, NULL); }
static int run_seal_signed(struct ctx *c) { return seal_common(c, c->alice); }

static int
run_open(struct ctx *c)
{
	sp_envelope *r;
	int rc;

	if ((rc = sp_envelope_open(c->env, c->env_len, c->bob, &r)) != 0)
		return rc;
	rc = sp_envelope_read_all(r, c->plain, MSG_SIZE);
	sp_envelope_close(r);
	return rc;
}

static int
run_gpgme(struct ctx *c)
{
	struct sp_pgp_buf rc1 = { c->pgp_pub, c->pgp_pub_len };
	unsigned char *out;
	size_t len;
	int rc;

	rc = sp_pgp_encrypt(c->pgp, &rc1, 1, NULL, 0, c->msg, MSG_SIZE, 0,
	    &out, &len);
	if (rc == 0)
		free(out);
	return rc;
}

/* Runs fn for at least secs seconds; returns operations per second. */
static double
measure(bench_fn fn, struct ctx *c, double secs)
{
	double start = now(), t;
	long n = 0;

	do {
		if (fn(c) != 0) {
			fprintf(stderr, "bench-crypto: operation failed\n");
			exit(1);
		}
		n++;
	} while ((t = now() - start) < secs);
	return (double)n / t;
}

int
main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2.0, base, rate;
	struct ctx c = { 0 };
	unsigned char *sec;
	size_t sec_len, i;
	static const struct { const char *name; bench_fn fn; double secs; }
	    cases[] = {
		{ "envelope seal (1 recipient)", run_seal, 1 },
		{ "envelope seal, signed", run_seal_signed, 1 },
		{ "envelope open + verify", run_open, 1 },
		{ "GPGME encrypt (gpg process)", run_gpgme, 1 },
	};

	if (sodium_init() < 0 || secs <= 0)
		return 1;
	c.msg = malloc(MSG_SIZE);
	c.sealed = malloc(MSG_SIZE + crypto_box_SEALBYTES);
	c.plain = malloc(MSG_SIZE);
	randombytes_buf(c.msg, MSG_SIZE);
	if (sp_keyset_generate(&c.alice) || sp_keyset_generate(&c.bob))
		return 1;
	memcpy(c.rcpt[0], sp_keyset_encryption_pk(c.bob), 32);
	{
		struct sp_envelope_seal_args a = { .kind = SP_ENVELOPE_KIND_BODY,
		    .recipients = (const uint8_t(*)[32])c.rcpt,
		    .n_recipients = 1 };

		if (sp_envelope_seal(&a, c.msg, MSG_SIZE, &c.env, &c.env_len))
			return 1;
	}
	if (sp_pgp_create(&c.pgp) != 0 ||
	    sp_pgp_key_generate(c.pgp, "Bench <bench@example.org>", 0, 0,
	    &sec, &sec_len) != 0 ||
	    sp_pgp_key_import(c.pgp, sec, sec_len, 0, &c.pgp_pub,
	    &c.pgp_pub_len, NULL, NULL) != 0) {
		fprintf(stderr, "bench-crypto: cannot set up GPGME\n");
		return 1;
	}
	sodium_free(sec);

	printf("bench/crypto: %d-byte message, one core, %.1f s per case\n\n",
	    MSG_SIZE, secs);
	printf("%-34s %12s %10s\n", "case", "msgs/s", "ratio");
	base = measure(run_box_seal, &c, secs);
	printf("%-34s %12.0f %10.2f   (baseline)\n",
	    "libsodium crypto_box_seal (raw)", base, 1.0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rate = measure(cases[i].fn, &c, secs * cases[i].secs);
		printf("%-34s %12.0f %10.2f\n", cases[i].name, rate,
		    rate / base);
		if (i == 0)
			printf("%-34s %12s %10s   %s\n", "  target: seal >= 0.80 x raw",
			    "", "", rate / base >= 0.8 ? "met" : "NOT MET");
	}
	(void)sp_pgp_destroy(c.pgp);
	free(c.pgp_pub);
	free(c.env);
	free(c.msg);
	free(c.sealed);
	free(c.plain);
	sp_keyset_destroy(c.alice);
	sp_keyset_destroy(c.bob);
	return 0;
}

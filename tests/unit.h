/*
 * A tiny unit-test harness, header only.  Tests print TAP ("ok N - name",
 * "not ok N - name") so meson can count them, and exit non-zero on the
 * first failed check of a test case only after finishing the case.
 *
 *   static void t_roundtrip(void) { CHECK(x == 1); CHECK_RC(f(), 0); }
 *   int main(void) { RUN(t_roundtrip); return unit_done(); }
 */
#ifndef SP_TESTS_UNIT_H
#define SP_TESTS_UNIT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/error.h"

static int unit_n, unit_failed, unit_case_failed;

#define CHECK(cond)                                                      \
	do {                                                             \
		if (!(cond)) {                                           \
			fprintf(stderr, "# %s:%d: check failed: %s\n",   \
			    __FILE__, __LINE__, #cond);                  \
			unit_case_failed = 1;                            \
		}                                                        \
	} while (0)

/* Compare a return code, printing sp_strerror() of both on mismatch. */
#define CHECK_RC(expr, want)                                             \
	do {                                                             \
		int unit_rc_ = (expr), unit_want_ = (want);              \
		if (unit_rc_ != unit_want_) {                            \
			fprintf(stderr,                                  \
			    "# %s:%d: %s returned %d (%s), want %d (%s)\n", \
			    __FILE__, __LINE__, #expr, unit_rc_,         \
			    sp_strerror(unit_rc_), unit_want_,           \
			    sp_strerror(unit_want_));                    \
			unit_case_failed = 1;                            \
		}                                                        \
	} while (0)

#define RUN(fn)                                                          \
	do {                                                             \
		unit_case_failed = 0;                                    \
		fn();                                                    \
		unit_n++;                                                \
		printf("%sok %d - %s\n", unit_case_failed ? "not " : "", \
		    unit_n, #fn);                                        \
		fflush(stdout);                                          \
		if (unit_case_failed)                                    \
			unit_failed++;                                   \
	} while (0)

static inline int
unit_done(void)
{
	printf("1..%d\n", unit_n);
	return unit_failed ? 1 : 0;
}

/* Reads a whole file below $SP_SOURCE_ROOT; returns malloc'd bytes or NULL. */
static inline unsigned char *
unit_read_file(const char *relpath, size_t *len_r)
{
	const char *root = getenv("SP_SOURCE_ROOT");
	char path[4096];
	FILE *f;
	unsigned char *buf = NULL;
	long n;

	snprintf(path, sizeof(path), "%s/%s", root ? root : ".", relpath);
	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0)
		goto out;
	if ((buf = malloc((size_t)n + 1)) == NULL)
		goto out;
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[n] = 0;
	*len_r = (size_t)n;
out:
	fclose(f);
	return buf;
}

#endif

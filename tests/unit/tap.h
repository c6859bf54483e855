/*
 * tap.h - a tiny TAP (Test Anything Protocol) helper for unit tests.
 *
 * Usage:
 *	#include "tap.h"
 *	int main(void) {
 *		ok(1 + 1 == 2, "addition");
 *		is_int(f(), 3, "f returns 3");
 *		is_str(name(), "x", "name");
 *		return tap_done();
 *	}
 *
 * The plan ("1..N") is printed at the end by tap_done(), which returns the
 * process exit status (0 when every test passed). Header-only: each test
 * program includes it once.
 */
#ifndef TAP_H
#define TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_n;
static int tap_failed;

static int __attribute__((format(printf, 4, 5), unused))
tap_ok_at(int cond, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	tap_n++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond) {
		tap_failed++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return cond;
}

/* Print a diagnostic line ("# ..."). */
static void __attribute__((format(printf, 1, 2), unused))
diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

#define ok(cond, ...) tap_ok_at(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#define is_int(got, want, ...) do { \
	long long tap_g_ = (long long)(got), tap_w_ = (long long)(want); \
	if (!tap_ok_at(tap_g_ == tap_w_, __FILE__, __LINE__, __VA_ARGS__)) \
		diag("  got %lld, want %lld", tap_g_, tap_w_); \
} while (0)

#define is_str(got, want, ...) do { \
	const char *tap_g_ = (got), *tap_w_ = (want); \
	int tap_c_ = (tap_g_ == NULL && tap_w_ == NULL) || \
		(tap_g_ != NULL && tap_w_ != NULL && strcmp(tap_g_, tap_w_) == 0); \
	if (!tap_ok_at(tap_c_, __FILE__, __LINE__, __VA_ARGS__)) \
		diag("  got \"%s\", want \"%s\"", tap_g_ ? tap_g_ : "(null)", \
		     tap_w_ ? tap_w_ : "(null)"); \
} while (0)

/* Print the plan and return the exit status for main(). */
static int __attribute__((unused)) tap_done(void)
{
	printf("1..%d\n", tap_n);
	if (tap_failed)
		printf("# %d of %d failed\n", tap_failed, tap_n);
	fflush(stdout);
	return tap_failed ? 1 : 0;
}

#endif

/*
 * test_sa_err.c - the recorded message and its in-place wrapping
 * (sa_fail_prefix, sa_fail_suffix), and the error value (sa_error_take,
 * sa_error_raise) of agent/util/sa_err.c.
 */
#include <string.h>

#include <openssl/err.h>
#include <openssl/evperr.h>

#include "sa_err.h"
#include "tap.h"

static void test_wrap(void)
{
	int rc;

	sa_fail_noossl(SA_EIO, "cannot write /x: disk full");
	rc = sa_fail_suffix(SA_EIO, "; run %s again", "getca");
	is_int(rc, SA_EIO, "suffix returns the code");
	is_str(sa_errmsg(), "cannot write /x: disk full; run getca again",
	       "suffix goes after the message");

	sa_fail_noossl(SA_EREPLY, "bad signature");
	rc = sa_fail_prefix(SA_EREPLY, "%s reply from %s: ", "PKIOperation",
			    "http://ca/scep");
	is_int(rc, SA_EREPLY, "prefix returns the code");
	is_str(sa_errmsg(), "PKIOperation reply from http://ca/scep: bad signature",
	       "prefix goes in front of the message");

	rc = sa_fail_suffix(SA_ENET, "; resume with -R");
	is_int(rc, SA_ENET, "the code given is the code returned");
	is_str(sa_errmsg(), "PKIOperation reply from http://ca/scep: bad "
	       "signature; resume with -R", "prefix then suffix: both kept");

	sa_err_clear();
	sa_fail_prefix(SA_ENET, "getca: ");
	is_str(sa_errmsg(), "getca: network error",
	       "no message recorded: the code's name is wrapped (prefix)");
	sa_err_clear();
	sa_fail_suffix(SA_EIO, " (twice)");
	is_str(sa_errmsg(), "file error (twice)",
	       "no message recorded: the code's name is wrapped (suffix)");

	/* a message wrapped with itself is no aliasing trouble */
	sa_fail_noossl(SA_EKEY, "abc");
	sa_fail_prefix(SA_EKEY, "%s: ", "x");
	is_str(sa_errmsg(), "x: abc", "short prefix");
}

static void test_bounds(void)
{
	char big[SA_ERRMSG_MAX + 100];
	const char *m;

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	sa_fail_noossl(SA_EIO, "%s", big);
	is_int(strlen(sa_errmsg()), SA_ERRMSG_MAX - 1, "a long message is cut");
	sa_fail_suffix(SA_EIO, "; more");
	m = sa_errmsg();
	is_int(strlen(m), SA_ERRMSG_MAX - 1, "suffix on a full message: bounded");
	ok(strstr(m, "more") == NULL, "suffix on a full message: nothing added");

	sa_fail_noossl(SA_EIO, "%.*s", SA_ERRMSG_MAX - 10, big);
	sa_fail_suffix(SA_EIO, "; 0123456789abcdef");
	m = sa_errmsg();
	is_int(strlen(m), SA_ERRMSG_MAX - 1, "suffix cut at the end");
	ok(strncmp(m + SA_ERRMSG_MAX - 10, "; 0123456", 9) == 0,
	   "suffix: its start is kept");

	sa_fail_noossl(SA_EIO, "%.*sEND", SA_ERRMSG_MAX - 20, big);
	sa_fail_prefix(SA_EIO, "PREFIX-0123456789: ");
	m = sa_errmsg();
	is_int(strlen(m), SA_ERRMSG_MAX - 1, "prefix on a long message: bounded");
	ok(strncmp(m, "PREFIX-0123456789: aaa", 22) == 0,
	   "prefix on a long message: the prefix is whole");
	ok(strstr(m, "END") == NULL, "prefix on a long message: its end goes");

	sa_fail_noossl(SA_EIO, "msg");
	sa_fail_prefix(SA_EIO, "%s", big);
	m = sa_errmsg();
	is_int(strlen(m), SA_ERRMSG_MAX - 1, "a prefix longer than the buffer: bounded");
	ok(m[0] == 'a' && strstr(m, "msg") == NULL, "a prefix longer than the buffer fills it");
}

static void test_ossl_queue(void)
{
	/* entries in the queue, as a failed OpenSSL call leaves them */
	ERR_raise(ERR_LIB_EVP, EVP_R_UNSUPPORTED_ALGORITHM);
	sa_fail_noossl(SA_ECRYPTO, "sign failed");
	ERR_raise(ERR_LIB_EVP, EVP_R_UNSUPPORTED_ALGORITHM);
	sa_fail_suffix(SA_ECRYPTO, "; check the key");
	is_int(ERR_peek_error(), 0, "suffix clears OpenSSL's error queue");
	is_str(sa_errmsg(), "sign failed; check the key",
	       "suffix adds nothing from the queue");
	ERR_raise(ERR_LIB_EVP, EVP_R_UNSUPPORTED_ALGORITHM);
	sa_fail_prefix(SA_ECRYPTO, "enroll: ");
	is_int(ERR_peek_error(), 0, "prefix clears OpenSSL's error queue");
}

static void test_value(void)
{
	struct sa_error e, e2;
	int rc;

	memset(&e, 0x5a, sizeof(e));
	sa_fail_noossl(SA_EPIN, "wrong PIN for token t1");
	rc = sa_error_take(&e, SA_EPIN);
	is_int(rc, SA_EPIN, "take returns the code");
	is_int(e.code, SA_EPIN, "take keeps the code");
	is_str(e.msg, "wrong PIN for token t1", "take keeps the message");
	is_str(sa_errmsg(), "", "take forgets the recorded message");

	sa_fail_noossl(SA_ENET, "another operation failed");
	rc = sa_error_raise(&e);
	is_int(rc, SA_EPIN, "raise returns the value's code");
	is_str(sa_errmsg(), "wrong PIN for token t1",
	       "raise records the value's message again");
	sa_fail_suffix(rc, "; the token is t1");
	is_str(e.msg, "wrong PIN for token t1", "wrapping after raise leaves the value alone");

	sa_err_clear();
	sa_error_take(&e2, SA_ENET);
	is_str(e2.msg, "network error", "take with no message: the code's name");
	sa_error_take(&e2, 0);
	is_int(e2.code, 0, "take of 0: no error");
	is_str(e2.msg, "", "take of 0: no message");
}

int main(void)
{
	test_wrap();
	test_bounds();
	test_ossl_queue();
	test_value();
	return tap_done();
}

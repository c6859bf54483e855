/*
 * test_sa_esc.c - escaping of server-controlled text and URLs shown
 * without credentials (agent/util/sa_esc.c).
 */
#include <string.h>

#include "sa_esc.h"
#include "tap.h"

static void test_esc(void)
{
	char b[64], small[8];
	const unsigned char bin[] = { 'a', 0x00, 0x1b, 0x7f, 0x80, 0xff, 'z' };

	is_str(sa_esc_str("plain text: 1-2_3/4", b, sizeof(b)), "plain text: 1-2_3/4",
	       "printable ASCII unchanged");
	is_str(sa_esc_str("\x1b[31mred\nline2\r\t", b, sizeof(b)),
	       "\\x1B[31mred\\x0Aline2\\x0D\\x09", "ESC, LF, CR, TAB as \\xHH");
	is_str(sa_esc_str("a\x7f" "b", b, sizeof(b)), "a\\x7Fb", "DEL escaped");
	is_str(sa_esc_str("back\\slash", b, sizeof(b)), "back\\\\slash",
	       "a backslash is doubled (the output is unambiguous)");
	is_str(sa_esc(bin, sizeof(bin), 0, b, sizeof(b)), "a\\x00\\x1B\\x7F\\x80\\xFFz",
	       "binary with NUL, bytes >= 0x80 escaped without SA_ESC_UTF8");
	is_str(sa_esc_str("Gr\xc3\xbc\xc3\x9f" "e \xe2\x82\xac \xf0\x9f\x94\x91", b, sizeof(b)),
	       "Gr\xc3\xbc\xc3\x9f" "e \xe2\x82\xac \xf0\x9f\x94\x91", "valid UTF-8 kept");
	is_str(sa_esc(bin + 4, 2, SA_ESC_UTF8, b, sizeof(b)), "\\x80\\xFF",
	       "invalid UTF-8 escaped with SA_ESC_UTF8");
	is_str(sa_esc_str("\xc2\x9b" "2J", b, sizeof(b)), "\\xC2\\x9B2J",
	       "a C1 control (U+009B CSI) in UTF-8 escaped");
	is_str(sa_esc_str("\xc0\xaf \xed\xa0\x80 \xe2\x82", b, sizeof(b)),
	       "\\xC0\\xAF \\xED\\xA0\\x80 \\xE2\\x82",
	       "overlong, surrogate, truncated sequences escaped");
	is_str(sa_esc_str(NULL, b, sizeof(b)), "(null)", "NULL shown as (null)");
	is_str(sa_esc_str("", b, sizeof(b)), "", "empty stays empty");

	/* bounded: cut at a character boundary, ending with "..." */
	is_str(sa_esc_str("1234567", small, sizeof(small)), "1234567", "exactly fits");
	is_str(sa_esc_str("12345678", small, sizeof(small)), "1234...", "one too many: cut");
	is_str(sa_esc_str("12\x1b" "4567", small, sizeof(small)), "12...",
	       "an escape is never cut in half");
	is_str(sa_esc_str("\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", small, sizeof(small)),
	       "\xe2\x82\xac...", "a UTF-8 character is never cut in half");
	is_str(sa_esc_str("abcdef", small, 3), "", "a buffer too small for \"...\": empty");
	{
		char big[4096];
		char one[2] = "x";

		memset(big, '\n', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		sa_esc_str(big, b, sizeof(b));
		ok(strlen(b) < sizeof(b) && strcmp(b + strlen(b) - 3, "...") == 0,
		   "a long text fills the buffer and ends with ...: %zu bytes", strlen(b));
		is_str(sa_esc_str("abc", one, 1), "", "size 1: empty string");
	}
}

static void test_url(void)
{
	char b[128], small[24];

	is_str(sa_url_shown("http://127.0.0.1:8080/scep", b, sizeof(b)),
	       "http://127.0.0.1:8080/scep", "a URL without credentials unchanged");
	is_str(sa_url_shown("http://user:s3cret@host:3128", b, sizeof(b)),
	       "http://***@host:3128", "proxy URL: user and password dropped");
	is_str(sa_url_shown("https://alice:pw@ca.example/certsrv/mscep/mscep.dll", b, sizeof(b)),
	       "https://***@ca.example/certsrv/mscep/mscep.dll", "server URL: credentials dropped");
	is_str(sa_url_shown("user:pw@proxy:8080", b, sizeof(b)), "***@proxy:8080",
	       "sscep form without a scheme: credentials dropped");
	is_str(sa_url_shown("proxy.example:8080", b, sizeof(b)), "proxy.example:8080",
	       "host:port unchanged");
	is_str(sa_url_shown("http://u:p@ss/w@rd@host/scep", b, sizeof(b)),
	       "http://***@host/scep", "a password with '@' and '/' hidden whole");
	is_str(sa_url_shown("http://token@host/scep", b, sizeof(b)), "http://***@host/scep",
	       "a user name alone (a token) dropped too");
	is_str(sa_url_shown("http://host/scep?operation=GetCACert&message=ca1", b, sizeof(b)),
	       "http://host/scep?operation=GetCACert&message=ca1",
	       "operation and message shown");
	is_str(sa_url_shown("http://host/scep?key=S3CRET&operation=PKIOperation", b, sizeof(b)),
	       "http://host/scep?key=***&operation=PKIOperation",
	       "other query values hidden");
	is_str(sa_url_shown("http://host/x?S3CRET;a=1#frag", b, sizeof(b)),
	       "http://host/x?***;a=***#frag", "a bare query item hidden, fragment kept");
	is_str(sa_url_shown("http://h\x1b[2J/scep\n", b, sizeof(b)), "http://h\\x1B[2J/scep\\x0A",
	       "control characters escaped");
	is_str(sa_url_shown("http://a:b@very-long-host-name.example/scep", small, sizeof(small)),
	       "http://***@very-long...", "bounded");
	is_str(sa_url_shown(NULL, b, sizeof(b)), "(null)", "NULL");
}

int main(void)
{
	test_esc();
	test_url();
	return tap_done();
}

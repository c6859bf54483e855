/*
 * test_scep_caps.c - caps parsing, cipher/digest choice, names, GET
 * escaping, failInfo names and hints, transactionID.
 */
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "scep.h"
#include "sa_err.h"
#include "test_scep_util.h"

static void test_caps(void)
{
	const char *micromdm = "Renewal\nSHA-1\nSHA-256\nAES\nDES3\nSCEPStandard\nPOSTPKIOperation";
	const char *crlf = "POSTPKIOperation\r\nsha-256\r\n\r\nGetNextCACert\r\n";
	char buf[256];
	unsigned c;

	c = scep_caps_parse(micromdm, strlen(micromdm));
	is_int(c, SCEP_CAP_RENEWAL | SCEP_CAP_SHA1 | SCEP_CAP_SHA256 | SCEP_CAP_AES |
	       SCEP_CAP_DES3 | SCEP_CAP_SCEPSTANDARD | SCEP_CAP_POST,
	       "micromdm caps parsed");
	c = scep_caps_parse(crlf, strlen(crlf));
	is_int(c, SCEP_CAP_POST | SCEP_CAP_SHA256 | SCEP_CAP_GETNEXTCA,
	       "CRLF, blank lines and lower case tolerated");
	is_int(scep_caps_parse("SCEPStandard", 12),
	       SCEP_CAP_SCEPSTANDARD | SCEP_CAP_AES | SCEP_CAP_POST | SCEP_CAP_SHA256,
	       "SCEPStandard implies AES, POST and SHA-256");
	is_int(scep_caps_parse("Frobnicate\nX-Vendor-Thing\n", 26), 0, "unknown words ignored");
	is_int(scep_caps_parse("", 0), 0, "empty body: no caps");
	is_int(scep_caps_parse(NULL, 5), 0, "NULL body: no caps");
	is_int(scep_caps_parse("AES\0DES3", 8), SCEP_CAP_AES | SCEP_CAP_DES3,
	       "embedded NUL is a separator");
	is_int(scep_caps_parse("AESX\nSHA-2567", 13), 0, "prefixes do not match");
	is_int(scep_caps_parse("  Renewal  \t\n", 13), SCEP_CAP_RENEWAL, "blanks trimmed");
	is_str(scep_caps_str(SCEP_CAP_POST | SCEP_CAP_AES, buf, sizeof(buf)),
	       "POSTPKIOperation AES", "caps names");
	is_str(scep_caps_str(0, buf, sizeof(buf)), "", "no caps: empty string");
	scep_caps_str(~0u, buf, 10);
	ok(strlen(buf) < 10, "caps names truncated safely");
}

static void test_choice(void)
{
	unsigned all = SCEP_CAP_AES | SCEP_CAP_DES3 | SCEP_CAP_SHA1 | SCEP_CAP_SHA256 |
		       SCEP_CAP_SHA512;

	ok(scep_choose_cipher(all, SCEP_CIPHER_AUTO) == EVP_aes_128_cbc(), "AES offered: AES-128");
	ok(scep_choose_cipher(SCEP_CAP_DES3, SCEP_CIPHER_AUTO) == EVP_des_ede3_cbc(),
	   "only DES3 offered: 3DES");
	ok(scep_choose_cipher(0, SCEP_CIPHER_AUTO) == EVP_des_ede3_cbc(),
	   "nothing offered: 3DES, never single DES unasked");
	ok(scep_choose_cipher(all, SCEP_CIPHER_AES256) == EVP_aes_256_cbc(), "AES-256 on request");
	ok(scep_choose_cipher(all, SCEP_CIPHER_DES) == EVP_des_cbc(), "DES on request wins over caps");
	ok(scep_choose_cipher(0, SCEP_CIPHER_BLOWFISH) == EVP_bf_cbc(), "blowfish on request");
	ok(scep_choose_cipher(0, 99) == NULL, "out of range cipher: NULL");
	ok(scep_choose_digest(all, SCEP_DIGEST_AUTO) == EVP_sha256(), "SHA-256 preferred");
	ok(scep_choose_digest(SCEP_CAP_SHA1, SCEP_DIGEST_AUTO) == EVP_sha1(), "only SHA-1: SHA-1");
	ok(scep_choose_digest(SCEP_CAP_SHA512, SCEP_DIGEST_AUTO) == EVP_sha512(),
	   "only SHA-512: SHA-512");
	ok(scep_choose_digest(0, SCEP_DIGEST_AUTO) == EVP_sha1(), "nothing: SHA-1, never MD5 unasked");
	ok(scep_choose_digest(all, SCEP_DIGEST_SHA512) == EVP_sha512(), "SHA-512 on request");
	ok(scep_choose_digest(all, SCEP_DIGEST_MD5) == EVP_md5(), "MD5 on request");
	ok(scep_choose_digest(SCEP_CAP_SCEPSTANDARD | SCEP_CAP_SHA256, SCEP_DIGEST_AUTO) ==
	   EVP_sha256(), "SCEPStandard: SHA-256");
}

static void test_names(void)
{
	is_int(scep_cipher_from_name("des"), SCEP_CIPHER_DES, "des");
	is_int(scep_cipher_from_name("3des"), SCEP_CIPHER_DES3, "3des");
	is_int(scep_cipher_from_name("blowfish"), SCEP_CIPHER_BLOWFISH, "blowfish");
	is_int(scep_cipher_from_name("aes"), SCEP_CIPHER_AES128, "aes is aes128");
	is_int(scep_cipher_from_name("AES128"), SCEP_CIPHER_AES128, "AES128");
	is_int(scep_cipher_from_name("aes192"), SCEP_CIPHER_AES192, "aes192");
	is_int(scep_cipher_from_name("aes256"), SCEP_CIPHER_AES256, "aes256");
	is_int(scep_cipher_from_name("rc4"), -1, "rc4 unknown");
	is_int(scep_cipher_from_name(NULL), -1, "NULL unknown");
	is_int(scep_digest_from_name("md5"), SCEP_DIGEST_MD5, "md5");
	is_int(scep_digest_from_name("sha1"), SCEP_DIGEST_SHA1, "sha1");
	is_int(scep_digest_from_name("SHA-256"), SCEP_DIGEST_SHA256, "SHA-256 spelling");
	is_int(scep_digest_from_name("sha224"), SCEP_DIGEST_SHA224, "sha224");
	is_int(scep_digest_from_name("sha384"), SCEP_DIGEST_SHA384, "sha384");
	is_int(scep_digest_from_name("sha512"), SCEP_DIGEST_SHA512, "sha512");
	is_int(scep_digest_from_name("sha3"), -1, "sha3 unknown");
	is_str(scep_cipher_name(SCEP_CIPHER_DES3), "3des", "cipher name");
	is_str(scep_digest_name(SCEP_DIGEST_SHA256), "sha256", "digest name");
	is_str(scep_cipher_name(-1), "unknown", "bad cipher name");
	is_str(scep_digest_name(42), "unknown", "bad digest name");
}

static void test_escape(void)
{
	char *s;

	s = scep_url_escape("MIIB+ab/cd==");
	is_str(s, "MIIB%2Bab%2Fcd%3D%3D", "base64 + / = percent-encoded");
	free(s);
	s = scep_url_escape("Az09-._~");
	is_str(s, "Az09-._~", "unreserved kept");
	free(s);
	s = scep_url_escape("a b&c?\n\xff");
	is_str(s, "a%20b%26c%3F%0A%FF", "space, & ? newline, high bytes");
	free(s);
	s = scep_url_escape("");
	is_str(s, "", "empty");
	free(s);
}

static void test_fail_info(void)
{
	is_str(scep_fail_info_name(SCEP_FAIL_BADALG), "badAlg", "badAlg");
	is_str(scep_fail_info_name(SCEP_FAIL_BADMESSAGECHECK), "badMessageCheck", "badMessageCheck");
	is_str(scep_fail_info_name(SCEP_FAIL_BADREQUEST), "badRequest", "badRequest");
	is_str(scep_fail_info_name(SCEP_FAIL_BADTIME), "badTime", "badTime");
	is_str(scep_fail_info_name(SCEP_FAIL_BADCERTID), "badCertId", "badCertId");
	is_str(scep_fail_info_name(5), "unknown", "5 unknown");
	is_str(scep_fail_info_name(-1), "unknown", "-1 unknown");
	ok(strstr(scep_fail_info_hint(SCEP_FAIL_BADALG), "-E") != NULL, "badAlg hint names -E");
	ok(strstr(scep_fail_info_hint(SCEP_FAIL_BADALG), "key type") != NULL,
	   "badAlg hint names the key type (EC requesters)");
	ok(strstr(scep_fail_info_hint(SCEP_FAIL_BADMESSAGECHECK), "-F") != NULL,
	   "badMessageCheck hint names the pinned CA");
	ok(strstr(scep_fail_info_hint(SCEP_FAIL_BADREQUEST), "challenge password") != NULL,
	   "badRequest hint names the challenge password");
	ok(strstr(scep_fail_info_hint(SCEP_FAIL_BADTIME), "clock") != NULL, "badTime hint: clocks");
	ok(strstr(scep_fail_info_hint(SCEP_FAIL_BADCERTID), "serial") != NULL, "badCertId hint: serial");
	ok(scep_fail_info_hint(77) != NULL, "unknown failInfo has a hint");
}

static void test_tid(void)
{
	EVP_PKEY *k1 = tu_rsa(), *k2 = tu_rsa();
	char *a = scep_transaction_id(k1), *b = scep_transaction_id(k1);
	char *c = scep_transaction_id(k2);
	size_t i;
	int hex = 1;

	ok(a && b && strcmp(a, b) == 0, "transactionID stable per key");
	ok(a && c && strcmp(a, c) != 0, "transactionID differs between keys");
	is_int(a ? strlen(a) : 0, 64, "transactionID is 64 hex digits");
	for (i = 0; a && a[i]; i++)
		if (!strchr("0123456789ABCDEF", a[i]))
			hex = 0;
	ok(hex, "transactionID is uppercase hex (PrintableString)");
	ok(scep_transaction_id(NULL) == NULL, "NULL key: NULL");
	free(a);
	free(b);
	free(c);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
}

int main(void)
{
	scep_crypto_init();
	test_caps();
	test_choice();
	test_names();
	test_escape();
	test_fail_info();
	test_tid();
	return tap_done();
}

/*
 * test_scep_certs.c - GetCACert parsing (DER, PKCS#7, PEM), CA/RA role
 * selection, fingerprints and pinning, GetNextCACert verification.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "tap.h"
#include "scep.h"
#include "sa_err.h"
#include "test_scep_util.h"

static EVP_PKEY *ca_key, *ra_key, *ra2_key, *bad_key;
static X509 *ca, *ra_sign, *ra_enc, *other;

static void test_parse(void)
{
	unsigned char *der = NULL, *p7 = NULL;
	int n, n7;
	STACK_OF(X509) *sk = NULL, *in;
	BIO *b;
	BUF_MEM *bm;

	n = i2d_X509(ca, &der);
	is_int(scep_certs_parse(der, (size_t)n, &sk), SA_OK, "single DER certificate");
	is_int(sk_X509_num(sk), 1, "one certificate");
	ok(sk && X509_cmp(sk_X509_value(sk, 0), ca) == 0, "it is the CA");
	sk_X509_pop_free(sk, X509_free);

	in = tu_stack(ra_enc, ca, ra_sign);
	n7 = tu_degenerate(in, NULL, &p7);
	is_int(scep_certs_parse(p7, (size_t)n7, &sk), SA_OK, "degenerate PKCS#7 chain");
	is_int(sk_X509_num(sk), 3, "three certificates");
	sk_X509_pop_free(sk, X509_free);

	is_int(scep_certs_parse(der, (size_t)n - 1, &sk), SA_EREPLY, "truncated DER refused");
	ok(sk == NULL, "output cleared on failure");
	is_int(scep_certs_parse((const unsigned char *)"<html>", 6, &sk), SA_EREPLY, "garbage refused");
	is_int(scep_certs_parse(der, 0, &sk), SA_EREPLY, "empty refused");
	ok(strstr(sa_errmsg(), "empty") != NULL, "empty: says so");

	b = BIO_new(BIO_s_mem());
	PEM_write_bio_X509(b, ca);
	PEM_write_bio_X509(b, ra_sign);
	BIO_get_mem_ptr(b, &bm);
	is_int(scep_certs_parse((unsigned char *)bm->data, bm->length, &sk), SA_OK,
	       "PEM certificates sniffed");
	is_int(sk_X509_num(sk), 2, "two PEM certificates");
	sk_X509_pop_free(sk, X509_free);
	BIO_free(b);

	b = BIO_new(BIO_s_mem());
	{
		const unsigned char *q = p7;
		CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &q, n7);

		PEM_write_bio_CMS(b, cms);
		CMS_ContentInfo_free(cms);
	}
	BIO_get_mem_ptr(b, &bm);
	is_int(scep_certs_parse((unsigned char *)bm->data, bm->length, &sk), SA_OK,
	       "PEM PKCS#7 sniffed");
	is_int(sk_X509_num(sk), 3, "three certificates from PEM PKCS#7");
	sk_X509_pop_free(sk, X509_free);
	BIO_free(b);

	sk_X509_pop_free(in, X509_free);
	OPENSSL_free(der);
	OPENSSL_free(p7);
}

static void test_select(void)
{
	struct scep_ca c = { 0 };
	EVP_PKEY *sub_key = tu_rsa();
	X509 *sub = tu_cert("Sub CA", sub_key, ca, ca_key, "keyCertSign,cRLSign", 1);
	X509 *sub_ra_s = tu_cert("Sub RA sign", ra_key, sub, sub_key, "digitalSignature", 0);
	X509 *sub_ra_e = tu_cert("Sub RA enc", ra2_key, sub, sub_key, "keyEncipherment", 0);
	X509 *both = tu_cert("RA both", ra_key, ca, ca_key,
			     "digitalSignature,keyEncipherment", 0);

	c.certs = tu_stack(ca, NULL, NULL);
	is_int(scep_ca_select(&c, NULL, NULL), SA_OK, "single certificate");
	ok(c.ca == ca && c.ra_sign == ca && c.ra_enc == ca, "single certificate plays all roles");
	scep_ca_clear(&c);

	c.certs = tu_stack(ra_enc, ca, ra_sign);
	is_int(scep_ca_select(&c, NULL, NULL), SA_OK, "NDES-style CA/RA");
	ok(c.ca == sk_X509_value(c.certs, 1), "CA found in the middle");
	ok(c.ra_sign == sk_X509_value(c.certs, 2), "RA with digitalSignature verifies");
	ok(c.ra_enc == sk_X509_value(c.certs, 0), "RA with keyEncipherment encrypts");
	scep_ca_clear(&c);

	c.certs = tu_stack(ra_sign, ra_enc, ca);
	is_int(scep_ca_select(&c, NULL, NULL), SA_OK, "order does not matter");
	ok(c.ca == sk_X509_value(c.certs, 2) && c.ra_sign == sk_X509_value(c.certs, 0) &&
	   c.ra_enc == sk_X509_value(c.certs, 1), "roles still right");
	scep_ca_clear(&c);

	c.certs = tu_stack(ca, both, NULL);
	is_int(scep_ca_select(&c, NULL, NULL), SA_OK, "one RA for both");
	ok(c.ra_sign == sk_X509_value(c.certs, 1) && c.ra_enc == c.ra_sign,
	   "RA with both usages plays both roles");
	scep_ca_clear(&c);

	c.certs = tu_stack(ca, sub, NULL);
	sk_X509_push(c.certs, sub_ra_s);
	X509_up_ref(sub_ra_s);
	sk_X509_push(c.certs, sub_ra_e);
	X509_up_ref(sub_ra_e);
	is_int(scep_ca_select(&c, NULL, NULL), SA_OK, "root, sub CA, RA pair");
	ok(c.ca == sk_X509_value(c.certs, 1), "issuing CA is the RA's issuer (the sub CA)");
	ok(c.ra_sign == sk_X509_value(c.certs, 2) && c.ra_enc == sk_X509_value(c.certs, 3),
	   "RA roles under a sub CA");
	scep_ca_clear(&c);

	c.certs = tu_stack(ca, sub, NULL);
	is_int(scep_ca_select(&c, NULL, NULL), SA_OK, "root and sub CA only");
	ok(c.ca == sk_X509_value(c.certs, 1) && c.ra_sign == c.ca && c.ra_enc == c.ca,
	   "the sub CA (the leaf) is the issuing CA and plays both roles");
	scep_ca_clear(&c);

	c.certs = tu_stack(ca, NULL, NULL);
	is_int(scep_ca_select(&c, ra_sign, ra_enc), SA_OK, "user-named -c/-e certificates");
	ok(X509_cmp(c.ra_sign, ra_sign) == 0 && X509_cmp(c.ra_enc, ra_enc) == 0,
	   "user certificates win");
	is_int(sk_X509_num(c.certs), 3, "user certificates added to the set");
	ok(c.ca == sk_X509_value(c.certs, 0), "CA stays the CA");
	scep_ca_clear(&c);

	c.certs = tu_stack(ra_enc, ca, ra_sign);
	is_int(scep_ca_select(&c, NULL, other), SA_OK, "user -e overrides the RA");
	ok(X509_cmp(c.ra_enc, other) == 0, "-e certificate used for encryption");
	ok(c.ra_sign == sk_X509_value(c.certs, 2), "signing RA unchanged");
	scep_ca_clear(&c);

	c.certs = sk_X509_new_null();
	is_int(scep_ca_select(&c, NULL, NULL), SA_EREPLY, "no certificates: error");
	scep_ca_clear(&c);

	X509_free(sub);
	X509_free(sub_ra_s);
	X509_free(sub_ra_e);
	X509_free(both);
	EVP_PKEY_free(sub_key);
}

static void test_fingerprint(void)
{
	char *fp = scep_fingerprint(ca, EVP_sha256()), *fp1 = scep_fingerprint(ca, EVP_sha1());
	char *md5 = scep_fingerprint(ca, EVP_md5());
	char plain[200], lower[200], pfx[220];
	size_t i, j = 0;

	ok(fp && strlen(fp) == 95 && fp[2] == ':', "SHA-256 fingerprint AB:CD:.. format");
	for (i = 0; fp && fp[i]; i++)
		if (fp[i] != ':') {
			plain[j] = fp[i];
			lower[j] = (char)(fp[i] >= 'A' && fp[i] <= 'F' ? fp[i] + 32 : fp[i]);
			j++;
		}
	plain[j] = lower[j] = '\0';
	is_int(scep_fingerprint_check(ca, fp), SA_OK, "colon form matches");
	is_int(scep_fingerprint_check(ca, plain), SA_OK, "plain hex matches");
	is_int(scep_fingerprint_check(ca, lower), SA_OK, "lower case matches");
	snprintf(pfx, sizeof(pfx), "sha256:%s", lower);
	is_int(scep_fingerprint_check(ca, pfx), SA_OK, "sha256: prefix matches");
	is_int(scep_fingerprint_check(ca, fp1), SA_OK, "SHA-1 by length");
	is_int(scep_fingerprint_check(ca, md5), SA_OK, "MD5 by length");
	is_int(scep_fingerprint_check(ra_sign, fp), SA_ECAPIN, "other certificate refused");
	ok(strstr(sa_errmsg(), "not the pinned") != NULL && strstr(sa_errmsg(), "-F") != NULL,
	   "mismatch message says what to check: %s", sa_errmsg());
	is_int(scep_fingerprint_check(ca, "abcd"), SA_EUSAGE, "too short: usage error");
	is_int(scep_fingerprint_check(ca, "zz:11"), SA_EUSAGE, "not hex: usage error");
	snprintf(pfx, sizeof(pfx), "sha1:%s", lower);
	is_int(scep_fingerprint_check(ca, pfx), SA_EUSAGE, "length does not fit the named digest");
	snprintf(pfx, sizeof(pfx), "whirl:%s", lower);
	is_int(scep_fingerprint_check(ca, pfx), SA_EUSAGE, "unknown digest name");
	free(fp);
	free(fp1);
	free(md5);
}

static void test_pin(void)
{
	struct scep_ca c = { 0 };
	char *fp_ca = scep_fingerprint(ca, EVP_sha256());
	char *fp_other = scep_fingerprint(other, EVP_sha256());
	X509 *fake_ra = tu_cert("Fake RA", bad_key, NULL, NULL, "keyEncipherment", 0);

	c.certs = tu_stack(ra_enc, ca, ra_sign);
	scep_ca_select(&c, NULL, NULL);
	is_int(scep_ca_check_pin(&c, fp_ca), SA_OK, "pinned CA, RA issued by it");
	is_int(scep_ca_check_pin(&c, fp_other), SA_ECAPIN, "pin matches nothing");
	scep_ca_clear(&c);

	/* an attacker sends the genuine CA with an RA of their own */
	c.certs = tu_stack(ca, ra_sign, fake_ra);
	scep_ca_select(&c, NULL, NULL);
	ok(X509_cmp(c.ra_enc, fake_ra) == 0, "fake RA selected for encryption");
	is_int(scep_ca_check_pin(&c, fp_ca), SA_ECAPIN, "RA not issued by the pinned CA refused");
	scep_ca_clear(&c);

	/* a forged certificate with the CA's name but another key */
	{
		X509 *forged = tu_cert("Fake RA", ra_key, ca, bad_key, "keyEncipherment", 0);

		c.certs = tu_stack(ca, ra_sign, forged);
		scep_ca_select(&c, NULL, NULL);
		is_int(scep_ca_check_pin(&c, fp_ca), SA_ECAPIN,
		       "RA naming the CA but with a bad signature refused");
		scep_ca_clear(&c);
		X509_free(forged);
	}
	free(fp_ca);
	free(fp_other);
	X509_free(fake_ra);
}

/* SignedData by (cert, key) over the degenerate bag of certs. */
static int next_ca_reply(X509 *cert, EVP_PKEY *key, STACK_OF(X509) *certs,
			 unsigned char **der)
{
	unsigned char *deg = NULL;
	int n = tu_degenerate(certs, NULL, &deg);
	BIO *in = BIO_new_mem_buf(deg, n);
	CMS_ContentInfo *cms = CMS_sign(cert, key, NULL, in, CMS_BINARY);
	int len;

	*der = NULL;
	len = i2d_CMS_ContentInfo(cms, der);
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	OPENSSL_free(deg);
	return len;
}

static void test_next_ca(void)
{
	struct scep_ca cur = { 0 }, next = { 0 };
	EVP_PKEY *nk = tu_rsa();
	X509 *nca = tu_cert("Next CA", nk, NULL, NULL, "keyCertSign,cRLSign,digitalSignature", 1);
	STACK_OF(X509) *bag = tu_stack(nca, NULL, NULL);
	unsigned char *der = NULL;
	int n;

	cur.certs = tu_stack(ra_enc, ca, ra_sign);
	scep_ca_select(&cur, NULL, NULL);
	n = next_ca_reply(ca, ca_key, bag, &der);
	is_int(scep_next_ca_parse(der, (size_t)n, &cur, &next), SA_OK,
	       "GetNextCACert signed by the current CA");
	ok(next.ca && X509_cmp(next.ca, nca) == 0, "new CA extracted");
	scep_ca_clear(&next);
	OPENSSL_free(der);

	n = next_ca_reply(ra_sign, ra_key, bag, &der);
	is_int(scep_next_ca_parse(der, (size_t)n, &cur, &next), SA_OK, "signed by the current RA");
	scep_ca_clear(&next);
	OPENSSL_free(der);

	n = next_ca_reply(other, bad_key, bag, &der);
	is_int(scep_next_ca_parse(der, (size_t)n, &cur, &next), SA_EREPLY,
	       "signed by a stranger: refused");
	ok(next.certs == NULL, "nothing returned");
	ok(strstr(sa_errmsg(), "not signed by the current") != NULL, "message: %s", sa_errmsg());
	OPENSSL_free(der);

	is_int(scep_next_ca_parse((const unsigned char *)"xx", 2, &cur, &next), SA_EREPLY,
	       "garbage refused");
	scep_ca_clear(&cur);
	sk_X509_pop_free(bag, X509_free);
	X509_free(nca);
	EVP_PKEY_free(nk);
}

int main(void)
{
	scep_crypto_init();
	ca_key = tu_rsa();
	ra_key = tu_rsa();
	ra2_key = tu_rsa();
	bad_key = tu_rsa();
	ca = tu_cert("Test CA", ca_key, NULL, NULL, "critical,keyCertSign,cRLSign", 1);
	ra_sign = tu_cert("Test RA sign", ra_key, ca, ca_key, "critical,digitalSignature", 0);
	ra_enc = tu_cert("Test RA enc", ra2_key, ca, ca_key, "critical,keyEncipherment", 0);
	other = tu_cert("Stranger", bad_key, NULL, NULL, NULL, 0);

	test_parse();
	test_select();
	test_fingerprint();
	test_pin();
	test_next_ca();

	X509_free(ca);
	X509_free(ra_sign);
	X509_free(ra_enc);
	X509_free(other);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(ra_key);
	EVP_PKEY_free(ra2_key);
	EVP_PKEY_free(bad_key);
	return tap_done();
}

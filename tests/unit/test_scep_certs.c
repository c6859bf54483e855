/*
 * test_scep_certs.c - GetCACert parsing (DER, PKCS#7, PEM), CA/RA role
 * selection, fingerprints and pinning, the trust anchor and what is kept,
 * issued certificates and CRLs under the anchor, GetNextCACert
 * verification.
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


static char *fp256(X509 *x)
{
	return scep_fingerprint(x, EVP_sha256());
}

/* push x (up-ref'd) onto sk */
static void push(STACK_OF(X509) *sk, X509 *x)
{
	X509_up_ref(x);
	sk_X509_push(sk, x);
}

static void test_anchor(void)
{
	STACK_OF(X509) *sk;
	X509 *a = NULL;
	char *fc = fp256(ca), *fo = fp256(other), *fr = fp256(ra_sign);
	char *md5 = scep_fingerprint(ca, EVP_md5()), *sha1 = scep_fingerprint(ca, EVP_sha1());

	sk = tu_stack(ca, NULL, NULL);
	is_int(scep_ca_anchor(sk, NULL, &a), SA_OK, "lone CA: anchor");
	ok(a == sk_X509_value(sk, 0), "lone CA: it is the anchor");
	sk_X509_pop_free(sk, X509_free);

	sk = tu_stack(ra_enc, ca, ra_sign);
	is_int(scep_ca_anchor(sk, NULL, &a), SA_OK, "CA and RA, no pin");
	ok(a == sk_X509_value(sk, 1), "no pin: the CA that issued the RA certificates");
	sk_X509_pop_free(sk, X509_free);

	sk = tu_stack(ca, other, NULL);
	is_int(scep_ca_anchor(sk, NULL, &a), SA_EREPLY, "two unrelated CAs, no pin: refused");
	ok(a == NULL, "no anchor on error");
	ok(strstr(sa_errmsg(), "pin one with -F") != NULL, "says how to pin: %s", sa_errmsg());
	ok(strstr(sa_errmsg(), fc) && strstr(sa_errmsg(), fo), "names both SHA-256 fingerprints");
	is_int(scep_ca_anchor(sk, fc, &a), SA_OK, "two CAs, pinned");
	ok(a == sk_X509_value(sk, 0), "the pinned one is the anchor");
	is_int(scep_ca_anchor(sk, fo, &a), SA_OK, "the other one pinned");
	ok(a == sk_X509_value(sk, 1), "pin decides");
	is_int(scep_ca_anchor(sk, md5, &a), SA_OK, "MD5 pin works");
	ok(a == sk_X509_value(sk, 0), "MD5 pin: anchor");
	is_int(scep_ca_anchor(sk, sha1, &a), SA_OK, "SHA-1 pin works");
	is_int(scep_ca_anchor(sk, fr, &a), SA_ECAPIN, "pin matching nothing: refused");
	ok(strstr(sa_errmsg(), fc) && strstr(sa_errmsg(), fo), "names what the CA sent");
	is_int(scep_ca_anchor(sk, "abc", &a), SA_EUSAGE, "malformed pin: usage");
	sk_X509_pop_free(sk, X509_free);

	/* an attacker appends a CA and an RA of their own */
	{
		X509 *rra = tu_cert("Test RA sign", ra2_key, other, bad_key, "digitalSignature", 0);

		sk = tu_stack(ca, ra_sign, ra_enc);
		push(sk, other);
		push(sk, rra);
		is_int(scep_ca_anchor(sk, NULL, &a), SA_EREPLY, "RA certificates of two CAs: ambiguous");
		sk_X509_pop_free(sk, X509_free);
		X509_free(rra);
	}
	/* a forged RA naming the CA but signed by another key names no candidate of the CA */
	{
		X509 *forged = tu_cert("Test RA enc", ra2_key, ca, bad_key, "keyEncipherment", 0);

		sk = tu_stack(ca, ra_sign, forged);
		is_int(scep_ca_anchor(sk, NULL, &a), SA_EREPLY,
		       "a forged RA (CA's name, bad signature) makes the set ambiguous");
		sk_X509_pop_free(sk, X509_free);
		X509_free(forged);
	}
	free(fc);
	free(fo);
	free(fr);
	free(md5);
	free(sha1);
}

static void test_trust(void)
{
	struct scep_ca c = { 0 };
	EVP_PKEY *sub_key = tu_rsa(), *x_key = tu_rsa();
	X509 *sub = tu_cert("Sub CA", sub_key, ca, ca_key, "keyCertSign,cRLSign", 1);
	X509 *sub_ra_s = tu_cert("Sub RA sign", ra_key, sub, sub_key, "digitalSignature", 0);
	X509 *sub_ra_e = tu_cert("Sub RA enc", ra2_key, sub, sub_key, "keyEncipherment", 0);
	/* our CA certifies another CA (a cross-certificate) */
	X509 *cross = tu_cert("Partner CA", x_key, ca, ca_key, "keyCertSign,cRLSign", 1);
	/* the CA re-issued: same name and key, another serial */
	X509 *again = tu_cert("Test CA", ca_key, NULL, NULL, "critical,keyCertSign,cRLSign", 1);
	char *fc = fp256(ca), *fo = fp256(other), *fs = fp256(sub), *fr = fp256(ra_sign);

	/* pinned CA, a stranger appended: dropped; the RA stays */
	c.certs = tu_stack(ca, ra_sign, ra_enc);
	push(c.certs, other);
	is_int(scep_ca_trust(&c, fc, NULL), SA_OK, "pinned CA with a stranger appended");
	is_int(sk_X509_num(c.certs), 3, "the stranger is dropped");
	ok(!scep_certs_contain(c.certs, other), "not in the set any more");
	ok(X509_cmp(c.anchor, ca) == 0 && X509_cmp(c.ca, ca) == 0, "anchor and CA are the pinned CA");
	ok(X509_cmp(c.ra_sign, ra_sign) == 0 && X509_cmp(c.ra_enc, ra_enc) == 0, "RA roles kept");
	scep_ca_clear(&c);

	/* pinned stranger: the genuine CA and its RA certificates are dropped */
	c.certs = tu_stack(ca, ra_sign, other);
	is_int(scep_ca_trust(&c, fo, NULL), SA_OK, "the stranger pinned");
	is_int(sk_X509_num(c.certs), 1, "only the pinned certificate left");
	ok(X509_cmp(c.ra_sign, other) == 0, "it plays every role");
	scep_ca_clear(&c);

	/* cross-certificate issued by the anchor stays, a re-issued anchor stays */
	c.certs = tu_stack(ca, ra_sign, ra_enc);
	push(c.certs, cross);
	push(c.certs, again);
	is_int(scep_ca_trust(&c, fc, NULL), SA_OK, "pinned, with a cross-certificate");
	is_int(sk_X509_num(c.certs), 5, "cross-certificate and re-issued CA kept");
	ok(X509_cmp(c.ra_sign, ra_sign) == 0, "roles unchanged by the cross-certificate");
	scep_ca_clear(&c);
	c.certs = tu_stack(ca, ra_sign, cross);
	is_int(scep_ca_trust(&c, NULL, NULL), SA_EREPLY,
	       "the same without a pin: two candidate CAs, ambiguous");
	scep_ca_clear(&c);

	/* issuing CA under a root (GetCACert: issuing CA, RA, root) */
	c.certs = tu_stack(sub, sub_ra_s, sub_ra_e);
	push(c.certs, ca);
	is_int(scep_ca_trust(&c, NULL, NULL), SA_OK, "intermediate, no pin");
	ok(X509_cmp(c.anchor, sub) == 0, "the anchor is the CA that issued the RA certificates");
	is_int(sk_X509_num(c.certs), 4, "the root above the anchor is kept (for writing)");
	ok(X509_cmp(c.ca, sub) == 0 && X509_cmp(c.ra_sign, sub_ra_s) == 0 &&
	   X509_cmp(c.ra_enc, sub_ra_e) == 0, "roles under the issuing CA");
	{
		STACK_OF(X509) *sg = scep_ca_signers(&c);

		ok(sg && !scep_certs_contain(sg, ca), "the root is not trusted to sign replies");
		is_int(sk_X509_num(sg), 2, "signers: RA and issuing CA");
		sk_X509_free(sg);
	}
	scep_ca_clear(&c);
	c.certs = tu_stack(sub, sub_ra_s, sub_ra_e);
	push(c.certs, ca);
	push(c.certs, other);
	is_int(scep_ca_trust(&c, fc, NULL), SA_OK, "intermediate, the root pinned");
	ok(X509_cmp(c.anchor, ca) == 0 && X509_cmp(c.ca, sub) == 0,
	   "anchor the root, issuing CA the sub CA");
	is_int(sk_X509_num(c.certs), 4, "stranger dropped, the rest kept");
	scep_ca_clear(&c);
	c.certs = tu_stack(sub, ca, NULL);
	is_int(scep_ca_trust(&c, NULL, NULL), SA_OK, "issuing CA and root only, no pin");
	ok(X509_cmp(c.anchor, sub) == 0 && X509_cmp(c.ca, sub) == 0, "anchor: the issuing CA");
	scep_ca_clear(&c);
	c.certs = tu_stack(sub, sub_ra_s, sub_ra_e);
	push(c.certs, ca);
	is_int(scep_ca_trust(&c, fs, NULL), SA_OK, "intermediate, the issuing CA pinned");
	is_int(sk_X509_num(c.certs), 4, "its root is kept");
	scep_ca_clear(&c);

	/* pinning an RA certificate: the CA does not chain to it */
	c.certs = tu_stack(ca, ra_sign, ra_enc);
	is_int(scep_ca_trust(&c, fr, NULL), SA_ECAPIN, "an RA certificate pinned: refused");
	ok(strstr(sa_errmsg(), "pin the CA itself") != NULL, "says what to pin: %s", sa_errmsg());
	scep_ca_clear(&c);

	/* -e must chain to the anchor */
	c.certs = tu_stack(ca, ra_sign, NULL);
	is_int(scep_ca_trust(&c, NULL, ra_enc), SA_OK, "-e issued by the CA");
	ok(X509_cmp(c.ra_enc, ra_enc) == 0, "-e used for encryption");
	scep_ca_clear(&c);
	c.certs = tu_stack(ca, ra_sign, NULL);
	is_int(scep_ca_trust(&c, NULL, other), SA_EUSAGE, "-e of another CA: refused");
	ok(strstr(sa_errmsg(), "-e") && strstr(sa_errmsg(), fo), "names -e and its fingerprint");
	scep_ca_clear(&c);

	X509_free(sub);
	X509_free(sub_ra_s);
	X509_free(sub_ra_e);
	X509_free(cross);
	X509_free(again);
	EVP_PKEY_free(sub_key);
	EVP_PKEY_free(x_key);
	free(fc);
	free(fo);
	free(fs);
	free(fr);
}

static X509_CRL *crl_by(X509 *issuer, EVP_PKEY *key)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();

	X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer));
	X509_gmtime_adj(t, 0);
	X509_CRL_set1_lastUpdate(crl, t);
	X509_CRL_sign(crl, key, EVP_sha256());
	ASN1_TIME_free(t);
	return crl;
}

static void test_verify_issued(void)
{
	struct scep_ca c = { 0 };
	EVP_PKEY *k = tu_rsa(), *sub_key = tu_rsa();
	X509 *good = tu_cert("dev", k, ca, ca_key, "digitalSignature", 0);
	X509 *bad = tu_cert("dev", k, other, bad_key, "digitalSignature", 0);
	/* the CA's name, another key: what the rogue CA issues */
	X509 *forged = tu_cert("dev", k, ca, bad_key, "digitalSignature", 0);
	X509 *sub = tu_cert("Sub CA", sub_key, ca, ca_key, "keyCertSign,cRLSign", 1);
	X509 *under = tu_cert("dev", k, sub, sub_key, "digitalSignature", 0);
	STACK_OF(X509) *extra = tu_stack(sub, NULL, NULL);
	X509_CRL *crl;

	c.certs = tu_stack(ca, ra_sign, ra_enc);
	is_int(scep_ca_verify_issued(&c, good, NULL), SA_EINTERNAL, "no anchor yet: error");
	scep_ca_trust(&c, NULL, NULL);
	is_int(scep_ca_verify_issued(&c, good, NULL), SA_OK, "issued by the anchor");
	is_int(scep_ca_verify_issued(&c, bad, NULL), SA_EREPLY, "issued by a stranger: refused");
	ok(strstr(sa_errmsg(), "does not verify under the trusted CA") != NULL, "message: %s",
	   sa_errmsg());
	is_int(scep_ca_verify_issued(&c, forged, NULL), SA_EREPLY,
	       "the CA's name with another key: refused");
	is_int(scep_ca_verify_issued(&c, under, NULL), SA_EREPLY,
	       "under a sub CA the reply did not carry: refused");
	is_int(scep_ca_verify_issued(&c, under, extra), SA_OK,
	       "under a sub CA carried in the reply: verified through it");
	is_int(scep_ca_verify_issued(&c, ra_sign, NULL), SA_OK, "RA certificate: issued by the CA");
	is_int(scep_ca_verify_issued(&c, ca, NULL), SA_EREPLY, "the anchor itself is not issued");

	crl = crl_by(ca, ca_key);
	is_int(scep_ca_verify_crl(&c, crl), SA_OK, "CRL signed by the CA");
	X509_CRL_free(crl);
	crl = crl_by(ca, bad_key);
	is_int(scep_ca_verify_crl(&c, crl), SA_EREPLY, "CRL in the CA's name, another key: refused");
	ok(strstr(sa_errmsg(), "CRL") != NULL, "message: %s", sa_errmsg());
	X509_CRL_free(crl);
	crl = crl_by(other, bad_key);
	is_int(scep_ca_verify_crl(&c, crl), SA_EREPLY, "CRL of a stranger: refused");
	X509_CRL_free(crl);
	scep_ca_clear(&c);

	sk_X509_pop_free(extra, X509_free);
	X509_free(good);
	X509_free(bad);
	X509_free(forged);
	X509_free(sub);
	X509_free(under);
	EVP_PKEY_free(k);
	EVP_PKEY_free(sub_key);
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

	/* in the set but not a signer: the RA encryption certificate */
	n = next_ca_reply(ra_enc, ra2_key, bag, &der);
	is_int(scep_next_ca_parse(der, (size_t)n, &cur, &next), SA_EREPLY,
	       "signed by the RA encryption certificate: refused");
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
	test_anchor();
	test_trust();
	test_verify_issued();
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

/*
 * test_scep_util.h - software keys and certificates for the SCEP core's
 * unit tests (the tests play the CA). Keys live in memory only.
 */
#ifndef TEST_SCEP_UTIL_H
#define TEST_SCEP_UTIL_H

#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static __attribute__((unused)) EVP_PKEY *
tu_rsa(void)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
}

static __attribute__((unused)) EVP_PKEY *
tu_ec(void)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

static __attribute__((unused)) X509_NAME *
tu_name(const char *cn)
{
	X509_NAME *n = X509_NAME_new();

	X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"Test", -1, -1, 0);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	return n;
}

static __attribute__((unused)) void
tu_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
}

/*
 * A certificate for key's public half named cn, issued by (issuer,
 * issuer_key) or self-signed when issuer is NULL. ku: keyUsage value
 * string or NULL; ca: basicConstraints CA:TRUE.
 */
static __attribute__((unused)) X509 *
tu_cert(const char *cn, EVP_PKEY *key, X509 *issuer,
		     EVP_PKEY *issuer_key, const char *ku, int ca)
{
	X509 *x = X509_new();
	X509_NAME *n = tu_name(cn);
	static long serial = 1000;

	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	if (ca)
		tu_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE");
	if (ku)
		tu_ext(x, issuer, NID_key_usage, ku);
	X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256());
	X509_NAME_free(n);
	return x;
}

static __attribute__((unused)) X509_REQ *
tu_csr(const char *cn, EVP_PKEY *key)
{
	X509_REQ *r = X509_REQ_new();
	X509_NAME *n = tu_name(cn);

	X509_REQ_set_subject_name(r, n);
	X509_REQ_set_pubkey(r, key);
	X509_REQ_sign(r, key, EVP_sha256());
	X509_NAME_free(n);
	return r;
}

static __attribute__((unused)) STACK_OF(X509) *
tu_stack(X509 *a, X509 *b, X509 *c)
{
	STACK_OF(X509) *sk = sk_X509_new_null();

	if (a) { X509_up_ref(a); sk_X509_push(sk, a); }
	if (b) { X509_up_ref(b); sk_X509_push(sk, b); }
	if (c) { X509_up_ref(c); sk_X509_push(sk, c); }
	return sk;
}

/* DER of a certificates-only SignedData holding certs. Caller frees. */
static __attribute__((unused)) int
tu_degenerate(STACK_OF(X509) *certs, STACK_OF(X509_CRL) *crls,
			 unsigned char **der)
{
	CMS_ContentInfo *cms = CMS_sign(NULL, NULL, certs, NULL, CMS_PARTIAL);
	int i, n;

	for (i = 0; crls && i < sk_X509_CRL_num(crls); i++)
		CMS_add1_crl(cms, sk_X509_CRL_value(crls, i));
	*der = NULL;
	n = i2d_CMS_ContentInfo(cms, der);
	CMS_ContentInfo_free(cms);
	return n;
}

#endif

/*
 * csr.h - certificate requests (PKCS#10): the subject parser, the
 * subjectAltName parser and the CSR builder used by mkrequest and enroll.
 * Works on any EVP_PKEY (file key or token key): signing goes through
 * OpenSSL, hence into the token for token keys.
 */
#ifndef CSR_H
#define CSR_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/*
 * Parse an OpenSSL-style subject "/CN=host/O=Org\/Unit/C=FI": '/' starts
 * an RDN, '+' adds another attribute to the same RDN (multi-valued RDN),
 * a backslash escapes the next character. Types are short or long names
 * or dotted OIDs; values are UTF-8. get1: *out freed by the caller.
 * SA_EUSAGE with a sentence on a syntax error.
 */
int csr_subject_parse(const char *s, X509_NAME **out);

/*
 * Parse one subjectAltName "TYPE:value": DNS:name, IP:1.2.3.4, IP:::1,
 * email:a@b, URI:https://x/, UPN:user@realm (Microsoft UPN otherName),
 * RID:1.2.3.4. TYPE is case-insensitive. get1. SA_EUSAGE on error.
 */
int csr_san_parse(const char *s, GENERAL_NAME **out);

/* Everything a request carries besides the key. All optional but subject. */
struct csr_params {
	const char *subject;        /* "/CN=..." */
	const char *const *san;     /* "DNS:x", ... */
	size_t n_san;
	const char *challenge;      /* challengePassword (secret, not copied) */
	const char *cert_template;  /* MS template name; "bmp:NAME" for BMPString */
	const char *key_usage;      /* "critical,digitalSignature,keyEncipherment" */
	const char *ext_key_usage;  /* "serverAuth,clientAuth" or dotted OIDs */
	const EVP_MD *md;           /* NULL: SHA-256 */
};

/*
 * Build and sign a CSR for key (signed by key itself: for a token key the
 * signature is made in the token). get1: *out freed by the caller.
 */
int csr_build(const struct csr_params *p, EVP_PKEY *key, X509_REQ **out);

/* One-line rendering of a name ("/CN=x/O=y"), caller frees with free(). */
char *csr_name_oneline(const X509_NAME *name);

#endif

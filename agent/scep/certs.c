/*
 * certs.c - CA/RA certificates: GetCACert reply parsing, role selection,
 * fingerprints and pinning.
 */
#include "scep_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "sa_err.h"
#include "sa_log.h"

/* Free what a scep_ca holds and zero it. */
void scep_ca_clear(struct scep_ca *ca)
{
	if (ca == NULL)
		return;
	sk_X509_pop_free(ca->certs, X509_free);
	memset(ca, 0, sizeof(*ca));
}

int scep_certs_contain(const STACK_OF(X509) *sk, const X509 *cert)
{
	int i;

	for (i = 0; i < sk_X509_num(sk); i++)
		if (X509_cmp(sk_X509_value(sk, i), cert) == 0)
			return 1;
	return 0;
}

static STACK_OF(X509) *certs_from_cms(CMS_ContentInfo *cms)
{
	STACK_OF(X509) *sk = CMS_get1_certs(cms);

	if (sk != NULL && sk_X509_num(sk) == 0) {
		sk_X509_free(sk);
		sk = NULL;
	}
	return sk;
}

static STACK_OF(X509) *try_der(const unsigned char *buf, size_t len)
{
	const unsigned char *p = buf;
	STACK_OF(X509) *sk = NULL;
	X509 *x;
	CMS_ContentInfo *cms;

	x = d2i_X509(NULL, &p, (long)len);
	if (x != NULL && p == buf + len) {
		sk = sk_X509_new_null();
		if (sk == NULL || !sk_X509_push(sk, x)) {
			sk_X509_free(sk);
			X509_free(x);
			return NULL;
		}
		return sk;
	}
	X509_free(x);
	p = buf;
	cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
	if (cms != NULL) {
		if (OBJ_obj2nid(CMS_get0_type(cms)) == NID_pkcs7_signed)
			sk = certs_from_cms(cms);
		CMS_ContentInfo_free(cms);
	}
	return sk;
}

static STACK_OF(X509) *try_pem(const unsigned char *buf, size_t len)
{
	BIO *bio = BIO_new_mem_buf(buf, (int)len);
	STACK_OF(X509) *sk = NULL;
	X509 *x;
	CMS_ContentInfo *cms;

	if (bio == NULL)
		return NULL;
	if (strstr((const char *)buf, "-----BEGIN CERTIFICATE-----") ||
	    strstr((const char *)buf, "-----BEGIN X509 CERTIFICATE-----")) {
		sk = sk_X509_new_null();
		while (sk && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
			if (!sk_X509_push(sk, x))
				X509_free(x);
	} else if (strstr((const char *)buf, "-----BEGIN PKCS7-----") ||
		   strstr((const char *)buf, "-----BEGIN CMS-----")) {
		cms = PEM_read_bio_CMS(bio, NULL, NULL, NULL);
		if (cms) {
			sk = certs_from_cms(cms);
			CMS_ContentInfo_free(cms);
		}
	}
	BIO_free(bio);
	if (sk != NULL && sk_X509_num(sk) == 0) {
		sk_X509_free(sk);
		sk = NULL;
	}
	return sk;
}

/*
 * Certificates from a GetCACert-style buffer: one DER certificate, a
 * degenerate PKCS#7/CMS SignedData, or the same in PEM (servers lie about
 * content types, so all are sniffed). *out owns the certificates.
 */
int scep_certs_parse(const unsigned char *buf, size_t len, STACK_OF(X509) **out)
{
	STACK_OF(X509) *sk = NULL;
	char *nul = NULL;

	*out = NULL;
	if (buf == NULL || len == 0 || len > (1u << 30))
		return sa_fail_noossl(SA_EREPLY, "the CA certificate reply is empty");
	sk = try_der(buf, len);
	if (sk == NULL && memchr(buf, '-', len) != NULL) {
		/* PEM needs a NUL-terminated copy for the strstr sniffing */
		nul = malloc(len + 1);
		if (nul == NULL)
			return sa_fail_noossl(SA_ENOMEM, "out of memory");
		memcpy(nul, buf, len);
		nul[len] = '\0';
		sk = try_pem((unsigned char *)nul, len);
		free(nul);
	}
	if (sk == NULL)
		return sa_fail(SA_EREPLY,
			"the CA certificate reply (%zu bytes) is neither a certificate nor a PKCS#7 "
			"certificate chain, in DER or PEM", len);
	ERR_clear_error();
	*out = sk;
	return SA_OK;
}

static int issued_by(X509 *child, X509 *issuer)
{
	return X509_check_issued(issuer, child) == X509_V_OK;
}

static int is_self_issued(X509 *x)
{
	return issued_by(x, x);
}

/* Does c issue any other certificate in sk? */
static int issues_other(const STACK_OF(X509) *sk, X509 *c)
{
	int i;

	for (i = 0; i < sk_X509_num(sk); i++) {
		X509 *o = sk_X509_value(sk, i);

		if (o != c && X509_cmp(o, c) != 0 && issued_by(o, c))
			return 1;
	}
	return 0;
}

/* key usage bits present in the certificate, or all when the extension is absent */
static uint32_t key_usage(X509 *x)
{
	return X509_get_key_usage(x);
}

/* The issuing CA: a self-signed certificate, else one no other here issued. */
static X509 *find_top(const STACK_OF(X509) *sk)
{
	int i, j, n = sk_X509_num(sk);

	for (i = 0; i < n; i++)
		if (is_self_issued(sk_X509_value(sk, i)))
			return sk_X509_value(sk, i);
	for (i = 0; i < n; i++) {
		X509 *c = sk_X509_value(sk, i);
		int issued = 0;

		for (j = 0; j < n && !issued; j++)
			if (j != i && issued_by(c, sk_X509_value(sk, j)))
				issued = 1;
		if (!issued)
			return c;
	}
	return n > 0 ? sk_X509_value(sk, 0) : NULL;
}

static int add_user_cert(struct scep_ca *ca, X509 *x, X509 **slot)
{
	int i;

	for (i = 0; i < sk_X509_num(ca->certs); i++) {
		if (X509_cmp(sk_X509_value(ca->certs, i), x) == 0) {
			*slot = sk_X509_value(ca->certs, i);
			return SA_OK;
		}
	}
	if (!X509_up_ref(x))
		return sa_fail(SA_EINTERNAL, "X509_up_ref failed");
	if (!sk_X509_push(ca->certs, x)) {
		X509_free(x);
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	}
	*slot = x;
	return SA_OK;
}

/* Pick the CA, signing and encryption certificates; see scep.h. */
int scep_ca_select(struct scep_ca *ca, X509 *user_sign, X509 *user_enc)
{
	X509 *top = NULL, *sign = NULL, *enc = NULL, *both = NULL, *leaf = NULL;
	int i, n, rc;

	ca->ca = ca->ra_sign = ca->ra_enc = NULL;
	if (ca->certs == NULL && (ca->certs = sk_X509_new_null()) == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	n = sk_X509_num(ca->certs);
	if (n == 0 && user_sign == NULL && user_enc == NULL)
		return sa_fail_noossl(SA_EREPLY, "no CA certificate to use");

	top = find_top(ca->certs);
	for (i = 0; i < n; i++) {
		X509 *c = sk_X509_value(ca->certs, i);
		uint32_t ku;
		int e, s;

		if (n > 1 && issues_other(ca->certs, c))
			continue; /* an issuer, not an RA leaf */
		if (leaf == NULL)
			leaf = c;
		ku = key_usage(c);
		e = (ku & KU_KEY_ENCIPHERMENT) != 0;
		s = (ku & KU_DIGITAL_SIGNATURE) != 0;
		if (e && s && both == NULL)
			both = c;
		else if (e && !s && enc == NULL)
			enc = c;
		else if (s && !e && sign == NULL)
			sign = c;
	}
	if (top == NULL && n > 0)
		top = sk_X509_value(ca->certs, 0);
	if (enc == NULL)
		enc = both;
	if (sign == NULL)
		sign = both;
	/* no usage says so: the first leaf (a lone sub CA), else the top */
	if (enc == NULL)
		enc = leaf ? leaf : top;
	if (sign == NULL)
		sign = leaf ? leaf : top;
	/* the issuing CA: the RA's issuer, or the leaf itself when it is a CA */
	ca->ca = top;
	if (sign != NULL && sign != top) {
		if (X509_check_ca(sign))
			ca->ca = sign;
		else
			for (i = 0; i < n; i++)
				if (sk_X509_value(ca->certs, i) != sign &&
				    issued_by(sign, sk_X509_value(ca->certs, i)))
					ca->ca = sk_X509_value(ca->certs, i);
	}
	ca->ra_sign = sign;
	ca->ra_enc = enc;
	if (user_sign && (rc = add_user_cert(ca, user_sign, &ca->ra_sign)) != SA_OK)
		return rc;
	if (user_enc && (rc = add_user_cert(ca, user_enc, &ca->ra_enc)) != SA_OK)
		return rc;
	if (ca->ca == NULL)
		ca->ca = ca->ra_sign ? ca->ra_sign : ca->ra_enc;
	if (ca->ra_sign == NULL)
		ca->ra_sign = ca->ca;
	if (ca->ra_enc == NULL)
		ca->ra_enc = ca->ca;
	if (sa_log_level() >= SA_LOG_DEBUG) {
		char b[3][256];

		X509_NAME_oneline(X509_get_subject_name(ca->ca), b[0], sizeof(b[0]));
		X509_NAME_oneline(X509_get_subject_name(ca->ra_sign), b[1], sizeof(b[1]));
		X509_NAME_oneline(X509_get_subject_name(ca->ra_enc), b[2], sizeof(b[2]));
		sa_debug("CA %s; verify replies with %s; encrypt to %s", b[0], b[1], b[2]);
	}
	return SA_OK;
}

/* Colon-separated uppercase hex fingerprint of cert. Caller frees. */
char *scep_fingerprint(X509 *cert, const EVP_MD *md)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;
	char *s;

	if (cert == NULL || md == NULL || !X509_digest(cert, md, d, &n) || n == 0)
		return NULL;
	s = malloc(3 * n);
	if (s == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		sprintf(s + 3 * i, "%02X%s", d[i], i + 1 < n ? ":" : "");
	return s;
}

static const EVP_MD *md_for_prefix(const char *name, size_t n)
{
	static const struct { const char *n; int d; } t[] = {
		{ "md5", SCEP_DIGEST_MD5 }, { "sha1", SCEP_DIGEST_SHA1 },
		{ "sha-1", SCEP_DIGEST_SHA1 }, { "sha224", SCEP_DIGEST_SHA224 },
		{ "sha-224", SCEP_DIGEST_SHA224 }, { "sha256", SCEP_DIGEST_SHA256 },
		{ "sha-256", SCEP_DIGEST_SHA256 }, { "sha384", SCEP_DIGEST_SHA384 },
		{ "sha-384", SCEP_DIGEST_SHA384 }, { "sha512", SCEP_DIGEST_SHA512 },
		{ "sha-512", SCEP_DIGEST_SHA512 },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strlen(t[i].n) == n && strncasecmp(t[i].n, name, n) == 0)
			return scep_choose_digest(0, t[i].d);
	return NULL;
}

/*
 * Normalise a pin: optional "alg:" prefix, hex with optional separators.
 * Fills hex (lowercase, NUL-terminated) and *md. 0 or SA_EUSAGE.
 */
int scep_pin_parse(const char *pin, char *hex, size_t hexlen, const EVP_MD **md)
{
	const char *colon = strchr(pin, ':'), *p = pin;
	size_t n = 0;

	*md = NULL;
	/* "sha256:AB..." has letters before the first colon */
	if (colon && colon - pin > 2) {
		*md = md_for_prefix(pin, (size_t)(colon - pin));
		if (*md == NULL)
			return sa_fail_noossl(SA_EUSAGE,
				"unknown digest \"%.*s\" in the pinned fingerprint; "
				"use md5, sha1, sha224, sha256, sha384 or sha512",
				(int)(colon - pin), pin);
		p = colon + 1;
	}
	for (; *p; p++) {
		if (*p == ':' || *p == ' ' || *p == '-')
			continue;
		if (!isxdigit((unsigned char)*p) || n + 1 >= hexlen)
			return sa_fail_noossl(SA_EUSAGE,
				"the pinned fingerprint \"%s\" is not a hex digest", pin);
		hex[n++] = (char)tolower((unsigned char)*p);
	}
	hex[n] = '\0';
	if (*md == NULL) {
		switch (n) {
		case 32: *md = EVP_md5(); break;
		case 40: *md = EVP_sha1(); break;
		case 56: *md = EVP_sha224(); break;
		case 64: *md = EVP_sha256(); break;
		case 96: *md = EVP_sha384(); break;
		case 128: *md = EVP_sha512(); break;
		default:
			return sa_fail_noossl(SA_EUSAGE,
				"the pinned fingerprint \"%s\" has %zu hex digits, which fits no digest "
				"(MD5 32, SHA-1 40, SHA-256 64, SHA-512 128)", pin, n);
		}
	}
	if (n != (size_t)EVP_MD_get_size(*md) * 2)
		return sa_fail_noossl(SA_EUSAGE,
			"the pinned fingerprint \"%s\" has %zu hex digits, %s needs %d",
			pin, n, EVP_MD_get0_name(*md), EVP_MD_get_size(*md) * 2);
	return SA_OK;
}

int scep_fp_matches(X509 *cert, const char *hex, const EVP_MD *md)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;
	char h[2 * EVP_MAX_MD_SIZE + 1];

	if (!X509_digest(cert, md, d, &n))
		return 0;
	for (i = 0; i < n; i++)
		sprintf(h + 2 * i, "%02x", d[i]);
	return strcmp(h, hex) == 0;
}

/* Compare a pinned fingerprint with cert; see scep.h. */
int scep_fingerprint_check(X509 *cert, const char *pin)
{
	char hex[2 * EVP_MAX_MD_SIZE + 1], name[256];
	const EVP_MD *md;
	char *fp;
	int rc;

	if (cert == NULL || pin == NULL)
		return sa_fail_noossl(SA_EINTERNAL, "no certificate or fingerprint to compare");
	if ((rc = scep_pin_parse(pin, hex, sizeof(hex), &md)) != SA_OK)
		return rc;
	if (scep_fp_matches(cert, hex, md))
		return SA_OK;
	fp = scep_fingerprint(cert, md);
	X509_NAME_oneline(X509_get_subject_name(cert), name, sizeof(name));
	rc = sa_fail_noossl(SA_ECAPIN,
		"the CA certificate %s has %s fingerprint %s, not the pinned %s; "
		"check the fingerprint given with -F (or FingerPrint), or whether the CA was replaced",
		name, EVP_MD_get0_name(md), fp ? fp : "?", pin);
	free(fp);
	return rc;
}

/* Is x the anchor itself or issued (signature verified) via certs up to it? */
static int chains_to(const STACK_OF(X509) *certs, X509 *x, X509 *anchor)
{
	int depth, i;

	for (depth = 0; depth < 8; depth++) {
		X509 *issuer = NULL;

		if (X509_cmp(x, anchor) == 0)
			return 1;
		for (i = 0; i < sk_X509_num(certs); i++) {
			X509 *c = sk_X509_value(certs, i);

			if (c != x && issued_by(x, c) &&
			    X509_verify(x, X509_get0_pubkey(c)) == 1) {
				issuer = c;
				break;
			}
		}
		if (issuer == NULL)
			return 0;
		x = issuer;
	}
	return 0;
}

/*
 * Pin a whole GetCACert reply: one certificate must match pin, and the
 * signing and encryption certificates must be it or be issued by it
 * (signatures checked). 0, SA_ECAPIN or SA_EUSAGE.
 */
int scep_ca_check_pin(const struct scep_ca *ca, const char *pin)
{
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	const EVP_MD *md;
	X509 *anchor = NULL;
	int i, rc;

	if ((rc = scep_pin_parse(pin, hex, sizeof(hex), &md)) != SA_OK)
		return rc;
	for (i = 0; i < sk_X509_num(ca->certs) && anchor == NULL; i++)
		if (scep_fp_matches(sk_X509_value(ca->certs, i), hex, md))
			anchor = sk_X509_value(ca->certs, i);
	if (anchor == NULL) {
		/* name the CA's own fingerprint in the message */
		rc = scep_fingerprint_check(ca->ca, pin);
		return rc == SA_OK ? SA_ECAPIN : rc;
	}
	ERR_set_mark();
	if (!chains_to(ca->certs, ca->ra_sign, anchor) ||
	    !chains_to(ca->certs, ca->ra_enc, anchor)) {
		ERR_pop_to_mark();
		return sa_fail_noossl(SA_ECAPIN,
			"the CA/RA certificates from the server are not issued by the pinned "
			"certificate %s; refusing to use them", pin);
	}
	ERR_pop_to_mark();
	return SA_OK;
}

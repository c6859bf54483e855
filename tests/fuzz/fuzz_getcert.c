/*
 * fuzz_getcert.c - libFuzzer target: GetCert and GetCRL replies, what
 * op_getcert and op_getcrl do with them: the SUCCESS content (a
 * degenerate PKCS#7 of certificates and CRLs) read by scep_reply_parse,
 * then scep_ca_verify_issued on each certificate and scep_ca_verify_crl on
 * each CRL.
 *
 *   byte 0   flags: bit 0 re-sign every certificate and CRL of the body
 *            with the CA's key (and rebuild the bag), so the verifiers get
 *            past the signatures; bit 1 also make the CA their issuer;
 *            bit 2 AES-128 envelope (else DES-CBC)
 *   rest     the degenerate PKCS#7 (DER)
 *
 * The CertRep around it is made by the target (see fuzz_pki.h).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The body's certificates and CRLs signed by the CA, in a new bag. */
static unsigned char *resign(const uint8_t *body, size_t len, int rename, int *outlen)
{
	const unsigned char *p = body;
	CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
	STACK_OF(X509) *certs = NULL;
	STACK_OF(X509_CRL) *crls = NULL;
	X509_NAME *ca = X509_get_subject_name(fz_ca_cert);
	unsigned char *der = NULL;
	int i;

	*outlen = 0;
	if (cms == NULL || OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed)
		goto out;
	certs = CMS_get1_certs(cms);
	crls = CMS_get1_crls(cms);
	for (i = 0; i < sk_X509_num(certs); i++) {
		X509 *x = sk_X509_value(certs, i);

		if (rename)
			X509_set_issuer_name(x, ca);
		X509_sign(x, fz_ca_key, EVP_sha256());
	}
	for (i = 0; i < sk_X509_CRL_num(crls); i++) {
		X509_CRL *c = sk_X509_CRL_value(crls, i);

		if (rename)
			X509_CRL_set_issuer_name(c, ca);
		X509_CRL_sign(c, fz_ca_key, EVP_sha256());
	}
	*outlen = tu_degenerate(certs, crls, &der);
	if (*outlen <= 0) {
		OPENSSL_free(der);
		der = NULL;
	}
out:
	ERR_clear_error();
	sk_X509_pop_free(certs, X509_free);
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	CMS_ContentInfo_free(cms);
	return der;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	struct scep_reply r;
	unsigned char *bag = NULL, *der = NULL, *out = NULL;
	uint8_t f;
	int len = 0, i, rc;

	fz_init();
	f = fz_byte(&in);
	if (f & 1) {
		bag = resign(in.p, in.n, f & 2, &len);
		if (bag != NULL)
			der = fz_success(bag, (size_t)len, f & 4, &len);
	} else {
		der = fz_success(in.p, in.n, f & 4, &len);
	}
	if (der != NULL &&
	    (rc = scep_reply_parse(der, (size_t)len, &fz_ca, "FUZZ", fz_nonce, fz_key,
				   fz_cert, &r), fz_trace("scep_reply_parse", rc), rc == 0)) {
		for (i = 0; i < sk_X509_num(r.certs); i++) {
			X509 *x = sk_X509_value(r.certs, i);

			/* op_getcert: the serial asked for, then the issuer */
			(void)ASN1_INTEGER_cmp(X509_get0_serialNumber(x),
					       X509_get0_serialNumber(fz_cert));
			rc = scep_ca_verify_issued(&fz_ca, x, r.certs);
			fz_trace("scep_ca_verify_issued", rc);
			if (rc == 0 && i2d_X509(x, &out) > 0) {
				OPENSSL_free(out);
				out = NULL;
			}
		}
		for (i = 0; i < sk_X509_CRL_num(r.crls); i++) {
			X509_CRL *c = sk_X509_CRL_value(r.crls, i);

			rc = scep_ca_verify_crl(&fz_ca, c);
			fz_trace("scep_ca_verify_crl", rc);
			if (rc == 0 && i2d_X509_CRL(c, &out) > 0) {
				OPENSSL_free(out);
				out = NULL;
			}
		}
		scep_reply_clear(&r);
	}
	OPENSSL_free(bag);
	OPENSSL_free(der);
	sa_err_clear();
	ERR_clear_error();
	return 0;
}

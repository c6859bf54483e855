/*
 * fuzz_nextca.c - libFuzzer target: GetNextCACert replies behind the
 * signature check (scep_next_ca_parse: the signed content read as a
 * GetCACert reply, roles selected), then the trust computations a rollover
 * CA goes through (scep_ca_anchor, scep_ca_trust on what came back).
 *
 *   byte 0   flags: bit 0 signed by the requester (not trusted; else by
 *            the CA); bit 1 no content; bit 2 SHA-1 (else SHA-256)
 *   rest     the signed content: a DER certificate or a degenerate PKCS#7,
 *            DER or PEM (what GetCACert returns)
 *
 * The SignedData around it is made by the target (see fuzz_pki.h).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned char *sign(const uint8_t *body, size_t len, uint8_t f, int *outlen)
{
	unsigned flags = CMS_BINARY | CMS_PARTIAL;
	CMS_ContentInfo *cms = CMS_sign(NULL, NULL, NULL, NULL, flags);
	BIO *bio = BIO_new_mem_buf(len && !(f & 2) ? body : (const uint8_t *)"",
				   f & 2 ? 0 : (int)len);
	unsigned char *der = NULL;

	*outlen = 0;
	if (cms == NULL || bio == NULL ||
	    CMS_add1_signer(cms, f & 1 ? fz_cert : fz_ca_cert, f & 1 ? fz_key : fz_ca_key,
			    f & 4 ? EVP_sha1() : EVP_sha256(), flags) == NULL)
		goto out;
	if (f & 2)
		CMS_set_detached(cms, 1);
	if (CMS_final(cms, bio, NULL, flags) == 1)
		*outlen = i2d_CMS_ContentInfo(cms, &der);
	if (*outlen <= 0)
		der = NULL;
out:
	ERR_clear_error();
	BIO_free(bio);
	CMS_ContentInfo_free(cms);
	return der;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	struct scep_ca next, copy = { 0 };
	unsigned char *der;
	X509 *anchor = NULL;
	uint8_t f;
	int len, i, rc;

	fz_init();
	f = fz_byte(&in);
	der = sign(in.p, in.n, f, &len);
	if (der != NULL && (rc = scep_next_ca_parse(der, (size_t)len, &fz_ca, &next),
			    fz_trace("scep_next_ca_parse", rc), rc == 0)) {
		if (sk_X509_num(next.certs) < 1 || next.ca == NULL ||
		    next.ra_sign == NULL || next.ra_enc == NULL)
			abort();
		(void)scep_ca_anchor(next.certs, NULL, &anchor);
		copy.certs = sk_X509_new_null();
		for (i = 0; copy.certs && i < sk_X509_num(next.certs); i++)
			if (X509_up_ref(sk_X509_value(next.certs, i)))
				sk_X509_push(copy.certs, sk_X509_value(next.certs, i));
		if (scep_ca_trust(&copy, NULL, NULL) == 0 && copy.anchor == NULL)
			abort();
		scep_ca_clear(&copy);
		scep_ca_clear(&next);
	}
	OPENSSL_free(der);
	/* the input as a whole reply */
	if (scep_next_ca_parse(data, size, &fz_ca, &next) == 0)
		scep_ca_clear(&next);
	sa_err_clear();
	ERR_clear_error();
	return 0;
}

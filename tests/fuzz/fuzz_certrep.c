/*
 * fuzz_certrep.c - libFuzzer target: CertRep parsing behind the signature
 * check (scep_reply_parse, scep_reply_find_cert).
 *
 * The input is the content of a CertRep, which the target signs with its
 * CA's key (see fuzz_pki.h for why), then parses as the agent does:
 *
 *   byte 0   flags: bits 0-1 recipientNonce (0 our nonce, 1 missing,
 *            2 another value, 3 eight bytes); bit 2 envelope the body to
 *            the requester (else the body is the signed content as it is);
 *            bit 3 check the transactionID against the attribute's own
 *            value; bit 4 no content at all; bit 5 signed by the requester
 *            (not trusted); bit 6 AES-128 envelope (else DES-CBC); bit 7
 *            check the transactionID against another one
 *   byte 1   digest: SHA-1, SHA-256, SHA-512
 *   then five attributes, messageType, pkiStatus, failInfo,
 *            failInfoText, transactionID: each a type byte (see
 *            fz_attr_type) and a field (length byte, 0xff absent; bytes)
 *   rest     the body: for a SUCCESS, the degenerate PKCS#7 of
 *            certificates and CRLs that the envelope holds
 *
 * The whole input is also parsed as a reply as it is (the DER and CMS
 * parsing in front of the signature check).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const attr_oid[5] = {
	SCEP_OID_MESSAGE_TYPE, SCEP_OID_PKI_STATUS, SCEP_OID_FAIL_INFO,
	SCEP_OID_FAIL_INFO_TEXT, SCEP_OID_TRANSACTION_ID,
};

/* The reply of the content in in: DER (OPENSSL_free) or NULL. */
static unsigned char *build(struct fz_in *in, char **tid, int *outlen)
{
	static const EVP_MD *(*const mds[])(void) = { EVP_sha1, EVP_sha256, EVP_sha512 };
	unsigned flags = CMS_BINARY | CMS_NOSMIMECAP | CMS_PARTIAL;
	uint8_t f = fz_byte(in), d = fz_byte(in);
	CMS_ContentInfo *cms;
	CMS_SignerInfo *si;
	unsigned char *env = NULL, *der = NULL, other[16];
	const uint8_t *v;
	int i, len, envlen = 0;
	BIO *bio;

	*tid = NULL;
	*outlen = 0;
	cms = CMS_sign(NULL, NULL, NULL, NULL, flags);
	si = cms ? CMS_add1_signer(cms, f & 0x20 ? fz_cert : fz_ca_cert,
				   f & 0x20 ? fz_key : fz_ca_key,
				   mds[d % 3](), flags) : NULL;
	if (si == NULL)
		goto out;
	for (i = 0; i < 5; i++) {
		int type = fz_attr_type(fz_byte(in));

		v = fz_field(in, &len);
		fz_attr(si, attr_oid[i], type, v, len);
		if (i == 4 && (f & 0x08) && len >= 0 && (*tid = malloc((size_t)len + 1))) {
			memcpy(*tid, len ? v : (const uint8_t *)"", (size_t)len);
			(*tid)[len] = '\0';
		}
	}
	if (*tid == NULL && (f & 0x80))
		*tid = strdup("ANOTHERTRANSACTION");
	memcpy(other, fz_nonce, sizeof(other));
	other[15] ^= 1;
	switch (f & 3) {
	case 0: fz_attr(si, SCEP_OID_RECIPIENT_NONCE, V_ASN1_OCTET_STRING, fz_nonce, 16); break;
	case 2: fz_attr(si, SCEP_OID_RECIPIENT_NONCE, V_ASN1_OCTET_STRING, other, 16); break;
	case 3: fz_attr(si, SCEP_OID_RECIPIENT_NONCE, V_ASN1_OCTET_STRING, fz_nonce, 8); break;
	}
	if (f & 0x04) {
		env = fz_envelope(in->p, in->n, f & 0x40, &envlen);
		if (env == NULL)
			goto out;
	}
	if (f & 0x10) {
		CMS_set_detached(cms, 1);
		bio = BIO_new_mem_buf("", 0);
	} else if (env != NULL) {
		bio = BIO_new_mem_buf(env, envlen);
	} else {
		bio = BIO_new_mem_buf(in->n ? in->p : (const uint8_t *)"", (int)in->n);
	}
	if (bio != NULL && CMS_final(cms, bio, NULL, flags) == 1)
		*outlen = i2d_CMS_ContentInfo(cms, &der);
	if (*outlen <= 0)
		der = NULL;
	BIO_free(bio);
out:
	ERR_clear_error();
	CMS_ContentInfo_free(cms);
	OPENSSL_free(env);
	return der;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	struct scep_reply r;
	unsigned char *der;
	char *tid;
	X509 *got = NULL;
	int len, rc;

	fz_init();
	der = build(&in, &tid, &len);
	if (der != NULL &&
	    (rc = scep_reply_parse(der, (size_t)len, &fz_ca, tid, fz_nonce, fz_key,
				   fz_cert, &r), fz_trace("scep_reply_parse", rc), rc == 0)) {
		/* what the parse promises */
		if (r.transaction_id == NULL ||
		    (tid != NULL && strcmp(tid, r.transaction_id) != 0) ||
		    (r.status == SCEP_STATUS_SUCCESS &&
		     sk_X509_num(r.certs) <= 0 && sk_X509_CRL_num(r.crls) <= 0))
			abort();
		fz_trace(r.status == SCEP_STATUS_SUCCESS ? "SUCCESS" :
			 r.status == SCEP_STATUS_PENDING ? "PENDING" : "FAILURE", 0);
		if (r.status == SCEP_STATUS_SUCCESS &&
		    (rc = scep_reply_find_cert(&r, fz_key, &got)) == 0)
			X509_free(got);
		scep_reply_clear(&r);
	}
	OPENSSL_free(der);
	free(tid);
	/* the input as a whole reply */
	if (scep_reply_parse(data, size, &fz_ca, NULL, NULL, fz_key, fz_cert, &r) == 0)
		scep_reply_clear(&r);
	sa_err_clear();
	ERR_clear_error();
	return 0;
}

/*
 * fuzz_pki.h - what the PKIOperation fuzz targets share: a CA and a
 * requester made at fuzzer start (keys in memory only, never in the tree),
 * a reader that splits the fuzz input into fields, and the CA's side of a
 * reply: the input's content is signed and enveloped here, with the CA's
 * key, so that scep_reply_parse() and scep_next_ca_parse() get past the
 * signature check and the fuzzer explores what lies behind it.
 *
 * Why the content and not whole replies: a reply can only verify under a
 * CA whose private key the fuzzer holds, and no private key may be
 * committed; OpenSSL has no seeded key generation. Fuzzing the content
 * makes every input independent of the keys: a crash reproduces in any
 * process, corpora stay valid across runs and machines.
 */
#ifndef FUZZ_PKI_H
#define FUZZ_PKI_H

#include "../unit/test_scep_util.h"

#include <stdio.h>

#include "sa_err.h"
#include "sa_log.h"

/* The CA (one self-signed certificate, all roles) and the requester. */
static struct scep_ca fz_ca;
static EVP_PKEY *fz_ca_key, *fz_key;
static X509 *fz_ca_cert, *fz_cert;
static const unsigned char fz_nonce[16] = "fuzz-nonce-0123";

static __attribute__((unused)) void fz_init(void)
{
	if (fz_key != NULL)
		return;
	scep_crypto_init();
	sa_log_init("fuzz", SA_LOG_ERR - 1, 0); /* quiet */
	/* 1024 bits keep the fuzzer fast; nothing here is secret */
	fz_ca_key = tu_rsa();
	fz_key = tu_rsa();
	fz_ca_cert = tu_cert("fuzz CA", fz_ca_key, NULL, NULL,
			     "critical,keyCertSign,cRLSign,digitalSignature,"
			     "keyEncipherment", 1);
	fz_cert = tu_cert("fuzz client", fz_key, NULL, NULL, NULL, 0);
	fz_ca.certs = tu_stack(fz_ca_cert, NULL, NULL);
	if (fz_ca_key == NULL || fz_key == NULL ||
	    scep_ca_trust(&fz_ca, NULL, NULL) != 0)
		abort();
}

/*
 * With FUZZ_VERBOSE set in the environment, what an input reached: the
 * result of each call and its message (to check that seeds go deep).
 */
static __attribute__((unused)) void fz_trace(const char *what, int rc)
{
	static int on = -1;

	if (on < 0)
		on = getenv("FUZZ_VERBOSE") != NULL;
	if (on)
		fprintf(stderr, "%s: %d %s\n", what, rc, rc ? sa_errmsg() : "ok");
}

/* The fuzz input, read front to back. */
struct fz_in {
	const uint8_t *p;
	size_t n;
};

static __attribute__((unused)) uint8_t fz_byte(struct fz_in *in)
{
	uint8_t b = 0;

	if (in->n > 0) {
		b = in->p[0];
		in->p++;
		in->n--;
	}
	return b;
}

/*
 * A field: one length byte (0xff: absent, *len = -1), then that many
 * bytes (fewer if the input ends).
 */
static __attribute__((unused)) const uint8_t *fz_field(struct fz_in *in, int *len)
{
	const uint8_t *p;
	size_t l;

	if (in->n == 0) {
		*len = -1;
		return NULL;
	}
	l = fz_byte(in);
	if (l == 0xff) {
		*len = -1;
		return NULL;
	}
	if (l > in->n)
		l = in->n;
	p = in->p;
	in->p += l;
	in->n -= l;
	*len = (int)l;
	return p;
}

/* An attribute's ASN.1 type from a selector byte: strings, and some not. */
static __attribute__((unused)) int fz_attr_type(uint8_t sel)
{
	static const int t[] = {
		V_ASN1_PRINTABLESTRING, V_ASN1_PRINTABLESTRING, V_ASN1_PRINTABLESTRING,
		V_ASN1_UTF8STRING, V_ASN1_IA5STRING, V_ASN1_T61STRING,
		V_ASN1_VISIBLESTRING, V_ASN1_OCTET_STRING, V_ASN1_INTEGER,
		V_ASN1_BMPSTRING, V_ASN1_BIT_STRING, V_ASN1_UNIVERSALSTRING,
	};

	return t[sel % (sizeof(t) / sizeof(t[0]))];
}

/* Enveloped to the requester's certificate: DER (OPENSSL_free) or NULL. */
static __attribute__((unused)) unsigned char *fz_envelope(const uint8_t *data, size_t len, int aes,
				  int *outlen)
{
	STACK_OF(X509) *to = tu_stack(fz_cert, NULL, NULL);
	BIO *in = BIO_new_mem_buf(len ? data : (const uint8_t *)"", (int)len);
	CMS_ContentInfo *env;
	unsigned char *der = NULL;

	env = CMS_encrypt(to, in, aes ? EVP_aes_128_cbc() : EVP_des_cbc(), CMS_BINARY);
	*outlen = env ? i2d_CMS_ContentInfo(env, &der) : 0;
	if (*outlen <= 0)
		der = NULL;
	CMS_ContentInfo_free(env);
	BIO_free(in);
	sk_X509_pop_free(to, X509_free);
	return der;
}

/* One signed attribute of the SignerInfo; a bad type or value is ignored. */
static __attribute__((unused)) void fz_attr(CMS_SignerInfo *si, const char *oid, int type,
		    const uint8_t *v, int len)
{
	ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);

	if (len >= 0)
		CMS_signed_add1_attr_by_OBJ(si, o, type, len ? v : (const uint8_t *)"", len);
	ASN1_OBJECT_free(o);
	ERR_clear_error();
}

/*
 * A well-formed SUCCESS CertRep for transactionID "FUZZ" and fz_nonce,
 * signed by the CA, whose envelope (to the requester) holds body as it
 * is: DER (OPENSSL_free) or NULL.
 */
static __attribute__((unused)) unsigned char *fz_success(const uint8_t *body, size_t len, int aes,
				 int *outlen)
{
	unsigned flags = CMS_BINARY | CMS_NOSMIMECAP | CMS_PARTIAL;
	CMS_ContentInfo *cms = CMS_sign(NULL, NULL, NULL, NULL, flags);
	CMS_SignerInfo *si;
	unsigned char *env = NULL, *der = NULL;
	int envlen = 0;
	BIO *bio = NULL;

	*outlen = 0;
	si = cms ? CMS_add1_signer(cms, fz_ca_cert, fz_ca_key, EVP_sha256(), flags) : NULL;
	if (si == NULL)
		goto out;
	fz_attr(si, SCEP_OID_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING, (const uint8_t *)"3", 1);
	fz_attr(si, SCEP_OID_PKI_STATUS, V_ASN1_PRINTABLESTRING, (const uint8_t *)"0", 1);
	fz_attr(si, SCEP_OID_TRANSACTION_ID, V_ASN1_PRINTABLESTRING, (const uint8_t *)"FUZZ", 4);
	fz_attr(si, SCEP_OID_RECIPIENT_NONCE, V_ASN1_OCTET_STRING, fz_nonce, 16);
	env = fz_envelope(body, len, aes, &envlen);
	if (env == NULL || (bio = BIO_new_mem_buf(env, envlen)) == NULL)
		goto out;
	if (CMS_final(cms, bio, NULL, flags) == 1)
		*outlen = i2d_CMS_ContentInfo(cms, &der);
	if (*outlen <= 0)
		der = NULL;
out:
	ERR_clear_error();
	BIO_free(bio);
	CMS_ContentInfo_free(cms);
	OPENSSL_free(env);
	return der;
}

#endif

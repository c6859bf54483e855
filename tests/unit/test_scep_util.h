/*
 * test_scep_util.h - software keys and certificates for the SCEP core's
 * unit tests (the tests play the CA). Keys live in memory only.
 */
#ifndef TEST_SCEP_UTIL_H
#define TEST_SCEP_UTIL_H

#include "scep_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/pkcs7.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/*
 * RSA keys for tests of the protocol code: 1024 bits, because the suite
 * also runs under valgrind, where generating a 2048-bit key costs about
 * 8 s and a 1024-bit one under 1 s; the code under test does not depend
 * on the size. TLS (SECLEVEL 2) needs tu_rsa_bits(2048).
 */
static __attribute__((unused)) EVP_PKEY *
tu_rsa_bits(size_t bits)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits);
}

static __attribute__((unused)) EVP_PKEY *
tu_rsa(void)
{
	return tu_rsa_bits(1024);
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

/* ---- the CA side ---------------------------------------------------- */

static __attribute__((unused)) char *
get_str(CMS_SignerInfo *si, const char *oid, int *type)
{
	ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
	int i = CMS_signed_get_attr_by_OBJ(si, o, -1);
	ASN1_TYPE *t;
	char *s;

	ASN1_OBJECT_free(o);
	if (i < 0)
		return NULL;
	t = X509_ATTRIBUTE_get0_type(CMS_signed_get_attr(si, i), 0);
	*type = t->type;
	s = calloc(1, (size_t)ASN1_STRING_length(t->value.asn1_string) + 1);
	memcpy(s, ASN1_STRING_get0_data(t->value.asn1_string),
	       (size_t)ASN1_STRING_length(t->value.asn1_string));
	return s;
}

struct parsed_req {
	int verified;
	char *mtype, *tid;
	int mtype_type, tid_type, nonce_type;
	unsigned char nonce[16];
	int nonce_len;
	int has_signing_time, has_content_type, has_smime_caps;
	int issuer_serial_sid;
	int ncerts;
	X509 *signer;           /* from the message */
	int enc_nid, md_nid;
	unsigned char *content; /* decrypted */
	long content_len;
};

static __attribute__((unused)) void
parsed_req_free(struct parsed_req *p)
{
	free(p->mtype);
	free(p->tid);
	X509_free(p->signer);
	OPENSSL_free(p->content);
	memset(p, 0, sizeof(*p));
}

/* Verify and decrypt a request as a CA would, with the CA/RA key. */
static __attribute__((unused)) int
ca_read(const unsigned char *der, size_t len, X509 *dec_cert,
		   EVP_PKEY *dec_key, struct parsed_req *p)
{
	const unsigned char *q = der;
	CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &q, (long)len), *env;
	BIO *out = BIO_new(BIO_s_mem()), *plain = BIO_new(BIO_s_mem());
	CMS_SignerInfo *si;
	STACK_OF(X509) *certs;
	X509_ALGOR *dig, *sig;
	ASN1_OCTET_STRING *keyid = NULL;
	X509_NAME *issuer = NULL;
	ASN1_INTEGER *sno = NULL;
	BUF_MEM *bm;
	char *n;
	int t;

	memset(p, 0, sizeof(*p));
	if (cms == NULL)
		return 0;
	p->verified = CMS_verify(cms, NULL, NULL, NULL, out,
				 CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY) == 1;
	si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
	p->mtype = get_str(si, SCEP_OID_MESSAGE_TYPE, &p->mtype_type);
	p->tid = get_str(si, SCEP_OID_TRANSACTION_ID, &p->tid_type);
	n = get_str(si, SCEP_OID_SENDER_NONCE, &p->nonce_type);
	if (n) {
		ASN1_OBJECT *o = OBJ_txt2obj(SCEP_OID_SENDER_NONCE, 1);
		ASN1_TYPE *ty = X509_ATTRIBUTE_get0_type(CMS_signed_get_attr(si,
			CMS_signed_get_attr_by_OBJ(si, o, -1)), 0);

		p->nonce_len = ASN1_STRING_length(ty->value.octet_string);
		if (p->nonce_len <= 16)
			memcpy(p->nonce, n, (size_t)p->nonce_len);
		ASN1_OBJECT_free(o);
		free(n);
	}
	p->has_signing_time = CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1) >= 0;
	p->has_content_type = CMS_signed_get_attr_by_NID(si, NID_pkcs9_contentType, -1) >= 0;
	p->has_smime_caps = CMS_signed_get_attr_by_NID(si, NID_SMIMECapabilities, -1) >= 0;
	CMS_SignerInfo_get0_signer_id(si, &keyid, &issuer, &sno);
	p->issuer_serial_sid = issuer != NULL && sno != NULL && keyid == NULL;
	CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, &sig);
	p->md_nid = OBJ_obj2nid(dig->algorithm);
	certs = CMS_get1_certs(cms);
	p->ncerts = sk_X509_num(certs);
	if (p->ncerts > 0) {
		p->signer = sk_X509_value(certs, 0);
		X509_up_ref(p->signer);
	}
	sk_X509_pop_free(certs, X509_free);

	BIO_get_mem_ptr(out, &bm);
	q = (unsigned char *)bm->data;
	env = d2i_CMS_ContentInfo(NULL, &q, (long)bm->length);
	if (env) {
		const unsigned char *r;
		X509_ALGOR *calg = NULL;

		/* content encryption algorithm */
		{
			unsigned char *e = NULL;
			int el = i2d_CMS_ContentInfo(env, &e);
			PKCS7 *p7 = NULL;

			r = e;
			p7 = d2i_PKCS7(NULL, &r, el);
			if (p7 && PKCS7_type_is_enveloped(p7))
				calg = p7->d.enveloped->enc_data->algorithm;
			p->enc_nid = calg ? OBJ_obj2nid(calg->algorithm) : 0;
			PKCS7_free(p7);
			OPENSSL_free(e);
		}
		if (CMS_decrypt(env, dec_key, dec_cert, NULL, plain, CMS_BINARY)) {
			BIO_get_mem_ptr(plain, &bm);
			p->content_len = (long)bm->length;
			p->content = OPENSSL_memdup(bm->data, bm->length);
		}
		CMS_ContentInfo_free(env);
	}
	(void)t;
	CMS_ContentInfo_free(cms);
	BIO_free(out);
	BIO_free(plain);
	ERR_clear_error();
	return 1;
}

struct rep {
	X509 *signer;          /* signs the CertRep */
	EVP_PKEY *signer_key;
	const EVP_MD *md;
	const char *mtype;     /* default "3" */
	const char *status;    /* NULL: omitted */
	const char *fail_info;
	const char *fail_text;
	const char *tid;
	const unsigned char *rnonce; /* NULL: omitted */
	int rnonce_len;
	STACK_OF(X509) *certs; /* SUCCESS payload */
	STACK_OF(X509_CRL) *crls;
	X509 *enc_to;          /* SUCCESS: envelope recipient */
	const EVP_CIPHER *cipher;
	int detached;          /* no eContent at all */
};

static __attribute__((unused)) void
add_a(CMS_SignerInfo *si, const char *oid, int type, const void *v, int len)
{
	ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);

	if (len < 0)
		len = (int)strlen(v);
	CMS_signed_add1_attr_by_OBJ(si, o, type, v, len);
	ASN1_OBJECT_free(o);
}

/* Build a CertRep as a CA would. DER in *der, length returned. */
static __attribute__((unused)) int
ca_reply(const struct rep *r, unsigned char **der)
{
	unsigned flags = CMS_BINARY | CMS_NOSMIMECAP | CMS_PARTIAL;
	CMS_ContentInfo *cms = CMS_sign(NULL, NULL, NULL, NULL, flags), *env = NULL;
	CMS_SignerInfo *si = CMS_add1_signer(cms, r->signer, r->signer_key,
					     r->md ? r->md : EVP_sha1(), flags);
	unsigned char sn[16], *deg = NULL, *envder = NULL;
	int envlen = 0, n;
	BIO *data;

	RAND_bytes(sn, sizeof(sn));
	add_a(si, SCEP_OID_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING, r->mtype ? r->mtype : "3", -1);
	if (r->status)
		add_a(si, SCEP_OID_PKI_STATUS, V_ASN1_PRINTABLESTRING, r->status, -1);
	if (r->fail_info)
		add_a(si, SCEP_OID_FAIL_INFO, V_ASN1_PRINTABLESTRING, r->fail_info, -1);
	if (r->fail_text)
		add_a(si, SCEP_OID_FAIL_INFO_TEXT, V_ASN1_UTF8STRING, r->fail_text, -1);
	if (r->tid)
		add_a(si, SCEP_OID_TRANSACTION_ID, V_ASN1_PRINTABLESTRING, r->tid, -1);
	add_a(si, SCEP_OID_SENDER_NONCE, V_ASN1_OCTET_STRING, sn, 16);
	if (r->rnonce)
		add_a(si, SCEP_OID_RECIPIENT_NONCE, V_ASN1_OCTET_STRING, r->rnonce, r->rnonce_len);
	if (r->enc_to) {
		STACK_OF(X509) *rc = tu_stack(r->enc_to, NULL, NULL);
		BIO *in;

		n = tu_degenerate(r->certs, r->crls, &deg);
		in = BIO_new_mem_buf(deg, n);
		env = CMS_encrypt(rc, in, r->cipher ? r->cipher : EVP_des_cbc(), CMS_BINARY);
		envlen = i2d_CMS_ContentInfo(env, &envder);
		BIO_free(in);
		sk_X509_pop_free(rc, X509_free);
	}
	if (r->detached) {
		CMS_set_detached(cms, 1);
		data = BIO_new_mem_buf("", 0);
	} else {
		data = BIO_new_mem_buf(envder ? (void *)envder : (void *)"", envlen);
	}
	CMS_final(cms, data, NULL, flags);
	*der = NULL;
	n = i2d_CMS_ContentInfo(cms, der);
	BIO_free(data);
	CMS_ContentInfo_free(cms);
	CMS_ContentInfo_free(env);
	OPENSSL_free(deg);
	OPENSSL_free(envder);
	return n;
}

#endif

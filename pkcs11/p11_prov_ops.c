/*
 * p11_prov_ops.c - the operations of our provider's token keys (see
 * p11_prov.c): RSA PKCS#1 v1.5 and ECDSA signatures with C_Sign, RSA
 * PKCS#1 v1.5 decryption with C_Decrypt, on the session p11_token holds.
 * Verification and encryption need only the public half: OpenSSL's
 * default provider does them (OpenSSL hands a token key to a verifier
 * when a certificate or request made in this process carries it as its
 * public key). A failed token call is kept for p11_fault() and put in
 * OpenSSL's error queue, so the caller's message carries it.
 */
#include "p11_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "sa_err.h"

/*
 * The padding mode (signature and decryption alike): PKCS#1 v1.5 is all
 * there is. OpenSSL asks and sets it as a number or as a name.
 */
static int pad_param_ok(const OSSL_PARAM *p)
{
	const char *s;
	int pad;

	if (p == NULL)
		return 1;
	if (p->data_type == OSSL_PARAM_UTF8_STRING)
		return OSSL_PARAM_get_utf8_string_ptr(p, &s) &&
		       strcmp(s, OSSL_PKEY_RSA_PAD_MODE_PKCSV15) == 0;
	return OSSL_PARAM_get_int(p, &pad) && pad == RSA_PKCS1_PADDING;
}

static int pad_param_set(OSSL_PARAM *p)
{
	if (p == NULL)
		return 1;
	if (p->data_type == OSSL_PARAM_UTF8_STRING)
		return OSSL_PARAM_set_utf8_string(p, OSSL_PKEY_RSA_PAD_MODE_PKCSV15);
	return OSSL_PARAM_set_int(p, RSA_PKCS1_PADDING);
}

/* ----- operations in the token ----- */

/* The token half of an operation: a token key, or an error. */
static int need_token(const struct p11_pkey *k)
{
	if (k != NULL && k->fl != NULL)
		return 1;
	ERR_raise_data(ERR_LIB_USER, ERR_R_PASSED_INVALID_ARGUMENT,
		       "not a token private key");
	return 0;
}

/* C_SignInit + C_Sign of in with mechanism mt; *outlen in: room. */
static int tok_sign(struct p11_pkey *k, CK_MECHANISM_TYPE mt,
		    const unsigned char *in, size_t inlen,
		    unsigned char *out, CK_ULONG *outlen)
{
	CK_MECHANISM m = { mt, NULL, 0 };
	CK_RV rv;

	p11_key_prepare(k->fl, k->sess, k->obj);
	rv = k->fl->C_SignInit(k->sess, &m, k->obj);
	if (p11_unload_retry(k->fl, k->sess, rv))
		rv = k->fl->C_SignInit(k->sess, &m, k->obj);
	if (rv != CKR_OK) {
		p11_fault_set(SA_EKEY, rv, "C_SignInit with %s failed", k->what);
		return 0;
	}
	rv = k->fl->C_Sign(k->sess, (CK_BYTE_PTR)in, (CK_ULONG)inlen, out, outlen);
	if (rv != CKR_OK) {
		p11_fault_set(SA_EKEY, rv, "C_Sign with %s failed", k->what);
		return 0;
	}
	return 1;
}

/* ----- signature ----- */

struct p11_sigctx {
	struct p11_pkey *key;    /* borrowed: OpenSSL keeps the EVP_PKEY */
	EVP_MD *md;              /* NULL: sign the input as given */
	EVP_MD_CTX *mdctx;       /* digest_sign_* */
};

static void *sig_newctx(void *provctx, const char *propq)
{
	(void)provctx;
	(void)propq;
	return calloc(1, sizeof(struct p11_sigctx));
}

static void sig_freectx(void *vc)
{
	struct p11_sigctx *c = vc;

	if (c == NULL)
		return;
	EVP_MD_CTX_free(c->mdctx);
	EVP_MD_free(c->md);
	free(c);
}

static void *sig_dupctx(void *vc)
{
	struct p11_sigctx *c = vc, *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return NULL;
	d->key = c->key;
	if (c->md != NULL && EVP_MD_up_ref(c->md))
		d->md = c->md;
	if (c->mdctx != NULL && ((d->mdctx = EVP_MD_CTX_new()) == NULL ||
				 !EVP_MD_CTX_copy_ex(d->mdctx, c->mdctx))) {
		sig_freectx(d);
		return NULL;
	}
	return d;
}

static int sig_set_md(struct p11_sigctx *c, const char *name)
{
	EVP_MD *md = EVP_MD_fetch(NULL, name, NULL);

	if (md == NULL)
		return 0;
	EVP_MD_free(c->md);
	c->md = md;
	return 1;
}

static int sig_set_ctx_params(void *vc, const OSSL_PARAM params[])
{
	struct p11_sigctx *c = vc;
	const OSSL_PARAM *p;
	const char *s = NULL;

	if (params == NULL)
		return 1;
	p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST);
	if (p != NULL && (!OSSL_PARAM_get_utf8_string_ptr(p, &s) ||
			  !sig_set_md(c, s)))
		return 0;
	return pad_param_ok(OSSL_PARAM_locate_const(params,
					OSSL_SIGNATURE_PARAM_PAD_MODE));
}

static const OSSL_PARAM *sig_settable(void *vc, void *provctx)
{
	static const OSSL_PARAM p[] = {
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
		OSSL_PARAM_END
	};

	(void)vc;
	(void)provctx;
	return p;
}

static int sig_get_ctx_params(void *vc, OSSL_PARAM params[])
{
	struct p11_sigctx *c = vc;
	unsigned char *der = NULL;
	X509_ALGOR *alg = NULL;
	OSSL_PARAM *p;
	int sigid, len, ok = 1;

	p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST);
	if (p != NULL && (c->md == NULL ||
			  !OSSL_PARAM_set_utf8_string(p, EVP_MD_get0_name(c->md))))
		return 0;
	if (!pad_param_set(OSSL_PARAM_locate(params,
					     OSSL_SIGNATURE_PARAM_PAD_MODE)))
		return 0;
	p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID);
	if (p == NULL)
		return 1;
	if (c->md == NULL || c->key == NULL ||
	    !OBJ_find_sigid_by_algs(&sigid, EVP_MD_get_type(c->md), c->key->type) ||
	    (alg = X509_ALGOR_new()) == NULL ||
	    !X509_ALGOR_set0(alg, OBJ_nid2obj(sigid),
			     c->key->type == EVP_PKEY_RSA ? V_ASN1_NULL :
			     V_ASN1_UNDEF, NULL) ||
	    (len = i2d_X509_ALGOR(alg, &der)) <= 0)
		ok = 0;
	else
		ok = OSSL_PARAM_set_octet_string(p, der, (size_t)len);
	OPENSSL_free(der);
	X509_ALGOR_free(alg);
	return ok;
}

static const OSSL_PARAM *sig_gettable(void *vc, void *provctx)
{
	static const OSSL_PARAM p[] = {
		OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
		OSSL_PARAM_END
	};

	(void)vc;
	(void)provctx;
	return p;
}

static int sig_init(void *vc, void *kd, const OSSL_PARAM params[])
{
	struct p11_sigctx *c = vc;

	if (!need_token(kd))
		return 0;
	c->key = kd;
	return sig_set_ctx_params(c, params);
}

/*
 * Sign tbs (a digest when a digest is set, then DER DigestInfo-wrapped for
 * RSA) in the token. sig NULL: the maximum size.
 */
static int sig_sign(void *vc, unsigned char *sig, size_t *siglen,
		    size_t sigsize, const unsigned char *tbs, size_t tbslen)
{
	struct p11_sigctx *c = vc;
	struct p11_pkey *k = c->key;
	unsigned char *info = NULL, raw[160];
	const unsigned char *in = tbs;
	size_t inlen = tbslen;
	X509_SIG *xs = NULL;
	X509_ALGOR *alg;
	ASN1_OCTET_STRING *dig;
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	CK_ULONG rawlen;
	int len, ok = 0;
	size_t max;

	if (k == NULL || k->pub == NULL)
		return 0;
	max = (size_t)EVP_PKEY_get_size(k->pub);
	if (sig == NULL) {
		*siglen = max;
		return 1;
	}
	if (!need_token(k))
		return 0;
	if (c->md != NULL && tbslen != (size_t)EVP_MD_get_size(c->md)) {
		ERR_raise_data(ERR_LIB_USER, ERR_R_PASSED_INVALID_ARGUMENT,
			       "digest of the wrong length to sign");
		return 0;
	}
	if (k->type == EVP_PKEY_RSA) {
		if (c->md != NULL) {
			/* DigestInfo ::= SEQUENCE { AlgorithmIdentifier, OCTET STRING } */
			if ((xs = X509_SIG_new()) == NULL)
				goto out;
			X509_SIG_getm(xs, &alg, &dig);
			if (!X509_ALGOR_set0(alg, OBJ_nid2obj(EVP_MD_get_type(c->md)),
					     V_ASN1_NULL, NULL) ||
			    !ASN1_OCTET_STRING_set(dig, tbs, (int)tbslen) ||
			    (len = i2d_X509_SIG(xs, &info)) <= 0)
				goto out;
			in = info;
			inlen = (size_t)len;
		}
		rawlen = (CK_ULONG)sigsize;
		if (!tok_sign(k, CKM_RSA_PKCS, in, inlen, sig, &rawlen))
			goto out;
		*siglen = rawlen;
		ok = 1;
		goto out;
	}
	/* ECDSA: the token gives r || s; OpenSSL wants DER */
	rawlen = sizeof(raw);
	if (!tok_sign(k, CKM_ECDSA, in, inlen, raw, &rawlen))
		goto out;
	if (rawlen == 0 || rawlen % 2 != 0 ||
	    (r = BN_bin2bn(raw, (int)(rawlen / 2), NULL)) == NULL ||
	    (s = BN_bin2bn(raw + rawlen / 2, (int)(rawlen / 2), NULL)) == NULL ||
	    (es = ECDSA_SIG_new()) == NULL || !ECDSA_SIG_set0(es, r, s))
		goto out;
	r = s = NULL;
	len = i2d_ECDSA_SIG(es, NULL);
	if (len <= 0 || (size_t)len > sigsize)
		goto out;
	len = i2d_ECDSA_SIG(es, &sig);
	*siglen = (size_t)len;
	ok = 1;
out:
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	X509_SIG_free(xs);
	OPENSSL_free(info);
	return ok;
}

static int sig_dsign_init(void *vc, const char *mdname, void *kd,
			  const OSSL_PARAM params[])
{
	struct p11_sigctx *c = vc;

	if (!sig_init(vc, kd, params) ||
	    !sig_set_md(c, mdname != NULL ? mdname : "SHA256"))
		return 0;
	if (c->mdctx == NULL && (c->mdctx = EVP_MD_CTX_new()) == NULL)
		return 0;
	return EVP_DigestInit_ex(c->mdctx, c->md, NULL);
}

static int sig_dsign_update(void *vc, const unsigned char *data, size_t len)
{
	struct p11_sigctx *c = vc;

	return c->mdctx != NULL && EVP_DigestUpdate(c->mdctx, data, len);
}

static int sig_dsign_final(void *vc, unsigned char *sig, size_t *siglen,
			   size_t sigsize)
{
	struct p11_sigctx *c = vc;
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;

	if (sig == NULL)
		return sig_sign(vc, NULL, siglen, 0, NULL, 0);
	if (c->mdctx == NULL || !EVP_DigestFinal_ex(c->mdctx, d, &dlen))
		return 0;
	return sig_sign(vc, sig, siglen, sigsize, d, dlen);
}

/*
 * Verification needs no token: the public half does it (OpenSSL hands
 * the token key to a verifier when a certificate or request made in this
 * process carries it as its public key).
 */
static int sig_verify_init(void *vc, void *kd, const OSSL_PARAM params[])
{
	struct p11_sigctx *c = vc;

	if (kd == NULL)
		return 0;
	c->key = kd;
	return sig_set_ctx_params(c, params);
}

static int sig_verify(void *vc, const unsigned char *sig, size_t siglen,
		      const unsigned char *tbs, size_t tbslen)
{
	struct p11_sigctx *c = vc;
	EVP_PKEY_CTX *pc;
	int r = 0;

	if (c->key == NULL || c->key->pub == NULL)
		return 0;
	pc = EVP_PKEY_CTX_new_from_pkey(NULL, c->key->pub, "provider=default");
	if (pc != NULL && EVP_PKEY_verify_init(pc) > 0 &&
	    (c->md == NULL || EVP_PKEY_CTX_set_signature_md(pc, c->md) > 0))
		r = EVP_PKEY_verify(pc, sig, siglen, tbs, tbslen);
	EVP_PKEY_CTX_free(pc);
	return r == 1;
}

static int sig_dverify_init(void *vc, const char *mdname, void *kd,
			    const OSSL_PARAM params[])
{
	struct p11_sigctx *c = vc;

	if (!sig_verify_init(vc, kd, params) ||
	    !sig_set_md(c, mdname != NULL ? mdname : "SHA256"))
		return 0;
	if (c->mdctx == NULL && (c->mdctx = EVP_MD_CTX_new()) == NULL)
		return 0;
	return EVP_DigestInit_ex(c->mdctx, c->md, NULL);
}

static int sig_dverify_final(void *vc, const unsigned char *sig, size_t siglen)
{
	struct p11_sigctx *c = vc;
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;

	if (c->mdctx == NULL || !EVP_DigestFinal_ex(c->mdctx, d, &dlen))
		return 0;
	return sig_verify(vc, sig, siglen, d, dlen);
}

const OSSL_DISPATCH p11_prov_signature[] = {
	{ OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))sig_newctx },
	{ OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))sig_freectx },
	{ OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))sig_dupctx },
	{ OSSL_FUNC_SIGNATURE_SIGN_INIT, (void (*)(void))sig_init },
	{ OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))sig_sign },
	{ OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, (void (*)(void))sig_dsign_init },
	{ OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, (void (*)(void))sig_dsign_update },
	{ OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, (void (*)(void))sig_dsign_final },
	{ OSSL_FUNC_SIGNATURE_VERIFY_INIT, (void (*)(void))sig_verify_init },
	{ OSSL_FUNC_SIGNATURE_VERIFY, (void (*)(void))sig_verify },
	{ OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT, (void (*)(void))sig_dverify_init },
	{ OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE, (void (*)(void))sig_dsign_update },
	{ OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL, (void (*)(void))sig_dverify_final },
	{ OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, (void (*)(void))sig_get_ctx_params },
	{ OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, (void (*)(void))sig_gettable },
	{ OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, (void (*)(void))sig_set_ctx_params },
	{ OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))sig_settable },
	{ 0, NULL }
};

/* ----- decryption (RSA PKCS#1 v1.5) ----- */

struct p11_decctx {
	struct p11_pkey *key;
};

static void *dec_newctx(void *provctx)
{
	(void)provctx;
	return calloc(1, sizeof(struct p11_decctx));
}

static void dec_freectx(void *vc)
{
	free(vc);
}

static void *dec_dupctx(void *vc)
{
	struct p11_decctx *d = malloc(sizeof(*d));

	if (d != NULL)
		*d = *(struct p11_decctx *)vc;
	return d;
}

static int dec_set_ctx_params(void *vc, const OSSL_PARAM params[])
{
	(void)vc;
	return params == NULL ||
	       pad_param_ok(OSSL_PARAM_locate_const(params,
					OSSL_ASYM_CIPHER_PARAM_PAD_MODE));
}

static const OSSL_PARAM *dec_settable(void *vc, void *provctx)
{
	static const OSSL_PARAM p[] = {
		OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, NULL, 0),
		OSSL_PARAM_END
	};

	(void)vc;
	(void)provctx;
	return p;
}

static int dec_get_ctx_params(void *vc, OSSL_PARAM params[])
{
	(void)vc;
	return pad_param_set(OSSL_PARAM_locate(params,
					       OSSL_ASYM_CIPHER_PARAM_PAD_MODE));
}

static const OSSL_PARAM *dec_gettable(void *vc, void *provctx)
{
	return dec_settable(vc, provctx);
}

static int dec_init(void *vc, void *kd, const OSSL_PARAM params[])
{
	struct p11_decctx *c = vc;

	if (!need_token(kd))
		return 0;
	c->key = kd;
	return dec_set_ctx_params(vc, params);
}

static int dec_decrypt(void *vc, unsigned char *out, size_t *outlen,
		       size_t outsize, const unsigned char *in, size_t inlen)
{
	struct p11_decctx *c = vc;
	struct p11_pkey *k = c->key;
	CK_MECHANISM m = { CKM_RSA_PKCS, NULL, 0 };
	CK_ULONG len = (CK_ULONG)outsize;
	CK_RV rv;

	if (k == NULL || k->pub == NULL)
		return 0;
	if (out == NULL) {
		*outlen = (size_t)EVP_PKEY_get_size(k->pub);
		return 1;
	}
	p11_key_prepare(k->fl, k->sess, k->obj);
	rv = k->fl->C_DecryptInit(k->sess, &m, k->obj);
	if (p11_unload_retry(k->fl, k->sess, rv))
		rv = k->fl->C_DecryptInit(k->sess, &m, k->obj);
	if (rv != CKR_OK) {
		p11_fault_set(SA_EKEY, rv, "C_DecryptInit with %s failed", k->what);
		return 0;
	}
	rv = k->fl->C_Decrypt(k->sess, (CK_BYTE_PTR)in, (CK_ULONG)inlen, out, &len);
	if (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE) {
		/* not for this key: the sender's fault, not the token's */
		ERR_raise_data(ERR_LIB_USER, ERR_R_OPERATION_FAIL, "%s cannot "
			       "decrypt this data (%s)", k->what, p11_rv_str(rv));
		return 0;
	}
	if (rv != CKR_OK) {
		p11_fault_set(SA_EKEY, rv, "C_Decrypt with %s failed", k->what);
		return 0;
	}
	*outlen = len;
	return 1;
}

/* Encryption to the public half: no token needed (see sig_verify_init). */
static int enc_init(void *vc, void *kd, const OSSL_PARAM params[])
{
	struct p11_decctx *c = vc;

	if (kd == NULL)
		return 0;
	c->key = kd;
	return dec_set_ctx_params(vc, params);
}

static int enc_encrypt(void *vc, unsigned char *out, size_t *outlen,
		       size_t outsize, const unsigned char *in, size_t inlen)
{
	struct p11_decctx *c = vc;
	EVP_PKEY_CTX *pc;
	int r = 0;

	if (c->key == NULL || c->key->pub == NULL)
		return 0;
	if (out == NULL) {
		*outlen = (size_t)EVP_PKEY_get_size(c->key->pub);
		return 1;
	}
	*outlen = outsize;
	pc = EVP_PKEY_CTX_new_from_pkey(NULL, c->key->pub, "provider=default");
	if (pc != NULL && EVP_PKEY_encrypt_init(pc) > 0 &&
	    EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) > 0)
		r = EVP_PKEY_encrypt(pc, out, outlen, in, inlen);
	EVP_PKEY_CTX_free(pc);
	return r == 1;
}

const OSSL_DISPATCH p11_prov_asym_cipher[] = {
	{ OSSL_FUNC_ASYM_CIPHER_NEWCTX, (void (*)(void))dec_newctx },
	{ OSSL_FUNC_ASYM_CIPHER_FREECTX, (void (*)(void))dec_freectx },
	{ OSSL_FUNC_ASYM_CIPHER_DUPCTX, (void (*)(void))dec_dupctx },
	{ OSSL_FUNC_ASYM_CIPHER_DECRYPT_INIT, (void (*)(void))dec_init },
	{ OSSL_FUNC_ASYM_CIPHER_DECRYPT, (void (*)(void))dec_decrypt },
	{ OSSL_FUNC_ASYM_CIPHER_ENCRYPT_INIT, (void (*)(void))enc_init },
	{ OSSL_FUNC_ASYM_CIPHER_ENCRYPT, (void (*)(void))enc_encrypt },
	{ OSSL_FUNC_ASYM_CIPHER_GET_CTX_PARAMS, (void (*)(void))dec_get_ctx_params },
	{ OSSL_FUNC_ASYM_CIPHER_GETTABLE_CTX_PARAMS, (void (*)(void))dec_gettable },
	{ OSSL_FUNC_ASYM_CIPHER_SET_CTX_PARAMS, (void (*)(void))dec_set_ctx_params },
	{ OSSL_FUNC_ASYM_CIPHER_SETTABLE_CTX_PARAMS, (void (*)(void))dec_settable },
	{ 0, NULL }
};

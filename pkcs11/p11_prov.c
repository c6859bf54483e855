/*
 * p11_prov.c - token private keys as EVP_PKEY handles: a small OpenSSL 3
 * provider of our own ("scep-agent-pkcs11", built in, never configured by
 * users) with a key manager for RSA and EC keys, RSA PKCS#1 v1.5 and ECDSA
 * signatures, and RSA PKCS#1 v1.5 decryption, each done with C_Sign or
 * C_Decrypt on the session p11_token already holds (verification and
 * encryption, which need only the public half, are done by OpenSSL's
 * default provider).
 *
 * Why not libp11: libp11 0.4.12/0.4.13 (Debian 12/13) hang in their
 * session pool and crash loading an RSA key when a token fails in the
 * middle of a call (docs/faults.md). Here every PKCS#11 call is ours and
 * every CK_RV is checked: a failed call is an error with the token's words
 * (also kept for p11_fault()), never a wait and never a crash.
 *
 * Key data: the token object handle plus the public half as a plain key of
 * OpenSSL's default provider (read from the token when the handle is
 * made), which answers every question about the public key (size, bits,
 * encoding, comparison). Exporting the private half is refused, so OpenSSL
 * never moves a token key to another provider: operations on it come here.
 * A public key imported from elsewhere (EVP_PKEY_eq of a certificate's key
 * and a token key) becomes key data without a token object.
 *
 * The process prefers the default provider's algorithms
 * ("?provider=default"), so that keys of the default provider are never
 * handed to this provider by an unqualified fetch.
 */
#include "p11_int.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "sa_err.h"
#include "sa_log.h"

#define PROV_NAME "scep-agent-pkcs11"
#define PROV_PROPS "provider=" PROV_NAME
#define HANDOFF_PARAM "scep-agent-pkcs11-handoff"

/* Key data of our key manager. */
struct p11_pkey {
	int type;                /* EVP_PKEY_RSA or EVP_PKEY_EC */
	EVP_PKEY *pub;           /* public half (default provider) */
	CK_FUNCTION_LIST *fl;    /* NULL: public only (imported) */
	CK_SESSION_HANDLE sess;
	CK_OBJECT_HANDLE obj;
	char *what;              /* "key 'L' on token 'T'", for messages */
};

/* The key data p11_prov_key_new() is handing to import(); see there. */
static struct p11_pkey *handoff;
static OSSL_PROVIDER *prov, *prov_default;
static char fault_msg[512];

/* ----- failures ----- */

/* See p11_int.h. */
void p11_fault_note(const char *what, CK_RV rv)
{
	snprintf(fault_msg, sizeof(fault_msg), "%s: %s (CK_RV 0x%lx)", what,
		 p11_rv_str(rv), (unsigned long)rv);
}

/* See p11_int.h. */
int p11_fault_set(int code, CK_RV rv, const char *fmt, ...)
{
	char buf[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	p11_fault_note(buf, rv);
	ERR_raise_data(ERR_LIB_USER, ERR_R_OPERATION_FAIL, "%s", fault_msg);
	return code;
}

/* See p11.h. */
const char *p11_fault(void)
{
	return fault_msg[0] ? fault_msg : NULL;
}

/* See p11.h. */
void p11_fault_clear(void)
{
	fault_msg[0] = '\0';
}

/* ----- the public half, read from the token ----- */

/*
 * One attribute of o into a new buffer. 1: read; 0: the object does not
 * have it (or will not tell); negative: the token failed (recorded).
 */
static int attr_read(p11_token *t, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type,
		     const char *name, unsigned char **val, CK_ULONG *len)
{
	CK_ATTRIBUTE a = { type, NULL, 0 };
	CK_RV rv;

	*val = NULL;
	*len = 0;
	rv = t->mod->fl->C_GetAttributeValue(t->sess, o, &a, 1);
	if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
	    (rv == CKR_OK && (a.ulValueLen == CK_UNAVAILABLE_INFORMATION ||
			      a.ulValueLen == 0)))
		return 0;
	if (rv != CKR_OK)
		return p11_fault_set(SA_EKEY, rv, "cannot read %s on token '%s'",
				     name, t->label);
	a.pValue = malloc(a.ulValueLen);
	if (a.pValue == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	rv = t->mod->fl->C_GetAttributeValue(t->sess, o, &a, 1);
	if (rv != CKR_OK) {
		free(a.pValue);
		return p11_fault_set(SA_EKEY, rv, "cannot read %s on token '%s'",
				     name, t->label);
	}
	*val = a.pValue;
	*len = a.ulValueLen;
	return 1;
}

/* The object of class cls with the CKA_ID of priv (first match). */
static int sibling(p11_token *t, CK_OBJECT_HANDLE priv, CK_OBJECT_CLASS cls,
		   CK_OBJECT_HANDLE *out)
{
	CK_ATTRIBUTE tmpl[2] = { { CKA_CLASS, &cls, sizeof(cls) },
				 { CKA_ID, NULL, 0 } };
	CK_OBJECT_HANDLE *h = NULL;
	unsigned char *id = NULL;
	CK_ULONG idlen = 0, n = 0;
	int rc;

	*out = CK_INVALID_HANDLE;
	rc = attr_read(t, priv, CKA_ID, "the key's CKA_ID", &id, &idlen);
	if (rc <= 0)
		return rc;
	tmpl[1].pValue = id;
	tmpl[1].ulValueLen = idlen;
	rc = p11_find(t, tmpl, 2, &h, &n);
	if (rc == 0 && n > 0) {
		*out = h[0];
		rc = 1;
	}
	free(h);
	free(id);
	return rc;
}

static int rsa_pub(unsigned char *n, CK_ULONG nlen, unsigned char *e,
		   CK_ULONG elen, EVP_PKEY **out)
{
	OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *c = NULL;
	BIGNUM *bn = BN_bin2bn(n, (int)nlen, NULL);
	BIGNUM *be = BN_bin2bn(e, (int)elen, NULL);
	int ok = 0;

	if (b != NULL && bn != NULL && be != NULL &&
	    OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, bn) &&
	    OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, be) &&
	    (params = OSSL_PARAM_BLD_to_param(b)) != NULL &&
	    (c = EVP_PKEY_CTX_new_from_name(NULL, "RSA", "provider=default")) &&
	    EVP_PKEY_fromdata_init(c) > 0 &&
	    EVP_PKEY_fromdata(c, out, EVP_PKEY_PUBLIC_KEY, params) > 0)
		ok = 1;
	EVP_PKEY_CTX_free(c);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(b);
	BN_free(bn);
	BN_free(be);
	return ok;
}

static int ec_pub(unsigned char *ecp, CK_ULONG eclen, unsigned char *pt,
		  CK_ULONG ptlen, EVP_PKEY **out)
{
	const unsigned char *p = ecp;
	ASN1_OBJECT *oid = d2i_ASN1_OBJECT(NULL, &p, (long)eclen);
	ASN1_OCTET_STRING *os = NULL;
	const unsigned char *raw = pt;
	size_t rawlen = ptlen;
	const char *group = NULL;
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *c = NULL;
	int ok = 0;

	if (oid != NULL)
		group = OBJ_nid2sn(OBJ_obj2nid(oid));
	/* CKA_EC_POINT: DER OCTET STRING (the standard) or the raw point */
	p = pt;
	if ((os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)ptlen)) != NULL &&
	    p == pt + ptlen) {
		raw = ASN1_STRING_get0_data(os);
		rawlen = (size_t)ASN1_STRING_length(os);
	}
	if (group != NULL && OBJ_sn2nid(group) != NID_undef) {
		params[0] = OSSL_PARAM_construct_utf8_string(
			OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0);
		params[1] = OSSL_PARAM_construct_octet_string(
			OSSL_PKEY_PARAM_PUB_KEY, (void *)raw, rawlen);
		params[2] = OSSL_PARAM_construct_end();
		if ((c = EVP_PKEY_CTX_new_from_name(NULL, "EC",
						    "provider=default")) &&
		    EVP_PKEY_fromdata_init(c) > 0 &&
		    EVP_PKEY_fromdata(c, out, EVP_PKEY_PUBLIC_KEY, params) > 0)
			ok = 1;
	}
	EVP_PKEY_CTX_free(c);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(oid);
	return ok;
}

/* The public key of the certificate object next to priv, if any. */
static int cert_pub(p11_token *t, CK_OBJECT_HANDLE priv, EVP_PKEY **out)
{
	CK_OBJECT_HANDLE c = CK_INVALID_HANDLE;
	unsigned char *der = NULL;
	const unsigned char *p;
	CK_ULONG len = 0;
	X509 *x = NULL;
	int rc;

	rc = sibling(t, priv, CKO_CERTIFICATE, &c);
	if (rc > 0)
		rc = attr_read(t, c, CKA_VALUE, "the certificate's CKA_VALUE",
			       &der, &len);
	if (rc > 0) {
		p = der;
		x = d2i_X509(NULL, &p, (long)len);
		*out = x ? X509_get_pubkey(x) : NULL;
		rc = *out != NULL;
	}
	X509_free(x);
	free(der);
	return rc;
}

/* See p11_int.h. */
int p11_pubkey_read(p11_token *t, CK_OBJECT_HANDLE priv, EVP_PKEY **out)
{
	unsigned char *a = NULL, *b = NULL;
	CK_ULONG alen = 0, blen = 0, kt = 0;
	CK_ATTRIBUTE ka = { CKA_KEY_TYPE, &kt, sizeof(kt) };
	CK_OBJECT_HANDLE pubo = CK_INVALID_HANDLE;
	CK_RV rv;
	int rc;

	*out = NULL;
	rv = t->mod->fl->C_GetAttributeValue(t->sess, priv, &ka, 1);
	if (rv != CKR_OK)
		return p11_fault_set(SA_EKEY, rv, "cannot read the key type of a "
				     "private key on token '%s'", t->label);
	if (kt == CKK_RSA) {
		/* modulus and exponent: on the private object, or the public */
		rc = attr_read(t, priv, CKA_MODULUS, "CKA_MODULUS", &a, &alen);
		if (rc > 0)
			rc = attr_read(t, priv, CKA_PUBLIC_EXPONENT,
				       "CKA_PUBLIC_EXPONENT", &b, &blen);
		if (rc == 0 && (rc = sibling(t, priv, CKO_PUBLIC_KEY, &pubo)) > 0) {
			free(a);
			a = NULL;
			rc = attr_read(t, pubo, CKA_MODULUS, "CKA_MODULUS", &a,
				       &alen);
			if (rc > 0)
				rc = attr_read(t, pubo, CKA_PUBLIC_EXPONENT,
					       "CKA_PUBLIC_EXPONENT", &b, &blen);
		}
		if (rc > 0 && !rsa_pub(a, alen, b, blen, out))
			rc = sa_fail(SA_EKEY, "the RSA public key of a key on "
				     "token '%s' is malformed", t->label);
	} else if (kt == CKK_EC) {
		rc = sibling(t, priv, CKO_PUBLIC_KEY, &pubo);
		if (rc > 0)
			rc = attr_read(t, pubo, CKA_EC_PARAMS, "CKA_EC_PARAMS",
				       &a, &alen);
		if (rc > 0)
			rc = attr_read(t, pubo, CKA_EC_POINT, "CKA_EC_POINT",
				       &b, &blen);
		if (rc > 0 && !ec_pub(a, alen, b, blen, out))
			rc = sa_fail(SA_EKEY, "the EC public key of a key on token "
				     "'%s' is malformed or of an unknown curve",
				     t->label);
	} else {
		rc = sa_fail_noossl(SA_EKEY, "a private key on token '%s' is "
				    "neither RSA nor EC (CKA_KEY_TYPE 0x%lx)",
				    t->label, (unsigned long)kt);
	}
	if (rc == 0) /* no public half next to the key: its certificate? */
		rc = cert_pub(t, priv, out);
	if (rc == 0)
		rc = sa_fail_noossl(SA_EKEY, "token '%s' does not show the public "
				    "half of a private key (no modulus, public "
				    "key or certificate object with its "
				    "CKA_ID)", t->label);
	free(a);
	free(b);
	if (rc < 0) {
		EVP_PKEY_free(*out);
		*out = NULL;
		return rc;
	}
	return 0;
}

/* ----- key manager ----- */

static void *km_new(void *provctx)
{
	(void)provctx;
	return calloc(1, sizeof(struct p11_pkey));
}

static void km_free(void *kd)
{
	struct p11_pkey *k = kd;

	if (k == NULL)
		return;
	EVP_PKEY_free(k->pub);
	free(k->what);
	free(k);
}

static int km_has(const void *kd, int selection)
{
	const struct p11_pkey *k = kd;

	if (k == NULL || k->pub == NULL)
		return 0;
	if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) && k->fl == NULL)
		return 0;
	return 1;
}

static int km_get_params(void *kd, OSSL_PARAM params[])
{
	struct p11_pkey *k = kd;

	return k != NULL && k->pub != NULL && EVP_PKEY_get_params(k->pub, params);
}

static const OSSL_PARAM km_rsa_params[] = {
	OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
	OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
	OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
	OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
	OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
	OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
	OSSL_PARAM_END
};

static const OSSL_PARAM km_ec_params[] = {
	OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
	OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
	OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
	OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
	OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
	OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
	OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
	OSSL_PARAM_END
};

static const OSSL_PARAM *km_rsa_gettable(void *provctx)
{
	(void)provctx;
	return km_rsa_params;
}

static const OSSL_PARAM *km_ec_gettable(void *provctx)
{
	(void)provctx;
	return km_ec_params;
}

static const OSSL_PARAM *km_rsa_types(int selection)
{
	(void)selection;
	return km_rsa_params + 4;
}

static const OSSL_PARAM *km_ec_types(int selection)
{
	(void)selection;
	return km_ec_params + 4;
}

/*
 * A token key (the handoff of p11_prov_key_new), or a public key from
 * elsewhere (EVP_PKEY_eq exporting a certificate's key to us).
 */
static int km_import(void *kd, int type, int selection, const OSSL_PARAM params[])
{
	struct p11_pkey *k = kd;
	EVP_PKEY_CTX *c = NULL;
	int ok = 0;

	if (k == NULL || k->pub != NULL)
		return 0;
	if (OSSL_PARAM_locate_const(params, HANDOFF_PARAM) != NULL) {
		if (handoff == NULL || handoff->type != type)
			return 0;
		*k = *handoff;
		free(handoff);
		handoff = NULL;
		return 1;
	}
	if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) == 0)
		return 0;
	c = EVP_PKEY_CTX_new_from_name(NULL, type == EVP_PKEY_RSA ? "RSA" : "EC",
				       "provider=default");
	if (c != NULL && EVP_PKEY_fromdata_init(c) > 0 &&
	    EVP_PKEY_fromdata(c, &k->pub, EVP_PKEY_PUBLIC_KEY,
			      (OSSL_PARAM *)params) > 0) {
		k->type = type;
		ok = 1;
	}
	EVP_PKEY_CTX_free(c);
	return ok;
}

static int km_rsa_import(void *kd, int selection, const OSSL_PARAM params[])
{
	return km_import(kd, EVP_PKEY_RSA, selection, params);
}

static int km_ec_import(void *kd, int selection, const OSSL_PARAM params[])
{
	return km_import(kd, EVP_PKEY_EC, selection, params);
}

/* The public half only: a token's private key never leaves it. */
static int km_export(void *kd, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
	struct p11_pkey *k = kd;
	OSSL_PARAM *params = NULL;
	int ok;

	if (k == NULL || k->pub == NULL)
		return 0;
	if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) && k->fl != NULL)
		return 0;
	if (EVP_PKEY_todata(k->pub, EVP_PKEY_PUBLIC_KEY, &params) <= 0)
		return 0;
	ok = cb(params, cbarg);
	OSSL_PARAM_free(params);
	return ok;
}

static int km_match(const void *a, const void *b, int selection)
{
	const struct p11_pkey *x = a, *y = b;

	(void)selection;
	return x != NULL && y != NULL && x->pub != NULL && y->pub != NULL &&
	       EVP_PKEY_eq(x->pub, y->pub) == 1;
}

static const char *km_ec_opname(int op)
{
	return op == OSSL_OP_SIGNATURE ? "ECDSA" : NULL;
}

static const char *km_rsa_opname(int op)
{
	return op == OSSL_OP_SIGNATURE || op == OSSL_OP_ASYM_CIPHER ? "RSA" : NULL;
}

#define KM_COMMON \
	{ OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))km_new }, \
	{ OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))km_free }, \
	{ OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))km_has }, \
	{ OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))km_get_params }, \
	{ OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))km_export }, \
	{ OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))km_match }

static const OSSL_DISPATCH km_rsa[] = {
	KM_COMMON,
	{ OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))km_rsa_gettable },
	{ OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))km_rsa_import },
	{ OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))km_rsa_types },
	{ OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))km_rsa_types },
	{ OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))km_rsa_opname },
	{ 0, NULL }
};

static const OSSL_DISPATCH km_ec[] = {
	KM_COMMON,
	{ OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))km_ec_gettable },
	{ OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))km_ec_import },
	{ OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))km_ec_types },
	{ OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))km_ec_types },
	{ OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))km_ec_opname },
	{ 0, NULL }
};

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
	int pad;

	if (params == NULL)
		return 1;
	p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST);
	if (p != NULL && (!OSSL_PARAM_get_utf8_string_ptr(p, &s) ||
			  !sig_set_md(c, s)))
		return 0;
	p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
	if (p != NULL) { /* PKCS#1 v1.5 is all there is */
		if (p->data_type == OSSL_PARAM_UTF8_STRING)
			return OSSL_PARAM_get_utf8_string_ptr(p, &s) &&
			       strcmp(s, OSSL_PKEY_RSA_PAD_MODE_PKCSV15) == 0;
		return OSSL_PARAM_get_int(p, &pad) && pad == RSA_PKCS1_PADDING;
	}
	return 1;
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
	p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
	if (p != NULL) {
		if (p->data_type == OSSL_PARAM_UTF8_STRING)
			ok = OSSL_PARAM_set_utf8_string(p,
					OSSL_PKEY_RSA_PAD_MODE_PKCSV15);
		else
			ok = OSSL_PARAM_set_int(p, RSA_PKCS1_PADDING);
		if (!ok)
			return 0;
	}
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

static const OSSL_DISPATCH sig_fns[] = {
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
	const OSSL_PARAM *p;
	const char *s;
	int pad;

	(void)vc;
	p = params ? OSSL_PARAM_locate_const(params,
					     OSSL_ASYM_CIPHER_PARAM_PAD_MODE) : NULL;
	if (p == NULL)
		return 1;
	if (p->data_type == OSSL_PARAM_UTF8_STRING)
		return OSSL_PARAM_get_utf8_string_ptr(p, &s) &&
		       strcmp(s, OSSL_PKEY_RSA_PAD_MODE_PKCSV15) == 0;
	return OSSL_PARAM_get_int(p, &pad) && pad == RSA_PKCS1_PADDING;
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
	OSSL_PARAM *p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_PAD_MODE);

	(void)vc;
	if (p == NULL)
		return 1;
	if (p->data_type == OSSL_PARAM_UTF8_STRING)
		return OSSL_PARAM_set_utf8_string(p, OSSL_PKEY_RSA_PAD_MODE_PKCSV15);
	return OSSL_PARAM_set_int(p, RSA_PKCS1_PADDING);
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

static const OSSL_DISPATCH dec_fns[] = {
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

/* ----- the provider ----- */

static const OSSL_ALGORITHM alg_keymgmt[] = {
	{ "RSA:rsaEncryption", PROV_PROPS, km_rsa, "token RSA key" },
	{ "EC:id-ecPublicKey", PROV_PROPS, km_ec, "token EC key" },
	{ NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM alg_signature[] = {
	{ "RSA:rsaEncryption", PROV_PROPS, sig_fns, "RSA PKCS#1 v1.5 in a token" },
	{ "ECDSA", PROV_PROPS, sig_fns, "ECDSA in a token" },
	{ NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM alg_asym[] = {
	{ "RSA:rsaEncryption", PROV_PROPS, dec_fns, "RSA PKCS#1 v1.5 in a token" },
	{ NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM *prov_query(void *provctx, int op, int *no_cache)
{
	(void)provctx;
	*no_cache = 0;
	switch (op) {
	case OSSL_OP_KEYMGMT:
		return alg_keymgmt;
	case OSSL_OP_SIGNATURE:
		return alg_signature;
	case OSSL_OP_ASYM_CIPHER:
		return alg_asym;
	}
	return NULL;
}

static const OSSL_DISPATCH prov_fns[] = {
	{ OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))prov_query },
	{ 0, NULL }
};

static int prov_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
		     const OSSL_DISPATCH **out, void **provctx)
{
	(void)handle;
	(void)in;
	*out = prov_fns;
	*provctx = NULL;
	return 1;
}

/* Load the provider (and the default one, which it relies on) once. */
static int prov_load(void)
{
	if (prov != NULL)
		return 0;
	if (prov_default == NULL &&
	    (prov_default = OSSL_PROVIDER_load(NULL, "default")) == NULL)
		return sa_fail(SA_EINTERNAL, "cannot load OpenSSL's default "
			       "provider");
	if (!OSSL_PROVIDER_add_builtin(NULL, PROV_NAME, prov_init) ||
	    (prov = OSSL_PROVIDER_load(NULL, PROV_NAME)) == NULL)
		return sa_fail(SA_EINTERNAL, "cannot load the provider for token "
			       "keys");
	/* unqualified fetches (keys of the default provider) stay there */
	if (!EVP_set_default_properties(NULL, "?provider=default"))
		return sa_fail(SA_EINTERNAL, "cannot set OpenSSL's default "
			       "properties");
	return 0;
}

/* See p11_int.h. */
void p11_prov_release(void)
{
	if (prov != NULL)
		OSSL_PROVIDER_unload(prov);
	if (prov_default != NULL)
		OSSL_PROVIDER_unload(prov_default);
	prov = prov_default = NULL;
}

/* See p11_int.h. */
int p11_prov_key_new(p11_token *t, CK_OBJECT_HANDLE priv, EVP_PKEY **out)
{
	struct p11_pkey *k = NULL;
	OSSL_PARAM params[2];
	EVP_PKEY_CTX *c = NULL;
	unsigned char *lab = NULL;
	CK_ULONG len = 0;
	int rc, one = 1;
	size_t n;

	*out = NULL;
	rc = prov_load();
	if (rc < 0)
		return rc;
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	rc = p11_pubkey_read(t, priv, &k->pub);
	if (rc < 0)
		goto out;
	k->type = EVP_PKEY_get_base_id(k->pub);
	k->fl = t->mod->fl;
	k->sess = t->sess;
	k->obj = priv;
	if (attr_read(t, priv, CKA_LABEL, "CKA_LABEL", &lab, &len) < 0)
		lab = NULL;
	n = len + strlen(t->label) + 32;
	if ((k->what = malloc(n)) == NULL) {
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	snprintf(k->what, n, "key '%.*s' on token '%s'", lab ? (int)len : 1,
		 lab ? (char *)lab : "?", t->label);
	c = EVP_PKEY_CTX_new_from_name(NULL, k->type == EVP_PKEY_RSA ? "RSA" : "EC",
				       PROV_PROPS);
	params[0] = OSSL_PARAM_construct_int(HANDOFF_PARAM, &one);
	params[1] = OSSL_PARAM_construct_end();
	handoff = k;
	if (c == NULL || EVP_PKEY_fromdata_init(c) <= 0 ||
	    EVP_PKEY_fromdata(c, out, EVP_PKEY_KEYPAIR, params) <= 0 ||
	    handoff != NULL) {
		EVP_PKEY_free(*out);
		*out = NULL;
		rc = sa_fail(SA_EINTERNAL, "cannot make a key handle for a key on "
			     "token '%s'", t->label);
		goto out;
	}
	k = NULL; /* the EVP_PKEY owns it now */
	rc = 0;
out:
	handoff = NULL;
	if (k != NULL)
		km_free(k);
	EVP_PKEY_CTX_free(c);
	free(lab);
	return rc;
}

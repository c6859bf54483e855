/*
 * p11_pub.c - the public half of a token's private key, read from the
 * token: the private object's modulus and exponent (RSA), else the public
 * key object with the same CKA_ID (RSA, EC), else the certificate object
 * with that CKA_ID. It becomes a plain key of OpenSSL's default provider,
 * which the key handles of our provider (p11_prov.c) answer every
 * question about the public key with.
 */
#include "p11_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "sa_err.h"

/*
 * One attribute of o into a new buffer. 1: read; 0: the object does not
 * have it (or will not tell, or it is empty); negative: the token failed
 * (kept for p11_fault()).
 */
static int attr_read(p11_token *t, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type,
		     unsigned char **val, CK_ULONG *len)
{
	int rc = p11_attr_get1(t, o, type, val, len);

	if (rc == SA_ENOTFOUND || (rc == 0 && *len == 0)) {
		free(*val);
		*val = NULL;
		*len = 0;
		return 0;
	}
	return rc < 0 ? rc : 1;
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
	rc = attr_read(t, priv, CKA_ID, &id, &idlen);
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
		rc = attr_read(t, c, CKA_VALUE, &der, &len);
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
		rc = attr_read(t, priv, CKA_MODULUS, &a, &alen);
		if (rc > 0)
			rc = attr_read(t, priv, CKA_PUBLIC_EXPONENT, &b, &blen);
		if (rc == 0 && (rc = sibling(t, priv, CKO_PUBLIC_KEY, &pubo)) > 0) {
			free(a);
			a = NULL;
			rc = attr_read(t, pubo, CKA_MODULUS, &a,
				       &alen);
			if (rc > 0)
				rc = attr_read(t, pubo, CKA_PUBLIC_EXPONENT, &b, &blen);
		}
		if (rc > 0 && !rsa_pub(a, alen, b, blen, out))
			rc = sa_fail(SA_EKEY, "the RSA public key of a key on "
				     "token '%s' is malformed", t->label);
	} else if (kt == CKK_EC) {
		rc = sibling(t, priv, CKO_PUBLIC_KEY, &pubo);
		if (rc > 0)
			rc = attr_read(t, pubo, CKA_EC_PARAMS, &a, &alen);
		if (rc > 0)
			rc = attr_read(t, pubo, CKA_EC_POINT, &b, &blen);
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

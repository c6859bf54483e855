/*
 * p11_cert.c - certificate objects in the token: the issued certificate
 * next to its key (same CKA_ID), CA certificates under a label, and
 * finding the private key that belongs to a public key.
 */
#include "p11_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "sa_err.h"
#include "sa_log.h"

/* Does the token's CKA_EC_POINT (raw or DER-wrapped) equal pt? */
static int ec_point_eq(const unsigned char *v, CK_ULONG len,
		       const unsigned char *pt, size_t ptlen)
{
	ASN1_OCTET_STRING *os;
	const unsigned char *p = v;
	int r = 0;

	if (len == ptlen && memcmp(v, pt, ptlen) == 0)
		return 1;
	os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)len);
	if (os != NULL && p == v + len &&
	    (size_t)ASN1_STRING_length(os) == ptlen &&
	    memcmp(ASN1_STRING_get0_data(os), pt, ptlen) == 0)
		r = 1;
	ASN1_OCTET_STRING_free(os);
	return r;
}

/* Private key objects (class, key type) whose attribute 'a' matches. */
static int find_rsa(p11_token *t, EVP_PKEY *pub, CK_OBJECT_HANDLE *found)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_KEY_TYPE kt = CKK_RSA;
	CK_ATTRIBUTE tmpl[2] = { { CKA_CLASS, &cls, sizeof(cls) },
				 { CKA_KEY_TYPE, &kt, sizeof(kt) } };
	CK_OBJECT_HANDLE *h = NULL;
	CK_ULONG n = 0, i, len;
	BIGNUM *want = NULL, *got = NULL;
	unsigned char *v;
	int rc;

	*found = CK_INVALID_HANDLE;
	if (!EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_RSA_N, &want))
		return sa_fail(SA_ECRYPTO, "cannot read the RSA modulus of the "
			       "certificate");
	rc = p11_find(t, tmpl, 2, &h, &n);
	for (i = 0; rc == 0 && i < n && *found == CK_INVALID_HANDLE; i++) {
		if (p11_attr_get1(t, h[i], CKA_MODULUS, &v, &len) < 0)
			continue;
		got = BN_bin2bn(v, (int)len, got);
		if (got != NULL && BN_cmp(got, want) == 0)
			*found = h[i];
		free(v);
	}
	BN_free(want);
	BN_free(got);
	free(h);
	return rc;
}

static int find_ec(p11_token *t, EVP_PKEY *pub, CK_OBJECT_HANDLE *found)
{
	CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY, pcls = CKO_PRIVATE_KEY;
	CK_KEY_TYPE kt = CKK_EC;
	CK_ATTRIBUTE tmpl[2] = { { CKA_CLASS, &cls, sizeof(cls) },
				 { CKA_KEY_TYPE, &kt, sizeof(kt) } };
	CK_ATTRIBUTE pt[2] = { { CKA_CLASS, &pcls, sizeof(pcls) },
			       { CKA_ID, NULL, 0 } };
	CK_OBJECT_HANDLE *h = NULL, *ph = NULL;
	CK_ULONG n = 0, i, len, pn = 0;
	unsigned char buf[160], *v, *id;
	size_t blen = 0;
	int rc;

	*found = CK_INVALID_HANDLE;
	if (!EVP_PKEY_get_octet_string_param(pub, OSSL_PKEY_PARAM_PUB_KEY, buf,
					     sizeof(buf), &blen))
		return sa_fail(SA_ECRYPTO, "cannot read the EC point of the "
			       "certificate");
	rc = p11_find(t, tmpl, 2, &h, &n);
	for (i = 0; rc == 0 && i < n && *found == CK_INVALID_HANDLE; i++) {
		if (p11_attr_get1(t, h[i], CKA_EC_POINT, &v, &len) < 0)
			continue;
		if (ec_point_eq(v, len, buf, blen) &&
		    p11_attr_get1(t, h[i], CKA_ID, &id, &len) == 0) {
			pt[1].pValue = id;
			pt[1].ulValueLen = len;
			if (p11_find(t, pt, 2, &ph, &pn) == 0 && pn > 0)
				*found = ph[0];
			free(ph);
			ph = NULL;
			free(id);
		}
		free(v);
	}
	free(h);
	return rc;
}

/*
 * The private key in the token whose public half is pub: its CKA_ID
 * (new buffer) and label (new string, "" if none). SA_ENOTFOUND if none.
 */
int p11_key_id_for_pubkey(p11_token *t, EVP_PKEY *pub, unsigned char **id,
			  size_t *idlen, char **label)
{
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	unsigned char *v = NULL, *l = NULL, *der = NULL;
	const unsigned char *p;
	CK_ULONG len = 0, llen = 0;
	EVP_PKEY *plain = NULL;
	int rc, dl;

	*id = NULL;
	*idlen = 0;
	*label = NULL;
	/* a plain provider key, whatever pub is (it may be a token handle) */
	dl = i2d_PUBKEY(pub, &der);
	p = der;
	if (dl <= 0 || (plain = d2i_PUBKEY(NULL, &p, dl)) == NULL) {
		OPENSSL_free(der);
		return sa_fail(SA_ECRYPTO, "cannot read the certificate's public key");
	}
	OPENSSL_free(der);
	switch (EVP_PKEY_get_base_id(plain)) {
	case EVP_PKEY_RSA:
		rc = find_rsa(t, plain, &h);
		break;
	case EVP_PKEY_EC:
		rc = find_ec(t, plain, &h);
		break;
	default:
		rc = sa_fail_noossl(SA_EKEY, "the certificate's key type is "
				    "neither RSA nor EC");
		break;
	}
	EVP_PKEY_free(plain);
	if (rc < 0)
		return rc;
	if (h == CK_INVALID_HANDLE)
		return sa_fail_noossl(SA_ENOTFOUND, "no private key on token '%s' "
				      "matches the certificate's public key",
				      t->label);
	rc = p11_attr_get1(t, h, CKA_ID, &v, &len);
	if (rc == SA_EKEY) /* the token failed: not a fact about the key */
		return sa_fail_noossl(rc, "cannot read the CKA_ID of the key on "
				      "token '%s'", t->label);
	if (rc < 0 || len == 0) {
		free(v);
		return sa_fail_noossl(SA_EKEY, "the matching private key on token "
				      "'%s' has no CKA_ID", t->label);
	}
	rc = p11_attr_get1(t, h, CKA_LABEL, &l, &llen);
	if (rc == SA_EKEY) {
		free(v);
		return sa_fail_noossl(rc, "cannot read the label of the key on "
				      "token '%s'", t->label);
	}
	if (rc < 0)
		l = (unsigned char *)strdup("");
	if (l == NULL) {
		free(v);
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	}
	*id = v;
	*idlen = len;
	*label = (char *)l;
	return 0;
}

/* See p11.h. */
char *p11_key_uri(p11_token *t, EVP_PKEY *key)
{
	unsigned char *id = NULL;
	size_t idlen = 0;
	char *label = NULL, *uri = NULL;

	if (t == NULL || key == NULL)
		return NULL;
	if (p11_key_id_for_pubkey(t, key, &id, &idlen, &label) == 0)
		uri = p11_object_uri(t, CKO_PRIVATE_KEY, label, id, idlen);
	free(id);
	free(label);
	return uri;
}

/*
 * Create a CKO_CERTIFICATE with label and id, then remove older
 * certificate objects with the same label and id (unless they hold the
 * very same certificate, in which case nothing is created).
 */
static int store(p11_token *t, X509 *cert, const char *label,
		 const unsigned char *id, size_t idlen)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE ct = CKC_X_509;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	unsigned char *der = NULL, *subj = NULL, *iss = NULL, *ser = NULL;
	unsigned char *v;
	int dl, sl, il, snl, rc;
	CK_ATTRIBUTE find[3] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_LABEL, (void *)label, strlen(label) },
		{ CKA_ID, (void *)id, idlen },
	};
	CK_ATTRIBUTE tmpl[11];
	CK_OBJECT_HANDLE *old = NULL, obj;
	CK_ULONG nold = 0, i, n = 0, len;
	CK_RV rv;

	rc = p11_need_rw(t, "store a certificate");
	if (rc < 0)
		return rc;
	dl = i2d_X509(cert, &der);
	sl = i2d_X509_NAME(X509_get_subject_name(cert), &subj);
	il = i2d_X509_NAME(X509_get_issuer_name(cert), &iss);
	snl = i2d_ASN1_INTEGER((ASN1_INTEGER *)X509_get0_serialNumber(cert), &ser);
	if (dl <= 0 || sl <= 0 || il <= 0 || snl <= 0) {
		rc = sa_fail(SA_ECRYPTO, "cannot encode the certificate");
		goto out;
	}
	rc = p11_find(t, find, 3, &old, &nold);
	if (rc < 0)
		goto out;
	for (i = 0; i < nold; i++) {
		if (p11_attr_get1(t, old[i], CKA_VALUE, &v, &len) < 0)
			continue;
		if (len == (CK_ULONG)dl && memcmp(v, der, len) == 0) {
			free(v);
			sa_verbose("certificate '%s' already in token '%s'",
				   label, t->label);
			goto out; /* same certificate already there */
		}
		free(v);
	}
	tmpl[n++] = (CK_ATTRIBUTE){ CKA_CLASS, &cls, sizeof(cls) };
	tmpl[n++] = (CK_ATTRIBUTE){ CKA_CERTIFICATE_TYPE, &ct, sizeof(ct) };
	tmpl[n++] = (CK_ATTRIBUTE){ CKA_TOKEN, &yes, sizeof(yes) };
	tmpl[n++] = (CK_ATTRIBUTE){ CKA_PRIVATE, &no, sizeof(no) };
	tmpl[n++] = (CK_ATTRIBUTE){ CKA_LABEL, (void *)label, strlen(label) };
	tmpl[n++] = (CK_ATTRIBUTE){ CKA_ID, (void *)id, idlen };
	tmpl[n++] = (CK_ATTRIBUTE){ CKA_SUBJECT, subj, (CK_ULONG)sl };
	tmpl[n++] = (CK_ATTRIBUTE){ CKA_ISSUER, iss, (CK_ULONG)il };
	tmpl[n++] = (CK_ATTRIBUTE){ CKA_SERIAL_NUMBER, ser, (CK_ULONG)snl };
	tmpl[n++] = (CK_ATTRIBUTE){ CKA_VALUE, der, (CK_ULONG)dl };
	rv = t->mod->fl->C_CreateObject(t->sess, tmpl, n, &obj);
	if (rv != CKR_OK) {
		rc = p11_rv_fail(SA_EKEY, rv, "cannot store certificate '%s' in "
				 "token '%s'", label, t->label);
		goto out;
	}
	for (i = 0; i < nold; i++) {
		rv = t->mod->fl->C_DestroyObject(t->sess, old[i]);
		if (rv != CKR_OK)
			sa_warn("could not remove the older certificate '%s' "
				"from token '%s': %s", label,
				t->label, p11_rv_str(rv));
	}
	rc = 0;
out:
	free(old);
	OPENSSL_free(der);
	OPENSSL_free(subj);
	OPENSSL_free(iss);
	OPENSSL_free(ser);
	return rc;
}

/* See p11.h. */
int p11_cert_store(p11_keyobj *k, X509 *cert, const char *label,
		   char **uri_out)
{
	char *uri = NULL;
	int rc;

	if (uri_out != NULL)
		*uri_out = NULL;
	if (X509_get0_pubkey(cert) == NULL)
		return sa_fail(SA_ECRYPTO, "the certificate has no usable public key");
	if (!p11_key_matches_cert(k->pkey, cert))
		return sa_fail_noossl(SA_EKEY, "the certificate's public key is not "
				      "that of the key '%s' on token '%s'; not "
				      "storing it next to that key", k->label,
				      k->t->label);
	rc = p11_keyobj_need_id(k, "store its certificate");
	if (rc < 0)
		return rc;
	if (label == NULL || label[0] == '\0')
		label = k->label;
	if (label[0] == '\0')
		return sa_fail_noossl(SA_EUSAGE, "the key has no label; give one "
				      "for the certificate");
	rc = store(k->t, cert, label, k->id, k->idlen);
	if (rc < 0)
		return rc;
	if (uri_out != NULL) {
		uri = p11_object_uri(k->t, CKO_CERTIFICATE, label, k->id, k->idlen);
		if (uri == NULL)
			return sa_fail_noossl(SA_ENOMEM, "out of memory");
		*uri_out = uri;
	}
	return 0;
}

/* See p11.h. CKA_ID is the SHA-1 of the public key (RFC 5280 key id). */
int p11_cacert_store(p11_token *t, X509 *cert, const char *label)
{
	unsigned char id[SHA_DIGEST_LENGTH];
	unsigned int idlen = 0;

	if (label == NULL || label[0] == '\0')
		return sa_fail_noossl(SA_EUSAGE, "a CA certificate in the token "
				      "needs a label");
	if (!X509_pubkey_digest(cert, EVP_sha1(), id, &idlen))
		return sa_fail(SA_ECRYPTO, "cannot hash the CA certificate's key");
	return store(t, cert, label, id, idlen);
}

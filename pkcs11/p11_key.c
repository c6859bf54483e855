/*
 * p11_key.c - private keys in the token: look-up by URI (EVP_PKEY handles
 * of our provider, p11_prov.c) and key-pair generation with
 * C_GenerateKeyPair, under a staging label (p11_stage.c takes it from
 * there). The private half is born CKA_SENSITIVE, not CKA_EXTRACTABLE,
 * and never leaves.
 */
#include "p11_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "sa_err.h"
#include "sa_log.h"

/* Appended to a label for a replacement pair until p11_key_commit(). */
#define P11_PROVISIONAL_SUFFIX "~new"

static char *attr_str(const CK_ATTRIBUTE *a)
{
	char *s;

	if (a == NULL)
		return strdup("(any)");
	s = malloc(a->ulValueLen + 1);
	if (s != NULL) {
		memcpy(s, a->pValue, a->ulValueLen);
		s[a->ulValueLen] = '\0';
	}
	return s;
}

/* See p11_int.h. */
int p11_key_raw_match(p11_token *t, const CK_ATTRIBUTE *label,
		      const CK_ATTRIBUTE *id, CK_ULONG *n,
		      CK_ATTRIBUTE *rid, CK_ATTRIBUTE *rlabel,
		      CK_OBJECT_HANDLE *obj)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[3] = { { CKA_CLASS, &cls, sizeof(cls) } };
	CK_OBJECT_HANDLE *h = NULL;
	CK_ULONG nt = 1, len;
	unsigned char *v;
	int rc;

	if (label != NULL)
		tmpl[nt++] = *label;
	if (id != NULL)
		tmpl[nt++] = *id;
	*obj = CK_INVALID_HANDLE;
	rc = p11_find(t, tmpl, nt, &h, n);
	if (rc < 0 || *n != 1)
		goto out;
	*obj = h[0];
	/* an attribute it lacks is empty; a token that fails is an error */
	rc = p11_attr_get1(t, h[0], CKA_ID, &v, &len);
	if (rc == SA_EKEY)
		goto out;
	*rid = (CK_ATTRIBUTE){ CKA_ID, v, len };
	rc = p11_attr_get1(t, h[0], CKA_LABEL, &v, &len);
	if (rc == SA_EKEY)
		goto out;
	*rlabel = (CK_ATTRIBUTE){ CKA_LABEL, v, len };
	rc = 0;
out:
	free(h);
	return rc;
}

/* See p11.h. */
int p11_key_get1(p11_token *t, const char *uri, p11_keyobj **out)
{
	CK_ATTRIBUTE *label, *id, *cls;
	CK_ATTRIBUTE rid = { CKA_ID, NULL, 0 }, rlabel = { CKA_LABEL, NULL, 0 };
	CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
	P11KitUri *u = NULL;
	char *ls = NULL, *is = NULL;
	CK_ULONG n = 0;
	int rc;

	*out = NULL;
	rc = p11_uri_parse(uri, &u);
	if (rc < 0)
		goto out;
	label = p11_kit_uri_get_attribute(u, CKA_LABEL);
	id = p11_kit_uri_get_attribute(u, CKA_ID);
	cls = p11_kit_uri_get_attribute(u, CKA_CLASS);
	if (cls != NULL && (cls->ulValueLen != sizeof(CK_OBJECT_CLASS) ||
	    *(CK_OBJECT_CLASS *)cls->pValue != CKO_PRIVATE_KEY)) {
		rc = sa_fail_noossl(SA_EUSAGE, "the key URI names an object type "
				    "other than type=private");
		goto out;
	}
	rc = p11_key_raw_match(t, label, id, &n, &rid, &rlabel, &obj);
	if (rc < 0)
		goto out;
	ls = attr_str(label);
	is = id ? p11_hex(id->pValue, id->ulValueLen) : strdup("(any)");
	if (n == 0) {
		rc = sa_fail_noossl(SA_ENOTFOUND, "no private key with label %s "
				    "and id %s on token '%s'%s; list-objects "
				    "shows what is there", ls ? ls : "?",
				    is ? is : "?", t->label,
				    t->logged_in ? "" : " (private keys show "
				    "only after login)");
		goto out;
	}
	if (n > 1) {
		rc = sa_fail_noossl(SA_EKEY, "%lu private keys on token '%s' match "
				    "label %s and id %s; add id= (or object=) to "
				    "the URI to pick one", (unsigned long)n,
				    t->label, ls ? ls : "?",
				    is ? is : "?");
		goto out;
	}
	rc = p11_keyobj_make(t, obj, out);
out:
	free(rid.pValue);
	free(rlabel.pValue);
	free(ls);
	free(is);
	if (u != NULL)
		p11_kit_uri_free(u);
	return rc;
}

/* Is the mechanism there, and (RSA) the size in range? */
static int check_mech(p11_token *t, const struct p11_keyspec *ks)
{
	CK_MECHANISM_TYPE m = ks->type == EVP_PKEY_RSA ?
		CKM_RSA_PKCS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN;
	CK_MECHANISM_INFO mi;
	CK_RV rv;

	rv = t->mod->fl->C_GetMechanismInfo(t->slot_id, m, &mi);
	if (rv != CKR_OK)
		return p11_rv_fail(SA_EKEY, rv, "token '%s' cannot generate %s "
				   "keys", t->label,
				   ks->type == EVP_PKEY_RSA ? "RSA" : "EC");
	if (!(mi.flags & CKF_GENERATE_KEY_PAIR))
		return sa_fail_noossl(SA_EKEY, "token '%s' does not generate %s "
				      "key pairs", t->label,
				      ks->type == EVP_PKEY_RSA ? "RSA" : "EC");
	if (ks->type == EVP_PKEY_RSA && mi.ulMaxKeySize != 0 &&
	    ((CK_ULONG)ks->bits > mi.ulMaxKeySize ||
	     (CK_ULONG)ks->bits < mi.ulMinKeySize))
		return sa_fail_noossl(SA_EKEY, "token '%s' generates RSA keys of "
				      "%lu to %lu bits, not %d",
				      t->label, mi.ulMinKeySize,
				      mi.ulMaxKeySize, ks->bits);
	return 0;
}

/* CKA_ID from the public key: SHA-1 of the RSA modulus or the EC point. */
static int derive_id(p11_token *t, CK_OBJECT_HANDLE pub, int type,
		     unsigned char id[SHA_DIGEST_LENGTH])
{
	unsigned char *v = NULL;
	const unsigned char *p;
	ASN1_OCTET_STRING *os = NULL;
	CK_ULONG len = 0;
	int rc;

	rc = p11_attr_get1(t, pub, type == EVP_PKEY_RSA ? CKA_MODULUS :
			   CKA_EC_POINT, &v, &len);
	if (rc < 0)
		return sa_fail_noossl(SA_EKEY, "cannot read the new public key "
				      "from token '%s'", t->label);
	p = v;
	if (type == EVP_PKEY_EC &&
	    (os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)len)) != NULL &&
	    p == v + len)
		SHA1(ASN1_STRING_get0_data(os), (size_t)ASN1_STRING_length(os), id);
	else
		SHA1(v, len, id);
	ASN1_OCTET_STRING_free(os);
	free(v);
	return 0;
}

/* See p11.h. */
char *p11_provisional_label(const char *label)
{
	size_t n = strlen(label), m = strlen(P11_PROVISIONAL_SUFFIX);
	char *s = malloc(n + m + 1);

	if (s != NULL) {
		memcpy(s, label, n);
		memcpy(s + n, P11_PROVISIONAL_SUFFIX, m + 1);
	}
	return s;
}

/* Destroy every object labelled label (what: for the message). */
static int destroy_label(p11_token *t, const char *label, const char *what)
{
	CK_ATTRIBUTE lt = { CKA_LABEL, (void *)label, strlen(label) };
	CK_OBJECT_HANDLE *h = NULL;
	CK_ULONG n = 0, i, gone = 0;
	CK_RV rv;
	int rc;

	rc = p11_find(t, &lt, 1, &h, &n);
	if (rc < 0)
		return rc;
	for (i = 0; i < n; i++) {
		rv = t->mod->fl->C_DestroyObject(t->sess, h[i]);
		if (rv != CKR_OK) {
			rc = p11_rv_fail(SA_EKEY, rv, "cannot remove %s labelled "
					 "'%s' from token '%s'", what, label,
					 t->label);
			goto out;
		}
		gone++;
	}
	if (gone > 0)
		sa_info("removed %s labelled '%s' (%lu object(s)) from token '%s'",
			what, label, (unsigned long)gone, t->label);
out:
	free(h);
	return rc;
}

/*
 * Did the token honour the template? Read back what makes the new private
 * key's value stay inside: sensitive, not extractable, and so always
 * sensitive and never extractable. SA_EKEY when any is not so (or cannot
 * be read): the caller removes the pair.
 */
static int check_custody(p11_token *t, CK_OBJECT_HANDLE priv)
{
	CK_BBOOL sens = CK_FALSE, ext = CK_TRUE, asens = CK_FALSE, next = CK_FALSE;
	CK_ATTRIBUTE a[4] = {
		{ CKA_SENSITIVE, &sens, sizeof(sens) },
		{ CKA_EXTRACTABLE, &ext, sizeof(ext) },
		{ CKA_ALWAYS_SENSITIVE, &asens, sizeof(asens) },
		{ CKA_NEVER_EXTRACTABLE, &next, sizeof(next) },
	};
	CK_RV rv;

	rv = t->mod->fl->C_GetAttributeValue(t->sess, priv, a, 4);
	if (rv != CKR_OK)
		return p11_rv_fail(SA_EKEY, rv, "token '%s' does not tell whether "
				   "the new private key can leave it (CKA_SENSITIVE, "
				   "CKA_EXTRACTABLE, CKA_ALWAYS_SENSITIVE, "
				   "CKA_NEVER_EXTRACTABLE); the new key pair is "
				   "removed", t->label);
	if (sens == CK_TRUE && ext == CK_FALSE && asens == CK_TRUE &&
	    next == CK_TRUE)
		return 0;
	return sa_fail_noossl(SA_EKEY, "token '%s' ignored the key template: "
			      "the new private key has CKA_SENSITIVE=%s, "
			      "CKA_EXTRACTABLE=%s, CKA_ALWAYS_SENSITIVE=%s, "
			      "CKA_NEVER_EXTRACTABLE=%s, so its value could be "
			      "read or wrapped out of the token; the new key pair "
			      "is removed. Use a token (or token policy) that "
			      "keeps generated keys sensitive and unextractable",
			      t->label, sens ? "true" : "false",
			      ext ? "true" : "false", asens ? "true" : "false",
			      next ? "true" : "false");
}

/* See p11.h. */
int p11_keygen(p11_token *t, const char *label, const struct p11_keyspec *ks,
	       int flags, p11_keyobj **out)
{
	int overwrite = (flags & P11_KEYGEN_OVERWRITE) != 0;
	int staged = (flags & P11_KEYGEN_STAGED) != 0;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG bits = (CK_ULONG)ks->bits;
	unsigned char e[] = { 0x01, 0x00, 0x01 };
	unsigned char tmpid[SHA_DIGEST_LENGTH], id[SHA_DIGEST_LENGTH];
	unsigned char *ecp = NULL;
	int ecplen = 0, isrsa = ks->type == EVP_PKEY_RSA;
	CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE *old = NULL;
	CK_ULONG nold = 0, npub, npriv;
	CK_MECHANISM mech = { isrsa ? CKM_RSA_PKCS_KEY_PAIR_GEN :
			      CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE lt = { CKA_LABEL, (void *)label, label ? strlen(label) : 0 };
	CK_ATTRIBUTE gt;
	CK_ATTRIBUTE idattr[2] = { { CKA_ID, id, sizeof(id) },
				   { CKA_ID, id, sizeof(id) } };
	CK_ATTRIBUTE pubt[10], privt[12];
	char *prov = NULL;
	const char *glabel = label;
	CK_RV rv;
	int rc, keep = 0;

	*out = NULL;
	if (label == NULL || label[0] == '\0')
		return sa_fail_noossl(SA_EUSAGE, "a new key needs a label: give "
				      "object=LABEL in the key URI");
	if (ks->type != EVP_PKEY_RSA && ks->type != EVP_PKEY_EC)
		return sa_fail_noossl(SA_EUSAGE, "unsupported key type");
	rc = p11_need_rw(t, "generate a key");
	if (rc < 0)
		return rc;
	if ((t->info.flags & CKF_LOGIN_REQUIRED) && !t->logged_in) {
		CK_SESSION_INFO si;

		if (t->mod->fl->C_GetSessionInfo(t->sess, &si) != CKR_OK ||
		    si.state != CKS_RW_USER_FUNCTIONS)
			return sa_fail_noossl(SA_EPIN, "generating a key on token "
					      "'%s' needs a login",
					      t->label);
	}
	rc = check_mech(t, ks);
	if (rc < 0)
		return rc;
	rc = p11_find(t, &lt, 1, &old, &nold);
	if (rc < 0)
		return rc;
	if (nold > 0 && !overwrite) {
		rc = sa_fail_noossl(SA_EEXIST, "token '%s' already holds %lu "
				    "object(s) labelled '%s'; pick another label "
				    "or ask to overwrite it", t->label,
				    (unsigned long)nold, label);
		goto out;
	}
	if (nold > 0 || staged) {
		/* the old objects stay until p11_key_commit() */
		prov = p11_provisional_label(label);
		if (prov == NULL) {
			rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
			goto out;
		}
		rc = destroy_label(t, prov, "an unfinished new key");
		if (rc < 0)
			goto out;
		glabel = prov;
	}
	gt = (CK_ATTRIBUTE){ CKA_LABEL, (void *)glabel, strlen(glabel) };

	/* a unique provisional id ties the pair together until we know ours */
	if (RAND_bytes(tmpid, sizeof(tmpid)) != 1) {
		rc = sa_fail(SA_ECRYPTO, "no random bytes for a key id");
		goto out;
	}
	npub = 0;
	pubt[npub++] = (CK_ATTRIBUTE){ CKA_TOKEN, &yes, sizeof(yes) };
	pubt[npub++] = (CK_ATTRIBUTE){ CKA_PRIVATE, &no, sizeof(no) };
	pubt[npub++] = (CK_ATTRIBUTE){ CKA_VERIFY, &yes, sizeof(yes) };
	pubt[npub++] = gt;
	pubt[npub++] = (CK_ATTRIBUTE){ CKA_ID, tmpid, sizeof(tmpid) };
	pubt[npub++] = (CK_ATTRIBUTE){ CKA_WRAP, &no, sizeof(no) };
	npriv = 0;
	privt[npriv++] = (CK_ATTRIBUTE){ CKA_TOKEN, &yes, sizeof(yes) };
	privt[npriv++] = (CK_ATTRIBUTE){ CKA_PRIVATE, &yes, sizeof(yes) };
	privt[npriv++] = (CK_ATTRIBUTE){ CKA_SENSITIVE, &yes, sizeof(yes) };
	privt[npriv++] = (CK_ATTRIBUTE){ CKA_EXTRACTABLE, &no, sizeof(no) };
	privt[npriv++] = (CK_ATTRIBUTE){ CKA_SIGN, &yes, sizeof(yes) };
	/* least privilege: no key wrapping with it (tokens default to yes) */
	privt[npriv++] = (CK_ATTRIBUTE){ CKA_UNWRAP, &no, sizeof(no) };
	privt[npriv++] = gt;
	privt[npriv++] = (CK_ATTRIBUTE){ CKA_ID, tmpid, sizeof(tmpid) };
	if (isrsa) {
		pubt[npub++] = (CK_ATTRIBUTE){ CKA_ENCRYPT, &yes, sizeof(yes) };
		pubt[npub++] = (CK_ATTRIBUTE){ CKA_MODULUS_BITS, &bits,
					       sizeof(bits) };
		pubt[npub++] = (CK_ATTRIBUTE){ CKA_PUBLIC_EXPONENT, e, sizeof(e) };
		privt[npriv++] = (CK_ATTRIBUTE){ CKA_DECRYPT, &yes, sizeof(yes) };
	} else {
		ecplen = i2d_ASN1_OBJECT(OBJ_nid2obj(ks->nid), &ecp);
		if (ecplen <= 0) {
			rc = sa_fail(SA_EINTERNAL, "cannot encode the curve OID");
			goto out;
		}
		pubt[npub++] = (CK_ATTRIBUTE){ CKA_EC_PARAMS, ecp,
					       (CK_ULONG)ecplen };
	}
	sa_verbose("generating %s key '%s' in token '%s'", isrsa ? "an RSA" :
		   "an EC", glabel, t->label);
	p11_key_prepare(t->mod->fl, t->sess, CK_INVALID_HANDLE);
	rv = t->mod->fl->C_GenerateKeyPair(t->sess, &mech, pubt, npub, privt,
					  npriv, &pub, &priv);
	if (p11_unload_retry(t->mod->fl, t->sess, rv))
		rv = t->mod->fl->C_GenerateKeyPair(t->sess, &mech, pubt, npub,
						  privt, npriv, &pub, &priv);
	if (rv == CKR_OK) /* the new key is the one loaded now */
		p11_key_prepare(t->mod->fl, t->sess, priv);
	if (rv != CKR_OK) {
		rc = p11_rv_fail(SA_EKEY, rv, "C_GenerateKeyPair (%s %d) on token "
				 "'%s' failed", isrsa ? "RSA" : "EC", ks->bits,
				 t->label);
		goto out;
	}
	rc = check_custody(t, priv);
	if (rc < 0)
		goto out;

	rc = derive_id(t, pub, ks->type, id);
	if (rc < 0)
		goto out;
	rv = t->mod->fl->C_SetAttributeValue(t->sess, pub, &idattr[0], 1);
	if (rv == CKR_OK)
		rv = t->mod->fl->C_SetAttributeValue(t->sess, priv, &idattr[1], 1);
	if (rv != CKR_OK) {
		sa_warn("token '%s' would not set CKA_ID on the new key (%s); "
			"keeping a random id", t->label,
			p11_rv_str(rv));
		memcpy(id, tmpid, sizeof(id));
		t->mod->fl->C_SetAttributeValue(t->sess, pub, &idattr[0], 1);
	}
	keep = 1;
	if (nold > 0)
		sa_info("the new key is labelled '%s' until its certificate is "
			"stored; the %lu object(s) labelled '%s' stay until then",
			glabel, (unsigned long)nold, label);

	rc = p11_keyobj_make(t, priv, out);
	if (rc < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0 && !keep) {
		if (priv != CK_INVALID_HANDLE)
			t->mod->fl->C_DestroyObject(t->sess, priv);
		if (pub != CK_INVALID_HANDLE)
			t->mod->fl->C_DestroyObject(t->sess, pub);
	}
	free(prov);
	free(old);
	OPENSSL_free(ecp);
	return rc;
}

/* See p11.h. */
int p11_keygen_uri(p11_token *t, const char *uri, const struct p11_keyspec *ks,
		   int overwrite, p11_keyobj **out)
{
	CK_ATTRIBUTE *a;
	P11KitUri *u = NULL;
	char *label = NULL;
	int rc;

	*out = NULL;
	rc = p11_uri_parse(uri, &u);
	if (rc < 0)
		return rc;
	if (p11_kit_uri_get_attribute(u, CKA_ID) != NULL) {
		rc = sa_fail_noossl(SA_EUSAGE, "the new key's URI names an id=; "
				    "a new key's CKA_ID is derived from its "
				    "public key: give only object=LABEL");
		goto out;
	}
	a = p11_kit_uri_get_attribute(u, CKA_LABEL);
	if (a == NULL || a->ulValueLen == 0) {
		rc = sa_fail_noossl(SA_EUSAGE, "the new key's URI has no object= "
				    "label; write pkcs11:token=...;object=LABEL");
		goto out;
	}
	label = attr_str(a);
	if (label == NULL) {
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	rc = p11_keygen(t, label, ks, overwrite, out);
out:
	free(label);
	p11_kit_uri_free(u);
	return rc;
}

/* See p11.h. */
int p11_key_matches_cert(EVP_PKEY *key, X509 *cert)
{
	unsigned char *a = NULL, *b = NULL;
	int la, lb, r = 0;
	EVP_PKEY *cp = cert ? X509_get0_pubkey(cert) : NULL;

	if (key == NULL || cp == NULL)
		return 0;
	/*
	 * The keys compared as keys (no encoding: i2d_PUBKEY runs OpenSSL
	 * 3's encoder set-up, about 1 million instructions a key); only a
	 * comparison that does not say "equal" is checked again on the
	 * DER forms, so a provider that cannot compare costs time, never a
	 * wrong "no".
	 */
	if (EVP_PKEY_eq(key, cp) == 1)
		return 1;
	la = i2d_PUBKEY(key, &a);
	lb = i2d_PUBKEY(cp, &b);
	if (la > 0 && la == lb && memcmp(a, b, (size_t)la) == 0)
		r = 1;
	OPENSSL_free(a);
	OPENSSL_free(b);
	return r;
}

/*
 * p11_keyobj.c - the custody object: one key pair in a token (token,
 * CKA_ID, label, canonical URI, EVP_PKEY handle), made once where the key
 * is found or generated and taken by everything that stores, commits or
 * destroys, so that none of them finds the key again by its public key.
 */
#include "p11_int.h"

#include <stdlib.h>
#include <string.h>

#include "sa_err.h"

/* See p11_int.h. */
int p11_keyobj_make(p11_token *t, CK_OBJECT_HANDLE priv, p11_keyobj **out)
{
	p11_keyobj *k;
	unsigned char *v = NULL;
	CK_ULONG len = 0;
	int rc;

	*out = NULL;
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	k->t = t;
	k->priv = priv;
	rc = p11_attr_get1(t, priv, CKA_ID, &v, &len);
	if (rc == SA_ENOMEM)
		goto out;
	if (rc == SA_EKEY) { /* the token failed: not a fact about the key */
		rc = sa_fail_noossl(rc, "cannot read the CKA_ID of a private key "
				    "on token '%s'", t->label);
		goto out;
	}
	if (rc == 0) {
		k->id = v;
		k->idlen = len;
		v = NULL;
	}
	rc = p11_attr_get1(t, priv, CKA_LABEL, &v, &len);
	if (rc == SA_ENOMEM)
		goto out;
	if (rc == SA_EKEY) {
		rc = sa_fail_noossl(rc, "cannot read the label of a private key "
				    "on token '%s'", t->label);
		goto out;
	}
	rc = p11_keyobj_relabelled(k, rc == 0 ? (const char *)v : "",
				   rc == 0 ? len : 0);
	if (rc < 0)
		goto out;
	rc = p11_prov_key_new(t, priv, &k->pkey);
	if (rc < 0)
		goto out;
	*out = k;
	k = NULL;
out:
	free(v);
	p11_keyobj_free(k);
	return rc;
}

/* See p11_int.h. */
int p11_keyobj_relabelled(p11_keyobj *k, const char *label, size_t len)
{
	char *l, *uri;

	l = malloc(len + 1);
	if (l == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	memcpy(l, label, len);
	l[len] = '\0';
	uri = p11_object_uri(k->t, CKO_PRIVATE_KEY, l, k->id, k->idlen);
	if (uri == NULL) {
		free(l);
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	}
	free(k->label);
	free(k->uri);
	k->label = l;
	k->uri = uri;
	return 0;
}

/* See p11_int.h. */
int p11_keyobj_need_id(const p11_keyobj *k, const char *what)
{
	if (k->idlen > 0)
		return 0;
	return sa_fail_noossl(SA_EKEY, "the key '%s' on token '%s' has no CKA_ID, "
			      "so its objects cannot be told apart: cannot %s; "
			      "give it an id (pkcs11-tool --set-id) first",
			      k->label, k->t->label, what);
}

/* See p11.h. */
void p11_keyobj_free(p11_keyobj *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	free(k->id);
	free(k->label);
	free(k->uri);
	free(k);
}

/* See p11.h. */
p11_token *p11_keyobj_get0_token(const p11_keyobj *k)
{
	return k != NULL ? k->t : NULL;
}

/* See p11.h. */
EVP_PKEY *p11_keyobj_get0_pkey(const p11_keyobj *k)
{
	return k != NULL ? k->pkey : NULL;
}

/* See p11.h. */
const unsigned char *p11_keyobj_get0_id(const p11_keyobj *k, size_t *len)
{
	if (len != NULL)
		*len = k != NULL ? k->idlen : 0;
	return k != NULL ? k->id : NULL;
}

/* See p11.h. */
const char *p11_keyobj_get0_label(const p11_keyobj *k)
{
	return k != NULL ? k->label : NULL;
}

/* See p11.h. */
const char *p11_keyobj_get0_uri(const p11_keyobj *k)
{
	return k != NULL ? k->uri : NULL;
}

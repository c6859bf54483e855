/*
 * p11_stage.c - the life of a new key after its generation: a key pair
 * waits under its staging label (LABEL~new, p11_key.c) until its
 * certificate is stored (or its request written); p11_key_commit() then
 * gives it the label and removes the old pair of that label;
 * p11_staged_get1() and p11_newkey_get1() find what an earlier,
 * interrupted run left, so that the next run reuses or finishes it;
 * p11_key_destroy() removes a key no CA certified.
 */
#include "p11_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "sa_err.h"
#include "sa_log.h"

/* See p11_int.h. */
int p11_find_by_id(p11_token *t, CK_ATTRIBUTE *tmpl, CK_ULONG n,
		   const unsigned char *id, size_t idlen, int same,
		   CK_OBJECT_HANDLE **out, CK_ULONG *count)
{
	CK_OBJECT_HANDLE *h = NULL;
	CK_ULONG nh = 0, i, k = 0, len;
	unsigned char *v;
	int rc, eq;

	*out = NULL;
	*count = 0;
	rc = p11_find(t, tmpl, n, &h, &nh);
	if (rc < 0)
		return rc;
	for (i = 0; i < nh; i++) {
		rc = p11_attr_get1(t, h[i], CKA_ID, &v, &len);
		if (rc == SA_EKEY) { /* the token failed: no answer is right */
			free(h);
			return sa_fail_noossl(rc, "cannot read the CKA_ID of an "
					      "object on token '%s'", t->label);
		}
		if (rc < 0) {
			v = NULL;
			len = 0;
		}
		eq = len == idlen && (len == 0 || memcmp(v, id, len) == 0);
		free(v);
		if (eq == same)
			h[k++] = h[i];
	}
	*out = h;
	*count = k;
	return 0;
}

/* See p11.h. */
int p11_key_commit(p11_token *t, EVP_PKEY *key, const char *label,
		   char **uri_out)
{
	CK_ATTRIBUTE lt = { CKA_LABEL, (void *)label, label ? strlen(label) : 0 };
	CK_ATTRIBUTE cur;
	CK_OBJECT_HANDLE *h = NULL;
	CK_OBJECT_CLASS *cls = NULL;
	CK_ULONG n = 0, i;
	unsigned char *id = NULL;
	size_t idlen = 0;
	char *clabel = NULL, *uri = NULL;
	CK_RV rv;
	int rc;

	if (uri_out != NULL)
		*uri_out = NULL;
	if (label == NULL || label[0] == '\0')
		return sa_fail_noossl(SA_EUSAGE, "replacing a key needs its label");
	rc = p11_need_rw(t, "replace a key");
	if (rc < 0)
		return rc;
	rc = p11_key_id_for_pubkey(t, key, &id, &idlen, &clabel);
	if (rc < 0)
		goto out;

	/*
	 * The new pair is complete (its certificate is stored, or for
	 * mkrequest its request written): first the old key pair and
	 * certificate of that label go, so that the label never names two
	 * keys; an interruption here leaves the new pair whole under its
	 * staging label, and p11_staged_get1() finds it certified.
	 */
	rc = p11_find_by_id(t, &lt, 1, id, idlen, 0, &h, &n);
	if (rc < 0)
		goto out;
	for (i = 0; i < n; i++) {
		rv = t->mod->fl->C_DestroyObject(t->sess, h[i]);
		if (rv != CKR_OK) {
			rc = p11_rv_fail(SA_EKEY, rv, "cannot remove an old object "
					 "labelled '%s' from token '%s'; the new key "
					 "and its certificate wait as '%s': run the "
					 "same command again to finish", label,
					 t->label, clabel);
			goto out;
		}
	}
	if (n > 0)
		sa_info("replaced %lu old object(s) labelled '%s' on token '%s'",
			(unsigned long)n, label, t->label);
	free(h);
	h = NULL;

	/*
	 * then the new objects take the label, the private key last: while
	 * it keeps the staging label, a retry finds the pair unfinished
	 */
	if (strcmp(clabel, label) != 0) {
		CK_OBJECT_CLASS pcls = CKO_PRIVATE_KEY;
		CK_ULONG pass, npriv = 0;

		cur = (CK_ATTRIBUTE){ CKA_LABEL, clabel, strlen(clabel) };
		rc = p11_find_by_id(t, &cur, 1, id, idlen, 1, &h, &n);
		if (rc < 0)
			goto out;
		/* each object's class, read once: a failed read is an error */
		cls = calloc(n ? n : 1, sizeof(*cls));
		if (cls == NULL) {
			rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
			goto out;
		}
		for (i = 0; i < n; i++) {
			CK_ATTRIBUTE ca = { CKA_CLASS, &cls[i], sizeof(cls[i]) };

			rv = t->mod->fl->C_GetAttributeValue(t->sess, h[i], &ca, 1);
			if (rv != CKR_OK) {
				rc = p11_rv_fail(SA_EKEY, rv, "cannot read the class "
						 "of an object of the new key '%s' "
						 "on token '%s'; run the same "
						 "command again to finish", clabel,
						 t->label);
				goto out;
			}
		}
		for (pass = 0; pass < 2; pass++)
			for (i = 0; i < n; i++) {
				if ((cls[i] == pcls) != (pass == 1))
					continue;
				npriv += pass == 1;
				rv = t->mod->fl->C_SetAttributeValue(t->sess, h[i],
								     &lt, 1);
				if (rv != CKR_OK) {
					rc = p11_rv_fail(SA_EKEY, rv, "token '%s' "
							 "would not relabel the "
							 "new key '%s' as '%s'; run "
							 "the same command again "
							 "to finish",
							 t->label,
							 clabel, label);
					goto out;
				}
			}
		if (npriv == 0) { /* never "done" without the key itself */
			rc = sa_fail_noossl(SA_EKEY, "the new key '%s' is not on "
					    "token '%s' any more; nothing was "
					    "relabelled", clabel, t->label);
			goto out;
		}
	}
	if (uri_out != NULL) {
		uri = p11_object_uri(t, CKO_PRIVATE_KEY, label, id, idlen);
		if (uri == NULL) {
			rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
			goto out;
		}
		*uri_out = uri;
	}
	rc = 0;
out:
	free(h);
	free(cls);
	free(id);
	free(clabel);
	return rc;
}

/* See p11.h. */
int p11_key_destroy(p11_token *t, EVP_PKEY *key)
{
	CK_OBJECT_CLASS cls[] = { CKO_CERTIFICATE, CKO_PRIVATE_KEY,
				  CKO_PUBLIC_KEY };
	CK_ATTRIBUTE ct = { CKA_CLASS, NULL, sizeof(CK_OBJECT_CLASS) };
	CK_OBJECT_HANDLE *h = NULL;
	CK_ULONG n = 0, i;
	unsigned char *id = NULL;
	size_t idlen = 0, c;
	char *label = NULL;
	CK_RV rv;
	int rc;

	rc = p11_need_rw(t, "remove a key");
	if (rc < 0)
		return rc;
	rc = p11_key_id_for_pubkey(t, key, &id, &idlen, &label);
	if (rc < 0)
		return rc;
	for (c = 0; c < sizeof(cls) / sizeof(cls[0]); c++) {
		ct.pValue = &cls[c];
		free(h);
		h = NULL;
		rc = p11_find_by_id(t, &ct, 1, id, idlen, 1, &h, &n);
		if (rc < 0)
			goto out;
		if (cls[c] == CKO_CERTIFICATE && n > 0) {
			rc = sa_fail_noossl(SA_EEXIST, "the key '%s' on token '%s' "
					    "has a certificate; not removing it",
					    label, t->label);
			goto out;
		}
		for (i = 0; i < n; i++) {
			rv = t->mod->fl->C_DestroyObject(t->sess, h[i]);
			if (rv != CKR_OK) {
				rc = p11_rv_fail(SA_EKEY, rv, "cannot remove the "
						 "key '%s' from token '%s'", label,
						 t->label);
				goto out;
			}
		}
	}
	rc = 0;
out:
	free(h);
	free(id);
	free(label);
	return rc;
}

/* Exactly one private key labelled label: its handle and canonical URI. */
static int get1_by_label(p11_token *t, const char *label, EVP_PKEY **out,
			 char **uri_out, CK_ULONG *count)
{
	CK_ATTRIBUTE lt = { CKA_LABEL, (void *)label, strlen(label) };
	CK_ATTRIBUTE rid = { CKA_ID, NULL, 0 }, rlabel = { CKA_LABEL, NULL, 0 };
	CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
	EVP_PKEY *pk = NULL;
	char *uri = NULL;
	int rc;

	rc = p11_key_raw_match(t, &lt, NULL, count, &rid, &rlabel, &obj);
	if (rc < 0 || *count != 1)
		goto out;
	rc = p11_prov_key_new(t, obj, &pk);
	if (rc < 0)
		goto out;
	uri = p11_object_uri(t, CKO_PRIVATE_KEY, label, rid.pValue,
			     rid.ulValueLen);
	if (uri == NULL) {
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	*out = pk;
	*uri_out = uri;
	pk = NULL;
	uri = NULL;
out:
	EVP_PKEY_free(pk);
	free(uri);
	free(rid.pValue);
	free(rlabel.pValue);
	return rc;
}

/* See p11.h. */
int p11_newkey_get1(p11_token *t, const char *label, int overwrite,
		    EVP_PKEY **out, char **uri_out)
{
	EVP_PKEY *pk = NULL;
	char *prov = NULL, *uri = NULL;
	const char *used = label;
	CK_ULONG n = 0;
	int rc;

	*out = NULL;
	if (uri_out != NULL)
		*uri_out = NULL;
	if (label == NULL || label[0] == '\0')
		return sa_fail_noossl(SA_EUSAGE, "the new key's URI has no object= "
				      "label; write pkcs11:token=...;object=LABEL");
	(void)overwrite;
	/* a staged key (every --new-key is made so) comes first */
	prov = p11_provisional_label(label);
	if (prov == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	rc = get1_by_label(t, prov, &pk, &uri, &n);
	if (rc < 0)
		goto out;
	if (n > 1) {
		rc = sa_fail_noossl(SA_EKEY, "token '%s' holds %lu private "
				    "keys labelled '%s'; expected one "
				    "unfinished new key", t->label,
				    (unsigned long)n, prov);
		goto out;
	}
	if (pk != NULL)
		used = prov;
	if (pk == NULL) {
		rc = get1_by_label(t, label, &pk, &uri, &n);
		if (rc < 0)
			goto out;
		if (n == 0) {
			rc = sa_fail_noossl(SA_ENOTFOUND, "token '%s' holds no "
					    "private key labelled '%s' to continue "
					    "with%s", t->label, label,
					    t->logged_in ? "" : " (private keys "
					    "show only after login)");
			goto out;
		}
		if (n > 1) {
			rc = sa_fail_noossl(SA_EKEY, "token '%s' holds %lu private "
					    "keys labelled '%s'; name the one to "
					    "use by its id= (list-objects shows "
					    "them)", t->label,
					    (unsigned long)n, label);
			goto out;
		}
	}
	sa_verbose("continuing with the key '%s' already in token '%s'",
		   used, t->label);
	*out = pk;
	pk = NULL;
	if (uri_out != NULL) {
		*uri_out = uri;
		uri = NULL;
	}
	rc = 0;
out:
	EVP_PKEY_free(pk);
	free(uri);
	free(prov);
	return rc;
}

/* The CKA_ID of every object of class cls carrying id (any label). */
static int count_class_id(p11_token *t, CK_OBJECT_CLASS cls,
			  const unsigned char *id, size_t idlen, CK_ULONG *n)
{
	CK_ATTRIBUTE ct = { CKA_CLASS, &cls, sizeof(cls) };
	CK_OBJECT_HANDLE *h = NULL;
	int rc;

	rc = p11_find_by_id(t, &ct, 1, id, idlen, 1, &h, n);
	free(h);
	return rc;
}

/*
 * A key generation interrupted while it gave the pair its CKA_ID (the
 * token failed between the two C_SetAttributeValue) leaves the public key
 * with another CKA_ID than the private one. Everything under the staging
 * label belongs to that one pair (p11_keygen clears the label before it
 * generates), so the public key objects there take the private key's
 * CKA_ID again; without it an EC key's public half (and the label's
 * objects at commit) would not be found.
 */
static int staged_unify_ids(p11_token *t, const char *prov)
{
	CK_OBJECT_CLASS pcls = CKO_PRIVATE_KEY, ucls = CKO_PUBLIC_KEY;
	CK_ATTRIBUTE tmpl[2] = { { CKA_LABEL, (void *)prov, strlen(prov) },
				 { CKA_CLASS, &pcls, sizeof(pcls) } };
	CK_OBJECT_HANDLE *h = NULL, *pubs = NULL;
	CK_ULONG n = 0, npub = 0, i;
	CK_ATTRIBUTE ida;
	unsigned char *id = NULL;
	CK_ULONG idlen = 0;
	CK_RV rv;
	int rc;

	rc = p11_find(t, tmpl, 2, &h, &n);
	if (rc < 0 || n != 1)
		goto out;
	rc = p11_attr_get1(t, h[0], CKA_ID, &id, &idlen);
	if (rc < 0) {
		rc = rc == SA_ENOTFOUND ? 0 : rc;
		goto out;
	}
	tmpl[1].pValue = &ucls;
	rc = p11_find_by_id(t, tmpl, 2, id, idlen, 0, &pubs, &npub);
	ida = (CK_ATTRIBUTE){ CKA_ID, id, idlen };
	for (i = 0; rc == 0 && i < npub; i++) {
		rv = t->mod->fl->C_SetAttributeValue(t->sess, pubs[i], &ida, 1);
		if (rv != CKR_OK)
			rc = p11_rv_fail(SA_EKEY, rv, "cannot give the public key "
					 "'%s' on token '%s' its private key's "
					 "CKA_ID", prov, t->label);
		else
			sa_verbose("the public key '%s' takes its private key's "
				   "CKA_ID again", prov);
	}
out:
	free(h);
	free(pubs);
	free(id);
	return rc;
}

/* See p11.h. */
int p11_staged_get1(p11_token *t, const char *label, EVP_PKEY **out,
		    char **uri_out, int *certified, int *label_used)
{
	CK_ATTRIBUTE lt = { CKA_LABEL, (void *)label, label ? strlen(label) : 0 };
	CK_OBJECT_HANDLE *h = NULL;
	EVP_PKEY *pk = NULL;
	unsigned char *id = NULL;
	size_t idlen = 0;
	char *prov = NULL, *uri = NULL, *clabel = NULL;
	CK_ULONG n = 0;
	int rc;

	*out = NULL;
	*uri_out = NULL;
	*certified = 0;
	*label_used = 0;
	if (label == NULL || label[0] == '\0')
		return sa_fail_noossl(SA_EUSAGE, "the new key's URI has no object= "
				      "label; write pkcs11:token=...;object=LABEL");
	prov = p11_provisional_label(label);
	if (prov == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	rc = p11_find(t, &lt, 1, &h, &n);
	if (rc < 0)
		goto out;
	*label_used = n > 0;
	free(h);
	h = NULL;
	rc = staged_unify_ids(t, prov);
	if (rc < 0)
		goto out;
	rc = get1_by_label(t, prov, &pk, &uri, &n);
	if (rc < 0)
		goto out;
	if (n > 1) {
		rc = sa_fail_noossl(SA_EKEY, "token '%s' holds %lu private keys "
				    "labelled '%s'; expected at most one unfinished "
				    "new key: remove the extra ones (list-objects "
				    "shows them)", t->label,
				    (unsigned long)n, prov);
		goto out;
	}
	if (pk == NULL) {
		rc = 0;
		goto out;
	}
	rc = p11_key_id_for_pubkey(t, pk, &id, &idlen, &clabel);
	if (rc < 0)
		goto out;
	rc = count_class_id(t, CKO_CERTIFICATE, id, idlen, &n);
	if (rc < 0)
		goto out;
	*certified = n > 0;
	/*
	 * The label is taken only by objects of another key: those of this
	 * key there are a relabelling an interruption left half done
	 */
	rc = p11_find_by_id(t, &lt, 1, id, idlen, 0, &h, &n);
	if (rc < 0)
		goto out;
	*label_used = n > 0;
	*out = pk;
	*uri_out = uri;
	pk = NULL;
	uri = NULL;
	rc = 1;
out:
	EVP_PKEY_free(pk);
	free(uri);
	free(h);
	free(id);
	free(clabel);
	free(prov);
	return rc;
}

/* See p11.h. */
char *p11_cert_uri(p11_token *t, EVP_PKEY *key)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_ATTRIBUTE ct = { CKA_CLASS, &cls, sizeof(cls) };
	CK_OBJECT_HANDLE *h = NULL;
	CK_ULONG n = 0, len = 0;
	unsigned char *id = NULL, *l = NULL;
	size_t idlen = 0;
	char *klabel = NULL, *label = NULL, *uri = NULL;

	if (p11_key_id_for_pubkey(t, key, &id, &idlen, &klabel) < 0)
		goto out;
	if (p11_find_by_id(t, &ct, 1, id, idlen, 1, &h, &n) < 0 || n == 0)
		goto out;
	if (p11_attr_get1(t, h[0], CKA_LABEL, &l, &len) < 0)
		goto out;
	label = malloc(len + 1);
	if (label == NULL)
		goto out;
	memcpy(label, l, len);
	label[len] = '\0';
	uri = p11_object_uri(t, CKO_CERTIFICATE, label, id, idlen);
out:
	free(h);
	free(id);
	free(l);
	free(klabel);
	free(label);
	return uri;
}

/*
 * p11_stage.c - the life of a new key after its generation: a key pair
 * waits under its staging label (LABEL~new, p11_key.c) until its
 * certificate is stored (or its request written); p11_key_commit() then
 * gives it the label and retires or removes the old pair of that label
 * (p11_retire.c);
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

/*
 * k's objects under its current label cur (not the private key): they take
 * label. An object of k already labelled label is not under cur.
 */
static int relabel_rest(p11_keyobj *k, const char *cur, CK_ATTRIBUTE *lt)
{
	p11_token *t = k->t;
	CK_ATTRIBUTE ct = { CKA_LABEL, (void *)cur, strlen(cur) };
	CK_OBJECT_HANDLE *h = NULL;
	CK_ULONG n = 0, i;
	CK_RV rv;
	int rc;

	rc = p11_find_by_id(t, &ct, 1, k->id, k->idlen, 1, &h, &n);
	for (i = 0; rc == 0 && i < n; i++) {
		if (h[i] == k->priv)
			continue;
		rv = t->mod->fl->C_SetAttributeValue(t->sess, h[i], lt, 1);
		if (rv != CKR_OK)
			rc = p11_rv_fail(SA_EKEY, rv, "token '%s' would not relabel "
					 "the new key's objects '%s' as '%.*s'; run "
					 "the same command again to finish",
					 t->label, cur, (int)lt->ulValueLen,
					 (const char *)lt->pValue);
	}
	free(h);
	return rc;
}

/* See p11.h. */
int p11_key_commit(p11_keyobj *k, const char *label, int keep_old)
{
	p11_token *t = k->t;
	CK_ATTRIBUTE lt = { CKA_LABEL, (void *)label, label ? strlen(label) : 0 };
	unsigned char *cur = NULL;
	CK_ULONG len = 0;
	CK_RV rv;
	int rc, moving;

	if (label == NULL || label[0] == '\0')
		return sa_fail_noossl(SA_EUSAGE, "replacing a key needs its label");
	if (keep_old < 0)
		return sa_fail_noossl(SA_EUSAGE, "KeepOld must be 0 or more, not %d",
				      keep_old);
	rc = p11_need_rw(t, "replace a key");
	if (rc < 0)
		return rc;
	rc = p11_keyobj_need_id(k, "give it the label");
	if (rc < 0)
		return rc;
	/* the private key's label as the token has it now (a retry's) */
	rc = p11_attr_get1(t, k->priv, CKA_LABEL, &cur, &len);
	if (rc == SA_ENOTFOUND) {
		rc = 0;
		cur = (unsigned char *)strdup("");
		if (cur == NULL)
			rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
	}
	if (rc < 0) {
		if (rc == SA_EKEY)
			rc = sa_fail_noossl(rc, "the new key '%s' cannot be read on "
					    "token '%s'; nothing was relabelled; "
					    "run the same command again to finish",
					    k->label, t->label);
		goto out;
	}
	moving = len != lt.ulValueLen || memcmp(cur, label, len) != 0;

	/*
	 * The new pair is complete (its certificate is stored, or for
	 * mkrequest its request written). First the label's old pair leaves
	 * it (retired whole under its own label, or destroyed), its private
	 * key first, so that the label never names two keys; an interruption
	 * until the new private key has the label leaves the new pair whole
	 * under its staging label, which p11_staged_get1() finds certified:
	 * a retry finishes.
	 */
	rc = p11_retire_old_priv(k, label, keep_old);
	if (rc == 0)
		rc = p11_retire_old_rest(k, label, keep_old);
	if (rc < 0)
		goto out;
	/* then the new objects take the label, the private key last */
	if (moving) {
		rc = relabel_rest(k, (const char *)cur, &lt);
		if (rc < 0)
			goto out;
		rv = t->mod->fl->C_SetAttributeValue(t->sess, k->priv, &lt, 1);
		if (rv != CKR_OK) {
			rc = p11_rv_fail(SA_EKEY, rv, "token '%s' would not relabel "
					 "the new key '%s' as '%s'; run the same "
					 "command again to finish", t->label,
					 (const char *)cur, label);
			goto out;
		}
		rc = p11_keyobj_relabelled(k, label, lt.ulValueLen);
		if (rc < 0)
			goto out;
	}
	/*
	 * retired pairs beyond keep_old go; the new key has the label now, so
	 * a failure here is housekeeping left for the next commit, not a
	 * failed commit (a retry would find the label taken)
	 */
	if (p11_retire_prune(t, label, keep_old) < 0) {
		sa_warn("the new key has the label '%s' on token '%s', but retired "
			"keys beyond KeepOld %d could not all be removed (%s); the "
			"next renewal tries again", label, t->label, keep_old,
			sa_errmsg());
		sa_err_clear();
	}
	rc = 0;
out:
	free(cur);
	return rc;
}

/* See p11.h. */
int p11_key_destroy(p11_keyobj *k)
{
	CK_OBJECT_CLASS cls[] = { CKO_CERTIFICATE, CKO_PRIVATE_KEY,
				  CKO_PUBLIC_KEY };
	CK_ATTRIBUTE ct = { CKA_CLASS, NULL, sizeof(CK_OBJECT_CLASS) };
	p11_token *t = k->t;
	CK_OBJECT_HANDLE *h = NULL;
	CK_ULONG n = 0, i;
	size_t c;
	CK_RV rv;
	int rc;

	rc = p11_need_rw(t, "remove a key");
	if (rc < 0)
		return rc;
	rc = p11_keyobj_need_id(k, "remove it");
	if (rc < 0)
		return rc;
	for (c = 0; c < sizeof(cls) / sizeof(cls[0]); c++) {
		ct.pValue = &cls[c];
		free(h);
		h = NULL;
		rc = p11_find_by_id(t, &ct, 1, k->id, k->idlen, 1, &h, &n);
		if (rc < 0)
			goto out;
		if (cls[c] == CKO_CERTIFICATE && n > 0) {
			rc = sa_fail_noossl(SA_EEXIST, "the key '%s' on token '%s' "
					    "has a certificate; not removing it",
					    k->label, t->label);
			goto out;
		}
		for (i = 0; i < n; i++) {
			rv = t->mod->fl->C_DestroyObject(t->sess, h[i]);
			if (rv != CKR_OK) {
				rc = p11_rv_fail(SA_EKEY, rv, "cannot remove the "
						 "key '%s' from token '%s'",
						 k->label, t->label);
				goto out;
			}
		}
	}
	rc = 0;
out:
	free(h);
	return rc;
}

/* Exactly one private key labelled label: its custody object. */
static int get1_by_label(p11_token *t, const char *label, p11_keyobj **out,
			 CK_ULONG *count)
{
	CK_ATTRIBUTE lt = { CKA_LABEL, (void *)label, strlen(label) };
	CK_ATTRIBUTE rid = { CKA_ID, NULL, 0 }, rlabel = { CKA_LABEL, NULL, 0 };
	CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
	int rc;

	rc = p11_key_raw_match(t, &lt, NULL, count, &rid, &rlabel, &obj);
	if (rc == 0 && *count == 1)
		rc = p11_keyobj_make(t, obj, out);
	free(rid.pValue);
	free(rlabel.pValue);
	return rc;
}

/* See p11.h. */
int p11_newkey_get1(p11_token *t, const char *label, int overwrite,
		    p11_keyobj **out)
{
	p11_keyobj *pk = NULL;
	char *prov = NULL;
	const char *used = label;
	CK_ULONG n = 0;
	int rc;

	*out = NULL;
	if (label == NULL || label[0] == '\0')
		return sa_fail_noossl(SA_EUSAGE, "the new key's URI has no object= "
				      "label; write pkcs11:token=...;object=LABEL");
	(void)overwrite;
	/* a staged key (every --new-key is made so) comes first */
	prov = p11_provisional_label(label);
	if (prov == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	rc = get1_by_label(t, prov, &pk, &n);
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
		rc = get1_by_label(t, label, &pk, &n);
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
	rc = 0;
out:
	p11_keyobj_free(pk);
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
int p11_staged_get1(p11_token *t, const char *label, p11_keyobj **out,
		    int *certified, int *label_used)
{
	CK_ATTRIBUTE lt = { CKA_LABEL, (void *)label, label ? strlen(label) : 0 };
	CK_OBJECT_HANDLE *h = NULL;
	p11_keyobj *pk = NULL;
	char *prov = NULL;
	CK_ULONG n = 0;
	int rc;

	*out = NULL;
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
	rc = get1_by_label(t, prov, &pk, &n);
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
	rc = p11_keyobj_need_id(pk, "tell its objects from the old key's");
	if (rc < 0)
		goto out;
	rc = count_class_id(t, CKO_CERTIFICATE, pk->id, pk->idlen, &n);
	if (rc < 0)
		goto out;
	*certified = n > 0;
	/*
	 * The label is taken only by objects of another key: those of this
	 * key there are a relabelling an interruption left half done
	 */
	rc = p11_find_by_id(t, &lt, 1, pk->id, pk->idlen, 0, &h, &n);
	if (rc < 0)
		goto out;
	*label_used = n > 0;
	*out = pk;
	pk = NULL;
	rc = 1;
out:
	p11_keyobj_free(pk);
	free(h);
	free(prov);
	return rc;
}

/* See p11.h. */
char *p11_cert_uri(const p11_keyobj *k)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_ATTRIBUTE ct = { CKA_CLASS, &cls, sizeof(cls) };
	CK_OBJECT_HANDLE *h = NULL;
	CK_ULONG n = 0, len = 0;
	unsigned char *l = NULL;
	char *uri = NULL;

	if (k == NULL || k->idlen == 0)
		return NULL;
	if (p11_find_by_id(k->t, &ct, 1, k->id, k->idlen, 1, &h, &n) < 0 ||
	    n == 0)
		goto out;
	if (p11_attr_get1(k->t, h[0], CKA_LABEL, &l, &len) < 0)
		goto out;
	uri = p11_object_uri(k->t, CKO_CERTIFICATE, (char *)l, k->id, k->idlen);
out:
	free(h);
	free(l);
	return uri;
}

/*
 * p11_retire.c - KeepOld: what happens to a label's previous key pair
 * when p11_key_commit() gives the label to a new one. Kept pairs are
 * retired under a label of their own, LABEL~old-<certificate serial in
 * lowercase hex>, and the retired pairs beyond the newest keep_old (by
 * their certificate's notBefore) are destroyed; with keep_old 0 the old
 * pair is destroyed at once. Every step is one object relabelled or
 * destroyed, and each can be repeated: an interrupted commit is finished
 * by the next one.
 */
#include "p11_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/x509.h>

#include "sa_err.h"
#include "sa_log.h"

/* See p11.h. */
char *p11_retired_label(const char *label, const char *serial_hex)
{
	size_t a = strlen(label), b = strlen(P11_RETIRED_INFIX);
	size_t c = strlen(serial_hex);
	char *s = malloc(a + b + c + 1);

	if (s != NULL) {
		memcpy(s, label, a);
		memcpy(s + a, P11_RETIRED_INFIX, b);
		memcpy(s + a + b, serial_hex, c + 1);
	}
	return s;
}

/* The certificate in object h (NULL: none, or the token failed: *rc). */
static X509 *cert_of(p11_token *t, CK_OBJECT_HANDLE h, int *rc)
{
	unsigned char *v = NULL;
	const unsigned char *p;
	CK_ULONG len = 0;
	X509 *x = NULL;

	*rc = p11_attr_get1(t, h, CKA_VALUE, &v, &len);
	if (*rc == SA_ENOTFOUND)
		*rc = 0;
	if (*rc < 0 || v == NULL)
		goto out;
	p = v;
	x = d2i_X509(NULL, &p, (long)len);
out:
	free(v);
	return x;
}

/*
 * The certificate object (any label) with CKA_ID id, parsed: *out, or
 * NULL when the token holds none.
 */
static int cert_by_id(p11_token *t, const unsigned char *id, size_t idlen,
		      X509 **out)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_ATTRIBUTE ct = { CKA_CLASS, &cls, sizeof(cls) };
	CK_OBJECT_HANDLE *h = NULL;
	CK_ULONG n = 0, i;
	int rc;

	*out = NULL;
	if (idlen == 0)
		return 0;
	rc = p11_find_by_id(t, &ct, 1, id, idlen, 1, &h, &n);
	for (i = 0; rc == 0 && i < n && *out == NULL; i++)
		*out = cert_of(t, h[i], &rc);
	free(h);
	return rc;
}

/* Lowercase hex of cert's serial number, no colons. Caller frees. */
static char *serial_hex(X509 *cert)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	char *h = bn ? BN_bn2hex(bn) : NULL, *r = NULL, *p;

	if (h != NULL) {
		p = h;
		if (*p == '-') /* not valid in a certificate; keep it visible */
			p++;
		while (p[0] == '0' && p[1] != '\0')
			p++;
		r = strdup(p);
		for (p = r; p != NULL && *p != '\0'; p++)
			if (*p >= 'A' && *p <= 'F')
				*p = (char)(*p - 'A' + 'a');
	}
	OPENSSL_free(h);
	BN_free(bn);
	return r;
}

/*
 * Where the old object h (labelled label, not k's) goes: *to a new
 * retired label, or NULL to destroy it (keep_old 0, or its key has no
 * certificate in the token).
 */
static int retire_target(p11_token *t, CK_OBJECT_HANDLE h, const char *label,
			 int keep_old, char **to)
{
	unsigned char *id = NULL;
	CK_ULONG idlen = 0;
	X509 *cert = NULL;
	char *ser = NULL;
	int rc;

	*to = NULL;
	if (keep_old <= 0)
		return 0;
	rc = p11_attr_get1(t, h, CKA_ID, &id, &idlen);
	if (rc == SA_ENOTFOUND)
		rc = 0;
	if (rc < 0)
		goto out;
	rc = cert_by_id(t, id, idlen, &cert);
	if (rc < 0 || cert == NULL)
		goto out;
	ser = serial_hex(cert);
	*to = ser ? p11_retired_label(label, ser) : NULL;
	if (*to == NULL)
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
out:
	X509_free(cert);
	free(ser);
	free(id);
	return rc;
}

/* Retire or destroy the objects h[0..n) (labelled label, not k's). */
static int retire_each(p11_keyobj *k, const char *label, int keep_old,
		       CK_OBJECT_HANDLE *h, CK_ULONG n)
{
	p11_token *t = k->t;
	CK_ATTRIBUTE na;
	CK_ULONG i;
	char *to = NULL;
	CK_RV rv;
	int rc = 0;

	for (i = 0; rc == 0 && i < n; i++) {
		rc = retire_target(t, h[i], label, keep_old, &to);
		if (rc < 0)
			break;
		if (to == NULL) {
			rv = t->mod->fl->C_DestroyObject(t->sess, h[i]);
			if (rv != CKR_OK)
				rc = p11_rv_fail(SA_EKEY, rv, "cannot remove an old "
						 "object labelled '%s' from token "
						 "'%s'; the new key waits as '%s': "
						 "run the same command again to "
						 "finish", label, t->label,
						 k->label);
			continue;
		}
		na = (CK_ATTRIBUTE){ CKA_LABEL, to, strlen(to) };
		rv = t->mod->fl->C_SetAttributeValue(t->sess, h[i], &na, 1);
		if (rv != CKR_OK)
			rc = p11_rv_fail(SA_EKEY, rv, "token '%s' would not retire "
					 "an old object labelled '%s' as '%s'; the "
					 "new key waits as '%s': run the same "
					 "command again to finish", t->label,
					 label, to, k->label);
		else
			sa_verbose("the old object labelled '%s' is retired as "
				   "'%s'", label, to);
		free(to);
		to = NULL;
	}
	free(to);
	return rc;
}

/* See p11_int.h: the label's old private keys leave it. */
int p11_retire_old_priv(p11_keyobj *k, const char *label, int keep_old)
{
	CK_OBJECT_CLASS pcls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[2] = { { CKA_LABEL, (void *)label, strlen(label) },
				 { CKA_CLASS, &pcls, sizeof(pcls) } };
	CK_OBJECT_HANDLE *h = NULL;
	CK_ULONG n = 0;
	int rc;

	rc = p11_find_by_id(k->t, tmpl, 2, k->id, k->idlen, 0, &h, &n);
	if (rc == 0)
		rc = retire_each(k, label, keep_old, h, n);
	if (rc == 0 && n > 0)
		sa_info("the previous key labelled '%s' on token '%s' is %s",
			label, k->t->label, keep_old > 0 ? "retired" : "removed");
	free(h);
	return rc;
}

/* See p11_int.h: the label's other old objects leave it. */
int p11_retire_old_rest(p11_keyobj *k, const char *label, int keep_old)
{
	CK_ATTRIBUTE lt = { CKA_LABEL, (void *)label, strlen(label) };
	CK_OBJECT_HANDLE *h = NULL;
	CK_ULONG n = 0;
	int rc;

	rc = p11_find_by_id(k->t, &lt, 1, k->id, k->idlen, 0, &h, &n);
	if (rc == 0)
		rc = retire_each(k, label, keep_old, h, n);
	free(h);
	return rc;
}

/* One retired pair: its label, its objects, its certificate's notBefore. */
struct retired {
	char *label;
	CK_OBJECT_HANDLE *h;
	CK_OBJECT_CLASS *cls;
	CK_ULONG n;
	const ASN1_TIME *nb;  /* from cert; NULL: no certificate (oldest) */
	X509 *cert;
};

/* Newest first; pairs without a certificate last. */
static int newest_first(const void *a, const void *b)
{
	const struct retired *x = a, *y = b;
	int d;

	if (x->nb == NULL || y->nb == NULL)
		return (x->nb == NULL) - (y->nb == NULL);
	d = ASN1_TIME_compare(x->nb, y->nb);
	return -d;
}

/* Add object h (class cls, labelled l) to its pair in *v. */
static int retired_add(p11_token *t, struct retired **v, size_t *nv,
		       char *l, CK_OBJECT_HANDLE h, CK_OBJECT_CLASS cls)
{
	struct retired *r = NULL, *nr;
	CK_OBJECT_HANDLE *nh;
	CK_OBJECT_CLASS *nc;
	size_t i;
	int rc = 0;

	for (i = 0; i < *nv && r == NULL; i++)
		if (strcmp((*v)[i].label, l) == 0)
			r = &(*v)[i];
	if (r == NULL) {
		nr = realloc(*v, (*nv + 1) * sizeof(**v));
		if (nr == NULL)
			return sa_fail_noossl(SA_ENOMEM, "out of memory");
		*v = nr;
		r = &nr[(*nv)++];
		memset(r, 0, sizeof(*r));
		r->label = strdup(l);
		if (r->label == NULL)
			return sa_fail_noossl(SA_ENOMEM, "out of memory");
	}
	nh = realloc(r->h, (r->n + 1) * sizeof(*nh));
	if (nh != NULL)
		r->h = nh;
	nc = realloc(r->cls, (r->n + 1) * sizeof(*nc));
	if (nc != NULL)
		r->cls = nc;
	if (nh == NULL || nc == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	r->h[r->n] = h;
	r->cls[r->n++] = cls;
	if (cls == CKO_CERTIFICATE && r->cert == NULL) {
		r->cert = cert_of(t, h, &rc);
		r->nb = r->cert ? X509_get0_notBefore(r->cert) : NULL;
	}
	return rc;
}

/* Destroy pair r: the private key last, so that a retry finds it again. */
static int retired_destroy(p11_token *t, const struct retired *r)
{
	CK_ULONG i, pass;
	CK_RV rv;

	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < r->n; i++) {
			if ((r->cls[i] == CKO_PRIVATE_KEY) != (pass == 1))
				continue;
			rv = t->mod->fl->C_DestroyObject(t->sess, r->h[i]);
			if (rv != CKR_OK)
				return p11_rv_fail(SA_EKEY, rv, "cannot remove the "
						   "retired key '%s' from token "
						   "'%s'; the next renewal tries "
						   "again", r->label, t->label);
		}
	sa_info("removed the retired key '%s' from token '%s' (KeepOld)",
		r->label, t->label);
	return 0;
}

/* See p11_int.h: retired pairs of label beyond keep_old go. */
int p11_retire_prune(p11_token *t, const char *label, int keep_old)
{
	struct retired *v = NULL;
	size_t nv = 0, i, plen = strlen(label), ilen = strlen(P11_RETIRED_INFIX);
	CK_OBJECT_HANDLE *h = NULL;
	CK_ULONG n = 0, j, len;
	CK_OBJECT_CLASS cls;
	unsigned char *l;
	int rc;

	rc = p11_find(t, NULL, 0, &h, &n);
	for (j = 0; rc == 0 && j < n; j++) {
		rc = p11_attr_get1(t, h[j], CKA_LABEL, &l, &len);
		if (rc == SA_ENOTFOUND) {
			rc = 0;
			continue;
		}
		if (rc < 0)
			break;
		if (len > plen + ilen && memcmp(l, label, plen) == 0 &&
		    memcmp(l + plen, P11_RETIRED_INFIX, ilen) == 0 &&
		    strlen((char *)l) == len) {
			rc = p11_attr_ulong(t, h[j], CKA_CLASS, &cls);
			if (rc == 0)
				rc = retired_add(t, &v, &nv, (char *)l, h[j], cls);
		}
		free(l);
	}
	if (rc == 0 && nv > 1)
		qsort(v, nv, sizeof(*v), newest_first);
	for (i = keep_old > 0 ? (size_t)keep_old : 0; rc == 0 && i < nv; i++)
		rc = retired_destroy(t, &v[i]);
	for (i = 0; i < nv; i++) {
		free(v[i].label);
		free(v[i].h);
		free(v[i].cls);
		X509_free(v[i].cert);
	}
	free(v);
	free(h);
	return rc;
}

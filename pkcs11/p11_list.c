/*
 * p11_list.c - list-tokens and list-objects: what is in a module and a
 * token, each line with a pkcs11: URI a user can paste into a config.
 */
#include "p11_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/objects.h>
#include <openssl/x509.h>
#include <p11-kit/p11-kit.h>

#include "sa_err.h"

static void print_flags(FILE *fp, CK_FLAGS f)
{
	fprintf(fp, "  flags:        %s%s%s%s%s%s%s\n",
		f & CKF_LOGIN_REQUIRED ? "login-required " : "",
		f & CKF_USER_PIN_INITIALIZED ? "pin-initialized " : "",
		f & CKF_PROTECTED_AUTHENTICATION_PATH ? "pin-pad " : "",
		f & CKF_WRITE_PROTECTED ? "read-only " : "",
		f & CKF_USER_PIN_COUNT_LOW ? "PIN-COUNT-LOW " : "",
		f & CKF_USER_PIN_FINAL_TRY ? "PIN-FINAL-TRY " : "",
		f & CKF_USER_PIN_LOCKED ? "PIN-LOCKED " : "");
}

/* See p11.h. module: a path, a p11-kit module name, a pkcs11: URI, NULL. */
int p11_list_tokens(const char *module, FILE *fp)
{
	struct p11_module *m = NULL;
	CK_SLOT_ID *slots = NULL;
	unsigned int nslots = 0;
	P11KitUri *u = NULL, *tu = NULL;
	char *path = NULL, *uri, *lab, *man, *mod, *ser, *desc;
	CK_TOKEN_INFO ti;
	CK_SLOT_INFO si;
	unsigned int i;
	int rc;

	if (p11_is_uri(module)) {
		rc = p11_uri_parse(module, &u);
		if (rc == 0)
			rc = p11_module_resolve(NULL, u, &path);
	} else {
		rc = p11_module_resolve(module, NULL, &path);
	}
	if (rc < 0)
		goto out;
	rc = p11_module_get(path, &m);
	if (rc < 0)
		goto out;
	slots = m->slots;
	nslots = m->nslots;
	fprintf(fp, "Module %s: %u slot(s)\n", m->path, nslots);
	for (i = 0; i < nslots; i++) {
		CK_SLOT_ID sid = slots[i];

		if (m->fl->C_GetSlotInfo(sid, &si) != CKR_OK)
			continue;
		desc = p11_str_trim(si.slotDescription, sizeof(si.slotDescription));
		fprintf(fp, "Slot %lu: %s\n", (unsigned long)sid, desc);
		free(desc);
		if (!(si.flags & CKF_TOKEN_PRESENT) ||
		    p11_token_info(m, sid, &ti) != CKR_OK) {
			fprintf(fp, "  (no token)\n");
			continue;
		}
		if (!(ti.flags & CKF_TOKEN_INITIALIZED)) {
			fprintf(fp, "  (token not initialized)\n");
			continue;
		}
		lab = p11_str_trim(ti.label, sizeof(ti.label));
		man = p11_str_trim(ti.manufacturerID, sizeof(ti.manufacturerID));
		mod = p11_str_trim(ti.model, sizeof(ti.model));
		ser = p11_str_trim(ti.serialNumber, sizeof(ti.serialNumber));
		fprintf(fp, "  token:        %s\n  manufacturer: %s\n"
			"  model:        %s\n  serial:       %s\n",
			lab, man, mod, ser);
		free(lab);
		free(man);
		free(mod);
		free(ser);
		print_flags(fp, ti.flags);
		tu = p11_kit_uri_new();
		if (tu == NULL)
			continue;
		memcpy(p11_kit_uri_get_token_info(tu), &ti, sizeof(ti));
		p11_kit_uri_set_module_path(tu, m->path);
		uri = p11_uri_format(tu, P11_KIT_URI_FOR_TOKEN);
		fprintf(fp, "  uri:          %s\n", uri ? uri : "?");
		free(uri);
		p11_kit_uri_free(tu);
	}
	rc = 0;
out:
	p11_module_put(m);
	free(path);
	if (u != NULL)
		p11_kit_uri_free(u);
	return rc;
}

static const char *class_name(CK_ULONG c)
{
	switch (c) {
	case CKO_PRIVATE_KEY: return "private key";
	case CKO_PUBLIC_KEY: return "public key";
	case CKO_CERTIFICATE: return "certificate";
	case CKO_SECRET_KEY: return "secret key";
	case CKO_DATA: return "data";
	default: return "other";
	}
}

static void print_key(p11_token *t, CK_OBJECT_HANDLE o, CK_ULONG cls, FILE *fp)
{
	CK_ULONG kt = 0, bits = 0, len = 0;
	unsigned char *v = NULL;
	const unsigned char *p;
	ASN1_OBJECT *obj = NULL;

	p11_attr_ulong(t, o, CKA_KEY_TYPE, &kt);
	if (kt == CKK_RSA) {
		if (p11_attr_ulong(t, o, CKA_MODULUS_BITS, &bits) < 0 &&
		    p11_attr_get1(t, o, CKA_MODULUS, &v, &len) == 0)
			bits = len * 8;
		fprintf(fp, "  key:          RSA %lu\n", (unsigned long)bits);
	} else if (kt == CKK_EC) {
		if (p11_attr_get1(t, o, CKA_EC_PARAMS, &v, &len) == 0) {
			p = v;
			obj = d2i_ASN1_OBJECT(NULL, &p, (long)len);
		}
		fprintf(fp, "  key:          EC %s\n", obj ?
			OBJ_nid2sn(OBJ_obj2nid(obj)) : "(curve unknown)");
		ASN1_OBJECT_free(obj);
	} else {
		fprintf(fp, "  key:          type %lu\n", (unsigned long)kt);
	}
	free(v);
	if (cls == CKO_PRIVATE_KEY)
		fprintf(fp, "  custody:      sensitive=%d extractable=%d "
			"never-extractable=%d always-sensitive=%d\n",
			p11_attr_bool(t, o, CKA_SENSITIVE),
			p11_attr_bool(t, o, CKA_EXTRACTABLE),
			p11_attr_bool(t, o, CKA_NEVER_EXTRACTABLE),
			p11_attr_bool(t, o, CKA_ALWAYS_SENSITIVE));
}

static void print_cert(p11_token *t, CK_OBJECT_HANDLE o, FILE *fp)
{
	unsigned char *v = NULL;
	const unsigned char *p;
	CK_ULONG len = 0;
	X509 *x = NULL;
	char *s;

	if (p11_attr_get1(t, o, CKA_VALUE, &v, &len) == 0) {
		p = v;
		x = d2i_X509(NULL, &p, (long)len);
	}
	if (x != NULL) {
		s = X509_NAME_oneline(X509_get_subject_name(x), NULL, 0);
		fprintf(fp, "  subject:      %s\n", s ? s : "?");
		OPENSSL_free(s);
	}
	X509_free(x);
	free(v);
}

/* See p11.h. */
int p11_list_objects(p11_token *t, FILE *fp)
{
	CK_OBJECT_HANDLE *h = NULL;
	CK_ULONG n = 0, i, cls, llen, idlen;
	unsigned char *label, *id;
	char *uri, *hex, *shown;
	int rc;

	rc = p11_find(t, NULL, 0, &h, &n);
	if (rc < 0)
		return rc;
	fprintf(fp, "Token %s: %lu object(s)%s\n", t->label,
		(unsigned long)n, t->logged_in ? "" :
		" (not logged in: private objects hidden)");
	for (i = 0; i < n; i++) {
		if (p11_attr_ulong(t, h[i], CKA_CLASS, &cls) < 0)
			continue;
		if (p11_attr_get1(t, h[i], CKA_LABEL, &label, &llen) < 0)
			label = NULL;
		if (p11_attr_get1(t, h[i], CKA_ID, &id, &idlen) < 0)
			id = NULL;
		hex = id ? p11_hex(id, idlen) : NULL;
		/* labels come from the token: control characters %-encoded */
		shown = p11_uri_display(label ? (char *)label : "");
		fprintf(fp, "%s '%s' id %s\n", class_name(cls),
			shown ? shown : "?", hex ? hex : "-");
		free(shown);
		if (cls == CKO_PRIVATE_KEY || cls == CKO_PUBLIC_KEY)
			print_key(t, h[i], cls, fp);
		else if (cls == CKO_CERTIFICATE)
			print_cert(t, h[i], fp);
		uri = p11_object_uri(t, cls, (char *)label, id, id ? idlen : 0);
		fprintf(fp, "  uri:          %s\n", uri ? uri : "?");
		free(uri);
		free(hex);
		free(label);
		free(id);
	}
	free(h);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The token list as data (the provisioning station)                   */

/* path of module (a path, a p11-kit name or a pkcs11: URI); caller frees */
static int module_path(const char *module, char **path)
{
	P11KitUri *u = NULL;
	int rc;

	*path = NULL;
	if (module != NULL && p11_is_uri(module)) {
		rc = p11_uri_parse(module, &u);
		if (rc == 0)
			rc = p11_module_resolve(NULL, u, path);
		if (u != NULL)
			p11_kit_uri_free(u);
		return rc;
	}
	return p11_module_resolve(module, NULL, path);
}

static void desc_clear(struct p11_token_desc *d)
{
	free(d->label);
	free(d->serial);
	free(d->manufacturer);
	free(d->model);
	free(d->uri);
	memset(d, 0, sizeof(*d));
}

/* d from the token info ti of slot sid (blank: texts may be empty) */
static int desc_fill(struct p11_module *m, CK_SLOT_ID sid,
		     const CK_TOKEN_INFO *ti, struct p11_token_desc *d)
{
	P11KitUri *tu;

	memset(d, 0, sizeof(*d));
	d->slot_id = (unsigned long)sid;
	d->initialized = (ti->flags & CKF_TOKEN_INITIALIZED) != 0;
	d->flags = (unsigned long)ti->flags;
	d->label = p11_str_trim(ti->label, sizeof(ti->label));
	d->serial = p11_str_trim(ti->serialNumber, sizeof(ti->serialNumber));
	d->manufacturer = p11_str_trim(ti->manufacturerID,
				       sizeof(ti->manufacturerID));
	d->model = p11_str_trim(ti->model, sizeof(ti->model));
	tu = p11_kit_uri_new();
	if (tu != NULL) {
		memcpy(p11_kit_uri_get_token_info(tu), ti, sizeof(*ti));
		d->uri = p11_uri_format(tu, P11_KIT_URI_FOR_TOKEN);
		p11_kit_uri_free(tu);
	}
	(void)m;
	if (d->label == NULL || d->serial == NULL || d->manufacturer == NULL ||
	    d->model == NULL || d->uri == NULL) {
		desc_clear(d);
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	}
	return 0;
}

/* See p11.h. */
int p11_tokens_get(const char *module, const char *filter, unsigned flags,
		   struct p11_token_desc **out, size_t *n_out)
{
	struct p11_module *m = NULL;
	struct p11_token_desc *list = NULL;
	P11KitUri *fu = NULL;
	char *path = NULL;
	size_t n = 0;
	unsigned int i;
	int rc;

	*out = NULL;
	*n_out = 0;
	if (filter != NULL) {
		rc = p11_uri_parse(filter, &fu);
		if (rc < 0)
			goto out;
	}
	if (module == NULL && fu != NULL)
		rc = p11_module_resolve(NULL, fu, &path);
	else
		rc = module_path(module, &path);
	if (rc < 0)
		goto out;
	rc = p11_module_get(path, &m);
	if (rc < 0)
		goto out;
	if ((flags & P11_TOKENS_RESCAN) && m->refs == 2) {
		rc = p11_module_rescan(m);
		if (rc < 0)
			goto out;
	}
	list = calloc(m->nslots ? m->nslots : 1, sizeof(*list));
	if (list == NULL) {
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < m->nslots; i++) {
		CK_SLOT_INFO si;
		CK_TOKEN_INFO ti;
		int blank;

		if (m->fl->C_GetSlotInfo(m->slots[i], &si) != CKR_OK ||
		    !(si.flags & CKF_TOKEN_PRESENT) ||
		    p11_token_info(m, m->slots[i], &ti) != CKR_OK)
			continue;
		blank = !(ti.flags & CKF_TOKEN_INITIALIZED);
		if (blank && !(flags & P11_TOKENS_BLANK))
			continue;
		/* the filter picks initialised tokens by their attributes */
		if (!blank && fu != NULL &&
		    p11_kit_uri_match_token_info(fu, &ti) != 1)
			continue;
		rc = desc_fill(m, m->slots[i], &ti, &list[n]);
		if (rc < 0)
			goto out;
		n++;
	}
	*out = list;
	*n_out = n;
	list = NULL;
	n = 0;
	rc = 0;
out:
	p11_tokens_free(list, n);
	p11_module_put(m);
	free(path);
	if (fu != NULL)
		p11_kit_uri_free(fu);
	return rc;
}

/* See p11.h. */
void p11_tokens_free(struct p11_token_desc *list, size_t n)
{
	size_t i;

	if (list == NULL)
		return;
	for (i = 0; i < n; i++)
		desc_clear(&list[i]);
	free(list);
}

struct p11_hold {
	struct p11_module *m;
};

/* See p11.h. */
int p11_hold_new(const char *module, p11_hold **out)
{
	p11_hold *h;
	char *path = NULL;
	int rc;

	*out = NULL;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	rc = module_path(module, &path);
	if (rc == 0)
		rc = p11_module_get(path, &h->m);
	free(path);
	if (rc < 0) {
		free(h);
		return rc;
	}
	*out = h;
	return 0;
}

/* See p11.h. */
int p11_hold_rescan(p11_hold *h)
{
	if (h == NULL || h->m == NULL)
		return 0;
	if (h->m->refs > 1)
		return 0; /* a token is open: its slot state stays */
	return p11_module_rescan(h->m);
}

/* See p11.h. */
void p11_hold_free(p11_hold *h)
{
	if (h == NULL)
		return;
	p11_module_put(h->m);
	free(h);
}

/* See p11.h. */
int p11_slot_event_wait(const char *module, int block, unsigned long *slot_id)
{
	struct p11_module *m = NULL;
	CK_SLOT_ID sid = 0;
	char *path = NULL;
	CK_RV rv;
	int rc;

	*slot_id = 0;
	rc = module_path(module, &path);
	if (rc == 0)
		rc = p11_module_get(path, &m);
	free(path);
	if (rc < 0)
		return rc;
	rv = m->fl->C_WaitForSlotEvent(block ? 0 : CKF_DONT_BLOCK, &sid, NULL);
	if (rv == CKR_OK) {
		*slot_id = (unsigned long)sid;
		rc = 1;
	} else if (rv == CKR_NO_EVENT) {
		rc = 0;
	} else if (rv == CKR_FUNCTION_NOT_SUPPORTED) {
		rc = sa_fail_noossl(SA_ENOTFOUND, "PKCS#11 module %s cannot "
				    "wait for slot events", m->path);
	} else {
		rc = p11_rv_fail(SA_EKEY, rv, "C_WaitForSlotEvent of %s failed",
				 m->path);
	}
	p11_module_put(m);
	return rc;
}

/* See p11.h. */
int p11_token_certs(p11_token *t, X509 ***out, size_t *n_out)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_ATTRIBUTE tmpl[] = { { CKA_CLASS, &cls, sizeof(cls) } };
	CK_OBJECT_HANDLE *h = NULL;
	CK_ULONG n = 0, i, len;
	X509 **list = NULL;
	size_t k = 0;
	int rc;

	*out = NULL;
	*n_out = 0;
	rc = p11_find(t, tmpl, 1, &h, &n);
	if (rc < 0)
		return rc;
	list = calloc(n ? n : 1, sizeof(*list));
	if (list == NULL) {
		free(h);
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	}
	for (i = 0; i < n; i++) {
		unsigned char *v = NULL;
		const unsigned char *p;

		if (p11_attr_get1(t, h[i], CKA_VALUE, &v, &len) < 0) {
			sa_err_clear();
			continue;
		}
		p = v;
		list[k] = d2i_X509(NULL, &p, (long)len);
		if (list[k] != NULL)
			k++;
		free(v);
	}
	free(h);
	*out = list;
	*n_out = k;
	return 0;
}

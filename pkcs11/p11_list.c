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

/*
 * p11_engid.c - sscep's key names for libp11's pkcs11 engine ("engine key
 * ids": 0:01, slot_0-id_01, id_01, label_k, slot_0-label_k) turned into
 * the equivalent pkcs11: URI on the configured module. Such a name is
 * never taken for a file name.
 */
#include "p11_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/p11-kit.h>

#include "sa_err.h"

#define ENGID_MAX_ID 128

struct engid {
	long slot;                        /* -1: none given */
	unsigned char id[ENGID_MAX_ID];
	size_t idlen;                     /* 0: no id given */
	const char *label;                /* borrowed from the name; NULL: none */
};

static int nybble(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * A hex id as libp11 reads it: two digits a byte from the left, a last
 * single digit a byte of its own. Non-empty, hex digits only.
 */
static int parse_hex(const char *s, struct engid *e)
{
	size_t i, n = strlen(s);

	if (n == 0 || (n + 1) / 2 > ENGID_MAX_ID)
		return 0;
	for (i = 0; i < n; i++)
		if (nybble((unsigned char)s[i]) < 0)
			return 0;
	for (i = 0; i < n; i += 2)
		e->id[e->idlen++] = (unsigned char)(i + 1 < n ?
			nybble((unsigned char)s[i]) * 16 +
			nybble((unsigned char)s[i + 1]) :
			nybble((unsigned char)s[i]));
	return 1;
}

/* Decimal digits [s, s+n), n > 0, a slot number that fits. */
static int parse_slot(const char *s, size_t n, long *out)
{
	long v = 0;
	size_t i;

	if (n == 0 || n > 10)
		return 0;
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return 0;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 1;
}

/* id_<hex> or label_<label> (after an optional slot). */
static int parse_object(const char *s, struct engid *e)
{
	if (strncmp(s, "id_", 3) == 0)
		return parse_hex(s + 3, e);
	if (strncmp(s, "label_", 6) == 0 && s[6] != '\0') {
		e->label = s + 6;
		return 1;
	}
	return 0;
}

/* 1 if name is an engine key id (filling e), else 0. */
static int engid_parse(const char *name, int bare_hex, struct engid *e)
{
	const char *p;
	size_t n;

	memset(e, 0, sizeof(*e));
	e->slot = -1;
	if (name == NULL || *name == '\0' || p11_is_uri(name))
		return 0;
	/* <slot>:<hexid> */
	n = strspn(name, "0123456789");
	if (n > 0 && name[n] == ':')
		return parse_slot(name, n, &e->slot) && parse_hex(name + n + 1, e);
	/* slot_<n>-id_<hex>, slot_<n>-label_<label> */
	if (strncmp(name, "slot_", 5) == 0) {
		p = name + 5;
		n = strspn(p, "0123456789");
		if (p[n] != '-' || !parse_slot(p, n, &e->slot))
			return 0;
		return parse_object(p + n + 1, e);
	}
	if (parse_object(name, e))
		return 1;
	/* a plain hex id: libp11's too, but only with an engine configured */
	memset(e, 0, sizeof(*e));
	e->slot = -1;
	return bare_hex && parse_hex(name, e);
}

/* See p11.h. */
int p11_engine_id_is(const char *name, int bare_hex)
{
	struct engid e;

	return engid_parse(name, bare_hex, &e);
}

/* The URI of e's key on the token ti (NULL: no token attributes). */
static char *engid_uri(const struct engid *e, const CK_TOKEN_INFO *ti)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE a;
	P11KitUri *u = p11_kit_uri_new();
	CK_TOKEN_INFO *uti;
	char *s;

	if (u == NULL)
		return NULL;
	if (ti != NULL) {
		/* the token by label and serial: what list-tokens shows */
		uti = p11_kit_uri_get_token_info(u);
		memcpy(uti->label, ti->label, sizeof(uti->label));
		/* (p11-kit leaves out a field whose first byte is 0) */
		memcpy(uti->serialNumber, ti->serialNumber,
		       sizeof(uti->serialNumber));
	}
	if (e->idlen > 0) {
		a = (CK_ATTRIBUTE){ CKA_ID, (void *)e->id, e->idlen };
		p11_kit_uri_set_attribute(u, &a);
	}
	if (e->label != NULL) {
		a = (CK_ATTRIBUTE){ CKA_LABEL, (void *)e->label,
				    strlen(e->label) };
		p11_kit_uri_set_attribute(u, &a);
	}
	a = (CK_ATTRIBUTE){ CKA_CLASS, &cls, sizeof(cls) };
	p11_kit_uri_set_attribute(u, &a);
	s = p11_uri_format(u, P11_KIT_URI_FOR_OBJECT_ON_TOKEN);
	p11_kit_uri_free(u);
	return s;
}

/* The token in slot e->slot of module (path or name); SA_EUSAGE if none. */
static int slot_token(const char *name, const struct engid *e,
		      const char *module, const char *want, CK_TOKEN_INFO *ti)
{
	struct p11_module *m = NULL;
	char *path = NULL, seen[512] = "";
	unsigned int i;
	size_t len;
	int rc, found = 0;

	rc = p11_module_resolve(module, NULL, &path);
	if (rc < 0)
		return rc;
	rc = p11_module_get(path, &m);
	if (rc < 0)
		goto out;
	for (i = 0; i < m->nslots; i++) {
		CK_SLOT_ID sid = m->slots[i];
		CK_TOKEN_INFO t;
		char *lab;

		if (p11_token_info(m, sid, &t) != CKR_OK ||
		    !(t.flags & CKF_TOKEN_INITIALIZED))
			continue;
		lab = p11_str_trim(t.label, sizeof(t.label));
		len = strlen(seen);
		if (lab != NULL && len + 80 < sizeof(seen))
			snprintf(seen + len, sizeof(seen) - len, "%s%lu ('%s')",
				 len ? ", " : "", (unsigned long)sid, lab);
		free(lab);
		if ((long)sid == e->slot) {
			*ti = t;
			found = 1;
		}
	}
	if (!found)
		rc = sa_fail_noossl(SA_EUSAGE, "the key \"%s\" is an engine key "
				    "id for slot %ld, but module %s has no "
				    "initialized token in slot %ld (slots with "
				    "tokens: %s); write the key as %s with the "
				    "token's label (list-tokens shows it)", name,
				    e->slot, path, e->slot, seen[0] ? seen : "none",
				    want);
out:
	p11_module_put(m);
	free(path);
	return rc;
}

/* See p11.h. */
int p11_engine_id_to_uri(const char *name, int bare_hex, const char *module,
			 char **uri_out)
{
	struct engid e;
	CK_TOKEN_INFO ti;
	char *want = NULL, *tmpl = NULL, *uri = NULL;
	int rc;

	*uri_out = NULL;
	if (!engid_parse(name, bare_hex, &e))
		return sa_fail_noossl(SA_EUSAGE, "\"%s\" is not an engine key id",
				      name);
	/* what to write instead, for the messages */
	memset(&ti, 0, sizeof(ti));
	memset(ti.label, ' ', sizeof(ti.label));
	memcpy(ti.label, "LABEL", 5);
	tmpl = engid_uri(&e, e.slot >= 0 ? &ti : NULL);
	want = tmpl;
	if (want == NULL) {
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	if (module == NULL || *module == '\0') {
		rc = sa_fail_noossl(SA_EUSAGE, "the key \"%s\" is a PKCS#11 "
				    "engine key id, never a file name, and no "
				    "PKCS#11 module is configured to find it with: "
				    "set MODULE_PATH (or PKCS11Module, --module), "
				    "or write the key as %s%s", name, want,
				    e.slot >= 0 ? " with the token's label "
				    "(list-tokens shows it)" : "");
		goto out;
	}
	if (e.slot < 0) {
		/* no slot: the program's token matching takes the one token */
		uri = engid_uri(&e, NULL);
	} else {
		memset(&ti, 0, sizeof(ti));
		rc = slot_token(name, &e, module, want, &ti);
		if (rc < 0)
			goto out;
		uri = engid_uri(&e, &ti);
	}
	if (uri == NULL) {
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	*uri_out = uri;
	rc = 0;
out:
	free(tmpl);
	return rc;
}

/*
 * csr.c - subject and subjectAltName parsing, PKCS#10 construction.
 */
#include "csr.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#include "sa_err.h"

#define OID_MS_TEMPLATE "1.3.6.1.4.1.311.20.2"
#define OID_MS_UPN "1.3.6.1.4.1.311.20.2.3"

/* Copy an unescaped token from *pp up to an unescaped stop char. */
static char *take(const char **pp, const char *stops, int *escaped_any)
{
	const char *p = *pp;
	char *out = malloc(strlen(p) + 1);
	size_t n = 0;

	if (out == NULL)
		return NULL;
	while (*p != '\0' && strchr(stops, *p) == NULL) {
		if (*p == '\\' && p[1] != '\0') {
			p++;
			if (escaped_any)
				*escaped_any = 1;
		}
		out[n++] = *p++;
	}
	out[n] = '\0';
	*pp = p;
	return out;
}

int csr_subject_parse(const char *s, X509_NAME **out)
{
	X509_NAME *name = NULL;
	char *type = NULL, *value = NULL;
	const char *p = s;
	int rc, next_set = 0;

	*out = NULL;
	if (s == NULL || *s != '/') {
		rc = sa_fail(SA_EUSAGE, "subject \"%s\" must start with '/', "
			     "e.g. /CN=host.example/O=Example/C=FI",
			     s ? s : "");
		goto out;
	}
	name = X509_NAME_new();
	if (name == NULL) {
		rc = sa_fail(SA_ENOMEM, "out of memory");
		goto out;
	}
	p++;
	while (*p != '\0') {
		ASN1_OBJECT *obj;
		int ok;

		free(type);
		free(value);
		value = NULL;
		type = take(&p, "=/+", NULL);
		if (type == NULL) {
			rc = sa_fail(SA_ENOMEM, "out of memory");
			goto out;
		}
		if (*p != '=') {
			rc = sa_fail(SA_EUSAGE, "subject \"%s\": \"%s\" has no "
				     "'='; write TYPE=value, and escape a '/' "
				     "or '+' in a value with a backslash",
				     s, type);
			goto out;
		}
		p++;
		value = take(&p, "/+", NULL);
		if (value == NULL) {
			rc = sa_fail(SA_ENOMEM, "out of memory");
			goto out;
		}
		if (*type == '\0' || *value == '\0') {
			rc = sa_fail(SA_EUSAGE, "subject \"%s\": empty %s in "
				     "\"%s=%s\"", s, *type ? "value" : "type",
				     type, value);
			goto out;
		}
		obj = OBJ_txt2obj(type, 0);
		if (obj == NULL || OBJ_obj2nid(obj) == NID_undef) {
			/* a dotted OID unknown to OpenSSL is fine */
			if (obj == NULL) {
				rc = sa_fail(SA_EUSAGE, "subject \"%s\": unknown "
					     "attribute type \"%s\" (use CN, O, "
					     "OU, C, L, ST, DC, emailAddress, "
					     "serialNumber... or an OID)", s, type);
				goto out;
			}
		}
		ok = X509_NAME_add_entry_by_OBJ(name, obj, MBSTRING_UTF8,
						(unsigned char *)value, -1, -1,
						next_set ? -1 : 0);
		ASN1_OBJECT_free(obj);
		if (!ok) {
			rc = sa_fail(SA_EUSAGE, "subject \"%s\": value \"%s\" "
				     "is not allowed for %s", s, value, type);
			goto out;
		}
		next_set = 0;
		if (*p == '+')
			next_set = 1;
		if (*p != '\0')
			p++;
		if (*p == '\0' && next_set) {
			rc = sa_fail(SA_EUSAGE, "subject \"%s\" ends with '+'", s);
			goto out;
		}
	}
	if (X509_NAME_entry_count(name) == 0) {
		rc = sa_fail(SA_EUSAGE, "subject \"%s\" is empty; give at "
			     "least /CN=name", s);
		goto out;
	}
	*out = name;
	name = NULL;
	rc = 0;
out:
	free(type);
	free(value);
	X509_NAME_free(name);
	return rc;
}

static int san_other_upn(const char *v, GENERAL_NAME *gn)
{
	ASN1_OBJECT *oid = OBJ_txt2obj(OID_MS_UPN, 1);
	ASN1_TYPE *val = ASN1_TYPE_new();
	ASN1_UTF8STRING *str = ASN1_UTF8STRING_new();

	if (oid == NULL || val == NULL || str == NULL ||
	    !ASN1_STRING_set(str, v, -1))
		goto err;
	ASN1_TYPE_set(val, V_ASN1_UTF8STRING, str);
	str = NULL;
	if (!GENERAL_NAME_set0_othername(gn, oid, val))
		goto err;
	return 0;
err:
	ASN1_OBJECT_free(oid);
	ASN1_TYPE_free(val);
	ASN1_UTF8STRING_free(str);
	return sa_fail(SA_ECRYPTO, "cannot encode UPN %s", v);
}

int csr_san_parse(const char *s, GENERAL_NAME **out)
{
	GENERAL_NAME *gn = NULL;
	const char *colon, *v;
	size_t tl;
	int rc;

	*out = NULL;
	colon = s ? strchr(s, ':') : NULL;
	if (colon == NULL || colon[1] == '\0') {
		rc = sa_fail(SA_EUSAGE, "subjectAltName \"%s\" must be TYPE:value "
			     "with TYPE one of DNS, IP, email, URI, UPN, RID",
			     s ? s : "");
		goto out;
	}
	tl = (size_t)(colon - s);
	v = colon + 1;
	gn = GENERAL_NAME_new();
	if (gn == NULL) {
		rc = sa_fail(SA_ENOMEM, "out of memory");
		goto out;
	}
#define IS(t) (tl == strlen(t) && strncasecmp(s, t, tl) == 0)
	if (IS("DNS") || IS("email") || IS("URI")) {
		ASN1_IA5STRING *ia5;
		int type = IS("DNS") ? GEN_DNS : IS("email") ? GEN_EMAIL : GEN_URI;

		if ((type == GEN_EMAIL && strchr(v, '@') == NULL) ||
		    (type == GEN_URI && strchr(v, ':') == NULL) ||
		    strpbrk(v, " \t") != NULL) {
			rc = sa_fail(SA_EUSAGE, "subjectAltName \"%s\": not a "
				     "valid %.*s value", s, (int)tl, s);
			goto out;
		}
		ia5 = ASN1_IA5STRING_new();
		if (ia5 == NULL || !ASN1_STRING_set(ia5, v, -1)) {
			ASN1_IA5STRING_free(ia5);
			rc = sa_fail(SA_ENOMEM, "out of memory");
			goto out;
		}
		GENERAL_NAME_set0_value(gn, type, ia5);
	} else if (IS("IP")) {
		ASN1_OCTET_STRING *ip = a2i_IPADDRESS(v);

		if (ip == NULL) {
			rc = sa_fail_noossl(SA_EUSAGE, "subjectAltName \"%s\": "
					    "\"%s\" is not an IPv4 or IPv6 "
					    "address", s, v);
			goto out;
		}
		GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
	} else if (IS("RID")) {
		ASN1_OBJECT *obj = OBJ_txt2obj(v, 1);

		if (obj == NULL) {
			rc = sa_fail_noossl(SA_EUSAGE, "subjectAltName \"%s\": "
					    "\"%s\" is not a dotted OID", s, v);
			goto out;
		}
		GENERAL_NAME_set0_value(gn, GEN_RID, obj);
	} else if (IS("UPN")) {
		rc = san_other_upn(v, gn);
		if (rc < 0)
			goto out;
	} else {
		rc = sa_fail(SA_EUSAGE, "subjectAltName \"%s\": unknown type "
			     "\"%.*s\" (DNS, IP, email, URI, UPN, RID)", s,
			     (int)tl, s);
		goto out;
	}
#undef IS
	*out = gn;
	gn = NULL;
	rc = 0;
out:
	GENERAL_NAME_free(gn);
	return rc;
}

/* The Microsoft certificate template name extension (szOID_ENROLL_CERTTYPE). */
static int template_ext(const char *t, X509_EXTENSION **out)
{
	ASN1_OBJECT *oid = NULL;
	ASN1_STRING *str = NULL;
	ASN1_OCTET_STRING *oct = NULL;
	ASN1_TYPE *at = NULL;
	unsigned char *der = NULL;
	int len, rc, bmp = 0;

	*out = NULL;
	if (strncasecmp(t, "bmp:", 4) == 0) {
		bmp = 1;
		t += 4;
	} else if (strncasecmp(t, "utf8:", 5) == 0) {
		t += 5;
	}
	if (*t == '\0') {
		rc = sa_fail(SA_EUSAGE, "certificate template name is empty");
		goto out;
	}
	oid = OBJ_txt2obj(OID_MS_TEMPLATE, 1);
	str = ASN1_STRING_type_new(bmp ? V_ASN1_BMPSTRING : V_ASN1_UTF8STRING);
	if (oid == NULL || str == NULL) {
		rc = sa_fail(SA_ENOMEM, "out of memory");
		goto out;
	}
	if (bmp) {
		ASN1_STRING *tmp = NULL;

		if (ASN1_mbstring_copy(&tmp, (const unsigned char *)t, -1,
				       MBSTRING_UTF8, B_ASN1_BMPSTRING) < 0) {
			rc = sa_fail(SA_EUSAGE, "certificate template \"%s\" "
				     "cannot be a BMPString", t);
			goto out;
		}
		ASN1_STRING_free(str);
		str = tmp;
	} else if (!ASN1_STRING_set(str, t, -1)) {
		rc = sa_fail(SA_ENOMEM, "out of memory");
		goto out;
	}
	at = ASN1_TYPE_new();
	if (at == NULL || !ASN1_TYPE_set1(at, ASN1_STRING_type(str), str)) {
		rc = sa_fail(SA_ENOMEM, "out of memory");
		goto out;
	}
	len = i2d_ASN1_TYPE(at, &der);
	oct = ASN1_OCTET_STRING_new();
	if (len <= 0 || oct == NULL || !ASN1_OCTET_STRING_set(oct, der, len)) {
		rc = sa_fail(SA_ECRYPTO, "cannot encode certificate template");
		goto out;
	}
	*out = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, oct);
	rc = *out ? 0 : sa_fail(SA_ECRYPTO, "cannot encode certificate template");
out:
	OPENSSL_free(der);
	ASN1_TYPE_free(at);
	ASN1_OCTET_STRING_free(oct);
	ASN1_STRING_free(str);
	ASN1_OBJECT_free(oid);
	return rc;
}

/* An extension from OpenSSL's config syntax ("critical,a,b"). */
static int conf_ext(int nid, const char *what, const char *v,
		    STACK_OF(X509_EXTENSION) *exts)
{
	X509_EXTENSION *ext;

	ext = X509V3_EXT_nconf_nid(NULL, NULL, nid, v);
	if (ext == NULL)
		return sa_fail(SA_EUSAGE, "%s \"%s\" is not valid; use a comma "
			       "separated list such as %s", what, v,
			       nid == NID_key_usage ?
			       "critical,digitalSignature,keyEncipherment" :
			       "serverAuth,clientAuth or dotted OIDs");
	if (!sk_X509_EXTENSION_push(exts, ext)) {
		X509_EXTENSION_free(ext);
		return sa_fail(SA_ENOMEM, "out of memory");
	}
	return 0;
}

static int san_ext(const struct csr_params *p, STACK_OF(X509_EXTENSION) *exts)
{
	GENERAL_NAMES *gns = GENERAL_NAMES_new();
	X509_EXTENSION *ext = NULL;
	size_t i;
	int rc;

	if (gns == NULL)
		return sa_fail(SA_ENOMEM, "out of memory");
	for (i = 0; i < p->n_san; i++) {
		GENERAL_NAME *gn;

		rc = csr_san_parse(p->san[i], &gn);
		if (rc < 0)
			goto out;
		if (!sk_GENERAL_NAME_push(gns, gn)) {
			GENERAL_NAME_free(gn);
			rc = sa_fail(SA_ENOMEM, "out of memory");
			goto out;
		}
	}
	ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gns);
	if (ext == NULL || !sk_X509_EXTENSION_push(exts, ext)) {
		X509_EXTENSION_free(ext);
		rc = sa_fail(SA_ECRYPTO, "cannot encode subjectAltName");
		goto out;
	}
	rc = 0;
out:
	GENERAL_NAMES_free(gns);
	return rc;
}

/* challengePassword: a PrintableString when possible (what most servers
 * expect), else a UTF8String. */
static int add_challenge(X509_REQ *req, const char *pw)
{
	ASN1_STRING *str;
	int ok;

	if (*pw == '\0' || strlen(pw) > 255)
		return sa_fail(SA_EUSAGE, "the challenge password must have 1 "
			       "to 255 characters");
	if (ASN1_PRINTABLE_type((const unsigned char *)pw, -1) !=
	    V_ASN1_PRINTABLESTRING)
		ok = X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword,
					       MBSTRING_UTF8,
					       (const unsigned char *)pw, -1);
	else {
		str = ASN1_STRING_type_new(V_ASN1_PRINTABLESTRING);
		ok = str != NULL && ASN1_STRING_set(str, pw, -1) &&
		     X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword,
					       V_ASN1_PRINTABLESTRING,
					       (const unsigned char *)str, -1);
		if (str != NULL)
			OPENSSL_cleanse(str->data, (size_t)str->length);
		ASN1_STRING_free(str);
	}
	return ok ? 0 : sa_fail(SA_ECRYPTO, "cannot add the challenge "
				"password to the request");
}

int csr_build(const struct csr_params *p, EVP_PKEY *key, X509_REQ **out)
{
	X509_REQ *req = NULL;
	X509_NAME *name = NULL;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_EXTENSION *ext = NULL;
	int rc;

	*out = NULL;
	rc = csr_subject_parse(p->subject, &name);
	if (rc < 0)
		goto out;
	req = X509_REQ_new();
	exts = sk_X509_EXTENSION_new_null();
	if (req == NULL || exts == NULL) {
		rc = sa_fail(SA_ENOMEM, "out of memory");
		goto out;
	}
	if (!X509_REQ_set_version(req, 0) ||
	    !X509_REQ_set_subject_name(req, name) ||
	    !X509_REQ_set_pubkey(req, key)) {
		rc = sa_fail(SA_ECRYPTO, "cannot fill the certificate request");
		goto out;
	}
	if (p->n_san > 0 && (rc = san_ext(p, exts)) < 0)
		goto out;
	if (p->key_usage != NULL && *p->key_usage != '\0' &&
	    (rc = conf_ext(NID_key_usage, "key usage", p->key_usage, exts)) < 0)
		goto out;
	if (p->ext_key_usage != NULL && *p->ext_key_usage != '\0' &&
	    (rc = conf_ext(NID_ext_key_usage, "extended key usage",
			   p->ext_key_usage, exts)) < 0)
		goto out;
	if (p->cert_template != NULL && *p->cert_template != '\0') {
		rc = template_ext(p->cert_template, &ext);
		if (rc < 0)
			goto out;
		if (!sk_X509_EXTENSION_push(exts, ext)) {
			rc = sa_fail(SA_ENOMEM, "out of memory");
			goto out;
		}
		ext = NULL;
	}
	if (sk_X509_EXTENSION_num(exts) > 0 &&
	    !X509_REQ_add_extensions(req, exts)) {
		rc = sa_fail(SA_ECRYPTO, "cannot add extensions to the request");
		goto out;
	}
	if (p->challenge != NULL && (rc = add_challenge(req, p->challenge)) < 0)
		goto out;
	if (X509_REQ_sign(req, key, p->md ? p->md : EVP_sha256()) <= 0) {
		rc = sa_fail(SA_EKEY, "signing the certificate request with "
			     "the key failed; for a token key, is the key "
			     "allowed to sign (CKA_SIGN)?");
		goto out;
	}
	*out = req;
	req = NULL;
	rc = 0;
out:
	X509_EXTENSION_free(ext);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(name);
	X509_REQ_free(req);
	return rc;
}

char *csr_name_oneline(const X509_NAME *name)
{
	char *s = X509_NAME_oneline(name, NULL, 0);
	char *r;

	if (s == NULL)
		return strdup("");
	r = strdup(s);
	OPENSSL_free(s);
	return r;
}

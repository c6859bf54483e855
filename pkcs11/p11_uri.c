/*
 * p11_uri.c - RFC 7512 pkcs11: URIs (parsed by p11-kit), module
 * resolution, PIN source syntax, key specifications. No token needed:
 * everything here is unit-tested without a module.
 */
#include "p11_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/obj_mac.h>
#include <p11-kit/p11-kit.h>

#include "sa_err.h"

#ifndef P11_MODULE_DIR
#define P11_MODULE_DIR "/usr/lib/x86_64-linux-gnu/pkcs11"
#endif
#ifndef P11_PROXY_MODULE
#define P11_PROXY_MODULE "/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so"
#endif

/* Is s a "pkcs11:" URI (case-insensitive scheme)? */
int p11_is_uri(const char *s)
{
	return s != NULL && strncasecmp(s, "pkcs11:", 7) == 0;
}

/*
 * p11-kit's parse of s (scheme in any case) into u, without a message:
 * a P11_KIT_URI_* code.
 */
static int uri_parse_quiet(const char *s, P11KitUri *u)
{
	char *c;
	int r;

	if (strncmp(s, "pkcs11:", 7) == 0)
		return p11_kit_uri_parse(s, P11_KIT_URI_FOR_ANY, u);
	/* p11-kit wants the scheme in lower case */
	c = strdup(s);
	if (c == NULL)
		return P11_KIT_URI_UNEXPECTED;
	memcpy(c, "pkcs11:", 7);
	r = p11_kit_uri_parse(c, P11_KIT_URI_FOR_ANY, u);
	OPENSSL_cleanse(c, strlen(c));
	free(c);
	return r;
}

/*
 * Parse s into a new P11KitUri (caller frees with p11_kit_uri_free).
 * The URI is echoed only through p11_uri_display(): it may hold a PIN.
 */
int p11_uri_parse(const char *s, P11KitUri **out)
{
	P11KitUri *u = NULL;
	char *shown;
	int r, rc;

	*out = NULL;
	if (!p11_is_uri(s)) {
		shown = s ? p11_uri_display(s) : NULL;
		rc = sa_fail_noossl(SA_EUSAGE, "'%s' is not a pkcs11: URI; "
				    "write it as pkcs11:token=...;object=...",
				    shown ? shown : "(null)");
		free(shown);
		return rc;
	}
	u = p11_kit_uri_new();
	if (u == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory parsing a pkcs11: URI");
	r = uri_parse_quiet(s, u);
	if (r != P11_KIT_URI_OK) {
		p11_kit_uri_free(u);
		return sa_fail_noossl(SA_EUSAGE, "the pkcs11: URI is not valid: %s; "
				      "check RFC 7512 syntax (attributes separated "
				      "by ';', query attributes after '?', "
				      "special characters %%-encoded)",
				      p11_kit_uri_message(r));
	}
	*out = u;
	return 0;
}

/* Is [p, p+n) the attribute name want (case, blanks, %-escapes ignored)? */
static int attr_name_is(const char *p, size_t n, const char *want)
{
	size_t i = 0;

	while (n > 0) {
		int c = (unsigned char)*p;

		if (c == '%' && n >= 3 && isxdigit((unsigned char)p[1]) &&
		    isxdigit((unsigned char)p[2])) {
			char h[3] = { p[1], p[2], 0 };

			c = (int)strtol(h, NULL, 16);
			p += 3;
			n -= 3;
		} else {
			p++;
			n--;
		}
		if (isspace(c))
			continue;
		if (want[i] == '\0' || tolower(c) != want[i])
			return 0;
		i++;
	}
	return want[i] == '\0';
}

/*
 * The textual fallback for a string p11-kit does not parse: every
 * attribute (between ';', '?' and '&') named pin-value or pin-source is
 * dropped with its separator, control characters are %-encoded.
 */
static char *display_strip(const char *s)
{
	size_t len = strlen(s), i = 0, k = 0;
	char *out = malloc(3 * len + 1);
	int in_query = 0, query_shown = 0, first = 1, is_uri = p11_is_uri(s);

	if (out == NULL)
		return NULL;
	if (is_uri) {
		memcpy(out, s, 7);
		k = i = 7;
	}
	while (i <= len) {
		char sep = 0;
		size_t n, eq, j;

		if (!first && i < len && strchr(";?&", s[i]) != NULL)
			sep = s[i++];
		else if (!first && i >= len)
			break;
		if (sep == '?')
			in_query = 1;
		n = strcspn(s + i, ";?&");
		eq = strcspn(s + i, "=;?&");
		if (eq < n && (attr_name_is(s + i, eq, "pin-value") ||
			       attr_name_is(s + i, eq, "pin-source"))) {
			i += n;
			first = 0;
			continue;
		}
		if (in_query && !query_shown) {
			sep = '?';
			query_shown = 1;
		} else if (sep == ';' && is_uri && k == 7) {
			sep = 0; /* the first path attribute went */
		}
		if (sep != 0)
			out[k++] = sep;
		for (j = 0; j < n; j++) {
			unsigned char c = (unsigned char)s[i + j];

			if (c < 0x20 || c == 0x7f)
				k += (size_t)sprintf(out + k, "%%%02X", c);
			else
				out[k++] = (char)c;
		}
		i += n;
		first = 0;
		if (i >= len)
			break;
	}
	out[k] = '\0';
	return out;
}

/* See p11.h. */
char *p11_uri_display(const char *s)
{
	P11KitUri *u;
	char *out = NULL;

	if (s == NULL)
		return NULL;
	if (!p11_is_uri(s))
		return display_strip(s);
	u = p11_kit_uri_new();
	if (u == NULL)
		return NULL;
	if (uri_parse_quiet(s, u) == P11_KIT_URI_OK)
		out = p11_uri_format(u, P11_KIT_URI_FOR_ANY);
	p11_kit_uri_free(u);
	return out != NULL ? out : display_strip(s);
}

/* A p11-kit registered module by name, or a module file in the module dir. */
static int resolve_name(const char *name, char **out)
{
	CK_FUNCTION_LIST **mods = NULL;
	CK_FUNCTION_LIST *m;
	char *fn = NULL, *path = NULL;
	static const char *const pat[] = { "%s/%s", "%s/%s.so", "%s/lib%s.so",
					   "%s/%s-pkcs11.so" };
	size_t i;
	int rc = SA_EKEY;

	mods = p11_kit_modules_load(NULL, P11_KIT_MODULE_UNMANAGED);
	m = mods ? p11_kit_module_for_name(mods, name) : NULL;
	if (m != NULL)
		fn = p11_kit_module_get_filename(m);
	if (fn != NULL) {
		if (fn[0] == '/')
			path = strdup(fn);
		else if (asprintf(&path, "%s/%s", P11_MODULE_DIR, fn) < 0)
			path = NULL;
		if (path == NULL) {
			rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
			goto out;
		}
		rc = 0;
		goto out;
	}
	if (strchr(name, '/') == NULL) {
		for (i = 0; i < sizeof(pat) / sizeof(pat[0]); i++) {
			if (asprintf(&path, pat[i], P11_MODULE_DIR, name) < 0) {
				path = NULL;
				rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
				goto out;
			}
			if (access(path, R_OK) == 0) {
				rc = 0;
				goto out;
			}
			free(path);
			path = NULL;
		}
	}
	rc = sa_fail_noossl(SA_EKEY, "no PKCS#11 module named '%s': it is neither "
			    "registered with p11-kit (%s/*.module) nor a file "
			    "in %s; give the module's path with --module or "
			    "module-path=", name, "/usr/share/p11-kit/modules",
			    P11_MODULE_DIR);
out:
	free(fn);
	if (mods != NULL)
		p11_kit_modules_release(mods);
	if (rc == 0)
		*out = path;
	else
		free(path);
	return rc;
}

static int resolve_path(const char *p, char **out)
{
	if (access(p, R_OK) != 0)
		return sa_fail_noossl(SA_EKEY, "PKCS#11 module %s: %s; check the "
				      "path given with --module or module-path=",
				      p, strerror(errno));
	*out = strdup(p);
	if (*out == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	return 0;
}

/*
 * Which module file to load: opt_module (a path, or a name as for
 * module-name), else the URI's module-path, else its module-name resolved
 * through p11-kit's registry, else p11-kit's proxy of all registered
 * modules. *out is a new string.
 */
int p11_module_resolve(const char *opt_module, P11KitUri *uri, char **out)
{
	const char *s;

	*out = NULL;
	if (opt_module != NULL && opt_module[0] != '\0') {
		if (strchr(opt_module, '/') != NULL)
			return resolve_path(opt_module, out);
		return resolve_name(opt_module, out);
	}
	if (uri != NULL && (s = p11_kit_uri_get_module_path(uri)) != NULL)
		return resolve_path(s, out);
	if (uri != NULL && (s = p11_kit_uri_get_module_name(uri)) != NULL)
		return resolve_name(s, out);
	if (access(P11_PROXY_MODULE, R_OK) == 0)
		return resolve_path(P11_PROXY_MODULE, out);
	return sa_fail_noossl(SA_EKEY, "no PKCS#11 module given and p11-kit's "
			      "proxy %s is not installed; use --module PATH or "
			      "module-path=PATH in the pkcs11: URI",
			      P11_PROXY_MODULE);
}

/*
 * Parse a pin-source value: "file:/path", "file:///path", a plain path,
 * or (our extension) "env:VAR". *arg is a new string.
 */
int p11_pin_source_parse(const char *src, int *kind, char **arg)
{
	const char *a;
	int k;

	*kind = P11_PIN_NONE;
	*arg = NULL;
	if (src == NULL || src[0] == '\0')
		return sa_fail_noossl(SA_EUSAGE, "empty pin-source in the pkcs11: "
				      "URI; use pin-source=file:/path or env:VAR");
	if (strncasecmp(src, "env:", 4) == 0) {
		k = P11_PIN_ENV;
		a = src + 4;
		if (a[0] == '\0')
			return sa_fail_noossl(SA_EUSAGE, "pin-source=env: names no "
					      "variable; write pin-source=env:VAR");
	} else if (strncasecmp(src, "file://", 7) == 0) {
		k = P11_PIN_FILE;
		a = src + 7;
		/* file://localhost/path or file:///path */
		if (strncasecmp(a, "localhost/", 10) == 0)
			a += 9;
		if (a[0] != '/')
			return sa_fail_noossl(SA_EUSAGE, "pin-source '%s' names a "
					      "remote or relative file; use "
					      "file:/absolute/path", src);
	} else if (strncasecmp(src, "file:", 5) == 0) {
		k = P11_PIN_FILE;
		a = src + 5;
	} else if (strchr(src, ':') == NULL) {
		k = P11_PIN_FILE;
		a = src;
	} else {
		return sa_fail_noossl(SA_EUSAGE, "pin-source '%s' is not "
				      "understood; use file:/path or env:VAR", src);
	}
	if (a[0] == '\0')
		return sa_fail_noossl(SA_EUSAGE, "pin-source '%s' names no file", src);
	*arg = strdup(a);
	if (*arg == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	*kind = k;
	return 0;
}

/*
 * Format u, the one formatter of every URI shown: its PIN attributes
 * (pin-value, pin-source) are removed from u first; p11-kit %-encodes
 * control characters. NULL on failure. Caller frees.
 */
char *p11_uri_format(P11KitUri *u, int type)
{
	char *s = NULL;

	p11_kit_uri_set_pin_value(u, NULL);
	p11_kit_uri_set_pin_source(u, NULL);
	if (p11_kit_uri_format(u, (P11KitUriType)type, &s) != P11_KIT_URI_OK)
		return NULL;
	return s;
}

/* A token-info field of p11-kit's parse: blank-padded, all NUL when the
 * URI does not name it. */
static char *token_field(const unsigned char *f, size_t n, size_t *len)
{
	size_t i, k = n;
	char *v;

	for (i = 0; i < n && f[i] == '\0'; i++)
		;
	if (i == n)
		return NULL;
	while (k > 0 && (f[k - 1] == ' ' || f[k - 1] == '\0'))
		k--;
	v = malloc(k + 1);
	if (v == NULL)
		return NULL;
	memcpy(v, f, k);
	v[k] = '\0';
	if (len != NULL)
		*len = k;
	return v;
}

/* See p11.h. */
char *p11_uri_attr(const char *uri, const char *attr, size_t *len)
{
	P11KitUri *u = NULL;
	CK_ATTRIBUTE *a = NULL;
	CK_TOKEN_INFO *ti;
	char *v = NULL;

	if (len != NULL)
		*len = 0;
	if (!p11_is_uri(uri) || attr == NULL)
		return NULL;
	u = p11_kit_uri_new();
	if (u == NULL || uri_parse_quiet(uri, u) != P11_KIT_URI_OK)
		goto out;
	ti = p11_kit_uri_get_token_info(u);
	if (strcmp(attr, "object") == 0)
		a = p11_kit_uri_get_attribute(u, CKA_LABEL);
	else if (strcmp(attr, "id") == 0)
		a = p11_kit_uri_get_attribute(u, CKA_ID);
	else if (strcmp(attr, "token") == 0)
		v = token_field(ti->label, sizeof(ti->label), len);
	else if (strcmp(attr, "manufacturer") == 0)
		v = token_field(ti->manufacturerID, sizeof(ti->manufacturerID),
				len);
	else if (strcmp(attr, "serial") == 0)
		v = token_field(ti->serialNumber, sizeof(ti->serialNumber), len);
	else if (strcmp(attr, "model") == 0)
		v = token_field(ti->model, sizeof(ti->model), len);
	if (a != NULL) {
		v = malloc(a->ulValueLen + 1);
		if (v != NULL) {
			if (a->ulValueLen > 0)
				memcpy(v, a->pValue, a->ulValueLen);
			v[a->ulValueLen] = '\0';
			if (len != NULL)
				*len = a->ulValueLen;
		}
	}
out:
	if (u != NULL)
		p11_kit_uri_free(u);
	return v;
}

/* See p11.h. */
char *p11_uri_token_key(const char *uri)
{
	P11KitUri *u = NULL;
	char *s = NULL;

	if (!p11_is_uri(uri))
		return NULL;
	u = p11_kit_uri_new();
	if (u == NULL || uri_parse_quiet(uri, u) != P11_KIT_URI_OK)
		goto out;
	p11_kit_uri_clear_attribute(u, CKA_LABEL);
	p11_kit_uri_clear_attribute(u, CKA_ID);
	p11_kit_uri_clear_attribute(u, CKA_CLASS);
	if (p11_kit_uri_format(u, P11_KIT_URI_FOR_ANY, &s) != P11_KIT_URI_OK)
		s = NULL;
out:
	if (u != NULL)
		p11_kit_uri_free(u);
	return s;
}

/* Lower-case hex of p[0..n). Caller frees. */
char *p11_hex(const unsigned char *p, size_t n)
{
	static const char d[] = "0123456789abcdef";
	char *s = malloc(2 * n + 1);
	size_t i;

	if (s == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		s[2 * i] = d[p[i] >> 4];
		s[2 * i + 1] = d[p[i] & 15];
	}
	s[2 * n] = '\0';
	return s;
}

/* Parse "rsa:2048" ... "ec:P-384" (see p11.h). */
int p11_keyspec_parse(const char *s, struct p11_keyspec *out)
{
	static const struct {
		const char *name;
		int type, bits, nid;
	} tab[] = {
		{ "rsa:2048", EVP_PKEY_RSA, 2048, 0 },
		{ "rsa:3072", EVP_PKEY_RSA, 3072, 0 },
		{ "rsa:4096", EVP_PKEY_RSA, 4096, 0 },
		{ "rsa", EVP_PKEY_RSA, 2048, 0 },
		{ "ec:P-256", EVP_PKEY_EC, 256, NID_X9_62_prime256v1 },
		{ "ec:prime256v1", EVP_PKEY_EC, 256, NID_X9_62_prime256v1 },
		{ "ec:secp256r1", EVP_PKEY_EC, 256, NID_X9_62_prime256v1 },
		{ "ec:P-384", EVP_PKEY_EC, 384, NID_secp384r1 },
		{ "ec:secp384r1", EVP_PKEY_EC, 384, NID_secp384r1 },
		{ "ec", EVP_PKEY_EC, 256, NID_X9_62_prime256v1 },
	};
	size_t i;

	memset(out, 0, sizeof(*out));
	for (i = 0; s != NULL && i < sizeof(tab) / sizeof(tab[0]); i++) {
		if (strcasecmp(s, tab[i].name) != 0)
			continue;
		out->type = tab[i].type;
		out->bits = tab[i].bits;
		out->nid = tab[i].nid;
		return 0;
	}
	return sa_fail_noossl(SA_EUSAGE, "key type '%s' is not supported; use "
			      "rsa:2048, rsa:3072, rsa:4096, ec:P-256 or ec:P-384",
			      s ? s : "(none)");
}

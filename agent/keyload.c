/*
 * keyload.c - file keys and token keys behind one function.
 */
#include "keyload.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "sa_err.h"
#include "sa_log.h"

#define KEYLOAD_MAX_TOKENS 8

struct kl_token {
	char *id;       /* token-identifying part of the URI */
	p11_token *t;
};

struct keyload {
	struct p11_open_opts opts;
	struct kl_token tok[KEYLOAD_MAX_TOKENS];
	int n;
};

int keyload_new(const struct p11_open_opts *opts, struct keyload **out)
{
	struct keyload *kl;

	*out = NULL;
	kl = calloc(1, sizeof(*kl));
	if (kl == NULL)
		return sa_fail(SA_ENOMEM, "out of memory");
	if (opts != NULL)
		kl->opts = *opts;
	*out = kl;
	return 0;
}

void keyload_free(struct keyload *kl)
{
	int i;

	if (kl == NULL)
		return;
	for (i = kl->n - 1; i >= 0; i--) {
		p11_token_close(kl->tok[i].t);
		free(kl->tok[i].id);
	}
	free(kl);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Percent-decode [s, s+n). Caller frees. */
static char *pct_decode(const char *s, size_t n)
{
	char *out = malloc(n + 1);
	size_t i, k = 0;

	if (out == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n &&
		    hexval((unsigned char)s[i + 1]) >= 0 &&
		    hexval((unsigned char)s[i + 2]) >= 0) {
			out[k++] = (char)(hexval((unsigned char)s[i + 1]) * 16 +
					  hexval((unsigned char)s[i + 2]));
			i += 2;
		} else {
			out[k++] = s[i];
		}
	}
	out[k] = '\0';
	return out;
}

char *keyload_uri_attr(const char *uri, const char *attr)
{
	const char *p, *end;
	size_t al = strlen(attr);

	if (uri == NULL || strncasecmp(uri, "pkcs11:", 7) != 0)
		return NULL;
	p = uri + 7;
	end = p + strcspn(p, "?");
	while (p < end) {
		const char *e = memchr(p, ';', (size_t)(end - p));

		if (e == NULL)
			e = end;
		if ((size_t)(e - p) > al && strncmp(p, attr, al) == 0 &&
		    p[al] == '=')
			return pct_decode(p + al + 1, (size_t)(e - p) - al - 1);
		p = e + 1;
	}
	return NULL;
}

/*
 * The token-identifying part of a URI: its path attributes except the
 * object ones, plus its query (module, PIN source). Two URIs with the
 * same part name the same token. Caller frees.
 */
static char *token_id(const char *uri)
{
	static const char *const objattr[] = { "object=", "id=", "type=" };
	const char *p = uri + 7, *end = p + strcspn(p, "?");
	size_t cap = strlen(uri) + 2, n = 0, i;
	char *out = malloc(cap);

	if (out == NULL)
		return NULL;
	while (p < end) {
		const char *e = memchr(p, ';', (size_t)(end - p));
		int skip = 0;

		if (e == NULL)
			e = end;
		for (i = 0; i < sizeof(objattr) / sizeof(objattr[0]); i++)
			if (strncmp(p, objattr[i], strlen(objattr[i])) == 0)
				skip = 1;
		if (!skip && e > p) {
			memcpy(out + n, p, (size_t)(e - p));
			n += (size_t)(e - p);
			out[n++] = ';';
		}
		p = e + 1;
	}
	strcpy(out + n, end);
	return out;
}

int keyload_token(struct keyload *kl, const char *uri, p11_token **out)
{
	char *id;
	int i, rc;

	*out = NULL;
	id = token_id(uri);
	if (id == NULL)
		return sa_fail(SA_ENOMEM, "out of memory");
	for (i = 0; i < kl->n; i++)
		if (strcmp(kl->tok[i].id, id) == 0) {
			free(id);
			*out = kl->tok[i].t;
			return 0;
		}
	if (kl->n == KEYLOAD_MAX_TOKENS) {
		free(id);
		return sa_fail(SA_EUSAGE, "too many different tokens in one run");
	}
	rc = p11_token_open(uri, &kl->opts, &kl->tok[kl->n].t);
	if (rc < 0) {
		free(id);
		return rc;
	}
	kl->tok[kl->n].id = id;
	*out = kl->tok[kl->n++].t;
	return 0;
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	*(int *)u = 1;
	return -1;
}

int keyload_file_get1(const char *path, EVP_PKEY **out)
{
	EVP_PKEY *k = NULL;
	BIO *b;
	int asked = 0;

	*out = NULL;
	b = BIO_new_file(path, "rb");
	if (b == NULL)
		return sa_fail_noossl(SA_EIO, "cannot read the private key "
				      "file %s: %s", path,
				      strerror(errno ? errno : ENOENT));
	k = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, &asked);
	if (k == NULL && !asked) {
		ERR_clear_error();
		BIO_reset(b);
		k = d2i_PrivateKey_bio(b, NULL);
	}
	BIO_free(b);
	if (k == NULL) {
		if (asked)
			return sa_fail_noossl(SA_EKEY, "the private key in %s is "
					      "encrypted; decrypt it (openssl "
					      "pkey -in %s -out plain.key) or "
					      "move it into a token", path, path);
		return sa_fail(SA_EKEY, "%s holds no private key (PEM or DER "
			       "PKCS#8, PKCS#1 or SEC1)", path);
	}
	*out = k;
	return 0;
}

int keyload_get1(struct keyload *kl, const char *name, EVP_PKEY **out,
		 p11_token **tok_out)
{
	p11_token *t = NULL;
	int rc;

	*out = NULL;
	if (tok_out != NULL)
		*tok_out = NULL;
	if (name == NULL || *name == '\0')
		return sa_fail_noossl(SA_EUSAGE, "no key given");
	if (!p11_is_uri(name))
		return keyload_file_get1(name, out);
	rc = keyload_token(kl, name, &t);
	if (rc < 0)
		return rc;
	rc = p11_key_get1(t, name, out);
	if (rc < 0)
		return rc;
	if (sa_log_level() >= SA_LOG_VERBOSE) {
		char shown[KEYLOAD_SHOWN];

		sa_verbose("using the key %s in the token",
			   keyload_display(name, shown, sizeof(shown)));
	}
	if (tok_out != NULL)
		*tok_out = t;
	return 0;
}

/* See keyload.h. */
const char *keyload_display(const char *name, char *buf, size_t len)
{
	char *d;
	size_t n;

	if (len == 0)
		return "";
	d = name != NULL ? p11_uri_display(name) : NULL;
	if (d == NULL) {
		snprintf(buf, len, "?");
		return buf;
	}
	n = strlen(d);
	if (n >= len)
		n = len - 1;
	memcpy(buf, d, n);
	buf[n] = '\0';
	free(d);
	return buf;
}

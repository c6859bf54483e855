/*
 * keyload.c - file keys and token keys behind one function.
 */
#include "keyload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
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
		/* it may hold a pin-value */
		OPENSSL_cleanse(kl->tok[i].id, strlen(kl->tok[i].id));
		free(kl->tok[i].id);
	}
	free(kl);
}

int keyload_token(struct keyload *kl, const char *uri, p11_token **out)
{
	char *id;
	int i, rc;

	*out = NULL;
	id = p11_uri_token_key(uri);
	if (id == NULL)
		return sa_fail_noossl(SA_EUSAGE, "cannot read the token URI: "
				      "write it as pkcs11:token=...;object=...");
	for (i = 0; i < kl->n; i++)
		if (strcmp(kl->tok[i].id, id) == 0) {
			OPENSSL_cleanse(id, strlen(id));
			free(id);
			*out = kl->tok[i].t;
			return 0;
		}
	if (kl->n == KEYLOAD_MAX_TOKENS) {
		OPENSSL_cleanse(id, strlen(id));
		free(id);
		return sa_fail(SA_EUSAGE, "too many different tokens in one run");
	}
	rc = p11_token_open(uri, &kl->opts, &kl->tok[kl->n].t);
	if (rc < 0) {
		OPENSSL_cleanse(id, strlen(id));
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
		 p11_keyobj **obj_out)
{
	p11_keyobj *obj = NULL;
	p11_token *t = NULL;
	int rc;

	*out = NULL;
	if (obj_out != NULL)
		*obj_out = NULL;
	if (name == NULL || *name == '\0')
		return sa_fail_noossl(SA_EUSAGE, "no key given");
	if (!p11_is_uri(name))
		return keyload_file_get1(name, out);
	rc = keyload_token(kl, name, &t);
	if (rc < 0)
		return rc;
	rc = p11_key_get1(t, name, &obj);
	if (rc < 0)
		return rc;
	if (sa_log_level() >= SA_LOG_VERBOSE) {
		char shown[KEYLOAD_SHOWN];

		sa_verbose("using the key %s in the token",
			   keyload_display(name, shown, sizeof(shown)));
	}
	*out = p11_keyobj_get0_pkey(obj);
	if (obj_out != NULL) {
		*obj_out = obj;
		return 0;
	}
	/* the handle alone, the caller's own reference */
	if (EVP_PKEY_up_ref(*out) != 1) {
		*out = NULL;
		rc = sa_fail(SA_ECRYPTO, "cannot keep the key handle");
	}
	p11_keyobj_free(obj);
	return rc;
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

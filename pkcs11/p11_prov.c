/*
 * p11_prov.c - token private keys as EVP_PKEY handles: a small OpenSSL 3
 * provider of our own ("scep-agent-pkcs11", built in, never configured by
 * users): its key manager (here) for RSA and EC keys, and its operations
 * (p11_prov_ops.c): RSA PKCS#1 v1.5 and ECDSA signatures and RSA PKCS#1
 * v1.5 decryption, each done with C_Sign or C_Decrypt on the session
 * p11_token already holds.
 *
 * Why not libp11: libp11 0.4.12/0.4.13 (Debian 12/13) hang in their
 * session pool and crash loading an RSA key when a token fails in the
 * middle of a call (docs/faults.md). Here every PKCS#11 call is ours and
 * every CK_RV is checked: a failed call is an error with the token's words
 * (also kept for p11_fault()), never a wait and never a crash.
 *
 * Key data: the token object handle plus the public half as a plain key of
 * OpenSSL's default provider (read from the token when the handle is
 * made), which answers every question about the public key (size, bits,
 * encoding, comparison). Exporting the private half is refused, so OpenSSL
 * never moves a token key to another provider: operations on it come here.
 * A public key imported from elsewhere (EVP_PKEY_eq of a certificate's key
 * and a token key) becomes key data without a token object.
 *
 * The process prefers the default provider's algorithms
 * ("?provider=default"), so that keys of the default provider are never
 * handed to this provider by an unqualified fetch.
 */
#include "p11_int.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "sa_err.h"
#include "sa_log.h"

#define PROV_NAME "scep-agent-pkcs11"
#define PROV_PROPS "provider=" PROV_NAME
#define HANDOFF_PARAM "scep-agent-pkcs11-handoff"

/* The key data p11_prov_key_new() is handing to import(); see there. */
static struct p11_pkey *handoff;
static OSSL_PROVIDER *prov, *prov_default;

/* ----- key manager ----- */

static void *km_new(void *provctx)
{
	(void)provctx;
	return calloc(1, sizeof(struct p11_pkey));
}

static void km_free(void *kd)
{
	struct p11_pkey *k = kd;

	if (k == NULL)
		return;
	EVP_PKEY_free(k->pub);
	free(k->what);
	free(k);
}

static int km_has(const void *kd, int selection)
{
	const struct p11_pkey *k = kd;

	if (k == NULL || k->pub == NULL)
		return 0;
	if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) && k->fl == NULL)
		return 0;
	return 1;
}

static int km_get_params(void *kd, OSSL_PARAM params[])
{
	struct p11_pkey *k = kd;

	return k != NULL && k->pub != NULL && EVP_PKEY_get_params(k->pub, params);
}

static const OSSL_PARAM km_rsa_params[] = {
	OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
	OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
	OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
	OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
	OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
	OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
	OSSL_PARAM_END
};

static const OSSL_PARAM km_ec_params[] = {
	OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
	OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
	OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
	OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
	OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
	OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
	OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
	OSSL_PARAM_END
};

static const OSSL_PARAM *km_rsa_gettable(void *provctx)
{
	(void)provctx;
	return km_rsa_params;
}

static const OSSL_PARAM *km_ec_gettable(void *provctx)
{
	(void)provctx;
	return km_ec_params;
}

static const OSSL_PARAM *km_rsa_types(int selection)
{
	(void)selection;
	return km_rsa_params + 4;
}

static const OSSL_PARAM *km_ec_types(int selection)
{
	(void)selection;
	return km_ec_params + 4;
}

/*
 * A token key (the handoff of p11_prov_key_new), or a public key from
 * elsewhere (EVP_PKEY_eq exporting a certificate's key to us).
 */
static int km_import(void *kd, int type, int selection, const OSSL_PARAM params[])
{
	struct p11_pkey *k = kd;
	EVP_PKEY_CTX *c = NULL;
	int ok = 0;

	if (k == NULL || k->pub != NULL)
		return 0;
	if (OSSL_PARAM_locate_const(params, HANDOFF_PARAM) != NULL) {
		if (handoff == NULL || handoff->type != type)
			return 0;
		*k = *handoff;
		free(handoff);
		handoff = NULL;
		return 1;
	}
	if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) == 0)
		return 0;
	c = EVP_PKEY_CTX_new_from_name(NULL, type == EVP_PKEY_RSA ? "RSA" : "EC",
				       "provider=default");
	if (c != NULL && EVP_PKEY_fromdata_init(c) > 0 &&
	    EVP_PKEY_fromdata(c, &k->pub, EVP_PKEY_PUBLIC_KEY,
			      (OSSL_PARAM *)params) > 0) {
		k->type = type;
		ok = 1;
	}
	EVP_PKEY_CTX_free(c);
	return ok;
}

static int km_rsa_import(void *kd, int selection, const OSSL_PARAM params[])
{
	return km_import(kd, EVP_PKEY_RSA, selection, params);
}

static int km_ec_import(void *kd, int selection, const OSSL_PARAM params[])
{
	return km_import(kd, EVP_PKEY_EC, selection, params);
}

/* The public half only: a token's private key never leaves it. */
static int km_export(void *kd, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
	struct p11_pkey *k = kd;
	OSSL_PARAM *params = NULL;
	int ok;

	if (k == NULL || k->pub == NULL)
		return 0;
	if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) && k->fl != NULL)
		return 0;
	if (EVP_PKEY_todata(k->pub, EVP_PKEY_PUBLIC_KEY, &params) <= 0)
		return 0;
	ok = cb(params, cbarg);
	OSSL_PARAM_free(params);
	return ok;
}

static int km_match(const void *a, const void *b, int selection)
{
	const struct p11_pkey *x = a, *y = b;

	(void)selection;
	return x != NULL && y != NULL && x->pub != NULL && y->pub != NULL &&
	       EVP_PKEY_eq(x->pub, y->pub) == 1;
}

static const char *km_ec_opname(int op)
{
	return op == OSSL_OP_SIGNATURE ? "ECDSA" : NULL;
}

static const char *km_rsa_opname(int op)
{
	return op == OSSL_OP_SIGNATURE || op == OSSL_OP_ASYM_CIPHER ? "RSA" : NULL;
}

#define KM_COMMON \
	{ OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))km_new }, \
	{ OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))km_free }, \
	{ OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))km_has }, \
	{ OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))km_get_params }, \
	{ OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))km_export }, \
	{ OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))km_match }

static const OSSL_DISPATCH km_rsa[] = {
	KM_COMMON,
	{ OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))km_rsa_gettable },
	{ OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))km_rsa_import },
	{ OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))km_rsa_types },
	{ OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))km_rsa_types },
	{ OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))km_rsa_opname },
	{ 0, NULL }
};

static const OSSL_DISPATCH km_ec[] = {
	KM_COMMON,
	{ OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))km_ec_gettable },
	{ OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))km_ec_import },
	{ OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))km_ec_types },
	{ OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))km_ec_types },
	{ OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))km_ec_opname },
	{ 0, NULL }
};

/* ----- the provider ----- */

static const OSSL_ALGORITHM alg_keymgmt[] = {
	{ "RSA:rsaEncryption", PROV_PROPS, km_rsa, "token RSA key" },
	{ "EC:id-ecPublicKey", PROV_PROPS, km_ec, "token EC key" },
	{ NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM alg_signature[] = {
	{ "RSA:rsaEncryption", PROV_PROPS, p11_prov_signature, "RSA PKCS#1 v1.5 in a token" },
	{ "ECDSA", PROV_PROPS, p11_prov_signature, "ECDSA in a token" },
	{ NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM alg_asym[] = {
	{ "RSA:rsaEncryption", PROV_PROPS, p11_prov_asym_cipher, "RSA PKCS#1 v1.5 in a token" },
	{ NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM *prov_query(void *provctx, int op, int *no_cache)
{
	(void)provctx;
	*no_cache = 0;
	switch (op) {
	case OSSL_OP_KEYMGMT:
		return alg_keymgmt;
	case OSSL_OP_SIGNATURE:
		return alg_signature;
	case OSSL_OP_ASYM_CIPHER:
		return alg_asym;
	}
	return NULL;
}

static const OSSL_DISPATCH prov_fns[] = {
	{ OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))prov_query },
	{ 0, NULL }
};

static int prov_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
		     const OSSL_DISPATCH **out, void **provctx)
{
	(void)handle;
	(void)in;
	*out = prov_fns;
	*provctx = NULL;
	return 1;
}

/* Load the provider (and the default one, which it relies on) once. */
static int prov_load(void)
{
	if (prov != NULL)
		return 0;
	if (prov_default == NULL &&
	    (prov_default = OSSL_PROVIDER_load(NULL, "default")) == NULL)
		return sa_fail(SA_EINTERNAL, "cannot load OpenSSL's default "
			       "provider");
	if (!OSSL_PROVIDER_add_builtin(NULL, PROV_NAME, prov_init) ||
	    (prov = OSSL_PROVIDER_load(NULL, PROV_NAME)) == NULL)
		return sa_fail(SA_EINTERNAL, "cannot load the provider for token "
			       "keys");
	/* unqualified fetches (keys of the default provider) stay there */
	if (!EVP_set_default_properties(NULL, "?provider=default"))
		return sa_fail(SA_EINTERNAL, "cannot set OpenSSL's default "
			       "properties");
	return 0;
}

/* See p11_int.h. */
void p11_prov_release(void)
{
	if (prov != NULL)
		OSSL_PROVIDER_unload(prov);
	if (prov_default != NULL)
		OSSL_PROVIDER_unload(prov_default);
	prov = prov_default = NULL;
}

/* See p11_int.h. */
int p11_prov_key_new(p11_token *t, CK_OBJECT_HANDLE priv, EVP_PKEY **out)
{
	struct p11_pkey *k = NULL;
	OSSL_PARAM params[2];
	EVP_PKEY_CTX *c = NULL;
	unsigned char *lab = NULL;
	CK_ULONG len = 0;
	int rc, one = 1;
	size_t n;

	*out = NULL;
	rc = prov_load();
	if (rc < 0)
		return rc;
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	rc = p11_pubkey_read(t, priv, &k->pub);
	if (rc < 0)
		goto out;
	k->type = EVP_PKEY_get_base_id(k->pub);
	k->fl = t->mod->fl;
	k->sess = t->sess;
	k->obj = priv;
	if (p11_attr_get1(t, priv, CKA_LABEL, &lab, &len) < 0)
		lab = NULL;
	n = len + strlen(t->label) + 32;
	if ((k->what = malloc(n)) == NULL) {
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	snprintf(k->what, n, "key '%.*s' on token '%s'", lab ? (int)len : 1,
		 lab ? (char *)lab : "?", t->label);
	c = EVP_PKEY_CTX_new_from_name(NULL, k->type == EVP_PKEY_RSA ? "RSA" : "EC",
				       PROV_PROPS);
	params[0] = OSSL_PARAM_construct_int(HANDOFF_PARAM, &one);
	params[1] = OSSL_PARAM_construct_end();
	handoff = k;
	if (c == NULL || EVP_PKEY_fromdata_init(c) <= 0 ||
	    EVP_PKEY_fromdata(c, out, EVP_PKEY_KEYPAIR, params) <= 0 ||
	    handoff != NULL) {
		EVP_PKEY_free(*out);
		*out = NULL;
		rc = sa_fail(SA_EINTERNAL, "cannot make a key handle for a key on "
			     "token '%s'", t->label);
		goto out;
	}
	k = NULL; /* the EVP_PKEY owns it now */
	rc = 0;
out:
	handoff = NULL;
	if (k != NULL)
		km_free(k);
	EVP_PKEY_CTX_free(c);
	free(lab);
	return rc;
}

/*
 * p11shim.c - a PKCS#11 forwarding module for tests. Not custody code:
 * never installed, never loaded by scep-agent except when a test names it
 * with --module.
 *
 * README. Load it as the module (--module .../tests/p11shim/p11shim.so).
 * Its C_GetFunctionList loads the real module and hands out a copy of
 * the real function list in which only the hooked calls differ:
 *   P11SHIM_MODULE   the real module (default: SoftHSM2,
 *                    /usr/lib/softhsm/libsofthsm2.so)
 *   P11SHIM_KEYGEN   "extractable": C_GenerateKeyPair creates the private
 *                    key with CKA_SENSITIVE false and CKA_EXTRACTABLE true,
 *                    whatever the caller's template says (a token that
 *                    ignores the template)
 * The environment is read once (config_read). To add a behaviour (fail
 * the Nth call with a chosen CKR, delays...): a field in struct shim_cfg
 * read in config_read(), a hook function, and one line in hooks_install().
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#define SHIM_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define SHIM_MAX_TMPL 64

/* Everything the shim is told, read from the environment once. */
struct shim_cfg {
	const char *module;      /* P11SHIM_MODULE */
	int keygen_extractable;  /* P11SHIM_KEYGEN=extractable */
};

static struct shim_cfg cfg;
static CK_FUNCTION_LIST *real;   /* the real module's list */
static CK_FUNCTION_LIST shim;    /* what we hand out */

static void config_read(void)
{
	const char *v;

	v = getenv("P11SHIM_MODULE");
	cfg.module = v != NULL && *v != '\0' ? v : SHIM_DEFAULT_MODULE;
	v = getenv("P11SHIM_KEYGEN");
	cfg.keygen_extractable = v != NULL && strcmp(v, "extractable") == 0;
}

/* --- hooks: each one ends by calling the real module ------------------- */

/* A token that ignores the private-key template: sensitive off, extractable on. */
static CK_RV shim_GenerateKeyPair(CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech,
				  CK_ATTRIBUTE_PTR pub, CK_ULONG npub,
				  CK_ATTRIBUTE_PTR priv, CK_ULONG npriv,
				  CK_OBJECT_HANDLE_PTR hpub,
				  CK_OBJECT_HANDLE_PTR hpriv)
{
	static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE t[SHIM_MAX_TMPL];
	CK_ULONG i, n = 0;

	if (!cfg.keygen_extractable || npriv + 2 > SHIM_MAX_TMPL)
		return real->C_GenerateKeyPair(s, mech, pub, npub, priv, npriv,
					       hpub, hpriv);
	for (i = 0; i < npriv; i++)
		if (priv[i].type != CKA_SENSITIVE &&
		    priv[i].type != CKA_EXTRACTABLE)
			t[n++] = priv[i];
	t[n++] = (CK_ATTRIBUTE){ CKA_SENSITIVE, &no, sizeof(no) };
	t[n++] = (CK_ATTRIBUTE){ CKA_EXTRACTABLE, &yes, sizeof(yes) };
	return real->C_GenerateKeyPair(s, mech, pub, npub, t, n, hpub, hpriv);
}

/* The one place where calls are hooked. */
static void hooks_install(CK_FUNCTION_LIST *fl)
{
	if (cfg.keygen_extractable)
		fl->C_GenerateKeyPair = shim_GenerateKeyPair;
}

/* --- the module's entry point ----------------------------------------- */

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	CK_C_GetFunctionList gfl;
	void *h;
	CK_RV rv;

	if (list == NULL)
		return CKR_ARGUMENTS_BAD;
	if (real == NULL) {
		config_read();
		h = dlopen(cfg.module, RTLD_NOW | RTLD_LOCAL);
		if (h == NULL)
			return CKR_GENERAL_ERROR;
		gfl = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList");
		if (gfl == NULL)
			return CKR_GENERAL_ERROR;
		rv = gfl(&real);
		if (rv != CKR_OK || real == NULL) {
			real = NULL;
			return rv != CKR_OK ? rv : CKR_GENERAL_ERROR;
		}
		shim = *real;
		shim.C_GetFunctionList = C_GetFunctionList;
		hooks_install(&shim);
	}
	*list = &shim;
	return CKR_OK;
}

/*
 * p11_token.c - load a module, find the token a URI names, one session of
 * our own on it, the one C_Login of the run, and small raw PKCS#11
 * helpers (object search, attribute reads, URIs) used by the other files.
 */
#include "p11_int.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <p11-kit/p11-kit.h>

#include "sa_err.h"
#include "sa_log.h"

/* Human words for a CK_RV. Static string. */
const char *p11_rv_str(CK_RV rv)
{
	const char *s = p11_kit_strerror(rv);

	return s ? s : "unknown PKCS#11 error";
}

/* The last failed token call, for p11_fault(). */
static char fault_msg[1800];

/*
 * sa_fail() with the PKCS#11 return value appended in words and hex, and
 * the module's own reason if it gave one (p11_capture.c); the failure is
 * also kept for p11_fault().
 */
int p11_rv_fail(int code, CK_RV rv, const char *fmt, ...)
{
	char buf[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	p11_fault_note(buf, rv);
	return sa_fail(code, "%s", fault_msg);
}

/* See p11_int.h. The module's reason (a TPM's) goes with it, once. */
void p11_fault_note(const char *what, CK_RV rv)
{
	const char *h = p11_capture_hint();

	snprintf(fault_msg, sizeof(fault_msg), "%s: %s (CK_RV 0x%lx)%s%s", what,
		 p11_rv_str(rv), (unsigned long)rv, h ? "; " : "", h ? h : "");
	p11_capture_hint_clear();
}

/* See p11_int.h. */
int p11_fault_set(int code, CK_RV rv, const char *fmt, ...)
{
	char buf[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	p11_fault_note(buf, rv);
	ERR_raise_data(ERR_LIB_USER, ERR_R_OPERATION_FAIL, "%s", fault_msg);
	return code;
}

/* See p11.h. */
const char *p11_fault(void)
{
	return fault_msg[0] ? fault_msg : NULL;
}

/* See p11.h. */
void p11_fault_clear(void)
{
	fault_msg[0] = '\0';
}

/* NUL bytes in a blank-padded field (tpm2-pkcs11 pads its model with
 * them) as blanks. */
static void unnul(unsigned char *f, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (f[i] == 0)
			f[i] = ' ';
}

/* See p11_int.h. */
CK_RV p11_token_info(struct p11_module *m, CK_SLOT_ID sid, CK_TOKEN_INFO *ti)
{
	CK_RV rv = m->fl->C_GetTokenInfo(sid, ti);

	if (rv == CKR_OK) {
		unnul(ti->label, sizeof(ti->label));
		unnul(ti->manufacturerID, sizeof(ti->manufacturerID));
		unnul(ti->model, sizeof(ti->model));
		unnul(ti->serialNumber, sizeof(ti->serialNumber));
	}
	return rv;
}

/* Blank-padded PKCS#11 string to a new C string. */
char *p11_str_trim(const unsigned char *s, size_t n)
{
	char *r = p11_kit_space_strdup(s, n);

	return r ? r : strdup("");
}

static struct p11_module *modules; /* loaded modules of this process */

/* Read the slot list (all slots: a token may be absent) into m. */
static int read_slots(struct p11_module *m)
{
	CK_ULONG n = 0;
	CK_RV rv;

	rv = m->fl->C_GetSlotList(CK_FALSE, NULL, &n);
	if (rv == CKR_OK && n > 0) {
		m->slots = calloc(n, sizeof(*m->slots));
		if (m->slots == NULL)
			return sa_fail_noossl(SA_ENOMEM, "out of memory");
		rv = m->fl->C_GetSlotList(CK_FALSE, m->slots, &n);
	}
	if (rv != CKR_OK)
		return p11_rv_fail(SA_EKEY, rv, "cannot list the slots of "
				   "PKCS#11 module %s", m->path);
	m->nslots = (unsigned int)n;
	m->ss = calloc(n ? n : 1, sizeof(*m->ss));
	if (m->ss == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	return 0;
}

/* See p11_int.h. */
int p11_module_rescan(struct p11_module *m)
{
	CK_SLOT_ID *old_slots = m->slots;
	struct p11_slotstate *old_ss = m->ss;
	unsigned int old_n = m->nslots, i, j;
	int rc;

	m->slots = NULL;
	m->ss = NULL;
	m->nslots = 0;
	rc = read_slots(m);
	if (rc < 0) {
		free(m->slots);
		free(m->ss);
		m->slots = old_slots;
		m->ss = old_ss;
		m->nslots = old_n;
		return rc;
	}
	/* sessions stay with their slot ids */
	for (i = 0; i < old_n; i++) {
		for (j = 0; j < m->nslots; j++)
			if (m->slots[j] == old_slots[i])
				break;
		if (j < m->nslots) {
			m->ss[j] = old_ss[i];
		} else if (old_ss[i].open) {
			m->fl->C_CloseSession(old_ss[i].sess);
		}
	}
	free(old_slots);
	OPENSSL_cleanse(old_ss, old_n * sizeof(*old_ss)); /* the PINs */
	free(old_ss);
	return 0;
}

/* Unload m (not linked in the list any more). */
static void module_free(struct p11_module *m)
{
	unsigned int i;

	if (m == NULL)
		return;
	for (i = 0; m->ss != NULL && i < m->nslots; i++) {
		if (m->ss[i].logged_in)
			m->fl->C_Logout(m->ss[i].sess);
		if (m->ss[i].open)
			m->fl->C_CloseSession(m->ss[i].sess);
	}
	if (m->ss != NULL)
		OPENSSL_cleanse(m->ss, m->nslots * sizeof(*m->ss));
	if (m->initialized)
		m->fl->C_Finalize(NULL);
	if (m->dl != NULL)
		dlclose(m->dl);
	free(m->ss);
	free(m->slots);
	free(m->path);
	free(m->real);
	free(m);
}

/*
 * Load the module at path (dlopen, C_GetFunctionList, C_Initialize with
 * the OS's locking) and read its slot list; or share the one already
 * loaded from the same file.
 */
int p11_module_get(const char *path, struct p11_module **out)
{
	CK_C_INITIALIZE_ARGS ia;
	struct p11_module *m = NULL;
	CK_C_GetFunctionList gfl;
	char *real = NULL;
	CK_RV rv;
	int rc;

	*out = NULL;
	real = realpath(path, NULL);
	if (real == NULL)
		return sa_fail_noossl(SA_EKEY, "cannot load PKCS#11 module %s: %s; "
				      "check --module / module-path", path,
				      strerror(errno));
	for (m = modules; m != NULL; m = m->next) {
		if (strcmp(m->real, real) == 0) {
			m->refs++;
			free(real);
			*out = m;
			return 0;
		}
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL || (m->path = strdup(path)) == NULL) {
		free(m);
		free(real);
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	}
	m->real = real;
	/*
	 * RTLD_NODELETE: after C_Finalize the module's code stays mapped;
	 * modules that leave threads or handlers behind (and leak-checkers
	 * reading their static pointers) survive our unloading them.
	 * RTLD_LAZY: a module's function symbols (and those of the C++
	 * runtime SoftHSM2 brings) are bound when first called, not all at
	 * load: a one-shot run calls few of them (SoftHSM2: 5.1 million
	 * instructions for the load instead of 7.5, about 1 ms).
	 */
	m->dl = dlopen(path, RTLD_LAZY | RTLD_LOCAL | RTLD_NODELETE);
	if (m->dl == NULL) {
		rc = sa_fail_noossl(SA_EKEY, "cannot load PKCS#11 module %s: %s; "
				    "check --module / module-path", path,
				    dlerror());
		goto fail;
	}
	gfl = (CK_C_GetFunctionList)dlsym(m->dl, "C_GetFunctionList");
	if (gfl == NULL) {
		rc = sa_fail_noossl(SA_EKEY, "%s is not a PKCS#11 module (no "
				    "C_GetFunctionList)", path);
		goto fail;
	}
	rv = gfl(&m->fl);
	if (rv != CKR_OK || m->fl == NULL) {
		m->fl = NULL;
		rc = p11_rv_fail(SA_EKEY, rv, "C_GetFunctionList of %s failed", path);
		goto fail;
	}
	m->fl = p11_wait_wrap(m->fl, path); /* every call bounded: p11_wait.c */
	memset(&ia, 0, sizeof(ia));
	ia.flags = CKF_OS_LOCKING_OK;
	rv = m->fl->C_Initialize(&ia);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		rc = p11_rv_fail(SA_EKEY, rv, "PKCS#11 module %s failed to "
				 "initialize; is its configuration right "
				 "(SoftHSM2: SOFTHSM2_CONF; a TPM: --tcti, "
				 "--tpm-store)?", path);
		goto fail;
	}
	/* already initialized by someone else in this process: theirs to end */
	m->initialized = rv == CKR_OK;
	/*
	 * Modules that use OpenSSL in our process leave their own errors in
	 * its queue (SoftHSM2 looks for an "rdrand" engine Debian does not
	 * ship: "could not load the shared library"), which a later failure's
	 * message would carry as if they were ours.
	 */
	ERR_clear_error();
	rc = read_slots(m);
	if (rc < 0)
		goto fail;
	m->refs = 1;
	m->next = modules;
	modules = m;
	*out = m;
	return 0;
fail:
	module_free(m);
	return rc;
}

/* Drop a reference; the last one logs out, finalizes and unloads. */
void p11_module_put(struct p11_module *m)
{
	struct p11_module **pp;

	if (m == NULL || --m->refs > 0)
		return;
	for (pp = &modules; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	}
	module_free(m);
	if (modules == NULL) {
		p11_pin_forget(); /* no token left to log in to */
		p11_prov_release();
	}
}

static int slot_matches(struct p11_module *m, CK_SLOT_ID sid, P11KitUri *u,
			CK_TOKEN_INFO *ti)
{
	CK_SLOT_ID want = p11_kit_uri_get_slot_id(u);
	CK_SLOT_INFO si;
	CK_INFO mi;

	if (p11_token_info(m, sid, ti) != CKR_OK)
		return 0;
	if (!(ti->flags & CKF_TOKEN_INITIALIZED))
		return 0;
	if (!p11_kit_uri_match_token_info(u, ti))
		return 0;
	if (m->fl->C_GetSlotInfo(sid, &si) == CKR_OK &&
	    !p11_kit_uri_match_slot_info(u, &si))
		return 0;
	if (want != (CK_SLOT_ID)-1 && want != sid)
		return 0;
	if (m->fl->C_GetInfo(&mi) == CKR_OK &&
	    !p11_kit_uri_match_module_info(u, &mi))
		return 0;
	return 1;
}

/* Pick the one initialized token the URI's attributes match. */
static int select_token(p11_token *t, P11KitUri *u)
{
	char seen[512] = "";
	CK_TOKEN_INFO ti;
	unsigned int i, n = 0;
	char *lab, *ser;
	size_t len;

	for (i = 0; i < t->mod->nslots; i++) {
		CK_SLOT_ID sid = t->mod->slots[i];

		if (!slot_matches(t->mod, sid, u, &ti)) {
			if (p11_token_info(t->mod, sid, &ti) != CKR_OK ||
			    !(ti.flags & CKF_TOKEN_INITIALIZED))
				continue;
		} else if (n++ == 0) {
			t->slot = i;
			t->info = ti;
		}
		lab = p11_str_trim(ti.label, sizeof(ti.label));
		ser = p11_str_trim(ti.serialNumber, sizeof(ti.serialNumber));
		if (lab != NULL && ser != NULL &&
		    (len = strlen(seen)) + 80 < sizeof(seen))
			snprintf(seen + len, sizeof(seen) - len, "%s'%s' (serial %s)",
				 len ? ", " : "", lab, ser);
		free(lab);
		free(ser);
	}
	if (n == 0)
		return sa_fail_noossl(SA_ENOTFOUND, "no token in %s matches the "
				      "pkcs11: URI (tokens there: %s); check "
				      "token=/serial= (list-tokens shows them)",
				      t->mod->path, seen[0] ? seen : "none");
	if (n > 1)
		return sa_fail_noossl(SA_EKEY, "%u tokens in %s match the pkcs11: "
				      "URI (%s); add token= or serial= to pick "
				      "one", n, t->mod->path, seen);
	t->slot_id = t->mod->slots[t->slot];
	t->label = p11_str_trim(t->info.label, sizeof(t->info.label));
	if (t->label == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	return 0;
}

static int unload_between; /* p11_unload_between_keys() */

/* See p11.h. */
void p11_unload_between_keys(int on)
{
	unload_between = on;
}

/* The slot state of session sess of module list fl, or NULL. */
static struct p11_slotstate *slot_of(CK_FUNCTION_LIST *fl,
				     CK_SESSION_HANDLE sess)
{
	struct p11_module *m;
	unsigned int i;

	for (m = modules; m != NULL; m = m->next)
		for (i = 0; m->fl == fl && i < m->nslots; i++)
			if (m->ss[i].open && m->ss[i].sess == sess)
				return &m->ss[i];
	return NULL;
}

/* Log out (the module unloads its keys) and in again with the PIN of
 * the first login. 1 when logged in again. */
static int relogin(CK_FUNCTION_LIST *fl, struct p11_slotstate *ss)
{
	CK_RV rv;

	if (ss == NULL || !ss->logged_in || ss->pin[0] == '\0')
		return 0;
	fl->C_Logout(ss->sess);
	rv = fl->C_Login(ss->sess, CKU_USER, (CK_UTF8CHAR *)ss->pin,
			 (CK_ULONG)strlen(ss->pin));
	ss->loaded = CK_INVALID_HANDLE;
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		ss->logged_in = 0;
		p11_rv_fail(SA_EKEY, rv, "logging in again (to unload keys) "
			    "failed");
		return 0;
	}
	return 1;
}

/* See p11_int.h. */
void p11_key_prepare(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE sess,
		     CK_OBJECT_HANDLE obj)
{
	struct p11_slotstate *ss;

	if (!unload_between || (ss = slot_of(fl, sess)) == NULL)
		return;
	if (ss->loaded != CK_INVALID_HANDLE && ss->loaded != obj) {
		sa_debug("another key than the one loaded: logging out (which "
			 "unloads it) and in again");
		relogin(fl, ss);
	}
	ss->loaded = obj ? obj : CK_INVALID_HANDLE;
}

/* See p11_int.h. */
int p11_unload_retry(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE sess, CK_RV rv)
{
	if (rv == CKR_OK || !p11_capture_unload_helps())
		return 0;
	sa_verbose("the token has no room for another loaded key: logging out "
		   "(which unloads them) and in again");
	return relogin(fl, slot_of(fl, sess));
}

/* Words for the token's user-PIN flags ("; ..."); "" when none is set. */
const char *p11_pin_flags_words(CK_FLAGS f)
{
	if (f & CKF_USER_PIN_LOCKED)
		return "; the user PIN is now LOCKED: unlock it with the SO PIN "
		       "(e.g. pkcs11-tool --init-pin --login --login-type so)";
	if (f & CKF_USER_PIN_FINAL_TRY)
		return "; the token says ONE try is left before the PIN locks: "
		       "check the PIN before trying again";
	if (f & CKF_USER_PIN_COUNT_LOW)
		return "; the token reports failed PIN attempts (count low): "
		       "it locks after a few more";
	return "";
}

static int login(p11_token *t, const struct p11_open_opts *opts, P11KitUri *u)
{
	char pin[P11_PIN_MAX], hint[1300];
	CK_SESSION_INFO si;
	CK_TOKEN_INFO ti;
	char *label = p11_str_trim(t->info.label, sizeof(t->info.label));
	CK_RV rv;
	int rc;

	if (t->mod->fl->C_GetSessionInfo(t->sess, &si) == CKR_OK &&
	    (si.state == CKS_RO_USER_FUNCTIONS || si.state == CKS_RW_USER_FUNCTIONS)) {
		/* already logged in by this process: no new C_Login */
		t->logged_in = 1;
		rc = 0;
		goto out;
	}
	if (t->info.flags & CKF_USER_PIN_LOCKED) {
		rc = sa_fail_noossl(SA_EPIN, "the user PIN of token '%s' is "
				    "locked; not trying%s", label,
				    p11_pin_flags_words(CKF_USER_PIN_LOCKED));
		goto out;
	}
	if (t->info.flags & CKF_PROTECTED_AUTHENTICATION_PATH) {
		sa_info("token '%s': enter the PIN on the reader's pad", label);
		rv = t->mod->fl->C_Login(t->sess, CKU_USER, NULL, 0);
	} else {
		rc = p11_pin_get(opts ? &opts->pin : NULL, u, label, pin,
				 sizeof(pin));
		if (rc < 0)
			goto out;
		rv = t->mod->fl->C_Login(t->sess, CKU_USER, (CK_UTF8CHAR *)pin,
					(CK_ULONG)strlen(pin));
		if (rv == CKR_OK)
			memcpy(t->ss->pin, pin, sizeof(t->ss->pin));
		OPENSSL_cleanse(pin, sizeof(pin));
	}
	if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) {
		t->ss->logged_in = rv == CKR_OK;
		t->logged_in = 1;
		rc = 0;
		goto out;
	}
	/* the module's own account of it (a TPM's lockout), if any */
	snprintf(hint, sizeof(hint), "%s%s", p11_capture_hint() ? "; " : "",
		 p11_capture_hint() ? p11_capture_hint() : "");
	memset(&ti, 0, sizeof(ti));
	t->mod->fl->C_GetTokenInfo(t->slot_id, &ti);
	if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID ||
	    rv == CKR_PIN_LEN_RANGE)
		rc = sa_fail_noossl(SA_EPIN, "wrong user PIN for token '%s' "
				    "(tried once, not retrying)%s%s", label,
				    p11_pin_flags_words(ti.flags), hint);
	else if (rv == CKR_PIN_LOCKED)
		rc = sa_fail_noossl(SA_EPIN, "the user PIN of token '%s' is "
				    "locked%s", label, hint[0] ? hint :
				    p11_pin_flags_words(CKF_USER_PIN_LOCKED));
	else if (rv == CKR_PIN_EXPIRED)
		rc = sa_fail_noossl(SA_EPIN, "the user PIN of token '%s' has "
				    "expired: set a new one first", label);
	else /* the token, not the PIN: a card pulled out, a dead reader;
	      * p11_rv_fail() adds the module's reason (hint) */
		rc = p11_rv_fail(SA_EKEY, rv, "login to token '%s' failed", label);
	p11_capture_hint_clear();
out:
	OPENSSL_cleanse(pin, sizeof(pin));
	free(label);
	return rc;
}

/* See p11.h. */
int p11_token_open(const char *uri, const struct p11_open_opts *opts,
		   p11_token **out)
{
	P11KitUri *u = NULL;
	p11_token *t = NULL;
	char *path = NULL;
	CK_RV rv;
	int rc;

	*out = NULL;
	rc = p11_uri_parse(uri, &u);
	if (rc < 0)
		goto out;
	rc = p11_module_resolve(opts ? opts->module : NULL, u, &path);
	if (rc < 0)
		goto out;
	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	rc = p11_module_get(path, &t->mod);
	if (rc < 0)
		goto out;
	rc = select_token(t, u);
	if (rc < 0)
		goto out;
	t->ss = &t->mod->ss[t->slot];
	if (!t->ss->open) {
		rv = t->mod->fl->C_OpenSession(t->slot_id, CKF_SERIAL_SESSION |
					       CKF_RW_SESSION, NULL, NULL,
					       &t->ss->sess);
		t->ss->rw = rv == CKR_OK;
		if (rv == CKR_TOKEN_WRITE_PROTECTED)
			rv = t->mod->fl->C_OpenSession(t->slot_id,
						       CKF_SERIAL_SESSION, NULL,
						       NULL, &t->ss->sess);
		if (rv != CKR_OK) {
			rc = p11_rv_fail(SA_EKEY, rv, "cannot open a session on "
					 "token '%s'", t->label);
			goto out;
		}
		t->ss->open = 1;
	}
	t->sess = t->ss->sess;
	t->rw = t->ss->rw;
	if (opts != NULL && opts->need_login &&
	    (t->info.flags & CKF_LOGIN_REQUIRED)) {
		rc = login(t, opts, u);
		if (rc < 0)
			goto out;
	}
	*out = t;
	t = NULL;
	rc = 0;
out:
	p11_token_close(t);
	free(path);
	if (u != NULL)
		p11_kit_uri_free(u);
	return rc;
}

/* See p11.h. Keys obtained from t must be freed before. */
void p11_token_close(p11_token *t)
{
	if (t == NULL)
		return;
	/* session and login stay until the module goes (see p11_slotstate) */
	p11_module_put(t->mod);
	free(t->label);
	OPENSSL_cleanse(t, sizeof(*t));
	free(t);
}

/* Is the session read-write? Else fail with a sentence about what. */
int p11_need_rw(p11_token *t, const char *what)
{
	if (t->rw)
		return 0;
	return sa_fail_noossl(SA_EKEY, "token '%s' is read-only: cannot %s",
			      t->label, what);
}

/* All objects matching tmpl; *out is a new array (NULL when none). */
int p11_find(p11_token *t, CK_ATTRIBUTE *tmpl, CK_ULONG n,
	     CK_OBJECT_HANDLE **out, CK_ULONG *count)
{
	CK_FUNCTION_LIST *f = t->mod->fl;
	CK_OBJECT_HANDLE *v = NULL, *nv, buf[64];
	CK_ULONG got, total = 0, i;
	CK_RV rv;
	int rc = 0;

	*out = NULL;
	*count = 0;
	rv = f->C_FindObjectsInit(t->sess, tmpl, n);
	if (rv != CKR_OK)
		return p11_rv_fail(SA_EKEY, rv, "C_FindObjectsInit on token '%s'",
				   t->label);
	for (;;) {
		rv = f->C_FindObjects(t->sess, buf, 64, &got);
		if (rv != CKR_OK) {
			rc = p11_rv_fail(SA_EKEY, rv, "C_FindObjects on token '%s'",
					 t->label);
			break;
		}
		if (got == 0)
			break;
		nv = realloc(v, (total + got) * sizeof(*v));
		if (nv == NULL) {
			rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
			break;
		}
		v = nv;
		for (i = 0; i < got; i++)
			v[total++] = buf[i];
	}
	f->C_FindObjectsFinal(t->sess);
	if (rc < 0) {
		free(v);
		return rc;
	}
	*out = v;
	*count = total;
	return 0;
}

/*
 * A failed C_GetAttributeValue: the object does not have the attribute
 * (or will not tell) - SA_ENOTFOUND; or the token failed - SA_EKEY, kept
 * for p11_fault() so that what follows is not blamed on the object.
 */
static int attr_fail(p11_token *t, CK_RV rv)
{
	if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE)
		return SA_ENOTFOUND;
	return p11_fault_set(SA_EKEY, rv, "C_GetAttributeValue on token '%s' "
			     "failed", t->label);
}

/* What p11_attr_get1() reads in one call: IDs, labels, moduli, points,
 * most certificates; longer values take a second call. */
#define ATTR_GUESS 2048

/*
 * Read one attribute into a new buffer (*val, NUL-terminated for
 * convenience). SA_ENOTFOUND if the object does not have it (or it is
 * sensitive); SA_EKEY if the token failed (see attr_fail()). One call
 * with a buffer of ATTR_GUESS bytes answers most reads (each call costs
 * a file-backed token such as SoftHSM2 a reload of the object); a value
 * that does not fit (CKR_BUFFER_TOO_SMALL) is asked its length, then
 * read.
 */
int p11_attr_get1(p11_token *t, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type,
		  unsigned char **val, CK_ULONG *len)
{
	CK_ATTRIBUTE a = { type, NULL, ATTR_GUESS };
	unsigned char *small;
	CK_RV rv;

	*val = NULL;
	*len = 0;
	small = malloc(ATTR_GUESS + 1);
	if (small == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	a.pValue = small;
	rv = t->mod->fl->C_GetAttributeValue(t->sess, o, &a, 1);
	if (rv == CKR_OK && a.ulValueLen != CK_UNAVAILABLE_INFORMATION &&
	    a.ulValueLen <= ATTR_GUESS) {
		unsigned char *fit = realloc(small, a.ulValueLen + 1);

		if (fit != NULL)
			small = fit;
		small[a.ulValueLen] = 0;
		*val = small;
		*len = a.ulValueLen;
		return 0;
	}
	free(small);
	if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL)
		return attr_fail(t, rv);
	if (rv == CKR_OK && a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
		return SA_ENOTFOUND;
	/* too long for the guess: its length, then the value */
	a.pValue = NULL;
	a.ulValueLen = 0;
	rv = t->mod->fl->C_GetAttributeValue(t->sess, o, &a, 1);
	if (rv != CKR_OK)
		return attr_fail(t, rv);
	if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
		return SA_ENOTFOUND;
	a.pValue = malloc(a.ulValueLen + 1);
	if (a.pValue == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	rv = t->mod->fl->C_GetAttributeValue(t->sess, o, &a, 1);
	if (rv != CKR_OK) {
		free(a.pValue);
		return attr_fail(t, rv);
	}
	((unsigned char *)a.pValue)[a.ulValueLen] = 0;
	*val = a.pValue;
	*len = a.ulValueLen;
	return 0;
}

/* A CK_BBOOL attribute: 1, 0, or -1 when unavailable. */
int p11_attr_bool(p11_token *t, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type)
{
	CK_BBOOL b = CK_FALSE;
	CK_ATTRIBUTE a = { type, &b, sizeof(b) };

	CK_RV rv = t->mod->fl->C_GetAttributeValue(t->sess, o, &a, 1);

	if (rv != CKR_OK) {
		attr_fail(t, rv);
		return -1;
	}
	return b == CK_TRUE;
}

/* A CK_ULONG attribute. SA_ENOTFOUND when unavailable. */
int p11_attr_ulong(p11_token *t, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type,
		   CK_ULONG *v)
{
	CK_ATTRIBUTE a = { type, v, sizeof(*v) };

	CK_RV rv;

	*v = 0;
	rv = t->mod->fl->C_GetAttributeValue(t->sess, o, &a, 1);
	if (rv != CKR_OK)
		return attr_fail(t, rv);
	return 0;
}

/* A URI for the token (and optionally an object), with module-path. */
static char *make_uri(p11_token *t, int with_obj, CK_OBJECT_CLASS cls,
		      const char *label, const unsigned char *id, size_t idlen)
{
	P11KitUri *u = p11_kit_uri_new();
	CK_ATTRIBUTE a;
	char *s = NULL;

	if (u == NULL)
		return NULL;
	memcpy(p11_kit_uri_get_token_info(u), &t->info, sizeof(t->info));
	p11_kit_uri_set_module_path(u, t->mod->path);
	if (with_obj) {
		a.type = CKA_CLASS;
		a.pValue = &cls;
		a.ulValueLen = sizeof(cls);
		p11_kit_uri_set_attribute(u, &a);
		if (label != NULL) {
			a.type = CKA_LABEL;
			a.pValue = (void *)label;
			a.ulValueLen = strlen(label);
			p11_kit_uri_set_attribute(u, &a);
		}
		if (id != NULL && idlen > 0) {
			a.type = CKA_ID;
			a.pValue = (void *)id;
			a.ulValueLen = idlen;
			p11_kit_uri_set_attribute(u, &a);
		}
	}
	s = p11_uri_format(u, with_obj ? P11_KIT_URI_FOR_OBJECT_ON_TOKEN
				       : P11_KIT_URI_FOR_TOKEN);
	p11_kit_uri_free(u);
	return s;
}

/* The pkcs11: URI of an object on t. Caller frees. */
char *p11_object_uri(p11_token *t, CK_OBJECT_CLASS cls, const char *label,
		     const unsigned char *id, size_t idlen)
{
	return make_uri(t, 1, cls, label, id, idlen);
}

/* See p11.h. */
char *p11_token_uri(p11_token *t)
{
	return make_uri(t, 0, 0, NULL, NULL, 0);
}

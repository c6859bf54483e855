/*
 * p11_init.c - make a blank token ready through PKCS#11 itself:
 * C_InitToken with the SO PIN, then C_InitPIN with the user PIN (the
 * same on a SoftHSM2 slot, tpm2-pkcs11's empty slot and a smart card).
 */
#include "p11_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <p11-kit/p11-kit.h>

#include "sa_err.h"
#include "sa_log.h"

/* A slot as the messages show it, and what init needs to know of it. */
struct init_slot {
	CK_SLOT_ID id;
	int present;      /* a token is in the slot */
	int initialized;  /* CKF_TOKEN_INITIALIZED */
	int pin_set;      /* CKF_USER_PIN_INITIALIZED */
	int pad;          /* CKF_PROTECTED_AUTHENTICATION_PATH: a PIN pad */
	char *label;      /* the token's label ("" when blank) */
	int match;        /* the URI (or "blank", without one) picks it */
};

static void slots_free(struct init_slot *v, unsigned int n)
{
	unsigned int i;

	for (i = 0; v != NULL && i < n; i++)
		free(v[i].label);
	free(v);
}

/* "slot 1: token 'gw'; slot 2: blank token" for messages. */
static void slots_words(const struct init_slot *v, unsigned int n, char *buf,
			size_t sz)
{
	unsigned int i;
	size_t len;

	buf[0] = '\0';
	for (i = 0; i < n; i++) {
		len = strlen(buf);
		if (len + 80 >= sz)
			break;
		if (!v[i].present)
			snprintf(buf + len, sz - len, "%sslot %lu: no token",
				 len ? "; " : "", (unsigned long)v[i].id);
		else if (!v[i].initialized)
			snprintf(buf + len, sz - len, "%sslot %lu: blank token",
				 len ? "; " : "", (unsigned long)v[i].id);
		else
			snprintf(buf + len, sz - len, "%sslot %lu: token '%.32s'",
				 len ? "; " : "", (unsigned long)v[i].id,
				 v[i].label);
	}
	if (buf[0] == '\0')
		snprintf(buf, sz, "no slots");
}

/* Read every slot of m. */
static int slots_read(struct p11_module *m, struct init_slot **out,
		      unsigned int *n)
{
	struct init_slot *v;
	CK_TOKEN_INFO ti;
	CK_SLOT_INFO si;
	unsigned int i;

	*out = NULL;
	*n = 0;
	v = calloc(m->nslots ? m->nslots : 1, sizeof(*v));
	if (v == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	for (i = 0; i < m->nslots; i++) {
		CK_RV rv = m->fl->C_GetSlotInfo(v[i].id = m->slots[i], &si);

		if (rv == CKR_OK && (si.flags & CKF_TOKEN_PRESENT)) {
			rv = p11_token_info(m, v[i].id, &ti);
			if (rv == CKR_TOKEN_NOT_PRESENT)
				si.flags &= ~(CK_FLAGS)CKF_TOKEN_PRESENT;
		}
		if (rv != CKR_OK && rv != CKR_TOKEN_NOT_PRESENT &&
		    rv != CKR_SLOT_ID_INVALID) {
			slots_free(v, i);
			return p11_rv_fail(SA_EKEY, rv, "cannot read slot %lu of "
					   "%s", (unsigned long)m->slots[i],
					   m->path);
		}
		if (rv == CKR_OK && (si.flags & CKF_TOKEN_PRESENT)) {
			v[i].present = 1;
			v[i].initialized = (ti.flags & CKF_TOKEN_INITIALIZED) != 0;
			v[i].pin_set = (ti.flags & CKF_USER_PIN_INITIALIZED) != 0;
			v[i].pad = (ti.flags & CKF_PROTECTED_AUTHENTICATION_PATH) != 0;
			v[i].label = v[i].initialized ?
				     p11_str_trim(ti.label, sizeof(ti.label)) :
				     strdup("");
		} else {
			v[i].label = strdup("");
		}
		if (v[i].label == NULL) {
			slots_free(v, i + 1);
			return sa_fail_noossl(SA_ENOMEM, "out of memory");
		}
	}
	*out = v;
	*n = m->nslots;
	return 0;
}

/* The URI's token part: 0 none, 1 only token=LABEL, 2 more. */
static int uri_token_part(P11KitUri *u)
{
	CK_TOKEN_INFO *ti = p11_kit_uri_get_token_info(u);
	CK_TOKEN_INFO blank;

	memset(&blank, 0, sizeof(blank));
	memcpy(blank.label, ti->label, sizeof(blank.label));
	if (memcmp(ti, &blank, sizeof(blank)) != 0)
		return 2;
	return ti->label[0] != 0;
}

/*
 * Mark the slots u picks; the count. Without a URI: the blank tokens.
 * With one: the initialised tokens its slot and token attributes match;
 * if none, the blank tokens in the slots it names, when it names no
 * token attribute but a label (the label they are to get).
 */
static unsigned int slots_pick(struct p11_module *m, struct init_slot *v,
			       unsigned int n, P11KitUri *u)
{
	CK_SLOT_ID want = u ? p11_kit_uri_get_slot_id(u) : (CK_SLOT_ID)-1;
	unsigned int i, k = 0, pass;
	CK_TOKEN_INFO ti;
	CK_SLOT_INFO si;

	for (pass = 0; pass < 2 && k == 0; pass++) {
		for (i = 0; i < n; i++) {
			v[i].match = 0;
			if (!v[i].present)
				continue;
			if (u == NULL) {
				v[i].match = pass == 0 && !v[i].initialized;
			} else if ((want == (CK_SLOT_ID)-1 || want == v[i].id) &&
				   m->fl->C_GetSlotInfo(v[i].id, &si) == CKR_OK &&
				   p11_kit_uri_match_slot_info(u, &si)) {
				if (pass == 0)
					v[i].match = v[i].initialized &&
						     p11_token_info(m, v[i].id, &ti) == CKR_OK &&
						     p11_kit_uri_match_token_info(u, &ti);
				else
					v[i].match = !v[i].initialized &&
						     uri_token_part(u) < 2;
			}
			k += v[i].match;
		}
	}
	return k;
}

/* The token's URI (token attributes and module-path) in *out. */
static int token_uri(struct p11_module *m, CK_SLOT_ID id, const char *label,
		     char **out)
{
	CK_TOKEN_INFO ti;
	P11KitUri *u;
	CK_RV rv;

	*out = NULL;
	rv = p11_token_info(m, id, &ti);
	if (rv != CKR_OK)
		return p11_rv_fail(SA_EKEY, rv, "cannot read the new token "
				   "'%s'", label);
	if ((u = p11_kit_uri_new()) == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	memcpy(p11_kit_uri_get_token_info(u), &ti, sizeof(ti));
	p11_kit_uri_set_module_path(u, m->path);
	*out = p11_uri_format(u, P11_KIT_URI_FOR_TOKEN);
	p11_kit_uri_free(u);
	return *out ? 0 : sa_fail_noossl(SA_ENOMEM, "out of memory");
}

/* C_InitToken's failures in words. */
static int init_fail(CK_RV rv, const char *what, const char *label)
{
	if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID ||
	    rv == CKR_PIN_LEN_RANGE)
		return sa_fail_noossl(SA_EPIN, "%s token '%s': the SO PIN was "
				      "refused (%s); nothing was changed", what,
				      label, p11_rv_str(rv));
	if (rv == CKR_PIN_LOCKED)
		return sa_fail_noossl(SA_EPIN, "%s token '%s': the SO PIN is "
				      "locked; the token cannot be initialised "
				      "by anyone now (see its vendor's tools)",
				      what, label);
	if (strcmp(what, "re-initialising") == 0 &&
	    (rv == CKR_ARGUMENTS_BAD || rv == CKR_FUNCTION_NOT_SUPPORTED ||
	     rv == CKR_TOKEN_WRITE_PROTECTED))
		return p11_rv_fail(SA_EKEY, rv, "%s token '%s': the module "
				   "refused; some modules initialise blank "
				   "tokens only (tpm2-pkcs11: remove the token "
				   "with tpm2_ptool rmtoken --label %s, or use "
				   "a new --tpm-store); nothing was changed",
				   what, label, label);
	if (rv == CKR_SESSION_EXISTS)
		return p11_rv_fail(SA_EKEY, rv, "%s token '%s': another program "
				   "has it open; stop it and run again", what,
				   label);
	return p11_rv_fail(SA_EKEY, rv, "%s token '%s' failed", what, label);
}

/* Set the user PIN: a session, SO login, C_InitPIN, logout, close. */
static int set_user_pin(struct p11_module *m, CK_SLOT_ID id, const char *label,
			const char *so, const char *user)
{
	CK_FUNCTION_LIST *f = m->fl;
	CK_SESSION_HANDLE s;
	CK_RV rv;
	int rc = 0;

	rv = f->C_OpenSession(id, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
			      NULL, &s);
	if (rv != CKR_OK)
		return p11_rv_fail(SA_EKEY, rv, "cannot open a session on the "
				   "new token '%s' to set its user PIN", label);
	if (so == NULL)
		sa_info("token '%s': enter the SO PIN on the reader's pad", label);
	rv = f->C_Login(s, CKU_SO, (CK_UTF8CHAR *)so, so ? (CK_ULONG)strlen(so) : 0);
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		rc = p11_rv_fail(rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED ||
				 rv == CKR_PIN_INVALID ? SA_EPIN : SA_EKEY, rv,
				 "the SO login to token '%s' failed", label);
		goto out;
	}
	if (user == NULL)
		sa_info("token '%s': enter the new user PIN on the reader's pad",
			label);
	rv = f->C_InitPIN(s, (CK_UTF8CHAR *)user,
			  user ? (CK_ULONG)strlen(user) : 0);
	if (rv == CKR_PIN_LEN_RANGE || rv == CKR_PIN_INVALID)
		rc = sa_fail_noossl(SA_EPIN, "token '%s' refused the user PIN "
				    "(%s): choose one it accepts", label,
				    p11_rv_str(rv));
	else if (rv != CKR_OK)
		rc = p11_rv_fail(SA_EKEY, rv, "setting the user PIN of token "
				 "'%s' failed", label);
	f->C_Logout(s);
out:
	f->C_CloseSession(s);
	return rc;
}

/* See p11.h. */
int p11_token_init(const struct p11_init_opts *o, char **uri_out)
{
	struct p11_pin_opts so_po;
	char so[P11_PIN_MAX], user[P11_PIN_MAX], seen[1024], where[64];
	struct init_slot *v = NULL, *w = NULL;
	struct p11_module *m = NULL;
	P11KitUri *u = NULL;
	char *path = NULL, *label = NULL;
	unsigned int n = 0, nw = 0, i, k, pick = 0;
	unsigned char label32[32];
	int rc, pad, finish;
	CK_RV rv;

	*uri_out = NULL;
	memset(so, 0, sizeof(so));
	memset(user, 0, sizeof(user));
	if (o->uri != NULL) {
		rc = p11_uri_parse(o->uri, &u);
		if (rc < 0)
			goto out;
	}
	if (o->label != NULL && o->label[0] != '\0')
		label = strdup(o->label);
	else if (u != NULL && uri_token_part(u) == 1)
		label = p11_str_trim(p11_kit_uri_get_token_info(u)->label, 32);
	else {
		rc = sa_fail_noossl(SA_EUSAGE, "init-token needs the new token's "
				    "label: --label LABEL (or a URI "
				    "pkcs11:token=LABEL)");
		goto out;
	}
	if (label == NULL) {
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	if (strlen(label) > sizeof(label32)) {
		rc = sa_fail_noossl(SA_EUSAGE, "the token label '%s' is longer "
				    "than 32 bytes (PKCS#11's limit)", label);
		goto out;
	}
	rc = p11_module_resolve(o->module, u, &path);
	if (rc < 0)
		goto out;
	rc = p11_module_get(path, &m);
	if (rc < 0)
		goto out;
	rc = slots_read(m, &v, &n);
	if (rc < 0)
		goto out;
	slots_words(v, n, seen, sizeof(seen));
	k = slots_pick(m, v, n, u);
	if (u == NULL) {
		/*
		 * Without a URI, an initialised token of that label that an
		 * earlier run left without its user PIN (or -R: tpm2-pkcs11
		 * says the PIN is set when it is not) comes first: finish it.
		 */
		unsigned int kl = 0;

		for (i = 0; i < n; i++)
			kl += v[i].initialized && strcmp(v[i].label, label) == 0 &&
			      (o->resume || !v[i].pin_set);
		for (i = 0; kl > 0 && i < n; i++)
			v[i].match = v[i].initialized &&
				     strcmp(v[i].label, label) == 0 &&
				     (o->resume || !v[i].pin_set);
		k = kl > 0 ? kl : k;
	}
	if (k == 0 && u == NULL) {
		rc = sa_fail_noossl(SA_EUSAGE, "no blank token in %s (%s); to "
				    "initialise a token again name it by its "
				    "URI and add --force-reinit (that destroys "
				    "its keys and certificates)", m->path, seen);
		goto out;
	}
	if (k == 0) {
		rc = sa_fail_noossl(SA_EUSAGE, "no slot or token in %s matches "
				    "the URI (%s)", m->path, seen);
		goto out;
	}
	if (k > 1) {
		rc = sa_fail_noossl(SA_EUSAGE, "%u %s in %s (%s): name one by its "
				    "slot, e.g. init-token 'pkcs11:slot-id=N'",
				    k, u ? "slots match the URI" : "tokens",
				    m->path, seen);
		goto out;
	}
	for (i = 0; i < n; i++)
		if (v[i].match)
			pick = i;
	/*
	 * Finish instead of initialising: an earlier init-token stopped after
	 * C_InitToken (the token has the label, and its user PIN is not set,
	 * or -R says so: tpm2-pkcs11 reports the PIN set when it is not).
	 * Only the user PIN is set (SO login, C_InitPIN): nothing is wiped.
	 */
	finish = v[pick].initialized && !o->force &&
		 strcmp(v[pick].label, label) == 0 &&
		 (o->resume || !v[pick].pin_set);
	if (v[pick].initialized && !o->force && !finish) {
		rc = sa_fail_noossl(SA_EUSAGE, "token '%s' in slot %lu is already "
				    "initialised; initialising it again destroys "
				    "every key and certificate in it: add "
				    "--force-reinit if that is what you want%s",
				    v[pick].label, (unsigned long)v[pick].id,
				    strcmp(v[pick].label, label) == 0 ?
				    " (if an earlier init-token of it stopped "
				    "before its user PIN was set, the same "
				    "command with -R finishes it and keeps the "
				    "token)" : "");
		goto out;
	}
	for (i = 0; i < n; i++)
		if (i != pick && v[i].initialized && strcmp(v[i].label, label) == 0) {
			rc = sa_fail_noossl(SA_EUSAGE, "the label '%s' is taken by "
					    "the token in slot %lu; choose another "
					    "--label (token=LABEL in a URI must "
					    "name one token), or to make that "
					    "token again name it (pkcs11:token=%s) "
					    "and add --force-reinit, which destroys "
					    "its keys; if an earlier init-token of "
					    "it stopped before its user PIN was "
					    "set, the same command with -R "
					    "finishes it", label,
					    (unsigned long)v[i].id, label);
			goto out;
		}
	/* both PINs first: nothing changes unless both can be had */
	snprintf(where, sizeof(where), "%s", v[pick].initialized ?
		 v[pick].label : label);
	so_po = o->so_pin;
	if (so_po.missing_hint == NULL)
		so_po.missing_hint = "give --so-pin-file FILE or --so-pin-env VAR";
	/* a PIN pad and no PIN files: both PINs are typed on the pad */
	pad = v[pick].pad && so_po.pin_file == NULL && so_po.pin_env == NULL;
	if (!pad) {
		rc = p11_pin_get_as(&so_po, NULL, "SO PIN", !v[pick].initialized,
				    where, so, sizeof(so));
		if (rc < 0)
			goto out;
		rc = p11_pin_get_as(&o->user_pin, u, "New user PIN", 1, label,
				    user, sizeof(user));
		if (rc < 0)
			goto out;
	} else {
		sa_info("token in slot %lu: enter the SO PIN on the reader's pad",
			(unsigned long)v[pick].id);
	}
	if (finish) {
		sa_info("token '%s' in slot %lu is initialised: setting its user "
			"PIN (finishing an earlier init-token; its objects stay)",
			label, (unsigned long)v[pick].id);
		rc = set_user_pin(m, v[pick].id, label, pad ? NULL : so,
				  pad ? NULL : user);
		if (rc == 0)
			rc = token_uri(m, v[pick].id, label, uri_out);
		goto out;
	}
	memset(label32, ' ', sizeof(label32));
	memcpy(label32, label, strlen(label));
	sa_verbose("initialising the token in slot %lu of %s as '%s'",
		   (unsigned long)v[pick].id, m->path, label);
	rv = m->fl->C_InitToken(v[pick].id, pad ? NULL : (CK_UTF8CHAR *)so,
				pad ? 0 : (CK_ULONG)strlen(so), label32);
	if (rv != CKR_OK) {
		rc = init_fail(rv, v[pick].initialized ? "re-initialising" :
			       "initialising", where);
		goto out;
	}
	/* SoftHSM2 moves the token to a new slot, tpm2-pkcs11 adds one */
	rc = p11_module_rescan(m);
	if (rc == 0)
		rc = slots_read(m, &w, &nw);
	if (rc < 0)
		goto half;
	for (i = 0, k = 0; i < nw; i++)
		if (w[i].initialized && strcmp(w[i].label, label) == 0) {
			pick = i;
			k++;
		}
	if (k != 1) {
		rc = sa_fail_noossl(SA_EKEY, "token '%s' was initialised, but %s "
				    "token of that label is in %s now; its user "
				    "PIN is not set (see list-tokens)", label,
				    k ? "more than one" : "no", m->path);
		goto out;
	}
	rc = set_user_pin(m, w[pick].id, label, pad ? NULL : so,
			  pad ? NULL : user);
	if (rc == 0)
		rc = token_uri(m, w[pick].id, label, uri_out);
	if (rc < 0)
		goto half;
	sa_info("token '%s' initialised in slot %lu of %s; its user PIN is set",
		label, (unsigned long)w[pick].id, m->path);
	rc = 0;
	goto out;
half:
	/* initialised, the rest undone: say how to finish */
	{
		char msg[1500];

		snprintf(msg, sizeof(msg), "%s", sa_errmsg());
		rc = sa_fail_noossl(rc, "%s; token '%s' is initialised, maybe "
				    "without its user PIN: the same command "
				    "with -R finishes it", msg, label);
	}
out:
	OPENSSL_cleanse(so, sizeof(so));
	OPENSSL_cleanse(user, sizeof(user));
	slots_free(v, n);
	slots_free(w, nw);
	p11_module_put(m);
	free(path);
	free(label);
	if (u != NULL)
		p11_kit_uri_free(u);
	return rc;
}

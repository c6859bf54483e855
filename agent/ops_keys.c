/*
 * ops_keys.c - the request key and the CSR (shared by mkrequest and
 * enroll), and the operations mkrequest, list-tokens, list-objects.
 */
#include "agent.h"
#include "ops_keys.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ec.h>

#include "csr.h"
#include "files.h"
#include "keyload.h"
#include "sa_err.h"
#include "sa_log.h"
#include "sa_step.h"
#include "secret.h"

void agent_key_clear(struct agent_key *k)
{
	if (k->obj != NULL)
		p11_keyobj_free(k->obj); /* k->key is its handle */
	else
		EVP_PKEY_free(k->key);
	free(k->label);
	memset(k, 0, sizeof(*k));
}

p11_token *agent_key_token(const struct agent_key *k)
{
	return p11_keyobj_get0_token(k->obj);
}

const char *agent_key_uri(const struct agent_key *k)
{
	return p11_keyobj_get0_uri(k->obj);
}

/* k takes the custody object obj (and its handle). */
static void key_take(struct agent_key *k, p11_keyobj *obj)
{
	k->obj = obj;
	k->key = p11_keyobj_get0_pkey(obj);
}

static int file_keygen(const struct p11_keyspec *ks, EVP_PKEY **out)
{
	*out = NULL;
	if (ks->type == EVP_PKEY_RSA)
		*out = EVP_RSA_gen((unsigned)ks->bits);
	else
		*out = EVP_EC_gen(OBJ_nid2sn(ks->nid));
	if (*out == NULL)
		return sa_fail(SA_ECRYPTO, "key generation failed");
	return 0;
}

/* --new-key: the id of a new key is derived from its public key. */
static int newkey_no_id(const char *uri)
{
	char *id = p11_uri_attr(uri, "id", NULL);

	if (id == NULL)
		return 0;
	free(id);
	return sa_fail_noossl(SA_EUSAGE, "--new-key must not name an id=: a "
			      "new key's CKA_ID is derived from its public key "
			      "(SHA-1 of the RSA modulus or EC point); give only "
			      "token attributes and object=LABEL");
}

/* The label is taken: say what enroll can do about it. */
static int exists_hint(int rc)
{
	return sa_fail_suffix(rc, ": add -R to continue a pending enrollment "
			      "with the key already there, or --overwrite to "
			      "replace it once the new certificate is stored");
}

/* Is key of the type and size ks asks for? */
static int key_fits(EVP_PKEY *key, const struct p11_keyspec *ks)
{
	int bits = ks->bits;

	if (EVP_PKEY_get_base_id(key) != ks->type)
		return 0;
	if (ks->type == EVP_PKEY_EC) {
		EC_GROUP *g = EC_GROUP_new_by_curve_name(ks->nid);

		bits = g ? EC_GROUP_get_degree(g) : -1;
		EC_GROUP_free(g);
	}
	return EVP_PKEY_get_bits(key) == bits;
}

/*
 * --new-key: what an earlier run left under the staging label. Certified
 * (it stopped while committing): finish the commit, then go on as if
 * nothing was staged. Not certified: that run stopped before its
 * certificate was stored; with -R, or when it is of the type asked, the
 * key is used again (1: k filled); else it is removed. 0: generate.
 */
static int staged_take(const struct agent_opts *o, p11_token *tok,
		       const struct p11_keyspec *ks, struct agent_key *k)
{
	p11_keyobj *key = NULL;
	char shown[KEYLOAD_SHOWN];
	int rc, certified, used;

	rc = p11_staged_get1(tok, k->label, &key, &certified, &used);
	if (rc <= 0)
		return rc;
	if (certified && used && !k->replace) {
		/* finishing would replace the label's objects: not asked */
		rc = 0;
		goto out;
	}
	if (certified) {
		sa_info("an earlier run stored the certificate of the new key "
			"\"%s~new\" but did not finish; finishing it",
			keyload_display(k->label, shown, sizeof(shown)));
		rc = p11_key_commit(key, k->label, k->keep_old);
		goto out;
	}
	if (o->op == OP_ENROLL && o->s.resume == 1) {
		sa_info("resuming with the key \"%s~new\" generated for the "
			"pending request",
			keyload_display(k->label, shown, sizeof(shown)));
		k->resumed = 1;
		goto take;
	}
	if (used && !k->replace) {
		/* p11_keygen refuses the taken label; leave the key alone */
		rc = 0;
		goto out;
	}
	if (key_fits(p11_keyobj_get0_pkey(key), ks)) {
		sa_info("using again the key \"%s~new\" an earlier run "
			"generated for a request it did not finish",
			keyload_display(k->label, shown, sizeof(shown)));
		k->reused = 1;
		goto take;
	}
	sa_info("removing the key \"%s~new\" an earlier run left unfinished: "
		"it is not of the type asked",
		keyload_display(k->label, shown, sizeof(shown)));
	rc = p11_key_destroy(key);
	goto out;
take:
	key_take(k, key);
	return 1;
out:
	p11_keyobj_free(key);
	return rc < 0 ? rc : 0;
}

int agent_key_obtain(const struct agent_opts *o, struct keyload *kl,
		     int may_create_file, struct agent_key *k)
{
	const struct conf_settings *s = &o->s;
	struct p11_keyspec ks;
	const char *type = s->key_type ? s->key_type : "rsa:2048";
	char shown[KEYLOAD_SHOWN];
	p11_keyobj *obj = NULL;
	p11_token *tok = NULL;
	int rc, keep_old = k->keep_old;

	memset(k, 0, sizeof(*k));
	k->keep_old = keep_old;
	if (s->new_key != NULL) {
		if (!p11_is_uri(s->new_key))
			return sa_fail_noossl(SA_EUSAGE, "--new-key (NewKey) "
					      "must be a pkcs11: URI, e.g. "
					      "'pkcs11:token=t1;object=mykey'");
		if ((rc = p11_keyspec_parse(type, &ks)) < 0)
			return rc;
		k->label = p11_uri_attr(s->new_key, "object", NULL);
		if (k->label == NULL)
			return sa_fail_noossl(SA_EUSAGE, "--new-key needs "
					      "object=LABEL: the label of the "
					      "new key");
		if ((rc = newkey_no_id(s->new_key)) < 0)
			goto out;
		rc = keyload_token(kl, s->new_key, &tok);
		if (rc < 0)
			goto out;
		k->replace = s->overwrite == 1;
		k->staged = 1;
		rc = staged_take(o, tok, &ks, k);
		if (rc < 0)
			goto out;
		if (rc == 1)
			return 0;
		if (o->op == OP_ENROLL && s->resume == 1) {
			/* a pending enrollment of an older run, not staged */
			rc = p11_newkey_get1(tok, k->label, k->replace, &obj);
			if (rc < 0)
				goto out;
			key_take(k, obj);
			sa_info("resuming with the key \"%s\" generated for the "
				"pending request",
				keyload_display(k->label, shown, sizeof(shown)));
			k->resumed = 1;
			k->staged = 0;
			return 0;
		}
		sa_info("generating a %s key \"%s\" in the token", type,
			keyload_display(k->label, shown, sizeof(shown)));
		rc = p11_keygen(tok, k->label, &ks, P11_KEYGEN_STAGED |
				(k->replace ? P11_KEYGEN_OVERWRITE : 0), &obj);
		if (rc == SA_EEXIST && o->op == OP_ENROLL)
			rc = exists_hint(rc);
		if (rc < 0)
			goto out;
		key_take(k, obj);
		k->generated = 1;
		sa_step("key-generated");
		return 0;
	}
	if (s->private_key == NULL)
		return sa_fail_noossl(SA_EUSAGE, "%s needs a key: -k FILE, -k "
				      "pkcs11:URI, or --new-key pkcs11:URI",
				      o->op_name);
	if (!p11_is_uri(s->private_key) && may_create_file &&
	    (s->key_type != NULL || !files_exist(s->private_key))) {
		if ((rc = p11_keyspec_parse(type, &ks)) < 0)
			return rc;
		if (files_exist(s->private_key))
			/* a local file problem (exit 9), found before keygen */
			return sa_fail_noossl(SA_EIO, "%s already exists; not "
					      "replacing it with a new key "
					      "(remove it, choose another name, "
					      "or drop --key-type to use the key "
					      "in it)", s->private_key);
		sa_info("generating a %s key in %s", type, s->private_key);
		rc = file_keygen(&ks, &k->key);
		if (rc < 0)
			goto out;
		rc = files_write_key(s->private_key, k->key);
		if (rc < 0)
			goto out;
		k->generated = 1;
		sa_step("key-generated");
		return 0;
	}
	rc = keyload_get1(kl, s->private_key, &k->key, &obj);
	if (rc == SA_ENOTFOUND && o->op == OP_MKREQUEST) {
		/* -k names an existing token key; new ones come from --new-key */
		rc = sa_fail_suffix(rc, "; mkrequest -k uses a key that is "
				    "already in the token: create it there first "
				    "(e.g. pkcs11-tool --keypairgen --id ...), or "
				    "let --new-key 'pkcs11:token=...;object=LABEL' "
				    "generate one");
	}
	if (rc < 0)
		goto out;
	if (obj != NULL)
		key_take(k, obj); /* its URI is the canonical one, never a PIN */
	return 0;
out:
	agent_key_clear(k);
	return rc;
}

/* The request's parameters from the settings; challenge borrowed. */
static void csr_params_fill(const struct agent_opts *o, const char *challenge,
			    struct csr_params *p)
{
	const struct conf_settings *s = &o->s;

	memset(p, 0, sizeof(*p));
	p->subject = s->subject;
	p->san = (const char *const *)s->san;
	p->n_san = s->n_san;
	p->challenge = challenge;
	p->cert_template = s->cert_template;
	p->key_usage = s->key_usage;
	p->ext_key_usage = s->ext_key_usage;
}

/* The subject is required; the challenge password (NULL: none). */
static int csr_inputs(const struct agent_opts *o, char **challenge)
{
	const struct conf_settings *s = &o->s;

	*challenge = NULL;
	if (s->subject == NULL)
		return sa_fail_noossl(SA_EUSAGE, "%s needs a subject to make the "
				      "request: --subject /CN=... (Subject), or "
				      "a request file -r", o->op_name);
	return secret_read(s->challenge_file, s->challenge_env,
			   s->challenge_prompt == 1, "challenge password",
			   challenge);
}

int agent_csr_make(const struct agent_opts *o, EVP_PKEY *key, X509_REQ **out)
{
	struct csr_params p;
	char *challenge = NULL;
	int rc;

	*out = NULL;
	rc = csr_inputs(o, &challenge);
	if (rc < 0)
		return rc;
	csr_params_fill(o, challenge, &p);
	rc = csr_build(&p, key, out);
	secret_free(challenge);
	/* the one request of the run is made: the challenge is not needed */
	secret_forget();
	return rc;
}

/*
 * Before a key is generated: build the request once with a throwaway
 * software EC key, so that a bad subject, subjectAltName, key usage or
 * template fails before anything is created in a token or on disk.
 */
static int csr_precheck(const struct csr_params *p)
{
	EVP_PKEY *tmp = EVP_EC_gen("P-256");
	X509_REQ *req = NULL;
	int rc;

	if (tmp == NULL)
		return sa_fail(SA_ECRYPTO, "cannot make a key to check the "
			       "request's parameters with");
	rc = csr_build(p, tmp, &req);
	X509_REQ_free(req);
	EVP_PKEY_free(tmp);
	return rc;
}

int agent_csr_check(const struct agent_opts *o)
{
	const struct conf_settings *s = &o->s;
	struct csr_params p;
	char *challenge = NULL;
	int rc;

	if (s->subject == NULL)
		return 0;
	/*
	 * a challenge file or variable that is not there (never a prompt);
	 * what is read is kept for agent_csr_make(): a FIFO is read once
	 */
	if (s->challenge_file != NULL || s->challenge_env != NULL) {
		rc = secret_read(s->challenge_file, s->challenge_env, 0,
				 "challenge password", &challenge);
		secret_free(challenge);
		if (rc < 0)
			return rc;
	}
	csr_params_fill(o, NULL, &p);
	return csr_precheck(&p);
}

void agent_key_discard(struct agent_key *k, const char *why)
{
	char shown[KEYLOAD_SHOWN];

	if (!(k->generated || k->reused) || k->obj == NULL)
		return;
	if (p11_key_destroy(k->obj) == 0) {
		sa_info("%s: the key \"%s\" generated %s was removed from the "
			"token", why, keyload_display(k->label, shown,
						      sizeof(shown)),
			k->generated ? "in this run" : "by an earlier run");
		p11_keyobj_free(k->obj);
		k->obj = NULL;
		k->key = NULL;
		k->generated = 0;
		k->reused = 0;
		return;
	}
	sa_warn("%s, and the key generated for it could not be removed (%s); "
		"it stays in the token as %s: the same command uses it again, "
		"or removes it if another --key-type is asked", why, sa_errmsg(),
		keyload_display(agent_key_uri(k), shown, sizeof(shown)));
}

/*
 * mkrequest failed after it generated k: remove that key (token objects,
 * or the key file written in this run; k->generated is never set for a
 * file that was there before), keeping the error message.
 */
static void mkrequest_discard(const struct agent_opts *o, struct agent_key *k,
			      int rc)
{
	struct sa_error e;

	if (!k->generated)
		return;
	/* the failure's own error, kept while the key goes */
	sa_error_take(&e, rc);
	if (k->obj != NULL) {
		agent_key_discard(k, "no request was made");
	} else if (unlink(o->s.private_key) == 0) {
		sa_info("the key file %s written in this run was removed",
			o->s.private_key);
	} else {
		sa_warn("the key file %s written in this run could not be "
			"removed: %s", o->s.private_key, strerror(errno));
	}
	k->generated = 0;
	sa_error_raise(&e);
}

int op_mkrequest(const struct agent_opts *o, int *result)
{
	struct keyload *kl = NULL;
	struct agent_key k = { 0 };
	struct csr_params p;
	X509_REQ *req = NULL;
	char *challenge = NULL;
	int rc;

	*result = SA_EXIT_OK;
	if (o->s.cert_req_file == NULL) {
		rc = sa_fail_noossl(SA_EUSAGE, "mkrequest needs -r FILE (or "
				    "CertReqFile) to write the request to");
		goto out;
	}
	if (o->s.subject == NULL) {
		rc = sa_fail_noossl(SA_EUSAGE, "mkrequest needs --subject "
				    "/CN=... (or Subject)");
		goto out;
	}
	/* everything that can be checked, before a key is generated */
	if ((rc = csr_inputs(o, &challenge)) < 0)
		goto out;
	csr_params_fill(o, challenge, &p);
	if ((rc = csr_precheck(&p)) < 0)
		goto out;
	if ((rc = keyload_new(&o->p11, &kl)) < 0)
		goto out;
	rc = agent_key_obtain(o, kl, 1, &k);
	if (rc < 0)
		goto out;
	rc = csr_build(&p, k.key, &req);
	if (rc < 0)
		goto out;
	rc = files_write_csr(o->s.cert_req_file, req);
	if (rc < 0)
		goto out;
	if ((k.generated || k.reused) && k.obj != NULL && k.staged) {
		/*
		 * no certificate will arrive in this run to wait for, so the
		 * new key takes the label now (with --overwrite the old key
		 * and its certificate go); the request names the new key.
		 */
		/*
		 * From here the new key is never removed again: once it has
		 * the label, a failed deletion of an old object must not take
		 * the new key with it (p11_key_commit says what is left).
		 */
		k.generated = 0;
		k.reused = 0;
		rc = p11_key_commit(k.obj, k.label, 0);
		if (rc < 0)
			goto out;
	}
	if (k.obj != NULL) {
		char shown[KEYLOAD_SHOWN];

		agent_out("key in the token: %s",
			  keyload_display(agent_key_uri(&k), shown,
					  sizeof(shown)));
	}
	else if (k.generated)
		agent_out("key written as %s", o->s.private_key);
	agent_out("request written as %s", o->s.cert_req_file);
out:
	if (rc < 0)
		mkrequest_discard(o, &k, rc);
	secret_free(challenge);
	secret_forget();
	X509_REQ_free(req);
	agent_key_clear(&k);
	keyload_free(kl);
	return rc;
}

int op_list_tokens(const struct agent_opts *o, int *result)
{
	*result = SA_EXIT_OK;
	return p11_list_tokens(o->s.pkcs11_module, stdout);
}

/*
 * init-token [URI]: a blank token made ready (pkcs11/p11_init.c); its
 * URI on stdout.
 */
int op_init_token(const struct agent_opts *o, int *result)
{
	struct p11_init_opts io;
	char *uri = NULL, *shown;
	int rc;

	*result = SA_EXIT_OK;
	if (o->s.pkcs11_module == NULL && (o->arg == NULL ||
					   strstr(o->arg, "module-") == NULL))
		return sa_fail_noossl(SA_EUSAGE, "init-token needs the module: "
				      "--module PATH, --tpm, or module-path= in "
				      "the URI");
	if (o->s.so_pin_file != NULL && o->s.so_pin_env != NULL)
		return sa_fail_noossl(SA_EUSAGE, "give the SO PIN one way: "
				      "--so-pin-file or --so-pin-env");
	memset(&io, 0, sizeof(io));
	io.module = o->s.pkcs11_module;
	io.uri = o->arg;
	io.label = o->s.token_label;
	io.so_pin.pin_file = o->s.so_pin_file;
	io.so_pin.pin_env = o->s.so_pin_env;
	io.user_pin = o->p11.pin;
	io.force = o->s.force_reinit == 1;
	io.resume = o->s.resume == 1;
	rc = p11_token_init(&io, &uri);
	if (rc < 0)
		return rc;
	shown = p11_uri_display(uri);
	agent_out("token: %s", shown ? shown : uri);
	free(shown);
	free(uri);
	return 0;
}

int op_list_objects(const struct agent_opts *o, int *result)
{
	struct p11_open_opts opts = o->p11;
	const char *uri = o->arg;
	p11_token *t = NULL;
	int rc;

	*result = SA_EXIT_OK;
	if (uri == NULL)
		uri = o->s.new_key ? o->s.new_key : o->s.private_key;
	if (uri == NULL || !p11_is_uri(uri))
		return sa_fail_noossl(SA_EUSAGE, "list-objects needs the token's "
				      "URI, e.g. scep-agent list-objects "
				      "'pkcs11:token=t1' (see list-tokens)");
	/* private objects need a login; without a PIN source list public ones */
	opts.need_login = opts.pin.pin_env != NULL || opts.pin.pin_file != NULL ||
			  strstr(uri, "pin-") != NULL || isatty(STDIN_FILENO);
	rc = p11_token_open(uri, &opts, &t);
	if (rc < 0)
		return rc;
	if (!opts.need_login)
		sa_info("not logged in (no PIN source): private objects are "
			"not listed");
	rc = p11_list_objects(t, stdout);
	p11_token_close(t);
	return rc;
}

/*
 * engine.c - one enrollment or renewal, as data: the CA, its caps, an
 * earlier run's enrollment finished, the request key (file or token), the
 * request, the signer (self-signed or the old certificate), the SCEP
 * transaction with polling, and after SUCCESS the checks and the storage
 * (disk, token, key commit). No result lines and no exit codes: the
 * outcome says what happened (see engine.h); sa_log says how it went.
 */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

#include "csr.h"
#include "files.h"
#include "keyload.h"
#include "ops_keys.h"
#include "sa_esc.h"
#include "sa_intr.h"
#include "sa_log.h"
#include "sa_step.h"

/* sscep's defaults for polling. */
#define POLL_INTERVAL 300
#define POLL_MAX_TIME 28800
#define POLL_MAX_COUNT 256

/* One run's working set. */
struct run {
	const struct engine_req *req;
	const struct agent_opts *o;
	struct engine_outcome *out;
	struct keyload *kl;
	struct agent_key k;
	struct scep_ca ca;
	scep_client *c;
};

/* The request: read from -r, or built for the key. */
static int get_csr(const struct agent_opts *o, const struct agent_key *k,
		   X509_REQ **out)
{
	const struct conf_settings *s = &o->s;
	X509_REQ *req = NULL;
	int rc;

	*out = NULL;
	if (s->subject != NULL || k->generated || s->cert_req_file == NULL ||
	    !files_exist(s->cert_req_file)) {
		rc = agent_csr_make(o, k->key, &req);
		if (rc < 0)
			return rc;
		if (s->cert_req_file != NULL) {
			rc = files_write_csr(s->cert_req_file, req);
			if (rc < 0)
				goto out;
			sa_verbose("request written as %s", s->cert_req_file);
		}
	} else {
		rc = files_read_csr(s->cert_req_file, &req);
		if (rc < 0)
			return rc;
		if (EVP_PKEY_eq(X509_REQ_get0_pubkey(req), k->key) != 1) {
			char shown[KEYLOAD_SHOWN];

			rc = sa_fail_noossl(SA_EKEY, "the request %s was not "
					    "made for the key %s; make it again "
					    "(mkrequest, or --subject) or give the "
					    "right key", s->cert_req_file,
					    keyload_display(k->obj ? agent_key_uri(k) :
							    s->private_key, shown,
							    sizeof(shown)));
			goto out;
		}
	}
	*out = req;
	req = NULL;
	rc = 0;
out:
	X509_REQ_free(req);
	return rc;
}

/* Renewal signer: -K and -O. */
static int get_renewal_signer(const struct agent_opts *o, struct keyload *kl,
			      EVP_PKEY **key, X509 **cert)
{
	const struct conf_settings *s = &o->s;
	int rc;

	*key = NULL;
	*cert = NULL;
	if (s->sign_key == NULL || s->sign_cert_file == NULL)
		return sa_fail_noossl(SA_EUSAGE, "renewal needs both the old key "
				      "(-K, SignKeyFile) and the old certificate "
				      "(-O, SignCertFile)");
	rc = files_read_cert(s->sign_cert_file, cert);
	if (rc < 0)
		return rc;
	rc = keyload_get1(kl, s->sign_key, key, NULL);
	if (rc < 0)
		goto out;
	if (EVP_PKEY_eq(X509_get0_pubkey(*cert), *key) != 1) {
		char shown[KEYLOAD_SHOWN];

		rc = sa_fail_noossl(SA_EKEY, "the old certificate %s does not "
				    "belong to the old key %s", s->sign_cert_file,
				    keyload_display(s->sign_key, shown, sizeof(shown)));
		goto out;
	}
	return 0;
out:
	EVP_PKEY_free(*key);
	X509_free(*cert);
	*key = NULL;
	*cert = NULL;
	return rc;
}

/* cert from FILE if it is there and holds one; else NULL */
static X509 *cert_if_there(const char *file)
{
	X509 *x = NULL;

	if (file == NULL || !files_exist(file) || files_read_cert(file, &x) < 0) {
		sa_err_clear();
		return NULL;
	}
	return x;
}

/*
 * The key commit: the new pair takes the label; req->keep_old previous
 * pairs stay, retired under LABEL~old-<serial> (p11_key_commit()).
 */
static int key_commit(const struct engine_req *req, p11_keyobj *key,
		      const char *label)
{
	return p11_key_commit(key, label, req->keep_old);
}

/*
 * No staged key: did an earlier run finish this enrollment and stop just
 * before its end (killed after the key took its label)? Then the key
 * labelled label has its certificate, issued by the trusted CA, in -l; and
 * that is not the renewal's old certificate (-O: with -l the same file as
 * -O, a scheduled renewal of the current pair goes on). A first enrollment
 * asked to --overwrite goes on too: it asks for a new key every time.
 * Repeating the command then reports the result (finished_earlier 1)
 * rather than refusing because the label is taken, or renewing twice.
 */
static void finished_already(struct run *r, p11_token *tok, const char *label)
{
	const struct conf_settings *s = &r->o->s;
	int renew = s->sign_key != NULL || s->sign_cert_file != NULL;
	p11_keyobj *key = NULL;
	X509 *cert = NULL, *old = NULL;

	if (s->local_cert_file == NULL || (!renew && s->overwrite == 1))
		return;
	cert = cert_if_there(s->local_cert_file);
	if (cert == NULL)
		goto out;
	if (renew && (old = cert_if_there(s->sign_cert_file)) != NULL &&
	    X509_cmp(old, cert) == 0)
		goto out;
	if (p11_newkey_get1(tok, label, 0, &key) < 0 ||
	    !p11_key_matches_cert(p11_keyobj_get0_pkey(key), cert) ||
	    scep_ca_verify_issued(&r->ca, cert, NULL) < 0) {
		sa_err_clear();
		goto out;
	}
	r->out->status = ENGINE_SUCCESS;
	r->out->finished_earlier = 1;
	r->out->key_in_token = 1;
	r->out->cert = cert;
	cert = NULL;
	r->out->key_uri = strdup(p11_keyobj_get0_uri(key));
	r->out->cert_uri = p11_cert_uri(key);
out:
	X509_free(cert);
	X509_free(old);
	p11_keyobj_free(key);
}

/*
 * Before anything else of a --new-key enrollment: did an earlier run get
 * the certificate for its staged key and stop before the key took its
 * label? Its certificate is in the token (it stopped inside the key
 * commit), or in -l (written before the token store; with -l the same
 * file as -O the old certificate is gone from there) or -O, issued by the
 * trusted CA for the staged key: store it (if needed) and commit, and the
 * enrollment is done (finished_earlier 2). No CA is asked.
 */
static int finish_earlier(struct run *r)
{
	const struct conf_settings *s = &r->o->s;
	struct engine_outcome *out = r->out;
	p11_token *tok = NULL;
	p11_keyobj *key = NULL;
	X509 *cert = NULL;
	char *label = NULL;
	char shown[KEYLOAD_SHOWN];
	int rc, certified = 0, used = 0, i;

	if (s->new_key == NULL || !p11_is_uri(s->new_key))
		return 0;
	label = p11_uri_attr(s->new_key, "object", NULL);
	if (label == NULL)
		return 0; /* agent_key_obtain says what is missing */
	rc = keyload_token(r->kl, s->new_key, &tok);
	if (rc < 0)
		goto out;
	rc = p11_staged_get1(tok, label, &key, &certified, &used);
	if (rc == 0)
		finished_already(r, tok, label);
	if (rc <= 0)
		goto out;
	for (i = 0; !certified && i < 2 && cert == NULL; i++) {
		cert = cert_if_there(i == 0 ? s->local_cert_file :
				     s->sign_cert_file);
		if (cert != NULL &&
		    (!p11_key_matches_cert(p11_keyobj_get0_pkey(key), cert) ||
		     scep_ca_verify_issued(&r->ca, cert, NULL) < 0)) {
			sa_err_clear();
			X509_free(cert);
			cert = NULL;
		}
	}
	if ((!certified && cert == NULL) || (used && s->overwrite != 1)) {
		/*
		 * stopped before its certificate came: go on; or the label is
		 * taken and replacing it was not asked: the key generation
		 * refuses, pointing to --overwrite
		 */
		rc = 0;
		goto out;
	}
	sa_info("an earlier run got the certificate for the new key \"%s~new\" "
		"and stopped before finishing; finishing it",
		keyload_display(label, shown, sizeof(shown)));
	if (cert != NULL) {
		rc = p11_cert_store(key, cert, s->cert_label, NULL);
		if (rc < 0)
			goto out;
	}
	rc = key_commit(r->req, key, label);
	if (rc < 0)
		goto out;
	out->status = ENGINE_SUCCESS;
	out->finished_earlier = 2;
	out->key_in_token = 1;
	out->key_uri = strdup(p11_keyobj_get0_uri(key));
	out->cert_uri = p11_cert_uri(key);
	out->cert = cert;
	cert = NULL;
	rc = 0;
out:
	X509_free(cert);
	p11_keyobj_free(key);
	free(label);
	return rc;
}

/* s->store_ca: the CA certificates into the token too */
static int store_ca_certs(p11_token *tok, const struct scep_ca *ca)
{
	int i, rc;

	for (i = 0; i < sk_X509_num(ca->certs); i++) {
		X509 *x = sk_X509_value(ca->certs, i);
		char cal[128], calshown[160];

		if (X509_NAME_get_text_by_NID(X509_get_subject_name(x),
					      NID_commonName, cal,
					      sizeof(cal)) <= 0)
			snprintf(cal, sizeof(cal), "CA %d", i);
		rc = p11_cacert_store(tok, x, cal);
		if (rc < 0)
			return rc;
		sa_verbose("CA certificate \"%s\" stored in the token",
			   sa_esc_str(cal, calshown, sizeof(calshown)));
	}
	return 0;
}

/*
 * After SUCCESS and the checks: disk (req->store_disk, or -l), then the
 * token, then the key commit. A certificate stored nowhere stays in
 * out->cert (the caller may show it rather than lose it).
 */
static int store_result(struct run *r, X509 *cert)
{
	const struct conf_settings *s = &r->o->s;
	struct agent_key *k = &r->k;
	struct engine_outcome *out = r->out;
	/* a staged key's certificate takes the staging label with it */
	const char *label = s->cert_label ? s->cert_label :
			    k->staged ? NULL : k->label;
	char *cert_uri = NULL;
	int rc;

	/* disk first: if the token refuses, the certificate is not lost */
	if (r->req->store_disk != NULL) {
		rc = r->req->store_disk(r->req->store_arg, cert, &r->ca);
		if (rc < 0)
			goto out;
		out->cert_written = 1;
		sa_step("cert-written");
	} else if (s->local_cert_file != NULL) {
		rc = files_write_cert(s->local_cert_file, cert);
		if (rc < 0)
			goto out;
		out->cert_written = 1;
		sa_step("cert-written");
	}
	if (k->obj != NULL) {
		rc = p11_cert_store(k->obj, cert, label, &cert_uri);
		if (rc < 0)
			goto out;
		sa_step("cert-stored");
		if (s->store_ca == 1) {
			rc = store_ca_certs(agent_key_token(k), &r->ca);
			if (rc < 0)
				goto out;
		}
		if (k->staged || k->replace) {
			/* only now may the old key and certificate go */
			rc = key_commit(r->req, k->obj, k->label);
			if (rc < 0)
				goto out;
			free(cert_uri);
			cert_uri = p11_cert_uri(k->obj);
			sa_step("key-committed");
		}
	}
	out->cert_uri = cert_uri;
	cert_uri = NULL;
	rc = 0;
out:
	free(cert_uri);
	return rc;
}

/* What is known before anything was sent: the options make a request. */
static int check_request(const struct engine_req *req)
{
	const struct agent_opts *o = req->o;
	const struct conf_settings *s = &o->s;
	int have_req;

	have_req = s->cert_req_file != NULL && files_exist(s->cert_req_file);
	if (s->subject == NULL && s->new_key != NULL &&
	    !(s->resume == 1 && have_req))
		return sa_fail_noossl(SA_EUSAGE, "a new key (--new-key) needs "
				      "--subject /CN=... to make its request: a "
				      "request file%s cannot hold a key that does "
				      "not exist yet%s", s->cert_req_file ? " (-r)" :
				      "", s->resume == 1 ? " (with -R, -r may name "
				      "the request the pending run wrote)" : "");
	if (s->subject == NULL && !have_req)
		return sa_fail_noossl(SA_EUSAGE, "enroll needs a request: -r FILE "
				      "(made by mkrequest), or --subject /CN=... "
				      "to make one");
	if (s->local_cert_file == NULL && req->store_disk == NULL &&
	    s->new_key == NULL &&
	    (s->private_key == NULL || !p11_is_uri(s->private_key)))
		return sa_fail_noossl(SA_EUSAGE, "enroll needs -l FILE (or "
				      "LocalCertFile) to write the certificate");
	/* a bad subject or extension is found before a key is generated */
	if (s->new_key != NULL && s->resume != 1)
		return agent_csr_check(o);
	return 0;
}

/* The signer and type of the request: renewal, or self-signed. */
static int set_signer(struct run *r, unsigned caps, struct scep_request *sr,
		      EVP_PKEY **old_key, X509 **old_cert, X509 **self)
{
	const struct agent_opts *o = r->o;
	const struct conf_settings *s = &o->s;
	int rc;

	if (s->sign_key != NULL || s->sign_cert_file != NULL) {
		sr->signer_key = *old_key;
		sr->signer_cert = *old_cert;
		if (o->renew_mode == RENEW_RENEWALREQ ||
		    (o->renew_mode == RENEW_AUTO && (caps & SCEP_CAP_RENEWAL)))
			sr->type = SCEP_MSG_RENEWALREQ;
		else
			sr->type = SCEP_MSG_PKCSREQ;
		sa_info("renewal: %s signed by the old certificate %s",
			sr->type == SCEP_MSG_RENEWALREQ ? "RenewalReq" : "PKCSReq",
			s->sign_cert_file);
		return 0;
	}
	rc = scep_selfsigned_new(sr->csr, r->k.key,
				 scep_choose_digest(caps, o->digest), self);
	if (rc < 0)
		return rc;
	if (s->self_signed_file != NULL) {
		rc = files_write_cert(s->self_signed_file, *self);
		if (rc < 0)
			return rc;
		sa_verbose("self-signed certificate written as %s",
			   s->self_signed_file);
	}
	sr->type = SCEP_MSG_PKCSREQ;
	sr->signer_key = r->k.key;
	sr->signer_cert = *self;
	return 0;
}

/* The CA's verdict into the outcome; SUCCESS: checked and stored. */
static int take_reply(struct run *r, struct scep_reply *reply, X509_REQ *csr)
{
	struct engine_outcome *out = r->out;
	X509 *cert = NULL;
	int rc;

	if (reply->transaction_id != NULL)
		out->transaction_id = strdup(reply->transaction_id);
	else
		out->transaction_id = scep_transaction_id(X509_REQ_get0_pubkey(csr));
	if (reply->status == SCEP_STATUS_PENDING) {
		sa_info("pkistatus: PENDING");
		out->status = ENGINE_PENDING;
		return 0;
	}
	if (reply->status != SCEP_STATUS_SUCCESS) {
		sa_info("pkistatus: FAILURE");
		out->status = ENGINE_FAILURE;
		out->fail_info = reply->fail_info;
		if (reply->fail_info_text != NULL)
			out->fail_info_text = strdup(reply->fail_info_text);
		/* no CA certifies that key: it goes (a resumed one stays) */
		if (r->k.generated || r->k.reused) {
			agent_key_discard(&r->k, "the CA refused its request");
			out->key_generated = r->k.generated;
		}
		return 0;
	}
	sa_info("pkistatus: SUCCESS");
	rc = scep_reply_find_cert(reply, r->k.key, &cert);
	if (rc < 0)
		goto out;
	if (EVP_PKEY_eq(X509_get0_pubkey(cert), r->k.key) != 1) {
		rc = sa_fail_noossl(SA_EREPLY, "the issued certificate does not "
				    "carry our public key; not storing it");
		goto out;
	}
	/* issued by the trusted CA, before anything is written or replaced */
	rc = scep_ca_verify_issued(&r->ca, cert, reply->certs);
	if (rc < 0)
		goto out;
	sa_step("reply-verified");
	rc = store_result(r, cert);
	if (rc < 0 && out->cert_written)
		goto out; /* on disk: not lost */
	out->cert = cert; /* SUCCESS, or stored nowhere: the caller shows it */
	cert = NULL;
	if (rc == 0)
		out->status = ENGINE_SUCCESS;
out:
	X509_free(cert);
	return rc;
}

/* The transaction: key, request, signer, send and poll, the reply. */
static int transact(struct run *r)
{
	const struct agent_opts *o = r->o;
	const struct conf_settings *s = &o->s;
	struct scep_request sr;
	struct scep_poll_opts po;
	struct scep_reply reply = { .fail_info = -1 };
	X509_REQ *csr = NULL;
	X509 *self = NULL, *old_cert = NULL;
	EVP_PKEY *old_key = NULL;
	unsigned caps;
	int rc;

	memset(&sr, 0, sizeof(sr));
	/*
	 * The CA's capabilities, before a key is generated: a server that
	 * cannot be reached fails here, before a key is generated or a
	 * request sent.
	 */
	rc = scep_client_get_caps(r->c, &caps);
	if (rc < 0)
		goto out;
	if (s->sign_key != NULL || s->sign_cert_file != NULL) {
		rc = get_renewal_signer(o, r->kl, &old_key, &old_cert);
		if (rc < 0)
			goto out;
	}
	r->k.keep_old = r->req->keep_old; /* a commit it finishes keeps them */
	rc = agent_key_obtain(o, r->kl, 0, &r->k);
	if (r->k.key != NULL) {
		r->out->key_in_token = r->k.obj != NULL;
		r->out->key_generated = r->k.generated;
		r->out->key_new = r->k.generated || r->k.resumed || r->k.reused;
		r->out->key_resumed = r->k.resumed;
		r->out->key_replace = r->k.replace;
	}
	if (rc < 0)
		goto out;
	rc = get_csr(o, &r->k, &csr);
	if (rc < 0)
		goto out;
	sr.csr = csr;
	rc = set_signer(r, caps, &sr, &old_key, &old_cert, &self);
	if (rc < 0)
		goto out;
	memset(&po, 0, sizeof(po));
	po.interval = s->poll_interval >= 0 ? s->poll_interval : POLL_INTERVAL;
	po.max_time = s->max_poll_time >= 0 ? s->max_poll_time : POLL_MAX_TIME;
	po.max_count = s->max_poll_count >= 0 ? s->max_poll_count :
		       POLL_MAX_COUNT;
	po.resume = s->resume == 1;
	sa_info(po.resume ? "resuming the enrollment" :
		"sending certificate request");
	if (sa_intr_caught()) {
		/* the request is not out yet: nothing to resume */
		rc = sa_fail_noossl(SA_EINTR, "stopped by %s before the request "
				    "was sent", sa_intr_name(sa_intr_caught()));
		goto out;
	}
	rc = scep_enroll(r->c, &r->ca, &sr, &po, &reply);
	/* building or encrypting the message, or connecting, may fail first */
	r->out->sent = scep_client_request_sent(r->c);
	if (rc < 0)
		goto out;
	sa_info("valid response from server");
	rc = take_reply(r, &reply, csr);
out:
	scep_reply_clear(&reply);
	X509_free(self);
	X509_free(old_cert);
	EVP_PKEY_free(old_key);
	X509_REQ_free(csr);
	return rc;
}

/* See engine.h. */
int engine_enroll(const struct engine_req *req, struct engine_outcome *out)
{
	struct run r;
	int rc;

	memset(out, 0, sizeof(*out));
	out->fail_info = -1;
	memset(&r, 0, sizeof(r));
	r.req = req;
	r.o = req->o;
	r.out = out;
	rc = agent_ca_load(r.o, &r.ca);
	if (rc < 0)
		goto out;
	if (req->client != NULL) {
		r.c = req->client;
		scep_client_sent_reset(r.c); /* this enrollment's request only */
	} else {
		rc = agent_client_new(r.o, &r.c);
		if (rc < 0)
			goto out;
	}
	/* check what we can before a key is generated in a token */
	rc = check_request(req);
	if (rc < 0)
		goto out;
	rc = keyload_new(&r.o->p11, &r.kl);
	if (rc < 0)
		goto out;
	/*
	 * an earlier run that got its certificate and stopped: finish it
	 * (the CA need not be reachable for that)
	 */
	rc = finish_earlier(&r);
	if (rc < 0 || out->status == ENGINE_SUCCESS)
		goto out;
	rc = transact(&r);
out:
	if (r.k.obj != NULL && out->key_uri == NULL)
		out->key_uri = strdup(agent_key_uri(&r.k));
	if (rc < 0) {
		out->status = ENGINE_ERROR;
		sa_error_take(&out->err, rc);
		/*
		 * A key generated in this run: while no request reached the
		 * CA (a message that could not be built or encrypted, a
		 * connection refused) no CA knows it, so it goes; once one
		 * may have, the CA may hold the request, so it stays.
		 */
		if (r.k.generated && !out->sent) {
			agent_key_discard(&r.k, "no request reached the CA");
			out->key_generated = r.k.generated;
			sa_err_clear();
		}
	}
	agent_key_clear(&r.k);
	keyload_free(r.kl);
	scep_ca_clear(&r.ca);
	if (r.c != req->client)
		scep_client_free(r.c);
	return rc;
}

/* See engine.h. */
void engine_outcome_clear(struct engine_outcome *out)
{
	if (out == NULL)
		return;
	X509_free(out->cert);
	free(out->transaction_id);
	free(out->fail_info_text);
	free(out->key_uri);
	free(out->cert_uri);
	memset(out, 0, sizeof(*out));
	out->fail_info = -1;
}

/*
 * ops_enroll.c - enroll and renew: key (file or token), request, signer
 * (self-signed or the old certificate), the SCEP transaction with polling,
 * and what happens after SUCCESS (key check, token and disk storage).
 */
#include "agent.h"
#include "ops_keys.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "csr.h"
#include "files.h"
#include "keyload.h"
#include "sa_err.h"
#include "sa_esc.h"
#include "sa_intr.h"
#include "sa_log.h"
#include "sa_step.h"

/* sscep's defaults for polling. */
#define POLL_INTERVAL 300
#define POLL_MAX_TIME 28800
#define POLL_MAX_COUNT 256

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


/*
 * An error after a key was generated in this run: while no request
 * reached the CA (scep_client_request_sent: a message that could not be
 * built or encrypted, a connection refused) no CA knows the key, so it
 * goes (keeping the error message); once one may have, the CA may hold
 * the request, so the key stays for -R.
 */
static void keep_or_discard(struct agent_key *k, int sent, int rc)
{
	char *msg;

	if (sent) {
		char shown[KEYLOAD_SHOWN];

		sa_warn("the key generated in this run stays in the token as %s; "
			"the same command with -R continues with it",
			keyload_display(agent_key_uri(k), shown, sizeof(shown)));
		return;
	}
	msg = strdup(sa_errmsg());
	agent_key_discard(k, "no request reached the CA");
	sa_fail_noossl(rc, "%s", msg ? msg : "enrollment failed");
	free(msg);
}

static void report_pending(const struct scep_reply *r, X509_REQ *csr,
			   const struct agent_key *k)
{
	char *tid = r->transaction_id ? NULL :
		    scep_transaction_id(X509_REQ_get0_pubkey(csr));
	char shown[160], key[KEYLOAD_SHOWN];

	/* the CA's echo: verified equal to ours, escaped all the same */
	if (r->transaction_id != NULL)
		sa_esc_str(r->transaction_id, shown, sizeof(shown));
	sa_info("pkistatus: PENDING");
	if ((k->generated || k->resumed || k->reused) && k->obj != NULL)
		sa_err("the CA has not decided yet (PENDING, transactionID %s); "
		       "the new key stays in the token as %s; run the same "
		       "command again with -R to resume polling with it",
		       r->transaction_id ? shown : tid ? tid : "?",
		       keyload_display(agent_key_uri(k), key, sizeof(key)));
	else
		sa_err("the CA has not decided yet (PENDING, transactionID %s); "
		       "run the same command again with -R to resume polling",
		       r->transaction_id ? shown : tid ? tid : "?");
	free(tid);
}

static void report_failure(const struct agent_opts *o,
			   const struct scep_reply *r, struct agent_key *k)
{
	char shown[KEYLOAD_SHOWN], url[512], text[1024];

	sa_info("pkistatus: FAILURE");
	/* failInfoText is the CA's own words: escaped, bounded */
	sa_err("the CA at %s refused the request: failInfo %s%s%s%s: %s",
	       sa_url_shown(o->s.url, url, sizeof(url)),
	       scep_fail_info_name(r->fail_info),
	       r->fail_info_text ? " (\"" : "",
	       r->fail_info_text ? sa_esc_str(r->fail_info_text, text,
					      sizeof(text)) : "",
	       r->fail_info_text ? "\")" : "",
	       scep_fail_info_hint(r->fail_info));
	if (k->generated || k->reused)
		agent_key_discard(k, "the CA refused its request");
	else if (k->resumed && k->obj != NULL)
		sa_err("the key generated for this request stays in the token "
		       "as %s; use it with -k and that URI, or replace it "
		       "with --overwrite",
		       keyload_display(agent_key_uri(k), shown, sizeof(shown)));
}

/*
 * The issued certificate could not be written to -l (a full or read-only
 * file system): nothing was stored in the token either, so the old key and
 * certificate are as they were. The certificate goes to standard output
 * rather than being lost, and the message says how to get it again.
 */
static void not_written(const struct agent_opts *o, const struct agent_key *k,
			X509 *cert, int rc)
{
	char *why = strdup(sa_errmsg()), *serial = agent_serial_str(cert);

	PEM_write_X509(stdout, cert);
	fflush(stdout);
	sa_fail_noossl(rc, "%s; the certificate the CA issued (serial %s, printed "
		       "on standard output) was not stored%s; once %s can be "
		       "written, run the same command with -R: it polls the CA "
		       "for the same transaction, which sends the certificate "
		       "again", why ? why : "cannot write the certificate",
		       serial ? serial : "?",
		       k->obj == NULL ? "" : k->replace ? " in the token either: "
		       "the old key and certificate stay as they were" :
		       " in the token either", o->s.local_cert_file);
	free(serial);
	free(why);
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
 * No staged key: did an earlier run finish this enrollment and stop just
 * before its end (killed after the key took its label)? Then the key
 * labelled label has its certificate, issued by the trusted CA, in -l; and
 * that is not the renewal's old certificate (-O: with -l the same file as
 * -O, a scheduled renewal of the current pair goes on). A first enrollment
 * asked to --overwrite goes on too: it asks for a new key every time.
 * Repeating the command then reports the result (*done) rather than
 * refusing because the label is taken, or renewing twice.
 */
static int finished_already(const struct agent_opts *o, p11_token *tok,
			    const char *label, const struct scep_ca *ca, int *done)
{
	const struct conf_settings *s = &o->s;
	int renew = s->sign_key != NULL || s->sign_cert_file != NULL;
	char shown[KEYLOAD_SHOWN];
	p11_keyobj *key = NULL;
	X509 *cert = NULL, *old = NULL;

	if (s->local_cert_file == NULL || (!renew && s->overwrite == 1))
		return 0;
	cert = cert_if_there(s->local_cert_file);
	if (cert == NULL)
		goto out;
	if (renew && (old = cert_if_there(s->sign_cert_file)) != NULL &&
	    X509_cmp(old, cert) == 0)
		goto out;
	if (p11_newkey_get1(tok, label, 0, &key) < 0 ||
	    !p11_key_matches_cert(p11_keyobj_get0_pkey(key), cert) ||
	    scep_ca_verify_issued(ca, cert, NULL) < 0) {
		sa_err_clear();
		goto out;
	}
	agent_out("the enrollment was finished by an earlier run: %s holds "
		  "the certificate for the key in the token; no request was "
		  "sent", s->local_cert_file);
	agent_out("key: %s", keyload_display(p11_keyobj_get0_uri(key), shown,
					     sizeof(shown)));
	*done = 1;
out:
	X509_free(cert);
	X509_free(old);
	p11_keyobj_free(key);
	return 0;
}

/*
 * Before anything else of a --new-key enrollment: did an earlier run get
 * the certificate for its staged key and stop before the key took its
 * label? Its certificate is in the token (it stopped inside
 * p11_key_commit), or in -l (written before the token store; with
 * -l the same file as -O the old certificate is gone from there) or -O,
 * issued by the trusted CA for the staged key: store it (if needed) and
 * commit, and the enrollment is done (*done). No CA is asked.
 */
static int finish_earlier(const struct agent_opts *o, struct keyload *kl,
			  const struct scep_ca *ca, int *done)
{
	const struct conf_settings *s = &o->s;
	p11_token *tok = NULL;
	p11_keyobj *key = NULL;
	X509 *cert = NULL;
	char *label = NULL, *curi = NULL;
	char shown[KEYLOAD_SHOWN];
	int rc, certified = 0, used = 0, i;

	*done = 0;
	if (s->new_key == NULL || !p11_is_uri(s->new_key))
		return 0;
	label = p11_uri_attr(s->new_key, "object", NULL);
	if (label == NULL)
		return 0; /* agent_key_obtain says what is missing */
	rc = keyload_token(kl, s->new_key, &tok);
	if (rc < 0)
		goto out;
	rc = p11_staged_get1(tok, label, &key, &certified, &used);
	if (rc == 0)
		rc = finished_already(o, tok, label, ca, done);
	if (rc <= 0)
		goto out;
	for (i = 0; !certified && i < 2 && cert == NULL; i++) {
		cert = cert_if_there(i == 0 ? s->local_cert_file :
				     s->sign_cert_file);
		if (cert != NULL &&
		    (!p11_key_matches_cert(p11_keyobj_get0_pkey(key), cert) ||
				     scep_ca_verify_issued(ca, cert, NULL) < 0)) {
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
	rc = p11_key_commit(key, label, 0);
	if (rc < 0)
		goto out;
	curi = p11_cert_uri(key);
	agent_out("the enrollment an earlier run started is finished; no "
		  "request was sent");
	agent_out("key: %s", keyload_display(p11_keyobj_get0_uri(key), shown,
					     sizeof(shown)));
	if (curi != NULL)
		agent_out("certificate: %s", keyload_display(curi, shown,
							     sizeof(shown)));
	*done = 1;
	rc = 0;
out:
	X509_free(cert);
	p11_keyobj_free(key);
	free(label);
	free(curi);
	return rc;
}

/* After SUCCESS: token, disk, report. */
static int store_result(const struct agent_opts *o, struct agent_key *k,
			const struct scep_ca *ca, X509 *cert)
{
	const struct conf_settings *s = &o->s;
	/* a staged key's certificate takes the staging label with it */
	const char *label = s->cert_label ? s->cert_label :
			    k->staged ? NULL : k->label;
	char *cert_uri = NULL, *subj = NULL, *serial = NULL;
	char shown[KEYLOAD_SHOWN];
	int i, rc;

	/* disk first: if the token refuses, the certificate is not lost */
	if (s->local_cert_file != NULL) {
		rc = files_write_cert(s->local_cert_file, cert);
		if (rc < 0) {
			not_written(o, k, cert, rc);
			goto out;
		}
		agent_out("certificate written as %s", s->local_cert_file);
		sa_step("cert-written");
	}
	if (k->obj != NULL) {
		rc = p11_cert_store(k->obj, cert, label, &cert_uri);
		if (rc < 0) {
			if (s->local_cert_file == NULL) {
				/* not stored anywhere: show it rather than lose it */
				PEM_write_X509(stdout, cert);
				fflush(stdout);
			}
			goto out;
		}
		sa_step("cert-stored");
		if (s->store_ca == 1)
			for (i = 0; i < sk_X509_num(ca->certs); i++) {
				X509 *x = sk_X509_value(ca->certs, i);
				char cal[128], calshown[160];
				int lr;

				lr = X509_NAME_get_text_by_NID(
					X509_get_subject_name(x),
					NID_commonName, cal, sizeof(cal));
				if (lr <= 0)
					snprintf(cal, sizeof(cal), "CA %d", i);
				rc = p11_cacert_store(agent_key_token(k), x,
						      cal);
				if (rc < 0)
					goto out;
				sa_verbose("CA certificate \"%s\" stored in "
					   "the token", sa_esc_str(cal, calshown,
								   sizeof(calshown)));
			}
		if (k->staged || k->replace) {
			/* only now may the old key and certificate go */
			rc = p11_key_commit(k->obj, k->label, k->keep_old);
			if (rc < 0)
				goto out;
			free(cert_uri);
			cert_uri = p11_cert_uri(k->obj);
			sa_step("key-committed");
		}
	}
	subj = csr_name_oneline(X509_get_subject_name(cert));
	serial = agent_serial_str(cert);
	agent_out("subject: %s", subj ? subj : "?");
	agent_out("serial: %s", serial ? serial : "?");
	if (k->obj != NULL)
		agent_out("key: %s", keyload_display(agent_key_uri(k), shown,
						     sizeof(shown)));
	if (cert_uri != NULL)
		agent_out("certificate: %s", keyload_display(cert_uri, shown,
							     sizeof(shown)));
	rc = 0;
out:
	free(cert_uri);
	free(subj);
	free(serial);
	return rc;
}

int op_enroll(const struct agent_opts *o, int *result)
{
	const struct conf_settings *s = &o->s;
	struct keyload *kl = NULL;
	struct agent_key k = { 0 };
	struct scep_ca ca = { 0 };
	struct scep_request req;
	struct scep_poll_opts po;
	struct scep_reply reply = { .fail_info = -1 };
	scep_client *c = NULL;
	X509_REQ *csr = NULL;
	X509 *self = NULL, *old_cert = NULL, *cert = NULL;
	EVP_PKEY *old_key = NULL;
	unsigned caps;
	int rc, renew, have_req, sent = 0, done = 0;

	*result = SA_EXIT_OK;
	memset(&req, 0, sizeof(req));
	renew = s->sign_key != NULL || s->sign_cert_file != NULL;
	rc = agent_ca_load(o, &ca);
	if (rc < 0)
		goto out;
	rc = agent_client_new(o, &c);
	if (rc < 0)
		goto out;
	/* check what we can before a key is generated in a token */
	have_req = s->cert_req_file != NULL && files_exist(s->cert_req_file);
	if (s->subject == NULL && s->new_key != NULL &&
	    !(s->resume == 1 && have_req)) {
		rc = sa_fail_noossl(SA_EUSAGE, "a new key (--new-key) needs "
				    "--subject /CN=... to make its request: a "
				    "request file%s cannot hold a key that does "
				    "not exist yet%s", s->cert_req_file ? " (-r)" :
				    "", s->resume == 1 ? " (with -R, -r may name "
				    "the request the pending run wrote)" : "");
		goto out;
	}
	if (s->subject == NULL && !have_req) {
		rc = sa_fail_noossl(SA_EUSAGE, "enroll needs a request: -r FILE "
				    "(made by mkrequest), or --subject /CN=... "
				    "to make one");
		goto out;
	}
	if (s->local_cert_file == NULL && s->new_key == NULL &&
	    (s->private_key == NULL || !p11_is_uri(s->private_key))) {
		rc = sa_fail_noossl(SA_EUSAGE, "enroll needs -l FILE (or "
				    "LocalCertFile) to write the certificate");
		goto out;
	}
	/* a bad subject or extension is found before a key is generated */
	if (s->new_key != NULL && s->resume != 1 &&
	    (rc = agent_csr_check(o)) < 0)
		goto out;
	rc = keyload_new(&o->p11, &kl);
	if (rc < 0)
		goto out;
	/*
	 * an earlier run that got its certificate and stopped: finish it
	 * (the CA need not be reachable for that)
	 */
	rc = finish_earlier(o, kl, &ca, &done);
	if (rc < 0 || done)
		goto out;
	/*
	 * The CA's capabilities, before a key is generated: a server that
	 * cannot be reached fails here, before a key is generated or a
	 * request sent.
	 */
	rc = scep_client_get_caps(c, &caps);
	if (rc < 0)
		goto out;
	if (renew) {
		rc = get_renewal_signer(o, kl, &old_key, &old_cert);
		if (rc < 0)
			goto out;
	}
	rc = agent_key_obtain(o, kl, 0, &k);
	if (rc < 0)
		goto out;
	rc = get_csr(o, &k, &csr);
	if (rc < 0)
		goto out;
	req.csr = csr;
	if (renew) {
		req.signer_key = old_key;
		req.signer_cert = old_cert;
		if (o->renew_mode == RENEW_RENEWALREQ ||
		    (o->renew_mode == RENEW_AUTO && (caps & SCEP_CAP_RENEWAL)))
			req.type = SCEP_MSG_RENEWALREQ;
		else
			req.type = SCEP_MSG_PKCSREQ;
		sa_info("renewal: %s signed by the old certificate %s",
			req.type == SCEP_MSG_RENEWALREQ ? "RenewalReq" : "PKCSReq",
			s->sign_cert_file);
	} else {
		rc = scep_selfsigned_new(csr, k.key,
					 scep_choose_digest(caps, o->digest),
					 &self);
		if (rc < 0)
			goto out;
		if (s->self_signed_file != NULL) {
			rc = files_write_cert(s->self_signed_file, self);
			if (rc < 0)
				goto out;
			sa_verbose("self-signed certificate written as %s",
				   s->self_signed_file);
		}
		req.type = SCEP_MSG_PKCSREQ;
		req.signer_key = k.key;
		req.signer_cert = self;
	}
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
	rc = scep_enroll(c, &ca, &req, &po, &reply);
	/* building or encrypting the message, or connecting, may fail first */
	sent = scep_client_request_sent(c);
	if (rc < 0)
		goto out;
	sa_info("valid response from server");
	if (reply.status == SCEP_STATUS_PENDING) {
		report_pending(&reply, csr, &k);
		*result = SA_EXIT_PENDING;
		goto out;
	}
	if (reply.status != SCEP_STATUS_SUCCESS) {
		report_failure(o, &reply, &k);
		*result = SA_EXIT_FAILURE;
		goto out;
	}
	sa_info("pkistatus: SUCCESS");
	rc = scep_reply_find_cert(&reply, k.key, &cert);
	if (rc < 0)
		goto out;
	if (EVP_PKEY_eq(X509_get0_pubkey(cert), k.key) != 1) {
		rc = sa_fail_noossl(SA_EREPLY, "the issued certificate does not "
				    "carry our public key; not storing it");
		goto out;
	}
	/* issued by the trusted CA, before anything is written or replaced */
	rc = scep_ca_verify_issued(&ca, cert, reply.certs);
	if (rc < 0)
		goto out;
	sa_step("reply-verified");
	rc = store_result(o, &k, &ca, cert);
out:
	/* stopped, or the connection broke, once the request may be out */
	if ((rc == SA_EINTR || rc == SA_ENET) && sent) {
		char *msg = strdup(sa_errmsg());

		sa_fail_noossl(rc, "%s; the request may have reached the CA: run "
			       "the same command with -R to resume (if the CA "
			       "never got it, -R is refused and the command "
			       "without -R sends it again)", msg ? msg : "stopped");
		free(msg);
	}
	if (rc < 0 && k.generated)
		keep_or_discard(&k, sent, rc);
	X509_free(cert);
	scep_reply_clear(&reply);
	X509_free(self);
	X509_free(old_cert);
	EVP_PKEY_free(old_key);
	X509_REQ_free(csr);
	agent_key_clear(&k);
	keyload_free(kl);
	scep_ca_clear(&ca);
	scep_client_free(c);
	return rc;
}

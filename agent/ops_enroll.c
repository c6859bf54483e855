/*
 * ops_enroll.c - the enroll command: runs the enrollment engine
 * (agent/engine/) and reports its outcome as the command line does:
 * result lines on standard output, what to do next on standard error,
 * and the CA's verdict as an exit code (*result). The engine does the
 * work (key, request, transaction, checks, storage).
 */
#include "agent.h"
#include "engine.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "csr.h"
#include "keyload.h"
#include "sa_err.h"
#include "sa_esc.h"
#include "sa_log.h"

static void report_pending(const struct engine_outcome *e)
{
	char shown[160], key[KEYLOAD_SHOWN];

	/* the CA's echo: verified equal to ours, escaped all the same */
	if (e->transaction_id != NULL)
		sa_esc_str(e->transaction_id, shown, sizeof(shown));
	if (e->key_new && e->key_uri != NULL)
		sa_err("the CA has not decided yet (PENDING, transactionID %s); "
		       "the new key stays in the token as %s; run the same "
		       "command again with -R to resume polling with it",
		       e->transaction_id ? shown : "?",
		       keyload_display(e->key_uri, key, sizeof(key)));
	else
		sa_err("the CA has not decided yet (PENDING, transactionID %s); "
		       "run the same command again with -R to resume polling",
		       e->transaction_id ? shown : "?");
}

static void report_failure(const struct agent_opts *o,
			   const struct engine_outcome *e)
{
	char shown[KEYLOAD_SHOWN], url[512], text[1024];

	/* failInfoText is the CA's own words: escaped, bounded */
	sa_err("the CA at %s refused the request: failInfo %s%s%s%s: %s",
	       sa_url_shown(o->s.url, url, sizeof(url)),
	       scep_fail_info_name(e->fail_info),
	       e->fail_info_text ? " (\"" : "",
	       e->fail_info_text ? sa_esc_str(e->fail_info_text, text,
					      sizeof(text)) : "",
	       e->fail_info_text ? "\")" : "",
	       scep_fail_info_hint(e->fail_info));
	if (e->key_resumed && e->key_uri != NULL)
		sa_err("the key generated for this request stays in the token "
		       "as %s; use it with -k and that URI, or replace it "
		       "with --overwrite",
		       keyload_display(e->key_uri, shown, sizeof(shown)));
}

static void report_success(const struct agent_opts *o,
			   const struct engine_outcome *e)
{
	char shown[KEYLOAD_SHOWN], *subj, *serial;

	if (e->finished_earlier == 1) {
		agent_out("the enrollment was finished by an earlier run: %s "
			  "holds the certificate for the key in the token; no "
			  "request was sent", o->s.local_cert_file);
		agent_out("key: %s", keyload_display(e->key_uri, shown,
						     sizeof(shown)));
		return;
	}
	if (e->finished_earlier == 2) {
		agent_out("the enrollment an earlier run started is finished; "
			  "no request was sent");
	} else {
		subj = csr_name_oneline(X509_get_subject_name(e->cert));
		serial = agent_serial_str(e->cert);
		agent_out("subject: %s", subj ? subj : "?");
		agent_out("serial: %s", serial ? serial : "?");
		free(subj);
		free(serial);
	}
	if (e->key_uri != NULL)
		agent_out("key: %s", keyload_display(e->key_uri, shown,
						     sizeof(shown)));
	if (e->cert_uri != NULL)
		agent_out("certificate: %s", keyload_display(e->cert_uri, shown,
							     sizeof(shown)));
}

/*
 * The engine's error, worded for this command: a certificate stored
 * nowhere goes to standard output with how to get it again; a request
 * that may be out is resumed with -R.
 */
static int report_error(const struct agent_opts *o,
			const struct engine_outcome *e)
{
	const struct conf_settings *s = &o->s;
	int rc = sa_error_raise(&e->err);

	if (e->cert != NULL) {
		/* not stored anywhere: show it rather than lose it */
		PEM_write_X509(stdout, e->cert);
		fflush(stdout);
	}
	if (e->cert != NULL && s->local_cert_file != NULL) {
		/*
		 * -l could not be written (a full or read-only file system):
		 * nothing was stored in the token either, so the old key and
		 * certificate are as they were
		 */
		char *serial = agent_serial_str(e->cert);

		sa_fail_suffix(rc, "; the certificate the CA issued (serial %s, "
			       "printed on standard output) was not stored%s; "
			       "once %s can be written, run the same command "
			       "with -R: it polls the CA for the same "
			       "transaction, which sends the certificate again",
			       serial ? serial : "?", !e->key_in_token ? "" :
			       e->key_replace ? " in the token either: the old "
			       "key and certificate stay as they were" :
			       " in the token either", s->local_cert_file);
		free(serial);
	}
	/* stopped, or the connection broke, once the request may be out */
	if ((rc == SA_EINTR || rc == SA_ENET) && e->sent)
		sa_fail_suffix(rc, "; the request may have reached the CA: run "
			       "the same command with -R to resume (if the CA "
			       "never got it, -R is refused and the command "
			       "without -R sends it again)");
	if (e->key_generated && e->sent) {
		char shown[KEYLOAD_SHOWN];

		sa_warn("the key generated in this run stays in the token as %s; "
			"the same command with -R continues with it",
			keyload_display(e->key_uri, shown, sizeof(shown)));
	}
	return rc;
}

int op_enroll(const struct agent_opts *o, int *result)
{
	struct engine_req req = { .o = o, .store_disk = NULL, .keep_old = 0 };
	struct engine_outcome e;
	int rc;

	*result = SA_EXIT_OK;
	engine_enroll(&req, &e);
	if (e.cert_written && !e.finished_earlier)
		agent_out("certificate written as %s", o->s.local_cert_file);
	switch (e.status) {
	case ENGINE_SUCCESS:
		report_success(o, &e);
		rc = 0;
		break;
	case ENGINE_PENDING:
		report_pending(&e);
		*result = SA_EXIT_PENDING;
		rc = 0;
		break;
	case ENGINE_FAILURE:
		report_failure(o, &e);
		*result = SA_EXIT_FAILURE;
		rc = 0;
		break;
	case ENGINE_ERROR:
	default:
		rc = report_error(o, &e);
		break;
	}
	engine_outcome_clear(&e);
	return rc;
}

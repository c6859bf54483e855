/*
 * enroll.c - an enrollment transaction: PKCSReq/RenewalReq, then CertPoll
 * while the CA answers PENDING, within sscep's limits (-t, -T, -n).
 */
#include "scep_int.h"

#include <string.h>
#include <time.h>

#include "sa_err.h"
#include "sa_intr.h"
#include "sa_log.h"

/* Sleep; returns the seconds left when a stop signal cut it short. */
unsigned (*scep_enroll_sleep)(unsigned seconds) = sa_intr_sleep;

/* Enroll with polling; see scep.h. */
int scep_enroll(scep_client *c, const struct scep_ca *ca,
		const struct scep_request *req,
		const struct scep_poll_opts *opts, struct scep_reply *out)
{
	struct scep_request poll;
	struct scep_reply r = { .fail_info = -1 };
	long interval = opts && opts->interval > 0 ? opts->interval : 60;
	long max_time = opts ? opts->max_time : 0;
	long max_count = opts ? opts->max_count : 0;
	time_t start = time(NULL);
	char *tid = NULL;
	long waited = 0; /* seconds slept; counts even when time is mocked */
	int rc, polls = 0;

	memset(out, 0, sizeof(*out));
	out->fail_info = -1;
	if (req->csr == NULL)
		return sa_fail_noossl(SA_EUSAGE, "enrollment needs a certificate request");
	if (ca == NULL || ca->ca == NULL)
		return sa_fail_noossl(SA_EUSAGE, "enrollment needs the CA certificate");
	tid = req->transaction_id ? strdup(req->transaction_id) :
		scep_transaction_id(X509_REQ_get0_pubkey(req->csr));
	if (tid == NULL)
		return sa_fail(SA_ECRYPTO, "cannot derive the transactionID");

	poll = *req;
	poll.type = SCEP_MSG_CERTPOLL;
	poll.transaction_id = tid;
	poll.issuer = X509_get_subject_name(ca->ca);
	poll.subject = X509_REQ_get_subject_name(req->csr);

	if (opts && opts->resume) {
		sa_info("resuming transaction %s with CertPoll", tid);
		rc = scep_transact(c, ca, &poll, &r);
		polls = 1;
	} else {
		struct scep_request first = *req;

		first.transaction_id = tid;
		sa_verbose("sending %s, transactionID %s",
			   req->type == SCEP_MSG_RENEWALREQ ? "RenewalReq" : "PKCSReq", tid);
		rc = scep_transact(c, ca, &first, &r);
	}
	while (rc == SA_OK && r.status == SCEP_STATUS_PENDING) {
		long elapsed = (long)(time(NULL) - start);

		if (elapsed < waited)
			elapsed = waited;

		if (opts && opts->on_pending)
			opts->on_pending(opts->arg, polls, tid);
		if (max_count > 0 && polls >= max_count) {
			sa_info("still pending after %d poll(s) (limit -n %ld); resume with -R",
				polls, max_count);
			break;
		}
		if (max_time > 0 && elapsed + interval > max_time) {
			sa_info("still pending after %ld s (limit -T %ld); resume with -R",
				elapsed, max_time);
			break;
		}
		sa_info("request pending, polling again in %ld s (transactionID %s)",
			interval, tid);
		waited += interval;
		if (scep_enroll_sleep((unsigned)interval) != 0) {
			sa_info("polling stopped by %s; the request is still pending, "
				"resume with -R", sa_intr_name(sa_intr_caught()));
			break;
		}
		scep_reply_clear(&r);
		rc = scep_transact(c, ca, &poll, &r);
		polls++;
	}
	if (rc == SA_OK) {
		*out = r;
		memset(&r, 0, sizeof(r));
	}
	scep_reply_clear(&r);
	free(tid);
	return rc;
}

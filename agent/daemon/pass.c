/*
 * pass.c - one profile's turn: lock, state, certificate on disk, the
 * decision (due.c), the job in a child (job_run), and its outcome turned
 * into state, pruning, hooks and log lines. The state is written before a
 * job starts (phase and transaction) and after it ends, so that a process
 * killed anywhere resumes the same transaction.
 */
#include "daemon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "csr.h"
#include "hooks.h"
#include "sa_err.h"
#include "sa_esc.h"
#include "sa_intr.h"
#include "sa_log.h"
#include "scep.h"
#include "store.h"

/* A job is killed past this (the engine's own waits are shorter). */
#define PASS_JOB_TIMEOUT 1800

static const char *kind_name(enum job_kind k)
{
	switch (k) {
	case JOB_ENROLL: return "enroll";
	case JOB_RENEW: return "renew";
	case JOB_REENROLL: return "reenroll";
	case JOB_ADOPT: return "adopt";
	}
	return "enroll";
}

static void txn_clear(struct state *st)
{
	st->pending = 0;
	state_set(&st->transaction_id, NULL);
	state_set(&st->txn_key_uri, NULL);
	state_set(&st->txn_kind, NULL);
	st->txn_started = 0;
}

static int save(const struct profile *p, const struct state *st)
{
	int rc = state_save(p->state_dir, p->name, st);

	if (rc != 0)
		sa_err("profile %s: cannot write its state in %s: %s", p->name,
		       p->state_dir, *sa_errmsg() ? sa_errmsg() : sa_strerror(rc));
	sa_err_clear();
	return rc;
}

/* The failure hook, with what the state knows of the current pair. */
static void hook_failure(const struct profile *p, const struct state *st)
{
	struct hook_env env;
	char na[32];
	char *key = dtext_uri_nopin(st->key_uri);

	memset(&env, 0, sizeof(env));
	env.profile = p->name;
	env.serial = st->serial;
	env.not_after = st->not_after ? dtext_rfc3339(st->not_after, na,
						      sizeof(na)) : NULL;
	env.key = key;
	env.error = st->last_error;
	if (p->hook_failure != NULL)
		hook_run("HookFailure", p->hook_failure, p->hook_timeout, &env);
	free(key);
	sa_err_clear();
}

/* Record a failure: message, backoff, failure hook. */
static enum pass_result failed(const struct profile *p, struct state *st,
			       const char *msg, time_t now, time_t *next)
{
	long wait;
	char when[32];
	size_t nl = strlen(p->name);

	/* a message that names the profile already: once is enough */
	if (strncmp(msg, "profile ", 8) == 0 &&
	    strncmp(msg + 8, p->name, nl) == 0 && strncmp(msg + 8 + nl, ": ", 2) == 0)
		msg += 10 + nl;
	st->phase = STATE_FAILED;
	state_set(&st->last_error, msg);
	st->failures++;
	wait = due_backoff(p->backoff_min, p->backoff_max, st->failures);
	st->next_try = now + wait;
	st->next_check = st->next_try;
	*next = st->next_try;
	sa_err("profile %s: %s; attempt %d failed, next one at %s (in %ld s)",
	       p->name, msg, st->failures,
	       dtext_rfc3339(st->next_try, when, sizeof(when)), wait);
	save(p, st);
	hook_failure(p, st);
	return PASS_FAILED;
}

static enum pass_result succeeded(const struct profile *p, struct state *st,
				  struct job_out *out, time_t now, time_t *next)
{
	struct hook_env env;
	char na[32], ra[32];
	char *key = dtext_uri_nopin(out->key_uri);

	txn_clear(st);
	st->phase = STATE_OK;
	state_set(&st->serial, out->serial);
	state_set(&st->subject, out->subject);
	st->not_before = out->not_before;
	st->not_after = out->not_after;
	state_set(&st->key_uri, key);
	st->last_success = now;
	st->failures = 0;
	st->next_try = 0;
	state_set(&st->last_error, NULL);
	st->renew_at = due_renew_point(p, out->not_before, out->not_after,
				       due_jitter_seed(out->serial));
	st->next_check = st->renew_at;
	*next = st->renew_at;
	save(p, st);
	sa_info("profile %s: certificate %s (%s) in %s, valid until %s; "
		"renewal at %s", p->name, out->serial ? out->serial : "?",
		out->subject ? out->subject : "?",
		out->cert_path ? out->cert_path : p->store_dir,
		dtext_rfc3339(out->not_after, na, sizeof(na)),
		dtext_rfc3339(st->renew_at, ra, sizeof(ra)));
	if (store_prune(p->store_dir, p->keep_old) != 0)
		sa_warn("profile %s: cannot prune old certificates in %s: %s",
			p->name, p->store_dir, sa_errmsg());
	sa_err_clear();
	memset(&env, 0, sizeof(env));
	env.profile = p->name;
	env.serial = out->serial;
	env.cert = out->cert_path;
	env.not_after = na;
	env.key = key;
	if (p->hook_success != NULL)
		hook_run("HookSuccess", p->hook_success, p->hook_timeout, &env);
	sa_err_clear();
	free(key);
	return PASS_OK;
}

/* The CA's refusal in words; a challenge source means it may be spent. */
static void refusal_msg(const struct profile *p, const struct job_out *out,
			char *buf, size_t size)
{
	int fi = out->fail_info;
	int challenge = p->o.s.challenge_file != NULL ||
			p->o.s.challenge_env != NULL ||
			p->o.s.challenge_prompt > 0;

	snprintf(buf, size, "the CA refused the request (failInfo %s%s%s): %s%s",
		 fi >= 0 ? scep_fail_info_name(fi) : "none",
		 out->fail_info_text ? ", " : "",
		 /* escaped by the job (job.h), sanitised again on the pipe */
		 out->fail_info_text ? out->fail_info_text : "",
		 fi >= 0 ? scep_fail_info_hint(fi) : "no reason given",
		 challenge && (fi < 0 || fi == SCEP_FAIL_BADREQUEST ||
			       fi == SCEP_FAIL_BADMESSAGECHECK) ?
		 "; if the challenge password was changed or used up, a new "
		 "challenge is needed: put it where ChallengePassword"
		 "File/ChallengePasswordEnv says and run check again" : "");
}

/*
 * After a job that ended without the CA's answer: may its transaction live
 * at the CA? Pending, resumed (an earlier run's request may have left), or
 * this run's request may have left (out->sent; for a killed child, whether
 * it got to sending). Such a transaction is resumed next; one whose
 * request never left is sent anew: polling it would ask the CA about a
 * transaction it never saw.
 */
static int txn_may_live(const struct state *st, const struct due *d,
			const struct job_out *out)
{
	return st->pending || d->resume || out->sent;
}

/*
 * A resumed transaction that never got an answer from the CA (not
 * pending: the run that sent it was killed as the request left) and that
 * the CA does not know (FAILURE badCertId to the poll): the request never
 * arrived. It is sent again at once (same key) rather than counted as a
 * failure: *resend set, nothing recorded as failed.
 */
static int never_arrived(const struct state *st, const struct due *d,
			 const struct job_out *out)
{
	return d->resume && !st->pending && out->status == ENGINE_FAILURE &&
	       out->fail_info == SCEP_FAIL_BADCERTID;
}

/* Run the job d says, with the state written before and after. */
static enum pass_result run_job(const struct profile *p, struct state *st,
				const struct due *d, time_t *next, int *resend)
{
	struct job_in in;
	struct job_out out;
	time_t now = time(NULL);
	char msg[SA_ERRMSG_MAX + 700];
	enum pass_result r;
	int rc, arrived;

	memset(&out, 0, sizeof(out));
	if (sa_intr_caught() != 0) {
		*next = now;
		return PASS_PENDING; /* stopping: no new job, nothing written */
	}
	if (!d->resume) {
		txn_clear(st);
		if (d->kind != JOB_ADOPT) {
			state_set(&st->txn_kind, kind_name(d->kind));
			st->txn_started = now;
		}
	}
	st->phase = (d->kind == JOB_RENEW || d->kind == JOB_REENROLL) ?
		    STATE_RENEWING : STATE_ENROLLING;
	st->last_attempt = now;
	if (save(p, st) != 0) {
		*next = now + 300;
		return PASS_FAILED; /* no job without its record */
	}
	sa_info("profile %s: %s", p->name, d->why);
	memset(&in, 0, sizeof(in));
	in.p = p;
	in.st = st;
	in.kind = d->kind;
	in.resume = d->resume;
	in.timeout_s = PASS_JOB_TIMEOUT;
	rc = job_run(&in, &out);
	now = time(NULL);
	if (rc == SA_EINTR) {
		sa_err_clear();
		*next = now;
		r = PASS_PENDING; /* stopped before it started: resumed next */
		goto out;
	}
	if (rc != 0) {
		snprintf(msg, sizeof(msg), "cannot start the job: %s",
			 *sa_errmsg() ? sa_errmsg() : sa_strerror(rc));
		sa_err_clear();
		r = failed(p, st, msg, now, next);
		goto out;
	}
	/* what the child pinned (TOFU) or fetched (rollover), whatever the
	 * outcome */
	if (out.ca_fingerprint != NULL)
		state_set(&st->ca_fingerprint, out.ca_fingerprint);
	if (out.next_ca_fingerprint != NULL)
		state_set(&st->next_ca_fingerprint, out.next_ca_fingerprint);
	if (out.ca_not_after != 0)
		st->ca_not_after = out.ca_not_after;
	switch (out.status) {
	case ENGINE_SUCCESS:
		r = succeeded(p, st, &out, now, next);
		break;
	case ENGINE_PENDING: {
		long iv = p->o.s.poll_interval > 0 ? p->o.s.poll_interval : 300;
		char tid[200];

		st->pending = 1;
		if (out.transaction_id != NULL)
			state_set(&st->transaction_id, out.transaction_id);
		if (out.key_uri != NULL) {
			char *k = dtext_uri_nopin(out.key_uri);

			state_set(&st->txn_key_uri, k);
			free(k);
		}
		state_set(&st->last_error, NULL);
		st->failures = 0; /* the CA answered: no backoff */
		st->next_try = 0;
		st->next_check = now + iv;
		*next = st->next_check;
		save(p, st);
		sa_info("profile %s: the CA has not decided yet (transaction "
			"%s); asking again in %ld s", p->name,
			sa_esc_str(st->transaction_id, tid, sizeof(tid)), iv);
		r = PASS_PENDING;
		break;
	}
	case ENGINE_FAILURE:
		arrived = !never_arrived(st, d, &out);
		txn_clear(st); /* the CA's answer is final */
		if (!arrived) {
			sa_warn("profile %s: the CA does not know the interrupted "
				"transaction (badCertId): its request never arrived; "
				"sending it again", p->name);
			save(p, st);
			*resend = 1;
			*next = now;
			r = PASS_PENDING;
			break;
		}
		refusal_msg(p, &out, msg, sizeof(msg));
		r = failed(p, st, msg, now, next);
		break;
	default:
		if (out.err.code == SA_EINTR ||
		    (out.killed && sa_intr_caught() != 0)) {
			/* stopped, not failed: the state keeps the phase, and
			 * the transaction when it may live at the CA (the
			 * next start resumes it) */
			if (!txn_may_live(st, d, &out)) {
				txn_clear(st);
				save(p, st);
			}
			sa_info("profile %s: the job was stopped by %s; the next "
				"start %s", p->name, sa_intr_name(sa_intr_caught()),
				st->txn_kind != NULL ? "resumes it" :
				"starts it again (no request had left)");
			*next = now;
			r = PASS_PENDING;
			break;
		}
		if (!txn_may_live(st, d, &out))
			txn_clear(st);
		snprintf(msg, sizeof(msg), "%s", *out.err.msg ? out.err.msg :
			 sa_strerror(out.err.code));
		r = failed(p, st, msg, now, next);
		break;
	}
out:
	job_out_clear(&out);
	return r;
}

enum pass_result pass_profile(const struct profile *p, int force,
			      int lock_wait_ms, time_t *next)
{
	struct state st;
	struct due_cert c;
	struct due d;
	X509 *cert = NULL;
	time_t now = time(NULL);
	char when[32], when2[32];
	enum pass_result r = PASS_OK;
	int lock, rc;

	memset(&st, 0, sizeof(st));
	memset(&c, 0, sizeof(c));
	*next = now + 300;
	lock = state_lock(p->state_dir, p->name, lock_wait_ms);
	if (lock < 0) {
		if (lock == SA_EEXIST) {
			sa_warn("profile %s: another scep-agent is working on it "
				"(lock %s/%s.lock); skipped", p->name,
				p->state_dir, p->name);
			*next = now + 60;
			sa_err_clear();
			return PASS_SKIPPED;
		}
		sa_err("profile %s: cannot lock it in %s: %s", p->name,
		       p->state_dir, sa_errmsg());
		sa_err_clear();
		return PASS_FAILED;
	}
	rc = state_load(p->state_dir, p->name, &st);
	if (rc == 0)
		rc = store_latest(p->store_dir, &cert);
	if (rc == 0)
		rc = due_cert_read(p, cert, &c);
	if (rc != 0) {
		sa_err("profile %s: %s", p->name,
		       *sa_errmsg() ? sa_errmsg() : sa_strerror(rc));
		sa_err_clear();
		r = PASS_FAILED;
		goto out;
	}
	due_decide(p, &st, &c, now, force, &d);
	if (d.new_renew_at)
		st.renew_at = d.renew_at;
	switch (d.what) {
	case DUE_NOTHING:
		*next = d.when;
		if (d.new_renew_at || st.next_check != d.when ||
		    st.phase != STATE_OK) {
			/* the certificate on disk is the current one (a run
			 * that stored it may have died before its state) */
			if (st.serial == NULL || strcmp(st.serial, c.serial) != 0) {
				char *subj = csr_name_oneline(
					X509_get_subject_name(cert));

				state_set(&st.serial, c.serial);
				state_set(&st.subject, subj);
				free(subj);
				st.not_before = c.not_before;
				st.not_after = c.not_after;
			}
			st.phase = STATE_OK;
			st.failures = 0;
			st.next_check = d.when;
			save(p, &st);
		}
		sa_verbose("profile %s: certificate %s valid until %s; nothing "
			   "to do before %s", p->name, c.serial,
			   dtext_rfc3339(c.not_after, when, sizeof(when)),
			   dtext_rfc3339(d.when, when2, sizeof(when2)));
		break;
	case DUE_BACKOFF:
		*next = d.when;
		sa_info("profile %s: the last attempt failed (%s); waiting "
			"until %s before the next one", p->name,
			st.last_error ? st.last_error : "no message",
			dtext_rfc3339(d.when, when, sizeof(when)));
		r = PASS_FAILED;
		break;
	case DUE_POLL_WAIT:
		*next = d.when;
		sa_verbose("profile %s: pending; next poll at %s", p->name,
			   dtext_rfc3339(d.when, when, sizeof(when)));
		r = PASS_PENDING;
		break;
	case DUE_GIVE_UP: {
		char msg[300];

		snprintf(msg, sizeof(msg), "the CA did not approve the request "
			 "within MaxPollTime (%ld s); it is abandoned, the next "
			 "attempt sends a new request: ask the CA's operator",
			 p->o.s.max_poll_time);
		txn_clear(&st);
		r = failed(p, &st, msg, now, next);
		break;
	}
	case DUE_JOB: {
		int resend = 0;

		r = run_job(p, &st, &d, next, &resend);
		if (resend) {
			d.resume = 0; /* once: a new request for the same key */
			r = run_job(p, &st, &d, next, &resend);
		}
		break;
	}
	}
out:
	X509_free(cert);
	due_cert_clear(&c);
	state_clear(&st);
	close(lock);
	return r;
}

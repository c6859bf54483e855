/*
 * job.h - one profile's enrollment, renewal or poll, run in a short-lived
 * child process: the scheduling process never loads a PKCS#11 module or
 * touches a key. The child refreshes the CA (GetCACert checked against the
 * anchor: FingerPrint, the state's TOFU/rollover fingerprints), looks at
 * GetNextCACert when the CA nears its end, adopts AdoptCert, runs the
 * enrollment engine with StoreDir as its disk store, and sends its outcome
 * back to the parent through a pipe. The parent (job_run) records nothing:
 * the caller turns the outcome into state, hooks and logs.
 */
#ifndef JOB_H
#define JOB_H

#include <time.h>

#include "engine.h"
#include "profile.h"
#include "sa_err.h"
#include "state.h"

enum job_kind {
	JOB_ENROLL = 0, /* no pair yet: PKCSReq with the challenge */
	JOB_RENEW,      /* renewal signed by the current pair (RenewMode) */
	JOB_REENROLL,   /* current certificate expired (or refused as signer):
			 * a new enrollment, PKCSReq with the challenge, the
			 * current pair kept until the new one is stored */
	JOB_ADOPT,      /* take AdoptCert and the key NewKey names as current */
};

struct job_in {
	const struct profile *p;
	const struct state *st;  /* read only: anchor fingerprints, txn */
	enum job_kind kind;
	int resume;              /* poll the transaction st records */
	long timeout_s;          /* the child is killed past this (0: none) */
};

struct job_out {
	enum engine_status status; /* ENGINE_ERROR: err */
	struct sa_error err;
	int killed;                /* the child died (signal) or timed out */
	int sent;                  /* a request may have reached the CA */
	/* SUCCESS (and ADOPT): the new current pair */
	char *serial;              /* lowercase hex */
	char *subject;             /* one line */
	time_t not_before, not_after;
	char *cert_path;           /* StoreDir/<serial>.crt */
	char *key_uri;             /* no PIN */
	/* PENDING */
	char *transaction_id;
	/* FAILURE */
	int fail_info;             /* -1 none */
	char *fail_info_text;      /* the CA's words, escaped */
	/* trust: what the child saw */
	char *ca_fingerprint;      /* sha256 hex of the anchor used */
	char *next_ca_fingerprint; /* a rollover CA fetched and verified */
	time_t ca_not_after;       /* the anchor's end */
};

/*
 * Fork a child that runs job_do() and wait for it (bounded by
 * in->timeout_s; SIGTERM to the parent is passed on and waited for).
 * Returns 0 with *out filled (whatever the outcome), or a negative SA_E*
 * when no child could run.
 */
int job_run(const struct job_in *in, struct job_out *out);

/* The child's work, in this process (job_run's child; unit tests). */
int job_do(const struct job_in *in, struct job_out *out);

void job_out_clear(struct job_out *out);

#endif

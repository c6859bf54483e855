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

#include <stddef.h>
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

/*
 * What the child reports; the caller turns it into state:
 * state.ca_fingerprint = ca_fingerprint (when not NULL) and
 * state.next_ca_fingerprint = next_ca_fingerprint (NULL clears it: the
 * rollover CA became the anchor, or none is kept).
 */
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
	/* trust: what the child saw (fingerprints: SHA-256, lowercase hex,
	 * no colons) */
	char *ca_fingerprint;      /* the anchor to record: the one pinned
				    * (FingerPrint, the state's, TOFU's first
				    * reply), or the rollover CA once the old
				    * anchor has expired; NULL: nothing
				    * verified (an error before GetCACert) */
	char *next_ca_fingerprint; /* a rollover CA kept alongside the anchor
				    * (fetched now or kept before), or NULL */
	time_t ca_not_after;       /* the end of the anchor this run used */
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

/* ---- the child's internals (job.c, job_ca.c, job_wire.c; unit tests) ---- */

/*
 * A timed-out child gets SIGTERM, then SIGKILL this many seconds later
 * (3 times as long after a stop the parent passed on).
 */
#define JOB_KILL_GRACE 10
/*
 * A stop (SIGTERM, SIGINT) that reached the parent is passed on to the
 * child this many seconds later, unless the child got one itself.
 */
#define JOB_FORWARD_DELAY 1
/* The most the outcome may weigh on the pipe. */
#define JOB_WIRE_MAX 65536
/* job_wire_decode() flags */
#define JOB_WIRE_COMPLETE 1 /* the "end" record came: the outcome is whole */
#define JOB_WIRE_ENGINE 2   /* the child reached the engine */
#define JOB_WIRE_SENT 4     /* a request was about to leave ("stage=
			     * request-out", sa_step's observer): a child
			     * that died after it may have reached the CA;
			     * one that died before it sent nothing */

/*
 * The pipe's encoding: records "LEN key=value\n", LEN the decimal length
 * of "key=value", the last one "end=1". job_wire_encode() writes every
 * field of o; job_wire_record() one record (e.g. "stage=engine", sent
 * before the engine starts). *buf: caller frees.
 */
int job_wire_encode(const struct job_out *o, char **buf, size_t *len);
int job_wire_record(const char *key, const char *value, char **buf,
		    size_t *len);
/* All of buf to fd (EINTR retried). 0 or SA_EIO. */
int job_wire_send(int fd, const char *buf, size_t len);
/*
 * Fields of buf into out (fields not in buf are left as they are);
 * *flags gets JOB_WIRE_*. A record cut short at the end (the child died
 * while writing) ends the parse without error; a malformed one, an
 * unknown key, a NUL byte or more than JOB_WIRE_MAX bytes is
 * SA_EINTERNAL. String values get their control characters as '?'.
 */
int job_wire_decode(const char *buf, size_t len, struct job_out *out,
		    int *flags);

/* The CA as the child established it (job_ca.c). */
struct job_ca {
	struct scep_ca ca;   /* trusted: anchor set, ca.crt written from it */
	char *pin;           /* SHA-256 hex of the anchor used (the engine's
			      * fp_pin for StoreDir/ca.crt) */
};

/*
 * GetCACert checked against the anchor (see job.h's top and
 * scep-agent.conf(5): FingerPrint, the state's fingerprint, the kept
 * rollover CA, TrustOnFirstUse), StoreDir/ca.crt written with the
 * certificates that chain to it, and, when the anchor nears its end and
 * the CA offers GetNextCACert, the rollover CA fetched, verified and kept
 * as StoreDir/next-ca.crt. Fills out's trust fields. 0 or a negative
 * SA_E* (message recorded); a failed rollover fetch is a warning only.
 */
int job_ca_refresh(const struct job_in *in, scep_client *c,
		   struct job_ca *jc, struct job_out *out);
void job_ca_clear(struct job_ca *jc);

/* SHA-256 of cert, lowercase hex without colons (caller frees). */
char *job_fp_hex(X509 *cert);

/*
 * Does the CA's certificate (its lifetime nb..na) need its successor
 * looked for at now? The profile's RenewAt applied to the CA's lifetime,
 * and in any case from JOB_ROLLOVER_MIN seconds before its end.
 */
#define JOB_ROLLOVER_MIN (30L * 86400)
int job_ca_rollover_due(const struct profile *p, time_t nb, time_t na,
			time_t now);

#endif

/*
 * engine.h - one enrollment or renewal, as data: the request in, an outcome
 * out. No printing of results, no exit codes (those are the command line's,
 * agent/ops_enroll.c, and the daemon's, agent/daemon/). Progress and
 * warnings still go through sa_log (the caller chooses stderr or syslog).
 *
 * Used by: enroll (ops_enroll.c), the daemon's jobs (agent/daemon/job.c),
 * and the provisioning station later.
 */
#ifndef ENGINE_H
#define ENGINE_H

#include <openssl/x509.h>

#include "agent.h"
#include "sa_err.h"

enum engine_status {
	ENGINE_ERROR = 0,   /* out.err says what failed (code + message) */
	ENGINE_SUCCESS,     /* out.cert issued, verified, stored */
	ENGINE_PENDING,     /* the CA has not decided: resume with o->s.resume */
	ENGINE_FAILURE,     /* the CA refused: fail_info, fail_info_text */
};

/*
 * Where the issued certificate goes on disk. With store_disk set, the
 * engine calls it (after the certificate verified under the anchor and
 * against the new key, before anything is stored in the token or any key
 * is committed or retired) instead of writing -l (LocalCertFile). A
 * negative return (its message recorded with sa_fail()) stops the
 * enrollment (nothing in the token changes) and is the outcome's error,
 * with the certificate handed back in out->cert. cert and ca are borrowed
 * (X509_up_ref() to keep cert). With store_disk set, -l (if given) is
 * only read: an earlier run whose certificate is there finished already
 * (finished_earlier 1, nothing sent).
 */
typedef int engine_store_fn(void *arg, X509 *cert, const struct scep_ca *ca);

struct engine_req {
	const struct agent_opts *o; /* effective settings of this run */
	engine_store_fn *store_disk; /* NULL: -l as the command line does */
	void *store_arg;
	/*
	 * When a --new-key replaces the label's key (--overwrite, a renewal in
	 * place): how many previous keys and certificates stay in the token,
	 * retired under a label of their own (0: destroyed, as enroll's
	 * --overwrite does today; the daemon passes KeepOld): the old pair is
	 * retired as LABEL~old-<serial hex> and retired pairs beyond keep_old
	 * are destroyed (p11_key_commit(), docs/custody.md).
	 */
	int keep_old;
	/*
	 * A SCEP client to use (borrowed; NULL: the engine makes its own
	 * from the options): a process that enrolls many times (the
	 * station's workers) keeps one, so its connection and the CA's
	 * GetCACaps serve every enrollment. Its options must be those of o.
	 */
	scep_client *client;
};

struct engine_outcome {
	enum engine_status status;
	struct sa_error err;     /* status ENGINE_ERROR: code and message */
	X509 *cert;              /* SUCCESS: the issued certificate (owned);
				  * ERROR: if not NULL, the CA issued this
				  * verified certificate but it is stored
				  * nowhere (disk and token refused): show it
				  * rather than lose it */
	char *transaction_id;    /* the transaction (owned; NULL if none);
				  * PENDING: the one used (the CA's echo or
				  * the one derived from the request key) */
	int fail_info;           /* FAILURE: failInfo, -1 if none */
	char *fail_info_text;    /* FAILURE: the CA's failInfoText (raw, owned:
				  * escape it before showing it) */
	char *key_uri;           /* the request key's pkcs11: URI (owned; NULL
				  * for a file key); may carry what the user
				  * gave: show it through keyload_display() */
	char *cert_uri;          /* SUCCESS: the certificate object's URI */
	int sent;                /* a request may have reached the CA */
	int finished_earlier;    /* SUCCESS by finishing an earlier run's
				  * enrollment: no request sent (cert may be
				  * NULL when it was already complete).
				  * 1: an earlier run had finished it all (the
				  * certificate is in -l, the key under its
				  * label); 2: this run stored and committed
				  * what an earlier run got */
	int cert_written;        /* the certificate went to disk (-l or
				  * store_disk), whatever came after */
	/* the request key (set once it was obtained) */
	int key_in_token;        /* a token key (else a file key) */
	int key_generated;       /* generated in this run and still in the
				  * token (0 once the engine removed it) */
	int key_new;             /* a --new-key key: generated in this run,
				  * resumed (-R) or reused from a run that
				  * stopped before its request was answered */
	int key_resumed;         /* --new-key -R: an earlier pending run's key */
	int key_replace;         /* --overwrite: its label's old pair goes at
				  * the commit */
};

/*
 * Run one enrollment or renewal (renewal: o->s.sign_key and
 * sign_cert_file) as enroll does: resume (o->s.resume), staged keys,
 * finishing an earlier run, polling. *out is cleared on entry and always
 * filled; free with engine_outcome_clear(). Returns 0 when an outcome was
 * reached (SUCCESS, PENDING, FAILURE) and the negative SA_E* code of
 * out->err otherwise.
 */
int engine_enroll(const struct engine_req *req, struct engine_outcome *out);

void engine_outcome_clear(struct engine_outcome *out);

#endif

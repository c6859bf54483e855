/*
 * daemon.h - the agent's commands: run (the daemon), check (one pass) and
 * status, with the pure parts of their scheduling (what is due, backoff,
 * jitter, the text formats) exposed for unit tests.
 *
 * The scheduling process never touches a token or a key: it reads
 * profiles, state files and StoreDir/latest.crt, decides, and runs each
 * enrollment or renewal as a child (job_run). Only main() calls exit():
 * daemon_main() returns the exit code.
 */
#ifndef DAEMON_H
#define DAEMON_H

#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "job.h"
#include "profile.h"
#include "state.h"

/* ---- daemon.c: the commands ---- */

/* 1 when name is one of the daemon's commands (run, check, status). */
int daemon_is_command(const char *name);

/*
 * scep-agent run|check|status [OPTIONS] PROFILE...: argv[1] the command.
 * Returns the exit code: check 0 all fine, 3 some pending (none failed),
 * 1 any failed; status 0 all ok, 1 any failed or expiring; run 0 after
 * SIGTERM/SIGINT; 4 for a usage error; check and status 128+N when
 * stopped by signal N.
 */
int daemon_main(int argc, char **argv);

/* Options of the three commands. */
struct daemon_opts {
	int force;          /* check --force: renew now */
	int json;           /* status --json */
	long warn_s;        /* status --warn (default 7d) */
	int use_syslog;     /* run --syslog */
	char *const *args;  /* the profiles (files or directories) */
	int nargs;
};

/* ---- due.c: what is due for one profile (pure) ---- */

/* What the certificate on disk (StoreDir/latest.crt) says. */
struct due_cert {
	int present;
	char *serial;            /* lowercase hex (owned) */
	time_t not_before, not_after;
	int mismatch;            /* Subject or KeyType no longer match */
	const char *mismatch_why; /* static text */
};

/* Fill c from cert (NULL: no certificate) against the profile. */
int due_cert_read(const struct profile *p, X509 *cert, struct due_cert *c);
void due_cert_clear(struct due_cert *c);

enum due_what {
	DUE_NOTHING = 0,  /* nothing now: look again at .when */
	DUE_JOB,          /* run a job now: .kind, .resume */
	DUE_BACKOFF,      /* failed; no attempt before .when */
	DUE_POLL_WAIT,    /* pending; next poll at .when */
	DUE_GIVE_UP,      /* pending past MaxPollTime: abandon the txn */
};

struct due {
	enum due_what what;
	enum job_kind kind;
	int resume;
	time_t when;      /* DUE_NOTHING/BACKOFF/POLL_WAIT: next look */
	time_t renew_at;  /* the renewal point (0 without certificate) */
	int new_renew_at; /* renew_at differs from the state's (store it) */
	const char *why;  /* static text for the log */
};

/*
 * Decide for profile p with state st and certificate c at now; force:
 * renew now whatever the schedule (backoff included). The renewal point
 * is computed each time from the profile's RenewAt (a changed RenewAt
 * applies to the current certificate) with the certificate's own jitter
 * (due_jitter_seed() of its serial): the state's renew_at is a record of
 * it, not an input.
 */
void due_decide(const struct profile *p, const struct state *st,
		const struct due_cert *c, time_t now, int force, struct due *d);

/*
 * The jitter's random number for the certificate of serial (lowercase
 * hex): a hash of it, so one certificate's jitter stays the same from run
 * to run while a fleet's certificates spread out.
 */
unsigned long due_jitter_seed(const char *serial);

/*
 * The renewal point of a certificate valid nb..na: RenewAt
 * (profile_renew_point()), minus a jitter of rnd % (J + 1) seconds where
 * J is profile_jitter() (RenewJitter; unset: 1% of the lifetime, at most
 * 1 h). Never before nb, never after na.
 */
time_t due_renew_point(const struct profile *p, time_t nb, time_t na,
		       unsigned long rnd);

/* Backoff after `failures` consecutive failures: min*2^(failures-1), capped. */
long due_backoff(long min_s, long max_s, int failures);

/* ---- dtext.c: text formats (pure) ---- */

/* t as RFC 3339 UTC ("2026-12-01T05:31:00Z") into buf (>= 21 bytes). */
const char *dtext_rfc3339(time_t t, char *buf, size_t size);

/*
 * Parse a duration: bare seconds, or a number with s, m, h, d or w.
 * SA_EUSAGE on anything else (negative, overflow, trailing text).
 */
int dtext_duration(const char *s, long *out);

/*
 * s as a JSON string, quotes included, appended to the growing buffer
 * *buf (length *len, capacity *cap): quotes, backslashes and control
 * characters escaped, invalid UTF-8 replaced by U+FFFD; NULL gives null.
 * SA_ENOMEM.
 */
int dtext_json_str(char **buf, size_t *len, size_t *cap, const char *s);

/* Append printf-formatted text to the growing buffer. SA_ENOMEM. */
int dtext_append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * A pkcs11: URI without its PIN attributes (pin-value, pin-source).
 * Caller frees; NULL on NULL or no memory.
 */
char *dtext_uri_nopin(const char *uri);

/* ---- pass.c: one profile's turn ---- */

enum pass_result {
	PASS_OK = 0,   /* nothing due, or the job succeeded */
	PASS_PENDING,  /* waiting for the CA's approval */
	PASS_FAILED,   /* failed now, or waiting out a backoff */
	PASS_SKIPPED,  /* another process holds the profile's lock */
};

/*
 * One turn of profile p: take its lock (waiting up to lock_wait_ms),
 * read its state and StoreDir/latest.crt, decide, run the job if one is
 * due and record its outcome (state, store_prune, hooks). *next gets when
 * the profile wants looking at again. Never stops on the profile's own
 * failure: every failure is a result, logged.
 */
enum pass_result pass_profile(const struct profile *p, int force,
			      int lock_wait_ms, time_t *next);

/* ---- sched.c: check and run ---- */

/* One pass over the profiles (check). Returns the exit code. */
int sched_check(const struct daemon_opts *d);

/* The daemon (run). Returns the exit code. */
int sched_run(const struct daemon_opts *d);

/* ---- status.c ---- */

/* status [--json] [--warn]. Returns the exit code. */
int status_main(const struct daemon_opts *d);

/*
 * Write the Prometheus textfile (temp file + rename) for the profiles of
 * list that name path as MetricsFile, from their state files.
 */
int status_metrics(const char *path, struct profile **list, int n);

#endif

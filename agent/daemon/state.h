/*
 * state.h - a profile's state file (StateDir/NAME.state) and its lock
 * (StateDir/NAME.lock). The file is "key=value" lines, written to a temp
 * file, fsync'ed, renamed over the old one, the directory fsync'ed: after
 * a crash it is the old state or the new one, never a mix.
 */
#ifndef STATE_H
#define STATE_H

#include <stddef.h>
#include <time.h>

enum state_phase {
	STATE_NONE = 0,   /* never enrolled */
	STATE_OK,         /* current pair complete */
	STATE_ENROLLING,  /* an enrollment in progress (no pair yet) */
	STATE_RENEWING,   /* a renewal in progress (old pair still current) */
	STATE_FAILED,     /* the last attempt failed; backoff until next_try */
};

struct state {
	enum state_phase phase;
	int pending;            /* the transaction got PENDING */
	char *transaction_id;   /* the transaction in progress, or NULL */
	char *txn_key_uri;      /* the key of that transaction */
	char *txn_kind;         /* "enroll", "renew", "reenroll" */
	time_t txn_started;     /* when it began (MaxPollTime counts from it) */
	char *serial;           /* current certificate, lowercase hex */
	char *subject;
	time_t not_before;      /* of the current certificate (RenewAt %) */
	time_t not_after;
	char *key_uri;          /* current key, no PIN */
	time_t next_check;      /* when the scheduler looks again */
	time_t last_success;    /* 0: never */
	time_t last_attempt;
	char *last_error;       /* one line, or NULL */
	int failures;           /* consecutive failures (backoff exponent) */
	time_t next_try;        /* backoff: no attempt before this */
	char *ca_fingerprint;   /* the anchor: sha256 hex (TOFU or rollover) */
	char *next_ca_fingerprint; /* a kept rollover CA, or NULL */
	time_t ca_not_after;    /* the anchor's end (rollover), 0: unknown */
	time_t renew_at;        /* the renewal point chosen (jitter included) */
};

/*
 * StateDir/NAME.state into st (zeroed first; no file: STATE_NONE, 0).
 * Unknown keys are skipped (a newer version's); a malformed line or value
 * is SA_EIO naming the file and line (st cleared): never guessed.
 */
int state_load(const char *state_dir, const char *name, struct state *st);

/* Write st atomically (temp, fsync, rename, fsync of the directory). */
int state_save(const char *state_dir, const char *name, const struct state *st);

void state_clear(struct state *st);

/* "none", "ok", "enrolling", "renewing", "failed". Static string. */
const char *state_phase_name(enum state_phase ph);

/*
 * Write data to path atomically: a temp file in the same directory
 * (mode), fsync'ed, renamed over path, the directory fsync'ed. SA_EIO
 * naming path. Also used for StoreDir and the metrics file.
 */
int state_write_atomic(const char *path, const void *data, size_t len,
		       unsigned mode);

/* fsync the directory dir (after a rename or unlink in it). SA_EIO. */
int state_sync_dir(const char *dir);

/* mkdir -p dir with mode for what it makes. SA_EIO naming the part. */
int state_mkdirs(const char *dir, unsigned mode);

/* Set a string field (copied; NULL clears). SA_ENOMEM. */
int state_set(char **field, const char *value);

/*
 * Take the profile's lock (StateDir/NAME.lock, flock), waiting up to
 * wait_ms. Returns the lock's fd (>= 0; close it to release, children
 * inherit it), SA_EEXIST when another process holds it past the wait,
 * SA_EIO otherwise. StateDir is made (0700) when missing.
 */
int state_lock(const char *state_dir, const char *name, int wait_ms);

#endif

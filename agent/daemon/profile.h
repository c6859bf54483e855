/*
 * profile.h - one agent profile: one certificate, one file
 * (NAME.conf, keys in [scep_agent] or before any section; [sscep_*]
 * sections are not read), the daemon's keys on top of today's.
 */
#ifndef PROFILE_H
#define PROFILE_H

#include <time.h>

#include "agent.h"

#define PROFILE_STATE_DIR "/var/lib/scep-agent"

struct profile {
	char *name;           /* file name without .conf */
	char *path;           /* the file */
	struct agent_opts o;  /* effective settings as for enroll (op
			       * OP_ENROLL), templates expanded, CACertFile =
			       * StoreDir/ca.crt; o.s.new_key the key URI */
	char *store_dir;      /* StoreDir (required) */
	char *state_dir;      /* StateDir (default PROFILE_STATE_DIR) */
	int renew_pct;        /* RenewAt as a percentage (1..99), or 0 */
	long renew_before;    /* RenewAt as seconds before expiry, or -1 */
	char *hook_success;   /* HookSuccess, or NULL */
	char *hook_failure;   /* HookFailure, or NULL */
	long hook_timeout;    /* HookTimeout (default 60) */
	int keep_old;         /* KeepOld (default 1) */
	int tofu;             /* TrustOnFirstUse */
	char *adopt_cert;     /* AdoptCert, or NULL */
	long jitter;          /* RenewJitter seconds, or -1 (default):
			       * 1% of the lifetime, up to 1 h; see
			       * profile_jitter() */
	long backoff_min;     /* RetryMin (default 60) */
	long backoff_max;     /* RetryMax (default 86400) */
	char *metrics_file;   /* MetricsFile (Prometheus textfile), or NULL */
	char *serial_file;    /* SerialFile, or NULL */
	long clock_wait;      /* ClockWait (default 300): longest wait for
			       * a plausible clock at start */
	long network_wait;    /* NetworkWait (default 120): longest wait
			       * for the network at start */
};

/*
 * Load one profile file. Errors (SA_EUSAGE, SA_EIO) name the file, line
 * and key: a digest name as FingerPrint without TrustOnFirstUse, both
 * StoreDir and LocalCertFile/CACertFile, no URL, no NewKey (a pkcs11: URI
 * with object=), a template that cannot be filled ({device_serial}
 * without a readable SerialFile, {mac:IFACE} of no interface).
 * *out: profile_free().
 */
int profile_load(const char *path, struct profile **out);
void profile_free(struct profile *p);

/*
 * The profiles named by args: a file, or a directory whose *.conf files
 * (sorted by name) are the profiles. A profile that does not load is
 * reported with sa_err() and counted in *bad; the others load. A second
 * profile of a name already loaded is refused the same way (reported,
 * counted in *bad, the first kept). A missing argument is reported and
 * counted. Returns 0, or SA_ENOMEM (nothing loaded). *out:
 * profile_list_free().
 */
int profile_load_all(char *const *args, int nargs, struct profile ***out,
		     int *n, int *bad);
void profile_list_free(struct profile **list, int n);

/*
 * Fill {hostname}, {device_serial} (first line of serial_file, trimmed),
 * {mac:IFACE} (aa:bb:cc:dd:ee:ff) in tmpl. SA_EUSAGE for an unknown or
 * unfillable placeholder. *out: caller frees.
 */
int profile_template(const char *tmpl, const char *serial_file, char **out);

/* The jitter for a certificate of lifetime seconds (RenewJitter, or 1%
 * of the lifetime up to 1 h when unset). */
long profile_jitter(const struct profile *p, long lifetime);

/*
 * The renewal point of a certificate valid from not_before to not_after
 * (RenewAt, without jitter): not_before + pct% of the lifetime, or
 * not_after - renew_before (not before not_before).
 */
time_t profile_renew_point(const struct profile *p, time_t not_before,
			   time_t not_after);

#endif

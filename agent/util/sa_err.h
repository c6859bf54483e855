/*
 * sa_err.h - the one error enum of scep-agent and the "last error" message.
 *
 * Every layer returns 0 or a negative SA_E* code. The layer that fails
 * records one sentence (what failed, with what, what to check) with
 * sa_fail(); OpenSSL's error queue is drained into that sentence.
 * Only agent/main.c turns codes into exit codes (see sa_exit_code()).
 */
#ifndef SA_ERR_H
#define SA_ERR_H

#include <stddef.h>

enum sa_err {
	SA_OK = 0,
	SA_EINTERNAL = -1,  /* bug or unexpected library failure */
	SA_ENOMEM = -2,     /* out of memory */
	SA_EUSAGE = -3,     /* bad option, bad config value, missing argument */
	SA_EIO = -4,        /* local file could not be read or written */
	SA_ENET = -5,       /* connect, DNS, timeout, TLS, HTTP status */
	SA_EREPLY = -6,     /* reply malformed, bad signature, nonce/transID mismatch */
	SA_ECAPIN = -7,     /* CA certificate does not match the pinned fingerprint */
	SA_ECRYPTO = -8,    /* local OpenSSL operation failed (sign, encrypt, parse) */
	SA_EKEY = -9,       /* key or token problem: missing object, module, keygen */
	SA_EPIN = -10,      /* wrong PIN, PIN locked, no PIN available */
	SA_ENOTFOUND = -11, /* requested object/token not found */
	SA_EEXIST = -12,    /* object exists and overwrite was not requested */
	SA_EINTR = -13,     /* stopped by SIGINT/SIGTERM/SIGHUP (exit 128+N) */
};

/* Exit codes of the program (documented in scep-agent(1)). */
enum sa_exit {
	SA_EXIT_OK = 0,
	SA_EXIT_ERROR = 1,   /* internal or unexpected error */
	SA_EXIT_FAILURE = 2, /* the CA replied FAILURE (request refused) */
	SA_EXIT_PENDING = 3, /* the CA replied PENDING; resume with -R */
	SA_EXIT_USAGE = 4,   /* bad command line or configuration */
	SA_EXIT_NET = 5,     /* could not reach the server / HTTP error */
	SA_EXIT_REPLY = 6,   /* reply not acceptable (signature, nonce, pin) */
	SA_EXIT_KEY = 7,     /* key or token problem */
	SA_EXIT_PIN = 8,     /* wrong or locked PIN */
	SA_EXIT_IO = 9,      /* local file could not be read or written */
	SA_EXIT_TOKEN_TIMEOUT = 10, /* a token did not answer in time (main.c's
				     * handler of p11_wait_set(), not a code) */
};

/*
 * Record the message for the current failure and return code.
 * If OpenSSL's error queue is not empty, its entries are appended
 * (": reason; reason") and the queue is cleared.  printf-checked.
 */
int sa_fail(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Like sa_fail() but leaves OpenSSL's error queue alone (and clears it). */
int sa_fail_noossl(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Wrap the recorded message in place (no allocation): sa_fail_prefix()
 * puts the formatted text in front of it, sa_fail_suffix() after it (the
 * text carries its own separator: "%s: " in front, "; ..." after). With
 * no message recorded, sa_strerror(code) is the message wrapped. The code
 * becomes code, OpenSSL's error queue is cleared (as sa_fail_noossl()),
 * and the result is cut at SA_ERRMSG_MAX - 1 bytes (the end of the
 * original message goes first with a prefix). Returns code.
 */
int sa_fail_prefix(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int sa_fail_suffix(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * One operation's error as a value: its code and its message, kept by
 * whoever ran the operation (an engine outcome, a daemon job's record)
 * so the next operation's failure cannot overwrite it.
 */
#define SA_ERRMSG_MAX 2048
struct sa_error {
	int code;                 /* SA_E*, 0 for none */
	char msg[SA_ERRMSG_MAX];  /* "" for none */
};

/*
 * Move the recorded message (sa_errmsg(), or sa_strerror(code) when none)
 * and code into e, and forget it (sa_err_clear()). Returns code.
 */
int sa_error_take(struct sa_error *e, int code);

/* Record e as the current failure again (for main's report). Returns e->code. */
int sa_error_raise(const struct sa_error *e);

/* The message recorded by the last sa_fail(); "" if none. Borrowed. */
const char *sa_errmsg(void);

/* Forget the recorded message (and OpenSSL's error queue). */
void sa_err_clear(void);

/* Short name of a code ("network error", ...). Static string. */
const char *sa_strerror(int code);

/* Exit code for an error code (0 -> SA_EXIT_OK). */
int sa_exit_code(int code);

#endif

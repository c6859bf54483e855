/*
 * sa_intr.h - stop requests. SIGINT, SIGTERM and SIGHUP do not kill
 * scep-agent at once: they set a flag that every blocking wait checks (the
 * poll wait between CertPolls, an HTTP transfer, the connectivity wait of
 * -W), so that the operation returns and tokens are logged out and
 * finalized on the way out (tpm2-pkcs11 leaks TPM handles otherwise).
 * A second stop signal (any of the three) kills as usual. A signal that was ignored when the
 * program started (nohup) stays ignored.
 */
#ifndef SA_INTR_H
#define SA_INTR_H

/* Install the handlers (main() does this once, before any work). */
void sa_intr_install(void);

/* The number of the signal that asked us to stop, or 0. */
int sa_intr_caught(void);

/*
 * Sleep for SECONDS unless a stop is requested; returns 0 after the full
 * sleep, else the seconds that were left (at least 1). A signal that came
 * before the call, or that arrives between the check and the sleep, is not
 * lost: the check and the wait are one atomic step (ppoll with the stop
 * signals unblocked only inside it).
 */
unsigned sa_intr_sleep(unsigned seconds);

/*
 * Wait until fd is readable (or at end of file, or in error): 0; or until
 * a stop is requested: 1. Race-free like sa_intr_sleep(): a prompt that
 * is stopped just before it starts to read is not left waiting.
 */
int sa_intr_wait_readable(int fd);

/* "SIGTERM", "SIGINT", ... for messages. Static string. */
const char *sa_intr_name(int sig);

#endif

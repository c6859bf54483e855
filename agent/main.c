/*
 * main.c - scep-agent's entry point: the only place that turns error codes
 * into exit codes and the only place that calls exit().
 */
#include "agent.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "daemon.h"
#include "station.h"
#include "sa_err.h"
#include "sa_intr.h"
#include "sa_log.h"
#include "tpm.h"

/*
 * No core dumps: a file key, a decrypted envelope or a PIN in memory must
 * not reach the disk. Not dumpable also keeps other processes of the same
 * user from attaching a debugger or reading our memory through /proc.
 */
static void no_core_dumps(void)
{
	struct rlimit rl = { 0, 0 };

	if (setrlimit(RLIMIT_CORE, &rl) != 0 ||
	    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		sa_warn("cannot disable core dumps: %s", strerror(errno));
}

/*
 * A token call ran past its bound (p11_wait_set()). Called on the
 * watchdog thread while the call still hangs on the main thread, so no
 * exit(): atexit handlers and module destructors could wait on that very
 * call. stdout is flushed if no one holds it (result lines already
 * printed, e.g. a key's URI), the message goes straight to stderr (its
 * FILE lock may be held by the hung thread), then _exit(10).
 */
static void token_timeout(const char *msg)
{
	char line[2300];
	int n;

	if (ftrylockfile(stdout) == 0) {
		fflush_unlocked(stdout);
		funlockfile(stdout);
	}
	n = snprintf(line, sizeof(line), "%s: %s\n", agent_progname, msg);
	if (n > 0) {
		size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;

		if (write(STDERR_FILENO, line, len) < 0)
			n = -1; /* nothing left to tell */
	}
	_exit(SA_EXIT_TOKEN_TIMEOUT);
}

static int run(const struct agent_opts *o, int *result)
{
	switch (o->op) {
	case OP_GETCAPS: return op_getcaps(o, result);
	case OP_GETCA: return op_getca(o, result);
	case OP_GETNEXTCA: return op_getnextca(o, result);
	case OP_ENROLL: return op_enroll(o, result);
	case OP_GETCERT: return op_getcert(o, result);
	case OP_GETCRL: return op_getcrl(o, result);
	case OP_MKREQUEST: return op_mkrequest(o, result);
	case OP_LIST_TOKENS: return op_list_tokens(o, result);
	case OP_LIST_OBJECTS: return op_list_objects(o, result);
	case OP_INIT_TOKEN: return op_init_token(o, result);
	case OP_NONE: break;
	}
	return sa_fail_noossl(SA_EUSAGE, "no operation");
}

/*
 * A token call failed on the way (a card pulled out, a dead reader): the
 * layer that called OpenSSL words its own failure ("cannot sign the
 * request", "cannot decrypt the reply", "no key matches"), which would
 * blame the key, the CA or the object. Name the token's failure and exit
 * as a token problem (7).
 */
static void token_blame(int rc, int *result)
{
	const char *f = p11_fault();

	if (f == NULL || (rc != SA_ECRYPTO && rc != SA_EREPLY &&
			  rc != SA_EINTERNAL && rc != SA_ENOTFOUND &&
			  rc != SA_EKEY))
		return;
	if (strstr(sa_errmsg(), f) == NULL)
		sa_err("the token failed on the way: %s; check the token (card "
		       "inserted, reader connected) and run the same command "
		       "again", f);
	*result = SA_EXIT_KEY;
}

int main(int argc, char **argv)
{
	struct agent_opts o;
	int rc, help = 0, result = SA_EXIT_OK;

	no_core_dumps();
	sa_log_init(agent_progname, SA_LOG_INFO, 0);
	sa_intr_install(); /* SIGINT, SIGTERM, SIGHUP end waits; see sa_intr.h */
	if (argc >= 2 && daemon_is_command(argv[1]))
		exit(daemon_main(argc, argv)); /* run, check, status */
	if (argc >= 2 && station_is_command(argv[1]))
		exit(station_main(argc, argv)); /* provision */
	rc = agent_opts_parse(argc, argv, &o, &help);
	if (rc == 0 && !help) {
		/* every token call bounded (--token-timeout, TokenTimeout) */
		p11_wait_set(o.token_call_s * 1000UL, o.token_keygen_s * 1000UL,
			     token_timeout);
		rc = scep_crypto_init();
		if (rc == 0)
			rc = run(&o, &result);
		if (o.tpm)
			tpm_finish(); /* what the TPM module left loaded */
	}
	if (rc < 0) {
		sa_err("%s", *sa_errmsg() ? sa_errmsg() : sa_strerror(rc));
		result = sa_exit_code(rc);
		token_blame(rc, &result);
		if (rc == SA_EINTR && sa_intr_caught())
			result = 128 + sa_intr_caught(); /* as a shell reports it */
	}
	agent_opts_free(&o);
	exit(result);
}

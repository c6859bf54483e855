/*
 * Unit tests for pkcs11/p11_wait.c: which calls get which bound, what the
 * watchdog says, and when nothing is bounded. A fake module whose calls
 * sleep as long as a case says; each case runs in a child of its own
 * (the watchdog ends the process that hangs, and no thread is forked),
 * with bounds of 200 ms per call and 600 ms for key generation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "p11_int.h"
#include "sa_log.h"
#include "tap.h"

#define SHORT_MS 200UL
#define LONG_MS 600UL

static unsigned sleep_ms; /* how long every fake call takes */
static int msg_fd = -1;   /* the child's end of the message pipe */

static void nap(void)
{
	struct timespec ts = { (time_t)(sleep_ms / 1000),
			       (long)(sleep_ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static CK_RV f_sign(CK_SESSION_HANDLE s, CK_BYTE_PTR d, CK_ULONG n,
		    CK_BYTE_PTR sig, CK_ULONG_PTR sn)
{
	(void)s; (void)d; (void)n; (void)sig; (void)sn;
	nap();
	return CKR_OK;
}

static CK_RV f_login(CK_SESSION_HANDLE s, CK_USER_TYPE u, CK_UTF8CHAR_PTR p,
		     CK_ULONG n)
{
	(void)s; (void)u; (void)p; (void)n;
	nap();
	return CKR_OK;
}

static CK_RV f_genpair(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m,
		       CK_ATTRIBUTE_PTR a, CK_ULONG an, CK_ATTRIBUTE_PTR b,
		       CK_ULONG bn, CK_OBJECT_HANDLE_PTR pub,
		       CK_OBJECT_HANDLE_PTR priv)
{
	(void)s; (void)m; (void)a; (void)an; (void)b; (void)bn;
	nap();
	*pub = 1;
	*priv = 2;
	return CKR_OK;
}

static CK_RV f_event(CK_FLAGS f, CK_SLOT_ID_PTR slot, CK_VOID_PTR r)
{
	(void)f; (void)r;
	nap();
	*slot = 0;
	return CKR_OK;
}

/* C_Sign, C_Login, C_GenerateKeyPair, C_WaitForSlotEvent; the rest NULL */
static CK_FUNCTION_LIST fake = {
	.version = { 2, 40 },
	.C_Sign = f_sign,
	.C_Login = f_login,
	.C_GenerateKeyPair = f_genpair,
	.C_WaitForSlotEvent = f_event,
};

static void on_timeout(const char *msg)
{
	if (write(msg_fd, msg, strlen(msg)) < 0)
		_exit(99);
	_exit(10);
}

enum call { SIGN, LOGIN_PIN, LOGIN_PAD, KEYGEN, EVENT_BLOCK, EVENT_POLL,
	    DIGEST };

/*
 * Run call in a child on a fake call of ms milliseconds under the bounds
 * (handler h). *status: the child's exit code (10: the watchdog ended
 * it); msg: what the handler was given; returns the child's wall time.
 */
static long run_case(enum call c, unsigned ms, unsigned long call_ms,
		     unsigned long keygen_ms, p11_wait_handler *h, int *status,
		     char *msg, size_t msgsz)
{
	struct timespec t0, t1;
	int fds[2], st = 0;
	ssize_t n;
	pid_t pid;

	if (pipe(fds) != 0)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid = fork();
	if (pid == 0) {
		CK_FUNCTION_LIST *fl;
		CK_OBJECT_HANDLE a, b;
		CK_SLOT_ID slot;
		CK_ULONG len = 0;
		CK_RV rv = CKR_GENERAL_ERROR;

		close(fds[0]);
		msg_fd = fds[1];
		sleep_ms = ms;
		p11_wait_set(call_ms, keygen_ms, h);
		fl = p11_wait_wrap(&fake, "/lib/fake-module.so");
		switch (c) {
		case SIGN: rv = fl->C_Sign(1, NULL, 0, NULL, &len); break;
		case LOGIN_PIN:
			rv = fl->C_Login(1, CKU_USER, (CK_UTF8CHAR_PTR)"x", 1);
			break;
		case LOGIN_PAD: rv = fl->C_Login(1, CKU_USER, NULL, 0); break;
		case KEYGEN:
			rv = fl->C_GenerateKeyPair(1, NULL, NULL, 0, NULL, 0, &a, &b);
			break;
		case EVENT_BLOCK: rv = fl->C_WaitForSlotEvent(0, &slot, NULL); break;
		case EVENT_POLL:
			rv = fl->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, NULL);
			break;
		case DIGEST: rv = fl->C_Digest(1, NULL, 0, NULL, &len); break;
		}
		_exit(rv == CKR_OK ? 0 : rv == CKR_FUNCTION_NOT_SUPPORTED ? 3 : 1);
	}
	close(fds[1]);
	n = read(fds[0], msg, msgsz - 1);
	msg[n > 0 ? n : 0] = '\0';
	close(fds[0]);
	waitpid(pid, &st, 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return (long)(t1.tv_sec - t0.tv_sec) * 1000L +
	       (t1.tv_nsec - t0.tv_nsec) / 1000000L;
}

static const char *const names[] = {
	"C_Sign", "C_Login with a PIN", "C_Login on the PIN pad",
	"C_GenerateKeyPair", "a blocking C_WaitForSlotEvent",
	"C_WaitForSlotEvent with CKF_DONT_BLOCK", "C_Digest (not in the module)",
};

/* call taking ms: answered (exit 0) */
static void answered(enum call c, unsigned ms)
{
	char msg[4096];
	int st;

	run_case(c, ms, SHORT_MS, LONG_MS, on_timeout, &st, msg, sizeof(msg));
	is_int(st, 0, "%s taking %u ms: answered", names[c], ms);
	is_str(msg, "", "no message");
}

/* call taking ms: ended by the watchdog after about bound ms */
static void ended(enum call c, unsigned ms, unsigned long bound,
		  const char *func)
{
	char msg[4096], want[128];
	long took;
	int st;

	took = run_case(c, ms, SHORT_MS, LONG_MS, on_timeout, &st, msg,
			sizeof(msg));
	is_int(st, 10, "%s taking %u ms: ended by the watchdog", names[c], ms);
	ok(took >= (long)bound && took < (long)ms,
	   "after %ld ms (bound %lu, the call %u)", took, bound, ms);
	snprintf(want, sizeof(want), "did not answer %s within %lu.%03lu s",
		 func, bound / 1000, bound % 1000);
	ok(strstr(msg, want) != NULL, "names the call and the bound: %s", msg);
	ok(strstr(msg, "/lib/fake-module.so") != NULL, "names the module");
	ok(strstr(msg, "--token-timeout") != NULL, "names the option");
}

int main(void)
{
	CK_FUNCTION_LIST *a, *b, *g = NULL;
	char msg[4096];
	int st;

	sa_log_init("test_p11_wait", SA_LOG_ERR, 0);
	answered(SIGN, 20);
	ended(SIGN, 3000, SHORT_MS, "C_Sign");
	ended(LOGIN_PIN, 3000, SHORT_MS, "C_Login");
	/* a PIN typed on the reader's pad waits for a person: the long bound */
	answered(LOGIN_PAD, 300);
	ended(LOGIN_PAD, 3000, LONG_MS, "C_Login");
	answered(KEYGEN, 300);
	ended(KEYGEN, 3000, LONG_MS, "C_GenerateKeyPair");
	/* waiting for a card is not bounded; polling for one is */
	answered(EVENT_BLOCK, 300);
	ended(EVENT_POLL, 3000, SHORT_MS, "C_WaitForSlotEvent");

	/* 0: no bound of that kind */
	run_case(SIGN, 400, 0, LONG_MS, on_timeout, &st, msg, sizeof(msg));
	is_int(st, 0, "per-call bound 0: C_Sign of 400 ms answered");
	run_case(KEYGEN, 400, SHORT_MS, 0, on_timeout, &st, msg, sizeof(msg));
	is_int(st, 0, "key generation bound 0: C_GenerateKeyPair of 400 ms answered");
	/* no handler (the library's default): nothing bounded */
	run_case(SIGN, 400, SHORT_MS, LONG_MS, NULL, &st, msg, sizeof(msg));
	is_int(st, 0, "no handler: C_Sign of 400 ms answered");
	/* a function the module does not have */
	run_case(DIGEST, 0, SHORT_MS, LONG_MS, on_timeout, &st, msg, sizeof(msg));
	is_int(st, 3, "a function the module lacks: CKR_FUNCTION_NOT_SUPPORTED");

	/* the same module again, or our own list: the same wrapped list */
	a = p11_wait_wrap(&fake, "/lib/fake-module.so");
	b = p11_wait_wrap(&fake, "/lib/fake-module.so");
	ok(a != &fake && a == b, "the same module is wrapped once");
	ok(p11_wait_wrap(a, "x") == a, "a wrapped list is not wrapped again");
	ok(a->C_GetFunctionList(&g) == CKR_OK && g == a,
	   "C_GetFunctionList of the wrapped list gives the wrapped list");
	ok(a->version.major == 2 && a->version.minor == 40, "version copied");
	return tap_done();
}

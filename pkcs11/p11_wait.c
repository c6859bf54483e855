/*
 * p11_wait.c - bounded waits on a token: every PKCS#11 call through a
 * module's function list has a deadline (see p11_wait_wrap() in p11.h).
 *
 * A PKCS#11 call cannot be cancelled, so the bound is a watchdog: each
 * wrapper puts a record of its call (function, module, deadline) into a
 * list, forwards to the real module, and takes the record out again. A
 * thread of our own sleeps until the earliest deadline in the list; when
 * one passes with its call still in the list, it formats one sentence and
 * hands it to the handler of p11_wait_set(), which ends the process
 * (main.c: exit code 10). A thread rather than a timer signal (SIGALRM,
 * timer_create): the handler may format and print freely outside signal
 * context, a module that blocks or uses SIGALRM itself is not disturbed,
 * and nothing in the calling thread is interrupted (no EINTR inside the
 * module). The watchdog thread blocks every signal, so stop signals still
 * reach the thread that waits on the token.
 *
 * Cost per call: one mutex round trip; the watchdog is woken only when a
 * call's deadline is earlier than the one it sleeps to, i.e. about once
 * per long bound, not per call.
 */
#include "p11_int.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sa_log.h"

/* How long a kind of call may take. */
enum wait_kind {
	W_SHORT = 0, /* every call but those below */
	W_LONG,      /* key generation, token initialisation, PIN pad */
	W_NONE,      /* a blocking C_WaitForSlotEvent: waits for a person */
};

/* A call in flight (on the caller's stack while it runs). */
struct wait_call {
	struct timespec deadline;
	const char *func;        /* "C_Sign" */
	unsigned inst;           /* which wrapped module */
	unsigned long bound_ms;
	struct wait_call *next;
};

/* One wrapped module: the real list and the path for messages. */
struct wait_inst {
	CK_FUNCTION_LIST *real;
	char path[512];
};

#define WAIT_INSTANCES 4

static struct wait_inst insts[WAIT_INSTANCES];
static unsigned n_insts;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static int wd_started;          /* the watchdog thread runs */
static int wd_idle;             /* it waits with no deadline */
static struct timespec wd_wake; /* else: when it wakes up */
static struct wait_call *calls; /* calls in flight */
static unsigned long short_ms, long_ms; /* 0: no bound */
static p11_wait_handler *handler;       /* NULL: no bound at all */

static int ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec ||
	       (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static void ts_add_ms(struct timespec *t, unsigned long ms)
{
	t->tv_sec += (time_t)(ms / 1000);
	t->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

/* "300 s", or "1.5 s" for bounds that are not whole seconds (tests). */
static void fmt_secs(char *buf, size_t n, unsigned long ms)
{
	if (ms % 1000 == 0)
		snprintf(buf, n, "%lu s", ms / 1000);
	else
		snprintf(buf, n, "%lu.%03lu s", ms / 1000, ms % 1000);
}

/* The one sentence for a call that ran out of time. Nothing secret in it:
 * the function's name, the module's path and the bounds. */
static void fire(const struct wait_call *c)
{
	static char msg[2048];
	char took[32], s_b[32], l_b[32];
	int keygen = strcmp(c->func, "C_GenerateKeyPair") == 0 ||
		     strcmp(c->func, "C_GenerateKey") == 0;

	fmt_secs(took, sizeof(took), c->bound_ms);
	if (short_ms)
		fmt_secs(s_b, sizeof(s_b), short_ms);
	else
		snprintf(s_b, sizeof(s_b), "none");
	if (long_ms)
		fmt_secs(l_b, sizeof(l_b), long_ms);
	else
		snprintf(l_b, sizeof(l_b), "none");
	snprintf(msg, sizeof(msg),
		 "the token did not answer %s within %s (PKCS#11 module %s); "
		 "ending the run, since a token call cannot be cancelled. "
		 "The token may still be working on it or be stuck, and %s "
		 "may be left half done in it%s. Make the token answer again "
		 "(reinsert the card, restart its reader or service), then run "
		 "the same command again: it starts from what the token and "
		 "the files hold (add -R if a request had reached the CA). "
		 "If the token is only slow, raise the bound with "
		 "--token-timeout SECONDS[,KEYGEN_SECONDS] (TokenTimeout; now "
		 "%s per call, %s for key generation)",
		 c->func, took, insts[c->inst].path,
		 keygen ? "the key generation" : "the operation",
		 keygen ? " (a key pair under the new label: the retry names "
			  "it and what to do)" : "",
		 s_b, l_b);
	p11_capture_restore(); /* the handler's words go to the real stderr */
	handler(msg);
	abort(); /* the handler must not return; never go on after this */
}

static void *watchdog(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	for (;;) {
		struct wait_call *c, *first = NULL;
		struct timespec now;

		for (c = calls; c != NULL; c = c->next)
			if (first == NULL || ts_before(&c->deadline, &first->deadline))
				first = c;
		if (first == NULL) {
			wd_idle = 1;
			pthread_cond_wait(&cv, &mu);
			wd_idle = 0;
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (!ts_before(&now, &first->deadline))
			fire(first); /* does not return */
		wd_wake = first->deadline;
		pthread_cond_timedwait(&cv, &mu, &wd_wake);
	}
	return NULL;
}

/* Start the watchdog (mu held). 0, or -1 if no thread can be made. */
static int watchdog_start(void)
{
	pthread_condattr_t ca;
	pthread_attr_t ta;
	pthread_t th;
	sigset_t all, old;
	int rc;

	if (wd_started)
		return 0;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_attr_init(&ta);
	pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
	/* signals go to the threads that do the work (stop requests) */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&th, &ta, watchdog, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&ta);
	if (rc != 0) {
		pthread_cond_destroy(&cv);
		return -1;
	}
	wd_started = 1;
	wd_idle = 0; /* until it says so: the first arm signals it anyway */
	return 0;
}

/* Put c (on the caller's stack) in the list with its deadline. */
static void arm(struct wait_call *c, unsigned inst, const char *func,
		enum wait_kind kind)
{
	unsigned long ms;

	c->func = func;
	c->inst = inst;
	c->next = NULL;
	c->bound_ms = 0;
	pthread_mutex_lock(&mu);
	ms = kind == W_SHORT ? short_ms : kind == W_LONG ? long_ms : 0;
	if (handler == NULL || ms == 0 || watchdog_start() < 0) {
		pthread_mutex_unlock(&mu); /* unbounded */
		return;
	}
	c->bound_ms = ms;
	clock_gettime(CLOCK_MONOTONIC, &c->deadline);
	ts_add_ms(&c->deadline, ms);
	c->next = calls;
	calls = c;
	/* wake the watchdog only if it would sleep past this deadline */
	if (wd_idle || ts_before(&c->deadline, &wd_wake)) {
		wd_idle = 0;
		wd_wake = c->deadline;
		pthread_cond_signal(&cv);
	}
	pthread_mutex_unlock(&mu);
}

static void disarm(struct wait_call *c)
{
	struct wait_call **pp;

	if (c->bound_ms == 0)
		return;
	pthread_mutex_lock(&mu);
	for (pp = &calls; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	pthread_mutex_unlock(&mu);
}

/*
 * Every function of the PKCS#11 v2.40 list after C_GetFunctionList, in
 * the order of CK_FUNCTION_LIST: X(name, kind, parameters, arguments).
 * kind is an expression over the parameters: C_Login without a PIN is a
 * PIN typed on the reader's pad (CKF_PROTECTED_AUTHENTICATION_PATH) and
 * waits for a person, so it gets the long bound; C_WaitForSlotEvent
 * without CKF_DONT_BLOCK waits for a card to be inserted: no bound.
 */
#define P11_WAIT_CALLS(X, K) \
X(K, C_Initialize, W_SHORT, (CK_VOID_PTR a), (a)) \
X(K, C_Finalize, W_SHORT, (CK_VOID_PTR a), (a)) \
X(K, C_GetInfo, W_SHORT, (CK_INFO_PTR a), (a)) \
X(K, C_GetSlotList, W_SHORT, (CK_BBOOL a, CK_SLOT_ID_PTR b, CK_ULONG_PTR c), \
  (a, b, c)) \
X(K, C_GetSlotInfo, W_SHORT, (CK_SLOT_ID a, CK_SLOT_INFO_PTR b), (a, b)) \
X(K, C_GetTokenInfo, W_SHORT, (CK_SLOT_ID a, CK_TOKEN_INFO_PTR b), (a, b)) \
X(K, C_GetMechanismList, W_SHORT, (CK_SLOT_ID a, CK_MECHANISM_TYPE_PTR b, \
  CK_ULONG_PTR c), (a, b, c)) \
X(K, C_GetMechanismInfo, W_SHORT, (CK_SLOT_ID a, CK_MECHANISM_TYPE b, \
  CK_MECHANISM_INFO_PTR c), (a, b, c)) \
X(K, C_InitToken, W_LONG, (CK_SLOT_ID a, CK_UTF8CHAR_PTR b, CK_ULONG c, \
  CK_UTF8CHAR_PTR d), (a, b, c, d)) \
X(K, C_InitPIN, W_SHORT, (CK_SESSION_HANDLE a, CK_UTF8CHAR_PTR b, CK_ULONG c), \
  (a, b, c)) \
X(K, C_SetPIN, W_SHORT, (CK_SESSION_HANDLE a, CK_UTF8CHAR_PTR b, CK_ULONG c, \
  CK_UTF8CHAR_PTR d, CK_ULONG e), (a, b, c, d, e)) \
X(K, C_OpenSession, W_SHORT, (CK_SLOT_ID a, CK_FLAGS b, CK_VOID_PTR c, \
  CK_NOTIFY d, CK_SESSION_HANDLE_PTR e), (a, b, c, d, e)) \
X(K, C_CloseSession, W_SHORT, (CK_SESSION_HANDLE a), (a)) \
X(K, C_CloseAllSessions, W_SHORT, (CK_SLOT_ID a), (a)) \
X(K, C_GetSessionInfo, W_SHORT, (CK_SESSION_HANDLE a, CK_SESSION_INFO_PTR b), \
  (a, b)) \
X(K, C_GetOperationState, W_SHORT, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, \
  CK_ULONG_PTR c), (a, b, c)) \
X(K, C_SetOperationState, W_SHORT, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, \
  CK_ULONG c, CK_OBJECT_HANDLE d, CK_OBJECT_HANDLE e), (a, b, c, d, e)) \
X(K, C_Login, c == NULL ? W_LONG : W_SHORT, (CK_SESSION_HANDLE a, \
  CK_USER_TYPE b, CK_UTF8CHAR_PTR c, CK_ULONG d), (a, b, c, d)) \
X(K, C_Logout, W_SHORT, (CK_SESSION_HANDLE a), (a)) \
X(K, C_CreateObject, W_SHORT, (CK_SESSION_HANDLE a, CK_ATTRIBUTE_PTR b, \
  CK_ULONG c, CK_OBJECT_HANDLE_PTR d), (a, b, c, d)) \
X(K, C_CopyObject, W_SHORT, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, \
  CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_OBJECT_HANDLE_PTR e), (a, b, c, d, e)) \
X(K, C_DestroyObject, W_SHORT, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b), \
  (a, b)) \
X(K, C_GetObjectSize, W_SHORT, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, \
  CK_ULONG_PTR c), (a, b, c)) \
X(K, C_GetAttributeValue, W_SHORT, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, \
  CK_ATTRIBUTE_PTR c, CK_ULONG d), (a, b, c, d)) \
X(K, C_SetAttributeValue, W_SHORT, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, \
  CK_ATTRIBUTE_PTR c, CK_ULONG d), (a, b, c, d)) \
X(K, C_FindObjectsInit, W_SHORT, (CK_SESSION_HANDLE a, CK_ATTRIBUTE_PTR b, \
  CK_ULONG c), (a, b, c)) \
X(K, C_FindObjects, W_SHORT, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE_PTR b, \
  CK_ULONG c, CK_ULONG_PTR d), (a, b, c, d)) \
X(K, C_FindObjectsFinal, W_SHORT, (CK_SESSION_HANDLE a), (a)) \
X(K, C_EncryptInit, W_SHORT, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, \
  CK_OBJECT_HANDLE c), (a, b, c)) \
X(K, C_Encrypt, W_SHORT, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, \
  CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
X(K, C_EncryptUpdate, W_SHORT, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, \
  CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
X(K, C_EncryptFinal, W_SHORT, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, \
  CK_ULONG_PTR c), (a, b, c)) \
X(K, C_DecryptInit, W_SHORT, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, \
  CK_OBJECT_HANDLE c), (a, b, c)) \
X(K, C_Decrypt, W_SHORT, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, \
  CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
X(K, C_DecryptUpdate, W_SHORT, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, \
  CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
X(K, C_DecryptFinal, W_SHORT, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, \
  CK_ULONG_PTR c), (a, b, c)) \
X(K, C_DigestInit, W_SHORT, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b), \
  (a, b)) \
X(K, C_Digest, W_SHORT, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, \
  CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
X(K, C_DigestUpdate, W_SHORT, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, \
  CK_ULONG c), (a, b, c)) \
X(K, C_DigestKey, W_SHORT, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b), (a, b)) \
X(K, C_DigestFinal, W_SHORT, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, \
  CK_ULONG_PTR c), (a, b, c)) \
X(K, C_SignInit, W_SHORT, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, \
  CK_OBJECT_HANDLE c), (a, b, c)) \
X(K, C_Sign, W_SHORT, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, \
  CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
X(K, C_SignUpdate, W_SHORT, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), \
  (a, b, c)) \
X(K, C_SignFinal, W_SHORT, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, \
  CK_ULONG_PTR c), (a, b, c)) \
X(K, C_SignRecoverInit, W_SHORT, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, \
  CK_OBJECT_HANDLE c), (a, b, c)) \
X(K, C_SignRecover, W_SHORT, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, \
  CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
X(K, C_VerifyInit, W_SHORT, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, \
  CK_OBJECT_HANDLE c), (a, b, c)) \
X(K, C_Verify, W_SHORT, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, \
  CK_BYTE_PTR d, CK_ULONG e), (a, b, c, d, e)) \
X(K, C_VerifyUpdate, W_SHORT, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, \
  CK_ULONG c), (a, b, c)) \
X(K, C_VerifyFinal, W_SHORT, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, \
  CK_ULONG c), (a, b, c)) \
X(K, C_VerifyRecoverInit, W_SHORT, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, \
  CK_OBJECT_HANDLE c), (a, b, c)) \
X(K, C_VerifyRecover, W_SHORT, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, \
  CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
X(K, C_DigestEncryptUpdate, W_SHORT, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, \
  CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
X(K, C_DecryptDigestUpdate, W_SHORT, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, \
  CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
X(K, C_SignEncryptUpdate, W_SHORT, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, \
  CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
X(K, C_DecryptVerifyUpdate, W_SHORT, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, \
  CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
X(K, C_GenerateKey, W_LONG, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, \
  CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_OBJECT_HANDLE_PTR e), (a, b, c, d, e)) \
X(K, C_GenerateKeyPair, W_LONG, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, \
  CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_ATTRIBUTE_PTR e, CK_ULONG f, \
  CK_OBJECT_HANDLE_PTR g, CK_OBJECT_HANDLE_PTR h), (a, b, c, d, e, f, g, h)) \
X(K, C_WrapKey, W_SHORT, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, \
  CK_OBJECT_HANDLE c, CK_OBJECT_HANDLE d, CK_BYTE_PTR e, CK_ULONG_PTR f), \
  (a, b, c, d, e, f)) \
X(K, C_UnwrapKey, W_SHORT, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, \
  CK_OBJECT_HANDLE c, CK_BYTE_PTR d, CK_ULONG e, CK_ATTRIBUTE_PTR f, \
  CK_ULONG g, CK_OBJECT_HANDLE_PTR h), (a, b, c, d, e, f, g, h)) \
X(K, C_DeriveKey, W_SHORT, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, \
  CK_OBJECT_HANDLE c, CK_ATTRIBUTE_PTR d, CK_ULONG e, \
  CK_OBJECT_HANDLE_PTR f), (a, b, c, d, e, f)) \
X(K, C_SeedRandom, W_SHORT, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), \
  (a, b, c)) \
X(K, C_GenerateRandom, W_SHORT, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, \
  CK_ULONG c), (a, b, c)) \
X(K, C_GetFunctionStatus, W_SHORT, (CK_SESSION_HANDLE a), (a)) \
X(K, C_CancelFunction, W_SHORT, (CK_SESSION_HANDLE a), (a)) \
X(K, C_WaitForSlotEvent, (a & CKF_DONT_BLOCK) ? W_SHORT : W_NONE, \
  (CK_FLAGS a, CK_SLOT_ID_PTR b, CK_VOID_PTR c), (a, b, c))

/* One wrapper: arm, forward to instance K's real module, disarm. A
 * function missing from the real list answers CKR_FUNCTION_NOT_SUPPORTED. */
#define WAIT_FN(K, name, kind, params, args)                            \
static CK_RV w##K##_##name params                                      \
{                                                                       \
	struct wait_call wc;                                            \
	CK_RV rv;                                                       \
									\
	if (insts[K].real->name == NULL)                                \
		return CKR_FUNCTION_NOT_SUPPORTED;                      \
	arm(&wc, K, #name, kind);                                       \
	p11_capture_begin();                                            \
	rv = insts[K].real->name args;                                  \
	p11_capture_end(#name, rv);                                     \
	disarm(&wc);                                                    \
	return rv;                                                      \
}

#define WAIT_ENTRY(K, name, kind, params, args) .name = w##K##_##name,

static CK_RV wait_gfl(unsigned k, CK_FUNCTION_LIST_PTR_PTR out);

/* Instance K: its wrappers, its list, its C_GetFunctionList. */
#define WAIT_INSTANCE(K)                                                \
P11_WAIT_CALLS(WAIT_FN, K)                                              \
static CK_RV w##K##_C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)    \
{                                                                       \
	return wait_gfl(K, out);                                        \
}                                                                       \
static CK_FUNCTION_LIST list##K = {                                     \
	.version = { 2, 40 },                                           \
	.C_GetFunctionList = w##K##_C_GetFunctionList,                  \
	P11_WAIT_CALLS(WAIT_ENTRY, K)                                   \
};

WAIT_INSTANCE(0)
WAIT_INSTANCE(1)
WAIT_INSTANCE(2)
WAIT_INSTANCE(3)

static CK_FUNCTION_LIST *const lists[WAIT_INSTANCES] = {
	&list0, &list1, &list2, &list3,
};

static CK_RV wait_gfl(unsigned k, CK_FUNCTION_LIST_PTR_PTR out)
{
	if (out == NULL)
		return CKR_ARGUMENTS_BAD;
	*out = lists[k];
	return CKR_OK;
}

/* See p11_int.h. */
CK_FUNCTION_LIST *p11_wait_wrap(CK_FUNCTION_LIST *real, const char *path)
{
	CK_FUNCTION_LIST *r = real;
	unsigned i;

	if (real == NULL)
		return NULL;
	pthread_mutex_lock(&mu);
	for (i = 0; i < n_insts; i++) {
		if (insts[i].real == real || lists[i] == real) {
			r = lists[i]; /* the same module again, or wrapped twice */
			goto out;
		}
	}
	if (n_insts == WAIT_INSTANCES) {
		pthread_mutex_unlock(&mu);
		sa_warn("more than %d PKCS#11 modules loaded: calls to %s are "
			"not bounded in time", WAIT_INSTANCES, path);
		return real;
	}
	insts[n_insts].real = real;
	snprintf(insts[n_insts].path, sizeof(insts[n_insts].path), "%s",
		 path ? path : "?");
	lists[n_insts]->version = real->version;
	r = lists[n_insts++];
out:
	pthread_mutex_unlock(&mu);
	return r;
}

/* See p11.h. */
void p11_wait_set(unsigned long call_ms, unsigned long keygen_ms,
		  p11_wait_handler *h)
{
	pthread_mutex_lock(&mu);
	short_ms = call_ms;
	long_ms = keygen_ms;
	handler = h;
	pthread_mutex_unlock(&mu);
}

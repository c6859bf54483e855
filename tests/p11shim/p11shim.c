/*
 * p11shim.c - a PKCS#11 module for tests that forwards every call to a
 * real module and, when told to, makes it misbehave: fails the Nth call
 * with a chosen CKR, delays chosen calls, weakens generated keys, and
 * traces every call. Not custody code: never installed, never loaded by
 * scep-agent except when a test names it with --module. See README.md.
 *
 * Load it as the module (--module .../tests/p11shim/p11shim.so). Its
 * C_GetFunctionList loads the real module and hands out a list of
 * wrappers, one per PKCS#11 v2.40 function (made by SHIM_CALLS below).
 * Each wrapper takes the next call index (process-wide, atomic, from 1),
 * sleeps if told to, then either answers the injected CKR without calling
 * the real module or forwards the call, and writes one trace line.
 * C_GetFunctionList itself is neither counted nor failed.
 *
 * Environment, read once at the first C_GetFunctionList (a bad value makes
 * it fail with CKR_ARGUMENTS_BAD and a "p11shim: ..." line on stderr):
 *   P11SHIM_MODULE     the real module (default: SoftHSM2,
 *                      /usr/lib/softhsm/libsofthsm2.so)
 *   P11SHIM_KEYGEN     "extractable": C_GenerateKeyPair creates the private
 *                      key with CKA_SENSITIVE false and CKA_EXTRACTABLE
 *                      true, whatever the caller's template says (a token
 *                      that ignores the template)
 *   P11SHIM_FAIL_AT    N >= 1: the Nth call fails (unset or 0: none does)
 *   P11SHIM_FAIL_FUNC  NAME[,NAME...] (e.g. C_Sign): only calls of these
 *                      functions are counted for P11SHIM_FAIL_AT (which
 *                      then defaults to 1) and failed; the others pass
 *   P11SHIM_FAIL_RV    the CKR to answer: a name (CKR_DEVICE_REMOVED, the
 *                      default; see shim_rvs[]) or a number (0x32, 50)
 *   P11SHIM_FAIL_MODE  "always" (default): the Nth call and every later
 *                      one (of P11SHIM_FAIL_FUNC, if set) fail, a card
 *                      pulled out; "once": only the Nth call fails
 *   P11SHIM_DELAY      NAME:MS[,NAME:MS...]: sleep MS milliseconds before
 *                      each call of NAME ("*" for every call), e.g.
 *                      C_GenerateKeyPair:5000,C_Sign:300 (a slow card)
 *   P11SHIM_TRACE      FILE: append one line per call, written when the
 *                      call returns: "INDEX NAME 0xRV [CKR_NAME][ injected]"
 *                      (INDEX is the call's number as P11SHIM_FAIL_AT
 *                      counts without P11SHIM_FAIL_FUNC)
 *   P11SHIM_TOKEN      SERIAL: FAIL and DELAY apply only to calls about the
 *                      token with this serial number (CK_TOKEN_INFO, without
 *                      the padding): calls naming its slot, and calls on
 *                      sessions opened on that slot; calls about other
 *                      tokens and slot-less calls (C_Initialize, C_GetInfo,
 *                      C_GetSlotList, ...) pass and are not counted
 *   P11SHIM_TIMES      FILE: per function, the calls made and the time they
 *                      took in the module (the real module plus any
 *                      P11SHIM_DELAY: the simulated card), appended at
 *                      C_Finalize and at exit() as lines
 *                      "PID NAME CALLS TOTAL_US MAX_US", one write() per
 *                      block (several processes may share the file)
 */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "shim_target.h"

#define SHIM_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define SHIM_MAX_TMPL 64

/*
 * Every function of the v2.40 list but C_GetFunctionList, in the order of
 * CK_FUNCTION_LIST: X(name, parameter list, argument list).
 */
#define SHIM_CALLS(X) \
	X(C_Initialize, (CK_VOID_PTR a), (a)) \
	X(C_Finalize, (CK_VOID_PTR a), (a)) \
	X(C_GetInfo, (CK_INFO_PTR a), (a)) \
	X(C_GetSlotList, (CK_BBOOL a, CK_SLOT_ID_PTR b, CK_ULONG_PTR c), (a, b, c)) \
	X(C_GetSlotInfo, (CK_SLOT_ID a, CK_SLOT_INFO_PTR b), (a, b)) \
	X(C_GetTokenInfo, (CK_SLOT_ID a, CK_TOKEN_INFO_PTR b), (a, b)) \
	X(C_GetMechanismList, (CK_SLOT_ID a, CK_MECHANISM_TYPE_PTR b, \
		CK_ULONG_PTR c), (a, b, c)) \
	X(C_GetMechanismInfo, (CK_SLOT_ID a, CK_MECHANISM_TYPE b, \
		CK_MECHANISM_INFO_PTR c), (a, b, c)) \
	X(C_InitToken, (CK_SLOT_ID a, CK_UTF8CHAR_PTR b, CK_ULONG c, \
		CK_UTF8CHAR_PTR d), (a, b, c, d)) \
	X(C_InitPIN, (CK_SESSION_HANDLE a, CK_UTF8CHAR_PTR b, CK_ULONG c), \
		(a, b, c)) \
	X(C_SetPIN, (CK_SESSION_HANDLE a, CK_UTF8CHAR_PTR b, CK_ULONG c, \
		CK_UTF8CHAR_PTR d, CK_ULONG e), (a, b, c, d, e)) \
	X(C_OpenSession, (CK_SLOT_ID a, CK_FLAGS b, CK_VOID_PTR c, CK_NOTIFY d, \
		CK_SESSION_HANDLE_PTR e), (a, b, c, d, e)) \
	X(C_CloseSession, (CK_SESSION_HANDLE a), (a)) \
	X(C_CloseAllSessions, (CK_SLOT_ID a), (a)) \
	X(C_GetSessionInfo, (CK_SESSION_HANDLE a, CK_SESSION_INFO_PTR b), (a, b)) \
	X(C_GetOperationState, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, \
		CK_ULONG_PTR c), (a, b, c)) \
	X(C_SetOperationState, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, \
		CK_OBJECT_HANDLE d, CK_OBJECT_HANDLE e), (a, b, c, d, e)) \
	X(C_Login, (CK_SESSION_HANDLE a, CK_USER_TYPE b, CK_UTF8CHAR_PTR c, \
		CK_ULONG d), (a, b, c, d)) \
	X(C_Logout, (CK_SESSION_HANDLE a), (a)) \
	X(C_CreateObject, (CK_SESSION_HANDLE a, CK_ATTRIBUTE_PTR b, CK_ULONG c, \
		CK_OBJECT_HANDLE_PTR d), (a, b, c, d)) \
	X(C_CopyObject, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, \
		CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_OBJECT_HANDLE_PTR e), \
		(a, b, c, d, e)) \
	X(C_DestroyObject, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b), (a, b)) \
	X(C_GetObjectSize, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, \
		CK_ULONG_PTR c), (a, b, c)) \
	X(C_GetAttributeValue, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, \
		CK_ATTRIBUTE_PTR c, CK_ULONG d), (a, b, c, d)) \
	X(C_SetAttributeValue, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, \
		CK_ATTRIBUTE_PTR c, CK_ULONG d), (a, b, c, d)) \
	X(C_FindObjectsInit, (CK_SESSION_HANDLE a, CK_ATTRIBUTE_PTR b, \
		CK_ULONG c), (a, b, c)) \
	X(C_FindObjects, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE_PTR b, \
		CK_ULONG c, CK_ULONG_PTR d), (a, b, c, d)) \
	X(C_FindObjectsFinal, (CK_SESSION_HANDLE a), (a)) \
	X(C_EncryptInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, \
		CK_OBJECT_HANDLE c), (a, b, c)) \
	X(C_Encrypt, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, \
		CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X(C_EncryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, \
		CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X(C_EncryptFinal, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c), \
		(a, b, c)) \
	X(C_DecryptInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, \
		CK_OBJECT_HANDLE c), (a, b, c)) \
	X(C_Decrypt, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, \
		CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X(C_DecryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, \
		CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X(C_DecryptFinal, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c), \
		(a, b, c)) \
	X(C_DigestInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b), (a, b)) \
	X(C_Digest, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, \
		CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X(C_DigestUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), \
		(a, b, c)) \
	X(C_DigestKey, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b), (a, b)) \
	X(C_DigestFinal, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c), \
		(a, b, c)) \
	X(C_SignInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, \
		CK_OBJECT_HANDLE c), (a, b, c)) \
	X(C_Sign, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, \
		CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X(C_SignUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), \
		(a, b, c)) \
	X(C_SignFinal, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c), \
		(a, b, c)) \
	X(C_SignRecoverInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, \
		CK_OBJECT_HANDLE c), (a, b, c)) \
	X(C_SignRecover, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, \
		CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X(C_VerifyInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, \
		CK_OBJECT_HANDLE c), (a, b, c)) \
	X(C_Verify, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, \
		CK_BYTE_PTR d, CK_ULONG e), (a, b, c, d, e)) \
	X(C_VerifyUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), \
		(a, b, c)) \
	X(C_VerifyFinal, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), \
		(a, b, c)) \
	X(C_VerifyRecoverInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, \
		CK_OBJECT_HANDLE c), (a, b, c)) \
	X(C_VerifyRecover, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, \
		CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X(C_DigestEncryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, \
		CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X(C_DecryptDigestUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, \
		CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X(C_SignEncryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, \
		CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X(C_DecryptVerifyUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, \
		CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X(C_GenerateKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, \
		CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_OBJECT_HANDLE_PTR e), \
		(a, b, c, d, e)) \
	X(C_GenerateKeyPair, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, \
		CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_ATTRIBUTE_PTR e, CK_ULONG f, \
		CK_OBJECT_HANDLE_PTR g, CK_OBJECT_HANDLE_PTR h), \
		(a, b, c, d, e, f, g, h)) \
	X(C_WrapKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, \
		CK_OBJECT_HANDLE c, CK_OBJECT_HANDLE d, CK_BYTE_PTR e, \
		CK_ULONG_PTR f), (a, b, c, d, e, f)) \
	X(C_UnwrapKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, \
		CK_OBJECT_HANDLE c, CK_BYTE_PTR d, CK_ULONG e, CK_ATTRIBUTE_PTR f, \
		CK_ULONG g, CK_OBJECT_HANDLE_PTR h), (a, b, c, d, e, f, g, h)) \
	X(C_DeriveKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, \
		CK_OBJECT_HANDLE c, CK_ATTRIBUTE_PTR d, CK_ULONG e, \
		CK_OBJECT_HANDLE_PTR f), (a, b, c, d, e, f)) \
	X(C_SeedRandom, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), \
		(a, b, c)) \
	X(C_GenerateRandom, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), \
		(a, b, c)) \
	X(C_GetFunctionStatus, (CK_SESSION_HANDLE a), (a)) \
	X(C_CancelFunction, (CK_SESSION_HANDLE a), (a)) \
	X(C_WaitForSlotEvent, (CK_FLAGS a, CK_SLOT_ID_PTR b, CK_VOID_PTR c), \
		(a, b, c))

/* One id per function: SHIM_ID_C_Sign ... SHIM_N. */
#define SHIM_ENUM(name, params, args) SHIM_ID_##name,
enum { SHIM_CALLS(SHIM_ENUM) SHIM_N };
#define SHIM_NAME(name, params, args) #name,
static const char *const shim_names[SHIM_N] = { SHIM_CALLS(SHIM_NAME) };

/* The CKR names P11SHIM_FAIL_RV takes and the trace shows. */
#define SHIM_RV(r) { r, #r }
static const struct { CK_RV rv; const char *name; } shim_rvs[] = {
	SHIM_RV(CKR_OK), SHIM_RV(CKR_CANCEL), SHIM_RV(CKR_HOST_MEMORY),
	SHIM_RV(CKR_SLOT_ID_INVALID), SHIM_RV(CKR_GENERAL_ERROR),
	SHIM_RV(CKR_FUNCTION_FAILED), SHIM_RV(CKR_ARGUMENTS_BAD),
	SHIM_RV(CKR_ATTRIBUTE_TYPE_INVALID), SHIM_RV(CKR_ATTRIBUTE_VALUE_INVALID),
	SHIM_RV(CKR_DATA_LEN_RANGE), SHIM_RV(CKR_DEVICE_ERROR),
	SHIM_RV(CKR_DEVICE_MEMORY), SHIM_RV(CKR_DEVICE_REMOVED),
	SHIM_RV(CKR_FUNCTION_CANCELED), SHIM_RV(CKR_FUNCTION_NOT_SUPPORTED),
	SHIM_RV(CKR_KEY_HANDLE_INVALID), SHIM_RV(CKR_MECHANISM_INVALID),
	SHIM_RV(CKR_OBJECT_HANDLE_INVALID), SHIM_RV(CKR_OPERATION_ACTIVE),
	SHIM_RV(CKR_OPERATION_NOT_INITIALIZED), SHIM_RV(CKR_PIN_INCORRECT),
	SHIM_RV(CKR_PIN_LOCKED), SHIM_RV(CKR_SESSION_CLOSED),
	SHIM_RV(CKR_SESSION_COUNT), SHIM_RV(CKR_SESSION_HANDLE_INVALID),
	SHIM_RV(CKR_SESSION_READ_ONLY), SHIM_RV(CKR_SESSION_EXISTS),
	SHIM_RV(CKR_TEMPLATE_INCOMPLETE), SHIM_RV(CKR_TEMPLATE_INCONSISTENT),
	SHIM_RV(CKR_TOKEN_NOT_PRESENT), SHIM_RV(CKR_TOKEN_NOT_RECOGNIZED),
	SHIM_RV(CKR_TOKEN_WRITE_PROTECTED), SHIM_RV(CKR_USER_ALREADY_LOGGED_IN),
	SHIM_RV(CKR_USER_NOT_LOGGED_IN), SHIM_RV(CKR_BUFFER_TOO_SMALL),
	SHIM_RV(CKR_CRYPTOKI_NOT_INITIALIZED),
	SHIM_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED),
};

/* Everything the shim is told, read from the environment once. */
struct shim_cfg {
	const char *module;          /* P11SHIM_MODULE */
	int keygen_extractable;      /* P11SHIM_KEYGEN=extractable */
	unsigned long fail_at;       /* P11SHIM_FAIL_AT, 0: never */
	unsigned char fail_func[SHIM_N]; /* P11SHIM_FAIL_FUNC, all 0: any */
	int fail_func_set;
	CK_RV fail_rv;               /* P11SHIM_FAIL_RV */
	int fail_always;             /* P11SHIM_FAIL_MODE */
	long delay_ms[SHIM_N];       /* P11SHIM_DELAY */
	int trace_fd;                /* P11SHIM_TRACE, -1: none */
	const char *token;           /* P11SHIM_TOKEN, NULL: every call */
	int times_fd;                /* P11SHIM_TIMES, -1: none */
};

static struct shim_cfg cfg = { .trace_fd = -1, .times_fd = -1 };
static CK_FUNCTION_LIST *real;   /* the real module's list */
static CK_FUNCTION_LIST fwd;     /* real, with the behaviour hooks */
static CK_FUNCTION_LIST shim;    /* the wrappers: what we hand out */
static CK_RV load_rv = CKR_GENERAL_ERROR;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static atomic_ulong n_calls;     /* every call: the trace index */
static atomic_ulong n_counted;   /* calls P11SHIM_FAIL_AT counts */
static atomic_int tripped;       /* "always" mode: the Nth call was reached */

/* P11SHIM_TIMES: per function, since the last write */
static atomic_ulong t_calls[SHIM_N];
static atomic_ulong t_total_ns[SHIM_N];
static atomic_ulong t_max_ns[SHIM_N];

/* --- configuration ------------------------------------------------------ */

static int shim_func_id(const char *s, size_t len)
{
	int i;

	for (i = 0; i < SHIM_N; i++)
		if (strlen(shim_names[i]) == len &&
		    strncmp(shim_names[i], s, len) == 0)
			return i;
	return -1;
}

static const char *shim_rv_name(CK_RV rv)
{
	size_t i;

	for (i = 0; i < sizeof(shim_rvs) / sizeof(shim_rvs[0]); i++)
		if (shim_rvs[i].rv == rv)
			return shim_rvs[i].name;
	return NULL;
}

static int shim_bad(const char *var, const char *val)
{
	fprintf(stderr, "p11shim: %s: cannot use '%s' (see tests/p11shim/README.md)\n",
		var, val);
	return -1;
}

/* an unsigned number, decimal or 0x hex, the whole string */
static int shim_num(const char *s, unsigned long *out)
{
	char *end;

	if (*s == '\0' || *s == '-')
		return -1;
	errno = 0;
	*out = strtoul(s, &end, 0);
	return errno != 0 || *end != '\0' ? -1 : 0;
}

/* NAME[,NAME...] or NAME:MS[,NAME:MS...] (with_ms) into one flag or
 * delay per function; "*" names every function where with_ms */
static int shim_func_list(const char *var, const char *v, int with_ms,
			  unsigned char *flags, long *ms)
{
	const char *p = v, *end, *colon;
	unsigned long n = 0;
	char num[32];
	int id, i;

	while (*p != '\0') {
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		colon = with_ms ? memchr(p, ':', (size_t)(end - p)) : NULL;
		if (with_ms) {
			if (colon == NULL || (size_t)(end - colon - 1) >= sizeof(num))
				return shim_bad(var, v);
			memcpy(num, colon + 1, (size_t)(end - colon - 1));
			num[end - colon - 1] = '\0';
			if (shim_num(num, &n) != 0 || n > 3600000)
				return shim_bad(var, v);
		} else {
			colon = end;
		}
		if (with_ms && colon - p == 1 && *p == '*') {
			for (i = 0; i < SHIM_N; i++)
				ms[i] = (long)n;
		} else {
			id = shim_func_id(p, (size_t)(colon - p));
			if (id < 0)
				return shim_bad(var, v);
			if (with_ms)
				ms[id] = (long)n;
			else
				flags[id] = 1;
		}
		p = *end == ',' ? end + 1 : end;
	}
	return 0;
}

static int config_read(void)
{
	const char *v;
	unsigned long n;
	size_t i;

	v = getenv("P11SHIM_MODULE");
	cfg.module = v != NULL && *v != '\0' ? v : SHIM_DEFAULT_MODULE;
	v = getenv("P11SHIM_KEYGEN");
	cfg.keygen_extractable = v != NULL && strcmp(v, "extractable") == 0;

	v = getenv("P11SHIM_FAIL_AT");
	if (v != NULL && *v != '\0' && shim_num(v, &cfg.fail_at) != 0)
		return shim_bad("P11SHIM_FAIL_AT", v);
	v = getenv("P11SHIM_FAIL_FUNC");
	if (v != NULL && *v != '\0') {
		if (shim_func_list("P11SHIM_FAIL_FUNC", v, 0, cfg.fail_func, NULL) != 0)
			return -1;
		cfg.fail_func_set = 1;
		if (cfg.fail_at == 0)
			cfg.fail_at = 1;
	}
	cfg.fail_rv = CKR_DEVICE_REMOVED;
	v = getenv("P11SHIM_FAIL_RV");
	if (v != NULL && *v != '\0') {
		for (i = 0; i < sizeof(shim_rvs) / sizeof(shim_rvs[0]); i++)
			if (strcmp(shim_rvs[i].name, v) == 0)
				break;
		if (i < sizeof(shim_rvs) / sizeof(shim_rvs[0]))
			cfg.fail_rv = shim_rvs[i].rv;
		else if (shim_num(v, &n) == 0)
			cfg.fail_rv = n;
		else
			return shim_bad("P11SHIM_FAIL_RV", v);
	}
	cfg.fail_always = 1;
	v = getenv("P11SHIM_FAIL_MODE");
	if (v != NULL && *v != '\0') {
		if (strcmp(v, "once") == 0)
			cfg.fail_always = 0;
		else if (strcmp(v, "always") != 0)
			return shim_bad("P11SHIM_FAIL_MODE", v);
	}
	v = getenv("P11SHIM_DELAY");
	if (v != NULL && *v != '\0' &&
	    shim_func_list("P11SHIM_DELAY", v, 1, NULL, cfg.delay_ms) != 0)
		return -1;
	v = getenv("P11SHIM_TRACE");
	if (v != NULL && *v != '\0') {
		cfg.trace_fd = open(v, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (cfg.trace_fd < 0)
			return shim_bad("P11SHIM_TRACE", v);
	}
	v = getenv("P11SHIM_TOKEN");
	if (v != NULL && *v != '\0') {
		if (strlen(v) > 16)
			return shim_bad("P11SHIM_TOKEN", v);
		cfg.token = v;
	}
	v = getenv("P11SHIM_TIMES");
	if (v != NULL && *v != '\0') {
		cfg.times_fd = open(v, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (cfg.times_fd < 0)
			return shim_bad("P11SHIM_TIMES", v);
	}
	return 0;
}

/* --- behaviour hooks: each one ends by calling the real module ---------- */

/* A token that ignores the private-key template: sensitive off, extractable on. */
static CK_RV hook_GenerateKeyPair(CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech,
				  CK_ATTRIBUTE_PTR pub, CK_ULONG npub,
				  CK_ATTRIBUTE_PTR priv, CK_ULONG npriv,
				  CK_OBJECT_HANDLE_PTR hpub,
				  CK_OBJECT_HANDLE_PTR hpriv)
{
	static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE t[SHIM_MAX_TMPL];
	CK_ULONG i, n = 0;

	if (npriv + 2 > SHIM_MAX_TMPL)
		return real->C_GenerateKeyPair(s, mech, pub, npub, priv, npriv,
					       hpub, hpriv);
	for (i = 0; i < npriv; i++)
		if (priv[i].type != CKA_SENSITIVE &&
		    priv[i].type != CKA_EXTRACTABLE)
			t[n++] = priv[i];
	t[n++] = (CK_ATTRIBUTE){ CKA_SENSITIVE, &no, sizeof(no) };
	t[n++] = (CK_ATTRIBUTE){ CKA_EXTRACTABLE, &yes, sizeof(yes) };
	return real->C_GenerateKeyPair(s, mech, pub, npub, t, n, hpub, hpriv);
}

/* P11SHIM_TOKEN bookkeeping: which slot each session is on. */
static CK_RV hook_OpenSession(CK_SLOT_ID slot, CK_FLAGS fl, CK_VOID_PTR app,
			      CK_NOTIFY notify, CK_SESSION_HANDLE_PTR s)
{
	CK_RV rv = real->C_OpenSession(slot, fl, app, notify, s);

	if (rv == CKR_OK && s != NULL)
		target_opened(slot, *s);
	return rv;
}

static CK_RV hook_CloseSession(CK_SESSION_HANDLE s)
{
	CK_RV rv = real->C_CloseSession(s);

	if (rv == CKR_OK)
		target_closed(s);
	return rv;
}

static CK_RV hook_CloseAllSessions(CK_SLOT_ID slot)
{
	CK_RV rv = real->C_CloseAllSessions(slot);

	if (rv == CKR_OK)
		target_closed_all(slot);
	return rv;
}

static CK_RV hook_Finalize(CK_VOID_PTR a)
{
	CK_RV rv = real->C_Finalize(a);

	if (rv == CKR_OK)
		target_reset();
	return rv;
}

/* The one place where behaviour hooks are installed. */
static void hooks_install(CK_FUNCTION_LIST *fl)
{
	if (cfg.keygen_extractable)
		fl->C_GenerateKeyPair = hook_GenerateKeyPair;
	if (cfg.token != NULL) {
		target_init(real, cfg.token);
		fl->C_OpenSession = hook_OpenSession;
		fl->C_CloseSession = hook_CloseSession;
		fl->C_CloseAllSessions = hook_CloseAllSessions;
		fl->C_Finalize = hook_Finalize;
	}
}

/* --- P11SHIM_TOKEN: is a call about the target token? ------------------- */

/* What the first argument of each function names. */
static int shim_kind(int id)
{
	switch (id) {
	case SHIM_ID_C_Initialize: case SHIM_ID_C_Finalize: case SHIM_ID_C_GetInfo:
	case SHIM_ID_C_GetSlotList: case SHIM_ID_C_WaitForSlotEvent:
		return 0;       /* nothing: slot-less */
	case SHIM_ID_C_GetSlotInfo: case SHIM_ID_C_GetTokenInfo:
	case SHIM_ID_C_GetMechanismList: case SHIM_ID_C_GetMechanismInfo:
	case SHIM_ID_C_InitToken: case SHIM_ID_C_OpenSession:
	case SHIM_ID_C_CloseAllSessions:
		return 1;       /* a slot */
	default:
		return 2;       /* a session */
	}
}

/* 1 if the call (function ID, first argument A) is one FAIL and DELAY
 * apply to: any call without P11SHIM_TOKEN, else the target's calls */
static int shim_about(int id, CK_ULONG a)
{
	if (cfg.token == NULL)
		return 1;
	switch (shim_kind(id)) {
	case 1:
		return target_slot(a);
	case 2:
		return target_session(a);
	default:
		return 0;
	}
}

/* --- P11SHIM_TIMES -------------------------------------------------------- */

static unsigned long shim_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long)ts.tv_sec * 1000000000UL + (unsigned long)ts.tv_nsec;
}

/* count one call of ID that took NS nanoseconds */
static void shim_time_add(int id, unsigned long ns)
{
	unsigned long m = atomic_load(&t_max_ns[id]);

	atomic_fetch_add(&t_calls[id], 1);
	atomic_fetch_add(&t_total_ns[id], ns);
	while (ns > m && !atomic_compare_exchange_weak(&t_max_ns[id], &m, ns))
		;
}

/* append what was counted since the last write, one write() for all
 * lines, and start counting from zero */
static void shim_times_flush(void)
{
	char buf[SHIM_N * 80];
	size_t len = 0;
	unsigned long c, tot, mx;
	int i, n;

	if (cfg.times_fd < 0)
		return;
	for (i = 0; i < SHIM_N; i++) {
		c = atomic_exchange(&t_calls[i], 0);
		tot = atomic_exchange(&t_total_ns[i], 0);
		mx = atomic_exchange(&t_max_ns[i], 0);
		if (c == 0)
			continue;
		n = snprintf(buf + len, sizeof(buf) - len, "%ld %s %lu %lu %lu\n",
			     (long)getpid(), shim_names[i], c, tot / 1000, mx / 1000);
		if (n > 0 && (size_t)n < sizeof(buf) - len)
			len += (size_t)n;
	}
	if (len > 0 && write(cfg.times_fd, buf, len) != (ssize_t)len) {
		/* lost figures only */
	}
}

/* a forked child starts with no calls of its own */
static void shim_times_child(void)
{
	int i;

	for (i = 0; i < SHIM_N; i++) {
		atomic_store(&t_calls[i], 0);
		atomic_store(&t_total_ns[i], 0);
		atomic_store(&t_max_ns[i], 0);
	}
}

/* exit() or dlclose: what C_Finalize has not written yet */
__attribute__((destructor)) static void shim_times_atexit(void)
{
	shim_times_flush();
}

/* --- the wrappers: count, delay, fail or forward, trace ----------------- */

static void shim_sleep(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Before the call (first argument A): its index (*idx), and 1 if it is
 * to fail. */
static int shim_pre(int id, CK_ULONG a, unsigned long *idx)
{
	unsigned long k;

	*idx = atomic_fetch_add(&n_calls, 1) + 1;
	if ((cfg.delay_ms[id] > 0 || cfg.fail_at != 0) && !shim_about(id, a))
		return 0;
	if (cfg.delay_ms[id] > 0)
		shim_sleep(cfg.delay_ms[id]);
	if (cfg.fail_at == 0 || (cfg.fail_func_set && !cfg.fail_func[id]))
		return 0;
	k = atomic_fetch_add(&n_counted, 1) + 1;
	if (k == cfg.fail_at) {
		atomic_store(&tripped, 1);
		return 1;
	}
	return cfg.fail_always && atomic_load(&tripped);
}

/* After the call: one trace line, written at once (O_APPEND). */
static void shim_post(int id, unsigned long idx, CK_RV rv, int injected)
{
	const char *rn;
	char line[160];
	int n;

	if (cfg.trace_fd < 0)
		return;
	rn = shim_rv_name(rv);
	n = snprintf(line, sizeof(line), "%lu %s 0x%lx%s%s%s\n", idx,
		     shim_names[id], (unsigned long)rv, rn ? " " : "", rn ? rn : "",
		     injected ? " injected" : "");
	if (n > 0 && (size_t)n < sizeof(line) &&
	    write(cfg.trace_fd, line, (size_t)n) != n) {
		/* a trace that cannot be written is only a lost line */
	}
}

#define SHIM_WRAP(name, params, args) \
	static CK_RV shim_##name params \
	{ \
		unsigned long idx, t0 = cfg.times_fd >= 0 ? shim_ns() : 0; \
		CK_RV rv; \
		int inj = shim_pre(SHIM_ID_##name, (CK_ULONG)(uintptr_t)(a), &idx); \
		rv = inj ? cfg.fail_rv : fwd.name == NULL ? \
			CKR_FUNCTION_NOT_SUPPORTED : fwd.name args; \
		if (cfg.times_fd >= 0) \
			shim_time_add(SHIM_ID_##name, shim_ns() - t0); \
		shim_post(SHIM_ID_##name, idx, rv, inj); \
		if (SHIM_ID_##name == SHIM_ID_C_Finalize) \
			shim_times_flush(); \
		return rv; \
	}
SHIM_CALLS(SHIM_WRAP)

#define SHIM_SET(name, params, args) shim.name = shim_##name;

/* --- the module's entry point ------------------------------------------ */

static void shim_load(void)
{
	CK_C_GetFunctionList gfl;
	void *h;
	CK_RV rv;

	if (config_read() != 0) {
		load_rv = CKR_ARGUMENTS_BAD;
		return;
	}
	h = dlopen(cfg.module, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		fprintf(stderr, "p11shim: cannot load %s: %s\n", cfg.module, dlerror());
		return;
	}
	gfl = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList");
	if (gfl == NULL)
		return;
	rv = gfl(&real);
	if (rv != CKR_OK || real == NULL) {
		real = NULL;
		load_rv = rv != CKR_OK ? rv : CKR_GENERAL_ERROR;
		return;
	}
	fwd = *real;
	hooks_install(&fwd);
	if (cfg.times_fd >= 0)
		pthread_atfork(NULL, NULL, shim_times_child);
	shim.version = real->version;
	if (shim.version.major > 2) {
		/* we hand out the v2 list only */
		shim.version.major = 2;
		shim.version.minor = 40;
	}
	shim.C_GetFunctionList = C_GetFunctionList;
	SHIM_CALLS(SHIM_SET)
	load_rv = CKR_OK;
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	if (list == NULL)
		return CKR_ARGUMENTS_BAD;
	pthread_once(&load_once, shim_load);
	if (load_rv != CKR_OK)
		return load_rv;
	*list = &shim;
	return CKR_OK;
}

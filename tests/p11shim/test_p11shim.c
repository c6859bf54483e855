/*
 * test_p11shim.c - the fault module itself (tests/p11shim/p11shim.c)
 * against SoftHSM2: it counts every call (also from several threads),
 * fails the Nth call once or from then on, only calls of a named
 * function if told, delays chosen calls, traces each call, keeps its
 * keygen hook, fails and delays only one token's calls when told its
 * serial (P11SHIM_TOKEN), writes per-function call times
 * (P11SHIM_TIMES), and refuses a configuration it cannot read.
 *
 * The shim reads its environment once per process, so each case runs in
 * a child (fork) that sets the environment, loads the shim and reports
 * failed checks as "# ..." lines and its exit status.
 * Usage: test_p11shim SHIM.so
 */
#include <dlfcn.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "tap.h"

#define SOFTHSM "/usr/lib/softhsm/libsofthsm2.so"
#define T_LABEL "shimtest"
#define T_LABEL2 "shimtwo"
#define T_USERPIN "5u1t"
#define T_SOPIN "50p1n"
#define N_THREADS 4
#define N_PER_THREAD 250

static const char *shim_path;
static char dir[256];
static char trace[300];
static char serials[300];       /* the two tokens' serials, one a line */
static int c_failed;             /* checks failed in this child */
static CK_FUNCTION_LIST *f;      /* the list the child got */

#define check(cond, ...) do { \
	if (!(cond)) { \
		c_failed++; \
		printf("# line %d: ", __LINE__); \
		printf(__VA_ARGS__); \
		printf("\n"); \
	} \
} while (0)

/* --- helpers run in a child --------------------------------------------- */

/* load MODULE and take its function list; the CKR of C_GetFunctionList */
static CK_RV load(const char *module)
{
	CK_C_GetFunctionList gfl;
	void *h = dlopen(module, RTLD_NOW | RTLD_LOCAL);

	if (h == NULL) {
		printf("# dlopen %s: %s\n", module, dlerror());
		exit(99);
	}
	gfl = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList");
	if (gfl == NULL)
		exit(99);
	return gfl(&f);
}

/* the slot of the test token */
static CK_SLOT_ID token_slot(void)
{
	CK_SLOT_ID slots[8];
	CK_ULONG n = 8, i;
	CK_TOKEN_INFO ti;

	check(f->C_GetSlotList(CK_TRUE, slots, &n) == CKR_OK, "C_GetSlotList");
	for (i = 0; i < n; i++)
		if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    memcmp(ti.label, T_LABEL, strlen(T_LABEL)) == 0)
			return slots[i];
	check(0, "no token labelled " T_LABEL);
	exit(c_failed);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* the trace file's lines, NUL-separated in one buffer; *n lines */
static char *trace_read(int *n)
{
	FILE *fp = fopen(trace, "r");
	static char buf[1 << 17];
	size_t len;
	int i;

	*n = 0;
	if (fp == NULL)
		return NULL;
	len = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[len] = '\0';
	for (i = 0; (size_t)i < len; i++)
		if (buf[i] == '\n') {
			buf[i] = '\0';
			(*n)++;
		}
	return buf;
}

/* the I-th (0-based) line of a trace_read buffer */
static const char *trace_line(const char *buf, int i)
{
	while (i-- > 0)
		buf += strlen(buf) + 1;
	return buf;
}

/* --- the cases (each in its own child) ----------------------------------- */

/* token set up through SoftHSM2 itself: a user PIN and an EC key pair */
static void case_setup(void)
{
	CK_SLOT_ID slots[8];
	CK_ULONG n = 8;
	CK_SESSION_HANDLE s;
	CK_UTF8CHAR label[32];
	CK_BBOOL yes = CK_TRUE;
	CK_BYTE p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
	CK_MECHANISM mech = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pub[] = { { CKA_EC_PARAMS, p256, sizeof(p256) },
			       { CKA_TOKEN, &yes, sizeof(yes) },
			       { CKA_LABEL, "k1", 2 } };
	CK_ATTRIBUTE priv[] = { { CKA_TOKEN, &yes, sizeof(yes) },
				{ CKA_SIGN, &yes, sizeof(yes) },
				{ CKA_LABEL, "k1", 2 } };
	CK_OBJECT_HANDLE hpub, hpriv;

	check(load(SOFTHSM) == CKR_OK, "SoftHSM2 C_GetFunctionList");
	check(f->C_Initialize(NULL) == CKR_OK, "C_Initialize");
	check(f->C_GetSlotList(CK_FALSE, slots, &n) == CKR_OK && n > 0, "a slot");
	memset(label, ' ', sizeof(label));
	memcpy(label, T_LABEL, strlen(T_LABEL));
	check(f->C_InitToken(slots[0], (CK_UTF8CHAR_PTR)T_SOPIN, strlen(T_SOPIN),
			     label) == CKR_OK, "C_InitToken");
	check(f->C_OpenSession(token_slot(), CKF_SERIAL_SESSION | CKF_RW_SESSION,
			       NULL, NULL, &s) == CKR_OK, "C_OpenSession");
	check(f->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)T_SOPIN, strlen(T_SOPIN)) == CKR_OK,
	      "SO login");
	check(f->C_InitPIN(s, (CK_UTF8CHAR_PTR)T_USERPIN, strlen(T_USERPIN)) == CKR_OK,
	      "C_InitPIN");
	check(f->C_Logout(s) == CKR_OK, "C_Logout");
	check(f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)T_USERPIN, strlen(T_USERPIN)) ==
	      CKR_OK, "user login");
	check(f->C_GenerateKeyPair(s, &mech, pub, 3, priv, 3, &hpub, &hpriv) == CKR_OK,
	      "EC key pair k1");
	check(f->C_Finalize(NULL) == CKR_OK, "C_Finalize");
}

/* the slot of the token labelled LABEL, 0 and a failed check if none;
 * its serial (unpadded) into SN if not NULL */
static CK_SLOT_ID slot_of(const char *label, char *sn)
{
	CK_SLOT_ID slots[8];
	CK_ULONG n = 8, i;
	CK_TOKEN_INFO ti;
	int k;

	check(f->C_GetSlotList(CK_TRUE, slots, &n) == CKR_OK, "C_GetSlotList");
	for (i = 0; i < n; i++)
		if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    memcmp(ti.label, label, strlen(label)) == 0 &&
		    ti.label[strlen(label)] == ' ') {
			if (sn != NULL) {
				memcpy(sn, ti.serialNumber, 16);
				for (k = 16; k > 0 && sn[k - 1] == ' '; k--)
					;
				sn[k] = '\0';
			}
			return slots[i];
		}
	check(0, "no token labelled %s", label);
	return 0;
}

/* a second token (T_LABEL2, same PINs) on the free slot, and both serials
 * into the file serials */
static void case_setup2(void)
{
	CK_SLOT_ID slots[8];
	CK_ULONG n = 8, i;
	CK_TOKEN_INFO ti;
	CK_SESSION_HANDLE s;
	CK_UTF8CHAR label[32];
	char sn1[17] = "", sn2[17] = "";
	FILE *fp;

	check(load(SOFTHSM) == CKR_OK, "SoftHSM2 C_GetFunctionList");
	check(f->C_Initialize(NULL) == CKR_OK, "C_Initialize");
	check(f->C_GetSlotList(CK_FALSE, slots, &n) == CKR_OK, "slots");
	for (i = 0; i < n; i++)
		if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    !(ti.flags & CKF_TOKEN_INITIALIZED))
			break;
	check(i < n, "a free slot");
	if (i == n)
		return;
	memset(label, ' ', sizeof(label));
	memcpy(label, T_LABEL2, strlen(T_LABEL2));
	check(f->C_InitToken(slots[i], (CK_UTF8CHAR_PTR)T_SOPIN, strlen(T_SOPIN),
			     label) == CKR_OK, "C_InitToken " T_LABEL2);
	check(f->C_OpenSession(slot_of(T_LABEL2, sn2), CKF_SERIAL_SESSION | CKF_RW_SESSION,
			       NULL, NULL, &s) == CKR_OK, "C_OpenSession");
	check(f->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)T_SOPIN, strlen(T_SOPIN)) == CKR_OK,
	      "SO login");
	check(f->C_InitPIN(s, (CK_UTF8CHAR_PTR)T_USERPIN, strlen(T_USERPIN)) == CKR_OK,
	      "C_InitPIN");
	slot_of(T_LABEL, sn1);
	check(sn1[0] != '\0' && sn2[0] != '\0' && strcmp(sn1, sn2) != 0,
	      "two serials: '%s' '%s'", sn1, sn2);
	check(f->C_Finalize(NULL) == CKR_OK, "C_Finalize");
	fp = fopen(serials, "w");
	check(fp != NULL, "write %s", serials);
	if (fp != NULL) {
		fprintf(fp, "%s\n%s\n", sn1, sn2);
		fclose(fp);
	}
}

static void *many_getinfo(void *arg)
{
	CK_INFO info;
	int i, *bad = arg;

	for (i = 0; i < N_PER_THREAD; i++)
		if (f->C_GetInfo(&info) != CKR_OK)
			(*bad)++;
	return NULL;
}

/* no fault configured: every call forwarded and counted once, 1..N, from
 * several threads at once */
static void case_counts(void)
{
	pthread_t th[N_THREADS];
	int bad[N_THREADS] = { 0 };
	static unsigned char seen[2 + N_THREADS * N_PER_THREAD + 8];
	CK_SLOT_ID slots[8];
	CK_ULONG n = 0;
	const char *buf;
	CK_TOKEN_INFO ti;
	int i, nl, total = 5 + N_THREADS * N_PER_THREAD, dup = 0, miss = 0;
	unsigned long idx;
	char last[64];

	setenv("P11SHIM_TRACE", trace, 1);
	check(load(shim_path) == CKR_OK, "shim C_GetFunctionList");
	check(f->C_Initialize(NULL) == CKR_OK, "C_Initialize forwarded");
	/* SoftHSM2: the two test tokens and a free slot */
	check(f->C_GetSlotList(CK_TRUE, NULL, &n) == CKR_OK && n == 3,
	      "C_GetSlotList (count) forwarded: %lu slots", n);
	n = 8;
	check(f->C_GetSlotList(CK_TRUE, slots, &n) == CKR_OK && n == 3,
	      "C_GetSlotList forwarded");
	for (i = 0; i < N_THREADS; i++)
		pthread_create(&th[i], NULL, many_getinfo, &bad[i]);
	for (i = 0; i < N_THREADS; i++) {
		pthread_join(th[i], NULL);
		check(bad[i] == 0, "thread %d: %d C_GetInfo failed", i, bad[i]);
	}
	check(f->C_GetTokenInfo(slots[0], &ti) == CKR_OK, "C_GetTokenInfo forwarded");
	check(f->C_Finalize(NULL) == CKR_OK, "C_Finalize forwarded");

	buf = trace_read(&nl);
	check(nl == total, "the trace has one line per call: %d, want %d", nl, total);
	for (i = 0; buf != NULL && i < nl; i++) {
		idx = strtoul(trace_line(buf, i), NULL, 10);
		if (idx < 1 || idx > (unsigned long)total)
			miss++;
		else if (seen[idx]++)
			dup++;
	}
	check(dup == 0 && miss == 0, "indexes 1..%d, each once: %d repeated, %d out of range",
	      total, dup, miss);
	check(buf != NULL && strcmp(trace_line(buf, 0), "1 C_Initialize 0x0 CKR_OK") == 0,
	      "first line: '%s'", buf ? trace_line(buf, 0) : "");
	snprintf(last, sizeof(last), "%d C_Finalize 0x0 CKR_OK", total);
	check(buf != NULL && nl == total && strcmp(trace_line(buf, nl - 1), last) == 0,
	      "last line: '%s'", buf && nl > 0 ? trace_line(buf, nl - 1) : "");
}

/* P11SHIM_FAIL_MODE=once: only the Nth call fails, traced as injected */
static void case_once(void)
{
	CK_INFO info;
	const char *buf;
	int nl;

	setenv("P11SHIM_FAIL_AT", "3", 1);
	setenv("P11SHIM_FAIL_MODE", "once", 1);
	setenv("P11SHIM_FAIL_RV", "CKR_DEVICE_REMOVED", 1);
	setenv("P11SHIM_TRACE", trace, 1);
	check(load(shim_path) == CKR_OK, "shim C_GetFunctionList");
	check(f->C_Initialize(NULL) == CKR_OK, "call 1 passes");
	check(f->C_GetInfo(&info) == CKR_OK, "call 2 passes");
	check(f->C_GetInfo(&info) == CKR_DEVICE_REMOVED, "call 3 fails with CKR_DEVICE_REMOVED");
	check(f->C_GetInfo(&info) == CKR_OK, "call 4 passes again");
	check(f->C_Finalize(NULL) == CKR_OK, "call 5 (C_Finalize) passes");
	buf = trace_read(&nl);
	check(nl == 5, "5 trace lines, got %d", nl);
	if (buf != NULL && nl == 5) {
		check(strcmp(trace_line(buf, 2),
			     "3 C_GetInfo 0x32 CKR_DEVICE_REMOVED injected") == 0,
		      "line 3: '%s'", trace_line(buf, 2));
		check(strcmp(trace_line(buf, 3), "4 C_GetInfo 0x0 CKR_OK") == 0,
		      "line 4: '%s'", trace_line(buf, 3));
	}
}

/* P11SHIM_FAIL_MODE unset (always): the Nth call and all later ones fail,
 * with the CKR given as a number */
static void case_always(void)
{
	CK_INFO info;
	CK_ULONG n = 0;

	setenv("P11SHIM_FAIL_AT", "3", 1);
	setenv("P11SHIM_FAIL_RV", "0x30", 1);
	check(load(shim_path) == CKR_OK, "shim C_GetFunctionList");
	check(f->C_Initialize(NULL) == CKR_OK, "call 1 passes");
	check(f->C_GetInfo(&info) == CKR_OK, "call 2 passes");
	check(f->C_GetInfo(&info) == CKR_DEVICE_ERROR, "call 3 fails with 0x30");
	check(f->C_GetSlotList(CK_TRUE, NULL, &n) == CKR_DEVICE_ERROR, "call 4 fails too");
	check(f->C_GetInfo(&info) == CKR_DEVICE_ERROR, "call 5 fails too");
	check(f->C_Finalize(NULL) == CKR_DEVICE_ERROR, "and C_Finalize");
}

/* P11SHIM_FAIL_FUNC: the 2nd C_GetSlotInfo fails once; other calls pass */
static void case_func(void)
{
	CK_SLOT_INFO si;
	CK_INFO info;
	CK_SLOT_ID slot;

	setenv("P11SHIM_FAIL_FUNC", "C_GetSlotInfo", 1);
	setenv("P11SHIM_FAIL_AT", "2", 1);
	setenv("P11SHIM_FAIL_MODE", "once", 1);
	setenv("P11SHIM_FAIL_RV", "CKR_DEVICE_MEMORY", 1);
	check(load(shim_path) == CKR_OK, "shim C_GetFunctionList");
	check(f->C_Initialize(NULL) == CKR_OK, "C_Initialize passes");
	slot = token_slot();
	check(f->C_GetSlotInfo(slot, &si) == CKR_OK, "1st C_GetSlotInfo passes");
	check(f->C_GetInfo(&info) == CKR_OK, "C_GetInfo passes");
	check(f->C_GetSlotInfo(slot, &si) == CKR_DEVICE_MEMORY,
	      "2nd C_GetSlotInfo fails with CKR_DEVICE_MEMORY");
	check(f->C_GetInfo(&info) == CKR_OK, "C_GetInfo still passes");
	check(f->C_GetSlotInfo(slot, &si) == CKR_OK, "3rd C_GetSlotInfo passes");
	check(f->C_Finalize(NULL) == CKR_OK, "C_Finalize passes");
}

/* Initialize through the loaded module, open a session, log in and find
 * the private key k1 (each step a check) */
static void login_find_k1(CK_SESSION_HANDLE *s, CK_OBJECT_HANDLE *k)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE q[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_LABEL, "k1", 2 } };
	CK_ULONG n = 0;

	check(f->C_Initialize(NULL) == CKR_OK, "C_Initialize");
	check(f->C_OpenSession(token_slot(), CKF_SERIAL_SESSION, NULL, NULL, s) == CKR_OK,
	      "C_OpenSession");
	check(f->C_Login(*s, CKU_USER, (CK_UTF8CHAR_PTR)T_USERPIN, strlen(T_USERPIN)) ==
	      CKR_OK, "C_Login");
	check(f->C_FindObjectsInit(*s, q, 2) == CKR_OK, "C_FindObjectsInit");
	check(f->C_FindObjects(*s, k, 1, &n) == CKR_OK && n == 1, "the key k1 found");
	check(f->C_FindObjectsFinal(*s) == CKR_OK, "C_FindObjectsFinal");
}

/* P11SHIM_FAIL_FUNC=C_Sign alone (P11SHIM_FAIL_AT defaults to 1), always:
 * a real session and key through the shim; every C_Sign fails, the rest
 * works */
static void case_sign(void)
{
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE k;
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	CK_BYTE digest[32] = { 1, 2, 3 }, sig[128];
	CK_ULONG siglen = sizeof(sig);

	setenv("P11SHIM_FAIL_FUNC", "C_Sign", 1);
	check(load(shim_path) == CKR_OK, "shim C_GetFunctionList");
	login_find_k1(&s, &k);
	check(f->C_SignInit(s, &mech, k) == CKR_OK, "C_SignInit passes");
	check(f->C_Sign(s, digest, sizeof(digest), sig, &siglen) == CKR_DEVICE_REMOVED,
	      "C_Sign fails");
	siglen = sizeof(sig);
	check(f->C_Sign(s, digest, sizeof(digest), sig, &siglen) == CKR_DEVICE_REMOVED,
	      "the next C_Sign fails too (always)");
	check(f->C_CloseSession(s) == CKR_OK, "C_CloseSession passes");
	check(f->C_Finalize(NULL) == CKR_OK, "C_Finalize passes");
}

/* the same with P11SHIM_FAIL_MODE=once: the first C_Sign fails (not
 * forwarded), the second completes the operation in the real module */
static void case_sign_once(void)
{
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE k;
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	CK_BYTE digest[32] = { 1, 2, 3 }, sig[128];
	CK_ULONG siglen = sizeof(sig);

	setenv("P11SHIM_FAIL_FUNC", "C_Sign", 1);
	setenv("P11SHIM_FAIL_MODE", "once", 1);
	setenv("P11SHIM_FAIL_RV", "CKR_FUNCTION_FAILED", 1);
	check(load(shim_path) == CKR_OK, "shim C_GetFunctionList");
	login_find_k1(&s, &k);
	check(f->C_SignInit(s, &mech, k) == CKR_OK, "C_SignInit");
	check(f->C_Sign(s, digest, sizeof(digest), sig, &siglen) == CKR_FUNCTION_FAILED,
	      "the first C_Sign fails");
	siglen = sizeof(sig);
	check(f->C_Sign(s, digest, sizeof(digest), sig, &siglen) == CKR_OK && siglen == 64,
	      "the second C_Sign signs (%lu bytes)", siglen);
	check(f->C_Finalize(NULL) == CKR_OK, "C_Finalize");
}

/* P11SHIM_DELAY: lower bounds only (a loaded machine may be slower) */
static void case_delay(void)
{
	CK_INFO info;
	CK_ULONG n = 0;
	double t;

	setenv("P11SHIM_DELAY", "*:20,C_GetInfo:300", 1);
	check(load(shim_path) == CKR_OK, "shim C_GetFunctionList");
	check(f->C_Initialize(NULL) == CKR_OK, "C_Initialize");
	t = now_ms();
	check(f->C_GetInfo(&info) == CKR_OK, "C_GetInfo");
	t = now_ms() - t;
	check(t >= 300, "C_GetInfo took %.1f ms, at least 300", t);
	t = now_ms();
	check(f->C_GetSlotList(CK_TRUE, NULL, &n) == CKR_OK, "C_GetSlotList");
	t = now_ms() - t;
	check(t >= 20, "C_GetSlotList (\"*\") took %.1f ms, at least 20", t);
	check(f->C_Finalize(NULL) == CKR_OK, "C_Finalize");
}

/* P11SHIM_KEYGEN=extractable survives: the private key comes out
 * extractable and not sensitive although the template says otherwise */
static void case_keygen(void)
{
	CK_SESSION_HANDLE s;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE, sens = CK_TRUE, extr = CK_FALSE;
	CK_BYTE p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
	CK_MECHANISM mech = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pub[] = { { CKA_EC_PARAMS, p256, sizeof(p256) } };
	CK_ATTRIBUTE priv[] = { { CKA_SENSITIVE, &yes, sizeof(yes) },
				{ CKA_EXTRACTABLE, &no, sizeof(no) } };
	CK_ATTRIBUTE got[] = { { CKA_SENSITIVE, &sens, sizeof(sens) },
			       { CKA_EXTRACTABLE, &extr, sizeof(extr) } };
	CK_OBJECT_HANDLE hpub, hpriv;

	setenv("P11SHIM_KEYGEN", "extractable", 1);
	check(load(shim_path) == CKR_OK, "shim C_GetFunctionList");
	check(f->C_Initialize(NULL) == CKR_OK, "C_Initialize");
	check(f->C_OpenSession(token_slot(), CKF_SERIAL_SESSION | CKF_RW_SESSION,
			       NULL, NULL, &s) == CKR_OK, "C_OpenSession");
	check(f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)T_USERPIN, strlen(T_USERPIN)) ==
	      CKR_OK, "C_Login");
	check(f->C_GenerateKeyPair(s, &mech, pub, 1, priv, 2, &hpub, &hpriv) == CKR_OK,
	      "a session key pair");
	check(f->C_GetAttributeValue(s, hpriv, got, 2) == CKR_OK, "its attributes");
	check(sens == CK_FALSE && extr == CK_TRUE,
	      "CKA_SENSITIVE %d, CKA_EXTRACTABLE %d: the template was ignored", sens, extr);
	check(f->C_Finalize(NULL) == CKR_OK, "C_Finalize");
}

/* the slots of the two tokens, each slot's C_GetTokenInfo called once */
static void slots_both(CK_SLOT_ID *s1, CK_SLOT_ID *s2)
{
	CK_SLOT_ID slots[8];
	CK_ULONG n = 8, i;
	CK_TOKEN_INFO ti;

	*s1 = *s2 = 0;
	check(f->C_GetSlotList(CK_TRUE, slots, &n) == CKR_OK, "C_GetSlotList");
	for (i = 0; i < n; i++) {
		if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		if (memcmp(ti.label, T_LABEL " ", strlen(T_LABEL) + 1) == 0)
			*s1 = slots[i];
		else if (memcmp(ti.label, T_LABEL2 " ", strlen(T_LABEL2) + 1) == 0)
			*s2 = slots[i];
	}
}

/* P11SHIM_TOKEN (the first token) with FAIL_AT=3 once: only calls about
 * that token count (its slot's, its sessions'); the third of them fails,
 * calls about the other token and slot-less calls never do */
static void case_token_once(void)
{
	CK_SLOT_ID s1, s2;
	CK_SESSION_HANDLE h1, h2;
	CK_SESSION_INFO si;
	CK_INFO info;
	CK_ULONG n = 0;

	setenv("P11SHIM_TOKEN", getenv("T_SERIAL1"), 1);
	setenv("P11SHIM_FAIL_AT", "3", 1);
	setenv("P11SHIM_FAIL_MODE", "once", 1);
	check(load(shim_path) == CKR_OK, "shim C_GetFunctionList");
	check(f->C_Initialize(NULL) == CKR_OK, "C_Initialize (slot-less)");
	check(f->C_GetInfo(&info) == CKR_OK, "C_GetInfo (slot-less)");
	check(f->C_GetSlotList(CK_TRUE, NULL, &n) == CKR_OK, "C_GetSlotList (slot-less)");
	slots_both(&s1, &s2);   /* the target's 1st: C_GetTokenInfo(s1) */
	check(s1 != 0 && s2 != 0 && s1 != s2, "both tokens seen");
	check(f->C_OpenSession(s2, CKF_SERIAL_SESSION, NULL, NULL, &h2) == CKR_OK,
	      "C_OpenSession on the other token");
	check(f->C_OpenSession(s1, CKF_SERIAL_SESSION, NULL, NULL, &h1) == CKR_OK,
	      "C_OpenSession on the target token: its 2nd call");
	check(f->C_Login(h2, CKU_USER, (CK_UTF8CHAR_PTR)T_USERPIN, strlen(T_USERPIN)) ==
	      CKR_OK, "C_Login on the other token");
	check(f->C_Login(h1, CKU_USER, (CK_UTF8CHAR_PTR)T_USERPIN, strlen(T_USERPIN)) ==
	      CKR_DEVICE_REMOVED, "C_Login on the target's session: its 3rd call, fails");
	check(f->C_Login(h1, CKU_USER, (CK_UTF8CHAR_PTR)T_USERPIN, strlen(T_USERPIN)) ==
	      CKR_OK, "C_Login on the target's session again: passes (once)");
	check(f->C_GetSessionInfo(h1, &si) == CKR_OK && si.slotID == s1,
	      "C_GetSessionInfo on the target's session");
	check(f->C_Finalize(NULL) == CKR_OK, "C_Finalize (slot-less)");
}

/* P11SHIM_TOKEN (the second token), FAIL_AT=1 always: the token is
 * "pulled out": every call about it fails, from its first on, sessions
 * opened before included (FAIL_FUNC=C_Login: the session opens first);
 * the first token works throughout */
static void case_token_pulled(void)
{
	CK_SLOT_ID s1, s2;
	CK_SESSION_HANDLE h1, h2;
	CK_SESSION_INFO si;
	CK_TOKEN_INFO ti;
	CK_INFO info;

	setenv("P11SHIM_TOKEN", getenv("T_SERIAL2"), 1);
	setenv("P11SHIM_FAIL_FUNC", "C_Login,C_GetSessionInfo,C_GetTokenInfo,C_CloseSession", 1);
	check(load(shim_path) == CKR_OK, "shim C_GetFunctionList");
	check(f->C_Initialize(NULL) == CKR_OK, "C_Initialize");
	s1 = slot_of(T_LABEL, NULL);
	/* the second token's slot cannot be found by label now: slot_of
	 * fails its C_GetTokenInfo; take the slot whose token info fails */
	{
		CK_SLOT_ID slots[8];
		CK_ULONG n = 8, i;

		s2 = 0;
		check(f->C_GetSlotList(CK_TRUE, slots, &n) == CKR_OK, "C_GetSlotList");
		for (i = 0; i < n; i++)
			if (f->C_GetTokenInfo(slots[i], &ti) == CKR_DEVICE_REMOVED)
				s2 = slots[i];
	}
	check(s1 != 0 && s2 != 0 && s1 != s2, "the target's C_GetTokenInfo fails, the other's not");
	check(f->C_OpenSession(s2, CKF_SERIAL_SESSION, NULL, NULL, &h2) == CKR_OK,
	      "C_OpenSession on the target (not in FAIL_FUNC)");
	check(f->C_OpenSession(s1, CKF_SERIAL_SESSION, NULL, NULL, &h1) == CKR_OK,
	      "C_OpenSession on the other token");
	check(f->C_Login(h2, CKU_USER, (CK_UTF8CHAR_PTR)T_USERPIN, strlen(T_USERPIN)) ==
	      CKR_DEVICE_REMOVED, "C_Login on the target's session fails");
	check(f->C_Login(h1, CKU_USER, (CK_UTF8CHAR_PTR)T_USERPIN, strlen(T_USERPIN)) ==
	      CKR_OK, "C_Login on the other token's session passes");
	check(f->C_GetSessionInfo(h2, &si) == CKR_DEVICE_REMOVED,
	      "C_GetSessionInfo on the target's session fails");
	check(f->C_GetSessionInfo(h1, &si) == CKR_OK && si.slotID == s1,
	      "C_GetSessionInfo on the other's session passes");
	check(f->C_GetInfo(&info) == CKR_OK, "C_GetInfo passes");
	check(f->C_CloseSession(h2) == CKR_DEVICE_REMOVED, "C_CloseSession of the target's fails");
	check(f->C_CloseSession(h1) == CKR_OK, "C_CloseSession of the other's passes");
	check(f->C_Finalize(NULL) == CKR_OK, "C_Finalize passes");
}

/* P11SHIM_TOKEN with P11SHIM_DELAY: only the target's calls are slowed
 * (a lower bound for the target; the other's call is only required to
 * take less than the whole delay) */
static void case_token_delay(void)
{
	CK_SLOT_ID s1, s2;
	CK_SLOT_INFO si;
	double t1, t2;

	setenv("P11SHIM_TOKEN", getenv("T_SERIAL1"), 1);
	setenv("P11SHIM_DELAY", "C_GetSlotInfo:2000", 1);
	check(load(shim_path) == CKR_OK, "shim C_GetFunctionList");
	check(f->C_Initialize(NULL) == CKR_OK, "C_Initialize");
	s1 = slot_of(T_LABEL, NULL);
	s2 = slot_of(T_LABEL2, NULL);
	t1 = now_ms();
	check(f->C_GetSlotInfo(s1, &si) == CKR_OK, "C_GetSlotInfo target");
	t1 = now_ms() - t1;
	t2 = now_ms();
	check(f->C_GetSlotInfo(s2, &si) == CKR_OK, "C_GetSlotInfo other");
	t2 = now_ms() - t2;
	check(t1 >= 2000, "the target's call took %.1f ms, at least 2000", t1);
	check(t2 < 2000, "the other's call took %.1f ms: not delayed", t2);
	check(f->C_Finalize(NULL) == CKR_OK, "C_Finalize");
}

/* one P11SHIM_TIMES line "PID NAME CALLS TOTAL_US MAX_US" of PID for
 * NAME: 1 and its figures if found */
static int times_find(const char *buf, int nl, long pid, const char *name,
		      unsigned long *calls, unsigned long *tot, unsigned long *mx)
{
	char fn[64];
	unsigned long c, t, m;
	long p;
	int i, hits = 0;

	for (i = 0; i < nl; i++)
		if (sscanf(trace_line(buf, i), "%ld %63s %lu %lu %lu", &p, fn, &c,
			   &t, &m) == 5 && p == pid && strcmp(fn, name) == 0) {
			*calls = c;
			*tot = t;
			*mx = m;
			hits++;
		}
	return hits;
}

/* P11SHIM_TIMES: calls and times per function, a block at C_Finalize and
 * one at exit(); a forked child writes only its own calls */
static void case_times(void)
{
	unsigned long c, tot, mx;
	const char *buf;
	CK_INFO info;
	CK_ULONG n = 0;
	pid_t kid;
	int nl, st = 0, i;

	setenv("P11SHIM_TIMES", trace, 1);
	setenv("P11SHIM_DELAY", "C_GetInfo:50", 1);
	check(load(shim_path) == CKR_OK, "shim C_GetFunctionList");
	check(f->C_Initialize(NULL) == CKR_OK, "C_Initialize");
	for (i = 0; i < 3; i++)
		check(f->C_GetInfo(&info) == CKR_OK, "C_GetInfo");
	fflush(stdout);
	kid = fork();
	if (kid == 0) {
		f->C_GetInfo(&info);
		f->C_GetInfo(&info);
		exit(0);        /* the shim writes at exit() */
	}
	waitpid(kid, &st, 0);
	check(WIFEXITED(st), "the child exited");
	check(f->C_Finalize(NULL) == CKR_OK, "C_Finalize");
	buf = trace_read(&nl);
	check(nl == 4, "4 lines: 1 of the child, 3 at C_Finalize; got %d", nl);
	check(times_find(buf, nl, kid, "C_GetInfo", &c, &tot, &mx) == 1 && c == 2 &&
	      tot >= 100000 && mx >= 50000 && mx <= tot,
	      "child: C_GetInfo 2 calls, >= 100 ms, max >= 50 ms: %lu %lu %lu", c, tot, mx);
	check(times_find(buf, nl, getpid(), "C_GetInfo", &c, &tot, &mx) == 1 && c == 3 &&
	      tot >= 150000 && mx >= 50000 && mx <= tot,
	      "parent: C_GetInfo 3 calls (not the child's), >= 150 ms: %lu %lu %lu", c, tot, mx);
	check(times_find(buf, nl, getpid(), "C_Initialize", &c, &tot, &mx) == 1 && c == 1,
	      "parent: C_Initialize 1 call");
	check(times_find(buf, nl, getpid(), "C_Finalize", &c, &tot, &mx) == 1 && c == 1,
	      "parent: C_Finalize 1 call");
	/* counting starts again after a write */
	check(f->C_Initialize(NULL) == CKR_OK, "C_Initialize again");
	check(f->C_GetSlotList(CK_TRUE, NULL, &n) == CKR_OK, "C_GetSlotList");
	check(f->C_Finalize(NULL) == CKR_OK, "C_Finalize again");
	buf = trace_read(&nl);
	check(nl == 7, "3 more lines; got %d", nl);
	check(times_find(buf, nl, getpid(), "C_Initialize", &c, &tot, &mx) == 2 && c == 1,
	      "the second block counts its own C_Initialize: %lu", c);
	check(times_find(buf, nl, getpid(), "C_GetSlotList", &c, &tot, &mx) == 1 && c == 1,
	      "and C_GetSlotList once");
}

/* a configuration the shim cannot read: C_GetFunctionList fails */
static void case_badcfg(void)
{
	const char *var = getenv("T_BAD_VAR"), *val = getenv("T_BAD_VAL");

	setenv(var, val, 1);
	check(load(shim_path) == CKR_ARGUMENTS_BAD,
	      "%s=%s: C_GetFunctionList answers CKR_ARGUMENTS_BAD", var, val);
}

/* --- the parent ------------------------------------------------------------ */

static int rm_one(const char *p, const struct stat *st, int fl, struct FTW *ftw)
{
	(void)st; (void)fl; (void)ftw;
	return remove(p);
}

/* run CASE in a child with a clean P11SHIM_* environment */
static void run(const char *name, void (*fn)(void))
{
	pid_t pid;
	int st = 0;

	fflush(stdout);
	unlink(trace);
	pid = fork();
	if (pid == 0) {
		unsetenv("P11SHIM_FAIL_AT");
		unsetenv("P11SHIM_FAIL_FUNC");
		unsetenv("P11SHIM_FAIL_RV");
		unsetenv("P11SHIM_FAIL_MODE");
		unsetenv("P11SHIM_DELAY");
		unsetenv("P11SHIM_TRACE");
		unsetenv("P11SHIM_KEYGEN");
		unsetenv("P11SHIM_TOKEN");
		unsetenv("P11SHIM_TIMES");
		setenv("P11SHIM_MODULE", SOFTHSM, 1);
		fn();
		fflush(stdout);
		_exit(c_failed > 100 ? 100 : c_failed);
	}
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s (%s %d)", name,
	   WIFEXITED(st) ? "failed checks" : "signal",
	   WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

int main(int argc, char **argv)
{
	static const char *bad[][2] = {
		{ "P11SHIM_FAIL_RV", "CKR_NO_SUCH_THING" },
		{ "P11SHIM_FAIL_AT", "3x" },
		{ "P11SHIM_FAIL_MODE", "sometimes" },
		{ "P11SHIM_FAIL_FUNC", "C_Sign,C_Nope" },
		{ "P11SHIM_DELAY", "C_Sign" },
		{ "P11SHIM_DELAY", "C_Sign:-5" },
		{ "P11SHIM_TOKEN", "0123456789abcdef0" },
		{ "P11SHIM_TIMES", "/nonexistent/dir/times" },
	};
	char conf[300], sn1[17], sn2[17];
	FILE *fp;
	size_t i;

	if (argc != 2) {
		fprintf(stderr, "usage: %s SHIM.so\n", argv[0]);
		return 2;
	}
	shim_path = argv[1];
	snprintf(dir, sizeof(dir), "%s/p11shim.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(dir) == NULL)
		return 99;
	snprintf(conf, sizeof(conf), "%s/softhsm2.conf", dir);
	snprintf(trace, sizeof(trace), "%s/tokens", dir);
	mkdir(trace, 0700);
	fp = fopen(conf, "w");
	if (fp == NULL)
		return 99;
	fprintf(fp, "directories.tokendir = %s\nobjectstore.backend = file\n"
		"log.level = ERROR\n", trace);
	fclose(fp);
	setenv("SOFTHSM2_CONF", conf, 1);
	snprintf(trace, sizeof(trace), "%s/trace", dir);
	snprintf(serials, sizeof(serials), "%s/serials", dir);

	run("setup: a SoftHSM2 token with an EC key", case_setup);
	run("setup: a second token", case_setup2);
	fp = fopen(serials, "r");
	if (fp == NULL || fscanf(fp, "%16s %16s", sn1, sn2) != 2)
		sn1[0] = sn2[0] = '\0';
	if (fp != NULL)
		fclose(fp);
	setenv("T_SERIAL1", sn1, 1);
	setenv("T_SERIAL2", sn2, 1);
	run("no fault: every call forwarded, counted 1..N across 4 threads, traced",
	    case_counts);
	run("FAIL_AT=3 once: only call 3 fails, traced as injected", case_once);
	run("FAIL_AT=3 always, FAIL_RV=0x30: call 3 and every later one fail", case_always);
	run("FAIL_FUNC=C_GetSlotInfo FAIL_AT=2 once: the 2nd C_GetSlotInfo fails, nothing else",
	    case_func);
	run("FAIL_FUNC=C_Sign: every C_Sign fails, a real session otherwise works", case_sign);
	run("FAIL_FUNC=C_Sign once: the second C_Sign signs", case_sign_once);
	run("DELAY=*:20,C_GetInfo:300: the calls take at least that long", case_delay);
	run("KEYGEN=extractable: the private-key template is ignored", case_keygen);
	run("TOKEN=first FAIL_AT=3 once: the 3rd call about that token fails, no other",
	    case_token_once);
	run("TOKEN=second FAIL_FUNC always: its calls fail (sessions too), the other's pass",
	    case_token_pulled);
	run("TOKEN=first DELAY: only the target's calls are slowed", case_token_delay);
	run("TIMES: calls, total and max per function; a block at C_Finalize and at exit",
	    case_times);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char name[128];

		setenv("T_BAD_VAR", bad[i][0], 1);
		setenv("T_BAD_VAL", bad[i][1], 1);
		snprintf(name, sizeof(name), "%s=%s: refused", bad[i][0], bad[i][1]);
		run(name, case_badcfg);
	}
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	return tap_done();
}

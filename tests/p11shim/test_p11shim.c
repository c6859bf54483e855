/*
 * test_p11shim.c - the fault module itself (tests/p11shim/p11shim.c)
 * against SoftHSM2: it counts every call (also from several threads),
 * fails the Nth call once or from then on, only calls of a named
 * function if told, delays chosen calls, traces each call, keeps its
 * keygen hook, and refuses a configuration it cannot read.
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
#define T_USERPIN "5u1t"
#define T_SOPIN "50p1n"
#define N_THREADS 4
#define N_PER_THREAD 250

static const char *shim_path;
static char dir[256];
static char trace[300];
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
	/* SoftHSM2: the test token and a free slot */
	check(f->C_GetSlotList(CK_TRUE, NULL, &n) == CKR_OK && n == 2,
	      "C_GetSlotList (count) forwarded: %lu slots", n);
	n = 8;
	check(f->C_GetSlotList(CK_TRUE, slots, &n) == CKR_OK && n == 2,
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
	};
	char conf[300];
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

	run("setup: a SoftHSM2 token with an EC key", case_setup);
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

/*
 * tpm_tcti.c - a few TPM commands of our own, before tpm2-pkcs11 is
 * loaded: TPM2_GetCapability for the dictionary-attack settings and the
 * loaded handles, TPM2_FlushContext for what dead processes left behind.
 *
 * The TCTI loader (libtss2-tctildr, a dependency of tpm2-pkcs11) is
 * loaded at run time, so scep-agent neither links nor starts the TPM
 * stack unless a TPM is used. A TCTI context begins with the common
 * fields the TCG TSS TCTI specification fixes (magic, version, then the
 * transmit/receive/finalize functions); commands are marshalled by hand
 * (big-endian, TPM_ST_NO_SESSIONS).
 */
#include "tpm_int.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sa_err.h"
#include "sa_log.h"

typedef uint32_t tss_rc;

/* TSS2_TCTI_CONTEXT_COMMON_V1 (TCG TSS 2.0 TCTI specification). */
struct tcti_common {
	uint64_t magic;
	uint32_t version;
	tss_rc (*transmit)(void *ctx, size_t size, const uint8_t *command);
	tss_rc (*receive)(void *ctx, size_t *size, uint8_t *response,
			  int32_t timeout_ms);
	void (*finalize)(void *ctx);
	tss_rc (*cancel)(void *ctx);
	tss_rc (*get_poll_handles)(void *ctx, void *handles, size_t *n);
	tss_rc (*set_locality)(void *ctx, uint8_t locality);
};

typedef tss_rc ldr_init_fn(const char *name_conf, void **ctx);
typedef void ldr_fini_fn(void **ctx);

#define TPM_ST_NO_SESSIONS 0x8001
#define TPM_CC_GET_CAPABILITY 0x0000017a
#define TPM_CC_FLUSH_CONTEXT 0x00000165
#define TPM_CAP_HANDLES 1u
#define TPM_CAP_TPM_PROPERTIES 6u
#define TPM_PT_PERMANENT 0x200u
#define TPM_PT_LOCKOUT_COUNTER 0x20eu
#define TPM_PT_MAX_AUTH_FAIL 0x20fu
#define TPM_PT_LOCKOUT_INTERVAL 0x210u
#define TPM_PT_LOCKOUT_RECOVERY 0x211u
#define TPM_HT_TRANSIENT 0x80000000u
#define TPM_HT_HMAC_SESSION 0x02000000u   /* loaded sessions */
#define TPM_HT_POLICY_SESSION 0x03000000u /* saved (active) sessions */
#define TPMA_PERMANENT_LOCKOUT_AUTH_SET (1u << 2)
#define TPMA_PERMANENT_IN_LOCKOUT (1u << 9)
#define TCTI_TIMEOUT_MS 30000

struct tcti {
	void *dl;
	ldr_fini_fn *fini;
	void *ctx;
	int saved_fd; /* stderr while the TSS may log on it */
};

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* A command's header: tag (no sessions), size, command code. */
static void cmd_header(uint8_t *cmd, size_t len, uint32_t cc)
{
	cmd[0] = TPM_ST_NO_SESSIONS >> 8;
	cmd[1] = TPM_ST_NO_SESSIONS & 0xff;
	put32(cmd + 2, (uint32_t)len);
	put32(cmd + 6, cc);
}

/* One command, one response. 0 and the TPM's response code in *trc, or
 * SA_EKEY when the TCTI fails. */
static int tcti_call(struct tcti *t, const uint8_t *cmd, size_t len,
		     uint8_t *resp, size_t *rlen, uint32_t *trc)
{
	struct tcti_common *c = t->ctx;
	tss_rc r;

	r = c->transmit(t->ctx, len, cmd);
	if (r == 0)
		r = c->receive(t->ctx, rlen, resp, TCTI_TIMEOUT_MS);
	if (r != 0)
		return sa_fail_noossl(SA_EKEY, "the TPM did not answer through "
				      "TCTI '%s' (TSS2 response code 0x%x); is "
				      "another program using it without a "
				      "resource manager?", tpm_state.tcti,
				      (unsigned)r);
	if (*rlen < 10)
		return sa_fail_noossl(SA_EKEY, "the TPM's answer through TCTI "
				      "'%s' is too short", tpm_state.tcti);
	*trc = get32(resp + 6);
	return 0;
}

/* TPM2_GetCapability(cap, prop, count): the response's payload after
 * moreData and the capability, in resp; *plen its length. */
static int get_cap(struct tcti *t, uint32_t cap, uint32_t prop, uint32_t count,
		   uint8_t *resp, size_t rsz, const uint8_t **payload,
		   size_t *plen)
{
	uint8_t cmd[22];
	size_t rlen = rsz;
	uint32_t trc;
	int rc;

	cmd_header(cmd, sizeof(cmd), TPM_CC_GET_CAPABILITY);
	put32(cmd + 10, cap);
	put32(cmd + 14, prop);
	put32(cmd + 18, count);
	rc = tcti_call(t, cmd, sizeof(cmd), resp, &rlen, &trc);
	if (rc < 0)
		return rc;
	if (trc != 0 || rlen < 19)
		return sa_fail_noossl(SA_EKEY, "TPM2_GetCapability failed through "
				      "TCTI '%s' (TPM_RC 0x%x)", tpm_state.tcti,
				      (unsigned)trc);
	*payload = resp + 15; /* header 10, moreData 1, capability 4 */
	*plen = rlen - 15;
	return 0;
}

static int flush(struct tcti *t, uint32_t h)
{
	uint8_t cmd[14], resp[64];
	size_t rlen = sizeof(resp);
	uint32_t trc;
	int rc;

	cmd_header(cmd, sizeof(cmd), TPM_CC_FLUSH_CONTEXT);
	put32(cmd + 10, h);
	rc = tcti_call(t, cmd, sizeof(cmd), resp, &rlen, &trc);
	if (rc == 0 && trc != 0)
		sa_verbose("TPM2_FlushContext(0x%08x): TPM_RC 0x%x", (unsigned)h,
			   (unsigned)trc);
	return rc == 0 && trc == 0 ? 1 : rc < 0 ? rc : 0;
}

/* Flush the handles of one range; *n counts them. */
static int flush_range(struct tcti *t, uint32_t first, unsigned int *n)
{
	uint8_t resp[1024];
	uint32_t hs[128];
	const uint8_t *p;
	size_t len, i, cnt;
	int rc;

	rc = get_cap(t, TPM_CAP_HANDLES, first, 128, resp, sizeof(resp), &p,
		     &len);
	if (rc < 0)
		return rc;
	if (len < 4)
		return 0;
	cnt = get32(p);
	if (cnt > 128 || 4 + 4 * cnt > len)
		cnt = 0;
	for (i = 0; i < cnt; i++)
		hs[i] = get32(p + 4 + 4 * i);
	for (i = 0; i < cnt; i++) {
		/* only the range asked for: GetCapability goes on past it */
		if ((hs[i] & 0xff000000u) != (first & 0xff000000u))
			continue;
		rc = flush(t, hs[i]);
		if (rc < 0)
			return rc;
		*n += (unsigned int)rc;
	}
	return 0;
}

static int read_da(struct tcti *t, struct tpm_da *da)
{
	uint8_t resp[512];
	const uint8_t *p;
	size_t len, i, cnt;
	int rc;

	rc = get_cap(t, TPM_CAP_TPM_PROPERTIES, TPM_PT_PERMANENT, 32, resp,
		     sizeof(resp), &p, &len);
	if (rc < 0)
		return rc;
	if (len < 4)
		return 0;
	cnt = get32(p);
	for (i = 0; i < cnt && 4 + 8 * (i + 1) <= len; i++) {
		uint32_t prop = get32(p + 4 + 8 * i), v = get32(p + 8 + 8 * i);

		switch (prop) {
		case TPM_PT_PERMANENT:
			da->in_lockout = (v & TPMA_PERMANENT_IN_LOCKOUT) != 0;
			da->lockout_auth_set = (v & TPMA_PERMANENT_LOCKOUT_AUTH_SET) != 0;
			break;
		case TPM_PT_LOCKOUT_COUNTER: da->counter = v; break;
		case TPM_PT_MAX_AUTH_FAIL: da->max_tries = v; da->known = 1; break;
		case TPM_PT_LOCKOUT_INTERVAL: da->interval_s = v; break;
		case TPM_PT_LOCKOUT_RECOVERY: da->recovery_s = v; break;
		}
	}
	return 0;
}

/* The TSS logs its own errors on stderr: hidden unless -d. */
static void quiet(struct tcti *t, int debug)
{
	int fd;

	t->saved_fd = -1;
	if (debug)
		return;
	fflush(stderr);
	fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	t->saved_fd = dup(STDERR_FILENO);
	if (t->saved_fd >= 0)
		dup2(fd, STDERR_FILENO);
	close(fd);
}

static void loud(struct tcti *t)
{
	if (t->saved_fd < 0)
		return;
	dup2(t->saved_fd, STDERR_FILENO);
	close(t->saved_fd);
	t->saved_fd = -1;
}

/* See tpm_int.h. */
int tpm_tcti_prepare(const char *tcti, int flush_all, int debug,
		     struct tpm_da *da, unsigned int *flushed_obj,
		     unsigned int *flushed_sess)
{
	struct tcti t;
	ldr_init_fn *init;
	tss_rc r;
	int rc;

	memset(&t, 0, sizeof(t));
	memset(da, 0, sizeof(*da));
	*flushed_obj = *flushed_sess = 0;
	t.dl = dlopen("libtss2-tctildr.so.0", RTLD_NOW | RTLD_LOCAL);
	if (t.dl == NULL) {
		sa_verbose("cannot load the TPM's TCTI loader (%s): leftovers "
			   "of dead processes are not flushed", dlerror());
		return 0;
	}
	init = (ldr_init_fn *)dlsym(t.dl, "Tss2_TctiLdr_Initialize");
	t.fini = (ldr_fini_fn *)dlsym(t.dl, "Tss2_TctiLdr_Finalize");
	if (init == NULL || t.fini == NULL) {
		dlclose(t.dl);
		return 0;
	}
	quiet(&t, debug);
	r = init(tcti, &t.ctx);
	loud(&t);
	if (r != 0 || t.ctx == NULL) {
		rc = sa_fail_noossl(SA_EKEY, "cannot reach the TPM through TCTI "
				    "'%s' (TSS2 response code 0x%x): %s", tcti,
				    (unsigned)r,
				    strncmp(tcti, "swtpm", 5) == 0 ||
				    strncmp(tcti, "mssim", 5) == 0 ?
				    "is the software TPM running on that host "
				    "and port?" : strncmp(tcti, "tabrmd", 6) == 0 ?
				    "is tpm2-abrmd running (and its D-Bus "
				    "policy letting this user in)?" :
				    "is the TPM there, and this user allowed "
				    "to open it (group tss)?");
		t.ctx = NULL;
		goto out;
	}
	quiet(&t, debug);
	rc = read_da(&t, da);
	if (rc == 0 && flush_all) {
		rc = flush_range(&t, TPM_HT_TRANSIENT, flushed_obj);
		if (rc == 0)
			rc = flush_range(&t, TPM_HT_HMAC_SESSION, flushed_sess);
		if (rc == 0)
			rc = flush_range(&t, TPM_HT_POLICY_SESSION, flushed_sess);
	}
	loud(&t);
out:
	if (t.ctx != NULL)
		t.fini(&t.ctx);
	/* the loader's libraries stay: tpm2-pkcs11 loads them again anyway */
	return rc;
}

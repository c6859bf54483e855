/* tpm_int.h - shared between the files of tpm/. */
#ifndef TPM_INT_H
#define TPM_INT_H

#include "tpm.h"

/* The TPM's dictionary-attack settings, read at set-up (tpm_tcti.c). */
struct tpm_da {
	int known;                  /* the values below were read */
	unsigned int counter;       /* TPM_PT_LOCKOUT_COUNTER */
	unsigned int max_tries;     /* TPM_PT_MAX_AUTH_FAIL */
	unsigned int interval_s;    /* TPM_PT_LOCKOUT_INTERVAL: one try forgiven */
	unsigned int recovery_s;    /* TPM_PT_LOCKOUT_RECOVERY: lockout auth retry */
	int in_lockout;             /* TPMA_PERMANENT inLockout */
	int lockout_auth_set;       /* TPMA_PERMANENT lockoutAuthSet */
};

/* What tpm_setup() learnt, for the diagnosis (tpm_diag.c). */
struct tpm_state {
	char tcti[512];
	int direct;                 /* no resource manager */
	int set_up;                 /* tpm_setup() succeeded */
	struct tpm_da da;
};
extern struct tpm_state tpm_state;

/*
 * Talk to the TPM through TCTI ourselves (libtss2-tctildr, loaded at run
 * time): read the dictionary-attack settings into *da and, when flush is
 * set, flush every transient object and session; *flushed_obj and
 * *flushed_sess count them. 0, or SA_EKEY with a sentence (no TPM there,
 * it does not answer). The connection is closed before returning.
 */
int tpm_tcti_prepare(const char *tcti, int flush, int debug,
		     struct tpm_da *da, unsigned int *flushed_obj,
		     unsigned int *flushed_sess);

/* The diagnosis handed to p11_capture_on() (p11_diag_fn). */
const char *tpm_diag(const char *func, unsigned long rv, const char *text,
		     int *unload_helps);

#endif

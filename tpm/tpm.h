/*
 * tpm.h - TPM 2.0 specifics on top of pkcs11/: find tpm2-pkcs11, set up
 * its environment (TCTI, store, backend, logging) before the module is
 * loaded, clear what dead processes left in a TPM that has no resource
 * manager, and put the TPM's own reasons (object memory, dictionary-attack
 * lockout) into the messages. Knows nothing of SCEP.
 */
#ifndef TPM_H
#define TPM_H

/* The user's TPM settings (--tpm, --tcti, --tpm-store; TPM, TCTI, TPMStore). */
struct tpm_opts {
	const char *module; /* --module with --tpm: tpm2-pkcs11 or a wrapper of
			     * it; NULL: tpm2-pkcs11 where the system has it */
	const char *tcti;   /* NULL: $TPM2_PKCS11_TCTI, else device:/dev/tpmrm0 */
	const char *store;  /* NULL: $TPM2_PKCS11_STORE, else the default */
	int debug;          /* -d: the module's and the TSS's logs shown */
};

/* The default TCTI: the kernel's resource manager. */
#define TPM_TCTI_DEFAULT "device:/dev/tpmrm0"

/*
 * Get the process ready to load tpm2-pkcs11: the TCTI checked (a device
 * that is missing or not ours to open is an error saying what to do),
 * the store directory made (0700), TPM2_PKCS11_TCTI/_STORE/_BACKEND and
 * the log settings exported, the module's stderr captured (pkcs11/
 * p11_capture_on) with the TPM diagnosis. On a TCTI without a resource
 * manager, transient objects and sessions that a process ended without
 * C_Finalize left loaded are flushed (with a warning: one process at a
 * time uses such a TPM, so what is loaded before we start is a leftover).
 * *module_out: the module path to load (caller frees). Call once, before
 * any token of the module is opened. 0 or SA_EKEY/SA_EUSAGE/SA_EIO.
 */
int tpm_setup(const struct tpm_opts *o, char **module_out);

/*
 * After the module is finalized (every token closed), on a TCTI without a
 * resource manager: flush what tpm2-pkcs11 itself left loaded (1.9 leaves
 * the primary key of C_InitToken, and a key after some failures), so the
 * next process finds the TPM as empty as we did. A no-op with a resource
 * manager or before tpm_setup().
 */
void tpm_finish(void);

/* tpm2-pkcs11's module path on this system, or NULL. Static string. */
const char *tpm_module_find(void);

/* The store directory tpm_setup() uses when none is given. Caller frees;
 * NULL when out of memory or no home directory is known. */
char *tpm_store_default(void);

/* 1: TCTI (a TPM2_PKCS11_TCTI string) talks to the TPM with no resource
 * manager in between (swtpm:, mssim:, device:/dev/tpmN); else 0. */
int tpm_tcti_is_direct(const char *tcti);

#endif

/*
 * tpm_diag.c - why a tpm2-pkcs11 call failed, in words: the module says
 * it on stderr (its "ERROR:" lines and the TSS's, captured by
 * pkcs11/p11_capture.c), with the TPM's response code; PKCS#11 only says
 * CKR_GENERAL_ERROR or CKR_PIN_*. What it means and the fix go into the
 * message.
 */
#include "tpm_int.h"

#include <stdio.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

static char msg[1200];

/* Did the module name TPM_RC code (as hex or in the TSS's words)? */
static int said(const char *text, const char *hex, const char *words)
{
	char h1[32], h2[32];

	snprintf(h1, sizeof(h1), "0x%s", hex);        /* "0x902" */
	snprintf(h2, sizeof(h2), "0x00000%s", hex);   /* "0x00000902" */
	return strstr(text, h1) != NULL || strstr(text, h2) != NULL ||
	       (words != NULL && strstr(text, words) != NULL);
}

static const char *memory(const char *what, const char *rc)
{
	if (tpm_state.direct)
		snprintf(msg, sizeof(msg), "the TPM is out of memory for %s "
			 "(TPM_RC %s): TCTI %s has no resource manager, so "
			 "whatever another program holds loaded now (or a "
			 "process left since this one started) fills it; stop "
			 "the other program, or use a resource manager: the "
			 "kernel's (--tcti device:/dev/tpmrm0) or tpm2-abrmd "
			 "(--tcti tabrmd); tpm2_flushcontext -t -l -s clears "
			 "leftovers by hand", what, rc, tpm_state.tcti);
	else
		snprintf(msg, sizeof(msg), "the TPM is out of memory for %s "
			 "(TPM_RC %s) even behind the resource manager of TCTI "
			 "%s: too many programs hold TPM objects or sessions at "
			 "once; run again when fewer do", what, rc,
			 tpm_state.tcti);
	return msg;
}

static const char *lockout(void)
{
	const struct tpm_da *da = &tpm_state.da;
	char when[160] = "";

	if (da->known && da->interval_s > 0)
		snprintf(when, sizeof(when), " (it forgives one failed try "
			 "every %u s, so the next PIN is tried after that)",
			 da->interval_s);
	snprintf(msg, sizeof(msg), "the TPM is in dictionary-attack lockout "
		 "after too many wrong PINs%s: it refuses every PIN until then, "
		 "and each new try with a wrong PIN prolongs it; scep-agent does "
		 "not retry. Recovery: wait, or let the TPM's owner clear it now "
		 "with tpm2_dictionarylockout --clear-lockout%s; then check the "
		 "PIN source before running again", when,
		 da->lockout_auth_set ? " -p LOCKOUT-AUTH (the lockout "
		 "authorization is set)" : "");
	return msg;
}

static const char *wrong_pin(void)
{
	const struct tpm_da *da = &tpm_state.da;

	if (da->known && da->max_tries > 0)
		snprintf(msg, sizeof(msg), "a wrong PIN counts toward the TPM's "
			 "dictionary-attack lockout: about %u of the %u failed "
			 "tries it allows are used now (it forgives one every "
			 "%u s); check the PIN before running again",
			 da->counter + 1 < da->max_tries ? da->counter + 1 :
			 da->max_tries, da->max_tries, da->interval_s);
	else
		snprintf(msg, sizeof(msg), "a wrong PIN counts toward the TPM's "
			 "dictionary-attack lockout; check the PIN before "
			 "running again");
	return msg;
}

/* See tpm_int.h. */
const char *tpm_diag(const char *func, unsigned long rv, const char *text,
		     int *unload_helps)
{
	(void)func;
	if (said(text, "902", "out of memory for object contexts")) {
		/* tpm2-pkcs11 keeps every key it used loaded until C_Logout */
		*unload_helps = 1;
		return memory("object contexts", "0x902");
	}
	if (said(text, "903", "out of memory for session contexts"))
		return memory("session contexts", "0x903");
	if (rv == CKR_PIN_LOCKED || said(text, "921", "DA lockout mode"))
		return lockout();
	if (rv == CKR_PIN_INCORRECT)
		return wrong_pin();
	return NULL;
}

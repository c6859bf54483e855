/*
 * shim_target.h - which token a PKCS#11 call is about, for the shim's
 * P11SHIM_TOKEN (tests/p11shim/README.md): slots by their token's serial,
 * sessions by the slot they were opened on.
 */
#ifndef SHIM_TARGET_H
#define SHIM_TARGET_H

#include <p11-kit/pkcs11.h>

/* Start targeting the token whose serial is SERIAL (borrowed, kept),
 * asking REAL (the real module) about slots and sessions. */
void target_init(CK_FUNCTION_LIST *real, const char *serial);

/* 1 if SLOT holds the target token, else 0. */
int target_slot(CK_SLOT_ID slot);

/* 1 if session S was opened on the target token's slot, else 0. */
int target_session(CK_SESSION_HANDLE s);

/* Bookkeeping after the real module answered CKR_OK: a session opened on
 * SLOT, a session closed, all sessions of SLOT closed, C_Finalize. */
void target_opened(CK_SLOT_ID slot, CK_SESSION_HANDLE s);
void target_closed(CK_SESSION_HANDLE s);
void target_closed_all(CK_SLOT_ID slot);
void target_reset(void);

#endif

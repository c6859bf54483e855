/*
 * shim_target.c - which token a call is about (P11SHIM_TOKEN): a slot is
 * the target's when the real module's C_GetTokenInfo shows the target
 * serial (remembered per slot once the token is initialised: a serial
 * does not change then); a session is the target's when it was opened on
 * such a slot (a session->slot map kept from C_OpenSession to
 * C_CloseSession, C_CloseAllSessions or C_Finalize). A session the map
 * does not hold (map full, or a handle never opened through the shim) is
 * looked up with the real C_GetSessionInfo.
 */
#include <pthread.h>
#include <string.h>

#include "shim_target.h"

#define TARGET_SLOTS 64
#define TARGET_SESSIONS 512

static CK_FUNCTION_LIST *t_real;
static char t_serial[17];
static pthread_mutex_t t_lock = PTHREAD_MUTEX_INITIALIZER;

/* slots whose answer is known (initialised tokens only) */
static struct { CK_SLOT_ID slot; int match; } t_slots[TARGET_SLOTS];
static int t_nslots;

/* open sessions: handle (0: a free entry) and whether on the target */
static struct { CK_SESSION_HANDLE s; CK_SLOT_ID slot; int match; } t_sess[TARGET_SESSIONS];

/* Start targeting SERIAL (at most 16 characters) through REAL. */
void target_init(CK_FUNCTION_LIST *real, const char *serial)
{
	t_real = real;
	strncpy(t_serial, serial, sizeof(t_serial) - 1);
}

/* the padded serial of CK_TOKEN_INFO equals t_serial */
static int serial_is(const CK_UTF8CHAR *sn)
{
	size_t n = strlen(t_serial), i;

	if (memcmp(sn, t_serial, n) != 0)
		return 0;
	for (i = n; i < 16; i++)
		if (sn[i] != ' ' && sn[i] != '\0')
			return 0;
	return 1;
}

/* 1 if SLOT holds the target token. */
int target_slot(CK_SLOT_ID slot)
{
	CK_TOKEN_INFO ti;
	int i, m;

	pthread_mutex_lock(&t_lock);
	for (i = 0; i < t_nslots; i++)
		if (t_slots[i].slot == slot) {
			m = t_slots[i].match;
			pthread_mutex_unlock(&t_lock);
			return m;
		}
	pthread_mutex_unlock(&t_lock);
	if (t_real == NULL || t_real->C_GetTokenInfo(slot, &ti) != CKR_OK)
		return 0;
	m = serial_is(ti.serialNumber);
	if (!(ti.flags & CKF_TOKEN_INITIALIZED))
		return m;
	pthread_mutex_lock(&t_lock);
	if (t_nslots < TARGET_SLOTS) {
		t_slots[t_nslots].slot = slot;
		t_slots[t_nslots].match = m;
		t_nslots++;
	}
	pthread_mutex_unlock(&t_lock);
	return m;
}

/* 1 if session S is on the target token's slot. */
int target_session(CK_SESSION_HANDLE s)
{
	CK_SESSION_INFO si;
	int i, m = -1;

	pthread_mutex_lock(&t_lock);
	for (i = 0; i < TARGET_SESSIONS && s != 0; i++)
		if (t_sess[i].s == s) {
			m = t_sess[i].match;
			break;
		}
	pthread_mutex_unlock(&t_lock);
	if (m >= 0)
		return m;
	if (t_real == NULL || t_real->C_GetSessionInfo(s, &si) != CKR_OK)
		return 0;
	return target_slot(si.slotID);
}

/* Remember session S, opened on SLOT. */
void target_opened(CK_SLOT_ID slot, CK_SESSION_HANDLE s)
{
	int m = target_slot(slot), i;

	pthread_mutex_lock(&t_lock);
	for (i = 0; i < TARGET_SESSIONS; i++)
		if (t_sess[i].s == 0 || t_sess[i].s == s) {
			t_sess[i].s = s;
			t_sess[i].slot = slot;
			t_sess[i].match = m;
			break;
		}
	pthread_mutex_unlock(&t_lock);
}

/* Forget session S. */
void target_closed(CK_SESSION_HANDLE s)
{
	int i;

	pthread_mutex_lock(&t_lock);
	for (i = 0; i < TARGET_SESSIONS; i++)
		if (t_sess[i].s == s)
			t_sess[i].s = 0;
	pthread_mutex_unlock(&t_lock);
}

/* Forget every session of SLOT. */
void target_closed_all(CK_SLOT_ID slot)
{
	int i;

	pthread_mutex_lock(&t_lock);
	for (i = 0; i < TARGET_SESSIONS; i++)
		if (t_sess[i].s != 0 && t_sess[i].slot == slot)
			t_sess[i].s = 0;
	pthread_mutex_unlock(&t_lock);
}

/* Forget every session and slot (C_Finalize: handles are reused after). */
void target_reset(void)
{
	pthread_mutex_lock(&t_lock);
	memset(t_sess, 0, sizeof(t_sess));
	t_nslots = 0;
	pthread_mutex_unlock(&t_lock);
}

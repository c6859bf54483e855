/*
 * p11_int.h - internals shared by the custody files (pkcs11/ only; unit
 * tests include it too). Not part of the API of p11.h.
 *
 * Everything PKCS#11 is ours: the module is loaded with dlopen() and
 * C_GetFunctionList, initialized once per process, and every call - slot
 * listing, login, key generation, attribute reads, certificate objects,
 * and the signatures and decryptions of token keys - goes through its
 * CK_FUNCTION_LIST on the one session we hold per slot. Token keys reach
 * OpenSSL as EVP_PKEY handles of our own small OpenSSL 3 provider
 * (p11_prov.c), which signs and decrypts on that session. No libp11: its
 * session pool hangs and its RSA loading crashes when a token fails in
 * the middle of a call (docs/faults.md).
 */
#ifndef P11_INT_H
#define P11_INT_H

#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>

#include <openssl/core_dispatch.h>

#include "p11.h"

/*
 * Per slot: our session and our login, both kept until the module is
 * unloaded. Tokens such as SoftHSM2 renumber object handles when a slot's
 * last session closes or the user logs out, which would leave the object
 * handles of key handles stale for a later p11_token on the same module.
 */
#define P11_PIN_MAX 256 /* room for a PIN and its NUL */

struct p11_slotstate {
	CK_SESSION_HANDLE sess;
	int open;
	int rw;
	int logged_in;   /* we did C_Login; C_Logout at unload */
	CK_OBJECT_HANDLE loaded; /* the key last used (p11_key_prepare) */
	char pin[P11_PIN_MAX];   /* the PIN of that login, for p11_unload_retry()
				 * ("" for a PIN pad); wiped at unload */
};

/*
 * A loaded module and its function list. Shared (reference-counted) by
 * every token open on the same module file in this process: a module is
 * initialized and finalized once.
 */
struct p11_module {
	void *dl;                /* dlopen() handle */
	CK_FUNCTION_LIST *fl;    /* the module's function list */
	int initialized;         /* we called C_Initialize: C_Finalize at unload */
	char *path;              /* as given */
	char *real;              /* realpath(), the sharing key */
	CK_SLOT_ID *slots;       /* the slot list, read once at load */
	unsigned int nslots;
	struct p11_slotstate *ss; /* nslots entries */
	int refs;
	struct p11_module *next;
};

struct p11_token {
	struct p11_module *mod;
	unsigned int slot;       /* index into mod->slots and mod->ss */
	CK_SLOT_ID slot_id;
	char *label;             /* the token's label, trimmed */
	struct p11_slotstate *ss; /* borrowed from mod->ss */
	CK_SESSION_HANDLE sess;  /* = ss->sess (read-write if possible) */
	int rw;
	int logged_in;           /* the user is logged in (by us) */
	CK_TOKEN_INFO info;
};

/* Where a PIN comes from. */
enum p11_pin_kind {
	P11_PIN_NONE = 0,
	P11_PIN_FILE,
	P11_PIN_ENV,
};


/* p11_uri.c */
int p11_uri_parse(const char *s, P11KitUri **out);
int p11_module_resolve(const char *opt_module, P11KitUri *uri, char **out);
int p11_pin_source_parse(const char *src, int *kind, char **arg);
char *p11_uri_format(P11KitUri *u, int type);
char *p11_hex(const unsigned char *p, size_t n);

/* p11_pin.c: fill pin (NUL-terminated, at most P11_PIN_MAX-1 chars). */
int p11_pin_get(const struct p11_pin_opts *po, P11KitUri *uri,
		const char *token_label, char *pin, size_t pinsz);
/*
 * p11_pin_get() for another PIN: what names it in the prompt and the
 * messages ("SO PIN", "New user PIN"); confirm: typed twice on a terminal.
 */
int p11_pin_get_as(const struct p11_pin_opts *po, P11KitUri *uri,
		   const char *what, int confirm, const char *token_label,
		   char *pin, size_t pinsz);
/* Wipe the PINs kept so that each source is read once per run. */
void p11_pin_forget(void);

/* p11_capture.c: around every module call (p11_wait.c). */
void p11_capture_begin(void);
void p11_capture_end(const char *func, CK_RV rv);
/* fd 2 back to the real stderr, if a call has it (async-signal-safe). */
void p11_capture_restore(void);
/* The diagnosis of the last failed call, or NULL; and forget it. */
const char *p11_capture_hint(void);
void p11_capture_hint_clear(void);
/* Did the last failed call say a logout would make room? Then forgets. */
int p11_capture_unload_helps(void);
/*
 * After a call on sess failed with rv: when the module said it has no room
 * for another loaded key (a TPM without resource manager holds about 3)
 * and a logout unloads them, log out and in again (the PIN this run logged
 * in with) and return 1: the caller repeats the call once. Else 0.
 */
int p11_unload_retry(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE sess, CK_RV rv);
/*
 * Before key obj is used on sess (0: a key pair about to be generated):
 * with p11_unload_between_keys() on, when the session last used another
 * key, log out and in again so that only one key is loaded at a time.
 */
void p11_key_prepare(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE sess,
		     CK_OBJECT_HANDLE obj);

/* p11_token.c */
int p11_module_get(const char *path, struct p11_module **out);
void p11_module_put(struct p11_module *m);
/* C_GetTokenInfo with NUL bytes in its text fields made blanks, as
 * PKCS#11 pads them (URIs made from it and matched against it agree). */
CK_RV p11_token_info(struct p11_module *m, CK_SLOT_ID sid, CK_TOKEN_INFO *ti);
/* Read m's slot list again (a token initialised, a reader plugged in);
 * open sessions stay with their slots. Only while no p11_token of m is
 * open (a token points into the slot states). */
int p11_module_rescan(struct p11_module *m);
int p11_rv_fail(int code, CK_RV rv, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
const char *p11_rv_str(CK_RV rv);
const char *p11_pin_flags_words(CK_FLAGS f);
char *p11_str_trim(const unsigned char *s, size_t n);
int p11_find(p11_token *t, CK_ATTRIBUTE *tmpl, CK_ULONG n,
	     CK_OBJECT_HANDLE **out, CK_ULONG *count);
int p11_attr_get1(p11_token *t, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type,
		  unsigned char **val, CK_ULONG *len);
int p11_attr_bool(p11_token *t, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type);
int p11_attr_ulong(p11_token *t, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type,
		   CK_ULONG *v);
char *p11_object_uri(p11_token *t, CK_OBJECT_CLASS cls, const char *label,
		     const unsigned char *id, size_t idlen);
int p11_need_rw(p11_token *t, const char *what);

/* p11_prov.c: token private keys as EVP_PKEY handles of our provider. */
/* Key data of the provider's key manager (p11_prov.c, p11_prov_ops.c). */
struct p11_pkey {
	int type;                /* EVP_PKEY_RSA or EVP_PKEY_EC */
	EVP_PKEY *pub;           /* public half (default provider) */
	CK_FUNCTION_LIST *fl;    /* NULL: public only (imported) */
	CK_SESSION_HANDLE sess;
	CK_OBJECT_HANDLE obj;
	char *what;              /* "key 'L' on token 'T'", for messages */
};
/* p11_prov_ops.c: the provider's signature and asymmetric cipher. */
extern const OSSL_DISPATCH p11_prov_signature[];
extern const OSSL_DISPATCH p11_prov_asym_cipher[];
/*
 * A handle for the private key object priv on t: signs (RSA PKCS#1 v1.5,
 * ECDSA) and decrypts (RSA PKCS#1 v1.5) with C_Sign/C_Decrypt on t's
 * session; its public half is read from the token (the private object,
 * else the public key or certificate object of the same CKA_ID). get1;
 * usable while t's module is loaded.
 */
int p11_prov_key_new(p11_token *t, CK_OBJECT_HANDLE priv, EVP_PKEY **out);
/* p11_pub.c: the public half of priv as a plain (default provider) key,
 * from the private object, else the public key or certificate object of
 * the same CKA_ID. get1. */
int p11_pubkey_read(p11_token *t, CK_OBJECT_HANDLE priv, EVP_PKEY **out);
/* Keep "what: CKR words (CK_RV 0x..)" for p11_fault(). */
void p11_fault_note(const char *what, CK_RV rv);
/* Record a failed token call (see p11_fault()), also in OpenSSL's error
 * queue for the caller's message; returns code. */
int p11_fault_set(int code, CK_RV rv, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Drop the provider when no module is loaded any more. */
void p11_prov_release(void);

/* p11_wait.c: a function list of our own that forwards every call to
 * real under the bounds of p11_wait_set() (p11.h); path (copied) names
 * the module in the message. The same real list (or ours) again gives
 * the same list. Never freed: modules stay mapped (RTLD_NODELETE). Beyond
 * a few modules at once, real itself is returned (with a warning). */
CK_FUNCTION_LIST *p11_wait_wrap(CK_FUNCTION_LIST *real, const char *path);

/* p11_key.c: count the private keys matching label/id (NULL: any); on
 * exactly one, its handle and its CKA_ID and CKA_LABEL (new buffers, empty
 * when it has none; SA_EKEY when the token fails reading them). */
int p11_key_raw_match(p11_token *t, const CK_ATTRIBUTE *label,
		      const CK_ATTRIBUTE *id, CK_ULONG *n,
		      CK_ATTRIBUTE *rid, CK_ATTRIBUTE *rlabel,
		      CK_OBJECT_HANDLE *obj);

/* p11_stage.c: the objects matching tmpl whose CKA_ID equals id (same 1)
 * or differs from it (same 0); *out a new array. A token that fails
 * reading a CKA_ID is an error (SA_EKEY), never "another id". */
int p11_find_by_id(p11_token *t, CK_ATTRIBUTE *tmpl, CK_ULONG n,
		   const unsigned char *id, size_t idlen, int same,
		   CK_OBJECT_HANDLE **out, CK_ULONG *count);

/* p11_keyobj.c: the custody object (p11.h). */
struct p11_keyobj {
	p11_token *t;            /* borrowed */
	CK_OBJECT_HANDLE priv;   /* the private key object */
	unsigned char *id;       /* CKA_ID (NULL, 0: the key has none) */
	size_t idlen;
	char *label;             /* the private key's CKA_LABEL ("" if none) */
	char *uri;               /* canonical URI (p11_object_uri) */
	EVP_PKEY *pkey;          /* our provider's handle, owned */
};
/* The object for private key priv of t: reads its CKA_ID and label, makes
 * its URI and handle. get1. */
int p11_keyobj_make(p11_token *t, CK_OBJECT_HANDLE priv, p11_keyobj **out);
/* k's private key now has label (len bytes): k's label and URI follow. */
int p11_keyobj_relabelled(p11_keyobj *k, const char *label, size_t len);
/* SA_EKEY, saying what cannot be done, when k has no CKA_ID. */
int p11_keyobj_need_id(const p11_keyobj *k, const char *what);

/* p11_retire.c: retire (KeepOld) or destroy the label's old pairs and
 * prune the retired ones beyond keep_old; see p11_key_commit(). */
int p11_retire_old_priv(p11_keyobj *k, const char *label, int keep_old);
int p11_retire_old_rest(p11_keyobj *k, const char *label, int keep_old);
int p11_retire_prune(p11_token *t, const char *label, int keep_old);

/* p11_cert.c */
int p11_key_id_for_pubkey(p11_token *t, EVP_PKEY *pub, unsigned char **id,
			  size_t *idlen, char **label);

#endif

/*
 * p11.h - key custody: PKCS#11 modules, RFC 7512 URIs, PIN sources, key
 * generation inside the token, EVP_PKEY handles for token keys (our own
 * OpenSSL 3 provider, p11_prov.c),
 * certificate objects in the token. Knows nothing of SCEP.
 *
 * All functions return 0 or a negative SA_E* code (agent/util/sa_err.h)
 * after recording a sentence with sa_fail(). PINs are never logged and
 * are wiped with OPENSSL_cleanse after use.
 */
#ifndef P11_H
#define P11_H

#include <stddef.h>
#include <stdio.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/*
 * Where the PIN comes from. Order: pin_file, pin_env, pin_value, the URI's
 * pin-source (file:/path, a plain path, or env:VAR), the URI's pin-value
 * (warned about: it shows in ps), a prompt on /dev/tty without echo when
 * stdin is a terminal and no_prompt is 0. None of them: SA_EPIN.
 */
struct p11_pin_opts {
	const char *pin_env;   /* name of an environment variable holding the PIN */
	const char *pin_file;  /* file whose first line is the PIN */
	const char *pin_value; /* a PIN the user wrote into a configuration file
				* (sscep's engine PIN); borrowed, the caller
				* wipes it */
	int no_prompt;         /* 1: never prompt, even on a terminal */
	const char *missing_hint; /* for a PIN other than the user PIN: how
				   * to give one ("use --so-pin-file F or
				   * --so-pin-env VAR") */
};

struct p11_open_opts {
	const char *module;    /* --module / config: a path, or a p11-kit module
				* name; overrides URI module-path/-name */
	struct p11_pin_opts pin;
	int need_login;        /* 1: log in (private objects, keygen, signing) */
};

/*
 * A token session: one module loaded (dlopen, C_Initialize), the token
 * matched by the URI's token attributes (token, manufacturer, serial,
 * model, slot-id...) - never "the first token"; at most one C_Login per
 * run. A wrong PIN is tried once only; CKF_USER_PIN_COUNT_LOW/FINAL_TRY/
 * LOCKED are reported in the message (SA_EPIN).
 *
 * Several p11_token objects may be open at once (other tokens, or the same
 * token again): they share the loaded module, its one session per slot and
 * its login; the last p11_token_close() of a module logs out, closes the
 * sessions and finalizes the module. Not thread-safe.
 */
typedef struct p11_token p11_token;

/* Is s a "pkcs11:" URI (case-insensitive scheme)? */
int p11_is_uri(const char *s);

/*
 * s as it may be shown to users, in a message or on stdout: a pkcs11: URI
 * parsed by p11-kit and formatted again without its PIN attributes
 * (pin-value, pin-source; in the path or the query), control characters
 * %-encoded; a string p11-kit does not parse (or any other string) with
 * every pin-value=/pin-source= attribute cut out textually and control
 * characters %-encoded. Every key or token URI the program prints goes
 * through here. Caller frees; NULL only when out of memory (or s NULL).
 */
char *p11_uri_display(const char *s);

/*
 * sscep's key names for libp11's pkcs11 engine ("engine key ids"):
 * <slot>:<hexid>, slot_<slot>-id_<hexid>, id_<hexid>, label_<label>,
 * slot_<slot>-label_<label>, and with bare_hex also a plain <hexid> (what
 * libp11 reads when an engine is configured). <slot> is a PKCS#11 slot id
 * in decimal. 1 if name is one, else 0 (pkcs11: URIs are not).
 */
int p11_engine_id_is(const char *name, int bare_hex);

/*
 * The pkcs11: URI equivalent to the engine key id name on module (a path
 * or a p11-kit module name): with a slot, the token in that slot by
 * token= and serial= (the module is loaded to look), else no token
 * attributes (the one token of the module matches); id= and/or object=,
 * type=private. No module, or no initialized token in that slot:
 * SA_EUSAGE naming the URI to write. *uri_out: caller frees.
 */
int p11_engine_id_to_uri(const char *name, int bare_hex, const char *module,
			 char **uri_out);

/*
 * Open the token named by uri (a pkcs11: URI; object attributes ignored
 * here). Module: opts->module, else URI module-path, else module-name via
 * p11-kit config, else p11-kit's proxy of registered modules.
 * Exactly one initialized token must match (SA_ENOTFOUND: none, the
 * message lists the tokens present; SA_EKEY: several, or module trouble).
 * Logs in when opts->need_login and the token requires it.
 */
int p11_token_open(const char *uri, const struct p11_open_opts *opts,
		   p11_token **out);

/*
 * Release t; the last token of its module logs out, closes the sessions
 * and finalizes and unloads the module. NULL ok. Free every EVP_PKEY
 * obtained from t before closing it.
 */
void p11_token_close(p11_token *t);

/*
 * The value of one attribute of a pkcs11: URI, percent-decoded by
 * p11-kit's parser: "object" (CKA_LABEL), "id" (CKA_ID, binary), or the
 * token's "token", "manufacturer", "serial", "model" (trailing blanks
 * cut). A new NUL-terminated buffer (caller frees) and, if len is not
 * NULL, its length; NULL when s is not a URI p11-kit parses, the
 * attribute is absent, or out of memory. Never prints (a URI may carry
 * a PIN).
 */
char *p11_uri_attr(const char *uri, const char *attr, size_t *len);

/*
 * What names uri's token (and module and PIN source): uri parsed by
 * p11-kit and formatted again without its object attributes (object=,
 * id=, type=). Two key URIs with the same result name the same token.
 * For comparing, never for showing (it keeps a pin-value: wipe it before
 * freeing). Caller frees; NULL when uri is not a URI p11-kit parses.
 */
char *p11_uri_token_key(const char *uri);

/*
 * The custody object: one key pair in a token as the custody layer knows
 * it - its token (borrowed: close the token after freeing the object),
 * its CKA_ID (what every later operation finds its objects by), the
 * label of its private key, its canonical pkcs11: URI (token attributes,
 * object=, id=, type=private, module-path; never a PIN) and its EVP_PKEY
 * handle (signs and decrypts in the token). Made by p11_key_get1(),
 * p11_keygen(), p11_newkey_get1(), p11_staged_get1(); taken by
 * p11_cert_store(), p11_key_commit(), p11_key_destroy(), p11_cert_uri().
 * The get0 results are borrowed from the object; label and URI follow a
 * p11_key_commit().
 */
typedef struct p11_keyobj p11_keyobj;

void p11_keyobj_free(p11_keyobj *k);  /* NULL ok */
p11_token *p11_keyobj_get0_token(const p11_keyobj *k);
EVP_PKEY *p11_keyobj_get0_pkey(const p11_keyobj *k);
const unsigned char *p11_keyobj_get0_id(const p11_keyobj *k, size_t *len);
const char *p11_keyobj_get0_label(const p11_keyobj *k);
const char *p11_keyobj_get0_uri(const p11_keyobj *k);

/*
 * The private key named by uri (object=, id=, type=private) as a custody
 * object. The EVP_PKEY routes sign and decrypt into the token. get1:
 * caller frees; usable only while t is open. Exactly one match is
 * required (SA_ENOTFOUND for none; SA_EKEY with a hint for several).
 */
int p11_key_get1(p11_token *t, const char *uri, p11_keyobj **out);

/*
 * The last failed token call of a key operation OpenSSL made through a
 * key handle (C_Sign, C_Decrypt and their Init, attribute reads while
 * making a handle), as a sentence with the token's CK_RV in words; NULL
 * when none since p11_fault_clear(). The layer that called OpenSSL words
 * its own failure ("cannot sign the request"); the agent asks here to
 * blame the token rather than the key or the CA (exit code 7).
 */
const char *p11_fault(void);
void p11_fault_clear(void);

/*
 * Diagnosis of a failed module call from what the module wrote to stderr
 * during it (text, NUL-terminated, possibly ""): a sentence to append to
 * the failure's message (the likely cause and the fix), static or kept
 * until the next call; NULL when it has nothing to say. *unload_helps
 * (cleared before): set when the module ran out of room for loaded keys
 * and a logout (which unloads them) would make room - the custody layer
 * then logs out and in again and repeats the call once.
 */
typedef const char *p11_diag_fn(const char *func, unsigned long rv,
				const char *text, int *unload_helps);

/*
 * From now on, what modules write to stderr during their calls is
 * captured (shown only at debug level) and failed calls are diagnosed by
 * fn (may be NULL). Call before the module is loaded (C_Initialize talks
 * too). 0, or -1 when no capture file can be made (output then shows).
 */
int p11_capture_on(p11_diag_fn *fn);

/* What p11_token_init() initialises, and with which PINs. */
struct p11_init_opts {
	const char *module;          /* path or p11-kit module name */
	const char *uri;             /* the slot or token (slot-id=, token=,
				      * serial=...); NULL: the only blank one */
	const char *label;           /* the new label; NULL: the URI's token= */
	struct p11_pin_opts so_pin;  /* the SO PIN's source */
	struct p11_pin_opts user_pin; /* the new user PIN's source */
	int force;                   /* an initialised token may be wiped */
	int resume;                  /* -R: an initialised token of that label
				      * (an earlier run stopped after
				      * C_InitToken) gets its user PIN set
				      * (SO login, C_InitPIN); a blank one is
				      * initialised as usual */
};

/*
 * Make a token ready: C_InitToken with the SO PIN and the label, then an
 * SO session sets the user PIN (C_InitPIN). The token: the one the URI
 * picks (a slot by slot-id=/slot attributes, a token by its attributes; a
 * URI naming only token=LABEL with no such token takes the blank one),
 * else the only blank token of the module; none or several: SA_EUSAGE
 * listing the slots. An initialised token only with o->force (its objects
 * are destroyed), or to finish it: when it has the label and its user PIN
 * is not set (or o->resume says so), only the user PIN is set. A label
 * another token has is refused. Both PINs are read before anything
 * changes. A wrong SO PIN: SA_EPIN. A failure after C_InitToken says that
 * -R finishes. *uri_out: the new token's pkcs11: URI with module-path
 * (caller frees).
 */
int p11_token_init(const struct p11_init_opts *o, char **uri_out);

/*
 * For modules that keep every key they used loaded until C_Logout, on a
 * device that holds very few (tpm2-pkcs11 on a TPM without a resource
 * manager: about 3 objects, 2 of them its own): from now on, before a key
 * other than the one last used is loaded, the session logs out and in
 * again (with the PIN of its login), so that one key is loaded at a time.
 * A renewal uses two keys (the old signs, the new signs and decrypts).
 */
void p11_unload_between_keys(int on);

/* Key types for generation. */
struct p11_keyspec {
	int type;   /* EVP_PKEY_RSA or EVP_PKEY_EC */
	int bits;   /* RSA: 2048, 3072, 4096 */
	int nid;    /* EC: NID_X9_62_prime256v1, NID_secp384r1 */
};

/* Parse "rsa:2048", "rsa:3072", "rsa:4096", "ec:P-256", "ec:P-384"
 * (also "ec:prime256v1", "ec:secp384r1"). SA_EUSAGE with a sentence. */
int p11_keyspec_parse(const char *s, struct p11_keyspec *out);

/* p11_keygen() flags. */
#define P11_KEYGEN_OVERWRITE 1 /* the label may be taken: the old objects stay
				* until p11_key_commit() */
#define P11_KEYGEN_STAGED 2    /* always under the staging label */

/*
 * Generate a key pair inside the token with C_GenerateKeyPair:
 * CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE true, CKA_EXTRACTABLE false,
 * CKA_SIGN (CKA_DECRYPT for RSA), CKA_ID = SHA-1 of the RSA modulus or
 * of the EC point (as OpenSC derives it), CKA_LABEL = label (required).
 * An object with the same label is refused (SA_EEXIST) unless flags has
 * P11_KEYGEN_OVERWRITE. With P11_KEYGEN_STAGED, or with overwrite and
 * objects of that label present, nothing is destroyed here: the new pair
 * is made under the staging label p11_provisional_label(label) (whatever
 * else holds that label is removed first: callers look for an earlier
 * run's pair with p11_staged_get1() before), the old key and certificate
 * stay usable, and p11_key_commit() - called once the new key's
 * certificate is stored (or its request written) - gives the new pair
 * the label and removes the old objects.
 * The token must be open with need_login. On success *out is the new
 * key's custody object (get1; its URI names the staging label while it
 * has it).
 */
int p11_keygen(p11_token *t, const char *label, const struct p11_keyspec *ks,
	       int flags, p11_keyobj **out);

/*
 * p11_keygen() with the label taken from uri's object= (--new-key URI).
 * An id= in uri is refused (SA_EUSAGE): the id is derived from the key.
 */
int p11_keygen_uri(p11_token *t, const char *uri, const struct p11_keyspec *ks,
		   int overwrite, p11_keyobj **out);

/* The provisional label of a replacement pair: label + "~new". Caller frees. */
char *p11_provisional_label(const char *label);

/*
 * The key an earlier p11_keygen(t, label, ks, flags) left in the token,
 * to continue with it (a pending request): the staging pair if there is
 * one, else the private key labelled label (overwrite is not used).
 * Exactly one must match (SA_ENOTFOUND for none; SA_EKEY for several).
 * get1.
 */
int p11_newkey_get1(p11_token *t, const char *label, int overwrite,
		    p11_keyobj **out);

/*
 * Finish a staged key once its certificate is stored (or its request
 * written): the objects of the label's previous key pair (another
 * CKA_ID) leave the label, its private key first; then k's objects (its
 * CKA_ID) under its staging label take the label, k's private key last.
 * So the label never names two keys, and an interruption leaves either
 * the old pair under the label or k's pair whole under its staging label
 * with its certificate (p11_staged_get1() reports it certified; the old
 * pair's objects each under the label, retired or destroyed): calling
 * this again finishes.
 *
 * What leaving the label means: with keep_old 0, the old objects are
 * destroyed (as before KeepOld). With keep_old N > 0, an old pair whose
 * certificate is in the token (same CKA_ID, any label) is retired: its
 * objects are relabelled p11_retired_label(label, serial of that
 * certificate); a pair without a certificate is destroyed. Then retired
 * pairs of label beyond the keep_old newest (by their certificate's
 * notBefore) are destroyed, the private key last - with keep_old 0 too,
 * so lowering KeepOld prunes (a pruning that fails is a warning: the
 * commit is done; the next one prunes). A no-op (but the pruning) for a
 * key already labelled label with nothing else of that label. k's label
 * and URI follow.
 */
int p11_key_commit(p11_keyobj *k, const char *label, int keep_old);

/*
 * The label of a retired pair: label + "~old-" + the serial number of its
 * certificate in lowercase hex without colons (as StoreDir names
 * <serial>.crt). Caller frees; NULL when out of memory.
 */
char *p11_retired_label(const char *label, const char *serial_hex);
#define P11_RETIRED_INFIX "~old-"

/*
 * The staging pair an earlier run left for label (one private key
 * labelled p11_provisional_label(label)): 1 with *out its handle (get1)
 * and *uri_out its URI (caller frees), 0 when there is none, SA_EKEY for
 * several. *certified: a certificate object with its CKA_ID is in the
 * token (the run stopped inside p11_key_commit(): call it to finish);
 * else the run stopped before its certificate was stored (the key may be
 * reused: a request it sent still matches it). *label_used: objects of
 * another key (another CKA_ID) are labelled label. A public key under the
 * staging label with another CKA_ID than the private key (a generation
 * interrupted while it set the ids) takes the private key's first.
 */
int p11_staged_get1(p11_token *t, const char *label, p11_keyobj **out,
		    int *certified, int *label_used);

/* The pkcs11: URI of a certificate object with k's CKA_ID, or NULL. */
char *p11_cert_uri(const p11_keyobj *k);

/*
 * Destroy k's key pair (private and public objects with its CKA_ID): for
 * a key generated in this run that no CA has certified. Refused
 * (SA_EEXIST) if a certificate object carries that CKA_ID. Free k
 * afterwards; its handle is unusable.
 */
int p11_key_destroy(p11_keyobj *k);

/*
 * Store cert in k's token as CKO_CERTIFICATE with k's CKA_ID and label.
 * cert must be k's (its public key k's: else SA_EKEY). An existing
 * certificate object with the same id and label is replaced. uri_out (may
 * be NULL) receives the certificate's pkcs11: URI. label NULL: k's label.
 */
int p11_cert_store(p11_keyobj *k, X509 *cert, const char *label,
		   char **uri_out);

/*
 * Store a CA certificate (CKA_TRUSTED not set) under label, CKA_ID the
 * SHA-1 of its public key. Replaces a different certificate with the same
 * label and id; storing the same certificate again is a no-op.
 */
int p11_cacert_store(p11_token *t, X509 *cert, const char *label);

/* 1 if cert's public key is key's public half (token or file key), else 0. */
int p11_key_matches_cert(EVP_PKEY *key, X509 *cert);

/*
 * The canonical pkcs11: URI of the private key in t whose public half is
 * key's (token attributes, id, object, type=private, module-path): what to
 * show users, never their own URI (which may carry pin-value). Caller
 * frees; NULL if not found.
 */
char *p11_key_uri(p11_token *t, EVP_PKEY *key);

/* The pkcs11: URI of the token (token, manufacturer, serial, model). */
char *p11_token_uri(p11_token *t);

/*
 * Listing for users (subcommands list-tokens / list-objects): print to fp
 * each token (all slots of the module) / each object with its URI, type,
 * label, id, key type and size, and for keys CKA_SENSITIVE/EXTRACTABLE.
 */
int p11_list_tokens(const char *module, FILE *fp); /* module: path, p11-kit
						   * module name, pkcs11: URI
						   * or NULL (p11-kit proxy) */
int p11_list_objects(p11_token *t, FILE *fp);

/*
 * Bounded waits on tokens. Every call through a module's function list
 * (p11_wait.c wraps it when the module is loaded) has a deadline:
 * keygen_ms for C_GenerateKeyPair, C_GenerateKey, C_InitToken and a
 * C_Login with no PIN (the PIN typed on the reader's pad), call_ms for
 * every other call (0: no bound of that kind); a blocking
 * C_WaitForSlotEvent (waiting for a card) is not bounded. A PKCS#11 call
 * cannot be cancelled: when a deadline passes, handler gets one sentence
 * (which call, which module, how long, what the retry does, how to raise
 * the bound; nothing secret) from a watchdog thread while the call still
 * hangs, and must end the process (_exit): it must not return. No handler
 * (the default): no bound at all. Defaults for the program:
 * P11_WAIT_CALL_S and P11_WAIT_KEYGEN_S.
 */
#define P11_WAIT_CALL_S 60UL
#define P11_WAIT_KEYGEN_S 300UL
typedef void p11_wait_handler(const char *msg);
void p11_wait_set(unsigned long call_ms, unsigned long keygen_ms,
		  p11_wait_handler *handler);

/* ---- the token list as data, module holds (the provisioning station) ---- */

/* One slot's token (p11_tokens_get()). Texts trimmed; owned by the list. */
struct p11_token_desc {
	unsigned long slot_id;
	int initialized;       /* CKF_TOKEN_INITIALIZED (0: a blank token) */
	char *label;           /* "" on a blank token */
	char *serial;
	char *manufacturer;
	char *model;
	unsigned long flags;   /* CK_TOKEN_INFO flags */
	char *uri;             /* the token's pkcs11: URI (token attributes,
				* no module, no PIN) */
};
#define P11_TOKENS_BLANK  1u /* list blank (not initialised) tokens too */
#define P11_TOKENS_RESCAN 2u /* read the slot list again if the module is
			      * held (p11_hold_new()) and no token is open */

/*
 * The tokens present in the slots of module (a path, a p11-kit module
 * name, or a pkcs11: URI naming one; NULL: the filter's module-path or
 * module-name), in slot order, those initialised matching filter (a
 * pkcs11: URI's token attributes; NULL: all); blank ones only with
 * P11_TOKENS_BLANK (the filter does not apply to them). *out: free with
 * p11_tokens_free(). Loads the module unless it is loaded (then shares
 * it); the last user finalizes it.
 */
int p11_tokens_get(const char *module, const char *filter, unsigned flags,
		   struct p11_token_desc **out, size_t *n);
void p11_tokens_free(struct p11_token_desc *list, size_t n);

/*
 * A hold on a module: loaded (C_Initialize) once and kept until
 * p11_hold_free(), so that tokens opened and closed one after another
 * share one initialisation (a station's worker). p11_hold_rescan() reads
 * the slot list again (no token of it may be open; 0 without doing
 * anything when one is).
 */
typedef struct p11_hold p11_hold;
int p11_hold_new(const char *module, p11_hold **out);
int p11_hold_rescan(p11_hold *h);
void p11_hold_free(p11_hold *h); /* NULL ok */

/*
 * C_WaitForSlotEvent on module (loaded, or shared when loaded): block
 * (1) until a slot changes, or look once (0). 1 with *slot_id: an event;
 * 0: none (not blocking); SA_ENOTFOUND: the module cannot wait for
 * events (CKR_FUNCTION_NOT_SUPPORTED: poll the slot list instead).
 */
int p11_slot_event_wait(const char *module, int block, unsigned long *slot_id);

/*
 * The certificates in token t (those readable in its session), as X509
 * (get1 each; *out: free each with X509_free() and the array with free()).
 */
int p11_token_certs(p11_token *t, X509 ***out, size_t *n);

#endif

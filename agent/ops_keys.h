/*
 * ops_keys.h - the request key and the CSR, shared by mkrequest and enroll.
 */
#ifndef OPS_KEYS_H
#define OPS_KEYS_H

#include "agent.h"
#include "keyload.h"

/* The key a request is made for. */
struct agent_key {
	EVP_PKEY *key;   /* the handle: a file key's (owned), or the token
			  * key's (borrowed from obj) */
	p11_keyobj *obj; /* a token key's custody object (token, CKA_ID,
			  * label, URI, handle), owned; NULL for a file key */
	char *label;     /* --new-key: the label the key takes in
			  * p11_key_commit() (object= of the URI); owned;
			  * NULL for other keys */
	int keep_old;    /* in (kept by agent_key_obtain): previous pairs a
			  * commit retires rather than destroys (KeepOld) */
	int generated;   /* made in this run */
	int resumed;     /* --new-key -R: made by an earlier (pending) run */
	int replace;     /* --new-key --overwrite: the label's old objects go
			  * in p11_key_commit() */
	int staged;      /* under the staging label LABEL~new until
			  * p11_key_commit() (every --new-key token key) */
	int reused;      /* the staged key an earlier run generated for a
			  * request it never finished: used again */
};

void agent_key_clear(struct agent_key *k);

/* The token key's token (borrowed), or NULL for a file key. */
p11_token *agent_key_token(const struct agent_key *k);

/* The token key's canonical URI (borrowed), or NULL for a file key. */
const char *agent_key_uri(const struct agent_key *k);

/*
 * A token key generated in this run that no CA will certify: remove it
 * from the token, so that the same command can run again, saying why; if
 * that fails, say where it stays. Nothing for other keys.
 */
void agent_key_discard(struct agent_key *k, const char *why);

/*
 * The request key: --new-key URI generates it in the token (--key-type,
 * default rsa:2048; refused if the label exists unless --overwrite) under
 * the staging label LABEL~new until p11_key_commit(); an id= is refused.
 * A staged key an earlier run left without a certificate (it stopped
 * before its request went out or its certificate was stored) is used
 * again when it is of the --key-type asked (else removed): the same key,
 * so a request that did reach the CA still matches. A staged key with a
 * certificate (a run stopped inside p11_key_commit()) is committed first.
 * For enroll with -R (resume), --new-key takes the key an earlier run
 * generated for that label (staged, else labelled LABEL);
 * else -k loads a file or a token key. With may_create_file, a -k FILE
 * that does not exist (or --key-type given) is generated and written
 * (0600, never overwritten).
 */
int agent_key_obtain(const struct agent_opts *o, struct keyload *kl,
		     int may_create_file, struct agent_key *k);

/* The CSR for key from --subject, --san, challenge, template, KU, EKU. */
int agent_csr_make(const struct agent_opts *o, EVP_PKEY *key, X509_REQ **out);

/*
 * Before a key is generated: do --subject, --san, the template, KU and
 * EKU make a request, and can a challenge file or variable be read?
 * (Built once with a throwaway software key; a challenge prompt waits for
 * the real request.) 0 when no --subject is given. The challenge read
 * here is kept (secret_read) for agent_csr_make(), which wipes it once the
 * request is built: each source is read once per run.
 */
int agent_csr_check(const struct agent_opts *o);

#endif

/*
 * keyload.h - the one way the agent takes a key: a PEM/DER private key
 * file (sscep compatibility) or a pkcs11: URI (key in a token, through the
 * custody API). Tokens opened here stay open (one login each) until
 * keyload_free(), which logs out and finalizes the modules.
 */
#ifndef KEYLOAD_H
#define KEYLOAD_H

#include <openssl/evp.h>

#include "p11.h"

struct keyload;

/* opts is copied (its strings are borrowed: keep them alive). */
int keyload_new(const struct p11_open_opts *opts, struct keyload **out);

/* Close every token opened (log out, finalize). NULL ok. */
void keyload_free(struct keyload *kl);

/*
 * The key named by name: a pkcs11: URI (token key) or a file path. A file
 * key: *out (get1), *obj_out NULL. A token key with obj_out: *obj_out its
 * custody object (get1: token, CKA_ID, label, canonical URI) and *out
 * its handle, borrowed from the object; without obj_out: *out the handle
 * (get1).
 */
int keyload_get1(struct keyload *kl, const char *name, EVP_PKEY **out,
		 p11_keyobj **obj_out);

/* The open token for uri (opened on first use, then reused). Borrowed. */
int keyload_token(struct keyload *kl, const char *uri, p11_token **out);

/* A PEM or DER private key file. get1. Encrypted keys are refused. */
int keyload_file_get1(const char *path, EVP_PKEY **out);

/*
 * name (a key's pkcs11: URI or file name) as it may be shown to users:
 * p11_uri_display() - the canonical URI without pin-value or pin-source,
 * control characters %-encoded - into buf (truncated); returns buf ("?"
 * for NULL). Every key or certificate name printed goes through here.
 */
#define KEYLOAD_SHOWN 1024
const char *keyload_display(const char *name, char *buf, size_t len);

#endif

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
 * The key named by name: a pkcs11: URI (token key; *tok_out, if not NULL,
 * gets the open token, borrowed) or a file path (*tok_out NULL). get1.
 */
int keyload_get1(struct keyload *kl, const char *name, EVP_PKEY **out,
		 p11_token **tok_out);

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

/*
 * The percent-decoded value of a path attribute of a pkcs11: URI
 * ("object", "id", "token"...). NULL if absent. Caller frees.
 */
char *keyload_uri_attr(const char *uri, const char *attr);

#endif

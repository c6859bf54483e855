/*
 * store.h - a profile's StoreDir: <serial>.crt per issued certificate
 * (lowercase hex, no colons), ca.crt (the CA chain), latest.crt (a
 * symbolic link to the current <serial>.crt, switched by renaming a new
 * link over the old one). Files 0644, written to a temp file, fsync'ed,
 * renamed; the directory fsync'ed.
 */
#ifndef STORE_H
#define STORE_H

#include <openssl/x509.h>

/* Lowercase hex serial of cert, no colons (caller frees), NULL on error. */
char *store_serial_hex(X509 *cert);

/*
 * Write cert as DIR/<serial>.crt and switch DIR/latest.crt to it. *path
 * (if not NULL) gets the file's path (caller frees). DIR made 0755 if
 * missing.
 */
int store_put_cert(const char *dir, X509 *cert, char **path);

/* Write the CA chain as DIR/ca.crt (PEM, in order). */
int store_put_ca(const char *dir, STACK_OF(X509) *chain);

/* DIR/latest.crt, or NULL when there is none (not an error). get1. */
int store_latest(const char *dir, X509 **out);

/*
 * Remove <serial>.crt files other than latest.crt's target beyond the
 * keep newest (by notBefore).
 */
int store_prune(const char *dir, int keep);

#endif

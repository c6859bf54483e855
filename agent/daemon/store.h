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

/*
 * The two halves of store_put_cert(): write DIR/<serial>.crt only (latest
 * unchanged); point latest.crt at DIR/<serial>.crt, which must exist.
 */
int store_put_cert_file(const char *dir, X509 *cert, char **path);
int store_set_latest(const char *dir, const char *serial);

/* latest.crt's target as written ("<serial>.crt"), NULL if none. Caller frees. */
char *store_latest_target(const char *dir);

/* Write the CA chain as DIR/ca.crt (PEM, in order). */
int store_put_ca(const char *dir, STACK_OF(X509) *chain);

/*
 * DIR/latest.crt, or NULL when there is none (not an error). get1.
 * A link to nothing or a file without a certificate: SA_EIO.
 */
int store_latest(const char *dir, X509 **out);

/*
 * Remove <serial>.crt files other than latest.crt's target beyond the
 * keep newest (by notBefore): store_prune(dir, KeepOld) leaves the current
 * certificate and KeepOld before it. Files that are not certificates are
 * left alone.
 */
int store_prune(const char *dir, int keep);

#endif

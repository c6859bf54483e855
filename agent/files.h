/*
 * files.h - certificates, CRLs, requests and keys on disk: PEM or DER in,
 * PEM out, written atomically (temporary file + rename).
 */
#ifndef FILES_H
#define FILES_H

#include <stddef.h>
#include <sys/types.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/*
 * Write data to path atomically: a temporary file in the same directory
 * with mode, fsync, rename over path (with excl: link, so an existing
 * path is refused, SA_EIO), then fsync of the directory, so that the new
 * name is on disk before anything that relies on it (the old key of a
 * renewal removed from its token). On any error path keeps its old
 * content and no temporary file is left. 0 or SA_EIO with a sentence
 * naming path and, for a full or read-only file system or a permission,
 * what to do.
 */
int files_write_atomic(const char *path, const void *data, size_t len,
		       mode_t mode, int excl);

/* PEM, atomic, 0644. */
int files_write_cert(const char *path, X509 *cert);
int files_write_certs(const char *path, STACK_OF(X509) *certs);
int files_write_crl(const char *path, X509_CRL *crl);
int files_write_csr(const char *path, X509_REQ *req);

/* Unencrypted PKCS#8 PEM, 0600, never overwriting an existing file. */
int files_write_key(const char *path, EVP_PKEY *key);

/* All certificates of a PEM file (one or more) or one DER certificate. */
int files_read_certs(const char *path, STACK_OF(X509) **out);

/* The first certificate of a file. get1. */
int files_read_cert(const char *path, X509 **out);

/* A PKCS#10 request, PEM or DER. get1. */
int files_read_csr(const char *path, X509_REQ **out);

/*
 * sscep's CA file selection: path itself if it exists, else path-0,
 * path-1, ... as getca wrote them (when both exist, the newer wins). All
 * certificates found, in order.
 */
int files_load_ca(const char *path, STACK_OF(X509) **out);

/*
 * After writing n CA certificates as getca does (n == 1: path; else
 * path-0 .. path-(n-1)), remove the files of that family it did not
 * write: path-n .. path-99 (files_load_ca reads up to path-99), and with
 * n == 1 path-0 too, with n > 1 path itself. Each removal is logged. 0 or
 * SA_EIO (a stale CA certificate left behind would still be trusted).
 */
int files_remove_stale_ca(const char *path, int n);

/*
 * The name getca gives the i-th of n CA certificates for path: path
 * itself when n == 1, else path-i. Caller frees; NULL: out of memory.
 */
char *files_ca_name(const char *path, int i, int n);

/*
 * Write the CA certificates as getca does (files_ca_name, PEM, 0644) as
 * one set: each to a temporary file first, and only when every one is
 * written and fsync'ed are they renamed into place (directory fsync'ed),
 * then files_remove_stale_ca(). A failure while writing (a full or
 * read-only file system) leaves every old file of the family as it was.
 * 0 or a negative SA_E* code.
 */
int files_write_ca(const char *path, STACK_OF(X509) *certs);

/* Does path exist? */
int files_exist(const char *path);

#endif

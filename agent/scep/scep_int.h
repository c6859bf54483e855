/*
 * scep_int.h - internal declarations shared by the files of the SCEP core.
 * Not part of the core's API: agent/ and pkcs11/ include scep.h only.
 */
#ifndef SCEP_INT_H
#define SCEP_INT_H

#include "scep.h"
#include "sa_err.h"

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/cms.h>

/* SCEP attribute OIDs (RFC 8894 3.2.1). */
#define SCEP_OID_MESSAGE_TYPE "2.16.840.1.113733.1.9.2"
#define SCEP_OID_PKI_STATUS "2.16.840.1.113733.1.9.3"
#define SCEP_OID_FAIL_INFO "2.16.840.1.113733.1.9.4"
#define SCEP_OID_SENDER_NONCE "2.16.840.1.113733.1.9.5"
#define SCEP_OID_RECIPIENT_NONCE "2.16.840.1.113733.1.9.6"
#define SCEP_OID_TRANSACTION_ID "2.16.840.1.113733.1.9.7"
#define SCEP_OID_FAIL_INFO_TEXT "1.3.6.1.5.5.7.24.1" /* id-scep-failInfoText */

#define SCEP_NONCE_LEN 16

struct scep_client {
	struct scep_client_opts opts; /* strings owned (copied) */
	scep_http *http;
	unsigned caps;
	int caps_fetched;
	int caps_rc;       /* error of the GetCACaps fetch, SA_OK if none */
	struct sa_error caps_err; /* its code and message */
	int sent;          /* a PKIOperation may have reached the server */
};

/* Last HTTP status seen by the transport (0 if none). */
long scep_http_last_status(const scep_http *h);
/*
 * 1 if the last request may have reached the server: it completed, or
 * bytes of it went out before it failed; 0 if it never left (connection
 * refused or timed out, TLS handshake failed, stopped before sending).
 */
int scep_http_sent(const scep_http *h);
/* The base URL of the transport (borrowed). */
const char *scep_http_url(const scep_http *h);

/* A fresh ASN1_OBJECT for a dotted OID (no registration). Caller frees. */
ASN1_OBJECT *scep_oid(const char *dotted);

/* Hex of buf into a new string (uppercase, no separators). Caller frees. */
char *scep_hex(const unsigned char *buf, size_t len);

/* Does any certificate in sk equal cert (X509_cmp)? */
int scep_certs_contain(const STACK_OF(X509) *sk, const X509 *cert);

/*
 * Parse a pinned fingerprint: optional "alg:" prefix, hex with optional
 * separators, into lowercase hex and its digest. 0 or SA_EUSAGE.
 */
int scep_pin_parse(const char *pin, char *hex, size_t hexlen, const EVP_MD **md);

/* Does cert's md fingerprint equal hex (lowercase, no separators)? */
int scep_fp_matches(X509 *cert, const char *hex, const EVP_MD *md);

/*
 * The certificates trusted to sign replies: ca->ra_sign, ca->ca and
 * ca->anchor (those set, each once). A new stack of borrowed certificates
 * (free with sk_X509_free), NULL if out of memory.
 */
STACK_OF(X509) *scep_ca_signers(const struct scep_ca *ca);

/* Set in tests only: a fixed sleep function for the polling loop. */
extern unsigned (*scep_enroll_sleep)(unsigned seconds);

#endif

/*
 * scep.h - the SCEP protocol core (RFC 8894).
 *
 * The core knows a key only as an EVP_PKEY handle plus a certificate. It
 * never opens key files, never sees a PIN, never calls PKCS#11. It never
 * calls exit(). Only http.c includes curl.
 *
 * All functions return 0 (SA_OK) or a negative SA_E* code from
 * agent/util/sa_err.h after recording a sentence with sa_fail(). A CA's
 * PENDING or FAILURE is a result (scep_reply.status), not an error.
 * Output parameters are cleared on entry and set only on success.
 */
#ifndef SCEP_H
#define SCEP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* ------------------------------------------------------------------ */
/* Initialisation                                                      */

/*
 * Load OpenSSL's "default" and "legacy" providers into the default
 * library context (DES-CBC replies need legacy). Idempotent. Never asks
 * the user to edit openssl.cnf.
 */
int scep_crypto_init(void);

/* ------------------------------------------------------------------ */
/* Capabilities (caps.c)                                               */

enum scep_cap {
	SCEP_CAP_GETNEXTCA = 1u << 0,     /* GetNextCACert */
	SCEP_CAP_POST = 1u << 1,          /* POSTPKIOperation */
	SCEP_CAP_RENEWAL = 1u << 2,       /* Renewal */
	SCEP_CAP_SHA1 = 1u << 3,          /* SHA-1 */
	SCEP_CAP_SHA224 = 1u << 4,        /* SHA-224 */
	SCEP_CAP_SHA256 = 1u << 5,        /* SHA-256 */
	SCEP_CAP_SHA384 = 1u << 6,        /* SHA-384 */
	SCEP_CAP_SHA512 = 1u << 7,        /* SHA-512 */
	SCEP_CAP_DES3 = 1u << 8,          /* DES3 */
	SCEP_CAP_AES = 1u << 9,           /* AES */
	SCEP_CAP_SCEPSTANDARD = 1u << 10, /* SCEPStandard (implies AES, POST, SHA-256) */
	SCEP_CAP_UPDATE = 1u << 11,       /* Update */
};

/*
 * Parse a GetCACaps reply body (one keyword per line, CR/LF tolerant,
 * case-insensitive, unknown words ignored) into a SCEP_CAP_* bit set.
 * SCEPStandard also sets AES, POST and SHA256 as RFC 8894 2.9 says.
 */
unsigned scep_caps_parse(const char *buf, size_t len);

/* Names of the bits set, space separated, into buf. Returns buf. */
const char *scep_caps_str(unsigned caps, char *buf, size_t len);

/* Symmetric cipher and digest choices. */
enum scep_cipher {
	SCEP_CIPHER_AUTO = 0, SCEP_CIPHER_DES, SCEP_CIPHER_DES3,
	SCEP_CIPHER_BLOWFISH, SCEP_CIPHER_AES128, SCEP_CIPHER_AES192,
	SCEP_CIPHER_AES256,
};
enum scep_digest {
	SCEP_DIGEST_AUTO = 0, SCEP_DIGEST_MD5, SCEP_DIGEST_SHA1,
	SCEP_DIGEST_SHA224, SCEP_DIGEST_SHA256, SCEP_DIGEST_SHA384,
	SCEP_DIGEST_SHA512,
};

/* sscep names: des|3des|blowfish|aes|aes128|aes192|aes256. -1 if unknown. */
int scep_cipher_from_name(const char *name);
/* sscep names: md5|sha1|sha224|sha256|sha384|sha512. -1 if unknown. */
int scep_digest_from_name(const char *name);
const char *scep_cipher_name(int cipher);
const char *scep_digest_name(int digest);

/*
 * The choices the caps drive. A non-AUTO request wins (options override
 * caps, as in sscep). AUTO: AES-128 if AES offered, else 3DES (also when
 * nothing is offered); SHA-256 if offered, else SHA-1 if offered, else
 * SHA-512 if that is all, else SHA-1. Single DES, blowfish, AES-192/256,
 * MD5 and SHA-224/384/512 only when asked for. NULL for an unknown enum.
 * The choice is logged at debug level.
 */
const EVP_CIPHER *scep_choose_cipher(unsigned caps, int requested);
const EVP_MD *scep_choose_digest(unsigned caps, int requested);

/* ------------------------------------------------------------------ */
/* Transport (http.c, the only libcurl user)                           */

struct scep_http_opts {
	const char *url;        /* base SCEP URL, e.g. http://host/scep */
	const char *proxy;      /* host:port or URL; NULL: none (curl env vars) */
	const char *ca_bundle;  /* HTTPS trust anchors file; NULL: system store */
	int insecure;           /* 1: do not verify the HTTPS peer (explicit option) */
	long connect_timeout;   /* seconds, 0: default 30 */
	long timeout;           /* total seconds per request, 0: default 120 */
	size_t max_response;    /* bytes, 0: default 8 MiB */
	long wait_connect;      /* -W: retry connecting for up to N seconds */
	int force_get;          /* 1: never POST even if offered */
};

typedef struct scep_http scep_http;

/* Create a transport (one curl handle, reused within the run). */
int scep_http_new(const struct scep_http_opts *opts, scep_http **out);
void scep_http_free(scep_http *h);

struct scep_buf {
	unsigned char *data; /* owned; NUL-terminated for convenience */
	size_t len;
	char *content_type;  /* owned, may be NULL */
};
void scep_buf_clear(struct scep_buf *b);

/*
 * GET url?operation=OP[&message=MSG]. MSG is sent escaped (base64 from
 * PKIOperation is percent-encoded: + / =). HTTP status other than 200 is
 * SA_ENET with the status and a hint; an HTML body gets a readable error.
 */
int scep_http_get(scep_http *h, const char *operation, const char *message,
		  struct scep_buf *reply);

/* POST url?operation=PKIOperation with a DER body. */
int scep_http_post(scep_http *h, const char *operation,
		   const unsigned char *body, size_t len,
		   struct scep_buf *reply);

/* Percent-encode for a query string (unreserved kept). Caller frees. */
char *scep_url_escape(const char *in);

/* ------------------------------------------------------------------ */
/* Client and CA certificates (client.c, certs.c)                      */

/* What a GetCACert reply gave, and which certificate plays which role. */
struct scep_ca {
	STACK_OF(X509) *certs; /* all certificates, in reply order */
	X509 *ca;       /* borrowed from certs: the issuing CA (self-signed or top) */
	X509 *ra_sign;  /* borrowed: verifies CertRep (RA with digitalSignature, or CA) */
	X509 *ra_enc;   /* borrowed: encrypt requests to (keyEncipherment, or CA) */
	X509 *anchor;   /* borrowed: the trust anchor, set by scep_ca_trust(); NULL before */
};
void scep_ca_clear(struct scep_ca *ca);

/*
 * Fill roles from certs as NDES needs: among several certificates the
 * leaf(s) (not issuer of another) with keyEncipherment encrypt, with
 * digitalSignature sign; a single certificate plays all roles. sign/enc
 * given by the user (-c/-e) win when non-NULL (they are up-ref'd and added).
 */
int scep_ca_select(struct scep_ca *ca, X509 *user_sign, X509 *user_enc);

/*
 * Certificates from a GetCACert-style buffer: one DER certificate or a
 * degenerate PKCS#7 SignedData, DER or PEM (sniffed; servers lie about
 * Content-Type). *out owns them. SA_EREPLY if nothing usable.
 */
int scep_certs_parse(const unsigned char *buf, size_t len, STACK_OF(X509) **out);

/*
 * Pin a whole GetCACert reply (after scep_ca_select): one certificate must
 * match pin (see scep_fingerprint_check for the format), and ra_sign and
 * ra_enc must be that certificate or issued by it (signatures checked).
 * 0, SA_ECAPIN with a sentence, or SA_EUSAGE for a malformed pin.
 */
int scep_ca_check_pin(const struct scep_ca *ca, const char *pin);

/*
 * The trust anchor of a set of CA certificates (borrowed from certs).
 * With pin (see scep_fingerprint_check for the format), the certificate of
 * that fingerprint (none: SA_ECAPIN; malformed pin: SA_EUSAGE; an MD5 or
 * SHA-1 pin works with a warning that it is weak). Without a pin, the CA
 * that issued the RA certificates, or the only CA certificate: each
 * certificate that issues none of the others (signatures checked) names
 * one candidate, itself if it is a CA certificate, else its issuer among
 * certs (itself if none); two or more distinct candidates are an ambiguous
 * reply, SA_EREPLY with a sentence naming each (subject and SHA-256
 * fingerprint) and saying to pin one with -F.
 */
int scep_ca_anchor(const STACK_OF(X509) *certs, const char *pin, X509 **anchor);

/*
 * Establish trust in a set of CA certificates (ca->certs, from GetCACert
 * or from files): compute the anchor (scep_ca_anchor), drop with a warning
 * naming it every certificate that does not chain to the anchor
 * (signatures and CA constraints checked, validity times not), except the
 * anchor's own issuers (kept for writing, never trusted to sign), select
 * the roles (scep_ca_select) and check that the CA, ra_sign and ra_enc
 * chain to the anchor. user_enc (-e), when not NULL, becomes ra_enc and
 * must chain to the anchor too (SA_EUSAGE otherwise: the command line
 * names a certificate of another CA). Sets ca->anchor. 0, SA_ECAPIN,
 * SA_EREPLY or SA_EUSAGE; on error ca is only fit for scep_ca_clear().
 */
int scep_ca_trust(struct scep_ca *ca, const char *pin, X509 *user_enc);

/*
 * Does cert verify under ca->anchor (signatures and CA constraints, not
 * validity times), with ca->certs and extra (may be NULL: the certificates
 * that came with a reply) as possible intermediates? 0 or SA_EREPLY with a
 * sentence naming the certificate and the anchor. Used for the issued
 * certificate of a SUCCESS and the certificate GetCert fetched.
 */
int scep_ca_verify_issued(const struct scep_ca *ca, X509 *cert,
			  STACK_OF(X509) *extra);

/*
 * Is crl signed by a CA certificate of ca (of the CRL's issuer name) that
 * chains to the anchor? 0 or SA_EREPLY with a sentence.
 */
int scep_ca_verify_crl(const struct scep_ca *ca, X509_CRL *crl);

/* Fingerprint of a DER certificate with md, as "AB:CD:..". Caller frees. */
char *scep_fingerprint(X509 *cert, const EVP_MD *md);

/*
 * Compare a pinned fingerprint (hex, colons/spaces optional, optional
 * "sha256:" style prefix; length picks the digest when no prefix) with
 * cert. Returns 0 on match, SA_ECAPIN with a sentence otherwise.
 */
int scep_fingerprint_check(X509 *cert, const char *pin);

struct scep_client_opts {
	struct scep_http_opts http;
	const char *ca_ident;    /* -i: message= for GetCACert */
	int cipher;              /* enum scep_cipher, AUTO from caps */
	int digest;              /* enum scep_digest, AUTO from caps */
};

typedef struct scep_client scep_client;

int scep_client_new(const struct scep_client_opts *opts, scep_client **out);
void scep_client_free(scep_client *c);

/* GetCACaps; an empty or failed reply gives caps 0 (not an error unless network). */
int scep_get_caps(scep_client *c, unsigned *caps);

/*
 * GetCACert: a single DER certificate (application/x-x509-ca-cert) or a
 * degenerate PKCS#7 chain (application/x-x509-ca-ra-cert). Fills out with
 * all certificates, roles selected; nothing is trusted yet: call
 * scep_ca_trust() before using it.
 */
int scep_get_ca(scep_client *c, struct scep_ca *out);

/*
 * GetNextCACert: the reply is SignedData signed by the current CA/RA;
 * verified against current's trusted signers only (ra_sign, the CA, the
 * anchor: see scep_ca_trust), SA_EREPLY if not. out gets the new chain
 * as it is (a rollover CA need not chain to the current anchor); signer,
 * unless NULL, the certificate (one of current's) that signed the reply
 * (get1).
 */
int scep_get_next_ca(scep_client *c, const struct scep_ca *current,
		     struct scep_ca *out, X509 **signer);

/* The verification and parsing half of scep_get_next_ca (for tests). */
int scep_next_ca_parse(const unsigned char *der, size_t len,
		       const struct scep_ca *current, struct scep_ca *out);

/*
 * The caps, fetched by the client once (scep_get_caps called lazily). A
 * server that does not support GetCACaps (HTTP 4xx/5xx, except 502, 503
 * and 504, which are outages) gives caps 0 and SA_OK; any other failure of that fetch (SA_ENET: no connection, a
 * timeout; SA_EINTR: a stop signal) is returned, with its message, on this
 * call and every later one, and scep_transact() returns it too: a server
 * that cannot be reached never means "no capabilities".
 */
int scep_client_get_caps(scep_client *c, unsigned *caps);

/*
 * The same caps as a value: 0 also when the fetch failed (the error is
 * kept for scep_client_get_caps() and scep_transact()).
 */
unsigned scep_client_caps(scep_client *c);

/* ------------------------------------------------------------------ */
/* pkiMessage (msg.c) and CertRep (reply.c)                            */

enum scep_msg_type {
	SCEP_MSG_CERTREP = 3,
	SCEP_MSG_RENEWALREQ = 17,
	SCEP_MSG_PKCSREQ = 19,
	SCEP_MSG_CERTPOLL = 20, /* GetCertInitial */
	SCEP_MSG_GETCERT = 21,
	SCEP_MSG_GETCRL = 22,
};

enum scep_pki_status {
	SCEP_STATUS_SUCCESS = 0,
	SCEP_STATUS_FAILURE = 2,
	SCEP_STATUS_PENDING = 3,
};

enum scep_fail_info {
	SCEP_FAIL_BADALG = 0,
	SCEP_FAIL_BADMESSAGECHECK = 1,
	SCEP_FAIL_BADREQUEST = 2,
	SCEP_FAIL_BADTIME = 3,
	SCEP_FAIL_BADCERTID = 4,
};

/* "badAlg", ... ; "unknown" for others. */
const char *scep_fail_info_name(int fail_info);

/*
 * One sentence telling the user what a FAILURE means and what to check,
 * e.g. for badMessageCheck: "the request signature did not verify; is the
 * CA certificate pinned with -F the right one?". Static string.
 */
const char *scep_fail_info_hint(int fail_info);

/*
 * transactionID for a key: uppercase hex of SHA-256 over the DER
 * SubjectPublicKeyInfo (stable per key so -R resumes). Caller frees.
 */
char *scep_transaction_id(EVP_PKEY *pub);

struct scep_request {
	int type;                 /* enum scep_msg_type */
	const char *transaction_id; /* NULL: derived from the CSR's key */
	/* PKCSReq / RenewalReq */
	X509_REQ *csr;
	/* CertPoll: issuer (CA subject) + subject of the CSR.
	 * GetCert and GetCRL: issuer + serial. */
	X509_NAME *issuer;
	X509_NAME *subject;
	ASN1_INTEGER *serial;
	/* Signer: the requester's key and certificate (self-signed for a new
	 * key, or the old certificate for renewal). The CertRep envelope is
	 * decrypted with this same key. */
	EVP_PKEY *signer_key;
	X509 *signer_cert;
};

struct scep_reply {
	int status;              /* enum scep_pki_status */
	int fail_info;           /* valid when FAILURE; -1 if absent */
	char *fail_info_text;    /* RFC 8894 failInfoText, may be NULL; owned */
	char *transaction_id;    /* echoed, owned */
	STACK_OF(X509) *certs;   /* SUCCESS: degenerate content, owned */
	STACK_OF(X509_CRL) *crls; /* SUCCESS for GetCRL, owned */
};
void scep_reply_clear(struct scep_reply *r);

/*
 * Build a pkiMessage: SignedData (signed with req->signer_key, attributes
 * messageType, transactionID, senderNonce (16 random bytes, fresh per call)
 * and the digest from the caps) over EnvelopedData (encrypted to
 * ca->ra_enc with the cipher from the caps). DER into *der (caller frees
 * with OPENSSL_free). Nonce copied into nonce_out.
 */
int scep_msg_build(scep_client *c, const struct scep_ca *ca,
		   const struct scep_request *req, unsigned char **der,
		   size_t *der_len, unsigned char nonce_out[16]);

/*
 * Parse and verify a CertRep: signed by ca->ra_sign, the CA or the anchor
 * (nothing else of ca->certs),
 * messageType is CertRep, transactionID equals tid, recipientNonce equals
 * nonce; for SUCCESS decrypt the envelope with key (any cipher the server
 * chose, DES-CBC included) and extract certificates/CRLs.
 * Bad signature, nonce, transactionID, message type: SA_EREPLY.
 */
int scep_reply_parse(const unsigned char *der, size_t len,
		     const struct scep_ca *ca, const char *tid,
		     const unsigned char nonce[16], EVP_PKEY *key,
		     X509 *key_cert, struct scep_reply *out);

/*
 * One round trip: build, send (POST or GET from the caps), parse.
 */
int scep_transact(scep_client *c, const struct scep_ca *ca,
		  const struct scep_request *req, struct scep_reply *out);

/*
 * 1 once a PKIOperation of this client may have reached the server: its
 * transfer completed, or bytes of it went out before it failed (a
 * connection that broke after sending counts; one refused or timed out
 * before any byte, a failed TLS handshake, a message that could not be
 * built or encrypted do not). It stays 1 for the client's life. The agent
 * keeps a key generated for the request (for -R) only then.
 */
int scep_client_request_sent(const scep_client *c);

/*
 * Forget that a request went out (scep_client_request_sent() 0 again): a
 * client kept for several enrollments tells of each one's own request.
 */
void scep_client_sent_reset(scep_client *c);

/* ------------------------------------------------------------------ */
/* Enrollment transaction with polling (enroll.c)                      */

struct scep_poll_opts {
	long interval;   /* -t seconds between polls (<= 0: 60, sscep's default) */
	long max_time;   /* -T total seconds (0: unlimited) */
	long max_count;  /* -n number of CertPoll (0: unlimited) */
	int resume;      /* -R: start with CertPoll instead of PKCSReq */
	/* Called after each PENDING with the poll number; may be NULL. */
	void (*on_pending)(void *arg, int poll_no, const char *tid);
	void *arg;
};

/*
 * Enroll: send PKCSReq or RenewalReq (req->type), then while PENDING poll
 * with CertPoll until SUCCESS/FAILURE or the poll limits are reached; the
 * result is then PENDING in out->status (not an error). With opts->resume
 * the first message is a CertPoll for the same transactionID. The wait
 * between polls is a plain sleep; a signal ends it and the result is
 * PENDING. max_time counts from the start of the call.
 */
int scep_enroll(scep_client *c, const struct scep_ca *ca,
		const struct scep_request *req,
		const struct scep_poll_opts *opts, struct scep_reply *out);

/*
 * From a SUCCESS reply, the issued certificate: the one whose public key
 * equals pub (servers reorder subject RDNs, so match by key). get1.
 */
int scep_reply_find_cert(const struct scep_reply *r, EVP_PKEY *pub,
			 X509 **out);

/* ------------------------------------------------------------------ */
/* Self-signed certificate for the requester (selfsigned.c)            */

/*
 * The transient self-signed certificate RFC 8894 asks for when there is
 * no old certificate: subject from the CSR, serial random, 1 day validity
 * (notBefore a little in the past), signed with key (which may be a token
 * key) and md. get1.
 */
int scep_selfsigned_new(X509_REQ *csr, EVP_PKEY *key, const EVP_MD *md,
			X509 **out);

#endif

/*
 * msg.c - building pkiMessages: SignedData (CMS, so EC keys sign too) over
 * EnvelopedData encrypted to the CA/RA.
 *
 * The signer key may be a token key: only high-level CMS calls are used,
 * which route through the key's own method. The signer is identified by
 * issuerAndSerialNumber (SignerInfo version 1), which every SCEP server
 * parses (the micromdm/mozilla pkcs7 code knows nothing else).
 */
#include "scep_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "sa_err.h"
#include "sa_log.h"

ASN1_OBJECT *scep_oid(const char *dotted)
{
	return OBJ_txt2obj(dotted, 1);
}

char *scep_hex(const unsigned char *buf, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	char *s = malloc(2 * len + 1);
	size_t i;

	if (s == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		s[2 * i] = hex[buf[i] >> 4];
		s[2 * i + 1] = hex[buf[i] & 15];
	}
	s[2 * len] = '\0';
	return s;
}

/* Uppercase hex SHA-256 of the DER SubjectPublicKeyInfo. Caller frees. */
char *scep_transaction_id(EVP_PKEY *pub)
{
	unsigned char *der = NULL, md[32];
	int n;
	char *s = NULL;

	if (pub == NULL)
		return NULL;
	n = i2d_PUBKEY(pub, &der);
	if (n <= 0)
		return NULL;
	if (EVP_Digest(der, (size_t)n, md, NULL, EVP_sha256(), NULL))
		s = scep_hex(md, sizeof(md));
	OPENSSL_free(der);
	return s;
}

/* DER of SEQUENCE { a, b } from two DER encodings. */
static int der_seq2(const unsigned char *a, int alen, const unsigned char *b,
		    int blen, unsigned char **out, int *outlen)
{
	int inner = alen + blen, total = ASN1_object_size(1, inner, V_ASN1_SEQUENCE);
	unsigned char *buf, *p;

	if (total <= 0 || (buf = OPENSSL_malloc((size_t)total)) == NULL)
		return 0;
	p = buf;
	ASN1_put_object(&p, 1, inner, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
	memcpy(p, a, (size_t)alen);
	memcpy(p + alen, b, (size_t)blen);
	*out = buf;
	*outlen = total;
	return 1;
}

/* The plaintext inside the envelope for req (DER). */
static int msg_content(const struct scep_request *req, unsigned char **out, int *len)
{
	unsigned char *a = NULL, *b = NULL;
	int alen, blen, rc = SA_ECRYPTO;

	*out = NULL;
	*len = 0;
	switch (req->type) {
	case SCEP_MSG_PKCSREQ:
	case SCEP_MSG_RENEWALREQ:
		if (req->csr == NULL)
			return sa_fail_noossl(SA_EUSAGE, "no certificate request to send");
		*len = i2d_X509_REQ(req->csr, out);
		if (*len <= 0)
			return sa_fail(SA_ECRYPTO, "cannot encode the certificate request");
		return SA_OK;
	case SCEP_MSG_CERTPOLL: /* IssuerAndSubject */
		if (req->issuer == NULL || req->subject == NULL)
			return sa_fail_noossl(SA_EUSAGE,
				"CertPoll needs the CA's name and the request's subject");
		alen = i2d_X509_NAME(req->issuer, &a);
		blen = i2d_X509_NAME(req->subject, &b);
		break;
	case SCEP_MSG_GETCERT: /* IssuerAndSerialNumber */
	case SCEP_MSG_GETCRL:
		if (req->issuer == NULL || req->serial == NULL)
			return sa_fail_noossl(SA_EUSAGE,
				"GetCert and GetCRL need the issuer name and a serial number (-s)");
		alen = i2d_X509_NAME(req->issuer, &a);
		blen = i2d_ASN1_INTEGER(req->serial, &b);
		break;
	default:
		return sa_fail_noossl(SA_EINTERNAL, "unknown SCEP message type %d", req->type);
	}
	if (alen <= 0 || blen <= 0 || !der_seq2(a, alen, b, blen, out, len))
		rc = sa_fail(SA_ECRYPTO, "cannot encode the message content");
	else
		rc = SA_OK;
	OPENSSL_free(a);
	OPENSSL_free(b);
	return rc;
}

/* Add a signed attribute; len is required (-1 means "data is an ASN1_STRING"). */
static int add_attr(CMS_SignerInfo *si, const char *oid, int type,
		    const void *data, int len)
{
	ASN1_OBJECT *obj = scep_oid(oid);
	int ok;

	if (obj == NULL)
		return 0;
	ok = CMS_signed_add1_attr_by_OBJ(si, obj, type, data, len);
	ASN1_OBJECT_free(obj);
	return ok;
}

/* EnvelopedData of content for ra_enc, DER. */
static int envelope(const unsigned char *content, int clen, X509 *to,
		    const EVP_CIPHER *cipher, unsigned char **der, int *dlen)
{
	STACK_OF(X509) *recips = NULL;
	CMS_ContentInfo *env = NULL;
	BIO *in = NULL;
	int rc = SA_ECRYPTO;

	*der = NULL;
	/*
	 * SCEP envelopes use RSA key transport (CMS would happily do ECDH,
	 * which SCEP CAs do not read): another key is a configuration
	 * problem (exit 4), not a failure of the crypto
	 */
	if (EVP_PKEY_get_base_id(X509_get0_pubkey(to)) != EVP_PKEY_RSA) {
		rc = SA_EUSAGE;
		goto out;
	}
	recips = sk_X509_new_null();
	in = BIO_new_mem_buf(content, clen);
	if (recips == NULL || in == NULL || !sk_X509_push(recips, to))
		goto out;
	env = CMS_encrypt(recips, in, cipher, CMS_BINARY);
	if (env == NULL)
		goto out;
	*dlen = i2d_CMS_ContentInfo(env, der);
	if (*dlen > 0)
		rc = SA_OK;
out:
	if (rc != SA_OK) {
		char name[256];

		X509_NAME_oneline(X509_get_subject_name(to), name, sizeof(name));
		(rc == SA_EUSAGE ? sa_fail_noossl : sa_fail)(rc,
			"cannot encrypt the request to %s with %s; the CA/RA "
			"encryption certificate needs an RSA key (use -e to name another)",
			name, EVP_CIPHER_get0_name(cipher));
	}
	CMS_ContentInfo_free(env);
	BIO_free(in);
	sk_X509_free(recips);
	return rc;
}

/* Build a pkiMessage; see scep.h. */
int scep_msg_build(scep_client *c, const struct scep_ca *ca,
		   const struct scep_request *req, unsigned char **der,
		   size_t *der_len, unsigned char nonce_out[16])
{
	unsigned char *content = NULL, *env = NULL, nonce[SCEP_NONCE_LEN];
	unsigned char *out = NULL;
	int clen = 0, elen = 0, olen, rc;
	unsigned caps = c ? scep_client_caps(c) : 0;
	const EVP_CIPHER *cipher;
	const EVP_MD *md;
	char *tid = NULL, mtype[8];
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	BIO *data = NULL;
	unsigned flags = CMS_BINARY | CMS_NOSMIMECAP | CMS_PARTIAL;

	*der = NULL;
	*der_len = 0;
	if (ca == NULL || ca->ra_enc == NULL)
		return sa_fail_noossl(SA_EUSAGE, "no CA certificate to encrypt the request to");
	if (req->signer_key == NULL || req->signer_cert == NULL)
		return sa_fail_noossl(SA_EUSAGE, "no signer key and certificate for the request");
	cipher = scep_choose_cipher(caps, c ? c->opts.cipher : SCEP_CIPHER_AUTO);
	md = scep_choose_digest(caps, c ? c->opts.digest : SCEP_DIGEST_AUTO);
	if (cipher == NULL || md == NULL)
		return sa_fail_noossl(SA_EUSAGE, "unknown cipher or digest requested");

	if (req->transaction_id)
		tid = strdup(req->transaction_id);
	else if (req->csr)
		tid = scep_transaction_id(X509_REQ_get0_pubkey(req->csr));
	else
		tid = scep_transaction_id(X509_get0_pubkey(req->signer_cert));
	if (tid == NULL) {
		rc = sa_fail(SA_ECRYPTO, "cannot derive the transactionID from the public key");
		goto out;
	}
	if ((rc = msg_content(req, &content, &clen)) != SA_OK)
		goto out;
	if ((rc = envelope(content, clen, ca->ra_enc, cipher, &env, &elen)) != SA_OK)
		goto out;
	if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
		rc = sa_fail(SA_ECRYPTO, "no random bytes for the senderNonce");
		goto out;
	}

	rc = SA_ECRYPTO;
	cms = CMS_sign(NULL, NULL, NULL, NULL, flags);
	if (cms == NULL)
		goto fail;
	si = CMS_add1_signer(cms, req->signer_cert, req->signer_key, md, flags);
	if (si == NULL)
		goto fail;
	snprintf(mtype, sizeof(mtype), "%d", req->type);
	if (!add_attr(si, SCEP_OID_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING, mtype,
		      (int)strlen(mtype)) ||
	    !add_attr(si, SCEP_OID_TRANSACTION_ID, V_ASN1_PRINTABLESTRING, tid,
		      (int)strlen(tid)) ||
	    !add_attr(si, SCEP_OID_SENDER_NONCE, V_ASN1_OCTET_STRING, nonce,
		      (int)sizeof(nonce)))
		goto fail;
	data = BIO_new_mem_buf(env, elen);
	if (data == NULL || !CMS_final(cms, data, NULL, flags))
		goto fail;
	olen = i2d_CMS_ContentInfo(cms, &out);
	if (olen <= 0)
		goto fail;
	sa_debug("built message type %d, transactionID %s, %s/%s, %d bytes",
		 req->type, tid, EVP_CIPHER_get0_name(cipher), EVP_MD_get0_name(md), olen);
	*der = out;
	*der_len = (size_t)olen;
	out = NULL;
	if (nonce_out)
		memcpy(nonce_out, nonce, sizeof(nonce));
	rc = SA_OK;
	goto out;
fail:
	rc = sa_fail(SA_ECRYPTO, "cannot sign the SCEP request with the requester's key "
		     "and %s; check that the key matches its certificate and supports %s",
		     EVP_MD_get0_name(md), EVP_MD_get0_name(md));
out:
	OPENSSL_free(out);
	/* the CSR may hold the challenge password */
	OPENSSL_clear_free(content, clen > 0 ? (size_t)clen : 0);
	OPENSSL_free(env);
	BIO_free(data);
	CMS_ContentInfo_free(cms);
	free(tid);
	return rc;
}

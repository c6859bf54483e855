/*
 * reply.c - CertRep: verify the signature against the CA/RA certificates,
 * check the SCEP attributes, decrypt the envelope with the requester's key.
 *
 * Servers sign with SHA-1 and envelope with DES-CBC (micromdm always does);
 * the legacy provider loaded by scep_crypto_init() makes that readable.
 * Decryption goes through the EVP_PKEY given, so a token key does the RSA
 * part in the token and only the symmetric part runs here.
 */
#include "scep_int.h"

#include <stdlib.h>
#include <string.h>

#include "sa_err.h"
#include "sa_esc.h"
#include "sa_log.h"

static const char *const fail_names[] = {
	"badAlg", "badMessageCheck", "badRequest", "badTime", "badCertId",
};

static const char *const fail_hints[] = {
	"the CA does not support an algorithm of the request: the cipher or digest "
	"(try another with -E or -S), or the key type (many CAs take RSA keys only)",
	"the request signature did not verify; is the CA certificate (pinned with -F) "
	"the right one, and does the key match its certificate?",
	"the CA refused the request by policy: wrong or missing challenge password, or "
	"the subject is not allowed",
	"the signing time was not close enough to the CA's clock; check both clocks",
	"the CA does not know the certificate or serial asked for; check the issuer "
	"and serial (-s)",
};

/* "badAlg", ...; "unknown" for others. */
const char *scep_fail_info_name(int fail_info)
{
	if (fail_info < 0 || fail_info > SCEP_FAIL_BADCERTID)
		return "unknown";
	return fail_names[fail_info];
}

/* One sentence of what to check for a failInfo. Static string. */
const char *scep_fail_info_hint(int fail_info)
{
	if (fail_info < 0 || fail_info > SCEP_FAIL_BADCERTID)
		return "the CA gave no known reason; its logs will tell";
	return fail_hints[fail_info];
}

/* Free what a scep_reply holds and reset it. */
void scep_reply_clear(struct scep_reply *r)
{
	if (r == NULL)
		return;
	free(r->fail_info_text);
	free(r->transaction_id);
	sk_X509_pop_free(r->certs, X509_free);
	sk_X509_CRL_pop_free(r->crls, X509_CRL_free);
	memset(r, 0, sizeof(*r));
	r->fail_info = -1;
}

/* The first value of a signed attribute, or NULL. */
static ASN1_TYPE *signed_attr(CMS_SignerInfo *si, const char *oid)
{
	ASN1_OBJECT *obj = scep_oid(oid);
	X509_ATTRIBUTE *a;
	int i;

	if (obj == NULL)
		return NULL;
	i = CMS_signed_get_attr_by_OBJ(si, obj, -1);
	ASN1_OBJECT_free(obj);
	if (i < 0)
		return NULL;
	a = CMS_signed_get_attr(si, i);
	return a ? X509_ATTRIBUTE_get0_type(a, 0) : NULL;
}

/* A string-typed attribute as a new C string; NULL if absent or not a string. */
static char *attr_string(CMS_SignerInfo *si, const char *oid)
{
	ASN1_TYPE *t = signed_attr(si, oid);
	const ASN1_STRING *s;
	char *out;
	int len;

	if (t == NULL)
		return NULL;
	switch (t->type) {
	case V_ASN1_PRINTABLESTRING:
	case V_ASN1_UTF8STRING:
	case V_ASN1_IA5STRING:
	case V_ASN1_T61STRING:
	case V_ASN1_VISIBLESTRING:
	case V_ASN1_OCTET_STRING:
		break;
	default:
		return NULL;
	}
	s = t->value.asn1_string;
	len = ASN1_STRING_length(s);
	if (len < 0 || len > 4096)
		return NULL;
	out = malloc((size_t)len + 1);
	if (out == NULL)
		return NULL;
	memcpy(out, ASN1_STRING_get0_data(s), (size_t)len);
	out[len] = '\0';
	if (strlen(out) != (size_t)len) {
		free(out);
		return NULL;
	}
	return out;
}

static int small_int(const char *s, int *v)
{
	char *end;
	long l;

	if (s == NULL || *s == '\0')
		return 0;
	l = strtol(s, &end, 10);
	if (*end != '\0' || l < 0 || l > 1000)
		return 0;
	*v = (int)l;
	return 1;
}

/* Decrypt the envelope and read the degenerate SignedData inside. */
static int open_envelope(const unsigned char *der, int len, EVP_PKEY *key,
			 X509 *key_cert, struct scep_reply *r)
{
	const unsigned char *p = der;
	CMS_ContentInfo *env = NULL, *deg = NULL;
	BIO *out = NULL;
	BUF_MEM *bm;
	int rc = SA_EREPLY;

	env = d2i_CMS_ContentInfo(NULL, &p, len);
	if (env == NULL || OBJ_obj2nid(CMS_get0_type(env)) != NID_pkcs7_enveloped) {
		rc = sa_fail(SA_EREPLY, "the SUCCESS CertRep does not hold an EnvelopedData");
		goto out;
	}
	if (key == NULL) {
		rc = sa_fail_noossl(SA_EUSAGE, "no key to decrypt the CertRep with");
		goto out;
	}
	out = BIO_new(BIO_s_mem());
	if (out == NULL) {
		rc = sa_fail(SA_ENOMEM, "out of memory");
		goto out;
	}
	if (!CMS_decrypt(env, key, key_cert, NULL, out, CMS_BINARY)) {
		rc = sa_fail(SA_EREPLY, "cannot decrypt the CertRep with the requester's key; "
			     "was the request signed with this key and certificate?");
		goto out;
	}
	BIO_get_mem_ptr(out, &bm);
	p = (const unsigned char *)bm->data;
	deg = d2i_CMS_ContentInfo(NULL, &p, (long)bm->length);
	if (deg == NULL || OBJ_obj2nid(CMS_get0_type(deg)) != NID_pkcs7_signed) {
		rc = sa_fail(SA_EREPLY, "the decrypted CertRep is not a PKCS#7 certificate bag");
		goto out;
	}
	r->certs = CMS_get1_certs(deg);
	r->crls = CMS_get1_crls(deg);
	ERR_clear_error(); /* empty stacks leave entries */
	if (sk_X509_num(r->certs) == 0 && sk_X509_CRL_num(r->crls) == 0) {
		rc = sa_fail_noossl(SA_EREPLY, "the SUCCESS CertRep holds no certificate and no CRL");
		goto out;
	}
	rc = SA_OK;
out:
	CMS_ContentInfo_free(env);
	CMS_ContentInfo_free(deg);
	BIO_free(out);
	return rc;
}

/* Parse and verify a CertRep; see scep.h. */
int scep_reply_parse(const unsigned char *der, size_t len,
		     const struct scep_ca *ca, const char *tid,
		     const unsigned char nonce[16], EVP_PKEY *key,
		     X509 *key_cert, struct scep_reply *out)
{
	const unsigned char *p = der;
	CMS_ContentInfo *cms = NULL;
	STACK_OF(CMS_SignerInfo) *sis;
	STACK_OF(X509) *signers = NULL, *trusted = NULL;
	CMS_SignerInfo *si;
	ASN1_OCTET_STRING **pos;
	ASN1_TYPE *rn;
	BIO *content = NULL, *dcont = NULL;
	BUF_MEM *bm;
	char *mtype = NULL, *status = NULL, *finfo = NULL;
	char shown[128]; /* server text in messages, escaped */
	struct scep_reply r = { .fail_info = -1 };
	int rc = SA_EREPLY, v;

	memset(out, 0, sizeof(*out));
	out->fail_info = -1;
	if (der == NULL || len == 0 || len > (1u << 30))
		return sa_fail_noossl(SA_EREPLY, "the CA sent an empty PKIOperation reply");
	if (ca == NULL || sk_X509_num(ca->certs) == 0)
		return sa_fail_noossl(SA_EUSAGE, "no CA certificates to verify the reply with");
	cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
	if (cms == NULL || OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
		rc = sa_fail(SA_EREPLY, "the PKIOperation reply (%zu bytes) is not a PKCS#7 "
			     "SignedData pkiMessage", len);
		goto out;
	}
	sis = CMS_get0_SignerInfos(cms);
	if (sk_CMS_SignerInfo_num(sis) != 1) {
		rc = sa_fail_noossl(SA_EREPLY, "the CertRep has %d signers, expected one",
				    sk_CMS_SignerInfo_num(sis));
		goto out;
	}
	si = sk_CMS_SignerInfo_value(sis, 0);
	/* FAILURE and PENDING replies may carry no content at all */
	pos = CMS_get0_content(cms);
	if (pos == NULL || *pos == NULL) {
		dcont = BIO_new_mem_buf("", 0);
		if (dcont == NULL) {
			rc = sa_fail(SA_ENOMEM, "out of memory");
			goto out;
		}
	}
	content = BIO_new(BIO_s_mem());
	if (content == NULL) {
		rc = sa_fail(SA_ENOMEM, "out of memory");
		goto out;
	}
	/*
	 * The signer must be the RA signing certificate, the CA or the anchor
	 * (scep_ca_signers): never another certificate of the CA files, never
	 * the reply's own.
	 */
	trusted = scep_ca_signers(ca);
	if (trusted == NULL) {
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	if (!CMS_verify(cms, trusted, NULL, dcont, content,
			CMS_NO_SIGNER_CERT_VERIFY | CMS_NOINTERN | CMS_BINARY)) {
		rc = sa_fail(SA_EREPLY, "the CertRep signature does not verify with the RA "
			     "signing certificate or the CA from GetCACert (no other certificate "
			     "is trusted to sign): the reply was not signed by this CA, or was "
			     "altered");
		goto out;
	}
	signers = CMS_get0_signers(cms);
	if (sa_log_level() >= SA_LOG_DEBUG && sk_X509_num(signers) > 0) {
		char name[256];

		X509_NAME_oneline(X509_get_subject_name(sk_X509_value(signers, 0)),
				  name, sizeof(name));
		sa_debug("CertRep signed by %s", name);
	}

	mtype = attr_string(si, SCEP_OID_MESSAGE_TYPE);
	if (!small_int(mtype, &v) || v != SCEP_MSG_CERTREP) {
		rc = sa_fail_noossl(SA_EREPLY, "the reply's messageType is %s, not CertRep (3)",
				    mtype ? sa_esc_str(mtype, shown, sizeof(shown)) : "missing");
		goto out;
	}
	r.transaction_id = attr_string(si, SCEP_OID_TRANSACTION_ID);
	if (r.transaction_id == NULL) {
		rc = sa_fail_noossl(SA_EREPLY, "the CertRep has no transactionID");
		goto out;
	}
	if (tid != NULL && strcmp(tid, r.transaction_id) != 0) {
		rc = sa_fail_noossl(SA_EREPLY, "the CertRep's transactionID %s is not ours (%s); "
				    "the reply belongs to another request",
				    sa_esc_str(r.transaction_id, shown, sizeof(shown)), tid);
		goto out;
	}
	rn = signed_attr(si, SCEP_OID_RECIPIENT_NONCE);
	if (nonce != NULL) {
		if (rn == NULL || rn->type != V_ASN1_OCTET_STRING ||
		    ASN1_STRING_length(rn->value.octet_string) != SCEP_NONCE_LEN ||
		    memcmp(ASN1_STRING_get0_data(rn->value.octet_string), nonce,
			   SCEP_NONCE_LEN) != 0) {
			rc = sa_fail_noossl(SA_EREPLY, "the CertRep's recipientNonce %s our "
					    "senderNonce: a replayed or misdirected reply",
					    rn ? "does not echo" : "is missing, it must echo");
			goto out;
		}
	}
	status = attr_string(si, SCEP_OID_PKI_STATUS);
	if (!small_int(status, &r.status) ||
	    (r.status != SCEP_STATUS_SUCCESS && r.status != SCEP_STATUS_FAILURE &&
	     r.status != SCEP_STATUS_PENDING)) {
		rc = sa_fail_noossl(SA_EREPLY, "the CertRep's pkiStatus is %s",
				    status ? sa_esc_str(status, shown, sizeof(shown)) : "missing");
		goto out;
	}
	switch (r.status) {
	case SCEP_STATUS_FAILURE:
		finfo = attr_string(si, SCEP_OID_FAIL_INFO);
		if (!small_int(finfo, &r.fail_info))
			r.fail_info = -1;
		r.fail_info_text = attr_string(si, SCEP_OID_FAIL_INFO_TEXT);
		break;
	case SCEP_STATUS_PENDING:
		break;
	case SCEP_STATUS_SUCCESS:
		BIO_get_mem_ptr(content, &bm);
		if (bm->length == 0) {
			rc = sa_fail_noossl(SA_EREPLY, "the SUCCESS CertRep has no content");
			goto out;
		}
		rc = open_envelope((unsigned char *)bm->data, (int)bm->length, key,
				   key_cert, &r);
		if (rc != SA_OK)
			goto out;
		break;
	}
	*out = r;
	memset(&r, 0, sizeof(r));
	rc = SA_OK;
out:
	scep_reply_clear(&r);
	sk_X509_free(trusted);
	sk_X509_free(signers);
	CMS_ContentInfo_free(cms);
	BIO_free(content);
	BIO_free(dcont);
	free(mtype);
	free(status);
	free(finfo);
	return rc;
}

/* The issued certificate: the one whose public key equals pub. get1. */
int scep_reply_find_cert(const struct scep_reply *r, EVP_PKEY *pub, X509 **out)
{
	int i;

	*out = NULL;
	for (i = 0; r && i < sk_X509_num(r->certs); i++) {
		X509 *x = sk_X509_value(r->certs, i);

		if (EVP_PKEY_eq(X509_get0_pubkey(x), pub) == 1) {
			if (!X509_up_ref(x))
				return sa_fail(SA_EINTERNAL, "X509_up_ref failed");
			*out = x;
			return SA_OK;
		}
	}
	ERR_clear_error();
	/* a SUCCESS without our certificate is a bad reply (exit 6) */
	return sa_fail_noossl(SA_EREPLY, "the CA's reply holds no certificate for our "
			      "public key (%d certificate(s) returned)",
			      r ? sk_X509_num(r->certs) : 0);
}

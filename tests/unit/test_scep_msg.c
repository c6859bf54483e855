/*
 * test_scep_msg.c - pkiMessage build -> parse round trips with software
 * keys, the test playing the CA: requests are verified and decrypted here,
 * CertReps (SUCCESS with a DES-CBC envelope, PENDING, FAILURE with
 * failInfoText) are built here and fed to scep_reply_parse, including the
 * ones it must refuse (wrong nonce, transactionID, signer, type).
 */
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "scep.h"
#include "scep_int.h"
#include "sa_err.h"
#include "test_scep_util.h"

static EVP_PKEY *ca_key, *ra_key, *ra2_key, *cli_key, *bad_key;
static X509 *ca, *ra_sign, *ra_enc, *stranger, *cli_cert;
static X509_REQ *cli_csr;
static struct scep_ca ca_only, ca_ra;

/* ---- tests ---------------------------------------------------------- */

static scep_client *client_with(unsigned caps, int cipher, int digest)
{
	struct scep_client_opts o = { .http.url = "http://127.0.0.1:9/scep",
				      .cipher = cipher, .digest = digest };
	scep_client *c = NULL;

	if (scep_client_new(&o, &c) != SA_OK)
		return NULL;
	c->caps = caps;
	c->caps_fetched = 1;
	return c;
}

static void test_pkcsreq(void)
{
	struct scep_request req = { .type = SCEP_MSG_PKCSREQ, .csr = cli_csr,
				    .signer_key = cli_key, .signer_cert = cli_cert };
	unsigned char *der = NULL, *der2 = NULL, nonce[16], nonce2[16], *csr_der = NULL;
	size_t len = 0, len2 = 0;
	struct parsed_req p;
	char *tid = scep_transaction_id(cli_key);
	int csr_len = i2d_X509_REQ(cli_csr, &csr_der);

	is_int(scep_msg_build(NULL, &ca_only, &req, &der, &len, nonce), SA_OK,
	       "PKCSReq built without caps");
	ca_read(der, len, ca, ca_key, &p);
	ok(p.verified, "CA verifies the request signature");
	is_str(p.mtype, "19", "messageType 19");
	is_int(p.mtype_type, V_ASN1_PRINTABLESTRING, "messageType is a PrintableString");
	is_str(p.tid, tid, "transactionID is the key's hash");
	is_int(p.tid_type, V_ASN1_PRINTABLESTRING, "transactionID is a PrintableString");
	is_int(p.nonce_type, V_ASN1_OCTET_STRING, "senderNonce is an OCTET STRING");
	is_int(p.nonce_len, 16, "senderNonce has 16 bytes");
	ok(memcmp(p.nonce, nonce, 16) == 0, "senderNonce handed back to the caller");
	ok(p.has_signing_time && p.has_content_type, "signingTime and contentType signed");
	ok(!p.has_smime_caps, "no S/MIME capabilities attribute");
	ok(p.issuer_serial_sid, "signer identified by issuerAndSerialNumber");
	is_int(p.ncerts, 1, "one certificate in the SignedData");
	ok(p.signer && X509_cmp(p.signer, cli_cert) == 0, "it is the signer's certificate");
	is_int(p.md_nid, NID_sha1, "no caps: SHA-1");
	is_int(p.enc_nid, NID_des_ede3_cbc, "no caps: 3DES envelope");
	ok(p.content_len == csr_len && p.content && memcmp(p.content, csr_der, (size_t)csr_len) == 0,
	   "CA decrypts exactly the CSR");
	parsed_req_free(&p);

	is_int(scep_msg_build(NULL, &ca_only, &req, &der2, &len2, nonce2), SA_OK, "built again");
	ok(memcmp(nonce, nonce2, 16) != 0, "senderNonce fresh per message");
	ca_read(der2, len2, ca, ca_key, &p);
	is_str(p.tid, tid, "same transactionID for the same key");
	parsed_req_free(&p);

	OPENSSL_free(der);
	OPENSSL_free(der2);
	OPENSSL_free(csr_der);
	free(tid);
}

static void test_caps_drive(void)
{
	struct scep_request req = { .type = SCEP_MSG_PKCSREQ, .csr = cli_csr,
				    .signer_key = cli_key, .signer_cert = cli_cert };
	unsigned char *der = NULL, nonce[16];
	size_t len = 0;
	struct parsed_req p;
	scep_client *c;

	c = client_with(SCEP_CAP_AES | SCEP_CAP_SHA256 | SCEP_CAP_POST, 0, 0);
	ok(c != NULL, "client created");
	is_int(scep_msg_build(c, &ca_only, &req, &der, &len, nonce), SA_OK, "built with caps");
	ca_read(der, len, ca, ca_key, &p);
	ok(p.verified, "verifies");
	is_int(p.md_nid, NID_sha256, "AES/SHA-256 caps: SHA-256");
	is_int(p.enc_nid, NID_aes_128_cbc, "AES/SHA-256 caps: AES-128-CBC");
	parsed_req_free(&p);
	OPENSSL_free(der);
	scep_client_free(c);

	c = client_with(SCEP_CAP_AES | SCEP_CAP_SHA256, SCEP_CIPHER_DES, SCEP_DIGEST_SHA512);
	is_int(scep_msg_build(c, &ca_only, &req, &der, &len, nonce), SA_OK,
	       "built with -E des -S sha512");
	ca_read(der, len, ca, ca_key, &p);
	is_int(p.md_nid, NID_sha512, "requested SHA-512 wins");
	is_int(p.enc_nid, NID_des_cbc, "requested DES wins (legacy provider loaded)");
	ok(p.content != NULL, "CA decrypts the DES envelope");
	parsed_req_free(&p);
	OPENSSL_free(der);
	scep_client_free(c);

	/* NDES: encrypt to the RA encryption certificate */
	is_int(scep_msg_build(NULL, &ca_ra, &req, &der, &len, nonce), SA_OK, "built for CA/RA");
	ca_read(der, len, ra_enc, ra2_key, &p);
	ok(p.content != NULL, "the RA encryption key decrypts it");
	parsed_req_free(&p);
	ca_read(der, len, ca, ca_key, &p);
	ok(p.content == NULL, "the CA key does not");
	parsed_req_free(&p);
	OPENSSL_free(der);
}

static void test_other_types(void)
{
	EVP_PKEY *new_key = tu_rsa(), *ec = tu_ec();
	X509_REQ *new_csr = tu_csr("client renewed", new_key), *ec_csr = tu_csr("ec client", ec);
	X509 *ec_cert = NULL;
	struct scep_request req = { .type = SCEP_MSG_RENEWALREQ, .csr = new_csr,
				    .signer_key = cli_key, .signer_cert = cli_cert };
	unsigned char *der = NULL, nonce[16];
	const unsigned char *q;
	size_t len = 0;
	struct parsed_req p;
	char *tid_new = scep_transaction_id(new_key), *tid_old = scep_transaction_id(cli_key);
	ASN1_INTEGER *serial = ASN1_INTEGER_new();
	long l;
	int tag, cls;

	is_int(scep_msg_build(NULL, &ca_only, &req, &der, &len, nonce), SA_OK, "RenewalReq built");
	ca_read(der, len, ca, ca_key, &p);
	ok(p.verified, "RenewalReq verifies");
	is_str(p.mtype, "17", "messageType 17");
	is_str(p.tid, tid_new, "transactionID from the new key");
	ok(p.signer && X509_cmp(p.signer, cli_cert) == 0, "signed with the old certificate");
	parsed_req_free(&p);
	OPENSSL_free(der);

	/* CertPoll: IssuerAndSubject */
	req.type = SCEP_MSG_CERTPOLL;
	req.csr = cli_csr;
	req.issuer = X509_get_subject_name(ca);
	req.subject = X509_REQ_get_subject_name(cli_csr);
	is_int(scep_msg_build(NULL, &ca_only, &req, &der, &len, nonce), SA_OK, "CertPoll built");
	ca_read(der, len, ca, ca_key, &p);
	is_str(p.mtype, "20", "messageType 20");
	is_str(p.tid, tid_old, "CertPoll keeps the request's transactionID");
	q = p.content;
	ok(q && (ASN1_get_object(&q, &l, &tag, &cls, p.content_len) & 0x80) == 0 &&
	   tag == V_ASN1_SEQUENCE, "IssuerAndSubject is a SEQUENCE");
	{
		X509_NAME *a = q ? d2i_X509_NAME(NULL, &q, l) : NULL;
		X509_NAME *b = a ? d2i_X509_NAME(NULL, &q, l) : NULL;

		ok(a && X509_NAME_cmp(a, X509_get_subject_name(ca)) == 0, "issuer is the CA");
		ok(b && X509_NAME_cmp(b, X509_REQ_get_subject_name(cli_csr)) == 0,
		   "subject is the request's");
		X509_NAME_free(a);
		X509_NAME_free(b);
	}
	parsed_req_free(&p);
	OPENSSL_free(der);

	/* GetCert: IssuerAndSerialNumber */
	ASN1_INTEGER_set(serial, 4242);
	req.type = SCEP_MSG_GETCERT;
	req.csr = NULL;
	req.subject = NULL;
	req.serial = serial;
	is_int(scep_msg_build(NULL, &ca_only, &req, &der, &len, nonce), SA_OK, "GetCert built");
	ca_read(der, len, ca, ca_key, &p);
	is_str(p.mtype, "21", "messageType 21");
	is_str(p.tid, tid_old, "GetCert transactionID from the signer's key");
	q = p.content;
	ok(q && (ASN1_get_object(&q, &l, &tag, &cls, p.content_len) & 0x80) == 0,
	   "IssuerAndSerialNumber header");
	{
		X509_NAME *a = q ? d2i_X509_NAME(NULL, &q, l) : NULL;
		ASN1_INTEGER *s = a ? d2i_ASN1_INTEGER(NULL, &q, l) : NULL;

		ok(a && X509_NAME_cmp(a, X509_get_subject_name(ca)) == 0, "issuer");
		ok(s && ASN1_INTEGER_get(s) == 4242, "serial 4242");
		X509_NAME_free(a);
		ASN1_INTEGER_free(s);
	}
	parsed_req_free(&p);
	OPENSSL_free(der);

	req.type = SCEP_MSG_GETCRL;
	is_int(scep_msg_build(NULL, &ca_only, &req, &der, &len, nonce), SA_OK, "GetCRL built");
	ca_read(der, len, ca, ca_key, &p);
	is_str(p.mtype, "22", "messageType 22");
	parsed_req_free(&p);
	OPENSSL_free(der);

	req.serial = NULL;
	is_int(scep_msg_build(NULL, &ca_only, &req, &der, &len, nonce), SA_EUSAGE,
	       "GetCRL without serial: usage error");
	ok(der == NULL, "nothing built");

	/* EC requester key: CMS signs where PKCS7 cannot */
	is_int(scep_selfsigned_new(ec_csr, ec, EVP_sha256(), &ec_cert), SA_OK,
	       "EC self-signed certificate");
	req = (struct scep_request){ .type = SCEP_MSG_PKCSREQ, .csr = ec_csr,
				     .signer_key = ec, .signer_cert = ec_cert };
	is_int(scep_msg_build(NULL, &ca_only, &req, &der, &len, nonce), SA_OK,
	       "PKCSReq signed with an EC key");
	ca_read(der, len, ca, ca_key, &p);
	ok(p.verified, "EC signature verifies");
	parsed_req_free(&p);
	OPENSSL_free(der);

	/* the envelope needs an RSA recipient */
	{
		struct scep_ca bad = { 0 };

		bad.certs = tu_stack(ec_cert, NULL, NULL);
		scep_ca_select(&bad, NULL, NULL);
		req.type = SCEP_MSG_PKCSREQ;
		is_int(scep_msg_build(NULL, &bad, &req, &der, &len, nonce), SA_EUSAGE,
		       "EC encryption certificate refused");
		ok(strstr(sa_errmsg(), "RSA") != NULL, "message names RSA: %s", sa_errmsg());
		scep_ca_clear(&bad);
	}

	ASN1_INTEGER_free(serial);
	X509_free(ec_cert);
	X509_REQ_free(new_csr);
	X509_REQ_free(ec_csr);
	EVP_PKEY_free(new_key);
	EVP_PKEY_free(ec);
	free(tid_new);
	free(tid_old);
}

static X509 *issue(X509_REQ *csr)
{
	X509 *x = X509_new();

	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 777);
	X509_set_subject_name(x, X509_REQ_get_subject_name(csr));
	X509_set_issuer_name(x, X509_get_subject_name(ca));
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, X509_REQ_get0_pubkey(csr));
	X509_sign(x, ca_key, EVP_sha256());
	return x;
}

static void test_replies(void)
{
	unsigned char nonce[16], wrong[16], *der = NULL;
	char *tid = scep_transaction_id(cli_key);
	X509 *issued = issue(cli_csr), *found = NULL;
	STACK_OF(X509) *bag = tu_stack(issued, NULL, NULL);
	struct scep_reply r;
	struct rep base = { .signer = ca, .signer_key = ca_key, .md = EVP_sha1(),
			    .status = "0", .tid = tid, .rnonce = nonce, .rnonce_len = 16,
			    .certs = bag, .enc_to = cli_cert, .cipher = EVP_des_cbc() };
	struct rep x;
	int n;

	RAND_bytes(nonce, 16);
	memcpy(wrong, nonce, 16);
	wrong[7] ^= 1;

	n = ca_reply(&base, &der);
	is_int(scep_reply_parse(der, (size_t)n, &ca_only, tid, nonce, cli_key, cli_cert, &r),
	       SA_OK, "SUCCESS, SHA-1 signed, DES-CBC envelope");
	is_int(r.status, SCEP_STATUS_SUCCESS, "status SUCCESS");
	is_str(r.transaction_id, tid, "transactionID echoed");
	is_int(sk_X509_num(r.certs), 1, "one certificate");
	is_int(scep_reply_find_cert(&r, cli_key, &found), SA_OK, "issued certificate found by key");
	ok(found && X509_cmp(found, issued) == 0, "it is the issued one");
	X509_free(found);
	is_int(scep_reply_find_cert(&r, bad_key, &found), SA_EREPLY, "no certificate for another key: a bad reply");
	scep_reply_clear(&r);

	is_int(scep_reply_parse(der, (size_t)n, &ca_only, tid, nonce, cli_key, NULL, &r),
	       SA_OK, "decrypt without naming the certificate");
	scep_reply_clear(&r);

	/* tampered: last byte is in the signature value */
	der[n - 1] ^= 0x01;
	is_int(scep_reply_parse(der, (size_t)n, &ca_only, tid, nonce, cli_key, cli_cert, &r),
	       SA_EREPLY, "altered signature refused");
	ok(strstr(sa_errmsg(), "signature") != NULL, "message: %s", sa_errmsg());
	OPENSSL_free(der);

	x = base;
	x.signer = ra_sign;
	x.signer_key = ra_key;
	x.md = EVP_sha256();
	x.cipher = EVP_aes_256_cbc();
	n = ca_reply(&x, &der);
	is_int(scep_reply_parse(der, (size_t)n, &ca_ra, tid, nonce, cli_key, cli_cert, &r),
	       SA_OK, "SUCCESS signed by the RA, AES-256 envelope");
	is_int(sk_X509_num(r.certs), 1, "certificate inside");
	scep_reply_clear(&r);
	is_int(scep_reply_parse(der, (size_t)n, &ca_only, tid, nonce, cli_key, cli_cert, &r),
	       SA_EREPLY, "RA signature refused when only the CA is known");
	OPENSSL_free(der);

	/* a certificate of the CA set that is not a signer: never trusted to sign */
	x = base;
	x.signer = ra_enc;
	x.signer_key = ra2_key;
	n = ca_reply(&x, &der);
	is_int(scep_reply_parse(der, (size_t)n, &ca_ra, tid, nonce, cli_key, cli_cert, &r),
	       SA_EREPLY, "signed by the RA encryption certificate: refused");
	{
		/* nor an unrelated certificate added to the set */
		struct scep_ca mixed = { 0 };

		OPENSSL_free(der);
		x = base;
		x.signer = stranger;
		x.signer_key = bad_key;
		n = ca_reply(&x, &der);
		mixed.certs = tu_stack(ca, stranger, NULL);
		is_int(scep_ca_trust(&mixed, NULL, NULL), SA_EREPLY,
		       "CA and stranger without a pin: ambiguous");
		scep_ca_clear(&mixed);
		mixed.certs = tu_stack(ca, stranger, NULL);
		is_int(scep_ca_select(&mixed, NULL, NULL), SA_OK, "CA and stranger: roles");
		ok(scep_certs_contain(mixed.certs, stranger), "the stranger is in the set");
		is_int(scep_reply_parse(der, (size_t)n, &mixed, tid, nonce, cli_key, cli_cert, &r),
		       SA_EREPLY, "signed by a stranger that is in the CA set: refused");
		scep_ca_clear(&mixed);
	}
	OPENSSL_free(der);

	x = base;
	x.status = "3";
	x.enc_to = NULL;
	x.detached = 1;
	n = ca_reply(&x, &der);
	is_int(scep_reply_parse(der, (size_t)n, &ca_only, tid, nonce, cli_key, cli_cert, &r),
	       SA_OK, "PENDING without content");
	is_int(r.status, SCEP_STATUS_PENDING, "status PENDING");
	ok(r.certs == NULL, "no certificates");
	scep_reply_clear(&r);
	OPENSSL_free(der);

	x.detached = 0;
	n = ca_reply(&x, &der);
	is_int(scep_reply_parse(der, (size_t)n, &ca_only, tid, nonce, cli_key, cli_cert, &r),
	       SA_OK, "PENDING with empty content");
	is_int(r.status, SCEP_STATUS_PENDING, "status PENDING");
	scep_reply_clear(&r);
	OPENSSL_free(der);

	x = base;
	x.status = "2";
	x.enc_to = NULL;
	x.fail_info = "2";
	x.fail_text = "challenge password mismatch (caf\xc3\xa9)";
	n = ca_reply(&x, &der);
	is_int(scep_reply_parse(der, (size_t)n, &ca_only, tid, nonce, cli_key, cli_cert, &r),
	       SA_OK, "FAILURE is a result, not an error");
	is_int(r.status, SCEP_STATUS_FAILURE, "status FAILURE");
	is_int(r.fail_info, SCEP_FAIL_BADREQUEST, "failInfo badRequest");
	is_str(r.fail_info_text, "challenge password mismatch (caf\xc3\xa9)",
	       "failInfoText (UTF8String)");
	scep_reply_clear(&r);
	OPENSSL_free(der);

	x.fail_info = NULL;
	x.fail_text = NULL;
	n = ca_reply(&x, &der);
	is_int(scep_reply_parse(der, (size_t)n, &ca_only, tid, nonce, cli_key, cli_cert, &r),
	       SA_OK, "FAILURE without failInfo");
	is_int(r.fail_info, -1, "failInfo -1 when absent");
	ok(r.fail_info_text == NULL, "no text");
	scep_reply_clear(&r);
	OPENSSL_free(der);

	/* what must be refused */
	n = ca_reply(&base, &der);
	is_int(scep_reply_parse(der, (size_t)n, &ca_only, tid, wrong, cli_key, cli_cert, &r),
	       SA_EREPLY, "wrong recipientNonce refused");
	ok(strstr(sa_errmsg(), "recipientNonce") != NULL, "message: %s", sa_errmsg());
	ok(r.certs == NULL && r.status == 0, "output cleared");
	is_int(scep_reply_parse(der, (size_t)n, &ca_only, "0000", nonce, cli_key, cli_cert, &r),
	       SA_EREPLY, "wrong transactionID refused");
	ok(strstr(sa_errmsg(), "transactionID") != NULL, "message: %s", sa_errmsg());
	is_int(scep_reply_parse(der, (size_t)n, &ca_only, tid, nonce, bad_key, NULL, &r),
	       SA_EREPLY, "envelope for another key refused");
	ok(strstr(sa_errmsg(), "decrypt") != NULL, "message: %s", sa_errmsg());
	OPENSSL_free(der);

	x = base;
	x.rnonce = NULL;
	n = ca_reply(&x, &der);
	is_int(scep_reply_parse(der, (size_t)n, &ca_only, tid, nonce, cli_key, cli_cert, &r),
	       SA_EREPLY, "missing recipientNonce refused");
	OPENSSL_free(der);

	x = base;
	x.rnonce_len = 8;
	n = ca_reply(&x, &der);
	is_int(scep_reply_parse(der, (size_t)n, &ca_only, tid, nonce, cli_key, cli_cert, &r),
	       SA_EREPLY, "short recipientNonce refused");
	OPENSSL_free(der);

	x = base;
	x.signer = stranger;
	x.signer_key = bad_key;
	n = ca_reply(&x, &der);
	is_int(scep_reply_parse(der, (size_t)n, &ca_only, tid, nonce, cli_key, cli_cert, &r),
	       SA_EREPLY, "reply signed by a stranger (certificate included) refused");
	ok(strstr(sa_errmsg(), "GetCACert") != NULL, "message: %s", sa_errmsg());
	OPENSSL_free(der);

	x = base;
	x.mtype = "19";
	n = ca_reply(&x, &der);
	is_int(scep_reply_parse(der, (size_t)n, &ca_only, tid, nonce, cli_key, cli_cert, &r),
	       SA_EREPLY, "messageType 19 refused");
	ok(strstr(sa_errmsg(), "CertRep") != NULL, "message: %s", sa_errmsg());
	OPENSSL_free(der);

	x = base;
	x.status = NULL;
	n = ca_reply(&x, &der);
	is_int(scep_reply_parse(der, (size_t)n, &ca_only, tid, nonce, cli_key, cli_cert, &r),
	       SA_EREPLY, "missing pkiStatus refused");
	OPENSSL_free(der);

	x = base;
	x.status = "7";
	n = ca_reply(&x, &der);
	is_int(scep_reply_parse(der, (size_t)n, &ca_only, tid, nonce, cli_key, cli_cert, &r),
	       SA_EREPLY, "unknown pkiStatus refused");
	OPENSSL_free(der);

	x = base;
	x.tid = NULL;
	n = ca_reply(&x, &der);
	is_int(scep_reply_parse(der, (size_t)n, &ca_only, tid, nonce, cli_key, cli_cert, &r),
	       SA_EREPLY, "missing transactionID refused");
	OPENSSL_free(der);

	is_int(scep_reply_parse((const unsigned char *)"<html>", 6, &ca_only, tid, nonce,
				cli_key, cli_cert, &r), SA_EREPLY, "garbage refused");

	/* GetCRL reply */
	{
		X509_CRL *crl = X509_CRL_new();
		STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();

		X509_CRL_set_version(crl, 1);
		X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca));
		{
			ASN1_TIME *t = ASN1_TIME_new();

			X509_gmtime_adj(t, 0);
			X509_CRL_set1_lastUpdate(crl, t);
			X509_gmtime_adj(t, 3600);
			X509_CRL_set1_nextUpdate(crl, t);
			ASN1_TIME_free(t);
		}
		X509_CRL_sign(crl, ca_key, EVP_sha256());
		sk_X509_CRL_push(crls, crl);
		x = base;
		x.certs = NULL;
		x.crls = crls;
		n = ca_reply(&x, &der);
		is_int(scep_reply_parse(der, (size_t)n, &ca_only, tid, nonce, cli_key, cli_cert, &r),
		       SA_OK, "GetCRL SUCCESS");
		is_int(sk_X509_CRL_num(r.crls), 1, "one CRL");
		scep_reply_clear(&r);
		OPENSSL_free(der);
		sk_X509_CRL_pop_free(crls, X509_CRL_free);
	}

	sk_X509_pop_free(bag, X509_free);
	X509_free(issued);
	free(tid);
}

static void test_selfsigned(void)
{
	X509 *x = NULL;
	X509_REQ *other_csr = tu_csr("other", bad_key);
	const ASN1_TIME *nb;
	int day, sec;

	is_int(scep_selfsigned_new(cli_csr, cli_key, EVP_sha256(), &x), SA_OK, "self-signed");
	ok(x && X509_NAME_cmp(X509_get_subject_name(x), X509_REQ_get_subject_name(cli_csr)) == 0,
	   "subject from the request");
	ok(x && X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(x)) == 0,
	   "issuer is the subject");
	ok(x && X509_verify(x, cli_key) == 1, "signed by the key");
	nb = x ? X509_get0_notBefore(x) : NULL;
	ok(nb && ASN1_TIME_diff(&day, &sec, nb, NULL) && day == 0 && sec >= 3500,
	   "notBefore an hour in the past");
	ok(x && ASN1_INTEGER_get(X509_get0_serialNumber(x)) != 0, "random serial");
	X509_free(x);
	x = NULL;
	is_int(scep_selfsigned_new(other_csr, cli_key, EVP_sha256(), &x), SA_EKEY,
	       "key not matching the request refused");
	ok(x == NULL, "nothing returned");
	X509_REQ_free(other_csr);
}

int main(void)
{
	scep_crypto_init();
	ca_key = tu_rsa();
	ra_key = tu_rsa();
	ra2_key = tu_rsa();
	cli_key = tu_rsa();
	bad_key = tu_rsa();
	ca = tu_cert("Test CA", ca_key, NULL, NULL, "critical,keyCertSign,cRLSign", 1);
	ra_sign = tu_cert("Test RA sign", ra_key, ca, ca_key, "critical,digitalSignature", 0);
	ra_enc = tu_cert("Test RA enc", ra2_key, ca, ca_key, "critical,keyEncipherment", 0);
	stranger = tu_cert("Test CA", bad_key, NULL, NULL, NULL, 1);
	cli_csr = tu_csr("client", cli_key);
	if (scep_selfsigned_new(cli_csr, cli_key, EVP_sha256(), &cli_cert) != SA_OK)
		diag("selfsigned: %s", sa_errmsg());
	ca_only.certs = tu_stack(ca, NULL, NULL);
	scep_ca_select(&ca_only, NULL, NULL);
	ca_ra.certs = tu_stack(ra_enc, ca, ra_sign);
	scep_ca_select(&ca_ra, NULL, NULL);

	test_pkcsreq();
	test_caps_drive();
	test_other_types();
	test_replies();
	test_selfsigned();

	scep_ca_clear(&ca_only);
	scep_ca_clear(&ca_ra);
	X509_REQ_free(cli_csr);
	X509_free(cli_cert);
	X509_free(ca);
	X509_free(ra_sign);
	X509_free(ra_enc);
	X509_free(stranger);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(ra_key);
	EVP_PKEY_free(ra2_key);
	EVP_PKEY_free(cli_key);
	EVP_PKEY_free(bad_key);
	return tap_done();
}

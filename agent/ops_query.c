/*
 * ops_query.c - getcert and getcrl: queries signed with an existing key
 * and certificate (-k, -l), the reply decrypted with that key.
 */
#include "agent.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "csr.h"
#include "files.h"
#include "keyload.h"
#include "sa_err.h"
#include "sa_esc.h"
#include "sa_log.h"

struct query {
	struct scep_ca ca;
	scep_client *c;
	struct keyload *kl;
	EVP_PKEY *key;      /* a file key (owned), or obj's handle */
	p11_keyobj *obj;    /* a token key's custody object, owned */
	X509 *cert;   /* -l: the signer's certificate */
	X509 *other;  /* -O */
};

static void query_clear(struct query *q)
{
	X509_free(q->other);
	X509_free(q->cert);
	if (q->obj != NULL)
		p11_keyobj_free(q->obj);
	else
		EVP_PKEY_free(q->key);
	keyload_free(q->kl);
	scep_client_free(q->c);
	scep_ca_clear(&q->ca);
	memset(q, 0, sizeof(*q));
}

static int query_open(const struct agent_opts *o, struct query *q)
{
	const struct conf_settings *s = &o->s;
	int rc;

	memset(q, 0, sizeof(*q));
	if (s->private_key == NULL || s->local_cert_file == NULL)
		return sa_fail_noossl(SA_EUSAGE, "%s needs the key (-k, "
				      "PrivateKeyFile) and its certificate (-l, "
				      "LocalCertFile) to sign the query",
				      o->op_name);
	rc = agent_ca_load(o, &q->ca);
	if (rc == 0)
		rc = agent_client_new(o, &q->c);
	if (rc == 0)
		rc = files_read_cert(s->local_cert_file, &q->cert);
	if (rc == 0 && s->other_cert_file != NULL)
		rc = files_read_cert(s->other_cert_file, &q->other);
	if (rc == 0)
		rc = keyload_new(&o->p11, &q->kl);
	if (rc == 0)
		rc = keyload_get1(q->kl, s->private_key, &q->key, &q->obj);
	if (rc == 0 && EVP_PKEY_eq(X509_get0_pubkey(q->cert), q->key) != 1) {
		char shown[KEYLOAD_SHOWN];

		/* a key problem (exit 7); the URI without its pin-value */
		rc = sa_fail_noossl(SA_EKEY, "the certificate %s does not "
				    "belong to the key %s; give -l the "
				    "certificate of that key", s->local_cert_file,
				    keyload_display(s->private_key, shown,
						    sizeof(shown)));
	}
	if (rc < 0)
		query_clear(q);
	return rc;
}

/* -d: what a query asks for (issuer and serial, decimal and hex). */
static void query_debug(const char *what, const X509_NAME *issuer,
			const ASN1_INTEGER *serial)
{
	BIGNUM *bn;
	char *name, *dec, *hex;

	if (sa_log_level() < SA_LOG_DEBUG)
		return;
	bn = ASN1_INTEGER_to_BN(serial, NULL);
	name = csr_name_oneline(issuer);
	dec = bn ? BN_bn2dec(bn) : NULL;
	hex = bn ? BN_bn2hex(bn) : NULL;
	sa_debug("%s: issuer %s, serial %s (0x%s)", what, name ? name : "?",
		 dec ? dec : "?", hex ? hex : "?");
	OPENSSL_free(hex);
	OPENSSL_free(dec);
	free(name);
	BN_free(bn);
}

/* PENDING and FAILURE of a query. */
static int query_verdict(const struct agent_opts *o, const struct scep_reply *r,
			 int *result)
{
	char url[512], text[1024];

	if (r->status == SCEP_STATUS_SUCCESS) {
		sa_info("pkistatus: SUCCESS");
		return 1;
	}
	if (r->status == SCEP_STATUS_PENDING) {
		sa_info("pkistatus: PENDING");
		sa_err("the CA answered PENDING to %s; try again later",
		       o->op_name);
		*result = SA_EXIT_PENDING;
		return 0;
	}
	sa_info("pkistatus: FAILURE");
	/* the URL without credentials, the CA's text escaped */
	sa_err("the CA at %s refused %s: failInfo %s%s%s%s: %s",
	       sa_url_shown(o->s.url, url, sizeof(url)),
	       o->op_name, scep_fail_info_name(r->fail_info),
	       r->fail_info_text ? " (\"" : "",
	       r->fail_info_text ? sa_esc_str(r->fail_info_text, text, sizeof(text)) : "",
	       r->fail_info_text ? "\")" : "", scep_fail_info_hint(r->fail_info));
	*result = SA_EXIT_FAILURE;
	return 0;
}

int op_getcert(const struct agent_opts *o, int *result)
{
	struct query q;
	struct scep_request req;
	struct scep_reply r = { .fail_info = -1 };
	ASN1_INTEGER *serial = NULL;
	X509 *got = NULL;
	int rc, i;

	*result = SA_EXIT_OK;
	rc = agent_serial_parse(o->s.get_cert_serial, &serial);
	if (rc < 0)
		return rc;
	rc = query_open(o, &q);
	if (rc < 0)
		goto out;
	memset(&req, 0, sizeof(req));
	req.type = SCEP_MSG_GETCERT;
	req.issuer = X509_get_subject_name(q.other ? q.other : q.ca.ca);
	req.serial = serial;
	req.signer_key = q.key;
	req.signer_cert = q.cert;
	query_debug("GetCert", req.issuer, req.serial);
	sa_info("requesting certificate");
	rc = scep_transact(q.c, &q.ca, &req, &r);
	if (rc < 0)
		goto out;
	sa_info("valid response from server");
	if (!query_verdict(o, &r, result))
		goto out;
	for (i = 0; i < sk_X509_num(r.certs) && got == NULL; i++)
		if (ASN1_INTEGER_cmp(X509_get0_serialNumber(sk_X509_value(r.certs, i)),
				     serial) == 0)
			got = sk_X509_value(r.certs, i);
	if (got == NULL && sk_X509_num(r.certs) > 0) {
		rc = sa_fail_noossl(SA_EREPLY, "the CA answered SUCCESS with %d "
				    "certificate(s), none with serial %s; "
				    "nothing written", sk_X509_num(r.certs),
				    o->s.get_cert_serial);
		goto out;
	}
	if (got == NULL) {
		rc = sa_fail_noossl(SA_EREPLY, "the CA answered SUCCESS without "
				    "a certificate");
		goto out;
	}
	/* a certificate of another CA is not what was asked for */
	rc = scep_ca_verify_issued(&q.ca, got, r.certs);
	if (rc < 0)
		goto out;
	if (o->s.get_cert_file != NULL) {
		rc = files_write_cert(o->s.get_cert_file, got);
		if (rc < 0)
			goto out;
		agent_out("certificate written as %s", o->s.get_cert_file);
	} else {
		PEM_write_X509(stdout, got);
		fflush(stdout);
	}
out:
	scep_reply_clear(&r);
	ASN1_INTEGER_free(serial);
	query_clear(&q);
	return rc;
}

int op_getcrl(const struct agent_opts *o, int *result)
{
	struct query q;
	struct scep_request req;
	struct scep_reply r = { .fail_info = -1 };
	ASN1_INTEGER *serial = NULL;
	X509 *of;
	X509_CRL *crl;
	int rc;

	*result = SA_EXIT_OK;
	if (o->s.get_cert_serial != NULL) {
		rc = agent_serial_parse(o->s.get_cert_serial, &serial);
		if (rc < 0)
			return rc;
	}
	rc = query_open(o, &q);
	if (rc < 0)
		goto out;
	memset(&req, 0, sizeof(req));
	req.type = SCEP_MSG_GETCRL;
	if (serial != NULL) {
		/* -s: the CRL of the CA (-c) for the certificate of that serial */
		if (q.other != NULL)
			sa_warn("-O %s is not used: -s %s asks for the CRL by "
				"the CA's name and that serial",
				o->s.other_cert_file, o->s.get_cert_serial);
		req.issuer = X509_get_subject_name(q.ca.ca);
		req.serial = serial;
	} else {
		/* sscep: issuer and serial of -O, else of the local certificate */
		of = q.other ? q.other : q.cert;
		req.issuer = X509_get_issuer_name(of);
		req.serial = (ASN1_INTEGER *)X509_get0_serialNumber(of);
	}
	req.signer_key = q.key;
	req.signer_cert = q.cert;
	query_debug("GetCRL", req.issuer, req.serial);
	sa_info("requesting crl");
	rc = scep_transact(q.c, &q.ca, &req, &r);
	if (rc < 0)
		goto out;
	sa_info("valid response from server");
	if (!query_verdict(o, &r, result))
		goto out;
	if (sk_X509_CRL_num(r.crls) < 1) {
		rc = sa_fail_noossl(SA_EREPLY, "the CA answered SUCCESS without "
				    "a CRL");
		goto out;
	}
	crl = sk_X509_CRL_value(r.crls, 0);
	rc = scep_ca_verify_crl(&q.ca, crl);
	if (rc < 0)
		goto out;
	if (o->s.get_crl_file != NULL) {
		rc = files_write_crl(o->s.get_crl_file, crl);
		if (rc < 0)
			goto out;
		agent_out("CRL written as %s", o->s.get_crl_file);
	} else {
		PEM_write_X509_CRL(stdout, crl);
		fflush(stdout);
	}
out:
	scep_reply_clear(&r);
	ASN1_INTEGER_free(serial);
	query_clear(&q);
	return rc;
}

/*
 * client.c - crypto initialisation, the client object, and the GetCACaps,
 * GetCACert, GetNextCACert and PKIOperation round trips.
 */
#include "scep_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/provider.h>

#include "sa_err.h"
#include "sa_esc.h"
#include "sa_log.h"
#include "sa_step.h"

static int crypto_ready;
static OSSL_PROVIDER *prov_default, *prov_legacy; /* held for the process */

/* Unload at exit, before OpenSSL's own cleanup (atexit runs LIFO). */
static void crypto_unload(void)
{
	if (prov_legacy)
		OSSL_PROVIDER_unload(prov_legacy);
	if (prov_default)
		OSSL_PROVIDER_unload(prov_default);
	prov_legacy = prov_default = NULL;
}

/* Load the default and legacy providers into the default context. */
int scep_crypto_init(void)
{
	if (crypto_ready)
		return SA_OK;
	/* make sure OpenSSL registered its atexit cleanup before ours */
	OPENSSL_init_crypto(0, NULL);
	if ((prov_default = OSSL_PROVIDER_load(NULL, "default")) == NULL)
		return sa_fail(SA_ECRYPTO, "cannot load OpenSSL's default provider");
	/* DES-CBC replies need legacy; without it only they fail, so go on */
	if ((prov_legacy = OSSL_PROVIDER_load(NULL, "legacy")) == NULL) {
		ERR_clear_error();
		sa_warn("cannot load OpenSSL's legacy provider: replies encrypted with "
			"single DES will not be readable");
	}
	atexit(crypto_unload);
	crypto_ready = 1;
	return SA_OK;
}

static void client_opts_free(struct scep_client_opts *o)
{
	free((char *)o->http.url);
	free((char *)o->http.proxy);
	free((char *)o->http.ca_bundle);
	free((char *)o->ca_ident);
}

static int dup_opt(const char *in, const char **out)
{
	*out = NULL;
	if (in == NULL)
		return 1;
	*out = strdup(in);
	return *out != NULL;
}

/* Create a client; opts are copied. */
int scep_client_new(const struct scep_client_opts *opts, scep_client **out)
{
	scep_client *c;
	int rc;

	*out = NULL;
	if ((rc = scep_crypto_init()) != SA_OK)
		return rc;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	c->opts = *opts;
	c->opts.http.url = c->opts.http.proxy = c->opts.http.ca_bundle = NULL;
	c->opts.ca_ident = NULL;
	if (!dup_opt(opts->http.url, &c->opts.http.url) ||
	    !dup_opt(opts->http.proxy, &c->opts.http.proxy) ||
	    !dup_opt(opts->http.ca_bundle, &c->opts.http.ca_bundle) ||
	    !dup_opt(opts->ca_ident, &c->opts.ca_ident)) {
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto fail;
	}
	if ((rc = scep_http_new(&c->opts.http, &c->http)) != SA_OK)
		goto fail;
	*out = c;
	return SA_OK;
fail:
	scep_client_free(c);
	return rc;
}

/* Free a client (NULL is fine). */
void scep_client_free(scep_client *c)
{
	if (c == NULL)
		return;
	scep_http_free(c->http);
	client_opts_free(&c->opts);
	free(c);
}

/*
 * A CA without capabilities gets the weakest choices RFC 8894 leaves:
 * say so, and what is lost, unless the options chose otherwise.
 */
static void caps_fallback_warn(scep_client *c, const char *why)
{
	char shown[512];

	sa_warn("the CA at %s %s: falling back to what every SCEP server "
		"supports: PKIOperation by GET, 3DES and SHA-1 (unless -E/-S "
		"choose otherwise); lost: POST, AES, SHA-256, RenewalReq and "
		"GetNextCACert", sa_url_shown(scep_http_url(c->http), shown,
		sizeof(shown)), why);
}

/* GetCACaps; see scep.h. */
int scep_get_caps(scep_client *c, unsigned *caps)
{
	struct scep_buf b = { 0 };
	char names[256], why[64];
	int rc;

	*caps = 0;
	rc = scep_http_get(c->http, "GetCACaps", c->opts.ca_ident, &b);
	if (rc != SA_OK) {
		long st = scep_http_last_status(c->http);

		/*
		 * A server without GetCACaps is legal: no caps. A gateway or
		 * an unavailable service (502, 503, 504) says nothing about
		 * the CA: that is an outage, not a missing operation.
		 */
		if (rc == SA_ENET && st >= 400 && st < 600 && st != 502 &&
		    st != 503 && st != 504) {
			snprintf(why, sizeof(why), "does not answer GetCACaps (HTTP %ld)", st);
			caps_fallback_warn(c, why);
			c->caps = 0;
			c->caps_fetched = 1;
			c->caps_rc = SA_OK;
			sa_err_clear();
			return SA_OK;
		}
		return rc;
	}
	c->caps = scep_caps_parse((const char *)b.data, b.len);
	c->caps_fetched = 1;
	c->caps_rc = SA_OK;
	sa_verbose("CA capabilities: %s", scep_caps_str(c->caps, names, sizeof(names)));
	if (c->caps == 0)
		caps_fallback_warn(c, b.len ? "lists no capability it knows in its GetCACaps "
				   "reply" : "sends an empty GetCACaps reply");
	scep_buf_clear(&b);
	*caps = c->caps;
	return SA_OK;
}

/*
 * Fetch the caps once. A GetCACaps the server does not support (HTTP
 * 4xx/5xx but 502-504) is "no capabilities"; any other failure (no connection, a stop
 * signal, ...) is kept with its message, so that the request that needed
 * the caps fails with it instead of going on with the weakest choices.
 */
static void caps_fetch(scep_client *c)
{
	unsigned caps;
	int rc;

	if (c->caps_fetched)
		return;
	rc = scep_get_caps(c, &caps);
	c->caps_fetched = 1;
	if (rc != SA_OK) {
		c->caps = 0;
		c->caps_rc = rc;
		/* kept for later callers; still the current message too */
		sa_error_take(&c->caps_err, rc);
		sa_error_raise(&c->caps_err);
	}
}

/* The caps, fetched once, or the error of that fetch; see scep.h. */
int scep_client_get_caps(scep_client *c, unsigned *caps)
{
	*caps = 0;
	if (c == NULL)
		return sa_fail_noossl(SA_EINTERNAL, "no SCEP client");
	caps_fetch(c);
	if (c->caps_rc != SA_OK)
		return sa_error_raise(&c->caps_err);
	*caps = c->caps;
	return SA_OK;
}

/* The caps, fetched once (0 if the fetch failed); see scep.h. */
unsigned scep_client_caps(scep_client *c)
{
	if (c == NULL)
		return 0;
	caps_fetch(c);
	return c->caps_rc == SA_OK ? c->caps : 0;
}

/*
 * A reply that arrived but was refused (SA_EREPLY): its message gets
 * "OP reply from URL: " in front, so that it says which server sent it
 * (without credentials). Other codes pass unchanged.
 */
static int reply_refused(scep_client *c, const char *op, int rc)
{
	char shown[512];

	if (rc != SA_EREPLY)
		return rc;
	return sa_fail_prefix(rc, "%s reply from %s: ", op,
			      sa_url_shown(scep_http_url(c->http), shown,
					   sizeof(shown)));
}

/* GetCACert; see scep.h. */
int scep_get_ca(scep_client *c, struct scep_ca *out)
{
	struct scep_buf b = { 0 };
	struct scep_ca ca = { 0 };
	int rc;

	memset(out, 0, sizeof(*out));
	rc = scep_http_get(c->http, "GetCACert", c->opts.ca_ident, &b);
	if (rc != SA_OK)
		return rc;
	if (b.content_type &&
	    strncasecmp(b.content_type, "application/x-x509-ca-cert", 26) != 0 &&
	    strncasecmp(b.content_type, "application/x-x509-ca-ra-cert", 29) != 0)
		sa_verbose("GetCACert: unexpected Content-Type %s; sniffing the body",
			   b.content_type);
	rc = scep_certs_parse(b.data, b.len, &ca.certs);
	if (rc != SA_OK)
		goto out;
	rc = scep_ca_select(&ca, NULL, NULL);
	if (rc != SA_OK)
		goto out;
	*out = ca;
	memset(&ca, 0, sizeof(ca));
out:
	scep_ca_clear(&ca);
	scep_buf_clear(&b);
	return reply_refused(c, "GetCACert", rc);
}

/*
 * Verify a GetNextCACert reply (SignedData by the current CA/RA over a
 * degenerate certificate bag) and extract the new chain; the certificate
 * that signed it into *signer (get1) when signer is not NULL.
 */
static int next_ca_parse(const unsigned char *der, size_t len,
			 const struct scep_ca *current, struct scep_ca *out,
			 X509 **signer)
{
	const unsigned char *p = der;
	CMS_ContentInfo *cms = NULL;
	BIO *content = NULL;
	BUF_MEM *bm;
	STACK_OF(X509) *signers = NULL, *trusted = NULL;
	X509 *who = NULL;
	struct scep_ca next = { 0 };
	int rc = SA_EREPLY;

	memset(out, 0, sizeof(*out));
	if (signer != NULL)
		*signer = NULL;
	if (current == NULL || sk_X509_num(current->certs) == 0)
		return sa_fail_noossl(SA_EUSAGE,
			"GetNextCACert needs the current CA certificate to verify the reply");
	cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
	if (cms == NULL || OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
		rc = sa_fail(SA_EREPLY, "the GetNextCACert reply is not a PKCS#7 SignedData");
		goto out;
	}
	content = BIO_new(BIO_s_mem());
	if (content == NULL) {
		rc = sa_fail(SA_ENOMEM, "out of memory");
		goto out;
	}
	/* only the current RA signing certificate, CA or anchor may sign it */
	trusted = scep_ca_signers(current);
	if (trusted == NULL) {
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	if (!CMS_verify(cms, trusted, NULL, NULL, content,
			CMS_NO_SIGNER_CERT_VERIFY | CMS_NOINTERN | CMS_BINARY)) {
		rc = sa_fail(SA_EREPLY, "the GetNextCACert reply is not signed by the current "
			     "CA/RA certificate; refusing the new CA certificates");
		goto out;
	}
	if (signer != NULL) {
		signers = CMS_get0_signers(cms);
		if (sk_X509_num(signers) < 1 || (who = sk_X509_value(signers, 0)) == NULL ||
		    !X509_up_ref(who)) {
			who = NULL;
			rc = sa_fail(SA_EINTERNAL, "cannot tell which certificate signed "
				     "the GetNextCACert reply");
			goto out;
		}
	}
	BIO_get_mem_ptr(content, &bm);
	rc = scep_certs_parse((unsigned char *)bm->data, bm->length, &next.certs);
	if (rc != SA_OK)
		goto out;
	rc = scep_ca_select(&next, NULL, NULL);
	if (rc != SA_OK)
		goto out;
	*out = next;
	memset(&next, 0, sizeof(next));
	if (signer != NULL) {
		*signer = who;
		who = NULL;
	}
out:
	X509_free(who);
	sk_X509_free(trusted);
	sk_X509_free(signers);
	scep_ca_clear(&next);
	CMS_ContentInfo_free(cms);
	BIO_free(content);
	return rc;
}

/* The verification and parsing half of GetNextCACert; see scep.h. */
int scep_next_ca_parse(const unsigned char *der, size_t len,
		       const struct scep_ca *current, struct scep_ca *out)
{
	return next_ca_parse(der, len, current, out, NULL);
}

/* GetNextCACert; see scep.h. */
int scep_get_next_ca(scep_client *c, const struct scep_ca *current,
		     struct scep_ca *out, X509 **signer)
{
	struct scep_buf b = { 0 };
	int rc;

	memset(out, 0, sizeof(*out));
	if (signer != NULL)
		*signer = NULL;
	rc = scep_http_get(c->http, "GetNextCACert", c->opts.ca_ident, &b);
	if (rc != SA_OK)
		return rc;
	rc = next_ca_parse(b.data, b.len, current, out, signer);
	scep_buf_clear(&b);
	return rc;
}

static char *base64(const unsigned char *der, size_t len)
{
	char *s = malloc(4 * ((len + 2) / 3) + 1);

	if (s == NULL)
		return NULL;
	EVP_EncodeBlock((unsigned char *)s, der, (int)len);
	return s;
}

/* Did a PKIOperation of this client reach the server? See scep.h. */
int scep_client_request_sent(const scep_client *c)
{
	return c ? c->sent : 0;
}

/* See scep.h. */
void scep_client_sent_reset(scep_client *c)
{
	if (c != NULL)
		c->sent = 0;
}

/* One PKIOperation round trip; see scep.h. */
int scep_transact(scep_client *c, const struct scep_ca *ca,
		  const struct scep_request *req, struct scep_reply *out)
{
	unsigned char *der = NULL, nonce[SCEP_NONCE_LEN];
	size_t len = 0;
	struct scep_buf b = { 0 };
	char *tid = NULL, *msg = NULL;
	unsigned caps;
	int rc;

	memset(out, 0, sizeof(*out));
	out->fail_info = -1;
	/* no caps because the server cannot be reached: stop here */
	if ((rc = scep_client_get_caps(c, &caps)) != SA_OK)
		goto out;
	if ((rc = scep_msg_build(c, ca, req, &der, &len, nonce)) != SA_OK)
		goto out;
	if (req->transaction_id)
		tid = strdup(req->transaction_id);
	else
		tid = scep_transaction_id(req->csr ? X509_REQ_get0_pubkey(req->csr) :
					  X509_get0_pubkey(req->signer_cert));
	if (tid == NULL) {
		rc = sa_fail(SA_ENOMEM, "out of memory");
		goto out;
	}
	/* from here bytes of the request may leave (scep_client_request_sent) */
	sa_step("request-out");
	if ((caps & (SCEP_CAP_POST | SCEP_CAP_SCEPSTANDARD)) && !c->opts.http.force_get) {
		rc = scep_http_post(c->http, "PKIOperation", der, len, &b);
	} else {
		if ((msg = base64(der, len)) == NULL) {
			rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
			goto out;
		}
		rc = scep_http_get(c->http, "PKIOperation", msg, &b);
	}
	if (scep_http_sent(c->http))
		c->sent = 1;
	if (rc != SA_OK)
		goto out;
	sa_step("request-sent");
	if (b.content_type &&
	    strncasecmp(b.content_type, "application/x-pki-message", 25) != 0)
		sa_verbose("PKIOperation: unexpected Content-Type %s; trying to parse anyway",
			   b.content_type);
	rc = reply_refused(c, "PKIOperation",
			   scep_reply_parse(b.data, b.len, ca, tid, nonce, req->signer_key,
					    req->signer_cert, out));
out:
	OPENSSL_free(der);
	scep_buf_clear(&b);
	free(tid);
	free(msg);
	return rc;
}

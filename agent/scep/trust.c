/*
 * trust.c - the trust anchor of the CA certificates and what is verified
 * against it: which certificates are kept, which sign replies, whether an
 * issued certificate or a CRL comes from the trusted CA.
 *
 * The anchor is the pinned certificate (-F), else the CA that issued the
 * RA certificates, else the only CA certificate. Chains are checked with
 * OpenSSL's verifier over a store holding the anchor alone (partial chains
 * allowed: the anchor need not be a root). Validity times are not checked:
 * trust is about who signed, and a wrong clock must not turn a good CA
 * away; an expired CA is a different problem the CA's operator has to fix.
 */
#include "scep_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "sa_err.h"
#include "sa_log.h"

/* at most this many certificates are named in one message */
#define NAMED_MAX 6

/* "subject (SHA-256 AB:CD:..)" into buf; the subject is escaped by OpenSSL */
static const char *describe(X509 *x, char *buf, size_t len)
{
	char name[256];
	char *fp = scep_fingerprint(x, EVP_sha256());

	X509_NAME_oneline(X509_get_subject_name(x), name, sizeof(name));
	snprintf(buf, len, "%s (SHA-256 %s)", name, fp ? fp : "?");
	free(fp);
	return buf;
}

/* child's signature verifies with issuer's key and the names match */
static int signed_by(X509 *child, X509 *issuer)
{
	EVP_PKEY *pk = X509_get0_pubkey(issuer);
	int ok;

	if (pk == NULL || X509_check_issued(issuer, child) != X509_V_OK)
		return 0;
	ERR_set_mark();
	ok = X509_verify(child, pk) == 1;
	ERR_pop_to_mark();
	return ok;
}

/* the same CA: same subject and same public key (e.g. a re-issued certificate) */
static int same_ca(X509 *a, X509 *b)
{
	return X509_cmp(a, b) == 0 ||
	       (X509_NAME_cmp(X509_get_subject_name(a), X509_get_subject_name(b)) == 0 &&
		EVP_PKEY_eq(X509_get0_pubkey(a), X509_get0_pubkey(b)) == 1);
}

/*
 * Does x chain to anchor (x may be the anchor), with untrusted as
 * possible intermediates? Signatures and CA constraints are checked,
 * validity times are not.
 */
static int chains_to(X509 *anchor, const STACK_OF(X509) *untrusted, X509 *x)
{
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	int ok = 0;

	if (anchor == NULL || x == NULL)
		return 0;
	if (same_ca(x, anchor))
		return 1;
	ERR_set_mark();
	store = X509_STORE_new();
	ctx = X509_STORE_CTX_new();
	if (store == NULL || ctx == NULL || !X509_STORE_add_cert(store, anchor) ||
	    !X509_STORE_CTX_init(ctx, store, x, (STACK_OF(X509) *)untrusted))
		goto out;
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_PARTIAL_CHAIN |
				 X509_V_FLAG_NO_CHECK_TIME);
	ok = X509_verify_cert(ctx) == 1;
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	ERR_pop_to_mark();
	return ok;
}

/* Does c issue (signature verified) another certificate of certs? */
static int issues_other(const STACK_OF(X509) *certs, X509 *c)
{
	int i;

	for (i = 0; i < sk_X509_num(certs); i++) {
		X509 *o = sk_X509_value(certs, i);

		if (X509_cmp(o, c) != 0 && signed_by(o, c))
			return 1;
	}
	return 0;
}

/* The issuer of c among certs (signature verified, not c itself), or NULL. */
static X509 *issuer_in(const STACK_OF(X509) *certs, X509 *c)
{
	int i;

	for (i = 0; i < sk_X509_num(certs); i++) {
		X509 *o = sk_X509_value(certs, i);

		if (X509_cmp(o, c) != 0 && signed_by(c, o))
			return o;
	}
	return NULL;
}

static int is_weak_md(const EVP_MD *md)
{
	return EVP_MD_is_a(md, "MD5") || EVP_MD_is_a(md, "SHA1");
}

static int anchor_pinned(const STACK_OF(X509) *certs, const char *pin, X509 **anchor)
{
	char hex[2 * EVP_MAX_MD_SIZE + 1], d[600], list[1200];
	const EVP_MD *md = NULL;
	size_t n = 0;
	int i, rc;

	if ((rc = scep_pin_parse(pin, hex, sizeof(hex), &md)) != SA_OK)
		return rc;
	for (i = 0; i < sk_X509_num(certs); i++)
		if (scep_fp_matches(sk_X509_value(certs, i), hex, md)) {
			*anchor = sk_X509_value(certs, i);
			break;
		}
	if (*anchor == NULL) {
		list[0] = '\0';
		for (i = 0; i < sk_X509_num(certs) && i < NAMED_MAX; i++) {
			X509 *x = sk_X509_value(certs, i);
			char name[256], *fp = scep_fingerprint(x, md);

			X509_NAME_oneline(X509_get_subject_name(x), name, sizeof(name));
			n += (size_t)snprintf(list + n, n < sizeof(list) ? sizeof(list) - n : 0,
					      "%s%s (%s %s)", i ? ", " : "", name,
					      EVP_MD_get0_name(md), fp ? fp : "?");
			free(fp);
		}
		return sa_fail_noossl(SA_ECAPIN,
			"no CA certificate has the pinned fingerprint %s; the CA sent %s; "
			"check the fingerprint given with -F (or FingerPrint), or whether the "
			"CA was replaced", pin, list);
	}
	if (is_weak_md(md))
		sa_warn("the pinned fingerprint is %s, a weak digest: a certificate made to "
			"match it could take the CA's place; pin the SHA-256 fingerprint of %s "
			"instead", EVP_MD_is_a(md, "MD5") ? "MD5" : "SHA-1",
			describe(*anchor, d, sizeof(d)));
	return SA_OK;
}

/* The trust anchor of certs; see scep.h. */
int scep_ca_anchor(const STACK_OF(X509) *certs, const char *pin, X509 **anchor)
{
	STACK_OF(X509) *cands = NULL;
	char list[1400], d[600];
	size_t n = 0;
	int i, j, rc;

	*anchor = NULL;
	if (sk_X509_num(certs) == 0)
		return sa_fail_noossl(SA_EREPLY, "no CA certificate to trust");
	if (pin != NULL)
		return anchor_pinned(certs, pin, anchor);
	if ((cands = sk_X509_new_null()) == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	for (i = 0; i < sk_X509_num(certs); i++) {
		X509 *c = sk_X509_value(certs, i), *cand = c;

		if (issues_other(certs, c))
			continue; /* the issuer of another: its candidate is found below it */
		if (X509_check_ca(c) == 0 && (cand = issuer_in(certs, c)) == NULL)
			cand = c; /* an RA certificate whose CA was not sent */
		for (j = 0; j < sk_X509_num(cands); j++)
			if (same_ca(sk_X509_value(cands, j), cand))
				break;
		if (j == sk_X509_num(cands) && !sk_X509_push(cands, cand)) {
			rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
			goto out;
		}
	}
	if (sk_X509_num(cands) == 1) {
		*anchor = sk_X509_value(cands, 0);
		rc = SA_OK;
		goto out;
	}
	if (sk_X509_num(cands) == 0) {
		/* every certificate issues another: a loop of cross-certificates */
		rc = sa_fail_noossl(SA_EREPLY, "the CA certificates issue each other in a loop; "
				    "pin the CA's fingerprint with -F (FingerPrint)");
		goto out;
	}
	list[0] = '\0';
	for (i = 0; i < sk_X509_num(cands) && i < NAMED_MAX; i++)
		n += (size_t)snprintf(list + n, n < sizeof(list) ? sizeof(list) - n : 0, "%s%s",
				      i ? "; " : "", describe(sk_X509_value(cands, i), d, sizeof(d)));
	rc = sa_fail_noossl(SA_EREPLY, "the CA certificates name %d unrelated CAs and no "
			    "fingerprint is pinned, so none can be trusted: %s; find out "
			    "which is your CA and pin one with -F (FingerPrint)",
			    sk_X509_num(cands), list);
out:
	sk_X509_free(cands);
	return rc;
}

/* Is x above the anchor: an issuer of it, or of its issuers (signatures checked)? */
static int above_anchor(const STACK_OF(X509) *certs, X509 *anchor, X509 *x)
{
	X509 *c = anchor;
	int depth;

	for (depth = 0; depth < 8 && c != NULL; depth++) {
		X509 *up = issuer_in(certs, c);

		if (up == NULL)
			return 0;
		if (X509_cmp(up, x) == 0)
			return 1;
		c = up;
	}
	return 0;
}

/* A new stack of the certificates of certs that are kept (up-ref'd). */
static int filter(STACK_OF(X509) *certs, X509 *anchor, STACK_OF(X509) **out)
{
	STACK_OF(X509) *kept = sk_X509_new_null();
	char d[600], a[600];
	int i;

	*out = NULL;
	if (kept == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	for (i = 0; i < sk_X509_num(certs); i++) {
		X509 *x = sk_X509_value(certs, i);

		if (!chains_to(anchor, certs, x) && !above_anchor(certs, anchor, x)) {
			sa_warn("ignoring the CA certificate %s: it does not chain to the trusted "
				"CA %s; it is neither trusted nor written",
				describe(x, d, sizeof(d)), describe(anchor, a, sizeof(a)));
			continue;
		}
		if (!X509_up_ref(x) || !sk_X509_push(kept, x)) {
			sk_X509_pop_free(kept, X509_free);
			return sa_fail_noossl(SA_ENOMEM, "out of memory");
		}
	}
	*out = kept;
	return SA_OK;
}

/* Establish trust in ca; see scep.h. */
int scep_ca_trust(struct scep_ca *ca, const char *pin, X509 *user_enc)
{
	STACK_OF(X509) *kept = NULL;
	X509 *anchor = NULL;
	char d[600], a[600];
	int i, rc;

	ca->anchor = NULL;
	if ((rc = scep_ca_anchor(ca->certs, pin, &anchor)) != SA_OK)
		return rc;
	if ((rc = filter(ca->certs, anchor, &kept)) != SA_OK)
		return rc;
	/* anchor stays valid: kept holds a reference */
	sk_X509_pop_free(ca->certs, X509_free);
	ca->certs = kept;
	if ((rc = scep_ca_select(ca, NULL, NULL)) != SA_OK)
		return rc;
	if (user_enc != NULL) {
		if (!chains_to(anchor, ca->certs, user_enc))
			return sa_fail_noossl(SA_EUSAGE, "the encryption certificate (-e) %s is "
				"not issued by the trusted CA %s; give -e a certificate of that "
				"CA (its RA encryption certificate), or -c the CA certificates "
				"as getca wrote them", describe(user_enc, d, sizeof(d)),
				describe(anchor, a, sizeof(a)));
		for (i = 0; i < sk_X509_num(ca->certs); i++)
			if (X509_cmp(sk_X509_value(ca->certs, i), user_enc) == 0)
				break;
		if (i < sk_X509_num(ca->certs)) {
			ca->ra_enc = sk_X509_value(ca->certs, i);
		} else {
			if (!X509_up_ref(user_enc))
				return sa_fail(SA_EINTERNAL, "X509_up_ref failed");
			if (!sk_X509_push(ca->certs, user_enc)) {
				X509_free(user_enc);
				return sa_fail_noossl(SA_ENOMEM, "out of memory");
			}
			ca->ra_enc = user_enc;
		}
	}
	{
		X509 *role[3] = { ca->ca, ca->ra_sign, ca->ra_enc };
		static const char *const what[3] = {
			"issuing CA", "RA signing certificate", "RA encryption certificate",
		};

		for (i = 0; i < 3; i++)
			if (!chains_to(anchor, ca->certs, role[i]))
				return sa_fail_noossl(pin ? SA_ECAPIN : SA_EREPLY,
					"the %s %s does not chain to the trusted CA %s; %s",
					what[i], describe(role[i], d, sizeof(d)),
					describe(anchor, a, sizeof(a)), pin ?
					"pin the CA itself (or its root) with -F, not another "
					"of its certificates" : "refusing these CA certificates");
	}
	ca->anchor = anchor;
	if (sa_log_level() >= SA_LOG_DEBUG)
		sa_debug("trust anchor %s", describe(anchor, a, sizeof(a)));
	return SA_OK;
}

/* The certificates trusted to sign replies; see scep_int.h. */
STACK_OF(X509) *scep_ca_signers(const struct scep_ca *ca)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	X509 *c[3] = { ca->ra_sign, ca->ca, ca->anchor };
	int i, j;

	for (i = 0; sk != NULL && i < 3; i++) {
		if (c[i] == NULL)
			continue;
		for (j = 0; j < sk_X509_num(sk); j++)
			if (X509_cmp(sk_X509_value(sk, j), c[i]) == 0)
				break;
		if (j == sk_X509_num(sk) && !sk_X509_push(sk, c[i])) {
			sk_X509_free(sk);
			sk = NULL;
		}
	}
	return sk;
}

/* Does an issued certificate verify under the anchor? See scep.h. */
int scep_ca_verify_issued(const struct scep_ca *ca, X509 *cert, STACK_OF(X509) *extra)
{
	STACK_OF(X509) *untrusted = NULL;
	char d[600], a[600], iss[256];
	int i, ok, rc;

	if (ca == NULL || ca->anchor == NULL || cert == NULL)
		return sa_fail_noossl(SA_EINTERNAL, "no trusted CA to verify the certificate with");
	untrusted = sk_X509_dup(ca->certs);
	if (untrusted == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	for (i = 0; i < sk_X509_num(extra); i++)
		if (!sk_X509_push(untrusted, sk_X509_value(extra, i))) {
			rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
			goto out;
		}
	ok = !same_ca(cert, ca->anchor) && chains_to(ca->anchor, untrusted, cert);
	if (ok) {
		rc = SA_OK;
		goto out;
	}
	X509_NAME_oneline(X509_get_issuer_name(cert), iss, sizeof(iss));
	rc = sa_fail_noossl(SA_EREPLY, "the certificate %s (issuer %s) from the CA's reply "
			    "does not verify under the trusted CA %s: it was not issued by "
			    "that CA; nothing was stored or replaced (is something between "
			    "this host and the CA?)", describe(cert, d, sizeof(d)), iss,
			    describe(ca->anchor, a, sizeof(a)));
out:
	sk_X509_free(untrusted);
	return rc;
}

/* Is a CRL signed by a trusted CA certificate? See scep.h. */
int scep_ca_verify_crl(const struct scep_ca *ca, X509_CRL *crl)
{
	char iss[256], a[600];
	int i, ok;

	if (ca == NULL || ca->anchor == NULL || crl == NULL)
		return sa_fail_noossl(SA_EINTERNAL, "no trusted CA to verify the CRL with");
	for (i = 0; i < sk_X509_num(ca->certs); i++) {
		X509 *c = sk_X509_value(ca->certs, i);
		EVP_PKEY *pk = X509_get0_pubkey(c);

		if (pk == NULL || X509_NAME_cmp(X509_get_subject_name(c),
						X509_CRL_get_issuer(crl)) != 0 ||
		    !chains_to(ca->anchor, ca->certs, c))
			continue;
		ERR_set_mark();
		ok = X509_CRL_verify(crl, pk) == 1;
		ERR_pop_to_mark();
		if (ok)
			return SA_OK;
	}
	X509_NAME_oneline(X509_CRL_get_issuer(crl), iss, sizeof(iss));
	return sa_fail_noossl(SA_EREPLY, "the CRL from the CA's reply (issuer %s) is not "
			      "signed by the trusted CA %s or a CA under it; nothing written",
			      iss, describe(ca->anchor, a, sizeof(a)));
}

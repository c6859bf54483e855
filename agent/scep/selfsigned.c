/*
 * selfsigned.c - the transient self-signed certificate that signs a
 * request when the requester has no certificate yet (RFC 8894 2.3).
 */
#include "scep_int.h"

#include <openssl/rand.h>

#include "sa_err.h"

/* Self-signed certificate from csr, signed with key; see scep.h. */
int scep_selfsigned_new(X509_REQ *csr, EVP_PKEY *key, const EVP_MD *md,
			X509 **out)
{
	X509 *x = NULL;
	X509_NAME *name;
	EVP_PKEY *pub;
	unsigned char rnd[8];
	BIGNUM *bn = NULL;
	int rc = SA_ECRYPTO;

	*out = NULL;
	if (csr == NULL || key == NULL)
		return sa_fail_noossl(SA_EUSAGE, "a self-signed certificate needs a request and a key");
	name = X509_REQ_get_subject_name(csr);
	pub = X509_REQ_get0_pubkey(csr);
	if (pub == NULL) {
		rc = sa_fail(SA_ECRYPTO, "the certificate request has no readable public key");
		goto out;
	}
	if (EVP_PKEY_eq(pub, key) == 0) { /* -2: cannot compare (some token keys) */
		rc = sa_fail_noossl(SA_EKEY, "the certificate request's public key does not "
				    "match the signing key");
		goto out;
	}
	if ((x = X509_new()) == NULL || RAND_bytes(rnd, sizeof(rnd)) != 1)
		goto fail;
	rnd[0] &= 0x7f; /* positive */
	rnd[0] |= 0x01; /* and non-zero */
	if ((bn = BN_bin2bn(rnd, sizeof(rnd), NULL)) == NULL ||
	    !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ||
	    !X509_set_version(x, X509_VERSION_3) ||
	    !X509_set_subject_name(x, name) || !X509_set_issuer_name(x, name) ||
	    !X509_set_pubkey(x, pub) ||
	    /* an hour in the past for clock skew; valid one day */
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600))
		goto fail;
	if (X509_sign(x, key, md) <= 0) {
		rc = sa_fail(SA_EKEY, "cannot sign the self-signed certificate with the key; "
			     "is the token logged in and the key usable for signing?");
		goto out;
	}
	*out = x;
	x = NULL;
	rc = SA_OK;
	goto out;
fail:
	rc = sa_fail(SA_ECRYPTO, "cannot build the self-signed certificate");
out:
	BN_free(bn);
	X509_free(x);
	return rc;
}

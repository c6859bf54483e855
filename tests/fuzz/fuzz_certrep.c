/*
 * fuzz_certrep.c - libFuzzer target: CertRep parsing and verification
 * (and GetNextCACert, which shares the SignedData path). The CA and the
 * requester are generated once per process, so the fuzzer explores the
 * DER/CMS parsing and the signer lookup; the attribute checks behind the
 * signature are covered by tests/unit/test_scep_msg.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "scep.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct scep_ca ca;
static EVP_PKEY *key;
static X509 *cert;

static X509 *self_signed(EVP_PKEY *k, const char *cn)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_get_subject_name(x);

	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, n);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, k);
	X509_sign(x, k, EVP_sha256());
	return x;
}

static void setup(void)
{
	EVP_PKEY *ca_key;

	scep_crypto_init();
	/* small keys keep the fuzzer fast; nothing here is secret */
	ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	ca.certs = sk_X509_new_null();
	sk_X509_push(ca.certs, self_signed(ca_key, "fuzz CA"));
	scep_ca_select(&ca, NULL, NULL);
	cert = self_signed(key, "fuzz client");
	EVP_PKEY_free(ca_key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char nonce[16];
	struct scep_reply r;
	struct scep_ca next;
	X509 *got = NULL;

	if (key == NULL)
		setup();
	if (scep_reply_parse(data, size, &ca, NULL, NULL, key, cert, &r) == 0) {
		if (scep_reply_find_cert(&r, key, &got) == 0)
			X509_free(got);
		scep_reply_clear(&r);
	}
	if (scep_reply_parse(data, size, &ca, "TID", nonce, key, cert, &r) == 0)
		scep_reply_clear(&r);
	if (scep_next_ca_parse(data, size, &ca, &next) == 0)
		scep_ca_clear(&next);
	return 0;
}

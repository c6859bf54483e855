/*
 * fuzz_getcacert.c - libFuzzer target: a GetCACert reply (DER, PKCS#7,
 * PEM), role selection, fingerprints, pinning, and the trust anchor with
 * its filtering (unpinned, and pinned to the first certificate).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "scep.h"
#include "sa_err.h"
#include "sa_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* scep_ca_trust on a fresh copy of what was parsed */
static void trust(const unsigned char *data, size_t size, const char *pin)
{
	struct scep_ca ca = { 0 };

	if (scep_certs_parse(data, size, &ca.certs) == 0 &&
	    scep_ca_trust(&ca, pin, NULL) == 0) {
		/* every role is set and chains: the verifiers may use them */
		if (ca.anchor == NULL || ca.ca == NULL || ca.ra_sign == NULL ||
		    ca.ra_enc == NULL)
			abort();
		(void)scep_ca_verify_issued(&ca, ca.ra_sign, NULL);
	}
	scep_ca_clear(&ca);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scep_ca ca = { 0 };
	static int init;
	char *fp = NULL;

	if (!init) {
		scep_crypto_init();
		sa_log_init("fuzz", SA_LOG_ERR - 1, 0); /* quiet */
		init = 1;
	}
	if (scep_certs_parse(data, size, &ca.certs) == 0 &&
	    scep_ca_select(&ca, NULL, NULL) == 0) {
		fp = scep_fingerprint(sk_X509_value(ca.certs, 0), EVP_sha256());
		(void)scep_ca_check_pin(&ca,
			"sha256:0000000000000000000000000000000000000000000000000000000000000000");
	}
	scep_ca_clear(&ca);
	trust(data, size, NULL);
	if (fp != NULL)
		trust(data, size, fp);
	free(fp);
	sa_err_clear();
	return 0;
}

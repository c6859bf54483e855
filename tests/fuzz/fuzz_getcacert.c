/*
 * fuzz_getcacert.c - libFuzzer target: a GetCACert reply (DER, PKCS#7,
 * PEM), role selection, fingerprints and pinning.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "scep.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scep_ca ca = { 0 };
	static int init;
	char *fp;

	if (!init) {
		scep_crypto_init();
		init = 1;
	}
	if (scep_certs_parse(data, size, &ca.certs) == 0 &&
	    scep_ca_select(&ca, NULL, NULL) == 0) {
		fp = scep_fingerprint(ca.ca, EVP_sha256());
		free(fp);
		(void)scep_ca_check_pin(&ca,
			"sha256:0000000000000000000000000000000000000000000000000000000000000000");
	}
	scep_ca_clear(&ca);
	return 0;
}

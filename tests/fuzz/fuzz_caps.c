/* fuzz_caps.c - libFuzzer target: GetCACaps parsing and the choices it drives. */
#include <stddef.h>
#include <stdint.h>

#include "scep.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char names[512];
	unsigned caps = scep_caps_parse((const char *)data, size);

	scep_caps_str(caps, names, sizeof(names));
	(void)scep_choose_cipher(caps, SCEP_CIPHER_AUTO);
	(void)scep_choose_digest(caps, SCEP_DIGEST_AUTO);
	return 0;
}

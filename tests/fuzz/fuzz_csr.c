/*
 * fuzz_csr.c - libFuzzer target: the subject (--subject, sscep's -s style
 * "/CN=x/O=y\/z+OU=w") and subjectAltName ("DNS:x", "IP:::1", "UPN:u@r",
 * "RID:1.2.3", ...) parsers of agent/csr.c, then the name rendered as the
 * program shows it and the GeneralName encoded as a CSR would carry it.
 *
 *   byte 0   flags: bit 0 prefix '/' to the subject
 *   rest     the string (up to its first NUL), tried as both
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "csr.h"
#include "sa_err.h"
#include "sa_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	X509_NAME *name = NULL;
	GENERAL_NAME *gn = NULL;
	unsigned char *der = NULL;
	char *s, *line;
	uint8_t flags;

	if (!init) {
		sa_log_init("fuzz", SA_LOG_ERR - 1, 0); /* quiet */
		init = 1;
	}
	if (size < 1)
		return 0;
	flags = data[0];
	data++;
	size--;
	s = malloc(size + 2);
	if (s == NULL)
		return 0;
	s[0] = '/';
	memcpy(s + 1, data, size);
	s[size + 1] = '\0';
	if (csr_subject_parse(flags & 1 ? s : s + 1, &name) == 0) {
		if (name == NULL)
			abort();
		line = csr_name_oneline(name);
		free(line);
		if (i2d_X509_NAME(name, &der) > 0)
			OPENSSL_free(der);
		der = NULL;
		X509_NAME_free(name);
	}
	if (csr_san_parse(s + 1, &gn) == 0) {
		if (gn == NULL)
			abort();
		if (i2d_GENERAL_NAME(gn, &der) > 0)
			OPENSSL_free(der);
		GENERAL_NAME_free(gn);
	}
	free(s);
	sa_err_clear();
	ERR_clear_error();
	return 0;
}

/*
 * fuzz_conf.c - libFuzzer target for the sscep.conf parser
 * (conf/conf_parse.c): sections, quotes, escapes, $variables (also
 * $ENV::NAME), line continuation. Every parse must end in a file or a
 * usage error, never a crash, a leak or an over-read; a parsed file is
 * then applied as every operation reads it, and as an agent profile.
 */
#include <stdint.h>
#include <stdlib.h>

#include "conf.h"
#include "sa_err.h"
#include "sa_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const ops[] = { "getca", "enroll", "getcert",
					    "getcrl", "getnextca", "mkrequest" };
	struct conf_file *cf = NULL;
	static int init;
	size_t i;

	if (!init) {
		sa_log_init("fuzz_conf", SA_LOG_ERR, 0);
		setenv("FUZZ_VAR", "value from the environment", 1);
		init = 1;
	}
	if (conf_file_parse_buf("fuzz.conf", (const char *)data, size, &cf) == 0) {
		for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
			struct conf_settings s;

			conf_settings_init(&s);
			(void)conf_apply(cf, ops[i], &s);
			conf_settings_free(&s);
		}
		{
			struct conf_settings s;

			conf_settings_init(&s); /* as an agent profile */
			(void)conf_apply_profile(cf, &s);
			conf_settings_free(&s);
		}
	}
	conf_file_free(cf);
	sa_err_clear();
	return 0;
}

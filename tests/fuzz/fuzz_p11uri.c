/*
 * fuzz_p11uri.c - libFuzzer target: pkcs11: URIs and sscep's engine key
 * ids, without a module: p11_uri_parse (p11-kit) and p11_uri_format,
 * p11_uri_display (every URI the program shows), the pin-source syntax,
 * key specifications, and the engine key id parser with the URI it
 * writes (p11_engine_id_is, p11_engine_id_to_uri without loading a
 * module).
 *
 *   byte 0   flags: bit 0 prefix "pkcs11:"; bit 1 bare hex engine ids
 *   rest     the string (up to its first NUL)
 *
 * Oracles: what p11_uri_display shows has no control character and, read
 * as a URI again, no PIN; a URI written for an engine key id parses.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/uri.h>

#include "p11_int.h"
#include "sa_err.h"
#include "sa_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_display(const char *s)
{
	char *shown = p11_uri_display(s);
	P11KitUri *u;
	size_t i;

	if (shown == NULL)
		return;
	for (i = 0; shown[i]; i++)
		if ((unsigned char)shown[i] < 0x20 || shown[i] == 0x7f)
			abort();
	if (p11_is_uri(shown) && (u = p11_kit_uri_new()) != NULL) {
		/* p11-kit wants the scheme in lower case */
		memcpy(shown, "pkcs11:", 7);
		if (p11_kit_uri_parse(shown, P11_KIT_URI_FOR_ANY, u) == P11_KIT_URI_OK &&
		    (p11_kit_uri_get_pin_value(u) != NULL ||
		     p11_kit_uri_get_pin_source(u) != NULL))
			abort(); /* a PIN shown */
		p11_kit_uri_free(u);
	}
	free(shown);
}

/* The engine key id's URI, as written without a module; it must parse. */
static void check_engid(const char *s, int bare)
{
	size_t n = strspn(s, "0123456789");
	int slot = (n > 0 && s[n] == ':') || strncmp(s, "slot_", 5) == 0;
	char *uri = NULL;
	P11KitUri *u = NULL;

	(void)p11_engine_id_to_uri(s, bare, NULL, &uri); /* the usage message */
	free(uri);
	uri = NULL;
	/* without a slot the module is never loaded */
	if (!slot && p11_engine_id_to_uri(s, bare, "/nonexistent/fuzz.so", &uri) == 0) {
		if (p11_uri_parse(uri, &u) != 0)
			abort();
		p11_kit_uri_free(u);
		check_display(uri);
		free(uri);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	struct p11_keyspec ks;
	P11KitUri *u = NULL;
	char *s, *arg = NULL, *f;
	uint8_t flags;
	int kind;

	if (!init) {
		sa_log_init("fuzz", SA_LOG_ERR - 1, 0); /* quiet */
		init = 1;
	}
	if (size < 1)
		return 0;
	flags = data[0];
	data++;
	size--;
	s = malloc(size + 8);
	if (s == NULL)
		return 0;
	if (flags & 1) {
		memcpy(s, "pkcs11:", 7);
		memcpy(s + 7, data, size);
		s[size + 7] = '\0';
	} else {
		memcpy(s, data, size);
		s[size] = '\0';
	}
	(void)p11_is_uri(s);
	if (p11_uri_parse(s, &u) == 0) {
		f = p11_uri_format(u, P11_KIT_URI_FOR_ANY);
		free(f);
		p11_kit_uri_free(u);
	}
	check_display(s);
	if (p11_pin_source_parse(s, &kind, &arg) == 0 &&
	    (arg == NULL || arg[0] == '\0' || kind == P11_PIN_NONE))
		abort();
	free(arg);
	(void)p11_keyspec_parse(s, &ks);
	if (p11_engine_id_is(s, flags & 2))
		check_engid(s, flags & 2);
	free(s);
	sa_err_clear();
	return 0;
}

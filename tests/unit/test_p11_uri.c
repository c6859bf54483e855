/*
 * test_p11_uri.c - custody pieces that need no token: pkcs11: URIs,
 * module resolution, PIN sources, key specifications, key/cert match.
 */
#include "p11_int.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/x509.h>

#include "sa_err.h"
#include "sa_log.h"
#include "tap.h"

static void test_is_uri(void)
{
	ok(p11_is_uri("pkcs11:token=a"), "pkcs11: is a URI");
	ok(p11_is_uri("PKCS11:token=a"), "scheme is case-insensitive");
	ok(!p11_is_uri("/etc/key.pem"), "a path is not");
	ok(!p11_is_uri("pkcs11"), "no colon, not a URI");
	ok(!p11_is_uri(NULL), "NULL is not");
}

static void test_parse(void)
{
	P11KitUri *u = NULL;
	CK_ATTRIBUTE *a;
	CK_TOKEN_INFO *ti;
	int rc;

	rc = p11_uri_parse("pkcs11:token=My%20Token;object=k1;id=%01%02;"
			   "type=private;serial=ABC?module-path=/x/y.so&"
			   "pin-source=file:/p", &u);
	is_int(rc, 0, "RFC 7512 URI parses");
	a = u ? p11_kit_uri_get_attribute(u, CKA_LABEL) : NULL;
	ok(a && a->ulValueLen == 2 && !memcmp(a->pValue, "k1", 2), "object= label");
	a = u ? p11_kit_uri_get_attribute(u, CKA_ID) : NULL;
	ok(a && a->ulValueLen == 2 && ((unsigned char *)a->pValue)[1] == 2,
	   "id= percent-decoded");
	a = u ? p11_kit_uri_get_attribute(u, CKA_CLASS) : NULL;
	ok(a && *(CK_OBJECT_CLASS *)a->pValue == CKO_PRIVATE_KEY, "type=private");
	ti = u ? p11_kit_uri_get_token_info(u) : NULL;
	ok(ti && !memcmp(ti->label, "My Token ", 9), "token= label, padded");
	is_str(u ? p11_kit_uri_get_module_path(u) : NULL, "/x/y.so", "module-path");
	is_str(u ? p11_kit_uri_get_pin_source(u) : NULL, "file:/p", "pin-source");
	if (u)
		p11_kit_uri_free(u);
	u = NULL;

	rc = p11_uri_parse("PKCS11:token=t1", &u);
	is_int(rc, 0, "upper-case scheme parses");
	if (u)
		p11_kit_uri_free(u);
	u = NULL;
	rc = p11_uri_parse("pkcs11:token=t1?pin-value=secret%zz", &u);
	is_int(rc, SA_EUSAGE, "bad %%-encoding: SA_EUSAGE");
	ok(strstr(sa_errmsg(), "secret") == NULL, "the URI (and PIN) is not echoed");
	ok(u == NULL, "no URI on failure");
	rc = p11_uri_parse("/etc/key.pem", &u);
	is_int(rc, SA_EUSAGE, "a path is not a URI: SA_EUSAGE");
}

static void test_module(void)
{
	P11KitUri *u = NULL;
	char *path = NULL;
	int rc;

	rc = p11_module_resolve("/nonexistent/mod.so", NULL, &path);
	is_int(rc, SA_EKEY, "--module to a missing file: SA_EKEY");
	ok(strstr(sa_errmsg(), "/nonexistent/mod.so") != NULL, "message names it");
	ok(path == NULL, "no path on failure");
	rc = p11_module_resolve("/bin/sh", NULL, &path);
	is_str(path, "/bin/sh", "--module path is taken as given");
	free(path);
	path = NULL;
	p11_uri_parse("pkcs11:token=x?module-path=/bin/sh", &u);
	rc = p11_module_resolve(NULL, u, &path);
	is_str(path, "/bin/sh", "URI module-path");
	free(path);
	path = NULL;
	rc = p11_module_resolve("/bin/true", u, &path);
	is_str(path, "/bin/true", "--module overrides module-path");
	free(path);
	path = NULL;
	p11_kit_uri_free(u);
	u = NULL;
	p11_uri_parse("pkcs11:token=x?module-name=no-such-module-here", &u);
	rc = p11_module_resolve(NULL, u, &path);
	is_int(rc, SA_EKEY, "unknown module-name: SA_EKEY");
	ok(strstr(sa_errmsg(), "no-such-module-here") != NULL, "message names it");
	p11_kit_uri_free(u);
}

static void test_pin_source(void)
{
	static const struct {
		const char *src;
		int rc, kind;
		const char *arg;
	} tab[] = {
		{ "file:/etc/pin", 0, P11_PIN_FILE, "/etc/pin" },
		{ "file:///etc/pin", 0, P11_PIN_FILE, "/etc/pin" },
		{ "file://localhost/etc/pin", 0, P11_PIN_FILE, "/etc/pin" },
		{ "/etc/pin", 0, P11_PIN_FILE, "/etc/pin" },
		{ "pin.txt", 0, P11_PIN_FILE, "pin.txt" },
		{ "env:TOKEN_PIN", 0, P11_PIN_ENV, "TOKEN_PIN" },
		{ "env:", SA_EUSAGE, 0, NULL },
		{ "file://host/etc/pin", SA_EUSAGE, 0, NULL },
		{ "https://x/pin", SA_EUSAGE, 0, NULL },
		{ "", SA_EUSAGE, 0, NULL },
	};
	size_t i;
	char *arg;
	int kind, rc;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		rc = p11_pin_source_parse(tab[i].src, &kind, &arg);
		ok(rc == tab[i].rc && (rc != 0 || (kind == tab[i].kind &&
		   arg && !strcmp(arg, tab[i].arg))),
		   "pin-source '%s'", tab[i].src);
		free(arg);
	}
}

static void test_pin_get(void)
{
	struct p11_pin_opts po = { .no_prompt = 1 };
	char pin[P11_PIN_MAX], file[] = "/tmp/p11pinXXXXXX";
	P11KitUri *u = NULL;
	char uri[128];
	int fd, rc;

	fd = mkstemp(file);
	if (write(fd, "4321\r\nsecond line\n", 18) != 18)
		diag("short write");
	close(fd);
	po.pin_file = file;
	rc = p11_pin_get(&po, NULL, "t", pin, sizeof(pin));
	ok(rc == 0 && !strcmp(pin, "4321"), "PIN file: first line, CRLF stripped");
	po.pin_file = NULL;
	setenv("P11_TEST_PIN", "5555", 1);
	po.pin_env = "P11_TEST_PIN";
	rc = p11_pin_get(&po, NULL, "t", pin, sizeof(pin));
	ok(rc == 0 && !strcmp(pin, "5555"), "PIN from the named variable");
	po.pin_env = "P11_TEST_PIN_UNSET";
	rc = p11_pin_get(&po, NULL, "t", pin, sizeof(pin));
	is_int(rc, SA_EPIN, "unset variable: SA_EPIN");
	ok(pin[0] == '\0', "pin cleared on failure");
	po.pin_env = NULL;
	snprintf(uri, sizeof(uri), "pkcs11:token=t?pin-source=file:%s", file);
	p11_uri_parse(uri, &u);
	rc = p11_pin_get(&po, u, "t", pin, sizeof(pin));
	ok(rc == 0 && !strcmp(pin, "4321"), "pin-source=file:");
	p11_kit_uri_free(u);
	p11_uri_parse("pkcs11:token=t?pin-source=env:P11_TEST_PIN", &u);
	rc = p11_pin_get(&po, u, "t", pin, sizeof(pin));
	ok(rc == 0 && !strcmp(pin, "5555"), "pin-source=env:");
	p11_kit_uri_free(u);
	p11_uri_parse("pkcs11:token=t?pin-value=1234", &u);
	rc = p11_pin_get(&po, u, "t", pin, sizeof(pin));
	ok(rc == 0 && !strcmp(pin, "1234"), "pin-value");
	po.pin_file = file;
	rc = p11_pin_get(&po, u, "t", pin, sizeof(pin));
	ok(rc == 0 && !strcmp(pin, "4321"), "--pin-file wins over the URI");
	po.pin_file = NULL;
	p11_kit_uri_free(u);
	p11_uri_parse("pkcs11:token=t", &u);
	rc = p11_pin_get(&po, u, "t", pin, sizeof(pin));
	is_int(rc, SA_EPIN, "no source and no prompt: SA_EPIN");
	p11_kit_uri_free(u);
	/* each source is read once per run: a FIFO gives its PIN once */
	fd = open(file, O_WRONLY | O_TRUNC);
	if (fd < 0 || write(fd, "9999\n", 5) != 5)
		diag("short write");
	if (fd >= 0)
		close(fd);
	po.pin_file = file;
	rc = p11_pin_get(&po, NULL, "t", pin, sizeof(pin));
	ok(rc == 0 && !strcmp(pin, "4321"), "PIN file read once: the first PIN again");
	p11_pin_forget();
	rc = p11_pin_get(&po, NULL, "t", pin, sizeof(pin));
	ok(rc == 0 && !strcmp(pin, "9999"), "after p11_pin_forget: read again");
	p11_pin_forget();
	po.pin_file = "/nonexistent/pin";
	rc = p11_pin_get(&po, NULL, "t", pin, sizeof(pin));
	is_int(rc, SA_EPIN, "missing PIN file: SA_EPIN");
	unlink(file);
	unsetenv("P11_TEST_PIN");
}

static void test_keyspec(void)
{
	static const struct {
		const char *s;
		int rc, type, bits, nid;
	} tab[] = {
		{ "rsa:2048", 0, EVP_PKEY_RSA, 2048, 0 },
		{ "rsa:3072", 0, EVP_PKEY_RSA, 3072, 0 },
		{ "RSA:4096", 0, EVP_PKEY_RSA, 4096, 0 },
		{ "ec:P-256", 0, EVP_PKEY_EC, 256, NID_X9_62_prime256v1 },
		{ "ec:prime256v1", 0, EVP_PKEY_EC, 256, NID_X9_62_prime256v1 },
		{ "ec:P-384", 0, EVP_PKEY_EC, 384, NID_secp384r1 },
		{ "ec:secp384r1", 0, EVP_PKEY_EC, 384, NID_secp384r1 },
		{ "rsa:1024", SA_EUSAGE, 0, 0, 0 },
		{ "ec:P-521", SA_EUSAGE, 0, 0, 0 },
		{ "dsa:2048", SA_EUSAGE, 0, 0, 0 },
		{ "", SA_EUSAGE, 0, 0, 0 },
	};
	struct p11_keyspec ks;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		rc = p11_keyspec_parse(tab[i].s, &ks);
		ok(rc == tab[i].rc && (rc != 0 || (ks.type == tab[i].type &&
		   ks.bits == tab[i].bits && ks.nid == tab[i].nid)),
		   "keyspec '%s'", tab[i].s);
	}
	rc = p11_keyspec_parse(NULL, &ks);
	is_int(rc, SA_EUSAGE, "keyspec NULL");
	ok(strstr(sa_errmsg(), "rsa:2048") != NULL, "message lists the choices");
}

static void test_pin_flags(void)
{
	ok(strstr(p11_pin_flags_words(CKF_USER_PIN_LOCKED |
				      CKF_USER_PIN_COUNT_LOW), "LOCKED") != NULL,
	   "locked wins over count low");
	ok(strstr(p11_pin_flags_words(CKF_USER_PIN_FINAL_TRY |
				      CKF_USER_PIN_COUNT_LOW), "ONE try") != NULL,
	   "final try");
	ok(strstr(p11_pin_flags_words(CKF_USER_PIN_COUNT_LOW), "count low") != NULL,
	   "count low");
	is_str(p11_pin_flags_words(CKF_LOGIN_REQUIRED), "", "no PIN flag: nothing");
}

static void test_match(void)
{
	EVP_PKEY *a = EVP_EC_gen("P-256"), *b = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	char *h;

	X509_set_pubkey(x, a);
	is_int(p11_key_matches_cert(a, x), 1, "key matches its certificate");
	is_int(p11_key_matches_cert(b, x), 0, "another key does not");
	is_int(p11_key_matches_cert(NULL, x), 0, "NULL key does not");
	h = p11_hex((const unsigned char *)"\x01\xab", 2);
	is_str(h, "01ab", "hex");
	free(h);
	X509_free(x);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
}

/* p11_uri_display(s) is want, and holds neither "1234" nor "pin-". */
static void display_is(const char *s, const char *want, const char *name)
{
	char *d = p11_uri_display(s);

	is_str(d, want, "%s", name);
	ok(d != NULL && strstr(d, "1234") == NULL && strstr(d, "pin-") == NULL,
	   "%s: no PIN, no PIN attribute", name);
	free(d);
}

static void test_display(void)
{
	display_is("pkcs11:token=t;object=k;pin-value=1234",
		   "pkcs11:token=t;object=k", "pin-value in the path");
	display_is("pkcs11:token=t;object=k?pin-value=1234",
		   "pkcs11:token=t;object=k", "pin-value in the query");
	display_is("pkcs11:pin-value=1234;token=t",
		   "pkcs11:token=t", "pin-value first in the path");
	display_is("PKCS11:token=t;pin-source=/run/1234;object=k",
		   "pkcs11:token=t;object=k", "pin-source in the path, upper-case scheme");
	display_is("pkcs11:token=t?pin-source=file:/1234&module-path=/m.so",
		   "pkcs11:token=t?module-path=%2Fm.so", "pin-source in the query, module kept");
	display_is("pkcs11:token=t%0a;object=k%1b?pin-value=1234",
		   "pkcs11:token=t%0A;object=k%1B", "control characters stay %-encoded");
	display_is("pkcs11:token=t;object=k;pin-value=12%34",
		   "pkcs11:token=t;object=k", "%-encoded PIN");
	/* p11-kit refuses these (bad %-encoding): the textual strip */
	display_is("pkcs11:token=t;id=%zz;pin-value=1234;object=k",
		   "pkcs11:token=t;id=%zz;object=k", "unparsable: pin-value cut out");
	display_is("pkcs11:pin-value=1234;id=%zz?pin-source=/1234&x=1",
		   "pkcs11:id=%zz?x=1", "unparsable: first attribute and query PIN cut out");
	display_is("pkcs11:id=%zz;PIN-Value=1234?pin%2Dsource=1234",
		   "pkcs11:id=%zz", "unparsable: attribute names in any case or %-encoded");
	display_is("pkcs11:id=%zz;object=a\nb\x1b",
		   "pkcs11:id=%zz;object=a%0Ab%1B", "unparsable: control characters %-encoded");
	display_is("/etc/keys/k.pem", "/etc/keys/k.pem", "a path stays as it is");
	display_is("pkcs12:token=t;pin-value=1234", "pkcs12:token=t",
		   "not a pkcs11: URI: pin-value cut out all the same");
	display_is("dir/\x1b[2Jk.pem", "dir/%1B[2Jk.pem",
		   "a path: control characters %-encoded");
	ok(p11_uri_display(NULL) == NULL, "NULL: NULL");
}

static void test_engine_id(void)
{
	static const struct {
		const char *s;
		int bare, want;
	} tab[] = {
		{ "0:01", 0, 1 }, { "12:a0b1", 0, 1 }, { "slot_0-id_01", 0, 1 },
		{ "id_01", 0, 1 }, { "id_ABC", 0, 1 }, { "label_k 1", 0, 1 },
		{ "slot_3-label_gw", 0, 1 }, { "4294967295:01", 0, 1 },
		{ "01", 1, 1 }, { "01", 0, 0 }, { "cafe", 1, 1 },
		{ "local.key", 1, 0 }, { "/etc/k.pem", 1, 0 }, { "0:", 0, 0 },
		{ "0:xy", 0, 0 }, { "id_", 0, 0 }, { "id_rsa", 0, 0 },
		{ "label_", 0, 0 }, { "slot_-id_01", 0, 0 }, { "slot_1", 0, 0 },
		{ "slot_1-id_zz", 0, 0 }, { "pkcs11:id=%01", 1, 0 }, { "", 1, 0 },
		{ "12345678901:01", 0, 0 }, { "dir/0:01", 0, 0 },
	};
	char *uri = (char *)"x";
	size_t i;
	int rc;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		is_int(p11_engine_id_is(tab[i].s, tab[i].bare), tab[i].want,
		       "engine key id? \"%s\"%s", tab[i].s,
		       tab[i].bare ? " (engine configured)" : "");
	rc = p11_engine_id_to_uri("id_01", 0, NULL, &uri);
	is_int(rc, SA_EUSAGE, "no module: SA_EUSAGE");
	ok(uri == NULL, "no module: no URI");
	ok(strstr(sa_errmsg(), "pkcs11:id=%01;type=private") != NULL,
	   "no module: the message names the URI to write");
	rc = p11_engine_id_to_uri("1:0a0b", 0, NULL, &uri);
	ok(rc == SA_EUSAGE && strstr(sa_errmsg(),
	   "pkcs11:token=LABEL;id=%0A%0B;type=private") != NULL,
	   "slot, no module: names the URI with a token label to fill in");
	rc = p11_engine_id_to_uri("label_a;b", 0, NULL, &uri);
	ok(rc == SA_EUSAGE && strstr(sa_errmsg(),
	   "pkcs11:object=a%3Bb;type=private") != NULL,
	   "a label is %%-encoded in the URI");
	rc = p11_engine_id_to_uri("id_abc", 0, "/nonexistent/module.so", &uri);
	ok(rc == 0 && uri != NULL && !strcmp(uri, "pkcs11:id=%AB%0C;type=private"),
	   "no slot: no module needed; odd hex as libp11 reads it");
	free(uri);
}

/* p11_uri_attr: p11-kit's parse, %-decoded; absent, bad or no URI: NULL. */
static void test_uri_attr(void)
{
	size_t len = 99;
	char *v;

	v = p11_uri_attr("pkcs11:token=t%201;object=my%3Bkey;type=private",
			 "object", &len);
	ok(v && !strcmp(v, "my;key") && len == 6, "object= %%-decoded");
	free(v);
	v = p11_uri_attr("PKCS11:token=t%201;object=k", "token", NULL);
	ok(v && !strcmp(v, "t 1"), "token=, scheme in upper case");
	free(v);
	v = p11_uri_attr("pkcs11:object=k;id=%01%00%ff", "id", &len);
	ok(v && len == 3 && v[0] == 1 && v[1] == 0 && (unsigned char)v[2] == 0xff,
	   "id= is binary, its length says how long");
	free(v);
	v = p11_uri_attr("pkcs11:token=t1;id=%01", "object", &len);
	ok(v == NULL && len == 0, "absent object=: NULL");
	v = p11_uri_attr("pkcs11:token=t1;object=k", "serial", NULL);
	ok(v == NULL, "absent serial=: NULL");
	v = p11_uri_attr("pkcs11:token=t1;serial=abc;model=m;manufacturer=x%20y",
			 "manufacturer", NULL);
	ok(v && !strcmp(v, "x y"), "manufacturer=");
	free(v);
	v = p11_uri_attr("pkcs11:serial=abc;model=m", "model", NULL);
	ok(v && !strcmp(v, "m"), "model=");
	free(v);
	v = p11_uri_attr("pkcs11:serial=abc", "serial", NULL);
	ok(v && !strcmp(v, "abc"), "serial=");
	free(v);
	v = p11_uri_attr("/etc/key.pem", "object", NULL);
	ok(v == NULL, "a file name is no URI");
	v = p11_uri_attr("pkcs11:object=%zz", "object", NULL);
	ok(v == NULL, "a bad %%-escape is refused by p11-kit (NULL)");
	v = p11_uri_attr("pkcs11:object=k;pin-value=1234", "pin-value", NULL);
	ok(v == NULL, "a PIN attribute is never handed out");
	v = p11_uri_attr("pkcs11:object=k", "bogus", NULL);
	ok(v == NULL, "an unknown attribute name: NULL");
}

/* p11_uri_token_key: the same token whatever the object attributes. */
static void test_token_key(void)
{
	char *a = p11_uri_token_key("pkcs11:token=t1;object=a;id=%01;type=private"
				    "?module-path=/m.so");
	char *b = p11_uri_token_key("pkcs11:object=b;token=t1;type=private"
				    "?module-path=/m.so");
	char *c = p11_uri_token_key("pkcs11:token=t1;object=a?module-path=/n.so");
	char *d = p11_uri_token_key("pkcs11:token=t2;object=a?module-path=/m.so");

	ok(a && b && !strcmp(a, b), "object=, id=, type= do not count: %s",
	   a ? a : "-");
	ok(a && !strstr(a, "object=") && !strstr(a, "id=") && !strstr(a, "type="),
	   "and are not in it");
	ok(a && c && strcmp(a, c) != 0, "another module-path is another token");
	ok(a && d && strcmp(a, d) != 0, "another token= is another token");
	ok(p11_uri_token_key("/etc/key.pem") == NULL, "a file name: NULL");
	free(a);
	free(b);
	free(c);
	free(d);
}

int main(void)
{
	sa_log_init("test_p11_uri", SA_LOG_ERR, 0);
	test_is_uri();
	test_parse();
	test_module();
	test_pin_source();
	test_pin_get();
	test_keyspec();
	test_pin_flags();
	test_match();
	test_display();
	test_engine_id();
	test_uri_attr();
	test_token_key();
	return tap_done();
}

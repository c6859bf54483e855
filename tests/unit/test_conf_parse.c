/* Unit tests for conf/: sscep.conf syntax, scopes, warnings, merge. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/conf.h>
#include <openssl/err.h>

#include "conf.h"
#include "sa_err.h"
#include "sa_log.h"
#include "tap.h"

static struct conf_file *parse(const char *text)
{
	struct conf_file *cf = NULL;
	int rc = conf_file_parse_buf("test.conf", text, strlen(text), &cf);

	if (rc < 0)
		diag("parse failed: %s", sa_errmsg());
	return cf;
}

static void test_syntax(void)
{
	struct conf_file *cf;
	int rc;

	cf = parse("# comment\n"
		   "top = 1\n"
		   "[sscep]\n"
		   "URL = http://localhost/scep\n"
		   "  Proxy=localhost:8080   \n"
		   "CAIdentifier = \"Value \\\"containing quotation marks\\\"\"\n"
		   "[ sscep_getca ]\n"
		   "FingerPrint = md5 # trailing comment\n"
		   "CACertFile = 'a b.crt'\n"
		   "Empty =\n"
		   "Win = ..\\\\capi\\\\capi.dll\n"
		   "Hash = \"a#b\"\n");
	ok(cf != NULL, "sscep syntax parses");
	if (cf == NULL)
		return;
	is_int(cf->n, 9, "nine entries");
	is_str(conf_file_get(cf, "", "top"), "1", "entry before any section");
	is_str(conf_file_get(cf, "sscep", "url"), "http://localhost/scep",
	       "keys are case-insensitive");
	is_str(conf_file_get(cf, "sscep", "Proxy"), "localhost:8080",
	       "no spaces around '=', trailing blanks dropped");
	is_str(conf_file_get(cf, "sscep", "CAIdentifier"),
	       "Value \"containing quotation marks\"", "escaped quotes");
	is_str(conf_file_get(cf, "sscep_getca", "FingerPrint"), "md5",
	       "trailing comment dropped, section name trimmed");
	is_str(conf_file_get(cf, "sscep_getca", "CACertFile"), "a b.crt",
	       "single quotes");
	is_str(conf_file_get(cf, "sscep_getca", "Empty"), "", "empty value");
	is_str(conf_file_get(cf, "sscep_getca", "Win"), "..\\capi\\capi.dll",
	       "backslash escapes a backslash");
	is_str(conf_file_get(cf, "sscep_getca", "Hash"), "a#b",
	       "# inside quotes is kept");
	ok(cf->e[3].line == 6, "line numbers kept");
	conf_file_free(cf);

	rc = conf_file_parse_buf("bad.conf", "[sscep]\nURL http://x\n", 20, &cf);
	is_int(rc, SA_EUSAGE, "line without '=' is a usage error");
	ok(strstr(sa_errmsg(), "bad.conf:2") != NULL,
	   "error names file and line: %s", sa_errmsg());
	ok(cf == NULL, "no output on error");
	rc = conf_file_parse_buf("bad.conf", "[sscep\n", 7, &cf);
	is_int(rc, SA_EUSAGE, "unclosed section header");
	rc = conf_file_parse_buf("bad.conf", "a = \"x\n", 7, &cf);
	is_int(rc, SA_EUSAGE, "unterminated quote");
	rc = conf_file_parse("/nonexistent/x.conf", &cf);
	is_int(rc, SA_EIO, "missing file is an I/O error");
}

static const char sample[] =
	"[sscep]\n"
	"engine = my_engine\n"
	"URL = http://127.0.0.1/scep\n"
	"CACertFile = ca.crt\n"
	"Verbose = true\n"
	"Debug = false\n"
	"Bogus = 1\n"
	"[my_engine]\n"
	"engine_id = pkcs11\n"
	"MODULE_PATH = /usr/lib/softhsm/libsofthsm2.so\n"
	"[sscep_engine_pkcs11]\n"
	"PIN = 1234\n"
	"[sscep_engine_capi]\n"
	"new_key_location = REQUEST\n"
	"[scep_agent]\n"
	"PinEnv = MY_PIN\n"
	"Timeout = 20\n"
	"[sscep_getca]\n"
	"CAIdentifier = myca\n"
	"FingerPrint = sha256\n"
	"[sscep_enroll]\n"
	"PrivateKeyFile = local.key\n"
	"CertReqFile = local.csr\n"
	"LocalCertFile = local.crt\n"
	"PollInterval = 5\n"
	"MaxPollCount = 3\n"
	"Resume = no\n"
	"Subject = /CN=dev\n"
	"SubjectAltName = DNS:a.example\n"
	"SubjectAltName = IP:::1\n"
	"[sscep_getcert]\n"
	"LocalCertFile = signer.crt\n"
	"GetCertSerial = 12\n"
	"[sscep_typo]\n"
	"X = 1\n"
	"Y = 2\n";

static void test_scopes(void)
{
	struct conf_file *cf = parse(sample);
	struct conf_settings s, cli;
	int rc;

	if (cf == NULL)
		return;
	conf_settings_init(&s);
	rc = conf_apply(cf, "enroll", &s);
	is_int(rc, 0, "apply enroll");
	is_int(s.warnings, 2, "one warning for the unknown key, one for the "
	       "unknown section");
	is_str(s.url, "http://127.0.0.1/scep", "URL");
	is_str(s.ca_cert_file, "ca.crt", "CACertFile");
	is_int(s.verbose, 1, "Verbose = true");
	is_int(s.debug, 0, "Debug = false");
	is_str(s.pkcs11_module, "/usr/lib/softhsm/libsofthsm2.so",
	       "engine MODULE_PATH maps to the module");
	is_str(s.engine_id, "pkcs11", "engine_id");
	is_str(s.engine_pin, "1234", "engine PIN");
	is_str(s.pin_env, "MY_PIN", "[scep_agent] PinEnv");
	is_int(s.timeout, 20, "Timeout");
	is_str(s.private_key, "local.key", "enroll PrivateKeyFile");
	is_str(s.local_cert_file, "local.crt", "enroll LocalCertFile");
	is_int(s.poll_interval, 5, "PollInterval");
	is_int(s.max_poll_count, 3, "MaxPollCount");
	is_int(s.max_poll_time, -1, "MaxPollTime unset");
	is_int(s.resume, 0, "Resume = no");
	is_str(s.ca_ident, NULL, "getca's CAIdentifier not in enroll scope");
	is_int(s.n_san, 2, "SubjectAltName repeats");
	if (s.n_san == 2)
		is_str(s.san[1], "IP:::1", "second SAN");

	/* the one place where options override */
	conf_settings_init(&cli);
	cli.url = strdup("http://other/scep");
	cli.poll_interval = 1;
	cli.san = calloc(1, sizeof(char *));
	cli.san[0] = strdup("DNS:cli.example");
	cli.n_san = 1;
	rc = conf_merge(&s, &cli);
	is_int(rc, 0, "merge");
	is_str(s.url, "http://other/scep", "option overrides URL");
	is_int(s.poll_interval, 1, "option overrides PollInterval");
	is_int(s.max_poll_count, 3, "unset option keeps the file's value");
	is_str(s.ca_cert_file, "ca.crt", "unset option keeps CACertFile");
	is_int(s.n_san, 1, "option SAN list replaces the file's");
	conf_settings_free(&cli);
	conf_settings_free(&s);

	conf_settings_init(&s);
	rc = conf_apply(cf, "getcert", &s);
	is_int(rc, 0, "apply getcert");
	is_str(s.local_cert_file, "signer.crt", "getcert LocalCertFile");
	is_str(s.get_cert_serial, "12", "GetCertSerial");
	is_str(s.private_key, NULL, "enroll key not in getcert scope");
	conf_settings_free(&s);

	conf_settings_init(&s);
	rc = conf_apply(cf, "getca", &s);
	is_str(s.ca_ident, "myca", "getca CAIdentifier");
	is_str(s.fingerprint, "sha256", "getca FingerPrint");
	conf_settings_free(&s);

	conf_settings_init(&s);
	rc = conf_apply(cf, "mkrequest", &s);
	is_str(s.subject, "/CN=dev", "mkrequest reads [sscep_enroll]");
	conf_settings_free(&s);
	conf_file_free(cf);
}

static void test_values(void)
{
	struct conf_file *cf;
	struct conf_settings s;
	int rc;

	cf = parse("[sscep_enroll]\nPollInterval = soon\n");
	conf_settings_init(&s);
	rc = conf_apply(cf, "enroll", &s);
	is_int(rc, SA_EUSAGE, "a non-number is refused");
	ok(strstr(sa_errmsg(), "test.conf:2") != NULL, "with file and line");
	conf_settings_free(&s);
	conf_file_free(cf);

	cf = parse("[sscep]\nVerbose = maybe\n");
	conf_settings_init(&s);
	rc = conf_apply(cf, NULL, &s);
	is_int(rc, SA_EUSAGE, "a non-boolean is refused");
	conf_settings_free(&s);
	conf_file_free(cf);

	is_int(conf_bool("YES"), 1, "YES");
	is_int(conf_bool("false"), 0, "false");
	is_int(conf_bool("2"), -1, "2 is not a boolean");

	conf_settings_init(&s);
	is_int(conf_set(&s, "nosuchkey", "1", "x"), SA_ENOTFOUND,
	       "conf_set: unknown key");
	is_int(conf_set(&s, "cabundle", "/etc/ca.pem", "x"), 0,
	       "conf_set: known key");
	is_str(s.ca_bundle, "/etc/ca.pem", "conf_set stored");
	conf_settings_free(&s);
	is_str(s.ca_bundle, NULL, "free resets");
}

/* The shipped example configurations parse without a warning. */
static void test_examples(const char *dir)
{
	static const char *const files[] = { "sscep.conf", "token.conf" };
	static const char *const opl[] = { "getca", "enroll", "getcert",
					   "getcrl", "getnextca", "mkrequest" };
	char path[4096];
	size_t i, j;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		for (j = 0; j < sizeof(opl) / sizeof(opl[0]); j++) {
			struct conf_settings s;
			int rc;

			conf_settings_init(&s);
			rc = conf_load(path, opl[j], &s);
			ok(rc == 0 && s.warnings == 0, "%s for %s: no error, no "
			   "warning", files[i], opl[j]);
			if (rc < 0)
				diag("%s", sa_errmsg());
			conf_settings_free(&s);
		}
	}
}

/* The value OpenSSL's NCONF (what sscep reads its file with) gives. */
static char *nconf_value(const char *text, const char *sec, const char *key)
{
	CONF *c = NCONF_new(NULL);
	BIO *b = BIO_new_mem_buf(text, -1);
	long eline = 0;
	char *v = NULL, *got;

	if (c != NULL && b != NULL && NCONF_load_bio(c, b, &eline) > 0) {
		got = NCONF_get_string(c, sec, key);
		if (got != NULL)
			v = strdup(got);
	}
	ERR_clear_error();
	BIO_free(b);
	NCONF_free(c);
	return v;
}

/*
 * $variables and line continuation, checked against OpenSSL's own NCONF:
 * an sscep.conf that uses them means the same to both.
 */
static void test_nconf_compat(void)
{
	static const char text[] =
		"base = /etc/scep\n"
		"host = ca.example\n"
		"[sscep]\n"
		"URL = http://$host/cgi-bin/pkiclient.exe\n"
		"CACertFile = ${base}/ca.crt\n"
		"Proxy = $(host):8080\n"
		"[sscep_enroll]\n"
		"dir = $base/enroll\n"
		"PrivateKeyFile = $dir/local.key\n"
		"LocalCertFile = ${sscep::CACertFile}.local\n"
		"CertReqFile = $sscep::Proxy/x\n"
		"SelfSignedFile = \"$dir\"/literal\n"
		"SignKeyFile = \\$dir\n"
		"SignCertFile = /very/long/\\\n"
		"path/\\\n"
		"  old.crt\n"
		"EncCertFile = a\\\\\n"
		"MaxPollCount = 5\n"
		"PollInterval = $ENV::SA_TEST_POLL\n"
		"[default]\n"
		"late = 1\n";
	static const struct { const char *sec, *key; } keys[] = {
		{ "sscep", "URL" }, { "sscep", "CACertFile" }, { "sscep", "Proxy" },
		{ "sscep_enroll", "PrivateKeyFile" },
		{ "sscep_enroll", "LocalCertFile" },
		{ "sscep_enroll", "CertReqFile" },
		{ "sscep_enroll", "SelfSignedFile" },
		{ "sscep_enroll", "SignKeyFile" },
		{ "sscep_enroll", "SignCertFile" },
		{ "sscep_enroll", "EncCertFile" },
		{ "sscep_enroll", "MaxPollCount" },
		{ "sscep_enroll", "PollInterval" },
		{ "", "late" },
	};
	struct conf_file *cf;
	size_t i;

	setenv("SA_TEST_POLL", "42", 1);
	cf = parse(text);
	ok(cf != NULL, "variables and continuations parse");
	if (cf == NULL)
		return;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char *want = nconf_value(text, keys[i].sec[0] ? keys[i].sec : "default",
					 keys[i].key);

		ok(want != NULL, "NCONF has [%s] %s", keys[i].sec, keys[i].key);
		is_str(conf_file_get(cf, keys[i].sec, keys[i].key), want,
		       "[%s] %s as NCONF reads it", keys[i].sec, keys[i].key);
		free(want);
	}
	is_str(conf_file_get(cf, "sscep", "URL"),
	       "http://ca.example/cgi-bin/pkiclient.exe", "$host expanded");
	is_str(conf_file_get(cf, "sscep_enroll", "SignCertFile"),
	       "/very/long/path/  old.crt", "continuation joins lines");
	is_str(conf_file_get(cf, "sscep_enroll", "PollInterval"), "42",
	       "$ENV::NAME from the environment");
	ok(cf->e[cf->n - 1].line == 21, "line numbers count continued lines");
	ok(cf->e[0].referenced && cf->e[1].referenced && !cf->e[cf->n - 1].referenced,
	   "definitions that a $variable uses are marked (no unknown-key warning)");
	conf_file_free(cf);

	cf = parse("[a]\nx = $nothere\n");
	ok(cf == NULL && strstr(sa_errmsg(), "test.conf:2") != NULL &&
	   strstr(sa_errmsg(), "has no value") != NULL,
	   "undefined variable: error with file and line");
	conf_file_free(cf);
	cf = parse("[sscep_engine]\nPIN = 12$ab34\n");
	ok(cf == NULL && strstr(sa_errmsg(), "ab34") == NULL &&
	   strstr(sa_errmsg(), "test.conf:2") != NULL,
	   "a '$' in an unquoted PIN: the error does not show the rest of it");
	conf_file_free(cf);
	unsetenv("SA_TEST_UNSET");
	cf = parse("x = $ENV::SA_TEST_UNSET\n");
	ok(cf == NULL && strstr(sa_errmsg(), "SA_TEST_UNSET is not set") != NULL,
	   "an unset environment variable is named");
	conf_file_free(cf);
	{
		/* $a$a doubling: 2^13 * 2 bytes a value, then many copies */
		char *big = malloc(1024 * 1024), *q = big;
		int i;

		q += sprintf(q, "a0 = xx\n");
		for (i = 1; i <= 13; i++)
			q += sprintf(q, "a%d = $a%d$a%d\n", i, i - 1, i - 1);
		for (i = 0; i < 20000; i++)
			q += sprintf(q, "b%d = $a13\n", i);
		cf = parse(big);
		ok(cf == NULL && strstr(sa_errmsg(), "expand to more than") != NULL,
		   "variables that expand without bound are refused");
		conf_file_free(cf);
		free(big);
	}
	cf = parse("[a]\nx = ${open\n");
	ok(cf == NULL && strstr(sa_errmsg(), "closing '}'") != NULL,
	   "unclosed ${: error");
	conf_file_free(cf);
	cf = parse("[a]\nx = 5$ \n");
	ok(cf == NULL && strstr(sa_errmsg(), "\\$") != NULL,
	   "lone $: error says how to write a dollar sign");
	conf_file_free(cf);
	cf = parse("[a]\nx = 'pa$$'\n");
	is_str(cf ? conf_file_get(cf, "a", "x") : NULL, "pa$$",
	       "no expansion inside quotes");
	conf_file_free(cf);
	cf = parse(".include other.conf\n");
	ok(cf == NULL && strstr(sa_errmsg(), ".include is not supported") != NULL,
	   ".include: a clear error");
	conf_file_free(cf);
	cf = parse("[a]\n.include = other.conf\n");
	ok(cf == NULL && strstr(sa_errmsg(), ".include is not supported") != NULL,
	   ".include = path: the same error");
	conf_file_free(cf);
}

int main(int argc, char **argv)
{
	sa_log_init("test_conf", SA_LOG_WARN, 0);
	test_syntax();
	test_scopes();
	test_values();
	test_nconf_compat();
	if (argc > 1)
		test_examples(argv[1]);
	return tap_done();
}

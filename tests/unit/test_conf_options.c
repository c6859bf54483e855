/*
 * Unit tests for agent/options.c: sscep option letters per operation, the
 * configuration file under the command line, derived values.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "sa_err.h"
#include "sa_log.h"
#include "tap.h"

static int parse(struct agent_opts *o, int *help, ...)
{
	char *argv[64];
	int argc = 0;
	va_list ap;
	const char *a;

	argv[argc++] = "scep-agent";
	va_start(ap, help);
	while ((a = va_arg(ap, const char *)) != NULL && argc < 63)
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	return agent_opts_parse(argc, argv, o, help);
}

static void test_letters(void)
{
	struct agent_opts o;
	int help, rc;

	rc = parse(&o, &help, "enroll", "-u", "http://x/scep", "-c", "ca.crt",
		   "-k", "l.key", "-r", "l.csr", "-K", "old.key", "-O", "old.crt",
		   "-l", "l.crt", "-e", "enc.crt", "-L", "ss.crt", "-t", "5",
		   "-T", "60", "-n", "3", "-R", "-E", "3des", "-S", "sha512",
		   "--san", "DNS:a", "--san", "IP:::1", NULL);
	is_int(rc, 0, "enroll with sscep letters");
	is_int(o.op, OP_ENROLL, "operation");
	is_str(o.s.sign_cert_file, "old.crt", "enroll -O is the old certificate");
	is_str(o.s.sign_key, "old.key", "-K");
	is_int(o.s.poll_interval, 5, "-t");
	is_int(o.s.max_poll_time, 60, "-T");
	is_int(o.s.max_poll_count, 3, "-n");
	is_int(o.s.resume, 1, "-R");
	is_int(o.cipher, SCEP_CIPHER_DES3, "-E 3des");
	is_int(o.digest, SCEP_DIGEST_SHA512, "-S sha512");
	is_int(o.s.n_san, 2, "--san repeats");
	agent_opts_free(&o);

	rc = parse(&o, &help, "getcert", "-O", "issuer.crt", "-w", "out.crt",
		   "-s", "12", NULL);
	is_int(rc, 0, "getcert");
	is_str(o.s.other_cert_file, "issuer.crt", "getcert -O is the issuer");
	is_str(o.s.sign_cert_file, NULL, "not the renewal certificate");
	is_str(o.s.get_cert_file, "out.crt", "getcert -w is GetCertFile");
	agent_opts_free(&o);

	rc = parse(&o, &help, "getcrl", "-w", "crl.pem", NULL);
	is_str(o.s.get_crl_file, "crl.pem", "getcrl -w is GetCrlFile");
	agent_opts_free(&o);

	rc = parse(&o, &help, "getca", "-F", "sha1", NULL);
	ok(rc == 0 && o.fp_md == EVP_sha1() && o.fp_pin == NULL,
	   "-F sha1 picks the digest");
	agent_opts_free(&o);
	rc = parse(&o, &help, "getca", "-F", "AB:CD", NULL);
	is_str(o.fp_pin, "AB:CD", "-F with a fingerprint pins");
	agent_opts_free(&o);

	is_int(parse(&o, &help, "frobnicate", NULL), SA_EUSAGE,
	       "unknown operation");
	agent_opts_free(&o);
	is_int(parse(&o, &help, "getca", "-Z", NULL), SA_EUSAGE,
	       "unknown option");
	agent_opts_free(&o);
	is_int(parse(&o, &help, "getca", "-u", NULL), SA_EUSAGE,
	       "missing argument");
	agent_opts_free(&o);
	is_int(parse(&o, &help, "enroll", "-t", "soon", NULL), SA_EUSAGE,
	       "non-numeric -t");
	agent_opts_free(&o);
	is_int(parse(&o, &help, "enroll", "-E", "rot13", NULL), SA_EUSAGE,
	       "unknown cipher");
	agent_opts_free(&o);
	is_int(parse(&o, &help, "enroll", "--renew-mode", "x", NULL), SA_EUSAGE,
	       "unknown renew mode");
	agent_opts_free(&o);
	is_int(parse(&o, &help, "enroll", "-g", "capi", NULL), SA_EUSAGE,
	       "engines other than pkcs11 are refused");
	agent_opts_free(&o);
	is_int(parse(&o, &help, "getca", "-g", "capi", NULL), SA_EUSAGE,
	       "-g capi on the command line is refused even for getca");
	agent_opts_free(&o);

	/* --connect-timeout: whole seconds, 1 or more */
	rc = parse(&o, &help, "getca", "--connect-timeout", "7", "--timeout",
		   "20", NULL);
	is_int(rc, 0, "--connect-timeout 7");
	is_int(o.s.connect_timeout, 7, "connect timeout stored");
	is_int(o.s.timeout, 20, "beside --timeout");
	agent_opts_free(&o);
	rc = parse(&o, &help, "getca", NULL);
	is_int(o.s.connect_timeout, -1, "no --connect-timeout: unset (30 s)");
	agent_opts_free(&o);
	is_int(parse(&o, &help, "getca", "--connect-timeout", "0", NULL),
	       SA_EUSAGE, "--connect-timeout 0 refused");
	ok(strstr(sa_errmsg(), "--connect-timeout") != NULL, "message: %s",
	   sa_errmsg());
	agent_opts_free(&o);
	is_int(parse(&o, &help, "getca", "--connect-timeout", "-3", NULL),
	       SA_EUSAGE, "--connect-timeout -3 refused");
	agent_opts_free(&o);
	is_int(parse(&o, &help, "getca", "--connect-timeout", "3s", NULL),
	       SA_EUSAGE, "--connect-timeout 3s refused");
	agent_opts_free(&o);

	/* getnextca in sscep's form: -C chain, -c output, -w signer */
	rc = parse(&o, &help, "getnextca", "-C", "chain.pem", "-c", "next.crt",
		   "-w", "signer.crt", NULL);
	is_int(rc, 0, "getnextca -C -c -w");
	is_str(o.s.ca_chain_file, "chain.pem", "-C is the verifying chain");
	is_str(o.s.ca_cert_file, "next.crt", "-c kept as given");
	is_str(o.s.out_file, "signer.crt", "-w kept as given");
	agent_opts_free(&o);
	rc = parse(&o, &help, "list-objects", "pkcs11:token=t1", NULL);
	is_str(o.arg, "pkcs11:token=t1", "list-objects takes a URI argument");
	agent_opts_free(&o);
	is_int(parse(&o, &help, "getca", "extra", NULL), SA_EUSAGE,
	       "stray argument refused");
	agent_opts_free(&o);
}

static void test_conf_under_cli(void)
{
	char path[] = "/tmp/test_conf_options.XXXXXX";
	struct agent_opts o;
	FILE *fp;
	int fd, help, rc;

	fd = mkstemp(path);
	fp = fdopen(fd, "w");
	fprintf(fp, "[sscep]\nURL = http://file/scep\nCACertFile = file.crt\n"
		"engine = eng\n"
		"[eng]\nengine_id = pkcs11\nMODULE_PATH = /lib/mod.so\n"
		"[sscep_enroll]\nPrivateKeyFile = file.key\nPollInterval = 7\n"
		"RenewMode = pkcsreq\n"
		"[sscep_getcert]\nPrivateKeyFile = getcert.key\n");
	fclose(fp);

	rc = parse(&o, &help, "enroll", "-f", path, "-u", "http://cli/scep",
		   "-t", "9", NULL);
	is_int(rc, 0, "enroll -f");
	is_str(o.s.url, "http://cli/scep", "-u overrides URL");
	is_str(o.s.ca_cert_file, "file.crt", "CACertFile from the file");
	is_str(o.s.private_key, "file.key", "enroll section applied");
	is_int(o.s.poll_interval, 9, "-t overrides PollInterval");
	is_int(o.renew_mode, RENEW_PKCSREQ, "RenewMode from the file");
	is_str(o.p11.module, "/lib/mod.so", "engine MODULE_PATH is the module");
	agent_opts_free(&o);

	rc = parse(&o, &help, "getcert", "-f", path, "--module", "/cli.so", NULL);
	is_str(o.s.private_key, "getcert.key", "getcert section applied");
	is_str(o.p11.module, "/cli.so", "--module overrides MODULE_PATH");
	agent_opts_free(&o);

	rc = parse(&o, &help, "getca", "-f", "/nonexistent.conf", NULL);
	is_int(rc, SA_EIO, "missing configuration file");
	agent_opts_free(&o);
	unlink(path);
}

static char *conf_file(const char *text)
{
	static char path[64];
	FILE *fp;
	int fd;

	snprintf(path, sizeof(path), "/tmp/test_conf_options.XXXXXX");
	fd = mkstemp(path);
	fp = fdopen(fd, "w");
	fputs(text, fp);
	fclose(fp);
	return path;
}

/* ConnectTimeout in the file, --connect-timeout over it */
static void test_connect_timeout(void)
{
	struct agent_opts o;
	char *path;
	int help, rc;

	path = conf_file("[sscep]\nTimeout = 50\nConnectTimeout = 12\n");
	rc = parse(&o, &help, "getca", "-f", path, NULL);
	is_int(rc, 0, "ConnectTimeout in the file");
	is_int(o.s.connect_timeout, 12, "ConnectTimeout read");
	is_int(o.s.timeout, 50, "Timeout read");
	is_int(o.s.warnings, 0, "ConnectTimeout is a known key");
	agent_opts_free(&o);
	rc = parse(&o, &help, "getca", "-f", path, "--connect-timeout", "4", NULL);
	is_int(o.s.connect_timeout, 4, "--connect-timeout overrides ConnectTimeout");
	agent_opts_free(&o);
	unlink(path);

	path = conf_file("[sscep]\nConnectTimeout = 0\n");
	is_int(parse(&o, &help, "getca", "-f", path, NULL), SA_EUSAGE,
	       "ConnectTimeout = 0 refused");
	ok(strstr(sa_errmsg(), "ConnectTimeout") != NULL, "message: %s", sa_errmsg());
	agent_opts_free(&o);
	unlink(path);
	path = conf_file("[sscep]\nConnectTimeout = -2\n");
	is_int(parse(&o, &help, "getca", "-f", path, NULL), SA_EUSAGE,
	       "ConnectTimeout = -2 refused");
	agent_opts_free(&o);
	unlink(path);
}

/* TokenTimeout in the file, --token-timeout over it; defaults 60/300 */
static void test_token_timeout(void)
{
	static const struct {
		const char *v;
		unsigned long call, keygen;
	} good[] = {
		{ "20", 20, 300 },     /* key generation keeps its default */
		{ "600", 600, 600 },   /* ... unless the per-call one is longer */
		{ "0", 0, 0 },         /* 0: no bound at all */
		{ "5,30", 5, 30 },
		{ "90,0", 90, 0 },     /* key generation unbounded */
		{ "0,120", 0, 120 },
		{ "86400,86400", 86400, 86400 },
	};
	static const char *const bad[] = {
		"", "x", "-1", "5,", ",5", "5,6,7", "1.5", "5;6", "86401", " 5",
		"5,-1", "99999999999999999999999",
	};
	struct agent_opts o;
	char *path;
	size_t i;
	int help, rc;

	rc = parse(&o, &help, "enroll", NULL);
	is_int(rc, 0, "no --token-timeout");
	ok(o.token_call_s == 60 && o.token_keygen_s == 300,
	   "defaults: 60 s per call, 300 s for key generation (%lu, %lu)",
	   o.token_call_s, o.token_keygen_s);
	agent_opts_free(&o);
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		rc = parse(&o, &help, "enroll", "--token-timeout", good[i].v, NULL);
		is_int(rc, 0, "--token-timeout %s", good[i].v);
		ok(o.token_call_s == good[i].call && o.token_keygen_s == good[i].keygen,
		   "--token-timeout %s: %lu per call, %lu for key generation "
		   "(got %lu, %lu)", good[i].v, good[i].call, good[i].keygen,
		   o.token_call_s, o.token_keygen_s);
		agent_opts_free(&o);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = parse(&o, &help, "enroll", "--token-timeout", bad[i], NULL);
		is_int(rc, SA_EUSAGE, "--token-timeout \"%s\" refused", bad[i]);
		ok(strstr(sa_errmsg(), "--token-timeout (TokenTimeout)") != NULL,
		   "message: %s", sa_errmsg());
		agent_opts_free(&o);
	}
	path = conf_file("[sscep]\nTokenTimeout = 7,70\n");
	rc = parse(&o, &help, "enroll", "-f", path, NULL);
	is_int(rc, 0, "TokenTimeout in the file");
	is_int(o.s.warnings, 0, "TokenTimeout is a known key");
	ok(o.token_call_s == 7 && o.token_keygen_s == 70, "TokenTimeout = 7,70");
	agent_opts_free(&o);
	rc = parse(&o, &help, "enroll", "-f", path, "--token-timeout", "9", NULL);
	ok(rc == 0 && o.token_call_s == 9 && o.token_keygen_s == 300,
	   "--token-timeout 9 replaces the whole TokenTimeout");
	agent_opts_free(&o);
	unlink(path);
	path = conf_file("[sscep]\nTokenTimeout = soon\n");
	is_int(parse(&o, &help, "enroll", "-f", path, NULL), SA_EUSAGE,
	       "TokenTimeout = soon refused");
	agent_opts_free(&o);
	unlink(path);
}

/*
 * sscep's sample configuration names the capi engine: a warning, and only
 * a key that would have to come from that engine is an error.
 */
static void test_foreign_engine(void)
{
	struct agent_opts o;
	char *path, keyfile[] = "/tmp/test_conf_options.key.XXXXXX";
	int help, rc, fd;

	fd = mkstemp(keyfile);
	close(fd);
	path = conf_file("[sscep]\nengine = sscep_engine\nURL = http://x/scep\n"
			 "[sscep_engine]\nengine_id = capi\n"
			 "[sscep_engine_capi]\nnew_key_location = REQUEST\n"
			 "[sscep_enroll]\nPrivateKeyFile = 0:01\n");
	rc = parse(&o, &help, "getca", "-f", path, "-c", "ca.crt", NULL);
	is_int(rc, 0, "getca with engine_id = capi in the file goes on");
	is_int(o.s.warnings, 1, "with one warning");
	agent_opts_free(&o);
	rc = parse(&o, &help, "getcaps", "-f", path, NULL);
	is_int(rc, 0, "getcaps too");
	agent_opts_free(&o);
	rc = parse(&o, &help, "enroll", "-f", path, NULL);
	is_int(rc, SA_EUSAGE, "enroll with the engine key id 0:01: refused");
	ok(strstr(sa_errmsg(), "0:01") && strstr(sa_errmsg(), "capi") &&
	   strstr(sa_errmsg(), "pkcs11:"), "message: %s", sa_errmsg());
	agent_opts_free(&o);
	rc = parse(&o, &help, "enroll", "-f", path, "-k", keyfile, NULL);
	is_int(rc, 0, "enroll with a key file: goes on");
	agent_opts_free(&o);
	rc = parse(&o, &help, "enroll", "-f", path, "-k",
		   "pkcs11:token=t;object=k", NULL);
	is_int(rc, 0, "enroll with a pkcs11: URI: goes on");
	agent_opts_free(&o);
	rc = parse(&o, &help, "enroll", "-f", path, "-k", keyfile, "-K", "0:02",
		   "-O", "old.crt", NULL);
	is_int(rc, SA_EUSAGE, "an old key that is an engine key id: refused");
	agent_opts_free(&o);
	rc = parse(&o, &help, "getcert", "-f", path, "-k", "0:03", NULL);
	is_int(rc, SA_EUSAGE, "getcert signing key that is an engine key id: refused");
	agent_opts_free(&o);
	rc = parse(&o, &help, "enroll", "-f", path, "-g", "pkcs11", "-k",
		   keyfile, NULL);
	is_int(rc, 0, "-g pkcs11 overrides the file's engine");
	agent_opts_free(&o);
	/* the pkcs11 engine's key id with no module to find it in */
	rc = parse(&o, &help, "enroll", "-f", path, "-g", "pkcs11", NULL);
	is_int(rc, SA_EUSAGE, "-g pkcs11, key 0:01, no module: refused");
	ok(strstr(sa_errmsg(), "0:01") && strstr(sa_errmsg(),
	   "pkcs11:token=LABEL;id=%01;type=private"),
	   "names the URI to write: %s", sa_errmsg());
	agent_opts_free(&o);
	rc = parse(&o, &help, "getca", "-f", path, "-g", "capi", NULL);
	is_int(rc, SA_EUSAGE, "-g capi on the command line: refused");
	agent_opts_free(&o);
	unlink(path);
	unlink(keyfile);
}

int main(void)
{
	sa_log_init("test_conf_options", SA_LOG_ERR, 0);
	test_letters();
	test_conf_under_cli();
	test_connect_timeout();
	test_token_timeout();
	test_foreign_engine();
	return tap_done();
}

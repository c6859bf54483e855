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

int main(void)
{
	sa_log_init("test_conf_options", SA_LOG_ERR, 0);
	test_letters();
	test_conf_under_cli();
	return tap_done();
}

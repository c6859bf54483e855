/*
 * engine_drive.c - runs engine_enroll() once, as the daemon's job will:
 * the settings from a scep-agent command line, the issued certificate
 * handed to a disk store of the caller's (store_disk) instead of -l. For
 * tests/integration/softhsm_engine.sh.
 *
 *   engine_drive MODE STOREFILE enroll ARGS...
 *
 * MODE "store": the disk store writes the certificate (PEM) to STOREFILE;
 * "refuse": it refuses (SA_EIO "the test store refused ..."). keep_old is
 * ENGINE_KEEP_OLD from the environment (default 0). Prints the
 * outcome as NAME=VALUE lines on stdout; exit 0 when the engine returned
 * what its status says (0 with an outcome, the error's code otherwise),
 * 1 when that contract was broken, 2 on bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "agent.h"
#include "engine.h"
#include "sa_err.h"
#include "sa_log.h"

struct store {
	const char *mode;
	const char *file;
	int calls;
	int ca_certs; /* the CA handed over (its certificates) */
};

static int store_disk(void *arg, X509 *cert, const struct scep_ca *ca)
{
	struct store *st = arg;
	FILE *f;

	st->calls++;
	st->ca_certs = ca != NULL ? sk_X509_num(ca->certs) : -1;
	if (strcmp(st->mode, "refuse") == 0)
		return sa_fail_noossl(SA_EIO, "the test store refused %s",
				      st->file);
	f = fopen(st->file, "w");
	if (f == NULL || PEM_write_X509(f, cert) != 1) {
		if (f != NULL)
			fclose(f);
		return sa_fail(SA_EIO, "cannot write %s", st->file);
	}
	if (fclose(f) != 0)
		return sa_fail_noossl(SA_EIO, "cannot write %s", st->file);
	return 0;
}

static const char *status_name(enum engine_status s)
{
	switch (s) {
	case ENGINE_ERROR: return "ERROR";
	case ENGINE_SUCCESS: return "SUCCESS";
	case ENGINE_PENDING: return "PENDING";
	case ENGINE_FAILURE: return "FAILURE";
	}
	return "?";
}

int main(int argc, char **argv)
{
	struct agent_opts o;
	struct store st = { 0 };
	struct engine_req req = { 0 };
	struct engine_outcome out;
	int rc, help = 0, ok;

	if (argc < 4) {
		fprintf(stderr, "usage: engine_drive store|refuse FILE enroll ARGS...\n");
		return 2;
	}
	st.mode = argv[1];
	st.file = argv[2];
	sa_log_init("engine_drive", SA_LOG_INFO, 0);
	/* argv[2] stands in for the program name: argv[3] is the operation */
	rc = agent_opts_parse(argc - 2, argv + 2, &o, &help);
	if (rc < 0 || help) {
		fprintf(stderr, "engine_drive: %s\n", sa_errmsg());
		agent_opts_free(&o);
		return 2;
	}
	rc = scep_crypto_init();
	if (rc < 0) {
		fprintf(stderr, "engine_drive: %s\n", sa_errmsg());
		agent_opts_free(&o);
		return 2;
	}
	req.o = &o;
	req.store_disk = store_disk;
	req.store_arg = &st;
	req.keep_old = getenv("ENGINE_KEEP_OLD") ? atoi(getenv("ENGINE_KEEP_OLD")) : 0;
	rc = engine_enroll(&req, &out);
	ok = out.status == ENGINE_ERROR ? rc == out.err.code && rc < 0 : rc == 0;
	printf("rc=%d\n", rc);
	printf("status=%s\n", status_name(out.status));
	printf("err_code=%d\n", out.err.code);
	printf("err_msg=%s\n", out.err.msg);
	printf("recorded_msg=%s\n", sa_errmsg());
	printf("cert=%d\n", out.cert != NULL);
	printf("transaction_id=%s\n", out.transaction_id ? out.transaction_id : "");
	printf("fail_info=%d\n", out.fail_info);
	printf("key_uri=%s\n", out.key_uri ? out.key_uri : "");
	printf("cert_uri=%s\n", out.cert_uri ? out.cert_uri : "");
	printf("sent=%d\n", out.sent);
	printf("finished_earlier=%d\n", out.finished_earlier);
	printf("cert_written=%d\n", out.cert_written);
	printf("key_in_token=%d\n", out.key_in_token);
	printf("key_generated=%d\n", out.key_generated);
	printf("key_new=%d\n", out.key_new);
	printf("store_calls=%d\n", st.calls);
	printf("store_ca_certs=%d\n", st.ca_certs);
	if (out.cert != NULL && strcmp(st.mode, "refuse") == 0) {
		/* stored nowhere: the caller shows it */
		char path[4096];
		FILE *f;

		snprintf(path, sizeof(path), "%s.unstored", st.file);
		f = fopen(path, "w");
		if (f != NULL) {
			PEM_write_X509(f, out.cert);
			fclose(f);
		}
	}
	engine_outcome_clear(&out);
	agent_opts_free(&o);
	return ok ? 0 : 1;
}

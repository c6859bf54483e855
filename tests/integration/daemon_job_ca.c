/*
 * daemon_job_ca.c - drives the daemon job's CA step (job_ca_refresh,
 * agent/daemon/job_ca.c) against a test CA, for daemon_job_ca.sh:
 *
 *	daemon_job_ca URL STOREDIR [-tofu] [-pin FP] [-state FP]
 *	              [-next FP] [-pct N | -before SECS]
 *
 * Prints "rc=N", "ca_fp=..", "next_ca_fp=..", "ca_not_after=.." and
 * "pin=.." (the anchor used) on stdout, the error message on stderr.
 * Exit 0 when job_ca_refresh returned 0, else 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "job.h"
#include "sa_err.h"
#include "sa_log.h"

int main(int argc, char **argv)
{
	struct profile p;
	struct state st;
	struct job_in in;
	struct job_out out;
	struct job_ca jc;
	scep_client *c = NULL;
	int i, rc;

	if (argc < 3) {
		fprintf(stderr, "usage: daemon_job_ca URL STOREDIR [options]\n");
		return 2;
	}
	sa_log_init("daemon_job_ca", SA_LOG_VERBOSE, 0);
	memset(&p, 0, sizeof(p));
	memset(&st, 0, sizeof(st));
	conf_settings_init(&p.o.s);
	p.name = "t1";
	p.o.op_name = "check";
	p.o.s.url = argv[1];
	p.store_dir = argv[2];
	p.renew_pct = 75;
	p.renew_before = -1;
	for (i = 3; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(argv[i], "-tofu") == 0) {
			p.tofu = 1;
			continue;
		}
		if (v == NULL)
			return 2;
		if (strcmp(argv[i], "-pin") == 0)
			p.o.fp_pin = v;
		else if (strcmp(argv[i], "-state") == 0)
			st.ca_fingerprint = (char *)v;
		else if (strcmp(argv[i], "-next") == 0)
			st.next_ca_fingerprint = (char *)v;
		else if (strcmp(argv[i], "-pct") == 0)
			p.renew_pct = atoi(v);
		else if (strcmp(argv[i], "-before") == 0) {
			p.renew_pct = 0;
			p.renew_before = atol(v);
		} else
			return 2;
		i++;
	}
	if (scep_crypto_init() < 0 || agent_client_new(&p.o, &c) < 0) {
		fprintf(stderr, "%s\n", sa_errmsg());
		return 2;
	}
	memset(&in, 0, sizeof(in));
	in.p = &p;
	in.st = &st;
	memset(&out, 0, sizeof(out));
	rc = job_ca_refresh(&in, c, &jc, &out);
	printf("rc=%d\n", rc);
	printf("ca_fp=%s\n", out.ca_fingerprint ? out.ca_fingerprint : "");
	printf("next_ca_fp=%s\n", out.next_ca_fingerprint ?
	       out.next_ca_fingerprint : "");
	printf("ca_not_after=%lld\n", (long long)out.ca_not_after);
	printf("pin=%s\n", jc.pin ? jc.pin : "");
	if (rc < 0)
		fprintf(stderr, "error: %s\n", sa_errmsg());
	job_ca_clear(&jc);
	job_out_clear(&out);
	scep_client_free(c);
	return rc < 0 ? 1 : 0;
}

/*
 * ops_ca.c - getcaps, getca and getnextca.
 */
#include "agent.h"

#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "sa_err.h"
#include "sa_log.h"

int op_getcaps(const struct agent_opts *o, int *result)
{
	scep_client *c = NULL;
	unsigned caps = 0;
	char buf[512], *p, *save = NULL;
	int rc;

	*result = SA_EXIT_OK;
	rc = agent_client_new(o, &c);
	if (rc < 0)
		goto out;
	sa_verbose("requesting capabilities");
	rc = scep_get_caps(c, &caps);
	if (rc < 0)
		goto out;
	scep_caps_str(caps, buf, sizeof(buf));
	for (p = strtok_r(buf, " ", &save); p != NULL;
	     p = strtok_r(NULL, " ", &save))
		printf("%s\n", p);
	if (caps == 0)
		sa_info("the server announced no capabilities");
	fflush(stdout);
out:
	scep_client_free(c);
	return rc;
}

/*
 * Write certs as sscep does: one certificate to path, a chain to path-0,
 * path-1, ... in reply order, printing each.
 */
static int write_chain(const struct agent_opts *o, STACK_OF(X509) *certs,
		       const char *path)
{
	char *name = NULL;
	int i, n = sk_X509_num(certs), rc = 0;

	for (i = 0; i < n; i++) {
		X509 *x = sk_X509_value(certs, i);

		agent_print_cert(o, x);
		free(name);
		if (n == 1)
			name = strdup(path);
		else if (asprintf(&name, "%s-%d", path, i) < 0)
			name = NULL;
		if (name == NULL) {
			rc = sa_fail(SA_ENOMEM, "out of memory");
			break;
		}
		rc = files_write_cert(name, x);
		if (rc < 0)
			break;
		agent_out("certificate written as %s", name);
	}
	free(name);
	return rc;
}

int op_getca(const struct agent_opts *o, int *result)
{
	scep_client *c = NULL;
	struct scep_ca ca = { 0 };
	const char *path = o->s.ca_cert_file;
	int rc;

	*result = SA_EXIT_OK;
	if (path == NULL) {
		rc = sa_fail_noossl(SA_EUSAGE, "getca needs a file to write: -c "
				    "FILE or CACertFile");
		goto out;
	}
	rc = agent_client_new(o, &c);
	if (rc < 0)
		goto out;
	sa_info("requesting CA certificate");
	rc = scep_get_ca(c, &ca);
	if (rc < 0)
		goto out;
	sa_info("valid response from server");
	if (o->fp_pin != NULL) {
		rc = scep_ca_check_pin(&ca, o->fp_pin);
		if (rc < 0)
			goto out;
		sa_info("the CA certificate matches the pinned fingerprint");
	}
	rc = write_chain(o, ca.certs, path);
out:
	scep_ca_clear(&ca);
	scep_client_free(c);
	return rc;
}

int op_getnextca(const struct agent_opts *o, int *result)
{
	scep_client *c = NULL;
	struct scep_ca cur = { 0 }, next = { 0 };
	char *path = NULL;
	int rc;

	*result = SA_EXIT_OK;
	rc = agent_ca_load(o, &cur);
	if (rc < 0)
		goto out;
	if (o->s.out_file != NULL)
		path = strdup(o->s.out_file);
	else if (asprintf(&path, "%s.next", o->s.ca_cert_file) < 0)
		path = NULL;
	if (path == NULL) {
		rc = sa_fail(SA_ENOMEM, "out of memory");
		goto out;
	}
	rc = agent_client_new(o, &c);
	if (rc < 0)
		goto out;
	if (!(scep_client_caps(c) & SCEP_CAP_GETNEXTCA))
		sa_warn("the server does not announce GetNextCACert; trying "
			"anyway");
	sa_info("requesting the next CA certificate");
	rc = scep_get_next_ca(c, &cur, &next);
	if (rc < 0)
		goto out;
	sa_info("valid response from server, signed by the current CA");
	rc = write_chain(o, next.certs, path);
out:
	free(path);
	scep_ca_clear(&next);
	scep_ca_clear(&cur);
	scep_client_free(c);
	return rc;
}

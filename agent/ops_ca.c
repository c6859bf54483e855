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
 * path-1, ... in reply order, printing each. The files are written as a
 * set (files_write_ca: all or none replaced), then what an earlier run
 * wrote and this one did not goes (path-N past the chain, path-0... after
 * a single certificate, path after a chain), so that a certificate the
 * CA no longer sends is not loaded, and trusted, by later runs.
 */
static int write_chain(const struct agent_opts *o, STACK_OF(X509) *certs,
		       const char *path)
{
	int i, n = sk_X509_num(certs), rc;

	for (i = 0; i < n; i++)
		agent_print_cert(o, sk_X509_value(certs, i));
	rc = files_write_ca(path, certs);
	for (i = 0; rc == 0 && i < n; i++) {
		char *name = files_ca_name(path, i, n);

		agent_out("certificate written as %s", name ? name : path);
		free(name);
	}
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
	/* only what chains to the anchor (pinned, or the RA's CA) is written */
	rc = scep_ca_trust(&ca, o->fp_pin, NULL);
	if (rc < 0)
		goto out;
	if (o->fp_pin != NULL)
		sa_info("the CA certificate matches the pinned fingerprint");
	rc = write_chain(o, ca.certs, path);
out:
	scep_ca_clear(&ca);
	scep_client_free(c);
	return rc;
}

/*
 * The CA certificates that verify a GetNextCACert reply, given as sscep
 * 0.10 does: -C FILE, a PEM chain (or FILE-0, FILE-1 ...), checked against
 * a pinned fingerprint (-F) if one is given.
 */
static int chain_load(const struct agent_opts *o, struct scep_ca *ca)
{
	int rc;

	memset(ca, 0, sizeof(*ca));
	rc = files_load_ca(o->s.ca_chain_file, &ca->certs);
	if (rc < 0)
		goto out;
	rc = scep_ca_trust(ca, o->fp_pin, NULL);
out:
	if (rc < 0)
		scep_ca_clear(ca);
	return rc;
}

/*
 * getnextca in two forms. sscep's: -C CHAIN verifies the reply, -c FILE
 * receives the next CA certificate(s), -w FILE (optional) the certificate
 * that signed the reply. scep-agent's (no -C): -c is the current CA
 * certificate, -w FILE receives the next one (default: the -c file
 * followed by ".next").
 */
int op_getnextca(const struct agent_opts *o, int *result)
{
	const struct conf_settings *s = &o->s;
	scep_client *c = NULL;
	struct scep_ca cur = { 0 }, next = { 0 };
	X509 *signer = NULL;
	const char *signer_path = NULL;
	char *path = NULL;
	unsigned caps = 0;
	int rc;

	*result = SA_EXIT_OK;
	if (s->ca_chain_file != NULL) {
		if (s->ca_cert_file == NULL) {
			rc = sa_fail_noossl(SA_EUSAGE, "getnextca -C CHAIN needs -c "
					    "FILE: the file to write the next CA "
					    "certificate to");
			goto out;
		}
		rc = chain_load(o, &cur);
		if (rc < 0)
			goto out;
		path = strdup(s->ca_cert_file);
		signer_path = s->out_file;
	} else {
		rc = agent_ca_load(o, &cur);
		if (rc < 0)
			goto out;
		if (s->out_file != NULL)
			path = strdup(s->out_file);
		else if (asprintf(&path, "%s.next", s->ca_cert_file) < 0)
			path = NULL;
	}
	if (path == NULL) {
		rc = sa_fail(SA_ENOMEM, "out of memory");
		goto out;
	}
	rc = agent_client_new(o, &c);
	if (rc < 0)
		goto out;
	rc = scep_client_get_caps(c, &caps);
	if (rc < 0)
		goto out;
	if (!(caps & SCEP_CAP_GETNEXTCA))
		sa_warn("the server does not announce GetNextCACert; trying "
			"anyway");
	sa_info("requesting the next CA certificate");
	rc = scep_get_next_ca(c, &cur, &next, signer_path ? &signer : NULL);
	if (rc < 0)
		goto out;
	sa_info("valid response from server, signed by the current CA");
	rc = write_chain(o, next.certs, path);
	if (rc < 0 || signer_path == NULL)
		goto out;
	rc = files_write_cert(signer_path, signer);
	if (rc < 0)
		goto out;
	agent_out("signer certificate written as %s", signer_path);
out:
	X509_free(signer);
	free(path);
	scep_ca_clear(&next);
	scep_ca_clear(&cur);
	scep_client_free(c);
	return rc;
}

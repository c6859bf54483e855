/*
 * st_ca.c - the CA for a provision run: -c FILE when it exists; else,
 * with a pinned fingerprint (-F), fetched once in the parent (GetCACert,
 * checked against the pin) and written to -c FILE, or to a private
 * temporary directory when no -c is given, before the workers start: one
 * GetCACert per run, not one per token.
 */
#include "station.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"
#include "sa_err.h"
#include "sa_log.h"

/* See station.h. */
int station_ca_prepare(struct station_opts *so, char **tmpdir)
{
	struct conf_settings *s = &so->o.s;
	scep_client *c = NULL;
	struct scep_ca ca = { 0 };
	char *path = NULL, *dir = NULL;
	int rc;

	*tmpdir = NULL;
	if (s->ca_cert_file != NULL &&
	    (files_exist(s->ca_cert_file) || so->list_only))
		return 0;
	if (s->ca_cert_file != NULL) {
		char *p0 = NULL;

		/* a chain getca wrote as FILE-0, FILE-1 ... */
		if (asprintf(&p0, "%s-0", s->ca_cert_file) < 0)
			return sa_fail_noossl(SA_ENOMEM, "out of memory");
		rc = files_exist(p0);
		free(p0);
		if (rc)
			return 0;
	}
	if (so->o.fp_pin == NULL)
		return sa_fail_noossl(SA_EUSAGE, "provision needs the CA: -c FILE "
				      "(written by getca), or -F FINGERPRINT to "
				      "fetch it and pin it%s", s->ca_cert_file ?
				      " (-c names no file yet)" : "");
	if (s->ca_cert_file == NULL) {
		const char *t = getenv("TMPDIR");

		if (asprintf(&dir, "%s/scep-agent-ca.XXXXXX", t && *t ? t :
			     "/tmp") < 0)
			dir = NULL;
		if (dir == NULL || mkdtemp(dir) == NULL ||
		    asprintf(&path, "%s/ca.crt", dir) < 0) {
			rc = sa_fail_noossl(SA_EIO, "cannot make a temporary "
					    "directory for the CA certificate");
			if (dir != NULL && path == NULL)
				rmdir(dir);
			free(dir);
			dir = NULL;
			goto out;
		}
	} else {
		path = strdup(s->ca_cert_file);
		if (path == NULL) {
			rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
			goto out;
		}
	}
	rc = agent_client_new(&so->o, &c);
	if (rc < 0)
		goto out;
	rc = scep_get_ca(c, &ca);
	if (rc < 0)
		goto out;
	rc = scep_ca_trust(&ca, so->o.fp_pin, NULL);
	if (rc < 0)
		goto out;
	rc = files_write_ca(path, ca.certs);
	if (rc < 0)
		goto out;
	sa_info("the CA certificate matches the pinned fingerprint; written "
		"as %s", path);
	free(s->ca_cert_file);
	s->ca_cert_file = path;
	path = NULL;
	*tmpdir = dir;
	dir = NULL;
out:
	scep_ca_clear(&ca);
	scep_client_free(c);
	free(path);
	if (dir != NULL) {
		station_ca_cleanup(dir);
		free(dir);
	}
	return rc;
}

/* See station.h. */
void station_ca_cleanup(const char *tmpdir)
{
	char *p = NULL;
	int i;

	if (tmpdir == NULL)
		return;
	/* ca.crt, or ca.crt-0, ca.crt-1 ... for a chain */
	if (asprintf(&p, "%s/ca.crt", tmpdir) >= 0) {
		unlink(p);
		free(p);
	}
	for (i = 0; i < 16; i++) {
		if (asprintf(&p, "%s/ca.crt-%d", tmpdir, i) < 0)
			break;
		unlink(p);
		free(p);
	}
	rmdir(tmpdir);
}

/*
 * status.c - status [--json] [--warn DURATION]: what each profile's state
 * file and certificate say, without a token, a lock or the network; and
 * the Prometheus textfile (MetricsFile).
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "csr.h"
#include "sa_err.h"
#include "sa_esc.h"
#include "sa_log.h"
#include "store.h"

struct row {
	const char *state;   /* ok, renewing, pending, failed */
	char *subject;
	char *serial;
	time_t not_after;
	char *key_uri;
	time_t next_check;
	time_t last_success;
	const char *last_error; /* borrowed (state or static) */
	const char *ca_fp;      /* the anchor's sha256 (state), or NULL */
	const char *next_ca_fp; /* a kept rollover CA's (state), or NULL */
	int bad;             /* failed, no certificate or expiring */
	int expiring;
};

static void row_clear(struct row *r)
{
	free(r->subject);
	free(r->serial);
	free(r->key_uri);
	memset(r, 0, sizeof(*r));
}

/* The row of p from st and the certificate in StoreDir (read only). */
static void row_fill(const struct profile *p, const struct state *st,
		     long warn_s, time_t now, struct row *r)
{
	X509 *cert = NULL;
	struct due_cert c;
	int have;

	memset(r, 0, sizeof(*r));
	memset(&c, 0, sizeof(c));
	if (store_latest(p->store_dir, &cert) != 0 ||
	    due_cert_read(p, cert, &c) != 0) {
		r->last_error = "cannot read StoreDir/latest.crt";
		sa_err_clear();
	}
	have = c.present;
	if (have) {
		r->serial = c.serial;
		c.serial = NULL;
		r->subject = csr_name_oneline(X509_get_subject_name(cert));
		r->not_after = c.not_after;
	} else {
		r->serial = st->serial ? strdup(st->serial) : NULL;
		r->subject = st->subject ? strdup(st->subject) : NULL;
		r->not_after = st->not_after;
	}
	r->key_uri = dtext_uri_nopin(st->key_uri ? st->key_uri :
				     p->o.s.new_key);
	r->next_check = st->next_check;
	r->last_success = st->last_success;
	if (r->last_error == NULL)
		r->last_error = st->last_error;
	r->ca_fp = st->ca_fingerprint;
	r->next_ca_fp = st->next_ca_fingerprint;
	switch (st->phase) {
	case STATE_FAILED: r->state = "failed"; break;
	case STATE_ENROLLING:
	case STATE_RENEWING:
		r->state = st->pending ? "pending" : "renewing";
		break;
	default: r->state = "ok"; break;
	}
	if (!have && strcmp(r->state, "ok") == 0) {
		r->state = "failed";
		if (r->last_error == NULL)
			r->last_error = st->phase == STATE_NONE ?
				"no certificate yet: run scep-agent check" :
				"no certificate in StoreDir (latest.crt)";
	}
	r->expiring = have && r->not_after - now < warn_s;
	r->bad = strcmp(r->state, "failed") == 0 || !have || r->expiring;
	X509_free(cert);
	due_cert_clear(&c);
}

static int json_time(char **b, size_t *l, size_t *cap, time_t t)
{
	char buf[32];

	return dtext_json_str(b, l, cap, t ? dtext_rfc3339(t, buf, sizeof(buf)) :
			      NULL);
}

static int json_row(char **b, size_t *l, size_t *cap, const char *name,
		    const struct row *r, int first)
{
	int rc = dtext_append(b, l, cap, "%s\n  {\"profile\": ", first ? "" : ",");

	if (rc == 0)
		rc = dtext_json_str(b, l, cap, name);
	if (rc == 0)
		rc = dtext_append(b, l, cap, ", \"state\": \"%s\", \"subject\": ",
				  r->state);
	if (rc == 0)
		rc = dtext_json_str(b, l, cap, r->subject);
	if (rc == 0)
		rc = dtext_append(b, l, cap, ", \"serial\": ");
	if (rc == 0)
		rc = dtext_json_str(b, l, cap, r->serial);
	if (rc == 0)
		rc = dtext_append(b, l, cap, ", \"not_after\": ");
	if (rc == 0)
		rc = json_time(b, l, cap, r->not_after);
	if (rc == 0)
		rc = dtext_append(b, l, cap, ", \"key_uri\": ");
	if (rc == 0)
		rc = dtext_json_str(b, l, cap, r->key_uri);
	if (rc == 0)
		rc = dtext_append(b, l, cap, ", \"next_check\": ");
	if (rc == 0)
		rc = json_time(b, l, cap, r->next_check);
	if (rc == 0)
		rc = dtext_append(b, l, cap, ", \"last_success\": ");
	if (rc == 0)
		rc = json_time(b, l, cap, r->last_success);
	if (rc == 0)
		rc = dtext_append(b, l, cap, ", \"last_error\": ");
	if (rc == 0)
		rc = dtext_json_str(b, l, cap, r->last_error);
	/* members beyond the fixed ones: the CA's fingerprints */
	if (rc == 0)
		rc = dtext_append(b, l, cap, ", \"ca_fingerprint\": ");
	if (rc == 0)
		rc = dtext_json_str(b, l, cap, r->ca_fp);
	if (rc == 0)
		rc = dtext_append(b, l, cap, ", \"next_ca_fingerprint\": ");
	if (rc == 0)
		rc = dtext_json_str(b, l, cap, r->next_ca_fp);
	if (rc == 0)
		rc = dtext_append(b, l, cap, "}");
	return rc;
}

static void text_row(const char *name, const struct row *r)
{
	char na[32], nc[32], ls[32], e1[300], e2[600], e3[600], f1[200], f2[200];

	printf("%s: %s, serial %s, subject %s, not after %s%s, next check %s, "
	       "last success %s%s%s%s%s%s%s\n",
	       sa_esc_str(name, e1, sizeof(e1)), r->state,
	       r->serial ? r->serial : "-",
	       r->subject ? sa_esc_str(r->subject, e2, sizeof(e2)) : "-",
	       r->not_after ? dtext_rfc3339(r->not_after, na, sizeof(na)) : "-",
	       r->expiring ? (r->not_after <= time(NULL) ? " (EXPIRED)" :
			      " (expires soon)") : "",
	       r->next_check ? dtext_rfc3339(r->next_check, nc, sizeof(nc)) : "-",
	       r->last_success ? dtext_rfc3339(r->last_success, ls, sizeof(ls)) :
	       "never",
	       r->ca_fp ? ", CA sha256 " : "",
	       r->ca_fp ? sa_esc_str(r->ca_fp, f1, sizeof(f1)) : "",
	       r->next_ca_fp ? ", next CA sha256 " : "",
	       r->next_ca_fp ? sa_esc_str(r->next_ca_fp, f2, sizeof(f2)) : "",
	       r->last_error ? ", last error: " : "",
	       r->last_error ? sa_esc_str(r->last_error, e3, sizeof(e3)) : "");
}

int status_main(const struct daemon_opts *d)
{
	struct profile **list = NULL;
	char *js = NULL;
	size_t jl = 0, jcap = 0;
	int n = 0, bad = 0, i, rc, worst = SA_EXIT_OK;
	time_t now = time(NULL);

	rc = profile_load_all(d->args, d->nargs, &list, &n, &bad);
	if (rc != 0) {
		sa_err("%s", *sa_errmsg() ? sa_errmsg() : sa_strerror(rc));
		sa_err_clear();
		return rc == SA_EUSAGE ? SA_EXIT_USAGE : SA_EXIT_ERROR;
	}
	if (bad > 0)
		worst = SA_EXIT_ERROR;
	if (d->json)
		rc = dtext_append(&js, &jl, &jcap, "[");
	for (i = 0; rc == 0 && i < n; i++) {
		struct state st;
		struct row r;

		if (state_load(list[i]->state_dir, list[i]->name, &st) != 0) {
			sa_err("profile %s: %s", list[i]->name, sa_errmsg());
			sa_err_clear();
			state_clear(&st);
			memset(&st, 0, sizeof(st));
			st.phase = STATE_FAILED;
			state_set(&st.last_error, "cannot read the state file");
		}
		row_fill(list[i], &st, d->warn_s, now, &r);
		if (r.bad)
			worst = SA_EXIT_ERROR;
		if (d->json)
			rc = json_row(&js, &jl, &jcap, list[i]->name, &r, i == 0);
		else
			text_row(list[i]->name, &r);
		row_clear(&r);
		state_clear(&st);
	}
	if (d->json && rc == 0)
		rc = dtext_append(&js, &jl, &jcap, "%s]\n", n > 0 ? "\n" : "");
	if (d->json && rc == 0)
		fputs(js, stdout);
	if (rc != 0) {
		sa_err("%s", sa_errmsg());
		sa_err_clear();
		worst = SA_EXIT_ERROR;
	}
	if (fflush(stdout) != 0) {
		sa_err("cannot write the status: %s", strerror(errno));
		worst = SA_EXIT_ERROR;
	}
	free(js);
	profile_list_free(list, n);
	return worst;
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static int prom_label(char **b, size_t *l, size_t *cap, const char *s)
{
	int rc = 0;

	for (; rc == 0 && *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			rc = dtext_append(b, l, cap, "\\%c", *s);
		else if (*s == '\n')
			rc = dtext_append(b, l, cap, "\\n");
		else
			rc = dtext_append(b, l, cap, "%c", *s);
	}
	return rc;
}

int status_metrics(const char *path, struct profile **list, int n)
{
	static const char *const help[2] = {
		"# HELP scep_agent_cert_not_after_seconds The current "
		"certificate's notAfter, Unix time.\n"
		"# TYPE scep_agent_cert_not_after_seconds gauge\n",
		"# HELP scep_agent_last_success_seconds The last successful "
		"enrollment or renewal, Unix time (0: never).\n"
		"# TYPE scep_agent_last_success_seconds gauge\n",
	};
	static const char *const metric[2] = {
		"scep_agent_cert_not_after_seconds",
		"scep_agent_last_success_seconds",
	};
	char *b = NULL;
	size_t l = 0, cap = 0;
	int rc = 0, k, i;

	for (k = 0; rc == 0 && k < 2; k++) {
		rc = dtext_append(&b, &l, &cap, "%s", help[k]);
		for (i = 0; rc == 0 && i < n; i++) {
			struct state st;

			if (list[i]->metrics_file == NULL ||
			    strcmp(list[i]->metrics_file, path) != 0)
				continue;
			if (state_load(list[i]->state_dir, list[i]->name, &st) != 0) {
				sa_err_clear();
				state_clear(&st);
				continue;
			}
			rc = dtext_append(&b, &l, &cap, "%s{profile=\"", metric[k]);
			if (rc == 0)
				rc = prom_label(&b, &l, &cap, list[i]->name);
			if (rc == 0)
				rc = dtext_append(&b, &l, &cap, "\"} %lld\n",
						  (long long)(k == 0 ? st.not_after :
							      st.last_success));
			state_clear(&st);
		}
	}
	if (rc != 0)
		goto out;
	rc = state_write_atomic(path, b, l, 0644);
out:
	free(b);
	return rc;
}

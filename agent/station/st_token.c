/*
 * st_token.c - one token's provisioning, in a worker: initialise a blank
 * one (--init), render the templates, skip a token that already holds a
 * certificate for the subject, resume a pending one (--resume), then the
 * enrollment engine with a key generated in the token (or the key under
 * --key-label with --use-key), its certificate stored in the token.
 */
#include "st_worker.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "csr.h"
#include "engine.h"
#include "sa_err.h"
#include "sa_log.h"
#include "secret.h"
#include "store.h"

/* The variable a CSV challenge reaches the engine through (in the worker
 * only; wiped and unset after the token). */
#define CHALLENGE_VAR "SCEP_AGENT_STATION_CHALLENGE"

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* s percent-encoded for a pkcs11: URI attribute value (caller frees) */
static char *pct(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *o = malloc(strlen(s) * 3 + 1), *p = o;

	if (o == NULL)
		return NULL;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_') {
			*p++ = (char)c;
		} else {
			*p++ = '%';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		}
	}
	*p = '\0';
	return o;
}

/* "pkcs11:token=L;serial=S[;object=K]" (caller frees) */
static char *token_uri(const char *label, const char *serial, const char *key)
{
	char *l = pct(label), *s = pct(serial), *k = key ? pct(key) : NULL;
	char *u = NULL;

	if (l != NULL && s != NULL && (key == NULL || k != NULL) &&
	    asprintf(&u, "pkcs11:token=%s;serial=%s%s%s", l, s,
		     k ? ";object=" : "", k ? k : "") < 0)
		u = NULL;
	free(l);
	free(s);
	free(k);
	return u;
}

static char *rfc3339(const ASN1_TIME *t)
{
	struct tm tm;
	char buf[32];

	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return NULL;
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return strdup(buf);
}

/* the certificate's fields into r */
static void describe(X509 *cert, struct station_result *r)
{
	r->serial = store_serial_hex(cert);
	r->not_after = rfc3339(X509_get0_notAfter(cert));
}

/* an entry's value as UTF-8 (caller OPENSSL_free()s), or NULL */
static unsigned char *entry_utf8(const X509_NAME_ENTRY *e)
{
	unsigned char *u = NULL;

	if (ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(e)) < 0)
		return NULL;
	return u;
}

/*
 * Do a and b hold the same attribute values, whatever their order? (The
 * test CA, like others, reorders RDNs.)
 */
static int same_name(const X509_NAME *a, const X509_NAME *b)
{
	int na = X509_NAME_entry_count(a), nb = X509_NAME_entry_count(b);
	char used[256];
	int i, j, ok = 1;

	if (na != nb || na > (int)sizeof(used))
		return 0;
	memset(used, 0, sizeof(used));
	for (i = 0; ok && i < na; i++) {
		const X509_NAME_ENTRY *ea = X509_NAME_get_entry(a, i);
		unsigned char *va = entry_utf8(ea);

		ok = 0;
		for (j = 0; va != NULL && j < nb; j++) {
			const X509_NAME_ENTRY *eb = X509_NAME_get_entry(b, j);
			unsigned char *vb;

			if (used[j] ||
			    OBJ_cmp(X509_NAME_ENTRY_get_object(ea),
				    X509_NAME_ENTRY_get_object(eb)) != 0)
				continue;
			vb = entry_utf8(eb);
			if (vb != NULL && strcmp((char *)va, (char *)vb) == 0) {
				used[j] = 1;
				ok = 1;
			}
			OPENSSL_free(vb);
			if (ok)
				break;
		}
		OPENSSL_free(va);
	}
	return ok;
}

/*
 * The token's certificate for subject, if it holds one (get1 in *found),
 * and whether an earlier run left a staged key for label (*staged).
 */
static int look(struct station_worker *w, const char *uri, const char *subject,
		const struct p11_open_opts *p11, X509 **found, int *staged)
{
	const char *label = w->so->key_label;
	p11_token *t = NULL;
	p11_keyobj *k = NULL;
	X509_NAME *want = NULL;
	X509 **certs = NULL;
	size_t n = 0, i;
	int rc, certified = 0, used = 0;

	*found = NULL;
	*staged = 0;
	rc = p11_token_open(uri, p11, &t);
	if (rc == SA_ENOTFOUND) {
		/* made by another process since the module was loaded? */
		sa_err_clear();
		rc = station_worker_reload(w);
		if (rc == 0)
			rc = p11_token_open(uri, p11, &t);
	}
	if (rc < 0)
		goto out;
	rc = csr_subject_parse(subject, &want);
	if (rc < 0)
		goto out;
	rc = p11_staged_get1(t, label, &k, &certified, &used);
	if (rc < 0)
		goto out;
	*staged = rc == 1;
	rc = p11_token_certs(t, &certs, &n);
	if (rc < 0)
		goto out;
	for (i = 0; i < n; i++) {
		if (*found == NULL &&
		    same_name(X509_get_subject_name(certs[i]), want))
			*found = certs[i];
		else
			X509_free(certs[i]);
	}
	rc = 0;
out:
	free(certs);
	X509_NAME_free(want);
	p11_keyobj_free(k);
	p11_token_close(t);
	return rc;
}

/* --init: the blank token in t's slot made ready; its serial into *serial */
static int init_blank(struct station_worker *w, const struct station_opts *so,
		      const struct station_task *t, const char *pin,
		      char **serial)
{
	struct p11_init_opts io;
	char slot[64], *uri = NULL;
	int rc;

	*serial = NULL;
	snprintf(slot, sizeof(slot), "pkcs11:slot-id=%lu", t->slot_id);
	memset(&io, 0, sizeof(io));
	io.module = so->module;
	io.uri = slot;
	io.label = t->label;
	io.so_pin.pin_file = so->o.s.so_pin_file;
	io.so_pin.pin_env = so->o.s.so_pin_env;
	io.so_pin.no_prompt = 1;
	io.so_pin.missing_hint = "use --so-pin-file FILE or --so-pin-env VAR";
	io.user_pin = so->o.p11.pin;
	io.user_pin.no_prompt = 1;
	if (pin != NULL) {
		io.user_pin.pin_file = NULL;
		io.user_pin.pin_env = NULL;
		io.user_pin.pin_value = pin;
	}
	rc = p11_hold_rescan(w->hold);
	if (rc < 0)
		return rc;
	rc = p11_token_init(&io, &uri);
	if (rc < 0)
		return rc;
	*serial = p11_uri_attr(uri, "serial", NULL);
	free(uri);
	if (*serial == NULL)
		return sa_fail_noossl(SA_EKEY, "the token initialised in slot %lu "
				      "has no serial number", t->slot_id);
	sa_info("initialised as token '%s' (serial %s)", t->label, *serial);
	return 0;
}

/* the engine's outcome into r */
static void take_outcome(struct engine_outcome *eo, int rc,
			 struct station_result *r)
{
	char buf[SA_ERRMSG_MAX + 200];

	if (eo->key_uri != NULL) {
		free(r->key_uri);
		r->key_uri = p11_uri_display(eo->key_uri);
	}
	switch (rc < 0 ? ENGINE_ERROR : eo->status) {
	case ENGINE_SUCCESS:
		r->state = ST_OK;
		if (eo->cert != NULL)
			describe(eo->cert, r);
		return;
	case ENGINE_PENDING:
		r->state = ST_PENDING;
		r->error = strdup("the CA has not decided (PENDING); run "
				  "provision --resume later");
		return;
	case ENGINE_FAILURE:
		r->state = ST_FAILED;
		snprintf(buf, sizeof(buf), "the CA refused the request "
			 "(FAILURE, failInfo %d%s%s)", eo->fail_info,
			 eo->fail_info_text ? ": " : "",
			 eo->fail_info_text ? eo->fail_info_text : "");
		r->error = strdup(buf);
		return;
	case ENGINE_ERROR:
		break;
	}
	r->state = ST_FAILED;
	r->error = strdup(eo->err.msg[0] ? eo->err.msg :
			  "the enrollment failed without saying why");
}

/* messages about this token say which ("token SERIAL: ...") */
static void set_prefix(const char *serial)
{
	char what[96];

	snprintf(what, sizeof(what), "token %s", serial);
	sa_log_set_prefix(what);
}

/* See station.h. */
int station_token_run(struct station_worker *w, const struct station_opts *so,
		      const struct station_task *t, struct station_result *r)
{
	struct agent_opts o = so->o; /* a shallow copy: strings borrowed */
	struct station_vars v;
	struct engine_req req;
	struct engine_outcome eo;
	char *subject = NULL, **san = NULL, *serial = NULL, *uri = NULL;
	const char *pin = NULL, *challenge = NULL;
	X509 *have = NULL;
	double t0 = mono();
	size_t i;
	int rc, staged = 0;

	memset(&eo, 0, sizeof(eo));
	memset(r, 0, sizeof(*r));
	r->state = ST_FAILED;
	r->n = t->n;
	r->slot_id = t->slot_id;
	r->token_label = strdup(t->label ? t->label : "");
	serial = strdup(t->serial ? t->serial : "");
	if (r->token_label == NULL || serial == NULL) {
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	if (t->blank) {
		char what[64];

		snprintf(what, sizeof(what), "slot %lu", t->slot_id);
		sa_log_set_prefix(what);
		/* a blank token's serial (and CSV row) is known once it is
		 * made; its PIN comes from the usual source */
		free(serial);
		serial = NULL;
		rc = init_blank(w, so, t, NULL, &serial);
		if (rc < 0)
			goto out;
	}
	set_prefix(serial);
	r->token_serial = strdup(serial);
	memset(&v, 0, sizeof(v));
	v.serial = serial;
	v.label = t->label;
	v.n = t->n;
	v.csv = w->csv;
	v.row = station_csv_row(w->csv, serial);
	if (w->csv != NULL) {
		pin = station_csv_get(w->csv, v.row, "pin");
		challenge = station_csv_get(w->csv, v.row, "challenge");
		if (pin != NULL && *pin == '\0')
			pin = NULL;
		if (challenge != NULL && *challenge == '\0')
			challenge = NULL;
	}
	rc = station_render(so->subject_tmpl, &v, &subject);
	if (rc < 0)
		goto out;
	if (so->n_san > 0) {
		san = calloc(so->n_san, sizeof(*san));
		if (san == NULL) {
			rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
			goto out;
		}
		for (i = 0; i < so->n_san; i++)
			if ((rc = station_render(so->san_tmpl[i], &v, &san[i])) < 0)
				goto out;
	}
	uri = token_uri(t->label, serial, so->key_label);
	if (uri == NULL) {
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	r->key_uri = p11_uri_display(uri);
	/* the token's PIN: its CSV row, else the usual source */
	o.p11.pin.no_prompt = 1;
	if (pin != NULL) {
		o.p11.pin.pin_file = NULL;
		o.p11.pin.pin_env = NULL;
		o.p11.pin.pin_value = pin;
	}
	if (!so->use_key) {
		rc = look(w, uri, subject, &o.p11, &have, &staged);
		if (rc < 0)
			goto out;
		if (have != NULL && !so->reenroll && !(so->resume && staged)) {
			describe(have, r);
			r->state = ST_SKIPPED;
			r->error = NULL;
			sa_info("it already holds a certificate for %s: "
				"skipped (--reenroll enrolls it again)", subject);
			rc = 0;
			goto out;
		}
	}
	if (challenge != NULL) {
		if (setenv(CHALLENGE_VAR, challenge, 1) != 0) {
			rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
			goto out;
		}
		o.s.challenge_file = NULL;
		o.s.challenge_env = (char *)CHALLENGE_VAR;
	}
	o.s.subject = subject;
	o.s.san = san;
	o.s.n_san = so->n_san;
	o.s.local_cert_file = NULL;
	o.s.cert_req_file = NULL;
	o.s.sign_key = NULL;
	o.s.sign_cert_file = NULL;
	o.s.overwrite = have != NULL && so->reenroll ? 1 : 0;
	o.s.resume = so->resume && staged ? 1 : 0;
	if (so->use_key) {
		o.s.private_key = uri;
		o.s.new_key = NULL;
	} else {
		o.s.private_key = NULL;
		o.s.new_key = uri;
	}
	sa_info("%s %s", o.s.resume ? "resuming the enrollment of" :
		"enrolling", subject);
	memset(&req, 0, sizeof(req));
	req.o = &o;
	req.client = w->client;
	rc = engine_enroll(&req, &eo);
	take_outcome(&eo, rc, r);
	rc = 0;
out:
	if (rc < 0) {
		r->state = ST_FAILED;
		free(r->error);
		r->error = strdup(sa_errmsg()[0] ? sa_errmsg() : sa_strerror(rc));
		sa_err_clear();
	}
	if (r->token_serial == NULL)
		r->token_serial = serial ? strdup(serial) : strdup("");
	if (challenge != NULL) {
		char *e = getenv(CHALLENGE_VAR);

		if (e != NULL)
			OPENSSL_cleanse(e, strlen(e));
		unsetenv(CHALLENGE_VAR);
	}
	secret_forget(); /* the challenge read for this token */
	sa_log_set_prefix(NULL);
	engine_outcome_clear(&eo);
	X509_free(have);
	for (i = 0; san != NULL && i < so->n_san; i++)
		free(san[i]);
	free(san);
	free(subject);
	free(serial);
	free(uri);
	r->seconds = mono() - t0;
	return 0;
}

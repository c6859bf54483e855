/*
 * job_ca.c - the CA step of a daemon job: GetCACert checked against the
 * anchor, StoreDir/ca.crt, and the rollover CA (GetNextCACert).
 *
 * The anchor, in this order of the pins: the profile's FingerPrint, the
 * state's ca_fingerprint (pinned by TrustOnFirstUse, or a rollover CA that
 * became the anchor), the state's next_ca_fingerprint (a rollover CA kept
 * earlier: trusted alongside, so a CA that switches early still
 * verifies). The first pin the reply satisfies wins, unless the
 * certificate it names has expired and a later pin is satisfied too. With
 * none of them set and TrustOnFirstUse, the first reply's CA (the CA of
 * the RA certificates, or the only CA) is pinned and reported.
 *
 * The rollover CA becomes the anchor (out->ca_fingerprint) once the old
 * anchor's notAfter has passed (known from StoreDir/anchor.crt, kept while
 * a rollover CA is in play, or ca.crt); until then it is reported as kept
 * (out->next_ca_fingerprint). With FingerPrint set, the state's
 * ca_fingerprint is a pin only when it names a rollover CA that took over
 * (the CA of StoreDir/next-ca.crt): a fingerprint pinned before (TOFU)
 * does not outlive a FingerPrint given since.
 */
#include "job.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "files.h"
#include "sa_err.h"
#include "sa_esc.h"
#include "sa_log.h"
#include "store.h"

#define N_PINS 3

char *job_fp_hex(X509 *cert)
{
	char *fp = scep_fingerprint(cert, EVP_sha256()), *r, *w;

	if (fp == NULL)
		return NULL;
	for (r = w = fp; *r; r++)
		if (*r != ':')
			*w++ = (char)tolower((unsigned char)*r);
	*w = '\0';
	return fp;
}

static time_t asn1_time(const ASN1_TIME *t)
{
	struct tm tm;

	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return 0;
	return timegm(&tm);
}

static const char *rfc3339(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "?");
	return buf;
}

static int expired(X509 *x, time_t now)
{
	time_t na = asn1_time(X509_get0_notAfter(x));

	return na != 0 && na < now;
}

int job_ca_rollover_due(const struct profile *p, time_t nb, time_t na,
			time_t now)
{
	long long before = JOB_ROLLOVER_MIN, life = (long long)na - nb;

	if (p->renew_before >= 0 && p->renew_before > before)
		before = p->renew_before;
	else if (p->renew_before < 0 && p->renew_pct > 0 && life > 0 &&
		 life * (100 - p->renew_pct) / 100 > before)
		before = life * (100 - p->renew_pct) / 100;
	return (long long)now >= (long long)na - before;
}

/* a new scep_ca holding references to the certificates of src */
static int ca_copy(const struct scep_ca *src, struct scep_ca *dst)
{
	int i;

	memset(dst, 0, sizeof(*dst));
	dst->certs = sk_X509_new_null();
	if (dst->certs == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	for (i = 0; i < sk_X509_num(src->certs); i++) {
		X509 *x = sk_X509_value(src->certs, i);

		if (!X509_up_ref(x) || !sk_X509_push(dst->certs, x)) {
			scep_ca_clear(dst);
			return sa_fail_noossl(SA_ENOMEM, "out of memory");
		}
	}
	return 0;
}

/* The certificates of jc that chain to its anchor, as StoreDir/ca.crt. */
static int write_ca(const struct profile *p, const struct scep_ca *ca)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	int i, rc;

	if (chain == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	for (i = 0; i < sk_X509_num(ca->certs); i++) {
		X509 *x = sk_X509_value(ca->certs, i);

		if (x != ca->anchor && scep_ca_verify_issued(ca, x, NULL) < 0) {
			sa_err_clear(); /* above the anchor: not written */
			continue;
		}
		if (!sk_X509_push(chain, x)) {
			rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
			goto out;
		}
	}
	rc = store_put_ca(p->store_dir, chain);
out:
	sk_X509_free(chain); /* the certificates are ca's */
	return rc;
}

/* the anchor of a stored StoreDir/ca.crt with the pinned fingerprint, get1 */
static X509 *stored_cert(const struct profile *p, const char *file,
			 const char *pin)
{
	STACK_OF(X509) *certs = NULL;
	X509 *found = NULL;
	char *path = NULL;
	int i;

	if (pin == NULL || asprintf(&path, "%s/%s", p->store_dir, file) < 0)
		return NULL;
	if (files_exist(path) && files_read_certs(path, &certs) == 0)
		for (i = 0; i < sk_X509_num(certs) && found == NULL; i++)
			if (scep_fingerprint_check(sk_X509_value(certs, i), pin) == 0)
				found = sk_X509_value(certs, i);
	if (found != NULL && !X509_up_ref(found))
		found = NULL;
	sa_err_clear();
	sk_X509_pop_free(certs, X509_free);
	free(path);
	return found;
}

/*
 * With a rollover CA in play, the anchor's certificate is kept as
 * StoreDir/anchor.crt: once the CA sends only the new chain (ca.crt then
 * holds that), it still tells when the old anchor expires.
 */
static void keep_anchor(const struct profile *p, X509 *anchor)
{
	char *path = NULL;

	if (asprintf(&path, "%s/anchor.crt", p->store_dir) < 0)
		return;
	if (files_write_cert(path, anchor) < 0) {
		sa_warn("profile %s: %s", p->name, sa_errmsg());
		sa_err_clear();
	}
	free(path);
}

/*
 * Try the pins in order on got; *which the index of the pin used. The
 * message of the first pin's failure is the one kept.
 */
static int trust_pinned(const struct profile *p, const char *const pins[],
			const struct scep_ca *got, struct scep_ca *out, int *which)
{
	struct sa_error first = { 0 };
	struct scep_ca try = { 0 }, fallback = { 0 };
	time_t now = time(NULL);
	int i, rc = 0, fb = -1;

	memset(out, 0, sizeof(*out));
	*which = -1;
	for (i = 0; i < N_PINS; i++) {
		if (pins[i] == NULL)
			continue;
		rc = ca_copy(got, &try);
		if (rc < 0)
			goto out;
		rc = scep_ca_trust(&try, pins[i], NULL);
		if (rc == SA_ECAPIN) {
			if (first.code == 0)
				sa_error_take(&first, rc);
			sa_err_clear();
			scep_ca_clear(&try);
			continue;
		}
		if (rc < 0)
			goto out;
		if (expired(try.anchor, now) && fb < 0) {
			/* an expired anchor: a later pin (the rollover CA) wins */
			fallback = try;
			memset(&try, 0, sizeof(try));
			fb = i;
			continue;
		}
		*out = try;
		memset(&try, 0, sizeof(try));
		*which = i;
		rc = 0;
		goto out;
	}
	if (fb >= 0) {
		char when[32];

		sa_warn("profile %s: the CA certificate pinned as the anchor "
			"expired on %s and the CA offers no rollover certificate "
			"that is kept; using it all the same: renew the CA's "
			"pin (FingerPrint) when the CA is replaced", p->name,
			rfc3339(asn1_time(X509_get0_notAfter(fallback.anchor)),
				when, sizeof(when)));
		*out = fallback;
		memset(&fallback, 0, sizeof(fallback));
		*which = fb;
		rc = 0;
		goto out;
	}
	rc = sa_error_raise(&first);
out:
	scep_ca_clear(&try);
	scep_ca_clear(&fallback);
	return rc;
}

/*
 * The rollover: when the anchor nears its end and the CA offers
 * GetNextCACert, fetch the next CA, verified against the anchor (the
 * reply signed by a certificate chaining to it), keep it as
 * StoreDir/next-ca.crt. Failures are warnings: the current anchor still
 * holds.
 */
static void rollover(const struct profile *p, scep_client *c,
		     const struct job_ca *jc, struct job_out *out)
{
	struct scep_ca next = { 0 };
	X509 *nca = NULL;
	char *fp = NULL, *path = NULL, a[32], b[32], url[512];
	time_t nb = asn1_time(X509_get0_notBefore(jc->ca.anchor));
	time_t na = asn1_time(X509_get0_notAfter(jc->ca.anchor));
	unsigned caps = 0;

	if (out->next_ca_fingerprint != NULL ||
	    !job_ca_rollover_due(p, nb, na, time(NULL)))
		return;
	sa_url_shown(p->o.s.url, url, sizeof(url));
	if (scep_client_get_caps(c, &caps) < 0 ||
	    !(caps & SCEP_CAP_GETNEXTCA)) {
		sa_err_clear();
		sa_verbose("profile %s: the CA certificate ends on %s; the CA at "
			   "%s does not offer GetNextCACert", p->name,
			   rfc3339(na, a, sizeof(a)), url);
		return;
	}
	if (scep_get_next_ca(c, &jc->ca, &next, NULL) < 0) {
		sa_warn("profile %s: the CA certificate ends on %s; fetching the "
			"next one from %s failed: %s", p->name,
			rfc3339(na, a, sizeof(a)), url, sa_errmsg());
		sa_err_clear();
		goto out;
	}
	if (scep_ca_anchor(next.certs, NULL, &nca) < 0 || nca == NULL) {
		sa_warn("profile %s: GetNextCACert from %s gave no single CA "
			"certificate; not kept: %s", p->name, url, sa_errmsg());
		sa_err_clear();
		goto out;
	}
	fp = job_fp_hex(nca);
	if (fp == NULL || X509_cmp(nca, jc->ca.anchor) == 0) {
		sa_verbose("profile %s: GetNextCACert gave the current CA "
			   "certificate: no rollover yet", p->name);
		goto out;
	}
	if (asprintf(&path, "%s/next-ca.crt", p->store_dir) < 0) {
		path = NULL;
		goto out;
	}
	if (files_write_certs(path, next.certs) < 0) {
		sa_warn("profile %s: the rollover CA certificate (SHA-256 %s) "
			"could not be kept: %s", p->name, fp, sa_errmsg());
		sa_err_clear();
		goto out;
	}
	sa_info("profile %s: the CA certificate ends on %s; its rollover "
		"certificate (SHA-256 %s, valid from %s) came with GetNextCACert "
		"signed under the anchor, is kept as %s and trusted alongside "
		"the anchor; it becomes the anchor when the old one expires",
		p->name, rfc3339(na, a, sizeof(a)), fp,
		rfc3339(asn1_time(X509_get0_notBefore(nca)), b, sizeof(b)), path);
	out->next_ca_fingerprint = fp;
	fp = NULL;
out:
	free(fp);
	free(path);
	scep_ca_clear(&next);
}

int job_ca_refresh(const struct job_in *in, scep_client *c,
		   struct job_ca *jc, struct job_out *out)
{
	const struct profile *p = in->p;
	const struct state *st = in->st;
	struct scep_ca got = { 0 };
	const char *pins[N_PINS] = {
		p->o.fp_pin, st ? st->ca_fingerprint : NULL,
		st ? st->next_ca_fingerprint : NULL,
	};
	char url[512], when[32];
	X509 *old = NULL;
	int rc, which = -1, i;

	memset(jc, 0, sizeof(*jc));
	for (i = 1; i < N_PINS; i++)
		if (pins[i] != NULL && *pins[i] == '\0')
			pins[i] = NULL;
	if (pins[0] != NULL && pins[1] != NULL) {
		/*
		 * FingerPrint rules; the state's anchor counts besides it only
		 * when it is a rollover CA that took over (one that came with
		 * GetNextCACert, kept in next-ca.crt), not a pin of before
		 */
		X509 *rolled = stored_cert(p, "next-ca.crt", pins[1]);

		if (rolled == NULL)
			pins[1] = NULL;
		X509_free(rolled);
	}
	sa_url_shown(p->o.s.url, url, sizeof(url));
	rc = scep_get_ca(c, &got);
	if (rc < 0)
		goto out;
	if (pins[0] == NULL && pins[1] == NULL && pins[2] == NULL) {
		char name[256];

		if (!p->tofu) {
			rc = sa_fail_noossl(SA_EUSAGE, "profile %s has no CA "
					    "anchor: set FingerPrint to the CA "
					    "certificate's fingerprint (scep-agent "
					    "getca shows it), or TrustOnFirstUse = "
					    "yes", p->name);
			goto out;
		}
		rc = scep_ca_trust(&got, NULL, NULL);
		if (rc < 0)
			goto out;
		jc->ca = got;
		memset(&got, 0, sizeof(got));
		jc->pin = job_fp_hex(jc->ca.anchor);
		if (jc->pin == NULL) {
			rc = sa_fail(SA_ECRYPTO, "cannot compute the CA's fingerprint");
			goto out;
		}
		X509_NAME_oneline(X509_get_subject_name(jc->ca.anchor), name,
				  sizeof(name));
		sa_warn("profile %s: TrustOnFirstUse: pinned the CA certificate "
			"%s (SHA-256 %s) that %s sent first; from now on only "
			"this CA is trusted; compare the fingerprint with the "
			"CA's and put it in FingerPrint", p->name, name,
			jc->pin, url);
		out->ca_fingerprint = strdup(jc->pin);
	} else {
		rc = trust_pinned(p, pins, &got, &jc->ca, &which);
		if (rc < 0)
			goto out;
		jc->pin = job_fp_hex(jc->ca.anchor);
		if (jc->pin == NULL) {
			rc = sa_fail(SA_ECRYPTO, "cannot compute the CA's fingerprint");
			goto out;
		}
		if (which < 2) {
			/* the anchor as pinned */
			out->ca_fingerprint = strdup(jc->pin);
			if (pins[2] != NULL)
				out->next_ca_fingerprint = strdup(pins[2]);
		} else {
			/* the kept rollover CA verified this reply */
			const char *oldpin = pins[1] ? pins[1] : pins[0];

			old = stored_cert(p, "anchor.crt", oldpin);
			if (old == NULL)
				old = stored_cert(p, "ca.crt", oldpin);
			if (old != NULL && expired(old, time(NULL))) {
				sa_info("profile %s: the anchor (the CA certificate "
					"that expired on %s) is replaced by its "
					"rollover certificate (SHA-256 %s), which "
					"is the anchor from now on", p->name,
					rfc3339(asn1_time(X509_get0_notAfter(old)),
						when, sizeof(when)), jc->pin);
				out->ca_fingerprint = strdup(jc->pin);
			} else {
				sa_info("profile %s: the CA at %s sent its "
					"rollover certificate (SHA-256 %s) early; "
					"verified with it, kept alongside the "
					"anchor until that expires", p->name, url,
					jc->pin);
				out->ca_fingerprint = pins[1] ? strdup(pins[1]) :
						      NULL;
				out->next_ca_fingerprint = strdup(jc->pin);
			}
		}
	}
	out->ca_not_after = asn1_time(X509_get0_notAfter(jc->ca.anchor));
	if (expired(jc->ca.anchor, time(NULL)))
		sa_warn("profile %s: the CA certificate, the anchor, expired "
			"on %s", p->name, rfc3339(out->ca_not_after, when,
						  sizeof(when)));
	rc = write_ca(p, &jc->ca);
	if (rc < 0)
		goto out;
	rollover(p, c, jc, out);
	if (which < 2 && out->next_ca_fingerprint != NULL)
		keep_anchor(p, jc->ca.anchor);
	rc = 0;
out:
	X509_free(old);
	scep_ca_clear(&got);
	if (rc < 0)
		job_ca_clear(jc);
	return rc;
}

void job_ca_clear(struct job_ca *jc)
{
	scep_ca_clear(&jc->ca);
	free(jc->pin);
	memset(jc, 0, sizeof(*jc));
}

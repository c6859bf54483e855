/*
 * due.c - what is due for one profile: the decision from its state and
 * the certificate on disk, the renewal point with its jitter, the backoff.
 * No I/O, no clock of its own (now is an argument): unit-tested alone.
 */
#include "daemon.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "csr.h"
#include "p11.h"
#include "sa_err.h"
#include "store.h"

/* Every attribute of want is in have (same type, same UTF-8 value) and
 * they have as many: the CA may reorder RDNs (micromdm does). */
static int names_match(const X509_NAME *want, const X509_NAME *have)
{
	int i, j, n = X509_NAME_entry_count(want), m, ok = 1;
	char *used = NULL;

	if (n != X509_NAME_entry_count(have))
		return 0;
	used = calloc((size_t)n + 1, 1);
	if (used == NULL)
		return 1; /* no memory: do not force a renewal */
	for (i = 0; i < n && ok; i++) {
		const X509_NAME_ENTRY *we = X509_NAME_get_entry(want, i);
		unsigned char *wv = NULL;
		int wl = ASN1_STRING_to_UTF8(&wv,
			X509_NAME_ENTRY_get_data(we));

		m = 0;
		for (j = 0; j < n && wl >= 0; j++) {
			const X509_NAME_ENTRY *he = X509_NAME_get_entry(have, j);
			unsigned char *hv = NULL;
			int hl;

			if (used[j] || OBJ_cmp(X509_NAME_ENTRY_get_object(we),
					       X509_NAME_ENTRY_get_object(he)) != 0)
				continue;
			hl = ASN1_STRING_to_UTF8(&hv, X509_NAME_ENTRY_get_data(he));
			if (hl == wl && memcmp(hv, wv, (size_t)wl) == 0) {
				used[j] = 1;
				m = 1;
			}
			OPENSSL_free(hv);
			if (m)
				break;
		}
		OPENSSL_free(wv);
		ok = m;
	}
	free(used);
	return ok;
}

/* The certificate's key is of the KeyType the profile asks for. */
static int keytype_matches(const char *key_type, X509 *cert)
{
	struct p11_keyspec ks;
	EVP_PKEY *pk = X509_get0_pubkey(cert);
	char curve[64];
	size_t len = 0;

	if (key_type == NULL || pk == NULL)
		return 1;
	if (p11_keyspec_parse(key_type, &ks) != 0) {
		sa_err_clear();
		return 1; /* profile_load refuses it already */
	}
	if (EVP_PKEY_get_base_id(pk) != ks.type)
		return 0;
	if (ks.type == EVP_PKEY_RSA)
		return EVP_PKEY_get_bits(pk) == ks.bits;
	if (EVP_PKEY_get_utf8_string_param(pk, "group", curve, sizeof(curve),
					   &len) != 1)
		return 0;
	return OBJ_txt2nid(curve) == ks.nid || OBJ_sn2nid(curve) == ks.nid ||
	       EC_curve_nist2nid(curve) == ks.nid;
}

void due_cert_clear(struct due_cert *c)
{
	free(c->serial);
	memset(c, 0, sizeof(*c));
}

int due_cert_read(const struct profile *p, X509 *cert, struct due_cert *c)
{
	const char *subject = p->o.s.subject;
	X509_NAME *want = NULL;
	int rc = 0;

	memset(c, 0, sizeof(*c));
	if (cert == NULL)
		return 0;
	c->present = 1;
	c->serial = store_serial_hex(cert);
	if (c->serial == NULL) {
		rc = sa_fail(SA_ENOMEM, "cannot read the certificate's serial");
		goto out;
	}
	{
		struct tm tm;

		if (ASN1_TIME_to_tm(X509_get0_notBefore(cert), &tm) != 1) {
			rc = sa_fail(SA_ECRYPTO, "bad notBefore");
			goto out;
		}
		c->not_before = timegm(&tm);
		if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) {
			rc = sa_fail(SA_ECRYPTO, "bad notAfter");
			goto out;
		}
		c->not_after = timegm(&tm);
	}
	if (subject != NULL && *subject != '\0') {
		if (csr_subject_parse(subject, &want) != 0) {
			sa_err_clear(); /* profile_load refuses it already */
		} else if (!names_match(want, X509_get_subject_name(cert))) {
			c->mismatch = 1;
			c->mismatch_why = "the certificate's subject no longer "
					  "matches Subject";
		}
	}
	if (!c->mismatch && !keytype_matches(p->o.s.key_type, cert)) {
		c->mismatch = 1;
		c->mismatch_why = "the certificate's key is not of KeyType";
	}
out:
	X509_NAME_free(want);
	if (rc != 0)
		due_cert_clear(c);
	return rc;
}

long due_backoff(long min_s, long max_s, int failures)
{
	long b = min_s > 0 ? min_s : 1;
	int i;

	if (max_s < b)
		max_s = b;
	for (i = 1; i < failures && b < max_s; i++)
		b = b > max_s / 2 ? max_s : b * 2;
	return b < max_s ? b : max_s;
}

time_t due_renew_point(const struct profile *p, time_t nb, time_t na,
		       unsigned long rnd)
{
	long long at = profile_renew_point(p, nb, na);
	long jit = profile_jitter(p, na > nb ? (long)(na - nb) : 0);

	if (jit > 0)
		at -= (long long)(rnd % ((unsigned long)jit + 1));
	if (at < (long long)nb)
		at = nb;
	if (at > (long long)na)
		at = na;
	return (time_t)at;
}

unsigned long due_jitter_seed(const char *serial)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a 64 */
	const unsigned char *q = (const unsigned char *)(serial ? serial : "");

	for (; *q != '\0'; q++) {
		h ^= *q;
		h *= 0x100000001b3ULL;
	}
	/* splitmix64's finaliser: serials that differ in their last digit
	 * (a CA counting up) land far apart after the modulo */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return (unsigned long)h;
}

/* The transaction the state records (txn_kind set): one that got PENDING,
 * a job that did not finish (killed between writing the state and the
 * outcome), or one that failed after its request may have been sent. */
static int txn_open(const struct state *st)
{
	return st->txn_kind != NULL;
}

static enum job_kind txn_kind_of(const struct state *st)
{
	if (strcmp(st->txn_kind, "renew") == 0)
		return JOB_RENEW;
	if (strcmp(st->txn_kind, "reenroll") == 0)
		return JOB_REENROLL;
	return JOB_ENROLL;
}

void due_decide(const struct profile *p, const struct state *st,
		const struct due_cert *c, time_t now, int force, struct due *d)
{
	memset(d, 0, sizeof(*d));
	if (c->present) {
		/* from the profile's RenewAt of now (a changed one applies to
		 * the current certificate), its jitter from the serial */
		d->renew_at = due_renew_point(p, c->not_before, c->not_after,
					      due_jitter_seed(c->serial));
		d->new_renew_at = d->renew_at != st->renew_at;
	}
	if (!force && st->failures > 0 && st->next_try > now) {
		d->what = DUE_BACKOFF;
		d->when = st->next_try;
		d->why = "waiting out the backoff after a failure";
		return;
	}
	if (txn_open(st)) {
		long maxp = p->o.s.max_poll_time;
		long iv = p->o.s.poll_interval > 0 ? p->o.s.poll_interval : 300;

		d->kind = txn_kind_of(st);
		if (st->pending && maxp > 0 && st->txn_started != 0 &&
		    now - st->txn_started >= maxp) {
			d->what = DUE_GIVE_UP;
			d->why = "the CA did not decide within MaxPollTime";
			return;
		}
		if (st->pending && !force && st->last_attempt != 0 &&
		    now < st->last_attempt + iv) {
			d->what = DUE_POLL_WAIT;
			d->when = st->last_attempt + iv;
			d->why = "waiting for the CA's approval";
			return;
		}
		d->what = DUE_JOB;
		d->resume = 1;
		d->why = st->pending ? "polling the pending request" :
			 "resuming the interrupted transaction";
		return;
	}
	d->what = DUE_JOB;
	if (!c->present) {
		d->kind = p->adopt_cert != NULL ? JOB_ADOPT : JOB_ENROLL;
		d->why = p->adopt_cert != NULL ? "adopting AdoptCert" :
			 "no certificate yet: enrolling";
		return;
	}
	if (now >= c->not_after) {
		d->kind = JOB_REENROLL;
		d->why = "the certificate has expired: enrolling anew "
			 "(PKCSReq with the challenge)";
		return;
	}
	d->kind = JOB_RENEW;
	if (c->mismatch) {
		d->why = c->mismatch_why;
		return;
	}
	if (force) {
		d->why = "renewal forced (--force)";
		return;
	}
	if (now >= d->renew_at) {
		d->why = "the certificate is past its renewal point";
		return;
	}
	d->what = DUE_NOTHING;
	d->kind = JOB_ENROLL;
	d->when = d->renew_at;
	d->why = "nothing to do";
}

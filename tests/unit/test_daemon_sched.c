/*
 * test_daemon_sched.c - the daemon's pure logic: what is due for a
 * profile (due.c), the renewal point and its jitter, the backoff, and the
 * text formats of status (dtext.c: RFC 3339, durations, JSON strings,
 * URIs without PINs).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "daemon.h"
#include "sa_err.h"
#include "tap.h"

static void profile_init(struct profile *p)
{
	memset(p, 0, sizeof(*p));
	p->name = "t";
	p->renew_pct = 75;
	p->renew_before = -1;
	p->jitter = 0;
	p->backoff_min = 60;
	p->backoff_max = 86400;
	p->o.s.poll_interval = 300;
	p->o.s.max_poll_time = 3600;
}

static void test_backoff(void)
{
	is_int(due_backoff(60, 86400, 0), 60, "backoff: no failure yet: RetryMin");
	is_int(due_backoff(60, 86400, 1), 60, "backoff: first failure: RetryMin");
	is_int(due_backoff(60, 86400, 2), 120, "backoff: doubles");
	is_int(due_backoff(60, 86400, 5), 960, "backoff: 60*2^4");
	is_int(due_backoff(60, 86400, 11), 61440, "backoff: 60*2^10");
	is_int(due_backoff(60, 86400, 12), 86400, "backoff: capped at RetryMax");
	is_int(due_backoff(60, 86400, 1000), 86400, "backoff: no overflow");
	is_int(due_backoff(60, 30, 3), 60, "backoff: RetryMax below RetryMin");
	is_int(due_backoff(0, 10, 1), 1, "backoff: at least a second");
}

static void test_renew_point(void)
{
	struct profile p;
	unsigned long r;
	int inside = 1, lo = 0, hi = 0;

	profile_init(&p);
	is_int(due_renew_point(&p, 1000, 2000, 12345), 1750,
	       "RenewAt 75%%, no jitter");
	p.renew_pct = 50;
	is_int(due_renew_point(&p, 1000, 2000, 0), 1500, "RenewAt 50%%");
	p.renew_pct = 0;
	p.renew_before = 300;
	is_int(due_renew_point(&p, 1000, 2000, 0), 1700, "RenewAt 300 s before");
	p.renew_before = 5000;
	is_int(due_renew_point(&p, 1000, 2000, 0), 1000,
	       "RenewAt longer than the lifetime: at notBefore");
	p.renew_pct = 75;
	p.renew_before = -1;
	p.jitter = -1; /* default: 1% of 100000 s = 1000 s */
	for (r = 0; r < 5000; r++) {
		long t = due_renew_point(&p, 0, 100000, r * 7919UL);

		if (t < 74000 || t > 75000)
			inside = 0;
		lo |= t < 74200;
		hi |= t > 74800;
	}
	ok(inside, "default jitter: within 1%% of the lifetime before the point");
	ok(lo && hi, "default jitter: spread over its window");
	is_int(due_renew_point(&p, 0, 1000000000, 999999999UL % 3601UL) >=
	       750000000 - 3600, 1, "default jitter: at most an hour");
	p.jitter = 100;
	is_int(due_renew_point(&p, 1000, 2000, 100), 1650, "RenewJitter 100: rnd 100");
	is_int(due_renew_point(&p, 1000, 2000, 101), 1750, "RenewJitter 100: rnd 101 wraps");
	p.jitter = 100000;
	is_int(due_renew_point(&p, 1000, 2000, 99999), 1000,
	       "jitter never before notBefore");
}

/* The jitter: stable for one certificate, spread over a fleet's. */
static void test_jitter_seed(void)
{
	struct profile p;
	struct state st;
	struct due_cert c;
	struct due d;
	time_t now = 1800000000, first = 0;
	char serial[32];
	int i, same = 1, lo = 0, hi = 0, inside = 1;

	profile_init(&p);
	p.jitter = 3600;
	memset(&st, 0, sizeof(st));
	memset(&c, 0, sizeof(c));
	ok(due_jitter_seed("0a1b") == due_jitter_seed("0a1b"),
	   "jitter seed: the same serial, the same seed");
	ok(due_jitter_seed("0a1b") != due_jitter_seed("0a1c"),
	   "jitter seed: serials one apart, seeds apart");
	c.present = 1;
	c.serial = strdup("7f3e99");
	c.not_before = now - 86400;
	c.not_after = now + 3 * 86400; /* 75%: now + 2 d */
	for (i = 0; i < 5; i++) {
		due_decide(&p, &st, &c, now + i * 60, 0, &d);
		if (i == 0)
			first = d.renew_at;
		same = same && d.renew_at == first;
	}
	ok(same, "the renewal point of one certificate is the same at every look");
	ok(first <= now + 2 * 86400 && first >= now + 2 * 86400 - 3600,
	   "within RenewJitter before RenewAt");
	/* a fleet whose CA counts serials up: spread over the window */
	for (i = 0; i < 200; i++) {
		time_t t;

		snprintf(serial, sizeof(serial), "%x", 0x1000 + i);
		t = due_renew_point(&p, c.not_before, c.not_after,
				    due_jitter_seed(serial));
		inside = inside && t <= now + 2 * 86400 &&
			 t >= now + 2 * 86400 - 3600;
		lo |= t < now + 2 * 86400 - 3000;
		hi |= t > now + 2 * 86400 - 600;
	}
	ok(inside && lo && hi, "counting serials: jitters spread over RenewJitter");
	due_cert_clear(&c);
	state_clear(&st);
}

static void st_reset(struct state *st)
{
	state_clear(st);
	memset(st, 0, sizeof(*st));
}

static void test_decide(void)
{
	struct profile p;
	struct state st;
	struct due_cert c;
	struct due d;
	time_t now = 1800000000;

	profile_init(&p);
	memset(&st, 0, sizeof(st));
	memset(&c, 0, sizeof(c));

	due_decide(&p, &st, &c, now, 0, &d);
	ok(d.what == DUE_JOB && d.kind == JOB_ENROLL && !d.resume,
	   "no certificate: enroll");
	p.adopt_cert = "/x/adopt.crt";
	due_decide(&p, &st, &c, now, 0, &d);
	ok(d.what == DUE_JOB && d.kind == JOB_ADOPT, "no certificate, AdoptCert: adopt");
	p.adopt_cert = NULL;

	c.present = 1;
	c.serial = strdup("0a1b");
	c.not_before = now - 1000;
	c.not_after = now + 3000; /* 75%: now + 2000 */
	due_decide(&p, &st, &c, now, 0, &d);
	ok(d.what == DUE_NOTHING && d.when == now + 2000 && d.new_renew_at &&
	   d.renew_at == now + 2000, "valid certificate: nothing until 75%%");
	due_decide(&p, &st, &c, now, 1, &d);
	ok(d.what == DUE_JOB && d.kind == JOB_RENEW, "--force: renew");
	due_decide(&p, &st, &c, now + 2000, 0, &d);
	ok(d.what == DUE_JOB && d.kind == JOB_RENEW, "past the renewal point: renew");
	due_decide(&p, &st, &c, now + 3000, 0, &d);
	ok(d.what == DUE_JOB && d.kind == JOB_REENROLL, "expired: enroll anew");

	/* the renewal point follows the profile's RenewAt of now, for the
	 * current certificate too; the state's renew_at is only a record */
	state_set(&st.serial, "0a1b");
	st.renew_at = now + 2000;
	due_decide(&p, &st, &c, now, 0, &d);
	ok(d.what == DUE_NOTHING && d.when == now + 2000 && !d.new_renew_at,
	   "the state's renew_at as computed: nothing new to store");
	st.renew_at = now - 500; /* chosen under an earlier RenewAt */
	due_decide(&p, &st, &c, now, 0, &d);
	ok(d.what == DUE_NOTHING && d.when == now + 2000 && d.new_renew_at,
	   "a renewal point stored under an earlier RenewAt: RenewAt of now");
	p.renew_pct = 0;
	p.renew_before = 3500; /* RenewAt changed to 3500 s before the end */
	st.renew_at = now + 2000;
	due_decide(&p, &st, &c, now, 0, &d);
	ok(d.what == DUE_JOB && d.kind == JOB_RENEW && d.new_renew_at &&
	   d.renew_at == now - 500,
	   "RenewAt changed: applies to the current certificate (renew now)");
	p.renew_pct = 75;
	p.renew_before = -1;
	st_reset(&st);

	c.mismatch = 1;
	c.mismatch_why = "subject";
	due_decide(&p, &st, &c, now, 0, &d);
	ok(d.what == DUE_JOB && d.kind == JOB_RENEW, "Subject/KeyType changed: renew");
	c.mismatch = 0;

	/* backoff: check from cron does not bypass it; --force does */
	st.phase = STATE_FAILED;
	st.failures = 2;
	st.next_try = now + 100;
	due_decide(&p, &st, &c, now + 2500, 0, &d);
	ok(d.what == DUE_JOB && d.kind == JOB_RENEW, "backoff over, past the renewal point: renew");
	due_decide(&p, &st, &c, now + 50, 0, &d);
	ok(d.what == DUE_BACKOFF && d.when == now + 100, "failed: backoff until next_try");
	due_decide(&p, &st, &c, now + 50, 1, &d);
	ok(d.what == DUE_JOB && d.kind == JOB_RENEW, "--force: no backoff");
	due_decide(&p, &st, &c, now + 100, 0, &d);
	ok(d.what == DUE_NOTHING, "backoff over, certificate fine: nothing");
	st_reset(&st);

	/* a pending transaction: polled every PollInterval, resumed across runs */
	st.phase = STATE_RENEWING;
	st.pending = 1;
	state_set(&st.txn_kind, "renew");
	state_set(&st.transaction_id, "abc");
	st.txn_started = now - 100;
	st.last_attempt = now - 100;
	due_decide(&p, &st, &c, now, 0, &d);
	ok(d.what == DUE_POLL_WAIT && d.when == now + 200,
	   "pending: next poll one PollInterval after the last");
	due_decide(&p, &st, &c, now + 200, 0, &d);
	ok(d.what == DUE_JOB && d.resume && d.kind == JOB_RENEW,
	   "pending: poll (resume the renewal)");
	due_decide(&p, &st, &c, now + 3500, 0, &d);
	ok(d.what == DUE_GIVE_UP, "pending past MaxPollTime (from txn start): give up");
	p.o.s.max_poll_time = 0;
	due_decide(&p, &st, &c, now + 350000, 0, &d);
	ok(d.what == DUE_JOB && d.resume, "MaxPollTime 0: no limit");
	p.o.s.max_poll_time = 3600;
	st.pending = 0; /* killed mid-job */
	state_set(&st.txn_kind, "enroll");
	c.present = 0;
	due_decide(&p, &st, &c, now, 0, &d);
	ok(d.what == DUE_JOB && d.resume && d.kind == JOB_ENROLL,
	   "interrupted enrollment: resumed, not sent anew");
	state_set(&st.txn_kind, "reenroll");
	due_decide(&p, &st, &c, now, 0, &d);
	ok(d.kind == JOB_REENROLL && d.resume, "interrupted re-enrollment: resumed");
	st.failures = 1;
	st.next_try = now + 60;
	due_decide(&p, &st, &c, now, 0, &d);
	ok(d.what == DUE_BACKOFF, "a failed transaction waits out its backoff too");
	st_reset(&st);
	due_cert_clear(&c);
}

static X509 *mkcert(const char *subject, const char *kt)
{
	EVP_PKEY *k = strncmp(kt, "ec", 2) == 0 ?
		EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256") :
		EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	char *s = strdup(subject), *part, *save = NULL;

	for (part = strtok_r(s, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
		char *eq = strchr(part, '=');

		*eq = '\0';
		X509_NAME_add_entry_by_txt(n, part, MBSTRING_UTF8,
					   (unsigned char *)eq + 1, -1, -1, 0);
	}
	ASN1_INTEGER_set(X509_get_serialNumber(x), 0x1a2b);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, n);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509_sign(x, k, EVP_sha256());
	X509_NAME_free(n);
	EVP_PKEY_free(k);
	free(s);
	return x;
}

static void test_cert(void)
{
	struct profile p;
	struct due_cert c;
	X509 *rsa = mkcert("/CN=gw1/O=Example", "rsa");
	X509 *ec = mkcert("/CN=gw1", "ec");

	profile_init(&p);
	is_int(due_cert_read(&p, NULL, &c), 0, "no certificate: fine");
	ok(!c.present, "no certificate: not present");
	is_int(due_cert_read(&p, rsa, &c), 0, "read a certificate");
	ok(c.present && c.serial && strcmp(c.serial, "1a2b") == 0,
	   "serial in lowercase hex");
	ok(c.not_after - c.not_before == 3600, "its dates");
	ok(!c.mismatch, "no Subject, no KeyType: no mismatch");
	due_cert_clear(&c);
	p.o.s.subject = "/O=Example/CN=gw1";
	p.o.s.key_type = "rsa:2048";
	due_cert_read(&p, rsa, &c);
	ok(!c.mismatch, "same attributes, other order (CA reordered): matches");
	due_cert_clear(&c);
	p.o.s.subject = "/CN=gw2/O=Example";
	due_cert_read(&p, rsa, &c);
	ok(c.mismatch, "Subject changed: mismatch");
	due_cert_clear(&c);
	p.o.s.subject = "/CN=gw1";
	due_cert_read(&p, rsa, &c);
	ok(c.mismatch, "an attribute fewer: mismatch");
	due_cert_clear(&c);
	p.o.s.subject = "/CN=gw1/O=Example";
	p.o.s.key_type = "ec:P-256";
	due_cert_read(&p, rsa, &c);
	ok(c.mismatch, "KeyType ec:P-256, RSA certificate: mismatch");
	due_cert_clear(&c);
	p.o.s.key_type = "rsa:3072";
	due_cert_read(&p, rsa, &c);
	ok(c.mismatch, "KeyType rsa:3072, RSA-2048 certificate: mismatch");
	due_cert_clear(&c);
	p.o.s.subject = "/CN=gw1";
	p.o.s.key_type = "ec:P-256";
	due_cert_read(&p, ec, &c);
	ok(!c.mismatch, "KeyType ec:P-256, P-256 certificate: matches");
	due_cert_clear(&c);
	p.o.s.key_type = "ec:P-384";
	due_cert_read(&p, ec, &c);
	ok(c.mismatch, "KeyType ec:P-384, P-256 certificate: mismatch");
	due_cert_clear(&c);
	X509_free(rsa);
	X509_free(ec);
}

static void test_text(void)
{
	char buf[64], *js = NULL, *u;
	size_t len = 0, cap = 0;
	long v;

	is_str(dtext_rfc3339(0, buf, sizeof(buf)), "1970-01-01T00:00:00Z",
	       "RFC 3339: the epoch");
	is_str(dtext_rfc3339(1796125860, buf, sizeof(buf)),
	       "2026-12-01T11:51:00Z", "RFC 3339: UTC with Z");

	ok(dtext_duration("7d", &v) == 0 && v == 604800, "duration 7d");
	ok(dtext_duration("12h", &v) == 0 && v == 43200, "duration 12h");
	ok(dtext_duration("90m", &v) == 0 && v == 5400, "duration 90m");
	ok(dtext_duration("45s", &v) == 0 && v == 45, "duration 45s");
	ok(dtext_duration("45", &v) == 0 && v == 45, "duration: bare seconds");
	ok(dtext_duration("2w", &v) == 0 && v == 1209600, "duration 2w");
	ok(dtext_duration("0", &v) == 0 && v == 0, "duration 0");
	ok(dtext_duration("", &v) == SA_EUSAGE, "duration: empty refused");
	ok(dtext_duration("-1", &v) == SA_EUSAGE, "duration: negative refused");
	ok(dtext_duration("7x", &v) == SA_EUSAGE, "duration: unknown unit refused");
	ok(dtext_duration("7dd", &v) == SA_EUSAGE, "duration: trailing text refused");
	ok(dtext_duration("d", &v) == SA_EUSAGE, "duration: no number refused");
	ok(dtext_duration("99999999999999999999d", &v) == SA_EUSAGE,
	   "duration: overflow refused");
	ok(strstr(sa_errmsg(), "e.g. 7d") != NULL, "duration: the message says how");
	sa_err_clear();

	dtext_json_str(&js, &len, &cap, "a\"b\\c\nd\te\x01" "f\x7fg");
	is_str(js, "\"a\\\"b\\\\c\\nd\\te\\u0001f\\u007fg\"",
	       "JSON: quotes, backslashes, control characters");
	len = 0;
	dtext_json_str(&js, &len, &cap, "caf\xc3\xa9 \xe2\x82\xac");
	is_str(js, "\"caf\xc3\xa9 \xe2\x82\xac\"", "JSON: valid UTF-8 kept");
	len = 0;
	dtext_json_str(&js, &len, &cap, "x\xff y\xc3");
	is_str(js, "\"x\\ufffd y\\ufffd\"", "JSON: invalid UTF-8 replaced");
	len = 0;
	dtext_json_str(&js, &len, &cap, "\xed\xa0\x80|\xc0\xaf|\xe0\x80\xaf");
	is_str(js, "\"\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd\"",
	       "JSON: surrogates and overlong forms replaced");
	len = 0;
	dtext_json_str(&js, &len, &cap, "l\xe2\x80\xa8p\xe2\x80\xa9");
	is_str(js, "\"l\\u2028p\\u2029\"", "JSON: U+2028/U+2029 escaped");
	len = 0;
	dtext_json_str(&js, &len, &cap, NULL);
	is_str(js, "null", "JSON: NULL is null");
	len = 0;
	{
		char big[5000];

		memset(big, '"', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		dtext_json_str(&js, &len, &cap, big);
		ok(len == 2 * 4999 + 2, "JSON: a long string grows the buffer");
	}
	free(js);

	u = dtext_uri_nopin("pkcs11:token=t;object=k;pin-value=1234");
	is_str(u, "pkcs11:token=t;object=k", "URI: pin-value dropped");
	free(u);
	u = dtext_uri_nopin("pkcs11:PIN-VALUE=1;token=t?pin-source=file:/p&module-path=/m.so");
	is_str(u, "pkcs11:token=t?module-path=/m.so", "URI: PINs in path and query dropped");
	free(u);
	u = dtext_uri_nopin("pkcs11:token=t?pin-value=1234");
	is_str(u, "pkcs11:token=t", "URI: an empty query goes");
	free(u);
	u = dtext_uri_nopin("pkcs11:token=pin-valueX;object=k");
	is_str(u, "pkcs11:token=pin-valueX;object=k", "URI: other values untouched");
	free(u);
	ok(dtext_uri_nopin(NULL) == NULL, "URI: NULL");
}

int main(void)
{
	test_backoff();
	test_renew_point();
	test_decide();
	test_jitter_seed();
	test_cert();
	test_text();
	return tap_done();
}

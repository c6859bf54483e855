/*
 * test_daemon_job.c - the job's outcome on the pipe from the child to the
 * scheduler (agent/daemon/job_wire.c): round trip, a child that died while
 * writing, values that try to forge records, malformed input.
 */
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "sa_err.h"
#include "tap.h"

static void fill(struct job_out *o)
{
	memset(o, 0, sizeof(*o));
	o->status = ENGINE_FAILURE;
	o->err.code = SA_ENET;
	snprintf(o->err.msg, sizeof(o->err.msg), "line one\nline two = \x1b[31mred");
	o->killed = 0;
	o->sent = 1;
	o->serial = strdup("0a1b2c");
	o->subject = strdup("CN=gw1,O=Example");
	o->not_before = 1700000000;
	o->not_after = -5; /* before 1970: a negative time survives */
	o->cert_path = strdup("/var/lib/x/0a1b2c.crt");
	o->key_uri = strdup("pkcs11:token=t1;object=gw1;type=private");
	o->transaction_id = strdup("ABCDEF");
	o->fail_info = 2;
	o->fail_info_text = strdup("no\n12 end=1\nway");
	o->ca_fingerprint = strdup("00ff");
	o->next_ca_fingerprint = NULL;
	o->ca_not_after = 2000000000;
}

static void round_trip(void)
{
	struct job_out in, out;
	char *buf = NULL;
	size_t len = 0;
	int flags = -1, rc;

	fill(&in);
	rc = job_wire_encode(&in, &buf, &len);
	is_int(rc, 0, "encode");
	memset(&out, 0, sizeof(out));
	out.fail_info = -1;
	rc = job_wire_decode(buf, len, &out, &flags);
	is_int(rc, 0, "decode");
	is_int(flags & JOB_WIRE_COMPLETE, JOB_WIRE_COMPLETE, "complete");
	is_int(out.status, ENGINE_FAILURE, "status");
	is_int(out.err.code, SA_ENET, "code");
	is_str(out.err.msg, "line one?line two = ?[31mred",
	       "message: control characters as '?'");
	is_int(out.sent, 1, "sent");
	is_int(out.killed, 0, "killed");
	is_str(out.serial, "0a1b2c", "serial");
	is_str(out.subject, "CN=gw1,O=Example", "subject");
	ok(out.not_before == 1700000000, "notBefore");
	ok(out.not_after == -5, "notAfter before 1970");
	is_str(out.cert_path, "/var/lib/x/0a1b2c.crt", "cert path");
	is_str(out.key_uri, "pkcs11:token=t1;object=gw1;type=private", "key");
	is_str(out.transaction_id, "ABCDEF", "transactionID");
	is_int(out.fail_info, 2, "failInfo");
	is_str(out.fail_info_text, "no?12 end=1?way",
	       "a newline in a value does not start a record");
	is_str(out.ca_fingerprint, "00ff", "anchor fingerprint");
	ok(out.next_ca_fingerprint == NULL, "no rollover CA");
	ok(out.ca_not_after == 2000000000, "anchor's end");
	job_out_clear(&out);

	/* every cut: no error, never complete, no crash or leak */
	{
		size_t cut;
		int bad = 0, complete = 0;

		for (cut = 0; cut < len; cut++) {
			memset(&out, 0, sizeof(out));
			rc = job_wire_decode(buf, cut, &out, &flags);
			if (rc != 0)
				bad++;
			if (flags & JOB_WIRE_COMPLETE)
				complete++;
			job_out_clear(&out);
		}
		is_int(bad, 0, "a cut outcome is not an error (%zu cuts)", len);
		is_int(complete, 0, "a cut outcome is never complete");
	}
	job_out_clear(&in);
	free(buf);
}

static void stage_then_death(void)
{
	struct job_out out;
	char *a = NULL, *b = NULL, *all;
	size_t al = 0, bl = 0;
	int flags = 0;

	is_int(job_wire_record("ca_fp", "abcd", &a, &al), 0, "record");
	is_int(job_wire_record("stage", "engine", &b, &bl), 0, "stage record");
	all = malloc(al + bl + 1);
	memcpy(all, a, al);
	memcpy(all + al, b, bl);
	memset(&out, 0, sizeof(out));
	is_int(job_wire_decode(all, al + bl, &out, &flags), 0,
	       "records of a child that died later");
	is_int(flags, JOB_WIRE_ENGINE, "the engine was reached, not complete: "
	       "no request out");
	is_str(out.ca_fingerprint, "abcd", "the early TOFU pin is kept");
	job_out_clear(&out);
	free(b);
	is_int(job_wire_record("stage", "request-out", &b, &bl), 0,
	       "request-out record");
	all = realloc(all, al + bl);
	memcpy(all + al, b, bl);
	memset(&out, 0, sizeof(out));
	is_int(job_wire_decode(all, al + bl, &out, &flags), 0, "decoded");
	is_int(flags, JOB_WIRE_SENT, "a request about to leave: it may have "
	       "reached the CA");
	job_out_clear(&out);
	free(a);
	free(b);
	free(all);
}

static void malformed(void)
{
	static const struct { const char *in; const char *what; } t[] = {
		{ "7 bogus=1\n", "unknown key" },
		{ "6 code=x\n", "code not a number" },
		{ "8 code=-99\n", "code out of range" },
		{ "6 sent=2\n", "sent not 0/1" },
		{ "8 status=9\n", "status out of range" },
		{ "12 not_after=1x\n", "a time not a number" },
		{ "4 abcd\n", "no '='" },
		{ "5 end=1\n5 end=1\n", "a record after the end" },
		{ "5 end=1\nxy", "data after the end" },
	};
	struct job_out out;
	size_t i;
	int flags;
	char nul[] = "8 serial=a\0";

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(&out, 0, sizeof(out));
		ok(job_wire_decode(t[i].in, strlen(t[i].in), &out, &flags) ==
		   SA_EINTERNAL, "refused: %s", t[i].what);
		job_out_clear(&out);
		sa_err_clear();
	}
	memset(&out, 0, sizeof(out));
	ok(job_wire_decode(nul, sizeof(nul) - 1, &out, &flags) == SA_EINTERNAL,
	   "refused: a NUL byte");
	job_out_clear(&out);
	{
		size_t n = JOB_WIRE_MAX + 1;
		char *big = malloc(n);

		memset(big, 'a', n);
		memset(&out, 0, sizeof(out));
		ok(job_wire_decode(big, n, &out, &flags) == SA_EINTERNAL,
		   "refused: more than JOB_WIRE_MAX bytes");
		job_out_clear(&out);
		free(big);
	}
	/* a length larger than what is there: cut short, not complete */
	memset(&out, 0, sizeof(out));
	ok(job_wire_decode("99 serial=ab\n", 13, &out, &flags) == 0 &&
	   flags == 0 && out.serial == NULL, "a length past the end: cut short");
	job_out_clear(&out);
	sa_err_clear();
}

int main(void)
{
	round_trip();
	stage_then_death();
	malformed();
	return tap_done();
}

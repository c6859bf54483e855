/*
 * job_wire.c - a job's outcome as a value: clearing it, and carrying it on
 * the pipe from the child to the parent.
 *
 * One record per field: the decimal length of "key=value", a space,
 * "key=value", a newline. The length makes any value safe to carry (a
 * message with a newline cannot start a record of its own); the reader
 * still refuses NUL bytes, unknown keys, bad numbers and oversized input,
 * and writes every control character of a string as '?', so that nothing
 * the child got from a server reaches a log line raw. The last record is
 * "end=1": without it the child died before it finished.
 */
#include "job.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sa_err.h"

/* no value is longer than this; the whole outcome no longer than JOB_WIRE_MAX */
#define VALUE_MAX 16384

void job_out_clear(struct job_out *out)
{
	free(out->serial);
	free(out->subject);
	free(out->cert_path);
	free(out->key_uri);
	free(out->transaction_id);
	free(out->fail_info_text);
	free(out->ca_fingerprint);
	free(out->next_ca_fingerprint);
	memset(out, 0, sizeof(*out));
	out->fail_info = -1;
}

struct wbuf {
	char *p;
	size_t len, cap;
	int oom;
};

static void put(struct wbuf *b, const char *key, const char *val)
{
	size_t kl = strlen(key), vl = strlen(val), need;
	char head[32];
	int hl;

	if (b->oom)
		return;
	if (vl > VALUE_MAX)
		vl = VALUE_MAX;
	hl = snprintf(head, sizeof(head), "%zu ", kl + 1 + vl);
	need = b->len + (size_t)hl + kl + 1 + vl + 2;
	if (need > b->cap) {
		size_t cap = b->cap ? b->cap : 512;
		char *n;

		while (cap < need)
			cap *= 2;
		n = realloc(b->p, cap);
		if (n == NULL) {
			b->oom = 1;
			return;
		}
		b->p = n;
		b->cap = cap;
	}
	memcpy(b->p + b->len, head, (size_t)hl);
	b->len += (size_t)hl;
	memcpy(b->p + b->len, key, kl);
	b->len += kl;
	b->p[b->len++] = '=';
	memcpy(b->p + b->len, val, vl);
	b->len += vl;
	b->p[b->len++] = '\n';
	b->p[b->len] = '\0';
}

static void put_str(struct wbuf *b, const char *key, const char *val)
{
	if (val != NULL)
		put(b, key, val);
}

static void put_num(struct wbuf *b, const char *key, long long v)
{
	char n[32];

	snprintf(n, sizeof(n), "%lld", v);
	put(b, key, n);
}

int job_wire_record(const char *key, const char *value, char **buf,
		    size_t *len)
{
	struct wbuf b = { 0 };

	*buf = NULL;
	*len = 0;
	put(&b, key, value);
	if (b.oom) {
		free(b.p);
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	}
	*buf = b.p;
	*len = b.len;
	return 0;
}

int job_wire_encode(const struct job_out *o, char **buf, size_t *len)
{
	struct wbuf b = { 0 };

	*buf = NULL;
	*len = 0;
	put_num(&b, "status", o->status);
	put_num(&b, "code", o->err.code);
	if (o->err.msg[0] != '\0')
		put(&b, "msg", o->err.msg);
	put_num(&b, "killed", o->killed);
	put_num(&b, "sent", o->sent);
	put_str(&b, "serial", o->serial);
	put_str(&b, "subject", o->subject);
	put_num(&b, "not_before", (long long)o->not_before);
	put_num(&b, "not_after", (long long)o->not_after);
	put_str(&b, "cert_path", o->cert_path);
	put_str(&b, "key_uri", o->key_uri);
	put_str(&b, "tid", o->transaction_id);
	put_num(&b, "fail_info", o->fail_info);
	put_str(&b, "fail_info_text", o->fail_info_text);
	put_str(&b, "ca_fp", o->ca_fingerprint);
	put_str(&b, "next_ca_fp", o->next_ca_fingerprint);
	put_num(&b, "ca_not_after", (long long)o->ca_not_after);
	put(&b, "end", "1");
	if (b.oom) {
		free(b.p);
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	}
	*buf = b.p;
	*len = b.len;
	return 0;
}

int job_wire_send(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return sa_fail_noossl(SA_EIO, "cannot send the job's outcome "
					      "to the scheduler: %s",
					      n < 0 ? strerror(errno) : "short write");
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int num(const char *v, long long lo, long long hi, long long *out)
{
	char *end;
	long long x;

	errno = 0;
	x = strtoll(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || x < lo || x > hi)
		return -1;
	*out = x;
	return 0;
}

/* a copy with control characters as '?' */
static char *clean_dup(const char *v)
{
	char *s = strdup(v), *p;

	for (p = s; p != NULL && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return s;
}

static int set_str(char **field, const char *v)
{
	char *s = clean_dup(v);

	if (s == NULL)
		return -1;
	free(*field);
	*field = s;
	return 0;
}

/* one field; -1 for an unknown key or a bad value */
static int field(struct job_out *o, const char *k, const char *v,
		 int *flags)
{
	long long n;

	if (strcmp(k, "end") == 0) {
		*flags |= JOB_WIRE_COMPLETE;
		return 0;
	}
	if (strcmp(k, "stage") == 0) {
		if (strcmp(v, "engine") == 0)
			*flags |= JOB_WIRE_ENGINE;
		else if (strcmp(v, "request-out") == 0)
			*flags |= JOB_WIRE_SENT;
		return 0;
	}
	if (strcmp(k, "msg") == 0) {
		char *s = clean_dup(v);

		if (s == NULL)
			return -1;
		snprintf(o->err.msg, sizeof(o->err.msg), "%s", s);
		free(s);
		return 0;
	}
	if (strcmp(k, "serial") == 0)
		return set_str(&o->serial, v);
	if (strcmp(k, "subject") == 0)
		return set_str(&o->subject, v);
	if (strcmp(k, "cert_path") == 0)
		return set_str(&o->cert_path, v);
	if (strcmp(k, "key_uri") == 0)
		return set_str(&o->key_uri, v);
	if (strcmp(k, "tid") == 0)
		return set_str(&o->transaction_id, v);
	if (strcmp(k, "fail_info_text") == 0)
		return set_str(&o->fail_info_text, v);
	if (strcmp(k, "ca_fp") == 0)
		return set_str(&o->ca_fingerprint, v);
	if (strcmp(k, "next_ca_fp") == 0)
		return set_str(&o->next_ca_fingerprint, v);
	if (strcmp(k, "status") == 0) {
		if (num(v, ENGINE_ERROR, ENGINE_FAILURE, &n) < 0)
			return -1;
		o->status = (enum engine_status)n;
	} else if (strcmp(k, "code") == 0) {
		if (num(v, SA_EINTR, 0, &n) < 0)
			return -1;
		o->err.code = (int)n;
	} else if (strcmp(k, "killed") == 0 || strcmp(k, "sent") == 0) {
		if (num(v, 0, 1, &n) < 0)
			return -1;
		if (k[0] == 'k')
			o->killed = (int)n;
		else
			o->sent = (int)n;
	} else if (strcmp(k, "fail_info") == 0) {
		if (num(v, -1, INT_MAX, &n) < 0)
			return -1;
		o->fail_info = (int)n;
	} else if (strcmp(k, "not_before") == 0 ||
		   strcmp(k, "not_after") == 0 ||
		   strcmp(k, "ca_not_after") == 0) {
		if (num(v, LLONG_MIN, LLONG_MAX, &n) < 0)
			return -1;
		if (strcmp(k, "not_before") == 0)
			o->not_before = (time_t)n;
		else if (strcmp(k, "not_after") == 0)
			o->not_after = (time_t)n;
		else
			o->ca_not_after = (time_t)n;
	} else {
		return -1;
	}
	return 0;
}

int job_wire_decode(const char *buf, size_t len, struct job_out *out,
		    int *flags)
{
	size_t i = 0;
	int rc = 0;

	*flags = 0;
	if (len > JOB_WIRE_MAX)
		return sa_fail_noossl(SA_EINTERNAL, "the job's child sent %zu bytes "
				      "(more than %d): not an outcome", len,
				      JOB_WIRE_MAX);
	if (memchr(buf, '\0', len) != NULL)
		return sa_fail_noossl(SA_EINTERNAL, "the job's child sent a NUL "
				      "byte: not an outcome");
	while (i < len) {
		char rec[VALUE_MAX + 64], *eq;
		size_t n = 0, j = i;

		if (*flags & JOB_WIRE_COMPLETE)
			break; /* nothing may follow "end" */
		while (j < len && buf[j] >= '0' && buf[j] <= '9' && n <= VALUE_MAX + 64)
			n = n * 10 + (size_t)(buf[j++] - '0');
		if (j == i || j >= len || buf[j] != ' ')
			break; /* a partial or malformed record: stop here */
		j++;
		if (n >= sizeof(rec) || n > len - j || j + n >= len ||
		    buf[j + n] != '\n')
			break; /* cut short: the child died while writing */
		memcpy(rec, buf + j, n);
		rec[n] = '\0';
		eq = strchr(rec, '=');
		if (eq == NULL) {
			rc = sa_fail_noossl(SA_EINTERNAL, "the job's child sent a "
					    "record without '=': not an outcome");
			break;
		}
		*eq = '\0';
		if (field(out, rec, eq + 1, flags) < 0) {
			char k[40], *p;

			snprintf(k, sizeof(k), "%.32s", rec);
			for (p = k; *p; p++)
				if ((unsigned char)*p < 0x20 || *p == 0x7f)
					*p = '?';
			rc = sa_fail_noossl(SA_EINTERNAL, "the job's child sent a "
					    "bad record \"%.32s\": not an outcome", k);
			break;
		}
		i = j + n + 1;
	}
	if (rc == 0 && i < len && (*flags & JOB_WIRE_COMPLETE))
		rc = sa_fail_noossl(SA_EINTERNAL, "the job's child sent data after "
				    "its outcome");
	return rc;
}

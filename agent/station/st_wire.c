/*
 * st_wire.c - tasks (parent to worker) and results (worker to parent) on
 * pipes, in the daemon job's record encoding (job_wire_record(): "LEN
 * key=value\n", the length guarding against values with newlines and
 * against truncation; the last record "end=1"). Unknown keys, NUL bytes
 * and bad lengths are refused; strings from a worker get their control
 * characters as '?'. Buffers that carried a PIN or challenge are wiped.
 */
#include "station.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "job.h"
#include "sa_err.h"

#define MSG_MAX 65536

void station_wb_add(struct station_wb *b, const char *key, const char *val)
{
	char *r = NULL, *n;
	size_t rl = 0;

	if (b->err || val == NULL)
		return;
	if (job_wire_record(key, val, &r, &rl) < 0) {
		b->err = 1;
		return;
	}
	n = realloc(b->p, b->len + rl + 1);
	if (n == NULL) {
		OPENSSL_cleanse(r, rl);
		free(r);
		b->err = 1;
		return;
	}
	b->p = n;
	memcpy(b->p + b->len, r, rl + 1);
	b->len += rl;
	OPENSSL_cleanse(r, rl);
	free(r);
}

void station_wb_num(struct station_wb *b, const char *key, long long v)
{
	char n[32];

	snprintf(n, sizeof(n), "%lld", v);
	station_wb_add(b, key, n);
}

int station_wb_finish(struct station_wb *b, char **buf, size_t *len)
{
	station_wb_add(b, "end", "1");
	if (b->err) {
		if (b->p != NULL)
			OPENSSL_cleanse(b->p, b->len);
		free(b->p);
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	}
	*buf = b->p;
	*len = b->len;
	return 0;
}

/* See station.h. */
int station_task_encode(const struct station_task *t, char **buf, size_t *len)
{
	struct station_wb b = { 0 };
	size_t i;

	station_wb_num(&b, "slot", (long long)t->slot_id);
	station_wb_num(&b, "blank", t->blank);
	station_wb_add(&b, "serial", t->serial);
	station_wb_add(&b, "label", t->label);
	station_wb_num(&b, "n", t->n);
	station_wb_add(&b, "subject", t->subject);
	for (i = 0; i < t->n_san; i++)
		station_wb_add(&b, "san", t->san[i]);
	station_wb_add(&b, "pin", t->pin);
	station_wb_add(&b, "challenge", t->challenge);
	return station_wb_finish(&b, buf, len);
}

/* See station.h. */
int station_result_encode(const struct station_result *r, char **buf,
			  size_t *len)
{
	struct station_wb b = { 0 };
	char sec[32];

	station_wb_num(&b, "state", r->state);
	station_wb_add(&b, "token_serial", r->token_serial);
	station_wb_add(&b, "token_label", r->token_label);
	station_wb_add(&b, "key_uri", r->key_uri);
	station_wb_add(&b, "serial", r->serial);
	station_wb_add(&b, "not_after", r->not_after);
	snprintf(sec, sizeof(sec), "%.3f", r->seconds);
	station_wb_add(&b, "seconds", sec);
	station_wb_add(&b, "error", r->error);
	station_wb_num(&b, "n", r->n);
	station_wb_num(&b, "slot", (long long)r->slot_id);
	return station_wb_finish(&b, buf, len);
}

/* See station.h. */
int station_wire_each(const char *buf, size_t len, station_rec_fn *fn,
		      void *arg)
{
	size_t pos = 0;

	if (memchr(buf, '\0', len) != NULL)
		return sa_fail_noossl(SA_EINTERNAL, "a NUL byte on the pipe");
	while (pos < len) {
		char *end, *eq, *v;
		unsigned long n;
		int rc;

		errno = 0;
		n = strtoul(buf + pos, &end, 10);
		if (errno != 0 || end == buf + pos || *end != ' ' ||
		    n > MSG_MAX || (size_t)(end + 1 - buf) + n + 1 > len ||
		    end[1 + n] != '\n')
			return sa_fail_noossl(SA_EINTERNAL, "a malformed record "
					      "on the pipe");
		eq = memchr(end + 1, '=', n);
		if (eq == NULL)
			return sa_fail_noossl(SA_EINTERNAL, "a record without = "
					      "on the pipe");
		v = malloc((size_t)(end + 1 + n - eq));
		if (v == NULL)
			return sa_fail_noossl(SA_ENOMEM, "out of memory");
		memcpy(v, eq + 1, (size_t)(end + n - eq));
		v[end + n - eq] = '\0';
		if ((size_t)(eq - end - 1) == 3 && strncmp(end + 1, "end", 3) == 0) {
			free(v);
			return 0;
		}
		rc = fn(arg, end + 1, (size_t)(eq - end - 1), v);
		if (rc < 0)
			return rc;
		pos = (size_t)(end + 1 - buf) + n + 1;
	}
	return sa_fail_noossl(SA_EINTERNAL, "a message cut short on the pipe");
}

static int key_is(const char *k, size_t kl, const char *name)
{
	return strlen(name) == kl && strncmp(k, name, kl) == 0;
}

static void tame(char *v)
{
	for (; *v != '\0'; v++)
		if ((unsigned char)*v < 0x20 || *v == 0x7f)
			*v = '?';
}

static int task_rec(void *arg, const char *k, size_t kl, char *v)
{
	struct station_task *t = arg;
	char ***slot = NULL;

	if (key_is(k, kl, "slot")) {
		t->slot_id = strtoul(v, NULL, 10);
	} else if (key_is(k, kl, "blank")) {
		t->blank = atoi(v);
	} else if (key_is(k, kl, "n")) {
		t->n = strtol(v, NULL, 10);
	} else if (key_is(k, kl, "san")) {
		char **l = realloc(t->san, (t->n_san + 1) * sizeof(*l));

		if (l == NULL) {
			free(v);
			return sa_fail_noossl(SA_ENOMEM, "out of memory");
		}
		t->san = l;
		l[t->n_san++] = v;
		return 0;
	} else {
		char **dst = key_is(k, kl, "serial") ? &t->serial :
			     key_is(k, kl, "label") ? &t->label :
			     key_is(k, kl, "subject") ? &t->subject :
			     key_is(k, kl, "pin") ? &t->pin :
			     key_is(k, kl, "challenge") ? &t->challenge : NULL;

		(void)slot;
		if (dst == NULL) {
			free(v);
			return sa_fail_noossl(SA_EINTERNAL, "an unknown record "
					      "on the pipe");
		}
		free(*dst);
		*dst = v;
		return 0;
	}
	free(v);
	return 0;
}

/* See station.h. */
int station_task_decode(const char *buf, size_t len, struct station_task *t)
{
	int rc;

	memset(t, 0, sizeof(*t));
	rc = station_wire_each(buf, len, task_rec, t);
	if (rc < 0)
		station_task_clear(t);
	return rc;
}

static int result_rec(void *arg, const char *k, size_t kl, char *v)
{
	struct station_result *r = arg;
	char **dst;

	tame(v);
	if (key_is(k, kl, "state")) {
		int s = atoi(v);

		r->state = s >= ST_OK && s <= ST_SKIPPED ? (enum station_state)s :
			   ST_FAILED;
	} else if (key_is(k, kl, "seconds")) {
		r->seconds = strtod(v, NULL);
	} else if (key_is(k, kl, "n")) {
		r->n = strtol(v, NULL, 10);
	} else if (key_is(k, kl, "slot")) {
		r->slot_id = strtoul(v, NULL, 10);
	} else {
		dst = key_is(k, kl, "token_serial") ? &r->token_serial :
		      key_is(k, kl, "token_label") ? &r->token_label :
		      key_is(k, kl, "key_uri") ? &r->key_uri :
		      key_is(k, kl, "serial") ? &r->serial :
		      key_is(k, kl, "not_after") ? &r->not_after :
		      key_is(k, kl, "error") ? &r->error : NULL;
		if (dst == NULL) {
			free(v);
			return sa_fail_noossl(SA_EINTERNAL, "an unknown record "
					      "on the pipe");
		}
		free(*dst);
		*dst = v;
		return 0;
	}
	free(v);
	return 0;
}

/* See station.h. */
int station_result_decode(const char *buf, size_t len,
			  struct station_result *r)
{
	int rc;

	memset(r, 0, sizeof(*r));
	r->state = ST_FAILED;
	rc = station_wire_each(buf, len, result_rec, r);
	if (rc < 0)
		station_result_clear(r);
	return rc;
}

/* See station.h. */
size_t station_wire_complete(const char *buf, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		char *end;
		unsigned long n;

		if (len - pos < 2)
			return 0;
		n = strtoul(buf + pos, &end, 10);
		if (end == buf + pos || (size_t)(end - buf) >= len || *end != ' ')
			return 0;
		if ((size_t)(end + 1 - buf) + n + 1 > len)
			return 0;
		pos = (size_t)(end + 1 - buf) + n + 1;
		if (n == 5 && strncmp(end + 1, "end=1", 5) == 0)
			return pos;
	}
	return 0;
}

/* See station.h. */
int station_wire_read(int fd, char **msg, size_t *len)
{
	char *buf = NULL, *nb;
	size_t n = 0, cap = 0, whole;

	*msg = NULL;
	*len = 0;
	for (;;) {
		ssize_t r;

		if (n + 4096 > cap) {
			cap = cap ? cap * 2 : 8192;
			if (cap > MSG_MAX * 2)
				goto bad;
			nb = realloc(buf, cap);
			if (nb == NULL)
				goto bad;
			buf = nb;
		}
		/* one message at a time each way: nothing follows it */
		r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (buf != NULL)
				OPENSSL_cleanse(buf, n);
			free(buf);
			return r == 0 && n == 0 ? 0 :
			       sa_fail_noossl(SA_EIO, "the pipe closed mid-way");
		}
		n += (size_t)r;
		if (buf[n - 1] == '\n' &&
		    (whole = station_wire_complete(buf, n)) == n) {
			buf[n] = '\0';
			*msg = buf;
			*len = n;
			return 1;
		}
	}
bad:
	if (buf != NULL)
		OPENSSL_cleanse(buf, n);
	free(buf);
	return sa_fail_noossl(SA_ENOMEM, "a message too long on the pipe");
}

/* See station.h. */
void station_task_clear(struct station_task *t)
{
	size_t i;

	if (t == NULL)
		return;
	if (t->pin != NULL)
		OPENSSL_cleanse(t->pin, strlen(t->pin));
	if (t->challenge != NULL)
		OPENSSL_cleanse(t->challenge, strlen(t->challenge));
	free(t->pin);
	free(t->challenge);
	free(t->serial);
	free(t->label);
	free(t->subject);
	for (i = 0; i < t->n_san; i++)
		free(t->san[i]);
	free(t->san);
	memset(t, 0, sizeof(*t));
}

/* See station.h. */
void station_result_clear(struct station_result *r)
{
	if (r == NULL)
		return;
	free(r->token_serial);
	free(r->token_label);
	free(r->key_uri);
	free(r->serial);
	free(r->not_after);
	free(r->error);
	memset(r, 0, sizeof(*r));
}

/* See station.h. */
const char *station_state_name(enum station_state s)
{
	switch (s) {
	case ST_OK: return "ok";
	case ST_PENDING: return "pending";
	case ST_FAILED: return "failed";
	case ST_SKIPPED: return "skipped";
	}
	return "failed";
}

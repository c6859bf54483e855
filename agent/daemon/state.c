/*
 * state.c - a profile's state file (StateDir/NAME.state: "key=value"
 * lines), written atomically, read strictly; the profile's lock
 * (StateDir/NAME.lock, flock).
 */
#include "state.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sa_err.h"
#include "sa_log.h"

#define STATE_VERSION 1
#define STATE_MAX_SIZE (256 * 1024) /* a state file is a few hundred bytes */

static const char *const phase_names[] = {
	[STATE_NONE] = "none",
	[STATE_OK] = "ok",
	[STATE_ENROLLING] = "enrolling",
	[STATE_RENEWING] = "renewing",
	[STATE_FAILED] = "failed",
};
#define NPHASES (sizeof(phase_names) / sizeof(phase_names[0]))

const char *state_phase_name(enum state_phase ph)
{
	if ((size_t)ph < NPHASES)
		return phase_names[ph];
	return "unknown";
}

enum ftype { F_STR, F_TIME, F_INT, F_PHASE };

struct field {
	const char *key;
	enum ftype type;
	size_t off;
};

#define FS(k, f) { k, F_STR, offsetof(struct state, f) }
#define FT(k, f) { k, F_TIME, offsetof(struct state, f) }
#define FI(k, f) { k, F_INT, offsetof(struct state, f) }

/* The file's keys, in the order they are written. */
static const struct field fields[] = {
	{ "phase", F_PHASE, offsetof(struct state, phase) },
	FS("serial", serial),
	FS("subject", subject),
	FT("not_before", not_before),
	FT("not_after", not_after),
	FS("key_uri", key_uri),
	FI("pending", pending),
	FS("transaction_id", transaction_id),
	FS("txn_key_uri", txn_key_uri),
	FS("txn_kind", txn_kind),
	FT("txn_started", txn_started),
	FT("renew_at", renew_at),
	FT("next_check", next_check),
	FT("last_success", last_success),
	FT("last_attempt", last_attempt),
	FS("last_error", last_error),
	FI("failures", failures),
	FT("next_try", next_try),
	FS("ca_fingerprint", ca_fingerprint),
	FS("next_ca_fingerprint", next_ca_fingerprint),
	FT("ca_not_after", ca_not_after),
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

#define AT(st, f, T) ((T *)(void *)((char *)(st) + (f)->off))

void state_clear(struct state *st)
{
	size_t i;

	for (i = 0; i < NFIELDS; i++)
		if (fields[i].type == F_STR)
			free(*AT(st, &fields[i], char *));
	memset(st, 0, sizeof(*st));
}

int state_set(char **field, const char *value)
{
	char *d = NULL;

	if (value != NULL && (d = strdup(value)) == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	free(*field);
	*field = d;
	return 0;
}

/* A profile name usable in a file name: no '/', not hidden, not empty. */
static int name_ok(const char *name)
{
	return name != NULL && name[0] != '\0' && name[0] != '.' &&
	       strchr(name, '/') == NULL;
}

static char *path_of(const char *dir, const char *name, const char *ext)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s%s", dir, name, ext) < 0)
		return NULL;
	return p;
}

int state_mkdirs(const char *dir, unsigned mode)
{
	char *p, *s;
	int rc = 0;

	if ((p = strdup(dir)) == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	for (s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;

		*s = '\0';
		if (mkdir(p, (mode_t)mode) < 0 && errno != EEXIST) {
			rc = sa_fail_noossl(SA_EIO, "cannot make the directory "
					    "%s: %s", p, strerror(errno));
			break;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	return rc;
}

int state_sync_dir(const char *dir)
{
	int fd, rc = 0;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		rc = sa_fail_noossl(SA_EIO, "cannot sync the directory %s: %s",
				    dir, strerror(errno));
	if (fd >= 0)
		close(fd);
	return rc;
}

static int fsync_dir_of(const char *path)
{
	char *d = strdup(path), *slash;
	int rc;

	if (d == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	slash = strrchr(d, '/');
	if (slash == NULL)
		strcpy(d, ".");
	else if (slash == d)
		d[1] = '\0';
	else
		*slash = '\0';
	rc = state_sync_dir(d);
	free(d);
	return rc;
}

int state_write_atomic(const char *path, const void *data, size_t len,
		       unsigned mode)
{
	const char *p = data;
	char *tmp = NULL;
	int fd = -1, rc;
	ssize_t w;

	if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0) {
		tmp = NULL;
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = sa_fail_noossl(SA_EIO, "cannot create a temporary file for "
				    "%s: %s", path, strerror(errno));
		free(tmp);
		tmp = NULL;
		goto out;
	}
	if (fchmod(fd, (mode_t)mode) < 0)
		goto io;
	while (len > 0) {
		w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			goto io;
		p += w;
		len -= (size_t)w;
	}
	if (fsync(fd) < 0)
		goto io;
	if (close(fd) < 0) {
		fd = -1;
		goto io;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		goto io;
	free(tmp);
	tmp = NULL;
	rc = fsync_dir_of(path);
	goto out;
io:
	rc = sa_fail_noossl(SA_EIO, "cannot write %s: %s", path,
			    strerror(errno));
out:
	if (fd >= 0)
		close(fd);
	if (tmp != NULL) {
		unlink(tmp);
		free(tmp);
	}
	return rc;
}

/* Write v escaped: backslash, control characters and DEL as \n, \r, \xHH. */
static void put_escaped(FILE *fp, const char *v)
{
	const unsigned char *p;

	for (p = (const unsigned char *)v; *p; p++) {
		if (*p == '\\')
			fputs("\\\\", fp);
		else if (*p == '\n')
			fputs("\\n", fp);
		else if (*p == '\r')
			fputs("\\r", fp);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(fp, "\\x%02x", *p);
		else
			fputc(*p, fp);
	}
}

int state_save(const char *state_dir, const char *name, const struct state *st)
{
	char *path = NULL, *buf = NULL;
	size_t len = 0, i;
	FILE *fp;
	int rc;

	if (!name_ok(name))
		return sa_fail_noossl(SA_EUSAGE, "\"%s\" cannot name a state "
				      "file", name ? name : "");
	rc = state_mkdirs(state_dir, 0700);
	if (rc < 0)
		return rc;
	path = path_of(state_dir, name, ".state");
	fp = open_memstream(&buf, &len);
	if (path == NULL || fp == NULL) {
		if (fp != NULL)
			fclose(fp);
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	fprintf(fp, "# scep-agent: state of the profile %s (written by "
		"scep-agent; times in seconds since 1970)\nversion=%d\n", name,
		STATE_VERSION);
	for (i = 0; i < NFIELDS; i++) {
		const struct field *f = &fields[i];
		const char *s;

		switch (f->type) {
		case F_STR:
			s = *AT(st, f, char *const);
			if (s == NULL)
				continue;
			fprintf(fp, "%s=", f->key);
			put_escaped(fp, s);
			fputc('\n', fp);
			break;
		case F_TIME:
			fprintf(fp, "%s=%lld\n", f->key,
				(long long)*AT(st, f, const time_t));
			break;
		case F_INT:
			fprintf(fp, "%s=%d\n", f->key, *AT(st, f, const int));
			break;
		case F_PHASE:
			fprintf(fp, "%s=%s\n", f->key, state_phase_name(st->phase));
			break;
		}
	}
	if (fclose(fp) != 0) {
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	rc = state_write_atomic(path, buf, len, 0600);
out:
	free(buf);
	free(path);
	return rc;
}

/* Undo put_escaped() in place. -1 on a malformed escape. */
static int unescape(char *v)
{
	char *r = v, *w = v;
	unsigned x;

	while (*r) {
		if (*r != '\\') {
			*w++ = *r++;
			continue;
		}
		r++;
		switch (*r) {
		case '\\': *w++ = '\\'; r++; break;
		case 'n': *w++ = '\n'; r++; break;
		case 'r': *w++ = '\r'; r++; break;
		case 'x':
			if (!isxdigit((unsigned char)r[1]) ||
			    !isxdigit((unsigned char)r[2]))
				return -1;
			if (sscanf(r + 1, "%2x", &x) != 1 || x == 0)
				return -1;
			*w++ = (char)x;
			r += 3;
			break;
		default:
			return -1;
		}
	}
	*w = '\0';
	return 0;
}

/* A whole number: digits only (optionally a leading '-'), no overflow. */
static int parse_ll(const char *v, long long min, long long max,
		    long long *out)
{
	char *end;
	long long n;

	if (!isdigit((unsigned char)*v) &&
	    !(*v == '-' && isdigit((unsigned char)v[1])))
		return -1;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

static const struct field *find_field(const char *key)
{
	size_t i;

	for (i = 0; i < NFIELDS; i++)
		if (strcmp(fields[i].key, key) == 0)
			return &fields[i];
	return NULL;
}

/* One "key=value" line into st. -1 when malformed (what in *why). */
static int take_line(struct state *st, char *line, const char **why)
{
	char *eq = strchr(line, '='), *k;
	const struct field *f;
	long long n;
	size_t i;

	if (eq == NULL || eq == line) {
		*why = "not a key=value line";
		return -1;
	}
	*eq = '\0';
	for (k = line; *k; k++)
		if (!islower((unsigned char)*k) && !isdigit((unsigned char)*k) &&
		    *k != '_') {
			*why = "not a key";
			return -1;
		}
	if (strcmp(line, "version") == 0) {
		*why = "version is not a number";
		return parse_ll(eq + 1, 1, INT_MAX, &n);
	}
	f = find_field(line);
	if (f == NULL) {
		sa_debug("state: unknown key %s skipped", line);
		return 0;
	}
	switch (f->type) {
	case F_STR:
		*why = "bad escape in the value";
		if (unescape(eq + 1) < 0)
			return -1;
		if (state_set(AT(st, f, char *), eq + 1) < 0) {
			*why = "out of memory";
			return -1;
		}
		return 0;
	case F_TIME:
		*why = "not a time (seconds since 1970)";
		if (parse_ll(eq + 1, 0, (long long)LONG_MAX, &n) < 0)
			return -1;
		*AT(st, f, time_t) = (time_t)n;
		return 0;
	case F_INT:
		*why = "not a number of 0 or more";
		if (parse_ll(eq + 1, 0, INT_MAX, &n) < 0)
			return -1;
		*AT(st, f, int) = (int)n;
		return 0;
	case F_PHASE:
		for (i = 0; i < NPHASES; i++)
			if (strcmp(eq + 1, phase_names[i]) == 0) {
				st->phase = (enum state_phase)i;
				return 0;
			}
		*why = "not a phase (none, ok, enrolling, renewing, failed)";
		return -1;
	}
	*why = "internal error";
	return -1;
}

static int read_all(int fd, const char *path, char **out, size_t *len)
{
	struct stat sb;
	char *buf = NULL;
	size_t n = 0;
	ssize_t r;

	if (fstat(fd, &sb) < 0)
		return sa_fail_noossl(SA_EIO, "cannot read the state file %s: %s",
				      path, strerror(errno));
	if (!S_ISREG(sb.st_mode) || sb.st_size > STATE_MAX_SIZE)
		return sa_fail_noossl(SA_EIO, "the state file %s is corrupt (not "
				      "a file, or over %d bytes): move it away "
				      "and the next check starts the profile "
				      "from its StoreDir", path, STATE_MAX_SIZE);
	buf = malloc((size_t)sb.st_size + 1);
	if (buf == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	while (n < (size_t)sb.st_size) {
		r = read(fd, buf + n, (size_t)sb.st_size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			return sa_fail_noossl(SA_EIO, "cannot read the state "
					      "file %s: %s", path,
					      strerror(errno));
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

int state_load(const char *state_dir, const char *name, struct state *st)
{
	char *path = NULL, *buf = NULL, *line, *nl;
	const char *why = NULL;
	size_t len = 0;
	int fd = -1, lineno = 0, rc;

	memset(st, 0, sizeof(*st));
	if (!name_ok(name))
		return sa_fail_noossl(SA_EUSAGE, "\"%s\" cannot name a state "
				      "file", name ? name : "");
	path = path_of(state_dir, name, ".state");
	if (path == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		rc = 0;
		if (errno != ENOENT)
			rc = sa_fail_noossl(SA_EIO, "cannot open the state file "
					    "%s: %s", path, strerror(errno));
		goto out;
	}
	rc = read_all(fd, path, &buf, &len);
	if (rc < 0)
		goto out;
	if (strlen(buf) != len) {
		why = "a NUL byte";
		lineno = 1;
		for (line = buf; *line; line++)
			lineno += *line == '\n';
		goto bad;
	}
	for (line = buf; *line; line = nl) {
		lineno++;
		nl = strchr(line, '\n');
		if (nl != NULL)
			*nl++ = '\0';
		else
			nl = line + strlen(line);
		len = strlen(line);
		if (len > 0 && line[len - 1] == '\r') /* edited elsewhere */
			line[len - 1] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		if (take_line(st, line, &why) < 0)
			goto bad;
	}
	rc = 0;
	goto out;
bad:
	state_clear(st);
	rc = sa_fail_noossl(SA_EIO, "the state file %s is corrupt at line %d "
			    "(%s): move it away and the next check starts the "
			    "profile again from what its StoreDir holds", path,
			    lineno, why);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(path);
	return rc;
}

int state_lock(const char *state_dir, const char *name, int wait_ms)
{
	struct timespec step = { 0, 50 * 1000000L }, t0, t1;
	char *path = NULL;
	long waited;
	int fd = -1, rc;

	if (!name_ok(name))
		return sa_fail_noossl(SA_EUSAGE, "\"%s\" cannot name a lock "
				      "file", name ? name : "");
	rc = state_mkdirs(state_dir, 0700);
	if (rc < 0)
		return rc;
	path = path_of(state_dir, name, ".lock");
	if (path == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = sa_fail_noossl(SA_EIO, "cannot open the lock %s: %s", path,
				    strerror(errno));
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			rc = fd;
			fd = -1;
			goto out;
		}
		if (errno != EWOULDBLOCK && errno != EINTR) {
			rc = sa_fail_noossl(SA_EIO, "cannot lock %s: %s", path,
					    strerror(errno));
			goto out;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		waited = (t1.tv_sec - t0.tv_sec) * 1000L +
			 (t1.tv_nsec - t0.tv_nsec) / 1000000L;
		if (waited >= wait_ms) {
			rc = sa_fail_noossl(SA_EEXIST, "the profile %s is in use "
					    "by another scep-agent (its lock %s "
					    "is held): skipped", name, path);
			goto out;
		}
		nanosleep(&step, NULL);
	}
out:
	if (fd >= 0)
		close(fd);
	free(path);
	return rc;
}

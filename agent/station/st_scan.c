/*
 * st_scan.c - token discovery, always in a child so that the parent never
 * loads a PKCS#11 module: one scan (fork, load, list, report on a pipe,
 * exit), or with --watch a watcher child that reports a new scan each time
 * the slots change: it blocks in C_WaitForSlotEvent where the module
 * supports it, else it scans once a second with a fresh C_Initialize each
 * time (SoftHSM2 2.6.1 sees a token another process initialised only in
 * a new C_Initialize; docs/station.md).
 */
#include "station.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sa_err.h"
#include "sa_log.h"

static int scan_encode(const struct p11_token_desc *d, size_t n, char **buf,
		       size_t *len)
{
	struct station_wb b = { 0 };
	size_t i;

	for (i = 0; i < n; i++) {
		station_wb_num(&b, "slot", (long long)d[i].slot_id);
		station_wb_num(&b, "init", d[i].initialized);
		station_wb_num(&b, "flags", (long long)d[i].flags);
		station_wb_add(&b, "label", d[i].label);
		station_wb_add(&b, "serial", d[i].serial);
		station_wb_add(&b, "manufacturer", d[i].manufacturer);
		station_wb_add(&b, "model", d[i].model);
		station_wb_add(&b, "uri", d[i].uri);
	}
	return station_wb_finish(&b, buf, len);
}

static int scan_rec(void *arg, const char *k, size_t kl, char *v)
{
	struct station_found *f = arg;
	struct p11_token_desc *d;
	char **dst = NULL;

	if (kl == 4 && strncmp(k, "slot", 4) == 0) {
		d = realloc(f->d, (f->n + 1) * sizeof(*d));
		if (d == NULL) {
			free(v);
			return sa_fail_noossl(SA_ENOMEM, "out of memory");
		}
		f->d = d;
		memset(&d[f->n], 0, sizeof(*d));
		d[f->n].slot_id = strtoul(v, NULL, 10);
		f->n++;
		free(v);
		return 0;
	}
	if (f->n == 0) {
		free(v);
		return sa_fail_noossl(SA_EINTERNAL, "a malformed scan");
	}
	d = &f->d[f->n - 1];
	if (kl == 4 && strncmp(k, "init", 4) == 0)
		d->initialized = atoi(v);
	else if (kl == 5 && strncmp(k, "flags", 5) == 0)
		d->flags = strtoul(v, NULL, 10);
	else if (kl == 5 && strncmp(k, "label", 5) == 0)
		dst = &d->label;
	else if (kl == 6 && strncmp(k, "serial", 6) == 0)
		dst = &d->serial;
	else if (kl == 12 && strncmp(k, "manufacturer", 12) == 0)
		dst = &d->manufacturer;
	else if (kl == 5 && strncmp(k, "model", 5) == 0)
		dst = &d->model;
	else if (kl == 3 && strncmp(k, "uri", 3) == 0)
		dst = &d->uri;
	else {
		free(v);
		return sa_fail_noossl(SA_EINTERNAL, "a malformed scan");
	}
	if (dst != NULL) {
		char *c;

		for (c = v; *c != '\0'; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				*c = '?';
		free(*dst);
		*dst = v;
	} else {
		free(v);
	}
	return 0;
}

/* See station.h. */
int station_scan_decode(const char *buf, size_t len, struct station_found *f)
{
	size_t i;
	int rc;

	memset(f, 0, sizeof(*f));
	rc = station_wire_each(buf, len, scan_rec, f);
	for (i = 0; rc == 0 && i < f->n; i++) {
		struct p11_token_desc *d = &f->d[i];

		if (d->label == NULL || d->serial == NULL || d->uri == NULL ||
		    d->manufacturer == NULL || d->model == NULL)
			rc = sa_fail_noossl(SA_EINTERNAL, "a scan without a "
					    "token's fields");
	}
	if (rc < 0)
		station_found_clear(f);
	return rc;
}

/* See station.h. */
void station_found_clear(struct station_found *f)
{
	p11_tokens_free(f->d, f->n);
	memset(f, 0, sizeof(*f));
}

/* the scan, encoded; in the child */
static int scan_now(const struct station_opts *so, unsigned flags, char **buf,
		    size_t *len)
{
	struct p11_token_desc *d = NULL;
	size_t n = 0;
	int rc;

	rc = p11_tokens_get(so->module, so->filter,
			    flags | (so->init ? P11_TOKENS_BLANK : 0), &d, &n);
	if (rc < 0)
		return rc;
	rc = scan_encode(d, n, buf, len);
	p11_tokens_free(d, n);
	return rc;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, buf, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

/* a scan error to the parent: a message with only "error" */
static void send_error(int fd)
{
	struct station_wb b = { 0 };
	char *buf = NULL;
	size_t len = 0;

	station_wb_add(&b, "error", sa_errmsg());
	if (station_wb_finish(&b, &buf, &len) == 0)
		write_all(fd, buf, len);
	free(buf);
}

static void child_signals(void)
{
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, SIG_IGN);  /* the parent says when to stop */
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_IGN);
}

/* See station.h. */
int station_scan_once(const struct station_opts *so, struct station_found *f)
{
	int fds[2], wstatus = 0, rc;
	char *msg = NULL;
	size_t len = 0;
	pid_t pid;

	memset(f, 0, sizeof(*f));
	if (pipe2(fds, O_CLOEXEC) < 0)
		return sa_fail_noossl(SA_EIO, "cannot make a pipe: %s",
				      strerror(errno));
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return sa_fail_noossl(SA_EIO, "cannot fork the token scan: %s",
				      strerror(errno));
	}
	if (pid == 0) {
		char *buf = NULL;
		size_t blen = 0;

		close(fds[0]);
		child_signals();
		if (scan_now(so, 0, &buf, &blen) < 0)
			send_error(fds[1]);
		else
			write_all(fds[1], buf, blen);
		_exit(0);
	}
	close(fds[1]);
	/* bounded: a module that hangs while listing is killed */
	{
		struct pollfd p = { .fd = fds[0], .events = POLLIN };
		int ms = (int)(so->o.token_call_s ? so->o.token_call_s * 1000 :
			       60000);

		if (poll(&p, 1, ms) <= 0) {
			kill(pid, SIGKILL);
			rc = sa_fail_noossl(SA_EKEY, "the PKCS#11 module %s did not "
					    "list its tokens within %d s",
					    so->module ? so->module : "?",
					    ms / 1000);
			goto out;
		}
	}
	rc = station_wire_read(fds[0], &msg, &len);
	if (rc == 0)
		rc = sa_fail_noossl(SA_EKEY, "the token scan ended without an "
				    "answer (the PKCS#11 module crashed?)");
	if (rc < 0)
		goto out;
	if (len > 7 && strstr(msg, " error=") != NULL &&
	    strncmp(strchr(msg, ' ') + 1, "error=", 6) == 0) {
		char *e = strchr(msg, ' ') + 7, *nl = strchr(e, '\n');

		if (nl != NULL)
			*nl = '\0';
		rc = sa_fail_noossl(SA_EKEY, "%s", e);
		goto out;
	}
	rc = station_scan_decode(msg, len, f);
out:
	free(msg);
	close(fds[0]);
	while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
		;
	return rc;
}

/* See station.h. */
void station_watch_child(const struct station_opts *so, int fd)
{
	char *last = NULL;
	size_t last_len = 0;
	unsigned long sid;
	int events;

	child_signals();
	/* does the module wait for slot events? (a look, not blocking) */
	events = p11_slot_event_wait(so->module, 0, &sid) >= 0;
	sa_err_clear();
	sa_verbose("watching the slots of %s: %s", so->module ? so->module : "?",
		   events ? "C_WaitForSlotEvent" : "a slot-list scan each second");
	for (;;) {
		char *buf = NULL;
		size_t len = 0;

		if (scan_now(so, 0, &buf, &len) < 0) {
			send_error(fd);
			sa_err_clear();
		} else if (last == NULL || len != last_len ||
			   memcmp(buf, last, len) != 0) {
			if (write_all(fd, buf, len) < 0)
				_exit(0); /* the parent is gone */
			free(last);
			last = buf;
			last_len = len;
			buf = NULL;
		}
		free(buf);
		if (getppid() == 1)
			_exit(0);
		if (events) {
			if (p11_slot_event_wait(so->module, 1, &sid) < 0) {
				events = 0;
				sa_err_clear();
			}
		} else {
			struct timespec ts = { 1, 0 };

			nanosleep(&ts, NULL);
		}
	}
}

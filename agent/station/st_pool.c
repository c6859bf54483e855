/*
 * st_pool.c - the parent's side of the workers: up to --jobs worker
 * processes, started when there is work, each given one token at a time
 * over a pipe; a result read back; a worker past its token's deadline
 * gets SIGTERM, then SIGKILL, and a worker that dies is reported as its
 * token's failure and replaced by a new one for the next token.
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

/* after SIGTERM a worker has this long before SIGKILL */
#define KILL_GRACE 5.0

struct worker {
	pid_t pid;
	int to, from;         /* task pipe (write), result pipe (read) */
	int busy;
	struct station_task t; /* the task in hand (no secrets) */
	double started, deadline, kill_at;
	int termed, timed_out;
	char *buf;
	size_t len, cap;
};

struct station_pool {
	const struct station_opts *so;
	const struct station_csv *csv;
	struct worker *w;
	long jobs;
};

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* See station.h. */
int station_pool_new(const struct station_opts *so,
		     const struct station_csv *csv, long jobs,
		     struct station_pool **out)
{
	struct station_pool *p = calloc(1, sizeof(*p));
	long i;

	*out = NULL;
	if (p == NULL || (p->w = calloc((size_t)jobs, sizeof(*p->w))) == NULL) {
		free(p);
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	}
	for (i = 0; i < jobs; i++) {
		p->w[i].pid = -1;
		p->w[i].to = p->w[i].from = -1;
	}
	p->so = so;
	p->csv = csv;
	p->jobs = jobs;
	*out = p;
	return 0;
}

static int start(struct station_pool *p, struct worker *w)
{
	int tw[2], fw[2];
	pid_t pid;

	if (pipe2(tw, O_CLOEXEC) < 0)
		return sa_fail_noossl(SA_EIO, "cannot make a pipe: %s",
				      strerror(errno));
	if (pipe2(fw, O_CLOEXEC) < 0) {
		close(tw[0]);
		close(tw[1]);
		return sa_fail_noossl(SA_EIO, "cannot make a pipe: %s",
				      strerror(errno));
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(tw[0]);
		close(tw[1]);
		close(fw[0]);
		close(fw[1]);
		return sa_fail_noossl(SA_EIO, "cannot start a worker: fork: %s",
				      strerror(errno));
	}
	if (pid == 0) {
		long i;

		/* the other workers' pipes are not this one's */
		for (i = 0; i < p->jobs; i++) {
			if (p->w[i].to >= 0)
				close(p->w[i].to);
			if (p->w[i].from >= 0)
				close(p->w[i].from);
		}
		close(tw[1]);
		close(fw[0]);
		station_worker_main(p->so, p->csv, tw[0], fw[1]);
	}
	close(tw[0]);
	close(fw[1]);
	w->pid = pid;
	w->to = tw[1];
	w->from = fw[0];
	w->busy = 0;
	w->len = 0;
	return 0;
}

/* the worker is gone: pipes closed, reaped */
static void reap(struct worker *w)
{
	int st;

	if (w->to >= 0)
		close(w->to);
	if (w->from >= 0)
		close(w->from);
	w->to = w->from = -1;
	if (w->pid > 0)
		while (waitpid(w->pid, &st, 0) < 0 && errno == EINTR)
			;
	w->pid = -1;
	w->busy = 0;
	w->termed = w->timed_out = 0;
	station_task_clear(&w->t);
	free(w->buf);
	w->buf = NULL;
	w->len = w->cap = 0;
}

static int copy_task(const struct station_task *t, struct station_task *c)
{
	memset(c, 0, sizeof(*c));
	c->slot_id = t->slot_id;
	c->blank = t->blank;
	c->n = t->n;
	c->serial = strdup(t->serial ? t->serial : "");
	c->label = strdup(t->label ? t->label : "");
	if (c->serial == NULL || c->label == NULL) {
		station_task_clear(c);
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	}
	return 0;
}

/* See station.h. */
int station_pool_give(struct station_pool *p, const struct station_task *t)
{
	struct worker *w = NULL;
	char *buf = NULL;
	size_t len = 0, off = 0;
	long i;
	int rc;

	for (i = 0; i < p->jobs && w == NULL; i++)
		if (p->w[i].pid > 0 && !p->w[i].busy)
			w = &p->w[i];
	for (i = 0; i < p->jobs && w == NULL; i++)
		if (p->w[i].pid <= 0) {
			rc = start(p, &p->w[i]);
			if (rc < 0)
				return rc;
			w = &p->w[i];
		}
	if (w == NULL)
		return 0;
	rc = station_task_encode(t, &buf, &len);
	if (rc < 0)
		return rc;
	while (off < len) {
		ssize_t n = write(w->to, buf + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			kill(w->pid, SIGKILL);
			reap(w);
			return 0; /* a dead worker: another gets it */
		}
		off += (size_t)n;
	}
	free(buf);
	rc = copy_task(t, &w->t);
	if (rc < 0)
		return rc;
	w->busy = 1;
	w->started = mono();
	w->deadline = w->started + (double)p->so->deadline_s;
	return 1;
}

/* See station.h. */
int station_pool_busy(const struct station_pool *p)
{
	long i;
	int n = 0;

	for (i = 0; i < p->jobs; i++)
		n += p->w[i].busy;
	return n;
}

/* a result for the worker's token that gave none */
static void lost(struct station_pool *p, struct worker *w, int wstatus,
		 station_result_fn *cb, void *arg)
{
	struct station_result r;
	char msg[256];

	memset(&r, 0, sizeof(r));
	r.state = ST_FAILED;
	r.n = w->t.n;
	r.slot_id = w->t.slot_id;
	r.token_serial = strdup(w->t.serial ? w->t.serial : "");
	r.token_label = strdup(w->t.label ? w->t.label : "");
	r.seconds = mono() - w->started;
	if (w->timed_out)
		snprintf(msg, sizeof(msg), "the token's work took longer than "
			 "--deadline %ld s: its worker was killed; check the "
			 "token and its reader, then run provision again",
			 p->so->deadline_s);
	else if (WIFSIGNALED(wstatus))
		snprintf(msg, sizeof(msg), "its worker was killed by signal %d; "
			 "run provision again for this token",
			 WTERMSIG(wstatus));
	else if (WIFEXITED(wstatus) &&
		 WEXITSTATUS(wstatus) == SA_EXIT_TOKEN_TIMEOUT)
		snprintf(msg, sizeof(msg), "the token did not answer in time "
			 "(--token-timeout); check the token and its reader, "
			 "then run provision again");
	else
		snprintf(msg, sizeof(msg), "its worker ended (exit status %d) "
			 "without a result", WIFEXITED(wstatus) ?
			 WEXITSTATUS(wstatus) : -1);
	r.error = strdup(msg);
	cb(arg, &r);
	station_result_clear(&r);
}

/* the worker died or closed its pipe */
static void gone(struct station_pool *p, struct worker *w,
		 station_result_fn *cb, void *arg)
{
	int st = 0;

	if (w->to >= 0)
		close(w->to);
	w->to = -1;
	while (waitpid(w->pid, &st, 0) < 0 && errno == EINTR)
		;
	w->pid = -1;
	if (w->busy)
		lost(p, w, st, cb, arg);
	reap(w);
}

/* bytes from a worker: a whole result calls cb */
static void take(struct station_pool *p, struct worker *w,
		 station_result_fn *cb, void *arg)
{
	struct station_result r;
	ssize_t n;

	if (w->len + 4096 > w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 8192;
		char *b = cap <= 1u << 20 ? realloc(w->buf, cap) : NULL;

		if (b == NULL) {
			kill(w->pid, SIGKILL);
			gone(p, w, cb, arg);
			return;
		}
		w->buf = b;
		w->cap = cap;
	}
	n = read(w->from, w->buf + w->len, w->cap - w->len - 1);
	if (n < 0 && errno == EINTR)
		return;
	if (n <= 0) {
		gone(p, w, cb, arg);
		return;
	}
	w->len += (size_t)n;
	if (station_wire_complete(w->buf, w->len) != w->len)
		return;
	if (!w->busy || station_result_decode(w->buf, w->len, &r) < 0) {
		sa_err_clear();
		kill(w->pid, SIGKILL);
		gone(p, w, cb, arg);
		return;
	}
	w->len = 0;
	w->busy = 0;
	if (w->timed_out) {
		char *e = NULL;

		if (asprintf(&e, "past --deadline %ld s, its worker was "
			     "stopped: %s", p->so->deadline_s,
			     r.error ? r.error : "no error reported") < 0)
			e = NULL;
		if (r.state != ST_FAILED && r.state != ST_PENDING) {
			free(e);
			e = NULL;
		} else if (e != NULL) {
			free(r.error);
			r.error = e;
		}
	}
	cb(arg, &r);
	station_result_clear(&r);
	if (w->termed)
		reap(w); /* it was told to stop: a fresh worker for the next */
	else
		station_task_clear(&w->t);
}

/* See station.h. */
int station_pool_wait(struct station_pool *p, int extra_fd, double max_s,
		      int *extra_ready, station_result_fn *cb, void *arg)
{
	struct pollfd pf[STATION_MAX_JOBS + 1];
	struct worker *wof[STATION_MAX_JOBS + 1];
	double now = mono(), wait = max_s;
	nfds_t n = 0, i;
	long k;
	int r;

	if (extra_ready != NULL)
		*extra_ready = 0;
	for (k = 0; k < p->jobs; k++) {
		struct worker *w = &p->w[k];

		if (w->pid <= 0 || !w->busy)
			continue;
		if (!w->timed_out && now >= w->deadline) {
			sa_err("token %s: past its deadline (%ld s): stopping "
			       "its worker (pid %ld)", w->t.serial,
			       p->so->deadline_s, (long)w->pid);
			w->timed_out = 1;
			kill(w->pid, SIGTERM);
			w->termed = 1;
			w->kill_at = now + KILL_GRACE;
		}
		if (w->termed && now >= w->kill_at)
			kill(w->pid, SIGKILL);
		if (!w->timed_out && w->deadline - now < wait)
			wait = w->deadline - now;
		if (w->termed && w->kill_at - now < wait)
			wait = w->kill_at - now;
		pf[n].fd = w->from;
		pf[n].events = POLLIN;
		wof[n++] = w;
	}
	if (extra_fd >= 0) {
		pf[n].fd = extra_fd;
		pf[n].events = POLLIN;
		wof[n++] = NULL;
	}
	if (wait < 0.01)
		wait = 0.01;
	r = poll(pf, n, (int)(wait * 1000));
	if (r <= 0)
		return 0; /* a timeout, or a signal: the caller looks again */
	for (i = 0; i < n; i++) {
		if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if (wof[i] == NULL)
			*extra_ready = 1;
		else
			take(p, wof[i], cb, arg);
	}
	return 0;
}

/* See station.h. */
void station_pool_stop(struct station_pool *p, int sig)
{
	long k;
	double now = mono();

	for (k = 0; k < p->jobs; k++) {
		struct worker *w = &p->w[k];

		if (w->pid > 0 && w->busy && !w->termed) {
			kill(w->pid, sig);
			w->termed = 1;
			w->kill_at = now + KILL_GRACE;
		}
	}
}

/* See station.h. */
void station_pool_free(struct station_pool *p)
{
	long k;

	if (p == NULL)
		return;
	/* idle workers end when their pipe closes */
	for (k = 0; k < p->jobs; k++)
		if (p->w[k].pid > 0 && p->w[k].busy)
			kill(p->w[k].pid, SIGKILL);
	for (k = 0; k < p->jobs; k++)
		if (p->w[k].pid > 0)
			reap(&p->w[k]);
	free(p->w);
	free(p);
}

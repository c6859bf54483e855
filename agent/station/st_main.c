/*
 * st_main.c - `scep-agent provision`: options, the CSV and templates
 * checked, tokens found (a scan child, or the watcher with --watch), each
 * token handed to the worker pool once, results printed as they come, the
 * summary and the report at the end, the exit status from the states.
 */
#include "station.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sa_err.h"
#include "sa_intr.h"
#include "sa_log.h"

/* a token found, waiting for a worker or done */
struct tok {
	struct p11_token_desc d; /* owned copy of the scan's fields */
	long n;
	int queued, inflight, done, present;
};

struct run {
	struct station_opts so;
	struct station_csv csv;
	int have_csv;
	struct tok *t;
	size_t nt;
	long next_n;
	struct station_result *res;
	size_t nres;
};

static volatile sig_atomic_t second_stop;

static void on_second(int sig)
{
	second_stop = sig;
}

static char *dup0(const char *s)
{
	return strdup(s ? s : "");
}

/* the same token? (by serial; a blank one by its slot) */
static int same(const struct p11_token_desc *a, const struct p11_token_desc *b)
{
	if (a->initialized != b->initialized)
		return 0;
	if (!a->initialized)
		return a->slot_id == b->slot_id;
	return strcmp(a->serial, b->serial) == 0 &&
	       strcmp(a->manufacturer, b->manufacturer) == 0 &&
	       strcmp(a->model, b->model) == 0;
}

/*
 * A scan's tokens into the run: new ones queued in slot order with the
 * next {n}; with --watch, tokens gone from the slots are forgotten (put
 * back, they are provisioned again).
 */
static int merge(struct run *r, const struct station_found *f)
{
	size_t i, j;

	for (j = 0; j < r->nt; j++)
		r->t[j].present = 0;
	for (i = 0; i < f->n; i++) {
		const struct p11_token_desc *d = &f->d[i];
		int inflight_slot = 0;
		struct tok *nt;

		for (j = 0; j < r->nt; j++) {
			if (r->t[j].inflight && r->t[j].d.slot_id == d->slot_id)
				inflight_slot = 1;
			if (same(&r->t[j].d, d))
				break;
		}
		if (j < r->nt) {
			r->t[j].present = 1;
			continue;
		}
		if (inflight_slot)
			continue; /* the token a worker is making in that slot */
		nt = realloc(r->t, (r->nt + 1) * sizeof(*nt));
		if (nt == NULL)
			return sa_fail_noossl(SA_ENOMEM, "out of memory");
		r->t = nt;
		nt = &r->t[r->nt];
		memset(nt, 0, sizeof(*nt));
		nt->d.slot_id = d->slot_id;
		nt->d.initialized = d->initialized;
		nt->d.flags = d->flags;
		nt->d.label = dup0(d->label);
		nt->d.serial = dup0(d->serial);
		nt->d.manufacturer = dup0(d->manufacturer);
		nt->d.model = dup0(d->model);
		nt->d.uri = dup0(d->uri);
		if (nt->d.label == NULL || nt->d.serial == NULL ||
		    nt->d.manufacturer == NULL || nt->d.model == NULL ||
		    nt->d.uri == NULL)
			return sa_fail_noossl(SA_ENOMEM, "out of memory");
		nt->n = r->next_n++;
		nt->queued = 1;
		nt->present = 1;
		r->nt++;
		if (!d->initialized)
			sa_info("slot %lu: a blank token (to be initialised)",
				d->slot_id);
		else
			sa_verbose("token %s (%s) in slot %lu found", d->serial,
				   d->label, d->slot_id);
	}
	if (r->so.watch) {
		/* gone: forgotten, so that it is done again when put back */
		for (j = 0; j < r->nt; ) {
			if (!r->t[j].present && !r->t[j].inflight) {
				p11_tokens_free(NULL, 0);
				free(r->t[j].d.label);
				free(r->t[j].d.serial);
				free(r->t[j].d.manufacturer);
				free(r->t[j].d.model);
				free(r->t[j].d.uri);
				memmove(&r->t[j], &r->t[j + 1],
					(r->nt - j - 1) * sizeof(*r->t));
				r->nt--;
			} else {
				j++;
			}
		}
	}
	return 0;
}

static void on_result(void *arg, const struct station_result *res)
{
	struct run *r = arg;
	struct station_result *nr, *c;
	size_t j;

	for (j = 0; j < r->nt; j++)
		if (r->t[j].inflight && r->t[j].d.slot_id == res->slot_id &&
		    r->t[j].n == res->n) {
			r->t[j].inflight = 0;
			r->t[j].done = 1;
			if (!r->t[j].d.initialized) {
				/* it is that token now */
				r->t[j].d.initialized = 1;
				free(r->t[j].d.serial);
				r->t[j].d.serial = dup0(res->token_serial);
			}
		}
	station_out_line(res);
	nr = realloc(r->res, (r->nres + 1) * sizeof(*nr));
	if (nr == NULL) {
		sa_err("out of memory: the report misses token %s",
		       res->token_serial ? res->token_serial : "?");
		return;
	}
	r->res = nr;
	c = &r->res[r->nres];
	memset(c, 0, sizeof(*c));
	c->state = res->state;
	c->token_serial = res->token_serial ? strdup(res->token_serial) : NULL;
	c->token_label = res->token_label ? strdup(res->token_label) : NULL;
	c->key_uri = res->key_uri ? strdup(res->key_uri) : NULL;
	c->serial = res->serial ? strdup(res->serial) : NULL;
	c->not_after = res->not_after ? strdup(res->not_after) : NULL;
	c->error = res->error ? strdup(res->error) : NULL;
	c->seconds = res->seconds;
	c->n = res->n;
	c->slot_id = res->slot_id;
	r->nres++;
	if (r->so.watch && r->so.report_path != NULL &&
	    station_report_write(r->so.report_path, r->res, r->nres) < 0) {
		sa_err("%s", sa_errmsg());
		sa_err_clear();
	}
}

/* a queued token's task (label: a blank one's new label, rendered) */
static int make_task(struct run *r, struct tok *k, struct station_task *t)
{
	struct station_vars v;

	memset(t, 0, sizeof(*t));
	t->slot_id = k->d.slot_id;
	t->blank = !k->d.initialized;
	t->n = k->n;
	t->serial = strdup(k->d.serial);
	if (t->serial == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	if (!t->blank) {
		t->label = strdup(k->d.label);
		return t->label ? 0 : sa_fail_noossl(SA_ENOMEM, "out of memory");
	}
	memset(&v, 0, sizeof(v));
	v.serial = "";
	v.label = "";
	v.n = k->n;
	return station_render(r->so.init_label, &v, &t->label);
}

/* every queued token not yet given that a worker can take now */
static int hand_out(struct run *r, struct station_pool *pool)
{
	size_t j;
	int rc;

	for (j = 0; j < r->nt; j++) {
		struct station_task t;

		if (!r->t[j].queued)
			continue;
		rc = make_task(r, &r->t[j], &t);
		if (rc < 0)
			return rc;
		rc = station_pool_give(pool, &t);
		station_task_clear(&t);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return 0; /* all busy */
		r->t[j].queued = 0;
		r->t[j].inflight = 1;
	}
	return 0;
}

static int queued(const struct run *r)
{
	size_t j;
	int n = 0;

	for (j = 0; j < r->nt; j++)
		n += r->t[j].queued;
	return n;
}

/* tokens never started (a stop came): reported as failed */
static void not_started(struct run *r, int sig)
{
	struct station_result res;
	char msg[128];
	size_t j;

	for (j = 0; j < r->nt; j++) {
		if (!r->t[j].queued)
			continue;
		r->t[j].queued = 0;
		memset(&res, 0, sizeof(res));
		res.state = ST_FAILED;
		res.token_serial = r->t[j].d.serial;
		res.token_label = r->t[j].d.label;
		res.n = r->t[j].n;
		res.slot_id = r->t[j].d.slot_id;
		snprintf(msg, sizeof(msg), "not started: stopped by %s",
			 sa_intr_name(sig));
		res.error = msg;
		on_result(r, &res);
	}
}

static int start_watcher(struct run *r, pid_t *pid)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC) < 0)
		return sa_fail_noossl(SA_EIO, "cannot make a pipe: %s",
				      strerror(errno));
	fflush(NULL);
	*pid = fork();
	if (*pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return sa_fail_noossl(SA_EIO, "cannot fork the watcher: %s",
				      strerror(errno));
	}
	if (*pid == 0) {
		close(fds[0]);
		setpgid(0, 0);
		station_watch_child(&r->so, fds[1]);
	}
	close(fds[1]);
	return fds[0];
}

/* a scan message from the watcher into the run */
static int watcher_input(struct run *r, int fd)
{
	struct station_found f;
	char *msg = NULL;
	size_t len = 0;
	int rc;

	rc = station_wire_read(fd, &msg, &len);
	if (rc == 0)
		return sa_fail_noossl(SA_EKEY, "the token watcher ended (the "
				      "PKCS#11 module crashed?)");
	if (rc < 0)
		return rc;
	if (strncmp(strchr(msg, ' ') ? strchr(msg, ' ') + 1 : "", "error=",
		    6) == 0) {
		char *e = strchr(msg, ' ') + 7, *nl = strchr(e, '\n');

		if (nl != NULL)
			*nl = '\0';
		sa_warn("token scan: %s", e);
		free(msg);
		return 0;
	}
	rc = station_scan_decode(msg, len, &f);
	free(msg);
	if (rc < 0)
		return rc;
	rc = merge(r, &f);
	station_found_clear(&f);
	return rc;
}

/* --dry-run: what each token would get */
static int dry_run(struct run *r)
{
	size_t j;
	int rc = 0;

	for (j = 0; j < r->nt && rc == 0; j++) {
		struct tok *k = &r->t[j];
		struct station_vars v = {
			.serial = k->d.serial, .label = k->d.label, .n = k->n,
			.csv = r->have_csv ? &r->csv : NULL,
			.row = r->have_csv ? station_csv_row(&r->csv,
							     k->d.serial) : NULL,
		};
		char *subj = NULL, *label = NULL;

		if (!k->d.initialized) {
			struct station_vars b = { .serial = "", .label = "",
						  .n = k->n };

			rc = station_render(r->so.init_label, &b, &label);
			if (rc == 0)
				printf("slot %lu: blank: would be initialised "
				       "as '%s' (n=%ld)\n", k->d.slot_id, label,
				       k->n);
			free(label);
			continue;
		}
		rc = station_render(r->so.subject_tmpl, &v, &subj);
		if (rc == 0)
			printf("slot %lu: token %s (%s) n=%ld: %s\n", k->d.slot_id,
			       k->d.serial, k->d.label, k->n, subj);
		free(subj);
	}
	return rc;
}

static int run_tokens(struct run *r)
{
	struct station_pool *pool = NULL;
	struct station_found f;
	pid_t watcher = -1;
	int wfd = -1, rc, stopped = 0;
	long jobs;

	if (r->so.watch) {
		wfd = start_watcher(r, &watcher);
		if (wfd < 0)
			return wfd;
		jobs = r->so.jobs ? r->so.jobs : STATION_WATCH_JOBS;
		sa_info("watching for tokens; stop with ^C (SIGINT) or SIGTERM");
	} else {
		rc = station_scan_once(&r->so, &f);
		if (rc < 0)
			return rc;
		rc = merge(r, &f);
		station_found_clear(&f);
		if (rc < 0)
			return rc;
		if (r->nt == 0)
			return sa_fail_noossl(SA_ENOTFOUND, "no token %s%s%s; "
					      "see scep-agent list-tokens%s",
					      r->so.filter ? "matches " : "in "
					      "the slots of ", r->so.filter ?
					      r->so.filter : r->so.module,
					      r->so.init ? " (blank ones "
					      "included)" : "",
					      r->so.init ? "" : " (blank tokens "
					      "need --init)");
		if (r->so.list_only)
			return dry_run(r);
		jobs = r->so.jobs ? r->so.jobs : (long)r->nt;
		if (jobs > STATION_MAX_JOBS)
			jobs = STATION_MAX_JOBS;
	}
	rc = station_pool_new(&r->so, r->have_csv ? &r->csv : NULL, jobs, &pool);
	if (rc < 0)
		goto out;
	for (;;) {
		int extra = 0, sig = sa_intr_caught();

		if (sig && !stopped) {
			struct sigaction sa;

			stopped = sig;
			memset(&sa, 0, sizeof(sa));
			sa.sa_handler = on_second;
			sigaction(SIGINT, &sa, NULL);
			sigaction(SIGTERM, &sa, NULL);
			sa_info("stopped by %s: no new token is started; those "
				"in hand finish (a second signal stops them)",
				sa_intr_name(sig));
			not_started(r, sig);
		}
		if (second_stop == 1 || (stopped && second_stop)) {
			station_pool_stop(pool, SIGTERM);
			second_stop = 1; /* once */
		}
		if (!stopped) {
			rc = hand_out(r, pool);
			if (rc < 0)
				goto out;
		}
		if (station_pool_busy(pool) == 0 && (queued(r) == 0 || stopped)) {
			/*
			 * one scan without --watch: SoftHSM2 shows a new blank
			 * slot each time one is initialised, so looking again
			 * would never end
			 */
			if (stopped || !r->so.watch)
				break;
		}
		rc = station_pool_wait(pool, wfd, 1.0, &extra, on_result, r);
		if (rc < 0)
			goto out;
		if (extra && !stopped) {
			rc = watcher_input(r, wfd);
			if (rc < 0)
				goto out;
		}
	}
	rc = 0;
out:
	station_pool_free(pool);
	if (watcher > 0) {
		int st;

		kill(watcher, SIGKILL);
		while (waitpid(watcher, &st, 0) < 0 && errno == EINTR)
			;
	}
	if (wfd >= 0)
		close(wfd);
	return rc;
}

/* See station.h. */
int station_main(int argc, char **argv)
{
	struct run r;
	size_t i;
	int rc, help = 0, status = STATION_EXIT_OK;

	memset(&r, 0, sizeof(r));
	rc = station_opts_parse(argc, argv, &r.so, &help);
	if (rc < 0 || help)
		goto out;
	r.next_n = r.so.first;
	if (r.so.csv_path != NULL) {
		rc = station_csv_load(r.so.csv_path, &r.csv);
		if (rc < 0)
			goto out;
		r.have_csv = 1;
	}
	rc = station_tmpl_check(r.so.subject_tmpl, r.have_csv ? &r.csv : NULL,
				"--subject");
	for (i = 0; rc == 0 && i < r.so.n_san; i++)
		rc = station_tmpl_check(r.so.san_tmpl[i], r.have_csv ? &r.csv :
					NULL, "--san");
	if (rc == 0 && r.so.init)
		rc = station_tmpl_check(r.so.init_label, NULL, "--label");
	if (rc < 0)
		goto out;
	/* OpenSSL once, before the workers are forked: they inherit it */
	rc = scep_crypto_init();
	if (rc < 0)
		goto out;
	rc = run_tokens(&r);
	if (rc < 0 || r.so.list_only)
		goto out;
	station_out_summary(r.res, r.nres);
	for (i = 0; i < r.nres; i++) {
		if (r.res[i].state == ST_FAILED)
			status = STATION_EXIT_FAILED;
		else if (r.res[i].state == ST_PENDING &&
			 status == STATION_EXIT_OK)
			status = STATION_EXIT_PENDING;
	}
	if (r.so.report_path != NULL)
		rc = station_report_write(r.so.report_path, r.res, r.nres);
out:
	if (rc < 0) {
		sa_err("%s", *sa_errmsg() ? sa_errmsg() : sa_strerror(rc));
		status = rc == SA_ENOTFOUND ? SA_EXIT_KEY : sa_exit_code(rc);
	} else if (help) {
		status = 0;
	}
	if (sa_intr_caught() && status == STATION_EXIT_OK)
		status = 128 + sa_intr_caught();
	for (i = 0; i < r.nres; i++)
		station_result_clear(&r.res[i]);
	free(r.res);
	for (i = 0; i < r.nt; i++) {
		free(r.t[i].d.label);
		free(r.t[i].d.serial);
		free(r.t[i].d.manufacturer);
		free(r.t[i].d.model);
		free(r.t[i].d.uri);
	}
	free(r.t);
	station_csv_free(&r.csv);
	station_opts_free(&r.so);
	return status;
}

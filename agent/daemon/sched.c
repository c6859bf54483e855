/*
 * sched.c - check (one pass) and run (the daemon): the clock and network
 * waits before deciding anything, the loop that sleeps until the earliest
 * deadline (a realtime timerfd and a signalfd: no periodic wake-ups, a
 * clock step wakes it), SIGHUP reloading the profiles, SIGTERM/SIGINT
 * ending it after the current job.
 *
 * Signals: SIGTERM, SIGINT and SIGHUP are blocked while the scheduler
 * waits or decides, and read from a signalfd. While a job runs, SIGTERM
 * and SIGINT are unblocked: main's handlers (sa_intr) note them, job_run
 * passes SIGTERM on to the child and waits for it; SIGHUP stays blocked
 * and is read after the job.
 */
#include "daemon.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "sa_err.h"
#include "sa_intr.h"
#include "sa_log.h"

/* How long a locked profile is waited for before it is skipped. */
#define SCHED_LOCK_WAIT_MS 2000
/* Bounds of the start-up waits (seconds): the largest ClockWait or
 * NetworkWait of the profiles; these without profiles. */
#define SCHED_CLOCK_WAIT_CHECK 60
#define SCHED_CLOCK_WAIT_RUN 600
#define SCHED_NET_WAIT_CHECK 30
#define SCHED_NET_WAIT_RUN 120

static sigset_t sched_sigs;
static int sched_sfd = -1;
static int sched_hup; /* a SIGHUP came during a start-up wait */

/* Block TERM, INT, HUP and open the signalfd that reads them. */
static int sigs_open(void)
{
	sigemptyset(&sched_sigs);
	sigaddset(&sched_sigs, SIGTERM);
	sigaddset(&sched_sigs, SIGINT);
	sigaddset(&sched_sigs, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &sched_sigs, NULL) != 0)
		return sa_fail_noossl(SA_EINTERNAL, "sigprocmask: %s",
				      strerror(errno));
	sched_sfd = signalfd(-1, &sched_sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sched_sfd < 0)
		return sa_fail_noossl(SA_EINTERNAL, "signalfd: %s",
				      strerror(errno));
	return 0;
}

/*
 * Close the signalfd and unblock the signals again. Stopping: what is
 * still pending is read away first, and SIGHUP is ignored from here (which
 * also discards one that comes meanwhile): after the first stop signal
 * sa_intr's handlers are the default ones, and a SIGHUP that came while a
 * job ran and was stopped would otherwise kill the process as it returns
 * (run exits 0 on SIGTERM/SIGINT whatever else is pending; check keeps the
 * stop signal's 128+N).
 */
static void sigs_close(int stopping)
{
	struct signalfd_siginfo si;

	if (stopping) {
		while (sched_sfd >= 0 &&
		       read(sched_sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
			;
		signal(SIGHUP, SIG_IGN);
	}
	if (sched_sfd >= 0)
		close(sched_sfd);
	sched_sfd = -1;
	sigprocmask(SIG_UNBLOCK, &sched_sigs, NULL);
}

/* A signal already read or pending: its number, else 0. */
static int sig_take(void)
{
	struct signalfd_siginfo si;

	if (sa_intr_caught() != 0)
		return sa_intr_caught(); /* came while a job ran */
	if (read(sched_sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		return (int)si.ssi_signo;
	return 0;
}

/*
 * Sleep until the realtime `until` (0: forever) or a signal. Returns the
 * signal's number, or 0 at the deadline or when the clock was set (the
 * caller looks at the time again).
 */
static int sleep_until(time_t until)
{
	struct pollfd pf[2];
	struct itimerspec its;
	int tfd = -1, sig, n = 1;

	memset(&its, 0, sizeof(its));
	if (until != 0) {
		tfd = timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC | TFD_NONBLOCK);
		its.it_value.tv_sec = until > 0 ? until : 1;
		if (tfd >= 0 && timerfd_settime(tfd, TFD_TIMER_ABSTIME |
						TFD_TIMER_CANCEL_ON_SET,
						&its, NULL) != 0) {
			close(tfd);
			tfd = -1;
		}
		if (tfd < 0) {
			/* no timerfd: a plain bounded sleep */
			time_t left = until - time(NULL);
			struct timespec ts = { left > 0 ? left : 0, 0 };
			siginfo_t si;

			sig = sigtimedwait(&sched_sigs, &si, &ts);
			return sig > 0 ? sig : 0;
		}
		n = 2;
	}
	pf[0].fd = sched_sfd;
	pf[0].events = POLLIN;
	pf[1].fd = tfd;
	pf[1].events = POLLIN;
	while (poll(pf, (nfds_t)n, -1) < 0 && errno == EINTR)
		;
	sig = sig_take();
	if (tfd >= 0)
		close(tfd);
	return sig;
}

/* The largest ClockWait (clock) or NetworkWait of the profiles, or dflt. */
static long wait_bound(struct profile **list, int n, int clock, long dflt)
{
	long b = -1;
	int i;

	for (i = 0; i < n; i++) {
		long v = clock ? list[i]->clock_wait : list[i]->network_wait;

		if (v >= 0 && v > b)
			b = v;
	}
	return b >= 0 ? b : dflt;
}

/* The build's date (__DATE__, "Dec  1 2026"), a floor for a sane clock. */
static time_t build_time(void)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	const char *d = __DATE__;
	const char *m = strstr(months, (char[]){ d[0], d[1], d[2], 0 });
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_mon = m ? (int)((m - months) / 3) : 0;
	tm.tm_mday = atoi(d + 4);
	tm.tm_year = atoi(d + 7) - 1900;
	return timegm(&tm);
}

/* systemd's time-synchronised flag, where timesyncd keeps its state. */
static int timesync_missing(void)
{
	const char *dir = getenv("SCEP_AGENT_TIMESYNC_DIR");
	char flag[512];
	struct stat sb;

	if (dir == NULL)
		dir = "/run/systemd/timesync";
	if (stat(dir, &sb) != 0)
		return 0; /* no timesyncd here */
	snprintf(flag, sizeof(flag), "%s/synchronized", dir);
	return stat(flag, &sb) != 0;
}

/*
 * Wait until the clock is plausible: after the build date, and synced
 * where systemd-timesyncd runs. Bounded by max_s; forever (logging at
 * the bound) when forever is set. Returns 0, SA_EINTR on a stop signal,
 * SA_EUSAGE past the bound.
 */
static int clock_wait(long max_s, int forever, int *sig)
{
	time_t floor = build_time(), start = time(NULL);
	int said = 0, warned = 0;
	char now_s[32], floor_s[32];

	for (;;) {
		time_t now = time(NULL);
		int early = now < floor, unsynced = timesync_missing();

		if (!early && !unsynced)
			break;
		if (!said) {
			sa_info("waiting for the clock: it says %s%s (up to %ld s)",
				dtext_rfc3339(now, now_s, sizeof(now_s)),
				early ? ", before this program was built" :
				", and systemd has not synchronised it yet", max_s);
			said = 1;
			start = now < start ? now : start;
		}
		if (now - start >= max_s || now < start) {
			if (!forever)
				return sa_fail_noossl(SA_EUSAGE, "the clock is "
					"not plausible (%s, built %s%s) after "
					"%ld s: nothing decided; set the clock "
					"or start time synchronisation",
					dtext_rfc3339(now, now_s, sizeof(now_s)),
					dtext_rfc3339(floor, floor_s, sizeof(floor_s)),
					unsynced ? ", not synchronised" : "",
					max_s);
			if (!warned)
				sa_warn("the clock is still not plausible after "
					"%ld s; still waiting", max_s);
			warned = 1;
		}
		*sig = sleep_until(time(NULL) + 2);
		if (*sig == SIGHUP)
			sched_hup = 1;
		else if (*sig != 0)
			return SA_EINTR;
	}
	if (said)
		sa_info("the clock is plausible: %s",
			dtext_rfc3339(time(NULL), now_s, sizeof(now_s)));
	return 0;
}

/* A default route (IPv4 or IPv6, not on lo) exists. */
static int have_route(void)
{
	char line[512];
	FILE *f = fopen("/proc/net/route", "r");
	int found = 0;

	if (f != NULL) {
		while (!found && fgets(line, sizeof(line), f) != NULL) {
			char ifc[64];
			unsigned long dst, gw, flags;

			if (sscanf(line, "%63s %lx %lx %lx", ifc, &dst, &gw,
				   &flags) == 4 && dst == 0 && (flags & 1))
				found = 1;
		}
		fclose(f);
	}
	f = found ? NULL : fopen("/proc/net/ipv6_route", "r");
	if (f != NULL) {
		while (!found && fgets(line, sizeof(line), f) != NULL) {
			char dst[40], plen[8], ifc[64];

			if (sscanf(line, "%39s %7s %*s %*s %*s %*s %*s %*s %*s %63s",
				   dst, plen, ifc) == 3 &&
			    strcmp(plen, "00") == 0 && strcmp(ifc, "lo") != 0 &&
			    strspn(dst, "0") == 32)
				found = 1;
		}
		fclose(f);
	}
	return found;
}

/* The URL's host is a loopback address or name. */
static int url_loopback(const char *url)
{
	const char *h = url ? strstr(url, "://") : NULL;

	h = h ? h + 3 : url;
	if (h == NULL)
		return 0;
	if (strchr(h, '@') != NULL && strchr(h, '@') < h + strcspn(h, "/"))
		h = strchr(h, '@') + 1;
	return strncmp(h, "127.", 4) == 0 || strncmp(h, "[::1]", 5) == 0 ||
	       strncasecmp(h, "localhost", 9) == 0;
}

/* Wait (bounded) for a route to the profiles' CAs. Returns SA_EINTR on a
 * stop signal, else 0 (past the bound the jobs find out themselves). */
static int net_wait(struct profile **list, int n, long max_s, int *sig)
{
	time_t start = time(NULL);
	int i, all_lo = n > 0, said = 0;

	for (i = 0; i < n; i++)
		all_lo = all_lo && url_loopback(list[i]->o.s.url);
	while (!all_lo && !have_route()) {
		if (!said)
			sa_info("waiting for the network: no default route yet "
				"(up to %ld s)", max_s);
		said = 1;
		if (time(NULL) - start >= max_s) {
			sa_warn("still no default route after %ld s; going on",
				max_s);
			return 0;
		}
		*sig = sleep_until(time(NULL) + 1);
		if (*sig == SIGHUP)
			sched_hup = 1;
		else if (*sig != 0)
			return SA_EINTR;
	}
	if (said)
		sa_info("the network is up");
	return 0;
}

/* Each MetricsFile once, from the profiles that name it. */
static void metrics(struct profile **list, int n)
{
	int i, j;

	for (i = 0; i < n; i++) {
		const char *m = list[i]->metrics_file;
		int first = 1;

		if (m == NULL)
			continue;
		for (j = 0; j < i && first; j++)
			if (list[j]->metrics_file != NULL &&
			    strcmp(list[j]->metrics_file, m) == 0)
				first = 0;
		if (first && status_metrics(m, list, n) != 0) {
			sa_warn("cannot write MetricsFile %s: %s", m, sa_errmsg());
			sa_err_clear();
		}
	}
}

/* One job, with SIGTERM/SIGINT reaching main's handlers meanwhile. */
static enum pass_result one_pass(const struct profile *p, int force,
				 time_t *next)
{
	sigset_t stop;
	enum pass_result r;

	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_UNBLOCK, &stop, NULL);
	r = pass_profile(p, force, SCHED_LOCK_WAIT_MS, next);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	return r;
}

int sched_check(const struct daemon_opts *d)
{
	struct profile **list = NULL;
	int n = 0, bad = 0, i, rc, sig = 0, failed = 0, pending = 0;
	time_t next;

	rc = sigs_open();
	if (rc == 0)
		rc = profile_load_all(d->args, d->nargs, &list, &n, &bad);
	if (rc != 0) {
		sa_err("%s", *sa_errmsg() ? sa_errmsg() : sa_strerror(rc));
		sa_err_clear();
		sigs_close(0);
		return rc == SA_EUSAGE ? SA_EXIT_USAGE : SA_EXIT_ERROR;
	}
	if (n == 0 && bad == 0)
		sa_warn("no profiles in the arguments: nothing to check");
	rc = clock_wait(wait_bound(list, n, 1, SCHED_CLOCK_WAIT_CHECK), 0, &sig);
	if (rc == 0)
		rc = net_wait(list, n, wait_bound(list, n, 0, SCHED_NET_WAIT_CHECK),
			      &sig);
	if (rc == 0 && sched_hup) {
		sig = SIGHUP; /* a one-shot command: SIGHUP ends it too */
		rc = SA_EINTR;
	}
	for (i = 0; rc == 0 && i < n; i++) {
		switch (one_pass(list[i], d->force, &next)) {
		case PASS_OK: break;
		case PASS_PENDING: pending++; break;
		case PASS_SKIPPED: pending++; break; /* not done: try later */
		case PASS_FAILED: failed++; break;
		}
		sig = sig_take();
		if (sig != 0)
			rc = SA_EINTR; /* SIGHUP too: check is one-shot */
	}
	metrics(list, n);
	profile_list_free(list, n);
	sigs_close(rc == SA_EINTR);
	if (rc == SA_EINTR) {
		sa_info("stopped by %s", sa_intr_name(sig));
		return 128 + sig;
	}
	if (rc != 0) {
		sa_err("%s", sa_errmsg());
		sa_err_clear();
		return SA_EXIT_ERROR;
	}
	if (failed > 0 || bad > 0)
		return SA_EXIT_ERROR;
	return pending > 0 ? SA_EXIT_PENDING : SA_EXIT_OK;
}

/* (Re)load the profiles; on failure keep none and say so. */
static void load(const struct daemon_opts *d, struct profile ***list, int *n,
		 time_t **due)
{
	int bad = 0, rc, i;

	profile_list_free(*list, *n);
	free(*due);
	*list = NULL;
	*n = 0;
	*due = NULL;
	rc = profile_load_all(d->args, d->nargs, list, n, &bad);
	if (rc != 0) {
		sa_err("%s", *sa_errmsg() ? sa_errmsg() : sa_strerror(rc));
		sa_err_clear();
		*list = NULL;
		*n = 0;
	}
	if (*n > 0)
		*due = calloc((size_t)*n, sizeof(**due)); /* 0: due now */
	if (*n > 0 && *due == NULL) {
		sa_err("out of memory");
		profile_list_free(*list, *n);
		*list = NULL;
		*n = 0;
	}
	if (*n == 0)
		sa_info("no profiles%s; waiting for SIGHUP to load them again",
			bad ? " loaded" : " in the arguments");
	else
		sa_info("%d profile%s loaded%s", *n, *n == 1 ? "" : "s",
			bad ? " (some did not load; see above)" : "");
	for (i = 0; i < *n; i++)
		sa_verbose("profile %s: %s", (*list)[i]->name, (*list)[i]->path);
}

int sched_run(const struct daemon_opts *d)
{
	struct profile **list = NULL;
	time_t *due = NULL;
	int n = 0, i, rc, sig = 0, stop = 0;

	rc = sigs_open();
	if (rc != 0) {
		sa_err("%s", sa_errmsg());
		sa_err_clear();
		sigs_close(0);
		return SA_EXIT_ERROR;
	}
	sa_info("started (pid %ld)", (long)getpid());
	load(d, &list, &n, &due);
	rc = clock_wait(wait_bound(list, n, 1, SCHED_CLOCK_WAIT_RUN), 1, &sig);
	if (rc == 0)
		rc = net_wait(list, n, wait_bound(list, n, 0, SCHED_NET_WAIT_RUN),
			      &sig);
	stop = rc == SA_EINTR;
	if (!stop && sched_hup) {
		sa_info("SIGHUP: reloading the profiles");
		load(d, &list, &n, &due);
	}
	sched_hup = 0;
	while (!stop) {
		time_t now = time(NULL), earliest = 0;
		int ran = 0;

		for (i = 0; i < n && !stop; i++) {
			if (due[i] > now)
				continue;
			one_pass(list[i], 0, &due[i]);
			if (due[i] <= now)
				due[i] = now + 1; /* never a busy loop */
			ran = 1;
			sig = sig_take();
			if (sig == SIGTERM || sig == SIGINT)
				stop = 1;
			else if (sig == SIGHUP)
				break;
			now = time(NULL);
		}
		if (ran && !stop)
			metrics(list, n);
		if (!stop && sig != SIGHUP) {
			for (i = 0; i < n; i++)
				if (earliest == 0 || due[i] < earliest)
					earliest = due[i];
			if (earliest == 0 || earliest > time(NULL))
				sig = sleep_until(earliest);
			if (sig == SIGTERM || sig == SIGINT)
				stop = 1;
		}
		if (sig == SIGHUP) {
			sa_info("SIGHUP: reloading the profiles");
			load(d, &list, &n, &due);
			sig = 0;
		}
	}
	sa_info("stopping on %s", sa_intr_name(sig));
	profile_list_free(list, n);
	free(due);
	sigs_close(1);
	return SA_EXIT_OK;
}

/*
 * test_sa_intr.c - stop requests (agent/util/sa_intr.c): a stop signal
 * that arrives before a wait, or during it, ends the wait; none is lost.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sa_intr.h"
#include "tap.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* In a child: install, run BODY's scenario, exit with a code the parent checks. */
static int in_child(int (*body)(void))
{
	pid_t pid = fork();
	int st = 0;

	if (pid == 0)
		_exit(body());
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

/* no signal: the full sleep, 0 left */
static int quiet(void)
{
	sa_intr_install();
	if (sa_intr_caught() != 0)
		return 1;
	return sa_intr_sleep(1) == 0 ? 0 : 2;
}

/* a signal that came before the wait (the reply was being processed) */
static int before(void)
{
	unsigned left;

	sa_intr_install();
	raise(SIGTERM);
	if (sa_intr_caught() != SIGTERM)
		return 1;
	left = sa_intr_sleep(30);
	return left >= 29 ? 0 : 2;
}

/* a signal during the wait, from another process */
static int during(void)
{
	pid_t me = getpid(), k;
	unsigned left;

	sa_intr_install();
	k = fork();
	if (k == 0) {
		usleep(200 * 1000);
		kill(me, SIGHUP);
		_exit(0);
	}
	left = sa_intr_sleep(30);
	waitpid(k, NULL, 0);
	if (sa_intr_caught() != SIGHUP)
		return 1;
	return left >= 1 && left <= 30 ? 0 : 2;
}

/* the first signal asks, the second one kills */
static int twice(void)
{
	sa_intr_install();
	raise(SIGINT);
	raise(SIGINT);
	return 3; /* not reached */
}

/* ignored at start (nohup): stays ignored, the wait goes on */
static int ignored(void)
{
	signal(SIGHUP, SIG_IGN);
	sa_intr_install();
	raise(SIGHUP);
	if (sa_intr_caught() != 0)
		return 1;
	return sa_intr_sleep(1) == 0 ? 0 : 2;
}

/* a prompt's wait: data ready -> 0; a stop before the wait -> 1 at once */
static int prompt_wait(void)
{
	int fds[2];

	sa_intr_install();
	if (pipe(fds) != 0)
		return 9;
	if (write(fds[1], "x", 1) != 1 || sa_intr_wait_readable(fds[0]) != 0)
		return 1;
	{
		char c;

		if (read(fds[0], &c, 1) != 1)
			return 9;
	}
	raise(SIGINT); /* nothing to read: only the stop can end the wait */
	return sa_intr_wait_readable(fds[0]) == 1 ? 0 : 2;
}

/* the second stop signal kills even when it is another one */
static int twice_other(void)
{
	sa_intr_install();
	raise(SIGINT);
	raise(SIGTERM);
	return 3; /* not reached */
}

/* a signal handled by another thread still ends the wait (within 1 s) */
static void *send_from_thread(void *arg)
{
	sigset_t none;

	(void)arg;
	sigemptyset(&none);
	pthread_sigmask(SIG_SETMASK, &none, NULL);
	usleep(200 * 1000);
	raise(SIGTERM); /* raise() in a thread: delivered to this thread */
	return NULL;
}

static int other_thread(void)
{
	pthread_t t;
	unsigned left;

	sa_intr_install();
	if (pthread_create(&t, NULL, send_from_thread, NULL) != 0)
		return 9;
	left = sa_intr_sleep(30);
	pthread_join(t, NULL);
	return sa_intr_caught() == SIGTERM && left >= 25 ? 0 : 1;
}

/* zero seconds: no wait at all, also when stopped */
static int zero(void)
{
	sa_intr_install();
	if (sa_intr_sleep(0) != 0)
		return 1;
	raise(SIGTERM);
	return sa_intr_sleep(0) >= 1 ? 0 : 2;
}

int main(void)
{
	double t0;

	t0 = now_s();
	is_int(in_child(quiet), 0, "no signal: the whole sleep, nothing left");
	ok(now_s() - t0 >= 0.9, "and it did sleep");
	t0 = now_s();
	is_int(in_child(before), 0, "a SIGTERM before the wait is not lost: "
	       "the wait returns at once with the seconds left");
	ok(now_s() - t0 < 25, "and does not sleep the 30 s");
	is_int(in_child(during), 0, "a SIGHUP during the wait ends it");
	is_int(in_child(twice), 100 + SIGINT, "a second SIGINT kills");
	is_int(in_child(twice_other), 100 + SIGTERM, "SIGTERM after SIGINT kills too");
	is_int(in_child(other_thread), 0, "a stop signal handled by another thread ends the wait");
	is_int(in_child(ignored), 0, "a SIGHUP ignored at start (nohup) stays ignored");
	is_int(in_child(prompt_wait), 0, "a prompt's wait: returns for input, "
	       "and at once for a stop that came before it");
	is_int(in_child(zero), 0, "sleep(0) returns 0, or 1 once stopped");
	is_str(sa_intr_name(SIGTERM), "SIGTERM", "signal names for messages");
	return tap_done();
}

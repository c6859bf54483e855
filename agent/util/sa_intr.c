/*
 * sa_intr.c - stop requests; see sa_intr.h.
 */
#include "sa_intr.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t caught;
static const int stop_sigs[] = { SIGINT, SIGTERM, SIGHUP };
#define N_STOP_SIGS (sizeof(stop_sigs) / sizeof(stop_sigs[0]))

static void on_signal(int sig)
{
	size_t i;

	caught = sig;
	/* the second stop signal, whichever it is, kills (an ignored one stays ignored) */
	for (i = 0; i < N_STOP_SIGS; i++) {
		struct sigaction cur;

		if (sigaction(stop_sigs[i], NULL, &cur) == 0 &&
		    cur.sa_handler == on_signal)
			signal(stop_sigs[i], SIG_DFL);
	}
}

void sa_intr_install(void)
{
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: blocking calls return EINTR */
	for (i = 0; i < N_STOP_SIGS; i++) {
		struct sigaction old;

		/* one ignored by whoever started us (nohup) stays ignored */
		if (sigaction(stop_sigs[i], NULL, &old) == 0 &&
		    old.sa_handler == SIG_IGN)
			continue;
		sigaction(stop_sigs[i], &sa, NULL);
	}
}

int sa_intr_caught(void)
{
	return caught;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Block the stop signals (the previous mask into *old): from here one
 * stays pending until a ppoll with *old unblocks it, so checking the flag
 * and then waiting cannot miss it.
 */
static void block_stops(sigset_t *old)
{
	sigset_t stop;
	size_t i;

	sigemptyset(&stop);
	for (i = 0; i < N_STOP_SIGS; i++)
		sigaddset(&stop, stop_sigs[i]);
	sigprocmask(SIG_BLOCK, &stop, old);
}

unsigned sa_intr_sleep(unsigned seconds)
{
	sigset_t old;
	double end = now_s() + (double)seconds;

	block_stops(&old);
	for (;;) {
		double left = end - now_s();
		struct timespec ts;

		if (caught || left <= 0)
			break;
		/*
		 * At most a second at a time: a signal that another thread
		 * (a module's, curl's resolver) handled does not wake this
		 * ppoll, but the flag is seen within a second.
		 */
		if (left > 1)
			left = 1;
		ts.tv_sec = (time_t)left;
		ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
		if (ppoll(NULL, 0, &ts, &old) < 0 && errno != EINTR)
			break;
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (caught) {
		double left = end - now_s();
		unsigned up = left > 0 ? (unsigned)left : 0;

		if ((double)up < left)
			up++; /* whole seconds, rounded up */
		return up > 0 ? up : 1;
	}
	return 0;
}

int sa_intr_wait_readable(int fd)
{
	sigset_t old;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int r = 0;

	block_stops(&old);
	while (!caught) {
		struct timespec second = { 1, 0 }; /* see sa_intr_sleep() */

		r = ppoll(&pfd, 1, &second, &old);
		if (r > 0 || (r < 0 && errno != EINTR))
			break;
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	return caught ? 1 : 0;
}

const char *sa_intr_name(int sig)
{
	switch (sig) {
	case SIGINT: return "SIGINT";
	case SIGTERM: return "SIGTERM";
	case SIGHUP: return "SIGHUP";
	}
	return "a signal";
}

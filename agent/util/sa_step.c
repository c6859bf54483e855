/*
 * sa_step.c - the test hook SCEP_AGENT_TEST_STOP (see sa_step.h).
 */
#include "sa_step.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STOP_VAR "SCEP_AGENT_TEST_STOP"

/* One line on stderr, then SIGKILL: nothing runs after it (no atexit). */
static void stop(const char *what)
{
	static const char head[] = "scep-agent: " STOP_VAR ": stopped at step ";
	ssize_t n;

	n = write(STDERR_FILENO, head, sizeof(head) - 1);
	n = write(STDERR_FILENO, what, strlen(what));
	n = write(STDERR_FILENO, "\n", 1);
	(void)n;
	kill(getpid(), SIGKILL);
	/* not reached: SIGKILL cannot be caught, blocked or ignored */
	abort();
}

static sa_step_fn *observer;

void sa_step_observe(sa_step_fn *fn)
{
	observer = fn;
}

void sa_step(const char *name)
{
	const char *want = getenv(STOP_VAR);

	if (observer != NULL && name != NULL)
		observer(name);

	if (want != NULL && name != NULL && strcmp(want, name) == 0)
		stop(want);
}

void sa_step_file(const char *name, const char *path)
{
	const char *want = getenv(STOP_VAR), *base;
	size_t n;

	if (observer != NULL && name != NULL)
		observer(name);
	if (want == NULL || name == NULL || path == NULL)
		return;
	n = strlen(name);
	if (strncmp(want, name, n) != 0)
		return;
	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (want[n] == '\0' || (want[n] == ':' && strcmp(want + n + 1, base) == 0))
		stop(want);
}

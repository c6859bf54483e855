/*
 * Unit tests for agent/daemon/hooks.c: the SCEP_AGENT_* environment (and
 * what is not passed on), exit statuses, stdin /dev/null, stdout to our
 * stderr, a process group of its own, the timeout killing the group.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hooks.h"
#include "sa_err.h"
#include "sa_log.h"
#include "tap.h"

static char dir[256];

static char *slurp(const char *name)
{
	static char buf[8192];
	char path[512];
	size_t n = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	buf[0] = '\0';
	fp = fopen(path, "r");
	if (fp != NULL) {
		n = fread(buf, 1, sizeof(buf) - 1, fp);
		fclose(fp);
	}
	buf[n] = '\0';
	return buf;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_env(void)
{
	static const char *const drop[] = { "SA_TEST_PIN", NULL };
	struct hook_env e = {
		.profile = "gw", .serial = "0a1b", .cert = "/s/0a1b.crt",
		.not_after = "2027-01-01T00:00:00Z",
		.key = "pkcs11:token=t;object=k", .drop_env = drop,
	};
	char cmd[1200], *env;

	setenv("SCEP_AGENT_ERROR", "stale from our environment", 1);
	setenv("SA_TEST_PIN", "1234", 1);
	setenv("SA_TEST_KEEP", "kept", 1);
	snprintf(cmd, sizeof(cmd), "env | grep -e ^SCEP_AGENT_ -e ^SA_TEST_ "
		 "| sort > '%s/env'", dir);
	is_int(hook_run("HookSuccess", cmd, 10, &e), 0, "success hook ran");
	env = slurp("env");
	is_str(env, "SA_TEST_KEEP=kept\n"
	       "SCEP_AGENT_CERT=/s/0a1b.crt\n"
	       "SCEP_AGENT_KEY=pkcs11:token=t;object=k\n"
	       "SCEP_AGENT_NOTAFTER=2027-01-01T00:00:00Z\n"
	       "SCEP_AGENT_PROFILE=gw\n"
	       "SCEP_AGENT_SERIAL=0a1b\n",
	       "the documented variables; no stale SCEP_AGENT_ERROR, no PIN");

	e.serial = e.cert = e.not_after = NULL;
	e.error = "CA refused: badRequest";
	is_int(hook_run("HookFailure", cmd, 10, &e), 0, "failure hook ran");
	env = slurp("env");
	is_str(env, "SA_TEST_KEEP=kept\n"
	       "SCEP_AGENT_ERROR=CA refused: badRequest\n"
	       "SCEP_AGENT_KEY=pkcs11:token=t;object=k\n"
	       "SCEP_AGENT_PROFILE=gw\n",
	       "failure: SCEP_AGENT_ERROR, unset fields absent");
	unsetenv("SCEP_AGENT_ERROR");
	unsetenv("SA_TEST_PIN");
}

static void test_status(void)
{
	struct hook_env e = { .profile = "p" };
	char cmd[1200];
	int fd;

	is_int(hook_run("HookSuccess", NULL, 10, &e), 0, "no hook: 0");
	is_int(hook_run("HookSuccess", "", 10, &e), 0, "empty hook: 0");
	is_int(hook_run("HookFailure", "exit 3", 10, &e), 3, "exit status 3");
	is_int(hook_run("HookFailure", "kill -USR1 $$", 10, &e), 128 + SIGUSR1,
	       "killed by a signal: 128+N");
	is_int(hook_run("HookFailure", "/nonexistent/cmd", 10, &e), 127,
	       "a command that does not exist: 127");
	is_int(hook_run("HookSuccess", "true", 10, NULL), 0, "no environment");

	/* stdin is /dev/null: read sees EOF at once */
	snprintf(cmd, sizeof(cmd), "read x; echo \"read=$?\" > '%s/stdin'", dir);
	is_int(hook_run("HookSuccess", cmd, 10, &e), 0, "reads stdin");
	is_str(slurp("stdin"), "read=1\n", "stdin is /dev/null (EOF)");

	/* its own process group */
	snprintf(cmd, sizeof(cmd), "echo $$ $(cut -d' ' -f5 /proc/$$/stat) > "
		 "'%s/pg'", dir);
	is_int(hook_run("HookSuccess", cmd, 10, &e), 0, "process group hook");
	{
		long a = -1, b = -2;

		sscanf(slurp("pg"), "%ld %ld", &a, &b);
		ok(a == b && a != (long)getpgrp(), "a process group of its own "
		   "(%ld, %ld)", a, b);
	}

	/* no descriptor of ours but 0, 1, 2 */
	fd = open("/dev/null", O_RDONLY); /* not close-on-exec */
	ok(fd >= 0 && dup2(fd, 50) == 50, "descriptor 50 open in the daemon");
	snprintf(cmd, sizeof(cmd), "if [ -e /proc/$$/fd/50 ]; then echo leaked; "
		 "else echo closed; fi > '%s/fds'; [ -e /proc/$$/fd/2 ] && "
		 "echo 2-open >> '%s/fds'", dir, dir);
	is_int(hook_run("HookSuccess", cmd, 10, &e), 0, "fd hook");
	is_str(slurp("fds"), "closed\n2-open\n", "not passed to the hook");
	close(50);
	close(fd);

	/* stdout and stderr go to our stderr */
	{
		char path[512];
		int saved = dup(2), f;

		snprintf(path, sizeof(path), "%s/stderr", dir);
		f = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		fflush(stderr);
		dup2(f, 2);
		close(f);
		sa_log_set_level(-1);
		is_int(hook_run("HookSuccess", "echo to-stdout; echo to-stderr >&2",
				10, &e), 0, "output hook");
		sa_log_set_level(SA_LOG_ERR);
		fflush(stderr);
		dup2(saved, 2);
		close(saved);
		is_str(slurp("stderr"), "to-stdout\nto-stderr\n",
		       "both to our stderr (the journal)");
	}
}

static void test_timeout(void)
{
	struct hook_env e = { .profile = "slow" };
	char cmd[1200], st[64], path[512];
	double t0, dt;
	long bg = 0;
	FILE *fp;
	int rc;

	/* the group is killed: the shell and what it left in the background */
	snprintf(cmd, sizeof(cmd), "sleep 30 & echo $! > '%s/bg'; sleep 30", dir);
	t0 = now();
	rc = hook_run("HookSuccess", cmd, 1, &e);
	dt = now() - t0;
	is_int(rc, 128 + SIGTERM, "timed out: SIGTERM, 128+15");
	ok(dt >= 0.9 && dt < 5, "after about 1 s (%.2f s)", dt);
	sscanf(slurp("bg"), "%ld", &bg);
	ok(bg > 0, "background pid %ld", bg);
	usleep(200000);
	snprintf(path, sizeof(path), "/proc/%ld/stat", bg);
	st[0] = '\0';
	fp = fopen(path, "r");
	if (fp != NULL) {
		/* a zombie nobody reaped yet counts as dead */
		if (fscanf(fp, "%*d %*s %63s", st) != 1)
			st[0] = '\0';
		fclose(fp);
	}
	ok(fp == NULL || strcmp(st, "Z") == 0,
	   "the background process of the group was killed too");

	/* a hook that ignores SIGTERM gets SIGKILL */
	t0 = now();
	rc = hook_run("HookFailure", "trap '' TERM; sleep 30; sleep 30", 1, &e);
	dt = now() - t0;
	is_int(rc, 128 + SIGKILL, "SIGTERM ignored: SIGKILL, 128+9");
	ok(dt >= 2.9 && dt < 7, "after the timeout and the grace (%.2f s)", dt);
}

int main(void)
{
	char cmd[300];

	sa_log_init("test_daemon_hooks", SA_LOG_ERR, 0);
	snprintf(dir, sizeof(dir), "%s/sa-hooks-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(dir) == NULL)
		return 99;
	test_env();
	test_status();
	test_timeout();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("could not remove %s", dir);
	return tap_done();
}

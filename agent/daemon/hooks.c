/*
 * hooks.c - HookSuccess / HookFailure: a shell command in a process group
 * of its own, with the SCEP_AGENT_* environment and a bounded run time.
 */
#include "hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sa_err.h"
#include "sa_log.h"

#define HOOK_SHELL "/bin/sh"
#define HOOK_GRACE_MS 2000 /* SIGTERM to SIGKILL */
#define HOOK_PREFIX "SCEP_AGENT_"

extern char **environ;

/* Does the entry "NAME=value" name one of names? */
static int named(const char *entry, const char *const *names)
{
	size_t n;

	for (; names != NULL && *names != NULL; names++) {
		n = strlen(*names);
		if (strncmp(entry, *names, n) == 0 && entry[n] == '=')
			return 1;
	}
	return 0;
}

static void env_free(char **envp)
{
	char **e;

	if (envp == NULL)
		return;
	for (e = envp; *e != NULL; e++)
		free(*e);
	free(envp);
}

/* The hook's environment (built before fork: no malloc in the child). */
static char **env_build(const struct hook_env *he)
{
	const struct { const char *name, *value; } ours[] = {
		{ HOOK_PREFIX "PROFILE", he->profile },
		{ HOOK_PREFIX "SERIAL", he->serial },
		{ HOOK_PREFIX "CERT", he->cert },
		{ HOOK_PREFIX "NOTAFTER", he->not_after },
		{ HOOK_PREFIX "KEY", he->key },
		{ HOOK_PREFIX "ERROR", he->error },
	};
	size_t n = 0, i, k = 0;
	char **envp;

	while (environ != NULL && environ[n] != NULL)
		n++;
	envp = calloc(n + sizeof(ours) / sizeof(ours[0]) + 1, sizeof(*envp));
	if (envp == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if (strncmp(environ[i], HOOK_PREFIX, strlen(HOOK_PREFIX)) == 0 ||
		    named(environ[i], he->drop_env))
			continue;
		if ((envp[k++] = strdup(environ[i])) == NULL)
			goto oom;
	}
	for (i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
		if (ours[i].value == NULL)
			continue;
		if (asprintf(&envp[k], "%s=%s", ours[i].name,
			     ours[i].value) < 0) {
			envp[k] = NULL;
			goto oom;
		}
		k++;
	}
	return envp;
oom:
	env_free(envp);
	return NULL;
}

/* In the child, before exec: only async-signal-safe calls. */
static void child(const char *cmd, char **envp)
{
	char *const argv[] = { "sh", "-c", (char *)cmd, NULL };
	sigset_t none;
	int sig, fd;

	(void)setpgid(0, 0);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	for (sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)signal(sig, SIG_DFL);
	fd = open("/dev/null", O_RDONLY);
	if (fd < 0 || dup2(fd, 0) < 0 || dup2(2, 1) < 0)
		_exit(127);
	if (fd > 2)
		(void)close(fd);
	if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0)
		for (fd = 3; fd < 1024; fd++)
			(void)close(fd);
	execve(HOOK_SHELL, argv, envp);
	_exit(127);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/*
 * Wait for pid until deadline (ms, CLOCK_MONOTONIC; < 0: none). 1 with
 * *status when it ended, 0 at the deadline, -1 on error.
 */
static int wait_until(pid_t pid, int pidfd, long deadline, int *status)
{
	struct pollfd pfd;
	long left;
	pid_t r;

	for (;;) {
		r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
		left = deadline < 0 ? 1000 : deadline - now_ms();
		if (left <= 0)
			return 0;
		if (pidfd >= 0) {
			pfd.fd = pidfd;
			pfd.events = POLLIN;
			(void)poll(&pfd, 1, deadline < 0 ? -1 : (int)left);
		} else {
			/* no pidfd (old kernel): look again soon */
			struct timespec ts = { 0, 20 * 1000000L };

			if (left < 20)
				ts.tv_nsec = left * 1000000L;
			nanosleep(&ts, NULL);
		}
	}
}

int hook_run(const char *what, const char *cmd, long timeout_s,
	     const struct hook_env *env)
{
	const char *prof = env != NULL && env->profile ? env->profile : "?";
	struct hook_env none;
	char **envp = NULL;
	int pidfd = -1, status = 0, timed_out = 0, r, rc;
	long deadline;
	pid_t pid;

	if (cmd == NULL || cmd[0] == '\0')
		return 0;
	if (env == NULL) {
		memset(&none, 0, sizeof(none));
		env = &none;
	}
	envp = env_build(env);
	if (envp == NULL) {
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		sa_err("profile %s: %s not run: out of memory", prof, what);
		goto out;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		rc = sa_fail_noossl(SA_EINTERNAL, "profile %s: cannot start %s: "
				    "fork: %s", prof, what, strerror(errno));
		sa_err("%s", sa_errmsg());
		goto out;
	}
	if (pid == 0)
		child(cmd, envp);
	(void)setpgid(pid, pid); /* either of us may win the race */
	sa_verbose("profile %s: %s started (pid %ld)", prof, what, (long)pid);
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	deadline = timeout_s > 0 ? now_ms() + timeout_s * 1000L : -1;
	r = wait_until(pid, pidfd, deadline, &status);
	if (r == 0) {
		timed_out = 1;
		(void)kill(-pid, SIGTERM);
		r = wait_until(pid, pidfd, now_ms() + HOOK_GRACE_MS, &status);
		(void)kill(-pid, SIGKILL); /* the rest of the group too */
		if (r == 0)
			r = wait_until(pid, pidfd, -1, &status);
	}
	if (r < 0) {
		rc = sa_fail_noossl(SA_EINTERNAL, "profile %s: cannot wait for "
				    "%s: %s", prof, what, strerror(errno));
		sa_err("%s", sa_errmsg());
		goto out;
	}
	if (WIFEXITED(status))
		rc = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		rc = 128 + WTERMSIG(status);
	else
		rc = 255;
	if (timed_out)
		sa_warn("profile %s: %s did not finish within %ld s: its process "
			"group was killed (status %d); going on", prof, what,
			timeout_s, rc);
	else if (rc == 127)
		sa_warn("profile %s: %s exited with status 127 (command not "
			"found?); going on", prof, what);
	else if (WIFSIGNALED(status))
		sa_warn("profile %s: %s was killed by signal %d; going on", prof,
			what, WTERMSIG(status));
	else if (rc != 0)
		sa_warn("profile %s: %s exited with status %d; going on", prof,
			what, rc);
	else
		sa_info("profile %s: %s exited with status 0", prof, what);
out:
	if (pidfd >= 0)
		close(pidfd);
	env_free(envp);
	return rc;
}

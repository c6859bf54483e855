/*
 * hooks.h - HookSuccess/HookFailure: /bin/sh -c CMD with a timeout and the
 * SCEP_AGENT_* environment. The exit status is logged, never fatal.
 */
#ifndef HOOKS_H
#define HOOKS_H

struct hook_env {
	const char *profile;   /* SCEP_AGENT_PROFILE */
	const char *serial;    /* SCEP_AGENT_SERIAL, lowercase hex */
	const char *cert;      /* SCEP_AGENT_CERT, path */
	const char *not_after; /* SCEP_AGENT_NOTAFTER, RFC 3339 */
	const char *key;       /* SCEP_AGENT_KEY, URI without PIN */
	const char *error;     /* SCEP_AGENT_ERROR (failure hook) */
	/* names of variables of this process not passed on (NULL-ended;
	 * PinEnv, ChallengePasswordEnv: secrets stay here), or NULL */
	const char *const *drop_env;
};

/*
 * Run cmd (NULL or "": nothing, 0) as /bin/sh -c cmd in a process group
 * of its own: stdin /dev/null, stdout and stderr to our stderr (the
 * journal), no other descriptor, default signal handling, the
 * environment of this process without SCEP_AGENT_* and drop_env, plus
 * env's SCEP_AGENT_* (a NULL field: not set). Past timeout_s seconds
 * (<= 0: no bound) the group gets SIGTERM, and SIGKILL 2 s later.
 * Returns its exit status (0..255), 128+signal when killed or timed out,
 * or a negative SA_E* when it could not start; every outcome is logged
 * (sa_log) with the profile's name and what ("HookSuccess"); none is
 * fatal to the caller.
 */
int hook_run(const char *what, const char *cmd, long timeout_s,
	     const struct hook_env *env);

#endif

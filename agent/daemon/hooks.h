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
};

/*
 * Run cmd (NULL: nothing) with env; kill its process group after
 * timeout_s seconds. Returns its exit status (0..255), 128+signal when
 * killed or timed out, or a negative SA_E* when it could not start;
 * every outcome is logged with the profile's name.
 */
int hook_run(const char *what, const char *cmd, long timeout_s,
	     const struct hook_env *env);

#endif

/*
 * sa_step.h - a hook for tests only: stop the process at a named step.
 *
 * With SCEP_AGENT_TEST_STOP=STEP in the environment, the process kills
 * itself with SIGKILL when it reaches STEP, as a power cut or the OOM
 * killer would, so that tests can prove every step leaves a state the
 * retry completes (tests/integration/server_killsteps.sh and
 * softhsm_killsteps.sh). It never does anything else: unset, or naming
 * another step, the calls cost one getenv(). The steps are listed in docs/architecture.md ("Steps").
 */
#ifndef SA_STEP_H
#define SA_STEP_H

/* Stop here if SCEP_AGENT_TEST_STOP is NAME. */
void sa_step(const char *name);

/*
 * The same for a step about a file: stop if SCEP_AGENT_TEST_STOP is NAME
 * (the first file of the run to reach it) or NAME:BASENAME (that file).
 */
void sa_step_file(const char *name, const char *path);

/*
 * Someone to tell of every step reached, before the stop check (NULL:
 * nobody): the daemon's job child passes its progress to the scheduler
 * this way, so that a child that dies is known to have sent its request
 * or not. fn must be async-signal-safe enough to run anywhere (a write).
 */
typedef void sa_step_fn(const char *name);
void sa_step_observe(sa_step_fn *fn);

#endif

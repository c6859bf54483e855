/*
 * daemon.c - the command lines of run, check and status: options,
 * logging set-up, and the exit code handed back to main().
 */
#include "daemon.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "sa_err.h"
#include "sa_log.h"

#define DAEMON_WARN_DEFAULT (7L * 86400)

int daemon_is_command(const char *name)
{
	return name != NULL && (strcmp(name, "run") == 0 ||
				strcmp(name, "check") == 0 ||
				strcmp(name, "status") == 0);
}

static void usage(FILE *fp, const char *cmd)
{
	if (strcmp(cmd, "run") == 0)
		fprintf(fp, "Usage: scep-agent run [--syslog] [-v|-d] PROFILE...\n"
			"  PROFILE: a profile file, or a directory of *.conf "
			"profiles\n");
	else if (strcmp(cmd, "check") == 0)
		fprintf(fp, "Usage: scep-agent check [--force] [-v|-d] PROFILE...\n"
			"  exit 0 all fine, 3 some pending, 1 any failed\n");
	else
		fprintf(fp, "Usage: scep-agent status [--json] [--warn DURATION] "
			"PROFILE...\n"
			"  exit 0 all ok, 1 any failed or expiring within "
			"--warn (default 7d)\n");
}

enum { LO_FORCE = 256, LO_JSON, LO_WARN, LO_SYSLOG, LO_HELP };

int daemon_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "force", no_argument, NULL, LO_FORCE },
		{ "json", no_argument, NULL, LO_JSON },
		{ "warn", required_argument, NULL, LO_WARN },
		{ "syslog", no_argument, NULL, LO_SYSLOG },
		{ "verbose", no_argument, NULL, 'v' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, LO_HELP },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = argv[1];
	struct daemon_opts d;
	int c, level = SA_LOG_INFO;

	memset(&d, 0, sizeof(d));
	d.warn_s = DAEMON_WARN_DEFAULT;
	opterr = 0;
	optind = 2;
	while ((c = getopt_long(argc, argv, ":vdh", lo, NULL)) != -1) {
		int ok = 1;

		switch (c) {
		case LO_FORCE: ok = strcmp(cmd, "check") == 0; d.force = 1; break;
		case LO_JSON: ok = strcmp(cmd, "status") == 0; d.json = 1; break;
		case LO_WARN:
			ok = strcmp(cmd, "status") == 0;
			if (ok && (dtext_duration(optarg, &d.warn_s) != 0)) {
				sa_err("status: --warn: %s", sa_errmsg());
				sa_err_clear();
				return SA_EXIT_USAGE;
			}
			break;
		case LO_SYSLOG: ok = strcmp(cmd, "run") == 0; d.use_syslog = 1; break;
		case 'v': level = SA_LOG_VERBOSE; break;
		case 'd': level = SA_LOG_DEBUG; break;
		case 'h':
		case LO_HELP:
			usage(stdout, cmd);
			return SA_EXIT_OK;
		default:
			sa_err("%s: %s %s; see scep-agent %s --help", cmd,
			       c == ':' ? "missing argument for" : "unknown option",
			       argv[optind - 1], cmd);
			return SA_EXIT_USAGE;
		}
		if (!ok) {
			sa_err("%s: %s is not an option of %s; see scep-agent %s "
			       "--help", cmd, argv[optind - 1], cmd, cmd);
			return SA_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		sa_err("%s: no profile given: name profile files or directories "
		       "of *.conf profiles", cmd);
		usage(stderr, cmd);
		return SA_EXIT_USAGE;
	}
	d.args = argv + optind;
	d.nargs = argc - optind;
	sa_log_init(NULL, level, d.use_syslog);
	if (strcmp(cmd, "run") == 0)
		return sched_run(&d);
	if (strcmp(cmd, "check") == 0)
		return sched_check(&d);
	return status_main(&d);
}

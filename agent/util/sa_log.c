#include "sa_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

static const char *prog = "scep-agent";
static int threshold = SA_LOG_INFO;
static int to_syslog;

void sa_log_init(const char *progname, int level, int use_syslog)
{
	if (progname != NULL)
		prog = progname;
	threshold = level;
	to_syslog = use_syslog;
	if (to_syslog)
		openlog(prog, LOG_PID, LOG_DAEMON);
}

void sa_log_set_level(int level)
{
	threshold = level;
}

int sa_log_level(void)
{
	return threshold;
}

void sa_log(int level, const char *fmt, ...)
{
	va_list ap;

	if (level > threshold)
		return;
	va_start(ap, fmt);
	if (to_syslog) {
		static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_NOTICE,
					    LOG_INFO, LOG_DEBUG };
		vsyslog(prio[level < 0 ? 0 : level > 4 ? 4 : level], fmt, ap);
	} else {
		fprintf(stderr, "%s: ", prog);
		if (level == SA_LOG_WARN)
			fputs("warning: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}

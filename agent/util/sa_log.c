#include "sa_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

static const char *prog = "scep-agent";
static int threshold = SA_LOG_INFO;
static int to_syslog;
static char prefix[160];

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

void sa_log_set_prefix(const char *p)
{
	size_t i;

	if (p == NULL) {
		prefix[0] = '\0';
		return;
	}
	snprintf(prefix, sizeof(prefix), "%s: ", p);
	for (i = 0; prefix[i] != '\0'; i++)
		if ((unsigned char)prefix[i] < 0x20 || prefix[i] == 0x7f)
			prefix[i] = '?';
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
		int pr = prio[level < 0 ? 0 : level > 4 ? 4 : level];

		if (prefix[0] != '\0') {
			char msg[2400];

			vsnprintf(msg, sizeof(msg), fmt, ap);
			syslog(pr, "%s%s", prefix, msg);
		} else {
			vsyslog(pr, fmt, ap);
		}
	} else {
		fprintf(stderr, "%s: %s", prog, prefix);
		if (level == SA_LOG_WARN)
			fputs("warning: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}

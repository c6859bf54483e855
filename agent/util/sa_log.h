/*
 * sa_log.h - the one logging header. Levels, printf-checked, stderr or
 * syslog chosen at start-up. Never pass PINs or challenge passwords.
 */
#ifndef SA_LOG_H
#define SA_LOG_H

enum sa_log_level {
	SA_LOG_ERR = 0,
	SA_LOG_WARN = 1,
	SA_LOG_INFO = 2,  /* sscep's normal chatter, printed by default */
	SA_LOG_VERBOSE = 3, /* -v */
	SA_LOG_DEBUG = 4,   /* -d */
};

/* Configure: level threshold, program name, syslog (1) or stderr (0). */
void sa_log_init(const char *progname, int level, int use_syslog);
void sa_log_set_level(int level);
int sa_log_level(void);

/*
 * Every message from now on begins with "P: " after the program name
 * (control characters as '?'), e.g. the token a station's worker is
 * about; NULL: none.
 */
void sa_log_set_prefix(const char *p);

void sa_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define sa_err(...) sa_log(SA_LOG_ERR, __VA_ARGS__)
#define sa_warn(...) sa_log(SA_LOG_WARN, __VA_ARGS__)
#define sa_info(...) sa_log(SA_LOG_INFO, __VA_ARGS__)
#define sa_verbose(...) sa_log(SA_LOG_VERBOSE, __VA_ARGS__)
#define sa_debug(...) sa_log(SA_LOG_DEBUG, __VA_ARGS__)

#endif

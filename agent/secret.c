/*
 * secret.c - secrets from a file, the environment or the terminal.
 */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "sa_err.h"
#include "sa_intr.h"

#define SECRET_MAX 1024
#define SECRET_SOURCES 4

/*
 * The secrets read in this run, by source ("file:PATH", "env:VAR",
 * "prompt:WHAT"): each source is read once (a FIFO or /dev/fd/N gives its
 * secret only once), later reads get a copy. Wiped by secret_forget(),
 * at the latest when the program ends.
 */
static struct {
	char *source;
	char *value;
} cache[SECRET_SOURCES];
static int cache_atexit;

void secret_free(char *s)
{
	if (s != NULL) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

void secret_forget(void)
{
	int i;

	for (i = 0; i < SECRET_SOURCES; i++) {
		free(cache[i].source);
		secret_free(cache[i].value);
		cache[i].source = NULL;
		cache[i].value = NULL;
	}
}

/* A copy of the cached secret of source into *out: 1; not cached: 0. */
static int cache_get(const char *source, char **out)
{
	int i;

	for (i = 0; i < SECRET_SOURCES; i++)
		if (cache[i].source != NULL &&
		    strcmp(cache[i].source, source) == 0) {
			*out = strdup(cache[i].value);
			return *out != NULL ? 1 : sa_fail_noossl(SA_ENOMEM,
							"out of memory");
		}
	return 0;
}

/* Keep a copy of value for source (silently not, when full or no memory). */
static void cache_put(const char *source, const char *value)
{
	int i;

	if (!cache_atexit) {
		atexit(secret_forget);
		cache_atexit = 1;
	}
	for (i = 0; i < SECRET_SOURCES; i++)
		if (cache[i].source == NULL) {
			cache[i].source = strdup(source);
			cache[i].value = strdup(value);
			if (cache[i].source == NULL || cache[i].value == NULL) {
				free(cache[i].source);
				secret_free(cache[i].value);
				cache[i].source = NULL;
				cache[i].value = NULL;
			}
			return;
		}
}

/* Read one line (without CR/LF) from fd into a new string. */
static int read_line(int fd, const char *from, char **out)
{
	char buf[SECRET_MAX + 1];
	size_t n = 0;
	int rc;

	*out = NULL;
	while (n < SECRET_MAX) {
		ssize_t r;

		if (sa_intr_wait_readable(fd) != 0) {
			rc = sa_fail_noossl(SA_EINTR, "reading %s stopped by %s",
					    from, sa_intr_name(sa_intr_caught()));
			goto out;
		}
		r = read(fd, buf + n, 1);
		if (r < 0 && errno == EINTR && sa_intr_caught()) {
			rc = sa_fail_noossl(SA_EINTR, "reading %s stopped by %s",
					    from, sa_intr_name(sa_intr_caught()));
			goto out;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = sa_fail_noossl(SA_EIO, "cannot read %s: %s", from,
					    strerror(errno));
			goto out;
		}
		if (r == 0 || buf[n] == '\n')
			break;
		n++;
	}
	while (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	if (n == 0) {
		rc = sa_fail_noossl(SA_EUSAGE, "%s is empty", from);
		goto out;
	}
	*out = strdup(buf);
	rc = *out ? 0 : sa_fail_noossl(SA_ENOMEM, "out of memory");
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

static int prompt_tty(const char *what, char **out)
{
	struct termios old, quiet;
	char from[128];
	int fd, rc, restore = 0;

	fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return sa_fail_noossl(SA_EUSAGE, "no terminal to ask for the %s; "
				      "give it in a file or an environment "
				      "variable instead", what);
	if (tcgetattr(fd, &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		quiet.c_lflag |= ICANON;
		if (tcsetattr(fd, TCSAFLUSH, &quiet) == 0)
			restore = 1;
	}
	dprintf(fd, "%s: ", what);
	snprintf(from, sizeof(from), "the %s from the terminal", what);
	rc = read_line(fd, from, out);
	dprintf(fd, "\n");
	if (restore)
		tcsetattr(fd, TCSAFLUSH, &old);
	close(fd);
	return rc;
}

static int secret_read_source(const char *file, const char *env, int prompt,
			      const char *what, char **out)
{
	char from[4200];
	int fd, rc;

	*out = NULL;
	if (file != NULL) {
		fd = open(file, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return sa_fail_noossl(SA_EIO, "cannot read the %s file "
					      "%s: %s", what, file,
					      strerror(errno));
		snprintf(from, sizeof(from), "the %s file %s", what, file);
		rc = read_line(fd, from, out);
		close(fd);
		return rc;
	}
	if (env != NULL) {
		const char *v = getenv(env);

		if (v == NULL || *v == '\0')
			return sa_fail_noossl(SA_EUSAGE, "the environment "
					      "variable %s (for the %s) is "
					      "not set", env, what);
		*out = strdup(v);
		return *out ? 0 : sa_fail_noossl(SA_ENOMEM, "out of memory");
	}
	if (prompt)
		return prompt_tty(what, out);
	return 0;
}

int secret_read(const char *file, const char *env, int prompt,
		const char *what, char **out)
{
	char *source = NULL;
	int rc;

	*out = NULL;
	if (file == NULL && env == NULL && !prompt)
		return 0;
	if (asprintf(&source, "%s:%s", file ? "file" : env ? "env" : "prompt",
		     file ? file : env ? env : what) < 0)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	rc = cache_get(source, out);
	if (rc != 0) {
		free(source);
		return rc < 0 ? rc : 0;
	}
	rc = secret_read_source(file, env, prompt, what, out);
	if (rc == 0 && *out != NULL)
		cache_put(source, *out);
	free(source);
	return rc;
}

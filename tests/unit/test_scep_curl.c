/*
 * test_scep_curl.c - libcurl loaded at run time by the transport
 * (agent/scep/http_curl.c). Nothing links it: a process has it mapped only
 * once it created a transport. A library that cannot be loaded, or that is
 * not libcurl (lacks its functions), is a clear error (SA_EINTERNAL, the
 * file and the Debian package named), every time the transport is asked
 * for, and leaves nothing mapped; never a crash. The library loaded is
 * changed by the test hook SCEP_AGENT_TEST_LIBCURL. Loading happens once
 * per process, so each case runs in a child of its own, which reports its
 * TAP counts to the parent through a pipe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"
#include "scep.h"
#include "sa_err.h"
#include "sa_log.h"

/* Is a file whose name starts with prefix mapped in this process? */
static int mapped(const char *prefix)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[1024];
	int found = 0;

	if (f == NULL)
		return -1;
	while (!found && fgets(line, sizeof(line), f)) {
		const char *slash = strrchr(line, '/');

		if (slash && strncmp(slash + 1, prefix, strlen(prefix)) == 0)
			found = 1;
	}
	fclose(f);
	return found;
}

/* Run fn in a child (the hook set to lib, or unset), counting its tests. */
static void in_child(const char *what, const char *lib, void (*fn)(const char *))
{
	int p[2], counts[2] = { 0, 0 }, st = 0;
	pid_t pid;

	diag("%s", what);
	fflush(stdout);
	if (pipe(p) != 0 || (pid = fork()) < 0) {
		ok(0, "%s: pipe/fork", what);
		return;
	}
	if (pid == 0) {
		close(p[0]);
		if (lib)
			setenv("SCEP_AGENT_TEST_LIBCURL", lib, 1);
		else
			unsetenv("SCEP_AGENT_TEST_LIBCURL");
		fn(lib);
		counts[0] = tap_n;
		counts[1] = tap_failed;
		if (write(p[1], counts, sizeof(counts)) != (ssize_t)sizeof(counts))
			_exit(2);
		_exit(0);
	}
	close(p[1]);
	if (read(p[0], counts, sizeof(counts)) != (ssize_t)sizeof(counts))
		counts[0] = tap_n, counts[1] = tap_failed;
	close(p[0]);
	waitpid(pid, &st, 0);
	tap_n = counts[0];
	tap_failed = counts[1];
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: the child exited normally "
	   "(status 0x%x)", what, st);
}

static const struct scep_http_opts opts = { .url = "http://127.0.0.1:1/scep" };

/* The hook names a file that is not there, or not libcurl. */
static void bad_library(const char *lib)
{
	char first[SA_ERRMSG_MAX];
	static char junk[2];
	scep_http *h = (scep_http *)&junk[0];     /* set to NULL on failure? */
	scep_client *c = (scep_client *)&junk[1];
	struct scep_client_opts co = { .http = opts };
	int rc;

	ok(mapped("libcurl") == 0, "not mapped before the transport is asked for");
	rc = scep_http_new(&opts, &h);
	is_int(rc, SA_EINTERNAL, "scep_http_new: SA_EINTERNAL");
	ok(h == NULL, "no transport returned");
	snprintf(first, sizeof(first), "%s", sa_errmsg());
	diag("message: %s", first);
	ok(strstr(first, lib) != NULL, "the message names the file (%s)", lib);
	ok(strstr(first, "libcurl.so.4") && strstr(first, "Debian package libcurl4"),
	   "and libcurl.so.4 and the Debian package libcurl4");
	ok(mapped("libcurl") == 0, "no libcurl mapped after the failed load");
	if (strstr(lib, "fake"))
		ok(mapped(strrchr(lib, '/') + 1) == 0, "the fake is unloaded (dlclose)");
	sa_fail_noossl(SA_EIO, "something else failed since");
	rc = scep_http_new(&opts, &h);
	ok(rc == SA_EINTERNAL && strcmp(sa_errmsg(), first) == 0,
	   "asked again: the same error, the same message");
	rc = scep_client_new(&co, &c);
	ok(rc == SA_EINTERNAL && c == NULL && strcmp(sa_errmsg(), first) == 0,
	   "scep_client_new: the same error, no client");
}

/* The fake that says 7.84.0 (bad_library's checks, and the message). */
static void old_library(const char *lib)
{
	bad_library(lib);
	ok(strstr(sa_errmsg(), "is libcurl 7.84.0, too old") &&
	   strstr(sa_errmsg(), "7.85.0 or newer"), "the message gives the version "
	   "found and the one needed");
}

/* No hook: the real libcurl.so.4, mapped from the first transport on. */
static void real_library(const char *lib)
{
	scep_http *h = NULL, *h2 = NULL;
	int rc;

	(void)lib;
	ok(mapped("libcurl.so.4") == 0, "libcurl is not mapped at start (not linked)");
	rc = scep_http_new(&opts, &h);
	is_int(rc, SA_OK, "scep_http_new loads it");
	ok(mapped("libcurl.so.4") == 1, "libcurl.so.4 is mapped now");
	rc = scep_http_new(&opts, &h2);
	ok(rc == SA_OK && h2 != NULL && h2 != h, "a second transport: loaded once, works");
	scep_http_free(h2);
	scep_http_free(h);
}

/*
 * argv[1]: fake_libcurl.c built as is (says 7.84.0), argv[2]: without
 * curl_url_get; both abort if the transport calls them.
 */
int main(int argc, char **argv)
{
	sa_log_init("test_scep_curl", SA_LOG_ERR, 0);
	if (argc < 3) {
		ok(0, "usage: test_scep_curl FAKE_OLD.so FAKE_NO_URL_GET.so");
		return tap_done();
	}
	ok(mapped("libcurl") == 0, "the test program does not link libcurl");
	in_child("a library that is not there", "/nonexistent/libcurl.so.4", bad_library);
	in_child("a library that is not libcurl (libc.so.6 lacks curl_global_init)",
		 "libc.so.6", bad_library);
	in_child("a libcurl that lacks curl_url_get", argv[2], bad_library);
	in_child("a libcurl older than 7.85.0 (curl_global_init not called)", argv[1],
		 old_library);
	in_child("the real libcurl.so.4", NULL, real_library);
	return tap_done();
}

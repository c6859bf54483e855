/*
 * Unit tests for agent/daemon/state.c: the state file's round trip,
 * unknown keys, corrupt files (an error naming file and line, never a
 * crash), atomic writes, the profile lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sa_err.h"
#include "sa_log.h"
#include "state.h"
#include "tap.h"

static char dir[256];

static void put(const char *name, const char *text)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s.state", dir, name);
	fp = fopen(path, "w");
	if (fp == NULL)
		abort();
	fputs(text, fp);
	fclose(fp);
}

static void test_round_trip(void)
{
	struct state a, b;
	struct stat sb;
	char path[512];

	memset(&a, 0, sizeof(a));
	a.phase = STATE_RENEWING;
	a.pending = 1;
	state_set(&a.transaction_id, "A1B2C3");
	state_set(&a.txn_key_uri, "pkcs11:token=t1;object=gw%20key");
	state_set(&a.txn_kind, "renew");
	a.txn_started = 1700000000;
	state_set(&a.serial, "0a1b");
	state_set(&a.subject, "/CN=gw-1/O=Example\\, Inc.");
	a.not_before = 1690000000;
	a.not_after = 1790000000;
	state_set(&a.key_uri, "pkcs11:token=t1;object=gw");
	a.next_check = 1710000000;
	a.last_success = 1690000100;
	a.last_attempt = 1700000000;
	state_set(&a.last_error, "line one\nline two\\ with \x01 and \r");
	a.failures = 3;
	a.next_try = 1700000600;
	state_set(&a.ca_fingerprint, "ab:cd");
	state_set(&a.next_ca_fingerprint, "");
	a.ca_not_after = 1800000000;
	a.renew_at = 1765000000;
	is_int(state_save(dir, "p1", &a), 0, "state saved");
	snprintf(path, sizeof(path), "%s/p1.state", dir);
	ok(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600,
	   "state file is 0600");
	is_int(state_load(dir, "p1", &b), 0, "state loaded");
	is_int(b.phase, STATE_RENEWING, "phase");
	is_int(b.pending, 1, "pending");
	is_str(b.transaction_id, "A1B2C3", "transaction_id");
	is_str(b.txn_key_uri, a.txn_key_uri, "txn_key_uri");
	is_str(b.txn_kind, "renew", "txn_kind");
	is_int(b.txn_started, 1700000000, "txn_started");
	is_str(b.serial, "0a1b", "serial");
	is_str(b.subject, a.subject, "subject with a backslash");
	is_int(b.not_before, a.not_before, "not_before");
	is_int(b.not_after, a.not_after, "not_after");
	is_str(b.key_uri, a.key_uri, "key_uri");
	is_int(b.next_check, a.next_check, "next_check");
	is_int(b.last_success, a.last_success, "last_success");
	is_int(b.last_attempt, a.last_attempt, "last_attempt");
	is_str(b.last_error, a.last_error, "last_error with newlines and "
	       "control characters");
	is_int(b.failures, 3, "failures");
	is_int(b.next_try, a.next_try, "next_try");
	is_str(b.ca_fingerprint, "ab:cd", "ca_fingerprint");
	is_str(b.next_ca_fingerprint, "", "an empty string stays empty");
	is_int(b.ca_not_after, a.ca_not_after, "ca_not_after");
	is_int(b.renew_at, a.renew_at, "renew_at");
	state_clear(&b);

	/* rewritten: the old one replaced, no temp files left */
	state_set(&a.transaction_id, NULL);
	a.phase = STATE_OK;
	is_int(state_save(dir, "p1", &a), 0, "saved again");
	is_int(state_load(dir, "p1", &b), 0, "loaded again");
	is_str(b.transaction_id, NULL, "a cleared field is gone");
	is_int(b.phase, STATE_OK, "phase ok");
	state_clear(&b);
	state_clear(&a);
	{
		char cmd[600];

		snprintf(cmd, sizeof(cmd), "ls -A %s | grep -q tmp", dir);
		ok(system(cmd) != 0, "no temporary file left behind");
	}
}

static void test_missing_unknown(void)
{
	struct state st;

	is_int(state_load(dir, "nothing", &st), 0, "no state file: not an error");
	is_int(st.phase, STATE_NONE, "no state file: phase none");
	ok(st.serial == NULL && st.not_after == 0, "no state file: empty");
	state_clear(&st);

	put("future", "# comment\nversion=7\nphase=ok\nserial=ff\n"
	    "some_new_key=whatever it is\n\nnot_after=5\r\n");
	is_int(state_load(dir, "future", &st), 0, "unknown keys are skipped");
	is_str(st.serial, "ff", "known keys read");
	is_int(st.not_after, 5, "a CRLF line");
	state_clear(&st);
}

static void corrupt(const char *text, const char *what, int line)
{
	struct state st;
	char want[600];
	int rc;

	put("bad", text);
	rc = state_load(dir, "bad", &st);
	is_int(rc, SA_EIO, "corrupt (%s): an error", what);
	snprintf(want, sizeof(want), "%s/bad.state is corrupt at line %d", dir,
		 line);
	if (!ok(strstr(sa_errmsg(), want) != NULL, "names file and line %d",
		line))
		diag("%s", sa_errmsg());
	ok(st.serial == NULL && st.phase == STATE_NONE, "and st left cleared");
	state_clear(&st);
	sa_err_clear();
}

static void test_corrupt(void)
{
	char big[300 * 1024];
	struct state st;

	corrupt("phase=ok\nserial=1\ngarbage\n", "no '='", 3);
	corrupt("phase=maybe\n", "unknown phase", 1);
	corrupt("not_after=tomorrow\n", "time not a number", 1);
	corrupt("not_after=12x\n", "trailing junk", 1);
	corrupt("not_after=-5\n", "negative time", 1);
	corrupt("failures=99999999999999999999\n", "overflow", 1);
	corrupt("serial=ab\\q\n", "bad escape", 1);
	corrupt("serial=ab\\x0\n", "short hex escape", 1);
	corrupt("=x\n", "no key", 1);
	corrupt("Phase=ok\n", "key in capitals", 1);
	corrupt("version=x\n", "version", 1);
	{
		static const char nul[] = "phase=ok\nser\0ial=1\n";
		char path[512];
		FILE *fp;

		snprintf(path, sizeof(path), "%s/bad.state", dir);
		fp = fopen(path, "w");
		fwrite(nul, 1, sizeof(nul) - 1, fp);
		fclose(fp);
		is_int(state_load(dir, "bad", &st), SA_EIO, "a NUL byte: corrupt");
		state_clear(&st);
	}
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	put("bad", big);
	is_int(state_load(dir, "bad", &st), SA_EIO, "a huge file: corrupt");
	ok(strstr(sa_errmsg(), "bad.state is corrupt") != NULL,
	   "a huge file: named");
	state_clear(&st);
	is_int(state_load(dir, "../x", &st), SA_EUSAGE, "a name with '/'");
}

static void test_lock(void)
{
	int fd, fd2, st;
	pid_t pid;

	fd = state_lock(dir, "p1", 100);
	ok(fd >= 0, "lock taken");
	ok((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0, "not passed to hooks (cloexec)");
	pid = fork();
	if (pid == 0) {
		int r = state_lock(dir, "p1", 200);

		_exit(r == SA_EEXIST && strstr(sa_errmsg(), "in use") ? 0 : 1);
	}
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "another process waits, then gets SA_EEXIST");
	/* released on close */
	close(fd);
	fd2 = state_lock(dir, "p1", 0);
	ok(fd2 >= 0, "released on close");
	pid = fork();
	if (pid == 0) {
		int r;

		close(fd2); /* an inherited copy would hold the lock (flock) */
		r = state_lock(dir, "p1", 2000);

		_exit(r >= 0 ? 0 : 1);
	}
	usleep(150000);
	close(fd2);
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "a waiter gets the lock when it is released");
	fd = state_lock(dir, "p2", 0);
	ok(fd >= 0, "another profile's lock is its own");
	close(fd);
}

static void test_atomic(void)
{
	char path[512], buf[64];
	FILE *fp;
	size_t n;

	snprintf(path, sizeof(path), "%s/sub/dir", dir);
	is_int(state_mkdirs(path, 0700), 0, "mkdirs");
	snprintf(path, sizeof(path), "%s/sub/dir/f", dir);
	is_int(state_write_atomic(path, "hello\n", 6, 0644), 0, "atomic write");
	fp = fopen(path, "r");
	n = fp ? fread(buf, 1, sizeof(buf) - 1, fp) : 0;
	if (fp)
		fclose(fp);
	buf[n] = '\0';
	is_str(buf, "hello\n", "content");
	snprintf(path, sizeof(path), "%s/nodir/f", dir);
	is_int(state_write_atomic(path, "x", 1, 0644), SA_EIO,
	       "a missing directory: SA_EIO");
	ok(strstr(sa_errmsg(), path) != NULL, "naming the file");
}

int main(void)
{
	char cmd[300];

	sa_log_init("test_daemon_state", SA_LOG_ERR, 0);
	snprintf(dir, sizeof(dir), "%s/sa-state-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(dir) == NULL)
		return 99;
	test_round_trip();
	test_missing_unknown();
	test_corrupt();
	test_lock();
	test_atomic();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("could not remove %s", dir);
	return tap_done();
}

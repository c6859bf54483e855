/*
 * p11_capture.c - what a module writes to stderr during its calls.
 *
 * Some modules talk on stderr: tpm2-pkcs11 prints "ERROR: ..." lines
 * whatever its log level, and the TPM software stack under it logs its
 * own. Those lines are noise to a user of scep-agent, but they are also
 * the only place a module says why a call failed (a TPM's response code:
 * out of object memory, dictionary-attack lockout). Once p11_capture_on()
 * is called, every call through a module's function list (p11_wait.c)
 * runs with file descriptor 2 pointing to an anonymous memory file; after
 * the call the text is read back, shown as debug lines (-d), and handed to
 * the diagnosis function, whose hint for a failed call the messages
 * append (p11_capture_hint()). Our own messages are never written while a
 * call runs (the token-timeout handler first restores fd 2:
 * p11_capture_restore()).
 */
#include "p11_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sa_log.h"

static int cap_fd = -1;     /* the memory file */
static int saved_fd = -1;   /* the real stderr while a call runs */
static p11_diag_fn *diag;
static char hint[1200];     /* the last failed call's hint, "" if none */
static int unload;          /* the last failed call: a logout makes room */

/* See p11.h. */
int p11_capture_on(p11_diag_fn *fn)
{
	diag = fn;
	if (cap_fd >= 0)
		return 0;
	cap_fd = memfd_create("scep-agent-module-stderr", MFD_CLOEXEC);
	if (cap_fd < 0) {
		FILE *f = tmpfile();

		if (f != NULL) {
			cap_fd = dup(fileno(f));
			fclose(f);
		}
	}
	return cap_fd >= 0 ? 0 : -1;
}

/* See p11_int.h. */
void p11_capture_begin(void)
{
	if (cap_fd < 0 || saved_fd >= 0)
		return;
	fflush(stderr);
	saved_fd = dup(STDERR_FILENO);
	if (saved_fd < 0)
		return;
	if (dup2(cap_fd, STDERR_FILENO) < 0) {
		close(saved_fd);
		saved_fd = -1;
	}
}

/* See p11_int.h. Async-signal-safe. */
void p11_capture_restore(void)
{
	if (saved_fd < 0)
		return;
	dup2(saved_fd, STDERR_FILENO);
	close(saved_fd);
	saved_fd = -1;
}

/* Show each line of text at debug level. */
static void show(const char *func, char *text)
{
	char *line, *save = NULL;

	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save))
		sa_debug("module (%s): %s", func, line);
}

/* See p11_int.h. */
void p11_capture_end(const char *func, CK_RV rv)
{
	char buf[8192];
	const char *h;
	off_t end;
	ssize_t n;

	if (saved_fd < 0)
		return;
	fflush(stderr);
	p11_capture_restore();
	end = lseek(cap_fd, 0, SEEK_CUR);
	n = 0;
	if (end > 0) {
		/* the last 8 KB: what a failure's cause is in */
		off_t from = end > (off_t)sizeof(buf) - 1 ?
			     end - (off_t)sizeof(buf) + 1 : 0;

		n = pread(cap_fd, buf, (size_t)(end - from), from);
		if (ftruncate(cap_fd, 0) != 0 || lseek(cap_fd, 0, SEEK_SET) != 0)
			sa_debug("cannot empty the module's stderr buffer: %s",
				 strerror(errno));
	}
	buf[n > 0 ? n : 0] = '\0';
	if (rv != CKR_OK)
		unload = 0;
	h = diag != NULL && rv != CKR_OK ? diag(func, rv, buf, &unload) : NULL;
	if (h != NULL)
		snprintf(hint, sizeof(hint), "%s", h);
	else if (rv != CKR_OK)
		hint[0] = '\0';
	if (n > 0)
		show(func, buf);
}

/* See p11_int.h. */
const char *p11_capture_hint(void)
{
	return hint[0] ? hint : NULL;
}

/* See p11_int.h. */
int p11_capture_unload_helps(void)
{
	int u = unload;

	unload = 0;
	return u;
}

/* See p11_int.h. */
void p11_capture_hint_clear(void)
{
	hint[0] = '\0';
}

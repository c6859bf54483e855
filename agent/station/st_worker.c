/*
 * st_worker.c - a worker process: it loads the module once (a hold) and
 * makes one SCEP client, then takes tokens one at a time from its pipe,
 * provisions each (st_token.c) and sends back its result, until the
 * parent closes the pipe. A token call past its bound (--token-timeout)
 * ends the worker (_exit 10); the parent reports that token failed and
 * starts another worker.
 */
#include "st_worker.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "sa_err.h"
#include "sa_log.h"
#include "tpm.h"

/* See st_worker.h. */
int station_worker_reload(struct station_worker *w)
{
	p11_hold_free(w->hold);
	w->hold = NULL;
	return p11_hold_new(w->so->module, &w->hold);
}

/* a token call past its bound: on the watchdog thread, so no exit() */
static void worker_timeout(const char *msg)
{
	char line[2300];
	int n = snprintf(line, sizeof(line), "scep-agent: %s\n", msg);

	if (n > 0 && write(STDERR_FILENO, line, (size_t)n < sizeof(line) ?
			   (size_t)n : sizeof(line) - 1) < 0)
		n = -1; /* nothing left to tell */
	_exit(SA_EXIT_TOKEN_TIMEOUT);
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* one task: run it and send its result */
static int one(struct station_worker *w, const char *msg, size_t len, int out)
{
	struct station_task t;
	struct station_result r;
	char *buf = NULL;
	size_t blen = 0;
	int rc;

	memset(&r, 0, sizeof(r));
	rc = station_task_decode(msg, len, &t);
	if (rc < 0)
		return rc;
	if (w->hold == NULL && station_worker_reload(w) < 0) {
		r.state = ST_FAILED;
		r.n = t.n;
		r.slot_id = t.slot_id;
		r.token_serial = strdup(t.serial ? t.serial : "");
		r.token_label = strdup(t.label ? t.label : "");
		r.error = strdup(sa_errmsg());
		sa_err_clear();
	} else {
		station_token_run(w, w->so, &t, &r);
	}
	if (r.state == ST_FAILED) {
		/* a card pulled out, a module in trouble: start afresh */
		p11_hold_free(w->hold);
		w->hold = NULL;
	}
	rc = station_result_encode(&r, &buf, &blen);
	if (rc == 0 && send_all(out, buf, blen) < 0)
		rc = SA_EIO;
	free(buf);
	station_result_clear(&r);
	station_task_clear(&t);
	return rc;
}

/* See station.h (station_worker_main). */
void station_worker_main(const struct station_opts *so,
			 const struct station_csv *csv, int in, int out)
{
	struct station_worker w;
	int rc;

	/* the parent decides when to stop: ^C to the terminal is its */
	setpgid(0, 0);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	memset(&w, 0, sizeof(w));
	w.so = so;
	w.csv = csv;
	p11_wait_set(so->o.token_call_s * 1000UL, so->o.token_keygen_s * 1000UL,
		     worker_timeout);
	rc = agent_client_new(&so->o, &w.client);
	if (rc < 0) {
		sa_err("%s", sa_errmsg());
		_exit(1);
	}
	for (;;) {
		char *msg = NULL;
		size_t len = 0;

		rc = station_wire_read(in, &msg, &len);
		if (rc <= 0)
			break;
		rc = one(&w, msg, len, out);
		OPENSSL_cleanse(msg, len); /* a PIN or challenge may be in it */
		free(msg);
		if (rc < 0)
			break;
	}
	scep_client_free(w.client);
	p11_hold_free(w.hold);
	if (so->o.tpm)
		tpm_finish();
	_exit(rc < 0 ? 1 : 0);
}

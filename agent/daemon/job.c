/*
 * job.c - one profile's enrollment, renewal, re-enrollment, poll or
 * adoption, run in a short-lived child (job_run) so that the scheduling
 * process never loads a PKCS#11 module, libcurl's work or a key; the child
 * (job_do) refreshes the CA (job_ca.c), runs the enrollment engine with
 * StoreDir as its disk store and reports its outcome on a pipe
 * (job_wire.c).
 */
#include "job.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "csr.h"
#include "files.h"
#include "keyload.h"
#include "sa_err.h"
#include "sa_esc.h"
#include "sa_intr.h"
#include "sa_log.h"
#include "sa_step.h"
#include "store.h"
#include "tpm.h"

/* the pipe to the parent, in the child (-1: job_do called directly) */
static int child_fd = -1;

static time_t asn1_time(const ASN1_TIME *t)
{
	struct tm tm;

	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return 0;
	return timegm(&tm);
}

/* the pair's description in out from cert (serial, subject, times) */
static int describe_cert(X509 *cert, struct job_out *out)
{
	out->serial = store_serial_hex(cert);
	out->subject = csr_name_oneline(X509_get_subject_name(cert));
	out->not_before = asn1_time(X509_get0_notBefore(cert));
	out->not_after = asn1_time(X509_get0_notAfter(cert));
	if (out->serial == NULL || out->subject == NULL)
		return sa_fail(SA_ENOMEM, "cannot describe the certificate");
	return 0;
}

/* the engine's disk store: StoreDir/<serial>.crt, latest.crt, ca.crt */
struct disk_arg {
	const struct profile *p;
	char *cert_path;
};

static int store_disk(void *arg, X509 *cert, const struct scep_ca *ca)
{
	struct disk_arg *d = arg;
	int rc;

	free(d->cert_path);
	d->cert_path = NULL;
	rc = store_put_cert(d->p->store_dir, cert, &d->cert_path);
	if (rc < 0)
		return rc;
	if (ca != NULL && ca->certs != NULL)
		rc = store_put_ca(d->p->store_dir, ca->certs);
	return rc;
}

/* a record to the parent as soon as it is known (nothing when direct) */
static void tell_parent(const char *key, const char *value)
{
	char *buf = NULL;
	size_t len = 0;

	if (child_fd < 0 || job_wire_record(key, value, &buf, &len) < 0) {
		sa_err_clear();
		return;
	}
	if (job_wire_send(child_fd, buf, len) < 0)
		sa_err_clear();
	free(buf);
}

/* sa_step's observer in the child: a request about to leave is told first */
static void step_seen(const char *name)
{
	if (strcmp(name, "request-out") == 0)
		tell_parent("stage", name);
}

/*
 * AdoptCert: the certificate a device already has becomes the current
 * pair with the key NewKey names; no request is sent.
 */
static int adopt(const struct profile *p, const struct agent_opts *o,
		 const struct job_ca *jc, struct job_out *out)
{
	struct keyload *kl = NULL;
	p11_keyobj *obj = NULL;
	EVP_PKEY *key = NULL; /* borrowed from obj for a token key */
	X509 *cert = NULL;
	char *shown = NULL;
	int rc;

	if (p->adopt_cert == NULL) {
		rc = sa_fail_noossl(SA_EUSAGE, "profile %s: nothing to adopt "
				    "(no AdoptCert)", p->name);
		goto out;
	}
	rc = files_read_cert(p->adopt_cert, &cert);
	if (rc < 0)
		goto out;
	rc = keyload_new(&o->p11, &kl);
	if (rc < 0)
		goto out;
	rc = keyload_get1(kl, o->s.new_key, &key, &obj);
	if (rc < 0)
		goto out;
	shown = p11_uri_display(o->s.new_key);
	if (!p11_key_matches_cert(key, cert)) {
		rc = sa_fail_noossl(SA_EKEY, "profile %s: AdoptCert %s is not the "
				    "certificate of the key NewKey names (%s); "
				    "give the certificate of that key, or remove "
				    "AdoptCert to enroll a new one", p->name,
				    p->adopt_cert, shown ? shown : "?");
		goto out;
	}
	rc = scep_ca_verify_issued(&jc->ca, cert, NULL);
	if (rc < 0) {
		char *why = strdup(sa_errmsg());

		rc = sa_fail_noossl(SA_EREPLY, "profile %s: AdoptCert %s was not "
				    "issued by the trusted CA (%s); adopt a "
				    "certificate of that CA, or remove AdoptCert "
				    "to enroll", p->name, p->adopt_cert,
				    why ? why : "");
		free(why);
		goto out;
	}
	rc = describe_cert(cert, out);
	if (rc < 0)
		goto out;
	rc = store_put_cert(p->store_dir, cert, &out->cert_path);
	if (rc < 0)
		goto out;
	out->key_uri = obj ? p11_uri_display(p11_keyobj_get0_uri(obj)) : NULL;
	if (out->key_uri == NULL)
		out->key_uri = shown ? strdup(shown) : NULL;
	if (out->not_after < time(NULL))
		sa_warn("profile %s: the adopted certificate %s has expired; "
			"a new enrollment follows", p->name, p->adopt_cert);
	sa_info("profile %s: adopted %s (serial %s) with the key %s; no request "
		"was sent", p->name, p->adopt_cert, out->serial,
		out->key_uri ? out->key_uri : "?");
	out->status = ENGINE_SUCCESS;
out:
	free(shown);
	if (obj == NULL)
		EVP_PKEY_free(key);
	p11_keyobj_free(obj);
	X509_free(cert);
	keyload_free(kl);
	return rc;
}

/* the engine's outcome into out */
static int from_engine(const struct profile *p, struct engine_outcome *eo,
		       struct disk_arg *d, struct job_out *out)
{
	X509 *cert = NULL;
	int rc = 0;

	out->status = eo->status;
	out->sent = eo->sent;
	out->err = eo->err;
	out->fail_info = eo->fail_info;
	if (eo->transaction_id != NULL &&
	    (out->transaction_id = strdup(eo->transaction_id)) == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	if (eo->key_uri != NULL &&
	    (out->key_uri = p11_uri_display(eo->key_uri)) == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	if (eo->fail_info_text != NULL) {
		char text[1024];

		out->fail_info_text = strdup(sa_esc_str(eo->fail_info_text, text,
							sizeof(text)));
	}
	if (eo->status == ENGINE_ERROR && out->err.code == 0) {
		out->err.code = SA_EINTERNAL;
		snprintf(out->err.msg, sizeof(out->err.msg), "%s",
			 "the enrollment failed without saying why");
	}
	if (eo->status != ENGINE_SUCCESS)
		return 0;
	/* finished by an earlier run: the certificate may be only on disk */
	cert = eo->cert;
	if (cert == NULL) {
		rc = store_latest(p->store_dir, &cert);
		if (rc < 0 || cert == NULL) {
			rc = sa_fail_noossl(SA_EIO, "profile %s: the enrollment was "
					    "finished earlier but %s/latest.crt "
					    "holds no certificate", p->name,
					    p->store_dir);
			goto out;
		}
	} else if (!X509_up_ref(cert)) {
		cert = NULL;
		rc = sa_fail(SA_EINTERNAL, "X509_up_ref failed");
		goto out;
	}
	rc = describe_cert(cert, out);
	if (rc < 0)
		goto out;
	if (d->cert_path == NULL) /* the engine did not store it this run */
		rc = store_put_cert(p->store_dir, cert, &d->cert_path);
	if (rc < 0)
		goto out;
	out->cert_path = d->cert_path;
	d->cert_path = NULL;
out:
	X509_free(cert);
	return rc;
}

static const char *kind_name(enum job_kind k)
{
	switch (k) {
	case JOB_ENROLL: return "enrollment";
	case JOB_RENEW: return "renewal";
	case JOB_REENROLL: return "re-enrollment";
	case JOB_ADOPT: return "adoption";
	}
	return "job";
}

/*
 * A token call of the job ran past its bound (TokenTimeout): called on
 * the watchdog thread while the call hangs, so no exit() (see main.c):
 * the reason to the journal, then _exit(10); the parent records a job
 * that died without an outcome, and the next attempt runs after the
 * backoff.
 */
static void job_token_timeout(const char *msg)
{
	char line[2300];
	int n = snprintf(line, sizeof(line), "scep-agent: %s\n", msg);

	if (n > 0 && write(STDERR_FILENO, line, (size_t)n < sizeof(line) ?
			   (size_t)n : sizeof(line) - 1) < 0)
		n = -1; /* nothing left to tell */
	_exit(SA_EXIT_TOKEN_TIMEOUT);
}

int job_do(const struct job_in *in, struct job_out *out)
{
	const struct profile *p = in->p;
	struct agent_opts o = p->o; /* a shallow copy: strings borrowed */
	struct engine_req req;
	struct engine_outcome eo;
	struct disk_arg d = { .p = p };
	struct job_ca jc = { 0 };
	scep_client *c = NULL;
	char *latest = NULL, *ca_file = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(&eo, 0, sizeof(eo));
	out->fail_info = -1;
	out->status = ENGINE_ERROR;
	/*
	 * The token set-up the scheduler leaves to its children: every token
	 * call bounded (TokenTimeout), and the TPM's environment (TPM, TCTI,
	 * TPMStore) made before the module is loaded. The module path is the
	 * copy's own (agent_opts_tpm replaces it).
	 */
	p11_wait_set(o.token_call_s * 1000UL, o.token_keygen_s * 1000UL,
		     job_token_timeout);
	o.s.pkcs11_module = p->o.s.pkcs11_module ?
			    strdup(p->o.s.pkcs11_module) : NULL;
	if (p->o.s.pkcs11_module != NULL && o.s.pkcs11_module == NULL) {
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	rc = agent_opts_tpm(&o);
	if (rc < 0)
		goto out;
	o.p11.module = o.s.pkcs11_module;
	rc = scep_crypto_init();
	if (rc < 0)
		goto out;
	rc = agent_client_new(&o, &c);
	if (rc < 0)
		goto out;
	rc = job_ca_refresh(in, c, &jc, out);
	if (rc < 0)
		goto out;
	if (out->ca_fingerprint != NULL)
		tell_parent("ca_fp", out->ca_fingerprint);
	o.fp_pin = jc.pin; /* StoreDir/ca.crt, pinned to the anchor used */
	if (in->kind == JOB_ADOPT) {
		rc = adopt(p, &o, &jc, out);
		goto out;
	}
	if (asprintf(&latest, "%s/latest.crt", p->store_dir) < 0)
		latest = NULL;
	if (asprintf(&ca_file, "%s/ca.crt", p->store_dir) < 0)
		ca_file = NULL;
	if (latest == NULL || ca_file == NULL) {
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	/* the chain job_ca_refresh() just wrote, pinned to its anchor */
	o.s.ca_cert_file = ca_file;
	/*
	 * Written through store_disk; read by the engine to find a run that
	 * stopped after storing its certificate on disk (finished earlier).
	 */
	o.s.local_cert_file = latest;
	o.s.resume = in->resume ? 1 : 0;
	/* one exchange per child: the scheduler waits PollInterval */
	o.s.max_poll_count = 1;
	o.s.max_poll_time = 1;
	o.s.sign_key = NULL;
	o.s.sign_cert_file = NULL;
	o.s.overwrite = 0;
	memset(&req, 0, sizeof(req));
	req.o = &o;
	req.store_disk = store_disk;
	req.store_arg = &d;
	req.keep_old = p->keep_old;
	if (in->kind == JOB_RENEW) {
		o.s.sign_key = p->o.s.new_key;
		o.s.sign_cert_file = latest;
		o.s.overwrite = 1; /* staged; replaces the label once stored */
	} else if (in->kind == JOB_REENROLL) {
		o.s.overwrite = 1;
		if (!in->resume)
			sa_warn("profile %s: the certificate has expired; a new "
				"enrollment (PKCSReq with the challenge) is made; "
				"the current key and certificate stay until the "
				"new ones are stored", p->name);
	}
	sa_info("profile %s: %s %s", p->name,
		in->resume ? "resuming the" : "starting the", kind_name(in->kind));
	tell_parent("stage", "engine");
	rc = engine_enroll(&req, &eo);
	if (rc < 0 && eo.status != ENGINE_ERROR)
		eo.status = ENGINE_ERROR;
	rc = from_engine(p, &eo, &d, out);
out:
	if (rc < 0) {
		out->status = ENGINE_ERROR;
		sa_error_take(&out->err, rc);
	}
	engine_outcome_clear(&eo);
	free(d.cert_path);
	free(latest);
	free(ca_file);
	job_ca_clear(&jc);
	scep_client_free(c);
	if (o.tpm)
		tpm_finish(); /* what the TPM module left loaded */
	free(o.s.pkcs11_module);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The parent: fork, read, wait                                        */

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The child: its own signals, the job, the outcome on fd, _exit. */
static void __attribute__((noreturn)) child_main(const struct job_in *in,
						 int fd, const sigset_t *old)
{
	struct job_out out;
	char *buf = NULL;
	size_t len = 0;
	int rc;
	int sigs[2] = { SIGINT, SIGTERM }, i;

	signal(SIGHUP, SIG_IGN);  /* a reload is the scheduler's */
	signal(SIGPIPE, SIG_IGN); /* a parent gone: write fails */
	for (i = 0; i < 2; i++) {
		struct sigaction cur;

		/* one the daemon was started with ignored stays ignored */
		if (sigaction(sigs[i], NULL, &cur) == 0 &&
		    cur.sa_handler != SIG_IGN)
			signal(sigs[i], SIG_DFL);
	}
	sa_intr_install();        /* SIGTERM, SIGINT: finish the step */
	{
		sigset_t m = *old;

		/* whatever the scheduler blocks, the stops reach the job */
		sigdelset(&m, SIGINT);
		sigdelset(&m, SIGTERM);
		sigprocmask(SIG_SETMASK, &m, NULL);
	}
	child_fd = fd;
	sa_step_observe(step_seen);
	job_do(in, &out);
	rc = job_wire_encode(&out, &buf, &len);
	if (rc == 0)
		rc = job_wire_send(fd, buf, len);
	free(buf);
	job_out_clear(&out);
	close(fd);
	_exit(rc == 0 ? 0 : 1);
}

/*
 * Does the child still catch SIGTERM (SigCgt of /proc/PID/status)? The
 * stop handler (sa_intr) gives the signals back to their default once one
 * came: then it is stopping already. 1 also when that cannot be read.
 */
static int child_catches_term(pid_t pid)
{
	char path[64], line[256];
	unsigned long long mask = 0;
	int found = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	fp = fopen(path, "re");
	if (fp == NULL)
		return 1;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "SigCgt: %llx", &mask) == 1) {
			found = 1;
			break;
		}
	fclose(fp);
	return !found || (mask & (1ULL << (SIGTERM - 1))) != 0;
}

/* the child's end without an outcome, as an error in out */
static void no_outcome(const struct job_in *in, int wstatus, int timed_out,
		       int flags, struct job_out *out)
{
	char why[160];

	if (timed_out)
		snprintf(why, sizeof(why), "took longer than %ld s and was "
			 "killed", in->timeout_s);
	else if (WIFSIGNALED(wstatus))
		snprintf(why, sizeof(why), "was killed by signal %d",
			 WTERMSIG(wstatus));
	else
		snprintf(why, sizeof(why), "ended (exit status %d) without an "
			 "outcome", WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1);
	out->killed = timed_out || WIFSIGNALED(wstatus);
	out->status = ENGINE_ERROR;
	out->sent = (flags & JOB_WIRE_SENT) ? 1 : 0;
	out->err.code = SA_EINTERNAL;
	snprintf(out->err.msg, sizeof(out->err.msg), "profile %s: the %s %s%s",
		 in->p->name, kind_name(in->kind), why, out->sent ?
		 "; its request may have reached the CA" : "; no request had left");
}

int job_run(const struct job_in *in, struct job_out *out)
{
	sigset_t stops, old;
	char *buf = NULL;
	size_t len = 0;
	int fds[2] = { -1, -1 }, rc = 0, wstatus = 0, flags = 0;
	int forwarded = 0, termed = 0, killed = 0, timed_out = 0;
	double deadline = 0, kill_at = 0, stop_at = 0;
	pid_t pid;

	memset(out, 0, sizeof(*out));
	out->fail_info = -1;
	if (sa_intr_caught())
		return sa_fail_noossl(SA_EINTR, "profile %s: stopped by %s before "
				      "the %s started", in->p->name,
				      sa_intr_name(sa_intr_caught()),
				      kind_name(in->kind));
	buf = malloc(JOB_WIRE_MAX + 1);
	if (buf == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	if (pipe2(fds, O_CLOEXEC) < 0) {
		free(buf);
		return sa_fail_noossl(SA_EIO, "cannot make a pipe for the job of "
				      "profile %s: %s", in->p->name,
				      strerror(errno));
	}
	sigemptyset(&stops);
	sigaddset(&stops, SIGINT);
	sigaddset(&stops, SIGTERM);
	sigaddset(&stops, SIGHUP);
	sigprocmask(SIG_BLOCK, &stops, &old);
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		rc = sa_fail_noossl(SA_EIO, "cannot start the job of profile %s: "
				    "fork: %s", in->p->name, strerror(errno));
		goto out;
	}
	if (pid == 0) {
		close(fds[0]);
		child_main(in, fds[1], &old);
	}
	close(fds[1]);
	fds[1] = -1;
	if (in->timeout_s > 0)
		deadline = mono_now() + (double)in->timeout_s;
	for (;;) {
		struct pollfd pfd = { .fd = fds[0], .events = POLLIN };
		double now = mono_now(), wait = 60;
		struct timespec ts;
		int sig = sa_intr_caught();
		ssize_t n;

		if (!forwarded && (sig == SIGTERM || sig == SIGINT) &&
		    stop_at == 0)
			stop_at = now + JOB_FORWARD_DELAY;
		if (!forwarded && stop_at > 0 && now >= stop_at) {
			/*
			 * the child finishes its step and logs out; one that
			 * got the stop itself (^C to the terminal's group,
			 * systemd's SIGTERM to the whole cgroup) is not sent a
			 * second one, which would kill it mid-step
			 */
			if (child_catches_term(pid))
				kill(pid, SIGTERM);
			forwarded = 1;
			if (!termed)
				kill_at = now + JOB_KILL_GRACE * 3;
			termed = 1;
		}
		if (deadline > 0 && now >= deadline && !timed_out) {
			timed_out = 1;
			if (!termed) {
				kill(pid, SIGTERM);
				termed = 1;
				kill_at = now + JOB_KILL_GRACE;
			}
		}
		if (termed && !killed && now >= kill_at) {
			kill(pid, SIGKILL);
			killed = 1;
		}
		if (deadline > 0 && !timed_out && deadline - now < wait)
			wait = deadline - now;
		if (termed && !killed && kill_at - now < wait)
			wait = kill_at - now;
		if (!forwarded && stop_at > 0 && stop_at - now < wait)
			wait = stop_at - now;
		if (wait < 0.01)
			wait = 0.01;
		ts.tv_sec = (time_t)wait;
		ts.tv_nsec = (long)((wait - (double)ts.tv_sec) * 1e9);
		if (ppoll(&pfd, 1, &ts, &old) <= 0)
			continue; /* timeout or a signal: look again */
		n = read(fds[0], buf + len, JOB_WIRE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* end of file: the child is gone (or an error) */
		len += (size_t)n;
		if (len > JOB_WIRE_MAX) {
			kill(pid, SIGKILL);
			killed = 1;
			break;
		}
	}
	while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
		;
	if (job_wire_decode(buf, len, out, &flags) < 0 ||
	    !(flags & JOB_WIRE_COMPLETE)) {
		char *cafp = out->ca_fingerprint;

		out->ca_fingerprint = NULL;
		job_out_clear(out);
		no_outcome(in, wstatus, timed_out, flags, out);
		out->ca_fingerprint = cafp; /* a TOFU pin made before dying */
		sa_err_clear();
	} else if (timed_out || WIFSIGNALED(wstatus)) {
		out->killed = 1;
		if (timed_out && out->status == ENGINE_ERROR) {
			char msg[sizeof(out->err.msg)];

			snprintf(msg, sizeof(msg), "%s", out->err.msg);
			snprintf(out->err.msg, sizeof(out->err.msg), "the %s took "
				 "longer than %ld s and was stopped: %.1900s",
				 kind_name(in->kind), in->timeout_s, msg);
		}
	}
	rc = 0;
out:
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	free(buf);
	return rc;
}

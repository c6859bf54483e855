/*
 * Unit tests for agent/daemon/profile.c and the profile keys of conf/:
 * time and percentage values, templates, the effective settings of a
 * profile, the refusals (with file, line and key), directories of
 * profiles.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "conf.h"
#include "profile.h"
#include "sa_err.h"
#include "sa_log.h"
#include "tap.h"

#define FP "sha256:0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"

static char dir[256];

static char *put(const char *name, const char *text)
{
	static char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "w");
	if (fp == NULL)
		abort();
	fputs(text, fp);
	fclose(fp);
	return path;
}

static void test_durations(void)
{
	long n = -5;
	int pct = -5;

	is_int(conf_duration("45", &n), 0, "bare seconds");
	is_int(n, 45, "45 = 45 s");
	conf_duration("45s", &n);
	is_int(n, 45, "45s");
	conf_duration("90m", &n);
	is_int(n, 5400, "90m");
	conf_duration("12h", &n);
	is_int(n, 43200, "12h");
	conf_duration("30d", &n);
	is_int(n, 2592000, "30d");
	conf_duration("0", &n);
	is_int(n, 0, "0");
	n = 7;
	is_int(conf_duration("", &n), -1, "empty refused");
	is_int(conf_duration("-5", &n), -1, "negative refused");
	is_int(conf_duration("5w", &n), -1, "unknown unit refused");
	is_int(conf_duration("5dd", &n), -1, "two units refused");
	is_int(conf_duration("d", &n), -1, "unit alone refused");
	is_int(conf_duration(" 5", &n), -1, "leading blank refused");
	is_int(conf_duration("99999999999999999999", &n), -1, "overflow refused");
	is_int(conf_duration("999999999999999999d", &n), -1,
	       "overflow by the unit refused");
	is_int(n, 7, "nothing set on refusal");

	is_int(conf_renew_at("75%", &pct, &n), 0, "75%%");
	ok(pct == 75 && n == -1, "75%%: percentage, no time");
	is_int(conf_renew_at("30d", &pct, &n), 0, "30d");
	ok(pct == 0 && n == 2592000, "30d: a time before expiry");
	is_int(conf_renew_at("3600", &pct, &n), 0, "bare seconds");
	is_int(n, 3600, "3600 s");
	is_int(conf_renew_at("100%", &pct, &n), -1, "100%% refused");
	is_int(conf_renew_at("0%", &pct, &n), -1, "0%% refused");
	is_int(conf_renew_at("%", &pct, &n), -1, "%% alone refused");
	is_int(conf_renew_at("7.5%", &pct, &n), -1, "fraction refused");
	is_int(conf_renew_at("0", &pct, &n), -1, "0 s refused");
}

static void test_conf_keys(void)
{
	struct conf_settings s;
	struct conf_file *cf = NULL;
	const char *text =
		"[sscep_enroll]\nStoreDir = /x\nRenewAt = 12h\nHookTimeout = 2m\n"
		"KeepOld = 2\nTrustOnFirstUse = yes\nRetryMax = 1d\n"
		"PollInterval = 1m\nMaxPollTime = 2d\n";
	int rc;

	rc = conf_file_parse_buf("e.conf", text, strlen(text), &cf);
	is_int(rc, 0, "parsed");
	conf_settings_init(&s);
	rc = conf_apply(cf, "enroll", &s);
	is_int(rc, 0, "daemon keys in [sscep_enroll] applied");
	is_int(s.warnings, 0, "known keys to enroll: no warning");
	is_str(s.renew_at, "12h", "RenewAt kept as written");
	is_int(s.hook_timeout, 120, "HookTimeout = 2m");
	is_int(s.keep_old, 2, "KeepOld");
	is_int(s.tofu, 1, "TrustOnFirstUse");
	is_int(s.retry_max, 86400, "RetryMax = 1d");
	is_int(s.poll_interval, 60, "PollInterval takes units too");
	is_int(s.max_poll_time, 172800, "MaxPollTime = 2d");
	conf_settings_free(&s);
	conf_file_free(cf);

	text = "[scep_agent]\nURL = http://x\n\nRenewAt = soon\n";
	conf_file_parse_buf("b.conf", text, strlen(text), &cf);
	conf_settings_init(&s);
	rc = conf_apply_profile(cf, &s);
	is_int(rc, SA_EUSAGE, "bad RenewAt: SA_EUSAGE");
	ok(strstr(sa_errmsg(), "b.conf:4: RenewAt") != NULL,
	   "names file, line and key: %s", sa_errmsg());
	conf_settings_free(&s);
	conf_file_free(cf);

	text = "HookTimeout = 5x\n";
	conf_file_parse_buf("h.conf", text, strlen(text), &cf);
	conf_settings_init(&s);
	rc = conf_apply_profile(cf, &s);
	is_int(rc, SA_EUSAGE, "bad time: SA_EUSAGE");
	ok(strstr(sa_errmsg(), "h.conf:1: HookTimeout must be a time") != NULL,
	   "names file, line and key: %s", sa_errmsg());
	conf_settings_free(&s);
	conf_file_free(cf);

	/* a profile reads the top and [scep_agent] only */
	text = "URL = http://top\n[sscep]\nURL = http://sscep\n"
	       "[sscep_enroll]\nSubject = /CN=enroll\n[scep_agent]\n"
	       "Subject = /CN=agent\nStoreDir = /s\n";
	conf_file_parse_buf("p.conf", text, strlen(text), &cf);
	conf_settings_init(&s);
	rc = conf_apply_profile(cf, &s);
	is_int(rc, 0, "profile scopes applied");
	is_str(s.url, "http://top", "[sscep] not read");
	is_str(s.subject, "/CN=agent", "[sscep_enroll] not read, [scep_agent] is");
	is_int(s.warnings, 2, "one warning per section not read");
	conf_settings_free(&s);
	conf_file_free(cf);
}

static void test_templates(void)
{
	char host[256], *out = NULL, *sf;

	gethostname(host, sizeof(host));
	host[sizeof(host) - 1] = '\0';
	is_int(profile_template("/CN={hostname}", NULL, &out), 0, "{hostname}");
	{
		char want[300];

		snprintf(want, sizeof(want), "/CN=%s", host);
		is_str(out, want, "{hostname} filled");
	}
	free(out);
	sf = put("serial", "  SN-0042 \n second line\n");
	is_int(profile_template("DNS:{device_serial}.example", sf, &out), 0,
	       "{device_serial}");
	is_str(out, "DNS:SN-0042.example", "first line, trimmed");
	free(out);
	{
		static const char dt[] = "dt-7\0";
		FILE *fp;

		sf = put("dtserial", "");
		fp = fopen(sf, "w");
		fwrite(dt, 1, sizeof(dt), fp);
		fclose(fp);
	}
	is_int(profile_template("{device_serial}", sf, &out), 0,
	       "a device tree string (NUL-ended)");
	is_str(out, "dt-7", "NUL trimmed");
	free(out);
	out = NULL;
	is_int(profile_template("{device_serial}", NULL, &out), SA_EUSAGE,
	       "{device_serial} without SerialFile");
	ok(strstr(sa_errmsg(), "SerialFile") != NULL, "says SerialFile");
	ok(out == NULL, "nothing out");
	sf = put("empty", "\n");
	is_int(profile_template("{device_serial}", sf, &out), SA_EUSAGE,
	       "an empty SerialFile");
	is_int(profile_template("x{mac:lo}y", NULL, &out), 0, "{mac:lo}");
	is_str(out, "x00:00:00:00:00:00y", "the loopback's address");
	free(out);
	is_int(profile_template("{mac:nosuchif0}", NULL, &out), SA_EUSAGE,
	       "{mac:} of no interface");
	ok(strstr(sa_errmsg(), "nosuchif0") != NULL, "names it");
	is_int(profile_template("{mac:../lo}", NULL, &out), SA_EUSAGE,
	       "{mac:} with a path refused");
	is_int(profile_template("{user}", NULL, &out), SA_EUSAGE,
	       "unknown placeholder");
	ok(strstr(sa_errmsg(), "{user}") != NULL, "names it");
	is_int(profile_template("/CN={hostname", NULL, &out), SA_EUSAGE,
	       "unclosed brace");
	is_int(profile_template("no placeholders", NULL, &out), 0, "plain text");
	is_str(out, "no placeholders", "unchanged");
	free(out);
}

static const char *good =
	"# a profile\n"
	"URL = http://127.0.0.1:8080/scep\n"
	"[scep_agent]\n"
	"FingerPrint = " FP "\n"
	"NewKey = pkcs11:token=gw;object=device\n"
	"PinFile = /etc/scep-agent/pin\n"
	"Subject = /CN={device_serial}/O=Example\n"
	"SubjectAltName = DNS:{device_serial}.example\n"
	"StoreDir = /var/lib/certs/gw\n"
	"StateDir = %s/state\n"
	"SerialFile = %s\n"
	"RenewAt = 30d\n"
	"HookSuccess = systemctl reload foo\n"
	"KeepOld = 2\n"
	"RetryMin = 5m\n"
	"[sscep_enroll]\n"
	"URL = http://not-read\n";

static void test_load(void)
{
	struct profile *p = NULL;
	char text[2048], *path, serial[600];

	snprintf(serial, sizeof(serial), "%s", put("sn", "A/B+1\n"));
	snprintf(text, sizeof(text), good, dir, serial);
	path = put("gw.conf", text);
	is_int(profile_load(path, &p), 0, "a good profile loads");
	if (p == NULL) {
		diag("%s", sa_errmsg());
		return;
	}
	is_str(p->name, "gw", "named by its file without .conf");
	is_str(p->o.s.url, "http://127.0.0.1:8080/scep", "URL from the top");
	is_int(p->o.op, OP_ENROLL, "settings for enroll");
	is_str(p->o.s.new_key, "pkcs11:token=gw;object=device", "NewKey");
	is_str(p->o.s.subject, "/CN=A\\/B\\+1/O=Example",
	       "Subject filled, '/' and '+' of the value escaped");
	is_str(p->o.s.san[0], "DNS:A/B+1.example", "SAN filled as is");
	is_str(p->o.s.ca_cert_file, "/var/lib/certs/gw/ca.crt",
	       "CACertFile = StoreDir/ca.crt");
	is_str(p->o.s.local_cert_file, "/var/lib/certs/gw/latest.crt",
	       "LocalCertFile = StoreDir/latest.crt");
	{
		char want[600];

		snprintf(want, sizeof(want), "%s/state/gw.req", dir);
		is_str(p->o.s.cert_req_file, want, "CertReqFile = StateDir/NAME.req");
	}
	ok(p->o.fp_pin != NULL && strcmp(p->o.fp_pin, FP) == 0, "pinned");
	is_str(p->store_dir, "/var/lib/certs/gw", "store_dir");
	is_int(p->renew_pct, 0, "RenewAt 30d: no percentage");
	is_int(p->renew_before, 2592000, "RenewAt 30d");
	is_str(p->hook_success, "systemctl reload foo", "HookSuccess");
	ok(p->hook_failure == NULL, "no HookFailure");
	is_int(p->hook_timeout, 60, "HookTimeout default 60");
	is_int(p->keep_old, 2, "KeepOld");
	is_int(p->tofu, 0, "TrustOnFirstUse default no");
	is_int(p->backoff_min, 300, "RetryMin 5m");
	is_int(p->backoff_max, 86400, "RetryMax default 1d");
	is_int(p->jitter, -1, "RenewJitter automatic");
	is_int(profile_jitter(p, 86400 * 365), 3600, "auto jitter capped at 1 h");
	is_int(profile_jitter(p, 3600), 36, "auto jitter 1%% of the lifetime");
	is_int(profile_renew_point(p, 1000, 1000 + 86400 * 90),
	       1000 + 86400 * 60, "30 days before the end");
	is_int(profile_renew_point(p, 1000, 2000), 1000,
	       "not before the start");
	is_int(p->clock_wait, 300, "ClockWait default");
	is_int(p->network_wait, 120, "NetworkWait default");
	profile_free(p);

	path = put("min.conf", "URL = http://x/scep\nTrustOnFirstUse = yes\n"
		   "NewKey = pkcs11:object=k\nSubject = /CN=min\n"
		   "StoreDir = /s\nRenewJitter = 10m\n");
	is_int(profile_load(path, &p), 0, "a minimal TOFU profile");
	if (p != NULL) {
		is_str(p->state_dir, PROFILE_STATE_DIR, "StateDir default");
		is_int(p->renew_pct, 75, "RenewAt default 75%%");
		is_int(p->renew_before, -1, "no time before expiry");
		is_int(p->keep_old, 1, "KeepOld default 1");
		is_int(p->tofu, 1, "TOFU");
		ok(p->o.fp_pin == NULL, "nothing pinned yet");
		is_int(p->jitter, 600, "RenewJitter 10m");
		is_int(profile_renew_point(p, 0, 400), 300, "75%% of the lifetime");
		profile_free(p);
	}
}

/* profile text -> load refused with SA_EUSAGE and msg containing want */
static void refused(const char *text, const char *want, const char *what)
{
	struct profile *p = NULL;
	char *path = put("bad.conf", text);
	int rc = profile_load(path, &p);

	is_int(rc, SA_EUSAGE, "refused: %s", what);
	if (!ok(strstr(sa_errmsg(), want) != NULL, "message: %s", want))
		diag("got: %s", sa_errmsg());
	ok(p == NULL, "no profile");
	sa_err_clear();
}

#define BASE "URL = http://x/scep\nNewKey = pkcs11:object=k\nSubject = /CN=a\n" \
	"StoreDir = /s\n"

static void test_refusals(void)
{
	char want[600];

	snprintf(want, sizeof(want), "%s/bad.conf:5: FingerPrint = sha256 names "
		 "a digest", dir);
	refused(BASE "FingerPrint = sha256\n", want, "a digest name");
	refused(BASE "FingerPrint = sha256\n", "TrustOnFirstUse = yes",
		"the message says TrustOnFirstUse");
	refused(BASE, "FingerPrint is missing", "no pin, no TOFU");
	refused(BASE "FingerPrint = 12:34\n", "is not a fingerprint",
		"a short fingerprint");
	refused("NewKey = pkcs11:object=k\nSubject = /CN=a\nStoreDir = /s\n"
		"TrustOnFirstUse = yes\n", "URL is missing", "no URL");
	refused("URL = http://x\nNewKey = pkcs11:object=k\nSubject = /CN=a\n"
		"TrustOnFirstUse = yes\n", "StoreDir is missing", "no StoreDir");
	refused(BASE "TrustOnFirstUse = yes\nLocalCertFile = /a\n"
		"CACertFile = /b\n", "LocalCertFile and CACertFile",
		"StoreDir with LocalCertFile and CACertFile");
	refused(BASE "TrustOnFirstUse = yes\nCACertFile = /b\n",
		"StoreDir replaces CACertFile", "StoreDir with CACertFile");
	refused("URL = http://x\nNewKey = pkcs11:token=t\nSubject = /CN=a\n"
		"StoreDir = /s\nTrustOnFirstUse = yes\n", "bad.conf:2: NewKey",
		"NewKey without object=");
	refused("URL = http://x\nNewKey = /etc/key.pem\nSubject = /CN=a\n"
		"StoreDir = /s\nTrustOnFirstUse = yes\n", "pkcs11: URI with "
		"object=", "NewKey a file");
	refused("URL = http://x\nSubject = /CN=a\nStoreDir = /s\n"
		"TrustOnFirstUse = yes\n", "NewKey is missing", "no NewKey");
	refused(BASE "TrustOnFirstUse = yes\nPrivateKeyFile = /k\n",
		"PrivateKeyFile has no place", "PrivateKeyFile");
	refused(BASE "TrustOnFirstUse = yes\nRenewAt = 100%\n",
		"bad.conf:6: RenewAt must be", "RenewAt 100%%");
	refused(BASE "TrustOnFirstUse = yes\nSubject = /CN={nope}\n",
		"bad.conf:6: Subject: unknown placeholder {nope}",
		"an unknown placeholder");
	refused(BASE "TrustOnFirstUse = yes\nSubjectAltName = DNS:{device_serial}\n",
		"SubjectAltName: {device_serial} needs SerialFile",
		"{device_serial} without SerialFile");
	refused(BASE "TrustOnFirstUse = yes\nRetryMin = 1h\nRetryMax = 1m\n",
		"RetryMax at least RetryMin", "RetryMax below RetryMin");
	refused(BASE "TrustOnFirstUse = yes\nChallengePasswordPrompt = yes\n",
		"without a terminal", "a prompt in a daemon");
	refused(BASE "TrustOnFirstUse = yes\nRenewMode = sometimes\n",
		"bad.conf: --renew-mode (RenewMode)", "derived values checked");
}

static void test_load_all(void)
{
	char d[300], d2[300], *args[4];
	struct profile **l = NULL;
	int n = -1, bad = -1;
	FILE *fp;

	snprintf(d, sizeof(d), "%s/fleet", dir);
	mkdir(d, 0755);
	snprintf(d2, sizeof(d2), "%s/fleet/b.conf", dir);
	fp = fopen(d2, "w");
	fputs(BASE "TrustOnFirstUse = yes\n", fp);
	fclose(fp);
	snprintf(d2, sizeof(d2), "%s/fleet/a.conf", dir);
	fp = fopen(d2, "w");
	fputs(BASE "TrustOnFirstUse = yes\n", fp);
	fclose(fp);
	snprintf(d2, sizeof(d2), "%s/fleet/c.conf", dir);
	fp = fopen(d2, "w");
	fputs("URL = \n", fp); /* does not load */
	fclose(fp);
	snprintf(d2, sizeof(d2), "%s/fleet/notes.txt", dir);
	fp = fopen(d2, "w");
	fputs("not a profile\n", fp);
	fclose(fp);
	snprintf(d2, sizeof(d2), "%s/fleet/.hidden.conf", dir);
	fp = fopen(d2, "w");
	fputs("not a profile\n", fp);
	fclose(fp);

	args[0] = d;
	args[1] = put("a.conf", BASE "TrustOnFirstUse = yes\n"); /* name a again */
	{
		static char nx[300];

		snprintf(nx, sizeof(nx), "%s/missing.conf", dir);
		args[2] = nx;
	}
	sa_log_set_level(-1); /* the reports are expected */
	is_int(profile_load_all(args, 3, &l, &n, &bad), 0, "loaded");
	sa_log_set_level(SA_LOG_ERR);
	is_int(n, 2, "two profiles from the directory");
	is_int(bad, 3, "bad: c.conf, the second a, the missing file");
	if (n == 2) {
		is_str(l[0]->name, "a", "sorted: a");
		is_str(l[1]->name, "b", "then b");
		ok(strstr(l[0]->path, "/fleet/a.conf") != NULL,
		   "the first a kept");
	}
	profile_list_free(l, n);

	is_int(profile_load_all(NULL, 0, &l, &n, &bad), 0, "no arguments");
	ok(n == 0 && bad == 0 && l == NULL, "nothing");
}

int main(void)
{
	char cmd[300];

	sa_log_init("test_daemon_profile", SA_LOG_ERR, 0);
	snprintf(dir, sizeof(dir), "%s/sa-profile-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(dir) == NULL)
		return 99;
	test_durations();
	test_conf_keys();
	test_templates();
	test_load();
	test_refusals();
	test_load_all();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("could not remove %s", dir);
	return tap_done();
}

/*
 * profile.c - agent profiles: one file, one certificate. The file's
 * top and [scep_agent] keys become the settings of an enrollment (as
 * enroll would have them) plus the daemon's own keys, checked once here.
 */
#include "profile.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "p11.h"
#include "sa_err.h"
#include "sa_log.h"

#define DEF_RENEW_PCT 75
#define DEF_HOOK_TIMEOUT 60
#define DEF_KEEP_OLD 1
#define DEF_RETRY_MIN 60
#define DEF_RETRY_MAX 86400
#define DEF_CLOCK_WAIT 300
#define DEF_NETWORK_WAIT 120
#define JITTER_AUTO_MAX 3600

#define SYS_NET "/sys/class/net"

/* ---- templates ---- */

/* The first line of a small file, trimmed (NUL, blanks); caller frees. */
static int read_first_line(const char *path, const char *what, char **out)
{
	char buf[512];
	size_t n, i, a;
	FILE *fp;

	*out = NULL;
	fp = fopen(path, "re");
	if (fp == NULL)
		return sa_fail_noossl(SA_EUSAGE, "%s: cannot read %s: %s", what,
				      path, strerror(errno));
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	/* device tree strings end with NUL; DMI with a newline */
	for (i = 0; i < n && buf[i] != '\n' && buf[i] != '\0'; i++)
		;
	buf[i] = '\0';
	while (i > 0 && isspace((unsigned char)buf[i - 1]))
		buf[--i] = '\0';
	for (a = 0; buf[a] != '\0' && isspace((unsigned char)buf[a]); a++)
		;
	if (buf[a] == '\0')
		return sa_fail_noossl(SA_EUSAGE, "%s: %s is empty", what, path);
	for (i = a; buf[i]; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			return sa_fail_noossl(SA_EUSAGE, "%s: %s holds control "
					      "characters", what, path);
	*out = strdup(buf + a);
	return *out ? 0 : sa_fail_noossl(SA_ENOMEM, "out of memory");
}

/* The value of one placeholder name (without braces). */
static int placeholder(const char *name, size_t len, const char *serial_file,
		       char **out)
{
	char host[256], path[300], iface[64];
	char *p;

	*out = NULL;
	if (len == 8 && strncmp(name, "hostname", 8) == 0) {
		if (gethostname(host, sizeof(host)) < 0)
			return sa_fail_noossl(SA_EUSAGE, "{hostname}: cannot get "
					      "the host name: %s",
					      strerror(errno));
		host[sizeof(host) - 1] = '\0';
		*out = strdup(host);
		return *out ? 0 : sa_fail_noossl(SA_ENOMEM, "out of memory");
	}
	if (len == 13 && strncmp(name, "device_serial", 13) == 0) {
		if (serial_file == NULL || serial_file[0] == '\0')
			return sa_fail_noossl(SA_EUSAGE, "{device_serial} needs "
					      "SerialFile (the file holding the "
					      "device's serial number, e.g. "
					      "/sys/class/dmi/id/product_serial)");
		return read_first_line(serial_file, "{device_serial} "
				       "(SerialFile)", out);
	}
	if (len > 4 && strncmp(name, "mac:", 4) == 0) {
		if (len - 4 >= sizeof(iface) ||
		    memchr(name + 4, '/', len - 4) != NULL ||
		    (len - 4 <= 2 && name[4] == '.'))
			return sa_fail_noossl(SA_EUSAGE, "{%.*s}: not an "
					      "interface name", (int)len, name);
		memcpy(iface, name + 4, len - 4);
		iface[len - 4] = '\0';
		snprintf(path, sizeof(path), SYS_NET "/%s/address", iface);
		if (access(path, R_OK) < 0)
			return sa_fail_noossl(SA_EUSAGE, "{mac:%s}: there is no "
					      "network interface %s (%s)", iface,
					      iface, path);
		if (read_first_line(path, "{mac:IFACE}", out) < 0)
			return SA_EUSAGE;
		for (p = *out; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		return 0;
	}
	return sa_fail_noossl(SA_EUSAGE, "unknown placeholder {%.*s}: use "
			      "{hostname}, {device_serial} or {mac:IFACE}",
			      (int)len, name);
}

/*
 * tmpl with its placeholders filled; with dn, the characters the subject
 * syntax gives a meaning ('/', '+', '\') are escaped in what is filled in.
 */
static int template_fill(const char *tmpl, const char *serial_file, int dn,
			 char **out)
{
	const char *p = tmpl, *close;
	char *buf = NULL, *val = NULL, *v;
	size_t len = 0;
	FILE *fp;
	int rc = 0;

	*out = NULL;
	fp = open_memstream(&buf, &len);
	if (fp == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	while (*p) {
		if (*p != '{') {
			fputc(*p++, fp);
			continue;
		}
		close = strchr(p, '}');
		if (close == NULL) {
			rc = sa_fail_noossl(SA_EUSAGE, "a '{' without its '}' in "
					    "\"%s\"", tmpl);
			break;
		}
		rc = placeholder(p + 1, (size_t)(close - p - 1), serial_file,
				 &val);
		if (rc < 0)
			break;
		for (v = val; *v; v++) {
			if (dn && (*v == '/' || *v == '+' || *v == '\\'))
				fputc('\\', fp);
			fputc(*v, fp);
		}
		free(val);
		val = NULL;
		p = close + 1;
	}
	if (fclose(fp) != 0 && rc == 0)
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
	if (rc < 0) {
		free(buf);
		return rc;
	}
	*out = buf;
	return 0;
}

int profile_template(const char *tmpl, const char *serial_file, char **out)
{
	return template_fill(tmpl, serial_file, 0, out);
}

/* ---- checks ---- */

/* The line of the last value of key in the profile's scopes, or 0. */
static int line_of(const struct conf_file *cf, const char *key)
{
	int line = 0;
	size_t i;

	for (i = 0; i < cf->n; i++)
		if ((cf->e[i].section[0] == '\0' ||
		     strcasecmp(cf->e[i].section, "scep_agent") == 0) &&
		    strcasecmp(cf->e[i].key, key) == 0)
			line = cf->e[i].line;
	return line;
}

/* "PATH:LINE" of key, or "PATH" when it is not in the file. */
static const char *where(const struct conf_file *cf, const char *key,
			 char *buf, size_t len)
{
	int line = line_of(cf, key);

	if (line > 0)
		snprintf(buf, len, "%s:%d", cf->path, line);
	else
		snprintf(buf, len, "%s", cf->path);
	return buf;
}

/* Does the pkcs11: URI's path have a non-empty object= attribute? */
static int uri_has_object(const char *uri)
{
	const char *p = uri + 7, *end = strchr(uri, '?');
	size_t n;

	if (end == NULL)
		end = uri + strlen(uri);
	while (p < end) {
		n = strcspn(p, ";?");
		if ((size_t)(end - p) < n)
			n = (size_t)(end - p);
		if (n > 7 && strncasecmp(p, "object=", 7) == 0)
			return 1;
		p += n;
		if (*p == ';')
			p++;
		else
			break;
	}
	return 0;
}

/* A fingerprint value (optional "alg:", hex with ':', ' ' or '-'). */
static int is_fingerprint(const char *v)
{
	const char *colon = strchr(v, ':'), *p = v;
	size_t n = 0;

	if (colon != NULL && colon - v > 2)
		p = colon + 1;
	for (; *p; p++) {
		if (*p == ':' || *p == ' ' || *p == '-')
			continue;
		if (!isxdigit((unsigned char)*p))
			return 0;
		n++;
	}
	return n == 32 || n == 40 || n == 56 || n == 64 || n == 96 || n == 128;
}

/* Settings the profile makes itself: refused when the file gives them. */
static int refuse_own(const struct conf_file *cf, const char *key,
		      const void *set, const char *why)
{
	char w[4200];

	if (set == NULL)
		return 0;
	return sa_fail_noossl(SA_EUSAGE, "%s: %s has no place in an agent "
			      "profile: %s", where(cf, key, w, sizeof(w)), key,
			      why);
}

static int check(const struct conf_file *cf, struct profile *p)
{
	struct conf_settings *s = &p->o.s;
	char w[4200];
	int rc;

	if (s->url == NULL || s->url[0] == '\0')
		return sa_fail_noossl(SA_EUSAGE, "%s: URL is missing: the CA's "
				      "SCEP URL is required in a profile",
				      cf->path);
	if (s->store_dir == NULL || s->store_dir[0] == '\0')
		return sa_fail_noossl(SA_EUSAGE, "%s: StoreDir is missing: the "
				      "directory of the profile's certificates "
				      "is required", cf->path);
	if (s->local_cert_file != NULL || s->ca_cert_file != NULL)
		return sa_fail_noossl(SA_EUSAGE, "%s: StoreDir replaces %s%s%s "
				      "in a profile (StoreDir/latest.crt and "
				      "StoreDir/ca.crt): remove %s",
				      where(cf, s->local_cert_file ?
					    "LocalCertFile" : "CACertFile",
					    w, sizeof(w)),
				      s->local_cert_file ? "LocalCertFile" : "",
				      s->local_cert_file && s->ca_cert_file ?
				      " and " : "",
				      s->ca_cert_file ? "CACertFile" : "",
				      s->local_cert_file && s->ca_cert_file ?
				      "them" : "it");
	rc = refuse_own(cf, "PrivateKeyFile", s->private_key,
			"NewKey names the profile's key");
	if (rc == 0)
		rc = refuse_own(cf, "SignKeyFile", s->sign_key, "renewals are "
				"signed by the current key and certificate");
	if (rc == 0)
		rc = refuse_own(cf, "SignCertFile", s->sign_cert_file, "renewals "
				"are signed by the current key and certificate");
	if (rc == 0)
		rc = refuse_own(cf, "CertReqFile", s->cert_req_file, "the "
				"request is kept in StateDir");
	if (rc < 0)
		return rc;
	if (s->challenge_prompt == 1)
		return sa_fail_noossl(SA_EUSAGE, "%s: ChallengePasswordPrompt "
				      "cannot work without a terminal: use "
				      "ChallengePasswordFile or "
				      "ChallengePasswordEnv",
				      where(cf, "ChallengePasswordPrompt", w,
					    sizeof(w)));
	if (s->new_key == NULL || !p11_is_uri(s->new_key) ||
	    !uri_has_object(s->new_key))
		return sa_fail_noossl(SA_EUSAGE, "%s: NewKey %s: a profile's key "
				      "is named by a pkcs11: URI with object= "
				      "(its label), e.g. NewKey = "
				      "pkcs11:token=gw;object=device",
				      where(cf, "NewKey", w, sizeof(w)),
				      s->new_key ? "is not such a URI" :
				      "is missing");
	if (s->subject == NULL || s->subject[0] == '\0')
		return sa_fail_noossl(SA_EUSAGE, "%s: Subject is missing: the "
				      "certificate's subject (/CN=...) is "
				      "required", cf->path);
	if (s->fingerprint == NULL || s->fingerprint[0] == '\0') {
		if (s->tofu != 1)
			return sa_fail_noossl(SA_EUSAGE, "%s: FingerPrint is "
					      "missing: pin the CA with its "
					      "fingerprint (scep-agent getca "
					      "shows it), or set TrustOnFirstUse "
					      "= yes to pin what the first "
					      "GetCACert returns", cf->path);
	} else if (scep_digest_from_name(s->fingerprint) > 0) {
		if (s->tofu != 1)
			return sa_fail_noossl(SA_EUSAGE, "%s: FingerPrint = %s "
					      "names a digest, not a fingerprint: "
					      "a profile pins its CA: give the "
					      "CA's fingerprint, or set "
					      "TrustOnFirstUse = yes",
					      where(cf, "FingerPrint", w,
						    sizeof(w)), s->fingerprint);
	} else if (!is_fingerprint(s->fingerprint)) {
		return sa_fail_noossl(SA_EUSAGE, "%s: FingerPrint \"%s\" is not a "
				      "fingerprint (hex digits of an MD5, SHA-1, "
				      "SHA-2 digest, colons allowed)",
				      where(cf, "FingerPrint", w, sizeof(w)),
				      s->fingerprint);
	} else if (s->tofu == 1) {
		sa_verbose("%s: FingerPrint pins the CA; TrustOnFirstUse has "
			   "nothing to do", cf->path);
	}
	if (s->retry_min == 0 || (s->retry_min > 0 && s->retry_max >= 0 &&
				  s->retry_max < s->retry_min))
		return sa_fail_noossl(SA_EUSAGE, "%s: RetryMin must be 1 s or "
				      "more and RetryMax at least RetryMin",
				      where(cf, "RetryMin", w, sizeof(w)));
	if (s->hook_timeout == 0)
		return sa_fail_noossl(SA_EUSAGE, "%s: HookTimeout must be 1 s or "
				      "more", where(cf, "HookTimeout", w,
						    sizeof(w)));
	if (s->keep_old > 100)
		return sa_fail_noossl(SA_EUSAGE, "%s: KeepOld %ld: keep at most "
				      "100 old keys and certificates",
				      where(cf, "KeepOld", w, sizeof(w)),
				      s->keep_old);
	return 0;
}

/* ---- load ---- */

static char *dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static int set_path(char **dst, const char *dir, const char *name)
{
	free(*dst);
	*dst = NULL;
	if (asprintf(dst, "%s/%s", dir, name) < 0) {
		*dst = NULL;
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	}
	return 0;
}

/* Subject and SubjectAltName templates filled in. */
static int fill_templates(const struct conf_file *cf, struct profile *p)
{
	struct conf_settings *s = &p->o.s;
	char *v = NULL, *msg, w[4200];
	const char *key = "Subject";
	size_t i;
	int rc;

	rc = template_fill(s->subject, s->serial_file, 1, &v);
	if (rc == 0) {
		free(s->subject);
		s->subject = v;
	}
	for (i = 0; rc == 0 && i < s->n_san; i++) {
		key = "SubjectAltName";
		rc = template_fill(s->san[i], s->serial_file, 0, &v);
		if (rc == 0) {
			free(s->san[i]);
			s->san[i] = v;
		}
	}
	if (rc < 0 && rc != SA_ENOMEM) {
		msg = strdup(sa_errmsg());
		rc = sa_fail_noossl(rc, "%s: %s: %s", where(cf, key, w, sizeof(w)),
				    key, msg ? msg : "?");
		free(msg);
	}
	return rc;
}

/* The name of a profile: the file's name without ".conf". */
static char *name_of(const char *path)
{
	const char *b = strrchr(path, '/');
	size_t n;
	char *name;

	b = b ? b + 1 : path;
	n = strlen(b);
	if (n > 5 && strcmp(b + n - 5, ".conf") == 0)
		n -= 5;
	name = strndup(b, n);
	return name;
}

int profile_load(const char *path, struct profile **out)
{
	struct conf_file *cf = NULL;
	struct conf_settings *s;
	struct profile *p;
	int rc;

	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	conf_settings_init(&p->o.s);
	s = &p->o.s;
	p->path = strdup(path);
	p->name = name_of(path);
	if (p->path == NULL || p->name == NULL) {
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	if (p->name[0] == '\0' || p->name[0] == '.') {
		rc = sa_fail_noossl(SA_EUSAGE, "%s: a profile's file name (its "
				    "name) cannot be empty or start with '.'",
				    path);
		goto out;
	}
	rc = conf_file_parse(path, &cf);
	if (rc < 0)
		goto out;
	rc = conf_apply_profile(cf, s);
	if (rc < 0)
		goto out;
	rc = check(cf, p);
	if (rc < 0)
		goto out;
	rc = fill_templates(cf, p);
	if (rc < 0)
		goto out;
	p->store_dir = strdup(s->store_dir);
	p->state_dir = strdup(s->state_dir ? s->state_dir : PROFILE_STATE_DIR);
	if (p->store_dir == NULL || p->state_dir == NULL) {
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	p->o.op = OP_ENROLL;
	p->o.op_name = "enroll";
	p->o.conf_path = p->path;
	rc = set_path(&s->ca_cert_file, p->store_dir, "ca.crt");
	if (rc == 0)
		rc = set_path(&s->local_cert_file, p->store_dir, "latest.crt");
	if (rc == 0) {
		char req[4096];

		snprintf(req, sizeof(req), "%s.req", p->name);
		rc = set_path(&s->cert_req_file, p->state_dir, req);
	}
	if (rc < 0)
		goto out;
	rc = agent_opts_derive(&p->o, AGENT_DERIVE_NO_TPM);
	if (rc < 0) {
		char *msg = strdup(sa_errmsg());

		rc = sa_fail_noossl(rc, "%s: %s", path, msg ? msg : "?");
		free(msg);
		goto out;
	}
	p->renew_pct = DEF_RENEW_PCT;
	p->renew_before = -1;
	if (s->renew_at != NULL &&
	    conf_renew_at(s->renew_at, &p->renew_pct, &p->renew_before) < 0) {
		rc = sa_fail_noossl(SA_EINTERNAL, "RenewAt unchecked");
		goto out;
	}
	p->hook_success = dup_or_null(s->hook_success);
	p->hook_failure = dup_or_null(s->hook_failure);
	p->adopt_cert = dup_or_null(s->adopt_cert);
	p->metrics_file = dup_or_null(s->metrics_file);
	p->serial_file = dup_or_null(s->serial_file);
	if ((s->hook_success && !p->hook_success) ||
	    (s->hook_failure && !p->hook_failure) ||
	    (s->adopt_cert && !p->adopt_cert) ||
	    (s->metrics_file && !p->metrics_file) ||
	    (s->serial_file && !p->serial_file)) {
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	p->hook_timeout = s->hook_timeout > 0 ? s->hook_timeout :
			  DEF_HOOK_TIMEOUT;
	p->keep_old = s->keep_old >= 0 ? (int)s->keep_old : DEF_KEEP_OLD;
	p->tofu = s->tofu == 1;
	p->jitter = s->renew_jitter; /* -1: automatic */
	p->backoff_min = s->retry_min > 0 ? s->retry_min : DEF_RETRY_MIN;
	p->backoff_max = s->retry_max >= 0 ? s->retry_max : DEF_RETRY_MAX;
	if (p->backoff_max < p->backoff_min)
		p->backoff_max = p->backoff_min;
	p->clock_wait = s->clock_wait >= 0 ? s->clock_wait : DEF_CLOCK_WAIT;
	p->network_wait = s->network_wait >= 0 ? s->network_wait :
			  DEF_NETWORK_WAIT;
	*out = p;
	p = NULL;
	rc = 0;
out:
	conf_file_free(cf);
	profile_free(p);
	return rc;
}

void profile_free(struct profile *p)
{
	if (p == NULL)
		return;
	agent_opts_free(&p->o);
	free(p->name);
	free(p->path);
	free(p->store_dir);
	free(p->state_dir);
	free(p->hook_success);
	free(p->hook_failure);
	free(p->adopt_cert);
	free(p->metrics_file);
	free(p->serial_file);
	free(p);
}

long profile_jitter(const struct profile *p, long lifetime)
{
	long j;

	if (p->jitter >= 0)
		return p->jitter;
	j = lifetime > 0 ? lifetime / 100 : 0;
	return j > JITTER_AUTO_MAX ? JITTER_AUTO_MAX : j;
}

time_t profile_renew_point(const struct profile *p, time_t not_before,
			   time_t not_after)
{
	time_t life = not_after > not_before ? not_after - not_before : 0;
	time_t t;

	if (p->renew_before < 0)
		return not_before + (time_t)((long long)life * p->renew_pct / 100);
	t = not_after - (time_t)p->renew_before;
	return t < not_before ? not_before : t;
}

/* ---- several ---- */

static int conf_file_filter(const struct dirent *de)
{
	size_t n = strlen(de->d_name);

	return de->d_name[0] != '.' && n > 5 &&
	       strcmp(de->d_name + n - 5, ".conf") == 0;
}

/* Load path into the list; a failure is reported and counted. */
static int add_one(const char *path, struct profile ***list, int *n, int *bad)
{
	struct profile *p = NULL, **l;
	int i, rc;

	rc = profile_load(path, &p);
	if (rc == SA_ENOMEM)
		return rc;
	if (rc < 0) {
		sa_err("%s", sa_errmsg());
		sa_err_clear();
		(*bad)++;
		return 0;
	}
	for (i = 0; i < *n; i++)
		if (strcmp((*list)[i]->name, p->name) == 0) {
			sa_err("%s: a profile named %s is already loaded from "
			       "%s: profile names (file names without .conf) "
			       "must differ; %s skipped", path, p->name,
			       (*list)[i]->path, path);
			profile_free(p);
			(*bad)++;
			return 0;
		}
	l = realloc(*list, (size_t)(*n + 1) * sizeof(*l));
	if (l == NULL) {
		profile_free(p);
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	}
	*list = l;
	l[(*n)++] = p;
	return 0;
}

int profile_load_all(char *const *args, int nargs, struct profile ***out,
		     int *n, int *bad)
{
	struct profile **list = NULL;
	struct dirent **ents = NULL;
	struct stat sb;
	char *path;
	int i, j, ne, cnt = 0, rc = 0;

	*out = NULL;
	*n = 0;
	*bad = 0;
	for (i = 0; i < nargs && rc == 0; i++) {
		if (stat(args[i], &sb) < 0) {
			sa_err("%s: no such profile or directory of profiles "
			       "(%s)", args[i], strerror(errno));
			(*bad)++;
			continue;
		}
		if (!S_ISDIR(sb.st_mode)) {
			rc = add_one(args[i], &list, &cnt, bad);
			continue;
		}
		ne = scandir(args[i], &ents, conf_file_filter, alphasort);
		if (ne < 0) {
			sa_err("%s: cannot read the directory of profiles: %s",
			       args[i], strerror(errno));
			(*bad)++;
			continue;
		}
		for (j = 0; j < ne; j++) {
			if (rc == 0) {
				if (asprintf(&path, "%s/%s", args[i],
					     ents[j]->d_name) < 0)
					rc = sa_fail_noossl(SA_ENOMEM,
							    "out of memory");
				else {
					rc = add_one(path, &list, &cnt, bad);
					free(path);
				}
			}
			free(ents[j]);
		}
		free(ents);
		ents = NULL;
	}
	if (rc < 0) {
		profile_list_free(list, cnt);
		return rc;
	}
	*out = list;
	*n = cnt;
	return 0;
}

void profile_list_free(struct profile **list, int n)
{
	int i;

	for (i = 0; i < n; i++)
		profile_free(list[i]);
	free(list);
}

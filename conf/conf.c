/*
 * conf.c - configuration keys: sscep 0.10's keys and sections, scep-agent's
 * own keys, scopes per operation, and the merge of command-line options.
 */
#include "conf.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "sa_err.h"
#include "sa_log.h"

enum ktype {
	K_STR, K_LONG, K_BOOL, K_LIST, K_IGNORE, K_SECRET,
	K_TIME,  /* long seconds: conf_duration() */
	K_RENEW, /* string checked by conf_renew_at() */
};

struct key {
	const char *name;
	enum ktype type;
	size_t off;
};

#define S(n, f) { n, K_STR, offsetof(struct conf_settings, f) }
#define L(n, f) { n, K_LONG, offsetof(struct conf_settings, f) }
#define B(n, f) { n, K_BOOL, offsetof(struct conf_settings, f) }
#define T(n, f) { n, K_TIME, offsetof(struct conf_settings, f) }
#define IGN(n) { n, K_IGNORE, 0 }

static const struct key keys[] = {
	/* sscep 0.10 */
	S("URL", url),
	S("Proxy", proxy),
	S("CACertFile", ca_cert_file),
	S("CAIdentifier", ca_ident),
	S("EncAlgorithm", enc_alg),
	S("SigAlgorithm", sig_alg),
	B("Verbose", verbose),
	B("Debug", debug),
	S("FingerPrint", fingerprint),
	S("PrivateKeyFile", private_key),
	S("CertReqFile", cert_req_file),
	S("SignKeyFile", sign_key),
	S("SignCertFile", sign_cert_file),
	S("LocalCertFile", local_cert_file),
	S("EncCertFile", enc_cert_file),
	S("SelfSignedFile", self_signed_file),
	S("GetCertFile", get_cert_file),
	S("GetCertSerial", get_cert_serial),
	S("GetCrlFile", get_crl_file),
	T("PollInterval", poll_interval),
	T("MaxPollTime", max_poll_time),
	L("MaxPollCount", max_poll_count),
	B("Resume", resume),
	S("engine", engine),
	/* sscep engine sections */
	S("engine_id", engine_id),
	S("MODULE_PATH", pkcs11_module),
	{ "PIN", K_SECRET, offsetof(struct conf_settings, engine_pin) },
	IGN("dynamic_path"),
	IGN("SO_PATH"),
	IGN("cmds"),
	IGN("MonitorInformation"),
	/* scep-agent */
	S("PKCS11Module", pkcs11_module),
	S("PinEnv", pin_env),
	S("PinFile", pin_file),
	S("NewKey", new_key),
	S("KeyType", key_type),
	S("Subject", subject),
	{ "SubjectAltName", K_LIST, offsetof(struct conf_settings, san) },
	S("ChallengePasswordFile", challenge_file),
	S("ChallengePasswordEnv", challenge_env),
	B("ChallengePasswordPrompt", challenge_prompt),
	S("CertTemplate", cert_template),
	S("KeyUsage", key_usage),
	S("ExtendedKeyUsage", ext_key_usage),
	S("CABundle", ca_bundle),
	B("Insecure", insecure),
	L("Timeout", timeout),
	L("ConnectTimeout", connect_timeout),
	L("WaitConnect", wait_connect),
	S("TokenTimeout", token_timeout),
	B("ForceGet", force_get),
	S("RenewMode", renew_mode),
	B("StoreCA", store_ca),
	S("CertLabel", cert_label),
	B("Overwrite", overwrite),
	B("TPM", tpm),
	S("TCTI", tcti),
	S("TPMStore", tpm_store),
	/* agent daemon: profiles (ignored by the one-shot commands) */
	S("StoreDir", store_dir),
	S("StateDir", state_dir),
	{ "RenewAt", K_RENEW, offsetof(struct conf_settings, renew_at) },
	S("HookSuccess", hook_success),
	S("HookFailure", hook_failure),
	T("HookTimeout", hook_timeout),
	L("KeepOld", keep_old),
	B("TrustOnFirstUse", tofu),
	S("SerialFile", serial_file),
	S("AdoptCert", adopt_cert),
	T("RenewJitter", renew_jitter),
	T("RetryMin", retry_min),
	T("RetryMax", retry_max),
	S("MetricsFile", metrics_file),
	T("ClockWait", clock_wait),
	T("NetworkWait", network_wait),
};

/* Fields with no configuration key, set from the command line only. */
static const struct key cli_only[] = {
	S("-O", other_cert_file),
	S("-w", out_file),
	S("-C", ca_chain_file),
	S("--label", token_label),
	S("--so-pin-file", so_pin_file),
	S("--so-pin-env", so_pin_env),
	B("--force-reinit", force_reinit),
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))
#define NCLI (sizeof(cli_only) / sizeof(cli_only[0]))

#define FIELD(s, k, T) ((T *)(void *)((char *)(s) + (k)->off))

static void wipe_free(char *p)
{
	if (p != NULL) {
		OPENSSL_cleanse(p, strlen(p));
		free(p);
	}
}

static void free_key(struct conf_settings *s, const struct key *k)
{
	size_t i;

	switch (k->type) {
	case K_STR:
	case K_SECRET:
	case K_RENEW:
		wipe_free(*FIELD(s, k, char *));
		*FIELD(s, k, char *) = NULL;
		break;
	case K_LONG:
	case K_TIME:
		*FIELD(s, k, long) = -1;
		break;
	case K_BOOL:
		*FIELD(s, k, int) = -1;
		break;
	case K_LIST:
		for (i = 0; i < s->n_san; i++)
			free(s->san[i]);
		free(s->san);
		s->san = NULL;
		s->n_san = 0;
		break;
	case K_IGNORE:
		break;
	}
}

void conf_settings_init(struct conf_settings *s)
{
	size_t i;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < NKEYS; i++)
		free_key(s, &keys[i]);
	for (i = 0; i < NCLI; i++)
		free_key(s, &cli_only[i]);
}

void conf_settings_free(struct conf_settings *s)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		free_key(s, &keys[i]);
	for (i = 0; i < NCLI; i++)
		free_key(s, &cli_only[i]);
	s->warnings = 0;
}

int conf_bool(const char *v)
{
	static const char *const yes[] = { "yes", "true", "on", "1", "y" };
	static const char *const no[] = { "no", "false", "off", "0", "n", "" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (strcasecmp(v, yes[i]) == 0)
			return 1;
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (strcasecmp(v, no[i]) == 0)
			return 0;
	return -1;
}

int conf_duration(const char *v, long *secs)
{
	long n, mul = 1;
	char *end;

	if (*v < '0' || *v > '9')
		return -1;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0)
		return -1;
	if (*end != '\0') {
		switch (*end) {
		case 's': mul = 1; break;
		case 'm': mul = 60; break;
		case 'h': mul = 3600; break;
		case 'd': mul = 86400; break;
		default: return -1;
		}
		if (end[1] != '\0')
			return -1;
	}
	if (n > LONG_MAX / mul)
		return -1;
	*secs = n * mul;
	return 0;
}

int conf_renew_at(const char *v, int *pct, long *before)
{
	size_t len = strlen(v);
	long n;
	char *end;

	if (len > 1 && v[len - 1] == '%') {
		if (*v < '0' || *v > '9')
			return -1;
		errno = 0;
		n = strtol(v, &end, 10);
		if (errno != 0 || end != v + len - 1 || n < 1 || n > 99)
			return -1;
		*pct = (int)n;
		*before = -1;
		return 0;
	}
	if (conf_duration(v, &n) < 0 || n < 1)
		return -1;
	*pct = 0;
	*before = n;
	return 0;
}

static const struct key *find_key(const char *name)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (strcasecmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static int set_value(struct conf_settings *s, const struct key *k,
		     const char *value, const char *where)
{
	char *end, *dup, **list;
	long n;
	int b;

	switch (k->type) {
	case K_STR:
	case K_SECRET:
		dup = strdup(value);
		if (dup == NULL)
			return sa_fail(SA_ENOMEM, "out of memory");
		wipe_free(*FIELD(s, k, char *));
		*FIELD(s, k, char *) = dup;
		return 0;
	case K_RENEW:
		if (conf_renew_at(value, &b, &n) < 0)
			return sa_fail_noossl(SA_EUSAGE, "%s: %s must be a "
					      "percentage of the lifetime (1%%"
					      "..99%%, e.g. 75%%) or a time before "
					      "expiry (30d, 12h, 90m, 45s or "
					      "seconds), not \"%s\"", where,
					      k->name, value);
		dup = strdup(value);
		if (dup == NULL)
			return sa_fail(SA_ENOMEM, "out of memory");
		wipe_free(*FIELD(s, k, char *));
		*FIELD(s, k, char *) = dup;
		return 0;
	case K_TIME:
		if (conf_duration(value, &n) < 0)
			return sa_fail_noossl(SA_EUSAGE, "%s: %s must be a time: "
					      "seconds, or a number with s, m, h "
					      "or d (45s, 90m, 12h, 30d), not "
					      "\"%s\"", where, k->name, value);
		*FIELD(s, k, long) = n;
		return 0;
	case K_LONG:
		errno = 0;
		n = strtol(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0' || n < 0)
			return sa_fail(SA_EUSAGE, "%s: %s must be a number "
				       "of 0 or more, not \"%s\"", where,
				       k->name, value);
		*FIELD(s, k, long) = n;
		return 0;
	case K_BOOL:
		b = conf_bool(value);
		if (b < 0)
			return sa_fail(SA_EUSAGE, "%s: %s must be yes or no "
				       "(true/false), not \"%s\"", where,
				       k->name, value);
		*FIELD(s, k, int) = b;
		return 0;
	case K_LIST:
		dup = strdup(value);
		list = realloc(s->san, (s->n_san + 1) * sizeof(*list));
		if (dup == NULL || list == NULL) {
			free(dup);
			if (list != NULL)
				s->san = list;
			return sa_fail(SA_ENOMEM, "out of memory");
		}
		s->san = list;
		s->san[s->n_san++] = dup;
		return 0;
	case K_IGNORE:
		sa_verbose("%s: %s is an sscep engine setting with no "
			   "meaning here; ignored", where, k->name);
		return 0;
	}
	return SA_EINTERNAL;
}

int conf_set(struct conf_settings *s, const char *key, const char *value,
	     const char *where)
{
	const struct key *k = find_key(key);

	if (k == NULL)
		return SA_ENOTFOUND;
	return set_value(s, k, value, where);
}

/* The sections scep-agent reads, in the order they are applied. */
static const char *const general_sections[] = {
	"", "sscep", "scep_agent",
};
static const char *const op_names[] = {
	"getca", "enroll", "getcert", "getcrl", "getnextca",
};

/* sscep engine sections whose settings belong to other engines. */
static int foreign_engine_section(const char *sec)
{
	return strncasecmp(sec, "sscep_engine_", 13) == 0 &&
	       strcasecmp(sec, "sscep_engine_pkcs11") != 0;
}

static int known_section(const char *sec, const char *engine_sec)
{
	char buf[64];
	size_t i;

	for (i = 0; i < sizeof(general_sections) / sizeof(general_sections[0]); i++)
		if (strcasecmp(sec, general_sections[i]) == 0)
			return 1;
	if (strcasecmp(sec, "sscep_engine") == 0 ||
	    strcasecmp(sec, "sscep_engine_pkcs11") == 0 ||
	    (engine_sec != NULL && strcasecmp(sec, engine_sec) == 0))
		return 1;
	for (i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++) {
		snprintf(buf, sizeof(buf), "sscep_%s", op_names[i]);
		if (strcasecmp(sec, buf) == 0)
			return 1;
		snprintf(buf, sizeof(buf), "scep_agent_%s", op_names[i]);
		if (strcasecmp(sec, buf) == 0)
			return 1;
	}
	return strcasecmp(sec, "scep_agent_mkrequest") == 0;
}

/* One warning for a key no scope knows (e in cf), counted in s. */
static void warn_unknown_key(const struct conf_file *cf,
			     const struct conf_entry *e,
			     struct conf_settings *s)
{
	if (find_key(e->key) != NULL)
		return;
	sa_warn("%s:%d: unknown key \"%s\" in [%s], ignored", cf->path,
		e->line, e->key, e->section[0] ? e->section : "top of file");
	s->warnings++;
}

/*
 * One warning per unknown key in known sections, per unknown section;
 * none for a key that a $variable refers to.
 */
static void warn_unknown(const struct conf_file *cf, const char *engine_sec,
			 struct conf_settings *s)
{
	const char *last_bad = NULL;
	int last_bad_line = -1;
	size_t i;

	for (i = 0; i < cf->n; i++) {
		const struct conf_entry *e = &cf->e[i];

		if (foreign_engine_section(e->section))
			continue;
		if (e->referenced) /* a $variable's definition */
			continue;
		if (!known_section(e->section, engine_sec)) {
			if (last_bad != NULL && e->section_line == last_bad_line)
				continue;
			last_bad = e->section;
			last_bad_line = e->section_line;
			sa_warn("%s:%d: unknown section [%s], its settings are "
				"ignored", cf->path, e->section_line, e->section);
			s->warnings++;
			continue;
		}
		warn_unknown_key(cf, e, s);
	}
}

static int apply_section(const struct conf_file *cf, const char *sec,
			 struct conf_settings *s)
{
	char where[4096];
	size_t i;
	int rc;

	for (i = 0; i < cf->n; i++) {
		const struct conf_entry *e = &cf->e[i];
		const struct key *k;

		if (strcasecmp(e->section, sec) != 0)
			continue;
		k = find_key(e->key);
		if (k == NULL)
			continue; /* warned about already */
		snprintf(where, sizeof(where), "%s:%d", cf->path, e->line);
		rc = set_value(s, k, e->value, where);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int conf_apply(const struct conf_file *cf, const char *op,
	       struct conf_settings *s)
{
	const char *engine_sec;
	char buf[64];
	size_t i;
	int rc;

	engine_sec = conf_file_get(cf, "sscep", "engine");
	if (engine_sec == NULL)
		engine_sec = conf_file_get(cf, "", "engine");
	warn_unknown(cf, engine_sec, s);
	for (i = 0; i < sizeof(general_sections) / sizeof(general_sections[0]); i++) {
		rc = apply_section(cf, general_sections[i], s);
		if (rc < 0)
			return rc;
	}
	/* sscep uses the engine section only when [sscep] names it. */
	if (engine_sec != NULL) {
		rc = apply_section(cf, engine_sec, s);
		if (rc < 0)
			return rc;
		rc = apply_section(cf, "sscep_engine_pkcs11", s);
		if (rc < 0)
			return rc;
		if (s->engine_id != NULL &&
		    strcasecmp(s->engine_id, "pkcs11") != 0 &&
		    strcasecmp(s->engine_id, "dynamic") != 0) {
			sa_warn("%s: engine_id %s is not supported, going on "
				"without it: keys must be files or pkcs11: URIs",
				cf->path, s->engine_id);
			s->warnings++;
		}
	}
	if (op == NULL)
		return 0;
	if (strcmp(op, "mkrequest") == 0) {
		rc = apply_section(cf, "sscep_enroll", s);
		if (rc == 0)
			rc = apply_section(cf, "scep_agent_enroll", s);
		if (rc == 0)
			rc = apply_section(cf, "scep_agent_mkrequest", s);
		return rc;
	}
	snprintf(buf, sizeof(buf), "sscep_%s", op);
	rc = apply_section(cf, buf, s);
	if (rc < 0)
		return rc;
	snprintf(buf, sizeof(buf), "scep_agent_%s", op);
	return apply_section(cf, buf, s);
}

int conf_apply_profile(const struct conf_file *cf, struct conf_settings *s)
{
	int last_line = -1;
	size_t i;
	int rc;

	for (i = 0; i < cf->n; i++) {
		const struct conf_entry *e = &cf->e[i];

		if (e->referenced) /* a $variable's definition */
			continue;
		if (e->section[0] != '\0' &&
		    strcasecmp(e->section, "scep_agent") != 0) {
			if (e->section_line == last_line)
				continue;
			last_line = e->section_line;
			sa_warn("%s:%d: section [%s] is not read in an agent "
				"profile (put its keys in [scep_agent] or before "
				"any section); ignored", cf->path,
				e->section_line, e->section);
			s->warnings++;
			continue;
		}
		warn_unknown_key(cf, e, s);
	}
	rc = apply_section(cf, "", s);
	if (rc == 0)
		rc = apply_section(cf, "scep_agent", s);
	return rc;
}

int conf_load(const char *path, const char *op, struct conf_settings *s)
{
	struct conf_file *cf = NULL;
	int rc;

	rc = conf_file_parse(path, &cf);
	if (rc < 0)
		return rc;
	rc = conf_apply(cf, op, s);
	conf_file_free(cf);
	return rc;
}

static int merge_key(struct conf_settings *dst,
		     const struct conf_settings *over, const struct key *k)
{
	size_t i;
	int rc;

	switch (k->type) {
	case K_STR:
	case K_SECRET:
	case K_RENEW:
		if (*FIELD(over, k, char *) == NULL)
			return 0;
		return set_value(dst, k, *FIELD(over, k, char *), "option");
	case K_LONG:
	case K_TIME:
		if (*FIELD(over, k, long) >= 0)
			*FIELD(dst, k, long) = *FIELD(over, k, long);
		return 0;
	case K_BOOL:
		if (*FIELD(over, k, int) >= 0)
			*FIELD(dst, k, int) = *FIELD(over, k, int);
		return 0;
	case K_LIST:
		if (over->n_san == 0)
			return 0;
		free_key(dst, k);
		for (i = 0; i < over->n_san; i++) {
			rc = set_value(dst, k, over->san[i], "option");
			if (rc < 0)
				return rc;
		}
		return 0;
	case K_IGNORE:
		return 0;
	}
	return SA_EINTERNAL;
}

int conf_merge(struct conf_settings *dst, const struct conf_settings *over)
{
	size_t i;
	int rc;

	for (i = 0; i < NKEYS; i++) {
		/* MODULE_PATH and PKCS11Module share a field: merge it once. */
		if (strcmp(keys[i].name, "MODULE_PATH") == 0)
			continue;
		rc = merge_key(dst, over, &keys[i]);
		if (rc < 0)
			return rc;
	}
	for (i = 0; i < NCLI; i++) {
		rc = merge_key(dst, over, &cli_only[i]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/*
 * conf.h - configuration: sscep's configuration file format and keys, plus
 * scep-agent's own keys, parsed into one read-only settings struct.
 *
 * File format (as sscep 0.10, which uses OpenSSL's NCONF syntax):
 *	# comment
 *	[section]
 *	Key = Value
 *	Key = "Value with \"quotes\" and spaces"
 * Keys are matched case-insensitively. An unquoted '#' starts a comment.
 * A backslash escapes the next character. Entries before the first section
 * header belong to the global scope (like [sscep]).
 *
 * Agent profiles (conf_apply_profile()) read only the top of the file and
 * [scep_agent].
 *
 * Scopes applied for an operation, later ones winning:
 *	(top of file), [sscep], [scep_agent], the engine section named by
 *	"engine = NAME" in [sscep] (as in sscep, only when named) and
 *	[sscep_engine_pkcs11], then [sscep_OP] (OP = getca, enroll, getcert,
 *	getcrl, getnextca; mkrequest reads [sscep_enroll]) and [scep_agent_OP].
 *
 * Command-line options are stored in a second struct conf_settings and
 * merged over the file's with conf_merge(): the one place where options
 * override the configuration.
 */
#ifndef CONF_H
#define CONF_H

#include <stddef.h>

/* One "Key = Value" line of a configuration file. */
struct conf_entry {
	char *section; /* "" before the first section header */
	char *key;
	char *value;
	int line;
	int section_line; /* line of the section header (0 for "") */
	int referenced;   /* a $variable below refers to it */
};

/* A parsed file: entries in file order. */
struct conf_file {
	char *path;
	struct conf_entry *e;
	size_t n;
	size_t expanded; /* bytes that $variables expanded to, in all */
};

/*
 * Parse a configuration file. Syntax errors are SA_EUSAGE with
 * "FILE:LINE: ..."; an unreadable file is SA_EIO. *out: conf_file_free().
 */
int conf_file_parse(const char *path, struct conf_file **out);

/* Same from memory; name is used in messages. */
int conf_file_parse_buf(const char *name, const char *buf, size_t len,
			struct conf_file **out);

/* Last value of key in section (case-insensitive), or NULL. Borrowed. */
const char *conf_file_get(const struct conf_file *cf, const char *section,
			  const char *key);

void conf_file_free(struct conf_file *cf);

/* Unset values: strings NULL, numbers and booleans -1, lists empty. */
struct conf_settings {
	/* sscep general ([sscep]) */
	char *url;              /* URL, -u */
	char *proxy;            /* Proxy, -p */
	char *ca_cert_file;     /* CACertFile, -c */
	char *ca_ident;         /* CAIdentifier, -i */
	char *enc_alg;          /* EncAlgorithm, -E */
	char *sig_alg;          /* SigAlgorithm, -S */
	char *engine;           /* engine section name / -g engine id */
	int verbose;            /* Verbose, -v */
	int debug;              /* Debug, -d */
	/* sscep per operation */
	char *fingerprint;      /* FingerPrint, -F: algorithm name or pinned value */
	char *private_key;      /* PrivateKeyFile, -k: path or pkcs11: URI */
	char *cert_req_file;    /* CertReqFile, -r */
	char *sign_key;         /* SignKeyFile, -K: path or pkcs11: URI */
	char *sign_cert_file;   /* SignCertFile, -O (enroll) */
	char *local_cert_file;  /* LocalCertFile, -l */
	char *enc_cert_file;    /* EncCertFile, -e */
	char *self_signed_file; /* SelfSignedFile, -L */
	char *get_cert_file;    /* GetCertFile, -w (getcert) */
	char *get_cert_serial;  /* GetCertSerial, -s */
	char *get_crl_file;     /* GetCrlFile, -w (getcrl) */
	char *other_cert_file;  /* -O for getcert/getcrl (no key) */
	char *out_file;         /* -w for getnextca (no key) */
	char *ca_chain_file;    /* -C for getnextca: chain verifying the reply */
	long poll_interval;     /* PollInterval, -t */
	long max_poll_time;     /* MaxPollTime, -T */
	long max_poll_count;    /* MaxPollCount, -n */
	int resume;             /* Resume, -R */
	/* engine section mapping */
	char *engine_id;        /* engine_id */
	char *engine_pin;       /* [sscep_engine_pkcs11] PIN (secret, cleansed) */
	/* scep-agent keys */
	char *pkcs11_module;    /* PKCS11Module (MODULE_PATH), --module */
	char *pin_env;          /* PinEnv, --pin-env */
	char *pin_file;         /* PinFile, --pin-file */
	char *new_key;          /* NewKey, --new-key: pkcs11: URI */
	char *key_type;         /* KeyType, --key-type */
	char *subject;          /* Subject, --subject */
	char **san;             /* SubjectAltName (repeatable), --san */
	size_t n_san;
	char *challenge_file;   /* ChallengePasswordFile, --challenge-file */
	char *challenge_env;    /* ChallengePasswordEnv, --challenge-env */
	int challenge_prompt;   /* ChallengePasswordPrompt, --challenge-prompt */
	char *cert_template;    /* CertTemplate, --template */
	char *key_usage;        /* KeyUsage, --key-usage */
	char *ext_key_usage;    /* ExtendedKeyUsage, --ext-key-usage */
	char *ca_bundle;        /* CABundle, --ca-bundle */
	int insecure;           /* Insecure, --insecure */
	long timeout;           /* Timeout, --timeout */
	long connect_timeout;   /* ConnectTimeout, --connect-timeout */
	long wait_connect;      /* WaitConnect, -W */
	char *token_timeout;    /* TokenTimeout, --token-timeout:
				 * "SECONDS[,KEYGEN_SECONDS]" */
	int force_get;          /* ForceGet, --get */
	char *renew_mode;       /* RenewMode, --renew-mode */
	int store_ca;           /* StoreCA, --store-ca */
	char *cert_label;       /* CertLabel, --cert-label */
	int overwrite;          /* Overwrite, --overwrite */
	int tpm;                /* TPM, --tpm: tpm2-pkcs11 set up by tpm/ */
	char *tcti;             /* TCTI, --tcti */
	char *tpm_store;        /* TPMStore, --tpm-store */
	/* init-token (command line only) */
	char *token_label;      /* --label */
	char *so_pin_file;      /* --so-pin-file */
	char *so_pin_env;       /* --so-pin-env */
	int force_reinit;       /* --force-reinit */
	/* agent daemon (profiles; the one-shot commands ignore them) */
	char *store_dir;        /* StoreDir */
	char *state_dir;        /* StateDir */
	char *renew_at;         /* RenewAt: "75%" or a time before expiry
				 * (checked by conf_renew_at() when set) */
	char *hook_success;     /* HookSuccess */
	char *hook_failure;     /* HookFailure */
	long hook_timeout;      /* HookTimeout, seconds */
	long keep_old;          /* KeepOld */
	int tofu;               /* TrustOnFirstUse */
	char *serial_file;      /* SerialFile ({device_serial}) */
	char *adopt_cert;       /* AdoptCert */
	long renew_jitter;      /* RenewJitter, seconds */
	long retry_min;         /* RetryMin, seconds */
	long retry_max;         /* RetryMax, seconds */
	char *metrics_file;     /* MetricsFile */
	long clock_wait;        /* ClockWait, seconds */
	long network_wait;      /* NetworkWait, seconds */

	unsigned warnings;      /* warnings emitted while applying (not merged) */
};

/* Set every value unset. */
void conf_settings_init(struct conf_settings *s);

/* Free the values (the engine PIN is cleansed) and reset to unset. */
void conf_settings_free(struct conf_settings *s);

/*
 * Apply a parsed file for operation op ("getca", "enroll", ...; NULL for
 * the general scopes only) into s, which should be freshly initialised.
 * An unknown key in a known section, or an unknown section, gets exactly
 * one warning naming file and line. A bad value (not a number, not a
 * boolean) is SA_EUSAGE with file and line.
 */
int conf_apply(const struct conf_file *cf, const char *op,
	       struct conf_settings *s);

/* conf_file_parse() + conf_apply(). */
int conf_load(const char *path, const char *op, struct conf_settings *s);

/*
 * The one place where command-line options override the configuration:
 * every value set in over replaces the one in dst (a list replaces the
 * whole list). Strings are copied. SA_ENOMEM on allocation failure.
 */
int conf_merge(struct conf_settings *dst, const struct conf_settings *over);

/*
 * Set one setting by its configuration key name (case-insensitive).
 * Returns 0, SA_ENOTFOUND for an unknown key, SA_EUSAGE for a bad value
 * (message recorded with where, e.g. "FILE:LINE", in it).
 */
int conf_set(struct conf_settings *s, const char *key, const char *value,
	     const char *where);

/* Parse yes/no/true/false/on/off/1/0. Returns 0 or 1, -1 if neither. */
int conf_bool(const char *v);

/*
 * A time value: bare seconds, or a number with one suffix s, m, h, d
 * ("45s", "90m", "12h", "30d"). 0 and *secs set, or -1 (nothing
 * recorded) when v is none of these or overflows.
 */
int conf_duration(const char *v, long *secs);

/*
 * RenewAt: "N%" (1..99) of the lifetime, or a time before expiry
 * (conf_duration(), at least 1 s). Sets *pct (0 when a time) and
 * *before (-1 when a percentage). 0, or -1 when malformed.
 */
int conf_renew_at(const char *v, int *pct, long *before);

/*
 * conf_apply() for an agent profile: only the top of the file and
 * [scep_agent] are read (no [sscep], engine or [sscep_OP] sections; one
 * warning per other section, naming it and its line).
 */
int conf_apply_profile(const struct conf_file *cf, struct conf_settings *s);

#endif

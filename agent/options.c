/*
 * options.c - the command line: sscep 0.10's operations and option letters
 * plus scep-agent's long options, merged over the configuration file.
 */
#include "agent.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "files.h"
#include "sa_err.h"
#include "sa_log.h"
#include "tpm.h"

const char *agent_progname = "scep-agent";

static const struct {
	const char *name;
	enum agent_op op;
	const char *conf_op; /* section suffix for the configuration */
} ops[] = {
	{ "getcaps", OP_GETCAPS, NULL },
	{ "getca", OP_GETCA, "getca" },
	{ "getnextca", OP_GETNEXTCA, "getnextca" },
	{ "enroll", OP_ENROLL, "enroll" },
	{ "getcert", OP_GETCERT, "getcert" },
	{ "getcrl", OP_GETCRL, "getcrl" },
	{ "mkrequest", OP_MKREQUEST, "mkrequest" },
	{ "list-tokens", OP_LIST_TOKENS, NULL },
	{ "list-objects", OP_LIST_OBJECTS, NULL },
	{ "init-token", OP_INIT_TOKEN, NULL },
};

void agent_usage(FILE *fp)
{
	fprintf(fp,
"scep-agent " SA_VERSION " - SCEP (RFC 8894) client with keys in PKCS#11 tokens\n"
"Usage: scep-agent OPERATION [OPTIONS]\n"
"Operations:\n"
"  getcaps       query the SCEP capabilities\n"
"  getca         get the CA/RA certificate(s)\n"
"  getnextca     get the next CA certificate(s) (rollover)\n"
"  enroll        enroll (or renew) a certificate\n"
"  getcert       query a certificate by serial number\n"
"  getcrl        query a CRL\n"
"  mkrequest     make a key (file or token) and a certificate request\n"
"  list-tokens   list the tokens of a PKCS#11 module with their URIs\n"
"  list-objects  list the objects of a token: list-objects pkcs11:token=...\n"
"  init-token    make a blank token ready: init-token [SLOT-OR-TOKEN-URI]\n"
"  run PROFILE...     the agent, in the foreground: enroll, renew, poll\n"
"  check PROFILE...   one pass: enroll or renew what is due, then exit\n"
"  status PROFILE...  each profile's state, without token or network\n"
"  provision [TOKEN-URI]  enroll every matching token side by side\n"
"                     (scep-agent provision --help)\n"
"General options:\n"
"  -u, --url URL  SCEP server URL\n"
"  -p PROXY      HTTP proxy: host:port or http://[user:pass@]host:port\n"
"  -g ENGINE     engine: only \"pkcs11\" (keys are named by pkcs11: URIs)\n"
"  -f, --config FILE  configuration file (sscep.conf format)\n"
"  -c FILE       CA certificate file, or FILE-0, FILE-1 ... (written by getca)\n"
"  -E NAME       encryption: des|3des|blowfish|aes|aes128|aes192|aes256\n"
"  -S NAME       signature digest: md5|sha1|sha224|sha256|sha384|sha512\n"
"  -W SECS       wait for connectivity, up to SECS seconds\n"
"  -v, --verbose, -d, --debug  verbose, debug output\n"
"  --ca-bundle FILE  trust anchors for HTTPS   --insecure  skip HTTPS checks\n"
"  --timeout SECS    total time per request    --get       never POST\n"
"  --connect-timeout SECS  time to connect (default 30)\n"
"  -h, --help    this help      -V, --version  the version\n"
"getca / getnextca:\n"
"  -i STRING     CA identifier\n"
"  -F NAME|HEX   fingerprint digest name, or a fingerprint that pins the CA\n"
"getnextca, sscep's form:\n"
"  -C CHAIN -c FILE [-w FILE]  verify with CHAIN, write the next CA\n"
"                certificate(s) to FILE, the reply's signer to -w FILE\n"
"getnextca without -C:\n"
"  -c FILE [-w FILE]  verify with the CA certificate FILE, write the next\n"
"                one to -w FILE (default FILE.next)\n"
"enroll:\n"
"  -k KEY        private key: a file or a pkcs11: URI\n"
"  -r FILE       certificate request (written if built with --subject)\n"
"  -K KEY -O FILE  old key and certificate: renewal\n"
"  -l FILE       write the enrolled certificate to FILE\n"
"  -e FILE       CA/RA certificate for encryption\n"
"  -L FILE       write the self-signed certificate to FILE\n"
"  -t SECS -T SECS -n COUNT  poll interval, max time, max polls\n"
"  -R            resume an interrupted (pending) enrollment\n"
"  --renew-mode auto|renewalreq|pkcsreq   --store-ca   --cert-label LABEL\n"
"getcert / getcrl:\n"
"  -k KEY -l FILE  signing key and its certificate\n"
"  -O FILE       issuer certificate (getcert) or the certificate whose CRL\n"
"                to get (getcrl)\n"
"  -s SERIAL     certificate serial number (decimal, or 0x hex)\n"
"  -w FILE       write the certificate or CRL to FILE\n"
"Keys and requests (mkrequest, enroll):\n"
"  --new-key pkcs11:URI  generate the key in the token (object= is the label)\n"
"  --key-type T  rsa:2048|rsa:3072|rsa:4096|ec:P-256|ec:P-384\n"
"  --subject /CN=...  --san TYPE:VALUE (repeatable: DNS IP email URI UPN RID)\n"
"  --challenge-file FILE | --challenge-env VAR | --challenge-prompt\n"
"  --template NAME  --key-usage LIST  --ext-key-usage LIST  --overwrite\n"
"Custody:\n"
"  --module PATH  --pin-env VAR  --pin-file FILE\n"
"  --tpm         the TPM through tpm2-pkcs11 (found and set up by scep-agent)\n"
"  --tcti STRING  how to reach the TPM (default device:/dev/tpmrm0)\n"
"  --tpm-store DIR  tpm2-pkcs11's store (default /var/lib/scep-agent/tpm2\n"
"                for root, else $XDG_DATA_HOME/scep-agent/tpm2)\n"
"init-token:\n"
"  --label LABEL  the token's label   --force-reinit  wipe an initialised one\n"
"  --so-pin-file FILE | --so-pin-env VAR  the SO PIN (else a prompt)\n"
"  --pin-file FILE | --pin-env VAR        the new user PIN (else a prompt)\n"
"  -R            finish a token an earlier init-token made (sets its user PIN)\n"
"  --token-timeout SECS[,KEYGEN_SECS]  bound of each token call (default\n"
"                60) and of key generation (300); 0: none\n"
"run / check / status (PROFILE: a profile file or a directory of *.conf):\n"
"  run [--syslog]  check [--force]  status [--json] [--warn DURATION]\n"
"  check exits 0 all fine, 3 some pending, 1 any failed; status exits 0\n"
"  all ok, 1 any failed or expiring within --warn (default 7d)\n"
"Exit codes: 0 ok, 1 error, 2 refused (FAILURE), 3 pending, 4 usage,\n"
"  5 network, 6 bad reply, 7 key/token, 8 PIN, 9 file, 10 token did not\n"
"  answer in time. See scep-agent(1).\n");
}

enum {
	LO_MODULE = 256, LO_PIN_ENV, LO_PIN_FILE, LO_NEW_KEY, LO_KEY_TYPE,
	LO_SUBJECT, LO_SAN, LO_CH_FILE, LO_CH_ENV, LO_CH_PROMPT, LO_TEMPLATE,
	LO_KU, LO_EKU, LO_CA_BUNDLE, LO_INSECURE, LO_TIMEOUT, LO_GET,
	LO_RENEW_MODE, LO_STORE_CA, LO_CERT_LABEL, LO_OVERWRITE, LO_HELP,
	LO_VERSION, LO_CONNECT_TIMEOUT, LO_TOKEN_TIMEOUT, LO_TPM, LO_TCTI,
	LO_TPM_STORE, LO_LABEL, LO_SO_PIN_FILE, LO_SO_PIN_ENV, LO_FORCE_REINIT,
};

static const struct option longopts[] = {
	{ "module", required_argument, NULL, LO_MODULE },
	{ "pin-env", required_argument, NULL, LO_PIN_ENV },
	{ "pin-file", required_argument, NULL, LO_PIN_FILE },
	{ "new-key", required_argument, NULL, LO_NEW_KEY },
	{ "key-type", required_argument, NULL, LO_KEY_TYPE },
	{ "subject", required_argument, NULL, LO_SUBJECT },
	{ "san", required_argument, NULL, LO_SAN },
	{ "challenge-file", required_argument, NULL, LO_CH_FILE },
	{ "challenge-env", required_argument, NULL, LO_CH_ENV },
	{ "challenge-prompt", no_argument, NULL, LO_CH_PROMPT },
	{ "template", required_argument, NULL, LO_TEMPLATE },
	{ "key-usage", required_argument, NULL, LO_KU },
	{ "ext-key-usage", required_argument, NULL, LO_EKU },
	{ "ca-bundle", required_argument, NULL, LO_CA_BUNDLE },
	{ "insecure", no_argument, NULL, LO_INSECURE },
	{ "timeout", required_argument, NULL, LO_TIMEOUT },
	{ "connect-timeout", required_argument, NULL, LO_CONNECT_TIMEOUT },
	{ "token-timeout", required_argument, NULL, LO_TOKEN_TIMEOUT },
	{ "get", no_argument, NULL, LO_GET },
	{ "renew-mode", required_argument, NULL, LO_RENEW_MODE },
	{ "store-ca", no_argument, NULL, LO_STORE_CA },
	{ "cert-label", required_argument, NULL, LO_CERT_LABEL },
	{ "overwrite", no_argument, NULL, LO_OVERWRITE },
	{ "tpm", no_argument, NULL, LO_TPM },
	{ "tcti", required_argument, NULL, LO_TCTI },
	{ "tpm-store", required_argument, NULL, LO_TPM_STORE },
	{ "label", required_argument, NULL, LO_LABEL },
	{ "so-pin-file", required_argument, NULL, LO_SO_PIN_FILE },
	{ "so-pin-env", required_argument, NULL, LO_SO_PIN_ENV },
	{ "force-reinit", no_argument, NULL, LO_FORCE_REINIT },
	{ "config", required_argument, NULL, 'f' },
	{ "url", required_argument, NULL, 'u' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "debug", no_argument, NULL, 'd' },
	{ "help", no_argument, NULL, LO_HELP },
	{ "version", no_argument, NULL, LO_VERSION },
	{ NULL, 0, NULL, 0 },
};

static int set_str(char **dst, const char *v)
{
	char *d = strdup(v);

	if (d == NULL)
		return sa_fail(SA_ENOMEM, "out of memory");
	free(*dst);
	*dst = d;
	return 0;
}

/* A whole number, at least min; what opt needs, in the message. */
static int set_long_min(long *dst, const char *v, const char *opt, long min,
			const char *what)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n < min)
		return sa_fail_noossl(SA_EUSAGE, "%s needs %s, not \"%s\"", opt,
				      what, v);
	*dst = n;
	return 0;
}

static int set_long(long *dst, const char *v, const char *opt)
{
	return set_long_min(dst, v, opt, 0, "a number of 0 or more");
}

/* A whole number of seconds, at least 1. */
static int set_secs(long *dst, const char *v, const char *opt)
{
	return set_long_min(dst, v, opt, 1, "a number of seconds, 1 or more");
}

static int add_san(struct conf_settings *s, const char *v)
{
	char **l = realloc(s->san, (s->n_san + 1) * sizeof(*l));

	if (l == NULL)
		return sa_fail(SA_ENOMEM, "out of memory");
	s->san = l;
	if ((l[s->n_san] = strdup(v)) == NULL)
		return sa_fail(SA_ENOMEM, "out of memory");
	s->n_san++;
	return 0;
}

/* Store one option into cli (the command line's own settings). */
static int take_opt(struct agent_opts *o, struct conf_settings *cli, int c,
		    const char *arg)
{
	enum agent_op op = o->op;

	switch (c) {
	case 'u': return set_str(&cli->url, arg);
	case 'p': return set_str(&cli->proxy, arg);
	case 'g': return set_str(&cli->engine_id, arg);
	case 'f': o->conf_path = arg; return 0;
	case 'c': return set_str(&cli->ca_cert_file, arg);
	case 'C': return set_str(&cli->ca_chain_file, arg);
	case 'E': return set_str(&cli->enc_alg, arg);
	case 'S': return set_str(&cli->sig_alg, arg);
	case 'W': return set_long(&cli->wait_connect, arg, "-W");
	case 'v': cli->verbose = 1; return 0;
	case 'd': cli->debug = 1; return 0;
	case 'i': return set_str(&cli->ca_ident, arg);
	case 'F': return set_str(&cli->fingerprint, arg);
	case 'k': return set_str(&cli->private_key, arg);
	case 'r': return set_str(&cli->cert_req_file, arg);
	case 'K': return set_str(&cli->sign_key, arg);
	case 'O':
		return set_str(op == OP_ENROLL ? &cli->sign_cert_file :
			       &cli->other_cert_file, arg);
	case 'l': return set_str(&cli->local_cert_file, arg);
	case 'e': return set_str(&cli->enc_cert_file, arg);
	case 'L': return set_str(&cli->self_signed_file, arg);
	case 't': return set_long(&cli->poll_interval, arg, "-t");
	case 'T': return set_long(&cli->max_poll_time, arg, "-T");
	case 'n': return set_long(&cli->max_poll_count, arg, "-n");
	case 'R': cli->resume = 1; return 0;
	case 's': return set_str(&cli->get_cert_serial, arg);
	case 'w':
		return set_str(op == OP_GETCERT ? &cli->get_cert_file :
			       op == OP_GETCRL ? &cli->get_crl_file :
			       &cli->out_file, arg);
	case LO_MODULE: return set_str(&cli->pkcs11_module, arg);
	case LO_PIN_ENV: return set_str(&cli->pin_env, arg);
	case LO_PIN_FILE: return set_str(&cli->pin_file, arg);
	case LO_NEW_KEY: return set_str(&cli->new_key, arg);
	case LO_KEY_TYPE: return set_str(&cli->key_type, arg);
	case LO_SUBJECT: return set_str(&cli->subject, arg);
	case LO_SAN: return add_san(cli, arg);
	case LO_CH_FILE: return set_str(&cli->challenge_file, arg);
	case LO_CH_ENV: return set_str(&cli->challenge_env, arg);
	case LO_CH_PROMPT: cli->challenge_prompt = 1; return 0;
	case LO_TEMPLATE: return set_str(&cli->cert_template, arg);
	case LO_KU: return set_str(&cli->key_usage, arg);
	case LO_EKU: return set_str(&cli->ext_key_usage, arg);
	case LO_CA_BUNDLE: return set_str(&cli->ca_bundle, arg);
	case LO_INSECURE: cli->insecure = 1; return 0;
	case LO_TIMEOUT: return set_long(&cli->timeout, arg, "--timeout");
	case LO_CONNECT_TIMEOUT:
		return set_secs(&cli->connect_timeout, arg, "--connect-timeout");
	case LO_TOKEN_TIMEOUT: return set_str(&cli->token_timeout, arg);
	case LO_GET: cli->force_get = 1; return 0;
	case LO_RENEW_MODE: return set_str(&cli->renew_mode, arg);
	case LO_STORE_CA: cli->store_ca = 1; return 0;
	case LO_CERT_LABEL: return set_str(&cli->cert_label, arg);
	case LO_OVERWRITE: cli->overwrite = 1; return 0;
	case LO_TPM: cli->tpm = 1; return 0;
	case LO_TCTI: return set_str(&cli->tcti, arg);
	case LO_TPM_STORE: return set_str(&cli->tpm_store, arg);
	case LO_LABEL: return set_str(&cli->token_label, arg);
	case LO_SO_PIN_FILE: return set_str(&cli->so_pin_file, arg);
	case LO_SO_PIN_ENV: return set_str(&cli->so_pin_env, arg);
	case LO_FORCE_REINIT: cli->force_reinit = 1; return 0;
	}
	return sa_fail_noossl(SA_EUSAGE, "unknown option; see scep-agent "
			      "--help");
}

static int is_digest_name(const char *s)
{
	int d = scep_digest_from_name(s);

	return d > 0;
}

static const EVP_MD *digest_md(int d)
{
	switch (d) {
	case SCEP_DIGEST_MD5: return EVP_md5();
	case SCEP_DIGEST_SHA1: return EVP_sha1();
	case SCEP_DIGEST_SHA224: return EVP_sha224();
	case SCEP_DIGEST_SHA384: return EVP_sha384();
	case SCEP_DIGEST_SHA512: return EVP_sha512();
	}
	return EVP_sha256();
}

/*
 * An engine other than PKCS#11 named by the configuration file (sscep's
 * sample names capi): conf_apply() warned once; operations that need no
 * key go on, and so do keys given as files or pkcs11: URIs. A key name
 * that is neither (an engine key id such as "0:01") is an error.
 */
static int foreign_engine_key(const struct agent_opts *o, const char *key,
			      const char *what)
{
	if (key == NULL || p11_is_uri(key) || files_exist(key))
		return 0;
	return sa_fail_noossl(SA_EUSAGE, "%s \"%s\" is neither a key file nor a "
			      "pkcs11: URI; keys of the configured engine %s "
			      "cannot be used: give a key file or the key's "
			      "pkcs11: URI (see scep-agent.conf(5))", what, key,
			      o->s.engine_id);
}

/*
 * sscep with its pkcs11 engine names token keys by libp11's engine key
 * ids (PrivateKeyFile = 0:01). Such a name is never a file name here: it
 * becomes the equivalent pkcs11: URI on the configured module, or it is a
 * usage error naming the URI to write. The one exception: with no engine
 * configured, a file of that name that exists is the key file it always
 * was (sscep without an engine reads files). A plain hex id counts only
 * with an engine configured.
 */
static int engine_key_id(const struct agent_opts *o, char **key,
			 const char *what)
{
	int engine = o->s.engine_id != NULL;
	char *uri = NULL;
	int rc;

	if (*key == NULL || !p11_engine_id_is(*key, engine))
		return 0;
	if (!engine && files_exist(*key))
		return 0;
	rc = p11_engine_id_to_uri(*key, engine, o->s.pkcs11_module, &uri);
	if (rc < 0) {
		char *msg = strdup(sa_errmsg());

		rc = sa_fail_noossl(rc, "%s: %s", what, msg ? msg : "?");
		free(msg);
		return rc;
	}
	sa_verbose("%s \"%s\" is a PKCS#11 engine key id: using the key %s",
		   what, *key, uri);
	free(*key);
	*key = uri;
	return 0;
}

/* Longest bound accepted: a day (a token call longer than that is a hang). */
#define TOKEN_TIMEOUT_MAX 86400UL

/*
 * --token-timeout / TokenTimeout: "SECONDS[,KEYGEN_SECONDS]", whole
 * numbers, 0 for no bound. KEYGEN_SECONDS left out: the default
 * (P11_WAIT_KEYGEN_S), or SECONDS when that is longer or 0 (no bound).
 */
static int token_timeout_parse(const char *v, unsigned long *call_s,
			       unsigned long *keygen_s)
{
	unsigned long n[2] = { 0, 0 };
	const char *p = v;
	char *end;
	int i;

	for (i = 0; i < 2; i++) {
		if (*p < '0' || *p > '9')
			goto bad;
		errno = 0;
		n[i] = strtoul(p, &end, 10);
		if (errno != 0 || n[i] > TOKEN_TIMEOUT_MAX)
			goto bad;
		p = end;
		if (*p == '\0')
			break;
		if (*p != ',' || i == 1)
			goto bad;
		p++;
	}
	*call_s = n[0];
	if (i == 1)
		*keygen_s = n[1];
	else if (n[0] == 0 || n[0] > P11_WAIT_KEYGEN_S)
		*keygen_s = n[0];
	else
		*keygen_s = P11_WAIT_KEYGEN_S;
	return 0;
bad:
	return sa_fail_noossl(SA_EUSAGE, "--token-timeout (TokenTimeout) is "
			      "SECONDS or SECONDS,KEYGEN_SECONDS (whole numbers "
			      "up to %lu, 0 for no bound), not \"%s\"",
			      TOKEN_TIMEOUT_MAX, v);
}

/* Operations that open tokens (the TPM is set up only for them). */
static int op_uses_tokens(enum agent_op op)
{
	return op == OP_ENROLL || op == OP_MKREQUEST || op == OP_GETCERT ||
	       op == OP_GETCRL || op == OP_LIST_TOKENS ||
	       op == OP_LIST_OBJECTS || op == OP_INIT_TOKEN;
}

/*
 * --tpm / TPM (implied by --tcti, --tpm-store, or a module path that is
 * tpm2-pkcs11's): tpm2-pkcs11's environment made before any module is
 * loaded (tpm/tpm_env.c), and its path as the module (--module with
 * --tpm names tpm2-pkcs11 or a wrapper of it).
 */
int agent_opts_tpm(struct agent_opts *o)
{
	struct conf_settings *s = &o->s;
	struct tpm_opts to;
	char *path = NULL;
	int rc;

	if (s->tpm == 0)
		return 0; /* TPM = no in the file, --tpm not given */
	if (s->tpm != 1 && s->tcti == NULL && s->tpm_store == NULL &&
	    (s->pkcs11_module == NULL ||
	     strstr(s->pkcs11_module, "tpm2_pkcs11") == NULL))
		return 0;
	if (!op_uses_tokens(o->op))
		return 0;
	memset(&to, 0, sizeof(to));
	to.module = s->pkcs11_module;
	to.tcti = s->tcti;
	to.store = s->tpm_store;
	to.debug = s->debug == 1;
	rc = tpm_setup(&to, &path);
	if (rc < 0)
		return rc;
	free(s->pkcs11_module);
	s->pkcs11_module = path;
	o->tpm = 1;
	return 0;
}

/* Values derived from the effective settings, checked once. */
int agent_opts_derive(struct agent_opts *o, unsigned flags)
{
	int engine_from_cli = (flags & AGENT_DERIVE_CLI_ENGINE) != 0;
	struct conf_settings *s = &o->s;
	int rc;

	o->cipher = SCEP_CIPHER_AUTO;
	o->digest = SCEP_DIGEST_AUTO;
	if (s->enc_alg != NULL &&
	    (o->cipher = scep_cipher_from_name(s->enc_alg)) < 0)
		return sa_fail_noossl(SA_EUSAGE, "unknown encryption algorithm "
				      "\"%s\" (-E / EncAlgorithm): use des, "
				      "3des, blowfish, aes, aes128, aes192 or "
				      "aes256", s->enc_alg);
	if (s->sig_alg != NULL &&
	    (o->digest = scep_digest_from_name(s->sig_alg)) < 0)
		return sa_fail_noossl(SA_EUSAGE, "unknown signature algorithm "
				      "\"%s\" (-S / SigAlgorithm): use md5, "
				      "sha1, sha224, sha256, sha384 or sha512",
				      s->sig_alg);
	o->fp_md = EVP_sha256();
	o->fp_pin = NULL;
	if (s->fingerprint != NULL && *s->fingerprint != '\0') {
		if (is_digest_name(s->fingerprint))
			o->fp_md = digest_md(scep_digest_from_name(s->fingerprint));
		else
			o->fp_pin = s->fingerprint;
	}
	o->renew_mode = RENEW_AUTO;
	if (s->renew_mode != NULL) {
		if (strcasecmp(s->renew_mode, "auto") == 0)
			o->renew_mode = RENEW_AUTO;
		else if (strcasecmp(s->renew_mode, "renewalreq") == 0)
			o->renew_mode = RENEW_RENEWALREQ;
		else if (strcasecmp(s->renew_mode, "pkcsreq") == 0)
			o->renew_mode = RENEW_PKCSREQ;
		else
			return sa_fail_noossl(SA_EUSAGE, "--renew-mode (RenewMode)"
					      " is auto, renewalreq or pkcsreq, "
					      "not \"%s\"", s->renew_mode);
	}
	if (s->connect_timeout == 0)
		return sa_fail_noossl(SA_EUSAGE, "ConnectTimeout needs a number "
				      "of seconds, 1 or more, not 0");
	o->token_call_s = P11_WAIT_CALL_S;
	o->token_keygen_s = P11_WAIT_KEYGEN_S;
	if (s->token_timeout != NULL &&
	    (rc = token_timeout_parse(s->token_timeout, &o->token_call_s,
				      &o->token_keygen_s)) < 0)
		return rc;
	if (!(flags & AGENT_DERIVE_NO_TPM)) {
		rc = agent_opts_tpm(o);
		if (rc < 0)
			return rc;
	}
	if (s->engine_id != NULL && strcasecmp(s->engine_id, "pkcs11") != 0 &&
	    strcasecmp(s->engine_id, "dynamic") != 0) {
		if (engine_from_cli)
			return sa_fail_noossl(SA_EUSAGE, "engine \"%s\" (-g) is "
					      "not supported: keys in tokens are "
					      "named by pkcs11: URIs (-g pkcs11 "
					      "or no -g)", s->engine_id);
		/* from the file: warned about there; only its keys fail */
		rc = 0;
		if ((o->op == OP_ENROLL || o->op == OP_MKREQUEST) &&
		    s->new_key == NULL)
			rc = foreign_engine_key(o, s->private_key,
						"the private key (-k, PrivateKeyFile)");
		if (rc == 0 && o->op == OP_ENROLL)
			rc = foreign_engine_key(o, s->sign_key,
						"the old key (-K, SignKeyFile)");
		if (rc == 0 && (o->op == OP_GETCERT || o->op == OP_GETCRL))
			rc = foreign_engine_key(o, s->private_key,
						"the signing key (-k, PrivateKeyFile)");
		if (rc < 0)
			return rc;
	} else {
		/* no engine, or the pkcs11 engine: its key ids become URIs */
		rc = 0;
		if (o->op == OP_ENROLL || o->op == OP_MKREQUEST ||
		    o->op == OP_GETCERT || o->op == OP_GETCRL ||
		    o->op == OP_LIST_OBJECTS)
			rc = engine_key_id(o, &s->private_key,
					   "the private key (-k, PrivateKeyFile)");
		if (rc == 0 && o->op == OP_ENROLL)
			rc = engine_key_id(o, &s->sign_key,
					   "the old key (-K, SignKeyFile)");
		if (rc < 0)
			return rc;
	}
	o->p11.module = s->pkcs11_module;
	o->p11.pin.pin_env = s->pin_env;
	o->p11.pin.pin_file = s->pin_file;
	o->p11.pin.no_prompt = 0;
	o->p11.need_login = 1;
	if (s->engine_pin != NULL && s->pin_env == NULL && s->pin_file == NULL) {
		/* borrowed: the settings wipe it when freed */
		o->p11.pin.pin_value = s->engine_pin;
		sa_warn("using the PIN from the configuration file's engine "
			"section; prefer PinFile or PinEnv");
	}
	return 0;
}

int agent_opts_parse(int argc, char **argv, struct agent_opts *o, int *help)
{
	struct conf_settings cli;
	const char *conf_op = NULL;
	size_t i;
	int c, rc;

	memset(o, 0, sizeof(*o));
	conf_settings_init(&o->s);
	conf_settings_init(&cli);
	*help = 0;
	if (argc < 2) {
		agent_usage(stderr);
		rc = sa_fail_noossl(SA_EUSAGE, "no operation given");
		goto out;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		agent_usage(stdout);
		*help = 1;
		rc = 0;
		goto out;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("scep-agent %s\n", SA_VERSION);
		*help = 1;
		rc = 0;
		goto out;
	}
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(argv[1], ops[i].name) == 0) {
			o->op = ops[i].op;
			o->op_name = ops[i].name;
			conf_op = ops[i].conf_op;
		}
	if (o->op == OP_NONE) {
		rc = sa_fail_noossl(SA_EUSAGE, "unknown operation \"%s\"; "
				    "see scep-agent --help", argv[1]);
		goto out;
	}
	opterr = 0;
	optind = 2;
	while ((c = getopt_long(argc, argv,
				":u:p:g:f:c:C:E:S:W:vdi:F:k:r:K:O:l:e:L:t:T:n:Rs:w:h",
				longopts, NULL)) != -1) {
		if (c == LO_HELP || c == 'h') {
			agent_usage(stdout);
			*help = 1;
			rc = 0;
			goto out;
		}
		if (c == LO_VERSION) {
			printf("scep-agent %s\n", SA_VERSION);
			*help = 1;
			rc = 0;
			goto out;
		}
		if (c == '?' || c == ':') {
			const char *bad = argv[optind - 1];

			rc = sa_fail_noossl(SA_EUSAGE, "%s: %s %s; see scep-agent "
					    "--help", o->op_name,
					    c == ':' ? "missing argument for" :
					    "unknown option", bad);
			goto out;
		}
		rc = take_opt(o, &cli, c, optarg);
		if (rc < 0)
			goto out;
	}
	if (optind < argc) {
		if ((o->op != OP_LIST_OBJECTS && o->op != OP_INIT_TOKEN) ||
		    optind + 1 < argc) {
			rc = sa_fail_noossl(SA_EUSAGE, "%s: unexpected argument "
					    "\"%s\"", o->op_name, argv[optind]);
			goto out;
		}
		o->arg = argv[optind];
	}
	/* -v/-d take effect before the configuration file is read */
	if (cli.debug == 1)
		sa_log_set_level(SA_LOG_DEBUG);
	else if (cli.verbose == 1)
		sa_log_set_level(SA_LOG_VERBOSE);
	if (o->conf_path != NULL) {
		rc = conf_load(o->conf_path, conf_op, &o->s);
		if (rc < 0)
			goto out;
		sa_verbose("configuration read from %s", o->conf_path);
	}
	/* the one place where the command line overrides the file */
	rc = conf_merge(&o->s, &cli);
	if (rc < 0)
		goto out;
	if (o->s.debug == 1)
		sa_log_set_level(SA_LOG_DEBUG);
	else if (o->s.verbose == 1)
		sa_log_set_level(SA_LOG_VERBOSE);
	rc = agent_opts_derive(o, cli.engine_id != NULL ?
			       AGENT_DERIVE_CLI_ENGINE : 0);
out:
	conf_settings_free(&cli);
	return rc;
}

void agent_opts_free(struct agent_opts *o)
{
	conf_settings_free(&o->s);
	memset(o, 0, sizeof(*o));
}

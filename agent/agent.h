/*
 * agent.h - the program: operations, effective options, shared helpers.
 *
 * Every operation returns 0 or a negative SA_E* code (an error, message
 * recorded with sa_fail()); a CA's verdict is put in *result as an exit
 * code (SA_EXIT_OK, SA_EXIT_PENDING, SA_EXIT_FAILURE). Only main.c turns
 * errors into exit codes and calls exit().
 */
#ifndef AGENT_H
#define AGENT_H

#include <stdio.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "conf.h"
#include "p11.h"
#include "scep.h"

enum agent_op {
	OP_NONE = 0,
	OP_GETCAPS, OP_GETCA, OP_GETNEXTCA, OP_ENROLL, OP_GETCERT, OP_GETCRL,
	OP_MKREQUEST, OP_LIST_TOKENS, OP_LIST_OBJECTS, OP_INIT_TOKEN,
};

enum agent_renew_mode {
	RENEW_AUTO = 0,   /* RenewalReq if the CA offers Renewal, else PKCSReq */
	RENEW_RENEWALREQ, /* always RenewalReq */
	RENEW_PKCSREQ,    /* PKCSReq signed by the old key and certificate */
};

/* The program name used in messages and result lines. */
extern const char *agent_progname;

/* Effective options: the configuration file with the command line over it. */
struct agent_opts {
	enum agent_op op;
	const char *op_name;
	const char *conf_path;       /* -f */
	struct conf_settings s;      /* effective values (see conf.h) */
	/* derived from s */
	int cipher;                  /* enum scep_cipher */
	int digest;                  /* enum scep_digest */
	const EVP_MD *fp_md;         /* fingerprint display digest */
	const char *fp_pin;          /* pinned fingerprint, or NULL */
	int renew_mode;              /* enum agent_renew_mode */
	const char *arg;             /* positional argument (list-objects,
				      * init-token URI) */
	struct p11_open_opts p11;    /* custody options (strings borrowed from s) */
	unsigned long token_call_s;  /* bound of a token call (0: none) */
	unsigned long token_keygen_s; /* of key generation, PIN pad (0: none) */
	int tpm;                     /* the module is tpm2-pkcs11, set up */
};

/*
 * Parse argv (argv[0] the program, argv[1] the operation), load the
 * configuration file (-f) and merge the options over it. SA_EUSAGE with a
 * sentence. *help set when --help/--version was handled (nothing to do).
 */
int agent_opts_parse(int argc, char **argv, struct agent_opts *o, int *help);
void agent_opts_free(struct agent_opts *o);

/*
 * The derived fields of o (cipher, digest, fp_md/fp_pin, renew_mode,
 * token bounds, p11, engine key ids as URIs) from o->s and o->op, checked
 * (SA_EUSAGE with a sentence). agent_opts_parse() calls it; an agent
 * profile calls it with AGENT_DERIVE_NO_TPM (the scheduling process sets
 * up no TPM) and its job child calls agent_opts_tpm() before opening the
 * token.
 */
#define AGENT_DERIVE_CLI_ENGINE 1u /* -g given: a foreign engine is an error */
#define AGENT_DERIVE_NO_TPM     2u /* leave the TPM set-up to agent_opts_tpm() */
int agent_opts_derive(struct agent_opts *o, unsigned flags);

/*
 * TPM / --tpm (or implied by TCTI, TPMStore, a tpm2_pkcs11 module path)
 * for an operation that opens tokens: tpm2-pkcs11's environment set in
 * this process and its path made o->s.pkcs11_module; o->tpm set. 0 when
 * not a TPM profile.
 */
int agent_opts_tpm(struct agent_opts *o);
void agent_usage(FILE *fp);

/* Operations (ops_*.c). */
int op_getcaps(const struct agent_opts *o, int *result);
int op_getca(const struct agent_opts *o, int *result);
int op_getnextca(const struct agent_opts *o, int *result);
int op_enroll(const struct agent_opts *o, int *result);
int op_getcert(const struct agent_opts *o, int *result);
int op_getcrl(const struct agent_opts *o, int *result);
int op_mkrequest(const struct agent_opts *o, int *result);
int op_list_tokens(const struct agent_opts *o, int *result);
int op_list_objects(const struct agent_opts *o, int *result);
int op_init_token(const struct agent_opts *o, int *result);

/* Shared helpers (ops_common.c). */

/* A SCEP client from the options (-u, -p, -i, -E, -S, HTTPS, timeouts). */
int agent_client_new(const struct agent_opts *o, scep_client **out);

/*
 * The CA certificates of -c (or its -0, -1 ... files) or, with no such
 * file (or no -c) and a pinned fingerprint (-F), of GetCACert in this
 * process (trusted the same way, written to -c when named, as getca writes
 * them), -e as encryption
 * certificate, roles selected as sscep does, trusted as scep_ca_trust()
 * says: the anchor is the pinned CA (-F) or the CA of the RA certificates;
 * certificates not chaining to it are dropped with a warning; -e must
 * chain to it (SA_EUSAGE).
 */
int agent_ca_load(const struct agent_opts *o, struct scep_ca *ca);

/* Print one certificate as sscep does (subject, issuer, usage, fingerprint). */
void agent_print_cert(const struct agent_opts *o, X509 *cert);

/* "result" lines go to stdout with the program name, like sscep. */
void agent_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Serial number of cert in decimal (and hex). Caller frees. */
char *agent_serial_str(X509 *cert);

/* Parse a serial number (decimal, or hex with 0x). get1. */
int agent_serial_parse(const char *s, ASN1_INTEGER **out);

#endif

/*
 * ops_common.c - helpers shared by the operations: the SCEP client from
 * the options, CA certificate loading and pinning, sscep-style printing.
 */
#include "agent.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/x509v3.h>

#include "csr.h"
#include "files.h"
#include "sa_err.h"
#include "sa_esc.h"
#include "sa_log.h"

void agent_out(const char *fmt, ...)
{
	va_list ap;

	printf("%s: ", agent_progname);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

int agent_client_new(const struct agent_opts *o, scep_client **out)
{
	const struct conf_settings *s = &o->s;
	struct scep_client_opts co;

	*out = NULL;
	if (s->url == NULL || *s->url == '\0')
		return sa_fail_noossl(SA_EUSAGE, "%s needs the SCEP server URL: "
				      "-u URL or URL in the configuration "
				      "file", o->op_name);
	memset(&co, 0, sizeof(co));
	co.http.url = s->url;
	co.http.proxy = s->proxy;
	co.http.ca_bundle = s->ca_bundle;
	co.http.insecure = s->insecure == 1;
	co.http.timeout = s->timeout > 0 ? s->timeout : 0;
	co.http.connect_timeout = s->connect_timeout > 0 ? s->connect_timeout : 0;
	co.http.wait_connect = s->wait_connect > 0 ? s->wait_connect : 0;
	co.http.force_get = s->force_get == 1;
	co.ca_ident = s->ca_ident;
	co.cipher = o->cipher;
	co.digest = o->digest;
	if (co.http.insecure)
		sa_warn("--insecure: the HTTPS server's certificate is not "
			"checked");
	return scep_client_new(&co, out);
}

/* Does certs hold a CA certificate (basicConstraints CA, or self-signed)? */
static int has_ca_cert(const STACK_OF(X509) *certs)
{
	int i;

	for (i = 0; i < sk_X509_num(certs); i++) {
		X509 *x = sk_X509_value(certs, i);

		if (X509_check_ca(x) != 0 ||
		    X509_check_issued(x, x) == X509_V_OK)
			return 1;
	}
	return 0;
}

/*
 * sscep's way of naming one certificate of the chain getca wrote: -c
 * ca.crt-0 (the RA signing certificate) with -e ca.crt-1. Such a file
 * holds no CA, so nothing could be checked under it: when path is
 * BASE-N and BASE-0 exists, the whole chain BASE-0, BASE-1 ... is taken
 * instead (the same set -c BASE gives; roles are still chosen by key
 * usage). Anything else is left as it is.
 */
static int ca_load_siblings(const char *path, STACK_OF(X509) **certs)
{
	STACK_OF(X509) *all = NULL;
	char *base = NULL, *first = NULL;
	size_t n = strlen(path), d = n;
	int rc = 0;

	while (d > 0 && path[d - 1] >= '0' && path[d - 1] <= '9')
		d--;
	if (has_ca_cert(*certs) || d == n || d < 2 || path[d - 1] != '-')
		return 0;
	base = strndup(path, d - 1);
	if (base == NULL || asprintf(&first, "%s-0", base) < 0) {
		first = NULL;
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	if (!files_exist(first))
		goto out;
	rc = files_load_ca(base, &all);
	if (rc < 0)
		goto out;
	if (!has_ca_cert(all))
		goto out;
	sa_verbose("%s holds no CA certificate; using the chain %s-0, %s-1 ... "
		   "that getca wrote beside it", path, base, base);
	sk_X509_pop_free(*certs, X509_free);
	*certs = all;
	all = NULL;
out:
	sk_X509_pop_free(all, X509_free);
	free(base);
	free(first);
	return rc;
}

/* Does path, or path-0 as getca writes a chain, exist? */
static int ca_file_exists(const char *path)
{
	char *first = NULL;
	int r;

	if (files_exist(path))
		return 1;
	if (asprintf(&first, "%s-0", path) < 0)
		return 1; /* out of memory: let files_load_ca() say so */
	r = files_exist(first);
	free(first);
	return r;
}

/*
 * No CA file, a pin: GetCACert from the server in this process, trusted
 * as getca trusts it (only what chains to the pinned CA), -e checked,
 * and written to -c as getca writes it when -c was named.
 */
static int ca_fetch(const struct agent_opts *o, struct scep_ca *ca, X509 *enc)
{
	const char *path = o->s.ca_cert_file;
	scep_client *c = NULL;
	char url[512];
	int rc;

	rc = agent_client_new(o, &c);
	if (rc < 0)
		goto out;
	if (path != NULL)
		sa_info("%s does not exist: requesting the CA certificate from "
			"the server, pinned to -F", path);
	else
		sa_info("no CA file (-c) given: requesting the CA certificate "
			"from the server, pinned to -F");
	rc = scep_get_ca(c, ca);
	if (rc < 0)
		goto out;
	rc = scep_ca_trust(ca, o->fp_pin, enc);
	if (rc < 0) {
		if (path != NULL)
			sa_fail_suffix(rc, "; nothing was written to %s", path);
		goto out;
	}
	sa_info("the CA certificate from %s matches the pinned fingerprint",
		sa_url_shown(o->s.url, url, sizeof(url)));
	if (path == NULL)
		goto out;
	rc = files_write_ca(path, ca->certs);
	if (rc < 0)
		goto out;
	sa_info("CA certificate(s) written as %s%s", path,
		sk_X509_num(ca->certs) > 1 ? "-0, -1 ..." : "");
out:
	scep_client_free(c);
	return rc;
}

/*
 * See agent.h. The CA files of -c, or, when there are none (no -c, or -c
 * naming neither FILE nor FILE-0) and a fingerprint is pinned, the
 * server's GetCACert reply checked against the pin and written to -c
 * when -c was named.
 */
int agent_ca_load(const struct agent_opts *o, struct scep_ca *ca)
{
	const struct conf_settings *s = &o->s;
	X509 *enc = NULL;
	int rc, fetch;

	memset(ca, 0, sizeof(*ca));
	/*
	 * getnextca without -C names its output after -c (FILE.next unless
	 * -w): it keeps needing -c
	 */
	if (s->ca_cert_file == NULL &&
	    (o->fp_pin == NULL || o->op == OP_GETNEXTCA))
		return sa_fail_noossl(SA_EUSAGE, "%s needs the CA certificate: "
				      "-c FILE (as written by getca) or "
				      "CACertFile, or a pinned fingerprint "
				      "(-F FINGERPRINT or FingerPrint) to fetch "
				      "it from the server", o->op_name);
	fetch = o->fp_pin != NULL && (s->ca_cert_file == NULL ||
				      !ca_file_exists(s->ca_cert_file));
	if (s->enc_cert_file != NULL) {
		rc = files_read_cert(s->enc_cert_file, &enc);
		if (rc < 0)
			goto out;
	}
	if (fetch) {
		rc = ca_fetch(o, ca, enc);
		goto out;
	}
	rc = files_load_ca(s->ca_cert_file, &ca->certs);
	if (rc < 0) {
		if (o->fp_pin == NULL)
			sa_fail_suffix(rc, ", or pin the CA with -F FINGERPRINT "
				       "(FingerPrint) to fetch it from the "
				       "server and write it there");
		goto out;
	}
	rc = ca_load_siblings(s->ca_cert_file, &ca->certs);
	if (rc < 0)
		goto out;
	/* the anchor, certificates not chaining to it dropped, -e checked */
	rc = scep_ca_trust(ca, o->fp_pin, enc);
	if (rc < 0)
		goto out;
	rc = 0;
out:
	X509_free(enc);
	if (rc < 0)
		scep_ca_clear(ca);
	return rc;
}

static void usage_str(X509 *cert, char *buf, size_t len)
{
	static const struct { uint32_t bit; const char *name; } ku[] = {
		{ KU_DIGITAL_SIGNATURE, "Digital Signature" },
		{ KU_NON_REPUDIATION, "Non Repudiation" },
		{ KU_KEY_ENCIPHERMENT, "Key Encipherment" },
		{ KU_DATA_ENCIPHERMENT, "Data Encipherment" },
		{ KU_KEY_AGREEMENT, "Key Agreement" },
		{ KU_KEY_CERT_SIGN, "Certificate Sign" },
		{ KU_CRL_SIGN, "CRL Sign" },
		{ KU_ENCIPHER_ONLY, "Encipher Only" },
		{ KU_DECIPHER_ONLY, "Decipher Only" },
	};
	uint32_t bits = X509_get_key_usage(cert);
	size_t i, n = 0;

	buf[0] = '\0';
	if (bits == UINT32_MAX) {
		snprintf(buf, len, "not set");
		return;
	}
	for (i = 0; i < sizeof(ku) / sizeof(ku[0]); i++)
		if (bits & ku[i].bit)
			n += (size_t)snprintf(buf + n, n < len ? len - n : 0,
					      "%s%s", n ? ", " : "", ku[i].name);
}

void agent_print_cert(const struct agent_opts *o, X509 *cert)
{
	char *subj = csr_name_oneline(X509_get_subject_name(cert));
	char *iss = csr_name_oneline(X509_get_issuer_name(cert));
	char *fp = scep_fingerprint(cert, o->fp_md);
	char usage[256];
	char mdname[32];
	size_t i;

	usage_str(cert, usage, sizeof(usage));
	snprintf(mdname, sizeof(mdname), "%s", EVP_MD_get0_name(o->fp_md));
	for (i = 0; mdname[i]; i++)
		if (mdname[i] >= 'a' && mdname[i] <= 'z')
			mdname[i] = (char)(mdname[i] - 'a' + 'A');
	agent_out("found certificate with");
	printf("  subject: %s\n  issuer: %s\n  usage: %s\n  %s fingerprint: %s\n",
	       subj ? subj : "?", iss ? iss : "?", usage, mdname,
	       fp ? fp : "?");
	fflush(stdout);
	free(subj);
	free(iss);
	free(fp);
}

char *agent_serial_str(X509 *cert)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	char *dec = bn ? BN_bn2dec(bn) : NULL, *hex = bn ? BN_bn2hex(bn) : NULL;
	char *r = NULL;

	if (dec != NULL && hex != NULL && asprintf(&r, "%s (0x%s)", dec, hex) < 0)
		r = NULL;
	OPENSSL_free(dec);
	OPENSSL_free(hex);
	BN_free(bn);
	return r;
}

int agent_serial_parse(const char *s, ASN1_INTEGER **out)
{
	const char *digits = s;
	BIGNUM *bn = NULL;
	int n, hex = 0;

	*out = NULL;
	if (s == NULL || *s == '\0')
		return sa_fail_noossl(SA_EUSAGE, "no serial number given (-s)");
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		hex = 1;
		digits = s + 2;
	}
	n = *digits == '-' ? 0 :
	    hex ? BN_hex2bn(&bn, digits) : BN_dec2bn(&bn, digits);
	if (bn == NULL || n <= 0 || (size_t)n != strlen(digits)) {
		BN_free(bn);
		return sa_fail_noossl(SA_EUSAGE, "serial number \"%s\" is not a "
				      "decimal number (or 0x followed by hex)", s);
	}
	*out = BN_to_ASN1_INTEGER(bn, NULL);
	BN_free(bn);
	return *out ? 0 : sa_fail(SA_ENOMEM, "out of memory");
}

/*
 * bench_core.c - the protocol core alone, in process, with software
 * RSA-2048 keys: pkiMessage build (sign + envelope) and CertRep parse
 * (verify + decrypt of a DES-CBC envelope, as micromdm sends). Prints
 * microseconds per operation; run with `meson test --benchmark`.
 * Argument: iterations (default 200).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "scep.h"
#include "sa_err.h"
#include "test_scep_util.h"

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
	int iters = argc > 1 ? atoi(argv[1]) : 200, i, n;
	EVP_PKEY *ca_key, *cli_key;
	X509 *ca, *cli = NULL;
	X509_REQ *csr;
	struct scep_ca sc = { 0 };
	struct scep_request req = { .type = SCEP_MSG_PKCSREQ };
	struct scep_reply r;
	unsigned char *der = NULL, *rep = NULL, nonce[16];
	size_t len;
	char *tid;
	double t0, build_us, parse_us;
	STACK_OF(X509) *bag;
	struct rep spec;

	if (iters <= 0)
		iters = 200;
	scep_crypto_init();
	ca_key = tu_rsa();
	cli_key = tu_rsa();
	ca = tu_cert("Bench CA", ca_key, NULL, NULL, NULL, 1);
	csr = tu_csr("bench client", cli_key);
	scep_selfsigned_new(csr, cli_key, EVP_sha256(), &cli);
	sc.certs = tu_stack(ca, NULL, NULL);
	scep_ca_select(&sc, NULL, NULL);
	req.csr = csr;
	req.signer_key = cli_key;
	req.signer_cert = cli;
	tid = scep_transaction_id(cli_key);

	t0 = now_us();
	for (i = 0; i < iters; i++) {
		OPENSSL_free(der);
		der = NULL;
		if (scep_msg_build(NULL, &sc, &req, &der, &len, nonce) != SA_OK) {
			fprintf(stderr, "build: %s\n", sa_errmsg());
			return 1;
		}
	}
	build_us = (now_us() - t0) / iters;

	bag = tu_stack(cli, NULL, NULL);
	spec = (struct rep){ .signer = ca, .signer_key = ca_key, .md = EVP_sha1(),
			     .status = "0", .tid = tid, .rnonce = nonce, .rnonce_len = 16,
			     .certs = bag, .enc_to = cli, .cipher = EVP_des_cbc() };
	n = ca_reply(&spec, &rep);
	t0 = now_us();
	for (i = 0; i < iters; i++) {
		if (scep_reply_parse(rep, (size_t)n, &sc, tid, nonce, cli_key, cli, &r) != SA_OK) {
			fprintf(stderr, "parse: %s\n", sa_errmsg());
			return 1;
		}
		scep_reply_clear(&r);
	}
	parse_us = (now_us() - t0) / iters;

	printf("pkiMessage build (RSA-2048 sign, AES/3DES envelope): %.0f us\n", build_us);
	printf("CertRep parse (SHA-1 verify, DES-CBC envelope decrypt): %.0f us\n", parse_us);
	printf("core total per enrollment: %.2f ms\n", (build_us + parse_us) / 1000);

	sk_X509_pop_free(bag, X509_free);
	OPENSSL_free(der);
	OPENSSL_free(rep);
	free(tid);
	scep_ca_clear(&sc);
	X509_free(ca);
	X509_free(cli);
	X509_REQ_free(csr);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(cli_key);
	return 0;
}

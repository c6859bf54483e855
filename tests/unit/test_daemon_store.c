/*
 * Unit tests for agent/daemon/store.c: serial names, <serial>.crt,
 * latest.crt switched by rename (its target after two puts), ca.crt,
 * pruning to KeepOld.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "sa_err.h"
#include "sa_log.h"
#include "store.h"
#include "tap.h"

static char dir[256];
static EVP_PKEY *key;

/* A self-signed certificate with serial hex and notBefore now+nb_off. */
static X509 *mkcert(const char *hex, long nb_off)
{
	X509 *x = X509_new();
	BIGNUM *bn = NULL;
	X509_NAME *n;

	BN_hex2bn(&bn, hex);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	BN_free(bn);
	X509_gmtime_adj(X509_getm_notBefore(x), nb_off);
	X509_gmtime_adj(X509_getm_notAfter(x), nb_off + 86400);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
				   (const unsigned char *)"store test", -1, -1, 0);
	X509_set_issuer_name(x, n);
	X509_set_pubkey(x, key);
	X509_sign(x, key, EVP_sha256());
	return x;
}

static int exists(const char *name)
{
	char p[512];
	struct stat sb;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return lstat(p, &sb) == 0;
}

static void test_serial(void)
{
	X509 *x = mkcert("0A1BFF", 0);
	char *s = store_serial_hex(x);

	is_str(s, "0a1bff", "serial: lowercase hex, no colons");
	free(s);
	X509_free(x);
	x = mkcert("7F", 0);
	s = store_serial_hex(x);
	is_str(s, "7f", "a short serial");
	free(s);
	X509_free(x);
	ok(store_serial_hex(NULL) == NULL, "no certificate: NULL");
}

static void test_put_latest(void)
{
	X509 *a = mkcert("A1", -3600), *b = mkcert("B2", 0), *got = NULL;
	char *path = NULL, *t, sub[300];
	struct stat sb;

	snprintf(sub, sizeof(sub), "%s", dir);
	is_int(store_latest(dir, &got), 0, "no latest.crt: not an error");
	ok(got == NULL, "no latest.crt: NULL");

	is_int(store_put_cert(dir, a, &path), 0, "first put");
	ok(path != NULL && strstr(path, "/a1.crt") != NULL, "path of a1.crt");
	ok(path != NULL && stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0644,
	   "a1.crt is 0644");
	free(path);
	t = store_latest_target(dir);
	is_str(t, "a1.crt", "latest.crt -> a1.crt (relative)");
	free(t);
	is_int(store_put_cert(dir, b, NULL), 0, "second put");
	t = store_latest_target(dir);
	is_str(t, "b2.crt", "latest.crt -> b2.crt after the second put");
	free(t);
	ok(exists("a1.crt"), "a1.crt still there");
	is_int(store_latest(dir, &got), 0, "latest read");
	ok(got != NULL && X509_cmp(got, b) == 0, "latest.crt is the second certificate");
	X509_free(got);
	got = NULL;
	{
		char cmd[600];

		snprintf(cmd, sizeof(cmd), "ls -A %s | grep -q tmp", dir);
		ok(system(cmd) != 0, "no temporary file or link left");
	}
	/* only the file: latest unchanged until store_set_latest() */
	{
		X509 *c = mkcert("C3", 60);

		is_int(store_put_cert_file(dir, c, NULL), 0, "put the file only");
		t = store_latest_target(dir);
		is_str(t, "b2.crt", "latest unchanged");
		free(t);
		is_int(store_set_latest(dir, "c3"), 0, "then switched");
		t = store_latest_target(dir);
		is_str(t, "c3.crt", "latest -> c3.crt");
		free(t);
		is_int(store_set_latest(dir, "dd"), SA_EIO,
		       "never a link to a missing file");
		t = store_latest_target(dir);
		is_str(t, "c3.crt", "latest unchanged by the refusal");
		free(t);
		X509_free(c);
	}
	/* a dangling latest.crt is an error, not "none" */
	{
		char d2[300], l[320];

		snprintf(d2, sizeof(d2), "%s/dangling", dir);
		mkdir(d2, 0755);
		snprintf(l, sizeof(l), "%s/latest.crt", d2);
		symlink("ff.crt", l);
		is_int(store_latest(d2, &got), SA_EIO, "dangling latest.crt: SA_EIO");
		ok(got == NULL, "and no certificate");
	}
	X509_free(a);
	X509_free(b);
}

static void test_ca(void)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	X509 *a = mkcert("01", 0), *b = mkcert("02", 0), *x;
	char p[512];
	FILE *fp;

	sk_X509_push(sk, a);
	sk_X509_push(sk, b);
	is_int(store_put_ca(dir, sk), 0, "ca.crt written");
	snprintf(p, sizeof(p), "%s/ca.crt", dir);
	fp = fopen(p, "r");
	x = fp ? PEM_read_X509(fp, NULL, NULL, NULL) : NULL;
	ok(x != NULL && X509_cmp(x, a) == 0, "ca.crt: the first in order");
	X509_free(x);
	x = fp ? PEM_read_X509(fp, NULL, NULL, NULL) : NULL;
	ok(x != NULL && X509_cmp(x, b) == 0, "ca.crt: the second");
	X509_free(x);
	if (fp)
		fclose(fp);
	sk_X509_pop_free(sk, X509_free);
}

static void test_prune(void)
{
	X509 *x;
	char p[512];
	FILE *fp;

	/* a1 (-3600), b2 (0), c3 (+60, latest) from test_put_latest; more: */
	x = mkcert("0D4", -7200);
	is_int(store_put_cert_file(dir, x, NULL), 0, "an older one");
	X509_free(x);
	x = mkcert("E5", 7200); /* newest by notBefore, but not latest */
	is_int(store_put_cert_file(dir, x, NULL), 0, "a newer, not latest");
	X509_free(x);
	snprintf(p, sizeof(p), "%s/ab.crt", dir); /* not a certificate */
	fp = fopen(p, "w");
	fputs("junk\n", fp);
	fclose(fp);

	is_int(store_prune(dir, 2), 0, "prune keeping 2");
	ok(exists("c3.crt"), "latest's target kept");
	ok(exists("e5.crt") && exists("b2.crt"), "the 2 newest others kept");
	ok(!exists("a1.crt") && !exists("04d4.crt"), "older ones removed");
	ok(exists("ab.crt") && exists("ca.crt") && exists("latest.crt"),
	   "ca.crt, latest.crt, a non-certificate left alone");
	is_int(store_prune(dir, 0), 0, "prune keeping 0");
	ok(exists("c3.crt") && !exists("e5.crt") && !exists("b2.crt"),
	   "KeepOld 0: only latest's target");
	is_int(store_prune("/nonexistent/dir", 1), 0, "no StoreDir: nothing to do");
}

int main(void)
{
	EVP_PKEY_CTX *kc;
	char cmd[300];

	sa_log_init("test_daemon_store", SA_LOG_ERR, 0);
	snprintf(dir, sizeof(dir), "%s/sa-store-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(dir) == NULL)
		return 99;
	kc = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
	EVP_PKEY_keygen_init(kc);
	EVP_PKEY_CTX_set_ec_paramgen_curve_nid(kc, NID_X9_62_prime256v1);
	EVP_PKEY_keygen(kc, &key);
	EVP_PKEY_CTX_free(kc);
	test_serial();
	test_put_latest();
	test_ca();
	test_prune();
	EVP_PKEY_free(key);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("could not remove %s", dir);
	return tap_done();
}

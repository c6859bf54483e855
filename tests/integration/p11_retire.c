/*
 * p11_retire.c - KeepOld against a real SoftHSM2 token (temp dir): a
 * commit retires the label's previous pair under LABEL~old-<serial hex>,
 * prunes the retired pairs beyond keep_old (oldest notBefore first), and
 * keep_old 0 destroys as before. Then the commit is interrupted at every
 * PKCS#11 call it makes (tests/p11shim, the card pulled out at call N, in
 * a child process): afterwards the label names one complete key (the old
 * pair, or the new one with its certificate) - or, once the old private
 * key has left it, none while the new pair waits complete under its
 * staging label (and with KeepOld the old pair's objects are all there) -
 * and a second commit finishes.
 * TAP, suite 'softhsm'.
 */
#include "p11_int.h"

#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/provider.h>
#include <openssl/x509.h>

#include "sa_err.h"
#include "sa_log.h"
#include "tap.h"

#define SOFTHSM "/usr/lib/softhsm/libsofthsm2.so"
#define LABEL "svc"

static char dir[256];
static char pinfile[300];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb; (void)flag; (void)f;
	return remove(p);
}

static void cleanup(void)
{
	if (dir[0] != '\0')
		nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static int setup(void)
{
	char path[400], cmd[600];
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/p11retire.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/tokens", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/softhsm2.conf", dir);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "directories.tokendir = %s/tokens\nobjectstore.backend = file\n"
		"log.level = ERROR\n", dir);
	fclose(f);
	setenv("SOFTHSM2_CONF", path, 1);
	snprintf(pinfile, sizeof(pinfile), "%s/pin", dir);
	f = fopen(pinfile, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "1234\n");
	fclose(f);
	snprintf(cmd, sizeof(cmd), "softhsm2-util --init-token --free --label t1 "
		 "--pin 1234 --so-pin 5678 >/dev/null");
	return system(cmd) == 0 ? 0 : -1;
}

static p11_token *open_tok(const char *module)
{
	struct p11_open_opts o = { .module = module, .need_login = 1 };
	p11_token *t = NULL;

	o.pin.pin_file = pinfile;
	o.pin.no_prompt = 1;
	if (p11_token_open("pkcs11:token=t1", &o, &t) < 0)
		return NULL;
	return t;
}

/* A certificate for k: serial, notBefore now + nb seconds. */
static X509 *cert_for(EVP_PKEY *k, long serial, long nb)
{
	X509 *x = X509_new();
	X509_NAME *nm = X509_NAME_new();

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
				   (const unsigned char *)"svc", -1, -1, 0);
	X509_set_subject_name(x, nm);
	X509_set_issuer_name(x, nm);
	X509_gmtime_adj(X509_getm_notBefore(x), nb);
	X509_gmtime_adj(X509_getm_notAfter(x), nb + 86400);
	X509_set_pubkey(x, k);
	X509_NAME_free(nm);
	if (X509_sign(x, k, EVP_sha256()) <= 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/*
 * A new pair for LABEL as a renewal makes it: staged, its certificate
 * (serial; notBefore nb; serial 0: none) stored under the staging label,
 * then committed with keep (keep < 0: left staged). Its CKA_ID in id.
 */
static int pair(p11_token *t, long serial, long nb, int keep,
		unsigned char id[20])
{
	struct p11_keyspec ks;
	p11_keyobj *ko = NULL;
	const unsigned char *kid;
	size_t idlen = 0;
	X509 *x = NULL;
	int rc;

	p11_keyspec_parse("ec:P-256", &ks);
	rc = p11_keygen(t, LABEL, &ks, P11_KEYGEN_STAGED | P11_KEYGEN_OVERWRITE,
			&ko);
	if (rc < 0)
		goto out;
	kid = p11_keyobj_get0_id(ko, &idlen);
	memcpy(id, kid, idlen < 20 ? idlen : 20);
	if (serial > 0) {
		x = cert_for(p11_keyobj_get0_pkey(ko), serial, nb);
		rc = x ? p11_cert_store(ko, x, NULL, NULL) : -1;
		if (rc < 0)
			goto out;
	}
	if (keep >= 0)
		rc = p11_key_commit(ko, LABEL, keep);
out:
	if (rc < 0)
		diag("pair %ld: %s", serial, sa_errmsg());
	X509_free(x);
	p11_keyobj_free(ko);
	return rc;
}

/* Objects labelled label (of class cls; (CK_ULONG)-1: any) with id (NULL:
 * any). */
static int count(p11_token *t, const char *label, CK_ULONG cls,
		 const unsigned char *id)
{
	CK_OBJECT_CLASS c = cls;
	CK_ATTRIBUTE a[3];
	CK_OBJECT_HANDLE *h = NULL;
	CK_ULONG n = 0, na = 0;

	if (label != NULL)
		a[na++] = (CK_ATTRIBUTE){ CKA_LABEL, (void *)label, strlen(label) };
	if (cls != (CK_ULONG)-1)
		a[na++] = (CK_ATTRIBUTE){ CKA_CLASS, &c, sizeof(c) };
	if (id != NULL)
		a[na++] = (CK_ATTRIBUTE){ CKA_ID, (void *)id, 20 };
	if (p11_find(t, na ? a : NULL, na, &h, &n) < 0)
		n = 999;
	free(h);
	return (int)n;
}

/* The CKA_ID of the one private key labelled label, or 0 if not one. */
static int priv_id(p11_token *t, const char *label, unsigned char id[20])
{
	CK_OBJECT_CLASS c = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE a[2] = { { CKA_LABEL, (void *)label, strlen(label) },
			      { CKA_CLASS, &c, sizeof(c) } };
	CK_OBJECT_HANDLE *h = NULL;
	CK_ULONG n = 0, len = 0;
	unsigned char *v = NULL;
	int r = 0;

	if (p11_find(t, a, 2, &h, &n) == 0 && n == 1 &&
	    p11_attr_get1(t, h[0], CKA_ID, &v, &len) == 0 && len == 20) {
		memcpy(id, v, 20);
		r = 1;
	}
	free(v);
	free(h);
	return r;
}

/* Every object of the token goes. */
static void wipe(p11_token *t)
{
	CK_OBJECT_HANDLE *h = NULL;
	CK_ULONG n = 0, i;

	if (p11_find(t, NULL, 0, &h, &n) == 0)
		for (i = 0; i < n; i++)
			t->mod->fl->C_DestroyObject(t->sess, h[i]);
	free(h);
}

/* Is the pair of id complete (private key, certificate) under label? */
static int complete(p11_token *t, const char *label, const unsigned char *id)
{
	return count(t, label, CKO_PRIVATE_KEY, id) == 1 &&
	       count(t, label, CKO_CERTIFICATE, id) == 1;
}

static void test_retire(void)
{
	unsigned char a[20], b[20], c[20], d[20], e[20], f[20], g[20], id[20];
	p11_keyobj *ko = NULL;
	p11_token *t = open_tok(SOFTHSM);
	char *l;

	ok(t != NULL, "token opened: %s", t ? "" : sa_errmsg());
	if (t == NULL)
		return;
	is_int(pair(t, 0x0a, -3 * 3600, 1, a), 0, "the first pair (serial 0a)");
	ok(complete(t, LABEL, a) && count(t, NULL, (CK_ULONG)-1, NULL) == 3,
	   "it has the label; nothing else in the token");
	is_int(pair(t, 0x0b, -2 * 3600, 1, b), 0, "renewed with KeepOld 1");
	ok(complete(t, LABEL, b) && count(t, LABEL, (CK_ULONG)-1, NULL) == 3,
	   "the new pair has the label, alone");
	ok(count(t, LABEL "~old-a", (CK_ULONG)-1, a) == 3 &&
	   complete(t, LABEL "~old-a", a),
	   "the old pair (key, public key, certificate) is retired as "
	   "'" LABEL "~old-a'");
	l = p11_retired_label(LABEL, "a");
	ok(l && !strcmp(l, LABEL "~old-a"), "p11_retired_label says so");
	free(l);
	ok(p11_key_get1(t, "pkcs11:object=" LABEL "~old-a", &ko) == 0 &&
	   EVP_PKEY_get_base_id(p11_keyobj_get0_pkey(ko)) == EVP_PKEY_EC,
	   "the retired key is still there to use");
	p11_keyobj_free(ko);
	is_int(pair(t, 0x1c, -3600, 1, c), 0, "renewed again with KeepOld 1");
	ok(complete(t, LABEL, c) && complete(t, LABEL "~old-b", b),
	   "the previous pair is retired as '" LABEL "~old-b'");
	ok(count(t, NULL, (CK_ULONG)-1, a) == 0 &&
	   count(t, LABEL "~old-a", (CK_ULONG)-1, NULL) == 0,
	   "the oldest retired pair is destroyed (beyond KeepOld)");
	is_int(pair(t, 0x0d, 0, 2, d), 0, "renewed with KeepOld 2");
	ok(complete(t, LABEL, d) && complete(t, LABEL "~old-1c", c) &&
	   complete(t, LABEL "~old-b", b) && count(t, NULL, (CK_ULONG)-1, NULL) == 9,
	   "two retired pairs kept (~old-1c, ~old-b), 9 objects in all");
	ok(p11_key_get1(t, "pkcs11:object=" LABEL, &ko) == 0,
	   "the label names one key");
	is_int(ko ? p11_key_commit(ko, LABEL, 2) : -1, 0,
	       "a commit of the key that has the label again");
	ok(count(t, NULL, (CK_ULONG)-1, NULL) == 9, "changes nothing");
	is_int(ko ? p11_key_commit(ko, LABEL, -1) : 0, SA_EUSAGE,
	       "KeepOld -1 is refused");
	is_int(ko ? p11_key_commit(ko, LABEL, 1) : -1, 0,
	       "KeepOld lowered to 1");
	ok(complete(t, LABEL "~old-1c", c) &&
	   count(t, NULL, (CK_ULONG)-1, b) == 0,
	   "the older retired pair goes, the newer stays");
	is_int(ko ? p11_key_commit(ko, LABEL, 0) : -1, 0, "KeepOld lowered to 0");
	ok(count(t, NULL, (CK_ULONG)-1, NULL) == 3 && complete(t, LABEL, d),
	   "no retired pair is left; the label's pair stays");
	p11_keyobj_free(ko);
	ko = NULL;
	is_int(pair(t, 0x0e, 60, 0, e), 0, "renewed with KeepOld 0");
	ok(complete(t, LABEL, e) && count(t, NULL, (CK_ULONG)-1, NULL) == 3 &&
	   count(t, NULL, (CK_ULONG)-1, d) == 0,
	   "the old pair is destroyed, as without KeepOld");
	is_int(pair(t, 0, 0, 1, f), 0, "a new key without a certificate takes the "
	       "label (mkrequest)");
	ok(priv_id(t, LABEL, id) && !memcmp(id, f, 20) &&
	   complete(t, LABEL "~old-e", e), "the certified one before it is "
	   "retired");
	is_int(pair(t, 0x10, 120, 1, g), 0, "and is replaced in turn");
	ok(count(t, NULL, (CK_ULONG)-1, f) == 0,
	   "a replaced key without a certificate is destroyed, not retired");
	ok(complete(t, LABEL, g) && complete(t, LABEL "~old-e", e),
	   "the label's pair and one retired pair are left");
	p11_token_close(t);
}

/*
 * The child: the commit through the shim failing from call n on; n 0:
 * none fails, each call is traced to trace.
 */
static int child_commit(int n, int keep, const char *trace)
{
	char nb[16];
	p11_keyobj *ko = NULL;
	p11_token *t;
	int rc, certified = 0, used = 0;

	snprintf(nb, sizeof(nb), "%d", n);
	if (n > 0) {
		setenv("P11SHIM_FAIL_AT", nb, 1);
		setenv("P11SHIM_FAIL_MODE", "always", 1);
	} else {
		setenv("P11SHIM_TRACE", trace, 1);
	}
	sa_log_init("p11_retire", -1, 0);
	t = open_tok(getenv("P11SHIM"));
	if (t == NULL)
		return 2;
	rc = p11_staged_get1(t, LABEL, &ko, &certified, &used);
	if (rc == 1)
		rc = p11_key_commit(ko, LABEL, keep);
	else
		rc = -1;
	p11_keyobj_free(ko);
	p11_token_close(t);
	return rc == 0 ? 0 : 1;
}

/*
 * After an interrupted commit (old pair a, new pair b, a retired pair r):
 * the label names a's complete pair or b's; or no key while b waits
 * complete under its staging label and a is complete under some label.
 */
static int invariant(p11_token *t, int keep, const unsigned char *a,
		     const unsigned char *b, char *why, size_t whylen)
{
	unsigned char id[20];
	int np = count(t, LABEL, CKO_PRIVATE_KEY, NULL);

	if (np > 1) {
		snprintf(why, whylen, "%d private keys labelled " LABEL, np);
		return 0;
	}
	if (np == 1) {
		if (!priv_id(t, LABEL, id) || (memcmp(id, a, 20) != 0 &&
					       memcmp(id, b, 20) != 0)) {
			snprintf(why, whylen, "the label names another key");
			return 0;
		}
		if (!complete(t, LABEL, id)) {
			snprintf(why, whylen, "the label's key (%s) has no "
				 "certificate under the label",
				 memcmp(id, a, 20) ? "new" : "old");
			return 0;
		}
		return 1;
	}
	if (!complete(t, LABEL "~new", b) &&
	    !(count(t, LABEL "~new", CKO_PRIVATE_KEY, b) == 1 &&
	      count(t, NULL, CKO_CERTIFICATE, b) == 1)) {
		snprintf(why, whylen, "no key labelled " LABEL " and the new "
			 "pair is not complete under " LABEL "~new");
		return 0;
	}
	if (keep > 0 && (count(t, NULL, CKO_PRIVATE_KEY, a) != 1 ||
			 count(t, NULL, CKO_CERTIFICATE, a) != 1)) {
		snprintf(why, whylen, "no key labelled " LABEL " and the old "
			 "pair is not whole");
		return 0;
	}
	return 1;
}

/* Finish with a second commit; then the final state for keep. */
static int finish(p11_token *t, int keep, const unsigned char *a,
		  const unsigned char *b, const unsigned char *r,
		  char *why, size_t whylen)
{
	p11_keyobj *ko = NULL;
	int rc, certified = 0, used = 0;

	rc = p11_staged_get1(t, LABEL, &ko, &certified, &used);
	if (rc == 0)
		rc = p11_key_get1(t, "pkcs11:object=" LABEL, &ko);
	else if (rc == 1 && !certified)
		rc = -1;
	if (rc >= 0)
		rc = p11_key_commit(ko, LABEL, keep);
	p11_keyobj_free(ko);
	if (rc < 0) {
		snprintf(why, whylen, "the second commit failed: %s", sa_errmsg());
		return 0;
	}
	if (!complete(t, LABEL, b) || count(t, LABEL, (CK_ULONG)-1, NULL) != 3) {
		snprintf(why, whylen, "the new pair does not have the label alone");
		return 0;
	}
	if (count(t, NULL, (CK_ULONG)-1, r) != 0) {
		snprintf(why, whylen, "the oldest retired pair is still there");
		return 0;
	}
	if (keep > 0 ? count(t, LABEL "~old-a", (CK_ULONG)-1, a) != 3 :
	    count(t, NULL, (CK_ULONG)-1, a) != 0) {
		snprintf(why, whylen, "the old pair is not %s",
			 keep > 0 ? "retired whole as " LABEL "~old-a" :
			 "destroyed");
		return 0;
	}
	if (count(t, NULL, (CK_ULONG)-1, NULL) != (keep > 0 ? 6 : 3)) {
		snprintf(why, whylen, "%d objects left in the token",
			 count(t, NULL, (CK_ULONG)-1, NULL));
		return 0;
	}
	return 1;
}

/*
 * Under valgrind (tests/run.sh valgrind) every 16th call is enough, in
 * the ASan build every 4th (each point forks and makes three keys there
 * about 5 times slower); the plain build fails every call.
 */
static int sweep_step(void)
{
	const char *p = getenv("LD_PRELOAD");

	if (p != NULL && strstr(p, "vgpreload") != NULL)
		return 16;
#ifdef __SANITIZE_ADDRESS__
	return 4;
#else
	return 1;
#endif
}

/* Lines in file (the shim's trace: one per call), -1 if unreadable. */
static int lines(const char *file)
{
	FILE *f = fopen(file, "r");
	int c, n = 0;

	if (f == NULL)
		return -1;
	while ((c = getc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/*
 * One run: the token prepared (a retired pair r, the label's pair a, the
 * new pair b staged and certified), the commit in a child failing from
 * call n on (0: none), then the checks; *calls: the child's calls (n 0).
 */
static void one(int keep, int n, int *calls, int *bad, int *badfin)
{
	unsigned char a[20], b[20], r[20];
	char why[200], trace[300];
	p11_token *t;
	pid_t pid;
	int st;

	snprintf(trace, sizeof(trace), "%s/trace", dir);
	unlink(trace);
	t = open_tok(SOFTHSM);
	if (t == NULL) {
		(*bad)++;
		return;
	}
	wipe(t);
	if (pair(t, 9, -3 * 3600, 1, r) < 0 ||
	    pair(t, 0x0a, -2 * 3600, 1, a) < 0 ||
	    pair(t, 0x0b, -3600, -1, b) < 0) {
		(*bad)++;
		p11_token_close(t);
		return;
	}
	p11_token_close(t);
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(child_commit(n, keep, trace));
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
	    (n == 0 && WEXITSTATUS(st) != 0)) {
		diag("keep %d, fault at call %d: the child failed", keep, n);
		(*bad)++;
		return;
	}
	if (n == 0)
		*calls = lines(trace);
	t = open_tok(SOFTHSM);
	if (t == NULL) {
		(*bad)++;
		return;
	}
	if (!invariant(t, keep, a, b, why, sizeof(why)) && (*bad)++ < 5)
		diag("keep %d, fault at call %d: %s", keep, n, why);
	if (!finish(t, keep, a, b, r, why, sizeof(why)) && (*badfin)++ < 5)
		diag("keep %d, fault at call %d: %s", keep, n, why);
	p11_token_close(t);
}

static void sweep(int keep)
{
	int n, calls = 0, bad = 0, badfin = 0, done = 0, step = sweep_step();

	one(keep, 0, &calls, &bad, &badfin);
	for (n = 1; n <= calls; n += step, done++)
		one(keep, n, &calls, &bad, &badfin);
	ok(calls > 100 && done > 100 / step, "KeepOld %d: the commit (%d calls "
	   "with the token's opening) interrupted at %d of them (every %d)",
	   keep, calls, done, step);
	is_int(bad, 0, "KeepOld %d: after each interruption the label names one "
	       "complete key, or the new one waits complete under " LABEL "~new",
	       keep);
	is_int(badfin, 0, "KeepOld %d: and a second commit finishes (%s)", keep,
	       keep ? "old pair retired, oldest retired pair pruned" :
	       "old pair destroyed");
}

int main(void)
{
	OSSL_PROVIDER *prov;

	sa_log_init("p11_retire", getenv("TEST_DEBUG") ? SA_LOG_DEBUG :
		    SA_LOG_ERR, 0);
	prov = OSSL_PROVIDER_load(NULL, "default");
	if (getenv("P11SHIM") == NULL) {
		printf("Bail out! P11SHIM (tests/p11shim's module) not set\n");
		return 1;
	}
	if (setup() != 0) {
		printf("Bail out! cannot create a SoftHSM2 token in a temp dir\n");
		cleanup();
		return 1;
	}
	test_retire();
	sweep(1);
	sweep(0);
	cleanup();
	OSSL_PROVIDER_unload(prov);
	return tap_done();
}

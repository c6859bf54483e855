/*
 * p11_custody.c - the custody layer against real SoftHSM2 tokens made in
 * a temp dir (two tokens, t1 and t2). TAP output, suite 'softhsm'.
 *
 * Covers: keygen for the five key types with the custody attributes read
 * back, CSR and self-signed signing in the token, PKCS#7 and CMS envelope
 * decryption in the token (DES-CBC, 3DES, AES), certificate objects,
 * overwrite refusal, the same label in two tokens, wrong PIN (one
 * C_Login, seen through pkcs11-spy), missing objects and modules, PIN
 * sources, module names through p11-kit, listing.
 */
#include "p11_int.h"

#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "sa_err.h"
#include "sa_log.h"
#include "tap.h"

#define SOFTHSM "/usr/lib/softhsm/libsofthsm2.so"
#define SPY "/usr/lib/x86_64-linux-gnu/pkcs11-spy.so"

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

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static int setup(void)
{
	char path[400];
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/p11custody.XXXXXX",
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
	chmod(pinfile, 0600);
	if (sh("softhsm2-util --init-token --free --label t1 --pin 1234 "
	       "--so-pin 5678 >/dev/null") != 0 ||
	    sh("softhsm2-util --init-token --free --label t2 --pin 1234 "
	       "--so-pin 5678 >/dev/null") != 0)
		return -1;
	return 0;
}

static p11_token *open_tok(const char *uri, int *rc)
{
	struct p11_open_opts o = { .module = SOFTHSM, .need_login = 1 };
	p11_token *t = NULL;

	o.pin.pin_file = pinfile;
	o.pin.no_prompt = 1;
	*rc = p11_token_open(uri, &o, &t);
	if (*rc < 0)
		diag("open %s: %s", uri, sa_errmsg());
	return t;
}

/* The one private key object labelled label. */
static CK_OBJECT_HANDLE priv_by_label(p11_token *t, const char *label,
				      CK_OBJECT_CLASS cls)
{
	CK_ATTRIBUTE a[2] = { { CKA_CLASS, &cls, sizeof(cls) },
			      { CKA_LABEL, (void *)label, strlen(label) } };
	CK_OBJECT_HANDLE *h = NULL, r = CK_INVALID_HANDLE;
	CK_ULONG n = 0;

	if (p11_find(t, a, 2, &h, &n) == 0 && n == 1)
		r = h[0];
	free(h);
	return r;
}

/* The key still makes a signature (its token object exists). */
static int check_still_signs(EVP_PKEY *k)
{
	unsigned char sig[512];
	size_t sl = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int r;

	r = md != NULL &&
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k) == 1 &&
	    EVP_DigestSign(md, sig, &sl, (const unsigned char *)"x", 1) == 1;
	EVP_MD_CTX_free(md);
	return r;
}

static X509 *self_signed(EVP_PKEY *k, const char *cn)
{
	X509 *x = X509_new();
	X509_NAME *nm = X509_NAME_new();
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 42);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, nm);
	X509_set_issuer_name(x, nm);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage,
				  "digitalSignature,keyEncipherment");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	X509_NAME_free(nm);
	if (X509_sign(x, k, EVP_sha256()) <= 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* The custody object of a new key tells its token, label, CKA_ID, URI. */
static void check_keyobj(p11_token *t, const p11_keyobj *ko, const char *label)
{
	CK_OBJECT_HANDLE pv = priv_by_label(t, label, CKO_PRIVATE_KEY);
	const unsigned char *id;
	unsigned char *kid = NULL;
	CK_ULONG kidlen = 0;
	size_t idlen = 0;

	id = p11_keyobj_get0_id(ko, &idlen);
	p11_attr_get1(t, pv, CKA_ID, &kid, &kidlen);
	ok(ko && p11_keyobj_get0_token(ko) == t, "%s: the object's token", label);
	ok(ko && !strcmp(p11_keyobj_get0_label(ko), label),
	   "%s: the object's label", label);
	ok(id && idlen == 20 && kid && kidlen == idlen && !memcmp(id, kid, idlen),
	   "%s: the object's CKA_ID is the private key's (20 bytes)", label);
	ok(ko && strstr(p11_keyobj_get0_uri(ko), "type=private") &&
	   strstr(p11_keyobj_get0_uri(ko), "id=%") &&
	   !strstr(p11_keyobj_get0_uri(ko), "pin-"),
	   "%s: the object's URI names the key by id, no PIN", label);
	free(kid);
}

static void check_custody(p11_token *t, const char *label, int type)
{
	CK_OBJECT_HANDLE pv = priv_by_label(t, label, CKO_PRIVATE_KEY);
	CK_OBJECT_HANDLE pb = priv_by_label(t, label, CKO_PUBLIC_KEY);
	unsigned char *v = NULL, *id = NULL, *pid = NULL, want[SHA_DIGEST_LENGTH];
	CK_ULONG len = 0, idlen = 0, pidlen = 0;
	const unsigned char *p;
	ASN1_OCTET_STRING *os = NULL;

	ok(pv != CK_INVALID_HANDLE && pb != CK_INVALID_HANDLE,
	   "%s: one private and one public object", label);
	is_int(p11_attr_bool(t, pv, CKA_SENSITIVE), 1, "%s: CKA_SENSITIVE", label);
	is_int(p11_attr_bool(t, pv, CKA_EXTRACTABLE), 0, "%s: CKA_EXTRACTABLE false",
	       label);
	is_int(p11_attr_bool(t, pv, CKA_NEVER_EXTRACTABLE), 1,
	       "%s: CKA_NEVER_EXTRACTABLE", label);
	is_int(p11_attr_bool(t, pv, CKA_TOKEN), 1, "%s: CKA_TOKEN", label);
	is_int(p11_attr_bool(t, pv, CKA_PRIVATE), 1, "%s: CKA_PRIVATE", label);
	is_int(p11_attr_bool(t, pv, CKA_SIGN), 1, "%s: CKA_SIGN", label);
	is_int(p11_attr_bool(t, pv, CKA_UNWRAP), 0, "%s: CKA_UNWRAP false", label);
	is_int(p11_attr_bool(t, pv, CKA_ALWAYS_SENSITIVE), 1,
	       "%s: CKA_ALWAYS_SENSITIVE", label);
	is_int(p11_attr_bool(t, pv, CKA_LOCAL), 1, "%s: CKA_LOCAL (born in the "
	       "token)", label);
	if (type == EVP_PKEY_RSA)
		is_int(p11_attr_bool(t, pv, CKA_DECRYPT), 1, "%s: CKA_DECRYPT", label);
	ok(p11_attr_get1(t, pv, CKA_VALUE, &v, &len) < 0 &&
	   p11_attr_get1(t, pv, CKA_PRIVATE_EXPONENT, &v, &len) < 0,
	   "%s: private values cannot be read", label);
	free(v);
	v = NULL;
	p11_attr_get1(t, pv, CKA_ID, &id, &idlen);
	p11_attr_get1(t, pb, CKA_ID, &pid, &pidlen);
	p11_attr_get1(t, pb, type == EVP_PKEY_RSA ? CKA_MODULUS : CKA_EC_POINT,
		      &v, &len);
	p = v;
	if (type == EVP_PKEY_EC && (os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)len)))
		SHA1(ASN1_STRING_get0_data(os), (size_t)ASN1_STRING_length(os), want);
	else
		SHA1(v, len, want);
	ok(id && pid && idlen == 20 && pidlen == 20 && !memcmp(id, pid, 20) &&
	   !memcmp(id, want, 20), "%s: CKA_ID = SHA-1 of the public key, on both "
	   "halves", label);
	ASN1_OCTET_STRING_free(os);
	free(v);
	free(id);
	free(pid);
}

static void check_sign(EVP_PKEY *k, const char *label)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *nm = X509_NAME_new();
	X509 *x;

	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
				   (const unsigned char *)label, -1, -1, 0);
	X509_REQ_set_subject_name(req, nm);
	X509_REQ_set_pubkey(req, k);
	ok(X509_REQ_sign(req, k, EVP_sha256()) > 0, "%s: CSR signed in the token",
	   label);
	ok(X509_REQ_verify(req, X509_REQ_get0_pubkey(req)) == 1,
	   "%s: CSR signature verifies with the public key", label);
	x = self_signed(k, label);
	ok(x != NULL, "%s: self-signed certificate signed in the token", label);
	ok(x != NULL && X509_verify(x, X509_get0_pubkey(x)) == 1,
	   "%s: self-signed certificate verifies", label);
	ok(x != NULL && p11_key_matches_cert(k, x) == 1,
	   "%s: p11_key_matches_cert", label);
	ERR_clear_error();
	X509_free(x);
	X509_NAME_free(nm);
	X509_REQ_free(req);
}

static void check_decrypt(EVP_PKEY *k, X509 *cert)
{
	static const char *ciphers[] = { "DES-CBC", "DES-EDE3-CBC", "AES-128-CBC",
					 "AES-256-CBC" };
	static const char msg[] = "issued certificate goes here";
	STACK_OF(X509) *rcpt = sk_X509_new_null();
	char buf[128];
	size_t i;
	int n;

	sk_X509_push(rcpt, cert);
	for (i = 0; i < sizeof(ciphers) / sizeof(ciphers[0]); i++) {
		EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, ciphers[i], NULL);
		BIO *in = BIO_new_mem_buf(msg, sizeof(msg));
		BIO *out = BIO_new(BIO_s_mem());
		PKCS7 *p7 = c ? PKCS7_encrypt(rcpt, in, c, PKCS7_BINARY) : NULL;
		unsigned char *der = NULL;
		const unsigned char *dp;
		PKCS7 *p7b = NULL;
		int dl;

		/* through DER, as a CertRep's envelope arrives */
		dl = p7 ? i2d_PKCS7(p7, &der) : 0;
		dp = der;
		p7b = dl > 0 ? d2i_PKCS7(NULL, &dp, dl) : NULL;
		ok(p7b != NULL && PKCS7_decrypt(p7b, k, cert, out, 0) == 1 &&
		   (n = BIO_read(out, buf, sizeof(buf))) == (int)sizeof(msg) &&
		   memcmp(buf, msg, sizeof(msg)) == 0,
		   "PKCS#7 envelope with %s decrypted by the token key", ciphers[i]);
		if (p7b == NULL)
			diag("%s", ERR_error_string(ERR_get_error(), NULL));
		ERR_clear_error();
		OPENSSL_free(der);
		PKCS7_free(p7);
		PKCS7_free(p7b);
		BIO_free(in);
		BIO_free(out);
		EVP_CIPHER_free(c);
	}
	{
		BIO *in = BIO_new_mem_buf(msg, sizeof(msg));
		BIO *out = BIO_new(BIO_s_mem());
		CMS_ContentInfo *cms = CMS_encrypt(rcpt, in, EVP_aes_128_cbc(),
						   CMS_BINARY);

		ok(cms != NULL && CMS_decrypt(cms, k, cert, NULL, out, 0) == 1 &&
		   BIO_read(out, buf, sizeof(buf)) == (int)sizeof(msg) &&
		   memcmp(buf, msg, sizeof(msg)) == 0,
		   "CMS envelope (AES-128) decrypted by the token key");
		ERR_clear_error();
		CMS_ContentInfo_free(cms);
		BIO_free(in);
		BIO_free(out);
	}
	sk_X509_free(rcpt);
}

static int count_certs(p11_token *t, const char *label)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_ATTRIBUTE a[2] = { { CKA_CLASS, &cls, sizeof(cls) },
			      { CKA_LABEL, (void *)label, strlen(label) } };
	CK_OBJECT_HANDLE *h = NULL;
	CK_ULONG n = 0;

	p11_find(t, a, 2, &h, &n);
	free(h);
	return (int)n;
}

static void check_cert_store(p11_token *t, p11_keyobj *ko, const char *label)
{
	EVP_PKEY *k = p11_keyobj_get0_pkey(ko);
	X509 *x1 = self_signed(k, "first"), *x2 = self_signed(k, "second");
	CK_OBJECT_HANDLE c, pv = priv_by_label(t, label, CKO_PRIVATE_KEY);
	unsigned char *v = NULL, *id = NULL, *kid = NULL, *der = NULL;
	CK_ULONG len = 0, idlen = 0, kidlen = 0;
	char *uri = NULL, calabel[64];
	int dl, rc;

	rc = p11_cert_store(ko, x1, NULL, &uri);
	if (rc < 0)
		diag("%s", sa_errmsg());
	is_int(rc, 0, "cert stored next to key %s", label);
	ok(uri && p11_is_uri(uri) && strstr(uri, "type=cert"),
	   "cert URI %s", uri ? uri : "(none)");
	free(uri);
	is_int(count_certs(t, label), 1, "one certificate object labelled %s",
	       label);
	c = priv_by_label(t, label, CKO_CERTIFICATE);
	p11_attr_get1(t, c, CKA_VALUE, &v, &len);
	p11_attr_get1(t, c, CKA_ID, &id, &idlen);
	p11_attr_get1(t, pv, CKA_ID, &kid, &kidlen);
	dl = i2d_X509(x1, &der);
	ok(v && (int)len == dl && !memcmp(v, der, len), "CKA_VALUE read back "
	   "equals the certificate");
	ok(id && kid && idlen == kidlen && !memcmp(id, kid, idlen),
	   "certificate CKA_ID equals the key's");
	is_int(p11_attr_bool(t, c, CKA_TOKEN), 1, "certificate is a token object");
	free(v);
	free(id);
	free(kid);
	OPENSSL_free(der);
	der = NULL;
	v = NULL;
	{
		/* a certificate of another key is not stored next to this one */
		EVP_PKEY *other = EVP_EC_gen("P-256");
		X509 *xo = other ? self_signed(other, "other") : NULL;

		rc = xo ? p11_cert_store(ko, xo, NULL, NULL) : -1;
		is_int(rc, SA_EKEY, "another key's certificate is refused (%s)",
		       sa_errmsg());
		X509_free(xo);
		EVP_PKEY_free(other);
	}
	rc = p11_cert_store(ko, x2, NULL, NULL);
	is_int(rc, 0, "a renewed cert for the same key stored");
	is_int(count_certs(t, label), 1, "it replaced the older one (still one)");
	c = priv_by_label(t, label, CKO_CERTIFICATE);
	p11_attr_get1(t, c, CKA_VALUE, &v, &len);
	dl = i2d_X509(x2, &der);
	ok(v && (int)len == dl && !memcmp(v, der, len), "the object holds the "
	   "newer certificate");
	free(v);
	OPENSSL_free(der);
	snprintf(calabel, sizeof(calabel), "ca-%s", label);
	is_int(p11_cacert_store(t, x1, calabel), 0, "CA certificate stored");
	is_int(p11_cacert_store(t, x1, calabel), 0, "and again (no-op)");
	is_int(count_certs(t, calabel), 1, "one CA certificate object");
	X509_free(x1);
	X509_free(x2);
}

static int spy_logins(const char *log)
{
	char line[512];
	FILE *f = fopen(log, "r");
	int n = 0;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "C_Login") && !strstr(line, "Returned"))
			n++;
	fclose(f);
	return n;
}

static void check_wrong_pin(void)
{
	struct p11_open_opts o = { .module = SPY, .need_login = 1 };
	char log[400], badpin[400];
	p11_token *t = NULL;
	CK_TOKEN_INFO ti;
	FILE *f;
	int rc;

	snprintf(log, sizeof(log), "%s/spy.log", dir);
	snprintf(badpin, sizeof(badpin), "%s/badpin", dir);
	f = fopen(badpin, "w");
	fprintf(f, "9999\n");
	fclose(f);
	setenv("PKCS11SPY", SOFTHSM, 1);
	setenv("PKCS11SPY_OUTPUT", log, 1);
	o.pin.pin_file = badpin;
	o.pin.no_prompt = 1;
	rc = p11_token_open("pkcs11:token=t2", &o, &t);
	is_int(rc, SA_EPIN, "wrong PIN: SA_EPIN");
	ok(strstr(sa_errmsg(), "wrong user PIN") &&
	   strstr(sa_errmsg(), "count low"),
	   "message says wrong PIN and the token's count-low flag: %s",
	   sa_errmsg());
	ok(strstr(sa_errmsg(), "9999") == NULL, "the PIN is not in the message");
	is_int(spy_logins(log), 1, "pkcs11-spy saw exactly one C_Login");
	p11_token_close(t);
	t = NULL;

	/* the token's own record: one failed login */
	o.module = SOFTHSM;
	o.need_login = 0;
	rc = p11_token_open("pkcs11:token=t2", &o, &t);
	memset(&ti, 0, sizeof(ti));
	if (rc == 0)
		t->mod->fl->C_GetTokenInfo(t->slot_id, &ti);
	ok((ti.flags & CKF_USER_PIN_COUNT_LOW) &&
	   !(ti.flags & (CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED)),
	   "token flags: count low, not final try, not locked");
	p11_token_close(t);
	t = NULL;

	/* the right PIN afterwards works and resets the count */
	t = open_tok("pkcs11:token=t2", &rc);
	is_int(rc, 0, "right PIN afterwards logs in");
	p11_token_close(t);

	/* no PIN source at all, no prompt */
	o.pin.pin_file = NULL;
	o.need_login = 1;
	t = NULL;
	rc = p11_token_open("pkcs11:token=t2", &o, &t);
	is_int(rc, SA_EPIN, "no PIN available: SA_EPIN (%s)", sa_errmsg());
	p11_token_close(t);
	unsetenv("PKCS11SPY");
	unsetenv("PKCS11SPY_OUTPUT");
}

static void check_pin_sources(void)
{
	struct p11_open_opts o = { .module = SOFTHSM, .need_login = 1 };
	char uri[600];
	p11_token *t = NULL;
	int rc;

	o.pin.no_prompt = 1;
	setenv("TEST_TOKEN_PIN", "1234", 1);
	o.pin.pin_env = "TEST_TOKEN_PIN";
	rc = p11_token_open("pkcs11:token=t1", &o, &t);
	is_int(rc, 0, "PIN from a named environment variable");
	ok(t && t->logged_in, "logged in");
	p11_token_close(t);
	t = NULL;
	o.pin.pin_env = NULL;
	rc = p11_token_open("pkcs11:token=t1?pin-source=env:TEST_TOKEN_PIN", &o, &t);
	is_int(rc, 0, "PIN from pin-source=env:VAR");
	p11_token_close(t);
	t = NULL;
	snprintf(uri, sizeof(uri), "pkcs11:token=t1?pin-source=file:%s", pinfile);
	rc = p11_token_open(uri, &o, &t);
	is_int(rc, 0, "PIN from pin-source=file:");
	p11_token_close(t);
	t = NULL;
	rc = p11_token_open("pkcs11:token=t1?pin-value=1234", &o, &t);
	is_int(rc, 0, "PIN from pin-value (with a warning)");
	p11_token_close(t);
	t = NULL;
	snprintf(uri, sizeof(uri), "pkcs11:token=t1?module-path=%s&pin-value=1234",
		 SOFTHSM);
	o.module = NULL;
	rc = p11_token_open(uri, &o, &t);
	is_int(rc, 0, "module from module-path=");
	p11_token_close(t);
	t = NULL;
	rc = p11_token_open("pkcs11:token=t1?module-name=softhsm2&pin-value=1234",
			    &o, &t);
	is_int(rc, 0, "module from module-name= via p11-kit's registry (%s)",
	       rc ? sa_errmsg() : "ok");
	p11_token_close(t);
	t = NULL;
	o.module = "softhsm2";
	rc = p11_token_open("pkcs11:token=t1?pin-value=1234", &o, &t);
	is_int(rc, 0, "--module softhsm2 (a p11-kit name)");
	p11_token_close(t);
	unsetenv("TEST_TOKEN_PIN");
}

static void check_errors(void)
{
	struct p11_open_opts o = { .module = "/nonexistent/libnothing.so",
				   .need_login = 1 };
	p11_token *t = NULL;
	p11_keyobj *ko = NULL;
	int rc;

	o.pin.pin_file = pinfile;
	rc = p11_token_open("pkcs11:token=t1", &o, &t);
	is_int(rc, SA_EKEY, "wrong module path: SA_EKEY");
	ok(strstr(sa_errmsg(), "/nonexistent/libnothing.so") != NULL,
	   "message names the module: %s", sa_errmsg());
	o.module = "/etc/hostname";
	rc = p11_token_open("pkcs11:token=t1", &o, &t);
	is_int(rc, SA_EKEY, "a file that is no module: SA_EKEY (%s)", sa_errmsg());
	o.module = SOFTHSM;
	rc = p11_token_open("pkcs11:token=absent", &o, &t);
	is_int(rc, SA_ENOTFOUND, "token absent: SA_ENOTFOUND");
	ok(strstr(sa_errmsg(), "'t1'") && strstr(sa_errmsg(), "'t2'"),
	   "message lists the tokens there: %s", sa_errmsg());
	rc = p11_token_open("pkcs11:object=shared", &o, &t);
	is_int(rc, SA_EKEY, "URI matching two tokens is refused (%s)", sa_errmsg());
	ok(t == NULL, "no token returned on errors");
	t = open_tok("pkcs11:token=t1", &rc);
	rc = p11_key_get1(t, "pkcs11:token=t1;object=missing;type=private", &ko);
	is_int(rc, SA_ENOTFOUND, "object missing: SA_ENOTFOUND (%s)", sa_errmsg());
	ok(ko == NULL, "no key returned");
	p11_token_close(t);
}

static void check_list(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	p11_token *t;
	int rc;

	is_int(p11_list_tokens(SOFTHSM, f), 0, "list-tokens");
	fflush(f);
	ok(buf && strstr(buf, "token:        t1") && strstr(buf, "token=t2") &&
	   strstr(buf, "module-path="), "list-tokens shows both tokens with URIs");
	fclose(f);
	free(buf);
	buf = NULL;
	f = open_memstream(&buf, &len);
	t = open_tok("pkcs11:token=t1", &rc);
	is_int(p11_list_objects(t, f), 0, "list-objects");
	fflush(f);
	ok(buf && strstr(buf, "private key 'k-rsa2048'") &&
	   strstr(buf, "sensitive=1 extractable=0 never-extractable=1") &&
	   strstr(buf, "object=k-rsa2048;") && strstr(buf, "EC prime256v1") &&
	   strstr(buf, "RSA 3072"), "list-objects shows keys, custody and URIs");
	if (buf && sa_log_level() >= SA_LOG_DEBUG)
		diag("%s", buf);
	fclose(f);
	free(buf);
	p11_token_close(t);
}

int main(void)
{
	static const char *specs[] = { "rsa:2048", "rsa:3072", "rsa:4096",
				       "ec:P-256", "ec:P-384" };
	static const char *labels[] = { "k-rsa2048", "k-rsa3072", "k-rsa4096",
					"k-ecp256", "k-ecp384" };
	OSSL_PROVIDER *prov[2];
	struct p11_keyspec ks;
	p11_token *t, *t2;
	p11_keyobj *ko, *ko2, *kko;
	EVP_PKEY *k, *kk;
	X509 *cert;
	char *uri = NULL, *uri2 = NULL;
	size_t i;
	int rc;

	sa_log_init("p11_custody", getenv("TEST_DEBUG") ? SA_LOG_DEBUG : SA_LOG_ERR, 0);
	prov[0] = OSSL_PROVIDER_load(NULL, "default");
	prov[1] = OSSL_PROVIDER_load(NULL, "legacy");
	if (setup() != 0) {
		printf("Bail out! cannot create SoftHSM2 tokens in a temp dir\n");
		cleanup();
		return 1;
	}
	atexit(cleanup);

	t = open_tok("pkcs11:token=t1", &rc);
	is_int(rc, 0, "token t1 opened and logged in");
	if (t == NULL)
		return tap_done();
	for (i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		p11_keyspec_parse(specs[i], &ks);
		rc = p11_keygen(t, labels[i], &ks, 0, &ko);
		is_int(rc, 0, "keygen %s in the token (%s)", specs[i],
		       rc ? sa_errmsg() : "ok");
		k = p11_keyobj_get0_pkey(ko);
		uri = ko ? strdup(p11_keyobj_get0_uri(ko)) : NULL;
		check_keyobj(t, ko, labels[i]);
		ok(uri && strstr(uri, "type=private") && strstr(uri, "token=t1"),
		   "key URI %s", uri ? uri : "(none)");
		check_custody(t, labels[i], ks.type);
		if (k != NULL)
			check_sign(k, labels[i]);
		/* the URI finds the very same key again */
		kko = NULL;
		rc = uri ? p11_key_get1(t, uri, &kko) : -1;
		kk = p11_keyobj_get0_pkey(kko);
		ok(rc == 0 && kk && k && EVP_PKEY_eq(k, kk) == 1,
		   "p11_key_get1 with the key URI finds it");
		ok(kko && uri && !strcmp(p11_keyobj_get0_uri(kko), uri),
		   "with the same canonical URI");
		p11_keyobj_free(kko);
		p11_keyobj_free(ko);
		free(uri);
	}

	/* decryption and certificate objects with the RSA-2048 key */
	rc = p11_key_get1(t, "pkcs11:object=k-rsa2048", &ko);
	is_int(rc, 0, "key by label only");
	k = p11_keyobj_get0_pkey(ko);
	cert = k ? self_signed(k, "decrypt") : NULL;
	if (cert != NULL)
		check_decrypt(k, cert);
	if (k != NULL)
		check_cert_store(t, ko, "k-rsa2048");
	X509_free(cert);
	p11_keyobj_free(ko);
	rc = p11_key_get1(t, "pkcs11:object=k-ecp256", &ko);
	if (ko != NULL)
		check_cert_store(t, ko, "k-ecp256");
	p11_keyobj_free(ko);

	/*
	 * The last token closed unloads the module and our provider; a token
	 * opened again in the same process (a daemon's next renewal) gets
	 * working key handles again.
	 */
	p11_token_close(t);
	t = open_tok("pkcs11:token=t1", &rc);
	is_int(rc, 0, "the token opens again after the module was unloaded");
	ko = NULL;
	rc = t ? p11_key_get1(t, "pkcs11:object=k-ecp256", &ko) : -1;
	is_int(rc, 0, "a key handle after the reload: %s", rc ? sa_errmsg() : "");
	ok(ko != NULL && check_still_signs(p11_keyobj_get0_pkey(ko)),
	   "and it signs in the token");
	p11_keyobj_free(ko);

	/* overwrite refusal */
	p11_keyspec_parse("ec:P-256", &ks);
	rc = p11_keygen(t, "k-ecp256", &ks, 0, &ko);
	is_int(rc, SA_EEXIST, "same label again: refused with SA_EEXIST");
	ok(ko == NULL, "no key returned");
	ok(priv_by_label(t, "k-ecp256", CKO_PRIVATE_KEY) != CK_INVALID_HANDLE,
	   "the old key is untouched");
	kko = NULL;
	p11_key_get1(t, "pkcs11:object=k-ecp256", &kko);
	kk = p11_keyobj_get0_pkey(kko);
	rc = p11_keygen(t, "k-ecp256", &ks, 1, &ko);
	k = p11_keyobj_get0_pkey(ko);
	is_int(rc, 0, "same label with overwrite: a new key");
	ok(ko && !strcmp(p11_keyobj_get0_label(ko), "k-ecp256~new") &&
	   strstr(p11_keyobj_get0_uri(ko), "object=k-ecp256%7Enew;"),
	   "its object names the staging label: %s",
	   ko ? p11_keyobj_get0_uri(ko) : "-");
	ok(k && kk && EVP_PKEY_eq(k, kk) != 1, "it is a new key");
	ok(priv_by_label(t, "k-ecp256~new", CKO_PRIVATE_KEY) != CK_INVALID_HANDLE,
	   "under the provisional label");
	ok(priv_by_label(t, "k-ecp256", CKO_PRIVATE_KEY) != CK_INVALID_HANDLE,
	   "the old key keeps its label until the commit");
	is_int(count_certs(t, "k-ecp256"), 1, "and so does its certificate");
	ok(kk && check_still_signs(kk), "the old key still signs");
	{
		p11_keyobj *again = NULL;

		rc = p11_newkey_get1(t, "k-ecp256", 1, &again);
		is_int(rc, 0, "newkey_get1: the unfinished new key is found");
		ok(again && k && EVP_PKEY_eq(p11_keyobj_get0_pkey(again), k) == 1,
		   "the same new key");
		p11_keyobj_free(again);
		again = NULL;
		rc = p11_newkey_get1(t, "k-nothing", 1, &again);
		is_int(rc, SA_ENOTFOUND, "newkey_get1: none for an unknown label");
	}
	rc = ko ? p11_key_commit(ko, "k-ecp256", 0) : -1;
	is_int(rc, 0, "commit after the certificate would be stored");
	uri = (char *)p11_keyobj_get0_uri(ko);
	ok(uri && strstr(uri, "object=k-ecp256;"), "the new key has the label");
	ok(ko && !strcmp(p11_keyobj_get0_label(ko), "k-ecp256"),
	   "and its object says so");
	uri = NULL;
	ok(priv_by_label(t, "k-ecp256", CKO_PRIVATE_KEY) != CK_INVALID_HANDLE,
	   "exactly one private key with the label");
	ok(priv_by_label(t, "k-ecp256~new", CKO_PRIVATE_KEY) == CK_INVALID_HANDLE,
	   "none left under the provisional label");
	is_int(count_certs(t, "k-ecp256"), 0, "the old key's certificate is gone");
	p11_keyobj_free(ko);
	p11_keyobj_free(kko);

	/* a key generated and never certified can be removed */
	rc = p11_keygen(t, "k-drop", &ks, 0, &ko);
	is_int(rc, 0, "key 'k-drop' made");
	rc = ko ? p11_key_destroy(ko) : -1;
	is_int(rc, 0, "and destroyed");
	ok(priv_by_label(t, "k-drop", CKO_PRIVATE_KEY) == CK_INVALID_HANDLE &&
	   priv_by_label(t, "k-drop", CKO_PUBLIC_KEY) == CK_INVALID_HANDLE,
	   "no object labelled 'k-drop' is left");
	p11_keyobj_free(ko);
	rc = p11_keygen_uri(t, "pkcs11:object=k-id;id=%01", &ks, 0, &ko);
	is_int(rc, SA_EUSAGE, "keygen_uri: id= refused");

	/* the same label in two tokens: the URI's token= decides */
	t2 = open_tok("pkcs11:token=t2", &rc);
	is_int(rc, 0, "token t2 opened");
	ko = ko2 = NULL;
	rc = p11_keygen(t, "shared", &ks, 0, &ko);
	is_int(rc, 0, "key 'shared' in t1");
	rc = t2 ? p11_keygen(t2, "shared", &ks, 0, &ko2) : -1;
	is_int(rc, 0, "key 'shared' in t2");
	uri2 = ko2 ? strdup(p11_keyobj_get0_uri(ko2)) : NULL;
	p11_keyobj_free(ko);
	p11_keyobj_free(ko2);
	p11_token_close(t2);
	t2 = open_tok("pkcs11:token=t2;object=shared", &rc);
	kko = NULL;
	rc = t2 ? p11_key_get1(t2, "pkcs11:token=t2;object=shared", &kko) : -1;
	kk = p11_keyobj_get0_pkey(kko);
	is_int(rc, 0, "key 'shared' by URI with token=t2 (%s)", rc ? sa_errmsg() : "ok");
	{
		/* compare with t1's and t2's public keys via their certs */
		X509 *x = kk ? self_signed(kk, "t2") : NULL;
		unsigned char *id2 = NULL;

		if (x == NULL)
			ERR_print_errors_fp(stdout);
		size_t idl = 0;
		char *lab = NULL;

		ok(x && p11_key_id_for_pubkey(t2, X509_get0_pubkey(x), &id2, &idl,
					      &lab) == 0 && lab &&
		   !strcmp(lab, "shared") && uri2 && strstr(uri2, "token=t2"),
		   "it is t2's key");
		free(id2);
		free(lab);
		rc = x ? p11_key_id_for_pubkey(t, X509_get0_pubkey(x), &id2,
					       &idl, &lab) : -1;
		is_int(rc, SA_ENOTFOUND, "and not t1's (%s)", lab ? lab : "-");
		free(id2);
		free(lab);
		X509_free(x);
	}
	p11_keyobj_free(kko);
	p11_token_close(t2);
	free(uri2);
	p11_token_close(t);

	check_errors();
	check_pin_sources();
	check_wrong_pin();
	check_list();
	OSSL_PROVIDER_unload(prov[1]);
	OSSL_PROVIDER_unload(prov[0]);
	return tap_done();
}

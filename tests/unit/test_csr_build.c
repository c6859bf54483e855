/* Unit tests for agent/csr.c: subject and SAN parsing, CSR building. */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "csr.h"
#include "sa_err.h"
#include "tap.h"

static void test_subject(void)
{
	X509_NAME *n = NULL;
	X509_NAME_ENTRY *e;
	char buf[256];
	int rc;

	rc = csr_subject_parse("/CN=host.example/O=Org\\/Unit/C=FI", &n);
	is_int(rc, 0, "plain subject parses");
	if (n != NULL) {
		is_int(X509_NAME_entry_count(n), 3, "three attributes");
		X509_NAME_get_text_by_NID(n, NID_organizationName, buf, sizeof(buf));
		is_str(buf, "Org/Unit", "escaped slash kept in the value");
		e = X509_NAME_get_entry(n, 0);
		is_int(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)), NID_commonName,
		       "order kept: CN first");
		X509_NAME_free(n);
		n = NULL;
	}
	rc = csr_subject_parse("/DC=org/DC=example/CN=a+UID=b+serialNumber=42", &n);
	is_int(rc, 0, "multi-valued RDN parses");
	if (n != NULL) {
		is_int(X509_NAME_entry_count(n), 5, "five attributes");
		is_int(X509_NAME_ENTRY_set(X509_NAME_get_entry(n, 2)),
		       X509_NAME_ENTRY_set(X509_NAME_get_entry(n, 4)),
		       "CN, UID and serialNumber share one RDN");
		ok(X509_NAME_ENTRY_set(X509_NAME_get_entry(n, 1)) !=
		   X509_NAME_ENTRY_set(X509_NAME_get_entry(n, 2)),
		   "DC and CN are separate RDNs");
		X509_NAME_free(n);
		n = NULL;
	}
	rc = csr_subject_parse("/CN=a\\+b/2.5.4.5=77/commonName=c\\\\d", &n);
	is_int(rc, 0, "escaped plus, dotted OID, long name");
	if (n != NULL) {
		is_int(X509_NAME_entry_count(n), 3, "three RDNs");
		X509_NAME_get_text_by_NID(n, NID_serialNumber, buf, sizeof(buf));
		is_str(buf, "77", "OID 2.5.4.5 is serialNumber");
		X509_NAME_free(n);
		n = NULL;
	}
	rc = csr_subject_parse("/CN=J\xc3\xbcrgen", &n);
	is_int(rc, 0, "UTF-8 value");
	X509_NAME_free(n);
	n = NULL;

	is_int(csr_subject_parse("CN=x", &n), SA_EUSAGE, "no leading slash");
	is_int(csr_subject_parse("/CN", &n), SA_EUSAGE, "no '='");
	is_int(csr_subject_parse("/CN=", &n), SA_EUSAGE, "empty value");
	is_int(csr_subject_parse("/", &n), SA_EUSAGE, "empty subject");
	is_int(csr_subject_parse("/NOPE=x", &n), SA_EUSAGE, "unknown type");
	is_int(csr_subject_parse("/C=FIN", &n), SA_EUSAGE,
	       "country must be two letters");
	is_int(csr_subject_parse("/CN=a+", &n), SA_EUSAGE, "trailing '+'");
	ok(n == NULL, "no output on error");
}

static void test_san(void)
{
	static const unsigned char v6[16] = { [15] = 1 };
	static const unsigned char v4[4] = { 1, 2, 3, 4 };
	GENERAL_NAME *gn = NULL;
	int type;
	void *v;

	is_int(csr_san_parse("DNS:www.example.com", &gn), 0, "DNS");
	if (gn) {
		v = GENERAL_NAME_get0_value(gn, &type);
		is_int(type, GEN_DNS, "DNS type");
		is_str((const char *)ASN1_STRING_get0_data(v), "www.example.com",
		       "DNS value");
		GENERAL_NAME_free(gn);
	}
	is_int(csr_san_parse("IP:1.2.3.4", &gn), 0, "IPv4");
	if (gn) {
		v = GENERAL_NAME_get0_value(gn, &type);
		ok(type == GEN_IPADD && ASN1_STRING_length(v) == 4 &&
		   memcmp(ASN1_STRING_get0_data(v), v4, 4) == 0, "IPv4 bytes");
		GENERAL_NAME_free(gn);
	}
	is_int(csr_san_parse("ip:::1", &gn), 0, "IPv6 ::1, type case-insensitive");
	if (gn) {
		v = GENERAL_NAME_get0_value(gn, &type);
		ok(type == GEN_IPADD && ASN1_STRING_length(v) == 16 &&
		   memcmp(ASN1_STRING_get0_data(v), v6, 16) == 0, "IPv6 bytes");
		GENERAL_NAME_free(gn);
	}
	is_int(csr_san_parse("email:a@b.example", &gn), 0, "email");
	if (gn) {
		GENERAL_NAME_get0_value(gn, &type);
		is_int(type, GEN_EMAIL, "email type");
		GENERAL_NAME_free(gn);
	}
	is_int(csr_san_parse("URI:https://x.example/a?b=c", &gn), 0, "URI");
	if (gn) {
		GENERAL_NAME_get0_value(gn, &type);
		is_int(type, GEN_URI, "URI type");
		GENERAL_NAME_free(gn);
	}
	is_int(csr_san_parse("UPN:user@realm.example", &gn), 0, "UPN");
	if (gn) {
		GENERAL_NAME_get0_value(gn, &type);
		is_int(type, GEN_OTHERNAME, "UPN is an otherName");
		GENERAL_NAME_free(gn);
	}
	gn = NULL;
	is_int(csr_san_parse("IP:1.2.3", &gn), SA_EUSAGE, "bad IP");
	is_int(csr_san_parse("IP:::g", &gn), SA_EUSAGE, "bad IPv6");
	is_int(csr_san_parse("email:nobody", &gn), SA_EUSAGE, "email without @");
	is_int(csr_san_parse("FOO:x", &gn), SA_EUSAGE, "unknown type");
	is_int(csr_san_parse("DNS:", &gn), SA_EUSAGE, "empty value");
	is_int(csr_san_parse("example.com", &gn), SA_EUSAGE, "no type");
	ok(gn == NULL, "no output on error");
}

static X509_EXTENSION *find_ext(STACK_OF(X509_EXTENSION) *exts, const char *oid)
{
	ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
	int i = X509v3_get_ext_by_OBJ(exts, o, -1);

	ASN1_OBJECT_free(o);
	return i < 0 ? NULL : X509v3_get_ext(exts, i);
}

static void check_template(const char *tmpl, int want_type, int want_len)
{
	struct csr_params p = { .subject = "/CN=t", .cert_template = tmpl };
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509_REQ *req = NULL;
	STACK_OF(X509_EXTENSION) *exts;
	X509_EXTENSION *ext;

	is_int(csr_build(&p, key, &req), 0, "CSR with template %s", tmpl);
	exts = req ? X509_REQ_get_extensions(req) : NULL;
	ext = exts ? find_ext(exts, "1.3.6.1.4.1.311.20.2") : NULL;
	ok(ext != NULL, "template extension present");
	if (ext != NULL) {
		ASN1_OCTET_STRING *d = X509_EXTENSION_get_data(ext);
		const unsigned char *q = ASN1_STRING_get0_data(d);

		is_int(q[0], want_type, "template string tag");
		is_int(q[1], want_len, "template string length");
	}
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
}

static void test_build(void)
{
	static const char *const sans[] = { "DNS:a.example", "IP:::1",
					    "email:x@a.example" };
	struct csr_params p = {
		.subject = "/CN=device/O=Example/C=FI",
		.san = sans, .n_san = 3,
		.challenge = "s3cret pass",
		.key_usage = "critical,digitalSignature,keyEncipherment",
		.ext_key_usage = "serverAuth,clientAuth,1.3.6.1.5.5.7.3.17",
	};
	EVP_PKEY *key = EVP_RSA_gen(1024), *pub; /* size does not matter here; fast under valgrind */
	X509_REQ *req = NULL;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_ATTRIBUTE *attr;
	ASN1_TYPE *at;
	int i;

	is_int(csr_build(&p, key, &req), 0, "RSA CSR builds");
	if (req == NULL)
		return;
	pub = X509_REQ_get0_pubkey(req);
	is_int(X509_REQ_verify(req, pub), 1, "self-signature verifies");
	ok(EVP_PKEY_eq(pub, key) == 1, "CSR carries the key");
	is_int(X509_REQ_get_signature_nid(req), NID_sha256WithRSAEncryption,
	       "signed with SHA-256");
	exts = X509_REQ_get_extensions(req);
	is_int(sk_X509_EXTENSION_num(exts), 3, "SAN, KU, EKU");
	ok(find_ext(exts, "2.5.29.17") != NULL, "subjectAltName");
	ok(find_ext(exts, "2.5.29.15") != NULL &&
	   X509_EXTENSION_get_critical(find_ext(exts, "2.5.29.15")),
	   "keyUsage, critical");
	ok(find_ext(exts, "2.5.29.37") != NULL, "extendedKeyUsage");
	i = X509_REQ_get_attr_by_NID(req, NID_pkcs9_challengePassword, -1);
	ok(i >= 0, "challengePassword attribute");
	attr = X509_REQ_get_attr(req, i);
	at = attr ? X509_ATTRIBUTE_get0_type(attr, 0) : NULL;
	ok(at != NULL && at->type == V_ASN1_PRINTABLESTRING,
	   "printable challenge is a PrintableString");
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	req = NULL;

	p.key_usage = "digitalSignature,sideways";
	is_int(csr_build(&p, key, &req), SA_EUSAGE, "bad key usage refused");
	p.key_usage = NULL;
	p.san = (const char *const[]){ "DNS:ok", "bogus" };
	p.n_san = 2;
	is_int(csr_build(&p, key, &req), SA_EUSAGE, "bad SAN refused");
	ok(req == NULL, "no output on error");
	EVP_PKEY_free(key);

	key = EVP_EC_gen("P-256");
	p = (struct csr_params){ .subject = "/CN=ec" };
	is_int(csr_build(&p, key, &req), 0, "EC P-256 CSR builds");
	if (req != NULL) {
		is_int(X509_REQ_verify(req, X509_REQ_get0_pubkey(req)), 1,
		       "EC self-signature verifies");
		is_int(X509_REQ_get_attr_count(req), 0, "no attributes when "
		       "nothing asked");
	}
	X509_REQ_free(req);
	EVP_PKEY_free(key);

	check_template("pc-client", V_ASN1_UTF8STRING, 9);
	check_template("bmp:Machine", V_ASN1_BMPSTRING, 14);
}

int main(void)
{
	test_subject();
	test_san();
	test_build();
	return tap_done();
}

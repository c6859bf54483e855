/*
 * caps.c - GetCACaps parsing and the cipher/digest choices the caps drive.
 */
#include "scep_int.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sa_log.h"

static const struct {
	const char *word;
	unsigned bit;
} cap_words[] = {
	{ "GetNextCACert", SCEP_CAP_GETNEXTCA },
	{ "POSTPKIOperation", SCEP_CAP_POST },
	{ "Renewal", SCEP_CAP_RENEWAL },
	{ "SHA-1", SCEP_CAP_SHA1 },
	{ "SHA-224", SCEP_CAP_SHA224 },
	{ "SHA-256", SCEP_CAP_SHA256 },
	{ "SHA-384", SCEP_CAP_SHA384 },
	{ "SHA-512", SCEP_CAP_SHA512 },
	{ "DES3", SCEP_CAP_DES3 },
	{ "AES", SCEP_CAP_AES },
	{ "SCEPStandard", SCEP_CAP_SCEPSTANDARD },
	{ "Update", SCEP_CAP_UPDATE },
	/* spellings seen in the wild */
	{ "SHA1", SCEP_CAP_SHA1 },
	{ "SHA256", SCEP_CAP_SHA256 },
	{ "SHA512", SCEP_CAP_SHA512 },
	{ "3DES", SCEP_CAP_DES3 },
};

static unsigned cap_word(const char *w, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof(cap_words) / sizeof(cap_words[0]); i++)
		if (strlen(cap_words[i].word) == n &&
		    strncasecmp(cap_words[i].word, w, n) == 0)
			return cap_words[i].bit;
	return 0;
}

/* Parse a GetCACaps body into SCEP_CAP_* bits (see scep.h). */
unsigned scep_caps_parse(const char *buf, size_t len)
{
	unsigned caps = 0;
	size_t i = 0;

	if (buf == NULL)
		return 0;
	while (i < len) {
		size_t start, end;

		/* words are separated by line breaks; tolerate blanks too */
		while (i < len && (isspace((unsigned char)buf[i]) || buf[i] == '\0'))
			i++;
		start = i;
		while (i < len && !isspace((unsigned char)buf[i]) && buf[i] != '\0')
			i++;
		end = i;
		if (end > start)
			caps |= cap_word(buf + start, end - start);
	}
	if (caps & SCEP_CAP_SCEPSTANDARD)
		caps |= SCEP_CAP_AES | SCEP_CAP_POST | SCEP_CAP_SHA256;
	return caps;
}

/* Names of the bits set, space separated. Returns buf. */
const char *scep_caps_str(unsigned caps, char *buf, size_t len)
{
	size_t i, n = 0;
	unsigned seen = 0;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	for (i = 0; i < sizeof(cap_words) / sizeof(cap_words[0]); i++) {
		int r;

		if (!(caps & cap_words[i].bit) || (seen & cap_words[i].bit))
			continue;
		seen |= cap_words[i].bit;
		r = snprintf(buf + n, len - n, "%s%s", n ? " " : "",
			     cap_words[i].word);
		if (r < 0 || (size_t)r >= len - n)
			break;
		n += (size_t)r;
	}
	return buf;
}

static const char *const cipher_names[] = {
	[SCEP_CIPHER_AUTO] = "auto", [SCEP_CIPHER_DES] = "des",
	[SCEP_CIPHER_DES3] = "3des", [SCEP_CIPHER_BLOWFISH] = "blowfish",
	[SCEP_CIPHER_AES128] = "aes128", [SCEP_CIPHER_AES192] = "aes192",
	[SCEP_CIPHER_AES256] = "aes256",
};

static const char *const digest_names[] = {
	[SCEP_DIGEST_AUTO] = "auto", [SCEP_DIGEST_MD5] = "md5",
	[SCEP_DIGEST_SHA1] = "sha1", [SCEP_DIGEST_SHA224] = "sha224",
	[SCEP_DIGEST_SHA256] = "sha256", [SCEP_DIGEST_SHA384] = "sha384",
	[SCEP_DIGEST_SHA512] = "sha512",
};

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* sscep cipher name to enum scep_cipher; -1 if unknown. */
int scep_cipher_from_name(const char *name)
{
	int i;

	if (name == NULL)
		return -1;
	if (strcasecmp(name, "aes") == 0 || strcasecmp(name, "aes-128") == 0)
		return SCEP_CIPHER_AES128;
	if (strcasecmp(name, "des3") == 0 || strcasecmp(name, "des-ede3") == 0)
		return SCEP_CIPHER_DES3;
	if (strcasecmp(name, "aes-192") == 0)
		return SCEP_CIPHER_AES192;
	if (strcasecmp(name, "aes-256") == 0)
		return SCEP_CIPHER_AES256;
	for (i = 0; i < NELEM(cipher_names); i++)
		if (strcasecmp(name, cipher_names[i]) == 0)
			return i;
	return -1;
}

/* sscep digest name to enum scep_digest; -1 if unknown. */
int scep_digest_from_name(const char *name)
{
	int i;

	if (name == NULL)
		return -1;
	for (i = 0; i < NELEM(digest_names); i++) {
		const char *n = digest_names[i];

		if (strcasecmp(name, n) == 0)
			return i;
		/* also accept "sha-256" */
		if (strncasecmp(n, "sha", 3) == 0 &&
		    strncasecmp(name, "sha-", 4) == 0 &&
		    strcasecmp(name + 4, n + 3) == 0)
			return i;
	}
	return -1;
}

/* sscep name of a cipher enum; "unknown" if out of range. */
const char *scep_cipher_name(int cipher)
{
	if (cipher < 0 || cipher >= NELEM(cipher_names))
		return "unknown";
	return cipher_names[cipher];
}

/* sscep name of a digest enum; "unknown" if out of range. */
const char *scep_digest_name(int digest)
{
	if (digest < 0 || digest >= NELEM(digest_names))
		return "unknown";
	return digest_names[digest];
}

static const EVP_CIPHER *cipher_evp(int c)
{
	switch (c) {
	case SCEP_CIPHER_DES: return EVP_des_cbc();
	case SCEP_CIPHER_DES3: return EVP_des_ede3_cbc();
	case SCEP_CIPHER_BLOWFISH: return EVP_bf_cbc();
	case SCEP_CIPHER_AES128: return EVP_aes_128_cbc();
	case SCEP_CIPHER_AES192: return EVP_aes_192_cbc();
	case SCEP_CIPHER_AES256: return EVP_aes_256_cbc();
	}
	return NULL;
}

static const EVP_MD *digest_evp(int d)
{
	switch (d) {
	case SCEP_DIGEST_MD5: return EVP_md5();
	case SCEP_DIGEST_SHA1: return EVP_sha1();
	case SCEP_DIGEST_SHA224: return EVP_sha224();
	case SCEP_DIGEST_SHA256: return EVP_sha256();
	case SCEP_DIGEST_SHA384: return EVP_sha384();
	case SCEP_DIGEST_SHA512: return EVP_sha512();
	}
	return NULL;
}

/*
 * The content-encryption cipher: a requested one wins; else AES-128 when
 * AES is offered, else 3DES. Single DES only on request (a server that
 * offers neither AES nor DES3 gets 3DES, which every SCEP CA we know of
 * accepts). NULL for an out-of-range request.
 */
const EVP_CIPHER *scep_choose_cipher(unsigned caps, int requested)
{
	int c;

	if (requested != SCEP_CIPHER_AUTO) {
		c = requested;
		if ((c == SCEP_CIPHER_AES128 || c == SCEP_CIPHER_AES192 ||
		     c == SCEP_CIPHER_AES256) && caps && !(caps & SCEP_CAP_AES))
			sa_verbose("cipher %s requested although the CA does not offer AES",
				   scep_cipher_name(c));
	} else if (caps & SCEP_CAP_AES) {
		c = SCEP_CIPHER_AES128;
	} else {
		c = SCEP_CIPHER_DES3;
	}
	sa_debug("request envelope cipher: %s", scep_cipher_name(c));
	return cipher_evp(c);
}

/*
 * The signature digest: a requested one wins; else SHA-256 if offered,
 * else SHA-1. SHA-512 and friends only on request, MD5 only on request.
 * NULL for an out-of-range request.
 */
const EVP_MD *scep_choose_digest(unsigned caps, int requested)
{
	int d;

	if (requested != SCEP_DIGEST_AUTO)
		d = requested;
	else if (caps & SCEP_CAP_SHA256)
		d = SCEP_DIGEST_SHA256;
	else if (caps & SCEP_CAP_SHA1)
		d = SCEP_DIGEST_SHA1;
	else if (caps & SCEP_CAP_SHA512)
		d = SCEP_DIGEST_SHA512;
	else
		d = SCEP_DIGEST_SHA1;
	sa_debug("request signature digest: %s", scep_digest_name(d));
	return digest_evp(d);
}

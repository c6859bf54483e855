/*
 * store.c - a profile's StoreDir: <serial>.crt, ca.crt and the latest.crt
 * link, every change atomic (temp file or link renamed over, fsync'ed,
 * directory fsync'ed).
 */
#include "store.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/pem.h>

#include "sa_err.h"
#include "sa_log.h"
#include "state.h"

#define STORE_LATEST "latest.crt"
#define STORE_CA "ca.crt"

char *store_serial_hex(X509 *cert)
{
	const ASN1_INTEGER *ai;
	BIGNUM *bn = NULL;
	char *hex = NULL, *out = NULL, *p;

	if (cert == NULL || (ai = X509_get0_serialNumber(cert)) == NULL)
		return NULL;
	bn = ASN1_INTEGER_to_BN(ai, NULL);
	if (bn == NULL || (hex = BN_bn2hex(bn)) == NULL)
		goto out;
	out = strdup(hex);
	if (out != NULL)
		for (p = out; *p; p++)
			*p = (char)tolower((unsigned char)*p);
out:
	OPENSSL_free(hex);
	BN_free(bn);
	return out;
}

static char *join(const char *dir, const char *name)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

/* PEM of the certificates into a memory buffer. */
static int pem_of(X509 *one, STACK_OF(X509) *many, char **buf, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long n;
	int i, ok = b != NULL;

	*buf = NULL;
	if (ok && one != NULL)
		ok = PEM_write_bio_X509(b, one);
	for (i = 0; ok && many != NULL && i < sk_X509_num(many); i++)
		ok = PEM_write_bio_X509(b, sk_X509_value(many, i));
	if (!ok) {
		BIO_free(b);
		return sa_fail(SA_ECRYPTO, "cannot encode a certificate as PEM");
	}
	n = BIO_get_mem_data(b, &data);
	*buf = malloc(n > 0 ? (size_t)n : 1);
	if (*buf == NULL) {
		BIO_free(b);
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	}
	memcpy(*buf, data, (size_t)n);
	*len = (size_t)n;
	BIO_free(b);
	return 0;
}

/* Point DIR/latest.crt at target (a name in DIR): a new link renamed over. */
static int switch_latest(const char *dir, const char *target)
{
	char *link = NULL, *tmp = NULL;
	int rc;

	link = join(dir, STORE_LATEST);
	if (link == NULL || asprintf(&tmp, "%s/.%s.%ld.tmp", dir, STORE_LATEST,
				     (long)getpid()) < 0) {
		tmp = NULL;
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	(void)unlink(tmp); /* a leftover of a killed run of this pid */
	if (symlink(target, tmp) < 0) {
		rc = sa_fail_noossl(SA_EIO, "cannot make the link %s: %s", tmp,
				    strerror(errno));
		goto out;
	}
	if (rename(tmp, link) < 0) {
		rc = sa_fail_noossl(SA_EIO, "cannot switch %s to %s: %s", link,
				    target, strerror(errno));
		(void)unlink(tmp);
		goto out;
	}
	rc = state_sync_dir(dir);
out:
	free(link);
	free(tmp);
	return rc;
}

int store_put_cert_file(const char *dir, X509 *cert, char **path)
{
	char *serial = NULL, *name = NULL, *file = NULL, *pem = NULL;
	size_t len = 0;
	int rc;

	if (path != NULL)
		*path = NULL;
	serial = store_serial_hex(cert);
	if (serial == NULL) {
		rc = sa_fail(SA_ECRYPTO, "cannot read the certificate's serial "
			     "number");
		goto out;
	}
	if (asprintf(&name, "%s.crt", serial) < 0) {
		name = NULL;
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	rc = state_mkdirs(dir, 0755);
	if (rc < 0)
		goto out;
	file = join(dir, name);
	if (file == NULL) {
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	rc = pem_of(cert, NULL, &pem, &len);
	if (rc == 0)
		rc = state_write_atomic(file, pem, len, 0644);
	if (rc == 0 && path != NULL) {
		*path = file;
		file = NULL;
	}
out:
	free(pem);
	free(file);
	free(name);
	free(serial);
	return rc;
}

int store_set_latest(const char *dir, const char *serial)
{
	char *name = NULL, *file = NULL;
	struct stat sb;
	int rc;

	if (serial == NULL || serial[0] == '\0' || strchr(serial, '/') != NULL)
		return sa_fail_noossl(SA_EINTERNAL, "no serial for latest.crt");
	if (asprintf(&name, "%s.crt", serial) < 0)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	file = join(dir, name);
	if (file == NULL) {
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	if (stat(file, &sb) < 0) {
		/* never a link to nothing */
		rc = sa_fail_noossl(SA_EIO, "cannot point latest.crt at %s: %s",
				    file, strerror(errno));
		goto out;
	}
	rc = switch_latest(dir, name);
out:
	free(file);
	free(name);
	return rc;
}

int store_put_cert(const char *dir, X509 *cert, char **path)
{
	char *serial = NULL, *file = NULL;
	int rc;

	if (path != NULL)
		*path = NULL;
	rc = store_put_cert_file(dir, cert, &file);
	if (rc < 0)
		goto out;
	serial = store_serial_hex(cert);
	if (serial == NULL) {
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	rc = store_set_latest(dir, serial);
	if (rc == 0 && path != NULL) {
		*path = file;
		file = NULL;
	}
out:
	free(serial);
	free(file);
	return rc;
}

int store_put_ca(const char *dir, STACK_OF(X509) *chain)
{
	char *file = NULL, *pem = NULL;
	size_t len = 0;
	int rc;

	if (chain == NULL || sk_X509_num(chain) < 1)
		return sa_fail_noossl(SA_EINTERNAL, "no CA certificate to store");
	rc = state_mkdirs(dir, 0755);
	if (rc < 0)
		return rc;
	file = join(dir, STORE_CA);
	if (file == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	rc = pem_of(NULL, chain, &pem, &len);
	if (rc == 0)
		rc = state_write_atomic(file, pem, len, 0644);
	free(pem);
	free(file);
	return rc;
}

/* The first certificate of a PEM file. NULL with *missing when none. */
static X509 *read_cert(const char *path, int *missing, int *rc)
{
	X509 *x = NULL;
	FILE *fp;

	*missing = 0;
	*rc = 0;
	fp = fopen(path, "re");
	if (fp == NULL) {
		if (errno == ENOENT)
			*missing = 1;
		else
			*rc = sa_fail_noossl(SA_EIO, "cannot read %s: %s", path,
					     strerror(errno));
		return NULL;
	}
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	if (x == NULL)
		*rc = sa_fail(SA_EIO, "%s holds no PEM certificate", path);
	return x;
}

int store_latest(const char *dir, X509 **out)
{
	char *link;
	struct stat sb;
	int missing, rc;

	*out = NULL;
	link = join(dir, STORE_LATEST);
	if (link == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	if (lstat(link, &sb) < 0) {
		rc = 0;
		if (errno != ENOENT)
			rc = sa_fail_noossl(SA_EIO, "cannot look at %s: %s",
					    link, strerror(errno));
		goto out;
	}
	*out = read_cert(link, &missing, &rc);
	if (missing)
		rc = sa_fail_noossl(SA_EIO, "%s points at a file that is not "
				    "there", link);
out:
	free(link);
	return rc;
}

char *store_latest_target(const char *dir)
{
	char buf[PATH_MAX], *link;
	ssize_t n;

	link = join(dir, STORE_LATEST);
	if (link == NULL)
		return NULL;
	n = readlink(link, buf, sizeof(buf) - 1);
	free(link);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	return strdup(buf);
}

/* "<lowercase hex>.crt" (what store_put_cert_file() writes). */
static int is_serial_file(const char *name)
{
	size_t n = strlen(name), i;

	if (n < 5 || strcmp(name + n - 4, ".crt") != 0 ||
	    strcmp(name, STORE_CA) == 0)
		return 0;
	for (i = 0; i < n - 4; i++)
		if (!isxdigit((unsigned char)name[i]) ||
		    isupper((unsigned char)name[i]))
			return 0;
	return 1;
}

struct old {
	char *name;
	time_t nb;
};

static int newest_first(const void *a, const void *b)
{
	const struct old *x = a, *y = b;

	if (x->nb != y->nb)
		return x->nb > y->nb ? -1 : 1;
	return strcmp(y->name, x->name);
}

int store_prune(const char *dir, int keep)
{
	struct old *list = NULL, *l;
	char *latest = NULL, *file;
	struct dirent *de;
	size_t n = 0, i;
	DIR *d = NULL;
	int missing, rc = 0, removed = 0;

	if (keep < 0)
		keep = 0;
	d = opendir(dir);
	if (d == NULL) {
		if (errno == ENOENT)
			return 0;
		return sa_fail_noossl(SA_EIO, "cannot read the directory %s: %s",
				      dir, strerror(errno));
	}
	latest = store_latest_target(dir);
	while ((de = readdir(d)) != NULL) {
		X509 *x;
		struct tm tm;

		if (!is_serial_file(de->d_name) ||
		    (latest != NULL && strcmp(latest, de->d_name) == 0))
			continue;
		file = join(dir, de->d_name);
		if (file == NULL) {
			rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
			goto out;
		}
		x = read_cert(file, &missing, &rc);
		free(file);
		if (x == NULL) { /* not one of ours: left alone */
			sa_err_clear();
			rc = 0;
			continue;
		}
		memset(&tm, 0, sizeof(tm));
		l = realloc(list, (n + 1) * sizeof(*list));
		if (l == NULL) {
			X509_free(x);
			rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
			goto out;
		}
		list = l;
		list[n].nb = 0;
		if (ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm) == 1)
			list[n].nb = timegm(&tm);
		X509_free(x);
		if ((list[n].name = strdup(de->d_name)) == NULL) {
			rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
			goto out;
		}
		n++;
	}
	if (n > 0)
		qsort(list, n, sizeof(*list), newest_first);
	for (i = (size_t)keep; i < n; i++) {
		file = join(dir, list[i].name);
		if (file == NULL) {
			rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
			goto out;
		}
		if (unlink(file) < 0 && errno != ENOENT) {
			rc = sa_fail_noossl(SA_EIO, "cannot remove %s: %s", file,
					    strerror(errno));
			free(file);
			goto out;
		}
		sa_verbose("removed %s (KeepOld)", file);
		free(file);
		removed++;
	}
	if (removed > 0)
		rc = state_sync_dir(dir);
out:
	for (i = 0; i < n; i++)
		free(list[i].name);
	free(list);
	free(latest);
	closedir(d);
	return rc;
}

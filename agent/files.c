/*
 * files.c - reading and writing certificates, CRLs, requests and keys.
 */
#include "files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "sa_err.h"
#include "sa_log.h"
#include "sa_step.h"

int files_exist(const char *path)
{
	struct stat st;

	return path != NULL && stat(path, &st) == 0;
}

/* What the user can do about a failed write or creation. */
static const char *io_hint(int err)
{
	switch (err) {
	case ENOSPC:
	case EDQUOT:
		return " (free space on its file system, or choose another path)";
	case EROFS:
		return " (its file system is mounted read-only; choose another path)";
	case ENOENT:
	case ENOTDIR:
		return " (does its directory exist?)";
	case EACCES:
	case EPERM:
		return " (no permission: check the directory's owner and mode)";
	default:
		return "";
	}
}

/*
 * Make what was renamed or linked into path's directory durable: without
 * it, a crash can bring back the old directory entry after later steps
 * (a token's old key removed) relied on the new one. A file system that
 * cannot sync a directory (EINVAL) is not an error.
 */
static int sync_dir(const char *path)
{
	char *copy = strdup(path);
	int fd, rc = 0;

	if (copy == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		/* a directory we may write but not read: nothing to sync with */
		sa_verbose("cannot open the directory of %s to sync it: %s",
			   path, strerror(errno));
	} else {
		if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
			rc = sa_fail_noossl(SA_EIO, "%s was written but its "
					    "directory could not be synced to "
					    "disk: %s", path, strerror(errno));
		close(fd);
	}
	free(copy);
	return rc;
}

/* NAME.tmpXXXXXX: base, ".tmp", then six characters of mkstemp()'s set. */
static int is_leftover(const char *entry, const char *base, size_t blen)
{
	size_t i;

	if (strncmp(entry, base, blen) != 0 || strncmp(entry + blen, ".tmp", 4) != 0)
		return 0;
	entry += blen + 4;
	for (i = 0; i < 6; i++)
		if (!((entry[i] >= 'a' && entry[i] <= 'z') ||
		      (entry[i] >= 'A' && entry[i] <= 'Z') ||
		      (entry[i] >= '0' && entry[i] <= '9')))
			return 0;
	return entry[6] == '\0';
}

/*
 * A run killed between stage() and commit() leaves path's temporary file
 * (stage: NAME.tmpXXXXXX) behind, possibly holding a private key. Before
 * path is written again, remove such leftovers of earlier runs: only that
 * exact pattern, only regular files owned by us (never through a symbolic
 * link). Called before this run stages its own file. Failures only show
 * with -v: a leftover is untidy, not an error.
 */
static void remove_leftovers(const char *path)
{
	char *dcopy = strdup(path), *bcopy = strdup(path);
	const char *base;
	struct dirent *e;
	struct stat st;
	size_t blen;
	DIR *d = NULL;
	int dfd;

	if (dcopy == NULL || bcopy == NULL)
		goto out;
	base = basename(bcopy);
	blen = strlen(base);
	d = opendir(dirname(dcopy));
	if (d == NULL)
		goto out;
	dfd = dirfd(d);
	while ((e = readdir(d)) != NULL) {
		if (!is_leftover(e->d_name, base, blen))
			continue;
		if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode) || st.st_uid != geteuid())
			continue;
		if (unlinkat(dfd, e->d_name, 0) == 0)
			sa_info("removed %s.tmp%s, a temporary file left by an earlier "
				"run that was stopped before it renamed it to %s",
				path, e->d_name + blen + 4, path);
		else
			sa_verbose("cannot remove the leftover temporary file %s.tmp%s: "
				   "%s", path, e->d_name + blen + 4, strerror(errno));
	}
out:
	if (d != NULL)
		closedir(d);
	free(dcopy);
	free(bcopy);
}

/*
 * Write data into a new temporary file next to path (mode, fsync'ed);
 * *tmp (caller frees) names it. Nothing is left behind on error.
 */
static int stage(const char *path, const void *data, size_t len, mode_t mode,
		 char **tmp)
{
	const char *p = data;
	char *name = NULL;
	int fd = -1, rc, err;

	*tmp = NULL;
	remove_leftovers(path);
	if (asprintf(&name, "%s.tmpXXXXXX", path) < 0)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	fd = mkstemp(name);
	if (fd < 0) {
		err = errno;
		rc = sa_fail_noossl(SA_EIO, "cannot write %s: cannot create a "
				    "file in its directory: %s%s", path,
				    strerror(err), io_hint(err));
		free(name);
		return rc;
	}
	if (fchmod(fd, mode) != 0) {
		err = errno;
		rc = sa_fail_noossl(SA_EIO, "cannot set the mode of %s: %s",
				    name, strerror(err));
		goto out;
	}
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? errno : EIO;
			rc = sa_fail_noossl(SA_EIO, "cannot write %s: %s%s", path,
					    strerror(err), io_hint(err));
			goto out;
		}
		p += n;
		len -= (size_t)n;
	}
	/* a delayed write error (ENOSPC, EIO) shows up here */
	if (fsync(fd) != 0) {
		err = errno;
		rc = sa_fail_noossl(SA_EIO, "cannot write %s: %s%s", path,
				    strerror(err), io_hint(err));
		goto out;
	}
	err = close(fd) != 0 ? errno : 0;
	fd = -1;
	if (err != 0) {
		rc = sa_fail_noossl(SA_EIO, "cannot write %s: %s%s", path,
				    strerror(err), io_hint(err));
		goto out;
	}
	*tmp = name;
	name = NULL;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (name != NULL) {
		unlink(name);
		free(name);
	}
	return rc;
}

/* Move a staged file into place (without excl, over path). */
static int commit(const char *tmp, const char *path, int excl)
{
	int err;

	if (excl) {
		/* link() fails if path appeared meanwhile: no overwrite race */
		if (link(tmp, path) != 0) {
			err = errno;
			unlink(tmp);
			return sa_fail_noossl(SA_EIO, "cannot create %s: %s%s",
					      path, strerror(err), io_hint(err));
		}
		unlink(tmp);
		return 0;
	}
	if (rename(tmp, path) != 0) {
		err = errno;
		unlink(tmp);
		return sa_fail_noossl(SA_EIO, "cannot rename %s to %s: %s%s", tmp,
				      path, strerror(err), io_hint(err));
	}
	return 0;
}

int files_write_atomic(const char *path, const void *data, size_t len,
		       mode_t mode, int excl)
{
	char *tmp = NULL;
	int rc;

	if (excl && files_exist(path))
		return sa_fail_noossl(SA_EIO, "%s already exists; not "
				      "overwriting it (remove it or choose "
				      "another name)", path);
	rc = stage(path, data, len, mode, &tmp);
	if (rc < 0)
		return rc;
	sa_step_file("file-staged", path);
	rc = commit(tmp, path, excl);
	free(tmp);
	if (rc < 0)
		return rc;
	sa_step_file("file-renamed", path);
	return sync_dir(path);
}

/* Write whatever was put into a memory BIO. */
static int write_bio(const char *path, BIO *b, mode_t mode, int excl)
{
	char *data;
	long len = BIO_get_mem_data(b, &data);

	if (len < 0)
		return sa_fail(SA_EINTERNAL, "cannot encode %s", path);
	return files_write_atomic(path, data, (size_t)len, mode, excl);
}

int files_write_certs(const char *path, STACK_OF(X509) *certs)
{
	BIO *b = BIO_new(BIO_s_mem());
	int i, rc;

	if (b == NULL)
		return sa_fail(SA_ENOMEM, "out of memory");
	for (i = 0; i < sk_X509_num(certs); i++)
		if (!PEM_write_bio_X509(b, sk_X509_value(certs, i))) {
			rc = sa_fail(SA_ECRYPTO, "cannot encode a certificate "
				     "for %s", path);
			goto out;
		}
	rc = write_bio(path, b, 0644, 0);
out:
	BIO_free(b);
	return rc;
}

int files_write_cert(const char *path, X509 *cert)
{
	BIO *b = BIO_new(BIO_s_mem());
	int rc;

	if (b == NULL || !PEM_write_bio_X509(b, cert))
		rc = sa_fail(SA_ECRYPTO, "cannot encode the certificate for %s",
			     path);
	else
		rc = write_bio(path, b, 0644, 0);
	BIO_free(b);
	return rc;
}

int files_write_crl(const char *path, X509_CRL *crl)
{
	BIO *b = BIO_new(BIO_s_mem());
	int rc;

	if (b == NULL || !PEM_write_bio_X509_CRL(b, crl))
		rc = sa_fail(SA_ECRYPTO, "cannot encode the CRL for %s", path);
	else
		rc = write_bio(path, b, 0644, 0);
	BIO_free(b);
	return rc;
}

int files_write_csr(const char *path, X509_REQ *req)
{
	/* a request carrying a challenge password is a secret: owner only,
	 * and the encoding buffer is wiped when freed (secmem BIO) */
	int secret = X509_REQ_get_attr_by_NID(req, NID_pkcs9_challengePassword,
					      -1) >= 0;
	mode_t mode = secret ? 0600 : 0644;
	BIO *b = BIO_new(secret ? BIO_s_secmem() : BIO_s_mem());
	int rc;

	if (b == NULL || !PEM_write_bio_X509_REQ(b, req))
		rc = sa_fail(SA_ECRYPTO, "cannot encode the request for %s",
			     path);
	else
		rc = write_bio(path, b, mode, 0);
	BIO_free(b);
	return rc;
}

int files_write_key(const char *path, EVP_PKEY *key)
{
	BIO *b = BIO_new(BIO_s_secmem());
	int rc;

	if (b == NULL)
		b = BIO_new(BIO_s_mem());
	if (b == NULL ||
	    !PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL))
		rc = sa_fail(SA_ECRYPTO, "cannot encode the private key for %s",
			     path);
	else
		rc = write_bio(path, b, 0600, 1);
	BIO_free(b);
	return rc;
}

/* Read a whole file into a memory BIO. */
static int read_bio(const char *path, BIO **out)
{
	*out = BIO_new_file(path, "rb");
	if (*out == NULL)
		return sa_fail_noossl(SA_EIO, "cannot read %s: %s", path,
				      strerror(errno ? errno : ENOENT));
	return 0;
}

int files_read_certs(const char *path, STACK_OF(X509) **out)
{
	STACK_OF(X509) *sk = NULL;
	BIO *b = NULL;
	X509 *x = NULL;
	int rc;

	*out = NULL;
	if ((rc = read_bio(path, &b)) < 0)
		return rc;
	sk = sk_X509_new_null();
	if (sk == NULL) {
		rc = sa_fail(SA_ENOMEM, "out of memory");
		goto out;
	}
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			rc = sa_fail(SA_ENOMEM, "out of memory");
			goto out;
		}
	}
	if (sk_X509_num(sk) == 0) {
		ERR_clear_error();
		BIO_reset(b);
		x = d2i_X509_bio(b, NULL);
		if (x == NULL || !sk_X509_push(sk, x)) {
			X509_free(x);
			rc = sa_fail(SA_EIO, "%s holds no certificate (PEM or "
				     "DER)", path);
			goto out;
		}
	}
	ERR_clear_error();
	*out = sk;
	sk = NULL;
	rc = 0;
out:
	sk_X509_pop_free(sk, X509_free);
	BIO_free(b);
	return rc;
}

int files_read_cert(const char *path, X509 **out)
{
	STACK_OF(X509) *sk = NULL;
	int rc;

	*out = NULL;
	rc = files_read_certs(path, &sk);
	if (rc < 0)
		return rc;
	*out = sk_X509_shift(sk);
	sk_X509_pop_free(sk, X509_free);
	return 0;
}

int files_read_csr(const char *path, X509_REQ **out)
{
	X509_REQ *req;
	BIO *b = NULL;
	int rc;

	*out = NULL;
	if ((rc = read_bio(path, &b)) < 0)
		return rc;
	req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
	if (req == NULL) {
		ERR_clear_error();
		BIO_reset(b);
		req = d2i_X509_REQ_bio(b, NULL);
	}
	BIO_free(b);
	if (req == NULL)
		return sa_fail(SA_EIO, "%s holds no certificate request (PEM "
			       "or DER PKCS#10)", path);
	*out = req;
	return 0;
}

static double mtime(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return 0;
	return (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9;
}

int files_load_ca(const char *path, STACK_OF(X509) **out)
{
	STACK_OF(X509) *all = NULL, *one = NULL;
	char *name = NULL;
	int i, rc;

	*out = NULL;
	if (asprintf(&name, "%s-0", path) < 0)
		return sa_fail(SA_ENOMEM, "out of memory");
	/* both forms present (getca run twice, once for a chain): the newer */
	if (files_exist(path) && (!files_exist(name) || mtime(path) >= mtime(name))) {
		free(name);
		return files_read_certs(path, out);
	}
	free(name);
	name = NULL;
	all = sk_X509_new_null();
	if (all == NULL)
		return sa_fail(SA_ENOMEM, "out of memory");
	for (i = 0; i < 100; i++) {
		free(name);
		if (asprintf(&name, "%s-%d", path, i) < 0) {
			name = NULL;
			rc = sa_fail(SA_ENOMEM, "out of memory");
			goto out;
		}
		if (!files_exist(name))
			break;
		rc = files_read_certs(name, &one);
		if (rc < 0)
			goto out;
		while (sk_X509_num(one) > 0)
			if (!sk_X509_push(all, sk_X509_shift(one))) {
				rc = sa_fail(SA_ENOMEM, "out of memory");
				goto out;
			}
		sk_X509_free(one);
		one = NULL;
	}
	if (sk_X509_num(all) == 0) {
		rc = sa_fail_noossl(SA_EIO, "no CA certificate: neither %s nor "
				    "%s-0 exists; run getca first", path, path);
		goto out;
	}
	sa_verbose("loaded %d CA certificate(s) from %s-0..%s-%d",
		   sk_X509_num(all), path, path, i - 1);
	*out = all;
	all = NULL;
	rc = 0;
out:
	free(name);
	sk_X509_pop_free(one, X509_free);
	sk_X509_pop_free(all, X509_free);
	return rc;
}

/* Remove one stale CA file if it exists; *removed set if it did. */
static int remove_stale(const char *name, int *removed)
{
	int err;

	if (unlink(name) == 0) {
		sa_info("removed %s: the CA no longer sends that certificate", name);
		*removed = 1;
		return 0;
	}
	if (errno == ENOENT)
		return 0;
	err = errno;
	return sa_fail_noossl(SA_EIO, "cannot remove the stale CA certificate file "
			      "%s: %s; remove it by hand, or later runs will still "
			      "load it", name, strerror(err));
}

int files_remove_stale_ca(const char *path, int n)
{
	char *name = NULL;
	int i, rc = 0, removed = 0;

	if (n > 1)
		rc = remove_stale(path, &removed);
	for (i = n > 1 ? n : 0; rc == 0 && i < 100; i++) {
		if (asprintf(&name, "%s-%d", path, i) < 0)
			return sa_fail_noossl(SA_ENOMEM, "out of memory");
		rc = remove_stale(name, &removed);
		free(name);
		name = NULL;
	}
	if (rc == 0 && removed)
		rc = sync_dir(path);
	return rc;
}

char *files_ca_name(const char *path, int i, int n)
{
	char *name = NULL;

	if (n == 1)
		return strdup(path);
	if (asprintf(&name, "%s-%d", path, i) < 0)
		return NULL;
	return name;
}

int files_write_ca(const char *path, STACK_OF(X509) *certs)
{
	int i, n = sk_X509_num(certs), rc = 0;
	char **names = NULL, **tmps = NULL;
	BIO *b = NULL;

	if (n <= 0)
		return sa_fail_noossl(SA_EINTERNAL, "no CA certificate to write "
				      "to %s", path);
	names = calloc((size_t)n, sizeof(*names));
	tmps = calloc((size_t)n, sizeof(*tmps));
	if (names == NULL || tmps == NULL) {
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	/* every file of the set staged first: none replaced if one fails */
	for (i = 0; i < n; i++) {
		char *data;
		long len;

		names[i] = files_ca_name(path, i, n);
		b = BIO_new(BIO_s_mem());
		if (names[i] == NULL || b == NULL) {
			rc = sa_fail(SA_ENOMEM, "out of memory");
			goto out;
		}
		if (!PEM_write_bio_X509(b, sk_X509_value(certs, i)) ||
		    (len = BIO_get_mem_data(b, &data)) < 0) {
			rc = sa_fail(SA_ECRYPTO, "cannot encode the CA certificate "
				     "for %s", names[i]);
			goto out;
		}
		rc = stage(names[i], data, (size_t)len, 0644, &tmps[i]);
		if (rc < 0)
			goto out;
		BIO_free(b);
		b = NULL;
	}
	sa_step_file("file-staged", path);
	for (i = 0; i < n; i++) {
		rc = commit(tmps[i], names[i], 0);
		free(tmps[i]);
		tmps[i] = NULL;
		if (rc < 0) {
			if (i > 0) {
				char *msg = strdup(sa_errmsg());

				rc = sa_fail_noossl(rc, "%s; %s-0 to %s-%d were "
						    "replaced already: run getca "
						    "again", msg ? msg : "rename "
						    "failed", path, path, i - 1);
				free(msg);
			}
			goto out;
		}
	}
	sa_step_file("file-renamed", path);
	rc = sync_dir(path);
	if (rc == 0)
		rc = files_remove_stale_ca(path, n);
out:
	BIO_free(b);
	for (i = 0; i < n && names != NULL; i++) {
		if (tmps != NULL && tmps[i] != NULL) {
			unlink(tmps[i]);
			free(tmps[i]);
		}
		free(names[i]);
	}
	free(names);
	free(tmps);
	return rc;
}

/*
 * st_tmpl.c - provision's per-token values: the --csv file (a header row,
 * rows keyed by token_serial; pin and challenge columns are secrets) and
 * the templates of --subject, --san and --label.
 */
#include "station.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "sa_err.h"
#include "sa_log.h"

#define CSV_MAX (16L * 1024 * 1024)

static int is_secret_col(const char *c)
{
	return strcmp(c, "pin") == 0 || strcmp(c, "challenge") == 0;
}

/* one field from *p (RFC 4180 quotes), *p moved past it and its comma */
static char *csv_field(const char **p, int *eol)
{
	const char *s = *p;
	size_t cap = strlen(s) + 1, n = 0;
	char *f = malloc(cap);

	if (f == NULL)
		return NULL;
	*eol = 0;
	if (*s == '"') {
		s++;
		while (*s != '\0') {
			if (*s == '"' && s[1] == '"') {
				f[n++] = '"';
				s += 2;
			} else if (*s == '"') {
				s++;
				break;
			} else {
				f[n++] = *s++;
			}
		}
	}
	while (*s != '\0' && *s != ',' && *s != '\n' && *s != '\r')
		f[n++] = *s++;
	f[n] = '\0';
	if (*s == ',') {
		s++;
	} else {
		*eol = 1;
		if (*s == '\r')
			s++;
		if (*s == '\n')
			s++;
	}
	*p = s;
	return f;
}

/* one line's fields; *n their count */
static char **csv_line(const char **p, size_t *n)
{
	char **l = NULL, **nl;
	int eol = 0;

	*n = 0;
	while (!eol) {
		char *f = csv_field(p, &eol);

		nl = f ? realloc(l, (*n + 1) * sizeof(*l)) : NULL;
		if (nl == NULL) {
			free(f);
			while (*n > 0)
				free(l[--*n]);
			free(l);
			return NULL;
		}
		l = nl;
		l[(*n)++] = f;
	}
	return l;
}

static void line_free(char **l, size_t n, int wipe)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < n; i++) {
		if (wipe && l[i] != NULL)
			OPENSSL_cleanse(l[i], strlen(l[i]));
		free(l[i]);
	}
	free(l);
}

/* See station.h. */
int station_csv_load(const char *path, struct station_csv *csv)
{
	struct stat st;
	FILE *fp = NULL;
	char *buf = NULL;
	const char *p;
	size_t len = 0, i, n;
	int rc;

	memset(csv, 0, sizeof(*csv));
	fp = fopen(path, "re");
	if (fp == NULL)
		return sa_fail_noossl(SA_EIO, "cannot read --csv %s: %s", path,
				      strerror(errno));
	if (fstat(fileno(fp), &st) != 0 || st.st_size > CSV_MAX) {
		rc = sa_fail_noossl(SA_EIO, "--csv %s: not a readable file of "
				    "at most %ld bytes", path, CSV_MAX);
		goto out;
	}
	buf = calloc((size_t)st.st_size + 1, 1);
	if (buf == NULL) {
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	len = fread(buf, 1, (size_t)st.st_size, fp);
	buf[len] = '\0';
	p = buf;
	csv->cols = csv_line(&p, &csv->n_cols);
	if (csv->cols == NULL) {
		rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < csv->n_cols; i++)
		if (is_secret_col(csv->cols[i]))
			csv->secret_cols = 1;
	if (station_csv_get(csv, csv->cols, "token_serial") == NULL) {
		rc = sa_fail_noossl(SA_EUSAGE, "--csv %s: its header row has no "
				    "column token_serial (it keys the rows)",
				    path);
		goto out;
	}
	if (csv->secret_cols && (st.st_mode & 077) != 0) {
		rc = sa_fail_noossl(SA_EUSAGE, "--csv %s holds PINs or challenge "
				    "passwords but others may read it (mode "
				    "%03o): chmod 600 %s", path,
				    (unsigned)(st.st_mode & 0777), path);
		goto out;
	}
	while (*p != '\0') {
		char ***nr;
		char **row = csv_line(&p, &n);

		if (row == NULL) {
			rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
			goto out;
		}
		if (n == 1 && row[0][0] == '\0') {
			line_free(row, n, 0);
			continue; /* an empty line */
		}
		if (n != csv->n_cols) {
			line_free(row, n, 1);
			rc = sa_fail_noossl(SA_EUSAGE, "--csv %s: row %zu has %zu "
					    "fields, the header %zu", path,
					    csv->n_rows + 2, n, csv->n_cols);
			goto out;
		}
		nr = realloc(csv->rows, (csv->n_rows + 1) * sizeof(*nr));
		if (nr == NULL) {
			line_free(row, n, 1);
			rc = sa_fail_noossl(SA_ENOMEM, "out of memory");
			goto out;
		}
		csv->rows = nr;
		csv->rows[csv->n_rows++] = row;
	}
	rc = 0;
out:
	if (buf != NULL) {
		OPENSSL_cleanse(buf, len);
		free(buf);
	}
	if (fp != NULL)
		fclose(fp);
	if (rc < 0)
		station_csv_free(csv);
	return rc;
}

static long col_index(const struct station_csv *csv, const char *column)
{
	size_t i;

	for (i = 0; i < csv->n_cols; i++)
		if (strcmp(csv->cols[i], column) == 0)
			return (long)i;
	return -1;
}

/* See station.h. */
const char *station_csv_get(const struct station_csv *csv, char **row,
			    const char *column)
{
	long i;

	if (csv == NULL || row == NULL)
		return NULL;
	i = col_index(csv, column);
	return i < 0 ? NULL : row[i];
}

/* See station.h. */
char **station_csv_row(const struct station_csv *csv, const char *serial)
{
	long k;
	size_t i;

	if (csv == NULL || csv->cols == NULL || serial == NULL)
		return NULL;
	k = col_index(csv, "token_serial");
	if (k < 0)
		return NULL;
	for (i = 0; i < csv->n_rows; i++)
		if (strcmp(csv->rows[i][k], serial) == 0)
			return csv->rows[i];
	return NULL;
}

/* See station.h. */
void station_csv_free(struct station_csv *csv)
{
	size_t i;

	if (csv == NULL)
		return;
	for (i = 0; i < csv->n_rows; i++)
		line_free(csv->rows[i], csv->n_cols, 1);
	free(csv->rows);
	line_free(csv->cols, csv->n_cols, 0);
	memset(csv, 0, sizeof(*csv));
}

struct sbuf {
	char *p;
	size_t n, cap;
};

static int sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		size_t cap = (b->n + n + 1) * 2;
		char *p = realloc(b->p, cap);

		if (p == NULL)
			return sa_fail_noossl(SA_ENOMEM, "out of memory");
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
	return 0;
}

/*
 * The value of variable name (len bytes) for v; with v NULL only checked
 * (csv may be NULL then: csv: columns are checked when it is not).
 */
static int var_value(const char *name, size_t len, const struct station_vars *v,
		     const struct station_csv *csv, const char *tmpl,
		     const char **val, char *num, size_t numlen)
{
	*val = NULL;
	if (len == 12 && strncmp(name, "token_serial", len) == 0) {
		*val = v ? v->serial : "";
	} else if (len == 11 && strncmp(name, "token_label", len) == 0) {
		*val = v ? v->label : "";
	} else if (len == 1 && name[0] == 'n') {
		snprintf(num, numlen, "%ld", v ? v->n : 0L);
		*val = num;
	} else if (len > 4 && strncmp(name, "csv:", 4) == 0) {
		char col[128];

		if (len - 4 >= sizeof(col))
			goto unknown;
		memcpy(col, name + 4, len - 4);
		col[len - 4] = '\0';
		if (is_secret_col(col))
			return sa_fail_noossl(SA_EUSAGE, "template \"%s\": the "
					      "secret column %s cannot be put "
					      "in a certificate", tmpl, col);
		if (v == NULL) {
			if (csv == NULL)
				return sa_fail_noossl(SA_EUSAGE, "template \"%s\" "
						      "names {csv:%s} but no "
						      "--csv is given", tmpl,
						      col);
			if (col_index(csv, col) < 0)
				return sa_fail_noossl(SA_EUSAGE, "template \"%s\": "
						      "--csv has no column %s",
						      tmpl, col);
			*val = "";
		} else {
			if (v->row == NULL)
				return sa_fail_noossl(SA_EUSAGE, "token %s has no "
						      "row in --csv (template "
						      "\"%s\")", v->serial,
						      tmpl);
			*val = station_csv_get(v->csv, v->row, col);
		}
	} else {
		goto unknown;
	}
	if (*val == NULL)
		*val = "";
	return 0;
unknown:
	return sa_fail_noossl(SA_EUSAGE, "template \"%s\": unknown variable "
			      "{%.*s} (known: {token_serial} {token_label} {n} "
			      "{csv:COLUMN})", tmpl, (int)len, name);
}

static int render(const char *tmpl, const struct station_vars *v,
		  const struct station_csv *csv, char **out)
{
	struct sbuf b = { 0 };
	const char *p = tmpl, *e, *val;
	char num[32];
	int rc = 0;

	*out = NULL;
	rc = sb_add(&b, "", 0);
	while (rc == 0 && *p != '\0') {
		if (p[0] == '{' && p[1] == '{') {
			rc = sb_add(&b, "{", 1);
			p += 2;
			continue;
		}
		if (*p != '{') {
			e = strchr(p, '{');
			if (e == NULL)
				e = p + strlen(p);
			rc = sb_add(&b, p, (size_t)(e - p));
			p = e;
			continue;
		}
		e = strchr(p, '}');
		if (e == NULL) {
			rc = sa_fail_noossl(SA_EUSAGE, "template \"%s\": a { "
					    "without its } (write {{ for a {)",
					    tmpl);
			break;
		}
		rc = var_value(p + 1, (size_t)(e - p - 1), v, csv, tmpl, &val,
			       num, sizeof(num));
		if (rc == 0)
			rc = sb_add(&b, val, strlen(val));
		p = e + 1;
	}
	if (rc < 0) {
		free(b.p);
		return rc;
	}
	*out = b.p;
	return 0;
}

/* See station.h. */
int station_render(const char *tmpl, const struct station_vars *v, char **out)
{
	return render(tmpl, v, v->csv, out);
}

/* See station.h. */
int station_tmpl_check(const char *tmpl, const struct station_csv *csv,
		       const char *what)
{
	char *s = NULL;
	int rc = render(tmpl, NULL, csv, &s);

	free(s);
	if (rc < 0) {
		char *m = strdup(sa_errmsg());

		rc = sa_fail_noossl(rc, "%s: %s", what, m ? m : "?");
		free(m);
	}
	return rc;
}

/*
 * conf_parse.c - the sscep/OpenSSL-style configuration file syntax:
 * [section] headers, Key = Value lines, quotes, backslash escapes and
 * '#' comments. Knows nothing of the keys themselves (see conf.c).
 */
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "sa_err.h"

#define CONF_MAX_SIZE (1024 * 1024)

/* Values may hold a PIN: wipe what we free. */
static void wipe(char *s)
{
	if (s != NULL)
		OPENSSL_cleanse(s, strlen(s));
}

static int add_entry(struct conf_file *cf, const char *section, int sline,
		     const char *key, size_t klen, const char *value, int line)
{
	struct conf_entry *e;

	e = realloc(cf->e, (cf->n + 1) * sizeof(*e));
	if (e == NULL)
		return sa_fail(SA_ENOMEM, "out of memory reading %s", cf->path);
	cf->e = e;
	e = &cf->e[cf->n];
	memset(e, 0, sizeof(*e));
	e->section = strdup(section);
	e->key = strndup(key, klen);
	e->value = strdup(value);
	e->line = line;
	e->section_line = sline;
	if (e->section == NULL || e->key == NULL || e->value == NULL) {
		free(e->section);
		free(e->key);
		free(e->value);
		return sa_fail(SA_ENOMEM, "out of memory reading %s", cf->path);
	}
	cf->n++;
	return 0;
}

static int is_key_char(int c)
{
	return isalnum(c) || c == '_' || c == '.' || c == '-' || c == '$';
}

/*
 * Unquote and unescape the value part of a line in place (into out, which
 * has room for strlen(in) + 1). Unquoted whitespace runs are kept as they
 * are inside the value, trailing unquoted whitespace is dropped.
 */
static int parse_value(const char *in, char *out, const char *path, int line)
{
	char quote = 0;
	size_t n = 0, keep = 0; /* keep: length up to the last significant char */

	while (*in == ' ' || *in == '\t')
		in++;
	for (; *in != '\0'; in++) {
		char c = *in;

		if (quote) {
			if (c == quote) {
				quote = 0;
				keep = n;
				continue;
			}
			if (c == '\\' && in[1] != '\0') {
				c = *++in;
			}
			out[n++] = c;
			keep = n;
			continue;
		}
		if (c == '#')
			break;
		if (c == '"' || c == '\'') {
			quote = c;
			continue;
		}
		if (c == '\\' && in[1] != '\0') {
			out[n++] = *++in;
			keep = n;
			continue;
		}
		out[n++] = c;
		if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
			keep = n;
	}
	if (quote)
		return sa_fail(SA_EUSAGE, "%s:%d: unterminated quoted value; "
			       "close the %c quote or escape it with a backslash",
			       path, line, quote);
	out[keep] = '\0';
	return 0;
}

int conf_file_parse_buf(const char *name, const char *buf, size_t len,
			struct conf_file **out)
{
	struct conf_file *cf = NULL;
	char *copy = NULL, *section = NULL, *val = NULL;
	size_t vlen = 0;
	char *p, *next;
	int line = 0, sline = 0, rc;

	*out = NULL;
	cf = calloc(1, sizeof(*cf));
	copy = malloc(len + 1);
	section = strdup("");
	if (cf == NULL || copy == NULL || section == NULL ||
	    (cf->path = strdup(name)) == NULL) {
		rc = sa_fail(SA_ENOMEM, "out of memory reading %s", name);
		goto out;
	}
	memcpy(copy, buf, len);
	copy[len] = '\0';
	if (memchr(buf, '\0', len) != NULL) {
		rc = sa_fail(SA_EUSAGE, "%s: contains a NUL byte; is it really "
			     "a configuration file?", name);
		goto out;
	}
	for (p = copy; p != NULL && *p != '\0'; p = next) {
		char *s, *key;
		size_t klen;

		line++;
		next = strchr(p, '\n');
		if (next != NULL)
			*next++ = '\0';
		s = p;
		while (isspace((unsigned char)*s))
			s++;
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *e = strchr(s, ']');
			char *a = s + 1;

			if (e == NULL) {
				rc = sa_fail(SA_EUSAGE, "%s:%d: section header "
					     "without ']'", name, line);
				goto out;
			}
			*e = '\0';
			while (isspace((unsigned char)*a))
				a++;
			while (e > a && isspace((unsigned char)e[-1]))
				*--e = '\0';
			if (*a == '\0') {
				rc = sa_fail(SA_EUSAGE, "%s:%d: empty section "
					     "name", name, line);
				goto out;
			}
			free(section);
			section = strdup(a);
			if (section == NULL) {
				rc = sa_fail(SA_ENOMEM, "out of memory");
				goto out;
			}
			sline = line;
			continue;
		}
		key = s;
		while (is_key_char((unsigned char)*s))
			s++;
		klen = (size_t)(s - key);
		while (*s == ' ' || *s == '\t')
			s++;
		if (klen == 0 || *s != '=') {
			rc = sa_fail(SA_EUSAGE, "%s:%d: expected 'Key = Value' "
				     "or '[section]'", name, line);
			goto out;
		}
		s++;
		if (val != NULL)
			OPENSSL_cleanse(val, vlen);
		free(val);
		vlen = strlen(s) + 1;
		val = malloc(vlen);
		if (val == NULL) {
			rc = sa_fail(SA_ENOMEM, "out of memory");
			goto out;
		}
		rc = parse_value(s, val, name, line);
		if (rc < 0)
			goto out;
		rc = add_entry(cf, section, sline, key, klen, val, line);
		if (rc < 0)
			goto out;
	}
	*out = cf;
	cf = NULL;
	rc = 0;
out:
	if (val != NULL)
		OPENSSL_cleanse(val, vlen);
	free(val);
	free(section);
	if (copy != NULL)
		OPENSSL_cleanse(copy, len);
	free(copy);
	conf_file_free(cf);
	return rc;
}

int conf_file_parse(const char *path, struct conf_file **out)
{
	FILE *fp = NULL;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int rc;

	*out = NULL;
	fp = fopen(path, "r");
	if (fp == NULL) {
		rc = sa_fail(SA_EIO, "cannot open configuration file %s: %s",
			     path, strerror(errno));
		goto out;
	}
	for (;;) {
		size_t got;

		if (len + 4096 > cap) {
			char *nb;

			cap = cap ? cap * 2 : 8192;
			if (cap > CONF_MAX_SIZE + 4096) {
				rc = sa_fail(SA_EUSAGE, "configuration file %s "
					     "is larger than 1 MiB", path);
				goto out;
			}
			nb = realloc(buf, cap);
			if (nb == NULL) {
				rc = sa_fail(SA_ENOMEM, "out of memory");
				goto out;
			}
			buf = nb;
		}
		got = fread(buf + len, 1, cap - len, fp);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(fp)) {
		rc = sa_fail(SA_EIO, "cannot read configuration file %s: %s",
			     path, strerror(errno));
		goto out;
	}
	rc = conf_file_parse_buf(path, buf ? buf : "", len, out);
out:
	if (buf != NULL)
		OPENSSL_cleanse(buf, cap);
	free(buf);
	if (fp != NULL)
		fclose(fp);
	return rc;
}

const char *conf_file_get(const struct conf_file *cf, const char *section,
			  const char *key)
{
	const char *v = NULL;
	size_t i;

	if (cf == NULL)
		return NULL;
	for (i = 0; i < cf->n; i++)
		if (strcasecmp(cf->e[i].section, section) == 0 &&
		    strcasecmp(cf->e[i].key, key) == 0)
			v = cf->e[i].value;
	return v;
}

void conf_file_free(struct conf_file *cf)
{
	size_t i;

	if (cf == NULL)
		return;
	for (i = 0; i < cf->n; i++) {
		free(cf->e[i].section);
		free(cf->e[i].key);
		wipe(cf->e[i].value);
		free(cf->e[i].value);
	}
	free(cf->e);
	free(cf->path);
	free(cf);
}

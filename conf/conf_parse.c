/*
 * conf_parse.c - the sscep/OpenSSL-style configuration file syntax:
 * [section] headers, Key = Value lines, quotes, backslash escapes, '#'
 * comments, $variables and backslash line continuation (sscep reads its
 * file with OpenSSL's NCONF, so existing files may use both). Knows
 * nothing of the keys themselves (see conf.c).
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

/* A growing value buffer; values may hold a PIN, so old copies are wiped. */
struct vbuf {
	char *p;
	size_t n, cap;
};

#define CONF_MAX_VALUE (64 * 1024) /* as OpenSSL's NCONF */
/* all expansions of one file: $a$a doubling cannot eat the memory */
#define CONF_MAX_EXPANDED (4 * 1024 * 1024)

static int vb_put(struct vbuf *b, const char *s, size_t len)
{
	if (b->n + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 128;
		char *np;

		while (cap < b->n + len + 1)
			cap *= 2;
		np = malloc(cap);
		if (np == NULL)
			return -1;
		if (b->p != NULL) {
			memcpy(np, b->p, b->n);
			OPENSSL_cleanse(b->p, b->cap);
			free(b->p);
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, len);
	b->n += len;
	b->p[b->n] = '\0';
	return 0;
}

static void vb_free(struct vbuf *b)
{
	if (b->p != NULL)
		OPENSSL_cleanse(b->p, b->cap);
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/*
 * The value of a $variable, as OpenSSL's NCONF (which sscep uses) finds
 * it: NAME in the current section, else in the default scope (lines
 * before any section, or [default]); SECTION::NAME in that section, else
 * the default scope; ENV::NAME from the environment. Only lines above
 * count. NULL when it has no value.
 */
static struct conf_entry *find_entry(const struct conf_file *cf,
				     const char *sec, const char *key)
{
	size_t i = cf->n;

	while (i-- > 0) /* the last assignment counts */
		if (strcasecmp(cf->e[i].section, sec) == 0 &&
		    strcasecmp(cf->e[i].key, key) == 0)
			return &cf->e[i];
	return NULL;
}

static const char *var_value(struct conf_file *cf, const char *cur,
			     const char *sec, const char *name)
{
	struct conf_entry *e;

	if (sec != NULL && strcmp(sec, "ENV") == 0)
		return getenv(name);
	e = find_entry(cf, sec != NULL ? sec : cur, name);
	if (e == NULL)
		e = find_entry(cf, "", name);
	if (e == NULL)
		return NULL;
	e->referenced = 1;
	return e->value;
}

static int is_var_char(int c)
{
	return isalnum(c) || c == '_';
}

/*
 * Expand the variable reference after a '$' at *pin ($NAME, ${NAME},
 * $(NAME), each also as SECTION::NAME) into out; *pin is left on the last
 * character of the reference.
 */
static int expand_var(struct conf_file *cf, const char *cur,
		      const char **pin, struct vbuf *out, const char *path,
		      int line)
{
	const char *in = *pin + 1, *n1, *n2 = NULL;
	size_t l1, l2 = 0;
	char close = 0, sec[128], name[128];
	const char *v;

	if (*in == '{' || *in == '(') {
		close = *in == '{' ? '}' : ')';
		in++;
	}
	n1 = in;
	while (is_var_char((unsigned char)*in))
		in++;
	l1 = (size_t)(in - n1);
	if (in[0] == ':' && in[1] == ':') {
		in += 2;
		n2 = in;
		while (is_var_char((unsigned char)*in))
			in++;
		l2 = (size_t)(in - n2);
	}
	if (l1 == 0 || (n2 != NULL && l2 == 0))
		return sa_fail(SA_EUSAGE, "%s:%d: '$' not followed by a variable "
			       "name; write \\$ for a dollar sign", path, line);
	if (close && *in != close)
		return sa_fail(SA_EUSAGE, "%s:%d: variable reference without "
			       "its closing '%c'", path, line, close);
	if (l1 >= sizeof(sec) || l2 >= sizeof(name))
		return sa_fail(SA_EUSAGE, "%s:%d: variable name too long",
			       path, line);
	if (n2 != NULL) {
		memcpy(sec, n1, l1);
		sec[l1] = '\0';
		memcpy(name, n2, l2);
		name[l2] = '\0';
	} else {
		memcpy(name, n1, l1);
		name[l1] = '\0';
	}
	v = var_value(cf, cur, n2 != NULL ? sec : NULL, name);
	/*
	 * The name stays out of the message unless it is an environment
	 * variable: a '$' inside an unquoted PIN would otherwise print the
	 * rest of the PIN.
	 */
	if (v == NULL && n2 != NULL && strcmp(sec, "ENV") == 0)
		return sa_fail(SA_EUSAGE, "%s:%d: the environment variable %s "
			       "is not set", path, line, name);
	if (v == NULL)
		return sa_fail(SA_EUSAGE, "%s:%d: a '$' starts a variable "
			       "reference, and that variable has no value (it "
			       "must be set on a line above); quote the value "
			       "or write \\$ for a dollar sign", path, line);
	if (out->n + strlen(v) > CONF_MAX_VALUE)
		return sa_fail(SA_EUSAGE, "%s:%d: value longer than %d bytes "
			       "after variable expansion", path, line,
			       CONF_MAX_VALUE);
	cf->expanded += strlen(v);
	if (cf->expanded > CONF_MAX_EXPANDED)
		return sa_fail(SA_EUSAGE, "%s:%d: variables expand to more than "
			       "%d bytes in all; is the file right?", path, line,
			       CONF_MAX_EXPANDED);
	if (vb_put(out, v, strlen(v)) < 0)
		return sa_fail(SA_ENOMEM, "out of memory");
	*pin = close ? in : in - 1;
	return 0;
}

/*
 * Unquote, unescape and expand the value part of a line into out.
 * Unquoted whitespace runs are kept as they are inside the value, trailing
 * unquoted whitespace is dropped. Variables expand outside quotes only,
 * as in OpenSSL.
 */
static int parse_value(struct conf_file *cf, const char *section,
		       const char *in, struct vbuf *out, const char *path,
		       int line)
{
	char quote = 0;
	size_t keep = 0; /* length up to the last significant char */
	int rc;

	out->n = 0;
	if (vb_put(out, "", 0) < 0)
		return sa_fail(SA_ENOMEM, "out of memory");
	while (*in == ' ' || *in == '\t')
		in++;
	for (; *in != '\0'; in++) {
		char c = *in;

		if (quote) {
			if (c == quote) {
				quote = 0;
				keep = out->n;
				continue;
			}
			if (c == '\\' && in[1] != '\0')
				c = *++in;
		} else if (c == '#') {
			break;
		} else if (c == '"' || c == '\'') {
			quote = c;
			continue;
		} else if (c == '\\' && in[1] != '\0') {
			c = *++in;
		} else if (c == '$') {
			rc = expand_var(cf, section, &in, out, path, line);
			if (rc < 0)
				return rc;
			keep = out->n;
			continue;
		} else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			if (vb_put(out, &c, 1) < 0)
				return sa_fail(SA_ENOMEM, "out of memory");
			continue;
		}
		if (vb_put(out, &c, 1) < 0)
			return sa_fail(SA_ENOMEM, "out of memory");
		keep = out->n;
	}
	if (quote)
		return sa_fail(SA_EUSAGE, "%s:%d: unterminated quoted value; "
			       "close the %c quote or escape it with a backslash",
			       path, line, quote);
	out->n = keep;
	out->p[keep] = '\0';
	return 0;
}

/* Does the line end in an unescaped backslash (a continuation)? */
static int continues(const char *l, size_t len)
{
	size_t n = 0;

	while (len > 0 && l[len - 1] == '\\') {
		n++;
		len--;
	}
	return n % 2 == 1;
}

int conf_file_parse_buf(const char *name, const char *buf, size_t len,
			struct conf_file **out)
{
	struct conf_file *cf = NULL;
	char *copy = NULL, *section = NULL;
	struct vbuf val = { 0 }, lb = { 0 };
	char *p, *next;
	int line = 0, sline = 0, first, rc;

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
		size_t klen, l;

		/*
		 * One logical line: physical lines ending in an unescaped
		 * backslash go on in the next one (as in OpenSSL's NCONF).
		 * Messages name the first physical line.
		 */
		first = ++line;
		lb.n = 0;
		for (;;) {
			next = strchr(p, '\n');
			if (next != NULL)
				*next++ = '\0';
			l = strlen(p);
			if (l > 0 && p[l - 1] == '\r')
				l--;
			if (!continues(p, l) || next == NULL) {
				if (vb_put(&lb, p, l) < 0) {
					rc = sa_fail(SA_ENOMEM, "out of memory");
					goto out;
				}
				break;
			}
			if (vb_put(&lb, p, l - 1) < 0) {
				rc = sa_fail(SA_ENOMEM, "out of memory");
				goto out;
			}
			p = next;
			line++;
		}
		s = lb.p;
		while (isspace((unsigned char)*s))
			s++;
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *e = strchr(s, ']');
			char *a = s + 1;

			if (e == NULL) {
				rc = sa_fail(SA_EUSAGE, "%s:%d: section header "
					     "without ']'", name, first);
				goto out;
			}
			*e = '\0';
			while (isspace((unsigned char)*a))
				a++;
			while (e > a && isspace((unsigned char)e[-1]))
				*--e = '\0';
			if (*a == '\0') {
				rc = sa_fail(SA_EUSAGE, "%s:%d: empty section "
					     "name", name, first);
				goto out;
			}
			free(section);
			/* [default] is OpenSSL's name for the top of the file */
			section = strdup(strcmp(a, "default") == 0 ? "" : a);
			if (section == NULL) {
				rc = sa_fail(SA_ENOMEM, "out of memory");
				goto out;
			}
			sline = first;
			continue;
		}
		key = s;
		while (is_key_char((unsigned char)*s))
			s++;
		klen = (size_t)(s - key);
		while (*s == ' ' || *s == '\t')
			s++;
		if (klen == 8 && strncasecmp(key, ".include", 8) == 0) {
			/* OpenSSL's ".include path" and ".include = path" */
			rc = sa_fail(SA_EUSAGE, "%s:%d: .include is not "
				     "supported; put the settings in this "
				     "file", name, first);
			goto out;
		}
		if (klen == 0 || *s != '=') {
			rc = sa_fail(SA_EUSAGE, "%s:%d: expected 'Key = "
				     "Value' or '[section]'", name, first);
			goto out;
		}
		s++;
		rc = parse_value(cf, section, s, &val, name, first);
		if (rc < 0)
			goto out;
		rc = add_entry(cf, section, sline, key, klen, val.p, first);
		if (rc < 0)
			goto out;
	}
	*out = cf;
	cf = NULL;
	rc = 0;
out:
	vb_free(&val);
	vb_free(&lb);
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
	const struct conf_entry *e = cf ? find_entry(cf, section, key) : NULL;

	return e ? e->value : NULL;
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

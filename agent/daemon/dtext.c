/*
 * dtext.c - the daemon's text formats: RFC 3339 times, durations
 * ("7d"), JSON strings (whatever a CA wrote, made valid JSON), pkcs11:
 * URIs without their PIN. Pure: unit-tested alone.
 */
#include "daemon.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sa_err.h"

const char *dtext_rfc3339(time_t t, char *buf, size_t size)
{
	struct tm tm;

	if (size == 0)
		return buf;
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		buf[0] = '\0';
	return buf;
}

int dtext_duration(const char *s, long *out)
{
	char *end = NULL;
	long long v, mul = 1;

	*out = 0;
	if (s == NULL || !isdigit((unsigned char)*s))
		goto bad;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0)
		goto bad;
	switch (*end) {
	case '\0': break;
	case 's': mul = 1; end++; break;
	case 'm': mul = 60; end++; break;
	case 'h': mul = 3600; end++; break;
	case 'd': mul = 86400; end++; break;
	case 'w': mul = 7 * 86400; end++; break;
	default: goto bad;
	}
	if (*end != '\0' || v > LONG_MAX / mul)
		goto bad;
	*out = (long)(v * mul);
	return 0;
bad:
	return sa_fail_noossl(SA_EUSAGE, "\"%s\" is not a duration: give "
			      "seconds, or a number with s, m, h, d or w "
			      "(e.g. 7d)", s ? s : "");
}

static int grow(char **buf, size_t *len, size_t *cap, size_t more)
{
	char *n;
	size_t want;

	if (*len + more + 1 <= *cap)
		return 0;
	want = (*cap ? *cap : 256);
	while (want < *len + more + 1)
		want *= 2;
	n = realloc(*buf, want);
	if (n == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	*buf = n;
	*cap = want;
	return 0;
}

int dtext_append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return sa_fail_noossl(SA_EINTERNAL, "bad format");
	rc = grow(buf, len, cap, (size_t)n);
	if (rc != 0)
		return rc;
	va_start(ap, fmt);
	vsnprintf(*buf + *len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	*len += (size_t)n;
	return 0;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned c = s[0];
	size_t n, i;
	unsigned long cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

int dtext_json_str(char **buf, size_t *len, size_t *cap, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	int rc;

	if (s == NULL)
		return dtext_append(buf, len, cap, "null");
	rc = dtext_append(buf, len, cap, "\"");
	while (rc == 0 && *p != '\0') {
		size_t n = utf8_len(p);

		if (*p == '"' || *p == '\\') {
			rc = dtext_append(buf, len, cap, "\\%c", *p);
		} else if (*p == '\n') {
			rc = dtext_append(buf, len, cap, "\\n");
		} else if (*p == '\t') {
			rc = dtext_append(buf, len, cap, "\\t");
		} else if (*p == '\r') {
			rc = dtext_append(buf, len, cap, "\\r");
		} else if (*p < 0x20 || *p == 0x7f) {
			rc = dtext_append(buf, len, cap, "\\u%04x", *p);
		} else if (n == 0) {
			rc = dtext_append(buf, len, cap, "\\ufffd");
			n = 1;
		} else if (n == 3 && p[0] == 0xe2 && p[1] == 0x80 &&
			   (p[2] == 0xa8 || p[2] == 0xa9)) {
			/* U+2028/U+2029: valid JSON, but not in JavaScript */
			rc = dtext_append(buf, len, cap, "\\u202%c",
					  p[2] == 0xa8 ? '8' : '9');
		} else {
			rc = grow(buf, len, cap, n);
			if (rc == 0) {
				memcpy(*buf + *len, p, n);
				*len += n;
				(*buf)[*len] = '\0';
			}
		}
		p += n ? n : 1;
	}
	if (rc == 0)
		rc = dtext_append(buf, len, cap, "\"");
	return rc;
}

/* "pin-value" or "pin-source" (any case) starts at a, of length n. */
static int is_pin_attr(const char *a, size_t n)
{
	return (n >= 9 && strncasecmp(a, "pin-value", 9) == 0 &&
		(n == 9 || a[9] == '=')) ||
	       (n >= 10 && strncasecmp(a, "pin-source", 10) == 0 &&
		(n == 10 || a[10] == '='));
}

/* Append the attributes of part (n bytes, separated by sep) but the PIN's. */
static void keep_attrs(char **w, const char *part, size_t n, char sep,
		       const char *lead)
{
	const char *p = part, *end = part + n;
	int first = 1;

	while (p < end) {
		const char *q = memchr(p, sep, (size_t)(end - p));
		size_t len = q ? (size_t)(q - p) : (size_t)(end - p);

		if (len > 0 && !is_pin_attr(p, len)) {
			const char *l = first ? lead : NULL;

			if (l != NULL) {
				memcpy(*w, l, strlen(l));
				*w += strlen(l);
			} else if (!first) {
				*(*w)++ = sep;
			}
			memcpy(*w, p, len);
			*w += len;
			first = 0;
		}
		p += len + 1;
	}
}

char *dtext_uri_nopin(const char *uri)
{
	const char *body = uri, *q;
	char *out, *w;

	if (uri == NULL)
		return NULL;
	out = malloc(strlen(uri) + 2);
	if (out == NULL)
		return NULL;
	w = out;
	if (strncasecmp(uri, "pkcs11:", 7) == 0) {
		memcpy(w, uri, 7);
		w += 7;
		body = uri + 7;
	}
	q = strchr(body, '?');
	keep_attrs(&w, body, q ? (size_t)(q - body) : strlen(body), ';', "");
	if (q != NULL)
		keep_attrs(&w, q + 1, strlen(q + 1), '&', "?");
	*w = '\0';
	return out;
}

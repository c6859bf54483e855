/*
 * sa_esc.c - escaping of untrusted text, and URLs without credentials.
 */
#include "sa_esc.h"

#include <string.h>
#include <strings.h>

/* An output buffer filled piece by piece, cut with "..." when full. */
struct out {
	char *buf;
	size_t size;
	size_t j;     /* bytes written */
	size_t mark;  /* end of the last piece that left room for "..." */
	int cut;
};

static void put(struct out *o, const char *piece, size_t n)
{
	if (o->cut)
		return;
	if (o->j + n + 1 > o->size) {
		o->cut = 1;
		o->j = o->mark;
		if (o->size >= 4) {
			memcpy(o->buf + o->j, "...", 3);
			o->j += 3;
		}
		return;
	}
	memcpy(o->buf + o->j, piece, n);
	o->j += n;
	if (o->j + 4 <= o->size)
		o->mark = o->j;
}

/*
 * Length of the valid UTF-8 sequence of a printable code point at p
 * (at most n bytes), or 0: overlong forms, surrogates, code points past
 * U+10FFFF and the C1 controls are not valid here.
 */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned cp;
	size_t len, i;

	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		cp = p[0] & 0x1fu;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		cp = p[0] & 0x0fu;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		cp = p[0] & 0x07u;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3fu);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
	    (cp >= 0x80 && cp <= 0x9f))
		return 0;
	return len;
}

static void put_esc(struct out *o, const unsigned char *p, size_t len, int flags)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i = 0;

	while (i < len && !o->cut) {
		unsigned char c = p[i];
		size_t u;

		if (c == '\\') {
			put(o, "\\\\", 2);
			i++;
		} else if (c >= 0x20 && c < 0x7f) {
			put(o, (const char *)p + i, 1);
			i++;
		} else if (c >= 0x80 && (flags & SA_ESC_UTF8) &&
			   (u = utf8_len(p + i, len - i)) > 0) {
			put(o, (const char *)p + i, u);
			i += u;
		} else {
			char e[4] = { '\\', 'x', hex[c >> 4], hex[c & 15] };

			put(o, e, 4);
			i++;
		}
	}
}

static const char *finish(struct out *o)
{
	if (o->size > 0)
		o->buf[o->j < o->size ? o->j : o->size - 1] = '\0';
	return o->buf;
}

/* Escape len bytes into buf; see sa_esc.h. */
const char *sa_esc(const void *in, size_t len, int flags, char *buf, size_t size)
{
	struct out o = { buf, size, 0, 0, 0 };

	if (size == 0)
		return buf;
	if (in == NULL)
		put(&o, "(null)", 6);
	else
		put_esc(&o, in, len, flags);
	return finish(&o);
}

/* Escape a string into buf; see sa_esc.h. */
const char *sa_esc_str(const char *s, char *buf, size_t size)
{
	return sa_esc(s, s ? strlen(s) : 0, SA_ESC_UTF8, buf, size);
}

/* Is the query parameter at p (up to its '=') one that is shown? */
static int shown_param(const char *p, size_t n)
{
	return (n == 9 && strncasecmp(p, "operation", 9) == 0) ||
	       (n == 7 && strncasecmp(p, "message", 7) == 0);
}

/* A URL for messages, credentials and query values dropped; see sa_esc.h. */
const char *sa_url_shown(const char *url, char *buf, size_t size)
{
	struct out o = { buf, size, 0, 0, 0 };
	const char *auth, *end, *at = NULL, *p, *q;

	if (size == 0)
		return buf;
	if (url == NULL) {
		put(&o, "(null)", 6);
		return finish(&o);
	}
	/* the authority starts after "scheme://", or at once (host:port) */
	auth = strstr(url, "://");
	auth = auth ? auth + 3 : url;
	/*
	 * The userinfo ends at the last '@' before the query: a password
	 * with a '/' or an '@' in it is hidden whole, even if that also
	 * hides a path holding an '@'.
	 */
	end = auth + strcspn(auth, "?#");
	for (p = auth; p < end; p++)
		if (*p == '@')
			at = p;
	put_esc(&o, (const unsigned char *)url, (size_t)(auth - url), SA_ESC_UTF8);
	if (at != NULL) {
		put(&o, "***", 3);
		auth = at;
	}
	put_esc(&o, (const unsigned char *)auth, (size_t)(end - auth), SA_ESC_UTF8);
	if (*end != '?') {
		put_esc(&o, (const unsigned char *)end, strlen(end), SA_ESC_UTF8);
		return finish(&o);
	}
	/* the query: names kept, values hidden but for operation and message */
	put(&o, "?", 1);
	p = end + 1;
	while (*p != '\0' && *p != '#') {
		size_t n = strcspn(p, "&;#");
		const char *eq = memchr(p, '=', n);

		q = p + n;
		if (eq != NULL && !shown_param(p, (size_t)(eq - p))) {
			put_esc(&o, (const unsigned char *)p, (size_t)(eq - p) + 1,
				SA_ESC_UTF8);
			put(&o, "***", 3);
		} else if (eq == NULL && n > 0) {
			put(&o, "***", 3); /* a bare value: may be a token */
		} else {
			put_esc(&o, (const unsigned char *)p, n, SA_ESC_UTF8);
		}
		if (*q == '&' || *q == ';') {
			put(&o, q, 1);
			q++;
		}
		p = q;
	}
	put_esc(&o, (const unsigned char *)p, strlen(p), SA_ESC_UTF8);
	return finish(&o);
}

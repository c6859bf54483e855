/*
 * fuzz_esc.c - libFuzzer target: sa_esc / sa_esc_str (server text made
 * safe to print) and sa_url_shown (URLs without credentials), with
 * oracles, at buffer sizes from 1 byte up.
 *
 *   byte 0   buffer size selector
 *   rest     the text; for sa_url_shown also split at its first 0x01 into
 *            A and B, and shown as A "://u:" SECRET "@" B "?x=" SECRET
 *            (or "&x=" when B has a query)
 *
 * Oracles: the result is NUL-terminated inside the buffer, has no C0
 * control character and no DEL (no byte from 0x80 without SA_ESC_UTF8);
 * decoded again (\\ and \xHH) it is the input, or a prefix of it followed
 * by "..." when the buffer was too small; a URL never shows SECRET when A
 * holds no '?' or '#', B no '#', and the input not SECRET itself.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sa_esc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "S3CR3Tpw"

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* out must be sa_esc's rendering of in[0..len), perhaps cut. */
static void check_esc(const char *out, size_t size, const uint8_t *in, size_t len,
		      int utf8)
{
	size_t n = strlen(out), i = 0, k = 0;

	if (out[n] != '\0' || n >= size)
		abort();
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)out[i];

		if (c < 0x20 || c == 0x7f || (!utf8 && c >= 0x80))
			abort();
	}
	/* decode and compare: the input, or a prefix of it and "..." */
	for (i = 0; i < n;) {
		int b;

		if (strcmp(out + i, "...") == 0 && k < len && size >= 4)
			return; /* cut here (or the input goes on with "...") */
		if (out[i] == '\\' && i + 1 < n && out[i + 1] == '\\') {
			b = '\\';
			i += 2;
		} else if (out[i] == '\\' && i + 3 < n && out[i + 1] == 'x' &&
			   hexval(out[i + 2]) >= 0 && hexval(out[i + 3]) >= 0) {
			b = hexval(out[i + 2]) * 16 + hexval(out[i + 3]);
			i += 4;
		} else if (out[i] == '\\') {
			abort(); /* a backslash the decoder cannot read */
		} else {
			b = (unsigned char)out[i];
			i++;
		}
		if (k == len || in[k] != b)
			abort();
		k++;
	}
	/* all of it, unless there was no room even for "..." */
	if (k != len && size >= 4)
		abort();
}

static void check_url(const uint8_t *data, size_t size, size_t bufsize)
{
	const uint8_t *sep = memchr(data, 1, size);
	size_t la = sep ? (size_t)(sep - data) : 0;
	const char *b = sep ? (const char *)sep + 1 : (const char *)data;
	size_t lb = size - (sep ? la + 1 : 0);
	char *url = malloc(size + 64), *buf = malloc(bufsize), *p;
	int query;

	if (url == NULL || buf == NULL)
		goto out;
	p = url;
	memcpy(p, data, la);
	p += la;
	p += sprintf(p, "://u:%s@", SECRET);
	memcpy(p, b, lb);
	p[lb] = '\0';
	query = strchr(p, '?') != NULL;
	p += strlen(p);
	sprintf(p, "%cx=%s", query ? '&' : '?', SECRET);
	sa_url_shown(url, buf, bufsize);
	if (strlen(buf) >= bufsize)
		abort();
	for (p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			abort();
	if (memchr(data, '?', la) == NULL && memchr(data, '#', la) == NULL &&
	    memchr(data, 0, la) == NULL && strchr(url + la, '#') == NULL &&
	    memmem(data, size, SECRET, strlen(SECRET)) == NULL &&
	    strstr(buf, SECRET) != NULL)
		abort();
out:
	free(url);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t bufsize;
	char *buf, *s;

	if (size < 1)
		return 0;
	bufsize = data[0] < 200 ? (size_t)data[0] % 40 + 1 : 4 * size + 8;
	data++;
	size--;
	buf = malloc(bufsize);
	s = malloc(size + 1);
	if (buf == NULL || s == NULL)
		goto out;
	if (sa_esc(data, size, 0, buf, bufsize) != buf)
		abort();
	check_esc(buf, bufsize, data, size, 0);
	sa_esc(data, size, SA_ESC_UTF8, buf, bufsize);
	check_esc(buf, bufsize, data, size, 1);
	memcpy(s, data, size);
	s[size] = '\0';
	sa_esc_str(s, buf, bufsize);
	check_esc(buf, bufsize, (const uint8_t *)s, strlen(s), 1);
	check_url(data, size, bufsize);
out:
	free(buf);
	free(s);
	return 0;
}

/*
 * sa_esc.h - text from elsewhere made safe to print.
 *
 * Whatever a server controls (failInfoText, a transactionID, a
 * Content-Type, a redirect URL) goes through sa_esc() before it reaches a
 * message, so that it cannot move the cursor, recolour the terminal or
 * forge a log line. URLs and proxy strings go through sa_url_shown(),
 * which also drops their credentials. Both write into a buffer of the
 * caller's, cut with "..." when it is full: no allocation, no failure.
 */
#ifndef SA_ESC_H
#define SA_ESC_H

#include <stddef.h>

/* Keep valid UTF-8 (except the C1 controls U+0080..U+009F) as it is. */
#define SA_ESC_UTF8 1

/*
 * Copy len bytes of in into buf (size bytes, NUL-terminated) with every
 * byte below 0x20, 0x7f and every byte of 0x80 and above written as \xHH
 * (upper-case hex) and a backslash as "\\"; with SA_ESC_UTF8, valid UTF-8
 * sequences of printable code points stay as they are. When buf is full
 * the text is cut at a character boundary and ends with "...". in NULL
 * gives "(null)". Returns buf.
 */
const char *sa_esc(const void *in, size_t len, int flags, char *buf,
		   size_t size);

/* sa_esc() of a NUL-terminated string, UTF-8 kept. Returns buf. */
const char *sa_esc_str(const char *s, char *buf, size_t size);

/*
 * A URL or proxy string as messages show it: credentials dropped (the
 * "user:pass@" of "scheme://user:pass@host:port/path", or of sscep's
 * "user:pass@host:port", becomes "***@"), the value of every query
 * parameter but operation and message replaced by "***", and the rest
 * escaped as sa_esc_str() does. Returns buf.
 */
const char *sa_url_shown(const char *url, char *buf, size_t size);

#endif

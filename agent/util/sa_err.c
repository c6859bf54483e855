#include "sa_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

/* per thread: a worker thread's failure is its own */
static _Thread_local char errmsg[SA_ERRMSG_MAX];

static void append_ossl(void)
{
	unsigned long e;
	size_t n = strlen(errmsg);
	int first = 1;

	while ((e = ERR_get_error()) != 0) {
		char buf[256];
		const char *r = ERR_reason_error_string(e);

		if (r == NULL) {
			ERR_error_string_n(e, buf, sizeof(buf));
			r = buf;
		}
		if (n + strlen(r) + 4 >= sizeof(errmsg))
			continue; /* keep draining */
		n += (size_t)snprintf(errmsg + n, sizeof(errmsg) - n, "%s%s",
				      first ? " (OpenSSL: " : "; ", r);
		first = 0;
	}
	if (!first && n + 2 < sizeof(errmsg))
		snprintf(errmsg + n, sizeof(errmsg) - n, ")");
}

static int vfail(int code, int ossl, const char *fmt, va_list ap)
{
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	if (ossl)
		append_ossl();
	else
		ERR_clear_error();
	return code;
}

int sa_fail(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	code = vfail(code, 1, fmt, ap);
	va_end(ap);
	return code;
}

int sa_fail_noossl(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	code = vfail(code, 0, fmt, ap);
	va_end(ap);
	return code;
}

/* the message to wrap: the recorded one, else the code's name */
static size_t wrap_base(int code)
{
	if (errmsg[0] == '\0')
		snprintf(errmsg, sizeof(errmsg), "%s", sa_strerror(code));
	return strlen(errmsg);
}

int sa_fail_prefix(int code, const char *fmt, ...)
{
	char pre[SA_ERRMSG_MAX];
	size_t n, len;
	va_list ap;
	int w;

	len = wrap_base(code);
	va_start(ap, fmt);
	w = vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	n = w < 0 ? 0 : (size_t)w < sizeof(pre) ? (size_t)w : sizeof(pre) - 1;
	if (n + len > sizeof(errmsg) - 1)
		len = sizeof(errmsg) - 1 - n; /* the message's end goes */
	memmove(errmsg + n, errmsg, len);
	memcpy(errmsg, pre, n);
	errmsg[n + len] = '\0';
	ERR_clear_error();
	return code;
}

int sa_fail_suffix(int code, const char *fmt, ...)
{
	size_t len = wrap_base(code);
	va_list ap;

	va_start(ap, fmt);
	if (len < sizeof(errmsg) - 1)
		vsnprintf(errmsg + len, sizeof(errmsg) - len, fmt, ap);
	va_end(ap);
	ERR_clear_error();
	return code;
}

const char *sa_errmsg(void)
{
	return errmsg;
}

void sa_err_clear(void)
{
	errmsg[0] = '\0';
	ERR_clear_error();
}

const char *sa_strerror(int code)
{
	switch (code) {
	case SA_OK: return "success";
	case SA_EINTERNAL: return "internal error";
	case SA_ENOMEM: return "out of memory";
	case SA_EUSAGE: return "usage error";
	case SA_EIO: return "file error";
	case SA_ENET: return "network error";
	case SA_EREPLY: return "unacceptable reply";
	case SA_ECAPIN: return "CA fingerprint mismatch";
	case SA_ECRYPTO: return "cryptographic error";
	case SA_EKEY: return "key or token error";
	case SA_EPIN: return "PIN error";
	case SA_ENOTFOUND: return "not found";
	case SA_EEXIST: return "already exists";
	case SA_EINTR: return "interrupted";
	}
	return "unknown error";
}

int sa_exit_code(int code)
{
	switch (code) {
	case SA_OK: return SA_EXIT_OK;
	case SA_EUSAGE: return SA_EXIT_USAGE;
	case SA_EIO: return SA_EXIT_IO;
	case SA_ENET: return SA_EXIT_NET;
	case SA_EREPLY:
	case SA_ECAPIN: return SA_EXIT_REPLY;
	case SA_EKEY:
	case SA_ENOTFOUND:
	case SA_EEXIST: return SA_EXIT_KEY;
	case SA_EPIN: return SA_EXIT_PIN;
	default: return SA_EXIT_ERROR;
	}
}

int sa_error_take(struct sa_error *e, int code)
{
	const char *m = errmsg[0] != '\0' ? errmsg : sa_strerror(code);

	e->code = code;
	snprintf(e->msg, sizeof(e->msg), "%s", code == 0 ? "" : m);
	sa_err_clear();
	return code;
}

int sa_error_raise(const struct sa_error *e)
{
	return sa_fail_noossl(e->code, "%s", e->msg);
}

/*
 * http.c - the HTTP transport of the SCEP core; the only libcurl user.
 *
 * One curl easy handle per transport, reused for every request of a run
 * (keep-alive). Verification of HTTPS peers is on unless the caller sets
 * insecure explicitly. An https URL only follows redirects to https, at
 * most SCEP_HTTP_MAX_REDIRS of them. Messages show URLs through
 * sa_url_shown() (no credentials) and server text through sa_esc().
 */
#include "scep_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/x509_vfy.h>

#include "sa_err.h"
#include "sa_esc.h"
#include "sa_intr.h"
#include "sa_log.h"

/* Redirects followed per request (documented in scep-agent(1)). */
#define SCEP_HTTP_MAX_REDIRS 5

struct scep_http {
	CURL *curl;
	char *url;
	char *proxy;
	char *ca_bundle;
	int insecure;
	long connect_timeout;
	long timeout;
	size_t max_response;
	long wait_connect;
	double wait_until;  /* -W deadline: set by the run's first request */
	long last_status;
	int https;          /* the base URL is https: redirects must stay https */
	int sent;           /* the last request may have reached the server */
	char url_shown[512];   /* h->url for messages (sa_url_shown) */
	char proxy_shown[256]; /* h->proxy for messages */
	char errbuf[CURL_ERROR_SIZE];
};

struct sink {
	struct scep_buf *b;
	size_t cap;
	size_t max;
	int too_big;
};

static int curl_ready;

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* See scep.h. */
int scep_http_global_init(void)
{
	if (curl_ready)
		return 0;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return sa_fail_noossl(SA_EINTERNAL, "libcurl initialisation failed");
	curl_ready = 1;
	return 0;
}

/* Create a transport; see scep.h. */
int scep_http_new(const struct scep_http_opts *opts, scep_http **out)
{
	scep_http *h = NULL;
	int rc = SA_ENOMEM;

	*out = NULL;
	if (opts == NULL || opts->url == NULL || opts->url[0] == '\0')
		return sa_fail_noossl(SA_EUSAGE, "no SCEP server URL given; use -u URL");
	if (scep_http_global_init() < 0)
		return SA_EINTERNAL;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		goto out;
	if (strstr(opts->url, "://") == NULL) {
		if (asprintf(&h->url, "http://%s", opts->url) < 0)
			h->url = NULL;
	} else {
		h->url = strdup(opts->url);
	}
	h->proxy = xstrdup(opts->proxy);
	h->ca_bundle = xstrdup(opts->ca_bundle);
	if (h->url == NULL || (opts->proxy && !h->proxy) ||
	    (opts->ca_bundle && !h->ca_bundle))
		goto out;
	h->insecure = opts->insecure;
	h->https = strncasecmp(h->url, "https://", 8) == 0;
	sa_url_shown(h->url, h->url_shown, sizeof(h->url_shown));
	sa_url_shown(h->proxy, h->proxy_shown, sizeof(h->proxy_shown));
	h->connect_timeout = opts->connect_timeout > 0 ? opts->connect_timeout : 30;
	h->timeout = opts->timeout > 0 ? opts->timeout : 120;
	h->max_response = opts->max_response ? opts->max_response : 8u << 20;
	h->wait_connect = opts->wait_connect > 0 ? opts->wait_connect : 0;
	h->curl = curl_easy_init();
	if (h->curl == NULL) {
		rc = sa_fail_noossl(SA_EINTERNAL, "cannot create a libcurl handle");
		goto out;
	}
	*out = h;
	h = NULL;
	rc = SA_OK;
out:
	if (rc == SA_ENOMEM)
		sa_fail_noossl(rc, "out of memory creating the HTTP transport");
	scep_http_free(h);
	return rc;
}

/* Free a transport (NULL is fine). */
void scep_http_free(scep_http *h)
{
	if (h == NULL)
		return;
	if (h->curl)
		curl_easy_cleanup(h->curl);
	free(h->url);
	free(h->proxy);
	free(h->ca_bundle);
	free(h);
}

long scep_http_last_status(const scep_http *h)
{
	return h ? h->last_status : 0;
}

int scep_http_sent(const scep_http *h)
{
	return h ? h->sent : 0;
}

const char *scep_http_url(const scep_http *h)
{
	return h ? h->url : "";
}

/* Free a reply buffer's contents and zero it. */
void scep_buf_clear(struct scep_buf *b)
{
	if (b == NULL)
		return;
	free(b->data);
	free(b->content_type);
	memset(b, 0, sizeof(*b));
}

/* Percent-encode everything but RFC 3986 unreserved. Caller frees. */
char *scep_url_escape(const char *in)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(in);
	char *out = malloc(3 * n + 1), *p = out;

	if (out == NULL)
		return NULL;
	for (; *in; in++) {
		unsigned char c = (unsigned char)*in;

		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
			*p++ = (char)c;
		} else {
			*p++ = '%';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		}
	}
	*p = '\0';
	return out;
}

static size_t sink_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct sink *s = arg;
	size_t n = size * nmemb;
	struct scep_buf *b = s->b;

	if (b->len + n > s->max) {
		s->too_big = 1;
		return 0;
	}
	if (b->len + n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		unsigned char *d;

		while (cap < b->len + n + 1)
			cap *= 2;
		d = realloc(b->data, cap);
		if (d == NULL)
			return 0;
		b->data = d;
		s->cap = cap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

static int is_html(const struct scep_buf *b)
{
	size_t i = 0;

	if (b->content_type && strncasecmp(b->content_type, "text/html", 9) == 0)
		return 1;
	while (i < b->len && isspace(b->data[i]))
		i++;
	return b->len - i >= 5 &&
	       (strncasecmp((char *)b->data + i, "<html", 5) == 0 ||
		strncasecmp((char *)b->data + i, "<!doc", 5) == 0);
}

/* The <title> of an HTML page (or the first text) in a small buffer. */
static void html_summary(const struct scep_buf *b, char *out, size_t len)
{
	const char *d = (const char *)b->data, *t, *e;
	size_t n, i, j = 0;

	out[0] = '\0';
	if (d == NULL)
		return;
	t = strcasestr(d, "<title>");
	if (t) {
		t += 7;
		e = strcasestr(t, "</title>");
	} else {
		t = strcasestr(d, "<h1>");
		if (t)
			t += 4;
		e = t ? strcasestr(t, "</h1>") : NULL;
	}
	if (t == NULL || e == NULL)
		return;
	n = (size_t)(e - t);
	for (i = 0; i < n && j + 1 < len; i++) {
		unsigned char c = (unsigned char)t[i];

		if (isspace(c)) {
			if (j > 0 && out[j - 1] != ' ')
				out[j++] = ' ';
		} else if (isprint(c)) {
			out[j++] = (char)c;
		}
	}
	while (j > 0 && out[j - 1] == ' ')
		j--;
	out[j] = '\0';
}

static int connect_error(CURLcode cc)
{
	return cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
	       cc == CURLE_COULDNT_RESOLVE_PROXY;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * curl calls this at least once a second during a transfer, also while it
 * waits for a slow server: a stop signal aborts the transfer.
 */
static int xfer_check_stop(void *arg, curl_off_t dltotal, curl_off_t dlnow,
			   curl_off_t ultotal, curl_off_t ulnow)
{
	(void)arg; (void)dltotal; (void)dlnow; (void)ultotal; (void)ulnow;
	return sa_intr_caught() != 0;
}

/*
 * May the request of the last transfer have reached the server? Yes once
 * it completed, or once curl wrote any of it (CURLINFO_REQUEST_SIZE: the
 * bytes of requests sent, 0 after a refused or timed-out connection or a
 * failed TLS handshake). Counted conservatively: bytes that reached a
 * proxy count, and so does not knowing.
 */
static int request_went_out(scep_http *h, CURLcode cc)
{
	long sent = 0;

	if (cc == CURLE_OK)
		return 1;
	if (curl_easy_getinfo(h->curl, CURLINFO_REQUEST_SIZE, &sent) != CURLE_OK)
		return 1;
	return sent > 0;
}

/*
 * Had the last transfer a connection to the server (or proxy)? A new one
 * has a connect time; a kept-alive one has none, but the request went
 * out on it.
 */
static int was_connected(scep_http *h)
{
	curl_off_t conn = 0;
	long sent = 0;

	if (curl_easy_getinfo(h->curl, CURLINFO_CONNECT_TIME_T, &conn) == CURLE_OK && conn > 0)
		return 1;
	return curl_easy_getinfo(h->curl, CURLINFO_REQUEST_SIZE, &sent) == CURLE_OK && sent > 0;
}

/*
 * " (redirected to URL)" when the transfer followed a redirect, for
 * messages; "" otherwise. The URL is shown without credentials, escaped.
 */
static const char *redirect_note(scep_http *h, char *buf, size_t len)
{
	char *eff = NULL;
	long n = 0;
	size_t k;

	buf[0] = '\0';
	if (curl_easy_getinfo(h->curl, CURLINFO_REDIRECT_COUNT, &n) != CURLE_OK ||
	    n <= 0 || curl_easy_getinfo(h->curl, CURLINFO_EFFECTIVE_URL, &eff) != CURLE_OK ||
	    eff == NULL || len < 32)
		return buf;
	k = (size_t)snprintf(buf, len, " (redirected to ");
	sa_url_shown(eff, buf + k, len - k - 1);
	strcat(buf, ")");
	return buf;
}

/*
 * What a failed transfer's curl code means for the user, as "; ..." to
 * follow curl's own text, in buf: a connection that broke mid-reply, a
 * server too slow for --timeout, and why an HTTPS server's certificate
 * was refused (OpenSSL's verify result: expired, not yet valid, or, with
 * a chain that verified, a certificate for another host name).
 */
static const char *fail_hint(scep_http *h, CURLcode cc, char *buf, size_t len)
{
	long vr = X509_V_OK;
	char *eff = NULL, host[256];

	buf[0] = '\0';
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return "; is the server running and the URL (-u) right?";
	case CURLE_OPERATION_TIMEDOUT:
		/* connected: the server was too slow */
		if (!was_connected(h))
			return "; is the server running and the URL (-u) right?";
		snprintf(buf, len, "; the server did not complete its reply within the "
			 "--timeout of %ld s (total time per request): is it "
			 "overloaded, or the network slow? A longer --timeout "
			 "(Timeout) may help", h->timeout);
		return buf;
	case CURLE_RECV_ERROR:
	case CURLE_PARTIAL_FILE:
		return "; the connection broke before the reply was complete "
		       "(closed or reset by the server or something on the way)";
	case CURLE_GOT_NOTHING:
		return "; the server closed the connection without replying";
	case CURLE_SSL_CONNECT_ERROR:
		return "; the TLS handshake failed: does the server speak HTTPS on "
		       "that port?";
	case CURLE_SSL_CACERT_BADFILE:
		return "; check the CA bundle for HTTPS (--ca-bundle)";
	case CURLE_PEER_FAILED_VERIFICATION:
		break;
	default:
		return "";
	}
	curl_easy_getinfo(h->curl, CURLINFO_SSL_VERIFYRESULT, &vr);
	if (vr == X509_V_ERR_CERT_HAS_EXPIRED)
		return "; the server's certificate has expired: have it renewed "
		       "(if it has not expired, check this computer's clock)";
	if (vr == X509_V_ERR_CERT_NOT_YET_VALID)
		return "; the server's certificate is not valid yet: check this "
		       "computer's clock";
	/*
	 * The chain is verified during the handshake, which fails with its
	 * verify result; the host name is checked after a handshake that
	 * succeeded, when curl still reports its "not checked" value,
	 * X509_V_ERR_UNSPECIFIED (libcurl 7.88 with OpenSSL), or X509_V_OK.
	 */
	if (vr != X509_V_OK && vr != X509_V_ERR_UNSPECIFIED)
		return "; check the CA bundle for HTTPS (--ca-bundle): it must hold "
		       "the CA that issued the server's certificate";
	host[0] = '\0';
	if (curl_easy_getinfo(h->curl, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK && eff) {
		CURLU *u = curl_url();
		char *hp = NULL;

		if (u && curl_url_set(u, CURLUPART_URL, eff, 0) == CURLUE_OK &&
		    curl_url_get(u, CURLUPART_HOST, &hp, 0) == CURLUE_OK)
			sa_esc_str(hp, host, sizeof(host));
		curl_free(hp);
		curl_url_cleanup(u);
	}
	snprintf(buf, len, "; the server's certificate does not name the host %s "
		 "of the URL: give the URL (-u) with a name the certificate holds, "
		 "or have the server's certificate fixed", host[0] ? host : "(unknown)");
	return buf;
}

/* curl's error text, escaped (it may quote what a server sent). */
static const char *curl_error(scep_http *h, CURLcode cc, char *buf, size_t len)
{
	return sa_esc_str(h->errbuf[0] ? h->errbuf : curl_easy_strerror(cc), buf, len);
}

/*
 * Perform one request on the prepared handle, with the -W retry loop. -W
 * is one deadline for the whole run, counted from its first request: a
 * server that stays down is waited for once, not once per request.
 */
static int perform(scep_http *h, const char *url, const char *opname,
		   struct scep_buf *reply)
{
	struct sink s = { .b = reply, .max = h->max_response };
	CURLcode cc;
	char *ct = NULL, *target = NULL;
	char shown[512], err[CURL_ERROR_SIZE + 64], redir[600], hint[400];
	long status = 0;
	int rc, attempt = 0;

	h->sent = 0;
	curl_easy_setopt(h->curl, CURLOPT_URL, url);
	curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, sink_write);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, h->errbuf);
	curl_easy_setopt(h->curl, CURLOPT_XFERINFOFUNCTION, xfer_check_stop);
	curl_easy_setopt(h->curl, CURLOPT_NOPROGRESS, 0L);
	/* CURLOPT_NOSIGNAL stays 0: curl then ignores SIGPIPE around its own
	 * calls, so a server closing mid-write cannot kill the process */
	curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT, h->connect_timeout);
	curl_easy_setopt(h->curl, CURLOPT_TIMEOUT, h->timeout);
	curl_easy_setopt(h->curl, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h->curl, CURLOPT_MAXREDIRS, (long)SCEP_HTTP_MAX_REDIRS);
	curl_easy_setopt(h->curl, CURLOPT_POSTREDIR, (long)CURL_REDIR_POST_ALL);
	curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	/* https stays https: a redirect to http would drop TLS unnoticed */
	curl_easy_setopt(h->curl, CURLOPT_REDIR_PROTOCOLS_STR,
			 h->https ? "https" : "http,https");
	curl_easy_setopt(h->curl, CURLOPT_USERAGENT, "scep-agent/" SA_VERSION);
	if (h->proxy)
		curl_easy_setopt(h->curl, CURLOPT_PROXY, h->proxy);
	if (h->ca_bundle)
		curl_easy_setopt(h->curl, CURLOPT_CAINFO, h->ca_bundle);
	curl_easy_setopt(h->curl, CURLOPT_SSL_VERIFYPEER, h->insecure ? 0L : 1L);
	curl_easy_setopt(h->curl, CURLOPT_SSL_VERIFYHOST, h->insecure ? 0L : 2L);

	if (h->wait_connect > 0 && h->wait_until == 0)
		h->wait_until = now_s() + (double)h->wait_connect;
	for (;;) {
		double left = 0;

		h->errbuf[0] = '\0';
		reply->len = 0;
		s.too_big = 0;
		attempt++;
		cc = curl_easy_perform(h->curl);
		if (request_went_out(h, cc))
			h->sent = 1;
		/*
		 * a timeout before the connection was made: no connectivity.
		 * Never one on a kept-alive connection: the request went out,
		 * and must not be sent again.
		 */
		if (cc == CURLE_OPERATION_TIMEDOUT && h->wait_connect > 0 && !was_connected(h))
			cc = CURLE_COULDNT_CONNECT;
		if (cc == CURLE_OK || !connect_error(cc) || h->wait_connect <= 0 ||
		    (left = h->wait_until - now_s()) <= 0)
			break;
		sa_verbose("%s: %s; retrying (waiting %.0f s more for connectivity, "
			   "-W %ld)", sa_url_shown(url, shown, sizeof(shown)),
			   curl_error(h, cc, err, sizeof(err)), left < 1 ? 1 : left,
			   h->wait_connect);
		/* 1 s between the first tries, then 5 s, never past the deadline */
		if (sa_intr_sleep(attempt < 5 || left <= 1 ? 1 :
				  left < 5 ? (unsigned)left : 5) != 0)
			break;
	}
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
	h->last_status = status;
	redirect_note(h, redir, sizeof(redir));
	if (cc != CURLE_OK && sa_intr_caught())
		return sa_fail_noossl(SA_EINTR, "%s request to %s%s stopped by %s",
				      opname, h->url_shown, redir,
				      sa_intr_name(sa_intr_caught()));
	/*
	 * A redirect curl refused for its scheme: the transfer stops with the
	 * refused URL as the effective one, and nothing was sent to it.
	 */
	if (cc == CURLE_UNSUPPORTED_PROTOCOL && h->https && redir[0] &&
	    curl_easy_getinfo(h->curl, CURLINFO_EFFECTIVE_URL, &target) == CURLE_OK &&
	    target != NULL && strncasecmp(target, "https://", 8) != 0)
		return sa_fail_noossl(SA_EREPLY, "%s request to %s was redirected to %s, "
				      "which is not https: refused, the reply would "
				      "not be protected by TLS; give the https URL "
				      "that serves SCEP itself (-u), or have the "
				      "server's redirect fixed", opname, h->url_shown,
				      sa_url_shown(target, shown, sizeof(shown)));
	if (cc == CURLE_TOO_MANY_REDIRECTS)
		return sa_fail_noossl(SA_ENET, "%s request to %s failed: more than %d "
				      "redirects%s; is the URL (-u) right? (a redirect "
				      "loop on the server)", opname, h->url_shown,
				      SCEP_HTTP_MAX_REDIRS, redir);
	if (cc != CURLE_OK) {
		if (s.too_big)
			return sa_fail_noossl(SA_EREPLY,
				"%s reply from %s%s is larger than %zu bytes; is the URL a SCEP server?",
				opname, h->url_shown, redir, h->max_response);
		if (h->proxy != NULL && (connect_error(cc) || cc == CURLE_OPERATION_TIMEDOUT ||
					 cc == CURLE_RECV_ERROR || cc == CURLE_SEND_ERROR))
			return sa_fail_noossl(SA_ENET, "%s request to %s%s through the proxy %s "
					      "failed: %s; is the proxy (-p) running and "
					      "reachable, and the server behind it?", opname,
					      h->url_shown, redir, h->proxy_shown,
					      curl_error(h, cc, err, sizeof(err)));
		if (connect_error(cc) && h->wait_connect > 0)
			return sa_fail_noossl(SA_ENET, "%s request to %s%s failed: %s; no "
					      "connection within the %ld s of -W: is the "
					      "server running and the URL (-u) right?",
					      opname, h->url_shown, redir,
					      curl_error(h, cc, err, sizeof(err)), h->wait_connect);
		return sa_fail_noossl(SA_ENET, "%s request to %s%s failed: %s%s", opname,
				      h->url_shown, redir, curl_error(h, cc, err, sizeof(err)),
				      fail_hint(h, cc, hint, sizeof(hint)));
	}
	if (redir[0])
		sa_verbose("%s:%s", opname, redir);
	if (curl_easy_getinfo(h->curl, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct) {
		char esc[256];

		/* the server's words: escaped once here for every message */
		reply->content_type = strdup(sa_esc_str(ct, esc, sizeof(esc)));
		if (reply->content_type == NULL)
			return sa_fail_noossl(SA_ENOMEM, "out of memory");
	}
	if (reply->data == NULL) {
		reply->data = calloc(1, 1);
		if (reply->data == NULL)
			return sa_fail_noossl(SA_ENOMEM, "out of memory");
	}
	sa_debug("%s: HTTP %ld, %zu bytes, Content-Type %s", opname, status,
		 reply->len, reply->content_type ? reply->content_type : "(none)");
	if (status != 200) {
		char title[160];

		html_summary(reply, title, sizeof(title));
		rc = sa_fail_noossl(SA_ENET, "%s request to %s%s failed: HTTP status %ld%s%s%s",
				    opname, h->url_shown, redir, status, title[0] ? " (" : "",
				    title, title[0] ? ")" : "");
		return rc;
	}
	if (is_html(reply)) {
		char title[160];

		html_summary(reply, title, sizeof(title));
		return sa_fail_noossl(SA_EREPLY,
			"%s at %s%s returned an HTML page%s%s%s instead of a SCEP reply; "
			"check the URL (-u): it must name the SCEP endpoint, not a web page",
			opname, h->url_shown, redir, title[0] ? " (\"" : "", title,
			title[0] ? "\")" : "");
	}
	return SA_OK;
}

static char *op_url(const scep_http *h, const char *operation, const char *msg_esc)
{
	char *u = NULL;
	const char *sep = strchr(h->url, '?') ? "&" : "?";

	if (asprintf(&u, "%s%soperation=%s%s%s", h->url, sep, operation,
		     msg_esc ? "&message=" : "", msg_esc ? msg_esc : "") < 0)
		return NULL;
	return u;
}

/* GET url?operation=OP[&message=MSG]; see scep.h. */
int scep_http_get(scep_http *h, const char *operation, const char *message,
		  struct scep_buf *reply)
{
	char *esc = NULL, *url = NULL;
	int rc = SA_ENOMEM;

	memset(reply, 0, sizeof(*reply));
	if (message && (esc = scep_url_escape(message)) == NULL)
		goto out;
	if ((url = op_url(h, operation, esc)) == NULL)
		goto out;
	curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
	if (sa_log_level() >= SA_LOG_DEBUG) {
		char shown[256];

		sa_debug("GET %s", sa_url_shown(url, shown, sizeof(shown)));
	}
	rc = perform(h, url, operation, reply);
	if (rc != SA_OK)
		scep_buf_clear(reply);
out:
	if (rc == SA_ENOMEM)
		sa_fail_noossl(rc, "out of memory building the %s URL", operation);
	free(esc);
	free(url);
	return rc;
}

/* POST url?operation=OP with a DER body; see scep.h. */
int scep_http_post(scep_http *h, const char *operation,
		   const unsigned char *body, size_t len,
		   struct scep_buf *reply)
{
	struct curl_slist *hdr = NULL, *t;
	char *url = NULL;
	int rc = SA_ENOMEM;

	memset(reply, 0, sizeof(*reply));
	if ((url = op_url(h, operation, NULL)) == NULL)
		goto out;
	t = curl_slist_append(NULL, "Content-Type: application/x-pki-message");
	if (t == NULL)
		goto out;
	hdr = t;
	curl_easy_setopt(h->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, (const char *)body);
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdr);
	if (sa_log_level() >= SA_LOG_DEBUG) {
		char shown[512];

		sa_debug("POST %s (%zu bytes)", sa_url_shown(url, shown, sizeof(shown)), len);
	}
	rc = perform(h, url, operation, reply);
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, NULL);
	if (rc != SA_OK)
		scep_buf_clear(reply);
out:
	if (rc == SA_ENOMEM)
		sa_fail_noossl(rc, "out of memory preparing the %s POST", operation);
	curl_slist_free_all(hdr);
	free(url);
	return rc;
}

/*
 * test_scep_http.c - the transport and the client round trips against a
 * tiny HTTP server in a thread of this test (127.0.0.1, ephemeral port):
 * GET escaping on the wire, POST headers, HTTP errors, HTML pages, the
 * size cap, timeouts, connection reuse, -W (one deadline per run), a
 * GetCACaps that fails for want of a connection (an error, not "no caps"),
 * and scep_enroll's polling limits with a fake CA that answers PENDING.
 * Messages never show URL or proxy credentials, nor a server's control
 * characters; whether a PKIOperation may have reached the server is told
 * apart from one that never left (scep_client_request_sent).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"
#include "scep.h"
#include "scep_int.h" /* scep_http_sent */
#include "sa_err.h"
#include "sa_intr.h"
#include "sa_log.h"
#include "test_scep_util.h"

/* ---- a small HTTP/1.1 server -------------------------------------- */

enum mode {
	M_CAPS, M_CAPS_404, M_HTML_200, M_HTML_500, M_BIG, M_SILENT, M_CA, M_FAKE_CA,
	M_GARBAGE_CA, M_CAPS_DROP, M_CTYPE_ESC, M_PKI_DROP,
};

static struct {
	int lfd;
	int port;
	volatile int stop;
	volatile int mode;
	int connections;
	int pending_left;   /* M_FAKE_CA: PENDING replies left; -1 forever */
	int status_fail;    /* M_FAKE_CA: FAILURE instead */
	const char *tid;    /* M_FAKE_CA: this transactionID instead of the request's */
	char last_line[16384];
	char last_ctype[128];
	size_t last_body_len;
	int last_msg_type;
	pthread_mutex_t mu;
} srv;

static EVP_PKEY *ca_key, *cli_key;
static X509 *ca_cert, *cli_cert;
static X509_REQ *cli_csr;
static unsigned char *ca_der;
static int ca_der_len;

static void send_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void reply(int fd, int status, const char *ctype, const void *body, size_t len)
{
	char hdr[256];
	int n = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n",
			 status, ctype, len);

	send_all(fd, hdr, (size_t)n);
	send_all(fd, body, len);
}

static int b64val(int c)
{
	const char *t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = strchr(t, c);

	return p && c ? (int)(p - t) : -1;
}

/* message= of a GET line, unescaped and base64-decoded. */
static unsigned char *get_message(const char *line, size_t *len)
{
	const char *m = strstr(line, "message=");
	char *un, *o;
	unsigned char *out;
	size_t n = 0;
	int bits = 0;
	unsigned acc = 0;

	if (m == NULL)
		return NULL;
	m += 8;
	un = o = calloc(1, strlen(m) + 1);
	for (; *m && *m != ' ' && *m != '&'; m++) {
		if (*m == '%') {
			unsigned v;

			sscanf(m + 1, "%2x", &v);
			*o++ = (char)v;
			m += 2;
		} else {
			*o++ = *m;
		}
	}
	out = malloc(strlen(un));
	for (o = un; *o && *o != '='; o++) {
		int v = b64val(*o);

		if (v < 0)
			break;
		acc = ((acc << 6) | (unsigned)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(acc >> bits);
		}
	}
	free(un);
	*len = n;
	return out;
}

/* The fake CA: answer a pkiMessage with PENDING/FAILURE/SUCCESS. */
static void fake_ca(int fd, const unsigned char *msg, size_t len)
{
	struct parsed_req p;
	struct rep r = { .signer = ca_cert, .signer_key = ca_key, .md = EVP_sha1() };
	unsigned char *der = NULL;
	int n;
	STACK_OF(X509) *bag = NULL;

	ca_read(msg, len, ca_cert, ca_key, &p);
	pthread_mutex_lock(&srv.mu);
	srv.last_msg_type = p.mtype ? atoi(p.mtype) : -1;
	r.tid = srv.tid ? srv.tid : p.tid;
	r.rnonce = p.nonce;
	r.rnonce_len = 16;
	if (srv.status_fail) {
		r.status = "2";
		r.fail_info = "1";
	} else if (srv.pending_left != 0) {
		r.status = "3";
		if (srv.pending_left > 0)
			srv.pending_left--;
	} else {
		r.status = "0";
		bag = tu_stack(ca_cert, NULL, NULL);
		r.certs = bag;
		r.enc_to = p.signer;
		r.cipher = EVP_des_cbc();
	}
	pthread_mutex_unlock(&srv.mu);
	n = ca_reply(&r, &der);
	reply(fd, 200, "application/x-pki-message", der, (size_t)n);
	OPENSSL_free(der);
	sk_X509_pop_free(bag, X509_free);
	parsed_req_free(&p);
}

static void handle(int fd, const char *line, const char *ctype,
		   const unsigned char *body, size_t blen)
{
	static char big[100000];
	const char *caps = "POSTPKIOperation\nSHA-256\nAES\n";
	int mode = srv.mode;

	if (strstr(line, "GetCACaps") && mode == M_CAPS_DROP) {
		/* the connection breaks: no HTTP status at all */
		shutdown(fd, SHUT_RDWR);
		return;
	}
	if (mode == M_CAPS_DROP)
		mode = M_FAKE_CA;
	if (mode == M_PKI_DROP && strstr(line, "PKIOperation")) {
		/* the request arrived whole; the connection breaks, no reply */
		shutdown(fd, SHUT_RDWR);
		return;
	}
	if (mode == M_PKI_DROP)
		mode = M_FAKE_CA;
	if (strstr(line, "GetCACert") && (mode == M_CA || mode == M_FAKE_CA)) {
		reply(fd, 200, "application/x-x509-ca-cert", ca_der, (size_t)ca_der_len);
		return;
	}
	switch (mode) {
	case M_CAPS:
		reply(fd, 200, "text/plain", caps, strlen(caps));
		break;
	case M_CAPS_404:
		reply(fd, 404, "text/html", "<html><title>Not Found</title></html>", 37);
		break;
	case M_HTML_200:
		reply(fd, 200, "text/html; charset=utf-8",
		      "<html><head><title>Login\n required</title></head></html>", 55);
		break;
	case M_HTML_500:
		reply(fd, 500, "text/html",
		      "<!DOCTYPE html><html><body><h1>Internal Error</h1></body></html>", 64);
		break;
	case M_BIG:
		memset(big, 'A', sizeof(big));
		reply(fd, 200, "application/octet-stream", big, sizeof(big));
		break;
	case M_SILENT:
		sleep(3);
		break;
	case M_CTYPE_ESC:
		reply(fd, 200, "application/x-\x1b[2Jevil", "x", 1);
		break;
	case M_GARBAGE_CA:
		reply(fd, 200, "application/x-x509-ca-cert", "garbage", 7);
		break;
	case M_CA:
	case M_FAKE_CA:
		if (strstr(line, "GetCACaps")) {
			const char *c = mode == M_FAKE_CA ? "DES3\nSHA-1\n" : caps;

			reply(fd, 200, "text/plain", c, strlen(c));
		} else if (strncmp(line, "POST", 4) == 0) {
			fake_ca(fd, body, blen);
		} else {
			size_t n = 0;
			unsigned char *m = get_message(line, &n);

			fake_ca(fd, m, n);
			free(m);
		}
		break;
	}
	(void)ctype;
}

/* Serve one connection until the client closes it. */
static void serve(int fd)
{
	char buf[65536];
	size_t have = 0;

	for (;;) {
		char *end, *cl, line[16384], ctype[128] = "";
		size_t hlen, blen = 0;
		ssize_t r;

		while ((end = memmem(buf, have, "\r\n\r\n", 4)) == NULL) {
			struct pollfd pfd = { fd, POLLIN, 0 };

			if (srv.stop || have == sizeof(buf))
				return;
			if (poll(&pfd, 1, 100) <= 0)
				continue;
			r = recv(fd, buf + have, sizeof(buf) - have, 0);
			if (r <= 0)
				return;
			have += (size_t)r;
		}
		hlen = (size_t)(end - buf) + 4;
		snprintf(line, sizeof(line), "%.*s", (int)(strcspn(buf, "\r")), buf);
		buf[hlen - 1] = '\0';
		cl = strcasestr(buf, "Content-Length:");
		if (cl)
			blen = strtoul(cl + 15, NULL, 10);
		cl = strcasestr(buf, "Content-Type:");
		if (cl)
			snprintf(ctype, sizeof(ctype), "%.*s", (int)strcspn(cl + 14, "\r"), cl + 14);
		while (have < hlen + blen && have < sizeof(buf)) {
			r = recv(fd, buf + have, sizeof(buf) - have, 0);
			if (r <= 0)
				return;
			have += (size_t)r;
		}
		pthread_mutex_lock(&srv.mu);
		snprintf(srv.last_line, sizeof(srv.last_line), "%s", line);
		snprintf(srv.last_ctype, sizeof(srv.last_ctype), "%s", ctype);
		srv.last_body_len = blen;
		pthread_mutex_unlock(&srv.mu);
		handle(fd, line, ctype, (unsigned char *)buf + hlen, blen);
		memmove(buf, buf + hlen + blen, have - hlen - blen);
		have -= hlen + blen;
	}
}

static void *server_main(void *arg)
{
	(void)arg;
	while (!srv.stop) {
		struct pollfd pfd = { srv.lfd, POLLIN, 0 };
		int fd;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		fd = accept(srv.lfd, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&srv.mu);
		srv.connections++;
		pthread_mutex_unlock(&srv.mu);
		serve(fd);
		close(fd);
	}
	return NULL;
}

static int listen_on(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 8) != 0) {
		close(fd);
		return -1;
	}
	getsockname(fd, (struct sockaddr *)&a, &al);
	srv.port = ntohs(a.sin_port);
	return fd;
}

/* ---- tests ---------------------------------------------------------- */

static char url[64];

static scep_http *transport(long timeout, size_t max)
{
	struct scep_http_opts o = { .url = url, .timeout = timeout, .max_response = max };
	scep_http *h = NULL;

	scep_http_new(&o, &h);
	return h;
}

static void test_transport(void)
{
	struct scep_buf b;
	scep_http *h = transport(0, 0);
	unsigned char body[3] = { 0x30, 0x01, 0x00 };
	int rc, conns;

	ok(h != NULL, "transport created");
	srv.mode = M_CAPS;
	is_int(scep_http_get(h, "GetCACaps", NULL, &b), SA_OK, "GET GetCACaps");
	is_str(srv.last_line, "GET /scep?operation=GetCACaps HTTP/1.1", "request line");
	is_str(b.content_type, "text/plain", "Content-Type returned");
	ok(b.len == 29 && b.data[b.len] == '\0', "body returned, NUL-terminated");
	scep_buf_clear(&b);

	is_int(scep_http_get(h, "PKIOperation", "MIIB+a/b==", &b), SA_OK, "GET with a message");
	is_str(srv.last_line, "GET /scep?operation=PKIOperation&message=MIIB%2Ba%2Fb%3D%3D HTTP/1.1",
	       "base64 escaped on the wire");
	scep_buf_clear(&b);

	is_int(scep_http_post(h, "PKIOperation", body, sizeof(body), &b), SA_OK, "POST");
	is_str(srv.last_line, "POST /scep?operation=PKIOperation HTTP/1.1", "POST request line");
	is_str(srv.last_ctype, "application/x-pki-message", "POST Content-Type");
	is_int(srv.last_body_len, 3, "POST body length");
	scep_buf_clear(&b);

	is_int(scep_http_get(h, "GetCACaps", NULL, &b), SA_OK, "GET after POST");
	is_str(srv.last_line, "GET /scep?operation=GetCACaps HTTP/1.1", "back to GET");
	scep_buf_clear(&b);
	pthread_mutex_lock(&srv.mu);
	conns = srv.connections;
	pthread_mutex_unlock(&srv.mu);
	is_int(conns, 1, "one connection reused for four requests");

	srv.mode = M_HTML_200;
	rc = scep_http_get(h, "GetCACert", NULL, &b);
	is_int(rc, SA_EREPLY, "HTML page with status 200 refused");
	ok(strstr(sa_errmsg(), "HTML page") && strstr(sa_errmsg(), "Login required") &&
	   strstr(sa_errmsg(), "-u"), "readable message: %s", sa_errmsg());
	ok(b.data == NULL, "reply cleared on error");

	srv.mode = M_HTML_500;
	is_int(scep_http_get(h, "GetCACert", NULL, &b), SA_ENET, "HTTP 500 is a network error");
	ok(strstr(sa_errmsg(), "HTTP status 500") && strstr(sa_errmsg(), "Internal Error"),
	   "status and page heading: %s", sa_errmsg());
	is_int(scep_http_last_status(h), 500, "last status kept");
	scep_http_free(h);

	h = transport(0, 1000);
	srv.mode = M_BIG;
	is_int(scep_http_get(h, "GetCACert", NULL, &b), SA_EREPLY, "reply over the size cap refused");
	ok(strstr(sa_errmsg(), "larger than 1000 bytes") != NULL, "message: %s", sa_errmsg());
	scep_http_free(h);

	h = transport(1, 0);
	srv.mode = M_SILENT;
	{
		time_t t0 = time(NULL);

		is_int(scep_http_get(h, "GetCACert", NULL, &b), SA_ENET, "silent server: timeout");
		ok(time(NULL) - t0 <= 2, "total timeout honoured");
	}
	scep_http_free(h);

	{
		struct scep_http_opts o = { .url = "" };

		is_int(scep_http_new(&o, &h), SA_EUSAGE, "empty URL refused");
		ok(h == NULL, "no transport");
	}
}

/* URL and proxy credentials never in messages; server text escaped. */
static void test_shown(void)
{
	char curl_url[96];
	struct scep_http_opts o = { .url = curl_url, .timeout = 5 };
	struct scep_buf b;
	scep_http *h = NULL;
	int dead;

	snprintf(curl_url, sizeof(curl_url), "http://scep:Url5ecret@127.0.0.1:%d/scep?"
		 "key=Query5ecret", srv.port);
	scep_http_new(&o, &h);
	srv.mode = M_HTML_500;
	is_int(scep_http_get(h, "GetCACert", NULL, &b), SA_ENET, "HTTP 500 with a URL holding credentials");
	ok(strstr(sa_errmsg(), "http://***@127.0.0.1:") != NULL &&
	   strstr(sa_errmsg(), "key=***") != NULL, "the URL shown without them: %s",
	   sa_errmsg());
	ok(strstr(sa_errmsg(), "Url5ecret") == NULL && strstr(sa_errmsg(), "scep:") == NULL &&
	   strstr(sa_errmsg(), "Query5ecret") == NULL, "no password, user or query secret");
	srv.mode = M_CTYPE_ESC;
	is_int(scep_http_get(h, "GetCACert", NULL, &b), SA_OK, "a Content-Type with an ESC");
	is_str(b.content_type, "application/x-\\x1B[2Jevil", "Content-Type kept escaped");
	scep_buf_clear(&b);
	scep_http_free(h);

	/* a proxy with credentials that is down: named without them */
	dead = socket(AF_INET, SOCK_STREAM, 0); /* a port nothing listens on */
	{
		struct sockaddr_in a = { .sin_family = AF_INET };
		socklen_t al = sizeof(a);
		char proxy[96];

		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		bind(dead, (struct sockaddr *)&a, sizeof(a));
		getsockname(dead, (struct sockaddr *)&a, &al);
		snprintf(proxy, sizeof(proxy), "http://pu:Proxy5ecret@127.0.0.1:%d",
			 ntohs(a.sin_port));
		o.proxy = proxy;
		o.url = url;
		scep_http_new(&o, &h);
		is_int(scep_http_get(h, "GetCACaps", NULL, &b), SA_ENET, "proxy down");
		ok(strstr(sa_errmsg(), "proxy http://***@127.0.0.1:") != NULL,
		   "the proxy named without credentials: %s", sa_errmsg());
		ok(strstr(sa_errmsg(), "Proxy5ecret") == NULL && strstr(sa_errmsg(), "pu:") == NULL,
		   "no proxy password or user");
		is_int(scep_http_sent(h), 0, "proxy refused the connection: nothing sent");
		scep_http_free(h);
		o.proxy = "pu:Proxy5ecret@127.0.0.1:1";
		scep_http_new(&o, &h);
		is_int(scep_http_get(h, "GetCACaps", NULL, &b), SA_ENET,
		       "sscep-style proxy user:pass@host:port, down");
		ok(strstr(sa_errmsg(), "proxy ***@127.0.0.1:1 ") != NULL &&
		   strstr(sa_errmsg(), "Proxy5ecret") == NULL, "named without credentials: %s",
		   sa_errmsg());
		scep_http_free(h);
	}
	close(dead);
}

/* Whether a PKIOperation may have reached the server. */
static void test_sent(void)
{
	struct scep_client_opts o = { .http.url = url };
	struct scep_request req = { .type = SCEP_MSG_PKCSREQ, .csr = cli_csr,
				    .signer_key = cli_key, .signer_cert = cli_cert };
	struct scep_ca ca = { 0 }, ec_ca = { 0 };
	struct scep_reply r;
	scep_client *c = NULL;
	EVP_PKEY *ec = tu_ec();
	X509 *ec_cert = tu_cert("EC RA", ec, ca_cert, ca_key, "keyEncipherment", 0);

	srv.mode = M_FAKE_CA;
	srv.pending_left = 0;
	scep_client_new(&o, &c);
	is_int(scep_get_ca(c, &ca), SA_OK, "GetCACert");
	is_int(scep_client_request_sent(c), 0, "a new client has sent no PKIOperation");
	is_int(scep_client_get_caps(c, &(unsigned){ 0 }), SA_OK, "caps");
	is_int(scep_client_request_sent(c), 0, "GetCACert and GetCACaps are not a request");

	/* an EC encryption certificate: the message cannot be built */
	ec_ca.certs = tu_stack(ca_cert, NULL, NULL);
	scep_ca_select(&ec_ca, NULL, ec_cert);
	srv.last_msg_type = 0;
	ok(scep_transact(c, &ec_ca, &req, &r) < 0, "EC encryption certificate: fails (%s)",
	   sa_errmsg());
	is_int(srv.last_msg_type, 0, "no PKIOperation arrived");
	is_int(scep_client_request_sent(c), 0, "not sent");

	srv.mode = M_PKI_DROP;
	is_int(scep_transact(c, &ca, &req, &r), SA_ENET,
	       "the connection breaks after the request: a network error");
	is_int(scep_client_request_sent(c), 1, "but the request may have reached the CA");
	scep_client_free(c);

	scep_client_new(&o, &c);
	srv.mode = M_FAKE_CA;
	/* a transactionID with terminal controls: refused, shown escaped */
	srv.tid = "\x1b]0;owned\x07\x1b[2J";
	is_int(scep_transact(c, &ca, &req, &r), SA_EREPLY, "a foreign transactionID refused");
	ok(strstr(sa_errmsg(), "transactionID \\x1B]0;owned\\x07\\x1B[2J is not ours") != NULL,
	   "shown escaped: %s", sa_errmsg());
	ok(strchr(sa_errmsg(), '\x1b') == NULL && strchr(sa_errmsg(), '\x07') == NULL,
	   "no control character in the message");
	srv.tid = NULL;
	is_int(scep_transact(c, &ca, &req, &r), SA_OK, "a complete round trip");
	is_int(scep_client_request_sent(c), 1, "sent");
	scep_reply_clear(&r);
	scep_client_free(c);
	scep_ca_clear(&ca);
	scep_ca_clear(&ec_ca);
	X509_free(ec_cert);
	EVP_PKEY_free(ec);
}

static void test_client(void)
{
	struct scep_client_opts o = { .http.url = url };
	scep_client *c = NULL;
	unsigned caps = 99;
	struct scep_ca ca = { 0 };

	is_int(scep_client_new(&o, &c), SA_OK, "client");
	srv.mode = M_CAPS_404;
	is_int(scep_get_caps(c, &caps), SA_OK, "GetCACaps 404 is not an error");
	is_int(caps, 0, "404: no caps");
	srv.mode = M_CAPS;
	is_int(scep_get_caps(c, &caps), SA_OK, "GetCACaps");
	is_int(caps, SCEP_CAP_POST | SCEP_CAP_SHA256 | SCEP_CAP_AES, "caps parsed");
	is_int(scep_client_caps(c), caps, "caps kept");
	srv.mode = M_GARBAGE_CA;
	is_int(scep_get_ca(c, &ca), SA_EREPLY, "garbage GetCACert refused");
	ok(ca.certs == NULL, "nothing returned");
	srv.mode = M_CA;
	is_int(scep_get_ca(c, &ca), SA_OK, "GetCACert");
	ok(ca.ca && X509_cmp(ca.ca, ca_cert) == 0, "CA certificate");
	scep_ca_clear(&ca);
	scep_client_free(c);
}

/*
 * GetCACaps that fails for want of a connection is an error that the
 * request needing the caps returns: no silent GET + 3DES + SHA-1.
 */
static void test_caps_outage(void)
{
	struct scep_client_opts o = { .http.url = url };
	struct scep_request req = { .type = SCEP_MSG_PKCSREQ, .csr = cli_csr,
				    .signer_key = cli_key, .signer_cert = cli_cert };
	scep_client *c = NULL;
	struct scep_ca ca = { 0 };
	struct scep_reply r;
	unsigned caps = 99;
	int rc;

	srv.mode = M_CA;
	scep_client_new(&o, &c);
	is_int(scep_get_ca(c, &ca), SA_OK, "GetCACert");
	srv.mode = M_CAPS_DROP;
	srv.last_msg_type = 0;
	srv.pending_left = 0;
	rc = scep_transact(c, &ca, &req, &r);
	is_int(rc, SA_ENET, "GetCACaps without a reply: the transaction fails");
	ok(strstr(sa_errmsg(), "GetCACaps") != NULL, "the message names GetCACaps: %s",
	   sa_errmsg());
	is_int(srv.last_msg_type, 0, "no PKIOperation was sent with guessed caps");
	ok(strstr(srv.last_line, "GetCACaps") != NULL, "the last request was GetCACaps");
	if (rc == SA_OK)
		scep_reply_clear(&r);
	is_int(scep_client_get_caps(c, &caps), SA_ENET, "the caps error is kept");
	is_int(caps, 0, "no caps with it");
	is_int(scep_client_caps(c), 0, "scep_client_caps: 0");
	is_int(scep_transact(c, &ca, &req, &r), SA_ENET, "a second transaction fails too");
	is_int(srv.last_msg_type, 0, "still no PKIOperation");
	scep_client_free(c);

	/* the caps error is not forever: a fresh client against a CA that works */
	srv.mode = M_FAKE_CA;
	scep_client_new(&o, &c);
	is_int(scep_transact(c, &ca, &req, &r), SA_OK, "with GetCACaps answered: SUCCESS");
	is_int(srv.last_msg_type, SCEP_MSG_PKCSREQ, "PKCSReq sent");
	scep_reply_clear(&r);
	scep_ca_clear(&ca);
	scep_client_free(c);
}

static int pending_calls;
static unsigned slept;
static unsigned fake_sleep(unsigned s)
{
	slept += s;
	return 0;
}

static unsigned interrupted_sleep(unsigned s)
{
	return s; /* as if a signal arrived at once */
}

static void on_pending(void *arg, int n, const char *tid)
{
	(void)arg;
	(void)n;
	(void)tid;
	pending_calls++;
}

static void test_enroll(void)
{
	struct scep_client_opts o = { .http.url = url };
	scep_client *c = NULL;
	struct scep_ca ca = { 0 };
	struct scep_request req = { .type = SCEP_MSG_PKCSREQ, .csr = cli_csr,
				    .signer_key = cli_key, .signer_cert = cli_cert };
	struct scep_poll_opts po = { .interval = 7, .max_count = 3, .on_pending = on_pending };
	struct scep_reply r;
	X509 *got = NULL;

	scep_enroll_sleep = fake_sleep;
	srv.mode = M_FAKE_CA;
	scep_client_new(&o, &c);
	is_int(scep_get_ca(c, &ca), SA_OK, "GetCACert from the fake CA");

	srv.pending_left = -1;
	is_int(scep_enroll(c, &ca, &req, &po, &r), SA_OK, "always PENDING: not an error");
	is_int(r.status, SCEP_STATUS_PENDING, "result PENDING after the limits");
	is_int(pending_calls, 4, "on_pending after the request and each of 3 polls");
	is_int(slept, 21, "slept 3 x 7 s");
	is_int(srv.last_msg_type, SCEP_MSG_CERTPOLL, "last message a CertPoll");
	ok(strstr(srv.last_line, "GET ") == srv.last_line, "GET when POST is not offered");
	scep_reply_clear(&r);

	srv.pending_left = 2;
	slept = 0;
	po.max_count = 0;
	is_int(scep_enroll(c, &ca, &req, &po, &r), SA_OK, "PENDING twice, then SUCCESS");
	is_int(r.status, SCEP_STATUS_SUCCESS, "SUCCESS");
	is_int(slept, 14, "two waits");
	ok(sk_X509_num(r.certs) == 1, "certificate delivered in a DES envelope");
	scep_reply_clear(&r);

	srv.pending_left = 0;
	po.resume = 1;
	is_int(scep_enroll(c, &ca, &req, &po, &r), SA_OK, "resume");
	is_int(srv.last_msg_type, SCEP_MSG_CERTPOLL, "resume starts with CertPoll");
	is_int(r.status, SCEP_STATUS_SUCCESS, "resumed to SUCCESS");
	scep_reply_clear(&r);
	po.resume = 0;

	srv.pending_left = -1;
	slept = 0;
	po.max_time = 20; /* 7 + 7 fit, a third wait would pass 20 s... */
	po.max_count = 0;
	is_int(scep_enroll(c, &ca, &req, &po, &r), SA_OK, "max time");
	is_int(r.status, SCEP_STATUS_PENDING, "PENDING when -T would be exceeded");
	is_int(slept, 14, "two waits of 7 s fit in -T 20, a third does not");
	scep_reply_clear(&r);
	po.max_time = 0;

	scep_enroll_sleep = interrupted_sleep;
	po.max_count = 10;
	is_int(scep_enroll(c, &ca, &req, &po, &r), SA_OK, "interrupted wait");
	is_int(r.status, SCEP_STATUS_PENDING, "a signal ends polling with PENDING");
	scep_reply_clear(&r);
	scep_enroll_sleep = fake_sleep;

	srv.status_fail = 1;
	is_int(scep_enroll(c, &ca, &req, &po, &r), SA_OK, "FAILURE is a result");
	is_int(r.status, SCEP_STATUS_FAILURE, "FAILURE");
	is_int(r.fail_info, SCEP_FAIL_BADMESSAGECHECK, "badMessageCheck");
	scep_reply_clear(&r);
	srv.status_fail = 0;

	srv.pending_left = 0;
	is_int(scep_transact(c, &ca, &req, &r), SA_OK, "one transaction");
	is_int(scep_reply_find_cert(&r, ca_key, &got), SA_OK, "certificate from the bag");
	X509_free(got);
	scep_reply_clear(&r);

	scep_ca_clear(&ca);
	scep_client_free(c);
}

/* -W: the server appears after a while, on the same port */
static void *late_server(void *arg)
{
	struct timespec ts = { 1, 500000000 };

	(void)arg;
	nanosleep(&ts, NULL);
	srv.lfd = listen_on(srv.port);
	if (srv.lfd < 0)
		return NULL;
	srv.stop = 0;
	return server_main(NULL);
}

static void test_wait(pthread_t first)
{
	struct scep_http_opts o = { .url = url, .timeout = 5 };
	scep_http *h = NULL;
	struct scep_buf b;
	pthread_t t;
	time_t t0;
	int rc;

	/* a client that has its caps and the CA certificate, then the server stops */
	{
		struct scep_client_opts co = { .http.url = url };
		struct scep_request req = { .type = SCEP_MSG_PKCSREQ, .csr = cli_csr,
					    .signer_key = cli_key, .signer_cert = cli_cert };
		struct scep_ca ca = { 0 };
		struct scep_reply r;
		scep_client *c = NULL;

		srv.mode = M_FAKE_CA;
		scep_client_new(&co, &c);
		is_int(scep_get_ca(c, &ca), SA_OK, "GetCACert before the server stops");
		is_int(scep_client_get_caps(c, &(unsigned){ 0 }), SA_OK, "GetCACaps too");
		/* stop the server, keep its port */
		srv.stop = 1;
		pthread_join(first, NULL);
		close(srv.lfd);
		is_int(scep_transact(c, &ca, &req, &r), SA_ENET,
		       "server down at PKIOperation time: a network error");
		is_int(scep_client_request_sent(c), 0,
		       "connection refused: the request never left");
		scep_client_free(c);
		scep_ca_clear(&ca);
	}

	scep_http_new(&o, &h);
	is_int(scep_http_get(h, "GetCACaps", NULL, &b), SA_ENET, "server down: network error");
	ok(strstr(sa_errmsg(), "is the server running") != NULL, "message: %s", sa_errmsg());
	scep_http_free(h);

	o.wait_connect = 10;
	scep_http_new(&o, &h);
	srv.mode = M_CAPS;
	pthread_create(&t, NULL, late_server, NULL);
	t0 = time(NULL);
	rc = scep_http_get(h, "GetCACaps", NULL, &b);
	is_int(rc, SA_OK, "-W 10: waited for the server to come up (%s)", rc ? sa_errmsg() : "");
	ok(time(NULL) - t0 >= 1, "it did have to wait");
	scep_buf_clear(&b);
	scep_http_free(h);
	srv.stop = 1;
	pthread_join(t, NULL);
	close(srv.lfd);

	/* -W is one deadline for the run, not one per request */
	o.wait_connect = 2;
	scep_http_new(&o, &h);
	t0 = time(NULL);
	is_int(scep_http_get(h, "GetCACaps", NULL, &b), SA_ENET, "-W 2, server down: gives up");
	ok(time(NULL) - t0 >= 1, "after waiting (%ld s)", (long)(time(NULL) - t0));
	ok(strstr(sa_errmsg(), "-W") != NULL, "the message says -W was waited for: %s",
	   sa_errmsg());
	t0 = time(NULL);
	is_int(scep_http_get(h, "PKIOperation", "x", &b), SA_ENET, "next request fails too");
	ok(time(NULL) - t0 <= 1, "at once: the -W wait is not run again (%ld s)",
	   (long)(time(NULL) - t0));
	scep_http_free(h);
}

/* A stop signal during GetCACaps stops the transaction there. */
static void test_caps_stopped(void)
{
	struct scep_client_opts o = { .http.url = url };
	struct scep_request req = { .type = SCEP_MSG_PKCSREQ, .csr = cli_csr,
				    .signer_key = cli_key, .signer_cert = cli_cert };
	struct scep_ca ca = { 0 };
	struct scep_reply r;
	scep_client *c = NULL;

	ca.certs = sk_X509_new_null();
	X509_up_ref(ca_cert);
	sk_X509_push(ca.certs, ca_cert);
	scep_ca_select(&ca, NULL, NULL);
	sa_intr_install();
	raise(SIGTERM);
	scep_client_new(&o, &c);
	is_int(scep_transact(c, &ca, &req, &r), SA_EINTR, "SIGTERM: SA_EINTR, not swallowed");
	ok(strstr(sa_errmsg(), "GetCACaps") && strstr(sa_errmsg(), "SIGTERM"),
	   "the message names GetCACaps and the signal: %s", sa_errmsg());
	scep_client_free(c);
	scep_ca_clear(&ca);
}

int main(void)
{
	pthread_t t;

	sa_log_init("test_scep_http", SA_LOG_ERR, 0);
	scep_crypto_init();
	pthread_mutex_init(&srv.mu, NULL);
	ca_key = tu_rsa();
	cli_key = tu_rsa();
	ca_cert = tu_cert("Fake CA", ca_key, NULL, NULL, NULL, 1);
	ca_der_len = i2d_X509(ca_cert, &ca_der);
	cli_csr = tu_csr("client", cli_key);
	scep_selfsigned_new(cli_csr, cli_key, EVP_sha256(), &cli_cert);

	srv.lfd = listen_on(0);
	if (srv.lfd < 0) {
		ok(0, "cannot listen on 127.0.0.1");
		return tap_done();
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/scep", srv.port);
	pthread_create(&t, NULL, server_main, NULL);

	test_transport();
	test_client();
	test_shown();
	test_sent();
	test_caps_outage();
	test_enroll();
	test_wait(t);
	test_caps_stopped(); /* last: the stop request stays */

	OPENSSL_free(ca_der);
	X509_free(ca_cert);
	X509_free(cli_cert);
	X509_REQ_free(cli_csr);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(cli_key);
	return tap_done();
}

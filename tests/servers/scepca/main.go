// scepca - a test SCEP CA for scep-agent's integration tests, built on
// Debian's golang-github-micromdm-scep-dev.  See ../README.md.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.mozilla.org/pkcs7"
)

const stockCaps = "Renewal\nSHA-1\nSHA-256\nAES\nDES3\nSCEPStandard\nPOSTPKIOperation"

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "scepca: "+format+"\n", args...)
	os.Exit(2)
}

// writeFileAtomic writes via a temporary file and rename, so a reader
// polling for the file never sees it half written.
func writeFileAtomic(path, content string) {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0644); err != nil {
		die("%v", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		die("%v", err)
	}
}

func main() {
	var (
		dir        = flag.String("dir", "", "CA directory (keys, certificates, depot); created if missing (required)")
		ipv6       = flag.Bool("6", false, "listen on [::1] instead of 127.0.0.1")
		port       = flag.Int("port", 0, "TCP port (0: ephemeral)")
		portFile   = flag.String("port-file", "", "write \"port N\" here once listening")
		pidFile    = flag.String("pid-file", "", "write the process id here")
		logFile    = flag.String("log", "", "append one JSON line per request here")
		challenge  = flag.String("challenge", "", "require this challengePassword")
		renewNoCh  = flag.Bool("renew-no-challenge", false, "accept requests signed by a valid certificate this CA issued without the challenge")
		pending    = flag.Int("pending", 0, "reply PENDING N times (the request and the first N-1 polls), then SUCCESS")
		failName   = flag.String("fail", "", "reply FAILURE to every PKIOperation: badAlg|badMessageCheck|badRequest|badTime|badCertId")
		failText   = flag.String("fail-text", "", "failInfoText sent with -fail")
		ra         = flag.Bool("ra", false, "separate RA certificates for signing and encryption (NDES style)")
		inter      = flag.Bool("intermediate", false, "issue from an intermediate CA under a root; GetCACert sends both")
		caps       = flag.String("caps", "", "GetCACaps reply; literal \\n separates lines (default: the stock string)")
		nextCA     = flag.Bool("next-ca", false, "create a rollover CA and answer GetNextCACert")
		caValid    = flag.Int("ca-valid", 0, "a new CA certificate is valid from an hour ago until SECS from now (default: 10 years)")
		nextCur    = flag.Bool("next-ca-current", false, "with -next-ca: the rollover CA has taken over (GetCACert, issuing, CertReps; no GetNextCACert)")
		valid      = flag.Int("valid", 0, "validity of issued certificates in seconds (default: stock 365 days)")
		allowRenew = flag.Int("allowrenew", 14, "stock rule: refuse a DN whose valid certificate has more than N days left (0: never refuse)")
		allowEC    = flag.Bool("allow-ec", false, "issue certificates for EC keys in the CSR (the pkiMessage signer must still be RSA)")
		badSig     = flag.Bool("bad-sig", false, "spoil the signature of every CertRep")
		wrongNonce = flag.Bool("wrong-nonce", false, "send a random recipientNonce")
		wrongTid   = flag.Bool("wrong-tid", false, "send a different transactionID")
		wrongType  = flag.Bool("wrong-type", false, "send messageType 19 instead of 3 (CertRep)")
		html       = flag.Bool("html", false, "answer PKIOperation with an HTML error page")
		htmlStatus = flag.Int("html-status", 500, "HTTP status of the -html page")
		replyEnc   = flag.String("reply-cipher", "des", "cipher of the SUCCESS envelope: des (stock)|aes128|aes256")
		replyDig   = flag.String("reply-digest", "sha1", "digest of the CertRep signature: sha1 (stock)|sha256")
		getcaP7    = flag.Bool("getca-p7", false, "GetCACert: a degenerate PKCS#7 even for a single certificate")
		getcaPEM   = flag.Bool("getca-pem", false, "GetCACert: PEM certificate(s) instead of DER")
		getcaType  = flag.String("getca-type", "", "GetCACert: send this Content-Type instead of the right one")
		getcertOth = flag.Bool("getcert-other", false, "GetCert: answer with the CA certificate instead of the one asked for")
		proxy      = flag.Bool("proxy", false, "be a plain-HTTP forward proxy to loopback addresses instead of a CA")
		capsStatus = flag.Int("caps-status", 0, "answer GetCACaps with this HTTP error status (404: a server without GetCACaps; 503: an outage)")
		delay      = flag.Int("delay", 0, "hold every PKIOperation reply back SECS seconds (logged with \"delay\" first)")
		timing     = flag.Bool("timing", false, "log lines get \"us\" (microseconds in the handler) and \"wait_us\" (waiting for the server lock)")
		lifetime   = flag.Int("lifetime", 0, "exit after SECS seconds (a safety net for killed tests; 0: never)")
		rogue      = flag.Bool("rogue", false, "an unrelated self-signed CA (same CN) is appended to GetCACert, signs CertReps, GetNextCACert and the CRL, and issues the certificates")
		rogueIss   = flag.Bool("rogue-issue", false, "only the issued certificates come from the rogue CA (CertReps signed as usual)")
		rogueCRL   = flag.Bool("rogue-crl", false, "only the GetCRL CRL is signed by the rogue CA's key (in the genuine CA's name)")
		resetReply = flag.Bool("reset-reply", false, "GetCACert, PKIOperation: send half the reply, then reset the connection (TCP RST)")
		dribbleMS  = flag.Int("dribble", 0, "GetCACert, PKIOperation: send the reply one byte every MS milliseconds")
		hugeReply  = flag.Int64("huge-reply", 0, "GetCACert, PKIOperation: a reply of BYTES bytes (the real one, then filler)")
		redirLoop  = flag.Bool("redirect-loop", false, "GetCACert, PKIOperation: HTTP 302 to the same URL, every time")
		tlsOn      = flag.Bool("tls", false, "serve HTTPS; the client's CA bundle is written to DIR/tls-ca.pem")
		tlsName    = flag.String("tls-name", "", "with -tls: the server certificate names only this host (DNS name or IP address)")
		tlsExpired = flag.Bool("tls-expired", false, "with -tls: the server certificate expired yesterday")
	)
	flag.Parse()
	if (*dir == "" && !*proxy) || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	cfg := &config{
		challenge: *challenge, renewNoChallenge: *renewNoCh, pending: *pending,
		failText: *failText, replyDigest: *replyDig, badSig: *badSig,
		wrongNonce: *wrongNonce, wrongTid: *wrongTid, wrongType: *wrongType,
		html: *html, htmlStatus: *htmlStatus,
		getcaP7: *getcaP7, getcaPEM: *getcaPEM, getcaType: *getcaType,
		getcertOther: *getcertOth, delay: *delay, capsStatus: *capsStatus, timing: *timing,
		mis: misbehaviour{resetReply: *resetReply, dribble: time.Duration(*dribbleMS) * time.Millisecond,
			hugeReply: *hugeReply, redirectLoop: *redirLoop},
	}
	if *dribbleMS < 0 || *hugeReply < 0 {
		die("-dribble and -huge-reply take a positive number")
	}
	if (*tlsName != "" || *tlsExpired) && !*tlsOn {
		die("-tls-name and -tls-expired need -tls")
	}
	if *nextCur && (!*nextCA || *ra || *inter) {
		die("-next-ca-current needs -next-ca, and goes with neither -ra nor -intermediate")
	}
	if *caValid < 0 {
		die("-ca-valid takes a positive number of seconds")
	}
	if *tlsOn && *proxy {
		die("-tls and -proxy do not go together")
	}
	if *failName != "" {
		code, ok := failInfoCodes[*failName]
		if !ok {
			die("-fail %q: expected badAlg, badMessageCheck, badRequest, badTime or badCertId", *failName)
		}
		cfg.failCode = code
	}
	switch *replyEnc {
	case "des":
		pkcs7.ContentEncryptionAlgorithm = pkcs7.EncryptionAlgorithmDESCBC
	case "aes128":
		pkcs7.ContentEncryptionAlgorithm = pkcs7.EncryptionAlgorithmAES128CBC
	case "aes256":
		pkcs7.ContentEncryptionAlgorithm = pkcs7.EncryptionAlgorithmAES256CBC
	default:
		die("-reply-cipher %q: expected des, aes128 or aes256", *replyEnc)
	}
	if *replyDig != "sha1" && *replyDig != "sha256" {
		die("-reply-digest %q: expected sha1 or sha256", *replyDig)
	}
	cfg.caps = stockCaps
	if *caps != "" {
		cfg.caps = strings.ReplaceAll(*caps, `\n`, "\n")
	} else if *nextCA && !*nextCur {
		cfg.caps += "\nGetNextCACert"
	}

	var logf *os.File
	if *logFile != "" {
		var err error
		if logf, err = os.OpenFile(*logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0644); err != nil {
			die("%v", err)
		}
	}
	var handler http.Handler
	if *proxy {
		handler = &forwardProxy{log: logf}
	} else {
		if err := os.MkdirAll(*dir, 0700); err != nil {
			die("%v", err)
		}
		ca, err := newCertAuthority(*dir, *ra, *nextCA, *inter,
			time.Duration(*caValid)*time.Second, *nextCur)
		if err != nil {
			die("%s: %v", *dir, err)
		}
		if *rogue || *rogueIss || *rogueCRL {
			m := rogueMode{getCA: *rogue, sign: *rogue, issue: *rogue || *rogueIss, crl: *rogue || *rogueCRL}
			if err := ca.addRogue(m); err != nil {
				die("%s: %v", *dir, err)
			}
		}
		ca.valid = time.Duration(*valid) * time.Second
		ca.allowRenew = *allowRenew
		ca.allowEC = *allowEC
		handler = &server{cfg: cfg, ca: ca, pend: map[string]*pendingReq{},
			done: map[string]*x509.Certificate{}, log: logf}
	}

	host := "127.0.0.1"
	if *ipv6 {
		host = "::1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(*port)))
	if err != nil {
		die("listen: %v", err)
	}
	// made before the port is announced: DIR/tls-ca.pem is there by then
	var tc *tls.Config
	if *tlsOn {
		if tc, err = tlsConfig(*dir, *tlsName, *tlsExpired); err != nil {
			die("%s: TLS: %v", *dir, err)
		}
	}
	bound := ln.Addr().(*net.TCPAddr).Port
	if *pidFile != "" {
		writeFileAtomic(*pidFile, fmt.Sprintf("%d\n", os.Getpid()))
	}
	if *portFile != "" {
		writeFileAtomic(*portFile, fmt.Sprintf("port %d\n", bound))
	}
	fmt.Printf("port %d\n", bound)
	os.Stdout.Sync()
	fmt.Fprintf(os.Stderr, "scepca: %s, listening on %s%s\n", map[bool]string{true: "forward proxy", false: "CA in " + filepath.Clean(*dir)}[*proxy], ln.Addr(), map[bool]string{true: " (HTTPS)"}[*tlsOn])

	hs := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	if tc != nil {
		hs.TLSConfig = tc
		// HTTP/1.1 only (no "h2" offered): -reset-reply takes the
		// connection over, which HTTP/2 cannot do
		hs.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
		ln = tls.NewListener(ln, tc)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		hs.Close()
	}()
	if *lifetime > 0 {
		time.AfterFunc(time.Duration(*lifetime)*time.Second, func() {
			fmt.Fprintf(os.Stderr, "scepca: -lifetime %d s reached, exiting\n", *lifetime)
			hs.Close()
		})
	}
	if err := hs.Serve(ln); err != nil && err != http.ErrServerClosed {
		die("serve: %v", err)
	}
}

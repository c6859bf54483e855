// misbehave.go - a server that misbehaves on the wire (-reset-reply,
// -dribble, -huge-reply, -redirect-loop) and HTTPS (-tls, -tls-name,
// -tls-expired).
//
// The wire misbehaviours touch only the GetCACert and PKIOperation
// replies: GetCACaps (and GetNextCACert) answer normally, so an enrollment
// gets as far as sending its request, and getca meets the misbehaviour.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

type misbehaviour struct {
	resetReply   bool          // send half the reply, then RST
	dribble      time.Duration // one byte of the reply per interval
	hugeReply    int64         // a reply of this many bytes (the real one, then filler)
	redirectLoop bool          // 302 to the same URL, forever
}

// misbehavedOp: the operations whose replies misbehave.
func misbehavedOp(op string) bool {
	return op == "GetCACert" || op == "PKIOperation"
}

// redirectLoop answers 302 with the request's own URL as the Location.
func redirectLoop(w http.ResponseWriter, r *http.Request, e *logEntry) {
	e.HTTP, e.Status = http.StatusFound, "REDIRECT"
	w.Header().Set("Location", r.URL.RequestURI())
	w.WriteHeader(http.StatusFound)
}

// send writes a 200 reply of type ct, misbehaving as configured; e.Sent
// counts the body bytes written (for the log).
func (s *server) send(w http.ResponseWriter, r *http.Request, e *logEntry, ct string, body []byte) {
	m := &s.cfg.mis
	e.HTTP = http.StatusOK
	switch {
	case m.resetReply:
		e.Status = "RESET"
		if err := resetMidReply(w, ct, body, e); err != nil {
			e.Error = err.Error()
		}
	case m.dribble > 0:
		e.Status = "DRIBBLE"
		dribble(w, r, ct, body, m.dribble, e)
	case m.hugeReply > 0:
		e.Status = "HUGE"
		huge(w, ct, body, m.hugeReply, e)
	default:
		w.Header().Set("Content-Type", ct)
		w.Write(body)
		e.Sent = int64(len(body))
	}
}

// resetMidReply takes the connection over, announces the whole body,
// sends its first half, and closes with SO_LINGER 0: a TCP RST instead of
// an orderly end (TLS: no close_notify either).
func resetMidReply(w http.ResponseWriter, ct string, body []byte, e *logEntry) error {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return errors.New("-reset-reply: the connection cannot be taken over")
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return err
	}
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	defer raw.Close()
	half := len(body) / 2
	fmt.Fprintf(rw, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
		ct, len(body))
	rw.Write(body[:half])
	if err := rw.Flush(); err != nil {
		return err
	}
	e.Sent = int64(half)
	// let the client read what came, so that the reset hits it mid-body
	time.Sleep(100 * time.Millisecond)
	if tcp, ok := raw.(*net.TCPConn); ok {
		tcp.SetLinger(0)
	}
	return nil
}

// dribble sends the body one byte per interval until it is all out or the
// client went away.
func dribble(w http.ResponseWriter, r *http.Request, ct string, body []byte,
	every time.Duration, e *logEntry) {
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	t := time.NewTicker(every)
	defer t.Stop()
	for i := range body {
		if fl != nil {
			fl.Flush()
		}
		select {
		case <-t.C:
		case <-r.Context().Done():
			e.Error = "the client went away during -dribble"
			return
		}
		if _, err := w.Write(body[i : i+1]); err != nil {
			e.Error = "the client went away during -dribble: " + err.Error()
			return
		}
		e.Sent++
	}
}

// huge announces and sends size bytes: the real reply, then filler.
func huge(w http.ResponseWriter, ct string, body []byte, size int64, e *logEntry) {
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(http.StatusOK)
	if int64(len(body)) > size {
		body = body[:size]
	}
	n, err := w.Write(body)
	e.Sent = int64(n)
	fill := make([]byte, 64<<10)
	for i := range fill {
		fill[i] = 'A' + byte(i%26)
	}
	for err == nil && e.Sent < size {
		chunk := fill
		if left := size - e.Sent; left < int64(len(chunk)) {
			chunk = chunk[:left]
		}
		n, err = w.Write(chunk)
		e.Sent += int64(n)
	}
	if err != nil {
		e.Error = "the client went away during -huge-reply: " + err.Error()
	}
}

// tlsConfig makes the HTTPS server's certificate: an ECDSA P-256 key
// signed by the test TLS CA (tls-ca.pem/tls-ca.key in dir, made once and
// kept), for 127.0.0.1, ::1 and localhost, or for name only (-tls-name),
// valid from an hour ago for a day, or expired yesterday (-tls-expired).
func tlsConfig(dir, name string, expired bool) (*tls.Config, error) {
	ca, caKey, err := tlsCA(dir)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{Organization: []string{"scep-ca"}, CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if expired {
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-48*time.Hour), now.Add(-24*time.Hour)
	}
	switch ip := net.ParseIP(name); {
	case name == "":
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		tmpl.DNSNames = []string{"localhost"}
	case ip != nil:
		tmpl.Subject.CommonName = name
		tmpl.IPAddresses = []net.IP{ip}
	default:
		tmpl.Subject.CommonName = name
		tmpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// tlsCA loads or makes the test TLS CA of dir (tls-ca.pem is the bundle a
// client is given; it survives restarts on the same dir).
func tlsCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPath, keyPath := filepath.Join(dir, "tls-ca.pem"), filepath.Join(dir, "tls-ca.key")
	if _, err := os.Stat(certPath); err == nil {
		der, err := readPEM(certPath, "CERTIFICATE")
		if err != nil {
			return nil, nil, err
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, nil, err
		}
		kder, err := readPEM(keyPath, "EC PRIVATE KEY")
		if err != nil {
			return nil, nil, err
		}
		key, err := x509.ParseECPrivateKey(kder)
		return cert, key, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{"scep-ca"}, CommonName: "scepca test TLS CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	if err := writePEM(keyPath, "EC PRIVATE KEY", kder, 0600); err != nil {
		return nil, nil, err
	}
	return cert, key, writePEM(certPath, "CERTIFICATE", der, 0644)
}

// scepca_test.go - self-test of the test CA with a Go SCEP client built
// from the same packages (run: tests/servers/build.sh -test OUT).
package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/micromdm/scep/v2/cryptoutil/x509util"
	"github.com/micromdm/scep/v2/scep"
	"go.mozilla.org/pkcs7"
)

type client struct {
	t      *testing.T
	url    string
	key    *rsa.PrivateKey
	self   *x509.Certificate
	caCert []*x509.Certificate
}

func newTestServer(t *testing.T, cfg *config, ra, next bool) (*httptest.Server, *server) {
	ca, err := newCertAuthority(t.TempDir(), ra, next, false, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.caps == "" {
		cfg.caps = stockCaps
	}
	if cfg.replyDigest == "" {
		cfg.replyDigest = "sha1"
	}
	s := &server{cfg: cfg, ca: ca, pend: map[string]*pendingReq{}, done: map[string]*x509.Certificate{}}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts, s
}

func newClient(t *testing.T, url string) *client {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "self"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	self, _ := x509.ParseCertificate(der)
	c := &client{t: t, url: url, key: key, self: self}
	resp, err := http.Get(url + "/scep?operation=GetCACert")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Content-Type") == ctCACert {
		crt, err := x509.ParseCertificate(body)
		if err != nil {
			t.Fatal(err)
		}
		c.caCert = []*x509.Certificate{crt}
	} else if c.caCert, err = scep.CACerts(body); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *client) csr(cn, challenge string) []byte {
	der, err := x509util.CreateCertificateRequest(rand.Reader, &x509util.CertificateRequest{
		CertificateRequest: x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}},
		ChallengePassword:  challenge}, c.key)
	if err != nil {
		c.t.Fatal(err)
	}
	return der
}

// request builds a pkiMessage like a SCEP client does.
func (c *client) request(msgType, tid string, content []byte, signer *x509.Certificate, key *rsa.PrivateKey) []byte {
	recips := scep.EnciphermentCertsSelector()(c.caCert)
	if len(recips) == 0 {
		recips = c.caCert[:1]
	}
	e7, err := pkcs7.Encrypt(content, recips)
	if err != nil {
		c.t.Fatal(err)
	}
	sd, _ := pkcs7.NewSignedData(e7)
	nonce := make([]byte, 16)
	rand.Read(nonce)
	err = sd.AddSigner(signer, key, pkcs7.SignerInfoConfig{ExtraSignedAttributes: []pkcs7.Attribute{
		{Type: oidTransactionID, Value: tid}, {Type: oidMessageType, Value: msgType},
		{Type: oidSenderNonce, Value: nonce}}})
	if err != nil {
		c.t.Fatal(err)
	}
	out, _ := sd.Finish()
	return out
}

type reply struct {
	p7      *pkcs7.PKCS7
	status  string
	info    string
	text    string
	content []byte
}

func (c *client) post(msg []byte) *reply {
	resp, err := http.Post(c.url+"/scep?operation=PKIOperation", "application/octet-stream", bytes.NewReader(msg))
	if err != nil {
		c.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		c.t.Fatalf("HTTP %d: %s", resp.StatusCode, body)
	}
	p7, err := pkcs7.Parse(body)
	if err != nil {
		c.t.Fatal(err)
	}
	r := &reply{p7: p7}
	p7.UnmarshalSignedAttribute(oidPkiStatus, &r.status)
	p7.UnmarshalSignedAttribute(oidFailInfo, &r.info)
	p7.UnmarshalSignedAttribute(oidFailInfoText, &r.text)
	if r.status == stSuccess {
		env, err := pkcs7.Parse(p7.Content)
		if err != nil {
			c.t.Fatal(err)
		}
		if r.content, err = env.Decrypt(c.self, c.key); err != nil {
			c.t.Fatal(err)
		}
	}
	return r
}

func (c *client) enroll(cn, challenge string, mt string) *reply {
	return c.post(c.request(mt, "tid-"+cn, c.csr(cn, challenge), c.self, c.key))
}

func TestEnrollStock(t *testing.T) {
	ts, _ := newTestServer(t, &config{}, false, false)
	c := newClient(t, ts.URL)
	r := c.enroll("dev1", "", mtPKCSReq)
	if r.status != stSuccess {
		t.Fatalf("status %q %q", r.status, r.text)
	}
	certs, err := scep.CACerts(r.content)
	if err != nil || len(certs) != 1 || certs[0].Subject.CommonName != "dev1" {
		t.Fatalf("bad cert %v %v", certs, err)
	}
	// the stock library must be able to parse the reply too
	msg, err := scep.ParsePKIMessage(mustPost(t, ts.URL, c.request(mtPKCSReq, "x", c.csr("dev2", ""), c.self, c.key)),
		scep.WithCACerts(c.caCert))
	if err != nil || msg.PKIStatus != scep.SUCCESS {
		t.Fatalf("stock parse: %v", err)
	}
	if err := msg.DecryptPKIEnvelope(c.self, c.key); err != nil {
		t.Fatal(err)
	}
}

func mustPost(t *testing.T, url string, msg []byte) []byte {
	resp, err := http.Post(url+"/scep?operation=PKIOperation", "application/octet-stream", bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b
}

func TestChallengeAndRenewal(t *testing.T) {
	ts, _ := newTestServer(t, &config{challenge: "s3cret", renewNoChallenge: true}, false, false)
	c := newClient(t, ts.URL)
	if r := c.enroll("a", "", mtPKCSReq); r.status != stFailure || r.info != "2" || r.text == "" {
		t.Fatalf("no challenge: %+v", r)
	}
	if r := c.enroll("a", "wrong", mtPKCSReq); r.status != stFailure || r.text != "the challenge password is wrong" {
		t.Fatalf("wrong challenge: %+v", r)
	}
	r := c.enroll("a", "s3cret", mtPKCSReq)
	if r.status != stSuccess {
		t.Fatalf("good challenge: %+v", r)
	}
	certs, _ := scep.CACerts(r.content)
	// renewal signed by the issued certificate, no challenge
	c2 := newClient(t, ts.URL)
	rr := c2.post(c2.request(mtRenewalReq, "renew", c2.csr("a", ""), certs[0], c.key))
	if rr.status != stFailure || rr.info != "2" {
		// allowrenew 14 days refuses the same DN
		t.Fatalf("expected the stock same-DN refusal, got %+v", rr)
	}
}

func TestPendingPoll(t *testing.T) {
	ts, s := newTestServer(t, &config{pending: 2}, true, false)
	s.ca.allowRenew = 0
	c := newClient(t, ts.URL)
	if len(c.caCert) != 3 {
		t.Fatalf("want CA+2 RA certs, got %d", len(c.caCert))
	}
	if r := c.enroll("p", "", mtPKCSReq); r.status != stPending {
		t.Fatalf("want PENDING, got %+v", r)
	}
	ias, _ := asn1.Marshal(issuerAndSubject{Issuer: asn1.RawValue{FullBytes: c.caCert[0].RawSubject},
		Subject: asn1.RawValue{FullBytes: c.self.RawSubject}})
	if r := c.post(c.request(mtCertPoll, "tid-p", ias, c.self, c.key)); r.status != stPending {
		t.Fatalf("poll 1: want PENDING, got %+v", r)
	}
	r := c.post(c.request(mtCertPoll, "tid-p", ias, c.self, c.key))
	if r.status != stSuccess {
		t.Fatalf("poll 2: want SUCCESS, got %+v", r)
	}
	certs, _ := scep.CACerts(r.content)
	// the RA signed the reply
	if !bytes.Equal(r.p7.GetOnlySigner().Raw, c.caCert[1].Raw) {
		t.Fatal("reply not signed by the RA signing certificate")
	}
	// GetCert by serial, GetCRL
	gc, _ := asn1.Marshal(issuerAndSerial{Issuer: asn1.RawValue{FullBytes: c.caCert[0].RawSubject}, Serial: certs[0].SerialNumber})
	r = c.post(c.request(mtGetCert, "gc", gc, c.self, c.key))
	got, _ := scep.CACerts(r.content)
	if r.status != stSuccess || len(got) != 1 || !got[0].Equal(certs[0]) {
		t.Fatalf("GetCert: %+v", r)
	}
	r = c.post(c.request(mtGetCRL, "crl", gc, c.self, c.key))
	p7, err := pkcs7.Parse(r.content)
	if r.status != stSuccess || err != nil || len(p7.CRLs) != 1 {
		t.Fatalf("GetCRL: %+v %v", r, err)
	}
	if r := c.post(c.request(mtCertPoll, "unknown", ias, c.self, c.key)); r.status != stFailure || r.info != "4" {
		t.Fatalf("unknown poll: %+v", r)
	}
}

func TestFailAndMisbehave(t *testing.T) {
	ts, _ := newTestServer(t, &config{failCode: "3", failText: "clock skew"}, false, false)
	c := newClient(t, ts.URL)
	if r := c.enroll("f", "", mtPKCSReq); r.status != stFailure || r.info != "3" || r.text != "clock skew" {
		t.Fatalf("fail: %+v", r)
	}
	ts, _ = newTestServer(t, &config{badSig: true}, false, false)
	c = newClient(t, ts.URL)
	r := c.enroll("b", "", mtPKCSReq)
	if r.p7.Verify() == nil {
		t.Fatal("bad-sig reply verifies")
	}
}

func TestECRequests(t *testing.T) {
	ts, s := newTestServer(t, &config{}, false, false)
	c := newClient(t, ts.URL)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader,
		&x509.CertificateRequest{Subject: pkix.Name{CommonName: "ec"}}, ecKey)
	if err != nil {
		t.Fatal(err)
	}
	// EC key in the CSR, RSA signer: refused (stock), issued with -allow-ec
	if r := c.post(c.request(mtPKCSReq, "ec1", csr, c.self, c.key)); r.status != stFailure || r.info != "2" {
		t.Fatalf("EC CSR without -allow-ec: %+v", r)
	}
	s.ca.allowEC = true
	r := c.post(c.request(mtPKCSReq, "ec2", csr, c.self, c.key))
	if r.status != stSuccess {
		t.Fatalf("EC CSR with -allow-ec: %+v", r)
	}
	certs, _ := scep.CACerts(r.content)
	if _, ok := certs[0].PublicKey.(*ecdsa.PublicKey); !ok || certs[0].SignatureAlgorithm != x509.SHA256WithRSA {
		t.Fatalf("EC certificate: %T %v", certs[0].PublicKey, certs[0].SignatureAlgorithm)
	}
	// EC signer: the reply cannot be encrypted to it
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "ec self"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ecKey.PublicKey, ecKey)
	ecSelf, _ := x509.ParseCertificate(der)
	recips := c.caCert[:1]
	e7, _ := pkcs7.Encrypt(csr, recips)
	sd, _ := pkcs7.NewSignedData(e7)
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	nonce := make([]byte, 16)
	rand.Read(nonce)
	if err := sd.AddSigner(ecSelf, ecKey, pkcs7.SignerInfoConfig{ExtraSignedAttributes: []pkcs7.Attribute{
		{Type: oidTransactionID, Value: "ec3"}, {Type: oidMessageType, Value: mtPKCSReq},
		{Type: oidSenderNonce, Value: nonce}}}); err != nil {
		t.Fatal(err)
	}
	msg, _ := sd.Finish()
	resp, err := http.Post(ts.URL+"/scep?operation=PKIOperation", "application/octet-stream", bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	p7, err := pkcs7.Parse(body)
	if err != nil {
		t.Fatalf("EC signer: HTTP %d %s", resp.StatusCode, body)
	}
	var status, info string
	p7.UnmarshalSignedAttribute(oidPkiStatus, &status)
	p7.UnmarshalSignedAttribute(oidFailInfo, &info)
	if status != stFailure || info != "0" {
		t.Fatalf("EC signer: want FAILURE badAlg, got %q %q", status, info)
	}
}

func TestGetRequestAndCaps(t *testing.T) {
	ts, _ := newTestServer(t, &config{caps: "A\nB"}, false, false)
	c := newClient(t, ts.URL)
	msg := c.request(mtPKCSReq, "get", c.csr("g", ""), c.self, c.key)
	resp, err := http.Get(ts.URL + "/scep?operation=PKIOperation&message=" +
		url.QueryEscape(base64.StdEncoding.EncodeToString(msg)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ctPKIMsg {
		t.Fatalf("GET PKIOperation: %d %s", resp.StatusCode, body)
	}
	resp, _ = http.Get(ts.URL + "/scep?operation=GetCACaps")
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "A\nB" {
		t.Fatalf("caps %q", body)
	}
}

// -rogue: GetCACert carries a second, unrelated CA of the same name, which
// signs the replies, issues the certificates and signs the CRL.
func TestRogue(t *testing.T) {
	ts, s := newTestServer(t, &config{}, false, false)
	if err := s.ca.addRogue(rogueMode{getCA: true, sign: true, issue: true, crl: true}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, ts.URL)
	if len(c.caCert) != 2 || c.caCert[1].Subject.CommonName != c.caCert[0].Subject.CommonName ||
		bytes.Equal(c.caCert[0].Raw, c.caCert[1].Raw) {
		t.Fatalf("want the CA and a rogue CA of the same name, got %d", len(c.caCert))
	}
	genuine, rogue := c.caCert[0], c.caCert[1]
	r := c.enroll("victim", "", mtPKCSReq)
	if r.status != stSuccess {
		t.Fatalf("status %q %q", r.status, r.text)
	}
	if !bytes.Equal(r.p7.GetOnlySigner().Raw, rogue.Raw) {
		t.Fatal("CertRep not signed by the rogue CA")
	}
	certs, _ := scep.CACerts(r.content)
	if len(certs) != 1 || certs[0].CheckSignatureFrom(rogue) != nil || certs[0].CheckSignatureFrom(genuine) == nil {
		t.Fatal("certificate not issued by the rogue CA")
	}
	gc, _ := asn1.Marshal(issuerAndSerial{Issuer: asn1.RawValue{FullBytes: genuine.RawSubject}, Serial: certs[0].SerialNumber})
	r = c.post(c.request(mtGetCRL, "crl", gc, c.self, c.key))
	p7, err := pkcs7.Parse(r.content)
	if r.status != stSuccess || err != nil || len(p7.CRLs) != 1 {
		t.Fatalf("GetCRL: %+v %v", r, err)
	}
	if genuine.CheckCRLSignature(&p7.CRLs[0]) == nil || rogue.CheckCRLSignature(&p7.CRLs[0]) != nil {
		t.Fatal("CRL not signed by the rogue key")
	}
}

func TestWireMisbehaviour(t *testing.T) {
	ts, s := newTestServer(t, &config{}, false, false)
	// one CA, its misbehaviour switched between requests
	get := func(cl *http.Client, m misbehaviour) (*http.Response, []byte, error) {
		s.mu.Lock()
		s.cfg.mis = m
		s.mu.Unlock()
		if cl == nil {
			cl = &http.Client{}
		}
		resp, err := cl.Get(ts.URL + "/scep?operation=GetCACert")
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp, body, err
	}
	// -huge-reply: the announced size, the certificate and then filler
	// (which ParseCertificate refuses as trailing data)
	resp, body, err := get(nil, misbehaviour{hugeReply: 100000})
	if err != nil || len(body) != 100000 || resp.ContentLength != 100000 {
		t.Fatalf("huge: %v, %d bytes", err, len(body))
	}
	if _, err := x509.ParseCertificate(body); err == nil {
		t.Fatal("huge: filler expected after the certificate")
	}
	// -reset-reply: part of the body, then an error
	if _, body, err = get(nil, misbehaviour{resetReply: true}); err == nil {
		t.Fatalf("reset: no error after %d bytes", len(body))
	}
	// -dribble: a client with a short timeout gives up
	start := time.Now()
	if _, _, err = get(&http.Client{Timeout: 300 * time.Millisecond},
		misbehaviour{dribble: 50 * time.Millisecond}); err == nil {
		t.Fatal("dribble: the reply came within 300 ms")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("dribble: the client waited too long")
	}
	// -redirect-loop: 302 to itself
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	resp, _, err = get(cl, misbehaviour{redirectLoop: true})
	if err != nil || resp.StatusCode != http.StatusFound ||
		resp.Header.Get("Location") != "/scep?operation=GetCACert" {
		t.Fatalf("redirect: %v %v", err, resp)
	}
}

func TestTLSCertificates(t *testing.T) {
	dir := t.TempDir()
	check := func(name string, expired bool) *x509.Certificate {
		tc, err := tlsConfig(dir, name, expired)
		if err != nil {
			t.Fatal(err)
		}
		crt, err := x509.ParseCertificate(tc.Certificates[0].Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		ca, err := readPEM(dir+"/tls-ca.pem", "CERTIFICATE")
		if err != nil {
			t.Fatal(err)
		}
		caCert, _ := x509.ParseCertificate(ca)
		if err := crt.CheckSignatureFrom(caCert); err != nil {
			t.Fatal(err)
		}
		return crt
	}
	if c := check("", false); c.VerifyHostname("127.0.0.1") != nil || c.VerifyHostname("localhost") != nil ||
		time.Now().After(c.NotAfter) {
		t.Fatal("default TLS certificate")
	}
	if c := check("elsewhere.example", false); c.VerifyHostname("127.0.0.1") == nil ||
		c.VerifyHostname("elsewhere.example") != nil {
		t.Fatal("-tls-name")
	}
	if c := check("", true); time.Now().Before(c.NotAfter) {
		t.Fatal("-tls-expired")
	}
}

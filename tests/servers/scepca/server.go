// server.go - the HTTP side and the PKIOperation state machine.
package main

import (
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/micromdm/scep/v2/cryptoutil/x509util"
	"github.com/micromdm/scep/v2/scep"
	"go.mozilla.org/pkcs7"
)

type config struct {
	challenge        string
	renewNoChallenge bool
	pending          int
	failCode         string // "" or "0".."4"
	failText         string
	caps             string
	replyDigest      string
	badSig           bool
	wrongNonce       bool
	wrongTid         bool
	wrongType        bool
	html             bool
	htmlStatus       int
	getcaP7          bool
	getcaPEM         bool
	getcaType        string
	getcertOther     bool
	delay            int  // seconds to hold each CertRep back (-delay)
	capsStatus       int  // GetCACaps answers this HTTP error status (-caps-status)
	timing           bool // log lines get us and wait_us (-timing)
	mis              misbehaviour
}

type pendingReq struct {
	csr   *x509.CertificateRequest
	polls int
}

type server struct {
	cfg  *config
	ca   *certAuthority
	mu   sync.Mutex
	pend map[string]*pendingReq
	done map[string]*x509.Certificate // transactionID -> issued cert
	log  *os.File
}

// logEntry is one JSON line of the -log file.
type logEntry struct {
	Time             string `json:"time"`
	Method           string `json:"method"`
	Op               string `json:"op"`
	MsgType          int    `json:"msgType,omitempty"`
	Tid              string `json:"tid,omitempty"`
	Status           string `json:"status,omitempty"`
	FailInfo         string `json:"failInfo,omitempty"`
	ChallengeOK      *bool  `json:"challenge_ok,omitempty"`
	ChallengePresent *bool  `json:"challenge_present,omitempty"`
	Signer           string `json:"signer,omitempty"`
	Digest           string `json:"digest,omitempty"`
	Enc              string `json:"enc,omitempty"`
	Poll             int    `json:"poll,omitempty"`
	Serial           string `json:"serial,omitempty"`
	Subject          string `json:"subject,omitempty"`
	Stock            bool   `json:"stock,omitempty"` // reply built by the scep package itself
	Delay            int    `json:"delay,omitempty"` // a CertRep held back (-delay), logged before the wait
	Sent             int64  `json:"sent,omitempty"`  // body bytes written (GetCACert, PKIOperation)
	HTTP             int    `json:"http"`
	Error            string `json:"error,omitempty"`
	Us               *int64 `json:"us,omitempty"`      // -timing: microseconds in the handler (lock held)
	WaitUs           *int64 `json:"wait_us,omitempty"` // -timing: microseconds waiting for the lock
}

const (
	ctCACert   = "application/x-x509-ca-cert"
	ctCARACert = "application/x-x509-ca-ra-cert"
	ctNextCA   = "application/x-x509-next-ca-cert"
	ctPKIMsg   = "application/x-pki-message"
	maxPayload = 2 << 20
)

func boolp(b bool) *bool { return &b }

func (s *server) writeLog(e *logEntry) {
	if s.log == nil {
		return
	}
	line, _ := json.Marshal(e)
	s.log.Write(append(line, '\n'))
}

// message extracts the request body as the stock transport does.
func message(r *http.Request) ([]byte, error) {
	if r.Method == http.MethodPost {
		return io.ReadAll(io.LimitReader(r.Body, maxPayload))
	}
	q := r.URL.Query()
	msg := q.Get("message")
	if q.Get("operation") != "PKIOperation" {
		return []byte(msg), nil
	}
	msg2, err := url.PathUnescape(msg)
	if err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(msg2)
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t0 := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	t1 := time.Now()
	op := r.URL.Query().Get("operation")
	e := &logEntry{Time: time.Now().UTC().Format(time.RFC3339Nano), Method: r.Method, Op: op}
	defer s.writeLog(e)
	if s.cfg.timing {
		// runs before writeLog (deferred later): the handler's own time,
		// request body read and reply handed to the connection included
		defer func() {
			us, wait := time.Since(t1).Microseconds(), t1.Sub(t0).Microseconds()
			e.Us, e.WaitUs = &us, &wait
		}()
	}

	fail := func(code int, err error) {
		e.HTTP, e.Status, e.Error = code, "ERROR", err.Error()
		http.Error(w, err.Error(), code)
	}
	reply := func(ct string, body []byte) {
		e.HTTP = http.StatusOK
		w.Header().Set("Content-Type", ct)
		w.Write(body)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		fail(http.StatusMethodNotAllowed, fmt.Errorf("method %s not supported", r.Method))
		return
	}
	if s.cfg.mis.redirectLoop && misbehavedOp(op) {
		redirectLoop(w, r, e)
		return
	}
	switch op {
	case "GetCACaps":
		if s.cfg.capsStatus != 0 {
			fail(s.cfg.capsStatus, fmt.Errorf("GetCACaps: -caps-status %d", s.cfg.capsStatus))
			return
		}
		reply("text/plain", []byte(s.cfg.caps))
	case "GetCACert":
		data, ct, err := s.caCertReply()
		if err != nil {
			fail(http.StatusInternalServerError, err)
			return
		}
		s.send(w, r, e, ct, data)
	case "GetNextCACert":
		if s.ca.next == nil {
			fail(http.StatusNotFound, fmt.Errorf("GetNextCACert: no rollover CA (start with -next-ca)"))
			return
		}
		data, err := s.nextCA()
		if err != nil {
			fail(http.StatusInternalServerError, err)
			return
		}
		reply(ctNextCA, data)
	case "PKIOperation":
		data, err := message(r)
		if err != nil {
			fail(http.StatusBadRequest, fmt.Errorf("cannot read the PKIOperation message: %v", err))
			return
		}
		if s.cfg.html {
			e.HTTP, e.Status = s.cfg.htmlStatus, "HTML"
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(s.cfg.htmlStatus)
			io.WriteString(w, "<!DOCTYPE html>\n<html><head><title>Server Error</title></head>\n"+
				"<body><h1>Internal Server Error</h1><p>The SCEP service is unavailable.</p></body></html>\n")
			return
		}
		out, err := s.pkiOperation(data, e)
		if err != nil {
			fail(http.StatusInternalServerError, err)
			return
		}
		if s.cfg.delay > 0 {
			// say so now, then wait: the client is inside its transfer
			d := *e
			d.Delay = s.cfg.delay
			s.writeLog(&d)
			select {
			case <-time.After(time.Duration(s.cfg.delay) * time.Second):
			case <-r.Context().Done():
				e.Status, e.Error = "ABORTED", "the client went away during -delay"
				return
			}
		}
		s.send(w, r, e, ctPKIMsg, out)
	default:
		fail(http.StatusBadRequest, fmt.Errorf("unknown operation %q", op))
	}
}

// caCertReply: one DER certificate, or a degenerate PKCS#7 for a chain
// (or always, -getca-p7), or PEM (-getca-pem); -getca-type overrides the
// Content-Type, as misconfigured servers do.
func (s *server) caCertReply() ([]byte, string, error) {
	certs := s.ca.caCerts()
	var data []byte
	ct := ctCACert
	switch {
	case s.cfg.getcaPEM:
		for _, c := range certs {
			data = append(data, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		if len(certs) > 1 {
			ct = ctCARACert
		}
	case len(certs) == 1 && !s.cfg.getcaP7:
		data = certs[0].Raw
	default:
		var err error
		if data, err = degenerate(certs, nil); err != nil {
			return nil, "", err
		}
		ct = ctCARACert
	}
	if s.cfg.getcaType != "" {
		ct = s.cfg.getcaType
	}
	return data, ct, nil
}

// nextCA: SignedData by the current CA (or RA) over a degenerate
// certs-only PKCS#7 holding the rollover CA certificate.
func (s *server) nextCA() ([]byte, error) {
	deg, err := degenerate([]*x509.Certificate{s.ca.next.cert}, nil)
	if err != nil {
		return nil, err
	}
	sd, err := pkcs7.NewSignedData(deg)
	if err != nil {
		return nil, err
	}
	if s.cfg.replyDigest == "sha256" {
		sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	}
	signer := s.ca.signer()
	if err := sd.AddSigner(signer.cert, signer.key, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, err
	}
	return sd.Finish()
}

func (s *server) baseOptions() *repOptions {
	return &repOptions{digest: s.cfg.replyDigest, badSig: s.cfg.badSig,
		wrongNonce: s.cfg.wrongNonce, wrongTid: s.cfg.wrongTid, wrongType: s.cfg.wrongType}
}

// stockPath: no misbehaviour requested, so the scep package may build it.
func (s *server) stockPath() bool {
	c := s.cfg
	return !c.badSig && !c.wrongNonce && !c.wrongTid && !c.wrongType && c.replyDigest == "sha1"
}

func (s *server) pkiOperation(data []byte, e *logEntry) ([]byte, error) {
	dec := s.ca.decrypter()
	req, err := parseRequest(data, dec.cert, dec.key)
	if err != nil {
		return nil, err
	}
	if req.decErr != nil && s.ca.rogue != nil {
		// a client that trusted the rogue CA may have encrypted to it
		if r2, err := parseRequest(data, s.ca.rogue.cert, s.ca.rogue.key); err == nil && r2.decErr == nil {
			req = r2
		}
	}
	e.Tid, e.Digest, e.Enc = req.tid, req.digest, req.envAlg
	e.MsgType, _ = strconv.Atoi(req.msgType)
	e.Signer = s.ca.signerKind(req.signer)
	signer := s.ca.signer()
	o := s.baseOptions()

	respond := func() ([]byte, error) {
		e.Status = statusNames[o.status]
		e.FailInfo = failInfoNames[o.failInfo]
		return buildCertRep(req, signer.cert, signer.key, o)
	}
	failure := func(info, text string) ([]byte, error) {
		o.status, o.failInfo, o.failText = stFailure, failInfoCodes[info], text
		return respond()
	}
	success := func(content []byte, extra []*x509.Certificate) ([]byte, error) {
		if req.recipErr != nil {
			return failure("badAlg", req.recipErr.Error())
		}
		o.status, o.content, o.extraCerts = stSuccess, content, extra
		return respond()
	}

	if req.sigErr != nil {
		return failure("badMessageCheck", "the signature on the pkiMessage does not verify: "+req.sigErr.Error())
	}
	if req.decErr != nil {
		return failure("badMessageCheck", req.decErr.Error())
	}
	if req.recipErr != nil {
		// refuse before issuing: the certificate could not be delivered
		return failure("badAlg", req.recipErr.Error())
	}
	if s.cfg.failCode != "" {
		o.status, o.failInfo, o.failText = stFailure, s.cfg.failCode, s.cfg.failText
		return respond()
	}

	switch req.msgType {
	case mtPKCSReq, mtRenewalReq, mtUpdateReq:
		return s.enroll(req, data, e, o, respond, failure, success)
	case mtCertPoll:
		var ias issuerAndSubject
		if _, err := asn1.Unmarshal(req.content, &ias); err != nil {
			return failure("badRequest", "CertPoll content is not IssuerAndSubject: "+err.Error())
		}
		var subj x509.Certificate
		subj.RawSubject = ias.Subject.FullBytes
		p := s.pend[req.tid]
		if p == nil {
			if crt := s.done[req.tid]; crt != nil {
				e.Serial = fmt.Sprintf("%X", crt.SerialNumber)
				deg, err := degenerate([]*x509.Certificate{crt}, nil)
				if err != nil {
					return nil, err
				}
				return success(deg, []*x509.Certificate{crt})
			}
			return failure("badCertId", "no request with transactionID "+req.tid+
				" is pending at this CA (pending state is kept in memory only)")
		}
		return s.poll(p, req, e, o, respond, failure, success)
	case mtGetCert:
		var ias issuerAndSerial
		if _, err := asn1.Unmarshal(req.content, &ias); err != nil {
			return failure("badRequest", "GetCert content is not IssuerAndSerialNumber: "+err.Error())
		}
		crt := s.ca.findBySerial(ias.Serial)
		if crt == nil {
			return failure("badCertId", fmt.Sprintf("no certificate with serial %X was issued by this CA", ias.Serial))
		}
		if s.cfg.getcertOther {
			crt = s.ca.ca.cert // misbehaviour: not the certificate asked for
		}
		e.Serial = fmt.Sprintf("%X", crt.SerialNumber)
		e.Subject = crt.Subject.String()
		deg, err := degenerate([]*x509.Certificate{crt}, nil)
		if err != nil {
			return nil, err
		}
		return success(deg, nil)
	case mtGetCRL:
		var ias issuerAndSerial
		if _, err := asn1.Unmarshal(req.content, &ias); err != nil {
			return failure("badRequest", "GetCRL content is not IssuerAndSerialNumber: "+err.Error())
		}
		crl, revoked, err := s.ca.crl()
		if err != nil {
			return nil, err
		}
		e.Serial = strings.Join(revoked, ",")
		deg, err := degenerate(nil, [][]byte{crl})
		if err != nil {
			return nil, err
		}
		return success(deg, nil)
	}
	return failure("badRequest", "messageType "+req.msgType+" is not supported by this CA")
}

type replyFn func() ([]byte, error)
type failFn func(info, text string) ([]byte, error)
type successFn func(content []byte, extra []*x509.Certificate) ([]byte, error)

func (s *server) enroll(req *pkiRequest, data []byte, e *logEntry, o *repOptions,
	respond replyFn, failure failFn, success successFn) ([]byte, error) {
	csr, err := x509.ParseCertificateRequest(req.content)
	if err != nil {
		return failure("badRequest", "the pkiEnvelope does not hold a PKCS#10 request: "+err.Error())
	}
	if err := csr.CheckSignature(); err != nil {
		return failure("badMessageCheck", "the PKCS#10 signature does not verify: "+err.Error())
	}
	e.Subject = csr.Subject.String()
	cp, err := x509util.ParseChallengePassword(req.content)
	if err != nil {
		return failure("badRequest", "cannot parse the challengePassword: "+err.Error())
	}
	e.ChallengePresent = boolp(cp != "")
	ok := true
	if s.cfg.challenge != "" {
		ok = subtle.ConstantTimeCompare([]byte(s.cfg.challenge), []byte(cp)) == 1
		if !ok && s.cfg.renewNoChallenge && e.Signer == "issued" &&
			time.Now().Before(req.signer.NotAfter) {
			ok = true // renewal authenticated by the certificate it replaces
		}
	}
	e.ChallengeOK = boolp(ok)
	if !ok {
		if cp == "" {
			return failure("badRequest", "this CA requires a challenge password and the request has none")
		}
		return failure("badRequest", "the challenge password is wrong")
	}
	if p := s.pend[req.tid]; p != nil {
		return s.poll(p, req, e, o, respond, failure, success)
	}
	if s.cfg.pending > 0 {
		s.pend[req.tid] = &pendingReq{csr: csr}
		o.status = stPending
		return respond()
	}
	crt, err := s.ca.issue(csr)
	if err != nil {
		return failure("badRequest", "certificate not issued: "+err.Error())
	}
	s.done[req.tid] = crt
	e.Serial = fmt.Sprintf("%X", crt.SerialNumber)
	if s.stockPath() && req.recipErr == nil {
		if out, err := stockSuccess(data, s.ca.decrypter(), s.ca.signer(), crt); err == nil {
			e.Status, e.Stock = "SUCCESS", true
			return out, nil
		}
	}
	deg, err := degenerate([]*x509.Certificate{crt}, nil)
	if err != nil {
		return nil, err
	}
	return success(deg, []*x509.Certificate{crt})
}

// poll answers CertPoll (or a re-sent PKCSReq) for a pending transaction:
// PENDING until the request has been polled -pending times, then SUCCESS.
func (s *server) poll(p *pendingReq, req *pkiRequest, e *logEntry, o *repOptions,
	respond replyFn, failure failFn, success successFn) ([]byte, error) {
	p.polls++
	e.Poll = p.polls
	e.Subject = p.csr.Subject.String()
	if p.polls < s.cfg.pending {
		o.status = stPending
		return respond()
	}
	crt, err := s.ca.issue(p.csr)
	delete(s.pend, req.tid)
	if err != nil {
		return failure("badRequest", "certificate not issued: "+err.Error())
	}
	s.done[req.tid] = crt
	e.Serial = fmt.Sprintf("%X", crt.SerialNumber)
	deg, err := degenerate([]*x509.Certificate{crt}, nil)
	if err != nil {
		return nil, err
	}
	return success(deg, []*x509.Certificate{crt})
}

// stockSuccess lets the micromdm scep package build the SUCCESS CertRep,
// exactly as the stock server does.
func stockSuccess(data []byte, dec, sign *keyPair, crt *x509.Certificate) ([]byte, error) {
	msg, err := scep.ParsePKIMessage(data)
	if err != nil {
		return nil, err
	}
	if err := msg.DecryptPKIEnvelope(dec.cert, dec.key); err != nil {
		return nil, err
	}
	rep, err := msg.Success(sign.cert, sign.key, crt)
	if err != nil {
		return nil, err
	}
	return rep.Raw, nil
}

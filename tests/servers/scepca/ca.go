// ca.go - the CA's keys and certificates, issuance, lookup and CRLs.
//
// Issued certificates go through the micromdm file depot (serial file,
// OpenSSL-style index.txt, <CN>.<serial>.pem), so the stock rules hold:
// a second certificate for the same DN is refused while the old one has
// more than -allowrenew days left, and the old one is marked revoked when
// the new one is issued.
package main

import (
	"bufio"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/micromdm/scep/v2/cryptoutil"
	"github.com/micromdm/scep/v2/depot"
	filedepot "github.com/micromdm/scep/v2/depot/file"
)

type keyPair struct {
	cert *x509.Certificate
	key  *rsa.PrivateKey
}

type certAuthority struct {
	dir        string
	ca         keyPair  // issues certificates
	root       *keyPair // -intermediate: the root that signed ca
	raSign     *keyPair // -ra: signs CertReps
	raEnc      *keyPair // -ra: decrypts requests
	next       *keyPair // -next-ca: the rollover CA
	prev       *keyPair // -next-ca-current: the CA the next one replaced
	rogue      *keyPair // -rogue*: an unrelated self-signed CA, same CN as ca
	rogueMode  rogueMode
	depot      depot.Depot
	valid      time.Duration // 0: stock 365 days
	allowRenew int           // days, stock -allowrenew
	allowEC    bool
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	defer f.Close()
	return pem.Encode(f, &pem.Block{Type: typ, Bytes: der})
}

func readPEM(path, typ string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != typ {
		return nil, fmt.Errorf("%s: no %s PEM block", path, typ)
	}
	return b.Bytes, nil
}

// loadPair reads NAME.pem and NAME.key from the CA dir; ok false if absent.
func loadPair(dir, name string) (*keyPair, bool, error) {
	certPath := filepath.Join(dir, name+".pem")
	if _, err := os.Stat(certPath); errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	der, err := readPEM(certPath, "CERTIFICATE")
	if err != nil {
		return nil, false, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, false, err
	}
	kder, err := readPEM(filepath.Join(dir, name+".key"), "RSA PRIVATE KEY")
	if err != nil {
		return nil, false, err
	}
	key, err := x509.ParsePKCS1PrivateKey(kder)
	if err != nil {
		return nil, false, err
	}
	return &keyPair{cert, key}, true, nil
}

func savePair(dir, name string, p *keyPair) error {
	if err := writePEM(filepath.Join(dir, name+".key"), "RSA PRIVATE KEY",
		x509.MarshalPKCS1PrivateKey(p.key), 0600); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, name+".pem"), "CERTIFICATE", p.cert.Raw, 0644)
}

// selfSignedCA loads NAME or makes a new RSA-2048 CA with the scep
// package's own CA template (depot.NewCACert); with valid > 0 (-ca-valid)
// a CA certificate of the same kind valid from an hour ago until valid
// from now.
func selfSignedCA(dir, name, cn string, valid time.Duration) (*keyPair, error) {
	if p, ok, err := loadPair(dir, name); ok || err != nil {
		return p, err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	var der []byte
	if valid > 0 {
		der, err = shortCACert(cn, valid, key)
	} else {
		der, err = depot.NewCACert(depot.WithCommonName(cn), depot.WithCountry("US"),
			depot.WithYears(10)).SelfSign(rand.Reader, &key.PublicKey, key)
	}
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	p := &keyPair{cert, key}
	return p, savePair(dir, name, p)
}

// shortCACert: a self-signed CA certificate (as depot.NewCACert makes
// them: CA, certSign, CRL sign, digitalSignature) valid from an hour ago
// until valid from now (-ca-valid: a CA near its end, for rollover tests).
func shortCACert(cn string, valid time.Duration, key *rsa.PrivateKey) ([]byte, error) {
	ski, err := cryptoutil.GenerateSubjectKeyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Country: []string{"US"}, CommonName: cn},
		NotBefore:             now.Add(-time.Hour).UTC(),
		NotAfter:              now.Add(valid).UTC(),
		SubjectKeyId:          ski,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	return x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
}

// subCert loads NAME or has issuer issue a certificate for a new RSA key:
// an RA certificate, or with isCA the intermediate of -intermediate.
func subCert(dir, name string, subj pkix.Name, usage x509.KeyUsage, serial int64,
	isCA bool, issuer *keyPair) (*keyPair, error) {
	if p, ok, err := loadPair(dir, name); ok || err != nil {
		return p, err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	ski, err := cryptoutil.GenerateSubjectKeyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      subj,
		NotBefore:    time.Now().Add(-time.Hour).UTC(),
		NotAfter:     time.Now().AddDate(5, 0, 0).UTC(),
		SubjectKeyId: ski,
		KeyUsage:     usage,
	}
	if isCA {
		tmpl.BasicConstraintsValid, tmpl.IsCA = true, true
		tmpl.MaxPathLen, tmpl.MaxPathLenZero = 0, true
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer.cert, &key.PublicKey, issuer.key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	p := &keyPair{cert, key}
	return p, savePair(dir, name, p)
}

func raName(cn string) pkix.Name {
	return pkix.Name{Country: []string{"US"}, Organization: []string{"scep-ca"},
		OrganizationalUnit: []string{"SCEP RA"}, CommonName: cn}
}

// newCertAuthority loads or creates the CA in dir: with intermediate, a
// self-signed root ("root") and the issuing CA ("ca") it signed; with ra,
// the two RA certificates; with next, the rollover CA. caValid > 0: a new
// CA certificate ("ca") valid that long (-ca-valid); nextCurrent: the
// rollover CA has taken over (-next-ca-current, needs next).
func newCertAuthority(dir string, ra, next, intermediate bool, caValid time.Duration,
	nextCurrent bool) (*certAuthority, error) {
	c := &certAuthority{dir: dir, allowRenew: 14}
	var ca *keyPair
	var err error
	if intermediate {
		if c.root, err = selfSignedCA(dir, "root", "scep-agent test root CA", 0); err != nil {
			return nil, fmt.Errorf("root CA: %v", err)
		}
		ca, err = subCert(dir, "ca", pkix.Name{Country: []string{"US"}, Organization: []string{"scep-ca"},
			OrganizationalUnit: []string{"SCEP CA"}, CommonName: "scep-agent test issuing CA"},
			x509.KeyUsageCertSign|x509.KeyUsageCRLSign, 0x7e00, true, c.root)
	} else {
		ca, err = selfSignedCA(dir, "ca", "scep-agent test CA", caValid)
	}
	if err != nil {
		return nil, fmt.Errorf("CA: %v", err)
	}
	c.ca = *ca
	if ra {
		// serials far away from the depot's (which start at 2)
		if c.raSign, err = subCert(dir, "ra-sign", raName("scep-agent test RA (sign)"),
			x509.KeyUsageDigitalSignature, 0x7e01, false, &c.ca); err != nil {
			return nil, fmt.Errorf("RA signing certificate: %v", err)
		}
		if c.raEnc, err = subCert(dir, "ra-enc", raName("scep-agent test RA (encrypt)"),
			x509.KeyUsageKeyEncipherment, 0x7e02, false, &c.ca); err != nil {
			return nil, fmt.Errorf("RA encryption certificate: %v", err)
		}
	}
	if next {
		if c.next, err = selfSignedCA(dir, "next-ca", "scep-agent test CA (next)", 0); err != nil {
			return nil, fmt.Errorf("next CA: %v", err)
		}
	}
	if nextCurrent {
		// the rollover done: the next CA is the CA (GetCACert, issuing,
		// CertReps, decryption); GetNextCACert has nothing to offer;
		// certificates of the old one still count as issued here
		old := c.ca
		c.prev, c.ca, c.next = &old, *c.next, nil
	}
	if c.depot, err = filedepot.NewFileDepot(dir); err != nil {
		return nil, fmt.Errorf("depot: %v", err)
	}
	return c, nil
}

// rogueMode says what the rogue CA of -rogue, -rogue-issue, -rogue-crl does.
type rogueMode struct {
	getCA bool // GetCACert also sends the rogue certificate
	sign  bool // it signs CertReps and GetNextCACert replies
	issue bool // it issues the certificates
	crl   bool // it signs the CRL (which names the genuine CA as issuer)
}

// addRogue loads or makes the rogue CA: self-signed, with the subject of
// the genuine issuing CA (an attacker copies names) but its own serial
// number, so that a reply's signer (issuer and serial) names it alone.
func (c *certAuthority) addRogue(m rogueMode) error {
	c.rogueMode = m
	p, ok, err := loadPair(c.dir, "rogue")
	if ok || err != nil {
		c.rogue = p
		return err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	ski, err := cryptoutil.GenerateSubjectKeyID(&key.PublicKey)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(0x5eed),
		Subject:               c.ca.cert.Subject,
		NotBefore:             time.Now().Add(-time.Hour).UTC(),
		NotAfter:              time.Now().AddDate(10, 0, 0).UTC(),
		SubjectKeyId:          ski,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	c.rogue = &keyPair{cert, key}
	return savePair(c.dir, "rogue", c.rogue)
}

// issuer is the pair that issues certificates (the rogue CA with -rogue-issue).
func (c *certAuthority) issuer() *keyPair {
	if c.rogue != nil && c.rogueMode.issue {
		return c.rogue
	}
	return &c.ca
}

// signer is the pair that signs CertReps; decrypter opens requests.
func (c *certAuthority) signer() *keyPair {
	if c.rogue != nil && c.rogueMode.sign {
		return c.rogue
	}
	if c.raSign != nil {
		return c.raSign
	}
	return &c.ca
}

func (c *certAuthority) decrypter() *keyPair {
	if c.raEnc != nil {
		return c.raEnc
	}
	return &c.ca
}

// caCerts is the GetCACert answer: the CA, the RA certificates, the root.
func (c *certAuthority) caCerts() []*x509.Certificate {
	certs := []*x509.Certificate{c.ca.cert}
	if c.raSign != nil {
		certs = append(certs, c.raSign.cert, c.raEnc.cert)
	}
	if c.root != nil {
		certs = append(certs, c.root.cert)
	}
	if c.rogue != nil && c.rogueMode.getCA {
		certs = append(certs, c.rogue.cert)
	}
	return certs
}

// signerKind tells who signed a request: "selfsigned", "issued" (by this
// CA, the next one or the one it replaced) or "other".
func (c *certAuthority) signerKind(cert *x509.Certificate) string {
	if cert == nil {
		return "none"
	}
	if cert.CheckSignatureFrom(c.ca.cert) == nil {
		return "issued"
	}
	if c.next != nil && cert.CheckSignatureFrom(c.next.cert) == nil {
		return "issued"
	}
	if c.prev != nil && cert.CheckSignatureFrom(c.prev.cert) == nil {
		return "issued"
	}
	if c.rogue != nil && cert.CheckSignatureFrom(c.rogue.cert) == nil {
		return "issued"
	}
	if cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature) == nil {
		return "selfsigned"
	}
	return "other"
}

// issue signs a CSR as depot.Signer.SignCSR does, with the validity in
// seconds when -valid is given.
func (c *certAuthority) issue(csr *x509.CertificateRequest) (*x509.Certificate, error) {
	ski, err := cryptoutil.GenerateSubjectKeyID(csr.PublicKey)
	if err != nil {
		return nil, err
	}
	serial, err := c.depot.Serial()
	if err != nil {
		return nil, err
	}
	notAfter := time.Now().AddDate(0, 0, 365)
	if c.valid > 0 {
		notAfter = time.Now().Add(c.valid)
	}
	sigAlg := csr.SignatureAlgorithm
	if _, ok := csr.PublicKey.(*rsa.PublicKey); !ok {
		if !c.allowEC {
			return nil, errors.New("only RSA requester keys are accepted (start the CA with -allow-ec)")
		}
		sigAlg = x509.SHA256WithRSA
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      csr.Subject, // re-encoded: Go's RDN order, as stock
		// stock: time.Now().Add(-600), i.e. 600 ns
		NotBefore:          time.Now().Add(-600).UTC(),
		NotAfter:           notAfter.UTC(),
		SubjectKeyId:       ski,
		KeyUsage:           x509.KeyUsageDigitalSignature,
		ExtKeyUsage:        []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		SignatureAlgorithm: sigAlg,
		DNSNames:           csr.DNSNames,
		EmailAddresses:     csr.EmailAddresses,
		IPAddresses:        csr.IPAddresses,
		URIs:               csr.URIs,
	}
	iss := c.issuer()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, iss.cert, csr.PublicKey, iss.key)
	if err != nil {
		return nil, err
	}
	crt, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	name := crt.Subject.CommonName
	if name == "" {
		name = string(crt.Signature)
	}
	if _, err := c.depot.HasCN(name, c.allowRenew, crt, false); err != nil {
		return nil, err
	}
	if err := c.depot.Put(name, crt); err != nil {
		return nil, err
	}
	return crt, nil
}

// findBySerial returns the certificate this CA issued with that serial.
func (c *certAuthority) findBySerial(serial *big.Int) *x509.Certificate {
	if serial == nil {
		return nil
	}
	files, _ := filepath.Glob(filepath.Join(c.dir, "*.pem"))
	for _, f := range files {
		der, err := readPEM(f, "CERTIFICATE")
		if err != nil {
			continue
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			continue
		}
		if cert.SerialNumber.Cmp(serial) == 0 && (cert.CheckSignatureFrom(c.ca.cert) == nil ||
			cert.CheckSignatureFrom(c.issuer().cert) == nil) {
			return cert
		}
	}
	return nil
}

// crl returns a DER CRL signed by the CA listing the revoked entries of
// index.txt (certificates replaced by a newer one for the same DN).
func (c *certAuthority) crl() ([]byte, []string, error) {
	var revoked []pkix.RevokedCertificate
	var serials []string
	f, err := os.Open(filepath.Join(c.dir, "index.txt"))
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) < 4 || fields[0] != "R" {
			continue
		}
		s, ok := new(big.Int).SetString(fields[3], 16)
		if !ok {
			continue
		}
		when, err := time.Parse("060102150405Z", fields[2])
		if err != nil {
			when = time.Now()
		}
		revoked = append(revoked, pkix.RevokedCertificate{SerialNumber: s, RevocationTime: when.UTC()})
		serials = append(serials, strings.ToUpper(fields[3]))
	}
	now := time.Now().UTC()
	key := c.ca.key
	if c.rogue != nil && c.rogueMode.crl {
		key = c.rogue.key // a forgery: the genuine CA's name, the rogue key
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:              big.NewInt(now.Unix()),
		ThisUpdate:          now,
		NextUpdate:          now.Add(24 * time.Hour),
		RevokedCertificates: revoked,
	}, c.ca.cert, key)
	return der, serials, err
}

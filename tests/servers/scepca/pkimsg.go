// pkimsg.go - parsing SCEP requests and building CertRep replies.
//
// PKCSReq and RenewalReq could go through the micromdm scep package alone,
// but it refuses CertPoll, GetCert and GetCRL (errNotImplemented) and has
// no PENDING reply and no failInfoText.  So requests are parsed here with
// go.mozilla.org/pkcs7, and replies are built the same way the scep
// package builds them (same attributes, SHA-1 signatures, DES-CBC
// envelopes by default), with the deliberate misbehaviours layered on top.
package main

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"go.mozilla.org/pkcs7"
)

// SCEP attribute OIDs (RFC 8894 section 3.2.1).
var (
	oidMessageType    = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 2}
	oidPkiStatus      = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 3}
	oidFailInfo       = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 4}
	oidSenderNonce    = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 5}
	oidRecipientNonce = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 6}
	oidTransactionID  = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 7}
	// id-scep-failInfoText, id-pkix 24 1 (RFC 8894 section 3.2.1.4.4)
	oidFailInfoText = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 24, 1}

	oidAES192CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
)

// Message types and statuses, as the PrintableStrings on the wire.
const (
	mtCertRep    = "3"
	mtRenewalReq = "17"
	mtUpdateReq  = "18"
	mtPKCSReq    = "19"
	mtCertPoll   = "20"
	mtGetCert    = "21"
	mtGetCRL     = "22"

	stSuccess = "0"
	stFailure = "2"
	stPending = "3"
)

var failInfoCodes = map[string]string{
	"badAlg":          "0",
	"badMessageCheck": "1",
	"badRequest":      "2",
	"badTime":         "3",
	"badCertId":       "4",
}

var failInfoNames = map[string]string{
	"0": "badAlg", "1": "badMessageCheck", "2": "badRequest",
	"3": "badTime", "4": "badCertId",
}

var statusNames = map[string]string{
	stSuccess: "SUCCESS", stFailure: "FAILURE", stPending: "PENDING",
}

// pkiRequest is one parsed (and, if possible, decrypted) pkiMessage.
type pkiRequest struct {
	p7       *pkcs7.PKCS7
	tid      string
	msgType  string
	nonce    []byte
	signer   *x509.Certificate
	sigErr   error  // signature verification result
	digest   string // digest algorithm of the signerInfo
	envAlg   string // content encryption algorithm of the pkiEnvelope
	content  []byte // decrypted pkiEnvelope, nil if decryption failed
	decErr   error
	recipErr error // why the reply could not be encrypted to the signer
}

type envContentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,optional,tag:0"`
}

type envEncryptedContentInfo struct {
	ContentType      asn1.ObjectIdentifier
	Algorithm        pkix.AlgorithmIdentifier
	EncryptedContent asn1.RawValue `asn1:"optional,tag:0"`
}

type envRecipientInfo struct {
	Version         int
	IssuerAndSerial asn1.RawValue
	KeyEncAlgorithm pkix.AlgorithmIdentifier
	EncryptedKey    []byte
}

type envEnvelopedData struct {
	Version              int
	RecipientInfos       []envRecipientInfo `asn1:"set"`
	EncryptedContentInfo envEncryptedContentInfo
}

func oidName(oid asn1.ObjectIdentifier) string {
	names := []struct {
		oid  asn1.ObjectIdentifier
		name string
	}{
		{pkcs7.OIDEncryptionAlgorithmDESCBC, "DES-CBC"},
		{pkcs7.OIDEncryptionAlgorithmDESEDE3CBC, "DES-EDE3-CBC"},
		{pkcs7.OIDEncryptionAlgorithmAES128CBC, "AES-128-CBC"},
		{oidAES192CBC, "AES-192-CBC"},
		{pkcs7.OIDEncryptionAlgorithmAES256CBC, "AES-256-CBC"},
		{pkcs7.OIDEncryptionAlgorithmAES128GCM, "AES-128-GCM"},
		{pkcs7.OIDEncryptionAlgorithmAES256GCM, "AES-256-GCM"},
		{pkcs7.OIDDigestAlgorithmSHA1, "sha1"},
		{pkcs7.OIDDigestAlgorithmSHA256, "sha256"},
		{pkcs7.OIDDigestAlgorithmSHA384, "sha384"},
		{pkcs7.OIDDigestAlgorithmSHA512, "sha512"},
		{asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5}, "md5"},
	}
	for _, n := range names {
		if oid.Equal(n.oid) {
			return n.name
		}
	}
	return oid.String()
}

// parseEnvelope reads the envelope's cipher without decrypting it.
func parseEnvelope(data []byte) (*envEnvelopedData, error) {
	var ci envContentInfo
	if _, err := asn1.Unmarshal(data, &ci); err != nil {
		return nil, err
	}
	if !ci.ContentType.Equal(pkcs7.OIDEnvelopedData) {
		return nil, errors.New("pkiEnvelope is not EnvelopedData")
	}
	var ed envEnvelopedData
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &ed); err != nil {
		return nil, err
	}
	return &ed, nil
}

// decryptAES192 covers the one CBC cipher the pkcs7 package does not know.
func decryptAES192(ed *envEnvelopedData, key *rsa.PrivateKey) ([]byte, error) {
	var ck []byte
	var err error
	for _, ri := range ed.RecipientInfos {
		ck, err = rsa.DecryptPKCS1v15(rand.Reader, key, ri.EncryptedKey)
		if err == nil && len(ck) == 24 {
			break
		}
		ck = nil
	}
	if ck == nil {
		return nil, errors.New("no recipientInfo decrypts to an AES-192 key")
	}
	var iv []byte
	if _, err := asn1.Unmarshal(ed.EncryptedContentInfo.Algorithm.Parameters.FullBytes, &iv); err != nil || len(iv) != aes.BlockSize {
		return nil, errors.New("bad AES-192-CBC IV")
	}
	ec := ed.EncryptedContentInfo.EncryptedContent
	ct := ec.Bytes
	if ec.IsCompound {
		var buf bytes.Buffer
		rest := ec.Bytes
		for len(rest) > 0 {
			var part []byte
			var err error
			if rest, err = asn1.Unmarshal(rest, &part); err != nil {
				return nil, err
			}
			buf.Write(part)
		}
		ct = buf.Bytes()
	}
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, errors.New("bad AES-192-CBC ciphertext length")
	}
	block, err := aes.NewCipher(ck)
	if err != nil {
		return nil, err
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, ct)
	pad := int(pt[len(pt)-1])
	if pad < 1 || pad > aes.BlockSize {
		return nil, errors.New("bad AES-192-CBC padding")
	}
	return pt[:len(pt)-pad], nil
}

// parseRequest parses a pkiMessage, verifies its signature (recording the
// result rather than failing, so a FAILURE badMessageCheck can be sent)
// and decrypts the pkiEnvelope with the CA's (or RA's) decryption key.
func parseRequest(data []byte, decCert *x509.Certificate, decKey *rsa.PrivateKey) (*pkiRequest, error) {
	p7, err := pkcs7.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("pkiMessage is not PKCS#7: %v", err)
	}
	r := &pkiRequest{p7: p7}
	if err := p7.UnmarshalSignedAttribute(oidTransactionID, &r.tid); err != nil {
		return nil, fmt.Errorf("no transactionID: %v", err)
	}
	if err := p7.UnmarshalSignedAttribute(oidMessageType, &r.msgType); err != nil {
		return nil, fmt.Errorf("no messageType: %v", err)
	}
	if err := p7.UnmarshalSignedAttribute(oidSenderNonce, &r.nonce); err != nil {
		return nil, fmt.Errorf("no senderNonce: %v", err)
	}
	if len(p7.Signers) > 0 {
		r.digest = oidName(p7.Signers[0].DigestAlgorithm.Algorithm)
	}
	r.signer = p7.GetOnlySigner()
	r.sigErr = p7.Verify()
	if r.signer == nil && r.sigErr == nil {
		r.sigErr = errors.New("no certificate for the signer")
	}
	for _, c := range p7.Certificates {
		if _, ok := c.PublicKey.(*rsa.PublicKey); !ok {
			r.recipErr = fmt.Errorf("the request carries a %T certificate; this CA can only encrypt replies to RSA keys", c.PublicKey)
		}
	}

	ed, err := parseEnvelope(p7.Content)
	if err != nil {
		r.decErr = fmt.Errorf("cannot parse the pkiEnvelope: %v", err)
		return r, nil
	}
	r.envAlg = oidName(ed.EncryptedContentInfo.Algorithm.Algorithm)
	if ed.EncryptedContentInfo.Algorithm.Algorithm.Equal(oidAES192CBC) {
		r.content, r.decErr = decryptAES192(ed, decKey)
		return r, nil
	}
	env, err := pkcs7.Parse(p7.Content)
	if err != nil {
		r.decErr = fmt.Errorf("cannot parse the pkiEnvelope: %v", err)
		return r, nil
	}
	r.content, err = env.Decrypt(decCert, decKey)
	if err != nil {
		r.decErr = fmt.Errorf("cannot decrypt the pkiEnvelope (%s) with the key of %q: %v",
			r.envAlg, decCert.Subject.CommonName, err)
	}
	return r, nil
}

// repOptions describe one CertRep and how to spoil it.
type repOptions struct {
	status     string
	failInfo   string // code "0".."4"
	failText   string
	content    []byte              // degenerate PKCS#7 to envelope (SUCCESS)
	extraCerts []*x509.Certificate // added before the signer (stock: the issued cert)
	digest     string              // sha1 (stock) or sha256
	badSig     bool
	wrongNonce bool
	wrongTid   bool
	wrongType  bool
}

// buildCertRep builds a CertRep the way the micromdm scep package does.
func buildCertRep(req *pkiRequest, signCert *x509.Certificate, signKey *rsa.PrivateKey, o *repOptions) ([]byte, error) {
	var envelope []byte
	if o.status == stSuccess {
		var err error
		if req.recipErr != nil {
			return nil, req.recipErr
		}
		envelope, err = pkcs7.Encrypt(o.content, req.p7.Certificates)
		if err != nil {
			return nil, err
		}
	}
	tid := req.tid
	if o.wrongTid {
		tid = "not-" + tid
	}
	rnonce := []byte(req.nonce)
	if o.wrongNonce {
		rnonce = make([]byte, 16)
		rand.Read(rnonce)
	}
	mt := mtCertRep
	if o.wrongType {
		mt = mtPKCSReq
	}
	attrs := []pkcs7.Attribute{
		{Type: oidTransactionID, Value: tid},
		{Type: oidPkiStatus, Value: o.status},
	}
	if o.status == stFailure {
		attrs = append(attrs, pkcs7.Attribute{Type: oidFailInfo, Value: o.failInfo})
		if o.failText != "" {
			attrs = append(attrs, pkcs7.Attribute{Type: oidFailInfoText,
				Value: asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte(o.failText)}})
		}
	}
	attrs = append(attrs,
		pkcs7.Attribute{Type: oidMessageType, Value: mt},
		// stock quirk kept: the scep package echoes the client's nonce as
		// its own senderNonce too
		pkcs7.Attribute{Type: oidSenderNonce, Value: req.nonce},
		pkcs7.Attribute{Type: oidRecipientNonce, Value: rnonce},
	)
	sd, err := pkcs7.NewSignedData(envelope)
	if err != nil {
		return nil, err
	}
	if o.digest == "sha256" {
		sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	}
	for _, c := range o.extraCerts {
		sd.AddCertificate(c)
	}
	if err := sd.AddSigner(signCert, signKey, pkcs7.SignerInfoConfig{ExtraSignedAttributes: attrs}); err != nil {
		return nil, err
	}
	if o.badSig {
		si := sd.GetSignedData().SignerInfos
		si[0].EncryptedDigest[len(si[0].EncryptedDigest)/2] ^= 0x5a
	}
	return sd.Finish()
}

// degenerate builds a certs-only / CRLs-only SignedData (no signers).
func degenerate(certs []*x509.Certificate, crls [][]byte) ([]byte, error) {
	type signedData struct {
		Version          int
		DigestAlgorithms []pkix.AlgorithmIdentifier `asn1:"set"`
		ContentInfo      envContentInfo
		Certificates     asn1.RawValue   `asn1:"optional"`
		CRLs             asn1.RawValue   `asn1:"optional"`
		SignerInfos      []asn1.RawValue `asn1:"set"`
	}
	sd := signedData{
		Version:          1,
		DigestAlgorithms: []pkix.AlgorithmIdentifier{},
		ContentInfo:      envContentInfo{ContentType: pkcs7.OIDData},
		SignerInfos:      []asn1.RawValue{},
	}
	if len(certs) > 0 {
		var buf bytes.Buffer
		for _, c := range certs {
			buf.Write(c.Raw)
		}
		sd.Certificates = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: buf.Bytes()}
	}
	if len(crls) > 0 {
		sd.CRLs = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, IsCompound: true, Bytes: bytes.Join(crls, nil)}
	}
	inner, err := asn1.Marshal(sd)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(envContentInfo{
		ContentType: pkcs7.OIDSignedData,
		Content:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner},
	})
}

// issuerAndSerial is the content of GetCert and GetCRL.
type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

// issuerAndSubject is the content of CertPoll (GetCertInitial).
type issuerAndSubject struct {
	Issuer  asn1.RawValue
	Subject asn1.RawValue
}

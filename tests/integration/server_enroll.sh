#!/bin/bash
# server suite: enroll with file keys against the stock-behaving test CA:
# cipher, digest and GET/POST chosen from the caps, -E/-S overrides,
# challenge password, FAILURE replies.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

mkkey local.key
mkcsr local.key local.csr "/CN=dev1.example/O=Example"

# enroll_ok NAME ARGS...: enroll NAME.crt with local.key/local.csr
enroll_ok() {
	_n=$1
	shift
	t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -k local.key -r local.csr -l "$_n.crt" "$@"
	t_ok "$_n: the certificate holds our key" cert_has_key "$_n.crt" local.key
}

# --- stock CA: Renewal SHA-1 SHA-256 AES DES3 SCEPStandard POSTPKIOperation
ca_start -allowrenew 0
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
enroll_ok stock
t_ok "stock: issued by the CA" ca_verify ca.crt stock.crt
t_like "$(openssl x509 -in stock.crt -noout -subject)" 'CN *= *dev1.example' "stock: subject CN kept"
t_like "$(openssl x509 -in stock.crt -noout -subject)" '^subject=O *= *Example, *CN *= *dev1.example$' \
	"stock: RDNs reordered by the CA (requested /CN/O), and still accepted as ours"
t_is "$(ca_log_field -1 msgType)" 19 "stock: PKCSReq sent"
t_is "$(ca_log_field -1 method)" POST "stock: POST (POSTPKIOperation offered)"
t_is "$(ca_log_field -1 enc)" AES-128-CBC "stock: AES-128 chosen from the caps"
t_is "$(ca_log_field -1 digest)" sha256 "stock: SHA-256 chosen from the caps"
t_is "$(ca_log_field -1 signer)" selfsigned "stock: signed with a self-signed certificate"
t_is "$(ca_log_field -1 status)" SUCCESS "stock: CA answered SUCCESS"
t_is "$(ca_log_field -1 stock)" true "stock: the reply came from the micromdm library (DES-CBC, SHA-1)"
t_grep 'Serial|serial' "$T_OUT" "stock: prints the serial"

# -L writes the self-signed certificate
enroll_ok selfsigned -L self.crt
t_ok "-L: self-signed certificate of our key" cert_has_key self.crt local.key

# user choices override the caps
enroll_ok des3 -E 3des
t_is "$(ca_log_field -1 enc)" DES-EDE3-CBC "-E 3des: DES3 envelope"
enroll_ok des -E des
t_is "$(ca_log_field -1 enc)" DES-CBC "-E des: single DES on request"
enroll_ok aes256 -E aes256
t_is "$(ca_log_field -1 enc)" AES-256-CBC "-E aes256"
enroll_ok aes192 -E aes192
t_is "$(ca_log_field -1 enc)" AES-192-CBC "-E aes192"
enroll_ok sha1 -S sha1
t_is "$(ca_log_field -1 digest)" sha1 "-S sha1"
enroll_ok sha512 -S sha512
t_is "$(ca_log_field -1 digest)" sha512 "-S sha512"

# --get: never POST
enroll_ok forcedget --get
t_is "$(ca_log_field -1 method)" GET "--get: GET although POST is offered"
ca_new

# --- an old CA: DES3 and SHA-1 only, no POST -> GET, DES3, SHA-1
ca_start -allowrenew 0 -caps 'DES3\nSHA-1'
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
enroll_ok old
t_is "$(ca_log_field -1 method)" GET "old CA: GET (no POSTPKIOperation)"
t_is "$(ca_log_field -1 enc)" DES-EDE3-CBC "old CA: DES3 from the caps"
t_is "$(ca_log_field -1 digest)" sha1 "old CA: SHA-1 from the caps"
ca_new

# --- SCEPStandard alone implies POST, AES and SHA-256 (RFC 8894)
ca_start -allowrenew 0 -caps 'SCEPStandard'
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
enroll_ok standard
t_is "$(ca_log_field -1 method)" POST "SCEPStandard: POST"
t_is "$(ca_log_field -1 enc)" AES-128-CBC "SCEPStandard: AES"
t_is "$(ca_log_field -1 digest)" sha256 "SCEPStandard: SHA-256"
ca_new

# --- AES and SHA-512 offered, GET only
ca_start -allowrenew 0 -caps 'AES\nSHA-512\nSHA-256'
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
enroll_ok aesget
t_is "$(ca_log_field -1 method)" GET "no POSTPKIOperation: GET"
t_is "$(ca_log_field -1 enc)" AES-128-CBC "AES offered: AES-128"
t_is "$(ca_log_field -1 digest)" sha256 "SHA-256 preferred unless SHA-512 is asked for"
ca_new

# --- reply with an AES-256 envelope and a SHA-256 signature
ca_start -allowrenew 0 -reply-cipher aes256 -reply-digest sha256
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
enroll_ok aesreply
ca_new

# --- challenge password
ca_start -allowrenew 0 -challenge "$T_CHAL"
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
t_expect_exit 2 sa enroll -u "$CA_URL" -c ca.crt -k local.key -r local.csr -l nochal.crt
t_grep 'badRequest' "$T_ERR" "no challenge: failInfo named"
t_grep 'requires a challenge password' "$T_ERR" "no challenge: the CA's failInfoText shown"
t_no_file nochal.crt "no challenge: no certificate written"
t_is "$(ca_log_field -1 challenge_ok)" false "no challenge: the CA saw none"
mkcsr local.key wrong.csr "/CN=dev1.example/O=Example" "wrong"
t_expect_exit 2 sa enroll -u "$CA_URL" -c ca.crt -k local.key -r wrong.csr -l wrong.crt
t_grep 'challenge password is wrong' "$T_ERR" "wrong challenge: the CA's failInfoText shown"
t_no_file wrong.crt "wrong challenge: no certificate written"
mkcsr local.key good.csr "/CN=dev1.example/O=Example" "$T_CHAL"
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -k local.key -r good.csr -l good.crt
t_ok "right challenge: certificate of our key" cert_has_key good.crt local.key
t_is "$(ca_log_field -1 challenge_ok)" true "right challenge: accepted"
ca_new

# --- key and request made by scep-agent mkrequest, challenge from the env
ca_start -allowrenew 0 -challenge "$T_CHAL"
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
t_expect_exit 0 env CH="$T_CHAL" "$SCEP_AGENT" mkrequest -k mk.key -r mk.csr \
	--subject "/CN=mk.example/O=Example Org" --san DNS:mk.example --san IP:192.0.2.7 --challenge-env CH
t_file mk.key "mkrequest wrote the key"
t_file mk.csr "mkrequest wrote the request"
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -k mk.key -r mk.csr -l mk.crt
t_ok "mkrequest + enroll: certificate of the new key" cert_has_key mk.crt mk.key
t_is "$(ca_log_field -1 challenge_ok)" true "mkrequest put the challenge in the request"
t_like "$(openssl x509 -in mk.crt -noout -ext subjectAltName 2>/dev/null | tr -d ' \n')" \
	'DNS:mk.example,IPAddress:192.0.2.7' "mkrequest: subjectAltNames reach the certificate"
ca_new

# --- the stock DN rule: a second certificate for the same DN is refused
ca_start
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
enroll_ok first
t_expect_exit 2 sa enroll -u "$CA_URL" -c ca.crt -k local.key -r local.csr -l second.crt
t_grep 'already exists' "$T_ERR" "same DN: the CA's reason is shown"
t_no_file second.crt "same DN: no certificate written"
ca_new

# --- every failInfo, with and without failInfoText
for fi in badAlg badMessageCheck badRequest badTime badCertId; do
	ca_start -fail "$fi" -fail-text "text for $fi"
	t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
	t_expect_exit 2 sa enroll -u "$CA_URL" -c ca.crt -k local.key -r local.csr -l "$fi.crt"
	t_grep "$fi" "$T_ERR" "FAILURE $fi: failInfo named"
	t_grep "text for $fi" "$T_ERR" "FAILURE $fi: failInfoText shown"
	t_no_file "$fi.crt" "FAILURE $fi: no certificate written"
	ca_new
done
ca_start -fail badTime
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
t_expect_exit 2 sa enroll -u "$CA_URL" -c ca.crt -k local.key -r local.csr -l t.crt
t_grep 'badTime' "$T_ERR" "FAILURE without failInfoText: failInfo named"
t_grep '[Cc]lock|time' "$T_ERR" "FAILURE badTime: a hint about the clock"

done_testing

package provider

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"mime"
	"net/url"
	"sort"
)

// Twilio signs base64 HMAC-SHA1 with the auth token over the url it calls
// (with its query) followed, for a form body, by every parameter's name
// and value sorted by name. A JSON body is not signed itself: the url
// carries its SHA-256 as bodySHA256, which must match. Nothing signed says
// when.
var Twilio = register(&Scheme{
	Name:             "twilio",
	SignatureHeaders: canonical("X-Twilio-Signature"),
	Algorithm:        SHA1,
	Encoding:         Base64,
	Message:          []Part{urlPart, bodyPart},
	BuildMessage:     twilioMessage,
	NeedsURL:         true,
	QueryInURL:       true,
	DeliveryHeaders:  canonical("I-Twilio-Idempotency-Token"),
	FormatHeader:     func(_ string, sigs []string) string { return join(sigs, "", ", ") },
})

// twilioMessage writes what Twilio signs for a request to signedURL.
func twilioMessage(dst []byte, signedURL, contentType string, body []byte) ([]byte, error) {
	dst = append(dst, signedURL...)
	if media, _, _ := mime.ParseMediaType(contentType); media == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("%w: form body: %v", ErrInvalidSignature, err)
		}
		return AppendTwilioParams(dst, form), nil
	}
	if len(body) == 0 {
		return dst, nil
	}
	u, err := url.Parse(signedURL)
	if err != nil {
		return nil, ErrInvalidSignature
	}
	want := u.Query().Get("bodySHA256")
	sum := sha256.Sum256(body)
	if subtle.ConstantTimeCompare([]byte(want), []byte(hex.EncodeToString(sum[:]))) != 1 {
		return nil, fmt.Errorf("%w: body does not match bodySHA256", ErrInvalidSignature)
	}
	return dst, nil
}

// AppendTwilioParams writes form parameters as Twilio signs them: sorted
// by name, each name followed by its value.
func AppendTwilioParams(dst []byte, form url.Values) []byte {
	names := make([]string, 0, len(form))
	for name := range form {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		values := append([]string(nil), form[name]...)
		sort.Strings(values)
		for _, value := range values {
			dst = append(append(dst, name...), value...)
		}
	}
	return dst
}

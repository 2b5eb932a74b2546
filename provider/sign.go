package provider

import (
	"crypto/ed25519"
	"crypto/hmac"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
)

// Message is what a sender signs: the values that go into a scheme's
// signed bytes.
type Message struct {
	ID        string
	Timestamp string
	// URL is the full url the request goes to, query included.
	URL         string
	ContentType string
	Body        []byte
}

// Sign returns the headers a sender of this scheme sets for m: the
// signature header and, where the scheme has them, the timestamp and id
// headers. key is the secret as configured (a "whsec_" secret is decoded
// where the scheme does), or for Ed25519 a 32-byte seed or 64-byte private
// key. Signing and verifying share the message code, so they cannot drift.
func (s *Scheme) Sign(key []byte, m Message) (http.Header, error) {
	c := &Check{Timestamp: m.Timestamp, ID: m.ID, contentType: m.ContentType}
	v := &Verifier{scheme: s, url: m.URL}
	var raw []byte
	switch s.Algorithm {
	case Token:
		raw = key
	case Ed25519:
		var priv ed25519.PrivateKey
		switch len(key) {
		case ed25519.SeedSize:
			priv = ed25519.NewKeyFromSeed(key)
		case ed25519.PrivateKeySize:
			priv = ed25519.PrivateKey(key)
		default:
			return nil, errors.New("an Ed25519 key is a 32-byte seed or a 64-byte private key")
		}
		raw = ed25519.Sign(priv, v.appendMessage(nil, c, m.Body, ""))
	default:
		secret, err := s.decodeSecret(key)
		if err != nil {
			return nil, err
		}
		var msg []byte
		if s.BuildMessage != nil {
			if msg, err = s.BuildMessage(nil, m.URL, m.ContentType, m.Body); err != nil {
				return nil, err
			}
		} else {
			msg = v.appendMessage(nil, c, m.Body, "")
		}
		mac := hmac.New(s.hash(), secret)
		mac.Write(msg)
		raw = mac.Sum(nil)
	}
	var encoded string
	switch {
	case s.Algorithm == Token:
		encoded = string(raw)
	case s.Encoding == Base64:
		encoded = base64.StdEncoding.EncodeToString(raw)
	default:
		encoded = hex.EncodeToString(raw)
	}
	header := make(http.Header)
	header.Set(s.SignatureHeaders[0], s.FormatHeader(m.Timestamp, []string{encoded}))
	if s.Timestamp == HeaderTimestamp {
		header.Set(s.TimestampHeader, m.Timestamp)
	}
	if s.IDHeader != "" {
		header.Set(s.IDHeader, m.ID)
	}
	return header, nil
}

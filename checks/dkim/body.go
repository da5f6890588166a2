package dkim

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"io"
	"strings"
)

// bodyLength counts the octets of the body after the RFC 6376 §3.4.3
// ("simple") or §3.4.4 ("relaxed") body canonicalization, the quantity an
// l= tag is compared with. It only counts: go-msgauth computes the hash.
// Line ends are normalised as go-msgauth does: a lone LF counts as CRLF;
// in relaxed mode a lone CR is held back like a line end.
type bodyLength struct {
	relaxed bool
	n       int64 // octets emitted so far
	pending int64 // line-end octets held back, emitted only if content follows
	wsp     bool  // white space held back (relaxed)
	cr      bool  // the previous octet was CR
}

func (b *bodyLength) Write(p []byte) (int, error) {
	for _, c := range p {
		switch {
		case c == '\n':
			if b.cr {
				b.pending++ // the LF of a CRLF
			} else {
				b.pending += 2 // a lone LF, counted as CRLF
			}
			b.cr, b.wsp = false, false
		case c == '\r':
			if b.cr && !b.relaxed {
				// simple: the previous CR had no LF, so it is content.
				b.n += b.pending
				b.pending = 0
			}
			b.pending++
			b.cr, b.wsp = true, false
		case b.relaxed && (c == ' ' || c == '\t'):
			// §3.4.4: runs of WSP become one SP; WSP at a line end goes.
			b.wsp, b.cr = true, false
		default:
			b.n += b.pending
			b.pending = 0
			if b.wsp {
				b.n++
				b.wsp = false
			}
			b.n++
			b.cr = false
		}
	}
	return len(p), nil
}

// Len ends the count: empty lines at the end are ignored; simple then adds
// one CRLF (an empty body is "CRLF"), relaxed adds one only after content
// (an empty body stays empty).
func (b *bodyLength) Len() int64 {
	n := b.n
	if !b.relaxed && b.cr {
		n += b.pending // the body ends in a lone CR: content
	}
	if !b.relaxed || n > 0 {
		n += 2
	}
	return n
}

// canonicalBodyLength reads r to the end and returns its canonical length.
func canonicalBodyLength(r io.Reader, relaxed bool) (int64, error) {
	b := &bodyLength{relaxed: relaxed}
	if _, err := io.Copy(b, r); err != nil {
		return 0, err
	}
	return b.Len(), nil
}

// rsaKeyBits returns the size of the RSA key in a DKIM key record
// (RFC 6376 §3.6.1), or 0 when the record holds no parseable RSA key.
// go-msgauth checks the key itself; this only tells "too short for RFC
// 8301 or for Config.MinRSABits" apart from other key errors.
func rsaKeyBits(record string) int {
	tags, err := parseTagList(record)
	if err != nil {
		return 0
	}
	if k := strings.ToLower(stripFWS(tags["k"])); k != "" && k != "rsa" {
		return 0
	}
	der, err := base64.StdEncoding.DecodeString(stripFWS(tags["p"]))
	if err != nil || len(der) == 0 {
		return 0
	}
	if pub, err := x509.ParsePKIXPublicKey(der); err == nil {
		if k, ok := pub.(*rsa.PublicKey); ok {
			return k.N.BitLen()
		}
		return 0
	}
	if k, err := x509.ParsePKCS1PublicKey(der); err == nil {
		return k.N.BitLen()
	}
	return 0
}

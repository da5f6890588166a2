package uribl

import (
	"bytes"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"chainmail/checks"
	"chainmail/checks/dns"
	"chainmail/checks/dnsbl"
)

// FuzzExtract feeds whole messages to the extractor. Whatever the input,
// extraction ends, stays under its caps, and only yields keys that can be
// looked up: a valid domain in ASCII or a public address. The seed corpus
// is testdata/fuzz/FuzzExtract.
func FuzzExtract(f *testing.F) {
	f.Add([]byte("Subject: http://a.example.com\r\nContent-Type: text/html\r\n\r\n<a href=\"http://www.example.net/r?u=http%3A%2F%2Fwww.cnn.com%2F\">http://www.cnn.com</a>\r\n"))
	f.Add([]byte("\r\nsee www.example.org and bob@example.com http://[2001:db8::1]/ http://0x7f.1/\r\n"))
	f.Add([]byte("Content-Type: text/html\r\n\r\n<a href=\"https://bit.ly/x?u=1\">a</a> HTTP://www.bit.ly/y. ftp://bit.ly/z\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := checks.ReadMessage(bytes.NewReader(raw), checks.NewSpool(0, ""))
		if err != nil {
			return
		}
		lim := Limits{MaxKeys: 8, MaxURLs: 200, MaxScan: 1 << 20, MaxLinks: 8, Shorteners: map[string]bool{"bit.ly": true}, MaxShort: 4}
		found := Extract(m, lim)
		if len(found.Keys) > lim.MaxKeys || len(found.Emails) > lim.MaxKeys || len(found.Links) > lim.MaxLinks {
			t.Fatalf("over the caps: %d keys, %d emails, %d links", len(found.Keys), len(found.Emails), len(found.Links))
		}
		if found.URLs > lim.MaxURLs+1 {
			t.Fatalf("%d URLs parsed, cap %d", found.URLs, lim.MaxURLs)
		}
		seen := map[string]bool{}
		for _, k := range found.Keys {
			if seen[k.Value] {
				t.Fatalf("key %q twice", k.Value)
			}
			seen[k.Value] = true
			if k.Origins == 0 {
				t.Fatalf("key %q without origin", k.Value)
			}
			if k.Host.ip.IsValid() {
				if !dnsbl.Public(k.Host.ip) || k.Value != k.Host.ip.String() {
					t.Fatalf("address key %q", k.Value)
				}
				continue
			}
			if d, ok := dnsbl.Domain(k.Value); !ok || d != k.Value || !utf8.ValidString(k.Value) || strings.ContainsAny(k.Value, " @/") {
				t.Fatalf("domain key %q", k.Value)
			}
			if r := dns.OrganizationalDomain(k.Value); r != k.Value {
				t.Fatalf("key %q is not registrable (%q)", k.Value, r)
			}
		}
		for _, e := range found.Emails {
			if e.Local == "" || e.Domain == "" {
				t.Fatalf("email %+v", e)
			}
		}
		if len(found.Short) > lim.MaxShort {
			t.Fatalf("%d shortened URLs, cap %d", len(found.Short), lim.MaxShort)
		}
		for _, s := range found.Short {
			u, err := url.Parse(s.URL)
			if err != nil {
				continue // followed only when it parses (follow says "unparsable URL")
			}
			if u.Scheme != "http" && u.Scheme != "https" || len(s.URL) > maxShortURL || s.Origins == 0 {
				t.Fatalf("shortened URL %q", s.URL)
			}
		}
		p, _ := newPhishing(DefaultPhishing())
		p.find(found.Links)
	})
}

package uribl

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"chainmail/checks"
)

func parse(t testing.TB, raw string) *checks.Message {
	t.Helper()
	m, err := checks.ReadMessage(strings.NewReader(raw), checks.NewSpool(0, ""))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// keys lists "value/origins" of what was found, origins as letters:
// l(ink) t(ext) i(mage) s(ubject) e(mail) r(eply-to).
func keys(f *Found) []string {
	var out []string
	for _, k := range f.Keys {
		out = append(out, k.Value+"/"+originLetters(k.Origins))
	}
	return out
}

func originLetters(o Origin) string {
	var b strings.Builder
	for i, c := range "ltiser" {
		if o&(1<<i) != 0 {
			b.WriteRune(c)
		}
	}
	return b.String()
}

func emails(f *Found) []string {
	var out []string
	for _, e := range f.Emails {
		out = append(out, e.Local+"@"+e.Domain)
	}
	return out
}

func TestExtract(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		keys      []string
		emails    []string
	}{
		{"plain", "Subject: hi\r\n\r\nsee http://Example.COM/path, www.example.org. and write to bob@Example.net!\r\n",
			[]string{"example.com/t", "example.org/t", "example.net/e"}, []string{"bob@example.net"}},
		{"no content-type is text/plain", "\r\nhttps://a.b.example.co.uk/x\r\n", []string{"example.co.uk/t"}, nil},
		{"subject and reply-to", "Subject: =?utf-8?q?visit_https=3A//sub.example=2Ecom/x?=\r\nReply-To: \"X\" <Carol@Reply.example.org>\r\n\r\nbody\r\n",
			[]string{"example.com/s", "example.org/r"}, []string{"carol@reply.example.org"}},
		{"html", "Content-Type: text/html\r\n\r\n<html><body><a href=\"http://link.example.com/x\">text</a> <img src='https://img.example.net/a.png'>" +
			"<p>visit http://exa&#109;ple.org/ today</p><form action=//form.example.com/post></form>" +
			"<a href=\"mailto:alice@example.org?subject=x\">mail</a><script>var u='http://script.example/'</script></body></html>\r\n",
			[]string{"example.com/l", "example.net/i", "example.org/te"}, []string{"alice@example.org"}},
		{"html spacing", "Content-Type: text/html\r\n\r\nwww.exa<b>mple</b>.com<br>www.example.net<div>.org</div>\r\n",
			[]string{"example.com/t", "example.net/t"}, nil},
		{"soft hyphens, backslashes, percent-encoding, embedded", "Content-Type: text/html\r\n\r\n" +
			"<a href=\"https:/\\test&shy;test.&shy;com/redirect?url=https%3A%2F%2Fexample%2Ecom&amp;h=1#x@example.net\">click</a>" +
			"<a href=\"http://%65xample.org/\">x</a>\r\n",
			[]string{"testtest.com/l", "example.com/l", "example.net/e", "example.org/l"}, []string{"x@example.net"}},
		{"userinfo is not an address", "\r\nhttp://paypal.com@evil.example.net/login http://user:pass@host.example.org:8080/\r\n",
			[]string{"example.net/t", "example.org/t"}, nil},
		{"IDN both ways", "\r\nhttp://мойсайт.рф/ and http://xn--80arbjktj.xn--p1ai/ and http://МОЙСАЙТ.РФ\r\n",
			[]string{"xn--80arbjktj.xn--p1ai/t"}, nil},
		{"homograph", "\r\nhttp://pаypal.com/ (Cyrillic a)\r\n", []string{"xn--pypal-4ve.com/t"}, nil},
		{"addresses", "Content-Type: text/html\r\n\r\n<a href=\"http://192.0.2.2/\">a</a> <a href=\"http://0xc0.0.2.2/\">b</a>" +
			"<a href=\"http://3221225989/\">c</a><a href=\"http://[2001:db8::1]:80/\">d</a><a href=\"http://10.0.0.1/\">private</a>" +
			"<a href=\"http://127.1/\">loopback</a>\r\n",
			[]string{"192.0.2.2/l", "192.0.2.5/l", "2001:db8::1/l"}, nil},
		{"private suffix", "\r\nhttp://user.blogspot.com/ http://x.user.blogspot.com/ http://judo.za.org/\r\n",
			[]string{"user.blogspot.com/t", "judo.za.org/t"}, nil},
		{"not hosts", "\r\nlogo@2x.png version 1.2.3 http://localhost/ http://999.1.1.1.1/ file:///etc/passwd javascript:alert(1) http://-/\r\n", nil, nil},
		{"base64 and quoted-printable, charsets", "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n" +
			"--b1\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
			"caf=E9 http://qp.exam=\r\nple.com/\r\n" +
			"--b1\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
			"PGEgaHJlZj0iaHR0cDovL2I2NC5leGFtcGxlLm5ldC8iPng8L2E+\r\n" +
			"--b1\r\nContent-Type: text/plain; charset=x-unknown-charset\r\n\r\nhttp://unknown.example.org/\r\n" +
			"--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\naHR0cDovL2F0dGFjaG1lbnQuZXhhbXBsZS5pbmZvLw==\r\n" +
			"--b1--\r\n",
			[]string{"example.com/t", "example.net/l", "example.org/t"}, nil},
		{"attached message, nested encodings", "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n" +
			"Content-Type: message/rfc822\r\n\r\nSubject: inner http://inner-subject.example.com/\r\n" +
			"Content-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
			// base64 of quoted-printable text: decoded once only, as a mail client shows it.
			"aHR0cDovL25lc3RlZC5leGFtcGxlLm9yZy89MEQ=\r\n--i--\r\n--o--\r\n",
			[]string{"example.com/t", "example.org/t"}, nil},
		{"windows-1251", "Content-Type: text/plain; charset=windows-1251\r\nContent-Transfer-Encoding: 8bit\r\n\r\nhttp://\xec\xee\xe9\xf1\xe0\xe9\xf2.\xf0\xf4/\r\n",
			[]string{"xn--80arbjktj.xn--p1ai/t"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := Extract(parse(t, tc.raw), Limits{})
			if got := keys(f); !slices.Equal(got, tc.keys) {
				t.Errorf("keys %q, want %q", got, tc.keys)
			}
			if got := emails(f); !slices.Equal(got, tc.emails) {
				t.Errorf("emails %q, want %q", got, tc.emails)
			}
		})
	}
}

// Dedupe by registrable domain, the cap on distinct keys, exclusions.
func TestExtractCapAndExclude(t *testing.T) {
	var b strings.Builder
	b.WriteString("\r\n")
	for i := range 100 {
		fmt.Fprintf(&b, "http://www%d.site%d.com/ http://other.site%d.com/\r\n", i, i, i)
	}
	f := Extract(parse(t, b.String()), Limits{MaxKeys: 50, Exclude: map[string]bool{"site3.com": true}})
	if len(f.Keys) != 50 || f.Keys[3].Value != "site4.com" || f.URLs != 200 || f.Dropped != 2*(100-51) {
		t.Errorf("%d keys, first %v, %d URLs, %d dropped", len(f.Keys), f.Keys[:4], f.URLs, f.Dropped)
	}
}

func TestHrefs(t *testing.T) {
	for in, want := range map[string]string{
		"http://a.example.com/x":       "a.example.com",
		"HTTPS://A.Example.COM.":       "a.example.com",
		"//cdn.example.net/x.js":       "cdn.example.net",
		"www.example.org/path":         "www.example.org",
		"https:\\\\evil.example.com\\": "evil.example.com",
		" http://exa\tmple.com ":       "example.com",
		"http://x@y@z.example.com/":    "z.example.com",
		"http://[::ffff:192.0.2.9]/":   "192.0.2.9",
		"http://0300.0250.1.1/":        "192.168.1.1",
		"http://2130706433/":           "127.0.0.1",
		"/relative/path":               "",
		"#top":                         "",
		"cid:part1@example.com":        "",
		"data:text/html,hi":            "",
		"http://":                      "",
		"http://[oops/":                "",
	} {
		h, _, ok := parseHref(in)
		got := ""
		if ok {
			got = h.String()
		}
		if got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

func TestDisplayHost(t *testing.T) {
	for in, want := range map[string]string{
		"http://www.cnn.com":               "www.cnn.com",
		" www.paypal.com/login ":           "www.paypal.com",
		"paypal.com":                       "paypal.com",
		"<https://bank.example.co.uk/>":    "bank.example.co.uk",
		"click here":                       "",
		"file.exe":                         "",
		"Version 2.0":                      "",
		"user@example.com":                 "",
		"192.0.2.1":                        "192.0.2.1",
		"pаypal.com (Cyrillic)":            "",
		"pаypal.com":                       "xn--pypal-4ve.com",
		"\u200bwww.example.com\u00a0":      "www.example.com",
		strings.Repeat("a", 5000) + ".com": "",
	} {
		h, ok := displayHost(in)
		got := ""
		if ok {
			got = h.String()
		}
		if got != want {
			t.Errorf("%.40q: %q, want %q", in, got, want)
		}
	}
}

func TestPhishing(t *testing.T) {
	p, err := newPhishing(PhishingConfig{Enabled: true, Symbol: "PHISHING", Score: 4, Redirectors: []string{"t.co"},
		Strict: []StrictSites{{Symbol: "PHISHING_BANK", Score: 8, Domains: []string{"bank.com"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		href, text, want string
	}{
		{"http://www.example.net", "http://www.cnn.com", "PHISHING cnn.com->example.net"},
		{"http://www.example.net", "http://www.bank.com", "PHISHING_BANK bank.com->example.net"},
		{"http://login.cnn.com/x", "www.cnn.com", ""},
		{"http://www.davidaustinroses.com", "http://www.davidaustinroses.co.za", ""},
		{"http://www.example.net/r?u=http%3A%2F%2Fwww.cnn.com%2F", "http://www.cnn.com", ""},
		{"http://www.example.net/r?u=http%3A%2F%2Fwww.cnn.com%2F&v=http%3A%2F%2Fevil.org%2F", "http://www.cnn.com", "PHISHING cnn.com->example.net"},
		{"http://www.example.net/r?u=http%3A%2F%2Fmid.com%2F%3Fv%3Dhttp%253A%252F%252Fwww.cnn.com%252F", "http://www.cnn.com", ""},
		{"http://www.example.net/r?u=http%3A%2F%2Fwww.cnn.com%2F%3Fv%3Dhttp%253A%252F%252Fevil.org%252F", "http://www.cnn.com", "PHISHING cnn.com->example.net"},
		{"https://t.co/abc", "www.cnn.com", ""},
		{"http://192.0.2.1/login", "www.paypal.com", "PHISHING paypal.com->192.0.2.1"},
		{"http://xn--pypal-4ve.com/", "https://paypal.com", "PHISHING paypal.com->xn--pypal-4ve.com"},
		{"http://www.example.net", "click here", ""},
	} {
		h, rest, ok := parseHref(tc.href)
		if !ok {
			t.Fatalf("%s does not parse", tc.href)
		}
		got := ""
		for _, s := range p.find([]Link{{Href: tc.href, Host: h, Rest: rest, Text: tc.text}}) {
			got = s.Name + " " + s.Detail
		}
		if got != tc.want {
			t.Errorf("%s / %s: %q, want %q", tc.href, tc.text, got, tc.want)
		}
	}
}

// An unparseable message body is still scanned.
func TestExtractRawFallback(t *testing.T) {
	m := &checks.Message{Header: []checks.HeaderField{{Name: "Content-Type", Value: "multipart/mixed; boundary=\"unterminated"}},
		Body: spool("--unterminated\r\n\r\nhttp://a.example.com/\r\n")}
	f := Extract(m, Limits{})
	if got := keys(f); !slices.Equal(got, []string{"example.com/t"}) {
		t.Errorf("%v", got)
	}
}

func spool(s string) *checks.Spool {
	sp := checks.NewSpool(0, "")
	sp.Write([]byte(s))
	return sp
}

package spf

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func TestParseRecordValid(t *testing.T) {
	for _, txt := range []string{
		"v=spf1",
		"V=SPF1 -ALL",
		"v=spf1 ",
		"v=spf1  a  -all ",
		"v=spf1 +all",
		"v=spf1 a mx ptr ?all",
		"v=spf1 a:example.com a:example.com/24 a:example.com//64 a:example.com/24//64 a/0 a//0 a/32//128",
		"v=spf1 mx:example.com mx/24 mx//48",
		"v=spf1 ptr:example.com ptr",
		"v=spf1 ip4:192.0.2.0/24 ip4:192.0.2.1 ip4:0.0.0.0/0 ip4:255.255.255.255/32",
		"v=spf1 ip6:2001:db8::/32 ip6:::1 ip6:::ffff:192.0.2.1 ip6:2001:db8::1/128",
		"v=spf1 include:_spf.example.com exists:%{i}.%{l1r-}.user.%{d2}",
		"v=spf1 redirect=_spf.example.com",
		"v=spf1 -all exp=explain._spf.%{d}",
		"v=spf1 a:%{H}",         // ends in a macro: no top label check
		"v=spf1 a:foo%%",        // %% is a macro-expand too
		"v=spf1 a:example.com.", // trailing dot
		"v=spf1 a:foo.example.xn--zckzah",
		"v=spf1 a:foo.123-456", // a top label may be all digits around a dash
		"v=spf1 a:foo:bar/baz.example.com",
		"v=spf1 moo.cow-far_out=man:dog/cat default=+ foo=%{c}%{r}%{t}",
		"v=spf1 exists:%{ir}.%{v}._spf.%{d2} ~exists:%{l}.%{o}.%{s}.%{p}.%{h}.%{d}.example",
		"v=spf1 exists:%{d10r+-.,/_=}.example",
	} {
		if _, err := parseRecord(txt); err != nil {
			t.Errorf("%q: %v", txt, err)
		}
	}
}

func TestParseRecordInvalid(t *testing.T) {
	for txt, want := range map[string]string{
		"v=spf10":                               "not an SPF record",
		"spf1 -all":                             "not an SPF record",
		"v=spf1 -all moo":                       "unknown mechanism",
		"v=spf1 ip4:1.2.3.4 redirect:x.example": "unknown mechanism",
		"v=spf1 -all.":                          "unknown mechanism",
		"v=spf1 -all:foo":                       "all takes no argument",
		"v=spf1 -all/8":                         "all takes no argument",
		"v=spf1 include":                        "include needs :domain",
		"v=spf1 include:":                       "empty domain-spec",
		"v=spf1 include:example.com/24":         `bad top label "com/24"`,
		"v=spf1 exists":                         "exists needs :domain",
		"v=spf1 a:foo-bar":                      "must end in a macro",
		"v=spf1 a:museum":                       "must end in a macro",
		"v=spf1 a:museum.":                      "must end in a macro",
		"v=spf1 a:111.222.33.44":                `bad top label "44"`,
		"v=spf1 a:example.-com":                 `bad top label "-com"`,
		"v=spf1 a:example.com-":                 `bad top label "com-"`,
		"v=spf1 a:example.com:8080":             `bad top label "com:8080"`,
		"v=spf1 a/33":                           "out of range",
		"v=spf1 a//129":                         "out of range",
		"v=spf1 a/24/64":                        "bad CIDR length",
		"v=spf1 a/024":                          "bad CIDR length",
		"v=spf1 a:example.com/24/64":            `bad top label "com/24"`,
		"v=spf1 ptr/0":                          "ptr takes no CIDR length",
		"v=spf1 ptr:":                           "empty domain-spec",
		"v=spf1 ip4":                            "ip4 needs :network",
		"v=spf1 ip4:1.2.3":                      "bad IPv4 network",
		"v=spf1 ip4:1.2.3.04":                   "bad IPv4 network",
		"v=spf1 ip4:1.2.3.256":                  "bad IPv4 network",
		"v=spf1 ip4:1.2.3.4:25":                 "bad IPv4 network",
		"v=spf1 ip4:1.2.3.4/032":                "bad CIDR length",
		"v=spf1 ip4:1.2.3.4//32":                "bad CIDR length",
		"v=spf1 ip4:::1":                        "bad IPv4 network",
		"v=spf1 ip6:1.2.3.4":                    "bad IPv6 network",
		"v=spf1 ip6::CAFE::BABE":                "bad IPv6 network",
		"v=spf1 ip6:::1/129":                    "out of range",
		"v=spf1 redirect=a.example redirect=b.example": "redirect= appears twice",
		"v=spf1 exp=a.example EXP=b.example":           "exp= appears twice",
		"v=spf1 exp=":                                  "empty domain-spec",
		"v=spf1 exp=-all":                              "must end in a macro",
		"v=spf1 redirect=":                             "empty domain-spec",
		"v=spf1 1up=foo":                               "unknown mechanism",
		"v=spf1 =all":                                  "unknown mechanism",
		"v=spf1 foo=%abc":                              "'%' followed by",
		"v=spf1 exists:%(ir).example":                  "'%' followed by",
		"v=spf1 exists:foo%.example":                   "'%' followed by",
		"v=spf1 exists:foo%":                           "'%' at the end",
		"v=spf1 exists:%{i.example":                    "unterminated macro",
		"v=spf1 a:%{a}.example.com":                    "unknown letter",
		"v=spf1 a:%{}.example.com":                     "no letter",
		"v=spf1 exp=%{r}.example.com":                  "explanations only",
		"v=spf1 a:%{c}.example.com":                    "explanations only",
		"v=spf1 a:%{d0}.example.com":                   "digit transformer",
		"v=spf1 a:%{d2x}.example.com":                  "bad delimiter",
		"v=spf1 a:ctrl.example.com\rptr":               "invalid character",
		"v=spf1 ip4:192.0.2.5\n":                       "bad IPv4 network",
		"v=spf1 a:\xef\xbb\xbfx.example":               "invalid character",
		"v=spf1 \x80a:example.net":                     "unknown mechanism",
		"v=spf1 a:foo.example.com\x00":                 "invalid character",
		"v=spf1\ta":                                    "not an SPF record",
		"v=spf1 mX:\n":                                 "invalid character", // found by FuzzCheck
		"v=spf1 a:x.example\n/24":                      "invalid character",
	} {
		_, err := parseRecord(txt)
		if err == nil {
			t.Errorf("%q: accepted", txt)
			continue
		}
		if !errors.Is(err, ErrSyntax) {
			t.Errorf("%q: %v is not ErrSyntax", txt, err)
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want it to say %q", txt, err, want)
		}
	}
}

func TestRecordParts(t *testing.T) {
	rec, err := parseRecord("v=spf1 -ip4:192.0.2.1 include:x.example  REDIRECT=r.example exp=e.%{d}")
	if err != nil {
		t.Fatal(err)
	}
	if rec.redirect != "r.example" || rec.exp != "e.%{d}" || !rec.hasFail || rec.hasAll {
		t.Errorf("parts: %+v", rec)
	}
	if got := rec.withoutRedirect(); got != "v=spf1 -ip4:192.0.2.1 include:x.example exp=e.%{d}" {
		t.Errorf("withoutRedirect: %q", got)
	}
}

// The examples of RFC 7208 §7.4.
func TestMacroExpansionRFCExamples(t *testing.T) {
	env := &macroEnv{
		sender: "strong-bad@email.example.com",
		domain: "email.example.com",
		ip:     net.ParseIP("192.0.2.3").To4(),
		helo:   "mx.example.org",
	}
	for in, want := range map[string]string{
		"%{s}":                              "strong-bad@email.example.com",
		"%{o}":                              "email.example.com",
		"%{d}":                              "email.example.com",
		"%{d4}":                             "email.example.com",
		"%{d3}":                             "email.example.com",
		"%{d2}":                             "example.com",
		"%{d1}":                             "com",
		"%{dr}":                             "com.example.email",
		"%{d2r}":                            "example.email",
		"%{l}":                              "strong-bad",
		"%{l-}":                             "strong.bad",
		"%{lr}":                             "strong-bad",
		"%{lr-}":                            "bad.strong",
		"%{l1r-}":                           "strong",
		"%{ir}.%{v}._spf.%{d2}":             "3.2.0.192.in-addr._spf.example.com",
		"%{lr-}.lp._spf.%{d2}":              "bad.strong.lp._spf.example.com",
		"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}":   "bad.strong.lp.3.2.0.192.in-addr._spf.example.com",
		"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}":  "3.2.0.192.in-addr.strong.lp._spf.example.com",
		"%{d2}.trusted-domains.example.net": "example.com.trusted-domains.example.net",
		"%{h} %_%%%-":                       "mx.example.org  %%20",
		"%{S}":                              "strong-bad%40email.example.com",
		"%{p}":                              "unknown",
	} {
		toks, err := parseMacroString(in, true)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if got := env.expand(toks); got != want {
			t.Errorf("%q = %q, want %q", in, got, want)
		}
	}
	env.ip = net.ParseIP("2001:db8::cb01")
	toks, _ := parseMacroString("%{ir}.%{v}._spf.%{d2} %{c}", true)
	want := "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com 2001:db8::cb01"
	if got := env.expand(toks); got != want {
		t.Errorf("IPv6: %q, want %q", got, want)
	}
	env.now, env.receiver = time.Unix(1_700_000_000, 0), "mx.receiver.example"
	toks, _ = parseMacroString("%{t} %{r} %{R}", true)
	if got := env.expand(toks); got != "1700000000 mx.receiver.example mx.receiver.example" {
		t.Errorf("t and r: %q", got)
	}
}

func TestURLEscape(t *testing.T) {
	if got := urlEscape("~jack&jill=up-a_b3.c d/é"); got != "~jack%26jill%3Dup-a_b3.c%20d%2F%C3%A9" {
		t.Errorf("got %q", got)
	}
}

func TestTruncateDomain(t *testing.T) {
	long := strings.Repeat("label1234.", 30) + "example.com" // 311
	got := truncateDomain(long)
	if len(got) > 253 || !strings.HasSuffix(long, got) || strings.HasPrefix(got, ".") {
		t.Errorf("%d %q", len(got), got)
	}
	if len(got) < 253-10 {
		t.Errorf("removed too much: %d", len(got))
	}
	if truncateDomain("short.example.") != "short.example." {
		t.Error("short name changed")
	}
}

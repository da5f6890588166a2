package spf

import (
	"context"
	"net"
	"strings"
	"testing"

	"chainmail/checks"
)

// The seed corpora live in testdata/fuzz/<Target>/: every SPF record of
// the OpenSPF suites, and hand-made edge cases.

// FuzzParseRecord: parsing never panics, and what it accepts holds
// together.
func FuzzParseRecord(f *testing.F) {
	f.Add("v=spf1 ip4:192.0.2.0/24 include:_spf.example.com ~all")
	f.Add("v=spf1 a:%{l1r-}.%{d2}/24//64 exists:%{ir}.%{v}._spf.%{d} redirect=x.example exp=e.%{d}")
	f.Fuzz(func(t *testing.T, txt string) {
		rec, err := parseRecord(txt)
		if err != nil {
			if rec != nil {
				t.Fatal("record and error")
			}
			return
		}
		if !isSPFRecord(txt) {
			t.Fatalf("accepted %q, which is not an SPF record", txt)
		}
		// The record with redirect= taken out is still a record.
		if _, err := parseRecord(rec.withoutRedirect()); err != nil {
			t.Fatalf("%q without redirect: %v", txt, err)
		}
		for _, ds := range []string{rec.redirect, rec.exp} {
			if ds == "" {
				continue
			}
			toks, err := parseMacroString(ds, false)
			if err != nil {
				t.Fatalf("accepted domain-spec %q: %v", ds, err)
			}
			env := &macroEnv{sender: "a@b.example", domain: "b.example", ip: net.IPv4(192, 0, 2, 1).To4(), helo: "h.example"}
			_ = truncateDomain(env.expand(toks))
		}
	})
}

// FuzzMacroString: parsing and expanding any text never panics, and the
// letters c, r and t are refused outside explanations.
func FuzzMacroString(f *testing.F) {
	f.Add("%{ir}.%{v}._spf.%{d2}", false)
	f.Add("%{c} is not allowed to send mail from %{o} (%{t}, %{r}) %_%%%-", true)
	f.Fuzz(func(t *testing.T, s string, explain bool) {
		toks, err := parseMacroString(s, explain)
		if err != nil {
			return
		}
		for _, tk := range toks {
			if !explain && tk.kind == tokMacro && strings.IndexByte("crt", tk.letter) >= 0 {
				t.Fatalf("%q: %%{%c} accepted outside an explanation", s, tk.letter)
			}
		}
		for _, ip := range []net.IP{net.IPv4(192, 0, 2, 1).To4(), net.ParseIP("2001:db8::1")} {
			env := &macroEnv{sender: "l-p.x@o.example", domain: "d.example", ip: ip, helo: "h.example", receiver: "r.example",
				ptr: func() string { return "p.example" }}
			_ = env.expand(toks)
		}
	})
}

// FuzzCheck runs the whole check over a random record served by a fake
// resolver (every name under fuzz.example has it, so include: and
// redirect= loop back into it; other names have an explanation text).
func FuzzCheck(f *testing.F) {
	f.Add("v=spf1 -all exp=why.fuzz.example", false)
	f.Add("v=spf1 include:a.fuzz.example mx ptr exists:%{i}.fuzz.example -all", true)
	f.Add("v=spf1 -ip4:192.0.2.0/24 redirect=%{d2}", false)
	f.Fuzz(func(t *testing.T, txt string, v6 bool) {
		c, err := New(DefaultConfig(), fakeResolver{record: txt})
		if err != nil {
			t.Fatal(err)
		}
		ip := "192.0.2.1"
		if v6 {
			ip = "2001:db8::1"
		}
		m := &checks.Message{Envelope: checks.Envelope{ClientIP: net.ParseIP(ip), HELO: "h.example", MailFrom: "user@fuzz.example"}}
		res := c.Check(context.Background(), m, nil)
		switch res.Status {
		case checks.StatusPass, checks.StatusFail, checks.StatusSoftfail, checks.StatusNeutral,
			checks.StatusNone, checks.StatusPermerror:
		default:
			// The fake resolver never fails: no temperror either.
			t.Fatalf("%q: status %q (%s)", txt, res.Status, res.Reason)
		}
		if !isSPFRecord(txt) && res.Status != checks.StatusNone {
			t.Fatalf("%q is no SPF record but gave %s", txt, res.Status)
		}
		if _, perr := parseRecord(txt); isSPFRecord(txt) && perr != nil && res.Status != checks.StatusPermerror {
			t.Fatalf("%q does not parse (%v) but gave %s", txt, perr, res.Status)
		}
		if e, ok := res.Facts["explanation"].(string); ok {
			if res.Status != checks.StatusFail || e == "" || len(e) > maxExplanation {
				t.Fatalf("%q: explanation %q with %s", txt, e, res.Status)
			}
			for i := 0; i < len(e); i++ {
				if e[i] >= 0x80 {
					t.Fatalf("non-ASCII explanation %q", e)
				}
			}
		}
	})
}

type fakeResolver struct{ record string }

func (r fakeResolver) LookupTXT(_ context.Context, name string) ([]string, error) {
	n := strings.ToLower(strings.TrimSuffix(name, "."))
	if n == "fuzz.example" || strings.HasSuffix(n, ".fuzz.example") {
		return []string{r.record, "unrelated text"}, nil
	}
	if strings.HasPrefix(n, "none.") {
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return []string{"%{c} may not send for %{o} via %{d}, see %{p} %{r} %{t}"}, nil
}

func (fakeResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	return []net.IPAddr{{IP: net.ParseIP("192.0.2.1")}, {IP: net.ParseIP("2001:db8::1")}}, nil
}

func (fakeResolver) LookupIP(_ context.Context, network, host string) ([]net.IP, error) {
	switch network {
	case "ip4":
		return []net.IP{net.ParseIP("192.0.2.1").To4()}, nil
	case "ip6":
		return []net.IP{net.ParseIP("2001:db8::1")}, nil
	}
	return []net.IP{net.ParseIP("192.0.2.1"), net.ParseIP("2001:db8::1")}, nil
}

func (fakeResolver) LookupMX(context.Context, string) ([]*net.MX, error) {
	return []*net.MX{{Host: "mx.fuzz.example.", Pref: 10}}, nil
}

func (fakeResolver) LookupAddr(context.Context, string) ([]string, error) {
	return []string{"mx.fuzz.example."}, nil
}

func (fakeResolver) LookupHost(context.Context, string) ([]string, error) {
	return []string{"192.0.2.1", "2001:db8::1"}, nil
}

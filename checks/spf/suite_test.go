package spf_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"chainmail/checks"
	"chainmail/checks/checktest"
	"chainmail/checks/dns"
	"chainmail/checks/dns/dnstest"
	"chainmail/checks/dns/zoneserver"
	"chainmail/checks/spf"

	mdns "github.com/miekg/dns"
	"gopkg.in/yaml.v3"
)

// The OpenSPF test suites (see SOURCE.md in the corpus folder), run as
// data: each YAML document's zone data is served by a dnstest server on
// loopback, our dns.Client resolves from it over real UDP (and TCP), and
// each case goes through the spf check as a message would.

// exceptions7208 are the RFC 7208 cases we knowingly fail, with why. A
// listed case that starts passing fails the test, so the list stays true.
var exceptions7208 = map[string]string{
	// "a:foo:bar/baz.example.com": the grammar allows "/" inside a
	// domain-spec (macro-literal = %x21-24 / %x26-7E, §7.1), and only
	// trying each "/" as the start of dual-cidr-length (§5.3) tells the
	// two apart. The SPF library splits the CIDR length at the first
	// "/" and so reads "/baz.example.com" as a bad CIDR: permerror.
	// Real records do not put "/" in domain names.
	"a-colon-domain":            "library: '/' inside a domain-spec is taken for a CIDR length (RFC 7208 §7.1 allows it)",
	"a-colon-domain-ip4mapped":  "library: '/' inside a domain-spec is taken for a CIDR length (RFC 7208 §7.1 allows it)",
	"mx-colon-domain":           "library: '/' inside a domain-spec is taken for a CIDR length (RFC 7208 §7.1 allows it)",
	"mx-colon-domain-ip4mapped": "library: '/' inside a domain-spec is taken for a CIDR length (RFC 7208 §7.1 allows it)",
	// %{p} in a mechanism: the library always expands it to "unknown".
	// §7.3 says p "SHOULD NOT be used" and that "unknown" stands for a
	// name that cannot be validated; the case wants the validated name.
	// (Our explanation text does expand %{p} for real.)
	"p-macro-multiple": "library: %{p} in mechanisms is always \"unknown\" (RFC 7208 §7.3: p SHOULD NOT be used)",
}

// exceptions4408 are the RFC 4408 cases we knowingly fail. Where RFC
// 7208 changed a result the 4408 suite already accepts both, so only the
// library limitations above remain.
var exceptions4408 = map[string]string{
	"a-colon-domain":            exceptions7208["a-colon-domain"],
	"a-colon-domain-ip4mapped":  exceptions7208["a-colon-domain-ip4mapped"],
	"mx-colon-domain":           exceptions7208["mx-colon-domain"],
	"mx-colon-domain-ip4mapped": exceptions7208["mx-colon-domain-ip4mapped"],
	"p-macro-multiple":          exceptions7208["p-macro-multiple"],
}

// foldExplanation are the cases whose explanation is compared without
// case. v-macro-ip6 wants the %{ir} nibbles of CAFE:BABE::1 in upper case
// while its %{c} is in lower case; RFC 7208 §7.3 spells the nibbles in
// lower case in its own example ("1.0.b.c...ip6"), as we do.
var foldExplanation = map[string]bool{"v-macro-ip6": true}

// exceptionsPySPF are the cases of pyspf's own regression file that ask
// for pyspf extensions rather than RFC behaviour.
var exceptionsPySPF = map[string]string{
	// "default=" is a modifier of pre-RFC drafts. RFC 7208 §6 says
	// unknown modifiers MUST be ignored, and the RFC 7208 suite's
	// default-modifier-obsolete cases want exactly that (neutral).
	"default-modifier": "RFC 7208 §6: unknown modifier default= is ignored (the RFC 7208 suite agrees)",
	// "ambiguous" is not an RFC 7208 result (§2.6 lists seven).
	"default-modifier-harsh": "RFC 7208 §2.6: \"ambiguous\" is not an SPF result",
}

func TestRFC7208Suite(t *testing.T) {
	runSuite(t, "rfc7208-tests.yml", exceptions7208)
}

func TestRFC4408Suite(t *testing.T) {
	runSuite(t, "rfc4408-tests.yml", exceptions4408)
}

func TestPySPFExtraSuite(t *testing.T) {
	runSuite(t, "pyspf-extra-test.yml", exceptionsPySPF)
}

type suiteDoc struct {
	Description string
	Tests       map[string]suiteCase
	ZoneData    map[string][]yaml.Node `yaml:"zonedata"`
}

type suiteCase struct {
	Description string
	Helo        string
	Host        string
	MailFrom    string `yaml:"mailfrom"`
	Result      yaml.Node
	Explanation string
}

func (c suiteCase) results() []string {
	if c.Result.Kind == yaml.SequenceNode {
		var out []string
		for _, n := range c.Result.Content {
			out = append(out, n.Value)
		}
		return out
	}
	return []string{c.Result.Value}
}

func loadSuite(t *testing.T, file string) []suiteDoc {
	t.Helper()
	path := filepath.Join(checktest.Corpus(t, "openspf-rfc7208-tests"), file)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []suiteDoc
	for {
		var d suiteDoc
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		docs = append(docs, d)
	}
	return docs
}

func runSuite(t *testing.T, file string, exceptions map[string]string) {
	docs := loadSuite(t, file)
	total, passed, excepted, explained := 0, 0, 0, 0
	seen := map[string]bool{}
	for _, doc := range docs {
		srv := serveZoneData(t, doc.ZoneData)
		client, err := dns.New(dns.Config{
			Servers: []string{srv.Addr()},
			Timeout: 500 * time.Millisecond, // loopback answers can take over 100 ms on a loaded CI machine
			Retries: -1,
		})
		if err != nil {
			t.Fatal(err)
		}
		cfg := spf.DefaultConfig()
		cfg.Receiver = "receiver.example"
		check, err := spf.New(cfg, client)
		if err != nil {
			t.Fatal(err)
		}
		names := make([]string, 0, len(doc.Tests))
		for name := range doc.Tests {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			tc := doc.Tests[name]
			total++
			seen[name] = true
			problem, exp := runCase(check, name, tc)
			if exp {
				explained++
			}
			reason, isException := exceptions[name]
			switch {
			case problem == "" && isException:
				passed++
				t.Errorf("%s: passes but is listed as an exception (%s): remove it from the list", name, reason)
			case problem == "":
				passed++
			case isException:
				excepted++
				t.Logf("exception %s: %s [%s]", name, problem, reason)
			default:
				t.Errorf("%s (%s): %s", name, doc.Description, problem)
			}
		}
	}
	for name := range exceptions {
		if !seen[name] {
			t.Errorf("exception %q names no case of %s", name, file)
		}
	}
	t.Logf("%s: %d cases, %d pass (%d with the explanation text checked), %d named exceptions, %d fail",
		file, total, passed, explained, excepted, total-passed-excepted)
}

// runCase returns "" when the check gives an acceptable result (and the
// expected explanation, when the case names one), else what went wrong;
// explained tells whether an explanation was compared.
func runCase(check *spf.Check, name string, tc suiteCase) (problem string, explained bool) {
	m := &checks.Message{Envelope: checks.Envelope{
		ClientIP: net.ParseIP(tc.Host),
		HELO:     tc.Helo,
		MailFrom: tc.MailFrom,
	}}
	res := check.Check(context.Background(), m, nil)
	want := tc.results()
	ok := false
	for _, w := range want {
		if string(res.Status) == w {
			ok = true
		}
	}
	if !ok {
		return fmt.Sprintf("got %s, want %v (%s)", res.Status, want, res.Reason), false
	}
	if tc.Explanation == "" || res.Status != checks.StatusFail {
		return "", false
	}
	got, _ := res.Facts["explanation"].(string)
	// "DEFAULT" is the implementation's own explanation: the record
	// gave none we may use.
	if tc.Explanation == "DEFAULT" {
		if got != "" {
			return fmt.Sprintf("explanation %q, want none", got), true
		}
		return "", true
	}
	if got != tc.Explanation && !(foldExplanation[name] && strings.EqualFold(got, tc.Explanation)) {
		return fmt.Sprintf("explanation %q, want %q", got, tc.Explanation), true
	}
	return "", true
}

// serveZoneData starts a dnstest server with a document's zone data.
// The conventions are those of the suite's drivers (see SOURCE.md):
//   - An SPF record is served as type SPF, and also as TXT when the name
//     has no TXT entry at all ("TXT: NONE" counts as an entry).
//   - TIMEOUT makes every query type for which the name has no records
//     go unanswered, so the client times out.
//   - "\xNN" escapes stand for octets, not code points.
func serveZoneData(t *testing.T, zone map[string][]yaml.Node) *zoneserver.Server {
	t.Helper()
	srv := dnstest.Start(t)
	for name, entries := range zone {
		owner := mdns.Fqdn(name)
		hdr := func(rrtype uint16) mdns.RR_Header {
			return mdns.RR_Header{Name: owner, Rrtype: rrtype, Class: mdns.ClassINET, Ttl: 300}
		}
		var rrs []mdns.RR
		var spfs [][]string
		hasTXT, timeout := false, false
		for _, e := range entries {
			if e.Kind == yaml.ScalarNode && e.Value == "TIMEOUT" {
				timeout = true
				continue
			}
			if e.Kind != yaml.MappingNode || len(e.Content) != 2 {
				t.Fatalf("%s: unreadable zone entry %v", name, e.Value)
			}
			typ, val := e.Content[0].Value, e.Content[1]
			if typ == "TXT" {
				hasTXT = true
			}
			if val.Kind == yaml.ScalarNode && val.Value == "NONE" {
				continue
			}
			switch typ {
			case "A":
				rrs = append(rrs, &mdns.A{Hdr: hdr(mdns.TypeA), A: net.ParseIP(val.Value).To4()})
			case "AAAA":
				rrs = append(rrs, &mdns.AAAA{Hdr: hdr(mdns.TypeAAAA), AAAA: net.ParseIP(val.Value)})
			case "PTR":
				rrs = append(rrs, &mdns.PTR{Hdr: hdr(mdns.TypePTR), Ptr: mdns.Fqdn(val.Value)})
			case "CNAME":
				rrs = append(rrs, &mdns.CNAME{Hdr: hdr(mdns.TypeCNAME), Target: mdns.Fqdn(val.Value)})
			case "MX":
				var pref uint16
				fmt.Sscan(val.Content[0].Value, &pref)
				rrs = append(rrs, &mdns.MX{Hdr: hdr(mdns.TypeMX), Preference: pref, Mx: mdns.Fqdn(val.Content[1].Value)})
			case "TXT":
				rrs = append(rrs, &mdns.TXT{Hdr: hdr(mdns.TypeTXT), Txt: txtStrings(val)})
			case "SPF":
				s := txtStrings(val)
				spfs = append(spfs, s)
				rrs = append(rrs, &mdns.SPF{Hdr: hdr(mdns.TypeSPF), Txt: s})
			default:
				t.Fatalf("%s: unknown record type %s", name, typ)
			}
		}
		if !hasTXT {
			for _, s := range spfs {
				rrs = append(rrs, &mdns.TXT{Hdr: hdr(mdns.TypeTXT), Txt: s})
			}
		}
		srv.AddRR(rrs...)
		if timeout {
			has := map[uint16]bool{}
			for _, rr := range rrs {
				has[rr.Header().Rrtype] = true
			}
			for _, qt := range []uint16{mdns.TypeA, mdns.TypeAAAA, mdns.TypeMX, mdns.TypeTXT, mdns.TypeSPF, mdns.TypePTR, mdns.TypeCNAME} {
				if !has[qt] {
					srv.Fault(owner, qt, zoneserver.Drop())
				}
			}
		}
	}
	return srv
}

// txtStrings returns the character-strings of a TXT or SPF value (one
// string, or a list of them) in miekg/dns presentation form.
func txtStrings(v *yaml.Node) []string {
	var raw []string
	if v.Kind == yaml.SequenceNode {
		for _, n := range v.Content {
			raw = append(raw, octets(n.Value))
		}
	} else {
		raw = []string{octets(v.Value)}
	}
	var out []string
	for _, s := range raw {
		// A character-string holds at most 255 octets.
		for len(s) > 255 {
			out = append(out, escapeTXT(s[:255]))
			s = s[255:]
		}
		out = append(out, escapeTXT(s))
	}
	return out
}

// octets undoes YAML's reading of "\xNN" as a code point: the suite means
// the octet (SOURCE.md: "load as bytes-safe YAML").
func octets(s string) string {
	if !utf8.ValidString(s) {
		return s
	}
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return s
		}
		b = append(b, byte(r))
	}
	return string(b)
}

func escapeTXT(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' || c == '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c > 0x7e:
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

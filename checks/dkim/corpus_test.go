package dkim

import (
	"bufio"
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"chainmail/checks"
	"chainmail/checks/checktest"

	"github.com/emersion/go-msgauth/dkim"
)

// The public corpora are read in place (checktest.Corpus skips loudly when
// they are absent); nothing is copied into the repository.

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readMessageFile(t testing.TB, path string) *checks.Message {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sp := checks.NewSpool(0, t.TempDir())
	t.Cleanup(func() { sp.Close() })
	m, err := checks.ReadMessage(f, sp)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// readPrivateKey reads a PEM RSA key (PKCS #1 or #8) or a base64 Ed25519
// seed, the forms used in the corpora.
func readPrivateKey(t testing.TB, path string) crypto.Signer {
	t.Helper()
	data := readFile(t, path)
	if blk, _ := pem.Decode([]byte(data)); blk != nil {
		if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
			return k
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return k.(crypto.Signer)
	}
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(data))
	if err != nil || len(seed) != ed25519.SeedSize {
		t.Fatalf("%s: not a key", path)
	}
	return ed25519.NewKeyFromSeed(seed)
}

// dkimpyZone reads dkimpy/dns-records.txt: "<name> <record | file:F>"
// with trailing notes after three or more spaces. The first record of a
// name wins (the file lists test._domainkey.example.com twice, for two
// upstream tests).
func dkimpyZone(t testing.TB, dir string) map[string][]string {
	t.Helper()
	zone := map[string][]string{}
	notes := regexp.MustCompile(`\s{3,}`)
	sc := bufio.NewScanner(strings.NewReader(readFile(t, filepath.Join(dir, "dns-records.txt"))))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if !ok || !strings.Contains(name, "._domainkey.") {
			continue
		}
		value := notes.Split(strings.TrimSpace(rest), 2)[0]
		if f, ok := strings.CutPrefix(value, "file:"); ok {
			value = strings.TrimSpace(readFile(t, filepath.Join(dir, f)))
		}
		if _, seen := zone[norm(name)]; !seen {
			zone[norm(name)] = []string{value}
		}
	}
	return zone
}

func TestCorpusDkimpy(t *testing.T) {
	dir := checktest.Corpus(t, "dkimpy")
	zone := dkimpyZone(t, dir)
	c := newCheck(t, DefaultConfig(), &fakeResolver{TXT: zone})
	pass := 0
	for _, tc := range []struct {
		file string
		want checks.Status
		sigs []string
	}{
		{"rfc6376.signed.msg", checks.StatusPass, []string{"pass", "pass"}}, // ed25519 + rsa-sha256
		{"rfc6376.signed.rsa.msg", checks.StatusPass, []string{"pass"}},
		{"ed25519test2.msg", checks.StatusPass, []string{"pass"}}, // prototype Exim
		{"test2.message", checks.StatusPass, []string{"pass"}},    // Gmail 2013, degenerate folding
		// d=legitimate.com(.attacker.com is not a domain name.
		{"test.message.baddomain", checks.StatusPermerror, []string{"permerror"}},
		// Unsigned inputs of upstream's sign-then-verify tests, and
		// Windows-1258 header bytes: no signature, no crash.
		{"rfc6376.w1258.msg", checks.StatusNone, nil},
		{"test.message", checks.StatusNone, nil},
		{"ed25519test.msg", checks.StatusNone, nil},
		{"rfc6376.msg", checks.StatusNone, nil},
		{"test_extra.message", checks.StatusNone, nil},
		{"test_nofrom.message", checks.StatusNone, nil},
		// A real 2011 message signed by kitterman.com, key not published.
		{"message.mbox", checks.StatusPermerror, []string{"permerror"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			r := c.Check(t.Context(), readMessageFile(t, filepath.Join(dir, tc.file)), nil)
			if r.Status != tc.want || (tc.sigs != nil && !slices.Equal(statuses(r), tc.sigs)) {
				t.Errorf("status %s %v, want %s %v (%s)", r.Status, statuses(r), tc.want, tc.sigs, r.Reason)
			}
			for _, s := range statuses(r) {
				if s == "pass" {
					pass++
				}
			}
		})
	}
	if r := results(c.Check(t.Context(), readMessageFile(t, filepath.Join(dir, "test.message.baddomain")), nil)); !strings.Contains(r[0].Reason, "invalid d=") {
		t.Errorf("baddomain reason %q", r[0].Reason)
	}

	// Upstream's sign-then-verify tests: sign with the corpus private keys,
	// verify against each key record variant.
	msg := readFile(t, filepath.Join(dir, "test.message"))
	for _, tc := range []struct {
		key, record string
		want        checks.Status
	}{
		{"test.private", "test.txt", checks.StatusPass},
		{"test.private", "test2.txt", checks.StatusPass},           // no k= (rsa implied)
		{"test.private", "badversion.txt", checks.StatusPermerror}, // "v=DKIM1:"
		{"test.private", "badk.txt", checks.StatusPermerror},       // k=ed25519-sha256
		{"test.private", "test_bad.txt", checks.StatusPermerror},   // corrupted key
		{"test.private", "test_tlsrpt.txt", checks.StatusPermerror},
		{"1024_testkey.key", "1024_testkey_wo_markers.pub.txt", checks.StatusPass},     // SubjectPublicKeyInfo
		{"1024_testkey.key", "1024_testkey_wo_markers.pub.rsa.txt", checks.StatusPass}, // bare RSAPublicKey
		{"2048_testkey.key", "2048_testkey_wo_markers.pub.txt", checks.StatusPass},
		{"2048_testkey.key", "2048_testkey_wo_markers.pub.rsa.txt", checks.StatusPass},
		{"2048_testkey_PKCS8.key", "2048_testkey_PKCS8.key.pub.txt", checks.StatusPass},
		{"ed25519test.key", "ed25519test.dns", checks.StatusPass},
		{"rfc8032_7_1.key", "", checks.StatusPass}, // the brisbane record
	} {
		t.Run("sign "+tc.key+" verify "+tc.record, func(t *testing.T) {
			rec := zone["brisbane._domainkey.football.example.com"][0]
			if tc.record != "" {
				rec = strings.TrimSpace(readFile(t, filepath.Join(dir, tc.record)))
			}
			z := &fakeResolver{TXT: map[string][]string{"test._domainkey.example.com": {rec}}}
			for _, hc := range []dkim.Canonicalization{dkim.CanonicalizationSimple, dkim.CanonicalizationRelaxed} {
				signed := sign(t, msg, dkim.SignOptions{Domain: "example.com", Selector: "test", Signer: readPrivateKey(t, filepath.Join(dir, tc.key)),
					HeaderCanonicalization: hc, BodyCanonicalization: hc})
				r := run(t, newCheck(t, DefaultConfig(), z), signed)
				if r.Status != tc.want {
					t.Errorf("%s: status %s, want %s (%s)", hc, r.Status, tc.want, r.Reason)
				}
				if r.Status == checks.StatusPass {
					pass++
				}
			}
		})
	}
	t.Logf("dkimpy: %d signatures pass", pass)
}

// mimekitZone is the DNS of mimekit-testdata/dkim/SOURCE.md.
func mimekitZone(t testing.TB, dir string) map[string][]string {
	t.Helper()
	pub := readFile(t, filepath.Join(dir, "dkim", "gmail.pub"))
	blk, _ := pem.Decode([]byte(pub))
	if blk == nil {
		t.Fatal("gmail.pub: no PEM block")
	}
	zone := map[string][]string{
		"20120113._domainkey.gmail.com":            {"k=rsa; p=" + base64.StdEncoding.EncodeToString(blk.Bytes)},
		"brisbane._domainkey.football.example.com": {"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="},
	}
	// The RSA key of the RFC 8463 example is dkimpy's test.txt.
	if d := filepath.Join(filepath.Dir(dir), "dkimpy", "test.txt"); fileExists(d) {
		zone["test._domainkey.football.example.com"] = []string{strings.TrimSpace(readFile(t, d))}
	}
	// example.bind9: a zone-file TXT record split in strings.
	bind := readFile(t, filepath.Join(dir, "dkim", "example.bind9"))
	name, _, _ := strings.Cut(bind, " ")
	var rec strings.Builder
	for _, m := range regexp.MustCompile(`"([^"]*)"`).FindAllStringSubmatch(bind, -1) {
		rec.WriteString(m[1])
	}
	zone[norm(name)] = []string{rec.String()}
	return zone
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func TestCorpusMimekit(t *testing.T) {
	dir := checktest.Corpus(t, "mimekit-testdata")
	zone := mimekitZone(t, dir)
	c := newCheck(t, DefaultConfig(), &fakeResolver{TXT: zone})
	pass := 0
	for _, tc := range []struct {
		file string
		sigs []string
	}{
		{"gmail.msg", []string{"pass"}},
		{"related.msg", []string{"pass"}},                   // multipart/related, 214 KB
		{"multipart-no-end-boundary.msg", []string{"pass"}}, // raw bytes, not a MIME re-serialisation
		{"rfc8463-example.msg", []string{"pass", "pass"}},   // RFC 8463 Appendix A: ed25519 + rsa
	} {
		t.Run(tc.file, func(t *testing.T) {
			if tc.file == "rfc8463-example.msg" && zone["test._domainkey.football.example.com"] == nil {
				t.Skip("needs ../dkimpy/test.txt")
			}
			r := c.Check(t.Context(), readMessageFile(t, filepath.Join(dir, "dkim", tc.file)), nil)
			if r.Status != checks.StatusPass || !slices.Equal(statuses(r), tc.sigs) {
				t.Errorf("status %s %v, want pass %v (%s)", r.Status, statuses(r), tc.sigs, r.Reason)
			}
			pass += strings.Count(strings.Join(statuses(r), " "), "pass")
		})
	}
	t.Run("example.pem round trip", func(t *testing.T) {
		key := readPrivateKey(t, filepath.Join(dir, "dkim", "example.pem"))
		signed := sign(t, plainMessage, dkim.SignOptions{Domain: "example.com", Selector: "1433868189.example", Signer: key,
			HeaderCanonicalization: dkim.CanonicalizationRelaxed})
		r := run(t, c, signed)
		if r.Status != checks.StatusPass {
			t.Errorf("status %s (%s)", r.Status, r.Reason)
		}
		if r.Status == checks.StatusPass {
			pass++
		}
	})
	t.Logf("mimekit-testdata: %d signatures pass", pass)
}

// perlZone reads perl-mail-dkim/FAKE_DNS.dat: "<name> <TXT value>", with
// NXDOMAIN, "~~Query timed out~~" and "~~SERVFAIL~~" standing for DNS
// outcomes.
func perlZone(t testing.TB, dir string) *fakeResolver {
	t.Helper()
	r := &fakeResolver{TXT: map[string][]string{}, Fail: map[string]error{}}
	sc := bufio.NewScanner(strings.NewReader(readFile(t, filepath.Join(dir, "FAKE_DNS.dat"))))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, _ := strings.Cut(line, " ")
		value = strings.TrimSpace(value)
		switch value {
		case "NXDOMAIN":
			r.Fail[norm(name)] = errNXDOMAIN
		case "~~Query timed out~~":
			r.Fail[norm(name)] = errTimeout
		case "~~SERVFAIL~~":
			r.Fail[norm(name)] = errServfail
		case `""`:
			r.TXT[norm(name)] = []string{""}
		default:
			r.TXT[norm(name)] = []string{value}
		}
	}
	return r
}

// Why our outcome differs from Mail::DKIM's expectation (column 2 of
// expected-results.tsv) for a file.
const (
	agree      = ""
	draft      = "pre-RFC 6376 draft signature (no v= or v=0.5/5): RFC 6376 §3.5 requires v=1 → permerror"
	domainKeys = "DomainKeys (RFC 4870) only, no DKIM-Signature → none"
	sha1       = "a=rsa-sha1: RFC 8301 §3.1 → policy (aggregate permerror) whatever the rest says"
	qpIdent    = "i= written in dkim-quoted-printable: go-msgauth compares it undecoded (\"domain mismatch\"); rsa-sha1 as well"
)

// perlCase is our expectation for one corpus file: the per-signature
// statuses and why they differ from Mail::DKIM's.
type perlCase struct {
	sigs []string
	why  string
}

var perlCases = map[string]perlCase{
	"good_ietf00_1.txt":  {[]string{"permerror"}, draft},
	"good_ietf00_2.txt":  {[]string{"permerror"}, draft},
	"good_ietf00_3.txt":  {[]string{"permerror"}, draft},
	"good_ietf00_4.txt":  {[]string{"permerror"}, draft},
	"good_ietf00_5.txt":  {[]string{"permerror"}, draft},
	"mine_ietf01_1.txt":  {[]string{"permerror"}, draft},
	"mine_ietf01_2.txt":  {[]string{"permerror"}, draft},
	"mine_ietf01_3.txt":  {[]string{"permerror"}, draft},
	"mine_ietf01_4.txt":  {[]string{"permerror"}, draft},
	"mine_ietf05_1.txt":  {[]string{"permerror"}, draft},
	"good_ietf01_1.txt":  {[]string{"permerror"}, draft},
	"good_ietf01_2.txt":  {[]string{"permerror"}, draft},
	"good_rfc4871_3.txt": {[]string{"policy"}, sha1},
	"good_rfc4871_4.txt": {[]string{"policy"}, sha1},
	"good_1878523.txt":   {[]string{"policy"}, sha1},
	"good_83176.txt":     {[]string{"policy"}, sha1},
	"multiple_1.txt":     {[]string{"permerror", "permerror", "permerror", "permerror"}, draft},
	// Three rsa-sha1 signatures (the first with c=foobar) and "synerr".
	"multiple_2.txt":      {[]string{"policy", "policy", "policy", "permerror"}, sha1},
	"good_qp_1.txt":       {[]string{"policy"}, sha1},
	"good_qp_2.txt":       {[]string{"policy"}, qpIdent},
	"good_qp_3.txt":       {[]string{"policy"}, qpIdent},
	"bad_ietf01_1.txt":    {[]string{"permerror"}, draft},
	"bad_ietf01_2.txt":    {[]string{"permerror"}, draft},
	"bad_ietf01_3.txt":    {[]string{"permerror"}, draft},
	"bad_1.txt":           {[]string{"permerror"}, draft},
	"bad_1878954.txt":     {[]string{"policy"}, sha1},
	"good_dk_gmail.txt":   {nil, domainKeys},
	"good_dk_yahoo.txt":   {nil, domainKeys},
	"good_dk_1.txt":       {nil, domainKeys},
	"good_dk_2.txt":       {nil, domainKeys},
	"good_dk_3.txt":       {nil, domainKeys},
	"good_dk_4.txt":       {nil, domainKeys},
	"good_dk_5.txt":       {nil, domainKeys},
	"good_dk_6.txt":       {nil, domainKeys},
	"good_dk_7.txt":       {nil, domainKeys},
	"dk_headers_1.txt":    {nil, domainKeys},
	"dk_headers_2.txt":    {nil, domainKeys},
	"bad_dk_1.txt":        {nil, domainKeys},
	"bad_dk_2.txt":        {nil, domainKeys},
	"bad_dk_3.txt":        {nil, domainKeys},
	"bad_dk_4.txt":        {nil, domainKeys},
	"bad_dk_5.txt":        {nil, domainKeys},
	"dk_multiple_1.txt":   {nil, domainKeys},
	"no_body_1.txt":       {[]string{"permerror"}, draft},
	"no_body_2.txt":       {[]string{"permerror"}, draft},
	"no_body_3.txt":       {[]string{"permerror"}, draft},
	"ignore_1.txt":        {[]string{"permerror"}, agree}, // v=5
	"ignore_2.txt":        {[]string{"permerror"}, agree}, // v=0.5 (and a=rsa-md5)
	"ignore_3.txt":        {[]string{"permerror"}, agree}, // v=0.5 (and a=dsa-sha1)
	"ignore_4.txt":        {[]string{"permerror"}, agree}, // v=0.5 (and c=future)
	"ignore_5.txt":        {[]string{"policy"}, agree},    // q=http; rsa-sha1
	"ignore_6.txt":        {[]string{"policy"}, agree},    // q=dns/special; rsa-sha1
	"ignore_7.txt":        {[]string{"policy"}, agree},    // expired; rsa-sha1
	"ignore_8.txt":        {[]string{"policy"}, agree},    // bad i=; rsa-sha1
	"goodkey_1.txt":       {[]string{"policy"}, sha1},
	"goodkey_2.txt":       {[]string{"policy"}, sha1},
	"goodkey_3.txt":       {[]string{"policy"}, sha1},
	"goodkey_4.txt":       {[]string{"policy"}, sha1},
	"badkey_1.txt":        {[]string{"permerror"}, agree}, // NXDOMAIN, but v=0.5 first
	"badkey_2.txt":        {[]string{"permerror"}, agree},
	"badkey_3.txt":        {[]string{"permerror"}, agree},
	"badkey_4.txt":        {[]string{"permerror"}, agree},
	"badkey_5.txt":        {[]string{"permerror"}, agree},
	"badkey_6.txt":        {[]string{"permerror"}, agree},
	"badkey_7.txt":        {[]string{"permerror"}, agree},
	"badkey_8.txt":        {[]string{"policy"}, agree}, // g= (removed by RFC 6376); rsa-sha1, 512 bits
	"badkey_9.txt":        {[]string{"policy"}, agree},
	"badkey_10.txt":       {[]string{"policy"}, agree},
	"badkey_11.txt":       {[]string{"policy"}, agree}, // rsa-sha256, 512-bit key
	"badkey_12.txt":       {[]string{"policy"}, agree},
	"badkey_13.txt":       {[]string{"policy"}, agree},
	"badkey_14.txt":       {[]string{"policy"}, agree}, // DNS timeout, but rsa-sha1 is refused first
	"badkey_15.txt":       {[]string{"policy"}, agree}, // SERVFAIL, likewise
	"goodkey_ed25519.txt": {[]string{"pass"}, agree},
	"badkey1_ed25519.txt": {[]string{"permerror"}, agree}, // 44-octet Ed25519 key
	"badkey2_ed25519.txt": {[]string{"fail"}, agree},      // header modified
	"badkey3_ed25519.txt": {[]string{"fail"}, agree},      // body modified
	"badkey4_ed25519.txt": {[]string{"permerror"}, agree}, // no key (NXDOMAIN)
	"badkey5_ed25519.txt": {[]string{"permerror"}, agree}, // empty key record
}

// TestCorpusPerlMailDKIM runs Mail::DKIM's verifier corpus. Mail::DKIM
// accepts pre-RFC drafts, DomainKeys, rsa-sha1 and 512-bit keys; a
// verifier that follows RFC 6376 and RFC 8301 does not, and every
// difference is listed with its reason. Its "invalid" maps to our
// permerror/policy/temperror (anything but pass and fail).
func TestCorpusPerlMailDKIM(t *testing.T) {
	dir := checktest.Corpus(t, "perl-mail-dkim")
	res := perlZone(t, dir)
	c := newCheck(t, DefaultConfig(), res)

	expected := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(readFile(t, filepath.Join(dir, "expected-results.tsv"))))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) >= 2 && f[0] != "file" {
			expected[f[0]] = f[1]
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "corpus", "*.txt"))
	if len(files) != len(perlCases) {
		t.Errorf("%d corpus files, %d cases", len(files), len(perlCases))
	}
	counts := map[string]int{}
	for _, path := range files {
		name := filepath.Base(path)
		tc, ok := perlCases[name]
		if !ok {
			t.Errorf("%s: no expectation", name)
			continue
		}
		r := c.Check(t.Context(), readMessageFile(t, path), nil)
		got := statuses(r)
		if !slices.Equal(got, tc.sigs) && !(len(got) == 0 && tc.sigs == nil) {
			t.Errorf("%s: %v, want %v (%s)", name, got, tc.sigs, r.Reason)
		}
		// Mail::DKIM's word for our aggregate.
		ours := "invalid"
		switch r.Status {
		case checks.StatusPass:
			ours = "pass"
		case checks.StatusFail:
			ours = "fail"
		case checks.StatusNone:
			ours = "none"
		}
		if ours == expected[name] {
			if tc.why != agree {
				t.Errorf("%s: agrees with Mail::DKIM but is listed as an exception", name)
			}
			counts["agree"]++
			continue
		}
		if tc.why == agree {
			t.Errorf("%s: Mail::DKIM says %s, we say %s (%s), not listed as an exception", name, expected[name], r.Status, r.Reason)
			continue
		}
		counts[tc.why]++
	}
	t.Logf("perl-mail-dkim: %d files, %d agree with Mail::DKIM", len(files), counts["agree"])
	for _, why := range []string{draft, domainKeys, sha1, qpIdent} {
		if counts[why] > 0 {
			t.Logf("  %2d differ: %s", counts[why], why)
		}
	}
}

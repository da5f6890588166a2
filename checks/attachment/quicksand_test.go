package attachment

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"chainmail/attachments"
	"chainmail/checks"
	"chainmail/checks/checktest"

	"gopkg.in/yaml.v3"
)

func oletools(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(checktest.Corpus(t, "oletools-test-data"), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// delivered returns the files of the message as it would be delivered
// (the check's NewBody, or the body as sent): name → decoded content,
// and each part's header block.
func delivered(t *testing.T, m *checks.Message, r checks.Result) (map[string][]byte, map[string]string) {
	t.Helper()
	var body attachments.SizedReaderAt = m.Body
	if r.NewBody != nil {
		body = r.NewBody
	}
	src, size := attachments.Message(m.RawHeader(), body)
	tree := attachments.Walk(src, size, attachments.WalkOptions{})
	files, headers := map[string][]byte{}, map[string]string{}
	for _, e := range tree.Root.Leaves() {
		b, err := io.ReadAll(e.Open())
		if err != nil {
			t.Fatal(err)
		}
		name := e.Filename()
		if name == "" {
			name = e.Path
		}
		files[name] = b
		h := make([]byte, e.BodyStart-e.Start)
		src.ReadAt(h, e.Start)
		headers[name] = string(h)
	}
	return files, headers
}

func zipNames(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	return out
}

func outcomeOf(r checks.Result, name string) FileOutcome {
	for _, o := range r.Facts["outcomes"].([]FileOutcome) {
		if o.Name == name {
			return o
		}
	}
	return FileOutcome{}
}

func hasLine(r checks.Result, line string) bool { return slices.Contains(lines(r), line) }

// An Office document with a macro arrives without it, under the
// macro-free type; the rest of the message is as sent.
func TestQuickSandDisarmsDocument(t *testing.T) {
	docm := oletools(t, "oleform/oleform-PR314.docm")
	c := newCheck(t, nil)
	m := msg(part{"", "text/plain", []byte("Please see the order.")}, part{"order.docm", "application/vnd.ms-word.document.macroEnabled.12", docm})
	r := c.Check(context.Background(), m, nil)
	if r.Status != StatusDisarmed || r.NewBody == nil || r.Facts["suspicious"] != false || r.Facts["disarmed"] != 1 {
		t.Fatalf("%s %q %v", r.Status, r.Reason, r.Facts)
	}
	if !hasLine(r, "QuickSand disarmed file order.docm in 4QueueID01") {
		t.Errorf("lines %q", lines(r))
	}
	files, headers := delivered(t, m, r)
	docx, ok := files["order.docx"]
	if !ok {
		t.Fatalf("no order.docx delivered: %v", headers)
	}
	if left := attachments.Analyse(docx); len(left) != 0 {
		t.Errorf("active content left: %v", left)
	}
	if !strings.Contains(headers["order.docx"], "application/vnd.openxmlformats-officedocument.wordprocessingml.document") ||
		!strings.Contains(headers["order.docx"], "X-Chainmail-Disarmed:") {
		t.Errorf("header %q", headers["order.docx"])
	}
	if string(files["1.1"]) != "Please see the order." {
		t.Errorf("text part %q", files["1"])
	}
	if o := outcomeOf(r, "order.docm"); o.Action != FileDisarmed || o.Category != CategorySuspicious {
		t.Errorf("outcome %+v", o)
	}
	if !hasSymbol(r, SymDisarmed) || !hasSymbol(r, SymMacro) {
		t.Errorf("symbols %v", r.Symbols)
	}

	// The same document inside a zip: the zip is rewritten, its other
	// member kept as it was.
	z := zipOf(t, "docs/order.docm", docm, "notes.txt", []byte("plain notes"))
	m = msg(part{"docs.zip", "application/zip", z})
	r = c.Check(context.Background(), m, nil)
	if r.Status != StatusDisarmed || !hasLine(r, "QuickSand disarmed file order.docm from archive docs.zip in 4QueueID01") {
		t.Fatalf("%s %q %q", r.Status, r.Reason, lines(r))
	}
	files, _ = delivered(t, m, r)
	members := zipNames(t, files["docs.zip"])
	if string(members["notes.txt"]) != "plain notes" || members["docs/order.docx"] == nil || members["docs/order.docm"] != nil {
		t.Errorf("members %v", slices.Collect(func(yield func(string) bool) {
			for k := range members {
				yield(k)
			}
		}))
	}
	if left := attachments.Analyse(members["docs/order.docx"]); len(left) != 0 {
		t.Errorf("active content left in the member: %v", left)
	}
}

// What the settings do with a suspicious file: remove it, hold or refuse
// the message, deliver it as it is.
func TestQuickSandSuspiciousActions(t *testing.T) {
	docm := oletools(t, "oleform/oleform-PR314.docm")
	for _, tc := range []struct {
		act     FileAction
		line    string
		status  checks.Status
		body    bool
		held    []string
		refused bool
	}{
		{ActionRemove, "QuickSand removed file order.docm in 4QueueID01 because it’s suspicious", StatusDeleted, true, nil, false},
		{ActionQuarantine, "QuickSand blocked message 4QueueID01 with active code because of spam rules", StatusSuspicious, false, []string{"vba-macro"}, false},
		{ActionReject, "QuickSand blocked message 4QueueID01 with active code because of spam rules", StatusSuspicious, false, nil, true},
		{ActionDeliver, "", checks.StatusClean, false, nil, false},
	} {
		c := newCheck(t, func(cfg *Config) { cfg.ActiveContent.Suspicious = tc.act })
		m := msg(part{"order.docm", "application/octet-stream", docm})
		r := c.Check(context.Background(), m, nil)
		if r.Status != tc.status || (r.NewBody != nil) != tc.body || tc.line != "" && !hasLine(r, tc.line) {
			t.Errorf("%s: %s %q, body %v, lines %q", tc.act, r.Status, r.Reason, r.NewBody != nil, lines(r))
		}
		if held := r.Facts["held"].([]string); !slices.Equal(held, append([]string{}, tc.held...)) && !(len(held) == 0 && len(tc.held) == 0) {
			t.Errorf("%s: held %v", tc.act, held)
		}
		if r.Facts["active_refused"] != tc.refused {
			t.Errorf("%s: active_refused %v", tc.act, r.Facts["active_refused"])
		}
		// Delivered as is: the macro is still scored, not held.
		if tc.act == ActionDeliver && (r.Facts["suspicious"] != false || !hasSymbol(r, SymMacro)) {
			t.Errorf("deliver: %v %v", r.Facts, r.Symbols)
		}
		if tc.act == ActionRemove {
			files, _ := delivered(t, m, r)
			if _, ok := files["order.docm"]; ok {
				t.Errorf("remove: the document is still there")
			}
		}
	}
}

// A file that cannot be disarmed falls back to cannot_disarm: removed
// alone, from its zip, or with the archive it is nested in.
func TestQuickSandCannotDisarm(t *testing.T) {
	// A Word document with an embedded OLE package (an executable
	// dropped by a double click): cannot be taken out in place.
	doc := oletools(t, "oleobj/embedded-simple-2007.doc")
	if _, err := attachments.Disarm("report.doc", doc); !errors.Is(err, attachments.ErrCannotDisarm) {
		t.Fatalf("the embedded package is disarmed now (%v): pick another file that cannot be", err)
	}
	c := newCheck(t, nil)
	m := msg(part{"report.doc", "application/msword", doc})
	r := c.Check(context.Background(), m, nil)
	if !hasLine(r, "QuickSand removed file report.doc in 4QueueID01 because it’s suspicious and cannot be disarmed") || r.Status != StatusDeleted {
		t.Errorf("%s %q", r.Status, lines(r))
	}
	m = msg(part{"a.zip", "application/zip", zipOf(t, "report.doc", doc, "b.txt", []byte("b"))})
	r = c.Check(context.Background(), m, nil)
	if !hasLine(r, "QuickSand removed file report.doc from archive a.zip in 4QueueID01 because it cannot be disarmed") {
		t.Errorf("%s %q", r.Status, lines(r))
	}
	files, _ := delivered(t, m, r)
	if members := zipNames(t, files["a.zip"]); len(members) != 1 || string(members["b.txt"]) != "b" {
		t.Errorf("members %v", members)
	}
	// Nested one zip deeper: the outer archive goes.
	m = msg(part{"outer.zip", "application/zip", zipOf(t, "inner.zip", zipOf(t, "report.doc", doc))})
	r = c.Check(context.Background(), m, nil)
	if !hasLine(r, "QuickSand removed archive outer.zip in 4QueueID01 because it isn’t possible to cleanup suspicious content") || r.Facts["suspicious"] != false {
		t.Errorf("%s %q %v", r.Status, lines(r), r.Facts)
	}
	if o := outcomeOf(r, "outer.zip/inner.zip/report.doc"); o.Action != FileRemoved || o.Category != CategorySuspicious {
		t.Errorf("outcome %+v", o)
	}
	// cannot_disarm: quarantine holds the message instead.
	c = newCheck(t, func(cfg *Config) { cfg.ActiveContent.CannotDisarm = ActionQuarantine })
	r = c.Check(context.Background(), msg(part{"report.doc", "application/msword", doc}), nil)
	if r.NewBody != nil || !slices.Contains(r.Facts["held"].([]string), "ole-package") {
		t.Errorf("quarantine: %s %v", r.Status, r.Facts)
	}
}

// Encrypted archives and documents: held by default, authorised, removed
// or refused as set.
func TestQuickSandEncrypted(t *testing.T) {
	pwzip := oletools(t, "msodde/dde-test-from-office2016.doc.zip")
	encDoc := oletools(t, "encrypted/encrypted.docx")
	c := newCheck(t, nil)
	r := c.Check(context.Background(), msg(part{"doc.zip", "application/zip", pwzip}), nil)
	if r.Facts["unscannable"] != true || !slices.Contains(r.Facts["held"].([]string), "encrypted-archive") || outcomeOf(r, "doc.zip").Category != CategoryEncrypted {
		t.Errorf("default: %s %v", r.Status, r.Facts)
	}
	r = c.Check(context.Background(), msg(part{"secret.docx", "application/octet-stream", encDoc}), nil)
	if !slices.Contains(r.Facts["held"].([]string), "encrypted-document") {
		t.Errorf("encrypted document: %s %v", r.Status, r.Facts)
	}

	c = newCheck(t, func(cfg *Config) { cfg.ActiveContent.Encrypted = ActionDeliver })
	r = c.Check(context.Background(), msg(part{"doc.zip", "application/zip", pwzip}), nil)
	if r.Facts["unscannable"] != false || len(r.Facts["held"].([]string)) != 0 || r.NewBody != nil ||
		!hasLine(r, "QuickSand authorized encrypted archive doc.zip in 4QueueID01") {
		t.Errorf("deliver: %s %v %q", r.Status, r.Facts, lines(r))
	}
	r = c.Check(context.Background(), msg(part{"secret.docx", "application/octet-stream", encDoc}), nil)
	if !hasLine(r, "QuickSand authorized encrypted file secret.docx in 4QueueID01") || r.Facts["encrypted"] != false {
		t.Errorf("deliver document: %s %v %q", r.Status, r.Facts, lines(r))
	}

	c = newCheck(t, func(cfg *Config) { cfg.ActiveContent.Encrypted = ActionRemove })
	m := msg(part{"", "text/plain", []byte("the file")}, part{"doc.zip", "application/zip", pwzip})
	r = c.Check(context.Background(), m, nil)
	if !hasLine(r, "QuickSand removed file doc.zip in 4QueueID01 because it’s encrypted") || r.Facts["unscannable"] != false || r.NewBody == nil {
		t.Errorf("remove: %s %v %q", r.Status, r.Facts, lines(r))
	}
	if files, _ := delivered(t, m, r); files["doc.zip"] != nil || string(files["1.1"]) != "the file" {
		t.Errorf("remove: delivered %v", files)
	}

	c = newCheck(t, func(cfg *Config) { cfg.ActiveContent.Encrypted = ActionReject })
	r = c.Check(context.Background(), msg(part{"doc.zip", "application/zip", pwzip}), nil)
	if !slices.Contains(r.Facts["refused"].([]string), "encrypted-archive") || r.Facts["active_refused"] != true {
		t.Errorf("reject: %v", r.Facts)
	}
}

// A file too big to analyse: held by default, ignored or removed as set.
func TestQuickSandIndeterminate(t *testing.T) {
	big := make([]byte, 200<<10)
	rand.Read(big)
	z := zipOf(t, "data.bin", big)
	small := func(a FileAction) func(*Config) {
		return func(cfg *Config) { cfg.MaxFileSize, cfg.ActiveContent.Indeterminate = 100<<10, a }
	}
	r := newCheck(t, small(ActionQuarantine)).Check(context.Background(), msg(part{"big.zip", "application/zip", z}), nil)
	if r.Facts["unscannable"] != true || !slices.Contains(r.Facts["held"].([]string), "limit-size") || outcomeOf(r, "big.zip").Category != CategoryIndeterminate {
		t.Errorf("default: %v", r.Facts)
	}
	r = newCheck(t, small(ActionDeliver)).Check(context.Background(), msg(part{"big.zip", "application/zip", z}), nil)
	if r.Facts["unscannable"] != false || r.NewBody != nil || !slices.ContainsFunc(lines(r), func(l string) bool {
		// The size is the part's, estimated from its base64 when not read whole.
		return regexp.MustCompile(`^QuickSand ignored file big\.zip of size 20[0-9]KB in message 4QueueID01 because it’s too big for analysis$`).MatchString(l)
	}) {
		t.Errorf("deliver: %v %q", r.Facts, lines(r))
	}
	r = newCheck(t, small(ActionRemove)).Check(context.Background(), msg(part{"big.zip", "application/zip", z}), nil)
	if r.Facts["unscannable"] != false || r.NewBody == nil || !hasLine(r, "QuickSand removed file big.zip in 4QueueID01 because it’s too big for analysis") {
		t.Errorf("remove: %v %q", r.Facts, lines(r))
	}
}

// A file a deny+delete rule removes is gone before QuickSand looks: no
// QuickSand line, no hold for its content.
func TestQuickSandAfterRuleRemoval(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f.rules"), []byte("deny+delete\t\\.zip$\tZip removed\tZip removed\n"), 0o644)
	c := newCheck(t, func(cfg *Config) { cfg.BaseDir, cfg.FilenameRules = dir, []string{"f.rules", "default"} })
	r := c.Check(context.Background(), msg(part{"", "text/plain", []byte("x")}, part{"doc.zip", "application/zip", oletools(t, "msodde/dde-test-from-office2016.doc.zip")}), nil)
	if r.Facts["unscannable"] != false || len(r.Facts["held"].([]string)) != 0 || slices.ContainsFunc(lines(r), func(l string) bool { return strings.HasPrefix(l, "QuickSand") }) {
		t.Errorf("%s %v %q", r.Status, r.Facts, lines(r))
	}
}

// Wrong settings are refused with their line.
func TestActiveContentConfig(t *testing.T) {
	for _, tc := range []struct{ yaml, err string }{
		{"active_content:\n  suspicious: explode\n", `line 2: attachment: active_content: suspicious: unknown action "explode" (want disarm, remove, deliver, quarantine, reject)`},
		{"active_content:\n  encrypted: disarm\n", `line 2: attachment: active_content: encrypted: unknown action "disarm"`},
		{"active_content:\n  cannot_disarm: deliver\n", `line 2: attachment: active_content: cannot_disarm: unknown action "deliver" (want remove, quarantine, reject)`},
		{"active_content:\n  suspicous: remove\n", `line 2: attachment: active_content: unknown setting "suspicous"`},
		{"active_content: remove\n", `line 1: attachment: active_content: want a mapping`},
	} {
		cfg := DefaultConfig()
		err := yaml.Unmarshal([]byte(tc.yaml), &cfg)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.err)
		}
	}
	cfg := DefaultConfig()
	if err := yaml.Unmarshal([]byte("active_content:\n  encrypted: deliver\n"), &cfg); err != nil {
		t.Fatal(err)
	}
	if want := (ActiveContent{Suspicious: ActionDisarm, CannotDisarm: ActionRemove, Encrypted: ActionDeliver, Indeterminate: ActionQuarantine}); cfg.ActiveContent != want {
		t.Errorf("a partial setting keeps the other defaults: %+v", cfg.ActiveContent)
	}
}

// A document uuencoded in the message text cannot be cut out without the
// text: the message is held, its body left as it is.
func TestQuickSandUuencodedDocument(t *testing.T) {
	docm := oletools(t, "oleform/oleform-PR314.docm")
	var uu strings.Builder
	uu.WriteString("Please find the order below.\r\n\r\nbegin 644 order.docm\r\n")
	for i := 0; i < len(docm); i += 45 {
		line := docm[i:min(i+45, len(docm))]
		uu.WriteByte(byte(32 + len(line)))
		for j := 0; j < len(line); j += 3 {
			var b [3]byte
			copy(b[:], line[j:])
			for _, c := range []byte{b[0] >> 2, (b[0]<<4 | b[1]>>4) & 63, (b[1]<<2 | b[2]>>6) & 63, b[2] & 63} {
				if c == 0 {
					c = 64
				}
				uu.WriteByte(32 + c)
			}
		}
		uu.WriteString("\r\n")
	}
	uu.WriteString("`\r\nend\r\n")
	r := newCheck(t, nil).Check(context.Background(), msg(part{"", "text/plain", []byte(uu.String())}), nil)
	if r.NewBody != nil || !slices.Contains(r.Facts["held"].([]string), "vba-macro") {
		t.Errorf("%s %q %v", r.Status, r.Reason, r.Facts)
	}
	if o := outcomeOf(r, "order.docm"); o.Category != CategorySuspicious || o.Action != FileBlocked {
		t.Errorf("outcome %+v in %v", o, r.Facts["outcomes"])
	}
}

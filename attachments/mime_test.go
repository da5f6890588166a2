package attachments

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"chainmail/checks/checktest"
)

func walkBytes(b []byte) *Tree {
	return Walk(bytes.NewReader(b), int64(len(b)), WalkOptions{})
}

// mime4jLeaves reads a NAME_decoded.xml file and returns, in document
// order, the decoded content of every leaf body it references.
func mime4jLeaves(t *testing.T, path string) ([][]byte, bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	dec := xml.NewDecoder(f)
	dec.Strict = false
	var out [][]byte
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		se, ok := tok.(xml.StartElement)
		if !ok || (se.Name.Local != "text-body" && se.Name.Local != "binary-body") {
			continue
		}
		for _, a := range se.Attr {
			if a.Name.Local == "name" {
				b, err := os.ReadFile(filepath.Join(filepath.Dir(path), a.Value))
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				out = append(out, b)
			}
		}
	}
	return out, true
}

// The mime4j corpus (testmsgs and the MIME-tools messages) with mime4j's
// expected parse trees: the leaf parts found, in order, and their decoded
// content must agree with mime4j's.
func TestMime4jAgreement(t *testing.T) {
	root := checktest.Corpus(t, "mime4j-testmsgs")
	var total, agree int
	var differ []string
	for _, dir := range []string{"testmsgs", "mimetools-testmsgs"} {
		msgs, _ := filepath.Glob(filepath.Join(root, dir, "*.msg"))
		for _, m := range msgs {
			want, ok := mime4jLeaves(t, strings.TrimSuffix(m, ".msg")+"_decoded.xml")
			if !ok {
				continue
			}
			raw, err := os.ReadFile(m)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			tree := walkBytes(raw)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("%s: walk took %v", m, d)
			}
			var got [][]byte
			for _, l := range tree.Root.Leaves() {
				if strings.HasPrefix(l.MediaType, "multipart/") {
					// A multipart whose boundary never appears: mime4j keeps
					// it as an empty multipart, we scan its text as a leaf.
					continue
				}
				b, _ := io.ReadAll(l.Open())
				got = append(got, b)
			}
			total++
			if leavesEqual(got, want) {
				agree++
			} else {
				differ = append(differ, dir+"/"+filepath.Base(m)+describeDiff(got, want))
			}
		}
	}
	t.Logf("mime4j agreement: %d of %d messages have the same leaf parts with the same decoded content", agree, total)
	for _, d := range differ {
		t.Logf("differs: %s", d)
	}
	if total == 0 {
		t.Fatal("no mime4j messages found")
	}
	if agree*100 < total*90 {
		t.Errorf("agreement %d/%d below 90%%", agree, total)
	}
}

func leavesEqual(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(normEOL(a[i]), normEOL(b[i])) {
			return false
		}
	}
	return true
}

func normEOL(b []byte) []byte {
	return bytes.TrimRight(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), "\n")
}

func describeDiff(got, want [][]byte) string {
	if len(got) != len(want) {
		return " (leaves: got " + itoa(len(got)) + ", want " + itoa(len(want)) + ")"
	}
	for i := range got {
		if !bytes.Equal(normEOL(got[i]), normEOL(want[i])) {
			g, w := normEOL(got[i]), normEOL(want[i])
			return " (leaf " + itoa(i+1) + ": got " + itoa(len(g)) + " bytes " + quoteShort(g) + ", want " + itoa(len(w)) + " bytes " + quoteShort(w) + ")"
		}
	}
	return ""
}

func quoteShort(b []byte) string {
	if len(b) > 60 {
		b = b[:60]
	}
	return "\"" + strings.ReplaceAll(string(b), "\n", "\\n") + "\""
}

func itoa(i int) string { return strconv.Itoa(i) }

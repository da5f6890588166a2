package attachments

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"chainmail/checks/checktest"
)

// tnefparse's expected.tsv: per file the TNEF key, the attachment long
// names in order, and where checked the attribute ids.
func TestTNEFExpectedNames(t *testing.T) {
	corpus := checktest.CorpusRoot()
	tp := checktest.Corpus(t, "tnefparse-examples")
	f, err := os.Open(filepath.Join(tp, "expected.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	files, namesOK, idsOK, idsChecked := 0, 0, 0, 0
	for sc.Scan() {
		col := strings.Split(sc.Text(), "\t")
		if len(col) < 6 {
			continue
		}
		loc := strings.Fields(col[1])[0]
		data, err := os.ReadFile(filepath.Join(corpus, loc))
		if err != nil {
			t.Fatalf("%s: %v", loc, err)
		}
		files++
		tn, err := ParseTNEF(data)
		if err != nil {
			t.Errorf("%s: %v", col[0], err)
			continue
		}
		if k := col[2]; strings.HasPrefix(k, "0x") {
			want, _ := strconv.ParseUint(k[2:], 16, 16)
			if uint64(tn.Key) != want {
				t.Errorf("%s: key 0x%04x, want %s", col[0], tn.Key, k)
			}
		}
		var got []string
		for _, a := range tn.Attachments {
			n := a.Name()
			if n == "" {
				n = "unknown.dat"
			}
			got = append(got, n)
		}
		want := []string{}
		if col[3] != "(none)" {
			names := col[3]
			if i := strings.Index(names, " ("); i >= 0 {
				names = names[:i]
			}
			want = strings.Split(names, " | ")
		}
		if strings.Join(got, "|") == strings.Join(want, "|") {
			namesOK++
		} else {
			t.Errorf("%s: attachments %q, want %q", col[0], got, want)
		}
		if ids := col[5]; strings.HasPrefix(ids, "0x") {
			idsChecked++
			var gotIDs []string
			for _, id := range tn.IDs {
				gotIDs = append(gotIDs, fmt.Sprintf("0x%04x", id))
			}
			if strings.Join(gotIDs, ",") == ids {
				idsOK++
			} else {
				t.Errorf("%s: attribute ids %s, want %s", col[0], strings.Join(gotIDs, ","), ids)
			}
		}
		switch col[4] {
		case "rtfbody":
			if len(tn.RTF) == 0 {
				t.Errorf("%s: no RTF body", col[0])
			}
		case "htmlbody":
			if len(tn.HTML) == 0 {
				t.Errorf("%s: no HTML body", col[0])
			}
		case "body":
			if len(tn.Body)+len(tn.HTML)+len(tn.RTF) == 0 {
				t.Errorf("%s: no text body", col[0])
			}
		}
	}
	t.Logf("tnefparse expected.tsv: names agree for %d of %d files, attribute ids for %d of %d", namesOK, files, idsOK, idsChecked)
}

// MimeKit's TNEF samples ship the files the tnef tool extracts: every
// attachment we decode whose name is there has the same bytes, and every
// decompressed RTF body equals message.rtf.
func TestTNEFExtractedContent(t *testing.T) {
	dir := filepath.Join(checktest.Corpus(t, "mimekit-testdata"), "tnef")
	tnefs, _ := filepath.Glob(filepath.Join(dir, "*.tnef"))
	var compared, equal, rtfs, rtfEqual int
	for _, p := range tnefs {
		data, _ := os.ReadFile(p)
		tn, err := ParseTNEF(data)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(p), err)
			continue
		}
		exp := strings.TrimSuffix(p, ".tnef")
		if want, err := os.ReadFile(filepath.Join(exp, "message.rtf")); err == nil {
			rtfs++
			if bytes.Equal(crlf(tn.RTF), crlf(want)) {
				rtfEqual++
			} else {
				t.Errorf("%s: RTF body differs (%d vs %d bytes)", filepath.Base(p), len(tn.RTF), len(want))
			}
		}
		for _, a := range tn.Attachments {
			want, err := os.ReadFile(filepath.Join(exp, a.Name()))
			if err != nil || a.Name() == "" {
				continue
			}
			compared++
			// The extracted files were stored with CRLF turned into LF, and
			// the tool keeps the 16-byte interface id of PT_OBJECT data,
			// which we strip.
			if bytes.Equal(crlf(a.Data), crlf(want)) || (len(want) == len(a.Data)+16 && bytes.Equal(want[16:], a.Data)) {
				equal++
			} else {
				t.Logf("%s/%s: %d bytes, extracted file has %d", filepath.Base(p), a.Name(), len(a.Data), len(want))
			}
		}
	}
	t.Logf("mimekit TNEF: %d of %d extracted files identical, %d of %d RTF bodies identical", equal, compared, rtfEqual, rtfs)
	if compared == 0 || equal*10 < compared*9 {
		t.Errorf("only %d of %d files identical", equal, compared)
	}
}

func crlf(b []byte) []byte {
	return bytes.ReplaceAll(bytes.TrimRight(b, "\x00"), []byte("\r\n"), []byte("\n"))
}

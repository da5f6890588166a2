package attachments

import (
	"strings"
	"testing"
)

// Every kind has one distinct stable name that reads back as itself; the
// names are the ones log lines and facts have always carried.
func TestFindingKindNames(t *testing.T) {
	seen := map[string]FindingKind{}
	for k := FindingKind(1); int(k) < len(kindNames); k++ {
		n := k.String()
		if n == "" || strings.HasPrefix(n, "kind(") {
			t.Errorf("kind %d has no name", k)
		}
		if o, dup := seen[n]; dup {
			t.Errorf("%q names kinds %d and %d", n, o, k)
		}
		seen[n] = k
		if back, ok := ParseFindingKind(n); !ok || back != k {
			t.Errorf("%q reads back as %d %v", n, back, ok)
		}
		if b, _ := k.MarshalText(); string(b) != n {
			t.Errorf("%d marshals as %q", k, b)
		}
	}
	for n, k := range map[string]FindingKind{"name-bidi": KindNameBidi, "vba-macro": KindVBA, "zip-directory-mismatch": KindZipDirectoryMismatch, "limit-ratio": KindLimitRatio, "mime-structure": KindMIMEStructure} {
		if k.String() != n {
			t.Errorf("%d is %q, want %q", k, k, n)
		}
	}
	if _, ok := ParseFindingKind("name-bidii"); ok {
		t.Error("a misspelt kind reads as one")
	}
}

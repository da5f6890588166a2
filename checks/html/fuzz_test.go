package html

import (
	"bytes"
	"testing"

	xhtml "golang.org/x/net/html"
)

// FuzzRewrite: any input is rewritten without a panic; what comes out
// parses, holds nothing left to disarm, and no script element.
func FuzzRewrite(f *testing.F) {
	for _, s := range []string{
		`<p>a</p><script>x</script>`, `<a href="javascript:x" onclick=y>l</a>`, `<iframe src=x></iframe>`,
		`<form action=x><input></form>`, `<object codebase=x><param></object>`, `<img src=http://t/x width=1 height=1>`,
		`<script`, `<!--`, `<textarea><script>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, _ := Rewrite(in, disarmAll)
		if out == nil {
			return
		}
		if _, err := xhtml.Parse(bytes.NewReader(out)); err != nil {
			t.Fatalf("output %q of %q does not parse: %v", out, in, err)
		}
		if again, f2 := Rewrite(out, disarmAll); again != nil {
			t.Fatalf("output %q of %q still has %v: %q", out, in, f2.Disarmed, again)
		}
	})
}

package html

import (
	"strings"
	"testing"
)

// BenchmarkRewrite: the cost per MB of HTML, a newsletter-like page with
// a script, event attributes and a web bug to disarm.
func BenchmarkRewrite(b *testing.B) {
	unit := `<table><tr><td class="c"><a href="https://shop.example/item?id=1" onclick="t(1)">Item &amp; more</a><img src="https://cdn.example/i.png" width="120" height="80"></td></tr></table>` + "\n"
	page := []byte("<html><body>" + strings.Repeat(unit, (1<<20)/len(unit)) + `<script>x()</script><img src="http://t.example/o.gif" width=1 height=1></body></html>`)
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		Rewrite(page, disarmAll)
	}
}
